//! The vfio-user server's own share of a guest MMIO access, without QEMU: a raw client on
//! another thread drives [`serve`] over a real UNIX socket with the messages QEMU sends for a
//! BAR read (REGION_READ, answered) and a posted BAR write (REGION_WRITE with NO_REPLY).
//! What a guest read costs beyond this is QEMU's (its vCPU thread, its proxy's iothread) and
//! the scheduler's.
//!
//! Message layouts (vfio-user protocol, QEMU docs/interop/vfio-user.rst): a 16-byte header
//! {message id u16, command u16, message size u32, flags u32, error u32}; REGION_READ/WRITE
//! add {offset u64, region u32, count u32} and, for a write or a read's reply, the data.

use std::io::{Read, Write};
use std::os::unix::net::UnixStream;
use std::path::PathBuf;
use std::time::{Duration, Instant};

use emulator::Device;

use super::vfio_user::serve;

/// vfio-user command numbers (the protocol's command table).
const CMD_VERSION: u16 = 1;
const CMD_REGION_READ: u16 = 9;
const CMD_REGION_WRITE: u16 = 10;
/// Header flags: the low nibble is the message type (0 command, 1 reply); bit 4 NO_REPLY.
const FLAG_NO_REPLY: u32 = 1 << 4;
const HEADER: usize = 16;
const REGION_ACCESS: usize = HEADER + 16;
/// BAR0 offset 0: PMC_BOOT_0, a plain register read.
const BOOT0: u64 = 0;
/// The vendor window's scratch register (emulator::window), a plain register write.
const SCRATCH: u64 = (emulator::window::WINDOW_BASE + emulator::window::WINDOW_SCRATCH0) as u64;

fn header(out: &mut Vec<u8>, id: u16, command: u16, size: usize, flags: u32) {
    out.extend_from_slice(&id.to_le_bytes());
    out.extend_from_slice(&command.to_le_bytes());
    out.extend_from_slice(&(size as u32).to_le_bytes());
    out.extend_from_slice(&flags.to_le_bytes());
    out.extend_from_slice(&0u32.to_le_bytes());
}

fn region_access(
    out: &mut Vec<u8>,
    id: u16,
    command: u16,
    flags: u32,
    offset: u64,
    data: &[u8],
    count: u32,
) {
    header(out, id, command, REGION_ACCESS + data.len(), flags);
    out.extend_from_slice(&offset.to_le_bytes());
    out.extend_from_slice(&0u32.to_le_bytes()); // region 0: BAR0
    out.extend_from_slice(&count.to_le_bytes());
    out.extend_from_slice(data);
}

/// Reads one reply and returns its size; panics on a reply that is not one (this is our own
/// server in our own process: a broken reply is a bug to see at once).
fn read_reply(s: &mut UnixStream, buf: &mut Vec<u8>) -> usize {
    let mut h = [0u8; HEADER];
    s.read_exact(&mut h).expect("reply header");
    let size = u32::from_le_bytes(h[4..8].try_into().unwrap()) as usize;
    let flags = u32::from_le_bytes(h[8..12].try_into().unwrap());
    assert_eq!(flags & 0xf, 1, "a reply");
    assert_eq!(flags & (1 << 5), 0, "not an error reply");
    buf.resize(size - HEADER, 0);
    s.read_exact(buf).expect("reply body");
    size
}

/// A connected client (VERSION negotiated) and the server thread.
fn connect() -> (UnixStream, std::thread::JoinHandle<()>, PathBuf) {
    let dir = std::env::temp_dir().join(format!("gp100emu-bench-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("temp dir");
    let path = dir.join("gpu.sock");
    let p = path.clone();
    let server = std::thread::spawn(move || {
        if let Err(e) = serve(&p, Device::new()) {
            log::warn!("bench server: {e}");
        }
    });
    let mut s = None;
    for _ in 0..500 {
        if let Ok(c) = UnixStream::connect(&path) {
            s = Some(c);
            break;
        }
        std::thread::sleep(Duration::from_millis(10));
    }
    let mut s = s.expect("the bench server listens within 5 s");
    let mut m = Vec::new();
    let caps = b"{\"capabilities\":{}}\0"; // as QEMU sends them: JSON, NUL-terminated
    header(&mut m, 0, CMD_VERSION, HEADER + 4 + caps.len(), 0);
    m.extend_from_slice(&[0, 0, 0, 0]); // major 0, minor 0
    m.extend_from_slice(caps);
    s.write_all(&m).expect("VERSION");
    read_reply(&mut s, &mut Vec::new());
    (s, server, dir)
}

/// Median of `v` (sorted in place).
fn median(v: &mut [f64]) -> f64 {
    v.sort_by(f64::total_cmp);
    v[v.len() / 2]
}

/// `transport_read_round_trip_us` (median of 64-read batches) and
/// `transport_posted_writes_per_s` (bursts of 256 posted 4-byte writes closed by one read).
pub fn run(budget: Duration) -> Vec<(&'static str, f64)> {
    let (mut s, server, dir) = connect();
    let mut reply = Vec::new();
    let mut id = 1u16;
    let mut read_msg = Vec::new();
    let t = Instant::now();
    let mut per_read = Vec::new();
    while t.elapsed() < budget / 2 || per_read.len() < 5 {
        let b = Instant::now();
        for _ in 0..64 {
            read_msg.clear();
            id = id.wrapping_add(1);
            region_access(&mut read_msg, id, CMD_REGION_READ, 0, BOOT0, &[], 4);
            s.write_all(&read_msg).expect("REGION_READ");
            read_reply(&mut s, &mut reply);
            assert_eq!(&reply[16..20], &0x1300_00a1u32.to_le_bytes(), "PMC_BOOT_0");
        }
        per_read.push(b.elapsed().as_secs_f64() * 1e6 / 64.0);
    }
    let mut burst = Vec::new();
    for i in 0..256u32 {
        region_access(
            &mut burst,
            i as u16,
            CMD_REGION_WRITE,
            FLAG_NO_REPLY,
            SCRATCH,
            &i.to_le_bytes(),
            4,
        );
    }
    let t = Instant::now();
    let mut writes = 0u64;
    while t.elapsed() < budget / 2 || writes < 1024 {
        s.write_all(&burst).expect("posted writes");
        read_msg.clear();
        region_access(&mut read_msg, 0, CMD_REGION_READ, 0, SCRATCH, &[], 4);
        s.write_all(&read_msg).expect("REGION_READ");
        read_reply(&mut s, &mut reply);
        assert_eq!(
            &reply[16..20],
            &255u32.to_le_bytes(),
            "the last posted write landed"
        );
        writes += 256;
    }
    let writes_per_s = writes as f64 / t.elapsed().as_secs_f64();
    drop(s);
    let _ = server.join();
    let _ = std::fs::remove_dir_all(dir);
    vec![
        ("transport_read_round_trip_us", median(&mut per_read)),
        ("transport_posted_writes_per_s", writes_per_s),
    ]
}
