#!/usr/bin/env python3
"""tests/style/check_layers.py — the include graph keeps the layers of ARCHITECTURE.md
("Layers") and CONVENTIONS.md 1-2: dependencies point down only.

Every `#include "..."` of the production sources (appliance/, daemons/, wizard/, firewall/)
is resolved as the compiler would (the including file's folder first, then the include
roots the CMake targets publish) to the module that holds the header, and checked:
  * each module includes only the modules ALLOWED lists for it (e.g. appliance/core
    nothing but itself; daemons/common never a specific daemon; firewall/ only the core;
    one daemon never another daemon's headers);
  * parsers (PARSER_FILES) include no socket or connection code (CONVENTIONS.md 2:
    "a plain class, no QObject, no socket"): none of SOCKET_HEADERS;
  * no production file includes anything under tests/.
Known exceptions are listed in EXCEPTIONS with the reason; an exception that no longer
occurs fails the check too (so the list stays true). Prints every violation and exits 1.
Run: python3 tests/style/check_layers.py   (the ctest test `include_layers`, label unit).
"""

import os
import re
import sys

ROOT = os.environ.get("POSTERN_SOURCE_DIR") or os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..")
ROOT = os.path.abspath(ROOT)

# Folders scanned, and the module each belongs to (longest prefix wins).
MODULES = {
    "appliance/core": "core",
    "appliance/ctl": "ctl",
    "appliance/supervisor": "supervisor",
    "daemons/common": "common",
    "daemons/smtpd": "smtpd",
    "daemons/imapd": "imapd",
    "daemons/pop3d": "pop3d",
    "daemons/queued": "queued",
    "daemons/webd": "webd",
    "daemons/sieved": "sieved",
    "wizard/records": "records",
    "wizard": "wizard",
    "firewall": "firewall",
    "tests": "tests",
}
DAEMONS = {"smtpd", "imapd", "pop3d", "queued", "webd", "sieved"}

# Include roots the CMake targets publish: each library its own folder under one prefix
# (postern_include_root in the top CMakeLists.txt), so "<prefix>/<header>.h" is the only
# way to reach a header from outside its folder.
INCLUDE_ROOTS = {
    "core": "appliance/core", "ctl": "appliance/ctl", "supervisor": "appliance/supervisor",
    "common": "daemons/common", "smtpd": "daemons/smtpd", "imapd": "daemons/imapd", "pop3d": "daemons/pop3d",
    "queued": "daemons/queued", "webd": "daemons/webd", "sieved": "daemons/sieved",
    "wizard": "wizard", "records": "wizard/records", "firewall": "firewall",
}

# Which modules each module may include (itself always). From ARCHITECTURE.md "Layers":
# core knows nothing above it; daemons/common is the framework under all daemons; each
# daemon uses common and core (webd also the DNS-record library: the panel's record sheet and
# DNS check); firewall/ uses the
# core only; wizard/ the core, the firewall library and the DNS-record model; posternctl
# (ctl) uses all of those plus daemons/common; the supervisor only the core.
ALLOWED = {
    "core": set(),
    "common": {"core"},
    "smtpd": {"core", "common"},
    "imapd": {"core", "common"},
    "pop3d": {"core", "common"},
    "queued": {"core", "common"},
    "sieved": {"core", "common"},
    "webd": {"core", "common", "records"},
    "records": {"core"},
    "firewall": {"core"},
    "wizard": {"core", "firewall", "records"},
    "ctl": {"core", "common", "firewall", "wizard", "records"},
    "supervisor": {"core"},
}

# Parsers: socket-free (bytes in, results out).
PARSER_FILES = re.compile(r"(^|/)([a-z0-9_]*parser[a-z0-9_]*|smtp_command|smtp_data|smtp_reply_reader|http_request"
                          r"|rspamd_protocol)\.(h|cpp)$")
SOCKET_HEADERS = re.compile(r"^(QTcpSocket|QSslSocket|QAbstractSocket|QTcpServer|QSslServer|QUdpSocket|QLocalSocket"
                            r"|QLocalServer|QNetworkAccessManager|QSocketNotifier|sys/socket\.h|netinet/.*|arpa/inet\.h"
                            r"|netdb\.h|(common/)?(connection|daemon_server|listener[a-z_]*)\.h)$")

# (file, included module or header): why it is allowed for now.
EXCEPTIONS = {}

INCLUDE = re.compile(r'^\s*#\s*include\s*([<"])([^">]+)[">]')


def module_of(rel):
    best = None
    for prefix, mod in MODULES.items():
        if rel == prefix or rel.startswith(prefix + "/"):
            if best is None or len(prefix) > len(best[0]):
                best = (prefix, mod)
    return best[1] if best else None


def resolve(rel_file, name):
    here = os.path.dirname(rel_file)
    cand = os.path.normpath(os.path.join(here, name))
    if os.path.isfile(os.path.join(ROOT, cand)):
        return cand
    prefix, _, rest = name.partition("/")
    if rest and prefix in INCLUDE_ROOTS:
        cand = os.path.normpath(os.path.join(INCLUDE_ROOTS[prefix], rest))
        if os.path.isfile(os.path.join(ROOT, cand)):
            return cand
    return None  # generated (moc, ui) or a system header in quotes


def sources():
    for top in ("appliance", "daemons", "wizard", "firewall"):
        for dirpath, dirnames, filenames in os.walk(os.path.join(ROOT, top)):
            dirnames[:] = sorted(d for d in dirnames if not d.startswith("."))
            for f in sorted(filenames):
                if f.endswith((".h", ".cpp")):
                    yield os.path.relpath(os.path.join(dirpath, f), ROOT)


def check():
    problems = []
    used_exceptions = set()
    files = 0
    edges = 0
    for rel in sources():
        files += 1
        mod = module_of(rel)
        parser = bool(PARSER_FILES.search(rel))
        with open(os.path.join(ROOT, rel), encoding="utf-8", errors="replace") as fh:
            for lineno, line in enumerate(fh, 1):
                m = INCLUDE.match(line)
                if not m:
                    continue
                kind, name = m.groups()
                where = f"{rel}:{lineno}: #include {kind}{name}{'>' if kind == '<' else chr(34)}"
                target = resolve(rel, name) if kind == '"' else None
                if parser and (SOCKET_HEADERS.match(name) or (target and SOCKET_HEADERS.match(os.path.basename(target)))):
                    key = (rel, name)
                    if key in EXCEPTIONS:
                        used_exceptions.add(key)
                    else:
                        problems.append(f"{where}: a parser includes socket/connection code")
                if target is None:
                    continue
                edges += 1
                tmod = module_of(target)
                if tmod == "tests":
                    problems.append(f"{where}: production code includes a test file")
                    continue
                if tmod is None or tmod == mod:
                    continue
                if tmod in ALLOWED.get(mod, set()):
                    continue
                key = (rel, tmod)
                if key in EXCEPTIONS:
                    used_exceptions.add(key)
                    continue
                what = "a specific daemon's header" if tmod in DAEMONS else f"{tmod} (a layer it may not use)"
                problems.append(f"{where}: {mod} includes {what} ({target})")
    for key in sorted(set(EXCEPTIONS) - used_exceptions):
        problems.append(f"EXCEPTIONS lists {key}, which no longer occurs: remove it from check_layers.py")
    return problems, files, edges


def self_test():
    """The checker itself: a small tree with one violation of each kind must give exactly those."""
    global ROOT
    import tempfile
    tree = {
        "appliance/core/config.h": '#include "common/connection.h"\n#include "result.h"\n',
        "appliance/core/result.h": "",
        "daemons/common/connection.h": '#include <QTcpSocket>\n#include "core/result.h"\n',
        "daemons/common/mail/reader.cpp": '#include "smtpd/smtp_session.h"\n#include "../connection.h"\n',
        "daemons/smtpd/smtp_session.h": '#include "common/connection.h"\n',
        "daemons/smtpd/smtp_command.h": '#include <sys/socket.h>\n#include "connection.h"\n',
        "daemons/imapd/imap_parser.h": '#include "smtpd/smtp_session.h"\n',
        "firewall/model.cpp": '#include "wizard/setup.h"\n#include "core/result.h"\n',
        "wizard/setup.h": '#include "../tests/unit/lib/recording_io.h"\n',
        "tests/unit/lib/recording_io.h": "",
    }
    want = [
        ("appliance/core/config.h:1", "core includes common"),
        ("daemons/common/mail/reader.cpp:1", "common includes a specific daemon's header"),
        ("daemons/smtpd/smtp_command.h:1", "a parser includes socket/connection code"),
        ("daemons/smtpd/smtp_command.h:2", "a parser includes socket/connection code"),
        ("daemons/imapd/imap_parser.h:1", "imapd includes a specific daemon's header"),
        ("firewall/model.cpp:1", "firewall includes wizard"),
        ("wizard/setup.h:1", "production code includes a test file"),
    ]
    saved = ROOT
    with tempfile.TemporaryDirectory(prefix="postern-layers-") as d:
        for rel, text in tree.items():
            os.makedirs(os.path.dirname(os.path.join(d, rel)), exist_ok=True)
            with open(os.path.join(d, rel), "w") as fh:
                fh.write(text)
        ROOT = d
        try:
            problems, _, _ = check()
        finally:
            ROOT = saved
    problems = [p for p in problems if not p.startswith("EXCEPTIONS lists")]
    ok = len(problems) == len(want) and all(any(p.startswith(w + ":") and m in p for p in problems) for w, m in want)
    if not ok:
        print("check_layers.py self-test: expected\n  " + "\n  ".join(f"{w}: {m}" for w, m in want) +
              "\ngot\n  " + "\n  ".join(problems))
    return ok


def main():
    if not self_test():
        return 1
    problems, files, edges = check()
    if problems:
        print("\n".join(problems))
        print(f"check_layers.py: {len(problems)} include(s) break the layers (ARCHITECTURE.md, 'Layers')", file=sys.stderr)
        return 1
    print(f"check_layers.py: {files} files, {edges} project includes, all within the layers (self-test passed)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
