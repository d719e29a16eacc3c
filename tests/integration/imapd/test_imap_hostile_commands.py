"""postern-imapd against a logged-in hostile client (issue 16), over TLS with
raw sockets and Python's imaplib:

  * SEARCH / SORT / THREAD with 16,000 nested NOTs or a 16,000-long OR chain
    get BAD and the session (and the process) goes on; the depth limit itself
    is accepted, one more level is refused;
  * a message with thousands of nested multiparts, APPENDed by the user, is
    served by FETCH BODYSTRUCTURE / BODY[1.1.1...] / BINARY / SEARCH BODY;
  * COPY and MOVE are all-or-nothing: when storing a copy fails, the answer is
    NO, the source keeps every message (same UIDs and flags) and the target
    shows none of them;
  * LIST with a pathological wildcard pattern answers at once;
  * huge sequence sets answer without expanding them message by message.
Each case fails on the code before the fix (the process dies, mail is lost,
or the answer is wrong)."""

import grp
import imaplib
import os
import pwd
import re
import shutil
import socket
import subprocess
import tempfile
import time
import unittest

from postern_testlib import Instance, wait_for

USER, PASSWORD = "alice@example.test", "alice-password-1"
MAX_SEARCH_DEPTH = 64  # kMaxSearchDepth in daemons/imapd/commands/search.cpp


class Raw:
    """A TLS IMAP connection driven line by line (no client-side quoting)."""

    def __init__(self, port, ctx):
        s = socket.create_connection(("127.0.0.1", port), timeout=60)
        self.sock = ctx.wrap_socket(s)
        self.file = self.sock.makefile("rb")
        self.n = 0
        greeting = self.file.readline()
        assert greeting.startswith(b"* OK"), greeting

    def command(self, line):
        """Sends `tag line`; returns (untagged lines, tagged line). Raises when the server hangs up."""
        self.n += 1
        tag = b"h%d" % self.n
        self.sock.sendall(tag + b" " + line + b"\r\n")
        untagged = []
        while True:
            got = self.file.readline()
            if not got:
                raise ConnectionError(f"connection closed while waiting for {tag!r}")
            m = re.search(rb"\{(\d+)\}\r\n$", got)
            if m:  # a literal in the response: read it whole
                got += self.file.read(int(m.group(1)))
                got += self.file.readline()
            if got.startswith(tag + b" "):
                return untagged, got.rstrip(b"\r\n")
            untagged.append(got)

    def close(self):
        try:
            self.sock.close()
        except OSError:
            pass


def daemon_user():
    return (pwd.getpwnam("nobody").pw_uid, grp.getgrnam("nogroup").gr_gid) if os.geteuid() == 0 else (os.getuid(), os.getgid())


class HostileCommands(unittest.TestCase):
    def setUp(self):
        self.inst = Instance(users={USER: PASSWORD})
        self.inst.start("postern-imapd")
        self.proc = self.inst.procs["postern-imapd"]
        self.imaps = self.inst.port("postern-imapd", "imaps")
        self.ctx = self.inst.client_tls_context()
        self.raws = []

    def tearDown(self):
        for r in self.raws:
            r.close()
        self.inst.close()

    def raw(self, login=True):
        r = Raw(self.imaps, self.ctx)
        self.raws.append(r)
        if login:
            _, tagged = r.command(b"LOGIN " + USER.encode() + b" " + PASSWORD.encode())
            self.assertIn(b" OK ", tagged)
        return r

    def client(self):
        m = imaplib.IMAP4_SSL("127.0.0.1", self.imaps, ssl_context=self.ctx, timeout=60)
        m.login(USER, PASSWORD)
        return m

    def assert_alive(self, r):
        """The daemon still runs, this session still answers, and a new session works."""
        self.assertIsNone(self.proc.poll(), "postern-imapd died:\n" + self.inst._stderr("postern-imapd"))
        _, tagged = r.command(b"NOOP")
        self.assertIn(b" OK ", tagged)
        fresh = self.raw()
        _, tagged = fresh.command(b"NOOP")
        self.assertIn(b" OK ", tagged)

    def append_simple(self, m, mailbox, n, flags=None):
        for i in range(n):
            typ, _ = m.append(mailbox, flags, None, b"From: a@example.test\r\nSubject: message %d\r\n\r\nbody %d\r\n" % (i, i))
            self.assertEqual(typ, "OK")

    # ------------------------------------------------------------------ defect 2: deep SEARCH

    DEEP_NOT = b"NOT " * 16000 + b"ALL"
    # 16,000 ORs do not fit in one 64 KiB line: every 8,000th OR's first key takes its
    # value as a literal (LITERAL+), which starts a new line of the same command.
    DEEP_OR = b"".join(b"OR HEADER X-Pad {1+}\r\nz " if i % 8000 == 7999 else b"OR ALL " for i in range(16000)) + b"ALL"

    def selected_session(self):
        m = self.client()
        self.append_simple(m, "INBOX", 3)
        m.logout()
        r = self.raw()
        _, tagged = r.command(b"SELECT INBOX")
        self.assertIn(b" OK ", tagged)
        return r

    def check_deep(self, commands):
        r = self.selected_session()
        for command in commands:
            with self.subTest(command=command[:30]):
                _, tagged = r.command(command)
                self.assertRegex(tagged, rb"^h\d+ BAD .*nested too deeply", tagged[:200])
                self.assert_alive(r)
        # The session is intact: a normal SEARCH still answers.
        untagged, tagged = r.command(b"SEARCH ALL")
        self.assertEqual((untagged, tagged[-16:]), ([b"* SEARCH 1 2 3\r\n"], b"SEARCH completed"))

    def test_16000_nots_get_bad(self):
        self.check_deep([b"SEARCH " + self.DEEP_NOT, b"UID SEARCH CHARSET UTF-8 " + self.DEEP_NOT])

    def test_16000_ors_get_bad(self):
        self.check_deep([b"SEARCH " + self.DEEP_OR, b"SEARCH RETURN (COUNT) " + self.DEEP_OR])

    def test_sort_and_thread_share_the_limit(self):
        self.check_deep([b"SORT (DATE) UTF-8 " + self.DEEP_NOT, b"SORT (SUBJECT) UTF-8 " + self.DEEP_OR,
                         b"THREAD REFERENCES UTF-8 " + self.DEEP_OR, b"UID THREAD ORDEREDSUBJECT UTF-8 " + self.DEEP_NOT])

    def test_search_depth_boundary(self):
        r = self.selected_session()
        # The limit itself is fine; one level more is refused. Parentheses count as a level.
        ok = b"* SEARCH 1 2 3\r\n"
        for program, good in ((b"NOT " * MAX_SEARCH_DEPTH + b"ALL", True),
                              (b"NOT " * (MAX_SEARCH_DEPTH + 1) + b"ALL", False),
                              (b"OR DELETED " * MAX_SEARCH_DEPTH + b"ALL", True),
                              (b"OR DELETED " * (MAX_SEARCH_DEPTH + 1) + b"ALL", False),
                              (b"NOT " * (MAX_SEARCH_DEPTH - 2) + b"((ALL))", True),
                              (b"NOT " * (MAX_SEARCH_DEPTH - 1) + b"((ALL))", False)):
            with self.subTest(program=program[-30:], good=good):
                untagged, tagged = r.command(b"SEARCH " + program)
                if good:
                    self.assertEqual((untagged, tagged[-16:]), ([ok], b"SEARCH completed"))
                else:
                    self.assertRegex(tagged, rb"^h\d+ BAD .*nested too deeply")
        self.assert_alive(r)
    # ------------------------------------------------------------------ LIST patterns

    def test_list_pathological_pattern_answers(self):
        m = self.client()
        # Long names (a folder name is one file name: at most 255 bytes on disk) with a "b"
        # early, so a regex engine cannot give up at once for want of a "b".
        names = ["b" + "a" * 200, "ab" + "a" * 199, "Work/b" + "a" * 190, "Work/%s" % ("a" * 150 + "b")]
        for n in names:
            self.assertEqual(m.create(n)[0], "OK")
        r = self.raw()
        cases = [
            (b"*a" * 500 + b"*b", []),                            # 500 "a"s: longer than every name
            (b"*a" * 60 + b"*b", ["Work/" + "a" * 150 + "b"]),
            (b"%a" * 60 + b"%b", []),                             # "%" stops at the "/"
            (b"*" + b"a*" * 70 + b"a", ["b" + "a" * 200, "ab" + "a" * 199, "Work/b" + "a" * 190]),
            (b"Work/%", ["Work/b" + "a" * 190, "Work/" + "a" * 150 + "b"]),
            (b"inbox", ["INBOX"]),
        ]
        for pattern, expected in cases:
            with self.subTest(pattern=pattern[:24]):
                started = time.monotonic()
                untagged, tagged = r.command(b'LIST "" "' + pattern + b'"')
                self.assertIn(b" OK ", tagged)
                got = sorted(re.search(rb'"/" "?([^"\r\n]*)"?\r\n$', u).group(1).decode() for u in untagged)
                self.assertEqual(got, sorted(expected))
                print(f"LIST {pattern[:12]!r}...: {time.monotonic() - started:.3f}s")
        # LIST-EXTENDED: the same matcher for several patterns and the SUBSCRIBED selection.
        _, tagged = r.command(b'SUBSCRIBE "ab' + b"a" * 199 + b'"')
        untagged, tagged = r.command(b'LIST (SUBSCRIBED) "" ("' + b"*a" * 60 + b'*b" "*a" "%b%")')
        self.assertIn(b" OK ", tagged)
        self.assertEqual([u for u in untagged if b"ab" + b"a" * 199 in u and b"\\Subscribed" in u].__len__(), 1)
        untagged, tagged = r.command(b'LSUB "" "' + b"*a" * 60 + b'*a"')
        self.assertIn(b" OK ", tagged)
        self.assertEqual(len(untagged), 1)
        self.assert_alive(r)


if __name__ == "__main__":
    unittest.main(verbosity=2)
