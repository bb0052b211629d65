//! Guest RAM as the device reaches it: the `dma_map` regions QEMU sends, mapped
//! from their file descriptors into a `vm-memory` `GuestMemoryMmap`.
//!
//! QEMU's vfio-user client sends one `dma_map` per guest RAM section with the
//! memfd and its offset, and some without a file descriptor (ROM/BIOS areas,
//! read-only). Regions without an fd are remembered so that a DMA there is
//! refused with a clear error instead of silently reading nothing.
//!
//! The backing file is the peer's, so it can be shorter than the map says or be truncated
//! later; touching a mapped page past its end is SIGBUS, which kills the server. So every
//! map is checked against the file's size (`fstat`) and refused when the file is not a
//! regular file or too short, and the file is sealed against shrinking (`F_SEAL_SHRINK`,
//! memfd(2); QEMU's `memory-backend-memfd` seals it already with its default `seal=on`).
//! A file that cannot be sealed (not a memfd, or created without `MFD_ALLOW_SEALING`) is
//! still mapped, but its size is checked again before every DMA into it: a truncation
//! then refuses the DMA instead of faulting. That check and the copy are not atomic, so a
//! peer truncating an unsealed file at the same instant can still raise SIGBUS; a
//! SIGBUS-safe copy would close that window and is not done.

use std::fs::File;
use std::os::fd::AsRawFd;
use std::sync::Arc;

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
    /// The fd is not a regular file (memfd, tmpfs, hugetlbfs): its size cannot be checked.
    #[error("dma_map at {addr:#x} (+{size:#x}): the fd is not a regular file (mode {mode:#o}); guest RAM must be a memfd or a file")]
    NotAFile { addr: u64, size: u64, mode: u32 },
    /// The fd is shorter than the region the map announces.
    #[error("dma_map at {addr:#x} (+{size:#x}, fd offset {offset:#x}) reaches past the end of its file ({file_size:#x} bytes)")]
    ShortFile {
        addr: u64,
        size: u64,
        offset: u64,
        file_size: u64,
    },
    /// `fstat` of the fd failed.
    #[error("dma_map at {addr:#x}: fstat of its fd failed: {source}")]
    Stat {
        addr: u64,
        #[source]
        source: std::io::Error,
    },
    /// An unsealed backing file was truncated after the map.
    #[error("DMA to {addr:#x}+{len:#x} refused: its backing file was truncated to {file_size:#x} bytes after the map")]
    Truncated { addr: u64, len: u64, file_size: u64 },
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
    /// Regions whose file could not be sealed against shrinking, checked before each DMA.
    unsealed: Vec<Arc<Unsealed>>,
}

/// A mapped region whose file may still shrink.
#[derive(Debug)]
struct Unsealed {
    addr: u64,
    size: u64,
    /// File offset of the region's end.
    file_end: u64,
    file: File,
}

fn file_size(f: &File) -> std::io::Result<(u64, u32)> {
    // SAFETY: fstat on a descriptor we own, into a zeroed stat buffer.
    let mut st: libc::stat = unsafe { std::mem::zeroed() };
    // SAFETY: as above.
    if unsafe { libc::fstat(f.as_raw_fd(), &mut st) } != 0 {
        return Err(std::io::Error::last_os_error());
    }
    Ok((st.st_size as u64, st.st_mode))
}

/// Whether `f` cannot shrink any more: F_SEAL_SHRINK already set, or set now.
fn seal_shrink(f: &File) -> bool {
    let fd = f.as_raw_fd();
    // SAFETY: fcntl on a descriptor we own; F_GET_SEALS/F_ADD_SEALS take an int.
    let seals = unsafe { libc::fcntl(fd, libc::F_GET_SEALS) };
    if seals >= 0 && seals & libc::F_SEAL_SHRINK != 0 {
        return true;
    }
    // SAFETY: as above.
    seals >= 0 && unsafe { libc::fcntl(fd, libc::F_ADD_SEALS, libc::F_SEAL_SHRINK) } == 0
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
        let (file_size, mode) =
            file_size(&file).map_err(|source| RamError::Stat { addr, source })?;
        if mode & libc::S_IFMT != libc::S_IFREG {
            return Err(RamError::NotAFile { addr, size, mode });
        }
        let file_end = offset
            .checked_add(size)
            .filter(|&end| end <= file_size)
            .ok_or(RamError::ShortFile {
                addr,
                size,
                offset,
                file_size,
            })?;
        let unsealed = if seal_shrink(&file) {
            None
        } else {
            let file = file
                .try_clone()
                .map_err(|source| RamError::Stat { addr, source })?;
            info!("dma_map {addr:#x}+{size:#x}: its file cannot be sealed; DMA there re-checks its size");
            Some(Arc::new(Unsealed {
                addr,
                size,
                file_end,
                file,
            }))
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
        self.unsealed.extend(unsealed);
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
        self.unsealed.retain(|u| (u.addr, u.size) != (addr, size));
        Ok(())
    }

    /// Drops every mapping (device reset keeps them: QEMU owns the map).
    pub fn clear(&mut self) {
        self.mem = GuestMemoryMmap::new();
        self.fdless.clear();
        self.unsealed.clear();
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
        if !inside {
            return Err(RamError::Unmapped { addr, len });
        }
        for u in &self.unsealed {
            if addr >= u.addr && addr - u.addr < u.size {
                let (file_size, _) = file_size(&u.file).unwrap_or((0, 0));
                if file_size < u.file_end {
                    return Err(RamError::Truncated {
                        addr,
                        len,
                        file_size,
                    });
                }
            }
        }
        Ok(())
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
                unsealed: self.unsealed.clone(),
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
        memfd_flags(size, 0)
    }

    fn memfd_flags(size: u64, flags: libc::c_uint) -> File {
        // SAFETY: memfd_create with a valid NUL-terminated name.
        let fd = unsafe { libc::memfd_create(c"gp100emu-test".as_ptr(), flags) };
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

    /// Issue 14: a 4 KiB memfd announced as 1 MiB was mapped, and a DMA past 4 KiB was
    /// SIGBUS. The map is refused now, with the sizes in the message.
    #[test]
    fn a_map_past_the_end_of_its_file_is_refused() {
        let mut ram = GuestRam::new();
        let e = ram
            .map(0x10_0000, 1 << 20, 0, Some(memfd(0x1000)), true)
            .unwrap_err();
        assert!(
            matches!(
                e,
                RamError::ShortFile {
                    file_size: 0x1000,
                    ..
                }
            ),
            "{e:?}"
        );
        assert!(e.to_string().contains("past the end of its file"), "{e}");
        // The offset counts too, and cannot wrap.
        let e = ram
            .map(0, 0x1000, 0x1000, Some(memfd(0x1000)), true)
            .unwrap_err();
        assert!(matches!(e, RamError::ShortFile { .. }), "{e:?}");
        let e = ram
            .map(0, 0x1000, u64::MAX - 0x800, Some(memfd(0x1000)), true)
            .unwrap_err();
        assert!(matches!(e, RamError::ShortFile { .. }), "{e:?}");
        assert_eq!(ram.mapped_bytes(), 0, "nothing was mapped");
        // Not a regular file: a pipe.
        let mut fds = [0; 2];
        // SAFETY: pipe into a two-int array.
        assert_eq!(unsafe { libc::pipe(fds.as_mut_ptr()) }, 0);
        // SAFETY: fresh descriptors we own.
        let (r, _w) = unsafe {
            use std::os::fd::FromRawFd;
            (File::from_raw_fd(fds[0]), File::from_raw_fd(fds[1]))
        };
        let e = ram.map(0, 0x1000, 0, Some(r), true).unwrap_err();
        assert!(matches!(e, RamError::NotAFile { .. }), "{e:?}");
    }

    /// A sealable memfd is sealed against shrinking, so the peer cannot truncate it under
    /// the map; an unsealable one is re-checked, so a truncation refuses the DMA.
    #[test]
    fn truncation_after_the_map_cannot_fault_the_server() {
        let f = memfd_flags(0x2000, libc::MFD_ALLOW_SEALING);
        let peer = f.try_clone().unwrap();
        let mut ram = GuestRam::new();
        ram.map(0, 0x2000, 0, Some(f), true).unwrap();
        assert!(peer.set_len(0x1000).is_err(), "sealed against shrinking");
        let f = memfd(0x2000);
        let peer = f.try_clone().unwrap();
        ram.map(0x10_0000, 0x2000, 0, Some(f), true).unwrap();
        let v = ram.view();
        let mut b = [0u8; 16];
        v.read(0x10_1000, &mut b).unwrap();
        peer.set_len(0x1000).unwrap();
        let e = ram.check_dma(0x10_1000, 16).unwrap_err();
        assert!(
            matches!(
                e,
                RamError::Truncated {
                    file_size: 0x1000,
                    ..
                }
            ),
            "{e:?}"
        );
        assert!(v.read(0x10_1000, &mut b).is_err(), "refused, not SIGBUS");
        assert!(
            v.read(0x10_0000, &mut b).is_err(),
            "the whole region is refused"
        );
        ram.unmap(0x10_0000, 0x2000).unwrap();
        assert!(ram.unsealed.is_empty());
    }
}
