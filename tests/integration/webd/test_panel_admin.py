"""The web panel's administrator pages for the server itself, over real HTTPS:
the Domains page (add and remove through the root broker, checked with posternctl),
the registrar sheet and its zone/CSV/JSON downloads (byte for byte what
`posternctl dns records` prints), DKIM rotation (new active selectors, the old ones
retiring, as `posternctl dkim list` sees them), and the dashboard: certificate,
disk, spam filter, a delivery failure from mail.log, and the DNS status asked of a
real authoritative server (NSD on loopback) serving a zone where the MX record is
right and the DKIM and SPF records are missing."""

import json
import os
import re
import socket
import threading
import time
import unittest

from panel_client import ADMIN, ADMIN_PW, Browser, admin_browser
from postern_testlib import Instance, Nsd, wait_for

PUBLIC = "203.0.113.25"


def zone(domain, hostname):
    return "\n".join([
        "$TTL 3600",
        f"{domain}. IN SOA ns1.{domain}. hostmaster.{domain}. 1 3600 600 86400 300",
        f"{domain}. IN NS ns1.{domain}.",
        f"ns1.{domain}. IN A 127.0.0.1",
        f"{domain}. IN MX 10 {hostname}.",
        f"{hostname}. IN A {PUBLIC}",
    ]) + "\n"


class PanelAdmin(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.inst = Instance(domain="example.test")
        cls.inst.ctl("user", "admin", ADMIN, "on")
        cls.nsd = Nsd({"example.test.": zone("example.test", cls.inst.hostname),
                       "other.test.": "\n".join(zone("other.test", cls.inst.hostname).splitlines()[:-1]) + "\n"})
        for key, value in (("dns.check_server", cls.nsd.server), ("dns.servers", cls.nsd.server), ("dns.timeout", "2s"),
                           ("public_addresses", PUBLIC)):
            cls.inst.set_conf(key, value)
        cls.inst.start("postern-webd")
        cls.https = cls.inst.port("postern-webd", "https")
        cls.ca = os.path.join(cls.inst.config_dir, "tls", "cert.pem")

    @classmethod
    def tearDownClass(cls):
        cls.inst.close()
        cls.nsd.close()

    def admin(self):
        return admin_browser(self)

    def ctl_out(self, *args):
        return self.inst.ctl(*args).stdout

    def test_dns_status_of_every_domain(self):
        # A second hosted domain (added with posternctl: the panel notices the new set of
        # domains and checks again at once, without waiting for the cache period).
        self.inst.ctl("domain", "add", "other.test")
        try:
            b = self.admin()
            deadline = time.monotonic() + 30
            while True:  # the Domains page never waits for the check: poll
                r, page = b.request("GET", "/panel/domains")
                self.assertEqual(r.status, 200)
                rows = {d: re.search(r'<tr id="domain-%s">.*?</tr>' % re.escape(d), page) for d in ("example.test", "other.test")}
                if all(m and "not checked yet" not in m.group(0) for m in rows.values()):
                    break
                self.assertLess(time.monotonic(), deadline, page)
                time.sleep(0.2)
            self.assertIn("<th>DNS status</th>", page)
            for d, m in rows.items():
                # Both zones publish their MX only (and example.test the host's A): DKIM, SPF, DMARC are missing.
                self.assertRegex(m.group(0), r'class="st-bad dns-summary-bad">\d+ missing or wrong</span>', d)
            # The dashboard: the primary domain's records, then one line per other domain.
            r, page = b.request("GET", "/panel/")
            self.assertEqual(r.status, 200)
            self.assertIn("<h3>Other domains</h3>", page)
            self.assertRegex(page, r'<tr id="dns-other.test"><td><a href="/panel/domain\?domain=other.test">other.test</a></td>'
                                   r'<td><span class="st-bad dns-summary-bad">\d+ missing or wrong')
        finally:
            self.inst.ctl("domain", "del", "other.test", "--force")

    def test_domains_add_and_remove(self):
        b = self.admin()
        r, page = b.request("GET", "/panel/domains")
        self.assertEqual(r.status, 200)
        self.assertIn('href="/panel/domains"', page)  # the navigation link
        self.assertIn("example.test", page)
        r, _ = b.request("POST", "/panel/domains/add", form={"csrf": b.csrf(page), "domain": "Second.TEST"})
        self.assertEqual(r.status, 303)
        self.assertEqual(r.getheader("Location"), "/panel/domain?domain=second.test")
        self.assertIn("second.test", self.ctl_out("domain", "list"))
        r, page = b.request("GET", "/panel/domain?domain=second.test")
        self.assertEqual(r.status, 200)
        self.assertIn("Domain second.test added. Publish its DNS records below.", page)
        # Its own DKIM keys were made at once (the same core function as posternctl domain add).
        selectors = re.findall(r"^(p\d+[re]\w*)\t", self.ctl_out("dkim", "list", "second.test"), re.M)
        self.assertEqual(len(selectors), 2, selectors)
        for s in selectors:
            self.assertIn(f'value="{s}._domainkey"', page)
        self.assertRegex(self.inst.log(), r"panel\.audit.*action=domain\.add target=Second\.TEST.*result=ok")
        # Removing needs the confirmation box.
        r, _ = b.request("POST", "/panel/domains/remove", form={"csrf": b.csrf(page), "domain": "second.test"})
        self.assertEqual(r.status, 303)
        _, page = b.request("GET", "/panel/domains")
        self.assertIn("Not removed: tick the confirmation box.", page)
        self.assertIn("second.test", self.ctl_out("domain", "list"))
        r, _ = b.request("POST", "/panel/domains/remove", form={"csrf": b.csrf(page), "domain": "second.test", "confirm": "yes"})
        self.assertEqual(r.status, 303)
        _, page = b.request("GET", "/panel/domains")
        self.assertIn("Domain second.test removed", page)
        self.assertNotIn("second.test", self.ctl_out("domain", "list"))
        r, _ = b.request("GET", "/panel/domain?domain=second.test")
        self.assertEqual(r.status, 404)
        # Bad input: a clear error, nothing added.
        r, _ = b.request("POST", "/panel/domains/add", form={"csrf": b.csrf(page), "domain": "not a domain"})
        _, page = b.request("GET", "/panel/domains")
        self.assertIn('class="flash error"', page)
        self.assertEqual(self.ctl_out("domain", "list").count("\n"), 1)

    def test_disable_and_enable_user(self):
        # Logins polled while webd's account snapshot (re-read every second) catches up fail and
        # count towards the address's block (auth.block_after_failures, 20): poll at 0.5 s, so
        # the test's own attempts stay far below it even on a slow machine.
        # Disable / enable through the broker (accountops::setDisabled, as posternctl user disable).
        self.inst.add_user("dave@example.test", "dave-password-4")
        dave = Browser(self.https, self.ca)
        wait_for(lambda: dave.login("dave@example.test", "dave-password-4")[0].status == 303, what="dave's login", interval=0.5)
        self.assertEqual(dave.request("GET", "/panel/account")[0].status, 200)
        b = self.admin()
        _, page = b.request("GET", "/panel/user?address=dave%40example.test")
        self.assertIn("State: enabled.", page)
        r, _ = b.request("POST", "/panel/users/disable", form={"csrf": b.csrf(page), "address": "dave@example.test"})
        self.assertEqual(r.status, 303)
        _, page = b.request("GET", "/panel/user?address=dave%40example.test")
        self.assertIn("dave@example.test is disabled; mail to it is still delivered.", page)
        self.assertIn('action="/panel/users/enable"', page)
        self.assertRegex(self.ctl_out("user", "list"), r"(?m)^dave@example\.test\t.*\tdisabled$")
        self.assertRegex(self.inst.log(), r"panel\.audit.*action=user\.disable target=dave@example\.test.*result=ok")
        self.assertIn("<td><strong>disabled</strong></td>", b.request("GET", "/panel/users")[1])
        # Dave's open panel session is over; a new login gets the wrong-password answer.
        self.assertEqual(dave.request("GET", "/panel/account")[0].status, 303)
        wait_for(lambda: dave.login("dave@example.test", "dave-password-4")[0].status == 401, what="refused login")
        self.assertIn("Wrong address or password.", dave.login("dave@example.test", "dave-password-4")[1])
        # Nobody disables themselves (nor the last enabled administrator: tst_accounts).
        b.request("POST", "/panel/users/disable", form={"csrf": b.csrf(page), "address": ADMIN})
        self.assertIn("you cannot disable the account you are logged in with", b.request("GET", "/panel/users")[1])
        self.assertNotRegex(self.ctl_out("user", "list"), rf"(?m)^{re.escape(ADMIN)}\t.*disabled")
        b.request("POST", "/panel/users/enable", form={"csrf": b.csrf(page), "address": "dave@example.test"})
        self.assertNotIn("disabled", self.ctl_out("user", "list"))
        wait_for(lambda: dave.login("dave@example.test", "dave-password-4")[0].status == 303, what="dave's login again", interval=0.5)

    def test_sheet_and_downloads_are_posternctl_dns_records(self):
        b = self.admin()
        r, page = b.request("GET", "/panel/domain?domain=example.test")
        self.assertEqual(r.status, 200)
        self.assertNotIn("<script", page)
        self.assertIn(f'readonly aria-label="value of record 2" value="{PUBLIC}"', page)
        self.assertIn(f'value="{self.inst.hostname}."', page)  # MX value
        for fmt, ctype in (("zone", "text/plain"), ("csv", "text/csv"), ("json", "application/json")):
            r, body = b.request("GET", f"/panel/domain/records?domain=example.test&format={fmt}")
            self.assertEqual(r.status, 200, body)
            self.assertTrue(r.getheader("Content-Type").startswith(ctype))
            self.assertEqual(r.getheader("Content-Disposition"), f'attachment; filename="example.test-dns.{fmt}"')
            self.assertEqual(body, self.ctl_out("dns", "records", f"--{fmt}", "--domain", "example.test"))
        sheet = json.loads(body)
        self.assertEqual(sheet["domain"], "example.test")
        self.assertTrue({"MX", "A", "TXT", "SRV"} <= {rec["type"] for rec in sheet["records"]})
        r, _ = b.request("GET", "/panel/domain/records?domain=example.test&format=exe")
        self.assertEqual(r.status, 400)
        r, _ = b.request("GET", "/panel/domain/records?domain=unknown.test&format=zone")
        self.assertEqual(r.status, 404)

    def test_dkim_rotation(self):
        b = self.admin()
        before = re.findall(r"^(\S+)\t(rsa|ed25519)\t(active|retiring)", self.ctl_out("dkim", "list", "example.test"), re.M)
        old_active = {s for s, _, st in before if st == "active"}
        self.assertEqual(len(old_active), 2)
        _, page = b.request("GET", "/panel/domain?domain=example.test")
        r, _ = b.request("POST", "/panel/domain/dkim-rotate", form={"csrf": b.csrf(page), "domain": "example.test"})
        self.assertEqual(r.status, 303)
        after = re.findall(r"^(\S+)\t(rsa|ed25519)\t(active|retiring)", self.ctl_out("dkim", "list", "example.test"), re.M)
        new_active = {s for s, _, st in after if st == "active"}
        self.assertEqual(len(new_active), 2)
        self.assertFalse(new_active & old_active)
        self.assertTrue(old_active <= {s for s, _, st in after if st == "retiring"})
        _, page = b.request("GET", "/panel/domain?domain=example.test")
        for s in new_active:
            self.assertIn(s, page.split("New DKIM keys", 1)[1].split("</p>", 1)[0])  # named in the result
            self.assertIn(f'value="{s}._domainkey"', page)  # and in the sheet to publish
        _, zone_file = b.request("GET", "/panel/domain/records?domain=example.test&format=zone")
        for s in new_active | old_active:
            self.assertIn(f"{s}._domainkey.example.test.", zone_file)

    def test_dashboard_health_and_dns_status(self):
        # A delivery failure as postern-queued logs it (log.h format), appended to mail.log.
        with open(self.inst.log_path, "a") as f:
            f.write('2026-12-03T10:00:00.000Z postern-queued[1]: info delivery.remote id=0123456789abcdef to=bob@remote.example '
                    'relay=mx.remote.example tls=yes verified=no tls_policy=opportunistic status=failed '
                    'reply="550 5.1.1 <bob@remote.example>: no such user"\n')
        b = self.admin()
        deadline = time.monotonic() + 30
        while True:
            r, page = b.request("GET", "/panel/")
            self.assertEqual(r.status, 200)
            if "DNS status" in page and 'class="dns"' in page or time.monotonic() > deadline:
                break
        self.assertIn("<h2>Certificate</h2>", page)
        self.assertIn(self.inst.hostname, page)
        self.assertRegex(page, r"expires \d{4}-\d\d-\d\dT[\d:]+Z? \(in \d+ days\)")
        self.assertIn("<h2>Disk</h2>", page)
        self.assertRegex(page, r"<td>\d+ %</td>")
        self.assertIn("spam filter: off (spam.enabled = false)", page)
        self.assertIn("bob@remote.example", page)
        self.assertIn("550 5.1.1 &lt;bob@remote.example&gt;: no such user", page)
        # DNS status: every record of the sheet, asked of the authoritative server.
        self.assertIn('class="dns"', page)
        self.assertRegex(page, r'<tr class="dns-ok"><td class="st-ok">OK</td><td>@</td><td>MX</td>')
        self.assertRegex(page, r'<tr class="dns-ok"><td class="st-ok">OK</td><td>mail</td><td>A</td>')
        dkim = re.search(r'<tr class="dns-missing"><td class="st-bad">MISSING</td><td>(p\d+r\w*)\._domainkey</td><td>TXT</td>.*?</tr>', page)
        self.assertTrue(dkim, page)
        self.assertIn(f"fix:</strong> <code>add {dkim.group(1)}._domainkey TXT v=DKIM1; k=rsa; p=", dkim.group(0))
        self.assertRegex(page, r'<tr class="dns-missing"><td class="st-bad">MISSING</td><td>@</td><td>TXT</td>.*fix:</strong> <code>add @ TXT v=spf1 mx ~all')
        self.assertIn("Some required records are missing or wrong.", page)


class SlowDns:
    """A name server that answers every query NXDOMAIN after `delay` seconds (a slow
    authoritative server: the delay is what it simulates, not a wait of the test)."""

    def __init__(self, delay):
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.sock.bind(("127.0.0.1", 0))
        self.sock.settimeout(0.2)
        self.server = "127.0.0.1:%d" % self.sock.getsockname()[1]
        self.delay = delay
        self.queries = 0
        self.stopping = False
        self.thread = threading.Thread(target=self._serve, daemon=True)
        self.thread.start()

    def _serve(self):
        while not self.stopping:
            try:
                query, peer = self.sock.recvfrom(4096)
            except socket.timeout:
                continue
            if len(query) < 12:
                continue
            self.queries += 1
            time.sleep(self.delay)
            flags = 0x8003 | (query[2] & 0x01) << 8  # QR, RCODE NXDOMAIN, RD copied
            self.sock.sendto(query[:2] + flags.to_bytes(2, "big") + query[4:6] + b"\0\0\0\0" + query[10:12] + query[12:], peer)

    def close(self):
        self.stopping = True
        self.thread.join(5)
        self.sock.close()


class SlowDnsCheck(unittest.TestCase):
    """The DNS check runs off webd's event loop: with a name server that takes 0.9 s per
    answer, the dashboard waits (at most kProbeWaitMs, 8 s) while every other page is served
    at once; the run ends at its time limit (kDnsCheckRunLimitMs, 10 s) with the records not
    asked by then shown as unknown, and webd still stops cleanly."""

    def test_dashboard_does_not_block_the_loop(self):
        dns = SlowDns(0.9)
        server = dns.server
        inst = Instance(domain="example.test")
        try:
            inst.ctl("user", "admin", ADMIN, "on")
            for key, value in (("dns.check_server", server), ("dns.servers", server), ("dns.timeout", "3s")):
                inst.set_conf(key, value)
            inst.start("postern-webd")
            b = Browser(inst.port("postern-webd", "https"), os.path.join(inst.config_dir, "tls", "cert.pem"))
            self.assertEqual(b.login(ADMIN, ADMIN_PW)[0].status, 303)
            result = {}

            def dashboard():
                t = time.monotonic()
                result["page"] = b.request("GET", "/panel/")[1]
                result["seconds"] = time.monotonic() - t

            waiting = threading.Thread(target=dashboard)
            waiting.start()
            wait_for(lambda: dns.queries > 0, timeout=20, what="the check's first query")
            t = time.monotonic()
            r, page = b.request("GET", "/panel/users")
            self.assertEqual(r.status, 200)
            self.assertLess(time.monotonic() - t, 2.0)
            self.assertTrue(waiting.is_alive())  # the dashboard is still waiting for the check
            waiting.join(30)
            self.assertIn("The DNS check is running", result["page"])
            self.assertGreater(result["seconds"], 7)
            # The run ends at its time limit: what was not asked is unknown, with the reason.
            deadline = time.monotonic() + 30
            while time.monotonic() < deadline:
                page = b.request("GET", "/panel/")[1]
                if 'class="dns"' in page:
                    break
            self.assertIn("not asked: the check&#39;s time limit passed", page)
            self.assertIn('<tr class="dns-unknown">', page)
            self.assertIn('<tr class="dns-missing"><td class="st-bad">MISSING</td><td>@</td><td>MX</td>', page)  # asked in time
            self.assertLess(dns.queries, 16)
        finally:
            inst.close()
            dns.close()


if __name__ == "__main__":
    unittest.main(verbosity=2)
