//! The trace file format.
//!
//! ```text
//! magic      16 bytes  "GP100EMU-TRACE\0\0"
//! version    u16 LE    FORMAT_VERSION
//! flags      u16 LE    FLAG_* bits (0 in files written before the end record existed)
//! hdr_len    u32 LE    length of the header body (at most MAX_HEADER)
//! hdr_crc    u32 LE    CRC-32 (IEEE) of the header body
//! header     postcard-encoded TraceHeader
//! then chunks until the end of the file:
//!   magic    4 bytes   "CHNK"
//!   len      u32 LE    stored payload length (at most MAX_STORED)
//!   raw_len  u32 LE    payload length once decompressed (at most MAX_CHUNK)
//!   count    u32 LE    records in the payload
//!   crc      u32 LE    CRC-32 (IEEE) of the stored payload
//!   payload  one zstd frame holding `count` records, back to back (see [`super::codec`])
//! then, when FLAG_END_RECORD is set, the end record, and nothing after it:
//!   magic    4 bytes   "TEND"
//!   records  u64 LE    records in the file
//!   crc      u32 LE    CRC-32 (IEEE) of magic and records
//! ```
//!
//! Compatibility rule for the end record: the field that was `reserved` (always 0, never
//! read) became `flags`. A file with FLAG_END_RECORD must end with the end record, and one
//! without it is reported cut off ([`TraceError::CutOff`]) after the records it holds; a
//! file with flags 0 (the committed traces/, recorded before) is read as before, without
//! that check. An unknown flag bit is a header error. Older readers of version 3 never read
//! the field and stop at the end record's magic as at a damaged chunk, after every record.
//!
//! The writer emits a chunk every [`RECORDS_PER_CHUNK`] records (and on flush/drop), so a
//! killed process loses at most its last chunk. Each chunk decodes on its own (the record
//! encoding's difference state starts afresh in every chunk). The reader checks each chunk
//! and stops at the first damaged or truncated one with an error that says where, after
//! yielding every record of the good chunks before it.

use std::io::{self, Read, Write};

use serde::{Deserialize, Serialize};

use super::codec::{self, Decoder, State};
use super::event::Record;

/// File magic.
pub const MAGIC: &[u8; 16] = b"GP100EMU-TRACE\0\0";
/// Chunk magic.
pub const CHUNK_MAGIC: &[u8; 4] = b"CHNK";
/// Format version this code writes and reads.
/// Version 2: DMA, host, checker and access-engine events; the header names the seeded
/// bug the device injected.
/// Version 3: records encoded as differences ([`super::codec`]) in zstd-compressed chunks;
/// DMA writes may carry their bytes (`--trace-data`).
pub const FORMAT_VERSION: u16 = 3;
/// Header flag: the file ends with an end record (written on a clean close).
pub const FLAG_END_RECORD: u16 = 1;
/// Header flags this code knows.
const KNOWN_FLAGS: u16 = FLAG_END_RECORD;
/// End-record magic.
pub const END_MAGIC: &[u8; 4] = b"TEND";
/// Bytes of the end record.
const END_LEN: usize = 16;
/// Largest header body accepted.
pub const MAX_HEADER: u32 = 64 * 1024;
/// Largest decompressed chunk payload accepted.
pub const MAX_CHUNK: u32 = 16 * 1024 * 1024;
/// Largest stored (compressed) chunk payload accepted: zstd's bound for MAX_CHUNK.
pub const MAX_STORED: u32 = MAX_CHUNK + MAX_CHUNK / 128 + 1024;
/// Records per chunk when writing.
pub const RECORDS_PER_CHUNK: usize = 4096;
/// zstd level the writer uses: fast enough to keep up with a guest, and the difference
/// encoding has already made the data repetitive.
pub const ZSTD_LEVEL: i32 = 3;
/// Bytes of a chunk header.
const CHUNK_HEAD: usize = 20;

/// What the recording was made of.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TraceHeader {
    /// gp100emu version that recorded it.
    pub emulator_version: String,
    /// BAR1 size in bytes (the model's one construction parameter today).
    pub bar1_size: u64,
    /// Free text: what produced it (command line, suite).
    pub note: String,
    /// The seeded bug the device injected (`--inject`; "none" normally), so replay injects it
    /// too.
    pub inject: String,
    /// Whether DMA writes carry their bytes (`--trace-data`), so replay logs them the same way.
    pub dma_write_data: bool,
}

/// Errors reading or writing a trace.
#[derive(Debug, thiserror::Error)]
pub enum TraceError {
    /// I/O on the underlying file.
    #[error("trace I/O: {0}")]
    Io(#[from] io::Error),
    /// Not a trace file.
    #[error("not a gp100emu trace (bad magic)")]
    BadMagic,
    /// A version this code cannot read.
    #[error("trace format version {0}; this gp100emu reads version {FORMAT_VERSION} (re-record the trace with this gp100emu, or replay it with the gp100emu that wrote it)")]
    Version(u16),
    /// The header is damaged.
    #[error("trace header is damaged: {0}")]
    BadHeader(String),
    /// A chunk is damaged; the records before it were good.
    #[error("chunk {chunk} (at byte {offset}) is damaged: {why}; the {records_before} records before it are good")]
    Corrupt {
        /// Chunk index (0-based).
        chunk: u64,
        /// Byte offset of the chunk in the file.
        offset: u64,
        /// Records yielded before it.
        records_before: u64,
        /// What is wrong.
        why: String,
    },
    /// The recording dropped model events at an input (the device's per-input bound), so
    /// it cannot be checked past that input.
    #[error("the recording is incomplete at event #{index}: the device did not record {count} model events it made handling that input (more than one input may keep)")]
    Incomplete {
        /// Index of the input record.
        index: u64,
        /// Events not recorded.
        count: u64,
    },
    /// The file has no end record although its writer writes one on every clean close: the
    /// recording process was killed (SIGKILL, a crash) or the file was truncated.
    #[error("the trace is cut off after event {records}: it has no end record (the recording process was killed or the file was truncated); the {records} events before are good")]
    CutOff {
        /// Records in the file.
        records: u64,
    },
    /// More model records follow one input than a recording can hold (the device's bound
    /// on the events it keeps per input): a crafted or damaged file.
    #[error("more model events after the input at event #{index} than a recording holds (at most {limit} events, {bytes} bytes of them); the file is damaged or crafted")]
    TooManyModelEvents {
        /// Index of the input record.
        index: u64,
        /// The bound on records.
        limit: u64,
        /// The bound on their decoded bytes.
        bytes: u64,
    },
    /// A record could not be encoded.
    #[error("encoding a trace record: {0}")]
    Encode(String),
}

/// Streams records into chunks.
pub struct TraceWriter<W: Write> {
    out: W,
    buf: Vec<u8>,
    packed: Vec<u8>,
    zstd: zstd::bulk::Compressor<'static>,
    state: State,
    count: u32,
    records: u64,
    bytes: u64,
    finished: bool,
}

impl<W: Write> TraceWriter<W> {
    /// Writes the file header.
    pub fn new(mut out: W, header: &TraceHeader) -> Result<Self, TraceError> {
        let body = postcard::to_stdvec(header).map_err(|e| TraceError::Encode(e.to_string()))?;
        out.write_all(MAGIC)?;
        out.write_all(&FORMAT_VERSION.to_le_bytes())?;
        out.write_all(&FLAG_END_RECORD.to_le_bytes())?;
        out.write_all(&(body.len() as u32).to_le_bytes())?;
        out.write_all(&crc32fast::hash(&body).to_le_bytes())?;
        out.write_all(&body)?;
        out.flush()?;
        Ok(TraceWriter {
            out,
            buf: Vec::with_capacity(64 * 1024),
            packed: Vec::new(),
            zstd: zstd::bulk::Compressor::new(ZSTD_LEVEL)?,
            state: State::new(),
            count: 0,
            records: 0,
            bytes: 28 + body.len() as u64,
            finished: false,
        })
    }

    /// Appends a record (written out when its chunk fills).
    pub fn push(&mut self, r: &Record) -> Result<(), TraceError> {
        if self.finished {
            return Err(TraceError::Encode("the trace is already finished".into()));
        }
        let before = self.buf.len();
        let mut st = self.state.clone();
        if let Err(e) = codec::encode(&mut st, r, &mut self.buf) {
            self.buf.truncate(before);
            return Err(TraceError::Encode(e.to_string()));
        }
        self.state = st;
        self.count += 1;
        self.records += 1;
        if self.count as usize >= RECORDS_PER_CHUNK || self.buf.len() >= (MAX_CHUNK / 2) as usize {
            self.flush()?;
        }
        Ok(())
    }

    /// Writes the pending chunk, if any, and flushes the output.
    pub fn flush(&mut self) -> Result<(), TraceError> {
        if self.count > 0 {
            self.packed.clear();
            self.packed
                .reserve(zstd::zstd_safe::compress_bound(self.buf.len()));
            self.zstd
                .compress_to_buffer(&self.buf, &mut self.packed)
                .map_err(|e| TraceError::Encode(format!("compressing a chunk: {e}")))?;
            self.out.write_all(CHUNK_MAGIC)?;
            self.out
                .write_all(&(self.packed.len() as u32).to_le_bytes())?;
            self.out.write_all(&(self.buf.len() as u32).to_le_bytes())?;
            self.out.write_all(&self.count.to_le_bytes())?;
            self.out
                .write_all(&crc32fast::hash(&self.packed).to_le_bytes())?;
            self.out.write_all(&self.packed)?;
            self.bytes += (CHUNK_HEAD + self.packed.len()) as u64;
            self.buf.clear();
            self.state = State::new();
            self.count = 0;
        }
        self.out.flush()?;
        Ok(())
    }

    /// Writes the pending chunk and the end record, which marks the file complete; later
    /// pushes are refused. Dropping the writer does this too; a process that may be killed
    /// calls it from its signal path (`gp100emu serve` on SIGTERM/SIGINT).
    pub fn finish(&mut self) -> Result<(), TraceError> {
        if self.finished {
            return Ok(());
        }
        self.flush()?;
        let mut end = [0u8; END_LEN];
        end[..4].copy_from_slice(END_MAGIC);
        end[4..12].copy_from_slice(&self.records.to_le_bytes());
        let crc = crc32fast::hash(&end[..12]);
        end[12..].copy_from_slice(&crc.to_le_bytes());
        self.out.write_all(&end)?;
        self.out.flush()?;
        self.bytes += END_LEN as u64;
        self.finished = true;
        Ok(())
    }

    /// Whether [`TraceWriter::finish`] has run.
    pub fn finished(&self) -> bool {
        self.finished
    }

    /// Records pushed so far.
    pub fn records(&self) -> u64 {
        self.records
    }

    /// Bytes written out so far (header and complete chunks).
    pub fn bytes_written(&self) -> u64 {
        self.bytes
    }
}

impl<W: Write> Drop for TraceWriter<W> {
    fn drop(&mut self) {
        if let Err(e) = self.finish() {
            log::warn!("trace: last chunk or end record lost: {e}");
        }
    }
}

fn read_exact_or_eof<R: Read>(r: &mut R, buf: &mut [u8]) -> io::Result<usize> {
    let mut got = 0;
    while got < buf.len() {
        match r.read(&mut buf[got..]) {
            Ok(0) => break,
            Ok(n) => got += n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(got)
}

/// Reads records chunk by chunk.
pub struct TraceReader<R: Read> {
    input: R,
    header: TraceHeader,
    stored: Vec<u8>,
    chunk: Vec<u8>,
    zstd: zstd::bulk::Decompressor<'static>,
    state: State,
    pos: usize,
    left_in_chunk: u32,
    chunk_index: u64,
    offset: u64,
    records: u64,
    done: bool,
    flags: u16,
    /// Decompressed bytes of the chunks finished so far.
    raw_before: u64,
}

impl<R: Read> TraceReader<R> {
    /// Reads and checks the file header.
    pub fn new(mut input: R) -> Result<Self, TraceError> {
        let mut fixed = [0u8; 28];
        if read_exact_or_eof(&mut input, &mut fixed)? < fixed.len() || &fixed[..16] != MAGIC {
            return Err(TraceError::BadMagic);
        }
        let version = u16::from_le_bytes([fixed[16], fixed[17]]);
        if version != FORMAT_VERSION {
            return Err(TraceError::Version(version));
        }
        let flags = u16::from_le_bytes([fixed[18], fixed[19]]);
        if flags & !KNOWN_FLAGS != 0 {
            return Err(TraceError::BadHeader(format!(
                "flags {flags:#06x} has bits this gp100emu does not know (a newer writer, or damage)"
            )));
        }
        let len = u32::from_le_bytes(fixed[20..24].try_into().expect("4 bytes"));
        let crc = u32::from_le_bytes(fixed[24..28].try_into().expect("4 bytes"));
        if len > MAX_HEADER {
            return Err(TraceError::BadHeader(format!("length {len} is too large")));
        }
        let mut body = vec![0u8; len as usize];
        if read_exact_or_eof(&mut input, &mut body)? < body.len() {
            return Err(TraceError::BadHeader("truncated".into()));
        }
        if crc32fast::hash(&body) != crc {
            return Err(TraceError::BadHeader("checksum mismatch".into()));
        }
        let header: TraceHeader =
            postcard::from_bytes(&body).map_err(|e| TraceError::BadHeader(e.to_string()))?;
        Ok(TraceReader {
            input,
            header,
            stored: Vec::new(),
            chunk: Vec::new(),
            zstd: zstd::bulk::Decompressor::new()?,
            state: State::new(),
            pos: 0,
            left_in_chunk: 0,
            chunk_index: 0,
            offset: 28 + len as u64,
            records: 0,
            done: false,
            flags,
            raw_before: 0,
        })
    }

    /// The file header.
    pub fn header(&self) -> &TraceHeader {
        &self.header
    }

    /// Records yielded so far.
    pub fn records_read(&self) -> u64 {
        self.records
    }

    /// Decompressed record bytes decoded so far (a measure of what the records yielded may
    /// hold in memory).
    pub fn bytes_decoded(&self) -> u64 {
        self.raw_before
            + if self.left_in_chunk == 0 {
                0
            } else {
                self.pos as u64
            }
    }

    fn corrupt(&mut self, why: impl Into<String>) -> TraceError {
        self.done = true;
        TraceError::Corrupt {
            chunk: self.chunk_index,
            offset: self.offset,
            records_before: self.records,
            why: why.into(),
        }
    }

    /// Loads the next chunk; Ok(false) at a clean end of file.
    fn next_chunk(&mut self) -> Result<bool, TraceError> {
        let mut head = [0u8; CHUNK_HEAD];
        let got = read_exact_or_eof(&mut self.input, &mut head[..4])?;
        if got == 0 {
            if self.flags & FLAG_END_RECORD != 0 {
                self.done = true;
                return Err(TraceError::CutOff {
                    records: self.records,
                });
            }
            return Ok(false);
        }
        if got == 4 && &head[..4] == END_MAGIC && self.flags & FLAG_END_RECORD != 0 {
            return self.end_record().map(|()| false);
        }
        let got = got + read_exact_or_eof(&mut self.input, &mut head[4..])?;
        if got < head.len() {
            return Err(self.corrupt("truncated chunk header"));
        }
        if &head[..4] != CHUNK_MAGIC {
            return Err(self.corrupt("bad chunk magic"));
        }
        let word = |i: usize| u32::from_le_bytes(head[i..i + 4].try_into().expect("4 bytes"));
        let (len, raw_len, count, crc) = (word(4), word(8), word(12), word(16));
        if len > MAX_STORED {
            return Err(self.corrupt(format!("chunk length {len} is too large")));
        }
        if raw_len > MAX_CHUNK {
            return Err(self.corrupt(format!("decompressed length {raw_len} is too large")));
        }
        // Every record takes at least 2 bytes; a count beyond that is garbage.
        if count == 0 || count as u64 > raw_len as u64 / 2 {
            return Err(self.corrupt(format!("record count {count} for {raw_len} bytes")));
        }
        self.stored.resize(len as usize, 0);
        if read_exact_or_eof(&mut self.input, &mut self.stored)? < len as usize {
            return Err(self.corrupt("truncated chunk"));
        }
        if crc32fast::hash(&self.stored) != crc {
            return Err(self.corrupt("checksum mismatch"));
        }
        self.chunk.clear();
        self.chunk.reserve(raw_len as usize);
        // The Vec's capacity bounds what zstd may write: a hostile frame cannot grow it.
        let got = match self
            .zstd
            .decompress_to_buffer(&self.stored, &mut self.chunk)
        {
            Ok(n) => n,
            Err(e) => return Err(self.corrupt(format!("undecompressable chunk: {e}"))),
        };
        if got != raw_len as usize {
            return Err(self.corrupt(format!(
                "chunk decompressed to {got} bytes, its header says {raw_len}"
            )));
        }
        self.pos = 0;
        self.state = State::new();
        self.left_in_chunk = count;
        Ok(true)
    }

    /// Checks the end record (its magic already read) and that nothing follows it.
    fn end_record(&mut self) -> Result<(), TraceError> {
        let mut end = [0u8; END_LEN];
        end[..4].copy_from_slice(END_MAGIC);
        if read_exact_or_eof(&mut self.input, &mut end[4..])? < END_LEN - 4 {
            return Err(self.corrupt("truncated end record"));
        }
        let crc = u32::from_le_bytes(end[12..].try_into().expect("4 bytes"));
        if crc32fast::hash(&end[..12]) != crc {
            return Err(self.corrupt("end record checksum mismatch"));
        }
        let n = u64::from_le_bytes(end[4..12].try_into().expect("8 bytes"));
        if n != self.records {
            return Err(self.corrupt(format!(
                "the end record counts {n} records, the file holds {}",
                self.records
            )));
        }
        if read_exact_or_eof(&mut self.input, &mut [0u8; 1])? != 0 {
            return Err(self.corrupt("bytes after the end record"));
        }
        self.done = true;
        Ok(())
    }

    /// The next record, `Ok(None)` at a clean end, or the error that ended the good prefix.
    pub fn next_record(&mut self) -> Result<Option<Record>, TraceError> {
        if self.done {
            return Ok(None);
        }
        if self.left_in_chunk == 0 && !self.next_chunk()? {
            self.done = true;
            return Ok(None);
        }
        let mut d = Decoder::at(&self.chunk, self.pos);
        match d.next(&mut self.state) {
            Ok(r) => {
                self.pos = d.position();
                self.left_in_chunk -= 1;
                self.records += 1;
                if self.left_in_chunk == 0 {
                    if self.pos != self.chunk.len() {
                        return Err(self.corrupt("bytes left over after the chunk's records"));
                    }
                    self.offset += (CHUNK_HEAD + self.stored.len()) as u64;
                    self.raw_before += self.chunk.len() as u64;
                    self.chunk_index += 1;
                }
                Ok(Some(r))
            }
            Err(e) => Err(self.corrupt(format!("undecodable record: {e}"))),
        }
    }
}

impl<R: Read> Iterator for TraceReader<R> {
    type Item = Result<Record, TraceError>;
    fn next(&mut self) -> Option<Self::Item> {
        self.next_record().transpose()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::host::port::Space;
    use crate::host::trace::event::{Data, Event, ModelEvent};
    use crate::hw::fault::FaultType;
    use crate::hw::reason::{AccessFailure, ChannelFault, RunlistError, VmError};
    use crate::hw::target::{MemError, Target};

    fn header() -> TraceHeader {
        TraceHeader {
            emulator_version: "test".into(),
            bar1_size: 256 << 20,
            note: "unit test".into(),
            inject: "none".into(),
            dma_write_data: false,
        }
    }

    fn every_event() -> Vec<Record> {
        let evs = vec![
            Event::Read {
                space: Space::Bar(0),
                offset: 0,
                data: Data::from_slice(&0x1300_00a1u32.to_le_bytes()),
                ok: true,
            },
            Event::Read {
                space: Space::Config,
                offset: 0,
                data: Data::from_slice(&[0x5a; 256]),
                ok: true,
            },
            Event::Write {
                space: Space::Bar(0),
                offset: 0xff0010,
                data: Data::from_slice(&[1, 2]),
                ok: true,
            },
            Event::Write {
                space: Space::Other(9),
                offset: u64::MAX,
                data: Data::from_slice(&[0; 8]),
                ok: false,
            },
            Event::Read {
                space: Space::Rom,
                offset: 4,
                data: Data::from_slice(&[0xff; 4]),
                ok: false,
            },
            Event::DmaMap {
                iova: 0x1000,
                size: 1 << 30,
                writable: true,
                has_fd: true,
            },
            Event::DmaUnmap {
                iova: 0x1000,
                size: 1 << 30,
            },
            Event::Irq { asserted: true },
            Event::Irq { asserted: false },
            Event::Reset,
        ];
        let models = vec![
            ModelEvent::DmaRead {
                addr: 0x1000,
                len: 8,
                data: Some(Data::from_slice(&[1; 8])),
            },
            ModelEvent::DmaRead {
                addr: 1 << 50,
                len: 4096,
                data: None,
            },
            ModelEvent::DmaWrite {
                addr: 0x2000,
                len: 3,
                crc: 0xdead_beef,
                ok: true,
                data: Some(Data::from_slice(&[4, 5, 6])),
            },
            ModelEvent::DmaWrite {
                addr: 0x2000,
                len: 3,
                crc: 1,
                ok: false,
                data: None,
            },
            ModelEvent::Invalidate {
                word: 0x8000_0001,
                pdb: 0x1234_5678_9abc,
                dropped: 7,
            },
            ModelEvent::ApertureFault {
                bar: 3,
                offset: 0x10_0000,
            },
            ModelEvent::RunlistSubmitted {
                runlist: 1,
                channels: 2,
            },
            ModelEvent::RunlistRejected {
                runlist: 0,
                why: "bad".into(),
            },
            ModelEvent::ChannelError {
                chid: 511,
                why: "method 0x1234".into(),
            },
            ModelEvent::HostRan {
                dwords: 10,
                gp_entries: 2,
                ce_bytes: 4096,
                releases: 1,
                nonstall: true,
            },
            ModelEvent::PteWrite {
                va: 0x7f00_0000_0000,
                pte: 0x1_2345_6009,
                page_shift: 12,
            },
            ModelEvent::CheckViolation {
                va: 0x7f00_0000_1000,
                gpu_pte: 1,
                cpu_pte: 2,
                reason: 3,
                at_use: true,
            },
            ModelEvent::Replay,
            ModelEvent::Cancel,
            ModelEvent::AccessDone {
                op: 1,
                va: 0x1000,
                faults: 2,
            },
            ModelEvent::AccessError { why: "no".into() },
            ModelEvent::CheckHazard {
                va: 0x20_0000,
                pd0: 0x11,
            },
            ModelEvent::FaultWritten {
                index: 5,
                addr: 0x7000,
                fault_type: 2,
                access: 1,
            },
            ModelEvent::FaultDropped {
                addr: 0x8000,
                bad_buffer: true,
            },
            ModelEvent::EventsDropped { count: u64::MAX },
            ModelEvent::Walk {
                va: 0x7f00_0000_0000,
                pa: Some(0x1234_5000),
                fault_type: None,
                reads: 6,
                sys_reads: 1,
                cycles: 1900,
            },
            ModelEvent::Walk {
                va: 0,
                pa: None,
                fault_type: Some(2),
                reads: 255,
                sys_reads: 0,
                cycles: u32::MAX,
            },
            ModelEvent::RunlistRefused {
                runlist: 1,
                why: RunlistError::Unreadable(3),
            },
            ModelEvent::ChannelStopped {
                chid: 511,
                why: ChannelFault::GpFetchAbove40Bits {
                    at: 0x4a_0011_0000,
                    err: VmError::Fault {
                        va: 0x4a_0011_0000,
                        fault_type: FaultType::Pde,
                    },
                    ignored: 0x7f,
                },
            },
            ModelEvent::AccessFailed {
                why: AccessFailure::Memory(MemError::OutOfRange {
                    target: Target::SysNoncoherent,
                    addr: 1 << 40,
                })
                .in_slot(63),
            },
        ];
        let evs: Vec<Event> = evs
            .into_iter()
            .chain(models.into_iter().map(Event::Model))
            .collect();
        evs.into_iter()
            .enumerate()
            .map(|(i, event)| Record {
                cycle: i as u64 * 1000 + 7,
                event,
            })
            .collect()
    }

    fn write_all(records: &[Record]) -> Vec<u8> {
        let mut out = Vec::new();
        let mut w = TraceWriter::new(&mut out, &header()).unwrap();
        for r in records {
            w.push(r).unwrap();
        }
        w.flush().unwrap();
        drop(w);
        out
    }

    /// A file header and no end record: what chunks are appended to in the forging tests.
    fn header_only() -> Vec<u8> {
        let mut b = write_all(&[]);
        b.truncate(b.len() - END_LEN);
        b
    }

    fn read_all(bytes: &[u8]) -> (Vec<Record>, Option<TraceError>) {
        let mut r = TraceReader::new(bytes).unwrap();
        let mut v = Vec::new();
        loop {
            match r.next_record() {
                Ok(Some(x)) => v.push(x),
                Ok(None) => return (v, None),
                Err(e) => return (v, Some(e)),
            }
        }
    }

    #[test]
    fn every_event_round_trips() {
        let recs = every_event();
        let bytes = write_all(&recs);
        let (back, err) = read_all(&bytes);
        assert!(err.is_none(), "{err:?}");
        assert_eq!(back, recs);
        assert_eq!(TraceReader::new(&bytes[..]).unwrap().header(), &header());
    }

    fn many(n: usize) -> Vec<Record> {
        (0..n)
            .map(|i| Record {
                cycle: i as u64,
                event: Event::Write {
                    space: Space::Bar(0),
                    offset: (i * 4) as u64,
                    data: Data::from_slice(&(i as u32).to_le_bytes()),
                    ok: true,
                },
            })
            .collect()
    }

    #[test]
    fn truncation_keeps_the_good_prefix() {
        let recs = many(RECORDS_PER_CHUNK * 3);
        let bytes = write_all(&recs);
        // Cut into the third chunk.
        let cut = bytes.len() - 100;
        let (back, err) = read_all(&bytes[..cut]);
        assert_eq!(back.len(), RECORDS_PER_CHUNK * 2);
        assert_eq!(back[..], recs[..RECORDS_PER_CHUNK * 2]);
        match err {
            Some(TraceError::Corrupt {
                chunk,
                records_before,
                ..
            }) => {
                assert_eq!(chunk, 2);
                assert_eq!(records_before, (RECORDS_PER_CHUNK * 2) as u64);
            }
            other => panic!("expected Corrupt, got {other:?}"),
        }
    }

    #[test]
    fn a_flipped_byte_is_detected_in_its_chunk() {
        let recs = many(RECORDS_PER_CHUNK * 2);
        let mut bytes = write_all(&recs);
        let n = bytes.len() - END_LEN;
        bytes[n - 10] ^= 0x40;
        let (back, err) = read_all(&bytes);
        assert_eq!(back.len(), RECORDS_PER_CHUNK);
        assert!(
            matches!(err, Some(TraceError::Corrupt { chunk: 1, ref why, .. }) if why.contains("checksum")),
            "{err:?}"
        );
    }

    #[test]
    fn bad_headers() {
        assert!(matches!(
            TraceReader::new(&b"not a trace at all, really not"[..]),
            Err(TraceError::BadMagic)
        ));
        let mut bytes = write_all(&many(1));
        bytes[16] = 99;
        assert!(matches!(
            TraceReader::new(&bytes[..]),
            Err(TraceError::Version(99))
        ));
        let mut bytes = write_all(&many(1));
        bytes[30] ^= 1;
        assert!(matches!(
            TraceReader::new(&bytes[..]),
            Err(TraceError::BadHeader(_))
        ));
        assert!(matches!(
            TraceReader::new(&b""[..]),
            Err(TraceError::BadMagic)
        ));
    }

    #[test]
    fn hostile_chunk_headers_do_not_allocate_or_loop() {
        let mut bytes = header_only();
        bytes.extend_from_slice(CHUNK_MAGIC);
        bytes.extend_from_slice(&u32::MAX.to_le_bytes());
        bytes.extend_from_slice(&1u32.to_le_bytes());
        bytes.extend_from_slice(&0u32.to_le_bytes());
        let (back, err) = read_all(&bytes);
        assert!(back.is_empty());
        assert!(matches!(err, Some(TraceError::Corrupt { .. })), "{err:?}");
    }

    /// A chunk whose checksum is right but whose payload is not what its header says.
    fn forged_chunk(payload: &[u8], raw_len: u32, count: u32) -> Vec<u8> {
        let mut bytes = header_only();
        bytes.extend_from_slice(CHUNK_MAGIC);
        bytes.extend_from_slice(&(payload.len() as u32).to_le_bytes());
        bytes.extend_from_slice(&raw_len.to_le_bytes());
        bytes.extend_from_slice(&count.to_le_bytes());
        bytes.extend_from_slice(&crc32fast::hash(payload).to_le_bytes());
        bytes.extend_from_slice(payload);
        bytes
    }

    #[test]
    fn forged_chunks_are_corrupt_not_trusted() {
        // Not a zstd frame.
        let (back, err) = read_all(&forged_chunk(b"garbage, not zstd", 100, 1));
        assert!(back.is_empty());
        assert!(
            matches!(err, Some(TraceError::Corrupt { ref why, .. }) if why.contains("undecompressable")),
            "{err:?}"
        );
        // A frame that decompresses to more than its header admits: zstd stops at the
        // buffer's capacity and the chunk is refused.
        let frame = zstd::bulk::compress(&[0u8; 4096], 3).unwrap();
        let (_, err) = read_all(&forged_chunk(&frame, 64, 1));
        assert!(matches!(err, Some(TraceError::Corrupt { .. })), "{err:?}");
        // Fewer bytes than its header says.
        let (_, err) = read_all(&forged_chunk(&frame, 8192, 1));
        assert!(
            matches!(err, Some(TraceError::Corrupt { ref why, .. }) if why.contains("decompressed to 4096")),
            "{err:?}"
        );
        // Records that are not records.
        let frame = zstd::bulk::compress(&[0xffu8; 64], 3).unwrap();
        let (_, err) = read_all(&forged_chunk(&frame, 64, 1));
        assert!(
            matches!(err, Some(TraceError::Corrupt { ref why, .. }) if why.contains("undecodable")),
            "{err:?}"
        );
        // A valid record followed by bytes its count does not cover.
        let mut raw = Vec::new();
        codec::encode(&mut State::new(), &many(1)[0], &mut raw).unwrap();
        raw.extend_from_slice(&[0, 0]);
        let frame = zstd::bulk::compress(&raw, 3).unwrap();
        let (back, err) = read_all(&forged_chunk(&frame, raw.len() as u32, 1));
        // The damage shows at the chunk's last record, which is not yielded.
        assert!(back.is_empty());
        assert!(
            matches!(err, Some(TraceError::Corrupt { ref why, .. }) if why.contains("left over")),
            "{err:?}"
        );
    }

    #[test]
    fn a_boot_like_stream_compresses_to_almost_nothing() {
        // Two hundred thousand one-byte writes to consecutive offsets, 36 cycles apart: what
        // nouveau's instance-memory clearing looks like.
        let recs: Vec<Record> = (0..200_000u64)
            .map(|i| Record {
                cycle: 36 * i,
                event: Event::Write {
                    space: Space::Bar(3),
                    offset: i,
                    data: Data::from_slice(&[0]),
                    ok: true,
                },
            })
            .collect();
        let bytes = write_all(&recs);
        assert!(bytes.len() < 20_000, "{} bytes", bytes.len());
        let (back, err) = read_all(&bytes);
        assert!(err.is_none());
        assert_eq!(back, recs);
    }

    #[test]
    fn drop_flushes_the_last_chunk() {
        let mut out = Vec::new();
        {
            let mut w = TraceWriter::new(&mut out, &header()).unwrap();
            for r in many(10) {
                w.push(&r).unwrap();
            }
        }
        let (back, err) = read_all(&out);
        assert!(err.is_none());
        assert_eq!(back.len(), 10);
    }

    /// Issue 14: a trace cut at a chunk boundary (a killed recorder) read as complete. Now
    /// the end record marks a complete file and its absence is reported, with the count.
    #[test]
    fn a_file_without_its_end_record_is_cut_off() {
        let recs = many(RECORDS_PER_CHUNK + 5);
        let bytes = write_all(&recs);
        assert_eq!(&bytes[bytes.len() - END_LEN..][..4], END_MAGIC);
        let (back, err) = read_all(&bytes);
        assert!(err.is_none(), "{err:?}");
        assert_eq!(back.len(), recs.len());
        // Without the end record: every record, then CutOff.
        let (back, err) = read_all(&bytes[..bytes.len() - END_LEN]);
        assert_eq!(back.len(), recs.len());
        assert!(
            matches!(err, Some(TraceError::CutOff { records }) if records == recs.len() as u64),
            "{err:?}"
        );
        assert!(err
            .unwrap()
            .to_string()
            .contains(&format!("cut off after event {}", recs.len())));
        // Half an end record, a wrong count, bytes after it, a bad checksum.
        let (_, err) = read_all(&bytes[..bytes.len() - 3]);
        assert!(
            matches!(err, Some(TraceError::Corrupt { ref why, .. }) if why.contains("truncated end")),
            "{err:?}"
        );
        let mut b = bytes.clone();
        let n = b.len();
        b[n - 12] ^= 1;
        let (_, err) = read_all(&b);
        assert!(
            matches!(err, Some(TraceError::Corrupt { ref why, .. }) if why.contains("checksum")),
            "{err:?}"
        );
        let mut b = bytes.clone();
        b.push(0);
        let (_, err) = read_all(&b);
        assert!(
            matches!(err, Some(TraceError::Corrupt { ref why, .. }) if why.contains("after the end")),
            "{err:?}"
        );
        let mut b = bytes[..bytes.len() - END_LEN].to_vec();
        b.extend_from_slice(END_MAGIC);
        b.extend_from_slice(&7u64.to_le_bytes());
        let crc = crc32fast::hash(&b[b.len() - 12..]);
        b.extend_from_slice(&crc.to_le_bytes());
        let (_, err) = read_all(&b);
        assert!(
            matches!(err, Some(TraceError::Corrupt { ref why, .. }) if why.contains("counts 7 records")),
            "{err:?}"
        );
    }

    /// Files written before the end record (flags 0, as the committed traces/) read as before;
    /// an unknown flag bit is refused.
    #[test]
    fn flags_zero_files_need_no_end_record_and_unknown_flags_are_refused() {
        let recs = many(10);
        let mut b = write_all(&recs);
        b.truncate(b.len() - END_LEN);
        b[18..20].copy_from_slice(&0u16.to_le_bytes());
        let (back, err) = read_all(&b);
        assert!(err.is_none(), "{err:?}");
        assert_eq!(back, recs);
        for flags in [2u16, 0x8000, 0xffff] {
            let mut b = write_all(&recs);
            b[18..20].copy_from_slice(&flags.to_le_bytes());
            assert!(
                matches!(TraceReader::new(&b[..]), Err(TraceError::BadHeader(ref w)) if w.contains("flags")),
                "{flags:#x}"
            );
        }
    }
}
