# image/lib.sh — shared settings and helpers of image/build.sh (bash; sourced, not run).
# shellcheck shell=bash
#
# Interface: variables SUITE, MIRROR, MMDEBSTRAP_ARGS, RUNTIME_PKGS, VM_PKGS; functions log,
# step (runs a command under `timeout`, prints its wall time, fails loudly),
# cached_rootfs KIND PKGS [extra mmdebstrap args] (prints the path of a cached
# rootfs tarball, building it with mmdebstrap when the cache has no entry for
# that exact package list and option set).
# Security: images are built from the Debian archive only (main, -updates and
# -security), with APT's signature checks; no -dev packages enter an image.
# Limits: every step is bounded by `timeout`; a cached tarball is reused only
# when its key (suite, mirrors, packages, options, recipe version) matches.
# Standards: OCI image spec (via buildah), Debian 12 "bookworm".

SUITE=bookworm
MIRROR=${POSTERN_DEBIAN_MIRROR:-http://deb.debian.org/debian}
SECURITY_MIRROR=${POSTERN_DEBIAN_SECURITY_MIRROR:-http://deb.debian.org/debian-security}
# Runtime libraries of the programs (checked with ldd inside the rootfs after every build).
RUNTIME_PKGS=$(sed -e 's/#.*//' "$(dirname "${BASH_SOURCE[0]}")/runtime-packages.txt" | xargs)
# The VM adds a kernel, systemd, networking, time sync, console login, apt with
# unattended-upgrades (security updates by themselves) and growpart (the root file system
# grows to the virtual disk's size at boot) and an SSH server (off until the first boot is
# given a key), and nft (auth.block_nftables: the supervisor's block-list table; the
# container has none, as a container rarely may change the host's packet filter).
VM_PKGS="$RUNTIME_PKGS linux-image-cloud-amd64 initramfs-tools systemd systemd-sysv udev kmod dbus
 systemd-resolved systemd-timesyncd iproute2 e2fsprogs mount login util-linux apt less procps
 unattended-upgrades cloud-guest-utils openssh-server nftables"
# Bump when the recipe below changes in a way the package list does not show.
RECIPE_VERSION=3

CACHE_DIR=${POSTERN_IMAGE_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/postern-image}

log() { printf '== %s\n' "$*" >&2; }

# step SECONDS DESCRIPTION COMMAND... — run under a time limit, report the time taken.
# COMMAND may be a shell function (it then sees only exported variables).
step() {
    _limit=$1; _what=$2; shift 2
    log "$_what"
    _t0=$(date +%s)
    # A shell function runs in a child bash (timeout needs a program); it sees exported variables.
    if declare -F "$1" >/dev/null; then
        export -f "$1"
        set -- bash -c '"$@"' _ "$@"
    fi
    timeout --kill-after=30 "$_limit" "$@" || {
        _rc=$?
        if [ "$_rc" = 124 ]; then
            echo "image/build.sh: '$_what' did not finish within ${_limit}s" >&2
        else
            echo "image/build.sh: '$_what' failed (exit $_rc)" >&2
        fi
        return "$_rc"
    }
    log "$_what: $(( $(date +%s) - _t0 ))s"
}

# Minimal, merged-/usr, no documentation or translations.
MMDEBSTRAP_ARGS=(--variant=essential --mode=root --format=tar \
        --hook-dir=/usr/share/mmdebstrap/hooks/merged-usr \
        --aptopt='Acquire::Retries "3"' \
        --dpkgopt='path-exclude=/usr/share/man/*' \
        --dpkgopt='path-exclude=/usr/share/info/*' \
        --dpkgopt='path-exclude=/usr/share/locale/*' --dpkgopt='path-include=/usr/share/locale/locale.alias' \
        --dpkgopt='path-exclude=/usr/share/doc/*' --dpkgopt='path-include=/usr/share/doc/*/copyright' \
        --dpkgopt='path-exclude=/usr/share/lintian/*' \
        --customize-hook='rm -rf "$1"/var/cache/apt/* "$1"/var/lib/apt/lists/* "$1"/var/log/apt/* "$1"/var/log/dpkg.log' \
        --customize-hook='rm -f "$1"/var/cache/ldconfig/aux-cache "$1"/etc/machine-id; touch "$1"/etc/machine-id')

# cached_rootfs KIND "PKGS" [extra mmdebstrap args...] — prints the tarball path.
cached_rootfs() {
    _kind=$1; _pkgs=$(echo $2 | tr ' ' '\n' | sort -u | tr '\n' ' '); shift 2
    _key=$( { echo "$RECIPE_VERSION $SUITE $MIRROR $SECURITY_MIRROR"; echo "$_pkgs"; printf '%s\n' "${MMDEBSTRAP_ARGS[@]}"; printf '%s\n' "$@"; } \
            | sha256sum | cut -c1-16)
    _tar=$CACHE_DIR/$_kind-$SUITE-$_key.tar
    if [ -s "$_tar" ]; then
        log "$_kind rootfs: cached $_tar"
        echo "$_tar"
        return 0
    fi
    mkdir -p "$CACHE_DIR"
    # Older entries of the same kind are superseded by this one.
    rm -f "$CACHE_DIR/$_kind-$SUITE-"*.tar
    step "${POSTERN_MMDEBSTRAP_TIMEOUT:-1200}" "mmdebstrap $_kind rootfs ($_pkgs)" \
        env SOURCE_DATE_EPOCH="${SOURCE_DATE_EPOCH:-$(date +%s)}" \
        mmdebstrap "${MMDEBSTRAP_ARGS[@]}" --include="$(echo $_pkgs | tr ' ' ',')" "$@" \
        "$SUITE" "$_tar.part.$$" \
        "deb $MIRROR $SUITE main" \
        "deb $MIRROR $SUITE-updates main" \
        "deb $SECURITY_MIRROR $SUITE-security main" >&2 || { rm -f "$_tar.part.$$"; return 1; }
    mv "$_tar.part.$$" "$_tar"
    echo "$_tar"
}
