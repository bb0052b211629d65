//! TLBs: a small fully-associative L1 per client and a shared L2, both LRU, with the
//! invalidate semantics of `NV_PFB_PRI_MMU_INVALIDATE` (gp100 dev_fb.h; the values nouveau
//! writes are in gp100-facts.md): ALL_VA (bit 0), ALL_PDB (bit 1), HUBTLB_ONLY (bit 2),
//! REPLAY (bits 5:3). An invalidate drops every entry it covers from every level, so a stale
//! translation can never be returned after it.
//!
//! Geometry is a parameter ([`TlbConfig`]) with two named profiles:
//!
//! - [`TlbConfig::P100`] (the default) follows the one published P100 TLB measurement we
//!   found, the pointer-chase sweep of Karnagel et al., "Big Data causing Big (TLB) Problems:
//!   Taming Random Memory Accesses on the GPU", DaMoN 2017 (doi 10.1145/3076113.3076115),
//!   whose raw data for a Tesla P100-PCIE-16GB is public (github.com/gcoe-dresden/cuda-gpu-tlb,
//!   `results/P100/TLB-Test-12-80-1024-4096.csv` and `TLB-Test-1472-4992-16384-65536.csv`,
//!   2 MiB pages from `cudaMalloc`): the first knee is at 32 MiB (16 L1 entries of 2 MiB),
//!   the second at about 2 GiB (strides of 32 and 64 MiB both miss once 65 32 MiB regions
//!   are live: 65 L2 entries, each covering 32 MiB, i.e. 16 pages). That one walk makes a
//!   whole 32 MiB region available is what the 16 MiB stride shows: past the knee it costs
//!   half a miss per access (357 cycles, halfway between the 302 of an L2 hit and the 412 of
//!   a miss), so the second access to a region hits the entry the first one's walk filled.
//!   The measured L2 is not cleanly LRU (its knee is spread over 2.0–2.3 GiB, like the
//!   unequal sets Mei and Chu found on Kepler and Maxwell, "Dissecting GPU Memory Hierarchy
//!   through Microbenchmarking", IEEE TPDS 2017); the model keeps it fully associative LRU,
//!   which puts the knee at its start. For 4 KiB and 64 KiB pages nothing is published: the
//!   same 16 entries and 65 groups of 16 pages are assumed.
//! - [`TlbConfig::LEGACY`]: the geometry used before the profile was anchored (16 L1 entries,
//!   a 128 × 8 L2 of single pages), every value assumed; kept for comparison.

use super::trigger;
use super::walk::{PageSize, Pdb};
use crate::mem::Target;

/// A cached translation.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TlbEntry {
    /// Address space (PDB) it belongs to.
    pub pdb: PdbKey,
    /// Page-aligned virtual address.
    pub va: u64,
    /// Page size.
    pub size: PageSize,
    /// Memory the page is in.
    pub target: Target,
    /// Page-aligned physical address.
    pub pa: u64,
    /// The PTE forbids writes.
    pub read_only: bool,
    /// The PTE forbids atomics.
    pub atomic_disable: bool,
    /// The PTE is privileged.
    pub privilege: bool,
}

/// A PDB as a comparable key.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct PdbKey(pub u64);

impl From<Pdb> for PdbKey {
    fn from(p: Pdb) -> Self {
        let t = match p.target {
            Target::Video => 0,
            Target::SysCoherent => 2,
            Target::SysNoncoherent => 3,
            Target::Peer(_) => 1,
        };
        PdbKey(p.addr | t)
    }
}

/// TLB geometry.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TlbConfig {
    /// Profile name.
    pub name: &'static str,
    /// Entries in each client's L1 (fully associative, one page each).
    pub l1_entries: usize,
    /// L2 sets.
    pub l2_sets: usize,
    /// L2 ways (entries per set).
    pub l2_ways: usize,
    /// Consecutive, aligned pages of one size one L2 entry covers; a walk fills every mapped
    /// page of its group (1: an entry is one page).
    pub l2_group_pages: u64,
}

impl TlbConfig {
    /// The Tesla P100 as measured (module doc): L1 16 × 2 MiB = 32 MiB, L2 65 × 32 MiB =
    /// 2080 MiB coverage with 2 MiB pages.
    pub const P100: TlbConfig = TlbConfig {
        name: "p100",
        l1_entries: 16,
        l2_sets: 1,
        l2_ways: 65,
        l2_group_pages: 16,
    };

    /// The geometry before the anchoring (every value assumed).
    pub const LEGACY: TlbConfig = TlbConfig {
        name: "legacy",
        l1_entries: 16,
        l2_sets: 128,
        l2_ways: 8,
        l2_group_pages: 1,
    };

    /// A profile by name.
    pub fn by_name(name: &str) -> Option<TlbConfig> {
        [Self::P100, Self::LEGACY]
            .into_iter()
            .find(|c| c.name == name)
    }

    /// Bytes one L2 entry covers for pages of `size`.
    pub fn l2_span(&self, size: PageSize) -> u64 {
        size.bytes()
            .saturating_mul(self.l2_group_pages.clamp(1, MAX_GROUP_PAGES))
    }

    /// Bytes the L1 of one client covers with pages of `size`.
    pub fn l1_coverage(&self, size: PageSize) -> u64 {
        size.bytes().saturating_mul(self.l1_entries as u64)
    }

    /// Bytes the L2 covers with pages of `size`.
    pub fn l2_coverage(&self, size: PageSize) -> u64 {
        self.l2_span(size)
            .saturating_mul((self.l2_sets.max(1) * self.l2_ways) as u64)
    }
}

impl Default for TlbConfig {
    fn default() -> Self {
        Self::P100
    }
}

/// Largest L2 group (a hostile configuration cannot make one entry hold more).
pub const MAX_GROUP_PAGES: u64 = 64;

/// Which clients an L1 serves.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ClientKind {
    /// A GPC client (SM, texture): not touched by HUBTLB_ONLY invalidates.
    Gpc(u8),
    /// A hub client (copy engine, host, BAR).
    Hub(u8),
}

/// An invalidate request, decoded from `NV_PFB_PRI_MMU_INVALIDATE` and the PDB/VA registers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Invalidate {
    /// ALL_VA: every address of the selected address spaces (else only `va`).
    pub all_va: bool,
    /// ALL_PDB: every address space (else only `pdb`).
    pub all_pdb: bool,
    /// HUBTLB_ONLY: leave GPC L1s alone.
    pub hub_only: bool,
    /// The address space when not ALL_PDB.
    pub pdb: PdbKey,
    /// The page when not ALL_VA.
    pub va: u64,
}

impl Invalidate {
    /// Decodes the trigger word (`0x80000000 | type` written to 0x100cbc) with the PDB and VA
    /// registers' contents.
    pub fn from_trigger(word: u32, pdb: PdbKey, va: u64) -> Self {
        Invalidate {
            all_va: trigger::ALL_VA.is_set(u64::from(word)),
            all_pdb: trigger::ALL_PDB.is_set(u64::from(word)),
            hub_only: trigger::HUBTLB_ONLY.is_set(u64::from(word)),
            pdb,
            va,
        }
    }

    fn covers(&self, e: &TlbEntry) -> bool {
        (self.all_pdb || e.pdb == self.pdb)
            && (self.all_va || (self.va >= e.va && self.va - e.va < e.size.bytes()))
    }
}

#[derive(Debug, Clone)]
struct Slot {
    entry: TlbEntry,
    last_use: u64,
}

/// A set of entries with LRU replacement.
#[derive(Debug, Clone, Default)]
struct Assoc {
    slots: Vec<Slot>,
    ways: usize,
}

impl Assoc {
    fn lookup(&mut self, pdb: PdbKey, va: u64, now: u64) -> Option<TlbEntry> {
        let s = self.slots.iter_mut().find(|s| {
            s.entry.pdb == pdb && va >= s.entry.va && va - s.entry.va < s.entry.size.bytes()
        })?;
        s.last_use = now;
        Some(s.entry)
    }

    fn insert(&mut self, e: TlbEntry, now: u64) {
        if self.ways == 0 {
            return;
        }
        if let Some(s) = self
            .slots
            .iter_mut()
            .find(|s| s.entry.pdb == e.pdb && s.entry.va == e.va && s.entry.size == e.size)
        {
            *s = Slot {
                entry: e,
                last_use: now,
            };
            return;
        }
        if self.slots.len() < self.ways {
            self.slots.push(Slot {
                entry: e,
                last_use: now,
            });
            return;
        }
        let victim = self
            .slots
            .iter_mut()
            .min_by_key(|s| s.last_use)
            .expect("ways > 0");
        *victim = Slot {
            entry: e,
            last_use: now,
        };
    }

    fn invalidate(&mut self, inv: &Invalidate) -> usize {
        let before = self.slots.len();
        self.slots.retain(|s| !inv.covers(&s.entry));
        before - self.slots.len()
    }
}

/// Where a lookup hit.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Hit {
    /// The client's L1.
    L1,
    /// The shared L2 (the entry was refilled into the L1).
    L2,
}

/// One L2 entry: an aligned group of pages of one size, each filled or not.
#[derive(Debug, Clone)]
struct Group {
    pdb: PdbKey,
    base: u64,
    size: PageSize,
    pages: Vec<Option<TlbEntry>>,
    last_use: u64,
}

/// One L2 set: groups with LRU replacement.
#[derive(Debug, Clone, Default)]
struct GroupSet {
    groups: Vec<Group>,
    ways: usize,
}

impl GroupSet {
    fn lookup(
        &mut self,
        pdb: PdbKey,
        base: u64,
        size: PageSize,
        va: u64,
        now: u64,
    ) -> Option<TlbEntry> {
        let g = self
            .groups
            .iter_mut()
            .find(|g| g.pdb == pdb && g.base == base && g.size == size)?;
        let e = g
            .pages
            .get(((va - base) / size.bytes()) as usize)
            .copied()
            .flatten()?;
        g.last_use = now;
        Some(e)
    }

    fn insert(&mut self, e: TlbEntry, base: u64, pages: usize, now: u64) {
        if self.ways == 0 {
            return;
        }
        let idx = ((e.va - base) / e.size.bytes()) as usize;
        let at = match self
            .groups
            .iter()
            .position(|g| g.pdb == e.pdb && g.base == base && g.size == e.size)
        {
            Some(i) => i,
            None => {
                let fresh = Group {
                    pdb: e.pdb,
                    base,
                    size: e.size,
                    pages: vec![None; pages],
                    last_use: now,
                };
                if self.groups.len() < self.ways {
                    self.groups.push(fresh);
                    self.groups.len() - 1
                } else {
                    let (i, _) = self
                        .groups
                        .iter()
                        .enumerate()
                        .min_by_key(|(_, g)| g.last_use)
                        .expect("ways > 0");
                    self.groups[i] = fresh;
                    i
                }
            }
        };
        let g = &mut self.groups[at];
        if let Some(slot) = g.pages.get_mut(idx) {
            *slot = Some(e);
        }
        g.last_use = now;
    }

    fn invalidate(&mut self, inv: &Invalidate) -> usize {
        let mut n = 0;
        for g in &mut self.groups {
            for p in &mut g.pages {
                if p.is_some_and(|e| inv.covers(&e)) {
                    *p = None;
                    n += 1;
                }
            }
        }
        self.groups.retain(|g| g.pages.iter().any(Option::is_some));
        n
    }
}

/// The TLB hierarchy of the GPU.
#[derive(Debug, Clone)]
pub struct Tlbs {
    cfg: TlbConfig,
    l1: Vec<(ClientKind, Assoc)>,
    l2: Vec<GroupSet>,
    clock: u64,
    invalidated: u64,
}

/// Most distinct clients with an L1 (a hostile trace cannot grow this without bound).
const MAX_CLIENTS: usize = 256;

/// Most L2 entries (sets × ways) a configuration may ask for.
pub const MAX_L2_ENTRIES: usize = 1 << 16;

impl Tlbs {
    /// Empty TLBs of the given geometry (an L2 larger than [`MAX_L2_ENTRIES`] is cut down).
    pub fn new(cfg: TlbConfig) -> Self {
        let sets = cfg.l2_sets.clamp(1, MAX_L2_ENTRIES);
        let ways = cfg.l2_ways.min(MAX_L2_ENTRIES / sets);
        Tlbs {
            cfg,
            l1: Vec::new(),
            l2: (0..sets)
                .map(|_| GroupSet {
                    groups: Vec::new(),
                    ways,
                })
                .collect(),
            clock: 0,
            invalidated: 0,
        }
    }

    /// The geometry.
    pub fn config(&self) -> TlbConfig {
        self.cfg
    }

    fn group_pages(&self) -> u64 {
        self.cfg.l2_group_pages.clamp(1, MAX_GROUP_PAGES)
    }

    /// The L2 group holding the page of `size` at `va`: its base and its page count (the pages
    /// a walk of `va` fills, [`Tlbs::fill_l2`]).
    pub fn l2_group(&self, va: u64, size: PageSize) -> (u64, u64) {
        (va & !(self.cfg.l2_span(size) - 1), self.group_pages())
    }

    fn set_of(&self, pdb: PdbKey, base: u64, size: PageSize) -> usize {
        let group = base / self.cfg.l2_span(size);
        ((group ^ (pdb.0 >> 12)) % self.l2.len() as u64) as usize
    }

    fn l1_of(&mut self, client: ClientKind) -> Option<&mut Assoc> {
        if let Some(i) = self.l1.iter().position(|(c, _)| *c == client) {
            return Some(&mut self.l1[i].1);
        }
        if self.l1.len() >= MAX_CLIENTS {
            return None;
        }
        self.l1.push((
            client,
            Assoc {
                slots: Vec::new(),
                ways: self.cfg.l1_entries,
            },
        ));
        self.l1.last_mut().map(|(_, a)| a)
    }

    /// Looks `va` up for `client`: L1, then L2 (refilling the L1).
    pub fn lookup(&mut self, client: ClientKind, pdb: PdbKey, va: u64) -> Option<(TlbEntry, Hit)> {
        self.clock += 1;
        let now = self.clock;
        if let Some(e) = self.l1_of(client).and_then(|l1| l1.lookup(pdb, va, now)) {
            return Some((e, Hit::L1));
        }
        for size in [PageSize::K4, PageSize::K64, PageSize::M2] {
            let (base, _) = self.l2_group(va, size);
            let set = self.set_of(pdb, base, size);
            if let Some(e) = self.l2[set].lookup(pdb, base, size, va, now) {
                if let Some(l1) = self.l1_of(client) {
                    l1.insert(e, now);
                }
                return Some((e, Hit::L2));
            }
        }
        None
    }

    /// Caches a translation after a walk (in the L2 and the client's L1).
    pub fn fill(&mut self, client: ClientKind, e: TlbEntry) {
        self.fill_l2(e);
        let now = self.clock;
        if let Some(l1) = self.l1_of(client) {
            l1.insert(e, now);
        }
    }

    /// Caches a translation in the L2 only (another page of the group a walk filled).
    pub fn fill_l2(&mut self, e: TlbEntry) {
        self.clock += 1;
        let now = self.clock;
        let (base, pages) = self.l2_group(e.va, e.size);
        let set = self.set_of(e.pdb, base, e.size);
        self.l2[set].insert(e, base, pages as usize, now);
    }

    /// Applies an invalidate; returns how many entries it dropped.
    pub fn invalidate(&mut self, inv: &Invalidate) -> usize {
        let mut n = 0;
        for (client, l1) in &mut self.l1 {
            if inv.hub_only && matches!(client, ClientKind::Gpc(_)) {
                continue;
            }
            n += l1.invalidate(inv);
        }
        for s in &mut self.l2 {
            n += s.invalidate(inv);
        }
        self.invalidated += n as u64;
        n
    }

    /// Entries dropped by invalidates so far.
    pub fn invalidated(&self) -> u64 {
        self.invalidated
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn entry(pdb: u64, va: u64, size: PageSize, pa: u64) -> TlbEntry {
        TlbEntry {
            pdb: PdbKey(pdb),
            va: va & !(size.bytes() - 1),
            size,
            target: Target::Video,
            pa,
            read_only: false,
            atomic_disable: false,
            privilege: false,
        }
    }

    #[test]
    fn hit_in_l1_then_l2_after_eviction() {
        let mut t = Tlbs::new(TlbConfig {
            l1_entries: 2,
            l2_sets: 4,
            l2_ways: 4,
            ..TlbConfig::LEGACY
        });
        let c = ClientKind::Gpc(0);
        for i in 0..3u64 {
            t.fill(c, entry(0x1000, i << 12, PageSize::K4, i << 20));
        }
        // The oldest fell out of the 2-entry L1 but is still in the L2.
        assert_eq!(
            t.lookup(c, PdbKey(0x1000), 0x0123).map(|x| x.1),
            Some(Hit::L2)
        );
        assert_eq!(
            t.lookup(c, PdbKey(0x1000), 0x0123).map(|x| x.1),
            Some(Hit::L1)
        );
        assert!(
            t.lookup(c, PdbKey(0x2000), 0x0123).is_none(),
            "other address space"
        );
        // A 2 MiB entry covers its whole range.
        t.fill(c, entry(0x1000, 0x4000_0000, PageSize::M2, 0));
        assert!(t
            .lookup(ClientKind::Hub(1), PdbKey(0x1000), 0x401f_ffff)
            .is_some());
    }

    #[test]
    fn hub_only_leaves_gpc_l1_alone_but_drops_the_l2() {
        let mut t = Tlbs::new(TlbConfig::default());
        let (g, h) = (ClientKind::Gpc(0), ClientKind::Hub(0));
        t.fill(g, entry(0x1000, 0x5000, PageSize::K4, 0));
        t.fill(h, entry(0x1000, 0x5000, PageSize::K4, 0));
        let inv = Invalidate::from_trigger(0x80000004 | 1, PdbKey(0x1000), 0);
        assert!(inv.hub_only && inv.all_va && !inv.all_pdb);
        t.invalidate(&inv);
        assert!(t.lookup(h, PdbKey(0x1000), 0x5000).is_none());
        assert_eq!(
            t.lookup(g, PdbKey(0x1000), 0x5000).map(|x| x.1),
            Some(Hit::L1)
        );
    }

    #[test]
    fn an_l2_entry_holds_a_group_and_lru_replaces_whole_groups() {
        let mut t = Tlbs::new(TlbConfig {
            name: "test",
            l1_entries: 1,
            l2_sets: 1,
            l2_ways: 2,
            l2_group_pages: 16,
        });
        let c = ClientKind::Gpc(0);
        let mib = 1u64 << 20;
        assert_eq!(
            t.l2_group(0x4000_0000 + 5 * mib, PageSize::M2),
            (0x4000_0000, 16)
        );
        // A walk of one page and its group's other pages fill one L2 entry.
        t.fill(c, entry(0x1000, 0x4000_0000, PageSize::M2, 0));
        for p in 1..16u64 {
            t.fill_l2(entry(
                0x1000,
                0x4000_0000 + p * 2 * mib,
                PageSize::M2,
                p << 21,
            ));
        }
        let (e, hit) = t.lookup(c, PdbKey(0x1000), 0x4000_0000 + 31 * mib).unwrap();
        assert_eq!((hit, e.pa), (Hit::L2, 15 << 21));
        // Two more groups: the least recently used group (the first) goes as a whole.
        t.fill(c, entry(0x1000, 0x4200_0000, PageSize::M2, 0));
        t.fill(c, entry(0x1000, 0x4400_0000, PageSize::M2, 0));
        assert!(t
            .lookup(c, PdbKey(0x1000), 0x4000_0000 + 31 * mib)
            .is_none());
        // An invalidate of one page drops that page, not its group's others.
        t.fill_l2(entry(0x1000, 0x4200_0000 + 2 * mib, PageSize::M2, 0));
        let inv = Invalidate {
            all_va: false,
            all_pdb: false,
            hub_only: false,
            pdb: PdbKey(0x1000),
            va: 0x4200_0000,
        };
        assert_eq!(
            t.invalidate(&inv),
            1,
            "the L2 copy (the L1 holds another page)"
        );
        assert!(t.lookup(c, PdbKey(0x1000), 0x4200_0000).is_none());
        assert!(t.lookup(c, PdbKey(0x1000), 0x4200_0000 + 2 * mib).is_some());
    }

    #[test]
    fn profiles_are_named_and_state_their_coverage() {
        assert_eq!(TlbConfig::by_name("p100"), Some(TlbConfig::P100));
        assert_eq!(TlbConfig::by_name("legacy"), Some(TlbConfig::LEGACY));
        assert_eq!(TlbConfig::by_name("x"), None);
        assert_eq!(TlbConfig::default(), TlbConfig::P100);
        let l = TlbConfig::LEGACY;
        assert_eq!(l.l2_coverage(PageSize::K4), 1024 * 4096);
        assert_eq!(TlbConfig::P100.l2_coverage(PageSize::K4), 65 * 16 * 4096);
    }

    #[derive(Debug, Clone)]
    enum Op {
        Fill(u8, u64, u64, u8),
        Inv(u32, u64, u64),
        Look(u8, u64, u64),
    }

    fn op() -> impl Strategy<Value = Op> {
        prop_oneof![
            (0u8..4, 0u64..3, 0u64..(1 << 24), 0u8..3)
                .prop_map(|(c, p, v, s)| Op::Fill(c, p, v, s)),
            (0u32..8, 0u64..3, 0u64..(1 << 24)).prop_map(|(w, p, v)| Op::Inv(w, p, v)),
            (0u8..4, 0u64..3, 0u64..(1 << 24)).prop_map(|(c, p, v)| Op::Look(c, p, v)),
        ]
    }

    proptest! {
        /// After any invalidate covering an address, no lookup of it returns an entry filled
        /// before that invalidate (for the clients the invalidate covers).
        #[test]
        fn no_stale_entry_survives_a_covering_invalidate(ops in proptest::collection::vec(op(), 1..200), group in prop_oneof![Just(1u64), Just(4u64), Just(16u64)]) {
            let mut t = Tlbs::new(TlbConfig { l1_entries: 4, l2_sets: 8, l2_ways: 2, l2_group_pages: group, name: "test" });
            // Generation of every fill; invalidates record, per (client, pdb), covered ranges.
            let mut gen = 0u64;
            let mut dead: Vec<(bool, Invalidate, u64)> = Vec::new(); // (hub_only, inv, gen at inv)
            for o in ops {
                gen += 1;
                match o {
                    Op::Fill(c, p, v, s) => {
                        let size = [PageSize::K4, PageSize::K64, PageSize::M2][s as usize];
                        let client = if c < 2 { ClientKind::Gpc(c) } else { ClientKind::Hub(c) };
                        t.fill(client, entry(0x1000 * (p + 1), v, size, gen));
                    }
                    Op::Inv(w, p, v) => {
                        let inv = Invalidate::from_trigger(w, PdbKey(0x1000 * (p + 1)), v);
                        t.invalidate(&inv);
                        dead.push((inv.hub_only, inv, gen));
                    }
                    Op::Look(c, p, v) => {
                        let client = if c < 2 { ClientKind::Gpc(c) } else { ClientKind::Hub(c) };
                        if let Some((e, _)) = t.lookup(client, PdbKey(0x1000 * (p + 1)), v) {
                            // e.pa holds the generation it was filled at.
                            for (hub_only, inv, at) in &dead {
                                let applies = !hub_only || matches!(client, ClientKind::Hub(_));
                                if applies && inv.covers(&e) && e.pa < *at {
                                    prop_assert!(false, "stale {e:?} survived {inv:?}");
                                }
                            }
                        }
                    }
                }
            }
        }
    }
}
