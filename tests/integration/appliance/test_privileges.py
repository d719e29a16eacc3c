"""Root and the daemon user's folders (issue 16, defects 3 and 10), with the real
daemons started as root and system_user = nobody.

Defect 3: before it drops root, every daemon creates and hands over its state
folders and opens mail.log; the supervisor writes mail.log and reads ready files
as root all its life. The daemon user owns data_dir, so it can put a symbolic
link, a hard link or a FIFO where root expects its files. Each test plants one
(as a compromised daemon could) pointing at a root-only file or folder, starts
the daemon, and checks that the target's owner, mode and content are unchanged
and that the daemon refuses to start with a line naming the planted path.

Defect 10: with the instance below a folder nobody cannot enter (0700, root's),
or with a queue folder it cannot write, every daemon must exit non-zero before
it is ready, saying which folder, as which user, and what to change; the
supervisor must log that line and show it in its status.

Needs root (it starts daemons as root and makes files of root's and nobody's)."""

import json
import os
import re
import shutil
import signal
import stat
import subprocess
import tempfile
import time
import unittest

from postern_testlib import Instance, bin_path, wait_for

HERE = os.path.dirname(os.path.abspath(__file__))
NOBODY = 65534
DAEMONS = ("postern-smtpd", "postern-imapd", "postern-pop3d", "postern-sieved", "postern-queued", "postern-webd")


def snapshot(path):
    """Owner, group, mode and (for files) content or (for folders) entries of `path`."""
    st = os.lstat(path)
    if stat.S_ISDIR(st.st_mode):
        body = sorted(os.listdir(path))
    elif stat.S_ISREG(st.st_mode):
        with open(path, "rb") as f:
            body = f.read()
    else:
        body = None
    return (st.st_uid, st.st_gid, stat.S_IMODE(st.st_mode), body)


def start_outcome(inst, program, timeout=20):
    """Start `program` as root; return ("exited", code, stderr) or ("ready", None, stderr).

    A daemon that neither exits nor becomes ready within `timeout` (e.g. blocked
    opening a FIFO) is reported as ("hung", None, stderr)."""
    ready = os.path.join(inst.run_dir, f"{program}.ready")
    try:
        if os.path.lexists(ready):
            os.unlink(ready)
    except OSError:
        pass
    err_path = os.path.join(inst.root, f"{program}.stderr")
    with open(err_path, "wb") as err:
        proc = subprocess.Popen([bin_path(program), "--config", inst.config_dir], stdin=subprocess.DEVNULL, stdout=err, stderr=err)
    deadline = time.monotonic() + timeout
    outcome = "hung"
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            outcome = "exited"
            break
        try:
            with open(ready) as f:
                if json.load(f).get("pid") == proc.pid:
                    outcome = "ready"
                    break
        except (OSError, ValueError):
            pass
        time.sleep(0.05)
    if proc.poll() is None:
        proc.kill()
        proc.wait()
    with open(err_path, errors="replace") as f:
        text = f.read()
    return outcome, (proc.returncode if outcome == "exited" else None), text


@unittest.skipUnless(os.geteuid() == 0, "starts daemons as root and makes files of other users")
class PlantedLinks(unittest.TestCase):
    """Defect 3: links, hard links and FIFOs the daemon user plants in data_dir."""

    def setUp(self):
        self.inst = Instance()
        # A root-only folder with a root-only file, on the same file system (hard links).
        self.outside = tempfile.mkdtemp(prefix="postern-rootonly-", dir=os.path.dirname(self.inst.root))
        os.chmod(self.outside, 0o700)
        self.secret = os.path.join(self.outside, "secret")
        with open(self.secret, "w") as f:
            f.write("root only\n")
        os.chmod(self.secret, 0o600)
        for d in ("log", "run"):
            os.makedirs(os.path.join(self.inst.data_dir, d), exist_ok=True)
            os.chown(os.path.join(self.inst.data_dir, d), NOBODY, NOBODY)
        self.before = {p: snapshot(p) for p in (self.outside, self.secret)}

    def tearDown(self):
        self.inst.close()
        shutil.rmtree(self.outside, ignore_errors=True)

    def plant_symlink(self, path, target):
        if os.path.isdir(path) and not os.path.islink(path):
            shutil.rmtree(path)
        elif os.path.lexists(path):
            os.unlink(path)
        os.symlink(target, path)
        os.lchown(path, NOBODY, NOBODY)  # as the daemon user would have made it

    def assert_untouched(self):
        after = {p: snapshot(p) for p in self.before}
        self.assertEqual(after, self.before, "root changed a file the daemon user pointed it at")

    def assert_refused(self, program, planted, why):
        outcome, code, err = start_outcome(self.inst, program)
        self.assertEqual(outcome, "exited", f"{program} must refuse to start, but it is {outcome}:\n{err}")
        self.assertNotEqual(code, 0, err)
        self.assertIn(planted, err)
        self.assertRegex(err, why)
        self.assertFalse(os.path.exists(os.path.join(self.inst.run_dir, f"{program}.ready")))
        self.assert_untouched()

    def test_log_file_symlink_every_daemon(self):
        log = os.path.join(self.inst.data_dir, "log", "mail.log")
        self.plant_symlink(log, self.secret)
        for program in DAEMONS:
            with self.subTest(program=program):
                self.assert_refused(program, log, r"is a symbolic link .*refusing to follow it")
        # Without the link every daemon starts, and the log is handed to nobody.
        os.unlink(log)
        self.assertEqual(start_outcome(self.inst, "postern-smtpd")[0], "ready")
        self.assertEqual(os.stat(log).st_uid, NOBODY)

    def test_log_file_hard_link(self):
        log = os.path.join(self.inst.data_dir, "log", "mail.log")
        if os.path.lexists(log):
            os.unlink(log)
        os.link(self.secret, log)  # what fs.protected_hardlinks=0 lets the daemon user do
        self.before[self.secret] = snapshot(self.secret)
        self.assert_refused("postern-smtpd", log, r"has 2 hard links")

    def test_log_file_fifo(self):
        log = os.path.join(self.inst.data_dir, "log", "mail.log")
        if os.path.lexists(log):
            os.unlink(log)
        os.mkfifo(log, 0o600)
        os.chown(log, NOBODY, NOBODY)
        # Opening a FIFO for writing blocks until a reader comes: root must not even try.
        self.assert_refused("postern-imapd", log, r"not a regular file")

    def test_log_folder_symlink(self):
        log_dir = os.path.join(self.inst.data_dir, "log")
        self.plant_symlink(log_dir, self.outside)
        self.assert_refused("postern-pop3d", log_dir, r"is a symbolic link in .*data \(owner nobody")

    def test_run_folder_symlink(self):
        run_dir = os.path.join(self.inst.data_dir, "run")
        self.plant_symlink(run_dir, self.outside)
        self.assert_refused("postern-smtpd", run_dir, r"is a symbolic link in .*data \(owner nobody")

    def test_auth_throttle_symlink(self):
        throttle = os.path.join(self.inst.data_dir, "run", "auth-throttle")
        self.plant_symlink(throttle, self.secret)
        self.assert_refused("postern-smtpd", throttle, r"is a symbolic link; refusing to hand it over")

    def test_ready_file_symlink_is_replaced_not_followed(self):
        # The ready file is written after root is gone, by rename: the link is replaced.
        ready = os.path.join(self.inst.run_dir, "postern-webd.ready")
        self.plant_symlink(ready, self.secret)
        outcome, _, err = start_outcome(self.inst, "postern-webd")
        self.assertEqual(outcome, "ready", err)
        self.assertFalse(os.path.islink(ready))
        self.assert_untouched()

    def test_supervisor_never_writes_through_a_planted_log(self):
        """The supervisor is root all its life and logs to mail.log: a link there is refused
        (it logs to stderr instead), and the daemons that refuse to start are reported."""
        log = os.path.join(self.inst.data_dir, "log", "mail.log")
        self.plant_symlink(log, self.secret)
        status_path = os.path.join(self.inst.run_dir, "postern-appliance.status")
        err_path = os.path.join(self.inst.root, "appliance.stderr")
        with open(err_path, "wb") as err:
            proc = subprocess.Popen([bin_path("postern-appliance"), "--config", self.inst.config_dir], stdout=err, stderr=err)
        try:
            def smtpd_error():
                with open(status_path) as f:
                    services = {s["name"]: s for s in json.load(f)["services"]}
                return services["postern-smtpd"].get("error")
            error = wait_for(smtpd_error, timeout=30, what="the supervisor to report why postern-smtpd does not start")
            self.assertIn("is a symbolic link", error)
            with open(err_path, errors="replace") as f:
                text = f.read()
            self.assertIn("postern-appliance: log file not used (logging to stderr): " + log + " is a symbolic link", text)
            self.assertRegex(text, r"supervisor\.exited service=postern-smtpd code=1 .*error=\"postern-smtpd: " + re.escape(log))
        finally:
            proc.terminate()
            proc.wait(30)
        self.assert_untouched()


@unittest.skipUnless(os.geteuid() == 0, "starts daemons as root with system_user = nobody")
class UnwritableFolders(unittest.TestCase):
    """Defect 10: a daemon that cannot store must not report ready."""

    def setUp(self):
        self.outer = tempfile.mkdtemp(prefix="postern-closed-")  # root's, 0700: nobody cannot enter it
        os.chmod(self.outer, 0o700)
        self.inst = Instance(root=os.path.join(self.outer, "inst"))

    def tearDown(self):
        self.inst.close()
        shutil.rmtree(self.outer, ignore_errors=True)

    def test_every_daemon_refuses_below_a_closed_folder(self):
        for program in DAEMONS:
            with self.subTest(program=program):
                outcome, code, err = start_outcome(self.inst, program)
                self.assertEqual(outcome, "exited", f"{program} must refuse to start, but it is {outcome}:\n{err}")
                self.assertNotEqual(code, 0)
                self.assertRegex(
                    err,
                    re.escape(f"{program}: cannot write {self.inst.data_dir}/") + r"\S+" +
                    re.escape(" as user nobody (enter folder: Permission denied): make the folder and its parents "
                              f"enterable by nobody, e.g. chmod o+x {self.outer}"))
                self.assertFalse(os.path.exists(os.path.join(self.inst.run_dir, f"{program}.ready")))
        # The fix it names works.
        os.chmod(self.outer, 0o711)
        self.assertEqual(start_outcome(self.inst, "postern-smtpd")[0], "ready")

    def test_queue_folder_not_writable(self):
        os.chmod(self.outer, 0o755)
        incoming = os.path.join(self.inst.data_dir, "queue", "incoming")
        os.makedirs(incoming)
        os.chown(os.path.dirname(incoming), NOBODY, NOBODY)
        os.chmod(incoming, 0o700)  # left root's, e.g. by a hand-made copy
        for program in ("postern-smtpd", "postern-queued"):
            with self.subTest(program=program):
                outcome, code, err = start_outcome(self.inst, program)
                self.assertEqual(outcome, "exited", f"{program} must refuse to start, but it is {outcome}:\n{err}")
                self.assertIn(f"{program}: cannot write {incoming} as user nobody (open folder: Permission denied): "
                              f"make the folder writable by nobody, e.g. chown nobody {incoming}", err)
        # imapd does not write the queue: it starts.
        self.assertEqual(start_outcome(self.inst, "postern-imapd")[0], "ready")

    def test_supervisor_reports_why(self):
        status_path = os.path.join(self.inst.run_dir, "postern-appliance.status")
        err_path = os.path.join(self.inst.root, "appliance.stderr")
        with open(err_path, "wb") as err:
            proc = subprocess.Popen([bin_path("postern-appliance"), "--config", self.inst.config_dir], stdout=err, stderr=err)
        try:
            def smtpd_error():
                with open(status_path) as f:
                    services = {s["name"]: s for s in json.load(f)["services"]}
                return services["postern-smtpd"].get("error")
            error = wait_for(smtpd_error, timeout=30, what="the status to say why postern-smtpd does not start")
            self.assertIn("cannot write", error)
            self.assertIn(f"chmod o+x {self.outer}", error)
            self.assertRegex(self.inst.log(), r"supervisor\.exited service=postern-smtpd code=1 crashed=no .*error=\"postern-smtpd: "
                                              r"cannot write .* as user nobody")
            status = self.inst.ctl("status", check=False)
            self.assertEqual(status.returncode, 1)
            self.assertRegex(status.stdout, r"postern-smtpd\s+restarting.*\n\s+postern-smtpd: cannot write")
        finally:
            proc.terminate()
            proc.wait(30)


@unittest.skipUnless(os.geteuid() == 0, "posternctl as root against files of the daemon user")
class RootTools(unittest.TestCase):
    """posternctl runs as root on the daemon user's data_dir."""

    def setUp(self):
        self.inst = Instance()
        self.outside = tempfile.mkdtemp(prefix="postern-rootonly-", dir=os.path.dirname(self.inst.root))
        os.chmod(self.outside, 0o700)
        for d in ("run", "queue"):
            os.makedirs(os.path.join(self.inst.data_dir, d), exist_ok=True)
            os.chown(os.path.join(self.inst.data_dir, d), NOBODY, NOBODY)

    def tearDown(self):
        self.inst.close()
        shutil.rmtree(self.outside, ignore_errors=True)

    def test_sighup_only_to_the_real_supervisor(self):
        # The daemon user writes a status file naming a process of root's that SIGHUP kills.
        victim = subprocess.Popen(["sleep", "600"])
        try:
            status = os.path.join(self.inst.run_dir, "postern-appliance.status")
            with open(status, "w") as f:
                json.dump({"pid": victim.pid, "services": []}, f)
            os.chown(status, NOBODY, NOBODY)
            cert, key = (os.path.join(self.inst.config_dir, "tls", n) for n in ("cert.pem", "key.pem"))
            copy = os.path.join(self.inst.root, "copy")
            os.makedirs(copy)
            shutil.copy(cert, copy)
            shutil.copy(key, copy)
            p = self.inst.ctl("cert", "install", os.path.join(copy, "cert.pem"), os.path.join(copy, "key.pem"), check=False)
            self.assertEqual(p.returncode, 0, p.stdout + p.stderr)
            self.assertIn("the supervisor is not running", p.stdout)
            self.assertIsNone(victim.poll(), "root sent SIGHUP to a pid the daemon user chose")
            # posternctl status does not believe that file either.
            self.assertIn("supervisor: not running", self.inst.ctl("status", check=False).stdout)
        finally:
            victim.kill()
            victim.wait()

    def test_log_search_does_not_read_through_a_link(self):
        secret = os.path.join(self.outside, "secret")
        with open(secret, "w") as f:
            f.write("root:TOPSECRET:19000:0:99999:7:::\n")
        os.chmod(secret, 0o600)
        log_dir = os.path.join(self.inst.data_dir, "log")
        os.makedirs(log_dir, exist_ok=True)
        os.chown(log_dir, NOBODY, NOBODY)
        os.symlink(secret, os.path.join(log_dir, "mail.log"))
        p = self.inst.ctl("log", "search", "TOPSECRET", check=False)
        self.assertNotIn("TOPSECRET", p.stdout)
        self.assertIn("is a symbolic link", p.stderr)

    def test_queue_commands_run_as_the_daemon_user(self):
        # queue/hold replaced by a link to a folder of root's holding a "message".
        qid = "0123456789ABCDEF"
        env = os.path.join(self.outside, qid + ".env")
        body = os.path.join(self.outside, qid + ".body")
        with open(env, "w") as f:
            f.write(f"POSTERN-QUEUE 2\nid: {qid}\nsender: a@example.test\nrecipient: b@example.test\n")
        with open(body, "w") as f:
            f.write("Subject: root's file\r\n\r\nx\r\n")
        hold = os.path.join(self.inst.data_dir, "queue", "hold")
        os.symlink(self.outside, hold)
        os.lchown(hold, NOBODY, NOBODY)
        p = self.inst.ctl("queue", "delete", qid, check=False)
        self.assertNotEqual(p.returncode, 0, p.stdout + p.stderr)
        self.assertTrue(os.path.exists(env) and os.path.exists(body), "root deleted files the daemon user pointed it at")
        p = self.inst.ctl("queue", "show", qid, check=False)
        self.assertNotIn("root's file", p.stdout)


@unittest.skipUnless(os.geteuid() == 0, "runs the supervisor as root")
class HostileReadyFile(unittest.TestCase):
    """The supervisor reads ready files in the daemon user's run_dir as root: a FIFO
    put there (by a compromised daemon) must not block it."""

    def test_fifo_ready_file_does_not_hang_the_supervisor(self):
        inst = Instance(conf={"http.listen": "", "https.listen": "", "smtp.listen": "", "submission.listen": "",
                              "submissions.listen": "", "imap.listen": "", "imaps.listen": "", "pop3.listen": "",
                              "pop3s.listen": ""})
        try:
            libexec = os.path.join(inst.root, "libexec")
            os.makedirs(libexec)
            shutil.copy(os.path.join(HERE, "fixtures", "hostile-queued.py"), os.path.join(libexec, "postern-queued"))
            env = dict(os.environ, POSTERN_LIBEXEC=libexec)
            err = open(os.path.join(inst.root, "appliance.stderr"), "wb")
            proc = subprocess.Popen([bin_path("postern-appliance"), "--config", inst.config_dir], stdout=err, stderr=err, env=env)
            try:
                fifo = os.path.join(inst.run_dir, "postern-queued.ready")
                wait_for(lambda: os.path.lexists(fifo) and stat.S_ISFIFO(os.lstat(fifo).st_mode), timeout=30,
                         what="the fixture to put a FIFO in place of its ready file")
                # For a whole second after that (twenty of the supervisor's 50 ms ready polls,
                # each of which meets the FIFO), every SIGHUP must be answered: an old
                # supervisor blocks in open() on the first poll and answers none.
                appeared = time.monotonic()
                answered = 0
                while time.monotonic() - appeared < 1.0 or answered < 3:
                    before = len(re.findall(r"supervisor\.reload restart_settings", inst.log()))
                    proc.send_signal(signal.SIGHUP)
                    wait_for(lambda: len(re.findall(r"supervisor\.reload restart_settings", inst.log())) > before, timeout=15,
                             what="the supervisor to answer SIGHUP (it must not block on the FIFO)")
                    answered += 1
            finally:
                proc.terminate()
                try:
                    proc.wait(20)
                except subprocess.TimeoutExpired:
                    proc.kill()
                    proc.wait()
                err.close()
        finally:
            inst.close()


if __name__ == "__main__":
    unittest.main(verbosity=2)
