//! The copy engine, class PASCAL_DMA_COPY_A (0xc0b5): the methods nouveau sends it on its
//! CE channel, executed when LAUNCH_DMA (0x300) is written.
//!
//! Method offsets and fields are NVIDIA's `clc0b5.h` (open-gpu-doc `classes/dma-copy/`):
//! SET_SEMAPHORE_A/B/PAYLOAD 0x240/0x244/0x248, SET_SRC/DST_PHYS_MODE 0x260/0x264 (TARGET
//! 1:0 = 0 LOCAL_FB, 1 COHERENT_SYSMEM, 2 NONCOHERENT_SYSMEM), LAUNCH_DMA 0x300,
//! OFFSET_IN_UPPER/LOWER 0x400/0x404 (UPPER 16:0), OFFSET_OUT_UPPER/LOWER 0x408/0x40c,
//! PITCH_IN/OUT 0x410/0x414, LINE_LENGTH_IN 0x418, LINE_COUNT 0x41c, SET_REMAP_CONST_A/B
//! 0x700/0x704, SET_REMAP_COMPONENTS 0x708. What nouveau 6.12 sends is in
//! `nouveau_boa0b5.c` (`nve0_bo_move_copy`: virtual pitch copies) and `nouveau_dmem.c`
//! (`nvc0b5_migrate_copy`: physical copies; `nvc0b5_migrate_clear`: a remapped constant
//! fill, where LINE_LENGTH_IN counts destination elements).
//!
//! Modelled: pitch-linear copies, single and multi-line, virtual or physical on each side;
//! remapped fills and copies; one- and four-word semaphore releases. Not modelled (an error
//! the channel reports, never silently skipped): block-linear layouts and semaphore
//! reductions. Every launch is bounded by [`MAX_LAUNCH_BYTES`] and [`MAX_LAUNCH_LINES`]
//! (a launch past either is a channel error before any work), and its [`Launch::work`] is
//! charged against the PBDMA's budget, so the work one host message can cause is bounded in
//! bytes and in lines.

use crate::engine::Hw;
pub use crate::hw::reason::{CeError, CeUnmodelled};
use crate::mem::{GpuMemory, Target};
use crate::mmu::tlb::ClientKind;
use crate::mmu::walk::Pdb;

/// PASCAL_DMA_COPY_A.
pub const CLASS_PASCAL_DMA_COPY_A: u32 = 0xc0b5;

/// Method offsets (clc0b5.h).
pub mod mthd {
    /// SET_SEMAPHORE_A: address bits 48:32 in 16:0.
    pub const SET_SEMAPHORE_A: u32 = 0x240;
    /// SET_SEMAPHORE_B: address bits 31:0.
    pub const SET_SEMAPHORE_B: u32 = 0x244;
    /// SET_SEMAPHORE_PAYLOAD.
    pub const SET_SEMAPHORE_PAYLOAD: u32 = 0x248;
    /// SET_SRC_PHYS_MODE.
    pub const SET_SRC_PHYS_MODE: u32 = 0x260;
    /// SET_DST_PHYS_MODE.
    pub const SET_DST_PHYS_MODE: u32 = 0x264;
    /// LAUNCH_DMA.
    pub const LAUNCH_DMA: u32 = 0x300;
    /// OFFSET_IN_UPPER.
    pub const OFFSET_IN_UPPER: u32 = 0x400;
    /// OFFSET_IN_LOWER.
    pub const OFFSET_IN_LOWER: u32 = 0x404;
    /// OFFSET_OUT_UPPER.
    pub const OFFSET_OUT_UPPER: u32 = 0x408;
    /// OFFSET_OUT_LOWER.
    pub const OFFSET_OUT_LOWER: u32 = 0x40c;
    /// PITCH_IN.
    pub const PITCH_IN: u32 = 0x410;
    /// PITCH_OUT.
    pub const PITCH_OUT: u32 = 0x414;
    /// LINE_LENGTH_IN.
    pub const LINE_LENGTH_IN: u32 = 0x418;
    /// LINE_COUNT.
    pub const LINE_COUNT: u32 = 0x41c;
    /// SET_REMAP_CONST_A.
    pub const SET_REMAP_CONST_A: u32 = 0x700;
    /// SET_REMAP_CONST_B.
    pub const SET_REMAP_CONST_B: u32 = 0x704;
    /// SET_REMAP_COMPONENTS.
    pub const SET_REMAP_COMPONENTS: u32 = 0x708;
}

/// Methods the class has (0x100..0x800); each channel keeps its own values.
const METHOD_WORDS: usize = 0x800 / 4;

/// The most bytes one LAUNCH_DMA may move (a bound on the work a guest can ask for in one
/// method; nouveau's largest is a 2 MiB chunk).
pub const MAX_LAUNCH_BYTES: u64 = 256 << 20;

/// The most lines one LAUNCH_DMA may have. `nve0_bo_move_copy` sends one 4 KiB line per
/// page, so [`MAX_LAUNCH_BYTES`] of pages is this many lines; zero-length lines count too
/// (each costs a step of the loop even when it moves nothing).
pub const MAX_LAUNCH_LINES: u64 = MAX_LAUNCH_BYTES / STEP as u64;

/// Bytes moved per step (and the unit of [`Launch::work`]).
pub const STEP: usize = 4096;

/// The channel an operation runs for.
#[derive(Debug, Clone, Copy)]
pub struct CeCtx {
    /// The channel's address space.
    pub pdb: Pdb,
    /// The hub client (`NV_PFAULT_CLIENT_HUB_CE0/CE1`).
    pub client: ClientKind,
    /// HCE privileged mode (physical addressing allowed).
    pub privileged: bool,
}

/// What a launch did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Launch {
    /// Bytes written to the destination.
    pub bytes: u64,
    /// Whether a semaphore was released.
    pub semaphore: bool,
    /// Whether a non-blocking interrupt was asked for.
    pub interrupt: bool,
    /// What the launch cost in steps: one per line plus one per [`STEP`] bytes moved.
    pub work: u64,
}

/// One channel's copy-engine method state.
#[derive(Debug, Clone)]
pub struct CeState {
    m: Box<[u32; METHOD_WORDS]>,
}

impl Default for CeState {
    fn default() -> Self {
        CeState {
            m: Box::new([0; METHOD_WORDS]),
        }
    }
}

#[derive(Debug, Clone, Copy)]
enum Side {
    Virtual,
    Physical(Target),
}

fn phys_target(mode: u32) -> Option<Target> {
    match mode & 3 {
        0 => Some(Target::Video),
        1 => Some(Target::SysCoherent),
        2 => Some(Target::SysNoncoherent),
        _ => None,
    }
}

impl CeState {
    fn get(&self, m: u32) -> u32 {
        self.m[(m / 4) as usize]
    }

    fn addr(&self, upper: u32, lower: u32) -> u64 {
        (u64::from(self.get(upper) & 0x1ffff) << 32) | u64::from(self.get(lower))
    }

    /// A method with its data. Only LAUNCH_DMA does anything; the others are state.
    pub fn method(
        &mut self,
        hw: &mut Hw<'_>,
        ctx: &CeCtx,
        mthd: u32,
        data: u32,
    ) -> Result<Option<Launch>, CeError> {
        let i = (mthd / 4) as usize;
        if i < METHOD_WORDS {
            self.m[i] = data;
        }
        if mthd == mthd::LAUNCH_DMA {
            return self.launch(hw, ctx, data).map(Some);
        }
        Ok(None)
    }

    fn side(&self, ctx: &CeCtx, physical: bool, mode_mthd: u32) -> Result<Side, CeError> {
        if !physical {
            return Ok(Side::Virtual);
        }
        if !ctx.privileged {
            return Err(CeError::NotPrivileged);
        }
        phys_target(self.get(mode_mthd))
            .map(Side::Physical)
            .ok_or(CeError::NotModelled(CeUnmodelled::PhysicalTarget3))
    }

    fn read(
        hw: &mut Hw<'_>,
        ctx: &CeCtx,
        side: Side,
        a: u64,
        buf: &mut [u8],
    ) -> Result<(), CeError> {
        match side {
            Side::Virtual => Ok(hw.vm_read(ctx.client, ctx.pdb, a, buf, ctx.privileged)?),
            Side::Physical(t) => hw.phys.read_bytes(t, a, buf).map_err(|_| CeError::Phys(a)),
        }
    }

    fn write(hw: &mut Hw<'_>, ctx: &CeCtx, side: Side, a: u64, buf: &[u8]) -> Result<(), CeError> {
        match side {
            Side::Virtual => Ok(hw.vm_write(ctx.client, ctx.pdb, a, buf, ctx.privileged)?),
            Side::Physical(t) => hw.phys.write_bytes(t, a, buf).map_err(|_| CeError::Phys(a)),
        }
    }

    fn launch(&mut self, hw: &mut Hw<'_>, ctx: &CeCtx, ld: u32) -> Result<Launch, CeError> {
        let transfer = ld & 3;
        let sem_type = (ld >> 3) & 3;
        let intr_type = (ld >> 5) & 3;
        let src_pitch = ld & (1 << 7) != 0;
        let dst_pitch = ld & (1 << 8) != 0;
        let multi = ld & (1 << 9) != 0;
        let remap = ld & (1 << 10) != 0;
        let mut out = Launch::default();
        if transfer != 0 {
            if !dst_pitch || (!src_pitch && !remap) {
                return Err(CeError::NotModelled(CeUnmodelled::BlockLinear));
            }
            let src = self.side(ctx, ld & (1 << 12) != 0, mthd::SET_SRC_PHYS_MODE)?;
            let dst = self.side(ctx, ld & (1 << 13) != 0, mthd::SET_DST_PHYS_MODE)?;
            let lines = if multi {
                u64::from(self.get(mthd::LINE_COUNT))
            } else {
                1
            };
            let src_base = self.addr(mthd::OFFSET_IN_UPPER, mthd::OFFSET_IN_LOWER);
            let dst_base = self.addr(mthd::OFFSET_OUT_UPPER, mthd::OFFSET_OUT_LOWER);
            let pitch_in = u64::from(self.get(mthd::PITCH_IN));
            let pitch_out = u64::from(self.get(mthd::PITCH_OUT));
            let length = u64::from(self.get(mthd::LINE_LENGTH_IN));
            let remap = remap.then(|| Remap::decode(self));
            let line_bytes = match &remap {
                Some(r) => length * r.dst_elem as u64,
                None => length,
            };
            if lines > MAX_LAUNCH_LINES {
                return Err(CeError::TooManyLines {
                    lines,
                    bound: MAX_LAUNCH_LINES,
                });
            }
            let total = line_bytes.saturating_mul(lines);
            if total > MAX_LAUNCH_BYTES {
                return Err(CeError::TooLarge(total));
            }
            // Zero-length lines move nothing: no loop over them.
            let lines = if line_bytes == 0 { 0 } else { lines };
            out.work = lines + total.div_ceil(STEP as u64);
            for l in 0..lines {
                let s = src_base.wrapping_add(l * pitch_in);
                let d = dst_base.wrapping_add(l * pitch_out);
                match &remap {
                    None => Self::copy_line(hw, ctx, (src, s), (dst, d), length)?,
                    Some(r) => self.remap_line(hw, ctx, r, (src, s), (dst, d), length)?,
                }
            }
            out.bytes = total;
        }
        match sem_type {
            0 => {}
            1 | 2 => {
                let a = self.addr(mthd::SET_SEMAPHORE_A, mthd::SET_SEMAPHORE_B);
                let payload = self.get(mthd::SET_SEMAPHORE_PAYLOAD);
                let mut b = [0u8; 16];
                b[..4].copy_from_slice(&payload.to_le_bytes());
                b[8..].copy_from_slice(&hw.now_ns.to_le_bytes());
                let n = if sem_type == 1 { 4 } else { 16 };
                hw.vm_write(ctx.client, ctx.pdb, a, &b[..n], ctx.privileged)?;
                out.semaphore = true;
            }
            _ => return Err(CeError::NotModelled(CeUnmodelled::SemaphoreType3)),
        }
        out.interrupt = intr_type == 2;
        Ok(out)
    }

    fn copy_line(
        hw: &mut Hw<'_>,
        ctx: &CeCtx,
        (src, s): (Side, u64),
        (dst, d): (Side, u64),
        len: u64,
    ) -> Result<(), CeError> {
        let mut buf = [0u8; STEP];
        let mut done = 0u64;
        while done < len {
            let n = (len - done).min(STEP as u64) as usize;
            Self::read(hw, ctx, src, s.wrapping_add(done), &mut buf[..n])?;
            Self::write(hw, ctx, dst, d.wrapping_add(done), &buf[..n])?;
            done += n as u64;
        }
        Ok(())
    }

    fn remap_line(
        &self,
        hw: &mut Hw<'_>,
        ctx: &CeCtx,
        r: &Remap,
        (src, s): (Side, u64),
        (dst, d): (Side, u64),
        elems: u64,
    ) -> Result<(), CeError> {
        let uses_src = r.dst.iter().take(r.dst_n).any(|&c| c < 4);
        let per_step = (STEP / r.dst_elem).max(1) as u64;
        let mut sbuf = vec![0u8; per_step as usize * r.src_elem];
        let mut dbuf = vec![0u8; per_step as usize * r.dst_elem];
        let mut done = 0u64;
        while done < elems {
            let n = (elems - done).min(per_step) as usize;
            let da = d.wrapping_add(done * r.dst_elem as u64);
            if uses_src {
                let sa = s.wrapping_add(done * r.src_elem as u64);
                Self::read(hw, ctx, src, sa, &mut sbuf[..n * r.src_elem])?;
            }
            if r.dst.iter().take(r.dst_n).any(|&c| c == 6) {
                // NO_WRITE components keep the destination's bytes.
                Self::read(hw, ctx, dst, da, &mut dbuf[..n * r.dst_elem])?;
            }
            for e in 0..n {
                for (k, &c) in r.dst.iter().take(r.dst_n).enumerate() {
                    let at = e * r.dst_elem + k * r.size;
                    let v: Option<[u8; 4]> = match c {
                        0..=3 if (c as usize) < r.src_n => {
                            let from = e * r.src_elem + c as usize * r.size;
                            let mut w = [0u8; 4];
                            w[..r.size].copy_from_slice(&sbuf[from..from + r.size]);
                            Some(w)
                        }
                        4 => Some(self.get(mthd::SET_REMAP_CONST_A).to_le_bytes()),
                        5 => Some(self.get(mthd::SET_REMAP_CONST_B).to_le_bytes()),
                        _ => None,
                    };
                    if let Some(w) = v {
                        dbuf[at..at + r.size].copy_from_slice(&w[..r.size]);
                    }
                }
            }
            Self::write(hw, ctx, dst, da, &dbuf[..n * r.dst_elem])?;
            done += n as u64;
        }
        Ok(())
    }
}

/// SET_REMAP_COMPONENTS decoded.
#[derive(Debug, Clone, Copy)]
struct Remap {
    /// Source of each destination component: 0-3 SRC_X..W, 4 CONST_A, 5 CONST_B, 6 NO_WRITE.
    dst: [u32; 4],
    size: usize,
    src_n: usize,
    dst_n: usize,
    src_elem: usize,
    dst_elem: usize,
}

impl Remap {
    fn decode(s: &CeState) -> Self {
        let v = s.get(mthd::SET_REMAP_COMPONENTS);
        let size = ((v >> 16) & 3) as usize + 1;
        let src_n = ((v >> 20) & 3) as usize + 1;
        let dst_n = ((v >> 24) & 3) as usize + 1;
        Remap {
            dst: [v & 7, (v >> 4) & 7, (v >> 8) & 7, (v >> 12) & 7],
            size,
            src_n,
            dst_n,
            src_elem: size * src_n,
            dst_elem: size * dst_n,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::engine::testutil::Space;
    use crate::engine::VmError;
    use crate::mem::PhysMem;
    use crate::mmu::format::Pte;
    use crate::mmu::tlb::TlbConfig;
    use crate::mmu::unit::Mmu;
    use crate::timing::P100;
    use vm_memory::{GuestAddress, GuestMemoryMmap};

    struct Rig {
        phys: PhysMem,
        mmu: Mmu,
        space: Space,
    }

    fn rig() -> Rig {
        let mut phys = PhysMem::new(64 << 20);
        let ram = GuestMemoryMmap::<()>::from_ranges(&[(GuestAddress(0), 4 << 20)]).unwrap();
        phys.set_sys(Box::new(ram));
        Rig {
            phys,
            mmu: Mmu::new(TlbConfig::default(), P100),
            space: Space::new(0x100_0000),
        }
    }

    fn send(
        r: &mut Rig,
        st: &mut CeState,
        ctx: &CeCtx,
        ms: &[(u32, u32)],
    ) -> Result<Option<Launch>, CeError> {
        let mut hw = Hw {
            phys: &mut r.phys,
            mmu: &mut r.mmu,
            now_ns: 0x1234,
        };
        let mut last = None;
        for &(m, d) in ms {
            last = st.method(&mut hw, ctx, m, d)?;
        }
        Ok(last)
    }

    fn ctx(r: &Rig, privileged: bool) -> CeCtx {
        CeCtx {
            pdb: r.space.pdb,
            client: ClientKind::Hub(1),
            privileged,
        }
    }

    #[test]
    fn dmem_physical_page_copy_as_nouveau_sends_it() {
        let mut r = rig();
        let page: Vec<u8> = (0..4096u32).map(|i| (i * 7) as u8).collect();
        SysMemWrite::put(&r.phys, 0x10_0000, &page);
        let mut st = CeState::default();
        let c = ctx(&r, true);
        // nvc0b5_migrate_copy: host (coherent sysmem) -> VRAM, launch 0x3386.
        let l = send(
            &mut r,
            &mut st,
            &c,
            &[
                (mthd::SET_SRC_PHYS_MODE, 1),
                (mthd::SET_DST_PHYS_MODE, 0),
                (mthd::OFFSET_IN_UPPER, 0),
                (mthd::OFFSET_IN_LOWER, 0x10_0000),
                (mthd::OFFSET_OUT_UPPER, 0),
                (mthd::OFFSET_OUT_LOWER, 0x20_0000),
                (mthd::PITCH_IN, 0x1000),
                (mthd::PITCH_OUT, 0x1000),
                (mthd::LINE_LENGTH_IN, 0x1000),
                (mthd::LINE_COUNT, 1),
                (mthd::LAUNCH_DMA, 0x3386),
            ],
        )
        .unwrap()
        .unwrap();
        assert_eq!(l.bytes, 4096);
        let mut back = vec![0u8; 4096];
        r.phys.vid.read(0x20_0000, &mut back).unwrap();
        assert_eq!(back, page);
        // Physical addressing from an unprivileged channel is refused.
        let c = ctx(&r, false);
        let e = send(&mut r, &mut st, &c, &[(mthd::LAUNCH_DMA, 0x3386)]).unwrap_err();
        assert_eq!(e, CeError::NotPrivileged);
    }

    #[test]
    fn dmem_clear_fills_with_the_remap_constants() {
        let mut r = rig();
        r.phys.vid.write(0x30_0000, &[0xee; 8192]).unwrap();
        let mut st = CeState::default();
        let c = ctx(&r, true);
        // nvc0b5_migrate_clear(4096, VRAM, 0x300000): launch 0x2586, 4096 >> 3 elements.
        send(
            &mut r,
            &mut st,
            &c,
            &[
                (mthd::SET_DST_PHYS_MODE, 0),
                (mthd::SET_REMAP_CONST_A, 0),
                (mthd::SET_REMAP_CONST_B, 0),
                (mthd::SET_REMAP_COMPONENTS, 0x0103_0054),
                (mthd::OFFSET_OUT_UPPER, 0),
                (mthd::OFFSET_OUT_LOWER, 0x30_0000),
                (mthd::LINE_LENGTH_IN, 4096 >> 3),
                (mthd::LAUNCH_DMA, 0x2586),
            ],
        )
        .unwrap();
        let mut back = vec![0u8; 8192];
        r.phys.vid.read(0x30_0000, &mut back).unwrap();
        assert!(back[..4096].iter().all(|&b| b == 0));
        assert!(
            back[4096..].iter().all(|&b| b == 0xee),
            "nothing past the clear"
        );
    }

    #[test]
    fn virtual_multi_line_copy_and_four_word_semaphore() {
        let mut r = rig();
        for p in 0..4u64 {
            r.space.map(
                &mut r.phys,
                0x4000_0000 + p * 0x1000,
                Pte::pfn_vram(0x40_0000 + p * 0x1000),
            );
        }
        r.phys.vid.write(0x40_0000, &[5u8; 0x1000]).unwrap();
        r.phys.vid.write(0x40_1000, &[6u8; 0x1000]).unwrap();
        let mut st = CeState::default();
        let c = ctx(&r, false);
        // nve0_bo_move_copy of two pages (launch 0x386), then a semaphore at page 3.
        send(
            &mut r,
            &mut st,
            &c,
            &[
                (mthd::OFFSET_IN_LOWER, 0x4000_0000),
                (mthd::OFFSET_OUT_LOWER, 0x4000_2000),
                (mthd::PITCH_IN, 0x1000),
                (mthd::PITCH_OUT, 0x1000),
                (mthd::LINE_LENGTH_IN, 0x1000),
                (mthd::LINE_COUNT, 2),
                (mthd::SET_SEMAPHORE_B, 0x4000_3ff0),
                (mthd::SET_SEMAPHORE_PAYLOAD, 77),
                (mthd::LAUNCH_DMA, 0x386 | 2 << 3),
            ],
        )
        .unwrap();
        assert_eq!(r.phys.vid.read_u32(0x40_2000).unwrap(), 0x0505_0505);
        assert_eq!(r.phys.vid.read_u32(0x40_3000).unwrap(), 0x0606_0606);
        assert_eq!(r.phys.vid.read_u32(0x40_3ff0).unwrap(), 77);
        assert_eq!(r.phys.vid.read_u64(0x40_3ff8).unwrap(), 0x1234, "timestamp");
        // A copy into an unmapped page faults and says where.
        let e = send(
            &mut r,
            &mut st,
            &c,
            &[
                (mthd::OFFSET_OUT_LOWER, 0x5000_0000),
                (mthd::LAUNCH_DMA, 0x386),
            ],
        )
        .unwrap_err();
        assert!(
            matches!(
                e,
                CeError::Vm(VmError::Fault {
                    va: 0x5000_0000,
                    ..
                })
            ),
            "{e:?}"
        );
        // Block-linear is not modelled, and says so.
        let e = send(&mut r, &mut st, &c, &[(mthd::LAUNCH_DMA, 0x2)]).unwrap_err();
        assert_eq!(e, CeError::NotModelled(CeUnmodelled::BlockLinear));
        // A hostile size is refused before any work.
        let e = send(
            &mut r,
            &mut st,
            &c,
            &[
                (mthd::LINE_LENGTH_IN, u32::MAX),
                (mthd::LINE_COUNT, u32::MAX),
                (mthd::LAUNCH_DMA, 0x386),
            ],
        )
        .unwrap_err();
        assert!(matches!(e, CeError::TooManyLines { .. }), "{e:?}");
        let e = send(
            &mut r,
            &mut st,
            &c,
            &[
                (mthd::LINE_LENGTH_IN, u32::MAX),
                (mthd::LINE_COUNT, 1),
                (mthd::LAUNCH_DMA, 0x386 | 1 << 9),
            ],
        )
        .unwrap_err();
        assert!(matches!(e, CeError::TooLarge(_)), "{e:?}");
    }

    /// Issue 14: LINE_LENGTH_IN = 0 with LINE_COUNT = 0xffffffff passed the byte bound (0
    /// bytes) and looped 2^32 times. Lines are bounded on their own now, zero-length lines
    /// within the bound cost no loop, and every launch says what work it cost.
    #[test]
    fn the_line_bomb_is_refused_and_work_counts_lines_and_bytes() {
        let mut r = rig();
        let mut st = CeState::default();
        let c = ctx(&r, true);
        let bomb = [
            (mthd::SET_SRC_PHYS_MODE, 0),
            (mthd::SET_DST_PHYS_MODE, 0),
            (mthd::LINE_LENGTH_IN, 0),
            (mthd::LINE_COUNT, u32::MAX),
            (mthd::LAUNCH_DMA, 0x3386 | 1 << 9),
        ];
        let e = send(&mut r, &mut st, &c, &bomb).unwrap_err();
        assert_eq!(
            e,
            CeError::TooManyLines {
                lines: u64::from(u32::MAX),
                bound: MAX_LAUNCH_LINES
            }
        );
        assert!(e.to_string().contains("4294967295 lines"), "{e}");
        // One line past the bound, one byte each, is refused too.
        let e = send(
            &mut r,
            &mut st,
            &c,
            &[
                (mthd::LINE_LENGTH_IN, 1),
                (mthd::LINE_COUNT, (MAX_LAUNCH_LINES + 1) as u32),
                (mthd::LAUNCH_DMA, 0x3386 | 1 << 9),
            ],
        )
        .unwrap_err();
        assert_eq!(
            e,
            CeError::TooManyLines {
                lines: MAX_LAUNCH_LINES + 1,
                bound: MAX_LAUNCH_LINES
            }
        );
        // At the bound with zero-length lines: nothing moves, nothing loops.
        let l = send(
            &mut r,
            &mut st,
            &c,
            &[
                (mthd::LINE_LENGTH_IN, 0),
                (mthd::LINE_COUNT, MAX_LAUNCH_LINES as u32),
                (mthd::LAUNCH_DMA, 0x3386 | 1 << 9),
            ],
        )
        .unwrap()
        .unwrap();
        assert_eq!((l.bytes, l.work), (0, 0));
        // Two 4 KiB lines plus one of 1 byte...: work is lines + 4 KiB steps.
        let l = send(
            &mut r,
            &mut st,
            &c,
            &[
                (mthd::PITCH_IN, 0x2000),
                (mthd::PITCH_OUT, 0x2000),
                (mthd::LINE_LENGTH_IN, 0x1001),
                (mthd::LINE_COUNT, 3),
                (mthd::LAUNCH_DMA, 0x3386 | 1 << 9),
            ],
        )
        .unwrap()
        .unwrap();
        assert_eq!(l.bytes, 3 * 0x1001);
        assert_eq!(l.work, 3 + 4, "3 lines, 12291 bytes = 4 steps");
    }

    /// Writes guest RAM behind a PhysMem in tests.
    struct SysMemWrite;
    impl SysMemWrite {
        fn put(p: &PhysMem, a: u64, b: &[u8]) {
            p.sys_write(a, b).unwrap();
        }
    }
}
