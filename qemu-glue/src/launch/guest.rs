//! Running one guest: the device process and QEMU as children, the serial
//! console streamed line by line to a caller's handler, and both children
//! cleaned up on success, failure, timeout and Ctrl-C.
//!
//! The device process is `gp100emu serve` (this same binary) in its own process,
//! so that a crash of the device or of QEMU is seen as such and reported with
//! its cause rather than taking the launcher down or hanging it.

use std::ffi::OsString;
use std::fs::File;
use std::io::{BufRead, BufReader, Read};
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, ExitStatus, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use log::{debug, warn};

use super::qemu::Qemu;

/// Set by SIGINT/SIGTERM; polled by the run loop.
static INTERRUPTED: AtomicBool = AtomicBool::new(false);

extern "C" fn on_signal(_: libc::c_int) {
    INTERRUPTED.store(true, Ordering::SeqCst);
}

fn install_signal_handlers() {
    // SAFETY: the handler only stores to an atomic, which is async-signal-safe.
    unsafe {
        libc::signal(libc::SIGINT, on_signal as *const () as libc::sighandler_t);
        libc::signal(libc::SIGTERM, on_signal as *const () as libc::sighandler_t);
    }
}

/// What to run.
#[derive(Debug, Clone)]
pub struct GuestOptions {
    /// The QEMU to start.
    pub qemu: Qemu,
    /// Guest kernel (bzImage or PVH vmlinux).
    pub kernel: PathBuf,
    /// Guest initramfs.
    pub initrd: PathBuf,
    /// Kernel command line.
    pub append: String,
    /// Guest RAM in MiB.
    pub memory_mib: u32,
    /// Use KVM instead of TCG.
    pub kvm: bool,
    /// Give up on the guest after this long.
    pub timeout: Duration,
    /// Directory for the socket and the children's logs (created; removed on success).
    pub work_dir: PathBuf,
    /// The `gp100emu` binary to start as the device process.
    pub device_exe: PathBuf,
    /// Extra arguments to `gp100emu serve` (e.g. `--trace FILE`).
    pub device_args: Vec<OsString>,
    /// Run QEMU and the device process on this one host CPU. Every MMIO is a
    /// ping-pong between QEMU's threads and the device; on one CPU the hand-offs
    /// are cheap (measured here: 40 µs per guest BAR0 read pinned, 134 µs not).
    pub pin_cpu: Option<usize>,
    /// More QEMU arguments (e.g. `-device edu` for a suite that compares against it).
    pub extra_qemu_args: Vec<OsString>,
}

/// The first CPU this process may run on, the default for [`GuestOptions::pin_cpu`].
pub fn first_allowed_cpu() -> Option<usize> {
    // SAFETY: a zeroed cpu_set_t is a valid empty set; sched_getaffinity fills it.
    unsafe {
        let mut set: libc::cpu_set_t = std::mem::zeroed();
        if libc::sched_getaffinity(0, std::mem::size_of::<libc::cpu_set_t>(), &mut set) != 0 {
            return None;
        }
        (0..libc::CPU_SETSIZE as usize).find(|&c| libc::CPU_ISSET(c, &set))
    }
}

fn pin_to(cmd: &mut std::process::Command, cpu: Option<usize>) {
    let Some(cpu) = cpu else { return };
    // SAFETY: the closure runs in the child between fork and exec and only
    // calls sched_setaffinity, which is async-signal-safe.
    unsafe {
        cmd.pre_exec(move || {
            let mut set: libc::cpu_set_t = std::mem::zeroed();
            libc::CPU_SET(cpu, &mut set);
            if libc::sched_setaffinity(0, std::mem::size_of::<libc::cpu_set_t>(), &set) != 0 {
                return Err(std::io::Error::last_os_error());
            }
            Ok(())
        });
    }
}

/// How a guest run ended.
#[derive(Debug)]
pub enum Ending {
    /// The handler said the guest is done, or QEMU exited by itself.
    QemuExited(ExitStatus),
    /// The guest ran past the timeout.
    TimedOut(Duration),
    /// Ctrl-C or SIGTERM.
    Interrupted,
    /// The device process died while QEMU ran.
    DeviceDied {
        status: ExitStatus,
        log_tail: String,
    },
}

/// What the run produced besides the console lines.
#[derive(Debug)]
pub struct GuestRun {
    /// How it ended.
    pub ending: Ending,
    /// Wall time from QEMU's start to the end.
    pub wall: Duration,
    /// Wall time from QEMU's start to the first line matching the boot marker, if seen.
    pub first_line_at: Option<Duration>,
    /// QEMU's stderr, last lines.
    pub qemu_log_tail: String,
    /// The device process's stderr, last lines.
    pub device_log_tail: String,
}

/// Errors that keep a guest from starting at all.
#[derive(Debug, thiserror::Error)]
pub enum GuestError {
    /// A file the run needs is missing.
    #[error("{what} not found at {path}")]
    Missing { what: &'static str, path: String },
    /// A child could not be started.
    #[error("starting {what}: {source}")]
    Spawn {
        what: &'static str,
        #[source]
        source: std::io::Error,
    },
    /// The device process exited before listening.
    #[error("the device process exited before listening ({status}); its log:\n{log_tail}")]
    DeviceEarlyExit {
        status: ExitStatus,
        log_tail: String,
    },
    /// The device process did not create its socket in time.
    #[error("the device process did not listen on {0} within 10 s")]
    DeviceNoSocket(String),
    /// I/O on the work directory.
    #[error("{what}: {source}")]
    Io {
        what: String,
        #[source]
        source: std::io::Error,
    },
}

/// Whether the caller wants more console lines.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Flow {
    /// Keep going.
    Continue,
    /// The guest is done: let QEMU exit by itself (a short grace), then stop it.
    Done,
}

fn tail_of(path: &Path, lines: usize) -> String {
    let mut s = String::new();
    if let Ok(mut f) = File::open(path) {
        let _ = f.read_to_string(&mut s);
    }
    let v: Vec<&str> = s.lines().collect();
    v[v.len().saturating_sub(lines)..].join("\n")
}

fn stop(child: &mut Child, name: &str) {
    if let Ok(Some(_)) = child.try_wait() {
        return;
    }
    // SAFETY: sending a signal to our own child's pid.
    unsafe {
        libc::kill(child.id() as libc::pid_t, libc::SIGTERM);
    }
    let deadline = Instant::now() + Duration::from_secs(3);
    while Instant::now() < deadline {
        if let Ok(Some(_)) = child.try_wait() {
            return;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    warn!("{name} ignored SIGTERM for 3 s; killing it");
    let _ = child.kill();
    let _ = child.wait();
}

/// Kills both children when dropped, so no path out of [`run_guest`] leaks one.
struct Children {
    device: Child,
    qemu: Option<Child>,
}

impl Drop for Children {
    fn drop(&mut self) {
        if let Some(q) = self.qemu.as_mut() {
            stop(q, "QEMU");
        }
        // With QEMU gone the device sees the socket close and exits by itself, flushing its
        // trace; give it a moment before signalling it.
        let deadline = Instant::now() + Duration::from_secs(2);
        while Instant::now() < deadline {
            if let Ok(Some(_)) = self.device.try_wait() {
                break;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        stop(&mut self.device, "the device process");
    }
}

/// QEMU's wait for one vfio-user reply, in milliseconds (`x-msg-timeout`).
pub const QEMU_MSG_TIMEOUT_MS: u32 = 120_000;

/// The QEMU arguments for a run (without the program itself).
/// The guest CPU under TCG. FSRS, which turns nouveau's `memset_io` into one MMIO message per
/// byte, is hidden by the kernel command line instead ([`crate::run::NO_FSRS`]): `-cpu
/// max,fsrs=off` left the probe trace unchanged. (guest-tests/kernel/gp100emu.config's comment
/// still names `max,fsrs=off`; it is left until the next change of the fragment, since any
/// byte of it is part of the kernel cache key.)
pub const TCG_CPU: &str = "max";

pub fn qemu_args(o: &GuestOptions, socket: &Path) -> Vec<OsString> {
    // x-msg-timeout: how long QEMU waits for the device's reply to one message (5 s by default).
    // A loaded machine (CI's two cores building beside the guest) or one long model step (a
    // checker scan) can take longer; QEMU then fails the access and nouveau sees a bus error
    // (measured: g84_bar_flush timed out in a run beside two kernel builds).
    let dev = format!(
        r#"{{"driver":"vfio-user-pci","socket":{{"path":"{}","type":"unix"}},"x-msg-timeout":{QEMU_MSG_TIMEOUT_MS}}}"#,
        socket.display()
    );
    let mem = format!(
        "memory-backend-memfd,id=mem,size={}M,share=on",
        o.memory_mib
    );
    let mut a: Vec<OsString> = Vec::new();
    let mut push = |s: &str| a.push(s.into());
    if o.kvm {
        push("-accel");
        push("kvm");
        push("-cpu");
        push("host");
    } else {
        push("-accel");
        push("tcg");
        push("-cpu");
        push(TCG_CPU);
    }
    for s in [
        "-m",
        &o.memory_mib.to_string(),
        "-object",
        &mem,
        "-machine",
        "pc,memory-backend=mem",
    ] {
        push(s);
    }
    for s in [
        "-nodefaults",
        "-display",
        "none",
        "-serial",
        "stdio",
        "-monitor",
        "none",
        "-no-reboot",
    ] {
        push(s);
    }
    push("-device");
    push(&dev);
    a.push("-kernel".into());
    a.push(o.kernel.clone().into());
    a.push("-initrd".into());
    a.push(o.initrd.clone().into());
    a.push("-append".into());
    a.push(o.append.clone().into());
    a.extend(o.extra_qemu_args.iter().cloned());
    a
}

/// Starts the device process and QEMU, streams console lines to `on_line`
/// until it says [`Flow::Done`], QEMU exits, the timeout passes, the device
/// dies or the user interrupts; then stops both children.
pub fn run_guest(
    o: &GuestOptions,
    mut on_line: impl FnMut(&str) -> Flow,
) -> Result<GuestRun, GuestError> {
    for (what, p) in [("guest kernel", &o.kernel), ("guest initramfs", &o.initrd)] {
        if !p.is_file() {
            return Err(GuestError::Missing {
                what,
                path: p.display().to_string(),
            });
        }
    }
    install_signal_handlers();
    std::fs::create_dir_all(&o.work_dir).map_err(|source| GuestError::Io {
        what: format!("creating {}", o.work_dir.display()),
        source,
    })?;
    let socket = o.work_dir.join("gpu.sock");
    let device_log = o.work_dir.join("device.log");
    let qemu_log = o.work_dir.join("qemu.log");
    let open = |p: &Path| {
        File::create(p).map_err(|source| GuestError::Io {
            what: format!("creating {}", p.display()),
            source,
        })
    };

    let mut device_cmd = std::process::Command::new(&o.device_exe);
    // `device_exe` may be /proc/self/exe: keep the name `ps` shows readable.
    device_cmd.arg0("gp100emu");
    pin_to(&mut device_cmd, o.pin_cpu);
    let device = device_cmd
        .arg("serve")
        .arg("--socket")
        .arg(&socket)
        .args(&o.device_args)
        .stdin(Stdio::null())
        .stdout(open(&device_log)?)
        .stderr(open(&device_log)?)
        .process_group(0)
        .spawn()
        .map_err(|source| GuestError::Spawn {
            what: "the device process",
            source,
        })?;
    let mut kids = Children { device, qemu: None };

    // Bounded wait for the listener.
    let deadline = Instant::now() + Duration::from_secs(10);
    while !socket.exists() {
        if let Ok(Some(status)) = kids.device.try_wait() {
            return Err(GuestError::DeviceEarlyExit {
                status,
                log_tail: tail_of(&device_log, 20),
            });
        }
        if Instant::now() > deadline {
            return Err(GuestError::DeviceNoSocket(socket.display().to_string()));
        }
        std::thread::sleep(Duration::from_millis(20));
    }

    let mut cmd = o.qemu.command();
    cmd.args(qemu_args(o, &socket));
    pin_to(&mut cmd, o.pin_cpu);
    debug!("QEMU: {cmd:?}");
    let mut qemu = cmd
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(open(&qemu_log)?)
        .process_group(0)
        .spawn()
        .map_err(|source| GuestError::Spawn {
            what: "QEMU",
            source,
        })?;
    let started = Instant::now();
    let stdout = qemu.stdout.take().expect("piped stdout");
    kids.qemu = Some(qemu);

    let (tx, rx) = mpsc::channel::<String>();
    std::thread::spawn(move || {
        let mut r = BufReader::new(stdout);
        let mut buf = Vec::new();
        loop {
            buf.clear();
            match r.read_until(b'\n', &mut buf) {
                Ok(0) | Err(_) => break,
                Ok(_) => {
                    let line = String::from_utf8_lossy(&buf);
                    let line = line.trim_end_matches(['\n', '\r']).replace('\r', "");
                    if tx.send(line).is_err() {
                        break;
                    }
                }
            }
        }
    });

    let mut first_line_at = None;
    let mut done_at: Option<Instant> = None;
    let ending = loop {
        match rx.recv_timeout(Duration::from_millis(100)) {
            Ok(line) => {
                first_line_at.get_or_insert_with(|| started.elapsed());
                if on_line(&line) == Flow::Done && done_at.is_none() {
                    done_at = Some(Instant::now());
                }
                // No `continue`: a guest that floods the console must still time out.
            }
            Err(mpsc::RecvTimeoutError::Timeout) => {}
            Err(mpsc::RecvTimeoutError::Disconnected) => {
                // QEMU closed its stdout: it is exiting.
                let q = kids.qemu.as_mut().expect("qemu");
                let status = q.wait().map_err(|e| GuestError::Io {
                    what: "waiting for QEMU".into(),
                    source: e,
                })?;
                break Ending::QemuExited(status);
            }
        }
        if INTERRUPTED.load(Ordering::SeqCst) {
            break Ending::Interrupted;
        }
        if started.elapsed() > o.timeout {
            break Ending::TimedOut(o.timeout);
        }
        if let Ok(Some(status)) = kids.device.try_wait() {
            break Ending::DeviceDied {
                status,
                log_tail: tail_of(&device_log, 20),
            };
        }
        if let Some(t) = done_at {
            if t.elapsed() > Duration::from_secs(10) {
                let q = kids.qemu.as_mut().expect("qemu");
                warn!(
                    "the guest finished its suite but QEMU did not exit within 10 s; stopping it"
                );
                stop(q, "QEMU");
                let status = q.wait().map_err(|e| GuestError::Io {
                    what: "waiting for QEMU".into(),
                    source: e,
                })?;
                break Ending::QemuExited(status);
            }
        }
    };
    let wall = started.elapsed();
    drop(kids);
    let run = GuestRun {
        ending,
        wall,
        first_line_at,
        qemu_log_tail: tail_of(&qemu_log, 20),
        device_log_tail: tail_of(&device_log, 40),
    };
    Ok(run)
}

/// Whether the user interrupted (Ctrl-C) during the last run.
pub fn interrupted() -> bool {
    INTERRUPTED.load(Ordering::SeqCst)
}
