#!/bin/bash
# Find Debian's linux-source-VERSION tarball, fetching it from the Debian archive when the host
# does not have it installed.
#
# Usage: fetch-kernel-source.sh --version VERSION --cache DIR [--refresh]
#
#   --version  a Debian linux-source version: 6.1 (bookworm), 6.12 (bookworm-backports, trixie),
#              7.3 (trixie-backports), ... whichever suite has it.
#   --cache    gp100emu's cache directory; the package is kept in DIR/linux-source/VERSION/.
#   --refresh  look for a newer package even when one is cached.
#
# Order: /usr/src/linux-source-VERSION.tar.* installed on the host (apt-get install
# linux-source-VERSION), then the cache, then the archive. The archive is read with a private apt
# configuration under DIR/apt/ (its own sources list, lists and status file): the host's apt
# sources and installed packages are never changed, so a Debian 12 host can take Debian 13's
# backports kernel source without mixing releases. Suites looked at: bookworm,
# bookworm-backports, trixie, trixie-backports, on the mirror the host's apt already uses.
# The last stdout line is TARBALL=<path>; progress goes to stderr. Exit 2: no such version.
set -euo pipefail

version= cache= refresh=0
while [ $# -gt 0 ]; do
    case "$1" in
        --version) version=$2; shift 2 ;;
        --cache) cache=$2; shift 2 ;;
        --refresh) refresh=1; shift ;;
        -h|--help) sed -n '2,18p' "$0"; exit 0 ;;
        *) echo "fetch-kernel-source: unknown argument $1" >&2; exit 2 ;;
    esac
done
[ -n "$version" ] && [ -n "$cache" ] || { echo "fetch-kernel-source: need --version V --cache DIR" >&2; exit 2; }
case "$version" in
    [0-9]*.[0-9]*) ;;
    *) echo "fetch-kernel-source: '$version' is not a kernel version like 6.12 or 7.3" >&2; exit 2 ;;
esac
log() { printf '[kernel-source] %s\n' "$*" >&2; }
pkg=linux-source-$version

for t in /usr/src/$pkg.tar.xz /usr/src/$pkg.tar.bz2 /usr/src/$pkg.tar.gz; do
    if [ -f "$t" ]; then
        log "$pkg is installed on the host: $t"
        echo "TARBALL=$t"
        exit 0
    fi
done

store=$cache/linux-source/$version
if [ $refresh = 0 ] && [ -f "$store/current" ]; then
    t=$(cat "$store/current")
    if [ -f "$t" ]; then
        log "$pkg from the cache: $t (--refresh looks for a newer one)"
        echo "TARBALL=$t"
        exit 0
    fi
fi

for tool in apt-get apt-cache dpkg-deb; do
    command -v "$tool" >/dev/null || {
        echo "fetch-kernel-source: '$tool' is missing: fetching $pkg needs Debian's apt; or download a kernel tarball yourself and pass it with --kernel FILE" >&2
        exit 2
    }
done
keyring=/usr/share/keyrings/debian-archive-keyring.gpg
[ -f "$keyring" ] || { echo "fetch-kernel-source: $keyring is missing (apt-get install debian-archive-keyring)" >&2; exit 2; }

# The Debian mirror this machine's apt already uses (active lines only, as provision-qemu.sh).
mirror=$(grep -hsE '^[[:space:]]*(deb[[:space:]]|URIs:)' /etc/apt/sources.list \
             /etc/apt/sources.list.d/*.list /etc/apt/sources.list.d/*.sources 2>/dev/null \
         | grep -oE 'https?://[^ ]+/debian/?' | grep -v security | head -n1 || true)
mirror=${mirror:-http://deb.debian.org/debian}
mirror=${mirror%/}

apt=$cache/apt
mkdir -p "$apt/lists/partial" "$apt/cache/archives/partial" "$apt/preferences.d"
[ -f "$apt/status" ] || : >"$apt/status"
{
    for suite in bookworm bookworm-backports trixie trixie-backports; do
        echo "deb [signed-by=$keyring] $mirror $suite main"
    done
} >"$apt/sources.list"
aptopts=(-o "Dir::Etc::SourceList=$apt/sources.list" -o Dir::Etc::SourceParts=/dev/null
         -o "Dir::State::Lists=$apt/lists" -o "Dir::State::Status=$apt/status"
         -o "Dir::Cache=$apt/cache" -o Dir::Etc::Preferences=/dev/null
         -o "Dir::Etc::PreferencesParts=$apt/preferences.d" -o Debug::NoLocking=1
         -o APT::Architecture=amd64 -o APT::Sandbox::User=root)
log "reading the package lists of bookworm, bookworm-backports, trixie, trixie-backports from $mirror"
apt-get "${aptopts[@]}" -q update >"$apt/update.log" 2>&1 || {
    echo "fetch-kernel-source: apt-get update (private lists in $apt) failed:" >&2
    tail -10 "$apt/update.log" >&2
    exit 1
}
# The newest version any suite offers (apt-cache madison lists every suite's).
debver=$(apt-cache "${aptopts[@]}" madison "$pkg" 2>/dev/null | awk -F'|' '{gsub(/ /,"",$2); print $2}' \
         | sort -V | tail -n1 || true)
if [ -z "$debver" ]; then
    have=$(apt-cache "${aptopts[@]}" search --names-only '^linux-source-[0-9.]+$' 2>/dev/null \
           | awk '{print $1}' | sed 's/^linux-source-//' | sort -V | tr '\n' ' ')
    echo "fetch-kernel-source: no Debian suite offers $pkg; versions there: ${have:-none}" >&2
    exit 2
fi
suite=$(apt-cache "${aptopts[@]}" madison "$pkg" | awk -F'|' -v v="$debver" '{gsub(/ /,"",$2)} $2==v {print $3}' | head -n1 | awk '{print $2}')
dir=$store/$debver
if [ ! -f "$dir/.done" ]; then
    log "downloading $pkg $debver (${suite:-?}) into $dir"
    rm -rf "$dir.tmp"
    mkdir -p "$dir.tmp"
    (cd "$dir.tmp" && apt-get "${aptopts[@]}" -q download "$pkg=$debver") >"$apt/download.log" 2>&1 || {
        echo "fetch-kernel-source: apt-get download $pkg=$debver failed:" >&2
        tail -10 "$apt/download.log" >&2
        exit 1
    }
    dpkg-deb -x "$dir.tmp"/*.deb "$dir.tmp/root"
    rm -f "$dir.tmp"/*.deb
    touch "$dir.tmp/.done"
    rm -rf "$dir"
    mv "$dir.tmp" "$dir"
fi
t=$(ls "$dir"/root/usr/src/$pkg.tar.* 2>/dev/null | head -n1 || true)
[ -n "$t" ] || { echo "fetch-kernel-source: the $pkg package holds no /usr/src/$pkg.tar.*" >&2; exit 1; }
echo "$t" >"$store/current"
log "$pkg $debver: $t"
echo "TARBALL=$t"
