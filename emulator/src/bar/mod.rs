//! PBUS BAR binding: which address space the PCI BAR1 and BAR3 apertures show.
//!
//! nouveau calls PCI BAR3 "BAR2" (the instmem aperture). Each is bound by writing a BLOCK
//! register (NVIDIA `dev_bus.h`, gp100 and later: `NV_PBUS_BAR1_BLOCK` 0x1704,
//! `NV_PBUS_BAR2_BLOCK` 0x1714; PTR 27:0 = instance block address >> 12, TARGET 29:28 =
//! 0 video memory / 2 system coherent / 3 system non-coherent, MODE 31 = 0 physical /
//! 1 virtual). In virtual mode the aperture offset is a virtual address of the address space
//! whose page directory the instance block names (+0x200 PDB word, +0x208 VA limit − 1,
//! nouveau `gf100_vmm_join_`), translated by the MMU. In physical mode (the reset value) the
//! aperture is a window onto the target memory starting at PTR << 12 (our reading of
//! MODE_PHYSICAL; nouveau never uses it).
//!
//! Binding completes when the BLOCK register is written: the model reads the instance block
//! then, as the hardware latches it at bind time, so `NV_PBUS_BIND_STATUS` (0x1710: bit 0
//! BAR1 pending, bit 1 BAR1 outstanding, bit 2 BAR2 pending, bit 3 BAR2 outstanding; polled
//! by nouveau's `gm107_bar_bar1_wait`/`bar2_wait`) reads 0 afterwards because there is
//! nothing left to do, not because it is wired to 0.

use crate::mem::{GpuMemory, Target};
use crate::mmu::walk::Pdb;

/// Register offsets.
pub mod regs {
    /// `NV_PBUS_BAR1_BLOCK`.
    pub const BAR1_BLOCK: u32 = 0x001704;
    /// `NV_PBUS_BIND_STATUS`.
    pub const BIND_STATUS: u32 = 0x001710;
    /// `NV_PBUS_BAR2_BLOCK`.
    pub const BAR2_BLOCK: u32 = 0x001714;
}

use crate::hw::ramin;
pub use crate::hw::ramin::{INST_LIMIT, INST_PDB};

/// Which aperture.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Aperture {
    /// PCI BAR1: the VRAM aperture.
    Bar1,
    /// PCI BAR3, nouveau's "BAR2": the instmem aperture.
    Bar2,
}

/// A BLOCK register's memory target field.
pub fn block_target(v: u32) -> Option<Target> {
    Target::from_target_field(u64::from(ramin::TARGET.get32(v)))
}

/// What an aperture shows.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Binding {
    /// A window onto physical memory.
    Physical {
        /// Memory.
        target: Target,
        /// Address of aperture offset 0.
        base: u64,
    },
    /// An address space, translated by the MMU.
    Virtual {
        /// Its page directory.
        pdb: Pdb,
        /// Highest valid virtual address.
        limit: u64,
        /// The instance block's address.
        inst: u64,
    },
    /// Virtual mode, but the instance block could not be used (unreadable, or a PDB the MMU
    /// cannot walk): every access faults.
    Broken {
        /// Why.
        why: &'static str,
    },
}

/// The two bindings and their registers.
#[derive(Debug, Clone)]
pub struct Bars {
    bar1_block: u32,
    bar2_block: u32,
    bar1: Binding,
    bar2: Binding,
    binds: u64,
}

impl Default for Bars {
    fn default() -> Self {
        Self::new()
    }
}

impl Bars {
    /// Reset state: both BLOCK registers 0 (physical mode, video memory from address 0).
    pub fn new() -> Self {
        let phys = Binding::Physical {
            target: Target::Video,
            base: 0,
        };
        Bars {
            bar1_block: 0,
            bar2_block: 0,
            bar1: phys,
            bar2: phys,
            binds: 0,
        }
    }

    /// What `ap` shows now.
    pub fn binding(&self, ap: Aperture) -> Binding {
        match ap {
            Aperture::Bar1 => self.bar1,
            Aperture::Bar2 => self.bar2,
        }
    }

    /// Bind operations processed since reset.
    pub fn binds(&self) -> u64 {
        self.binds
    }

    /// Whether `offset` is one of the unit's registers.
    pub fn contains(offset: u32) -> bool {
        Self::ranges().iter().any(|r| r.contains(&offset))
    }

    /// The unit's registers as BAR0 ranges (for the device's map).
    pub fn ranges() -> Vec<std::ops::Range<u32>> {
        [regs::BAR1_BLOCK, regs::BIND_STATUS, regs::BAR2_BLOCK]
            .iter()
            .map(|&o| o..o + 4)
            .collect()
    }

    /// A register read.
    pub fn read32(&self, offset: u32) -> Option<u32> {
        Some(match offset {
            regs::BAR1_BLOCK => self.bar1_block,
            regs::BAR2_BLOCK => self.bar2_block,
            // Binds complete inside the BLOCK write: nothing is ever pending afterwards.
            regs::BIND_STATUS => 0,
            _ => return None,
        })
    }

    /// A register write; BLOCK writes bind, reading the instance block from `mem`.
    pub fn write32<M: GpuMemory + ?Sized>(&mut self, offset: u32, value: u32, mem: &M) -> bool {
        let ap = match offset {
            regs::BAR1_BLOCK => Aperture::Bar1,
            regs::BAR2_BLOCK => Aperture::Bar2,
            regs::BIND_STATUS => return true, // read-only status
            _ => return false,
        };
        let b = Self::bind(value, mem);
        self.binds += 1;
        match ap {
            Aperture::Bar1 => {
                self.bar1_block = value;
                self.bar1 = b;
            }
            Aperture::Bar2 => {
                self.bar2_block = value;
                self.bar2 = b;
            }
        }
        true
    }

    fn bind<M: GpuMemory + ?Sized>(value: u32, mem: &M) -> Binding {
        let addr = ramin::ptr_address(value);
        let Some(target) = block_target(value) else {
            return Binding::Broken {
                why: "BLOCK target 1 is not a memory",
            };
        };
        if !ramin::BIND.is_set(u64::from(value)) {
            return Binding::Physical { target, base: addr };
        }
        let (Ok(pdb_word), Ok(limit)) = (
            mem.read_u64(target, addr + INST_PDB),
            mem.read_u64(target, addr + INST_LIMIT),
        ) else {
            return Binding::Broken {
                why: "instance block outside memory",
            };
        };
        match Pdb::from_instance_word(pdb_word) {
            Some(pdb) => Binding::Virtual {
                pdb,
                limit,
                inst: addr,
            },
            None => Binding::Broken {
                why: "instance block PDB is not a VER2 page directory in memory",
            },
        }
    }

    /// Back to the reset state.
    pub fn reset(&mut self) {
        *self = Self::new();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::mem::VidMem;

    #[test]
    fn virtual_bind_latches_the_instance_block_at_bind_time() {
        let mut vid = VidMem::new(1 << 24);
        // Instance block at 0x20000: PDB word (VRAM, VER2, PD3 at 0x30000), limit 32 MiB - 1.
        vid.write_u64(0x20000 + INST_PDB, 0x30000 | 1 << 10)
            .unwrap();
        vid.write_u64(0x20000 + INST_LIMIT, (32 << 20) - 1).unwrap();
        let mut b = Bars::new();
        assert!(b.write32(regs::BAR2_BLOCK, 0x8000_0000 | 0x20, &vid));
        assert_eq!(b.read32(regs::BAR2_BLOCK), Some(0x8000_0020));
        assert_eq!(b.read32(regs::BIND_STATUS), Some(0));
        let want = Binding::Virtual {
            pdb: Pdb {
                target: Target::Video,
                addr: 0x30000,
            },
            limit: (32 << 20) - 1,
            inst: 0x20000,
        };
        assert_eq!(b.binding(Aperture::Bar2), want);
        // Changing the instance block afterwards does not move a bound aperture.
        vid.write_u64(0x20000 + INST_PDB, 0x40000 | 1 << 10)
            .unwrap();
        assert_eq!(b.binding(Aperture::Bar2), want);
        assert_eq!(
            b.binding(Aperture::Bar1),
            Binding::Physical {
                target: Target::Video,
                base: 0
            }
        );
        assert_eq!(b.binds(), 1);
    }

    #[test]
    fn garbage_blocks_bind_as_broken_not_panics() {
        let vid = VidMem::new(1 << 20);
        let mut b = Bars::new();
        // Instance block past the end of memory.
        b.write32(regs::BAR1_BLOCK, 0x8fff_ffff, &vid);
        assert!(matches!(b.binding(Aperture::Bar1), Binding::Broken { .. }));
        // A zeroed instance block: no VER2 bit.
        b.write32(regs::BAR1_BLOCK, 0x8000_0001, &vid);
        assert!(matches!(b.binding(Aperture::Bar1), Binding::Broken { .. }));
        // Target 1 is no memory.
        b.write32(regs::BAR1_BLOCK, 0x9000_0001, &vid);
        assert!(matches!(b.binding(Aperture::Bar1), Binding::Broken { .. }));
        // Physical mode with a system target.
        b.write32(regs::BAR1_BLOCK, 0x2000_0010, &vid);
        assert_eq!(
            b.binding(Aperture::Bar1),
            Binding::Physical {
                target: Target::SysCoherent,
                base: 0x10000
            }
        );
        assert!(!b.write32(0x1708, 0, &vid));
        b.reset();
        assert_eq!(b.read32(regs::BAR1_BLOCK), Some(0));
    }
}
