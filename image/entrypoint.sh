#!/bin/sh
# postern-entrypoint — the container's entry point (installed as /usr/sbin/postern-entrypoint).
#
# Usage (as the image's ENTRYPOINT):
#   (no arguments)   first start: run the wizard, then the supervisor; later starts: the supervisor
#   wizard [ARGS]    run the wizard now (interactive with -it), then the supervisor
#   -- ARGS | CMD    run CMD instead (e.g. `posternctl status`, `sh`)
# First start = no $POSTERN_CONFIG/postern.conf (default /etc/postern). With a terminal on stdin
# the wizard asks its questions; without one it needs POSTERN_DOMAIN (and optionally
# POSTERN_HOSTNAME, POSTERN_USER, POSTERN_PASSWORD or POSTERN_PASSWORD_FILE, POSTERN_ADMIN,
# POSTERN_PUBLIC_IP, POSTERN_SMARTHOST; see postern-wizard --help), else it stops with exit 78.
# POSTERN_SKIP_NETWORK_CHECKS=1 skips the wizard's outbound-port-25 and DNS checks.
# Exit codes: the wizard's when it fails, 78 when no answers can be had, else the supervisor's.
# Security: the supervisor (PID 1 via exec) binds the ports as root and the daemons drop to the
# `postern` user; secrets come from POSTERN_PASSWORD_FILE (a mounted secret) rather than the
# environment when possible. Nothing here logs a password (the wizard prints a generated one once).
# Limits: none of its own; the wizard and supervisor apply theirs.
set -eu

CONFIG_DIR=${POSTERN_CONFIG:-/etc/postern}
DATA_DIR=${POSTERN_DATA:-/var/lib/postern}
LOG_DIR=${POSTERN_LOG_DIR:-/var/log/postern}
export POSTERN_DATA="$DATA_DIR"

say() { printf 'postern-entrypoint: %s\n' "$*" >&2; }

run_wizard() {
    set -- --config "$CONFIG_DIR" --no-launch "$@"
    if [ "${POSTERN_SKIP_NETWORK_CHECKS:-0}" = 1 ]; then set -- "$@" --skip-network-checks; fi
    if [ -t 0 ]; then
        postern-wizard --interactive "$@"
    elif [ -n "${POSTERN_DOMAIN:-}" ]; then
        postern-wizard --non-interactive "$@"
    else
        say "no configuration in $CONFIG_DIR yet, and nothing to configure it from."
        say "Either run the container once with a terminal (podman/docker run -it ...) to answer the wizard,"
        say "or pass the answers as environment variables, at least POSTERN_DOMAIN=example.org"
        say "(also POSTERN_HOSTNAME, POSTERN_USER, POSTERN_PASSWORD_FILE or POSTERN_PASSWORD, POSTERN_PUBLIC_IP)."
        exit 78
    fi
    # Logs go to their own volume; the wizard keeps them under the data folder otherwise.
    if [ "$(posternctl --config "$CONFIG_DIR" config get log_dir 2>/dev/null || true)" = "" ]; then
        posternctl --config "$CONFIG_DIR" config set log_dir "$LOG_DIR" >/dev/null
    fi
}

# Volumes may be empty (first start) or come from an older container: make sure the
# daemons' folders exist and belong to them.
prepare_volumes() {
    mkdir -p "$CONFIG_DIR"
    for d in "$DATA_DIR" "$LOG_DIR"; do
        mkdir -p "$d"
        chown postern:postern "$d"
        chmod 0750 "$d"
    done
}

case "${1:-}" in
    "")
        prepare_volumes
        if [ ! -f "$CONFIG_DIR/postern.conf" ]; then
            run_wizard
        fi
        ;;
    wizard)
        shift
        prepare_volumes
        run_wizard "$@"
        ;;
    --)
        shift
        exec "$@"
        ;;
    *)
        exec "$@"
        ;;
esac

prepare_volumes
say "starting postern-appliance --config $CONFIG_DIR"
exec postern-appliance --config "$CONFIG_DIR"
