"""posternctl check against running daemons: every listener ok with a real
login; a wrong password, a certificate for the wrong name and an open relay
(a stand-in server that accepts anything) are reported as FAIL."""

import os
import signal
import socketserver
import ssl
import threading
import unittest

from postern_testlib import Instance, free_port, make_cert, wait_for


class OpenRelay:
    """An SMTP server with STARTTLS that accepts every recipient."""

    def __init__(self, cert, key):
        self.port = free_port()
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        ctx.load_cert_chain(cert, key)

        class Handler(socketserver.StreamRequestHandler):
            def handle(self):
                self.wfile.write(b"220 relay ESMTP\r\n")
                tls = False
                while True:
                    line = self.rfile.readline()
                    if not line:
                        return
                    verb = line.split(b" ")[0].strip().upper()
                    if verb == b"EHLO":
                        self.wfile.write(b"250-relay\r\n" + (b"250-AUTH PLAIN\r\n" if tls else b"250-STARTTLS\r\n") + b"250 8BITMIME\r\n")
                    elif verb == b"STARTTLS":
                        self.wfile.write(b"220 go\r\n")
                        self.wfile.flush()
                        try:
                            self.request = ctx.wrap_socket(self.request, server_side=True)
                        except (ssl.SSLError, OSError):
                            return
                        self.rfile, self.wfile = self.request.makefile("rb"), self.request.makefile("wb")
                        tls = True
                        continue
                    elif verb == b"QUIT":
                        self.wfile.write(b"221 bye\r\n")
                        self.wfile.flush()
                        return
                    else:
                        self.wfile.write(b"250 ok\r\n")
                    self.wfile.flush()

        class Server(socketserver.ThreadingTCPServer):
            allow_reuse_address = True
            daemon_threads = True

        self.server = Server(("127.0.0.1", self.port), Handler)
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self):
        self.server.shutdown()
        self.server.server_close()


class Check(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.inst = Instance(domain="example.test")
        for program in ("postern-smtpd", "postern-imapd", "postern-pop3d", "postern-sieved", "postern-webd"):
            cls.inst.start(program)
        cls.pw = os.path.join(cls.inst.root, "pw")
        with open(cls.pw, "w") as f:
            f.write("alice-password-1\n")

    @classmethod
    def tearDownClass(cls):
        cls.inst.close()

    def check(self, *args):
        return self.inst.ctl("check", *args, check=False)

    def test_all_ok_with_login(self):
        p = self.check("--user", "alice@example.test", "--password-file", self.pw)
        self.assertEqual(p.returncode, 0, p.stdout + p.stderr)
        out = p.stdout
        self.assertIn("all listeners ok", out)
        for name in ("smtp", "submission", "submissions", "imap", "imaps", "pop3", "pop3s", "https", "sieve"):
            self.assertRegex(out, rf"(?m)^ok    {name}\s")
        self.assertIn("refuses to relay (5", out)
        self.assertEqual(out.count("login as alice@example.test"), 7)  # 2 SMTP + 2 IMAP + 2 POP3 + ManageSieve
        self.assertIn("certificate for mail.example.test valid", out)
        self.assertIn("warn: certificate is not from a trusted CA", out)  # the test certificate is self-signed
        self.assertNotIn("alice-password-1", out)

    def test_metrics_include_daemon_counters(self):
        import urllib.request
        self.check("--user", "alice@example.test", "--password-file", self.pw)
        url = f"http://127.0.0.1:{self.inst.port('postern-webd', 'http')}/metrics"

        def metrics():
            body = urllib.request.urlopen(url, timeout=10).read().decode()
            want = ['postern_connections_total{program="postern-smtpd",listener="submission"}',
                    'postern_tls_sessions_total{program="postern-imapd",listener="imaps",version="TLSv1.3"}',
                    'postern_auth_total{program="postern-pop3d",protocol="pop3",result="ok"}']
            return body if all(w in body for w in want) else None

        try:
            body = wait_for(metrics, timeout=30, interval=0.5, what="daemon counters in /metrics (flushed every 5 s)")
        except TimeoutError:
            print(urllib.request.urlopen(url, timeout=10).read().decode())
            raise
        for line in body.splitlines():
            if line and not line.startswith("#"):
                float(line.rsplit(" ", 1)[1])

    def test_wrong_password_fails(self):
        bad = os.path.join(self.inst.root, "bad")
        with open(bad, "w") as f:
            f.write("wrong\n")
        p = self.check("--user", "alice@example.test", "--password-file", bad)
        self.assertEqual(p.returncode, 1)
        self.assertRegex(p.stdout, r"FAIL: login as alice@example.test failed")

    def test_open_relay_is_reported(self):
        relay = OpenRelay(os.path.join(self.inst.config_dir, "tls", "cert.pem"), os.path.join(self.inst.config_dir, "tls", "key.pem"))
        try:
            p = self.check("--target", f"smtp=127.0.0.1:{relay.port}")
            self.assertEqual(p.returncode, 1, p.stdout)
            self.assertIn("OPEN RELAY", p.stdout)
            self.assertIn("AUTH offered on port 25", p.stdout)
        finally:
            relay.close()

    def test_cert_status_and_install(self):
        st = self.inst.ctl("cert", "status", check=False)
        self.assertEqual(st.returncode, 0, st.stdout)
        self.assertRegex(st.stdout, r"names: .*mail\.example\.test")
        self.assertIn("self-signed", st.stdout)
        self.assertIn("missing: mta-sts.example.test", st.stdout)
        other = os.path.join(self.inst.root, "other")
        os.makedirs(other, exist_ok=True)
        make_cert(os.path.join(other, "a.pem"), os.path.join(other, "a.key"), ["mail.example.test", "mta-sts.example.test",
                                                                                "autoconfig.example.test"])
        make_cert(os.path.join(other, "b.pem"), os.path.join(other, "b.key"), ["mail.example.test"])
        make_cert(os.path.join(other, "c.pem"), os.path.join(other, "c.key"), ["elsewhere.test"])
        tls = os.path.join(self.inst.config_dir, "tls")
        saved = {n: open(os.path.join(tls, n), "rb").read() for n in ("cert.pem", "key.pem")}
        try:
            bad = self.inst.ctl("cert", "install", os.path.join(other, "a.pem"), os.path.join(other, "b.key"), check=False)
            self.assertEqual(bad.returncode, 1)
            self.assertIn("the private key does not belong to the certificate", bad.stderr)
            wrong = self.inst.ctl("cert", "install", os.path.join(other, "c.pem"), os.path.join(other, "c.key"), check=False)
            self.assertEqual(wrong.returncode, 1)
            self.assertIn("does not name mail.example.test", wrong.stderr)
            self.assertEqual(open(os.path.join(tls, "cert.pem"), "rb").read(), saved["cert.pem"])  # nothing changed
            ok = self.inst.ctl("cert", "install", os.path.join(other, "a.pem"), os.path.join(other, "a.key"))
            self.assertIn("installed", ok.stdout)
            self.assertEqual(open(os.path.join(tls, "cert.pem"), "rb").read(), open(os.path.join(other, "a.pem"), "rb").read())
            st = self.inst.ctl("cert", "status")
            self.assertNotIn("missing:", st.stdout)
        finally:
            for n, data in saved.items():
                with open(os.path.join(tls, n), "wb") as f:
                    f.write(data)

    def test_log_search_shows_whole_sessions(self):
        import smtplib
        with smtplib.SMTP("127.0.0.1", self.inst.port("postern-smtpd", "smtp"), timeout=10) as s:
            s.ehlo("searchable-client.example")
            s.sendmail("someone@remote-sender.example", ["alice@example.test"], b"Subject: x\r\n\r\nhi\r\n")
        out = self.inst.ctl("log", "search", "remote-sender.example").stdout
        lines = out.strip().splitlines()
        self.assertTrue(any("remote-sender.example" in l for l in lines), out)
        # The connect line of that session does not mention the term but belongs to it.
        self.assertTrue(any(" connect " in l and "listener=smtp" in l for l in lines), out)
        self.assertTrue(all("session=" in l or "id=" in l or "remote-sender.example" in l for l in lines), out)
        self.assertEqual(self.inst.ctl("log", "search", "no-such-thing-anywhere", check=False).returncode, 1)

    def test_wrong_certificate_is_reported(self):
        tls = os.path.join(self.inst.config_dir, "tls")
        saved = {n: open(os.path.join(tls, n), "rb").read() for n in ("cert.pem", "key.pem")}
        try:
            make_cert(os.path.join(tls, "cert.pem"), os.path.join(tls, "key.pem"), ["wrong.example.net"])
            if os.geteuid() == 0:
                self.inst._share_with_daemons()
            def reloads():
                return sum(1 for l in self.inst.log().splitlines() if "postern-smtpd[" in l and l.endswith(" reloaded"))
            before = reloads()
            self.inst.procs["postern-smtpd"].send_signal(signal.SIGHUP)
            wait_for(lambda: reloads() > before, timeout=20, what="smtpd reload")
            p = self.check()
            self.assertEqual(p.returncode, 1, p.stdout)
            self.assertRegex(p.stdout, r"FAIL: certificate does not name mail.example.test \(it names: wrong.example.net\)")
        finally:
            for n, data in saved.items():
                with open(os.path.join(tls, n), "wb") as f:
                    f.write(data)
            if os.geteuid() == 0:
                self.inst._share_with_daemons()
            self.inst.procs["postern-smtpd"].send_signal(signal.SIGHUP)


if __name__ == "__main__":
    unittest.main(verbosity=2)
