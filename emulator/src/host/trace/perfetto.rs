//! Chrome trace-event JSON (the format Perfetto UI and chrome://tracing open) from a trace:
//! interrupts as a counter track; page-table walks as slices as long as the cycles they cost;
//! TLB invalidates, fault reports, replays, cancels and checker findings on an "MMU and
//! faults" track; host and copy-engine work; DMA writes (and reads, with `with_reads`); BAR
//! writes, with runs of writes to consecutive offsets folded into one slice (nouveau clears
//! instance memory one byte at a time: two million writes become a handful of slices);
//! refused accesses, resets and DMA maps as instants. Fault batches are slices on their own
//! track, from the first entry the GPU writes until the REPLAY (or CANCEL) that ends them,
//! with a "faults pending" counter beside them; every walk also sets a "walk cycles" counter,
//! so the cost levels of the translations (a cached-directory walk, a cold one, one over
//! PCIe) show as plateaus. [`curve`] turns a TLB curve (`gp100emu bench --tlb-curve`) into
//! counter tracks, model beside published. Timestamps are GPU cycles converted to
//! microseconds at [`crate::host::trace::perfetto::CYCLES_PER_US`]. Events are written as they are
//! read, so a long trace does not have to fit in memory.
//!
//! Format: "Trace Event Format" (Google, docs.google.com/document/d/1CvAClvFfyA5R-PhYUmn5OOQtYMH4h6I0nSsKchNAySU).

use std::io::{Read, Write};

use serde_json::{json, Value};

use super::event::{Event, ModelEvent};
use super::file::{TraceError, TraceReader};
use crate::host::port::Space;

/// GPU cycles per microsecond used for the timeline: the Tesla P100 PCIe base clock,
/// 1126 MHz (NVIDIA Tesla P100 PCIe datasheet). Timeline only; the model counts cycles.
pub const CYCLES_PER_US: f64 = 1126.0;

/// What went into the export.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct ExportStats {
    /// Trace records read.
    pub records: u64,
    /// Timeline events written.
    pub events: u64,
}

const PID: u32 = 1;
const TID_IRQ: u32 = 1;
const TID_BAR_WRITES: u32 = 2;
const TID_BAR_READS: u32 = 3;
const TID_CONFIG: u32 = 4;
const TID_DMA_MAP_RESET: u32 = 5;
const TID_REFUSED: u32 = 6;
const TID_MMU: u32 = 7;
const TID_WALKS: u32 = 8;
const TID_DMA: u32 = 9;
const TID_HOST: u32 = 10;
const TID_BATCHES: u32 = 11;

const TRACKS: [(u32, &str); 11] = [
    (TID_IRQ, "interrupt"),
    (TID_BAR_WRITES, "BAR writes"),
    (TID_BAR_READS, "BAR reads"),
    (TID_CONFIG, "config space"),
    (TID_DMA_MAP_RESET, "DMA maps and reset"),
    (TID_REFUSED, "refused accesses"),
    (TID_MMU, "MMU and faults"),
    (TID_WALKS, "page-table walks"),
    (TID_DMA, "DMA"),
    (TID_HOST, "host and copy engine"),
    (TID_BATCHES, "fault batches"),
];

/// Fault entries written since the last REPLAY or CANCEL: one batch as the driver sees it.
struct OpenBatch {
    start: u64,
    last: u64,
    entries: u64,
}

fn us(cycle: u64) -> f64 {
    cycle as f64 / CYCLES_PER_US
}

/// A run of BAR writes to consecutive offsets, folded into one slice.
struct Run {
    space: Space,
    first: u64,
    next: u64,
    writes: u64,
    start: u64,
    end: u64,
    name: String,
}

/// Streams events into the JSON array.
struct Out<W: Write> {
    w: W,
    stats: ExportStats,
}

impl<W: Write> Out<W> {
    /// Writes one array element (`sep` before it), not counted as a timeline event.
    fn raw(&mut self, sep: &[u8], v: &Value) -> Result<(), TraceError> {
        self.w.write_all(sep)?;
        serde_json::to_writer(&mut self.w, v).map_err(|e| TraceError::Io(e.into()))
    }

    fn put(&mut self, v: &Value) -> Result<(), TraceError> {
        self.raw(b",\n", v)?;
        self.stats.events += 1;
        Ok(())
    }

    fn instant(&mut self, tid: u32, cycle: u64, name: String) -> Result<(), TraceError> {
        self.put(
            &json!({"ph": "i", "s": "t", "name": name, "pid": PID, "tid": tid,
            "ts": us(cycle), "args": {"cycle": cycle}}),
        )
    }

    fn slice(&mut self, tid: u32, start: u64, cycles: u64, name: String) -> Result<(), TraceError> {
        self.put(&json!({"ph": "X", "name": name, "pid": PID, "tid": tid,
            "ts": us(start), "dur": us(cycles), "args": {"cycle": start, "cycles": cycles}}))
    }

    fn counter(&mut self, cycle: u64, name: &str, value: f64) -> Result<(), TraceError> {
        self.put(
            &json!({"ph": "C", "name": name, "pid": PID, "ts": us(cycle),
            "args": {"value": value}}),
        )
    }

    /// Ends a batch at `end` (the replay, or its last entry when nothing replayed it).
    fn batch(&mut self, b: OpenBatch, end: u64, how: &str) -> Result<(), TraceError> {
        let name = format!("fault batch: {} entries, {how}", b.entries);
        self.slice(TID_BATCHES, b.start, end.max(b.last) - b.start, name)
    }

    fn run(&mut self, r: Run) -> Result<(), TraceError> {
        if r.writes == 1 {
            return self.instant(TID_BAR_WRITES, r.start, r.name);
        }
        let name = format!(
            "{}+{:#x}..{:#x}: {} writes",
            r.space, r.first, r.next, r.writes
        );
        self.slice(TID_BAR_WRITES, r.start, r.end - r.start, name)
    }
}

/// Writes the JSON for `reader` to `out`. BAR and DMA reads are left out unless `with_reads`
/// (a boot has hundreds of thousands; they drown the timeline). A damaged tail ends the export
/// with the good prefix written and the error returned in the stats' place.
pub fn export<R: Read, W: Write>(
    mut reader: TraceReader<R>,
    out: W,
    with_reads: bool,
) -> Result<(ExportStats, Option<TraceError>), TraceError> {
    let mut o = Out {
        w: out,
        stats: ExportStats::default(),
    };
    o.raw(
        b"{\"displayTimeUnit\": \"ns\", \"traceEvents\": [\n",
        &json!({"ph": "M", "name": "process_name", "pid": PID, "args": {"name": "gp100emu"}}),
    )?;
    for (tid, name) in TRACKS {
        o.raw(
            b",\n",
            &json!({"ph": "M", "name": "thread_name", "pid": PID, "tid": tid, "args": {"name": name}}),
        )?;
    }
    let mut run: Option<Run> = None;
    let mut batch: Option<OpenBatch> = None;
    let mut records = 0u64;
    let mut damaged = None;
    loop {
        let r = match reader.next_record() {
            Ok(Some(r)) => r,
            Ok(None) => break,
            Err(e) => {
                damaged = Some(e);
                break;
            }
        };
        records += 1;
        let c = r.cycle;
        match &r.event {
            Event::Irq { asserted } => o.put(&json!({
                "ph": "C", "name": "irq", "pid": PID, "tid": TID_IRQ, "ts": us(c),
                "args": {"level": if *asserted { 1 } else { 0 }}
            }))?,
            Event::Write {
                space,
                offset,
                data,
                ok,
            } if *ok && !matches!(space, Space::Config) => {
                let len = data.len() as u64;
                match &mut run {
                    Some(x) if x.space == *space && x.next == *offset => {
                        x.next = offset.wrapping_add(len);
                        x.writes += 1;
                        x.end = c;
                    }
                    _ => {
                        if let Some(x) = run.take() {
                            o.run(x)?;
                        }
                        run = Some(Run {
                            space: *space,
                            first: *offset,
                            next: offset.wrapping_add(len),
                            writes: 1,
                            start: c,
                            end: c,
                            name: format!("{space}+{offset:#x} <- {data}"),
                        });
                    }
                }
            }
            Event::Write {
                space,
                offset,
                data,
                ok,
            } => o.instant(
                if !ok { TID_REFUSED } else { TID_CONFIG },
                c,
                format!("{space}+{offset:#x} <- {data}"),
            )?,
            Event::Read {
                space,
                offset,
                data,
                ok,
            } if with_reads || !ok => o.instant(
                if *ok { TID_BAR_READS } else { TID_REFUSED },
                c,
                format!("{space}+{offset:#x} -> {data}"),
            )?,
            Event::Read { .. } => {}
            Event::DmaMap { .. } | Event::DmaUnmap { .. } | Event::Reset => {
                o.instant(TID_DMA_MAP_RESET, c, r.event.to_string())?
            }
            Event::Model(m) => match m {
                ModelEvent::Walk { cycles, .. } => {
                    o.slice(TID_WALKS, c, u64::from(*cycles), m.to_string())?;
                    o.counter(c, "walk cycles", f64::from(*cycles))?;
                }
                ModelEvent::FaultWritten { .. } => {
                    o.instant(TID_MMU, c, m.to_string())?;
                    let b = batch.get_or_insert(OpenBatch {
                        start: c,
                        last: c,
                        entries: 0,
                    });
                    b.entries += 1;
                    b.last = c;
                    let pending = b.entries as f64;
                    o.counter(c, "faults pending", pending)?;
                }
                ModelEvent::Replay | ModelEvent::Cancel => {
                    o.instant(TID_MMU, c, m.to_string())?;
                    if let Some(b) = batch.take() {
                        let how = if matches!(m, ModelEvent::Replay) {
                            "replayed"
                        } else {
                            "cancelled"
                        };
                        o.batch(b, c, how)?;
                        o.counter(c, "faults pending", 0.0)?;
                    }
                }
                ModelEvent::DmaRead { .. } if !with_reads => {}
                ModelEvent::DmaRead { .. } | ModelEvent::DmaWrite { .. } => {
                    o.instant(TID_DMA, c, m.to_string())?
                }
                ModelEvent::HostRan { .. }
                | ModelEvent::RunlistSubmitted { .. }
                | ModelEvent::RunlistRejected { .. }
                | ModelEvent::RunlistRefused { .. }
                | ModelEvent::ChannelError { .. }
                | ModelEvent::ChannelStopped { .. } => o.instant(TID_HOST, c, m.to_string())?,
                _ => o.instant(TID_MMU, c, m.to_string())?,
            },
        }
    }
    if let Some(x) = run.take() {
        o.run(x)?;
    }
    if let Some(b) = batch.take() {
        let end = b.last;
        o.batch(b, end, "not replayed by the end")?;
    }
    o.w.write_all(b"\n]}\n")?;
    o.w.flush()?;
    o.stats.records = records;
    Ok((o.stats, damaged))
}

/// One point of a TLB curve for [`curve`].
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct CurveSample {
    /// Footprint chased, MiB.
    pub footprint_mib: u64,
    /// Stride, MiB.
    pub stride_mib: u64,
    /// The model's cycles per load.
    pub cycles: f64,
    /// The published cycles there, if any.
    pub published: Option<u64>,
}

/// A TLB curve as Perfetto counter tracks: per stride, "model" and "published" cycles per
/// load. The time axis is the footprint: 1 MiB per microsecond (so the knees sit at their
/// footprints: 32 MiB shows at 32 us, 2 GiB at 2048 us). Returns the events written.
pub fn curve<W: Write>(points: &[CurveSample], out: W) -> Result<u64, TraceError> {
    let mut o = Out {
        w: out,
        stats: ExportStats::default(),
    };
    o.raw(
        b"{\"displayTimeUnit\": \"ns\", \"traceEvents\": [\n",
        &json!({"ph": "M", "name": "process_name", "pid": PID,
            "args": {"name": "gp100emu TLB curve (x: footprint, 1 MiB = 1 us; y: cycles per load)"}}),
    )?;
    for p in points {
        let ts = p.footprint_mib as f64;
        let model = format!("stride {} MiB: model", p.stride_mib);
        o.put(&json!({"ph": "C", "name": model, "pid": PID, "ts": ts,
            "args": {"cycles": p.cycles}}))?;
        if let Some(c) = p.published {
            let name = format!("stride {} MiB: published", p.stride_mib);
            o.put(&json!({"ph": "C", "name": name, "pid": PID, "ts": ts,
                "args": {"cycles": c}}))?;
        }
    }
    o.w.write_all(b"\n]}\n")?;
    o.w.flush()?;
    Ok(o.stats.events)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::host::port::Space;
    use crate::host::trace::event::{Data, ModelEvent, Record};
    use crate::host::trace::file::{TraceHeader, TraceWriter};

    #[test]
    fn timeline_has_interrupts_writes_and_metadata() {
        let h = TraceHeader {
            emulator_version: "t".into(),
            bar1_size: 1 << 28,
            note: String::new(),
            inject: "none".into(),
            dma_write_data: false,
        };
        let mut bytes = Vec::new();
        let mut w = TraceWriter::new(&mut bytes, &h).unwrap();
        let recs = [
            Event::Write {
                space: Space::Bar(0),
                offset: 0x140,
                data: Data::from_slice(&1u32.to_le_bytes()),
                ok: true,
            },
            Event::Irq { asserted: true },
            Event::Read {
                space: Space::Bar(0),
                offset: 0x100,
                data: Data::from_slice(&0x200u32.to_le_bytes()),
                ok: true,
            },
            Event::Irq { asserted: false },
            Event::Reset,
        ];
        for (i, e) in recs.into_iter().enumerate() {
            w.push(&Record {
                cycle: 1126 * (i as u64 + 1),
                event: e,
            })
            .unwrap();
        }
        drop(w);
        let mut json_out = Vec::new();
        let (stats, damaged) =
            export(TraceReader::new(&bytes[..]).unwrap(), &mut json_out, false).unwrap();
        assert!(damaged.is_none());
        assert_eq!(stats.records, 5);
        assert_eq!(stats.events, 4, "the read is left out by default");
        let v: Value = serde_json::from_slice(&json_out).unwrap();
        let evs = v["traceEvents"].as_array().unwrap();
        let irq: Vec<&Value> = evs.iter().filter(|e| e["name"] == "irq").collect();
        assert_eq!(irq.len(), 2);
        assert_eq!(irq[0]["args"]["level"], 1);
        assert_eq!(irq[0]["ts"], 2.0);
        assert!(evs.iter().any(|e| e["name"] == "BAR0+0x140 <- 0x00000001"));
        assert!(evs
            .iter()
            .any(|e| e["ph"] == "M" && e["args"]["name"] == "gp100emu"));
    }

    #[test]
    fn write_runs_fold_walks_are_slices_and_dma_reads_wait_for_with_reads() {
        let h = TraceHeader {
            emulator_version: "t".into(),
            bar1_size: 1 << 28,
            note: String::new(),
            inject: "none".into(),
            dma_write_data: false,
        };
        let mut recs: Vec<Event> = (0..1000u64)
            .map(|i| Event::Write {
                space: Space::Bar(3),
                offset: 0x1000 + i,
                data: Data::from_slice(&[0]),
                ok: true,
            })
            .collect();
        recs.insert(
            500,
            Event::Model(ModelEvent::Walk {
                va: 0x1000,
                pa: Some(0xff_1000),
                fault_type: None,
                reads: 6,
                sys_reads: 0,
                cycles: 1126,
            }),
        );
        recs.push(Event::Model(ModelEvent::DmaRead {
            addr: 0x40,
            len: 4,
            data: Some(Data::from_slice(&[1, 2, 3, 4])),
        }));
        // A write elsewhere ends the run.
        recs.push(Event::Write {
            space: Space::Bar(0),
            offset: 0x140,
            data: Data::from_slice(&1u32.to_le_bytes()),
            ok: true,
        });
        let mut bytes = Vec::new();
        let mut w = TraceWriter::new(&mut bytes, &h).unwrap();
        for (i, e) in recs.into_iter().enumerate() {
            w.push(&Record {
                cycle: 36 * i as u64,
                event: e,
            })
            .unwrap();
        }
        drop(w);
        for with_reads in [false, true] {
            let mut json_out = Vec::new();
            let (stats, _) = export(
                TraceReader::new(&bytes[..]).unwrap(),
                &mut json_out,
                with_reads,
            )
            .unwrap();
            let v: Value = serde_json::from_slice(&json_out).unwrap();
            let evs = v["traceEvents"].as_array().unwrap();
            let runs: Vec<&Value> = evs
                .iter()
                .filter(|e| e["ph"] == "X" && e["tid"] == TID_BAR_WRITES)
                .collect();
            assert_eq!(runs.len(), 1, "{runs:?}");
            assert_eq!(runs[0]["name"], "BAR3+0x1000..0x13e8: 1000 writes");
            assert_eq!(runs[0]["args"]["cycles"], 36 * 1000);
            let walk = evs
                .iter()
                .find(|e| e["tid"] == TID_WALKS && e["ph"] != "M")
                .unwrap();
            assert_eq!(walk["ph"], "X");
            assert_eq!(walk["dur"], 1.0);
            let dma = evs
                .iter()
                .filter(|e| e["tid"] == TID_DMA && e["ph"] != "M")
                .count();
            assert_eq!(dma, usize::from(with_reads));
            // run + walk and its counter + (DMA read) + the BAR0 write.
            assert_eq!(stats.events, 4 + u64::from(with_reads));
        }
    }

    #[test]
    fn fault_batches_are_slices_from_first_entry_to_replay_with_a_pending_counter() {
        let h = TraceHeader {
            emulator_version: "t".into(),
            bar1_size: 1 << 28,
            note: String::new(),
            inject: "none".into(),
            dma_write_data: false,
        };
        let fault = |index: u32| {
            Event::Model(ModelEvent::FaultWritten {
                index,
                addr: 0x4000_0000 + u64::from(index) * 0x1000,
                fault_type: 2,
                access: 0,
            })
        };
        // Batch 1: three entries at cycles 1126, 2252, 3378, replayed at 11260; batch 2: one
        // entry at 12386 that nothing replays.
        let recs = [
            (1126, fault(0)),
            (2252, fault(1)),
            (3378, fault(2)),
            (11260, Event::Model(ModelEvent::Replay)),
            (12386, fault(3)),
        ];
        let mut bytes = Vec::new();
        let mut w = TraceWriter::new(&mut bytes, &h).unwrap();
        for (cycle, event) in recs {
            w.push(&Record { cycle, event }).unwrap();
        }
        drop(w);
        let mut json_out = Vec::new();
        export(TraceReader::new(&bytes[..]).unwrap(), &mut json_out, false).unwrap();
        let v: Value = serde_json::from_slice(&json_out).unwrap();
        let evs = v["traceEvents"].as_array().unwrap();
        let batches: Vec<&Value> = evs
            .iter()
            .filter(|e| e["tid"] == TID_BATCHES && e["ph"] == "X")
            .collect();
        assert_eq!(batches.len(), 2, "{batches:?}");
        assert_eq!(batches[0]["name"], "fault batch: 3 entries, replayed");
        assert_eq!(batches[0]["ts"], 1.0);
        assert_eq!(batches[0]["dur"], 9.0);
        assert_eq!(
            batches[1]["name"],
            "fault batch: 1 entries, not replayed by the end"
        );
        let pending: Vec<f64> = evs
            .iter()
            .filter(|e| e["name"] == "faults pending")
            .map(|e| e["args"]["value"].as_f64().unwrap())
            .collect();
        assert_eq!(pending, [1.0, 2.0, 3.0, 0.0, 1.0]);
    }

    #[test]
    fn a_curve_becomes_model_and_published_counters_on_a_footprint_axis() {
        let pts = [
            CurveSample {
                footprint_mib: 32,
                stride_mib: 2,
                cycles: 293.0,
                published: Some(293),
            },
            CurveSample {
                footprint_mib: 2080,
                stride_mib: 32,
                cycles: 330.5,
                published: None,
            },
        ];
        let mut out = Vec::new();
        assert_eq!(curve(&pts, &mut out).unwrap(), 3);
        let v: Value = serde_json::from_slice(&out).unwrap();
        let evs = v["traceEvents"].as_array().unwrap();
        let model: Vec<&Value> = evs
            .iter()
            .filter(|e| e["name"] == "stride 32 MiB: model")
            .collect();
        assert_eq!(model.len(), 1);
        assert_eq!(model[0]["ts"], 2080.0);
        assert_eq!(model[0]["args"]["cycles"], 330.5);
        assert!(evs
            .iter()
            .any(|e| e["name"] == "stride 2 MiB: published" && e["args"]["cycles"] == 293));
        assert!(!evs.iter().any(|e| e["name"] == "stride 32 MiB: published"));
    }
}
