//! The version-2 page-table geometry, defined once for the walker and the PTE checker:
//! which VA bits index each level, how many entries a table has, how large an entry is.
//!
//! Source: gp100-facts.md (open-gpu-kernel-modules gp100 `dev_mmu.h` `NV_MMU_VER2_*`; nouveau
//! 6.12 `nvkm/subdev/mmu/vmmgp100.c` `gp100_vmm_desc_12` / `gp100_vmm_desc_16`): PD3 indexes
//! VA 48:47 (4 entries), PD2 46:38 and PD1 37:29 (512 each), all 8-byte PDEs; PD0 28:21
//! (256 dual 16-byte entries, or 2 MiB PTEs); a big-page table 20:16 (32 PTEs of 64 KiB)
//! and a small-page table 20:12 (512 PTEs of 4 KiB), 8 bytes each.

use super::walk::Level;

/// One directory level above PD0.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DirLevel {
    /// Which level.
    pub level: Level,
    /// The lowest VA bit of its index.
    pub shift: u32,
    /// Entries in its table.
    pub entries: u64,
}

/// PD3, PD2, PD1, top first.
pub const DIRS: [DirLevel; 3] = [
    DirLevel {
        level: Level::Pd3,
        shift: 47,
        entries: 4,
    },
    DirLevel {
        level: Level::Pd2,
        shift: 38,
        entries: 512,
    },
    DirLevel {
        level: Level::Pd1,
        shift: 29,
        entries: 512,
    },
];

/// Bytes of a PDE (PD3..PD1) and of a PTE.
pub const ENTRY_BYTES: u64 = 8;
/// PD0's index shift (a PD0 entry covers 2 MiB).
pub const PD0_SHIFT: u32 = 21;
/// PD0 entries.
pub const PD0_ENTRIES: u64 = 256;
/// Bytes of a PD0 (dual) entry.
pub const PD0_ENTRY_BYTES: u64 = 16;
/// A big-page table's index shift (64 KiB pages).
pub const BIG_SHIFT: u32 = 16;
/// Entries of a big-page table.
pub const BIG_ENTRIES: u64 = 32;
/// A small-page table's index shift (4 KiB pages).
pub const SMALL_SHIFT: u32 = 12;
/// Entries of a small-page table.
pub const SMALL_ENTRIES: u64 = 512;

/// The index of `va` in a table whose index starts at bit `shift` and has `entries` slots.
pub const fn index(va: u64, shift: u32, entries: u64) -> u64 {
    (va >> shift) & (entries - 1)
}

/// Byte offset of `va`'s slot in a table of this directory level.
pub const fn dir_slot(d: &DirLevel, va: u64) -> u64 {
    index(va, d.shift, d.entries) * ENTRY_BYTES
}

/// Byte offset of `va`'s dual entry in its PD0.
pub const fn pd0_slot(va: u64) -> u64 {
    index(va, PD0_SHIFT, PD0_ENTRIES) * PD0_ENTRY_BYTES
}

/// Byte offset of `va`'s PTE in its big-page table.
pub const fn big_slot(va: u64) -> u64 {
    index(va, BIG_SHIFT, BIG_ENTRIES) * ENTRY_BYTES
}

/// Byte offset of `va`'s PTE in its small-page table.
pub const fn small_slot(va: u64) -> u64 {
    index(va, SMALL_SHIFT, SMALL_ENTRIES) * ENTRY_BYTES
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_levels_cover_the_49_bit_va_without_gaps() {
        let mut bits = super::super::walk::VA_BITS;
        for d in DIRS {
            assert_eq!(d.shift + d.entries.trailing_zeros(), bits, "{:?}", d.level);
            bits = d.shift;
        }
        assert_eq!(PD0_SHIFT + PD0_ENTRIES.trailing_zeros(), bits);
        assert_eq!(BIG_SHIFT + BIG_ENTRIES.trailing_zeros(), PD0_SHIFT);
        assert_eq!(SMALL_SHIFT + SMALL_ENTRIES.trailing_zeros(), PD0_SHIFT);
        let va = 0x1_2345_6789_a000u64;
        assert_eq!(dir_slot(&DIRS[0], va), ((va >> 47) & 3) * 8);
        assert_eq!(pd0_slot(va), ((va >> 21) & 0xff) * 16);
        assert_eq!(big_slot(va), ((va >> 16) & 0x1f) * 8);
        assert_eq!(small_slot(va), ((va >> 12) & 0x1ff) * 8);
    }
}
