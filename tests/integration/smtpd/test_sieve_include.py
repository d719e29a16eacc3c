"""Sieve include (RFC 6609) and the administrator's global scripts, end to end: scripts
stored with `posternctl sieve global put` and `posternctl sieve put`, mail sent over real
SMTP (smtplib) to postern-smtpd, the Maildirs read back:

  * sieve.before names a global script that runs for every user, also for a user without
    a script of their own (its imap4flags keyword lands in the Maildir as an IMAP keyword);
  * a user's script includes a global script (:global) and a personal one (:personal);
  * `posternctl sieve put` refuses a script whose personal include is missing, and one that
    would close an include loop (RFC 6609 3.2), naming line:column;
  * `posternctl sieve global list/show/remove` (remove refused while sieve.before names it)."""

import os
import re
import shutil
import smtplib
import tempfile
import unittest

from postern_testlib import Instance, wait_for

USERS = {"alice@example.test": "alice-password-1", "bob@example.test": "bob-password-2"}


class SieveInclude(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.inst = Instance(users=USERS, conf={"sieve.before": "tagging"})
        cls.tmp = tempfile.mkdtemp(prefix="postern-sieve-include-")
        cls.global_put("tagging", 'require ["imap4flags"];\nif header :contains "subject" "[list]" { addflag "$ListMail"; }\n')
        cls.global_put("invoices", 'require ["fileinto", "mailbox"];\n'
                                   'if header :contains "subject" "invoice" { fileinto :create "Invoices"; }\n')
        cls.inst.start("postern-smtpd")
        cls.smtp = cls.inst.port("postern-smtpd", "smtp")

    @classmethod
    def tearDownClass(cls):
        cls.inst.close()
        shutil.rmtree(cls.tmp, ignore_errors=True)

    @classmethod
    def write(cls, name, text):
        path = os.path.join(cls.tmp, name)
        with open(path, "w") as f:
            f.write(text)
        return path

    @classmethod
    def global_put(cls, name, text):
        cls.inst.ctl("sieve", "global", "put", name, cls.write(name + ".g", text))

    def put(self, user, name, text, activate=True, check=True):
        args = ["sieve", "put", user, name, self.write(name, text)] + (["--activate"] if activate else [])
        return self.inst.ctl(*args, check=check)

    def send(self, rcpt, subject):
        with smtplib.SMTP("127.0.0.1", self.smtp, timeout=30) as s:
            s.sendmail("someone@remote.test", [rcpt], f"From: someone@remote.test\r\nTo: {rcpt}\r\nSubject: {subject}\r\n\r\nhi\r\n")

    def test_before_script_runs_for_a_user_without_a_script(self):
        self.send("alice@example.test", "[list] weekly news")
        cur = os.path.join(self.inst.maildir("alice@example.test"), "cur")
        [name] = os.listdir(cur)
        letters = name.split(":2,")[1]
        with open(os.path.join(self.inst.maildir("alice@example.test"), "dovecot-keywords")) as f:
            keywords = dict(line.split(" ", 1) for line in f.read().splitlines())
        self.assertEqual([keywords[str(ord(c) - ord("a"))] for c in letters if c.islower()], ["$ListMail"])
        self.send("alice@example.test", "no list")
        self.assertEqual(len(os.listdir(os.path.join(self.inst.maildir("alice@example.test"), "new"))), 1)

    def test_personal_and_global_includes(self):
        user = "bob@example.test"
        main = 'require ["include"];\ninclude :global "invoices";\ninclude :personal "reports";\n'
        r = self.put(user, "main", main, check=False)
        self.assertNotEqual(r.returncode, 0)
        self.assertIn('3:19: included script "reports" does not exist', r.stdout + r.stderr)
        self.put(user, "reports", 'require ["fileinto", "mailbox"];\nif header :contains "subject" "report" { fileinto :create "Reports"; }\n',
                 activate=False)
        self.put(user, "main", main)
        # A loop back to main is refused when stored.
        r = self.put(user, "reports", 'require "include";\ninclude "main";\n', activate=False, check=False)
        self.assertNotEqual(r.returncode, 0)
        self.assertIn("include loop", r.stdout + r.stderr)
        self.send(user, "invoice 42")
        self.send(user, "weekly report")
        self.send(user, "[list] hello")
        self.assertEqual(len(self.inst.messages(user, "Invoices")), 1)
        self.assertEqual(len(self.inst.messages(user, "Reports")), 1)
        [inbox] = self.inst.messages(user)
        self.assertIn(b"Subject: [list] hello", inbox)  # the before script ran for bob too (keyword set)
        self.assertTrue(os.listdir(os.path.join(self.inst.maildir(user), "cur")))

    def test_global_commands(self):
        out = self.inst.ctl("sieve", "global", "list").stdout
        self.assertRegex(out, r"(?m)^invoices  \d+ bytes$")
        self.assertRegex(out, r"(?m)^tagging  \d+ bytes  \(runs before users' scripts\)$")
        self.assertIn('addflag "$ListMail"', self.inst.ctl("sieve", "global", "show", "tagging").stdout)
        r = self.inst.ctl("sieve", "global", "remove", "tagging", check=False)
        self.assertNotEqual(r.returncode, 0)
        self.assertIn("sieve.before", r.stdout + r.stderr)
        r = self.inst.ctl("sieve", "global", "put", "broken", self.write("broken", "frob;\n"), check=False)
        self.assertNotEqual(r.returncode, 0)
        self.assertIn('1:1: unknown command "frob"', r.stdout + r.stderr)
        r = self.inst.ctl("sieve", "global", "put", "../x", self.write("x", "keep;\n"), check=False)
        self.assertNotEqual(r.returncode, 0)
        self.global_put("spare", "keep;\n")
        self.inst.ctl("sieve", "global", "remove", "spare")
        self.assertNotIn("spare", self.inst.ctl("sieve", "global", "list").stdout)


if __name__ == "__main__":
    unittest.main()
