#!/usr/bin/env bash
# Provision a QEMU with `vfio-user-pci` (QEMU >= 10.1) for gp100emu.
#
# Debian 12's QEMU (7.2, backports 10.0) has no vfio-user-pci, so this builds a
# Debian 13 (trixie) root with debootstrap and installs qemu-system-x86 from
# trixie-backports into it (recipe: ../shared/spec/qemu-transport.md).
#
# Usage: provision-qemu.sh CACHE_DIR
#   Prints the root's path on its last line of stdout when it is ready.
#   The root is made once, in CACHE_DIR/qemu-trixie-<key>, where <key> is a hash
#   of this script: a changed recipe makes a new root, an unchanged one is reused.
set -euo pipefail

cache=${1:?usage: provision-qemu.sh CACHE_DIR}
key=$(sha256sum "$0" | cut -c1-12)
root="$cache/qemu-trixie-$key"
stamp="$root/.gp100emu-ready"

log() { printf '[provision-qemu] %s\n' "$*" >&2; }

if [ -f "$stamp" ]; then
    log "cached root: $root ($(cat "$stamp"))"
    echo "$root"
    exit 0
fi

if [ -n "${GP100EMU_NO_PROVISION:-}" ]; then
    log "no cached root in $cache and provisioning is off"
    exit 3
fi

if [ "$(id -u)" != 0 ]; then
    log "making the QEMU root needs root (debootstrap and chroot); run as root once, or install QEMU >= 10.1 on the host"
    exit 1
fi

# The Debian mirror this machine's apt already uses, not a hard-coded one: only the
# active `deb` / `URIs:` lines of the files apt reads (a commented-out snapshot URL
# or a *.disabled file must not win).
mirror=$(grep -hsE '^[[:space:]]*(deb[[:space:]]|URIs:)' /etc/apt/sources.list \
             /etc/apt/sources.list.d/*.list /etc/apt/sources.list.d/*.sources 2>/dev/null \
         | grep -oE 'https?://[^ ]+/debian/?' | grep -v security | head -n1 || true)
mirror=${mirror:-http://deb.debian.org/debian}
mirror=${mirror%/}

if ! command -v debootstrap >/dev/null; then
    log "installing debootstrap"
    apt-get install -y -q debootstrap >&2
fi

mkdir -p "$cache"
tmp="$root.partial"
rm -rf "$tmp"
logfile="$root.log"
: > "$logfile"
start=$(date +%s)
fail() { log "$1 failed; the last lines of $logfile:"; tail -n 20 "$logfile" >&2; exit 1; }
log "step 1/3: debootstrap trixie (minbase) from $mirror (about 30 s; full log: $logfile)"
debootstrap --variant=minbase trixie "$tmp" "$mirror" >>"$logfile" 2>&1 || fail debootstrap
echo "deb $mirror trixie-backports main" > "$tmp/etc/apt/sources.list.d/backports.list"
log "step 2/3: apt-get update in the root ($(( $(date +%s) - start )) s so far)"
chroot "$tmp" apt-get update -q >>"$logfile" 2>&1 || fail "apt-get update"
log "step 3/3: installing qemu-system-x86 from trixie-backports ($(( $(date +%s) - start )) s so far)"
chroot "$tmp" env DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends \
    -t trixie-backports qemu-system-x86 >>"$logfile" 2>&1 || fail "apt-get install qemu-system-x86"
chroot "$tmp" apt-get clean
version=$(chroot "$tmp" qemu-system-x86_64 --version | head -n1)
if ! chroot "$tmp" qemu-system-x86_64 -device help 2>/dev/null | grep -q vfio-user-pci; then
    log "the installed QEMU ($version) has no vfio-user-pci device"
    exit 1
fi
mkdir -p "$tmp/gp100emu"
echo "$version; made in $(( $(date +%s) - start )) s" > "$tmp/.gp100emu-ready"
mv "$tmp" "$root"
log "ready: $root ($(cat "$stamp"))"
echo "$root"
