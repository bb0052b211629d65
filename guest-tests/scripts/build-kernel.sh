#!/bin/bash
# Build gp100emu's guest kernel (bzImage) and the kernel's own hmm-tests from the same source.
#
# Usage: build-kernel.sh --fragment FILE --out DIR [--source TARBALL|TREE] [--jobs N]
#
#   --source  Debian's linux-source tarball (default /usr/src/linux-source-6.12.tar.xz), or a
#             kernel source tree of your own (built out of tree, incrementally, into DIR/build).
#   --out     where everything goes; the caller keys it by source + fragment + this script, so a
#             finished DIR is reused as is (DIR/done marks it finished).
#
# Base config: `make tinyconfig` + FILE merged with scripts/kconfig/merge_config.sh, then
# `make olddefconfig`. Every CONFIG_*=y of FILE must survive, or the build stops and says which.
# Progress goes to stderr; the last stdout lines are KERNEL=<bzImage> and HMM_TESTS=<binary>.
set -euo pipefail

src=/usr/src/linux-source-6.12.tar.xz
fragment=
out=
jobs=$(nproc)
while [ $# -gt 0 ]; do
    case "$1" in
        --source) src=$2; shift 2 ;;
        --fragment) fragment=$2; shift 2 ;;
        --out) out=$2; shift 2 ;;
        --jobs) jobs=$2; shift 2 ;;
        -h|--help) sed -n '2,13p' "$0"; exit 0 ;;
        *) echo "build-kernel: unknown argument $1" >&2; exit 2 ;;
    esac
done
[ -n "$fragment" ] && [ -f "$fragment" ] || { echo "build-kernel: --fragment FILE is required" >&2; exit 2; }
[ -n "$out" ] || { echo "build-kernel: --out DIR is required" >&2; exit 2; }
fragment=$(realpath "$fragment")
mkdir -p "$out"
out=$(realpath "$out")
start=$SECONDS
say() { printf '[kernel %3dm%02ds] %s\n' $(((SECONDS - start) / 60)) $(((SECONDS - start) % 60)) "$*" >&2; }

for tool in gcc make flex bison bc perl xz; do
    command -v "$tool" >/dev/null || { echo "build-kernel: '$tool' is missing; run qemu-glue/scripts/host-deps.sh" >&2; exit 2; }
done

# --- 1. the source tree ---
if [ -d "$src" ]; then
    tree=$(realpath "$src")
    [ -f "$tree/Makefile" ] && [ -d "$tree/arch/x86" ] || { echo "build-kernel: $tree is not a kernel source tree" >&2; exit 2; }
    if [ -f "$tree/.config" ]; then
        echo "build-kernel: $tree was configured in tree (.config exists); out-of-tree builds need a clean tree: run 'make mrproper' there, or pass a built bzImage with --kernel" >&2
        exit 2
    fi
elif [ -f "$src" ]; then
    tree=$out/src
    if [ ! -f "$tree/Makefile" ]; then
        say "extracting $(basename "$src") ($(du -h "$src" | cut -f1))"
        rm -rf "$out/src.tmp"
        mkdir -p "$out/src.tmp"
        tar -xJf "$src" -C "$out/src.tmp" --strip-components=1
        mv "$out/src.tmp" "$tree"
    fi
else
    echo "build-kernel: no kernel source at $src; install Debian's linux-source-6.12 (bookworm-backports): qemu-glue/scripts/host-deps.sh does it" >&2
    exit 2
fi
version=$(make -s -C "$tree" kernelversion 2>/dev/null || echo unknown)
build=$out/build
mkdir -p "$build"

# --- 2. configuration ---
say "configuring Linux $version: tinyconfig + $(grep -c '^CONFIG_' "$fragment") options from $(basename "$fragment")"
make -s -C "$tree" O="$build" tinyconfig >"$out/config.log" 2>&1 || { tail -20 "$out/config.log" >&2; exit 1; }
(cd "$build" && "$tree/scripts/kconfig/merge_config.sh" -m -O "$build" "$build/.config" "$fragment") >>"$out/config.log" 2>&1 \
    || { tail -20 "$out/config.log" >&2; exit 1; }
make -s -C "$tree" O="$build" olddefconfig >>"$out/config.log" 2>&1 || { tail -20 "$out/config.log" >&2; exit 1; }
missing=$(grep -E '^CONFIG_[A-Z0-9_]+=y' "$fragment" | while read -r line; do
    grep -qxF "$line" "$build/.config" || echo "${line%%=*}"
done)
if [ -n "$missing" ]; then
    echo "build-kernel: these options of $(basename "$fragment") did not survive olddefconfig (a dependency is missing):" >&2
    echo "$missing" | sed 's/^/  /' >&2
    exit 1
fi
say "config: $(grep -c '=y$' "$build/.config") options =y"

# --- 3. bzImage, with progress ---
say "building bzImage with -j$jobs (log: $out/build.log)"
set +e
make -C "$tree" O="$build" -j"$jobs" bzImage 2>&1 | tee "$out/build.log" | {
    n=0
    last=$SECONDS
    while IFS= read -r line; do
        case "$line" in
            "  CC "*|"  AS "*|"  LD "*|"  AR "*) n=$((n + 1)) ;;
        esac
        if [ $((SECONDS - last)) -ge 20 ]; then
            say "  $n objects built so far"
            last=$SECONDS
        fi
    done
}
rc=${PIPESTATUS[0]}
set -e
if [ "$rc" != 0 ]; then
    echo "build-kernel: make bzImage failed (exit $rc); the end of $out/build.log:" >&2
    tail -30 "$out/build.log" >&2
    exit 1
fi
bz=$build/arch/x86/boot/bzImage
say "bzImage: $(du -h "$bz" | cut -f1)"

# --- 4. the kernel's own HMM selftest, static, from the same source ---
say "building hmm-tests (tools/testing/selftests/mm) statically"
make -s -C "$tree" O="$build" headers_install INSTALL_HDR_PATH="$out/headers" >>"$out/build.log" 2>&1 \
    || { tail -20 "$out/build.log" >&2; exit 1; }
gcc -static -O2 -Wall -D_GNU_SOURCE \
    -isystem "$out/headers/include" -I "$tree" -I "$tree/tools/testing/selftests" \
    -o "$out/hmm-tests" "$tree/tools/testing/selftests/mm/hmm-tests.c" -lpthread >>"$out/build.log" 2>&1 \
    || { echo "build-kernel: hmm-tests did not build:" >&2; tail -20 "$out/build.log" >&2; exit 1; }

cp "$bz" "$out/bzImage"
echo "$version" >"$out/version"
touch "$out/done"
say "done"
echo "KERNEL=$out/bzImage"
echo "HMM_TESTS=$out/hmm-tests"
