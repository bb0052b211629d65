/* Finding and mapping the emulated GP100 from inside the guest. */
#ifndef GP100EMU_GP100_H
#define GP100EMU_GP100_H
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#define GP100_VENDOR 0x10de
#define GP100_DEVICE 0x15f8
/* PMC_BOOT_0 at BAR0+0: architecture 0x13 (GP1xx), implementation 0x0 (GP100), rev a1. */
#define GP100_BOOT0 0x130000a1u
/* gp100emu's vendor test window (emulator/src/regs/window.rs). */
#define WINDOW_BASE 0xff0000u
#define WINDOW_ID 0x000u
#define WINDOW_ID_VALUE 0x4750454du
#define WINDOW_SCRATCH0 0x010u
#define WINDOW_WRITES 0x020u
#define WINDOW_UNDECODED_COUNT 0x030u
#define WINDOW_UNDECODED_INDEX 0x034u
#define WINDOW_UNDECODED_OFFSET 0x038u
#define WINDOW_CHANNELS_ACTIVE 0x040u
#define WINDOW_HOST_GP_ENTRIES 0x044u
#define WINDOW_RUNLISTS_SUBMITTED 0x048u
/* The undecoded offset the smoke suite reads on purpose (an absent unit's PRI error). */
#define SMOKE_UNDECODED_PROBE 0x123450u

static inline unsigned long read_hex_file(const char *path)
{
	char buf[64] = { 0 };
	int fd = open(path, O_RDONLY);
	if (fd < 0)
		return ~0ul;
	ssize_t n = read(fd, buf, sizeof(buf) - 1);
	close(fd);
	if (n <= 0)
		return ~0ul;
	return strtoul(buf, NULL, 16);
}

/* The sysfs directory of the first PCI function with this vendor and device id; 0 if found. */
static inline int gp100_find_pci(unsigned vendor, unsigned device, char *dir, size_t len)
{
	DIR *d = opendir("/sys/bus/pci/devices");
	struct dirent *e;
	char path[512];
	if (!d)
		return -1;
	while ((e = readdir(d))) {
		if (e->d_name[0] == '.')
			continue;
		snprintf(path, sizeof(path), "/sys/bus/pci/devices/%s/vendor", e->d_name);
		if (read_hex_file(path) != vendor)
			continue;
		snprintf(path, sizeof(path), "/sys/bus/pci/devices/%s/device", e->d_name);
		if (read_hex_file(path) != device)
			continue;
		snprintf(dir, len, "/sys/bus/pci/devices/%s", e->d_name);
		closedir(d);
		return 0;
	}
	closedir(d);
	return -1;
}

/* Writes the sysfs directory of the first 10de:15f8 function into dir; 0 on success. */
static inline int gp100_find(char *dir, size_t len)
{
	return gp100_find_pci(GP100_VENDOR, GP100_DEVICE, dir, len);
}

/* Maps one page of BAR `bar` at byte offset `off` (page aligned); NULL on failure. */
static inline volatile uint32_t *gp100_map(const char *dir, int bar, unsigned long off)
{
	char path[600];
	snprintf(path, sizeof(path), "%s/resource%d", dir, bar);
	int fd = open(path, O_RDWR | O_SYNC);
	if (fd < 0)
		return NULL;
	void *p = mmap(NULL, 4096, PROT_READ | PROT_WRITE, MAP_SHARED, fd, off);
	close(fd);
	return p == MAP_FAILED ? NULL : (volatile uint32_t *)p;
}

/* Microseconds per 32-bit read of the first word of BAR0 of the function at `dir`, averaged
 * over `reads` reads, or -1. */
static inline double gp100_time_reads(const char *dir, int reads)
{
	volatile uint32_t *p = gp100_map(dir, 0, 0);
	struct timespec a, b;
	uint32_t v = 0;
	if (!p)
		return -1;
	clock_gettime(CLOCK_MONOTONIC, &a);
	for (int i = 0; i < reads; i++)
		v ^= p[0];
	clock_gettime(CLOCK_MONOTONIC, &b);
	(void)v;
	munmap((void *)p, 4096);
	return ((b.tv_sec - a.tv_sec) * 1e9 + (b.tv_nsec - a.tv_nsec)) / 1e3 / reads;
}

/* The PTE checker's registers in the window (emulator/src/window/mod.rs). */
#define CHK_CHID 0x200u
#define CHK_ROOT_LO 0x204u
#define CHK_ROOT_HI 0x208u
#define CHK_FLAGS 0x20cu
#define CHK_EXCL_LO 0x210u
#define CHK_EXCL_HI 0x214u
#define CHK_EXCL_SIZE_LO 0x218u
#define CHK_EXCL_SIZE_HI 0x21cu
#define CHK_CTRL 0x220u
#define CHK_VIOLATIONS 0x224u
#define CHK_CHECKED 0x228u
#define CHK_SCANS 0x22cu
#define CHK_LAST_VA_LO 0x230u
#define CHK_LAST_VA_HI 0x234u
#define CHK_LAST_GPU_PTE_LO 0x238u
#define CHK_LAST_GPU_PTE_HI 0x23cu
#define CHK_LAST_CPU_PTE_LO 0x240u
#define CHK_LAST_CPU_PTE_HI 0x244u
#define CHK_LAST_REASON 0x248u
#define CHK_LAST_INST 0x24cu
#define CHK_INJECT 0x250u
#define CHK_ERROR 0x254u
#define CHK_SWAP_MIGRATION_READ 0x258u
#define CHK_HAZARDS 0x25cu
#define CHK_FULL_EVERY 0x2f0u
#define CHK_FULL_SCANS 0x2f4u
#define CHK_CPU_INVALIDATES 0x2f8u
#define CHK_LEAVES_REUSED 0x2fcu
#define CHK_BY_REASON 0x260u
#define CHK_MAPPED_2M 0x308u   /* valid 2 MiB PTEs the scans saw appear or change */
#define CHK_MAPPED_VRAM 0x318u /* of the mapped, PTEs of video memory */
#define CHK_PID 0x2a0u
#define CHK_LAST_CHID 0x2a4u
#define CHK_LAST_PID 0x2a8u
#define CHK_SPACE_SEL 0x2b4u
#define CHK_SPACE_STATE 0x2b8u
#define CHK_SPACE_VIOLATIONS 0x2bcu
#define CHK_SPACE_STALE 0x2c0u
#define CHK_SPACE_PID 0x2c4u
#define CHK_STALE 0x2c8u
#define CHK_CLEARED_2M 0x314u /* 2 MiB PTEs the checker's scans saw disappear */
/* CHK_SPACE_STATE bits 1:0 */
enum { CHK_SPACE_NONE = 0, CHK_SPACE_LIVE = 1, CHK_SPACE_EXITED = 2, CHK_SPACE_GONE = 3 };
#define CHK_REASONS 10
/* Reason codes 1..9, as the checker numbers them (emulator/src/check/mod.rs, Reason). */
static inline const char *chk_reason_name(uint32_t r)
{
	static const char *const names[CHK_REASONS] = {
		"?", "cpu does not map it", "different physical page", "gpu writable, cpu read-only",
		"gpu vram, cpu system page", "peer aperture", "cpu tables unreadable",
		"cpu page device-private, gpu system page", "use in an unregistered address space",
		"gpu mapping still valid after its process exited",
	};
	return names[r < CHK_REASONS ? r : 0];
}

/* What gp100emu_pgd reports for the calling process. */
/* The kernel command line (/proc/cmdline) into buf, NUL-terminated; empty if unreadable.
 * Returns its length. */
static inline size_t gp100_cmdline(char *buf, size_t len)
{
	buf[0] = 0;
	int fd = open("/proc/cmdline", O_RDONLY);
	if (fd < 0)
		return 0;
	ssize_t n = read(fd, buf, len - 1);
	close(fd);
	buf[n > 0 ? n : 0] = 0;
	return n > 0 ? (size_t)n : 0;
}

struct gp100_pgd {
	unsigned long long root;
	int la57, swp_migration_read, watched, ranges;
};

/* Loads the test-only module (once per boot) and reads the calling process's page-table root.
 * The read also makes the module watch this process's exit, so call it BEFORE
 * DRM_NOUVEAU_SVM_INIT: the module's notifier then runs after nouveau's when the mm is torn
 * down (see guest-tests/kernel/gp100emu_pgd.c); `watched` is then 1 (0: the module could not
 * watch, 2: refused, the mm had an mmu_notifier already); `ranges` 1 if the module also reports
 * this mm's CPU invalidates (the checker then scans by change). Returns 0 on success; `why` says
 * what failed. */
static inline int gp100_pgd_read(struct gp100_pgd *p, char *why, size_t len)
{
	/* The module's parameters from the kernel command line (gp100emu_pgd.NAME=VALUE), as
	 * modprobe would pass them. */
	char cmdline[4096], params[1024] = "";
	gp100_cmdline(cmdline, sizeof(cmdline));
	for (char *save = NULL, *t = strtok_r(cmdline, " \n", &save); t; t = strtok_r(NULL, " \n", &save)) {
		if (strncmp(t, "gp100emu_pgd.", 13) == 0 && strlen(params) + strlen(t) + 2 < sizeof(params)) {
			strcat(params, t + 13);
			strcat(params, " ");
		}
	}
	int fd = open("/lib/modules/gp100emu_pgd.ko", O_RDONLY);
	if (fd < 0 || syscall(SYS_finit_module, fd, params, 0) != 0) {
		if (errno != EEXIST) {
			snprintf(why, len, "loading gp100emu_pgd.ko: %s", strerror(errno));
			if (fd >= 0)
				close(fd);
			return -1;
		}
	}
	if (fd >= 0)
		close(fd);
	FILE *f = fopen("/sys/kernel/debug/gp100emu_pgd", "r");
	memset(p, 0, sizeof(*p));
	p->swp_migration_read = -1;
	int n = f ? fscanf(f, "pgd %llx la57 %d swp_migration_read %d watched %d ranges %d", &p->root,
			   &p->la57, &p->swp_migration_read, &p->watched, &p->ranges)
		  : -1;
	if (f)
		fclose(f);
	if (n != 5) {
		snprintf(why, len, "reading /sys/kernel/debug/gp100emu_pgd: %d fields", n);
		return -1;
	}
	return 0;
}

/* Registers the address space of channel `chid` with the PTE checker for the calling process
 * (`p` from gp100_pgd_read), with nouveau's unmanaged window [excl, excl + excl_size). The
 * registration is a sequence of window writes, so processes serialise it with a lock file.
 * Returns CHK_ERROR (0: armed). */
static inline uint32_t gp100_checker_arm(volatile uint32_t *win, int chid, const struct gp100_pgd *p,
					 uint64_t excl, uint64_t excl_size)
{
	int lk = open("/tmp/gp100emu-checker.lock", O_RDWR | O_CREAT, 0600);
	if (lk >= 0)
		flock(lk, LOCK_EX);
	win[CHK_SWAP_MIGRATION_READ / 4] = (uint32_t)p->swp_migration_read;
	win[CHK_CHID / 4] = (uint32_t)chid;
	win[CHK_ROOT_LO / 4] = (uint32_t)p->root;
	win[CHK_ROOT_HI / 4] = (uint32_t)(p->root >> 32);
	win[CHK_FLAGS / 4] = (uint32_t)p->la57;
	win[CHK_EXCL_LO / 4] = (uint32_t)excl;
	win[CHK_EXCL_HI / 4] = (uint32_t)(excl >> 32);
	win[CHK_EXCL_SIZE_LO / 4] = (uint32_t)excl_size;
	win[CHK_EXCL_SIZE_HI / 4] = (uint32_t)(excl_size >> 32);
	win[CHK_PID / 4] = (uint32_t)getpid();
	win[CHK_CTRL / 4] = 1;
	uint32_t err = win[CHK_ERROR / 4];
	if (lk >= 0) {
		flock(lk, LOCK_UN);
		close(lk);
	}
	return err;
}

/* Selects the space channel `chid` was registered with; then read CHK_SPACE_*. */
static inline uint32_t gp100_checker_space(volatile uint32_t *win, int chid, uint32_t reg)
{
	win[CHK_SPACE_SEL / 4] = (uint32_t)chid;
	return win[reg / 4];
}
/* CRC-32 (IEEE, reflected, as zlib), what the access engine reports in AE_RESULT/AB_RESULT for a
 * read longer than 8 bytes: a guest compares it with the CRC of what it expects there. */
static inline uint32_t gp100_crc32(const void *p, size_t n)
{
	const uint8_t *b = p;
	uint32_t c = ~0u;
	for (size_t i = 0; i < n; i++) {
		c ^= b[i];
		for (int k = 0; k < 8; k++)
			c = (c >> 1) ^ (0xedb88320u & -(c & 1));
	}
	return ~c;
}

#endif
