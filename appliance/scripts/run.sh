#!/bin/sh
# run.sh — the main job: install build dependencies, build, run the first-run
# wizard, then the daemons in the foreground.
#
# Usage: appliance/scripts/run.sh [wizard options...]
#   In a terminal the wizard asks its questions. Without a terminal on stdin it
#   takes the demo default: domain example.test on 127.0.0.1, unprivileged ports
#   when not root, everything under ./demo (config, mail, queue, logs).
#   Environment: POSTERN_CONFIG (config folder; default ./demo, or /etc/postern as root
#   with a terminal), POSTERN_BUILD (build folder; default ./build).
set -eu
cd "$(dirname "$0")/../.."
TOP=$(pwd)
BUILD=${POSTERN_BUILD:-$TOP/build}

appliance/scripts/install-deps.sh build
cmake -S . -B "$BUILD" -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo -DPOSTERN_BUILD_TESTS=OFF >/dev/null
cmake --build "$BUILD" -j "$(nproc)"

if [ -t 0 ] && [ "$(id -u)" = 0 ]; then DEFAULT_CONFIG=/etc/postern; else DEFAULT_CONFIG=$TOP/demo; fi
CONFIG=${POSTERN_CONFIG:-$DEFAULT_CONFIG}
WIZARD=$BUILD/bin/postern-wizard
SUPERVISOR=$BUILD/bin/postern-appliance
export POSTERN_LIBEXEC="$BUILD/bin"

# The wizard configures (or re-checks) the instance, starts the supervisor, checks every
# listener like a client would, prints the DNS records and client settings, and stays in
# the foreground with the daemons until Ctrl-C.
if [ -t 0 ]; then
  exec "$WIZARD" --config "$CONFIG" --supervisor "$SUPERVISOR" "$@"
else
  exec "$WIZARD" --non-interactive --config "$CONFIG" --supervisor "$SUPERVISOR" "$@"
fi
