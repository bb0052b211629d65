//! PEXTDEV: the board straps (`NV_PEXTDEV_BOOT_0` 0x101000). nouveau 6.12 reads it in
//! `nvkm_device_ctor` (bits 22 and 6 select the crystal frequency; both clear means
//! 13.5 MHz) and for the RAMCFG strap in bits 5:2 (`nvkm/subdev/fb/base.c`,
//! `bios/ramcfg.c`), which selects the VBIOS memory-type entry. Our board: all straps 0
//! (our choice), matched by the 'M' table entry of our VBIOS.

use super::store::{reg, Access::Ro, Reg, TableUnit};

/// `NV_PEXTDEV_BOOT_0`.
pub const PEXTDEV_BOOT_0: u32 = 0x101000;

static REGS: &[Reg] = &[reg(PEXTDEV_BOOT_0, "NV_PEXTDEV_BOOT_0", 0, Ro)];

/// The strap register.
pub fn new() -> TableUnit {
    TableUnit::new("PEXTDEV", REGS)
}
