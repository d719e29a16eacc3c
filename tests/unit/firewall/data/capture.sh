#!/bin/sh
# capture.sh — re-creates the captured rulesets in this folder with the real
# tools: each case loads its ruleset (from src/, or by running ufw) into a
# network namespace of its own and records what `postern-firewall capture`
# reads there (nft -j list ruleset, iptables-save, ip6tables-save, ufw status,
# ...). The host's firewall is never touched; ufw runs in a mount namespace
# over a temporary copy of /etc/ufw.
# Usage (as root): capture.sh BUILD/bin/postern-firewall
# Afterwards run tst_firewall_golden with POSTERN_UPDATE_GOLDEN=1 and review
# the expected-*.txt diffs by hand before committing them.
set -eu
BIN=$(readlink -f "$1")
HERE=$(cd "$(dirname "$0")" && pwd)
SRC=$HERE/src

finish() {  # the namespace has only "lo": record the interface a real host has
  rm -f "$1/container.txt"
  echo eth0 > "$1/interfaces.txt"
}

TMP=$(mktemp -d)
trap 'rm -rf "$TMP"' EXIT
mkdir "$TMP/config"  # default listeners (all nine ports on *), state under $TMP
echo "data_dir = $TMP/data" > "$TMP/config/postern.conf"

cap() {  # cap NAME 'commands that load the ruleset'; also NAME-applied after `postern-firewall apply`
  out=$HERE/$1
  rm -rf "$out" "$out-applied"
  unshare --net sh -eu -c "$2
    \"$BIN\" capture \"$out\" >/dev/null
    \"$BIN\" --config $TMP/config apply >/dev/null || [ \$? = 1 ]
    \"$BIN\" capture \"$out-applied\" >/dev/null"
  finish "$out"
  finish "$out-applied"
}

rm -rf "$HERE/empty"
unshare --net sh -eu -c "\"$BIN\" capture \"$HERE/empty\" >/dev/null"
finish "$HERE/empty"
cap nft-default-drop "nft -f $SRC/nft-default-drop.nft"
cap iptables-docker "iptables-restore < $SRC/iptables-docker.v4"
# firewalld itself is not run (no D-Bus here): its ruleset is loaded with nft and
# its state answers are recorded as firewall-cmd gives them. No -applied capture.
rm -rf "$HERE/firewalld-public"
unshare --net sh -eu -c "nft -f $SRC/firewalld-public.nft
  \"$BIN\" capture \"$HERE/firewalld-public\" >/dev/null"
finish "$HERE/firewalld-public"
echo running > "$HERE/firewalld-public/firewalld-state.txt"
echo public > "$HERE/firewalld-public/firewalld-zone.txt"
cp "$SRC/firewalld-list-all.txt" "$HERE/firewalld-public/firewalld-list-all.txt"

# Postern's own block-list mirror (auth.block_nftables) alone: not a backend in use, never
# planned into or removed; its drop shows as an exception of the open ports.
rm -rf "$HERE/postern-block"
unshare --net sh -eu -c "nft -f $SRC/postern-block.nft
  \"$BIN\" capture \"$HERE/postern-block\" >/dev/null"
finish "$HERE/postern-block"

# Debian's ufw, enabled for real (iptables-nft underneath), default deny incoming.
cp -a /etc/ufw "$TMP/etc-ufw"
cp /etc/default/ufw "$TMP/default-ufw"
: > "$TMP/sysctl.conf"
sed -i "s|^IPT_SYSCTL=.*|IPT_SYSCTL=$TMP/sysctl.conf|" "$TMP/default-ufw"
out=$HERE/ufw-debian
rm -rf "$out" "$out-applied"
unshare --net --mount sh -eu -c "
  mount --make-rprivate /
  mount --bind $TMP/etc-ufw /etc/ufw
  mount --bind $TMP/default-ufw /etc/default/ufw
  ufw default deny incoming >/dev/null
  ufw allow 22/tcp >/dev/null
  ufw allow from 192.168.1.0/24 to any port 993 proto tcp >/dev/null
  ufw --force enable >/dev/null
  \"$BIN\" capture \"$out\" >/dev/null
  \"$BIN\" --config $TMP/config apply >/dev/null
  \"$BIN\" capture \"$out-applied\" >/dev/null"
finish "$out"
finish "$out-applied"
echo "captured: $(ls -d "$HERE"/*/ | grep -v /src/ | xargs -n1 basename | tr '\n' ' ')"
