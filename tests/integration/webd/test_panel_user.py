"""The web panel's self-service pages over real HTTPS (http.client + ssl), with the
real daemons (webd, imapd, smtpd):

  * two-factor login: enrol on the Security page (inline SVG QR code, the secret as
    text, no script or style in the page), confirm with a code computed by oathtool
    (a wrong one refused); log out; the password alone then gives no session but the
    code page (a pending-login cookie); a wrong code refused, the right code logs in,
    the same code again (replay) refused; the code step's CSRF token checked;
  * app passwords: created in the panel (shown once), IMAP accepts it while the
    account password is refused (two-factor on), "last used" is shown; revoked, IMAP
    refuses it;
  * forwarding and vacation: the forms store the same script as `posternctl sieve
    forward|vacation` (posternctl sieve show), active at once: a message sent over
    SMTP is forwarded (queued for the target with an SRS sender, not kept), the
    vacation form replaces it, turning off leaves no active script;
  * auth.require_2fa_admins: an administrator without two-factor login reaches only
    the enrolment until a code is confirmed, then the administrator pages."""

import os
import re
import smtplib
import socket
import subprocess
import unittest

from postern_testlib import Instance, free_port, wait_for
from panel_client import ADMIN, ADMIN_PW, Browser, flash

BOB = "bob@example.test"
BOB_PW = "bob-password-1"


def oathtool(secret, offset=0):
    """The TOTP code (RFC 6238: SHA-1, 6 digits, 30 s) `offset` seconds from now, by oathtool."""
    args = ["oathtool", "--totp", "-b", secret.replace(" ", "")]
    if offset:
        args += ["-N", f"now + {offset} seconds"]
    return subprocess.run(args, check=True, capture_output=True, text=True).stdout.strip()


class PanelSelfService(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.inst = Instance(domain="example.test", users={ADMIN: ADMIN_PW, BOB: BOB_PW},
                            conf={"auth.failure_delay": "100ms", "auth.failure_delay_max": "400ms",
                                  "dns.servers": f"127.0.0.1:{free_port(socket.SOCK_DGRAM)}", "dns.timeout": "1s"})
        for p in ("postern-webd", "postern-imapd", "postern-smtpd"):
            cls.inst.start(p)
        cls.https = cls.inst.port("postern-webd", "https")
        cls.ca = os.path.join(cls.inst.config_dir, "tls", "cert.pem")

    @classmethod
    def tearDownClass(cls):
        cls.inst.close()

    def imap_ok(self, user, password):
        import imaplib
        imap = imaplib.IMAP4_SSL("127.0.0.1", self.inst.port("postern-imapd", "imaps"), ssl_context=self.inst.client_tls_context())
        try:
            return imap.login(user, password)[0] == "OK"
        except imaplib.IMAP4.error:
            return False
        finally:
            try:
                imap.logout()
            except Exception:
                pass

    def enrol(self, b, user):
        """Enrols `user` in browser session `b` through the Security page; returns the secret."""
        _, page = b.request("GET", "/panel/security")
        self.assertIn("Two-factor login is <strong>off</strong>", page)
        r, page = b.request("POST", "/panel/security/2fa/enrol", form={"csrf": b.csrf(page)})
        self.assertEqual(r.status, 200)
        self.assertRegex(page, r'<div class="qr" id="qr"><svg xmlns="http://www.w3.org/2000/svg"[^>]*><rect [^>]*/><path fill="#000" d="M')
        self.assertNotIn("<script", page)
        self.assertNotIn("style=", page)  # the CSP allows no inline style
        self.assertNotIn("unsafe-inline", r.getheader("Content-Security-Policy"))
        secret = re.search(r'<code id="secret">([A-Z2-7 ]+)</code>', page).group(1)
        self.assertTrue("otpauth://totp/Postern:" + user + "?secret=" + secret.replace(" ", "") in page, "the otpauth URI")
        csrf = b.csrf(page)
        r, _ = b.request("POST", "/panel/security/2fa/confirm", form={"csrf": csrf, "code": "000000" if oathtool(secret) != "000000" else "111111"})
        _, page = b.request("GET", "/panel/security")
        self.assertIn("wrong or already used code", flash(page))
        self.assertIn("Two-factor login is <strong>off</strong>", page)
        b.request("POST", "/panel/security/2fa/confirm", form={"csrf": csrf, "code": oathtool(secret)})
        _, page = b.request("GET", "/panel/security")
        self.assertIn("Two-factor login is on", flash(page))
        self.assertIn("Two-factor login is <strong>on</strong>", page)
        self.assertRegex(self.inst.log(), r"panel\.audit.*user=" + re.escape(user) + r".*action=2fa\.confirm.*result=ok")
        self.assertNotIn(secret.replace(" ", ""), self.inst.log())
        return secret

    def test_two_factor_login_and_app_passwords(self):
        b = Browser(self.https, self.ca)
        r, _ = b.login(BOB, BOB_PW)
        self.assertEqual(r.status, 303)
        secret = self.enrol(b, BOB)
        _, page = b.request("GET", "/panel/security")
        b.request("POST", "/panel/logout", form={"csrf": b.csrf(page)})

        # The password alone, at once after the enrolment: no session, the code page.
        b = Browser(self.https, self.ca)
        r, _ = b.login(BOB, BOB_PW)
        self.assertEqual(r.getheader("Location"), "/panel/login/code")
        self.assertIn("postern_pending", b.cookies)
        self.assertNotIn("postern_session", b.cookies)
        r, _ = b.request("GET", "/panel/account")
        self.assertEqual(r.getheader("Location"), "/panel/login")  # a pending login is not a session
        r, page = b.request("GET", "/panel/login/code")
        self.assertEqual(r.status, 200)
        self.assertIn('autocomplete="one-time-code"', page)
        csrf = b.csrf(page)
        r, page = b.request("POST", "/panel/login/code", form={"csrf": "0" * 64, "code": oathtool(secret)})
        self.assertEqual(r.status, 403)
        # A wrong code: refused, counted by the throttle (logged for fail2ban), no session.
        wrong = "123456" if oathtool(secret) != "123456" else "654321"
        r, page = b.request("POST", "/panel/login/code", form={"csrf": csrf, "code": wrong})
        self.assertEqual(r.status, 401)
        self.assertIn("Wrong or already used code", page)
        self.assertNotIn("postern_session", b.cookies)
        self.assertRegex(self.inst.log(), r"auth .*protocol=web.*user=bob@example\.test.*remote=127\.0\.0\.1.*result=failed.*credential=second-factor")
        # The code of the next step (the confirmation used this one; the window allows +1).
        code = oathtool(secret, 30)
        r, _ = b.request("POST", "/panel/login/code", form={"csrf": csrf, "code": code})
        self.assertEqual(r.status, 303)
        self.assertEqual(r.getheader("Location"), "/panel/")
        self.assertIn("postern_session", b.cookies)
        self.assertNotIn("postern_pending", b.cookies)
        r, page = b.request("GET", "/panel/account")
        self.assertEqual(r.status, 200)
        self.assertRegex(self.inst.log(), r"panel\.audit.*user=bob@example\.test.*action=login.*result=\"?ok \(password and code\)")
        # The same code again, in a new login: a replay, refused (RFC 6238 5.2).
        b2 = Browser(self.https, self.ca)
        r, _ = b2.login(BOB, BOB_PW)
        self.assertEqual(r.getheader("Location"), "/panel/login/code")
        _, page2 = b2.request("GET", "/panel/login/code")
        r, page2 = b2.request("POST", "/panel/login/code", form={"csrf": b2.csrf(page2), "code": code})
        self.assertEqual(r.status, 401)
        self.assertNotIn("postern_session", b2.cookies)

        # App passwords: created in the panel, shown once.
        _, page = b.request("GET", "/panel/security")
        r, page = b.request("POST", "/panel/security/app/add", form={"csrf": b.csrf(page), "name": "laptop"})
        self.assertEqual(r.status, 200)
        app = re.search(r'<code id="app-password">([a-z]{4} [a-z]{4} [a-z]{4} [a-z]{4})</code>', page).group(1)
        self.assertNotIn(app, self.inst.log())
        _, page = b.request("GET", "/panel/security")
        self.assertNotIn(app, page)  # never shown again
        self.assertRegex(page, r"<td>laptop</td><td class=\"opt\">\d{4}-\d\d-\d\d \d\d:\d\d UTC</td><td>never</td>")
        wait_for(lambda: self.imap_ok(BOB, app), timeout=10, interval=0.2, what="IMAP login with the app password")
        self.assertFalse(self.imap_ok(BOB, BOB_PW))  # two-factor on: the account password no longer works for mail
        _, page = b.request("GET", "/panel/security")
        self.assertNotRegex(page, r"<td>laptop</td><td class=\"opt\">[^<]*</td><td>never</td>")  # last use recorded
        r, _ = b.request("POST", "/panel/security/app/revoke", form={"csrf": b.csrf(page), "name": "laptop"})
        self.assertEqual(r.status, 303)
        _, page = b.request("GET", "/panel/security")
        self.assertIn("App password laptop revoked.", flash(page))
        self.assertNotIn("app password", self.inst.ctl("user", "app-password", "list", BOB).stdout)
        self.assertNotIn("laptop", self.inst.ctl("user", "app-password", "list", BOB).stdout)
        wait_for(lambda: not self.imap_ok(BOB, app), timeout=10, interval=0.2, what="IMAP refusing the revoked app password")

        # Turning two-factor off with the password (lost phone): the core function, audited.
        r, _ = b.request("POST", "/panel/security/2fa/disable", form={"csrf": b.csrf(page), "password": "wrong-password"})
        _, page = b.request("GET", "/panel/security")
        self.assertIn("The password is wrong", flash(page))
        b.request("POST", "/panel/security/2fa/disable", form={"csrf": b.csrf(page), "password": BOB_PW})
        _, page = b.request("GET", "/panel/security")
        self.assertIn("Two-factor login is off.", flash(page))
        self.assertIn("two-factor: off", self.inst.ctl("user", "2fa", "status", BOB).stdout)

    def test_forwarding_and_vacation(self):
        user = "carol@example.test"
        self.inst.add_user(user, "carol-password-1")
        b = Browser(self.https, self.ca)
        wait_for(lambda: b.login(user, "carol-password-1")[0].status == 303, timeout=10, interval=0.2, what="carol's login")
        # posternctl's script for the same form, under another name: the panel must store the same text.
        self.inst.ctl("sieve", "forward", user, "--to", "Someone@Remote.test", "--name", "cli")
        _, page = b.request("GET", "/panel/filters")
        self.assertIn("Active filter: <strong>cli</strong>", page)
        r, _ = b.request("POST", "/panel/filters/forward", form={"csrf": b.csrf(page), "to": "Someone@Remote.test"})
        self.assertEqual(r.status, 303)
        _, page = b.request("GET", "/panel/filters")
        self.assertIn("Forwarding is on.", flash(page))
        self.assertIn("Active filter: <strong>forward</strong>", page)
        panel_script = self.inst.ctl("sieve", "show", user, "forward").stdout
        self.assertEqual(panel_script, self.inst.ctl("sieve", "show", user, "cli").stdout)
        self.assertIn('redirect "someone@remote.test";', panel_script)
        self.assertRegex(self.inst.ctl("sieve", "list", user).stdout, r"forward\t\d+ bytes\tactive")
        # Active at once: a message to carol is forwarded (queued for the target, SRS sender), not kept.
        def send():  # smtpd sees the new user within a second
            try:
                with smtplib.SMTP("127.0.0.1", self.inst.port("postern-smtpd", "smtp"), timeout=30) as s:
                    s.sendmail("dave@elsewhere.test", [user], f"From: dave@elsewhere.test\r\nTo: {user}\r\nSubject: forward me\r\n\r\nhi\r\n")
                return True
            except smtplib.SMTPRecipientsRefused:
                return False
        wait_for(send, timeout=10, interval=0.2, what="carol accepted over SMTP")

        def queued_for_target():
            queue = os.path.join(self.inst.data_dir, "queue")
            for state in ("incoming", "active", "deferred"):
                d = os.path.join(queue, state)
                for name in os.listdir(d) if os.path.isdir(d) else []:
                    if name.endswith(".env") and not name.startswith("."):
                        try:
                            text = open(os.path.join(d, name)).read()
                        except FileNotFoundError:
                            continue
                        if "recipient: someone@remote.test" in text and re.search(r"(?m)^sender: SRS0[=+]", text):
                            return True
            return False
        wait_for(queued_for_target, timeout=20, what="the forwarded message in the queue")
        self.assertEqual([m for m in self.inst.messages(user) if b"forward me" in m], [])
        # The vacation form replaces it (one active script), with dates.
        r, _ = b.request("POST", "/panel/filters/vacation",
                         form={"csrf": b.csrf(page), "subject": "Away", "text": "Back on Monday.\n.\nBye", "from": "2026-01-01",
                               "until": "2099-12-31", "days": "3"})
        _, page = b.request("GET", "/panel/filters")
        self.assertIn("The vacation reply is on.", flash(page))
        script = self.inst.ctl("sieve", "show", user, "vacation").stdout
        self.assertIn('vacation :days 3 :subject "Away" text:\nBack on Monday.\n..\nBye\n.\n;', script)
        self.assertIn('currentdate :value "ge" "date" "2026-01-01"', script)
        self.assertIn("Back on Monday.", page)  # the active script is shown (escaped) on the page
        # A bad form changes nothing and says why.
        b.request("POST", "/panel/filters/vacation", form={"csrf": b.csrf(page), "text": "x", "from": "2026-12-24", "until": "2026-12-01"})
        _, page = b.request("GET", "/panel/filters")
        self.assertIn("the end date is before the start date", flash(page))
        self.assertIn("Active filter: <strong>vacation</strong>", page)
        # Off: no active script.
        b.request("POST", "/panel/filters/off", form={"csrf": b.csrf(page), "which": "vacation"})
        _, page = b.request("GET", "/panel/filters")
        self.assertIn("The vacation reply is off.", flash(page))
        self.assertNotIn("active", self.inst.ctl("sieve", "list", user).stdout)
        self.assertRegex(self.inst.log(), r"panel\.audit.*user=carol@example\.test.*action=sieve\.off.*result=ok")

    def test_required_2fa_for_admins_leads_to_enrolment(self):
        admin = "erin@example.test"
        with Instance(domain="example.test", users={admin: "erin-password-1"}, conf={"auth.require_2fa_admins": "true"}) as inst:
            inst.ctl("user", "admin", admin, "on")
            inst.start("postern-webd")
            b = Browser(inst.port("postern-webd", "https"), os.path.join(inst.config_dir, "tls", "cert.pem"))
            r, _ = b.login(admin, "erin-password-1")
            self.assertEqual(r.getheader("Location"), "/panel/security")
            r, page = b.request("GET", "/panel/security")
            self.assertIn("must use two-factor login", page)
            self.assertNotIn('href="/panel/users"', page)
            self.assertNotIn("App passwords", page)
            r, _ = b.request("GET", "/panel/users")
            self.assertEqual(r.getheader("Location"), "/panel/security")
            r, _ = b.request("POST", "/panel/users/add", form={"csrf": b.csrf(page), "address": "zed@example.test", "password": "zed-password-1"})
            self.assertEqual(r.status, 403)
            r, _ = b.request("POST", "/panel/security/app/add", form={"csrf": b.csrf(page), "name": "x"})
            self.assertEqual(r.status, 403)
            self.assertNotIn("zed@example.test", inst.ctl("user", "list").stdout)
            saved, self.inst = self.inst, inst
            try:
                self.enrol(b, admin)
            finally:
                self.inst = saved
            r, page = b.request("GET", "/panel/users")
            self.assertEqual(r.status, 200)
            self.assertTrue('href="/panel/users"' in page, "the administrator navigation")
            # ... and cannot turn it off again in the panel while the flag is on.
            b.request("POST", "/panel/security/2fa/disable", form={"csrf": b.csrf(page), "password": "erin-password-1"})
            _, page = b.request("GET", "/panel/security")
            self.assertIn("Administrators must keep two-factor login", flash(page))
            self.assertIn("two-factor: on", inst.ctl("user", "2fa", "status", admin).stdout)


if __name__ == "__main__":
    unittest.main(verbosity=2)
