//! The bodies of the fuzz targets (issue 14), shared by the libFuzzer targets in `fuzz/`
//! (`cargo fuzz run <target>`, nightly or `RUSTC_BOOTSTRAP=1`) and by
//! `qemu-glue/tests/fuzz_corpus.rs`, which drives the same bodies on a stable toolchain over
//! a seed corpus (inputs made from `traces/`, the regression inputs) and a bounded number of
//! deterministic mutations, so CI covers them without nightly.
//!
//! Every body takes arbitrary bytes, must not panic, hang or allocate without bound, and
//! checks what must hold whatever the input (the device keeps its identity; a trace reader
//! yields only records before an error). A crash found by libFuzzer becomes a file under
//! `qemu-glue/tests/fuzz-regressions/<target>/`, run by the corpus test ever after.

use std::io::{Read, Write};
use std::os::unix::net::UnixStream;
use std::sync::OnceLock;

use emulator::pci::BarLayout;
use emulator::port::{self, Space};
use emulator::trace::codec::{Decoder, State};
use emulator::trace::replay::{device_for, replay};
use emulator::trace::{perfetto, Event, TraceHeader, TraceReader, TraceWriter};
use emulator::Device;
use vm_memory::{Bytes, GuestAddress, GuestMemoryMmap};

use crate::transport::vfio_user::{irqs, regions, Gp100Backend};

/// The fuzz targets, by the name `cargo fuzz run` takes.
pub const TARGETS: [&str; 5] = [
    "vfio_user_stream",
    "device_accesses",
    "trace_file",
    "trace_records",
    "decoders",
];

/// Runs target `name` on `data`. Unknown names panic (a test bug).
pub fn run(name: &str, data: &[u8]) {
    match name {
        "vfio_user_stream" => vfio_user_stream(data),
        "device_accesses" => device_accesses(data),
        "trace_file" => trace_file(data),
        "trace_records" => trace_records(data),
        "decoders" => decoders(data),
        other => panic!("no fuzz target {other}"),
    }
}

const BOOT_0: u32 = 0x1300_00a1;

fn boot0(d: &mut Device) -> u32 {
    let mut b = [0u8; 4];
    port::read(d, Space::Bar(0), 0, &mut b).expect("BAR0 offset 0 is always readable");
    u32::from_le_bytes(b)
}

/// One server for every input (its listener is never used: inputs come over socket pairs).
fn server() -> &'static vfio_user::Server {
    static S: OnceLock<vfio_user::Server> = OnceLock::new();
    S.get_or_init(|| {
        let dir = std::env::temp_dir().join(format!("gp100emu-fuzz-{}", std::process::id()));
        let _ = std::fs::create_dir_all(&dir);
        let path = dir.join("unused.sock");
        let _ = std::fs::remove_file(&path);
        vfio_user::Server::new(&path, true, irqs(), regions(BarLayout::default()))
            .expect("a listener for the fuzz server")
    })
}

/// `vfio_user_stream`: the bytes, as a client's byte stream (written in pieces whose sizes
/// come from the first byte, so split headers happen), to the vfio-user server and the
/// gp100emu backend behind it. The server must return (the stream ends) without panicking,
/// answer at most what it was sent plus bounded replies, and the device must keep its id.
pub fn vfio_user_stream(data: &[u8]) {
    let (piece, data) = match data.split_first() {
        Some((&p, rest)) => (usize::from(p % 64) + 1, rest.to_vec()),
        None => (1, Vec::new()),
    };
    let (client, server_end) = UnixStream::pair().expect("socketpair");
    let mut reader = client.try_clone().expect("clone");
    let drain = std::thread::spawn(move || {
        let mut n = 0u64;
        let mut buf = [0u8; 65536];
        while let Ok(k) = reader.read(&mut buf) {
            if k == 0 {
                break;
            }
            n += k as u64;
        }
        n
    });
    let mut writer = client;
    let feed = std::thread::spawn(move || {
        for c in data.chunks(piece) {
            if writer.write_all(c).is_err() {
                break;
            }
        }
        let _ = writer.shutdown(std::net::Shutdown::Write);
        writer
    });
    let mut backend = Gp100Backend::new(Device::new());
    let _ = server().run_stream(&mut backend, server_end);
    drop(feed.join().expect("feeder"));
    drain.join().expect("drain");
    // Whatever the stream did, the backend still answers as the same function.
    let mut id = [0u8; 4];
    vfio_user::ServerBackend::region_read(&mut backend, port::REGION_CONFIG, 0, &mut id)
        .expect("config read");
    assert_eq!(u32::from_le_bytes(id), 0x15f8_10de, "vendor and device id");
}

/// Bytes of one [`device_accesses`] operation.
pub const DEVICE_OP: usize = 9;
/// Most operations one input runs.
pub const MAX_DEVICE_OPS: usize = 8192;
/// Guest RAM behind the device in [`device_accesses`].
pub const FUZZ_RAM: u64 = 1 << 20;

/// One [`device_accesses`] operation: what it touches.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OpSpace {
    /// BAR0, BAR1, BAR3.
    Bar(u8),
    /// Config space.
    Config,
    /// Guest RAM (a write puts data there for the device to fetch by DMA).
    Ram,
    /// A device reset.
    Reset,
}

/// Encodes an operation: kind byte (space 2:0, write 3, size 5:4 = 1/2/4/8 bytes), offset
/// u32 LE, value u32 LE.
pub fn device_op(space: OpSpace, write: bool, size: usize, offset: u32, value: u32) -> [u8; 9] {
    let s = match space {
        OpSpace::Bar(0) => 0,
        OpSpace::Bar(1) => 1,
        OpSpace::Bar(_) => 2,
        OpSpace::Config => 3,
        OpSpace::Ram => 4,
        OpSpace::Reset => 5,
    };
    let sz = match size {
        1 => 0,
        2 => 1,
        8 => 3,
        _ => 2,
    };
    let mut op = [0u8; DEVICE_OP];
    op[0] = s | u8::from(write) << 3 | sz << 4;
    op[1..5].copy_from_slice(&offset.to_le_bytes());
    op[5..9].copy_from_slice(&value.to_le_bytes());
    op
}

/// `device_accesses`: the bytes as up to [`MAX_DEVICE_OPS`] operations on a device with
/// [`FUZZ_RAM`] of guest RAM: BAR and config reads and writes (every engine behind BAR0 runs:
/// FIFO, copy engine, MMU, fault buffer, access engine, checker), guest-RAM writes and
/// resets. The device must keep answering and keep its identity.
pub fn device_accesses(data: &[u8]) {
    let mut dev = Device::new();
    let ram = GuestMemoryMmap::<()>::from_ranges(&[(GuestAddress(0), FUZZ_RAM as usize)])
        .expect("fuzz guest RAM");
    dev.set_sysmem(Box::new(ram.clone()));
    for op in data.chunks_exact(DEVICE_OP).take(MAX_DEVICE_OPS) {
        let kind = op[0];
        let write = kind & 8 != 0;
        let size = 1usize << ((kind >> 4) & 3);
        let offset = u64::from(u32::from_le_bytes(op[1..5].try_into().expect("4")));
        let value = u32::from_le_bytes(op[5..9].try_into().expect("4"));
        let mut bytes = [0u8; 8];
        bytes[..4].copy_from_slice(&value.to_le_bytes());
        bytes[4..].copy_from_slice(&value.to_le_bytes());
        let space = match kind & 7 {
            0 => Space::Bar(0),
            1 => Space::Bar(1),
            2 => Space::Bar(3),
            3 => Space::Config,
            4 => {
                let _ = ram.write_slice(&bytes[..size], GuestAddress(offset % FUZZ_RAM));
                continue;
            }
            5 if write => {
                dev.reset();
                continue;
            }
            _ => Space::Bar(0),
        };
        if write {
            let _ = port::write(&mut dev, space, offset, &bytes[..size]);
        } else {
            let mut b = [0u8; 8];
            let _ = port::read(&mut dev, space, offset, &mut b[..size]);
        }
        let _ = dev.take_events();
    }
    assert_eq!(boot0(&mut dev), BOOT_0, "the device keeps its identity");
}

/// Seeds for [`device_accesses`] from a trace: its BAR and config accesses of up to 8
/// bytes, in order, as operations; `skip` inputs skipped first, at most `max` taken.
pub fn device_ops_from_trace(bytes: &[u8], skip: usize, max: usize) -> Vec<u8> {
    let Ok(r) = TraceReader::new(bytes) else {
        return Vec::new();
    };
    let mut out = Vec::new();
    let ops = r
        .map_while(Result::ok)
        .filter_map(|rec| {
            let (space, offset, data, write) = match rec.event {
                Event::Read {
                    space,
                    offset,
                    data,
                    ..
                } => (space, offset, data, false),
                Event::Write {
                    space,
                    offset,
                    data,
                    ..
                } => (space, offset, data, true),
                Event::Reset => return Some(device_op(OpSpace::Reset, true, 4, 0, 0).to_vec()),
                _ => return None,
            };
            let s = match space {
                Space::Bar(0) => OpSpace::Bar(0),
                Space::Bar(1) => OpSpace::Bar(1),
                Space::Bar(3) => OpSpace::Bar(3),
                Space::Config => OpSpace::Config,
                _ => return None,
            };
            let v = data.to_vec();
            if v.len() > 8 || offset.saturating_add(8) > u64::from(u32::MAX) {
                return None;
            }
            // An op carries at most 4 bytes: an 8-byte access (the guest's memset_io through
            // BAR2) becomes its two 4-byte halves, low first.
            let mut op = Vec::new();
            for (i, half) in v.chunks(4).enumerate() {
                let mut w = [0u8; 4];
                w[..half.len()].copy_from_slice(half);
                op.extend_from_slice(&device_op(
                    s,
                    write,
                    half.len(),
                    (offset + 4 * i as u64) as u32,
                    u32::from_le_bytes(w),
                ));
            }
            Some(op)
        })
        .skip(skip)
        .take(max);
    for op in ops {
        out.extend_from_slice(&op);
    }
    // An 8-byte access gave two ops: keep the bound in ops.
    out.truncate(max * 9);
    out
}

/// Most records one trace input is read for (the reader's own bounds make each cheap).
const MAX_TRACE_RECORDS: u64 = 1 << 20;
/// The export's output bound in [`trace_file`].
const MAX_EXPORT_BYTES: u64 = 64 << 20;

/// A writer that fails past a bound (the export's output-size limit).
struct Bounded(u64);

impl Write for Bounded {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        if buf.len() as u64 > self.0 {
            return Err(std::io::Error::other("bound"));
        }
        self.0 -= buf.len() as u64;
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// `trace_file`: the bytes as a trace file, through the reader, replay (when its header
/// builds a device) and the Perfetto export. None may panic; the reader's records stop at
/// its first error.
pub fn trace_file(data: &[u8]) {
    let Ok(mut r) = TraceReader::new(data) else {
        return;
    };
    let mut n = 0u64;
    while n < MAX_TRACE_RECORDS {
        match r.next_record() {
            Ok(Some(_)) => n += 1,
            Ok(None) => break,
            Err(_) => {
                assert!(
                    matches!(r.next_record(), Ok(None)),
                    "nothing after an error"
                );
                break;
            }
        }
    }
    if let Ok(r) = TraceReader::new(data) {
        if let Ok(dev) = device_for(r.header()) {
            let _ = replay(r, dev);
        }
    }
    if let Ok(r) = TraceReader::new(data) {
        let _ = perfetto::export(r, Bounded(MAX_EXPORT_BYTES), true);
    }
}

/// `trace_records`: the bytes as the decompressed payload of one chunk (the first two bytes
/// give its record count), first through the record decoder directly, then wrapped in a
/// well-formed file (right lengths, zstd, checksums) through [`trace_file`], so mutations
/// reach the decoder and replay instead of stopping at a checksum.
pub fn trace_records(data: &[u8]) {
    let (count, payload) = match data {
        [a, b, rest @ ..] => (u32::from(u16::from_le_bytes([*a, *b])).max(1), rest),
        _ => return,
    };
    let mut d = Decoder::new(payload);
    let mut st = State::new();
    for _ in 0..count {
        if d.at_end() || d.next(&mut st).is_err() {
            break;
        }
    }
    trace_file(&wrap_chunk(payload, count));
}

/// A trace file (default header, FLAG_END_RECORD) holding `payload` as one chunk of `count`
/// records, with an end record; what [`trace_records`] feeds the reader.
pub fn wrap_chunk(payload: &[u8], count: u32) -> Vec<u8> {
    let header = TraceHeader {
        emulator_version: "fuzz".into(),
        bar1_size: 256 << 20,
        note: String::new(),
        inject: "none".into(),
        dma_write_data: false,
    };
    let mut out = Vec::new();
    drop(TraceWriter::new(&mut out, &header).expect("in-memory header"));
    // Drop wrote the end record; the chunk goes before it.
    let end = out.split_off(out.len() - 16);
    let packed = zstd::bulk::compress(payload, 1).expect("compress");
    out.extend_from_slice(emulator::trace::file::CHUNK_MAGIC);
    out.extend_from_slice(&(packed.len() as u32).to_le_bytes());
    out.extend_from_slice(&(payload.len() as u32).to_le_bytes());
    out.extend_from_slice(&count.to_le_bytes());
    out.extend_from_slice(&crc32fast::hash(&packed).to_le_bytes());
    out.extend_from_slice(&packed);
    // The end record counts the records the file holds.
    let mut e = end;
    e[4..12].copy_from_slice(&u64::from(count).to_le_bytes());
    let crc = crc32fast::hash(&e[..12]);
    e[12..].copy_from_slice(&crc.to_le_bytes());
    out.extend_from_slice(&e);
    out
}

/// `decoders`: the bytes as the text arguments of `gp100emu decode pte/pde/fault` (split at
/// NUL bytes), and as raw fault entries and PTE/PDE words. Errors must be one line without
/// control characters; successes are JSON objects.
pub fn decoders(data: &[u8]) {
    use emulator::decode::{decode_fault, decode_pde, decode_pte};
    let text = String::from_utf8_lossy(data);
    let mut parts = text.split('\0');
    let a = parts.next().unwrap_or("");
    let b = parts.next();
    let check = |r: Result<serde_json::Value, emulator::decode::DecodeError>| match r {
        Ok(v) => assert!(v.is_object()),
        Err(e) => {
            let m = e.to_string();
            assert!(
                !m.chars().any(|c| c.is_control()),
                "control characters echoed: {m:?}"
            );
        }
    };
    check(decode_pte(a));
    check(decode_pde(a, b));
    check(decode_fault(a));
    for entry in data.chunks_exact(32).take(64) {
        let e = emulator::fault::FaultEntry::decode(entry.try_into().expect("32"));
        let _ = serde_json::to_value(e).expect("plain struct");
    }
    for w in data.chunks_exact(16).take(64) {
        let lo = u64::from_le_bytes(w[..8].try_into().expect("8"));
        let hi = u64::from_le_bytes(w[8..].try_into().expect("8"));
        let d = emulator::mmu::DualPde { lo, hi };
        let _ = d.is_pte();
        let _ = serde_json::to_value(emulator::mmu::Pte(lo).fields()).expect("plain struct");
        let _ = (d.small(), d.big_address(), d.big_aperture());
    }
}
