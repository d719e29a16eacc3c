#!/bin/sh
# tests/run.sh — the test command: install what is needed, build, run every test.
#
# Usage: tests/run.sh [--sanitize] [--label LABEL] [--no-install] [--build-dir DIR] [-- ctest args]
#   --sanitize     build with AddressSanitizer + UndefinedBehaviorSanitizer (separate build folder)
#   --label L      run only tests labelled L (unit, integration, fuzz, image)
#   --no-install   skip the Debian package step
# Prints ctest's summary ("100% tests passed, 0 tests failed out of N") and exits non-zero on failure.
set -eu
cd "$(dirname "$0")/.."
SAN=OFF
LABEL=""
INSTALL=1
BUILD=""
while [ $# -gt 0 ]; do
  case "$1" in
    --sanitize) SAN=ON ;;
    --label) LABEL="$2"; shift ;;
    --no-install) INSTALL=0 ;;
    --build-dir) BUILD="$2"; shift ;;
    --) shift; break ;;
    *) echo "tests/run.sh: unknown argument $1" >&2; exit 2 ;;
  esac
  shift
done
[ -n "$BUILD" ] || { [ "$SAN" = ON ] && BUILD=build-asan || BUILD=build-test; }

if [ "$INSTALL" = 1 ]; then
  appliance/scripts/install-deps.sh all
fi

echo "== configure ($BUILD, sanitize=$SAN)"
cmake -S . -B "$BUILD" -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo -DPOSTERN_SANITIZE=$SAN -DPOSTERN_WERROR=ON
echo "== build"
cmake --build "$BUILD" -j "$(nproc)"
echo "== test"
cd "$BUILD"
set -- --output-on-failure --timeout 1800 -j "$(nproc)" "$@"
if [ -n "$LABEL" ]; then set -- -L "$LABEL" "$@"; fi
ctest "$@"
