"""postern-wizard as people use it: non-interactive from flags (and re-run on
a configured system), the demo default without a terminal, the interactive
flow in a pseudo-terminal with wrong answers asked again, the generated zone
file checked by ldns-read-zone and named-checkzone, a busy port named with the
program holding it, NAT detected inside a network namespace, and the launch:
supervisor started, every listener probed, Ctrl-C stops everything."""

import json
import os
import pty
import re
import select
import shutil
import signal
import socket
import subprocess
import tempfile
import time
import unittest

from postern_testlib import bin_path, run, wait_for

ALL_ZERO = ["--port", "smtp=0", "--port", "submission=0", "--port", "submissions=0", "--port", "imap=0", "--port", "imaps=0",
            "--port", "pop3=0", "--port", "pop3s=0", "--port", "http=0", "--port", "https=0"]


def ctl(cfg, *args, check=True):
    return run([bin_path("posternctl"), "--config", cfg, *args], check=check)


class Wizard(unittest.TestCase):
    def setUp(self):
        self.tmp = tempfile.mkdtemp(prefix="postern-wizard-")
        os.chmod(self.tmp, 0o755)  # the daemons run as an unprivileged user and must reach their data folder
        self.cfg = os.path.join(self.tmp, "etc")
        self.pwfile = os.path.join(self.tmp, "pw")
        with open(self.pwfile, "w") as f:
            f.write("correct horse battery\n")

    def tearDown(self):
        subprocess.run(["pkill", "-f", f"--config {self.cfg}"], capture_output=True)
        shutil.rmtree(self.tmp, ignore_errors=True)

    def wizard(self, *args, input=None, timeout=120):
        return subprocess.run([bin_path("postern-wizard"), "--config", self.cfg, *args], capture_output=True, text=True,
                              input=input if input is not None else "", timeout=timeout)

    def test_non_interactive_and_rerun(self):
        p = self.wizard("--non-interactive", "--domain", "Example.ORG", "--hostname", "mx.example.org", "--admin", "boss@elsewhere.test",
                        "--user", "alice@example.org", "--password-file", self.pwfile, "--bind", "127.0.0.1", *ALL_ZERO,
                        "--public-ip", "203.0.113.25", "--no-launch", "--skip-network-checks")
        self.assertEqual(p.returncode, 0, p.stdout + p.stderr)
        show = ctl(self.cfg, "config", "show", "--changed").stdout
        self.assertIn("hostname = mx.example.org\n", show)
        self.assertIn("primary_domain = example.org\n", show)
        self.assertIn("admin_address = boss@elsewhere.test\n", show)
        self.assertIn("smtp.listen = 127.0.0.1:0\n", show)
        self.assertIn("data_dir = data\n", show)  # the whole instance lives in one folder
        self.assertEqual(ctl(self.cfg, "resolve", "postmaster@example.org").stdout, "forward\tboss@elsewhere.test\n")
        self.assertEqual(ctl(self.cfg, "user", "list").stdout.split("\t")[0], "alice@example.org")
        self.assertTrue(ctl(self.cfg, "user", "list").stdout.endswith("\tadmin\n"))  # the first user administers the panel
        self.assertIn("Web panel, once started: https://mx.example.org/panel/ (log in with alice@example.org", p.stdout)
        for f in ("tls/cert.pem", "tls/key.pem", "dns-records.txt", "dns-records.zone", "dns-records.csv", "dns-records.json", "dkim/example.org/keys"):
            self.assertTrue(os.path.exists(os.path.join(self.cfg, f)), f)
        records = json.load(open(os.path.join(self.cfg, "dns-records.json")))["records"]
        types = {(r["host"], r["type"]) for r in records}
        for want in [("@", "MX"), ("mx", "A"), ("@", "TXT"), ("_dmarc", "TXT"), ("_mta-sts", "TXT"), ("_smtp._tls", "TXT"),
                     ("_imaps._tcp", "SRV"), ("_submissions._tcp", "SRV"), ("autoconfig", "CNAME"), ("@", "CAA")]:
            self.assertIn(want, types)
        self.assertTrue(any(r["type"] == "A" and r["value"] == "203.0.113.25" for r in records))
        self.assertTrue(any(r["type"] == "PTR" and r["value"] == "mx.example.org." for r in records))
        self.assertEqual(sum(1 for r in records if r["host"].endswith("._domainkey")), 2)
        self.check_zone()
        # Re-running keeps keys and passwords and says there is nothing to change.
        users_before = open(os.path.join(self.cfg, "users")).read()
        keys_before = open(os.path.join(self.cfg, "dkim/example.org/keys")).read()
        p = self.wizard("--non-interactive", "--domain", "example.org", "--hostname", "mx.example.org", "--admin", "boss@elsewhere.test",
                        "--user", "alice@example.org", "--password-file", self.pwfile, "--bind", "127.0.0.1", *ALL_ZERO,
                        "--no-launch", "--skip-network-checks")
        self.assertEqual(p.returncode, 0, p.stdout + p.stderr)
        self.assertIn("already configured", p.stdout)
        self.assertNotIn("== Changes to the existing configuration", p.stdout)
        self.assertEqual(open(os.path.join(self.cfg, "users")).read(), users_before)
        self.assertEqual(open(os.path.join(self.cfg, "dkim/example.org/keys")).read(), keys_before)
        # A changed answer is shown before it is applied.
        p = self.wizard("--non-interactive", "--domain", "example.org", "--hostname", "mail.example.org", "--user", "alice@example.org",
                        "--bind", "127.0.0.1", *ALL_ZERO, "--no-launch", "--skip-network-checks")
        self.assertIn("postern.conf: hostname = mail.example.org (was mx.example.org)", p.stdout)

    @unittest.skipUnless(os.geteuid() == 0, "the wizard hands data_dir to the daemon user only as root")
    def test_rerun_gives_away_nothing_outside_data(self):
        """A second run hands data_dir to the daemon user again, as root. What the daemon user
        put in there meanwhile (a hard link or a link to a file of root's) must not be given away."""
        args = ["--non-interactive", "--domain", "example.org", "--user", "alice@example.org", "--password-file", self.pwfile,
                "--bind", "127.0.0.1", *ALL_ZERO, "--no-launch", "--skip-network-checks", "--skip-firewall"]
        p = self.wizard(*args)
        self.assertEqual(p.returncode, 0, p.stdout + p.stderr)
        outside = os.path.join(self.tmp, "root-only")
        os.mkdir(outside, 0o700)
        secret = os.path.join(outside, "secret")
        with open(secret, "w") as f:
            f.write("root only\n")
        os.chmod(secret, 0o600)
        mail = os.path.join(self.tmp, "etc", "data", "mail")
        hard = os.path.join(mail, "hard")
        os.link(secret, hard)  # same file system; what fs.protected_hardlinks=0 lets the daemon user do
        os.symlink(secret, os.path.join(mail, "soft"))
        os.symlink(outside, os.path.join(mail, "dir"))
        before = [(os.stat(x).st_uid, os.stat(x).st_gid, os.stat(x).st_mode) for x in (secret, outside)]
        p = self.wizard(*args)
        self.assertEqual(p.returncode, 0, p.stdout + p.stderr)
        self.assertEqual([(os.stat(x).st_uid, os.stat(x).st_gid, os.stat(x).st_mode) for x in (secret, outside)], before)
        self.assertIn(f"note: left {hard} as it is: it has more than one hard link", p.stdout)
        daemon_uid = os.lstat(mail).st_uid
        self.assertNotEqual(daemon_uid, 0)
        self.assertEqual(os.lstat(os.path.join(mail, "soft")).st_uid, daemon_uid)  # the link itself, as before

    def test_smarthost(self):
        secret = os.path.join(self.tmp, "relay-secret")
        with open(secret, "w") as f:
            f.write("s3cret-relay\n")
        p = self.wizard("--non-interactive", "--domain", "example.org", "--user", "alice@example.org", "--password-file", self.pwfile,
                        "--bind", "127.0.0.1", *ALL_ZERO, "--smarthost", "smtp.provider.test:465", "--smarthost-user", "me@provider.test",
                        "--smarthost-password-file", secret, "--no-launch", "--skip-network-checks")
        self.assertEqual(p.returncode, 0, p.stdout + p.stderr)
        show = ctl(self.cfg, "config", "show", "--changed").stdout
        self.assertIn("relay.host = smtp.provider.test:465\n", show)
        self.assertIn("relay.tls = implicit\n", show)
        self.assertIn("relay.user = me@provider.test\n", show)
        self.assertIn("relay.password_file = relay-password\n", show)
        path = os.path.join(self.cfg, "relay-password")
        self.assertEqual(open(path).read(), "s3cret-relay\n")
        self.assertEqual(os.stat(path).st_mode & 0o777, 0o640)
        self.assertNotIn("s3cret-relay", open(os.path.join(self.cfg, "postern.conf")).read())
        self.assertNotIn("s3cret-relay", p.stdout + p.stderr)

    def check_zone(self):
        zone = open(os.path.join(self.cfg, "dns-records.zone")).read()
        full = os.path.join(self.tmp, "full.zone")
        with open(full, "w") as f:
            f.write("$TTL 3600\nexample.org. IN SOA ns1.example.org. hostmaster.example.org. 1 3600 600 86400 300\n"
                    "example.org. IN NS ns1.example.org.\nns1.example.org. IN A 192.0.2.53\n" + zone)
        r = subprocess.run(["ldns-read-zone", full], capture_output=True, text=True)
        self.assertEqual(r.returncode, 0, r.stderr)
        r = subprocess.run(["named-checkzone", "example.org", full], capture_output=True, text=True)
        self.assertEqual(r.returncode, 0, r.stdout + r.stderr)
        # Long DKIM values are split into strings of at most 255 bytes.
        for m in re.finditer(r'"([^"]*)"', zone):
            self.assertLessEqual(len(m.group(1).encode()), 255)

    def test_demo_default_without_terminal(self):
        p = self.wizard("--no-launch", "--skip-network-checks")
        self.assertEqual(p.returncode, 0, p.stdout + p.stderr)
        self.assertIn("setting up the demo (domain example.test on 127.0.0.1)", p.stdout)
        self.assertRegex(p.stdout, r"password of demo@example\.test: [A-Za-z2-9-]{23}")
        show = ctl(self.cfg, "config", "show").stdout
        self.assertIn("primary_domain = example.test", show)
        self.assertRegex(show, r"smtp\.listen = 127\.0\.0\.1:\d+")

    def test_interactive_in_a_terminal(self):
        pid, fd = pty.fork()
        if pid == 0:
            os.execv(bin_path("postern-wizard"), ["postern-wizard", "--config", self.cfg, "--no-launch", "--skip-network-checks",
                                                   "--bind", "127.0.0.1", *ALL_ZERO])
        transcript = b""
        everything = []  # all output read so far, for checks on what came before

        def expect(pattern, timeout=30):
            nonlocal transcript
            deadline = time.monotonic() + timeout
            while not re.search(pattern.encode(), transcript):
                r, _, _ = select.select([fd], [], [], max(0.0, deadline - time.monotonic()))
                if not r:
                    raise AssertionError(f"timeout waiting for {pattern!r}; got:\n{transcript.decode(errors='replace')[-2000:]}")
                try:
                    chunk = os.read(fd, 65536)
                except OSError:
                    raise AssertionError(f"wizard ended waiting for {pattern!r}:\n{transcript.decode(errors='replace')[-2000:]}")
                transcript += chunk
                everything.append(chunk)
            found = re.search(pattern.encode(), transcript)
            transcript = transcript[found.end():]

        def answer(text):
            os.write(fd, text.encode() + b"\r")

        expect(r"Mail domain \(the part after @\) \[example\.org\]: ")
        answer("bad..domain")
        expect(r"empty label — please try again\.")
        expect(r"Mail domain .*: ")
        answer("example.net")
        expect(r"Mail host name \[mail\.example\.net\]: ")
        answer("")
        expect(r"First user's address \[you@example\.net\]: ")
        answer("carol@other.test")
        expect(r"the first user must be in example\.net — please try again\.")
        answer("carol@example.net")
        expect(r"Password for carol@example\.net .*: ")
        answer("short")
        expect(r"use at least 8 characters — please try again\.")
        expect(r"Password for carol@example\.net .*: ")
        answer("a long enough password")
        expect(r"Where should postmaster@ and abuse@ go \[carol@example\.net\]: ")
        answer("")
        # Behind NAT (no public address on any interface, as the detect step said above) the
        # wizard asks for the public address: Enter skips it. With a public address it must not ask.
        if b"it is behind NAT" in b"".join(everything):
            expect(r"Public IP address of this server \(behind NAT; Enter to skip\) \[-\]: ")
            answer("")
            expect(r"== DNS records to publish")
        else:
            expect(r"== DNS records to publish")
            self.assertNotIn(b"Public IP address", b"".join(everything))
        _, status = os.waitpid(pid, 0)
        self.assertEqual(os.waitstatus_to_exitcode(status), 0)
        show = ctl(self.cfg, "config", "show").stdout
        self.assertIn("primary_domain = example.net", show)
        self.assertIn("hostname = mail.example.net", show)
        self.assertEqual(ctl(self.cfg, "resolve", "abuse@example.net").stdout, "mailbox\tcarol@example.net\n")

    def test_busy_port_is_named(self):
        holder = socket.socket()
        holder.bind(("127.0.0.1", 0))
        holder.listen()
        port = holder.getsockname()[1]
        try:
            p = self.wizard("--non-interactive", "--domain", "example.org", "--bind", "127.0.0.1", *ALL_ZERO, "--port", f"smtp={port}",
                            "--no-launch", "--skip-network-checks")
            self.assertRegex(p.stdout, rf"\[problem\] smtp port {port} is already in use by python3 \(pid {os.getpid()}\)")
            self.assertIn("stop the other mail server, or give Postern another port", p.stdout)
        finally:
            holder.close()

    def test_nat_detection_in_namespace(self):
        ns = f"pw{os.getpid()}"
        r = subprocess.run(["ip", "netns", "add", ns], capture_output=True, text=True)
        self.assertEqual(r.returncode, 0, f"network namespaces need root: {r.stderr}")
        try:
            host_end = f"pwh{os.getpid() % 100000}"
            subprocess.run(["ip", "link", "add", host_end, "type", "veth", "peer", "name", "veth0", "netns", ns], check=True)
            for cmd in (["ip", "addr", "add", "10.7.0.2/24", "dev", "veth0"], ["ip", "link", "set", "veth0", "up"],
                        ["ip", "link", "set", "lo", "up"]):
                subprocess.run(["ip", "netns", "exec", ns, *cmd], check=True)
            nat = subprocess.run(["ip", "netns", "exec", ns, bin_path("postern-wizard"), "--config", self.cfg, "--non-interactive",
                                  "--domain", "example.org", "--bind", "127.0.0.1", *ALL_ZERO, "--no-launch", "--skip-network-checks"],
                                 capture_output=True, text=True, stdin=subprocess.DEVNULL, timeout=120)
            self.assertIn("10.7.0.2 (private)", nat.stdout)
            self.assertIn("behind NAT", nat.stdout)
            self.assertIn("<your public IPv4 address>", nat.stdout)
            subprocess.run(["ip", "netns", "exec", ns, "ip", "addr", "add", "198.18.77.1/32", "dev", "veth0"], check=True)
            subprocess.run(["ip", "netns", "exec", ns, "ip", "addr", "add", "11.22.33.44/32", "dev", "veth0"], check=True)
            pub = subprocess.run(["ip", "netns", "exec", ns, bin_path("postern-wizard"), "--config", self.cfg, "--non-interactive",
                                  "--domain", "example.org", "--bind", "127.0.0.1", *ALL_ZERO, "--no-launch", "--skip-network-checks"],
                                 capture_output=True, text=True, stdin=subprocess.DEVNULL, timeout=120)
            self.assertIn("11.22.33.44 (public)", pub.stdout)
            self.assertNotIn("behind NAT", pub.stdout)
            self.assertRegex(pub.stdout, r"Required\s+mail\s+A\s+-\s+3600\s+11\.22\.33\.44")
        finally:
            subprocess.run(["ip", "netns", "del", ns], capture_output=True)

    def test_firewall_opened_in_namespace(self):
        """A default-drop nftables host (in a network namespace of its own): the wizard names the
        blocked ports, and with --apply-firewall opens them with a rule marked as its own."""
        ns = f"pwf{os.getpid()}"
        r = subprocess.run(["ip", "netns", "add", ns], capture_output=True, text=True)
        self.assertEqual(r.returncode, 0, f"network namespaces need root: {r.stderr}")
        try:
            subprocess.run(["ip", "netns", "exec", ns, "ip", "link", "set", "lo", "up"], check=True)
            subprocess.run(["ip", "netns", "exec", ns, "nft", "-f", "-"], check=True, text=True,
                           input="table inet filter {\n chain input {\n  type filter hook input priority 0; policy drop;\n"
                                 "  iif lo accept\n }\n}\n")
            p = subprocess.run(["ip", "netns", "exec", ns, bin_path("postern-wizard"), "--config", self.cfg, "--non-interactive",
                                "--domain", "example.org", "--apply-firewall", "--no-launch", "--skip-network-checks"],
                               capture_output=True, text=True, stdin=subprocess.DEVNULL, timeout=180)
            self.assertEqual(p.returncode, 0, p.stdout[-3000:] + p.stderr)
            self.assertRegex(p.stdout, r"smtp\s+25/tcp ipv4\s+blocked")
            self.assertIn("Firewall: the mail ports are open now", p.stdout)
            # An accept in a table of our own would not beat this chain's drop policy (every base chain
            # must accept), so the rule goes into the deciding chain, marked as ours; the user's rules stay.
            ruleset = subprocess.run(["ip", "netns", "exec", ns, "nft", "list", "ruleset"], capture_output=True, text=True).stdout
            ours = [l for l in ruleset.splitlines() if 'comment "postern"' in l]
            self.assertEqual(len(ours), 1, ruleset)
            for port in ("25", "587", "993", "443"):
                self.assertRegex(ours[0], rf"\b{port}\b")
            self.assertIn("policy drop", ruleset)
            self.assertIn('iif "lo" accept', ruleset)
        finally:
            subprocess.run(["ip", "netns", "del", ns], capture_output=True)

    def netns(self, prefix):
        """A network namespace with only loopback up; removed at the end of the test."""
        ns = f"{prefix}{os.getpid()}"
        r = subprocess.run(["ip", "netns", "add", ns], capture_output=True, text=True)
        self.assertEqual(r.returncode, 0, f"network namespaces need root: {r.stderr}")
        self.addCleanup(subprocess.run, ["ip", "netns", "del", ns], capture_output=True)
        subprocess.run(["ip", "netns", "exec", ns, "ip", "link", "set", "lo", "up"], check=True)
        return ns

    def test_firewall_read_by_the_library(self):
        """A packet filter that has an input hook but lets mail in: the firewall library's
        evaluation says the ports are open (no substring guess that "a packet filter is active"),
        and nothing is planned or asked."""
        ns = self.netns("pwa")
        subprocess.run(["ip", "netns", "exec", ns, "nft", "-f", "-"], check=True, text=True,
                       input="table inet filter {\n chain input {\n  type filter hook input priority 0; policy accept;\n"
                             "  tcp dport 23 drop\n }\n}\n")
        p = subprocess.run(["ip", "netns", "exec", ns, bin_path("postern-wizard"), "--config", self.cfg, "--non-interactive",
                            "--domain", "example.org", "--no-launch", "--skip-network-checks"],
                           capture_output=True, text=True, stdin=subprocess.DEVNULL, timeout=180)
        self.assertEqual(p.returncode, 0, p.stdout[-3000:] + p.stderr)
        self.assertNotIn("a packet filter is active", p.stdout)
        firewall = p.stdout[p.stdout.index("== Firewall"):]
        self.assertIn("Packet filter: nftables", firewall)
        for port in (25, 587, 465, 143, 993, 110, 995, 80, 443):
            self.assertRegex(firewall, rf"\b{port}/tcp ipv4\s+open\b")
        self.assertNotIn("Plan", firewall)
        self.assertNotIn("Not changed", firewall)

    def test_outbound_check_names_failed_name_resolution(self):
        """Without any working DNS the port-25 check cannot run: the wizard says that name
        resolution failed and what to do, not that port 25 seems blocked."""
        ns = self.netns("pwd")
        p = subprocess.run(["ip", "netns", "exec", ns, bin_path("postern-wizard"), "--config", self.cfg, "--non-interactive",
                            "--domain", "example.test", "--bind", "127.0.0.1", *ALL_ZERO, "--no-launch", "--skip-firewall",
                            "--outbound-probe", "mx.postern-test.example.org:25"],
                           capture_output=True, text=True, stdin=subprocess.DEVNULL, timeout=120)
        self.assertEqual(p.returncode, 0, p.stdout[-3000:] + p.stderr)
        self.assertRegex(p.stdout, r"\[problem\] name resolution failed: mx\.postern-test\.example\.org could not be looked up")
        self.assertIn("check the name servers in /etc/resolv.conf", p.stdout)
        self.assertNotIn("could not connect to", p.stdout)
        self.assertNotIn("seems blocked", p.stdout)

    def test_launch_probes_listeners_and_stops(self):
        proc = subprocess.Popen([bin_path("postern-wizard"), "--config", self.cfg, "--non-interactive", "--domain", "example.org",
                                 "--user", "alice@example.org", "--password-file", self.pwfile, "--bind", "127.0.0.1", *ALL_ZERO,
                                 "--skip-network-checks", "--supervisor", bin_path("postern-appliance")],
                                stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
        out = ""
        try:
            deadline = time.monotonic() + 90
            while "Press Ctrl-C to stop" not in out and time.monotonic() < deadline:
                line = proc.stdout.readline()
                if not line:
                    break
                out += line
            self.assertIn("Press Ctrl-C to stop", out, out[-3000:])
            for listener in ("smtp", "submission", "submissions", "imap", "imaps", "pop3", "pop3s"):
                self.assertRegex(out, rf"\n  {listener}\s+127\.0\.0\.1:\d+  answers\n")
            self.assertIn("Postern is running", out)
            self.assertIn("  DNS resolver: bundled unbound on 127.0.0.1:5335", out)
            # The wizard's own progress and summary only: the daemons' log lines (and the
            # supervisor's) stay in mail.log, which the summary names.
            self.assertNotRegex(out, r"postern-[a-z0-9]+\[\d+\]: (debug|info|warning|error) ")
            self.assertRegex(out, r"\n  running after [0-9.]+ s: postern-smtpd, postern-imapd, postern-pop3d, postern-sieved, postern-queued, postern-webd\n")
            log = os.path.join(self.cfg, "data", "log", "mail.log")
            self.assertIn(f"The daemons log to {os.path.dirname(log)}/mail.log", out)
            with open(log) as f:
                self.assertRegex(f.read(), r"postern-smtpd\[\d+\]: info ready ")
            status = ctl(self.cfg, "status", check=False).stdout
            self.assertIn("supervisor: running", status)
            self.assertRegex(status, r"postern-smtpd\s+running")
        finally:
            proc.send_signal(signal.SIGINT)
            proc.wait(60)
            proc.stdout.close()
        # Everything stopped with it (the wait above returns after the supervisor stopped its children).
        left = subprocess.run(["pgrep", "-f", f"--config {self.cfg}"], capture_output=True, text=True).stdout.split()
        self.assertEqual(left, [], "processes left running")


if __name__ == "__main__":
    unittest.main(verbosity=2)
