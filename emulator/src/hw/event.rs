//! The model's events: what the device did on its own while handling one host access (DMA,
//! walks, faults, checker verdicts), the bottom layer every unit reports through.
//!
//! The trace records these postcard-encoded (variant index, then fields), so the variant order
//! is the trace format. **Compatibility rule: append only.** A new event is a new variant at
//! the end; existing variants keep their position and fields, so every committed trace still
//! decodes. `variant_tags_are_pinned` below pins each variant's tag; a change that moves one
//! fails it (bumping `FORMAT_VERSION` in `host/trace/file.rs` instead means re-recording every
//! trace in traces/). The typed reasons inside events ([`crate::hw::reason`]) follow the same
//! rule, pinned by `reason_tags_are_pinned` there.
//!
//! **Old String reasons.** Builds before the typed reasons recorded `RunlistRejected`,
//! `ChannelError` and `AccessError` with the reason as text. Those variants stay decodable,
//! but the model now emits only their typed successors `RunlistRefused`, `ChannelStopped`
//! and `AccessFailed`. Replay compares what the model did with what a trace holds through
//! [`ModelEvent::matches_recorded`]: equal events match, and a recorded old String event
//! matches the typed successor with the same runlist or channel when the typed reason's
//! `Display` text equals the recorded string (any other text is a mismatch). So the reasons'
//! texts are part of that compatibility: they are pinned to the old messages.

use std::fmt;

use serde::{Deserialize, Serialize};

use crate::hw::reason::{AccessFailure, ChannelFault, RunlistError};

/// Bytes of an access: up to 8 inline (every BAR access), more on the heap (config space).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum Data {
    /// `len` (1..=8) little-endian bytes of `value`.
    Small {
        /// Number of bytes.
        len: u8,
        /// The bytes, little endian.
        value: u64,
    },
    /// Longer accesses.
    Bytes(Vec<u8>),
}

impl Data {
    /// From a buffer.
    pub fn from_slice(b: &[u8]) -> Self {
        if !b.is_empty() && b.len() <= 8 {
            let mut v = [0u8; 8];
            v[..b.len()].copy_from_slice(b);
            Data::Small {
                len: b.len() as u8,
                value: u64::from_le_bytes(v),
            }
        } else {
            Data::Bytes(b.to_vec())
        }
    }

    /// Length in bytes.
    pub fn len(&self) -> usize {
        match self {
            Data::Small { len, .. } => (*len).min(8) as usize,
            Data::Bytes(b) => b.len(),
        }
    }

    /// Whether it holds no bytes.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Whether it equals a buffer.
    pub fn matches(&self, b: &[u8]) -> bool {
        match self {
            Data::Small { len, value } => {
                let n = (*len).min(8) as usize;
                n == b.len() && value.to_le_bytes()[..n] == *b
            }
            Data::Bytes(v) => v == b,
        }
    }

    /// Copies into a fresh buffer.
    pub fn to_vec(&self) -> Vec<u8> {
        match self {
            Data::Small { len, value } => value.to_le_bytes()[..(*len).min(8) as usize].to_vec(),
            Data::Bytes(v) => v.clone(),
        }
    }
}

impl fmt::Display for Data {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Data::Small { len, value } => {
                write!(f, "{:#0w$x}", value, w = 2 + 2 * (*len).min(8) as usize)
            }
            Data::Bytes(v) if v.len() <= 16 => {
                for b in v {
                    write!(f, "{b:02x}")?;
                }
                Ok(())
            }
            Data::Bytes(v) => write!(f, "<{} bytes>", v.len()),
        }
    }
}

/// What the model did inside the device: recorded so replay checks it and timelines show it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum ModelEvent {
    /// The device read guest RAM (DMA). The bytes read are kept, so replay can serve the
    /// same bytes again without the guest; `None` when the read failed (outside guest RAM).
    DmaRead {
        /// Guest-physical address.
        addr: u64,
        /// Bytes asked for.
        len: u32,
        /// What was read (an input to the model during replay).
        data: Option<Data>,
    },
    /// The device wrote guest RAM (DMA): its address, length and a CRC-32 of the bytes, and
    /// the bytes themselves when the trace was recorded with `--trace-data` (outputs replay
    /// checks).
    DmaWrite {
        /// Guest-physical address.
        addr: u64,
        /// Bytes written.
        len: u32,
        /// CRC-32 (IEEE) of the bytes.
        crc: u32,
        /// Whether the write reached guest RAM.
        ok: bool,
        /// The bytes (only with `--trace-data`).
        data: Option<Data>,
    },
    /// A TLB invalidate was processed (the trigger word, the PDB registers, entries dropped).
    Invalidate {
        /// The word written to the trigger register.
        word: u32,
        /// The PDB registers (high << 32 | low).
        pdb: u64,
        /// TLB entries dropped.
        dropped: u32,
    },
    /// The MMU walked the page tables (a TLB miss).
    Walk {
        /// The virtual address translated.
        va: u64,
        /// Physical address found; `None` when the walk faulted or found a sparse page.
        pa: Option<u64>,
        /// `NV_PFAULT_FAULT_TYPE_*` when it faulted.
        fault_type: Option<u8>,
        /// Page-table reads it made.
        reads: u8,
        /// Of which from system memory.
        sys_reads: u8,
        /// Cycles the reads cost.
        cycles: u32,
    },
    /// A BAR1 or BAR3 access the bound address space does not map (the hardware reports a
    /// BAR1/BAR2 MMU fault; the model reads zero and drops writes).
    ApertureFault {
        /// The PCI BAR (1, or 3 for nouveau's BAR2).
        bar: u8,
        /// Offset in the BAR (a virtual address of its address space).
        offset: u64,
    },
    /// The host accepted a runlist submission.
    RunlistSubmitted {
        /// Runlist id.
        runlist: u8,
        /// Channels on it.
        channels: u32,
    },
    /// The host rejected a runlist submission (the scheduler's SCHED_ERROR), its reason as
    /// text. Recorded by older builds; the model now emits [`ModelEvent::RunlistRefused`].
    RunlistRejected {
        /// Runlist id.
        runlist: u8,
        /// Why.
        why: String,
    },
    /// A channel stopped on an error (a fault, a bad method, an unreadable context), its
    /// reason as text. Recorded by older builds; the model now emits
    /// [`ModelEvent::ChannelStopped`].
    ChannelError {
        /// Channel id.
        chid: u16,
        /// What happened.
        why: String,
    },
    /// The host executed pushbuffer work.
    HostRan {
        /// Pushbuffer dwords consumed.
        dwords: u64,
        /// GP entries consumed.
        gp_entries: u64,
        /// Bytes the copy engine wrote.
        ce_bytes: u64,
        /// Semaphores released.
        releases: u64,
        /// Whether a non-stall interrupt was raised.
        nonstall: bool,
    },
    /// A PTE of the checked address space changed (seen by the checker's scan at a flush;
    /// `pte` 0 means it is no longer valid).
    PteWrite {
        /// GPU virtual address.
        va: u64,
        /// The new PTE.
        pte: u64,
        /// Page size as a shift (12, 16 or 21).
        page_shift: u8,
    },
    /// The PTE checker found a GPU mapping that disagrees with the CPU's.
    CheckViolation {
        /// GPU virtual address.
        va: u64,
        /// The GPU PTE.
        gpu_pte: u64,
        /// The CPU entry.
        cpu_pte: u64,
        /// [`crate::check::Reason`] code.
        reason: u8,
        /// Found at a GPU use rather than a scan.
        at_use: bool,
    },
    /// A REPLAY resumed the access engine's waiting operation.
    Replay,
    /// A CANCEL ended the access engine's waiting operation.
    Cancel,
    /// The access engine finished an operation.
    AccessDone {
        /// The operation code.
        op: u8,
        /// Its virtual address.
        va: u64,
        /// Faults it took.
        faults: u32,
    },
    /// The access engine could not do an operation, its reason as text. Recorded by older
    /// builds; the model now emits [`ModelEvent::AccessFailed`].
    AccessError {
        /// Why.
        why: String,
    },
    /// The PTE checker found a PD0 slot whose cleared 2 MiB PTE reads as a big-page-table
    /// pointer (see [`crate::check`]).
    CheckHazard {
        /// The 2 MiB region.
        va: u64,
        /// The PD0 low word.
        pd0: u64,
    },
    /// A replayable fault was written to the fault buffer at `index`.
    FaultWritten {
        /// Ring index.
        index: u32,
        /// Faulting virtual address.
        addr: u64,
        /// `NV_PFAULT_FAULT_TYPE_*`.
        fault_type: u8,
        /// `NV_PFAULT_ACCESS_TYPE_*`.
        access: u8,
    },
    /// The device did more while handling one input than it keeps for the trace (see
    /// [`crate::mem::phys::MAX_DMA_EVENTS`]): `count` events were dropped, so the recording is
    /// incomplete from here on and replay stops here.
    EventsDropped {
        /// Events not recorded.
        count: u64,
    },
    /// A fault could not be written (ring full or disabled, or a bad buffer address).
    FaultDropped {
        /// Faulting virtual address.
        addr: u64,
        /// True for a bad buffer address, false for an overflow.
        bad_buffer: bool,
    },
    /// The host rejected a runlist submission (the scheduler's SCHED_ERROR). Supersedes
    /// `RunlistRejected`, with the reason typed.
    RunlistRefused {
        /// Runlist id.
        runlist: u8,
        /// Why.
        why: RunlistError,
    },
    /// A channel stopped on an error (a fault, a bad method, an unreadable context).
    /// Supersedes `ChannelError`, with the reason typed.
    ChannelStopped {
        /// Channel id.
        chid: u16,
        /// What happened.
        why: ChannelFault,
    },
    /// The access engine (or a slot of its batch) could not do an operation. Supersedes
    /// `AccessError`, with the reason typed.
    AccessFailed {
        /// Why.
        why: AccessFailure,
    },
}

impl ModelEvent {
    /// Whether `self`, what the model did, matches `recorded`, what a trace holds: equal, or
    /// `recorded` is an old String-reason event (`RunlistRejected`, `ChannelError`,
    /// `AccessError`) and `self` its typed successor for the same runlist or channel whose
    /// reason's text is the recorded string (module doc). Replay uses this instead of `==`.
    pub fn matches_recorded(&self, recorded: &ModelEvent) -> bool {
        use ModelEvent::*;
        match (self, recorded) {
            (
                RunlistRefused { runlist, why },
                RunlistRejected {
                    runlist: r,
                    why: text,
                },
            ) => runlist == r && why.to_string() == *text,
            (ChannelStopped { chid, why }, ChannelError { chid: c, why: text }) => {
                chid == c && why.to_string() == *text
            }
            (AccessFailed { why }, AccessError { why: text }) => why.to_string() == *text,
            _ => self == recorded,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The trace compatibility rule (module doc): each variant's postcard tag is fixed. A new
    /// variant goes at the end with the next tag; moving or removing one breaks every trace.
    #[test]
    fn variant_tags_are_pinned() {
        let s = || String::new();
        let pinned: Vec<(ModelEvent, u8)> = vec![
            (
                ModelEvent::DmaRead {
                    addr: 0,
                    len: 0,
                    data: None,
                },
                0,
            ),
            (
                ModelEvent::DmaWrite {
                    addr: 0,
                    len: 0,
                    crc: 0,
                    ok: true,
                    data: None,
                },
                1,
            ),
            (
                ModelEvent::Invalidate {
                    word: 0,
                    pdb: 0,
                    dropped: 0,
                },
                2,
            ),
            (
                ModelEvent::Walk {
                    va: 0,
                    pa: None,
                    fault_type: None,
                    reads: 0,
                    sys_reads: 0,
                    cycles: 0,
                },
                3,
            ),
            (ModelEvent::ApertureFault { bar: 0, offset: 0 }, 4),
            (
                ModelEvent::RunlistSubmitted {
                    runlist: 0,
                    channels: 0,
                },
                5,
            ),
            (
                ModelEvent::RunlistRejected {
                    runlist: 0,
                    why: s(),
                },
                6,
            ),
            (ModelEvent::ChannelError { chid: 0, why: s() }, 7),
            (
                ModelEvent::HostRan {
                    dwords: 0,
                    gp_entries: 0,
                    ce_bytes: 0,
                    releases: 0,
                    nonstall: false,
                },
                8,
            ),
            (
                ModelEvent::PteWrite {
                    va: 0,
                    pte: 0,
                    page_shift: 0,
                },
                9,
            ),
            (
                ModelEvent::CheckViolation {
                    va: 0,
                    gpu_pte: 0,
                    cpu_pte: 0,
                    reason: 0,
                    at_use: false,
                },
                10,
            ),
            (ModelEvent::Replay, 11),
            (ModelEvent::Cancel, 12),
            (
                ModelEvent::AccessDone {
                    op: 0,
                    va: 0,
                    faults: 0,
                },
                13,
            ),
            (ModelEvent::AccessError { why: s() }, 14),
            (ModelEvent::CheckHazard { va: 0, pd0: 0 }, 15),
            (
                ModelEvent::FaultWritten {
                    index: 0,
                    addr: 0,
                    fault_type: 0,
                    access: 0,
                },
                16,
            ),
            (ModelEvent::EventsDropped { count: 0 }, 17),
            (
                ModelEvent::FaultDropped {
                    addr: 0,
                    bad_buffer: false,
                },
                18,
            ),
            (
                ModelEvent::RunlistRefused {
                    runlist: 0,
                    why: RunlistError::NoSuchRunlist,
                },
                19,
            ),
            (
                ModelEvent::ChannelStopped {
                    chid: 0,
                    why: ChannelFault::IllegalMethod,
                },
                20,
            ),
            (
                ModelEvent::AccessFailed {
                    why: AccessFailure::AtomicMisaligned,
                },
                21,
            ),
        ];
        for (e, tag) in &pinned {
            let bytes = postcard::to_allocvec(e).expect("encodes");
            assert_eq!(bytes[0], *tag, "{e:?} changed its trace tag");
            let back: ModelEvent = postcard::from_bytes(&bytes).expect("decodes");
            assert_eq!(&back, e);
        }
        // One past the last tag is not an event this build knows: a clear decode error, never
        // a different event.
        let unknown = [pinned.len() as u8];
        assert!(postcard::from_bytes::<ModelEvent>(&unknown).is_err());
    }

    /// The replay rule for old String reasons (module doc): an old event matches its typed
    /// successor when the texts are the same, and nothing else does.
    #[test]
    fn an_old_string_reason_matches_the_typed_event_with_the_same_text() {
        use crate::hw::reason::{ChannelLookupError, VmError};
        use crate::hw::target::MemError;
        let stopped = ModelEvent::ChannelStopped {
            chid: 3,
            why: ChannelFault::GpFetch(VmError::Mem(MemError::Peer(1))),
        };
        let text = "GPFIFO fetch: peer 1 memory is not modelled".to_string();
        let old = |chid, why: &str| ModelEvent::ChannelError {
            chid,
            why: why.into(),
        };
        assert!(stopped.matches_recorded(&old(3, &text)));
        assert!(!stopped.matches_recorded(&old(3, "GPFIFO fetch: peer 2 memory is not modelled")));
        assert!(!stopped.matches_recorded(&old(4, &text)), "another channel");
        assert!(stopped.matches_recorded(&stopped.clone()));
        // Only the model's typed event stands for an old one, never the other way round, and
        // an old event still matches itself (a trace replayed against an old recording of it).
        assert!(!old(3, &text).matches_recorded(&stopped));
        assert!(old(3, &text).matches_recorded(&old(3, &text)));

        let refused = ModelEvent::RunlistRefused {
            runlist: 1,
            why: RunlistError::BadTsgLength(4),
        };
        let rejected = |runlist, why: &str| ModelEvent::RunlistRejected {
            runlist,
            why: why.into(),
        };
        assert!(refused.matches_recorded(&rejected(1, "runlist entry 4: TSG of bad length")));
        assert!(!refused.matches_recorded(&rejected(1, "runlist entry 5: TSG of bad length")));
        assert!(!refused.matches_recorded(&rejected(0, "runlist entry 4: TSG of bad length")));

        let failed = ModelEvent::AccessFailed {
            why: AccessFailure::from(ChannelLookupError::NotBound(7)).in_slot(2),
        };
        let error = |why: &str| ModelEvent::AccessError { why: why.into() };
        assert!(failed.matches_recorded(&error("batch slot 2: channel 7 is not bound")));
        assert!(!failed.matches_recorded(&error("batch slot 2: channel 8 is not bound")));
        assert!(!failed.matches_recorded(&error("")));
        // Different kinds never match, whatever the text.
        assert!(!failed.matches_recorded(&old(0, "batch slot 2: channel 7 is not bound")));
        assert!(!ModelEvent::Replay.matches_recorded(&ModelEvent::Cancel));
    }

    #[test]
    fn data_small_and_large() {
        let d = Data::from_slice(&[0xa1, 0, 0, 0x13]);
        assert_eq!(
            d,
            Data::Small {
                len: 4,
                value: 0x1300_00a1
            }
        );
        assert!(d.matches(&[0xa1, 0, 0, 0x13]));
        assert!(!d.matches(&[0xa1, 0, 0]));
        assert_eq!(d.to_string(), "0x130000a1");
        let big = Data::from_slice(&[7u8; 64]);
        assert!(matches!(big, Data::Bytes(_)));
        assert_eq!(big.len(), 64);
        assert_eq!(big.to_vec(), vec![7u8; 64]);
        assert_eq!(Data::from_slice(&[]).len(), 0);
        // A garbage length from a trace file is clamped, never an out-of-range slice.
        let g = Data::Small { len: 200, value: 1 };
        assert_eq!(g.len(), 8);
        assert_eq!(g.to_vec().len(), 8);
    }
}
