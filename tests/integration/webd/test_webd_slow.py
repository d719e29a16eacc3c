"""postern-webd against a client that sends its request slowly (issue 16):
one header byte every 0.2 s (never idle for the 10 s idle limit) is answered
408 and disconnected when http.request_deadline (2 s here) has passed since it
connected; on the old code it held the connection for as long as it liked.
A prompt request on another connection meanwhile is served."""

import http.client
import socket
import time
import unittest

from postern_testlib import Instance


class WebdSlow(unittest.TestCase):
    def setUp(self):
        self.inst = Instance(conf={"http.request_deadline": "2s"})
        self.inst.start("postern-webd")
        self.http = self.inst.port("postern-webd", "http")

    def tearDown(self):
        self.inst.close()

    def test_trickled_request_gets_408_at_the_deadline(self):
        s = socket.create_connection(("127.0.0.1", self.http), timeout=10)
        s.sendall(b"GET /health HTTP/1.1\r\nHost: mail.example.test\r\nX-Slow: ")
        start = time.monotonic()
        answer = b""
        while time.monotonic() - start < 30:
            try:
                s.sendall(b"a")
            except (BrokenPipeError, ConnectionResetError):
                break
            s.settimeout(0.2)
            try:
                chunk = s.recv(4096)
            except socket.timeout:
                continue
            answer += chunk
            if not chunk or b"\r\n\r\n" in answer:
                break
            # (a prompt client is served meanwhile)
            c = http.client.HTTPConnection("127.0.0.1", self.http, timeout=10)
            c.request("GET", "/health", headers={"Host": "mail.example.test"})
            self.assertEqual(c.getresponse().status, 200)
            c.close()
        elapsed = time.monotonic() - start
        self.assertTrue(answer.startswith(b"HTTP/1.1 408 Request Timeout\r\n"), answer[:200])
        self.assertGreaterEqual(elapsed, 1.5)
        self.assertLess(elapsed, 15)
        s.close()
        c = http.client.HTTPConnection("127.0.0.1", self.http, timeout=10)
        c.request("GET", "/health", headers={"Host": "mail.example.test"})
        self.assertEqual(c.getresponse().status, 200)


if __name__ == "__main__":
    unittest.main()
