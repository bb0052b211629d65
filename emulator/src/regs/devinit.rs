//! The "devinit done" status nouveau checks to decide whether to post the GPU:
//! `gf100_devinit_preinit` posts unless BAR0 + 0x2240c bit 1 is set (docs/probe-plan.md §2.6).
//! Our device comes out of reset with its memory and clocks ready (there is nothing to post in
//! a model), so the bit reads 1: nouveau then runs no VBIOS scripts and uploads nothing to a
//! PMU we do not have.

use super::Bar0Unit;

/// The status register.
pub const DEVINIT_STATUS: u32 = 0x02240c;
/// Bit 1: devinit has run.
pub const DEVINIT_DONE: u32 = 1 << 1;

/// The status register (read-only).
#[derive(Debug, Clone, Default)]
pub struct Devinit;

impl Bar0Unit for Devinit {
    fn name(&self) -> &'static str {
        "DEVINIT"
    }

    fn ranges(&self) -> Vec<std::ops::Range<u32>> {
        crate::bus::block(DEVINIT_STATUS, 4)
    }

    fn read32(&mut self, offset: u32) -> Option<u32> {
        (offset == DEVINIT_STATUS).then_some(DEVINIT_DONE)
    }

    fn write32(&mut self, offset: u32, _value: u32) -> bool {
        offset == DEVINIT_STATUS
    }

    fn reset(&mut self) {}
}
