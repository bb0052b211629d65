//! Raw hostile bytes on the vfio-user socket (issue 14): the device process must answer
//! with an error reply or drop the connection cleanly, never crash, hang or allocate what
//! a message claims; a connection that ends before VERSION leaves the server listening for
//! the next one; a second server on a busy path is refused without disturbing the first;
//! SIGTERM finishes the trace.

use std::io::{Read, Write};
use std::os::unix::net::UnixStream;
use std::os::unix::process::ExitStatusExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::time::{Duration, Instant};

const VERSION: u16 = 1;
const REGION_READ: u16 = 9;
const REGION_WRITE: u16 = 10;
const FLAG_ERROR: u32 = 1 << 5;
const CONFIG_REGION: u32 = 7;

fn header(id: u16, cmd: u16, size: u32) -> Vec<u8> {
    let mut h = Vec::new();
    h.extend_from_slice(&id.to_le_bytes());
    h.extend_from_slice(&cmd.to_le_bytes());
    h.extend_from_slice(&size.to_le_bytes());
    h.extend_from_slice(&0u32.to_le_bytes()); // flags
    h.extend_from_slice(&0u32.to_le_bytes()); // error
    h
}

/// VERSION 0.0 with `json` as its capability bytes (exactly as given: NUL or not).
fn version(id: u16, json: &[u8]) -> Vec<u8> {
    let mut m = header(id, VERSION, 20 + json.len() as u32);
    m.extend_from_slice(&0u16.to_le_bytes());
    m.extend_from_slice(&0u16.to_le_bytes());
    m.extend_from_slice(json);
    m
}

fn good_version(id: u16) -> Vec<u8> {
    version(id, b"{\"capabilities\":{}}\0")
}

/// REGION_READ of `count` bytes at `offset` of `region`.
fn region_read(id: u16, region: u32, offset: u64, count: u32) -> Vec<u8> {
    let mut m = header(id, REGION_READ, 32);
    m.extend_from_slice(&offset.to_le_bytes());
    m.extend_from_slice(&region.to_le_bytes());
    m.extend_from_slice(&count.to_le_bytes());
    m
}

struct Reply {
    flags: u32,
    error: u32,
    body: Vec<u8>,
}

fn read_reply(s: &mut UnixStream) -> Reply {
    s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    let mut h = [0u8; 16];
    s.read_exact(&mut h).expect("a reply header");
    let size = u32::from_le_bytes(h[4..8].try_into().unwrap());
    assert!((16..=(2 << 20)).contains(&size), "reply size {size}");
    let mut body = vec![0u8; size as usize - 16];
    s.read_exact(&mut body).expect("the reply body");
    Reply {
        flags: u32::from_le_bytes(h[8..12].try_into().unwrap()),
        error: u32::from_le_bytes(h[12..16].try_into().unwrap()),
        body,
    }
}

fn dir(name: &str) -> PathBuf {
    let d = std::env::temp_dir().join(format!("gp100emu-hostile-{}-{name}", std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    std::fs::create_dir_all(&d).unwrap();
    d
}

/// A server process, killed if a failing test leaves it running.
struct Kid(Child);

impl std::ops::Deref for Kid {
    type Target = Child;
    fn deref(&self) -> &Child {
        &self.0
    }
}

impl std::ops::DerefMut for Kid {
    fn deref_mut(&mut self) -> &mut Child {
        &mut self.0
    }
}

impl Drop for Kid {
    fn drop(&mut self) {
        if matches!(self.0.try_wait(), Ok(None)) {
            let _ = self.0.kill();
            let _ = self.0.wait();
        }
    }
}

fn spawn(sock: &Path, extra: &[&str]) -> Kid {
    let child = Command::new(env!("CARGO_BIN_EXE_gp100emu"))
        .args(["serve", "--socket"])
        .arg(sock)
        .args(extra)
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let t = Instant::now();
    while !sock.exists() {
        assert!(
            t.elapsed() < Duration::from_secs(20),
            "server never listened"
        );
        std::thread::sleep(Duration::from_millis(10));
    }
    Kid(child)
}

fn wait(child: &mut Child, what: &str) -> (ExitStatus, String) {
    let t = Instant::now();
    let status = loop {
        if let Some(st) = child.try_wait().unwrap() {
            break st;
        }
        if t.elapsed() > Duration::from_secs(20) {
            let _ = child.kill();
            panic!("{what}: the device process hung");
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    let mut err = String::new();
    if let Some(e) = child.stderr.as_mut() {
        e.read_to_string(&mut err).unwrap();
    }
    assert_eq!(status.signal(), None, "{what}: killed by a signal: {err}");
    (status, err)
}

/// `gp100emu replay FILE`: its exit code and stdout.
fn replay(file: &Path) -> (Option<i32>, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_gp100emu"))
        .arg("replay")
        .arg(file)
        .output()
        .unwrap();
    (
        out.status.code(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
    )
}

/// After the hostile connection, a real client still gets served, and its close ends the
/// server with exit 0.
fn still_serves(child: &mut Child, sock: &Path, what: &str) {
    let mut c = vfio_user::Client::new(sock).unwrap_or_else(|e| panic!("{what}: {e}"));
    let mut b = [0u8; 4];
    c.region_read(CONFIG_REGION, 0, &mut b).unwrap();
    assert_eq!(u32::from_le_bytes(b), 0x15f8_10de, "{what}");
    drop(c);
    let (st, err) = wait(child, what);
    assert!(st.success(), "{what}: {st:?} {err}");
}

/// Sends `bytes` on a fresh connection before any VERSION, reads what the server answers
/// until it closes or `replies` replies came, then checks it still serves a real client.
fn before_version(name: &str, bytes: &[u8], replies: usize) -> Vec<Reply> {
    let d = dir(name);
    let sock = d.join("s.sock");
    let mut child = spawn(&sock, &[]);
    let mut s = UnixStream::connect(&sock).unwrap();
    let _ = s.write_all(bytes);
    let got: Vec<Reply> = (0..replies).map(|_| read_reply(&mut s)).collect();
    drop(s);
    if got.iter().any(|r| r.flags & FLAG_ERROR == 0) {
        // VERSION was negotiated: that client's close ends the server.
        let (st, err) = wait(&mut child, name);
        assert!(st.success(), "{name}: {st:?} {err}");
    } else {
        still_serves(&mut child, &sock, name);
    }
    got
}

#[test]
fn short_or_huge_message_sizes_drop_the_connection_only() {
    // Sizes below a header, and up to 4 GiB: nothing is allocated, the connection is
    // dropped, and the next client is served.
    before_version("size-4", &header(1, VERSION, 4), 0);
    before_version("size-4g", &header(1, REGION_READ, u32::MAX), 0);
    before_version("garbage", &[0xff; 64], 0);
    before_version("unknown-cmd", &header(7, 0x7fff, 16), 1);
}

#[test]
fn version_must_be_one_nul_terminated_string() {
    for (name, json) in [
        ("no-nul", &b"{\"capabilities\":{}}"[..]),
        ("interior-nul", &b"{}\0{}\0"[..]),
        ("not-json", &b"nope\0"[..]),
        ("bad-utf8", &b"\xff\xfe\0"[..]),
    ] {
        let r = before_version(name, &version(1, json), 1);
        assert_ne!(r[0].flags & FLAG_ERROR, 0, "{name}: an error reply");
        assert_eq!(r[0].error, libc::EINVAL as u32, "{name}");
    }
    // Shorter than VERSION's fixed part.
    let mut m = header(1, VERSION, 18);
    m.extend_from_slice(&[0, 0]);
    let r = before_version("version-18", &m, 1);
    assert_ne!(r[0].flags & FLAG_ERROR, 0);
}

#[test]
fn nothing_is_served_before_version() {
    // A read before VERSION is refused; VERSION then works on the same connection.
    let mut m = region_read(1, CONFIG_REGION, 0, 4);
    m.extend_from_slice(&good_version(2));
    m.extend_from_slice(&region_read(3, CONFIG_REGION, 0, 4));
    let r = before_version("read-first", &m, 3);
    assert_ne!(r[0].flags & FLAG_ERROR, 0, "refused before VERSION");
    assert_eq!(r[1].flags & FLAG_ERROR, 0, "VERSION accepted");
    assert_eq!(r[2].flags & FLAG_ERROR, 0, "served after VERSION");
    assert_eq!(&r[2].body[16..], &[0xde, 0x10, 0xf8, 0x15]);
}

/// A raw connection that has negotiated VERSION.
fn negotiated(name: &str) -> (Kid, PathBuf, UnixStream) {
    let d = dir(name);
    let sock = d.join("s.sock");
    let child = spawn(&sock, &[]);
    let mut s = UnixStream::connect(&sock).unwrap();
    s.write_all(&good_version(1)).unwrap();
    assert_eq!(read_reply(&mut s).flags & FLAG_ERROR, 0);
    (child, sock, s)
}

#[test]
fn a_header_split_across_sends_is_reassembled() {
    let d = dir("split");
    let sock = d.join("s.sock");
    let mut child = spawn(&sock, &[]);
    let mut s = UnixStream::connect(&sock).unwrap();
    let v = good_version(1);
    s.write_all(&v[..7]).unwrap();
    std::thread::sleep(Duration::from_millis(100));
    s.write_all(&v[7..]).unwrap();
    assert_eq!(read_reply(&mut s).flags & FLAG_ERROR, 0, "VERSION");
    // A version of exactly 20 bytes (no capabilities) is a second VERSION here: refused.
    s.write_all(&version(2, b"")).unwrap();
    assert_ne!(read_reply(&mut s).flags & FLAG_ERROR, 0, "VERSION twice");
    let m = region_read(3, CONFIG_REGION, 0, 4);
    s.write_all(&m[..3]).unwrap();
    std::thread::sleep(Duration::from_millis(50));
    s.write_all(&m[3..]).unwrap();
    let r = read_reply(&mut s);
    assert_eq!(&r.body[16..], &[0xde, 0x10, 0xf8, 0x15]);
    drop(s);
    let (st, err) = wait(&mut child, "split");
    assert!(st.success(), "{err}");
}

#[test]
fn bad_accesses_after_version_get_error_replies_and_the_stream_stays_in_step() {
    let (mut child, _sock, mut s) = negotiated("after-version");
    // A read of 4 GiB: refused before any allocation.
    s.write_all(&region_read(2, CONFIG_REGION, 0, u32::MAX))
        .unwrap();
    let r = read_reply(&mut s);
    assert_ne!(r.flags & FLAG_ERROR, 0);
    assert_eq!(r.error, libc::E2BIG as u32);
    // A write whose count disagrees with its body: the body is consumed, so the next
    // message is still read as a message.
    let mut m = header(3, REGION_WRITE, 32 + 8);
    m.extend_from_slice(&0x10u64.to_le_bytes());
    m.extend_from_slice(&CONFIG_REGION.to_le_bytes());
    m.extend_from_slice(&4096u32.to_le_bytes());
    m.extend_from_slice(&[0xff; 8]);
    s.write_all(&m).unwrap();
    assert_ne!(read_reply(&mut s).flags & FLAG_ERROR, 0);
    // A read too short for its command.
    let mut m = header(4, REGION_READ, 20);
    m.extend_from_slice(&[0; 4]);
    s.write_all(&m).unwrap();
    assert_ne!(read_reply(&mut s).flags & FLAG_ERROR, 0);
    s.write_all(&region_read(5, CONFIG_REGION, 0, 4)).unwrap();
    let r = read_reply(&mut s);
    assert_eq!(r.flags & FLAG_ERROR, 0);
    assert_eq!(&r.body[16..], &[0xde, 0x10, 0xf8, 0x15]);
    drop(s);
    let (st, err) = wait(&mut child, "after-version");
    assert!(st.success(), "{err}");
}

#[test]
fn a_huge_message_after_version_drops_the_connection_with_a_clear_error() {
    let (mut child, _sock, mut s) = negotiated("huge-after-version");
    s.write_all(&header(2, REGION_WRITE, u32::MAX)).unwrap();
    let (st, err) = wait(&mut child, "huge-after-version");
    assert_eq!(st.code(), Some(1), "{err}");
    assert!(
        err.contains("gp100emu serve:") && err.contains("Message size"),
        "{err}"
    );
}

#[test]
fn a_second_server_on_a_busy_path_is_refused_and_the_first_keeps_serving() {
    let d = dir("second");
    let sock = d.join("s.sock");
    let trace = d.join("first.gptrace");
    let mut first = spawn(&sock, &["--trace", trace.to_str().unwrap()]);
    let before = std::fs::metadata(&trace).unwrap().modified().unwrap();
    std::thread::sleep(Duration::from_millis(20));
    // Same socket, same trace file: refused before the trace is touched.
    let mut second = Kid(Command::new(env!("CARGO_BIN_EXE_gp100emu"))
        .args(["serve", "--socket"])
        .arg(&sock)
        .arg("--trace")
        .arg(&trace)
        .stderr(Stdio::piped())
        .spawn()
        .unwrap());
    let (st, err) = wait(&mut second, "second server");
    assert_eq!(st.code(), Some(1), "{err}");
    assert!(err.contains("in use by a live server"), "{err}");
    assert!(sock.exists(), "the first server's socket is still there");
    assert!(
        first.try_wait().unwrap().is_none(),
        "the first server still runs"
    );
    assert_eq!(
        std::fs::metadata(&trace).unwrap().modified().unwrap(),
        before,
        "its trace file was not recreated"
    );
    still_serves(&mut first, &sock, "first server");
}

#[test]
fn sigterm_finishes_the_trace_with_its_pending_chunk() {
    let d = dir("sigterm");
    let sock = d.join("s.sock");
    let trace = d.join("t.gptrace");
    let mut child = spawn(&sock, &["--trace", trace.to_str().unwrap()]);
    let mut c = vfio_user::Client::new(&sock).unwrap();
    let mut b = [0u8; 4];
    for _ in 0..100 {
        c.region_read(CONFIG_REGION, 0, &mut b).unwrap();
    }
    // SAFETY: kill(2) on our own child.
    assert_eq!(unsafe { libc::kill(child.id() as i32, libc::SIGTERM) }, 0);
    let (st, err) = wait(&mut child, "sigterm");
    assert_eq!(st.code(), Some(128 + libc::SIGTERM), "{err}");
    assert!(err.contains("SIGTERM: trace finished"), "{err}");
    assert!(!sock.exists(), "the socket was removed");
    drop(c);
    let (code, text) = replay(&trace);
    assert_eq!(code, Some(0), "{text}");
    assert!(text.contains("100 events replayed exactly"), "{text}");
    // The same file without its end record (16 bytes) is cut off.
    let bytes = std::fs::read(&trace).unwrap();
    let cut = d.join("cut.gptrace");
    std::fs::write(&cut, &bytes[..bytes.len() - 16]).unwrap();
    let (code, text) = replay(&cut);
    assert_eq!(code, Some(1), "{text}");
    assert!(text.contains("cut off after event 100"), "{text}");
}

/// A SIGTERM must end the server even when its stderr is a pipe nobody reads any more (the
/// signal thread's message fails; it used to panic and leave the signals blocked for good).
#[test]
fn sigterm_ends_the_server_when_stderr_is_gone() {
    let d = dir("sigterm-no-stderr");
    let sock = d.join("s.sock");
    let trace = d.join("t.gptrace");
    let mut child = spawn(&sock, &["--trace", trace.to_str().unwrap()]);
    drop(child.stderr.take());
    // SAFETY: kill(2) on our own child.
    assert_eq!(unsafe { libc::kill(child.id() as i32, libc::SIGTERM) }, 0);
    let (status, _) = wait(&mut child, "SIGTERM without stderr");
    assert_eq!(status.code(), Some(128 + libc::SIGTERM));
    let (code, text) = replay(&trace);
    assert_eq!(code, Some(0), "{text}");
}

#[test]
fn a_dma_map_past_the_end_of_its_memfd_is_refused_and_the_server_lives() {
    use std::os::fd::{AsRawFd, FromRawFd};
    let d = dir("short-memfd");
    let sock = d.join("s.sock");
    let mut child = spawn(&sock, &[]);
    let mut c = vfio_user::Client::new(&sock).unwrap();
    // SAFETY: memfd_create with a valid name; the fd is owned by the File.
    let f = unsafe { std::fs::File::from_raw_fd(libc::memfd_create(c"short".as_ptr(), 0)) };
    f.set_len(4096).unwrap();
    // vfio_user's Client does not look at the reply's error flag, so the refusal is seen
    // in the server's log, and in the next map of the same range succeeding.
    c.dma_map(0, 0x10_0000, 1 << 20, f.as_raw_fd()).unwrap();
    c.dma_map(0, 0x10_0000, 4096, f.as_raw_fd()).unwrap();
    let mut b = [0u8; 4];
    c.region_read(CONFIG_REGION, 0, &mut b).unwrap();
    assert_eq!(u32::from_le_bytes(b), 0x15f8_10de);
    drop(c);
    let (st, err) = wait(&mut child, "short-memfd");
    assert!(st.success(), "{err}");
    assert!(
        err.contains("reaches past the end of its file (0x1000 bytes)"),
        "{err}"
    );
    assert!(
        !err.contains("overlaps"),
        "the refused map left nothing mapped: {err}"
    );
}
