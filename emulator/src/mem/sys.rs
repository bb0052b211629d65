//! System memory as the GPU reaches it: guest RAM, over PCIe.
//!
//! The device never owns guest RAM. A transport hands the device a [`SysMem`] (the vfio-user
//! server: a snapshot of the regions QEMU mapped with `dma_map`, replaced whenever the map
//! changes), and trace replay hands it one that serves the recorded DMA reads. Anything that
//! implements `vm-memory`'s `Bytes<GuestAddress>` (a `GuestMemoryMmap`, say) is a `SysMem`, so
//! unit tests run on anonymous memory.
//!
//! The guest has no IOMMU in our setup, so a bus address is a guest-physical address
//! (shared/spec/gp100-facts.md: "With no IOMMU in the guest, `dma_addr` is the guest-physical
//! address").

use vm_memory::{Bytes, GuestAddress};

use super::{MemError, Target};

/// Guest RAM, by guest-physical address.
pub trait SysMem {
    /// Reads `buf.len()` bytes at `addr`; the whole range must be reachable.
    fn read(&self, addr: u64, buf: &mut [u8]) -> Result<(), MemError>;
    /// Writes `buf` at `addr`; the whole range must be reachable.
    fn write(&self, addr: u64, buf: &[u8]) -> Result<(), MemError>;
}

fn sys_err(addr: u64) -> MemError {
    MemError::OutOfRange {
        target: Target::SysCoherent,
        addr,
    }
}

impl<T: Bytes<GuestAddress>> SysMem for T {
    fn read(&self, addr: u64, buf: &mut [u8]) -> Result<(), MemError> {
        self.read_slice(buf, GuestAddress(addr))
            .map_err(|_| sys_err(addr))
    }

    fn write(&self, addr: u64, buf: &[u8]) -> Result<(), MemError> {
        self.write_slice(buf, GuestAddress(addr))
            .map_err(|_| sys_err(addr))
    }
}

/// No system memory at all (before QEMU maps guest RAM, and in tests that need none): every
/// access fails, and the unit that tried reports it as the hardware would (a fault, a
/// dropped write).
#[derive(Debug, Clone, Copy, Default)]
pub struct NoSysMem;

impl SysMem for NoSysMem {
    fn read(&self, addr: u64, _buf: &mut [u8]) -> Result<(), MemError> {
        Err(sys_err(addr))
    }
    fn write(&self, addr: u64, _buf: &[u8]) -> Result<(), MemError> {
        Err(sys_err(addr))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use vm_memory::GuestMemoryMmap;

    #[test]
    fn guest_memory_is_sys_mem_and_no_sys_mem_refuses() {
        let ram = GuestMemoryMmap::<()>::from_ranges(&[(GuestAddress(0x1000), 0x1000)]).unwrap();
        SysMem::write(&ram, 0x1ffc, &[1, 2, 3, 4]).unwrap();
        let mut b = [0u8; 4];
        SysMem::read(&ram, 0x1ffc, &mut b).unwrap();
        assert_eq!(b, [1, 2, 3, 4]);
        assert!(SysMem::read(&ram, 0x1ffe, &mut b).is_err(), "runs past RAM");
        assert!(NoSysMem.read(0x1000, &mut b).is_err());
        assert!(NoSysMem.write(0x1000, &b).is_err());
    }
}
