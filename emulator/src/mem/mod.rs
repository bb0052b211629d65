//! The memory the MMU reads page tables from and the engines reach: the GPU's own video
//! memory ([`VidMem`], owned by the device, backed lazily) and system memory (guest RAM,
//! reached only through [`SysMem`], which any `vm-memory` `Bytes<GuestAddress>` implements,
//! so tests use anonymous memory).

pub mod phys;
pub mod sys;
pub mod vid;

pub use phys::PhysMem;
pub use sys::{NoSysMem, SysMem};
pub use vid::VidMem;

pub use crate::hw::target::{MemError, Target};

/// Video memory the device has by default: 4 GiB, backed lazily (issue 5 asks for a
/// configurable size with this default; the P100 has 16 GiB, which the lazy backing would
/// also allow).
pub const DEFAULT_VRAM: u64 = 4 << 30;

/// What the MMU and engines read and write through. Implementors provide byte ranges; the
/// aligned word accesses follow from them.
pub trait GpuMemory {
    /// Reads `buf.len()` bytes at any address.
    fn read_bytes(&self, target: Target, addr: u64, buf: &mut [u8]) -> Result<(), MemError>;
    /// Writes `buf` at any address.
    fn write_bytes(&mut self, target: Target, addr: u64, buf: &[u8]) -> Result<(), MemError>;

    /// Reads a little-endian u64 at an 8-byte-aligned address.
    fn read_u64(&self, target: Target, addr: u64) -> Result<u64, MemError> {
        if !addr.is_multiple_of(8) {
            return Err(misaligned(target, addr));
        }
        let mut b = [0u8; 8];
        self.read_bytes(target, addr, &mut b)?;
        Ok(u64::from_le_bytes(b))
    }
    /// Writes a little-endian u64 at an 8-byte-aligned address.
    fn write_u64(&mut self, target: Target, addr: u64, value: u64) -> Result<(), MemError> {
        if !addr.is_multiple_of(8) {
            return Err(misaligned(target, addr));
        }
        self.write_bytes(target, addr, &value.to_le_bytes())
    }

    /// Reads a little-endian u32 at a 4-byte-aligned address.
    fn read_u32(&self, target: Target, addr: u64) -> Result<u32, MemError> {
        if !addr.is_multiple_of(4) {
            return Err(misaligned(target, addr));
        }
        let mut b = [0u8; 4];
        self.read_bytes(target, addr, &mut b)?;
        Ok(u32::from_le_bytes(b))
    }
    /// Writes a little-endian u32 at a 4-byte-aligned address.
    fn write_u32(&mut self, target: Target, addr: u64, value: u32) -> Result<(), MemError> {
        if !addr.is_multiple_of(4) {
            return Err(misaligned(target, addr));
        }
        self.write_bytes(target, addr, &value.to_le_bytes())
    }

    /// The video memory's write epoch ([`VidMem::epoch`]), for [`GpuMemory::written_since`].
    fn write_epoch(&self) -> u64;
    /// Whether `[addr, addr + len)` of `target` may have been written after `epoch`. System
    /// memory always may: the guest's CPUs write it without the device seeing.
    fn written_since(&self, target: Target, addr: u64, len: u64, epoch: u64) -> bool;
}

/// Splits the `len` bytes at `addr` at every `granule` boundary (`granule` a power of two):
/// yields (offset into the buffer, address, length) for each piece, in order. The address
/// wraps at 2^64 like a GPU virtual address.
pub fn pieces(addr: u64, len: usize, granule: u64) -> impl Iterator<Item = (usize, u64, usize)> {
    debug_assert!(granule.is_power_of_two());
    let mut done = 0usize;
    std::iter::from_fn(move || {
        if done >= len {
            return None;
        }
        let a = addr.wrapping_add(done as u64);
        let room = granule - (a & (granule - 1));
        let n = room.min((len - done) as u64) as usize;
        let piece = (done, a, n);
        done += n;
        Some(piece)
    })
}

/// A misaligned word access (reported like an address outside memory).
fn misaligned(target: Target, addr: u64) -> MemError {
    MemError::OutOfRange { target, addr }
}

/// What stands behind the GPU's memory targets: video memory and a way to reach system
/// memory. [`GpuMemory`] is implemented once, for every `Backing`, so the target dispatch
/// (video, peer, system) exists in one place; [`PhysMem`] (the device's, with the DMA log),
/// [`Memory`] (borrowed parts, for tools and benches) and [`VidMem`] alone (no system
/// memory) are its backings.
pub trait Backing {
    /// Video memory.
    fn vid(&self) -> &VidMem;
    /// Video memory, for writes.
    fn vid_mut(&mut self) -> &mut VidMem;
    /// Reads system memory (guest RAM) at `addr`.
    fn sys_read(&self, addr: u64, buf: &mut [u8]) -> Result<(), MemError>;
    /// Writes system memory at `addr`.
    fn sys_write(&self, addr: u64, buf: &[u8]) -> Result<(), MemError>;
}

/// A system-memory error reported against the target the access named.
fn sys_target(target: Target, addr: u64, e: MemError) -> MemError {
    match e {
        MemError::OutOfRange { .. } => MemError::OutOfRange { target, addr },
        other => other,
    }
}

/// The one target dispatch.
impl<B: Backing + ?Sized> GpuMemory for B {
    fn read_bytes(&self, target: Target, addr: u64, buf: &mut [u8]) -> Result<(), MemError> {
        match target {
            Target::Video => self.vid().read(addr, buf),
            Target::Peer(p) => Err(MemError::Peer(p)),
            Target::SysCoherent | Target::SysNoncoherent => self
                .sys_read(addr, buf)
                .map_err(|e| sys_target(target, addr, e)),
        }
    }

    fn write_bytes(&mut self, target: Target, addr: u64, buf: &[u8]) -> Result<(), MemError> {
        match target {
            Target::Video => self.vid_mut().write(addr, buf),
            Target::Peer(p) => Err(MemError::Peer(p)),
            Target::SysCoherent | Target::SysNoncoherent => self
                .sys_write(addr, buf)
                .map_err(|e| sys_target(target, addr, e)),
        }
    }

    fn write_epoch(&self) -> u64 {
        self.vid().epoch()
    }

    fn written_since(&self, target: Target, addr: u64, len: u64, epoch: u64) -> bool {
        match target {
            Target::Video => self.vid().written_since(addr, len, epoch),
            _ => true,
        }
    }
}

/// No system memory behind the error of a [`VidMem`]-only backing.
fn no_sys(addr: u64) -> MemError {
    MemError::OutOfRange {
        target: Target::SysCoherent,
        addr,
    }
}

/// Video memory alone (for units that only touch it); system-memory accesses fail.
impl Backing for VidMem {
    fn vid(&self) -> &VidMem {
        self
    }
    fn vid_mut(&mut self) -> &mut VidMem {
        self
    }
    fn sys_read(&self, addr: u64, _: &mut [u8]) -> Result<(), MemError> {
        Err(no_sys(addr))
    }
    fn sys_write(&self, addr: u64, _: &[u8]) -> Result<(), MemError> {
        Err(no_sys(addr))
    }
}

/// Video memory plus guest RAM, as the GPU sees them.
pub struct Memory<'a, M: SysMem + ?Sized> {
    /// Video memory.
    pub vid: &'a mut VidMem,
    /// Guest RAM.
    pub sys: &'a M,
}

impl<M: SysMem + ?Sized> Backing for Memory<'_, M> {
    fn vid(&self) -> &VidMem {
        self.vid
    }
    fn vid_mut(&mut self) -> &mut VidMem {
        self.vid
    }
    fn sys_read(&self, addr: u64, buf: &mut [u8]) -> Result<(), MemError> {
        self.sys.read(addr, buf).map_err(|_| no_sys(addr))
    }
    fn sys_write(&self, addr: u64, buf: &[u8]) -> Result<(), MemError> {
        self.sys.write(addr, buf).map_err(|_| no_sys(addr))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use vm_memory::{GuestAddress, GuestMemoryMmap};

    #[test]
    fn pieces_split_at_granule_boundaries_and_cover_the_range() {
        assert_eq!(
            pieces(0xffe, 8, 0x1000).collect::<Vec<_>>(),
            vec![(0, 0xffe, 2), (2, 0x1000, 6)]
        );
        assert_eq!(
            pieces(0x1000, 0x2000, 0x1000).collect::<Vec<_>>(),
            vec![(0, 0x1000, 0x1000), (0x1000, 0x2000, 0x1000)]
        );
        assert_eq!(pieces(5, 0, 0x1000).count(), 0);
        assert_eq!(
            pieces(u64::MAX - 1, 4, 0x1000).collect::<Vec<_>>(),
            vec![(0, u64::MAX - 1, 2), (2, 0, 2)]
        );
    }

    #[test]
    fn target_field_decodes_the_four_values_from_the_low_bits() {
        assert_eq!(Target::from_target_field(0), Some(Target::Video));
        assert_eq!(Target::from_target_field(1), None);
        assert_eq!(Target::from_target_field(2), Some(Target::SysCoherent));
        assert_eq!(Target::from_target_field(0x7), Some(Target::SysNoncoherent));
    }

    #[test]
    fn guest_ram_through_vm_memory() {
        let ram = GuestMemoryMmap::<()>::from_ranges(&[(GuestAddress(0x10000), 0x10000)]).unwrap();
        let mut vid = VidMem::new(1 << 20);
        let mut m = Memory {
            vid: &mut vid,
            sys: &ram,
        };
        m.write_u64(Target::SysCoherent, 0x10008, 7).unwrap();
        assert_eq!(m.read_u64(Target::SysNoncoherent, 0x10008).unwrap(), 7);
        assert!(
            m.read_u64(Target::SysCoherent, 0x8).is_err(),
            "outside guest RAM"
        );
        assert!(m.read_u64(Target::SysCoherent, 0x2_0000).is_err());
        assert_eq!(m.read_u64(Target::Peer(1), 0), Err(MemError::Peer(1)));
        m.write_u32(Target::SysCoherent, 0x10010, 0xabcd).unwrap();
        assert_eq!(m.read_u32(Target::SysCoherent, 0x10010).unwrap(), 0xabcd);
        assert!(m.read_u32(Target::SysCoherent, 0x10011).is_err());
        m.write_u32(Target::Video, 0x100, 5).unwrap();
        assert_eq!(m.read_u64(Target::Video, 0x100).unwrap(), 5);
    }

    #[test]
    fn no_sys_mem_behind_a_memory() {
        let mut vid = VidMem::new(1 << 20);
        let m = Memory {
            vid: &mut vid,
            sys: &NoSysMem as &dyn SysMem,
        };
        assert!(m.read_u64(Target::SysCoherent, 0).is_err());
        assert_eq!(m.read_u64(Target::Video, 0).unwrap(), 0);
    }
}
