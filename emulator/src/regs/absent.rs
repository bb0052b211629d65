//! Units a Tesla P100 does not have, that nouveau nevertheless touches: answered as the
//! hardware answers an absent unit (the PRI error value, [`super::PRI_ERROR_NO_UNIT`]), by
//! design rather than because nobody decoded them, so they are not reported as gaps.
//!
//! - PDISP's VGA CRTC index/data bytes 0x6013d4/0x6013d5: `nvkm_lockvgac` in
//!   `nvkm_devinit_preinit` reads and writes them on every chip. Display is fused off on the
//!   P100 (FUSE 0x021c04 bit 0, [`super::fuse`]), so PDISP answers as an absent unit.

use super::{Bar0Unit, PRI_ERROR_NO_UNIT};

/// The PDISP VGA CRTC register word (byte accesses are merged into it by the device).
pub const PDISP_VGA_CRTC: u32 = 0x6013d4;

/// Whether `offset` belongs to a unit that is absent on this board.
pub fn contains(offset: u32) -> bool {
    offset == PDISP_VGA_CRTC
}

/// The absent units: every read answers the PRI error, every write is taken and dropped.
#[derive(Debug, Clone, Default)]
pub struct Absent;

impl Bar0Unit for Absent {
    fn name(&self) -> &'static str {
        "ABSENT"
    }
    fn ranges(&self) -> Vec<std::ops::Range<u32>> {
        crate::bus::block(PDISP_VGA_CRTC, 4)
    }
    fn read32(&mut self, _offset: u32) -> Option<u32> {
        Some(PRI_ERROR_NO_UNIT)
    }
    fn write32(&mut self, _offset: u32, _value: u32) -> bool {
        true
    }
    fn reset(&mut self) {}
}
