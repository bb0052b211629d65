//! PMC, the master control unit: chip identity, unit enables, the top-level
//! interrupt status.
//!
//! Sources: nouveau 6.12 `nvkm/engine/device/base.c` (BOOT_0 decode, `nv130_chipset`),
//! `nvkm/subdev/mc/base.c` and `gp100.c` (interrupt status/enable registers).
//! envytools rnndb `pmc.xml` names the registers.

use super::Bar0Unit;

/// First offset of PMC's block (nouveau `nvkm_mc`: 0x000000..0x000fff).
pub const PMC_BASE: u32 = 0x000000;
/// Size of the block.
pub const PMC_SIZE: u32 = 0x1000;

/// NV_PMC_BOOT_0: chip identification; GP100 A01 reads 0x130000a1
/// (nouveau prints "NVIDIA GP100 (130000a1)"; verified in a guest here).
pub const PMC_BOOT_0: u32 = 0x000000;
/// NV_PMC_BOOT_42 (newer chips' identity register; nouveau reads it first only
/// when BOOT_0 says "0x00000000"-style unknown: we answer BOOT_0's value).
pub const PMC_BOOT_42: u32 = 0x000a00;
/// NV_PMC_BOOT_1: endianness and vGPU bits; 0 on a little-endian, bare-metal GPU
/// (nouveau `nvkm_device_endianness` reads it and wants 0).
pub const PMC_BOOT_1: u32 = 0x000004;
/// NV_PMC_INTR(leaf): pending interrupt lines, leaf 0 stall and leaf 1 non-stall
/// (nouveau `gp100_mc` has `intr_nonstall`; `nv04_mc_intr_stat` reads 0x100 + 4 * leaf).
pub const PMC_INTR_0: u32 = 0x000100;
/// NV_PMC_INTR_EN(leaf): the current enable mask of each leaf (read-only view).
pub const PMC_INTR_EN_0: u32 = 0x000140;
/// NV_PMC_INTR_EN_SET(leaf) on GP100 (`gp100_mc_intr_allow`/`rearm` write 0x160 + 4 * leaf).
pub const PMC_INTR_EN_SET_0: u32 = 0x000160;
/// NV_PMC_INTR_EN_CLEAR(leaf) on GP100 (`gp100_mc_intr_block`/`unarm` write 0x180 + 4 * leaf).
pub const PMC_INTR_EN_CLEAR_0: u32 = 0x000180;
/// NV_PMC_ENABLE: per-unit enable bits (`nv04_mc_device_disable/enable` clear and set them
/// to reset a unit; `nv50_mc_init` writes all ones).
pub const PMC_ENABLE: u32 = 0x000200;
/// NV_PMC_ENABLE_PB: PBDMAs in use (`gk104_fifo_init_pbdmas` writes the mask).
pub const PMC_ENABLE_PB: u32 = 0x000204;
/// Interrupt leaves (stall, non-stall).
pub const LEAVES: usize = 2;

/// GP100's identity as BOOT_0 reports it.
pub const GP100_BOOT_0: u32 = 0x1300_00a1;

/// PMC state: the enable words and the interrupt-enable masks. The pending interrupt
/// lines themselves belong to the units that raise them and are gathered by the device
/// into [`Pmc::set_pending`].
#[derive(Debug, Clone, Default)]
pub struct Pmc {
    enable: u32,
    enable_pb: u32,
    intr_en: [u32; LEAVES],
    pending: [u32; LEAVES],
    /// ENABLE bits that went from 1 to 0 since the last [`Pmc::take_resets`].
    resets: u32,
}

impl Pmc {
    /// Creates PMC in its reset state.
    pub fn new() -> Self {
        Self::default()
    }

    /// Sets the level of the units' stall interrupt lines (a bit per unit, as in PMC_INTR_0).
    pub fn set_pending(&mut self, lines: u32) {
        self.pending[0] = lines;
    }

    /// Sets the level of the non-stall lines (PMC_INTR_1).
    pub fn set_pending_nonstall(&mut self, lines: u32) {
        self.pending[1] = lines;
    }

    /// The interrupt condition the function's INTx/MSI follows: pending & enabled on
    /// either leaf.
    pub fn irq_asserted(&self) -> bool {
        (0..LEAVES).any(|l| self.pending[l] & self.intr_en[l] != 0)
    }

    /// The ENABLE bits that were cleared (units put into reset) since the last call: the
    /// device resets those units' state.
    pub fn take_resets(&mut self) -> u32 {
        std::mem::take(&mut self.resets)
    }

    /// Whether the unit with ENABLE bit `mask` is out of reset.
    pub fn enabled(&self, mask: u32) -> bool {
        self.enable & mask == mask
    }

    fn leaf(offset: u32, base: u32) -> Option<usize> {
        let l = offset.checked_sub(base)? / 4;
        (offset.is_multiple_of(4) && (l as usize) < LEAVES).then_some(l as usize)
    }
}

impl Bar0Unit for Pmc {
    fn name(&self) -> &'static str {
        "PMC"
    }

    fn ranges(&self) -> Vec<std::ops::Range<u32>> {
        crate::bus::block(PMC_BASE, PMC_SIZE)
    }

    fn read32(&mut self, offset: u32) -> Option<u32> {
        Some(match offset {
            PMC_BOOT_0 | PMC_BOOT_42 => GP100_BOOT_0,
            PMC_BOOT_1 => 0,
            PMC_ENABLE => self.enable,
            PMC_ENABLE_PB => self.enable_pb,
            o => {
                if let Some(l) = Self::leaf(o, PMC_INTR_0) {
                    self.pending[l]
                } else if let Some(l) = Self::leaf(o, PMC_INTR_EN_0)
                    .or_else(|| Self::leaf(o, PMC_INTR_EN_SET_0))
                    .or_else(|| Self::leaf(o, PMC_INTR_EN_CLEAR_0))
                {
                    self.intr_en[l]
                } else {
                    return None;
                }
            }
        })
    }

    fn write32(&mut self, offset: u32, value: u32) -> bool {
        match offset {
            // Read-only identity: writes are dropped.
            PMC_BOOT_0 | PMC_BOOT_42 | PMC_BOOT_1 => {}
            PMC_ENABLE => {
                self.resets |= self.enable & !value;
                self.enable = value;
            }
            PMC_ENABLE_PB => self.enable_pb = value,
            o => {
                if let Some(l) = Self::leaf(o, PMC_INTR_EN_SET_0) {
                    self.intr_en[l] |= value;
                } else if let Some(l) = Self::leaf(o, PMC_INTR_EN_CLEAR_0) {
                    self.intr_en[l] &= !value;
                } else if Self::leaf(o, PMC_INTR_0)
                    .or_else(|| Self::leaf(o, PMC_INTR_EN_0))
                    .is_some()
                {
                    // Status and enable views are read-only on GP100.
                } else {
                    return false;
                }
            }
        }
        true
    }

    fn reset(&mut self) {
        *self = Self::default();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn boot0_identifies_gp100_and_ignores_writes() {
        let mut pmc = Pmc::new();
        assert_eq!(pmc.read32(PMC_BOOT_0), Some(0x1300_00a1));
        assert!(pmc.write32(PMC_BOOT_0, 0));
        assert_eq!(pmc.read32(PMC_BOOT_0), Some(0x1300_00a1));
    }

    #[test]
    fn interrupt_follows_pending_and_enable() {
        let mut pmc = Pmc::new();
        pmc.set_pending(0x200);
        assert!(!pmc.irq_asserted(), "disabled line must not assert");
        pmc.write32(PMC_INTR_EN_SET_0, 0x200);
        assert!(pmc.irq_asserted());
        assert_eq!(pmc.read32(PMC_INTR_0), Some(0x200));
        pmc.write32(PMC_INTR_EN_CLEAR_0, 0x200);
        assert!(!pmc.irq_asserted());
        pmc.write32(PMC_INTR_EN_SET_0, 0x200);
        pmc.reset();
        assert!(!pmc.irq_asserted());
        assert_eq!(pmc.read32(PMC_INTR_EN_SET_0), Some(0));
    }

    #[test]
    fn unknown_offset_is_not_decoded() {
        let mut pmc = Pmc::new();
        assert_eq!(pmc.read32(0x8), None);
        assert!(!pmc.write32(0x8, 1));
        assert_eq!(pmc.read32(0x108), None, "only two leaves");
    }

    #[test]
    fn boot1_is_little_endian_bare_metal() {
        let mut pmc = Pmc::new();
        assert_eq!(pmc.read32(PMC_BOOT_1), Some(0));
    }

    #[test]
    fn nonstall_leaf_has_its_own_enable() {
        let mut pmc = Pmc::new();
        pmc.set_pending_nonstall(0x4);
        pmc.write32(PMC_INTR_EN_SET_0, 0x4);
        assert!(!pmc.irq_asserted(), "leaf 0 enable does not cover leaf 1");
        pmc.write32(PMC_INTR_EN_SET_0 + 4, 0x4);
        assert!(pmc.irq_asserted());
        assert_eq!(pmc.read32(PMC_INTR_0 + 4), Some(0x4));
        assert_eq!(pmc.read32(PMC_INTR_EN_0 + 4), Some(0x4));
        pmc.write32(PMC_INTR_EN_CLEAR_0 + 4, !0);
        assert!(!pmc.irq_asserted());
    }

    #[test]
    fn clearing_enable_bits_reports_unit_resets() {
        let mut pmc = Pmc::new();
        pmc.write32(PMC_ENABLE, 0xffff_ffff);
        assert_eq!(pmc.take_resets(), 0);
        // nvkm_mc_reset: mask off, then on, then read back.
        pmc.write32(PMC_ENABLE, 0xffff_feff);
        pmc.write32(PMC_ENABLE, 0xffff_ffff);
        assert_eq!(pmc.read32(PMC_ENABLE), Some(0xffff_ffff));
        assert_eq!(pmc.take_resets(), 0x100);
        assert_eq!(pmc.take_resets(), 0);
        assert!(pmc.enabled(0x100));
    }
}
