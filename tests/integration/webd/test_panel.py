"""The web control panel of postern-webd over real HTTPS (http.client + ssl):
login through the shared authenticator, sessions and cookies, CSRF refusal,
security headers, adding a user who then logs in over IMAP, adding an alias
that then receives mail over SMTP, HTML escaping of a hostile value, logout
(the old cookie is refused), plain HTTP redirected, the login throttle."""

import base64
import hashlib
import hmac
import http.client
import imaplib
import os
import re
import smtplib
import struct
import subprocess
import threading
import time
import unittest
import urllib.parse

from panel_client import ADMIN, ADMIN_PW, Browser, admin_browser
from postern_testlib import Instance, bin_path, wait_for

class Panel(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.inst = Instance(domain="example.test")
        cls.inst.ctl("user", "admin", ADMIN, "on")
        for p in ("postern-webd", "postern-imapd", "postern-smtpd"):
            cls.inst.start(p)
        cls.https = cls.inst.port("postern-webd", "https")
        cls.ca = os.path.join(cls.inst.config_dir, "tls", "cert.pem")

    @classmethod
    def tearDownClass(cls):
        cls.inst.close()

    def admin(self):
        return admin_browser(self)

    def test_login_sets_a_strict_session_cookie_and_every_page_has_the_security_headers(self):
        b = Browser(self.https, self.ca)
        _, page = b.request("GET", "/panel/login")
        r, _ = b.request("POST", "/panel/login", form={"csrf": b.csrf(page), "address": ADMIN, "password": ADMIN_PW})
        self.assertEqual(r.status, 303)
        cookie = [v for k, v in r.getheaders() if k.lower() == "set-cookie" and v.startswith("postern_session=")][0]
        self.assertRegex(cookie, r"^postern_session=[0-9a-f]{64};")
        for attr in ("HttpOnly", "Secure", "SameSite=Strict", "Path=/"):
            self.assertIn(attr, cookie)
        r, page = b.request("GET", "/panel/")
        self.assertEqual(r.status, 200)
        self.assertIn("Dashboard", page)
        self.assertIn("Outbound queue", page)
        csp = r.getheader("Content-Security-Policy")
        self.assertIn("default-src 'self'", csp)
        self.assertIn("frame-ancestors 'none'", csp)
        self.assertNotIn("unsafe-inline", csp)
        self.assertEqual(r.getheader("X-Frame-Options"), "DENY")
        self.assertEqual(r.getheader("Cache-Control"), "no-store")
        self.assertEqual(r.getheader("X-Content-Type-Options"), "nosniff")
        self.assertEqual(r.getheader("Referrer-Policy"), "no-referrer")
        self.assertNotIn("<script", page)
        self.assertIn("action=login", self.inst.log().replace("action=login", "action=login"))
        self.assertRegex(self.inst.log(), r"panel\.audit.*user=alice@example\.test.*action=login.*remote=127\.0\.0\.1.*result=ok")
        self.assertNotIn(ADMIN_PW, self.inst.log())

    def test_wrong_password_and_no_session(self):
        b = Browser(self.https, self.ca)
        r, page = b.login(ADMIN, "wrong-password")
        self.assertEqual(r.status, 401)
        self.assertIn("Wrong address or password", page)
        self.assertNotIn("postern_session", b.cookies)
        r, _ = b.request("GET", "/panel/users")
        self.assertEqual(r.status, 303)
        self.assertEqual(r.getheader("Location"), "/panel/login")

    def test_login_without_the_login_token_is_refused(self):
        b = Browser(self.https, self.ca)
        r, _ = b.request("POST", "/panel/login", form={"csrf": "0" * 64, "address": ADMIN, "password": ADMIN_PW})
        self.assertEqual(r.status, 403)
        self.assertNotIn("postern_session", b.cookies)

    def test_csrf_refused_without_or_with_a_wrong_token(self):
        b = self.admin()
        for form in ({"address": "mallory@example.test", "password": "x" * 10},
                     {"csrf": "0" * 64, "address": "mallory@example.test", "password": "x" * 10}):
            r, page = b.request("POST", "/panel/users/add", form=form)
            self.assertEqual(r.status, 403)
            self.assertIn("CSRF", page)
        self.assertNotIn("mallory@example.test", self.inst.ctl("user", "list").stdout)
        self.assertRegex(self.inst.log(), r"panel\.audit.*action=users/add.*result=\"?refused: CSRF token")

    def test_add_user_then_imap_login_and_escaping(self):
        b = self.admin()
        _, page = b.request("GET", "/panel/users")
        r, _ = b.request("POST", "/panel/users/add",
                         form={"csrf": b.csrf(page), "address": "bob@example.test", "password": "bob-password-1", "quota": "1G"})
        self.assertEqual(r.status, 303)
        r, page = b.request("GET", "/panel/users")
        self.assertIn("User bob@example.test added", page)
        self.assertIn("bob@example.test", page)
        self.assertIn("bob@example.test\tquota=1G", self.inst.ctl("user", "list").stdout)
        self.assertRegex(page, r"bob@example\.test</a></td><td class=\"opt\">0\.0 MiB of 1G</td><td>user</td>")
        self.assertRegex(self.inst.log(), r"panel\.audit.*user=alice@example\.test.*action=user\.add.*target=bob@example\.test.*result=ok")
        self.assertNotIn("bob-password-1", self.inst.log())

        def imap_login():  # the daemons see a new user within a second (their snapshot of the account files)
            imap = imaplib.IMAP4_SSL("127.0.0.1", self.inst.port("postern-imapd", "imaps"), ssl_context=self.inst.client_tls_context())
            try:
                return imap.login("bob@example.test", "bob-password-1")[0] == "OK"
            except imaplib.IMAP4.error:
                return False
            finally:
                try:
                    imap.logout()
                except Exception:
                    pass
        wait_for(imap_login, timeout=10, what="bob's IMAP login")
        # A hostile value is shown as text: the error names the rejected address, escaped.
        hostile = "<script>alert(1)</script>@example.test"
        r, _ = b.request("POST", "/panel/users/add", form={"csrf": b.csrf(page), "address": hostile, "password": "whatever-1"})
        _, page = b.request("GET", "/panel/users")
        self.assertNotIn("<script>", page)
        self.assertIn("&lt;script&gt;", page)
        _, page = b.request("GET", "/panel/aliases?resolve=" + urllib.parse.quote("<img src=x>@example.test"))
        self.assertNotIn("<img src=x>", page)
        self.assertIn("&lt;img src=x&gt;", page)

    def test_add_alias_then_smtp_delivery_and_resolution(self):
        b = self.admin()
        _, page = b.request("GET", "/panel/aliases")
        r, _ = b.request("POST", "/panel/aliases/add", form={"csrf": b.csrf(page), "source": "sales@example.test", "targets": ADMIN})
        self.assertEqual(r.status, 303)
        _, page = b.request("GET", "/panel/aliases?resolve=sales%40example.test")
        self.assertIn("alias sales@example.test added", page)
        self.assertRegex(page, r'id="resolution"><li>mailbox alice@example\.test</li>')

        def send():  # smtpd sees the new alias within a second
            try:
                with smtplib.SMTP("127.0.0.1", self.inst.port("postern-smtpd", "smtp"), timeout=15) as s:
                    s.sendmail("someone@remote.test", ["sales@example.test"],
                               "From: someone@remote.test\r\nTo: sales@example.test\r\nSubject: via panel alias\r\n\r\nhello\r\n")
                return True
            except smtplib.SMTPRecipientsRefused:
                return False
        wait_for(send, timeout=10, what="the alias to be accepted over SMTP")
        wait_for(lambda: [m for m in self.inst.messages(ADMIN) if b"via panel alias" in m], timeout=30, what="delivery through the alias")
        r, _ = b.request("POST", "/panel/aliases/remove", form={"csrf": b.csrf(page), "source": "sales@example.test"})
        self.assertEqual(r.status, 303)
        self.assertNotIn("sales@example.test", self.inst.ctl("alias", "list").stdout)

    def test_user_page_states_what_happens_to_mail_and_delete_needs_confirmation(self):
        self.inst.add_user("carol@example.test", "carol-password-1")
        b = self.admin()
        _, page = b.request("GET", "/panel/user?address=carol%40example.test")
        self.assertIn("mail already stored is kept on disk", page)
        csrf = b.csrf(page)
        b.request("POST", "/panel/users/delete", form={"csrf": csrf, "address": "carol@example.test"})
        self.assertIn("carol@example.test", self.inst.ctl("user", "list").stdout)
        r, _ = b.request("POST", "/panel/users/delete", form={"csrf": csrf, "address": "carol@example.test", "confirm": "yes"})
        self.assertEqual(r.status, 303)
        self.assertNotIn("carol@example.test", self.inst.ctl("user", "list").stdout)

    def test_plain_user_sees_only_own_account_and_cannot_use_admin_posts(self):
        self.inst.add_user("dave@example.test", "dave-password-1")
        b = Browser(self.https, self.ca)
        # The daemons see a new user within a second (their snapshot of the account files).
        wait_for(lambda: b.login("dave@example.test", "dave-password-1")[0].status == 303, timeout=10, what="dave's login")
        r, page = b.request("GET", "/panel/")
        self.assertEqual(r.getheader("Location"), "/panel/account")
        r, page = b.request("GET", "/panel/account")
        self.assertIn("Mail client settings", page)
        self.assertIn("mail.example.test", page)
        r, _ = b.request("GET", "/panel/users")
        self.assertEqual(r.status, 403)
        r, _ = b.request("POST", "/panel/users/add", form={"csrf": b.csrf(page), "address": "eve@example.test", "password": "eve-password-1"})
        self.assertEqual(r.status, 403)
        self.assertNotIn("eve@example.test", self.inst.ctl("user", "list").stdout)
        # Own password: the current one is checked first.
        r, _ = b.request("POST", "/panel/account/password",
                         form={"csrf": b.csrf(page), "current": "nope-nope", "password": "dave-new-pw-2", "repeat": "dave-new-pw-2"})
        self.assertEqual(r.status, 303)
        r, _ = b.request("POST", "/panel/account/password",
                         form={"csrf": b.csrf(page), "current": "dave-password-1", "password": "dave-new-pw-2", "repeat": "dave-new-pw-2"})
        self.assertEqual(r.status, 200)
        r, _ = b.request("GET", "/panel/account")
        self.assertEqual(r.status, 303)  # every session of the account ended
        wait_for(lambda: Browser(self.https, self.ca).login("dave@example.test", "dave-new-pw-2")[0].status == 303, timeout=10,
                 what="login with the new password")

    def test_logout_makes_the_old_cookie_useless(self):
        b = self.admin()
        old = dict(b.cookies)
        _, page = b.request("GET", "/panel/")
        r, _ = b.request("POST", "/panel/logout", form={"csrf": b.csrf(page)})
        self.assertEqual(r.status, 303)
        self.assertNotIn("postern_session", b.cookies)
        b.cookies = old
        r, _ = b.request("GET", "/panel/")
        self.assertEqual(r.status, 303)
        self.assertEqual(r.getheader("Location"), "/panel/login")

    def test_plain_http_is_redirected_and_forms_have_limits(self):
        c = http.client.HTTPConnection("127.0.0.1", self.inst.port("postern-webd", "http"), timeout=10)
        c.request("GET", "/panel/users", headers={"Host": "evil.test"})
        r = c.getresponse()
        r.read()
        self.assertEqual(r.status, 301)
        self.assertEqual(r.getheader("Location"), "https://mail.example.test/panel/users")
        b = self.admin()
        # 16 KiB exactly (4 fields, values at most 4096 bytes): read and parsed (no CSRF token: refused).
        body = "&".join(f"f{i}=" + "x" * n for i, n in enumerate((4096, 4096, 4096, 4081)))
        self.assertEqual(len(body), 16 * 1024)
        r, _ = b.request("POST", "/panel/logout", raw_body=body, headers={"Content-Type": "application/x-www-form-urlencoded"})
        self.assertEqual(r.status, 403)
        # One byte more: refused from the head alone (413), before any body is read.
        import socket
        with socket.create_connection(("127.0.0.1", self.https), timeout=10) as raw:
            with b.ctx.wrap_socket(raw) as t:
                t.sendall(b"POST /panel/logout HTTP/1.1\r\nHost: mail.example.test\r\n"
                          b"Content-Type: application/x-www-form-urlencoded\r\nContent-Length: 16385\r\n\r\n")
                answer = b""
                while True:
                    chunk = t.recv(4096)
                    if not chunk:
                        break
                    answer += chunk
        self.assertTrue(answer.startswith(b"HTTP/1.1 413 "), answer[:100])
        r, _ = b.request("POST", "/panel/logout", raw_body="{}", headers={"Content-Type": "application/json"})
        self.assertEqual(r.status, 415)


class PanelThrottle(unittest.TestCase):
    """The panel's logins go through the mail protocols' throttle: after a failure,
    one attempt at a time per address, and failures are answered late."""

    def test_parallel_guesses_are_refused(self):
        with Instance(domain="example.test", conf={"auth.failure_delay": "1s", "auth.failure_delay_max": "2s"}) as inst:
            inst.start("postern-webd")
            port = inst.port("postern-webd", "https")
            ca = os.path.join(inst.config_dir, "tls", "cert.pem")
            r, _ = Browser(port, ca).login(ADMIN, "guess-0")
            self.assertEqual(r.status, 401)
            results = []

            def guess(i):
                b = Browser(port, ca)
                results.append(b.login(ADMIN, f"guess-{i}")[0].status)

            threads = [threading.Thread(target=guess, args=(i,)) for i in range(1, 5)]
            for t in threads:
                t.start()
            for t in threads:
                t.join()
            self.assertIn(429, results)
            self.assertNotIn(303, results)
            self.assertRegex(inst.log(), r"protocol=web")



def totp_now(secret_b32):
    """RFC 6238 (SHA-1, 6 digits, 30 s), Python stdlib."""
    key = base64.b32decode(secret_b32 + "=" * (-len(secret_b32) % 8))
    digest = hmac.new(key, struct.pack(">Q", int(time.time()) // 30), hashlib.sha1).digest()
    offset = digest[-1] & 0x0F
    return f"{(struct.unpack('>I', digest[offset:offset + 4])[0] & 0x7FFFFFFF) % 1000000:06d}"


class PanelTwoFactor(unittest.TestCase):
    """With two-factor login on, neither the password alone nor an app password opens the
    panel (the password leads to the code step); with auth.require_2fa_admins, an
    administrator without it reaches only the enrolment."""

    def test_second_factor_and_required_for_admins(self):
        bob = "bob@example.test"
        with Instance(domain="example.test", users={ADMIN: ADMIN_PW, bob: "bob-password-1"},
                      conf={"auth.require_2fa_admins": "true"}) as inst:
            inst.ctl("user", "admin", ADMIN, "on")
            inst.ctl("user", "admin", bob, "on")
            p = subprocess.Popen([bin_path("posternctl"), "--config", inst.config_dir, "user", "2fa", "enrol", ADMIN, "--code", "-"],
                                 stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
            secret = None
            while secret is None:
                line = p.stdout.readline()
                self.assertTrue(line, "posternctl ended before printing the secret")
                m = re.match(r"secret: ([A-Z2-7]+)$", line.strip())
                secret = m.group(1) if m else None
            out, err = p.communicate(totp_now(secret) + "\n", timeout=60)
            self.assertEqual(p.returncode, 0, out + err)
            added = inst.ctl("user", "app-password", "add", ADMIN, "laptop").stdout
            app = re.search(r"\b([a-z]{4} [a-z]{4} [a-z]{4} [a-z]{4})\b", added).group(1)
            inst.start("postern-webd")
            port = inst.port("postern-webd", "https")
            ca = os.path.join(inst.config_dir, "tls", "cert.pem")
            wait_for(lambda: Browser(port, ca).login(ADMIN, ADMIN_PW)[0].getheader("Location") == "/panel/login/code", timeout=10,
                     interval=0.3, what="the panel sees alice's two-factor login")
            r, page = Browser(port, ca).login(ADMIN, ADMIN_PW)
            self.assertEqual(r.status, 303)  # the password alone: the code step, no session
            self.assertNotIn("postern_session=", " ".join(v for k, v in r.getheaders() if k.lower() == "set-cookie"))
            r, page = Browser(port, ca).login(ADMIN, app)
            self.assertEqual(r.status, 401)  # an app password is for mail clients, not the panel
            self.assertIn("Wrong address or password.", page)
            self.assertNotIn("postern_session=", " ".join(v for k, v in r.getheaders() if k.lower() == "set-cookie"))
            self.assertNotIn("postern_pending=", " ".join(v for k, v in r.getheaders() if k.lower() == "set-cookie"))
            # auth.require_2fa_admins: bob (no two-factor) reaches only the enrolment (test_panel_user.py goes on).
            r, page = Browser(port, ca).login(bob, "bob-password-1")
            self.assertEqual(r.status, 303)
            self.assertEqual(r.getheader("Location"), "/panel/security")


if __name__ == "__main__":
    unittest.main(verbosity=2)
