//! The BAR0 bus: the one trait every register unit implements ([`Unit`]), and the context an
//! access hands it ([`Ctx`]): the device-wide state units share (memory, MMU, fault buffer,
//! host, BAR bindings, the GPU clock and the model-event log).
//!
//! The device's map (`device/map.rs`) routes each BAR0 offset to exactly one unit by the
//! ranges the unit declares, and resets the device by a loop over its units. A unit with no
//! need of the context implements the smaller [`Bar0Unit`] and is a [`Unit`] through the
//! blanket impl below, so its tests drive it without a device.
//!
//! PFIFO, the replayable fault buffer, the MMU's invalidate registers and the BAR blocks hold
//! state other units use too (the window reports faults through the fault buffer and resolves
//! channels through PFIFO), so that state is in the context and their map rows are the thin
//! units at the end of this file.

use std::collections::BTreeSet;
use std::ops::Range;

use crate::bar::{Aperture, Bars, Binding};
use crate::fault::{self, FaultEntry, FaultRing, FaultType};
use crate::fifo::{Fifo, BUDGET_PER_ACCESS};
use crate::hw::event::ModelEvent;
use crate::mem::{GpuMemory, MemError, PhysMem, Target};
use crate::mmu::tlb::ClientKind;
use crate::mmu::unit::{regs as mmu_regs, Mmu, Translation};
use crate::mmu::walk::{Access, Level};
use crate::pci::ConfigSpace;
use crate::timing::{Costs, GpuClock};

/// A unit of the BAR0 register file, accessed in aligned 32-bit words.
///
/// `offset` is the full BAR0 offset (units compare it against their own table). A unit
/// returns `None`/`false` for an offset inside its ranges that it does not decode; the device
/// then answers like hardware does for a missing register and logs the offset once.
pub trait Unit: std::fmt::Debug + Send {
    /// The unit's name as NVIDIA/nouveau call it (for logs and the map's overlap errors).
    fn name(&self) -> &'static str;
    /// The BAR0 offsets the map routes to this unit.
    fn ranges(&self) -> Vec<Range<u32>>;
    /// Reads the 32-bit register at `offset`.
    fn read32(&mut self, ctx: &mut Ctx, offset: u32) -> Option<u32>;
    /// Writes the 32-bit register at `offset`; `false` when not decoded.
    fn write32(&mut self, ctx: &mut Ctx, offset: u32, value: u32) -> bool;
    /// Puts every register back to its documented reset value (device reset, and a cleared
    /// [`Unit::pmc_enable_bit`]).
    fn reset(&mut self, ctx: &mut Ctx);
    /// The PMC_ENABLE bit that holds this unit in reset when cleared, if any.
    fn pmc_enable_bit(&self) -> Option<u32> {
        None
    }
}

/// A unit that needs nothing but its own registers (most of `regs/`); a [`Unit`] by the
/// blanket impl below.
pub trait Bar0Unit: std::fmt::Debug + Send {
    /// The unit's name as NVIDIA/nouveau call it (for logs).
    fn name(&self) -> &'static str;
    /// The BAR0 offsets it decodes.
    fn ranges(&self) -> Vec<Range<u32>>;
    /// Reads the 32-bit register at `offset`.
    fn read32(&mut self, offset: u32) -> Option<u32>;
    /// Writes the 32-bit register at `offset`; `false` when not decoded.
    fn write32(&mut self, offset: u32, value: u32) -> bool;
    /// Puts every register back to its documented reset value.
    fn reset(&mut self);
    /// See [`Unit::pmc_enable_bit`].
    fn pmc_enable_bit(&self) -> Option<u32> {
        None
    }
}

impl<T: Bar0Unit> Unit for T {
    fn name(&self) -> &'static str {
        Bar0Unit::name(self)
    }
    fn ranges(&self) -> Vec<Range<u32>> {
        Bar0Unit::ranges(self)
    }
    fn read32(&mut self, _: &mut Ctx, offset: u32) -> Option<u32> {
        Bar0Unit::read32(self, offset)
    }
    fn write32(&mut self, _: &mut Ctx, offset: u32, value: u32) -> bool {
        Bar0Unit::write32(self, offset, value)
    }
    fn reset(&mut self, _: &mut Ctx) {
        Bar0Unit::reset(self)
    }
    fn pmc_enable_bit(&self) -> Option<u32> {
        Bar0Unit::pmc_enable_bit(self)
    }
}

/// Most model events held between two drains (a guest cannot grow it without bound); past
/// it events are counted and the drain ends with [`ModelEvent::EventsDropped`]. As large as
/// the DMA log's bound, since one input's DMA events all pass through here.
pub(crate) const MAX_PENDING_EVENTS: usize = crate::mem::phys::MAX_DMA_EVENTS + 4096;

/// TLB clients of the BAR apertures: HUB clients named after their MMU engine ids
/// (gp100 `dev_fault.h`: NV_PFAULT_MMU_ENG_ID_BAR1 4, BAR2 5).
const CLIENT_BAR1: ClientKind = ClientKind::Hub(4);
const CLIENT_BAR2: ClientKind = ClientKind::Hub(5);

/// The ceiling on distinct unknown offsets remembered for "logged once" (bounds
/// the memory a hostile guest can make us spend on the log).
const UNKNOWN_LOG_LIMIT: usize = 4096;

/// Why an aperture (BAR1, BAR3, or BAR2 as the fault buffer's writer sees it) cannot reach
/// memory at an offset.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum ApertureError {
    /// A physical binding whose base plus offset overflows.
    #[error("physical window address overflows")]
    Overflow,
    /// The BAR block register does not describe a usable binding.
    #[error("{0}")]
    Broken(&'static str),
    /// Past the bound address space's limit.
    #[error("beyond the address space's limit {0:#x}")]
    BeyondLimit(u64),
    /// The page tables do not map the offset.
    #[error("MMU fault {fault_type:?} at level {level:?}")]
    Mmu {
        /// The fault type the walk found.
        fault_type: FaultType,
        /// Where.
        level: Level,
    },
    /// The translation reached no memory.
    #[error(transparent)]
    Mem(#[from] MemError),
}

/// The device-wide state a unit's access may use (see the module doc).
#[derive(Debug)]
pub struct Ctx {
    /// PCI configuration space (the BAR0 mirror at 0x088000 shows it).
    pub config: ConfigSpace,
    /// Video memory and guest RAM.
    pub phys: PhysMem,
    /// The MMU (TLBs, invalidates).
    pub mmu: Mmu,
    /// The replayable fault buffer.
    pub fault: FaultRing,
    /// PBUS BAR bindings.
    pub bars: Bars,
    /// The host.
    pub fifo: Fifo,
    /// The GPU clock.
    pub clock: GpuClock,
    /// The cycle model's costs.
    pub costs: Costs,
    /// Distinct BAR0 offsets the guest touched that no unit decodes.
    pub unknown_seen: BTreeSet<u32>,
    /// GPFIFO entries the host has executed.
    pub host_gp_entries: u64,
    /// Runlist submissions the host accepted.
    pub runlists_submitted: u64,
    /// The interrupt level PMC drives, as of this access (config space's status bit).
    pub irq: bool,
    events: Vec<ModelEvent>,
    events_dropped: u64,
    log_events: bool,
}

impl Ctx {
    /// The shared state of a device in its power-on reset state.
    pub fn new(
        config: ConfigSpace,
        phys: PhysMem,
        mmu: Mmu,
        fault: FaultRing,
        costs: Costs,
    ) -> Self {
        Ctx {
            config,
            phys,
            mmu,
            fault,
            bars: Bars::new(),
            fifo: Fifo::new(),
            clock: GpuClock::new(),
            costs,
            unknown_seen: BTreeSet::new(),
            host_gp_entries: 0,
            runlists_submitted: 0,
            irq: false,
            events: Vec::new(),
            events_dropped: 0,
            log_events: false,
        }
    }

    /// A context for unit tests: a small video memory, default MMU and fault buffer.
    #[cfg(test)]
    pub fn for_tests() -> Self {
        use crate::mmu::tlb::TlbConfig;
        Ctx::new(
            ConfigSpace::new(crate::pci::BarLayout::default()),
            PhysMem::new(16 << 20),
            Mmu::new(TlbConfig::default(), crate::timing::P100),
            FaultRing::new(16),
            crate::timing::P100,
        )
    }

    /// Turns the model-event log (DMA included) on or off.
    pub fn set_event_log(&mut self, on: bool) {
        self.log_events = on;
        self.phys.set_log(on);
        self.mmu.set_walk_log(on);
        if !on {
            self.events.clear();
            self.events_dropped = 0;
        }
    }

    /// Whether [`Ctx::take_events`] has anything to return.
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

    /// Records a model event (after what memory and the MMU logged before it).
    pub fn log(&mut self, e: ModelEvent) {
        if self.log_events {
            self.flush_unit_logs();
            self.keep(e);
        }
    }

    /// Remembers (and logs once) a BAR0 offset no unit decodes.
    pub fn note_unknown(&mut self, offset: u32, what: &str) {
        if self.unknown_seen.len() < UNKNOWN_LOG_LIMIT && self.unknown_seen.insert(offset) {
            log::warn!("BAR0 {what} of undecoded register {offset:#08x} (logged once per offset)");
        }
    }

    /// Where an aperture offset lands: Some((memory, address)), None for a sparse page, or
    /// the reason it faults.
    pub fn aperture_translate(
        &mut self,
        ap: Aperture,
        offset: u64,
        access: Access,
    ) -> Result<Option<(Target, u64)>, ApertureError> {
        match self.bars.binding(ap) {
            Binding::Physical { target, base } => base
                .checked_add(offset)
                .map(|a| Some((target, a)))
                .ok_or(ApertureError::Overflow),
            Binding::Broken { why } => Err(ApertureError::Broken(why)),
            Binding::Virtual { pdb, limit, .. } => {
                if offset > limit {
                    return Err(ApertureError::BeyondLimit(limit));
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
                    Err(f) => Err(ApertureError::Mmu {
                        fault_type: f.fault_type,
                        level: f.level,
                    }),
                }
            }
        }
    }

    /// A GPU client reports a replayable fault: the entry is stamped with the GPU clock and
    /// written at PUT through the BAR2 translation of the buffer address (what nouveau
    /// programs into the buffer's registers), or counted as an overflow. The caller updates
    /// the interrupt lines.
    pub fn report_fault(&mut self, mut e: FaultEntry) -> fault::Report {
        e.timestamp = self.clock.now();
        let mut ring = std::mem::replace(&mut self.fault, FaultRing::new(2));
        let r = ring.report(
            |va, bytes| match self.aperture_translate(Aperture::Bar2, va, Access::Write) {
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
        r
    }

    /// Moves PFIFO's events into the log, counting accepted runlists.
    pub fn drain_fifo_events(&mut self) {
        for e in self.fifo.take_events() {
            if matches!(e, ModelEvent::RunlistSubmitted { .. }) {
                self.runlists_submitted += 1;
            }
            self.log(e);
        }
    }

    /// Gives the host a bounded budget of work if something may have kicked a channel,
    /// and accounts for what it did. `now_ns` is PTIMER's time (semaphore stamps).
    pub fn run_host(&mut self, now_ns: u64) {
        if !self.fifo.wants_run() {
            return;
        }
        let mut hw = crate::engine::Hw {
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
}

/// PMC_ENABLE bit of PFIFO (gp100 `dev_pmc.h` NV_PMC_ENABLE_PFIFO 8:8).
pub const ENABLE_PFIFO: u32 = 8;

/// PFIFO's registers (state in [`Ctx::fifo`]); its range holds the fault buffer's, which
/// [`FaultRegs`] takes.
#[derive(Debug, Default)]
pub struct FifoRegs;

impl Unit for FifoRegs {
    fn name(&self) -> &'static str {
        "PFIFO"
    }
    fn ranges(&self) -> Vec<Range<u32>> {
        let fault = FaultRegs.ranges()[0].clone();
        let mut r = vec![0x002000..fault.start, fault.end..0x004000];
        r.extend(Fifo::ranges().into_iter().skip(1));
        r
    }
    fn read32(&mut self, ctx: &mut Ctx, offset: u32) -> Option<u32> {
        ctx.fifo.read32(offset)
    }
    fn write32(&mut self, ctx: &mut Ctx, offset: u32, value: u32) -> bool {
        ctx.fifo.write32(offset, value, &ctx.phys)
    }
    fn reset(&mut self, ctx: &mut Ctx) {
        ctx.fifo.reset();
    }
    fn pmc_enable_bit(&self) -> Option<u32> {
        Some(ENABLE_PFIFO)
    }
}

/// The replayable fault buffer's registers (state in [`Ctx::fault`]).
#[derive(Debug, Default)]
pub struct FaultRegs;

impl Unit for FaultRegs {
    fn name(&self) -> &'static str {
        "FAULT"
    }
    fn ranges(&self) -> Vec<Range<u32>> {
        use fault::ring::regs::{ADDR_LO, INFO};
        block(ADDR_LO, INFO + 4 - ADDR_LO)
    }
    fn read32(&mut self, ctx: &mut Ctx, offset: u32) -> Option<u32> {
        ctx.fault.read32(offset)
    }
    fn write32(&mut self, ctx: &mut Ctx, offset: u32, value: u32) -> bool {
        ctx.fault.write32(offset, value)
    }
    fn reset(&mut self, ctx: &mut Ctx) {
        ctx.fault.reset();
    }
}

/// The MMU's invalidate registers (state in [`Ctx::mmu`]).
#[derive(Debug, Default)]
pub struct MmuRegs;

impl Unit for MmuRegs {
    fn name(&self) -> &'static str {
        "MMU"
    }
    fn ranges(&self) -> Vec<Range<u32>> {
        [
            mmu_regs::STATUS,
            mmu_regs::PDB_LO,
            mmu_regs::TRIGGER,
            mmu_regs::PDB_HI,
        ]
        .iter()
        .map(|&o| o..o + 4)
        .collect()
    }
    fn read32(&mut self, ctx: &mut Ctx, offset: u32) -> Option<u32> {
        ctx.mmu.read32(offset)
    }
    fn write32(&mut self, ctx: &mut Ctx, offset: u32, value: u32) -> bool {
        ctx.mmu.write32(offset, value)
    }
    fn reset(&mut self, ctx: &mut Ctx) {
        ctx.mmu.reset();
    }
}

/// PBUS's BAR block registers (state in [`Ctx::bars`]).
#[derive(Debug, Default)]
pub struct BarRegs;

impl Unit for BarRegs {
    fn name(&self) -> &'static str {
        "PBUS_BAR"
    }
    fn ranges(&self) -> Vec<Range<u32>> {
        Bars::ranges()
    }
    fn read32(&mut self, ctx: &mut Ctx, offset: u32) -> Option<u32> {
        ctx.bars.read32(offset)
    }
    fn write32(&mut self, ctx: &mut Ctx, offset: u32, value: u32) -> bool {
        ctx.bars.write32(offset, value, &ctx.phys)
    }
    fn reset(&mut self, ctx: &mut Ctx) {
        ctx.bars.reset();
    }
}

/// The range of one block of `size` bytes at `start`, for [`Unit::ranges`].
pub fn block(start: u32, size: u32) -> Vec<Range<u32>> {
    std::iter::once(start..start + size).collect()
}

/// The 4-byte ranges of single registers (adjacent ones merged), for [`Unit::ranges`].
pub fn words(offsets: impl IntoIterator<Item = u32>) -> Vec<Range<u32>> {
    let mut v: Vec<u32> = offsets.into_iter().collect();
    v.sort_unstable();
    v.dedup();
    let mut out: Vec<Range<u32>> = Vec::new();
    for o in v {
        match out.last_mut() {
            Some(r) if r.end == o => r.end = o + 4,
            _ => out.push(o..o + 4),
        }
    }
    out
}
