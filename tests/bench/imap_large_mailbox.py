#!/usr/bin/python3
"""One large folder: Postern vs Dovecot on the same 100,000 messages.

A Maildir of --messages generated messages (the headers of imap_bench_lib's
messages, bodies of 1.5-6 KiB, --attachments of them with a 20-200 KiB base64
attachment, 30 % unread) is generated once into --cache (reused when it is
there) and imported the same way into both servers: hard links of its files into
the INBOX of one user, Postern's and Dovecot's copies (each server then builds its
own UID list and index). Both run at the same time on their own loopback ports;
every operation is timed on each server in turn (Postern, Dovecot, Postern, ...)
and the median of --repeat runs is printed, over implicit TLS, the client reading
the whole answer:

  first SELECT         the folder as imported (no UID list, no index)
  SELECT               in a new session, index built
  UID FETCH 1:* (FLAGS)
  newest 50 envelopes  FETCH n-49:n (UID FLAGS RFC822.SIZE INTERNALDATE ENVELOPE)
  SEARCH header        UID SEARCH FROM "kowalski"
  SEARCH body          UID SEARCH BODY "quokka" (in about 0.1 % of the bodies: every file is read)
  SORT date / subject  UID SORT (DATE) UTF-8 ALL, UID SORT (SUBJECT) UTF-8 ALL
  QRESYNC resync       a session with QRESYNC notes UIDVALIDITY and HIGHESTMODSEQ;
                       another makes 1,000 changes (900 flag changes, 100 expunges);
                       SELECT INBOX (QRESYNC (v m)) of a new session is timed
  SELECT, new process  the server stopped and started again (index kept), first SELECT timed
  SELECT, index lost   the server stopped, its index removed (Postern:
                       postern-index.sqlite*, Dovecot: dovecot.index*; both keep
                       their dovecot-uidlist), started again, first SELECT timed

Caches are warm: every message file is read once before the first server starts (the
machine is shared, and dropping the page cache would hurt other work); "first SELECT"
and the first SEARCH therefore measure the servers' work, not the disk, for both. Not a
test: run by hand, as root, after `appliance/scripts/install-deps.sh bench` and a
build:

    POSTERN_BUILD_DIR=build tests/bench/imap_large_mailbox.py [--messages 100000] [--repeat 3]

(--skip 'SEARCH,SORT' leaves out the operations whose names start so, for quicker
runs while working on the others.)
"""

import argparse
import glob
import os
import random
import re
import socket
import ssl
import statistics
import subprocess
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from imap_bench_lib import BenchData, WORDS, chown_tree, iter_messages, make_users  # noqa: E402


# ---------------------------------------------------------------------------- data

def _line_pool(seed=7):
    rng = random.Random(seed)
    return [" ".join(rng.choice(WORDS) for _ in range(rng.randint(6, 12))) for _ in range(4000)]


POOL = _line_pool()


def fast_text(rng, size):
    """Body text from a pool of lines (word by word is too slow for 100,000 messages);
    about 0.1 % of the bodies carry the word "quokka" for SEARCH BODY."""
    lines, total = [], 0
    while total < size:
        line = rng.choice(POOL)
        lines.append(line)
        total += len(line) + 2
    if rng.random() < 0.001:
        lines.insert(len(lines) // 2, "the quokka report is attached")
    return "\r\n".join(lines) + "\r\n"


def generate(cache, count, attachments):
    """cache/{cur,new}: the folder's files (Maildir names with S= sizes), written once."""
    done = os.path.join(cache, ".complete")
    if os.path.exists(done):
        return False
    for sub in ("cur", "new", "tmp"):
        os.makedirs(os.path.join(cache, sub), exist_ok=True)
    to = "user0@example.test"
    for n, (text, flags, when) in enumerate(iter_messages(count, seed=100_000, attachments=attachments, text=fast_text)):
        data = text.replace("{to}", to, 1).encode()
        base = f"{when}.M{n:06d}P4242.large,S={len(data)},W={len(data)}"
        path = os.path.join(cache, "new", base) if not flags else os.path.join(cache, "cur", f"{base}:2,{flags}")
        with open(path, "wb") as f:
            f.write(data)
        os.utime(path, (when, when))
    open(done, "w").close()
    return True


def import_into(cache, maildir):
    """Hard links of the cached files into maildir's cur/ and new/ (the same for both servers)."""
    for sub in ("cur", "new"):
        subprocess.run(["cp", "-al", os.path.join(cache, sub) + "/.", os.path.join(maildir, sub)], check=True)


def warm_page_cache(cache):
    """Reads every message file once. Both servers' files are hard links to these, so the
    first server to read the contents (Postern's SEARCH FROM comes first) would otherwise
    pay the disk reads alone and the second find them in the page cache. Seconds taken."""
    t0 = time.monotonic()
    for path in glob.glob(os.path.join(cache, "*", "*")):
        with open(path, "rb") as f:
            while f.read(1 << 20):
                pass
    return time.monotonic() - t0


# ---------------------------------------------------------------------------- client

class Imap:
    """A minimal IMAP client over implicit TLS that reads each answer whole (to its tagged line)."""

    def __init__(self, port, timeout=900):
        ctx = ssl.create_default_context()
        ctx.check_hostname = False
        ctx.verify_mode = ssl.CERT_NONE
        self.sock = ctx.wrap_socket(socket.create_connection(("127.0.0.1", port), timeout=timeout))
        self.buf = bytearray()
        self.n = 0
        self._read_until(b"\r\n", 0)

    def _read_until(self, marker, start):
        while True:
            i = self.buf.find(marker, start)
            if i >= 0:
                return i
            start = max(0, len(self.buf) - len(marker))
            chunk = self.sock.recv(1 << 20)
            if not chunk:
                raise ConnectionError("connection closed")
            self.buf += chunk

    def cmd(self, text):
        """(seconds, untagged bytes, tagged line); raises unless the answer is OK."""
        self.n += 1
        tag = f"Q{self.n:05d}".encode()
        t0 = time.monotonic()
        self.sock.sendall(tag + b" " + text.encode() + b"\r\n")
        marker, start = b"\r\n" + tag + b" ", 0
        while True:
            if self.buf.startswith(tag + b" "):
                i = 0
                break
            j = self.buf.find(marker, start)
            if j >= 0:
                i = j + 2
                break
            start = max(0, len(self.buf) - len(marker))
            chunk = self.sock.recv(1 << 20)
            if not chunk:
                raise ConnectionError("connection closed")
            self.buf += chunk
        e = self._read_until(b"\r\n", i)
        elapsed = time.monotonic() - t0
        untagged, tagged = bytes(self.buf[:i]), bytes(self.buf[i:e])
        del self.buf[:e + 2]
        if not tagged.startswith(tag + b" OK"):
            raise AssertionError(f"{text!r} -> {tagged[:300]!r}")
        return elapsed, untagged, tagged

    def close(self):
        try:
            self.sock.sendall(b"Z LOGOUT\r\n")
        except OSError:
            pass
        self.sock.close()


def session(port, user, password):
    c = Imap(port)
    c.cmd(f'LOGIN "{user}" "{password}"')
    return c


def number(pattern, data):
    m = re.search(pattern, data)
    if not m:
        raise AssertionError(f"{pattern!r} not in {data[:500]!r}")
    return int(m.group(1))


# ---------------------------------------------------------------------------- main

def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--messages", type=int, default=100_000)
    ap.add_argument("--attachments", type=float, default=0.02, help="share of messages with a 20-200 KiB attachment")
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--cache", default="")
    ap.add_argument("--skip", default="", help="comma-separated operations not to time (a prefix each, e.g. "
                    "'SEARCH,SORT' while working on SELECT)")
    a = ap.parse_args()
    skipped = [x.strip().lower() for x in a.skip.split(",") if x.strip()]

    def wanted(op):
        return not any(op.lower().startswith(x) for x in skipped)
    cache = a.cache or f"/var/tmp/postern-bench-large-{a.messages}-{a.attachments}"
    t0 = time.monotonic()
    made = generate(cache, a.messages, a.attachments)
    size = sum(os.path.getsize(p) for p in glob.glob(os.path.join(cache, "*", "*")))
    print(f"{'generated' if made else 'reusing'} {cache}: {a.messages:,} messages, {size / 2**20:,.0f} MiB "
          f"({time.monotonic() - t0:.0f} s); load average {os.getloadavg()[0]:.1f}", flush=True)

    users = make_users(1)
    address, password = users[0]
    data = BenchData(users, 0, max_connections=50)
    dovecot_maildir = os.path.join(data.dovecot_mail, "example.test", "user0", "Maildir")
    postern_maildir = data.inst.maildir(address)
    for m in (postern_maildir, dovecot_maildir):
        import_into(cache, m)
    print(f"page cache warmed: every file read once in {warm_page_cache(cache):.1f} s", flush=True)
    if os.geteuid() == 0:
        chown_tree(postern_maildir)
        chown_tree(dovecot_maildir)
    results = {}  # operation -> server -> [seconds]

    def note(op, server, seconds):
        results.setdefault(op, {}).setdefault(server, []).append(seconds)
        print(f"  {op:<28} {server:<8} {seconds * 1000:10,.1f} ms", flush=True)

    try:
        ports = {"Postern": data.start_postern(), "Dovecot": data.start_dovecot("performance")}

        servers = ["Postern", "Dovecot"]
        for server in servers:
            c = session(ports[server], address, password)
            note("first SELECT (import)", server, c.cmd("SELECT INBOX")[0])
            c.close()
        for rep in range(a.repeat):
            for server in (servers if rep % 2 == 0 else servers[::-1]):
                c = session(ports[server], address, password)
                secs, untagged, _ = c.cmd("SELECT INBOX")
                note("SELECT", server, secs)
                n = number(rb"\* (\d+) EXISTS", untagged)
                secs, untagged, _ = c.cmd("UID FETCH 1:* (FLAGS)")
                note("UID FETCH 1:* (FLAGS)", server, secs)
                got = untagged.count(b" FETCH (")
                if got != n:
                    raise AssertionError(f"{server}: UID FETCH 1:* gave {got} of {n}")
                secs, untagged, _ = c.cmd(f"FETCH {n - 49}:{n} (UID FLAGS RFC822.SIZE INTERNALDATE ENVELOPE)")
                note("newest 50 envelopes", server, secs)
                hits_from = hits_body = -1
                if wanted("SEARCH FROM"):
                    secs, untagged, _ = c.cmd('UID SEARCH FROM "kowalski"')
                    note("SEARCH FROM (header)", server, secs)
                    hits_from = len(untagged.split()) - 2
                if wanted("SEARCH BODY"):
                    secs, untagged, _ = c.cmd('UID SEARCH BODY "quokka"')
                    note("SEARCH BODY (text)", server, secs)
                    hits_body = len(untagged.split()) - 2
                if wanted("SORT (DATE)"):
                    secs, untagged, _ = c.cmd("UID SORT (DATE) UTF-8 ALL")
                    note("SORT (DATE)", server, secs)
                if wanted("SORT (SUBJECT)"):
                    secs, untagged, _ = c.cmd("UID SORT (SUBJECT) UTF-8 ALL")
                    note("SORT (SUBJECT)", server, secs)
                c.close()
                print(f"  ({server}: {n:,} messages; FROM kowalski {hits_from:,} hits, BODY quokka {hits_body:,})",
                      flush=True)
        # QRESYNC: 1,000 changes (900 flag changes, 100 expunges) made by another session.
        for rep in range(a.repeat):
            for server in (servers if rep % 2 == 0 else servers[::-1]):
                c = session(ports[server], address, password)
                c.cmd("ENABLE QRESYNC")
                _, untagged, _ = c.cmd("SELECT INBOX")
                validity = number(rb"UIDVALIDITY (\d+)", untagged)
                modseq = number(rb"HIGHESTMODSEQ (\d+)", untagged)
                _, untagged, _ = c.cmd("UID SEARCH ALL")
                uids = [int(x) for x in untagged.split()[2:]]
                c.close()
                rng = random.Random(rep)
                picked = rng.sample(uids, 1000)
                w = session(ports[server], address, password)
                w.cmd("SELECT INBOX")
                flag = "\\Flagged" if rep % 2 == 0 else "$Bench"
                w.cmd(f"UID STORE {','.join(map(str, picked[:900]))} +FLAGS.SILENT ({flag})")
                w.cmd(f"UID STORE {','.join(map(str, picked[900:]))} +FLAGS.SILENT (\\Deleted)")
                w.cmd(f"UID EXPUNGE {','.join(map(str, picked[900:]))}")
                w.close()
                c = session(ports[server], address, password)
                c.cmd("ENABLE QRESYNC")
                secs, untagged, _ = c.cmd(f"SELECT INBOX (QRESYNC ({validity} {modseq}))")
                note("QRESYNC after 1,000 changes", server, secs)
                fetched = untagged.count(b" FETCH (")
                vanished = untagged.count(b"VANISHED")
                c.close()
                print(f"  ({server}: {fetched} FETCH and {vanished} VANISHED responses)", flush=True)
        # First SELECT of a freshly started server, index kept: a process that has not
        # listed the folder yet (what a session reaching the other postern-imapd process sees).
        if wanted("SELECT, new process"):
            for rep in range(a.repeat):
                for server in (servers if rep % 2 == 0 else servers[::-1]):
                    if server == "Postern":
                        data.stop_postern()
                        ports[server] = data.start_postern()
                    else:
                        data.stop_dovecot()
                        ports[server] = data.start_dovecot("performance")
                    c = session(ports[server], address, password)
                    note("SELECT, new process", server, c.cmd("SELECT INBOX")[0])
                    c.close()
        # First SELECT after the index is lost (as after a crash that took it).
        for rep in range(a.repeat):
            for server in (servers if rep % 2 == 0 else servers[::-1]):
                if server == "Postern":
                    data.stop_postern()
                    for p in glob.glob(os.path.join(postern_maildir, "postern-index.sqlite*")):
                        os.unlink(p)
                    ports[server] = data.start_postern()
                else:
                    data.stop_dovecot()
                    for p in glob.glob(os.path.join(dovecot_maildir, "dovecot.index*")):
                        os.unlink(p)
                    ports[server] = data.start_dovecot("performance")
                c = session(ports[server], address, password)
                note("SELECT, index removed", server, c.cmd("SELECT INBOX")[0])
                c.close()

        print(f"\n{a.messages:,} messages ({size / 2**20:,.0f} MiB, {a.attachments:.0%} with attachments); median of "
              f"{a.repeat} runs each, alternating; load average now {os.getloadavg()[0]:.1f}\n")
        print("| operation | Postern | Dovecot | Postern / Dovecot time |")
        print("| --- | ---: | ---: | ---: |")
        for op, by in results.items():
            p, d = statistics.median(by["Postern"]), statistics.median(by["Dovecot"])
            print(f"| {op} | {p * 1000:,.0f} ms | {d * 1000:,.0f} ms | {p / d:.2f} |")
    finally:
        data.close()


if __name__ == "__main__":
    main()
