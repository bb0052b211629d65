//! The replayable fault buffer as a ring in memory, driven through its registers the way
//! nouveau 6.12 drives it (nvkm/subdev/fault/gp100.c and base.c; gp100-facts.md):
//!
//! | offset | register | who writes | meaning |
//! | --- | --- | --- | --- |
//! | 0x002a70 | ADDR_LO | driver | buffer address bits 31:12, bit 0 ENABLE |
//! | 0x002a74 | ADDR_HI | driver | buffer address bits 63:32 |
//! | 0x002a78 | SIZE | GPU (read by nouveau) | number of 32-byte entries |
//! | 0x002a7c | GET | driver | index of the next entry the driver will read |
//! | 0x002a80 | PUT | GPU | index of the next entry the GPU will write |
//! | 0x002a84 | INFO | GPU sets, driver clears (write 1) | bit 0 OVERFLOW, bit 24 WRITE_NACK, bit 28 FAULT_WHILE_BUFFER_DISABLED |
//!
//! The GPU writes an entry at PUT with VALID set and advances PUT; the ring is full when
//! advancing PUT would make it equal GET, and then the fault is *not* written: the entry is
//! dropped and INFO.OVERFLOW set (also counted, [`FaultRing::overflows`]). A fault while the
//! buffer is disabled sets FAULT_WHILE_BUFFER_DISABLED instead, an entry the memory refused
//! WRITE_NACK. INFO and its bits are Pascal's `NV_PFIFO_REPLAY_FAULT_BUFFER_INFO` (0x002a84,
//! nvgpu `hw_fifo_gp10b.h`: overflow 0:0, write_nack 24:24, fault_while_buffer_disabled
//! 28:28, each cleared by writing 1; gp10b shares GP100's 0x002a70.. block); the ring full
//! test is nvgpu's `gp10b_replayable_pagefault_buffer_is_full` (GET == PUT + 1 mod SIZE).
//! A dropped fault is not lost for the access: it keeps waiting and faults again on the
//! next replay ([`crate::access::batch`]). nouveau 6.12 never reads INFO: it drains GET..PUT
//! and replays, which is enough to recover from an overflow. The interrupt condition (PMC
//! INTR bit 0x200 on GP100, `gp100_mc_intrs`) holds while the ring is enabled and GET != PUT.

use crate::mem::{GpuMemory, Target};

use super::entry::FaultEntry;

/// BAR0 offsets of the fault-buffer registers.
pub mod regs {
    /// Buffer address low bits, bit 0 enable.
    pub const ADDR_LO: u32 = 0x002a70;
    /// Buffer address high bits.
    pub const ADDR_HI: u32 = 0x002a74;
    /// Entry count.
    pub const SIZE: u32 = 0x002a78;
    /// Driver's read index.
    pub const GET: u32 = 0x002a7c;
    /// GPU's write index.
    pub const PUT: u32 = 0x002a80;
    /// Overflow and error bits (write 1 to clear).
    pub const INFO: u32 = 0x002a84;
}

/// INFO bits (Pascal `NV_PFIFO_REPLAY_FAULT_BUFFER_INFO`, nvgpu `hw_fifo_gp10b.h`).
pub mod info {
    /// An entry was dropped because the ring was full.
    pub const OVERFLOW: u32 = 1 << 0;
    /// Writing an entry to memory failed.
    pub const WRITE_NACK: u32 = 1 << 24;
    /// A fault came while the buffer was disabled.
    pub const FAULT_WHILE_BUFFER_DISABLED: u32 = 1 << 28;
    /// Every defined bit.
    pub const ALL: u32 = OVERFLOW | WRITE_NACK | FAULT_WHILE_BUFFER_DISABLED;
}

/// Bytes per entry (`NVB069_FAULT_BUF_SIZE` / clb069.h: 32).
pub const ENTRY_BYTES: u64 = 32;

/// Entries the GPU reports at SIZE: 0xc0 = 192, `fifo_replay_fault_buffer_size_hw_entries_v`
/// in nvgpu's `hw_fifo_gp10b.h` (GP10B, the only Pascal whose value NVIDIA publishes).
/// GP100's own value is in no public header we found (open-gpu-kernel-modules' gp100
/// `dev_fb.h`/`dev_fault.h` and open-gpu-doc do not define the register; NVIDIA's UVM takes
/// the size from its closed resource manager), so GP100 is assumed to report the GP10B
/// value: nouveau drives GP10B's buffer with the GP100 functions
/// (nvkm/subdev/fault/gp10b.c uses `gp100_fault_buffer_info`, which reads 0x002a78).
pub const HW_ENTRIES: u32 = 0xc0;
/// The largest count SIZE can hold: its field is bits 8:0 (`..._size_hw_f`: `v & 0x1ff`),
/// as are GET's and PUT's (`..._get_offset_hw_f`, `..._put_offset_hw_f`).
pub const SIZE_FIELD_MAX: u32 = 0x1ff;

/// What happened to one fault the GPU tried to report.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Report {
    /// Written at this index.
    Written(u32),
    /// The ring was full (or disabled): counted as an overflow.
    Overflow,
    /// Writing the entry to memory failed (the buffer address is bad): counted.
    BadBuffer,
}

/// The fault buffer state.
#[derive(Debug, Clone)]
pub struct FaultRing {
    addr_lo: u32,
    addr_hi: u32,
    entries: u32,
    get: u32,
    put: u32,
    overflows: u64,
    bad_writes: u64,
    written: u64,
    info: u32,
}

impl FaultRing {
    /// A ring of `entries` entries (the SIZE register's value, 2..=[`SIZE_FIELD_MAX`]),
    /// disabled.
    pub fn new(entries: u32) -> Self {
        FaultRing {
            addr_lo: 0,
            addr_hi: 0,
            entries: entries.clamp(2, SIZE_FIELD_MAX),
            get: 0,
            put: 0,
            overflows: 0,
            bad_writes: 0,
            written: 0,
            info: 0,
        }
    }

    /// Whether `offset` is one of the ring's registers.
    pub fn contains(offset: u32) -> bool {
        (regs::ADDR_LO..=regs::INFO).contains(&offset)
    }

    /// The INFO register.
    pub fn info(&self) -> u32 {
        self.info
    }

    /// Whether the driver enabled it.
    pub fn enabled(&self) -> bool {
        self.addr_lo & 1 != 0
    }

    /// The buffer's byte address.
    pub fn address(&self) -> u64 {
        (u64::from(self.addr_hi) << 32) | u64::from(self.addr_lo & !0xfff)
    }

    /// Faults dropped because the ring was full or disabled.
    pub fn overflows(&self) -> u64 {
        self.overflows
    }

    /// Faults not written because the buffer address was bad.
    pub fn bad_writes(&self) -> u64 {
        self.bad_writes
    }

    /// Faults written.
    pub fn written(&self) -> u64 {
        self.written
    }

    /// The interrupt condition: enabled with unread entries.
    pub fn pending(&self) -> bool {
        self.enabled() && self.get != self.put
    }

    /// A register read; None if `offset` is not one of the ring's.
    pub fn read32(&self, offset: u32) -> Option<u32> {
        Some(match offset {
            regs::ADDR_LO => self.addr_lo,
            regs::ADDR_HI => self.addr_hi,
            regs::SIZE => self.entries,
            regs::GET => self.get,
            regs::PUT => self.put,
            regs::INFO => self.info,
            _ => return None,
        })
    }

    /// A register write; false if `offset` is not one of the ring's. GET values beyond the
    /// ring wrap into it (the hardware keeps only the index bits), PUT and SIZE are read-only.
    pub fn write32(&mut self, offset: u32, v: u32) -> bool {
        match offset {
            regs::ADDR_LO => self.addr_lo = v,
            regs::ADDR_HI => self.addr_hi = v,
            regs::GET => self.get = v % self.entries,
            regs::INFO => self.info &= !(v & info::ALL),
            regs::SIZE | regs::PUT => {}
            _ => return false,
        }
        true
    }

    /// The GPU reports a fault: the entry is written at PUT with VALID set, through
    /// `write(address, entry)`, where `address` is in the space the buffer registers name.
    /// On GP100 that is a BAR2 virtual address (nouveau `gp100_fault_buffer_init` programs
    /// `nvkm_memory_bar2()` of the buffer), so the device translates it; `write` returns
    /// false when the entry could not be stored.
    pub fn report(
        &mut self,
        mut write: impl FnMut(u64, &[u8; 32]) -> bool,
        mut e: FaultEntry,
    ) -> Report {
        let next = (self.put + 1) % self.entries;
        if !self.enabled() || next == self.get {
            self.info |= if self.enabled() {
                info::OVERFLOW
            } else {
                info::FAULT_WHILE_BUFFER_DISABLED
            };
            self.overflows += 1;
            return Report::Overflow;
        }
        e.valid = true;
        let bytes = e.encode();
        let Some(at) = self
            .address()
            .checked_add(u64::from(self.put) * ENTRY_BYTES)
        else {
            self.bad_writes += 1;
            self.info |= info::WRITE_NACK;
            return Report::BadBuffer;
        };
        if !write(at, &bytes) {
            self.bad_writes += 1;
            self.info |= info::WRITE_NACK;
            return Report::BadBuffer;
        }
        let index = self.put;
        self.put = next;
        self.written += 1;
        Report::Written(index)
    }

    /// [`FaultRing::report`] into physical video memory at the buffer address (for tests
    /// and for memories without a BAR2 in front).
    pub fn report_to<M: GpuMemory>(&mut self, mem: &mut M, e: FaultEntry) -> Report {
        self.report(|a, b| mem.write_bytes(Target::Video, a, b).is_ok(), e)
    }
}

impl FaultRing {
    /// Back to the reset state, keeping the entry count.
    pub fn reset(&mut self) {
        *self = FaultRing::new(self.entries);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::fault::entry::{AccessType, FaultType};
    use crate::mem::{Memory, VidMem};
    use vm_memory::{GuestAddress, GuestMemoryMmap};

    fn fault(addr: u64) -> FaultEntry {
        FaultEntry {
            inst: 0x2000,
            inst_aperture: 0,
            addr,
            timestamp: addr,
            engine: 0,
            valid: false,
            gpc: 0,
            hub: false,
            access: AccessType::Read,
            client: 0,
            fault_type: FaultType::Pte,
        }
    }

    fn read_entry(vid: &VidMem, base: u64, i: u32) -> FaultEntry {
        let mut b = [0u8; 32];
        for k in 0..4 {
            let w = vid.read_u64(base + u64::from(i) * 32 + 8 * k).unwrap();
            b[8 * k as usize..8 * k as usize + 8].copy_from_slice(&w.to_le_bytes());
        }
        FaultEntry::decode(&b)
    }

    #[test]
    fn wrap_overflow_and_get_put_as_the_driver_sees_them() {
        let mut vid = VidMem::new(1 << 20);
        let ram = GuestMemoryMmap::<()>::from_ranges(&[(GuestAddress(0), 0x1000)]).unwrap();
        let mut r = FaultRing::new(4);
        assert_eq!(r.read32(regs::SIZE), Some(4));
        // Disabled: a fault is an overflow, never written.
        {
            let mut m = Memory {
                vid: &mut vid,
                sys: &ram,
            };
            assert_eq!(r.report_to(&mut m, fault(1)), Report::Overflow);
        }
        assert_eq!(
            r.read32(regs::INFO),
            Some(info::FAULT_WHILE_BUFFER_DISABLED)
        );
        r.write32(regs::INFO, info::FAULT_WHILE_BUFFER_DISABLED);
        assert_eq!(r.read32(regs::INFO), Some(0), "write 1 clears");
        r.write32(regs::ADDR_HI, 0);
        r.write32(regs::ADDR_LO, 0x8000 | 1);
        assert!(r.enabled() && !r.pending());
        let mut m = Memory {
            vid: &mut vid,
            sys: &ram,
        };
        // Three fit (one slot stays empty to tell full from empty).
        for i in 0..3 {
            assert_eq!(
                r.report_to(&mut m, fault(0x1000 * (i + 1))),
                Report::Written(i as u32)
            );
        }
        assert_eq!(r.info(), 0, "not full yet");
        assert_eq!(r.report_to(&mut m, fault(0x9000)), Report::Overflow);
        assert_eq!(r.overflows(), 2);
        assert_eq!(r.info(), info::OVERFLOW);
        // Writing 0 leaves it; writing the bit clears it (the driver's acknowledge).
        r.write32(regs::INFO, 0);
        assert_eq!(r.info(), info::OVERFLOW);
        r.write32(regs::INFO, info::OVERFLOW);
        assert_eq!(r.info(), 0);
        assert!(r.pending());
        assert_eq!(r.read32(regs::PUT), Some(3));
        // The driver reads two, clears VALID and moves GET; the GPU wraps around.
        r.write32(regs::GET, 2);
        assert_eq!(r.report_to(&mut m, fault(0xa000)), Report::Written(3));
        assert_eq!(r.report_to(&mut m, fault(0xb000)), Report::Written(0));
        assert_eq!(r.read32(regs::PUT), Some(1));
        let e = read_entry(&vid, 0x8000, 0);
        assert!(e.valid);
        assert_eq!(e.addr, 0xb000);
        r.write32(regs::GET, 1);
        assert!(!r.pending());
        // A GET beyond the ring wraps instead of breaking the index math.
        r.write32(regs::GET, 0xffff_ffff);
        assert!(r.read32(regs::GET).unwrap() < 4);
    }

    #[test]
    fn a_bad_buffer_address_is_counted_not_fatal() {
        let mut vid = VidMem::new(1 << 20);
        let ram = GuestMemoryMmap::<()>::from_ranges(&[(GuestAddress(0), 0x1000)]).unwrap();
        let mut r = FaultRing::new(8);
        r.write32(regs::ADDR_HI, 0xffff_ffff);
        r.write32(regs::ADDR_LO, 0xffff_f001);
        let mut m = Memory {
            vid: &mut vid,
            sys: &ram,
        };
        assert_eq!(r.report_to(&mut m, fault(1)), Report::BadBuffer);
        assert_eq!(r.bad_writes(), 1);
        assert_eq!(r.info(), info::WRITE_NACK);
        assert_eq!(r.read32(regs::PUT), Some(0));
        assert!(!r.write32(0x1234, 0));
        assert_eq!(r.read32(0x1234), None);
    }
}
