//! The guest CPU's page tables, walked in guest RAM: what a process's virtual address maps
//! to, with the permissions the checker compares against the GPU's PTEs.
//!
//! x86-64 paging as the Intel SDM vol. 3A §4.5 describes it: CR3 (here the physical address
//! of the process's top-level table, `__pa(mm->pgd)`) points at a PML4 (4-level paging) or a
//! PML5 (5-level, LA57); each level indexes 9 bits of the address (PML5 56:48, PML4 47:39,
//! PDPT 38:30, PD 29:21, PT 20:12). Entry bits: P 0, R/W 1, U/S 2, PS 7 (a 1 GiB page in a
//! PDPTE, 2 MiB in a PDE), address 51:12 (51:30 and 51:21 for the large pages, whose bit 12
//! is PAT), XD 63. A page is writable only if R/W is set at every level.
//!
//! The walk is at most five reads, so no table contents can make it loop; a table outside
//! guest RAM ends it with an error. A [`WalkCache`] lets the walks of one checker scan share
//! the upper-level entries they have in common.

use crate::mem::{MemError, PhysMem};

/// Physical-address bits of an entry (51:12).
const ADDR_MASK: u64 = 0x000f_ffff_ffff_f000;
const P: u64 = 1 << 0;
const RW: u64 = 1 << 1;
const US: u64 = 1 << 2;
const PS: u64 = 1 << 7;

/// What a CPU virtual address maps to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CpuMapping {
    /// Present: the 4 KiB page's physical address and the effective permissions.
    Present {
        /// Physical address of the 4 KiB page containing the address.
        page: u64,
        /// Writable at every level.
        writable: bool,
        /// User-accessible at every level.
        user: bool,
        /// The leaf entry (for reports).
        pte: u64,
        /// Size of the page the leaf maps (4 KiB, 2 MiB or 1 GiB).
        page_size: u64,
    },
    /// Not present. `pte` is the non-present entry where the walk stopped (0 for none;
    /// otherwise a swap, migration or device-private entry) and `level` which table held it
    /// (1 = PT … 5 = PML5).
    NotPresent {
        /// The entry.
        pte: u64,
        /// Its level.
        level: u8,
    },
}

/// A non-present entry decoded as Linux stores swap-type entries on x86-64 (6.12
/// `arch/x86/include/asm/pgtable_64.h`: TYPE in bits 63:59, the offset inverted in 58:9 —
/// `__swp_type(x) = x >> 59`, `__swp_offset(x) = ~x << 5 >> 14`). For migration,
/// device-private and device-exclusive entries the offset is a page frame number.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SwapEntry {
    /// The swap type.
    pub kind: u8,
    /// The offset (a PFN for the special types).
    pub offset: u64,
}

impl SwapEntry {
    /// Decodes a non-present, non-empty entry.
    pub fn decode(pte: u64) -> Option<Self> {
        if pte == 0 || pte & P != 0 {
            return None;
        }
        Some(SwapEntry {
            kind: (pte >> 59) as u8,
            offset: (!pte << 5) >> 14,
        })
    }
}

/// The special swap types of the guest kernel, from `include/linux/swap.h`: in order from
/// `SWP_MIGRATION_READ`: MIGRATION_READ, MIGRATION_READ_EXCLUSIVE, MIGRATION_WRITE,
/// DEVICE_WRITE, DEVICE_READ, DEVICE_EXCLUSIVE_WRITE, DEVICE_EXCLUSIVE_READ. Where they start
/// depends on the kernel's configuration (`MAX_SWAPFILES`), so the guest reports it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SwapTypes {
    /// `SWP_MIGRATION_READ`.
    pub migration_read: u8,
}

/// Our guest kernel's value (6.12, MIGRATION and DEVICE_PRIVATE on, MEMORY_FAILURE off:
/// MAX_SWAPFILES = 32 - 4 - 3 - 0 - 1 = 24).
pub const DEFAULT_SWAP_TYPES: SwapTypes = SwapTypes { migration_read: 24 };

/// What a special swap entry stands for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Special {
    /// A page being migrated (writable while migrating if `write`).
    Migration {
        /// MIGRATION_WRITE.
        write: bool,
    },
    /// A device-private page (in GPU memory).
    DevicePrivate,
    /// A page a device holds exclusively for atomics.
    DeviceExclusive {
        /// DEVICE_EXCLUSIVE_WRITE.
        write: bool,
    },
}

impl SwapTypes {
    /// Classifies a swap entry.
    pub fn special(&self, e: SwapEntry) -> Option<Special> {
        let rel = e.kind.checked_sub(self.migration_read)?;
        Some(match rel {
            0 | 1 => Special::Migration { write: false },
            2 => Special::Migration { write: true },
            3 | 4 => Special::DevicePrivate,
            5 => Special::DeviceExclusive { write: true },
            6 => Special::DeviceExclusive { write: false },
            _ => return None,
        })
    }
}

/// Why the walk could not be done.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum WalkError {
    /// The address is not canonical for the paging mode.
    #[error("address {0:#x} is not canonical")]
    NonCanonical(u64),
    /// A table was outside guest RAM.
    #[error("page table outside guest RAM: {0}")]
    Mem(MemError),
}

/// The paging mode of the process.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CpuSpace {
    /// Physical address of the top-level table.
    pub root: u64,
    /// 5-level paging (LA57).
    pub la57: bool,
}

/// The upper-level entries (PML5 … PD) a walk read last, one per level, so a scan walking
/// many addresses in a row reads each directory entry once instead of once per page. Only for
/// the span of one scan: the guest may change its tables between device messages.
#[derive(Debug, Clone, Default)]
pub struct WalkCache {
    /// Per level (index = level): (table address, index, entry).
    upper: [Option<(u64, u64, u64)>; 6],
    /// Table entries read from guest RAM.
    pub reads: u64,
    /// Entries found in the cache.
    pub hits: u64,
}

impl CpuSpace {
    /// Walks `va`.
    pub fn walk(&self, mem: &PhysMem, va: u64) -> Result<CpuMapping, WalkError> {
        self.walk_cached(mem, va, &mut WalkCache::default())
    }

    /// Walks `va`, reusing upper-level entries `cache` holds from earlier walks.
    pub fn walk_cached(
        &self,
        mem: &PhysMem,
        va: u64,
        cache: &mut WalkCache,
    ) -> Result<CpuMapping, WalkError> {
        let bits = if self.la57 { 57 } else { 48 };
        let sign = va >> (bits - 1);
        if sign != 0 && sign != (u64::MAX >> (bits - 1)) {
            return Err(WalkError::NonCanonical(va));
        }
        let levels: u8 = if self.la57 { 5 } else { 4 };
        let mut table = self.root & ADDR_MASK;
        let (mut writable, mut user) = (true, true);
        for level in (1..=levels).rev() {
            let shift = 12 + 9 * (u32::from(level) - 1);
            let idx = (va >> shift) & 0x1ff;
            let slot = &mut cache.upper[usize::from(level)];
            let e = match *slot {
                Some((t, i, e)) if level > 1 && t == table && i == idx => {
                    cache.hits += 1;
                    e
                }
                _ => {
                    let mut b = [0u8; 8];
                    mem.sys_read(table + idx * 8, &mut b)
                        .map_err(WalkError::Mem)?;
                    cache.reads += 1;
                    let e = u64::from_le_bytes(b);
                    if level > 1 {
                        *slot = Some((table, idx, e));
                    }
                    e
                }
            };
            if e & P == 0 {
                return Ok(CpuMapping::NotPresent { pte: e, level });
            }
            writable &= e & RW != 0;
            user &= e & US != 0;
            let large = matches!(level, 2 | 3) && e & PS != 0;
            if level == 1 || large {
                let size = 1u64 << shift;
                let base = if large {
                    e & ADDR_MASK & !(size - 1)
                } else {
                    e & ADDR_MASK
                };
                return Ok(CpuMapping::Present {
                    page: base | (va & (size - 1) & !0xfff),
                    writable,
                    user,
                    pte: e,
                    page_size: size,
                });
            }
            table = e & ADDR_MASK;
        }
        unreachable!("the loop returns at level 1")
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use vm_memory::{GuestAddress, GuestMemoryMmap};

    fn mem() -> PhysMem {
        let mut p = PhysMem::new(1 << 20);
        let ram = GuestMemoryMmap::<()>::from_ranges(&[(GuestAddress(0), 16 << 20)]).unwrap();
        p.set_sys(Box::new(ram));
        p
    }

    fn put(p: &PhysMem, a: u64, v: u64) {
        p.sys_write(a, &v.to_le_bytes()).unwrap();
    }

    #[test]
    fn four_level_walk_with_permissions_and_large_pages() {
        let p = mem();
        let va = 0x7f12_3456_7000u64;
        // PML4 at 0x1000 → PDPT 0x2000 → PD 0x3000 → PT 0x4000 → page 0x80_0000.
        put(&p, 0x1000 + ((va >> 39) & 0x1ff) * 8, 0x2000 | P | RW | US);
        put(&p, 0x2000 + ((va >> 30) & 0x1ff) * 8, 0x3000 | P | RW | US);
        put(&p, 0x3000 + ((va >> 21) & 0x1ff) * 8, 0x4000 | P | US); // PD: read-only
        put(
            &p,
            0x4000 + ((va >> 12) & 0x1ff) * 8,
            0x80_0000 | P | RW | US,
        );
        let s = CpuSpace {
            root: 0x1000,
            la57: false,
        };
        match s.walk(&p, va + 0x123).unwrap() {
            CpuMapping::Present {
                page,
                writable,
                user,
                page_size,
                ..
            } => {
                assert_eq!(page, 0x80_0000);
                assert!(!writable, "R/W clear at the PD level");
                assert!(user);
                assert_eq!(page_size, 4096);
            }
            m => panic!("{m:?}"),
        }
        // A 2 MiB page: the 4 KiB sub-page inside it.
        let va2 = 0x4000_0000u64 + 0x20_0000 + 0x5000;
        put(&p, 0x1000 + ((va2 >> 39) & 0x1ff) * 8, 0x5000 | P | RW | US);
        put(&p, 0x5000 + ((va2 >> 30) & 0x1ff) * 8, 0x6000 | P | RW | US);
        put(
            &p,
            0x6000 + ((va2 >> 21) & 0x1ff) * 8,
            0x40_0000 | P | RW | US | PS | 1 << 12,
        );
        match s.walk(&p, va2).unwrap() {
            CpuMapping::Present {
                page,
                page_size,
                writable,
                ..
            } => {
                assert_eq!(page, 0x40_5000, "PAT bit 12 is not address");
                assert_eq!(page_size, 2 << 20);
                assert!(writable);
            }
            m => panic!("{m:?}"),
        }
        // Not present: the entry is reported (a swap entry, say).
        put(&p, 0x4000 + ((va >> 12) & 0x1ff) * 8, 0xdead_0000);
        assert_eq!(
            s.walk(&p, va).unwrap(),
            CpuMapping::NotPresent {
                pte: 0xdead_0000,
                level: 1
            }
        );
    }

    #[test]
    fn swap_entries_decode_as_the_kernel_encodes_them() {
        // What the svm suite's atomic test left in the CPU page table: type 29 on our kernel
        // (SWP_DEVICE_EXCLUSIVE_WRITE), PFN 0x19ba (the page the GPU maps).
        let e = SwapEntry::decode(0xefff_ffff_ffcc_8a00).unwrap();
        assert_eq!(e.kind, 29);
        assert_eq!(e.offset, 0x19ba);
        assert_eq!(
            DEFAULT_SWAP_TYPES.special(e),
            Some(Special::DeviceExclusive { write: true })
        );
        // __swp_entry(type, offset) the other way round.
        let enc = |ty: u64, off: u64| (!off << 14 >> 5) | ty << 59;
        for (ty, want) in [
            (24, Some(Special::Migration { write: false })),
            (26, Some(Special::Migration { write: true })),
            (27, Some(Special::DevicePrivate)),
            (30, Some(Special::DeviceExclusive { write: false })),
            (3, None),
        ] {
            let e = SwapEntry::decode(enc(ty, 0x1234)).unwrap();
            assert_eq!((e.kind as u64, e.offset), (ty, 0x1234));
            assert_eq!(DEFAULT_SWAP_TYPES.special(e), want);
        }
        assert_eq!(SwapEntry::decode(0), None);
        assert_eq!(SwapEntry::decode(0x1000 | P), None);
    }

    #[test]
    fn hostile_roots_and_addresses_are_errors() {
        let p = mem();
        let s = CpuSpace {
            root: 0x1000,
            la57: false,
        };
        assert!(matches!(
            s.walk(&p, 0x0000_8000_0000_0000),
            Err(WalkError::NonCanonical(_))
        ));
        // A table pointing outside guest RAM.
        put(&p, 0x1000, 0x7fff_0000_0000 | P | RW);
        assert!(matches!(s.walk(&p, 0x1000), Err(WalkError::Mem(_))));
        // A table pointing at itself terminates after five reads at most.
        put(&p, 0x1000, 0x1000 | P | RW);
        let s5 = CpuSpace {
            root: 0x1000,
            la57: true,
        };
        assert!(matches!(s5.walk(&p, 0), Ok(CpuMapping::Present { .. })));
        // Kernel-half addresses are canonical and walk normally.
        assert!(s.walk(&p, 0xffff_8000_0000_0000).is_ok());
    }
}
