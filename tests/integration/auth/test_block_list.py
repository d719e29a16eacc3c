"""The temporary block list (appliance/core/block_list.h) against the real daemons: an address
whose failed logins reach auth.block_after_failures (3 here) is put on the list shared by
postern-imapd, -smtpd and -pop3d; each refuses its next connections at accept with a clear
line before anything else (IMAP "* BYE", SMTP 554 5.7.1, POP3 -ERR; the implicit-TLS port
closes without a handshake) and logs connection.blocked; other addresses are served.
`posternctl block list|add|remove` show and change the list (durations 1 minute .. 30 days,
limit and limit+1). Sessions already open when their address gets blocked are closed at
once (within the daemons' 1 s look at the list): a logged-in IMAP session gets "* BYE" without
sending anything, an SMTP session "421 4.7.1", and sessions from other addresses go on.
Expiry is tested on an injected clock in tst_block_list (no sleeps here)."""

import imaplib
import socket
import ssl
import unittest

from postern_testlib import Instance

GUESSER = "127.0.0.5"
OTHER = "127.0.0.6"


class ImapFrom(imaplib.IMAP4_SSL):
    def __init__(self, source, port, context):
        self._source = source
        super().__init__("127.0.0.1", port, ssl_context=context, timeout=30)

    def _create_socket(self, timeout):
        sock = socket.create_connection((self.host, self.port), timeout, source_address=(self._source, 0))
        return self.ssl_context.wrap_socket(sock, server_hostname=self.host)


def first_line(source, port):
    """The server's first line to a plain connection from `source`, and whether it then closed."""
    with socket.create_connection(("127.0.0.1", port), 10, source_address=(source, 0)) as s:
        f = s.makefile("rb")
        line = f.readline()
        s.settimeout(0.5)
        try:
            closed = f.read(1) == b""
        except (socket.timeout, TimeoutError):
            closed = False
        return line.decode(errors="replace").strip(), closed


class BlockList(unittest.TestCase):
    def setUp(self):
        self.inst = Instance(conf={"auth.block_after_failures": "3", "auth.block_duration": "10m"})
        for p in ("postern-imapd", "postern-smtpd", "postern-pop3d"):
            self.inst.start(p)
        self.imap = self.inst.port("postern-imapd", "imap")
        self.imaps = self.inst.port("postern-imapd", "imaps")
        self.smtp = self.inst.port("postern-smtpd", "smtp")
        self.pop3 = self.inst.port("postern-pop3d", "pop3")

    def tearDown(self):
        self.inst.close()

    def test_failed_logins_block_then_admin_unblocks(self):
        ctx = self.inst.client_tls_context()
        m = ImapFrom(GUESSER, self.imaps, ctx)
        for i in range(2):
            with self.assertRaises(imaplib.IMAP4.error):
                m.login("alice@example.test", f"wrong-{i}")
        self.assertTrue(first_line(GUESSER, self.imap)[0].startswith("* OK"))  # two failures: not yet
        with self.assertRaises(imaplib.IMAP4.error):
            m.login("alice@example.test", "wrong-3")  # the third: blocked from now on
        m.shutdown()

        self.assertEqual(first_line(GUESSER, self.imap), ("* BYE Your address is blocked for now (too many failed logins)", True))
        self.assertEqual(first_line(GUESSER, self.smtp), ("554 5.7.1 Your address is blocked for now (too many failed logins)", True))
        self.assertEqual(first_line(GUESSER, self.pop3), ("-ERR Your address is blocked for now (too many failed logins)", True))
        with self.assertRaises((ssl.SSLError, OSError)):
            ImapFrom(GUESSER, self.imaps, ctx)  # no handshake on the implicit-TLS port
        self.assertTrue(first_line(OTHER, self.imap)[0].startswith("* OK"))
        self.assertTrue(first_line(OTHER, self.smtp)[0].startswith("220"))
        log = self.inst.log()
        self.assertIn(f"auth.blocked remote={GUESSER} entry={GUESSER}/32 failures=3", log)
        self.assertIn(f"connection.blocked listener=smtp remote={GUESSER} entry={GUESSER}/32 source=auth", log)

        listed = self.inst.ctl("block", "list").stdout
        self.assertRegex(listed, rf"(?m)^{GUESSER}/32  until \S+  auth$")
        self.assertIn(f"unblocked {GUESSER}/32", self.inst.ctl("block", "remove", GUESSER).stdout)
        self.assertTrue(first_line(GUESSER, self.imap)[0].startswith("* OK"))
        self.assertNotEqual(self.inst.ctl("block", "remove", GUESSER, check=False).returncode, 0)  # not there any more

    def test_open_sessions_closed_when_blocked(self):
        password = self.inst.passwords["alice@example.test"]
        ctx = self.inst.client_tls_context()
        m = ImapFrom(GUESSER, self.imaps, ctx)
        m.login("alice@example.test", password)
        m.select("INBOX")
        other = ImapFrom(OTHER, self.imaps, ctx)
        other.login("alice@example.test", password)
        smtp = socket.create_connection(("127.0.0.1", self.smtp), 10, source_address=(GUESSER, 0))
        sf = smtp.makefile("rb")
        self.assertTrue(sf.readline().startswith(b"220"))
        smtp.sendall(b"EHLO client.test\r\n")
        while not sf.readline().startswith(b"250 "):
            pass

        self.inst.ctl("block", "add", GUESSER, "--for", "5m")
        # Nothing sent by the clients: the servers close them on their own.
        m.sock.settimeout(10)
        self.assertEqual(m.readline(), b"* BYE Your address is blocked for now (too many failed logins)\r\n")
        self.assertEqual(m.readline(), b"")  # closed
        smtp.settimeout(10)
        self.assertEqual(sf.readline(), b"421 4.7.1 Your address is blocked for now (too many failed logins), closing connection\r\n")
        self.assertEqual(sf.readline(), b"")
        smtp.close()
        self.assertEqual(other.noop()[0], "OK")  # another address: untouched
        other.logout()
        self.assertRegex(self.inst.log(), rf"connection.blocked_closed listener=imaps remote={GUESSER} entry={GUESSER}/32 source=admin")

    def test_admin_add_limits(self):
        # Durations: 1 minute and 30 days are the limits; one second beyond either is refused.
        for dur, ok in (("59s", False), ("1m", True), ("30d", True), ("2592001s", False)):
            r = self.inst.ctl("block", "add", OTHER, "--for", dur, check=False)
            self.assertEqual(r.returncode == 0, ok, f"{dur}: {r.stdout}{r.stderr}")
            if not ok:
                self.assertIn("between 1 minute and 30 days", r.stderr)
        self.assertNotEqual(self.inst.ctl("block", "add", "not-an-address", check=False).returncode, 0)
        self.assertEqual(first_line(OTHER, self.imap)[0], "* BYE Your address is blocked for now (too many failed logins)")
        self.assertTrue(first_line(GUESSER, self.imap)[0].startswith("* OK"))
        # A subnet covers its addresses; the list shows it once, however often it is added.
        self.inst.ctl("block", "add", "127.0.0.0/29", "--for", "5m")
        self.inst.ctl("block", "add", "127.0.0.4/29", "--for", "6m")
        self.assertEqual(self.inst.ctl("block", "list").stdout.count("127.0.0.0/29"), 1)
        self.assertTrue(first_line(GUESSER, self.smtp)[0].startswith("554 5.7.1"))


if __name__ == "__main__":
    unittest.main(verbosity=2)
