"""postern-firewall's state file (what it added to firewalld, so that `remove`
takes away only that) and the daemon user (issue 16, defect 3).

Root decides from this file which firewalld ports to remove. It used to live in
data_dir, which the daemon user owns, so a compromised daemon could make root
remove any port (e.g. ssh). Now it lives in the config folder (root's); a file
left in data_dir by an older version is used only while root still owns it.
Runs `postern-firewall remove --dry-run` on a captured firewalld host (no packet
filter is touched) and reads the plan it prints."""

import json
import os
import unittest

from postern_testlib import SOURCE_DIR, Instance, run

CAPTURE = os.path.join(SOURCE_DIR, "tests", "unit", "firewall", "data", "firewalld-public")
NOBODY = 65534


class FirewallState(unittest.TestCase):
    def setUp(self):
        self.inst = Instance()
        os.makedirs(self.inst.data_dir, exist_ok=True)

    def tearDown(self):
        self.inst.close()

    def remove_plan(self):
        p = run(["postern-firewall", "--config", self.inst.config_dir, "--captured", CAPTURE, "remove", "--dry-run"], check=False)
        self.assertEqual(p.returncode, 0, p.stdout + p.stderr)
        return p

    def write_state(self, path, ports, owner=0):
        with open(path, "w") as f:
            json.dump({"firewalld": {"zone": "public", "ports": ports}}, f)
        os.chown(path, owner, owner)

    @unittest.skipUnless(os.geteuid() == 0, "the planted file must belong to another user than root")
    def test_daemon_users_file_is_not_obeyed(self):
        # What a compromised daemon can write: data_dir is nobody's.
        legacy = os.path.join(self.inst.data_dir, "firewall-state.json")
        self.write_state(legacy, ["22/tcp"], owner=NOBODY)
        p = self.remove_plan()
        self.assertNotIn("--remove-port=22/tcp", p.stdout)
        self.assertIn("Would remove: nothing to do", p.stdout)
        self.assertIn(f"ignored {legacy}: not owned by root", p.stderr)

    @unittest.skipUnless(os.geteuid() == 0, "only root-owned legacy files are used")
    def test_root_owned_legacy_file_still_counts(self):
        legacy = os.path.join(self.inst.data_dir, "firewall-state.json")
        self.write_state(legacy, ["25/tcp"], owner=0)
        p = self.remove_plan()
        self.assertIn("firewall-cmd --permanent --zone=public --remove-port=25/tcp", p.stdout)
        self.assertIn(f"using {legacy} from an earlier version", p.stderr)

    def test_state_in_the_config_folder(self):
        self.write_state(os.path.join(self.inst.config_dir, "firewall-state.json"), ["993/tcp"], owner=os.geteuid())
        # A file in data_dir is not even looked at once the config folder has one.
        self.write_state(os.path.join(self.inst.data_dir, "firewall-state.json"), ["22/tcp"], owner=os.geteuid())
        p = self.remove_plan()
        self.assertIn("--remove-port=993/tcp", p.stdout)
        self.assertNotIn("22/tcp", p.stdout)

    def test_malformed_entries_are_refused(self):
        for ports in (["22/tcp --remove-service=ssh"], ["0/tcp"], ["65536/tcp"], ["25/udp"]):
            with self.subTest(ports=ports):
                self.write_state(os.path.join(self.inst.config_dir, "firewall-state.json"), ports, owner=os.geteuid())
                p = run(["postern-firewall", "--config", self.inst.config_dir, "--captured", CAPTURE, "remove", "--dry-run"],
                        check=False)
                self.assertEqual(p.returncode, 2, p.stdout + p.stderr)
                self.assertIn("is not a port we add", p.stderr)
        self.write_state(os.path.join(self.inst.config_dir, "firewall-state.json"), ["65535/tcp", "1/tcp"], owner=os.geteuid())
        self.assertIn("--remove-port=65535/tcp", self.remove_plan().stdout)


if __name__ == "__main__":
    unittest.main(verbosity=2)
