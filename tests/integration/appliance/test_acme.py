"""ACME (RFC 8555) against Debian's pebble on loopback: posternctl cert renew
gets a certificate for the names that resolve (NSD), answering the HTTP-01
challenges through postern-webd; the daemons present it after a reload; a
second run with --if-due does nothing."""

import json
import os
import shutil
import signal
import socket
import ssl
import subprocess
import tempfile
import unittest

from postern_testlib import Instance, Nsd, free_port, make_cert, wait_for


def zone(origin, records):
    head = [f"$ORIGIN {origin}.", "$TTL 300", f"@ IN SOA ns.{origin}. hostmaster.{origin}. 1 3600 600 86400 300",
            f"@ IN NS ns.{origin}.", "ns IN A 127.0.0.1"]
    return "\n".join(head + records) + "\n"


class Acme(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.tmp = tempfile.mkdtemp(prefix="postern-acme-")
        os.chmod(cls.tmp, 0o755)
        cls.nsd = Nsd({"example.test": zone("example.test", ["mail IN A 127.0.0.1", "mta-sts IN A 127.0.0.1"])})
        cls.http_port = free_port()
        pebble_cert, pebble_key = os.path.join(cls.tmp, "pebble.pem"), os.path.join(cls.tmp, "pebble.key")
        make_cert(pebble_cert, pebble_key, ["localhost"])
        os.chmod(pebble_cert, 0o644)
        cls.acme_port = free_port()
        conf = {"pebble": {"listenAddress": f"127.0.0.1:{cls.acme_port}", "managementListenAddress": f"127.0.0.1:{free_port()}",
                           "certificate": pebble_cert, "privateKey": pebble_key, "httpPort": cls.http_port,
                           "tlsPort": free_port(), "ocspResponderURL": "", "externalAccountBindingRequired": False}}
        with open(os.path.join(cls.tmp, "pebble.json"), "w") as f:
            json.dump(conf, f)
        env = dict(os.environ, PEBBLE_VA_NOSLEEP="1", PEBBLE_WFE_NONCEREJECT="0")
        cls.log = open(os.path.join(cls.tmp, "pebble.log"), "wb")
        cls.pebble = subprocess.Popen(["pebble", "-config", os.path.join(cls.tmp, "pebble.json"), "-dnsserver", cls.nsd.server],
                                      stdout=cls.log, stderr=cls.log, env=env)

        def up():
            if cls.pebble.poll() is not None:
                raise AssertionError("pebble exited: " + open(os.path.join(cls.tmp, "pebble.log")).read())
            with socket.socket() as s:
                return s.connect_ex(("127.0.0.1", cls.acme_port)) == 0

        wait_for(up, timeout=30, what="pebble")
        cls.inst = Instance(domain="example.test", conf={
            "http.listen": f"127.0.0.1:{cls.http_port}", "dns.servers": cls.nsd.server, "acme.enabled": "true",
            "acme.directory": f"https://localhost:{cls.acme_port}/dir", "acme.ca_file": pebble_cert})
        cls.inst.start("postern-webd")
        cls.inst.start("postern-smtpd")

    @classmethod
    def tearDownClass(cls):
        cls.inst.close()
        cls.pebble.terminate()
        cls.pebble.wait(timeout=10)
        cls.log.close()
        cls.nsd.close()
        shutil.rmtree(cls.tmp, ignore_errors=True)

    def presented_issuer(self):
        ctx = ssl.create_default_context()
        ctx.check_hostname = False
        ctx.verify_mode = ssl.CERT_NONE
        with socket.create_connection(("127.0.0.1", self.inst.port("postern-smtpd", "submissions")), timeout=10) as raw:
            with ctx.wrap_socket(raw) as s:
                der = s.getpeercert(binary_form=True)
        pem = ssl.DER_cert_to_PEM_cert(der)
        return subprocess.run(["openssl", "x509", "-noout", "-issuer", "-ext", "subjectAltName"], input=pem, capture_output=True,
                              text=True, check=True).stdout

    def test_challenge_folder_link_is_not_followed(self):
        """posternctl cert renew runs as root and writes below data_dir, which the daemon
        user owns: a link planted in place of acme/ must not send root's writes elsewhere."""
        if os.geteuid() != 0:
            self.skipTest("the planted link is the daemon user's, the renewal root's")
        target = tempfile.mkdtemp(prefix="postern-rootonly-", dir=self.tmp)
        os.chmod(target, 0o700)
        acme = os.path.join(self.inst.data_dir, "acme")
        saved = acme + ".real"
        if os.path.lexists(acme):
            os.rename(acme, saved)
        os.symlink(target, acme)
        os.lchown(acme, 65534, 65534)  # as the daemon user would have made it
        before = (os.stat(target).st_mtime_ns, os.stat(target).st_uid, sorted(os.listdir(target)))
        try:
            p = self.inst.ctl("cert", "renew", check=False)
        finally:
            os.unlink(acme)
            if os.path.lexists(saved):
                os.rename(saved, acme)
        self.assertNotEqual(p.returncode, 0, p.stdout + p.stderr)
        self.assertIn(f"challenge folder: {acme} is a symbolic link", p.stderr)
        # Nothing was created, written or removed in the folder the link pointed to.
        self.assertEqual((os.stat(target).st_mtime_ns, os.stat(target).st_uid, sorted(os.listdir(target))), before)

    def test_issue_install_reload_and_not_due(self):
        p = self.inst.ctl("cert", "renew", check=False)
        self.assertEqual(p.returncode, 0, p.stdout + p.stderr)
        self.assertIn("skipping autoconfig.example.test (no address in DNS yet)", p.stdout)
        self.assertIn("acme: mail.example.test validated", p.stdout)
        self.assertIn("acme: mta-sts.example.test validated", p.stdout)
        self.assertIn("installed", p.stdout)
        status = self.inst.ctl("cert", "status", check=False).stdout
        self.assertIn("Pebble", status)
        self.assertNotIn("self-signed", status)
        self.assertEqual(os.listdir(os.path.join(self.inst.data_dir, "acme", "challenges")), [])  # cleaned up
        self.assertTrue(os.path.exists(os.path.join(self.inst.config_dir, "acme", "account.key")))
        # Running daemons notice the new files themselves (no SIGHUP: no supervisor runs here).
        presented = wait_for(lambda: (lambda p: p if "Pebble" in p else None)(self.presented_issuer()), timeout=30,
                             what="the new certificate on the submissions port")
        self.assertIn("Pebble", presented)
        self.assertIn("DNS:mail.example.test", presented)
        self.assertIn("DNS:mta-sts.example.test", presented)
        # The daily call from the supervisor: not due, nothing contacted.
        again = self.inst.ctl("cert", "renew", "--if-due")
        self.assertIn("not due", again.stdout)
        # Renewal (as when it is due): a new certificate replaces the first, served without a restart.
        serial = subprocess.run(["openssl", "x509", "-noout", "-serial", "-in", os.path.join(self.inst.config_dir, "tls", "cert.pem")],
                                capture_output=True, text=True, check=True).stdout
        renewed = self.inst.ctl("cert", "renew")
        self.assertIn("installed", renewed.stdout)
        serial2 = subprocess.run(["openssl", "x509", "-noout", "-serial", "-in", os.path.join(self.inst.config_dir, "tls", "cert.pem")],
                                 capture_output=True, text=True, check=True).stdout
        self.assertNotEqual(serial, serial2)
        self.assertIn("tls.reloaded", self.inst.log())


if __name__ == "__main__":
    unittest.main(verbosity=2)
