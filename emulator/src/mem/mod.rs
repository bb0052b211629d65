//! The memory the MMU reads page tables from and the access engine reaches: the GPU's own
//! video memory ([`VidMem`], owned by the device, backed lazily) and system memory (guest RAM,
//! reached only through `vm-memory`'s `Bytes<GuestAddress>`, so tests use anonymous memory).

use std::collections::HashMap;

use vm_memory::{Bytes, GuestAddress};

/// Which memory an address is in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Target {
    /// The GPU's video memory.
    Video,
    /// Another GPU's memory (not modelled: accesses fail).
    Peer(u8),
    /// System memory, snooped.
    SysCoherent,
    /// System memory, not snooped.
    SysNoncoherent,
}

/// A failed memory access (the MMU turns these into faults; nothing panics).
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum MemError {
    /// Outside the memory's size, or not mapped guest RAM.
    #[error("{target:?} address {addr:#x} is outside memory")]
    OutOfRange {
        /// Which memory.
        target: Target,
        /// The address.
        addr: u64,
    },
    /// Peer memory is not modelled.
    #[error("peer {0} memory is not modelled")]
    Peer(u8),
}

/// What the MMU and engines read and write through.
pub trait GpuMemory {
    /// Reads a little-endian u64 at an 8-byte-aligned address.
    fn read_u64(&self, target: Target, addr: u64) -> Result<u64, MemError>;
    /// Writes a little-endian u64 at an 8-byte-aligned address.
    fn write_u64(&mut self, target: Target, addr: u64, value: u64) -> Result<(), MemError>;
}

/// Bytes of video memory backed per chunk.
const CHUNK: u64 = 64 * 1024;

/// Video memory of a configurable size, backed lazily in 64 KiB chunks: never-written memory
/// reads as zero and costs nothing, so the default 4 GiB is free until used.
#[derive(Debug, Default, Clone)]
pub struct VidMem {
    size: u64,
    chunks: HashMap<u64, Box<[u8]>>,
}

impl VidMem {
    /// `size` bytes of video memory.
    pub fn new(size: u64) -> Self {
        VidMem {
            size,
            chunks: HashMap::new(),
        }
    }

    /// Its size in bytes.
    pub fn size(&self) -> u64 {
        self.size
    }

    /// Bytes actually backed.
    pub fn backed_bytes(&self) -> u64 {
        self.chunks.len() as u64 * CHUNK
    }

    fn check(&self, addr: u64) -> Result<(), MemError> {
        if !addr.is_multiple_of(8) || addr.checked_add(8).is_none_or(|e| e > self.size) {
            return Err(MemError::OutOfRange {
                target: Target::Video,
                addr,
            });
        }
        Ok(())
    }

    /// Reads a u64.
    pub fn read_u64(&self, addr: u64) -> Result<u64, MemError> {
        self.check(addr)?;
        let Some(c) = self.chunks.get(&(addr / CHUNK)) else {
            return Ok(0);
        };
        let o = (addr % CHUNK) as usize;
        Ok(u64::from_le_bytes(c[o..o + 8].try_into().expect("8 bytes")))
    }

    /// Writes a u64.
    pub fn write_u64(&mut self, addr: u64, v: u64) -> Result<(), MemError> {
        self.check(addr)?;
        let c = self
            .chunks
            .entry(addr / CHUNK)
            .or_insert_with(|| vec![0u8; CHUNK as usize].into_boxed_slice());
        let o = (addr % CHUNK) as usize;
        c[o..o + 8].copy_from_slice(&v.to_le_bytes());
        Ok(())
    }
}

/// Video memory alone (for units that only touch it, like the fault ring); system-memory
/// accesses fail.
impl GpuMemory for VidMem {
    fn read_u64(&self, target: Target, addr: u64) -> Result<u64, MemError> {
        match target {
            Target::Video => VidMem::read_u64(self, addr),
            _ => Err(MemError::OutOfRange { target, addr }),
        }
    }

    fn write_u64(&mut self, target: Target, addr: u64, value: u64) -> Result<(), MemError> {
        match target {
            Target::Video => VidMem::write_u64(self, addr, value),
            _ => Err(MemError::OutOfRange { target, addr }),
        }
    }
}

/// Video memory plus guest RAM, as the GPU sees them.
pub struct Memory<'a, M> {
    /// Video memory.
    pub vid: &'a mut VidMem,
    /// Guest RAM.
    pub sys: &'a M,
}

impl<M: Bytes<GuestAddress>> GpuMemory for Memory<'_, M> {
    fn read_u64(&self, target: Target, addr: u64) -> Result<u64, MemError> {
        match target {
            Target::Video => self.vid.read_u64(addr),
            Target::Peer(p) => Err(MemError::Peer(p)),
            Target::SysCoherent | Target::SysNoncoherent => {
                if !addr.is_multiple_of(8) {
                    return Err(MemError::OutOfRange { target, addr });
                }
                self.sys
                    .read_obj::<u64>(GuestAddress(addr))
                    .map(u64::from_le)
                    .map_err(|_| MemError::OutOfRange { target, addr })
            }
        }
    }

    fn write_u64(&mut self, target: Target, addr: u64, value: u64) -> Result<(), MemError> {
        match target {
            Target::Video => self.vid.write_u64(addr, value),
            Target::Peer(p) => Err(MemError::Peer(p)),
            Target::SysCoherent | Target::SysNoncoherent => {
                if !addr.is_multiple_of(8) {
                    return Err(MemError::OutOfRange { target, addr });
                }
                self.sys
                    .write_obj::<u64>(value.to_le(), GuestAddress(addr))
                    .map_err(|_| MemError::OutOfRange { target, addr })
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use vm_memory::GuestMemoryMmap;

    #[test]
    fn vidmem_is_lazy_and_bounded() {
        let mut v = VidMem::new(4 << 30);
        assert_eq!(v.read_u64(0x1234_5678 & !7).unwrap(), 0);
        assert_eq!(v.backed_bytes(), 0);
        v.write_u64(0xffff_fff8, 42).unwrap();
        assert_eq!(v.read_u64(0xffff_fff8).unwrap(), 42);
        assert_eq!(v.backed_bytes(), CHUNK);
        assert!(v.read_u64(4 << 30).is_err());
        assert!(v.read_u64(u64::MAX - 7).is_err());
        assert!(v.write_u64(3, 1).is_err());
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
    }
}
