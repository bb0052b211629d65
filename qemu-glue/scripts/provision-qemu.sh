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

if [ "$(id -u)" != 0 ]; then
    log "making the QEMU root needs root (debootstrap and chroot); run as root once, or install QEMU >= 10.1 on the host"
    exit 1
fi

# The Debian mirror this machine's apt already uses, not a hard-coded one.
mirror=$(grep -rhoE 'https?://[^ ]+/debian/?' /etc/apt/sources.list /etc/apt/sources.list.d/ 2>/dev/null \
         | grep -v security | head -n1 || true)
mirror=${mirror:-http://deb.debian.org/debian}
mirror=${mirror%/}

if ! command -v debootstrap >/dev/null; then
    log "installing debootstrap"
    apt-get install -y -q debootstrap >&2
fi

mkdir -p "$cache"
tmp="$root.partial"
rm -rf "$tmp"
start=$(date +%s)
log "debootstrap trixie (minbase) from $mirror into $tmp — about a minute"
debootstrap --variant=minbase trixie "$tmp" "$mirror" 2>&1 | \
    awk '/^I: (Retrieving|Validating|Extracting|Unpacking|Configuring) /{n++; if (n%50==0) {print "[provision-qemu]   " $0; fflush()}} /^[EW]:/{print; fflush()}' >&2
echo "deb $mirror trixie-backports main" > "$tmp/etc/apt/sources.list.d/backports.list"
log "apt-get update in the root"
chroot "$tmp" apt-get update -q >&2
log "installing qemu-system-x86 from trixie-backports"
chroot "$tmp" env DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends \
    -t trixie-backports qemu-system-x86 >&2
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
