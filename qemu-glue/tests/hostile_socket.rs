//! Raw hostile bytes on the vfio-user socket: the device process must end with
//! a clear error (or keep serving), never crash on a signal or hang.

use std::io::Write;
use std::os::unix::net::UnixStream;
use std::os::unix::process::ExitStatusExt;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

fn header(id: u16, cmd: u16, size: u32) -> Vec<u8> {
    let mut h = Vec::new();
    h.extend_from_slice(&id.to_le_bytes());
    h.extend_from_slice(&cmd.to_le_bytes());
    h.extend_from_slice(&size.to_le_bytes());
    h.extend_from_slice(&0u32.to_le_bytes()); // flags
    h.extend_from_slice(&0u32.to_le_bytes()); // error
    h
}

fn run_case(name: &str, bytes: Vec<u8>) {
    let dir = std::env::temp_dir().join(format!("gp100emu-hostile-{}-{name}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let sock = dir.join("s.sock");
    let mut child = Command::new(env!("CARGO_BIN_EXE_gp100emu"))
        .args(["serve", "--socket"])
        .arg(&sock)
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let t = Instant::now();
    let mut s = loop {
        if let Ok(s) = UnixStream::connect(&sock) {
            break s;
        }
        assert!(
            t.elapsed() < Duration::from_secs(10),
            "{name}: server never listened"
        );
        std::thread::sleep(Duration::from_millis(10));
    };
    let _ = s.write_all(&bytes);
    std::thread::sleep(Duration::from_millis(200));
    drop(s);
    let t = Instant::now();
    let status = loop {
        if let Some(st) = child.try_wait().unwrap() {
            break st;
        }
        if t.elapsed() > Duration::from_secs(10) {
            let _ = child.kill();
            panic!("{name}: the device process hung after hostile input");
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    assert_eq!(
        status.signal(),
        None,
        "{name}: killed by a signal: {status:?}"
    );
    let mut err = String::new();
    std::io::Read::read_to_string(child.stderr.as_mut().unwrap(), &mut err).unwrap();
    // Either it served and saw the peer close (exit 0), or it reports a clear error.
    if !status.success() {
        assert!(
            err.contains("gp100emu serve:"),
            "{name}: no clear error message: {err}"
        );
    }
}

#[test]
fn truncated_version_message() {
    run_case("short-version", header(1, 1, 4));
}

#[test]
fn region_read_of_four_gigabytes() {
    let mut m = header(1, 9, 32);
    m.extend_from_slice(&0u64.to_le_bytes()); // offset
    m.extend_from_slice(&0u32.to_le_bytes()); // region
    m.extend_from_slice(&u32::MAX.to_le_bytes()); // count
    run_case("huge-read", m);
}

#[test]
fn unknown_command_and_garbage() {
    run_case("garbage", vec![0xff; 64]);
    run_case("unknown-cmd", header(7, 0x7fff, 16));
}
