"""postern_testlib — shared helpers for Postern's integration tests.

What it offers (all on loopback, all temporary, no fixed ports, no sleeps
beyond polling with a deadline):

  bin_path(name)            a built program (<build>/bin/<name>)
  run(args, ...)            run a program, return CompletedProcess (text)
  Instance(...)             a whole Postern instance in a temp folder: config,
                            TLS certificate, domains and users, listeners on
                            127.0.0.1 port 0; start(program) launches a daemon,
                            waits for its ready file and returns the bound ports
  Nsd(zones)                an authoritative NSD on a free loopback port
  free_port()               a currently free TCP/UDP port (for servers that
                            cannot report a port chosen by the OS, e.g. NSD)
  wait_for(predicate, ...)  poll until true or fail with a message
  Instance.queue_message()  a message written straight into queue/incoming/
  mount_tmpfs(path, size)   a small tmpfs over a folder (root only), to fill up
  Transcript                run a C:/S: transcript against a socket

Tests print what they do; a failure names the step and shows the daemon's log.
"""

import email.utils
import json
import os
import re
import shutil
import signal
import socket
import ssl
import subprocess
import sys
import tempfile
import time

BUILD_DIR = os.environ.get("POSTERN_BUILD_DIR") or os.path.abspath(
    os.path.join(os.path.dirname(__file__), "..", "..", "..", "build"))
SOURCE_DIR = os.environ.get("POSTERN_SOURCE_DIR") or os.path.abspath(
    os.path.join(os.path.dirname(__file__), "..", "..", ".."))


# A Date header for test mail that goes through Rspamd: the time of the run (a fixed date
# ages into Rspamd's DATE_IN_PAST symbol after a day, and the score with it).
NOW_DATE = email.utils.formatdate(usegmt=True).encode()


def bin_path(name):
    path = os.path.join(BUILD_DIR, "bin", name)
    if not os.path.exists(path):
        raise FileNotFoundError(f"{path} is not built")
    return path


def run(args, input=None, check=True, env=None, timeout=120):
    """Run a command; text in/out. Raises with stdout/stderr on failure when check."""
    if isinstance(args[0], str) and not os.path.isabs(args[0]) and "/" not in args[0]:
        try:
            args = [bin_path(args[0])] + list(args[1:])
        except FileNotFoundError:
            pass
    p = subprocess.run(args, input=input, capture_output=True, text=True, env=env, timeout=timeout)
    if check and p.returncode != 0:
        raise AssertionError(f"{' '.join(map(str, args))} exited {p.returncode}\nstdout:\n{p.stdout}\nstderr:\n{p.stderr}")
    return p


def wait_for(predicate, timeout=30.0, interval=0.05, what="condition"):
    deadline = time.monotonic() + timeout
    last_exc = None
    while time.monotonic() < deadline:
        try:
            value = predicate()
            if value:
                return value
        except Exception as exc:  # noqa: BLE001 - we report the last one
            last_exc = exc
        time.sleep(interval)
    raise TimeoutError(f"timed out after {timeout}s waiting for {what}" + (f" (last error: {last_exc})" if last_exc else ""))


def free_port(kind=socket.SOCK_STREAM, host="127.0.0.1"):
    """A port free for both TCP and UDP right now (small race; use only for peers that cannot use port 0)."""
    for _ in range(100):
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as t:
            t.bind((host, 0))
            port = t.getsockname()[1]
            try:
                with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as u:
                    u.bind((host, port))
            except OSError:
                continue
            return port
    raise RuntimeError("no free port")


def make_cert(cert_path, key_path, names):
    """A self-signed EC certificate made with the openssl CLI (independent of Postern's own code)."""
    os.makedirs(os.path.dirname(cert_path), exist_ok=True)
    san = ",".join(f"DNS:{n}" for n in names)
    run(["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes",
         "-keyout", key_path, "-out", cert_path, "-days", "2", "-subj", f"/CN={names[0]}", "-addext",
         f"subjectAltName={san}"])
    os.chmod(key_path, 0o600)


class Instance:
    """A Postern instance living in one temporary folder.

    conf: extra postern.conf lines (dict). Listeners default to 127.0.0.1:0 (the
    daemon reports the real port in <run>/<program>.ready). Users get cheap
    Argon2 parameters so tests stay fast (the cost is a setting).
    """

    LISTENERS = ("smtp", "submission", "submissions", "imap", "imaps", "pop3", "pop3s", "http", "https", "sieve")

    def __init__(self, domain="example.test", hostname=None, conf=None, users=None, root=None):
        self.root = root or tempfile.mkdtemp(prefix="postern-test-")
        self.config_dir = os.path.join(self.root, "etc")
        self.data_dir = os.path.join(self.root, "data")
        os.makedirs(self.config_dir, exist_ok=True)
        self.domain = domain
        self.hostname = hostname or f"mail.{domain}"
        self.procs = {}
        self.ready = {}
        lines = {
            "hostname": self.hostname,
            "primary_domain": domain,
            "data_dir": self.data_dir,
            "log.stderr": "false",
            "log.level": "debug",
            "auth.argon2_memory": "1M",
            "auth.argon2_iterations": "1",
            "auth.failure_delay": "0s",
            # The MX pre-greet wait (smtp.greet_delay) costs every MX connection; tests that need it set it.
            "smtp.greet_delay": "0s",
            # No DNS from tests unless a test brings its own server (Nsd) and turns this back on.
            "smtp.sender_auth": "false",
            # No Rspamd unless a test starts one (Rspamd class below) and turns this back on.
            "spam.enabled": "false",
            # No bundled unbound unless a test turns it on (it would bind dns.resolver_listen).
            "dns.resolver": "system",
        }
        for name in self.LISTENERS:
            lines[f"{name}.listen"] = "127.0.0.1:0"
        if os.geteuid() == 0:
            # Daemons drop root after binding; in tests they become "nobody" (no host changes).
            lines["system_user"] = "nobody"
        if conf:
            lines.update(conf)
        with open(os.path.join(self.config_dir, "postern.conf"), "w") as f:
            for k, v in lines.items():
                f.write(f"{k} = {v}\n")
        make_cert(os.path.join(self.config_dir, "tls", "cert.pem"), os.path.join(self.config_dir, "tls", "key.pem"),
                  [self.hostname, "localhost"])
        self.ctl("domain", "add", domain)
        self.passwords = {}
        for address, password in (users or {f"alice@{domain}": "alice-password-1"}).items():
            self.add_user(address, password)
        if os.geteuid() == 0:
            self._share_with_daemons()

    def _share_with_daemons(self):
        """As the wizard does for the real user: data owned by the daemons' user, secrets
        readable by its group (0640), everything else root's."""
        import grp
        import pwd
        uid = pwd.getpwnam("nobody").pw_uid
        gid = grp.getgrnam("nogroup").gr_gid
        os.makedirs(self.data_dir, exist_ok=True)
        for dirpath, dirnames, filenames in os.walk(self.data_dir):
            os.chown(dirpath, uid, gid)
            for f in filenames:
                os.chown(os.path.join(dirpath, f), uid, gid)
        for name in ("users", "aliases", "domains", "tls/key.pem", "tls/cert.pem"):
            path = os.path.join(self.config_dir, name)
            if os.path.exists(path):
                os.chown(path, 0, gid)
                os.chmod(path, 0o640)
        for d in (self.config_dir, os.path.join(self.config_dir, "tls"), self.root):
            os.chmod(d, 0o755)
        dkim_dir = os.path.join(self.config_dir, "dkim")
        if os.path.isdir(dkim_dir):
            # DKIM private keys: root:<daemon group> 0640 in 0750 folders, as the wizard leaves them.
            for dirpath, dirnames, filenames in os.walk(dkim_dir):
                os.chown(dirpath, 0, gid)
                os.chmod(dirpath, 0o750)
                for f in filenames:
                    os.chown(os.path.join(dirpath, f), 0, gid)

    def queue_message(self, sender, recipients, body, auth_user=""):
        """Writes a message into queue/incoming/ the way postern-smtpd does (body first,
        envelope last, owned by the daemons' user), e.g. one that skipped the submission
        checks, or a bounce for a local sender. Returns its queue id."""
        import random
        qid = "%016X" % random.getrandbits(64)
        queue = os.path.join(self.data_dir, "queue")
        lines = ["POSTERN-QUEUE 2", f"id: {qid}", f"arrival: {int(time.time())}", f"sender: {sender}", f"auth-user: {auth_user}",
                 "client: 127.0.0.1 test", "body: 7BIT", "smtputf8: no", "ret: ", "envid: ", f"size: {len(body)}"]
        lines += [f"recipient: {r} notify=- orcpt=- status=pending" for r in recipients]
        os.makedirs(os.path.join(queue, "tmp"), exist_ok=True)
        os.makedirs(os.path.join(queue, "incoming"), exist_ok=True)
        body_path = os.path.join(queue, "incoming", qid + ".body")
        with open(body_path, "wb") as f:
            f.write(body)
        tmp = os.path.join(queue, "tmp", qid + ".env")
        with open(tmp, "w") as f:
            f.write("\n".join(lines) + "\n")
        if os.geteuid() == 0:
            import pwd
            uid = pwd.getpwnam("nobody").pw_uid
            for path in (body_path, tmp):
                os.chown(path, uid, -1)
        os.rename(tmp, os.path.join(queue, "incoming", qid + ".env"))
        return qid

    # -- administration -------------------------------------------------------
    def ctl(self, *args, input=None, check=True):
        return run([bin_path("posternctl"), "--config", self.config_dir, *args], input=input, check=check)

    def add_user(self, address, password):
        self.ctl("user", "add", address, "--password-stdin", input=password + "\n")
        self.passwords[address] = password

    def set_conf(self, key, value):
        self.ctl("config", "set", key, value)

    # -- daemons ----------------------------------------------------------------
    @property
    def run_dir(self):
        return os.path.join(self.data_dir, "run")

    @property
    def log_path(self):
        return os.path.join(self.data_dir, "log", "mail.log")

    def log(self):
        try:
            with open(self.log_path, encoding="utf-8", errors="replace") as f:
                return f.read()
        except FileNotFoundError:
            return ""

    def start(self, program, extra_args=(), timeout=30, env=None):
        """Start a daemon in the foreground of its own process; wait for its ready file."""
        ready_file = os.path.join(self.run_dir, f"{program}.ready")
        if os.path.exists(ready_file):
            os.unlink(ready_file)
        stderr_path = os.path.join(self.root, f"{program}.stderr")
        err = open(stderr_path, "ab")
        proc = subprocess.Popen([bin_path(program), "--config", self.config_dir, *extra_args],
                                stdin=subprocess.DEVNULL, stdout=err, stderr=err, env=env)
        self.procs[program] = proc

        def is_ready():
            if proc.poll() is not None:
                raise AssertionError(f"{program} exited with {proc.returncode}:\n{self._stderr(program)}")
            if not os.path.exists(ready_file):
                return None
            with open(ready_file) as f:
                info = json.load(f)
            return info if info.get("pid") == proc.pid else None

        info = wait_for(is_ready, timeout=timeout, what=f"{program} to become ready")
        self.ready[program] = info
        return info

    def _stderr(self, program):
        try:
            with open(os.path.join(self.root, f"{program}.stderr"), errors="replace") as f:
                return f.read()[-4000:]
        except FileNotFoundError:
            return ""

    def port(self, program, listener, index=0):
        """The real port of listener `listener` (e.g. "smtp") of a started daemon."""
        addr = self.ready[program]["listeners"][listener][index]
        return int(addr.rsplit(":", 1)[1])

    def stop(self, program, sig=signal.SIGTERM, timeout=20):
        proc = self.procs.pop(program, None)
        if not proc:
            return None
        if proc.poll() is None:
            proc.send_signal(sig)
            try:
                proc.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
        return proc.returncode

    def kill9(self, program):
        return self.stop(program, sig=signal.SIGKILL)

    def close(self):
        for program in list(self.procs):
            self.stop(program)
        if os.environ.get("POSTERN_KEEP_TEST_DIRS"):
            print(f"kept {self.root}", file=sys.stderr)
        else:
            shutil.rmtree(self.root, ignore_errors=True)

    # -- mail on disk -----------------------------------------------------------
    def maildir(self, address):
        local, domain = address.lower().rsplit("@", 1)
        enc = "".join(c if re.match(r"[a-z0-9._+=-]", c) else "".join(f"%{b:02X}" for b in c.encode()) for c in local)
        if enc.startswith("."):
            enc = "%2E" + enc[1:]
        return os.path.join(self.data_dir, "mail", domain, enc, "Maildir")

    def messages(self, address, folder=""):
        """Contents (bytes) of every message in new/ and cur/ of a Maildir folder, in delivery order."""
        base = self.maildir(address)
        if folder:
            base = os.path.join(base, "." + folder)
        found = []
        for sub in ("new", "cur"):
            d = os.path.join(base, sub)
            if os.path.isdir(d):
                for name in os.listdir(d):
                    path = os.path.join(d, name)
                    found.append((os.stat(path).st_mtime_ns, name.split(":")[0], path))
        out = []
        for _, _, path in sorted(found):  # delivery order
            with open(path, "rb") as f:
                out.append(f.read())
        return out

    def client_tls_context(self):
        ctx = ssl.create_default_context(cafile=os.path.join(self.config_dir, "tls", "cert.pem"))
        ctx.check_hostname = False
        return ctx

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()


class Rspamd:
    """Debian's rspamd with a minimal configuration in its own temporary folder: one normal
    worker on a unix socket (mode 0666, so the daemons' user reaches it), Rspamd's GTUBE-like
    test patterns on (X...: reject, Y...: add header, Z...: rewrite subject, A...: no action; they
    skip every module, so no DNS is needed), DNS pointed at a closed loopback port, no
    controller, no Redis. Started as "nobody" when the tests run as root. Ready when GET /ping
    answers "pong" (Rspamd compiles its TLD list at start: several seconds)."""

    GTUBE = b"JS*C4JDBQADN1.NSBN3*2IDNEN*GTUBE-STANDARD-ANTI-UBE-TEST-EMAIL*C.34X"

    def __init__(self, root=None, timeout=90):
        self.root = root or tempfile.mkdtemp(prefix="postern-test-rspamd-")
        os.chmod(self.root, 0o755)
        self.socket = os.path.join(self.root, "normal.sock")
        conf = os.path.join(self.root, "rspamd.conf")
        with open(conf, "w") as f:
            f.write("\n".join([
                "options {",
                f'  pidfile = "{self.root}/rspamd.pid";',
                f'  dbdir = "{self.root}";',
                f'  tempdir = "{self.root}";',
                "  enable_test_patterns = true;",
                '  dns { nameserver = ["127.0.0.1:9"]; timeout = 0.2s; retransmits = 1; }',
                "}",
                f'logging {{ type = "file"; filename = "{self.root}/rspamd.log"; level = "info"; }}',
                f'worker "normal" {{ bind_socket = "{self.socket} mode=0666"; count = 1; }}',
                "actions { reject = 15; add_header = 6; greylist = 4; }",
            ]) + "\n")
        args = [shutil.which("rspamd") or "/usr/bin/rspamd", "-f", "-c", conf]
        if os.geteuid() == 0:
            os.chown(self.root, *_nobody_ids())
            args += ["-u", "nobody", "-g", "nogroup"]
        self.out = open(os.path.join(self.root, "rspamd.out"), "ab")
        self.proc = subprocess.Popen(args, stdin=subprocess.DEVNULL, stdout=self.out, stderr=self.out, start_new_session=True)
        wait_for(self._pong, timeout=timeout, interval=0.2, what="rspamd to answer /ping")

    def _pong(self):
        if self.proc.poll() is not None:
            raise AssertionError(f"rspamd exited with {self.proc.returncode}: {self.log()[-2000:]}")
        try:
            s = socket.socket(socket.AF_UNIX)
            s.settimeout(5)
            s.connect(self.socket)
            s.sendall(b"GET /ping HTTP/1.0\r\n\r\n")
            data = b""
            while True:
                chunk = s.recv(4096)
                if not chunk:
                    break
                data += chunk
            s.close()
            return b"pong" in data
        except OSError:
            return False

    def log(self):
        try:
            with open(os.path.join(self.root, "rspamd.log"), errors="replace") as f:
                return f.read()
        except FileNotFoundError:
            return ""

    def stop(self):
        """Stops rspamd (its whole process group: main process and workers)."""
        if self.proc and self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGTERM)
            try:
                self.proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait()
        self.proc = None

    def close(self):
        self.stop()
        self.out.close()
        if os.environ.get("POSTERN_KEEP_TEST_DIRS"):
            print(f"kept {self.root}", file=sys.stderr)
        else:
            shutil.rmtree(self.root, ignore_errors=True)


def _nobody_ids():
    import grp
    import pwd
    return pwd.getpwnam("nobody").pw_uid, grp.getgrnam("nogroup").gr_gid


def mount_tmpfs(path, size="2m"):
    """Mounts a tmpfs of `size` over `path`, owned like `path` (needs root); returns a
    function that unmounts it. Tests fill it up to see how a full disk is handled."""
    st = os.stat(path)
    r = subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={size},uid={st.st_uid},gid={st.st_gid},mode=750", "tmpfs", path],
                       capture_output=True, text=True)
    if r.returncode != 0:
        raise AssertionError(f"cannot mount a tmpfs (needs root): {r.stderr}")
    return lambda: subprocess.run(["umount", path], capture_output=True)


def fill_up(path):
    """Writes `path` until the file system is full; returns its size."""
    with open(path, "wb") as f:
        try:
            while True:
                f.write(b"\0" * 65536)
                f.flush()
        except OSError:
            pass
    return os.path.getsize(path)


class Nsd:
    """An authoritative NSD serving `zones` ({origin: zone text}) on 127.0.0.1:<free port>."""

    def __init__(self, zones, root=None):
        self.root = root or tempfile.mkdtemp(prefix="postern-nsd-")
        self.port = free_port(socket.SOCK_DGRAM)
        self.zones = zones
        conf = [
            "server:",
            f"  ip-address: 127.0.0.1@{self.port}",
            "  do-ip6: no",
            f"  zonesdir: \"{self.root}\"",
            f"  pidfile: \"{self.root}/nsd.pid\"",
            f"  database: \"\"",
            f"  xfrdfile: \"{self.root}/xfrd.state\"",
            f"  zonelistfile: \"{self.root}/zone.list\"",
            "  username: \"\"",
            "  chroot: \"\"",
            "  verbosity: 1",
            "  server-count: 1",
            "remote-control:",
            "  control-enable: no",
        ]
        for origin, text in zones.items():
            fname = origin.rstrip(".") + ".zone"
            with open(os.path.join(self.root, fname), "w") as f:
                f.write(text)
            conf += ["zone:", f"  name: \"{origin}\"", f"  zonefile: \"{fname}\""]
        with open(os.path.join(self.root, "nsd.conf"), "w") as f:
            f.write("\n".join(conf) + "\n")
        nsd = shutil.which("nsd") or "/usr/sbin/nsd"
        run([shutil.which("nsd-checkconf") or "/usr/sbin/nsd-checkconf", os.path.join(self.root, "nsd.conf")])
        self.log = open(os.path.join(self.root, "nsd.log"), "ab")
        self.proc = subprocess.Popen([nsd, "-d", "-c", os.path.join(self.root, "nsd.conf")], stdout=self.log,
                                     stderr=self.log)
        first = next(iter(zones))
        wait_for(lambda: self._answers(first), timeout=20, what="nsd to answer")

    def _answers(self, origin):
        if self.proc.poll() is not None:
            with open(os.path.join(self.root, "nsd.log"), errors="replace") as f:
                raise AssertionError("nsd exited:\n" + f.read())
        p = subprocess.run(["drill", "-p", str(self.port), "@127.0.0.1", origin, "SOA"], capture_output=True, text=True)
        return p.returncode == 0 and "NOERROR" in p.stdout

    @property
    def server(self):
        return f"127.0.0.1:{self.port}"

    def close(self):
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
        self.log.close()
        shutil.rmtree(self.root, ignore_errors=True)

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()


class Transcript:
    """Runs a C:/S: transcript over a connected socket.

    Lines "C: text" are sent with CRLF; "S: pattern" lines must match the next
    line from the server (a Python regex, anchored at both ends). "C+: text"
    sends text without CRLF appended (escapes \\r \\n \\x00 and {c*N} understood) for
    pipelining and bare-LF cases. "S*:" reads lines until one matches.
    "TLS" upgrades the connection (after STARTTLS/STLS was accepted).
    "--" ends the exchange and expects the server to close.
    """

    def __init__(self, sock, timeout=10):
        self.sock = sock
        self.sock.settimeout(timeout)
        self.buf = b""
        self.log = []

    def readline(self):
        while b"\n" not in self.buf:
            chunk = self.sock.recv(65536)
            if not chunk:
                raise EOFError("server closed the connection; transcript so far:\n" + "\n".join(self.log))
            self.buf += chunk
        line, _, self.buf = self.buf.partition(b"\n")
        text = line.rstrip(b"\r").decode("utf-8", "replace")
        self.log.append("S: " + text)
        return text

    def send(self, data):
        if isinstance(data, str):
            data = data.encode()
        self.log.append("C: " + data.decode("utf-8", "replace").rstrip("\r\n"))
        self.sock.sendall(data)

    def expect_closed(self):
        try:
            chunk = self.buf or self.sock.recv(65536)
        except (ConnectionResetError, ssl.SSLError):
            return
        if chunk:
            raise AssertionError(f"expected close, got {chunk!r}")

    def starttls(self, context, server_hostname=None):
        """Upgrade to TLS (after the server said yes to STARTTLS/STLS)."""
        if self.buf:
            raise AssertionError(f"server sent data before the TLS handshake: {self.buf!r}")
        self.sock = context.wrap_socket(self.sock, server_hostname=server_hostname)
        self.log.append("-- TLS " + self.sock.version())

    def play(self, script, tls_context=None):
        for raw in script.strip("\n").splitlines():
            line = raw.rstrip("\n")
            if not line.strip() or line.lstrip().startswith("#"):
                continue
            if line.startswith("C: ") or line == "C:":
                self.send(line[3:] + "\r\n")
            elif line.startswith("C+: "):
                # "{x*3000}" repeats a character, for limit tests without 3000-character lines here.
                text = re.sub(r"\{(.)\*(\d+)\}", lambda m: m.group(1) * int(m.group(2)), line[4:])
                self.send(text.encode("utf-8").decode("unicode_escape").encode("latin-1"))
            elif line.startswith("S: "):
                got = self.readline()
                if not re.fullmatch(line[3:], got):
                    raise AssertionError(f"expected /{line[3:]}/, got {got!r}\n" + "\n".join(self.log))
            elif line.startswith("S*: "):
                while not re.fullmatch(line[4:], self.readline()):
                    pass
            elif line.strip() == "--":
                self.expect_closed()
            elif line.strip() == "TLS":
                self.starttls(tls_context)
            else:
                raise ValueError(f"bad transcript line: {line!r}")
        return self.log


def run_transcript_file(path, instance, program, tls_context=None):
    """Plays one transcript file against a running daemon of `instance`.

    The file's first lines may hold "# listener: NAME" (default: the first
    listener of the daemon). Implicit-TLS listeners are wrapped in TLS first.
    """
    with open(path, encoding="utf-8") as f:
        text = f.read()
    listener = None
    for line in text.splitlines():
        if line.startswith("# listener:"):
            listener = line.split(":", 1)[1].strip()
    if listener is None:
        listener = next(iter(instance.ready[program]["listeners"]))
    port = instance.port(program, listener)
    sock = socket.create_connection(("127.0.0.1", port), timeout=10)
    ctx = tls_context or instance.client_tls_context()
    if listener in ("submissions", "imaps", "pop3s"):
        sock = ctx.wrap_socket(sock)
    t = Transcript(sock)
    try:
        t.play(text, tls_context=ctx)
    finally:
        try:
            t.sock.close()
        except OSError:
            pass
    return t.log
