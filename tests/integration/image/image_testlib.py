"""image_testlib — helpers shared by the container and VM image tests.

  build_images(*kinds)     runs image/build.sh (--container/--vm) from the test's own build tree
                           into <build>/image-out, once per ctest run; returns that folder
  Podman(root)             podman with a private store under `root`, the runtime flags that work
                           on our CI machines (runc, cgroupfs, raised but allowed ulimits) and
                           userspace port forwarding (slirp4netns), so nothing on the host changes
  wait_banner(port, ...)   polls until a server behind a forwarded port sends its greeting, past the
                           continuation lines of a multi-line SMTP greeting (a forward accepts TCP
                           before anything listens, so a connect proves nothing)
  mail_round_trip(ports)   swaks to port 25, then IMAP (STARTTLS on 143, implicit TLS on 993) and POP3
                           (implicit TLS on 995) read the message back; returns what each client saw
  skip_unless_root_and(tools) exits 77 (ctest SKIP) when the machine cannot run image tests at all

Limits: every subprocess has a timeout; the tests clean up their containers and stores.
"""

import imaplib
import os
import poplib
import shutil
import socket
import ssl
import subprocess
import sys
import time

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "lib"))
from postern_testlib import BUILD_DIR, SOURCE_DIR, wait_for  # noqa: E402

IMAGE_OUT = os.path.join(BUILD_DIR, "image-out")
TAG = "localhost/postern:test"


def skip_unless_root_and(tools):
    missing = [t for t in tools if shutil.which(t) is None]
    if os.geteuid() != 0 or missing:
        why = "not root" if os.geteuid() != 0 else "missing " + " ".join(missing)
        print(f"SKIP: image tests need root and appliance/scripts/install-deps.sh image ({why})")
        sys.exit(77)


def build_images(*kinds, timeout=2400):
    """Builds the requested images (container, vm) with image/build.sh from this build tree."""
    args = ["bash", os.path.join(SOURCE_DIR, "image", "build.sh"), "--use-build", BUILD_DIR, "--out", IMAGE_OUT, "--tag", TAG]
    args += [f"--{k}" for k in kinds]
    print("$ " + " ".join(args), flush=True)
    t0 = time.monotonic()
    p = subprocess.run(args, capture_output=True, text=True, timeout=timeout)
    print(p.stderr[-6000:], flush=True)
    if p.returncode != 0:
        raise AssertionError(f"image/build.sh failed ({p.returncode}):\n{p.stdout[-3000:]}")
    print(f"image build took {time.monotonic() - t0:.1f}s", flush=True)
    return IMAGE_OUT


class Podman:
    """podman with a private store; every container it starts is removed by close()."""

    RUN_FLAGS = ["--ulimit", "nofile=4096:4096", "--ulimit", "nproc=4096:4096",
                 "--network", "slirp4netns:port_handler=slirp4netns"]

    def __init__(self, root):
        self.root = root
        self.base = ["podman", "--root", os.path.join(root, "storage"), "--runroot", os.path.join(root, "run"),
                     "--tmpdir", os.path.join(root, "tmp"), "--storage-driver", "overlay",
                     "--runtime", "runc", "--cgroup-manager", "cgroupfs", "--events-backend", "file"]
        self.containers = []

    def __call__(self, *args, check=True, timeout=120, input=None):
        p = subprocess.run(self.base + list(args), capture_output=True, text=True, timeout=timeout, input=input)
        if check and p.returncode != 0:
            raise AssertionError(f"podman {' '.join(args)} exited {p.returncode}:\n{p.stdout}\n{p.stderr}")
        return p

    def run_detached(self, name, image, env=(), ports=(), volumes=(), extra=()):
        args = ["run", "-d", "--name", name, *self.RUN_FLAGS]
        for k, v in env:
            args += ["-e", f"{k}={v}"]
        for host_port, container_port in ports:
            args += ["-p", f"127.0.0.1:{host_port}:{container_port}"]
        for v in volumes:
            args += ["-v", v]
        self.containers.append(name)
        return self(*args, *extra, image).stdout.strip()

    def logs(self, name):
        p = self("logs", name, check=False)
        return p.stdout + p.stderr

    def close(self):
        for name in self.containers:
            self("rm", "-f", "-t", "5", name, check=False)
        self("volume", "prune", "-f", check=False)
        self("rmi", "-a", "-f", check=False, timeout=300)
        shutil.rmtree(self.root, ignore_errors=True)


def wait_banner(port, prefix, tls=False, timeout=60.0, host="127.0.0.1"):
    """Waits until the server behind host:port greets with `prefix` (bytes); returns the greeting."""
    ctx = ssl.create_default_context()
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE

    def greeting():
        with socket.create_connection((host, port), timeout=15) as s:
            s.settimeout(15)  # SMTP's final greeting line comes after smtp.greet_delay; QEMU is slow
            conn = ctx.wrap_socket(s) if tls else s
            try:
                # SMTP on port 25 greets in two lines ("220-" at once, "220 " after
                # smtp.greet_delay): read until a final line, then compare it.
                data = b""
                while True:
                    chunk = conn.recv(4096)
                    if not chunk:
                        return None
                    data += chunk
                    lines = data.split(b"\r\n") if b"\r\n" in data else data.split(b"\n")
                    complete = lines[:-1]
                    for line in complete:
                        if line.startswith(prefix):
                            return data
                        if not (len(line) > 3 and line[3:4] == b"-"):
                            return None
            finally:
                conn.close()

    return wait_for(greeting, timeout=timeout, interval=0.5, what=f"the greeting {prefix!r} on 127.0.0.1:{port}")


def tls_context():
    ctx = ssl.create_default_context()
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE  # the wizard made a self-signed certificate inside the image
    return ctx


def send_with_swaks(port, to, subject, body, timeout=60):
    p = subprocess.run(["swaks", "--server", f"127.0.0.1:{port}", "--to", to, "--from", "sender@example.net",
                        "--helo", "client.example.net", "--header", f"Subject: {subject}", "--body", body],
                       capture_output=True, text=True, timeout=timeout)
    if p.returncode != 0 or "250 " not in p.stdout.split("<-  354")[-1]:
        raise AssertionError(f"swaks failed ({p.returncode}):\n{p.stdout}\n{p.stderr}")
    return p.stdout


def imap_fetch_subjects(port, user, password, starttls):
    """Logs in over IMAP (STARTTLS or implicit TLS) and returns the Subject lines of INBOX."""
    if starttls:
        m = imaplib.IMAP4("127.0.0.1", port, timeout=30)
        m.starttls(ssl_context=tls_context())
    else:
        m = imaplib.IMAP4_SSL("127.0.0.1", port, ssl_context=tls_context(), timeout=30)
    try:
        m.login(user, password)
        typ, data = m.select("INBOX", readonly=True)
        assert typ == "OK", data
        typ, data = m.search(None, "ALL")
        subjects = []
        for num in data[0].split():
            typ, msg = m.fetch(num, "(BODY.PEEK[HEADER.FIELDS (SUBJECT)])")
            assert typ == "OK", msg
            subjects.append(msg[0][1].decode().strip())
        return subjects
    finally:
        try:
            m.logout()
        except Exception:  # noqa: BLE001 - best effort on a failed session
            pass


def pop3_fetch_bodies(port, user, password):
    """Logs in over POP3 with implicit TLS and returns every message as text (without deleting)."""
    p = poplib.POP3_SSL("127.0.0.1", port, context=tls_context(), timeout=30)
    try:
        p.user(user)
        p.pass_(password)
        count, _ = p.stat()
        out = []
        for i in range(1, count + 1):
            _, lines, _ = p.retr(i)
            out.append(b"\r\n".join(lines).decode("utf-8", "replace"))
        return out
    finally:
        p.quit()


def mail_round_trip(ports, user, password, subject, timeout=60):
    """swaks -> port 25, then IMAP (143 STARTTLS, 993) and POP3 (995) must all show the message."""
    body = f"round trip through the image: {subject}"
    send_with_swaks(ports[25], user, subject, body)
    found = wait_for(lambda: [s for s in imap_fetch_subjects(ports[143], user, password, starttls=True) if subject in s],
                     timeout=timeout, interval=0.5, what=f"'{subject}' in INBOX over IMAP")
    imaps = imap_fetch_subjects(ports[993], user, password, starttls=False)
    assert any(subject in s for s in imaps), imaps
    pop = pop3_fetch_bodies(ports[995], user, password)
    assert any(f"Subject: {subject}" in m and body in m for m in pop), pop
    return {"imap": found, "imaps": imaps, "pop3_messages": len(pop)}


def main(argv):
    """`python3 image_testlib.py round-trip USER PASSWORD SUBJECT` — the round trip on the standard
    ports of 127.0.0.1, for use inside another network namespace (nsenter -n ... python3 ...)."""
    if len(argv) != 5 or argv[1] != "round-trip":
        print("usage: image_testlib.py round-trip USER PASSWORD SUBJECT", file=sys.stderr)
        return 2
    ports = {p: p for p in (25, 465, 587, 143, 993, 110, 995)}
    wait_banner(25, b"220 ", timeout=120)
    wait_banner(143, b"* OK")
    wait_banner(995, b"+OK", tls=True)
    print(mail_round_trip(ports, argv[2], argv[3], argv[4]))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
