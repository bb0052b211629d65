//! PMC, the master control unit: chip identity, unit enables, the top-level
//! interrupt status.
//!
//! Sources: nouveau 6.12 `nvkm/engine/device/base.c` (BOOT_0 decode, `nv130_chipset`),
//! `nvkm/subdev/mc/base.c` and `gp100.c` (interrupt status/enable registers).
//! envytools rnndb `pmc.xml` names the registers.

use super::Bar0Unit;

/// NV_PMC_BOOT_0: chip identification; GP100 A01 reads 0x130000a1
/// (nouveau prints "NVIDIA GP100 (130000a1)"; verified in a guest here).
pub const PMC_BOOT_0: u32 = 0x000000;
/// NV_PMC_BOOT_42 (newer chips' identity register; nouveau reads it first only
/// when BOOT_0 says "0x00000000"-style unknown: we answer BOOT_0's value).
pub const PMC_BOOT_42: u32 = 0x000a00;
/// NV_PMC_INTR(0): pending interrupt lines (read-only view of the units' lines).
pub const PMC_INTR_0: u32 = 0x000100;
/// NV_PMC_INTR_EN_SET(0) on GP100 (`gp100_mc_intr_unarm/rearm` use 0x160/0x180).
pub const PMC_INTR_EN_SET_0: u32 = 0x000160;
/// NV_PMC_INTR_EN_CLEAR(0) on GP100.
pub const PMC_INTR_EN_CLEAR_0: u32 = 0x000180;
/// NV_PMC_ENABLE: per-unit enable bits.
pub const PMC_ENABLE: u32 = 0x000200;

/// GP100's identity as BOOT_0 reports it.
pub const GP100_BOOT_0: u32 = 0x1300_00a1;

/// PMC state: the enable word and the interrupt-enable mask. The pending
/// interrupt lines themselves belong to the units that raise them and are
/// gathered by the device into [`Pmc::set_pending`].
#[derive(Debug, Clone, Default)]
pub struct Pmc {
    enable: u32,
    intr_en: u32,
    pending: u32,
}

impl Pmc {
    /// Creates PMC in its reset state.
    pub fn new() -> Self {
        Self::default()
    }

    /// Sets the level of the units' interrupt lines (a bit per unit, as in PMC_INTR_0).
    pub fn set_pending(&mut self, lines: u32) {
        self.pending = lines;
    }

    /// The interrupt condition the function's INTx/MSI follows: pending & enabled.
    pub fn irq_asserted(&self) -> bool {
        self.pending & self.intr_en != 0
    }
}

impl Bar0Unit for Pmc {
    fn name(&self) -> &'static str {
        "PMC"
    }

    fn read32(&mut self, offset: u32) -> Option<u32> {
        Some(match offset {
            PMC_BOOT_0 | PMC_BOOT_42 => GP100_BOOT_0,
            PMC_INTR_0 => self.pending,
            PMC_INTR_EN_SET_0 | PMC_INTR_EN_CLEAR_0 => self.intr_en,
            PMC_ENABLE => self.enable,
            _ => return None,
        })
    }

    fn write32(&mut self, offset: u32, value: u32) -> bool {
        match offset {
            PMC_BOOT_0 | PMC_BOOT_42 | PMC_INTR_0 => {} // read-only: writes are dropped
            PMC_INTR_EN_SET_0 => self.intr_en |= value,
            PMC_INTR_EN_CLEAR_0 => self.intr_en &= !value,
            PMC_ENABLE => self.enable = value,
            _ => return false,
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
        assert_eq!(pmc.read32(0x4), None);
        assert!(!pmc.write32(0x4, 1));
    }
}
