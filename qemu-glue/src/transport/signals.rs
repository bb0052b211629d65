//! SIGTERM and SIGINT for `gp100emu serve`: the trace being recorded is finished (its
//! pending chunk and the end record written, see `emulator::trace::file`) and the socket
//! removed before the process exits with 128 + the signal number, as a shell reports it.
//!
//! The signals are blocked in every thread and taken by one thread with `sigwait(3)`, so
//! the work runs in ordinary code, not in an async-signal handler, and the trace is
//! finished under the same lock every record is written under: it is never cut mid-event.

use std::fs::File;
use std::io::BufWriter;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};

use emulator::trace::TraceWriter;

/// Set once this process has bound the socket: only then does a signal remove it (a
/// second server refused on a busy path must not remove the first one's socket).
pub static SOCKET_BOUND: AtomicBool = AtomicBool::new(false);

/// A trace writer shared between the server and the signal thread.
pub type SharedTrace = Arc<Mutex<TraceWriter<BufWriter<File>>>>;

/// Errors setting the signal thread up.
#[derive(Debug, thiserror::Error)]
pub enum SignalError {
    /// `pthread_sigmask` failed.
    #[error("blocking SIGTERM/SIGINT: {0}")]
    Mask(std::io::Error),
    /// The thread could not be started.
    #[error("starting the signal thread: {0}")]
    Thread(std::io::Error),
}

fn term_set() -> libc::sigset_t {
    // SAFETY: sigemptyset/sigaddset initialise a sigset_t we own.
    unsafe {
        let mut set: libc::sigset_t = std::mem::zeroed();
        libc::sigemptyset(&mut set);
        libc::sigaddset(&mut set, libc::SIGTERM);
        libc::sigaddset(&mut set, libc::SIGINT);
        set
    }
}

/// Blocks SIGTERM and SIGINT in the calling thread (and the threads it starts later) and
/// starts the thread that handles them. Call it before any other thread is started.
pub fn finish_on_signal(socket: PathBuf, trace: Option<SharedTrace>) -> Result<(), SignalError> {
    let set = term_set();
    // SAFETY: a valid, initialised set; the old mask is not wanted.
    let rc = unsafe { libc::pthread_sigmask(libc::SIG_BLOCK, &set, std::ptr::null_mut()) };
    if rc != 0 {
        return Err(SignalError::Mask(std::io::Error::from_raw_os_error(rc)));
    }
    std::thread::Builder::new()
        .name("signals".into())
        .spawn(move || {
            let mut sig = 0;
            // SAFETY: the set is initialised and blocked in every thread; sig is writable.
            while unsafe { libc::sigwait(&set, &mut sig) } != 0 {}
            // Whatever happens below (stderr may be a closed pipe, which makes eprintln!
            // panic), the process exits: the signals stay blocked, so nothing else would
            // end it.
            let _ = std::panic::catch_unwind(move || finish(sig, &socket, trace.as_ref()));
            std::process::exit(128 + sig);
        })
        .map_err(SignalError::Thread)?;
    Ok(())
}

/// The signal's work: finish the trace, say so on stderr (ignoring a closed stderr), remove
/// the socket this process bound.
fn finish(sig: i32, socket: &std::path::Path, trace: Option<&SharedTrace>) {
    use std::io::Write;
    let name = if sig == libc::SIGINT {
        "SIGINT"
    } else {
        "SIGTERM"
    };
    let mut err = std::io::stderr();
    if let Some(t) = trace {
        let mut w = t.lock().unwrap_or_else(|p| p.into_inner());
        let _ = match w.finish() {
            Ok(()) => writeln!(
                err,
                "gp100emu serve: {name}: trace finished, {} events, {} bytes",
                w.records(),
                w.bytes_written()
            ),
            Err(e) => writeln!(err, "gp100emu serve: {name}: finishing the trace: {e}"),
        };
    } else {
        let _ = writeln!(err, "gp100emu serve: {name}: exiting");
    }
    if SOCKET_BOUND.load(Ordering::SeqCst) {
        let _ = std::fs::remove_file(socket);
    }
}
