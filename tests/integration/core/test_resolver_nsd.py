"""Postern's ldns resolver against a real NSD on loopback: MX, A, AAAA, TXT
(long, multi-string), SRV, CAA, TLSA, PTR, NXDOMAIN and NODATA, through
`posternctl dns lookup` with dns.servers pointing at the NSD."""

import os
import tempfile
import unittest

from postern_testlib import Nsd, run, bin_path

ZONE = """$ORIGIN example.test.
$TTL 300
@       IN SOA ns1 hostmaster 1 3600 600 86400 300
@       IN NS  ns1
ns1     IN A   127.0.0.1
@       IN MX  10 mail
@       IN MX  20 backup.other.test.
mail    IN A   192.0.2.25
mail    IN AAAA 2001:db8::25
@       IN TXT "v=spf1 mx -all"
big._domainkey IN TXT ( "v=DKIM1; k=rsa; p=" "MIIBIjANBgkqhkiG9w0BAQEFAAOCAQ8AMIIBCgKCAQEA" "second-string" )
_imaps._tcp IN SRV 0 1 993 mail
_pop3._tcp  IN SRV 0 0 0 .
@       IN CAA 0 issue "letsencrypt.org"
_25._tcp.mail IN TLSA 3 1 1 0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef
"""
REVERSE = """$ORIGIN 2.0.192.in-addr.arpa.
$TTL 300
@  IN SOA ns1.example.test. hostmaster.example.test. 1 3600 600 86400 300
@  IN NS ns1.example.test.
25 IN PTR mail.example.test.
"""


class ResolverTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.nsd = Nsd({"example.test.": ZONE, "2.0.192.in-addr.arpa.": REVERSE})
        cls.tmp = tempfile.TemporaryDirectory()
        with open(os.path.join(cls.tmp.name, "postern.conf"), "w") as f:
            f.write(f"dns.servers = {cls.nsd.server}\ndns.timeout = 2s\n")

    @classmethod
    def tearDownClass(cls):
        cls.nsd.close()
        cls.tmp.cleanup()

    def lookup(self, name, rtype, rc=0):
        p = run([bin_path("posternctl"), "--config", self.tmp.name, "dns", "lookup", name, rtype], check=False)
        self.assertEqual(p.returncode, rc, p.stderr)
        lines = p.stdout.splitlines()
        return lines[0], [l.split("\t", 4)[4] for l in lines[1:]]

    def test_records(self):
        status, mx = self.lookup("example.test", "MX")
        self.assertIn("status: ok", status)
        self.assertEqual(sorted(mx), ["10 mail.example.test.", "20 backup.other.test."])
        self.assertEqual(self.lookup("mail.example.test", "A")[1], ["192.0.2.25"])
        self.assertEqual(self.lookup("mail.example.test", "AAAA")[1], ["2001:db8::25"])
        self.assertEqual(self.lookup("example.test", "TXT")[1], ['"v=spf1 mx -all"'])
        txt = self.lookup("big._domainkey.example.test", "TXT")[1]
        self.assertEqual(txt, ['"v=DKIM1; k=rsa; p=" "MIIBIjANBgkqhkiG9w0BAQEFAAOCAQ8AMIIBCgKCAQEA" "second-string"'])
        self.assertEqual(self.lookup("_imaps._tcp.example.test", "SRV")[1], ["0 1 993 mail.example.test."])
        self.assertEqual(self.lookup("_pop3._tcp.example.test", "SRV")[1], ["0 0 0 ."])
        self.assertEqual(self.lookup("example.test", "CAA")[1], ['0 issue "letsencrypt.org"'])
        self.assertEqual(self.lookup("_25._tcp.mail.example.test", "TLSA")[1],
                         ["3 1 1 0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef"])
        self.assertEqual(self.lookup("25.2.0.192.in-addr.arpa", "PTR")[1], ["mail.example.test."])

    def test_negative(self):
        status, recs = self.lookup("nothere.example.test", "A")
        self.assertIn("status: nxdomain", status)
        self.assertEqual(recs, [])
        status, recs = self.lookup("mail.example.test", "MX")
        self.assertIn("status: nodata", status)
        self.assertIn("not authenticated", status)  # NSD does not validate; nothing claims AD

    def test_unreachable(self):
        p = run([bin_path("posternctl"), "--config", self.tmp.name, "dns", "lookup", "example.test", "MX", "--server",
                 "127.0.0.1:9"], check=False)
        self.assertEqual(p.returncode, 1)
        self.assertNotIn("status: ok", p.stdout)


if __name__ == "__main__":
    unittest.main(verbosity=2)
