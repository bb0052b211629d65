//! The access engine: **gp100emu's own unit, not NVIDIA hardware.** It performs reads,
//! writes and atomics at virtual addresses of a channel's address space through the MMU,
//! exactly where a shader's loads and stores would go, and reports misses as replayable
//! faults with the identity of a real replayable source: GPC 0, client `GPC_T1_0` (a
//! texture unit; gp100 `dev_fault.h` NV_PFAULT_CLIENT_GPC_T1_0 = 1), MMU engine GRAPHICS (0),
//! the channel's instance block. A faulted operation waits; REPLAY (0x100cbc with
//! REPLAY=START, what nouveau's `gp100_vmm_fault_replay` writes) re-issues it from the page
//! that faulted; CANCEL (targeted at our GPC/client, or global) ends it with an error.
//!
//! Guest tests drive it through the vendor window (see [`crate::window`]); traces drive
//! it the same way, since the window is BAR0.
//!
//! Only address spaces whose instance block enables replayable faults (PDB word bit 4
//! FAULT_REPLAY_TEX, set by nouveau's `gp100_vmm_join` for SVM address spaces) take
//! replayable faults: on any other the GPU would raise a fatal (non-replayable) MMU fault,
//! which the engine reports as an error instead of writing the replayable buffer.

use crate::engine::Hw;
use crate::fault::{AccessType, FaultEntry};
pub use crate::hw::reason::AccessFailure;
use crate::hw::reason::ChannelLookupError;
use crate::mem::{GpuMemory, Target};
use crate::mmu::tlb::ClientKind;
use crate::mmu::unit::Translation;
use crate::mmu::walk::{Access, PageSize, Pdb};

pub mod batch;

/// The TLB client the engine uses (a GPC client: HUBTLB_ONLY invalidates do not touch it).
pub const CLIENT: ClientKind = ClientKind::Gpc(0);
/// Fault-entry client id: GPC_T1_0.
pub const FAULT_CLIENT: u8 = 1;
/// Fault-entry GPC.
pub const FAULT_GPC: u8 = 0;
/// Longest operation (bytes).
pub const MAX_LEN: u32 = 2 << 20;
/// PDB word bit: FAULT_REPLAY_TEX.
const REPLAY_TEX: u64 = 1 << 4;

/// Operations (the OP register).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Op {
    /// Read LEN bytes: up to 8 land in DATA, more are summarised as a CRC-32 in RESULT.
    Read = 1,
    /// Write LEN bytes: up to 8 from DATA; more as the pattern `u32 word k = DATA_LO + k`.
    Write = 2,
    /// 32-bit atomic add of DATA_LO at VA; DATA_LO returns the old value.
    AtomicAdd = 3,
    /// Translate only (a prefetch): faults are reported, no data moves.
    Prefetch = 4,
}

impl Op {
    fn from_u32(v: u32) -> Option<Self> {
        Some(match v {
            1 => Op::Read,
            2 => Op::Write,
            3 => Op::AtomicAdd,
            4 => Op::Prefetch,
            _ => return None,
        })
    }
    fn access(self) -> Access {
        match self {
            Op::Read => Access::Read,
            Op::Write => Access::Write,
            Op::AtomicAdd => Access::Atomic,
            Op::Prefetch => Access::Prefetch,
        }
    }
    fn fault_access(self) -> AccessType {
        match self {
            Op::Read => AccessType::Read,
            Op::Write => AccessType::Write,
            Op::AtomicAdd => AccessType::Atomic,
            Op::Prefetch => AccessType::Prefetch,
        }
    }
}

/// STATUS values.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Status {
    /// Nothing started since reset.
    Idle = 0,
    /// The last operation completed.
    Done = 1,
    /// Faulted; waiting for a replay.
    Pending = 2,
    /// Ended with an error (cancelled, bad arguments, non-replayable space, memory error).
    Error = 3,
}

/// The channel an operation runs in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Channel {
    /// Its address space.
    pub pdb: Pdb,
    /// The full PDB word (for the replay bits).
    pub pdb_word: u64,
    /// Instance block address and aperture (0 video, 2/3 system).
    pub inst: (u64, u8),
    /// Its channel id (what the checker's findings name).
    pub chid: u32,
}

/// One operation between its start and its end: how far it got and what it read.
#[derive(Debug, Clone)]
pub(crate) struct InFlight {
    op: Op,
    chan: Channel,
    va: u64,
    len: u32,
    done: u32,
    data: u64,
    crc: crc32fast::Hasher,
    read: [u8; 8],
    /// The GPC its faults name (the batch spreads its slots over GPCs; see [`batch`]).
    gpc: u8,
}

/// Where one run of an operation stopped.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Progress {
    /// Every byte moved.
    Done,
    /// A page missed: report this entry; the operation waits at that page.
    Fault(FaultEntry),
    /// It cannot go on (non-replayable space, memory error).
    Error(AccessFailure),
}

impl InFlight {
    /// Checks an operation's arguments (the atomic is always 4 bytes) and prepares it.
    pub(crate) fn new(
        op: u32,
        chan: Channel,
        va: u64,
        len: u32,
        data: u64,
        gpc: u8,
    ) -> Result<Self, AccessFailure> {
        let Some(op) = Op::from_u32(op) else {
            return Err(AccessFailure::UnknownOp(op));
        };
        let len = match op {
            Op::AtomicAdd => 4,
            _ => len,
        };
        if len == 0 || len > MAX_LEN {
            return Err(AccessFailure::Length { len, max: MAX_LEN });
        }
        if op == Op::AtomicAdd && !va.is_multiple_of(4) {
            return Err(AccessFailure::AtomicMisaligned);
        }
        Ok(InFlight {
            op,
            chan,
            va,
            len,
            done: 0,
            data,
            crc: crc32fast::Hasher::new(),
            read: [0; 8],
            gpc,
        })
    }

    /// What comes back in DATA once it is done: the bytes a short read got or an atomic's
    /// old value (other operations leave DATA alone).
    pub(crate) fn data_out(&self) -> Option<u64> {
        match self.op {
            Op::Read if self.len <= 8 => Some(u64::from_le_bytes(self.read)),
            Op::AtomicAdd => Some(self.data),
            _ => None,
        }
    }

    /// Bytes moved so far.
    pub(crate) fn progress(&self) -> u32 {
        self.done
    }

    /// The CRC-32 of a long read once it is done.
    pub(crate) fn crc_out(&self) -> Option<u32> {
        (self.op == Op::Read && self.len > 8).then(|| self.crc.clone().finalize())
    }

    /// Moves data page by page from where it stopped until it completes, faults or fails;
    /// every translation used is pushed to `uses` (for the PTE checker).
    pub(crate) fn advance(&mut self, hw: &mut Hw<'_>, uses: &mut Vec<Use>) -> Progress {
        while self.done < self.len {
            let va = self.va.wrapping_add(u64::from(self.done));
            let n = ((va | 0xfff) - va + 1).min(u64::from(self.len - self.done)) as u32;
            let t = hw.mmu.translate(
                &*hw.phys,
                CLIENT,
                self.chan.pdb,
                va,
                self.op.access(),
                false,
            );
            let (target, pa, size) = match t {
                Ok(Translation::Mapped {
                    target,
                    pa,
                    page_size,
                    ..
                }) => (Some(target), pa, page_size),
                Ok(Translation::Sparse) => (None, 0, PageSize::K4),
                Err(w) => {
                    if self.chan.pdb_word & REPLAY_TEX == 0 {
                        return Progress::Error(AccessFailure::NotReplayable {
                            fault_type: w.fault_type,
                            va,
                        });
                    }
                    return Progress::Fault(FaultEntry {
                        inst: self.chan.inst.0,
                        inst_aperture: self.chan.inst.1,
                        addr: va & !0xfff,
                        timestamp: 0,
                        engine: 0,
                        valid: false,
                        gpc: self.gpc,
                        hub: false,
                        access: self.op.fault_access(),
                        client: FAULT_CLIENT,
                        fault_type: w.fault_type,
                    });
                }
            };
            if let Some(tg) = target {
                uses.push(Use {
                    va,
                    target: tg,
                    pa,
                    page_size: size,
                    write: matches!(self.op, Op::Write | Op::AtomicAdd),
                    chid: self.chan.chid,
                    pdb: self.chan.pdb,
                    inst: self.chan.inst.0,
                });
            }
            if let Err(why) = self.move_data(hw, target, pa, n) {
                return Progress::Error(why);
            }
            self.done += n;
        }
        Progress::Done
    }

    fn move_data(
        &mut self,
        hw: &mut Hw<'_>,
        target: Option<Target>,
        pa: u64,
        n: u32,
    ) -> Result<(), AccessFailure> {
        let mem_err = AccessFailure::Memory;
        match self.op {
            Op::Prefetch => Ok(()),
            Op::Read => {
                let mut buf = vec![0u8; n as usize];
                if let Some(t) = target {
                    hw.phys.read_bytes(t, pa, &mut buf).map_err(mem_err)?;
                }
                if self.len <= 8 {
                    let at = self.done as usize;
                    self.read[at..at + n as usize].copy_from_slice(&buf);
                } else {
                    self.crc.update(&buf);
                }
                Ok(())
            }
            Op::Write => {
                let buf: Vec<u8> = if self.len <= 8 {
                    let b = self.data.to_le_bytes();
                    b[self.done as usize..(self.done + n) as usize].to_vec()
                } else {
                    (self.done..self.done + n)
                        .map(|i| {
                            let word = (self.data as u32).wrapping_add(i / 4);
                            word.to_le_bytes()[(i % 4) as usize]
                        })
                        .collect()
                };
                if let Some(t) = target {
                    hw.phys.write_bytes(t, pa, &buf).map_err(mem_err)?;
                }
                Ok(())
            }
            Op::AtomicAdd => {
                let Some(t) = target else {
                    // Sparse: reads zero, the write is dropped.
                    self.data = 0;
                    return Ok(());
                };
                let old = hw.phys.read_u32(t, pa).map_err(mem_err)?;
                hw.phys
                    .write_u32(t, pa, old.wrapping_add(self.data as u32))
                    .map_err(mem_err)?;
                self.data = u64::from(old);
                Ok(())
            }
        }
    }
}

/// What a step wants the device to do.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StepResult {
    /// Finished (or nothing to do).
    Done,
    /// Report this fault; the operation waits.
    Fault(FaultEntry),
    /// Ended with an error.
    Error(AccessFailure),
}

/// A GPU use of a translation, for the PTE checker.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Use {
    /// Virtual address.
    pub va: u64,
    /// Memory.
    pub target: Target,
    /// Physical address.
    pub pa: u64,
    /// The page size of the PTE that translated it.
    pub page_size: PageSize,
    /// Whether the access wrote.
    pub write: bool,
    /// The channel it was made in.
    pub chid: u32,
    /// The address space it was made in (the checker judges it against its owner's).
    pub pdb: Pdb,
    /// That channel's instance block address.
    pub inst: u64,
}

/// The engine's registers and the operation in flight.
#[derive(Debug, Clone, Default)]
pub struct AccessEngine {
    /// CHID register.
    pub chid: u32,
    /// VA register.
    pub va: u64,
    /// LEN register.
    pub len: u32,
    /// DATA register (operand / result).
    pub data: u64,
    /// RESULT register (CRC-32 of a long read).
    pub result: u32,
    status: u32,
    last_op: u32,
    faults: u32,
    replays: u32,
    last_fault_type: u8,
    last_error: Option<AccessFailure>,
    inflight: Option<InFlight>,
    uses: Vec<Use>,
}

impl AccessEngine {
    /// STATUS: bits 1:0 [`Status`], bits 12:8 the last fault type reported.
    pub fn status_word(&self) -> u32 {
        self.status | u32::from(self.last_fault_type) << 8
    }

    /// Faults reported for the current operation.
    pub fn faults(&self) -> u32 {
        self.faults
    }

    /// Replays that resumed the current operation.
    pub fn replays(&self) -> u32 {
        self.replays
    }

    /// The OP register (the last operation started).
    pub fn last_op(&self) -> u32 {
        self.last_op
    }

    /// Why the last operation failed (None before any failure).
    pub fn last_error(&self) -> Option<&AccessFailure> {
        self.last_error.as_ref()
    }

    /// Translations used since the last call (for the checker).
    pub fn take_uses(&mut self) -> Vec<Use> {
        std::mem::take(&mut self.uses)
    }

    /// Whether an operation is waiting for a replay.
    pub fn pending(&self) -> bool {
        self.inflight.is_some()
    }

    /// Starts operation `op` in `chan` (an error: the channel could not be resolved, with
    /// why).
    pub fn start(
        &mut self,
        op: u32,
        chan: Result<Channel, ChannelLookupError>,
    ) -> Result<(), AccessFailure> {
        self.last_op = op;
        self.faults = 0;
        self.replays = 0;
        self.last_fault_type = 0;
        self.inflight = None;
        let fail = |s: &mut Self, why: AccessFailure| {
            s.status = Status::Error as u32;
            s.last_error = Some(why.clone());
            Err(why)
        };
        if Op::from_u32(op).is_none() {
            return fail(self, AccessFailure::UnknownOp(op));
        }
        let chan = match chan {
            Ok(c) => c,
            Err(why) => return fail(self, why.into()),
        };
        match InFlight::new(op, chan, self.va, self.len, self.data, FAULT_GPC) {
            Ok(f) => self.inflight = Some(f),
            Err(why) => return fail(self, why),
        }
        Ok(())
    }

    /// Runs the operation in flight until it completes or faults.
    pub fn step(&mut self, hw: &mut Hw<'_>) -> StepResult {
        let Some(mut f) = self.inflight.take() else {
            return StepResult::Done;
        };
        match f.advance(hw, &mut self.uses) {
            Progress::Done => {
                if let Some(d) = f.data_out() {
                    self.data = d;
                }
                if let Some(crc) = f.crc_out() {
                    self.result = crc;
                }
                self.status = Status::Done as u32;
                StepResult::Done
            }
            Progress::Fault(e) => {
                self.faults += 1;
                self.last_fault_type = e.fault_type.bits() as u8;
                self.status = Status::Pending as u32;
                self.inflight = Some(f);
                StepResult::Fault(e)
            }
            Progress::Error(why) => {
                self.status = Status::Error as u32;
                self.last_error = Some(why.clone());
                StepResult::Error(why)
            }
        }
    }

    /// A REPLAY: re-issues the waiting operation. Returns whether there was one.
    pub fn replay(&mut self) -> bool {
        if self.inflight.is_some() {
            self.replays += 1;
            true
        } else {
            false
        }
    }

    /// A CANCEL (targeted at `gpc`/`client` of a GPC client, or global with None).
    pub fn cancel(&mut self, target: Option<(bool, u8, u8)>) -> bool {
        let ours = match target {
            None => true,
            Some((hub, gpc, client)) => !hub && gpc == FAULT_GPC && client == FAULT_CLIENT,
        };
        if ours && self.inflight.take().is_some() {
            self.status = Status::Error as u32;
            self.last_error = Some(AccessFailure::Cancelled);
            return true;
        }
        false
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::engine::testutil::Space;
    use crate::fault::FaultType;
    use crate::mem::PhysMem;
    use crate::mmu::format::Pte;
    use crate::mmu::tlb::TlbConfig;
    use crate::mmu::unit::Mmu;
    use crate::timing::P100;
    use vm_memory::{GuestAddress, GuestMemoryMmap};

    fn rig() -> (PhysMem, Mmu, Space) {
        let mut phys = PhysMem::new(64 << 20);
        let ram = GuestMemoryMmap::<()>::from_ranges(&[(GuestAddress(0), 16 << 20)]).unwrap();
        phys.set_sys(Box::new(ram));
        (
            phys,
            Mmu::new(TlbConfig::default(), P100),
            Space::new(0x100_0000),
        )
    }

    fn chan(s: &Space, replayable: bool) -> Channel {
        Channel {
            pdb: s.pdb,
            pdb_word: s.pdb.addr | 1 << 10 | if replayable { 0x30 } else { 0 },
            inst: (0x20_0000, 0),
            chid: 0,
        }
    }

    #[test]
    fn a_miss_faults_waits_and_completes_after_the_pte_and_a_replay() {
        let (mut phys, mut mmu, mut s) = rig();
        let mut ae = AccessEngine {
            va: 0x7f00_0000_1ff8,
            len: 8,
            data: 0x1122_3344_5566_7788,
            ..Default::default()
        };
        ae.start(Op::Write as u32, Ok(chan(&s, true))).unwrap();
        let mut hw = Hw {
            phys: &mut phys,
            mmu: &mut mmu,
            now_ns: 0,
        };
        let StepResult::Fault(e) = ae.step(&mut hw) else {
            panic!("should fault")
        };
        assert_eq!(e.addr, 0x7f00_0000_1000);
        assert_eq!(
            (e.inst, e.gpc, e.client, e.access),
            (0x20_0000, 0, 1, AccessType::Write)
        );
        assert_eq!(e.fault_type, FaultType::Pde);
        assert_eq!(ae.status_word() & 3, Status::Pending as u32);
        // The driver maps the page (system memory, as nouveau's PFNMAP does) and replays.
        s.map(
            hw.phys,
            0x7f00_0000_1000,
            Pte::pfn_system(0x30_0000, true, false),
        );
        // nouveau's flush after PFNMAP (REPLAY 0xb also invalidates everything first).
        hw.mmu.invalidate_everything();
        assert!(ae.replay());
        assert_eq!(ae.step(&mut hw), StepResult::Done);
        let mut b = [0u8; 8];
        hw.phys.sys_read(0x30_0ff8, &mut b).unwrap();
        assert_eq!(u64::from_le_bytes(b), 0x1122_3344_5566_7788);
        assert_eq!((ae.faults(), ae.replays()), (1, 1));
        assert_eq!(ae.take_uses().len(), 1);
    }

    #[test]
    fn long_reads_fault_page_by_page_and_keep_their_progress() {
        let (mut phys, mut mmu, mut s) = rig();
        for p in 0..3u64 {
            phys.sys_write(0x40_0000 + p * 0x1000, &[p as u8 + 1; 4096])
                .unwrap();
        }
        s.map(
            &mut phys,
            0x10_0000,
            Pte::pfn_system(0x40_0000, true, false),
        );
        let mut ae = AccessEngine {
            va: 0x10_0000,
            len: 3 * 4096,
            ..Default::default()
        };
        ae.start(Op::Read as u32, Ok(chan(&s, true))).unwrap();
        let mut hw = Hw {
            phys: &mut phys,
            mmu: &mut mmu,
            now_ns: 0,
        };
        let StepResult::Fault(e) = ae.step(&mut hw) else {
            panic!()
        };
        assert_eq!(e.addr, 0x10_1000, "the first page went through");
        s.map(hw.phys, 0x10_1000, Pte::pfn_system(0x40_1000, false, false));
        hw.mmu.invalidate_everything();
        ae.replay();
        let StepResult::Fault(e) = ae.step(&mut hw) else {
            panic!()
        };
        assert_eq!(e.addr, 0x10_2000);
        s.map(hw.phys, 0x10_2000, Pte::pfn_system(0x40_2000, false, false));
        hw.mmu.invalidate_everything();
        ae.replay();
        assert_eq!(ae.step(&mut hw), StepResult::Done);
        let mut want = crc32fast::Hasher::new();
        for p in 0..3u8 {
            want.update(&[p + 1; 4096]);
        }
        assert_eq!(ae.result, want.finalize());
    }

    #[test]
    fn atomics_need_atomic_permission_and_cancel_ends_an_operation() {
        let (mut phys, mut mmu, mut s) = rig();
        phys.sys_write(0x50_0010, &41u32.to_le_bytes()).unwrap();
        // A normal SVM mapping has ATOMIC_DISABLE: an atomic faults with ATOMIC_VIOLATION.
        s.map(
            &mut phys,
            0x20_0000,
            Pte::pfn_system(0x50_0000, true, false),
        );
        let mut ae = AccessEngine {
            va: 0x20_0010,
            data: 1,
            ..Default::default()
        };
        ae.start(Op::AtomicAdd as u32, Ok(chan(&s, true))).unwrap();
        let mut hw = Hw {
            phys: &mut phys,
            mmu: &mut mmu,
            now_ns: 0,
        };
        let StepResult::Fault(e) = ae.step(&mut hw) else {
            panic!()
        };
        assert_eq!(
            (e.access, e.fault_type),
            (AccessType::Atomic, FaultType::AtomicViolation)
        );
        // nouveau's device-exclusive mapping clears ATOMIC_DISABLE; the stale TLB entry must
        // go first (nouveau's flush), then the replay succeeds.
        s.map(hw.phys, 0x20_0000, Pte::pfn_system(0x50_0000, true, true));
        hw.mmu.invalidate_everything();
        ae.replay();
        assert_eq!(ae.step(&mut hw), StepResult::Done);
        assert_eq!(ae.data, 41, "old value");
        let mut b = [0u8; 4];
        hw.phys.sys_read(0x50_0010, &mut b).unwrap();
        assert_eq!(u32::from_le_bytes(b), 42);
        // An operation nobody services can be cancelled (targeted at our GPC client).
        ae.va = 0x90_0000;
        ae.len = 4;
        ae.start(Op::Read as u32, Ok(chan(&s, true))).unwrap();
        assert!(matches!(ae.step(&mut hw), StepResult::Fault(_)));
        assert!(!ae.cancel(Some((true, 0, 1))), "a hub cancel is not ours");
        assert!(ae.cancel(Some((false, FAULT_GPC, FAULT_CLIENT))));
        assert_eq!(ae.status_word() & 3, Status::Error as u32);
        assert!(!ae.pending());
    }

    #[test]
    fn bad_requests_and_non_replayable_spaces_are_errors() {
        let (mut phys, mut mmu, s) = rig();
        let mut ae = AccessEngine {
            va: 0x1000,
            len: 0,
            ..Default::default()
        };
        assert!(ae.start(Op::Read as u32, Ok(chan(&s, true))).is_err());
        ae.len = MAX_LEN + 1;
        assert!(ae.start(Op::Read as u32, Ok(chan(&s, true))).is_err());
        assert!(ae.start(99, Ok(chan(&s, true))).is_err());
        assert!(ae.start(1, Err(ChannelLookupError::NotBound(9))).is_err());
        ae.len = 4;
        ae.start(Op::Read as u32, Ok(chan(&s, false))).unwrap();
        let mut hw = Hw {
            phys: &mut phys,
            mmu: &mut mmu,
            now_ns: 0,
        };
        assert!(matches!(ae.step(&mut hw), StepResult::Error(_)));
        assert!(ae
            .last_error()
            .is_some_and(|e| e.to_string().contains("without replayable faults")));
    }

    /// The engine's failures are typed (the `AccessFailed` event carries them), each with
    /// what it names: the operation, the length and its bound, the channel, the fault and
    /// its address, the memory error; a cancel leaves `Cancelled` as the last error.
    #[test]
    fn failures_are_typed_with_what_they_name() {
        let (mut phys, mut mmu, mut s) = rig();
        // A page mapped to system memory beyond guest RAM (16 MiB here), before any walk
        // caches its page directories.
        s.map(
            &mut phys,
            0x3000,
            Pte::pfn_system(0x2000_0000, false, false),
        );
        let mut ae = AccessEngine::default();
        let len = AccessFailure::Length {
            len: 0,
            max: MAX_LEN,
        };
        // (OP, VA, LEN, replayable space or the channel's lookup error) -> the failure.
        let refused = [
            (1, 0x1000, 0, Ok(true), len.clone()),
            (99, 0x1000, 4, Ok(true), AccessFailure::UnknownOp(99)),
            (
                1,
                0x1000,
                4,
                Err(ChannelLookupError::NotBound(9)),
                ChannelLookupError::NotBound(9).into(),
            ),
            (3, 0x1002, 4, Ok(true), AccessFailure::AtomicMisaligned),
        ];
        for (op, va, n, c, want) in refused {
            (ae.va, ae.len) = (va, n);
            assert_eq!(ae.start(op, c.map(|r| chan(&s, r))), Err(want.clone()));
            assert_eq!(ae.last_error(), Some(&want));
        }
        // (VA, replayable space) -> what stepping it ends in.
        let mut run = |ae: &mut AccessEngine, va: u64, replayable: bool| {
            (ae.va, ae.len) = (va, 4);
            ae.start(Op::Read as u32, Ok(chan(&s, replayable))).unwrap();
            ae.step(&mut Hw {
                phys: &mut phys,
                mmu: &mut mmu,
                now_ns: 0,
            })
        };
        let r = run(&mut ae, 0x1000, false);
        assert!(
            matches!(
                r,
                StepResult::Error(AccessFailure::NotReplayable { va: 0x1000, .. })
            ),
            "{r:?}"
        );
        let r = run(&mut ae, 0x3000, true);
        assert!(
            matches!(
                &r,
                StepResult::Error(AccessFailure::Memory(crate::mem::MemError::OutOfRange {
                    addr: 0x2000_0000,
                    ..
                }))
            ),
            "{r:?}"
        );
        assert_eq!(StepResult::Error(ae.last_error().unwrap().clone()), r);
        // A waiting operation that is cancelled.
        assert!(matches!(run(&mut ae, 0x5000, true), StepResult::Fault(_)));
        assert!(ae.cancel(None));
        assert_eq!(ae.last_error(), Some(&AccessFailure::Cancelled));
    }
}
