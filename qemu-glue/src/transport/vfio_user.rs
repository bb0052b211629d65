//! The vfio-user server: rust-vmm's `vfio_user` crate carries the protocol;
//! [`Gp100Backend`] turns its callbacks into calls on the [`emulator::Device`],
//! the guest-RAM map and the interrupt lines.
//!
//! Regions follow VFIO PCI's numbering (`VFIO_PCI_*_REGION_INDEX`): 0-5 BARs,
//! 6 expansion ROM, 7 config space, 8 VGA. No region is mmap-able: every access
//! reaches the model, which is the point of an emulator.

use std::fs::File;
use std::io;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::path::Path;

use emulator::pci::{BarLayout, CONFIG_SPACE_SIZE};
use emulator::port::{self, Space};
use emulator::trace::replay::Recorder;
use emulator::trace::{Data, Event, Record, TraceError};
use emulator::Device;
use log::{info, warn};
use vfio_bindings::bindings::vfio::{
    vfio_region_info, VFIO_IRQ_INFO_AUTOMASKED, VFIO_IRQ_INFO_EVENTFD, VFIO_IRQ_INFO_MASKABLE,
    VFIO_IRQ_INFO_NORESIZE, VFIO_PCI_CONFIG_REGION_INDEX, VFIO_PCI_INTX_IRQ_INDEX,
    VFIO_PCI_MSI_IRQ_INDEX, VFIO_PCI_NUM_IRQS, VFIO_PCI_NUM_REGIONS, VFIO_PCI_ROM_REGION_INDEX,
    VFIO_REGION_INFO_FLAG_READ, VFIO_REGION_INFO_FLAG_WRITE,
};
use vfio_user::{DmaMapFlags, DmaUnmapFlags, IrqInfo, Server, ServerBackend, ServerRegion};

use super::irq::IrqLines;
use super::signals::SharedTrace;
use crate::guest_ram::GuestRam;

/// Errors that end the server.
#[derive(Debug, thiserror::Error)]
pub enum ServeError {
    /// The socket path is taken by something that is not a socket.
    #[error("socket path {0} exists and is not a socket; refusing to replace it")]
    PathTaken(String),
    /// A live server listens on the socket path.
    #[error("socket path {0} is in use by a live server; stop it or choose another --socket")]
    Busy(String),
    /// Binding or serving failed in the protocol layer.
    #[error("vfio-user server: {0}")]
    Protocol(#[from] vfio_user::Error),
    /// The protocol layer panicked on a malformed message.
    #[error("vfio-user message handling panicked on a malformed message: {0}")]
    Panicked(String),
    /// A filesystem error around the socket.
    #[error("socket {path}: {source}")]
    Io {
        path: String,
        #[source]
        source: io::Error,
    },
}

/// Counters of what the server saw, for logs and the smoke report.
#[derive(Debug, Default, Clone, Copy)]
pub struct Stats {
    /// BAR and config reads served.
    pub reads: u64,
    /// BAR and config writes served.
    pub writes: u64,
    /// Accesses the model answered with an error (logged).
    pub bad_accesses: u64,
    /// Interrupt signals sent.
    pub irq_signals: u64,
}

/// The device behind the socket.
#[derive(Debug)]
pub struct Gp100Backend {
    device: Device,
    ram: GuestRam,
    irq: IrqLines,
    stats: Stats,
    trace: Option<Tracing>,
}

/// A trace being recorded.
struct Tracing {
    writer: SharedTrace,
    recorder: Recorder,
    pending: Vec<Record>,
    failed: bool,
}

impl std::fmt::Debug for Tracing {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let w = self.writer.lock().unwrap_or_else(|p| p.into_inner());
        write!(f, "Tracing({} records)", w.records())
    }
}

impl Gp100Backend {
    /// Wraps a device.
    pub fn new(device: Device) -> Self {
        Gp100Backend {
            device,
            ram: GuestRam::new(),
            irq: IrqLines::new(),
            stats: Stats::default(),
            trace: None,
        }
    }

    /// Records every interaction into `writer` from now on.
    pub fn record_to(&mut self, writer: SharedTrace) {
        self.device.set_event_log(true);
        self.trace = Some(Tracing {
            writer,
            recorder: Recorder::new(),
            pending: Vec::new(),
            failed: false,
        });
    }

    /// Finishes the trace (pending chunk and end record), if one is being recorded;
    /// returns (records, bytes).
    pub fn finish_trace(&mut self) -> Option<Result<(u64, u64), TraceError>> {
        let t = self.trace.as_mut()?;
        let mut w = t.writer.lock().unwrap_or_else(|p| p.into_inner());
        Some(w.finish().map(|_| (w.records(), w.bytes_written())))
    }

    fn record(&mut self, event: Event) {
        let Some(t) = self.trace.as_mut() else {
            return;
        };
        if t.failed {
            return;
        }
        t.pending.clear();
        t.recorder.after(&mut self.device, event, &mut t.pending);
        // One lock for the whole event: the signal thread finishes the trace between events.
        let mut w = t.writer.lock().unwrap_or_else(|p| p.into_inner());
        for r in &t.pending {
            if let Err(e) = w.push(r) {
                warn!("trace recording stopped: {e}");
                t.failed = true;
                break;
            }
        }
    }

    /// The model, for inspection after the server stops.
    pub fn device(&self) -> &Device {
        &self.device
    }

    /// Guest RAM as mapped so far.
    pub fn ram(&self) -> &GuestRam {
        &self.ram
    }

    /// What the server saw.
    pub fn stats(&self) -> Stats {
        Stats {
            irq_signals: self.irq.signals(),
            ..self.stats
        }
    }

    /// Mutable interrupt lines (tests wire fake sinks through this).
    pub fn irq_lines_mut(&mut self) -> &mut IrqLines {
        &mut self.irq
    }

    fn bad(&mut self, what: std::fmt::Arguments<'_>) {
        self.stats.bad_accesses += 1;
        let n = self.stats.bad_accesses;
        if n <= 64 || n.is_power_of_two() {
            warn!("{what} (bad access #{n})");
        }
    }

    fn after_access(&mut self) {
        self.irq.update(self.device.irq_asserted());
    }
}

impl ServerBackend for Gp100Backend {
    fn region_read(&mut self, region: u32, offset: u64, data: &mut [u8]) -> io::Result<()> {
        self.stats.reads += 1;
        let space = Space::from_region(region);
        let result = port::read(&mut self.device, space, offset, data);
        if let Err(e) = &result {
            self.bad(format_args!("read: {e}"));
        }
        if self.trace.is_some() && data.len() <= port::MAX_CONFIG_ACCESS {
            self.record(Event::Read {
                space,
                offset,
                data: Data::from_slice(data),
                ok: result.is_ok(),
            });
        }
        self.after_access();
        Ok(())
    }

    fn region_write(&mut self, region: u32, offset: u64, data: &[u8]) -> io::Result<()> {
        self.stats.writes += 1;
        let space = Space::from_region(region);
        let result = port::write(&mut self.device, space, offset, data);
        if let Err(e) = &result {
            self.bad(format_args!("write: {e}"));
        }
        if self.trace.is_some() && data.len() <= port::MAX_CONFIG_ACCESS {
            self.record(Event::Write {
                space,
                offset,
                data: Data::from_slice(data),
                ok: result.is_ok(),
            });
        }
        self.after_access();
        Ok(())
    }

    fn dma_map(
        &mut self,
        flags: DmaMapFlags,
        offset: u64,
        address: u64,
        size: u64,
        fd: Option<File>,
    ) -> io::Result<()> {
        let writable = flags.contains(DmaMapFlags::WRITE);
        let has_fd = fd.is_some();
        let r = self
            .ram
            .map(address, size, offset, fd, writable)
            .map_err(|e| io::Error::new(io::ErrorKind::InvalidInput, e));
        self.device.set_sysmem(Box::new(self.ram.view()));
        self.record(Event::DmaMap {
            iova: address,
            size,
            writable,
            has_fd,
        });
        r
    }

    fn dma_unmap(&mut self, _flags: DmaUnmapFlags, address: u64, size: u64) -> io::Result<()> {
        let r = self
            .ram
            .unmap(address, size)
            .map_err(|e| io::Error::new(io::ErrorKind::InvalidInput, e));
        self.device.set_sysmem(Box::new(self.ram.view()));
        self.record(Event::DmaUnmap {
            iova: address,
            size,
        });
        r
    }

    fn reset(&mut self) -> io::Result<()> {
        info!("device reset");
        self.device.reset();
        self.irq.reset();
        self.record(Event::Reset);
        Ok(())
    }

    fn set_irqs(
        &mut self,
        index: u32,
        flags: u32,
        start: u32,
        count: u32,
        fds: Vec<File>,
    ) -> io::Result<()> {
        self.irq
            .set_irqs(index, flags, start, count, fds)
            .map(|_| ())
            .map_err(|e| io::Error::new(io::ErrorKind::InvalidInput, e))?;
        self.after_access();
        Ok(())
    }
}

// The port's region numbering is vfio's.
const _: () = assert!(
    port::REGION_CONFIG == VFIO_PCI_CONFIG_REGION_INDEX
        && port::REGION_ROM == VFIO_PCI_ROM_REGION_INDEX
);

/// The regions the server advertises for a BAR layout.
pub fn regions(layout: BarLayout) -> Vec<ServerRegion> {
    (0..VFIO_PCI_NUM_REGIONS)
        .map(|index| {
            let size = match index {
                0..=5 => layout.size_of(index),
                VFIO_PCI_CONFIG_REGION_INDEX => CONFIG_SPACE_SIZE as u64,
                _ => 0,
            };
            let flags = if size > 0 {
                VFIO_REGION_INFO_FLAG_READ | VFIO_REGION_INFO_FLAG_WRITE
            } else {
                0
            };
            ServerRegion {
                region_info: vfio_region_info {
                    argsz: std::mem::size_of::<vfio_region_info>() as u32,
                    flags,
                    index,
                    size,
                    ..Default::default()
                },
                sparse_areas: Vec::new(),
                mmap_fd: None,
            }
        })
        .collect()
}

/// The interrupt indices the server advertises: one INTx (maskable, automasked)
/// and one MSI vector.
pub fn irqs() -> Vec<IrqInfo> {
    (0..VFIO_PCI_NUM_IRQS)
        .map(|index| {
            let (count, flags) = match index {
                VFIO_PCI_INTX_IRQ_INDEX => (
                    1,
                    VFIO_IRQ_INFO_EVENTFD | VFIO_IRQ_INFO_MASKABLE | VFIO_IRQ_INFO_AUTOMASKED,
                ),
                VFIO_PCI_MSI_IRQ_INDEX => (1, VFIO_IRQ_INFO_EVENTFD | VFIO_IRQ_INFO_NORESIZE),
                _ => (0, 0),
            };
            IrqInfo {
                index,
                flags,
                count,
            }
        })
        .collect()
}

/// Checks that `path` is free for a new server: nothing there, or a stale socket (removed).
/// A live server's socket or any other file is an error. `serve` calls it; callers that
/// create files for the server (its trace) call it first, so a refused second server does
/// not truncate what the first one is writing.
pub fn remove_stale_socket(path: &Path) -> Result<(), ServeError> {
    use std::os::unix::fs::FileTypeExt;
    match std::fs::symlink_metadata(path) {
        Ok(m) if m.file_type().is_socket() => {
            // A probe that connects and closes without a byte: our server (the vendored
            // vfio_user, vendor/vfio-user) treats a connection that ends before VERSION as
            // no client and accepts again, so the probe does not take its client's place.
            if std::os::unix::net::UnixStream::connect(path).is_ok() {
                return Err(ServeError::Busy(path.display().to_string()));
            }
            info!("removing stale socket {}", path.display());
            std::fs::remove_file(path).map_err(|source| ServeError::Io {
                path: path.display().to_string(),
                source,
            })
        }
        Ok(_) => Err(ServeError::PathTaken(path.display().to_string())),
        Err(_) => Ok(()),
    }
}

/// Listens on `socket`, serves one QEMU connection until it closes, and returns
/// the backend (with the model's final state) for reporting.
pub fn serve(socket: &Path, device: Device) -> Result<Gp100Backend, ServeError> {
    serve_traced(socket, device, None)
}

/// [`serve`], recording every interaction into `trace` when given.
pub fn serve_traced(
    socket: &Path,
    device: Device,
    trace: Option<SharedTrace>,
) -> Result<Gp100Backend, ServeError> {
    remove_stale_socket(socket)?;
    let layout = device.bar_layout();
    let server = Server::new(socket, true, irqs(), regions(layout))?;
    super::signals::SOCKET_BOUND.store(true, std::sync::atomic::Ordering::SeqCst);
    info!("listening on {}", socket.display());
    let mut backend = Gp100Backend::new(device);
    if let Some(t) = trace {
        backend.record_to(t);
    }
    let outcome = catch_unwind(AssertUnwindSafe(|| server.run(&mut backend)));
    match outcome {
        Ok(Ok(())) => Ok(backend),
        Ok(Err(e)) => Err(e.into()),
        Err(panic) => {
            let msg = panic
                .downcast_ref::<String>()
                .cloned()
                .or_else(|| panic.downcast_ref::<&str>().map(|s| s.to_string()))
                .unwrap_or_else(|| "unknown panic".into());
            Err(ServeError::Panicked(msg))
        }
    }
}
