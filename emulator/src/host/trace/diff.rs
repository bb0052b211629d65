//! The first divergence between two traces, with context.

use std::collections::VecDeque;
use std::io::Read;

use super::event::Record;
use super::file::{TraceError, TraceReader};

/// Where two traces part.
#[derive(Debug)]
pub enum Divergence {
    /// Same records, same length.
    Identical {
        /// How many records each has.
        records: u64,
    },
    /// Record `index` differs (or one trace ends there: `None`).
    At {
        /// First differing index.
        index: u64,
        /// Records before it (shared by both).
        context: Vec<Record>,
        /// A's record there.
        a: Option<Record>,
        /// B's record there.
        b: Option<Record>,
    },
    /// A file is damaged before any difference was found.
    Damaged {
        /// Which one ("A" or "B").
        which: &'static str,
        /// The reader's error.
        error: TraceError,
        /// Records compared equal before it.
        index: u64,
    },
}

impl std::fmt::Display for Divergence {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Divergence::Identical { records } => write!(f, "identical: {records} events"),
            Divergence::At {
                index,
                context,
                a,
                b,
            } => {
                writeln!(f, "first divergence at event #{index}:")?;
                for (i, r) in context.iter().enumerate() {
                    let idx = index - context.len() as u64 + i as u64;
                    writeln!(f, "    #{idx:<8} {r}")?;
                }
                let show = |r: &Option<Record>| match r {
                    Some(r) => r.to_string(),
                    None => "<end of trace>".to_string(),
                };
                writeln!(f, "  A #{index:<8} {}", show(a))?;
                write!(f, "  B #{index:<8} {}", show(b))
            }
            Divergence::Damaged {
                which,
                error,
                index,
            } => write!(
                f,
                "trace {which} is damaged after {index} equal events: {error}"
            ),
        }
    }
}

/// Compares two traces record by record (headers are not compared).
pub fn first_divergence<A: Read, B: Read>(
    mut a: TraceReader<A>,
    mut b: TraceReader<B>,
    context_len: usize,
) -> Divergence {
    let mut context: VecDeque<Record> = VecDeque::new();
    let mut index = 0u64;
    loop {
        let ra = match a.next_record() {
            Ok(r) => r,
            Err(error) => {
                return Divergence::Damaged {
                    which: "A",
                    error,
                    index,
                }
            }
        };
        let rb = match b.next_record() {
            Ok(r) => r,
            Err(error) => {
                return Divergence::Damaged {
                    which: "B",
                    error,
                    index,
                }
            }
        };
        match (ra, rb) {
            (None, None) => return Divergence::Identical { records: index },
            (Some(x), Some(y)) if x == y => {
                if context.len() == context_len {
                    context.pop_front();
                }
                if context_len > 0 {
                    context.push_back(x);
                }
                index += 1;
            }
            (a, b) => {
                return Divergence::At {
                    index,
                    context: context.into_iter().collect(),
                    a,
                    b,
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::host::port::Space;
    use crate::host::trace::event::{Data, Event};
    use crate::host::trace::file::{TraceHeader, TraceWriter};

    fn trace(values: &[u32]) -> Vec<u8> {
        let h = TraceHeader {
            emulator_version: "t".into(),
            bar1_size: 1 << 28,
            note: String::new(),
            inject: "none".into(),
            dma_write_data: false,
        };
        let mut out = Vec::new();
        let mut w = TraceWriter::new(&mut out, &h).unwrap();
        for (i, v) in values.iter().enumerate() {
            w.push(&Record {
                cycle: i as u64,
                event: Event::Read {
                    space: Space::Bar(0),
                    offset: 0,
                    data: Data::from_slice(&v.to_le_bytes()),
                    ok: true,
                },
            })
            .unwrap();
        }
        drop(w);
        out
    }

    fn diff(a: &[u8], b: &[u8]) -> Divergence {
        first_divergence(
            TraceReader::new(a).unwrap(),
            TraceReader::new(b).unwrap(),
            3,
        )
    }

    #[test]
    fn identical_differing_and_shorter() {
        let a = trace(&[1, 2, 3, 4, 5]);
        assert!(matches!(diff(&a, &a), Divergence::Identical { records: 5 }));
        let b = trace(&[1, 2, 3, 9, 5]);
        match diff(&a, &b) {
            Divergence::At { index, context, .. } => {
                assert_eq!(index, 3);
                assert_eq!(context.len(), 3);
            }
            d => panic!("{d}"),
        }
        let text = diff(&a, &b).to_string();
        assert!(text.contains("first divergence at event #3"), "{text}");
        assert!(text.contains("0x00000009"), "{text}");
        let c = trace(&[1, 2]);
        match diff(&a, &c) {
            Divergence::At { index, b: None, .. } => assert_eq!(index, 2),
            d => panic!("{d}"),
        }
    }
}
