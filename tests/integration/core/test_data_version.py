"""The data folder's format version (core/data_version.h) with the real programs:
  * a fresh folder has none; the first daemon start records the current one
    (as the daemon user, logged as data.migrated), and later starts migrate nothing;
  * `posternctl version` shows the program version, the folder's format and the
    formats this build reads;
  * a folder of a newer format: postern-appliance, every daemon and
    `posternctl version` refuse with one clear line and a non-zero exit, and the
    file is left as it was. Data acknowledged before stays where it was.
The migration table with injected steps is unit-tested (tests/unit/core/tst_data_version.cpp)."""

import os
import re
import smtplib
import subprocess
import unittest

from postern_testlib import Instance, bin_path

FORMAT = 1  # kDataFormatVersion of this build


class DataVersion(unittest.TestCase):
    def setUp(self):
        self.inst = Instance(conf={"http.listen": "", "https.listen": ""})
        self.path = os.path.join(self.inst.data_dir, "postern-data-version")

    def tearDown(self):
        self.inst.close()

    def refused(self, program):
        """Runs `program` on the instance; returns (exit code, stderr) once it exits (it must)."""
        r = subprocess.run([bin_path(program), "--config", self.inst.config_dir], capture_output=True, text=True, timeout=30)
        return r.returncode, r.stderr

    def test_recorded_then_newer_refused(self):
        out = self.inst.ctl("version").stdout
        self.assertIn(f"data format: none recorded in {self.inst.data_dir}", out)
        self.assertFalse(os.path.exists(self.path))

        self.inst.start("postern-smtpd")
        with open(self.path) as f:
            self.assertEqual(f.read(), f"{FORMAT}\n")
        if os.geteuid() == 0:
            import pwd
            self.assertEqual(os.stat(self.path).st_uid, pwd.getpwnam("nobody").pw_uid)  # written as the daemon user
        self.assertEqual(len(re.findall(r"data\.migrated from=0 to=1", self.inst.log())), 1)
        with smtplib.SMTP("127.0.0.1", self.inst.port("postern-smtpd", "smtp"), timeout=30) as c:
            c.sendmail("a@remote.test", ["alice@example.test"], b"Subject: kept\r\n\r\nx\r\n")
        self.inst.stop("postern-smtpd")
        # A second start (and another daemon) migrates nothing.
        self.inst.start("postern-pop3d")
        self.inst.stop("postern-pop3d")
        self.assertEqual(len(re.findall(r"data\.migrated", self.inst.log())), 1)

        r = self.inst.ctl("version")
        self.assertRegex(r.stdout, r"(?m)^postern \d+\.\d+\.\d+")
        self.assertIn(f"data format: {FORMAT} ({self.path})\n", r.stdout)
        self.assertIn(f"supported data formats: 0 to {FORMAT} (older ones are migrated at start)\n", r.stdout)

        # A newer Postern wrote this folder.
        with open(self.path, "w") as f:
            f.write(f"{FORMAT + 1}\n")
        message = (f"data folder {self.inst.data_dir} is format {FORMAT + 1}, this Postern knows up to {FORMAT}: "
                   "use a newer image or restore a backup")
        for program in ("postern-appliance", "postern-smtpd", "postern-imapd", "postern-pop3d", "postern-queued", "postern-webd"):
            with self.subTest(program=program):
                code, err = self.refused(program)
                self.assertNotEqual(code, 0)
                self.assertIn(f"{program}: {message}\n", err)
        r = self.inst.ctl("version", check=False)
        self.assertEqual(r.returncode, 1)
        self.assertIn(f"ERROR: {message}\n", r.stdout)
        with open(self.path) as f:
            self.assertEqual(f.read(), f"{FORMAT + 1}\n")
        self.assertEqual(len(self.inst.messages("alice@example.test")), 1)

        # Garbage in the file is not guessed at either.
        with open(self.path, "w") as f:
            f.write("two\n")
        code, err = self.refused("postern-smtpd")
        self.assertEqual(code, 1)
        self.assertIn(f"{self.path} does not hold a data format version (one number expected): restore it from a backup", err)


if __name__ == "__main__":
    unittest.main(verbosity=2)
