//! Replay: feed a trace's inputs to a fresh model and check every output against the
//! recording, stopping at the first mismatch.

use std::collections::VecDeque;
use std::io::Read;
use std::sync::{Arc, Mutex};

use crate::device::Device;
use crate::host::port;
use crate::pci::BarLayout;

use super::event::{Data, Event, ModelEvent, Record};
use super::file::{TraceError, TraceReader};
use crate::mem::{MemError, SysMem, Target};

/// Where replay and recording parted.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Mismatch {
    /// Index of the record (0-based) at which they diverged.
    pub index: u64,
    /// The recorded record.
    pub recorded: Record,
    /// What the model did instead.
    pub replayed: String,
    /// The records just before it, for context.
    pub context: Vec<Record>,
}

impl std::fmt::Display for Mismatch {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        writeln!(f, "replay diverged at event #{}:", self.index)?;
        for (i, r) in self.context.iter().enumerate() {
            let idx = self.index - self.context.len() as u64 + i as u64;
            writeln!(f, "    #{idx:<8} {r}")?;
        }
        writeln!(f, "  recorded #{:<8} {}", self.index, self.recorded)?;
        write!(f, "  replayed           {}", self.replayed)
    }
}

/// The result of a replay.
#[derive(Debug)]
pub struct ReplayOutcome {
    /// Records replayed (up to and including a mismatch).
    pub events: u64,
    /// The model's GPU clock at the end.
    pub final_cycle: u64,
    /// The first divergence, if any.
    pub mismatch: Option<Mismatch>,
    /// The file was damaged after the good prefix that was replayed.
    pub damaged: Option<TraceError>,
}

impl ReplayOutcome {
    fn stopped(
        events: u64,
        dev: &Device,
        mismatch: Option<Mismatch>,
        damaged: Option<TraceError>,
    ) -> Self {
        ReplayOutcome {
            events,
            final_cycle: dev.gpu_cycles(),
            mismatch,
            damaged,
        }
    }

    /// Whether the whole trace replayed exactly.
    pub fn exact(&self) -> bool {
        self.mismatch.is_none() && self.damaged.is_none()
    }
}

const CONTEXT: usize = 6;

/// Most model records a recording holds after one input: the device keeps at most
/// `MAX_PENDING_EVENTS` per input and ends with one `EventsDropped` past that. A file with
/// more is damaged or crafted, and look-ahead stops there instead of buffering it all.
pub const LOOKAHEAD_RECORDS: u64 = crate::device::MAX_PENDING_EVENTS as u64 + 1;
/// Most decoded bytes of model records after one input: the DMA log's data bound plus 64
/// bytes for each record (a DMA or walk record is well under that).
pub const LOOKAHEAD_BYTES: u64 =
    crate::mem::phys::MAX_DMA_LOG_BYTES as u64 + 64 * LOOKAHEAD_RECORDS;

/// Reads records with lookahead over the model events that follow an input.
struct Lookahead<R: Read> {
    reader: TraceReader<R>,
    buf: VecDeque<Record>,
    err: Option<TraceError>,
    /// The look-ahead passed its bound (see [`LOOKAHEAD_RECORDS`]).
    over: bool,
}

impl<R: Read> Lookahead<R> {
    fn next(&mut self) -> Result<Option<Record>, TraceError> {
        if let Some(r) = self.buf.pop_front() {
            return Ok(Some(r));
        }
        if let Some(e) = self.err.take() {
            return Err(e);
        }
        self.reader.next_record()
    }

    /// The model events recorded right after the current input (without consuming them).
    fn following_models(&mut self) -> impl Iterator<Item = &ModelEvent> {
        let start = self.reader.bytes_decoded();
        while self.err.is_none()
            && self
                .buf
                .back()
                .is_none_or(|r| matches!(r.event, Event::Model(_)))
        {
            if self.buf.len() as u64 > LOOKAHEAD_RECORDS
                || self.reader.bytes_decoded() - start > LOOKAHEAD_BYTES
            {
                self.over = true;
                break;
            }
            match self.reader.next_record() {
                Ok(Some(r)) => self.buf.push_back(r),
                Ok(None) => break,
                Err(e) => self.err = Some(e),
            }
        }
        self.buf.iter().map_while(|r| match &r.event {
            Event::Model(m) => Some(m),
            _ => None,
        })
    }
}

/// One DMA access the recording says the device made, in order.
#[derive(Debug)]
enum RecordedDma {
    Read {
        addr: u64,
        len: u32,
        data: Option<Vec<u8>>,
    },
    Write {
        ok: bool,
    },
}

/// Guest RAM during replay: serves the reads the recording holds for the current input, in
/// order, and answers writes as they were answered. An access the recording does not have
/// next fails, and the model's changed DMA event then shows the divergence.
#[derive(Debug, Clone, Default)]
pub struct ReplayMem {
    queue: Arc<Mutex<VecDeque<RecordedDma>>>,
}

impl ReplayMem {
    /// Queues the DMA accesses among `models` (dropping what is left of the previous
    /// input's); whether it queued any, and how many events the recording says it dropped.
    fn load<'a>(&self, models: impl Iterator<Item = &'a ModelEvent>) -> (bool, Option<u64>) {
        let mut q = self.queue.lock().unwrap_or_else(|p| p.into_inner());
        q.clear();
        let mut dropped = None;
        for m in models {
            match m {
                ModelEvent::EventsDropped { count } => dropped = Some(*count),
                ModelEvent::DmaRead { addr, len, data } => q.push_back(RecordedDma::Read {
                    addr: *addr,
                    len: *len,
                    data: data.as_ref().map(Data::to_vec),
                }),
                ModelEvent::DmaWrite { ok, .. } => q.push_back(RecordedDma::Write { ok: *ok }),
                _ => {}
            }
        }
        (!q.is_empty(), dropped)
    }
}

impl SysMem for ReplayMem {
    fn read(&self, addr: u64, buf: &mut [u8]) -> Result<(), MemError> {
        let mut q = self.queue.lock().unwrap_or_else(|p| p.into_inner());
        let fail = Err(MemError::OutOfRange {
            target: Target::SysCoherent,
            addr,
        });
        match q.pop_front() {
            Some(RecordedDma::Read {
                addr: a,
                len,
                data: Some(d),
            }) if a == addr && len as usize == buf.len() && d.len() == buf.len() => {
                buf.copy_from_slice(&d);
                Ok(())
            }
            _ => fail,
        }
    }

    fn write(&self, addr: u64, _buf: &[u8]) -> Result<(), MemError> {
        let mut q = self.queue.lock().unwrap_or_else(|p| p.into_inner());
        match q.pop_front() {
            Some(RecordedDma::Write { ok: true }) => Ok(()),
            _ => Err(MemError::OutOfRange {
                target: Target::SysCoherent,
                addr,
            }),
        }
    }
}

/// Builds the model a trace was recorded against; a header naming a seeded bug this
/// gp100emu does not know is an error (the trace is damaged or from a newer gp100emu).
pub fn device_for(header: &super::file::TraceHeader) -> Result<Device, TraceError> {
    let inject = crate::check::Inject::parse(&header.inject).ok_or_else(|| {
        TraceError::BadHeader(format!(
            "it names a seeded bug '{}' this gp100emu does not know",
            header.inject
        ))
    })?;
    let layout = BarLayout {
        bar1: header.bar1_size,
        ..BarLayout::default()
    };
    layout
        .check()
        .map_err(|e| TraceError::BadHeader(format!("bar1_size: {e}")))?;
    let mut d = Device::with_layout(layout);
    d.set_inject(inject);
    d.set_dma_write_data(header.dma_write_data);
    Ok(d)
}

/// The first of the model events an input made (`ours`) that differs from those recorded
/// after it, as a mismatch at that model record, with the input in the context; `None` when
/// they agree.
fn first_model_difference(
    input: &Record,
    index: u64,
    context: &VecDeque<Record>,
    ours: &[ModelEvent],
    recorded: &[&ModelEvent],
    now: u64,
) -> Option<Mismatch> {
    let n = ours.len().max(recorded.len());
    let k = (0..n).find(|&k| ours.get(k) != recorded.get(k).copied())?;
    let model = |m: &ModelEvent| Record {
        cycle: input.cycle,
        event: Event::Model(m.clone()),
    };
    let mut ctx: Vec<Record> = context.iter().cloned().collect();
    ctx.push(input.clone());
    ctx.extend(recorded[..k].iter().map(|m| model(m)));
    let ctx = ctx.split_off(ctx.len().saturating_sub(CONTEXT));
    let clock = format!("the input ends at GPU cycle {now}, not {}", input.cycle);
    Some(Mismatch {
        index: index + 1 + k as u64,
        recorded: recorded.get(k).map_or_else(|| input.clone(), |m| model(m)),
        replayed: match (ours.get(k), recorded.get(k)) {
            (Some(o), Some(_)) => format!("model: {o} (and {clock})"),
            (Some(o), None) => format!("model: {o} (the recording does not have it) (and {clock})"),
            (None, _) => format!("nothing (the model did not do this; {clock})"),
        },
        context: ctx,
    })
}

/// Replays `reader` through `dev`.
pub fn replay<R: Read>(
    reader: TraceReader<R>,
    mut dev: Device,
) -> Result<ReplayOutcome, TraceError> {
    let mut reader = Lookahead {
        reader,
        buf: VecDeque::new(),
        err: None,
        over: false,
    };
    let sys = ReplayMem::default();
    dev.set_sysmem(Box::new(sys.clone()));
    let mut context: VecDeque<Record> = VecDeque::new();
    let mut index = 0u64;
    let mut level = false;
    // Whether the recorded-DMA queue may hold something.
    let mut dma_loaded = false;
    // A level change the model made that the recording must show next.
    let mut pending_irq: Option<bool> = None;
    // Model events the model produced for the last input that the recording must show next.
    let mut pending_model: VecDeque<ModelEvent> = VecDeque::new();
    dev.set_event_log(true);
    let mut buf = vec![0u8; port::MAX_CONFIG_ACCESS];
    let fail = |rec: &Record, replayed: String, context: &VecDeque<Record>, index: u64| Mismatch {
        index,
        recorded: rec.clone(),
        replayed,
        context: context.iter().cloned().collect(),
    };
    loop {
        let rec = match reader.next() {
            Ok(Some(r)) => r,
            Ok(None) => break,
            Err(
                e @ (TraceError::Corrupt { .. }
                | TraceError::CutOff { .. }
                | TraceError::TooManyModelEvents { .. }),
            ) => return Ok(ReplayOutcome::stopped(index, &dev, None, Some(e))),
            Err(e) => return Err(e),
        };
        let is_input = !matches!(rec.event, Event::Irq { .. } | Event::Model(_));
        if is_input {
            // Most inputs make no DMA access: lock the queue only to fill it or to empty
            // what the previous input left.
            if reader.following_models().next().is_some() && reader.over {
                let e = TraceError::TooManyModelEvents {
                    index,
                    limit: LOOKAHEAD_RECORDS,
                    bytes: LOOKAHEAD_BYTES,
                };
                return Ok(ReplayOutcome::stopped(index, &dev, None, Some(e)));
            }
            let mut models = reader.following_models().peekable();
            if models.peek().is_some() || dma_loaded {
                let (loaded, dropped) = sys.load(models);
                dma_loaded = loaded;
                if let Some(count) = dropped {
                    return Ok(ReplayOutcome::stopped(
                        index,
                        &dev,
                        None,
                        Some(TraceError::Incomplete { index, count }),
                    ));
                }
            }
        }
        if !matches!(rec.event, Event::Model(_)) {
            if let Some(m) = pending_model.front() {
                let m = fail(
                    &rec,
                    format!("model: {m} (the model did this; the recording did not)"),
                    &context,
                    index,
                );
                return Ok(ReplayOutcome::stopped(index + 1, &dev, Some(m), None));
            }
        }
        if is_input {
            if let Some(l) = pending_irq {
                let m = fail(
                    &rec,
                    format!(
                        "irq {} (the model changed its interrupt level; the recording did not)",
                        if l { "raised" } else { "lowered" }
                    ),
                    &context,
                    index,
                );
                return Ok(ReplayOutcome::stopped(index + 1, &dev, Some(m), None));
            }
        }
        let mismatch: Option<String> = match &rec.event {
            Event::Read {
                space,
                offset,
                data,
                ok,
            } => {
                let n = data.len().min(buf.len());
                let b = &mut buf[..n];
                b.fill(0);
                let got_ok = port::read(&mut dev, *space, *offset, b).is_ok();
                if got_ok != *ok || !data.matches(b) {
                    Some(format!(
                        "read  {space}+{offset:#08x} -> {}{}",
                        Data::from_slice(b),
                        if got_ok { "" } else { " (refused)" }
                    ))
                } else {
                    None
                }
            }
            Event::Write {
                space,
                offset,
                data,
                ok,
            } => {
                let got_ok = match data {
                    Data::Small { value, .. } => port::write(
                        &mut dev,
                        *space,
                        *offset,
                        &value.to_le_bytes()[..data.len()],
                    ),
                    Data::Bytes(b) => port::write(&mut dev, *space, *offset, b),
                }
                .is_ok();
                (got_ok != *ok).then(|| {
                    format!(
                        "write {space}+{offset:#08x} <- {data}{}",
                        if got_ok { "" } else { " (refused)" }
                    )
                })
            }
            // Guest RAM is served from the recorded DMA reads, so the map itself changes
            // nothing the replayed model computes; maps are kept for the record and the
            // timeline.
            Event::DmaMap { .. } | Event::DmaUnmap { .. } => None,
            Event::Reset => {
                dev.reset();
                level = false;
                None
            }
            // Through the rule for old String reasons (hw/event.rs): an old recorded event
            // matches the typed one with the same text.
            Event::Model(m) => match pending_model.pop_front() {
                Some(ours) if ours.matches_recorded(m) => None,
                Some(ours) => Some(format!("model: {ours}")),
                None => Some("nothing (the model did not do this)".to_string()),
            },
            Event::Irq { asserted } => {
                if pending_irq == Some(*asserted) {
                    pending_irq = None;
                    None
                } else {
                    Some(format!(
                        "no interrupt change (level stays {})",
                        if level { "raised" } else { "lowered" }
                    ))
                }
            }
        };
        let mismatch = mismatch.or_else(|| {
            (dev.gpu_cycles() != rec.cycle)
                .then(|| format!("{} at GPU cycle {}", rec.event, dev.gpu_cycles()))
        });
        if let Some(replayed) = mismatch {
            // An input answered right but at another clock: what the model did while
            // handling it (a walk, a DMA access, a fault) usually says why.
            if is_input && dev.gpu_cycles() != rec.cycle {
                let ours = dev.take_events();
                let recorded: Vec<&ModelEvent> = reader.following_models().collect();
                if let Some(m) = first_model_difference(
                    &rec,
                    index,
                    &context,
                    &ours,
                    &recorded,
                    dev.gpu_cycles(),
                ) {
                    return Ok(ReplayOutcome::stopped(m.index + 1, &dev, Some(m), None));
                }
            }
            let m = fail(&rec, replayed, &context, index);
            return Ok(ReplayOutcome::stopped(index + 1, &dev, Some(m), None));
        }
        if is_input && dev.has_events() {
            pending_model.extend(dev.take_events());
        }
        if is_input && !matches!(rec.event, Event::Reset) {
            let now = dev.irq_asserted();
            if now != level {
                level = now;
                pending_irq = Some(now);
            }
        }
        if context.len() == CONTEXT {
            context.pop_front();
        }
        context.push_back(rec);
        index += 1;
    }
    if let Some(m) = pending_model.front() {
        let last = context.back().cloned().unwrap_or(Record {
            cycle: 0,
            event: Event::Reset,
        });
        let m = Mismatch {
            index,
            recorded: last,
            replayed: format!("model: {m} after the last event; the recording ends without it"),
            context: context.iter().cloned().collect(),
        };
        return Ok(ReplayOutcome::stopped(index, &dev, Some(m), None));
    }
    if let Some(l) = pending_irq {
        let last = context.back().cloned().unwrap_or(Record {
            cycle: 0,
            event: Event::Reset,
        });
        let m = Mismatch {
            index,
            recorded: last,
            replayed: format!(
                "irq {} after the last event; the recording ends without it",
                if l { "raised" } else { "lowered" }
            ),
            context: context.iter().cloned().collect(),
        };
        return Ok(ReplayOutcome::stopped(index, &dev, Some(m), None));
    }
    Ok(ReplayOutcome::stopped(index, &dev, None, None))
}

/// Records what a host does to a device, the way the transport does it: every port access
/// plus the interrupt level changes that follow. Used by the vfio-user server and by tests.
#[derive(Debug, Default)]
pub struct Recorder {
    level: bool,
}

impl Recorder {
    /// A recorder for a device that was just created or reset.
    pub fn new() -> Self {
        Self::default()
    }

    /// The records for one access the device just handled: the access itself, what the
    /// model did while handling it, then an `Irq` record if the interrupt level changed.
    /// The device's event log must be on ([`Device::set_event_log`]).
    pub fn after(&mut self, dev: &mut Device, event: Event, out: &mut Vec<Record>) {
        let reset = matches!(event, Event::Reset);
        out.push(Record {
            cycle: dev.gpu_cycles(),
            event,
        });
        for m in dev.take_events() {
            out.push(Record {
                cycle: dev.gpu_cycles(),
                event: Event::Model(m),
            });
        }
        if reset {
            self.level = false;
            return;
        }
        let now = dev.irq_asserted();
        if now != self.level {
            self.level = now;
            out.push(Record {
                cycle: dev.gpu_cycles(),
                event: Event::Irq { asserted: now },
            });
        }
    }
}

/// Performs a read through the port and returns its event.
pub fn read_event(dev: &mut Device, space: port::Space, offset: u64, data: &mut [u8]) -> Event {
    let ok = port::read(dev, space, offset, data).is_ok();
    Event::Read {
        space,
        offset,
        data: Data::from_slice(data),
        ok,
    }
}

/// Performs a write through the port and returns its event.
pub fn write_event(dev: &mut Device, space: port::Space, offset: u64, data: &[u8]) -> Event {
    let ok = port::write(dev, space, offset, data).is_ok();
    Event::Write {
        space,
        offset,
        data: Data::from_slice(data),
        ok,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::host::port::Space;
    use crate::host::trace::file::{TraceHeader, TraceWriter};

    fn header(bar1: u64) -> TraceHeader {
        TraceHeader {
            emulator_version: "test".into(),
            bar1_size: bar1,
            note: String::new(),
            inject: "none".into(),
            dma_write_data: false,
        }
    }

    /// A little session: config probing, BAR sizing, boot0, the vendor window, a bad access,
    /// interrupt enable and a reset.
    fn session(dev: &mut Device) -> Vec<Record> {
        dev.set_event_log(true);
        let mut rec = Recorder::new();
        let mut out = Vec::new();
        let mut cfg = [0u8; 256];
        let e = read_event(dev, Space::Config, 0, &mut cfg);
        rec.after(dev, e, &mut out);
        for bar_off in [0x10u64, 0x14, 0x18, 0x1c] {
            let e = write_event(dev, Space::Config, bar_off, &[0xff; 4]);
            rec.after(dev, e, &mut out);
            let mut b = [0u8; 4];
            let e = read_event(dev, Space::Config, bar_off, &mut b);
            rec.after(dev, e, &mut out);
        }
        let mut b = [0u8; 4];
        let e = read_event(dev, Space::Bar(0), 0, &mut b);
        rec.after(dev, e, &mut out);
        let e = write_event(dev, Space::Bar(0), 0xff0010, &0xdead_beefu32.to_le_bytes());
        rec.after(dev, e, &mut out);
        let e = read_event(dev, Space::Bar(0), 0xff0020, &mut b);
        rec.after(dev, e, &mut out);
        let e = read_event(dev, Space::Bar(0), 0x123450, &mut b);
        rec.after(dev, e, &mut out);
        let mut big = [0u8; 16];
        let e = read_event(dev, Space::Bar(0), 0, &mut big);
        rec.after(dev, e, &mut out);
        // A TLB invalidate: the model records what it processed.
        let e = write_event(dev, Space::Bar(0), 0x100cbc, &0x8000_0001u32.to_le_bytes());
        rec.after(dev, e, &mut out);
        dev.reset();
        rec.after(dev, Event::Reset, &mut out);
        let e = read_event(dev, Space::Bar(0), 0xff0010, &mut b);
        rec.after(dev, e, &mut out);
        out
    }

    /// Replays `recs` as a file with header `h`, through a fresh model for `h`.
    fn replay_records(h: &TraceHeader, recs: &[Record]) -> ReplayOutcome {
        let bytes = encode(h, recs);
        replay(
            TraceReader::new(&bytes[..]).unwrap(),
            device_for(h).unwrap(),
        )
        .unwrap()
    }

    fn encode(h: &TraceHeader, recs: &[Record]) -> Vec<u8> {
        let mut out = Vec::new();
        let mut w = TraceWriter::new(&mut out, h).unwrap();
        for r in recs {
            w.push(r).unwrap();
        }
        drop(w);
        out
    }

    #[test]
    fn a_recorded_session_replays_exactly() {
        let h = header(256 << 20);
        let recs = session(&mut device_for(&h).unwrap());
        let bytes = encode(&h, &recs);
        let reader = TraceReader::new(&bytes[..]).unwrap();
        let dev = device_for(reader.header()).unwrap();
        let out = replay(reader, dev).unwrap();
        assert!(out.exact(), "{:?}", out.mismatch.map(|m| m.to_string()));
        assert_eq!(out.events, recs.len() as u64);
        assert_eq!(out.final_cycle, recs.last().unwrap().cycle);
    }

    #[test]
    fn a_changed_model_fails_at_the_first_affected_event() {
        // Recorded with a 256 MiB BAR1, replayed against a model with 512 MiB: the first
        // output that differs is the BAR1 sizing read (BAR1's low dword is config 0x14; the
        // read after writing all ones returns the size mask).
        let h = header(256 << 20);
        let recs = session(&mut device_for(&h).unwrap());
        let bytes = encode(&h, &recs);
        let reader = TraceReader::new(&bytes[..]).unwrap();
        let changed = Device::with_layout(BarLayout {
            bar1: 512 << 20,
            ..BarLayout::default()
        });
        let out = replay(reader, changed).unwrap();
        let m = out.mismatch.expect("the changed model must diverge");
        let expected_index = recs
            .iter()
            .position(|r| {
                matches!(
                    r.event,
                    Event::Read {
                        space: Space::Config,
                        offset: 0x14,
                        ..
                    }
                )
            })
            .unwrap() as u64;
        assert_eq!(m.index, expected_index, "{m}");
        assert!(m.to_string().contains("CFG+0x000014"), "{m}");
    }

    #[test]
    fn an_edited_output_is_caught() {
        let h = header(256 << 20);
        let mut recs = session(&mut device_for(&h).unwrap());
        let i = recs
            .iter()
            .position(|r| {
                matches!(
                    r.event,
                    Event::Read {
                        space: Space::Bar(0),
                        offset: 0,
                        ..
                    }
                )
            })
            .unwrap();
        if let Event::Read { data, .. } = &mut recs[i].event {
            *data = Data::from_slice(&0x1400_00a1u32.to_le_bytes());
        }
        let out = replay_records(&h, &recs);
        assert_eq!(out.mismatch.unwrap().index, i as u64);
    }

    /// The rule for old String reasons (hw/event.rs): a trace that recorded the access
    /// engine's failure as an old `AccessError` replays exactly when its text is the typed
    /// reason's, and fails at that event when it is not.
    #[test]
    fn an_old_string_reason_replays_as_the_typed_event_with_the_same_text() {
        use crate::window::{AE_CHID, AE_LEN, AE_OP, WINDOW_BASE};
        let h = header(256 << 20);
        let mut dev = device_for(&h).unwrap();
        dev.set_event_log(true);
        let mut rec = Recorder::new();
        let mut recs = Vec::new();
        for (reg, v) in [(AE_CHID, 3u32), (AE_LEN, 4), (AE_OP, 1)] {
            let off = u64::from(WINDOW_BASE + reg);
            let e = write_event(&mut dev, Space::Bar(0), off, &v.to_le_bytes());
            rec.after(&mut dev, e, &mut recs);
        }
        let i = recs
            .iter()
            .position(|r| matches!(r.event, Event::Model(ModelEvent::AccessFailed { .. })))
            .expect("the model reports the unbound channel");
        let Event::Model(ModelEvent::AccessFailed { why }) = recs[i].event.clone() else {
            unreachable!()
        };
        assert_eq!(why.to_string(), "channel 3 is not bound");
        let out = replay_records(&h, &recs);
        assert!(out.exact(), "{:?}", out.mismatch.map(|m| m.to_string()));
        // As an older build recorded it: the same text.
        recs[i].event = Event::Model(ModelEvent::AccessError {
            why: why.to_string(),
        });
        let out = replay_records(&h, &recs);
        assert!(out.exact(), "{:?}", out.mismatch.map(|m| m.to_string()));
        assert_eq!(out.events, recs.len() as u64);
        // Another text is a mismatch, reported at that event.
        recs[i].event = Event::Model(ModelEvent::AccessError {
            why: "channel 4 is not bound".into(),
        });
        let out = replay_records(&h, &recs);
        let m = out.mismatch.expect("another text must diverge");
        assert_eq!(m.index, i as u64, "{m}");
        assert!(m.replayed.contains("channel 3 is not bound"), "{m}");
    }

    #[test]
    fn model_events_are_recorded_and_checked() {
        let h = header(256 << 20);
        let mut recs = session(&mut device_for(&h).unwrap());
        let i = recs
            .iter()
            .position(|r| matches!(r.event, Event::Model(_)))
            .expect("the invalidate is in the recording");
        // Dropping the model event from the recording makes replay fail right there.
        recs.remove(i);
        let out = replay_records(&h, &recs);
        let m = out.mismatch.expect("must diverge");
        assert_eq!(m.index, i as u64, "{m}");
        assert!(m.replayed.contains("invalidate"), "{m}");
    }

    #[test]
    fn a_clock_divergence_is_reported_at_the_model_event_that_explains_it() {
        let h = header(256 << 20);
        let mut recs = session(&mut device_for(&h).unwrap());
        let i = recs
            .iter()
            .position(|r| matches!(r.event, Event::Model(ModelEvent::Invalidate { .. })))
            .expect("the invalidate is in the recording");
        // The recording says the invalidate dropped other entries and took longer.
        if let Event::Model(ModelEvent::Invalidate { dropped, .. }) = &mut recs[i].event {
            *dropped += 5;
        }
        recs[i - 1].cycle += 100;
        let out = replay_records(&h, &recs);
        let m = out.mismatch.expect("must diverge");
        assert_eq!(m.index, i as u64, "{m}");
        assert!(
            matches!(
                m.recorded.event,
                Event::Model(ModelEvent::Invalidate { .. })
            ),
            "{m}"
        );
        assert!(m.replayed.contains("model: invalidate"), "{m}");
        assert!(m.replayed.contains("not"), "{m}");
        // The context ends with the input itself.
        assert_eq!(m.context.last(), Some(&recs[i - 1]), "{m}");
        let text = m.to_string();
        assert!(text.contains(&format!("#{:<8}", i - 1)), "{text}");
    }

    #[test]
    fn a_missing_or_extra_interrupt_is_caught() {
        let h = header(256 << 20);
        let recs = vec![Record {
            cycle: 0,
            event: Event::Irq { asserted: true },
        }];
        let out = replay_records(&h, &recs);
        let m = out.mismatch.unwrap();
        assert_eq!(m.index, 0);
        assert!(m.replayed.contains("no interrupt change"), "{m}");
    }

    #[test]
    fn a_damaged_trace_replays_its_good_prefix() {
        let h = header(256 << 20);
        let recs = session(&mut device_for(&h).unwrap());
        let mut bytes = encode(&h, &recs);
        let n = bytes.len();
        bytes.truncate(n - 3);
        let out = replay(
            TraceReader::new(&bytes[..]).unwrap(),
            device_for(&h).unwrap(),
        )
        .unwrap();
        assert!(out.mismatch.is_none());
        assert!(out.damaged.is_some());
        assert!(!out.exact());
    }

    /// A session whose device reads and writes guest RAM through PRAMIN.
    fn dma_session(dev: &mut Device, ram_word: u32) -> Vec<Record> {
        use vm_memory::{Bytes, GuestAddress, GuestMemoryMmap};
        let ram = GuestMemoryMmap::<()>::from_ranges(&[(GuestAddress(0), 0x20_0000)]).unwrap();
        ram.write_obj(ram_word, GuestAddress(0x10_0040)).unwrap();
        dev.set_sysmem(Box::new(ram));
        dev.set_event_log(true);
        let mut rec = Recorder::new();
        let mut out = Vec::new();
        // Window onto system memory at 1 MiB, then a read and a write through it.
        let e = write_event(dev, Space::Bar(0), 0x1700, &0x0200_0010u32.to_le_bytes());
        rec.after(dev, e, &mut out);
        let mut b = [0u8; 4];
        let e = read_event(dev, Space::Bar(0), 0x700040, &mut b);
        rec.after(dev, e, &mut out);
        let e = write_event(dev, Space::Bar(0), 0x700044, &7u32.to_le_bytes());
        rec.after(dev, e, &mut out);
        out
    }

    #[test]
    fn dma_reads_replay_from_the_recording_without_the_guest() {
        let h = header(256 << 20);
        let recs = dma_session(&mut device_for(&h).unwrap(), 0x1234_5678);
        assert!(recs.iter().any(|r| matches!(
            r.event,
            Event::Model(ModelEvent::DmaRead {
                addr: 0x10_0040,
                ..
            })
        )));
        assert!(recs.iter().any(|r| matches!(
            r.event,
            Event::Model(ModelEvent::DmaWrite {
                addr: 0x10_0044,
                ok: true,
                ..
            })
        )));
        let out = replay_records(&h, &recs);
        assert!(out.exact(), "{:?}", out.mismatch.map(|m| m.to_string()));
    }

    #[test]
    fn an_edited_dma_read_is_caught_at_the_read() {
        let h = header(256 << 20);
        let mut recs = dma_session(&mut device_for(&h).unwrap(), 0x1234_5678);
        // The guest's memory "had" another value: the register read that returned it must
        // now differ from the recorded answer.
        for r in &mut recs {
            if let Event::Model(ModelEvent::DmaRead { data: Some(d), .. }) = &mut r.event {
                *d = Data::from_slice(&0x0bad_0bad_u32.to_le_bytes());
            }
        }
        let out = replay_records(&h, &recs);
        let m = out.mismatch.expect("divergence");
        assert!(
            matches!(
                m.recorded.event,
                Event::Read {
                    offset: 0x700040,
                    ..
                }
            ),
            "{m}"
        );
    }

    #[test]
    fn dma_write_contents_are_recorded_and_checked_with_trace_data() {
        let h = TraceHeader {
            dma_write_data: true,
            ..header(256 << 20)
        };
        let mut dev = device_for(&h).unwrap();
        let recs = dma_session(&mut dev, 0x1234_5678);
        let written = recs.iter().find_map(|r| match &r.event {
            Event::Model(ModelEvent::DmaWrite {
                addr: 0x10_0044,
                data,
                ..
            }) => Some(data.clone()),
            _ => None,
        });
        assert_eq!(written, Some(Some(Data::from_slice(&7u32.to_le_bytes()))));
        let out = replay_records(&h, &recs);
        assert!(out.exact(), "{:?}", out.mismatch.map(|m| m.to_string()));

        // The recording says other bytes went out (same CRC kept): replay stops there.
        let mut edited = recs.clone();
        for r in &mut edited {
            if let Event::Model(ModelEvent::DmaWrite { data: Some(d), .. }) = &mut r.event {
                *d = Data::from_slice(&8u32.to_le_bytes());
            }
        }
        let out = replay_records(&h, &edited);
        let m = out.mismatch.expect("divergence");
        assert!(
            matches!(m.recorded.event, Event::Model(ModelEvent::DmaWrite { .. })),
            "{m}"
        );
        assert!(m.replayed.contains("<- 0x00000007"), "{m}");
    }

    #[test]
    fn a_recording_that_dropped_events_stops_replay_with_a_clear_error() {
        let h = header(256 << 20);
        let mut recs = dma_session(&mut device_for(&h).unwrap(), 0x1234_5678);
        // The read through the window: say the device dropped events while handling it.
        let at = recs
            .iter()
            .position(|r| {
                matches!(
                    r.event,
                    Event::Read {
                        offset: 0x700040,
                        ..
                    }
                )
            })
            .unwrap();
        recs.insert(
            at + 1,
            Record {
                cycle: recs[at].cycle,
                event: Event::Model(ModelEvent::EventsDropped { count: 9 }),
            },
        );
        let out = replay_records(&h, &recs);
        assert!(out.mismatch.is_none());
        assert_eq!(out.events, at as u64);
        match out.damaged {
            Some(TraceError::Incomplete { index, count: 9 }) => assert_eq!(index, at as u64),
            other => panic!("expected Incomplete, got {other:?}"),
        }
    }

    #[test]
    fn an_unknown_seeded_bug_in_the_header_is_an_error() {
        let h = TraceHeader {
            inject: "from-the-future".into(),
            ..header(256 << 20)
        };
        let Err(e) = device_for(&h) else {
            panic!("an unknown seeded bug was accepted")
        };
        assert!(e.to_string().contains("from-the-future"), "{e}");
    }

    /// Issue 14: `bar1_size` 0, 3, 4095, 12345 or u64::MAX in a header panicked at the
    /// config-space assert. They are header errors now.
    #[test]
    fn a_bad_bar1_size_in_the_header_is_an_error() {
        for bar1 in [0, 3, 4095, 12345, u64::MAX, 1 << 63] {
            let e = device_for(&header(bar1)).unwrap_err();
            assert!(
                matches!(&e, TraceError::BadHeader(w) if w.contains("bar1_size")),
                "{bar1:#x}: {e:?}"
            );
        }
    }

    /// Issue 14: a trace cut at a chunk boundary replayed "exactly". Without its end record
    /// it is damaged now, after every event it holds replayed.
    #[test]
    fn a_trace_without_its_end_record_is_reported_cut_off() {
        let h = header(256 << 20);
        let recs = session(&mut device_for(&h).unwrap());
        let bytes = encode(&h, &recs);
        let cut = &bytes[..bytes.len() - 16];
        let out = replay(TraceReader::new(cut).unwrap(), device_for(&h).unwrap()).unwrap();
        assert!(out.mismatch.is_none());
        assert_eq!(out.events, recs.len() as u64);
        let e = out.damaged.expect("cut off");
        assert!(
            e.to_string()
                .contains(&format!("cut off after event {}", recs.len())),
            "{e}"
        );
    }

    /// Issue 14: millions of model records after one input were all buffered (1.4 GB). The
    /// look-ahead stops at what a recording can hold and reports the file damaged.
    #[test]
    fn look_ahead_is_bounded() {
        let h = header(256 << 20);
        let mut recs = session(&mut device_for(&h).unwrap());
        recs.truncate(1);
        let cycle = recs[0].cycle;
        let walk = Record {
            cycle,
            event: Event::Model(ModelEvent::AccessError { why: String::new() }),
        };
        recs.extend(std::iter::repeat_n(walk, LOOKAHEAD_RECORDS as usize + 10));
        let out = replay_records(&h, &recs);
        assert!(out.mismatch.is_none(), "{:?}", out.mismatch);
        assert!(
            matches!(
                out.damaged,
                Some(TraceError::TooManyModelEvents { index: 0, .. })
            ),
            "{:?}",
            out.damaged
        );
    }
}
