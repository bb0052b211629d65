//! Guest RAM as the device reaches it: the `dma_map` regions QEMU sends, mapped
//! from their file descriptors into a `vm-memory` `GuestMemoryMmap`.
//!
//! QEMU's vfio-user client sends one `dma_map` per guest RAM section with the
//! memfd and its offset, and some without a file descriptor (ROM/BIOS areas,
//! read-only). Regions without an fd are remembered so that a DMA there is
//! refused with a clear error instead of silently reading nothing.

use std::fs::File;

use emulator::mem::{MemError, SysMem, Target};
use log::{debug, info};
use vm_memory::{
    Address, FileOffset, GuestAddress, GuestMemoryBackend, GuestMemoryMmap, GuestMemoryRegion,
    GuestRegionMmap, MmapRegion,
};

/// Errors of guest-RAM management and DMA checks.
#[derive(Debug, thiserror::Error)]
pub enum RamError {
    /// A `dma_map` whose range wraps the 64-bit address space or is empty.
    #[error("dma_map of {size:#x} bytes at {addr:#x} is not a valid range")]
    BadRange { addr: u64, size: u64 },
    /// The file descriptor QEMU sent could not be mapped.
    #[error("cannot mmap guest RAM at {addr:#x} (+{size:#x}, fd offset {offset:#x}): {source}")]
    Mmap {
        addr: u64,
        size: u64,
        offset: u64,
        #[source]
        source: vm_memory::mmap::MmapRegionError,
    },
    /// The new region overlaps one already mapped.
    #[error("dma_map at {addr:#x} (+{size:#x}) overlaps a mapped region: {source}")]
    Overlap {
        addr: u64,
        size: u64,
        #[source]
        source: vm_memory::GuestRegionCollectionError,
    },
    /// `dma_unmap` of a range that was never mapped as one region.
    #[error("dma_unmap of {size:#x} bytes at {addr:#x}: no such mapping")]
    NotMapped { addr: u64, size: u64 },
    /// A DMA into a range QEMU mapped without a file descriptor.
    #[error("DMA to {addr:#x}+{len:#x} refused: QEMU mapped that range without an fd (ROM/BIOS area), so the device cannot reach it")]
    NoFd { addr: u64, len: u64 },
    /// A DMA outside every mapped region.
    #[error("DMA to {addr:#x}+{len:#x} refused: not inside guest RAM mapped by QEMU")]
    Unmapped { addr: u64, len: u64 },
}

/// The guest RAM the device can reach.
#[derive(Debug, Default)]
pub struct GuestRam {
    mem: GuestMemoryMmap,
    fdless: Vec<(u64, u64)>,
}

impl GuestRam {
    /// No RAM mapped yet.
    pub fn new() -> Self {
        Self::default()
    }

    /// The mapped RAM, for the model's memory interface.
    pub fn memory(&self) -> &GuestMemoryMmap {
        &self.mem
    }

    /// Handles a `dma_map`: maps `size` bytes of `fd` at `offset` as guest
    /// physical `addr`. `writable` is false for read-only mappings; those are
    /// mapped private, so a stray device write lands in a private copy instead
    /// of faulting the process.
    pub fn map(
        &mut self,
        addr: u64,
        size: u64,
        offset: u64,
        fd: Option<File>,
        writable: bool,
    ) -> Result<(), RamError> {
        if size == 0 || addr.checked_add(size - 1).is_none() {
            return Err(RamError::BadRange { addr, size });
        }
        let Some(file) = fd else {
            info!("dma_map {addr:#x}+{size:#x} without fd: DMA there will be refused");
            self.fdless.push((addr, size));
            return Ok(());
        };
        let flags = libc::MAP_NORESERVE
            | if writable {
                libc::MAP_SHARED
            } else {
                libc::MAP_PRIVATE
            };
        let region = MmapRegion::build(
            Some(FileOffset::new(file, offset)),
            size as usize,
            libc::PROT_READ | libc::PROT_WRITE,
            flags,
        )
        .map_err(|source| RamError::Mmap {
            addr,
            size,
            offset,
            source,
        })?;
        let region = GuestRegionMmap::new(region, GuestAddress(addr))
            .ok_or(RamError::BadRange { addr, size })?;
        self.mem = self
            .mem
            .insert_region(std::sync::Arc::new(region))
            .map_err(|source| RamError::Overlap { addr, size, source })?;
        debug!("dma_map {addr:#x}+{size:#x} fd offset {offset:#x} writable={writable}");
        Ok(())
    }

    /// Handles a `dma_unmap` of a range mapped earlier.
    pub fn unmap(&mut self, addr: u64, size: u64) -> Result<(), RamError> {
        if let Some(i) = self.fdless.iter().position(|&r| r == (addr, size)) {
            self.fdless.remove(i);
            return Ok(());
        }
        let (mem, _) = self
            .mem
            .remove_region(GuestAddress(addr), size)
            .map_err(|_| RamError::NotMapped { addr, size })?;
        self.mem = mem;
        Ok(())
    }

    /// Drops every mapping (device reset keeps them: QEMU owns the map).
    pub fn clear(&mut self) {
        self.mem = GuestMemoryMmap::new();
        self.fdless.clear();
    }

    /// Checks that `len` bytes at `addr` lie inside one fd-backed region.
    pub fn check_dma(&self, addr: u64, len: u64) -> Result<(), RamError> {
        let end = addr
            .checked_add(len)
            .ok_or(RamError::Unmapped { addr, len })?;
        if self
            .fdless
            .iter()
            .any(|&(a, s)| addr < a.saturating_add(s) && end > a)
        {
            return Err(RamError::NoFd { addr, len });
        }
        let inside = self.mem.find_region(GuestAddress(addr)).is_some_and(|r| {
            let last = r.start_addr().unchecked_add(r.len()).raw_value();
            end <= last
        });
        if inside {
            Ok(())
        } else {
            Err(RamError::Unmapped { addr, len })
        }
    }

    /// Total bytes of fd-backed guest RAM mapped.
    pub fn mapped_bytes(&self) -> u64 {
        self.mem.iter().map(|r| r.len()).sum()
    }

    /// A snapshot of the map for the device's DMA (cheap: the regions are shared). The
    /// transport installs a new one after every `dma_map`/`dma_unmap`.
    pub fn view(&self) -> RamView {
        RamView {
            ram: GuestRam {
                mem: self.mem.clone(),
                fdless: self.fdless.clone(),
            },
        }
    }
}

/// Guest RAM as the device model reaches it: DMA is refused, with the reason logged, where
/// QEMU mapped no fd or mapped nothing.
#[derive(Debug)]
pub struct RamView {
    ram: GuestRam,
}

impl RamView {
    fn checked(&self, addr: u64, len: usize) -> Result<(), MemError> {
        self.ram.check_dma(addr, len as u64).map_err(|e| {
            debug!("{e}");
            MemError::OutOfRange {
                target: Target::SysCoherent,
                addr,
            }
        })
    }
}

impl SysMem for RamView {
    fn read(&self, addr: u64, buf: &mut [u8]) -> Result<(), MemError> {
        self.checked(addr, buf.len())?;
        SysMem::read(&self.ram.mem, addr, buf)
    }

    fn write(&self, addr: u64, buf: &[u8]) -> Result<(), MemError> {
        self.checked(addr, buf.len())?;
        SysMem::write(&self.ram.mem, addr, buf)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use vm_memory::Bytes;

    fn memfd(size: u64) -> File {
        // SAFETY: memfd_create with a valid NUL-terminated name.
        let fd = unsafe { libc::memfd_create(c"gp100emu-test".as_ptr(), 0) };
        assert!(fd >= 0, "memfd_create");
        // SAFETY: fd is a fresh, owned descriptor.
        let f = unsafe { <File as std::os::fd::FromRawFd>::from_raw_fd(fd) };
        f.set_len(size).unwrap();
        f
    }

    #[test]
    fn mapped_fd_is_shared_with_the_writer() {
        let f = memfd(0x4000);
        let other = f.try_clone().unwrap();
        let mut ram = GuestRam::new();
        ram.map(0x10_0000, 0x2000, 0x1000, Some(f), true).unwrap();
        ram.memory()
            .write_obj(0xdead_beefu32, GuestAddress(0x10_0010))
            .unwrap();
        let mut b = [0u8; 4];
        std::os::unix::fs::FileExt::read_exact_at(&other, &mut b, 0x1010).unwrap();
        assert_eq!(
            u32::from_le_bytes(b),
            0xdead_beef,
            "write reached the fd at its offset"
        );
        assert_eq!(ram.mapped_bytes(), 0x2000);
        ram.check_dma(0x10_0000, 0x2000).unwrap();
        assert!(matches!(
            ram.check_dma(0x10_1fff, 2),
            Err(RamError::Unmapped { .. })
        ));
        ram.unmap(0x10_0000, 0x2000).unwrap();
        assert!(ram.check_dma(0x10_0000, 4).is_err());
    }

    #[test]
    fn the_device_view_reads_mapped_ram_and_refuses_the_rest() {
        let mut ram = GuestRam::new();
        ram.map(0x1000, 0x1000, 0, Some(memfd(0x1000)), true)
            .unwrap();
        ram.map(0xfffc_0000, 0x1000, 0, None, false).unwrap();
        let v = ram.view();
        v.write(0x1ff0, &[5; 16]).unwrap();
        let mut b = [0u8; 16];
        v.read(0x1ff0, &mut b).unwrap();
        assert_eq!(b, [5; 16]);
        assert!(v.read(0x1ff8, &mut b).is_err(), "runs past the region");
        assert!(v.read(0xfffc_0000, &mut b).is_err(), "no fd");
        assert!(v.write(0x10_0000, &b).is_err(), "unmapped");
    }

    #[test]
    fn fdless_regions_refuse_dma_with_a_clear_error() {
        let mut ram = GuestRam::new();
        ram.map(0xfffc_0000, 0x4_0000, 0, None, false).unwrap();
        let e = ram.check_dma(0xfffc_1000, 16).unwrap_err();
        assert!(matches!(e, RamError::NoFd { .. }));
        assert!(e.to_string().contains("without an fd"));
        ram.unmap(0xfffc_0000, 0x4_0000).unwrap();
        assert!(matches!(
            ram.check_dma(0xfffc_1000, 16),
            Err(RamError::Unmapped { .. })
        ));
    }

    #[test]
    fn hostile_maps_are_errors() {
        let mut ram = GuestRam::new();
        assert!(matches!(
            ram.map(u64::MAX, 2, 0, None, true),
            Err(RamError::BadRange { .. })
        ));
        assert!(matches!(
            ram.map(0, 0, 0, None, true),
            Err(RamError::BadRange { .. })
        ));
        ram.map(0, 0x1000, 0, Some(memfd(0x1000)), true).unwrap();
        assert!(matches!(
            ram.map(0x800, 0x1000, 0, Some(memfd(0x1000)), true),
            Err(RamError::Overlap { .. })
        ));
        assert!(matches!(
            ram.unmap(0x5000, 0x1000),
            Err(RamError::NotMapped { .. })
        ));
        assert!(matches!(
            ram.check_dma(u64::MAX, 2),
            Err(RamError::Unmapped { .. })
        ));
    }

    #[test]
    fn read_only_mapping_takes_stray_writes_privately() {
        let f = memfd(0x1000);
        let other = f.try_clone().unwrap();
        let mut ram = GuestRam::new();
        ram.map(0, 0x1000, 0, Some(f), false).unwrap();
        ram.memory().write_obj(7u32, GuestAddress(0)).unwrap();
        let mut b = [0u8; 4];
        std::os::unix::fs::FileExt::read_exact_at(&other, &mut b, 0).unwrap();
        assert_eq!(u32::from_le_bytes(b), 0, "the guest's copy is untouched");
    }
}
