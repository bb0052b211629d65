//! The PBDMA: fetches a channel's GPFIFO entries and pushbuffer segments through the
//! channel's address space, decodes method headers and executes host methods, handing
//! engine methods to the engine bound on the subchannel.
//!
//! Formats (NVIDIA `clc06f.h`, PASCAL_CHANNEL_GPFIFO_A; what nouveau 6.12 emits is in
//! `nouveau_dma.c` `nv50_dma_push` and `include/nvif/push906f.h`):
//! - GP entry, 8 bytes: word 0 = segment address bits 31:2; word 1 = address bits 39:32 in
//!   7:0, PRIV 8, LEVEL 9, LENGTH in dwords 30:10 (0: a control entry), SYNC 31.
//! - Method header: address >> 2 in 11:0, SUBCHANNEL 15:13, COUNT (or 13-bit immediate
//!   data) 28:16, SEC_OP 31:29 (1 INC, 3 NON_INC, 4 IMMD, 5 ONE_INC, 7 END_PB_SEGMENT;
//!   0x00000000 is a NOP).
//! - USERD (512 bytes): GET 0x44, REF 0x48, GET_HI 0x60, GP_GET 0x88, GP_PUT 0x8c. The host
//!   writes GP_GET, GET and GET_HI back as it consumes work; nouveau polls them for space.
//! - Host methods (method < 0x100, any subchannel): SET_OBJECT 0x0, NOP 0x8, SEMAPHOREA-D
//!   0x10-0x1c (D: OPERATION 4:0 = 1 ACQUIRE, 2 RELEASE, 4 ACQ_GEQ, 8 ACQ_AND;
//!   RELEASE_SIZE 24 = 0 sixteen bytes: payload, 0, PTIMER ns), NON_STALL_INTERRUPT 0x20,
//!   FB_FLUSH 0x24, MEM_OP_A-D 0x28-0x34, SET_REFERENCE 0x50, WFI 0x78, YIELD 0x80.
//!
//! The fields and method numbers are named in [`crate::hw::host`].
//!
//! Every step is bounded by the caller's budget; an acquire that does not hold leaves the
//! channel blocked at that method, to be retried, never spun on.

use crate::ce::{CeCtx, CeState, CLASS_PASCAL_DMA_COPY_A};
use crate::engine::Hw;
use crate::hw::host::{self, mem_op, mthd, sem_op, SecOp};
pub use crate::hw::reason::ChannelFault;
use crate::mem::{GpuMemory, Target};
use crate::mmu::tlb::ClientKind;
use crate::mmu::walk::Pdb;

/// USERD offsets.
pub mod userd {
    /// PB GET, low word (byte address).
    pub const GET: u64 = 0x44;
    /// SET_REFERENCE value.
    pub const REF: u64 = 0x48;
    /// PB GET, high word.
    pub const GET_HI: u64 = 0x60;
    /// GP_GET (entry index).
    pub const GP_GET: u64 = 0x88;
    /// GP_PUT (entry index; the driver's kick).
    pub const GP_PUT: u64 = 0x8c;
}

/// The hub client the host fetches as (`NV_PFAULT_CLIENT_HUB_HOST`, gp100 `dev_fault.h`).
pub const CLIENT_HOST: ClientKind = ClientKind::Hub(0x06);

/// Dwords fetched from a segment at a time.
const FETCH: usize = 512;

/// Where a channel is, as its instance block and RAMFC say.
#[derive(Debug, Clone, Copy)]
pub struct ChanCtx {
    /// Channel id.
    pub chid: u16,
    /// Its address space.
    pub pdb: Pdb,
    /// USERD location.
    pub userd: (Target, u64),
    /// GPFIFO virtual address (40 bits, as the host reads it).
    pub gp_base: u64,
    /// Bits 15:8 of RAMFC GP_BASE_HI, which are not part of the address: non-zero when the
    /// driver placed the GPFIFO above 1 TiB, where the host cannot fetch it.
    pub gp_base_hi_ignored: u8,
    /// GPFIFO entries (a power of two).
    pub gp_entries: u32,
    /// HCE privileged (RAMFC HCE_CTRL bit 5): physical copies allowed.
    pub privileged: bool,
    /// The copy-engine client methods ≥ 0x100 reach (by the channel's runlist).
    pub ce_client: ClientKind,
}

/// What running a channel did that the rest of the device must see.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Effects {
    /// NON_STALL_INTERRUPT was executed.
    pub nonstall: bool,
    /// Bytes the copy engine wrote.
    pub ce_bytes: u64,
    /// The copy engine's work in steps (`ce::Launch::work`), charged to the budget.
    pub ce_work: u64,
    /// Dwords of pushbuffer consumed.
    pub dwords: u64,
    /// GP entries consumed.
    pub gp_entries: u64,
    /// Semaphores released.
    pub releases: u64,
    /// A MEM_OP asked for a TLB invalidate.
    pub tlb_invalidate: bool,
}

/// How a run ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    /// GP_GET caught up with GP_PUT.
    Idle,
    /// Waiting on a semaphore acquire.
    Blocked,
    /// The budget ran out with work left.
    Budget,
    /// The channel hit an error and stopped (the reason).
    Error(ChannelFault),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
enum Mode {
    #[default]
    Inc,
    NonInc,
    OneInc,
}

#[derive(Debug, Clone, Copy)]
struct Segment {
    va: u64,
    len: u32,
    pos: u32,
}

/// One channel's PBDMA state (kept while the channel lives).
#[derive(Debug, Clone, Default)]
pub struct Exec {
    mthd: u32,
    subc: u8,
    count: u32,
    mode: Mode,
    seg: Option<Segment>,
    subch_class: [u32; 8],
    sem: [u32; 3],
    mem_op: [u32; 3],
    ce: CeState,
}

enum Step {
    Continue,
    Block,
    EndSegment,
}

impl Exec {
    fn userd_read(hw: &Hw<'_>, ctx: &ChanCtx, off: u64) -> Result<u32, ChannelFault> {
        hw.phys
            .read_u32(ctx.userd.0, ctx.userd.1 + off)
            .map_err(ChannelFault::UserdUnreadable)
    }

    fn userd_write(hw: &mut Hw<'_>, ctx: &ChanCtx, off: u64, v: u32) -> Result<(), ChannelFault> {
        hw.phys
            .write_u32(ctx.userd.0, ctx.userd.1 + off, v)
            .map_err(ChannelFault::UserdUnwritable)
    }

    /// Whether the channel has GP entries it has not consumed (or a segment in progress).
    pub fn has_work(&self, hw: &Hw<'_>, ctx: &ChanCtx) -> bool {
        self.seg.is_some()
            || matches!(
                (
                    Self::userd_read(hw, ctx, userd::GP_GET),
                    Self::userd_read(hw, ctx, userd::GP_PUT)
                ),
                (Ok(g), Ok(p)) if g != p
            )
    }

    /// Runs the channel until it is idle, blocked, out of budget (dwords) or in error.
    pub fn run(
        &mut self,
        hw: &mut Hw<'_>,
        ctx: &ChanCtx,
        budget: &mut u64,
        fx: &mut Effects,
    ) -> Outcome {
        match self.run_inner(hw, ctx, budget, fx) {
            Ok(o) => o,
            Err(e) => Outcome::Error(e),
        }
    }

    fn run_inner(
        &mut self,
        hw: &mut Hw<'_>,
        ctx: &ChanCtx,
        budget: &mut u64,
        fx: &mut Effects,
    ) -> Result<Outcome, ChannelFault> {
        let mut buf = [0u8; FETCH * 4];
        loop {
            if *budget == 0 {
                return Ok(Outcome::Budget);
            }
            if let Some(mut seg) = self.seg {
                while seg.pos < seg.len {
                    let n = ((seg.len - seg.pos) as usize).min(FETCH);
                    let va = seg.va.wrapping_add(u64::from(seg.pos) * 4);
                    hw.vm_read(CLIENT_HOST, ctx.pdb, va, &mut buf[..n * 4], ctx.privileged)
                        .map_err(ChannelFault::PushbufferFetch)?;
                    let mut i = 0;
                    while i < n {
                        if *budget == 0 {
                            self.seg = Some(seg);
                            return Ok(Outcome::Budget);
                        }
                        let d = u32::from_le_bytes(buf[4 * i..4 * i + 4].try_into().expect("4"));
                        let ce_work = fx.ce_work;
                        match self.feed(hw, ctx, d, fx)? {
                            Step::Continue => {}
                            Step::Block => {
                                self.seg = Some(seg);
                                return Ok(Outcome::Blocked);
                            }
                            Step::EndSegment => {
                                seg.pos = seg.len;
                                break;
                            }
                        }
                        // A copy launch costs its work on top of its dword (ce/mod.rs).
                        *budget = budget.saturating_sub(1 + (fx.ce_work - ce_work));
                        fx.dwords += 1;
                        seg.pos += 1;
                        i += 1;
                    }
                }
                self.seg = None;
                let end = seg.va.wrapping_add(u64::from(seg.len) * 4);
                Self::userd_write(hw, ctx, userd::GET, end as u32)?;
                Self::userd_write(hw, ctx, userd::GET_HI, (end >> 32) as u32)?;
                let gp_get = (Self::userd_read(hw, ctx, userd::GP_GET)? + 1) % ctx.gp_entries;
                Self::userd_write(hw, ctx, userd::GP_GET, gp_get)?;
                fx.gp_entries += 1;
            }
            let gp_get = Self::userd_read(hw, ctx, userd::GP_GET)?;
            let gp_put = Self::userd_read(hw, ctx, userd::GP_PUT)?;
            if gp_put >= ctx.gp_entries || gp_get >= ctx.gp_entries {
                return Err(ChannelFault::GpOutOfRange {
                    gp_get,
                    gp_put,
                    entries: ctx.gp_entries,
                });
            }
            if gp_get == gp_put {
                return Ok(Outcome::Idle);
            }
            let mut e = [0u8; 8];
            let at = ctx.gp_base.wrapping_add(u64::from(gp_get) * 8);
            hw.vm_read(CLIENT_HOST, ctx.pdb, at, &mut e, ctx.privileged)
                .map_err(|err| {
                    if ctx.gp_base_hi_ignored != 0 {
                        ChannelFault::GpFetchAbove40Bits {
                            at,
                            err,
                            ignored: ctx.gp_base_hi_ignored,
                        }
                    } else {
                        ChannelFault::GpFetch(err)
                    }
                })?;
            let e0 = u32::from_le_bytes(e[..4].try_into().expect("4"));
            let e1 = u32::from_le_bytes(e[4..].try_into().expect("4"));
            let len = host::GP_ENTRY1_LENGTH.get32(e1);
            *budget = budget.saturating_sub(1);
            if len == 0 {
                // A control entry (NOP/CRC opcodes): nothing to fetch.
                Self::userd_write(hw, ctx, userd::GP_GET, (gp_get + 1) % ctx.gp_entries)?;
                fx.gp_entries += 1;
                continue;
            }
            self.seg = Some(Segment {
                va: host::gp_entry_address(e0, e1),
                len,
                pos: 0,
            });
        }
    }

    fn feed(
        &mut self,
        hw: &mut Hw<'_>,
        ctx: &ChanCtx,
        d: u32,
        fx: &mut Effects,
    ) -> Result<Step, ChannelFault> {
        if self.count > 0 {
            if let Step::Block = self.method(hw, ctx, self.subc, self.mthd, d, fx)? {
                return Ok(Step::Block);
            }
            self.count -= 1;
            match self.mode {
                Mode::Inc => self.mthd = (self.mthd + 4) & host::METHOD_SPACE_MASK,
                Mode::NonInc => {}
                Mode::OneInc => {
                    self.mthd = (self.mthd + 4) & host::METHOD_SPACE_MASK;
                    self.mode = Mode::NonInc;
                }
            }
            return Ok(Step::Continue);
        }
        let mthd = host::HDR_ADDRESS.get32(d) << 2;
        let subc = host::HDR_SUBCHANNEL.get32(d) as u8;
        let count = host::HDR_COUNT.get32(d);
        let mut start = |mode| {
            self.mthd = mthd;
            self.subc = subc;
            self.count = count;
            self.mode = mode;
            Ok(Step::Continue)
        };
        match host::sec_op(d) {
            // 0x00000000 is a NOP; the subdevice-mask control entries concern SLI only.
            SecOp::Control => Ok(Step::Continue),
            SecOp::Inc => start(Mode::Inc),
            SecOp::NonInc => start(Mode::NonInc),
            SecOp::OneInc => start(Mode::OneInc),
            SecOp::Immediate => self.method(hw, ctx, subc, mthd, count, fx),
            SecOp::EndSegment => Ok(Step::EndSegment),
            SecOp::Illegal(op) => Err(ChannelFault::IllegalSecOp { header: d, op }),
        }
    }

    fn method(
        &mut self,
        hw: &mut Hw<'_>,
        ctx: &ChanCtx,
        subc: u8,
        mthd: u32,
        data: u32,
        fx: &mut Effects,
    ) -> Result<Step, ChannelFault> {
        if mthd >= host::ENGINE_METHODS {
            return self.engine_method(hw, ctx, subc, mthd, data, fx);
        }
        match mthd {
            mthd::SET_OBJECT => {
                self.subch_class[subc as usize] = host::SET_OBJECT_CLASS.get32(data)
            }
            mthd::NOP | mthd::FB_FLUSH | mthd::WFI | mthd::CRC_CHECK | mthd::YIELD => {}
            mthd::SEMAPHOREA => self.sem[0] = data,
            mthd::SEMAPHOREB => self.sem[1] = data,
            mthd::SEMAPHOREC => self.sem[2] = data,
            mthd::SEMAPHORED => return self.semaphore(hw, ctx, data, fx),
            mthd::NON_STALL_INTERRUPT => fx.nonstall = true,
            mthd::MEM_OP_A => self.mem_op[0] = data,
            mthd::MEM_OP_B => self.mem_op[1] = data,
            mthd::MEM_OP_C => self.mem_op[2] = data,
            mthd::MEM_OP_D => {
                // The model drops every cached translation for either TLB invalidate (a
                // superset: nothing stale survives).
                if matches!(
                    host::MEM_OP_OPERATION.get32(data),
                    mem_op::MMU_TLB_INVALIDATE | mem_op::MMU_TLB_INVALIDATE_TARGETED
                ) {
                    fx.tlb_invalidate = true;
                }
            }
            mthd::SET_REFERENCE => Self::userd_write(hw, ctx, userd::REF, data)?,
            mthd::ILLEGAL => return Err(ChannelFault::IllegalMethod),
            m => return Err(ChannelFault::HostMethod(m)),
        }
        Ok(Step::Continue)
    }

    fn semaphore(
        &mut self,
        hw: &mut Hw<'_>,
        ctx: &ChanCtx,
        d: u32,
        fx: &mut Effects,
    ) -> Result<Step, ChannelFault> {
        let addr = host::semaphore_address(self.sem[0], self.sem[1]);
        let payload = self.sem[2];
        let read = |hw: &mut Hw<'_>| {
            hw.vm_read_u32(CLIENT_HOST, ctx.pdb, addr, ctx.privileged)
                .map_err(ChannelFault::SemaphoreAcquire)
        };
        let holds = match host::SEM_OPERATION.get32(d) {
            sem_op::ACQUIRE => read(hw)? == payload,
            sem_op::ACQ_GEQ => (read(hw)?.wrapping_sub(payload) as i32) >= 0,
            sem_op::ACQ_AND => read(hw)? & payload != 0,
            sem_op::RELEASE => {
                let mut b = [0u8; 16];
                b[..4].copy_from_slice(&payload.to_le_bytes());
                b[8..].copy_from_slice(&hw.now_ns.to_le_bytes());
                let n = if host::SEM_RELEASE_SIZE_4BYTE.is_set(u64::from(d)) {
                    4
                } else {
                    16
                };
                hw.vm_write(CLIENT_HOST, ctx.pdb, addr, &b[..n], ctx.privileged)
                    .map_err(ChannelFault::SemaphoreRelease)?;
                fx.releases += 1;
                true
            }
            op => return Err(ChannelFault::SemaphoreOp(op)),
        };
        Ok(if holds { Step::Continue } else { Step::Block })
    }

    fn engine_method(
        &mut self,
        hw: &mut Hw<'_>,
        ctx: &ChanCtx,
        subc: u8,
        mthd: u32,
        data: u32,
        fx: &mut Effects,
    ) -> Result<Step, ChannelFault> {
        let class = self.subch_class[subc as usize];
        if subc > host::LAST_HW_SUBCHANNEL {
            return Err(ChannelFault::SoftwareMethod { mthd, subc });
        }
        if class != CLASS_PASCAL_DMA_COPY_A {
            return Err(ChannelFault::EngineNotModelled { mthd, subc, class });
        }
        let cctx = CeCtx {
            pdb: ctx.pdb,
            client: ctx.ce_client,
            privileged: ctx.privileged,
        };
        if let Some(l) = self.ce.method(hw, &cctx, mthd, data)? {
            fx.ce_bytes += l.bytes;
            fx.ce_work += l.work;
            fx.releases += u64::from(l.semaphore);
        }
        Ok(Step::Continue)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The texts are what older builds' `ChannelError` events recorded, and replay matches
    /// such an event with the typed `ChannelStopped` by them (hw/event.rs): pinned to the
    /// messages the model emitted before the faults were typed.
    #[test]
    fn channel_fault_texts_are_the_recorded_ones() {
        let f = ChannelFault::GpOutOfRange {
            gp_get: 5,
            gp_put: 9,
            entries: 8,
        };
        assert_eq!(
            f.to_string(),
            "GP_GET 5 / GP_PUT 9 outside the 8-entry GPFIFO"
        );
        let f = ChannelFault::IllegalSecOp {
            header: 0x4000_0000,
            op: 2,
        };
        assert_eq!(
            f.to_string(),
            "pushbuffer header 0x40000000: SEC_OP 2 is illegal"
        );
        let f = ChannelFault::EngineNotModelled {
            mthd: 0x100,
            subc: 1,
            class: 0xc0b5,
        };
        assert_eq!(
            f.to_string(),
            "method 0x100 to subchannel 1 (class 0xc0b5): that engine is not modelled"
        );
        assert_eq!(
            ChannelFault::HostMethod(0x44).to_string(),
            "host method 0x44 is not modelled"
        );
        assert_eq!(ChannelFault::UserdTarget.to_string(), "USERD target 1");
    }
    use crate::engine::testutil::Space;
    use crate::mem::PhysMem;
    use crate::mmu::format::Pte;
    use crate::mmu::tlb::TlbConfig;
    use crate::mmu::unit::Mmu;
    use crate::timing::P100;

    const USERD: u64 = 0x20_0000;
    const PB_VA: u64 = 0x10_0000;
    const GP_VA: u64 = 0x11_0000;

    /// Issue 14: the budget counted pushbuffer dwords only, so one access could run
    /// thousands of copy launches of up to 256 MiB each. A launch now costs its work (lines
    /// plus 4 KiB steps) on top of its dwords: a budget that covers the dwords of sixteen
    /// one-page copies but not their work stops before the end, and the rest runs later.
    #[test]
    fn copy_launches_are_charged_to_the_budget() {
        let mut phys = PhysMem::new(64 << 20);
        let mut mmu = Mmu::new(TlbConfig::default(), P100);
        let mut s = Space::new(0x100_0000);
        for p in 0..0x11 {
            s.map(
                &mut phys,
                PB_VA + p * 0x1000,
                Pte::pfn_vram(0x30_0000 + p * 0x1000),
            );
        }
        for p in 0..2 {
            s.map(
                &mut phys,
                0x40_0000 + p * 0x1000,
                Pte::pfn_vram(0x40_0000 + p * 0x1000),
            );
        }
        // The copy class on subchannel 4, then sixteen one-page copies as nve0_bo_move_copy
        // sends them (OFFSET_IN..LINE_COUNT, then LAUNCH_DMA 0x386).
        let mut pb = vec![0x2001_8000u32, CLASS_PASCAL_DMA_COPY_A];
        for _ in 0..16 {
            pb.extend([
                0x2008_8100,
                0,
                0x40_0000,
                0,
                0x40_1000,
                0x1000,
                0x1000,
                0x1000,
                1,
            ]);
            pb.extend([0x2001_80c0, 0x386]);
        }
        for (i, w) in pb.iter().enumerate() {
            phys.vid.write_u32(0x30_0000 + 4 * i as u64, *w).unwrap();
        }
        phys.vid.write_u32(0x31_0000, PB_VA as u32).unwrap();
        phys.vid
            .write_u32(0x31_0004, (pb.len() as u32) << 10)
            .unwrap();
        phys.vid.write_u32(USERD + userd::GP_PUT, 1).unwrap();
        let ctx = ChanCtx {
            chid: 1,
            pdb: s.pdb,
            userd: (Target::Video, USERD),
            gp_base: GP_VA,
            gp_base_hi_ignored: 0,
            gp_entries: 1024,
            privileged: false,
            ce_client: ClientKind::Hub(1),
        };
        let mut hw = Hw {
            phys: &mut phys,
            mmu: &mut mmu,
            now_ns: 0,
        };
        let dwords = pb.len() as u64;
        let work = 16 * (1 + 1);
        let mut exec = Exec::default();
        let mut fx = Effects::default();
        // The GP entry costs one, the dwords one each, the launches their work.
        let mut budget = 1 + dwords + work / 2;
        assert_eq!(
            exec.run(&mut hw, &ctx, &mut budget, &mut fx),
            Outcome::Budget
        );
        assert!(
            fx.ce_bytes < 16 * 4096,
            "stopped before the last copy: {fx:?}"
        );
        assert_eq!(fx.ce_work, fx.ce_bytes / 4096 * 2);
        let mut budget = 1 + dwords + work;
        assert_eq!(exec.run(&mut hw, &ctx, &mut budget, &mut fx), Outcome::Idle);
        assert_eq!(fx.ce_bytes, 16 * 4096, "the rest ran at the next run");
        assert_eq!(fx.dwords, dwords);
    }
}
