"""posternctl in a fresh, empty config folder: domains, users, aliases and
config, exactly as a newcomer would type them, with the error for every
kind of bad input (and a non-zero exit)."""

import os
import subprocess
import tempfile
import unittest

from postern_testlib import bin_path


class PosternctlTest(unittest.TestCase):
    def setUp(self):
        self.tmp = tempfile.TemporaryDirectory(prefix="postern-ctl-")
        self.cfg = os.path.join(self.tmp.name, "new-config")  # does not exist yet
        # Cheap hashing so the test is quick (the cost is a setting like any other).
        os.makedirs(self.cfg)
        with open(os.path.join(self.cfg, "postern.conf"), "w") as f:
            f.write("auth.argon2_memory = 1M\nauth.argon2_iterations = 1\n")

    def tearDown(self):
        self.tmp.cleanup()

    def ctl(self, *args, input=None, rc=0, env=None):
        p = subprocess.run([bin_path("posternctl"), "--config", self.cfg, *args], input=input, capture_output=True,
                           text=True, env=env)
        self.assertEqual(p.returncode, rc, f"posternctl {' '.join(args)}\nstdout={p.stdout}\nstderr={p.stderr}")
        return p

    def test_newcomer_session(self):
        self.assertIn("added domain example.test", self.ctl("domain", "add", "Example.TEST").stdout)
        out = self.ctl("user", "add", "alice@example.test", "--password-stdin", input="s3cret!\n").stdout
        self.assertIn("added user alice@example.test", out)
        self.assertIn("postmaster@example.test, abuse@example.test now deliver to this user", out)
        gen = self.ctl("user", "add", "bob@example.test", "--generate", "--quota", "2G").stdout
        self.assertRegex(gen, r"password: [A-Za-z2-9]{5}(-[A-Za-z2-9]{5}){3}")
        self.ctl("alias", "add", "team@example.test", "alice@example.test,", "bob@example.test", "friend@elsewhere.test")
        self.ctl("alias", "add", "@example.test", "alice@example.test")

        users = self.ctl("user", "list").stdout.splitlines()
        self.assertEqual(users, ["alice@example.test\tquota=-\tscheme=ARGON2ID", "bob@example.test\tquota=2G\tscheme=ARGON2ID"])
        aliases = self.ctl("alias", "list", "example.test").stdout
        self.assertIn("team@example.test\talice@example.test, bob@example.test, friend@elsewhere.test", aliases)
        self.assertIn("postmaster@example.test\talice@example.test", aliases)
        self.assertEqual(self.ctl("domain", "list").stdout, "example.test\t2 users\t4 aliases\n")

        self.assertEqual(self.ctl("resolve", "ALICE+lists@example.test").stdout, "mailbox\talice@example.test\n")
        self.assertEqual(self.ctl("resolve", "random@example.test").stdout, "mailbox\talice@example.test\n")  # catch-all
        self.assertEqual(self.ctl("resolve", "team@example.test").stdout,
                         "mailbox\talice@example.test\nmailbox\tbob@example.test\nforward\tfriend@elsewhere.test\n")

        # The files are the documented formats, readable by Dovecot and Postfix tools.
        with open(os.path.join(self.cfg, "users")) as f:
            lines = [l for l in f.read().splitlines() if not l.startswith("#")]
        self.assertRegex(lines[0], r"^alice@example\.test:\{ARGON2ID\}\$argon2id\$v=19\$m=1024,t=1,p=1\$[^:]+::::::$")
        self.assertTrue(lines[1].endswith("userdb_quota_rule=*:storage=2G"))
        with open(os.path.join(self.cfg, "aliases")) as f:
            self.assertIn("team@example.test alice@example.test, bob@example.test, friend@elsewhere.test\n", f.read())

        # The web panel's administrator flag.
        self.assertIn("alice@example.test is an administrator of the web panel", self.ctl("user", "admin", "alice@example.test", "on").stdout)
        self.assertIn("alice@example.test\tquota=-\tscheme=ARGON2ID\tadmin", self.ctl("user", "list").stdout)
        with open(os.path.join(self.cfg, "users")) as f:
            self.assertIn("::::::postern_admin=yes\n", f.read())
        self.ctl("user", "admin", "alice@example.test", "off")
        self.assertNotIn("admin", self.ctl("user", "list").stdout.split("\n")[0].split("\t")[-1])
        self.ctl("user", "admin", "nobody@example.test", "on", rc=1)
        self.ctl("user", "admin", "alice@example.test", "maybe", rc=2)

        self.ctl("user", "passwd", "alice@example.test", "--password-stdin", input="n3w\n")
        self.ctl("alias", "del", "team@example.test", "friend@elsewhere.test")
        self.assertNotIn("friend", self.ctl("resolve", "team@example.test").stdout)
        self.ctl("alias", "del", "@example.test")
        self.ctl("resolve", "random@example.test", rc=1)

    def test_errors(self):
        self.ctl("domain", "add", "example.test")
        self.ctl("user", "add", "alice@example.test", "--password-stdin", input="pw\n")
        cases = [
            (("domain", "add", "example.test"), "domain example.test already exists"),
            (("domain", "add", "bad..name"), "domain 'bad..name' has an empty label"),
            (("user", "add", "alice@example.test", "--password-stdin"), "user alice@example.test already exists"),
            (("user", "add", "carol@unknown.test", "--generate"),
             "unknown domain unknown.test (add it first: posternctl domain add unknown.test)"),
            (("user", "add", "not-an-address", "--generate"), "'not-an-address' is not an address (no @)"),
            (("user", "del", "nobody@example.test"), "unknown user nobody@example.test"),
            (("user", "del", "alice@example.test"),
             "alice@example.test is the only target of abuse@example.test, postmaster@example.test; point those aliases elsewhere first or use --force"),
            (("alias", "add", "x@example.test", "ghost@example.test"), "target ghost@example.test is not a user or alias here"),
            (("alias", "add", "x@other.test", "alice@example.test"),
             "unknown domain other.test (aliases are for local domains; add it first)"),
            (("alias", "del", "nope@example.test"), "unknown alias nope@example.test"),
            (("domain", "del", "example.test"),
             "domain example.test still has 1 user(s) and 2 alias(es); remove them first or use --force"),
            (("config", "set", "smtp.max_recipients", "lots"), "smtp.max_recipients: 'lots' is not a whole number"),
            (("config", "set", "smtp.max_recipient", "5"), "unknown setting 'smtp.max_recipient' (did you mean 'smtp.max_recipients'?)"),
            (("config", "get", "nope"), "unknown setting 'nope'"),
        ]
        for args, message in cases:
            with self.subTest(args=args):
                p = self.ctl(*args, input="", rc=1)
                self.assertEqual(p.stderr.strip(), "posternctl: " + message)
        # Alias loop refused with the cycle named.
        self.ctl("alias", "add", "a@example.test", "alice@example.test")
        self.ctl("alias", "add", "b@example.test", "a@example.test")
        p = self.ctl("alias", "add", "a@example.test", "b@example.test", rc=1)
        self.assertEqual(p.stderr.strip(), "posternctl: alias loop: a@example.test -> b@example.test -> a@example.test")
        # Usage errors exit 2.
        self.assertIn("unknown command 'user frobnicate'", self.ctl("user", "frobnicate", rc=2).stderr)
        self.assertIn("unknown option --bogus", self.ctl("user", "list", "--bogus", rc=2).stderr)
        self.assertIn("usage: user add", self.ctl("user", "add", rc=2).stderr)
        # No terminal and no password option: a clear message, not a hang.
        p = self.ctl("user", "passwd", "alice@example.test", rc=1)
        self.assertIn("no terminal to ask for a password; use --password-stdin or --generate", p.stderr)

    def test_config_show(self):
        self.ctl("config", "set", "smtp.max_message_size", "10m")
        self.ctl("config", "set", "smtp.listen", "127.0.0.1:2525, [::1]:2525")
        changed = self.ctl("config", "show", "--changed").stdout
        # Shown in schema order, whatever the order in the file.
        self.assertEqual(changed, "smtp.listen = 127.0.0.1:2525, [::1]:2525\nauth.argon2_memory = 1M\n"
                                  "auth.argon2_iterations = 1\nsmtp.max_message_size = 10M\n")
        full = self.ctl("config", "show").stdout
        self.assertIn("imaps.listen = *:993\n", full)
        self.assertEqual(self.ctl("config", "get", "smtp.max_message_size").stdout, "10M\n")
        self.ctl("config", "unset", "smtp.max_message_size")
        self.assertEqual(self.ctl("config", "get", "smtp.max_message_size").stdout, "25M\n")
        # POSTERN_CONFIG works like --config.
        env = dict(os.environ, POSTERN_CONFIG=self.cfg)
        p = subprocess.run([bin_path("posternctl"), "config", "get", "smtp.listen"], capture_output=True, text=True, env=env)
        self.assertEqual(p.stdout, "127.0.0.1:2525, [::1]:2525\n")
        # A broken file is reported with file, line and key.
        with open(os.path.join(self.cfg, "postern.conf"), "a") as f:
            f.write("smtp.vrfy = perhaps\n")
        p = self.ctl("config", "show", rc=1)
        self.assertEqual(p.stderr.strip(),
                         f"posternctl: {self.cfg}/postern.conf:4: key 'smtp.vrfy': 'perhaps' is not a boolean (use true or false)")

    @unittest.skipUnless(os.geteuid() == 0, "runs posternctl as another user, which needs root")
    def test_root_only_commands(self):
        """Commands marked root-only say so in the help and refuse before doing anything when
        not run as root; a dry run changes nothing and is not refused."""
        help_lines = self.ctl("--help").stdout.splitlines()
        marked = sorted(" ".join(l.split()[:2]) for l in help_lines if l.rstrip().endswith("(root)"))
        self.assertEqual(marked, ["backup create", "backup run", "export ADDRESS", "firewall apply", "firewall remove",
                                  "import imap", "import maildir", "import mbox", "restore DIR"])
        self.assertIn("(root)", self.ctl("firewall", "apply", "--help").stdout)
        os.chmod(self.tmp.name, 0o755)  # the config must be readable by the other user
        nobody = ["setpriv", "--reuid=nobody", "--regid=nogroup", "--clear-groups", bin_path("posternctl"), "--config", self.cfg]
        for words in (["firewall", "apply"], ["firewall", "remove"], ["backup", "create"], ["backup", "run"], ["restore"],
                      ["import", "mbox"], ["export"]):
            p = subprocess.run(nobody + words, capture_output=True, text=True)
            self.assertEqual(p.returncode, 2, p.stdout + p.stderr)
            self.assertEqual(p.stderr, f"posternctl: '{' '.join(words)}' needs root (run it as root, e.g. with sudo)\n")
            self.assertEqual(p.stdout, "")
        dry = subprocess.run(nobody + ["firewall", "remove", "--dry-run"], capture_output=True, text=True)
        self.assertEqual(dry.returncode, 0, dry.stdout + dry.stderr)
        self.assertIn("Would remove", dry.stdout)


if __name__ == "__main__":
    unittest.main(verbosity=2)
