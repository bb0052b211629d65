//! The GP100 as a transport sees it: BAR0 routed to the register-file units, the BAR1 and
//! BAR3 apertures translated through their bound address spaces, the interrupt condition,
//! and device reset.
//!
//! Transports (vfio-user in `qemu-glue`) and trace replay call only these entry points, so
//! what a trace records is exactly what drives the model. Guest RAM is reached through the
//! [`SysMem`] the transport installs ([`Device::set_sysmem`]); every DMA is logged for traces.

use std::collections::BTreeSet;

use log::warn;

use crate::access::batch::{Batch, SlotEvent};
use crate::access::{self, AccessEngine};
use crate::bar::{Aperture, Bars, Binding};
use crate::check::{x86::CpuSpace, CheckedSpace, Checker, Inject, Life};
use crate::engine::Hw;
use crate::fault::{self, FaultEntry, FaultRing};
use crate::fifo::{Fifo, BUDGET_PER_ACCESS};
use crate::mem::{GpuMemory, PhysMem, SysMem, Target, VidMem};
use crate::mmu::tlb::{ClientKind, TlbConfig};
use crate::mmu::unit::{regs as mmu_regs, Mmu, Translation};
use crate::mmu::walk::Access;
use crate::pci::{BarLayout, ConfigSpace};
use crate::regs::devinit::{Devinit, DEVINIT_STATUS};
use crate::regs::fuse::Fuse;
use crate::regs::pmc::Pmc;
use crate::regs::pramin::{Pramin, BAR0_WINDOW};
use crate::regs::prom::Prom;
use crate::regs::ptimer::{Ptimer, INTR_PTIMER};
use crate::regs::store::TableUnit;
use crate::regs::therm::{Therm, THERM_SENSOR};
use crate::regs::top::Top;
use crate::regs::uflush::Uflush;
use crate::regs::window::VendorWindow;
use crate::regs::{absent, fb, gr, ltc, pbus, pextdev, pmgr, Bar0Unit, PRI_ERROR_NO_UNIT};
use crate::timing::{Costs, GpuClock, PollDetector, P100};
use crate::trace::event::ModelEvent;

/// Size of BAR0 (the register file): 16 MiB on every NVIDIA GPU since NV50.
pub const BAR0_SIZE: u64 = 16 << 20;

/// Video memory the device has by default: 4 GiB, backed lazily (issue 5 asks for a
/// configurable size with this default; the P100 has 16 GiB, which the lazy backing would
/// also allow).
pub const DEFAULT_VRAM: u64 = 4 << 30;

/// Entries of the replayable fault buffer (what SIZE at 0x002a78 reads; source and the
/// GP100 caveat at [`crate::fault::ring::HW_ENTRIES`]).
pub const FAULT_BUFFER_ENTRIES: u32 = crate::fault::ring::HW_ENTRIES;
/// Most entries [`Device::set_fault_buffer_entries`] accepts: what the 9-bit SIZE field holds.
pub const MAX_FAULT_BUFFER_ENTRIES: u32 = crate::fault::ring::SIZE_FIELD_MAX;
/// Fewest entries [`Device::set_fault_buffer_entries`] accepts: a smaller buffer lets one
/// batch of the access engine overflow it (tests of overflow handling); below 16 nouveau
/// would service almost nothing per interrupt.
pub const MIN_FAULT_BUFFER_ENTRIES: u32 = 16;

/// PMC_INTR_0 line of the replayable fault buffer on GP100 (`gp100_mc_intrs`).
pub const INTR_FAULT: u32 = 0x0000_0200;
/// PMC_INTR_0 line of PFIFO (`gp100_mc_intrs`: 0x00000100) and its PMC_ENABLE bit
/// (gp100 `dev_pmc.h` NV_PMC_ENABLE_PFIFO 8:8).
pub const INTR_FIFO: u32 = 0x0000_0100;
/// PMC_ENABLE bit of PFIFO.
const ENABLE_PFIFO: u32 = 8;

/// The BAR0 mirror of PCI configuration space (nouveau `nv40_pci_rd32/wr32`: 0x088000 + n).
pub const PCI_MIRROR: u32 = 0x088000;
/// Size of the mirror (the 4 KiB of PCIe configuration space).
pub const PCI_MIRROR_SIZE: u32 = 0x1000;
/// MSI re-arm register (nouveau `gp100_pci_msi_rearm` writes 0 here from every interrupt).
pub const PCI_MSI_REARM: u32 = 0x088704;

/// TLB clients of the BAR apertures: HUB clients named after their MMU engine ids
/// (gp100 `dev_fault.h`: NV_PFAULT_MMU_ENG_ID_BAR1 4, BAR2 5).
const CLIENT_BAR1: ClientKind = ClientKind::Hub(4);
const CLIENT_BAR2: ClientKind = ClientKind::Hub(5);

/// The ceiling on distinct unknown offsets remembered for "logged once" (bounds
/// the memory a hostile guest can make us spend on the log).
const UNKNOWN_LOG_LIMIT: usize = 4096;

/// Errors of the device entry points. The transport logs these; they are never
/// panics, and the guest still gets the hardware answer.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum DeviceError {
    /// An access of a size the BAR does not support (BARs take 1, 2, 4 or 8 bytes).
    #[error("BAR access of {0} bytes is not supported (1, 2, 4 or 8)")]
    BadSize(usize),
    /// An access that runs past the end of the BAR.
    #[error("BAR{bar} access at {offset:#x}+{len} runs past the end of the BAR")]
    OutOfRange { bar: u32, offset: u64, len: usize },
    /// An aperture access the bound address space does not map (the hardware reports an
    /// MMU fault of engine BAR1/BAR2; reads return zero, writes are dropped: our choice).
    #[error("BAR{bar} access at {offset:#x}: {why}")]
    ApertureFault { bar: u32, offset: u64, why: String },
    /// An access to a BAR index this function does not have.
    #[error("the function has no BAR{0}")]
    NoSuchBar(u32),
}

/// The emulated GP100.
#[derive(Debug)]
pub struct Device {
    config: ConfigSpace,
    pmc: Pmc,
    window: VendorWindow,
    prom: Prom,
    fuse: Fuse,
    devinit: Devinit,
    ptimer: Ptimer,
    top: Top,
    therm: Therm,
    fifo: Fifo,
    access: AccessEngine,
    batch: Batch,
    checker: Checker,
    chk_regs: CheckRegs,
    fb: TableUnit,
    ltc: TableUnit,
    pbus: TableUnit,
    pmgr: TableUnit,
    pextdev: TableUnit,
    gr: TableUnit,
    uflush: Uflush,
    pramin: Pramin,
    bars: Bars,
    unknown_seen: BTreeSet<u32>,
    undecoded_index: u32,
    host_gp_entries: u64,
    runlists_submitted: u64,
    /// The GPU clock; see [`Device::gpu_cycles`].
    clock: GpuClock,
    costs: Costs,
    poll: PollDetector,
    mmu: Mmu,
    fault: FaultRing,
    phys: PhysMem,
    /// Model events since the last [`Device::take_events`], kept only while logging is on.
    events: Vec<ModelEvent>,
    events_dropped: u64,
    log_events: bool,
}

/// Most model events held between two drains (a guest cannot grow it without bound); past
/// it events are counted and the drain ends with [`ModelEvent::EventsDropped`]. As large as
/// the DMA log's bound, since one input's DMA events all pass through here.
pub(crate) const MAX_PENDING_EVENTS: usize = crate::mem::phys::MAX_DMA_EVENTS + 4096;

impl Default for Device {
    fn default() -> Self {
        Self::new()
    }
}

impl Device {
    /// Creates a device in its power-on reset state with the default BAR sizes.
    pub fn new() -> Self {
        Self::with_layout(BarLayout::default())
    }

    /// Creates a device whose BARs have the given sizes.
    pub fn with_layout(layout: BarLayout) -> Self {
        Device {
            config: ConfigSpace::new(layout),
            pmc: Pmc::new(),
            window: VendorWindow::new(),
            prom: Prom::new(crate::vbios::build()),
            fuse: Fuse,
            devinit: Devinit,
            ptimer: Ptimer::new(),
            top: Top,
            therm: Therm,
            fifo: Fifo::new(),
            access: AccessEngine::default(),
            batch: Batch::default(),
            checker: Checker::new(Inject::None),
            chk_regs: CheckRegs::default(),
            fb: fb::new(),
            ltc: ltc::new(),
            pbus: pbus::new(),
            pmgr: pmgr::new(),
            pextdev: pextdev::new(),
            gr: gr::new(),
            uflush: Uflush::default(),
            pramin: Pramin::default(),
            bars: Bars::new(),
            unknown_seen: BTreeSet::new(),
            undecoded_index: 0,
            host_gp_entries: 0,
            runlists_submitted: 0,
            clock: GpuClock::new(),
            costs: P100,
            poll: PollDetector::default(),
            mmu: Mmu::new(TlbConfig::default(), P100),
            fault: FaultRing::new(FAULT_BUFFER_ENTRIES),
            phys: PhysMem::new(DEFAULT_VRAM),
            events: Vec::new(),
            events_dropped: 0,
            log_events: false,
        }
    }

    /// Replaces the guest RAM the device reaches by DMA (the transport calls this whenever
    /// QEMU's DMA map changes; replay installs the recorded reads).
    pub fn set_sysmem(&mut self, sys: Box<dyn SysMem + Send>) {
        self.phys.set_sys(sys);
    }

    /// Turns the model-event log (DMA included) on or off (tracing turns it on).
    pub fn set_event_log(&mut self, on: bool) {
        self.log_events = on;
        self.phys.set_log(on);
        self.mmu.set_walk_log(on);
        if !on {
            self.events.clear();
            self.events_dropped = 0;
        }
    }

    /// Whether logged DMA writes carry their bytes, not only a CRC (`--trace-data`).
    pub fn set_dma_write_data(&mut self, on: bool) {
        self.phys.set_log_write_data(on);
    }

    /// Whether [`Device::take_events`] has anything to return.
    pub fn has_events(&self) -> bool {
        !self.events.is_empty()
            || self.events_dropped > 0
            || self.phys.has_log()
            || self.mmu.has_walks()
    }

    /// The model events since the last call, in the order they happened.
    pub fn take_events(&mut self) -> Vec<ModelEvent> {
        self.flush_unit_logs();
        let mut v = std::mem::take(&mut self.events);
        if self.events_dropped > 0 {
            v.push(ModelEvent::EventsDropped {
                count: std::mem::take(&mut self.events_dropped),
            });
        }
        v
    }

    fn keep(&mut self, e: ModelEvent) {
        if self.events.len() < MAX_PENDING_EVENTS {
            self.events.push(e);
        } else {
            self.events_dropped = self.events_dropped.saturating_add(1);
        }
    }

    /// Moves what the memory and the MMU logged (DMA accesses, walks) into the event log.
    fn flush_unit_logs(&mut self) {
        if !self.log_events {
            return;
        }
        if self.phys.has_log() {
            for e in self.phys.take_log() {
                self.keep(e);
            }
        }
        if self.mmu.has_walks() {
            let (walks, dropped) = self.mmu.take_walks();
            for w in walks {
                let clamp = |n: u32| n.min(u8::MAX as u32) as u8;
                self.keep(ModelEvent::Walk {
                    va: w.va,
                    pa: w.outcome.ok().flatten(),
                    fault_type: w.outcome.err().map(|t| t.bits() as u8),
                    reads: clamp(w.reads),
                    sys_reads: clamp(w.sys_reads),
                    cycles: w.cycles.min(u32::MAX as u64) as u32,
                });
            }
            self.events_dropped = self.events_dropped.saturating_add(dropped);
        }
    }

    fn log(&mut self, e: ModelEvent) {
        if self.log_events {
            self.flush_unit_logs();
            self.keep(e);
        }
    }

    /// Device (function-level) reset: every unit back to its reset state. Video memory
    /// keeps its contents and the GPU clock keeps running.
    pub fn reset(&mut self) {
        self.config.reset();
        self.pmc.reset();
        self.window.reset();
        self.mmu.reset();
        self.fault.reset();
        self.ptimer.reset();
        self.fb.reset();
        self.ltc.reset();
        self.pbus.reset();
        self.pmgr.reset();
        self.gr.reset();
        self.pramin.reset();
        self.bars.reset();
        self.fifo.reset();
        self.access = AccessEngine::default();
        self.batch = Batch::default();
        let inject = self.checker.inject();
        self.checker = Checker::new(inject);
        self.chk_regs = CheckRegs::default();
    }

    /// Sets the replayable fault buffer's entry count (what SIZE reads), before the driver
    /// loads: a small buffer makes overflows reachable. Err(entries) outside
    /// [`MIN_FAULT_BUFFER_ENTRIES`]..=[`MAX_FAULT_BUFFER_ENTRIES`].
    pub fn set_fault_buffer_entries(&mut self, entries: u32) -> Result<(), u32> {
        if !(MIN_FAULT_BUFFER_ENTRIES..=MAX_FAULT_BUFFER_ENTRIES).contains(&entries) {
            return Err(entries);
        }
        self.fault = FaultRing::new(entries);
        Ok(())
    }

    /// Replaces the cycle-model profile and the TLB geometry (before the driver loads and
    /// before [`Device::set_event_log`]: the MMU starts afresh, TLBs empty).
    pub fn set_timing(&mut self, costs: Costs, tlb: TlbConfig) {
        self.costs = costs;
        self.mmu = Mmu::new(tlb, costs);
    }

    /// Makes the device inject a seeded bug into the PTEs nouveau writes (see
    /// [`crate::check::Inject`]); the PTE checker must then report violations.
    pub fn set_inject(&mut self, inject: Inject) {
        self.checker = Checker::new(inject);
    }

    /// The PTE checker.
    pub fn checker(&self) -> &Checker {
        &self.checker
    }

    /// The access engine.
    pub fn access_engine(&self) -> &AccessEngine {
        &self.access
    }

    /// The MMU (TLBs, invalidate registers, counters).
    pub fn mmu(&self) -> &Mmu {
        &self.mmu
    }

    /// The replayable fault buffer.
    pub fn fault_ring(&self) -> &FaultRing {
        &self.fault
    }

    /// Video memory.
    pub fn vram(&self) -> &VidMem {
        &self.phys.vid
    }

    /// The BAR bindings.
    pub fn bars(&self) -> &Bars {
        &self.bars
    }

    /// The host (channels, runlists).
    pub fn fifo(&self) -> &Fifo {
        &self.fifo
    }

    /// Writes `data` to video memory directly (tests and tools; not a guest path).
    pub fn vram_write(&mut self, addr: u64, data: &[u8]) -> Result<(), crate::mem::MemError> {
        self.phys.vid.write(addr, data)
    }

    /// Translates a BAR2 virtual address (what nouveau programs into engine registers such
    /// as the fault buffer's) to memory, as the hub's BAR2 client does.
    fn bar2_translate(&mut self, va: u64, access: Access) -> Result<Option<(Target, u64)>, String> {
        self.aperture_translate(Aperture::Bar2, va, access)
    }

    /// A GPU client reports a replayable fault: the entry is stamped with the GPU clock and
    /// written at PUT through the BAR2 translation of the buffer address (or counted as an
    /// overflow), and the interrupt follows.
    pub fn report_fault(&mut self, mut e: FaultEntry) -> fault::Report {
        e.timestamp = self.clock.now();
        let mut ring = std::mem::replace(&mut self.fault, FaultRing::new(2));
        let r = ring.report(
            |va, bytes| match self.bar2_translate(va, Access::Write) {
                Ok(Some((t, pa))) if (pa & 0xfff) + 32 <= 0x1000 => {
                    self.phys.write_bytes(t, pa, bytes).is_ok()
                }
                _ => false,
            },
            e,
        );
        self.fault = ring;
        match r {
            fault::Report::Written(index) => {
                self.clock.advance(self.costs.fault_write);
                self.log(ModelEvent::FaultWritten {
                    index,
                    addr: e.addr,
                    fault_type: e.fault_type.bits() as u8,
                    access: e.access.bits() as u8,
                });
            }
            fault::Report::Overflow | fault::Report::BadBuffer => {
                self.log(ModelEvent::FaultDropped {
                    addr: e.addr,
                    bad_buffer: r == fault::Report::BadBuffer,
                })
            }
        }
        self.update_interrupts();
        r
    }

    /// Interrupt lines follow the units' conditions after every access.
    fn update_interrupts(&mut self) {
        self.ptimer.tick(self.clock.nanoseconds());
        let mut lines = 0;
        if self.fault.pending() {
            lines |= INTR_FAULT;
        }
        if self.ptimer.pending() {
            lines |= INTR_PTIMER;
        }
        if self.fifo.pending() {
            lines |= INTR_FIFO;
        }
        self.pmc.set_pending(lines);
    }

    /// The distinct BAR0 offsets the guest touched that no unit decodes.
    pub fn unknown_offsets(&self) -> impl Iterator<Item = u32> + '_ {
        self.unknown_seen.iter().copied()
    }

    /// The level of the function's interrupt (INTx asserted / MSI to be sent).
    pub fn irq_asserted(&self) -> bool {
        self.pmc.irq_asserted()
    }

    /// The BAR sizes the function advertises.
    pub fn bar_layout(&self) -> BarLayout {
        self.config.layout()
    }

    /// Reads config space. Accesses past the 256 bytes read zero.
    pub fn config_read(&self, offset: u64, data: &mut [u8]) {
        self.config.read(offset, data, self.irq_asserted());
    }

    /// Writes config space (write masks, RW1C status bits).
    pub fn config_write(&mut self, offset: u64, data: &[u8]) {
        self.config.write(offset, data);
    }

    /// A read from BAR `bar` (VFIO region index 0-5). Errors fill `data` with
    /// all-ones (a failed PCIe read), except aperture faults, which read zero.
    pub fn bar_read(&mut self, bar: u32, offset: u64, data: &mut [u8]) -> Result<(), DeviceError> {
        match bar {
            0 => self.bar0_read(offset, data),
            1 => self.aperture_access(Aperture::Bar1, 1, offset, Buf::Read(data)),
            3 => self.aperture_access(Aperture::Bar2, 3, offset, Buf::Read(data)),
            _ => {
                data.fill(0xff);
                Err(DeviceError::NoSuchBar(bar))
            }
        }
    }

    /// A write to BAR `bar` (VFIO region index 0-5).
    pub fn bar_write(&mut self, bar: u32, offset: u64, data: &[u8]) -> Result<(), DeviceError> {
        match bar {
            0 => self.bar0_write(offset, data),
            1 => self.aperture_access(Aperture::Bar1, 1, offset, Buf::Write(data)),
            3 => self.aperture_access(Aperture::Bar2, 3, offset, Buf::Write(data)),
            _ => Err(DeviceError::NoSuchBar(bar)),
        }
    }

    /// Where an aperture offset lands: Some((memory, address)), None for a sparse page, or
    /// the reason it faults.
    fn aperture_translate(
        &mut self,
        ap: Aperture,
        offset: u64,
        access: Access,
    ) -> Result<Option<(Target, u64)>, String> {
        match self.bars.binding(ap) {
            Binding::Physical { target, base } => base
                .checked_add(offset)
                .map(|a| Some((target, a)))
                .ok_or_else(|| "physical window address overflows".to_string()),
            Binding::Broken { why } => Err(why.to_string()),
            Binding::Virtual { pdb, limit, .. } => {
                if offset > limit {
                    return Err(format!("beyond the address space's limit {limit:#x}"));
                }
                let client = match ap {
                    Aperture::Bar1 => CLIENT_BAR1,
                    Aperture::Bar2 => CLIENT_BAR2,
                };
                match self
                    .mmu
                    .translate(&self.phys, client, pdb, offset, access, true)
                {
                    Ok(Translation::Mapped { target, pa, .. }) => Ok(Some((target, pa))),
                    Ok(Translation::Sparse) => Ok(None),
                    Err(f) => Err(format!(
                        "MMU fault {:?} at level {:?}",
                        f.fault_type, f.level
                    )),
                }
            }
        }
    }

    fn aperture_access(
        &mut self,
        ap: Aperture,
        bar: u32,
        offset: u64,
        mut buf: Buf<'_>,
    ) -> Result<(), DeviceError> {
        let len = buf.len();
        if let Err(e) = Self::check(bar, self.config.layout().size_of(bar), offset, len) {
            buf.fail(0xff);
            return Err(e);
        }
        let access = match buf {
            Buf::Read(_) => Access::Read,
            Buf::Write(_) => Access::Write,
        };
        // An access is at most 8 bytes; it may straddle one 4 KiB page boundary.
        let mut result = Ok(());
        for (start, va, n) in crate::mem::pieces(offset, len, 0x1000) {
            match self.aperture_translate(ap, va, access) {
                Ok(Some((t, pa))) => {
                    let r = match &mut buf {
                        Buf::Read(d) => self.phys.read_bytes(t, pa, &mut d[start..start + n]),
                        Buf::Write(d) => self.phys.write_bytes(t, pa, &d[start..start + n]),
                    };
                    if let Err(e) = r {
                        buf.fill_range(start, n, 0);
                        result = Err(DeviceError::ApertureFault {
                            bar,
                            offset: va,
                            why: e.to_string(),
                        });
                    }
                }
                Ok(None) => buf.fill_range(start, n, 0),
                Err(why) => {
                    buf.fill_range(start, n, 0);
                    self.log(ModelEvent::ApertureFault {
                        bar: bar as u8,
                        offset: va,
                    });
                    result = Err(DeviceError::ApertureFault {
                        bar,
                        offset: va,
                        why,
                    });
                }
            }
        }
        let c = self.costs.pri_access + self.mmu.take_cost();
        self.clock.advance(c);
        if matches!(buf, Buf::Write(_)) {
            // The host watches USERD: a write may have been a GP_PUT.
            self.fifo.kick();
            self.poll.write();
        }
        self.run_host();
        self.update_interrupts();
        result
    }

    fn unit_for(&mut self, offset: u32) -> Option<&mut dyn Bar0Unit> {
        if VendorWindow::contains(offset) {
            Some(&mut self.window)
        } else if offset < 0x1000 {
            Some(&mut self.pmc)
        } else if Prom::contains(offset) {
            Some(&mut self.prom)
        } else if Fuse::contains(offset) {
            Some(&mut self.fuse)
        } else if offset == DEVINIT_STATUS {
            Some(&mut self.devinit)
        } else if offset == THERM_SENSOR {
            Some(&mut self.therm)
        } else if Top::contains(offset) {
            Some(&mut self.top)
        } else if Ptimer::contains(offset) {
            self.ptimer.tick(self.clock.nanoseconds());
            Some(&mut self.ptimer)
        } else if FaultRing::contains(offset) {
            Some(&mut self.fault)
        } else if matches!(
            offset,
            mmu_regs::STATUS | mmu_regs::PDB_LO | mmu_regs::TRIGGER | mmu_regs::PDB_HI
        ) {
            Some(&mut self.mmu)
        } else if Uflush::contains(offset) {
            Some(&mut self.uflush)
        } else if self.fb.contains(offset) {
            Some(&mut self.fb)
        } else if self.ltc.contains(offset) {
            Some(&mut self.ltc)
        } else if self.pbus.contains(offset) {
            Some(&mut self.pbus)
        } else if self.pmgr.contains(offset) {
            Some(&mut self.pmgr)
        } else if self.pextdev.contains(offset) {
            Some(&mut self.pextdev)
        } else if self.gr.contains(offset) {
            Some(&mut self.gr)
        } else {
            None
        }
    }

    fn note_unknown(&mut self, offset: u32, what: &str) {
        if self.unknown_seen.len() < UNKNOWN_LOG_LIMIT && self.unknown_seen.insert(offset) {
            warn!("BAR0 {what} of undecoded register {offset:#08x} (logged once per offset)");
        }
    }

    /// The model's GPU clock: cycles since the device was created. Deterministic: it
    /// advances only by the cycle model's cost of what the device does (`timing::Costs`:
    /// a PRI access per BAR0 register access, plus what the access set off, such as a TLB
    /// invalidate), never by host time, and a reset does not rewind it. Trace stamps are
    /// taken from it.
    pub fn gpu_cycles(&self) -> u64 {
        self.clock.now()
    }

    fn after_register_access(&mut self) {
        for inv in self.mmu.take_processed() {
            self.log(ModelEvent::Invalidate {
                word: inv.word,
                pdb: inv.pdb,
                dropped: inv.dropped,
            });
            self.after_invalidate(inv.word, inv.pdb);
        }
        let c = self.costs.pri_access + self.mmu.take_cost();
        self.clock.advance(c);
        for bit in BitIter(self.pmc.take_resets()) {
            self.reset_unit(bit);
        }
        self.drain_fifo_events();
        self.run_host();
        self.update_interrupts();
    }

    /// What an invalidate sets off beyond the TLBs: the PTE checker scans the space it
    /// covers (nouveau flushes after every PTE update), and the REPLAY/CANCEL field
    /// (bits 5:3: 1 START, 2 START_ACK_ALL, 3 CANCEL_TARGETED, 4 CANCEL_GLOBAL; gp100
    /// `dev_fb.h`) resumes or ends the access engine's waiting operation.
    fn after_invalidate(&mut self, word: u32, pdb_regs: u64) {
        if self.checker.armed() {
            self.retire_unbound_spaces();
            self.checker
                .scan_invalidated(&mut self.phys, word & 2 != 0, (pdb_regs >> 4) << 12);
            self.drain_checker_events();
        }
        let replay = (word >> 3) & 7;
        if matches!(replay, 1 | 2) && self.access.replay() {
            self.log(ModelEvent::Replay);
            self.step_access();
        } else if replay == 3 {
            let hub = word & (1 << 20) != 0;
            let gpc = ((word >> 15) & 0x1f) as u8;
            let client = ((word >> 9) & 0x3f) as u8;
            if self.access.cancel(Some((hub, gpc, client))) {
                self.log(ModelEvent::Cancel);
            }
        } else if replay == 4 && self.access.cancel(None) {
            self.log(ModelEvent::Cancel);
        }
        self.batch_after_invalidate(word);
    }

    /// REPLAY and CANCEL for the batch's waiting slots (the same field as above): a replay
    /// re-issues all of them, a cancel ends those it names.
    fn batch_after_invalidate(&mut self, word: u32) {
        let replay = (word >> 3) & 7;
        let cancelled = match replay {
            1 | 2 => {
                if self.batch.replay() > 0 {
                    self.log(ModelEvent::Replay);
                    self.step_batch();
                }
                0
            }
            3 => self.batch.cancel(Some((
                word & (1 << 20) != 0,
                ((word >> 15) & 0x1f) as u8,
                ((word >> 9) & 0x3f) as u8,
            ))),
            4 => self.batch.cancel(None),
            _ => 0,
        };
        if cancelled > 0 {
            self.log(ModelEvent::Cancel);
        }
    }

    /// Runs the batch's waiting slots; their misses go to the fault buffer in slot order.
    fn step_batch(&mut self) {
        let mut hw = Hw {
            phys: &mut self.phys,
            mmu: &mut self.mmu,
            now_ns: 0,
        };
        let events = self.batch.run(&mut hw);
        let uses = self.batch.take_uses();
        self.judge_uses(uses);
        let c = self.mmu.take_cost();
        self.clock.advance(c);
        self.log_slot_events(events);
    }

    fn log_slot_events(&mut self, events: Vec<SlotEvent>) {
        for e in events {
            match e {
                SlotEvent::Done { op, va, faults, .. } => self.log(ModelEvent::AccessDone {
                    op: op as u8,
                    va,
                    faults,
                }),
                SlotEvent::Fault(f) => {
                    if !matches!(self.report_fault(f), fault::Report::Written(_)) {
                        self.batch.note_dropped();
                    }
                }
                SlotEvent::Error(why) => self.log(ModelEvent::AccessError { why }),
            }
        }
    }

    /// Accounts the data access of each translation an access used and lets the PTE checker
    /// judge each use.
    fn judge_uses(&mut self, uses: Vec<access::Use>) {
        for u in uses {
            let cost = if u.target.is_sys() {
                self.costs.data_read_sysmem
            } else {
                self.costs.data_read_vidmem
            };
            self.clock.advance(cost);
            self.checker.check_use(
                &self.phys,
                (u.chid, u.inst, u.pdb),
                u.va,
                u.target,
                u.pa,
                u.write,
            );
        }
        self.drain_checker_events();
    }

    /// Exited processes' spaces whose channel is no longer bound to the same instance block
    /// (nouveau freed it at file close) stop being scanned: the page directory may be reused.
    fn retire_unbound_spaces(&mut self) {
        for (chid, inst) in self.checker.exited_channels() {
            if self.access_channel(chid).map(|c| c.inst.0).ok() != Some(inst) {
                self.checker.retire(chid, inst);
            }
        }
    }

    fn drain_checker_events(&mut self) {
        for e in self.checker.take_events() {
            self.log(e);
        }
    }

    /// Resolves a channel id to the access engine's view of it: the PCCSR instance
    /// pointer, then the instance block's PDB word.
    fn access_channel(&self, chid: u32) -> Result<access::Channel, String> {
        let w = self
            .fifo
            .channel_inst(chid)
            .ok_or_else(|| format!("channel {chid} is not bound"))?;
        let aperture = ((w >> 28) & 3) as u8;
        let target =
            Target::from_target_field(u64::from(aperture)).ok_or("instance block target 1")?;
        let inst = u64::from(w & 0x0fff_ffff) << 12;
        let pdb_word = self
            .phys
            .read_u64(target, inst + crate::bar::INST_PDB)
            .map_err(|e| format!("instance block unreadable: {e}"))?;
        let pdb = crate::mmu::walk::Pdb::from_instance_word(pdb_word)
            .ok_or("the instance block has no VER2 page directory")?;
        Ok(access::Channel {
            pdb,
            pdb_word,
            inst: (inst, aperture),
            chid,
        })
    }

    /// Runs the access engine's operation until it completes, faults or fails.
    fn step_access(&mut self) {
        let mut hw = Hw {
            phys: &mut self.phys,
            mmu: &mut self.mmu,
            now_ns: 0,
        };
        let r = self.access.step(&mut hw);
        let uses = self.access.take_uses();
        self.judge_uses(uses);
        let c = self.mmu.take_cost();
        self.clock.advance(c);
        match r {
            access::StepResult::Done => self.log(ModelEvent::AccessDone {
                op: self.access.last_op() as u8,
                va: self.access.va,
                faults: self.access.faults(),
            }),
            access::StepResult::Fault(e) => {
                self.report_fault(e);
            }
            access::StepResult::Error(why) => self.log(ModelEvent::AccessError { why }),
        }
    }

    /// A unit whose PMC_ENABLE bit was cleared goes back to its reset state. The copy
    /// engines keep no state outside their channels, so only PFIFO has any to lose.
    fn reset_unit(&mut self, bit: u32) {
        if bit == ENABLE_PFIFO {
            self.fifo.reset();
        }
        if bit == crate::regs::top::ENGINE_GR.reset {
            self.gr.reset();
        }
    }

    fn drain_fifo_events(&mut self) {
        for e in self.fifo.take_events() {
            if matches!(e, ModelEvent::RunlistSubmitted { .. }) {
                self.runlists_submitted += 1;
            }
            self.log(e);
        }
    }

    /// The window's status registers (device-wide state; see [`crate::regs::window`]).
    fn window_status(&mut self, offset: u32, write: Option<u32>) -> Option<u32> {
        use crate::regs::window::*;
        let reg = offset.checked_sub(WINDOW_BASE)?;
        if (AE_BASE..AE_END).contains(&reg) {
            return self.access_regs(reg, write);
        }
        if (AB_BASE..AB_END).contains(&reg) {
            return self.batch_regs(reg, write);
        }
        if (CHK_BASE..CHK_END).contains(&reg) {
            return self.check_regs(reg, write);
        }
        if let Some(v) = write {
            return (reg == WINDOW_UNDECODED_INDEX).then(|| {
                self.undecoded_index = v;
                0
            });
        }
        Some(match reg {
            WINDOW_UNDECODED_COUNT => self.unknown_seen.len() as u32,
            WINDOW_UNDECODED_INDEX => self.undecoded_index,
            WINDOW_UNDECODED_OFFSET => self
                .unknown_seen
                .iter()
                .nth(self.undecoded_index as usize)
                .copied()
                .unwrap_or(u32::MAX),
            WINDOW_CHANNELS_ACTIVE => self.fifo.active_channels().len() as u32,
            WINDOW_HOST_GP_ENTRIES => self.host_gp_entries as u32,
            WINDOW_RUNLISTS_SUBMITTED => self.runlists_submitted as u32,
            _ => return None,
        })
    }

    fn access_regs(&mut self, reg: u32, write: Option<u32>) -> Option<u32> {
        use crate::regs::window::*;
        let a = &mut self.access;
        if let Some(v) = write {
            match reg {
                AE_CHID => a.chid = v,
                AE_VA_LO => set_half(&mut a.va, v, false),
                AE_VA_HI => set_half(&mut a.va, v, true),
                AE_LEN => a.len = v,
                AE_DATA_LO => set_half(&mut a.data, v, false),
                AE_DATA_HI => set_half(&mut a.data, v, true),
                AE_OP => {
                    let chan = self.access_channel(self.access.chid);
                    match self.access.start(v, chan) {
                        Ok(()) => self.step_access(),
                        Err(why) => self.log(ModelEvent::AccessError { why }),
                    }
                }
                AE_STATUS | AE_FAULTS | AE_REPLAYS | AE_RESULT => {}
                _ => return None,
            }
            return Some(0);
        }
        Some(match reg {
            AE_CHID => a.chid,
            AE_VA_LO => lo(a.va),
            AE_VA_HI => hi(a.va),
            AE_LEN => a.len,
            AE_DATA_LO => lo(a.data),
            AE_DATA_HI => hi(a.data),
            AE_OP => a.last_op(),
            AE_STATUS => a.status_word(),
            AE_FAULTS => a.faults(),
            AE_REPLAYS => a.replays(),
            AE_RESULT => a.result,
            _ => return None,
        })
    }

    fn batch_regs(&mut self, reg: u32, write: Option<u32>) -> Option<u32> {
        use crate::access::batch::ctrl;
        use crate::regs::window::*;
        let b = &mut self.batch;
        if let Some(v) = write {
            match reg {
                AB_INDEX => b.index = v,
                AB_CHID => b.selected().chid = v,
                AB_VA_LO => set_half(&mut b.selected().va, v, false),
                AB_VA_HI => set_half(&mut b.selected().va, v, true),
                AB_LEN => b.selected().len = v,
                AB_DATA_LO => set_half(&mut b.selected().data, v, false),
                AB_DATA_HI => set_half(&mut b.selected().data, v, true),
                AB_OP => b.selected().op = v,
                AB_GPC => b.selected().gpc = v,
                AB_COUNT => b.count = v,
                AB_CTRL if v == ctrl::ISSUE => {
                    let mut batch = std::mem::take(&mut self.batch);
                    let errors = batch.issue(|chid| self.access_channel(chid));
                    self.batch = batch;
                    self.log_slot_events(errors);
                    self.step_batch();
                }
                AB_CTRL if v == ctrl::CLEAR => self.batch.clear(),
                AB_CTRL | AB_STATUS | AB_FAULTS | AB_REPLAYS | AB_RESULT | AB_DONE | AB_ERRORS
                | AB_FAULTS_TOTAL | AB_DROPPED | AB_BUFFER_INFO => {}
                _ => return None,
            }
            return Some(0);
        }
        let info = self.fault.info();
        let b = &mut self.batch;
        Some(match reg {
            AB_INDEX => b.index,
            AB_CHID => b.selected().chid,
            AB_VA_LO => lo(b.selected().va),
            AB_VA_HI => hi(b.selected().va),
            AB_LEN => b.selected().len,
            AB_DATA_LO => lo(b.selected().data),
            AB_DATA_HI => hi(b.selected().data),
            AB_OP => b.selected().op,
            AB_GPC => b.selected().gpc,
            AB_STATUS => b.selected().status_word(),
            AB_FAULTS => b.selected().faults(),
            AB_REPLAYS => b.selected().replays(),
            AB_RESULT => b.selected().result,
            AB_COUNT => b.count,
            AB_CTRL => b.pending(),
            AB_DONE => b.done(),
            AB_ERRORS => b.errors(),
            AB_FAULTS_TOTAL => b.faults,
            AB_DROPPED => b.dropped,
            AB_BUFFER_INFO => info,
            AB_PROGRESS => b.selected().progress(),
            _ => return None,
        })
    }

    fn check_regs(&mut self, reg: u32, write: Option<u32>) -> Option<u32> {
        use crate::regs::window::*;
        let r = &mut self.chk_regs;
        if let Some(v) = write {
            match reg {
                CHK_CHID => r.chid = v,
                CHK_ROOT_LO => set_half(&mut r.root, v, false),
                CHK_ROOT_HI => set_half(&mut r.root, v, true),
                CHK_FLAGS => r.flags = v,
                CHK_EXCL_LO => set_half(&mut r.excl, v, false),
                CHK_EXCL_HI => set_half(&mut r.excl, v, true),
                CHK_EXCL_SIZE_LO => set_half(&mut r.excl_size, v, false),
                CHK_EXCL_SIZE_HI => set_half(&mut r.excl_size, v, true),
                CHK_CTRL => self.check_ctrl(v),
                CHK_SWAP_MIGRATION_READ => r.swap_migration_read = v as u8,
                CHK_PID => r.pid = v,
                CHK_SPACE_SEL => r.space_sel = v,
                CHK_MM_WATCH => self.checker.mm_watched(u64::from(v) << 12),
                CHK_MM_EXIT => {
                    self.checker.mm_exited(&mut self.phys, u64::from(v) << 12);
                    self.drain_checker_events();
                }
                _ if reg < CHK_END => {}
                _ => return None,
            }
            return Some(0);
        }
        let st = self.checker.stats();
        let last = self.checker.last();
        let r = &self.chk_regs;
        let space = self.checker.report(r.space_sel);
        Some(match reg {
            CHK_CHID => r.chid,
            CHK_ROOT_LO => lo(r.root),
            CHK_ROOT_HI => hi(r.root),
            CHK_FLAGS => r.flags,
            CHK_EXCL_LO => lo(r.excl),
            CHK_EXCL_HI => hi(r.excl),
            CHK_EXCL_SIZE_LO => lo(r.excl_size),
            CHK_EXCL_SIZE_HI => hi(r.excl_size),
            CHK_CTRL => u32::from(self.checker.armed()),
            CHK_VIOLATIONS => st.violations as u32,
            CHK_CHECKED => st.checked as u32,
            CHK_SCANS => st.scans as u32,
            CHK_LAST_VA_LO => last.map_or(0, |v| lo(v.va)),
            CHK_LAST_VA_HI => last.map_or(0, |v| hi(v.va)),
            CHK_LAST_GPU_PTE_LO => last.map_or(0, |v| lo(v.gpu_pte)),
            CHK_LAST_GPU_PTE_HI => last.map_or(0, |v| hi(v.gpu_pte)),
            CHK_LAST_CPU_PTE_LO => last.map_or(0, |v| lo(v.cpu_pte)),
            CHK_LAST_CPU_PTE_HI => last.map_or(0, |v| hi(v.cpu_pte)),
            CHK_LAST_REASON => last.map_or(0, |v| v.reason as u32 | u32::from(v.at_use) << 8),
            CHK_LAST_INST => last.map_or(0, |v| (v.inst >> 12) as u32),
            CHK_INJECT => self.checker.inject().code(),
            CHK_ERROR => r.error,
            CHK_SWAP_MIGRATION_READ => u32::from(r.swap_migration_read),
            CHK_HAZARDS => st.hazards as u32,
            o if (CHK_BY_REASON..CHK_BY_REASON_END).contains(&o) => {
                st.by_reason[((o - CHK_BY_REASON) / 4) as usize] as u32
            }
            CHK_PID => r.pid,
            CHK_LAST_CHID => last.map_or(0, |v| v.chid),
            CHK_LAST_PID => last.map_or(0, |v| v.pid),
            CHK_SPACE_SEL => r.space_sel,
            CHK_SPACE_STATE => space.map_or(0, |s| {
                let life = match s.life {
                    Life::Live => 1,
                    Life::Exited => 2,
                    Life::Retired => 3,
                };
                life | u32::from(s.watched) << 8 | s.order.min(0xffff) << 16
            }),
            CHK_SPACE_VIOLATIONS => space.map_or(0, |s| s.violations as u32),
            CHK_SPACE_STALE => space.map_or(0, |s| s.stale as u32),
            CHK_SPACE_PID => space.map_or(0, |s| s.pid),
            CHK_STALE => st.stale as u32,
            CHK_SPACES => self.checker.spaces() as u32,
            CHK_ALIASES => st.aliases as u32,
            CHK_TRUNCATED => st.truncated_scans as u32,
            _ if reg < CHK_END => 0,
            _ => return None,
        })
    }

    fn check_ctrl(&mut self, v: u32) {
        match v {
            1 => match self.access_channel(self.chk_regs.chid) {
                Ok(c) => {
                    let r = &self.chk_regs;
                    let space = CheckedSpace {
                        swap: crate::check::x86::SwapTypes {
                            migration_read: r.swap_migration_read,
                        },
                        pdb: c.pdb,
                        inst: c.inst.0,
                        cpu: CpuSpace {
                            root: r.root,
                            la57: r.flags & 1 != 0,
                        },
                        exclude: (r.excl, r.excl.saturating_add(r.excl_size)),
                    };
                    match self.checker.register(space, r.chid, r.pid) {
                        Ok(()) => {
                            self.chk_regs.error = 0;
                            self.checker.scan_space(&mut self.phys, c.pdb);
                            self.drain_checker_events();
                        }
                        Err(why) => {
                            log::warn!("PTE checker not armed: {why}");
                            self.chk_regs.error = 2;
                        }
                    }
                }
                Err(why) => {
                    log::warn!("PTE checker not armed: {why}");
                    self.chk_regs.error = 1;
                }
            },
            2 => {
                if let Ok(c) = self.access_channel(self.chk_regs.chid) {
                    self.checker.unregister(Some(c.pdb));
                }
            }
            3 => {
                self.retire_unbound_spaces();
                self.checker.scan(&mut self.phys);
                self.drain_checker_events();
            }
            4 => self.checker.unregister(None),
            _ => {}
        }
    }

    /// Gives the host a bounded budget of work if something may have kicked a channel,
    /// and accounts for what it did.
    fn run_host(&mut self) {
        if !self.fifo.wants_run() {
            return;
        }
        let now_ns = self.ptimer.time_ns(self.clock.nanoseconds());
        let mut hw = Hw {
            phys: &mut self.phys,
            mmu: &mut self.mmu,
            now_ns,
        };
        let r = self.fifo.run(&mut hw, BUDGET_PER_ACCESS);
        let fx = r.effects;
        if fx.tlb_invalidate {
            self.mmu.invalidate_everything();
        }
        self.host_gp_entries += fx.gp_entries;
        self.drain_fifo_events();
        if fx.dwords > 0 || fx.gp_entries > 0 {
            self.log(ModelEvent::HostRan {
                dwords: fx.dwords,
                gp_entries: fx.gp_entries,
                ce_bytes: fx.ce_bytes,
                releases: fx.releases,
                nonstall: fx.nonstall,
            });
        }
        let c = fx.dwords * self.costs.pbdma_dword
            + fx.ce_bytes / self.costs.ce_bytes_per_cycle.max(1)
            + self.mmu.take_cost();
        self.clock.advance(c);
    }

    fn pramin_access(&mut self, offset: u32, write: Option<u32>) -> Option<u32> {
        let (t, a) = self.pramin.resolve(offset)?;
        match write {
            Some(v) => {
                // A write outside memory is dropped, as the hardware drops it.
                let _ = self.phys.write_u32(t, a, v);
                self.fifo.kick();
                Some(0)
            }
            None => self.phys.read_u32(t, a).ok(),
        }
    }

    /// Reads a 32-bit register at a 4-byte-aligned BAR0 offset.
    pub fn bar0_read32(&mut self, offset: u32) -> u32 {
        let value = if Pramin::contains(offset) {
            self.pramin_access(offset, None)
        } else if let Some(v) = VendorWindow::contains(offset)
            .then(|| self.window_status(offset, None))
            .flatten()
        {
            Some(v)
        } else if (PCI_MIRROR..PCI_MIRROR + PCI_MIRROR_SIZE).contains(&offset) {
            Some(self.pci_mirror_read(offset))
        } else if offset == BAR0_WINDOW {
            Some(self.pramin.window())
        } else if Bars::contains(offset) {
            self.bars.read32(offset)
        } else if Fifo::contains(offset) && !Self::is_fault_reg(offset) {
            self.fifo.read32(offset)
        } else if absent::contains(offset) {
            Some(PRI_ERROR_NO_UNIT)
        } else {
            self.unit_for(offset).and_then(|u| u.read32(offset))
        };
        let v = value.unwrap_or_else(|| {
            self.note_unknown(offset, "read");
            PRI_ERROR_NO_UNIT
        });
        let idle = self.poll.read(offset, &self.costs);
        self.clock.advance(idle);
        self.after_register_access();
        v
    }

    /// Writes a 32-bit register at a 4-byte-aligned BAR0 offset.
    pub fn bar0_write32(&mut self, offset: u32, value: u32) {
        let decoded = if Pramin::contains(offset) {
            self.pramin_access(offset, Some(value)).is_some()
        } else if VendorWindow::contains(offset)
            && self.window_status(offset, Some(value)).is_some()
        {
            true
        } else if (PCI_MIRROR..PCI_MIRROR + PCI_MIRROR_SIZE).contains(&offset) {
            self.pci_mirror_write(offset, value);
            true
        } else if offset == BAR0_WINDOW {
            self.pramin.set_window(value);
            true
        } else if Bars::contains(offset) {
            self.bars.write32(offset, value, &self.phys)
        } else if Fifo::contains(offset) && !Self::is_fault_reg(offset) {
            self.fifo.write32(offset, value, &self.phys)
        } else if absent::contains(offset) {
            true
        } else {
            self.unit_for(offset)
                .is_some_and(|u| u.write32(offset, value))
        };
        if !decoded {
            self.note_unknown(offset, "write");
        }
        self.poll.write();
        self.after_register_access();
    }

    fn is_fault_reg(offset: u32) -> bool {
        FaultRing::contains(offset)
    }

    fn pci_mirror_read(&self, offset: u32) -> u32 {
        match offset {
            PCI_MSI_REARM => 0,
            o => {
                let mut b = [0u8; 4];
                self.config_read(u64::from(o - PCI_MIRROR), &mut b);
                u32::from_le_bytes(b)
            }
        }
    }

    fn pci_mirror_write(&mut self, offset: u32, value: u32) {
        // The MSI re-arm: the function may signal again. Our MSI follows the interrupt
        // condition's rising edges, which nouveau's unarm/rearm around the write produce.
        if offset != PCI_MSI_REARM {
            self.config_write(u64::from(offset - PCI_MIRROR), &value.to_le_bytes());
        }
    }

    /// Whether an access of `len` bytes at `offset` fits BAR `bar` of `size` bytes and has a
    /// size the BARs take.
    fn check(bar: u32, size: u64, offset: u64, len: usize) -> Result<(), DeviceError> {
        if !matches!(len, 1 | 2 | 4 | 8) {
            return Err(DeviceError::BadSize(len));
        }
        if offset.checked_add(len as u64).is_none_or(|end| end > size) {
            return Err(DeviceError::OutOfRange { bar, offset, len });
        }
        Ok(())
    }

    /// A BAR0 read of 1, 2, 4 or 8 bytes at any offset. Registers are 32-bit:
    /// a narrower or unaligned read returns the covered bytes of the covering
    /// words (little endian), an 8-byte read two consecutive words.
    ///
    /// On error `data` is filled with all-ones (a failed PCIe read) and the
    /// error is returned for the transport to log.
    pub fn bar0_read(&mut self, offset: u64, data: &mut [u8]) -> Result<(), DeviceError> {
        if let Err(e) = Self::check(0, BAR0_SIZE, offset, data.len()) {
            data.fill(0xff);
            return Err(e);
        }
        let first = offset & !3;
        let last = (offset + data.len() as u64 - 1) & !3;
        let mut bytes = [0u8; 12];
        let mut n = 0;
        let mut word = first;
        while word <= last {
            let v = self.bar0_read32(word as u32);
            bytes[n..n + 4].copy_from_slice(&v.to_le_bytes());
            n += 4;
            word += 4;
        }
        let skip = (offset - first) as usize;
        data.copy_from_slice(&bytes[skip..skip + data.len()]);
        Ok(())
    }

    /// A BAR0 write of 1, 2, 4 or 8 bytes. Aligned 4- and 8-byte writes go to
    /// the registers directly; narrower or unaligned writes are merged into the
    /// covering 32-bit words (read-modify-write), since GP100's registers are
    /// 32-bit wide.
    pub fn bar0_write(&mut self, offset: u64, data: &[u8]) -> Result<(), DeviceError> {
        Self::check(0, BAR0_SIZE, offset, data.len())?;
        if offset.is_multiple_of(4) && data.len().is_multiple_of(4) {
            for (i, chunk) in data.chunks_exact(4).enumerate() {
                let v = u32::from_le_bytes(chunk.try_into().expect("chunk of 4"));
                self.bar0_write32(offset as u32 + 4 * i as u32, v);
            }
            return Ok(());
        }
        let first = offset & !3;
        let last = (offset + data.len() as u64 - 1) & !3;
        let mut bytes = [0u8; 12];
        let words = ((last - first) / 4 + 1) as usize;
        for i in 0..words {
            let v = self.bar0_read32(first as u32 + 4 * i as u32);
            bytes[4 * i..4 * i + 4].copy_from_slice(&v.to_le_bytes());
        }
        let skip = (offset - first) as usize;
        bytes[skip..skip + data.len()].copy_from_slice(data);
        for i in 0..words {
            let v = u32::from_le_bytes(bytes[4 * i..4 * i + 4].try_into().expect("4 bytes"));
            self.bar0_write32(first as u32 + 4 * i as u32, v);
        }
        Ok(())
    }
}

/// The low 32 bits of a 64-bit value the window shows as two registers.
fn lo(x: u64) -> u32 {
    x as u32
}

/// The high 32 bits of a 64-bit value the window shows as two registers.
fn hi(x: u64) -> u32 {
    (x >> 32) as u32
}

/// Replaces the high or the low 32 bits of `x` with `v` (a write to one of the two registers).
fn set_half(x: &mut u64, v: u32, high: bool) {
    *x = if high {
        (*x & 0xffff_ffff) | u64::from(v) << 32
    } else {
        (*x & !0xffff_ffff) | u64::from(v)
    }
}

/// The checker's registration registers in the window.
#[derive(Debug, Clone)]
struct CheckRegs {
    swap_migration_read: u8,
    chid: u32,
    root: u64,
    flags: u32,
    excl: u64,
    excl_size: u64,
    error: u32,
    pid: u32,
    space_sel: u32,
}

impl Default for CheckRegs {
    fn default() -> Self {
        CheckRegs {
            swap_migration_read: crate::check::x86::DEFAULT_SWAP_TYPES.migration_read,
            chid: 0,
            root: 0,
            flags: 0,
            excl: 0,
            excl_size: 0,
            error: 0,
            pid: 0,
            space_sel: 0,
        }
    }
}

/// An access buffer: read into, or write from.
enum Buf<'a> {
    Read(&'a mut [u8]),
    Write(&'a [u8]),
}

impl Buf<'_> {
    fn len(&self) -> usize {
        match self {
            Buf::Read(d) => d.len(),
            Buf::Write(d) => d.len(),
        }
    }
    fn fail(&mut self, v: u8) {
        if let Buf::Read(d) = self {
            d.fill(v);
        }
    }
    fn fill_range(&mut self, start: usize, n: usize, v: u8) {
        if let Buf::Read(d) = self {
            d[start..start + n].fill(v);
        }
    }
}

/// The set bits of a word, lowest first.
struct BitIter(u32);

impl Iterator for BitIter {
    type Item = u32;
    fn next(&mut self) -> Option<u32> {
        if self.0 == 0 {
            return None;
        }
        let b = self.0.trailing_zeros();
        self.0 &= self.0 - 1;
        Some(b)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::regs::window::{WINDOW_BASE, WINDOW_SCRATCH0};

    #[test]
    fn boot0_reads_gp100_at_every_width() {
        let mut d = Device::new();
        assert_eq!(d.bar0_read32(0), 0x1300_00a1);
        let mut b = [0u8; 1];
        d.bar0_read(3, &mut b).unwrap();
        assert_eq!(b, [0x13]);
        let mut h = [0u8; 2];
        d.bar0_read(0, &mut h).unwrap();
        assert_eq!(h, [0xa1, 0x00]);
    }

    #[test]
    fn unknown_register_answers_pri_error_and_is_logged_once() {
        let mut d = Device::new();
        assert_eq!(d.bar0_read32(0x12_3450), PRI_ERROR_NO_UNIT);
        assert_eq!(d.bar0_read32(0x12_3450), PRI_ERROR_NO_UNIT);
        d.bar0_write32(0x12_3454, 5);
        assert_eq!(
            d.unknown_offsets().collect::<Vec<_>>(),
            vec![0x12_3450, 0x12_3454]
        );
        // The guest can list them through the window.
        use crate::regs::window::*;
        assert_eq!(d.bar0_read32(WINDOW_BASE + WINDOW_UNDECODED_COUNT), 2);
        d.bar0_write32(WINDOW_BASE + WINDOW_UNDECODED_INDEX, 1);
        assert_eq!(
            d.bar0_read32(WINDOW_BASE + WINDOW_UNDECODED_OFFSET),
            0x12_3454
        );
        d.bar0_write32(WINDOW_BASE + WINDOW_UNDECODED_INDEX, 2);
        assert_eq!(
            d.bar0_read32(WINDOW_BASE + WINDOW_UNDECODED_OFFSET),
            u32::MAX
        );
    }

    #[test]
    fn byte_writes_merge_into_the_register() {
        let mut d = Device::new();
        let reg = WINDOW_BASE + WINDOW_SCRATCH0;
        d.bar0_write32(reg, 0x1122_3344);
        d.bar0_write(reg as u64 + 1, &[0xaa]).unwrap();
        assert_eq!(d.bar0_read32(reg), 0x1122_aa44);
        d.bar0_write(reg as u64 + 2, &[0xbb, 0xcc, 0xdd, 0xee])
            .unwrap();
        assert_eq!(d.bar0_read32(reg), 0xccbb_aa44);
        assert_eq!(d.bar0_read32(reg + 4) & 0xffff, 0xeedd);
    }

    #[test]
    fn eight_byte_access_spans_two_registers() {
        let mut d = Device::new();
        let reg = (WINDOW_BASE + WINDOW_SCRATCH0) as u64;
        d.bar0_write(reg, &0x0102_0304_0506_0708u64.to_le_bytes())
            .unwrap();
        let mut b = [0u8; 8];
        d.bar0_read(reg, &mut b).unwrap();
        assert_eq!(u64::from_le_bytes(b), 0x0102_0304_0506_0708);
    }

    #[test]
    fn bad_accesses_are_errors_not_panics() {
        let mut d = Device::new();
        let mut b = [0u8; 3];
        assert_eq!(d.bar0_read(0, &mut b), Err(DeviceError::BadSize(3)));
        assert_eq!(b, [0xff; 3]);
        let mut w = [0u8; 4];
        assert!(matches!(
            d.bar0_read(BAR0_SIZE - 2, &mut w),
            Err(DeviceError::OutOfRange { .. })
        ));
        assert!(d.bar0_read(u64::MAX - 1, &mut w).is_err());
        assert!(d.bar0_write(u64::MAX, &[0; 8]).is_err());
        assert!(d.bar0_write(0, &[]).is_err());
    }

    #[test]
    fn config_space_and_bars_at_reset() {
        let mut d = Device::new();
        let mut id = [0u8; 4];
        d.config_read(0, &mut id);
        assert_eq!(u32::from_le_bytes(id), 0x15f8_10de);
        // At reset BAR1 is in physical mode onto video memory from 0.
        d.vram_write(0x10, &[1, 2, 3, 4]).unwrap();
        let mut b = [0u8; 4];
        d.bar_read(1, 0x10, &mut b).unwrap();
        assert_eq!(b, [1, 2, 3, 4]);
        assert_eq!(d.bar_read(5, 0, &mut b), Err(DeviceError::NoSuchBar(5)));
        assert!(matches!(
            d.bar_read(3, 32 << 20, &mut b),
            Err(DeviceError::OutOfRange { bar: 3, .. })
        ));
        assert_eq!(b, [0xff; 4]);
        let mut boot0 = [0u8; 4];
        d.bar_read(0, 0, &mut boot0).unwrap();
        assert_eq!(u32::from_le_bytes(boot0), 0x1300_00a1);
    }

    #[test]
    fn pramin_window_reaches_video_memory_where_0x1700_points() {
        let mut d = Device::new();
        d.bar0_write32(BAR0_WINDOW, 0x0000_0123);
        d.bar0_write32(0x700000 + 0x40, 0xcafe_f00d);
        assert_eq!(d.vram().read_u32(0x123_0040).unwrap(), 0xcafe_f00d);
        assert_eq!(d.bar0_read32(0x700040), 0xcafe_f00d);
        // System-memory target with no guest RAM: the read fails like an absent unit.
        d.bar0_write32(BAR0_WINDOW, 0x0200_0000);
        assert_eq!(d.bar0_read32(0x700000), PRI_ERROR_NO_UNIT);
        assert_eq!(d.bar0_read32(BAR0_WINDOW), 0x0200_0000);
    }

    /// Writes nouveau's BAR2 set-up through PRAMIN: an instance block at 0x20000 whose PDB
    /// maps VA 0x1000 (4 KiB page) to video memory 0x50000, then binds BAR2.
    fn bind_bar2(d: &mut Device) {
        use crate::mmu::{DualPde, Pde, PdeAperture, Pte};
        let w64 = |d: &mut Device, a: u64, v: u64| {
            d.bar0_write32(BAR0_WINDOW, (a >> 16) as u32);
            let o = 0x700000 + (a & 0xffff) as u32;
            d.bar0_write32(o, v as u32);
            d.bar0_write32(o + 4, (v >> 32) as u32);
        };
        let pd = |a: u64| Pde::build(PdeAperture::Video, false, a).0;
        w64(d, 0x20000 + 0x200, 0x30000 | 1 << 10);
        w64(d, 0x20000 + 0x208, (32 << 20) - 1);
        w64(d, 0x30000, pd(0x31000)); // PD3[0]
        w64(d, 0x31000, pd(0x32000)); // PD2[0]
        w64(d, 0x32000, pd(0x33000)); // PD1[0]
        let dual = DualPde::build(
            (PdeAperture::Invalid, false, 0),
            (PdeAperture::Video, false, 0x34000),
        );
        w64(d, 0x33000, dual.lo);
        w64(d, 0x33008, dual.hi);
        w64(d, 0x34000 + 8, Pte::pfn_vram(0x50000).0); // PT[1]: VA 0x1000
        d.bar0_write32(crate::bar::regs::BAR2_BLOCK, 0x8000_0000 | 0x20);
        assert_eq!(d.bar0_read32(crate::bar::regs::BIND_STATUS), 0);
    }

    #[test]
    fn bar3_is_translated_through_the_bound_bar2_address_space() {
        let mut d = Device::new();
        bind_bar2(&mut d);
        d.bar_write(3, 0x1008, &0x1122_3344u32.to_le_bytes())
            .unwrap();
        assert_eq!(d.vram().read_u32(0x50008).unwrap(), 0x1122_3344);
        let mut b = [0u8; 4];
        d.bar_read(3, 0x1008, &mut b).unwrap();
        assert_eq!(u32::from_le_bytes(b), 0x1122_3344);
        // An unmapped page faults: reads zero, the write is dropped, an event is logged.
        d.set_event_log(true);
        let e = d.bar_read(3, 0x3000, &mut b);
        assert!(matches!(
            e,
            Err(DeviceError::ApertureFault {
                bar: 3,
                offset: 0x3000,
                ..
            })
        ));
        assert_eq!(b, [0; 4]);
        assert!(d.take_events().contains(&ModelEvent::ApertureFault {
            bar: 3,
            offset: 0x3000
        }));
    }

    #[test]
    fn fault_entries_go_through_bar2() {
        use crate::fault::ring::regs;
        use crate::fault::{AccessType, FaultType};
        let mut d = Device::new();
        bind_bar2(&mut d);
        d.bar0_write32(regs::ADDR_HI, 0);
        d.bar0_write32(regs::ADDR_LO, 0x1000 | 1);
        let r = d.report_fault(FaultEntry {
            inst: 0x1000,
            inst_aperture: 0,
            addr: 0x7000,
            timestamp: 0,
            engine: 0,
            valid: false,
            gpc: 0,
            hub: false,
            access: AccessType::Read,
            client: 0,
            fault_type: FaultType::Pte,
        });
        assert_eq!(r, fault::Report::Written(0));
        assert_eq!(
            d.vram().read_u64(0x50008).unwrap(),
            0x7000,
            "VA lo/hi at +8"
        );
        // The CPU sees it through BAR3, as nouveau reads the buffer.
        let mut b = [0u8; 8];
        d.bar_read(3, 0x1008, &mut b).unwrap();
        assert_eq!(u64::from_le_bytes(b), 0x7000);
    }

    #[test]
    fn pci_config_is_mirrored_at_0x88000() {
        let mut d = Device::new();
        assert_eq!(d.bar0_read32(PCI_MIRROR), 0x15f8_10de);
        // nvkm_pci_rom_shadow: clear bit 0 of config 0x50, then set it again.
        let v = d.bar0_read32(PCI_MIRROR + 0x50);
        d.bar0_write32(PCI_MIRROR + 0x50, v & !1);
        assert_eq!(d.bar0_read32(PCI_MIRROR + 0x50) & 1, 0);
        d.bar0_write32(PCI_MIRROR + 0x50, v | 1);
        assert_eq!(d.bar0_read32(PCI_MIRROR + 0x50) & 1, 1);
        d.bar0_write32(PCI_MSI_REARM, 0);
        assert!(d.unknown_offsets().next().is_none());
    }

    #[test]
    fn fault_ring_raises_pmc_0x200_until_the_driver_catches_up() {
        use crate::fault::ring::regs;
        use crate::fault::{AccessType, FaultType};
        let mut d = Device::new();
        d.bar0_write32(0x160, INTR_FAULT); // PMC_INTR_EN_SET
        d.bar0_write32(regs::ADDR_HI, 0);
        d.bar0_write32(regs::ADDR_LO, 0x10_0000 | 1);
        assert_eq!(d.bar0_read32(regs::SIZE), FAULT_BUFFER_ENTRIES);
        assert!(!d.irq_asserted());
        let before = d.gpu_cycles();
        let r = d.report_fault(FaultEntry {
            inst: 0x1000,
            inst_aperture: 0,
            addr: 0x7000,
            timestamp: 0,
            engine: 0,
            valid: false,
            gpc: 0,
            hub: false,
            access: AccessType::Write,
            client: 0,
            fault_type: FaultType::Pte,
        });
        assert_eq!(r, fault::Report::Written(0));
        assert!(d.irq_asserted());
        assert_eq!(d.bar0_read32(0x100) & INTR_FAULT, INTR_FAULT);
        assert_eq!(d.bar0_read32(regs::PUT), 1);
        // The entry (BAR2 in physical mode at reset: video memory) carries the clock at
        // report time and VALID.
        let w3 = d.vram().read_u64(0x10_0000 + 24).unwrap();
        assert_eq!(w3 >> 63, 1, "VALID");
        assert_eq!(d.vram().read_u64(0x10_0000 + 16).unwrap(), before);
        d.bar0_write32(regs::GET, 1);
        assert!(!d.irq_asserted());
        assert_eq!(d.bar0_read32(0x100) & INTR_FAULT, 0);
    }

    #[test]
    fn invalidate_through_bar0_costs_clock_cycles() {
        let mut d = Device::new();
        assert_ne!(d.bar0_read32(0x100c80) & 0x00ff_0000, 0);
        let t0 = d.gpu_cycles();
        d.bar0_write32(0x100cbc, 0x8000_0001);
        assert_eq!(d.gpu_cycles() - t0, P100.pri_access + P100.invalidate);
        assert_ne!(d.bar0_read32(0x100c80) & 0x8000, 0);
        assert_eq!(d.mmu().stats().invalidates, 1);
    }

    #[test]
    fn probe_units_answer_as_nouveau_expects() {
        let mut d = Device::new();
        // The VBIOS is in the PROM window, signature first.
        assert_eq!(d.bar0_read32(0x300000) & 0xffff, 0xaa55);
        // Display fused off, already posted.
        assert_eq!(d.bar0_read32(0x021c04) & 1, 1);
        assert_eq!(d.bar0_read32(0x02240c) & 2, 2);
        // PTIMER moves between any two reads (nouveau declares 16 equal reads a stall).
        let a = d.bar0_read32(0x009400);
        let b = d.bar0_read32(0x009400);
        assert_ne!(a, b);
        assert!(d.unknown_offsets().next().is_none());
    }

    #[test]
    fn reset_clears_unit_state() {
        let mut d = Device::new();
        let reg = WINDOW_BASE + WINDOW_SCRATCH0;
        d.bar0_write32(reg, 7);
        d.reset();
        assert_eq!(d.bar0_read32(reg), 0);
    }

    /// A device with channel 1 bound, enabled and scheduled: USERD at BAR1 VA 0, its
    /// pushbuffer at VA 0x10_0000 and GPFIFO at `gp_base` (RAMFC GP_BASE / GP_BASE_HI, LIMIT2
    /// 1024 entries ORed in), a fence page at 0x40_0000 and copy pages at 0x60_0000.
    fn one_channel(gp_base: u32, gp_base_hi: u32) -> Device {
        use crate::engine::testutil::Space;
        use crate::mmu::format::Pte;
        let mut d = Device::new();
        let mut s = Space::new(0x100_0000);
        let map = |d: &mut Device, s: &mut Space, va: u64, pa: u64, pages: u64| {
            for p in 0..pages {
                s.map(&mut d.phys, va + p * 0x1000, Pte::pfn_vram(pa + p * 0x1000));
            }
        };
        map(&mut d, &mut s, 0, 0x20_0000, 1); // USERD (BAR1 VA 0)
        map(&mut d, &mut s, 0x10_0000, 0x30_0000, 0x12); // pushbuffer + GPFIFO at +0x10000
        map(&mut d, &mut s, 0x40_0000, 0x50_0000, 1); // fence
        map(&mut d, &mut s, 0x60_0000, 0x60_0000, 0x12); // copy source and destination
        let pdb = s.pdb.addr | 1 << 10;
        // BAR1's instance block, then the channel's (RAMFC + PDB).
        w32(&mut d, 0x80_0200, pdb as u32);
        w32(&mut d, 0x80_0208, 0x0fff_ffff);
        let chid = 1u32;
        let inst = 0x81_0000u64;
        w32(&mut d, inst + 0x08, 0x20_0000 + chid * 0x200); // USERD, VRAM
        w32(&mut d, inst + 0x48, gp_base); // GP_BASE
        w32(&mut d, inst + 0x4c, gp_base_hi | 10 << 16); // LIMIT2: 1024 entries
        w32(&mut d, inst + 0xe4, 0x20); // HCE privileged
        w32(&mut d, inst + 0x200, pdb as u32);
        // The runlist nouveau writes: a TSG of one, then the channel.
        w32(&mut d, 0x82_0000, 1 << 26 | 128 << 18 | 3 << 14 | 0x2000);
        w32(&mut d, 0x82_0008, chid);
        w32(&mut d, 0x82_000c, (inst >> 12) as u32);
        d.bar0_write32(crate::bar::regs::BAR1_BLOCK, 0x8000_0000 | 0x800);
        d.bar0_write32(0x800000 + 8 * chid, 0x8000_0000 | (inst >> 12) as u32);
        d.bar0_write32(0x800004 + 8 * chid, 0x400); // ENABLE_SET
        assert_eq!(d.bar0_read32(0x800004 + 8 * chid) & 1, 1);
        d.bar0_write32(0x2270, 0x820);
        d.bar0_write32(0x2274, 1 << 20 | 2);
        assert_eq!(d.bar0_read32(0x2284 + 8) & 0x0010_0000, 0, "not pending");
        assert_eq!(d.fifo().active_channels(), &[1]);
        d
    }

    /// Writes a little-endian word into video memory.
    fn w32(d: &mut Device, a: u64, v: u32) {
        d.vram_write(a, &v.to_le_bytes()).unwrap();
    }

    #[test]
    fn a_channel_runs_its_pushbuffer_when_gp_put_is_written_through_bar1() {
        let mut d = one_channel(0x11_0000, 0);
        let chid = 1u32;
        // A fence release + non-stall interrupt (nvc0_fence_emit32), the copy class on
        // subchannel 4 (nve0_bo_move_init), and one page copied (nve0_bo_move_copy).
        let pb: [u32; 19] = [
            0x2005_0004,
            0,
            0x40_0000,
            42,
            0x2,
            0,
            0x2001_8000,
            0xc0b5,
            0x2008_8100,
            0,
            0x60_0000,
            0,
            0x61_0000,
            0x1000,
            0x1000,
            0x1000,
            1,
            0x2001_80c0,
            0x386,
        ];
        for (i, w) in pb.iter().enumerate() {
            w32(&mut d, 0x30_0000 + 4 * i as u64, *w);
        }
        w32(&mut d, 0x31_0000, 0x10_0000); // GP entry 0
        w32(&mut d, 0x31_0004, (pb.len() as u32) << 10);
        d.vram_write(0x60_0000, &[0xab; 0x1000]).unwrap();
        d.bar0_write32(0x2140, 0x8000_0000); // non-stall allowed
        d.bar0_write32(0x160, INTR_FIFO);
        assert!(!d.irq_asserted());
        // nouveau's kick: GP_PUT through BAR1.
        d.set_event_log(true);
        d.bar_write(1, u64::from(chid) * 0x200 + 0x8c, &1u32.to_le_bytes())
            .unwrap();
        assert_eq!(d.vram().read_u32(0x50_0000).unwrap(), 42, "fence released");
        assert_ne!(d.vram().read_u64(0x50_0008).unwrap(), 0, "with a timestamp");
        assert_eq!(d.vram().read_u32(0x61_0000).unwrap(), 0xabab_abab, "copied");
        let mut b = [0u8; 4];
        d.bar_read(1, u64::from(chid) * 0x200 + 0x88, &mut b)
            .unwrap();
        assert_eq!(u32::from_le_bytes(b), 1, "GP_GET caught up");
        d.bar_read(1, u64::from(chid) * 0x200 + 0x44, &mut b)
            .unwrap();
        assert_eq!(
            u32::from_le_bytes(b),
            0x10_0000 + 4 * pb.len() as u32,
            "GET"
        );
        assert!(d.irq_asserted(), "PMC bit 8 for the non-stall interrupt");
        assert_eq!(d.bar0_read32(0x2100) & 0x8000_0000, 0x8000_0000);
        d.bar0_write32(0x2100, 0x8000_0000);
        assert!(!d.irq_asserted());
        use crate::regs::window::*;
        assert_eq!(d.bar0_read32(WINDOW_BASE + WINDOW_CHANNELS_ACTIVE), 1);
        assert_eq!(d.bar0_read32(WINDOW_BASE + WINDOW_HOST_GP_ENTRIES), 1);
        assert_eq!(d.bar0_read32(WINDOW_BASE + WINDOW_RUNLISTS_SUBMITTED), 1);
        assert!(d.take_events().iter().any(|e| matches!(
            e,
            ModelEvent::HostRan {
                gp_entries: 1,
                ce_bytes: 4096,
                releases: 1,
                nonstall: true,
                ..
            }
        )));
        // A pushbuffer word to an engine we do not have stops the channel, with the reason.
        w32(&mut d, 0x30_1000, 0x2001_0100); // subchannel 0 (no class), method 0x400
        w32(&mut d, 0x30_1004, 7);
        w32(&mut d, 0x31_0008, 0x10_1000);
        w32(&mut d, 0x31_000c, 2 << 10);
        d.bar_write(1, u64::from(chid) * 0x200 + 0x8c, &2u32.to_le_bytes())
            .unwrap();
        assert!(d
            .take_events()
            .iter()
            .any(|e| matches!(e, ModelEvent::ChannelError { chid: 1, .. })));
        assert!(d.fifo().active_channels().is_empty());
        assert!(d.unknown_offsets().next().is_none());
    }

    /// The host reads GPFIFO addresses with 40 bits (GP_BASE_HI OFFSET 7:0): bits 15:8 that
    /// a driver writes for a GPFIFO above 1 TiB are not address bits, so the fetch goes to the
    /// truncated address and faults, and the channel error says why.
    #[test]
    fn a_gpfifo_above_the_hosts_40_bit_reach_stops_the_channel_with_the_reason() {
        let chid = 1u32;
        // nouveau's upper_32_bits(0x7f4a_0011_0000) = 0x7f4a: the host sees VA 0x4a_0011_0000.
        let mut d = one_channel(0x11_0000, 0x7f4a);
        d.set_event_log(true);
        d.bar_write(1, u64::from(chid) * 0x200 + 0x8c, &1u32.to_le_bytes())
            .unwrap();
        let why = d
            .take_events()
            .into_iter()
            .find_map(|e| match e {
                ModelEvent::ChannelError { chid: 1, why } => Some(why),
                _ => None,
            })
            .expect("the channel stops");
        assert!(why.contains("GPFIFO fetch at 0x4a00110000"), "{why}");
        assert!(
            why.contains("bits 15:8 = 0x7f") && why.contains("above 1 TiB"),
            "{why}"
        );
        assert!(d.fifo().active_channels().is_empty());
    }

    /// A batch through the registers: 20 slots over 10 pages of two channels miss at once
    /// into a 16-entry buffer, so 15 entries land (duplicates, in slot order), 5 are dropped
    /// and OVERFLOW is set; the driver maps the pages, drains GET and replays, and every slot
    /// completes; a second batch is cancelled for one GPC only.
    #[test]
    fn batch_fills_and_overflows_the_fault_buffer_and_recovers_on_replay() {
        use crate::engine::testutil::Space;
        use crate::mmu::format::Pte;
        use crate::regs::window::*;
        use vm_memory::{GuestAddress, GuestMemoryMmap};
        let mut d = Device::new();
        assert_eq!(d.set_fault_buffer_entries(8), Err(8));
        d.set_fault_buffer_entries(16).unwrap();
        let ram = GuestMemoryMmap::<()>::from_ranges(&[(GuestAddress(0), 16 << 20)]).unwrap();
        d.set_sysmem(Box::new(ram));
        bind_bar2(&mut d);
        d.bar0_write32(fault::ring::regs::ADDR_LO, 0x1000 | 1);
        let mut spaces = Vec::new();
        for (chid, inst) in [(3u32, 0x90_0000u64), (4, 0x91_0000)] {
            let s = Space::new(0x100_0000 + u64::from(chid) * 0x10_0000);
            d.vram_write(inst + 0x200, &(s.pdb.addr | 1 << 10 | 0x30).to_le_bytes())
                .unwrap();
            d.bar0_write32(0x800000 + 8 * chid, 0x8000_0000 | (inst >> 12) as u32);
            spaces.push(s);
        }
        let w = |d: &mut Device, r: u32, v: u32| d.bar0_write32(WINDOW_BASE + r, v);
        let r = |d: &mut Device, r: u32| d.bar0_read32(WINDOW_BASE + r);
        for i in 0..20u32 {
            w(&mut d, AB_INDEX, i);
            w(&mut d, AB_CHID, 3 + i % 2);
            w(&mut d, AB_VA_LO, 0x40_0000 + (i % 10) * 0x1000);
            w(&mut d, AB_LEN, 4);
            w(&mut d, AB_OP, if i % 3 == 0 { 2 } else { 1 });
            w(&mut d, AB_DATA_LO, i);
            w(&mut d, AB_GPC, i % 6);
        }
        w(&mut d, AB_COUNT, 20);
        w(&mut d, AB_CTRL, 1);
        assert_eq!(r(&mut d, AB_CTRL), 20, "all waiting");
        assert_eq!(r(&mut d, AB_FAULTS_TOTAL), 20);
        assert_eq!(r(&mut d, AB_DROPPED), 5, "16 entries hold 15");
        assert_eq!(d.bar0_read32(fault::ring::regs::PUT), 15);
        assert_eq!(d.bar0_read32(fault::ring::regs::INFO) & 1, 1, "OVERFLOW");
        assert_eq!(r(&mut d, AB_BUFFER_INFO) & 1, 1);
        // Map every page of both channels, drain, replay: the dropped five fault no more.
        for (k, s) in spaces.iter_mut().enumerate() {
            for p in 0..10u64 {
                let pa = 0x80_0000 + (k as u64 * 10 + p) * 0x1000;
                s.map(
                    &mut d.phys,
                    0x40_0000 + p * 0x1000,
                    Pte::pfn_system(pa, true, false),
                );
            }
        }
        d.bar0_write32(fault::ring::regs::GET, 15);
        d.bar0_write32(fault::ring::regs::INFO, 1);
        assert_eq!(d.bar0_read32(fault::ring::regs::INFO), 0, "acknowledged");
        d.bar0_write32(0x100cbc, 0x8000_000b);
        assert_eq!(r(&mut d, AB_CTRL), 0);
        assert_eq!(r(&mut d, AB_DONE), 20);
        assert_eq!(d.bar0_read32(fault::ring::regs::PUT), 15, "no new faults");
        w(&mut d, AB_INDEX, 3); // a write of channel 4 at page 3
        assert_eq!(r(&mut d, AB_REPLAYS), 1);
        let mut b = [0u8; 4];
        d.phys.sys_read(0x80_0000 + 13 * 0x1000, &mut b).unwrap();
        assert_eq!(u32::from_le_bytes(b), 3);
        // A second batch on unmapped pages, cancelled for GPC 2 only.
        for i in 0..6u32 {
            w(&mut d, AB_INDEX, i);
            w(&mut d, AB_VA_LO, 0x70_0000 + i * 0x1000);
            w(&mut d, AB_GPC, i % 3);
        }
        w(&mut d, AB_COUNT, 6);
        w(&mut d, AB_CTRL, 1);
        assert_eq!(r(&mut d, AB_CTRL), 6);
        d.bar0_write32(
            0x100cbc,
            0x8000_001b | 2 << 15 | u32::from(access::FAULT_CLIENT) << 9,
        );
        assert_eq!(r(&mut d, AB_CTRL), 4, "slots 2 and 5 cancelled");
        assert_eq!(r(&mut d, AB_ERRORS), 2);
        w(&mut d, AB_INDEX, 5);
        assert_eq!(r(&mut d, AB_STATUS) & 3, 3);
        w(&mut d, AB_INDEX, 4);
        assert_eq!(r(&mut d, AB_STATUS) & 3, 2);
    }

    /// The SVM loop as nouveau drives it, register by register: an access faults, the entry
    /// lands in the BAR2-mapped buffer with PMC bit 9, the driver maps the page (a PFN PTE),
    /// flushes, consumes the entry (GET) and replays; the access completes against guest RAM,
    /// and the checker judged the PTE at the flush and the translation at its use.
    #[test]
    fn svm_fault_service_replay_and_check_through_registers() {
        use crate::engine::testutil::Space;
        use crate::mmu::format::Pte;
        use crate::regs::window::*;
        use vm_memory::{GuestAddress, GuestMemoryMmap};
        let mut d = Device::new();
        let ram = GuestMemoryMmap::<()>::from_ranges(&[(GuestAddress(0), 16 << 20)]).unwrap();
        d.set_sysmem(Box::new(ram));
        bind_bar2(&mut d); // BAR2 VA 0x1000 -> VRAM 0x50000: the fault buffer
        d.bar0_write32(fault::ring::regs::ADDR_LO, 0x1000 | 1);
        d.bar0_write32(0x160, INTR_FAULT);
        // The SVM channel: instance block with a replayable (bits 4/5) VER2 PDB.
        let mut s = Space::new(0x100_0000);
        let inst = 0x90_0000u64;
        d.vram_write(inst + 0x200, &(s.pdb.addr | 1 << 10 | 0x30).to_le_bytes())
            .unwrap();
        d.bar0_write32(0x800000 + 8 * 3, 0x8000_0000 | (inst >> 12) as u32);
        // The process: CPU page tables in guest RAM mapping VA 0x40_0000 -> 0x80_0000.
        let put = |d: &mut Device, a: u64, v: u64| d.phys.sys_write(a, &v.to_le_bytes()).unwrap();
        put(&mut d, 0x1000, 0x2000 | 7);
        put(&mut d, 0x2000, 0x3000 | 7);
        put(&mut d, 0x3000 + 2 * 8, 0x4000 | 7);
        put(&mut d, 0x4000, 0x80_0000 | 7);
        put(&mut d, 0x80_0010, 0x1234_5678);
        // Arm the checker for channel 3 and the process's root.
        let w = |d: &mut Device, r: u32, v: u32| d.bar0_write32(WINDOW_BASE + r, v);
        w(&mut d, CHK_CHID, 3);
        w(&mut d, CHK_ROOT_LO, 0x1000);
        w(&mut d, CHK_CTRL, 1);
        assert_eq!(d.bar0_read32(WINDOW_BASE + CHK_CTRL), 1);
        // The GPU reads 4 bytes at VA 0x40_0010.
        d.set_event_log(true);
        w(&mut d, AE_CHID, 3);
        w(&mut d, AE_VA_LO, 0x40_0010);
        w(&mut d, AE_LEN, 4);
        w(&mut d, AE_OP, 1);
        assert_eq!(d.bar0_read32(WINDOW_BASE + AE_STATUS) & 3, 2, "waiting");
        assert!(d.irq_asserted(), "PMC bit 9");
        assert_eq!(d.bar0_read32(fault::ring::regs::PUT), 1);
        // nouveau reads the entry through BAR3 (the buffer's BAR2 VA).
        let mut e = [0u8; 8];
        d.bar_read(3, 0x1000, &mut e).unwrap();
        assert_eq!(u64::from_le_bytes(e), inst, "inst lo/hi: VRAM, aperture 0");
        d.bar_read(3, 0x1008, &mut e).unwrap();
        assert_eq!(u64::from_le_bytes(e), 0x40_0000, "the page");
        // Service: PFNMAP writes the PTE, flush (PAGE_ALL for this PDB), GET, REPLAY.
        s.map(
            &mut d.phys,
            0x40_0000,
            Pte::pfn_system(0x80_0000, true, false),
        );
        d.bar0_write32(0x100cb8, ((s.pdb.addr >> 12) << 4) as u32);
        d.bar0_write32(0x100cec, 0);
        d.bar0_write32(0x100cbc, 0x8000_0001);
        d.bar0_write32(fault::ring::regs::GET, 1);
        assert!(!d.irq_asserted());
        d.bar0_write32(0x100cbc, 0x8000_000b);
        assert_eq!(d.bar0_read32(WINDOW_BASE + AE_STATUS) & 3, 1, "done");
        assert_eq!(d.bar0_read32(WINDOW_BASE + AE_DATA_LO), 0x1234_5678);
        assert_eq!(d.bar0_read32(WINDOW_BASE + AE_REPLAYS), 1);
        assert_eq!(d.bar0_read32(WINDOW_BASE + CHK_VIOLATIONS), 0);
        assert!(
            d.bar0_read32(WINDOW_BASE + CHK_CHECKED) >= 2,
            "at the flush and the use"
        );
        let ev = d.take_events();
        assert!(ev
            .iter()
            .any(|e| matches!(e, ModelEvent::PteWrite { va: 0x40_0000, .. })));
        assert!(ev.contains(&ModelEvent::Replay));
        // munmap without nouveau clearing the PTE (no flush): the next GPU use is caught.
        put(&mut d, 0x4000, 0);
        w(&mut d, AE_OP, 1);
        assert_eq!(d.bar0_read32(WINDOW_BASE + CHK_VIOLATIONS), 1);
        assert_eq!(d.bar0_read32(WINDOW_BASE + CHK_LAST_VA_LO), 0x40_0000);
        assert_eq!(d.bar0_read32(WINDOW_BASE + CHK_LAST_REASON), 1 | 1 << 8);
        assert_eq!(
            d.bar0_read32(WINDOW_BASE + CHK_LAST_INST),
            (inst >> 12) as u32
        );
        // A targeted cancel at our GPC client ends a waiting access.
        w(&mut d, AE_VA_LO, 0x60_0000);
        w(&mut d, AE_OP, 1);
        assert_eq!(d.bar0_read32(WINDOW_BASE + AE_STATUS) & 3, 2);
        d.bar0_write32(0x100cbc, 0x8000_001b | 1 << 9);
        assert_eq!(d.bar0_read32(WINDOW_BASE + AE_STATUS) & 3, 3);
        assert!(d.unknown_offsets().next().is_none());
    }
}

#[cfg(test)]
mod poll_tests {
    use super::*;

    /// nouveau's FECS mailbox poll against a halted falcon: PTIMER hi, lo, hi and the mailbox,
    /// over and over. The idle-poll charge lets its 2 s timeout elapse in a few thousand reads.
    #[test]
    fn a_poll_on_a_halted_falcon_times_out_in_bounded_reads() {
        let mut d = Device::new();
        d.bar0_write32(0x409804, 0xffff_ffff);
        let t0 = d.gpu_cycles();
        let mut n = 0;
        while d.gpu_cycles() - t0 < 2 * 1126 * 1_000_000 && n < 100_000 {
            for o in [0x9410, 0x9400, 0x9410, 0x409804] {
                d.bar0_read32(o);
            }
            n += 1;
        }
        assert!(n < 5000, "{n} loop iterations for 2 s of GPU time");
    }

    /// Two channels with their own page directories: one registered (with a pid and an exit
    /// watch), one not. A use through the unregistered one is an Unowned finding; the
    /// registered process's exit (the module's CHK_MM_EXIT) makes its still-valid PTE a
    /// stale-after-exit finding, and once its channel is unbound the space is no longer
    /// scanned.
    #[test]
    fn spaces_per_channel_unowned_uses_and_process_exit_through_registers() {
        use crate::check::Reason;
        use crate::engine::testutil::Space;
        use crate::mmu::format::Pte;
        use crate::regs::window::*;
        use vm_memory::{GuestAddress, GuestMemoryMmap};
        let mut d = Device::new();
        let ram = GuestMemoryMmap::<()>::from_ranges(&[(GuestAddress(0), 16 << 20)]).unwrap();
        d.set_sysmem(Box::new(ram));
        let put = |d: &mut Device, a: u64, v: u64| d.phys.sys_write(a, &v.to_le_bytes()).unwrap();
        put(&mut d, 0x1000, 0x2000 | 7);
        put(&mut d, 0x2000, 0x3000 | 7);
        put(&mut d, 0x3000 + 2 * 8, 0x4000 | 7);
        put(&mut d, 0x4000, 0x80_0000 | 7);
        // Channel 3 (instance 0x90_0000) and channel 4 (0x91_0000), each its own space, both
        // mapping VA 0x40_0000 -> 0x80_0000.
        let mut spaces = Vec::new();
        for (chid, inst, tables) in [
            (3u64, 0x90_0000u64, 0x100_0000u64),
            (4, 0x91_0000, 0x180_0000),
        ] {
            let mut s = Space::new(tables);
            s.map(
                &mut d.phys,
                0x40_0000,
                Pte::pfn_system(0x80_0000, true, false),
            );
            d.vram_write(inst + 0x200, &(s.pdb.addr | 1 << 10 | 0x30).to_le_bytes())
                .unwrap();
            d.bar0_write32(
                0x800000 + 8 * chid as u32,
                0x8000_0000 | (inst >> 12) as u32,
            );
            spaces.push(s);
        }
        let w = |d: &mut Device, r: u32, v: u32| d.bar0_write32(WINDOW_BASE + r, v);
        let r = |d: &mut Device, reg: u32| d.bar0_read32(WINDOW_BASE + reg);
        w(&mut d, CHK_MM_WATCH, 0x1000 >> 12);
        w(&mut d, CHK_CHID, 3);
        w(&mut d, CHK_ROOT_LO, 0x1000);
        w(&mut d, CHK_PID, 77);
        w(&mut d, CHK_CTRL, 1);
        assert_eq!(r(&mut d, CHK_ERROR), 0);
        w(&mut d, CHK_SPACE_SEL, 3);
        assert_eq!(
            r(&mut d, CHK_SPACE_STATE),
            1 | 1 << 8 | 1 << 16,
            "live, watched, first"
        );
        assert_eq!(r(&mut d, CHK_SPACE_PID), 77);
        w(&mut d, CHK_SPACE_SEL, 4);
        assert_eq!(r(&mut d, CHK_SPACE_STATE), 0, "channel 4 is not registered");
        // GPU reads through both channels: channel 3's is judged (and fine), channel 4's is
        // nobody's.
        for chid in [3, 4] {
            w(&mut d, AE_CHID, chid);
            w(&mut d, AE_VA_LO, 0x40_0000);
            w(&mut d, AE_LEN, 4);
            w(&mut d, AE_OP, 1);
            assert_eq!(r(&mut d, AE_STATUS) & 3, 1, "done");
        }
        assert_eq!(r(&mut d, CHK_VIOLATIONS), 1);
        assert_eq!(r(&mut d, CHK_BY_REASON + 4 * Reason::Unowned as u32), 1);
        assert_eq!(r(&mut d, CHK_LAST_CHID), 4);
        assert_eq!(r(&mut d, CHK_LAST_PID), 0);
        assert_eq!(r(&mut d, CHK_LAST_REASON), Reason::Unowned as u32 | 1 << 8);
        w(&mut d, CHK_SPACE_SEL, 3);
        assert_eq!(r(&mut d, CHK_SPACE_VIOLATIONS), 0);
        // The process exits with its PTE still valid.
        w(&mut d, CHK_MM_EXIT, 0x1000 >> 12);
        assert_eq!(r(&mut d, CHK_STALE), 1);
        assert_eq!(r(&mut d, CHK_SPACE_STALE), 1);
        assert_eq!(r(&mut d, CHK_SPACE_STATE) & 3, 2, "exited");
        assert_eq!(
            r(&mut d, CHK_BY_REASON + 4 * Reason::StaleAfterExit as u32),
            1
        );
        assert_eq!(
            r(&mut d, CHK_VIOLATIONS),
            1,
            "stale findings are counted apart"
        );
        assert_eq!(
            r(&mut d, CHK_LAST_CHID),
            4,
            "and are not the last violation"
        );
        // Its channel is unbound (file close); the next flush retires the space.
        d.bar0_write32(0x800000 + 8 * 3, 0);
        d.bar0_write32(0x100cbc, 0x8000_0003);
        assert_eq!(r(&mut d, CHK_SPACE_STATE) & 3, 3, "retired");
        assert_eq!(r(&mut d, CHK_CTRL), 0, "nothing armed any more");
        assert_eq!(r(&mut d, CHK_SPACES), 1);
        w(&mut d, CHK_CTRL, 4);
        assert_eq!(r(&mut d, CHK_SPACES), 0);
    }
}
