"""The login throttle (daemons/common/auth_throttle.h) against the real daemons,
with real clients over TLS (imaplib, poplib, smtplib) from several loopback
source addresses, one shared table for postern-imapd (two processes),
postern-pop3d and postern-smtpd, and small delays (auth.failure_delay 400 ms):

  * ten parallel guesses from one address: at most three are checked, the
    others are refused at once with a temporary failure (NO [UNAVAILABLE],
    -ERR [SYS/TEMP], 454 4.7.0), on every protocol;
  * hanging up early gains nothing: a guesser that hangs up while it waits
    gets no password checked, the attempt counts as a failure, and its next
    attempt (with the right password) still waits before the check;
  * the account side: after guesses against carol from address A, an address
    C that never failed waits before its check (the right password, so the
    time is all before the check), while carol from B, where she logged in
    before, gets in at once, and A's next attempt waits too.
Each case uses its own addresses and account; the throttle is shared.
"""

import imaplib
import poplib
import smtplib
import socket
import ssl
import threading
import time
import unittest

from postern_testlib import Instance, wait_for

BASE = 0.4  # auth.failure_delay
DOMAIN = "example.test"
USERS = {f"{name}@{DOMAIN}": f"{name}-password-1" for name in ("alice", "victim1", "victim2", "victim3", "carol", "dave")}


class ImapFrom(imaplib.IMAP4_SSL):
    """imaplib over TLS from a chosen loopback source address."""

    def __init__(self, source, port, context):
        self._source = source
        super().__init__("127.0.0.1", port, ssl_context=context, timeout=30)

    def _create_socket(self, timeout):
        sock = socket.create_connection((self.host, self.port), timeout, source_address=(self._source, 0))
        return self.ssl_context.wrap_socket(sock, server_hostname=self.host)


class Pop3From(poplib.POP3_SSL):
    def __init__(self, source, port, context):
        self._source = source
        super().__init__("127.0.0.1", port, context=context, timeout=30)

    def _create_socket(self, timeout):
        sock = socket.create_connection((self.host, self.port), timeout, source_address=(self._source, 0))
        return self.context.wrap_socket(sock, server_hostname=self.host)


def smtp_from(source, port, context):
    c = smtplib.SMTP_SSL("127.0.0.1", port, context=context, timeout=30, source_address=(source, 0))
    c.ehlo("client.test")
    return c


def smtp_login(c, user, password):
    """AUTH PLAIN once (smtplib's login() would try LOGIN next after a failure: a second attempt)."""
    c.user, c.password = user, password
    return c.auth("PLAIN", c.auth_plain)


def timed(fn):
    t = time.monotonic()
    try:
        return fn(), time.monotonic() - t
    except Exception as exc:  # noqa: BLE001 - the caller looks at the answer
        return exc, time.monotonic() - t


class LoginThrottle(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.inst = Instance(domain=DOMAIN, users=USERS,
                            conf={"auth.failure_delay": f"{int(BASE * 1000)}ms", "auth.failure_delay_max": "3200ms",
                                  "imap.processes": "2"})
        for program in ("postern-imapd", "postern-pop3d", "postern-smtpd"):
            cls.inst.start(program)
        cls.imaps = cls.inst.port("postern-imapd", "imaps")
        cls.pop3s = cls.inst.port("postern-pop3d", "pop3s")
        cls.smtps = cls.inst.port("postern-smtpd", "submissions")
        cls.ctx = cls.inst.client_tls_context()

    @classmethod
    def tearDownClass(cls):
        cls.inst.close()

    def log_lines(self, *needles):
        return [line for line in self.inst.log().splitlines() if all(n in line for n in needles)]

    # -- attempts in flight ----------------------------------------------------------
    def parallel(self, source, connect, login, n=10):
        """n connections from `source`, then n logins sent at the same moment; returns (answer, seconds) each."""
        conns = [connect(source) for _ in range(n)]
        barrier = threading.Barrier(n)
        results = [None] * n

        def attempt(i):
            barrier.wait()
            results[i] = timed(lambda: login(conns[i]))

        threads = [threading.Thread(target=attempt, args=(i,)) for i in range(n)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(60)
        for c in conns:
            try:
                c.sock.close()
            except (OSError, AttributeError):
                pass
        return results

    def check_parallel(self, results, temporary, failed):
        texts = [str(r) for r, _ in results]
        refused = [(text, s) for (r, s), text in zip(results, texts) if temporary in text]
        checked = [text for text in texts if failed in text]
        self.assertEqual(len(refused) + len(checked), len(results), texts)
        self.assertLessEqual(len(checked), 3, texts)
        self.assertGreaterEqual(len(refused), 7, texts)
        for text, seconds in refused:  # refused at once: no check, no wait
            self.assertLess(seconds, BASE, text)

    def test_parallel_guesses_imap(self):
        results = self.parallel("127.0.0.31", lambda src: ImapFrom(src, self.imaps, self.ctx),
                                lambda c: c.login("victim1@example.test", "guess"))
        self.check_parallel(results, "[UNAVAILABLE]", "[AUTHENTICATIONFAILED]")
        self.assertLessEqual(len(self.log_lines("remote=127.0.0.31", "reason=\"bad password\"")), 3)

    def test_parallel_guesses_pop3(self):
        def login(c):
            c.user("victim1@example.test")
            return c.pass_("guess")

        results = self.parallel("127.0.0.32", lambda src: Pop3From(src, self.pop3s, self.ctx), login)
        self.check_parallel(results, "[SYS/TEMP]", "[AUTH]")

    def test_parallel_guesses_smtp(self):
        results = self.parallel("127.0.0.33", lambda src: smtp_from(src, self.smtps, self.ctx),
                                lambda c: smtp_login(c, "victim1@example.test", "guess"))
        self.check_parallel(results, "4.7.0", "5.7.8")
        self.assertTrue(any("454" in str(r) for r, _ in results))

    # -- hanging up ------------------------------------------------------------------
    def test_early_hangup_gains_nothing(self):
        src, user = "127.0.0.41", "victim2@example.test"
        p = Pop3From(src, self.pop3s, self.ctx)
        p.user(user)
        with self.assertRaises(poplib.error_proto):
            p.pass_("first-guess")  # checked; the answer waits failure_delay
        p.quit()
        # Five guesses that do not wait for their answers: each hangs up 50 ms after PASS.
        for i in range(5):
            g = Pop3From(src, self.pop3s, self.ctx)
            g.user(user)
            g._putcmd(f"PASS hangup-guess-{i}")
            time.sleep(0.05)
            g.sock.close()
        # The first of them waited (the address has a failure) and was dropped unchecked at
        # the end of its wait; the others found it still in flight and were refused.
        wait_for(lambda: self.log_lines("remote=127.0.0.41", "client gone before the check"), timeout=10,
                 what="the abandoned attempt in the log")
        checked = self.log_lines("remote=127.0.0.41", "reason=\"bad password\"")
        self.assertEqual(len(checked), 1, "\n".join(checked))
        # The hang-up counted: the next attempt, with the right password, still waits before its
        # check (2 failures or more: 2 x failure_delay; a success is answered as soon as it is
        # checked). While an abandoned attempt still waits, the address is busy: try again.
        deadline = time.monotonic() + 20
        while True:
            c = Pop3From(src, self.pop3s, self.ctx)
            c.user(user)
            answer, seconds = timed(lambda: c.pass_(USERS[user]))
            if "[SYS/TEMP]" not in str(answer) or time.monotonic() > deadline:
                break
            c.sock.close()
            time.sleep(0.1)
        self.assertTrue(str(answer).startswith("b'+OK"), answer)
        self.assertGreaterEqual(seconds, 2 * BASE - 0.05)
        c.quit()

    # -- the account side and the owner ------------------------------------------------
    def test_guesses_elsewhere_do_not_lock_the_owner_out(self):
        user, password = "carol@example.test", USERS["carol@example.test"]
        home, attacker, fresh = "127.0.0.51", "127.0.0.52", "127.0.0.53"

        def imap_login(src, pw):
            m = ImapFrom(src, self.imaps, self.ctx)
            answer, seconds = timed(lambda: m.login(user, pw))
            try:
                m.logout()
            except (imaplib.IMAP4.error, OSError):
                pass
            return answer, seconds

        answer, _ = imap_login(home, password)  # carol at home: her address becomes known good
        self.assertEqual(answer[0], "OK", answer)
        for i in range(2):  # an attacker guesses over POP3 (the table is shared by the daemons)
            p = Pop3From(attacker, self.pop3s, self.ctx)
            p.user(user)
            with self.assertRaises(poplib.error_proto):
                p.pass_(f"guess-{i}")
            p.quit()
        # Carol from home: at once (well under failure_delay).
        answer, seconds = imap_login(home, password)
        self.assertEqual(answer[0], "OK", answer)
        self.assertLess(seconds, BASE / 2)
        # An address that never failed, unknown to carol's account: the account's delay comes
        # before the check (2 failures on the account: 2 x failure_delay), over SMTP.
        c = smtp_from(fresh, self.smtps, self.ctx)
        answer, seconds = timed(lambda: smtp_login(c, user, password))
        self.assertEqual(answer[0], 235, answer)
        self.assertGreaterEqual(seconds, 2 * BASE - 0.05)
        c.quit()
        # Carol from home, still at once.
        answer, seconds = imap_login(home, password)
        self.assertEqual(answer[0], "OK", answer)
        self.assertLess(seconds, BASE / 2)
        # The attacker's next attempt waits before its check, even with the right password.
        answer, seconds = imap_login(attacker, password)
        self.assertEqual(answer[0], "OK", answer)
        self.assertGreaterEqual(seconds, 2 * BASE - 0.05)


if __name__ == "__main__":
    unittest.main(verbosity=2)
