#!/usr/bin/python3
"""Inbound SMTP with spam filtering, end to end: Postern (postern-smtpd scanning with Rspamd's
normal worker) vs Postfix + Rspamd as a milter (Debian's rspamd proxy worker in milter mode,
self_scan, the stock setup) + Dovecot LMTP, and Postern without filtering.

One Rspamd runs for both stacks: Debian's stock rspamd.conf (every module Debian enables) with
one local folder of overrides: the normal worker on a unix socket (Postern), the proxy worker
in milter mode on a loopback port (Postfix), each with `count` workers (--workers), Bayes and
the other Redis users at a redis-server on a unix socket, DNS at a local unbound that answers
every name at once with "does not exist" (no Internet here; see BenchDns), used by both stacks'
scans and by Postern's own checks. So both stacks are filtered by the same configuration and
the same process.

Messages are realistic in size and shape (seeded, the same sequence for each stack): plain
text (about 60 %, 1-6 KB), multipart text + HTML (30 %, 8-40 KB), and with a base64 attachment
(10 %, 60-300 KB); about 20 KB on average. A Python asyncio client keeps N connections busy
(one message per transaction, several transactions per connection) and the rate is counted
from the first connection until every accepted message is in the recipient's Maildir (any
folder: Rspamd may send some to Junk). Postern answers 250 only after fsync; Postfix fsyncs its
queue file before 250, and Dovecot runs with mail_fsync = always.

The stacks are measured alternately at each level (Postern filtered, Postfix stack, Postern
unfiltered), --rounds times, and the median is reported with the ratio. Not a test: run by
hand, as root, after `appliance/scripts/install-deps.sh bench` and a build:

    POSTERN_BUILD_DIR=build tests/bench/smtp_filtering.py [--messages 600] [--concurrency 10,50] [--rounds 3]
"""

import argparse
import asyncio
import base64
import os
import random
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "integration", "lib"))
from postern_testlib import Instance, free_port, wait_for  # noqa: E402
from smtp_throughput import PostfixDovecot  # noqa: E402

WORDS = ("meeting report invoice project schedule budget family photos holiday weekend update review draft "
         "contract shipment order customer support question answer thanks regards tomorrow office lunch "
         "garden school football concert ticket flight hotel booking receipt payment account summary").split()


def text_block(rng, size):
    out = []
    n = 0
    while n < size:
        line = " ".join(rng.choice(WORDS) for _ in range(rng.randint(6, 14))).capitalize() + "."
        out.append(line)
        n += len(line) + 2
    return "\r\n".join(out)


def make_message(rng, i, rcpt):
    kind = rng.random()
    sender = f"{rng.choice(WORDS)}.{rng.choice(WORDS)}@sender{rng.randint(1, 40)}.test"
    head = (f"From: {sender}\r\nTo: {rcpt}\r\nSubject: {' '.join(rng.choice(WORDS) for _ in range(5))}\r\n"
            f"Date: Thu, 03 Dec 2026 10:{i % 60:02d}:00 +0000\r\nMessage-ID: <bench{i}.{rng.getrandbits(48):x}@{sender.split('@')[1]}>\r\n"
            "MIME-Version: 1.0\r\n")
    if kind < 0.6:
        body = text_block(rng, rng.randint(1000, 6000))
        return (head + "Content-Type: text/plain; charset=utf-8\r\n\r\n" + body + "\r\n").encode(), sender
    b = f"b{rng.getrandbits(64):x}"
    text = text_block(rng, rng.randint(3000, 15000))
    html = "<html><body>\r\n" + "".join(f"<p>{p}</p>\r\n" for p in text_block(rng, rng.randint(5000, 25000)).split("\r\n")) + "</body></html>"
    parts = [f"--{b}\r\nContent-Type: text/plain; charset=utf-8\r\n\r\n{text}\r\n",
             f"--{b}\r\nContent-Type: text/html; charset=utf-8\r\n\r\n{html}\r\n"]
    ctype = "multipart/alternative"
    if kind >= 0.9:
        blob = base64.encodebytes(rng.randbytes(rng.randint(45000, 225000))).decode().replace("\n", "\r\n")
        parts = [parts[0], f"--{b}\r\nContent-Type: application/pdf\r\nContent-Disposition: attachment; filename=\"r{i}.pdf\"\r\n"
                           f"Content-Transfer-Encoding: base64\r\n\r\n{blob}\r\n"]
        ctype = "multipart/mixed"
    return (head + f"Content-Type: {ctype}; boundary=\"{b}\"\r\n\r\n" + "".join(parts) + f"--{b}--\r\n").encode(), sender


def corpus(count, rcpt):
    rng = random.Random(18)
    return [make_message(rng, i, rcpt) for i in range(count)]


async def smtp_session(port, jobs, results):
    reader, writer = await asyncio.open_connection("127.0.0.1", port)

    async def reply():
        lines = []
        while True:
            line = await reader.readline()
            if not line:
                raise ConnectionError("closed")
            lines.append(line)
            if line[3:4] != b"-":
                return int(line[:3]), b"".join(lines)

    async def cmd(text):
        writer.write(text)
        await writer.drain()
        return await reply()

    await reply()
    await cmd(b"EHLO client.bench.test\r\n")
    while jobs:
        data, sender, rcpt = jobs.pop()
        await cmd(f"MAIL FROM:<{sender}> SIZE={len(data)}\r\n".encode())
        await cmd(f"RCPT TO:<{rcpt}>\r\n".encode())
        code, _ = await cmd(b"DATA\r\n")
        if code != 354:
            results.append(code)
            await cmd(b"RSET\r\n")
            continue
        writer.write(data.replace(b"\r\n.", b"\r\n..") + b".\r\n")
        await writer.drain()
        code, _ = await reply()
        results.append(code)
    await cmd(b"QUIT\r\n")
    writer.close()


def count_mail(root):
    n = 0
    for dirpath, dirnames, filenames in os.walk(root):
        if os.path.basename(dirpath) in ("new", "cur"):
            n += len(filenames)
    return n


def run_load(port, rcpt, maildir_root, messages, concurrency):
    before = count_mail(maildir_root)
    jobs = [(d, s, rcpt) for d, s in reversed(messages)]
    results = []
    t0 = time.monotonic()

    async def go():
        await asyncio.gather(*(smtp_session(port, jobs, results) for _ in range(concurrency)))

    asyncio.run(go())
    accepted = sum(1 for c in results if c == 250)
    wait_for(lambda: count_mail(maildir_root) >= before + accepted, timeout=1800, interval=0.05, what="accepted messages in the Maildir")
    elapsed = time.monotonic() - t0
    return len(messages) / elapsed, accepted, len(results)


TICK = os.sysconf("SC_CLK_TCK")


def proc_table():
    """{pid: (ppid, cpu seconds of the process and its reaped children, command line)}."""
    out = {}
    for name in os.listdir("/proc"):
        if not name.isdigit():
            continue
        try:
            with open(f"/proc/{name}/stat") as f:
                stat = f.read()
            with open(f"/proc/{name}/cmdline", "rb") as f:
                cmd = f.read().replace(b"\0", b" ").decode(errors="replace")
        except OSError:
            continue
        fields = stat[stat.rindex(")") + 2:].split()
        # utime stime cutime cstime: fields 14-17 of stat(5), here 11-14 after the state field
        cpu = sum(int(x) for x in fields[11:15]) / TICK
        out[int(name)] = (int(fields[1]), cpu, cmd)
    return out


def tree_cpu(table, roots, match=None):
    """CPU seconds of the processes under `roots` (the roots included), optionally only those
    whose command line contains `match`. Children that exited count through their parent's
    reaped-children time (Postfix's smtpd/cleanup, Dovecot's lmtp)."""
    want = set(r for r in roots if r in table)
    grew = True
    while grew:
        grew = False
        for pid, (ppid, _, _) in table.items():
            if ppid in want and pid not in want:
                want.add(pid)
                grew = True
    return sum(table[p][1] for p in want if match is None or match in table[p][2])


class BenchDns:
    """An unbound on a loopback port that answers every query at once from a local zone "."
    (NXDOMAIN / no data): no Internet here, and a closed port instead would make each DNS-based
    check wait for its timeout (Rspamd's resolver does not see the ICMP error), which measures
    timeouts instead of work. Both stacks' Rspamd scans and Postern's own checks use it."""

    def __init__(self, root):
        os.makedirs(root, exist_ok=True)
        self.port = free_port()
        self.server = f"127.0.0.1:{self.port}"
        conf = os.path.join(root, "unbound.conf")
        with open(conf, "w") as f:
            f.write(f"""server:
  interface: 127.0.0.1@{self.port}
  port: {self.port}
  do-ip6: no
  do-daemonize: no
  username: ""
  chroot: ""
  directory: "{root}"
  pidfile: "{root}/unbound.pid"
  use-syslog: no
  logfile: ""
  verbosity: 0
  module-config: "iterator"
  local-zone: "." static
remote-control:
  control-enable: no
""")
        self.proc = subprocess.Popen(["unbound", "-d", "-c", conf], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                                     start_new_session=True)
        wait_for(self.answers, timeout=30, what="unbound")

    def answers(self):
        if self.proc.poll() is not None:
            raise RuntimeError("unbound exited")
        q = b"\x12\x34\x01\x00\x00\x01\x00\x00\x00\x00\x00\x00\x07example\x04test\x00\x00\x01\x00\x01"
        s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        s.settimeout(0.5)
        try:
            s.sendto(q, ("127.0.0.1", self.port))
            return s.recv(512)[:2] == b"\x12\x34"
        except OSError:
            return False
        finally:
            s.close()

    def close(self):
        if self.proc.poll() is None:
            os.killpg(self.proc.pid, 15)
            self.proc.wait(timeout=30)


class BenchRspamd:
    """Debian's stock rspamd.conf + local overrides (see the module comment), with its own Redis."""

    def __init__(self, root, workers, dns):
        self.root = root
        os.makedirs(root, exist_ok=True)
        shutil.chown(root, "nobody", "nogroup")
        self.redis_sock = os.path.join(root, "redis.sock")
        with open(os.path.join(root, "redis.conf"), "w") as f:
            f.write(f"port 0\nunixsocket {self.redis_sock}\nunixsocketperm 700\ndir {root}\ndaemonize no\nsave \"\"\n"
                    "logfile \"\"\nloglevel warning\n")
        self.redis = subprocess.Popen(["redis-server", os.path.join(root, "redis.conf")], user="nobody", group="nogroup",
                                      stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
        wait_for(lambda: os.path.exists(self.redis_sock), timeout=30, what="redis")
        self.normal = os.path.join(root, "normal.sock")
        self.milter_port = free_port()
        local = os.path.join(root, "local")
        over = os.path.join(local, "override.d")
        os.makedirs(over)
        os.makedirs(os.path.join(local, "local.d"))
        files = {
            "override.d/options.inc": f'pidfile = "{root}/rspamd.pid";\ndns {{ nameserver = ["{dns}"]; timeout = 1s; retransmits = 1; }}\n',
            "override.d/logging.inc": f'type = "file";\nfilename = "{root}/rspamd.log";\nlevel = "warning";\n',
            "override.d/worker-normal.inc": f'bind_socket = "{self.normal} mode=0666";\ncount = {workers};\n',
            "override.d/worker-controller.inc": f'bind_socket = "{root}/controller.sock mode=0600";\ncount = 1;\n',
            "override.d/worker-proxy.inc": (f'bind_socket = "127.0.0.1:{self.milter_port}";\nmilter = yes;\ntimeout = 120s;\n'
                                            f'count = {workers};\nupstream "local" {{ default = yes; self_scan = yes; }}\n'),
            "local.d/redis.conf": f'servers = "{self.redis_sock}";\n',
            "local.d/milter_headers.conf": 'use = ["x-spam-status", "authentication-results"];\n',
        }
        for name, text in files.items():
            with open(os.path.join(local, name), "w") as f:
                f.write(text)
        self.out = open(os.path.join(root, "rspamd.out"), "ab")
        self.proc = subprocess.Popen(["rspamd", "-f", "-u", "nobody", "-g", "nogroup", "-c", "/etc/rspamd/rspamd.conf",
                                      f"--var=LOCAL_CONFDIR={local}", f"--var=DBDIR={root}", f"--var=RUNDIR={root}", f"--var=LOGDIR={root}"],
                                     stdout=self.out, stderr=self.out, start_new_session=True)
        wait_for(self.ready, timeout=240, interval=0.5, what="rspamd")

    def ready(self):
        if self.proc.poll() is not None:
            raise RuntimeError("rspamd exited: " + open(os.path.join(self.root, "rspamd.log"), errors="replace").read()[-2000:])
        try:
            with socket.create_connection(("127.0.0.1", self.milter_port), timeout=1):
                pass
            s = socket.socket(socket.AF_UNIX)
            s.settimeout(5)
            s.connect(self.normal)
            s.sendall(b"GET /ping HTTP/1.0\r\n\r\n")
            ok = b"pong" in s.recv(4096)
            s.close()
            return ok
        except OSError:
            return False

    def close(self):
        for p in (self.proc, self.redis):
            if p.poll() is None:
                os.killpg(p.pid, 15)
                p.wait(timeout=30)
        self.out.close()


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--messages", type=int, default=600)
    ap.add_argument("--concurrency", default="10,50")
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--workers", type=int, default=2, help="Rspamd normal and proxy workers each")
    a = ap.parse_args()
    levels = [int(x) for x in a.concurrency.split(",")]
    root = tempfile.mkdtemp(prefix="postern-bench-filter-")
    os.chmod(root, 0o755)
    msgs = corpus(a.messages, "bench@example.test")
    sizes = [len(d) for d, _ in msgs]
    print(f"{len(msgs)} messages per run: mean {statistics.mean(sizes) / 1024:.1f} KiB, median {statistics.median(sizes) / 1024:.1f} KiB, "
          f"max {max(sizes) / 1024:.0f} KiB; load average at start {os.getloadavg()[0]:.1f}", flush=True)
    conf = {"smtp.max_connections": "500", "smtp.max_connections_per_ip": "500", "log.level": "warning",
            "smtp.max_message_size": "50M"}
    rspamd = filtered = plain = peers = dns = None
    try:
        dns = BenchDns(os.path.join(root, "dns"))
        conf["dns.servers"] = dns.server
        rspamd = BenchRspamd(os.path.join(root, "rspamd"), a.workers, dns.server)
        filtered = Instance(domain="example.test", users={"bench@example.test": "bench-password-1"},
                            conf=dict(conf, **{"spam.enabled": "true", "spam.rspamd_address": rspamd.normal, "spam.timeout": "120s"}))
        plain = Instance(domain="example.test", users={"bench@example.test": "bench-password-1"}, conf=conf)
        filtered.start("postern-smtpd")
        plain.start("postern-smtpd")
        peers = PostfixDovecot(os.path.join(root, "peers"))
        with open(os.path.join(peers.conf, "main.cf"), "a") as f:
            f.write(f"smtpd_milters = inet:127.0.0.1:{rspamd.milter_port}\nmilter_default_action = accept\nmilter_protocol = 6\n"
                    "milter_command_timeout = 120s\nmilter_content_timeout = 120s\nmessage_size_limit = 52428800\n")
        subprocess.run(["postfix", "-c", peers.conf, "reload"], capture_output=True, check=True)
        postfix_master = int(open(os.path.join(peers.conf, "queue", "pid", "master.pid")).read().split()[0])

        def cpu_of(name):
            """CPU seconds so far of the processes that do this stack's work, by part. Rspamd's
            normal workers scan only for Postern, its proxy workers (self_scan) only for
            Postfix; the Rspamd main process and Redis serve both and are reported apart."""
            t = proc_table()
            shared = {"rspamd main + redis": tree_cpu(t, [rspamd.proc.pid], "main process") + tree_cpu(t, [rspamd.redis.pid])}
            if name.startswith("Postern+"):
                return dict(shared, **{"postern-smtpd": tree_cpu(t, [filtered.procs["postern-smtpd"].pid]),
                                       "rspamd normal": tree_cpu(t, [rspamd.proc.pid], "normal process")})
            if name.startswith("Postfix"):
                return dict(shared, **{"postfix": tree_cpu(t, [postfix_master]), "dovecot": tree_cpu(t, [peers.dovecot.pid]),
                                       "rspamd proxy": tree_cpu(t, [rspamd.proc.pid], "rspamd_proxy process")})
            return dict(shared, **{"postern-smtpd": tree_cpu(t, [plain.procs["postern-smtpd"].pid])})

        stacks = [("Postern+Rspamd", filtered.port("postern-smtpd", "smtp"), filtered.maildir("bench@example.test")),
                  ("Postfix+Rspamd milter+Dovecot LMTP", peers.smtp_port, peers.maildir("bench")),
                  ("Postern, no filter", plain.port("postern-smtpd", "smtp"), plain.maildir("bench@example.test"))]
        # Warm-up (Rspamd's first scans load maps, Bayes), not counted.
        for _, port, md in stacks[:2]:
            run_load(port, "bench@example.test", md, msgs[:40], 5)
        for c in levels:
            rates = {name: [] for name, _, _ in stacks}
            cpu = {name: [] for name, _, _ in stacks}
            for r in range(a.rounds):
                for name, port, md in stacks:
                    before = cpu_of(name)
                    rate, accepted, answered = run_load(port, "bench@example.test", md, msgs, c)
                    after = cpu_of(name)
                    rates[name].append(rate)
                    cpu[name].append({k: (after[k] - before[k]) * 1000 / len(msgs) for k in after})
                    if accepted != answered:
                        print(f"  note: {name}: {answered - accepted} of {answered} not accepted", flush=True)
                    if answered != len(msgs):
                        raise RuntimeError(f"{name}: {answered} of {len(msgs)} transactions answered")
            med = {k: statistics.median(v) for k, v in rates.items()}
            ours, theirs, bare = med[stacks[0][0]], med[stacks[1][0]], med[stacks[2][0]]
            print(f"{c:3d} connections (median of {a.rounds}): Postern+Rspamd {ours:6.1f} msg/s   "
                  f"Postfix+Rspamd milter+Dovecot LMTP {theirs:6.1f} msg/s   ratio {ours / theirs:4.2f}   "
                  f"Postern no filter {bare:6.1f} msg/s   (runs: {', '.join(f'{k}: ' + '/'.join(f'{x:.0f}' for x in v) for k, v in rates.items())})",
                  flush=True)
            for name, _, _ in stacks:
                parts = {k: statistics.median(run[k] for run in cpu[name]) for k in cpu[name][0]}
                own = sum(v for k, v in parts.items() if k != "rspamd main + redis")
                print(f"      CPU per message, {name}: {own:.1f} ms of its own processes ("
                      + ", ".join(f"{k} {v:.1f}" for k, v in parts.items()) + " ms)", flush=True)
        print(f"load average at end {os.getloadavg()[0]:.1f}")
    finally:
        if peers:
            peers.close()
        for i in (filtered, plain):
            if i:
                i.close()
        if rspamd:
            rspamd.close()
        if dns:
            dns.close()
        shutil.rmtree(root, ignore_errors=True)


if __name__ == "__main__":
    main()
