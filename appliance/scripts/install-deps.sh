#!/bin/sh
# install-deps.sh — install the Debian 12 packages Postern needs.
#
# Usage: install-deps.sh [build|run|test|image|all]...   (default: build)
#   build  compilers, CMake, Qt 6, OpenSSL, ldns, argon2, libcrypt, SQLite, liboath, libqrencode
#   run    build + the engines the appliance supervises (Rspamd, Redis: spam filter; unbound:
#          the bundled resolver, with dns-root-data's trust anchor)
#   test   run + the real clients and servers the test suite drives
#   image  the tools that build and boot the container and VM images
#   all    everything above
#
# Idempotent: packages already installed are skipped, and when nothing is
# missing no apt command runs at all. Services that Debian would start on
# install (nsd, unbound, dovecot, rspamd, redis-server, ...) are held back with a temporary policy-rc.d, so
# the test suite starts its own instances on free loopback ports.
set -eu

BUILD_PKGS="publicsuffix build-essential cmake ninja-build pkg-config ccache git
 qt6-base-dev qt6-base-dev-tools qt6-httpserver-dev qt6-websockets-dev
 libldns-dev ldnsutils libssl-dev openssl libargon2-dev libcrypt-dev libsqlite3-dev
 liboath-dev libqrencode-dev ca-certificates"
# The spam filter (issue 18): the supervisor runs its own rspamd and redis-server with a
# configuration Postern generates; Debian's system services stay stopped (policy-rc.d below).
SPAM_PKGS="rspamd redis-server unbound dns-root-data"
FUZZ_PKGS="clang libclang-rt-14-dev"
# Style: tests/style/check_format.sh (the code_format test) runs clang-format over the tree,
# tests/style/tidy.sh (clang_tidy_parsers) clang-tidy's fast profile over the parsers.
STYLE_PKGS="clang-format clang-tidy"
TEST_PKGS="$FUZZ_PKGS $STYLE_PKGS python3 swaks libnet-ssleay-perl libio-socket-ssl-perl libauthen-sasl-perl curl msmtp fetchmail isync getmail6 offlineimap imapfilter
 nsd bind9-utils python3-dkim python3-nacl python3-dnspython unbound argon2 whois nftables iptables ufw iproute2 tmux pebble
 procps psmisc util-linux e2fsprogs restic dovecot-imapd sieve-connect oathtool chromium"
IMAGE_PKGS="mmdebstrap buildah podman runc skopeo umoci qemu-system-x86 qemu-utils ovmf
 systemd-boot-efi mtools dosfstools fdisk systemd-container bubblewrap uidmap zstd slirp4netns e2fsprogs"
# Benchmark peers (tests/bench/), never installed by `all`: Postfix's "No configuration"
# is preseeded and the services stay stopped (policy-rc.d below).
BENCH_PKGS="postfix dovecot-core dovecot-lmtpd dovecot-pop3d dovecot-imapd"

want=""
[ $# -eq 0 ] && set -- build
for group in "$@"; do
  case "$group" in
    build) want="$want $BUILD_PKGS" ;;
    run)   want="$want $BUILD_PKGS $SPAM_PKGS" ;;
    test)  want="$want $BUILD_PKGS $SPAM_PKGS $TEST_PKGS" ;;
    image) want="$want $IMAGE_PKGS" ;;
    bench) want="$want $BUILD_PKGS $SPAM_PKGS $TEST_PKGS $BENCH_PKGS" ;;
    all)   want="$want $BUILD_PKGS $SPAM_PKGS $TEST_PKGS $IMAGE_PKGS" ;;
    *) echo "install-deps: unknown group '$group' (build|run|test|image|bench|all)" >&2; exit 2 ;;
  esac
done

missing=""
for p in $want; do
  if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "ok installed"; then
    case " $missing " in *" $p "*) ;; *) missing="$missing $p" ;; esac
  fi
done

if [ -z "$missing" ]; then
  echo "install-deps: all packages present"
  exit 0
fi

if [ "$(id -u)" -ne 0 ]; then
  if command -v sudo >/dev/null 2>&1; then SUDO=sudo; else
    echo "install-deps: need root to install:$missing" >&2; exit 1
  fi
else
  SUDO=
fi

echo "install-deps: installing:$missing"
# Keep freshly installed daemons (nsd, rspamd, redis-server, ...) from starting as system services.
policy=/usr/sbin/policy-rc.d
created_policy=0
if [ ! -e "$policy" ]; then
  printf '#!/bin/sh\nexit 101\n' | $SUDO tee "$policy" >/dev/null
  $SUDO chmod 755 "$policy"
  created_policy=1
fi
cleanup() { if [ "$created_policy" = 1 ]; then $SUDO rm -f "$policy"; fi; }
trap cleanup EXIT INT TERM

export DEBIAN_FRONTEND=noninteractive
case " $missing " in *" postfix "*) echo "postfix postfix/main_mailer_type select No configuration" | $SUDO debconf-set-selections ;; esac
APT="$SUDO apt-get -o DPkg::Lock::Timeout=600 -o Acquire::Retries=3"
# Refresh the package lists once when they are missing or older than a day.
if [ -z "$(find /var/lib/apt/lists -maxdepth 1 -name '*_Packages' -mtime -1 2>/dev/null | head -n 1)" ]; then
  timeout 600 $APT update -qq
fi
# shellcheck disable=SC2086
timeout 1800 $APT install -y -qq --no-install-recommends $missing
echo "install-deps: done"
