#!/bin/bash
# Build the kernel's own HMM selftest (hmm-tests) statically, the way the kernel's selftests
# Makefile builds it, for the `hmm` suite.
#
# Usage: build-hmm-tests.sh --tree SRC --headers DIR --out DIR
#
#   --tree     the kernel source tree the guest kernel was built from
#   --headers  that kernel's installed UAPI headers (make headers_install; build-kernel.sh does it)
#   --out      where the binary goes; prints HMM_TESTS=<path> last
#
# The test lives in tools/testing/selftests/mm/ (6.3 and later) or tools/testing/selftests/vm/
# (before 6.3). Newer versions link helpers of the same directory (vm_util.c, hugepage and THP
# settings...); the directory's own Makefile knows which, so it is used as is, with the output
# directory, the headers and -static given on the command line. The Makefile writes
# local_config.{mk,h_gen} into that source directory, as `make -C tools/testing/selftests` does.
#
# Exit 3 with a line REASON=<why> on stdout when this kernel's hmm-tests cannot be built: the
# caller skips only the hmm suite, giving that reason. Other failures exit 1 or 2.
set -euo pipefail
tree= headers= out=
while [ $# -gt 0 ]; do
    case "$1" in
        --tree) tree=$2; shift 2 ;;
        --headers) headers=$2; shift 2 ;;
        --out) out=$2; shift 2 ;;
        -h|--help) sed -n '2,18p' "$0"; exit 0 ;;
        *) echo "build-hmm-tests: unknown argument $1" >&2; exit 2 ;;
    esac
done
[ -f "$tree/Makefile" ] && [ -d "$headers/include" ] && [ -n "$out" ] \
    || { echo "build-hmm-tests: need --tree SRC --headers DIR (with include/) --out DIR" >&2; exit 2; }
command -v make >/dev/null && command -v gcc >/dev/null \
    || { echo "build-hmm-tests: make and gcc are needed; run qemu-glue/scripts/host-deps.sh" >&2; exit 2; }

dir=
for d in mm vm; do
    if [ -f "$tree/tools/testing/selftests/$d/hmm-tests.c" ]; then
        dir=$tree/tools/testing/selftests/$d
        break
    fi
done
if [ -z "$dir" ]; then
    echo "REASON=this kernel has no tools/testing/selftests/mm/hmm-tests.c (nor vm/)"
    exit 3
fi
mkdir -p "$out/obj"
out=$(realpath "$out")
headers=$(realpath "$headers")
echo "[hmm-tests] building $dir/hmm-tests.c statically with its Makefile" >&2
if ! make -C "$dir" OUTPUT="$out/obj" KHDR_INCLUDES="-isystem $headers/include" \
        LDFLAGS=-static "$out/obj/hmm-tests" >"$out/build.log" 2>&1; then
    why=$(grep -m1 -E 'error:|undefined reference|No rule to make target' "$out/build.log" || tail -n1 "$out/build.log")
    echo "[hmm-tests] the build failed; the end of $out/build.log:" >&2
    tail -n 15 "$out/build.log" >&2
    echo "REASON=hmm-tests does not build against this kernel: ${why//$'\n'/ }"
    exit 3
fi
if ldd "$out/obj/hmm-tests" >/dev/null 2>&1; then
    echo "REASON=the selftests Makefile built a dynamically linked hmm-tests (the initramfs has no libc)"
    exit 3
fi
cp "$out/obj/hmm-tests" "$out/hmm-tests"
echo "HMM_TESTS=$out/hmm-tests"
