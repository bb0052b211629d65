//! The function's interrupt lines as vfio-user carries them: eventfds handed
//! over by `set_irqs`, driven from the model's interrupt condition.
//!
//! Semantics follow Linux VFIO's uapi (`include/uapi/linux/vfio.h`,
//! `VFIO_DEVICE_SET_IRQS`) as QEMU's vfio-user client uses them:
//! - INTx is level-triggered and *automasked*: when the line is asserted and
//!   unmasked, the device signals the eventfd once and masks itself. QEMU
//!   asserts the guest's pin, deasserts it at the next BAR access (its "EOI")
//!   and sends `ACTION_UNMASK`; if the condition still holds the device signals
//!   again at once. That is how a level survives over an edge-carrying eventfd.
//! - MSI is an edge: the device signals on each rising edge of the condition.

use std::fs::File;
use std::io::Write;

use log::{debug, warn};

/// VFIO IRQ index of INTx (`VFIO_PCI_INTX_IRQ_INDEX`).
pub const IRQ_INDEX_INTX: u32 = 0;
/// VFIO IRQ index of MSI (`VFIO_PCI_MSI_IRQ_INDEX`).
pub const IRQ_INDEX_MSI: u32 = 1;

// VFIO_IRQ_SET_* flag bits (vfio.h).
const DATA_NONE: u32 = 1 << 0;
const DATA_BOOL: u32 = 1 << 1;
const DATA_EVENTFD: u32 = 1 << 2;
const ACTION_MASK: u32 = 1 << 3;
const ACTION_UNMASK: u32 = 1 << 4;
const ACTION_TRIGGER: u32 = 1 << 5;
const DATA_TYPE_MASK: u32 = DATA_NONE | DATA_BOOL | DATA_EVENTFD;
const ACTION_TYPE_MASK: u32 = ACTION_MASK | ACTION_UNMASK | ACTION_TRIGGER;

/// Errors of `set_irqs` requests.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum IrqError {
    /// An index this function does not offer (only INTx and MSI).
    #[error("set_irqs for IRQ index {0}, which this function does not have")]
    NoSuchIndex(u32),
    /// A flag combination VFIO does not define or we do not support.
    #[error("set_irqs index {index} with unsupported flags {flags:#x}")]
    BadFlags { index: u32, flags: u32 },
    /// An interrupt fd that is not an eventfd (a pipe would block the server once full).
    #[error("set_irqs: the fd is {0}, not an eventfd; interrupt fds must be eventfds")]
    NotEventfd(String),
    /// A sub-range other than the one vector each line has.
    #[error("set_irqs index {index}: start {start} count {count} outside the single vector")]
    BadRange { index: u32, start: u32, count: u32 },
}

/// What an interrupt line did, for traces and tests.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum IrqSignal {
    /// The INTx eventfd was signalled.
    Intx,
    /// The MSI eventfd was signalled.
    Msi,
}

/// Where a signal goes: an eventfd in production, a recorder in tests.
pub trait IrqSink: Send {
    /// Signals the line once.
    fn signal(&mut self) -> std::io::Result<()>;
}

impl IrqSink for File {
    fn signal(&mut self) -> std::io::Result<()> {
        self.write_all(&1u64.to_ne_bytes())
    }
}

/// An eventfd QEMU handed over, made non-blocking: a signal never waits for a reader.
///
/// eventfd(2): a write adds to a 64-bit counter and blocks only when the counter would
/// overflow; with O_NONBLOCK it fails with EAGAIN instead, and then the counter is already
/// non-zero, so the reader will wake: the signal is delivered. Anything else (a pipe, a
/// file, a socket) could block the server once nobody reads it, so it is refused.
#[derive(Debug)]
pub struct EventFd(File);

impl EventFd {
    /// Checks that `f` is an eventfd (its `/proc/self/fd` link reads `anon_inode:[eventfd]`)
    /// and sets O_NONBLOCK on it.
    pub fn new(f: File) -> Result<Self, IrqError> {
        use std::os::fd::AsRawFd;
        let fd = f.as_raw_fd();
        let kind = std::fs::read_link(format!("/proc/self/fd/{fd}"))
            .map(|p| p.display().to_string())
            .unwrap_or_else(|e| format!("unknown ({e})"));
        if kind != "anon_inode:[eventfd]" {
            return Err(IrqError::NotEventfd(kind));
        }
        // SAFETY: fcntl on a descriptor we own.
        let fl = unsafe { libc::fcntl(fd, libc::F_GETFL) };
        // SAFETY: as above.
        if fl < 0 || unsafe { libc::fcntl(fd, libc::F_SETFL, fl | libc::O_NONBLOCK) } < 0 {
            return Err(IrqError::NotEventfd(format!(
                "{kind}: cannot make it non-blocking: {}",
                std::io::Error::last_os_error()
            )));
        }
        Ok(EventFd(f))
    }
}

impl IrqSink for EventFd {
    fn signal(&mut self) -> std::io::Result<()> {
        match self.0.write(&1u64.to_ne_bytes()) {
            Ok(8) => Ok(()),
            Ok(n) => Err(std::io::Error::other(format!(
                "short eventfd write of {n} bytes"
            ))),
            Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => Ok(()),
            Err(e) => Err(e),
        }
    }
}

/// INTx and MSI state of the function.
#[derive(Default)]
pub struct IrqLines {
    intx: Option<Box<dyn IrqSink>>,
    intx_masked: bool,
    msi: Option<Box<dyn IrqSink>>,
    level: bool,
    signals: u64,
}

impl std::fmt::Debug for IrqLines {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("IrqLines")
            .field("intx", &self.intx.is_some())
            .field("intx_masked", &self.intx_masked)
            .field("msi", &self.msi.is_some())
            .field("level", &self.level)
            .field("signals", &self.signals)
            .finish()
    }
}

impl IrqLines {
    /// No eventfds yet.
    pub fn new() -> Self {
        Self::default()
    }

    /// How many times any line has been signalled.
    pub fn signals(&self) -> u64 {
        self.signals
    }

    fn fire(
        sink: &mut Option<Box<dyn IrqSink>>,
        what: IrqSignal,
        count: &mut u64,
    ) -> Option<IrqSignal> {
        let s = sink.as_mut()?;
        if let Err(e) = s.signal() {
            warn!("signalling {what:?} failed: {e}");
            return None;
        }
        *count += 1;
        Some(what)
    }

    /// Follows the model's interrupt condition after an access; returns what
    /// was signalled, if anything.
    pub fn update(&mut self, level: bool) -> Option<IrqSignal> {
        let rising = level && !self.level;
        self.level = level;
        if self.msi.is_some() {
            return if rising {
                Self::fire(&mut self.msi, IrqSignal::Msi, &mut self.signals)
            } else {
                None
            };
        }
        if level && !self.intx_masked && self.intx.is_some() {
            self.intx_masked = true;
            return Self::fire(&mut self.intx, IrqSignal::Intx, &mut self.signals);
        }
        None
    }

    /// Applies a `set_irqs` request. `fds` are the eventfds that came with it.
    pub fn set_irqs(
        &mut self,
        index: u32,
        flags: u32,
        start: u32,
        count: u32,
        mut fds: Vec<File>,
    ) -> Result<Option<IrqSignal>, IrqError> {
        if index != IRQ_INDEX_INTX && index != IRQ_INDEX_MSI {
            return Err(IrqError::NoSuchIndex(index));
        }
        let data = flags & DATA_TYPE_MASK;
        let action = flags & ACTION_TYPE_MASK;
        if data.count_ones() != 1
            || action.count_ones() != 1
            || flags & !(DATA_TYPE_MASK | ACTION_TYPE_MASK) != 0
        {
            return Err(IrqError::BadFlags { index, flags });
        }
        if start != 0 || count > 1 {
            return Err(IrqError::BadRange {
                index,
                start,
                count,
            });
        }
        debug!(
            "set_irqs index={index} flags={flags:#x} count={count} fds={}",
            fds.len()
        );
        match (action, data) {
            (ACTION_TRIGGER, DATA_EVENTFD) => {
                let sink: Option<Box<dyn IrqSink>> = match fds.pop() {
                    Some(f) if count > 0 => Some(Box::new(EventFd::new(f)?)),
                    _ => None,
                };
                self.set_sink(index, sink);
                Ok(None)
            }
            (ACTION_TRIGGER, DATA_NONE) if count == 1 => {
                // A loopback trigger requested by the client.
                let (sink, what) = if index == IRQ_INDEX_INTX {
                    (&mut self.intx, IrqSignal::Intx)
                } else {
                    (&mut self.msi, IrqSignal::Msi)
                };
                Ok(Self::fire(sink, what, &mut self.signals))
            }
            (ACTION_UNMASK, DATA_NONE) if index == IRQ_INDEX_INTX => {
                self.intx_masked = false;
                let level = self.level;
                Ok(self.update(level))
            }
            (ACTION_MASK, DATA_NONE) if index == IRQ_INDEX_INTX => {
                self.intx_masked = true;
                Ok(None)
            }
            // A count of zero with no data disables the index (vfio.h).
            (ACTION_TRIGGER, DATA_NONE) if count == 0 => {
                self.set_sink(index, None);
                Ok(None)
            }
            _ => Err(IrqError::BadFlags { index, flags }),
        }
    }

    /// Installs (or removes) the sink of one line; for the transport and tests.
    pub fn set_sink(&mut self, index: u32, sink: Option<Box<dyn IrqSink>>) {
        if index == IRQ_INDEX_INTX {
            self.intx = sink;
            self.intx_masked = false;
        } else {
            self.msi = sink;
        }
    }

    /// Device reset: lines stay wired (QEMU owns them) but INTx is unmasked and
    /// the remembered level drops.
    pub fn reset(&mut self) {
        self.intx_masked = false;
        self.level = false;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicU64, Ordering};
    use std::sync::Arc;

    struct Counter(Arc<AtomicU64>);
    impl IrqSink for Counter {
        fn signal(&mut self) -> std::io::Result<()> {
            self.0.fetch_add(1, Ordering::SeqCst);
            Ok(())
        }
    }

    fn lines_with(index: u32) -> (IrqLines, Arc<AtomicU64>) {
        let n = Arc::new(AtomicU64::new(0));
        let mut l = IrqLines::new();
        l.set_sink(index, Some(Box::new(Counter(n.clone()))));
        (l, n)
    }

    #[test]
    fn intx_is_level_with_automask_and_unmask() {
        let (mut l, n) = lines_with(IRQ_INDEX_INTX);
        assert_eq!(l.update(false), None);
        assert_eq!(l.update(true), Some(IrqSignal::Intx));
        assert_eq!(l.update(true), None, "masked until the client unmasks");
        assert_eq!(
            l.set_irqs(0, ACTION_UNMASK | DATA_NONE, 0, 1, vec![]),
            Ok(Some(IrqSignal::Intx)),
            "still asserted at unmask: signal again"
        );
        l.update(false);
        assert_eq!(
            l.set_irqs(0, ACTION_UNMASK | DATA_NONE, 0, 1, vec![]),
            Ok(None)
        );
        assert_eq!(l.update(true), Some(IrqSignal::Intx));
        assert_eq!(n.load(Ordering::SeqCst), 3);
    }

    #[test]
    fn msi_signals_rising_edges_only() {
        let (mut l, n) = lines_with(IRQ_INDEX_MSI);
        assert_eq!(l.update(true), Some(IrqSignal::Msi));
        assert_eq!(l.update(true), None);
        l.update(false);
        assert_eq!(l.update(true), Some(IrqSignal::Msi));
        assert_eq!(n.load(Ordering::SeqCst), 2);
    }

    #[test]
    fn unwired_lines_never_signal() {
        let mut l = IrqLines::new();
        assert_eq!(l.update(true), None);
        assert_eq!(l.signals(), 0);
    }

    #[test]
    fn disabling_with_count_zero_drops_the_line() {
        let (mut l, n) = lines_with(IRQ_INDEX_INTX);
        l.set_irqs(0, ACTION_TRIGGER | DATA_EVENTFD, 0, 0, vec![])
            .unwrap();
        assert_eq!(l.update(true), None);
        assert_eq!(n.load(Ordering::SeqCst), 0);
    }

    #[test]
    fn bad_requests_are_errors() {
        let mut l = IrqLines::new();
        assert_eq!(
            l.set_irqs(2, ACTION_TRIGGER | DATA_EVENTFD, 0, 1, vec![]),
            Err(IrqError::NoSuchIndex(2))
        );
        assert!(matches!(
            l.set_irqs(0, ACTION_TRIGGER | DATA_BOOL | DATA_NONE, 0, 1, vec![]),
            Err(IrqError::BadFlags { .. })
        ));
        assert!(matches!(
            l.set_irqs(0, 0, 0, 1, vec![]),
            Err(IrqError::BadFlags { .. })
        ));
        assert!(matches!(
            l.set_irqs(1, ACTION_TRIGGER | DATA_EVENTFD, 1, 1, vec![]),
            Err(IrqError::BadRange { .. })
        ));
        assert!(matches!(
            l.set_irqs(1, ACTION_TRIGGER | DATA_EVENTFD, 0, 9, vec![]),
            Err(IrqError::BadRange { .. })
        ));
        assert!(matches!(
            l.set_irqs(1, ACTION_UNMASK | DATA_NONE, 0, 1, vec![]),
            Err(IrqError::BadFlags { .. })
        ));
    }

    /// Issue 14: a pipe as the INTx fd made the server block in `write_all` once the pipe
    /// filled. Only eventfds are taken, and they are made non-blocking, so 100,000 signals
    /// nobody reads never block.
    #[test]
    fn a_pipe_is_refused_and_an_unread_eventfd_never_blocks() {
        use std::os::fd::FromRawFd;
        let mut fds = [0; 2];
        // SAFETY: pipe into a two-int array.
        assert_eq!(unsafe { libc::pipe(fds.as_mut_ptr()) }, 0);
        // SAFETY: fresh descriptors we own.
        let (r, w) = unsafe { (File::from_raw_fd(fds[0]), File::from_raw_fd(fds[1])) };
        let mut l = IrqLines::new();
        let e = l
            .set_irqs(0, ACTION_TRIGGER | DATA_EVENTFD, 0, 1, vec![w])
            .unwrap_err();
        assert!(
            matches!(&e, IrqError::NotEventfd(k) if k.contains("pipe")),
            "{e:?}"
        );
        drop(r);
        // SAFETY: eventfd(2) with no flags: a blocking one, as a hostile peer may send.
        let efd = unsafe { File::from_raw_fd(libc::eventfd(0, 0)) };
        l.set_irqs(
            1,
            ACTION_TRIGGER | DATA_EVENTFD,
            0,
            1,
            vec![efd.try_clone().unwrap()],
        )
        .unwrap();
        // Drive the counter to its maximum (u64::MAX - 1) so the next write would block.
        let mut raw = efd.try_clone().unwrap();
        raw.write_all(&(u64::MAX - 2).to_ne_bytes()).unwrap();
        for _ in 0..100_000 {
            l.update(true);
            l.update(false);
        }
        assert_eq!(l.signals(), 100_000, "every edge signalled, none blocked");
    }
}
