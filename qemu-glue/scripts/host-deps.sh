#!/usr/bin/env bash
# Make sure the host has what gp100emu needs to build a guest kernel and
# initramfs: a C toolchain, the kernel build tools, busybox-static, and Debian's
# linux-source-6.12 (from bookworm-backports on Debian 12).
#
# Usage: host-deps.sh [--check] [--without-kernel-source]
#   --check   only report what is missing (exit 1 if anything is)
#   --without-kernel-source   the run brings its own kernel source (--kernel, --kernel-version):
#             do not ask for linux-source-6.12
# Without --check, as root on a Debian-family host, installs what is missing
# with apt-get (adding the backports source for linux-source-6.12 when needed).
set -euo pipefail

log() { printf '[host-deps] %s\n' "$*" >&2; }
check_only=0
want_source=1
for a in "$@"; do
    case "$a" in
        --check) check_only=1 ;;
        --without-kernel-source) want_source=0 ;;
        *) log "unknown argument $a"; exit 2 ;;
    esac
done

missing=()
need_cmd() { command -v "$1" >/dev/null 2>&1 || missing+=("$2"); }
need_file() { [ -e "$1" ] || missing+=("$2"); }

need_cmd gcc gcc
need_cmd make make
need_cmd flex flex
need_cmd bison bison
need_cmd bc bc
need_cmd cpio cpio
need_cmd xz xz-utils
need_cmd gzip gzip
need_cmd perl perl
need_cmd patch patch
# xmllint: the tests validate the JUnit report against its schema.
need_cmd xmllint libxml2-utils
need_file /usr/include/libelf.h libelf-dev
need_file /usr/include/openssl/ssl.h libssl-dev
# A statically linked busybox (Debian's plain busybox package is dynamic).
if ! [ -x /bin/busybox ] || ldd /bin/busybox >/dev/null 2>&1; then missing+=(busybox-static); fi
# Static libc for the guest programs.
need_file /usr/lib/x86_64-linux-gnu/libc.a libc6-dev
kernel_src_ok=1
[ $want_source = 0 ] || ls /usr/src/linux-source-6.12.tar.* >/dev/null 2>&1 || kernel_src_ok=0

if [ ${#missing[@]} -eq 0 ] && [ $kernel_src_ok = 1 ]; then
    exit 0
fi

want="${missing[*]:-}"
[ $kernel_src_ok = 1 ] || want="$want linux-source-6.12"
if [ $check_only = 1 ] || [ "$(id -u)" != 0 ] || ! command -v apt-get >/dev/null; then
    log "missing host packages:$want"
    log "to install them as root (Debian 12; gp100emu does this itself when run as root):"
    [ ${#missing[@]} -eq 0 ] || log "  apt-get install -y ${missing[*]}"
    if [ $kernel_src_ok = 0 ]; then
        log "  echo 'deb http://deb.debian.org/debian bookworm-backports main' > /etc/apt/sources.list.d/bookworm-backports.list"
        log "  apt-get update && apt-get install -y -t bookworm-backports linux-source-6.12"
    fi
    exit 1
fi

log "installing missing host packages:$want"
if [ $kernel_src_ok = 0 ]; then
    codename=$(. /etc/os-release && echo "${VERSION_CODENAME:-}")
    if [ "$codename" = bookworm ] && ! grep -rqs 'bookworm-backports' /etc/apt/sources.list /etc/apt/sources.list.d/; then
        # The Debian mirror this machine's apt already uses (active lines only).
        mirror=$(grep -hsE '^[[:space:]]*(deb[[:space:]]|URIs:)' /etc/apt/sources.list \
                     /etc/apt/sources.list.d/*.list /etc/apt/sources.list.d/*.sources 2>/dev/null \
                 | grep -oE 'https?://[^ ]+/debian/?' | grep -v security | head -n1 || true)
        mirror=${mirror:-http://deb.debian.org/debian}
        log "adding ${mirror%/} bookworm-backports to apt's sources (for linux-source-6.12)"
        echo "deb ${mirror%/} bookworm-backports main" > /etc/apt/sources.list.d/gp100emu-bookworm-backports.list
    fi
fi
export DEBIAN_FRONTEND=noninteractive
apt-get update -q >&2
if [ ${#missing[@]} -gt 0 ]; then
    apt-get install -y -q --no-install-recommends "${missing[@]}" >&2
fi
if [ $kernel_src_ok = 0 ]; then
    if [ "$(. /etc/os-release && echo "${VERSION_CODENAME:-}")" = bookworm ]; then
        apt-get install -y -q -t bookworm-backports linux-source-6.12 >&2
    else
        apt-get install -y -q linux-source-6.12 >&2
    fi
fi
log "host packages ready"
