#!/bin/bash
# Build gp100emu's guest kernel (bzImage) and its UAPI headers (for build-hmm-tests.sh).
#
# Usage: build-kernel.sh --fragment FILE --out DIR [--source TARBALL|TREE] [--patch FILE]... [--jobs N]
#
#   --source  Debian's linux-source tarball (default /usr/src/linux-source-6.12.tar.xz), or a
#             kernel source tree of your own (built out of tree, incrementally, into DIR/build).
#   --patch   a patch to apply, in the order given (git format-patch mbox or plain diff, -p1).
#             Patches go onto a copy of the source in DIR/src, never onto your tree; a patch
#             that does not apply prints its rejected hunks and exits 2.
#   --out     where everything goes; the caller keys it by source + fragment + this script, so a
#             finished DIR is reused as is (DIR/done marks it finished).
#
# Base config: `make tinyconfig` + FILE merged with scripts/kconfig/merge_config.sh, then
# `make olddefconfig`. Every CONFIG_*=y of FILE must survive, or the build stops and says which.
# Progress goes to stderr; the last stdout lines are KERNEL=<bzImage> and HEADERS=<dir>.
set -euo pipefail

src=/usr/src/linux-source-6.12.tar.xz
fragment=
out=
jobs=$(nproc)
patches=()
while [ $# -gt 0 ]; do
    case "$1" in
        --source) src=$2; shift 2 ;;
        --fragment) fragment=$2; shift 2 ;;
        --out) out=$2; shift 2 ;;
        --jobs) jobs=$2; shift 2 ;;
        --patch) patches+=("$(realpath "$2")"); shift 2 ;;
        -h|--help) sed -n '2,16p' "$0"; exit 0 ;;
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

# --- 1. the source tree (a copy of it when there are patches) ---
for p in "${patches[@]}"; do
    [ -f "$p" ] || { echo "build-kernel: --patch $p: no such file" >&2; exit 2; }
done
[ ${#patches[@]} -eq 0 ] || command -v patch >/dev/null \
    || { echo "build-kernel: 'patch' is missing; run qemu-glue/scripts/host-deps.sh (or apt-get install patch)" >&2; exit 2; }
# Applies the patches to the fresh copy in $1; on the first that does not apply, prints its
# rejected hunks and exits 2 (the copy is removed, so the next run starts clean).
apply_patches() {
    local dir=$1 p n=0 rej
    for p in "${patches[@]}"; do
        n=$((n + 1))
        say "applying patch $n/${#patches[@]}: $(basename "$p")"
        rej=$out/rejects/$n-$(basename "$p").rej
        mkdir -p "$out/rejects"
        rm -f "$rej"
        if ! (cd "$dir" && patch -p1 --batch --forward --no-backup-if-mismatch --dry-run -i "$p") >"$out/patch.log" 2>&1; then
            (cd "$dir" && patch -p1 --batch --forward --no-backup-if-mismatch -r "$rej" -i "$p") >>"$out/patch.log" 2>&1 || true
            echo "build-kernel: patch $(basename "$p") does not apply to $(basename "$src"):" >&2
            grep -E 'FAILED|failed|can.t find file|malformed|Only garbage|Reversed' "$out/patch.log" | sed 's/^/  /' >&2 || true
            if [ -s "$rej" ]; then
                echo "--- rejected hunks ($rej):" >&2
                cat "$rej" >&2
            else
                sed 's/^/  /' "$out/patch.log" | tail -20 >&2
            fi
            rm -rf "$dir"
            exit 2
        fi
        (cd "$dir" && patch -p1 --batch --forward --no-backup-if-mismatch --quiet -i "$p") >>"$out/patch.log" 2>&1
    done
}
if [ -d "$src" ]; then
    tree=$(realpath "$src")
    [ -f "$tree/Makefile" ] && [ -d "$tree/arch/x86" ] || { echo "build-kernel: $tree is not a kernel source tree" >&2; exit 2; }
    if [ -f "$tree/.config" ]; then
        echo "build-kernel: $tree was configured in tree (.config exists); out-of-tree builds need a clean tree: run 'make mrproper' there, or pass a built bzImage with --kernel" >&2
        exit 2
    fi
    if [ ${#patches[@]} -gt 0 ]; then
        # A patched copy of the tree, remade whenever this script runs (the caller's cache key
        # names tree + patches, and a tree changes under us).
        say "copying $tree to apply ${#patches[@]} patch(es)"
        rm -rf "$out/src.tmp" "$out/src"
        mkdir -p "$out/src.tmp"
        tar -C "$tree" --exclude=.git -cf - . | tar -C "$out/src.tmp" -xf -
        apply_patches "$out/src.tmp"
        mv "$out/src.tmp" "$out/src"
        tree=$out/src
    fi
elif [ -f "$src" ]; then
    tree=$out/src
    if [ ! -f "$tree/Makefile" ]; then
        say "extracting $(basename "$src") ($(du -h "$src" | cut -f1))"
        rm -rf "$out/src.tmp"
        mkdir -p "$out/src.tmp"
        tar -xJf "$src" -C "$out/src.tmp" --strip-components=1
        apply_patches "$out/src.tmp"
        mv "$out/src.tmp" "$tree"
    fi
else
    echo "build-kernel: no kernel source at $src; install Debian's linux-source-6.12 (bookworm-backports): qemu-glue/scripts/host-deps.sh does it, or use gp100emu run --kernel-version N" >&2
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

# --- 4. the UAPI headers, for user-space programs built against this kernel (hmm-tests) ---
make -s -C "$tree" O="$build" headers_install INSTALL_HDR_PATH="$out/headers" >>"$out/build.log" 2>&1 \
    || { echo "build-kernel: make headers_install failed; the end of $out/build.log:" >&2; tail -20 "$out/build.log" >&2; exit 1; }

cp "$bz" "$out/bzImage"
echo "$version" >"$out/version"
touch "$out/done"
say "done"
echo "KERNEL=$out/bzImage"
echo "HEADERS=$out/headers"
