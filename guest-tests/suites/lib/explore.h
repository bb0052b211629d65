/* Helpers for driving the access engine's batch and the PTE checker from a suite (explore.c).
 * Register offsets are the vendor window's (emulator/src/regs/window.rs). */
#ifndef GP100EMU_EXPLORE_H
#define GP100EMU_EXPLORE_H
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>
#include "gp100.h"
#include "ktap.h"
#include "nouveau.h"

/* The single-operation engine (as svm.c uses it). */
#define XE_AE_CHID 0x100u
#define XE_AE_VA_LO 0x104u
#define XE_AE_VA_HI 0x108u
#define XE_AE_LEN 0x10cu
#define XE_AE_DATA_LO 0x110u
#define XE_AE_OP 0x118u
#define XE_AE_STATUS 0x11cu
/* The batch (access/batch.rs). */
#define AB_INDEX 0x140u
#define AB_CHID 0x144u
#define AB_VA_LO 0x148u
#define AB_VA_HI 0x14cu
#define AB_LEN 0x150u
#define AB_DATA_LO 0x154u
#define AB_DATA_HI 0x158u
#define AB_OP 0x15cu
#define AB_GPC 0x160u
#define AB_STATUS 0x164u
#define AB_FAULTS 0x168u
#define AB_REPLAYS 0x16cu
#define AB_RESULT 0x170u
#define AB_COUNT 0x174u
#define AB_CTRL 0x178u
#define AB_DONE 0x17cu
#define AB_ERRORS 0x180u
#define AB_FAULTS_TOTAL 0x184u
#define AB_DROPPED 0x188u
#define AB_BUFFER_INFO 0x18cu
#define AB_PROGRESS 0x190u
#define AB_SLOTS 64
#define AB_GPCS 6
/* The checker. */
#define XC_CHID 0x200u
#define XC_ROOT_LO 0x204u
#define XC_ROOT_HI 0x208u
#define XC_FLAGS 0x20cu
#define XC_EXCL_LO 0x210u
#define XC_EXCL_HI 0x214u
#define XC_EXCL_SIZE_LO 0x218u
#define XC_EXCL_SIZE_HI 0x21cu
#define XC_CTRL 0x220u
#define XC_VIOLATIONS 0x224u
#define XC_CHECKED 0x228u
#define XC_SCANS 0x22cu
#define XC_LAST_VA_LO 0x230u
#define XC_LAST_REASON 0x248u
#define XC_INJECT 0x250u
#define XC_ERROR 0x254u
#define XC_SWAP_MIGRATION_READ 0x258u
#define XC_HAZARDS 0x25cu
#define XC_FULL_SCANS 0x2f4u
#define XC_CPU_INVALIDATES 0x2f8u
#define XC_LEAVES_REUSED 0x2fcu
#define XC_MAPPED 0x300u /* 4 KiB, 64 KiB, 2 MiB */
#define XC_CLEARED 0x30cu
#define XC_MAPPED_VRAM 0x318u
#define XC_NEW_VIOLATIONS 0x320u  /* of XC_VIOLATIONS, pages first found wrong */
#define XC_LAST_NEW_VA_LO 0x324u
#define XC_PARTIAL_2M 0x330u     /* 2 MiB GPU PTEs a CPU invalidate covered in part */
#define XC_LAST_NEW_HOW 0x32cu    /* 7:0 reason, 9:8 where (0 flush, 1 GPU use, 2 CPU invalidate), 23:16 page shift */
#define XC_BY_REASON 0x260u
enum { XOP_READ = 1, XOP_WRITE = 2, XOP_ATOMIC = 3 };
enum { XST_IDLE = 0, XST_DONE = 1, XST_PENDING = 2, XST_ERROR = 3 };

static volatile uint32_t *xwin;
static inline uint32_t xrd(uint32_t reg) { return xwin[reg / 4]; }
static inline void xwr(uint32_t reg, uint32_t v) { xwin[reg / 4] = v; }

static inline double xnow(void)
{
	struct timespec t;
	clock_gettime(CLOCK_MONOTONIC, &t);
	return t.tv_sec + t.tv_nsec / 1e9;
}

/* Maps the vendor window; 0 on success. */
static inline int xwin_map(void)
{
	char dir[300];
	if (gp100_find(dir, sizeof(dir)) == 0)
		xwin = gp100_map(dir, 0, WINDOW_BASE);
	return xwin ? 0 : -1;
}

/* One batch slot. */
struct xslot {
	int chid, op, gpc;
	uint64_t va;
	uint32_t len;
	uint64_t data;
};

/* Programs slots[0..n) and issues them together. */
static inline void xbatch_issue(const struct xslot *s, int n)
{
	xwr(AB_CTRL, 2);
	for (int i = 0; i < n; i++) {
		xwr(AB_INDEX, (uint32_t)i);
		xwr(AB_CHID, (uint32_t)s[i].chid);
		xwr(AB_VA_LO, (uint32_t)s[i].va);
		xwr(AB_VA_HI, (uint32_t)(s[i].va >> 32));
		xwr(AB_LEN, s[i].len);
		xwr(AB_DATA_LO, (uint32_t)s[i].data);
		xwr(AB_DATA_HI, (uint32_t)(s[i].data >> 32));
		xwr(AB_OP, (uint32_t)s[i].op);
		xwr(AB_GPC, (uint32_t)s[i].gpc);
	}
	xwr(AB_COUNT, (uint32_t)n);
	xwr(AB_CTRL, 1);
}

/* Waits until at least `want` slots completed, or none waits any more, or `secs` pass;
 * returns the slots completed. */
static inline uint32_t xbatch_wait_done(uint32_t want, double secs)
{
	double end = xnow() + secs;
	uint32_t d;
	while ((d = xrd(AB_DONE)) < want && xrd(AB_CTRL) > 0 && xnow() < end)
		usleep(500);
	/* Read again: the last slots may have completed between the DONE and CTRL reads (the
	 * fault work runs whenever this process is preempted), and DONE then counts them. */
	return xrd(AB_DONE);
}

struct xslot_result {
	int status;
	int fault_type; /* the slot's last fault: NV_PFAULT_FAULT_TYPE_* (AB_STATUS bits 12:8) */
	uint32_t faults, replays, crc, progress;
	uint64_t data;
};

/* NV_PFAULT_FAULT_TYPE_* as words (gp100 dev_fault.h), for finding lines. */
static inline const char *xfault_type_word(int t)
{
	static const char *const w[] = {
		"pde", "pde-size", "pte", "va-limit", "unbound-inst-block", "priv", "read-only",
		"write-only", "pitch-mask", "work-creation", "unsupported-aperture",
		"compression-failure", "unsupported-kind", "region", "poisoned", "atomic",
	};
	return t >= 0 && t < 16 ? w[t] : "unknown";
}

static inline struct xslot_result xbatch_slot(int i)
{
	struct xslot_result r;
	xwr(AB_INDEX, (uint32_t)i);
	uint32_t st = xrd(AB_STATUS);
	r.status = (int)(st & 3);
	r.fault_type = (int)((st >> 8) & 0x1f);
	r.faults = xrd(AB_FAULTS);
	r.replays = xrd(AB_REPLAYS);
	r.crc = xrd(AB_RESULT);
	r.progress = xrd(AB_PROGRESS);
	r.data = xrd(AB_DATA_LO) | (uint64_t)xrd(AB_DATA_HI) << 32;
	return r;
}

/* Opens a render node and makes it an SVM client with a channel; returns the fd (channel id
 * in *chid) or -1 with why in the diagnostics. */
static inline int xsvm_open(void *unmanaged, uint64_t unmanaged_size, int *chid)
{
	int fd = open("/dev/dri/renderD128", O_RDWR);
	if (fd < 0) {
		ktap_diag("open renderD128: %s", strerror(errno));
		return -1;
	}
	struct nv_svm_init init = { (uintptr_t)unmanaged, unmanaged_size };
	if (ioctl(fd, NV_IOCTL_SVM_INIT, &init)) {
		ktap_diag("SVM_INIT: %s", strerror(errno));
		close(fd);
		return -1;
	}
	struct nv_channel_alloc ca = { .fb_ctxdma_handle = ~0u, .tt_ctxdma_handle = NV_FIFO_ENGINE_CE };
	if (ioctl(fd, NV_IOCTL_CHANNEL_ALLOC, &ca)) {
		ktap_diag("CHANNEL_ALLOC: %s", strerror(errno));
		close(fd);
		return -1;
	}
	*chid = ca.channel;
	return fd;
}

static inline int xchannel_alloc(int fd)
{
	struct nv_channel_alloc ca = { .fb_ctxdma_handle = ~0u, .tt_ctxdma_handle = NV_FIFO_ENGINE_CE };
	return ioctl(fd, NV_IOCTL_CHANNEL_ALLOC, &ca) ? -1 : ca.channel;
}

static inline int xchannel_free(int fd, int chid)
{
	struct nv_channel_free cf = { chid };
	return ioctl(fd, NV_IOCTL_CHANNEL_FREE, &cf);
}

static inline int xsvm_bind_vram(int fd, const void *p, size_t len)
{
	struct nv_svm_bind b = {
		.header = NV_SVM_BIND_MIGRATE_TO_VRAM,
		.va_start = (uintptr_t)p,
		.va_end = (uintptr_t)p + len,
	};
	return ioctl(fd, NV_IOCTL_SVM_BIND, &b) ? -errno : 0;
}

/* Reads this process's page-table root from gp100emu_pgd (lib/gp100.h), which also has the
 * module watch this process's exit: call it BEFORE SVM_INIT. 0 on success. */
static inline int xpgd(struct gp100_pgd *p)
{
	char why[160];
	if (gp100_pgd_read(p, why, sizeof(why)) || p->swp_migration_read < 0) {
		ktap_diag("gp100emu_pgd: %s", p->swp_migration_read < 0 ? "no migration swap types" : why);
		return -1;
	}
	return 0;
}

/* Registers channel `chid`'s space with the PTE checker for this process (lib/gp100.h's
 * gp100_checker_arm, with the unmanaged window left out). Returns 1 if armed. */
static inline int xarm(int chid, const struct gp100_pgd *p, const void *excl, uint64_t excl_size)
{
	return gp100_checker_arm(xwin, chid, p, (uintptr_t)excl, excl_size) == 0 && xrd(XC_CTRL) == 1;
}
#endif
