/* gp100emu suite "fault-bench": the speed issue's guest figures as name=value lines
 * ("# bench NAME=VALUE", read by `gp100emu bench --guest`): guest MMIO read round trip beside
 * QEMU's in-process edu device, sequential single-page GPU faults per second, one 2 MiB GPU
 * read of fresh anonymous memory (512 faults), and batched faults per second by batch size;
 * every fault serviced by stock nouveau with the PTE checker armed.
 *
 * gp100emu-needs: gr-firmware pgd-module
 * gp100emu-qemu-args: -device edu
 *
 * Timing is the guest's CLOCK_MONOTONIC (under TCG, QEMU's virtual clock follows the host's).
 * Waiting for an operation polls its status with sched_yield() between reads, so nouveau's
 * fault work (a kernel worker on this one vCPU) runs as soon as it is runnable; the svm
 * suite's usleep(1000) polls would cap a single fault at one per millisecond. */
#define _GNU_SOURCE
#include <errno.h>
#include <sched.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/ioctl.h>
#include "lib/ktap.h"
#include "lib/gp100.h"
#include "lib/nouveau.h"
#include "lib/explore.h"
#include "lib/svm_window.h"

#define PAGE 4096ul
#define UNMANAGED_SIZE (64ul << 20)
#define MMIO_ROUNDS 11
#define MMIO_READS 1000
#define SEQ_PAGES 256
#define BATCH_ROUNDS 8

static int chid = -1;

/* Fresh anonymous memory: small pages only, so each 4 KiB page is a fault of its own. */
static char *fresh(size_t len)
{
	void *p = mmap(NULL, len, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if (p == MAP_FAILED)
		return NULL;
	madvise(p, len, MADV_NOHUGEPAGE);
	return p;
}

/* Issues `n` reads of `len` bytes, slot i at va + i * stride, and waits (at most `secs`) for
 * all to finish. Returns the slots done; the faults the batch took go to *faults. */
static uint32_t batch(char *va, int n, size_t stride, uint32_t len, double secs, uint32_t *faults)
{
	struct xslot s[AB_SLOTS];
	for (int i = 0; i < n; i++)
		s[i] = (struct xslot){ chid, XOP_READ, i % AB_GPCS, (uintptr_t)(va + i * stride), len, 0 };
	xbatch_issue(s, n);
	double end = xnow() + secs;
	while (xrd(AB_DONE) < (uint32_t)n && xrd(AB_CTRL) > 0 && xnow() < end)
		sched_yield();
	/* DONE read after CTRL: slots completing between the two reads are counted. */
	uint32_t d = xrd(AB_DONE);
	*faults = xrd(AB_FAULTS_TOTAL); /* since this issue */
	if (d < (uint32_t)n) {
		static int told;
		if (told++ < 4)
			ktap_diag("batch of %d at %p: %u done, %u errors, %u still waiting", n, (void *)va, d,
				  xrd(AB_ERRORS), xrd(AB_CTRL));
	}
	return d;
}

static int cmp_double(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;
	return x < y ? -1 : x > y;
}

/* Median of MMIO_ROUNDS rounds of MMIO_READS reads each, in microseconds per read. */
static double mmio_median(unsigned vendor, unsigned device)
{
	char dir[300];
	double r[MMIO_ROUNDS];
	if (gp100_find_pci(vendor, device, dir, sizeof(dir)))
		return -1;
	for (int i = 0; i < MMIO_ROUNDS; i++)
		if ((r[i] = gp100_time_reads(dir, MMIO_READS)) < 0)
			return -1;
	qsort(r, MMIO_ROUNDS, sizeof(r[0]), cmp_double);
	return r[MMIO_ROUNDS / 2];
}

int main(void)
{
	ktap_plan(5);
	double gp = mmio_median(GP100_VENDOR, GP100_DEVICE), edu = mmio_median(0x1234, 0x11e8);
	ktap_diag("bench mmio_read_us{device=gp100emu}=%.3f", gp);
	ktap_diag("bench mmio_read_us{device=qemu-edu}=%.3f", edu);
	ktap_result(gp > 0 && edu > 0, "mmio_read_round_trip");

	void *unmanaged = NULL;
	struct gp100_pgd pgd;
	int fd = -1, armed = 0;
	if (xwin_map() == 0 && (unmanaged = svm_unmanaged_window(UNMANAGED_SIZE)) && xpgd(&pgd) == 0 &&
	    (fd = xsvm_open(unmanaged, UNMANAGED_SIZE, &chid)) >= 0)
		armed = xarm(chid, &pgd, unmanaged, UNMANAGED_SIZE);
	if (!armed) {
		ktap_diag("no SVM channel with the checker armed (channel %d)", chid);
		for (int i = 2; i <= 5; i++)
			ktap_result(0, "not reached: no SVM channel");
		return ktap_exit_code();
	}

	/* Sequential single-page faults: one GPU read of one fresh page at a time. */
	char *seq = fresh(SEQ_PAGES * PAGE);
	uint32_t faults = 0, f, done = 0;
	double t0 = xnow();
	for (int i = 0; seq && i < SEQ_PAGES; i++) {
		done += batch(seq + i * PAGE, 1, 0, 4, 10, &f);
		faults += f;
	}
	double t = xnow() - t0;
	ktap_diag("bench faults_sequential_per_s=%.1f", faults / t);
	ktap_diag("%u pages, %u done, %u faults in %.3f s", SEQ_PAGES, done, faults, t);
	ktap_result(done == SEQ_PAGES && faults >= SEQ_PAGES, "sequential_single_page_faults");

	/* One 2 MiB GPU read of fresh anonymous memory: 512 faults in one operation. */
	char *big = fresh(2ul << 20);
	t0 = xnow();
	done = big ? batch(big, 1, 0, 2u << 20, 60, &f) : 0;
	t = xnow() - t0;
	ktap_diag("bench read_2mib_fresh_s=%.3f", t);
	ktap_diag("2 MiB read: done %u, %u faults", done, f);
	ktap_result(done == 1 && f >= 512, "read_2mib_fresh_anonymous");

	/* Batches of 1..64 reads of distinct fresh pages, issued together. */
	int ok = 1;
	for (int n = 1; n <= AB_SLOTS; n *= 4) {
		uint32_t all = 0, fl = 0;
		t0 = xnow();
		for (int r = 0; r < BATCH_ROUNDS; r++) {
			char *p = fresh((size_t)n * PAGE);
			all += p ? batch(p, n, PAGE, 4, 30, &f) : 0;
			fl += p ? f : 0;
		}
		t = xnow() - t0;
		ktap_diag("bench faults_batched_per_s{size=%d}=%.1f", n, fl / t);
		ktap_diag("batch size %d: %d rounds, %u slots done, %u faults in %.3f s", n, BATCH_ROUNDS, all,
			  fl, t);
		ok &= all == (uint32_t)(n * BATCH_ROUNDS);
	}
	ktap_result(ok, "batched_faults");

	uint32_t viol = xrd(XC_VIOLATIONS);
	ktap_diag("bench checker_pages_judged=%u", xrd(XC_CHECKED));
	ktap_diag("bench checker_scans=%u", xrd(XC_SCANS));
	ktap_result(viol == 0, "no_pte_check_violations");
	close(fd);
	return ktap_exit_code();
}
