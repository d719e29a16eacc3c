"""Sieve at local delivery, end to end: scripts stored with `posternctl sieve`,
mail sent over real SMTP (smtplib) into the Maildirs, read back over IMAP
(imaplib):

  * fileinto an existing folder, into a missing one with :create, and into a
    missing one without :create (kept in INBOX, logged);
  * imap4flags: flags set by the script are seen over IMAP, keywords too (stored
    as imapd stores them: a keyword an IMAP client made keeps its letter);
  * discard: accepted, stored nowhere;
  * reject: refused at SMTP time with 550 5.7.1 and the script's reason;
  * a script that does not compile (written behind posternctl's back) and one
    that fails at run time fall back to keep, logged, and the user is told once
    per script version by a message in INBOX naming the line;
  * the queue runner's local delivery runs the script too; its reject becomes a
    bounce to the (local) sender;
  * `posternctl sieve check/put` print errors as line:column and refuse bad scripts;
    list/show/activate/deactivate/delete; forward/vacation generate scripts and say
    how redirect and vacation are carried out (test_sieve_outbound.py runs them)."""

import imaplib
import os
import pwd
import smtplib
import tempfile
import unittest

from postern_testlib import Instance, wait_for

USERS = {f"{name}@example.test": f"{name}-password-{i}" for i, name in enumerate(["alice", "bob", "carol", "dave", "erin", "frank", "gina"])}


class SieveDelivery(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.inst = Instance(users=USERS)
        cls.inst.start("postern-smtpd")
        cls.inst.start("postern-imapd")
        cls.smtp = cls.inst.port("postern-smtpd", "smtp")
        cls.tmp = tempfile.mkdtemp(prefix="postern-sieve-files-")

    @classmethod
    def tearDownClass(cls):
        cls.inst.close()
        import shutil
        shutil.rmtree(cls.tmp, ignore_errors=True)

    def put(self, user, name, script, activate=True, check=True):
        path = os.path.join(self.tmp, name + ".sieve")
        with open(path, "w") as f:
            f.write(script)
        args = ["sieve", "put", user, name, path] + (["--activate"] if activate else [])
        return self.inst.ctl(*args, check=check)

    def send(self, rcpt, subject, body="hello\r\n"):
        with smtplib.SMTP("127.0.0.1", self.smtp, timeout=30) as s:
            s.sendmail("someone@remote.test", [rcpt], f"From: someone@remote.test\r\nTo: {rcpt}\r\nSubject: {subject}\r\n\r\n{body}")

    def subjects(self, user, folder=""):
        return [m.split(b"Subject: ", 1)[1].split(b"\r\n", 1)[0].decode() for m in self.inst.messages(user, folder) if b"Subject: " in m]

    def test_fileinto_create_and_missing_folder(self):
        self.put("alice@example.test", "sort", 'require ["fileinto", "mailbox"];\n'
                 'if header :contains "subject" "report" { fileinto :create "Reports/Daily"; }\n'
                 'elsif header :contains "subject" "work" { fileinto "Work"; }\n')
        self.send("alice@example.test", "daily report")
        self.assertEqual(self.subjects("alice@example.test", "Reports.Daily"), ["daily report"])
        # No Work folder and no :create: kept in INBOX, and the log says why.
        self.send("alice@example.test", "work item 1")
        self.assertIn("work item 1", self.subjects("alice@example.test"))
        self.assertRegex(self.inst.log(), r'sieve\.note .*mailbox=alice@example\.test .*fileinto \\?"Work\\?": no such folder')
        # Once the folder exists (created over IMAP), fileinto uses it.
        im = imaplib.IMAP4("127.0.0.1", self.inst.port("postern-imapd", "imap"))
        im.starttls(self.inst.client_tls_context())
        im.login("alice@example.test", USERS["alice@example.test"])
        self.assertEqual(im.create("Work")[0], "OK")
        self.send("alice@example.test", "work item 2")
        self.assertEqual(self.subjects("alice@example.test", "Work"), ["work item 2"])
        # The :create folder is a real folder for IMAP too.
        typ, data = im.select("Reports/Daily")
        self.assertEqual((typ, data), ("OK", [b"1"]))
        im.logout()

    def test_flags_visible_over_imap(self):
        self.put("bob@example.test", "flags", 'require ["imap4flags", "fileinto", "mailbox"];\n'
                 'if header :contains "subject" "flag me" { addflag ["\\\\Flagged", "\\\\Seen"]; fileinto :create "Flagged"; }\n')
        self.send("bob@example.test", "please flag me")
        im = imaplib.IMAP4("127.0.0.1", self.inst.port("postern-imapd", "imap"))
        im.starttls(self.inst.client_tls_context())
        im.login("bob@example.test", USERS["bob@example.test"])
        typ, _ = im.select("Flagged")
        self.assertEqual(typ, "OK")
        typ, data = im.fetch("1", "(FLAGS)")
        self.assertEqual(typ, "OK")
        self.assertIn(b"\\Flagged", data[0])
        self.assertIn(b"\\Seen", data[0])
        im.logout()

    def imap(self, user):
        im = imaplib.IMAP4("127.0.0.1", self.inst.port("postern-imapd", "imap"))
        im.starttls(self.inst.client_tls_context())
        im.login(user, USERS[user])
        return im

    def flags_of(self, user, folder, n):
        im = self.imap(user)
        try:
            self.assertEqual(im.select(folder)[0], "OK")
            typ, data = im.fetch(str(n), "(FLAGS)")
            self.assertEqual(typ, "OK")
            return [f for f in imaplib.ParseFlags(data[0]) if f != b"\\Recent"]  # \Recent: a session flag
        finally:
            im.logout()

    def test_keywords_visible_over_imap(self):
        user = "gina@example.test"
        self.put(user, "kw", 'require ["imap4flags", "fileinto", "mailbox"];\n'
                 'if header :contains "subject" "first" { keep; stop; }\n'
                 'addflag ["Project_X", "$Label1", "imported", "bad(kw"];\n'
                 'if header :contains "subject" "tagged" { fileinto :create :flags ["\\\\Seen", "Project_X"] "Tagged"; }\n')
        self.send(user, "first one")
        # An IMAP client gives the first message a keyword of its own.
        im = self.imap(user)
        im.select("INBOX")
        self.assertEqual(im.store("1", "+FLAGS", "(Imported)")[0], "OK")
        im.logout()
        self.send(user, "keep with keywords")
        self.send(user, "tagged one")
        flags = self.flags_of(user, "INBOX", 2)
        self.assertIn(b"Project_X", flags)
        self.assertIn(b"$Label1", flags)
        self.assertIn(b"Imported", flags)  # the client's keyword, matched case-insensitively: same letter
        self.assertFalse([f for f in flags if b"bad" in f], flags)
        self.assertEqual(sorted(self.flags_of(user, "INBOX", 1)), [b"Imported"])
        self.assertEqual(sorted(self.flags_of(user, "Tagged", 1)), [b"Project_X", b"\\Seen"])
        self.assertIn("flags not stored (not an IMAP keyword): bad(kw", self.inst.log())
        # Searching by keyword works like for any keyword set over IMAP.
        im = self.imap(user)
        im.select("INBOX")
        self.assertEqual(im.search(None, "KEYWORD", "Project_X")[1], [b"2"])
        im.logout()

    def test_discard_and_reject(self):
        self.put("carol@example.test", "filter", 'require ["reject"];\n'
                 'if header :contains "subject" "junk" { discard; stop; }\n'
                 'if header :contains "subject" "go away" { reject "I do not want this"; }\n')
        before = len(self.inst.messages("carol@example.test"))
        self.send("carol@example.test", "junk offer")
        self.assertEqual(len(self.inst.messages("carol@example.test")), before)
        with self.assertRaises(smtplib.SMTPDataError) as cm:
            self.send("carol@example.test", "please go away")
        self.assertEqual(cm.exception.smtp_code, 550)
        self.assertIn(b"5.7.1 I do not want this", cm.exception.smtp_error)
        self.assertEqual(len(self.inst.messages("carol@example.test")), before)
        self.send("carol@example.test", "a normal message")
        self.assertEqual(self.subjects("carol@example.test")[-1], "a normal message")

    def test_broken_scripts_fall_back_to_keep(self):
        user = "dave@example.test"
        # Written behind posternctl's back (put would refuse it), as the daemon user would find it.
        home = os.path.dirname(self.inst.maildir(user))
        sieve_dir = os.path.join(home, "sieve")
        os.makedirs(sieve_dir, exist_ok=True)
        with open(os.path.join(sieve_dir, "bad.sieve"), "w") as f:
            f.write('require "fileinto";\nif header :contains "subject" "x" {\n  fileinto "A"\n}\n')
        with open(os.path.join(sieve_dir, "active"), "w") as f:
            f.write("bad\n")
        if os.geteuid() == 0:
            nobody = pwd.getpwnam("nobody")
            for d, _, files in os.walk(os.path.dirname(home)):
                os.chown(d, nobody.pw_uid, nobody.pw_gid)
                for name in files:
                    os.chown(os.path.join(d, name), nobody.pw_uid, nobody.pw_gid)
        self.send(user, "x marks the spot")
        notice = 'Your mail filter "bad" has an error'
        self.assertEqual(sorted(self.subjects(user)), sorted(["x marks the spot", notice]))
        told = [m for m in self.inst.messages(user) if notice.encode() in m][0]
        self.assertIn(b"4:1: expected ';' or '{', found '}'", told)
        self.assertIn(b"Auto-Submitted: auto-generated", told)
        # Told once per version of the script, not with every message.
        self.send(user, "second while broken")
        self.assertEqual(self.subjects(user).count(notice), 1)
        self.assertRegex(self.inst.log(), r"sieve\.error .*mailbox=dave@example\.test .*script bad does not compile: 4:1: ")
        # A runtime error (reject with fileinto, RFC 5429) keeps the message too.
        self.put(user, "runtime", 'require ["reject", "fileinto"];\nfileinto "A";\nreject "no";\n')
        self.send(user, "runtime failure")
        self.assertIn("runtime failure", self.subjects(user))
        self.assertIn('Your mail filter "runtime" has an error', self.subjects(user))
        self.assertRegex(self.inst.log(), r"sieve\.error .*script runtime failed: 3:1: reject cannot be combined with fileinto")

    def test_queue_runner_runs_the_script(self):
        user = "erin@example.test"
        self.put(user, "q", 'require ["reject", "fileinto", "mailbox"];\n'
                 'if header :contains "subject" "bounce me" { reject "not here"; }\n'
                 'else { fileinto :create "Queued"; }\n')
        self.inst.start("postern-queued")
        try:
            self.inst.queue_message("bob@example.test", [user], b"Subject: via the queue\r\n\r\nhi\r\n")
            wait_for(lambda: self.inst.messages(user, "Queued"), timeout=30, what="the queued message in Queued")
            before = len(self.inst.messages("bob@example.test"))
            self.inst.queue_message("bob@example.test", [user], b"Subject: bounce me\r\n\r\nhi\r\n")
            bounce = wait_for(lambda: self.inst.messages("bob@example.test")[before:], timeout=30, what="the bounce to bob")[0]
            self.assertIn(b"550 5.7.1 <erin@example.test>: not here", bounce)
        finally:
            self.inst.stop("postern-queued")

    def test_posternctl_commands(self):
        user = "frank@example.test"
        bad = os.path.join(self.tmp, "bad.sieve")
        with open(bad, "w") as f:
            f.write('require ["fileinto", "x-nope"];\nkeep;\n')
        p = self.inst.ctl("sieve", "check", bad, check=False)
        self.assertEqual(p.returncode, 1)
        self.assertEqual(p.stderr.strip(), f'{bad}:1:22: unsupported extension "x-nope"')
        p = self.put(user, "bad", 'if header :is "subject" { keep; }\n', check=False)
        self.assertEqual(p.returncode, 1)
        self.assertIn("bad: 1:4: header takes 2 argument(s), found 1", p.stderr)
        good = os.path.join(self.tmp, "good.sieve")
        with open(good, "w") as f:
            f.write('require "fileinto";\nfileinto "x";\n')
        p = self.inst.ctl("sieve", "check", good)
        self.assertIn("ok (extensions: fileinto)", p.stdout)
        self.put(user, "main", "keep;\n")
        self.put(user, "spare", "keep;\n", activate=False)
        listing = self.inst.ctl("sieve", "list", user).stdout
        self.assertRegex(listing, r"(?m)^spare\t6 bytes$")
        self.assertEqual(self.inst.ctl("sieve", "show", user, "spare").stdout, "keep;\n")
        p = self.inst.ctl("sieve", "check", user, "spare")
        self.assertIn("spare: ok", p.stdout)
        # The active script cannot be deleted; an inactive one can.
        self.assertRegex(listing, r"(?m)^main\t6 bytes\tactive$")
        p = self.inst.ctl("sieve", "delete", user, "main", check=False)
        self.assertEqual(p.returncode, 1)
        self.assertIn("'main' is the active script; deactivate it first", p.stderr)
        self.inst.ctl("sieve", "delete", user, "spare")
        self.assertNotIn("spare", self.inst.ctl("sieve", "list", user).stdout)
        # Names cannot form paths.
        self.assertEqual(self.put(user, "../x", "keep;\n", check=False).returncode, 2)
        # Forward and vacation: generated, stored, active, with a note on how they are carried out.
        p = self.inst.ctl("sieve", "forward", "carol@example.test", "--to", "x@elsewhere.test,y@elsewhere.test", "--keep")
        self.assertIn("SRS sender", p.stdout)
        script = self.inst.ctl("sieve", "show", "carol@example.test", "forward").stdout
        self.assertIn('redirect :copy "x@elsewhere.test";', script)
        self.assertIn('redirect :copy "y@elsewhere.test";', script)
        self.assertRegex(self.inst.ctl("sieve", "list", "carol@example.test").stdout, r"(?m)^forward\t\d+ bytes\tactive$")
        # :copy: a copy is kept (the redirects go to the queue).
        self.send("carol@example.test", "while forwarding")
        self.assertEqual(self.subjects("carol@example.test")[-1], "while forwarding")
        p = self.inst.ctl("sieve", "vacation", "carol@example.test", "--subject", "Away", "--text", "I am away.\n.hidden dot",
                          "--from", "2026-12-20", "--until", "2027-01-05")
        script = self.inst.ctl("sieve", "show", "carol@example.test", "vacation").stdout
        self.assertIn('currentdate :value "ge" "date" "2026-12-20"', script)
        self.assertIn("..hidden dot", script)
        self.assertIn("ok", self.inst.ctl("sieve", "check", "carol@example.test", "vacation").stdout)
        self.assertEqual(self.inst.ctl("sieve", "vacation", "carol@example.test", "--text", "x", "--from", "tomorrow", check=False).returncode, 2)
        self.inst.ctl("sieve", "deactivate", "carol@example.test")
        self.assertNotIn("active", self.inst.ctl("sieve", "list", "carol@example.test").stdout)
        # Unknown users are refused.
        self.assertEqual(self.inst.ctl("sieve", "list", "nobody@example.test", check=False).returncode, 1)


if __name__ == "__main__":
    unittest.main()
