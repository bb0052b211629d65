//! PTOP: the unit counts nouveau reads to size the framebuffer and L2 (docs/probe-plan.md §2.7,
//! §2.10; nvkm/subdev/fb/ramgf100.c, ramgm200.c; the same offsets are named in open-gpu-doc's
//! dev_top: NUM_FBPS 0x022438, NUM_LTC_PER_FBP 0x022450, NUM_FBPA_PER_FBP 0x022458).
//!
//! Our part (our choice): 4 FBPs × 2 FBPAs, 2 LTCs per FBP; with [`FBPA_MIB`] per FBPA that is
//! the device's 4 GiB of video memory.
//!
//! The DEVICE_INFO table (0x022700 + 4·i, i < 64) lists the engines behind the host
//! (docs/probe-plan.md §4; field layout from open-gpu-doc `dev_top` and nouveau 6.12
//! `nvkm/subdev/top/gk104.c` `gk104_top_parse`): each engine is a chain of an ENGINE_TYPE
//! word, a DATA word (PRI base, MMU fault id) and an ENUM word (engine, runlist, interrupt
//! and reset ids), bit 31 chaining them. Our GP100 lists GR and two copy engines, CE0 and
//! CE1. The ids are the real GP100 ones where NVIDIA publishes them: reset bits PGRAPH 12,
//! CE0 6, CE1 7 (gp100 `dev_pmc.h` NV_PMC_ENABLE_*), MMU fault ids GRAPHICS 0, CE0 21,
//! CE1 22 (gp100 `dev_fault.h` NV_PFAULT_MMU_ENG_ID_*); interrupt bits GR 12, CE0 5, CE1 6
//! and runlist/engine numbering are our choice (Kepler's PMC layout, one runlist per engine).

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

/// First DEVICE_INFO word.
pub const TOP_DEVICE_INFO: u32 = 0x022700;
/// DEVICE_INFO words.
pub const DEVICE_INFO_WORDS: u32 = 64;

pub use crate::hw::engines::{EngineInfo, ENGINES, ENGINE_CE0, ENGINE_CE1, ENGINE_GR};

/// The three DEVICE_INFO words of an engine (TYPE and DATA chained to the ENUM word).
pub const fn device_info_words(e: &EngineInfo) -> [u32; 3] {
    const CHAIN: u32 = 1 << 31;
    [
        CHAIN | (e.engine_type << 2) | 3,
        CHAIN | (e.pri_base & 0x00ff_f000) | (e.fault_id << 3) | (1 << 2) | 1,
        (e.engine << 26)
            | (e.runlist << 21)
            | (e.intr << 15)
            | (e.reset << 9)
            | (1 << 5)
            | (1 << 4)
            | (1 << 3)
            | (1 << 2)
            | 2,
    ]
}

/// The counts, the FBPA size registers and DEVICE_INFO.
#[derive(Debug, Clone, Default)]
pub struct Top;

impl Top {
    /// Whether `offset` is decoded here.
    pub fn contains(offset: u32) -> bool {
        matches!(
            offset,
            TOP_NUM_FBPS | TOP_NUM_LTC_PER_FBP | TOP_NUM_FBPA_PER_FBP
        ) || Self::fbpa(offset).is_some()
            || Self::device_info(offset).is_some()
    }

    fn device_info(offset: u32) -> Option<u32> {
        let rel = offset.checked_sub(TOP_DEVICE_INFO)?;
        (rel % 4 == 0 && rel / 4 < DEVICE_INFO_WORDS).then(|| {
            let i = (rel / 4) as usize;
            ENGINES
                .get(i / 3)
                .map_or(0, |e| device_info_words(e)[i % 3])
        })
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

    fn ranges(&self) -> Vec<std::ops::Range<u32>> {
        let fbpa = (0..FBPS * FBPA_PER_FBP).map(|i| FBPA_SIZE_BASE + FBPA_STRIDE * i);
        let info = (0..DEVICE_INFO_WORDS).map(|i| TOP_DEVICE_INFO + 4 * i);
        crate::bus::words(
            [TOP_NUM_FBPS, TOP_NUM_LTC_PER_FBP, TOP_NUM_FBPA_PER_FBP]
                .into_iter()
                .chain(fbpa)
                .chain(info),
        )
    }

    fn read32(&mut self, offset: u32) -> Option<u32> {
        Some(match offset {
            TOP_NUM_FBPS => FBPS,
            TOP_NUM_LTC_PER_FBP => LTC_PER_FBP,
            TOP_NUM_FBPA_PER_FBP => FBPA_PER_FBP,
            o if Self::fbpa(o).is_some() => FBPA_MIB,
            o => return Self::device_info(o),
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
        assert_eq!(Top::vram_bytes(), crate::mem::DEFAULT_VRAM);
        assert_eq!(t.read32(FBPA_SIZE_BASE + 8 * FBPA_STRIDE), None);
        assert_eq!(t.read32(FBPA_SIZE_BASE + 4), None);
    }

    /// Decodes DEVICE_INFO exactly as nouveau's `gk104_top_parse` does.
    fn parse(t: &mut Top) -> Vec<(u32, EngineInfo)> {
        let mut out = Vec::new();
        let (mut ty, mut cur) = (
            !0u32,
            EngineInfo {
                engine_type: !0,
                pri_base: 0,
                fault_id: !0,
                engine: !0,
                runlist: !0,
                intr: !0,
                reset: !0,
            },
        );
        for i in 0..64 {
            let d = t.read32(TOP_DEVICE_INFO + 4 * i).unwrap();
            match d & 3 {
                0 => continue,
                1 => {
                    cur.pri_base = d & 0x00ff_f000;
                    if d & 4 != 0 {
                        cur.fault_id = (d & 0x3f8) >> 3;
                    }
                }
                2 => {
                    if d & 0x20 != 0 {
                        cur.engine = (d & 0x3c00_0000) >> 26;
                    }
                    if d & 0x10 != 0 {
                        cur.runlist = (d & 0x01e0_0000) >> 21;
                    }
                    if d & 0x08 != 0 {
                        cur.intr = (d & 0x000f_8000) >> 15;
                    }
                    if d & 0x04 != 0 {
                        cur.reset = (d & 0x3e00) >> 9;
                    }
                }
                _ => ty = (d & 0x7fff_fffc) >> 2,
            }
            if d & 0x8000_0000 != 0 {
                continue;
            }
            cur.engine_type = ty;
            out.push((i, cur));
            ty = !0;
            cur = EngineInfo {
                engine_type: !0,
                pri_base: 0,
                fault_id: !0,
                engine: !0,
                runlist: !0,
                intr: !0,
                reset: !0,
            };
        }
        out
    }

    #[test]
    fn device_info_decodes_to_our_engines_as_nouveau_parses_it() {
        let mut t = Top;
        let got: Vec<EngineInfo> = parse(&mut t).into_iter().map(|(_, e)| e).collect();
        assert_eq!(got, ENGINES.to_vec());
        // The words the probe plan lists for GR (docs/probe-plan.md §4).
        assert_eq!(
            device_info_words(&ENGINE_GR),
            [0x8000_0003, 0x8040_0005, 0x0006_183e]
        );
        assert_eq!(device_info_words(&ENGINE_CE0)[1], 0x8010_40ad);
        // Reset bits agree with gp100 dev_pmc.h and stay clear of PFIFO (8).
        for e in ENGINES {
            assert_ne!(e.reset, 8);
        }
        assert_eq!(t.read32(TOP_DEVICE_INFO + 4 * 63), Some(0));
        assert_eq!(t.read32(TOP_DEVICE_INFO + 4 * 64), None);
    }
}
