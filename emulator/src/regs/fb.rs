//! PFB and FBPA registers nouveau programs at FB init that are plain storage in the model
//! (docs/probe-plan.md §2.10). Memory sizing lives in [`super::top`]; the MMU control and
//! invalidate registers (0x100c80..) in [`crate::mmu::unit`].
//!
//! Sources: nouveau 6.12 `nvkm/subdev/fb/gf100.c` (`gf100_fb_sysmem_flush_page_init`:
//! 0x100c10), `gm200.c` (`gm200_fb_init`: 0x100cc4/0x100cc8/0x100ccc), `gp100.c`
//! (`gp100_fb_init_unkn` copies 0x100c80/cc4/cc8/ccc to 0x1fac80.., `gp100_fb_init_remapper`
//! clears 0x100c14 bit 18), `ramgp100.c` (`gp100_ram_init`: 0x9a065c, 0x9a0584, 0x10ecc0,
//! 0x9a0160). Reset values are our choice (0): NVIDIA does not publish them for GP100.
//! The model's memory needs no training or remapping, so these have no effect on it.

use super::store::{reg, Access::Rw, Reg, TableUnit};

static REGS: &[Reg] = &[
    reg(0x100c10, "PFB_NISO_FLUSH_SYSMEM_ADDR", 0, Rw),
    reg(0x100c14, "PFB_remapper (gp100_fb_init_remapper)", 0, Rw),
    reg(
        0x100cc4,
        "PFB_PRI_MMU_... (gm200_fb_init, bits 18:17)",
        0,
        Rw,
    ),
    reg(0x100cc8, "PFB_PRI_MMU_WR (mmu_wr buffer >> 8)", 0, Rw),
    reg(0x100ccc, "PFB_PRI_MMU_RD (mmu_rd buffer >> 8)", 0, Rw),
    reg(0x1fac80, "copy of 0x100c80 (gp100_fb_init_unkn)", 0, Rw),
    reg(0x1facc4, "copy of 0x100cc4", 0, Rw),
    reg(0x1facc8, "copy of 0x100cc8", 0, Rw),
    reg(0x1faccc, "copy of 0x100ccc", 0, Rw),
    reg(0x10ecc0, "FBPA broadcast (gp100_ram_init writes ~0)", 0, Rw),
    reg(0x9a0160, "FBPA (gp100_ram_init sets bit 4)", 0, Rw),
    reg(0x9a0584, "FBPA (gp100_ram_init clears 0x11000000)", 0, Rw),
    reg(
        0x9a065c,
        "FBPA (gp100_ram_init, rammap entries only)",
        0,
        Rw,
    ),
];

/// The FB storage registers.
pub fn new() -> TableUnit {
    TableUnit::new("PFB", REGS)
}
