"""Inbound sender authentication on the MX listener: SPF, DKIM and DMARC
results in Authentication-Results (RFC 8601), DMARC p=reject refused with 550,
p=quarantine delivered to Junk, forged results removed.

DNS: a real NSD on loopback serves the sending domains' SPF, DKIM and DMARC
records. Signed mail is produced with python3-dkim (dkimpy), an independent
implementation; the client is Python's smtplib from 127.0.0.1.
"""

import base64
import email
import os
import shutil
import smtplib
import subprocess
import tempfile
import unittest

import dkim

from postern_testlib import Instance, Nsd, run, wait_for


def zone(origin, records):
    head = [f"$ORIGIN {origin}.", "$TTL 300",
            f"@ IN SOA ns.{origin}. hostmaster.{origin}. 1 3600 600 86400 300",
            f"@ IN NS ns.{origin}.", "ns IN A 127.0.0.1"]
    return "\n".join(head + records) + "\n"


def txt(value):
    return " ".join('"%s"' % value[i:i + 250] for i in range(0, len(value), 250))


class SenderAuth(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.tmp = tempfile.mkdtemp(prefix="postern-senderauth-")
        key = os.path.join(cls.tmp, "dkim.key")
        run(["openssl", "genpkey", "-algorithm", "RSA", "-pkeyopt", "rsa_keygen_bits:2048", "-out", key])
        der = subprocess.run(["openssl", "pkey", "-in", key, "-pubout", "-outform", "DER"], capture_output=True,
                             check=True).stdout
        with open(key, "rb") as f:
            cls.key = f.read()
        pub = "v=DKIM1; k=rsa; p=" + base64.b64encode(der).decode()
        includes = " ".join(f"include:i{n}.limits.test" for n in range(11))
        zones = {
            # SPF via include -> mx; DKIM key; DMARC reject.
            "good.test": zone("good.test", ['@ IN TXT "v=spf1 include:_spf.good.test -all"',
                                            '_spf IN TXT "v=spf1 mx:good.test -all"', "@ IN MX 10 mx", "mx IN A 127.0.0.1",
                                            f"s1._domainkey IN TXT {txt(pub)}",
                                            '_dmarc IN TXT "v=DMARC1; p=reject; adkim=r; aspf=r"',
                                            'sub IN TXT "v=spf1 -all"']),
            # SPF that excludes us, DMARC reject.
            "strict.test": zone("strict.test", ['@ IN TXT "v=spf1 ip4:192.0.2.1 -all"',
                                                '_dmarc IN TXT "v=DMARC1; p=reject"']),
            "quarantine.test": zone("quarantine.test", ['@ IN TXT "v=spf1 ip4:192.0.2.1 -all"',
                                                        '_dmarc IN TXT "v=DMARC1; p=quarantine"']),
            "soft.test": zone("soft.test", ['@ IN TXT "v=spf1 ip4:192.0.2.1 ~all"',
                                            '_dmarc IN TXT "v=DMARC1; p=none"']),
            "limits.test": zone("limits.test", [f"@ IN TXT {txt(f'v=spf1 {includes} -all')}"] +
                                [f'i{n} IN TXT "v=spf1 ip4:192.0.2.{n} -all"' for n in range(11)]),
            "macro.test": zone("macro.test", ['@ IN TXT "v=spf1 exists:%{ir}.%{l1r-}.allow.macro.test -all"',
                                              "1.0.0.127.bob.allow IN A 127.0.0.2"]),
        }
        cls.nsd = Nsd(zones)
        cls.inst = Instance(domain="example.test", users={"alice@example.test": "alice-password-1"},
                            conf={"dns.servers": cls.nsd.server, "smtp.sender_auth": "true"})
        cls.inst.start("postern-smtpd")
        cls.port = cls.inst.port("postern-smtpd", "smtp")

    @classmethod
    def tearDownClass(cls):
        cls.inst.close()
        cls.nsd.close()
        shutil.rmtree(cls.tmp, ignore_errors=True)

    def message(self, from_addr, subject, extra_headers=""):
        return (f"From: {from_addr}\r\nTo: alice@example.test\r\nSubject: {subject}\r\n"
                f"Date: Tue, 24 Nov 2026 12:00:00 +0000\r\nMessage-ID: <{subject.replace(' ', '.')}@x>\r\n"
                f"{extra_headers}\r\nHello Alice.\r\n").encode()

    def signed(self, msg, domain="good.test"):
        return dkim.sign(msg, b"s1", domain.encode(), self.key,
                         include_headers=[b"from", b"to", b"subject", b"date", b"message-id"]) + msg

    def deliver(self, mail_from, msg):
        with smtplib.SMTP("127.0.0.1", self.port, timeout=30) as s:
            s.ehlo("client.good.test")
            s.sendmail(mail_from, ["alice@example.test"], msg)

    def received(self, subject, folder=""):
        got = wait_for(lambda: [m for m in self.inst.messages("alice@example.test", folder)
                                if f"Subject: {subject}".encode() in m], timeout=30, what=f"'{subject}'")
        return email.message_from_bytes(got[0])

    def results(self, m):
        values = m.get_all("Authentication-Results")
        ours = [v for v in values if v.startswith("mail.example.test;")]
        self.assertEqual(len(ours), 1, values)
        return " ".join(ours[0].split())

    def test_all_pass(self):
        self.deliver("bob@good.test", self.signed(self.message("Bob <bob@good.test>", "all pass")))
        r = self.results(self.received("all pass"))
        self.assertIn("spf=pass (matched include:_spf.good.test) smtp.mailfrom=bob@good.test", r)
        self.assertIn("dkim=pass header.d=good.test header.s=s1", r)
        self.assertIn("dmarc=pass (p=reject) header.from=good.test", r)

    def test_relaxed_alignment_with_subdomain_from(self):
        # From a subdomain, signed by the organizational domain: aligned in relaxed mode.
        self.deliver("", self.signed(self.message("news@sub.good.test", "relaxed alignment")))
        r = self.results(self.received("relaxed alignment"))
        self.assertIn("smtp.helo=client.good.test", r)  # null sender: SPF checks the HELO identity's postmaster
        self.assertIn("dkim=pass header.d=good.test", r)
        self.assertIn("dmarc=pass", r)
        self.assertIn("header.from=sub.good.test", r)

    def test_spf_fail_dmarc_reject_is_refused(self):
        with smtplib.SMTP("127.0.0.1", self.port, timeout=30) as s:
            with self.assertRaises(smtplib.SMTPDataError) as cm:
                s.sendmail("ceo@strict.test", ["alice@example.test"], self.message("ceo@strict.test", "spoofed"))
        self.assertEqual(cm.exception.smtp_code, 550)
        self.assertIn(b"5.7.1", cm.exception.smtp_error)
        self.assertIn(b"DMARC p=reject", cm.exception.smtp_error)
        self.assertFalse([m for m in self.inst.messages("alice@example.test") if b"Subject: spoofed" in m])

    def test_broken_signature_fails_spf_still_aligns(self):
        msg = self.signed(self.message("bob@good.test", "tampered"))
        msg = msg.replace(b"Hello Alice.", b"Hello Alice!")
        # SPF passes for bob@good.test from 127.0.0.1, so DMARC still passes through SPF alignment.
        self.deliver("bob@good.test", msg)
        r = self.results(self.received("tampered"))
        self.assertIn("dkim=fail", r)
        self.assertIn("spf=pass", r)
        self.assertIn("dmarc=pass", r)

    def test_quarantine_goes_to_junk(self):
        self.deliver("x@quarantine.test", self.message("x@quarantine.test", "quarantined"))
        m = self.received("quarantined", folder="Junk")
        r = self.results(m)
        self.assertIn("spf=fail", r)
        self.assertIn("dkim=none", r)
        self.assertIn("dmarc=fail (p=quarantine)", r)

    def test_softfail_with_policy_none_is_delivered(self):
        self.deliver("x@soft.test", self.message("x@soft.test", "softfail"))
        r = self.results(self.received("softfail"))
        self.assertIn("spf=softfail", r)
        self.assertIn("dmarc=fail (p=none)", r)

    def test_too_many_lookups_is_permerror(self):
        self.deliver("x@limits.test", self.message("x@limits.test", "lookup limit"))
        r = self.results(self.received("lookup limit"))
        self.assertIn("spf=permerror (more than 10 DNS-querying terms)", r)

    def test_macro_exists(self):
        self.deliver("bob@macro.test", self.message("bob@macro.test", "macro"))
        r = self.results(self.received("macro"))
        self.assertIn("spf=pass", r)

    def test_forged_results_removed_foreign_kept(self):
        forged = ("Authentication-Results: mail.example.test; spf=pass smtp.mailfrom=x@strict.test;\r\n"
                  "\tdkim=pass header.d=strict.test\r\n"
                  "Authentication-Results: other.example.org; spf=pass\r\n")
        self.deliver("x@soft.test", self.message("x@soft.test", "forged results", forged))
        m = self.received("forged results")
        values = m.get_all("Authentication-Results")
        self.assertEqual(len(values), 2, values)
        self.assertIn("other.example.org; spf=pass", values)
        self.assertIn("spf=softfail", self.results(m))


if __name__ == "__main__":
    unittest.main(verbosity=2)
