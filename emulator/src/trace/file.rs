//! The trace file format.
//!
//! ```text
//! magic      16 bytes  "GP100EMU-TRACE\0\0"
//! version    u16 LE    FORMAT_VERSION
//! reserved   u16       0
//! hdr_len    u32 LE    length of the header body (at most MAX_HEADER)
//! hdr_crc    u32 LE    CRC-32 (IEEE) of the header body
//! header     postcard-encoded TraceHeader
//! then chunks until the end of the file:
//!   magic    4 bytes   "CHNK"
//!   len      u32 LE    payload length (at most MAX_CHUNK)
//!   count    u32 LE    records in the payload
//!   crc      u32 LE    CRC-32 (IEEE) of the payload
//!   payload  `count` postcard-encoded Records, back to back
//! ```
//!
//! The writer emits a chunk every [`RECORDS_PER_CHUNK`] records (and on flush/drop), so a
//! killed process loses at most its last chunk. The reader checks each chunk and stops at the
//! first damaged or truncated one with an error that says where, after yielding every record
//! of the good chunks before it.

use std::io::{self, Read, Write};

use serde::{Deserialize, Serialize};

use super::event::Record;

/// File magic.
pub const MAGIC: &[u8; 16] = b"GP100EMU-TRACE\0\0";
/// Chunk magic.
pub const CHUNK_MAGIC: &[u8; 4] = b"CHNK";
/// Format version this code writes and reads.
/// Version 2: DMA, host, checker and access-engine events; the header names the seeded
/// bug the device injected.
pub const FORMAT_VERSION: u16 = 2;
/// Largest header body accepted.
pub const MAX_HEADER: u32 = 64 * 1024;
/// Largest chunk payload accepted.
pub const MAX_CHUNK: u32 = 16 * 1024 * 1024;
/// Records per chunk when writing.
pub const RECORDS_PER_CHUNK: usize = 4096;

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
    #[error("trace format version {0}; this gp100emu reads version {FORMAT_VERSION}")]
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
    /// A record could not be encoded.
    #[error("encoding a trace record: {0}")]
    Encode(String),
}

/// Streams records into chunks.
pub struct TraceWriter<W: Write> {
    out: W,
    buf: Vec<u8>,
    count: u32,
    records: u64,
    bytes: u64,
}

impl<W: Write> TraceWriter<W> {
    /// Writes the file header.
    pub fn new(mut out: W, header: &TraceHeader) -> Result<Self, TraceError> {
        let body = postcard::to_stdvec(header).map_err(|e| TraceError::Encode(e.to_string()))?;
        out.write_all(MAGIC)?;
        out.write_all(&FORMAT_VERSION.to_le_bytes())?;
        out.write_all(&0u16.to_le_bytes())?;
        out.write_all(&(body.len() as u32).to_le_bytes())?;
        out.write_all(&crc32fast::hash(&body).to_le_bytes())?;
        out.write_all(&body)?;
        out.flush()?;
        Ok(TraceWriter {
            out,
            buf: Vec::with_capacity(64 * 1024),
            count: 0,
            records: 0,
            bytes: 28 + body.len() as u64,
        })
    }

    /// Appends a record (written out when its chunk fills).
    pub fn push(&mut self, r: &Record) -> Result<(), TraceError> {
        postcard::to_io(r, &mut self.buf).map_err(|e| TraceError::Encode(e.to_string()))?;
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
            self.out.write_all(CHUNK_MAGIC)?;
            self.out.write_all(&(self.buf.len() as u32).to_le_bytes())?;
            self.out.write_all(&self.count.to_le_bytes())?;
            self.out
                .write_all(&crc32fast::hash(&self.buf).to_le_bytes())?;
            self.out.write_all(&self.buf)?;
            self.bytes += 16 + self.buf.len() as u64;
            self.buf.clear();
            self.count = 0;
        }
        self.out.flush()?;
        Ok(())
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
        if self.count > 0 {
            if let Err(e) = self.flush() {
                log::warn!("trace: last chunk lost: {e}");
            }
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
    chunk: Vec<u8>,
    pos: usize,
    left_in_chunk: u32,
    chunk_index: u64,
    offset: u64,
    records: u64,
    done: bool,
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
            chunk: Vec::new(),
            pos: 0,
            left_in_chunk: 0,
            chunk_index: 0,
            offset: 28 + len as u64,
            records: 0,
            done: false,
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
        let mut head = [0u8; 16];
        let got = read_exact_or_eof(&mut self.input, &mut head)?;
        if got == 0 {
            return Ok(false);
        }
        if got < head.len() {
            return Err(self.corrupt("truncated chunk header"));
        }
        if &head[..4] != CHUNK_MAGIC {
            return Err(self.corrupt("bad chunk magic"));
        }
        let len = u32::from_le_bytes(head[4..8].try_into().expect("4 bytes"));
        let count = u32::from_le_bytes(head[8..12].try_into().expect("4 bytes"));
        let crc = u32::from_le_bytes(head[12..16].try_into().expect("4 bytes"));
        if len > MAX_CHUNK {
            return Err(self.corrupt(format!("chunk length {len} is too large")));
        }
        // Every record takes at least 2 bytes; a count beyond that is garbage.
        if count == 0 || count as u64 > len as u64 / 2 + 1 {
            return Err(self.corrupt(format!("record count {count} for {len} bytes")));
        }
        self.chunk.resize(len as usize, 0);
        if read_exact_or_eof(&mut self.input, &mut self.chunk)? < len as usize {
            return Err(self.corrupt("truncated chunk"));
        }
        if crc32fast::hash(&self.chunk) != crc {
            return Err(self.corrupt("checksum mismatch"));
        }
        self.pos = 0;
        self.left_in_chunk = count;
        Ok(true)
    }

    /// The next record, `Ok(None)` at a clean end, or the error that ended the good prefix.
    pub fn next_record(&mut self) -> Result<Option<Record>, TraceError> {
        if self.done {
            return Ok(None);
        }
        while self.left_in_chunk == 0 {
            if self.pos != self.chunk.len() && !self.chunk.is_empty() {
                return Err(self.corrupt("bytes left over after the chunk's records"));
            }
            if !self.next_chunk()? {
                self.done = true;
                return Ok(None);
            }
        }
        match postcard::take_from_bytes::<Record>(&self.chunk[self.pos..]) {
            Ok((r, rest)) => {
                self.pos = self.chunk.len() - rest.len();
                self.left_in_chunk -= 1;
                self.records += 1;
                if self.left_in_chunk == 0 {
                    if self.pos != self.chunk.len() {
                        return Err(self.corrupt("bytes left over after the chunk's records"));
                    }
                    self.offset += 16 + self.chunk.len() as u64;
                    self.chunk_index += 1;
                    self.chunk.clear();
                    self.pos = 0;
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
    use crate::port::Space;
    use crate::trace::event::{Data, Event};

    fn header() -> TraceHeader {
        TraceHeader {
            emulator_version: "test".into(),
            bar1_size: 256 << 20,
            note: "unit test".into(),
            inject: "none".into(),
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
        let n = bytes.len();
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
        let mut bytes = write_all(&[]);
        bytes.extend_from_slice(CHUNK_MAGIC);
        bytes.extend_from_slice(&u32::MAX.to_le_bytes());
        bytes.extend_from_slice(&1u32.to_le_bytes());
        bytes.extend_from_slice(&0u32.to_le_bytes());
        let (back, err) = read_all(&bytes);
        assert!(back.is_empty());
        assert!(matches!(err, Some(TraceError::Corrupt { .. })), "{err:?}");
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
}
