//! Why something the model did failed: the typed reasons its events carry
//! ([`ModelEvent::RunlistRefused`], [`ModelEvent::ChannelStopped`],
//! [`ModelEvent::AccessFailed`]), defined at the bottom so that every unit can report them
//! and the event vocabulary can hold them without importing the units. The units re-export
//! theirs where they are used (`engine::VmError`, `ce::CeError`, `fifo::ChannelFault`,
//! `fifo::runlist::RunlistError`, `window::ChannelLookupError`).
//!
//! Two things are pinned, because traces hold these reasons:
//! - **The encoding**: postcard writes each enum as its variant index, then the fields, so
//!   these enums follow the events' rule, **append only** (a new reason is a new variant at
//!   the end; a variant keeps its position and fields). `reason_tags_are_pinned` pins every
//!   tag, of the enums nested in them too ([`MemError`], [`Target`], [`FaultType`]).
//! - **The text** (`Display`): builds before the typed events recorded these reasons as
//!   strings (`ChannelError`, `RunlistRejected`, `AccessError`), and replay takes such an
//!   old event as equal to the typed one whose text is the recorded string (see
//!   [`ModelEvent::matches_recorded`]). The texts are therefore exactly the old messages
//!   (pinned by `texts_are_the_recorded_ones` and `channel_fault_texts_are_the_recorded_ones`
//!   in `fifo/pbdma.rs`); rewording one makes a trace that holds the old text mismatch.
//!
//! A reason carries every value its text shows (a bound such as the copy engine's line limit
//! too), so a reason decoded from a trace prints what it printed when it was recorded.
//!
//! [`ModelEvent::RunlistRefused`]: crate::hw::event::ModelEvent::RunlistRefused
//! [`ModelEvent::ChannelStopped`]: crate::hw::event::ModelEvent::ChannelStopped
//! [`ModelEvent::AccessFailed`]: crate::hw::event::ModelEvent::AccessFailed
//! [`ModelEvent::matches_recorded`]: crate::hw::event::ModelEvent::matches_recorded
//! [`Target`]: crate::hw::target::Target

use serde::{Deserialize, Serialize};

use crate::hw::fault::FaultType;
use crate::hw::target::MemError;

/// Why a virtual access failed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error, Serialize, Deserialize)]
pub enum VmError {
    /// The MMU faulted (the address is not mapped as needed).
    #[error("MMU fault {fault_type:?} at {va:#x}")]
    Fault {
        /// Faulting virtual address.
        va: u64,
        /// The GP100 fault type.
        fault_type: FaultType,
    },
    /// The translation pointed outside memory.
    #[error("{0}")]
    Mem(MemError),
}

/// What the copy engine does not model (a launch that asks for it is refused).
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error, Serialize, Deserialize)]
pub enum CeUnmodelled {
    /// SET_SRC/DST_PHYS_MODE TARGET 3 (clc0b5.h defines 0..=2).
    #[error("physical target 3")]
    PhysicalTarget3,
    /// LAUNCH_DMA SRC/DST_MEMORY_LAYOUT BLOCKLINEAR.
    #[error("block-linear layout")]
    BlockLinear,
    /// LAUNCH_DMA SEMAPHORE_TYPE 3.
    #[error("semaphore type 3")]
    SemaphoreType3,
}

/// A LAUNCH_DMA the copy engine could not do.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error, Serialize, Deserialize)]
pub enum CeError {
    /// A virtual access faulted or a physical one left memory.
    #[error("copy engine: {0}")]
    Vm(#[from] VmError),
    /// Something the model does not do.
    #[error("copy engine: {0} is not modelled")]
    NotModelled(CeUnmodelled),
    /// Physical addressing from a channel without HCE privilege (RAMFC HCE_CTRL bit 5).
    #[error("copy engine: physical addressing needs a privileged channel")]
    NotPrivileged,
    /// More than `ce::MAX_LAUNCH_BYTES`.
    #[error("copy engine: a launch of {0} bytes exceeds the model's bound")]
    TooLarge(u64),
    /// More than `bound` lines (LINE_COUNT; `ce::MAX_LAUNCH_LINES`), whatever their length.
    #[error("copy engine: a launch of {lines} lines exceeds the model's bound of {bound}")]
    TooManyLines {
        /// LINE_COUNT.
        lines: u64,
        /// The model's bound.
        bound: u64,
    },
    /// A physical address out of memory.
    #[error("copy engine: physical access at {0:#x} outside memory")]
    Phys(u64),
}

/// Why a channel stopped ([`ModelEvent::ChannelStopped`]).
///
/// [`ModelEvent::ChannelStopped`]: crate::hw::event::ModelEvent::ChannelStopped
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error, Serialize, Deserialize)]
pub enum ChannelFault {
    /// The instance block pointer names target 1 (no memory).
    #[error("instance block target 1")]
    InstTarget,
    /// The instance block or RAMFC could not be read.
    #[error("instance block unreadable: {0}")]
    InstUnreadable(MemError),
    /// RAMFC's USERD names target 1.
    #[error("USERD target 1")]
    UserdTarget,
    /// The instance block's PDB word is not a VER2 page directory.
    #[error("instance block has no VER2 page directory")]
    NoPageDirectory,
    /// USERD could not be read.
    #[error("USERD unreadable: {0}")]
    UserdUnreadable(MemError),
    /// USERD could not be written.
    #[error("USERD unwritable: {0}")]
    UserdUnwritable(MemError),
    /// A pushbuffer segment could not be fetched.
    #[error("pushbuffer fetch: {0}")]
    PushbufferFetch(VmError),
    /// GP_GET or GP_PUT outside the GPFIFO.
    #[error("GP_GET {gp_get} / GP_PUT {gp_put} outside the {entries}-entry GPFIFO")]
    GpOutOfRange {
        /// GP_GET.
        gp_get: u32,
        /// GP_PUT.
        gp_put: u32,
        /// GPFIFO entries.
        entries: u32,
    },
    /// A GP entry could not be fetched.
    #[error("GPFIFO fetch: {0}")]
    GpFetch(VmError),
    /// A GP entry could not be fetched, and RAMFC GP_BASE_HI has bits above the 40-bit
    /// address (the driver placed the GPFIFO above 1 TiB).
    #[error(
        "GPFIFO fetch at {at:#x}: {err} (RAMFC GP_BASE_HI bits 15:8 = {ignored:#x} are \
         not address bits: the host reads 40-bit GPFIFO addresses, and the \
         driver placed this GPFIFO above 1 TiB)"
    )]
    GpFetchAbove40Bits {
        /// The entry's VA.
        at: u64,
        /// The fault.
        err: VmError,
        /// GP_BASE_HI bits 15:8.
        ignored: u8,
    },
    /// A method header with an illegal SEC_OP.
    #[error("pushbuffer header {header:#010x}: SEC_OP {op} is illegal")]
    IllegalSecOp {
        /// The header.
        header: u32,
        /// Its SEC_OP.
        op: u32,
    },
    /// The ILLEGAL host method.
    #[error("ILLEGAL method")]
    IllegalMethod,
    /// A host method the model does not implement.
    #[error("host method {0:#x} is not modelled")]
    HostMethod(u32),
    /// A semaphore acquire could not read the semaphore.
    #[error("semaphore acquire: {0}")]
    SemaphoreAcquire(VmError),
    /// A semaphore release could not write it.
    #[error("semaphore release: {0}")]
    SemaphoreRelease(VmError),
    /// A semaphore operation the model does not implement.
    #[error("semaphore operation {0:#x} is not modelled")]
    SemaphoreOp(u32),
    /// A method to subchannels 5..7 (software methods).
    #[error("software method {mthd:#x} on subchannel {subc}: no software engine")]
    SoftwareMethod {
        /// The method.
        mthd: u32,
        /// The subchannel.
        subc: u8,
    },
    /// A method to an engine class the model does not have.
    #[error(
        "method {mthd:#x} to subchannel {subc} (class {class:#06x}): that engine is not modelled"
    )]
    EngineNotModelled {
        /// The method.
        mthd: u32,
        /// The subchannel.
        subc: u8,
        /// The class bound there.
        class: u32,
    },
    /// The copy engine refused a method.
    #[error("{0}")]
    CopyEngine(#[from] CeError),
}

/// Why a submitted runlist was rejected ([`ModelEvent::RunlistRefused`]; the hardware's
/// scheduler reports SCHED_ERROR).
///
/// [`ModelEvent::RunlistRefused`]: crate::hw::event::ModelEvent::RunlistRefused
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error, Serialize, Deserialize)]
pub enum RunlistError {
    /// The list could not be read.
    #[error("runlist entry {0} is outside memory")]
    Unreadable(u32),
    /// A channel entry outside a TSG.
    #[error("runlist entry {0}: channel outside a TSG")]
    ChannelOutsideTsg(u32),
    /// A TSG header whose length is zero or runs past the list.
    #[error("runlist entry {0}: TSG of bad length")]
    BadTsgLength(u32),
    /// A TSG header where a channel entry was expected.
    #[error("runlist entry {0}: TSG header inside a TSG")]
    NestedTsg(u32),
    /// RUNLIST names a runlist id the GPU does not have.
    #[error("no such runlist")]
    NoSuchRunlist,
    /// RUNLIST_BASE names target 1 (no memory).
    #[error("RUNLIST_BASE target 1")]
    BaseTarget,
}

/// Why a channel id names no address space the access engine or the checker can use.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error, Serialize, Deserialize)]
pub enum ChannelLookupError {
    /// PCCSR has no bound instance block for it.
    #[error("channel {0} is not bound")]
    NotBound(u32),
    /// The instance pointer names target 1.
    #[error("instance block target 1")]
    InstTarget,
    /// The instance block could not be read.
    #[error("instance block unreadable: {0}")]
    InstUnreadable(MemError),
    /// Its PDB word is not a VER2 page directory.
    #[error("the instance block has no VER2 page directory")]
    NoPageDirectory,
}

/// Why the access engine (or a slot of its batch) could not do an operation
/// ([`ModelEvent::AccessFailed`]; the engine is gp100emu's own unit, see `crate::access`).
///
/// [`ModelEvent::AccessFailed`]: crate::hw::event::ModelEvent::AccessFailed
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error, Serialize, Deserialize)]
pub enum AccessFailure {
    /// The OP register holds no operation the engine has.
    #[error("unknown operation {0}")]
    UnknownOp(u32),
    /// LEN is zero or above the engine's bound (`access::MAX_LEN`).
    #[error("length {len} outside 1..={max}")]
    Length {
        /// LEN (4 for an atomic).
        len: u32,
        /// The bound.
        max: u32,
    },
    /// An atomic's address is not 4-byte aligned.
    #[error("atomic address not 4-byte aligned")]
    AtomicMisaligned,
    /// The channel names no usable address space.
    #[error("{0}")]
    Channel(#[from] ChannelLookupError),
    /// A miss in an address space whose instance block does not enable replayable faults.
    #[error(
        "MMU fault {fault_type:?} at {va:#x} in an address space without replayable faults \
         (fatal on the GPU)"
    )]
    NotReplayable {
        /// The fault type.
        fault_type: FaultType,
        /// The address that missed.
        va: u64,
    },
    /// The translation pointed outside memory.
    #[error("memory error: {0}")]
    Memory(MemError),
    /// A batch slot names a GPC the GPU does not have.
    #[error("slot {slot}: GPC {gpc} outside 0..{gpcs}")]
    Gpc {
        /// The slot.
        slot: u32,
        /// Its GPC register.
        gpc: u32,
        /// GPCs there are (`access::batch::GPCS`).
        gpcs: u8,
    },
    /// A batch slot failed (the inner reason is never itself a `BatchSlot`).
    #[error("batch slot {slot}: {why}")]
    BatchSlot {
        /// The slot.
        slot: u32,
        /// Why.
        why: Box<AccessFailure>,
    },
    /// A CANCEL ended the waiting operation (kept as the engine's last error; the event is
    /// `Cancel`).
    #[error("cancelled")]
    Cancelled,
}

impl AccessFailure {
    /// The reason of batch slot `slot`.
    pub fn in_slot(self, slot: usize) -> Self {
        AccessFailure::BatchSlot {
            slot: slot as u32,
            why: Box::new(self),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::hw::target::Target;

    fn tag<T: Serialize + serde::de::DeserializeOwned + PartialEq + std::fmt::Debug>(v: &T) -> u8 {
        let b = postcard::to_allocvec(v).expect("encodes");
        let back: T = postcard::from_bytes(&b).expect("decodes");
        assert_eq!(&back, v);
        b[0]
    }

    fn pinned<T>(name: &str, cases: &[T])
    where
        T: Serialize + serde::de::DeserializeOwned + PartialEq + std::fmt::Debug,
    {
        for (i, c) in cases.iter().enumerate() {
            assert_eq!(tag(c) as usize, i, "{name}: {c:?} changed its trace tag");
        }
    }

    /// The trace compatibility rule (module doc) for the reasons: each variant's tag is
    /// fixed, like the events'. A new variant goes at the end; moving one breaks traces.
    #[test]
    fn reason_tags_are_pinned() {
        let mem = MemError::Peer(1);
        let vm = VmError::Mem(mem);
        pinned(
            "Target",
            &[
                Target::Video,
                Target::Peer(0),
                Target::SysCoherent,
                Target::SysNoncoherent,
            ],
        );
        pinned(
            "MemError",
            &[
                MemError::OutOfRange {
                    target: Target::Video,
                    addr: 0,
                },
                mem,
            ],
        );
        // FaultType's tag is its NV_PFAULT_FAULT_TYPE value (0x0..=0xf), then Unknown.
        let fts: Vec<FaultType> = (0..=0x10).map(FaultType::from_bits).collect();
        pinned("FaultType", &fts);
        pinned(
            "VmError",
            &[
                VmError::Fault {
                    va: 0,
                    fault_type: FaultType::Pte,
                },
                vm,
            ],
        );
        pinned(
            "CeUnmodelled",
            &[
                CeUnmodelled::PhysicalTarget3,
                CeUnmodelled::BlockLinear,
                CeUnmodelled::SemaphoreType3,
            ],
        );
        pinned(
            "CeError",
            &[
                CeError::Vm(vm),
                CeError::NotModelled(CeUnmodelled::BlockLinear),
                CeError::NotPrivileged,
                CeError::TooLarge(0),
                CeError::TooManyLines { lines: 0, bound: 0 },
                CeError::Phys(0),
            ],
        );
        pinned(
            "ChannelFault",
            &[
                ChannelFault::InstTarget,
                ChannelFault::InstUnreadable(mem),
                ChannelFault::UserdTarget,
                ChannelFault::NoPageDirectory,
                ChannelFault::UserdUnreadable(mem),
                ChannelFault::UserdUnwritable(mem),
                ChannelFault::PushbufferFetch(vm),
                ChannelFault::GpOutOfRange {
                    gp_get: 0,
                    gp_put: 0,
                    entries: 0,
                },
                ChannelFault::GpFetch(vm),
                ChannelFault::GpFetchAbove40Bits {
                    at: 0,
                    err: vm,
                    ignored: 0,
                },
                ChannelFault::IllegalSecOp { header: 0, op: 0 },
                ChannelFault::IllegalMethod,
                ChannelFault::HostMethod(0),
                ChannelFault::SemaphoreAcquire(vm),
                ChannelFault::SemaphoreRelease(vm),
                ChannelFault::SemaphoreOp(0),
                ChannelFault::SoftwareMethod { mthd: 0, subc: 0 },
                ChannelFault::EngineNotModelled {
                    mthd: 0,
                    subc: 0,
                    class: 0,
                },
                ChannelFault::CopyEngine(CeError::NotPrivileged),
            ],
        );
        pinned(
            "RunlistError",
            &[
                RunlistError::Unreadable(0),
                RunlistError::ChannelOutsideTsg(0),
                RunlistError::BadTsgLength(0),
                RunlistError::NestedTsg(0),
                RunlistError::NoSuchRunlist,
                RunlistError::BaseTarget,
            ],
        );
        pinned(
            "ChannelLookupError",
            &[
                ChannelLookupError::NotBound(0),
                ChannelLookupError::InstTarget,
                ChannelLookupError::InstUnreadable(mem),
                ChannelLookupError::NoPageDirectory,
            ],
        );
        pinned(
            "AccessFailure",
            &[
                AccessFailure::UnknownOp(0),
                AccessFailure::Length { len: 0, max: 0 },
                AccessFailure::AtomicMisaligned,
                AccessFailure::Channel(ChannelLookupError::InstTarget),
                AccessFailure::NotReplayable {
                    fault_type: FaultType::Pte,
                    va: 0,
                },
                AccessFailure::Memory(mem),
                AccessFailure::Gpc {
                    slot: 0,
                    gpc: 0,
                    gpcs: 0,
                },
                AccessFailure::AtomicMisaligned.in_slot(0),
                AccessFailure::Cancelled,
            ],
        );
    }

    /// The texts are the strings the model recorded before its reasons were typed (the
    /// format! calls in access/, the runlist and copy-engine messages), so an old trace's
    /// String event still matches the typed one replay produces.
    #[test]
    fn texts_are_the_recorded_ones() {
        let cases: Vec<(String, &str)> = vec![
            (
                AccessFailure::UnknownOp(99).to_string(),
                "unknown operation 99",
            ),
            (
                AccessFailure::Length {
                    len: 0,
                    max: 2 << 20,
                }
                .to_string(),
                "length 0 outside 1..=2097152",
            ),
            (
                AccessFailure::AtomicMisaligned.to_string(),
                "atomic address not 4-byte aligned",
            ),
            (
                AccessFailure::from(ChannelLookupError::NotBound(9)).to_string(),
                "channel 9 is not bound",
            ),
            (
                AccessFailure::NotReplayable {
                    fault_type: FaultType::Pte,
                    va: 0x1000,
                }
                .to_string(),
                "MMU fault Pte at 0x1000 in an address space without replayable faults \
                 (fatal on the GPU)",
            ),
            (
                AccessFailure::Memory(MemError::OutOfRange {
                    target: Target::SysCoherent,
                    addr: 0x10,
                })
                .to_string(),
                "memory error: SysCoherent address 0x10 is outside memory",
            ),
            (
                AccessFailure::Gpc {
                    slot: 2,
                    gpc: 6,
                    gpcs: 6,
                }
                .in_slot(2)
                .to_string(),
                "batch slot 2: slot 2: GPC 6 outside 0..6",
            ),
            (
                AccessFailure::AtomicMisaligned.in_slot(3).to_string(),
                "batch slot 3: atomic address not 4-byte aligned",
            ),
            (AccessFailure::Cancelled.to_string(), "cancelled"),
            (RunlistError::NoSuchRunlist.to_string(), "no such runlist"),
            (
                RunlistError::BaseTarget.to_string(),
                "RUNLIST_BASE target 1",
            ),
            (
                RunlistError::BadTsgLength(4).to_string(),
                "runlist entry 4: TSG of bad length",
            ),
            (
                CeError::TooManyLines {
                    lines: 65537,
                    bound: 65536,
                }
                .to_string(),
                "copy engine: a launch of 65537 lines exceeds the model's bound of 65536",
            ),
            (
                CeError::NotModelled(CeUnmodelled::SemaphoreType3).to_string(),
                "copy engine: semaphore type 3 is not modelled",
            ),
            (
                ChannelFault::from(CeError::NotModelled(CeUnmodelled::PhysicalTarget3)).to_string(),
                "copy engine: physical target 3 is not modelled",
            ),
        ];
        for (got, want) in cases {
            assert_eq!(got, want);
        }
    }
}
