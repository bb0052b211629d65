// SPDX-License-Identifier: GPL-2.0
/*
 * gp100emu_pgd: a TEST-ONLY module for gp100emu's guest tests. Reading the debugfs file
 * /sys/kernel/debug/gp100emu_pgd gives the reading process's top-level page-table address and
 * how this kernel encodes special swap entries,
 * "pgd 0x<physical> la57 <0|1> swp_migration_read <type>\n", which the test hands to the
 * emulated GPU's PTE checker so it can walk the process's CPU page tables in guest RAM and
 * recognise migration, device-private and device-exclusive entries. It changes nothing; never load it
 * outside a test guest (it discloses a physical address).
 */
#include <linux/debugfs.h>
#include <linux/module.h>
#include <linux/sched.h>
#include <linux/seq_file.h>
#include <linux/mm_types.h>
#include <linux/swap.h>
#include <asm/pgtable.h>
#include <asm/io.h>

static int gp100emu_pgd_show(struct seq_file *m, void *unused)
{
	struct mm_struct *mm = current->mm;

	if (!mm)
		return -EINVAL;
#ifdef CONFIG_MIGRATION
	const int migration_read = SWP_MIGRATION_READ;
#else
	const int migration_read = -1;
#endif
	seq_printf(m, "pgd 0x%llx la57 %d swp_migration_read %d\n", (unsigned long long)__pa(mm->pgd),
		   pgtable_l5_enabled() ? 1 : 0, migration_read);
	return 0;
}
DEFINE_SHOW_ATTRIBUTE(gp100emu_pgd);

static struct dentry *gp100emu_pgd_file;

static int __init gp100emu_pgd_init(void)
{
	gp100emu_pgd_file = debugfs_create_file("gp100emu_pgd", 0400, NULL, NULL, &gp100emu_pgd_fops);
	return 0;
}

static void __exit gp100emu_pgd_exit(void)
{
	debugfs_remove(gp100emu_pgd_file);
}

module_init(gp100emu_pgd_init);
module_exit(gp100emu_pgd_exit);
MODULE_LICENSE("GPL");
MODULE_DESCRIPTION("gp100emu test helper: the reading process's page-table root");
