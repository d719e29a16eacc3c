"""auth.block_nftables: the supervisor mirrors the temporary block list into the nftables table
`inet postern_block` (appliance/core/block_nftables.h, appliance/supervisor/block_sync.h), with the
real nft, in a network namespace of this test's own (the script re-runs itself under `unshare -n`,
so the host's firewall is never touched).

Checked: with the setting off a leftover table is deleted at start and none is made; turned on
(posternctl config set, SIGHUP) the table appears with a drop for Postern's listener port only;
`posternctl block add` puts the address in the set with its timeout (IPv4 host, IPv6 subnet), and
so do failed logins (auth.block_after_failures over SMTP submission);
a connection from the blocked source address to the SMTP port gets no answer at all (dropped by
the kernel: the daemon never sees it) while another source address is greeted, for IPv4 and
IPv6; `block remove` takes it out again; a link planted in place of the block-list file is
refused by root (the table keeps its last content, `posternctl block list` says why);
`posternctl block list` says whether the kernel set is in use; turning the setting off and
stopping the supervisor delete the table.
Skips (with the reason) when it cannot make a network namespace: not root, or no unshare/ip/nft."""

import json
import os
import re
import shutil
import smtplib
import socket
import subprocess
import sys
import unittest

from postern_testlib import Instance, wait_for

NETNS_MARK = "POSTERN_BLOCK_NFT_NETNS"
PORT = 2525  # fixed: the namespace is ours alone
SUBMISSION = 2587
GUESSER = "127.0.0.7"
V6_CLIENT = "2001:db8::5"


def netns_problem():
    """Why this test cannot make its own network namespace, or None."""
    if os.geteuid() != 0:
        return "needs root for a network namespace and nft (run as root to test auth.block_nftables)"
    for tool in ("unshare", "ip", "nft"):
        if shutil.which(tool) is None:
            return f"{tool} is not installed (appliance/scripts/install-deps.sh test)"
    p = subprocess.run(["unshare", "-n", "true"], capture_output=True, text=True)
    if p.returncode != 0:
        return f"cannot create a network namespace: {p.stderr.strip()}"
    return None


IN_NETNS = os.environ.get(NETNS_MARK) == "1"
SKIP_REASON = None if IN_NETNS else netns_problem()
if __name__ == "__main__" and not IN_NETNS and SKIP_REASON is None:
    os.execvpe("unshare", ["unshare", "-n", "--", sys.executable, os.path.abspath(__file__), *sys.argv[1:]],
               dict(os.environ, **{NETNS_MARK: "1"}))


def nft(*args, check=True):
    p = subprocess.run(["nft", *args], capture_output=True, text=True, timeout=30)
    if check and p.returncode != 0:
        raise AssertionError(f"nft {' '.join(args)} exited {p.returncode}: {p.stderr}")
    return p


def table_text():
    """`nft list table inet postern_block`, or None when there is no such table."""
    p = nft("list", "table", "inet", "postern_block", check=False)
    return p.stdout if p.returncode == 0 else None


def elements(set_name):
    """{value: timeout} of one of our sets ("192.0.2.7" or "2001:db8::/32")."""
    data = json.loads(nft("-j", "list", "set", "inet", "postern_block", set_name).stdout)
    out = {}
    for item in data["nftables"]:
        for e in item.get("set", {}).get("elem", []):
            e = e["elem"]
            val = e["val"]
            if isinstance(val, dict):
                val = f"{val['prefix']['addr']}/{val['prefix']['len']}"
            out[val] = e.get("timeout")
    return out


def greeting(source, dest, family=socket.AF_INET, timeout=1.0, port=PORT):
    """The SMTP greeting for a connection from `source`, or None when the SYN gets no answer."""
    with socket.socket(family, socket.SOCK_STREAM) as s:
        s.settimeout(timeout)
        s.bind((source, 0))
        try:
            s.connect((dest, port))
        except (TimeoutError, socket.timeout):
            return None
        s.settimeout(10)
        return s.recv(512).decode(errors="replace")


@unittest.skipIf(SKIP_REASON, SKIP_REASON or "")
class BlockNftables(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        subprocess.run(["ip", "link", "set", "lo", "up"], check=True)
        subprocess.run(["ip", "-6", "addr", "add", f"{V6_CLIENT}/128", "dev", "lo", "nodad"], check=True)

    def setUp(self):
        conf = {f"{name}.listen": "" for name in Instance.LISTENERS}
        conf["smtp.listen"] = f"127.0.0.1:{PORT}, [::1]:{PORT}"
        conf["submission.listen"] = f"127.0.0.1:{SUBMISSION}"
        conf["auth.block_after_failures"] = "3"
        conf["auth.block_duration"] = "10m"
        self.inst = Instance(conf=conf)

    def tearDown(self):
        self.inst.close()
        nft("delete", "table", "inet", "postern_block", check=False)

    def status(self):
        with open(os.path.join(self.inst.run_dir, "postern-appliance.status")) as f:
            return json.load(f)["block_nftables"]

    def kernel_line(self):
        out = self.inst.ctl("block", "list").stdout
        return next(line for line in out.splitlines() if line.startswith("kernel set: "))

    def test_mirror(self):
        # A table left over by a crashed supervisor, with the setting off: deleted at start.
        p = subprocess.run(["nft", "-f", "-"], input="table inet postern_block {\n set blocked_v4 { type ipv4_addr; }\n}\n",
                           capture_output=True, text=True)
        self.assertEqual(p.returncode, 0, p.stderr)
        self.inst.start("postern-appliance")
        wait_for(lambda: table_text() is None, timeout=10, what="the leftover table to be deleted")
        self.assertEqual(self.status()["state"], "off")
        self.assertEqual(self.kernel_line(), "kernel set: off (auth.block_nftables = false)")

        # On: the supervisor applies the table at the reload posternctl asks for.
        self.inst.set_conf("auth.block_nftables", "true")
        wait_for(lambda: self.status()["state"] == "active", timeout=15, what="the table to be applied")
        text = table_text()
        self.assertIn("type filter hook input priority filter - 10; policy accept;", text)
        self.assertIn(f"tcp dport {{ {PORT}, {SUBMISSION} }} ip saddr @blocked_v4 drop", text)
        self.assertIn(f"tcp dport {{ {PORT}, {SUBMISSION} }} ip6 saddr @blocked_v6 drop", text)
        self.assertEqual(elements("blocked_v4"), {})
        self.assertRegex(self.kernel_line(),
                         r"^kernel set: in use \(nftables table inet postern_block, 0 element\(s\), synced \d{4}-")

        # Before any block both sources are greeted.
        self.assertTrue((greeting("127.0.0.5", "127.0.0.1") or "").startswith("220"))
        self.assertTrue((greeting(V6_CLIENT, "::1", socket.AF_INET6) or "").startswith("220"))

        # block add: the set follows, with the timeout; the kernel drops the blocked source only.
        self.inst.ctl("block", "add", "127.0.0.5", "--for", "10m")
        self.inst.ctl("block", "add", "2001:db8::/32", "--for", "2h")
        wait_for(lambda: elements("blocked_v4") == {"127.0.0.5": 600} and elements("blocked_v6") == {"2001:db8::/32": 7200},
                 timeout=10, what="the addresses in the sets")
        self.assertIsNone(greeting("127.0.0.5", "127.0.0.1"), "a blocked source must get no SYN-ACK")
        self.assertTrue((greeting("127.0.0.6", "127.0.0.1") or "").startswith("220"))
        self.assertIsNone(greeting(V6_CLIENT, "::1", socket.AF_INET6), "a blocked IPv6 source must get no SYN-ACK")
        self.assertTrue((greeting("::1", "::1", socket.AF_INET6) or "").startswith("220"))
        # The kernel dropped them: the daemon never saw these clients (it would log connection.blocked).
        self.assertNotRegex(self.inst.log(), r"connection\.blocked .*127\.0\.0\.5")
        self.assertRegex(self.inst.log(), r"supervisor\.block_nftables table=\"?inet postern_block\"? elements=2")
        wait_for(lambda: self.status()["elements"] == 2, timeout=10, what="the status to count 2 elements")
        self.assertIn("2 element(s)", self.kernel_line())

        # block remove: out of the set again, and greeted again.
        self.inst.ctl("block", "remove", "127.0.0.5")
        wait_for(lambda: elements("blocked_v4") == {}, timeout=10, what="127.0.0.5 to leave the set")
        self.assertTrue((greeting("127.0.0.5", "127.0.0.1") or "").startswith("220"))

        # Failed logins feed the list, and so the set: after the third, the guesser's SYNs go unanswered.
        ctx = self.inst.client_tls_context()
        for i in range(3):
            with smtplib.SMTP("127.0.0.1", SUBMISSION, source_address=(GUESSER, 0), timeout=10) as c:
                c.starttls(context=ctx)
                c.ehlo()
                with self.assertRaises(smtplib.SMTPAuthenticationError):  # one AUTH PLAIN (login() tries several)
                    c.auth("PLAIN", lambda challenge=None, i=i: f"\0alice@{self.inst.domain}\0wrong-{i}")
        wait_for(lambda: GUESSER in elements("blocked_v4"), timeout=10, interval=0.5, what="the guesser in the set")
        self.assertIn(elements("blocked_v4")[GUESSER], range(590, 601))  # auth.block_duration, whole seconds left
        self.assertIsNone(greeting(GUESSER, "127.0.0.1", port=SUBMISSION), "the guesser must get no SYN-ACK")
        self.assertTrue((greeting("127.0.0.8", "127.0.0.1", port=SUBMISSION) or "").startswith("220"))

        # A link planted by the daemon user in place of the file: root does not follow it; the table
        # keeps what it had and the error is reported.
        path = os.path.join(self.inst.data_dir, "block-list")
        os.link(path, path + ".saved")
        os.symlink("/etc/hostname", path + ".link")
        os.replace(path + ".link", path)  # atomic: the supervisor never sees the file missing
        wait_for(lambda: self.status()["state"] == "error", timeout=10, what="the planted link to be refused")
        self.assertRegex(self.kernel_line(), r"^kernel set: NOT up to date: .*symbolic link.*\(the kernel keeps what was")
        self.assertIn("2001:db8::/32", elements("blocked_v6"))
        os.replace(path + ".saved", path)
        wait_for(lambda: self.status()["state"] == "active", timeout=10, what="the file to be read again")

        # Off: the table goes; on again: it comes back; stopping the supervisor deletes it.
        self.inst.set_conf("auth.block_nftables", "false")
        wait_for(lambda: table_text() is None, timeout=10, what="the table to be deleted")
        self.assertEqual(self.kernel_line(), "kernel set: off (auth.block_nftables = false)")
        self.assertTrue((greeting(V6_CLIENT, "::1", socket.AF_INET6) or "").startswith("554"),
                        "with the kernel set off, the daemon itself refuses the blocked client")
        self.inst.set_conf("auth.block_nftables", "true")
        wait_for(lambda: elements("blocked_v6").keys() == {"2001:db8::/32"}, timeout=10, what="the table to come back")
        self.assertEqual(self.inst.stop("postern-appliance"), 0)
        self.assertIsNone(table_text(), "the supervisor must delete its table when it stops")
        self.assertRegex(self.inst.log(), r"supervisor\.block_nftables_removed")


if __name__ == "__main__":
    unittest.main(verbosity=2)
