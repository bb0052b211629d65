//! The PTE checker: every GPU PTE nouveau maps for a process's shared (SVM) address space is
//! compared with that process's own CPU page tables, in guest RAM.
//!
//! A guest test registers the address space to check: a channel (whose instance block names
//! the GPU page directory) and the process's page-table root (`__pa(mm->pgd)`, read through
//! the test-only module `gp100emu_pgd`, see guest-tests/), plus the window nouveau keeps for
//! its own buffers (SVM_INIT's unmanaged range), which is not mirrored and not checked.
//!
//! When it runs:
//! - **at every TLB invalidate that covers the space** (nouveau flushes after every PFNMAP
//!   and PFNCLR; `gp100_vmm_flush`), the whole GPU address space is scanned: each valid PTE
//!   is judged, and the PTEs that changed since the last scan become `PteWrite` trace events;
//! - **at every GPU use of a translation** (the access engine, [`crate::access`]): the
//!   translation actually used, from a TLB or a walk, is judged, which catches stale TLB
//!   entries and PTEs left behind without a flush.
//!
//! The rules ([`Reason`]): a system-memory PTE must map the same physical page the CPU maps
//! at that address, and may be writable only if the CPU mapping is writable at every level.
//! Non-present CPU entries are decoded ([`x86::SwapEntry`]): a device-exclusive entry (the
//! page a device holds for atomics, `make_device_exclusive_range`) or a migration entry (a
//! page being migrated) stands for its page frame, writable as its type says; a video-memory
//! PTE (a page migrated to the GPU) needs a device-private entry. Any other valid PTE in the
//! mirrored range is a violation.
//!
//! A separate class, **hazards**: a PD0 slot that held a 2 MiB PTE and now has IS_PTE (bit 0)
//! clear but its aperture and address kept. In the version-2 format that is a valid pointer
//! to a big-page table — the data page itself — so a walk there would read data as PTEs.
//! nouveau 6.12 leaves exactly this between `gp100_vmm_pd0_pfn_clear` and the final unmap
//! (it clears only bit 0, then flushes). The checker reports it as a hazard and does not
//! descend into it. Every violation is counted, kept (the last one, with VA, GPU PTE, CPU PTE and
//! instance, readable through the window) and logged as a trace event — never ignored.
//!
//! Seeded bugs ([`Inject`]) make the device itself corrupt what nouveau wrote, so a test can
//! show the checker catches each kind.

pub mod x86;

use std::collections::BTreeMap;

use crate::mem::{GpuMemory, PhysMem, Target};
use crate::mmu::format::{DualPde, Pde, PdeAperture, Pte};
use crate::mmu::walk::Pdb;
use crate::trace::event::ModelEvent;

use x86::{CpuMapping, CpuSpace, Special, SwapEntry, SwapTypes};

/// Most page tables one scan reads (a bound against hostile or enormous page tables).
pub const MAX_SCAN_TABLES: usize = 16384;
/// Most PTE-change events one scan logs.
pub const MAX_SCAN_EVENTS: usize = 4096;

/// Why a GPU PTE is wrong.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(u8)]
pub enum Reason {
    /// The GPU maps an address the CPU does not.
    CpuNotMapped = 1,
    /// The GPU maps another physical page than the CPU.
    WrongPage = 2,
    /// The GPU may write a page the CPU maps read-only.
    WritableButCpuReadOnly = 3,
    /// A video-memory PTE while the CPU maps a system page there.
    VramButCpuPresent = 4,
    /// An aperture the SVM mirror never uses (peer).
    BadAperture = 5,
    /// The CPU page tables could not be walked at that address.
    CpuWalkFailed = 6,
    /// The CPU's page is in device memory (device-private) but the GPU maps system memory.
    CpuPageOnDevice = 7,
}

impl Reason {
    /// A short name.
    pub fn name(self) -> &'static str {
        match self {
            Reason::CpuNotMapped => "gpu maps an address the cpu does not map",
            Reason::WrongPage => "gpu maps a different physical page",
            Reason::WritableButCpuReadOnly => "gpu writable, cpu read-only",
            Reason::VramButCpuPresent => "gpu maps vram, cpu maps a system page",
            Reason::BadAperture => "peer aperture in the mirror",
            Reason::CpuWalkFailed => "cpu page tables unreadable",
            Reason::CpuPageOnDevice => "cpu page is device-private, gpu maps system memory",
        }
    }
}

/// One violation.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Violation {
    /// GPU virtual address (the 4 KiB page).
    pub va: u64,
    /// The GPU PTE (or, at a use, the translation as a PTE-shaped word).
    pub gpu_pte: u64,
    /// The CPU entry where the CPU walk ended (0 if none).
    pub cpu_pte: u64,
    /// Why.
    pub reason: Reason,
    /// The instance block of the checked channel.
    pub inst: u64,
    /// Found at a GPU use (true) or a scan (false).
    pub at_use: bool,
}

/// Seeded bugs the device can inject into what nouveau writes (`gp100emu serve --inject`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Inject {
    /// None.
    #[default]
    None,
    /// A new system-memory PTE is pointed at the next physical page.
    WrongPage,
    /// A new read-only system-memory PTE is made writable.
    WritableRo,
    /// A PTE nouveau unmaps (VALID cleared) is put back valid.
    StaleAfterUnmap,
}

impl Inject {
    /// Parses a CLI name.
    pub fn parse(s: &str) -> Option<Self> {
        Some(match s {
            "none" => Inject::None,
            "wrong-page" => Inject::WrongPage,
            "writable-ro" => Inject::WritableRo,
            "stale-after-munmap" => Inject::StaleAfterUnmap,
            _ => return None,
        })
    }

    /// The CLI name ([`Inject::parse`] reads it back).
    pub fn name(self) -> &'static str {
        match self {
            Inject::None => "none",
            Inject::WrongPage => "wrong-page",
            Inject::WritableRo => "writable-ro",
            Inject::StaleAfterUnmap => "stale-after-munmap",
        }
    }

    /// The code the window reports.
    pub fn code(self) -> u32 {
        match self {
            Inject::None => 0,
            Inject::WrongPage => 1,
            Inject::WritableRo => 2,
            Inject::StaleAfterUnmap => 3,
        }
    }
}

/// An address space under check.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CheckedSpace {
    /// The guest kernel's special swap types.
    pub swap: SwapTypes,
    /// The GPU page directory.
    pub pdb: Pdb,
    /// The channel's instance block address.
    pub inst: u64,
    /// The CPU paging of the process.
    pub cpu: CpuSpace,
    /// The unmanaged window (nouveau's own buffers), not checked: [start, end).
    pub exclude: (u64, u64),
}

/// A valid GPU PTE found by a scan.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Found {
    va: u64,
    shift: u8,
    pte: u64,
    slot: (Target, u64),
}

/// Counters.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct CheckStats {
    /// Scans made.
    pub scans: u64,
    /// PTE judgements made (a large page counts once per 4 KiB page).
    pub checked: u64,
    /// Violations found.
    pub violations: u64,
    /// Scans cut short by [`MAX_SCAN_TABLES`].
    pub truncated_scans: u64,
    /// PD0 slots found holding a cleared 2 MiB PTE that reads as a big-page-table pointer.
    pub hazards: u64,
    /// Violations by [`Reason`] code (index = code).
    pub by_reason: [u64; 8],
}

/// The checker.
#[derive(Debug, Clone, Default)]
pub struct Checker {
    space: Option<CheckedSpace>,
    shadow: BTreeMap<u64, (u64, u8)>,
    /// Stale-after-munmap injection: PTEs nouveau cleared that the device keeps putting back.
    stale: BTreeMap<u64, u64>,
    stats: CheckStats,
    last: Option<Violation>,
    inject: Inject,
    events: Vec<ModelEvent>,
}

impl Checker {
    /// A checker with no space registered, injecting `inject`.
    pub fn new(inject: Inject) -> Self {
        Checker {
            inject,
            ..Default::default()
        }
    }

    /// The seeded bug in force.
    pub fn inject(&self) -> Inject {
        self.inject
    }

    /// Starts checking `space` (replacing any other).
    pub fn register(&mut self, space: CheckedSpace) {
        self.space = Some(space);
        self.shadow.clear();
        self.stale.clear();
    }

    /// Stops checking.
    pub fn unregister(&mut self) {
        self.space = None;
        self.shadow.clear();
        self.stale.clear();
    }

    /// The space under check.
    pub fn space(&self) -> Option<CheckedSpace> {
        self.space
    }

    /// Counters.
    pub fn stats(&self) -> CheckStats {
        self.stats
    }

    /// The last violation.
    pub fn last(&self) -> Option<Violation> {
        self.last
    }

    /// Events since the last call.
    pub fn take_events(&mut self) -> Vec<ModelEvent> {
        std::mem::take(&mut self.events)
    }

    fn excluded(&self, s: &CheckedSpace, va: u64) -> bool {
        va >= s.exclude.0 && va < s.exclude.1
    }

    fn violation(&mut self, v: Violation) {
        self.stats.violations += 1;
        self.stats.by_reason[(v.reason as usize) & 7] += 1;
        self.last = Some(v);
        log::warn!(
            "PTE check: {} at VA {:#x}: GPU PTE {:#018x}, CPU PTE {:#018x}, instance {:#x}{}",
            v.reason.name(),
            v.va,
            v.gpu_pte,
            v.cpu_pte,
            v.inst,
            if v.at_use { " (at a GPU use)" } else { "" }
        );
        self.events.push(ModelEvent::CheckViolation {
            va: v.va,
            gpu_pte: v.gpu_pte,
            cpu_pte: v.cpu_pte,
            reason: v.reason as u8,
            at_use: v.at_use,
        });
    }

    /// Judges one 4 KiB page: the GPU maps `va` to (`target`, `pa_page`), writable or not.
    fn judge(
        &mut self,
        mem: &PhysMem,
        s: &CheckedSpace,
        va: u64,
        gpu: (Target, u64, bool),
        gpu_pte: u64,
        at_use: bool,
    ) {
        self.stats.checked += 1;
        let (target, pa_page, writable) = gpu;
        let cpu = s.cpu.walk(mem, va);
        let bad = |reason, cpu_pte| Violation {
            va,
            gpu_pte,
            cpu_pte,
            reason,
            inst: s.inst,
            at_use,
        };
        let sys = target.is_sys();
        let v = match cpu {
            Err(_) => Some(bad(Reason::CpuWalkFailed, 0)),
            Ok(_) if matches!(target, Target::Peer(_)) => Some(bad(Reason::BadAperture, 0)),
            Ok(CpuMapping::Present {
                page,
                writable: cpu_w,
                pte,
                ..
            }) => {
                if !sys {
                    Some(bad(Reason::VramButCpuPresent, pte))
                } else if page != pa_page {
                    Some(bad(Reason::WrongPage, pte))
                } else if writable && !cpu_w {
                    Some(bad(Reason::WritableButCpuReadOnly, pte))
                } else {
                    None
                }
            }
            Ok(CpuMapping::NotPresent { pte, .. }) => {
                let special = SwapEntry::decode(pte).and_then(|e| Some((e, s.swap.special(e)?)));
                match (sys, special) {
                    (
                        true,
                        Some((
                            e,
                            Special::DeviceExclusive { write } | Special::Migration { write },
                        )),
                    ) => {
                        if e.offset << 12 != pa_page {
                            Some(bad(Reason::WrongPage, pte))
                        } else if writable && !write {
                            Some(bad(Reason::WritableButCpuReadOnly, pte))
                        } else {
                            None
                        }
                    }
                    (true, Some((_, Special::DevicePrivate))) => {
                        Some(bad(Reason::CpuPageOnDevice, pte))
                    }
                    (false, Some((_, Special::DevicePrivate | Special::Migration { .. }))) => None,
                    _ => Some(bad(Reason::CpuNotMapped, pte)),
                }
            }
        };
        if let Some(v) = v {
            self.violation(v);
        }
    }

    /// Checks a translation the GPU is about to use for `va` (4 KiB page granular).
    pub fn check_use(&mut self, mem: &PhysMem, va: u64, target: Target, pa: u64, writable: bool) {
        let Some(s) = self.space else { return };
        if self.excluded(&s, va) {
            return;
        }
        let pte_shaped = (pa & !0xfff) >> 4 | u64::from(!writable) << 6 | 1;
        self.judge(
            mem,
            &s,
            va & !0xfff,
            (target, pa & !0xfff, writable),
            pte_shaped,
            true,
        );
    }

    /// Scans the whole space: judges every valid PTE and logs the ones that changed.
    pub fn scan(&mut self, mem: &mut PhysMem) {
        let Some(s) = self.space else { return };
        self.stats.scans += 1;
        let mut found = Vec::new();
        let mut pd0 = Vec::new();
        if !enumerate(mem, s.pdb, &mut found, &mut pd0, &self.shadow) {
            self.stats.truncated_scans += 1;
        }
        for (va, lo) in pd0 {
            self.stats.hazards += 1;
            log::warn!(
                "PTE check hazard: PD0 entry for VA {va:#x} is a cleared 2 MiB PTE ({lo:#018x}) \
                 that reads as a big-page-table pointer to system memory"
            );
            self.events.push(ModelEvent::CheckHazard { va, pd0: lo });
        }
        if self.inject != Inject::None {
            self.apply_injection(mem, &s, &mut found);
        }
        // Changes since the last scan.
        let mut now = BTreeMap::new();
        let mut logged = 0;
        for f in &found {
            now.insert(f.va, (f.pte, f.shift));
            if self.shadow.get(&f.va) != Some(&(f.pte, f.shift)) && logged < MAX_SCAN_EVENTS {
                logged += 1;
                self.events.push(ModelEvent::PteWrite {
                    va: f.va,
                    pte: f.pte,
                    page_shift: f.shift,
                });
            }
        }
        for (&va, &(_, shift)) in &self.shadow {
            if !now.contains_key(&va) && logged < MAX_SCAN_EVENTS {
                logged += 1;
                self.events.push(ModelEvent::PteWrite {
                    va,
                    pte: 0,
                    page_shift: shift,
                });
            }
        }
        self.shadow = now;
        // Judge every valid PTE of the mirrored range, 4 KiB page by page.
        for f in &found {
            let pte = Pte(f.pte);
            let target = pte.target();
            let size = 1u64 << f.shift;
            let base = pte.address() & !(size - 1);
            for off in (0..size).step_by(4096) {
                let va = f.va + off;
                if self.excluded(&s, va) {
                    continue;
                }
                self.judge(
                    mem,
                    &s,
                    va,
                    (target, base + off, !pte.read_only()),
                    f.pte,
                    false,
                );
            }
        }
    }

    fn apply_injection(&mut self, mem: &mut PhysMem, s: &CheckedSpace, found: &mut [Found]) {
        for f in found.iter_mut() {
            if self.excluded(s, f.va) || self.shadow.get(&f.va).map(|x| x.0) == Some(f.pte) {
                continue;
            }
            let pte = Pte(f.pte);
            let sys = pte.aperture().is_system();
            let new = match self.inject {
                // A page 1 TiB away: wrong, and outside guest RAM, so the GPU's accesses through
                // it fail instead of corrupting some other page of the guest.
                Inject::WrongPage if sys => Some(f.pte + ((1u64 << 40) >> 4)),
                Inject::WritableRo if sys && pte.read_only() => Some(f.pte & !(1 << 6)),
                _ => None,
            };
            if let Some(v) = new {
                if mem.write_u64(f.slot.0, f.slot.1, v).is_ok() {
                    log::warn!(
                        "inject: PTE at VA {:#x} changed from {:#x} to {:#x}",
                        f.va,
                        f.pte,
                        v
                    );
                    f.pte = v;
                }
            }
        }
        if self.inject == Inject::StaleAfterUnmap {
            // A small-page PTE that was valid at the last scan and is no longer joins the
            // stale set; every stale PTE is put back at every scan, as a driver that never
            // cleared it would leave it.
            let live: std::collections::BTreeSet<u64> = found.iter().map(|f| f.va).collect();
            for (va, (pte, shift)) in &self.shadow {
                if *shift == 12 && !live.contains(va) {
                    self.stale.entry(*va).or_insert(*pte);
                }
            }
            for (&va, &pte) in &self.stale {
                if let Some(slot) = pte_slot(mem, s.pdb, va) {
                    if mem.read_u64(slot.0, slot.1).ok() != Some(pte)
                        && mem.write_u64(slot.0, slot.1, pte).is_ok()
                    {
                        log::warn!("inject: PTE at VA {va:#x} put back valid ({pte:#x}) after nouveau cleared it");
                    }
                }
            }
        }
    }
}

fn read_table<M: GpuMemory + ?Sized>(mem: &M, t: Target, a: u64, n: usize) -> Option<Vec<u64>> {
    let mut b = vec![0u8; n * 8];
    mem.read_bytes(t, a, &mut b).ok()?;
    Some(
        b.chunks_exact(8)
            .map(|c| u64::from_le_bytes(c.try_into().expect("8")))
            .collect(),
    )
}

/// Collects every valid PTE of the space (small, big and 2 MiB), reading at most
/// [`MAX_SCAN_TABLES`] tables. PD0 slots that held a 2 MiB PTE at the last scan (`shadow`)
/// and now have IS_PTE clear with the same address are not followed: they go to `hazards`
/// as (VA, low word). Returns false when the bound cut the scan short.
fn enumerate<M: GpuMemory + ?Sized>(
    mem: &M,
    pdb: Pdb,
    out: &mut Vec<Found>,
    hazards: &mut Vec<(u64, u64)>,
    shadow: &BTreeMap<u64, (u64, u8)>,
) -> bool {
    let mut tables = 0usize;
    let budget = |tables: &mut usize| {
        *tables += 1;
        *tables <= MAX_SCAN_TABLES
    };
    // PD3 (4 entries), PD2 and PD1 (512 each): gather the PD0 tables with their VA bases.
    let mut dirs = vec![(0u64, pdb.target, pdb.addr)];
    for (n, shift) in [(4usize, 47u32), (512, 38), (512, 29)] {
        let mut next = Vec::new();
        for (base, t, a) in dirs {
            let Some(table) = read_table(mem, t, a, n) else {
                continue;
            };
            for (i, e) in table.iter().enumerate() {
                let Some(tn) = Pde(*e).aperture().target() else {
                    continue;
                };
                if !budget(&mut tables) {
                    return false;
                }
                next.push((base | (i as u64) << shift, tn, Pde(*e).address()));
            }
        }
        dirs = next;
    }
    for (base1, t0, pd0_addr) in dirs {
        let Some(pd0) = read_table(mem, t0, pd0_addr, 512) else {
            continue;
        };
        for i0 in 0..256usize {
            let d = DualPde {
                lo: pd0[2 * i0],
                hi: pd0[2 * i0 + 1],
            };
            let va0 = base1 | (i0 as u64) << 21;
            if d.is_pte() {
                out.push(Found {
                    va: va0,
                    shift: 21,
                    pte: d.lo,
                    slot: (t0, pd0_addr + 16 * i0 as u64),
                });
                continue;
            }
            if let Some(&(was, 21)) = shadow.get(&va0) {
                if d.lo == was & !1 && d.big_aperture() != PdeAperture::Invalid {
                    hazards.push((va0, d.lo));
                    continue;
                }
            }
            for (shift, n, tgt, addr) in [
                (16u8, 32usize, d.big_aperture().target(), d.big_address()),
                (
                    12u8,
                    512usize,
                    d.small().aperture().target(),
                    d.small().address(),
                ),
            ] {
                let Some(t) = tgt else { continue };
                if !budget(&mut tables) {
                    return false;
                }
                let Some(pt) = read_table(mem, t, addr, n) else {
                    continue;
                };
                for (i, &p) in pt.iter().enumerate() {
                    if Pte(p).valid() {
                        out.push(Found {
                            va: va0 | (i as u64) << shift,
                            shift,
                            pte: p,
                            slot: (t, addr + 8 * i as u64),
                        });
                    }
                }
            }
        }
    }
    true
}

/// Where the small-page PTE for `va` lives, if the directories lead there.
fn pte_slot<M: GpuMemory + ?Sized>(mem: &M, pdb: Pdb, va: u64) -> Option<(Target, u64)> {
    let mut t = pdb.target;
    let mut a = pdb.addr;
    for (shift, mask) in [(47, 3u64), (38, 0x1ff), (29, 0x1ff)] {
        let e = Pde(mem.read_u64(t, a + ((va >> shift) & mask) * 8).ok()?);
        t = e.aperture().target()?;
        a = e.address();
    }
    let slot = a + ((va >> 21) & 0xff) * 16;
    let d = DualPde {
        lo: mem.read_u64(t, slot).ok()?,
        hi: mem.read_u64(t, slot + 8).ok()?,
    };
    if d.is_pte() {
        return Some((t, slot));
    }
    let st = d.small().aperture().target()?;
    Some((st, d.small().address() + ((va >> 12) & 0x1ff) * 8))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::engine::testutil::Space;
    use vm_memory::{GuestAddress, GuestMemoryMmap};
    use x86::DEFAULT_SWAP_TYPES;

    const P: u64 = 1;
    const RW: u64 = 2;
    const US: u64 = 4;

    /// Guest RAM with a CPU address space at root 0x1000 whose tables cover VA 0x40_0000..
    /// (one PT at 0x4000), and a GPU space in video memory.
    struct Rig {
        mem: PhysMem,
        gpu: Space,
        chk: Checker,
    }

    fn rig(inject: Inject) -> Rig {
        let mut mem = PhysMem::new(64 << 20);
        let ram = GuestMemoryMmap::<()>::from_ranges(&[(GuestAddress(0), 16 << 20)]).unwrap();
        mem.set_sys(Box::new(ram));
        let put = |m: &PhysMem, a: u64, v: u64| m.sys_write(a, &v.to_le_bytes()).unwrap();
        put(&mem, 0x1000, 0x2000 | P | RW | US); // PML4[0]
        put(&mem, 0x2000, 0x3000 | P | RW | US); // PDPT[0]
        put(&mem, 0x3000 + 2 * 8, 0x4000 | P | RW | US); // PD[2]: VA 0x40_0000
        let gpu = Space::new(0x100_0000);
        let mut chk = Checker::new(inject);
        chk.register(CheckedSpace {
            swap: DEFAULT_SWAP_TYPES,
            pdb: gpu.pdb,
            inst: 0x20_0000,
            cpu: CpuSpace {
                root: 0x1000,
                la57: false,
            },
            exclude: (0x7000_0000, 0x7100_0000),
        });
        Rig { mem, gpu, chk }
    }

    fn cpu_map(r: &Rig, va: u64, pa: u64, writable: bool) {
        let e = pa | P | US | if writable { RW } else { 0 };
        r.mem
            .sys_write(0x4000 + ((va >> 12) & 0x1ff) * 8, &e.to_le_bytes())
            .unwrap();
    }

    fn cpu_unmap(r: &Rig, va: u64) {
        r.mem
            .sys_write(0x4000 + ((va >> 12) & 0x1ff) * 8, &0u64.to_le_bytes())
            .unwrap();
    }

    /// A swap-type CPU entry as the kernel encodes it (`__swp_entry`).
    fn swp(ty: u64, off: u64) -> u64 {
        (!off << 14 >> 5) | ty << 59
    }

    fn violations(r: &mut Rig) -> Vec<(u64, u8)> {
        r.chk
            .take_events()
            .into_iter()
            .filter_map(|e| match e {
                ModelEvent::CheckViolation { va, reason, .. } => Some((va, reason)),
                _ => None,
            })
            .collect()
    }

    #[test]
    fn nouveau_shaped_pfn_ptes_pass_and_each_rule_fires() {
        let mut r = rig(Inject::None);
        // What gp100_vmm_pgt_pfn writes: RW page, RO page (CPU RO too), and a VRAM page whose
        // CPU entry is a device-private (non-present, non-zero) entry.
        cpu_map(&r, 0x40_0000, 0x80_0000, true);
        cpu_map(&r, 0x40_1000, 0x80_1000, false);
        r.mem
            .sys_write(0x4000 + 2 * 8, &swp(27, 0x12_3456).to_le_bytes())
            .unwrap();
        r.gpu.map(
            &mut r.mem,
            0x40_0000,
            Pte::pfn_system(0x80_0000, true, false),
        );
        r.gpu.map(
            &mut r.mem,
            0x40_1000,
            Pte::pfn_system(0x80_1000, false, false),
        );
        r.gpu.map(&mut r.mem, 0x40_2000, Pte::pfn_vram(0x10_0000));
        // nouveau's own buffer in the unmanaged window: not checked.
        r.gpu.map(
            &mut r.mem,
            0x7000_0000,
            Pte::pfn_system(0x5_0000, true, false),
        );
        r.chk.scan(&mut r.mem);
        let ev = r.chk.take_events();
        assert!(
            !ev.iter()
                .any(|e| matches!(e, ModelEvent::CheckViolation { .. })),
            "{ev:?}"
        );
        assert_eq!(r.chk.stats().checked, 3);

        // Wrong page, writable over read-only, GPU mapping with no CPU mapping, VRAM over a
        // present CPU page.
        r.gpu.map(
            &mut r.mem,
            0x40_0000,
            Pte::pfn_system(0x90_0000, true, false),
        );
        r.gpu.map(
            &mut r.mem,
            0x40_1000,
            Pte::pfn_system(0x80_1000, true, false),
        );
        r.gpu.map(
            &mut r.mem,
            0x40_3000,
            Pte::pfn_system(0x80_3000, true, false),
        );
        cpu_map(&r, 0x40_4000, 0x80_4000, true);
        r.gpu.map(&mut r.mem, 0x40_4000, Pte::pfn_vram(0x20_0000));
        r.chk.scan(&mut r.mem);
        let mut v = violations(&mut r);
        v.sort();
        assert_eq!(
            v,
            vec![
                (0x40_0000, Reason::WrongPage as u8),
                (0x40_1000, Reason::WritableButCpuReadOnly as u8),
                (0x40_3000, Reason::CpuNotMapped as u8),
                (0x40_4000, Reason::VramButCpuPresent as u8),
            ]
        );
        assert_eq!(r.chk.stats().violations, 4);
        assert!(r.chk.last().is_some());
    }

    #[test]
    fn device_exclusive_and_migration_entries_stand_for_their_page() {
        let mut r = rig(Inject::None);
        let put = |r: &Rig, va: u64, e: u64| {
            r.mem
                .sys_write(0x4000 + ((va >> 12) & 0x1ff) * 8, &e.to_le_bytes())
                .unwrap()
        };
        // After make_device_exclusive_range: EXCLUSIVE_WRITE (29) for PFN 0x800, and nouveau's
        // atomic mapping of that page (RW, atomics allowed).
        put(&r, 0x40_0000, swp(29, 0x800));
        r.gpu.map(
            &mut r.mem,
            0x40_0000,
            Pte::pfn_system(0x80_0000, true, true),
        );
        // A page being migrated (MIGRATION_READ, 24): a read-only GPU mapping of the old page.
        put(&r, 0x40_1000, swp(24, 0x801));
        r.gpu.map(
            &mut r.mem,
            0x40_1000,
            Pte::pfn_system(0x80_1000, false, false),
        );
        r.chk.scan(&mut r.mem);
        assert_eq!(violations(&mut r), vec![]);
        // The same entries with the wrong page, or writable over a read-only type, are not.
        put(&r, 0x40_0000, swp(30, 0x800)); // EXCLUSIVE_READ
        put(&r, 0x40_1000, swp(24, 0x900));
        r.gpu.map(
            &mut r.mem,
            0x40_2000,
            Pte::pfn_system(0x80_2000, true, false),
        );
        put(&r, 0x40_2000, swp(27, 0x55)); // device-private: the GPU should map VRAM
        r.chk.scan(&mut r.mem);
        assert_eq!(
            violations(&mut r),
            vec![
                (0x40_0000, Reason::WritableButCpuReadOnly as u8),
                (0x40_1000, Reason::WrongPage as u8),
                (0x40_2000, Reason::CpuPageOnDevice as u8),
            ]
        );
    }

    #[test]
    fn a_cleared_2m_pte_is_a_hazard_not_a_table_to_walk() {
        let mut r = rig(Inject::None);
        // Directories down to the PD0 covering VA 0x40_0000 (slot 2), then a 2 MiB PFN PTE
        // there (gp100_vmm_pd0_pfn), over a data page whose bytes would look like valid PTEs
        // if read as a big-page table.
        r.gpu.map(&mut r.mem, 0x40_0000, Pte(0));
        let e3 = Pde(r.mem.read_u64(Target::Video, r.gpu.pdb.addr).unwrap()).address();
        let e2 = Pde(r.mem.read_u64(Target::Video, e3).unwrap()).address();
        let pd0 = Pde(r.mem.read_u64(Target::Video, e2).unwrap()).address();
        let slot = pd0 + 2 * 16;
        r.mem.sys_write(0x20_0000, &[0xff; 4096]).unwrap();
        let pte2m = Pte::pfn_system(0x20_0000, true, false).0;
        r.mem.write_u64(Target::Video, slot, pte2m).unwrap();
        r.mem.write_u64(Target::Video, slot + 8, 0).unwrap();
        r.chk.scan(&mut r.mem);
        let _ = r.chk.take_events(); // the CPU maps little of those 2 MiB: not the point here
                                     // gp100_vmm_pd0_pfn_clear: bit 0 cleared, aperture and address kept, then a flush.
        r.mem.write_u64(Target::Video, slot, pte2m & !1).unwrap();
        r.chk.scan(&mut r.mem);
        let ev = r.chk.take_events();
        assert!(
            ev.contains(&ModelEvent::CheckHazard {
                va: 0x40_0000,
                pd0: pte2m & !1
            }),
            "{ev:?}"
        );
        assert!(
            !ev.iter()
                .any(|e| matches!(e, ModelEvent::CheckViolation { .. })),
            "the data page is not walked as a table: {ev:?}"
        );
        assert_eq!(r.chk.stats().hazards, 1);
    }

    #[test]
    fn changed_ptes_become_pte_write_events() {
        let mut r = rig(Inject::None);
        cpu_map(&r, 0x40_0000, 0x80_0000, true);
        r.gpu.map(
            &mut r.mem,
            0x40_0000,
            Pte::pfn_system(0x80_0000, true, false),
        );
        r.chk.scan(&mut r.mem);
        let ev = r.chk.take_events();
        assert!(ev.contains(&ModelEvent::PteWrite {
            va: 0x40_0000,
            pte: Pte::pfn_system(0x80_0000, true, false).0,
            page_shift: 12
        }));
        r.chk.scan(&mut r.mem);
        assert!(r.chk.take_events().is_empty(), "nothing changed");
        // nouveau's PFN clear: VALID cleared, address kept → "no longer valid".
        let cleared = Pte::pfn_system(0x80_0000, true, false).0 & !1;
        r.gpu.map(&mut r.mem, 0x40_0000, Pte(cleared));
        r.chk.scan(&mut r.mem);
        assert_eq!(
            r.chk.take_events(),
            vec![ModelEvent::PteWrite {
                va: 0x40_0000,
                pte: 0,
                page_shift: 12
            }]
        );
    }

    #[test]
    fn a_stale_translation_is_caught_at_its_use() {
        let mut r = rig(Inject::None);
        cpu_map(&r, 0x40_0000, 0x80_0000, true);
        r.chk
            .check_use(&r.mem, 0x40_0123, Target::SysCoherent, 0x80_0123, true);
        assert_eq!(violations(&mut r), vec![]);
        cpu_unmap(&r, 0x40_0000);
        r.chk
            .check_use(&r.mem, 0x40_0123, Target::SysCoherent, 0x80_0123, false);
        assert_eq!(
            violations(&mut r),
            vec![(0x40_0000, Reason::CpuNotMapped as u8)]
        );
        assert!(r.chk.last().unwrap().at_use);
    }

    #[test]
    fn injection_names_round_trip() {
        for i in [
            Inject::None,
            Inject::WrongPage,
            Inject::WritableRo,
            Inject::StaleAfterUnmap,
        ] {
            assert_eq!(Inject::parse(i.name()), Some(i));
        }
        assert_eq!(Inject::parse("wrong"), None);
    }

    #[test]
    fn each_injection_is_caught() {
        // wrong-page: the device moves a fresh PTE to the next page.
        let mut r = rig(Inject::WrongPage);
        cpu_map(&r, 0x40_0000, 0x80_0000, true);
        r.gpu.map(
            &mut r.mem,
            0x40_0000,
            Pte::pfn_system(0x80_0000, true, false),
        );
        r.chk.scan(&mut r.mem);
        assert_eq!(
            violations(&mut r),
            vec![(0x40_0000, Reason::WrongPage as u8)]
        );

        // writable-ro: a read-only PTE is made writable.
        let mut r = rig(Inject::WritableRo);
        cpu_map(&r, 0x40_0000, 0x80_0000, false);
        r.gpu.map(
            &mut r.mem,
            0x40_0000,
            Pte::pfn_system(0x80_0000, false, false),
        );
        r.chk.scan(&mut r.mem);
        assert_eq!(
            violations(&mut r),
            vec![(0x40_0000, Reason::WritableButCpuReadOnly as u8)]
        );

        // stale-after-munmap: nouveau clears the PTE at the munmap flush, the device puts it
        // back; once the CPU mapping is gone the next check catches it.
        let mut r = rig(Inject::StaleAfterUnmap);
        cpu_map(&r, 0x40_0000, 0x80_0000, true);
        let pte = Pte::pfn_system(0x80_0000, true, false);
        r.gpu.map(&mut r.mem, 0x40_0000, pte);
        r.chk.scan(&mut r.mem);
        r.gpu.map(&mut r.mem, 0x40_0000, Pte(pte.0 & !1));
        r.chk.scan(&mut r.mem); // the flush inside invalidate_range_start: CPU still maps it
        cpu_unmap(&r, 0x40_0000);
        r.chk.scan(&mut r.mem);
        assert!(violations(&mut r).contains(&(0x40_0000, Reason::CpuNotMapped as u8)));
    }

    #[test]
    fn hostile_gpu_tables_are_bounded() {
        let mut r = rig(Inject::None);
        // Every PD3/PD2/PD1 entry points back at the same table: the scan stops at the bound.
        let pdb = r.gpu.pdb.addr;
        let e = Pde::build(PdeAperture::Video, false, pdb).0;
        for i in 0..512 {
            r.mem.write_u64(Target::Video, pdb + 8 * i, e).unwrap();
        }
        r.chk.scan(&mut r.mem);
        assert_eq!(r.chk.stats().truncated_scans, 1);
    }
}
