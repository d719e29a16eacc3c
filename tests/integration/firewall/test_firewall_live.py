"""postern-firewall against the real nft, iptables and ufw, inside network
namespaces this test creates (the host's firewall is never touched).

For each backend: a server namespace gets a ruleset that blocks the mail ports
and a listener on ports 25, 587 and 993 (IPv4 and IPv6); a client namespace is
joined to it by a veth pair. Then: the client cannot connect; `status` reports
the port blocked and names the rule that blocks it; `plan` prints commands;
`apply` makes the client's connections succeed; a second `apply` changes
nothing; `remove` deletes what was added, the ruleset is back as it was, and
the client is blocked again. ufw runs in a mount namespace over a temporary
copy of /etc/ufw and /etc/default/ufw."""

import hashlib
import json
import os
import re
import shlex
import shutil
import socket
import subprocess
import tempfile
import unittest

from postern_testlib import bin_path, wait_for

SERVER4, CLIENT4 = "10.201.0.1", "10.201.0.2"
SERVER6, CLIENT6 = "fd00:201::1", "fd00:201::2"
PORTS = (25, 587, 993)

LISTENER = r"""
import select, socket, sys
socks = []
for port in map(int, sys.argv[1:]):
    s = socket.socket(socket.AF_INET6, socket.SOCK_STREAM)
    s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    s.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 0)
    s.bind(("::", port)); s.listen(16); socks.append(s)
print("ready", flush=True)
while True:
    for s in select.select(socks, [], [])[0]:
        c, _ = s.accept(); c.sendall(b"220 listener\r\n"); c.close()
"""

CONNECT = r"""
import socket, sys
try:
    c = socket.create_connection((sys.argv[1], int(sys.argv[2])), timeout=float(sys.argv[3]))
    print(c.recv(100).decode().strip())
except OSError as e:
    print("failed:", e); sys.exit(1)
"""

NFT_RULESET = """
table inet filter {
	chain input {
		type filter hook input priority filter; policy drop;
		ct state established,related accept
		iif "lo" accept
		meta l4proto { icmp, ipv6-icmp } accept
		tcp dport 22 accept
	}
}
"""

IPT_RULESET = """*filter
:INPUT ACCEPT [0:0]
:FORWARD DROP [0:0]
:OUTPUT ACCEPT [0:0]
-A INPUT -i lo -j ACCEPT
-A INPUT -m conntrack --ctstate RELATED,ESTABLISHED -j ACCEPT
-A INPUT -p icmp -j ACCEPT
-A INPUT -p tcp -m tcp --dport 22 -j ACCEPT
-A INPUT -p tcp -m tcp --dport 25 -m comment --comment "no smtp here" -j REJECT --reject-with tcp-reset
-A INPUT -j DROP
COMMIT
"""

IP6T_RULESET = """*filter
:INPUT DROP [0:0]
:FORWARD DROP [0:0]
:OUTPUT ACCEPT [0:0]
-A INPUT -i lo -j ACCEPT
-A INPUT -m conntrack --ctstate RELATED,ESTABLISHED -j ACCEPT
-A INPUT -p ipv6-icmp -j ACCEPT
COMMIT
"""


def host_firewall_digest():
    """What the host's own rules look like now (to prove we never touched them)."""
    h = hashlib.sha256()
    for cmd in (["nft", "list", "ruleset"], ["iptables-save"], ["ip6tables-save"]):
        out = subprocess.run(cmd, capture_output=True, text=True).stdout
        h.update(re.sub(r"^#.*$|\[\d+:\d+\]", "", out, flags=re.M).encode())
    return h.hexdigest()


class Namespaces:
    def __init__(self, ufw=False):
        tag = f"{os.getpid() % 100000}"
        self.server, self.client = f"pfws{tag}", f"pfwc{tag}"
        self.tmp = tempfile.mkdtemp(prefix="postern-firewall-")
        self.config = os.path.join(self.tmp, "etc")
        self.units = os.path.join(self.tmp, "systemd")
        os.makedirs(self.config)
        with open(os.path.join(self.config, "postern.conf"), "w") as f:
            f.write(f"data_dir = {self.tmp}/data\n")
        self.ufw = ufw
        self.listener = None
        if ufw:
            shutil.copytree("/etc/ufw", os.path.join(self.tmp, "etc-ufw"), symlinks=True)
            shutil.copy("/etc/default/ufw", os.path.join(self.tmp, "default-ufw"))
            open(os.path.join(self.tmp, "sysctl.conf"), "w").close()
            with open(os.path.join(self.tmp, "default-ufw")) as f:
                text = f.read()
            text = re.sub(r"^IPT_SYSCTL=.*$", f"IPT_SYSCTL={self.tmp}/sysctl.conf", text, flags=re.M)
            with open(os.path.join(self.tmp, "default-ufw"), "w") as f:
                f.write(text)

    def up(self):
        for ns in (self.server, self.client):
            r = subprocess.run(["ip", "netns", "add", ns], capture_output=True, text=True)
            if r.returncode != 0:
                raise AssertionError(f"network namespaces need root: {r.stderr}")
        subprocess.run(["ip", "link", "add", "ext-s", "netns", self.server, "type", "veth", "peer", "name", "ext-c", "netns",
                        self.client], check=True)
        for ns, dev, a4, a6 in ((self.server, "ext-s", SERVER4, SERVER6), (self.client, "ext-c", CLIENT4, CLIENT6)):
            for cmd in (["ip", "link", "set", "lo", "up"], ["ip", "addr", "add", f"{a4}/24", "dev", dev],
                        ["ip", "-6", "addr", "add", f"{a6}/64", "dev", dev, "nodad"], ["ip", "link", "set", dev, "up"]):
                subprocess.run(["ip", "netns", "exec", ns, *cmd], check=True)

    def down(self):
        if self.listener:
            self.listener.kill()
            self.listener.wait()
            self.listener.stdout.close()
        for ns in (self.server, self.client):
            subprocess.run(["ip", "netns", "del", ns], capture_output=True)
        shutil.rmtree(self.tmp, ignore_errors=True)

    def in_server(self, *cmd, check=True, input=None):
        """Run in the server namespace (with the private ufw configuration mounted when ufw is used)."""
        prefix = ["ip", "netns", "exec", self.server]
        if self.ufw:
            mounts = (f"mount --make-rprivate / && mount --bind {self.tmp}/etc-ufw /etc/ufw && "
                      f"mount --bind {self.tmp}/default-ufw /etc/default/ufw && exec \"$@\"")
            prefix += ["unshare", "--mount", "sh", "-c", mounts, "sh"]
        p = subprocess.run(prefix + list(cmd), capture_output=True, text=True, input=input, timeout=120)
        if check and p.returncode != 0:
            raise AssertionError(f"{' '.join(cmd)} exited {p.returncode}\nstdout:\n{p.stdout}\nstderr:\n{p.stderr}")
        return p

    def firewall(self, *args, check=True):
        return self.in_server("env", f"POSTERN_FIREWALL_SYSTEMD_DIR={self.units}", bin_path("postern-firewall"), "--config",
                              self.config, *args, check=check)

    def boot_unit(self):
        """The unit apply installed (None when absent), and whether it is enabled."""
        path = os.path.join(self.units, "postern-firewall.service")
        link = os.path.join(self.units, "multi-user.target.wants", "postern-firewall.service")
        if not os.path.exists(path):
            return None, os.path.lexists(link)
        with open(path) as f:
            return f.read(), os.path.islink(link) and os.path.realpath(link) == os.path.realpath(path)

    def run_boot_unit(self):
        """What systemd would run at boot: the unit's ExecStart, in the server namespace."""
        text, _ = self.boot_unit()
        line = next(l for l in text.splitlines() if l.startswith("ExecStart="))
        return self.in_server("env", f"POSTERN_FIREWALL_SYSTEMD_DIR={self.units}", *shlex.split(line[len("ExecStart="):]),
                              check=False)

    def start_listener(self):
        self.listener = subprocess.Popen(["ip", "netns", "exec", self.server, "python3", "-c", LISTENER, *map(str, PORTS)],
                                         stdout=subprocess.PIPE, text=True)
        wait_for(lambda: self.listener.stdout.readline().strip() == "ready", timeout=20, what="the listener")

    def connect(self, host, port, timeout=1.5):
        p = subprocess.run(["ip", "netns", "exec", self.client, "python3", "-c", CONNECT, host, str(port), str(timeout)],
                           capture_output=True, text=True, timeout=30)
        return p.returncode == 0 and "220 listener" in p.stdout


class FirewallLive(unittest.TestCase):
    def setUp(self):
        for tool in ("ip", "nft", "iptables", "ufw", "unshare"):
            if shutil.which(tool) is None:
                self.fail(f"{tool} is needed (appliance/scripts/install-deps.sh test)")
        self.host_before = host_firewall_digest()

    def tearDown(self):
        self.assertEqual(host_firewall_digest(), self.host_before, "the host's firewall changed")

    def status(self, ns):
        p = ns.firewall("status", "--json", check=False)
        self.assertIn(p.returncode, (0, 1), p.stderr)
        data = json.loads(p.stdout)
        return {(e["port"], e["family"]): e for e in data["ports"]}, data

    def cycle(self, ns, snapshot, blocked_by, backend, opened_by, reboot=None):
        """The common part: blocked, named, planned, applied, reachable, idempotent, kept across a
        reboot, removed, as before.

        reboot: for backends whose rules live in the kernel only, a function that puts back the
        host's own ruleset as its loader does at boot (nftables.service, netfilter-persistent);
        the boot unit apply installed must then open the ports again. None: the backend persists
        by itself and no unit may be installed."""
        ns.start_listener()
        before = snapshot()
        for port in PORTS:
            self.assertFalse(ns.connect(SERVER4, port), f"port {port} should be blocked before apply")
        self.assertFalse(ns.connect(SERVER6, 25), "IPv6 port 25 should be blocked before apply")

        ports, data = self.status(ns)
        self.assertIn(backend, data["backends"])
        self.assertEqual(data["interfaces"], ["ext-s"])
        for (port, family), rule in blocked_by.items():
            entry = ports[(port, family)]
            self.assertEqual(entry["status"], "blocked", entry)
            self.assertIn(rule, entry["probes"][0]["decision"]["by"], entry)
        self.assertFalse(data["all_open"])

        plan = ns.firewall("plan", check=False)
        self.assertEqual(plan.returncode, 1, plan.stderr)
        self.assertIn("Plan (run with --apply", plan.stdout)
        self.assertEqual(snapshot(), before, "plan must not change anything")

        applied = ns.firewall("apply")
        self.assertIn("Applying:", applied.stdout)
        self.assertIn("After:", applied.stdout)
        for port in PORTS:
            self.assertTrue(ns.connect(SERVER4, port), f"port {port} (IPv4) not reachable after apply:\n{applied.stdout}")
            self.assertTrue(ns.connect(SERVER6, port), f"port {port} (IPv6) not reachable after apply:\n{applied.stdout}")
        ports, data = self.status(ns)
        self.assertTrue(data["all_open"], json.dumps(data, indent=1))
        for fam in ("ipv4", "ipv6"):
            self.assertIn(opened_by, ports[(25, fam)]["probes"][0]["decision"]["by"])

        after_apply = snapshot()
        again = ns.firewall("apply")
        self.assertIn("Applying: nothing to do", again.stdout)
        self.assertEqual(snapshot(), after_apply, "a second apply must change nothing")

        unit, enabled = ns.boot_unit()
        if reboot is None:
            self.assertIsNone(unit, "the backend persists by itself: no boot unit")
        else:
            self.assertIsNotNone(unit, f"apply must install the boot unit:\n{applied.stdout}")
            self.assertTrue(enabled, "the boot unit must be enabled (multi-user.target.wants)")
            self.assertIn(f"--config {ns.config} apply", unit)
            self.assertIn("After=nftables.service netfilter-persistent.service", unit)
            reboot()  # the kernel's rules are gone; the host's loader restored its own
            self.assertEqual(snapshot(), before, "the simulated boot must restore the host's ruleset only")
            self.assertFalse(ns.connect(SERVER4, 25), "port 25 is blocked again until the unit runs")
            booted = ns.run_boot_unit()
            self.assertEqual(booted.returncode, 0, booted.stdout + booted.stderr)
            self.assertEqual(snapshot(), after_apply, "the unit must put back exactly what apply had added")
            for port in PORTS:
                self.assertTrue(ns.connect(SERVER4, port), f"port {port} (IPv4) not reachable after the boot unit ran")
                self.assertTrue(ns.connect(SERVER6, port), f"port {port} (IPv6) not reachable after the boot unit ran")

        removed = ns.firewall("remove")
        self.assertIn("Removing:", removed.stdout)
        self.assertEqual(snapshot(), before, f"remove must restore the ruleset:\n{removed.stdout}")
        self.assertFalse(ns.connect(SERVER4, 25), "port 25 should be blocked again after remove")
        self.assertEqual(ns.boot_unit(), (None, False), "remove must delete the boot unit and its symlink")
        nothing = ns.firewall("remove")
        self.assertIn("nothing of ours is in the packet filter", nothing.stdout)

    def test_nftables(self):
        ns = Namespaces()
        try:
            ns.up()
            ns.in_server("nft", "-f", "-", input=NFT_RULESET)
            snapshot = lambda: ns.in_server("nft", "list", "ruleset").stdout  # noqa: E731
            blocked = {(port, fam): "policy drop of nftables inet filter input" for port in PORTS for fam in ("ipv4", "ipv6")}
            def reboot():
                ns.in_server("nft", "flush", "ruleset")
                ns.in_server("nft", "-f", "-", input=NFT_RULESET)

            self.cycle(ns, snapshot, blocked, "nftables", 'accept comment "postern"', reboot)
        finally:
            ns.down()

    def test_iptables(self):
        ns = Namespaces()
        try:
            ns.up()
            ns.in_server("iptables-restore", input=IPT_RULESET)
            ns.in_server("ip6tables-restore", input=IP6T_RULESET)

            def snapshot():
                out = ns.in_server("iptables-save").stdout + ns.in_server("ip6tables-save").stdout
                return re.sub(r"^#.*$|\[\d+:\d+\]", "", out, flags=re.M)

            blocked = {
                (25, "ipv4"): 'rule 5: -A INPUT -p tcp -m tcp --dport 25 -m comment --comment "no smtp here" -j REJECT',
                (587, "ipv4"): "rule 6: -A INPUT -j DROP",
                (993, "ipv4"): "rule 6: -A INPUT -j DROP",
                (25, "ipv6"): "policy drop of iptables-nft ip6 filter INPUT",
            }
            def reboot():
                for tool in ("iptables", "ip6tables"):  # chains another table left behind would survive a restore
                    ns.in_server(tool, "-F")
                    ns.in_server(tool, "-X")
                ns.in_server("iptables-restore", input=IPT_RULESET)
                ns.in_server("ip6tables-restore", input=IP6T_RULESET)

            self.cycle(ns, snapshot, blocked, "iptables-nft", "filter POSTERN-INPUT rule 1", reboot)
        finally:
            ns.down()

    def test_ufw(self):
        ns = Namespaces(ufw=True)
        try:
            ns.up()
            ns.in_server("ufw", "default", "deny", "incoming")
            ns.in_server("ufw", "allow", "22/tcp")
            ns.in_server("ufw", "--force", "enable")

            def snapshot():
                out = ns.in_server("iptables-save").stdout + ns.in_server("ip6tables-save").stdout
                added = ns.in_server("ufw", "show", "added").stdout
                return re.sub(r"^#.*$|\[\d+:\d+\]", "", out, flags=re.M) + added

            blocked = {(port, fam): f"policy drop of iptables-nft {'ip' if fam == 'ipv4' else 'ip6'} filter INPUT"
                       for port in PORTS for fam in ("ipv4", "ipv6")}
            self.cycle(ns, snapshot, blocked, "ufw", "-user-input")
            status = ns.in_server("ufw", "status").stdout
            self.assertIn("22/tcp", status)
            self.assertNotIn("25/tcp", status)
        finally:
            ns.down()


if __name__ == "__main__":
    unittest.main(verbosity=2)
