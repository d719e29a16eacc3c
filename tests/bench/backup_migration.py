#!/usr/bin/env python3
"""Backup, restore and IMAP import, measured (by hand, not part of the test suite).

  backup   `posternctl backup create` of an instance holding USERS x MESSAGES
           generated messages (imap_bench_lib's sizes: 1.5-6 KiB, some multipart,
           most read); twice: the first run also gives every message its UID (as
           the first IMAP/POP3 login would), the second is the steady state. Then
           `backup verify` and `restore` into a new folder. Time, files, bytes.
  import   one user's INBOX (IMPORT messages) served by Debian's Dovecot over TLS
           on loopback, copied into a fresh Postern account twice:
             posternctl import imap (UID FETCH in batches of 50, Maildir writes
               in batches, state file)
             an imapsync-style plain client: Python imaplib, UID FETCH of
               (FLAGS INTERNALDATE BODY.PEEK[]) in batches of 50 from Dovecot and
               one APPEND per message to postern-imapd
           and the messages per second of each.

Run as root after `appliance/scripts/install-deps.sh bench` and a build:
  POSTERN_BUILD_DIR=build-rel tests/bench/backup_migration.py --users 10 --messages 10000 --import-messages 5000
"""

import argparse
import imaplib
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from imap_bench_lib import BenchData, make_users  # noqa: E402
from postern_testlib import bin_path, run  # noqa: E402


def timed(args):
    t = time.monotonic()
    p = run(args, timeout=7200)
    return time.monotonic() - t, p.stdout


def tree_bytes(path):
    total = files = 0
    for d, _, names in os.walk(path):
        for n in names:
            try:
                total += os.lstat(os.path.join(d, n)).st_size
                files += 1
            except FileNotFoundError:
                pass
    return files, total


def bench_backup(data, tmp):
    inst = data.inst
    ctl = [bin_path("posternctl"), "--config", inst.config_dir]
    results = {}
    for label in ("first", "second"):
        snap = os.path.join(tmp, f"snap-{label}")
        secs, out = timed(ctl + ["backup", "create", snap])
        files, size = tree_bytes(snap)
        results[label] = (secs, files, size, out.strip().splitlines()[-1])
        if label == "first":
            shutil.rmtree(snap)
    snap = os.path.join(tmp, "snap-second")
    vsecs, vout = timed(ctl + ["backup", "verify", snap])
    target = os.path.join(tmp, "restored")
    os.makedirs(target)
    rsecs, rout = timed([bin_path("posternctl"), "--config", os.path.join(target, "etc"), "restore", snap, "--data-dir",
                         os.path.join(target, "data")])
    rfiles, rsize = tree_bytes(os.path.join(target, "data"))
    print("\n== backup / verify / restore")
    for label in ("first", "second"):
        secs, files, size, line = results[label]
        print(f"backup create ({label} run): {secs:7.1f} s  {files} files  {size / 1e6:8.1f} MB  -> {files / secs:8.0f} files/s")
        print(f"  {line}")
    print(f"backup verify:              {vsecs:7.1f} s  -> {results['second'][2] / 1e6 / vsecs:6.1f} MB/s hashed  ({vout.strip().splitlines()[-1]})")
    print(f"restore:                    {rsecs:7.1f} s  {rfiles} files  {rsize / 1e6:8.1f} MB  -> {rsize / 1e6 / rsecs:6.1f} MB/s")
    print(f"  {rout.strip().splitlines()[-1]}")
    shutil.rmtree(target)
    shutil.rmtree(snap)


def plain_client_copy(src_port, cafile, user, password, dst_port, dst_ctx, dst_user, dst_password):
    """imapsync's way: FETCH from the source, APPEND each message to the destination."""
    import ssl
    ctx = ssl.create_default_context(cafile=cafile)
    ctx.check_hostname = False
    s = imaplib.IMAP4_SSL("127.0.0.1", src_port, ssl_context=ctx)
    s.login(user, password)
    s.select("INBOX", readonly=True)
    typ, data = s.uid("SEARCH", None, "ALL")
    uids = data[0].split()
    d = imaplib.IMAP4_SSL("127.0.0.1", dst_port, ssl_context=dst_ctx)
    d.login(dst_user, dst_password)
    n = 0
    for i in range(0, len(uids), 50):
        typ, data = s.uid("FETCH", b",".join(uids[i:i + 50]).decode(), "(FLAGS INTERNALDATE BODY.PEEK[])")
        for item in data:
            if not isinstance(item, tuple):
                continue
            meta = item[0].decode()
            flags = re.search(r"FLAGS \(([^)]*)\)", meta).group(1).replace("\\Recent", "").strip()
            date = '"' + re.search(r'INTERNALDATE "([^"]+)"', meta).group(1) + '"'
            typ, _ = d.append("INBOX", f"({flags})", date, item[1])
            assert typ == "OK"
            n += 1
    s.logout()
    d.logout()
    return n


def bench_import(data, tmp, count):
    inst = data.inst
    address, password = data.users[0]
    port = data.start_dovecot()
    cert = os.path.join(inst.config_dir, "tls", "cert.pem")
    pwfile = os.path.join(tmp, "pw")
    with open(pwfile, "w") as f:
        f.write(password + "\n")
    for target in ("import1@example.test", "import2@example.test"):
        inst.add_user(target, "import-password-1")
    if os.geteuid() == 0:
        subprocess.run(["chown", "-R", "nobody:nogroup", os.path.join(inst.data_dir, "mail")], check=True)
    t = time.monotonic()
    p = run([bin_path("posternctl"), "--config", inst.config_dir, "import", "imap", "--host", "localhost", "--port", str(port),
             "--tls", "--ca-file", cert, "--user", address, "--password-file", pwfile, "--to", "import1@example.test",
             "--folder-map", "Drafts=,Sent=,Trash=,Junk=,Archive="], timeout=7200)
    ours = time.monotonic() - t
    copied = int(re.search(r"imported (\d+) messages", p.stdout).group(1))
    imapd_port = data.start_postern()
    t = time.monotonic()
    n = plain_client_copy(port, cert, address, password, imapd_port, inst.client_tls_context(), "import2@example.test", "import-password-1")
    plain = time.monotonic() - t
    print(f"\n== IMAP import of {count} messages from Dovecot (TLS, loopback)")
    print(f"posternctl import imap:            {ours:7.1f} s  {copied} messages  -> {copied / ours:7.0f} msg/s")
    print(f"imapsync-style client (FETCH+APPEND): {plain:7.1f} s  {n} messages  -> {n / plain:7.0f} msg/s")
    print(f"ratio: {(copied / ours) / (n / plain):.1f}x")


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--users", type=int, default=10)
    ap.add_argument("--messages", type=int, default=10000, help="messages per user (backup part)")
    ap.add_argument("--import-messages", type=int, default=5000)
    ap.add_argument("--skip-backup", action="store_true")
    ap.add_argument("--skip-import", action="store_true")
    a = ap.parse_args()
    tmp = tempfile.mkdtemp(prefix="postern-bench-backup-")
    os.chmod(tmp, 0o755)
    try:
        if not a.skip_backup:
            t = time.monotonic()
            data = BenchData(make_users(a.users), a.messages)
            print(f"prepared {a.users} users x {a.messages} messages in {time.monotonic() - t:.0f} s")
            try:
                bench_backup(data, tmp)
            finally:
                data.close()
        if not a.skip_import:
            data = BenchData(make_users(1), a.import_messages)
            try:
                bench_import(data, tmp, a.import_messages)
            finally:
                data.close()
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
