"""IMAP conformance of the real postern-imapd with several sessions (issue 17), over TLS
with raw sockets and Python's imaplib, mail delivered by the real postern-smtpd:

  * a delivery, an expunge and a flag change made elsewhere are reported at the end of
    the next command of every other session (RFC 9051 7.3.1, 7.5.1, 7.5.2) - in one
    process and across two processes (imap.processes = 2) - and never an EXPUNGE while
    answering FETCH/STORE/SEARCH by sequence number;
  * \\Recent (RFC 3501 2.3.2): exactly one session gets a new message as recent, also
    when the two sessions live in different processes (the claim is made in the
    folder's index, shared by all processes);
  * a keyword added by one session reaches the other with FLAGS/PERMANENTFLAGS first;
  * a folder deleted and created again is searched afresh (issue 17's sequence, with
    imaplib);
  * APPEND of a literal8 round-trips byte for byte through BINARY[].
Each test fails on the code before issue 17 (the change waits for NOOP, RECENT is 0
everywhere, FLAGS is not sent again, SEARCH answers from the old folder, or the
binary part comes back altered)."""

import imaplib
import re
import smtplib
import socket
import subprocess
import unittest

from postern_testlib import Instance, wait_for

USER, PASSWORD = "alice@example.test", "alice-password-1"


class Raw:
    """A logged-in TLS IMAP connection driven line by line; command() returns (untagged, tagged)."""

    def __init__(self, port, ctx):
        s = socket.create_connection(("127.0.0.1", port), timeout=30)
        self.sock = ctx.wrap_socket(s)
        self.file = self.sock.makefile("rb")
        self.n = 0
        assert self.file.readline().startswith(b"* OK")
        _, tagged = self.command(b"LOGIN " + USER.encode() + b" " + PASSWORD.encode())
        assert b" OK " in tagged, tagged

    def command(self, line):
        self.n += 1
        tag = b"c%d" % self.n
        self.sock.sendall(tag + b" " + line + b"\r\n")
        untagged = []
        while True:
            got = self.file.readline()
            if not got:
                raise ConnectionError(f"connection closed while waiting for {tag!r}")
            m = re.search(rb"\{(\d+)\}\r\n$", got)
            while m:  # literals in the response: read them whole
                got += self.file.read(int(m.group(1)))
                more = self.file.readline()
                got += more
                m = re.search(rb"\{(\d+)\}\r\n$", more)
            if got.startswith(tag + b" "):
                return [u.rstrip(b"\r\n") for u in untagged], got.rstrip(b"\r\n")
            untagged.append(got)

    def local_port(self):
        return self.sock.getsockname()[1]

    def close(self):
        try:
            self.sock.close()
        except OSError:
            pass


def owner_of_connection(local_port, server_port):
    """The pid of the postern-imapd process holding the server side of a client's connection."""
    out = subprocess.run(["ss", "-Htnp", "state", "established", f"( sport = :{server_port} and dport = :{local_port} )"],
                         capture_output=True, text=True, check=True).stdout
    m = re.search(r"pid=(\d+)", out)
    return int(m.group(1)) if m else None


class ImapConformance(unittest.TestCase):
    processes = "1"

    def setUp(self):
        self.inst = Instance(users={USER: PASSWORD}, conf={"imap.processes": self.processes})
        self.inst.start("postern-smtpd")
        self.inst.start("postern-imapd")
        self.imaps = self.inst.port("postern-imapd", "imaps")
        self.ctx = self.inst.client_tls_context()
        self.conns = []
        if self.processes != "1":
            wait_for(lambda: len(re.findall(r" info ready ", self.inst.log())) >= int(self.processes), timeout=10,
                     what="every process to be ready")

    def tearDown(self):
        for c in self.conns:
            c.close()
        self.inst.close()

    def deliver(self, msg):
        with smtplib.SMTP("127.0.0.1", self.inst.port("postern-smtpd", "smtp"), timeout=30) as c:
            c.sendmail("bob@remote.test", [USER], msg)

    def raw(self):
        c = Raw(self.imaps, self.ctx)
        self.conns.append(c)
        return c

    def two_sessions(self):
        """Two sessions on INBOX; with several processes, in two different ones."""
        for _ in range(40):
            a, b = self.raw(), self.raw()
            if self.processes == "1":
                return a, b
            pa = wait_for(lambda: owner_of_connection(a.local_port(), self.imaps), timeout=10, what="a's process")
            pb = wait_for(lambda: owner_of_connection(b.local_port(), self.imaps), timeout=10, what="b's process")
            if pa != pb:
                return a, b
            a.close()
            b.close()
        self.fail("every pair of connections landed in the same process")

    def test_changes_reach_the_other_session_at_the_end_of_its_commands(self):
        self.deliver(b"Subject: first\r\n\r\none\r\n")
        self.deliver(b"Subject: second\r\n\r\ntwo\r\n")
        a, b = self.two_sessions()
        self.assertIn(b"* 2 RECENT", a.command(b"SELECT INBOX")[0])  # a takes both
        self.assertIn(b"* 0 RECENT", b.command(b"SELECT INBOX")[0])
        # A delivery: b's very next command (a SEARCH) reports it and finds it.
        self.deliver(b"Subject: third needle\r\n\r\nthree\r\n")
        untagged, tagged = wait_for(lambda: (lambda r: r if b"* 3 EXISTS" in r[0] else None)(b.command(b"SEARCH SUBJECT needle")),
                                    timeout=10, what="the delivery to be reported")
        self.assertEqual(untagged, [b"* 3 EXISTS", b"* 1 RECENT", b"* SEARCH 3"])
        self.assertTrue(tagged.endswith(b" OK SEARCH completed"))
        # Exactly one session has the new message as \Recent: b saw it first.
        self.assertEqual(a.command(b"SEARCH RECENT")[0], [b"* 3 EXISTS", b"* 2 RECENT", b"* SEARCH 1 2"])
        self.assertEqual(b.command(b"SEARCH RECENT")[0], [b"* SEARCH 3"])
        # A flag change by a: reported to b at the end of its next command.
        self.assertEqual(a.command(b"STORE 1 +FLAGS (\\Flagged)")[0], [b"* 1 FETCH (FLAGS (\\Flagged \\Recent))"])
        self.assertEqual(b.command(b"CHECK")[0], [b"* 1 FETCH (FLAGS (\\Flagged) UID 1)"])
        # An expunge by a: not while b's FETCH by sequence number answers, at the next command.
        a.command(b"STORE 2 +FLAGS.SILENT (\\Deleted)")
        self.assertEqual(a.command(b"EXPUNGE")[0], [b"* 2 EXPUNGE"])
        untagged, tagged = b.command(b"FETCH 1:3 (UID)")
        self.assertEqual(untagged, [b"* 1 FETCH (UID 1)", b"* 3 FETCH (UID 3)"])
        self.assertIn(b"NO [EXPUNGEISSUED]", tagged)
        self.assertEqual(b.command(b"NOOP")[0], [b"* 2 EXPUNGE"])
        self.assertEqual(b.command(b"UID SEARCH ALL")[0], [b"* SEARCH 1 3"])

    def test_new_keyword_and_copy_reach_the_other_session(self):
        a, b = self.two_sessions()
        _, tagged = a.command(b'APPEND INBOX (\\Seen $Label1) "07-Feb-1994 21:52:25 +0000" {14+}\r\nSubject: c\r\n\r\n')
        self.assertIn(b" OK [APPENDUID ", tagged)
        self.assertIn(b" OK ", b.command(b"SELECT Archive")[1])
        a.command(b"SELECT INBOX")
        untagged, tagged = a.command(b"STORE 1 +FLAGS ($Label2)")
        self.assertTrue(untagged[0].startswith(b"* FLAGS (") and b"$Label1 $Label2" in untagged[0], untagged)
        self.assertIn(b"$Label2 \\*)] ", untagged[1])
        date = re.search(rb'INTERNALDATE "[^"]+"', a.command(b"FETCH 1 (INTERNALDATE)")[0][0]).group(0)
        self.assertIn(b" OK [COPYUID ", a.command(b"COPY 1 Archive")[1])
        untagged, _ = b.command(b"NOOP")
        self.assertTrue(untagged[0].startswith(b"* FLAGS (") and b"$Label1 $Label2)" in untagged[0], untagged)
        self.assertIn(b"* 1 EXISTS", untagged)
        # The copy keeps the flags and the INTERNALDATE (RFC 9051 6.4.7); it is \Recent for b.
        self.assertEqual(b.command(b"FETCH 1 (FLAGS INTERNALDATE)")[0], [b"* 1 FETCH (FLAGS (\\Seen $Label1 $Label2 \\Recent) " + date + b")"])

    def test_recreated_folder_with_imaplib(self):
        m = imaplib.IMAP4_SSL("127.0.0.1", self.imaps, ssl_context=self.ctx, timeout=30)
        try:
            m.login(USER, PASSWORD)
            self.assertEqual(m.create("Recreated")[0], "OK")
            self.assertEqual(m.append("Recreated", None, None, b"Subject: alpha one\r\n\r\nbody\r\n")[0], "OK")
            typ, _ = m.select("Recreated")
            validity = m.untagged_responses.get("UIDVALIDITY")
            self.assertEqual(m.search(None, "SUBJECT", "alpha"), ("OK", [b"1"]))
            m.close()
            self.assertEqual(m.delete("Recreated")[0], "OK")
            self.assertEqual(m.create("Recreated")[0], "OK")
            self.assertEqual(m.append("Recreated", None, None, b"Subject: hello beautiful world\r\n\r\nbody\r\n")[0], "OK")
            m.select("Recreated")
            self.assertNotEqual(m.untagged_responses.get("UIDVALIDITY"), validity)
            self.assertEqual(m.search(None, "SUBJECT", "hello"), ("OK", [b"1"]))
            self.assertEqual(m.search(None, "SUBJECT", "alpha"), ("OK", [b""]))
            typ, data = m.fetch("1", "(BODY.PEEK[HEADER.FIELDS (SUBJECT)])")
            self.assertEqual(data[0][1], b"Subject: hello beautiful world\r\n\r\n")
        finally:
            m.logout()

    def test_literal8_append_round_trips(self):
        binary = bytes(range(256)) + b"\n\r\n\r\x00end\x00"
        msg = (b"Mime-Version: 1.0\r\nContent-Type: multipart/mixed; boundary=\"z\"\r\n\r\n--z\r\n"
               b"Content-Type: application/octet-stream\r\nContent-Transfer-Encoding: binary\r\n\r\n" + binary + b"\r\n--z--\r\n")
        c = self.raw()
        c.command(b"SELECT INBOX")
        _, tagged = c.command(b"APPEND INBOX ~{%d+}\r\n" % len(msg) + msg)
        self.assertIn(b" OK [APPENDUID ", tagged)
        untagged, _ = c.command(b"FETCH 1 (BINARY.SIZE[1] BINARY.PEEK[1])")
        head = b"* 1 FETCH (BINARY.SIZE[1] %d BINARY[1] ~{%d}\r\n" % (len(binary), len(binary))
        self.assertTrue(untagged[0].startswith(head), untagged[0][:80])
        self.assertEqual(untagged[0][len(head):len(head) + len(binary)], binary)
        untagged, _ = c.command(b"FETCH 1 (BODY.PEEK[])")
        self.assertNotIn(b"\x00", untagged[0])  # a literal never carries NUL (RFC 9051 4.3)


class ImapConformanceTwoProcesses(ImapConformance):
    """The same with imap.processes = 2 and the two sessions in different processes."""
    processes = "2"


if __name__ == "__main__":
    unittest.main(verbosity=2)
