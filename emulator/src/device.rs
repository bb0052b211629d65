//! The GP100 as a transport sees it: BAR0 routed to the register-file units, the BAR1 and
//! BAR3 apertures translated through their bound address spaces, the interrupt condition,
//! and device reset.
//!
//! Transports (vfio-user in `qemu-glue`) and trace replay call only these entry points, so
//! what a trace records is exactly what drives the model. Guest RAM is reached through the
//! [`SysMem`] the transport installs ([`Device::set_sysmem`]); every DMA is logged for traces.

pub mod map;

use crate::access::AccessEngine;
use crate::bar::{Aperture, Bars};
use crate::bus::{ApertureError, Ctx};
use crate::check::{Checker, Inject};
use crate::fault::{self, FaultEntry, FaultRing};
use crate::fifo::Fifo;
use crate::hw::event::ModelEvent;
use crate::mem::{GpuMemory, PhysMem, SysMem, VidMem};
use crate::mmu::tlb::TlbConfig;
use crate::mmu::unit::Mmu;
use crate::mmu::walk::Access;
use crate::pci::{BarLayout, ConfigSpace};
use crate::regs::ptimer::{INTR_PTIMER, PTIMER_TIME_0};
use crate::regs::PRI_ERROR_NO_UNIT;
use crate::timing::{Costs, PollDetector, TimerWait, P100};
use map::{Map, Units};

pub(crate) use crate::bus::MAX_PENDING_EVENTS;
pub use crate::mem::DEFAULT_VRAM;
pub use crate::regs::pci_mirror::{PCI_MIRROR, PCI_MIRROR_SIZE, PCI_MSI_REARM};

/// Size of BAR0 (the register file): 16 MiB on every NVIDIA GPU since NV50.
pub const BAR0_SIZE: u64 = 16 << 20;

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
/// PMC_INTR_0 line of PFIFO (`gp100_mc_intrs`: 0x00000100); its PMC_ENABLE bit is
/// [`crate::bus::ENABLE_PFIFO`].
pub const INTR_FIFO: u32 = 0x0000_0100;

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
    ApertureFault {
        bar: u32,
        offset: u64,
        why: ApertureError,
    },
    /// An access to a BAR index this function does not have.
    #[error("the function has no BAR{0}")]
    NoSuchBar(u32),
}

/// The emulated GP100.
#[derive(Debug)]
pub struct Device {
    /// The register-file units.
    units: Units,
    /// The BAR0 map over them.
    map: Map,
    /// The state units share (memory, MMU, fault buffer, host, clock, event log).
    ctx: Ctx,
    poll: PollDetector,
    timer_wait: TimerWait,
    /// Cycles the clock advanced by register accesses and idle charges alone; the rest of
    /// it is device work (what [`TimerWait`] watches for).
    access_cycles: u64,
}

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
        let units = Units::new();
        // The map's ranges are constants of the units; the_bar0_map_is_sorted_and_disjoint
        // proves this never fails.
        let map = Map::new(&units).expect("BAR0 map without overlaps");
        Device {
            units,
            map,
            ctx: Ctx::new(
                ConfigSpace::new(layout),
                PhysMem::new(DEFAULT_VRAM),
                Mmu::new(TlbConfig::default(), P100),
                FaultRing::new(FAULT_BUFFER_ENTRIES),
                P100,
            ),
            poll: PollDetector::default(),
            timer_wait: TimerWait::default(),
            access_cycles: 0,
        }
    }

    /// Replaces the guest RAM the device reaches by DMA (the transport calls this whenever
    /// QEMU's DMA map changes; replay installs the recorded reads).
    pub fn set_sysmem(&mut self, sys: Box<dyn SysMem + Send>) {
        self.ctx.phys.set_sys(sys);
    }

    /// Turns the model-event log (DMA included) on or off (tracing turns it on).
    pub fn set_event_log(&mut self, on: bool) {
        self.ctx.set_event_log(on);
    }

    /// Whether logged DMA writes carry their bytes, not only a CRC (`--trace-data`).
    pub fn set_dma_write_data(&mut self, on: bool) {
        self.ctx.phys.set_log_write_data(on);
    }

    /// Whether [`Device::take_events`] has anything to return.
    pub fn has_events(&self) -> bool {
        self.ctx.has_events()
    }

    /// The model events since the last call, in the order they happened.
    pub fn take_events(&mut self) -> Vec<ModelEvent> {
        self.ctx.take_events()
    }

    /// Device (function-level) reset: every unit back to its reset state (a loop over the
    /// BAR0 map's units). Video memory keeps its contents and the GPU clock keeps running.
    pub fn reset(&mut self) {
        self.ctx.config.reset();
        for i in 0..self.units.len() {
            self.units.get(i).reset(&mut self.ctx);
        }
    }

    /// Sets the replayable fault buffer's entry count (what SIZE reads), before the driver
    /// loads: a small buffer makes overflows reachable. Err(entries) outside
    /// [`MIN_FAULT_BUFFER_ENTRIES`]..=[`MAX_FAULT_BUFFER_ENTRIES`].
    pub fn set_fault_buffer_entries(&mut self, entries: u32) -> Result<(), u32> {
        if !(MIN_FAULT_BUFFER_ENTRIES..=MAX_FAULT_BUFFER_ENTRIES).contains(&entries) {
            return Err(entries);
        }
        self.ctx.fault = FaultRing::new(entries);
        Ok(())
    }

    /// Replaces the cycle-model profile and the TLB geometry (before the driver loads and
    /// before [`Device::set_event_log`]: the MMU starts afresh, TLBs empty).
    pub fn set_timing(&mut self, costs: Costs, tlb: TlbConfig) {
        self.ctx.costs = costs;
        self.ctx.mmu = Mmu::new(tlb, costs);
    }

    /// Makes the device inject a seeded bug into the PTEs nouveau writes (see
    /// [`crate::check::Inject`]); the PTE checker must then report violations.
    pub fn set_inject(&mut self, inject: Inject) {
        self.units.window.set_inject(inject);
    }

    /// The PTE checker.
    pub fn checker(&self) -> &Checker {
        &self.units.window.checker
    }

    /// The access engine.
    pub fn access_engine(&self) -> &AccessEngine {
        &self.units.window.access
    }

    /// The MMU (TLBs, invalidate registers, counters).
    pub fn mmu(&self) -> &Mmu {
        &self.ctx.mmu
    }

    /// The replayable fault buffer.
    pub fn fault_ring(&self) -> &FaultRing {
        &self.ctx.fault
    }

    /// Video memory.
    pub fn vram(&self) -> &VidMem {
        &self.ctx.phys.vid
    }

    /// The BAR bindings.
    pub fn bars(&self) -> &Bars {
        &self.ctx.bars
    }

    /// The host (channels, runlists).
    pub fn fifo(&self) -> &Fifo {
        &self.ctx.fifo
    }

    /// The BAR0 map (its rows, for tools and tests).
    pub fn bar0_map(&self) -> &Map {
        &self.map
    }

    /// Writes `data` to video memory directly (tests and tools; not a guest path).
    pub fn vram_write(&mut self, addr: u64, data: &[u8]) -> Result<(), crate::mem::MemError> {
        self.ctx.phys.vid.write(addr, data)
    }

    /// A GPU client reports a replayable fault: the entry is stamped with the GPU clock and
    /// written at PUT through the BAR2 translation of the buffer address (or counted as an
    /// overflow), and the interrupt follows.
    pub fn report_fault(&mut self, e: FaultEntry) -> fault::Report {
        let r = self.ctx.report_fault(e);
        self.update_interrupts();
        r
    }

    /// Interrupt lines follow the units' conditions after every access.
    fn update_interrupts(&mut self) {
        let ptimer = &mut self.units.ptimer;
        ptimer.tick(self.ctx.clock.nanoseconds());
        let mut lines = 0;
        if self.ctx.fault.pending() {
            lines |= INTR_FAULT;
        }
        if ptimer.pending() {
            lines |= INTR_PTIMER;
        }
        if self.ctx.fifo.pending() {
            lines |= INTR_FIFO;
        }
        self.units.pmc.set_pending(lines);
    }

    /// The distinct BAR0 offsets the guest touched that no unit decodes.
    pub fn unknown_offsets(&self) -> impl Iterator<Item = u32> + '_ {
        self.ctx.unknown_seen.iter().copied()
    }

    /// The level of the function's interrupt (INTx asserted / MSI to be sent).
    pub fn irq_asserted(&self) -> bool {
        self.units.pmc.irq_asserted()
    }

    /// The BAR sizes the function advertises.
    pub fn bar_layout(&self) -> BarLayout {
        self.ctx.config.layout()
    }

    /// Reads config space. Accesses past the 256 bytes read zero.
    pub fn config_read(&self, offset: u64, data: &mut [u8]) {
        self.ctx.config.read(offset, data, self.irq_asserted());
    }

    /// Writes config space (write masks, RW1C status bits).
    pub fn config_write(&mut self, offset: u64, data: &[u8]) {
        self.ctx.config.write(offset, data);
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

    fn aperture_access(
        &mut self,
        ap: Aperture,
        bar: u32,
        offset: u64,
        mut buf: Buf<'_>,
    ) -> Result<(), DeviceError> {
        let len = buf.len();
        if let Err(e) = Self::check(bar, self.ctx.config.layout().size_of(bar), offset, len) {
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
            match self.ctx.aperture_translate(ap, va, access) {
                Ok(Some((t, pa))) => {
                    let phys = &mut self.ctx.phys;
                    let r = match &mut buf {
                        Buf::Read(d) => phys.read_bytes(t, pa, &mut d[start..start + n]),
                        Buf::Write(d) => phys.write_bytes(t, pa, &d[start..start + n]),
                    };
                    if let Err(e) = r {
                        buf.fill_range(start, n, 0);
                        result = Err(DeviceError::ApertureFault {
                            bar,
                            offset: va,
                            why: e.into(),
                        });
                    }
                }
                Ok(None) => buf.fill_range(start, n, 0),
                Err(why) => {
                    buf.fill_range(start, n, 0);
                    self.ctx.log(ModelEvent::ApertureFault {
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
        let c = self.ctx.costs.pri_access + self.ctx.mmu.take_cost();
        self.ctx.clock.advance(c);
        self.access_cycles = self.access_cycles.saturating_add(self.ctx.costs.pri_access);
        if matches!(buf, Buf::Write(_)) {
            // The host watches USERD: a write may have been a GP_PUT.
            self.ctx.fifo.kick();
            self.poll.write();
        }
        self.run_host();
        self.update_interrupts();
        result
    }

    /// The model's GPU clock: cycles since the device was created. Deterministic: it
    /// advances only by the cycle model's cost of what the device does (`timing::Costs`:
    /// a PRI access per BAR0 register access, plus what the access set off, such as a TLB
    /// invalidate), never by host time, and a reset does not rewind it. Trace stamps are
    /// taken from it.
    pub fn gpu_cycles(&self) -> u64 {
        self.ctx.clock.now()
    }

    fn after_register_access(&mut self) {
        for inv in self.ctx.mmu.take_processed() {
            self.ctx.log(ModelEvent::Invalidate {
                word: inv.word,
                pdb: inv.pdb,
                dropped: inv.dropped,
            });
            self.units
                .window
                .after_invalidate(&mut self.ctx, inv.word, inv.pdb);
        }
        let c = self.ctx.costs.pri_access + self.ctx.mmu.take_cost();
        self.ctx.clock.advance(c);
        self.access_cycles = self.access_cycles.saturating_add(self.ctx.costs.pri_access);
        for bit in BitIter(self.units.pmc.take_resets()) {
            self.reset_unit(bit);
        }
        self.ctx.drain_fifo_events();
        self.run_host();
        self.update_interrupts();
    }

    /// The units whose PMC_ENABLE bit was cleared go back to their reset state.
    fn reset_unit(&mut self, bit: u32) {
        for i in 0..self.units.len() {
            let u = self.units.get(i);
            if u.pmc_enable_bit() == Some(bit) {
                u.reset(&mut self.ctx);
            }
        }
    }

    /// Gives the host a bounded budget of work if something may have kicked a channel.
    fn run_host(&mut self) {
        if !self.ctx.fifo.wants_run() {
            return;
        }
        let now_ns = self.units.ptimer.time_ns(self.ctx.clock.nanoseconds());
        self.ctx.run_host(now_ns);
    }

    /// Reads a 32-bit register at a 4-byte-aligned BAR0 offset.
    pub fn bar0_read32(&mut self, offset: u32) -> u32 {
        self.ctx.irq = self.units.pmc.irq_asserted();
        let value = match self.map.find(offset) {
            Some(i) => self.units.get(i).read32(&mut self.ctx, offset),
            None => None,
        };
        let v = value.unwrap_or_else(|| {
            self.ctx.note_unknown(offset, "read");
            PRI_ERROR_NO_UNIT
        });
        let mut idle = 0;
        if !crate::regs::services_interrupts(offset) {
            idle = self.poll.read(offset, &self.ctx.costs);
        }
        if offset == PTIMER_TIME_0 {
            let work = self.ctx.clock.now().saturating_sub(self.access_cycles);
            idle = idle.max(self.timer_wait.read(work, &self.ctx.costs));
        }
        self.ctx.clock.advance(idle);
        self.access_cycles = self.access_cycles.saturating_add(idle);
        self.after_register_access();
        v
    }

    /// Writes a 32-bit register at a 4-byte-aligned BAR0 offset.
    pub fn bar0_write32(&mut self, offset: u32, value: u32) {
        self.ctx.irq = self.units.pmc.irq_asserted();
        let decoded = match self.map.find(offset) {
            Some(i) => self.units.get(i).write32(&mut self.ctx, offset, value),
            None => false,
        };
        if !decoded {
            self.ctx.note_unknown(offset, "write");
        }
        if !crate::regs::services_interrupts(offset) {
            self.poll.write();
        }
        self.after_register_access();
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
    use crate::access;
    use crate::regs::pramin::BAR0_WINDOW;
    use crate::window::{WINDOW_BASE, WINDOW_SCRATCH0};

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
        use crate::window::*;
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

    /// Through the BAR0 map: every write to the window counts in WRITES, the access
    /// engine's and the checker's registers included (the device used to catch those before
    /// the window saw them).
    #[test]
    fn window_writes_counts_writes_routed_through_bar0() {
        use crate::window::*;
        let mut d = Device::new();
        let writes = [
            WINDOW_SCRATCH0,
            AE_CHID,
            AE_LEN,
            AB_COUNT,
            CHK_PID,
            CHK_SPACE_SEL,
            0x800,
        ];
        for reg in writes {
            d.bar0_write32(WINDOW_BASE + reg, 0);
        }
        assert_eq!(
            d.bar0_read32(WINDOW_BASE + WINDOW_WRITES),
            writes.len() as u32
        );
        // Byte writes are merged into whole-word writes: one more each.
        d.bar0_write(u64::from(WINDOW_BASE + WINDOW_SCRATCH0), &[1])
            .unwrap();
        assert_eq!(
            d.bar0_read32(WINDOW_BASE + WINDOW_WRITES),
            writes.len() as u32 + 1
        );
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
    fn a_poll_is_charged_while_another_cpu_services_interrupts() {
        use crate::regs::pmc::{PMC_INTR_0, PMC_INTR_EN_CLEAR_0, PMC_INTR_EN_SET_0};
        use crate::regs::ptimer::PTIMER_TIME_1;
        let ns = |d: &mut Device| {
            let hi = d.bar0_read32(PTIMER_TIME_1);
            u64::from(hi) << 32 | u64::from(d.bar0_read32(PTIMER_TIME_0))
        };
        // gf100_gr_fecs_ctrl_ctxsw's 2 s poll of a halted FECS on one CPU, and nouveau's
        // interrupt handler on the other between every two of its reads (measured in a
        // race-mode guest: unarm, pending, BOOT_0, rearm, MSI re-arm).
        let mut d = Device::new();
        let start = ns(&mut d);
        let mut polls = 0u32;
        while ns(&mut d) - start < 2_000_000_000 && polls < 100_000 {
            d.bar0_read32(0x409804);
            d.bar0_write32(PMC_INTR_EN_CLEAR_0, !0);
            d.bar0_write32(PMC_INTR_EN_CLEAR_0 + 4, !0);
            d.bar0_read32(PMC_INTR_0);
            d.bar0_read32(PMC_INTR_0 + 4);
            d.bar0_read32(0);
            d.bar0_write32(PMC_INTR_EN_SET_0, 0x200);
            d.bar0_write32(PMC_INTR_EN_SET_0 + 4, 0);
            d.bar0_write32(PCI_MSI_REARM, 0);
            polls += 1;
        }
        assert!(polls < 10_000, "2 s of GPU time took {polls} poll rounds");
        // The same poll with a third CPU's status reads between its rounds (the explorer's
        // batch wait reads two registers of the window): too many registers for a spin, but
        // still a driver waiting on PTIMER while the device does nothing.
        let mut d = Device::new();
        let start = ns(&mut d);
        let mut polls = 0u32;
        while ns(&mut d) - start < 2_000_000_000 && polls < 100_000 {
            d.bar0_read32(0x409804);
            d.bar0_read32(crate::window::WINDOW_BASE + 0x178);
            d.bar0_read32(crate::window::WINDOW_BASE + 0x17c);
            d.bar0_write32(PMC_INTR_EN_SET_0, 0x200);
            polls += 1;
        }
        assert!(
            polls < 10_000,
            "with other reads: 2 s of GPU time took {polls} poll rounds"
        );
        // Any other write still ends a poll: the same spin with a write to the polled
        // unit between its reads is never charged idle time.
        let mut d = Device::new();
        let start = ns(&mut d);
        for _ in 0..10_000 {
            d.bar0_read32(0x409804);
            d.bar0_write32(0x409800, 0);
        }
        assert!(
            ns(&mut d) - start < 10_000_000,
            "no idle charge with writes in the loop"
        );
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
                s.map(
                    &mut d.ctx.phys,
                    va + p * 0x1000,
                    Pte::pfn_vram(pa + p * 0x1000),
                );
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
        use crate::window::*;
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
            .any(|e| matches!(e, ModelEvent::ChannelStopped { chid: 1, .. })));
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
                ModelEvent::ChannelStopped { chid: 1, why } => Some(why.to_string()),
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
        use crate::window::*;
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
                    &mut d.ctx.phys,
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
        d.ctx
            .phys
            .sys_read(0x80_0000 + 13 * 0x1000, &mut b)
            .unwrap();
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
        use crate::window::*;
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
        let put =
            |d: &mut Device, a: u64, v: u64| d.ctx.phys.sys_write(a, &v.to_le_bytes()).unwrap();
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
            &mut d.ctx.phys,
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
        use crate::window::*;
        use vm_memory::{GuestAddress, GuestMemoryMmap};
        let mut d = Device::new();
        let ram = GuestMemoryMmap::<()>::from_ranges(&[(GuestAddress(0), 16 << 20)]).unwrap();
        d.set_sysmem(Box::new(ram));
        let put =
            |d: &mut Device, a: u64, v: u64| d.ctx.phys.sys_write(a, &v.to_le_bytes()).unwrap();
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
                &mut d.ctx.phys,
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
