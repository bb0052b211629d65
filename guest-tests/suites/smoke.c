/* gp100emu suite "smoke": the chain host -> QEMU vfio-user-pci -> gp100emu works.
 * Needs: the gp100emu device on the guest's PCI bus.
 *
 * 1. a PCI function 10de:15f8 exists;
 * 2. BAR0+0 (PMC_BOOT_0) reads 0x130000a1;
 * 3. nouveau identified it: the kernel log has "NVIDIA GP100 (130000a1)";
 * 4. the vendor window's ID reads back, and a write to SCRATCH0 is seen by the device (its WRITES
 *    counter moves by one) and reads back;
 * 5. an offset no unit decodes answers with a PRI error value (0xbadf1xxx), not a hang. */
#include <errno.h>
#include <stdlib.h>
#include "lib/ktap.h"
#include "lib/gp100.h"

static int kmsg_contains(const char *needle)
{
	char rec[2048];
	int fd = open("/dev/kmsg", O_RDONLY | O_NONBLOCK);
	int found = 0;
	if (fd < 0)
		return -1;
	for (int i = 0; i < 100000; i++) { /* bounded: the ring holds far fewer records */
		ssize_t n = read(fd, rec, sizeof(rec) - 1);
		if (n < 0 && errno == EPIPE)
			continue; /* a record was overwritten while we read; go on */
		if (n <= 0)
			break;
		rec[n] = 0;
		if (strstr(rec, needle)) {
			found = 1;
			break;
		}
	}
	close(fd);
	return found;
}

int main(void)
{
	char dir[300];
	ktap_plan(5);

	int present = gp100_find(dir, sizeof(dir)) == 0;
	if (present)
		ktap_diag("GP100 at %s", dir);
	ktap_result(present, "pci_function_10de_15f8");

	volatile uint32_t *bar0 = present ? gp100_map(dir, 0, 0) : NULL;
	if (present && !bar0)
		ktap_diag("mmap of %s/resource0 failed: %s", dir, strerror(errno));
	uint32_t boot0 = bar0 ? bar0[0] : 0;
	if (bar0)
		ktap_diag("PMC_BOOT_0 = 0x%08x", boot0);
	ktap_result(boot0 == GP100_BOOT0, "bar0_boot0_is_130000a1");

	int named = kmsg_contains("NVIDIA GP100 (130000a1)");
	if (named < 0)
		ktap_diag("/dev/kmsg: %s", strerror(errno));
	ktap_result(named == 1, "nouveau_identified_gp100");

	volatile uint32_t *win = present ? gp100_map(dir, 0, WINDOW_BASE) : NULL;
	if (win) {
		uint32_t id = win[WINDOW_ID / 4];
		uint32_t before = win[WINDOW_WRITES / 4];
		uint32_t pattern = 0x5a5a0000u ^ before;
		win[WINDOW_SCRATCH0 / 4] = pattern;
		uint32_t back = win[WINDOW_SCRATCH0 / 4];
		uint32_t after = win[WINDOW_WRITES / 4];
		ktap_diag("window id 0x%08x, scratch0 wrote 0x%08x read 0x%08x, device writes %u -> %u",
			  id, pattern, back, before, after);
		ktap_result(id == WINDOW_ID_VALUE && back == pattern && after == before + 1,
			    "window_write_seen_by_device");
	} else {
		ktap_result(0, "window_write_seen_by_device");
	}

	if (bar0) {
		/* 0x123450 lies in no unit gp100emu models; the GPU answers such reads with a
		 * PRI error value of the 0xbadf1xxx family (see emulator/src/regs/mod.rs). */
		volatile uint32_t *hole = gp100_map(dir, 0, 0x123000);
		uint32_t v = hole ? hole[0x450 / 4] : 0;
		ktap_diag("BAR0+0x123450 = 0x%08x", v);
		ktap_result((v & 0xfffff000u) == 0xbadf1000u, "undecoded_offset_gives_pri_error");
	} else {
		ktap_result(0, "undecoded_offset_gives_pri_error");
	}
	return ktap_exit_code();
}
