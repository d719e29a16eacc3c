"""posternctl backup create / verify / restore and the scheduled restic backup.

A running instance under SMTP load is backed up; it is wiped and restored into
a new folder; over IMAP every message acknowledged before the backup started is
there byte for byte with the same UIDVALIDITY, UIDs and flags (keywords
included); the queued message and the DKIM keys come back; verify finds a
changed, a missing and an added file; restore refuses to overwrite an instance
without --force and keeps the old one aside with it. Real restic (Debian's) backs
up into a local repository twice, the second run incremental; a failing run is
a warning in `posternctl status`; restic's own restore gives a snapshot that
verifies."""

import imaplib
import json
import os
import shutil
import smtplib
import subprocess
import tempfile
import threading
import time
import unittest

from postern_testlib import Instance, bin_path, run, wait_for

ALICE, BOB = "alice@example.test", "bob@example.test"


def imap(inst, user):
    c = imaplib.IMAP4_SSL("127.0.0.1", inst.port("postern-imapd", "imaps"), ssl_context=inst.client_tls_context())
    c.login(user, inst.passwords[user])
    return c


def view(inst, user):
    """{folder: (uidvalidity, {uid: (sorted flags, bytes)})} as IMAP shows it."""
    c = imap(inst, user)
    out = {}
    typ, boxes = c.list()
    names = [b.decode().rsplit(' "/" ', 1)[1].strip('"') for b in boxes]
    for name in names:
        typ, _ = c.select(f'"{name}"', readonly=True)
        uv = int(c.response("UIDVALIDITY")[1][0])
        msgs = {}
        typ, data = c.uid("FETCH", "1:*", "(UID FLAGS BODY.PEEK[])")
        for item in data:
            if not isinstance(item, tuple):
                continue
            meta = item[0].decode()
            uid = int(meta.split("UID ")[1].split()[0])
            flags = meta.split("FLAGS (")[1].split(")")[0].split()
            msgs[uid] = (tuple(sorted(f for f in flags if f != "\\Recent")), item[1])
        out[name] = (uv, msgs)
    c.logout()
    return out


def send(inst, to, subject, body="hello"):
    msg = f"From: sender@outside.test\r\nTo: {to}\r\nSubject: {subject}\r\nMessage-ID: <{subject}@outside.test>\r\n\r\n{body}\r\n"
    with smtplib.SMTP("127.0.0.1", inst.port("postern-smtpd", "smtp"), timeout=30) as s:
        s.sendmail("sender@outside.test", [to], msg.encode())
    return subject


def same_owner(path):
    """A file rewritten by the test belongs to its folder's owner, as the daemon user's files do
    (verify refuses, as it should, a file of root's in the daemon user's folder)."""
    st = os.stat(os.path.dirname(path))
    os.chown(path, st.st_uid, st.st_gid)


class Restored(Instance):
    """An Instance object for a config folder that already exists (a restore's result)."""

    def __init__(self, root, config_dir, data_dir, passwords):
        self.root, self.config_dir, self.data_dir = root, config_dir, data_dir
        self.procs, self.ready, self.passwords = {}, {}, dict(passwords)
        self.domain, self.hostname = "example.test", "mail.example.test"


class Backup(unittest.TestCase):
    def setUp(self):
        self.inst = Instance(users={ALICE: "alice-password-1", BOB: "bob-password-1"})
        self.tmp = tempfile.mkdtemp(prefix="postern-backup-test-")
        os.chmod(self.tmp, 0o755)

    def tearDown(self):
        self.inst.close()
        shutil.rmtree(self.tmp, ignore_errors=True)

    def prepare(self):
        inst = self.inst
        inst.ctl("dkim", "rotate", "example.test")
        inst.start("postern-smtpd")
        inst.start("postern-imapd")
        for i in range(6):
            send(inst, ALICE, f"a{i}", body="caf\xe9 8-bit line\r\nFrom the start of a line")
        send(inst, BOB, "b0")
        c = imap(inst, ALICE)
        c.create("Work")
        c.select("INBOX")
        c.uid("STORE", "1", "+FLAGS", "(\\Seen $Label1)")
        c.uid("STORE", "2", "+FLAGS", "(\\Flagged \\Answered)")
        c.uid("COPY", "3:4", "Work")
        c.uid("STORE", "5", "+FLAGS", "(\\Deleted)")
        c.expunge()
        c.select("Work")
        c.uid("STORE", "2", "+FLAGS", "(\\Seen Project-X)")
        c.logout()
        # An outbound message in the queue (no queue runner here: it waits in incoming/).
        with smtplib.SMTP("127.0.0.1", inst.port("postern-smtpd", "submission"), timeout=30) as s:
            s.starttls(context=inst.client_tls_context())
            s.login(ALICE, "alice-password-1")
            s.sendmail(ALICE, ["friend@far.test"], b"From: alice@example.test\r\nTo: friend@far.test\r\nSubject: out\r\n\r\nqueued\r\n")

    def test_backup_under_load_restore_verify(self):
        inst = self.inst
        self.prepare()
        before = {u: view(inst, u) for u in (ALICE, BOB)}
        # SMTP load while the backup runs; remember what was acknowledged before it started.
        acked, stop = [], threading.Event()

        def load():
            n = 0
            while not stop.is_set() and n < 400:
                subject = send(inst, ALICE if n % 2 else BOB, f"load{n}")
                acked.append((time.monotonic(), subject))  # the time of the 250, not of the first byte
                n += 1

        t = threading.Thread(target=load)
        t.start()
        wait_for(lambda: len(acked) >= 5, timeout=30, what="SMTP load to start")
        start = time.monotonic()
        snap = os.path.join(self.tmp, "snap")
        p = inst.ctl("backup", "create", snap)
        stop.set()
        t.join()
        self.assertRegex(p.stdout, r"backup .*snap: \d+ messages .* in \d+ folders, 1 queued, \d+ config files; .* hard links")
        acked_before = {s for (when, s) in acked if when < start}
        self.assertGreaterEqual(len(acked_before), 5)
        self.assertEqual(oct(os.stat(snap).st_mode & 0o777), "0o700")
        v = inst.ctl("backup", "verify", snap)
        self.assertIn(": OK;", v.stdout)
        for program in ("postern-smtpd", "postern-imapd"):
            inst.stop(program)
        # The running daemons wrote the data format number; the snapshot carries it.
        with open(os.path.join(inst.data_dir, "postern-data-version"), "rb") as fh:
            data_version = fh.read()
        self.assertRegex(data_version, rb"^[1-9][0-9]*\n$")
        dkim_before = {}
        for dirpath, _, files in os.walk(os.path.join(inst.config_dir, "dkim")):
            for f in files:
                with open(os.path.join(dirpath, f), "rb") as fh:
                    dkim_before[os.path.relpath(os.path.join(dirpath, f), inst.config_dir)] = fh.read()
        self.assertTrue(dkim_before)
        # Wipe the instance; restore into a new folder.
        shutil.rmtree(inst.config_dir)
        shutil.rmtree(inst.data_dir)
        new_root = os.path.join(self.tmp, "new")
        os.makedirs(new_root)
        os.chmod(new_root, 0o755)
        new_conf, new_data = os.path.join(new_root, "etc"), os.path.join(new_root, "data")
        r = run([bin_path("posternctl"), "--config", new_conf, "restore", snap, "--data-dir", new_data])
        self.assertRegex(r.stdout, r"restored \d+ messages .* 1 queued")
        restored = Restored(new_root, new_conf, new_data, inst.passwords)
        try:
            with open(os.path.join(new_data, "postern-data-version"), "rb") as fh:
                self.assertEqual(fh.read(), data_version)
            if os.geteuid() == 0:
                import pwd
                self.assertEqual(os.stat(os.path.join(new_data, "mail")).st_uid, pwd.getpwnam("nobody").pw_uid)
                self.assertEqual(os.stat(new_conf).st_uid, 0)
            restored.start("postern-imapd")
            after = {u: view(restored, u) for u in (ALICE, BOB)}
            for user in (ALICE, BOB):
                for folder, (uv, msgs) in before[user].items():
                    self.assertIn(folder, after[user])
                    uv2, msgs2 = after[user][folder]
                    self.assertEqual(uv, uv2, f"{user} {folder} UIDVALIDITY")
                    for uid, (flags, body) in msgs.items():
                        self.assertIn(uid, msgs2, f"{user} {folder} UID {uid} lost")
                        self.assertEqual(msgs2[uid], (flags, body), f"{user} {folder} UID {uid} differs")
            subjects = set()
            for user in (ALICE, BOB):
                for uid, (flags, body) in after[user]["INBOX"][1].items():
                    for line in body.split(b"\r\n"):
                        if line.startswith(b"Subject: "):
                            subjects.add(line[9:].decode())
            self.assertFalse(acked_before - subjects, "acknowledged before the backup but missing after the restore")
            self.assertIn(("$Label1", "\\Seen"), [f for (f, _) in after[ALICE]["INBOX"][1].values()])
            self.assertIn(("Project-X", "\\Seen"), [f for (f, _) in after[ALICE]["Work"][1].values()])
            q = restored.ctl("queue", "list")
            self.assertIn("friend@far.test", q.stdout)
            for rel, data in dkim_before.items():
                with open(os.path.join(new_conf, rel), "rb") as fh:
                    self.assertEqual(fh.read(), data, rel)
            restored.stop("postern-imapd")
            # A second restore onto it is refused without --force; with it, the old one is kept aside.
            again = run([bin_path("posternctl"), "--config", new_conf, "restore", snap, "--data-dir", new_data], check=False)
            self.assertEqual(again.returncode, 1)
            self.assertIn("--force", again.stderr)
            forced = run([bin_path("posternctl"), "--config", new_conf, "restore", snap, "--data-dir", new_data, "--force"])
            self.assertIn("kept the previous instance's folder as " + new_conf + ".before-restore-", forced.stdout)
        finally:
            restored.close()
        # Corruption: a changed message, a missing file, an extra file.
        victim = None
        for dirpath, _, files in os.walk(os.path.join(snap, "data", "mail")):
            if dirpath.endswith("/cur") and files:
                victim = os.path.join(dirpath, sorted(files)[0])
                break
        self.assertIsNotNone(victim)
        with open(victim, "rb") as f:
            data = bytearray(f.read())
        data[-3] ^= 0x01
        os.unlink(victim)  # a hard link to the live file once: write a new file, not through the link
        with open(victim, "wb") as f:
            f.write(bytes(data))
        same_owner(victim)
        bad = inst.ctl("backup", "verify", snap, check=False)
        self.assertEqual(bad.returncode, 1)
        self.assertIn("content differs from the manifest", bad.stdout)
        self.assertIn(os.path.relpath(victim, snap), bad.stdout)
        os.unlink(os.path.join(snap, "config", "domains"))
        with open(os.path.join(snap, "data", "stray"), "w") as f:
            f.write("x")
        bad = inst.ctl("backup", "verify", snap, check=False)
        self.assertIn("config/domains: No such file", bad.stdout)
        self.assertIn("data/stray: not in the manifest", bad.stdout)
        self.assertRegex(bad.stdout, r"3 problem\(s\)")

    def test_message_that_does_not_parse_and_bad_uidlist(self):
        inst = self.inst
        inst.start("postern-smtpd")
        send(inst, ALICE, "m1")
        snap = os.path.join(self.tmp, "snap")
        inst.ctl("backup", "create", snap)
        # Rewrite the manifest consistently, so only the message and uidlist checks can notice.
        cur = None
        for dirpath, _, files in os.walk(os.path.join(snap, "data", "mail")):
            if (dirpath.endswith("/new") or dirpath.endswith("/cur")) and files:
                cur = os.path.join(dirpath, files[0])
        os.unlink(cur)
        with open(cur, "wb") as f:
            f.write(b"this is not a header\r\n\r\nbody\r\n")
        same_owner(cur)
        uidlist = os.path.join(os.path.dirname(os.path.dirname(cur)), "dovecot-uidlist")
        with open(uidlist, "rb") as f:
            first = f.readline()
        os.unlink(uidlist)
        with open(uidlist, "wb") as f:
            f.write(first)
        same_owner(uidlist)
        import hashlib
        lines = []
        with open(os.path.join(snap, "manifest"), "rb") as f:
            for line in f.read().decode().splitlines():
                parts = line.split(" ")
                if parts[0] == "F":
                    path = os.path.join(snap, parts[-1])
                    if path in (cur, uidlist):
                        with open(path, "rb") as fh:
                            data = fh.read()
                        parts[1], parts[2] = hashlib.sha256(data).hexdigest(), str(len(data))
                if parts[0] == "end":
                    continue
                lines.append(" ".join(parts))
        total = [l.split(" ") for l in lines if l.startswith("F ")]
        lines.append(f"end {len(total)} {sum(int(p[2]) for p in total)}")
        with open(os.path.join(snap, "manifest"), "w") as f:
            f.write("\n".join(lines) + "\n")
        bad = inst.ctl("backup", "verify", snap, check=False)
        self.assertEqual(bad.returncode, 1, bad.stdout)
        self.assertIn("not a message: line 1 is not a header field", bad.stdout)
        self.assertIn("has no UID in the uidlist", bad.stdout)


@unittest.skipUnless(shutil.which("restic"), "restic is not installed (install-deps.sh test)")
class Restic(unittest.TestCase):
    def setUp(self):
        self.tmp = tempfile.mkdtemp(prefix="postern-restic-test-")
        os.chmod(self.tmp, 0o755)
        self.repo = os.path.join(self.tmp, "repo")
        self.pw = os.path.join(self.tmp, "restic-password")
        with open(self.pw, "w") as f:
            f.write("correct horse battery staple\n")
        os.chmod(self.pw, 0o600)
        self.inst = Instance(conf={"backup.restic_repository": self.repo, "backup.restic_password_file": self.pw,
                                   "backup.staging_dir": os.path.join(self.tmp, "staging")})

    def tearDown(self):
        self.inst.close()
        shutil.rmtree(self.tmp, ignore_errors=True)

    def restic(self, *args):
        env = dict(os.environ, RESTIC_REPOSITORY=self.repo, RESTIC_PASSWORD_FILE=self.pw,
                   RESTIC_CACHE_DIR=os.path.join(self.tmp, "cache"))
        return subprocess.run(["restic", *args], capture_output=True, text=True, env=env, check=True).stdout

    def test_twice_incremental_status_and_failure(self):
        inst = self.inst
        inst.start("postern-smtpd")
        for i in range(20):
            send(inst, ALICE, f"r{i}", body="x" * 900 + "\r\n" + "y" * 900 + f" {i}")
        st = inst.ctl("status", check=False)
        self.assertIn("backup: scheduled, no run yet", st.stdout)
        first = inst.ctl("backup", "run")
        self.assertIn("initialised the restic repository", first.stdout)
        self.assertRegex(first.stdout, r"backup [0-9a-f]{8} in .*: 20 messages")
        send(inst, ALICE, "r-late")
        second = inst.ctl("backup", "run")
        self.assertRegex(second.stdout, r": 21 messages")
        # Retention ran: keep_daily keeps the newest snapshot of each day, so one is left.
        snaps = json.loads(self.restic("snapshots", "--json"))
        self.assertEqual(len(snaps), 1)
        self.assertEqual({s["hostname"] for s in snaps}, {"mail.example.test"})
        state = json.loads(open(os.path.join(self.tmp, "staging", "last-run.json")).read())
        self.assertTrue(state["ok"])
        self.assertGreater(state["files_unmodified"], 20)  # the second run reused what the first stored
        self.assertLess(state["files_new"], 10)
        status = inst.ctl("backup", "status")
        self.assertIn(" OK (", status.stdout)
        self.assertIn("21 messages", status.stdout)
        self.assertIn("backup: last OK at", inst.ctl("status", check=False).stdout)
        # --if-due right after a success does nothing.
        inst.ctl("backup", "run", "--if-due")
        self.assertEqual(len(json.loads(self.restic("snapshots", "--json"))), 1)
        self.assertEqual(json.loads(open(os.path.join(self.tmp, "staging", "last-run.json")).read())["finished"], state["finished"])
        # restic's own restore gives a snapshot that verifies.
        target = os.path.join(self.tmp, "restored")
        self.restic("restore", "latest", "--target", target)
        found = [d for d, _, files in os.walk(target) if "manifest" in files]
        self.assertEqual(len(found), 1)
        v = inst.ctl("backup", "verify", found[0])
        self.assertIn(": OK;", v.stdout)
        self.assertIn("21 messages", v.stdout)
        # A failure (wrong password) is kept and shown as a warning.
        with open(self.pw, "w") as f:
            f.write("wrong\n")
        failed = inst.ctl("backup", "run", check=False)
        self.assertEqual(failed.returncode, 1)
        self.assertIn("backup failed: restic", failed.stderr)
        st = inst.ctl("status", check=False)
        self.assertIn("backup: WARNING: the last backup failed at", st.stdout)
        self.assertEqual(inst.ctl("backup", "status", check=False).returncode, 1)

    def test_supervisor_runs_the_scheduled_backup(self):
        inst = self.inst
        inst.set_conf("http.listen", "")
        inst.set_conf("https.listen", "")
        env = dict(os.environ, POSTERN_SCHEDULE_DELAY_MS="200")
        inst.start("postern-appliance", env=env)
        state = os.path.join(self.tmp, "staging", "last-run.json")
        wait_for(lambda: os.path.exists(state) and json.load(open(state)).get("ok"), timeout=60,
                 what="the supervisor's scheduled backup")
        self.assertEqual(len(json.loads(self.restic("snapshots", "--json"))), 1)
        wait_for(lambda: "supervisor.backup " in inst.log(), timeout=30, what="the backup's log line")


if __name__ == "__main__":
    unittest.main(verbosity=2)
