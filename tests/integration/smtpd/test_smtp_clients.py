"""postern-smtpd with the clients people actually use: swaks (plain, STARTTLS,
port 465, AUTH PLAIN and LOGIN, PIPELINING, BDAT), Python's smtplib, curl and
msmtp. Every accepted message is checked in the recipient's Maildir (or the
outbound queue for remote recipients)."""

import os
import smtplib
import ssl
import subprocess
import tempfile
import unittest

from postern_testlib import Instance, wait_for


class SmtpClients(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.inst = Instance(users={"alice@example.test": "alice-password-1", "bob@example.test": "bob-password-2"})
        cls.inst.ctl("alias", "add", "sales@example.test", "alice@example.test", "bob@example.test")
        cls.inst.ctl("alias", "add", "fwd@example.test", "friend@elsewhere.test")
        cls.inst.start("postern-smtpd")
        cls.smtp = cls.inst.port("postern-smtpd", "smtp")
        cls.sub = cls.inst.port("postern-smtpd", "submission")
        cls.subs = cls.inst.port("postern-smtpd", "submissions")
        cls.cafile = os.path.join(cls.inst.config_dir, "tls", "cert.pem")

    @classmethod
    def tearDownClass(cls):
        cls.inst.close()

    def count(self, address):
        return len(self.inst.messages(address))

    def swaks(self, *args, rc=0):
        p = subprocess.run(["swaks", "--server", "127.0.0.1", *args], capture_output=True, text=True, timeout=60)
        self.assertEqual(p.returncode, rc, p.stdout[-3000:] + p.stderr[-1000:])
        return p.stdout

    def test_swaks_mx_plain_and_starttls(self):
        before = self.count("alice@example.test")
        out = self.swaks("--port", str(self.smtp), "--from", "someone@remote.test", "--to", "alice@example.test", "--header", "Subject: plain")
        self.assertIn("250 2.0.0 Ok: queued as", out)
        out = self.swaks("--port", str(self.smtp), "--tls", "--from", "someone@remote.test", "--to", "alice@example.test",
                         "--header", "Subject: starttls")
        self.assertIn("TLS started with cipher TLSv1.", out)
        self.assertEqual(self.count("alice@example.test"), before + 2)
        last = self.inst.messages("alice@example.test")[-1]
        self.assertRegex(last, rb"^Return-Path: <someone@remote\.test>\r\nDelivered-To: alice@example\.test\r\nReceived: from ")
        self.assertIn(b"(using TLSv1.3 with cipher", last)

    def test_swaks_pipelining_and_bdat(self):
        before = self.count("bob@example.test")
        self.swaks("--port", str(self.smtp), "--pipeline", "--from", "x@remote.test", "--to", "bob@example.test")
        # swaks has no BDAT mode; send CHUNKING by hand through a socket (the transcripts cover more).
        import socket
        s = socket.create_connection(("127.0.0.1", self.smtp), timeout=10)
        f = s.makefile("rb")
        f.readline()
        s.sendall(b"EHLO c\r\nMAIL FROM:<x@remote.test>\r\nRCPT TO:<bob@example.test>\r\n")
        while not f.readline().startswith(b"250 HELP"):
            pass
        f.readline(), f.readline()
        body = b"Subject: bdat\r\n\r\nchunked\r\n"
        s.sendall(b"BDAT %d LAST\r\n" % len(body) + body + b"QUIT\r\n")
        self.assertTrue(f.readline().startswith(b"250 2.0.0 Ok"))
        s.close()
        self.assertEqual(self.count("bob@example.test"), before + 2)

    def test_submission_auth_plain_login_and_465(self):
        out = self.swaks("--port", str(self.sub), "--tls", "--auth", "PLAIN", "--auth-user", "alice@example.test",
                         "--auth-password", "alice-password-1", "--from", "alice@example.test", "--to", "friend@elsewhere.test")
        self.assertIn("235 2.7.0", out)
        out = self.swaks("--port", str(self.subs), "--tls-on-connect", "--auth", "LOGIN", "--auth-user", "bob@example.test",
                         "--auth-password", "bob-password-2", "--from", "bob@example.test", "--to", "alice@example.test")
        self.assertIn("235 2.7.0", out)
        # Wrong password: 535, nothing sent.
        self.swaks("--port", str(self.subs), "--tls-on-connect", "--auth", "PLAIN", "--auth-user", "bob@example.test",
                   "--auth-password", "nope", "--from", "bob@example.test", "--to", "alice@example.test", rc=28)
        queued = os.listdir(os.path.join(self.inst.data_dir, "queue", "incoming"))
        self.assertTrue(any(n.endswith(".env") for n in queued))
        env = [open(os.path.join(self.inst.data_dir, "queue", "incoming", n)).read() for n in queued if n.endswith(".env")]
        self.assertTrue(any("recipient: friend@elsewhere.test" in e and "auth-user: alice@example.test" in e for e in env))

    def test_smtplib(self):
        ctx = ssl.create_default_context(cafile=self.cafile)
        ctx.check_hostname = False
        with smtplib.SMTP("127.0.0.1", self.sub, timeout=30) as c:
            c.ehlo("client.test")
            self.assertNotIn("auth", c.esmtp_features)  # never before TLS
            c.starttls(context=ctx)
            c.ehlo("client.test")
            self.assertIn("auth", c.esmtp_features)
            c.login("alice@example.test", "alice-password-1")
            refused = c.sendmail("alice@example.test", ["sales@example.test", "bob@example.test"],
                                 b"Subject: smtplib\r\n\r\nhello from smtplib\r\n")
            self.assertEqual(refused, {})
            with self.assertRaises(smtplib.SMTPSenderRefused):
                c.sendmail("bob@example.test", ["alice@example.test"], b"Subject: spoof\r\n\r\nx\r\n")
        with smtplib.SMTP("127.0.0.1", self.smtp, timeout=30) as c:
            with self.assertRaises(smtplib.SMTPRecipientsRefused):
                c.sendmail("spam@remote.test", ["victim@elsewhere.test"], b"Subject: relay\r\n\r\nx\r\n")
            with self.assertRaises(smtplib.SMTPRecipientsRefused):
                c.sendmail("spam@remote.test", ["nobody@example.test"], b"Subject: unknown\r\n\r\nx\r\n")
        # Aliases expand: sales@ reached alice and bob (bob also directly: one copy each, de-duplicated).
        self.assertTrue(any(b"hello from smtplib" in m for m in self.inst.messages("alice@example.test")))
        self.assertEqual(sum(b"hello from smtplib" in m for m in self.inst.messages("bob@example.test")), 1)

    def test_curl(self):
        with tempfile.NamedTemporaryFile("wb", delete=False) as f:
            f.write(b"From: alice@example.test\r\nSubject: curl\r\n\r\nsent by curl\r\n")
            path = f.name
        p = subprocess.run(["curl", "-sS", "--ssl-reqd", "--cacert", self.cafile,
                            "--resolve", f"mail.example.test:{self.sub}:127.0.0.1", "--url", f"smtp://mail.example.test:{self.sub}",
                            "--user", "alice@example.test:alice-password-1", "--mail-from", "alice@example.test",
                            "--mail-rcpt", "bob@example.test", "--upload-file", path], capture_output=True, text=True, timeout=60)
        os.unlink(path)
        self.assertEqual(p.returncode, 0, p.stderr)
        self.assertTrue(any(b"sent by curl" in m for m in self.inst.messages("bob@example.test")))

    def test_msmtp(self):
        with tempfile.TemporaryDirectory() as d:
            rc = os.path.join(d, "msmtprc")
            with open(rc, "w") as f:
                f.write(f"""account default
host 127.0.0.1
port {self.subs}
tls on
tls_starttls off
tls_trust_file {self.cafile}
tls_host_override mail.example.test
auth plain
user bob@example.test
password bob-password-2
from bob+news@example.test
""")
            os.chmod(rc, 0o600)
            p = subprocess.run(["msmtp", "-C", rc, "alice@example.test"], input=b"Subject: msmtp\r\n\r\nsent by msmtp\r\n",
                               capture_output=True, timeout=60)
            self.assertEqual(p.returncode, 0, p.stderr)
        msgs = [m for m in self.inst.messages("alice@example.test") if b"sent by msmtp" in m]
        self.assertEqual(len(msgs), 1)
        self.assertIn(b"Return-Path: <bob+news@example.test>", msgs[0])  # plus-address of the user's own address is allowed
        self.assertIn(b"(authenticated sender: bob@example.test)", msgs[0])

    def test_plus_addressing_and_catch_all(self):
        self.swaks("--port", str(self.smtp), "--from", "x@remote.test", "--to", "alice+lists@example.test", "--header", "Subject: plus")
        m = self.inst.messages("alice@example.test")[-1]
        self.assertIn(b"Delivered-To: alice@example.test", m)
        self.assertIn(b"for <alice+lists@example.test>", m)


if __name__ == "__main__":
    unittest.main(verbosity=2)
