#!/bin/sh
# run_fuzzer.sh FUZZER SEEDS WORKDIR SECONDS — a short libFuzzer run from a copy of the seeds.
# Exit status: 0 when no crash, leak, timeout or sanitizer report was found.
set -eu
fuzzer=$1 seeds=$2 work=$3 seconds=$4
if [ ! -x "$fuzzer" ]; then
  echo "run_fuzzer: $fuzzer was not built (the clang sub-build failed?)" >&2
  exit 1
fi
rm -rf "$work"
mkdir -p "$work/corpus" "$work/artifacts"
cp -r "$seeds/." "$work/corpus/"
cd "$work"
"$fuzzer" corpus -max_total_time="$seconds" -timeout=10 -rss_limit_mb=2048 -max_len=65536 \
  -artifact_prefix="$work/artifacts/" -print_final_stats=1 2>&1 | tail -n 25
status=$?
if [ -n "$(ls -A "$work/artifacts")" ]; then
  echo "run_fuzzer: findings in $work/artifacts:" >&2
  ls -l "$work/artifacts" >&2
  exit 1
fi
exit $status
