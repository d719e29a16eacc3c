#!/bin/bash
# image/build.sh — one command that builds Postern's container image and VM image.
#
# Usage: image/build.sh [--container] [--vm] [--out DIR] [--build-dir DIR | --use-build DIR] [--jobs N] [--tag NAME]
#   (no --container/--vm: both)  --out: where the images go (default image/out)
#   --build-dir: the Release build tree (default build-image)   --tag: image name (default localhost/postern:latest)
#   --use-build: take the programs from an existing, configured build tree as it is (the tests use
#                their own tree, so CI compiles once); it is brought up to date, not reconfigured
# Steps: cmake Release build -> `cmake --install --strip` into a staging folder -> mmdebstrap
# runtime rootfs (cached in $POSTERN_IMAGE_CACHE, default ~/.cache/postern-image, keyed on the
# package list) -> buildah (FROM scratch + rootfs + staging) -> OCI archive and Docker archive.
# The VM path (image/vm/build-vm.sh) adds a kernel and systemd and assembles a UEFI qcow2.
# Prints the paths of the results and how to run them. Exit 0 only when every requested image
# was built; any failing or overrunning step stops the build with its name on stderr.
# Security: Debian archive packages only (signed), no -dev packages in the images; the programs
# run as root only to bind ports (they drop to the `postern` user).
# Limits: each step runs under `timeout` (see lib.sh); environment POSTERN_MMDEBSTRAP_TIMEOUT.
# Needs root (mmdebstrap --mode=root, buildah) and `appliance/scripts/install-deps.sh build image`.
set -euo pipefail

HERE=$(cd "$(dirname "$0")" && pwd)
TOP=$(cd "$HERE/.." && pwd)
# shellcheck source=image/lib.sh
. "$HERE/lib.sh"

WANT_CONTAINER=0
WANT_VM=0
OUT=$HERE/out
BUILD=$TOP/build-image
JOBS=$(nproc)
TAG=localhost/postern:latest
USE_BUILD=0
while [ $# -gt 0 ]; do
    case "$1" in
        --container) WANT_CONTAINER=1 ;;
        --vm) WANT_VM=1 ;;
        --out) OUT=$2; shift ;;
        --build-dir) BUILD=$2; shift ;;
        --use-build) BUILD=$2; USE_BUILD=1; shift ;;
        --jobs) JOBS=$2; shift ;;
        --tag) TAG=$2; shift ;;
        -h|--help) sed -n '2,20p' "$0"; exit 0 ;;
        *) echo "image/build.sh: unknown argument $1" >&2; exit 2 ;;
    esac
    shift
done
if [ "$WANT_CONTAINER" = 0 ] && [ "$WANT_VM" = 0 ]; then WANT_CONTAINER=1; WANT_VM=1; fi
if [ "$(id -u)" != 0 ]; then
    echo "image/build.sh: run as root (mmdebstrap --mode=root and buildah need it)" >&2
    exit 1
fi
for tool in cmake ninja mmdebstrap; do
    command -v "$tool" >/dev/null || { echo "image/build.sh: $tool missing; run appliance/scripts/install-deps.sh build image" >&2; exit 1; }
done
mkdir -p "$OUT"
OUT=$(cd "$OUT" && pwd)
T_START=$(date +%s)

# 1. The programs, installed into a staging folder exactly as a package would install them.
STAGING=$OUT/staging
if [ "$USE_BUILD" = 1 ]; then
    [ -f "$BUILD/CMakeCache.txt" ] || { echo "image/build.sh: --use-build $BUILD is not a configured build tree" >&2; exit 1; }
    step 1800 "build (existing tree $BUILD)" cmake --build "$BUILD" -j "$JOBS"
else
    step 1800 "configure + build (Release, $BUILD)" bash -c '
        cmake -S "$1" -B "$2" -G Ninja -DCMAKE_BUILD_TYPE=Release -DPOSTERN_BUILD_TESTS=OFF -DCMAKE_INSTALL_PREFIX=/usr >/dev/null &&
        cmake --build "$2" -j "$3"' _ "$TOP" "$BUILD" "$JOBS"
fi
rm -rf "$STAGING"
step 120 "install into $STAGING" env DESTDIR="$STAGING" cmake --install "$BUILD" --prefix /usr --strip
VERSION=$("$BUILD/bin/postern-appliance" --version | awk '{print $2}')

# 2. Container image.
if [ "$WANT_CONTAINER" = 1 ]; then
    command -v buildah >/dev/null || { echo "image/build.sh: buildah missing; run appliance/scripts/install-deps.sh image" >&2; exit 1; }
    ROOTFS=$(cached_rootfs container "$RUNTIME_PKGS")
    CTX=$OUT/container-context
    rm -rf "$CTX"
    mkdir -p "$CTX"
    ln "$ROOTFS" "$CTX/rootfs.tar" 2>/dev/null || cp "$ROOTFS" "$CTX/rootfs.tar"
    cp -a "$STAGING" "$CTX/staging"
    cp "$HERE/entrypoint.sh" "$CTX/entrypoint.sh"
    # A private container store, so the build never touches the host's images.
    STORE=(--storage-driver "${POSTERN_STORAGE_DRIVER:-vfs}" --root "$OUT/containers/storage" --runroot "$OUT/containers/run")
    export BUILDAH_ISOLATION=chroot
    step 600 "buildah bud $TAG" buildah "${STORE[@]}" bud --isolation chroot --format docker --layers=false \
        --build-arg POSTERN_VERSION="$VERSION" -t "$TAG" -f "$HERE/container/Containerfile.rootfs" "$CTX"
    rm -f "$OUT/postern-container.oci.tar" "$OUT/postern-container.docker.tar"
    step 300 "export OCI archive" buildah "${STORE[@]}" push "$TAG" "oci-archive:$OUT/postern-container.oci.tar:$TAG"
    step 300 "export Docker archive" buildah "${STORE[@]}" push "$TAG" "docker-archive:$OUT/postern-container.docker.tar:$TAG"
    rm -rf "$CTX"
    # The archives are the results; the private store only held the build.
    buildah "${STORE[@]}" rm --all >/dev/null 2>&1 || true
    buildah "${STORE[@]}" rmi --all --force >/dev/null 2>&1 || true
    # The Docker archive holds the single uncompressed layer: its size is the image's size.
    SIZE=$(stat -c %s "$OUT/postern-container.docker.tar")
    echo "$SIZE" >"$OUT/postern-container.size"
    log "container image $TAG: $(( SIZE / 1000000 )) MB uncompressed ($(( $(stat -c %s "$OUT/postern-container.oci.tar") / 1000000 )) MB as OCI archive)"
fi

# 3. VM image.
if [ "$WANT_VM" = 1 ]; then
    "$HERE/vm/build-vm.sh" --staging "$STAGING" --out "$OUT"
fi

log "done in $(( $(date +%s) - T_START ))s"
cat <<EOF

Results in $OUT:
EOF
if [ "$WANT_CONTAINER" = 1 ]; then
cat <<EOF
  postern-container.oci.tar      OCI archive      (podman load -i ..., skopeo copy oci-archive:...)
  postern-container.docker.tar   Docker archive   (docker load -i ...)

Run the container (first start asks the wizard's questions because of -it; later starts run the daemons):
  podman load -i $OUT/postern-container.oci.tar
  podman run -it --name postern -h mail.example.org \\
    -v postern-etc:/etc/postern -v postern-data:/var/lib/postern -v postern-log:/var/log/postern \\
    -p 25:25 -p 465:465 -p 587:587 -p 143:143 -p 993:993 -p 110:110 -p 995:995 -p 4190:4190 -p 80:80 -p 443:443 \\
    $TAG
  (docker: docker load -i $OUT/postern-container.docker.tar, then the same run line with docker)
  Without a terminal, answer with environment variables instead of -it:
    -e POSTERN_DOMAIN=example.org -e POSTERN_USER=you@example.org -e POSTERN_PASSWORD_FILE=/run/secrets/pw
EOF
fi
if [ "$WANT_VM" = 1 ]; then
cat <<EOF

  postern-vm.qcow2               UEFI disk image (first boot opens the wizard on tty1 and the serial console)
Run the VM (software emulation; add -accel kvm where available):
  qemu-system-x86_64 -m 1024 -smp 2 -bios /usr/share/ovmf/OVMF.fd \\
    -drive file=$OUT/postern-vm.qcow2,if=virtio -nographic \\
    -netdev user,id=n,hostfwd=tcp:127.0.0.1:2525-:25,hostfwd=tcp:127.0.0.1:2993-:993,hostfwd=tcp:127.0.0.1:2465-:465 \\
    -device virtio-net-pci,netdev=n
EOF
fi
