"""A newer image announced (update.announce_url, core/update_announcement.h) with the real
posternctl against real HTTP(S) servers on loopback:
  * no URL (the default): nothing is asked; `version` says so and `status` has no image line;
  * a JSON or text announcement of a newer version: `version` and `status` say "newer image X
    available"; an equal or older one: "up to date";
  * status caches the answer (no second request within a day); version asks every time;
  * hostile or broken answers (too large, terminal escapes in the notes, not a version, HTTP
    404, a redirect loop, a server that never answers, an untrusted TLS certificate) give one
    "cannot check" line, never a crash, never the hostile bytes on the terminal, and never a
    different exit code; the silent server is given up after the status timeout (5 s)."""

import http.server
import os
import re
import socket
import ssl
import subprocess
import tempfile
import threading
import time
import unittest

from postern_testlib import Instance

RUNNING = None  # the running version, read from `posternctl version`


class Server:
    """HTTP(S) on 127.0.0.1: path -> (status, headers, body); counts requests; remembers User-Agents."""

    def __init__(self, tls_context=None):
        self.routes = {}
        self.requests = []
        outer = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_GET(self):  # noqa: N802 - http.server's name
                outer.requests.append((self.path, self.headers.get("User-Agent")))
                status, headers, body = outer.routes.get(self.path, (404, {}, b"not here\n"))
                self.send_response(status)
                for k, v in headers.items():
                    self.send_header(k, v)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args):
                pass

        self.httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        if tls_context:
            self.httpd.socket = tls_context.wrap_socket(self.httpd.socket, server_side=True)
        self.port = self.httpd.server_address[1]
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)
        self.thread.start()

    def url(self, path, scheme="http"):
        return f"{scheme}://127.0.0.1:{self.port}{path}"

    def close(self):
        self.httpd.shutdown()
        self.httpd.server_close()


class UpdateAnnounce(unittest.TestCase):
    def setUp(self):
        self.inst = Instance(conf={"http.listen": "", "https.listen": ""})
        self.addCleanup(self.inst.close)
        self.server = Server()
        self.addCleanup(self.server.close)
        global RUNNING
        RUNNING = re.search(r"(?m)^postern (\S+)$", self.inst.ctl("version").stdout).group(1)

    def version(self):
        r = self.inst.ctl("version", check=False)
        self.assertEqual(r.returncode, 0, r.stdout + r.stderr)  # the check never changes the exit code
        return re.search(r"(?m)^newer image: (.*)$", r.stdout).group(1)

    def status(self):
        r = self.inst.ctl("status", check=False)
        m = re.search(r"(?m)^image: (.*)$", r.stdout)
        return (m.group(1) if m else None), r.returncode

    def serve(self, path, body, status=200, headers=None):
        self.server.routes[path] = (status, headers or {}, body if isinstance(body, bytes) else body.encode())
        return self.server.url(path)

    def test_no_url_asks_nobody(self):
        self.assertEqual(self.version(), "not checked (update.announce_url is empty; Postern never asks by itself)")
        line, _ = self.status()
        self.assertIsNone(line)
        self.assertEqual(self.server.requests, [])
        self.assertFalse(os.path.exists(os.path.join(self.inst.config_dir, "update-announcement.json")))

    def test_newer_then_up_to_date_and_the_cache(self):
        url = self.serve("/postern.json", '{"version": "999.0", "url": "https://example.org/postern-999", "notes": "big one"}')
        _, rc_without = self.status()
        self.inst.set_conf("update.announce_url", url)
        self.assertEqual(self.version(), f"newer image 999.0 available (running {RUNNING}): https://example.org/postern-999 (big one)")
        self.assertEqual(self.server.requests, [("/postern.json", f"Postern/{RUNNING}")])
        # status uses the result version just cached: no second request.
        line, rc = self.status()
        self.assertEqual(line, f"newer image 999.0 available (running {RUNNING}): https://example.org/postern-999 (big one)")
        self.assertEqual(rc, rc_without)  # information, never a failure
        self.assertEqual(len(self.server.requests), 1)
        # The announcement changes: status keeps the day-old answer, version asks again.
        self.serve("/postern.json", f"{RUNNING}\n")
        self.assertTrue(self.status()[0].startswith("newer image 999.0"))
        self.assertEqual(len(self.server.requests), 1)
        self.assertRegex(self.version(), rf"^up to date \(running {re.escape(RUNNING)}, announced {re.escape(RUNNING)}, checked \S+Z\)$")
        self.assertEqual(len(self.server.requests), 2)
        self.assertTrue(self.status()[0].startswith("up to date"))
        # A cache older than a day is asked again by status.
        cache = os.path.join(self.inst.config_dir, "update-announcement.json")
        with open(cache) as f:
            text = f.read()
        with open(cache, "w") as f:
            f.write(re.sub(r'"checked":"[^"]+"', '"checked":"2020-01-01T00:00:00Z"', text))
        self.serve("/postern.json", "v0.0.1 http://mirror.example/old\n")
        self.assertTrue(self.status()[0].startswith("up to date"))
        self.assertEqual(len(self.server.requests), 3)
        # A cache for another URL is not used.
        self.inst.set_conf("update.announce_url", self.serve("/other.txt", "1000.0\n"))
        self.assertTrue(self.status()[0].startswith("newer image 1000.0"))
        self.assertEqual(len(self.server.requests), 4)

    def test_hostile_and_broken_answers(self):
        cases = [
            ("/big", b"1000.0\n" + b" " * 5000, "larger than 4096 bytes"),
            ("/escape", b'{"version":"1000","notes":"\\u001b]0;owned\\u0007\\u001b[2J"}', "control characters"),
            ("/html", b"<html><body>Welcome to nginx!</body></html>", 'first line is not "VERSION [URL]"'),
            ("/word", b"<html>404</html>", "not a version"),
            ("/missing", None, "cannot check"),
            ("/loop", "redirect", "cannot check"),
        ]
        for path, body, expected in cases:
            with self.subTest(path=path):
                if body == "redirect":
                    self.server.routes[path] = (302, {"Location": self.server.url(path)}, b"")
                elif body is not None:
                    self.serve(path, body)
                self.inst.set_conf("update.announce_url", self.server.url(path))
                r = self.inst.ctl("version", check=False)
                self.assertEqual(r.returncode, 0, r.stdout + r.stderr)
                line = re.search(r"(?m)^newer image: (.*)$", r.stdout).group(1)
                self.assertTrue(line.startswith("cannot check for a newer image: "), line)
                self.assertIn(expected, line)
                self.assertNotIn("\x1b", r.stdout + r.stderr)
                self.assertNotIn("\x07", r.stdout + r.stderr)
        # A redirect loop ends after a few requests (kMaxRedirects 3 redirects followed; this Qt
        # sends 5 requests in all here), not in an endless loop.
        loops = len([p for p, _ in self.server.requests if p == "/loop"])
        self.assertGreaterEqual(loops, 2)
        self.assertLessEqual(loops, 5)
        # A failed check is cached (for an hour) too: status does not ask again at once.
        before = len(self.server.requests)
        line, _ = self.status()
        self.assertTrue(line.startswith("cannot check for a newer image: "), line)
        self.assertEqual(len(self.server.requests), before)

    def test_silent_server_is_given_up(self):
        silent = socket.socket()
        silent.bind(("127.0.0.1", 0))
        silent.listen(5)  # accepts (the kernel does) and never answers
        self.addCleanup(silent.close)
        self.inst.set_conf("update.announce_url", f"http://127.0.0.1:{silent.getsockname()[1]}/never")
        t0 = time.monotonic()
        line, _ = self.status()
        took = time.monotonic() - t0
        self.assertEqual(line.split(" (checked")[0],
                         f"cannot check for a newer image: http://127.0.0.1:{silent.getsockname()[1]}/never: no answer within 5 s")
        self.assertLess(took, 15)
        self.assertGreater(took, 4.5)

    def test_untrusted_tls_certificate_refused(self):
        tmp = tempfile.mkdtemp(prefix="postern-test-announce-")
        self.addCleanup(subprocess.run, ["rm", "-rf", tmp])
        key, cert = os.path.join(tmp, "key.pem"), os.path.join(tmp, "cert.pem")
        subprocess.run(["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes", "-keyout", key,
                        "-out", cert, "-days", "2", "-subj", "/CN=127.0.0.1", "-addext", "subjectAltName=IP:127.0.0.1"],
                       check=True, capture_output=True, timeout=60)
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        ctx.load_cert_chain(cert, key)
        tls = Server(tls_context=ctx)
        self.addCleanup(tls.close)
        tls.routes["/postern.json"] = (200, {}, b'{"version":"1000"}')
        self.inst.set_conf("update.announce_url", tls.url("/postern.json", "https"))
        line = self.version()
        self.assertTrue(line.startswith("cannot check for a newer image: https://127.0.0.1:"), line)
        self.assertNotIn("1000", line.split(": ", 1)[1].replace(tls.url("/postern.json", "https"), ""))
        self.assertEqual(tls.requests, [])  # the GET never left: the handshake was refused


if __name__ == "__main__":
    unittest.main(verbosity=2)
