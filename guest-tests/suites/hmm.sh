#!/bin/sh
# gp100emu suite "hmm": the kernel's own HMM selftest (tools/testing/selftests/mm/hmm-tests.c)
# against lib/test_hmm.c (CONFIG_TEST_HMM, built in: /dev/hmm_dmirror0..3). It shows the guest's
# HMM works before our device is involved. Needs: hmm-tests in the initramfs (built with the kernel).
# gp100emu-needs: hmm-tests
# Device-coherent cases: test_hmm's devices 2 and 3 take 256 MiB each of "special purpose" memory
# at the physical addresses given; memmap= keeps that range out of the guest's RAM. 1536 MiB of
# guest RAM leaves 1 GiB usable.
# gp100emu-memory-mib: 1536
# gp100emu-append: memmap=512M$0x40000000 test_hmm.spm_addr_dev0=0x40000000 test_hmm.spm_addr_dev1=0x50000000
# A few huge pages for the hugetlbfs cases; without them those cases skip.
echo 4 > /proc/sys/vm/nr_hugepages 2>/dev/null
if [ ! -c /dev/hmm_dmirror0 ]; then
	echo "KTAP version 1"
	echo "1..1"
	echo "# /dev/hmm_dmirror0 is missing: the kernel lacks CONFIG_TEST_HMM=y"
	echo "not ok 1 hmm_device_present"
	exit 1
fi

# Results of the kernel's own tests that are known and explained, by full test name. Each is
# reported with its directive and reason instead of a plain failure (never as a pass); any
# other failure fails the suite. The list applies only where the test exists and fails.
#   SKIP: not a check of HMM, cannot complete under emulation.
#   TODO: a failure of the kernel's own test on this setup, analysed below.
known_result() {
	case "$1" in
	# A benchmark (timings of 8 buffer sizes, THP vs not) added in 6.19/7.x: under TCG it
	# runs past the kselftest harness's default 30 s per-test timeout and is killed, so the
	# harness reports "Test terminated by timeout". Measured on 7.3: 4 of 8 sizes in 30 s.
	hmm.hmm_device_private.benchmark_thp_migration | hmm.hmm_device_coherent.benchmark_thp_migration)
		echo "SKIP benchmark: runs past the kselftest harness's 30 s timeout under TCG" ;;
	# 7.3: migrate_anon_huge_err in the device-coherent variant (devices 2/3, which exist here
	# because the guest gives test_hmm special-purpose memory; upstream CI rarely does):
	# HMM_DMIRROR_MIGRATE_TO_SYS returns -ENOMEM after HMM_DMIRROR_FLAG_FAIL_ALLOC. In
	# lib/test_hmm.c dmirror_devmem_fault_alloc_and_copy(), the forced allocation failure
	# falls back to small pages only when the source folio is large; a failure with order 0
	# returns VM_FAULT_OOM. The device-private variant passes. Why the coherent folio is
	# order 0 there is not established yet (gp100emu issue notes).
	hmm.hmm_device_coherent.migrate_anon_huge_err)
		echo "TODO 7.3 test_hmm: FAIL_ALLOC on a device-coherent THP migrate-back returns ENOMEM" ;;
	esac
}

# Stream hmm-tests' KTAP, adding the directive to known results; exit 1 on any other failure.
bad=/tmp/hmm-unexplained
: >"$bad"
/bin/hmm-tests 2>&1 | while IFS= read -r line; do
	case "$line" in
	"not ok "*)
		name=${line#not ok }
		name=${name#* }
		case "$name" in
		*"#"*) echo "$line" ;;
		*)
			why=$(known_result "$name")
			if [ -n "$why" ]; then
				echo "$line # $why"
			else
				echo "$line"
				echo "$name" >>"$bad"
			fi
			;;
		esac
		;;
	*) echo "$line" ;;
	esac
done
[ -s "$bad" ] && exit 1
exit 0
