"""Disabled accounts (`posternctl user disable|enable`, core accountops::setDisabled) against
the real daemons: sessions already logged in on IMAP, POP3, SMTP submission and ManageSieve are
closed by their daemons within the 1 s look at the account files (IMAP "* BYE Account disabled",
POP3 "-ERR", SMTP "421 4.7.1", ManageSieve BYE) without the client sending anything; every new
login (account password or app password) gets exactly the answer of a wrong password, and
mail.log says why (reason="account disabled"); mail to the address is still delivered; `user
list` shows the state; after `user enable` the same logins work again. The last enabled
administrator cannot be disabled."""

import base64
import imaplib
import poplib
import re
import smtplib
import socket
import unittest

from postern_testlib import Instance, wait_for

ALICE = "alice@example.test"
BOB = "bob@example.test"
USERS = {ALICE: "alice-password-1", BOB: "bob-password-2"}


class Sieve:
    """Just enough ManageSieve: STARTTLS, AUTHENTICATE PLAIN, read one line."""

    def __init__(self, port, ctx):
        self.sock = socket.create_connection(("127.0.0.1", port), timeout=15)
        self.f = self.sock.makefile("rb")
        self.until_ok()
        self.sock.sendall(b"STARTTLS\r\n")
        assert self.f.readline().startswith(b"OK")
        self.sock = ctx.wrap_socket(self.sock, server_hostname="mail.example.test")
        self.f = self.sock.makefile("rb")
        self.until_ok()

    def until_ok(self):
        while not (line := self.f.readline()).startswith((b"OK", b"NO", b"BYE")):
            assert line, "closed"
        return line

    def login(self, user, password):
        token = base64.b64encode(b"\0" + user.encode() + b"\0" + password.encode())
        self.sock.sendall(b'AUTHENTICATE "PLAIN" "%s"\r\n' % token)
        return self.until_ok().rstrip(b"\r\n")


class UserDisable(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        # No automatic block: this test fails logins on purpose.
        cls.inst = Instance(users=USERS, conf={"auth.block_after_failures": "0"})
        for p in ("postern-imapd", "postern-pop3d", "postern-smtpd", "postern-sieved"):
            cls.inst.start(p)
        cls.ctx = cls.inst.client_tls_context()

    @classmethod
    def tearDownClass(cls):
        cls.inst.close()

    def port(self, program, listener):
        return self.inst.port(program, listener)

    # One login per protocol; each returns None on success or the server's refusal.
    def imap(self, user, password, keep=False):
        m = imaplib.IMAP4_SSL("127.0.0.1", self.port("postern-imapd", "imaps"), ssl_context=self.ctx, timeout=30)
        try:
            m.login(user, password)
        except imaplib.IMAP4.error as e:
            m.shutdown()
            return str(e)
        if keep:
            return m
        m.logout()
        return None

    def pop3(self, user, password, keep=False):
        p = poplib.POP3_SSL("127.0.0.1", self.port("postern-pop3d", "pop3s"), context=self.ctx, timeout=30)
        try:
            p.user(user)
            p.pass_(password)
        except poplib.error_proto as e:
            p.close()
            return str(e)
        if keep:
            return p
        p.quit()
        return None

    def smtp(self, user, password, keep=False):
        s = smtplib.SMTP("127.0.0.1", self.port("postern-smtpd", "submission"), timeout=30)
        s.starttls(context=self.ctx)
        try:
            s.login(user, password)
        except smtplib.SMTPAuthenticationError as e:
            s.close()
            return (e.smtp_code, e.smtp_error)
        if keep:
            return s
        s.quit()
        return None

    def sieve(self, user, password, keep=False):
        c = Sieve(self.port("postern-sieved", "sieve"), self.ctx)
        reply = c.login(user, password)
        if reply.startswith(b"OK") and keep:
            return c
        c.sock.close()
        return None if reply.startswith(b"OK") else reply

    def deliver(self, subject):
        with smtplib.SMTP("127.0.0.1", self.port("postern-smtpd", "smtp"), timeout=30) as s:
            s.sendmail("someone@remote.test", [ALICE],
                       f"From: someone@remote.test\r\nTo: {ALICE}\r\nSubject: {subject}\r\n\r\nhello\r\n")

    def test_disable_then_enable(self):
        pw = USERS[ALICE]
        app = re.search(r"^  ([a-z]{4} [a-z]{4} [a-z]{4} [a-z]{4})$",
                        self.inst.ctl("user", "app-password", "add", ALICE, "phone").stdout, re.M).group(1)
        logins = (self.imap, self.pop3, self.smtp, self.sieve)
        wait_for(lambda: self.imap(ALICE, app) is None, what="the app password in imapd's snapshot", interval=0.5)
        # Open, logged-in sessions in every daemon (and one of another user, which stays open).
        imap = self.imap(ALICE, pw, keep=True)
        imap.select("INBOX")
        pop = self.pop3(ALICE, pw, keep=True)
        sub = self.smtp(ALICE, pw, keep=True)
        siv = self.sieve(ALICE, pw, keep=True)
        other = self.imap(BOB, USERS[BOB], keep=True)
        # The wrong-password answers to compare with (an enabled account).
        wrong = [login(BOB, "not-the-password") for login in logins]
        self.assertTrue(all(wrong), wrong)

        out = self.inst.ctl("user", "disable", ALICE).stdout
        self.assertIn(f"{ALICE} is disabled", out)
        self.assertRegex(self.inst.ctl("user", "list").stdout, rf"(?m)^{re.escape(ALICE)}\t.*\tdisabled$")

        # Closed by the servers, the clients sending nothing.
        imap.sock.settimeout(10)
        self.assertEqual(imap.readline(), b"* BYE Account disabled\r\n")
        self.assertEqual(imap.readline(), b"")
        pop.sock.settimeout(10)
        self.assertEqual(pop.file.readline(), b"-ERR Account disabled\r\n")
        self.assertEqual(pop.file.readline(), b"")
        sub.sock.settimeout(10)
        self.assertEqual(sub.getreply(), (421, b"4.7.1 Account disabled, closing connection"))
        siv.sock.settimeout(10)
        self.assertEqual(siv.f.readline(), b'BYE "Account disabled"\r\n')
        self.assertEqual(siv.f.readline(), b"")
        self.assertEqual(other.noop()[0], "OK")  # bob's session goes on
        other.logout()
        log = self.inst.log()
        for listener in ("imaps", "pop3s", "submission", "sieve"):
            self.assertRegex(log, rf'connection\.account_closed listener={listener} remote=127\.0\.0\.1 user={re.escape(ALICE)} '
                                  r'reason="account disabled"')

        # Every daemon has seen the change (it closed the session): each login is refused with
        # exactly the wrong-password answer, for the account password and the app password.
        self.assertEqual([login(ALICE, pw) for login in logins], wrong)
        self.assertEqual(self.imap(ALICE, app), wrong[0])
        self.assertEqual(self.smtp(ALICE, app), wrong[2])
        log = self.inst.log()
        for proto in ("imap", "pop3", "smtp", "managesieve"):
            self.assertRegex(log, rf'auth protocol={proto} user={re.escape(ALICE)} remote=\S+ result=failed '
                                  r'reason="account disabled"')

        # Mail to a disabled account is still accepted and delivered.
        before = len(self.inst.messages(ALICE))
        self.deliver("while disabled")
        wait_for(lambda: len(self.inst.messages(ALICE)) == before + 1, what="delivery to the disabled account")

        # The last enabled administrator stays enabled.
        self.inst.ctl("user", "admin", BOB, "on")
        r = self.inst.ctl("user", "disable", BOB, check=False)
        self.assertNotEqual(r.returncode, 0)
        self.assertIn(f"{BOB} is the last enabled administrator", r.stderr)

        self.assertIn(f"{ALICE} is enabled", self.inst.ctl("user", "enable", ALICE).stdout)
        self.assertNotIn("disabled", self.inst.ctl("user", "list").stdout)
        # Each failed attempt while a daemon's snapshot (re-read every second) catches up counts
        # towards the address's block (auth.block_after_failures): poll at 0.5 s.
        wait_for(lambda: self.imap(ALICE, pw) is None, what="imapd to see the account enabled", interval=0.5)
        wait_for(lambda: self.pop3(ALICE, pw) is None, what="pop3d to see the account enabled", interval=0.5)
        wait_for(lambda: self.smtp(ALICE, app) is None, what="smtpd to see the account enabled", interval=0.5)
        wait_for(lambda: self.sieve(ALICE, pw) is None, what="sieved to see the account enabled", interval=0.5)
        m = self.imap(ALICE, pw, keep=True)
        m.select("INBOX")
        self.assertIn(b"Subject: while disabled", m.fetch(b"*", "(BODY.PEEK[HEADER])")[1][0][1])
        m.logout()


if __name__ == "__main__":
    unittest.main(verbosity=2)
