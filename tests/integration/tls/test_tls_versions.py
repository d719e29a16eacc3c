"""Every TLS listener of the appliance refuses TLS 1.0 and 1.1 and accepts
TLS 1.2 and 1.3 (RFC 8996; core/tls.h sets the minimum for the one shared
server context). Implicit TLS (465, 993, 995, 443) and STARTTLS (25, 143,
110) are tried.

The same old-protocol client context first connects to a TLS 1.1 server of
the test's own (Python's ssl with SECLEVEL 0), so a refusal below proves the
daemon refused, not that this machine's OpenSSL would not speak TLS 1.1 at all.
"""

import socket
import ssl
import threading
import unittest

from postern_testlib import Instance, make_cert

IMPLICIT = [("postern-smtpd", "submissions"), ("postern-imapd", "imaps"),
            ("postern-pop3d", "pop3s"), ("postern-webd", "https")]
# listener, how to ask for TLS after the greeting (None: no greeting line to read first)
STARTTLS = [("postern-smtpd", "smtp", b"EHLO client.test\r\n", b"STARTTLS\r\n", b"220 "),
            ("postern-imapd", "imap", None, b"a STARTTLS\r\n", b"a OK"),
            ("postern-pop3d", "pop3", None, b"STLS\r\n", b"+OK")]


def old_client_context(version):
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE
    ctx.set_ciphers("DEFAULT:@SECLEVEL=0")
    ctx.minimum_version = version
    ctx.maximum_version = version
    return ctx


def modern_client_context(version):
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE
    ctx.minimum_version = version
    ctx.maximum_version = version
    return ctx


def read_until(sock, marker, limit=65536):
    data = b""
    while marker not in data and len(data) < limit:
        chunk = sock.recv(4096)
        if not chunk:
            break
        data += chunk
    return data


class TlsVersions(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.inst = Instance()
        for program in ("postern-smtpd", "postern-imapd", "postern-pop3d", "postern-webd"):
            cls.inst.start(program)

    @classmethod
    def tearDownClass(cls):
        cls.inst.close()

    def handshake_implicit(self, program, listener, ctx):
        with socket.create_connection(("127.0.0.1", self.inst.port(program, listener)), timeout=10) as raw:
            with ctx.wrap_socket(raw) as tls:
                return tls.version()

    def handshake_starttls(self, program, listener, hello, command, ok, ctx):
        with socket.create_connection(("127.0.0.1", self.inst.port(program, listener)), timeout=10) as raw:
            greeting = read_until(raw, b"\r\n")
            self.assertTrue(greeting, f"{listener}: no greeting")
            if hello:
                raw.sendall(hello)
                read_until(raw, b"250 ")
            raw.sendall(command)
            answer = read_until(raw, b"\r\n")
            self.assertIn(ok, answer, f"{listener}: STARTTLS answered {answer!r}")
            with ctx.wrap_socket(raw) as tls:
                return tls.version()

    def test_control_this_client_speaks_tls_1_1(self):
        # A TLS 1.1 server of our own: the old-protocol context must be able to use it.
        import tempfile, os
        d = tempfile.mkdtemp(prefix="postern-test-tlsctl-")
        cert, key = os.path.join(d, "c.pem"), os.path.join(d, "k.pem")
        make_cert(cert, key, ["localhost"])
        server_ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        server_ctx.set_ciphers("DEFAULT:@SECLEVEL=0")
        server_ctx.minimum_version = ssl.TLSVersion.TLSv1_1
        server_ctx.maximum_version = ssl.TLSVersion.TLSv1_1
        server_ctx.load_cert_chain(cert, key)
        listener = socket.socket()
        listener.bind(("127.0.0.1", 0))
        listener.listen(1)

        def serve():
            conn, _ = listener.accept()
            try:
                with server_ctx.wrap_socket(conn, server_side=True):
                    pass
            except (ssl.SSLError, OSError):
                pass

        t = threading.Thread(target=serve)
        t.start()
        with socket.create_connection(listener.getsockname(), timeout=10) as raw:
            with old_client_context(ssl.TLSVersion.TLSv1_1).wrap_socket(raw) as tls:
                self.assertEqual(tls.version(), "TLSv1.1")
        t.join(10)
        listener.close()
        import shutil
        shutil.rmtree(d, ignore_errors=True)

    def test_old_versions_refused_on_implicit_tls(self):
        for program, listener in IMPLICIT:
            for version in (ssl.TLSVersion.TLSv1, ssl.TLSVersion.TLSv1_1):
                with self.subTest(listener=listener, version=version.name):
                    with self.assertRaises((ssl.SSLError, ConnectionResetError, BrokenPipeError)):
                        self.handshake_implicit(program, listener, old_client_context(version))

    def test_old_versions_refused_after_starttls(self):
        for program, listener, hello, command, ok in STARTTLS:
            for version in (ssl.TLSVersion.TLSv1, ssl.TLSVersion.TLSv1_1):
                with self.subTest(listener=listener, version=version.name):
                    with self.assertRaises((ssl.SSLError, ConnectionResetError, BrokenPipeError)):
                        self.handshake_starttls(program, listener, hello, command, ok, old_client_context(version))

    def test_tls_1_2_and_1_3_accepted(self):
        for version, name in ((ssl.TLSVersion.TLSv1_2, "TLSv1.2"), (ssl.TLSVersion.TLSv1_3, "TLSv1.3")):
            for program, listener in IMPLICIT:
                with self.subTest(listener=listener, version=name):
                    self.assertEqual(self.handshake_implicit(program, listener, modern_client_context(version)), name)
            for program, listener, hello, command, ok in STARTTLS:
                with self.subTest(listener=listener, version=name):
                    self.assertEqual(self.handshake_starttls(program, listener, hello, command, ok,
                                                             modern_client_context(version)), name)


if __name__ == "__main__":
    unittest.main()
