"""The supervisor runs the spam filter's engines from Debian (redis-server, rspamd) when
spam.enabled: configuration generated from postern.conf into <config>/spam (root-owned,
controller password 0600), both as the daemons' user, Redis on a unix socket only (port 0),
Rspamd's scanner on a unix socket postern-smtpd uses by default, Rspamd's Redis backend at
Redis's socket. Mail through the whole appliance is filtered (GTUBE: 550; add header: Junk);
`posternctl status` shows the filter; with spam.enabled = false neither engine runs; stopping
the appliance stops them."""

import json
import os
import smtplib
import stat
import subprocess
import unittest

from postern_testlib import Instance, Rspamd, wait_for

RCPT = "alice@example.test"


def message(marker):
    return (b"From: bob@remote.test\r\nTo: alice@example.test\r\nSubject: hi\r\nMessage-ID: <e1@remote.test>\r\n"
            b"Date: Thu, 03 Dec 2026 03:00:00 +0000\r\n\r\nHello\r\n" + marker + Rspamd.GTUBE + b"\r\n")


class SpamEngines(unittest.TestCase):
    def setUp(self):
        # Rspamd's test patterns on, through the generated local.d (a test-only file next to ours).
        self.inst = Instance(conf={"spam.enabled": "true"})
        local = os.path.join(self.inst.config_dir, "spam", "rspamd", "local.d")
        os.makedirs(local)
        with open(os.path.join(local, "options.inc"), "w") as f:
            f.write("enable_test_patterns = true;\ndns { nameserver = [\"127.0.0.1:9\"]; timeout = 0.2s; retransmits = 1; }\n")
        os.chmod(local, 0o755)
        os.chmod(os.path.dirname(local), 0o755)
        os.chmod(os.path.join(self.inst.config_dir, "spam"), 0o755)
        os.chmod(os.path.join(local, "options.inc"), 0o644)
        self.status_path = os.path.join(self.inst.run_dir, "postern-appliance.status")

    def tearDown(self):
        self.inst.close()

    def services(self):
        with open(self.status_path) as f:
            return {s["name"]: s for s in json.load(f)["services"]}

    def send(self, data):
        with smtplib.SMTP("127.0.0.1", self.inst.port("postern-appliance", "smtp"), timeout=30) as s:
            s.ehlo("mx.remote.test")
            s.mail("bob@remote.test")
            s.rcpt(RCPT)
            return s.data(data)

    def test_engines_run_filter_and_stop(self):
        self.inst.start("postern-appliance")
        wait_for(lambda: all(self.services()[n]["state"] == "running" for n in ("redis-server", "rspamd")), timeout=150,
                 interval=0.2, what="redis-server and rspamd to run")
        spam_conf = os.path.join(self.inst.config_dir, "spam")
        pw = os.stat(os.path.join(spam_conf, "controller.password"))
        self.assertEqual(stat.S_IMODE(pw.st_mode), 0o600)
        self.assertEqual(pw.st_uid, 0)
        with open(os.path.join(spam_conf, "redis.conf")) as f:
            self.assertIn("\nport 0\n", f.read())
        run_spam = os.path.join(self.inst.run_dir, "spam")
        # Redis answers on its socket only, as the daemons' user (not root).
        out = subprocess.run(["redis-cli", "-s", os.path.join(run_spam, "redis.sock"), "CONFIG", "GET", "port"], capture_output=True,
                             text=True, check=True).stdout.split()
        self.assertEqual(out, ["port", "0"])
        for name in ("redis-server", "rspamd"):
            pid = self.services()[name]["pid"]
            with open(f"/proc/{pid}/status") as f:
                uid = [line.split()[1] for line in f if line.startswith("Uid:")][0]
            if os.geteuid() == 0:
                self.assertNotEqual(uid, "0", f"{name} runs as root")

        # Mail through the appliance is filtered with the default address (<run>/spam/rspamd.sock).
        code, text = self.send(message(b"X"))
        self.assertEqual(code, 550, text)
        code, text = self.send(message(b"Y"))
        self.assertEqual(code, 250, text)
        [junk] = self.inst.messages(RCPT, "Junk")
        self.assertIn(b'X-Spam-Status: Yes, score=', junk)
        st = self.inst.ctl("status", check=False)
        self.assertRegex(st.stdout, r"(?m)^  redis-server\s+running")
        self.assertRegex(st.stdout, r"(?m)^  rspamd\s+running")
        self.assertIn(f"spam filter: on (rspamd at {run_spam}/rspamd.sock)", st.stdout)

        pids = [self.services()[n]["pid"] for n in ("redis-server", "rspamd")]
        self.assertEqual(self.inst.stop("postern-appliance"), 0)
        for pid in pids:
            self.assertFalse(os.path.exists(f"/proc/{pid}"), f"engine {pid} left running")

    def test_disabled_runs_no_engine(self):
        self.inst.set_conf("spam.enabled", "false")
        self.inst.start("postern-appliance")
        services = self.services()
        self.assertEqual(services["redis-server"]["state"], "disabled")
        self.assertEqual(services["rspamd"]["state"], "disabled")
        self.assertIn("spam filter: off", self.inst.ctl("status", check=False).stdout)


if __name__ == "__main__":
    unittest.main(verbosity=2)
