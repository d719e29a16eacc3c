"""The web panel as a test client sees it (postern-webd over real HTTPS, http.client + ssl):
one module for the panel integration tests (tests/integration/webd/test_panel*.py).

  Browser(port, ca)      a tiny cookie-keeping HTTPS client, one connection per request
                         (as webd answers): request(), csrf(page) (the form token of a
                         page, asserted present), login(address, password) (the login
                         page's token, then the form).
  admin_browser(test)    a Browser logged in as ADMIN on test.https (CA test.ca); asserts
                         the 303 and the session cookie.
  flash(page)            the text of a page's status line ("" when none).
  ADMIN, ADMIN_PW        the administrator the panel tests create.
"""

import http.client
import re
import ssl
import urllib.parse

ADMIN = "alice@example.test"
ADMIN_PW = "alice-password-1"


class Browser:
    """A tiny cookie-keeping HTTPS client (one connection per request, as webd answers)."""

    def __init__(self, port, ca):
        self.port = port
        self.ctx = ssl.create_default_context(cafile=ca)
        self.ctx.check_hostname = False
        self.cookies = {}

    def request(self, method, path, form=None, raw_body=None, headers=None):
        c = http.client.HTTPSConnection("127.0.0.1", self.port, context=self.ctx, timeout=30)
        h = {"Host": "mail.example.test"}
        if self.cookies:
            h["Cookie"] = "; ".join(f"{k}={v}" for k, v in self.cookies.items())
        body = raw_body
        if form is not None:
            body = urllib.parse.urlencode(form)
            h["Content-Type"] = "application/x-www-form-urlencoded"
        h.update(headers or {})
        c.request(method, path, body=body, headers=h)
        r = c.getresponse()
        data = r.read().decode("utf-8", "replace")
        for name, value in r.getheaders():
            if name.lower() == "set-cookie":
                k, v = value.split(";", 1)[0].split("=", 1)
                if "Max-Age=0" in value:
                    self.cookies.pop(k, None)
                else:
                    self.cookies[k] = v
        c.close()
        return r, data

    def csrf(self, html):
        m = re.search(r'name="csrf" value="([0-9a-f]{64})"', html)
        assert m, html
        return m.group(1)

    def login(self, address, password):
        _, page = self.request("GET", "/panel/login")
        return self.request("POST", "/panel/login", form={"csrf": self.csrf(page), "address": address, "password": password})


def admin_browser(test):
    """A Browser logged in as ADMIN on test.https (a unittest.TestCase with .https and .ca)."""
    b = Browser(test.https, test.ca)
    r, _ = b.login(ADMIN, ADMIN_PW)
    test.assertEqual(r.status, 303)
    test.assertIn("postern_session", b.cookies)
    return b


def flash(page):
    m = re.search(r'<p class="flash[^"]*" role="status">(.*?)</p>', page, re.S)
    return m.group(1) if m else ""
