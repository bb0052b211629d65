/* gp100emu suite "mmio-bench": guest MMIO read round trip, gp100emu side by side with QEMU's own
 * in-process "edu" device in the same boot. Prints mmio_read_us{device=...}= lines.
 * gp100emu-qemu-args: -device edu
 * Needs: the gp100emu device and QEMU's edu device (1234:11e8). */
#include <errno.h>
#include <stdlib.h>
#include <time.h>
#include "lib/ktap.h"
#include "lib/gp100.h"

#define READS 10000

int main(void)
{
	static const struct { const char *name; unsigned vendor, device; } devs[] = {
		{ "gp100emu", GP100_VENDOR, GP100_DEVICE },
		{ "qemu-edu", 0x1234, 0x11e8 },
	};
	char dir[300];
	ktap_plan(2);
	for (int round = 0; round < 2; round++) /* two rounds: the first warms caches */
		for (int i = 0; i < 2; i++) {
			if (gp100_find_pci(devs[i].vendor, devs[i].device, dir, sizeof(dir)))
				continue;
			double us = gp100_time_reads(dir, READS);
			ktap_diag("mmio_read_us{device=%s,round=%d}=%.3f (%d reads)", devs[i].name, round, us, READS);
		}
	for (int i = 0; i < 2; i++) {
		char name[64];
		snprintf(name, sizeof(name), "mmio_read_%s", devs[i].name);
		if (gp100_find_pci(devs[i].vendor, devs[i].device, dir, sizeof(dir))) {
			ktap_diag("%04x:%04x not found", devs[i].vendor, devs[i].device);
			ktap_result(0, name);
		} else {
			ktap_result(gp100_time_reads(dir, READS) > 0, name);
		}
	}
	return ktap_exit_code();
}
