#!/usr/bin/python3
"""IMAP mixed command load and login rate: Postern vs Dovecot, side by side on the same data.

postern-imap-load (tests/bench/imap_load.cpp) logs N clients in once over implicit
TLS and then loops, for --seconds, over SELECT INBOX, UID FETCH 1:* (FLAGS), FETCH
of ENVELOPE for 20 messages, FETCH BODY.PEEK[] of one message, UID STORE -/+FLAGS
\\Seen (restoring the flag), SEARCH UNSEEN, SEARCH SUBJECT, APPEND of a 1 KiB
message, UID STORE +FLAGS.SILENT \\Deleted and UID EXPUNGE of exactly that message
(the mailbox keeps its size), LIST "" "*", STATUS INBOX. Commands/s at 10 and 50
clients, with the server's CPU time per 1,000 commands (postern-imap-load --cpu-of:
user + system time of the server's process tree while the clock runs); then logins/s
(connect, TLS, LOGIN, LOGOUT in a loop) at 10 clients.

Both servers use the same users (Postern's `users` file is a Dovecot passwd-file;
the same {ARGON2ID} hashes at the test suite's cheap cost), the same certificate
and copies of the same Maildirs (--messages per user, a few KiB each, varied
headers, 70 % read); both cache successful password checks. Not a test: run by
hand, as root, after `appliance/scripts/install-deps.sh bench` and a build:

    POSTERN_BUILD_DIR=build tests/bench/imap_mixed.py [--seconds 20] [--users 50] [--messages 200]
"""

import argparse
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from imap_bench_lib import BenchData, load, loadavg, make_users  # noqa: E402


def users_file(data, clients, sessions_per_user):
    """The first clients / sessions_per_user users, so that every mailbox has that many sessions."""
    if sessions_per_user <= 1:
        return data.load_users
    path = os.path.join(data.root, f"load-users-{clients}")
    n = max(1, clients // sessions_per_user)
    with open(data.load_users) as src, open(path, "w") as dst:
        dst.writelines(src.readlines()[:n])
    return path


def run_both(data, ports, clients, seconds, mode=None, sessions_per_user=1):
    out = {}
    pids = {"Postern": data.postern_pid(), "Dovecot": data.dovecot.pid}
    for name in ("Postern", "Dovecot"):
        la = loadavg()
        # Mixed mode: the server's CPU time per 1,000 commands too (its whole process tree,
        # from /proc), a figure that depends far less on other load than commands/s.
        extra = ("--cpu-of", str(pids[name])) if mode in (None, "--realistic") else ()
        r = load(ports[name], users_file(data, clients, sessions_per_user), clients, seconds, mode, extra=extra)
        r["loadavg_before"] = la
        out[name] = r
        cpu = f"  server CPU {r['server_cpu_ms_per_1000']:.0f} ms/1,000 commands" if "server_cpu_ms_per_1000" in r else ""
        print(f"  {name:8s} {clients:3d} clients {(mode or '--mixed')[2:]:12s}: {rate(r, mode):8.1f}/s  errors {r['errors']}"
              f"{cpu}  (load average before: {la:.2f})", flush=True)
    return out


def rate(r, mode):
    if mode == "--login-only":
        return r["kinds"]["LOGIN"]["count"] / r["seconds"]
    return r["per_second"]


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--seconds", type=float, default=20)
    ap.add_argument("--users", type=int, default=50)
    ap.add_argument("--messages", type=int, default=200)
    ap.add_argument("--clients", default="10,50")
    ap.add_argument("--login-clients", type=int, default=10)
    ap.add_argument("--realistic", action="store_true",
                    help="postern-imap-load --realistic (sessions sharing mailboxes, model-checked) on Maildirs where "
                         "--attachments of the messages carry 20-200 KiB attachments")
    ap.add_argument("--attachments", type=float, default=0.2)
    ap.add_argument("--sessions-per-user", type=int, default=2, help="with --realistic: sessions on each mailbox")
    ap.add_argument("--warmup", type=float, default=5, help="seconds of mixed load per server before measuring")
    ap.add_argument("--no-dovecot-performance-logins", dest="dovecot_performance_logins", action="store_false",
                    help="skip the extra login-rate run against Dovecot in its high-performance login mode")
    a = ap.parse_args()
    client_counts = [int(x) for x in a.clients.split(",")]
    users = make_users(max(a.users, 1))
    print(f"preparing {len(users)} users x {a.messages} messages ...", flush=True)
    data = BenchData(users, a.messages, max_connections=max(client_counts + [a.login_clients]) + 50,
                     attachments=a.attachments if a.realistic else 0.0)
    mixed = "--realistic" if a.realistic else None
    try:
        ports = {"Postern": data.start_postern(), "Dovecot": data.start_dovecot()}
        if a.warmup > 0:
            # Every user once on both sides: Postern writes its UID lists, Dovecot builds its indexes.
            for name in ports:
                load(ports[name], data.load_users, len(users), a.warmup)
        results = {}
        for c in client_counts:
            results[("mixed", c)] = run_both(data, ports, c, a.seconds, mixed, a.sessions_per_user if a.realistic else 1)
        results[("login", a.login_clients)] = run_both(data, ports, a.login_clients, a.seconds, "--login-only")
        if a.dovecot_performance_logins:
            # The same login loop against Dovecot in its high-performance login mode.
            data.stop_dovecot()
            port = data.start_dovecot("performance")
            la = loadavg()
            r = load(port, data.load_users, a.login_clients, a.seconds, "--login-only")
            r["loadavg_before"] = la
            print(f"  Dovecot (login processes in high-performance mode) {a.login_clients} clients --login-only: "
                  f"{rate(r, '--login-only'):8.1f}/s  errors {r['errors']}  (load average before: {la:.2f})", flush=True)
            results[("login-perf", a.login_clients)] = {"Postern": results[("login", a.login_clients)]["Postern"],
                                                        "Dovecot": r}

        print("\n| load | clients | Postern | Dovecot | ratio |")
        print("| --- | ---: | ---: | ---: | ---: |")
        labels = {"mixed": "realistic client mix" if a.realistic else "mixed commands", "login": "connect, TLS, LOGIN, LOGOUT",
                  "login-perf": "the same, Dovecot login processes in high-performance mode"}
        for (kind, c), r in results.items():
            mode = mixed if kind == "mixed" else "--login-only"
            unit = "commands/s" if kind == "mixed" else "logins/s"
            p, d = rate(r["Postern"], mode), rate(r["Dovecot"], mode)
            print(f"| {labels[kind]} | {c} | {p:,.0f} {unit} | {d:,.0f} {unit} | {p / d if d else float('nan'):.2f}× |")
        errors = {(k, c, n): r[n]["errors"] for (k, c), r in results.items() for n in r if r[n]["errors"] and
                  not (k == "login-perf" and n == "Postern")}
        print("errors: " + (", ".join(f"{n} {k} {c} clients: {e}" for (k, c, n), e in errors.items()) or "none"))

        for (kind, c), r in results.items():
            if kind != "mixed":
                continue
            print(f"\nper command, {c} clients (commands/s, mean latency ms):")
            print(f"  {'command':28s} {'Postern':>16s} {'Dovecot':>16s} {'ratio':>6s}")
            for k, pv in r["Postern"]["kinds"].items():
                dv = r["Dovecot"]["kinds"].get(k, {"per_second": 0, "avg_ms": 0})
                ratio = pv["per_second"] / dv["per_second"] if dv["per_second"] else float("nan")
                print(f"  {k:28s} {pv['per_second']:7.1f} {pv['avg_ms']:7.2f}ms {dv['per_second']:7.1f} {dv['avg_ms']:7.2f}ms"
                      f" {ratio:5.2f}")
        warnings = [ln for ln in data.dovecot_log().splitlines() if "Warning" in ln or "Error" in ln or "Fatal" in ln]
        if warnings:
            print("\nDovecot warnings/errors (first 5):\n  " + "\n  ".join(warnings[:5]))
        perrs = [ln for ln in data.inst.log().splitlines() if '"level":"error"' in ln or " error " in ln.lower()]
        if perrs:
            print("\nPostern log errors (first 5):\n  " + "\n  ".join(perrs[:5]))
    finally:
        data.close()


if __name__ == "__main__":
    main()
