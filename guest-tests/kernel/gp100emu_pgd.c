// SPDX-License-Identifier: GPL-2.0
/*
 * gp100emu_pgd: a TEST-ONLY module for gp100emu's guest tests. Never load it outside a test
 * guest: it discloses a physical address.
 *
 * Reading the debugfs file /sys/kernel/debug/gp100emu_pgd gives the reading process's top-level
 * page-table address and how this kernel encodes special swap entries,
 * "pgd 0x<physical> la57 <0|1> swp_migration_read <type> watched <0|1> ranges <0|1>\n" (ranges:
 * this mm's CPU invalidates are reported, see below), which the test hands
 * to the emulated GPU's PTE checker so it can walk the process's CPU page tables in guest RAM
 * and recognise migration, device-private and device-exclusive entries.
 *
 * The first read by a process also starts watching its mm's teardown (a per-mm registry): the
 * module registers an mmu_notifier with a release op on the mm and tells the emulated GPU
 * (its vendor window in BAR0, emulator/src/window/mod.rs: CHK_MM_WATCH). exit_mmap() calls
 * mmu_notifier_release() before unmap_vmas() frees the pages and free_pgtables() the page
 * tables (mm/mmap.c); from the release op the module writes CHK_MM_EXIT, so the checker stops
 * walking those page tables and reports every GPU mapping still valid over the dying mm as
 * stale. mmu_notifier_release() calls the subscribers' release ops in list order, newest
 * first (__mmu_notifier_register adds with hlist_add_head_rcu), so a process that reads this
 * file BEFORE DRM_NOUVEAU_SVM_INIT has its watch called after nouveau's notifier: by then any
 * release handling of the driver's has run. "watched 0" means the watch could not be set up
 * (no emulated GP100, a page-table root above 2^44, or no memory), "watched 2" that it was
 * refused because the mm already had an mmu_notifier (the read came after SVM_INIT, say, so
 * the order above does not hold); the reason is logged.
 *
 * The same notifier reports every change of the mm's CPU page tables: its invalidate_range_end
 * op (called once the kernel has changed the entries over [start, end), before it frees the
 * old pages or page tables) writes the range to CHK_INVAL_* and the root to CHK_INVAL_ROOT,
 * then reads the window back so the device has judged the range before the kernel goes on.
 * The checker then judges only what changed at each GPU flush (the GPU side it sees itself)
 * and the GPU PTEs over each reported range, instead of the whole space every time; a GPU
 * mapping the driver failed to invalidate is found right at the invalidate. CHK_MM_RANGES
 * tells the device these reports come. Ranges of several CPUs are serialised by a spinlock
 * (the op may run in atomic context, so no mutex).
 *
 * Parameters (the suites pass the kernel command line's gp100emu_pgd.* to finit_module):
 * ranges=0 reports no invalidates, so every scan is full (the checker as it was before
 * scanning by change); full_every=N makes one scan in N full (1: every scan; 0: the device's
 * default), the cross-check for CPU changes no notifier announced.
 */
#include <linux/debugfs.h>
#include <linux/io.h>
#include <linux/list.h>
#include <linux/mm_types.h>
#include <linux/mmu_notifier.h>
#include <linux/module.h>
#include <linux/mutex.h>
#include <linux/pci.h>
#include <linux/sched.h>
#include <linux/seq_file.h>
#include <linux/slab.h>
#include <linux/swap.h>
#include <asm/pgtable.h>

/* gp100emu's vendor window: BAR0 + 0xff0000, 4 KiB (emulator/src/window/mod.rs). */
#define GP100EMU_VENDOR 0x10de
#define GP100EMU_DEVICE 0x15f8
#define WINDOW_BASE 0xff0000
#define WINDOW_SIZE 0x1000
#define WINDOW_ID 0x000
#define WINDOW_ID_VALUE 0x4750454d
#define CHK_MM_WATCH 0x2ac
#define CHK_MM_EXIT 0x2b0
#define CHK_MM_RANGES 0x2d8
#define CHK_INVAL_START_LO 0x2dc
#define CHK_INVAL_START_HI 0x2e0
#define CHK_INVAL_END_LO 0x2e4
#define CHK_INVAL_END_HI 0x2e8
#define CHK_INVAL_ROOT 0x2ec
#define CHK_FULL_EVERY 0x2f0

static bool ranges = true;
module_param(ranges, bool, 0444);
MODULE_PARM_DESC(ranges, "report CPU invalidates to the checker, so it scans by change (default 1)");
static unsigned int full_every;
module_param(full_every, uint, 0444);
MODULE_PARM_DESC(full_every, "the checker scans in full one scan in N (0: the device's default)");

struct gp100emu_watch {
	struct mmu_notifier mn;
	struct list_head node;
	struct mm_struct *mm;
	u64 root;
	bool put;
};

static DEFINE_MUTEX(watch_lock);
static DEFINE_SPINLOCK(inval_lock);
static LIST_HEAD(watches);
static void __iomem *window;
static struct pci_dev *gpu;

/* One write to the window, then a read so the device has taken it before we go on. */
static void window_write(u32 reg, u32 value)
{
	if (!window)
		return;
	writel(value, window + reg);
	(void)readl(window + WINDOW_ID);
}

/* Called with watch_lock held; drops the registry's reference (frees after an SRCU grace). */
static void watch_put(struct gp100emu_watch *w)
{
	if (w->put)
		return;
	w->put = true;
	list_del(&w->node);
	mmu_notifier_put(&w->mn);
}

static void gp100emu_mm_release(struct mmu_notifier *mn, struct mm_struct *mm)
{
	struct gp100emu_watch *w = container_of(mn, struct gp100emu_watch, mn);

	window_write(CHK_MM_EXIT, (u32)(w->root >> 12));
	mutex_lock(&watch_lock);
	watch_put(w);
	mutex_unlock(&watch_lock);
}

/* The CPU entries over [range->start, range->end) have changed: tell the checker, and wait
 * (the read back) until it has judged the GPU mappings there. */
static void gp100emu_mm_invalidate_end(struct mmu_notifier *mn,
				       const struct mmu_notifier_range *range)
{
	struct gp100emu_watch *w = container_of(mn, struct gp100emu_watch, mn);
	unsigned long flags;

	if (!window || !ranges)
		return;
	spin_lock_irqsave(&inval_lock, flags);
	writel(lower_32_bits(range->start), window + CHK_INVAL_START_LO);
	writel(upper_32_bits(range->start), window + CHK_INVAL_START_HI);
	writel(lower_32_bits(range->end), window + CHK_INVAL_END_LO);
	writel(upper_32_bits(range->end), window + CHK_INVAL_END_HI);
	writel((u32)(w->root >> 12), window + CHK_INVAL_ROOT);
	(void)readl(window + WINDOW_ID);
	spin_unlock_irqrestore(&inval_lock, flags);
}

static void gp100emu_mm_free(struct mmu_notifier *mn)
{
	kfree(container_of(mn, struct gp100emu_watch, mn));
}

static const struct mmu_notifier_ops gp100emu_mm_ops = {
	.release = gp100emu_mm_release,
	.invalidate_range_end = gp100emu_mm_invalidate_end,
	.free_notifier = gp100emu_mm_free,
};

/* Watches the teardown of `mm` (page-table root `root`) unless it is watched already.
 * Returns 1 if watched, 0 if it cannot be, 2 if refused because the mm has had another
 * mmu_notifier first (its release op would then run after ours, see the top). */
static int watch_mm(struct mm_struct *mm, u64 root)
{
	struct gp100emu_watch *w;
	int ok = 0;

	if (!window)
		return 0;
	if (root >> 44) {
		pr_warn("gp100emu_pgd: page-table root %#llx does not fit the window's 32-bit page number; exit not watched\n",
			(unsigned long long)root);
		return 0;
	}
	mutex_lock(&watch_lock);
	list_for_each_entry(w, &watches, node) {
		if (w->mm == mm) {
			ok = 1;
			goto out;
		}
	}
	if (mm_has_notifiers(mm)) {
		pr_warn("gp100emu_pgd: pid %d already has an mmu_notifier (read this file before DRM_NOUVEAU_SVM_INIT); exit not watched\n",
			task_pid_nr(current));
		ok = 2;
		goto out;
	}
	w = kzalloc(sizeof(*w), GFP_KERNEL);
	if (!w)
		goto out;
	w->mm = mm;
	w->root = root;
	w->mn.ops = &gp100emu_mm_ops;
	if (mmu_notifier_register(&w->mn, mm)) {
		pr_warn("gp100emu_pgd: mmu_notifier_register failed; exit not watched\n");
		kfree(w);
		goto out;
	}
	list_add(&w->node, &watches);
	window_write(CHK_MM_WATCH, (u32)(root >> 12));
	if (ranges)
		window_write(CHK_MM_RANGES, (u32)(root >> 12));
	ok = 1;
out:
	mutex_unlock(&watch_lock);
	return ok;
}

static int gp100emu_pgd_show(struct seq_file *m, void *unused)
{
	struct mm_struct *mm = current->mm;
	u64 root;
	int watched;

	if (!mm)
		return -EINVAL;
#ifdef CONFIG_MIGRATION
	const int migration_read = SWP_MIGRATION_READ;
#else
	const int migration_read = -1;
#endif
	root = __pa(mm->pgd);
	watched = watch_mm(mm, root);
	seq_printf(m, "pgd 0x%llx la57 %d swp_migration_read %d watched %d ranges %d\n",
		   (unsigned long long)root, pgtable_l5_enabled() ? 1 : 0, migration_read, watched,
		   watched == 1 && ranges);
	return 0;
}
DEFINE_SHOW_ATTRIBUTE(gp100emu_pgd);

static struct dentry *gp100emu_pgd_file;

/* Maps the emulated GP100's vendor window, if there is one whose window answers. */
static void find_window(void)
{
	gpu = pci_get_device(GP100EMU_VENDOR, GP100EMU_DEVICE, NULL);
	if (!gpu) {
		pr_info("gp100emu_pgd: no emulated GP100; process exits are not watched\n");
		return;
	}
	if (pci_resource_len(gpu, 0) < WINDOW_BASE + WINDOW_SIZE)
		goto fail;
	window = ioremap(pci_resource_start(gpu, 0) + WINDOW_BASE, WINDOW_SIZE);
	if (window && readl(window + WINDOW_ID) == WINDOW_ID_VALUE)
		return;
	if (window)
		iounmap(window);
	window = NULL;
fail:
	pr_warn("gp100emu_pgd: %s has no gp100emu vendor window; process exits are not watched\n",
		pci_name(gpu));
	pci_dev_put(gpu);
	gpu = NULL;
}

static int __init gp100emu_pgd_init(void)
{
	find_window();
	if (window && full_every)
		window_write(CHK_FULL_EVERY, full_every);
	gp100emu_pgd_file = debugfs_create_file("gp100emu_pgd", 0400, NULL, NULL, &gp100emu_pgd_fops);
	return 0;
}

static void __exit gp100emu_pgd_exit(void)
{
	struct gp100emu_watch *w, *n;

	debugfs_remove(gp100emu_pgd_file);
	mutex_lock(&watch_lock);
	list_for_each_entry_safe(w, n, &watches, node)
		watch_put(w);
	mutex_unlock(&watch_lock);
	/* Every free_notifier has run before the module's text goes away. */
	mmu_notifier_synchronize();
	if (window)
		iounmap(window);
	pci_dev_put(gpu);
}

module_init(gp100emu_pgd_init);
module_exit(gp100emu_pgd_exit);
MODULE_LICENSE("GPL");
MODULE_DESCRIPTION("gp100emu test helper: the reading process's page-table root, and its exit");
