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
exec /bin/hmm-tests
