"""postern-appliance, the supervisor: starts every configured daemon and
reports them ready; restarts a daemon killed with SIGKILL (with back-off, in
the log); refuses a broken configuration on SIGHUP and keeps running; stops
everything on SIGTERM; as PID 1 of its own PID namespace it reaps orphans."""

import json
import os
import re
import shutil
import signal
import subprocess
import tempfile
import unittest

from postern_testlib import BUILD_DIR, Instance, bin_path, wait_for

HERE = os.path.dirname(os.path.abspath(__file__))


def libexec_with_fake_queued(tmp):
    """A program folder with the real daemons and the test fixture as postern-queued."""
    d = os.path.join(tmp, "libexec")
    os.makedirs(d)
    for name in ("postern-smtpd", "postern-imapd", "postern-pop3d"):
        os.symlink(bin_path(name), os.path.join(d, name))
    shutil.copy(os.path.join(HERE, "fixtures", "fake-queued.py"), os.path.join(d, "postern-queued"))
    return d


class Supervisor(unittest.TestCase):
    def setUp(self):
        self.inst = Instance(conf={"http.listen": "", "https.listen": ""})
        self.libexec = libexec_with_fake_queued(self.inst.root)
        self.env = dict(os.environ, POSTERN_LIBEXEC=self.libexec)

    def tearDown(self):
        self.inst.close()

    def status(self):
        with open(os.path.join(self.inst.run_dir, "postern-appliance.status")) as f:
            return {s["name"]: s for s in json.load(f)["services"]}

    def start(self):
        info = self.inst.start("postern-appliance", env=self.env)
        self.assertEqual(set(info["listeners"]), {"smtp", "submission", "submissions", "imap", "imaps", "pop3", "pop3s", "sieve"})
        return info

    def test_start_restart_reload_stop(self):
        self.start()
        st = self.status()
        self.assertEqual(st["postern-smtpd"]["state"], "running")
        self.assertEqual(st["postern-queued"]["state"], "running")
        self.assertEqual(st["postern-webd"]["state"], "disabled")  # no http/https listener configured
        # SIGKILL a daemon: it comes back with a new pid, and the log says so.
        old = st["postern-imapd"]["pid"]
        os.kill(old, signal.SIGKILL)
        wait_for(lambda: self.status()["postern-imapd"]["state"] == "running" and self.status()["postern-imapd"]["pid"] != old,
                 timeout=30, what="imapd to be restarted")
        self.assertEqual(self.status()["postern-imapd"]["restarts"], 1)
        self.assertRegex(self.inst.log(), r"supervisor\.exited service=postern-imapd code=\d+ crashed=yes .* restart_in_ms=1000")
        # A broken configuration is refused on SIGHUP; everything keeps running.
        pids = {n: s.get("pid") for n, s in self.status().items()}
        conf = os.path.join(self.inst.config_dir, "postern.conf")
        good = open(conf).read()
        with open(conf, "a") as f:
            f.write("smtp.max_recipients = lots\n")
        self.inst.procs["postern-appliance"].send_signal(signal.SIGHUP)
        wait_for(lambda: "supervisor.reload_refused" in self.inst.log(), timeout=10, what="the reload to be refused")
        self.assertIn("'lots' is not a whole number", self.inst.log())
        self.assertEqual({n: s.get("pid") for n, s in self.status().items()}, pids)
        # A valid change is passed on to the daemons.
        with open(conf, "w") as f:
            f.write(good + "smtp.max_recipients = 50\n")
        self.inst.procs["postern-appliance"].send_signal(signal.SIGHUP)
        wait_for(lambda: len(re.findall(r"postern-smtpd\[\d+\]: info reloaded", self.inst.log())) >= 1, timeout=10,
                 what="smtpd to reload")
        self.assertEqual(self.status()["postern-smtpd"]["pid"], pids["postern-smtpd"])
        # SIGTERM stops every child.
        children = [s["pid"] for s in self.status().values() if s.get("pid")]
        self.assertEqual(self.inst.stop("postern-appliance"), 0)
        for pid in children:
            self.assertFalse(os.path.exists(f"/proc/{pid}") and open(f"/proc/{pid}/stat").read().split()[2] != "Z", f"{pid} still running")

    def test_missing_daemon_is_reported_not_hidden(self):
        os.unlink(os.path.join(self.libexec, "postern-pop3d"))
        # A copy of the supervisor outside the build tree, so it cannot find the real pop3d next to itself.
        sbin = os.path.join(self.inst.root, "sbin")
        os.makedirs(sbin)
        shutil.copy(bin_path("postern-appliance"), sbin)
        proc = subprocess.Popen([os.path.join(sbin, "postern-appliance"), "--config", self.inst.config_dir], env=self.env,
                                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        try:
            wait_for(lambda: os.path.exists(os.path.join(self.inst.run_dir, "postern-appliance.ready")), timeout=30, what="ready")
            st = self.status()
            self.assertEqual(st["postern-pop3d"]["state"], "missing")
            self.assertEqual(st["postern-smtpd"]["state"], "running")
            self.assertIn('service=postern-pop3d reason="program not installed; this service is NOT running"', self.inst.log())
            status = subprocess.run([bin_path("posternctl"), "--config", self.inst.config_dir, "status"], capture_output=True, text=True)
            self.assertEqual(status.returncode, 1)  # a missing service is a failed status, never "ok"
            self.assertRegex(status.stdout, r"postern-pop3d\s+missing")
        finally:
            proc.terminate()
            proc.wait(30)

    def test_pid1_reaps_orphans(self):
        if shutil.which("unshare") is None:
            self.fail("unshare (util-linux) is needed")
        cmd = ["unshare", "--pid", "--fork", "--mount-proc", bin_path("postern-appliance"), "--config", self.inst.config_dir]
        proc = subprocess.Popen(cmd, env=self.env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        try:
            wait_for(lambda: os.path.exists(os.path.join(self.inst.run_dir, "postern-appliance.ready")), timeout=30,
                     what="the supervisor (PID 1) to be ready")
            self.assertIn("pid1=yes", self.inst.log())
            # The fixture left an orphan that exits after 0.5 s; PID 1 must collect it (no zombie left).
            sup = int(subprocess.run(["pgrep", "-P", str(proc.pid)], capture_output=True, text=True).stdout.split()[0])

            def zombies():
                out = []
                for pid in os.listdir("/proc"):
                    if not pid.isdigit():
                        continue
                    try:
                        fields = open(f"/proc/{pid}/stat").read().rsplit(")", 1)[1].split()
                    except OSError:
                        continue
                    if fields[1] == str(sup) and fields[0] == "Z":
                        out.append(pid)
                return out

            wait_for(lambda: not zombies(), timeout=10, what="orphans to be reaped")
            # Signals reach it as PID 1: SIGTERM stops everything.
            os.kill(sup, signal.SIGTERM)
            proc.wait(30)
            self.assertIn("supervisor.stopped", self.inst.log())
        finally:
            if proc.poll() is None:
                proc.kill()
                proc.wait()


if __name__ == "__main__":
    unittest.main(verbosity=2)
