//! The access engine's batch: up to [`SLOTS`] independent operations issued together, the
//! way the warps of several SMs miss at once. **gp100emu's own unit, not NVIDIA hardware**;
//! what it produces is what the hardware produces for such a burst:
//!
//! - every slot runs until it completes or misses; each miss writes its own entry to the
//!   replayable fault buffer, in slot order, so one batch lands in the buffer as a burst —
//!   with duplicates (two slots on one page), in whatever address order the slots have, from
//!   several instance blocks (slots in different channels);
//! - a REPLAY (START or START_ACK_ALL) re-issues every waiting slot from the page where it
//!   stopped; each completes, or misses again and writes a new entry, on its own;
//! - a targeted CANCEL ends only the waiting slots of the named GPC and client (slots name
//!   GPC 0..=5, GP100's six GPCs — NVIDIA Tesla P100 whitepaper, "GP100 ... six GPCs" — and
//!   client GPC_T1_0 like the single engine), a global CANCEL ends every waiting slot;
//! - a miss that finds the buffer full is not lost for good: the entry is dropped (the buffer
//!   sets its OVERFLOW bit, [`crate::fault::ring`]) and the slot keeps waiting, so the next
//!   REPLAY re-issues it and it faults again, as a stalled warp does on the GPU.
//!
//! Registers (vendor window, see [`crate::window`]): the slot registers act on the slot
//! `AB_INDEX` selects; `AB_CTRL` = 1 issues slots `0..AB_COUNT`, 2 clears every slot.

use super::{AccessFailure, Channel, InFlight, Progress, Status, Use};
use crate::engine::Hw;
use crate::fault::FaultEntry;
use crate::hw::reason::ChannelLookupError;

/// Most slots in one batch.
pub const SLOTS: usize = 64;
/// GPCs a slot may name (GP100 has six; Tesla P100 whitepaper).
pub const GPCS: u8 = 6;

/// `AB_CTRL` commands.
pub mod ctrl {
    /// Issue slots `0..AB_COUNT`.
    pub const ISSUE: u32 = 1;
    /// Clear every slot (and the batch counters).
    pub const CLEAR: u32 = 2;
}

/// One slot: what the guest asked for and how it went.
#[derive(Debug, Clone, Default)]
pub struct Slot {
    /// Channel id (resolved when the batch is issued).
    pub chid: u32,
    /// Virtual address.
    pub va: u64,
    /// Bytes (1..=2 MiB; 4 for an atomic).
    pub len: u32,
    /// Operand in, result out (as the single engine's DATA).
    pub data: u64,
    /// Operation (the single engine's OP codes).
    pub op: u32,
    /// The GPC its faults name (0..[`GPCS`]).
    pub gpc: u32,
    /// CRC-32 of a long read.
    pub result: u32,
    status: u32,
    faults: u32,
    replays: u32,
    last_fault_type: u8,
    inflight: Option<InFlight>,
}

impl Slot {
    /// STATUS word: bits 1:0 [`Status`], bits 12:8 the last fault type.
    pub fn status_word(&self) -> u32 {
        self.status | u32::from(self.last_fault_type) << 8
    }
    /// Faults this slot reported (written or dropped).
    pub fn faults(&self) -> u32 {
        self.faults
    }
    /// Replays that re-issued it.
    pub fn replays(&self) -> u32 {
        self.replays
    }
    /// Whether it waits for a replay.
    pub fn pending(&self) -> bool {
        self.inflight.is_some()
    }
    /// Bytes a waiting slot has moved so far (its length once done, 0 otherwise).
    pub fn progress(&self) -> u32 {
        match &self.inflight {
            Some(f) => f.progress(),
            None if self.status == Status::Done as u32 => self.len,
            None => 0,
        }
    }
}

/// What one slot's run asks the device to do.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SlotEvent {
    /// Slot completed.
    Done {
        /// Slot index.
        slot: usize,
        /// Its OP code.
        op: u32,
        /// Its VA.
        va: u64,
        /// Faults it took.
        faults: u32,
    },
    /// Slot missed: report this entry.
    Fault(FaultEntry),
    /// Slot ended in an error (an [`AccessFailure::BatchSlot`]).
    Error(AccessFailure),
}

/// The batch registers and slots.
#[derive(Debug, Clone)]
pub struct Batch {
    slots: Vec<Slot>,
    /// `AB_INDEX`.
    pub index: u32,
    /// `AB_COUNT`.
    pub count: u32,
    /// Faults the batch reported since the last clear.
    pub faults: u32,
    /// Of those, entries the fault buffer could not take (full or disabled).
    pub dropped: u32,
    uses: Vec<Use>,
}

impl Default for Batch {
    fn default() -> Self {
        Batch {
            slots: vec![Slot::default(); SLOTS],
            index: 0,
            count: 0,
            faults: 0,
            dropped: 0,
            uses: Vec::new(),
        }
    }
}

impl Batch {
    /// The slot `AB_INDEX` selects (indices wrap into the slot array).
    pub fn selected(&mut self) -> &mut Slot {
        &mut self.slots[self.index as usize % SLOTS]
    }

    /// Slot `i`.
    pub fn slot(&self, i: usize) -> Option<&Slot> {
        self.slots.get(i)
    }

    /// Slots still waiting for a replay.
    pub fn pending(&self) -> u32 {
        self.slots.iter().filter(|s| s.pending()).count() as u32
    }

    /// Slots that completed.
    pub fn done(&self) -> u32 {
        self.count_status(Status::Done)
    }

    /// Slots that ended in an error.
    pub fn errors(&self) -> u32 {
        self.count_status(Status::Error)
    }

    fn count_status(&self, st: Status) -> u32 {
        self.slots.iter().filter(|s| s.status == st as u32).count() as u32
    }

    /// Translations used since the last call (for the checker).
    pub fn take_uses(&mut self) -> Vec<Use> {
        std::mem::take(&mut self.uses)
    }

    /// Clears every slot and counter (AB_CTRL = CLEAR, and before each issue).
    pub fn clear(&mut self) {
        let (index, count) = (self.index, self.count);
        *self = Batch {
            index,
            count,
            ..Batch::default()
        };
    }

    /// Prepares slots `0..count`: `chan(chid)` resolves each slot's channel. A slot with bad
    /// arguments ends in an error at once; the others wait to be run.
    pub fn issue(
        &mut self,
        mut chan: impl FnMut(u32) -> Result<Channel, ChannelLookupError>,
    ) -> Vec<SlotEvent> {
        let n = (self.count as usize).min(SLOTS);
        let mut out = Vec::new();
        self.faults = 0;
        self.dropped = 0;
        for s in &mut self.slots {
            s.inflight = None;
            s.status = Status::Idle as u32;
            s.faults = 0;
            s.replays = 0;
            s.last_fault_type = 0;
        }
        for i in 0..n {
            let s = &mut self.slots[i];
            let r = if s.gpc >= u32::from(GPCS) {
                Err(AccessFailure::Gpc {
                    slot: i as u32,
                    gpc: s.gpc,
                    gpcs: GPCS,
                })
            } else {
                chan(s.chid)
                    .map_err(AccessFailure::from)
                    .and_then(|c| InFlight::new(s.op, c, s.va, s.len, s.data, s.gpc as u8))
            };
            match r {
                Ok(f) => {
                    s.inflight = Some(f);
                    s.status = Status::Pending as u32;
                }
                Err(why) => {
                    s.status = Status::Error as u32;
                    out.push(SlotEvent::Error(why.in_slot(i)));
                }
            }
        }
        out
    }

    /// Runs every waiting slot, in slot order, until it completes, misses or fails.
    pub fn run(&mut self, hw: &mut Hw<'_>) -> Vec<SlotEvent> {
        let mut out = Vec::new();
        for (i, s) in self.slots.iter_mut().enumerate() {
            let Some(mut f) = s.inflight.take() else {
                continue;
            };
            match f.advance(hw, &mut self.uses) {
                Progress::Done => {
                    if let Some(d) = f.data_out() {
                        s.data = d;
                    }
                    if let Some(crc) = f.crc_out() {
                        s.result = crc;
                    }
                    s.status = Status::Done as u32;
                    out.push(SlotEvent::Done {
                        slot: i,
                        op: s.op,
                        va: s.va,
                        faults: s.faults,
                    });
                }
                Progress::Fault(e) => {
                    s.faults += 1;
                    s.last_fault_type = e.fault_type.bits() as u8;
                    s.inflight = Some(f);
                    self.faults += 1;
                    out.push(SlotEvent::Fault(e));
                }
                Progress::Error(why) => {
                    s.status = Status::Error as u32;
                    out.push(SlotEvent::Error(why.in_slot(i)));
                }
            }
        }
        out
    }

    /// The device could not write a fault entry the batch reported (buffer full/disabled).
    pub fn note_dropped(&mut self) {
        self.dropped += 1;
    }

    /// A REPLAY: every waiting slot will be re-issued by the next [`Batch::run`]. Returns
    /// how many wait.
    pub fn replay(&mut self) -> u32 {
        let mut n = 0;
        for s in self.slots.iter_mut().filter(|s| s.pending()) {
            s.replays += 1;
            n += 1;
        }
        n
    }

    /// A CANCEL: targeted at (`hub`, `gpc`, `client`), or global with None. Ends the waiting
    /// slots it names and returns how many.
    pub fn cancel(&mut self, target: Option<(bool, u8, u8)>) -> u32 {
        let mut n = 0;
        for s in self.slots.iter_mut().filter(|s| s.pending()) {
            let named = match target {
                None => true,
                Some((hub, gpc, client)) => {
                    !hub && u32::from(gpc) == s.gpc && client == super::FAULT_CLIENT
                }
            };
            if named {
                s.inflight = None;
                s.status = Status::Error as u32;
                n += 1;
            }
        }
        n
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::access::{Op, FAULT_CLIENT};
    use crate::engine::testutil::Space;
    use crate::fault::FaultType;
    use crate::mem::PhysMem;
    use crate::mmu::format::Pte;
    use crate::mmu::tlb::TlbConfig;
    use crate::mmu::unit::Mmu;
    use crate::timing::P100;
    use vm_memory::{GuestAddress, GuestMemoryMmap};

    fn rig() -> (PhysMem, Mmu, Space, Space) {
        let mut phys = PhysMem::new(64 << 20);
        let ram = GuestMemoryMmap::<()>::from_ranges(&[(GuestAddress(0), 16 << 20)]).unwrap();
        phys.set_sys(Box::new(ram));
        (
            phys,
            Mmu::new(TlbConfig::default(), P100),
            Space::new(0x100_0000),
            Space::new(0x180_0000),
        )
    }

    fn chan(s: &Space, inst: u64) -> Channel {
        Channel {
            pdb: s.pdb,
            pdb_word: s.pdb.addr | 1 << 10 | 0x30,
            inst: (inst, 0),
            chid: 0,
        }
    }

    /// Slot `i` := (channel, operation, VA, length, data, GPC).
    fn set(b: &mut Batch, i: u32, (chid, op, va, len, data, gpc): (u32, Op, u64, u32, u64, u32)) {
        b.index = i;
        let s = b.selected();
        s.chid = chid;
        s.op = op as u32;
        s.va = va;
        s.len = len;
        s.data = data;
        s.gpc = gpc;
    }

    fn faults(ev: &[SlotEvent]) -> Vec<FaultEntry> {
        ev.iter()
            .filter_map(|e| match e {
                SlotEvent::Fault(f) => Some(*f),
                _ => None,
            })
            .collect()
    }

    #[test]
    fn a_batch_faults_as_a_burst_and_each_slot_completes_on_its_own() {
        let (mut phys, mut mmu, mut s0, s1) = rig();
        let (c0, c1) = (chan(&s0, 0x20_0000), chan(&s1, 0x21_0000));
        phys.sys_write(0x30_0000, &7u64.to_le_bytes()).unwrap();
        let mut b = Batch::default();
        // Out of address order, a duplicate page, two channels, a read, a write, an atomic.
        set(&mut b, 0, (1, Op::Write, 0x5000, 8, 0xabcd, 0));
        set(&mut b, 1, (0, Op::Read, 0x1000, 8, 0, 1));
        set(&mut b, 2, (0, Op::Read, 0x1004, 4, 0, 2));
        set(&mut b, 3, (0, Op::AtomicAdd, 0x1008, 4, 5, 3));
        b.count = 4;
        let chans = |chid: u32| if chid == 0 { Ok(c0) } else { Ok(c1) };
        assert!(b.issue(chans).is_empty());
        let mut hw = Hw {
            phys: &mut phys,
            mmu: &mut mmu,
            now_ns: 0,
        };
        let ev = b.run(&mut hw);
        let f = faults(&ev);
        assert_eq!(f.len(), 4, "every slot missed: {ev:?}");
        assert_eq!(
            f.iter()
                .map(|e| (e.addr, e.inst, e.gpc))
                .collect::<Vec<_>>(),
            vec![
                (0x5000, 0x21_0000, 0),
                (0x1000, 0x20_0000, 1),
                (0x1000, 0x20_0000, 2),
                (0x1000, 0x20_0000, 3)
            ]
        );
        assert!(f.iter().all(|e| e.client == FAULT_CLIENT));
        assert_eq!((b.pending(), b.faults), (4, 4));
        // The driver maps page 0x1000 of channel 0 only (atomics allowed) and replays: the
        // three slots there complete, the write in channel 1 faults again.
        s0.map(hw.phys, 0x1000, Pte::pfn_system(0x30_0000, true, true));
        hw.mmu.invalidate_everything();
        assert_eq!(b.replay(), 4);
        let ev = b.run(&mut hw);
        assert_eq!(faults(&ev).len(), 1);
        assert_eq!(b.done(), 3);
        assert_eq!(
            b.slot(1).unwrap().data & 0xffff_ffff,
            7,
            "read saw the memory"
        );
        assert_eq!(
            b.slot(3).unwrap().data,
            0,
            "atomic returns the old word (bytes 8..12)"
        );
        let mut w = [0u8; 4];
        hw.phys.sys_read(0x30_0008, &mut w).unwrap();
        assert_eq!(u32::from_le_bytes(w), 5);
        assert_eq!(b.slot(0).unwrap().replays(), 1);
        assert_eq!(b.slot(0).unwrap().faults(), 2);
        assert!(b.slot(0).unwrap().pending());
        assert_eq!(b.slot(0).unwrap().progress(), 0);
        assert_eq!(b.slot(1).unwrap().progress(), 8);
    }

    #[test]
    fn a_targeted_cancel_ends_only_the_slots_it_names() {
        let (mut phys, mut mmu, s0, _) = rig();
        let c0 = chan(&s0, 0x20_0000);
        let mut b = Batch::default();
        for i in 0..6 {
            let va = 0x9000 + u64::from(i) * 0x1000;
            set(&mut b, i, (0, Op::Read, va, 4, 0, i % 3));
        }
        b.count = 6;
        b.issue(|_| Ok(c0));
        let mut hw = Hw {
            phys: &mut phys,
            mmu: &mut mmu,
            now_ns: 0,
        };
        assert_eq!(faults(&b.run(&mut hw)).len(), 6);
        assert_eq!(b.cancel(Some((true, 1, FAULT_CLIENT))), 0, "hub: not ours");
        assert_eq!(
            b.cancel(Some((false, 1, FAULT_CLIENT + 1))),
            0,
            "other client"
        );
        assert_eq!(
            b.cancel(Some((false, 1, FAULT_CLIENT))),
            2,
            "GPC 1: slots 1 and 4"
        );
        assert_eq!((b.pending(), b.errors()), (4, 2));
        assert!(!b.slot(1).unwrap().pending() && !b.slot(4).unwrap().pending());
        assert_eq!(b.cancel(None), 4);
        assert_eq!(b.pending(), 0);
        assert_eq!(b.replay(), 0, "nothing left to replay");
    }

    #[test]
    fn bad_slots_fail_alone_and_clear_resets() {
        let (_, _, s0, _) = rig();
        let c0 = chan(&s0, 0x20_0000);
        let mut b = Batch::default();
        set(&mut b, 0, (0, Op::Read, 0x1000, 0, 0, 0)); // zero length
        set(&mut b, 1, (9, Op::Read, 0x1000, 4, 0, 0)); // unknown channel
        set(&mut b, 2, (0, Op::Read, 0x1000, 4, 0, GPCS as u32)); // no such GPC
        set(&mut b, 3, (0, Op::AtomicAdd, 0x1002, 4, 0, 0)); // misaligned atomic
        set(&mut b, 4, (0, Op::Read, 0x1000, 4, 0, 0)); // fine
        b.count = 5;
        let ev = b.issue(|chid| {
            if chid == 0 {
                Ok(c0)
            } else {
                Err(ChannelLookupError::NotBound(chid))
            }
        });
        assert_eq!(ev.len(), 4, "{ev:?}");
        assert_eq!((b.errors(), b.pending()), (4, 1));
        // Each failure is the engine's typed reason inside `BatchSlot`, naming the slot.
        let want = [
            AccessFailure::Length {
                len: 0,
                max: crate::access::MAX_LEN,
            }
            .in_slot(0),
            AccessFailure::Channel(ChannelLookupError::NotBound(9)).in_slot(1),
            AccessFailure::Gpc {
                slot: 2,
                gpc: GPCS.into(),
                gpcs: GPCS,
            }
            .in_slot(2),
            AccessFailure::AtomicMisaligned.in_slot(3),
        ];
        let got: Vec<&AccessFailure> = ev
            .iter()
            .filter_map(|e| match e {
                SlotEvent::Error(why) => Some(why),
                _ => None,
            })
            .collect();
        assert_eq!(got, want.iter().collect::<Vec<_>>());
        assert_eq!(
            got[2].to_string(),
            "batch slot 2: slot 2: GPC 6 outside 0..6"
        );
        // A count beyond the slots is bounded, an index beyond them wraps.
        b.count = 1000;
        b.index = 64 + 4;
        assert_eq!(b.selected().op, Op::Read as u32);
        b.clear();
        assert_eq!((b.errors(), b.pending(), b.count), (0, 0, 1000));
        assert_eq!(
            b.issue(|_| Ok(c0)).len(),
            SLOTS,
            "64 cleared slots: op 0 is unknown"
        );
    }

    #[test]
    fn a_fault_type_is_kept_per_slot() {
        let (mut phys, mut mmu, mut s0, _) = rig();
        let c0 = chan(&s0, 0x20_0000);
        s0.map(&mut phys, 0x4000, Pte::pfn_system(0x40_0000, false, false));
        let mut b = Batch::default();
        set(&mut b, 0, (0, Op::Write, 0x4000, 4, 1, 0)); // read-only page
        set(&mut b, 1, (0, Op::Read, 0x4000, 4, 0, 0));
        b.count = 2;
        b.issue(|_| Ok(c0));
        let mut hw = Hw {
            phys: &mut phys,
            mmu: &mut mmu,
            now_ns: 0,
        };
        let ev = b.run(&mut hw);
        assert_eq!(faults(&ev)[0].fault_type, FaultType::RoViolation);
        assert_eq!(
            b.slot(0).unwrap().status_word() >> 8,
            FaultType::RoViolation.bits()
        );
        assert_eq!(b.slot(1).unwrap().status_word() & 3, Status::Done as u32);
    }
}
