"""Container image: build it with image/build.sh, run it with podman, use it like a mail server.

What is checked (all through ports published on 127.0.0.1 high ports, real clients):
  - the OCI and Docker archives carry the entry point, every mail port, the volumes and the health
    check, and the image is under 300 MB uncompressed (restic, the spam filter and unbound included);
  - first start without a terminal and with POSTERN_* variables (password from a mounted secret
    file) runs the wizard, then the supervisor as PID 1; swaks -> 25, then IMAP (143 STARTTLS, 993)
    and POP3 (995) read the message back; the daemons run as the `postern` user; logs land in the
    log volume; the health check agrees with `posternctl status`;
  - SIGTERM (podman stop) ends it cleanly; the next start skips the wizard and the mail is still there;
  - upgrade: image N -> N+1 (N plus the test-only migration step) on the same volumes keeps every
    message, UID, flag, the DKIM keys, the queue and the account; image N then refuses the data;
  - no terminal and no answers: exit 78 with instructions;
  - `podman run -it`: the wizard's questions answered through a pseudo-terminal, then the daemons.
Needs root, podman, buildah, mmdebstrap, slirp4netns, swaks (install-deps.sh test image); exits 77
(skipped) otherwise. The image build reuses the cached Debian rootfs when the package list is unchanged.
"""

import imaplib
import json
import os
import pty
import re
import select
import shutil
import smtplib
import subprocess
import sys
import tarfile
import tempfile
import time
import unittest

sys.path.insert(0, os.path.dirname(__file__))
import image_testlib as itl  # noqa: E402
from postern_testlib import free_port, wait_for  # noqa: E402

PORTS = (25, 465, 587, 143, 993, 110, 995)
USER = "alice@example.test"
PASSWORD = "correct horse battery staple"


def setUpModule():
    itl.skip_unless_root_and(["podman", "buildah", "mmdebstrap", "slirp4netns", "swaks", "skopeo"])
    global OUT, PODMAN
    OUT = itl.build_images("container")
    PODMAN = itl.Podman(tempfile.mkdtemp(prefix="postern-podman-", dir=os.environ.get("TMPDIR", "/tmp")))
    t0 = time.monotonic()
    PODMAN("load", "-i", os.path.join(OUT, "postern-container.docker.tar"), timeout=300)
    print(f"podman load (docker archive): {time.monotonic() - t0:.1f}s", flush=True)


def tearDownModule():
    if "PODMAN" in globals():
        PODMAN.close()


def published_ports():
    return {p: free_port() for p in PORTS}


def process_users(name):
    """"<command name> <uid>" for every process in the container, one per line."""
    return PODMAN("exec", name, "sh", "-c",
                  "for s in /proc/[0-9]*/status; do n=$(sed -n 's/^Name:\\t//p' $s); u=$(sed -n 's/^Uid:\\t\\([0-9]*\\).*/\\1/p' $s); "
                  "echo \"$n $u\"; done").stdout


def wait_ready(name, ports):
    """Every mail listener greets through its forwarded port."""
    try:
        itl.wait_banner(ports[25], b"220 ", timeout=90)
        itl.wait_banner(ports[587], b"220 ")
        itl.wait_banner(ports[465], b"220 ", tls=True)
        itl.wait_banner(ports[143], b"* OK")
        itl.wait_banner(ports[993], b"* OK", tls=True)
        itl.wait_banner(ports[110], b"+OK")
        itl.wait_banner(ports[995], b"+OK", tls=True)
    except TimeoutError:
        print(PODMAN.logs(name))
        raise


class ContainerImage(unittest.TestCase):
    def test_archives_metadata_and_size(self):
        for archive in ("postern-container.oci.tar", "postern-container.docker.tar"):
            kind = "oci-archive" if archive.endswith(".oci.tar") else "docker-archive"
            p = subprocess.run(["skopeo", "inspect", "--config", f"{kind}:{os.path.join(OUT, archive)}"],
                               capture_output=True, text=True, timeout=120)
            self.assertEqual(p.returncode, 0, p.stderr)
            cfg = json.loads(p.stdout)["config"]
            self.assertEqual(cfg["Entrypoint"], ["/usr/sbin/postern-entrypoint"], archive)
            self.assertEqual(set(cfg["ExposedPorts"]), {f"{p}/tcp" for p in (25, 465, 587, 143, 993, 110, 995, 80, 443, 4190)}, archive)
            self.assertEqual(set(cfg["Volumes"]), {"/etc/postern", "/var/lib/postern", "/var/log/postern"}, archive)
        # The health check exists only in the Docker image format (skopeo shows the OCI view): read
        # the Docker archive's own config file.
        with tarfile.open(os.path.join(OUT, "postern-container.docker.tar")) as t:
            manifest = json.load(t.extractfile("manifest.json"))
            docker_cfg = json.load(t.extractfile(manifest[0]["Config"]))["config"]
        self.assertEqual(docker_cfg["Healthcheck"]["Test"], ["CMD", "posternctl", "--config", "/etc/postern", "status"])
        with open(os.path.join(OUT, "postern-container.size")) as f:
            size = int(f.read())
        print(f"image size: {size / 1e6:.1f} MB uncompressed")
        # restic (off-site backups) is about 25 MB of it; the spam filter about 95 MB: rspamd with
        # libhyperscan about 35 MB, perl about 47 MB (a dependency of Debian's rspamd package),
        # redis about 6 MB; the bundled resolver about 35 MB: unbound 5 MB and libpython3.11 with
        # its standard library (Debian's unbound links its Python module), 292 MB in all on
        # 2026-12-03.
        self.assertLess(size, 300_000_000)

    def test_first_start_from_environment_then_restart(self):
        name = "postern-env"
        ports = published_ports()
        secret_dir = tempfile.mkdtemp(prefix="postern-secret-")
        self.addCleanup(shutil.rmtree, secret_dir, True)
        with open(os.path.join(secret_dir, "password"), "w") as f:
            f.write(PASSWORD + "\n")
        t0 = time.monotonic()
        PODMAN.run_detached(name, itl.TAG,
                            env=[("POSTERN_DOMAIN", "example.test"), ("POSTERN_HOSTNAME", "mail.example.test"),
                                 ("POSTERN_USER", USER), ("POSTERN_PASSWORD_FILE", "/run/secrets/password"),
                                 ("POSTERN_SKIP_NETWORK_CHECKS", "1")],
                            ports=[(ports[p], p) for p in PORTS],
                            volumes=[f"{secret_dir}:/run/secrets:ro", f"{name}-etc:/etc/postern",
                                     f"{name}-data:/var/lib/postern", f"{name}-log:/var/log/postern"])
        wait_ready(name, ports)
        print(f"first start: all listeners greet after {time.monotonic() - t0:.1f}s")
        logs = PODMAN.logs(name)
        self.assertIn("Postern first-run wizard", logs)
        self.assertIn("supervisor.starting config=/etc/postern pid1=yes", logs)
        self.assertNotIn(PASSWORD, logs)

        seen = itl.mail_round_trip(ports, USER, PASSWORD, "image test one")
        print(f"round trip: {seen}")

        # The daemons dropped root; the supervisor (PID 1) did not need to.
        users = process_users(name)
        postern_uid = PODMAN("exec", name, "id", "-u", "postern").stdout.strip()
        for daemon in ("postern-smtpd", "postern-imapd", "postern-pop3d"):
            self.assertRegex(users, rf"(?m)^{daemon} {postern_uid}$", users)
        # Spam filtering is on out of the box: once rspamd answers (its start takes seconds), a
        # message with the GTUBE test string is refused at DATA and nothing is stored; the
        # engines run as the daemons' user, not as root.
        wait_for(lambda: "spam filter: on (rspamd at" in PODMAN("exec", name, "posternctl", "status", check=False).stdout,
                 timeout=120, interval=1, what="rspamd answering in the container")
        with smtplib.SMTP("127.0.0.1", ports[25], timeout=60) as smtp:
            smtp.ehlo("client.example.net")
            smtp.mail("sender@example.net")
            smtp.rcpt(USER)
            try:
                answer = smtp.data(b"From: sender@example.net\r\nTo: " + USER.encode() + b"\r\nSubject: spam probe\r\n\r\n"
                                   b"XJS*C4JDBQADN1.NSBN3*2IDNEN*GTUBE-STANDARD-ANTI-UBE-TEST-EMAIL*C.34X\r\n")
            except smtplib.SMTPDataError as e:
                answer = (e.smtp_code, e.smtp_error)
        if answer[0] != 550:
            log = PODMAN("exec", name, "cat", "/var/log/postern/mail.log", check=False).stdout
            self.fail(f"GTUBE answered {answer}; spam lines of mail.log:\n" +
                      "\n".join(l for l in log.splitlines() if "spam" in l or "rspamd" in l or "redis" in l)[-4000:] +
                      "\n" + PODMAN.logs(name)[-3000:])
        users = process_users(name)
        for engine in ("rspamd", "redis-server", "unbound"):  # unbound: the bundled resolver (dns.resolver = bundled)
            self.assertRegex(users, rf"(?m)^{engine} {postern_uid}$", users)
            self.assertNotRegex(users, rf"(?m)^{engine} 0$", users)
        # Backups work inside the image: a snapshot of the running appliance verifies, restic is there.
        PODMAN("exec", name, "posternctl", "backup", "create", "/var/lib/postern-snapshot-test", timeout=120)
        verify = PODMAN("exec", name, "posternctl", "backup", "verify", "/var/lib/postern-snapshot-test", timeout=120)
        self.assertIn("image test one", PODMAN("exec", name, "sh", "-c", "cat /var/lib/postern-snapshot-test/data/mail/*/*/Maildir/new/* /var/lib/postern-snapshot-test/data/mail/*/*/Maildir/cur/* 2>/dev/null",
                                            check=False).stdout)
        print(f"backup verify in the image: {verify.stdout.strip()[-200:]}")
        self.assertRegex(PODMAN("exec", name, "restic", "version").stdout, r"restic 0\.\d+")
        # Logs in the log volume.
        self.assertEqual(PODMAN("exec", name, "posternctl", "config", "get", "log_dir").stdout.strip(), "/var/log/postern")
        mail_log = PODMAN("exec", name, "cat", "/var/log/postern/mail.log").stdout
        self.assertIn("postern-smtpd", mail_log)
        # The health check says what `posternctl status` says.
        status = PODMAN("exec", name, "posternctl", "status", check=False)
        for daemon in ("postern-smtpd", "postern-imapd", "postern-pop3d"):
            self.assertRegex(status.stdout, rf"{daemon}\s+running")
        health = PODMAN("healthcheck", "run", name, check=False)
        print(f"posternctl status exit {status.returncode}; health check: {health.stdout.strip() or 'healthy'} ({health.returncode})\n"
              + status.stdout)
        self.assertEqual(health.returncode, status.returncode, health.stdout + health.stderr)
        self.assertEqual(status.returncode, 0, status.stdout + status.stderr)
        self.assertNotIn("spam probe", PODMAN("exec", name, "sh", "-c", "cat /var/lib/postern/mail/*/*/Maildir/new/* /var/lib/postern/mail/*/*/Maildir/cur/* "
                                              "/var/lib/postern/mail/*/*/Maildir/.Junk/new/* 2>/dev/null", check=False).stdout)

        # SIGTERM: graceful stop, exit 0.
        PODMAN("stop", "-t", "30", name, timeout=60)
        state = json.loads(PODMAN("inspect", name).stdout)[0]["State"]
        self.assertEqual(state["ExitCode"], 0, PODMAN.logs(name)[-3000:])
        self.assertIn("supervisor.stopped", PODMAN.logs(name))

        # Second start: configuration from the volume, no wizard, the mail is still there.
        PODMAN("start", name)
        wait_ready(name, ports)
        logs = PODMAN.logs(name)
        self.assertEqual(logs.count("Postern first-run wizard"), 1, logs[-3000:])
        subjects = itl.imap_fetch_subjects(ports[993], USER, PASSWORD, starttls=False)
        self.assertTrue(any("image test one" in s for s in subjects), subjects)
        PODMAN("stop", "-t", "30", name, timeout=60)

    def test_upgrade_to_next_image_and_refused_back(self):
        """Image N on fresh volumes -> image N+1 (N plus a layer that installs the test-only
        migration step, core/data_version.h) on the same volumes -> image N again."""
        ports = published_ports()
        secret_dir = tempfile.mkdtemp(prefix="postern-secret-")
        self.addCleanup(shutil.rmtree, secret_dir, True)
        with open(os.path.join(secret_dir, "password"), "w") as f:
            f.write(PASSWORD + "\n")
        volumes = [f"{secret_dir}:/run/secrets:ro", "upgrade-etc:/etc/postern", "upgrade-data:/var/lib/postern",
                   "upgrade-log:/var/log/postern"]
        env = [("POSTERN_DOMAIN", "example.test"), ("POSTERN_HOSTNAME", "mail.example.test"), ("POSTERN_USER", USER),
               ("POSTERN_PASSWORD_FILE", "/run/secrets/password"), ("POSTERN_SKIP_NETWORK_CHECKS", "1")]

        def start(name, image):
            PODMAN.run_detached(name, image, env=env, ports=[(ports[p], p) for p in PORTS], volumes=volumes)
            wait_ready(name, ports)

        def state(name):
            """Everything that must survive: mailbox (UIDVALIDITY, UID, flags, subject), the
            DKIM keys, the queue, the account's login."""
            m = imaplib.IMAP4_SSL("127.0.0.1", ports[993], ssl_context=itl.tls_context(), timeout=30)
            try:
                m.login(USER, PASSWORD)
                typ, data = m.select("INBOX", readonly=True)
                self.assertEqual(typ, "OK", data)
                validity = m.response("UIDVALIDITY")[1]
                typ, data = m.uid("FETCH", "1:*", "(FLAGS BODY.PEEK[HEADER.FIELDS (SUBJECT)])")
                self.assertEqual(typ, "OK", data)
                messages = sorted(
                    (int(re.search(rb"UID (\d+)", d[0]).group(1)), sorted(re.search(rb"FLAGS \(([^)]*)\)", d[0]).group(1).decode().split()),
                     d[1].decode().strip()) for d in data if isinstance(d, tuple))
            finally:
                m.logout()
            dkim = PODMAN("exec", name, "sh", "-c", "cat /etc/postern/dkim/*/* | sha256sum").stdout.split()[0]
            queue = PODMAN("exec", name, "posternctl", "queue", "list").stdout
            queued = sorted(re.findall(r"(?m)^([0-9A-Fa-f]{16}) ", queue))
            return {"uidvalidity": validity, "messages": messages, "dkim": dkim, "queued": queued}

        # Image N: two messages in, one flagged, one message waiting in the queue (outbound mail
        # goes to a smarthost on a closed port, so it stays deferred whatever the host's DNS says).
        start("postern-upgrade-n", itl.TAG)
        PODMAN("exec", "postern-upgrade-n", "posternctl", "config", "set", "relay.host", "127.0.0.1:1")
        PODMAN("stop", "-t", "30", "postern-upgrade-n", timeout=60)
        PODMAN("start", "postern-upgrade-n")
        wait_ready("postern-upgrade-n", ports)
        for subject in ("before the upgrade one", "before the upgrade two"):
            itl.send_with_swaks(ports[25], USER, subject, f"kept across images: {subject}")
        wait_for(lambda: len([s for s in itl.imap_fetch_subjects(ports[993], USER, PASSWORD, starttls=False)
                              if "before the upgrade" in s]) == 2, timeout=60, interval=0.5, what="both messages in INBOX")
        m = imaplib.IMAP4_SSL("127.0.0.1", ports[993], ssl_context=itl.tls_context(), timeout=30)
        m.login(USER, PASSWORD)
        m.select("INBOX")
        self.assertEqual(m.store("1", "+FLAGS", "(\\Flagged $Important)")[0], "OK")
        m.logout()
        with smtplib.SMTP("127.0.0.1", ports[587], timeout=60) as smtp:
            smtp.starttls(context=itl.tls_context())
            smtp.login(USER, PASSWORD)
            smtp.sendmail(USER, ["someone@unreachable.invalid"],
                          f"From: {USER}\r\nTo: someone@unreachable.invalid\r\nSubject: queued across images\r\n\r\nwaits\r\n")
        try:
            before = wait_for(lambda: (lambda st: st if st["queued"] else None)(state("postern-upgrade-n")), timeout=60,
                              interval=0.5, what="the outbound message in the queue")
        except TimeoutError:
            print(PODMAN("exec", "postern-upgrade-n", "posternctl", "queue", "list", check=False).stdout)
            print(PODMAN("exec", "postern-upgrade-n", "tail", "-n", "40", "/var/log/postern/mail.log", check=False).stdout)
            raise
        self.assertEqual(len(before["messages"]), 2, before)
        self.assertIn("\\Flagged", before["messages"][0][1], before)
        self.assertIn("data format: 1", PODMAN("exec", "postern-upgrade-n", "posternctl", "version").stdout)
        PODMAN("stop", "-t", "30", "postern-upgrade-n", timeout=60)

        # Image N+1: the same image plus the marker of the test-only step (a root-owned file in /usr).
        ctxdir = tempfile.mkdtemp(prefix="postern-next-")
        self.addCleanup(shutil.rmtree, ctxdir, True)
        open(os.path.join(ctxdir, "test-next-data-format"), "w").close()
        with open(os.path.join(ctxdir, "Containerfile"), "w") as f:
            f.write(f"FROM {itl.TAG}\nCOPY test-next-data-format /usr/share/postern/test-next-data-format\n"
                    "LABEL org.opencontainers.image.version=next-test\n")
        PODMAN("build", "--pull=never", "-t", "localhost/postern:next", "-f", os.path.join(ctxdir, "Containerfile"), ctxdir,
               timeout=300)
        start("postern-upgrade-next", "localhost/postern:next")
        version = PODMAN("exec", "postern-upgrade-next", "posternctl", "version").stdout
        self.assertIn("data format: 2", version)
        self.assertIn("supported data formats: 0 to 2", version)
        self.assertIn("written by the test-only migration step",
                      PODMAN("exec", "postern-upgrade-next", "cat", "/var/lib/postern/postern-test-migration").stdout)
        log = PODMAN("exec", "postern-upgrade-next", "cat", "/var/log/postern/mail.log").stdout
        self.assertEqual(len(re.findall(r"data\.migrated.*from=1 to=2", log)), 1,
                         "\n".join(l for l in log.splitlines() if "data." in l))
        after = state("postern-upgrade-next")
        self.assertEqual(after, before)
        PODMAN("stop", "-t", "30", "postern-upgrade-next", timeout=60)

        # Image N again: refuses the newer data with the one line the operator needs, touches nothing.
        PODMAN.containers.append("postern-upgrade-back")
        p = PODMAN("run", "--name", "postern-upgrade-back", *itl.Podman.RUN_FLAGS,
                   *sum((["-v", v] for v in volumes), []), itl.TAG, check=False, timeout=120)
        out = p.stdout + p.stderr
        self.assertNotEqual(p.returncode, 0, out)
        self.assertRegex(out, r"is format 2.*knows up to 1|format 2.*up to 1", out[-2000:])
        print(f"image N on format-2 data: exit {p.returncode}: " + next((l for l in out.splitlines() if "format 2" in l), ""))
        # And the data is still format 2, as N+1 left it.
        self.assertEqual(PODMAN("run", "--rm", *itl.Podman.RUN_FLAGS, "--entrypoint", "cat", "-v", volumes[2], itl.TAG,
                                "/var/lib/postern/postern-data-version").stdout.strip(), "2")

    def test_no_answers_without_terminal(self):
        name = "postern-noanswers"
        PODMAN.containers.append(name)
        p = PODMAN("run", "--name", name, *itl.Podman.RUN_FLAGS, itl.TAG, check=False, timeout=120)
        self.assertEqual(p.returncode, 78, p.stdout + p.stderr)
        self.assertIn("POSTERN_DOMAIN=example.org", p.stderr)
        self.assertIn("-it", p.stderr)

    def test_interactive_wizard_in_a_terminal(self):
        name = "postern-tty"
        ports = published_ports()
        PODMAN.containers.append(name)
        args = PODMAN.base + ["run", "-it", "--name", name, *itl.Podman.RUN_FLAGS, "-e", "POSTERN_SKIP_NETWORK_CHECKS=1"]
        for p in PORTS:
            args += ["-p", f"127.0.0.1:{ports[p]}:{p}"]
        args.append(itl.TAG)
        pid, fd = pty.fork()
        if pid == 0:
            os.execvp(args[0], args)
        transcript = b""
        seen = b""

        def expect(pattern, timeout=90):
            nonlocal transcript, seen
            deadline = time.monotonic() + timeout
            while not re.search(pattern.encode(), transcript):
                r, _, _ = select.select([fd], [], [], max(0.0, deadline - time.monotonic()))
                if not r:
                    raise AssertionError(f"timeout waiting for {pattern!r}; got:\n{seen.decode(errors='replace')[-3000:]}")
                try:
                    chunk = os.read(fd, 65536)
                except OSError:
                    raise AssertionError(f"container ended waiting for {pattern!r}:\n{seen.decode(errors='replace')[-3000:]}")
                transcript += chunk
                seen += chunk
            found = re.search(pattern.encode(), transcript)
            transcript = transcript[found.end():]

        def answer(text):
            os.write(fd, text.encode() + b"\r")

        try:
            expect(r"Mail domain \(the part after @\) \[example\.org\]: ")
            answer("example.net")
            expect(r"Mail host name \[mail\.example\.net\]: ")
            answer("")
            expect(r"First user's address \[you@example\.net\]: ")
            answer("bob@example.net")
            expect(r"Password for bob@example\.net .*: ")
            answer("typed in a terminal")
            expect(r"Where should postmaster@ and abuse@ go \[bob@example\.net\]: ")
            answer("")
            # A container has a private address: the wizard asks for the public one.
            expect(r"Public IP address .*: ")
            answer("192.0.2.25")
            expect(r"== DNS records to publish")
            expect(r"starting postern-appliance --config /etc/postern")
            expect(r"supervisor\.all_ready")
            itl.wait_banner(ports[25], b"220 ")
            subjects = itl.mail_round_trip(ports, "bob@example.net", "typed in a terminal", "typed wizard")
            print(f"interactive container: {subjects}")
            conf = PODMAN("exec", name, "cat", "/etc/postern/postern.conf").stdout
            self.assertIn("primary_domain = example.net", conf)
        finally:
            PODMAN("stop", "-t", "30", name, check=False, timeout=60)
            # `podman run -it` ends once its container stopped; never wait for it without a bound.
            deadline = time.monotonic() + 60
            try:
                while os.waitpid(pid, os.WNOHANG) == (0, 0):
                    if time.monotonic() > deadline:
                        os.kill(pid, 9)
                        os.waitpid(pid, 0)
                        break
                    select.select([fd], [], [], 0.5)
                    try:
                        os.read(fd, 65536)  # keep the terminal drained so podman can write its last output
                    except OSError:
                        pass
            except ChildProcessError:
                pass
            os.close(fd)


if __name__ == "__main__":
    unittest.main(verbosity=2)
