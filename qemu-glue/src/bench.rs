//! `gp100emu bench`: throughput of the model's hot paths on one core, printed as
//! `name=value` lines. The host clock is read here, never in the emulator crate.

use std::hint::black_box;
use std::time::{Duration, Instant};

use emulator::fault::{AccessType, FaultEntry, FaultRing, FaultType};
use emulator::mem::{Memory, Target, VidMem};
use emulator::mmu::tlb::{ClientKind, PdbKey, TlbConfig, TlbEntry, Tlbs};
use emulator::mmu::walk::{translate, Access, PageSize, Pdb, Walk};
use emulator::mmu::{DualPde, Pde, PdeAperture, Pte};
use emulator::port::Space;
use emulator::trace::replay::{device_for, read_event, replay, write_event, Recorder};
use emulator::trace::{Record, TraceHeader, TraceReader, TraceWriter};
use emulator::Device;
use vm_memory::{GuestAddress, GuestMemoryMmap};

/// Runs `f` (which does `batch` operations) until `budget` has passed; returns ops per second.
fn rate(budget: Duration, batch: u64, mut f: impl FnMut() -> u64) -> f64 {
    // Warm up once.
    black_box(f());
    let t = Instant::now();
    let mut ops = 0u64;
    while t.elapsed() < budget {
        black_box(f());
        ops += batch;
    }
    ops as f64 / t.elapsed().as_secs_f64()
}

/// A page-table tree in video memory mapping `pages` 4 KiB pages from VA 0x10_0000_0000.
fn tree(pages: u64) -> (VidMem, Pdb, u64) {
    let mut vid = VidMem::new(256 << 20);
    let mut next = 0x10_0000u64;
    let mut alloc = || {
        next += 0x1000;
        next
    };
    let pd3 = alloc();
    let base = 0x10_0000_0000u64;
    for p in 0..pages {
        let va = base + p * 0x1000;
        let mut table = pd3;
        for (shift, mask) in [(47, 3u64), (38, 0x1ff), (29, 0x1ff)] {
            let slot = table + ((va >> shift) & mask) * 8;
            let cur = Pde(vid.read_u64(slot).unwrap());
            table = if cur.valid() {
                cur.address()
            } else {
                let t = alloc();
                vid.write_u64(slot, Pde::build(PdeAperture::Video, false, t).0)
                    .unwrap();
                t
            };
        }
        let slot = table + ((va >> 21) & 0xff) * 16;
        let mut spt = Pde(vid.read_u64(slot + 8).unwrap());
        if !spt.valid() {
            let t = alloc();
            let d = DualPde::build(
                (PdeAperture::Invalid, false, 0),
                (PdeAperture::Video, false, t),
            );
            vid.write_u64(slot + 8, d.hi).unwrap();
            spt = Pde(d.hi);
        }
        vid.write_u64(
            spt.address() + ((va >> 12) & 0x1ff) * 8,
            Pte::pfn_system(p << 12, true, true).0,
        )
        .unwrap();
    }
    (
        vid,
        Pdb {
            target: Target::Video,
            addr: pd3,
        },
        base,
    )
}

/// The model's fault timing next to the published Pascal figures (deterministic, not timed):
/// cycles from a miss to its fault entry, and for a batch of 64 missing accesses (the access
/// engine's largest), with the UVM driver's batch size and GPGPU-Sim UVMSmart's far-fault
/// latency beside them. The model has no SMs and the driver's servicing runs in the guest,
/// so only the GPU's side is the model's; see `docs/timing.md`.
pub fn fault_timing() -> Vec<(&'static str, f64)> {
    use emulator::timing::published as p;
    let mhz = emulator::timing::GPU_CLOCK_MHZ as f64;
    let one = emulator::scenarios::svm_fault_round_trip();
    let batch = emulator::scenarios::fault_batch(emulator::access::batch::SLOTS as u32);
    vec![
        ("model_miss_to_entry_cycles", one.fault as f64),
        ("model_miss_to_entry_ns", one.fault as f64 * 1000.0 / mhz),
        ("model_batch_slots", f64::from(batch.slots)),
        ("model_batch_entries", f64::from(batch.entries)),
        ("model_batch_cycles", batch.cycles as f64),
        (
            "model_batch_cycles_per_fault",
            batch.cycles as f64 / f64::from(batch.entries.max(1)),
        ),
        ("model_batch_us", batch.cycles as f64 / mhz),
        ("uvm_driver_batch_faults", p::UVM_FAULT_BATCH as f64),
        ("uvm_fault_entry_bytes", p::UVM_FAULT_ENTRY_BYTES as f64),
        (
            "uvmsmart_fault_latency_us",
            p::UVMSMART_FAULT_CYCLES as f64 / p::UVMSMART_CLOCK_MHZ as f64,
        ),
    ]
}

/// `gp100emu bench --tlb-curve`: the published pointer chase run on the model with the named
/// profile (`p100` or `legacy`): `footprint_mib,stride_mib,cycles,published` lines (the last
/// column empty inside a spread knee), then `name=value` summary lines; with `perfetto`, the
/// curve is also written there as Perfetto counter tracks. Err for an unknown profile or a
/// file that cannot be written.
pub fn tlb_curve(profile: &str, perfetto: Option<&std::path::Path>) -> Result<Vec<String>, String> {
    use emulator::mmu::tlb::TlbConfig;
    use emulator::timing::{published as p, Costs, P100, P100_ASSUMED};
    let (costs, tlb): (Costs, TlbConfig) = match profile {
        "p100" => (P100, TlbConfig::P100),
        "legacy" => (P100_ASSUMED, TlbConfig::LEGACY),
        other => return Err(format!("unknown profile {other:?} (p100, legacy)")),
    };
    let curve = emulator::scenarios::tlb_curve(costs, tlb);
    const MIB: u64 = 1 << 20;
    if let Some(path) = perfetto {
        let samples: Vec<emulator::trace::perfetto::CurveSample> = curve
            .iter()
            .map(|q| emulator::trace::perfetto::CurveSample {
                footprint_mib: q.footprint / MIB,
                stride_mib: q.stride / MIB,
                cycles: q.cycles,
                published: q.published,
            })
            .collect();
        let file = std::fs::File::create(path)
            .map_err(|e| format!("cannot create {}: {e}", path.display()))?;
        emulator::trace::perfetto::curve(&samples, std::io::BufWriter::new(file))
            .map_err(|e| format!("cannot write {}: {e}", path.display()))?;
    }
    let mut out = vec![format!(
        "# profile {} / tlb {}: model cycles per load; published = Karnagel et al. DaMoN 2017, Tesla P100-PCIE-16GB",
        costs.name, tlb.name
    )];
    out.push("footprint_mib,stride_mib,cycles,published".into());
    let mut worst = 0.0f64;
    let mut compared = 0u32;
    for pt in &curve {
        let publ = pt.published.map(|c| c.to_string()).unwrap_or_default();
        out.push(format!(
            "{},{},{:.1},{publ}",
            pt.footprint / MIB,
            pt.stride / MIB,
            pt.cycles
        ));
        if let Some(c) = pt.published {
            compared += 1;
            worst = worst.max((pt.cycles - c as f64).abs() / c as f64);
        }
    }
    // The plateaus at the points the published readings name.
    let at = |f: u64, s: u64| {
        curve
            .iter()
            .find(|q| q.footprint == f * MIB && q.stride == s * MIB)
            .map(|q| q.cycles)
            .unwrap_or(f64::NAN)
    };
    let knee = |s: u64, low: u64, high: u64| {
        let mid = (low + high) as f64 / 2.0;
        curve
            .iter()
            .find(|q| q.stride == s * MIB && q.cycles > mid)
            .map(|q| (q.footprint / MIB) as f64)
            .unwrap_or(f64::NAN)
    };
    let f = |v: f64| format!("{v:.1}");
    let summary: [(&str, String); 16] = [
        ("l1_hit_cycles", f(at(16, 2))),
        ("l1_hit_published", p::L1_HIT.to_string()),
        ("l2_hit_cycles", f(at(1600, 32))),
        ("l2_hit_published", p::L2_HIT.to_string()),
        ("miss_cycles", f(at(3008, 32))),
        ("miss_published", p::MISS.to_string()),
        ("half_miss_cycles", f(at(3008, 16))),
        ("half_miss_published", p::L2_HALF.to_string()),
        ("l1_knee_mib", f(knee(2, p::L1_HIT, p::L2_HIT))),
        ("l1_knee_published_mib", (p::L1_KNEE / MIB + 2).to_string()),
        ("l2_knee_mib", f(knee(32, p::L2_HIT, p::MISS))),
        ("l2_knee_published_mib", "2048..2336".into()),
        ("l2_knee_64_mib", f(knee(64, p::L2_HIT, p::MISS))),
        ("l2_knee_64_published_mib", "4096..4672".into()),
        ("points_compared", compared.to_string()),
        ("worst_error_percent", f(worst * 100.0)),
    ];
    for (name, v) in summary {
        out.push(format!("{name}={v}"));
    }
    Ok(out)
}

/// Runs every benchmark with about `secs` seconds each; returns (name, value) pairs.
pub fn run_all(secs: f64) -> Vec<(&'static str, f64)> {
    let budget = Duration::from_secs_f64(secs);
    let mut out = Vec::new();

    // The cycle model's cost of one replayable-fault round trip (deterministic, not timed).
    let f = emulator::scenarios::svm_fault_round_trip();
    let mhz = emulator::timing::GPU_CLOCK_MHZ as f64;
    out.push(("model_fault_cycles", f.fault as f64));
    out.push(("model_replay_cycles", f.replay as f64));
    out.push((
        "model_fault_round_trip_us",
        (f.fault + f.replay) as f64 / mhz,
    ));
    out.extend(fault_timing());

    // TLB hits: 16 translations cached in one client's L1, looked up round robin.
    let mut tlbs = Tlbs::new(TlbConfig::default());
    let client = ClientKind::Gpc(0);
    let pdb = PdbKey(0x1000);
    for i in 0..16u64 {
        tlbs.fill(
            client,
            TlbEntry {
                pdb,
                va: i << 12,
                size: PageSize::K4,
                target: Target::SysCoherent,
                pa: i << 20,
                read_only: false,
                atomic_disable: false,
                privilege: false,
            },
        );
    }
    out.push((
        "tlb_hit_translations_per_s",
        rate(budget, 1 << 16, || {
            let mut acc = 0u64;
            for i in 0..(1u64 << 16) {
                let va = ((i & 15) << 12) | (i & 0xfff);
                if let Some((e, _)) = tlbs.lookup(client, pdb, va) {
                    acc = acc.wrapping_add(e.pa);
                }
            }
            acc
        }),
    ));

    // Cold walks: five levels, no TLB, over 64 Ki mapped pages.
    let pages = 1u64 << 16;
    let (mut vid, pdb, base) = tree(pages);
    let ram = GuestMemoryMmap::<()>::from_ranges(&[(GuestAddress(0), 1 << 20)]).unwrap();
    let mem = Memory {
        vid: &mut vid,
        sys: &ram,
    };
    let mut x = 0x2545_f491_4f6c_dd1du64;
    out.push((
        "cold_walks_per_s",
        rate(budget, 1 << 14, || {
            let mut acc = 0u64;
            for _ in 0..(1u64 << 14) {
                x ^= x << 13;
                x ^= x >> 7;
                x ^= x << 17;
                let va = base + (x % pages) * 0x1000;
                if let Ok(Walk::Mapped { pa, .. }) = translate(&mem, pdb, va, Access::Read, false) {
                    acc = acc.wrapping_add(pa);
                }
            }
            acc
        }),
    ));

    // Fault entries: the GPU reports, the driver advances GET every 256 entries.
    let mut vid = VidMem::new(1 << 20);
    let mut mem = Memory {
        vid: &mut vid,
        sys: &ram,
    };
    let mut ring = FaultRing::new(emulator::fault::ring::HW_ENTRIES);
    ring.write32(emulator::fault::ring::regs::ADDR_LO, 0x1_0000 | 1);
    let mut n = 0u64;
    out.push((
        "fault_entries_per_s",
        rate(budget, 256, || {
            for _ in 0..256 {
                n += 1;
                ring.report_to(
                    &mut mem,
                    FaultEntry {
                        inst: 0x2000,
                        inst_aperture: 0,
                        addr: n << 12,
                        timestamp: n,
                        engine: 0,
                        valid: true,
                        gpc: 0,
                        hub: false,
                        access: AccessType::Read,
                        client: 0,
                        fault_type: FaultType::Pte,
                    },
                );
            }
            let put = ring.read32(emulator::fault::ring::regs::PUT).unwrap_or(0);
            ring.write32(emulator::fault::ring::regs::GET, put);
            n
        }),
    ));
    let written = ring.written();
    if ring.overflows() > 0 {
        log::warn!("bench: {} fault overflows (of {written})", ring.overflows());
    }

    // Trace replay: a synthetic probe-shaped trace of 1 M events.
    let trace = synthetic_trace(1_000_000);
    out.push((
        "replay_events_per_s",
        rate(budget, 1_000_000, || {
            let r = TraceReader::new(&trace[..]).expect("own trace");
            let o = replay(r, Device::new()).expect("own trace");
            assert!(o.exact(), "the synthetic trace must replay exactly");
            o.events
        }),
    ));
    out.push(("replay_trace_bytes_per_event", trace.len() as f64 / 1e6));

    // The PTE checker's full scan of an SVM space of 16 Ki 4 KiB pages (64 MiB) that the CPU
    // maps alike: every page judged, one CPU walk each.
    let (pages_per_s, reads_per_page) = checker_scan(budget, 1 << 14);
    out.push(("checker_scan_pages_per_s", pages_per_s));
    out.push(("checker_cpu_reads_per_page", reads_per_page));
    // One PTE changes per flush, as at a GPU fault, in the same 64 MiB space: full scans
    // against scans by change.
    let (full_us, change_us) = checker_flush(budget, 1 << 14);
    out.push(("checker_flush_full_us_64mib", full_us));
    out.push(("checker_flush_by_change_us_64mib", change_us));

    // The vfio-user server's share of a guest MMIO access (a client thread over a socket).
    out.extend(crate::transport::bench::run(budget));
    out
}

/// Guest RAM and video memory holding a GPU space of `pages` PTEs (the [`tree`] layout) whose
/// CPU page tables map every page to the same physical page, and the checked space.
fn checker_rig(pages: u64) -> (emulator::mem::PhysMem, emulator::check::CheckedSpace, u64) {
    use emulator::check::x86::{CpuSpace, DEFAULT_SWAP_TYPES};
    use emulator::check::CheckedSpace;
    use emulator::mem::{GpuMemory, PhysMem};
    let (vid, pdb, base) = tree(pages);
    let mut mem = PhysMem::new(256 << 20);
    let mut b = vec![0u8; 4 << 20];
    vid.read(0x10_0000, &mut b).expect("tables");
    mem.write_bytes(Target::Video, 0x10_0000, &b)
        .expect("tables");
    let ram = GuestMemoryMmap::<()>::from_ranges(&[(GuestAddress(0), 128 << 20)]).unwrap();
    mem.set_sys(Box::new(ram));
    // CPU tables from 0x400_0000: PML4, PDPT, PD, then one PT per 2 MiB.
    let put = |m: &PhysMem, a: u64, v: u64| m.sys_write(a, &v.to_le_bytes()).unwrap();
    let (pml4, pdpt, pd) = (0x400_0000u64, 0x400_1000u64, 0x400_2000u64);
    put(&mem, pml4 + ((base >> 39) & 0x1ff) * 8, pdpt | 7);
    put(&mem, pdpt + ((base >> 30) & 0x1ff) * 8, pd | 7);
    for p in 0..pages {
        let va = base + p * 0x1000;
        let pt = 0x400_3000 + ((p >> 9) << 12);
        put(&mem, pd + ((va >> 21) & 0x1ff) * 8, pt | 7);
        put(&mem, pt + ((va >> 12) & 0x1ff) * 8, (p << 12) | 7);
    }
    let space = CheckedSpace {
        swap: DEFAULT_SWAP_TYPES,
        pdb,
        inst: 0x1000,
        cpu: CpuSpace {
            root: pml4,
            la57: false,
        },
        exclude: (0, 0),
    };
    (mem, space, base)
}

/// Scans a space of `pages` GPU PTEs (the [`tree`] layout) whose CPU page tables map every
/// page to the same physical page; returns (pages judged per second, CPU entries read per
/// page).
pub fn checker_scan(budget: Duration, pages: u64) -> (f64, f64) {
    use emulator::check::{Checker, Inject};
    let (mut mem, space, _) = checker_rig(pages);
    let mut chk = Checker::new(Inject::None);
    chk.register(space, 0, 0).expect("one space");
    let rate = rate(budget, pages, || {
        chk.scan(&mut mem);
        chk.take_events().len() as u64
    });
    let st = chk.stats();
    assert_eq!(st.violations, 0, "the bench space must be clean");
    (rate, st.cpu_reads as f64 / st.checked.max(1) as f64)
}

/// What nouveau does per GPU fault, as the checker sees it: one PTE of a space of `pages`
/// changes, then a flush. Returns microseconds per flush (scan included) with every scan
/// full (as for a process whose CPU invalidates are not reported) and scanning by change (the
/// test module reports them), measured alternately in one run.
pub fn checker_flush(budget: Duration, pages: u64) -> (f64, f64) {
    use emulator::check::{Checker, Inject};
    use emulator::mem::GpuMemory;
    let (mut mem, space, base) = checker_rig(pages);
    // The small-page PTE slot of the middle page (directories as [`tree`] builds them).
    let va = base + (pages / 2) * 0x1000;
    let mut t = space.pdb.addr;
    for (shift, mask) in [(47, 3u64), (38, 0x1ff), (29, 0x1ff)] {
        t = Pde(mem
            .read_u64(Target::Video, t + ((va >> shift) & mask) * 8)
            .unwrap())
        .address();
    }
    let spt = Pde(mem
        .read_u64(Target::Video, t + ((va >> 21) & 0xff) * 16 + 8)
        .unwrap());
    let slot = spt.address() + ((va >> 12) & 0x1ff) * 8;
    let pte = mem.read_u64(Target::Video, slot).unwrap();
    let mut us = [0f64; 2];
    for (i, by_change) in [false, true].into_iter().enumerate() {
        let mut chk = Checker::new(Inject::None);
        chk.register(space, 0, 0).expect("one space");
        if by_change {
            chk.mm_ranges_reported(space.cpu.root);
            chk.set_full_scan_every(u32::MAX);
        }
        chk.scan(&mut mem);
        let mut n = 0u64;
        let per_s = rate(budget / 2, 1, || {
            // Unmapped, then mapped again: every flush sees one PTE change.
            n += 1;
            mem.write_u64(Target::Video, slot, if n % 2 == 1 { 0 } else { pte })
                .unwrap();
            chk.scan_invalidated(&mut mem, true, 0);
            chk.take_events().len() as u64
        });
        assert_eq!(chk.stats().violations, 0, "the bench space must be clean");
        us[i] = 1e6 / per_s;
    }
    (us[0], us[1])
}

/// A trace like a probe: BAR0 reads of boot0, the window and an undecoded offset, and window
/// writes.
pub fn synthetic_trace(events: usize) -> Vec<u8> {
    let header = TraceHeader {
        emulator_version: "bench".into(),
        bar1_size: 256 << 20,
        note: "synthetic".into(),
        inject: "none".into(),
        dma_write_data: false,
    };
    let mut dev = device_for(&header).expect("a known header");
    dev.set_event_log(true);
    let mut rec = Recorder::new();
    let mut pending: Vec<Record> = Vec::new();
    let mut out = Vec::new();
    let mut w = TraceWriter::new(&mut out, &header).expect("in-memory trace");
    let mut n = 0;
    while n < events {
        let mut b = [0u8; 4];
        let e = if n % 4 == 3 {
            write_event(&mut dev, Space::Bar(0), 0xff0010, &(n as u32).to_le_bytes())
        } else {
            let off = [0u64, 0xff0000, 0x123450][n % 3];
            read_event(&mut dev, Space::Bar(0), off, &mut b)
        };
        rec.after(&mut dev, e, &mut pending);
        for r in pending.drain(..) {
            w.push(&r).expect("in-memory trace");
            n += 1;
        }
    }
    drop(w);
    out
}
