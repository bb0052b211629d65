#!/bin/bash
# Build gp100emu's test initramfs: busybox-static, /init, and one executable per suite.
#
# Usage: build-initramfs.sh --suites DIR --init FILE --out FILE.cpio.gz [--extra NAME=PATH]...
#                           [--firmware DIR] [--module PATH] [--helper FILE.c]...
#
#   --suites  a directory of suites: NAME.sh (shell, run as is) or NAME.c (C, built static with
#             -I DIR, so DIR/lib/*.h are shared helpers). Each becomes /suites/NAME.
#   --extra   a prebuilt static binary to put at /bin/NAME (e.g. hmm-tests from the kernel build).
#   --firmware a directory to copy to /lib/firmware (gp100emu's generated GR/ACR files).
#   --module  a kernel module to put in /lib/modules (loaded by the suites that need it).
#   --helper  a C program of /init's (guest-tests/init/*.c), built static into /bin/NAME.
#
# Reproducible: sorted file list, every mtime 0, owner 0:0, cpio newc --reproducible, gzip -n.
set -euo pipefail
suites= init= out= firmware=
extras=()
modules=()
helpers=()
while [ $# -gt 0 ]; do
    case "$1" in
        --suites) suites=$2; shift 2 ;;
        --init) init=$2; shift 2 ;;
        --out) out=$2; shift 2 ;;
        --extra) extras+=("$2"); shift 2 ;;
        --firmware) firmware=$2; shift 2 ;;
        --module) modules+=("$2"); shift 2 ;;
        --helper) helpers+=("$2"); shift 2 ;;
        -h|--help) sed -n '2,15p' "$0"; exit 0 ;;
        *) echo "build-initramfs: unknown argument $1" >&2; exit 2 ;;
    esac
done
[ -d "$suites" ] && [ -f "$init" ] && [ -n "$out" ] || { echo "build-initramfs: need --suites DIR --init FILE --out FILE" >&2; exit 2; }
busybox=
for b in /bin/busybox /usr/bin/busybox $(command -v busybox || true); do
    [ -x "$b" ] && ! ldd "$b" >/dev/null 2>&1 && { busybox=$b; break; }
done
[ -n "$busybox" ] || { echo "build-initramfs: no statically linked busybox found; install busybox-static (qemu-glue/scripts/host-deps.sh)" >&2; exit 2; }
command -v cpio >/dev/null || { echo "build-initramfs: cpio is missing (qemu-glue/scripts/host-deps.sh)" >&2; exit 2; }

stage=$(mktemp -d)
trap 'rm -rf "$stage"' EXIT
mkdir -p "$stage"/{bin,dev,proc,sys,tmp,suites}
cp "$busybox" "$stage/bin/busybox"
# Applet links made here, not at boot, so the image is complete and reproducible.
for applet in $("$busybox" --list); do
    [ "$applet" = busybox ] || ln -s busybox "$stage/bin/$applet"
done
install -m 0755 "$init" "$stage/init"
for f in "$suites"/*.sh "$suites"/*.c; do
    [ -e "$f" ] || continue
    name=$(basename "$f"); name=${name%.*}
    case "$f" in
        *.sh) install -m 0755 "$f" "$stage/suites/$name" ;;
        *.c)
            gcc -static -O2 -Wall -Werror -I "$suites" -o "$stage/suites/$name" "$f" \
                || { echo "build-initramfs: suite $f did not compile" >&2; exit 1; }
            ;;
    esac
done
for h in "${helpers[@]}"; do
    name=$(basename "$h" .c)
    gcc -static -O2 -Wall -Werror -o "$stage/bin/$name" "$h" \
        || { echo "build-initramfs: /init's helper $h did not compile" >&2; exit 1; }
done
if [ -n "$firmware" ]; then
    [ -d "$firmware" ] || { echo "build-initramfs: --firmware $firmware is not a directory" >&2; exit 2; }
    mkdir -p "$stage/lib/firmware"
    cp -r "$firmware"/. "$stage/lib/firmware/"
fi
for m in "${modules[@]}"; do
    [ -f "$m" ] || { echo "build-initramfs: --module $m does not exist" >&2; exit 2; }
    mkdir -p "$stage/lib/modules"
    install -m 0644 "$m" "$stage/lib/modules/"
done
for e in "${extras[@]}"; do
    name=${e%%=*}; path=${e#*=}
    [ -x "$path" ] || { echo "build-initramfs: --extra $name: $path is not an executable" >&2; exit 2; }
    install -m 0755 "$path" "$stage/bin/$name"
done
find "$stage" -exec touch -h -d @0 {} +
mkdir -p "$(dirname "$out")"
(cd "$stage" && find . -mindepth 1 | LC_ALL=C sort | cpio -o -H newc -R 0:0 --reproducible --quiet) \
    | gzip -n -9 >"$out.tmp"
mv "$out.tmp" "$out"
echo "initramfs: $out ($(du -h "$out" | cut -f1), suites: $(ls "$stage/suites" | tr '\n' ' '))" >&2
