//! The cycle model: one deterministic GPU clock and the named cost of everything the model
//! does. Same inputs, same totals, always; nothing here reads a host clock.
//!
//! "Cycle-accurate" in this project means exactly this: a deterministic clock whose costs are
//! named, documented and (where a measurement exists) anchored to one. Each value of the
//! [`P100`] profile says where it comes from; [`published`] holds the measurements
//! themselves, and `docs/timing.md` is the table of every cost with its source.
//!
//! The translation costs are anchored to the one published P100 TLB sweep we could read in
//! full, Karnagel et al. (DaMoN 2017; raw data github.com/gcoe-dresden/cuda-gpu-tlb,
//! `results/P100/*.csv`, a Tesla P100-PCIE-16GB at a 1189 MHz core clock). A pointer chase
//! measures a whole load (TLB and data), so the measurement fixes sums, not the TLB alone:
//! an access that hits the L1 TLB costs `l1_tlb_hit + data_read_vidmem` = 293 cycles, one
//! that hits the L2 `l2_tlb_hit + data_read_vidmem` = 302, one that misses
//! `walk_read_vidmem + data_read_vidmem` = 412 (one PD0 read per miss: the chase's upper
//! directory levels stay in the walker's cache). How the 293 splits between the TLB lookup
//! and the data load is not published; the split below is assumed. The measurement's cycles
//! are SM cycles at 1189 MHz; the model uses them unchanged at its 1126 MHz clock (the parts
//! that run at the fixed HBM clock would take about 5 % fewer cycles at 1126 MHz).
//!
//! Where nothing is published the value says "assumed" and why it is plausible.
//! [`P100_ASSUMED`] keeps the values the model used before the anchoring.

pub mod published;

/// Named costs, in GPU cycles.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Costs {
    /// Profile name.
    pub name: &'static str,
    /// One 32-bit BAR0 register access (a PRI round trip).
    pub pri_access: u64,
    /// A translation found in the client's L1 TLB.
    pub l1_tlb_hit: u64,
    /// A translation found in the shared L2 TLB (instead of, not on top of, the L1 cost).
    pub l2_tlb_hit: u64,
    /// One page-table read from video memory during a walk.
    pub walk_read_vidmem: u64,
    /// One page-table read from system memory over PCIe during a walk.
    pub walk_read_sysmem: u64,
    /// The access engine's data access to one page in video memory (after translation).
    pub data_read_vidmem: u64,
    /// The access engine's data access to one page in system memory over PCIe.
    pub data_read_sysmem: u64,
    /// Writing one fault-buffer entry.
    pub fault_write: u64,
    /// Processing one TLB invalidate.
    pub invalidate: u64,
    /// The host decoding one pushbuffer dword (a method header or data).
    pub pbdma_dword: u64,
    /// Bytes the copy engine moves per cycle.
    pub ce_bytes_per_cycle: u64,
    /// Idle polling: after this many consecutive register reads that touch at most
    /// [`POLL_REGISTERS`] registers and no write in between (a driver spinning on a status
    /// bit), each further read also stands for the CPU time the spin takes. The model's clock
    /// otherwise advances only by device work, so without this a driver timeout waiting on
    /// something that never happens (a falcon that never answers) would take ~70 million
    /// reads per simulated second. A modelling choice, not a GPU property.
    pub idle_poll_after: u32,
    /// The first idle-poll charge in cycles; it doubles every 8 reads up to the cap.
    pub idle_poll_start: u64,
    /// The largest idle-poll charge per read (1 ms at the base clock), so a 2 s timeout
    /// elapses in about 2000 reads.
    pub idle_poll_max: u64,
    /// Timer waits: after this many reads of PTIMER's low word with no device work in
    /// between (whatever other register traffic there was), each further one is charged as
    /// an idle poll read ([`TimerWait`]). A modelling choice, not a GPU property.
    pub timer_wait_after: u32,
}

/// Registers a poll loop may cycle through (nouveau's `nvkm_msec` reads PTIMER's two words
/// and the status register it waits on).
pub const POLL_REGISTERS: usize = 4;

/// The default profile for the Tesla P100, anchored where a measurement exists.
pub const P100: Costs = Costs {
    name: "p100",
    // Assumed. No GP100 PRI latency is published; 32 cycles (28 ns) keeps a register access
    // far cheaper than any memory access, as a PRI hop inside the chip is.
    pri_access: 32,
    // Assumed share of the measured 293-cycle L1-hit load (Karnagel et al., P100 sweep,
    // 1 MiB..4 MiB strides below 32 MiB): a fully associative 16-entry lookup takes a few
    // cycles; the rest of the 293 is the data load (`data_read_vidmem`).
    l1_tlb_hit: 4,
    // Measured: the L2-hit plateau is 302 cycles (2 MiB stride over 32 MiB, 16 MiB stride
    // below 2 GiB), 9 more than an L1 hit; 302 - 289.
    l2_tlb_hit: 13,
    // Measured: the miss plateau is 412 cycles (32 MiB stride over 2.3 GiB, 64 MiB stride
    // over 4.6 GiB), one PD0 read per miss; 412 - 289. Cross-check (a simulator config, not
    // a measurement): GPGPU-Sim UVMSmart's `-page_table_walk_latency` default is 100 core
    // cycles (src/gpgpu-sim/gpu-sim.cc).
    walk_read_vidmem: 123,
    // Assumed. No PCIe page-walk latency of a P100 is published; 1000 cycles (0.9 us) is the
    // order of one PCIe 3.0 read round trip from a device.
    walk_read_sysmem: 1000,
    // Measured sum minus the assumed L1 share: 293 - 4. A load that hits the data L2 cache
    // (the chase touches a few dozen lines, far less than the 4 MiB L2).
    data_read_vidmem: 289,
    // Assumed, for the same reason as `walk_read_sysmem`.
    data_read_sysmem: 1000,
    // Assumed: one 32-byte write into the buffer, the order of one memory access (the
    // 289-cycle load above); no published figure.
    fault_write: 300,
    // Assumed. Not published; cheaper than a walk of several levels, dearer than a hit.
    invalidate: 200,
    // Assumed. Not published; a few cycles per 32-bit word for a fetch-and-decode pipeline.
    pbdma_dword: 4,
    // Measured: 10 B/cycle at 1126 MHz is 11.26 GB/s; a P100-PCIE-16GB copies host to device
    // at 11.69 GB/s and device to host at 12.89 GB/s (CUDA bandwidthTest, pinned, 32 MiB;
    // Microway, "NVIDIA Tesla P100 PCI-E 16GB GPU Accelerator (Pascal GP100) Up Close").
    ce_bytes_per_cycle: 10,
    idle_poll_after: 64,
    idle_poll_start: 1_000,
    idle_poll_max: 1_126_000,
    timer_wait_after: 256,
};

/// The profile before the anchoring: every value assumed (kept for comparison; with
/// [`crate::mmu::tlb::TlbConfig::LEGACY`] the model costs what it did then).
pub const P100_ASSUMED: Costs = Costs {
    name: "p100-assumed",
    pri_access: 32,
    l1_tlb_hit: 4,
    l2_tlb_hit: 40,
    walk_read_vidmem: 250,
    walk_read_sysmem: 1000,
    data_read_vidmem: 250,
    data_read_sysmem: 1000,
    fault_write: 300,
    invalidate: 200,
    pbdma_dword: 4,
    ce_bytes_per_cycle: 10,
    idle_poll_after: 64,
    idle_poll_start: 1_000,
    idle_poll_max: 1_126_000,
    timer_wait_after: 256,
};

impl Costs {
    /// A profile by name.
    pub fn by_name(name: &str) -> Option<Costs> {
        [P100, P100_ASSUMED].into_iter().find(|c| c.name == name)
    }
}

/// Recognises idle polling (see [`Costs::idle_poll_after`]) and charges for it.
///
/// The device does not show it the accesses of interrupt service
/// (`regs::services_interrupts`): with two CPUs, one can take interrupts while the other
/// spins, and the handler's register traffic lands between the spin's reads. Were it
/// counted, an interrupt storm on one CPU (measured: nouveau 6.12 taking the replayable-fault
/// interrupt 634,311 times during one FECS poll) would keep a 2 s timeout on the other
/// from ever being charged, and the guest would sit in it for tens of seconds.
#[derive(Debug, Clone, Default)]
pub struct PollDetector {
    regs: [u32; POLL_REGISTERS],
    n: usize,
    reads: u32,
}

impl PollDetector {
    /// A register read at `offset`: the extra cycles it costs.
    pub fn read(&mut self, offset: u32, c: &Costs) -> u64 {
        if !self.regs[..self.n].contains(&offset) {
            if self.n == POLL_REGISTERS {
                // More distinct registers than a poll loop reads: a scan, not a spin.
                *self = PollDetector::default();
            }
            self.regs[self.n] = offset;
            self.n += 1;
        }
        self.reads = self.reads.saturating_add(1);
        if self.reads <= c.idle_poll_after {
            return 0;
        }
        idle_charge(self.reads - c.idle_poll_after, c)
    }

    /// Any write ends a poll.
    pub fn write(&mut self) {
        *self = PollDetector::default();
    }
}

/// Recognises a driver waiting on time however the register traffic around its reads looks.
///
/// nouveau's timeouts (`nvkm_msec`/`nvkm_nsec`) read PTIMER (`nv04_timer_read`: TIME_1,
/// TIME_0, TIME_1) once per round. [`PollDetector`] needs a spin's reads to be consecutive;
/// with two CPUs, the other one's traffic lands between them (measured in explore-race: the
/// explorer's batch wait reading two window registers, and an interrupt storm, during one FECS
/// poll of 172,353 rounds), so that detector never charges and 2 s of GPU time take tens of
/// seconds of guest time. This one counts TIME_0 reads while the device does no work at all
/// (the clock advanced by nothing but register accesses and idle charges): past
/// [`Costs::timer_wait_after`] of them the driver is waiting on the clock, and each further
/// TIME_0 read is charged like an idle poll read. Device work (a walk, a fault, an engine
/// step) starts the count again.
#[derive(Debug, Clone, Default)]
pub struct TimerWait {
    work_at: u64,
    reads: u32,
}

impl TimerWait {
    /// A read of PTIMER's low word when the device has done `work` cycles of work so far:
    /// the extra cycles it costs.
    pub fn read(&mut self, work: u64, c: &Costs) -> u64 {
        if work != self.work_at {
            *self = TimerWait {
                work_at: work,
                reads: 0,
            };
        }
        self.reads = self.reads.saturating_add(1);
        if self.reads <= c.timer_wait_after {
            return 0;
        }
        idle_charge(self.reads - c.timer_wait_after, c)
    }
}

/// The idle charge of the `n`-th read past a poll's threshold: `idle_poll_start`, doubling
/// every 8 reads, capped at `idle_poll_max`.
fn idle_charge(n: u32, c: &Costs) -> u64 {
    let steps = n / 8;
    // Doubling saturates: past 2^32 times the start it is far above any sane cap.
    let grown = if steps >= 32 {
        u64::MAX
    } else {
        c.idle_poll_start.saturating_mul(1 << steps)
    };
    grown.min(c.idle_poll_max)
}

/// GPU clock frequency the model reports time at (PTIMER, trace timelines): the Tesla P100
/// PCIe base clock, 1126 MHz (NVIDIA Tesla P100 PCIe product brief, PB-08248-001_v01; the
/// brief's clock table could not be re-read from the stored copies, which quote its boost
/// clock as about 1300 MHz). The measurement the translation costs come from ran the core at
/// 1189 MHz (its job script, `srun --gpufreq=715:1189`).
pub const GPU_CLOCK_MHZ: u64 = 1126;

/// The GPU clock: cycles since the device was created.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct GpuClock {
    cycles: u64,
}

impl GpuClock {
    /// A clock at zero.
    pub fn new() -> Self {
        Self::default()
    }

    /// Cycles so far.
    pub fn now(&self) -> u64 {
        self.cycles
    }

    /// Advances by `cycles` (saturating: the clock never wraps back to the past).
    pub fn advance(&mut self, cycles: u64) {
        self.cycles = self.cycles.saturating_add(cycles);
    }

    /// Nanoseconds at [`GPU_CLOCK_MHZ`] (what PTIMER counts).
    pub fn nanoseconds(&self) -> u64 {
        // 64-bit arithmetic while it cannot overflow (the first 190 days of GPU time), the
        // same quotient in 128 bits after that.
        match self.cycles.checked_mul(1000) {
            Some(p) => p / GPU_CLOCK_MHZ,
            None => ((self.cycles as u128 * 1000) / GPU_CLOCK_MHZ as u128) as u64,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn clock_is_monotonic_and_converts_to_ns() {
        let mut c = GpuClock::new();
        c.advance(1126);
        assert_eq!(c.nanoseconds(), 1000);
        // Both sides of the 64-bit fast path agree with the exact quotient.
        for cycles in [u64::MAX / 1000, u64::MAX / 1000 + 1, 1 << 60, u64::MAX] {
            let c = GpuClock { cycles };
            assert_eq!(
                c.nanoseconds() as u128,
                cycles as u128 * 1000 / GPU_CLOCK_MHZ as u128
            );
        }
        c.advance(u64::MAX);
        assert_eq!(c.now(), u64::MAX);
        assert!(c.nanoseconds() > 0);
    }

    #[test]
    fn idle_polls_are_charged_and_scans_and_writes_are_not() {
        let c = P100;
        let mut p = PollDetector::default();
        // A spin over TIME_1, TIME_0 and a status register.
        let mut total = 0u64;
        for i in 0..3000u32 {
            total += p.read([0x9410, 0x9400, 0x409804][i as usize % 3], &c);
        }
        assert!(
            total > 2_000_000_000 / 1000 * 1126 / 1000,
            "over 2 s of GPU time: {total}"
        );
        // Deep into a poll the charge stays at the cap (it must never wrap back to 0).
        for i in 0..1_000_000u32 {
            let x = p.read([0x9410, 0x9400][i as usize % 2], &c);
            if i > 1000 {
                assert_eq!(x, c.idle_poll_max, "read {i}");
            }
        }
        p.write();
        assert_eq!(p.read(0x9400, &c), 0, "a write ends the poll");
        // Reading many distinct registers (shadowing the VBIOS) is not a poll.
        let mut q = PollDetector::default();
        let scan: u64 = (0..100_000u32).map(|i| q.read(0x300000 + 4 * i, &c)).sum();
        assert_eq!(scan, 0);
    }

    #[test]
    fn timer_waits_are_charged_until_the_device_works() {
        let c = P100;
        let mut w = TimerWait::default();
        let first: u64 = (0..c.timer_wait_after).map(|_| w.read(7, &c)).sum();
        assert_eq!(first, 0, "a few timer reads are not a wait");
        let total: u64 = (0..3000).map(|_| w.read(7, &c)).sum();
        assert!(total > 2 * 1_126_000_000, "over 2 s of GPU time: {total}");
        assert_eq!(w.read(8, &c), 0, "device work ends the wait");
    }

    #[test]
    fn profile_orders_costs_plausibly() {
        let p = P100;
        assert!(p.l1_tlb_hit < p.l2_tlb_hit);
        assert!(p.l2_tlb_hit < p.walk_read_vidmem);
        assert!(p.walk_read_vidmem < p.walk_read_sysmem);
    }
}
