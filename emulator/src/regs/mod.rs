//! The BAR0 register file: one module per hardware unit, each with its table of
//! offsets at the top and the source of every fact beside it.
//!
//! Every unit implements [`Bar0Unit`]; [`crate::device::Device`] routes a BAR0
//! offset to the unit that decodes it. An offset no unit decodes answers
//! [`PRI_ERROR_NO_UNIT`], as GP100 does for a register behind no PRI station.

pub mod absent;
pub mod devinit;
pub mod fb;
pub mod fuse;
pub mod gr;
pub mod ltc;
pub mod pbus;
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
pub mod window;

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

/// A unit of the BAR0 register file, accessed in aligned 32-bit words.
///
/// `offset` is the full BAR0 offset (units compare it against their own table).
/// A unit returns `None`/`false` for an offset inside its range that it does not
/// decode; the device then answers like hardware does for a missing register and
/// logs the offset once.
pub trait Bar0Unit {
    /// The unit's name as NVIDIA/nouveau call it (for logs).
    fn name(&self) -> &'static str;
    /// Reads the 32-bit register at `offset`.
    fn read32(&mut self, offset: u32) -> Option<u32>;
    /// Writes the 32-bit register at `offset`; `false` when not decoded.
    fn write32(&mut self, offset: u32, value: u32) -> bool;
    /// Puts every register back to its documented reset value.
    fn reset(&mut self);
}
