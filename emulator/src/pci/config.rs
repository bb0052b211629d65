//! Type-0 PCI configuration space of the emulated Tesla P100 (GP100).
//!
//! Layout facts (PCI Local Bus Specification 3.0 §6.1-6.2, §6.7-6.8; PCI Bus
//! Power Management Interface Specification 1.2 §3.2):
//! - IDs: vendor 0x10de (NVIDIA), device 0x15f8 (Tesla P100 PCIe 16 GB),
//!   class 0x030200 (display controller, 3D), revision 0xa1 (GP100 A01, the low
//!   byte of PMC_BOOT_0). Subsystem 0x10de:0x118f as P100 PCIe boards report.
//! - BARs as NVIDIA boards lay them out: BAR0 32-bit non-prefetchable registers
//!   (16 MiB); BAR1 64-bit prefetchable VRAM aperture (BAR1+BAR2); BAR3 64-bit
//!   prefetchable instmem aperture, nouveau's "BAR2" (BAR3+BAR4). No I/O BAR.
//! - Capabilities: power management at 0x60, MSI (64-bit address, one vector,
//!   no per-vector masking) at 0x68, the offsets NVIDIA boards use.
//! - Interrupt pin A.
//!
//! Sizing works the way hardware does: each byte has a write mask; a BAR's low
//! address bits and type bits are read-only, so writing all-ones reads back
//! `!(size - 1) | flags`.

/// Bytes of conventional config space we model (no extended space: the
/// function sits on a conventional PCI bus in QEMU's `pc` machine).
pub const CONFIG_SPACE_SIZE: usize = 256;

/// NVIDIA's PCI vendor id.
pub const VENDOR_NVIDIA: u16 = 0x10de;
/// Tesla P100 PCIe 16 GB.
pub const DEVICE_P100_PCIE_16G: u16 = 0x15f8;
/// Subsystem id of P100 PCIe 16 GB boards.
pub const SUBSYSTEM_P100_PCIE_16G: u16 = 0x118f;
/// Class code: base 0x03 display, sub 0x02 3D controller, prog-if 0.
pub const CLASS_3D_CONTROLLER: u32 = 0x03_02_00;
/// Revision: GP100 A01.
pub const REVISION_A1: u8 = 0xa1;

// Register offsets (PCI LB 3.0 §6.1).
const VENDOR_ID: usize = 0x00;
const DEVICE_ID: usize = 0x02;
const COMMAND: usize = 0x04;
const STATUS: usize = 0x06;
const REVISION: usize = 0x08;
const CLASS_PROG_IF: usize = 0x09;
const HEADER_TYPE: usize = 0x0e;
const BAR_BASE: usize = 0x10;
const SUBSYSTEM_VENDOR_ID: usize = 0x2c;
const SUBSYSTEM_ID: usize = 0x2e;
const ROM_BAR: usize = 0x30;
const CAP_POINTER: usize = 0x34;
const INTERRUPT_LINE: usize = 0x3c;
const INTERRUPT_PIN: usize = 0x3d;

/// Power-management capability offset.
pub const CAP_PM: usize = 0x60;
/// NVIDIA's ROM-shadow control dword (vendor-specific config space, below the capabilities).
pub const ROM_SHADOW: usize = 0x50;
/// MSI capability offset.
pub const CAP_MSI: usize = 0x68;

const CAP_ID_PM: u8 = 0x01;
const CAP_ID_MSI: u8 = 0x05;

/// COMMAND bits the function implements (PCI LB 3.0 §6.2.2): I/O space, memory
/// space, bus master, parity error response, SERR#, interrupt disable.
const COMMAND_WRITABLE: u16 = 0x0001 | 0x0002 | 0x0004 | 0x0040 | 0x0100 | 0x0400;
/// STATUS bit 4: the capabilities list exists.
const STATUS_CAP_LIST: u16 = 1 << 4;
/// STATUS bit 3: INTx is asserted (read-only, follows the function's line).
const STATUS_INTERRUPT: u16 = 1 << 3;
/// STATUS error bits are write-one-to-clear (bits 15:11, 8).
const STATUS_RW1C: u16 = 0xf900;

/// BAR flag bits: memory, 64-bit type, prefetchable (PCI LB 3.0 §6.2.5.1).
const BAR_MEM64_PREFETCH: u32 = 0b1100;

/// Sizes of the three memory BARs. Sizes are powers of two.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BarLayout {
    /// BAR0: registers.
    pub bar0: u64,
    /// BAR1: VRAM aperture.
    pub bar1: u64,
    /// BAR3: nouveau's BAR2 (instmem) aperture.
    pub bar3: u64,
}

impl Default for BarLayout {
    /// 16 MiB registers (fixed by the architecture), a 256 MiB VRAM aperture
    /// (what non-"large BAR" boards expose) and the 32 MiB instmem aperture.
    fn default() -> Self {
        BarLayout {
            bar0: 16 << 20,
            bar1: 256 << 20,
            bar3: 32 << 20,
        }
    }
}

/// A BAR layout [`ConfigSpace::new`] cannot build (sizes from a trace header or a command
/// line are checked with [`BarLayout::check`] first).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum BarLayoutError {
    /// A size that is not a power of two of at least 4 KiB (PCI LB 3.0 §6.2.5.1: a BAR
    /// decodes a naturally aligned power-of-two range; the model's pages are 4 KiB).
    #[error("BAR{bar} size {size:#x} is not a power of two of at least 4 KiB")]
    NotPow2 { bar: u8, size: u64 },
    /// BAR0 is a 32-bit BAR: at most 2 GiB.
    #[error("BAR0 size {0:#x} does not fit a 32-bit BAR")]
    Bar0TooLarge(u64),
    /// Larger than [`MAX_BAR_SIZE`].
    #[error("BAR{bar} size {size:#x} is larger than the model's bound of 64 GiB")]
    TooLarge { bar: u8, size: u64 },
}

/// The largest BAR1/BAR3 the model builds (what `gp100emu serve --bar1-mib` accepts).
pub const MAX_BAR_SIZE: u64 = 64 << 30;

impl BarLayout {
    /// Whether [`ConfigSpace::new`] accepts this layout.
    pub fn check(&self) -> Result<(), BarLayoutError> {
        for (bar, size) in [(0, self.bar0), (1, self.bar1), (3, self.bar3)] {
            if !size.is_power_of_two() || size < 4096 {
                return Err(BarLayoutError::NotPow2 { bar, size });
            }
        }
        if self.bar0 > 1 << 31 {
            return Err(BarLayoutError::Bar0TooLarge(self.bar0));
        }
        for (bar, size) in [(1, self.bar1), (3, self.bar3)] {
            if size > MAX_BAR_SIZE {
                return Err(BarLayoutError::TooLarge { bar, size });
            }
        }
        Ok(())
    }

    /// Size of the region behind VFIO BAR index `index` (0 where none).
    pub fn size_of(&self, index: u32) -> u64 {
        match index {
            0 => self.bar0,
            1 => self.bar1,
            3 => self.bar3,
            _ => 0,
        }
    }
}

/// Config space state: the bytes and, per byte, which bits the guest may write.
#[derive(Clone)]
pub struct ConfigSpace {
    bytes: [u8; CONFIG_SPACE_SIZE],
    writable: [u8; CONFIG_SPACE_SIZE],
    layout: BarLayout,
}

impl std::fmt::Debug for ConfigSpace {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ConfigSpace")
            .field("layout", &self.layout)
            .finish_non_exhaustive()
    }
}

impl ConfigSpace {
    /// Builds config space in its reset state for the given BAR sizes.
    ///
    /// # Panics
    /// If a BAR size is not a power of two of at least 4 KiB: a programming
    /// error of the caller, never guest input.
    pub fn new(layout: BarLayout) -> Self {
        if let Err(e) = layout.check() {
            panic!("{e}");
        }
        let mut c = ConfigSpace {
            bytes: [0; CONFIG_SPACE_SIZE],
            writable: [0; CONFIG_SPACE_SIZE],
            layout,
        };
        c.reset();
        c
    }

    /// The BAR sizes this function advertises.
    pub fn layout(&self) -> BarLayout {
        self.layout
    }

    /// Back to the power-on state (BARs unassigned, decode off).
    pub fn reset(&mut self) {
        self.bytes = [0; CONFIG_SPACE_SIZE];
        self.writable = [0; CONFIG_SPACE_SIZE];
        self.put16(VENDOR_ID, VENDOR_NVIDIA);
        self.put16(DEVICE_ID, DEVICE_P100_PCIE_16G);
        self.put16(STATUS, STATUS_CAP_LIST);
        self.bytes[REVISION] = REVISION_A1;
        self.put_class(CLASS_3D_CONTROLLER);
        self.bytes[HEADER_TYPE] = 0x00;
        self.put16(SUBSYSTEM_VENDOR_ID, VENDOR_NVIDIA);
        self.put16(SUBSYSTEM_ID, SUBSYSTEM_P100_PCIE_16G);
        self.bytes[CAP_POINTER] = CAP_PM as u8;
        self.bytes[INTERRUPT_PIN] = 1;

        self.mask16(COMMAND, COMMAND_WRITABLE);
        self.writable[INTERRUPT_LINE] = 0xff;
        // Cache line size and latency timer are read/write scratch (§6.2.4).
        self.writable[0x0c] = 0xff;
        self.writable[0x0d] = 0xff;

        // BAR0: 32-bit memory, not prefetchable.
        self.mask32(BAR_BASE, !(self.layout.bar0 as u32 - 1));
        // BAR1 (+BAR2) and BAR3 (+BAR4): 64-bit prefetchable.
        for (reg, size) in [
            (BAR_BASE + 4, self.layout.bar1),
            (BAR_BASE + 12, self.layout.bar3),
        ] {
            let mask = !(size - 1);
            self.put32(reg, BAR_MEM64_PREFETCH);
            self.mask32(reg, mask as u32 & !0xf);
            self.mask32(reg + 4, (mask >> 32) as u32);
        }
        // NVIDIA's vendor-specific ROM-shadow control: bit 0 of the dword at 0x50
        // (nouveau `nvkm_pci_rom_shadow` clears it before reading the PROM window and sets it
        // after; the model serves the same ROM either way, so it is plain storage).
        self.mask32(ROM_SHADOW, 0x1);
        self.put32(ROM_SHADOW, 0x1);
        // No expansion ROM yet: the ROM BAR reads zero and is not writable
        // (a function without a ROM, §6.2.5.2).
        let _ = ROM_BAR;

        // Power management capability, version 3; PMCSR power state writable.
        self.bytes[CAP_PM] = CAP_ID_PM;
        self.bytes[CAP_PM + 1] = CAP_MSI as u8;
        self.put16(CAP_PM + 2, 0x0003);
        self.mask16(CAP_PM + 4, 0x0003);

        // MSI: 64-bit address capable, one vector requested; enable, multiple
        // message enable, address and data writable.
        self.bytes[CAP_MSI] = CAP_ID_MSI;
        self.bytes[CAP_MSI + 1] = 0;
        self.put16(CAP_MSI + 2, 1 << 7);
        self.mask16(CAP_MSI + 2, 0x0071);
        self.mask32(CAP_MSI + 4, 0xffff_fffc);
        self.mask32(CAP_MSI + 8, 0xffff_ffff);
        self.mask16(CAP_MSI + 12, 0xffff);
    }

    fn put16(&mut self, at: usize, v: u16) {
        self.bytes[at..at + 2].copy_from_slice(&v.to_le_bytes());
    }
    fn put32(&mut self, at: usize, v: u32) {
        self.bytes[at..at + 4].copy_from_slice(&v.to_le_bytes());
    }
    fn put_class(&mut self, class: u32) {
        self.bytes[CLASS_PROG_IF..CLASS_PROG_IF + 3].copy_from_slice(&class.to_le_bytes()[..3]);
    }
    fn mask16(&mut self, at: usize, m: u16) {
        self.writable[at..at + 2].copy_from_slice(&m.to_le_bytes());
    }
    fn mask32(&mut self, at: usize, m: u32) {
        self.writable[at..at + 4].copy_from_slice(&m.to_le_bytes());
    }

    /// Reads `data.len()` bytes at `offset`. Bytes beyond conventional config
    /// space read as zero (no extended capabilities). `intx_asserted` feeds the
    /// read-only interrupt-status bit.
    pub fn read(&self, offset: u64, data: &mut [u8], intx_asserted: bool) {
        for (i, out) in data.iter_mut().enumerate() {
            let at = offset.saturating_add(i as u64);
            *out = if at < CONFIG_SPACE_SIZE as u64 {
                let mut b = self.bytes[at as usize];
                if at as usize == STATUS && intx_asserted {
                    b |= STATUS_INTERRUPT as u8;
                }
                b
            } else {
                0
            };
        }
    }

    /// Writes `data` at `offset`, honouring each byte's write mask and the
    /// write-one-to-clear status bits. Writes beyond config space are dropped.
    pub fn write(&mut self, offset: u64, data: &[u8]) {
        for (i, &v) in data.iter().enumerate() {
            let Some(at) = offset
                .checked_add(i as u64)
                .filter(|&a| a < CONFIG_SPACE_SIZE as u64)
            else {
                continue;
            };
            let at = at as usize;
            if at == STATUS || at == STATUS + 1 {
                let rw1c = STATUS_RW1C.to_le_bytes()[at - STATUS];
                self.bytes[at] &= !(v & rw1c);
                continue;
            }
            let m = self.writable[at];
            self.bytes[at] = (self.bytes[at] & !m) | (v & m);
        }
    }

    /// A 32-bit little-endian read of config space (for tests and callers that
    /// want a register rather than bytes).
    pub fn read32(&self, offset: u64) -> u32 {
        let mut b = [0u8; 4];
        self.read(offset, &mut b, false);
        u32::from_le_bytes(b)
    }

    /// COMMAND register.
    pub fn command(&self) -> u16 {
        u16::from_le_bytes([self.bytes[COMMAND], self.bytes[COMMAND + 1]])
    }

    /// Whether COMMAND's interrupt-disable bit masks INTx.
    pub fn intx_disabled(&self) -> bool {
        self.command() & 0x0400 != 0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cfg() -> ConfigSpace {
        ConfigSpace::new(BarLayout::default())
    }

    #[test]
    fn identity_registers() {
        let c = cfg();
        assert_eq!(c.read32(0x00), 0x15f8_10de);
        assert_eq!(c.read32(0x08), 0x0302_00a1);
        assert_eq!(c.read32(0x2c), 0x118f_10de);
        assert_eq!(c.read32(0x3c) >> 8 & 0xff, 1, "interrupt pin A");
        assert_eq!(c.read32(0x04) >> 16 & 0x10, 0x10, "capability list");
    }

    #[test]
    fn bar_sizing_reads_back_size_masks() {
        let mut c = cfg();
        for bar in 0..6u64 {
            c.write(0x10 + 4 * bar, &[0xff; 4]);
        }
        assert_eq!(
            c.read32(0x10),
            0xff00_0000,
            "BAR0 16 MiB, 32-bit, non-prefetchable"
        );
        assert_eq!(
            c.read32(0x14),
            0xf000_000c,
            "BAR1 256 MiB, 64-bit prefetchable"
        );
        assert_eq!(c.read32(0x18), 0xffff_ffff, "BAR1 upper half");
        assert_eq!(
            c.read32(0x1c),
            0xfe00_000c,
            "BAR3 32 MiB, 64-bit prefetchable"
        );
        assert_eq!(c.read32(0x20), 0xffff_ffff);
        assert_eq!(c.read32(0x24), 0, "no BAR5");
        assert_eq!(c.read32(0x30), 0, "no ROM BAR yet");
    }

    #[test]
    fn large_bar1_sizes_the_upper_dword() {
        let mut c = ConfigSpace::new(BarLayout {
            bar1: 16 << 30,
            ..BarLayout::default()
        });
        c.write(0x14, &[0xff; 4]);
        c.write(0x18, &[0xff; 4]);
        assert_eq!(c.read32(0x14), 0x0000_000c);
        assert_eq!(c.read32(0x18), 0xffff_fffc);
    }

    #[test]
    fn bar_assignment_keeps_flag_bits() {
        let mut c = cfg();
        c.write(0x14, &0xe000_0000u32.to_le_bytes());
        assert_eq!(c.read32(0x14), 0xe000_000c);
        c.write(0x10, &0xfb12_3456u32.to_le_bytes());
        assert_eq!(c.read32(0x10), 0xfb00_0000);
    }

    #[test]
    fn command_and_status_semantics() {
        let mut c = cfg();
        c.write(0x04, &0xffffu16.to_le_bytes());
        assert_eq!(c.command(), COMMAND_WRITABLE);
        assert!(c.intx_disabled());
        let mut s = [0u8; 2];
        c.read(0x06, &mut s, true);
        assert_eq!(u16::from_le_bytes(s) & STATUS_INTERRUPT, STATUS_INTERRUPT);
        c.write(0x06, &0xffffu16.to_le_bytes());
        c.read(0x06, &mut s, false);
        assert_eq!(
            u16::from_le_bytes(s),
            STATUS_CAP_LIST,
            "RO bits survive a write of ones"
        );
    }

    #[test]
    fn capability_chain_is_pm_then_msi_then_end() {
        let c = cfg();
        let first = c.read32(0x34) as u64 & 0xff;
        assert_eq!(first, 0x60);
        assert_eq!(c.read32(first) & 0xffff, 0x6801);
        assert_eq!(c.read32(0x68) & 0xffff, 0x0005);
        assert_eq!(c.read32(0x68) >> 16, 0x0080, "64-bit MSI, one vector");
    }

    #[test]
    fn identity_is_read_only_and_reset_restores() {
        let mut c = cfg();
        c.write(0x00, &[0; 4]);
        c.write(0x3c, &[11]);
        c.write(0x10, &0xfb00_0000u32.to_le_bytes());
        assert_eq!(c.read32(0x00), 0x15f8_10de);
        assert_eq!(c.read32(0x3c) & 0xff, 11);
        c.reset();
        assert_eq!(c.read32(0x3c) & 0xff, 0);
        assert_eq!(c.read32(0x10), 0);
    }

    #[test]
    fn out_of_range_accesses_are_harmless() {
        let mut c = cfg();
        let mut b = [0xaau8; 8];
        c.read(0xfc, &mut b, false);
        assert_eq!(&b[4..], &[0; 4]);
        c.read(u64::MAX - 2, &mut b, false);
        assert_eq!(b, [0; 8]);
        c.write(u64::MAX - 1, &[1, 2, 3, 4]);
        c.write(0x1000, &[1]);
        assert_eq!(c.read32(0), 0x15f8_10de);
    }

    /// Issue 14: a trace header's bar1_size reached the assert here and replay panicked.
    /// Every bad size is an error from `check` now.
    #[test]
    fn bad_layouts_are_errors_not_panics() {
        let with = |bar1| BarLayout {
            bar1,
            ..BarLayout::default()
        };
        for bad in [0, 3, 4095, 12345, 2048, u64::MAX, 1 << 63, MAX_BAR_SIZE * 2] {
            assert!(with(bad).check().is_err(), "{bad:#x}");
        }
        assert!(BarLayout {
            bar0: 1 << 32,
            ..BarLayout::default()
        }
        .check()
        .is_err());
        for good in [4096, 256 << 20, MAX_BAR_SIZE] {
            assert_eq!(with(good).check(), Ok(()));
        }
        let e = with(12345).check().unwrap_err();
        assert!(e.to_string().contains("BAR1 size 0x3039"), "{e}");
    }
}
