//! The GPU side of a scan: the space's page tables walked leaf by leaf (a 2 MiB PTE in a PD0
//! slot, a big-page table, a small-page table), each table read once within the bounds, and
//! a leaf in video memory that nothing wrote since the last scan taken from that scan's
//! [`Picture`] unread (video memory stamps its writes, [`crate::mem::VidMem::written_since`]).
//! Layouts from [`crate::mmu::geometry`] and [`crate::mmu::format`].

use std::collections::{BTreeMap, BTreeSet};

use super::{Found, MAX_SCAN_PTES, MAX_SCAN_TABLES};
use crate::mem::{GpuMemory, Target};
use crate::mmu::format::{DualPde, Pde, PdeAperture, Pte};
use crate::mmu::geometry;
use crate::mmu::walk::Pdb;

pub(super) fn read_table<M: GpuMemory + ?Sized>(
    mem: &M,
    t: Target,
    a: u64,
    n: usize,
) -> Option<Vec<u64>> {
    let mut b = vec![0u8; n * 8];
    mem.read_bytes(t, a, &mut b).ok()?;
    Some(
        b.chunks_exact(8)
            .map(|c| u64::from_le_bytes(c.try_into().expect("8")))
            .collect(),
    )
}

/// The kinds of leaf a PD0 entry leads to, in the order a scan visits them.
pub(super) const LEAF_2M: u8 = 0;
pub(super) const LEAF_BIG: u8 = 1;
pub(super) const LEAF_SMALL: u8 = 2;

/// A leaf of a GPU space, by the VA its PD0 entry covers and its kind ([`LEAF_2M`] …).
/// Ordered as a scan visits leaves.
pub(super) type LeafKey = (u64, u8);

/// The valid PTEs one leaf held at a scan: a 2 MiB PTE in a PD0 slot, or a big-page or
/// small-page table.
#[derive(Debug, Clone)]
pub(super) struct Leaf {
    /// Where it was read: target key and address (of the table, or of the PD0 slot).
    pub(super) table: (u8, u64),
    /// Its valid PTEs, by VA.
    pub(super) found: Vec<Found>,
}

/// What a space's last scan saw, so that the next one re-reads only the leaves written since.
#[derive(Debug, Clone, Default)]
pub(super) struct Picture {
    /// The video memory's write epoch when that scan began.
    pub(super) epoch: u64,
    pub(super) leaves: BTreeMap<LeafKey, Leaf>,
}

pub(super) fn target_key(t: Target) -> u8 {
    match t {
        Target::Video => 0,
        Target::Peer(p) => 1 + p.min(250),
        Target::SysCoherent | Target::SysNoncoherent => 255,
    }
}

/// What [`enumerate`] found.
#[derive(Debug, Default)]
pub(super) struct Enumeration {
    /// Every leaf reached, with its valid PTEs.
    pub(super) leaves: BTreeMap<LeafKey, Leaf>,
    /// The leaves read afresh (the others were taken unchanged from the last picture).
    pub(super) fresh: Vec<LeafKey>,
    /// Leaves taken unchanged from the last picture.
    pub(super) reused: u64,
    /// Valid PTEs collected (bounded by [`MAX_SCAN_PTES`]).
    pub(super) ptes: usize,
    /// PD0 slots that held a 2 MiB PTE and now read as a big-page-table pointer: (VA, low word).
    pub(super) hazards: Vec<(u64, u64)>,
    pub(super) tables: usize,
    /// Tables reached a second time.
    pub(super) aliases: u64,
    pub(super) visited: BTreeSet<(u8, u64)>,
    pub(super) truncated: bool,
}

impl Enumeration {
    /// Whether the table at (`t`, `a`) may be read: within the bound and not read before.
    fn visit(&mut self, t: Target, a: u64) -> bool {
        if self.truncated {
            return false;
        }
        if !self.visited.insert((target_key(t), a)) {
            self.aliases += 1;
            return false;
        }
        self.tables += 1;
        if self.tables > MAX_SCAN_TABLES {
            self.truncated = true;
            return false;
        }
        true
    }

    /// Adds a leaf read afresh; its PTEs are cut at [`MAX_SCAN_PTES`] (and the scan marked
    /// truncated). Returns false once truncated.
    fn fresh(&mut self, key: LeafKey, table: (u8, u64), mut found: Vec<Found>) -> bool {
        let room = MAX_SCAN_PTES - self.ptes;
        let full = found.len() > room;
        found.truncate(room);
        self.ptes += found.len();
        // An empty leaf is read afresh too: what it held before is gone.
        self.fresh.push(key);
        if !found.is_empty() {
            self.leaves.insert(key, Leaf { table, found });
        }
        if full {
            self.truncated = true;
        }
        !full
    }

    /// Takes `key` unchanged from the last picture if it was read from the same place and
    /// nothing in `len` bytes there was written since; returns whether it did.
    fn reuse<M: GpuMemory + ?Sized>(
        &mut self,
        mem: &M,
        last: &mut Option<&mut Picture>,
        key: LeafKey,
        at: (Target, u64, u64),
    ) -> bool {
        let Some(pic) = last.as_deref_mut() else {
            return false;
        };
        let (t, addr, len) = at;
        let same = pic.leaves.get(&key).is_some_and(|l| {
            l.table == (target_key(t), addr) && l.found.len() <= MAX_SCAN_PTES - self.ptes
        });
        if !same || mem.written_since(t, addr, len, pic.epoch) {
            return false;
        }
        let leaf = pic.leaves.remove(&key).expect("checked");
        self.reused += 1;
        self.ptes += leaf.found.len();
        self.leaves.insert(key, leaf);
        true
    }

    /// Every PTE, in the order the scan visited them.
    pub(super) fn found(&self) -> impl Iterator<Item = &Found> {
        self.leaves.values().flat_map(|l| l.found.iter())
    }
}

/// Collects every valid PTE of the space (small, big and 2 MiB) within the bounds, leaf by
/// leaf. With `last` (the previous scan's picture), a leaf in video memory read from the same
/// table, none of whose bytes was written since, is taken from the picture unread (moved out
/// of it: what stays in `last` is what changed or is gone). Directories are always read.
/// PD0 slots that held a 2 MiB PTE at the last scan (`shadow`) and now have IS_PTE clear with
/// the same address are not followed: they go to the hazards.
pub(super) fn enumerate<M: GpuMemory + ?Sized>(
    mem: &M,
    pdb: Pdb,
    shadow: &BTreeMap<u64, (u64, u8)>,
    mut last: Option<&mut Picture>,
    en: &mut Enumeration,
) {
    // PD3 (4 entries), PD2 and PD1 (512 each): gather the PD0 tables with their VA bases.
    let mut dirs = Vec::new();
    if en.visit(pdb.target, pdb.addr) {
        dirs.push((0u64, pdb.target, pdb.addr));
    }
    for level in &geometry::DIRS {
        let (n, shift) = (level.entries as usize, level.shift);
        let mut next = Vec::new();
        for (base, t, a) in dirs {
            let Some(table) = read_table(mem, t, a, n) else {
                continue;
            };
            for (i, e) in table.iter().enumerate() {
                let Some(tn) = Pde(*e).aperture().target() else {
                    continue;
                };
                if en.visit(tn, Pde(*e).address()) {
                    next.push((base | (i as u64) << shift, tn, Pde(*e).address()));
                } else if en.truncated {
                    return;
                }
            }
        }
        dirs = next;
    }
    for (base1, t0, pd0_addr) in dirs {
        let pd0_words = (geometry::PD0_ENTRIES * geometry::PD0_ENTRY_BYTES / 8) as usize;
        let Some(pd0) = read_table(mem, t0, pd0_addr, pd0_words) else {
            continue;
        };
        for i0 in 0..geometry::PD0_ENTRIES as usize {
            let d = DualPde {
                lo: pd0[2 * i0],
                hi: pd0[2 * i0 + 1],
            };
            let va0 = base1 | (i0 as u64) << geometry::PD0_SHIFT;
            if d.is_pte() {
                let slot = pd0_addr + geometry::PD0_ENTRY_BYTES * i0 as u64;
                let f = Found {
                    va: va0,
                    shift: geometry::PD0_SHIFT as u8,
                    pte: d.lo,
                    slot: (t0, slot),
                };
                let key = (va0, LEAF_2M);
                let table = (target_key(t0), slot);
                // The PD0 was read anyway: the PTE is unchanged if the picture holds it.
                let kept = last.as_deref_mut().is_some_and(|p| {
                    p.leaves
                        .get(&key)
                        .is_some_and(|l| l.table == table && l.found == [f])
                });
                if kept && en.ptes < MAX_SCAN_PTES {
                    let leaf = last.as_deref_mut().and_then(|p| p.leaves.remove(&key));
                    en.ptes += 1;
                    en.reused += 1;
                    en.leaves.insert(key, leaf.expect("checked"));
                } else if !en.fresh(key, table, vec![f]) {
                    return;
                }
                continue;
            }
            let pd0_shift = geometry::PD0_SHIFT as u8;
            if let Some(&(was, _)) = shadow.get(&va0).filter(|e| e.1 == pd0_shift) {
                if d.lo == was & !1 && d.big_aperture() != PdeAperture::Invalid {
                    en.hazards.push((va0, d.lo));
                    continue;
                }
            }
            for (kind, shift, n, tgt, addr) in [
                (
                    LEAF_BIG,
                    geometry::BIG_SHIFT as u8,
                    geometry::BIG_ENTRIES as usize,
                    d.big_aperture().target(),
                    d.big_address(),
                ),
                (
                    LEAF_SMALL,
                    geometry::SMALL_SHIFT as u8,
                    geometry::SMALL_ENTRIES as usize,
                    d.small().aperture().target(),
                    d.small().address(),
                ),
            ] {
                let Some(t) = tgt else { continue };
                if !en.visit(t, addr) {
                    if en.truncated {
                        return;
                    }
                    continue;
                }
                let key = (va0, kind);
                let bytes = n as u64 * geometry::ENTRY_BYTES;
                if en.reuse(mem, &mut last, key, (t, addr, bytes)) {
                    continue;
                }
                let Some(pt) = read_table(mem, t, addr, n) else {
                    continue;
                };
                let found = pt
                    .iter()
                    .enumerate()
                    .filter(|(_, &p)| Pte(p).valid())
                    .map(|(i, &p)| Found {
                        va: va0 | (i as u64) << shift,
                        shift,
                        pte: p,
                        slot: (t, addr + geometry::ENTRY_BYTES * i as u64),
                    })
                    .collect();
                if !en.fresh(key, (target_key(t), addr), found) {
                    return;
                }
            }
        }
    }
}

/// Where the small-page PTE for `va` lives, if the directories lead there.
pub(super) fn pte_slot<M: GpuMemory + ?Sized>(mem: &M, pdb: Pdb, va: u64) -> Option<(Target, u64)> {
    let mut t = pdb.target;
    let mut a = pdb.addr;
    for level in &geometry::DIRS {
        let e = Pde(mem.read_u64(t, a + geometry::dir_slot(level, va)).ok()?);
        t = e.aperture().target()?;
        a = e.address();
    }
    let slot = a + geometry::pd0_slot(va);
    let d = DualPde {
        lo: mem.read_u64(t, slot).ok()?,
        hi: mem.read_u64(t, slot + 8).ok()?,
    };
    if d.is_pte() {
        return Some((t, slot));
    }
    let st = d.small().aperture().target()?;
    Some((st, d.small().address() + geometry::small_slot(va)))
}
