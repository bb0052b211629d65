/* Finding and mapping the emulated GP100 from inside the guest. */
#ifndef GP100EMU_GP100_H
#define GP100EMU_GP100_H
#include <dirent.h>
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
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

/* Writes the sysfs directory of the first 10de:15f8 function into dir; 0 on success. */
static inline int gp100_find(char *dir, size_t len)
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
		if (read_hex_file(path) != GP100_VENDOR)
			continue;
		snprintf(path, sizeof(path), "/sys/bus/pci/devices/%s/device", e->d_name);
		if (read_hex_file(path) != GP100_DEVICE)
			continue;
		snprintf(dir, len, "/sys/bus/pci/devices/%s", e->d_name);
		closedir(d);
		return 0;
	}
	closedir(d);
	return -1;
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
#endif
