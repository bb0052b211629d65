#!/bin/bash
# Build gp100emu's test-only kernel module gp100emu_pgd against a built guest kernel.
#
# Usage: build-module.sh --tree SRC --build BUILD --source FILE.c --out DIR
#
#   --tree    the kernel source tree the guest kernel was built from
#   --build   its out-of-tree build directory (O=)
#   --source  the module's C file (guest-tests/kernel/gp100emu_pgd.c)
#   --out     where the module is built; prints MODULE=<path of the .ko> last
#
# The first time, the kernel build gets `modules_prepare` and `modules` (a few seconds:
# the guest kernel has no modules of its own, this only makes Module.symvers).
set -euo pipefail
tree= build= source= out=
while [ $# -gt 0 ]; do
    case "$1" in
        --tree) tree=$2; shift 2 ;;
        --build) build=$2; shift 2 ;;
        --source) source=$2; shift 2 ;;
        --out) out=$2; shift 2 ;;
        -h|--help) sed -n '2,12p' "$0"; exit 0 ;;
        *) echo "build-module: unknown argument $1" >&2; exit 2 ;;
    esac
done
[ -f "$tree/Makefile" ] && [ -f "$build/.config" ] && [ -f "$source" ] && [ -n "$out" ] \
    || { echo "build-module: need --tree SRC --build BUILD (a built kernel) --source FILE.c --out DIR" >&2; exit 2; }
grep -q '^CONFIG_MODULES=y' "$build/.config" \
    || { echo "build-module: the kernel in $build was built without CONFIG_MODULES" >&2; exit 2; }
if [ ! -f "$build/Module.symvers" ]; then
    echo "[module] preparing $build for external modules (modules_prepare, Module.symvers)" >&2
    make -s -C "$tree" O="$build" -j"$(nproc)" modules_prepare >&2
    make -s -C "$tree" O="$build" -j"$(nproc)" modules >&2
fi
mkdir -p "$out"
out=$(realpath "$out")
name=$(basename "$source" .c)
cp "$source" "$out/$name.c"
echo "obj-m := $name.o" >"$out/Kbuild"
make -s -C "$tree" O="$build" M="$out" modules >&2
echo "MODULE=$out/$name.ko"
