#!/usr/bin/python3
"""Inbound SMTP delivery throughput: Postern vs Postfix + Dovecot LMTP, side by side.

Measures messages/s from the first SMTP connection until every message is in
the recipient's Maildir (fsync'd: Postern answers 250 only after that;
Postfix fsyncs its queue file before 250 and Dovecot is run with
mail_fsync = always), at 1, 10 and 50 concurrent connections with Postfix's
smtp-source and the same message size for both. Also reports the disk's own
ceiling of fsync'd file creates/s. Not a test: run by hand, as root, after
`appliance/scripts/install-deps.sh bench` and a build:

    POSTERN_BUILD_DIR=build tests/bench/smtp_throughput.py [--messages 2000] [--size 4096]

Postfix and Dovecot run under temporary configurations on free loopback ports
and are stopped at the end; the system's own services are never started.
"""

import argparse
import os
import shutil
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "integration", "lib"))
from postern_testlib import Instance, free_port, wait_for  # noqa: E402


def count_files(maildir):
    n = 0
    for sub in ("new", "cur"):
        try:
            n += len(os.listdir(os.path.join(maildir, sub)))
        except FileNotFoundError:
            pass
    return n


def disk_ceiling(folder, seconds=2.0):
    """fsync'd file creates per second (write 4 KiB, fsync file, rename, fsync folder)."""
    os.makedirs(os.path.join(folder, "tmp"), exist_ok=True)
    os.makedirs(os.path.join(folder, "new"), exist_ok=True)
    dfd = os.open(os.path.join(folder, "new"), os.O_RDONLY)
    data = b"x" * 4096
    n = 0
    t0 = time.monotonic()
    while time.monotonic() - t0 < seconds:
        p = os.path.join(folder, "tmp", str(n))
        fd = os.open(p, os.O_WRONLY | os.O_CREAT, 0o600)
        os.write(fd, data)
        os.fsync(fd)
        os.close(fd)
        os.rename(p, os.path.join(folder, "new", str(n)))
        os.fsync(dfd)
        n += 1
    os.close(dfd)
    return n / (time.monotonic() - t0)


def run_load(port, rcpt, maildir, messages, size, concurrency):
    before = count_files(maildir)
    t0 = time.monotonic()
    p = subprocess.run(["smtp-source", "-s", str(concurrency), "-m", str(messages), "-l", str(size), "-f", "bench@sender.test",
                        "-t", rcpt, f"127.0.0.1:{port}"], capture_output=True, text=True, timeout=900)
    if p.returncode != 0:
        raise RuntimeError(f"smtp-source failed: {p.stdout[-500:]} {p.stderr[-500:]}")
    wait_for(lambda: count_files(maildir) >= before + messages, timeout=900, interval=0.02, what="all messages in the Maildir")
    return messages / (time.monotonic() - t0)


class PostfixDovecot:
    def __init__(self, root):
        self.root = root
        self.smtp_port = free_port()
        self.lmtp_port = free_port()
        d = os.path.join(root, "dovecot")
        self.mail = os.path.join(root, "mail")
        os.makedirs(d)
        os.makedirs(self.mail)
        shutil.chown(self.mail, "nobody", "nogroup")
        with open(os.path.join(d, "dovecot.conf"), "w") as f:
            f.write(f"""
base_dir = {d}/run
state_dir = {d}/state
log_path = {d}/dovecot.log
protocols = lmtp
ssl = no
listen = 127.0.0.1
mail_location = maildir:{self.mail}/%n/Maildir
mail_fsync = always
default_internal_user = dovecot
default_login_user = dovenull
passdb {{
  driver = static
  args = nopassword=y
}}
userdb {{
  driver = static
  args = uid=nobody gid=nogroup home={self.mail}/%n
}}
service lmtp {{
  inet_listener lmtp {{
    address = 127.0.0.1
    port = {self.lmtp_port}
  }}
  process_limit = 100
}}
""")
        self.dovecot = subprocess.Popen(["dovecot", "-F", "-c", os.path.join(d, "dovecot.conf")], stdout=subprocess.DEVNULL,
                                        stderr=subprocess.DEVNULL)
        p = os.path.join(root, "postfix")
        os.makedirs(p)
        with open(os.path.join(p, "main.cf"), "w") as f:
            f.write(f"""
compatibility_level = 3.6
queue_directory = {p}/queue
data_directory = {p}/data
mail_owner = postfix
setgid_group = postdrop
inet_interfaces = 127.0.0.1
inet_protocols = ipv4
myhostname = postfix.bench.test
mydestination =
mynetworks = 127.0.0.0/8
smtpd_recipient_restrictions = permit_mynetworks, reject
virtual_mailbox_domains = example.test
virtual_transport = lmtp:inet:127.0.0.1:{self.lmtp_port}
maillog_file = {p}/maillog
maillog_file_prefixes = {p}
default_process_limit = 200
smtpd_client_connection_count_limit = 0
smtpd_client_connection_rate_limit = 0
lmtp_destination_concurrency_limit = 50
lmtp_destination_recipient_limit = 1
biff = no
""")
        master = open("/etc/postfix/master.cf").read().splitlines()
        out = []
        for line in master:
            if line.startswith("smtp      inet"):
                line = f"127.0.0.1:{self.smtp_port} inet n - n - - smtpd"
            out.append(line)
        with open(os.path.join(p, "master.cf"), "w") as f:
            f.write("\n".join(out) + "\n")
        self.conf = p
        os.makedirs(os.path.join(p, "queue"))
        os.makedirs(os.path.join(p, "data"))
        shutil.chown(os.path.join(p, "data"), "postfix", "postfix")
        chk = subprocess.run(["script", "-qc", f"postfix -c {p} check", "/dev/null"], capture_output=True, text=True)
        if chk.returncode != 0:
            raise RuntimeError("postfix check: " + chk.stdout)
        st = subprocess.run(["script", "-qc", f"postfix -c {p} start", "/dev/null"], capture_output=True, text=True)
        if st.returncode != 0:
            raise RuntimeError("postfix start: " + st.stdout)
        wait_for(self.answers, timeout=30, what="postfix smtpd")

    def answers(self):
        import socket
        try:
            with socket.create_connection(("127.0.0.1", self.smtp_port), timeout=2) as s:
                return s.recv(100).startswith(b"220")
        except OSError:
            return False

    def maildir(self, local):
        return os.path.join(self.mail, local, "Maildir")

    def close(self):
        subprocess.run(["postfix", "-c", self.conf, "stop"], capture_output=True)
        self.dovecot.terminate()
        self.dovecot.wait(timeout=20)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--messages", type=int, default=2000)
    ap.add_argument("--size", type=int, default=4096)
    ap.add_argument("--concurrency", default="1,10,50")
    a = ap.parse_args()
    levels = [int(x) for x in a.concurrency.split(",")]
    root = tempfile.mkdtemp(prefix="postern-bench-")
    os.chmod(root, 0o755)
    print(f"disk ceiling: {disk_ceiling(os.path.join(root, 'disk')):.0f} fsync'd file creates/s")
    inst = Instance(domain="example.test", users={"bench@example.test": "bench-password-1"},
                    conf={"smtp.max_connections": "500", "smtp.max_connections_per_ip": "500", "log.level": "info"})
    peers = None
    results = []
    try:
        inst.start("postern-smtpd")
        port = inst.port("postern-smtpd", "smtp")
        peers = PostfixDovecot(root)
        for c in levels:
            ours = run_load(port, "bench@example.test", inst.maildir("bench@example.test"), a.messages, a.size, c)
            theirs = run_load(peers.smtp_port, "bench@example.test", peers.maildir("bench"), a.messages, a.size, c)
            results.append((c, ours, theirs))
            print(f"{c:3d} connections: Postern {ours:7.1f} msg/s   Postfix+Dovecot LMTP {theirs:7.1f} msg/s   ratio {ours / theirs:4.2f}",
                  flush=True)
    finally:
        if peers:
            peers.close()
        inst.close()
        shutil.rmtree(root, ignore_errors=True)


if __name__ == "__main__":
    main()
