//! FUSE: the floorsweeping and feature fuses nouveau reads on GP100 (docs/probe-plan.md §2.5,
//! from nvkm/subdev/devinit/gm107.c `gm107_devinit_disable`, bios/shadowramin.c, fb/ramgm107.c,
//! fb/ramgm200.c). Read-only constants describing our part: a Tesla P100, which has no
//! display, with nothing else fused off.

use super::Bar0Unit;

/// Copy engines disabled (bit 0 CE0, bit 2 CE2).
pub const FUSE_CE_DISABLE: u32 = 0x021c00;
/// Display disabled (bit 0).
pub const FUSE_DISPLAY_DISABLE: u32 = 0x021c04;
/// FBPA disable mask.
pub const FUSE_FBPA_DISABLE: u32 = 0x021c14;
/// FBP disable mask.
pub const FUSE_FBP_DISABLE: u32 = 0x021d38;
/// LTC disable mask per FBP, 4 bytes apart.
pub const FUSE_LTC_DISABLE_BASE: u32 = 0x021d70;
/// FBPs whose LTC mask is decoded.
pub const FUSE_LTC_FBPS: u32 = 8;

/// The fuse block.
#[derive(Debug, Clone, Default)]
pub struct Fuse;

impl Fuse {
    /// Whether `offset` is one of the decoded fuses.
    pub fn contains(offset: u32) -> bool {
        matches!(
            offset,
            FUSE_CE_DISABLE | FUSE_DISPLAY_DISABLE | FUSE_FBPA_DISABLE | FUSE_FBP_DISABLE
        ) || (FUSE_LTC_DISABLE_BASE..FUSE_LTC_DISABLE_BASE + 4 * FUSE_LTC_FBPS).contains(&offset)
    }
}

impl Bar0Unit for Fuse {
    fn name(&self) -> &'static str {
        "FUSE"
    }

    fn ranges(&self) -> Vec<std::ops::Range<u32>> {
        let ltc = (0..FUSE_LTC_FBPS).map(|i| FUSE_LTC_DISABLE_BASE + 4 * i);
        crate::bus::words(
            [
                FUSE_CE_DISABLE,
                FUSE_DISPLAY_DISABLE,
                FUSE_FBPA_DISABLE,
                FUSE_FBP_DISABLE,
            ]
            .into_iter()
            .chain(ltc),
        )
    }

    fn read32(&mut self, offset: u32) -> Option<u32> {
        if !Self::contains(offset) {
            return None;
        }
        Some(match offset {
            // Tesla P100: the display is fused off.
            FUSE_DISPLAY_DISABLE => 1,
            _ => 0,
        })
    }

    fn write32(&mut self, offset: u32, _value: u32) -> bool {
        Self::contains(offset)
    }

    fn reset(&mut self) {}
}
