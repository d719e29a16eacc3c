"""Per-user submission limits (smtp.user_messages_per_hour/_per_day, smtp.user_recipients_per_hour/_per_day;
common/send_rate.h) through the real postern-smtpd over submission with STARTTLS and AUTH:
the N+1th message in the window gets 451 4.7.0 at MAIL with a clear text while another user is
unaffected; the recipients limit refuses the RCPT that would pass it; the counts live in the data
folder, so a restarted daemon still refuses; logged (smtp.send_limited) and counted
(postern_smtp_send_limited_total{limit=...})."""

import json
import os
import smtplib
import ssl
import unittest

from postern_testlib import Instance

ALICE, BOB, CAROL = "alice@example.test", "bob@example.test", "carol@example.test"
USERS = {ALICE: "alice-password-1", BOB: "bob-password-1", CAROL: "carol-password-1"}


def body(user, n):
    return f"From: <{user}>\r\nSubject: {n}\r\n\r\nhello {n}\r\n".encode()


class SendLimits(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.inst = Instance(users=USERS, conf={"smtp.user_messages_per_hour": "3", "smtp.user_recipients_per_hour": "5"})
        cls.inst.start("postern-smtpd")
        cls.ctx = ssl.create_default_context(cafile=os.path.join(cls.inst.config_dir, "tls", "cert.pem"))
        cls.ctx.check_hostname = False

    @classmethod
    def tearDownClass(cls):
        cls.inst.close()

    def session(self, user):
        c = smtplib.SMTP("127.0.0.1", self.inst.port("postern-smtpd", "submission"), timeout=30)
        c.ehlo("client.test")
        c.starttls(context=self.ctx)
        c.ehlo("client.test")
        c.login(user, USERS[user])
        return c

    def send(self, c, user, rcpts, n):
        code, text = c.mail(user)
        if code != 250:
            c.rset()
            return code, text
        for r in rcpts:
            code, text = c.rcpt(r)
            if code != 250:
                c.rset()
                return code, text
        return c.data(body(user, n))

    def test_messages_per_hour_and_other_user_unaffected(self):
        with self.session(ALICE) as c:
            for n in range(3):  # the limit passes
                code, text = self.send(c, ALICE, [BOB], n)
                self.assertEqual(code, 250, text)
            code, text = self.send(c, ALICE, [BOB], 3)  # limit + 1
            self.assertEqual(code, 451, text)
            self.assertIn(b"4.7.0", text)
            self.assertIn(b"at most 3 messages per hour", text)
        with self.session(BOB) as c:  # another user: his own count
            for n in range(3):
                code, text = self.send(c, BOB, [ALICE], n)
                self.assertEqual(code, 250, text)
        self.assertRegex(self.inst.log(), r"smtp.send_limited.*user=\"?alice@example.test.*limit=\"?messages_per_hour")

        # Across a restart: the counts are in the data folder, alice is still refused.
        self.inst.stop("postern-smtpd")
        with open(os.path.join(self.inst.run_dir, "postern-smtpd.stats")) as f:
            counters = {(c["name"], tuple(sorted(c["labels"].items()))): c["value"] for c in json.load(f)["counters"]}
        self.assertGreaterEqual(counters[("postern_smtp_send_limited_total", (("limit", "messages_per_hour"),))], 1)
        self.inst.start("postern-smtpd")
        with self.session(ALICE) as c:
            code, text = self.send(c, ALICE, [BOB], 4)
            self.assertEqual(code, 451, text)
        self.assertTrue(os.listdir(os.path.join(self.inst.data_dir, "send-rate")))

    def test_recipients_per_hour_refuses_the_rcpt_over_the_limit(self):
        with self.session(CAROL) as c:
            code, text = self.send(c, CAROL, [ALICE, BOB, "x1@elsewhere.test", "x2@elsewhere.test"], 0)
            self.assertEqual(code, 250, text)
            self.assertEqual(c.mail(CAROL)[0], 250)
            self.assertEqual(c.rcpt("x3@elsewhere.test")[0], 250)  # 5: the limit passes
            code, text = c.rcpt("x4@elsewhere.test")  # 6: refused
            self.assertEqual(code, 451, text)
            self.assertIn(b"4.7.0", text)
            self.assertIn(b"at most 5 recipients per hour", text)
            code, text = c.data(body(CAROL, 1))  # the message goes to the 5th only
            self.assertEqual(code, 250, text)
            code, text = self.send(c, CAROL, [ALICE], 2)
            self.assertEqual(code, 451, text)


if __name__ == "__main__":
    unittest.main()
