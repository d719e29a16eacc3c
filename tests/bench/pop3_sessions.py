#!/usr/bin/python3
"""POP3 sessions per second: Postern vs Dovecot, side by side on the same data.

One session = TLS connect (implicit TLS, port-995 style), USER/PASS, STAT, LIST,
UIDL, RETR of 10 messages, QUIT. Clients are separate processes (so the
client is not the bottleneck), each running sessions back to back for a fixed
time, at 1, 4 and 10 concurrent clients. Both servers use the same users
(Postern's `users` file is a Dovecot passwd-file; the same {ARGON2ID} hashes),
the same certificate, and a copy of the same Maildirs; both cache successful
password verifications (Postern's AuthCache, Dovecot's auth_cache_size). Not a test: run by
hand, as root, after `appliance/scripts/install-deps.sh bench` and a build:

    POSTERN_BUILD_DIR=build tests/bench/pop3_sessions.py [--seconds 10] [--users 20] [--messages 20]
"""

import argparse
import multiprocessing
import os
import poplib
import shutil
import ssl
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "integration", "lib"))
from postern_testlib import Instance, free_port, wait_for  # noqa: E402


def client(port, users, seconds, out):
    """Sessions back to back over this client's own users (a maildrop is locked per session)."""
    ctx = ssl.create_default_context()
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE
    done = 0
    deadline = time.monotonic() + seconds
    try:
        while time.monotonic() < deadline:
            one_session(port, ctx, users[done % len(users)])
            done += 1
    finally:
        out.put(done)


def one_session(port, ctx, account):
    user, password = account
    c = poplib.POP3_SSL("127.0.0.1", port, context=ctx, timeout=30)
    c.user(user)
    c.pass_(password)
    count, _ = c.stat()
    c.list()
    c.uidl()
    for n in range(1, min(10, count) + 1):
        c.retr(n)
    c.quit()


def measure(port, users, clients, seconds):
    q = multiprocessing.Queue()
    procs = [multiprocessing.Process(target=client, args=(port, users[k::clients], seconds, q)) for k in range(clients)]
    t0 = time.monotonic()
    for p in procs:
        p.start()
    total = sum(q.get() for _ in procs)
    for p in procs:
        p.join()
    return total / (time.monotonic() - t0)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--seconds", type=float, default=10)
    ap.add_argument("--users", type=int, default=20)
    ap.add_argument("--messages", type=int, default=20)
    ap.add_argument("--clients", default="1,4,10")
    a = ap.parse_args()
    users = [(f"user{n}@example.test", f"password-{n}-bench") for n in range(a.users)]
    inst = Instance(domain="example.test", users=dict(users),
                    conf={"pop3.max_connections": "500", "pop3.max_connections_per_ip": "500", "log.level": "info",
                          "pop3.login_delay": "0s"})
    root = tempfile.mkdtemp(prefix="postern-bench-pop3-")
    os.chmod(root, 0o755)
    dovecot = None
    try:
        # The same messages for every user, delivered by Postern's SMTP daemon.
        inst.start("postern-smtpd")
        import smtplib
        body = "Subject: bench\r\n\r\n" + ("line of text for the benchmark\r\n" * 100)
        with smtplib.SMTP("127.0.0.1", inst.port("postern-smtpd", "smtp"), timeout=60) as s:
            for n in range(a.messages):
                s.sendmail("bench@sender.test", [u for u, _ in users], body.replace("bench", f"bench {n}", 1))
        inst.stop("postern-smtpd")
        # Dovecot gets a copy of the Maildirs and reads Postern's users file as its passwd-file.
        mail = os.path.join(root, "mail")
        shutil.copytree(os.path.join(inst.data_dir, "mail"), mail, symlinks=True)
        subprocess.run(["chown", "-R", "nobody:nogroup", mail], check=True)
        for dirpath, _, files in os.walk(mail):
            for f in files:
                if f.startswith("dovecot"):
                    os.unlink(os.path.join(dirpath, f))  # Dovecot builds its own index and uidlist
        users_file = os.path.join(root, "users")  # a copy Dovecot's auth process may read
        shutil.copy(os.path.join(inst.config_dir, "users"), users_file)
        os.chmod(users_file, 0o644)
        port_d = free_port()
        cert = os.path.join(inst.config_dir, "tls", "cert.pem")
        key = os.path.join(inst.config_dir, "tls", "key.pem")
        conf = os.path.join(root, "dovecot.conf")
        with open(conf, "w") as f:
            f.write(f"""
base_dir = {root}/run
state_dir = {root}/state
log_path = {root}/dovecot.log
protocols = pop3
listen = 127.0.0.1
ssl = required
ssl_cert = <{cert}
ssl_key = <{key}
mail_location = maildir:{mail}/%d/%n/Maildir
default_internal_user = dovecot
default_login_user = dovenull
# Postern caches successful verifications (auth.cache_ttl); give Dovecot its cache too.
auth_cache_size = 10M
auth_cache_ttl = 1 hour
passdb {{
  driver = passwd-file
  args = {users_file}
}}
userdb {{
  driver = static
  args = uid=nobody gid=nogroup home={mail}/%d/%n
}}
service pop3-login {{
  inet_listener pop3 {{
    port = 0
  }}
  inet_listener pop3s {{
    address = 127.0.0.1
    port = {port_d}
    ssl = yes
  }}
  process_limit = 200
}}
service pop3 {{
  process_limit = 200
}}
""")
        dovecot = subprocess.Popen(["dovecot", "-F", "-c", conf], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        inst.start("postern-pop3d")
        port_p = inst.port("postern-pop3d", "pop3s")
        import socket
        wait_for(lambda: socket.create_connection(("127.0.0.1", port_d), timeout=1).close() or True, timeout=30, what="dovecot")
        for c in [int(x) for x in a.clients.split(",")]:
            ours = measure(port_p, users, c, a.seconds)
            theirs = measure(port_d, users, c, a.seconds)
            print(f"{c:3d} clients: Postern {ours:7.1f} sessions/s   Dovecot {theirs:7.1f} sessions/s   ratio {ours / theirs:4.2f}", flush=True)
    finally:
        if dovecot:
            dovecot.terminate()
            dovecot.wait(timeout=20)
            if os.environ.get("BENCH_SHOW_LOG"):
                print(open(os.path.join(root, "dovecot.log")).read()[-3000:])
        inst.close()
        shutil.rmtree(root, ignore_errors=True)


if __name__ == "__main__":
    main()
