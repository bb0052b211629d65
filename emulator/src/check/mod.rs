//! The PTE checker: every GPU PTE nouveau maps for a process's shared (SVM) address space is
//! compared with that process's own CPU page tables, in guest RAM.
//!
//! **One checked space per SVM address space.** A guest test registers each address space it
//! wants checked: a channel (whose instance block names the GPU page directory), the page-table
//! root of the process that owns it (`__pa(mm->pgd)`, read through the test-only module
//! `gp100emu_pgd`, see guest-tests/), its pid (for reports), plus the window nouveau keeps for
//! its own buffers (SVM_INIT's unmanaged range), which is not mirrored and not checked. Spaces
//! are keyed by GPU page directory: every channel of one SVM client shares it (nouveau gives
//! each open file one SVM VMM). Several processes may be registered at once; every PTE and
//! every GPU use is judged only against the page tables of the process owning that page
//! directory. A GPU use through a page directory nobody registered, while the checker is
//! armed, is its own finding ([`Reason::Unowned`]), never judged against another process.
//!
//! When it runs:
//! - **at every TLB invalidate that covers a space** (nouveau flushes after every PFNMAP
//!   and PFNCLR; `gp100_vmm_flush`), that GPU address space is scanned: each valid PTE
//!   is judged, and the PTEs that changed since the last scan become `PteWrite` trace events;
//! - **at every GPU use of a translation** (the access engine, [`crate::access`]): the
//!   translation actually used, from a TLB or a walk, is judged against its own space, which
//!   catches stale TLB entries and PTEs left behind without a flush.
//!
//! The rules ([`Reason`]): a system-memory PTE must map the same physical page the CPU maps
//! at that address, and may be writable only if the CPU mapping is writable at every level.
//! Non-present CPU entries are decoded ([`x86::SwapEntry`]): a device-exclusive entry (the
//! page a device holds for atomics, `make_device_exclusive_range`) or a migration entry (a
//! page being migrated) stands for its page frame, writable as its type says; a video-memory
//! PTE (a page migrated to the GPU) needs a device-private entry. Any other valid PTE in the
//! mirrored range is a violation.
//!
//! **Process exit.** `exit_mmap` calls `mmu_notifier_release` before `unmap_vmas` frees the
//! process's pages and `free_pgtables` its page tables (mm/mmap.c, 6.1 to 7.x). The test
//! module registers its own notifier with a `release` op and, from it, tells the device that
//! the mm is exiting ([`Checker::mm_exited`]); the guest test registers with the module before
//! SVM_INIT, so the module's notifier sits behind nouveau's on the mm's list
//! (`hlist_add_head_rcu`) and its `release` runs after every other subscriber's. From then on
//! the checker never walks that process's page tables again (they are about to be freed), and
//! every GPU PTE still valid in the mirrored range is a [`Reason::StaleAfterExit`] finding
//! (nothing will invalidate it before the pages are freed), as is every GPU use of such a
//! translation. nouveau up to 7.x registers no `release` op (nouveau_svm.c `nouveau_mn_ops`),
//! so every SVM mapping a process holds at exit is reported; see guest-tests/known-issues.txt.
//!
//! A separate class, **hazards**: a PD0 slot that held a 2 MiB PTE and now has IS_PTE (bit 0)
//! clear but its aperture and address kept. In the version-2 format that is a valid pointer
//! to a big-page table — the data page itself — so a walk there would read data as PTEs.
//! nouveau 6.12 leaves exactly this between `gp100_vmm_pd0_pfn_clear` and the final unmap
//! (it clears only bit 0, then flushes). The checker reports it as a hazard and does not
//! descend into it.
//!
//! **Bounds** (the guest's page tables are untrusted): a scan reads at most
//! [`MAX_SCAN_TABLES`] tables, never the same table twice (a table reached a second time —
//! page tables pointing at themselves or sharing a table — is counted as an alias and not
//! followed again), collects at most [`MAX_SCAN_PTES`] valid PTEs and does at most
//! [`MAX_SCAN_WORK`] CPU walks; a PTE of any size costs at least one, and a large GPU page
//! over a CPU range that resolves alike (one CPU large page, or one non-present upper-level
//! entry) is judged with one walk. Violations are aggregated: each is counted per 4 KiB page,
//! by reason and per space; per scan the first [`MAX_VIOLATION_EVENTS`] ranges become trace
//! events and the first [`MAX_LOGGED_PER_SCAN`] are logged one by one, the rest as one summary
//! line per reason (its first [`MAX_SUMMARY_RANGES`] ranges); over the checker's life at most
//! [`MAX_LOG_LINES`] lines are logged. The first [`MAX_KEPT`] violations and the last one are
//! kept (the last is readable through the window).
//!
//! Seeded bugs ([`Inject`]) make the device itself corrupt what nouveau wrote, so a test can
//! show the checker catches each kind; `kind@N` injects only into the N-th space registered.

mod tables;
pub mod x86;

use std::collections::{BTreeMap, BTreeSet, VecDeque};

use crate::hw::event::ModelEvent;
use crate::mem::{GpuMemory, PhysMem, Target};
use crate::mmu::format::Pte;
use crate::mmu::geometry;
use crate::mmu::walk::Pdb;

use tables::{enumerate, pte_slot, Enumeration, Picture};
use x86::{CpuMapping, CpuSpace, Special, SwapEntry, SwapTypes, WalkCache};

/// Most page tables one scan reads.
pub const MAX_SCAN_TABLES: usize = 16384;
/// Most valid PTEs one scan collects (1 GiB of 4 KiB pages at most, per space).
pub const MAX_SCAN_PTES: usize = 1 << 18;
/// Most CPU walks (and PTE spans) one scan makes.
pub const MAX_SCAN_WORK: u64 = 1 << 18;
/// Most PTE-change events one scan logs.
pub const MAX_SCAN_EVENTS: usize = 4096;
/// Most violation events (one per range of pages) one scan logs.
pub const MAX_VIOLATION_EVENTS: usize = 256;
/// Most violations one scan logs one line each; the rest are summarised per reason.
pub const MAX_LOGGED_PER_SCAN: usize = 16;
/// Ranges a summary line names.
pub const MAX_SUMMARY_RANGES: usize = 8;
/// Most log lines over the checker's life.
pub const MAX_LOG_LINES: u64 = 4096;
/// Violations kept in full (the first ones).
pub const MAX_KEPT: usize = 64;
/// Most spaces registered at once (exited ones are dropped first when it is reached).
pub const MAX_SPACES: usize = 16;
/// Most exit-watched page-table roots remembered.
pub const MAX_WATCHED: usize = 64;
/// Channels remembered per space (for lookups by channel).
const MAX_CHIDS: usize = 8;

/// Why a GPU PTE is wrong.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
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
    /// A GPU use through a page directory no process registered (the checker cannot say
    /// whose page tables apply).
    Unowned = 8,
    /// A GPU PTE still valid (or used) after its process's mm was torn down: its pages are
    /// freed with nothing invalidating the GPU's mapping.
    StaleAfterExit = 9,
}

impl Reason {
    /// Every reason, by code.
    pub const ALL: [Reason; 9] = [
        Reason::CpuNotMapped,
        Reason::WrongPage,
        Reason::WritableButCpuReadOnly,
        Reason::VramButCpuPresent,
        Reason::BadAperture,
        Reason::CpuWalkFailed,
        Reason::CpuPageOnDevice,
        Reason::Unowned,
        Reason::StaleAfterExit,
    ];

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
            Reason::Unowned => "gpu use in an address space no process registered",
            Reason::StaleAfterExit => "gpu mapping still valid after its process exited",
        }
    }
}

/// One violation.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Violation {
    /// GPU virtual address (the first 4 KiB page).
    pub va: u64,
    /// 4 KiB pages it covers (a range judged alike).
    pub pages: u64,
    /// The GPU PTE (or, at a use, the translation as a PTE-shaped word).
    pub gpu_pte: u64,
    /// The CPU entry where the CPU walk ended (0 if none).
    pub cpu_pte: u64,
    /// Why.
    pub reason: Reason,
    /// The instance block of the channel the space was registered with (at a use: of the
    /// channel used).
    pub inst: u64,
    /// That channel.
    pub chid: u32,
    /// The owning process's pid as registered (0 if none).
    pub pid: u32,
    /// Where it was found.
    pub at: At,
    /// The page shift of the GPU PTE (at a use: of the PTE that translated it; 0 in an
    /// unregistered space or one whose owner exited).
    pub shift: u8,
    /// First found now: the PTE was not found wrong when last judged (or it changed since).
    /// The violations of a PTE that stays wrong are reported again at each flush, as a full
    /// scan would; only the first report is new. A use is new unless it went through a PTE
    /// already found wrong.
    pub new: bool,
}

/// Where a violation was found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum At {
    /// At a scan after a TLB invalidate (the driver's flush), or one the guest asked for.
    Flush,
    /// At a GPU use of the translation.
    Use,
    /// At a CPU invalidate of the owner's mm: the CPU entries over the range changed and the
    /// driver's notifier has run, so a GPU PTE judged wrong here is one the driver left.
    CpuInvalidate,
}

impl At {
    /// A short name (the explorer prints it).
    pub fn name(self) -> &'static str {
        match self {
            At::Flush => "flush",
            At::Use => "gpu-use",
            At::CpuInvalidate => "cpu-invalidate",
        }
    }
}

/// Kinds of seeded bugs the device can inject into what nouveau writes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum InjectKind {
    /// None.
    #[default]
    None,
    /// A new system-memory PTE is pointed at a wrong page.
    WrongPage,
    /// A new read-only system-memory PTE is made writable.
    WritableRo,
    /// A PTE nouveau unmaps (VALID cleared) is put back valid.
    StaleAfterUnmap,
}

/// A seeded bug (`gp100emu serve --inject KIND[@N]`): its kind, and optionally the one space
/// (the N-th registered, counting from 1) it is injected into.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Inject {
    /// What is injected.
    pub kind: InjectKind,
    /// Only into the N-th space registered (None: every space).
    pub space: Option<u32>,
}

#[allow(non_upper_case_globals)]
impl Inject {
    /// No seeded bug.
    pub const None: Inject = Inject {
        kind: InjectKind::None,
        space: None,
    };
    /// Wrong page, every space.
    pub const WrongPage: Inject = Inject::every(InjectKind::WrongPage);
    /// Writable over read-only, every space.
    pub const WritableRo: Inject = Inject::every(InjectKind::WritableRo);
    /// Stale after munmap, every space.
    pub const StaleAfterUnmap: Inject = Inject::every(InjectKind::StaleAfterUnmap);

    const fn every(kind: InjectKind) -> Self {
        Inject { kind, space: None }
    }

    /// Parses a CLI name: `none`, `wrong-page`, `writable-ro`, `stale-after-munmap`,
    /// optionally followed by `@N` (only the N-th space registered, N >= 1).
    pub fn parse(s: &str) -> Option<Self> {
        let (k, space) = match s.split_once('@') {
            Some((k, n)) => (k, Some(n.parse::<u32>().ok().filter(|&n| n >= 1)?)),
            None => (s, None),
        };
        let kind = match k {
            "none" => InjectKind::None,
            "wrong-page" => InjectKind::WrongPage,
            "writable-ro" => InjectKind::WritableRo,
            "stale-after-munmap" => InjectKind::StaleAfterUnmap,
            _ => return None,
        };
        if kind == InjectKind::None && space.is_some() {
            return None;
        }
        Some(Inject { kind, space })
    }

    /// The CLI name ([`Inject::parse`] reads it back).
    pub fn name(self) -> String {
        let k = match self.kind {
            InjectKind::None => "none",
            InjectKind::WrongPage => "wrong-page",
            InjectKind::WritableRo => "writable-ro",
            InjectKind::StaleAfterUnmap => "stale-after-munmap",
        };
        match self.space {
            Some(n) => format!("{k}@{n}"),
            None => k.to_string(),
        }
    }

    /// The code the window reports (bits 7:0 the kind: 0 none, 1 wrong-page, 2 writable-ro,
    /// 3 stale-after-munmap; bits 15:8 the targeted space, 0 for every space).
    pub fn code(self) -> u32 {
        let k = match self.kind {
            InjectKind::None => 0,
            InjectKind::WrongPage => 1,
            InjectKind::WritableRo => 2,
            InjectKind::StaleAfterUnmap => 3,
        };
        k | self.space.map_or(0, |n| n.min(255) << 8)
    }

    fn applies_to(self, order: u32) -> bool {
        self.kind != InjectKind::None && self.space.is_none_or(|n| n == order)
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

/// Where a registered space is in its owner's life.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Life {
    /// The owner is alive: PTEs are judged against its page tables.
    Live,
    /// The owner's mm was torn down: valid PTEs are stale, its page tables are never read.
    Exited,
    /// Exited and its channel is gone: no longer scanned (the page directory may be reused).
    Retired,
}

/// Per-space state and counters.
#[derive(Debug, Clone)]
struct SpaceState {
    space: CheckedSpace,
    chids: Vec<u32>,
    pid: u32,
    /// 1 for the first space registered, 2 for the second, …
    order: u32,
    /// The module watches the owner's exit.
    watched: bool,
    life: Life,
    shadow: BTreeMap<u64, (u64, u8)>,
    /// Stale-after-munmap injection: PTEs nouveau cleared that the device keeps putting back.
    stale: BTreeMap<u64, u64>,
    /// Exited: PTEs (by VA) already reported stale.
    reported: BTreeSet<u64>,
    violations: u64,
    stale_pages: u64,
    /// The owner's CPU invalidates are reported ([`Checker::cpu_invalidated`]): the space
    /// may be scanned by change.
    ranged: bool,
    /// What the last complete scan saw (None: the next scan is full).
    picture: Option<Picture>,
    /// PTEs (by VA) found violating when last judged: judged again at every scan.
    suspects: BTreeSet<u64>,
    /// Scans since the last full one.
    since_full: u32,
}

impl SpaceState {
    fn chid(&self) -> u32 {
        self.chids.last().copied().unwrap_or(u32::MAX)
    }
}

/// What the window reports about one space.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SpaceReport {
    /// Where the owner is.
    pub life: Life,
    /// The owner's exit is watched by the module.
    pub watched: bool,
    /// The owner's pid as registered.
    pub pid: u32,
    /// Registration order (1 = first).
    pub order: u32,
    /// Violations (pages) found in this space, every reason but stale-after-exit.
    pub violations: u64,
    /// Stale-after-exit findings (pages).
    pub stale: u64,
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
    /// Violations found (4 KiB pages), every reason but [`Reason::StaleAfterExit`].
    pub violations: u64,
    /// Stale-after-exit findings (4 KiB pages).
    pub stale: u64,
    /// Scans cut short by a bound ([`MAX_SCAN_TABLES`], [`MAX_SCAN_PTES`], [`MAX_SCAN_WORK`]).
    pub truncated_scans: u64,
    /// Page tables read by scans.
    pub tables: u64,
    /// Tables reached a second time within a scan (not followed again).
    pub aliases: u64,
    /// PD0 slots found holding a cleared 2 MiB PTE that reads as a big-page-table pointer.
    pub hazards: u64,
    /// Findings by [`Reason`] code (index = code), in 4 KiB pages.
    pub by_reason: [u64; 16],
    /// Log lines written.
    pub log_lines: u64,
    /// CPU page-table entries read by scans (and uses).
    pub cpu_reads: u64,
    /// CPU page-table entries a scan found in its walk cache instead.
    pub cpu_cache_hits: u64,
    /// Scans that judged every valid PTE (the others judged what changed).
    pub full_scans: u64,
    /// Leaves (page tables, 2 MiB PTEs) a scan took unchanged from the last one, unread.
    pub leaves_reused: u64,
    /// CPU invalidates of a checked process's mm reported by the test module.
    pub cpu_invalidates: u64,
    /// Valid PTEs that appeared or changed, by page size (4 KiB, 64 KiB, 2 MiB): the driver's
    /// PFN maps as the scans saw them.
    pub mapped: [u64; 3],
    /// Of those, PTEs of video memory (pages migrated to the GPU).
    pub mapped_vram: u64,
    /// Valid PTEs that disappeared, by page size (4 KiB, 64 KiB, 2 MiB).
    pub cleared: [u64; 3],
    /// Of `violations`, the pages first found wrong (see [`Violation::new`]).
    pub new_violations: u64,
    /// 2 MiB GPU PTEs a CPU invalidate covered only in part (the driver's notifier then
    /// clears part of a 2 MiB mapping: nouveau's partial PFNCLR path).
    pub partial_2m_invalidates: u64,
}

/// Index of a page shift in [`CheckStats::mapped`] and [`CheckStats::cleared`].
fn size_index(shift: u8) -> usize {
    match shift {
        s if s >= geometry::PD0_SHIFT as u8 => 2,
        s if s >= geometry::BIG_SHIFT as u8 => 1,
        _ => 0,
    }
}

impl Recorder {
    /// A PTE of the scanned space changed: counted, and traced within [`MAX_SCAN_EVENTS`]
    /// per scan (`logged`). `pte` 0 means it is no longer valid.
    fn pte_changed(&mut self, logged: &mut usize, va: u64, pte: u64, shift: u8) {
        if pte == 0 {
            self.stats.cleared[size_index(shift)] += 1;
        } else {
            self.stats.mapped[size_index(shift)] += 1;
            self.stats.mapped_vram += u64::from(Pte(pte).target() == Target::Video);
        }
        if *logged < MAX_SCAN_EVENTS {
            *logged += 1;
            self.events.push(ModelEvent::PteWrite {
                va,
                pte,
                page_shift: shift,
            });
        }
    }
}

/// Violations of one reason within a scan, beyond those logged one by one.
#[derive(Debug, Clone, Default)]
struct Agg {
    pages: u64,
    ranges: Vec<(u64, u64)>,
    more_ranges: u64,
}

/// Counting, keeping and logging of findings, bounded per scan and overall.
#[derive(Debug, Clone, Default)]
struct Recorder {
    stats: CheckStats,
    first: Vec<Violation>,
    last: Option<Violation>,
    last_new: Option<Violation>,
    events: Vec<ModelEvent>,
    suppressed: bool,
    in_scan: bool,
    scan_events: usize,
    scan_logged: usize,
    agg: BTreeMap<Reason, Agg>,
}

impl Recorder {
    /// Takes one line of the life-long log budget.
    fn line(&mut self) -> bool {
        if self.stats.log_lines < MAX_LOG_LINES {
            self.stats.log_lines += 1;
            return true;
        }
        if !self.suppressed {
            self.suppressed = true;
            log::warn!(
                "PTE check: {MAX_LOG_LINES} lines logged; further findings are only counted \
                 (window registers CHK_VIOLATIONS, CHK_BY_REASON, CHK_STALE)"
            );
        }
        false
    }

    fn record(&mut self, sp: &mut SpaceState, v: Violation) {
        if v.reason == Reason::StaleAfterExit {
            self.stats.stale += v.pages;
            sp.stale_pages += v.pages;
        } else {
            self.stats.violations += v.pages;
            sp.violations += v.pages;
        }
        self.record_counted(v);
    }

    /// Counts, keeps, logs and traces `v` (space counters are the caller's).
    fn record_counted(&mut self, v: Violation) {
        self.stats.by_reason[v.reason as usize] += v.pages;
        if self.first.len() < MAX_KEPT {
            self.first.push(v);
        }
        // The last violation goes with CHK_VIOLATIONS, which stale-after-exit findings (their
        // own count) are not part of.
        if v.reason != Reason::StaleAfterExit {
            self.last = Some(v);
            if v.new {
                self.stats.new_violations += v.pages;
                self.last_new = Some(v);
            }
        }
        if !self.in_scan || self.scan_events < MAX_VIOLATION_EVENTS {
            self.scan_events += usize::from(self.in_scan);
            self.events.push(ModelEvent::CheckViolation {
                va: v.va,
                gpu_pte: v.gpu_pte,
                cpu_pte: v.cpu_pte,
                reason: v.reason as u8,
                at_use: v.at == At::Use,
            });
        }
        if self.in_scan && self.scan_logged >= MAX_LOGGED_PER_SCAN {
            let a = self.agg.entry(v.reason).or_default();
            a.pages += v.pages;
            let n = a.ranges.len();
            match a.ranges.last_mut() {
                Some(r) if r.1 == v.va => r.1 += v.pages << 12,
                _ if n < MAX_SUMMARY_RANGES => a.ranges.push((v.va, v.va + (v.pages << 12))),
                _ => a.more_ranges += 1,
            }
            return;
        }
        self.scan_logged += usize::from(self.in_scan);
        if self.line() {
            log::warn!(
                "PTE check: {} at VA {:#x}{}: GPU PTE {:#018x}, CPU PTE {:#018x}, channel {} \
                 pid {} instance {:#x}{}",
                v.reason.name(),
                v.va,
                if v.pages > 1 {
                    format!(" ({} pages)", v.pages)
                } else {
                    String::new()
                },
                v.gpu_pte,
                v.cpu_pte,
                v.chid as i32,
                v.pid,
                v.inst,
                match v.at {
                    At::Use => " (at a GPU use)",
                    At::CpuInvalidate => " (at a CPU invalidate)",
                    At::Flush => "",
                }
            );
        }
    }

    fn begin_scan(&mut self) {
        self.in_scan = true;
        self.scan_events = 0;
        self.scan_logged = 0;
        self.agg.clear();
    }

    /// Ends a scan of `sp`: one summary line per reason for what was not logged one by one.
    fn end_scan(&mut self, sp: &SpaceState) {
        self.in_scan = false;
        for (reason, a) in std::mem::take(&mut self.agg) {
            if !self.line() {
                break;
            }
            let ranges: Vec<String> = a
                .ranges
                .iter()
                .map(|(s, e)| format!("{s:#x}..{e:#x}"))
                .collect();
            log::warn!(
                "PTE check: and {} more pages '{}' in channel {} pid {}: {}{}",
                a.pages,
                reason.name(),
                sp.chid() as i32,
                sp.pid,
                ranges.join(", "),
                if a.more_ranges > 0 {
                    format!(" and {} more ranges", a.more_ranges)
                } else {
                    String::new()
                }
            );
        }
    }
}

/// The checker.
#[derive(Debug, Clone, Default)]
pub struct Checker {
    spaces: Vec<SpaceState>,
    /// Page-table roots whose exit the module watches (newest last).
    watched: VecDeque<u64>,
    registered: u32,
    rec: Recorder,
    inject: Inject,
    /// Page-table roots whose CPU invalidates the module reports (newest last).
    ranged: VecDeque<u64>,
    /// A space scanned by change is scanned in full every this many scans.
    full_every: u32,
}

/// By default a space scanned by change is scanned in full every this many scans: the
/// cross-check for CPU page-table changes no notifier announced (a kernel bug of its own).
pub const FULL_SCAN_EVERY: u32 = 64;

/// Why [`Checker::register`] refused a space.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum RegisterError {
    /// `max` ([`MAX_SPACES`]) spaces are live and none can be dropped.
    #[error("{max} live spaces are registered already")]
    Full {
        /// The bound.
        max: usize,
    },
}

#[cfg(test)]
mod register_error_tests {
    use super::*;

    /// Past [`MAX_SPACES`] live spaces, a registration is refused with the typed error.
    #[test]
    fn a_space_past_the_bound_is_refused_with_a_typed_error() {
        let mut chk = Checker::new(Inject::None);
        let space = |i: u64| CheckedSpace {
            swap: x86::DEFAULT_SWAP_TYPES,
            pdb: Pdb {
                target: Target::Video,
                addr: 0x100_0000 + i * 0x1000,
            },
            inst: 0x20_0000 + i * 0x1000,
            cpu: CpuSpace {
                root: 0x1000 + i * 0x1000,
                la57: false,
            },
            exclude: (0, 0),
        };
        for i in 0..MAX_SPACES as u64 {
            chk.register(space(i), i as u32, 1).unwrap();
        }
        let e = chk.register(space(99), 99, 1).unwrap_err();
        assert_eq!(e, RegisterError::Full { max: MAX_SPACES });
        assert_eq!(e.to_string(), "16 live spaces are registered already");
    }
}

impl Checker {
    /// A checker with no space registered, injecting `inject`.
    pub fn new(inject: Inject) -> Self {
        Checker {
            inject,
            full_every: FULL_SCAN_EVERY,
            ..Default::default()
        }
    }

    /// Scans a space scanned by change in full every `n` scans (1: every scan is full, as
    /// for spaces whose owner's CPU invalidates are not reported). 0 means the default,
    /// [`FULL_SCAN_EVERY`].
    pub fn set_full_scan_every(&mut self, n: u32) {
        self.full_every = if n == 0 { FULL_SCAN_EVERY } else { n };
    }

    /// See [`Checker::set_full_scan_every`].
    pub fn full_scan_every(&self) -> u32 {
        self.full_every
    }

    /// The seeded bug in force.
    pub fn inject(&self) -> Inject {
        self.inject
    }

    /// Starts checking `space` for channel `chid` of process `pid`. A space already registered
    /// for the same page directory and page-table root gains the channel; one for the same
    /// page directory and another root is replaced (a stale registration). Fails when
    /// [`MAX_SPACES`] live spaces are registered.
    pub fn register(
        &mut self,
        space: CheckedSpace,
        chid: u32,
        pid: u32,
    ) -> Result<(), RegisterError> {
        let watched = self.watched.contains(&space.cpu.root);
        let ranged = self.ranged.contains(&space.cpu.root);
        if let Some(s) = self
            .spaces
            .iter_mut()
            .find(|s| s.space.pdb == space.pdb && s.life != Life::Retired)
        {
            if s.space.cpu == space.cpu && s.life == Life::Live {
                s.space = space;
                s.pid = pid;
                s.watched |= watched;
                s.ranged |= ranged;
                s.chids.retain(|&c| c != chid);
                if s.chids.len() == MAX_CHIDS {
                    s.chids.remove(0);
                }
                s.chids.push(chid);
                return Ok(());
            }
            log::warn!(
                "PTE checker: page directory {:#x} re-registered (channel {chid}, pid {pid}); \
                 the earlier registration (pid {}) is dropped",
                space.pdb.addr,
                s.pid
            );
            s.life = Life::Retired;
        }
        if self.spaces.len() >= MAX_SPACES {
            // Drop the oldest space no longer live.
            match self.spaces.iter().position(|s| s.life != Life::Live) {
                Some(i) => {
                    self.spaces.remove(i);
                }
                None => return Err(RegisterError::Full { max: MAX_SPACES }),
            }
        }
        self.registered += 1;
        self.spaces.push(SpaceState {
            space,
            chids: vec![chid],
            pid,
            order: self.registered,
            watched,
            life: Life::Live,
            shadow: BTreeMap::new(),
            stale: BTreeMap::new(),
            reported: BTreeSet::new(),
            violations: 0,
            stale_pages: 0,
            ranged,
            picture: None,
            suspects: BTreeSet::new(),
            since_full: 0,
        });
        Ok(())
    }

    /// Stops checking the space of `pdb` (every space for None).
    pub fn unregister(&mut self, pdb: Option<Pdb>) {
        self.spaces
            .retain(|s| pdb.is_some_and(|p| p != s.space.pdb));
    }

    /// Whether any space is registered and not retired (uses are then judged).
    pub fn armed(&self) -> bool {
        self.spaces.iter().any(|s| s.life != Life::Retired)
    }

    /// The live space of `pdb`, if one is registered.
    pub fn space_of(&self, pdb: Pdb) -> Option<CheckedSpace> {
        self.find(pdb)
            .map(|i| &self.spaces[i])
            .filter(|s| s.life == Life::Live)
            .map(|s| s.space)
    }

    /// Spaces registered (any life).
    pub fn spaces(&self) -> usize {
        self.spaces.len()
    }

    /// What is known about the space registered (most recently) with channel `chid`.
    pub fn report(&self, chid: u32) -> Option<SpaceReport> {
        self.spaces
            .iter()
            .rev()
            .find(|s| s.chids.contains(&chid))
            .map(|s| SpaceReport {
                life: s.life,
                watched: s.watched,
                pid: s.pid,
                order: s.order,
                violations: s.violations,
                stale: s.stale_pages,
            })
    }

    /// Counters.
    pub fn stats(&self) -> CheckStats {
        self.rec.stats
    }

    /// The last violation (of the reasons [`CheckStats::violations`] counts).
    pub fn last(&self) -> Option<Violation> {
        self.rec.last
    }

    /// The last violation that was new ([`Violation::new`]): the last PTE first found wrong.
    pub fn last_new(&self) -> Option<Violation> {
        self.rec.last_new
    }

    /// The first [`MAX_KEPT`] violations.
    pub fn first(&self) -> &[Violation] {
        &self.rec.first
    }

    /// Events since the last call.
    pub fn take_events(&mut self) -> Vec<ModelEvent> {
        std::mem::take(&mut self.rec.events)
    }

    fn find(&self, pdb: Pdb) -> Option<usize> {
        self.spaces
            .iter()
            .rposition(|s| s.space.pdb == pdb && s.life != Life::Retired)
    }

    /// The test module watches the exit of the process whose page-table root is `root`.
    pub fn mm_watched(&mut self, root: u64) {
        remember(&mut self.watched, root);
        for s in self.spaces.iter_mut().filter(|s| s.space.cpu.root == root) {
            s.watched = true;
        }
    }

    /// The mm whose page-table root is `root` is being torn down (its notifier's `release`
    /// ran; its pages and page tables are freed next). Every live space it owns stops
    /// walking those page tables, and every GPU PTE still valid there is reported stale.
    pub fn mm_exited(&mut self, mem: &mut PhysMem, root: u64) {
        self.watched.retain(|&r| r != root);
        for i in 0..self.spaces.len() {
            let s = &mut self.spaces[i];
            if s.life == Life::Live && s.space.cpu.root == root {
                s.life = Life::Exited;
                log::info!(
                    "PTE checker: the process of channel {} (pid {}) exited; its GPU mappings \
                     from now on are stale",
                    s.chid() as i32,
                    s.pid
                );
                self.scan_index(mem, i, true, None);
            }
        }
    }

    /// Exited spaces, as (channel, instance block), for [`Checker::retire`].
    pub fn exited_channels(&self) -> Vec<(u32, u64)> {
        self.spaces
            .iter()
            .filter(|s| s.life == Life::Exited)
            .map(|s| (s.chid(), s.space.inst))
            .collect()
    }

    /// The channel of an exited space is no longer bound to its instance block: stop
    /// scanning the space (its page directory may be freed and reused).
    pub fn retire(&mut self, chid: u32, inst: u64) {
        for s in self.spaces.iter_mut() {
            if s.life == Life::Exited && s.chid() == chid && s.space.inst == inst {
                s.life = Life::Retired;
            }
        }
    }

    /// Checks a translation the GPU is about to use for `va` (4 KiB page granular) through
    /// the channel `chid` (instance block `inst`) whose page directory is `pdb`; `shift` is
    /// the page shift of the PTE that translated it. A use through a PTE a scan already
    /// found wrong (and that has not changed since) is counted and reported, but not as new.
    #[allow(clippy::too_many_arguments)]
    pub fn check_use(
        &mut self,
        mem: &PhysMem,
        chan: (u32, u64, Pdb),
        va: u64,
        target: Target,
        pa: u64,
        writable: bool,
        shift: u8,
    ) {
        if !self.armed() {
            return;
        }
        let (chid, inst, pdb) = chan;
        let pte_shaped = Pte::use_shaped(pa, writable).0;
        let va = va & !0xfff;
        let Some(i) = self.find(pdb) else {
            self.rec.stats.violations += 1;
            self.rec.record_counted(Violation {
                va,
                pages: 1,
                gpu_pte: pte_shaped,
                cpu_pte: 0,
                reason: Reason::Unowned,
                inst,
                chid,
                pid: 0,
                at: At::Use,
                shift: 0,
                new: true,
            });
            return;
        };
        let sp = &mut self.spaces[i];
        if excluded(&sp.space, va) {
            return;
        }
        if sp.life == Life::Exited {
            let v = Violation {
                va,
                pages: 1,
                gpu_pte: pte_shaped,
                cpu_pte: 0,
                reason: Reason::StaleAfterExit,
                inst,
                chid,
                pid: sp.pid,
                at: At::Use,
                shift: 0,
                new: true,
            };
            self.rec.record(sp, v);
            return;
        }
        // The PTE that translated it, as the scans know it.
        let base = va & !((1u64 << shift.min(63)) - 1);
        let known_bad =
            sp.suspects.contains(&base) && sp.shadow.get(&base).is_some_and(|e| e.1 == shift);
        let mut work = Work::default();
        judge_span(
            mem,
            sp,
            &mut self.rec,
            &mut work,
            Span {
                va,
                size: 4096,
                gpu: (target, pa & !0xfff, writable),
                gpu_pte: pte_shaped,
                shift,
                at: At::Use,
                known_bad,
            },
            (chid, inst),
        );
        self.rec.stats.cpu_reads += work.cache.reads;
    }

    /// Scans the spaces an invalidate covers: every space for `all`, else the one whose page
    /// directory is at `pdb_addr`.
    pub fn scan_invalidated(&mut self, mem: &mut PhysMem, all: bool, pdb_addr: u64) {
        for i in 0..self.spaces.len() {
            if all || self.spaces[i].space.pdb.addr == pdb_addr {
                self.scan_index(mem, i, false, None);
            }
        }
    }

    /// Scans every space in full.
    pub fn scan(&mut self, mem: &mut PhysMem) {
        for i in 0..self.spaces.len() {
            self.scan_index(mem, i, true, None);
        }
    }

    /// Scans the space of `pdb` in full.
    pub fn scan_space(&mut self, mem: &mut PhysMem, pdb: Pdb) {
        if let Some(i) = self.find(pdb) {
            self.scan_index(mem, i, true, None);
        }
    }

    /// The test module will report the CPU invalidates of the mm whose page-table root is
    /// `root` ([`Checker::cpu_invalidated`]): its spaces may be scanned by change.
    pub fn mm_ranges_reported(&mut self, root: u64) {
        remember(&mut self.ranged, root);
        for s in self.spaces.iter_mut().filter(|s| s.space.cpu.root == root) {
            s.ranged = true;
        }
    }

    /// The CPU page tables of the mm whose root is `root` changed over `[start, end)` (its
    /// notifier's `invalidate_range_end`: the change is done, the old pages not yet freed).
    /// Every live space it owns is scanned, judging its GPU PTEs over that range against
    /// the new CPU entries: a GPU mapping the driver failed to invalidate is found here.
    pub fn cpu_invalidated(&mut self, mem: &mut PhysMem, root: u64, start: u64, end: u64) {
        self.rec.stats.cpu_invalidates += 1;
        for i in 0..self.spaces.len() {
            let s = &self.spaces[i];
            if s.life == Life::Live && s.ranged && s.space.cpu.root == root {
                let big = 1u64 << geometry::PD0_SHIFT;
                let from = start.saturating_sub(big - 1);
                self.rec.stats.partial_2m_invalidates += s
                    .shadow
                    .range(from..end.max(from))
                    .filter(|(&va, e)| {
                        let pte_end = va.saturating_add(big);
                        e.1 == geometry::PD0_SHIFT as u8
                            && pte_end > start
                            && (va < start || pte_end > end)
                    })
                    .count() as u64;
                self.scan_index(mem, i, false, Some((start, end)));
            }
        }
    }

    /// Scans one space: judges its valid PTEs (or, exited, reports them stale) and logs the
    /// ones that changed. In full (`full`, or whenever the space cannot be scanned by change,
    /// see [`Checker::set_full_scan_every`]) every valid PTE is judged. Otherwise only the
    /// leaves written since the last scan are read, and judged are: the PTEs that changed;
    /// at a flush (`cpu` None) the PTEs found violating last time (reported again, as a full
    /// scan would, and a CPU mapping may have become right without a notifier: a fault or a
    /// write upgrade); and the PTEs over `cpu` (a CPU invalidate of the owner's mm).
    fn scan_index(&mut self, mem: &mut PhysMem, i: usize, full: bool, cpu: Option<(u64, u64)>) {
        let injecting = self.inject.applies_to(self.spaces[i].order);
        let full_every = self.full_every;
        let sp = &mut self.spaces[i];
        if sp.life == Life::Retired {
            return;
        }
        let rec = &mut self.rec;
        rec.stats.scans += 1;
        let s = sp.space;
        let full = full
            || !sp.ranged
            || sp.life != Life::Live
            || injecting
            || sp.picture.is_none()
            || sp.since_full.saturating_add(1) >= full_every;
        let epoch = mem.write_epoch();
        let mut last = if full { None } else { sp.picture.take() };
        let mut en = Enumeration::default();
        enumerate(mem, s.pdb, &sp.shadow, last.as_mut(), &mut en);
        rec.stats.tables += en.tables.min(MAX_SCAN_TABLES) as u64;
        rec.stats.leaves_reused += en.reused;
        if en.truncated {
            rec.stats.truncated_scans += 1;
            if rec.line() {
                log::warn!(
                    "PTE check: scan of channel {} cut short at a bound ({} tables, {} PTEs); \
                     the rest of the space is not judged this time",
                    sp.chid() as i32,
                    en.tables,
                    en.ptes
                );
            }
        }
        if en.aliases > 0 {
            rec.stats.aliases += en.aliases;
            if rec.line() {
                log::warn!(
                    "PTE check: {} page tables of channel {} are reached a second time \
                     (tables pointing at themselves or shared); followed once only",
                    en.aliases,
                    sp.chid() as i32
                );
            }
        }
        for &(va, lo) in &en.hazards {
            rec.stats.hazards += 1;
            if rec.line() {
                log::warn!(
                    "PTE check hazard: PD0 entry for VA {va:#x} is a cleared 2 MiB PTE \
                     ({lo:#018x}) that reads as a big-page-table pointer to system memory"
                );
            }
            rec.events.push(ModelEvent::CheckHazard { va, pd0: lo });
        }
        let chan = (sp.chid(), s.inst);
        let at = if cpu.is_some() {
            At::CpuInvalidate
        } else {
            At::Flush
        };
        let mut work = Work::default();
        let mut complete = !en.truncated;
        if full {
            rec.stats.full_scans += 1;
            sp.since_full = 0;
            let mut found: Vec<Found> = en.found().copied().collect();
            if injecting && sp.life == Life::Live {
                apply_injection(mem, self.inject.kind, sp, &mut found);
            }
            // Changes since the last scan.
            let mut now = BTreeMap::new();
            let mut changed = BTreeSet::new();
            let mut logged = 0;
            for f in &found {
                now.insert(f.va, (f.pte, f.shift));
                if sp.shadow.get(&f.va) != Some(&(f.pte, f.shift)) {
                    rec.pte_changed(&mut logged, f.va, f.pte, f.shift);
                    changed.insert(f.va);
                }
            }
            for (&va, &(_, shift)) in &sp.shadow {
                if !now.contains_key(&va) {
                    rec.pte_changed(&mut logged, va, 0, shift);
                }
            }
            sp.shadow = now;
            rec.begin_scan();
            if sp.life == Life::Exited {
                sp.reported.retain(|va| sp.shadow.contains_key(va));
            }
            let before = std::mem::take(&mut sp.suspects);
            for f in &found {
                if sp.life == Life::Exited {
                    if sp.reported.insert(f.va) {
                        report_stale(sp, rec, f, chan);
                    }
                    continue;
                }
                let span = Span {
                    at,
                    known_bad: before.contains(&f.va) && !changed.contains(&f.va),
                    ..span_of(f.va, f.shift, f.pte)
                };
                match judge_span(mem, sp, rec, &mut work, span, chan) {
                    Some(bad) => {
                        if bad {
                            sp.suspects.insert(f.va);
                        }
                    }
                    None => {
                        complete = false;
                        break;
                    }
                }
            }
        } else {
            sp.since_full += 1;
            let mut last = last.unwrap_or_default();
            // Changed and new PTEs, in the order the scan visited them: each leaf read afresh
            // against what it held (both are by VA).
            let mut logged = 0;
            let mut judge: BTreeMap<u64, (u64, u8)> = BTreeMap::new();
            let mut changed = BTreeSet::new();
            let mut gone = Vec::new();
            for key in &en.fresh {
                let new = en.leaves.get(key).map_or(&[][..], |l| &l.found[..]);
                let old = last.leaves.remove(key).map(|l| l.found).unwrap_or_default();
                let mut o = old.iter().peekable();
                for f in new {
                    while let Some(g) = o.next_if(|g| g.va < f.va) {
                        gone.push(g.va);
                    }
                    if o.next_if(|g| g.va == f.va)
                        .is_some_and(|g| (g.pte, g.shift) == (f.pte, f.shift))
                    {
                        continue;
                    }
                    if sp.shadow.get(&f.va) != Some(&(f.pte, f.shift)) {
                        rec.pte_changed(&mut logged, f.va, f.pte, f.shift);
                        sp.shadow.insert(f.va, (f.pte, f.shift));
                        judge.insert(f.va, (f.pte, f.shift));
                        changed.insert(f.va);
                    }
                }
                gone.extend(o.map(|g| g.va));
            }
            // Leaves no longer reached: everything they held is gone.
            gone.extend(
                last.leaves
                    .values()
                    .flat_map(|l| l.found.iter().map(|f| f.va)),
            );
            gone.sort_unstable();
            gone.dedup();
            for va in gone {
                // (A VA another leaf now holds: a big and a small PTE at one address.)
                if judge.contains_key(&va) {
                    continue;
                }
                if let Some((_, shift)) = sp.shadow.remove(&va) {
                    sp.suspects.remove(&va);
                    rec.pte_changed(&mut logged, va, 0, shift);
                }
            }
            match cpu {
                // At a flush, what was wrong is judged (and so reported) again, as a full
                // scan would.
                None => {
                    for va in &sp.suspects {
                        if let Some(&e) = sp.shadow.get(va) {
                            judge.insert(*va, e);
                        }
                    }
                }
                // A CPU invalidate judges only its range.
                Some((start, end)) => {
                    let from = start.saturating_sub(1 << geometry::PD0_SHIFT);
                    for (&va, &e) in sp.shadow.range(from..end.max(from)) {
                        if va.saturating_add(1 << e.1) > start {
                            judge.insert(va, e);
                        }
                    }
                }
            }
            rec.begin_scan();
            for (va, (pte, shift)) in judge {
                let span = Span {
                    at,
                    known_bad: sp.suspects.contains(&va) && !changed.contains(&va),
                    ..span_of(va, shift, pte)
                };
                match judge_span(mem, sp, rec, &mut work, span, chan) {
                    Some(true) => {
                        sp.suspects.insert(va);
                    }
                    Some(false) => {
                        sp.suspects.remove(&va);
                    }
                    None => {
                        complete = false;
                        break;
                    }
                }
            }
        }
        if !complete && !en.truncated {
            rec.stats.truncated_scans += 1;
            if rec.line() {
                log::warn!(
                    "PTE check: scan of channel {} stopped after {MAX_SCAN_WORK} CPU walks; \
                     the rest of the space is not judged this time",
                    chan.0 as i32
                );
            }
        }
        // A scan cut short leaves nothing to build on: the next one is full. Only a space
        // that can be scanned by change keeps one at all.
        sp.picture = (complete && sp.ranged && sp.life == Life::Live).then_some(Picture {
            epoch,
            leaves: en.leaves,
        });
        rec.stats.cpu_reads += work.cache.reads;
        rec.stats.cpu_cache_hits += work.cache.hits;
        rec.end_scan(sp);
    }
}

/// The span a PTE of `1 << shift` bytes at `va` maps.
fn span_of(va: u64, shift: u8, pte: u64) -> Span {
    let p = Pte(pte);
    let size = 1u64 << shift;
    Span {
        va,
        size,
        gpu: (p.target(), p.address() & !(size - 1), !p.read_only()),
        gpu_pte: pte,
        shift,
        at: At::Flush,
        known_bad: false,
    }
}

/// Adds `root` to a bounded list of page-table roots (newest last; the oldest goes first
/// once [`MAX_WATCHED`] are held).
fn remember(roots: &mut VecDeque<u64>, root: u64) {
    if !roots.contains(&root) {
        if roots.len() == MAX_WATCHED {
            roots.pop_front();
        }
        roots.push_back(root);
    }
}

fn excluded(s: &CheckedSpace, va: u64) -> bool {
    va >= s.exclude.0 && va < s.exclude.1
}

/// Reports the mirrored pages of a PTE of an exited space as stale.
fn report_stale(sp: &mut SpaceState, rec: &mut Recorder, f: &Found, chan: (u32, u64)) {
    let end = f.va.saturating_add(1 << f.shift);
    let (xs, xe) = sp.space.exclude;
    // The PTE's range minus the unmanaged window: at most two pieces.
    for (a, b) in [(f.va, end.min(xs)), (f.va.max(xe), end)] {
        if a < b {
            let v = Violation {
                va: a,
                pages: (b - a) >> 12,
                gpu_pte: f.pte,
                cpu_pte: 0,
                reason: Reason::StaleAfterExit,
                inst: chan.1,
                chid: chan.0,
                pid: sp.pid,
                at: At::Flush,
                shift: f.shift,
                // Reported once per PTE (the caller's `reported`).
                new: true,
            };
            rec.record(sp, v);
        }
    }
}

/// What one scan (or one use) has spent, and the CPU walks' shared upper levels.
#[derive(Debug, Default)]
struct Work {
    walks: u64,
    cache: WalkCache,
}

/// A GPU page (or a range of it) to judge.
#[derive(Debug, Clone, Copy)]
struct Span {
    va: u64,
    size: u64,
    /// Target, physical address of the first byte, writable.
    gpu: (Target, u64, bool),
    gpu_pte: u64,
    shift: u8,
    at: At,
    /// Found wrong when last judged, and unchanged since (its violations are not new).
    known_bad: bool,
}

/// Judges every 4 KiB page of `span` against the CPU page tables of `sp`, one CPU walk per
/// run of pages the CPU maps alike (a CPU large page, or a non-present upper-level entry:
/// both GPU and CPU addresses advance page by page there, so one verdict holds for all).
/// Returns whether any page of it is wrong, or None when `work` reached [`MAX_SCAN_WORK`].
fn judge_span(
    mem: &PhysMem,
    sp: &mut SpaceState,
    rec: &mut Recorder,
    work: &mut Work,
    span: Span,
    chan: (u32, u64),
) -> Option<bool> {
    let s = sp.space;
    let end = span.va.saturating_add(span.size);
    let mut va = span.va;
    let mut bad = false;
    while va < end {
        if excluded(&s, va) {
            va = s.exclude.1.min(end);
            continue;
        }
        if work.walks >= MAX_SCAN_WORK {
            return None;
        }
        work.walks += 1;
        let cpu = s.cpu.walk_cached(mem, va, &mut work.cache);
        // The CPU range that resolves alike from `va`.
        let alike = match cpu {
            Ok(CpuMapping::Present { page_size, .. }) => page_size,
            Ok(CpuMapping::NotPresent { level, .. }) => 1u64 << (12 + 9 * (u32::from(level) - 1)),
            Err(_) => 4096,
        };
        let mut stop = (va | (alike - 1)).saturating_add(1).min(end);
        if va < s.exclude.0 {
            stop = stop.min(s.exclude.0);
        }
        let pages = ((stop - va) >> 12).max(1);
        rec.stats.checked += pages;
        let gpu_page = span.gpu.1 + (va - span.va);
        if let Some((reason, cpu_pte)) =
            verdict(&s, cpu, va, alike, (span.gpu.0, gpu_page, span.gpu.2))
        {
            let v = Violation {
                va,
                pages,
                gpu_pte: span.gpu_pte,
                cpu_pte,
                reason,
                inst: chan.1,
                chid: chan.0,
                pid: sp.pid,
                at: span.at,
                shift: span.shift,
                new: !span.known_bad,
            };
            rec.record(sp, v);
            bad = true;
        }
        va = stop;
    }
    Some(bad)
}

/// The verdict on the 4 KiB page at `va`, which the GPU maps to (`target`, `pa_page`),
/// writable or not; `alike` is the size of the CPU entry the walk ended at.
fn verdict(
    s: &CheckedSpace,
    cpu: Result<CpuMapping, x86::WalkError>,
    va: u64,
    alike: u64,
    gpu: (Target, u64, bool),
) -> Option<(Reason, u64)> {
    let (target, pa_page, writable) = gpu;
    let sys = target.is_sys();
    match cpu {
        Err(_) => Some((Reason::CpuWalkFailed, 0)),
        Ok(_) if matches!(target, Target::Peer(_)) => Some((Reason::BadAperture, 0)),
        Ok(CpuMapping::Present {
            page,
            writable: cpu_w,
            pte,
            ..
        }) => {
            if !sys {
                Some((Reason::VramButCpuPresent, pte))
            } else if page != pa_page {
                Some((Reason::WrongPage, pte))
            } else if writable && !cpu_w {
                Some((Reason::WritableButCpuReadOnly, pte))
            } else {
                None
            }
        }
        Ok(CpuMapping::NotPresent { pte, .. }) => {
            let special = SwapEntry::decode(pte).and_then(|e| Some((e, s.swap.special(e)?)));
            match (sys, special) {
                (
                    true,
                    Some((e, Special::DeviceExclusive { write } | Special::Migration { write })),
                ) => {
                    // An upper-level (PMD) migration entry stands for a large page: the
                    // 4 KiB page inside it at the address's offset.
                    let page = (e.offset << 12).wrapping_add(va & (alike - 1) & !0xfff);
                    if page != pa_page {
                        Some((Reason::WrongPage, pte))
                    } else if writable && !write {
                        Some((Reason::WritableButCpuReadOnly, pte))
                    } else {
                        None
                    }
                }
                (true, Some((_, Special::DevicePrivate))) => Some((Reason::CpuPageOnDevice, pte)),
                (false, Some((_, Special::DevicePrivate | Special::Migration { .. }))) => None,
                _ => Some((Reason::CpuNotMapped, pte)),
            }
        }
    }
}

fn apply_injection(mem: &mut PhysMem, kind: InjectKind, sp: &mut SpaceState, found: &mut [Found]) {
    let s = sp.space;
    for f in found.iter_mut() {
        if excluded(&s, f.va) || sp.shadow.get(&f.va).map(|x| x.0) == Some(f.pte) {
            continue;
        }
        let pte = Pte(f.pte);
        let sys = pte.aperture().is_system();
        let new = match kind {
            // A page 1 TiB away: wrong, and outside guest RAM, so the GPU's accesses through
            // it fail instead of corrupting some other page of the guest.
            InjectKind::WrongPage if sys => Some(f.pte + ((1u64 << 40) >> 4)),
            InjectKind::WritableRo if sys && pte.read_only() => Some(f.pte & !(1 << 6)),
            _ => None,
        };
        if let Some(v) = new {
            if mem.write_u64(f.slot.0, f.slot.1, v).is_ok() {
                log::warn!(
                    "inject: PTE at VA {:#x} (channel {}) changed from {:#x} to {:#x}",
                    f.va,
                    sp.chid() as i32,
                    f.pte,
                    v
                );
                f.pte = v;
            }
        }
    }
    if kind == InjectKind::StaleAfterUnmap {
        // A small-page PTE that was valid at the last scan and is no longer joins the
        // stale set; every stale PTE is put back at every scan, as a driver that never
        // cleared it would leave it.
        let live: BTreeSet<u64> = found.iter().map(|f| f.va).collect();
        for (va, (pte, shift)) in &sp.shadow {
            if *shift == 12 && !live.contains(va) {
                sp.stale.entry(*va).or_insert(*pte);
            }
        }
        for (&va, &pte) in &sp.stale {
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::engine::testutil::Space;
    use crate::mmu::format::{DualPde, Pde, PdeAperture};
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
        chk.register(space_for(&gpu, 0x1000, 0x20_0000), 3, 100)
            .unwrap();
        Rig { mem, gpu, chk }
    }

    fn space_for(gpu: &Space, root: u64, inst: u64) -> CheckedSpace {
        CheckedSpace {
            swap: DEFAULT_SWAP_TYPES,
            pdb: gpu.pdb,
            inst,
            cpu: CpuSpace { root, la57: false },
            exclude: (0x7000_0000, 0x7100_0000),
        }
    }

    fn cpu_map(r: &Rig, va: u64, pa: u64, writable: bool) {
        let e = pa | P | US | if writable { RW } else { 0 };
        r.mem
            .sys_write(0x4000 + ((va >> 12) & 0x1ff) * 8, &e.to_le_bytes())
            .unwrap();
    }

    /// A GPU use through channel 3 (the rig's space) of VA `va` translated to system `pa`.
    fn use_in_first(r: &mut Rig, va: u64, pa: u64, write: bool) {
        let chan = (3, 0x20_0000, r.gpu.pdb);
        r.chk
            .check_use(&r.mem, chan, va, Target::SysCoherent, pa, write, 12);
    }

    /// The CPU maps `va` to `pa` writable, and the GPU mirrors it.
    fn mirror(r: &mut Rig, va: u64, pa: u64) {
        cpu_map(r, va, pa, true);
        r.gpu.map(&mut r.mem, va, Pte::pfn_system(pa, true, false));
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
        use_in_first(&mut r, 0x40_0123, 0x80_0123, true);
        assert_eq!(violations(&mut r), vec![]);
        cpu_unmap(&r, 0x40_0000);
        use_in_first(&mut r, 0x40_0123, 0x80_0123, false);
        assert_eq!(
            violations(&mut r),
            vec![(0x40_0000, Reason::CpuNotMapped as u8)]
        );
        assert_eq!(r.chk.last().unwrap().at, At::Use);
    }

    #[test]
    fn injection_names_round_trip() {
        for i in [
            Inject::None,
            Inject::WrongPage,
            Inject::WritableRo,
            Inject::StaleAfterUnmap,
        ] {
            assert_eq!(Inject::parse(&i.name()), Some(i));
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

    /// Writes `n` table entries starting at `at` in video memory, entry k = `f(k)`.
    fn fill(mem: &mut PhysMem, at: u64, n: u64, f: impl Fn(u64) -> u64) {
        for k in 0..n {
            mem.write_u64(Target::Video, at + 8 * k, f(k)).unwrap();
        }
    }

    fn pde(addr: u64) -> u64 {
        Pde::build(PdeAperture::Video, false, addr).0
    }

    /// A GPU space at `pdb` whose PD3[0] → PD2 → PD1, and PD1 entries 0..n_pd1 point at the
    /// PD0 tables `pd0(i)`; returns the PD1's address.
    fn directories(mem: &mut PhysMem, pdb: u64, n_pd1: u64, pd0: impl Fn(u64) -> u64) -> u64 {
        let (pd2, pd1) = (pdb + 0x1000, pdb + 0x2000);
        fill(mem, pdb, 4, |k| if k == 0 { pde(pd2) } else { 0 });
        fill(mem, pd2, 512, |k| if k == 0 { pde(pd1) } else { 0 });
        fill(mem, pd1, 512, |k| if k < n_pd1 { pde(pd0(k)) } else { 0 });
        pd1
    }

    /// A rig whose GPU space has `n` PD1 entries pointing at distinct (empty) PD0 tables;
    /// returns it and where PD0 number i is.
    fn rig_with_pd0s(n: u64) -> (Rig, impl Fn(u64) -> u64) {
        let mut r = rig(Inject::None);
        let pdb = r.gpu.pdb.addr;
        let pd0 = move |i: u64| pdb + 0x10_0000 + i * 0x1000;
        directories(&mut r.mem, pdb, n, pd0);
        (r, pd0)
    }

    /// A PD0 table at `at` whose 256 slots all hold 2 MiB system-memory PTEs.
    fn pd0_of_2m_ptes(mem: &mut PhysMem, at: u64) {
        for i in 0..256u64 {
            let pte = Pte::pfn_system(0x20_0000 * (i % 8), true, false).0;
            mem.write_u64(Target::Video, at + 16 * i, pte).unwrap();
            mem.write_u64(Target::Video, at + 16 * i + 8, 0).unwrap();
        }
    }

    fn count_violation_events(ev: &[ModelEvent]) -> usize {
        ev.iter()
            .filter(|e| matches!(e, ModelEvent::CheckViolation { .. }))
            .count()
    }

    #[test]
    fn the_checker_bomb_of_2m_ptes_is_bounded_and_aggregated() {
        // Issue 14's bomb: 64 PD1 entries whose PD0 tables hold nothing but 2 MiB PTEs the
        // CPU does not map. Here with 64 distinct PD0s (16,384 PTEs, 8.4 M pages): every page
        // is counted, but with one CPU walk per PTE (the CPU's upper levels are not present),
        // a bounded number of events and log lines, and ranges instead of pages.
        let (mut r, pd0) = rig_with_pd0s(64);
        for i in 0..64 {
            pd0_of_2m_ptes(&mut r.mem, pd0(i));
        }
        r.chk.scan(&mut r.mem);
        let st = r.chk.stats();
        // Every page but the 16 MiB unmanaged window (not mirrored, not judged).
        let pages = 64 * 256 * 512 - 4096;
        assert_eq!(st.violations, pages);
        assert_eq!(st.by_reason[Reason::CpuNotMapped as usize], pages);
        assert_eq!(st.checked, pages);
        assert_eq!(st.truncated_scans, 0);
        let ev = r.chk.take_events();
        assert_eq!(count_violation_events(&ev), MAX_VIOLATION_EVENTS);
        assert!(
            ev.len() <= MAX_VIOLATION_EVENTS + MAX_SCAN_EVENTS,
            "{}",
            ev.len()
        );
        // One line per violation up to the per-scan limit, then one summary line per reason.
        assert_eq!(st.log_lines, MAX_LOGGED_PER_SCAN as u64 + 1);
        assert!(r.chk.first().len() <= MAX_KEPT);
        // A second scan judges again (nothing changed) within the same bounds.
        r.chk.scan(&mut r.mem);
        assert_eq!(r.chk.stats().violations, 2 * pages);
        assert_eq!(
            r.chk.stats().log_lines,
            2 * (MAX_LOGGED_PER_SCAN as u64 + 1)
        );
        assert_eq!(
            count_violation_events(&r.chk.take_events()),
            MAX_VIOLATION_EVENTS
        );
    }

    #[test]
    fn pd1_entries_sharing_one_pd0_are_followed_once() {
        // The bomb as filed: all 64 PD1 entries name the same PD0. It is read once; the 63
        // other references are aliases, counted and not walked again.
        let mut r = rig(Inject::None);
        let pdb = r.gpu.pdb.addr;
        let shared = pdb + 0x10_0000;
        directories(&mut r.mem, pdb, 64, |_| shared);
        pd0_of_2m_ptes(&mut r.mem, shared);
        r.chk.scan(&mut r.mem);
        let st = r.chk.stats();
        assert_eq!(st.aliases, 63);
        assert_eq!(st.tables, 4, "PD3, PD2, PD1 and the one PD0");
        assert_eq!(st.violations, 256 * 512);
    }

    #[test]
    fn self_referencing_tables_cannot_multiply_work() {
        // Three pages whose every entry points at one of the three (itself included): each
        // is read once, whatever level it is reached at.
        let mut r = rig(Inject::None);
        let pdb = r.gpu.pdb.addr;
        let pages = [pdb, pdb + 0x1000, pdb + 0x2000];
        for (j, &p) in pages.iter().enumerate() {
            fill(&mut r.mem, p, 512, |k| pde(pages[(j + k as usize) % 3]));
        }
        for _ in 0..10 {
            r.chk.scan(&mut r.mem);
        }
        let st = r.chk.stats();
        assert_eq!(st.tables, 10 * 3);
        assert!(st.aliases > 0);
        assert_eq!(st.truncated_scans, 0);
        // The same with every entry pointing at the root (the old bound test).
        let mut r = rig(Inject::None);
        let pdb = r.gpu.pdb.addr;
        fill(&mut r.mem, pdb, 512, |_| pde(pdb));
        r.chk.scan(&mut r.mem);
        assert_eq!(r.chk.stats().tables, 1);
    }

    #[test]
    fn too_many_ptes_truncate_the_scan() {
        // 3 PD0s × 256 slots of small-page tables, 520 of them full of valid PTEs: 266,240
        // PTEs, past the collection bound.
        let (mut r, pd0) = rig_with_pd0s(3);
        let pt_base = r.gpu.pdb.addr + 0x20_0000;
        for i in 0..3 * 256u64 {
            let pt = pt_base + i * 0x1000;
            let slot = pd0(i / 256) + 16 * (i % 256);
            let d = DualPde::build(
                (PdeAperture::Invalid, false, 0),
                (PdeAperture::Video, false, pt),
            );
            r.mem.write_u64(Target::Video, slot, d.lo).unwrap();
            r.mem.write_u64(Target::Video, slot + 8, d.hi).unwrap();
            if i < 520 {
                fill(&mut r.mem, pt, 512, |k| {
                    Pte::pfn_system(0x80_0000 + (k << 12), true, false).0
                });
            }
        }
        r.chk.scan(&mut r.mem);
        let st = r.chk.stats();
        assert_eq!(st.truncated_scans, 1);
        assert!(st.checked <= MAX_SCAN_PTES as u64, "{}", st.checked);
        assert!(st.log_lines <= MAX_LOGGED_PER_SCAN as u64 + 3);
    }

    #[test]
    fn log_lines_are_bounded_over_the_checkers_life() {
        let mut r = rig(Inject::None);
        for i in 0..(MAX_LOG_LINES + 100) {
            use_in_first(&mut r, 0x40_0000 + (i % 512) * 4096, 0x80_0000, false);
        }
        let st = r.chk.stats();
        assert_eq!(st.violations, MAX_LOG_LINES + 100);
        assert_eq!(st.log_lines, MAX_LOG_LINES);
        assert_eq!(r.chk.first().len(), MAX_KEPT);
        assert_eq!(
            r.chk.last().unwrap().va,
            0x40_0000 + ((MAX_LOG_LINES + 99) % 512) * 4096
        );
    }

    /// A second process: CPU root 0x8000 (PML4) → 0x9000 → 0xa000 → PT 0xb000 for
    /// VA 0x40_0000.., a GPU space at 0x200_0000, channel 5, instance 0x30_0000, pid 200;
    /// both processes map VA 0x40_0000 (to different pages), on both sides.
    fn second_process(r: &mut Rig) -> Space {
        let put = |m: &PhysMem, a: u64, v: u64| m.sys_write(a, &v.to_le_bytes()).unwrap();
        put(&r.mem, 0x8000, 0x9000 | P | RW | US);
        put(&r.mem, 0x9000, 0xa000 | P | RW | US);
        put(&r.mem, 0xa000 + 2 * 8, 0xb000 | P | RW | US);
        let mut gpu = Space::new(0x200_0000);
        r.chk
            .register(space_for(&gpu, 0x8000, 0x30_0000), 5, 200)
            .unwrap();
        // Process 1 maps VA 0x40_0000 to 0x80_0000, process 2 the same VA to 0x90_0000, and
        // each GPU space mirrors its own process.
        mirror(r, 0x40_0000, 0x80_0000);
        put(&r.mem, 0xb000, 0x90_0000 | P | RW | US);
        gpu.map(
            &mut r.mem,
            0x40_0000,
            Pte::pfn_system(0x90_0000, true, false),
        );
        gpu
    }

    #[test]
    fn each_space_is_judged_against_its_own_process() {
        let mut r = rig(Inject::None);
        let g2 = second_process(&mut r);
        r.chk.scan(&mut r.mem);
        assert_eq!(
            violations(&mut r),
            vec![],
            "each PTE agrees with its own process"
        );
        assert_eq!(r.chk.stats().scans, 2);
        // Uses: each channel against its own process.
        r.chk.check_use(
            &r.mem,
            (5, 0x30_0000, g2.pdb),
            0x40_0000,
            Target::SysCoherent,
            0x90_0000,
            true,
            12,
        );
        use_in_first(&mut r, 0x40_0000, 0x80_0000, true);
        assert_eq!(violations(&mut r), vec![]);
        // Process 2's translation used in process 1's space is wrong there.
        use_in_first(&mut r, 0x40_0000, 0x90_0000, true);
        assert_eq!(
            violations(&mut r),
            vec![(0x40_0000, Reason::WrongPage as u8)]
        );
        let v = r.chk.last().unwrap();
        assert_eq!((v.chid, v.pid), (3, 100));
        // A channel whose page directory nobody registered: its own kind, never judged.
        let other = Pdb {
            target: Target::Video,
            addr: 0x300_0000,
        };
        r.chk.check_use(
            &r.mem,
            (9, 0x40_0000, other),
            0x40_0000,
            Target::SysCoherent,
            0x80_0000,
            true,
            12,
        );
        assert_eq!(violations(&mut r), vec![(0x40_0000, Reason::Unowned as u8)]);
        assert_eq!(r.chk.last().unwrap().chid, 9);
        assert_eq!(r.chk.stats().by_reason[Reason::Unowned as usize], 1);
        // Scans of one space only (an invalidate naming its page directory).
        r.chk.scan_invalidated(&mut r.mem, false, g2.pdb.addr);
        assert_eq!(r.chk.stats().scans, 3);
        assert_eq!(r.chk.report(5).unwrap().violations, 0);
        assert_eq!(r.chk.report(3).unwrap().violations, 1);
    }

    #[test]
    fn an_injection_into_the_second_space_is_attributed_to_it() {
        let inject = Inject::parse("wrong-page@2").unwrap();
        assert_eq!(inject.name(), "wrong-page@2");
        let mut r = rig(inject);
        second_process(&mut r);
        r.chk.scan(&mut r.mem);
        assert_eq!(
            violations(&mut r),
            vec![(0x40_0000, Reason::WrongPage as u8)]
        );
        let v = r.chk.last().unwrap();
        assert_eq!((v.chid, v.pid, v.inst), (5, 200, 0x30_0000));
        assert_eq!(r.chk.report(3).unwrap().violations, 0);
        assert_eq!(r.chk.report(5).unwrap().violations, 1);
        assert_eq!(r.chk.report(5).unwrap().order, 2);
    }

    #[test]
    fn gpu_mappings_left_at_process_exit_are_stale_and_cpu_tables_are_not_read() {
        let mut r = rig(Inject::None);
        r.chk.mm_watched(0x1000);
        assert!(r.chk.report(3).unwrap().watched);
        mirror(&mut r, 0x40_0000, 0x80_0000);
        mirror(&mut r, 0x40_1000, 0x80_1000);
        // nouveau's own buffer in the unmanaged window is no SVM mapping: not stale.
        r.gpu.map(
            &mut r.mem,
            0x7000_0000,
            Pte::pfn_system(0x5_0000, true, false),
        );
        r.chk.scan(&mut r.mem);
        assert_eq!(violations(&mut r), vec![]);
        // The mm is torn down (the module's release op); its page tables are then freed and
        // reused: garbage that would read as other verdicts if walked.
        r.chk.mm_exited(&mut r.mem, 0x1000);
        assert_eq!(r.chk.report(3).unwrap().life, Life::Exited);
        r.mem.sys_write(0x1000, &[0xff; 4096]).unwrap();
        let mut v = violations(&mut r);
        v.sort();
        assert_eq!(
            v,
            vec![
                (0x40_0000, Reason::StaleAfterExit as u8),
                (0x40_1000, Reason::StaleAfterExit as u8)
            ]
        );
        let st = r.chk.stats();
        assert_eq!(
            (st.stale, st.violations),
            (2, 0),
            "stale findings are their own count"
        );
        // Later scans report nothing already reported, and read no CPU table.
        r.chk.scan(&mut r.mem);
        assert_eq!(violations(&mut r), vec![]);
        // A PTE that appears afterwards in the dead space, and a use of a stale one.
        r.gpu.map(
            &mut r.mem,
            0x40_2000,
            Pte::pfn_system(0x80_2000, true, false),
        );
        r.chk.scan(&mut r.mem);
        use_in_first(&mut r, 0x40_0000, 0x80_0000, false);
        assert_eq!(
            violations(&mut r),
            vec![
                (0x40_2000, Reason::StaleAfterExit as u8),
                (0x40_0000, Reason::StaleAfterExit as u8)
            ]
        );
        assert_eq!(r.chk.first().last().unwrap().reason, Reason::StaleAfterExit);
        assert_eq!(r.chk.first().last().unwrap().at, At::Use);
        assert!(r.chk.last().is_none(), "stale findings are not violations");
        assert_eq!(r.chk.stats().by_reason[Reason::CpuWalkFailed as usize], 0);
        assert_eq!(r.chk.report(3).unwrap().stale, 4);
        // The channel is unbound (file close): the space retires and is not scanned again.
        assert_eq!(r.chk.exited_channels(), vec![(3, 0x20_0000)]);
        r.chk.retire(3, 0x20_0000);
        let scans = r.chk.stats().scans;
        r.chk.scan(&mut r.mem);
        assert_eq!(r.chk.stats().scans, scans);
        assert!(!r.chk.armed());
    }

    #[test]
    fn reregistering_a_page_directory() {
        let mut r = rig(Inject::None);
        let s = space_for(&r.gpu, 0x1000, 0x20_0000);
        // Another channel of the same process and page directory joins the space.
        r.chk.register(s, 4, 100).unwrap();
        assert_eq!(r.chk.spaces(), 1);
        assert!(r.chk.report(3).is_some() && r.chk.report(4).is_some());
        // Another process's root for the same page directory replaces it.
        r.chk
            .register(space_for(&r.gpu, 0x8000, 0x20_0000), 4, 300)
            .unwrap();
        assert_eq!(r.chk.report(4).unwrap().pid, 300);
        assert_eq!(r.chk.space_of(r.gpu.pdb).unwrap().cpu.root, 0x8000);
        // The bound on spaces.
        for i in 0..MAX_SPACES as u64 {
            let g = Space::new(0x300_0000 + i * 0x10_0000);
            let _ = r.chk.register(
                space_for(&g, 0x1000, 0x40_0000 + i * 0x1000),
                10 + i as u32,
                1,
            );
        }
        assert!(r.chk.spaces() <= MAX_SPACES);
        r.chk.unregister(None);
        assert!(!r.chk.armed());
    }

    #[test]
    fn a_scan_reads_each_cpu_directory_entry_once() {
        let mut r = rig(Inject::None);
        for i in 0..64u64 {
            let va = 0x40_0000 + (i << 12);
            mirror(&mut r, va, 0x80_0000 + (i << 12));
        }
        r.chk.scan(&mut r.mem);
        assert_eq!(violations(&mut r), vec![]);
        let st = r.chk.stats();
        assert_eq!(st.checked, 64);
        assert_eq!(
            st.cpu_reads,
            64 + 3,
            "64 PTEs, the PML4, PDPT and PD entries once"
        );
        assert_eq!(st.cpu_cache_hits, 63 * 3);
        // The same verdicts as uncached walks: a wrong page among them is still found.
        cpu_map(&r, 0x40_5000, 0x90_0000, true);
        r.chk.scan(&mut r.mem);
        assert_eq!(
            violations(&mut r),
            vec![(0x40_5000, Reason::WrongPage as u8)]
        );
    }

    proptest::proptest! {
        /// Garbage GPU and CPU page tables (entries often pointing back into the same few
        /// pages) never panic, and every scan stays within its bounds.
        #[test]
        fn garbage_tables_are_scanned_within_bounds(
            words in proptest::collection::vec(proptest::prelude::any::<u64>(), 512),
            cpu in proptest::collection::vec(proptest::prelude::any::<u64>(), 64),
            va in proptest::prelude::any::<u64>(),
        ) {
            let mut r = rig(Inject::StaleAfterUnmap);
            let pdb = r.gpu.pdb.addr;
            for (i, &w) in words.iter().enumerate() {
                // A quarter of the words become video PDEs to one of eight pages, a quarter
                // 2 MiB-shaped system PTEs; the rest stay garbage.
                let e = match w & 3 {
                    0 => pde(pdb + ((w >> 8) % 8) * 0x1000),
                    1 => Pte::pfn_system(((w >> 12) << 21) & 0xffff_ffff, true, false).0,
                    _ => w,
                };
                let at = pdb + (i as u64 % 8) * 0x1000 + (i as u64 / 8) * 8 * 7 % 4096;
                r.mem.write_u64(Target::Video, at & !7, e).unwrap();
            }
            for (i, &w) in cpu.iter().enumerate() {
                let at = 0x1000 + (i as u64 % 4) * 0x1000 + (i as u64 / 4) * 64;
                r.mem.sys_write(at, &((w & !0xff0) | (0x1007 * (w & 1))).to_le_bytes()).unwrap();
            }
            for _ in 0..3 {
                r.chk.scan(&mut r.mem);
                let ev = r.chk.take_events();
                proptest::prop_assert!(ev.len() <= MAX_SCAN_EVENTS + MAX_VIOLATION_EVENTS + 8 * 256);
            }
            r.chk.check_use(&r.mem, (3, 0x20_0000, r.gpu.pdb), va, Target::SysCoherent, va, true, 12);
            r.chk.mm_exited(&mut r.mem, 0x1000);
            r.chk.scan(&mut r.mem);
            let st = r.chk.stats();
            proptest::prop_assert!(st.tables <= 5 * MAX_SCAN_TABLES as u64, "{}", st.tables);
            proptest::prop_assert!(st.log_lines <= 5 * (MAX_LOGGED_PER_SCAN as u64 + 16));
            proptest::prop_assert!(r.chk.first().len() <= MAX_KEPT);
        }
    }

    #[test]
    fn uses_at_the_top_of_the_address_space_end() {
        let mut r = rig(Inject::None);
        for va in [u64::MAX, u64::MAX - 0xfff, 0xffff_8000_0000_0000, 1 << 63] {
            use_in_first(&mut r, va, 0x80_0000, true);
        }
        let st = r.chk.stats();
        assert_eq!(st.checked, 4, "one page judged per use");
        assert_eq!(st.violations, 4);
    }

    /// Scanning by change: the rig's space with its CPU invalidates reported.
    fn ranged(r: &mut Rig, full_every: u32) {
        r.chk.mm_ranges_reported(0x1000);
        r.chk.set_full_scan_every(full_every);
    }

    fn cpu_entry(r: &Rig, va: u64) -> u64 {
        let mut b = [0u8; 8];
        r.mem
            .sys_read(0x4000 + ((va >> 12) & 0x1ff) * 8, &mut b)
            .unwrap();
        u64::from_le_bytes(b)
    }

    #[test]
    fn a_scan_by_change_rereads_only_the_tables_written_since() {
        let mut r = rig(Inject::None);
        ranged(&mut r, 1000);
        // 4 MiB mirrored over two small-page tables (CPU tables cover 0x40_0000..0x60_0000
        // only, so keep to the first 2 MiB for the CPU side and map 2 MiB more the CPU
        // also maps through a second PD entry).
        let put = |m: &PhysMem, a: u64, v: u64| m.sys_write(a, &v.to_le_bytes()).unwrap();
        put(&r.mem, 0x3000 + 3 * 8, 0x5000 | P | RW | US); // PD[3]: VA 0x60_0000
        for p in 0..1024u64 {
            let va = 0x40_0000 + p * 0x1000;
            let e = (0x80_0000 + p * 0x1000) | P | RW | US;
            put(&r.mem, 0x4000 + p * 8, e); // both PTs are contiguous: 0x4000, 0x5000
            r.gpu.map(
                &mut r.mem,
                va,
                Pte::pfn_system(0x80_0000 + p * 0x1000, true, false),
            );
        }
        r.chk.scan_invalidated(&mut r.mem, true, 0);
        let first = r.chk.stats();
        assert_eq!(first.checked, 1024, "a space's first scan is full");
        assert_eq!(first.full_scans, 1);
        // One PTE changes (to a wrong page): one table is read again, one page judged.
        r.gpu.map(
            &mut r.mem,
            0x40_3000,
            Pte::pfn_system(0x90_0000, true, false),
        );
        r.chk.scan_invalidated(&mut r.mem, true, 0);
        let st = r.chk.stats();
        assert_eq!(st.full_scans, 1, "the second scan is by change");
        assert_eq!(
            st.checked - first.checked,
            1,
            "only the changed PTE is judged"
        );
        assert_eq!(
            st.leaves_reused - first.leaves_reused,
            1,
            "the other table is not read"
        );
        assert_eq!(
            violations(&mut r),
            vec![(0x40_3000, Reason::WrongPage as u8)]
        );
        // A violation is judged again at every scan (as a full scan would report it again).
        r.chk.scan_invalidated(&mut r.mem, true, 0);
        assert_eq!(
            violations(&mut r),
            vec![(0x40_3000, Reason::WrongPage as u8)]
        );
        assert_eq!(r.chk.stats().checked - st.checked, 1);
        // The CPU write-faults the page to where the GPU points, with no notifier (a
        // present entry changing would notify; this models a fault filling it anew): the
        // suspect is judged again and passes.
        put(&r.mem, 0x4000 + 3 * 8, 0x90_0000 | P | RW | US);
        r.chk.scan_invalidated(&mut r.mem, true, 0);
        assert_eq!(violations(&mut r), vec![]);
    }

    #[test]
    fn a_gpu_mapping_left_over_a_cpu_invalidate_is_found_at_the_invalidate() {
        let mut r = rig(Inject::None);
        ranged(&mut r, 1000);
        mirror(&mut r, 0x40_0000, 0x80_0000);
        mirror(&mut r, 0x40_1000, 0x80_1000);
        r.chk.scan_invalidated(&mut r.mem, true, 0);
        assert_eq!(violations(&mut r), vec![]);
        // munmap of the second page: the CPU entry goes, the driver forgets the GPU PTE,
        // nothing flushes; the module reports the invalidate.
        cpu_unmap(&r, 0x40_1000);
        r.chk
            .cpu_invalidated(&mut r.mem, 0x1000, 0x40_1000, 0x40_2000);
        assert_eq!(
            violations(&mut r),
            vec![(0x40_1000, Reason::CpuNotMapped as u8)]
        );
        assert_eq!(r.chk.stats().cpu_invalidates, 1);
        // Another process's invalidate judges nothing of this space.
        let before = r.chk.stats().checked;
        r.chk
            .cpu_invalidated(&mut r.mem, 0x9000, 0x40_0000, 0x40_2000);
        assert_eq!(r.chk.stats().checked, before);
        assert_eq!(violations(&mut r), vec![]);
    }

    /// A violation says where it was found and whether it is new: the first report of a PTE
    /// that stays wrong is new, the flushes after it report it again (not new), and a PTE
    /// the driver rewrites wrong is new again. Full and by-change scans agree on it.
    #[test]
    fn a_violation_is_new_once_and_says_where_it_was_found() {
        for full_every in [1, 1000] {
            let mut r = rig(Inject::None);
            ranged(&mut r, full_every);
            mirror(&mut r, 0x40_0000, 0x80_0000);
            mirror(&mut r, 0x40_1000, 0x80_1000);
            r.chk.scan_invalidated(&mut r.mem, true, 0);
            assert_eq!(r.chk.stats().new_violations, 0);
            assert!(r.chk.last_new().is_none());
            // The driver ignores a munmap's invalidate: found at the invalidate, new.
            cpu_unmap(&r, 0x40_1000);
            r.chk
                .cpu_invalidated(&mut r.mem, 0x1000, 0x40_1000, 0x40_2000);
            let v = r.chk.last_new().expect("a new violation");
            assert_eq!(
                (v.va, v.at, v.shift, v.reason),
                (0x40_1000, At::CpuInvalidate, 12, Reason::CpuNotMapped),
                "every {full_every}"
            );
            assert_eq!(r.chk.stats().new_violations, 1);
            // Two flushes report it again, not as new.
            r.chk.scan_invalidated(&mut r.mem, true, 0);
            r.chk.scan_invalidated(&mut r.mem, true, 0);
            let st = r.chk.stats();
            assert_eq!(
                (st.violations, st.new_violations),
                (3, 1),
                "every {full_every}"
            );
            assert_eq!(r.chk.last().unwrap().at, At::Flush);
            assert!(!r.chk.last().unwrap().new);
            // A GPU use through that PTE: reported, not new.
            let chan = (3, 0x20_0000, r.gpu.pdb);
            r.chk.check_use(
                &r.mem,
                chan,
                0x40_1000,
                Target::SysCoherent,
                0x80_1000,
                true,
                12,
            );
            let st = r.chk.stats();
            assert_eq!(
                (st.violations, st.new_violations),
                (4, 1),
                "every {full_every}"
            );
            assert_eq!(r.chk.last().unwrap().at, At::Use);
            // The driver maps another wrong page there: new again, found at the flush.
            r.gpu.map(
                &mut r.mem,
                0x40_1000,
                Pte::pfn_system(0x88_0000, true, false),
            );
            r.chk.scan_invalidated(&mut r.mem, true, 0);
            let v = r.chk.last_new().unwrap();
            assert_eq!(
                (v.va, v.at, v.gpu_pte),
                (
                    0x40_1000,
                    At::Flush,
                    Pte::pfn_system(0x88_0000, true, false).0
                )
            );
            assert_eq!(r.chk.stats().new_violations, 2, "every {full_every}");
        }
    }

    #[test]
    fn a_cpu_change_no_notifier_announced_is_found_by_the_periodic_full_scan() {
        let mut r = rig(Inject::None);
        ranged(&mut r, 4);
        mirror(&mut r, 0x40_0000, 0x80_0000);
        // The first scan is full.
        r.chk.scan_invalidated(&mut r.mem, true, 0);
        // The CPU entry changes page with no invalidate (a kernel bug of its own).
        cpu_map(&r, 0x40_0000, 0x81_0000, true);
        let mut found_at = None;
        for n in 2..=5 {
            r.chk.scan_invalidated(&mut r.mem, true, 0);
            if !violations(&mut r).is_empty() && found_at.is_none() {
                found_at = Some(n);
            }
        }
        assert_eq!(
            found_at,
            Some(5),
            "one scan in four is full: the 5th finds it"
        );
        assert_eq!(r.chk.stats().full_scans, 2);
        // A GPU use finds it at once whatever the scans do.
        use_in_first(&mut r, 0x40_0000, 0x80_0000, false);
        assert_eq!(
            violations(&mut r),
            vec![(0x40_0000, Reason::WrongPage as u8)]
        );
    }

    #[test]
    fn pte_changes_are_counted_by_page_size_and_target() {
        let mut r = rig(Inject::None);
        mirror(&mut r, 0x40_0000, 0x80_0000);
        mirror(&mut r, 0x40_1000, 0x80_1000);
        r.gpu.map(&mut r.mem, 0x40_2000, Pte::pfn_vram(0x10_0000));
        r.chk.scan(&mut r.mem);
        r.gpu.map(&mut r.mem, 0x40_1000, Pte(0));
        r.chk.scan(&mut r.mem);
        let st = r.chk.stats();
        assert_eq!(st.mapped, [3, 0, 0]);
        assert_eq!(st.mapped_vram, 1);
        assert_eq!(st.cleared, [1, 0, 0]);
        // Counted beyond the per-scan event bound too: the events are a sample, the counts
        // are not.
        assert_eq!(
            r.chk
                .take_events()
                .iter()
                .filter(|e| matches!(e, ModelEvent::PteWrite { .. }))
                .count(),
            4
        );
    }

    /// A CPU invalidate that covers a 2 MiB GPU PTE in part is counted (the driver must then
    /// clear part of a 2 MiB mapping); one that covers it whole, or misses it, is not.
    #[test]
    fn partial_invalidates_of_2m_ptes_are_counted() {
        let (mut r, pd0) = rig_with_pd0s(1);
        pd0_of_2m_ptes(&mut r.mem, pd0(0));
        ranged(&mut r, 1000);
        r.chk.scan(&mut r.mem);
        let partial = |r: &mut Rig, start: u64, end: u64| {
            let before = r.chk.stats().partial_2m_invalidates;
            r.chk.cpu_invalidated(&mut r.mem, 0x1000, start, end);
            r.chk.stats().partial_2m_invalidates - before
        };
        assert_eq!(partial(&mut r, 0x140_1000, 0x140_2000), 1, "inside one");
        assert_eq!(
            partial(&mut r, 0x140_0000, 0x160_0000),
            0,
            "exactly one, whole"
        );
        assert_eq!(
            partial(&mut r, 0x141_0000, 0x181_0000),
            2,
            "the ends of three"
        );
        assert_eq!(partial(&mut r, 0x140_0000, 0x140_0000), 0, "empty");
        // Another mm's invalidate says nothing about this space.
        let before = r.chk.stats().partial_2m_invalidates;
        r.chk
            .cpu_invalidated(&mut r.mem, 0x9000, 0x140_1000, 0x140_2000);
        assert_eq!(r.chk.stats().partial_2m_invalidates, before);
    }

    proptest::proptest! {
        #![proptest_config(proptest::prelude::ProptestConfig::with_cases(64))]
        /// Under the kernel's contract (a CPU entry that stops mapping a page, or loses
        /// write permission, is announced by an invalidate once changed; one that starts
        /// mapping need not be), a checker scanning by change reports at every flush
        /// exactly the violations a checker scanning in full reports.
        #[test]
        fn scans_by_change_agree_with_full_scans(
            ops in proptest::collection::vec((0u8..6, 0u64..48, 0u64..4), 1..160)
        ) {
            let mut r = rig(Inject::None);
            let mut inc = Checker::new(Inject::None);
            inc.mm_ranges_reported(0x1000);
            inc.set_full_scan_every(u32::MAX);
            inc.register(space_for(&r.gpu, 0x1000, 0x20_0000), 3, 100).unwrap();
            // Both scan in full at registration, as the window does.
            r.chk.scan(&mut r.mem);
            inc.scan(&mut r.mem);
            r.chk.take_events();
            inc.take_events();
            for (kind, page, arg) in ops {
                let va = 0x40_0000 + page * 0x1000;
                let pa = 0x80_0000 + ((page + arg) % 48) * 0x1000;
                match kind {
                    // The GPU maps the page as the CPU does, or (a driver bug) elsewhere.
                    0 | 1 => {
                        let e = cpu_entry(&r, va);
                        let (to, w) = if e & P != 0 && kind == 0 {
                            (e & 0x000f_ffff_ffff_f000, e & RW != 0)
                        } else {
                            (pa, arg & 1 != 0)
                        };
                        r.gpu.map(&mut r.mem, va, Pte::pfn_system(to, w, false));
                    }
                    2 => r.gpu.map(&mut r.mem, va, Pte(0)),
                    // The CPU maps, remaps, write-protects or unmaps the page.
                    3 | 4 => {
                        let old = cpu_entry(&r, va);
                        let new = match arg {
                            0 => 0,
                            1 => pa | P | US,
                            _ => pa | P | US | RW,
                        };
                        r.mem.sys_write(0x4000 + page * 8, &new.to_le_bytes()).unwrap();
                        let less = old & P != 0
                            && (new & P == 0
                                || new & !0xfff != old & !0xfff
                                || (old & RW != 0 && new & RW == 0));
                        if less {
                            inc.cpu_invalidated(&mut r.mem, 0x1000, va, va + 0x1000);
                        }
                        inc.take_events();
                    }
                    _ => {
                        r.chk.scan_invalidated(&mut r.mem, true, 0);
                        inc.scan_invalidated(&mut r.mem, true, 0);
                        let full = violations(&mut r);
                        let mine: Vec<(u64, u8)> = inc
                            .take_events()
                            .into_iter()
                            .filter_map(|e| match e {
                                ModelEvent::CheckViolation { va, reason, .. } => Some((va, reason)),
                                _ => None,
                            })
                            .collect();
                        proptest::prop_assert_eq!(mine, full);
                    }
                }
            }
            proptest::prop_assert_eq!(inc.stats().full_scans, 1, "only the registration's");
        }
    }
}
