//! The fuzz targets of `fuzz/` on a stable toolchain (issue 14): every body in
//! `qemu_glue::fuzzing` runs over its seed corpus (inputs made from `traces/`, hand-made
//! protocol sessions and the crafted inputs of issue 14), every file under
//! `tests/fuzz-regressions/<target>/` (crashes libFuzzer found, kept forever), and a bounded
//! number of deterministic mutations of the seeds. `GP100EMU_FUZZ_MUTANTS=N` raises the
//! number of mutants per target (default 200); a failure names the target, the seed and the
//! mutation number, and writes the input to `target/fuzz-failure-<target>.bin`.
//!
//! `GP100EMU_FUZZ_WRITE_CORPUS=DIR` writes the seeds small enough to mutate as
//! `DIR/<target>/seed-N` (the initial corpus for `cargo fuzz run`; see fuzz/README.md)
//! instead of checking anything.

use std::panic::{catch_unwind, AssertUnwindSafe};
use std::path::{Path, PathBuf};

use emulator::trace::codec::{encode, State};
use emulator::trace::{TraceHeader, TraceReader, TraceWriter};
use qemu_glue::fuzzing::{self, device_op, device_ops_from_trace, wrap_chunk, OpSpace};

fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..")
}

fn trace(name: &str) -> Vec<u8> {
    std::fs::read(repo().join("traces").join(name)).expect("traces/ is in the repository")
}

fn msg(id: u16, cmd: u16, body: &[u8]) -> Vec<u8> {
    let mut m = Vec::new();
    m.extend_from_slice(&id.to_le_bytes());
    m.extend_from_slice(&cmd.to_le_bytes());
    m.extend_from_slice(&(16 + body.len() as u32).to_le_bytes());
    m.extend_from_slice(&0u32.to_le_bytes());
    m.extend_from_slice(&0u32.to_le_bytes());
    m.extend_from_slice(body);
    m
}

fn access(region: u32, offset: u64, count: u32, data: &[u8]) -> Vec<u8> {
    let mut b = Vec::new();
    b.extend_from_slice(&offset.to_le_bytes());
    b.extend_from_slice(&region.to_le_bytes());
    b.extend_from_slice(&count.to_le_bytes());
    b.extend_from_slice(data);
    b
}

/// A session as QEMU drives one, as one byte stream: VERSION, device and region info, IRQ
/// info, config and BAR0 accesses, a DMA map without fd, SET_IRQS, a reset.
fn vfio_session() -> Vec<u8> {
    let mut s = Vec::new();
    let mut v = vec![0, 0, 0, 0];
    v.extend_from_slice(b"{\"capabilities\":{\"max_msg_fds\":16}}\0");
    s.extend(msg(1, 1, &v));
    s.extend(msg(
        2,
        4,
        &[20, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0],
    ));
    let mut ri = vec![0u8; 32];
    ri[0] = 32;
    ri[8] = 7;
    s.extend(msg(3, 5, &ri));
    s.extend(msg(
        4,
        7,
        &[16, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0],
    ));
    s.extend(msg(5, 9, &access(7, 0, 256, &[])));
    s.extend(msg(6, 10, &access(7, 0x10, 4, &[0xff; 4])));
    s.extend(msg(7, 9, &access(0, 0, 4, &[])));
    s.extend(msg(8, 10, &access(0, 0x140, 4, &1u32.to_le_bytes())));
    let mut map = Vec::new();
    map.extend_from_slice(&32u32.to_le_bytes());
    map.extend_from_slice(&1u32.to_le_bytes());
    map.extend_from_slice(&0u64.to_le_bytes());
    map.extend_from_slice(&0xfffc_0000u64.to_le_bytes());
    map.extend_from_slice(&0x4_0000u64.to_le_bytes());
    s.extend(msg(9, 2, &map));
    let mut irq = Vec::new();
    for w in [20u32, 1 | 1 << 5, 0, 0, 1] {
        irq.extend_from_slice(&w.to_le_bytes());
    }
    s.extend(msg(10, 8, &irq));
    s.extend(msg(11, 13, &[]));
    s.extend(msg(12, 9, &access(0, 0, 4, &[])));
    s
}

fn vfio_seeds() -> Vec<Vec<u8>> {
    let session = vfio_session();
    let mut seeds = vec![
        [vec![0u8], session.clone()].concat(),
        [vec![7u8], session.clone()].concat(),
        [vec![0u8], session[..200].to_vec()].concat(),
        // Issue 14's rows: VERSION without NUL, with an interior NUL, of 20 bytes; a header
        // split across sends (piece size 3); sizes up to 4 GiB; a read before VERSION.
        [vec![0u8], msg(1, 1, b"\0\0\0\0{}")].concat(),
        [vec![0u8], msg(1, 1, b"\0\0\0\0{}\0{}\0")].concat(),
        [vec![0u8], msg(1, 1, b"\0\0\0\0")].concat(),
        [vec![2u8], session.clone()].concat(),
        [
            vec![0u8],
            session[..36].to_vec(),
            msg(2, 9, &access(0, 0, u32::MAX, &[])),
        ]
        .concat(),
        [vec![0u8], session[..36].to_vec(), {
            let mut h = msg(2, 10, &[]);
            h[4..8].copy_from_slice(&u32::MAX.to_le_bytes());
            h
        }]
        .concat(),
        [vec![0u8], msg(1, 9, &access(7, 0, 4, &[])), session.clone()].concat(),
        vec![0xff; 64],
    ];
    seeds.extend(regressions("vfio_user_stream"));
    seeds
}

fn device_seeds() -> Vec<Vec<u8>> {
    let mut seeds = Vec::new();
    let probe = trace("probe.gptrace");
    let svm = trace("svm.gptrace");
    // Record offsets inside the committed traces (probe 358,893 records, svm 464,187 since
    // their 2026-12-02 recording): the start, the instance-memory setup, and later phases.
    for (t, skip) in [
        (&probe, 0),
        (&probe, 30_000),
        (&probe, 200_000),
        (&svm, 0),
        (&svm, 150_000),
        (&svm, 300_000),
    ] {
        let ops = device_ops_from_trace(t, skip, fuzzing::MAX_DEVICE_OPS);
        assert!(!ops.is_empty(), "no accesses at {skip}");
        seeds.push(ops);
    }
    // Issue 14's copy-engine bomb, through registers: a launch with LINE_LENGTH_IN 0 and
    // LINE_COUNT 0xffffffff is only reachable with a channel set up, which the trace seeds
    // carry; a short hand seed keeps the fault-buffer and access-engine registers in reach.
    let mut hand = Vec::new();
    for (off, v) in [
        (0x100cbcu32, 0x8000_0001u32),
        (0xe2a00, 0x10_0001),
        (0xe2a04, 0),
        (0x2270, 0x820),
        (0x2274, 1 << 20 | 2),
    ] {
        hand.extend_from_slice(&device_op(OpSpace::Bar(0), true, 4, off, v));
        hand.extend_from_slice(&device_op(OpSpace::Bar(0), false, 4, off, 0));
    }
    hand.extend_from_slice(&device_op(OpSpace::Ram, true, 8, 0x1000, 0x2007));
    hand.extend_from_slice(&device_op(OpSpace::Reset, true, 4, 0, 0));
    seeds.push(hand);
    seeds.extend(regressions("device_accesses"));
    seeds
}

fn header(bar1: u64) -> TraceHeader {
    TraceHeader {
        emulator_version: "fuzz-seed".into(),
        bar1_size: bar1,
        note: String::new(),
        inject: "none".into(),
        dma_write_data: false,
    }
}

/// The first `n` records of a trace, encoded as one chunk's payload.
fn payload(t: &[u8], n: usize) -> (Vec<u8>, u32) {
    let mut st = State::new();
    let mut out = Vec::new();
    let mut count = 0;
    for r in TraceReader::new(t).unwrap().take(n) {
        encode(&mut st, &r.unwrap(), &mut out).unwrap();
        count += 1;
    }
    (out, count)
}

fn trace_file_seeds() -> Vec<Vec<u8>> {
    let smoke = trace("smoke.gptrace");
    let mut seeds = vec![smoke.clone(), trace("probe.gptrace"), trace("svm.gptrace")];
    // A current-format file (flags with the end record) and the same file cut off.
    let (p, n) = payload(&smoke, 179);
    let whole = wrap_chunk(&p, n);
    seeds.push(whole[..whole.len() - 16].to_vec());
    seeds.push(whole);
    // Headers issue 14 found panicking.
    for bar1 in [0u64, 3, 4095, 12345, u64::MAX] {
        let mut out = Vec::new();
        drop(TraceWriter::new(&mut out, &header(bar1)).unwrap());
        seeds.push(out);
    }
    seeds.extend(regressions("trace_file"));
    seeds
}

fn trace_records_seeds() -> Vec<Vec<u8>> {
    let mut seeds = Vec::new();
    for (t, n) in [
        ("smoke.gptrace", 179),
        ("probe.gptrace", 2000),
        ("svm.gptrace", 2000),
    ] {
        let (p, count) = payload(&trace(t), n);
        seeds.push([(count as u16).to_le_bytes().to_vec(), p].concat());
    }
    seeds.extend(regressions("trace_records"));
    seeds
}

fn decoder_seeds() -> Vec<Vec<u8>> {
    let mut seeds: Vec<Vec<u8>> = [
        "0x0000000123456009",
        "0x20002\x000x1230001",
        "0x0x1234",
        "00000000000000000000000000000000000000000000000000000000000000ff",
        "0x0x00000000000000000000000000000000000000000000000000000000000000ff",
        "\x1b[31mred\x07",
        "1_2_3",
        "",
    ]
    .iter()
    .map(|s| s.as_bytes().to_vec())
    .collect();
    seeds.push((0..=255u8).collect());
    seeds.extend(regressions("decoders"));
    seeds
}

fn regressions(target: &str) -> Vec<Vec<u8>> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fuzz-regressions")
        .join(target);
    let Ok(rd) = std::fs::read_dir(&dir) else {
        return Vec::new();
    };
    let mut files: Vec<PathBuf> = rd.map(|e| e.unwrap().path()).collect();
    files.sort();
    files.iter().map(|p| std::fs::read(p).unwrap()).collect()
}

/// xorshift64*: deterministic, so a failing mutant is found again by its number.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }
    fn below(&mut self, n: usize) -> usize {
        (self.next() % n.max(1) as u64) as usize
    }
}

const INTERESTING: [u32; 10] = [
    0,
    1,
    0x7f,
    0x80,
    0xff,
    0xffff,
    0x8000_0000,
    0xffff_ffff,
    0x1000,
    0x0010_0000,
];

/// One to four edits of `seed`: bit flips, random and interesting values, inserts, deletes,
/// duplicated ranges, splices from `other`.
fn mutate(rng: &mut Rng, seed: &[u8], other: &[u8]) -> Vec<u8> {
    let mut v = seed.to_vec();
    for _ in 0..1 + rng.below(4) {
        let len = v.len();
        match rng.below(7) {
            0 if len > 0 => {
                let i = rng.below(len);
                v[i] ^= 1 << rng.below(8);
            }
            1 if len > 0 => {
                let i = rng.below(len);
                v[i] = rng.next() as u8;
            }
            2 if len >= 4 => {
                let i = rng.below(len - 3);
                let w = INTERESTING[rng.below(INTERESTING.len())];
                v[i..i + 4].copy_from_slice(&w.to_le_bytes());
            }
            3 => {
                let i = rng.below(len + 1);
                let n = 1 + rng.below(16);
                let ins: Vec<u8> = (0..n).map(|_| rng.next() as u8).collect();
                v.splice(i..i, ins);
            }
            4 if len > 0 => {
                let i = rng.below(len);
                let n = 1 + rng.below((len - i).min(64));
                v.drain(i..i + n);
            }
            5 if len > 0 => {
                let i = rng.below(len);
                let n = 1 + rng.below((len - i).min(64));
                let dup = v[i..i + n].to_vec();
                let at = rng.below(len + 1);
                v.splice(at..at, dup);
            }
            _ if !other.is_empty() => {
                let i = rng.below(other.len());
                let n = 1 + rng.below((other.len() - i).min(256));
                let at = rng.below(len + 1);
                v.splice(at..at, other[i..i + n].iter().copied());
            }
            _ => {}
        }
    }
    v
}

fn check(target: &str, what: &str, input: &[u8]) {
    let r = catch_unwind(AssertUnwindSafe(|| fuzzing::run(target, input)));
    if let Err(p) = r {
        let out = repo().join(format!("target/fuzz-failure-{target}.bin"));
        let _ = std::fs::write(&out, input);
        let why = p
            .downcast_ref::<String>()
            .cloned()
            .or_else(|| p.downcast_ref::<&str>().map(|s| s.to_string()))
            .unwrap_or_default();
        panic!(
            "fuzz target {target} failed on {what} ({} bytes, written to {}): {why}",
            input.len(),
            out.display()
        );
    }
}

fn mutants() -> usize {
    std::env::var("GP100EMU_FUZZ_MUTANTS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(200)
}

/// Seeds of at most `max_mutated` bytes are mutated; larger ones (whole traces) run as
/// they are.
fn drive(target: &str, seeds: Vec<Vec<u8>>, max_mutated: usize) {
    if let Ok(dir) = std::env::var("GP100EMU_FUZZ_WRITE_CORPUS") {
        let d = Path::new(&dir).join(target);
        std::fs::create_dir_all(&d).unwrap();
        // Whole traces stay out: under libFuzzer's instrumentation their replay takes
        // longer than its per-input timeout (the stable test runs them).
        for (i, s) in seeds
            .iter()
            .enumerate()
            .filter(|(_, s)| s.len() <= max_mutated)
        {
            std::fs::write(d.join(format!("seed-{i}")), s).unwrap();
        }
        return;
    }
    for (i, s) in seeds.iter().enumerate() {
        check(target, &format!("seed {i}"), s);
    }
    let small: Vec<&Vec<u8>> = seeds.iter().filter(|s| s.len() <= max_mutated).collect();
    assert!(
        !small.is_empty(),
        "{target}: no seed small enough to mutate"
    );
    let mut rng = Rng(0x9e37_79b9_7f4a_7c15 ^ target.len() as u64);
    for m in 0..mutants() {
        let si = rng.below(small.len());
        let other = small[rng.below(small.len())];
        let input = mutate(&mut rng, small[si], other);
        check(target, &format!("mutant {m} of seed {si}"), &input);
    }
}

#[test]
fn vfio_user_stream() {
    drive("vfio_user_stream", vfio_seeds(), 1 << 16);
}

#[test]
fn device_accesses() {
    drive("device_accesses", device_seeds(), 1 << 17);
}

#[test]
fn trace_file() {
    drive("trace_file", trace_file_seeds(), 4096);
}

#[test]
fn trace_records() {
    drive("trace_records", trace_records_seeds(), 1 << 16);
}

#[test]
fn decoders() {
    drive("decoders", decoder_seeds(), 4096);
}
