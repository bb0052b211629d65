//! LTC, the L2 cache: the counts nouveau reads at one-time init and the zero-bandwidth-clear
//! table it fills (docs/probe-plan.md §2.12).
//!
//! Sources: nouveau 6.12 `nvkm/subdev/ltc/gp100.c` (`gp100_ltc_oneinit`: `ltc_nr` = 0x12006c,
//! `lts_nr` = 0x17e280 >> 28; `gp100_ltc_intr` reads 0x0001c0), `gm107.c`
//! (`gm107_ltc_zbc_clear_color/depth`: index in 0x17e338 bits 3:0, data 0x17e33c..0x17e34c).
//! Counts (our choice, consistent with [`super::top`]): two LTCs per FBP, 8 in all, and
//! 2 slices per LTC. The L2 itself is not modelled: the device's memory is
//! always coherent, so flushes ([`super::uflush`]) complete at once.

use super::store::{
    reg,
    Access::{Ro, Rw},
    Reg, TableUnit,
};
use super::top::{FBPS, LTC_PER_FBP};

/// Slices per LTC (our choice).
pub const LTS_PER_LTC: u32 = 2;

// 0x0001c0, which `gp100_ltc_intr` reads, is inside PMC's block (0x000000..0x001000), so the
// BAR0 map gives it to PMC, which does not decode it (a PRI error read, logged as undecoded).
// It used to be listed here too, shadowed by PMC; the map refuses such overlaps.
static REGS: &[Reg] = &[
    reg(0x12006c, "LTC count", FBPS * LTC_PER_FBP, Ro),
    reg(
        0x17e280,
        "LTS count per LTC in 31:28",
        LTS_PER_LTC << 28,
        Ro,
    ),
    reg(0x17e338, "ZBC table index", 0, Rw),
    reg(0x17e33c, "ZBC colour 0", 0, Rw),
    reg(0x17e340, "ZBC colour 1", 0, Rw),
    reg(0x17e344, "ZBC colour 2", 0, Rw),
    reg(0x17e348, "ZBC colour 3", 0, Rw),
    reg(0x17e34c, "ZBC depth", 0, Rw),
];

/// The LTC registers.
pub fn new() -> TableUnit {
    TableUnit::new("LTC", REGS)
}
