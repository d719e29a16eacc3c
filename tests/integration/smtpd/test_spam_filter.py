"""Spam filtering of inbound mail with the real Rspamd from Debian (postern_testlib.Rspamd:
a minimal configuration on a unix socket, GTUBE-like test patterns on).

Rspamd's verdict decides, before the final reply to DATA/BDAT: reject -> 550 5.7.1 and nothing
stored; add header / rewrite subject -> 250, the Junk folder, X-Spam-Status/X-Spam-Score;
no action -> INBOX (X-Spam-Status: No). X-Spam-* fields from outside are removed. Rspamd down,
silent or stopped: accepted with "X-Spam-Status: unchecked" and counted
(postern_spam_scans_total{result="unchecked"}), or 451 4.7.1 with spam.on_failure = tempfail;
no acknowledged message is lost, no refused one stored."""

import json
import os
import re
import smtplib
import socket
import ssl
import tempfile
import shutil
import threading
import unittest

from postern_testlib import NOW_DATE, Instance, Rspamd, wait_for

RCPT = "alice@example.test"
BOB = "bob@example.test"
VERA = "vera@example.test"  # has a vacation script (test_no_vacation_reply_to_spam)


def message(marker=b"", extra_headers=b"", body=b"Hello Alice,\r\nsee you tomorrow.\r\n"):
    return (b"From: Bob <bob@remote.test>\r\nTo: alice@example.test\r\nSubject: hello\r\n"
            b"Message-ID: <m1@remote.test>\r\nDate: " + NOW_DATE + b"\r\n" + extra_headers + b"\r\n" + body +
            (marker + Rspamd.GTUBE + b"\r\n" if marker else b""))


def send(inst, data, bdat=False):
    """Sends one message over the MX listener; returns (code, text) of the final reply."""
    with smtplib.SMTP("127.0.0.1", inst.port("postern-smtpd", "smtp"), timeout=30) as s:
        s.ehlo("mx.remote.test")
        s.mail("bob@remote.test")
        s.rcpt(RCPT)
        if bdat:
            s.putcmd("BDAT %d LAST" % len(data))
            s.send(data)
            return s.getreply()
        return s.data(data)


def submit(inst, user, password, rcpt, data):
    """Sends one message over submission (STARTTLS, AUTH); returns (code, text) of the final reply."""
    ctx = ssl.create_default_context(cafile=os.path.join(inst.config_dir, "tls", "cert.pem"))
    ctx.check_hostname = False
    with smtplib.SMTP("127.0.0.1", inst.port("postern-smtpd", "submission"), timeout=30) as s:
        s.ehlo("client.test")
        s.starttls(context=ctx)
        s.ehlo("client.test")
        s.login(user, password)
        s.mail(user)
        s.rcpt(rcpt)
        return s.data(data)


def outbound(marker=b""):
    return (b"From: Alice <alice@example.test>\r\nTo: friend@elsewhere.test\r\nSubject: news\r\n"
            b"Message-ID: <o1@example.test>\r\nDate: " + NOW_DATE + b"\r\n\r\nHi,\r\nhow are you?\r\n" +
            (marker + Rspamd.GTUBE + b"\r\n" if marker else b""))


def queued(inst):
    d = os.path.join(inst.data_dir, "queue", "incoming")
    return sorted(n for n in os.listdir(d) if n.endswith(".env")) if os.path.isdir(d) else []


def counters(inst):
    """postern-smtpd's counters, from the stats file it writes at exit."""
    with open(os.path.join(inst.run_dir, "postern-smtpd.stats")) as f:
        return {(c["name"], tuple(sorted(c["labels"].items()))): c["value"] for c in json.load(f)["counters"]}


def spam_instance(address, users=None, **conf):
    inst = Instance(conf={"spam.enabled": "true", "spam.rspamd_address": address, "spam.timeout": "3s", **conf}, users=users)
    inst.start("postern-smtpd")
    return inst


class SpamFilter(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.rspamd = Rspamd()
        cls.inst = spam_instance(cls.rspamd.socket, users={RCPT: "alice-password-1", BOB: "bob-password-1", VERA: "vera-password-1"},
                                 **{"spam.inbox_users": BOB})

    @classmethod
    def tearDownClass(cls):
        cls.inst.close()
        cls.rspamd.close()

    def setUp(self):
        self.before_inbox = len(self.inst.messages(RCPT))
        self.before_junk = len(self.inst.messages(RCPT, "Junk"))

    def new_in(self, folder=""):
        before = self.before_junk if folder == "Junk" else self.before_inbox
        return self.inst.messages(RCPT, folder)[before:]

    def test_reject_is_refused_and_not_stored(self):
        code, text = send(self.inst, message(b"X"))
        self.assertEqual(code, 550, text)
        self.assertIn(b"5.7.1", text)
        self.assertEqual(self.new_in(), [])
        self.assertEqual(self.new_in("Junk"), [])
        self.assertRegex(self.inst.log(), r"spam.verdict.*action=\"?reject")

    def test_add_header_goes_to_junk(self):
        for bdat in (False, True):
            code, text = send(self.inst, message(b"Y"), bdat=bdat)
            self.assertEqual(code, 250, text)
        junk = self.new_in("Junk")
        self.assertEqual(len(junk), 2)
        self.assertEqual(self.new_in(), [])
        for m in junk:
            head = m.split(b"\r\n\r\n", 1)[0]
            self.assertIn(b'X-Spam-Status: Yes, score=6.00 required=15.00 action="add header"\r\n', head)
            self.assertIn(b"X-Spam-Score: 6.00\r\n", head)
            self.assertTrue(m.endswith(b"YJS" + Rspamd.GTUBE[2:] + b"\r\n"))

    def test_inbox_user_gets_spam_tagged_in_inbox(self):
        # spam.inbox_users = bob@example.test: the same message goes to alice's Junk and bob's INBOX.
        bob_inbox = len(self.inst.messages(BOB))
        with smtplib.SMTP("127.0.0.1", self.inst.port("postern-smtpd", "smtp"), timeout=30) as s:
            s.ehlo("mx.remote.test")
            self.assertEqual(s.sendmail("carol@remote.test", [RCPT, BOB], message(b"Y")), {})
        [m] = self.inst.messages(BOB)[bob_inbox:]
        self.assertIn(b'X-Spam-Status: Yes, score=6.00 required=15.00 action="add header"\r\n', m)
        self.assertEqual(self.inst.messages(BOB, "Junk"), [])
        self.assertEqual(len(self.new_in("Junk")), 1)
        self.assertEqual(self.new_in(), [])

    def test_rewrite_subject_goes_to_junk_subject_kept(self):
        code, text = send(self.inst, message(b"Z"))
        self.assertEqual(code, 250, text)
        junk = self.new_in("Junk")
        self.assertEqual(len(junk), 1)
        self.assertIn(b'action="rewrite subject"', junk[0])
        self.assertIn(b"\r\nSubject: hello\r\n", junk[0])

    def test_no_action_goes_to_inbox(self):
        code, text = send(self.inst, message(b"A"))
        self.assertEqual(code, 250, text)
        inbox = self.new_in()
        self.assertEqual(len(inbox), 1)
        self.assertIn(b'X-Spam-Status: No, score=0.00 required=15.00 action="no action"\r\n', inbox[0])
        self.assertEqual(self.new_in("Junk"), [])

    def test_large_message_is_streamed(self):
        # 6 MB: many chunks through the socket's bounded buffer. Rspamd's log names the queue id
        # and the length it received: the whole spool file (our Received field first).
        body = b"".join(b"line %07d of a long and boring but legitimate newsletter\r\n" % i for i in range(100000))
        code, text = send(self.inst, message(body=body))
        self.assertEqual(code, 250, text)
        qid = re.search(rb"queued as ([0-9A-F]+)", text).group(1).decode()
        [m] = self.new_in()
        self.assertIn(b'action="no action"', m)
        self.assertTrue(m.endswith(body))
        spooled = len(m) - m.index(b"Received: ")
        self.assertRegex(self.rspamd.log(), r"qid: <%s>.*len: %d," % (qid, spooled))

    def queued_to(self, address):
        """Envelope senders of the messages in the outbound queue for `address`."""
        out = []
        for state in ("incoming", "active", "deferred"):
            d = os.path.join(self.inst.data_dir, "queue", state)
            for name in os.listdir(d) if os.path.isdir(d) else []:
                if not name.endswith(".env") or name.startswith("."):
                    continue
                try:
                    with open(os.path.join(d, name)) as f:
                        text = f.read()
                except FileNotFoundError:
                    continue
                if re.search(r"(?m)^recipient: %s( |$)" % re.escape(address), text):
                    out.append(re.search(r"(?m)^sender: ?(.*)$", text).group(1))
        return out

    def test_no_vacation_reply_to_spam(self):
        """A message Rspamd classifies as spam (add header: X-Spam-Status: Yes, Junk folder) gets
        no vacation reply (a forged sender would get backscatter); a clean one from another
        sender does (the control: the script does reply)."""
        d = tempfile.mkdtemp(prefix="postern-test-spamvacation-")
        try:
            path = os.path.join(d, "v.sieve")
            with open(path, "w") as f:
                f.write('require "vacation";\nvacation :days 1 "I am away.";\n')
            self.inst.ctl("sieve", "put", VERA, "away", path, "--activate")
        finally:
            shutil.rmtree(d, ignore_errors=True)
        def deliver(sender, marker):
            data = message(marker).replace(b"To: alice@example.test", b"To: " + VERA.encode())
            with smtplib.SMTP("127.0.0.1", self.inst.port("postern-smtpd", "smtp"), timeout=30) as s:
                s.ehlo("mx.remote.test")
                self.assertEqual(s.sendmail(sender, [VERA], data), {})
        deliver("spammer@remote.test", b"Y")
        [junk] = self.inst.messages(VERA, "Junk")
        self.assertIn(b'X-Spam-Status: Yes, score=6.00 required=15.00 action="add header"\r\n', junk)
        wait_for(lambda: "no reply to mail classified as spam or quarantined" in self.inst.log(), timeout=30,
                 what="the no-reply note for the spam")
        deliver("friend@remote.test", b"A")
        self.assertEqual(len(self.inst.messages(VERA)), 1)
        wait_for(lambda: self.queued_to("friend@remote.test") == [""], timeout=30, what="the vacation reply to the clean message")
        self.assertEqual(self.queued_to("spammer@remote.test"), [])

    def test_forged_spam_headers_are_removed(self):
        forged = (b"X-Spam-Status: No, score=-100\r\nx-spam-flag: NO\r\nX-Spam-Score:\r\n -100\r\n"
                  b"X-Spamd-Bar: keep-me\r\nX-Other: kept\r\n")
        code, text = send(self.inst, message(b"A", extra_headers=forged))
        self.assertEqual(code, 250, text)
        [m] = self.new_in()
        head = m.split(b"\r\n\r\n", 1)[0] + b"\r\n"
        self.assertEqual(head.count(b"X-Spam-Status:"), 1, head)
        self.assertIn(b'X-Spam-Status: No, score=0.00 required=15.00 action="no action"', head)
        self.assertNotIn(b"-100", head)
        self.assertNotIn(b"x-spam-flag", head.lower())
        self.assertIn(b"X-Other: kept\r\n", head)
        self.assertIn(b"X-Spamd-Bar: keep-me\r\n", head)  # not an X-Spam- field: left alone

    def test_posternctl_spam_check_and_status(self):
        """`posternctl spam check FILE` asks the same Rspamd as a scan and says what Postern
        would do; `spam status` shows the filter answering and the scans by result."""
        d = tempfile.mkdtemp(prefix="postern-test-spamcheck-")
        try:
            for marker, action, outcome in ((b"X", "reject", "reject"), (b"Y", "add header", "junk"), (b"", "no action", "inbox")):
                path = os.path.join(d, "m.eml")
                with open(path, "wb") as f:
                    f.write(message(marker))
                r = self.inst.ctl("spam", "check", path)
                self.assertIn(f"action: {action}\n", r.stdout)
                self.assertIn(f"postern would: {outcome}\n", r.stdout)
                self.assertRegex(r.stdout, r"score: -?\d+\.\d\d \(required -?\d+\.\d\d\)")
            send(self.inst, message(b"X"))  # one scan at least, whatever ran before
            # The counts come from postern-smtpd's stats file, written every few seconds.
            st = wait_for(lambda: (lambda out: out if re.search(r"scans reject: [1-9]", out) else None)(
                self.inst.ctl("spam", "status").stdout), timeout=30, interval=0.5, what="the reject scan in spam status")
            self.assertIn("spam filter: on (rspamd at " + self.rspamd.socket + ")", st)
            # Bigger than smtp.max_message_size: refused before anything is sent.
            self.inst.set_conf("smtp.max_message_size", "1K")
            with open(path, "wb") as f:
                f.write(message(body=b"x" * 2000))
            big = self.inst.ctl("spam", "check", path, check=False)
            self.assertEqual(big.returncode, 1)
            self.assertIn("more than smtp.max_message_size", big.stderr)
        finally:
            self.inst.set_conf("smtp.max_message_size", "25M")
            shutil.rmtree(d, ignore_errors=True)

    def test_outbound_reject_is_refused_other_actions_delivered(self):
        before = queued(self.inst)
        code, text = submit(self.inst, RCPT, "alice-password-1", "friend@elsewhere.test", outbound(b"X"))
        self.assertEqual(code, 550, text)
        self.assertIn(b"5.7.1", text)
        self.assertEqual(queued(self.inst), before)  # nothing queued
        self.assertRegex(self.inst.log(), r"spam.outbound_verdict.*user=\"?alice@example.test.*action=\"?reject")
        # Rspamd was told the user (authenticated outbound mail).
        self.assertRegex(self.rspamd.log(), r"user: alice@example.test")
        code, text = submit(self.inst, RCPT, "alice-password-1", "friend@elsewhere.test", outbound())
        self.assertEqual(code, 250, text)
        self.assertEqual(len(queued(self.inst)), len(before) + 1)
        # "add header" on outbound mail to a local user: delivered to INBOX as submitted, no Junk.
        code, text = submit(self.inst, RCPT, "alice-password-1", RCPT, outbound(b"Y"))
        self.assertEqual(code, 250, text)
        [m] = self.new_in()
        self.assertNotIn(b"X-Spam-", m)
        self.assertEqual(self.new_in("Junk"), [])

    def test_outbound_scanning_can_be_turned_off(self):
        inst = spam_instance(self.rspamd.socket, users={RCPT: "alice-password-1"}, **{"spam.scan_outbound": "false"})
        try:
            code, text = submit(inst, RCPT, "alice-password-1", "friend@elsewhere.test", outbound(b"X"))
            self.assertEqual(code, 250, text)
            self.assertNotIn("spam.outbound_verdict", inst.log())
            code, text = send(inst, message(b"X"))  # inbound still scanned
            self.assertEqual(code, 550, text)
        finally:
            inst.close()

    def test_z_rspamd_stopped_accepts_unchecked(self):
        """Runs last (unittest sorts by name): stops the shared Rspamd."""
        self.rspamd.stop()  # keeps its log for the other tests
        code, text = send(self.inst, message(b"X"))  # would have been rejected
        self.assertEqual(code, 250, text)
        [m] = self.new_in()
        self.assertIn(b"X-Spam-Status: unchecked\r\n", m)
        self.assertIn("spam.scan_failed", self.inst.log())


class RspamdUnavailable(unittest.TestCase):
    def test_down_accepts_unchecked_and_counts(self):
        missing = tempfile.mkdtemp(prefix="postern-test-spam-")
        try:
            inst = spam_instance(os.path.join(missing, "nothing.sock"))
            try:
                for _ in range(2):
                    code, text = send(inst, message())
                    self.assertEqual(code, 250, text)
                msgs = inst.messages(RCPT)
                self.assertEqual(len(msgs), 2)
                for m in msgs:
                    self.assertIn(b"X-Spam-Status: unchecked\r\n", m)
                # The administrator sees it: status warns (exit 1), check says Rspamd cannot be asked.
                st = inst.ctl("spam", "status", check=False)
                self.assertEqual(st.returncode, 1)
                self.assertIn("WARNING: spam filter: rspamd does not answer", st.stdout)
                probe = os.path.join(missing, "probe.eml")
                with open(probe, "wb") as f:
                    f.write(message())
                chk = inst.ctl("spam", "check", probe, check=False)
                self.assertEqual(chk.returncode, 1)
                self.assertIn("posternctl: rspamd at " + os.path.join(missing, "nothing.sock"), chk.stderr)
                inst.stop("postern-smtpd")
                self.assertEqual(counters(inst).get(("postern_spam_scans_total", (("result", "unchecked"),))), 2)
            finally:
                inst.close()
        finally:
            shutil.rmtree(missing, ignore_errors=True)

    def test_down_with_tempfail_answers_451(self):
        inst = spam_instance("127.0.0.1:9", users={RCPT: "alice-password-1"}, **{"spam.on_failure": "tempfail"})
        try:
            code, text = send(inst, message())
            self.assertEqual(code, 451, text)
            self.assertIn(b"4.7.1", text)
            self.assertEqual(inst.messages(RCPT), [])
            self.assertEqual(inst.messages(RCPT, "Junk"), [])
            # Submitted mail is delivered when Rspamd is down, whatever spam.on_failure says.
            code, text = submit(inst, RCPT, "alice-password-1", "friend@elsewhere.test", outbound(b"X"))
            self.assertEqual(code, 250, text)
            self.assertEqual(len(queued(inst)), 1)
            self.assertRegex(inst.log(), r"spam.scan_failed.*fallback=\"?accept \(outbound\)")
        finally:
            inst.close()

    def test_silent_rspamd_times_out(self):
        """An Rspamd that accepts the connection and never answers: spam.timeout (1 s) applies."""
        root = tempfile.mkdtemp(prefix="postern-test-spam-")
        os.chmod(root, 0o755)
        path = os.path.join(root, "silent.sock")
        server = socket.socket(socket.AF_UNIX)
        server.bind(path)
        os.chmod(path, 0o666)
        server.listen(8)
        held = []
        stop = threading.Event()

        def accept():
            server.settimeout(0.2)
            while not stop.is_set():
                try:
                    conn, _ = server.accept()
                    held.append(conn)  # read nothing, answer nothing
                except OSError:
                    pass

        t = threading.Thread(target=accept)
        t.start()
        try:
            inst = spam_instance(path, **{"spam.timeout": "1s"})
            try:
                code, text = send(inst, message())
                self.assertEqual(code, 250, text)
                [m] = inst.messages(RCPT)
                self.assertIn(b"X-Spam-Status: unchecked\r\n", m)
                self.assertRegex(inst.log(), r"spam.scan_failed.*no verdict within 1000 ms")
            finally:
                inst.close()
        finally:
            stop.set()
            t.join()
            for c in held:
                c.close()
            server.close()
            shutil.rmtree(root, ignore_errors=True)


if __name__ == "__main__":
    unittest.main(verbosity=2)
