//! Chrome trace-event JSON (the format Perfetto UI and chrome://tracing open) from a trace:
//! interrupts as a counter track, resets and DMA maps as instants, TLB invalidates and fault
//! reports on an "MMU and faults" track, and BAR writes and refused accesses as instants on
//! their own tracks. Timestamps are GPU cycles converted to
//! microseconds at [`crate::trace::perfetto::CYCLES_PER_US`].
//!
//! Format: "Trace Event Format" (Google, docs.google.com/document/d/1CvAClvFfyA5R-PhYUmn5OOQtYMH4h6I0nSsKchNAySU).

use std::io::{Read, Write};

use serde_json::{json, Value};

use super::event::Event;
use super::file::{TraceError, TraceReader};

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

/// Writes the JSON for `reader` to `out`. Reads are left out unless `with_reads` (a boot has
/// hundreds of thousands; they drown the timeline). A damaged tail ends the export with the
/// good prefix written and the error returned in the stats' place.
pub fn export<R: Read, W: Write>(
    mut reader: TraceReader<R>,
    mut out: W,
    with_reads: bool,
) -> Result<(ExportStats, Option<TraceError>), TraceError> {
    let mut stats = ExportStats::default();
    let pid = 1;
    let meta = |tid: u32, name: &str| json!({"ph": "M", "name": "thread_name", "pid": pid, "tid": tid, "args": {"name": name}});
    let mut events: Vec<Value> = vec![
        json!({"ph": "M", "name": "process_name", "pid": pid, "args": {"name": "gp100emu"}}),
        meta(1, "interrupt"),
        meta(2, "BAR writes"),
        meta(3, "BAR reads"),
        meta(4, "config space"),
        meta(5, "DMA and reset"),
        meta(6, "refused accesses"),
        meta(7, "MMU and faults"),
    ];
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
        stats.records += 1;
        let ts = r.cycle as f64 / CYCLES_PER_US;
        let instant = |tid: u32, name: String, args: Value| json!({"ph": "i", "s": "t", "name": name, "pid": pid, "tid": tid, "ts": ts, "args": args});
        let ev = match &r.event {
            Event::Irq { asserted } => Some(json!({
                "ph": "C", "name": "irq", "pid": pid, "tid": 1, "ts": ts,
                "args": {"level": if *asserted { 1 } else { 0 }}
            })),
            Event::Write {
                space,
                offset,
                data,
                ok,
            } => {
                let tid = if !ok {
                    6
                } else if matches!(space, crate::port::Space::Config) {
                    4
                } else {
                    2
                };
                Some(instant(
                    tid,
                    format!("{space}+{offset:#x} <- {data}"),
                    json!({"cycle": r.cycle}),
                ))
            }
            Event::Read {
                space,
                offset,
                data,
                ok,
            } if with_reads || !ok => Some(instant(
                if *ok { 3 } else { 6 },
                format!("{space}+{offset:#x} -> {data}"),
                json!({"cycle": r.cycle}),
            )),
            Event::Read { .. } => None,
            Event::DmaMap { .. } | Event::DmaUnmap { .. } | Event::Reset => {
                Some(instant(5, r.event.to_string(), json!({"cycle": r.cycle})))
            }
            Event::Model(m) => Some(instant(7, m.to_string(), json!({"cycle": r.cycle}))),
        };
        if let Some(e) = ev {
            events.push(e);
            stats.events += 1;
        }
    }
    let doc = json!({"traceEvents": events, "displayTimeUnit": "ns"});
    serde_json::to_writer(&mut out, &doc).map_err(|e| TraceError::Io(e.into()))?;
    out.flush()?;
    Ok((stats, damaged))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::port::Space;
    use crate::trace::event::{Data, Record};
    use crate::trace::file::{TraceHeader, TraceWriter};

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
}
