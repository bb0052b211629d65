//! What the units that make memory accesses share: the hardware they act on ([`Hw`]) and
//! virtual-memory reads and writes through an address space, split at page boundaries and
//! translated by the MMU as the named client.
//!
//! The units themselves have their own rooms: [`crate::fifo`] (the host: channels,
//! runlists, PBDMA) and [`crate::ce`] (the copy engine).

pub use crate::hw::reason::VmError;
use crate::mem::{pieces, GpuMemory, PhysMem, Target};

use crate::mmu::tlb::ClientKind;
use crate::mmu::unit::{Mmu, Translation};
use crate::mmu::walk::{Access, Pdb};

/// The smallest page: accesses are translated a 4 KiB page at a time.
const PAGE: u64 = 0x1000;

/// The hardware an engine acts on during one step.
pub struct Hw<'a> {
    /// Video memory and guest RAM.
    pub phys: &'a mut PhysMem,
    /// The MMU (TLBs, walker).
    pub mmu: &'a mut Mmu,
    /// PTIMER's time in nanoseconds (semaphore release timestamps).
    pub now_ns: u64,
}

/// The largest single virtual access the helpers accept (a bound on per-access work).
pub const MAX_VM_ACCESS: usize = 1 << 20;

impl Hw<'_> {
    /// Translates one address for `client`.
    pub fn translate(
        &mut self,
        client: ClientKind,
        pdb: Pdb,
        va: u64,
        access: Access,
        privileged: bool,
    ) -> Result<Option<(Target, u64)>, VmError> {
        match self
            .mmu
            .translate(&*self.phys, client, pdb, va, access, privileged)
        {
            Ok(Translation::Mapped { target, pa, .. }) => Ok(Some((target, pa))),
            Ok(Translation::Sparse) => Ok(None),
            Err(f) => Err(VmError::Fault {
                va,
                fault_type: f.fault_type,
            }),
        }
    }

    /// Reads `buf.len()` bytes at `va` of the address space `pdb` (sparse pages read zero).
    pub fn vm_read(
        &mut self,
        client: ClientKind,
        pdb: Pdb,
        va: u64,
        buf: &mut [u8],
        privileged: bool,
    ) -> Result<(), VmError> {
        for (done, a, n) in pieces(va, buf.len(), PAGE) {
            match self.translate(client, pdb, a, Access::Read, privileged)? {
                Some((t, pa)) => self
                    .phys
                    .read_bytes(t, pa, &mut buf[done..done + n])
                    .map_err(VmError::Mem)?,
                None => buf[done..done + n].fill(0),
            }
        }
        Ok(())
    }

    /// Writes `buf` at `va` of the address space `pdb` (writes to sparse pages are dropped).
    pub fn vm_write(
        &mut self,
        client: ClientKind,
        pdb: Pdb,
        va: u64,
        buf: &[u8],
        privileged: bool,
    ) -> Result<(), VmError> {
        for (done, a, n) in pieces(va, buf.len(), PAGE) {
            if let Some((t, pa)) = self.translate(client, pdb, a, Access::Write, privileged)? {
                self.phys
                    .write_bytes(t, pa, &buf[done..done + n])
                    .map_err(VmError::Mem)?;
            }
        }
        Ok(())
    }

    /// Reads a little-endian u32 at `va`.
    pub fn vm_read_u32(
        &mut self,
        client: ClientKind,
        pdb: Pdb,
        va: u64,
        privileged: bool,
    ) -> Result<u32, VmError> {
        let mut b = [0u8; 4];
        self.vm_read(client, pdb, va, &mut b, privileged)?;
        Ok(u32::from_le_bytes(b))
    }
}

#[cfg(test)]
pub(crate) mod testutil {
    //! A small page-table builder for engine tests: tables in video memory, 4 KiB pages.
    use crate::mem::{GpuMemory, PhysMem, Target};
    use crate::mmu::format::{DualPde, Pde, PdeAperture, Pte};
    use crate::mmu::walk::Pdb;

    /// An address space under construction.
    pub struct Space {
        /// Its page directory.
        pub pdb: Pdb,
        next: u64,
    }

    impl Space {
        /// A new space whose tables are allocated from video memory at `table_base`.
        pub fn new(table_base: u64) -> Self {
            Space {
                pdb: Pdb {
                    target: Target::Video,
                    addr: table_base,
                },
                next: table_base + 0x1000,
            }
        }

        fn table(&mut self, phys: &mut PhysMem, at: u64) -> u64 {
            let v = phys.read_u64(Target::Video, at).unwrap();
            let pde = Pde(v);
            if pde.aperture() != PdeAperture::Invalid {
                return pde.address();
            }
            let t = self.next;
            self.next += 0x1000;
            phys.write_u64(
                Target::Video,
                at,
                Pde::build(PdeAperture::Video, false, t).0,
            )
            .unwrap();
            t
        }

        /// Maps the 4 KiB page at `va` with `pte`.
        pub fn map(&mut self, phys: &mut PhysMem, va: u64, pte: Pte) {
            let pd2 = self.table(phys, self.pdb.addr + ((va >> 47) & 3) * 8);
            let pd1 = self.table(phys, pd2 + ((va >> 38) & 0x1ff) * 8);
            let pd0 = self.table(phys, pd1 + ((va >> 29) & 0x1ff) * 8);
            let slot = pd0 + ((va >> 21) & 0xff) * 16;
            let d = DualPde {
                lo: phys.read_u64(Target::Video, slot).unwrap(),
                hi: phys.read_u64(Target::Video, slot + 8).unwrap(),
            };
            let pt = if d.small().aperture() == PdeAperture::Invalid {
                let t = self.next;
                self.next += 0x1000;
                let nd = DualPde::build(
                    (PdeAperture::Invalid, false, 0),
                    (PdeAperture::Video, false, t),
                );
                phys.write_u64(Target::Video, slot, nd.lo).unwrap();
                phys.write_u64(Target::Video, slot + 8, nd.hi).unwrap();
                t
            } else {
                d.small().address()
            };
            phys.write_u64(Target::Video, pt + ((va >> 12) & 0x1ff) * 8, pte.0)
                .unwrap();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::testutil::Space;
    use super::*;
    use crate::mmu::format::Pte;
    use crate::mmu::tlb::TlbConfig;
    use crate::timing::P100;

    #[test]
    fn reads_and_writes_split_at_pages_and_faults_name_the_address() {
        let mut phys = PhysMem::new(16 << 20);
        let mut mmu = Mmu::new(TlbConfig::default(), P100);
        let mut s = Space::new(0x10_0000);
        // Two virtually adjacent pages, physically far apart.
        s.map(&mut phys, 0x4000, Pte::pfn_vram(0x80_0000));
        s.map(&mut phys, 0x5000, Pte::pfn_vram(0x20_0000));
        let mut hw = Hw {
            phys: &mut phys,
            mmu: &mut mmu,
            now_ns: 0,
        };
        let data: Vec<u8> = (0..64u8).collect();
        hw.vm_write(ClientKind::Hub(1), s.pdb, 0x4fe0, &data, false)
            .unwrap();
        let mut back = [0u8; 64];
        hw.vm_read(ClientKind::Hub(1), s.pdb, 0x4fe0, &mut back, false)
            .unwrap();
        assert_eq!(back.to_vec(), data);
        assert_eq!(hw.phys.vid.read_u32(0x80_0fe0).unwrap(), 0x0302_0100);
        assert_eq!(hw.phys.vid.read_u32(0x20_0000).unwrap(), 0x2322_2120);
        let e = hw
            .vm_read(ClientKind::Hub(1), s.pdb, 0x5ff0, &mut back, false)
            .unwrap_err();
        assert!(matches!(e, VmError::Fault { va: 0x6000, .. }), "{e:?}");
    }
}
