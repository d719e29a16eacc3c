"""`posternctl dns check` against a real authoritative server (NSD on
loopback): serving exactly the records the wizard asked for, every record is
ok; serving a broken zone (DKIM missing, MX wrong, SPF missing), the report
names each problem with what was found and the fix, and exits 1."""

import os
import re
import shutil
import subprocess
import tempfile
import unittest

from postern_testlib import Nsd, bin_path, run

PUBLIC = "203.0.113.25"


def zone_for(records_zone, drop=(), replace=()):
    lines = ["$TTL 3600", "example.org. IN SOA ns1.example.org. hostmaster.example.org. 1 3600 600 86400 300",
             "example.org. IN NS ns1.example.org.", "ns1.example.org. IN A 127.0.0.1"]
    for line in records_zone.splitlines():
        if not line or line.startswith(";") or line.startswith("$ORIGIN"):
            continue
        if any(d in line for d in drop):
            continue
        for old, new in replace:
            line = line.replace(old, new)
        lines.append(line)
    return "\n".join(lines) + "\n"


REVERSE = """$TTL 3600
113.0.203.in-addr.arpa. IN SOA ns1.example.org. hostmaster.example.org. 1 3600 600 86400 300
113.0.203.in-addr.arpa. IN NS ns1.example.org.
25.113.0.203.in-addr.arpa. IN PTR mail.example.org.
"""


class DnsCheck(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.tmp = tempfile.mkdtemp(prefix="postern-dnscheck-")
        cls.cfg = os.path.join(cls.tmp, "etc")
        p = subprocess.run([bin_path("postern-wizard"), "--config", cls.cfg, "--non-interactive", "--domain", "example.org",
                            "--public-ip", PUBLIC, "--bind", "127.0.0.1", "--port", "smtp=0", "--no-launch", "--skip-network-checks"],
                           capture_output=True, text=True, stdin=subprocess.DEVNULL, timeout=120)
        assert p.returncode == 0, p.stdout + p.stderr
        cls.zone = run([bin_path("posternctl"), "--config", cls.cfg, "dns", "records", "--zone", "--public-ip", PUBLIC]).stdout

    @classmethod
    def tearDownClass(cls):
        shutil.rmtree(cls.tmp, ignore_errors=True)

    def check(self, zone_text):
        with Nsd({"example.org.": zone_text, "113.0.203.in-addr.arpa.": REVERSE}) as nsd:
            run([bin_path("posternctl"), "--config", self.cfg, "config", "set", "dns.servers", nsd.server])
            run([bin_path("posternctl"), "--config", self.cfg, "config", "set", "dns.timeout", "2s"])
            return run([bin_path("posternctl"), "--config", self.cfg, "dns", "check", "--server", nsd.server, "--public-ip", PUBLIC],
                       check=False)

    def test_all_published(self):
        p = self.check(zone_for(self.zone))
        self.assertEqual(p.returncode, 0, p.stdout + p.stderr)
        self.assertIn("All required records are published.", p.stdout)
        self.assertNotRegex(p.stdout, r"^(missing|wrong|unknown) ", p.stdout)
        self.assertIn("mail.example.org -> 203.0.113.25 -> mail.example.org (forward-confirmed reverse DNS ok)", p.stdout)
        self.assertIn("DNSSEC: the zone is not signed", p.stdout)

    def test_broken_zone(self):
        selector = re.search(r"^(p\d+r)\._domainkey", self.zone, re.M).group(1)
        broken = zone_for(self.zone, drop=(f"{selector}._domainkey", "v=spf1"),
                          replace=(("IN\tMX\t10 mail.example.org.", "IN\tMX\t10 old-mx.example.org."),))
        p = self.check(broken)
        self.assertEqual(p.returncode, 1, p.stdout)
        out = p.stdout
        self.assertRegex(out, rf"missing\s+{selector}\._domainkey\s+TXT\s+Required")
        self.assertRegex(out, r"missing\s+@\s+TXT\s+Required\n\s+expected: v=spf1 mx ~all\n\s+found:\s+nothing\n\s+fix:\s+add @ TXT v=spf1 mx ~all")
        self.assertRegex(out, r"wrong\s+@\s+MX\s+Required\n\s+expected: 10 mail\.example\.org\.\n\s+found:\s+10 old-mx\.example\.org\.\n\s+fix:\s+change it to: 10 mail\.example\.org\.")
        self.assertIn("Some required records are missing or wrong.", out)


if __name__ == "__main__":
    unittest.main(verbosity=2)
