#!/bin/sh
# tests/style/tidy.sh — the fast clang-tidy profile (tests/style/clang-tidy-fast.yaml) on the
# socket-free parsers (the code that reads attacker-chosen bytes first), or on the files
# given as arguments. Needs a configured build tree with compile_commands.json
# (CMAKE_EXPORT_COMPILE_COMMANDS is on) whose targets were built once (Qt's generated
# headers). Exits 1 on any finding.
#   tests/style/tidy.sh                       the parsers (PARSERS below)
#   tests/style/tidy.sh daemons/imapd/*.cpp   any files
# Environment: POSTERN_BUILD_DIR (default build), TIDY_JOBS (default 2).
# The full profile (.clang-tidy, with clang-analyzer-*) costs about 13 s of CPU per file:
#   run-clang-tidy -p build -quiet
set -eu
src="${POSTERN_SOURCE_DIR:-$(cd "$(dirname "$0")/../.." && pwd)}"
build="${POSTERN_BUILD_DIR:-$src/build}"
jobs="${TIDY_JOBS:-2}"
cd "$src"
command -v clang-tidy >/dev/null || { echo "tidy.sh: clang-tidy missing (install-deps.sh test)" >&2; exit 1; }
[ -f "$build/compile_commands.json" ] || { echo "tidy.sh: no $build/compile_commands.json (configure first)" >&2; exit 1; }
PARSERS="daemons/smtpd/smtp_command.cpp daemons/smtpd/smtp_data.cpp daemons/imapd/imap_parser.cpp
daemons/sieved/managesieve_parser.cpp daemons/webd/http_request.cpp daemons/queued/smtp_reply_reader.cpp
daemons/common/sieve/sieve_parser.cpp daemons/common/spam/rspamd_protocol.cpp appliance/ctl/imap_client_parser.cpp"
if [ $# -gt 0 ]; then files="$*"; else files="$PARSERS"; fi
out=$(mktemp "${TMPDIR:-/tmp}/postern-tidy.XXXXXX")
trap 'rm -f "$out"' EXIT
count=$(echo $files | wc -w)
status=0
echo $files | tr ' ' '\n' | xargs -P "$jobs" -I{} sh -c \
    'clang-tidy -p "$1" --quiet --extra-arg=-Wno-unknown-warning-option --config-file="$2" "$3" >>"$4.$$" 2>&1 || echo "tidy.sh: findings in $3" >>"$4.$$"; cat "$4.$$" >>"$4"; rm -f "$4.$$"' \
    sh "$build" "$src/tests/style/clang-tidy-fast.yaml" {} "$out" || status=1
if grep -q "warning:\|error:\|tidy.sh: findings" "$out"; then status=1; fi
grep -v "^[0-9]* warnings\? generated\.$\|^Suppressed \|^Use -header-filter\|^Use -system-headers" "$out" || true
if [ "$status" -ne 0 ]; then
    echo "tidy.sh: clang-tidy (fast profile) found problems in $count file(s)" >&2
    exit 1
fi
echo "tidy.sh: $count file(s) clean under the fast profile"
