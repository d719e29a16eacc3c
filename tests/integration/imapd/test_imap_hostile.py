"""postern-imapd against a hostile client on loopback (issue 16), with
imap.processes = 2, while logged-in sessions in every process keep working.

The hostile client, on plaintext port 143 before STARTTLS or login, sends:
  * the crash line "a NOOP {9223372036854775807}x" and other literals in the
    middle of a line: BAD, the connection goes on (on the old code the process
    died with SIGSEGV and every session in it was dropped);
  * message-sized literals before login ({20971520}): NO [TOOBIG] without any
    "+"; 8192 octets (the limit) get "+", 8193 do not; a non-synchronising
    one over the limit gets BYE;
  * a NOOP every 0.2 s without ever logging in: cut off with BYE at
    imap.login_deadline (3 s here), though it never is idle.
After each attack the logged-in sessions (one in each process) answer NOOP and
FETCH correctly, and no process was replaced (same pids, no worker.exited).
Logged in, a literal larger than the process's input budget
(imap.max_buffered_input) gets NO [LIMIT] without "+"; a small one still works."""

import imaplib
import os
import re
import socket
import ssl
import subprocess
import time
import unittest

from postern_testlib import Instance, wait_for

MESSAGE = (b"From: Bob <bob@remote.test>\r\nTo: alice@example.test\r\nSubject: still here\r\n"
           b"Message-ID: <hostile-1@remote.test>\r\n\r\nThe body survives the attack.\r\n")


def children(pid):
    try:
        with open(f"/proc/{pid}/task/{pid}/children") as f:
            return sorted(int(x) for x in f.read().split())
    except FileNotFoundError:
        return []


def owner_of_connection(local_port, server_port):
    """The pid of the postern-imapd process holding the server side of a client's connection."""
    out = subprocess.run(["ss", "-Htnp", "state", "established", f"( sport = :{server_port} and dport = :{local_port} )"],
                         capture_output=True, text=True, check=True).stdout
    m = re.search(r"pid=(\d+)", out)
    return int(m.group(1)) if m else None


class Raw:
    """A plain TCP client speaking raw lines."""

    def __init__(self, port, timeout=10):
        self.sock = socket.create_connection(("127.0.0.1", port), timeout=timeout)
        self.buf = b""

    def line(self):
        while b"\n" not in self.buf:
            chunk = self.sock.recv(65536)
            if not chunk:
                raise EOFError("server closed the connection; unread: %r" % self.buf)
            self.buf += chunk
        line, _, self.buf = self.buf.partition(b"\n")
        return line.rstrip(b"\r")

    def send(self, data):
        self.sock.sendall(data)

    def closed_by_server(self, timeout=10):
        """True once the server has closed (EOF); lines sent before that are skipped."""
        self.sock.settimeout(timeout)
        try:
            while True:
                chunk = self.sock.recv(65536)
                if not chunk:
                    return True
                self.buf += chunk
        except (ConnectionResetError, BrokenPipeError):
            return True
        except socket.timeout:
            return False

    def close(self):
        self.sock.close()


class ImapHostile(unittest.TestCase):
    def setUp(self):
        self.inst = Instance(conf={"imap.processes": "2", "imap.login_deadline": "3s", "imap.max_buffered_input": "1M",
                                   "imap.max_connections_per_ip": "200", "imap.max_bad_commands": "50"})
        self.inst.start("postern-imapd")
        self.master = self.inst.procs["postern-imapd"].pid
        self.imap = self.inst.port("postern-imapd", "imap")
        self.imaps = self.inst.port("postern-imapd", "imaps")
        self.ctx = self.inst.client_tls_context()
        wait_for(lambda: len(children(self.master)) == 1, timeout=10, what="the worker process")
        wait_for(lambda: len(re.findall(r" info ready ", self.inst.log())) >= 2, timeout=10, what="both processes to be ready")
        self.pids = {self.master, *children(self.master)}
        self.raws = []
        self.sessions = self.sessions_in_every_process()

    def tearDown(self):
        for r in self.raws:
            r.close()
        for m, _ in self.sessions:
            try:
                m.shutdown()
            except OSError:
                pass
        self.inst.close()

    # -- helpers ---------------------------------------------------------------
    def sessions_in_every_process(self):
        """Logged-in sessions, at least one in each postern-imapd process, the INBOX
        selected and holding MESSAGE."""
        first = imaplib.IMAP4_SSL("127.0.0.1", self.imaps, ssl_context=self.ctx, timeout=30)
        first.login("alice@example.test", "alice-password-1")
        first.append("INBOX", None, None, MESSAGE)
        first.logout()
        found = {}
        for _ in range(40):
            m = imaplib.IMAP4_SSL("127.0.0.1", self.imaps, ssl_context=self.ctx, timeout=30)
            pid = wait_for(lambda: owner_of_connection(m.sock.getsockname()[1], self.imaps), timeout=10, what="the session's process")
            if pid in found:
                m.shutdown()
                continue
            m.login("alice@example.test", "alice-password-1")
            m.select("INBOX")
            found[pid] = m
            if set(found) == self.pids:
                return [(m, pid) for pid, m in found.items()]
        self.fail(f"no logged-in session reached every process {self.pids}: {set(found)}")

    def raw(self, want_pid=None):
        """A raw plaintext connection past its greeting (in process want_pid when given)."""
        for _ in range(40):
            r = Raw(self.imap)
            greeting = r.line()
            self.assertTrue(greeting.startswith(b"* OK [CAPABILITY"), greeting)
            r.greeting = greeting
            pid = wait_for(lambda: owner_of_connection(r.sock.getsockname()[1], self.imap), timeout=10, what="the raw connection's process")
            if want_pid is None or pid == want_pid:
                self.raws.append(r)
                return r, pid
            r.close()
        self.fail(f"no connection reached process {want_pid}")

    def assert_sessions_work(self):
        for m, pid in self.sessions:
            typ, data = m.noop()
            self.assertEqual(typ, "OK", f"NOOP in process {pid}: {data}")
            typ, data = m.fetch("1", "(BODY.PEEK[])")
            self.assertEqual(typ, "OK", f"FETCH in process {pid}: {data}")
            self.assertEqual(data[0][1], MESSAGE, f"FETCH in process {pid}")
        self.assertEqual(self.inst.procs["postern-imapd"].poll(), None, "the first postern-imapd process exited")
        self.assertEqual({self.master, *children(self.master)}, self.pids, "a postern-imapd process was replaced")
        self.assertNotIn("worker.exited", self.inst.log())

    # -- tests -------------------------------------------------------------------
    def test_crash_line_and_mid_line_literals_get_bad(self):
        lines = [b"a NOOP {9223372036854775807}x", b"b NOOP ~{9223372036854775807}x", b"c LOGIN {5}hello world",
                 b"d NOOP {18446744073709551616}y", b"e FETCH 1 ({5}x BODY)"]
        for pid in sorted(self.pids):  # in every process: one crash used to drop all its sessions
            r, _ = self.raw(pid)
            for line in lines:
                r.send(line + b"\r\n")
                tag = line.split(b" ")[0]
                self.assertEqual(r.line(), tag + b" BAD Syntax error: a literal must end its line ({n} CRLF)")
            r.send(b"z NOOP\r\n")
            self.assertEqual(r.line(), b"z OK NOOP completed")
        self.assert_sessions_work()

    def test_message_sized_literals_refused_before_login(self):
        for pid in sorted(self.pids):
            for _ in range(4):  # four of these grew the process by ~100 MB on the old code
                r, _ = self.raw(pid)
                self.assertIn(b" LITERAL- ", r.greeting)  # before login only small non-synchronising literals (RFC 7888)
                r.send(b"a LOGIN {20971520}\r\n")
                self.assertEqual(r.line(), b"a NO [TOOBIG] Literals before login are limited to 8192 octets")
            # The boundary: 8192 is a password-sized literal and gets "+", 8193 does not.
            r.send(b"b LOGIN {8193}\r\n")
            self.assertEqual(r.line(), b"b NO [TOOBIG] Literals before login are limited to 8192 octets")
            r.send(b"c LOGIN {8192}\r\n")
            self.assertEqual(r.line(), b"+ Ready for literal data")
            r.send(b"u" * 8192 + b" pw\r\n")
            self.assertEqual(r.line(), b"c NO [PRIVACYREQUIRED] Use STARTTLS first; logins are disabled on unencrypted connections")
            # A non-synchronising literal over the limit is already on its way: BYE, closed.
            r.send(b"d LOGIN {8193+}\r\n")
            self.assertEqual(r.line(), b"* BYE [TOOBIG] Literals before login are limited to 8192 octets")
            self.assertTrue(r.closed_by_server())
        self.assert_sessions_work()

    def test_slow_client_is_cut_off_at_the_login_deadline(self):
        r, _ = self.raw()
        start = time.monotonic()
        answers = []
        r.sock.settimeout(10)
        while time.monotonic() - start < 30:
            try:
                r.send(b"n NOOP\r\n")
                answers.append(r.line())
            except (EOFError, BrokenPipeError, ConnectionResetError):
                break
            if answers[-1].startswith(b"* BYE"):
                break
            time.sleep(0.2)  # the drip itself: each NOOP comes well within the idle timeout
        elapsed = time.monotonic() - start
        self.assertTrue(b"* BYE Login not completed in time" in answers, answers[-3:])
        self.assertGreaterEqual(elapsed, 2.5)   # imap.login_deadline = 3s, counted from connect
        self.assertLess(elapsed, 20)
        self.assertTrue(all(a in (b"n OK NOOP completed", b"* BYE Login not completed in time") for a in answers), answers)
        self.assertTrue(r.closed_by_server())
        # The logged-in sessions (in since setUp, more than 3 s ago) are not subject to it.
        self.assert_sessions_work()

    def test_literal_over_the_process_budget_gets_limit(self):
        m, _ = self.sessions[0]
        tag = m._new_tag()
        m.send(tag + b" APPEND INBOX {2000000}\r\n")
        line = m.readline()
        self.assertEqual(line.rstrip(b"\r\n"), tag + b" NO [LIMIT] Server busy: no room for this literal now, try again later")
        typ, data = m.append("INBOX", None, None, MESSAGE)  # a small one still goes through
        self.assertEqual(typ, "OK", data)
        self.assert_sessions_work()


if __name__ == "__main__":
    unittest.main()
