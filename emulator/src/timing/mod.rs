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
}

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
};

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
        ((self.cycles as u128 * 1000) / GPU_CLOCK_MHZ as u128) as u64
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
        c.advance(u64::MAX);
        assert_eq!(c.now(), u64::MAX);
        assert!(c.nanoseconds() > 0);
    }

    #[test]
    fn profile_orders_costs_plausibly() {
        let p = P100;
        assert!(p.l1_tlb_hit < p.l2_tlb_hit);
        assert!(p.l2_tlb_hit < p.walk_read_vidmem);
        assert!(p.walk_read_vidmem < p.walk_read_sysmem);
    }
}
