//! Drives `gp100emu`'s vfio-user server with the `vfio_user` crate's own client,
//! over a real UNIX socket: the same protocol QEMU speaks, without QEMU.

use std::os::fd::AsRawFd;
use std::path::PathBuf;
use std::thread;
use std::time::Duration;

use emulator::window::{WINDOW_BASE, WINDOW_ID_VALUE, WINDOW_SCRATCH0, WINDOW_WRITES};
use emulator::Device;
use qemu_glue::transport::vfio_user::{serve, Gp100Backend};
use vfio_user::Client;

fn socket_path(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("gp100emu-test-{}-{name}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    dir.join("gpu.sock")
}

fn start(name: &str) -> (Client, thread::JoinHandle<Gp100Backend>) {
    let path = socket_path(name);
    let p = path.clone();
    let server = thread::spawn(move || serve(&p, Device::new()).expect("serve"));
    // Bounded wait for the listener.
    for _ in 0..200 {
        if let Ok(c) = Client::new(&path) {
            return (c, server);
        }
        thread::sleep(Duration::from_millis(10));
    }
    panic!("server never listened on {}", path.display());
}

fn rd32(c: &mut Client, region: u32, offset: u64) -> u32 {
    let mut b = [0u8; 4];
    c.region_read(region, offset, &mut b).unwrap();
    u32::from_le_bytes(b)
}

fn memfd(size: u64) -> std::fs::File {
    // SAFETY: valid NUL-terminated name; the fd is owned by the File below.
    let fd = unsafe { libc::memfd_create(c"gp100emu-ram".as_ptr(), 0) };
    assert!(fd >= 0);
    // SAFETY: fresh descriptor, owned once.
    let f = unsafe { <std::fs::File as std::os::fd::FromRawFd>::from_raw_fd(fd) };
    f.set_len(size).unwrap();
    f
}

#[test]
fn regions_config_bar0_window_dma_and_reset() {
    let (mut c, server) = start("main");
    assert_eq!(c.region(0).unwrap().size, 16 << 20, "BAR0 16 MiB");
    assert_eq!(c.region(1).unwrap().size, 256 << 20, "BAR1");
    assert_eq!(c.region(3).unwrap().size, 32 << 20, "BAR3");
    assert_eq!(c.region(2).unwrap().size, 0);
    assert_eq!(c.region(7).unwrap().size, 256, "config space");

    assert_eq!(rd32(&mut c, 7, 0), 0x15f8_10de, "vendor/device");
    assert_eq!(rd32(&mut c, 7, 8) >> 8, 0x03_0200, "class");
    let mut whole = [0u8; 256];
    c.region_read(7, 0, &mut whole).unwrap();
    assert_eq!(
        &whole[..4],
        &[0xde, 0x10, 0xf8, 0x15],
        "QEMU reads all of config space at once"
    );
    assert_eq!(whole[0x34], 0x60, "capability pointer");
    assert_eq!(rd32(&mut c, 0, 0), 0x1300_00a1, "PMC_BOOT_0");
    assert_eq!(
        rd32(&mut c, 0, 0x12_3450),
        0xbadf_1100,
        "undecoded register: PRI error"
    );

    let base = (WINDOW_BASE + WINDOW_SCRATCH0) as u64;
    assert_eq!(rd32(&mut c, 0, WINDOW_BASE as u64), WINDOW_ID_VALUE);
    c.region_write(0, base, &0x5a5a_1234u32.to_le_bytes())
        .unwrap();
    assert_eq!(rd32(&mut c, 0, base), 0x5a5a_1234);
    assert_eq!(rd32(&mut c, 0, (WINDOW_BASE + WINDOW_WRITES) as u64), 1);

    // BAR sizing through config space.
    c.region_write(7, 0x10, &[0xff; 4]).unwrap();
    assert_eq!(rd32(&mut c, 7, 0x10), 0xff00_0000);

    // Hostile accesses get hardware answers, and the server keeps serving.
    assert_eq!(
        rd32(&mut c, 0, (16 << 20) - 2),
        0xffff_ffff,
        "runs past BAR0"
    );
    assert_eq!(rd32(&mut c, 6, 0), 0xffff_ffff, "no ROM");
    assert_eq!(
        rd32(&mut c, 1, 0),
        0,
        "BAR1 at reset: a physical window onto (zeroed) video memory"
    );
    assert_eq!(
        rd32(&mut c, 1, (256 << 20) - 2),
        0xffff_ffff,
        "runs past BAR1"
    );
    let mut odd = [0u8; 3];
    c.region_read(0, 0, &mut odd).unwrap();
    assert_eq!(odd, [0xff; 3], "3-byte access refused with all-ones");

    let ram = memfd(1 << 20);
    c.dma_map(0, 0x10_0000, 1 << 20, ram.as_raw_fd()).unwrap();

    // INTx eventfd wiring (VFIO_IRQ_SET_DATA_EVENTFD | ACTION_TRIGGER).
    // SAFETY: eventfd(0, 0) returns a fresh descriptor owned by the File.
    let efd =
        unsafe { <std::fs::File as std::os::fd::FromRawFd>::from_raw_fd(libc::eventfd(0, 0)) };
    c.set_irqs(0, (1 << 2) | (1 << 5), 0, 1, &[efd.as_raw_fd()])
        .unwrap();

    c.reset().unwrap();
    assert_eq!(
        rd32(&mut c, 0, base),
        0,
        "reset cleared the scratch register"
    );
    assert_eq!(rd32(&mut c, 0, 0), 0x1300_00a1);

    c.shutdown().unwrap();
    let backend = server.join().expect("server thread");
    assert_eq!(
        backend.ram().mapped_bytes(),
        1 << 20,
        "the memfd was mapped as guest RAM"
    );
    let s = backend.stats();
    assert!(s.bad_accesses >= 4, "hostile accesses counted: {s:?}");
    assert_eq!(
        backend.device().unknown_offsets().collect::<Vec<_>>(),
        vec![0x12_3450]
    );
}
