//! TLBs: a small fully-associative L1 per client and a shared set-associative L2, both LRU,
//! with the invalidate semantics of `NV_PFB_PRI_MMU_INVALIDATE` (gp100 dev_fb.h; the values
//! nouveau writes are in gp100-facts.md): ALL_VA (bit 0), ALL_PDB (bit 1), HUBTLB_ONLY
//! (bit 2), REPLAY (bits 5:3). An invalidate drops every entry it covers from every level, so
//! a stale translation can never be returned after it.
//!
//! Sizes are parameters ([`TlbConfig`]); the defaults are assumptions, not published GP100
//! figures (NVIDIA does not document them; microbenchmark papers measure latencies, not
//! capacities per client).

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
    /// Entries in each client's L1 (fully associative). Assumed.
    pub l1_entries: usize,
    /// L2 sets. Assumed.
    pub l2_sets: usize,
    /// L2 ways. Assumed.
    pub l2_ways: usize,
}

impl Default for TlbConfig {
    fn default() -> Self {
        TlbConfig {
            l1_entries: 16,
            l2_sets: 128,
            l2_ways: 8,
        }
    }
}

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

/// The TLB hierarchy of the GPU.
#[derive(Debug, Clone)]
pub struct Tlbs {
    cfg: TlbConfig,
    l1: Vec<(ClientKind, Assoc)>,
    l2: Vec<Assoc>,
    clock: u64,
    invalidated: u64,
}

/// Most distinct clients with an L1 (a hostile trace cannot grow this without bound).
const MAX_CLIENTS: usize = 256;

impl Tlbs {
    /// Empty TLBs of the given geometry.
    pub fn new(cfg: TlbConfig) -> Self {
        let sets = cfg.l2_sets.max(1);
        Tlbs {
            cfg,
            l1: Vec::new(),
            l2: (0..sets)
                .map(|_| Assoc {
                    slots: Vec::new(),
                    ways: cfg.l2_ways,
                })
                .collect(),
            clock: 0,
            invalidated: 0,
        }
    }

    fn set_of(&self, pdb: PdbKey, va: u64, size: PageSize) -> usize {
        let page = va / size.bytes();
        ((page ^ (pdb.0 >> 12)) % self.l2.len() as u64) as usize
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
            let base = va & !(size.bytes() - 1);
            let set = self.set_of(pdb, base, size);
            if let Some(e) = self.l2[set].lookup(pdb, va, now) {
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
        self.clock += 1;
        let now = self.clock;
        let set = self.set_of(e.pdb, e.va, e.size);
        self.l2[set].insert(e, now);
        if let Some(l1) = self.l1_of(client) {
            l1.insert(e, now);
        }
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
        fn no_stale_entry_survives_a_covering_invalidate(ops in proptest::collection::vec(op(), 1..200)) {
            let mut t = Tlbs::new(TlbConfig { l1_entries: 4, l2_sets: 8, l2_ways: 2 });
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
