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
    let dev = device_for(reader.header());
    let t = Instant::now();
    let out = replay(reader, dev).map_err(|source| TraceCmdError::Trace {
        path: path.display().to_string(),
        source,
    })?;
    Ok((out, t.elapsed().as_secs_f64()))
}

/// Compares two files.
pub fn diff_files(a: &Path, b: &Path, context: usize) -> Result<Divergence, TraceCmdError> {
    Ok(first_divergence(open(a)?, open(b)?, context))
}

/// Writes Chrome trace-event JSON for `path` into `out`.
pub fn export_perfetto(
    path: &Path,
    out: &Path,
    with_reads: bool,
) -> Result<(perfetto::ExportStats, Option<TraceError>), TraceCmdError> {
    let reader = open(path)?;
    let f = File::create(out).map_err(|source| TraceCmdError::Io {
        path: out.display().to_string(),
        source,
    })?;
    perfetto::export(reader, BufWriter::new(f), with_reads).map_err(|source| TraceCmdError::Trace {
        path: out.display().to_string(),
        source,
    })
}
