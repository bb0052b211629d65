//! The cycle model: one deterministic GPU clock and the named cost of everything the model
//! does. Same inputs, same totals, always; nothing here reads a host clock.
//!
//! "Cycle-accurate" in this project means exactly this: a deterministic clock whose costs are
//! named, documented and (where a measurement exists) anchored to one. The [`P100`] profile
//! below says for each value whether it is measured or assumed. No published measurement of
//! GP100 MMU walk or PRI latencies was available to us, so today every value is an
//! assumption chosen to keep relative costs plausible (an L1 TLB hit is cheaper than an L2 hit,
//! which is cheaper than a memory read; system memory is farther than video memory).

/// Named costs, in GPU cycles.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Costs {
    /// Profile name.
    pub name: &'static str,
    /// One 32-bit BAR0 register access (a PRI round trip). Assumed.
    pub pri_access: u64,
    /// A translation found in the client's L1 TLB. Assumed.
    pub l1_tlb_hit: u64,
    /// A translation found in the shared L2 TLB. Assumed.
    pub l2_tlb_hit: u64,
    /// One page-table read from video memory during a walk. Assumed.
    pub walk_read_vidmem: u64,
    /// One page-table read from system memory over PCIe during a walk. Assumed.
    pub walk_read_sysmem: u64,
    /// Writing one fault-buffer entry. Assumed.
    pub fault_write: u64,
    /// Processing one TLB invalidate. Assumed.
    pub invalidate: u64,
    /// The host decoding one pushbuffer dword (a method header or data). Assumed.
    pub pbdma_dword: u64,
    /// Bytes the copy engine moves per cycle. Assumed: about 11 GB/s at the base clock,
    /// the order of a PCIe 3.0 x16 link's practical bandwidth.
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
}

/// Registers a poll loop may cycle through (nouveau's `nvkm_msec` reads PTIMER's two words
/// and the status register it waits on).
pub const POLL_REGISTERS: usize = 4;

/// The default profile for the Tesla P100 (every value assumed; see the module doc).
pub const P100: Costs = Costs {
    name: "p100",
    pri_access: 32,
    l1_tlb_hit: 4,
    l2_tlb_hit: 40,
    walk_read_vidmem: 250,
    walk_read_sysmem: 1000,
    fault_write: 300,
    invalidate: 200,
    pbdma_dword: 4,
    ce_bytes_per_cycle: 10,
    idle_poll_after: 64,
    idle_poll_start: 1_000,
    idle_poll_max: 1_126_000,
};

/// Recognises idle polling (see [`Costs::idle_poll_after`]) and charges for it.
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
        let steps = (self.reads - c.idle_poll_after) / 8;
        // Doubling saturates: past 2^32 times the start it is far above any sane cap.
        let grown = if steps >= 32 {
            u64::MAX
        } else {
            c.idle_poll_start.saturating_mul(1 << steps)
        };
        grown.min(c.idle_poll_max)
    }

    /// Any write ends a poll.
    pub fn write(&mut self) {
        *self = PollDetector::default();
    }
}

/// GPU clock frequency the model reports time at (PTIMER, trace timelines): the Tesla P100
/// PCIe base clock, 1126 MHz (NVIDIA Tesla P100 PCIe product brief).
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
    fn profile_orders_costs_plausibly() {
        let p = P100;
        assert!(p.l1_tlb_hit < p.l2_tlb_hit);
        assert!(p.l2_tlb_hit < p.walk_read_vidmem);
        assert!(p.walk_read_vidmem < p.walk_read_sysmem);
    }
}
