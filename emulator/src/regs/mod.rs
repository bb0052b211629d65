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

pub use crate::bus::Bar0Unit;
