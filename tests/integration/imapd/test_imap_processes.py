"""postern-imapd with imap.processes = 3: the first process starts two workers on
the same listening sockets; connections land in more than one process; the
connection, per-address and per-user session limits count over all processes
(a shared file), a worker killed with SIGKILL is restarted and what it counted
is forgotten; SIGHUP reaches the workers; SIGTERM stops them all."""

import imaplib
import os
import re
import signal
import socket
import ssl
import subprocess
import unittest

from postern_testlib import Instance, wait_for


def children(pid):
    try:
        with open(f"/proc/{pid}/task/{pid}/children") as f:
            return sorted(int(x) for x in f.read().split())
    except FileNotFoundError:
        return []


def owner_of_connection(local_port, server_port):
    """The pid of the postern-imapd process holding the server side of the client's connection."""
    out = subprocess.run(["ss", "-Htnp", "state", "established", f"( sport = :{server_port} and dport = :{local_port} )"],
                         capture_output=True, text=True, check=True).stdout
    m = re.search(r"pid=(\d+)", out)
    return int(m.group(1)) if m else None


def server_sides_open(server_port):
    """Whether a postern-imapd process still holds the server side of a connection to the port."""
    out = subprocess.run(["ss", "-Htnp", "state", "connected", f"( sport = :{server_port} )"], capture_output=True, text=True,
                         check=True).stdout
    return "pid=" in out


class ImapProcesses(unittest.TestCase):
    def setUp(self):
        self.inst = Instance(conf={"imap.processes": "3", "imap.max_sessions_per_user": "4",
                                   "imap.max_connections_per_ip": "20"})
        self.inst.start("postern-imapd")
        self.master = self.inst.procs["postern-imapd"].pid
        self.imaps = self.inst.port("postern-imapd", "imaps")
        self.imap = self.inst.port("postern-imapd", "imap")
        self.ctx = self.inst.client_tls_context()
        self.workers = wait_for(lambda: (lambda c: c if len(c) == 2 else None)(children(self.master)),
                                timeout=10, what="two worker processes")
        self.open = []
        wait_for(lambda: len(re.findall(r" info ready ", self.inst.log())) >= 3, timeout=10, what="three processes to be ready")

    def tearDown(self):
        for c in self.open:
            try:
                c.shutdown()
            except OSError:
                pass
        self.inst.close()

    def connect(self):
        """A TLS connection (not logged in) and the pid of the process that serves it."""
        m = imaplib.IMAP4_SSL("127.0.0.1", self.imaps, ssl_context=self.ctx, timeout=30)
        self.open.append(m)
        pid = wait_for(lambda: owner_of_connection(m.sock.getsockname()[1], self.imaps), timeout=10,
                       what="the server side of the connection")
        return m, pid

    def spread_connections(self, n):
        """n connections that are not all in one process (connections are handed to
        whichever process accepts first, so retry until they are spread)."""
        for _ in range(20):
            conns = [self.connect() for _ in range(n)]
            if len({pid for _, pid in conns}) > 1:
                return conns
            for m, _ in conns:
                port = m.sock.getsockname()[1]
                m.shutdown()
                self.open.remove(m)
                wait_for(lambda: owner_of_connection(port, self.imaps) is None, timeout=10, what="the server to close")
        self.fail("every connection went to the same process 20 times in a row")

    def test_workers_share_the_ports_and_run_unprivileged(self):
        self.assertEqual(len(self.workers), 2)
        pids = {self.master, *self.workers}
        for pid in pids:
            with open(f"/proc/{pid}/cmdline", "rb") as f:
                self.assertIn(b"postern-imapd", f.read())
            if os.geteuid() == 0:
                with open(f"/proc/{pid}/status") as f:
                    uid_line = next(line for line in f if line.startswith("Uid:"))
                self.assertNotIn("\t0\t", uid_line + "\t", "a worker runs as root")
        served = {pid for _, pid in self.spread_connections(4)}
        self.assertTrue(served <= pids, served)
        self.assertGreater(len(served), 1)
        # Only the first process writes the ready file; each writes its own counters.
        run = os.listdir(self.inst.run_dir)
        self.assertIn("postern-imapd.ready", run)
        wait_for(lambda: {"postern-imapd.worker1.stats", "postern-imapd.worker2.stats"} <= set(os.listdir(self.inst.run_dir)),
                 timeout=10, what="the workers' stats files")

    def test_session_limit_counts_over_all_processes(self):
        conns = self.spread_connections(6)
        conns.sort(key=lambda c: c[1] == self.master)  # sessions in workers first: one of them is killed below
        results = []
        for m, pid in conns:
            try:
                m.login("alice@example.test", "alice-password-1")
                results.append(("ok", pid))
            except imaplib.IMAP4.error as e:
                self.assertIn("LIMIT", str(e))
                results.append(("limit", pid))
        # Counted per process, a 6-connection spread over two or three processes would let more than 4 in.
        self.assertEqual(sum(1 for r, _ in results if r == "ok"), 4, results)
        # A worker killed with SIGKILL: restarted, and the sessions it held no longer count.
        victim = next(pid for r, pid in results if r == "ok" and pid != self.master)
        held_by_victim = sum(1 for r, pid in results if r == "ok" and pid == victim)
        os.kill(victim, signal.SIGKILL)
        wait_for(lambda: (lambda c: c if len(c) == 2 and victim not in c else None)(children(self.master)),
                 timeout=15, what="the killed worker's replacement")
        # It zeroes the killed worker's counts when it starts, before it says "ready".
        wait_for(lambda: len(re.findall(r" info ready ", self.inst.log())) >= 4, timeout=15, what="the replacement to be ready")
        logged_in = 0
        for _ in range(held_by_victim):
            m, _ = self.connect()
            m.login("alice@example.test", "alice-password-1")
            logged_in += 1
        self.assertEqual(logged_in, held_by_victim)
        m, _ = self.connect()
        with self.assertRaises(imaplib.IMAP4.error) as err:
            m.login("alice@example.test", "alice-password-1")
        self.assertIn("LIMIT", str(err.exception))
        self.assertIn("worker.exited", self.inst.log())

    def test_connection_limit_per_address_counts_over_all_processes(self):
        # The kernel hands each connection to whichever process accepts first: it may give all
        # 20 to one process (about 1 run in 5 here). Then the limit was not tested across
        # processes; the attempt is made again (at most 5 times) rather than passing or failing
        # on the kernel's choice.
        for attempt in range(5):
            socks, greetings = [], []
            try:
                for _ in range(22):
                    s = socket.create_connection(("127.0.0.1", self.imap), timeout=10)
                    socks.append(s)
                    greetings.append(s.makefile("rb").readline())
                self.assertEqual(sum(1 for g in greetings if g.startswith(b"* OK")), 20, greetings)
                self.assertTrue(all(g.startswith(b"* BYE Too many connections") for g in greetings[20:]), greetings)
                owners = {owner_of_connection(s.getsockname()[1], self.imap) for s in socks[:20]}
                self.assertTrue(owners <= {self.master, *self.workers}, owners)
            finally:
                for s in socks:
                    s.close()
            if len(owners) > 1:
                break
            wait_for(lambda: not server_sides_open(self.imap), timeout=10)  # every slot given back
        self.assertGreater(len(owners), 1, "all 20 connections in one process, 5 times: the limit was not tested across processes")

    def test_metrics_sum_the_processes(self):
        import urllib.request
        self.inst.start("postern-webd")
        owners = set()
        for _ in range(8):
            with socket.create_connection(("127.0.0.1", self.imap), timeout=10) as s:
                self.assertTrue(s.makefile("rb").readline().startswith(b"* OK"))
                owners.add(owner_of_connection(s.getsockname()[1], self.imap))
        url = f"http://127.0.0.1:{self.inst.port('postern-webd', 'http')}/metrics"
        series = 'postern_connections_total{program="postern-imapd",listener="imap"}'

        def summed():
            lines = [ln for ln in urllib.request.urlopen(url, timeout=10).read().decode().splitlines() if ln.startswith(series + " ")]
            return lines if lines and lines[-1].endswith(" 8") else None

        lines = wait_for(summed, timeout=30, interval=0.5, what="8 imap connections in /metrics (stats are flushed every 5 s)")
        self.assertEqual(len(lines), 1, lines)  # one series, not one per process

    def test_reload_and_stop_reach_every_process(self):
        os.kill(self.master, signal.SIGHUP)
        wait_for(lambda: len(re.findall(r" info reloaded", self.inst.log())) >= 3, timeout=10, what="three processes to reload")
        workers = list(self.workers)
        self.assertEqual(self.inst.stop("postern-imapd"), 0)
        for pid in workers:
            wait_for(lambda: not os.path.exists(f"/proc/{pid}") or open(f"/proc/{pid}/stat").read().split()[2] == "Z",
                     timeout=15, what=f"worker {pid} to exit")
        self.assertEqual(len(re.findall(r" info stopped", self.inst.log())), 3)


if __name__ == "__main__":
    unittest.main()
