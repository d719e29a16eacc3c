"""postern-pop3d with real clients: Python poplib (995 and STLS on 110),
curl's POP3, fetchmail and getmail6 downloading into a local mailbox as a user
would; the maildrop lock across sessions; DELE only at QUIT; \\Seen visible
in the Maildir afterwards."""

import os
import poplib
import socket
import subprocess
import tempfile
import unittest

from postern_testlib import Instance, wait_for


def deliver(inst, to, subject, body="hello"):
    import smtplib
    with smtplib.SMTP("127.0.0.1", inst.port("postern-smtpd", "smtp"), timeout=30) as c:
        c.sendmail("sender@remote.test", [to], f"Subject: {subject}\r\n\r\n{body}\r\n.starts with a dot\r\n".encode())


class Pop3Clients(unittest.TestCase):
    def setUp(self):
        self.inst = Instance(users={"alice@example.test": "alice-password-1", "bob@example.test": "bob-password-2"})
        self.inst.start("postern-smtpd")
        self.inst.start("postern-pop3d")
        self.pop3 = self.inst.port("postern-pop3d", "pop3")
        self.pop3s = self.inst.port("postern-pop3d", "pop3s")
        self.ctx = self.inst.client_tls_context()
        self.cafile = os.path.join(self.inst.config_dir, "tls", "cert.pem")

    def tearDown(self):
        self.inst.close()

    def login(self, user="alice@example.test", password="alice-password-1"):
        c = poplib.POP3_SSL("127.0.0.1", self.pop3s, context=self.ctx, timeout=30)
        c.user(user)
        c.pass_(password)
        return c

    def test_poplib_full_session(self):
        for i in range(3):
            deliver(self.inst, "alice@example.test", f"m{i}", body=f"body {i}")
        c = self.login()
        count, size = c.stat()
        self.assertEqual(count, 3)
        listing = c.list()[1]
        sizes = [int(l.split()[1]) for l in listing]
        self.assertEqual(sum(sizes), size)
        for n in range(1, 4):
            resp, lines, octets = c.retr(n)
            # The octet count announced equals what was sent (CRLF sizes), dot-stuffing undone by poplib.
            self.assertEqual(sum(len(l) + 2 for l in lines), sizes[n - 1])
            self.assertIn(b".starts with a dot", lines)
        uidl = [l.split()[1] for l in c.uidl()[1]]
        self.assertEqual(len(set(uidl)), 3)
        top = c.top(2, 0)[1]
        self.assertEqual(top[-1], b"")          # header + the empty line, no body
        self.assertIn(b"Subject: m1", top)
        c.dele(1)
        c.quit()
        self.assertEqual(len(self.inst.messages("alice@example.test")), 2)
        # UIDLs are stable across sessions; RETR marked the rest \Seen (flag S) at QUIT.
        c = self.login()
        self.assertEqual([l.split()[1] for l in c.uidl()[1]], uidl[1:])
        c.quit()
        cur = os.path.join(self.inst.maildir("alice@example.test"), "cur")
        self.assertTrue(all(name.endswith(":2,S") for name in os.listdir(cur)))

    def test_dele_then_drop_deletes_nothing(self):
        deliver(self.inst, "alice@example.test", "keep me")
        c = self.login()
        c.dele(1)
        c.sock.shutdown(socket.SHUT_RDWR)  # connection dropped without QUIT
        c.sock.close()
        # The lock is released once the server has seen the drop.
        c2 = wait_for(lambda: self.try_login(), timeout=10, what="the maildrop lock to be released")
        self.assertEqual(c2.stat()[0], 1)
        c2.quit()

    def try_login(self):
        try:
            return self.login()
        except poplib.error_proto as e:
            if b"[IN-USE]" in e.args[0]:
                return None
            raise

    def test_hang_up_right_after_quit(self):
        """Regression: a client that sends QUIT and closes at once (as `posternctl check` does) while
        the UPDATE step runs must not crash the daemon."""
        import socket
        import ssl
        deliver(self.inst, "alice@example.test", "keep", body="keep me")
        for i in range(100):
            user, password = ("bob@example.test", "bob-password-2") if i % 2 else ("alice@example.test", "alice-password-1")
            raw = socket.create_connection(("127.0.0.1", self.pop3s), timeout=10)
            s = self.ctx.wrap_socket(raw)
            f = s.makefile("rb")
            f.readline()
            s.sendall(f"USER {user}\r\n".encode())
            f.readline()
            s.sendall(f"PASS {password}\r\n".encode())
            self.assertTrue(f.readline().startswith(b"+OK"))
            s.sendall(b"QUIT\r\n")
            try:
                s.unwrap()  # close_notify right behind QUIT, as Qt clients send it
            except (ssl.SSLError, OSError):
                pass
            s.close()
        self.assertIsNone(self.inst.procs["postern-pop3d"].poll(), self.inst._stderr("postern-pop3d"))
        c = self.login()
        self.assertEqual(c.stat()[0], 1)  # QUIT without DELE removed nothing
        c.quit()

    def test_maildrop_lock(self):
        deliver(self.inst, "alice@example.test", "x")
        c = self.login()
        with self.assertRaises(poplib.error_proto) as cm:
            self.login()
        self.assertIn(b"[IN-USE]", cm.exception.args[0])
        c.quit()
        self.login().quit()  # released after QUIT

    def test_stls_and_plaintext_refusal(self):
        c = poplib.POP3("127.0.0.1", self.pop3, timeout=30)
        caps = c.capa()
        self.assertIn("STLS", caps)
        self.assertNotIn("USER", caps)
        with self.assertRaises(poplib.error_proto) as cm:
            c.user("alice@example.test")
        self.assertIn(b"[AUTH]", cm.exception.args[0])
        c.stls(context=self.ctx)
        self.assertIn("USER", c.capa())
        c.user("alice@example.test")
        c.pass_("alice-password-1")
        c.quit()

    def test_wrong_password(self):
        with self.assertRaises(poplib.error_proto) as cm:
            self.login(password="wrong")
        self.assertIn(b"[AUTH]", cm.exception.args[0])

    def test_empty_maildrop(self):
        c = self.login("bob@example.test", "bob-password-2")
        self.assertEqual(c.stat(), (0, 0))
        self.assertEqual(c.list()[1], [])
        with self.assertRaises(poplib.error_proto):
            c.retr(1)
        c.quit()

    def test_curl(self):
        deliver(self.inst, "alice@example.test", "for curl", body="curl reads this")
        p = subprocess.run(["curl", "-sS", "--cacert", self.cafile, "--resolve", f"mail.example.test:{self.pop3s}:127.0.0.1",
                            "--user", "alice@example.test:alice-password-1", f"pop3s://mail.example.test:{self.pop3s}/1"],
                           capture_output=True, timeout=60)
        self.assertEqual(p.returncode, 0, p.stderr)
        self.assertIn(b"curl reads this", p.stdout)

    def test_fetchmail(self):
        for i in range(2):
            deliver(self.inst, "alice@example.test", f"fetch {i}")
        with tempfile.TemporaryDirectory() as d:
            mbox = os.path.join(d, "mbox")
            rc = os.path.join(d, "fetchmailrc")
            with open(rc, "w") as f:
                f.write(f"""set no bouncemail
poll 127.0.0.1 protocol pop3 port {self.pop3s}
  user "alice@example.test" password "alice-password-1" is "localuser"
  ssl sslcertck sslcertfile "{self.cafile}" sslcommonname "mail.example.test"
  mda "/bin/sh -c 'cat >> {mbox}'"
""")
            os.chmod(rc, 0o600)
            p = subprocess.run(["fetchmail", "-f", rc, "--nodetach", "--nosyslog", "-v"], capture_output=True, text=True, timeout=120,
                               env=dict(os.environ, HOME=d, FETCHMAILHOME=d))
            self.assertIn(p.returncode, (0,), p.stdout[-2000:] + p.stderr[-2000:])
            with open(mbox, "rb") as f:
                data = f.read()
            self.assertIn(b"Subject: fetch 0", data)
            self.assertIn(b"Subject: fetch 1", data)
        # fetchmail deletes what it fetched (its default).
        self.assertEqual(self.inst.messages("alice@example.test"), [])

    def test_getmail(self):
        deliver(self.inst, "alice@example.test", "getmail one")
        with tempfile.TemporaryDirectory() as d:
            maildir = os.path.join(d, "Maildir")
            for sub in ("cur", "new", "tmp"):
                os.makedirs(os.path.join(maildir, sub))
            rc = os.path.join(d, "getmailrc")
            with open(rc, "w") as f:
                f.write(f"""[retriever]
type = SimplePOP3SSLRetriever
server = localhost
port = {self.pop3s}
username = alice@example.test
password = alice-password-1
ca_certs = {self.cafile}

[destination]
type = Maildir
path = {maildir}/

[options]
delete = false
read_all = true
""")
            cmd = ["getmail", "--getmaildir", d, "--rcfile", rc]
            if os.geteuid() == 0:
                # getmail refuses to deliver as root, as a user's own tool should.
                for root, dirs, files in os.walk(d):
                    for name in [root] + [os.path.join(root, x) for x in dirs + files]:
                        os.chown(name, 65534, 65534)
                cmd = ["setpriv", "--reuid=nobody", "--regid=nogroup", "--clear-groups", "--"] + cmd
            p = subprocess.run(cmd, capture_output=True, text=True, timeout=120)
            self.assertEqual(p.returncode, 0, p.stdout[-2000:] + p.stderr[-2000:])
            got = os.listdir(os.path.join(maildir, "new"))
            self.assertEqual(len(got), 1)
            with open(os.path.join(maildir, "new", got[0]), "rb") as f:
                self.assertIn(b"Subject: getmail one", f.read())
        self.assertEqual(len(self.inst.messages("alice@example.test")), 1)  # delete = false


if __name__ == "__main__":
    unittest.main(verbosity=2)
