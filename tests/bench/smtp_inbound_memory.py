#!/usr/bin/python3
"""Memory of postern-smtpd while it receives one large message on port 25.

A message of --size MiB (default 20) arrives over smtplib on the MX listener
with inbound sender authentication on (smtp.sender_auth: SPF, DKIM, DMARC
against a local NSD), carrying a DKIM signature and a forged
Authentication-Results field that claims our host name (so the removal path
runs too). The daemon's peak resident memory (VmHWM of /proc/PID/status) is
read after startup and again after the 250; the difference is what receiving
and delivering the message cost. The Maildir copy is checked: forged field
gone, Authentication-Results added, body intact.

Not a test: run by hand after a build, as root or not:

    POSTERN_BUILD_DIR=build tests/bench/smtp_inbound_memory.py [--size 20]
"""

import argparse
import base64
import os
import shutil
import smtplib
import subprocess
import sys
import tempfile

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "integration", "lib"))
from postern_testlib import Instance, Nsd, run  # noqa: E402

try:
    import dkim  # python3-dkim, as in tests/integration/smtpd/test_sender_auth.py
except ImportError:  # the figure is still meaningful without a signature
    dkim = None


def status_kib(pid, field):
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith(field + ":"):
                return int(line.split()[1])
    raise RuntimeError(f"{field} not found")


def zone(origin, records):
    head = [f"$ORIGIN {origin}.", "$TTL 300", f"@ IN SOA ns.{origin}. hostmaster.{origin}. 1 3600 600 86400 300",
            f"@ IN NS ns.{origin}.", "ns IN A 127.0.0.1"]
    return "\n".join(head + records) + "\n"


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--size", type=int, default=20, help="message size in MiB")
    args = ap.parse_args()
    tmp = tempfile.mkdtemp(prefix="postern-bench-mem-")
    key_path = os.path.join(tmp, "dkim.key")
    run(["openssl", "genpkey", "-algorithm", "RSA", "-pkeyopt", "rsa_keygen_bits:2048", "-out", key_path])
    der = subprocess.run(["openssl", "pkey", "-in", key_path, "-pubout", "-outform", "DER"], capture_output=True,
                         check=True).stdout
    pub = "v=DKIM1; k=rsa; p=" + base64.b64encode(der).decode()
    txt = " ".join('"%s"' % pub[i:i + 250] for i in range(0, len(pub), 250))
    nsd = Nsd({"sender.test": zone("sender.test", ['@ IN TXT "v=spf1 ip4:127.0.0.1 -all"',
                                                   f"s1._domainkey IN TXT {txt}",
                                                   '_dmarc IN TXT "v=DMARC1; p=none"'])})
    inst = Instance(domain="example.test", users={"alice@example.test": "alice-password-1"},
                    conf={"dns.servers": nsd.server, "smtp.sender_auth": "true",
                          "smtp.max_message_size": f"{args.size + 2}M"})
    try:
        info = inst.start("postern-smtpd")
        pid = info["pid"]
        port = inst.port("postern-smtpd", "smtp")
        line = b"x" * 76 + b"\r\n"
        body = line * (args.size * 1024 * 1024 // len(line))
        head = (b"From: Bob <bob@sender.test>\r\nTo: alice@example.test\r\nSubject: large\r\n"
                b"Date: Tue, 24 Nov 2026 12:00:00 +0000\r\nMessage-ID: <large@sender.test>\r\n")
        message = head + b"\r\n" + body
        if dkim:
            with open(key_path, "rb") as f:
                sig = dkim.sign(message, b"s1", b"sender.test", f.read(), include_headers=[b"from", b"to", b"subject"])
            message = sig + message
        forged = f"Authentication-Results: {inst.hostname}; spf=pass smtp.mailfrom=bob@sender.test\r\n".encode()
        message = forged + message
        before_hwm = status_kib(pid, "VmHWM")
        with smtplib.SMTP("127.0.0.1", port, timeout=120) as c:
            c.sendmail("bob@sender.test", ["alice@example.test"], message)
        after_hwm = status_kib(pid, "VmHWM")
        got = inst.messages("alice@example.test")
        assert len(got) == 1, "the message was not delivered"
        stored = got[0]
        assert forged not in stored, "the forged field is still there"
        assert b"Authentication-Results: " + inst.hostname.encode() + b";" in stored
        assert stored.endswith(body), "the body changed"
        if dkim:
            assert b"dkim=pass" in stored, "the DKIM signature did not verify"
        print(f"message: {len(message) / 1048576:.1f} MiB, DKIM-signed: {'yes' if dkim else 'no'}, forged field removed")
        print(f"postern-smtpd VmHWM after start: {before_hwm / 1024:.1f} MiB")
        print(f"postern-smtpd VmHWM after 250:   {after_hwm / 1024:.1f} MiB")
        print(f"peak growth for the message:     {(after_hwm - before_hwm) / 1024:.1f} MiB")
    finally:
        inst.close()
        nsd.close()
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
