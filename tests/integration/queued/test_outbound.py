"""Outbound delivery end to end: postern-smtpd takes mail from an authenticated
user, postern-queued signs it and delivers it to other domains' MX hosts found
through a real NSD on loopback.

Peers: a second Postern instance (other.test on 127.0.0.2) and small SMTP
sinks written here, each on its own loopback address with one behaviour:
  tempfail.test  451 for the first RCPT, then 250      -> retried, delivered
  reject.test    550 5.1.1 for every RCPT               -> bounce to the sender
  silent.test    accepts TCP, never says a word         -> timeout, deferred
  sts.test       no STARTTLS, MTA-STS policy "enforce"  -> never delivered
  nullmx.test    "MX 0 ." (RFC 7505)                    -> bounce at once
  accept.test / hold.test  for the kill -9 test (hold.test keeps DATA open)
DKIM signatures are checked with python3-dkim (dkimpy), an independent
implementation, with its DNS lookups answered by the same NSD.
"""

import base64
import email
import hashlib
import re
import email.policy
import os
import shutil
import signal
import smtplib
import socket
import socketserver
import ssl
import subprocess
import tempfile
import threading
import time
import unittest
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import dkim
import dns.message
import dns.query
import dns.rdatatype

from postern_testlib import Instance, Nsd, free_port, make_cert, wait_for


# RFC 3461 4: xtext, checked the way a strict DSN server does (Postfix answers "501 5.5.4 Bad ORCPT
# parameter syntax" to the same input): xchar = '!'..'~' except '+' and '='; hexchar = '+' and two
# upper-case hex digits. An ORCPT is addr-type ";" xtext; an rfc822 address is printable ASCII.
XTEXT = re.compile(rb"(?:[\x21-\x2a\x2c-\x3c\x3e-\x7e]|\+[0-9A-F]{2})+")


def xtext_decode(value):
    return re.sub(rb"\+([0-9A-F]{2})", lambda m: bytes([int(m.group(1), 16)]), value)


def valid_orcpt(value):
    addr_type, sep, rest = value.partition(b";")
    if not sep or not re.fullmatch(rb"[A-Za-z0-9-]+", addr_type) or not XTEXT.fullmatch(rest):
        return False
    decoded = xtext_decode(rest)
    return addr_type.lower() != b"rfc822" or all(0x20 <= c < 0x7f for c in decoded)


class Sink:
    """A minimal SMTP server on (address, port); records complete messages.
    With dsn=True it offers DSN and answers 501 to ENVID/ORCPT values that are not valid xtext."""

    def __init__(self, address, port, mode="accept", tls=None, login=None, dsn=False):
        self.mode = mode
        self.params = []          # (verb, {keyword: raw value bytes}) of MAIL and RCPT (DSN sinks)
        self.auth_seen = []       # (user, over_tls)
        self.messages = []        # (mail_from, [rcpts], data bytes)
        self.connections = 0
        self.rcpt_count = 0
        self.data_started = threading.Event()
        self.release = threading.Event()
        sink = self

        class Handler(socketserver.StreamRequestHandler):
            timeout = 120

            def reply(self, text):
                self.wfile.write(text.encode() + b"\r\n")
                self.wfile.flush()

            def handle(self):
                sink.connections += 1
                if sink.mode == "silent":
                    try:
                        while self.rfile.read(1):
                            pass
                    except OSError:
                        pass
                    return
                self.reply(f"220 {address} ESMTP sink")
                mail_from, rcpts = None, []
                encrypted, authed = False, False
                while True:
                    line = self.rfile.readline(4096)
                    if not line:
                        return
                    cmd = line.decode(errors="replace").strip()
                    verb = cmd.split(" ", 1)[0].upper()
                    if verb in ("EHLO", "HELO"):
                        extra = ""
                        if tls and not encrypted:
                            extra += "250-STARTTLS\r\n"
                        if login and encrypted:
                            extra += "250-AUTH PLAIN\r\n"
                        if dsn:
                            extra += "250-DSN\r\n"
                        self.reply("250-sink\r\n" + extra + "250-PIPELINING\r\n250-8BITMIME\r\n250 SIZE 10000000")
                    elif verb == "STARTTLS" and tls and not encrypted:
                        self.reply("220 2.0.0 go ahead")
                        try:
                            self.request = tls.wrap_socket(self.request, server_side=True)
                        except (ssl.SSLError, OSError):
                            return  # the client gave up in the handshake (e.g. DANE mismatch)
                        self.rfile = self.request.makefile("rb")
                        self.wfile = self.request.makefile("wb")
                        encrypted = True
                    elif verb == "AUTH" and login:
                        import base64
                        parts = base64.b64decode(cmd.split()[2]).split(b"\0")
                        user, password = parts[1].decode(), parts[2].decode()
                        sink.auth_seen.append((user, encrypted))
                        authed = (user, password) == login
                        self.reply("235 2.7.0 ok" if authed else "535 5.7.8 bad credentials")
                    elif verb == "MAIL" and login and not authed:
                        self.reply("530 5.7.0 authentication required")
                    elif verb in ("MAIL", "RCPT") and dsn and not self.dsn_params_ok(verb, line):
                        continue
                    elif verb == "MAIL":
                        mail_from, rcpts = cmd[10:].split(">")[0].lstrip("<"), []
                        self.reply("250 2.1.0 ok")
                    elif verb == "RCPT":
                        sink.rcpt_count += 1
                        rcpt = cmd[8:].split(">")[0].lstrip("<")
                        if sink.mode == "reject":
                            self.reply("550 5.1.1 <%s>: Recipient address rejected: no such user" % rcpt)
                        elif sink.mode == "tempfail" and sink.rcpt_count == 1:
                            self.reply("451 4.3.0 try again later")
                        else:
                            rcpts.append(rcpt)
                            self.reply("250 2.1.5 ok")
                    elif verb == "DATA":
                        self.reply("354 go ahead")
                        data = b""
                        while True:
                            chunk = self.rfile.readline(1 << 20)
                            if not chunk:
                                return
                            if chunk == b".\r\n":
                                break
                            data += chunk[1:] if chunk.startswith(b".") else chunk
                        if sink.mode == "gate":  # answer only once the test opens the gate
                            sink.data_started.set()
                            sink.release.wait(120)
                        if sink.mode == "hold" and not sink.release.is_set():
                            sink.data_started.set()
                            sink.release.wait(120)
                            return  # the client is gone by now (killed)
                        sink.messages.append((mail_from, rcpts, data))
                        self.reply("250 2.0.0 queued as sink%d" % len(sink.messages))
                    elif verb == "RSET":
                        self.reply("250 ok")
                    elif verb == "QUIT":
                        self.reply("221 bye")
                        return
                    else:
                        self.reply("502 5.5.2 not implemented")

            def dsn_params_ok(self, verb, line):
                params = {}
                for word in line.rstrip(b"\r\n").split(b">", 1)[1].split():
                    key, _, value = word.partition(b"=")
                    params[key.upper().decode()] = value
                sink.params.append((verb, params))
                if "ENVID" in params and not XTEXT.fullmatch(params["ENVID"]):
                    self.reply("501 5.5.4 Bad ENVID parameter syntax")
                    return False
                if "ORCPT" in params and not valid_orcpt(params["ORCPT"]):
                    self.reply("501 5.5.4 Bad ORCPT parameter syntax")
                    return False
                return True

        class Server(socketserver.ThreadingTCPServer):
            allow_reuse_address = True
            daemon_threads = True

        self.server = Server((address, port), Handler)
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self):
        self.release.set()
        self.server.shutdown()
        self.server.server_close()


def zone(origin, records):
    head = [f"$ORIGIN {origin}.", "$TTL 300",
            f"@ IN SOA ns.{origin}. hostmaster.{origin}. 1 3600 600 86400 300",
            f"@ IN NS ns.{origin}.", "ns IN A 127.0.0.1"]
    return "\n".join(head + records) + "\n"


def txt(value):
    """A TXT RDATA split into <=255-byte character-strings."""
    return " ".join('"%s"' % value[i:i + 250] for i in range(0, len(value), 250))


class Outbound(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.tmp = tempfile.mkdtemp(prefix="postern-outbound-")
        cls.mx_port = free_port()
        cls.sts_port = free_port()
        # Instance A sends; instance B (other.test) receives on 127.0.0.2.
        cls.a = Instance(domain="example.test")
        cls.b = Instance(domain="other.test", users={"bob@other.test": "bob-password-1",
                                                     "carol@other.test": "carol-password-1"},
                         conf={"smtp.listen": f"127.0.0.2:{cls.mx_port}", "submission.listen": "127.0.0.2:0"})
        # The MTA-STS policy host for sts.test, with a certificate A is told to trust.
        cls.sts_cert = os.path.join(cls.tmp, "sts.pem")
        cls.sts_key = os.path.join(cls.tmp, "sts.key")
        make_cert(cls.sts_cert, cls.sts_key, ["mta-sts.sts.test"])
        cls.relay_cert = os.path.join(cls.tmp, "relay.pem")
        cls.relay_key = os.path.join(cls.tmp, "relay.key")
        make_cert(cls.relay_cert, cls.relay_key, ["smtp.relay.test"])
        cls.cafile = os.path.join(cls.tmp, "ca.pem")
        with open(cls.cafile, "w") as out:
            for p in (cls.sts_cert, cls.relay_cert):
                with open(p) as f:
                    out.write(f.read())
        os.chmod(cls.tmp, 0o755)
        os.chmod(cls.cafile, 0o644)

        records = {}
        for line in cls.a.ctl("dkim", "list", "example.test").stdout.splitlines():
            parts = line.strip().split(" TXT ", 1)
            if len(parts) == 2:
                records[parts[0].split(".")[0]] = parts[1].strip('"')
        cls.selectors = sorted(records)
        assert len(records) == 2, records
        zones = {
            "example.test": zone("example.test", ["@ IN MX 10 mail", "mail IN A 127.0.0.1",
                                                  '@ IN TXT "v=spf1 ip4:127.0.0.0/8 -all"',
                                                  '_dmarc IN TXT "v=DMARC1; p=reject"'] +
                                 [f"{sel}._domainkey IN TXT {txt(val)}" for sel, val in records.items()]),
            "other.test": zone("other.test", ["@ IN MX 10 mail", "mail IN A 127.0.0.2"]),
            "tempfail.test": zone("tempfail.test", ["@ IN MX 10 mx", "mx IN A 127.0.0.3"]),
            "reject.test": zone("reject.test", ["@ IN MX 10 mx", "mx IN A 127.0.0.4"]),
            "silent.test": zone("silent.test", ["@ IN MX 10 mx", "mx IN A 127.0.0.5"]),
            "sts.test": zone("sts.test", ["@ IN MX 10 mx", "mx IN A 127.0.0.6", "mta-sts IN A 127.0.0.6",
                                          '_mta-sts IN TXT "v=STSv1; id=20261124"']),
            "nullmx.test": zone("nullmx.test", ["@ IN MX 0 ."]),
            "accept.test": zone("accept.test", ["@ IN MX 10 mx", "mx IN A 127.0.0.7"]),
            "hold.test": zone("hold.test", ["@ IN MX 10 mx", "mx IN A 127.0.0.8"]),
            "relay.test": zone("relay.test", ["smtp IN A 127.0.0.9"]),
        }
        cls.nsd = Nsd(zones)
        cls.sinks = {
            "tempfail": Sink("127.0.0.3", cls.mx_port, "tempfail"),
            "reject": Sink("127.0.0.4", cls.mx_port, "reject"),
            "silent": Sink("127.0.0.5", cls.mx_port, "silent"),
            "sts": Sink("127.0.0.6", cls.mx_port, "accept"),
            "accept": Sink("127.0.0.7", cls.mx_port, "accept"),
            "hold": Sink("127.0.0.8", cls.mx_port, "hold"),
        }
        relay_tls = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        relay_tls.load_cert_chain(cls.relay_cert, cls.relay_key)
        cls.relay_port = free_port()
        cls.sinks["relay"] = Sink("127.0.0.9", cls.relay_port, "accept", tls=relay_tls,
                                  login=("relay-user", "relay-secret"))
        cls.policy_requests = []
        requests = cls.policy_requests

        class Policy(BaseHTTPRequestHandler):
            def do_GET(self):
                requests.append((self.headers.get("Host"), self.path))
                body = b"version: STSv1\r\nmode: enforce\r\nmx: mx.sts.test\r\nmax_age: 86400\r\n"
                self.send_response(200)
                self.send_header("Content-Type", "text/plain")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args):
                pass

        cls.https = ThreadingHTTPServer(("127.0.0.6", cls.sts_port), Policy)
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        ctx.load_cert_chain(cls.sts_cert, cls.sts_key)
        cls.https.socket = ctx.wrap_socket(cls.https.socket, server_side=True)
        threading.Thread(target=cls.https.serve_forever, daemon=True).start()

        common = {"dns.servers": cls.nsd.server}
        for key, value in {**common, "smtp.sender_auth": "true"}.items():
            cls.b.set_conf(key, value)
        for key, value in {**common, "outbound.mx_port": str(cls.mx_port), "outbound.mta_sts_port": str(cls.sts_port),
                           "outbound.ca_file": cls.cafile, "queue.retry_min": "1s", "queue.retry_max": "2s",
                           "outbound.connect_timeout": "3s", "outbound.command_timeout": "3s",
                           "queue.delay_warning": "0"}.items():
            cls.a.set_conf(key, value)
        cls.b.start("postern-smtpd")
        cls.a.start("postern-smtpd")
        cls.a.start("postern-queued")
        cls.submission = cls.a.port("postern-smtpd", "submission")

    @classmethod
    def tearDownClass(cls):
        for s in cls.sinks.values():
            s.close()
        cls.https.shutdown()
        cls.a.close()
        cls.b.close()
        cls.nsd.close()
        shutil.rmtree(cls.tmp, ignore_errors=True)

    # -- helpers --------------------------------------------------------------------
    def send(self, rcpts, subject, body="Hello.\r\n"):
        msg = (f"From: Alice <alice@example.test>\r\nTo: {', '.join(rcpts)}\r\nSubject: {subject}\r\n"
               f"Date: Tue, 24 Nov 2026 12:00:00 +0000\r\nMessage-ID: <{subject.replace(' ', '-')}@example.test>\r\n"
               f"MIME-Version: 1.0\r\nContent-Type: text/plain; charset=us-ascii\r\n\r\n{body}")
        ctx = self.a.client_tls_context()
        with smtplib.SMTP("127.0.0.1", self.submission, timeout=30) as s:
            s.starttls(context=ctx)
            s.login("alice@example.test", "alice-password-1")
            refused = s.sendmail("alice@example.test", rcpts, msg.encode())
            self.assertEqual(refused, {})

    def queue(self):
        return self.a.ctl("queue", "list").stdout

    def queue_id_for(self, address):
        current = None
        for line in self.queue().splitlines():
            if line and not line.startswith(" ") and " " in line and len(line.split()[0]) == 16:
                current = line.split()[0]
            elif address in line:
                return current
        return None

    def wait_queue_without(self, address, timeout=60):
        wait_for(lambda: address not in self.queue(), timeout=timeout, what=f"{address} to leave the queue")

    def bounces_for_alice(self, about):
        out = []
        for raw in self.a.messages("alice@example.test"):
            m = email.message_from_bytes(raw, policy=email.policy.compat32)
            if m.get_content_type() == "multipart/report" and about.encode() in raw:
                out.append((raw, m))
        return out

    def dns_txt(self, name, timeout=5):
        q = dns.message.make_query(name.decode() if isinstance(name, bytes) else name, dns.rdatatype.TXT)
        r = dns.query.udp(q, "127.0.0.1", port=self.nsd.port, timeout=timeout)
        for rrset in r.answer:
            for rd in rrset:
                return b"".join(rd.strings)
        return None

    def delivery_status(self, msg):
        for part in msg.walk():
            if part.get_content_type() == "message/delivery-status":
                payload = part.get_payload()
                blocks = payload if isinstance(payload, list) else [email.message_from_string(payload)]
                return blocks
        self.fail("no message/delivery-status part")

    # -- tests ----------------------------------------------------------------------
    def test_1_delivered_to_other_instance_dkim_signed(self):
        self.send(["bob@other.test"], "to other instance")
        got = wait_for(lambda: [m for m in self.b.messages("bob@other.test") if b"to other instance" in m], timeout=60,
                       what="delivery to other.test")
        raw = got[0]
        # Two signatures (RSA and Ed25519), both valid for an independent verifier.
        d = dkim.DKIM(raw)
        sigs = [l for l in raw.split(b"\r\n") if l.lower().startswith(b"dkim-signature:")]
        self.assertEqual(len(sigs), 2, raw[:2000])
        algos = set()
        for i in range(2):
            self.assertTrue(d.verify(idx=i, dnsfunc=self.dns_txt), f"signature {i} does not verify:\n{raw[:3000]!r}")
            algos.add(d.signature_fields[b"a"])
            self.assertEqual(d.signature_fields[b"d"], b"example.test")
            self.assertEqual(d.signature_fields[b"c"], b"relaxed/relaxed")
        self.assertEqual(algos, {b"rsa-sha256", b"ed25519-sha256"})
        # Tampering breaks it.
        tampered = raw.replace(b"Subject: to other instance", b"Subject: to other instancf")
        self.assertFalse(dkim.DKIM(tampered).verify(idx=0, dnsfunc=self.dns_txt))
        self.assertIn(b"Return-Path: <alice@example.test>", raw)
        # B checked what it received: SPF (127.0.0.0/8), both signatures, DMARC aligned.
        results = email.message_from_bytes(raw)["Authentication-Results"]
        self.assertTrue(results.startswith("mail.other.test;"), results)
        self.assertIn("spf=pass", results)
        self.assertEqual(results.count("dkim=pass header.d=example.test"), 2, results)
        self.assertIn("dmarc=pass (p=reject) header.from=example.test", results)
        self.wait_queue_without("bob@other.test")
        log = self.a.log()
        self.assertIn("delivery.remote", log)
        self.assertIn("mail.other.test[127.0.0.2]", log)

    def test_2_temporary_failure_is_retried(self):
        sink = self.sinks["tempfail"]
        self.send(["someone@tempfail.test"], "retry me")
        wait_for(lambda: sink.messages, timeout=60, what="delivery after a retry")
        self.assertGreaterEqual(sink.connections, 2)
        self.assertEqual(sink.messages[0][1], ["someone@tempfail.test"])
        self.assertEqual(sink.messages[0][0], "alice@example.test")
        self.wait_queue_without("someone@tempfail.test")
        self.assertIn("451 4.3.0 try again later", self.a.log())

    def test_3_permanent_failure_bounces_to_sender(self):
        self.send(["nobody@reject.test"], "doomed message")
        found = wait_for(lambda: self.bounces_for_alice("nobody@reject.test"), timeout=60, what="a bounce for alice")
        raw, m = found[0]
        self.assertIn(b"Return-Path: <>", raw)
        self.assertIn("MAILER-DAEMON@mail.example.test", m["From"])
        self.assertEqual(m["Auto-Submitted"], "auto-replied")
        self.assertEqual(m.get_param("report-type"), "delivery-status")
        blocks = self.delivery_status(m)
        self.assertEqual(blocks[0]["Reporting-MTA"], "dns; mail.example.test")
        rcpt = blocks[1]
        self.assertEqual(rcpt["Final-Recipient"], "rfc822; nobody@reject.test")
        self.assertEqual(rcpt["Action"], "failed")
        self.assertEqual(rcpt["Status"], "5.1.1")
        self.assertEqual(rcpt["Remote-MTA"], "dns; mx.reject.test")
        self.assertIn("smtp; 550 5.1.1", rcpt["Diagnostic-Code"])
        self.assertIn(b"Subject: doomed message", raw)  # the original comes back (RET default: full)
        self.wait_queue_without("nobody@reject.test")
        # The bounce itself (null sender) was delivered locally and is gone from the queue.
        self.assertNotIn("<>", self.queue())

    def test_4_null_mx_fails_at_once(self):
        self.send(["x@nullmx.test"], "to a null mx")
        found = wait_for(lambda: self.bounces_for_alice("x@nullmx.test"), timeout=60, what="a null MX bounce")
        rcpt = self.delivery_status(found[0][1])[1]
        self.assertEqual(rcpt["Status"], "5.1.10")
        self.assertIn("null MX", rcpt["Diagnostic-Code"])

    def test_5_silent_peer_times_out_and_stays_queued(self):
        sink = self.sinks["silent"]
        self.a.set_conf("queue.delay_warning", "1s")
        reloads = self.a.log().count(" reloaded")
        self.a.procs["postern-queued"].send_signal(signal.SIGHUP)
        wait_for(lambda: self.a.log().count(" reloaded") > reloads, timeout=20, what="reload")
        self.send(["x@silent.test"], "to a silent peer")
        # Still undelivered after queue.delay_warning: one delay notice (RFC 3464 Action: delayed).
        found = wait_for(lambda: self.bounces_for_alice("x@silent.test"), timeout=60, what="a delay notice")
        raw, m = found[0]
        self.assertEqual(m["Subject"], "Delayed Mail (still being retried)")
        rcpt = self.delivery_status(m)[1]
        self.assertEqual(rcpt["Action"], "delayed")
        self.assertTrue(rcpt["Status"].startswith("4."), rcpt["Status"])
        self.assertIn("Will-Retry-Until", rcpt)
        self.a.set_conf("queue.delay_warning", "0")
        self.a.procs["postern-queued"].send_signal(signal.SIGHUP)
        wait_for(lambda: "timeout talking to mx.silent.test" in self.queue(), timeout=60, what="a timeout in the queue")
        qid = self.queue_id_for("x@silent.test")
        self.assertIsNotNone(qid, self.queue())
        wait_for(lambda: sink.connections >= 2, timeout=60, what="a second attempt")
        shown = self.a.ctl("queue", "show", qid).stdout
        self.assertIn("subject:   to a silent peer", shown)
        self.assertIn("recipient: <x@silent.test> pending", shown)
        # Hold keeps it from being retried; release and delete work on it.
        wait_for(lambda: self.a.ctl("queue", "hold", qid, check=False).returncode == 0, timeout=30,
                 what="hold (between attempts)")
        self.assertIn(f"{qid}  hold", self.queue())
        before = sink.connections
        self.a.ctl("queue", "release", qid)
        wait_for(lambda: sink.connections > before, timeout=30, what="an attempt after release")
        wait_for(lambda: self.a.ctl("queue", "delete", qid, check=False).returncode == 0, timeout=30,
                 what="delete (between attempts)")
        self.assertNotIn("x@silent.test", self.queue())
        self.assertEqual(len(self.bounces_for_alice("x@silent.test")), 1)  # only the delay notice: delete does not bounce
        bad = self.a.ctl("queue", "show", "../../etc/passwd", check=False)
        self.assertEqual(bad.returncode, 2)

    def test_6_mta_sts_enforce_without_starttls_is_not_delivered(self):
        sink = self.sinks["sts"]
        self.send(["x@sts.test"], "needs tls")
        wait_for(lambda: "does not offer STARTTLS, which the policy requires (mta-sts enforce)" in self.queue(),
                 timeout=60, what="the MTA-STS refusal in the queue")
        self.assertEqual(sink.messages, [])
        self.assertIn(("mta-sts.sts.test", "/.well-known/mta-sts.txt"), self.policy_requests)
        qid = self.queue_id_for("x@sts.test")
        wait_for(lambda: self.a.ctl("queue", "delete", qid, check=False).returncode == 0, timeout=30, what="delete")
        self.assertEqual(sink.messages, [])

    def test_7_kill9_does_not_send_twice(self):
        accept, hold = self.sinks["accept"], self.sinks["hold"]
        self.send(["one@accept.test", "two@hold.test"], "two domains")
        wait_for(lambda: accept.messages and hold.data_started.is_set(), timeout=60,
                 what="accept.test delivered and hold.test inside DATA")
        # Confirmed = the 250 was received and recorded in the envelope on disk. (Between the
        # peer's 250 and that record a crash can duplicate, as RFC 5321 6.1 accepts.)
        qid = self.queue_id_for("two@hold.test")
        wait_for(lambda: "recipient: <one@accept.test> sent" in self.a.ctl("queue", "show", qid).stdout, timeout=30,
                 what="one@accept.test recorded as sent")
        self.a.kill9("postern-queued")
        hold.release.set()
        self.a.start("postern-queued")
        wait_for(lambda: hold.messages, timeout=60, what="hold.test delivered after the restart")
        self.wait_queue_without("two@hold.test")
        self.assertEqual(len(accept.messages), 1, "accept.test got the message twice")
        self.assertEqual(hold.messages[0][1], ["two@hold.test"])
        self.assertIn("queue.recovered", self.a.log())

    def test_8_smarthost_with_auth(self):
        sink = self.sinks["relay"]
        secret = os.path.join(self.tmp, "relay-password")
        with open(secret, "w") as f:
            f.write("relay-secret\n")
        os.chmod(secret, 0o644)
        for key, value in {"relay.host": f"smtp.relay.test:{self.relay_port}", "relay.user": "relay-user",
                           "relay.password_file": secret}.items():
            self.a.set_conf(key, value)
        reloads = self.a.log().count(" reloaded")
        self.a.procs["postern-queued"].send_signal(signal.SIGHUP)
        wait_for(lambda: self.a.log().count(" reloaded") > reloads, timeout=20, what="reload")
        try:
            # Every remote domain goes through the smarthost: STARTTLS (verified), AUTH PLAIN, then the mail.
            self.send(["bob@other.test", "x@anywhere.test"], "via smarthost")
            wait_for(lambda: sink.messages, timeout=60, what="delivery through the smarthost")
            # One session, one transaction for both domains.
            self.assertEqual(sink.auth_seen, [("relay-user", True)])
            self.assertEqual(len(sink.messages), 1)
            mail_from, rcpts, data = sink.messages[0]
            self.assertEqual(mail_from, "alice@example.test")
            self.assertEqual(sorted(rcpts), ["bob@other.test", "x@anywhere.test"])
            self.assertIn(b"Subject: via smarthost", data)
            self.assertIn(b"DKIM-Signature:", data)
            self.wait_queue_without("x@anywhere.test")
        finally:
            for key in ("relay.host", "relay.user", "relay.password_file"):
                self.a.ctl("config", "unset", key)
            self.a.procs["postern-queued"].send_signal(signal.SIGHUP)

class SubmissionIdentity(unittest.TestCase):
    """Issue 16, defects 6 and 9, end to end.

    Instance A hosts example.test and b.test (both with DKIM keys); alice@example.test
    has the alias sales@example.test, and fwd@example.test forwards to someone@dsn.test.
    B (other.test) is another Postern; dsn.test is a Sink that offers DSN and checks
    ORCPT/ENVID syntax strictly, as a DSN-capable Postfix does.
    """

    @classmethod
    def setUpClass(cls):
        cls.mx_port = free_port()
        cls.a = Instance(domain="example.test")
        cls.b = Instance(domain="other.test", users={"bob@other.test": "bob-password-1"},
                         conf={"smtp.listen": f"127.0.0.21:{cls.mx_port}", "submission.listen": "127.0.0.21:0"})
        cls.a.ctl("domain", "add", "b.test")
        cls.a.add_user("ceo@b.test", "ceo-password-1")
        cls.a.ctl("alias", "add", "sales@example.test", "alice@example.test")
        cls.a.ctl("alias", "add", "fwd@example.test", "someone@dsn.test")
        cls.a.ctl("alias", "add", "fwd2@example.test", "third@dsn.test")
        if os.geteuid() == 0:
            cls.a._share_with_daemons()
        cls.dkim_records = {}
        for domain in ("example.test", "b.test"):
            for line in cls.a.ctl("dkim", "list", domain).stdout.splitlines():
                parts = line.strip().split(" TXT ", 1)
                if len(parts) == 2:
                    cls.dkim_records[parts[0].rstrip(".") + "."] = parts[1].strip('"').encode()
        assert len(cls.dkim_records) == 4, cls.dkim_records
        cls.nsd = Nsd({
            "example.test": zone("example.test", ["@ IN MX 10 mail", "mail IN A 127.0.0.1",
                                                  '@ IN TXT "v=spf1 ip4:127.0.0.0/8 -all"']),
            "other.test": zone("other.test", ["@ IN MX 10 mail", "mail IN A 127.0.0.21"]),
            "dsn.test": zone("dsn.test", ["@ IN MX 10 mx", "mx IN A 127.0.0.20"]),
        })
        cls.sink = Sink("127.0.0.20", cls.mx_port, "accept", dsn=True)
        for key, value in {"dns.servers": cls.nsd.server, "outbound.mx_port": str(cls.mx_port), "queue.retry_min": "1s",
                           "queue.retry_max": "2s", "outbound.connect_timeout": "3s", "outbound.command_timeout": "5s",
                           "queue.delay_warning": "0", "outbound.mta_sts": "false"}.items():
            cls.a.set_conf(key, value)
        cls.b.set_conf("dns.servers", cls.nsd.server)
        cls.b.start("postern-smtpd")
        cls.a.start("postern-smtpd")
        cls.a.start("postern-queued")
        cls.submission = cls.a.port("postern-smtpd", "submission")
        cls.submissions = cls.a.port("postern-smtpd", "submissions")

    @classmethod
    def tearDownClass(cls):
        cls.sink.close()
        cls.a.close()
        cls.b.close()
        cls.nsd.close()

    def dns_txt(self, name, timeout=5):
        name = name.decode() if isinstance(name, bytes) else name
        return self.dkim_records.get(name if name.endswith(".") else name + ".")

    def smtp(self):
        s = smtplib.SMTP("127.0.0.1", self.submission, timeout=30)
        s.starttls(context=self.a.client_tls_context())
        s.login("alice@example.test", "alice-password-1")
        return s

    def queued_with(self, marker):
        """Queue files (any state, and the spool's tmp/) whose content contains `marker`."""
        found = []
        for dirpath, _, names in os.walk(os.path.join(self.a.data_dir, "queue")):
            for n in names:
                try:
                    with open(os.path.join(dirpath, n), "rb") as f:
                        if marker in f.read():
                            found.append(os.path.join(dirpath, n))
                except FileNotFoundError:
                    pass
        return found

    def received_by_bob(self, marker):
        return [m for m in self.b.messages("bob@other.test") if marker.encode() in m]

    # -- defect 6: the header From:/Sender: of a submission ------------------------------
    def test_foreign_from_refused_after_data(self):
        cases = {
            "other hosted domain": "From: ceo@b.test\r\n",
            "second From address": "From: alice@example.test, ceo@b.test\r\nSender: alice@example.test\r\n",
            "display name hides nothing": 'From: "alice@example.test" <ceo@b.test>\r\n',
            "comment hides nothing": "From: (alice@example.test) ceo@b.test\r\n",
            "folded": "From: Alice\r\n <ceo@b.test>\r\n",
            "foreign Sender": "From: alice@example.test\r\nSender: ceo@b.test\r\n",
            "two From fields": "From: alice@example.test\r\nFrom: ceo@b.test\r\n",
            "unparsable": "From: <alice@example.test> ceo@b.test\r\n",
        }
        for name, head in cases.items():
            with self.subTest(name), self.smtp() as s:
                marker = "refused " + name
                s.mail("alice@example.test")  # a valid envelope sender
                self.assertEqual(s.rcpt("bob@other.test")[0], 250)
                code, text = s.data((head + f"To: bob@other.test\r\nSubject: {marker}\r\n\r\nBuy now.\r\n").encode())
                self.assertEqual(code, 550, text)
                self.assertTrue(text.startswith(b"5.7.1 "), text)
                if "ceo" in head and "two From" not in name and "unparsable" not in name:
                    self.assertIn(b"<ceo@b.test> not owned by user alice@example.test", text)
                # The session goes on: the next transaction works.
                self.assertEqual(s.noop()[0], 250)
        self.assertEqual(self.queued_with(b"Subject: refused"), [], "a refused message reached the queue")
        self.assertFalse(any(b"Subject: refused" in m for m in self.b.messages("bob@other.test")))
        self.assertFalse(any(b"Subject: refused" in m for m in self.a.messages("ceo@b.test")))
        self.assertIn("header identity refused", self.a.log())

    def test_foreign_from_refused_after_bdat(self):
        ctx = self.a.client_tls_context()
        with socket.create_connection(("127.0.0.1", self.submissions), timeout=30) as raw, ctx.wrap_socket(raw) as sock:
            f = sock.makefile("rb")
            t = lambda: f.readline()
            assert t().startswith(b"220")
            auth = base64.b64encode(b"\0alice@example.test\0alice-password-1")
            sock.sendall(b"EHLO c\r\n")
            while not t().startswith(b"250 "):
                pass
            sock.sendall(b"AUTH PLAIN " + auth + b"\r\n")
            self.assertTrue(t().startswith(b"235"))
            body = b"From: ceo@b.test\r\nTo: bob@other.test\r\nSubject: refused bdat\r\n\r\nBuy now.\r\n"
            sock.sendall(b"MAIL FROM:<alice@example.test>\r\nRCPT TO:<bob@other.test>\r\n"
                         b"BDAT %d LAST\r\n" % len(body) + body)
            self.assertTrue(t().startswith(b"250"))
            self.assertTrue(t().startswith(b"250"))
            reply = t()
            self.assertTrue(reply.startswith(b"550 5.7.1 From: header address <ceo@b.test>"), reply)
            sock.sendall(b"QUIT\r\n")
            t()
        self.assertEqual(self.queued_with(b"Subject: refused bdat"), [])

    def test_display_name_and_alias_delivered_and_signed(self):
        marker = "legit alias"
        msg = ('From: "Sales =?utf-8?q?Team_=C3=A9?=" (the shop) <sales@example.test>\r\nSender: alice+shop@example.test\r\n'
               f"To: bob@other.test\r\nSubject: {marker}\r\nDate: Tue, 24 Nov 2026 12:00:00 +0000\r\n"
               "Message-ID: <legit-alias@example.test>\r\n\r\nHello from the shop.\r\n")
        with self.smtp() as s:
            self.assertEqual(s.sendmail("alice@example.test", ["bob@other.test"], msg.encode()), {})
        raw = wait_for(lambda: self.received_by_bob(marker), timeout=60, what="delivery to bob")[0]
        d = dkim.DKIM(raw)
        sigs = [l for l in raw.split(b"\r\n") if l.lower().startswith(b"dkim-signature:")]
        self.assertEqual(len(sigs), 2, raw[:2000])
        for i in range(2):
            self.assertTrue(d.verify(idx=i, dnsfunc=self.dns_txt), f"signature {i} does not verify")
            self.assertEqual(d.signature_fields[b"d"], b"example.test")

    def test_queue_signer_refuses_foreign_from(self):
        # The second lock: a message that reaches the queue without the submission check
        # (written straight into incoming/ here) is delivered, but never signed for b.test.
        marker = "injected foreign from"
        body = (f"From: ceo@b.test\r\nTo: bob@other.test\r\nSubject: {marker}\r\n\r\nBuy now.\r\n").encode()
        qid = self.a.queue_message("alice@example.test", ["bob@other.test"], body, auth_user="alice@example.test")
        raw = wait_for(lambda: self.received_by_bob(marker), timeout=60, what="delivery of the injected message")[0]
        self.assertNotIn(b"DKIM-Signature:", raw)
        self.assertRegex(self.a.log(), r"queue\.dkim_refused .*" + qid + r".*not signed: From <ceo@b\.test> is not an address user "
                                       r"alice@example\.test may send as")

    # -- defect 9: ORCPT and ENVID as xtext ------------------------------------------------
    def test_forwarded_plus_address_orcpt_is_xtext(self):
        before = len(self.sink.messages)
        msg = b"From: alice@example.test\r\nTo: fwd+tag@example.test\r\nSubject: plus forward\r\n\r\nHi.\r\n"
        with self.smtp() as s:
            self.assertEqual(s.sendmail("alice@example.test", ["fwd+tag@example.test"], msg,
                                        mail_options=["ENVID=env+2B1"], rcpt_options=["NOTIFY=FAILURE"]), {})
        wait_for(lambda: len(self.sink.messages) > before, timeout=60, what="the forwarded message at dsn.test")
        self.assertEqual(self.sink.messages[-1][1], ["someone@dsn.test"])
        rcpt = [p for verb, p in self.sink.params if verb == "RCPT"][-1]
        mail = [p for verb, p in self.sink.params if verb == "MAIL"][-1]
        self.assertEqual(rcpt["ORCPT"], b"rfc822;fwd+2Btag@example.test")  # RFC 3461 4.2: '+' as +2B
        self.assertEqual(rcpt["NOTIFY"], b"FAILURE")
        self.assertEqual(mail["ENVID"], b"env+2B1")
        self.assertNotIn("Bad ORCPT", self.a.ctl("queue", "list").stdout)

    def test_forward_added_during_a_transaction_to_its_domain_gets_its_own(self):
        """A queued message for someone@dsn.test and fwd2@example.test (an alias of
        third@dsn.test). The queue's local delivery adds the forward third@dsn.test to the
        message while its transaction to dsn.test waits for the answer to DATA. The forward
        must go in a transaction of its own: not given the running transaction's 250 without
        being sent (lost), nor sent again together with someone@dsn.test (a duplicate).
        Exactly one copy to each."""
        marker = "gate-%d" % time.time_ns()
        before = len(self.sink.messages)
        self.sink.data_started.clear()
        self.sink.release.clear()
        self.sink.mode = "gate"
        try:
            body = ("From: alice@example.test\r\nTo: someone@dsn.test, fwd2@example.test\r\nSubject: %s\r\n\r\n"
                    "Hi.\r\n" % marker).encode()
            self.a.queue_message("alice@example.test", ["someone@dsn.test", "fwd2@example.test"], body,
                                 auth_user="alice@example.test")
            self.assertTrue(self.sink.data_started.wait(60), "the transaction to dsn.test did not reach DATA")

            def forward_added():  # the envelope, saved after local delivery, lists the forward
                for d, _, names in os.walk(os.path.join(self.a.data_dir, "queue")):
                    for n in names:
                        try:
                            with open(os.path.join(d, n), "rb") as f:
                                if n.endswith(".env") and b"third@dsn.test" in f.read():
                                    return True
                        except FileNotFoundError:
                            pass
                return False
            wait_for(forward_added, timeout=60, what="the forward added to the queued message")
        finally:
            self.sink.mode = "accept"
            self.sink.release.set()

        def ours():
            return [m for m in self.sink.messages[before:] if marker.encode() in m[2]]
        wait_for(lambda: len([r for m in ours() for r in m[1]]) >= 2 and not self.queued_with(marker.encode()),
                 timeout=60, what="the copies, and the queue empty")
        self.assertEqual(sorted(r for m in ours() for r in m[1]), ["someone@dsn.test", "third@dsn.test"])
        self.assertEqual(len(ours()), 2, [m[1] for m in ours()])

    def test_client_orcpt_passed_on_and_bad_xtext_refused(self):
        before = len(self.sink.messages)
        with self.smtp() as s:
            s.mail("alice@example.test")
            self.assertEqual(s.rcpt("x@dsn.test", ["ORCPT=rfc822;orig+2Bx@elsewhere.test"])[0], 250)
            # Strict RFC 3461 xtext on the way in: lower-case hex, an unencoded '+', 8-bit octets.
            for bad in ("rfc822;a+2bb@x.test", "rfc822;a+b@x.test", "rfc822;a=b@x.test", "rfc822;a+0Ab@x.test", "rfc822;"):
                code, text = s.rcpt("y@dsn.test", [f"ORCPT={bad}"])
                self.assertEqual(code, 501, (bad, text))
            code, _ = s.docmd("RSET")
            self.assertEqual(code, 250)
            self.assertEqual(s.mail("alice@example.test", ["ENVID=a+2bc"])[0], 501)
            s.rset()
            s.mail("alice@example.test")
            s.rcpt("x@dsn.test", ["ORCPT=rfc822;orig+2Bx@elsewhere.test"])
            self.assertEqual(s.data(b"From: alice@example.test\r\nSubject: client orcpt\r\n\r\nHi.\r\n")[0], 250)
        wait_for(lambda: len(self.sink.messages) > before, timeout=60, what="delivery to dsn.test")
        rcpt = [p for verb, p in self.sink.params if verb == "RCPT"][-1]
        self.assertEqual(rcpt["ORCPT"], b"rfc822;orig+2Bx@elsewhere.test")


class Unbound:
    """A validating unbound on 127.0.0.1:<free port> that knows only `zones`
    (stubs to `nsd_port`) and trusts `anchor_file` (DNSKEY lines). The root
    is stubbed to the same NSD, so nothing ever leaves the machine."""

    def __init__(self, root, nsd_port, zones, anchor_file):
        self.port = free_port(socket.SOCK_DGRAM)
        conf = os.path.join(root, "unbound.conf")
        lines = ["server:", f"  interface: 127.0.0.1@{self.port}", f"  port: {self.port}", "  do-ip6: no",
                 '  username: ""', '  chroot: ""', f'  directory: "{root}"', f'  pidfile: "{root}/unbound.pid"',
                 "  use-syslog: no", f'  logfile: "{root}/unbound.log"', "  verbosity: 1", "  val-log-level: 2",
                 "  do-not-query-localhost: no", '  module-config: "validator iterator"', "  qname-minimisation: no",
                 f'  trust-anchor-file: "{anchor_file}"', "  access-control: 127.0.0.0/8 allow", "  num-threads: 1",
                 '  local-zone: "test." nodefault']  # RFC 6761 names are answered locally by default
        for z in list(zones) + ["."]:
            lines += ["stub-zone:", f'  name: "{z}"', f"  stub-addr: 127.0.0.1@{nsd_port}"]
        with open(conf, "w") as f:
            f.write("\n".join(lines) + "\n")
        subprocess.run(["unbound-checkconf", conf], check=True, capture_output=True)
        self.proc = subprocess.Popen(["unbound", "-d", "-c", conf], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        self.root = root

        def answers():
            p = subprocess.run(["drill", "-D", "-p", str(self.port), "@127.0.0.1", zones[0], "SOA"], capture_output=True, text=True)
            return p.returncode == 0 and "NOERROR" in p.stdout and " ad " in p.stdout.split("flags:")[1].split(";")[0] + " "

        wait_for(answers, timeout=30, what="unbound to validate " + zones[0])

    def close(self):
        self.proc.terminate()
        self.proc.wait(timeout=10)


def make_ca(directory, name):
    """A CA certificate and key (openssl CLI), for DANE-TA tests."""
    cert, key = os.path.join(directory, name + ".pem"), os.path.join(directory, name + ".key")
    subprocess.run(["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes",
                    "-keyout", key, "-out", cert, "-days", "2", "-subj", f"/CN={name}",
                    "-addext", "basicConstraints=critical,CA:TRUE", "-addext", "keyUsage=critical,keyCertSign,cRLSign"],
                   check=True, capture_output=True)
    return cert, key


def make_issued(directory, name, dns_names, ca_cert, ca_key):
    """A leaf certificate for `dns_names` issued by the CA; returns (chain file: leaf + CA, key)."""
    key, csr, cert = (os.path.join(directory, name + ext) for ext in (".key", ".csr", ".pem"))
    ext = os.path.join(directory, name + ".ext")
    with open(ext, "w") as f:
        f.write("basicConstraints=CA:FALSE\nsubjectAltName=" + ",".join("DNS:" + n for n in dns_names) + "\n")
    subprocess.run(["openssl", "req", "-new", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes",
                    "-keyout", key, "-out", csr, "-subj", f"/CN={dns_names[0]}"], check=True, capture_output=True)
    subprocess.run(["openssl", "x509", "-req", "-in", csr, "-CA", ca_cert, "-CAkey", ca_key, "-CAcreateserial",
                    "-days", "2", "-out", cert, "-extfile", ext], check=True, capture_output=True)
    chain = os.path.join(directory, name + "-chain.pem")
    with open(chain, "w") as out:
        for part in (cert, ca_cert):
            with open(part) as f:
                out.write(f.read())
    return chain, key


def cert_der(path):
    return subprocess.run(["openssl", "x509", "-in", path, "-outform", "DER"], capture_output=True, check=True).stdout


def spki_sha256(path):
    pub = subprocess.run(["openssl", "x509", "-in", path, "-pubkey", "-noout"], capture_output=True, check=True).stdout
    spki = subprocess.run(["openssl", "pkey", "-pubin", "-outform", "DER"], input=pub, capture_output=True, check=True).stdout
    return hashlib.sha256(spki).hexdigest()


class Dane(unittest.TestCase):
    """DANE (RFC 7672): a DNSSEC-signed zone (dnssec-signzone) served by NSD,
    validated by unbound. MX hosts, one Sink each:
      mx          TLSA 3 1 1 of its self-signed certificate           -> delivered
      mx.bad      TLSA 3 1 1 that matches nothing                      -> not delivered
      mx.ta       TLSA 2 0 1 of a CA; leaf issued by it, CA sent too   -> delivered
      mx.mitm     TLSA 2 0 1 of the CA; a self-signed leaf with the
                  right name, the real CA certificate appended         -> not delivered
      mx.wrongname TLSA 2 0 1 of the CA; leaf issued for another name  -> not delivered
      mx.ee       TLSA 3 1 1 of a leaf issued for another name          -> delivered (no name check)
      mx.pkix     only PKIX-TA(0)/PKIX-EE(1) records (unusable)         -> delivered over TLS
      mx.plain    no TLSA record, a certificate for another name        -> delivered (opportunistic)
    (mx.pkix and mx.plain show the certificate made for mx.ta: names are not checked there.)"""

    @classmethod
    def setUpClass(cls):
        cls.tmp = tempfile.mkdtemp(prefix="postern-dane-")
        os.chmod(cls.tmp, 0o755)
        cls.mx_port = free_port()
        cert, key = os.path.join(cls.tmp, "mx.pem"), os.path.join(cls.tmp, "mx.key")
        make_cert(cert, key, ["mx.dane.test", "mx.bad.dane.test"])
        digest = spki_sha256(cert)
        ca_cert, ca_key = make_ca(cls.tmp, "dane-ca")
        ca_digest = hashlib.sha256(cert_der(ca_cert)).hexdigest()
        ta_chain, ta_key = make_issued(cls.tmp, "ta", ["mx.ta.dane.test"], ca_cert, ca_key)
        wrong_chain, wrong_key = make_issued(cls.tmp, "wrongname", ["elsewhere.test"], ca_cert, ca_key)
        ee_chain, ee_key = make_issued(cls.tmp, "ee", ["unrelated.test"], ca_cert, ca_key)
        # The man in the middle: his own key, a self-signed certificate with the right name,
        # and the real CA's certificate (public) appended, which matches the TLSA record.
        mitm_cert, mitm_key = os.path.join(cls.tmp, "mitm.pem"), os.path.join(cls.tmp, "mitm.key")
        make_cert(mitm_cert, mitm_key, ["mx.mitm.dane.test"])
        mitm_chain = os.path.join(cls.tmp, "mitm-chain.pem")
        with open(mitm_chain, "w") as out:
            for part in (mitm_cert, ca_cert):
                with open(part) as f:
                    out.write(f.read())
        p = cls.mx_port
        text = zone("dane.test", ["@ IN MX 10 mx", "mx IN A 127.0.0.10", f"_{p}._tcp.mx IN TLSA 3 1 1 {digest}",
                                  "bad IN MX 10 mx.bad", "mx.bad IN A 127.0.0.11",
                                  f"_{p}._tcp.mx.bad IN TLSA 3 1 1 {'00' * 32}",
                                  "ta IN MX 10 mx.ta", "mx.ta IN A 127.0.0.12", f"_{p}._tcp.mx.ta IN TLSA 2 0 1 {ca_digest}",
                                  "mitm IN MX 10 mx.mitm", "mx.mitm IN A 127.0.0.13", f"_{p}._tcp.mx.mitm IN TLSA 2 0 1 {ca_digest}",
                                  "wrongname IN MX 10 mx.wrongname", "mx.wrongname IN A 127.0.0.14",
                                  f"_{p}._tcp.mx.wrongname IN TLSA 2 0 1 {ca_digest}",
                                  "ee IN MX 10 mx.ee", "mx.ee IN A 127.0.0.15", f"_{p}._tcp.mx.ee IN TLSA 3 1 1 {spki_sha256(ee_chain)}",
                                  "pkix IN MX 10 mx.pkix", "mx.pkix IN A 127.0.0.16", f"_{p}._tcp.mx.pkix IN TLSA 0 0 1 {ca_digest}",
                                  f"_{p}._tcp.mx.pkix IN TLSA 1 1 1 {digest}",
                                  "plain IN MX 10 mx.plain", "mx.plain IN A 127.0.0.17"])
        unsigned = os.path.join(cls.tmp, "dane.test.zone")
        with open(unsigned, "w") as f:
            f.write(text)
        keys = os.path.join(cls.tmp, "keys")
        os.makedirs(keys)
        for extra in (["-f", "KSK"], []):
            subprocess.run(["dnssec-keygen", "-q", "-K", keys, "-a", "ECDSAP256SHA256", *extra, "-n", "ZONE", "dane.test"],
                           check=True, capture_output=True)
        signed = os.path.join(cls.tmp, "dane.test.signed")
        subprocess.run(["dnssec-signzone", "-q", "-S", "-K", keys, "-d", cls.tmp, "-o", "dane.test", "-f", signed, unsigned],
                       check=True, capture_output=True)
        anchor = os.path.join(cls.tmp, "anchor.key")
        with open(anchor, "w") as out:
            for name in os.listdir(keys):
                if name.endswith(".key"):
                    with open(os.path.join(keys, name)) as f:
                        for line in f:
                            if " 257 " in line and not line.startswith(";"):
                                out.write(line)
        with open(signed) as f:
            cls.nsd = Nsd({"dane.test": f.read()})
        cls.unbound = Unbound(cls.tmp, cls.nsd.port, ["dane.test"], anchor)
        def server_tls(chain, private_key):
            ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
            ctx.load_cert_chain(chain, private_key)  # sent as listed, leaf first
            return ctx

        tls = server_tls(cert, key)
        cls.good = Sink("127.0.0.10", cls.mx_port, "accept", tls=tls)
        cls.bad = Sink("127.0.0.11", cls.mx_port, "accept", tls=tls)
        cls.ta = Sink("127.0.0.12", cls.mx_port, "accept", tls=server_tls(ta_chain, ta_key))
        cls.mitm = Sink("127.0.0.13", cls.mx_port, "accept", tls=server_tls(mitm_chain, mitm_key))
        cls.wrongname = Sink("127.0.0.14", cls.mx_port, "accept", tls=server_tls(wrong_chain, wrong_key))
        cls.ee = Sink("127.0.0.15", cls.mx_port, "accept", tls=server_tls(ee_chain, ee_key))
        cls.pkix = Sink("127.0.0.16", cls.mx_port, "accept", tls=server_tls(ta_chain, ta_key))
        cls.plain = Sink("127.0.0.17", cls.mx_port, "accept", tls=server_tls(ta_chain, ta_key))
        cls.a = Instance(domain="example.test")
        for k, v in {"dns.servers": f"127.0.0.1:{cls.unbound.port}", "outbound.mx_port": str(cls.mx_port),
                     "queue.retry_min": "1s", "queue.retry_max": "2s", "outbound.connect_timeout": "3s",
                     "outbound.command_timeout": "5s", "queue.delay_warning": "0", "outbound.mta_sts": "false"}.items():
            cls.a.set_conf(k, v)
        cls.a.start("postern-smtpd")
        cls.a.start("postern-queued")

    @classmethod
    def tearDownClass(cls):
        for sink in (cls.good, cls.bad, cls.ta, cls.mitm, cls.wrongname, cls.ee, cls.pkix, cls.plain):
            sink.close()
        cls.a.close()
        cls.unbound.close()
        cls.nsd.close()
        shutil.rmtree(cls.tmp, ignore_errors=True)

    def send(self, rcpt, subject):
        msg = f"From: alice@example.test\r\nTo: {rcpt}\r\nSubject: {subject}\r\n\r\nHi.\r\n"
        with smtplib.SMTP("127.0.0.1", self.a.port("postern-smtpd", "submission"), timeout=30) as s:
            s.starttls(context=self.a.client_tls_context())
            s.login("alice@example.test", "alice-password-1")
            s.sendmail("alice@example.test", [rcpt], msg.encode())

    def test_tlsa_match_delivers(self):
        # The certificate is self-signed for mx.dane.test: PKIX would fail, the TLSA record vouches for it.
        self.send("x@dane.test", "dane good")
        wait_for(lambda: self.good.messages, timeout=60, what="delivery under DANE")
        self.assertIn(b"Subject: dane good", self.good.messages[0][2])
        # The sink stores the message before it answers 250; the runner logs once it has the answer.
        pattern = re.compile(r"delivery.remote .*to=x@dane.test .*tls=TLSv1\.[23] .*tls_policy=dane status=sent")
        wait_for(lambda: pattern.search(self.a.log()), timeout=30, what="the DANE delivery in the log")

    def test_tlsa_mismatch_is_not_delivered(self):
        self.send("y@bad.dane.test", "dane bad")
        out = wait_for(lambda: (lambda q: q if "matches no TLSA record" in q else None)(self.a.ctl("queue", "list").stdout),
                       timeout=60, what="the DANE refusal in the queue")
        self.assertIn("y@bad.dane.test", out)
        self.assertEqual(self.bad.messages, [])

    def refusal_in_queue(self, rcpt, host):
        """Waits until the queue shows a DANE refusal for `rcpt` at `host`; returns that text."""
        def found():
            q = self.a.ctl("queue", "list").stdout
            return q if rcpt in q and f"DANE: the certificate of {host}" in q else None
        return wait_for(found, timeout=60, what=f"the DANE refusal for {rcpt}")

    def delivered(self, sink, rcpt, subject):
        wait_for(lambda: any(subject.encode() in m[2] for m in sink.messages), timeout=60, what=f"delivery to {rcpt}")
        pattern = re.compile(r"delivery.remote .*to=" + re.escape(rcpt) + r" .*tls=TLSv1\.[23] .*status=sent")
        return wait_for(lambda: pattern.search(self.a.log()), timeout=30, what=f"the delivery of {rcpt} in the log").group(0)

    def test_dane_ta_chain_to_the_anchor_delivers(self):
        self.send("x@ta.dane.test", "dane ta good")
        line = self.delivered(self.ta, "x@ta.dane.test", "dane ta good")
        self.assertIn("verified=yes", line)
        self.assertIn("dane=DANE-TA:1", line)  # matched the CA, one below the leaf

    def test_dane_ta_man_in_the_middle_is_refused(self):
        # Issue 16 defect 7: the real CA's certificate in the chain matched the TLSA record and
        # was enough; the self-signed leaf never chained to it.
        self.send("x@mitm.dane.test", "dane mitm")
        self.refusal_in_queue("x@mitm.dane.test", "mx.mitm.dane.test")
        self.assertEqual(self.mitm.messages, [])  # refused right after the handshake, before any command

    def test_dane_ta_name_mismatch_is_refused(self):
        self.send("x@wrongname.dane.test", "dane wrong name")
        out = self.refusal_in_queue("x@wrongname.dane.test", "mx.wrongname.dane.test")
        self.assertIn("hostname mismatch", out)
        self.assertEqual(self.wrongname.messages, [])

    def test_dane_ee_ignores_the_name(self):
        self.send("x@ee.dane.test", "dane ee any name")
        line = self.delivered(self.ee, "x@ee.dane.test", "dane ee any name")
        self.assertIn("dane=DANE-EE:0", line)

    def test_only_pkix_tlsa_records_fall_back_to_tls(self):
        # RFC 7672 3.1.3: PKIX-TA/PKIX-EE are unusable for SMTP; with no usable record the
        # delivery goes ahead over TLS without authentication (2.2), instead of failing.
        self.send("x@pkix.dane.test", "dane pkix only")
        line = self.delivered(self.pkix, "x@pkix.dane.test", "dane pkix only")
        self.assertIn("tls_policy=\"dane (no usable TLSA record)\"", line)

    def test_opportunistic_tls_takes_any_certificate(self):
        # RFC 7435: without DANE or MTA-STS a certificate for another name is still used
        # (Qt reports the mismatch even when told not to verify; it used to end the delivery).
        self.send("x@plain.dane.test", "opportunistic other name")
        line = self.delivered(self.plain, "x@plain.dane.test", "opportunistic other name")
        self.assertIn("verified=no", line)
        self.assertIn("tls_policy=opportunistic", line)


if __name__ == "__main__":
    unittest.main(verbosity=2)
