//! Deterministic scenarios whose GPU-clock cost the CLI reports (`gp100emu bench`): the model's
//! cycle totals depend only on the inputs, so these are figures of the cycle model, not of the
//! host.

use crate::device::Device;
use crate::mmu::format::{DualPde, Pde, PdeAperture, Pte};
use crate::window::*;

/// GPU cycles of one replayable-fault round trip, split as the hardware sees it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FaultRoundTrip {
    /// The faulting access: TLB miss, five-level walk to the missing PTE, fault-entry write.
    pub fault: u64,
    /// The replay: the invalidate it implies, the walk that now succeeds, the access itself.
    pub replay: u64,
}

fn w64(d: &mut Device, a: u64, v: u64) {
    d.vram_write(a, &v.to_le_bytes())
        .expect("scenario memory is in VRAM");
}

/// One 4-byte GPU read of a page the driver has not mapped yet, serviced as nouveau does:
/// fault, PFN-map PTE, flush, GET, REPLAY. Register accesses the driver makes are not
/// counted (each costs `pri_access`); only what the GPU does.
pub fn svm_fault_round_trip() -> FaultRoundTrip {
    let mut d = Device::new();
    let pd = |a: u64| Pde::build(PdeAperture::Video, false, a).0;
    // BAR2: instance block 0x20000, PD3 0x30000 .. PT 0x34000, VA 0x1000 -> VRAM 0x50000 (the
    // fault buffer).
    w64(&mut d, 0x20200, 0x30000 | 1 << 10);
    w64(&mut d, 0x20208, (32 << 20) - 1);
    w64(&mut d, 0x30000, pd(0x31000));
    w64(&mut d, 0x31000, pd(0x32000));
    w64(&mut d, 0x32000, pd(0x33000));
    let dual = DualPde::build(
        (PdeAperture::Invalid, false, 0),
        (PdeAperture::Video, false, 0x34000),
    );
    w64(&mut d, 0x33000, dual.lo);
    w64(&mut d, 0x33008, dual.hi);
    w64(&mut d, 0x34008, Pte::pfn_vram(0x50000).0);
    d.bar0_write32(crate::bar::regs::BAR2_BLOCK, 0x8000_0020);
    d.bar0_write32(crate::fault::ring::regs::ADDR_LO, 0x1000 | 1);
    // The SVM channel: a replayable address space, tables 0x100000.., one data page mapped
    // later at VA 0x40000000 -> VRAM 0x200000.
    let inst = 0x90000u64;
    w64(&mut d, inst + 0x200, 0x100000 | 1 << 10 | 0x30);
    w64(&mut d, 0x100000, pd(0x101000));
    w64(&mut d, 0x101000, pd(0x102000));
    w64(&mut d, 0x102000 + 8 * 2, pd(0x103000));
    let dual = DualPde::build(
        (PdeAperture::Invalid, false, 0),
        (PdeAperture::Video, false, 0x104000),
    );
    w64(&mut d, 0x103000, dual.lo);
    w64(&mut d, 0x103008, dual.hi);
    d.bar0_write32(0x800000 + 8, 0x8000_0000 | (inst >> 12) as u32);
    let pri = crate::timing::P100.pri_access;
    for (r, v) in [
        (AE_CHID, 1),
        (AE_VA_LO, 0x4000_0000),
        (AE_VA_HI, 0),
        (AE_LEN, 4),
    ] {
        d.bar0_write32(WINDOW_BASE + r, v);
    }
    let t0 = d.gpu_cycles();
    d.bar0_write32(WINDOW_BASE + AE_OP, 1);
    let fault = d.gpu_cycles() - t0 - pri;
    // The driver: PFN-map PTE, flush this address space, consume the entry.
    w64(&mut d, 0x104000, Pte::pfn_vram(0x200000).0);
    d.bar0_write32(0x100cb8, ((0x100000u64 >> 12) << 4) as u32);
    d.bar0_write32(0x100cec, 0);
    d.bar0_write32(0x100cbc, 0x8000_0001);
    d.bar0_write32(crate::fault::ring::regs::GET, 1);
    let t2 = d.gpu_cycles();
    d.bar0_write32(0x100cbc, 0x8000_000b);
    let replay = d.gpu_cycles() - t2 - pri;
    debug_assert_eq!(
        d.bar0_read32(WINDOW_BASE + AE_STATUS) & 3,
        1,
        "the access completed"
    );
    FaultRoundTrip { fault, replay }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_round_trip_completes_and_its_cost_is_reproducible() {
        let a = svm_fault_round_trip();
        let b = svm_fault_round_trip();
        assert_eq!(a, b, "same inputs, same cycles");
        let c = crate::timing::P100;
        assert!(a.fault >= c.fault_write + c.walk_read_vidmem, "{a:?}");
        assert!(a.replay >= c.invalidate + c.walk_read_vidmem, "{a:?}");
    }
}
