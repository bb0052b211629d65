//! `gp100emu replay`, `diff` and `export`: trace files on disk, through the emulator's
//! [`emulator::trace`] module.

use std::fs::File;
use std::io::{BufReader, BufWriter};
use std::path::Path;
use std::time::Instant;

use emulator::trace::diff::{first_divergence, Divergence};
use emulator::trace::replay::{device_for, replay, ReplayOutcome};
use emulator::trace::{perfetto, TraceError, TraceHeader, TraceReader, TraceWriter};

/// Errors opening or writing trace files (exit code 2).
#[derive(Debug, thiserror::Error)]
pub enum TraceCmdError {
    /// A file could not be opened or created.
    #[error("{path}: {source}")]
    Io {
        /// The file.
        path: String,
        /// Why.
        #[source]
        source: std::io::Error,
    },
    /// The export reached its output-size limit; the partial output was removed.
    #[error("{path}: the export reached its limit of {limit_mib} MiB and was removed (a crafted or very long trace); raise the limit with --max-output-mib")]
    OutputLimit {
        /// The output file.
        path: String,
        /// The limit.
        limit_mib: u64,
    },
    /// The trace itself is unreadable.
    #[error("{path}: {source}")]
    Trace {
        /// The file.
        path: String,
        /// Why.
        #[source]
        source: TraceError,
    },
}

/// Opens a trace for reading.
pub fn open(path: &Path) -> Result<TraceReader<BufReader<File>>, TraceCmdError> {
    let f = File::open(path).map_err(|source| TraceCmdError::Io {
        path: path.display().to_string(),
        source,
    })?;
    TraceReader::new(BufReader::with_capacity(1 << 20, f)).map_err(|source| TraceCmdError::Trace {
        path: path.display().to_string(),
        source,
    })
}

/// Creates a trace for writing.
pub fn create(
    path: &Path,
    header: &TraceHeader,
) -> Result<TraceWriter<BufWriter<File>>, TraceCmdError> {
    let f = File::create(path).map_err(|source| TraceCmdError::Io {
        path: path.display().to_string(),
        source,
    })?;
    TraceWriter::new(BufWriter::new(f), header).map_err(|source| TraceCmdError::Trace {
        path: path.display().to_string(),
        source,
    })
}

/// Replays a file and prints the outcome; returns the outcome and the wall time in seconds.
pub fn replay_file(path: &Path) -> Result<(ReplayOutcome, f64), TraceCmdError> {
    let reader = open(path)?;
    let dev = device_for(reader.header()).map_err(|source| TraceCmdError::Trace {
        path: path.display().to_string(),
        source,
    })?;
    let t = Instant::now();
    let out = replay(reader, dev).map_err(|source| TraceCmdError::Trace {
        path: path.display().to_string(),
        source,
    })?;
    Ok((out, t.elapsed().as_secs_f64()))
}

/// Prints records of `path` (`@cycle event`): `skip` first, at most `count`, only those
/// containing `grep`, only the last `tail` of them. A damaged file prints its good prefix
/// and returns the damage (exit 1, as replay and export); reading stops once `count`
/// records are shown.
pub fn show(
    path: &Path,
    skip: u64,
    count: u64,
    grep: Option<&str>,
    tail: Option<usize>,
) -> Result<Option<TraceError>, TraceCmdError> {
    use std::io::Write;
    let mut r = open(path)?;
    let mut out = std::io::BufWriter::new(std::io::stdout().lock());
    let mut last: std::collections::VecDeque<String> = std::collections::VecDeque::new();
    let (mut index, mut shown) = (0u64, 0u64);
    let result = loop {
        let rec = match r.next_record() {
            Ok(Some(rec)) => rec,
            Ok(None) => break Ok(()),
            Err(e) => break Err(e),
        };
        index += 1;
        if index <= skip {
            continue;
        }
        let line = format!("#{:<9} {rec}", index - 1);
        if grep.is_some_and(|g| !line.contains(g)) {
            continue;
        }
        shown += 1;
        if shown > count {
            // The window is full: stop reading (damage past it is not looked for).
            break Ok(());
        }
        match tail {
            Some(n) => {
                last.push_back(line);
                if last.len() > n {
                    last.pop_front();
                }
            }
            None => {
                let _ = writeln!(out, "{line}");
            }
        }
    };
    for l in last {
        let _ = writeln!(out, "{l}");
    }
    let _ = out.flush();
    Ok(result.err())
}

/// Compares two files.
pub fn diff_files(a: &Path, b: &Path, context: usize) -> Result<Divergence, TraceCmdError> {
    Ok(first_divergence(open(a)?, open(b)?, context))
}

/// Default of `gp100emu export --max-output-mib`: far above what a recorded run exports (the
/// svm trace makes a few MiB), far below what a crafted trace could make.
pub const DEFAULT_EXPORT_LIMIT_MIB: u64 = 1024;

/// A writer that refuses to write past `left` bytes.
struct Limited<W> {
    w: W,
    left: u64,
    hit: bool,
}

impl<W: std::io::Write> std::io::Write for Limited<W> {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        if buf.len() as u64 > self.left {
            self.hit = true;
            return Err(std::io::Error::other("output size limit reached"));
        }
        let n = self.w.write(buf)?;
        self.left -= n as u64;
        Ok(n)
    }

    fn flush(&mut self) -> std::io::Result<()> {
        self.w.flush()
    }
}

/// Writes Chrome trace-event JSON for `path` into `out`, at most `limit_mib` MiB of it (past
/// that the output is removed and the error says how to raise the limit).
pub fn export_perfetto(
    path: &Path,
    out: &Path,
    with_reads: bool,
    limit_mib: u64,
) -> Result<(perfetto::ExportStats, Option<TraceError>), TraceCmdError> {
    let reader = open(path)?;
    let f = File::create(out).map_err(|source| TraceCmdError::Io {
        path: out.display().to_string(),
        source,
    })?;
    let mut w = Limited {
        w: BufWriter::new(f),
        left: limit_mib.saturating_mul(1 << 20),
        hit: false,
    };
    let r = perfetto::export(reader, &mut w, with_reads);
    if w.hit {
        drop(w);
        let _ = std::fs::remove_file(out);
        return Err(TraceCmdError::OutputLimit {
            path: out.display().to_string(),
            limit_mib,
        });
    }
    r.map_err(|source| TraceCmdError::Trace {
        path: out.display().to_string(),
        source,
    })
}

/// What [`fault_costs`] counted.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct FaultCosts {
    /// Replayable fault entries the model wrote.
    pub faults: u64,
    /// Interrupt assertions after the first fault.
    pub irqs: u64,
    /// BAR accesses (reads, writes) after the first fault, by what decodes them: the BAR0
    /// unit's name from the device's BAR0 map ("bar0:undecoded" for none), or "barN".
    pub by_part: std::collections::BTreeMap<String, (u64, u64)>,
}

impl FaultCosts {
    /// The counts as `name=value` lines (per fault, and totals).
    pub fn lines(&self) -> Vec<String> {
        let per = |n: u64| n as f64 / self.faults.max(1) as f64;
        let (r, w) = self
            .by_part
            .values()
            .fold((0, 0), |(r, w), &(a, b)| (r + a, w + b));
        let mut out = vec![
            format!("faults={}", self.faults),
            format!("bar_accesses_per_fault={:.1}", per(r + w)),
            format!("bar_reads_per_fault={:.1}", per(r)),
            format!("bar_writes_per_fault={:.1}", per(w)),
            format!("irqs_per_fault={:.2}", per(self.irqs)),
        ];
        let mut parts: Vec<_> = self.by_part.iter().collect();
        parts.sort_by_key(|(_, &(r, w))| std::cmp::Reverse(r + w));
        for (part, &(r, w)) in parts {
            out.push(format!("reads_per_fault{{part={part}}}={:.2}", per(r)));
            out.push(format!("writes_per_fault{{part={part}}}={:.2}", per(w)));
        }
        out
    }
}

/// Counts the BAR accesses of a trace from its first replayable fault on, by the unit that
/// decodes them, per fault written: where a fault's MMIO round trips go (the guest's fault
/// path, its interrupt handling, the test driving the access engine). A damaged file counts
/// its good prefix and returns the damage too.
pub fn fault_costs(path: &Path) -> Result<(FaultCosts, Option<TraceError>), TraceCmdError> {
    use emulator::hw::event::ModelEvent;
    use emulator::port::Space;
    use emulator::trace::Event;
    let mut r = open(path)?;
    let dev = emulator::device::Device::new();
    let map = dev.bar0_map();
    let mut c = FaultCosts::default();
    let result = loop {
        let rec = match r.next_record() {
            Ok(Some(rec)) => rec,
            Ok(None) => break None,
            Err(e) => break Some(e),
        };
        let (space, offset, write) = match &rec.event {
            Event::Model(ModelEvent::FaultWritten { .. }) => {
                c.faults += 1;
                continue;
            }
            Event::Irq { asserted: true } if c.faults > 0 => {
                c.irqs += 1;
                continue;
            }
            Event::Read { space, offset, .. } => (*space, *offset, false),
            Event::Write { space, offset, .. } => (*space, *offset, true),
            _ => continue,
        };
        if c.faults == 0 {
            continue;
        }
        let part = match space {
            Space::Bar(0) => match u32::try_from(offset).ok().and_then(|o| map.row(o)) {
                Some(row) => format!("bar0:{}", row.name),
                None => "bar0:undecoded".into(),
            },
            other => other.to_string().to_lowercase(),
        };
        let e = c.by_part.entry(part).or_default();
        if write {
            e.1 += 1;
        } else {
            e.0 += 1;
        }
    };
    Ok((c, result))
}
