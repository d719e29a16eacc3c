#!/bin/sh
# tests/run.sh — the test command: install what is needed, build, run every test.
#
# Usage: tests/run.sh [--sanitize | --no-sanitize] [--label LABEL] [--no-install] [--build-dir DIR] [-- ctest args]
#   (no option)    everything CI runs: the normal build with every test (unit, integration, fuzz,
#                  image), then a second build with AddressSanitizer + UndefinedBehaviorSanitizer
#                  (build-asan/) running the unit and integration tests again
#   --sanitize     only the sanitizer part
#   --no-sanitize  only the normal part
#   --label L      run only tests labelled L (unit, integration, fuzz, image); implies --no-sanitize
#                  unless --sanitize is given
#   --no-install   skip the Debian package step
# Prints ctest's summary ("100% tests passed, 0 tests failed out of N") for each part and exits
# non-zero when any part fails.
set -eu
cd "$(dirname "$0")/.."
MODE=both
LABEL=""
INSTALL=1
BUILD=""
while [ $# -gt 0 ]; do
  case "$1" in
    --sanitize) MODE=sanitize ;;
    --no-sanitize) MODE=normal ;;
    --label) LABEL="$2"; shift ;;
    --no-install) INSTALL=0 ;;
    --build-dir) BUILD="$2"; shift ;;
    --) shift; break ;;
    *) echo "tests/run.sh: unknown argument $1" >&2; exit 2 ;;
  esac
  shift
done
if [ -n "$LABEL" ] && [ "$MODE" = both ]; then MODE=normal; fi

started=$(date +%s)
if [ "$INSTALL" = 1 ]; then
  appliance/scripts/install-deps.sh all
fi

# part SANITIZE BUILD_DIR LABEL_REGEX [ctest args]: configure, build and test one build folder.
part() {
  san=$1 dir=$2 labels=$3
  shift 3
  echo "== configure ($dir, sanitize=$san)"
  # The sanitizer build skips the clang fuzz sub-build: the fuzz targets already run
  # with ASan and UBSan in the normal build.
  # It is also compiled with -O1 -g1 (line tables for the reports): half the compile time of
  # -O2 -g, which keeps the whole of tests/run.sh within CI's time.
  fuzz=ON
  flags=""
  if [ "$san" = ON ]; then fuzz=OFF; flags="-O1 -g1 -DNDEBUG"; fi
  cmake -S . -B "$dir" -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo -DPOSTERN_SANITIZE="$san" -DPOSTERN_WERROR=ON \
    -DPOSTERN_FUZZ_SUBBUILD="$fuzz" ${flags:+"-DCMAKE_CXX_FLAGS_RELWITHDEBINFO=$flags"} || return 1
  echo "== build ($dir) at $(( $(date +%s) - started )) s"
  cmake --build "$dir" -j "$(nproc)" || return 1
  echo "== test ($dir) at $(( $(date +%s) - started )) s"
  set -- --output-on-failure --timeout 1800 -j "$(nproc)" "$@"
  if [ -n "$labels" ]; then set -- -L "$labels" "$@"; fi
  (cd "$dir" && ctest "$@") || return 1
}

status=0
if [ "$MODE" != sanitize ]; then
  part OFF "${BUILD:-build-test}" "$LABEL" "$@" || status=1
fi
if [ "$MODE" != normal ]; then
  # ASan: no leak report at exit for Qt's global objects, abort on the first error so a
  # daemon under test dies loudly; UBSan: print the stack and fail (-fno-sanitize-recover).
  export ASAN_OPTIONS="${ASAN_OPTIONS:-detect_leaks=0:abort_on_error=1:detect_stack_use_after_return=0}"
  export UBSAN_OPTIONS="${UBSAN_OPTIONS:-print_stacktrace=1:halt_on_error=1}"
  san_labels=${LABEL:-unit|integration}
  part ON "${BUILD:-build-asan}" "$san_labels" "$@" || status=1
fi
echo "== tests/run.sh: $( [ $status = 0 ] && echo passed || echo FAILED ) in $(( $(date +%s) - started )) s"
exit $status
