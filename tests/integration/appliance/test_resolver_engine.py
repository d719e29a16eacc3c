"""The supervisor runs the bundled resolver (Debian's unbound) when dns.resolver = bundled and
dns.servers is empty: configuration generated from postern.conf into <config>/dns/unbound.conf
(root-owned), unbound as the daemons' user, listening on dns.resolver_listen (loopback) only,
ready when its control socket in <run>/dns accepts. A forward zone of the generated
configuration (dns.forward_zones) points at an NSD on loopback: a query through unbound
resolves a name of it, Postern's own DNS (posternctl dns lookup: makeResolver, the same
configuredDnsServers the daemons use) gets the answer through unbound, and unbound's cache
answers once NSD is gone. `posternctl status` names the resolver; dns.resolver = system or
dns.servers runs no unbound; stopping the appliance stops it."""

import json
import os
import socket
import subprocess
import unittest

from postern_testlib import Instance, Nsd, free_port, wait_for

ZONE = """$ORIGIN resolver.test.
$TTL 3600
@    IN SOA ns1 hostmaster 1 3600 600 86400 300
@    IN NS  ns1
ns1  IN A   127.0.0.1
host IN A   192.0.2.44
@    IN MX  10 mx.resolver.test.
mx   IN A   192.0.2.45
"""


def drill(port, name, rtype):
    p = subprocess.run(["drill", "-p", str(port), "@127.0.0.1", name, rtype], capture_output=True, text=True, timeout=20)
    return p.stdout


class ResolverEngine(unittest.TestCase):
    def setUp(self):
        self.nsd = Nsd({"resolver.test.": ZONE})
        self.port = free_port(socket.SOCK_DGRAM)
        self.inst = Instance(conf={"dns.resolver": "bundled", "dns.resolver_listen": f"127.0.0.1:{self.port}",
                                   "dns.forward_zones": f"resolver.test={self.nsd.server}"})
        self.status_path = os.path.join(self.inst.run_dir, "postern-appliance.status")

    def tearDown(self):
        self.inst.close()
        self.nsd.close()

    def services(self):
        with open(self.status_path) as f:
            return {s["name"]: s for s in json.load(f)["services"]}

    def test_bundled_resolver_serves_postern(self):
        self.inst.start("postern-appliance")
        wait_for(lambda: self.services()["unbound"]["state"] == "running", timeout=60, interval=0.1, what="unbound to run")
        conf_path = os.path.join(self.inst.config_dir, "dns", "unbound.conf")
        st = os.stat(conf_path)
        self.assertEqual(st.st_uid, os.geteuid())
        with open(conf_path) as f:
            conf = f.read()
        self.assertIn(f"interface: 127.0.0.1@{self.port}\n", conf)
        self.assertIn(f'forward-addr: {self.nsd.server.replace(":", "@")}\n', conf)
        pid = self.services()["unbound"]["pid"]
        if os.geteuid() == 0:
            with open(f"/proc/{pid}/status") as f:
                uid = [line.split()[1] for line in f if line.startswith("Uid:")][0]
            self.assertNotEqual(uid, "0", "unbound runs as root")

        # A query through unbound resolves a name of the NSD zone.
        out = drill(self.port, "host.resolver.test", "A")
        self.assertIn("NOERROR", out)
        self.assertRegex(out, r"host\.resolver\.test\.\s+\d+\s+IN\s+A\s+192\.0\.2\.44")
        # Only loopback: nothing listens on the other addresses of the host.
        with open("/proc/net/udp") as f:
            udp = f.read()
        bound = [line.split()[1] for line in udp.splitlines()[1:] if line.split()[1].endswith(":%04X" % self.port)]
        self.assertEqual(bound, ["0100007F:%04X" % self.port], bound)

        # Postern's own DNS (no dns.servers) goes through it.
        p = self.inst.ctl("dns", "lookup", "resolver.test", "MX")
        self.assertIn(";; status: ok", p.stdout.lower())
        self.assertRegex(p.stdout, r"resolver\.test\.\s+\d+\s+IN\s+MX\s+10 mx\.resolver\.test\.")
        status = self.inst.ctl("status", check=False).stdout
        self.assertIn(f"DNS resolver: bundled unbound on 127.0.0.1:{self.port}", status)
        self.assertRegex(status, r"(?m)^  unbound\s+running")

        # Cached: NSD stopped, the same name still resolves through unbound (and Postern).
        self.nsd.close()
        p = self.inst.ctl("dns", "lookup", "resolver.test", "MX")
        self.assertRegex(p.stdout, r"IN\s+MX\s+10 mx\.resolver\.test\.")

        self.assertEqual(self.inst.stop("postern-appliance"), 0)
        self.assertFalse(os.path.exists(f"/proc/{pid}"), "unbound left running")

    def test_system_or_servers_run_no_resolver(self):
        for key, value, reason in (("dns.resolver", "system", "system"), ("dns.servers", self.nsd.server, "dns.servers")):
            with self.subTest(key=key):
                self.inst.set_conf("dns.resolver", "bundled")
                self.inst.set_conf(key, value)
                self.inst.start("postern-appliance")
                self.assertEqual(self.services()["unbound"]["state"], "disabled")
                status = self.inst.ctl("status", check=False).stdout
                self.assertIn(f"DNS resolver: {'the system' if reason == 'system' else 'dns.servers'}", status)
                self.assertEqual(self.inst.stop("postern-appliance"), 0)
                self.inst.set_conf(key, "bundled" if key == "dns.resolver" else "")


if __name__ == "__main__":
    unittest.main(verbosity=2)
