//! Replay speed: events per second through a fresh model, for a synthetic trace shaped like a
//! guest boot (config setup, then BAR0 register reads and writes). Run with
//! `cargo bench -p emulator --bench trace_replay`.

use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use emulator::port::Space;
use emulator::trace::replay::{device_for, read_event, replay, write_event, Recorder};
use emulator::trace::{Record, TraceHeader, TraceReader, TraceWriter};
use emulator::Device;

const EVENTS: usize = 1_000_000;

fn synthetic_trace() -> Vec<u8> {
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
    let mut w = TraceWriter::new(&mut out, &header).unwrap();
    let mut cfg = [0u8; 256];
    let e = read_event(&mut dev, Space::Config, 0, &mut cfg);
    rec.after(&mut dev, e, &mut pending);
    let mut n = 0;
    while n < EVENTS {
        let mut b = [0u8; 4];
        let e = if n % 4 == 3 {
            write_event(&mut dev, Space::Bar(0), 0xff0010, &(n as u32).to_le_bytes())
        } else {
            // boot0, the window ID and an undecoded offset: the mix of a probe.
            let off = [0u64, 0xff0000, 0x123450][n % 3];
            read_event(&mut dev, Space::Bar(0), off, &mut b)
        };
        rec.after(&mut dev, e, &mut pending);
        for r in pending.drain(..) {
            w.push(&r).unwrap();
            n += 1;
        }
    }
    drop(w);
    out
}

fn bench(c: &mut Criterion) {
    // The model logs undecoded offsets once each; keep the logger out of the measurement.
    let bytes = synthetic_trace();
    let mut g = c.benchmark_group("trace");
    g.throughput(Throughput::Elements(EVENTS as u64));
    g.sample_size(10);
    g.bench_function("replay_events", |b| {
        b.iter(|| {
            let r = TraceReader::new(&bytes[..]).unwrap();
            let out = replay(r, Device::new()).unwrap();
            assert!(out.exact());
            out.events
        })
    });
    g.bench_function("decode_only_events", |b| {
        b.iter(|| {
            let mut r = TraceReader::new(&bytes[..]).unwrap();
            let mut k = 0u64;
            while let Some(rec) = r.next_record().unwrap() {
                k = k.wrapping_add(rec.cycle);
            }
            k
        })
    });
    g.finish();
    eprintln!(
        "synthetic trace: {} events, {} bytes ({:.2} bytes/event)",
        EVENTS,
        bytes.len(),
        bytes.len() as f64 / EVENTS as f64
    );
}

criterion_group!(benches, bench);
criterion_main!(benches);
