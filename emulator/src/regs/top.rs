//! PTOP: the unit counts nouveau reads to size the framebuffer and L2 (docs/probe-plan.md §2.7,
//! §2.10; nvkm/subdev/fb/ramgf100.c, ramgm200.c; the same offsets are named in open-gpu-doc's
//! dev_top: NUM_FBPS 0x022438, NUM_LTC_PER_FBP 0x022450, NUM_FBPA_PER_FBP 0x022458).
//!
//! Our part (our choice): 4 FBPs × 2 FBPAs, 2 LTCs per FBP; with [`FBPA_MIB`] per FBPA that is
//! the device's 4 GiB of video memory.
//!
//! NOT done yet: the DEVICE_INFO table at 0x022700 (docs/probe-plan.md §4), which tells
//! nouveau which engines exist.

use super::Bar0Unit;

/// NUM_FBPS.
pub const TOP_NUM_FBPS: u32 = 0x022438;
/// NUM_LTC_PER_FBP.
pub const TOP_NUM_LTC_PER_FBP: u32 = 0x022450;
/// NUM_FBPA_PER_FBP.
pub const TOP_NUM_FBPA_PER_FBP: u32 = 0x022458;

/// FBPs.
pub const FBPS: u32 = 4;
/// LTCs per FBP.
pub const LTC_PER_FBP: u32 = 2;
/// FBPAs per FBP.
pub const FBPA_PER_FBP: u32 = 2;
/// MiB of memory behind each FBPA.
pub const FBPA_MIB: u32 = 512;

/// Each FBPA's memory size register, `0x90020c + fbpa * 0x4000`, in MiB
/// (`gp100_ram_probe_fbpa`).
pub const FBPA_SIZE_BASE: u32 = 0x90020c;
/// Stride between FBPAs.
pub const FBPA_STRIDE: u32 = 0x4000;

/// The counts and the FBPA size registers.
#[derive(Debug, Clone, Default)]
pub struct Top;

impl Top {
    /// Whether `offset` is decoded here.
    pub fn contains(offset: u32) -> bool {
        matches!(
            offset,
            TOP_NUM_FBPS | TOP_NUM_LTC_PER_FBP | TOP_NUM_FBPA_PER_FBP
        ) || Self::fbpa(offset).is_some()
    }

    fn fbpa(offset: u32) -> Option<u32> {
        let rel = offset.checked_sub(FBPA_SIZE_BASE)?;
        (rel % FBPA_STRIDE == 0 && rel / FBPA_STRIDE < FBPS * FBPA_PER_FBP)
            .then_some(rel / FBPA_STRIDE)
    }

    /// Total video memory the counts describe, in bytes.
    pub fn vram_bytes() -> u64 {
        u64::from(FBPS * FBPA_PER_FBP * FBPA_MIB) << 20
    }
}

impl Bar0Unit for Top {
    fn name(&self) -> &'static str {
        "TOP"
    }

    fn read32(&mut self, offset: u32) -> Option<u32> {
        Some(match offset {
            TOP_NUM_FBPS => FBPS,
            TOP_NUM_LTC_PER_FBP => LTC_PER_FBP,
            TOP_NUM_FBPA_PER_FBP => FBPA_PER_FBP,
            o if Self::fbpa(o).is_some() => FBPA_MIB,
            _ => return None,
        })
    }

    fn write32(&mut self, offset: u32, _value: u32) -> bool {
        Self::contains(offset)
    }

    fn reset(&mut self) {}
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_describe_four_gib() {
        let mut t = Top;
        let fbps = t.read32(TOP_NUM_FBPS).unwrap();
        let per = t.read32(TOP_NUM_FBPA_PER_FBP).unwrap();
        let mut mib = 0u64;
        for i in 0..fbps * per {
            mib += u64::from(t.read32(FBPA_SIZE_BASE + i * FBPA_STRIDE).unwrap());
        }
        assert_eq!(mib << 20, Top::vram_bytes());
        assert_eq!(Top::vram_bytes(), crate::device::DEFAULT_VRAM);
        assert_eq!(t.read32(FBPA_SIZE_BASE + 8 * FBPA_STRIDE), None);
        assert_eq!(t.read32(FBPA_SIZE_BASE + 4), None);
    }
}
