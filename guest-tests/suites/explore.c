/* gp100emu suite "explore": randomised SVM workloads against live GPU mappings (issue 17): the
 * GPU's batched reads, writes and atomics mixed with munmap, MAP_FIXED, mprotect, madvise,
 * mremap, fork, migration to VRAM and channel churn, data checked against a shadow copy after
 * every operation and every GPU PTE judged by the PTE checker.
 *
 * gp100emu-needs: gr-firmware pgd-module
 * gp100emu-append: oops=panic
 *
 * Parameters come from the kernel command line (gp100emu run --seed/--ops/--explore-ops/
 * --explore-secs put them there):
 *   gp100emu.explore.seed=S         the seed (default 1)
 *   gp100emu.explore.ops=T,T,...    replay exactly these operation tokens (hex) instead of the
 *                                   seed's stream (the reproducer a finding prints)
 *   gp100emu.explore.budget_ops=N   at most N operations (default 400)
 *   gp100emu.explore.budget_secs=T  at most T seconds of operations (default 60)
 *   gp100emu.explore.atomics=M      GPU atomics: 0 off, 1 mixed into any batch, 2 in batches of
 *                                   their own over anonymous and mlock'd memory (default)
 *   gp100emu.explore.wrong_shadow=1 a deliberately wrong shadow model (the host test that the
 *                                   explorer can fail)
 *   gp100emu.explore.race=1         CPU-side operations run on a second thread (the
 *                                   explore-race suite boots -smp 2) while GPU batches are in
 *                                   flight
 *
 * Every operation is one 64-bit token; what it does is a function of the token and the state
 * (regions, what is mapped), so a list of tokens replays deterministically and any subset of
 * it is still a valid run (the host's minimiser relies on that). A finding prints
 * "# EXPLORE FINDING op=I token=T kind=K: ..." and a reproducer line
 * "# EXPLORE REPRODUCE --ops T,T,...". */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include "lib/child.h"
#include "lib/explore.h"
#include "lib/svm_window.h"

#define PAGE 4096ul
#define HUGE (2ul << 20)
#define MAX_TOKENS 4096
#define MAX_PAGES 1024

#ifndef MADV_COLLAPSE
#define MADV_COLLAPSE 25
#endif

enum kind { K_ANON, K_ANON_SHARED, K_MEMFD, K_FILE_PRIVATE, K_THP, K_MLOCK, K_KINDS };
static const char *const kind_name[K_KINDS] = { "anon", "anon-shared", "memfd-shared",
						"file-private", "thp", "mlock" };
static const size_t kind_pages[K_KINDS] = { 64, 32, 32, 32, 1024, 16 };

/* Per-page state of a region. */
/* PG_BOUND_UNREADABLE: an SVM_BIND covered the page while the CPU could not read it (a
 * PROT_NONE range, or a hole, which the explorer keeps reserved as PROT_NONE); cleared when
 * the page is readable again or unmapped. Findings name it (bound=unreadable). */
enum { PG_MAPPED = 1, PG_R = 2, PG_W = 4, PG_SHARED = 8, PG_UNKNOWN = 16, PG_FILEBACK = 32,
       PG_BOUND_UNREADABLE = 64 };

struct region {
	enum kind kind;
	char *base;
	size_t pages;
	uint8_t state[MAX_PAGES];
	uint8_t *shadow;   /* expected contents */
	uint8_t *fileback; /* K_FILE_PRIVATE: the file's contents (what DONTNEED brings back) */
	int fd;
};

static struct region reg[K_KINDS];
static int drm = -1, chid = -1, chid2 = -1, pm = -1;
static int wrong_shadow, race;
/* gp100emu.explore.atomics=M: how GPU atomics are mixed into batches.
 *   0  none (atomics become writes; gp100emu.explore.no_atomics=1 says the same)
 *   1  mixed: any slot of any batch, in anonymous, THP and mlock'd memory
 *   2  grouped: batches of atomics only, in anonymous and mlock'd memory (what stock nouveau
 *      serves: nouveau_svm_fault's atomic flag sticks to every later fault of a batch, svm
 *      case 20; make_device_exclusive_range refuses tail pages of a large folio, so 6.12
 *      cancels atomics in THP memory) */
static int atomics = 2;
static int verbose; /* gp100emu.explore.verbose=1: one line per operation and slot */
#define VLOG(...)                                                                                  \
	do {                                                                                       \
		if (verbose) {                                                                     \
			printf("# op %ld: ", op_index);                                            \
			printf(__VA_ARGS__);                                                       \
			printf("\n");                                                              \
		}                                                                                  \
	} while (0)
static volatile int racing; /* a CPU-side operation runs on the other thread right now */
static uint64_t tokens[MAX_TOKENS];
static int ntokens;
static long op_index;
static int findings;
static void *unmanaged;
#define UNMANAGED_SIZE (64ul << 20)

/* Counters for the figures in the note. */
enum { C_BATCH, C_SLOTS, C_SLOT_FAULTED, C_CPU_WRITE, C_CPU_READ, C_MUNMAP, C_REMAP, C_MPROTECT,
       C_DONTNEED, C_FREE, C_HUGEPAGE, C_NOHUGEPAGE, C_COLLAPSE, C_MADV_EINVAL, C_MREMAP, C_FORK,
       C_BIND, C_BIND_ERR, C_CHURN, C_BIND_ODD, C_OPEN2, C_DROPPED, C_OVERFLOW, C_FAULTS,
       C_RACED, C_EXIT_INFLIGHT, C_BIND_MOVED, C_BIND_STAYED, C_MREMAP_REFUSED,
       C_SLOW, C_SLOT_ERRORS, C_SLOT_LEFT_WAITING, C_ATOMIC_SERVED, C_DEVICE_EXCLUSIVE,
       C_RACE_SLOTS_JUDGED, C_RACE_SLOTS_WAITING, C_COUNTERS };
static const char *const counter_name[C_COUNTERS] = {
	"gpu_batch", "gpu_slots", "gpu_slots_faulted", "cpu_write", "cpu_read", "munmap",
	"map_fixed", "mprotect", "madv_dontneed", "madv_free", "madv_hugepage", "madv_nohugepage",
	"madv_collapse", "madv_einval", "mremap", "fork", "svm_bind_vram", "svm_bind_error",
	"channel_churn", "svm_bind_odd_range", "second_open", "fault_entries_dropped",
	"fault_buffer_overflow_seen", "gpu_faults_reported", "raced_pairs",
	"exit_with_gpu_work_in_flight", "bound_pages_in_vram", "bound_pages_still_present",
	"mremap_efault_several_vmas", "gpu_slots_out_of_time",
	"gpu_slots_cancelled", "gpu_slots_left_waiting", "gpu_atomics_served",
	"atomic_pages_device_exclusive", "raced_slots_judged", "raced_slots_left_waiting",
};
static unsigned long counters[C_COUNTERS];
static unsigned long batch_sizes[AB_SLOTS + 1];
/* Per batch: fault entries the device wrote, and replay rounds its slowest slot needed (each
 * round is one pass of nouveau's fault worker that ended in a replay). */
#define HIST 9
static unsigned long batch_faults[HIST], batch_rounds[HIST];
static int hist_bucket(uint32_t v) /* 0, 1, 2, 3-4, 5-8, ..., 65-128, more */
{
	int b = 0;
	while (b < HIST - 1 && v > (b ? 1u << (b - 1) : 0u))
		b++;
	return b;
}

static uint64_t splitmix(uint64_t *s)
{
	uint64_t z = (*s += 0x9e3779b97f4a7c15ull);
	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
	z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
	return z ^ (z >> 31);
}

/* The token of operation i of seed s: independent of every other operation. */
static uint64_t token_of(uint64_t seed, long i)
{
	uint64_t s = seed * 0x2545f4914f6cdd1dull + (uint64_t)i;
	return splitmix(&s) | 1; /* never 0 */
}

static void finding(const char *kind, const char *fmt, ...)
{
	char msg[400];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	findings++;
	printf("# EXPLORE FINDING op=%ld token=%016llx kind=%s: %s\n", op_index,
	       (unsigned long long)tokens[op_index], kind, msg);
	printf("# EXPLORE REPRODUCE --ops ");
	for (long i = 0; i <= op_index; i++)
		printf("%s%llx", i ? "," : "", (unsigned long long)tokens[i]);
	printf("\n");
	fflush(stdout);
}

/* --- regions --------------------------------------------------------------------------- */

static uint8_t initial_byte(int k, size_t off) { return (uint8_t)(off * 13 + k * 41 + 7); }

static void *map_kind(int k, void *at, size_t off_pages, size_t npages)
{
	int flags = at ? MAP_FIXED : 0;
	size_t len = npages * PAGE;
	void *p = MAP_FAILED;
	switch (k) {
	case K_ANON:
	case K_THP:
	case K_MLOCK:
		p = mmap(at, len, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | flags, -1, 0);
		break;
	case K_ANON_SHARED:
		p = mmap(at, len, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS | flags, -1, 0);
		break;
	case K_MEMFD:
		p = mmap(at, len, PROT_READ | PROT_WRITE, MAP_SHARED | flags, reg[k].fd, off_pages * PAGE);
		break;
	case K_FILE_PRIVATE:
		p = mmap(at, len, PROT_READ | PROT_WRITE, MAP_PRIVATE | flags, reg[k].fd, off_pages * PAGE);
		break;
	}
	return p == MAP_FAILED ? NULL : p;
}

static int setup_regions(void)
{
	for (int k = 0; k < K_KINDS; k++) {
		struct region *r = &reg[k];
		r->kind = (enum kind)k;
		r->pages = kind_pages[k];
		r->fd = -1;
		size_t len = r->pages * PAGE;
		r->shadow = calloc(1, len);
		if (k == K_MEMFD || k == K_FILE_PRIVATE) {
			r->fd = k == K_MEMFD ? memfd_create("explore", 0)
					     : open("/tmp/explore-file", O_RDWR | O_CREAT | O_TRUNC, 0600);
			uint8_t *buf = malloc(len);
			for (size_t i = 0; i < len; i++)
				buf[i] = initial_byte(k, i);
			if (r->fd < 0 || pwrite(r->fd, buf, len, 0) != (ssize_t)len) {
				ktap_diag("%s backing file: %s", kind_name[k], strerror(errno));
				return -1;
			}
			memcpy(r->shadow, buf, len);
			if (k == K_FILE_PRIVATE)
				r->fileback = buf;
			else
				free(buf);
		}
		if (k == K_THP) {
			char *raw = mmap(NULL, len + HUGE, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
			if (raw == MAP_FAILED)
				return -1;
			char *al = (char *)(((uintptr_t)raw + HUGE - 1) & ~(HUGE - 1));
			r->base = map_kind(k, al, 0, r->pages);
			madvise(r->base, len, MADV_HUGEPAGE);
		} else {
			r->base = map_kind(k, NULL, 0, r->pages);
		}
		if (!r->base) {
			ktap_diag("mapping %s: %s", kind_name[k], strerror(errno));
			return -1;
		}
		if (k == K_MLOCK && mlock(r->base, len))
			ktap_diag("mlock: %s (region stays unlocked)", strerror(errno));
		for (size_t p = 0; p < r->pages; p++)
			r->state[p] = PG_MAPPED | PG_R | PG_W |
				      (k == K_ANON_SHARED || k == K_MEMFD ? PG_SHARED : 0) |
				      (k == K_FILE_PRIVATE ? PG_FILEBACK : 0);
		/* The anonymous kinds start with data of their own (written by the CPU). */
		if (k != K_MEMFD && k != K_FILE_PRIVATE) {
			for (size_t i = 0; i < len; i++)
				r->shadow[i] = initial_byte(k, i);
			memcpy(r->base, r->shadow, len);
		}
	}
	return 0;
}

static int page_ok(struct region *r, size_t p, int need)
{
	return p < r->pages && (r->state[p] & (PG_MAPPED | need)) == (PG_MAPPED | need);
}

/* Whether [off, off+len) is all mapped with `need` permission. */
static int range_ok(struct region *r, size_t off, size_t len, int need)
{
	for (size_t p = off / PAGE; p <= (off + len - 1) / PAGE; p++)
		if (!page_ok(r, p, need))
			return 0;
	return 1;
}

static int range_known(struct region *r, size_t off, size_t len)
{
	for (size_t p = off / PAGE; p <= (off + len - 1) / PAGE; p++)
		if (r->state[p] & PG_UNKNOWN)
			return 0;
	return 1;
}

/* A written range: pages it covers whole become known again. */
static void range_written(struct region *r, size_t off, size_t len)
{
	for (size_t p = (off + PAGE - 1) / PAGE; (p + 1) * PAGE <= off + len; p++)
		r->state[p] &= (uint8_t)~PG_UNKNOWN;
}

/* A random sub-range of region r: often starts just before a 4 KiB, 64 KiB or 2 MiB boundary
 * so accesses cross it. */
static void pick_range(struct region *r, uint64_t *s, size_t maxlen, size_t *off, size_t *len)
{
	size_t size = r->pages * PAGE;
	size_t l = 1 + splitmix(s) % maxlen;
	if (l > size)
		l = size;
	size_t o;
	uint64_t how = splitmix(s) % 4;
	size_t gran = how == 0 ? PAGE : how == 1 ? (64ul << 10) : how == 2 ? HUGE : 0;
	if (gran && size > gran) {
		size_t b = gran * (1 + splitmix(s) % (size / gran));
		size_t back = 1 + splitmix(s) % (l < 256 ? l : 256);
		o = b > back ? b - back : 0;
	} else {
		o = splitmix(s) % size;
	}
	if (o + l > size)
		o = size - l;
	*off = o;
	*len = l;
}

/* --- checks ------------------------------------------------------------------------------ */

/* The CPU sees what the shadow says over every readable, known page of every region. */
static void check_cpu_all(const char *after)
{
	for (int k = 0; k < K_KINDS; k++) {
		struct region *r = &reg[k];
		for (size_t p = 0; p < r->pages; p++) {
			if (!page_ok(r, p, PG_R) || (r->state[p] & PG_UNKNOWN))
				continue;
			if (memcmp(r->base + p * PAGE, r->shadow + p * PAGE, PAGE)) {
				size_t i = 0;
				while (r->base[p * PAGE + i] == (char)r->shadow[p * PAGE + i])
					i++;
				finding("cpu-data", "after %s: %s page %zu byte %zu is %02x, expected %02x",
					after, kind_name[k], p, i, (uint8_t)r->base[p * PAGE + i],
					r->shadow[p * PAGE + i]);
				/* Reported once: the shadow takes what the CPU sees from here on. */
				memcpy(r->shadow + p * PAGE, r->base + p * PAGE, PAGE);
				return;
			}
		}
	}
}

/* The checker's reason codes as words (emulator/src/check/mod.rs, Reason), for finding lines
 * that known-issues.txt entries can name. */
static const char *const reason_word[] = {
	"none", "cpu-not-mapped", "wrong-page", "gpu-writable-cpu-read-only", "vram-cpu-system-page",
	"peer-aperture", "cpu-walk-failed", "cpu-page-device-private", "unowned-space", "stale-after-exit",
};
static const char *const found_word[] = { "flush", "gpu-use", "cpu-invalidate", "?" };

/* A finding for each operation that made the checker find a PTE wrong for the first time. A PTE
 * that stays wrong is reported again at every flush (CHK_VIOLATIONS counts those reports); the
 * line gives both, and how the last new one was found: its reason, the GPU PTE's page size, and
 * where (at a CPU invalidate means the driver left the PTE over a CPU change it was told of). */
static void check_checker(void)
{
	static uint32_t seen, seen_new;
	uint32_t v = xrd(XC_VIOLATIONS), n = xrd(XC_NEW_VIOLATIONS);
	if (n != seen_new) {
		uint32_t how = xrd(XC_LAST_NEW_HOW), why = how & 0xff, shift = (how >> 16) & 0xff;
		finding("pte-check", "%u new PTE checker violation(s) (%u reports); last new: reason=%s "
			"gpu-page=%s found=%s va=0x%08x%08x",
			n - seen_new, v - seen,
			why < sizeof(reason_word) / sizeof(reason_word[0]) ? reason_word[why] : "?",
			shift == 21 ? "2m" : shift == 16 ? "64k" : shift == 12 ? "4k" : "unknown",
			found_word[(how >> 8) & 3], xrd(XC_LAST_NEW_VA_LO + 4), xrd(XC_LAST_NEW_VA_LO));
	}
	seen = v;
	seen_new = n;
}

/* --- operations ------------------------------------------------------------------------------ */

struct planned {
	struct region *r;
	size_t off, len;
	int op;
	int expect_served;
	uint32_t data;
};

static int overlaps(const struct planned *a, const struct planned *b)
{
	return a->r == b->r && a->off < b->off + b->len && b->off < a->off + a->len;
}

/* Race mode: what the shadow and page states were before the CPU-side operation started on
 * the other thread (race_snapshot), and that thread (joined by the batch once its slots have
 * had their chance, so the verdict sees the operation's whole effect). */
static uint8_t *race_shadow[K_KINDS];
static uint8_t race_state[K_KINDS][MAX_PAGES];
static pthread_t race_th;
static int race_pending;

static void race_snapshot(void)
{
	for (int k = 0; k < K_KINDS; k++) {
		size_t len = reg[k].pages * PAGE;
		if (!race_shadow[k])
			race_shadow[k] = malloc(len);
		memcpy(race_shadow[k], reg[k].shadow, len);
		memcpy(race_state[k], reg[k].state, sizeof(race_state[k]));
	}
}

static void race_join(void)
{
	if (race_pending) {
		pthread_join(race_th, NULL);
		race_pending = 0;
	}
}

/* A raced batch (reads only): once the CPU-side operation is over, every completed read of
 * a range the operation left alone (same page states, same expected bytes before and after)
 * must have seen those bytes; reads of ranges it changed may have seen either side. */
static void judge_raced(const struct planned *pl, int n)
{
	race_join();
	for (int i = 0; i < n; i++) {
		const struct planned *p = &pl[i];
		int k = p->r->kind;
		size_t q0 = p->off / PAGE, q1 = (p->off + p->len - 1) / PAGE;
		int same = 1;
		for (size_t q = q0; q <= q1; q++)
			same = same && race_state[k][q] == p->r->state[q] && page_ok(p->r, q, PG_R) &&
			       !(p->r->state[q] & PG_UNKNOWN);
		same = same && !memcmp(race_shadow[k] + p->off, p->r->shadow + p->off, p->len);
		if (!same || p->op != XOP_READ)
			continue;
		struct xslot_result res = xbatch_slot(i);
		if (res.status != XST_DONE) {
			counters[C_RACE_SLOTS_WAITING]++;
			continue;
		}
		counters[C_RACE_SLOTS_JUDGED]++;
		const uint8_t *sh = p->r->shadow + p->off;
		int bad = p->len <= 8 ? memcmp(&res.data, sh, p->len) != 0 : res.crc != gp100_crc32(sh, p->len);
		if (bad)
			finding("gpu-data-raced",
				"slot %d/%d read %s+%#zx len %zu beside a CPU-side operation that left it "
				"alone: GPU saw other data than the shadow",
				i, n, kind_name[k], p->off, p->len);
	}
}

/* A batch of GPU accesses; served ones are checked against the shadow (and update it), the
 * ones over unmapped or forbidden pages must stay waiting. */
static void op_gpu_batch(uint64_t s)
{
	struct planned pl[AB_SLOTS];
	struct xslot sl[AB_SLOTS];
	int want = 1 + (int)(splitmix(&s) % (splitmix(&s) % 4 == 0 ? AB_SLOTS : 16));
	int n = 0, expect_pending = 0;
	int forbidden_ok = splitmix(&s) % 4 == 0;
	/* Grouped atomics: one batch in five is atomics only (decided apart from the stream
	 * below, so the other batches plan as with atomics off). */
	uint64_t s2 = s ^ 0xa7011c5ull;
	int atomic_batch = atomics == 2 && !racing && !forbidden_ok && splitmix(&s2) % 5 == 0;
	for (int tries = 0; n < want && tries < 4 * want; tries++) {
		struct planned p = { 0 };
		p.r = &reg[splitmix(&s) % K_KINDS];
		uint64_t o = splitmix(&s) % 8;
		p.op = o < 4 || racing ? XOP_READ : o < 7 ? XOP_WRITE : XOP_ATOMIC;
		if (atomic_batch) {
			if (p.r->kind != K_ANON && p.r->kind != K_MLOCK)
				continue;
			p.op = XOP_ATOMIC;
		} else if (p.op == XOP_ATOMIC && (atomics != 1 || (p.r->kind != K_ANON && p.r->kind != K_THP &&
								  p.r->kind != K_MLOCK))) {
			p.op = XOP_WRITE;
		}
		pick_range(p.r, &s, p.op == XOP_ATOMIC ? 4 : (splitmix(&s) % 3 ? 64 : 6 * PAGE), &p.off, &p.len);
		if (p.op == XOP_ATOMIC) {
			p.off &= ~3ul;
			p.len = 4;
		}
		p.data = (uint32_t)splitmix(&s);
		int need = p.op == XOP_READ ? PG_R : PG_R | PG_W;
		p.expect_served = range_ok(p.r, p.off, p.len, need);
		if (!p.expect_served) {
			/* nouveau cancels what it cannot service, and each cancel costs a FECS
			 * timeout here (known-issues.txt); a cancel that fails leaves the access
			 * waiting, so every later replay re-faults it and costs another. Such slots
			 * therefore go in batches of their own (one in four, two slots at most),
			 * never beside slots to serve. Writes only where nothing would be written:
			 * the first page is forbidden. */
			if (!forbidden_ok || expect_pending >= 2)
				continue;
			if (p.op != XOP_READ && page_ok(p.r, p.off / PAGE, need))
				continue;
		} else if (forbidden_ok) {
			continue; /* a probing batch holds only slots that must not be served */
		}
		if (p.expect_served && !range_known(p.r, p.off, p.len) && p.op == XOP_READ)
			continue; /* contents indeterminate (after MADV_FREE) */
		int clash = 0;
		for (int j = 0; j < n; j++)
			if (overlaps(&p, &pl[j]) && (p.op != XOP_READ || pl[j].op != XOP_READ))
				clash = 1;
		if (clash)
			continue;
		pl[n] = p;
		sl[n] = (struct xslot){
			.chid = (chid2 >= 0 && splitmix(&s) % 2) ? chid2 : chid,
			.op = p.op,
			.gpc = (int)(splitmix(&s) % AB_GPCS),
			.va = (uintptr_t)(p.r->base + p.off),
			.len = (uint32_t)p.len,
			.data = p.data | (uint64_t)(uint32_t)splitmix(&s) << 32,
		};
		if (p.op == XOP_WRITE && p.len <= 8)
			pl[n].data = 0; /* unused: bytes come from sl.data */
		expect_pending += !p.expect_served;
		n++;
	}
	if (n == 0)
		return;
	for (int i = 0; i < n; i++)
		VLOG("slot %d: %s %s+%#zx len %zu chid %d gpc %d%s", i,
		     pl[i].op == XOP_READ ? "read" : pl[i].op == XOP_WRITE ? "write" : "atomic",
		     kind_name[pl[i].r->kind], pl[i].off, pl[i].len, sl[i].chid, sl[i].gpc,
		     pl[i].expect_served ? "" : " (must not be served)");
	counters[C_BATCH]++;
	counters[C_SLOTS] += (unsigned long)n;
	batch_sizes[n]++;
	xbatch_issue(sl, n);
	xbatch_wait_done((uint32_t)(n - expect_pending), racing ? 3 : 30);
	/* Give the slots that must not be served a moment to be (wrongly) served. */
	if (expect_pending)
		usleep(2000);
	counters[C_DROPPED] += xrd(AB_DROPPED);
	static int overflow_said;
	if (xrd(AB_DROPPED) && !overflow_said) {
		/* Said at once: the run may not reach its final counters (a known oops). */
		ktap_diag("fault buffer overflow: %u entries dropped at op %ld", xrd(AB_DROPPED), op_index);
		overflow_said = 1;
	}
	counters[C_FAULTS] += xrd(AB_FAULTS_TOTAL);
	counters[C_SLOT_ERRORS] += xrd(AB_ERRORS);
	counters[C_SLOT_LEFT_WAITING] += xrd(AB_CTRL);
	batch_faults[hist_bucket(xrd(AB_FAULTS_TOTAL))]++;
	uint32_t rounds = 0;
	for (int i = 0; i < n; i++) {
		struct xslot_result r = xbatch_slot(i);
		rounds = r.replays > rounds ? r.replays : rounds;
	}
	batch_rounds[hist_bucket(rounds)]++;
	if (xrd(AB_BUFFER_INFO) & 1)
		counters[C_OVERFLOW]++;
	if (racing)
		judge_raced(pl, n);
	for (int i = 0; i < n && !racing; i++) {
		struct xslot_result res = xbatch_slot(i);
		struct planned *p = &pl[i];
		counters[C_SLOT_FAULTED] += res.faults > 0;
		if (p->expect_served && res.status != XST_DONE) {
			/* A write that stopped part way wrote its first bytes: unknown from here. */
			if (p->op != XOP_READ)
				for (size_t q = p->off / PAGE; q <= (p->off + p->len - 1) / PAGE; q++)
					p->r->state[q] |= PG_UNKNOWN;
			/* A slot that moved since it started only ran out of time (every fault
			 * round costs a FECS-timeout cancel here when another fault fails); one
			 * that is stuck on one page is the finding. */
			if (res.status == XST_PENDING && res.progress > 0 && res.replays > 2) {
				counters[C_SLOW]++;
				continue;
			}
			finding("gpu-not-served",
				"slot %d/%d %s %s+%#zx len %zu: status %d after %u faults, %u replays, stopped at byte %u (page %#zx) region=%s fault=%s",
				i, n, p->op == XOP_READ ? "read" : p->op == XOP_WRITE ? "write" : "atomic",
				kind_name[p->r->kind], p->off, p->len, res.status, res.faults, res.replays,
				res.progress, (p->off + res.progress) / PAGE, kind_name[p->r->kind],
				res.faults ? xfault_type_word(res.fault_type) : "none");
			continue;
		}
		if (!p->expect_served) {
			int bound = 0;
			for (size_t q = p->off / PAGE; q <= (p->off + p->len - 1) / PAGE; q++)
				bound |= p->r->state[q] & PG_BOUND_UNREADABLE;
			if (res.status == XST_DONE)
				finding("gpu-served-forbidden",
					"slot %d/%d %s %s+%#zx len %zu completed over an unmapped or forbidden page bound=%s",
					i, n, p->op == XOP_READ ? "read" : "write", kind_name[p->r->kind],
					p->off, p->len, bound ? "unreadable" : "no");
			continue;
		}
		uint8_t *sh = p->r->shadow + p->off;
		if (p->op == XOP_READ) {
			int bad = p->len <= 8 ? memcmp(&res.data, sh, p->len) != 0
					      : res.crc != gp100_crc32(sh, p->len);
			if (bad)
				finding("gpu-data", "slot %d read %s+%#zx len %zu: GPU saw other data than the shadow",
					i, kind_name[p->r->kind], p->off, p->len);
		} else if (p->op == XOP_WRITE) {
			if (p->len <= 8) {
				memcpy(sh, &sl[i].data, p->len);
			} else {
				for (size_t b = 0; b < p->len; b++) {
					uint32_t w = (uint32_t)sl[i].data + (uint32_t)(b / 4);
					sh[b] = (uint8_t)(w >> (8 * (b % 4)));
				}
			}
			range_written(p->r, p->off, p->len);
		} else {
			uint32_t old;
			memcpy(&old, sh, 4);
			if (range_known(p->r, p->off, 4) && (uint32_t)res.data != old)
				finding("gpu-atomic", "slot %d atomic at %s+%#zx returned %08x, shadow %08x", i,
					kind_name[p->r->kind], p->off, (uint32_t)res.data, old);
			old = (uint32_t)res.data + (uint32_t)sl[i].data;
			memcpy(sh, &old, 4);
			counters[C_ATOMIC_SERVED]++;
			/* nouveau serves an atomic through make_device_exclusive_range: until the CPU
			 * touches it, the page is a device-exclusive swap entry (pagemap: not present,
			 * swapped). */
			uint64_t e = 0;
			if (pm >= 0 && pread(pm, &e, 8, (sl[i].va / PAGE) * 8) == 8 && !((e >> 63) & 1) &&
			    ((e >> 62) & 1))
				counters[C_DEVICE_EXCLUSIVE]++;
		}
		if (wrong_shadow && p->op != XOP_READ)
			sh[0] ^= 0x5a; /* the deliberately wrong model */
	}
	xwr(AB_CTRL, 2);
}

static void op_cpu_write(uint64_t s)
{
	struct region *r = &reg[splitmix(&s) % K_KINDS];
	size_t off, len;
	pick_range(r, &s, 3 * PAGE, &off, &len);
	if (!range_ok(r, off, len, PG_R | PG_W))
		return;
	uint8_t v = (uint8_t)splitmix(&s);
	for (size_t i = 0; i < len; i++)
		r->shadow[off + i] = (uint8_t)(v + i);
	memcpy(r->base + off, r->shadow + off, len);
	range_written(r, off, len);
	VLOG("cpu write %s+%#zx len %zu", kind_name[r->kind], off, len);
	counters[C_CPU_WRITE]++;
}

static void page_range(struct region *r, uint64_t *s, size_t *p0, size_t *np)
{
	size_t n = 1 + splitmix(s) % (r->pages < 8 ? r->pages : r->pages / 4);
	size_t at = splitmix(s) % (r->pages - n + 1);
	/* Huge region: often a range that splits a 2 MiB page. */
	if (r->kind == K_THP && splitmix(s) % 2) {
		at = 512 - (splitmix(s) % 4);
		n = 1 + splitmix(s) % 8;
	}
	*p0 = at;
	*np = n;
}

/* Holes the explorer makes are kept reserved (PROT_NONE, no access: to the GPU and hmm as
 * unmapped as a hole) right after they are made, so no later mmap(NULL) — the explorer's,
 * malloc's, the driver's — lands in a region and is clobbered by a MAP_FIXED remap. */
static void reserve_hole(char *at, size_t len)
{
	mmap(at, len, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED_NOREPLACE | MAP_NORESERVE, -1, 0);
}

static void op_munmap(uint64_t s)
{
	struct region *r = &reg[splitmix(&s) % K_KINDS];
	size_t p0, n;
	page_range(r, &s, &p0, &n);
	if (munmap(r->base + p0 * PAGE, n * PAGE)) {
		finding("syscall", "munmap: %s", strerror(errno));
		return;
	}
	reserve_hole(r->base + p0 * PAGE, n * PAGE);
	for (size_t p = p0; p < p0 + n; p++)
		r->state[p] &= (uint8_t)~(PG_MAPPED | PG_R | PG_W | PG_BOUND_UNREADABLE);
	VLOG("munmap %s pages %zu..%zu", kind_name[r->kind], p0, p0 + n);
	counters[C_MUNMAP]++;
}

/* MAP_FIXED over a sub-range: the kind's own mapping again (shared kinds map their file at
 * the same offset, so the old contents come back; private ones get fresh zero or file pages). */
static void op_remap(uint64_t s)
{
	struct region *r = &reg[splitmix(&s) % K_KINDS];
	size_t p0, n;
	page_range(r, &s, &p0, &n);
	if (r->kind == K_ANON_SHARED)
		return; /* a shared anonymous mapping cannot be re-joined */
	if (!map_kind(r->kind, r->base + p0 * PAGE, p0, n)) {
		finding("syscall", "mmap MAP_FIXED %s: %s", kind_name[r->kind], strerror(errno));
		return;
	}
	for (size_t p = p0; p < p0 + n; p++) {
		r->state[p] |= PG_MAPPED | PG_R | PG_W;
		r->state[p] &= (uint8_t)~(PG_UNKNOWN | PG_BOUND_UNREADABLE);
		uint8_t *sh = r->shadow + p * PAGE;
		if (r->kind == K_FILE_PRIVATE)
			memcpy(sh, r->fileback + p * PAGE, PAGE);
		else if (r->kind != K_MEMFD)
			memset(sh, 0, PAGE);
		/* memfd: the file's contents, which the shadow already holds */
	}
	if (r->kind == K_THP)
		madvise(r->base + p0 * PAGE, n * PAGE, MADV_HUGEPAGE);
	if (r->kind == K_MLOCK)
		mlock(r->base + p0 * PAGE, n * PAGE);
	VLOG("MAP_FIXED %s pages %zu..%zu", kind_name[r->kind], p0, p0 + n);
	counters[C_REMAP]++;
}

static void op_mprotect(uint64_t s)
{
	struct region *r = &reg[splitmix(&s) % K_KINDS];
	size_t p0, n;
	page_range(r, &s, &p0, &n);
	for (size_t p = p0; p < p0 + n; p++)
		if (!(r->state[p] & PG_MAPPED))
			return; /* ENOMEM over holes: not interesting */
	int which = (int)(splitmix(&s) % 3);
	int prot = which == 0 ? PROT_NONE : which == 1 ? PROT_READ : PROT_READ | PROT_WRITE;
	if (mprotect(r->base + p0 * PAGE, n * PAGE, prot)) {
		finding("syscall", "mprotect: %s", strerror(errno));
		return;
	}
	for (size_t p = p0; p < p0 + n; p++) {
		r->state[p] &= (uint8_t)~(PG_R | PG_W | (prot & PROT_READ ? PG_BOUND_UNREADABLE : 0));
		r->state[p] |= (prot & PROT_READ ? PG_R : 0) | (prot & PROT_WRITE ? PG_W : 0);
	}
	VLOG("mprotect %s pages %zu..%zu to %d", kind_name[r->kind], p0, p0 + n, prot);
	counters[C_MPROTECT]++;
}

static void op_madvise(uint64_t s)
{
	struct region *r = &reg[splitmix(&s) % K_KINDS];
	size_t p0, n;
	page_range(r, &s, &p0, &n);
	for (size_t p = p0; p < p0 + n; p++)
		if (!(r->state[p] & PG_MAPPED))
			return;
	static const int advice[] = { MADV_DONTNEED, MADV_FREE, MADV_HUGEPAGE, MADV_NOHUGEPAGE,
				      MADV_COLLAPSE };
	static const int counter[] = { C_DONTNEED, C_FREE, C_HUGEPAGE, C_NOHUGEPAGE, C_COLLAPSE };
	int a = (int)(splitmix(&s) % 5);
	int rc = madvise(r->base + p0 * PAGE, n * PAGE, advice[a]);
	VLOG("madvise %s pages %zu..%zu advice %d: %d", kind_name[r->kind], p0, p0 + n, advice[a],
	     rc ? -errno : 0);
	if (rc) {
		/* Documented refusals: DONTNEED on mlock'd pages, FREE on shared or file mappings,
		 * COLLAPSE on kernels without it or where it cannot (EAGAIN, ENOMEM). */
		if (errno == EINVAL || errno == EAGAIN || errno == ENOMEM || errno == EBUSY) {
			counters[C_MADV_EINVAL]++;
			return;
		}
		finding("syscall", "madvise(%d) on %s: %s", advice[a], kind_name[r->kind], strerror(errno));
		return;
	}
	counters[counter[a]]++;
	if (advice[a] == MADV_DONTNEED) {
		for (size_t p = p0; p < p0 + n; p++) {
			uint8_t *sh = r->shadow + p * PAGE;
			if (r->state[p] & PG_SHARED)
				continue; /* the page cache keeps the data */
			if (r->state[p] & PG_FILEBACK)
				memcpy(sh, r->fileback + p * PAGE, PAGE);
			else
				memset(sh, 0, PAGE);
			r->state[p] &= (uint8_t)~PG_UNKNOWN;
		}
	} else if (advice[a] == MADV_FREE) {
		for (size_t p = p0; p < p0 + n; p++)
			r->state[p] |= PG_UNKNOWN; /* old data or zero, the kernel's choice */
	}
}

/* mremap: move the whole region elsewhere (and back to a new place next time), or shrink it. */
static void op_mremap(uint64_t s)
{
	struct region *r = &reg[splitmix(&s) % K_KINDS];
	if (r->kind == K_THP)
		return; /* keep the 2 MiB alignment */
	for (size_t p = 0; p < r->pages; p++)
		if (!(r->state[p] & PG_MAPPED))
			return; /* mremap of a range with holes fails (EFAULT) */
	size_t len = r->pages * PAGE;
	if (splitmix(&s) % 2) {
		void *dst = mmap(NULL, len, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
		if (dst == MAP_FAILED)
			return;
		void *p = mremap(r->base, len, len, MREMAP_MAYMOVE | MREMAP_FIXED, dst);
		if (p == MAP_FAILED) {
			/* A region that mprotect or MAP_FIXED split into several VMAs cannot move
			 * in one call: EFAULT, documented. */
			if (errno == EFAULT)
				counters[C_MREMAP_REFUSED]++;
			else
				finding("syscall", "mremap move %s: %s", kind_name[r->kind], strerror(errno));
			munmap(dst, len);
			return;
		}
		r->base = p;
	} else {
		size_t keep = r->pages / 2;
		void *p = mremap(r->base, len, keep * PAGE, 0);
		if (p == MAP_FAILED) {
			if (errno == EFAULT)
				counters[C_MREMAP_REFUSED]++;
			else
				finding("syscall", "mremap shrink %s: %s", kind_name[r->kind], strerror(errno));
			return;
		}
		reserve_hole(r->base + keep * PAGE, len - keep * PAGE);
		for (size_t q = keep; q < r->pages; q++)
			r->state[q] &= (uint8_t)~(PG_MAPPED | PG_R | PG_W | PG_BOUND_UNREADABLE);
	}
	VLOG("mremap %s now at %p", kind_name[r->kind], (void *)r->base);
	counters[C_MREMAP]++;
}

/* fork: the child checks what it sees, writes some pages and exits; its writes to shared pages
 * are the parent's too, its writes to private pages are not. */
static void op_fork(uint64_t s)
{
	struct region *r = &reg[splitmix(&s) % K_KINDS];
	size_t off, len;
	pick_range(r, &s, 2 * PAGE, &off, &len);
	int writable = range_ok(r, off, len, PG_R | PG_W) && range_known(r, off, len);
	uint8_t v = (uint8_t)splitmix(&s);
	fflush(stdout);
	pid_t c = fork();
	if (c == 0) {
		int bad = 0;
		if (writable) {
			bad = memcmp(r->base + off, r->shadow + off, len) != 0;
			for (size_t i = 0; i < len; i++)
				r->base[off + i] = (char)(v ^ i);
		}
		_exit(bad ? 3 : 0);
	}
	int ws = 0;
	if (c < 0 || child_wait(c, &ws, 30) != c) {
		finding("syscall", "fork: %s", strerror(errno));
		return;
	}
	if (!WIFEXITED(ws) || WEXITSTATUS(ws) != 0)
		finding("fork-child", "child of fork saw other data than the shadow (status %#x)", ws);
	VLOG("fork, child %s %s+%#zx len %zu", writable ? "checked and wrote" : "did nothing",
	     kind_name[r->kind], off, len);
	if (writable)
		for (size_t i = 0; i < len; i++)
			if (r->state[(off + i) / PAGE] & PG_SHARED)
				r->shadow[off + i] = (uint8_t)(v ^ i);
	counters[C_FORK]++;
}

/* SVM_BIND migration to VRAM of a sub-range (private anonymous kinds; the data must not
 * change), or driver-interface exploration: ranges with holes, odd lengths, unaligned. */
static void op_bind(uint64_t s)
{
	struct region *r = &reg[splitmix(&s) % K_KINDS];
	size_t p0, n;
	page_range(r, &s, &p0, &n);
	int odd = splitmix(&s) % 4 == 0;
	char *start = r->base + p0 * PAGE;
	size_t len = n * PAGE;
	if (odd) {
		start -= splitmix(&s) % 3 * PAGE;      /* may start in a hole before the region */
		len += splitmix(&s) % (8 * PAGE) + 1; /* any length, may end in a hole */
	}
	int rc = xsvm_bind_vram(drm, start, len);
	VLOG("SVM_BIND %s pages %zu..%zu%s: %d", kind_name[r->kind], p0, p0 + n, odd ? " (odd range)" : "", rc);
	for (size_t p = 0; p < r->pages; p++) {
		char *va = r->base + p * PAGE;
		if (va >= start && va < start + len && !(r->state[p] & PG_R))
			r->state[p] |= PG_BOUND_UNREADABLE;
	}
	if (odd) {
		counters[C_BIND_ODD]++;
		/* Documented result: 0, or an error code; never an oops (the console monitor) and
		 * never a change of the data (checked after every operation). */
		if (rc && rc != -EINVAL && rc != -EFAULT && rc != -ENOMEM && rc != -EBUSY)
			finding("svm-bind", "SVM_BIND over an odd range returned %d", rc);
		counters[rc ? C_BIND_ERR : C_BIND]++;
		return;
	}
	counters[rc ? C_BIND_ERR : C_BIND]++;
	/* pagemap: a page that moved to VRAM is a swap entry (device-private), not present. */
	if (rc == 0 && pm >= 0 && (r->kind == K_ANON || r->kind == K_THP || r->kind == K_MLOCK)) {
		for (size_t p = p0; p < p0 + n; p++) {
			uint64_t e = 0;
			if (!page_ok(r, p, 0) ||
			    pread(pm, &e, 8, ((uintptr_t)r->base / PAGE + p) * 8) != 8)
				continue;
			counters[(e >> 63) & 1 ? C_BIND_STAYED : C_BIND_MOVED]++;
		}
	}
	if (rc && rc != -EBUSY && rc != -ENOMEM)
		finding("svm-bind", "SVM_BIND of %s pages %zu..%zu: %d", kind_name[r->kind], p0, p0 + n, rc);
}

/* Channels come and go mid-run; a second render-node open per process is an SVM client too. */
static void op_churn(uint64_t s)
{
	if (splitmix(&s) % 4 == 0) {
		int c2 = -1;
		int fd = xsvm_open(unmanaged, UNMANAGED_SIZE, &c2);
		if (fd < 0)
			finding("driver", "second render-node open + SVM_INIT + channel failed");
		else
			close(fd);
		VLOG("second render-node open");
		counters[C_OPEN2]++;
		return;
	}
	if (chid2 >= 0) {
		if (xchannel_free(drm, chid2))
			finding("driver", "CHANNEL_FREE %d: %s", chid2, strerror(errno));
		chid2 = -1;
	} else {
		chid2 = xchannel_alloc(drm);
		if (chid2 < 0)
			finding("driver", "CHANNEL_ALLOC mid-run: %s", strerror(errno));
	}
	VLOG("channel churn: second channel now %d", chid2);
	counters[C_CHURN]++;
}

/* A child process becomes an SVM client of its own (render node, SVM_INIT, channel), starts a
 * GPU batch over the memory it inherited and exits while the batch is in flight: nouveau's
 * fault worker then meets a dying mm, and its GPU PTEs outlive the mm until the file closes
 * (issue 17 part 1). Reads only, of pages the parent shares with it (so the single checker
 * space, the parent's, judges the child's uses rightly until the checker follows every
 * process). */
static void op_exit_inflight(uint64_t s)
{
	struct xslot sl[8];
	int n = 0;
	for (int tries = 0; n < 8 && tries < 32; tries++) {
		struct region *r = &reg[splitmix(&s) % K_KINDS];
		size_t off, len;
		pick_range(r, &s, 2 * PAGE, &off, &len);
		if (!range_ok(r, off, len, PG_R))
			continue;
		sl[n++] = (struct xslot){ .op = XOP_READ, .gpc = n % AB_GPCS,
					  .va = (uintptr_t)(r->base + off), .len = (uint32_t)len };
	}
	if (n == 0)
		return;
	int wait_us = (int)(splitmix(&s) % 3000);
	fflush(stdout);
	pid_t c = fork();
	if (c == 0) {
		int cc = -1;
		/* This child is an SVM client of its own: the checker must judge its uses against
		 * its own page tables. Reading the module's file before SVM_INIT also has the
		 * module watch this mm's exit (see lib/gp100.h), so its teardown is reported. */
		struct gp100_pgd pgd;
		if (xpgd(&pgd))
			_exit(3);
		int fd = xsvm_open(unmanaged, UNMANAGED_SIZE, &cc);
		if (fd < 0)
			_exit(2);
		if (!xarm(cc, &pgd, unmanaged, UNMANAGED_SIZE))
			_exit(3);
		for (int i = 0; i < n; i++)
			sl[i].chid = cc;
		xbatch_issue(sl, n);
		usleep((useconds_t)wait_us);
		_exit(0); /* with the batch in flight */
	}
	int ws = 0;
	if (c < 0 || child_wait(c, &ws, 30) != c) {
		finding("syscall", "fork: %s", strerror(errno));
		return;
	}
	if (!WIFEXITED(ws) || WEXITSTATUS(ws) != 0)
		finding("driver", "child SVM client failed to set up (status %#x)", ws);
	xwr(AB_CTRL, 2);
	counters[C_EXIT_INFLIGHT]++;
}

static void op_cpu_read(uint64_t s)
{
	(void)s;
	check_cpu_all("cpu read");
	counters[C_CPU_READ]++;
}

struct opdef {
	const char *name;
	void (*fn)(uint64_t);
	int weight;
	int cpu_side; /* may run on the race thread */
};
static const struct opdef ops[] = {
	{ "gpu_batch", op_gpu_batch, 30, 0 }, { "cpu_write", op_cpu_write, 12, 1 },
	{ "cpu_read", op_cpu_read, 4, 1 },    { "munmap", op_munmap, 5, 1 },
	{ "map_fixed", op_remap, 7, 1 },      { "mprotect", op_mprotect, 8, 1 },
	{ "madvise", op_madvise, 8, 1 },      { "mremap", op_mremap, 3, 1 },
	{ "fork", op_fork, 4, 0 },            { "svm_bind", op_bind, 6, 0 },
	{ "channels", op_churn, 2, 0 },       { "exit_inflight", op_exit_inflight, 2, 0 },
};
#define NOPS (int)(sizeof(ops) / sizeof(ops[0]))
static unsigned long op_count[NOPS];

static int op_of(uint64_t t)
{
	int total = 0;
	for (int i = 0; i < NOPS; i++)
		total += ops[i].weight;
	int w = (int)((t >> 1) % (uint64_t)total);
	for (int i = 0; i < NOPS; i++) {
		if (w < ops[i].weight)
			return i;
		w -= ops[i].weight;
	}
	return 0;
}

/* Race mode: the next CPU-side token runs on a second thread while the GPU batch runs. */
static pthread_mutex_t race_lock = PTHREAD_MUTEX_INITIALIZER;
struct race_arg {
	int op;
	uint64_t token;
};
static void *race_thread(void *a)
{
	struct race_arg *ra = a;
	ops[ra->op].fn(ra->token * 0x9e3779b97f4a7c15ull);
	return NULL;
}

#ifndef EXPLORE_RACE_DEFAULT
#define EXPLORE_RACE_DEFAULT 0
#endif

static void parse_cmdline(uint64_t *seed, long *budget_ops, double *budget_secs)
{
	static char buf[4096];
	if (gp100_cmdline(buf, sizeof(buf)) == 0)
		return;
	for (char *tok = strtok(buf, " \n"); tok; tok = strtok(NULL, " \n")) {
		if (!strncmp(tok, "gp100emu.explore.seed=", 22))
			*seed = strtoull(tok + 22, NULL, 0);
		else if (!strncmp(tok, "gp100emu.explore.budget_ops=", 28))
			*budget_ops = strtol(tok + 28, NULL, 0);
		else if (!strncmp(tok, "gp100emu.explore.budget_secs=", 29))
			*budget_secs = strtod(tok + 29, NULL);
		else if (!strncmp(tok, "gp100emu.explore.wrong_shadow=", 30))
			wrong_shadow = atoi(tok + 30);
		else if (!strncmp(tok, "gp100emu.explore.no_atomics=", 28))
			atomics = atoi(tok + 28) ? 0 : atomics;
		else if (!strncmp(tok, "gp100emu.explore.atomics=", 25))
			atomics = atoi(tok + 25);
		else if (!strncmp(tok, "gp100emu.explore.verbose=", 25))
			verbose = atoi(tok + 25);
		else if (!strncmp(tok, "gp100emu.explore.race=", 22))
			race = atoi(tok + 22);
		else if (!strncmp(tok, "gp100emu.explore.ops=", 21)) {
			char *p = tok + 21;
			while (*p && ntokens < MAX_TOKENS) {
				tokens[ntokens++] = strtoull(p, &p, 16);
				if (*p == ',')
					p++;
				else
					break;
			}
		}
	}
}

int main(void)
{
	uint64_t seed = 1;
	race = EXPLORE_RACE_DEFAULT;
	long budget_ops = 400;
	double budget_secs = 60;
	ktap_plan(4);
	parse_cmdline(&seed, &budget_ops, &budget_secs);
	int replaying = ntokens > 0;
	if (!replaying) {
		if (budget_ops > MAX_TOKENS)
			budget_ops = MAX_TOKENS;
		for (long i = 0; i < budget_ops; i++)
			tokens[i] = token_of(seed, i);
		ntokens = (int)budget_ops;
	}
	signal(SIGPIPE, SIG_IGN);
	if (xwin_map()) {
		ktap_diag("no emulated GP100 found");
		return 1;
	}
	unmanaged = svm_unmanaged_window(UNMANAGED_SIZE); /* below the host's 1 TiB reach */
	if (!unmanaged) {
		ktap_diag("no room for the unmanaged window below 1 TiB");
		return 1;
	}
	/* Driver interface before SVM_INIT: SVM_BIND on a fresh fd must fail cleanly. */
	int fresh = open("/dev/dri/renderD128", O_RDWR);
	int pre = fresh >= 0 ? xsvm_bind_vram(fresh, unmanaged, PAGE) : 0;
	if (fresh >= 0)
		close(fresh);
	/* nouveau_svmm_bind answers -EINVAL while the client has no SVM (cli->svm.svmm NULL). */
	ktap_diag("SVM_BIND before SVM_INIT on a fresh fd: %d (%s), expected -EINVAL", pre,
		  pre ? strerror(-pre) : "accepted");
	/* The module watches this process's exit from the read on, so it comes before SVM_INIT. */
	struct gp100_pgd pgd;
	int have_pgd = xpgd(&pgd) == 0;
	drm = have_pgd ? xsvm_open(unmanaged, UNMANAGED_SIZE, &chid) : -1;
	pm = open("/proc/self/pagemap", O_RDONLY);
	int armed = drm >= 0 && xarm(chid, &pgd, unmanaged, UNMANAGED_SIZE);
	int regions = armed && setup_regions() == 0;
	ktap_diag("explore: seed %llu, %d operations%s, budget %.0f s, channel %d, checker armed %d, "
		  "inject %u, race %d, wrong shadow %d, atomics %d", (unsigned long long)seed, ntokens,
		  replaying ? " (replaying --ops)" : "", budget_secs, chid, armed, xrd(XC_INJECT), race,
		  wrong_shadow, atomics);
	ktap_result(armed && regions && pre == -EINVAL, "explore_setup");
	if (!armed || !regions) {
		for (int i = 2; i <= 4; i++)
			ktap_result(0, "not reached: no SVM channel");
		return ktap_exit_code();
	}

	double t0 = xnow();
	long done = 0;
	for (op_index = 0; op_index < ntokens; op_index++) {
		if (!replaying && xnow() - t0 > budget_secs)
			break;
		uint64_t t = tokens[op_index];
		int o = op_of(t);
		/* What ran, as it runs: an oops may end this process (or the guest) mid-run, and the
		 * host's minimiser needs the operations up to there. */
		printf("# EXPLORE OP %llx\n", (unsigned long long)t);
		fflush(stdout);
		uint64_t s = t * 0x9e3779b97f4a7c15ull;
		if (race && ops[o].fn == op_gpu_batch && op_index + 1 < ntokens &&
		    ops[op_of(tokens[op_index + 1])].cpu_side) {
			/* The next CPU-side operation runs on another vCPU while this batch is in
			 * flight: its effects on the shadow race with the batch's checks, so only the
			 * checker and the console judge these two; the shadow check resumes after. */
			struct race_arg ra = { op_of(tokens[op_index + 1]), tokens[op_index + 1] };
			printf("# EXPLORE OP %llx\n", (unsigned long long)tokens[op_index + 1]);
			fflush(stdout);
			pthread_mutex_lock(&race_lock);
			int wrong = wrong_shadow;
			wrong_shadow = 0;
			racing = 1;
			race_snapshot();
			race_pending = pthread_create(&race_th, NULL, race_thread, &ra) == 0;
			ops[o].fn(s);
			race_join(); /* the batch joins it; this is for a batch with no slots */
			racing = 0;
			counters[C_RACED]++;
			wrong_shadow = wrong;
			pthread_mutex_unlock(&race_lock);
			op_count[o]++;
			op_count[ra.op]++;
			op_index++;
			done += 2;
		} else {
			ops[o].fn(s);
			op_count[o]++;
			done++;
		}
		/* The CPU side is checked after every operation that changes mappings and every 8th
		 * operation (checking after each would pull every page migrated to VRAM straight
		 * back before the GPU could use it); GPU batches check their own data. */
		if (ops[o].cpu_side && ops[o].fn != op_cpu_write ? 1 : op_index % 8 == 7)
			check_cpu_all(ops[o].name);
		check_checker();
		if (findings > 20)
			break;
	}
	double dt = xnow() - t0;
	if (op_index > ntokens - 1)
		op_index = ntokens - 1;
	/* Everything that ran, for the host to minimise what happens after the last operation
	 * (an oops at process exit, a violation at the final scan). */
	printf("# EXPLORE RAN --ops ");
	for (long i = 0; i <= op_index && i < ntokens; i++)
		printf("%s%llx", i ? "," : "", (unsigned long long)tokens[i]);
	printf("\n");
	ktap_diag("explore: %ld operations in %.1f s (%.1f ops/s), %lu GPU faults reported (%.1f/s), "
		  "%d findings", done, dt, dt > 0 ? done / dt : 0.0, counters[C_FAULTS],
		  dt > 0 ? counters[C_FAULTS] / dt : 0.0, findings);
	for (int i = 0; i < NOPS; i++)
		ktap_diag("explore op %-10s %lu", ops[i].name, op_count[i]);
	for (int i = 0; i < C_COUNTERS; i++)
		ktap_diag("explore count %-26s %lu", counter_name[i], counters[i]);
	char sizes[1024] = "";
	for (int i = 1; i <= AB_SLOTS; i++)
		if (batch_sizes[i])
			snprintf(sizes + strlen(sizes), sizeof(sizes) - strlen(sizes), " %d:%lu", i, batch_sizes[i]);
	ktap_diag("explore batch sizes (slots:batches):%s", sizes);
	static const char *const bucket[HIST] = { "0", "1", "2", "3-4", "5-8", "9-16", "17-32", "33-64", ">64" };
	for (int h = 0; h < 2; h++) {
		char line[400] = "";
		for (int b = 0; b < HIST; b++)
			snprintf(line + strlen(line), sizeof(line) - strlen(line), " %s:%lu", bucket[b],
				 (h ? batch_rounds : batch_faults)[b]);
		ktap_diag("explore batches by %s:%s", h ? "replay rounds of the slowest slot" : "fault entries written", line);
	}
	check_cpu_all("the last operation");
	ktap_result(findings == 0, "explore_no_findings");

	xwr(XC_CTRL, 3);
	uint32_t viol = xrd(XC_VIOLATIONS);
	ktap_diag("checker: %u scans (%u in full), %u pages judged, %u violations, %u CPU invalidates, "
		  "%u page tables reused unread", xrd(XC_SCANS), xrd(XC_FULL_SCANS), xrd(XC_CHECKED), viol,
		  xrd(XC_CPU_INVALIDATES), xrd(XC_LEAVES_REUSED));
	/* nouveau's paths as the checker saw their PTEs: PFN maps by page size, migrations to
	 * VRAM (video-memory PTEs), clears by size, 2 MiB PTEs cleared to IS_PTE=0 only, and 2 MiB
	 * PTEs a CPU invalidate covered in part (nouveau's partial PFNCLR). */
	ktap_diag("explore nouveau PTEs mapped 4k %u 64k %u 2m %u (vram %u), cleared 4k %u 64k %u 2m %u, "
		  "2m cleared to a hazard %u, 2m partly invalidated %u", xrd(XC_MAPPED),
		  xrd(XC_MAPPED + 4), xrd(XC_MAPPED + 8), xrd(XC_MAPPED_VRAM), xrd(XC_CLEARED),
		  xrd(XC_CLEARED + 4), xrd(XC_CLEARED + 8), xrd(XC_HAZARDS), xrd(XC_PARTIAL_2M));
	ktap_result(viol == 0 && xrd(XC_CHECKED) > 0, "explore_no_pte_check_violations");
	uint32_t hazards = xrd(XC_HAZARDS);
	if (hazards)
		ktap_xfail("explore_no_pd0_cleared_2m_pte_hazard",
			   "nouveau 6.12 gp100_vmm_pd0_pfn_clear leaves IS_PTE=0 with the aperture set");
	else
		ktap_result(1, "explore_no_pd0_cleared_2m_pte_hazard");
	/* The process's page tables go away at exit while nouveau keeps the GPU PTEs until the
	 * channel is freed: disarm first (issue 17 part 1 replaces this with exit findings). */
	xwr(XC_CTRL, 2);
	return ktap_exit_code();
}
