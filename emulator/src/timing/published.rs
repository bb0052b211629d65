//! Published Pascal figures the cycle model is compared with, each with its source and
//! whether it is a measurement or a simulator's configuration. Numbers only (read from the
//! sources; none of their data files or code is copied here).
//!
//! ## The P100 TLB sweep (measurement)
//!
//! Karnagel, Ben-Nun, Werner, Habich, Lehner, "Big Data causing Big (TLB) Problems: Taming
//! Random Memory Accesses on the GPU", DaMoN 2017 (doi 10.1145/3076113.3076115). Their
//! benchmark (github.com/gcoe-dresden/cuda-gpu-tlb, `src/tlb_benchmark.cu`) is the
//! pointer-chase method of Mei and Chu: one thread follows a chain through a `cudaMalloc`
//! buffer (2 MiB pages) with a fixed stride, a warm-up pass, then a timed pass with
//! `clock64()` around each dependent load, averaged over the pass and over five runs. Their
//! P100 results (`results/P100/TLB-Test-12-80-1024-4096.csv`,
//! `TLB-Test-1472-4992-16384-65536.csv`; Tesla P100-PCIE-16GB, core clock 1189 MHz per
//! `results/P100/sbatch.sh`) show, in SM cycles per load:
//!
//! | stride | footprint | cycles | reading |
//! | --- | --- | --- | --- |
//! | 1, 2, 4 MiB | up to 32 MiB (4 MiB stride: 64 MiB) | 292–293 | L1 TLB hit |
//! | 1 MiB | 33–80 MiB | 297 | every other load hits the L1 (two loads per 2 MiB page) |
//! | 2, 4 MiB | past the first knee, to 80 MiB | 301–302 | L2 TLB hit |
//! | 16, 32 MiB | 1472–2016 MiB | 301–302 | L2 TLB hit |
//! | 64 MiB | 1472–4032 MiB | 301–302 | L2 TLB hit |
//! | 32 MiB | from 2336 MiB | 412 | L2 TLB miss |
//! | 16 MiB | from 2304 MiB | 357 | every other load misses (one walk fills 32 MiB) |
//! | 64 MiB | from 4672 MiB | 412 | L2 TLB miss |
//!
//! The second knee is spread: 2048–2288 MiB (16 and 32 MiB strides) and 4096–4608 MiB
//! (64 MiB stride) read 307–327 cycles. [`published_cycles`] returns the plateau at a point
//! of these sweeps and `None` inside a spread knee.
//!
//! ## NVIDIA's UVM driver for Pascal (driver source, not a measurement)
//!
//! From open-gpu-kernel-modules 580.65.06 (the last release with the Pascal HAL):
//! `kernel-open/nvidia-uvm/clb069.h` (`NVB069_FAULT_BUF_SIZE` 32 bytes per entry),
//! `uvm_gpu_replayable_faults.c` (`UVM_PERF_FAULT_BATCH_COUNT_DEFAULT` 256 faults fetched
//! per batch, clamped to the buffer's entry count; `UVM_PERF_FAULT_MAX_BATCHES_PER_SERVICE_DEFAULT`
//! 20; replay policy `BATCH_FLUSH`), `uvm_pascal.c` (`tlb_batch.max_pages` 32 targeted
//! invalidates before a full one).
//!
//! ## Fault servicing latency (simulator configuration, not a measurement)
//!
//! GPGPU-Sim UVMSmart (Ganguly et al., ISCA'19; github.com/DebashisGanguly/gpgpu-sim_UVMSmart
//! `src/gpgpu-sim/gpu-sim.cc`): `-page_fault_latency` default 66645 core cycles, 45 us at
//! its 1481 MHz Pascal (GTX 1080 Ti) clock, for the whole far-fault round trip including the
//! driver; `-page_table_walk_latency` 100 core cycles; `-tlb_size` 4096 entries per SM. The
//! UVM measurement papers (Zheng et al. HPCA'16, Ganguly et al. ISCA'19, Allen and Ge
//! IPDPS'21/SC'21) could not be read from the stored sources here, so none of their numbers
//! is used.

/// Cycles per load on the L1-TLB-hit plateau (measured).
pub const L1_HIT: u64 = 293;
/// Cycles per load with a 1 MiB stride past the first knee (half L1, half L2 hits).
pub const L1_HALF: u64 = 297;
/// Cycles per load on the L2-TLB-hit plateau (measured; 301–302).
pub const L2_HIT: u64 = 302;
/// Cycles per load with a 16 MiB stride past the second knee (half misses).
pub const L2_HALF: u64 = 357;
/// Cycles per load on the L2-TLB-miss plateau (measured).
pub const MISS: u64 = 412;
/// The SM clock the sweep ran at (MHz).
pub const SWEEP_CLOCK_MHZ: u64 = 1189;

/// MiB.
const MIB: u64 = 1 << 20;

/// First knee: the last footprint that still hits the L1 TLB, for strides of 1 and 2 MiB
/// (16 entries × 2 MiB pages; with a 4 MiB stride it is 64 MiB: 16 pages).
pub const L1_KNEE: u64 = 32 * MIB;
/// Second knee: the last footprint on the L2-hit plateau for a 32 MiB stride (2016 MiB
/// measured; elevated from 2048 MiB).
pub const L2_KNEE: u64 = 2016 * MIB;
/// Second knee for a 64 MiB stride (4032 MiB measured; elevated from 4096 MiB).
pub const L2_KNEE_64: u64 = 4032 * MIB;

/// The strides and footprints the published sweeps cover: (stride, first, last, step).
pub const SWEEPS: [(u64, u64, u64, u64); 6] = [
    (MIB, 12 * MIB, 80 * MIB, MIB),
    (2 * MIB, 12 * MIB, 80 * MIB, 2 * MIB),
    (4 * MIB, 12 * MIB, 80 * MIB, 4 * MIB),
    (16 * MIB, 1472 * MIB, 4992 * MIB, 16 * MIB),
    (32 * MIB, 1472 * MIB, 4992 * MIB, 32 * MIB),
    (64 * MIB, 1472 * MIB, 4992 * MIB, 64 * MIB),
];

/// The published plateau at `footprint` bytes chased with `stride` bytes (one of
/// [`SWEEPS`]), or `None` inside a spread knee or outside the sweeps.
pub fn published_cycles(footprint: u64, stride: u64) -> Option<u64> {
    let f = footprint / MIB;
    match stride / MIB {
        1 if (12..=80).contains(&f) => Some(if f <= 32 { L1_HIT } else { L1_HALF }),
        2 if (12..=80).contains(&f) => Some(if f <= 32 { L1_HIT } else { L2_HIT }),
        4 if (12..=80).contains(&f) => match f {
            ..=64 => Some(L1_HIT),
            65..=67 => None,
            _ => Some(L2_HIT),
        },
        16 if (1472..=4992).contains(&f) => match f {
            ..=2016 => Some(L2_HIT),
            2017..=2303 => None,
            _ => Some(L2_HALF),
        },
        32 if (1472..=4992).contains(&f) => match f {
            ..=2016 => Some(L2_HIT),
            2017..=2335 => None,
            _ => Some(MISS),
        },
        64 if (1472..=4992).contains(&f) => match f {
            ..=4032 => Some(L2_HIT),
            4033..=4671 => None,
            _ => Some(MISS),
        },
        _ => None,
    }
}

/// NVIDIA UVM: bytes per Pascal fault-buffer entry (`NVB069_FAULT_BUF_SIZE`).
pub const UVM_FAULT_ENTRY_BYTES: u64 = 32;
/// NVIDIA UVM: faults fetched per batch by default (`UVM_PERF_FAULT_BATCH_COUNT_DEFAULT`).
pub const UVM_FAULT_BATCH: u64 = 256;
/// NVIDIA UVM: batches serviced per interrupt at most by default.
pub const UVM_MAX_BATCHES_PER_SERVICE: u64 = 20;
/// GPGPU-Sim UVMSmart's default far-fault latency (core cycles at 1481 MHz; a simulator
/// configuration).
pub const UVMSMART_FAULT_CYCLES: u64 = 66645;
/// The clock UVMSmart's Pascal configuration runs at (MHz).
pub const UVMSMART_CLOCK_MHZ: u64 = 1481;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_published_plateaus_are_where_the_sweep_has_them() {
        assert_eq!(published_cycles(32 * MIB, MIB), Some(L1_HIT));
        assert_eq!(published_cycles(33 * MIB, MIB), Some(L1_HALF));
        assert_eq!(published_cycles(34 * MIB, 2 * MIB), Some(L2_HIT));
        assert_eq!(published_cycles(64 * MIB, 4 * MIB), Some(L1_HIT));
        assert_eq!(published_cycles(2048 * MIB, 32 * MIB), None, "spread knee");
        assert_eq!(published_cycles(2336 * MIB, 32 * MIB), Some(MISS));
        assert_eq!(published_cycles(2304 * MIB, 16 * MIB), Some(L2_HALF));
        assert_eq!(published_cycles(4672 * MIB, 64 * MIB), Some(MISS));
        assert_eq!(published_cycles(100 * MIB, 3 * MIB), None, "not swept");
        // The half plateaus are the means of their neighbours, as the readings say.
        assert_eq!((L1_HIT + L2_HIT) / 2, L1_HALF);
        assert_eq!((L2_HIT + MISS) / 2, L2_HALF);
    }
}
