//! The record encoding inside a chunk.
//!
//! A guest boot is millions of records, almost all BAR accesses of at most 8 bytes, so those
//! are encoded by hand, as differences from the record before them in the same chunk: the
//! GPU-clock stamp as the cycles since the previous record, the offset as the distance from
//! the previous access to the same space. nouveau clearing instance memory (two million
//! one-byte writes to consecutive BAR3 offsets, 36 cycles apart) then encodes every write as
//! the same five bytes, which the chunk compressor reduces to almost nothing. The state starts
//! afresh in every chunk, so each chunk decodes on its own.
//!
//! The rarer events the model reports ([`ModelEvent`]) are postcard-encoded after the same
//! tag and clock difference.
//!
//! ```text
//! tag      u8      bits 0-3 kind (KIND_*), bit 4 flag A, bit 5 flag B, bits 6-7 zero
//! dcycle   varint  cycle - previous cycle (wrapping)
//! Read / Write (flag A: the port accepted it):
//!   space  u8      0-5 BAR n, 6 ROM, 7 config, 8 other region (varint index follows),
//!                  9 BAR n > 5 (u8 n follows)
//!   doff   varint  zigzag(offset - previous offset in that space) (wrapping)
//!   n      u8      1-8: a small access, varint value follows; 0: varint length and bytes
//! DmaMap (flag A writable, flag B has_fd): varint iova, varint size
//! DmaUnmap: varint iova, varint size
//! Irq (flag A asserted); Reset: nothing more
//! Model: postcard ModelEvent
//! ```

use super::event::{Data, Event, ModelEvent, Record};
use crate::host::port::Space;

const KIND_READ: u8 = 0;
const KIND_WRITE: u8 = 1;
const KIND_DMA_MAP: u8 = 2;
const KIND_DMA_UNMAP: u8 = 3;
const KIND_IRQ: u8 = 4;
const KIND_RESET: u8 = 5;
const KIND_MODEL: u8 = 6;
const FLAG_A: u8 = 1 << 4;
const FLAG_B: u8 = 1 << 5;
const KIND_MASK: u8 = 0x0f;

const SPACE_ROM: u8 = 6;
const SPACE_CONFIG: u8 = 7;
const SPACE_OTHER: u8 = 8;
const SPACE_BIG_BAR: u8 = 9;
/// Slots of per-space previous offsets: BAR0-5, ROM, config, everything else.
const SLOTS: usize = 9;

/// Longest variable-length byte string accepted in a record (a config-space access is at
/// most 256 bytes, a DMA read at most a page; anything longer is garbage).
pub const MAX_BYTES: usize = 1 << 20;

/// Why a record could not be decoded.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CodecError {
    /// The chunk ends inside a record.
    #[error("the chunk ends inside a record")]
    Truncated,
    /// A varint longer than 64 bits.
    #[error("an over-long varint")]
    Varint,
    /// A tag or space code this format does not have.
    #[error("unknown {what} code {code:#04x}")]
    Unknown {
        /// Which field.
        what: &'static str,
        /// Its value.
        code: u8,
    },
    /// A byte string longer than [`MAX_BYTES`].
    #[error("a byte string of {0} bytes")]
    TooLong(u64),
    /// The postcard body of a model event.
    #[error("model event: {0}")]
    Model(String),
    /// A record that cannot be encoded (a `Data::Small` of length 0 or more than 8).
    #[error("unencodable record: {0}")]
    Unencodable(String),
}

/// The difference state of one chunk, on either side.
#[derive(Debug, Clone, Default)]
pub struct State {
    cycle: u64,
    offset: [u64; SLOTS],
}

impl State {
    /// The state at the start of a chunk.
    pub fn new() -> Self {
        Self::default()
    }
}

fn put_varint(out: &mut Vec<u8>, mut v: u64) {
    while v >= 0x80 {
        out.push(v as u8 | 0x80);
        v >>= 7;
    }
    out.push(v as u8);
}

fn zigzag(v: i64) -> u64 {
    ((v << 1) ^ (v >> 63)) as u64
}

fn unzigzag(v: u64) -> i64 {
    ((v >> 1) as i64) ^ -((v & 1) as i64)
}

fn space_code(s: Space) -> (u8, usize) {
    match s {
        Space::Bar(n) if n <= 5 => (n, n as usize),
        Space::Bar(_) => (SPACE_BIG_BAR, SLOTS - 1),
        Space::Rom => (SPACE_ROM, 6),
        Space::Config => (SPACE_CONFIG, 7),
        Space::Other(_) => (SPACE_OTHER, SLOTS - 1),
    }
}

/// Appends `r` to `out`, advancing `st`.
pub fn encode(st: &mut State, r: &Record, out: &mut Vec<u8>) -> Result<(), CodecError> {
    let dcycle = r.cycle.wrapping_sub(st.cycle);
    let access = |kind: u8,
                  space: &Space,
                  offset: u64,
                  data: &Data,
                  ok: bool,
                  st: &mut State,
                  out: &mut Vec<u8>|
     -> Result<(), CodecError> {
        out.push(kind | if ok { FLAG_A } else { 0 });
        put_varint(out, dcycle);
        let (code, slot) = space_code(*space);
        out.push(code);
        match space {
            Space::Other(i) => put_varint(out, *i as u64),
            Space::Bar(n) if code == SPACE_BIG_BAR => out.push(*n),
            _ => {}
        }
        put_varint(out, zigzag(offset.wrapping_sub(st.offset[slot]) as i64));
        st.offset[slot] = offset;
        match data {
            Data::Small { len, value } if (1..=8).contains(len) => {
                out.push(*len);
                put_varint(out, *value);
            }
            Data::Small { len, .. } => {
                return Err(CodecError::Unencodable(format!(
                    "a {len}-byte small access"
                )))
            }
            Data::Bytes(b) => {
                out.push(0);
                put_varint(out, b.len() as u64);
                out.extend_from_slice(b);
            }
        }
        Ok(())
    };
    match &r.event {
        Event::Read {
            space,
            offset,
            data,
            ok,
        } => access(KIND_READ, space, *offset, data, *ok, st, out)?,
        Event::Write {
            space,
            offset,
            data,
            ok,
        } => access(KIND_WRITE, space, *offset, data, *ok, st, out)?,
        Event::DmaMap {
            iova,
            size,
            writable,
            has_fd,
        } => {
            out.push(
                KIND_DMA_MAP
                    | if *writable { FLAG_A } else { 0 }
                    | if *has_fd { FLAG_B } else { 0 },
            );
            put_varint(out, dcycle);
            put_varint(out, *iova);
            put_varint(out, *size);
        }
        Event::DmaUnmap { iova, size } => {
            out.push(KIND_DMA_UNMAP);
            put_varint(out, dcycle);
            put_varint(out, *iova);
            put_varint(out, *size);
        }
        Event::Irq { asserted } => {
            out.push(KIND_IRQ | if *asserted { FLAG_A } else { 0 });
            put_varint(out, dcycle);
        }
        Event::Reset => {
            out.push(KIND_RESET);
            put_varint(out, dcycle);
        }
        Event::Model(m) => {
            out.push(KIND_MODEL);
            put_varint(out, dcycle);
            postcard::to_io(m, &mut *out).map_err(|e| CodecError::Model(e.to_string()))?;
        }
    }
    st.cycle = r.cycle;
    Ok(())
}

/// Reads records from a chunk's bytes.
#[derive(Debug)]
pub struct Decoder<'a> {
    buf: &'a [u8],
    pos: usize,
}

impl<'a> Decoder<'a> {
    /// Decodes `buf` from its start.
    pub fn new(buf: &'a [u8]) -> Self {
        Decoder { buf, pos: 0 }
    }

    /// Decodes `buf` from byte `pos`.
    pub fn at(buf: &'a [u8], pos: usize) -> Self {
        Decoder { buf, pos }
    }

    /// Bytes consumed so far.
    pub fn position(&self) -> usize {
        self.pos
    }

    /// Whether every byte has been consumed.
    pub fn at_end(&self) -> bool {
        self.pos >= self.buf.len()
    }

    #[inline]
    fn byte(&mut self) -> Result<u8, CodecError> {
        let b = *self.buf.get(self.pos).ok_or(CodecError::Truncated)?;
        self.pos += 1;
        Ok(b)
    }

    #[inline]
    fn varint(&mut self) -> Result<u64, CodecError> {
        let mut v = 0u64;
        for shift in (0..64).step_by(7) {
            let b = self.byte()?;
            // The tenth byte may carry only bit 63.
            if shift == 63 && b > 1 {
                return Err(CodecError::Varint);
            }
            v |= ((b & 0x7f) as u64) << shift;
            if b & 0x80 == 0 {
                return Ok(v);
            }
        }
        Err(CodecError::Varint)
    }

    fn bytes(&mut self) -> Result<&'a [u8], CodecError> {
        let n = self.varint()?;
        if n > MAX_BYTES as u64 {
            return Err(CodecError::TooLong(n));
        }
        let end = self
            .pos
            .checked_add(n as usize)
            .filter(|&e| e <= self.buf.len())
            .ok_or(CodecError::Truncated)?;
        let b = &self.buf[self.pos..end];
        self.pos = end;
        Ok(b)
    }

    /// The next record, advancing `st`.
    pub fn next(&mut self, st: &mut State) -> Result<Record, CodecError> {
        let tag = self.byte()?;
        if tag & 0xc0 != 0 {
            return Err(CodecError::Unknown {
                what: "tag",
                code: tag,
            });
        }
        let a = tag & FLAG_A != 0;
        let b = tag & FLAG_B != 0;
        let cycle = st.cycle.wrapping_add(self.varint()?);
        let event = match tag & KIND_MASK {
            k @ (KIND_READ | KIND_WRITE) => {
                let code = self.byte()?;
                let (space, slot) = match code {
                    0..=5 => (Space::Bar(code), code as usize),
                    SPACE_ROM => (Space::Rom, 6),
                    SPACE_CONFIG => (Space::Config, 7),
                    SPACE_OTHER => {
                        let i = self.varint()?;
                        let i = u32::try_from(i).map_err(|_| CodecError::Unknown {
                            what: "region",
                            code: SPACE_OTHER,
                        })?;
                        (Space::Other(i), SLOTS - 1)
                    }
                    SPACE_BIG_BAR => (Space::Bar(self.byte()?), SLOTS - 1),
                    _ => {
                        return Err(CodecError::Unknown {
                            what: "space",
                            code,
                        })
                    }
                };
                let offset = st.offset[slot].wrapping_add(unzigzag(self.varint()?) as u64);
                st.offset[slot] = offset;
                let data = match self.byte()? {
                    0 => Data::Bytes(self.bytes()?.to_vec()),
                    len @ 1..=8 => Data::Small {
                        len,
                        value: self.varint()?,
                    },
                    n => {
                        return Err(CodecError::Unknown {
                            what: "access length",
                            code: n,
                        })
                    }
                };
                if k == KIND_READ {
                    Event::Read {
                        space,
                        offset,
                        data,
                        ok: a,
                    }
                } else {
                    Event::Write {
                        space,
                        offset,
                        data,
                        ok: a,
                    }
                }
            }
            KIND_DMA_MAP => Event::DmaMap {
                iova: self.varint()?,
                size: self.varint()?,
                writable: a,
                has_fd: b,
            },
            KIND_DMA_UNMAP => Event::DmaUnmap {
                iova: self.varint()?,
                size: self.varint()?,
            },
            KIND_IRQ => Event::Irq { asserted: a },
            KIND_RESET => Event::Reset,
            KIND_MODEL => {
                let (m, rest) = postcard::take_from_bytes::<ModelEvent>(&self.buf[self.pos..])
                    .map_err(|e| CodecError::Model(e.to_string()))?;
                self.pos = self.buf.len() - rest.len();
                Event::Model(m)
            }
            _ => {
                return Err(CodecError::Unknown {
                    what: "tag",
                    code: tag,
                })
            }
        };
        st.cycle = cycle;
        Ok(Record { cycle, event })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rec(cycle: u64, event: Event) -> Record {
        Record { cycle, event }
    }

    fn round_trip(recs: &[Record]) -> Vec<u8> {
        let mut st = State::new();
        let mut out = Vec::new();
        for r in recs {
            encode(&mut st, r, &mut out).unwrap();
        }
        let mut st = State::new();
        let mut d = Decoder::new(&out);
        for r in recs {
            assert_eq!(&d.next(&mut st).unwrap(), r);
        }
        assert!(d.at_end());
        out
    }

    #[test]
    fn extremes_round_trip() {
        round_trip(&[
            rec(
                u64::MAX,
                Event::Read {
                    space: Space::Bar(9),
                    offset: u64::MAX,
                    data: Data::Small {
                        len: 8,
                        value: u64::MAX,
                    },
                    ok: false,
                },
            ),
            rec(
                0,
                Event::Write {
                    space: Space::Other(u32::MAX),
                    offset: 0,
                    data: Data::Bytes(vec![]),
                    ok: true,
                },
            ),
            rec(
                1 << 63,
                Event::Write {
                    space: Space::Bar(9),
                    offset: 1 << 63,
                    data: Data::Bytes(vec![1; 300]),
                    ok: true,
                },
            ),
            rec(
                5,
                Event::DmaMap {
                    iova: u64::MAX,
                    size: 0,
                    writable: false,
                    has_fd: true,
                },
            ),
            rec(
                4,
                Event::Model(ModelEvent::DmaWrite {
                    addr: 1,
                    len: 2,
                    crc: 3,
                    ok: false,
                    data: Some(Data::from_slice(&[1, 2])),
                }),
            ),
        ]);
    }

    #[test]
    fn sequential_byte_writes_encode_identically() {
        let recs: Vec<Record> = (0..4u64)
            .map(|i| {
                rec(
                    1000 + 36 * i,
                    Event::Write {
                        space: Space::Bar(3),
                        offset: 0x12000 + i,
                        data: Data::from_slice(&[0]),
                        ok: true,
                    },
                )
            })
            .collect();
        let out = round_trip(&recs);
        // After the first, every record is the same 6 bytes.
        let first = out.len() - 3 * 6;
        assert_eq!(out[first..first + 6], out[first + 6..first + 12]);
        assert_eq!(out[first..first + 6], out[first + 12..]);
    }

    #[test]
    fn garbage_is_an_error_not_a_panic() {
        for bad in [
            &[0x40u8][..],
            &[0x0f, 0],
            &[KIND_READ, 0, 10],
            &[KIND_READ, 0, 0, 0, 9],
            &[KIND_READ, 0, 0, 0],
            &[KIND_WRITE, 0, 0, 0, 0, 0xff, 0xff, 0xff, 0xff, 0x0f],
            &[
                KIND_IRQ, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x02,
            ],
            &[KIND_MODEL, 0, 0xff],
            &[KIND_READ, 0, SPACE_OTHER, 0xff, 0xff, 0xff, 0xff, 0x7f],
        ] {
            assert!(
                Decoder::new(bad).next(&mut State::new()).is_err(),
                "{bad:02x?} decoded"
            );
        }
        let mut out = Vec::new();
        let r = rec(
            0,
            Event::Read {
                space: Space::Bar(0),
                offset: 0,
                data: Data::Small { len: 9, value: 0 },
                ok: true,
            },
        );
        assert!(encode(&mut State::new(), &r, &mut out).is_err());
    }

    /// The compatibility rule's other half (hw/event.rs): a model event from a newer build
    /// (a tag past the last one this build knows) is a decode error naming the model event,
    /// never another event.
    #[test]
    fn a_model_event_from_a_newer_build_is_a_clear_error() {
        let mut out = Vec::new();
        let r = rec(7, Event::Model(ModelEvent::Replay));
        encode(&mut State::new(), &r, &mut out).unwrap();
        assert_eq!(Decoder::new(&out).next(&mut State::new()).unwrap(), r);
        // tag, dcycle, then the postcard variant index: make it one past FaultDropped (18).
        let last = out.len() - 1;
        assert_eq!(out[last], 11, "Replay's pinned tag");
        out[last] = 19;
        match Decoder::new(&out).next(&mut State::new()) {
            Err(CodecError::Model(why)) => assert!(!why.is_empty()),
            other => panic!("expected a model-event error, got {other:?}"),
        }
    }
}
