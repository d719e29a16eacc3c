#!/usr/bin/python3
"""Memory of the whole appliance, idle and under inbound load, with the spam filter on and off.

Starts postern-appliance (the supervisor and everything it runs: Postern's daemons, the
bundled unbound, and with spam.enabled redis-server and rspamd with the configuration Postern
generates) and sums the PSS (Pss: of /proc/PID/smaps_rollup, so shared pages are split between
the processes that share them) of the supervisor and all its descendants, per program:
  idle    once every service is running, after --settle seconds;
  loaded  the highest total sampled every 0.2 s while --messages realistic messages
          (tests/bench/smtp_filtering.py's corpus, about 42 KiB on average) arrive over
          --connections SMTP connections on the MX listener, and right after.
No Internet is assumed: the bundled unbound and Rspamd's DNS checks fail or time out, which
slows scanning but does not change what is resident. Not a test: run by hand, as root, after
a build:

    POSTERN_BUILD_DIR=build tests/bench/appliance_memory.py [--messages 300] [--connections 10] [--settle 10]
"""

import argparse
import asyncio
import json
import os
import socket
import sys
import threading
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "integration", "lib"))
sys.path.insert(0, HERE)
from postern_testlib import Instance, free_port, wait_for  # noqa: E402
from smtp_filtering import corpus, smtp_session  # noqa: E402


def descendants(pid):
    children = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat") as f:
                ppid = int(f.read().rsplit(")", 1)[1].split()[1])
        except (OSError, IndexError, ValueError):
            continue
        children.setdefault(ppid, []).append(int(entry))
    out, todo = [], [pid]
    while todo:
        p = todo.pop()
        out.append(p)
        todo += children.get(p, [])
    return out


def pss_by_program(root_pid):
    totals = {}
    for pid in descendants(root_pid):
        try:
            with open(f"/proc/{pid}/comm") as f:
                name = f.read().strip()
            with open(f"/proc/{pid}/smaps_rollup") as f:
                kib = next(int(line.split()[1]) for line in f if line.startswith("Pss:"))
        except (OSError, StopIteration):
            continue
        if name.startswith("rspamd"):
            # main, normal, controller, hs_helper: "rspamd: normal process (...)" in the title
            try:
                with open(f"/proc/{pid}/cmdline", "rb") as f:
                    title = f.read().split(b"\0")[0].decode(errors="replace")
                name = "rspamd " + title.split(":", 1)[1].split()[0] if ":" in title else "rspamd"
            except OSError:
                name = "rspamd"
        totals[name] = totals.get(name, 0) + kib
    return totals


def fmt(totals):
    rspamd = sum(v for k, v in totals.items() if k.startswith("rspamd"))
    return f"{sum(totals.values()) / 1024:6.1f} MiB, rspamd {rspamd / 1024:.1f}  (" + ", ".join(
        f"{k} {v / 1024:.1f}" for k, v in sorted(totals.items(), key=lambda kv: -kv[1])) + ")"


def measure(spam, a, msgs):
    inst = Instance(domain="example.test", users={"bench@example.test": "bench-password-1"},
                    conf={"spam.enabled": "true" if spam else "false", "dns.resolver": "bundled",
                          "dns.resolver_listen": f"127.0.0.1:{free_port(socket.SOCK_DGRAM)}", "log.level": "warning",
                          "smtp.max_connections": "200", "smtp.max_connections_per_ip": "200"})
    try:
        inst.start("postern-appliance", timeout=60)
        status = os.path.join(inst.run_dir, "postern-appliance.status")

        def all_running():
            with open(status) as f:
                return all(s["state"] in ("running", "disabled") for s in json.load(f)["services"])

        wait_for(all_running, timeout=240, interval=0.5, what="every service running")
        pid = inst.procs["postern-appliance"].pid
        time.sleep(a.settle)  # a benchmark's deliberate settle time, not a test wait
        idle = pss_by_program(pid)
        peak = {}
        stop = threading.Event()

        def sample():
            nonlocal peak
            while not stop.is_set():
                t = pss_by_program(pid)
                if sum(t.values()) > sum(peak.values()):
                    peak = t
                stop.wait(0.2)

        th = threading.Thread(target=sample)
        th.start()
        port = inst.port("postern-appliance", "smtp")
        jobs = [(d, s, "bench@example.test") for d, s in reversed(msgs)]
        results = []
        t0 = time.monotonic()

        async def go():
            await asyncio.gather(*(smtp_session(port, jobs, results) for _ in range(a.connections)))

        asyncio.run(go())
        elapsed = time.monotonic() - t0
        stop.set()
        th.join()
        after = pss_by_program(pid)
        codes = {c: results.count(c) for c in set(results)}
        print(f"spam {'on ' if spam else 'off'} idle:   {fmt(idle)}", flush=True)
        print(f"spam {'on ' if spam else 'off'} loaded: {fmt(peak)}  [{len(msgs)} messages in {elapsed:.0f} s, replies {codes}]", flush=True)
        print(f"spam {'on ' if spam else 'off'} after:  {fmt(after)}", flush=True)
    finally:
        inst.close()


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--messages", type=int, default=300)
    ap.add_argument("--connections", type=int, default=10)
    ap.add_argument("--settle", type=float, default=10)
    ap.add_argument("--spam", default="on,off")
    a = ap.parse_args()
    msgs = corpus(a.messages, "bench@example.test")
    print(f"load average at start {os.getloadavg()[0]:.1f}", flush=True)
    for mode in a.spam.split(","):
        measure(mode == "on", a, msgs)
    print(f"load average at end {os.getloadavg()[0]:.1f}")


if __name__ == "__main__":
    main()
