//! Crafted trace files against the `gp100emu` commands (issue 14): headers that used to
//! panic, millions of model records after one input, a cut-off file, an export that would
//! expand without bound. Each must end with a clear message and the documented exit code.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use emulator::port::Space;
use emulator::trace::event::ModelEvent;
use emulator::trace::{Data, Event, Record, TraceHeader, TraceWriter};

fn dir(name: &str) -> PathBuf {
    let d = std::env::temp_dir().join(format!("gp100emu-crafted-{}-{name}", std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    std::fs::create_dir_all(&d).unwrap();
    d
}

fn header(bar1: u64) -> TraceHeader {
    TraceHeader {
        emulator_version: "crafted".into(),
        bar1_size: bar1,
        note: String::new(),
        inject: "none".into(),
        dma_write_data: false,
    }
}

fn write(path: &Path, h: &TraceHeader, recs: impl IntoIterator<Item = Record>) {
    let f = std::io::BufWriter::new(std::fs::File::create(path).unwrap());
    let mut w = TraceWriter::new(f, h).unwrap();
    for r in recs {
        w.push(&r).unwrap();
    }
    w.finish().unwrap();
}

fn gp100emu(args: &[&str], file: &Path) -> (Output, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_gp100emu"))
        .args(args)
        .arg(file)
        .output()
        .unwrap();
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    (out, text)
}

fn config_read() -> Record {
    Record {
        cycle: 0,
        event: Event::Read {
            space: Space::Config,
            offset: 0,
            data: Data::from_slice(&0x15f8_10deu32.to_le_bytes()),
            ok: true,
        },
    }
}

#[test]
fn bad_bar1_sizes_are_reported_not_panicked_on() {
    let d = dir("bar1");
    for bar1 in [0u64, 3, 4095, 12345, u64::MAX] {
        let p = d.join(format!("{bar1}.gptrace"));
        write(&p, &header(bar1), [config_read()]);
        let (out, text) = gp100emu(&["replay"], &p);
        assert_eq!(out.status.code(), Some(2), "{bar1}: {text}");
        assert!(text.contains("bar1_size"), "{bar1}: {text}");
        assert!(!text.contains("panicked"), "{bar1}: {text}");
    }
}

#[test]
fn millions_of_model_records_after_one_input_are_refused_with_bounded_memory() {
    let d = dir("models");
    // One input, then `n` copies of `model`: refused at the look-ahead bound (records for
    // small records, bytes for DMA reads carrying 4 KiB each), with bounded memory.
    let flood = |name: &str, model: ModelEvent, n: usize| {
        let p = d.join(name);
        let rec = Record {
            cycle: 0,
            event: Event::Model(model),
        };
        let recs = std::iter::once(config_read()).chain(std::iter::repeat_n(rec, n));
        write(&p, &header(256 << 20), recs);
        let (out, text) = gp100emu(&["replay"], &p);
        assert_eq!(out.status.code(), Some(1), "{name}: {text}");
        assert!(
            text.contains("model events after the input at event #0"),
            "{text}"
        );
        p
    };
    let p = flood("flood.gptrace", ModelEvent::Replay, 3_000_000);
    let read = ModelEvent::DmaRead {
        addr: 0x1000,
        len: 4096,
        data: Some(Data::from_slice(&[0x5a; 4096])),
    };
    flood("dma-flood.gptrace", read, 40_000);
    // The export of the same file stops at its output limit and leaves nothing behind.
    let json = d.join("out.json");
    let out = Command::new(env!("CARGO_BIN_EXE_gp100emu"))
        .args(["export", "--perfetto", "--max-output-mib", "1"])
        .arg(&p)
        .arg(&json)
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{err}");
    assert!(
        err.contains("limit of 1 MiB") && err.contains("--max-output-mib"),
        "{err}"
    );
    assert!(!json.exists(), "the partial export was removed");
}

#[test]
fn a_cut_off_trace_fails_replay_and_show_with_exit_1() {
    let d = dir("cut");
    let p = d.join("t.gptrace");
    write(&p, &header(256 << 20), [config_read(), config_read()]);
    let bytes = std::fs::read(&p).unwrap();
    std::fs::write(&p, &bytes[..bytes.len() - 16]).unwrap();
    let (out, text) = gp100emu(&["replay"], &p);
    assert_eq!(out.status.code(), Some(1), "{text}");
    assert!(text.contains("cut off after event 2"), "{text}");
    let (out, text) = gp100emu(&["show"], &p);
    assert_eq!(out.status.code(), Some(1), "{text}");
    assert!(
        text.contains("#1") && text.contains("cut off after event 2"),
        "{text}"
    );
    // A damaged tail (a chunk cut in half) is exit 1 for show too, as for replay.
    std::fs::write(&p, &bytes[..bytes.len() - 30]).unwrap();
    let (out, text) = gp100emu(&["show"], &p);
    assert_eq!(out.status.code(), Some(1), "{text}");
}
