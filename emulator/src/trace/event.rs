//! Trace events.

use std::fmt;

use serde::{Deserialize, Serialize};

use crate::port::Space;

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

/// One thing that happened between the host and the device.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum Event {
    /// The host read `data.len()` bytes at `offset` of `space`; `data` is the answer
    /// (output) and `ok` whether the port accepted the access (output).
    Read {
        /// Address space.
        space: Space,
        /// Offset in it.
        offset: u64,
        /// What the device answered.
        data: Data,
        /// Whether the access was accepted.
        ok: bool,
    },
    /// The host wrote `data` at `offset` of `space` (input); `ok` is the port's verdict.
    Write {
        /// Address space.
        space: Space,
        /// Offset in it.
        offset: u64,
        /// What was written.
        data: Data,
        /// Whether the access was accepted.
        ok: bool,
    },
    /// QEMU mapped guest RAM for DMA (input).
    DmaMap {
        /// Guest-physical address.
        iova: u64,
        /// Length in bytes.
        size: u64,
        /// Whether the device may write it.
        writable: bool,
        /// Whether QEMU sent a file descriptor (only such ranges are usable).
        has_fd: bool,
    },
    /// QEMU unmapped guest RAM (input).
    DmaUnmap {
        /// Guest-physical address.
        iova: u64,
        /// Length in bytes.
        size: u64,
    },
    /// The device's interrupt condition changed (output).
    Irq {
        /// The new level.
        asserted: bool,
    },
    /// The host reset the device (input).
    Reset,
    /// Something the model did on its own while handling the previous input (output).
    Model(ModelEvent),
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
    /// The host rejected a runlist submission (the scheduler's SCHED_ERROR).
    RunlistRejected {
        /// Runlist id.
        runlist: u8,
        /// Why.
        why: String,
    },
    /// A channel stopped on an error (a fault, a bad method, an unreadable context).
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
    /// The access engine could not do an operation.
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
}

impl fmt::Display for ModelEvent {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ModelEvent::DmaRead { addr, len, data } => match data {
                Some(d) => write!(f, "dma read {addr:#x}+{len:#x} -> {d}"),
                None => write!(f, "dma read {addr:#x}+{len:#x} failed (outside guest RAM)"),
            },
            ModelEvent::RunlistSubmitted { runlist, channels } => {
                write!(f, "runlist {runlist} submitted with {channels} channels")
            }
            ModelEvent::RunlistRejected { runlist, why } => {
                write!(f, "runlist {runlist} rejected: {why}")
            }
            ModelEvent::ChannelError { chid, why } => write!(f, "channel {chid} stopped: {why}"),
            ModelEvent::HostRan {
                dwords,
                gp_entries,
                ce_bytes,
                releases,
                nonstall,
            } => write!(
                f,
                "host ran {gp_entries} GP entries, {dwords} dwords; CE wrote {ce_bytes} bytes; {releases} semaphore releases{}",
                if *nonstall { "; non-stall interrupt" } else { "" }
            ),
            ModelEvent::PteWrite { va, pte, page_shift } => {
                if *pte == 0 {
                    write!(f, "pte {va:#x} ({} KiB) no longer valid", (1u64 << page_shift) >> 10)
                } else {
                    let p = crate::mmu::format::Pte(*pte);
                    write!(
                        f,
                        "pte {va:#x} ({} KiB) = {pte:#018x}: {:?} {:#x}{}{}",
                        (1u64 << page_shift) >> 10,
                        p.aperture(),
                        p.address(),
                        if p.read_only() { " ro" } else { " rw" },
                        if p.atomic_disable() { "" } else { " atomic" }
                    )
                }
            }
            ModelEvent::CheckViolation {
                va,
                gpu_pte,
                cpu_pte,
                reason,
                at_use,
            } => write!(
                f,
                "PTE CHECK VIOLATION at {va:#x}: reason {reason}, GPU PTE {gpu_pte:#018x}, CPU PTE {cpu_pte:#018x}{}",
                if *at_use { " (at a GPU use)" } else { "" }
            ),
            ModelEvent::CheckHazard { va, pd0 } => write!(
                f,
                "PTE CHECK HAZARD at {va:#x}: PD0 {pd0:#018x} is a cleared 2 MiB PTE that reads as a big-page-table pointer"
            ),
            ModelEvent::Replay => f.write_str("replay: the waiting access is re-issued"),
            ModelEvent::Cancel => f.write_str("cancel: the waiting access ends in error"),
            ModelEvent::AccessDone { op, va, faults } => {
                write!(f, "access op {op} at {va:#x} done after {faults} faults")
            }
            ModelEvent::AccessError { why } => write!(f, "access error: {why}"),
            ModelEvent::ApertureFault { bar, offset } => {
                write!(f, "BAR{bar} access at {offset:#x} not mapped (MMU fault)")
            }
            ModelEvent::DmaWrite {
                addr,
                len,
                crc,
                ok,
                data,
            } => {
                write!(f, "dma write {addr:#x}+{len:#x} crc {crc:#010x}")?;
                if let Some(d) = data {
                    write!(f, " <- {d}")?;
                }
                if !*ok {
                    f.write_str(" failed (outside guest RAM)")?;
                }
                Ok(())
            }
            ModelEvent::Invalidate { word, pdb, dropped } => {
                write!(
                    f,
                    "invalidate {word:#010x} pdb {pdb:#x} ({dropped} TLB entries)"
                )
            }
            ModelEvent::FaultWritten {
                index,
                addr,
                fault_type,
                access,
            } => write!(
                f,
                "fault #{index} at {addr:#x} type {fault_type:#x} access {access}"
            ),
            ModelEvent::Walk {
                va,
                pa,
                fault_type,
                reads,
                sys_reads,
                cycles,
            } => {
                write!(
                    f,
                    "walk {va:#x}: {reads} reads ({sys_reads} system memory), {cycles} cycles -> "
                )?;
                match (pa, fault_type) {
                    (_, Some(t)) => write!(f, "fault type {t:#x}"),
                    (Some(pa), None) => write!(f, "{pa:#x}"),
                    (None, None) => f.write_str("sparse"),
                }
            }
            ModelEvent::EventsDropped { count } => write!(
                f,
                "{count} model events not recorded (more than one input may keep)"
            ),
            ModelEvent::FaultDropped { addr, bad_buffer } => write!(
                f,
                "fault at {addr:#x} dropped ({})",
                if *bad_buffer {
                    "bad buffer address"
                } else {
                    "ring full or disabled"
                }
            ),
        }
    }
}

/// An event with the GPU clock (in GPU cycles, [`crate::Device::gpu_cycles`]) when the device
/// finished handling it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Record {
    /// GPU clock after the event.
    pub cycle: u64,
    /// What happened.
    pub event: Event,
}

impl fmt::Display for Space {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Space::Bar(n) => write!(f, "BAR{n}"),
            Space::Rom => f.write_str("ROM"),
            Space::Config => f.write_str("CFG"),
            Space::Other(r) => write!(f, "region{r}"),
        }
    }
}

impl fmt::Display for Event {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let bad = |ok: &bool| if *ok { "" } else { " (refused)" };
        match self {
            Event::Read {
                space,
                offset,
                data,
                ok,
            } => write!(f, "read  {space}+{offset:#08x} -> {data}{}", bad(ok)),
            Event::Write {
                space,
                offset,
                data,
                ok,
            } => write!(f, "write {space}+{offset:#08x} <- {data}{}", bad(ok)),
            Event::DmaMap {
                iova,
                size,
                writable,
                has_fd,
            } => write!(
                f,
                "dma_map {iova:#x}+{size:#x}{}{}",
                if *writable { " rw" } else { " ro" },
                if *has_fd { "" } else { " (no fd)" }
            ),
            Event::DmaUnmap { iova, size } => write!(f, "dma_unmap {iova:#x}+{size:#x}"),
            Event::Irq { asserted } => {
                write!(f, "irq {}", if *asserted { "raised" } else { "lowered" })
            }
            Event::Reset => f.write_str("reset"),
            Event::Model(m) => write!(f, "model: {m}"),
        }
    }
}

impl fmt::Display for Record {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "@{:>12} {}", self.cycle, self.event)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

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
