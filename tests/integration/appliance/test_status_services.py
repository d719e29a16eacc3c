"""`posternctl status` (the container's health check) tells the truth about the
daemons: with the whole appliance up, every program of the service table
(smtpd, imapd, pop3d, queued, webd) is listed as running and the exit status is
0; a daemon that is down and cannot come back fails the check (exit 1, its
state on its line); a program the supervisor's report leaves out fails it too
("not reported by the supervisor")."""

import json
import os
import re
import signal
import unittest

from postern_testlib import Instance, bin_path, wait_for

PROGRAMS = ("postern-smtpd", "postern-imapd", "postern-pop3d", "postern-sieved", "postern-queued", "postern-webd")


class StatusServices(unittest.TestCase):
    def setUp(self):
        self.inst = Instance()  # every listener on, web included
        self.libexec = os.path.join(self.inst.root, "libexec")
        os.makedirs(self.libexec)
        for name in PROGRAMS:
            os.symlink(bin_path(name), os.path.join(self.libexec, name))
        self.env = dict(os.environ, POSTERN_LIBEXEC=self.libexec)
        self.status_path = os.path.join(self.inst.run_dir, "postern-appliance.status")

    def tearDown(self):
        self.inst.close()

    def services(self):
        with open(self.status_path) as f:
            return {s["name"]: s for s in json.load(f)["services"]}

    def test_every_daemon_listed_and_a_down_one_fails(self):
        self.inst.start("postern-appliance", env=self.env)
        st = self.inst.ctl("status", check=False)
        self.assertEqual(st.returncode, 0, st.stdout + st.stderr)
        for name in PROGRAMS:
            self.assertRegex(st.stdout, rf"(?m)^  {name}\s+running\s+since ")
        self.assertIn("web panel: https://mail.example.test/panel/\n", st.stdout)

        # The supervisor's report without the queue runner: the check fails and says so.
        with open(self.status_path) as f:
            saved = f.read()
        report = json.loads(saved)
        report["services"] = [s for s in report["services"] if s["name"] != "postern-queued"]
        with open(self.status_path, "w") as f:
            json.dump(report, f)
        st = self.inst.ctl("status", check=False)
        self.assertEqual(st.returncode, 1, st.stdout)
        self.assertRegex(st.stdout, r"(?m)^  postern-queued\s+not reported by the supervisor$")
        with open(self.status_path, "w") as f:
            f.write(saved)
        self.assertEqual(self.inst.ctl("status", check=False).returncode, 0)

        # imapd dies and its program is gone, so it cannot come back: the check fails.
        os.unlink(os.path.join(self.libexec, "postern-imapd"))
        os.kill(self.services()["postern-imapd"]["pid"], signal.SIGKILL)
        wait_for(lambda: self.services()["postern-imapd"]["state"] != "running", timeout=30, what="imapd to be reported down")
        st = self.inst.ctl("status", check=False)
        self.assertEqual(st.returncode, 1, st.stdout)
        line = re.search(r"(?m)^  postern-imapd\s+(\S+)", st.stdout)
        self.assertIsNotNone(line, st.stdout)
        self.assertIn(line.group(1), ("restarting", "starting", "missing", "stopped"))
        for name in set(PROGRAMS) - {"postern-imapd"}:
            self.assertRegex(st.stdout, rf"(?m)^  {name}\s+running\s+since ")


if __name__ == "__main__":
    unittest.main(verbosity=2)
