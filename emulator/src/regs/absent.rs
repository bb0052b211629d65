//! Units a Tesla P100 does not have, that nouveau nevertheless touches: answered as the
//! hardware answers an absent unit (the PRI error value, [`super::PRI_ERROR_NO_UNIT`]), by
//! design rather than because nobody decoded them, so they are not reported as gaps.
//!
//! - PDISP's VGA CRTC index/data bytes 0x6013d4/0x6013d5: `nvkm_lockvgac` in
//!   `nvkm_devinit_preinit` reads and writes them on every chip. Display is fused off on the
//!   P100 (FUSE 0x021c04 bit 0, [`super::fuse`]), so PDISP answers as an absent unit.

/// Whether `offset` belongs to a unit that is absent on this board.
pub fn contains(offset: u32) -> bool {
    // The PDISP VGA CRTC register word (byte accesses are merged into it by the device).
    offset == 0x6013d4
}
