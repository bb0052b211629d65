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
use crate::guest_ram::GuestRam;

/// Errors that end the server.
#[derive(Debug, thiserror::Error)]
pub enum ServeError {
    /// The socket path is taken by something that is not a stale socket.
    #[error("socket path {0} exists and is not a socket; refusing to replace it")]
    PathTaken(String),
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
}

/// Largest single BAR access accepted (QEMU splits guest accesses into at most
/// 8 bytes).
const MAX_BAR_ACCESS: usize = 8;

/// Largest single config-space access: the whole space (QEMU reads all 256
/// bytes in one message when it sets the device up).
const MAX_CONFIG_ACCESS: usize = CONFIG_SPACE_SIZE;

fn access_ok(region: u32, len: usize) -> bool {
    let max = if region == VFIO_PCI_CONFIG_REGION_INDEX {
        MAX_CONFIG_ACCESS
    } else {
        MAX_BAR_ACCESS
    };
    len != 0 && len <= max
}

impl Gp100Backend {
    /// Wraps a device.
    pub fn new(device: Device) -> Self {
        Gp100Backend {
            device,
            ram: GuestRam::new(),
            irq: IrqLines::new(),
            stats: Stats::default(),
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
        if !access_ok(region, data.len()) {
            // Answer all-ones for a plausible size; leave an absurd buffer (the
            // protocol layer sized it from the message) as it is rather than
            // touching gigabytes.
            if data.len() <= MAX_CONFIG_ACCESS {
                data.fill(0xff);
            }
            self.bad(format_args!(
                "region {region} read of {} bytes at {offset:#x}",
                data.len()
            ));
            return Ok(());
        }
        match region {
            0..=5 => {
                if let Err(e) = self.device.bar_read(region, offset, data) {
                    self.bad(format_args!("BAR{region} read: {e}"));
                }
            }
            VFIO_PCI_CONFIG_REGION_INDEX => self.device.config_read(offset, data),
            VFIO_PCI_ROM_REGION_INDEX => {
                data.fill(0xff);
                self.bad(format_args!(
                    "expansion ROM read at {offset:#x}: no ROM is served yet"
                ));
            }
            _ => {
                data.fill(0xff);
                self.bad(format_args!(
                    "read of region {region}, which does not exist"
                ));
            }
        }
        self.after_access();
        Ok(())
    }

    fn region_write(&mut self, region: u32, offset: u64, data: &[u8]) -> io::Result<()> {
        self.stats.writes += 1;
        if !access_ok(region, data.len()) {
            self.bad(format_args!(
                "region {region} write of {} bytes at {offset:#x}",
                data.len()
            ));
            return Ok(());
        }
        match region {
            0..=5 => {
                if let Err(e) = self.device.bar_write(region, offset, data) {
                    self.bad(format_args!("BAR{region} write: {e}"));
                }
            }
            VFIO_PCI_CONFIG_REGION_INDEX => self.device.config_write(offset, data),
            _ => self.bad(format_args!(
                "write to region {region} at {offset:#x}: not writable"
            )),
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
        self.ram
            .map(address, size, offset, fd, writable)
            .map_err(|e| io::Error::new(io::ErrorKind::InvalidInput, e))
    }

    fn dma_unmap(&mut self, _flags: DmaUnmapFlags, address: u64, size: u64) -> io::Result<()> {
        self.ram
            .unmap(address, size)
            .map_err(|e| io::Error::new(io::ErrorKind::InvalidInput, e))
    }

    fn reset(&mut self) -> io::Result<()> {
        info!("device reset");
        self.device.reset();
        self.irq.reset();
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

fn remove_stale_socket(path: &Path) -> Result<(), ServeError> {
    use std::os::unix::fs::FileTypeExt;
    match std::fs::symlink_metadata(path) {
        Ok(m) if m.file_type().is_socket() => {
            if std::os::unix::net::UnixStream::connect(path).is_ok() {
                return Err(ServeError::PathTaken(format!(
                    "{} (a live server answers there)",
                    path.display()
                )));
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
    remove_stale_socket(socket)?;
    let layout = device.bar_layout();
    let server = Server::new(socket, true, irqs(), regions(layout))?;
    info!("listening on {}", socket.display());
    let mut backend = Gp100Backend::new(device);
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
