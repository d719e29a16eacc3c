"""posternctl import imap|mbox|maildir and export, end to end over real IMAP.

mbox: mboxrd and mboxo quoting, "From " lines in bodies, 8-bit bytes, LF and
CRLF files, flags from Status/X-Status/X-Keywords, the separator's date as
INTERNALDATE; export then import gives the same bytes and flags. IMAP: from a
second Postern instance (TLS, verified with its certificate) and from Debian's
Dovecot configured here (plain, "." hierarchy), with flags, keywords and dates
kept; stopped with --max-messages and killed mid-run, then resumed: every
message exactly once. maildir: Dovecot's own Maildir imported with its UIDs."""

import email.utils
import imaplib
import os
import re
import shutil
import signal
import subprocess
import tempfile
import time
import unittest

from postern_testlib import Instance, bin_path, free_port, run, wait_for

ALICE, BOB, CAROL = "alice@example.test", "bob@example.test", "carol@example.test"
USERS = {ALICE: "alice-password-1", BOB: "bob-password-1", CAROL: "carol-password-1"}


def imap_login(inst, user):
    c = imaplib.IMAP4_SSL("127.0.0.1", inst.port("postern-imapd", "imaps"), ssl_context=inst.client_tls_context())
    c.login(user, inst.passwords[user])
    return c


def folder_view(c, folder):
    """[(bytes, sorted flags, internaldate)] of a folder, in UID order; and its UIDVALIDITY and UIDs."""
    typ, _ = c.select(f'"{folder}"', readonly=True)
    assert typ == "OK", folder
    uv = int(c.response("UIDVALIDITY")[1][0])
    typ, data = c.uid("FETCH", "1:*", "(UID FLAGS INTERNALDATE BODY.PEEK[])")
    out, uids = [], []
    for item in data:
        if not isinstance(item, tuple):
            continue
        meta = item[0].decode()
        uids.append(int(re.search(r"UID (\d+)", meta).group(1)))
        flags = tuple(sorted(f for f in re.search(r"FLAGS \(([^)]*)\)", meta).group(1).split() if f != "\\Recent"))
        date = re.search(r'INTERNALDATE "([^"]+)"', meta).group(1)
        out.append((item[1], flags, imaplib.Internaldate2tuple(f'INTERNALDATE "{date}"'.encode())))
    return out, uv, uids


def folders(c):
    typ, boxes = c.list()
    out = []
    for b in boxes:
        m = re.match(rb'\((.*?)\) (NIL|"(.)") (.*)', b)
        name = m.group(4).decode().strip('"')
        if b"\\Noselect" not in m.group(1):
            out.append((name, (m.group(3) or b"").decode()))
    return out


def populate(c, sep="/"):
    """Folders with messages, flags, keywords and dates; returns {folder: [(subject, flags)]}."""
    plan = {
        "INBOX": [("one", "(\\Seen)"), ("two", "(\\Flagged $Label1)"), ("three", "()"), ("four", "(\\Answered \\Seen)")],
        f"Work{sep}Projects": [("p1", "(\\Seen Project-X)"), ("p2", "(\\Draft)")],
        "Sent": [("s1", "(\\Seen)")],
    }
    for folder, msgs in plan.items():
        if folder != "INBOX":
            c.create(f'"{folder}"')
        for i, (subject, flags) in enumerate(msgs):
            body = (f"From: x@outside.test\r\nTo: alice@example.test\r\nSubject: {subject}\r\n"
                    f"Date: Mon, 0{i+1} Jan 2018 10:00:00 +0000\r\n\r\ncaf\xe9 body of {subject}\r\nFrom me\r\n").encode("latin-1")
            date = imaplib.Time2Internaldate(time.mktime((2018, 1, i + 1, 10, 0, 0, 0, 0, 0)) - time.timezone)
            typ, _ = c.append(f'"{folder}"', flags, date, body)
            assert typ == "OK"
    return plan


class Import(unittest.TestCase):
    def setUp(self):
        self.tmp = tempfile.mkdtemp(prefix="postern-import-test-")
        os.chmod(self.tmp, 0o755)
        self.inst = Instance(users=USERS)
        self.inst.start("postern-imapd")

    def tearDown(self):
        self.inst.close()
        shutil.rmtree(self.tmp, ignore_errors=True)

    def write(self, name, data):
        path = os.path.join(self.tmp, name)
        with open(path, "wb") as f:
            f.write(data)
        return path

    # -- mbox ------------------------------------------------------------------
    MBOX = (b"From alice@old.test Mon Jan  1 10:00:00 2018\n"
            b"From: a@old.test\nSubject: first\nStatus: RO\nX-Status: AF\nX-Keywords: $Label1 Work\n\n"
            b"caf\xc3\xa9 and latin-1 \xe9\n>From the quoted line\n>>From twice quoted\n"
            b"From the start of a line without a blank line before it\n\n"
            b"From here on, a line after a blank line that is no separator\n\n"
            b"From MAILER-DAEMON Tue Feb  2 11:30:00 2021\n"
            b"From: b@old.test\nSubject: second\nX-Mozilla-Status: 0001\n\nbody two\n\n\n"
            b"From c@old.test Sat Dec 05 10:00:00 +0000 2020\n"
            b"From: c@old.test\nSubject: third\n\nlast\n")

    def check_mbox(self, mbox, fmt):
        inst = self.inst
        path = self.write(f"in-{fmt}.mbox", mbox)
        p = inst.ctl("import", "mbox", path, "--to", BOB, "--folder", f"Imported/{fmt}", "--format", fmt)
        self.assertIn("imported 3 messages", p.stdout)
        c = imap_login(inst, BOB)
        msgs, _, _ = folder_view(c, f"Imported/{fmt}")
        c.logout()
        self.assertEqual(len(msgs), 3)
        # New UIDs follow the messages' dates (the store numbers new files oldest first).
        by_subject = {re.search(rb"Subject: (\w+)", m[0]).group(1): m for m in msgs}
        first, second, third = by_subject[b"first"], by_subject[b"second"], by_subject[b"third"]
        twice = b">From twice quoted" if fmt == "mboxrd" else b">>From twice quoted"
        self.assertEqual(first[0], b"From: a@old.test\r\nSubject: first\r\n\r\n"
                                   b"caf\xc3\xa9 and latin-1 \xe9\r\nFrom the quoted line\r\n" + twice + b"\r\n"
                                   b"From the start of a line without a blank line before it\r\n\r\n"
                                   b"From here on, a line after a blank line that is no separator\r\n")
        self.assertEqual(first[1], ("$Label1", "Work", "\\Answered", "\\Flagged", "\\Seen"))
        self.assertEqual(time.mktime(first[2]) - time.mktime(time.gmtime(0)), time.mktime(time.gmtime(1514800800)) - time.mktime(time.gmtime(0)))
        self.assertEqual(second[0], b"From: b@old.test\r\nSubject: second\r\n\r\nbody two\r\n\r\n")
        self.assertEqual(second[1], ("\\Seen",))
        self.assertEqual(third[0], b"From: c@old.test\r\nSubject: third\r\n\r\nlast\r\n")
        self.assertEqual(third[1], ())

    def test_mbox_lf_crlf_rd_o(self):
        self.check_mbox(self.MBOX, "mboxrd")
        self.check_mbox(self.MBOX.replace(b"\n", b"\r\n"), "mboxo")

    def test_mbox_not_mbox_and_export_roundtrip(self):
        inst = self.inst
        bad = inst.ctl("import", "mbox", self.write("x.txt", b"hello\nworld\n"), "--to", BOB, check=False)
        self.assertEqual(bad.returncode, 1)
        self.assertIn("does not look like an mbox file", bad.stderr)
        self.assertEqual(inst.ctl("import", "mbox", "/nonexistent", "--to", "nobody@example.test", check=False).returncode, 1)
        c = imap_login(inst, ALICE)
        plan = populate(c)
        before = {f: folder_view(c, f)[0] for f in plan}
        c.logout()
        out = os.path.join(self.tmp, "export")
        p = inst.ctl("export", ALICE, "--mbox", out)
        self.assertIn("exported 7 messages", p.stdout)
        self.assertTrue(os.path.isfile(os.path.join(out, "Work", "Projects.mbox")))
        for folder in plan:
            inst.ctl("import", "mbox", os.path.join(out, folder + ".mbox"), "--to", CAROL, "--folder", folder)
        c = imap_login(inst, CAROL)
        for folder in plan:
            self.assertEqual(folder_view(c, folder)[0], before[folder], folder)
        c.logout()


    def test_courier_maildir_keywords(self):
        inst = self.inst
        src = os.path.join(self.tmp, "courier")
        for sub in ("cur", "new", "tmp", ".Lists/cur", ".Lists/new", ".Lists/tmp", "courierimapkeywords"):
            os.makedirs(os.path.join(src, sub))
        names = {"cur/1500000000.M1P1.old:2,S": b"Subject: c1\n\nbody one\n",
                 "new/1500000100.M2P1.old": b"Subject: c2\n\nbody two\n",
                 ".Lists/cur/1500000200.M3P1.old:2,FS": b"Subject: c3\n\nthree\n"}
        for rel, data in names.items():
            path = os.path.join(src, rel)
            with open(path, "wb") as f:
                f.write(data)
            when = int(os.path.basename(rel).split(".")[0])
            os.utime(path, (when, when))
        with open(os.path.join(src, "courierimapkeywords", ":list"), "w") as f:
            f.write("Work\n$Label2\n\n1500000000.M1P1.old:0 1\n")
        p = inst.ctl("import", "maildir", src, "--to", CAROL)
        self.assertIn("imported 3 messages", p.stdout)
        c = imap_login(inst, CAROL)
        inbox = folder_view(c, "INBOX")[0]
        lists = folder_view(c, "Lists")[0]
        c.logout()
        self.assertEqual([(m[0], m[1]) for m in inbox], [(b"Subject: c1\r\n\r\nbody one\r\n", ("$Label2", "Work", "\\Seen")),
                                                         (b"Subject: c2\r\n\r\nbody two\r\n", ())])
        self.assertEqual(time.mktime(inbox[1][2]) - time.mktime(inbox[0][2]), 100)  # the files' times are the dates
        self.assertEqual([(m[0], m[1]) for m in lists], [(b"Subject: c3\r\n\r\nthree\r\n", ("\\Flagged", "\\Seen"))])


class ImapImport(unittest.TestCase):
    """From a second Postern instance, over TLS."""

    def setUp(self):
        self.tmp = tempfile.mkdtemp(prefix="postern-import-test-")
        os.chmod(self.tmp, 0o755)
        self.src = Instance(users={ALICE: "alice-password-1"})
        self.src.start("postern-imapd")
        self.dst = Instance(users=USERS)
        self.dst.start("postern-imapd")
        self.pw = os.path.join(self.tmp, "pw")
        with open(self.pw, "w") as f:
            f.write("alice-password-1\n")
        os.chmod(self.pw, 0o600)

    def tearDown(self):
        self.src.close()
        self.dst.close()
        shutil.rmtree(self.tmp, ignore_errors=True)

    def args(self, *extra):
        return [bin_path("posternctl"), "--config", self.dst.config_dir, "import", "imap", "--host", "localhost", "--port",
                str(self.src.port("postern-imapd", "imaps")), "--tls", "--user", ALICE, "--password-file", self.pw, "--to", BOB,
                "--ca-file", os.path.join(self.src.config_dir, "tls", "cert.pem"), *extra]

    def compare(self, plan):
        s, d = imap_login(self.src, ALICE), imap_login(self.dst, BOB)
        for folder in plan:
            self.assertEqual(folder_view(d, folder)[0], folder_view(s, folder)[0], folder)
        s.logout()
        d.logout()

    def test_resume_after_stop_and_kill(self):
        c = imap_login(self.src, ALICE)
        plan = populate(c)
        for i in range(40):  # enough for a run to be killed in the middle
            c.append("INBOX", "(\\Seen)", None, f"Subject: bulk {i}\r\n\r\nbulk {i}\r\n".encode())
        c.logout()
        first = run(self.args("--max-messages", "3"))
        self.assertIn("stopped after 3 messages", first.stdout)
        # Killed while copying (paced so it is still busy), then resumed.
        p = subprocess.Popen(self.args("--rate", "20"), stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        home = os.path.dirname(self.dst.maildir(BOB))
        state = [os.path.join(home, n) for n in os.listdir(home) if n.startswith("import-imap-")][0]
        base = os.path.getmtime(state)
        wait_for(lambda: os.path.getmtime(state) != base, timeout=30, what="the import to make progress")
        p.send_signal(signal.SIGKILL)
        p.wait()
        last = run(self.args())
        self.assertRegex(last.stdout, r"imported \d+ messages into bob@example.test")
        self.assertIn("Work/Projects -> Work/Projects:", last.stdout)
        s = imap_login(self.src, ALICE)
        want = folder_view(s, "INBOX")[0]
        s.logout()
        d = imap_login(self.dst, BOB)
        got = folder_view(d, "INBOX")[0]
        d.logout()
        self.assertEqual(sorted(got), sorted(want))  # every message once
        self.compare([f for f in plan if f != "INBOX"])
        # A further run copies nothing.
        again = run(self.args())
        self.assertIn("imported 0 messages", again.stdout)
        # A new message on the source: only it is copied.
        s = imap_login(self.src, ALICE)
        s.append("Sent", "(\\Seen)", None, b"Subject: late\r\n\r\nlate\r\n")
        s.logout()
        self.assertIn("imported 1 messages", run(self.args()).stdout)
        self.compare(plan)  # in UID order: same-second messages keep the source's order

    def test_max_size_boundary(self):
        c = imap_login(self.src, ALICE)
        c.create("Sizes")
        for n in (1000, 1001):
            head = f"Subject: size {n}\r\n\r\n".encode()
            c.append("Sizes", "(\\Seen)", None, head + b"x" * (n - len(head) - 2) + b"\r\n")
        c.logout()
        p = run(self.args("--max-size", "1000", "--folder-map", "Drafts=,Sent=,Trash=,Junk=,Archive="))
        self.assertIn("Sizes -> Sizes: 1 copied, 1 too big, left out", p.stdout)
        self.assertRegex(p.stderr, r"Sizes UID 2: 1001 bytes, larger than 1000: left out")
        d = imap_login(self.dst, BOB)
        msgs = folder_view(d, "Sizes")[0]
        d.logout()
        self.assertEqual([len(m[0]) for m in msgs], [1000])
        self.assertEqual(run(self.args("--max-size", "0"), check=False).returncode, 2)

    def test_wrong_password_and_untrusted_certificate(self):
        with open(self.pw, "w") as f:
            f.write("wrong\n")
        bad = run(self.args(), check=False)
        self.assertEqual(bad.returncode, 1)
        self.assertIn("login refused", bad.stderr)
        no_ca = [a for a in self.args() if a != "--ca-file" and not a.endswith("cert.pem")]
        bad = run(no_ca, check=False)
        self.assertEqual(bad.returncode, 1)


@unittest.skipUnless(os.path.exists("/usr/sbin/dovecot"), "Debian's dovecot-imapd is not installed (install-deps.sh test)")
class DovecotImport(unittest.TestCase):
    def setUp(self):
        self.tmp = tempfile.mkdtemp(prefix="postern-dovecot-test-")
        os.chmod(self.tmp, 0o755)
        self.port = free_port()
        d = self.tmp
        for sub in ("run", "home"):
            os.makedirs(os.path.join(d, sub))
        os.chmod(os.path.join(d, "home"), 0o777)
        with open(os.path.join(d, "passwd"), "w") as f:
            f.write("dave@old.test:{PLAIN}dave-password-1\n")
        with open(os.path.join(d, "dovecot.conf"), "w") as f:
            f.write(f"""
base_dir = {d}/run
state_dir = {d}/run
log_path = {d}/dovecot.log
listen = 127.0.0.1
protocols = imap
ssl = no
disable_plaintext_auth = no
auth_mechanisms = plain
passdb {{
  driver = passwd-file
  args = scheme=PLAIN username_format=%u {d}/passwd
}}
userdb {{
  driver = static
  args = uid=nobody gid=nogroup home={d}/home/%u
}}
mail_location = maildir:~/Maildir
first_valid_uid = 1
service imap-login {{
  inet_listener imap {{
    address = 127.0.0.1
    port = {self.port}
  }}
  inet_listener imaps {{
    port = 0
  }}
}}
service anvil {{
  chroot =
}}
service imap-login {{
  chroot =
}}
""")
        self.dovecot = subprocess.Popen(["/usr/sbin/dovecot", "-F", "-c", os.path.join(d, "dovecot.conf")],
                                        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)

        def up():
            if self.dovecot.poll() is not None:
                raise AssertionError("dovecot exited: " + open(os.path.join(d, "dovecot.log")).read()[-2000:])
            try:
                imaplib.IMAP4("127.0.0.1", self.port).logout()
                return True
            except OSError:
                return False
        wait_for(up, timeout=30, what="dovecot to listen")
        self.inst = Instance(users=USERS)
        self.inst.start("postern-imapd")
        self.pw = os.path.join(d, "pw")
        with open(self.pw, "w") as f:
            f.write("dave-password-1\n")

    def tearDown(self):
        self.inst.close()
        self.dovecot.terminate()
        try:
            self.dovecot.wait(timeout=15)
        except subprocess.TimeoutExpired:
            self.dovecot.kill()
        shutil.rmtree(self.tmp, ignore_errors=True)

    def test_imap_and_maildir_from_dovecot(self):
        c = imaplib.IMAP4("127.0.0.1", self.port)
        c.login("dave@old.test", "dave-password-1")
        sep = folders(c)[0][1] or "."
        plan = populate(c, sep=sep)
        want = {f: folder_view(c, f) for f in plan}
        c.logout()
        args = [bin_path("posternctl"), "--config", self.inst.config_dir, "import", "imap", "--host", "127.0.0.1", "--port",
                str(self.port), "--plain", "--user", "dave@old.test", "--password-file", self.pw, "--to", BOB]
        first = run(args + ["--max-messages", "2"])
        self.assertIn("stopped after 2 messages", first.stdout)
        second = run(args)
        self.assertRegex(second.stdout, rf"Work{re.escape(sep)}Projects -> Work/Projects: \d copied")
        d = imap_login(self.inst, BOB)
        for folder in plan:
            local = folder.replace(sep, "/")
            self.assertEqual(folder_view(d, local)[0], want[folder][0], folder)
        d.logout()
        # Dovecot's Maildir itself, into an empty account: the same UIDVALIDITY and UIDs.
        maildir = os.path.join(self.tmp, "home", "dave@old.test", "Maildir")
        p = self.inst.ctl("import", "maildir", maildir, "--to", CAROL)
        self.assertIn("UIDs kept", p.stdout)
        d = imap_login(self.inst, CAROL)
        for folder in plan:
            local = folder.replace(sep, "/")
            msgs, uv, uids = folder_view(d, local)
            self.assertEqual((uv, uids), (want[folder][1], want[folder][2]), folder)
            self.assertEqual([(m[0].replace(b"\r\n", b"\n"), m[1], m[2]) for m in msgs],
                             [(m[0].replace(b"\r\n", b"\n"), m[1], m[2]) for m in want[folder][0]], folder)
        d.logout()


if __name__ == "__main__":
    unittest.main(verbosity=2)
