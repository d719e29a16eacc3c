"""Learning from the user's moves, with the appliance's real Rspamd and Redis: a message moved
into Junk over IMAP is learned as spam for that user (Rspamd's per-user Bayes counts in Redis,
RS<user> learns_spam), moved out of Junk it is learned as ham, moved from Junk to Trash it
teaches nothing; APPEND into Junk teaches spam; `posternctl spam learn` trains on a whole
folder and `posternctl spam status` shows the learned counts. The IMAP replies do not wait for
Rspamd (the learn requests go through <data_dir>/spam-learn)."""

import imaplib
import os
import re
import subprocess
import unittest

from postern_testlib import Instance, wait_for

USER = "alice@example.test"
WORDS = ("alpha bravo charlie delta echo foxtrot golf hotel india juliet kilo lima mike november oscar papa quebec "
         "romeo sierra tango uniform victor whiskey xray yankee zulu").split()


def message(n):
    body = " ".join(WORDS[(n * 7 + i * 3) % len(WORDS)] + str(n) for i in range(40))
    return (f"From: bob@remote.test\r\nTo: {USER}\r\nSubject: offer {n}\r\nMessage-ID: <learn{n}@remote.test>\r\n"
            f"Date: Thu, 03 Dec 2026 03:00:00 +0000\r\n\r\n{body}\r\n").encode()


class SpamLearning(unittest.TestCase):
    def setUp(self):
        self.inst = Instance(conf={"spam.enabled": "true"})
        local = os.path.join(self.inst.config_dir, "spam", "rspamd", "local.d")
        os.makedirs(local)
        with open(os.path.join(local, "options.inc"), "w") as f:
            f.write("dns { nameserver = [\"127.0.0.1:9\"]; timeout = 0.2s; retransmits = 1; }\n")
        for p in (local, os.path.dirname(local), os.path.join(self.inst.config_dir, "spam")):
            os.chmod(p, 0o755)
        os.chmod(os.path.join(local, "options.inc"), 0o644)
        self.redis = os.path.join(self.inst.run_dir, "spam", "redis.sock")

    def tearDown(self):
        self.inst.close()

    def learned(self):
        out = subprocess.run(["redis-cli", "-s", self.redis, "HMGET", "RS" + USER, "learns_spam", "learns_ham"], capture_output=True,
                             text=True).stdout.splitlines()  # a missing field is an empty line
        return tuple(int(x) if x.strip().isdigit() else 0 for x in out) if len(out) == 2 else (0, 0)

    def controller_ready(self):
        r = subprocess.run(["curl", "-s", "--max-time", "2", "--unix-socket",
                            os.path.join(self.inst.run_dir, "spam", "rspamd-controller.sock"), "http://x/ping"],
                           capture_output=True, text=True)
        return "pong" in r.stdout

    def imap(self):
        m = imaplib.IMAP4_SSL("127.0.0.1", self.inst.port("postern-appliance", "imaps"), ssl_context=self.inst.client_tls_context(),
                              timeout=30)
        m.login(USER, self.inst.passwords[USER])
        return m

    def test_moves_teach_rspamd_per_user(self):
        self.inst.start("postern-appliance")
        wait_for(self.controller_ready, timeout=150, interval=0.2, what="rspamd's controller to answer")
        m = self.imap()
        for n in (1, 2, 3):
            self.assertEqual(m.append("INBOX", None, None, message(n))[0], "OK")
        self.assertEqual(self.learned(), (0, 0))  # APPEND to INBOX teaches nothing

        m.select("INBOX")
        self.assertEqual(m.uid("MOVE", "1", "Junk")[0], "OK")
        wait_for(lambda: self.learned() == (1, 0), timeout=20, interval=0.1, what="learns_spam 1 for alice")
        self.assertIn("spam.learn", self.inst.log())

        # Out of Junk: ham. Rspamd relearns the message; whether it also takes the spam count
        # back varies (seen both): counts are compared by class, as increments.
        m.select("Junk")
        self.assertEqual(m.uid("MOVE", "1", "INBOX")[0], "OK")
        wait_for(lambda: self.learned()[1] == 1, timeout=20, interval=0.1, what="learns_ham 1 for alice")
        spam = self.learned()[0]

        # APPEND into Junk teaches spam; Junk -> Trash teaches nothing; COPY into Junk teaches spam.
        self.assertEqual(m.append("Junk", None, None, message(4))[0], "OK")
        wait_for(lambda: self.learned()[0] == spam + 1, timeout=20, interval=0.1, what="one more spam learn after APPEND")
        m.select("Junk")
        self.assertEqual(m.uid("MOVE", "1:*", "Trash")[0], "OK")
        m.select("INBOX")
        typ, data = m.uid("SEARCH", "SUBJECT", "offer 2")
        self.assertEqual(m.uid("COPY", data[0].decode(), "Junk")[0], "OK")
        wait_for(lambda: self.learned()[0] == spam + 2, timeout=20, interval=0.1, what="one more spam learn after COPY")
        self.assertEqual(self.learned()[1], 1)  # the Trash move (queued before the COPY) added no ham
        m.logout()
        self.assertEqual(os.listdir(os.path.join(self.inst.data_dir, "spam-learn")), ["lock"])  # drained

        # Bulk training: INBOX holds offers 1 (learned as ham), 2 (learned as spam by its COPY) and 3.
        r = self.inst.ctl("spam", "learn", "spam", "--user", USER, "--folder", "INBOX")
        self.assertIn("3 message(s) in INBOX of alice@example.test", r.stdout)
        # Offer 3 is new and must be learned. Whether Rspamd relearns offer 1 (learned as ham) and
        # offer 2 (learned as spam) or answers "already learned" varies between runs (CI saw 2/1,
        # 1/2 and 3/0): every message is either learned or skipped, none refused, and the spam
        # count grows by at least one and at most by what the run reports as learned.
        counts = re.search(r"learned (\d+), skipped by rspamd (\d+), refused 0, too big 0, errors 0", r.stdout)
        self.assertTrue(counts, r.stdout)
        newly, skipped = int(counts.group(1)), int(counts.group(2))
        self.assertEqual(newly + skipped, 3, r.stdout)
        self.assertGreaterEqual(newly, 1, r.stdout)
        learned = self.learned()
        self.assertGreaterEqual(learned[0], spam + 2 + 1)  # the APPEND and the COPY, then at least offer 3
        self.assertLessEqual(learned[0], spam + 2 + newly)
        st = self.inst.ctl("spam", "status", check=False)
        self.assertIn(f"learned alice@example.test: spam {learned[0]}, ham {learned[1]}", st.stdout)
        self.assertIn("learn requests waiting: 0 (limit 10000)", st.stdout)
        bad = self.inst.ctl("spam", "learn", "spam", "--user", USER, "--folder", "Nope", check=False)
        self.assertNotEqual(bad.returncode, 0)
        self.assertNotIn(open(os.path.join(self.inst.config_dir, "spam", "controller.password")).read().strip(), self.inst.log())


if __name__ == "__main__":
    unittest.main(verbosity=2)
