//! Trace events: what the host did to the device and what the model answered.
//!
//! [`ModelEvent`] and [`Data`] live at the bottom of the crate ([`crate::hw::event`]); this file
//! adds the host-side [`Event`] (accesses by [`Space`], DMA maps, interrupts, resets) and the
//! human-readable forms `gp100emu show` prints.

use std::fmt;

use serde::{Deserialize, Serialize};

use crate::host::port::Space;
pub use crate::hw::event::{Data, ModelEvent};

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
            // The typed events print as the String ones they supersede did.
            ModelEvent::RunlistRejected { runlist, why } => {
                write!(f, "runlist {runlist} rejected: {why}")
            }
            ModelEvent::RunlistRefused { runlist, why } => {
                write!(f, "runlist {runlist} rejected: {why}")
            }
            ModelEvent::ChannelError { chid, why } => write!(f, "channel {chid} stopped: {why}"),
            ModelEvent::ChannelStopped { chid, why } => write!(f, "channel {chid} stopped: {why}"),
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
            ModelEvent::AccessFailed { why } => write!(f, "access error: {why}"),
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
