/* gp100emu suite "svm": shared virtual memory between a process and the emulated GP100 through
 * stock nouveau (issue 7).
 *
 * 1. svm_init: DRM_NOUVEAU_SVM_INIT on the render node, with a PROT_NONE reservation as the
 *    window nouveau keeps for its own buffers.
 * 2. migrate_to_vram: DRM_NOUVEAU_SVM_BIND moves written anonymous pages to VRAM: the CPU's
 *    entries become device-private (not present, swap-type, in /proc/self/pagemap) and the
 *    host ran copy-engine work (the device counts GPFIFO entries).
 * 3. cpu_touch_migrates_back: reading them on the CPU brings them back with their contents.
 * 4. untouched_pages_migrate_as_zeros: never-written pages migrate through the copy engine's
 *    clear and read back as zeros. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include "lib/ktap.h"
#include "lib/gp100.h"
#include "lib/nouveau.h"

#define PAGE 4096ul
#define NPAGES 16

static volatile uint32_t *win;

static uint32_t host_gp_entries(void)
{
	return win ? win[WINDOW_HOST_GP_ENTRIES / 4] : 0;
}

/* Bits of /proc/self/pagemap for the page at va: 63 present, 62 swapped (device-private and
 * migration entries are swap-type). */
static uint64_t pagemap(int fd, const void *va)
{
	uint64_t e = 0;
	if (pread(fd, &e, sizeof(e), ((uintptr_t)va / PAGE) * 8) != sizeof(e))
		return 0;
	return e;
}

static int all_device_private(int pm, const char *buf, int n)
{
	for (int i = 0; i < n; i++) {
		uint64_t e = pagemap(pm, buf + i * PAGE);
		if ((e >> 63) & 1 || !((e >> 62) & 1)) {
			ktap_diag("page %d: pagemap %016llx (present %d, swapped %d)", i,
				  (unsigned long long)e, (int)(e >> 63), (int)((e >> 62) & 1));
			return 0;
		}
	}
	return 1;
}

static int bind_vram(int fd, void *buf, size_t len)
{
	struct nv_svm_bind b = {
		.header = NV_SVM_BIND_MIGRATE_TO_VRAM,
		.va_start = (uintptr_t)buf,
		.va_end = (uintptr_t)buf + len,
	};
	return ioctl(fd, NV_IOCTL_SVM_BIND, &b);
}

int main(void)
{
	char dir[300];
	ktap_plan(4);
	if (gp100_find(dir, sizeof(dir)) == 0)
		win = gp100_map(dir, 0, WINDOW_BASE);

	int fd = open("/dev/dri/renderD128", O_RDWR);
	int pm = open("/proc/self/pagemap", O_RDONLY);
	/* nouveau's own window: 64 MiB the CPU never uses. */
	void *unmanaged = mmap(NULL, 64 << 20, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
	struct nv_svm_init init = { (uintptr_t)unmanaged, 64 << 20 };
	int rc = fd >= 0 && unmanaged != MAP_FAILED ? ioctl(fd, NV_IOCTL_SVM_INIT, &init) : -1;
	if (rc)
		ktap_diag("open/SVM_INIT: %s", strerror(errno));
	ktap_result(rc == 0, "svm_init");

	char *buf = mmap(NULL, NPAGES * PAGE, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	for (size_t i = 0; i < NPAGES * PAGE; i++)
		buf[i] = (char)(i * 13 + 7);
	uint32_t before = host_gp_entries();
	rc = rc == 0 ? bind_vram(fd, buf, NPAGES * PAGE) : -1;
	uint32_t after = host_gp_entries();
	ktap_diag("SVM_BIND rc %d; host ran %u GPFIFO entries", rc, after - before);
	ktap_result(rc == 0 && all_device_private(pm, buf, NPAGES) && after > before, "migrate_to_vram");

	int same = 1;
	for (size_t i = 0; i < NPAGES * PAGE; i++) {
		if (buf[i] != (char)(i * 13 + 7)) {
			ktap_diag("byte %zu: 0x%02x, expected 0x%02x", i, buf[i] & 0xff, (i * 13 + 7) & 0xff);
			same = 0;
			break;
		}
	}
	uint64_t e = pagemap(pm, buf);
	ktap_result(rc == 0 && same && ((e >> 63) & 1), "cpu_touch_migrates_back");

	char *fresh = mmap(NULL, NPAGES * PAGE, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	rc = bind_vram(fd, fresh, NPAGES * PAGE);
	int zeros = 1;
	for (size_t i = 0; i < NPAGES * PAGE && zeros; i++)
		zeros = fresh[i] == 0;
	ktap_result(rc == 0 && zeros, "untouched_pages_migrate_as_zeros");
	return ktap_exit_code();
}
