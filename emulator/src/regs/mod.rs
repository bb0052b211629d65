//! The BAR0 register file: one module per hardware unit, each with its table of
//! offsets at the top and the source of every fact beside it.
//!
//! Every unit implements [`Bar0Unit`] (a `bus::Unit` without context); the device's map
//! routes a BAR0 offset to the unit that decodes it. An offset no unit decodes answers
//! [`PRI_ERROR_NO_UNIT`], as GP100 does for a register behind no PRI station.

pub mod absent;
pub mod devinit;
pub mod fb;
pub mod fuse;
pub mod gr;
pub mod ltc;
pub mod pbus;
pub mod pci_mirror;
pub mod pextdev;
pub mod pmc;
pub mod pmgr;
pub mod pramin;
pub mod prom;
pub mod ptimer;
pub mod store;
pub mod therm;
pub mod top;
pub mod uflush;

/// The value a BAR0 read returns when no unit decodes the offset.
///
/// NVIDIA GPUs answer reads that fail on the PRI bus with a value whose top 12
/// bits are 0xbad (open-gpu-kernel-modules: `GPU_READ_PRI_ERROR_MASK` 0xfff00000,
/// `GPU_READ_PRI_ERROR_CODE` 0xbad00000); 0xbadf1100 is the value seen on Pascal
/// boards for registers of absent units, so that is what we answer.
pub const PRI_ERROR_NO_UNIT: u32 = 0xbadf_1100;

/// Mask and code by which a driver recognises a PRI error read.
pub const PRI_ERROR_MASK: u32 = 0xfff0_0000;
/// See [`PRI_ERROR_MASK`].
pub const PRI_ERROR_CODE: u32 = 0xbad0_0000;

/// The registers a driver's interrupt handler touches whatever raised the interrupt, and
/// which no unit's state depends on: nouveau 6.12's `nvkm_intr` (`nvkm/core/intr.c`) blocks
/// every leaf (`gp100_mc_intr_unarm`, PMC INTR_EN_CLEAR), reads the pending words
/// (PMC INTR), checks that the chip is still there (`nvkm_rd32(device, 0x000000)`, BOOT_0),
/// re-arms the leaves (`gp100_mc_intr_rearm`, INTR_EN_SET) and re-arms MSI
/// (`gp100_pci_msi_rearm`). Such an access does not end a driver's poll running on
/// another CPU (see `timing::PollDetector`): the value a poll waits on cannot change by it.
pub fn services_interrupts(offset: u32) -> bool {
    use pmc::{
        LEAVES, PMC_BOOT_0, PMC_INTR_0, PMC_INTR_EN_0, PMC_INTR_EN_CLEAR_0, PMC_INTR_EN_SET_0,
    };
    let leaf =
        |base: u32| (base..base + 4 * LEAVES as u32).contains(&offset) && offset.is_multiple_of(4);
    offset == PMC_BOOT_0
        || offset == pci_mirror::PCI_MSI_REARM
        || leaf(PMC_INTR_0)
        || leaf(PMC_INTR_EN_0)
        || leaf(PMC_INTR_EN_SET_0)
        || leaf(PMC_INTR_EN_CLEAR_0)
}

pub use crate::bus::Bar0Unit;
