#!/usr/bin/python3
"""Memory per idle IMAP connection: Postern vs Dovecot.

`postern-imap-load --idle` opens --connections connections over implicit TLS;
each logs in, SELECTs INBOX and starts IDLE. The server's PSS (Pss: of
/proc/PID/smaps_rollup, so shared pages are split between the processes that
map them) is summed over all of its processes before the connections are opened
and again once every connection has been idling for 20 s (steady state: IDLE
clients stay for many minutes) and the numbers have settled; the
difference divided by the number of connections is the cost of one idle client.
Postern: the postern-imapd process and its workers (imap.processes). Dovecot: the master and every process below
it (anvil, log, config, auth, stats, imap-login, imap), counted before and after;
Dovecot is measured in its default login mode (one imap-login process per
connection, which also proxies the session's TLS) and in its high-performance
login mode (service_count = 0: a few login processes serve all connections).

The servers are measured one after the other on the same data (see imap_mixed.py:
same users and hashes, same certificate, copies of the same Maildirs). Not a
test: run by hand, as root, after `appliance/scripts/install-deps.sh bench` and
a build:

    POSTERN_BUILD_DIR=build tests/bench/imap_idle_memory.py [--connections 500] [--users 50] [--messages 200]
"""

import argparse
import collections
import os
import subprocess
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from imap_bench_lib import (BenchData, bin_path, process_tree, inotify_instances, make_users,  # noqa: E402
                            process_name, pss_kib)


IDLE_SECONDS = 20


def settle(pids_fn, seconds=3.0):
    """PSS once it stops moving (freshly started processes fault pages in for a moment)."""
    last = None
    deadline = time.monotonic() + 30
    while True:
        time.sleep(seconds)
        now = pss_kib(pids_fn())
        if last is not None and (abs(now - last) <= max(256, now // 200) or time.monotonic() > deadline):
            return now
        last = now


def measure(name, port, data, pids_fn, connections):
    before_pids = pids_fn()
    before = settle(pids_fn)
    args = [bin_path("postern-imap-load"), "--idle", "--port", str(port), "--users", data.load_users,
            "--clients", str(connections)]
    p = subprocess.Popen(args, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    line = p.stdout.readline().split()
    if not line or line[0] != "ready":
        p.kill()
        raise AssertionError(f"{name}: postern-imap-load --idle did not get ready: {line}")
    ok, failed = int(line[1]), int(line[2])
    # Steady state, as for clients that sit in IDLE for minutes: Postern closes SQLite
    # handles nobody used for 10 s (imap_index.h); both servers get the same wait.
    time.sleep(IDLE_SECONDS)
    after = settle(pids_fn)
    after_pids = pids_fn()
    names = collections.Counter(process_name(x).split("/")[-1] for x in after_pids)
    inotify = inotify_instances(after_pids)
    p.stdin.close()
    p.wait(timeout=60)
    per = (after - before) / ok if ok else float("nan")
    print(f"{name}: {ok} idling ({failed} failed); PSS {before:,} KiB with {len(before_pids)} processes -> "
          f"{after:,} KiB with {len(after_pids)} processes; {per:,.1f} KiB per connection; "
          f"inotify instances held: {inotify}", flush=True)
    print(f"  processes after: {dict(names)}", flush=True)
    return {"ok": ok, "failed": failed, "before": before, "after": after, "per": per,
            "procs_before": len(before_pids), "procs_after": len(after_pids)}


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--connections", type=int, default=500)
    ap.add_argument("--users", type=int, default=50)
    ap.add_argument("--messages", type=int, default=200)
    ap.add_argument("--dovecot-login-modes", default="security,performance",
                    help="Dovecot's default one-login-process-per-connection mode and/or its high-performance mode")
    a = ap.parse_args()
    users = make_users(a.users)
    print(f"preparing {len(users)} users x {a.messages} messages; {a.connections} connections "
          f"({(a.connections + len(users) - 1) // len(users)} per user at most)", flush=True)
    data = BenchData(users, a.messages, max_connections=a.connections)
    try:
        results = {}
        port = data.start_postern()
        pid = data.postern_pid()
        results["Postern"] = measure("Postern", port, data, lambda: process_tree(pid), a.connections)
        data.stop_postern()
        for mode in [m for m in a.dovecot_login_modes.split(",") if m and m != "none"]:
            port = data.start_dovecot(mode)
            master = data.dovecot.pid
            name = "Dovecot" if mode == "security" else f"Dovecot ({mode} login mode)"
            results[name] = measure(name, port, data, lambda: process_tree(master), a.connections)
            data.stop_dovecot()

        print(f"\n| server | idle connections | PSS before | PSS after | processes before/after | per connection |")
        print("| --- | ---: | ---: | ---: | ---: | ---: |")
        for name, r in results.items():
            print(f"| {name} | {r['ok']} | {r['before'] / 1024:,.1f} MiB | {r['after'] / 1024:,.1f} MiB | "
                  f"{r['procs_before']}/{r['procs_after']} | {r['per']:,.1f} KiB |")
        for name, r in results.items():
            if name != "Postern" and r["per"] > 0 and results["Postern"]["per"] > 0:
                print(f"{name} needs {r['per'] / results['Postern']['per']:.1f}× Postern's memory per idle connection.")
        warnings = [ln for ln in data.dovecot_log().splitlines() if "Warning" in ln or "Error" in ln or "Fatal" in ln]
        if warnings:
            print("\nDovecot warnings/errors (first 5):\n  " + "\n  ".join(warnings[:5]))
    finally:
        data.close()


if __name__ == "__main__":
    main()
