"""ManageSieve (RFC 5804) end to end against the real postern-sieved over real
sockets, and the scripts it stores sorting mail delivered over real SMTP
(postern-smtpd, smtplib) into the Maildirs:

  * a raw-socket client: capabilities, STARTTLS (the TLS certificate of the
    instance), AUTHENTICATE PLAIN through a continuation answered with a
    literal, PUTSCRIPT of a script that does not compile (NO with line:column),
    PUTSCRIPT with a non-synchronising literal, SETACTIVE, LISTSCRIPTS,
    GETSCRIPT, DELETESCRIPT of the active script (NO (ACTIVE)); then a message
    sent over SMTP lands in the folder the script names;
  * a wrong password gets NO and the login is logged by the shared authenticator;
  * `sieve-connect` from Debian (when installed: the test group of
    appliance/scripts/install-deps.sh) uploads and activates a script that then
    sorts mail, lists and downloads it."""

import os
import re
import shutil
import smtplib
import socket
import subprocess
import tempfile
import unittest

from postern_testlib import Instance, wait_for

USERS = {"alice@example.test": "alice-password-1", "bob@example.test": "bob-password-2", "carol@example.test": "carol-password-3"}


class Client:
    """A line-oriented ManageSieve client over a socket (plain, then TLS)."""

    def __init__(self, port):
        self.sock = socket.create_connection(("127.0.0.1", port), timeout=15)
        self.buf = b""

    def readline(self):
        while b"\n" not in self.buf:
            chunk = self.sock.recv(65536)
            if not chunk:
                raise EOFError("closed")
            self.buf += chunk
        line, _, self.buf = self.buf.partition(b"\n")
        return line.rstrip(b"\r")

    def read_bytes(self, n):
        while len(self.buf) < n:
            chunk = self.sock.recv(65536)
            if not chunk:
                raise EOFError("closed")
            self.buf += chunk
        out, self.buf = self.buf[:n], self.buf[n:]
        return out

    def response(self):
        """Lines (literals read whole) up to and including OK/NO/BYE: (data lines, final line)."""
        lines = []
        while True:
            line = self.readline()
            m = re.fullmatch(rb"\{(\d+)\}", line)
            if m:
                lines.append(self.read_bytes(int(m.group(1))))
                rest = self.readline()  # the CRLF after the literal (or the rest of its line)
                if rest:
                    lines.append(rest)
                continue
            if re.match(rb"(OK|NO|BYE)\b", line):
                return lines, line
            lines.append(line)

    def send(self, data):
        self.sock.sendall(data if isinstance(data, bytes) else data.encode())

    def command(self, data):
        self.send(data + b"\r\n" if isinstance(data, bytes) else data + "\r\n")
        return self.response()

    def starttls(self, ctx):
        assert not self.buf
        self.sock = ctx.wrap_socket(self.sock, server_hostname="mail.example.test")

    def close(self):
        self.sock.close()


def plain(user, password):
    import base64
    return base64.b64encode(b"\0" + user.encode() + b"\0" + password.encode())


class ManageSieve(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.inst = Instance(users=USERS)
        cls.inst.start("postern-smtpd")
        cls.inst.start("postern-sieved")
        cls.port = cls.inst.port("postern-sieved", "sieve")
        cls.smtp = cls.inst.port("postern-smtpd", "smtp")

    @classmethod
    def tearDownClass(cls):
        cls.inst.close()

    def send_mail(self, rcpt, subject):
        with smtplib.SMTP("127.0.0.1", self.smtp, timeout=30) as s:
            s.sendmail("someone@remote.test", [rcpt], f"From: someone@remote.test\r\nTo: {rcpt}\r\nSubject: {subject}\r\n\r\nhello\r\n")

    def subjects(self, user, folder=""):
        return [m.split(b"Subject: ", 1)[1].split(b"\r\n", 1)[0].decode() for m in self.inst.messages(user, folder) if b"Subject: " in m]

    def login(self, user, password):
        c = Client(self.port)
        caps, ok = c.response()
        self.assertTrue(ok.startswith(b"OK"), ok)
        self.assertIn(b'"STARTTLS"', caps)
        self.assertIn(b'"SASL" ""', caps)  # no mechanism before TLS
        self.assertEqual(c.command("STARTTLS")[1], b'OK "Begin TLS negotiation"')
        c.starttls(self.inst.client_tls_context())
        caps, ok = c.response()  # RFC 5804 2.2: capabilities again after TLS
        self.assertEqual(ok, b'OK "TLS negotiation successful"')
        self.assertIn(b'"SASL" "PLAIN LOGIN"', caps)
        self.assertNotIn(b'"STARTTLS"', caps)
        sieve_caps = [l for l in caps if l.startswith(b'"SIEVE"')][0]
        self.assertIn(b"fileinto", sieve_caps)
        self.assertIn(b"imap4flags", sieve_caps)
        # SASL with a continuation: the server sends an empty challenge, we answer with a literal.
        c.send(b'AUTHENTICATE "PLAIN"\r\n')
        self.assertEqual(c.readline(), b'""')
        token = plain(user, password)
        c.send(b"{%d+}\r\n%s\r\n" % (len(token), token))
        return c, c.response()[1]

    def test_upload_activate_then_sorts_smtp_mail(self):
        c, ok = self.login("alice@example.test", USERS["alice@example.test"])
        self.assertEqual(ok, b'OK "Logged in"')
        # Validation error with line:column in the NO reply.
        bad = b'require "fileinto";\r\nif header :is "subject" {\r\n'
        _, no = c.command(b'PUTSCRIPT "broken" {%d+}\r\n%s' % (len(bad), bad))
        self.assertRegex(no.decode(), r'^NO "broken: \d+:\d+: ')
        script = (b'require ["fileinto", "mailbox"];\r\n'
                  b'if header :contains "subject" "[lists]" { fileinto :create "Lists"; }\r\n')
        self.assertEqual(c.command(b'HAVESPACE "sort" %d' % len(script))[1], b"OK")
        self.assertEqual(c.command(b'PUTSCRIPT "sort" {%d+}\r\n%s' % (len(script), script))[1], b"OK")
        self.assertEqual(c.command('SETACTIVE "sort"')[1], b"OK")
        self.assertEqual(c.command("LISTSCRIPTS"), ([b'"sort" ACTIVE'], b"OK"))
        self.assertEqual(c.command('GETSCRIPT "sort"'), ([script], b"OK"))
        self.assertTrue(c.command('DELETESCRIPT "sort"')[1].startswith(b"NO (ACTIVE)"))
        self.assertEqual(c.command("LOGOUT")[1], b'OK "Logout completed"')
        c.close()
        # The same store as posternctl: it sees the script as active.
        self.assertIn("sort", self.inst.ctl("sieve", "list", "alice@example.test").stdout)
        self.send_mail("alice@example.test", "[lists] weekly digest")
        self.send_mail("alice@example.test", "personal note")
        self.assertEqual(self.subjects("alice@example.test", "Lists"), ["[lists] weekly digest"])
        self.assertEqual(self.subjects("alice@example.test"), ["personal note"])

    def test_wrong_password(self):
        c, no = self.login("carol@example.test", "not-her-password")
        self.assertEqual(no, b'NO "Authentication failed"')
        self.assertEqual(c.command("LISTSCRIPTS")[1], b'NO "Log in first (AUTHENTICATE)"')
        c.close()
        wait_for(lambda: re.search(r"protocol=managesieve[^\n]*carol@example\.test|carol@example\.test[^\n]*protocol=managesieve",
                                           self.inst.log()),
                 what="the authenticator's log line")

    @unittest.skipUnless(shutil.which("sieve-connect"), "sieve-connect not installed (apt-get install sieve-connect)")
    def test_sieve_connect(self):
        tmp = tempfile.mkdtemp(prefix="postern-sieve-connect-")
        try:
            local = os.path.join(tmp, "bills.siv")
            with open(local, "w") as f:
                f.write('require ["fileinto", "mailbox"];\nif address :is "from" "boss@remote.test" { fileinto "Boss"; }\n'
                        'if header :contains "subject" "invoice" { fileinto :create "Bills"; }\n')

            def sc(*args):
                return subprocess.run(
                    ["sieve-connect", "--server", "127.0.0.1", "--port", str(self.port), "--user", "bob@example.test",
                     "--passwordfd", "0", "--tlscafile", os.path.join(self.inst.config_dir, "tls", "cert.pem"),
                     "--tlshostname", "mail.example.test", "--noclearauth", "--authmech", "PLAIN", *args],
                    input=USERS["bob@example.test"] + "\n", capture_output=True, text=True, timeout=60)

            r = sc("--localsieve", local, "--remotesieve", "bills", "--upload")
            self.assertEqual(r.returncode, 0, r.stdout + r.stderr)
            r = sc("--remotesieve", "bills", "--activate")
            self.assertEqual(r.returncode, 0, r.stdout + r.stderr)
            r = sc("--list")
            self.assertEqual(r.returncode, 0, r.stdout + r.stderr)
            self.assertIn('"bills" ACTIVE', r.stdout)
            down = os.path.join(tmp, "down.siv")
            r = sc("--remotesieve", "bills", "--localsieve", down, "--download")
            self.assertEqual(r.returncode, 0, r.stdout + r.stderr)
            with open(local, "rb") as a, open(down, "rb") as b:
                self.assertEqual(a.read().replace(b"\r\n", b"\n"), b.read().replace(b"\r\n", b"\n"))
            # A script that does not compile: sieve-connect reports the server's NO.
            broken = os.path.join(tmp, "broken.siv")
            with open(broken, "w") as f:
                f.write("fileinto \"x\";\n")
            r = sc("--localsieve", broken, "--remotesieve", "broken", "--upload")
            self.assertNotEqual(r.returncode, 0)
            self.assertRegex(r.stdout + r.stderr, r"1:1")
        finally:
            shutil.rmtree(tmp, ignore_errors=True)
        self.send_mail("bob@example.test", "invoice 42")
        self.assertEqual(self.subjects("bob@example.test", "Bills"), ["invoice 42"])


if __name__ == "__main__":
    unittest.main(verbosity=2)
