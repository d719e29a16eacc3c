"""Sieve mail that leaves the mailbox, end to end over real SMTP (smtplib and a raw
socket) with postern-smtpd and postern-queued running:

  * vacation: the reply goes through the outbound queue (DKIM-signed, from the null
    sender, Auto-Submitted: auto-replied, In-Reply-To) into the sender's Maildir,
    once per sender per period: a second message in the period gets none; no reply
    to a mailing-list message or to automatic mail;
  * redirect: the message goes through the queue to the target with an SRS0
    envelope sender of our domain and our Delivered-To in front; the original
    mailbox keeps nothing; the null sender stays null;
  * a bounce sent to that SRS0 address is accepted and queued back to the original
    sender (by postern-smtpd at RCPT, and by postern-queued's local delivery for a
    bounce already in the queue); a tampered SRS0 address is refused at RCPT with 550;
  * a redirect loop (two users redirecting to each other) ends in a mailbox.

Remote domains have no DNS here (dns.servers points at a closed port): mail for
them stays in the queue, where the test reads its envelope."""

import os
import re
import smtplib
import socket
import tempfile
import unittest

from postern_testlib import Instance, free_port, wait_for

USERS = {f"{name}@example.test": f"{name}-password-{i}" for i, name in
         enumerate(["bob", "carol", "dave", "erin", "frank", "gina", "hank", "ivan", "judy"])}


class SieveOutbound(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.inst = Instance(users=USERS, conf={"dns.servers": f"127.0.0.1:{free_port(socket.SOCK_DGRAM)}",
                                               "dns.timeout": "1s", "queue.retry_min": "1h"})
        cls.inst.start("postern-smtpd")
        cls.inst.start("postern-queued")
        cls.smtp = cls.inst.port("postern-smtpd", "smtp")
        cls.tmp = tempfile.mkdtemp(prefix="postern-sieve-out-")

    @classmethod
    def tearDownClass(cls):
        cls.inst.close()
        import shutil
        shutil.rmtree(cls.tmp, ignore_errors=True)

    def put(self, user, script):
        path = os.path.join(self.tmp, user + ".sieve")
        with open(path, "w") as f:
            f.write(script)
        self.inst.ctl("sieve", "put", user, "main", path, "--activate")

    def send(self, sender, rcpt, subject, extra="", to=None):
        with smtplib.SMTP("127.0.0.1", self.smtp, timeout=30) as s:
            s.sendmail(sender, [rcpt], f"From: {sender or 'daemon@remote.test'}\r\nTo: {to or rcpt}\r\nSubject: {subject}\r\n"
                                       f"Message-ID: <{subject.replace(' ', '-')}@remote.test>\r\n{extra}\r\nhello\r\n")

    def queued(self):
        """(sender, [recipients]) of every envelope in the queue."""
        out = []
        queue = os.path.join(self.inst.data_dir, "queue")
        for state in ("incoming", "active", "deferred"):
            d = os.path.join(queue, state)
            for name in os.listdir(d) if os.path.isdir(d) else []:
                if not name.endswith(".env") or name.startswith("."):
                    continue
                try:
                    with open(os.path.join(d, name)) as f:
                        text = f.read()
                except FileNotFoundError:
                    continue
                sender = re.search(r"(?m)^sender: ?(.*)$", text).group(1)
                out.append((sender, re.findall(r"(?m)^recipient: (\S+)", text)))
        return out

    def test_vacation_once_per_sender_and_not_to_lists(self):
        self.put("bob@example.test", 'require "vacation";\nvacation :days 1 :subject "Out of office" "I am away until Monday.";\n')
        self.send("carol@example.test", "bob@example.test", "first question")
        wait_for(lambda: self.inst.messages("carol@example.test"), timeout=30, what="the vacation reply in carol's INBOX")
        reply = self.inst.messages("carol@example.test")[0]
        self.assertIn(b"Return-Path: <>\r\n", reply)
        self.assertIn(b"Subject: Out of office\r\n", reply)
        self.assertIn(b"Auto-Submitted: auto-replied\r\n", reply)
        self.assertIn(b"In-Reply-To: <first-question@remote.test>\r\n", reply)
        self.assertIn(b"From: <bob@example.test>\r\n", reply)
        self.assertIn(b"DKIM-Signature:", reply)  # signed by the queue like any mail of bob's
        self.assertIn(b"I am away until Monday.", reply)
        # bob has the message itself (vacation keeps).
        self.assertEqual(len(self.inst.messages("bob@example.test")), 1)
        # Same sender again within the day: delivered, no second reply.
        self.send("carol@example.test", "bob@example.test", "second question")
        wait_for(lambda: len(self.inst.messages("bob@example.test")) == 2, what="second message for bob")
        wait_for(lambda: "vacation: carol@example.test was answered within the last 86400 s" in self.inst.log(),
                 what="the dedupe note in the log")
        # Another sender gets a reply; a list message and automatic mail do not.
        self.send("frank@example.test", "bob@example.test", "list post", extra="List-Id: <talk.remote.test>\r\n")
        self.send("gina@example.test", "bob@example.test", "auto mail", extra="Auto-Submitted: auto-generated\r\n")
        self.send("hank@example.test", "bob@example.test", "hank asks")
        wait_for(lambda: self.inst.messages("hank@example.test"), timeout=30, what="the vacation reply to hank")
        wait_for(lambda: "vacation: no reply (mailing list (list-id))" in self.inst.log(), what="list note")
        wait_for(lambda: "vacation: no reply (Auto-Submitted: auto-generated)" in self.inst.log(), what="auto note")
        # Nothing is queued for them, and nothing arrived.
        self.assertFalse([e for e in self.queued() if set(e[1]) & {"frank@example.test", "gina@example.test"}])
        self.assertEqual(self.inst.messages("frank@example.test"), [])
        self.assertEqual(self.inst.messages("gina@example.test"), [])
        self.assertEqual(len(self.inst.messages("carol@example.test")), 1)

    def test_redirect_with_srs_and_bounce_back(self):
        self.put("erin@example.test", 'redirect "dave@example.test";\n')
        self.send("someone@remote.test", "erin@example.test", "for erin")
        wait_for(lambda: self.inst.messages("dave@example.test"), timeout=30, what="the redirected message at dave")
        got = self.inst.messages("dave@example.test")[0]
        m = re.search(rb"Return-Path: <(SRS0=[^>]+@example\.test)>\r\n", got)
        self.assertIsNotNone(m, got[:400])
        srs = m.group(1).decode()
        self.assertRegex(srs, r"^SRS0=[A-Z2-7]{8}=[A-Z2-7]{2}=remote\.test=someone@example\.test$")
        self.assertIn(b"Delivered-To: erin@example.test\r\n", got)
        self.assertIn(b"Subject: for erin", got)
        self.assertEqual(self.inst.messages("erin@example.test"), [])  # redirect cancels the keep
        # A bounce to the SRS address goes back to the original sender (queued: no DNS for remote.test).
        with smtplib.SMTP("127.0.0.1", self.smtp, timeout=30) as s:
            s.sendmail("", [srs.lower()], "From: MAILER-DAEMON@elsewhere.test\r\nSubject: Undelivered\r\n\r\nbounce\r\n")
        wait_for(lambda: ("", ["someone@remote.test"]) in self.queued(), timeout=30, what="the bounce queued to the original sender")
        # The queue runner's local delivery decodes SRS addresses too (a bounce our own queue made):
        # the original sender is added to the same envelope; a forged one fails.
        self.inst.queue_message("", [srs], b"From: MAILER-DAEMON@example.test\r\nSubject: dsn\r\n\r\nbounce\r\n")
        wait_for(lambda: ("", [srs, "someone@remote.test"]) in self.queued(), timeout=30, what="the queue runner passing the bounce on")
        self.inst.queue_message("", [srs.replace("someone", "eve")], b"Subject: forged\r\n\r\nx\r\n")
        wait_for(lambda: "invalid SRS address (bad hash)" in self.inst.log(), timeout=30, what="the forged SRS address failing")
        # A tampered or unknown SRS address is refused at RCPT.
        forged = srs.replace("someone", "mallory")
        with smtplib.SMTP("127.0.0.1", self.smtp, timeout=30) as s:
            s.ehlo()
            s.mail("")
            code, text = s.rcpt(forged)
            self.assertEqual(code, 550, text)
        # The null sender stays null.
        self.send("", "erin@example.test", "null sender")
        wait_for(lambda: len(self.inst.messages("dave@example.test")) == 2, timeout=30, what="second redirected message")
        self.assertIn(b"Return-Path: <>\r\n", self.inst.messages("dave@example.test")[1])

    def test_redirect_loop_ends_in_a_mailbox(self):
        self.put("ivan@example.test", 'redirect "judy@example.test";\n')
        self.put("judy@example.test", 'redirect "ivan@example.test";\n')
        self.send("loop@remote.test", "ivan@example.test", "round and round")
        # ivan -> judy -> ivan: ivan sees her own Delivered-To and keeps it.
        wait_for(lambda: any(b"round and round" in m for m in self.inst.messages("ivan@example.test")), timeout=30,
                 what="the looping message kept by ivan")
        self.assertFalse(any(b"round and round" in m for m in self.inst.messages("judy@example.test")))
        self.assertIn("mail loop (Delivered-To: ivan@example.test already present)", self.inst.log())


if __name__ == "__main__":
    unittest.main()
