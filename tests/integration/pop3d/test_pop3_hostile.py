"""postern-pop3d against a hostile client on loopback (issue 16).

  * A client that never logs in but sends a command every 0.2 s (never idle)
    is cut off at pop3.login_deadline (3 s here) with -ERR; on the old code it
    held its connection slot for as long as it liked.
  * Over the wire, as in the session's unit tests: a NUL in USER or PASS and
    extra arguments (LIST 1 2, STAT x, UIDL 1 2, QUIT x) get -ERR and the
    session goes on; a logged-in session is not subject to the login deadline."""

import os
import poplib
import socket
import time
import unittest

from postern_testlib import Instance


class Pop3Hostile(unittest.TestCase):
    def setUp(self):
        # Many commands allowed before login, so that only the deadline can end the drip.
        self.inst = Instance(conf={"pop3.login_deadline": "3s", "pop3.max_commands_before_auth": "1000"})
        self.inst.start("postern-pop3d")
        self.pop3 = self.inst.port("postern-pop3d", "pop3")
        self.pop3s = self.inst.port("postern-pop3d", "pop3s")
        self.ctx = self.inst.client_tls_context()
        self.login().quit()  # creates the Maildir; then one message for STAT
        new = os.path.join(self.inst.maildir("alice@example.test"), "new")
        os.makedirs(new, exist_ok=True)
        with open(os.path.join(new, "1700000000.M1P1.test"), "wb") as f:
            f.write(b"Subject: one\r\n\r\nbody\r\n")

    def tearDown(self):
        self.inst.close()

    def login(self):
        c = poplib.POP3_SSL("127.0.0.1", self.pop3s, context=self.ctx, timeout=30)
        c.user("alice@example.test")
        c.pass_("alice-password-1")
        return c

    def test_drip_before_login_is_cut_off_at_the_deadline(self):
        s = socket.create_connection(("127.0.0.1", self.pop3), timeout=10)
        f = s.makefile("rb")
        self.assertTrue(f.readline().startswith(b"+OK"))
        start = time.monotonic()
        last = b""
        while time.monotonic() - start < 30:
            try:
                s.sendall(b"CAPA\r\n")
                last = f.readline()
                if not last.startswith(b"+OK"):
                    break
                while f.readline() not in (b".\r\n", b""):  # the capability list
                    pass
            except (BrokenPipeError, ConnectionResetError):
                break
            time.sleep(0.2)
        elapsed = time.monotonic() - start
        self.assertEqual(last, b"-ERR Login not completed in time, closing\r\n")
        self.assertGreaterEqual(elapsed, 2.5)
        self.assertLess(elapsed, 20)
        self.assertEqual(f.read(), b"")  # closed
        s.close()

    def test_nul_and_extra_arguments_get_err(self):
        c = poplib.POP3_SSL("127.0.0.1", self.pop3s, context=self.ctx, timeout=30)
        for line, answer in [(b"USER alice@example.test\x00x", b"-ERR Invalid character in command"),
                             (b"USER a b", b"-ERR Usage: USER name"),
                             (b"QUIT x", b"-ERR Usage: QUIT")]:
            c._putline(line)
            self.assertEqual(c._getline()[0], answer)
        c.user("alice@example.test")
        c._putline(b"PASS alice-password-1\x00")
        self.assertEqual(c._getline()[0], b"-ERR Invalid character in command")
        c.user("alice@example.test")
        c.pass_("alice-password-1")
        for line, answer in [(b"LIST 1 2", b"-ERR Usage: LIST [msg]"), (b"STAT x", b"-ERR Usage: STAT"),
                             (b"UIDL 1 2", b"-ERR Usage: UIDL [msg]"), (b"QUIT x", b"-ERR Usage: QUIT")]:
            c._putline(line)
            self.assertEqual(c._getline()[0], answer)
        # Logged in for longer than the login deadline: still served.
        time.sleep(3.5)
        self.assertEqual(c.stat()[0], 1)
        self.assertTrue(c.quit().startswith(b"+OK"))


if __name__ == "__main__":
    unittest.main()
