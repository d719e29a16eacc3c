#!/bin/bash
# image/vm/build-vm.sh — the VM image: Debian 12 + cloud kernel + systemd + Postern, as a UEFI qcow2.
#
# Usage: image/vm/build-vm.sh --staging DIR --out DIR     (called by image/build.sh)
#   --staging  the programs installed by `cmake --install` (DESTDIR layout, prefix /usr)
# Produces in --out: postern-vm.qcow2 (compressed, the shipped image), vm/rootfs/ (the root
# filesystem as a folder, for `systemd-nspawn -b` checks), vm/vmlinuz and vm/initrd.img (direct
# kernel boot). Exit 0 when everything was built.
# How: cached mmdebstrap rootfs (lib.sh) -> unpack -> programs, units, network, user, fstab ->
# `mke2fs -d` root filesystem -> FAT ESP with systemd-boot made with mtools -> GPT written by
# sfdisk into a plain file -> dd the two filesystems in -> qemu-img convert -c. No loop devices,
# no mounts.
# Security: root's password is locked until the first-boot wizard (or the answers) sets one;
# the SSH server is off and has no host keys until the first boot is given a public key (keys
# only); the mail daemons drop to the `postern` user; Debian security
# updates install themselves (unattended-upgrades) and a kernel among them is copied onto the ESP
# (etc/kernel/postinst.d/zz-postern-esp), so it is the one that boots next.
# Data disk: configuration, mail and logs live on a second virtual disk (LABEL=POSTERN-DATA, made
# from a blank disk at the first boot by postern-datadisk.service), so a newer system disk can be
# booted with the same data disk; without one they stay on the root file system.
# Disk: the root partition and file system grow to the virtual disk's size at boot
# (postern-growfs.service), so `qemu-img resize` before or between boots is all it takes.
# Limits: root partition 4 GiB (virtual; qcow2 stores only used blocks), ESP 128 MiB; every
# step runs under `timeout`.
set -euo pipefail

HERE=$(cd "$(dirname "$0")" && pwd)
# shellcheck source=image/lib.sh
. "$HERE/../lib.sh"

STAGING=""
OUT=""
while [ $# -gt 0 ]; do
    case "$1" in
        --staging) STAGING=$2; shift ;;
        --out) OUT=$2; shift ;;
        *) echo "build-vm.sh: unknown argument $1" >&2; exit 2 ;;
    esac
    shift
done
[ -n "$STAGING" ] && [ -d "$STAGING" ] && [ -n "$OUT" ] || { echo "usage: build-vm.sh --staging DIR --out DIR" >&2; exit 2; }
for tool in mke2fs mkfs.fat mcopy mmd sfdisk qemu-img; do
    command -v "$tool" >/dev/null || { echo "build-vm.sh: $tool missing; run appliance/scripts/install-deps.sh image" >&2; exit 1; }
done
EFI_STUB=/usr/lib/systemd/boot/efi/systemd-bootx64.efi
[ -f "$EFI_STUB" ] || { echo "build-vm.sh: $EFI_STUB missing (package systemd-boot-efi)" >&2; exit 1; }

ESP_MB=128
ROOT_MB=4096
ROOT_LABEL=postern-root
CMDLINE="root=LABEL=$ROOT_LABEL rw console=tty1 console=ttyS0,115200 quiet"
WORK=$OUT/vm
ROOTFS=$WORK/rootfs
export HERE STAGING EFI_STUB ESP_MB ROOT_MB ROOT_LABEL CMDLINE WORK ROOTFS

TAR=$(cached_rootfs vm "$VM_PKGS")
rm -rf "$WORK"
mkdir -p "$ROOTFS"
step 300 "unpack VM rootfs" tar --numeric-owner -xpf "$TAR" -C "$ROOTFS"

customize() {
    set -euo pipefail
    cp -a "$STAGING"/. "$ROOTFS"/
    cp -a "$HERE/rootfs"/. "$ROOTFS"/
    chroot "$ROOTFS" useradd --system --user-group --home-dir /nonexistent --no-create-home --shell /usr/sbin/nologin postern
    mkdir -p "$ROOTFS/etc/postern"
    chmod 0755 "$ROOTFS/etc/postern"
    echo postern >"$ROOTFS/etc/hostname"
    printf '127.0.0.1\tlocalhost\n127.0.1.1\tpostern\n::1\t\tlocalhost ip6-localhost ip6-loopback\n' >"$ROOTFS/etc/hosts"
    # The ESP is mounted so that kernels installed by apt reach it (etc/kernel/postinst.d/zz-postern-esp).
    mkdir -p "$ROOTFS/boot/efi"
    cat >"$ROOTFS/etc/fstab" <<EOF
# <file system>     <mount point> <type> <options>          <dump> <pass>
LABEL=$ROOT_LABEL   /             ext4   errors=remount-ro  0      1
LABEL=ESP           /boot/efi     vfat   umask=0077,nofail,x-systemd.device-timeout=90s  0  0
EOF
    # SSH: off, and without host keys (the first boot makes them if SSH is wanted; a key baked
    # in here would be the same in every VM made from the image).
    rm -f "$ROOTFS"/etc/ssh/ssh_host_*
    chroot "$ROOTFS" systemctl disable ssh.service ssh.socket >/dev/null 2>&1 || true
    # Debian's own unbound, redis and rspamd services stay off (unbound-resolvconf would also point
    # resolv.conf at it): postern-appliance runs its own instances from generated configurations.
    chroot "$ROOTFS" systemctl disable unbound.service unbound-resolvconf.service redis-server.service rspamd.service \
        >/dev/null 2>&1 || true
    # Root's password stays locked until first boot sets one.
    chroot "$ROOTFS" passwd -l root >/dev/null
    # The data disk's mount point (postern-datadisk.service).
    mkdir -p "$ROOTFS/srv/postern"
    chroot "$ROOTFS" systemctl enable postern.service postern-firstboot.service postern-growfs.service postern-datadisk.service \
        systemd-networkd.service systemd-resolved.service serial-getty@ttyS0.service >/dev/null 2>&1
    ln -sf ../run/systemd/resolve/stub-resolv.conf "$ROOTFS/etc/resolv.conf"
    # A machine id is made at first boot, so every VM made from this image gets its own.
    : >"$ROOTFS/etc/machine-id"
    for b in "$ROOTFS"/usr/sbin/postern* "$ROOTFS"/usr/libexec/postern/*; do
        if chroot "$ROOTFS" ldd "${b#"$ROOTFS"}" | grep 'not found'; then echo "missing libraries for $b" >&2; return 1; fi
    done
    chroot "$ROOTFS" postern-appliance --version
}
step 120 "install Postern, units and settings into the VM rootfs" customize

# Kernel and initrd (the packages made them inside the rootfs).
KERNEL=$(ls "$ROOTFS"/boot/vmlinuz-* | sort -V | tail -n 1)
INITRD=$(ls "$ROOTFS"/boot/initrd.img-* | sort -V | tail -n 1)
cp "$KERNEL" "$WORK/vmlinuz"
cp "$INITRD" "$WORK/initrd.img"
echo "$CMDLINE" >"$WORK/cmdline"

build_disk() {
    set -euo pipefail
    local esp=$WORK/esp.img root=$WORK/root.ext4 disk=$WORK/disk.raw
    # Root filesystem, filled from the folder (no mount).
    mke2fs -q -t ext4 -L "$ROOT_LABEL" -d "$ROOTFS" -E root_owner=0:0 "$root" "${ROOT_MB}M"
    # EFI system partition: systemd-boot, kernel, initrd and one loader entry.
    mkfs.fat -F 32 -n ESP -C "$esp" $((ESP_MB * 1024)) >/dev/null
    mmd -i "$esp" ::/EFI ::/EFI/BOOT ::/loader ::/loader/entries
    mcopy -i "$esp" "$EFI_STUB" ::/EFI/BOOT/BOOTX64.EFI
    mcopy -i "$esp" "$WORK/vmlinuz" ::/vmlinuz
    mcopy -i "$esp" "$WORK/initrd.img" ::/initrd.img
    printf 'default postern.conf\ntimeout 0\n' >"$WORK/loader.conf"
    printf 'title Postern\nlinux /vmlinuz\ninitrd /initrd.img\noptions %s\n' "$CMDLINE" >"$WORK/postern.conf"
    mcopy -i "$esp" "$WORK/loader.conf" ::/loader/loader.conf
    mcopy -i "$esp" "$WORK/postern.conf" ::/loader/entries/postern.conf
    # GPT: 1 MiB gap, ESP, root, room for the backup table.
    rm -f "$disk"
    truncate -s $(( (1 + ESP_MB + ROOT_MB + 1) * 1048576 )) "$disk"
    sfdisk --quiet "$disk" <<EOF
label: gpt
start=2048, size=$((ESP_MB * 2048)), type=C12A7328-F81F-11D2-BA4B-00A0C93EC93B, name=ESP
start=$((2048 + ESP_MB * 2048)), size=$((ROOT_MB * 2048)), type=4F68BCE3-E8CD-4DB1-96E7-FBCAF984B709, name=root
EOF
    dd if="$esp" of="$disk" bs=1M seek=1 conv=notrunc,sparse status=none
    dd if="$root" of="$disk" bs=1M seek=$((1 + ESP_MB)) conv=notrunc,sparse status=none
    rm -f "$esp" "$root"
}
step 300 "assemble the UEFI disk (mke2fs -d, mtools, sfdisk)" build_disk
rm -f "$OUT/postern-vm.qcow2"
step 600 "convert to compressed qcow2" qemu-img convert -c -O qcow2 "$WORK/disk.raw" "$OUT/postern-vm.qcow2"
rm -f "$WORK/disk.raw"
log "VM image $OUT/postern-vm.qcow2: $(( $(stat -c %s "$OUT/postern-vm.qcow2") / 1000000 )) MB"
