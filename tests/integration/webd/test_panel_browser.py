"""The web panel in a real browser: Debian's headless Chromium, driven through the
Chrome DevTools Protocol over --remote-debugging-pipe (JSON messages ending in NUL on
file descriptors 3 and 4; Python standard library only, no npm). Logs in as the
administrator, adds a user through the form, sees it listed, checks that a hostile
alias resolution is shown as text (no script ran), sees a queued message on the queue
page, sees the dashboard's DNS status (NSD on loopback: the MX record ok, others
missing), adds a domain and sees its registrar sheet; a user enrols two-factor login
(the QR code is an inline SVG the CSP lets render; the code comes from oathtool), logs
out and back in with password and code (a wrong code refused), creates an app password
that works over IMAP while the account password does not, and turns on forwarding
(the script seen with posternctl sieve show). Saves screenshots
(Page.captureScreenshot) into the folder given as the first argument (the build dir).
Skips, saying so, only when no chromium binary is installed."""

import base64
import imaplib
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
import unittest
import urllib.parse

from postern_testlib import Instance, Nsd, wait_for

ADMIN = "alice@example.test"
ADMIN_PW = "alice-password-1"
SHOTS = sys.argv.pop(1) if len(sys.argv) > 1 else os.getcwd()
CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")


class Cdp:
    """A minimal DevTools Protocol client over the pipe transport."""

    def __init__(self, extra_args):
        self.profile = tempfile.mkdtemp(prefix="postern-chromium-")
        to_chrome_r, self.to_chrome = os.pipe()
        self.from_chrome, from_chrome_w = os.pipe()

        def child_fds():  # Chromium reads commands on fd 3 and writes answers on fd 4
            os.dup2(to_chrome_r, 3)
            os.dup2(from_chrome_w, 4)

        args = [CHROMIUM, "--headless=new", "--remote-debugging-pipe", f"--user-data-dir={self.profile}", "--no-first-run",
                "--no-default-browser-check", "--disable-gpu", "--disable-extensions", "--disable-background-networking",
                "--window-size=420,900", *extra_args]
        if os.geteuid() == 0:
            args.append("--no-sandbox")  # Chromium refuses to run as root with its sandbox
        # close_fds=False: Python's own descriptors are close-on-exec anyway; closing "the
        # others" would run after preexec_fn and close 3 and 4 again.
        self.proc = subprocess.Popen(args, close_fds=False, preexec_fn=child_fds,
                                     stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        os.close(to_chrome_r)
        os.close(from_chrome_w)
        self.buf = b""
        self.next_id = 0
        self.events = []
        target = self.call("Target.createTarget", {"url": "about:blank"})["targetId"]
        self.session = self.call("Target.attachToTarget", {"targetId": target, "flatten": True})["sessionId"]
        self.call("Page.enable", session=True)

    def _read_message(self, deadline):
        while b"\0" not in self.buf:
            if time.monotonic() > deadline:
                raise AssertionError("Chromium did not answer in time")
            import select
            ready, _, _ = select.select([self.from_chrome], [], [], max(0.0, deadline - time.monotonic()))
            if ready:
                chunk = os.read(self.from_chrome, 65536)
                if not chunk:
                    raise AssertionError("Chromium closed the DevTools pipe")
                self.buf += chunk
        msg, self.buf = self.buf.split(b"\0", 1)
        return json.loads(msg)

    def call(self, method, params=None, session=False, timeout=30):
        self.next_id += 1
        msg = {"id": self.next_id, "method": method, "params": params or {}}
        if session:
            msg["sessionId"] = self.session
        os.write(self.to_chrome, json.dumps(msg).encode() + b"\0")
        deadline = time.monotonic() + timeout
        while True:
            m = self._read_message(deadline)
            if m.get("id") == self.next_id:
                if "error" in m:
                    raise AssertionError(f"{method}: {m['error']}")
                return m.get("result", {})
            self.events.append(m)

    def wait_event(self, name, timeout=30):
        deadline = time.monotonic() + timeout
        while True:
            for i, e in enumerate(self.events):
                if e.get("method") == name:
                    del self.events[: i + 1]
                    return e
            self.events.append(self._read_message(deadline))

    def eval(self, expression):
        r = self.call("Runtime.evaluate", {"expression": expression, "returnByValue": True}, session=True)
        if "exceptionDetails" in r:
            raise AssertionError(f"{expression}: {r['exceptionDetails']}")
        return r["result"].get("value")

    def navigate(self, url):
        self.events.clear()
        self.call("Page.navigate", {"url": url}, session=True)
        self.wait_event("Page.loadEventFired")

    def submit(self, button_selector):
        """Clicks a real button (the form posts; the 303 lands on the next page)."""
        self.events.clear()
        self.eval(f"document.querySelector({json.dumps(button_selector)}).click()")
        self.wait_event("Page.loadEventFired")

    def fill(self, element_id, value):
        self.eval(f"document.getElementById({json.dumps(element_id)}).value = {json.dumps(value)}")

    def screenshot(self, path):
        data = self.call("Page.captureScreenshot", {"format": "png"}, session=True)["data"]
        with open(path, "wb") as f:
            f.write(base64.b64decode(data))

    def close(self):
        try:
            self.call("Browser.close", timeout=5)
        except Exception:
            pass
        try:
            self.proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
        os.close(self.to_chrome)
        os.close(self.from_chrome)
        shutil.rmtree(self.profile, ignore_errors=True)


@unittest.skipUnless(CHROMIUM, "chromium is not installed (apt-get install chromium; install-deps.sh test installs it)")
class PanelInBrowser(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.inst = Instance(domain="example.test")
        cls.inst.ctl("user", "admin", ADMIN, "on")
        # The dashboard's DNS status asks a real authoritative server: NSD on loopback serving
        # the MX record right and the rest of the sheet missing.
        cls.nsd = Nsd({"example.test.": "$TTL 3600\nexample.test. IN SOA ns1.example.test. h.example.test. 1 3600 600 86400 300\n"
                                        "example.test. IN NS ns1.example.test.\nns1.example.test. IN A 127.0.0.1\n"
                                        "example.test. IN MX 10 mail.example.test.\n"})
        for key, value in (("dns.check_server", cls.nsd.server), ("dns.servers", cls.nsd.server), ("dns.timeout", "2s"),
                           ("public_addresses", "203.0.113.25")):
            cls.inst.ctl("config", "set", key, value)
        cls.inst.start("postern-webd")
        cls.inst.start("postern-imapd")
        port = cls.inst.port("postern-webd", "https")
        cls.base = f"https://mail.example.test:{port}"
        # The self-signed test certificate: the browser is told to accept it, and the host
        # name is mapped to loopback (no DNS).
        cls.cdp = Cdp(["--ignore-certificate-errors", "--host-resolver-rules=MAP mail.example.test 127.0.0.1"])

    @classmethod
    def tearDownClass(cls):
        cls.cdp.close()
        cls.inst.close()
        cls.nsd.close()

    def test_login_add_user_and_see_it_listed(self):
        c = self.cdp
        c.navigate(self.base + "/panel/")
        self.assertTrue(c.eval("location.pathname") == "/panel/login")
        c.fill("address", ADMIN)
        c.fill("password", ADMIN_PW)
        c.screenshot(os.path.join(SHOTS, "panel-login.png"))
        c.submit("form.box button[type=submit]")
        self.assertEqual(c.eval("location.pathname"), "/panel/")
        self.assertIn("Dashboard", c.eval("document.querySelector('h1').textContent"))
        # The session cookie is HttpOnly: page script cannot read it.
        self.assertNotIn("postern_session", c.eval("document.cookie"))
        c.navigate(self.base + "/panel/users")
        c.fill("address", "frank@example.test")
        c.fill("password", "frank-password-1")
        c.fill("quota", "500M")
        c.submit("form.box button[type=submit]")
        self.assertEqual(c.eval("location.pathname"), "/panel/users")
        self.assertIn("User frank@example.test added", c.eval("document.querySelector('.flash').textContent"))
        listed = c.eval("Array.from(document.querySelectorAll('table td a')).map(a => a.textContent)")
        self.assertIn("frank@example.test", listed)
        c.screenshot(os.path.join(SHOTS, "panel-users.png"))
        self.assertIn("frank@example.test\tquota=500M", self.inst.ctl("user", "list").stdout)
        # A hostile value is displayed as text; no element is created from it.
        hostile = "<img src=x onerror=\"document.title='pwned'\">@example.test"
        c.navigate(self.base + "/panel/aliases?resolve=" + urllib.parse.quote(hostile))
        self.assertEqual(c.eval("document.querySelectorAll('img').length"), 0)
        self.assertNotEqual(c.eval("document.title"), "pwned")
        self.assertEqual(c.eval("document.getElementById('resolve').value"), hostile)
        # The queue page (panel_ops_pages.h) with one queued message, as an administrator sees it.
        qid = self.inst.queue_message(ADMIN, ["someone@remote.test"], b"Subject: queued for the screenshot\r\n\r\nhi\r\n")
        c.navigate(self.base + "/panel/queue")
        self.assertIn(qid, c.eval("document.getElementById('queue').textContent"))
        c.screenshot(os.path.join(SHOTS, "panel-queue.png"))

    def test_then_dashboard_and_domains(self):
        """After the login of the test above (same browser): the dashboard with its DNS status,
        the Domains page, a domain added through the form and its registrar sheet."""
        c = self.cdp

        def full_page_shot(name):
            # README-sized: a desktop-wide window as tall as the page (at most 4000 px).
            metrics = {"width": 1100, "height": 800, "deviceScaleFactor": 1, "mobile": False}
            c.call("Emulation.setDeviceMetricsOverride", metrics, session=True)
            metrics["height"] = min(int(c.eval("document.documentElement.scrollHeight")), 4000)
            c.call("Emulation.setDeviceMetricsOverride", metrics, session=True)
            c.screenshot(os.path.join(SHOTS, name))
            c.call("Emulation.clearDeviceMetricsOverride", {}, session=True)

        c.navigate(self.base + "/panel/")
        if c.eval("location.pathname") == "/panel/login":  # run alone
            c.fill("address", ADMIN)
            c.fill("password", ADMIN_PW)
            c.submit("form.box button[type=submit]")
        deadline = time.monotonic() + 30
        while not c.eval("document.querySelectorAll('table.dns').length") and time.monotonic() < deadline:
            c.navigate(self.base + "/panel/")
        self.assertGreater(c.eval("document.querySelectorAll('tr.dns-ok').length"), 0)  # MX
        self.assertGreater(c.eval("document.querySelectorAll('tr.dns-missing').length"), 0)  # SPF, DKIM, ...
        self.assertEqual(c.eval("document.querySelector('tr.dns-ok td:nth-child(3)').textContent"), "MX")
        self.assertIn("fix:", c.eval("document.querySelector('tr.dns-missing').textContent"))
        full_page_shot("panel-dashboard.png")
        c.navigate(self.base + "/panel/domains")
        c.fill("domain", "shop.example")
        c.submit("form.box button[type=submit]")
        self.assertEqual(c.eval("location.pathname + location.search"), "/panel/domain?domain=shop.example")
        self.assertIn("Domain shop.example added", c.eval("document.querySelector('.flash').textContent"))
        self.assertGreater(c.eval("document.querySelectorAll('table.sheet input[readonly]').length"), 10)
        full_page_shot("panel-domain.png")
        self.assertIn("shop.example", self.inst.ctl("domain", "list").stdout)
        c.navigate(self.base + "/panel/domains")
        full_page_shot("panel-domains.png")
    def imap_ok(self, user, password):
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

    def login(self, user, password):
        c = self.cdp
        c.navigate(self.base + "/panel/login")
        c.fill("address", user)
        c.fill("password", password)
        c.submit("form.box button[type=submit]")

    def test_two_factor_app_password_and_forwarding(self):
        c = self.cdp
        user, password = "gina@example.test", "gina-password-1"
        self.inst.add_user(user, password)
        wait_for(lambda: self.imap_ok(user, password), timeout=10, interval=0.2, what="gina known to the daemons")

        def logged_in():  # webd sees the new user within a second (its snapshot of the account files)
            self.login(user, password)
            return c.eval("location.pathname") == "/panel/account"
        wait_for(logged_in, timeout=20, interval=0.3, what="gina's panel login")
        c.navigate(self.base + "/panel/security")
        c.submit("#enrol-2fa")
        # The QR code is drawn (inline SVG, allowed by the CSP: no inline style or script needed).
        self.assertGreater(c.eval("document.querySelector('#qr svg').getBoundingClientRect().width"), 100)
        self.assertGreater(c.eval("document.querySelector('#qr svg path').getBBox().width"), 20)
        secret = c.eval("document.getElementById('secret').textContent").replace(" ", "")
        c.screenshot(os.path.join(SHOTS, "panel-2fa-enrol.png"))
        code = subprocess.run(["oathtool", "--totp", "-b", secret], check=True, capture_output=True, text=True).stdout.strip()
        c.fill("confirm-code", code)
        c.submit("#confirm-2fa")
        self.assertIn("Two-factor login is on", c.eval("document.querySelector('.flash').textContent"))
        c.submit("form[action='/panel/logout'] button")
        # Password, then the code page: a wrong code is refused, the next step's code logs in.
        self.login(user, password)
        self.assertEqual(c.eval("location.pathname"), "/panel/login/code")
        wrong = "123456" if code != "123456" else "654321"
        c.fill("code", wrong)
        c.submit("form.box button[type=submit]")
        self.assertIn("Wrong or already used code", c.eval("document.querySelector('.flash').textContent"))
        c.screenshot(os.path.join(SHOTS, "panel-2fa-code.png"))
        nxt = subprocess.run(["oathtool", "--totp", "-b", secret, "-N", "now + 30 seconds"], check=True, capture_output=True,
                             text=True).stdout.strip()
        c.fill("code", nxt)
        c.submit("form.box button[type=submit]")
        self.assertEqual(c.eval("location.pathname"), "/panel/account")
        # An app password: shown once, works over IMAP; the account password no longer does.
        c.navigate(self.base + "/panel/security")
        c.fill("app-name", "phone")
        c.submit("#add-app")
        app = c.eval("document.getElementById('app-password').textContent")
        c.screenshot(os.path.join(SHOTS, "panel-app-password.png"))
        wait_for(lambda: self.imap_ok(user, app), timeout=10, interval=0.2, what="IMAP with the app password")
        self.assertFalse(self.imap_ok(user, password))
        # Forwarding, active at once.
        c.navigate(self.base + "/panel/filters")
        c.fill("forward-to", "gina@elsewhere.test")
        c.submit("#forward-save")
        self.assertIn("Forwarding is on.", c.eval("document.querySelector('.flash').textContent"))
        c.screenshot(os.path.join(SHOTS, "panel-forwarding.png"))
        self.assertIn('redirect :copy "gina@elsewhere.test";', self.inst.ctl("sieve", "show", user, "forward").stdout)


if __name__ == "__main__":
    unittest.main(verbosity=2)
