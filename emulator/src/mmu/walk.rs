//! The page-table walker: a virtual address of one address space to a physical target, or
//! the GP100 fault the hardware would report.
//!
//! Five fixed levels (gp100-facts.md, nouveau `gp100_vmm_desc_*`): PD3 (VA 48:47), PD2
//! (46:38), PD1 (37:29), PD0 (28:21, 16-byte dual entries) and a page table, small (4 KiB,
//! VA 20:12) or big (64 KiB, VA 20:16); a PD0 entry with bit 0 set is itself a 2 MiB PTE.
//! The walk is a fixed sequence of at most six reads, so no table layout — looping,
//! self-referencing or pointing outside memory — can make it run longer; a read that fails
//! becomes the fault of the level that needed it.
//!
//! Dual page tables follow nouveau's own description of the hardware
//! (nvkm/subdev/mmu/vmm.c `nvkm_vmm_{ref,unref}_sptes`, vmmgp100.c): a big-page PTE that is
//! valid wins; VALID=0 with VOL is *sparse* (`gp100_vmm_pgt_sparse`: "VALID_FALSE + VOL tells
//! the MMU to treat the PTE as sparse"; no fault, and it hides the small PTEs); VALID=0 with
//! PRIV is *invalid* (`gp100_vmm_lpt_invalid`: tells the MMU not to fetch the small PTEs,
//! so the access faults); VALID=0 with neither hands the range to the small page table.

use crate::fault::FaultType;
use crate::mem::{GpuMemory, MemError, Target};

use super::format::{DualPde, Pde, Pte};
use super::geometry;

/// Virtual address bits: 49 (gp100-facts.md; `NV_MMU_VER2` five-level format).
pub const VA_BITS: u32 = 49;

/// What the client is doing (`NV_PFAULT_ACCESS_TYPE_*`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Access {
    /// A load.
    Read,
    /// A store.
    Write,
    /// An atomic read-modify-write.
    Atomic,
    /// A prefetch (never faults on permissions; nothing is written).
    Prefetch,
}

/// Page sizes of the version-2 format.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PageSize {
    /// 4 KiB (small page table).
    K4,
    /// 64 KiB (big page table).
    K64,
    /// 2 MiB (a PTE in PD0).
    M2,
}

impl PageSize {
    /// Bytes.
    pub fn bytes(self) -> u64 {
        1 << self.shift()
    }

    /// log2 of the bytes.
    pub fn shift(self) -> u8 {
        use super::geometry;
        (match self {
            PageSize::K4 => geometry::SMALL_SHIFT,
            PageSize::K64 => geometry::BIG_SHIFT,
            PageSize::M2 => geometry::PD0_SHIFT,
        }) as u8
    }
}

/// The walk's levels, for fault reports and the cycle model.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Level {
    /// The page-directory base itself.
    Pdb,
    /// PD3.
    Pd3,
    /// PD2.
    Pd2,
    /// PD1.
    Pd1,
    /// PD0 (dual entries).
    Pd0,
    /// A big-page (64 KiB) table.
    BigPt,
    /// A small-page (4 KiB) table.
    SmallPt,
}

/// Where an address space's page directory starts (the instance block's PDB).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Pdb {
    /// Memory holding PD3.
    pub target: Target,
    /// PD3's byte address (4 KiB aligned).
    pub addr: u64,
}

impl Pdb {
    /// Decodes the instance block's page-directory base word at +0x200 (gp100-facts.md:
    /// aperture bits 1:0 — 0 video, 2 system coherent, 3 system non-coherent —, bit 10 VER2,
    /// PD3 address from bit 12). None for aperture 1 or a pre-VER2 format: the hardware
    /// cannot walk it, which the caller reports as an unbound instance.
    pub fn from_instance_word(v: u64) -> Option<Self> {
        let target = Target::from_target_field(v)?;
        if v & (1 << 10) == 0 {
            return None;
        }
        Some(Pdb {
            target,
            addr: v & !0xfff,
        })
    }
}

/// A successful walk.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Walk {
    /// Mapped: the physical byte address and the PTE that mapped it.
    Mapped {
        /// Memory the page is in.
        target: Target,
        /// Physical byte address of `va`.
        pa: u64,
        /// Page size.
        page_size: PageSize,
        /// The leaf PTE.
        pte: Pte,
        /// Memory reads the walk made.
        reads: u32,
        /// Of which from system memory.
        sys_reads: u32,
    },
    /// Sparse: no fault; reads return zero and writes are dropped.
    Sparse {
        /// Page size of the sparse entry.
        page_size: PageSize,
        /// Memory reads the walk made.
        reads: u32,
        /// Of which from system memory.
        sys_reads: u32,
    },
}

/// A walk that faults.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct WalkFault {
    /// The GP100 fault type.
    pub fault_type: FaultType,
    /// The level that faulted.
    pub level: Level,
    /// Set when the fault came from a table read that failed (outside memory, peer).
    pub mem_error: Option<MemError>,
    /// Memory reads made before the fault.
    pub reads: u32,
    /// Of which from system memory.
    pub sys_reads: u32,
}

/// A page-directory cache: PDE words of PD3..PD0 by (memory, address). The MMU clears it
/// on every invalidate (conservative: nothing stale can outlive an invalidate of any kind).
/// Page-table (PTE) reads never go through it. Bounded: when full it is cleared.
#[derive(Debug, Clone, Default)]
pub struct PdeCache {
    map: std::collections::HashMap<(u8, u64), u64>,
    hits: u64,
}

/// Most PDE words held.
pub const PDE_CACHE_ENTRIES: usize = 1024;

fn target_tag(t: Target) -> u8 {
    match t {
        Target::Video => 0,
        Target::Peer(p) => 0x10 | (p & 7),
        Target::SysCoherent => 2,
        Target::SysNoncoherent => 3,
    }
}

impl PdeCache {
    /// An empty cache.
    pub fn new() -> Self {
        Self::default()
    }
    /// Drops everything.
    pub fn clear(&mut self) {
        self.map.clear();
    }
    /// Reads served from the cache so far.
    pub fn hits(&self) -> u64 {
        self.hits
    }
    /// Words held.
    pub fn len(&self) -> usize {
        self.map.len()
    }
    /// Whether it holds nothing.
    pub fn is_empty(&self) -> bool {
        self.map.is_empty()
    }
}

struct Walker<'m, 'c, M: GpuMemory> {
    mem: &'m M,
    cache: Option<&'c mut PdeCache>,
    reads: u32,
    sys_reads: u32,
}

impl<M: GpuMemory> Walker<'_, '_, M> {
    fn read(&mut self, level: Level, t: Target, addr: u64) -> Result<u64, WalkFault> {
        let directory = !matches!(level, Level::BigPt | Level::SmallPt);
        if directory {
            if let Some(c) = self.cache.as_deref_mut() {
                if let Some(v) = c.map.get(&(target_tag(t), addr)) {
                    c.hits += 1;
                    return Ok(*v);
                }
            }
        }
        let v = self.read_mem(level, t, addr)?;
        if directory {
            if let Some(c) = self.cache.as_deref_mut() {
                if c.map.len() >= PDE_CACHE_ENTRIES {
                    c.map.clear();
                }
                c.map.insert((target_tag(t), addr), v);
            }
        }
        Ok(v)
    }

    /// The low word of a PD0 entry: from the directory cache when it is a directory word,
    /// from memory when it is a 2 MiB PTE (a cached copy of a leaf is dropped and re-read).
    fn read_pd0_lo(&mut self, t: Target, addr: u64) -> Result<u64, WalkFault> {
        let leaf = |v: u64| (DualPde { lo: v, hi: 0 }).is_pte();
        if let Some(c) = self.cache.as_deref_mut() {
            let key = (target_tag(t), addr);
            match c.map.get(&key) {
                Some(v) if !leaf(*v) => {
                    c.hits += 1;
                    return Ok(*v);
                }
                Some(_) => {
                    c.map.remove(&key);
                }
                None => {}
            }
        }
        let v = self.read_mem(Level::Pd0, t, addr)?;
        if !leaf(v) {
            if let Some(c) = self.cache.as_deref_mut() {
                if c.map.len() >= PDE_CACHE_ENTRIES {
                    c.map.clear();
                }
                c.map.insert((target_tag(t), addr), v);
            }
        }
        Ok(v)
    }

    fn read_mem(&mut self, level: Level, t: Target, addr: u64) -> Result<u64, WalkFault> {
        self.reads += 1;
        if matches!(t, Target::SysCoherent | Target::SysNoncoherent) {
            self.sys_reads += 1;
        }
        self.mem.read_u64(t, addr).map_err(|e| WalkFault {
            fault_type: if matches!(level, Level::BigPt | Level::SmallPt) {
                FaultType::Pte
            } else {
                FaultType::Pde
            },
            level,
            mem_error: Some(e),
            reads: self.reads,
            sys_reads: self.sys_reads,
        })
    }

    fn fault(&self, fault_type: FaultType, level: Level) -> WalkFault {
        WalkFault {
            fault_type,
            level,
            mem_error: None,
            reads: self.reads,
            sys_reads: self.sys_reads,
        }
    }

    fn leaf(
        &self,
        pte: Pte,
        va: u64,
        size: PageSize,
        level: Level,
        access: Access,
        privileged: bool,
    ) -> Result<Walk, WalkFault> {
        if pte.privilege() && !privileged {
            return Err(self.fault(FaultType::PrivViolation, level));
        }
        match access {
            Access::Write if pte.read_only() => {
                return Err(self.fault(FaultType::RoViolation, level))
            }
            Access::Atomic if pte.read_only() => {
                return Err(self.fault(FaultType::RoViolation, level))
            }
            Access::Atomic if pte.atomic_disable() => {
                return Err(self.fault(FaultType::AtomicViolation, level))
            }
            _ => {}
        }
        let target = pte.target();
        if let Target::Peer(_) = target {
            // Peer memory is not modelled; report what the MMU reports for an aperture it
            // cannot reach.
            return Err(self.fault(FaultType::UnsupportedAperture, level));
        }
        let offset = va & (size.bytes() - 1);
        Ok(Walk::Mapped {
            target,
            pa: (pte.address() & !(size.bytes() - 1)) | offset,
            page_size: size,
            pte,
            reads: self.reads,
            sys_reads: self.sys_reads,
        })
    }
}

/// Translates `va` in the address space rooted at `pdb`. `privileged` says whether the client
/// may use PRIVILEGE pages.
pub fn translate<M: GpuMemory>(
    mem: &M,
    pdb: Pdb,
    va: u64,
    access: Access,
    privileged: bool,
) -> Result<Walk, WalkFault> {
    translate_cached(mem, None, pdb, va, access, privileged)
}

/// [`translate`] with directory reads through a [`PdeCache`]; `reads` then counts only the
/// reads that reached memory.
pub fn translate_cached<M: GpuMemory>(
    mem: &M,
    cache: Option<&mut PdeCache>,
    pdb: Pdb,
    va: u64,
    access: Access,
    privileged: bool,
) -> Result<Walk, WalkFault> {
    let mut w = Walker {
        mem,
        cache,
        reads: 0,
        sys_reads: 0,
    };
    if va >> VA_BITS != 0 {
        return Err(w.fault(FaultType::VaLimitViolation, Level::Pdb));
    }
    // PD3, PD2, PD1: 8-byte PDEs.
    let mut table = (pdb.target, pdb.addr & !0xfff);
    for d in &geometry::DIRS {
        let pde = Pde(w.read(d.level, table.0, table.1 + geometry::dir_slot(d, va))?);
        let Some(t) = pde.aperture().target() else {
            return Err(w.fault(FaultType::Pde, d.level));
        };
        table = (t, pde.address());
    }
    // PD0: 16-byte dual entries. A low word with VALID set is a 2 MiB PTE: a leaf, so it is
    // read from memory like any PTE (never from the directory cache) and the high word,
    // which only a directory uses, is not fetched.
    let lo_at = table.1 + geometry::pd0_slot(va);
    let lo = w.read_pd0_lo(table.0, lo_at)?;
    if (DualPde { lo, hi: 0 }).is_pte() {
        let pte = DualPde { lo, hi: 0 }.as_pte();
        return w.leaf(pte, va, PageSize::M2, Level::Pd0, access, privileged);
    }
    let hi = w.read(Level::Pd0, table.0, lo_at + 8)?;
    let d = DualPde { lo, hi };
    let big = d.big_aperture().target().map(|t| (t, d.big_address()));
    let small = d
        .small()
        .aperture()
        .target()
        .map(|t| (t, d.small().address()));
    if big.is_none() && small.is_none() {
        return Err(w.fault(FaultType::Pde, Level::Pd0));
    }
    if let Some((t, a)) = big {
        let pte = Pte(w.read(Level::BigPt, t, a + geometry::big_slot(va))?);
        if pte.valid() {
            return w.leaf(pte, va, PageSize::K64, Level::BigPt, access, privileged);
        }
        if pte.vol() {
            return Ok(Walk::Sparse {
                page_size: PageSize::K64,
                reads: w.reads,
                sys_reads: w.sys_reads,
            });
        }
        if pte.privilege() || small.is_none() {
            return Err(w.fault(FaultType::Pte, Level::BigPt));
        }
    }
    let (t, a) = small.expect("checked above");
    let pte = Pte(w.read(Level::SmallPt, t, a + geometry::small_slot(va))?);
    if pte.valid() {
        return w.leaf(pte, va, PageSize::K4, Level::SmallPt, access, privileged);
    }
    if pte.vol() {
        return Ok(Walk::Sparse {
            page_size: PageSize::K4,
            reads: w.reads,
            sys_reads: w.sys_reads,
        });
    }
    Err(w.fault(FaultType::Pte, Level::SmallPt))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::mem::{Memory, VidMem};
    use crate::mmu::format::PdeAperture;
    use proptest::prelude::*;
    use vm_memory::{GuestAddress, GuestMemoryMmap};

    /// Builds a page-table tree in video memory the way nouveau lays it out, with tables at
    /// fixed addresses, and returns its PDB.
    struct Tree {
        vid: VidMem,
        ram: GuestMemoryMmap<()>,
        next: u64,
    }

    const PD3: u64 = 0x10_0000;

    impl Tree {
        fn new() -> Self {
            Tree {
                vid: VidMem::new(64 << 20),
                ram: GuestMemoryMmap::from_ranges(&[(GuestAddress(0), 16 << 20)]).unwrap(),
                next: PD3 + 0x1000,
            }
        }
        fn alloc(&mut self) -> u64 {
            let a = self.next;
            self.next += 0x1000;
            a
        }
        fn w(&mut self, addr: u64, v: u64) {
            self.vid.write_u64(addr, v).unwrap();
        }
        /// Makes PD3..PD1 for `va` and returns the PD0 table address.
        fn dirs(&mut self, va: u64) -> u64 {
            let mut table = PD3;
            for d in &geometry::DIRS {
                let slot = table + geometry::dir_slot(d, va);
                let cur = Pde(self.vid.read_u64(slot).unwrap());
                table = if cur.valid() {
                    cur.address()
                } else {
                    let t = self.alloc();
                    self.w(slot, Pde::build(PdeAperture::Video, false, t).0);
                    t
                };
            }
            table
        }
        fn pd0_slot(&mut self, va: u64) -> u64 {
            self.dirs(va) + ((va >> 21) & 0xff) * 16
        }
        fn pdb() -> Pdb {
            Pdb {
                target: Target::Video,
                addr: PD3,
            }
        }
        fn walk(&mut self, va: u64, access: Access) -> Result<Walk, WalkFault> {
            let m = Memory {
                vid: &mut self.vid,
                sys: &self.ram,
            };
            translate(&m, Self::pdb(), va, access, false)
        }
    }

    #[test]
    fn small_page_in_system_memory_mapped_by_a_pfn_pte() {
        let mut t = Tree::new();
        let va = 0x7f12_3456_7000u64 & ((1 << 49) - 1);
        let slot = t.pd0_slot(va);
        let spt = t.alloc();
        t.w(slot + 8, Pde::build(PdeAperture::Video, false, spt).0);
        t.w(
            spt + ((va >> 12) & 0x1ff) * 8,
            Pte::pfn_system(0x0abc_d000, true, true).0,
        );
        match t.walk(va + 0x123, Access::Write).unwrap() {
            Walk::Mapped {
                target,
                pa,
                page_size,
                reads,
                ..
            } => {
                assert_eq!(target, Target::SysCoherent);
                assert_eq!(pa, 0x0abc_d123);
                assert_eq!(page_size, PageSize::K4);
                assert_eq!(reads, 6);
            }
            w => panic!("{w:?}"),
        }
    }

    #[test]
    fn big_and_huge_pages() {
        let mut t = Tree::new();
        let va = 0x1_2340_0000u64;
        let slot = t.pd0_slot(va);
        let bpt = t.alloc();
        t.w(
            slot,
            DualPde::build(
                (PdeAperture::Video, false, bpt),
                (PdeAperture::Invalid, false, 0),
            )
            .lo,
        );
        t.w(bpt + ((va >> 16) & 0x1f) * 8, Pte::pfn_vram(0x4000_0000).0);
        assert!(matches!(
            t.walk(va + 0xfff8, Access::Read),
            Ok(Walk::Mapped {
                pa: 0x4000_fff8,
                page_size: PageSize::K64,
                target: Target::Video,
                ..
            })
        ));
        // A 2 MiB PTE directly in PD0.
        let va2 = 0x2_0000_0000u64;
        let slot2 = t.pd0_slot(va2);
        t.w(slot2, Pte::pfn_vram(0x8000_0000).0);
        assert!(matches!(
            t.walk(va2 + 0x1f_fff0, Access::Atomic),
            Ok(Walk::Mapped {
                pa: 0x801f_fff0,
                page_size: PageSize::M2,
                ..
            })
        ));
    }

    #[test]
    fn dual_tables_follow_the_big_pte_state() {
        let mut t = Tree::new();
        let va = 0x3_0000_0000u64;
        let slot = t.pd0_slot(va);
        let (bpt, spt) = (t.alloc(), t.alloc());
        let d = DualPde::build(
            (PdeAperture::Video, false, bpt),
            (PdeAperture::Video, false, spt),
        );
        t.w(slot, d.lo);
        t.w(slot + 8, d.hi);
        t.w(spt, Pte::pfn_vram(0x10_0000).0);
        // Big PTE unmapped (0): the small table decides.
        assert!(matches!(
            t.walk(va, Access::Read),
            Ok(Walk::Mapped {
                page_size: PageSize::K4,
                ..
            })
        ));
        // Big PTE sparse (VOL): no fault, small PTEs hidden.
        t.w(bpt, 1 << 3);
        assert!(matches!(
            t.walk(va, Access::Read),
            Ok(Walk::Sparse {
                page_size: PageSize::K64,
                ..
            })
        ));
        // Big PTE invalid (PRIV): fault without looking at the small table.
        t.w(bpt, 1 << 5);
        let f = t.walk(va, Access::Read).unwrap_err();
        assert_eq!((f.fault_type, f.level), (FaultType::Pte, Level::BigPt));
    }

    #[test]
    fn every_fault_type_the_walker_reports() {
        let mut t = Tree::new();
        // Nothing mapped: PD3 entry invalid.
        let f = t.walk(0x1000, Access::Read).unwrap_err();
        assert_eq!((f.fault_type, f.level), (FaultType::Pde, Level::Pd3));
        // VA beyond 49 bits.
        let f = t.walk(1 << 49, Access::Read).unwrap_err();
        assert_eq!(f.fault_type, FaultType::VaLimitViolation);
        // PD0 with neither table.
        let va = 0x4_0000_0000u64;
        let slot = t.pd0_slot(va);
        let f = t.walk(va, Access::Read).unwrap_err();
        assert_eq!((f.fault_type, f.level), (FaultType::Pde, Level::Pd0));
        // Small PTE invalid; then the unmapped-PFN form with VOL reads as sparse (nouveau's
        // pfn_clear keeps VOL: see the module doc).
        let spt = t.alloc();
        t.w(slot + 8, Pde::build(PdeAperture::Video, false, spt).0);
        let f = t.walk(va, Access::Read).unwrap_err();
        assert_eq!((f.fault_type, f.level), (FaultType::Pte, Level::SmallPt));
        t.w(spt, Pte::pfn_system(0x5000, true, true).invalidated().0);
        assert!(matches!(t.walk(va, Access::Read), Ok(Walk::Sparse { .. })));
        // Permissions.
        t.w(spt, Pte::pfn_system(0x5000, false, true).0);
        assert_eq!(
            t.walk(va, Access::Write).unwrap_err().fault_type,
            FaultType::RoViolation
        );
        assert!(t.walk(va, Access::Read).is_ok());
        assert!(t.walk(va, Access::Prefetch).is_ok());
        t.w(spt, Pte::pfn_system(0x5000, true, false).0);
        assert_eq!(
            t.walk(va, Access::Atomic).unwrap_err().fault_type,
            FaultType::AtomicViolation
        );
        t.w(spt, Pte::pfn_system(0x5000, true, true).0 | (1 << 5));
        assert_eq!(
            t.walk(va, Access::Read).unwrap_err().fault_type,
            FaultType::PrivViolation
        );
        // Peer aperture.
        t.w(spt, 1 | (1 << 1) | (0x5000 >> 4));
        assert_eq!(
            t.walk(va, Access::Read).unwrap_err().fault_type,
            FaultType::UnsupportedAperture
        );
    }

    #[test]
    fn tables_outside_memory_or_self_referencing_end_in_faults() {
        let mut t = Tree::new();
        // PD3 entry pointing far outside video memory.
        t.w(PD3, Pde::build(PdeAperture::Video, false, 0x10_0000_0000).0);
        let f = t.walk(0, Access::Read).unwrap_err();
        assert_eq!((f.fault_type, f.level), (FaultType::Pde, Level::Pd2));
        assert!(f.mem_error.is_some());
        // Every level pointing back at PD3 itself: a fixed number of reads, then a verdict.
        t.w(PD3, Pde::build(PdeAperture::Video, false, PD3).0);
        let r = t.walk(0, Access::Read);
        let reads = match r {
            Ok(Walk::Mapped { reads, .. }) | Ok(Walk::Sparse { reads, .. }) => reads,
            Err(f) => f.reads,
        };
        assert!(reads <= 6);
        // System-memory tables outside guest RAM.
        t.w(
            PD3,
            Pde::build(PdeAperture::SysCoherent, false, 0x7000_0000_0000).0,
        );
        let f = t.walk(0, Access::Read).unwrap_err();
        assert!(f.mem_error.is_some());
    }

    #[test]
    fn pde_cache_saves_directory_reads_and_clears() {
        let mut t = Tree::new();
        let va = 0x5_0000_0000u64;
        let slot = t.pd0_slot(va);
        let spt = t.alloc();
        t.w(slot + 8, Pde::build(PdeAperture::Video, false, spt).0);
        t.w(spt, Pte::pfn_vram(0x1000).0);
        t.w(spt + 8, Pte::pfn_vram(0x2000).0);
        let mut cache = PdeCache::new();
        let m = Memory {
            vid: &mut t.vid,
            sys: &t.ram,
        };
        let reads = |r: Result<Walk, WalkFault>| match r.unwrap() {
            Walk::Mapped { reads, .. } | Walk::Sparse { reads, .. } => reads,
        };
        let first = translate_cached(&m, Some(&mut cache), Tree::pdb(), va, Access::Read, false);
        assert_eq!(reads(first), 6);
        let second = translate_cached(
            &m,
            Some(&mut cache),
            Tree::pdb(),
            va + 0x1000,
            Access::Read,
            false,
        );
        assert_eq!(reads(second), 1, "only the PTE read reaches memory");
        assert_eq!(cache.hits(), 5);
        cache.clear();
        assert!(cache.is_empty());
    }

    #[test]
    fn a_2mib_pte_in_pd0_is_a_leaf_read_from_memory_every_walk() {
        let mut t = Tree::new();
        let va = 0x5_0000_0000u64;
        let slot = t.pd0_slot(va);
        t.w(slot, Pte::pfn_vram(0x20_0000).0);
        let mut cache = PdeCache::new();
        let m = Memory {
            vid: &mut t.vid,
            sys: &t.ram,
        };
        for (round, want) in [(0, 4), (1, 1)] {
            match translate_cached(
                &m,
                Some(&mut cache),
                Tree::pdb(),
                va + 0x1234,
                Access::Read,
                false,
            ) {
                Ok(Walk::Mapped {
                    pa,
                    page_size,
                    reads,
                    ..
                }) => {
                    assert_eq!((pa, page_size), (0x20_1234, PageSize::M2));
                    assert_eq!(
                        reads, want,
                        "round {round}: PD3..PD1 cached, the PTE word never"
                    );
                }
                other => panic!("{other:?}"),
            }
        }
        assert_eq!(cache.len(), 3, "only the three directory words");
    }

    #[test]
    fn instance_block_pdb_word() {
        let p = Pdb::from_instance_word(0x1234_5000 | 1 << 10 | 1 << 11 | 2).unwrap();
        assert_eq!(p.target, Target::SysCoherent);
        assert_eq!(p.addr, 0x1234_5000);
        assert!(
            Pdb::from_instance_word(0x1000 | 1 << 10 | 1).is_none(),
            "aperture 1"
        );
        assert!(Pdb::from_instance_word(0x1000).is_none(), "not VER2");
    }

    proptest! {
        /// Garbage page tables never panic and never take more than six reads.
        #[test]
        fn garbage_tables_are_bounded(words in proptest::collection::vec(any::<u64>(), 64), va in any::<u64>()) {
            let mut vid = VidMem::new(1 << 20);
            for (i, w) in words.iter().enumerate() {
                // Scatter the garbage over the first pages, where PD3 and its children land.
                vid.write_u64((i as u64 % 16) * 0x1000 + (i as u64 / 16) * 8, *w).unwrap();
            }
            let ram = GuestMemoryMmap::<()>::from_ranges(&[(GuestAddress(0), 1 << 20)]).unwrap();
            let m = Memory { vid: &mut vid, sys: &ram };
            let pdb = Pdb { target: Target::Video, addr: 0 };
            let reads = match translate(&m, pdb, va, Access::Write, false) {
                Ok(Walk::Mapped { reads, .. }) | Ok(Walk::Sparse { reads, .. }) => reads,
                Err(f) => f.reads,
            };
            prop_assert!(reads <= 6);
        }
    }
}
