//! UFLUSH: the flush and L2 maintenance triggers (nouveau 6.12 `nvkm/subdev/bar/g84.c`
//! `g84_bar_flush`: write 1 to 0x070000 then poll bit 1 clear; `nvkm/subdev/ltc/gf100.c`
//! `gf100_ltc_invalidate`/`gf100_ltc_flush`: write 1 to 0x070004 / 0x070010 then poll
//! bits 1:0 clear). Open-gpu-doc names them `NV_UFLUSH_FB_FLUSH`,
//! `NV_UFLUSH_L2_SYSMEM_INVALIDATE` and `NV_UFLUSH_L2_FLUSH_DIRTY`.
//!
//! The model has no write buffers or L2: every write the device takes is in memory before
//! the access returns. So a flush has nothing to wait for and completes inside the write
//! that starts it; the pending bits read 0 afterwards because the work is done. Each flush
//! is counted.

use super::Bar0Unit;

/// `NV_UFLUSH_FB_FLUSH`.
pub const FB_FLUSH: u32 = 0x070000;
/// `NV_UFLUSH_L2_SYSMEM_INVALIDATE`.
pub const L2_SYSMEM_INVALIDATE: u32 = 0x070004;
/// `NV_UFLUSH_L2_FLUSH_DIRTY`.
pub const L2_FLUSH_DIRTY: u32 = 0x070010;

/// Flush counters.
#[derive(Debug, Clone, Default)]
pub struct Uflush {
    /// Flushes done, by register (FB, L2 invalidate, L2 flush).
    pub done: [u64; 3],
}

impl Uflush {
    fn index(offset: u32) -> Option<usize> {
        match offset {
            FB_FLUSH => Some(0),
            L2_SYSMEM_INVALIDATE => Some(1),
            L2_FLUSH_DIRTY => Some(2),
            _ => None,
        }
    }

    /// Whether `offset` is one of the triggers.
    pub fn contains(offset: u32) -> bool {
        Self::index(offset).is_some()
    }
}

impl Bar0Unit for Uflush {
    fn name(&self) -> &'static str {
        "UFLUSH"
    }

    fn ranges(&self) -> Vec<std::ops::Range<u32>> {
        crate::bus::words([FB_FLUSH, L2_SYSMEM_INVALIDATE, L2_FLUSH_DIRTY])
    }
    fn read32(&mut self, offset: u32) -> Option<u32> {
        // Bit 0 (trigger) and bit 1 (outstanding) both read 0: nothing is in flight.
        Self::index(offset).map(|_| 0)
    }
    fn write32(&mut self, offset: u32, value: u32) -> bool {
        let Some(i) = Self::index(offset) else {
            return false;
        };
        if value & 1 != 0 {
            self.done[i] += 1;
        }
        true
    }
    fn reset(&mut self) {}
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_flush_is_done_when_the_write_returns() {
        let mut u = Uflush::default();
        assert!(u.write32(FB_FLUSH, 1));
        assert_eq!(u.read32(FB_FLUSH), Some(0));
        assert!(u.write32(L2_FLUSH_DIRTY, 1));
        assert_eq!(u.done, [1, 0, 1]);
        assert_eq!(u.read32(0x070008), None);
    }
}
