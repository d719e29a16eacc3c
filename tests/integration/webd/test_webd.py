"""postern-webd with real clients: curl and Python's http.client over HTTP and
HTTPS. The autoconfig XML is parsed as Thunderbird reads it; the MTA-STS
policy is checked against RFC 8461 3.2; bad requests get clear statuses."""

import http.client
import os
import socket
import ssl
import subprocess
import unittest
import xml.etree.ElementTree as ET

from postern_testlib import Instance, make_cert


class Webd(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.inst = Instance(domain="example.test", conf={"mta_sts.mode": "enforce"})
        cls.inst.ctl("domain", "add", "second.test")
        # The certificate names the web host names too, as the wizard's (and ACME's) does.
        make_cert(os.path.join(cls.inst.config_dir, "tls", "cert.pem"), os.path.join(cls.inst.config_dir, "tls", "key.pem"),
                  ["mail.example.test", "mta-sts.example.test", "autoconfig.example.test", "localhost"])
        os.makedirs(os.path.join(cls.inst.data_dir, "acme", "challenges"), exist_ok=True)
        with open(os.path.join(cls.inst.data_dir, "acme", "challenges", "tok_EN-1"), "w") as f:
            f.write("tok_EN-1.thumbprint")
        if os.geteuid() == 0:
            cls.inst._share_with_daemons()
        cls.inst.start("postern-webd")
        cls.http = cls.inst.port("postern-webd", "http")
        cls.https = cls.inst.port("postern-webd", "https")
        cls.ca = os.path.join(cls.inst.config_dir, "tls", "cert.pem")

    @classmethod
    def tearDownClass(cls):
        cls.inst.close()

    def curl(self, url, *args):
        p = subprocess.run(["curl", "-sS", "-o", "-", "-w", "\n%{http_code}", "--cacert", self.ca, *args, url],
                           capture_output=True, text=True, timeout=30)
        body, _, code = p.stdout.rpartition("\n")
        return int(code), body

    def request(self, method, path, https=False, host="mail.example.test", body=None, headers=None):
        if https:
            ctx = ssl.create_default_context(cafile=self.ca)
            ctx.check_hostname = False
            c = http.client.HTTPSConnection("127.0.0.1", self.https, context=ctx, timeout=10)
        else:
            c = http.client.HTTPConnection("127.0.0.1", self.http, timeout=10)
        h = {"Host": host}
        h.update(headers or {})
        c.request(method, path, body=body, headers=h)
        r = c.getresponse()
        data = r.read()
        c.close()
        return r, data

    def raw(self, data, https=False):
        s = socket.create_connection(("127.0.0.1", self.https if https else self.http), timeout=15)
        s.sendall(data)
        out = b""
        while True:
            chunk = s.recv(65536)
            if not chunk:
                break
            out += chunk
        s.close()
        return out

    def test_mta_sts_policy_over_https_with_curl(self):
        code, body = self.curl(f"https://mta-sts.example.test:{self.https}/.well-known/mta-sts.txt",
                               "--resolve", f"mta-sts.example.test:{self.https}:127.0.0.1")
        self.assertEqual(code, 200)
        lines = body.replace("\r\n", "\n").strip().split("\n")
        self.assertEqual(lines[0], "version: STSv1")
        fields = dict(l.split(": ", 1) for l in lines)
        self.assertEqual(fields["mode"], "enforce")
        self.assertEqual(fields["mx"], "mail.example.test")
        self.assertGreaterEqual(int(fields["max_age"]), 86400)
        r, _ = self.request("GET", "/.well-known/mta-sts.txt", https=True)
        self.assertEqual(r.getheader("Content-Type"), "text/plain")
        # Plain HTTP does not serve it (RFC 8461 3.3: HTTPS only).
        r, _ = self.request("GET", "/.well-known/mta-sts.txt")
        self.assertEqual(r.status, 404)

    def check_autoconfig(self, data, domain):
        root = ET.fromstring(data)
        self.assertEqual(root.tag, "clientConfig")
        prov = root.find("emailProvider")
        self.assertEqual(prov.get("id"), domain)
        self.assertEqual(sorted(d.text for d in prov.findall("domain")), ["example.test", "second.test"])
        servers = {}
        for s in prov.findall("incomingServer") + prov.findall("outgoingServer"):
            servers[(s.get("type"), s.find("socketType").text)] = s
            self.assertEqual(s.find("hostname").text, "mail.example.test")
            self.assertEqual(s.find("username").text, "%EMAILADDRESS%")
            self.assertEqual(s.find("authentication").text, "password-cleartext")
        want = {("imap", "SSL"): "993", ("imap", "STARTTLS"): "143", ("pop3", "SSL"): "995", ("pop3", "STARTTLS"): "110",
                ("smtp", "SSL"): "465", ("smtp", "STARTTLS"): "587"}
        self.assertEqual({k: v.find("port").text for k, v in servers.items()}, want)
        # Thunderbird takes the first incoming server as the default: implicit TLS IMAP.
        first = prov.find("incomingServer")
        self.assertEqual((first.get("type"), first.find("socketType").text), ("imap", "SSL"))

    def test_autoconfig_both_paths(self):
        for path in ("/mail/config-v1.1.xml?emailaddress=bob%40second.test",
                     "/.well-known/autoconfig/mail/config-v1.1.xml?emailaddress=bob%40second.test"):
            code, body = self.curl(f"http://127.0.0.1:{self.http}{path}", "-H", "Host: autoconfig.second.test")
            self.assertEqual(code, 200, path)
            self.check_autoconfig(body, "second.test")
        r, data = self.request("GET", "/mail/config-v1.1.xml", https=True)
        self.assertEqual(r.status, 200)
        self.check_autoconfig(data, "example.test")
        # A foreign or hostile address falls back to the primary domain, escaped.
        r, data = self.request("GET", "/mail/config-v1.1.xml?emailaddress=%3Cscript%3E%40evil.test")
        self.check_autoconfig(data, "example.test")

    def test_autodiscover(self):
        req = (b'<?xml version="1.0"?><Autodiscover xmlns="http://schemas.microsoft.com/exchange/autodiscover/outlook/'
               b'requestschema/2006"><Request><EMailAddress>alice@example.test</EMailAddress><AcceptableResponseSchema>'
               b'http://schemas.microsoft.com/exchange/autodiscover/outlook/responseschema/2006a</AcceptableResponseSchema>'
               b'</Request></Autodiscover>')
        r, data = self.request("POST", "/Autodiscover/Autodiscover.xml", https=True, body=req,
                               headers={"Content-Type": "text/xml"})
        self.assertEqual(r.status, 200)
        ns = {"a": "http://schemas.microsoft.com/exchange/autodiscover/outlook/responseschema/2006a"}
        root = ET.fromstring(data)
        protos = {p.find("a:Type", ns).text: p for p in root.iter("{%s}Protocol" % ns["a"])}
        self.assertEqual(set(protos), {"IMAP", "POP3", "SMTP"})
        self.assertEqual(protos["IMAP"].find("a:Port", ns).text, "993")
        self.assertEqual(protos["SMTP"].find("a:Port", ns).text, "465")
        self.assertEqual(protos["SMTP"].find("a:LoginName", ns).text, "alice@example.test")
        r, _ = self.request("GET", "/autodiscover/autodiscover.xml", https=True)
        self.assertEqual(r.status, 405)
        self.assertEqual(r.getheader("Allow"), "POST")

    def test_acme_challenge(self):
        code, body = self.curl(f"http://127.0.0.1:{self.http}/.well-known/acme-challenge/tok_EN-1")
        self.assertEqual((code, body.strip()), (200, "tok_EN-1.thumbprint"))
        code, _ = self.curl(f"http://127.0.0.1:{self.http}/.well-known/acme-challenge/unknown")
        self.assertEqual(code, 404)
        r, _ = self.request("GET", "/.well-known/acme-challenge/..%2F..%2Fetc%2Fpasswd")
        self.assertIn(r.status, (400, 404))

    def test_health_and_metrics(self):
        code, body = self.curl(f"https://127.0.0.1:{self.https}/health", "-k")
        self.assertEqual((code, body.strip()), (200, "ok"))
        code, body = self.curl(f"http://127.0.0.1:{self.http}/metrics")
        self.assertEqual(code, 200)
        self.assertIn('postern_queue_messages{state="deferred"} 0', body)
        self.assertRegex(body, r'postern_webd_responses_total\{route="health",code="200"\} [1-9]')
        for line in body.splitlines():
            if line and not line.startswith("#"):
                name, value = line.rsplit(" ", 1)
                float(value)  # every sample is a number (Prometheus text format)

    def test_bad_requests(self):
        cases = [
            (b"GARBAGE\r\n\r\n", 400),
            (b"GET /health HTTP/2.0\r\nHost: x\r\n\r\n", 505),
            (b"GET /health HTTP/1.1\r\n\r\n", 400),                                  # no Host
            (b"GET /" + b"a" * 9000 + b" HTTP/1.1\r\nHost: x\r\n\r\n", 414),
            (b"GET /health HTTP/1.1\r\nHost: x\r\n" + b"X-A: b\r\n" * 101 + b"\r\n", 431),
            (b"GET /health HTTP/1.1\r\nHost: x\r\nX: " + b"y" * 17000 + b"\r\n\r\n", 431),
            (b"POST /autodiscover/autodiscover.xml HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n", 501),
            (b"POST /autodiscover/autodiscover.xml HTTP/1.1\r\nHost: x\r\nContent-Length: 999999\r\n\r\n", 413),
            (b"GET /health HTTP/1.1\r\nHost: x\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\n", 400),
            (b"DELETE /health HTTP/1.1\r\nHost: x\r\n\r\n", 405),
            (b"GET /nothing HTTP/1.1\r\nHost: x\r\n\r\n", 404),
            (b"GET http://evil/ HTTP/1.1\r\nHost: x\r\n\r\n", 400),
        ]
        for req, code in cases:
            out = self.raw(req)
            self.assertTrue(out.startswith(b"HTTP/1.1 %d " % code), (req[:60], out[:200]))
        # Still alive and answering.
        self.assertEqual(self.curl(f"http://127.0.0.1:{self.http}/health")[0], 200)

    def test_slow_client_times_out(self):
        s = socket.create_connection(("127.0.0.1", self.http), timeout=30)
        s.sendall(b"GET /health HTTP/1.1\r\n")
        out = s.recv(4096)
        s.close()
        self.assertTrue(out.startswith(b"HTTP/1.1 408 "), out)


if __name__ == "__main__":
    unittest.main(verbosity=2)
