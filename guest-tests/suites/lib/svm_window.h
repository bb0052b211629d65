/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The unmanaged window a suite hands to DRM_NOUVEAU_SVM_INIT: a PROT_NONE reservation that
 * nouveau fills with the client's own buffers (every channel's GPFIFO, pushbuffer and fence
 * semaphores: the SVM VMM is MANAGED, so the kernel allocates only there).
 *
 * It must lie below 1 TiB. The host (PBDMA) reads GPFIFO, pushbuffer and semaphore addresses
 * with 40 bits (NV_PPBDMA_GP_BASE_HI.OFFSET, GP_ENTRY1.GET_HI and SEMAPHOREA hold VA bits
 * 39:32; NVIDIA's pbdma hwref), so with a window where a plain mmap() lands (0x7f...) a channel
 * can never run: its idle fence never signals and closing it logs "failed to idle channel".
 * Stock nouveau accepts such a window without a word; the svm suite's
 * svm_init_refuses_unreachable_window case and guest-tests/kernel/patches/0002-* say more.
 */
#ifndef GP100EMU_SVM_WINDOW_H
#define GP100EMU_SVM_WINDOW_H

#include <stdint.h>
#include <sys/mman.h>

#ifndef MAP_FIXED_NOREPLACE
#define MAP_FIXED_NOREPLACE 0x100000
#endif

/* The host's reach: GPU virtual addresses below this are fetchable by the PBDMA. */
#define GP100_HOST_VA_LIMIT (1ull << 40)

/* Reserves `size` bytes (a multiple of 2 MiB) of PROT_NONE address space below 1 TiB, at the
 * first free 2 MiB-aligned slot from 64 GiB up (each caller gets its own). Returns NULL when
 * none is free. */
static inline void *svm_unmanaged_window(uint64_t size)
{
	for (uint64_t at = 64ull << 30; at + size <= GP100_HOST_VA_LIMIT; at += 1ull << 30) {
		void *p = mmap((void *)(uintptr_t)at, size, PROT_NONE,
			       MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE | MAP_FIXED_NOREPLACE, -1, 0);
		if (p == (void *)(uintptr_t)at)
			return p;
		if (p != MAP_FAILED)
			munmap(p, size); /* an old kernel took the hint elsewhere */
	}
	return NULL;
}

#endif
