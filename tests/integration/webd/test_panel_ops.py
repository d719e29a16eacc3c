"""The web panel's operations pages (panel_ops_pages.h) over real HTTPS: the queue
page on a real deferred message (postern-queued could not resolve the recipient's
domain: its DNS server does not answer) — list by state, show, hold, release,
retry, delete, each a CSRF-protected POST with a confirmation step and an audit
line — checked against `posternctl queue list`; log search finding a delivery made
over SMTP, escaping a hostile term and its log line, the term length limit at its
boundary; settings: a bad value refused with the schema's message, a good one
written to postern.conf (posternctl config get), a key that is not run-time safe
refused by webd's helper; POSTs without the CSRF token refused; a non-administrator
kept out."""

import html
import os
import re
import smtplib
import socket
import unittest
import urllib.parse

from postern_testlib import Instance, wait_for
from panel_client import ADMIN, Browser, admin_browser


class PanelOps(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        # A UDP port with nobody behind it: postern-queued's DNS lookups time out, the message is deferred.
        s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        s.bind(("127.0.0.1", 0))
        dead_dns = f"127.0.0.1:{s.getsockname()[1]}"
        s.close()
        cls.inst = Instance(domain="example.test", conf={"dns.servers": dead_dns, "dns.timeout": "1s", "queue.retry_min": "1h",
                                                          "queue.retry_max": "2h"})
        cls.inst.ctl("user", "admin", ADMIN, "on")
        cls.inst.add_user("carol@example.test", "carol-password-1")
        for p in ("postern-webd", "postern-smtpd", "postern-queued"):
            cls.inst.start(p)
        cls.https = cls.inst.port("postern-webd", "https")
        cls.ca = os.path.join(cls.inst.config_dir, "tls", "cert.pem")

    @classmethod
    def tearDownClass(cls):
        cls.inst.close()

    def admin(self):
        return admin_browser(self)

    def queue(self):
        return self.inst.ctl("queue", "list").stdout

    def post_confirmed(self, b, action, qid):
        """The confirmation page, then its form (as a browser would)."""
        r, page = b.request("GET", f"/panel/queue/confirm?action={action}&id={qid}")
        self.assertEqual(r.status, 200, page)
        self.assertIn(f'action="/panel/queue/{action}"', page)
        self.assertIn('name="confirm" value="yes"', page)
        r, _ = b.request("POST", f"/panel/queue/{action}", form={"csrf": b.csrf(page), "id": qid, "confirm": "yes"})
        self.assertEqual(r.status, 303)
        return b.request("GET", r.getheader("Location"))[1]

    def test_queue_deferred_message_hold_release_retry_delete(self):
        qid = self.inst.queue_message(ADMIN, ["x@unreachable.test"], b"From: alice@example.test\r\nSubject: stuck <b>here</b>\r\n\r\nhi\r\n")
        wait_for(lambda: re.search(rf"{qid}  deferred .*attempts 1,", self.queue()), timeout=30, what="the message to be deferred")
        b = self.admin()
        r, page = b.request("GET", "/panel/queue?state=deferred")
        self.assertEqual(r.status, 200)
        self.assertIn(qid, page)
        self.assertIn("x@unreachable.test", page)
        r, page = b.request("GET", "/panel/queue?state=hold")
        self.assertNotIn(qid, page)
        r, page = b.request("GET", f"/panel/queue/message?id={qid}")
        self.assertEqual(r.status, 200)
        self.assertRegex(page, r"<th>Attempts</th><td>[1-9]")
        self.assertIn("<th>State</th><td>deferred</td>", page)
        self.assertIn("stuck &lt;b&gt;here&lt;/b&gt;", page)  # the subject, escaped
        diag = re.search(r"<td>x@unreachable\.test</td><td>pending</td><td>([^<]+)</td>", page)
        self.assertTrue(diag and diag.group(1).strip(), page)  # the last error is shown

        # Unconfirmed: nothing happens.
        r, _ = b.request("POST", "/panel/queue/hold", form={"csrf": b.csrf(page), "id": qid})
        self.assertEqual(r.status, 303)
        self.assertIn(f"{qid}  deferred", self.queue())

        page = self.post_confirmed(b, "hold", qid)
        self.assertIn(f"{qid} held.", page)
        self.assertIn(f"{qid}  hold", self.queue())
        self.assertRegex(self.inst.log(), rf"panel\.audit.*user=alice@example\.test.*action=queue\.hold.*target={qid}.*result=ok")
        page = self.post_confirmed(b, "release", qid)
        self.assertIn(f"{qid} released, due now.", page)
        # Due now: the runner tries it again (a second attempt), then it waits an hour (queue.retry_min).
        wait_for(lambda: re.search(rf"{qid}  deferred .*attempts 2,", self.queue()), timeout=30, what="a second attempt after release")
        page = self.post_confirmed(b, "retry", qid)
        self.assertIn(f"{qid} due now.", page)
        wait_for(lambda: re.search(rf"{qid}  deferred .*attempts 3,", self.queue()), timeout=30, what="a third attempt after retry")

        # A wrong state is refused with the core's message.
        r, page = b.request("POST", "/panel/queue/release", form={"csrf": b.csrf(page), "id": qid, "confirm": "yes"})
        _, page = b.request("GET", r.getheader("Location"))
        self.assertIn("&#39;release&#39; works on hold messages", page)

        def delete():
            _, p = b.request("GET", f"/panel/queue/confirm?action=delete&id={qid}")
            r, _ = b.request("POST", "/panel/queue/delete", form={"csrf": b.csrf(p), "id": qid, "confirm": "yes"})
            _, p = b.request("GET", r.getheader("Location"))
            return f"{qid} deleted (no bounce sent)." in p
        wait_for(delete, timeout=30, what="delete (between attempts)")
        self.assertNotIn(qid, self.queue())
        self.assertRegex(self.inst.log(), rf"panel\.audit.*action=queue\.delete.*target={qid}.*result=ok")

    def test_queue_list_limit(self):
        """kPanelQueueRows (200): 200 held messages are all listed, the 201st is counted but not listed."""
        hold = os.path.join(self.inst.data_dir, "queue", "hold")
        os.makedirs(hold, exist_ok=True)
        owner = os.stat(os.path.join(self.inst.data_dir, "queue")).st_uid
        ids = []

        def put(n):  # straight into hold/ (the runner leaves held mail alone), body first, envelope last
            for i in range(n):
                qid = "FEED%012X" % (len(ids) + 1)
                for name, text in ((qid + ".body", "Subject: many\r\n\r\nx\r\n"),
                                   (qid + ".env", f"POSTERN-QUEUE 2\nid: {qid}\narrival: 1\nsender: a@example.test\nauth-user: \n"
                                                  "client: 127.0.0.1 t\nbody: 7BIT\nsmtputf8: no\nret: \nenvid: \nsize: 17\n"
                                                  "recipient: z@unreachable.test notify=- orcpt=- status=pending\n")):
                    path = os.path.join(hold, name)
                    with open(path, "w") as f:
                        f.write(text)
                    os.chown(path, owner, -1)
                ids.append(qid)
        try:
            b = self.admin()
            put(200)
            _, page = b.request("GET", "/panel/queue?state=hold")
            self.assertEqual(len(re.findall(r"<code>FEED", page)), 200)
            self.assertNotIn("more not shown", page)
            put(1)
            _, page = b.request("GET", "/panel/queue?state=hold")
            self.assertEqual(len(re.findall(r"<code>FEED", page)), 200)
            self.assertIn("1 more not shown", page)
            self.assertIn("hold (201)", page)
        finally:
            for qid in ids:
                for ext in (".env", ".body"):
                    try:
                        os.unlink(os.path.join(hold, qid + ext))
                    except FileNotFoundError:
                        pass

    def test_queue_ids_are_validated_and_escaped(self):
        b = self.admin()
        r, page = b.request("GET", "/panel/queue/message?id=" + urllib.parse.quote("../../etc/<b>passwd"))
        self.assertEqual(r.status, 404)
        self.assertIn("is not a queue id", page)
        self.assertNotIn("<b>passwd", page)

    def test_csrf_less_posts_are_refused(self):
        qid = self.inst.queue_message(ADMIN, ["y@unreachable.test"], b"Subject: csrf\r\n\r\nhi\r\n")
        b = self.admin()
        for path, form in (("/panel/queue/delete", {"id": qid, "confirm": "yes"}),
                           ("/panel/queue/hold", {"csrf": "0" * 64, "id": qid, "confirm": "yes"}),
                           ("/panel/settings/set", {"key": "smtp.max_recipients", "value": "7"})):
            r, page = b.request("POST", path, form=form)
            self.assertEqual(r.status, 403, path)
            self.assertIn("CSRF", page)
        self.assertIn(qid, self.queue())
        self.assertEqual(self.inst.ctl("config", "get", "smtp.max_recipients").stdout.strip(), "100")

    def test_not_for_users(self):
        b = Browser(self.https, self.ca)
        r, _ = b.login("carol@example.test", "carol-password-1")
        self.assertEqual(r.status, 303)
        for path in ("/panel/queue", "/panel/logs?q=x", "/panel/settings"):
            r, _ = b.request("GET", path)
            self.assertEqual(r.status, 403, path)
        _, page = b.request("GET", "/panel/account")
        r, _ = b.request("POST", "/panel/settings/set", form={"csrf": b.csrf(page), "key": "smtp.max_recipients", "value": "7"})
        self.assertEqual(r.status, 403)
        self.assertEqual(self.inst.ctl("config", "get", "smtp.max_recipients").stdout.strip(), "100")

    def test_log_search(self):
        with smtplib.SMTP("127.0.0.1", self.inst.port("postern-smtpd", "smtp"), timeout=15) as s:
            s.sendmail("someone@far-away-sender.test", [ADMIN],
                       "From: someone@far-away-sender.test\r\nTo: alice@example.test\r\nSubject: for the log\r\n\r\nhello\r\n")
        wait_for(lambda: [m for m in self.inst.messages(ADMIN) if b"for the log" in m], timeout=30, what="the delivery")
        b = self.admin()
        r, page = b.request("GET", "/panel/logs?q=far-away-sender.test")
        self.assertEqual(r.status, 200)
        log = re.search(r'<pre id="log">(.*?)</pre>', page, re.S)
        self.assertTrue(log, page)
        # The whole session: the sender's line and the delivery to alice, which does not name the sender.
        self.assertIn("far-away-sender.test", log.group(1))
        self.assertRegex(log.group(1), r"alice@example\.test")
        self.assertGreater(len(log.group(1).splitlines()), 2)
        # The same lines as posternctl log search (one implementation), escaped.
        self.assertEqual(html.unescape(log.group(1)).strip().splitlines(),
                         self.inst.ctl("log", "search", "far-away-sender.test").stdout.strip().splitlines())

        # A hostile term: it lands in the log (the refused queue action's audit line), then is searched for.
        hostile = "<script>alert(1)</script>"
        _, page = b.request("GET", "/panel/queue")
        b.request("POST", "/panel/queue/hold", form={"csrf": b.csrf(page), "id": hostile, "confirm": "yes"})
        r, page = b.request("GET", "/panel/logs?q=" + urllib.parse.quote(hostile))
        self.assertEqual(r.status, 200)
        self.assertNotIn("<script>", page)
        self.assertIn("&lt;script&gt;alert(1)&lt;/script&gt;", page)
        self.assertIn('<pre id="log">', page)

        # The term length: 200 characters pass, 201 are refused.
        r, page = b.request("GET", "/panel/logs?q=" + "a" * 200)
        self.assertEqual(r.status, 200)
        self.assertIn("Nothing mentions", page)
        r, page = b.request("GET", "/panel/logs?q=" + "a" * 201)
        self.assertEqual(r.status, 400)
        self.assertIn("too long", page)

    def test_settings_validated_and_applied(self):
        b = self.admin()
        r, page = b.request("GET", "/panel/settings")
        self.assertEqual(r.status, 200)
        self.assertIn("smtp.max_recipients", page)
        self.assertIn("Recipients per message", page)  # the schema's help text
        self.assertNotIn('value="relay.host"', page)   # not run-time safe: not offered
        r, _ = b.request("POST", "/panel/settings/set", form={"csrf": b.csrf(page), "key": "smtp.max_recipients", "value": "0"})
        self.assertEqual(r.status, 303)
        _, page = b.request("GET", "/panel/settings")
        self.assertIn("smtp.max_recipients: 0 is outside the allowed range 1..100000", page)
        self.assertEqual(self.inst.ctl("config", "get", "smtp.max_recipients").stdout.strip(), "100")
        r, _ = b.request("POST", "/panel/settings/set", form={"csrf": b.csrf(page), "key": "smtp.max_recipients", "value": "250"})
        _, page = b.request("GET", "/panel/settings")
        self.assertIn("smtp.max_recipients = 250", page)
        self.assertEqual(self.inst.ctl("config", "get", "smtp.max_recipients").stdout.strip(), "250")
        with open(os.path.join(self.inst.config_dir, "postern.conf")) as f:
            self.assertIn("smtp.max_recipients = 250\n", f.read())
        self.assertRegex(self.inst.log(), r"panel\.audit.*action=config\.set.*target=\"?smtp\.max_recipients = 250.*result=ok")
        # A key the panel does not offer is refused by the helper itself.
        r, _ = b.request("POST", "/panel/settings/set", form={"csrf": b.csrf(page), "key": "relay.host", "value": "evil.example"})
        _, page = b.request("GET", "/panel/settings")
        self.assertIn("relay.host cannot be changed here", page)
        self.assertEqual(self.inst.ctl("config", "get", "relay.host").stdout.strip(), "")
        # kPanelSettingValue: 1000 characters reach the schema (which refuses this one), 1001 are refused before.
        b.request("POST", "/panel/settings/set", form={"csrf": b.csrf(page), "key": "smtp.max_recipients", "value": "9" * 1000})
        _, page = b.request("GET", "/panel/settings")
        self.assertIn("smtp.max_recipients:", page)
        self.assertNotIn("too long", page)
        b.request("POST", "/panel/settings/set", form={"csrf": b.csrf(page), "key": "smtp.max_recipients", "value": "9" * 1001})
        _, page = b.request("GET", "/panel/settings")
        self.assertIn("The value is too long (at most 1000 characters).", page)
        self.assertEqual(self.inst.ctl("config", "get", "smtp.max_recipients").stdout.strip(), "250")
        self.inst.set_conf("smtp.max_recipients", "100")


if __name__ == "__main__":
    unittest.main(verbosity=2)
