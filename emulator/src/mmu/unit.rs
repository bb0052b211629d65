//! The MMU as a unit: TLBs in front of the walker, the cycle cost of every translation, and
//! the invalidate registers nouveau programs (gp100-facts.md; nvkm/subdev/mmu/vmmgf100.c
//! `gf100_vmm_invalidate`, vmmgp100.c `gp100_vmm_invalidate_pdb`):
//!
//! | offset | register | meaning |
//! | --- | --- | --- |
//! | 0x100c80 | control/status | bits 23:16 free flush slots (nouveau waits for non-zero), bit 15 the last flush was queued (nouveau waits for it after triggering); the other bits are configuration nouveau read-modify-writes (`gm200_fb_init_page`: bits 12:11 and 0, big-page size), stored |
//! | 0x100cb8 | PDB low | low 32 bits of `(pd_addr >> 12) << 4 \| aperture` |
//! | 0x100cec | PDB high | high 32 bits of the same |
//! | 0x100cbc | trigger | `0x80000000 \| type`: bit 0 ALL_VA, bit 1 ALL_PDB, bit 2 HUBTLB_ONLY, bits 5:3 REPLAY (1 start, 3 cancel targeted) |
//!
//! Invalidates complete synchronously in the model: a trigger is processed when written, so
//! the flush slots are always free and the "queued" bit is set by the processing itself.

use crate::mem::{GpuMemory, Target};
use crate::timing::Costs;

use super::tlb::{ClientKind, Hit, Invalidate, PdbKey, TlbConfig, TlbEntry, Tlbs};
use super::trigger;
use super::walk::{translate_cached, Access, PageSize, Pdb, PdeCache, Walk, WalkFault};
use crate::fault::FaultType;

/// Register offsets.
pub mod regs {
    /// Flush status.
    pub const STATUS: u32 = 0x100c80;
    /// PDB to invalidate, low word.
    pub const PDB_LO: u32 = 0x100cb8;
    /// Invalidate trigger.
    pub const TRIGGER: u32 = 0x100cbc;
    /// PDB to invalidate, high word.
    pub const PDB_HI: u32 = 0x100cec;
}

/// Flush slots the model reports (bits 23:16 of STATUS). Assumed: the count is undocumented;
/// nouveau only needs it non-zero, and the model never queues.
pub const FLUSH_SLOTS: u32 = 16;

/// The read-only status fields of 0x100c80 (flush slots 23:16, queued 15).
const STATUS_FIELDS: u32 = 0x00ff_8000;

/// A translation ready to use.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Translation {
    /// Mapped to `pa` in `target`.
    Mapped {
        /// Memory.
        target: Target,
        /// Physical byte address.
        pa: u64,
        /// The page size of the PTE that maps it.
        page_size: PageSize,
        /// Where it came from.
        source: Source,
    },
    /// Sparse: reads zero, writes dropped, no fault.
    Sparse,
}

/// Where a translation came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Source {
    /// A TLB.
    Tlb(Hit),
    /// A page-table walk.
    Walk,
}

/// Counters of what the MMU did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct MmuStats {
    /// Invalidates processed.
    pub invalidates: u64,
    /// REPLAY requests (start) seen.
    pub replays: u64,
    /// Targeted cancels seen.
    pub cancels: u64,
    /// Walks made.
    pub walks: u64,
}

/// The MMU unit.
#[derive(Debug, Clone)]
pub struct Mmu {
    cfg: TlbConfig,
    tlbs: Tlbs,
    pde_cache: PdeCache,
    costs: Costs,
    pdb_lo: u32,
    pdb_hi: u32,
    ctrl: u32,
    queued: bool,
    cost_due: u64,
    stats: MmuStats,
    processed: Vec<Processed>,
    log_walks: bool,
    walks: Vec<WalkDone>,
    walks_dropped: u64,
}

/// Most walks kept between two drains; past it they are counted
/// ([`Mmu::take_walks`]).
pub const MAX_WALK_LOG: usize = 1 << 20;

/// A page-table walk the unit made (a TLB miss), for the device's event log.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct WalkDone {
    /// The virtual address translated.
    pub va: u64,
    /// What it found: `Ok(Some(pa))` mapped, `Ok(None)` sparse, `Err(fault type)`.
    pub outcome: Result<Option<u64>, FaultType>,
    /// Page-table reads it made.
    pub reads: u32,
    /// Of which from system memory.
    pub sys_reads: u32,
    /// Cycles the reads cost ([`Costs::walk_read_vidmem`], [`Costs::walk_read_sysmem`]).
    pub cycles: u64,
}

/// An invalidate the unit processed, for the device's event log.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Processed {
    /// Trigger word.
    pub word: u32,
    /// PDB registers.
    pub pdb: u64,
    /// TLB entries dropped.
    pub dropped: u32,
}

impl Mmu {
    /// An MMU with empty TLBs.
    pub fn new(cfg: TlbConfig, costs: Costs) -> Self {
        Mmu {
            cfg,
            tlbs: Tlbs::new(cfg),
            pde_cache: PdeCache::new(),
            costs,
            pdb_lo: 0,
            pdb_hi: 0,
            ctrl: 0,
            queued: false,
            cost_due: 0,
            stats: MmuStats::default(),
            processed: Vec::new(),
            log_walks: false,
            walks: Vec::new(),
            walks_dropped: 0,
        }
    }

    /// Turns the walk log on or off (the device's event log does).
    pub fn set_walk_log(&mut self, on: bool) {
        self.log_walks = on;
        if !on {
            self.walks.clear();
            self.walks_dropped = 0;
        }
    }

    /// The walks made since the last call, and how many more were not kept.
    pub fn take_walks(&mut self) -> (Vec<WalkDone>, u64) {
        (
            std::mem::take(&mut self.walks),
            std::mem::take(&mut self.walks_dropped),
        )
    }

    /// Whether [`Mmu::take_walks`] has anything to return.
    pub fn has_walks(&self) -> bool {
        !self.walks.is_empty() || self.walks_dropped > 0
    }

    /// Counters.
    pub fn stats(&self) -> MmuStats {
        self.stats
    }

    /// Invalidates processed since the last call.
    pub fn take_processed(&mut self) -> Vec<Processed> {
        std::mem::take(&mut self.processed)
    }

    /// Cycles spent since the last call (the device adds them to its clock).
    pub fn take_cost(&mut self) -> u64 {
        std::mem::take(&mut self.cost_due)
    }

    fn pdb_key(&self) -> PdbKey {
        let v = (u64::from(self.pdb_hi) << 32) | u64::from(self.pdb_lo);
        let target = Target::from_target_field(v).unwrap_or(Target::Peer(0));
        PdbKey::from(Pdb {
            target,
            addr: trigger::pdb_address(v),
        })
    }

    fn trigger(&mut self, word: u32) {
        if !trigger::TRIGGER.is_set(u64::from(word)) {
            return;
        }
        let inv = Invalidate::from_trigger(word, self.pdb_key(), 0);
        match trigger::replay_op(word) {
            trigger::ReplayOp::Start => self.stats.replays += 1,
            trigger::ReplayOp::CancelTargeted => self.stats.cancels += 1,
            _ => {}
        }
        let dropped = self.tlbs.invalidate(&inv);
        self.pde_cache.clear();
        if self.processed.len() < 64 {
            self.processed.push(Processed {
                word,
                pdb: (u64::from(self.pdb_hi) << 32) | u64::from(self.pdb_lo),
                dropped: dropped.min(u32::MAX as usize) as u32,
            });
        }
        self.stats.invalidates += 1;
        self.cost_due += self.costs.invalidate;
        self.queued = true;
    }

    /// Drops every cached translation and directory word (what a host MEM_OP TLB invalidate
    /// asks for; the model does not narrow it, so nothing stale can survive).
    pub fn invalidate_everything(&mut self) {
        let everything = trigger::TRIGGER.mask() | trigger::ALL_VA.mask() | trigger::ALL_PDB.mask();
        let inv = Invalidate::from_trigger(everything as u32, PdbKey(0), 0);
        self.tlbs.invalidate(&inv);
        self.pde_cache.clear();
        self.stats.invalidates += 1;
        self.cost_due += self.costs.invalidate;
    }

    /// Translates `va` for `client`: TLBs first, then a walk (whose result fills the TLBs).
    /// Permission checks apply to cached translations exactly as to walked ones.
    pub fn translate<M: GpuMemory>(
        &mut self,
        mem: &M,
        client: ClientKind,
        pdb: Pdb,
        va: u64,
        access: Access,
        privileged: bool,
    ) -> Result<Translation, WalkFault> {
        let key = PdbKey::from(pdb);
        if let Some((e, hit)) = self.tlbs.lookup(client, key, va) {
            self.cost_due += match hit {
                Hit::L1 => self.costs.l1_tlb_hit,
                Hit::L2 => self.costs.l2_tlb_hit,
            };
            let deny = |t| {
                Err(WalkFault {
                    fault_type: t,
                    level: super::walk::Level::SmallPt,
                    mem_error: None,
                    reads: 0,
                    sys_reads: 0,
                })
            };
            if e.privilege && !privileged {
                return deny(FaultType::PrivViolation);
            }
            match access {
                Access::Write | Access::Atomic if e.read_only => {
                    return deny(FaultType::RoViolation)
                }
                Access::Atomic if e.atomic_disable => return deny(FaultType::AtomicViolation),
                _ => {}
            }
            return Ok(Translation::Mapped {
                target: e.target,
                pa: e.pa | (va & (e.size.bytes() - 1)),
                page_size: e.size,
                source: Source::Tlb(hit),
            });
        }
        self.stats.walks += 1;
        let r = translate_cached(mem, Some(&mut self.pde_cache), pdb, va, access, privileged);
        let (reads, sys) = match &r {
            Ok(Walk::Mapped {
                reads, sys_reads, ..
            })
            | Ok(Walk::Sparse {
                reads, sys_reads, ..
            }) => (*reads, *sys_reads),
            Err(f) => (f.reads, f.sys_reads),
        };
        let cycles = u64::from(reads.saturating_sub(sys)) * self.costs.walk_read_vidmem
            + u64::from(sys) * self.costs.walk_read_sysmem;
        self.cost_due += cycles;
        if self.log_walks {
            if self.walks.len() < MAX_WALK_LOG {
                self.walks.push(WalkDone {
                    va,
                    outcome: match &r {
                        Ok(Walk::Mapped { pa, .. }) => Ok(Some(*pa)),
                        Ok(Walk::Sparse { .. }) => Ok(None),
                        Err(f) => Err(f.fault_type),
                    },
                    reads,
                    sys_reads: sys,
                    cycles,
                });
            } else {
                self.walks_dropped += 1;
            }
        }
        match r? {
            Walk::Mapped {
                target,
                pa,
                page_size,
                pte,
                ..
            } => {
                let size: PageSize = page_size;
                let entry = TlbEntry {
                    pdb: key,
                    va: va & !(size.bytes() - 1),
                    size,
                    target,
                    pa: pa & !(size.bytes() - 1),
                    read_only: pte.read_only(),
                    atomic_disable: pte.atomic_disable(),
                    privilege: pte.privilege(),
                };
                self.tlbs.fill(client, entry);
                self.fill_group(mem, pdb, entry);
                Ok(Translation::Mapped {
                    target,
                    pa,
                    page_size: size,
                    source: Source::Walk,
                })
            }
            Walk::Sparse { .. } => Ok(Translation::Sparse),
        }
    }
}

impl Mmu {
    /// After a walk of `e`'s page: the other mapped pages of its L2 group go into the L2 too
    /// (one walk makes the whole group available, as the P100 measurement shows; see
    /// [`super::tlb`]). Their reads are not charged: the profile's miss cost is the measured
    /// cost of the whole fill. Pages of another size, sparse or faulting pages stay out.
    fn fill_group<M: GpuMemory>(&mut self, mem: &M, pdb: Pdb, e: TlbEntry) {
        let (base, pages) = self.tlbs.l2_group(e.va, e.size);
        for i in 0..pages {
            let va = base + i * e.size.bytes();
            if va == e.va {
                continue;
            }
            let walk = translate_cached(
                mem,
                Some(&mut self.pde_cache),
                pdb,
                va,
                Access::Prefetch,
                true,
            );
            if let Ok(Walk::Mapped {
                target,
                pa,
                page_size,
                pte,
                ..
            }) = walk
            {
                if page_size == e.size {
                    self.tlbs.fill_l2(TlbEntry {
                        va,
                        target,
                        pa: pa & !(page_size.bytes() - 1),
                        read_only: pte.read_only(),
                        atomic_disable: pte.atomic_disable(),
                        privilege: pte.privilege(),
                        ..e
                    });
                }
            }
        }
    }
}

/// The invalidate registers, as the device's BAR0 map routes them here.
impl Mmu {
    /// Reads one of [`regs`].
    pub fn read32(&mut self, offset: u32) -> Option<u32> {
        Some(match offset {
            regs::STATUS => {
                (self.ctrl & !STATUS_FIELDS) | FLUSH_SLOTS << 16 | u32::from(self.queued) << 15
            }
            regs::PDB_LO => self.pdb_lo,
            regs::PDB_HI => self.pdb_hi,
            regs::TRIGGER => 0,
            _ => return None,
        })
    }

    /// Writes one of [`regs`]; `false` when not decoded.
    pub fn write32(&mut self, offset: u32, value: u32) -> bool {
        match offset {
            regs::STATUS => self.ctrl = value & !STATUS_FIELDS,
            regs::PDB_LO => self.pdb_lo = value,
            regs::PDB_HI => self.pdb_hi = value,
            regs::TRIGGER => self.trigger(value),
            _ => return false,
        }
        true
    }

    /// Back to the power-on state (the walk log setting is kept).
    pub fn reset(&mut self) {
        let log = self.log_walks;
        *self = Mmu::new(self.cfg, self.costs);
        self.log_walks = log;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::mem::{Memory, VidMem};
    use crate::mmu::{DualPde, Pde, PdeAperture, Pte};
    use crate::timing::P100;
    use vm_memory::{GuestAddress, GuestMemoryMmap};

    /// One 4 KiB page at VA 0 mapped to system page 0x5000, tables in video memory.
    fn setup() -> (VidMem, Pdb) {
        let mut vid = VidMem::new(1 << 20);
        let (pd3, pd2, pd1, pd0, spt) = (0x1000, 0x2000, 0x3000, 0x4000, 0x5000);
        for (t, next) in [(pd3, pd2), (pd2, pd1), (pd1, pd0)] {
            vid.write_u64(t, Pde::build(PdeAperture::Video, false, next).0)
                .unwrap();
        }
        let d = DualPde::build(
            (PdeAperture::Invalid, false, 0),
            (PdeAperture::Video, false, spt),
        );
        vid.write_u64(pd0 + 8, d.hi).unwrap();
        vid.write_u64(spt, Pte::pfn_system(0x5000, false, true).0)
            .unwrap();
        (
            vid,
            Pdb {
                target: Target::Video,
                addr: pd3,
            },
        )
    }

    #[test]
    fn walks_are_logged_when_asked_and_hits_are_not() {
        let (mut vid, pdb) = setup();
        let ram = GuestMemoryMmap::<()>::from_ranges(&[(GuestAddress(0), 0x10000)]).unwrap();
        let mem = Memory {
            vid: &mut vid,
            sys: &ram,
        };
        let mut mmu = Mmu::new(TlbConfig::default(), P100);
        let c = ClientKind::Gpc(0);
        mmu.translate(&mem, c, pdb, 0x123, Access::Read, false)
            .unwrap();
        assert!(!mmu.has_walks(), "logging is off by default");
        mmu.set_walk_log(true);
        mmu.reset();
        mmu.translate(&mem, c, pdb, 0x123, Access::Read, false)
            .unwrap();
        mmu.translate(&mem, c, pdb, 0x456, Access::Read, false)
            .unwrap();
        assert!(mmu
            .translate(&mem, c, pdb, 0x20_0000, Access::Read, false)
            .is_err());
        let (walks, dropped) = mmu.take_walks();
        assert_eq!(dropped, 0);
        assert_eq!(
            walks.len(),
            2,
            "the second translation hit the TLB: {walks:?}"
        );
        assert_eq!(walks[0].va, 0x123);
        assert_eq!(walks[0].outcome, Ok(Some(0x5123)));
        assert!(walks[0].reads >= 5);
        assert_eq!(
            walks[0].cycles,
            u64::from(walks[0].reads) * P100.walk_read_vidmem
        );
        assert_eq!(walks[1].va, 0x20_0000);
        assert!(walks[1].outcome.is_err());
        assert!(!mmu.has_walks());
    }

    #[test]
    fn one_walk_fills_the_mapped_pages_of_its_l2_group_and_is_charged_once() {
        let (mut vid, pdb) = setup();
        // Pages 1..=3 of the same small page table mapped too; page 4 is not.
        for p in 1..4u64 {
            vid.write_u64(
                0x5000 + 8 * p,
                Pte::pfn_system(0x5000 + p * 0x1000, false, true).0,
            )
            .unwrap();
        }
        let ram = GuestMemoryMmap::<()>::from_ranges(&[(GuestAddress(0), 0x10000)]).unwrap();
        let mem = Memory {
            vid: &mut vid,
            sys: &ram,
        };
        let mut mmu = Mmu::new(TlbConfig::P100, P100);
        mmu.set_walk_log(true);
        let c = ClientKind::Gpc(0);
        mmu.translate(&mem, c, pdb, 0x10, Access::Read, false)
            .unwrap();
        let (walks, _) = mmu.take_walks();
        assert_eq!(walks.len(), 1);
        assert_eq!(mmu.take_cost(), walks[0].cycles, "siblings are not charged");
        // Another client (empty L1) finds the siblings in the L2; the unmapped page walks.
        let other = ClientKind::Gpc(1);
        for p in 1..4u64 {
            let t = mmu.translate(&mem, other, pdb, p * 0x1000, Access::Read, false);
            assert_eq!(
                t,
                Ok(Translation::Mapped {
                    target: Target::SysCoherent,
                    pa: 0x5000 + p * 0x1000,
                    page_size: PageSize::K4,
                    source: Source::Tlb(Hit::L2),
                })
            );
        }
        assert_eq!(mmu.take_cost(), 3 * P100.l2_tlb_hit);
        assert!(mmu
            .translate(&mem, other, pdb, 0x4000, Access::Read, false)
            .is_err());
        assert_eq!(
            mmu.take_walks().0.len(),
            1,
            "the unmapped page was not cached"
        );
        // The legacy geometry caches only the page walked.
        let mut legacy = Mmu::new(TlbConfig::LEGACY, P100);
        legacy
            .translate(&mem, c, pdb, 0x10, Access::Read, false)
            .unwrap();
        assert!(matches!(
            legacy.translate(&mem, other, pdb, 0x1000, Access::Read, false),
            Ok(Translation::Mapped {
                source: Source::Walk,
                ..
            })
        ));
    }

    #[test]
    fn walk_then_tlb_hit_with_costs_and_permissions() {
        let (mut vid, pdb) = setup();
        let ram = GuestMemoryMmap::<()>::from_ranges(&[(GuestAddress(0), 0x10000)]).unwrap();
        let mem = Memory {
            vid: &mut vid,
            sys: &ram,
        };
        let mut mmu = Mmu::new(TlbConfig::default(), P100);
        let c = ClientKind::Gpc(0);
        let t = mmu
            .translate(&mem, c, pdb, 0x123, Access::Read, false)
            .unwrap();
        assert_eq!(
            t,
            Translation::Mapped {
                target: Target::SysCoherent,
                pa: 0x5123,
                page_size: PageSize::K4,
                source: Source::Walk
            }
        );
        assert_eq!(mmu.take_cost(), 6 * P100.walk_read_vidmem);
        let t = mmu
            .translate(&mem, c, pdb, 0x456, Access::Read, false)
            .unwrap();
        assert!(matches!(
            t,
            Translation::Mapped {
                pa: 0x5456,
                source: Source::Tlb(Hit::L1),
                ..
            }
        ));
        assert_eq!(mmu.take_cost(), P100.l1_tlb_hit);
        // The cached entry keeps the PTE's read-only bit.
        let f = mmu
            .translate(&mem, c, pdb, 0x10, Access::Write, false)
            .unwrap_err();
        assert_eq!(f.fault_type, FaultType::RoViolation);
        assert_eq!(mmu.stats().walks, 1);
    }

    #[test]
    fn invalidate_registers_as_nouveau_drives_them() {
        let (mut vid, pdb) = setup();
        let ram = GuestMemoryMmap::<()>::from_ranges(&[(GuestAddress(0), 0x10000)]).unwrap();
        let mut mmu = Mmu::new(TlbConfig::default(), P100);
        let c = ClientKind::Gpc(0);
        {
            let mem = Memory {
                vid: &mut vid,
                sys: &ram,
            };
            mmu.translate(&mem, c, pdb, 0, Access::Read, false).unwrap();
        }
        // The PTE changes under the TLB: unmapped.
        vid.write_u64(0x5000, 0).unwrap();
        // gf100_vmm_invalidate: wait for free slots, write the PDB, trigger, wait for bit 15.
        assert_ne!(mmu.read32(regs::STATUS).unwrap() & 0x00ff_0000, 0);
        let v = (pdb.addr >> 12) << 4; // aperture 0: video memory
        mmu.write32(regs::PDB_LO, v as u32);
        mmu.write32(regs::PDB_HI, (v >> 32) as u32);
        mmu.write32(regs::TRIGGER, 0x8000_0000 | 1); // PAGE_ALL of that PDB
        assert_ne!(mmu.read32(regs::STATUS).unwrap() & 0x0000_8000, 0);
        assert_eq!(mmu.stats().invalidates, 1);
        let mem = Memory {
            vid: &mut vid,
            sys: &ram,
        };
        let f = mmu
            .translate(&mem, c, pdb, 0, Access::Read, false)
            .unwrap_err();
        assert_eq!(
            f.fault_type,
            FaultType::Pte,
            "the stale translation is gone"
        );
        // REPLAY global (0xb) and a targeted cancel (0x1b) are counted.
        mmu.write32(regs::TRIGGER, 0x8000_000b);
        mmu.write32(regs::TRIGGER, 0x8000_001b);
        assert_eq!((mmu.stats().replays, mmu.stats().cancels), (1, 1));
        // Without bit 31 nothing happens.
        mmu.write32(regs::TRIGGER, 1);
        assert_eq!(mmu.stats().invalidates, 3);
    }
}
