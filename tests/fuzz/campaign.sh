#!/bin/sh
# campaign.sh — a long fuzzing campaign over every libFuzzer target, outside CI.
#
# Usage: tests/fuzz/campaign.sh [--seconds N] [--jobs J] [--build-dir DIR] [--work DIR] [TARGET...]
#   --seconds N    fuzzing time per target (default 600)
#   --jobs J       targets fuzzed at the same time (default 1; use the number of cores)
#   --build-dir D  the main build folder (default build); its fuzz-build/ holds the targets
#   --work DIR     where corpora, logs and findings go (default <build>/fuzz-campaign)
#   TARGET         names such as imap_session (default: every fuzz_* in <build>/fuzz-build/fuzz)
#
# Each target starts from a copy of its seed corpus (tests/fuzz/corpus/<name>/) plus what an
# earlier campaign in the same work folder found, and runs until its time is used up. A crash,
# leak, timeout or out-of-memory stops libFuzzer; the finding is kept in <work>/<name>/artifacts/
# and the target is started again for the rest of its time, so one bug does not end the run.
# At the end one line per target: executions, executions per second, findings, corpus size.
# Findings become corpus files (tests/fuzz/corpus/<name>/) and regression tests once fixed.
# Exit status: 0 when no target had a finding.
set -eu
cd "$(dirname "$0")/../.."
SECONDS_PER=600
JOBS=1
BUILD=build
WORK=""
while [ $# -gt 0 ]; do
  case "$1" in
    --seconds) SECONDS_PER="$2"; shift ;;
    --jobs) JOBS="$2"; shift ;;
    --build-dir) BUILD="$2"; shift ;;
    --work) WORK="$2"; shift ;;
    --) shift; break ;;
    -*) echo "campaign: unknown option $1" >&2; exit 2 ;;
    *) break ;;
  esac
  shift
done
BUILD=$(cd "$BUILD" && pwd)
FUZZDIR="$BUILD/fuzz-build/fuzz"
[ -n "$WORK" ] || WORK="$BUILD/fuzz-campaign"
mkdir -p "$WORK"
WORK=$(cd "$WORK" && pwd)
SEEDS=$(pwd)/tests/fuzz/corpus
if [ $# -eq 0 ]; then
  set --
  for f in "$FUZZDIR"/fuzz_*; do [ -x "$f" ] && set -- "$@" "$(basename "$f" | sed 's/^fuzz_//')"; done
fi
[ $# -gt 0 ] || { echo "campaign: no fuzz targets in $FUZZDIR (build the tree first)" >&2; exit 1; }

# run_one NAME: fuzz one target for SECONDS_PER seconds, restarting after findings.
run_one() {
  name=$1
  bin="$FUZZDIR/fuzz_$name"
  dir="$WORK/$name"
  mkdir -p "$dir/corpus" "$dir/artifacts"
  [ -d "$SEEDS/$name" ] && cp -r "$SEEDS/$name/." "$dir/corpus/"
  : > "$dir/log"
  start=$(date +%s)
  execs=0
  runs=0
  while :; do
    left=$((SECONDS_PER - ($(date +%s) - start)))
    [ "$left" -gt 0 ] || break
    runs=$((runs + 1))
    ( cd "$dir" && "$bin" corpus -max_total_time="$left" -timeout=10 -rss_limit_mb=2048 -max_len=65536 \
        -artifact_prefix="$dir/artifacts/" -print_final_stats=1 ) > "$dir/run.log" 2>&1 || true
    n=$(sed -n 's/^stat::number_of_executed_units: *//p' "$dir/run.log" | tail -n 1)
    if [ -z "$n" ]; then
      # A crash ends the run before the final stats: take the last progress line's count.
      n=$(grep -Eo '^#[0-9]+' "$dir/run.log" | tail -n 1 | tr -d '#')
    fi
    execs=$((execs + ${n:-0}))
    grep -E 'ERROR|SUMMARY|Test unit written' "$dir/run.log" >> "$dir/log" || true
    [ "$runs" -lt 1000 ] || break  # a target that dies at once would spin
  done
  elapsed=$(( $(date +%s) - start ))
  [ "$elapsed" -gt 0 ] || elapsed=1
  findings=$(find "$dir/artifacts" -type f | wc -l)
  corpus=$(find "$dir/corpus" -type f | wc -l)
  printf '%-16s %12s executions %8s/s %4s findings %6s corpus files %5ss\n' \
    "$name" "$execs" "$((execs / elapsed))" "$findings" "$corpus" "$elapsed" > "$dir/summary"
  cat "$dir/summary"
}

echo "campaign: $# targets, $SECONDS_PER s each, $JOBS at a time, work folder $WORK"
running=0
for name in "$@"; do
  if [ ! -x "$FUZZDIR/fuzz_$name" ]; then echo "campaign: no target fuzz_$name" >&2; exit 2; fi
  run_one "$name" &
  running=$((running + 1))
  if [ "$running" -ge "$JOBS" ]; then wait; running=0; fi
done
wait
echo "== summary ($(date -u +%Y-%m-%dT%H:%MZ), commit $(git rev-parse --short HEAD 2>/dev/null || echo unknown))"
total=0
for name in "$@"; do
  cat "$WORK/$name/summary"
  f=$(find "$WORK/$name/artifacts" -type f | wc -l)
  total=$((total + f))
done
if [ "$total" -gt 0 ]; then
  echo "campaign: $total findings; see $WORK/<target>/artifacts and log" >&2
  exit 1
fi
echo "campaign: no findings"
