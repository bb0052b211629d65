//! The device's physical memory: its video memory and the guest RAM it reaches by DMA, with
//! a log of every DMA access for traces.
//!
//! Every system-memory read is logged with the bytes read (replay serves them again, since
//! replay has no guest), every write with a CRC-32 of its bytes (replay checks them), when
//! logging is on ([`PhysMem::set_log`]). Video memory is the device's own and is not logged:
//! replay rebuilds it from the inputs.

use std::cell::RefCell;

use super::{GpuMemory, MemError, NoSysMem, SysMem, Target, VidMem};
use crate::trace::event::{Data, ModelEvent};

/// Most DMA events held between two drains (a bound on what a guest can make us keep).
pub const MAX_DMA_EVENTS: usize = 65536;

/// Video memory plus guest RAM.
pub struct PhysMem {
    /// Video memory.
    pub vid: VidMem,
    sys: Box<dyn SysMem + Send>,
    log_on: bool,
    log: RefCell<Vec<ModelEvent>>,
}

impl std::fmt::Debug for PhysMem {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PhysMem")
            .field("vid", &self.vid)
            .field("log_on", &self.log_on)
            .finish_non_exhaustive()
    }
}

impl PhysMem {
    /// `vram` bytes of video memory and no guest RAM yet.
    pub fn new(vram: u64) -> Self {
        PhysMem {
            vid: VidMem::new(vram),
            sys: Box::new(NoSysMem),
            log_on: false,
            log: RefCell::new(Vec::new()),
        }
    }

    /// Replaces the guest RAM the device reaches (the transport calls this whenever QEMU's
    /// DMA map changes; replay installs recorded reads).
    pub fn set_sys(&mut self, sys: Box<dyn SysMem + Send>) {
        self.sys = sys;
    }

    /// Turns the DMA log on or off.
    pub fn set_log(&mut self, on: bool) {
        self.log_on = on;
        if !on {
            self.log.get_mut().clear();
        }
    }

    /// The DMA events since the last call.
    pub fn take_log(&mut self) -> Vec<ModelEvent> {
        std::mem::take(self.log.get_mut())
    }

    fn push(&self, e: ModelEvent) {
        let mut l = self.log.borrow_mut();
        if l.len() < MAX_DMA_EVENTS {
            l.push(e);
        }
    }

    /// Reads guest RAM (logged).
    pub fn sys_read(&self, addr: u64, buf: &mut [u8]) -> Result<(), MemError> {
        let r = self.sys.read(addr, buf);
        if self.log_on {
            self.push(ModelEvent::DmaRead {
                addr,
                len: buf.len() as u32,
                data: r.is_ok().then(|| Data::from_slice(buf)),
            });
        }
        r
    }

    /// Writes guest RAM (logged).
    pub fn sys_write(&self, addr: u64, buf: &[u8]) -> Result<(), MemError> {
        let r = self.sys.write(addr, buf);
        if self.log_on {
            self.push(ModelEvent::DmaWrite {
                addr,
                len: buf.len() as u32,
                crc: crc32fast::hash(buf),
                ok: r.is_ok(),
            });
        }
        r
    }
}

fn sys_target(target: Target, addr: u64, e: MemError) -> MemError {
    match e {
        MemError::OutOfRange { .. } => MemError::OutOfRange { target, addr },
        other => other,
    }
}

impl GpuMemory for PhysMem {
    fn read_bytes(&self, target: Target, addr: u64, buf: &mut [u8]) -> Result<(), MemError> {
        match target {
            Target::Video => self.vid.read(addr, buf),
            Target::Peer(p) => Err(MemError::Peer(p)),
            _ => self
                .sys_read(addr, buf)
                .map_err(|e| sys_target(target, addr, e)),
        }
    }

    fn write_bytes(&mut self, target: Target, addr: u64, buf: &[u8]) -> Result<(), MemError> {
        match target {
            Target::Video => self.vid.write(addr, buf),
            Target::Peer(p) => Err(MemError::Peer(p)),
            _ => self
                .sys_write(addr, buf)
                .map_err(|e| sys_target(target, addr, e)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use vm_memory::{GuestAddress, GuestMemoryMmap};

    #[test]
    fn sys_accesses_are_logged_video_accesses_are_not() {
        let ram = GuestMemoryMmap::<()>::from_ranges(&[(GuestAddress(0), 0x1000)]).unwrap();
        let mut p = PhysMem::new(1 << 20);
        p.set_sys(Box::new(ram));
        p.set_log(true);
        p.write_bytes(Target::SysCoherent, 0x10, &[9, 8, 7])
            .unwrap();
        let mut b = [0u8; 3];
        p.read_bytes(Target::SysNoncoherent, 0x10, &mut b).unwrap();
        assert_eq!(b, [9, 8, 7]);
        assert!(p.read_bytes(Target::SysCoherent, 0x2000, &mut b).is_err());
        p.write_u64(Target::Video, 0x100, 1).unwrap();
        assert_eq!(
            p.take_log(),
            vec![
                ModelEvent::DmaWrite {
                    addr: 0x10,
                    len: 3,
                    crc: crc32fast::hash(&[9, 8, 7]),
                    ok: true
                },
                ModelEvent::DmaRead {
                    addr: 0x10,
                    len: 3,
                    data: Some(Data::from_slice(&[9, 8, 7])),
                },
                ModelEvent::DmaRead {
                    addr: 0x2000,
                    len: 3,
                    data: None
                },
            ]
        );
        p.set_log(false);
        p.read_bytes(Target::SysCoherent, 0x10, &mut b).unwrap();
        assert!(p.take_log().is_empty());
    }

    #[test]
    fn without_guest_ram_system_accesses_fail() {
        let mut p = PhysMem::new(1 << 20);
        assert!(p.read_u64(Target::SysCoherent, 0).is_err());
        assert!(p.write_u32(Target::SysNoncoherent, 0, 1).is_err());
        assert_eq!(p.read_u64(Target::Peer(2), 0), Err(MemError::Peer(2)));
        assert_eq!(p.read_u64(Target::Video, 8).unwrap(), 0);
    }
}
