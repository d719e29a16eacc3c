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

At scale (issue 23: 10,000 idle sessions, 1,000 users x 10, in under 512 MB for the
whole appliance):

    POSTERN_BUILD_DIR=build tests/bench/imap_idle_memory.py --connections 10000 --users 1000 \
        --messages 50 --appliance --dovecot-connections 1000

--appliance also starts Postern's other daemons (smtpd, queued, pop3d, sieved,
webd; spam filtering off, as the test instance has it) and sums their PSS with
imapd's ("appliance" columns). --dovecot-connections caps Dovecot's run (its ~2 MB
per session would need ~20 GB at 10,000): Dovecot then serves the first
connections/10 users, 10 sessions each as for Postern, and Postern is measured
at that size too. --deliveries N: after the idle measurement, N messages are
dropped into the INBOX of N different users (written to tmp/, fsync'd, renamed into
new/, as a local delivery agent does) and the time until every one of that user's
sessions got "* n EXISTS" is taken (postern-imap-load's "watch"). The connection
rate per tenth of the connections shows whether they were taken steadily.
"""

import argparse
import collections
import email.utils
import grp
import pwd
import os
import subprocess
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from imap_bench_lib import (BenchData, bin_path, process_tree, inotify_instances, make_users,  # noqa: E402
                            process_name, pss_kib)


IDLE_SECONDS = 20
NOBODY = (pwd.getpwnam("nobody").pw_uid, grp.getgrnam("nogroup").gr_gid)
APPLIANCE_DAEMONS = ("postern-smtpd", "postern-queued", "postern-pop3d", "postern-sieved", "postern-webd")


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


def deliver(maildir, to, n):
    """A message into maildir's INBOX the way a delivery agent writes it: tmp/, fsync,
    rename into new/. Returns CLOCK_MONOTONIC (ns) right before the rename."""
    body = (f"From: Bench <bench@example.org>\r\nTo: {to}\r\nSubject: idle delivery {n}\r\n"
            f"Date: {email.utils.formatdate()}\r\nMessage-ID: <idle-{n}-{time.time_ns()}@example.org>\r\n\r\n"
            + "A new message for the idle sessions.\r\n" * 20).encode()
    name = f"{int(time.time())}.M{n}P{os.getpid()}.idlebench,S={len(body)}"
    tmp = os.path.join(maildir, "tmp", name)
    with open(tmp, "wb") as f:
        f.write(body)
        f.flush()
        os.fsync(f.fileno())
    if os.geteuid() == 0:
        os.chown(tmp, *NOBODY)
    t0 = time.monotonic_ns()
    os.rename(tmp, os.path.join(maildir, "new", name))
    return t0


def measure(name, port, data, pids_fn, connections, users_file, maildir_of, deliveries, appliance_fn=None):
    before_pids = pids_fn()
    before = settle(pids_fn)
    app_before = pss_kib(appliance_fn()) if appliance_fn else None
    args = [bin_path("postern-imap-load"), "--idle", "--port", str(port), "--users", users_file,
            "--clients", str(connections)]
    t_start = time.monotonic()
    p = subprocess.Popen(args, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    rate = ""
    while True:
        raw = p.stdout.readline()
        line = raw.split()
        if line and line[0] == "#":
            rate += "  " + raw.strip()[2:] + "\n"
            continue
        break
    if not line or line[0] != "ready":
        p.kill()
        raise AssertionError(f"{name}: postern-imap-load --idle did not get ready: {line}")
    ok, failed = int(line[1]), int(line[2])
    print(f"{name}: {ok} sessions ready after {time.monotonic() - t_start:.1f} s (load average {os.getloadavg()[0]:.1f})\n"
          + rate, end="", flush=True)
    # Steady state, as for clients that sit in IDLE for minutes: Postern closes SQLite
    # handles nobody used for 10 s (imap_index.h); both servers get the same wait.
    time.sleep(IDLE_SECONDS)
    after = settle(pids_fn)
    after_pids = pids_fn()
    app_after = pss_kib(appliance_fn()) if appliance_fn else None
    names = collections.Counter(process_name(x).split("/")[-1] for x in after_pids)
    inotify = inotify_instances(after_pids)
    # Deliveries to users whose sessions all idle: the latency until the last of them hears.
    latencies = []
    users = len(open(users_file).read().split("\n")) - 1
    for d in range(deliveries):
        k = (d * 7919) % max(1, min(users, connections))
        p.stdin.write(f"watch {k}\n")
        p.stdin.flush()
        watching = int(p.stdout.readline().split()[1])
        address = open(users_file).read().split("\n")[k].split()[0]
        t0 = deliver(maildir_of(address), address, d)
        seen = p.stdout.readline().split()
        got, first, last = int(seen[1]), int(seen[2]), int(seen[3])
        latencies.append(((first - t0) / 1e6, (last - t0) / 1e6, got, watching))
        print(f"  delivery to user {k}: {got}/{watching} sessions told, first after {(first - t0) / 1e6:.0f} ms, "
              f"last after {(last - t0) / 1e6:.0f} ms", flush=True)
    p.stdin.close()
    p.wait(timeout=120)
    per = (after - before) / ok if ok else float("nan")
    print(f"{name}: {ok} idling ({failed} failed); PSS {before:,} KiB with {len(before_pids)} processes -> "
          f"{after:,} KiB with {len(after_pids)} processes; {per:,.1f} KiB per connection; "
          f"inotify instances held: {inotify}", flush=True)
    if appliance_fn:
        print(f"  whole appliance (all Postern daemons): {app_before / 1024:,.1f} MiB -> {app_after / 1024:,.1f} MiB", flush=True)
    print(f"  processes after: {dict(names)}", flush=True)
    return {"ok": ok, "failed": failed, "before": before, "after": after, "per": per,
            "procs_before": len(before_pids), "procs_after": len(after_pids),
            "app_before": app_before, "app_after": app_after, "latencies": latencies}


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--connections", type=int, default=500)
    ap.add_argument("--users", type=int, default=50)
    ap.add_argument("--messages", type=int, default=200)
    ap.add_argument("--deliveries", type=int, default=5)
    ap.add_argument("--appliance", action="store_true", help="start Postern's other daemons too and sum them")
    ap.add_argument("--dovecot-connections", type=int, default=0,
                    help="fewer connections for Dovecot (0: the same); Postern is measured at that size too")
    ap.add_argument("--dovecot-login-modes", default="security,performance",
                    help="Dovecot's default one-login-process-per-connection mode and/or its high-performance mode")
    a = ap.parse_args()
    users = make_users(a.users)
    per_user = (a.connections + len(users) - 1) // len(users)
    print(f"preparing {len(users)} users x {a.messages} messages; {a.connections} connections "
          f"({per_user} per user at most); load average {os.getloadavg()[0]:.1f}", flush=True)
    t0 = time.monotonic()
    data = BenchData(users, a.messages, max_connections=a.connections)
    print(f"prepared in {time.monotonic() - t0:.0f} s", flush=True)
    small = a.dovecot_connections if 0 < a.dovecot_connections < a.connections else 0
    small_users = data.load_users
    if small:
        # The first small/per_user users, per_user sessions each, as in the big run.
        small_users = data.load_users + f".{small}"
        with open(data.load_users) as f, open(small_users, "w") as g:
            g.writelines(f.readlines()[:max(1, small // per_user)])
    try:
        results = {}
        port = data.start_postern()
        pid = data.postern_pid()
        appliance_fn = None
        if a.appliance:
            for d in APPLIANCE_DAEMONS:
                data.inst.start(d)
            appliance_fn = lambda: [x for prog in data.inst.procs.values() for x in process_tree(prog.pid)]  # noqa: E731
        results["Postern"] = measure("Postern", port, data, lambda: process_tree(pid), a.connections, data.load_users,
                                     data.inst.maildir, a.deliveries, appliance_fn)
        data.stop_postern()
        dovecot_maildir = lambda address: os.path.join(data.dovecot_mail, address.split("@")[1], address.split("@")[0],  # noqa: E731
                                                       "Maildir")
        for mode in [m for m in a.dovecot_login_modes.split(",") if m and m != "none"]:
            port = data.start_dovecot(mode)
            master = data.dovecot.pid
            name = "Dovecot" if mode == "security" else f"Dovecot ({mode} login mode)"
            results[name] = measure(name, port, data, lambda: process_tree(master), small or a.connections,
                                    small_users, dovecot_maildir, a.deliveries)
            data.stop_dovecot()
            if small:
                # Postern again at Dovecot's size, alternating with it.
                port = data.start_postern()
                pid = data.postern_pid()
                results[f"Postern ({name} run's size)"] = measure("Postern", port, data, lambda: process_tree(pid), small,
                                                                  small_users, data.inst.maildir, a.deliveries)
                data.stop_postern()

        print(f"\n| server | idle connections | PSS before | PSS after | processes before/after | per connection | "
              f"delivery seen by all sessions (worst, ms) |")
        print("| --- | ---: | ---: | ---: | ---: | ---: | ---: |")
        for name, r in results.items():
            lat = max((x[1] for x in r["latencies"]), default=float("nan"))
            told = sum(x[2] for x in r["latencies"])
            watched = sum(x[3] for x in r["latencies"])
            print(f"| {name} | {r['ok']} | {r['before'] / 1024:,.1f} MiB | {r['after'] / 1024:,.1f} MiB | "
                  f"{r['procs_before']}/{r['procs_after']} | {r['per']:,.1f} KiB | {lat:,.0f} ({told}/{watched} told) |")
        r = results["Postern"]
        if r["app_after"] is not None:
            print(f"\nWhole Postern appliance (imapd + {', '.join(APPLIANCE_DAEMONS)}; spam filtering off) with "
                  f"{r['ok']} idle sessions: {r['app_after'] / 1024:,.1f} MiB PSS (at rest: {r['app_before'] / 1024:,.1f} MiB).")
        for name, r in results.items():
            if name.startswith("Dovecot") and r["per"] > 0 and results["Postern"]["per"] > 0:
                print(f"{name} needs {r['per'] / results['Postern']['per']:.1f}× Postern's memory per idle connection.")
        warnings = [ln for ln in data.dovecot_log().splitlines() if "Warning" in ln or "Error" in ln or "Fatal" in ln]
        if warnings:
            print("\nDovecot warnings/errors (first 5):\n  " + "\n  ".join(warnings[:5]))
    finally:
        data.close()


if __name__ == "__main__":
    main()
