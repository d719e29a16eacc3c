"""imap_bench_lib — what imap_mixed.py and imap_idle_memory.py share.

  make_users(n)                     [(address, password)]
  make_messages(n) / iter_messages(n, text=...)
                                    the generated messages, as a list or one at a time
                                    (imap_large_mailbox.py passes a faster body generator)
  BenchData(users, messages, attachments=0.0)
                                    a Postern Instance with those users (cheap Argon2
                                    cost, as the test suite) whose Maildirs hold the same
                                    generated messages, plus a copy of the Maildirs and of
                                    the users file for Dovecot; .start_postern(),
                                    .start_dovecot(), .close()
  pss_kib(pids)                     summed PSS (KiB) from /proc/PID/smaps_rollup
  process_tree(pid)                 a server's first process and every process below it (one /proc pass)
  load(port, users_file, ...)       run postern-imap-load, return its JSON result

Not a test: the benchmarks run by hand, as root (Dovecot and Postern both drop
to "nobody"), after `appliance/scripts/install-deps.sh bench` and a build.
"""

import base64
import email.utils
import json
import os
import random
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "integration", "lib"))
from postern_testlib import Instance, bin_path, free_port, wait_for  # noqa: E402

DOMAIN = "example.test"
SPECIAL_FOLDERS = ("Drafts", "Sent", "Trash", "Junk", "Archive")  # Postern creates these at first login


def make_users(n):
    return [(f"user{k}@{DOMAIN}", f"password-{k}-bench") for k in range(n)]


# ---------------------------------------------------------------------------
# Messages: a few KiB each, varied headers, some multipart, some read/flagged.

FIRST = ["Anna", "Bruno", "Chloé", "Dmitri", "Eva", "Farid", "Grace", "Hiro", "Ines", "Jonas", "Kemal", "Lena"]
LAST = ["Berger", "Costa", "Dubois", "Eriksen", "Fischer", "García", "Horvat", "Ivanova", "Jensen", "Kowalski"]
DOMAINS = ["example.org", "mail.example.net", "lists.example.com", "corp.example", "university.example.edu"]
TOPICS = ["report", "meeting", "invoice", "holiday", "release", "budget", "roadmap", "newsletter", "backup", "review"]
WORDS = ("lorem ipsum dolor sit amet consectetur adipiscing elit sed do eiusmod tempor incididunt ut labore et dolore "
         "magna aliqua enim ad minim veniam quis nostrud exercitation ullamco laboris nisi aliquip ex ea commodo "
         "consequat duis aute irure in reprehenderit voluptate velit esse cillum fugiat nulla pariatur").split()


def _b_encode(s):
    """RFC 2047 encoded word (B encoding), so SEARCH SUBJECT has to decode some subjects."""
    return "=?UTF-8?B?" + base64.b64encode(s.encode()).decode() + "?="


def _text(rng, size):
    lines = []
    total = 0
    while total < size:
        line = " ".join(rng.choice(WORDS) for _ in range(rng.randint(6, 12)))
        lines.append(line)
        total += len(line) + 2
    return "\r\n".join(lines) + "\r\n"


def _attachment(rng, b, text):
    """multipart/mixed body: the text and a base64 attachment of 20-200 KiB (what --realistic uses)."""
    raw = rng.randbytes(rng.randint(20 * 1024, 200 * 1024))
    enc = base64.b64encode(raw).decode()
    lines = "\r\n".join(enc[i:i + 76] for i in range(0, len(enc), 76))
    name = rng.choice(["scan.pdf", "photo.jpg", "minutes.docx", "budget.xlsx", "slides.pdf"])
    return (f"This is a multi-part message in MIME format.\r\n\r\n--{b}\r\n"
            f"Content-Type: text/plain; charset=utf-8\r\nContent-Transfer-Encoding: 7bit\r\n\r\n{text}\r\n"
            f"--{b}\r\nContent-Type: application/octet-stream; name=\"{name}\"\r\n"
            f"Content-Transfer-Encoding: base64\r\nContent-Disposition: attachment; filename=\"{name}\"\r\n\r\n"
            f"{lines}\r\n--{b}--\r\n")


def make_messages(count, seed=20261129, attachments=0.0):
    """[(bytes, flags, unix_time)]: the same list for every user (CRLF line endings).
    `attachments`: the share of messages that carry a 20-200 KiB base64 attachment."""
    return list(iter_messages(count, seed, attachments))


def iter_messages(count, seed=20261129, attachments=0.0, text=None):
    """make_messages one at a time (for large folders); `text(rng, size)` makes body text
    (default: word by word; a large folder passes a faster one)."""
    _text = text or globals()["_text"]
    t0 = 1_780_000_000  # mid 2026
    rng = random.Random(seed)
    for n in range(count):
        when = t0 + n * 3700 + rng.randint(0, 3000)
        first, last = rng.choice(FIRST), rng.choice(LAST)
        sender = f"{first} {last} <{first.lower()[:4]}.{last.lower()[:5]}@{rng.choice(DOMAINS)}>"
        topic = rng.choice(TOPICS)
        subject = f"{topic.capitalize()} {rng.choice(['for', 'about', 're:', 'on'])} week {rng.randint(1, 52)}"
        if rng.random() < 0.2:
            subject = "Re: " + subject
        h = [f"Return-Path: <bounce-{n}@{rng.choice(DOMAINS)}>",
             f"Received: from mx{rng.randint(1, 9)}.example.net (mx.example.net [192.0.2.{rng.randint(1, 254)}])\r\n"
             f"\tby mail.{DOMAIN} with ESMTPS id {rng.getrandbits(48):012x}; {email.utils.formatdate(when)}",
             f"From: {email.utils.formataddr((f'{first} {last}', f'{first.lower()[:4]}@{rng.choice(DOMAINS)}'))}"
             if rng.random() < 0.5 else f"From: {sender}",
             "To: {to}",
             f"Subject: {_b_encode(subject) if rng.random() < 0.15 else subject}",
             f"Date: {email.utils.formatdate(when)}",
             f"Message-ID: <{rng.getrandbits(64):016x}.{n}@{rng.choice(DOMAINS)}>"]
        if rng.random() < 0.3:
            h.append(f"Cc: {rng.choice(FIRST)} <{rng.choice(FIRST).lower()}@{rng.choice(DOMAINS)}>")
        if subject.startswith("Re:"):
            ref = f"<{rng.getrandbits(64):016x}@{rng.choice(DOMAINS)}>"
            h += [f"In-Reply-To: {ref}", f"References: {ref}"]
        if rng.random() < 0.4:
            h.append(f"List-Id: <{topic}.lists.example.com>")
        h.append("MIME-Version: 1.0")
        size = rng.randint(1500, 6000)
        if attachments and rng.random() < attachments:
            b = f"m{rng.getrandbits(64):016x}"
            h.append(f'Content-Type: multipart/mixed; boundary="{b}"')
            body = _attachment(rng, b, _text(rng, size))
        elif rng.random() < 0.3:
            b = f"b{rng.getrandbits(64):016x}"
            h.append(f'Content-Type: multipart/alternative; boundary="{b}"')
            plain = _text(rng, size // 2)
            html = "<html><body><p>" + _text(rng, size // 2).replace("\r\n", "</p>\r\n<p>") + "</p></body></html>\r\n"
            body = (f"This is a multi-part message in MIME format.\r\n\r\n--{b}\r\n"
                    f"Content-Type: text/plain; charset=utf-8\r\nContent-Transfer-Encoding: 7bit\r\n\r\n{plain}\r\n"
                    f"--{b}\r\nContent-Type: text/html; charset=utf-8\r\nContent-Transfer-Encoding: 7bit\r\n\r\n{html}\r\n"
                    f"--{b}--\r\n")
        else:
            h.append("Content-Type: text/plain; charset=utf-8")
            body = _text(rng, size)
        r = rng.random()
        flags = "" if r < 0.3 else "S" if r < 0.85 else "FS" if r < 0.93 else "RS"
        text = "\r\n".join(h) + "\r\n\r\n" + body
        yield (text, flags, when)




def write_maildir(maildir, messages, to):
    """Maildir++ with INBOX = `messages` (unflagged ones in new/, the others in cur/) and the special folders."""
    for sub in ("cur", "new", "tmp"):
        os.makedirs(os.path.join(maildir, sub), exist_ok=True)
    for folder in SPECIAL_FOLDERS:
        for sub in ("cur", "new", "tmp"):
            os.makedirs(os.path.join(maildir, "." + folder, sub), exist_ok=True)
        open(os.path.join(maildir, "." + folder, "maildirfolder"), "w").close()
    for n, (text, flags, when) in enumerate(messages):
        data = text.replace("{to}", to, 1).encode()
        base = f"{when}.M{n:06d}P4242.bench,S={len(data)},W={len(data)}"
        path = os.path.join(maildir, "new", base) if not flags else os.path.join(maildir, "cur", f"{base}:2,{flags}")
        with open(path, "wb") as f:
            f.write(data)
        os.utime(path, (when, when))


def chown_tree(path, user="nobody", group="nogroup"):
    subprocess.run(["chown", "-R", f"{user}:{group}", path], check=True)


# ---------------------------------------------------------------------------

class BenchData:
    """Postern instance + Dovecot copy of the same users, Maildirs, certificate."""

    def __init__(self, users, messages, postern_conf=None, max_connections=1000, attachments=0.0):
        self.users = users
        self.max_connections = max_connections
        conf = {"log.level": "info",
                "imap.max_connections": str(max(2000, max_connections * 2)),
                "imap.max_connections_per_ip": str(max(2000, max_connections * 2)),
                # Per-user session limit (default 50): the idle test may put many sessions on one user.
                "imap.max_sessions_per_user": str(max_connections + 50)}
        conf.update(postern_conf or {})
        self.inst = Instance(domain=DOMAIN, users=dict(users), conf=conf)
        self.root = tempfile.mkdtemp(prefix="postern-bench-imap-")
        os.chmod(self.root, 0o755)
        self.dovecot = None
        self.dovecot_port = None
        msgs = make_messages(messages, attachments=attachments)
        for address, _ in users:
            write_maildir(self.inst.maildir(address), msgs, address)
        # Dovecot gets a copy made before Postern has touched it (each server builds its own UID list / index).
        self.dovecot_mail = os.path.join(self.root, "mail")
        shutil.copytree(os.path.join(self.inst.data_dir, "mail"), self.dovecot_mail, symlinks=True)
        if os.geteuid() == 0:
            chown_tree(os.path.join(self.inst.data_dir, "mail"))
            chown_tree(self.dovecot_mail)
        # The same passwd-file (Postern's users file) for Dovecot, readable by its auth process.
        self.dovecot_users = os.path.join(self.root, "users")
        shutil.copy(os.path.join(self.inst.config_dir, "users"), self.dovecot_users)
        os.chmod(self.dovecot_users, 0o644)
        # "login password" lines for postern-imap-load.
        self.load_users = os.path.join(self.root, "load-users")
        with open(self.load_users, "w") as f:
            for address, password in users:
                f.write(f"{address} {password}\n")

    # -- Postern ------------------------------------------------------------------
    def start_postern(self):
        self.inst.start("postern-imapd")
        return self.inst.port("postern-imapd", "imaps")

    def postern_pid(self):
        return self.inst.procs["postern-imapd"].pid

    def stop_postern(self):
        self.inst.stop("postern-imapd")

    # -- Dovecot ------------------------------------------------------------------
    def dovecot_conf(self, port, login_mode="security"):
        cert = os.path.join(self.inst.config_dir, "tls", "cert.pem")
        key = os.path.join(self.inst.config_dir, "tls", "key.pem")
        n = self.max_connections
        # Dovecot's default "high-security" login mode starts one imap-login process per
        # connection (it also proxies the TLS of the logged-in session); "performance" is
        # the documented high-performance mode: a few long-lived login processes
        # (service_count = 0), one per CPU core, each serving many connections.
        if login_mode == "performance":
            login_extra = f"  service_count = 0\n  process_min_avail = {os.cpu_count() or 1}\n  client_limit = {n + 100}\n"
        elif login_mode == "security":
            login_extra = ""
        else:
            raise ValueError(f"unknown Dovecot login mode {login_mode!r}")
        return f"""
base_dir = {self.root}/run
state_dir = {self.root}/state
log_path = {self.root}/dovecot.log
protocols = imap
listen = 127.0.0.1
ssl = required
ssl_cert = <{cert}
ssl_key = <{key}
mail_location = maildir:{self.dovecot_mail}/%d/%n/Maildir
namespace inbox {{
  inbox = yes
  separator = /
}}
default_internal_user = dovecot
default_login_user = dovenull
# Process and client limits sized for {n} concurrent connections (login processes
# stay in Dovecot's default high-security mode: one per connection, proxying TLS).
default_process_limit = {n + 50}
default_client_limit = {4 * n + 100}
# Postern caches successful verifications (auth.cache_ttl); give Dovecot its cache too.
auth_cache_size = 10M
auth_cache_ttl = 1 hour
passdb {{
  driver = passwd-file
  args = {self.dovecot_users}
}}
userdb {{
  driver = static
  args = uid=nobody gid=nogroup home={self.dovecot_mail}/%d/%n
}}
protocol imap {{
  mail_max_userip_connections = {n + 50}
}}
service imap-login {{
  inet_listener imap {{
    port = 0
  }}
  inet_listener imaps {{
    address = 127.0.0.1
    port = {port}
    ssl = yes
  }}
  process_limit = {n + 50}
{login_extra}}}
service imap {{
  process_limit = {n + 50}
}}
"""

    def start_dovecot(self, login_mode="security"):
        self.dovecot_port = free_port()
        conf = os.path.join(self.root, "dovecot.conf")
        with open(conf, "w") as f:
            f.write(self.dovecot_conf(self.dovecot_port, login_mode))
        self.dovecot = subprocess.Popen(["dovecot", "-F", "-c", conf], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)

        def up():
            if self.dovecot.poll() is not None:
                raise AssertionError("dovecot exited:\n" + self.dovecot_log()[-3000:])
            socket.create_connection(("127.0.0.1", self.dovecot_port), timeout=1).close()
            return True

        wait_for(up, timeout=30, what="dovecot")
        return self.dovecot_port

    def dovecot_log(self):
        try:
            with open(os.path.join(self.root, "dovecot.log"), errors="replace") as f:
                return f.read()
        except FileNotFoundError:
            return ""

    def stop_dovecot(self):
        if self.dovecot and self.dovecot.poll() is None:
            self.dovecot.terminate()
            try:
                self.dovecot.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.dovecot.kill()
                self.dovecot.wait()
        self.dovecot = None

    def close(self):
        self.stop_dovecot()
        if os.environ.get("BENCH_SHOW_LOG"):
            print("--- dovecot.log (tail)\n" + self.dovecot_log()[-3000:])
            print("--- postern mail.log (tail)\n" + self.inst.log()[-3000:])
        self.inst.close()
        if not os.environ.get("POSTERN_KEEP_TEST_DIRS"):
            shutil.rmtree(self.root, ignore_errors=True)


# ---------------------------------------------------------------------------
# Measuring.

def load(port, users_file, clients, seconds=10, mode=None, extra=()):
    """Run postern-imap-load; return its JSON result (errors are printed by the tool)."""
    args = [bin_path("postern-imap-load"), "--port", str(port), "--users", users_file, "--clients", str(clients),
            "--seconds", str(seconds), "--json", *extra]
    if mode:
        args.append(mode)
    p = subprocess.run(args, stdout=subprocess.PIPE, text=True, timeout=seconds + 300)
    lines = [ln for ln in p.stdout.splitlines() if ln.startswith("{")]
    if not lines:
        raise AssertionError(f"postern-imap-load gave no result (exit {p.returncode}):\n{p.stdout}")
    return json.loads(lines[-1])


def children_of(pid):
    out = []
    for d in os.listdir("/proc"):
        if not d.isdigit():
            continue
        try:
            with open(f"/proc/{d}/stat") as f:
                parts = f.read().rsplit(")", 1)[1].split()
            if int(parts[1]) == pid:
                out.append(int(d))
        except (FileNotFoundError, ProcessLookupError, IndexError):
            continue
    return out


def process_tree(pid):
    """A server's first process and every process below it: Dovecot's master with anvil, log,
    config, auth, stats, imap-login and imap; postern-imapd with its workers (imap.processes).
    One pass over /proc (Dovecot runs thousands of processes at scale)."""
    children = {}
    for d in os.listdir("/proc"):
        if not d.isdigit():
            continue
        try:
            with open(f"/proc/{d}/stat") as f:
                parent = int(f.read().rsplit(")", 1)[1].split()[1])
        except (FileNotFoundError, ProcessLookupError, IndexError, ValueError):
            continue
        children.setdefault(parent, []).append(int(d))
    seen, todo = [], [pid]
    while todo:
        p = todo.pop()
        seen.append(p)
        todo += children.get(p, [])
    return seen


def process_name(pid):
    try:
        with open(f"/proc/{pid}/cmdline", "rb") as f:
            return f.read().split(b"\0")[0].decode(errors="replace") or "?"
    except FileNotFoundError:
        return "?"


def pss_kib(pids):
    total = 0
    for pid in pids:
        try:
            with open(f"/proc/{pid}/smaps_rollup") as f:
                for line in f:
                    if line.startswith("Pss:"):
                        total += int(line.split()[1])
                        break
        except (FileNotFoundError, ProcessLookupError):
            continue
    return total


def inotify_instances(pids):
    n = 0
    for pid in pids:
        try:
            for fd in os.listdir(f"/proc/{pid}/fd"):
                try:
                    if os.readlink(f"/proc/{pid}/fd/{fd}") == "anon_inode:inotify":
                        n += 1
                except OSError:
                    continue
        except (FileNotFoundError, ProcessLookupError):
            continue
    return n


def loadavg():
    return os.getloadavg()[0]
