//! The device's physical memory: its video memory and the guest RAM it reaches by DMA, with
//! a log of every DMA access for traces.
//!
//! Every system-memory read is logged with the bytes read (replay serves them again, since
//! replay has no guest), every write with a CRC-32 of its bytes (replay checks them) and,
//! with [`PhysMem::set_log_write_data`] (`--trace-data`), the bytes too, when logging is on
//! ([`PhysMem::set_log`]). Video memory is the device's own and is not logged:
//! replay rebuilds it from the inputs.

use std::cell::{Cell, RefCell};

use super::{Backing, MemError, NoSysMem, SysMem, VidMem};
use crate::hw::event::{Data, ModelEvent};

/// Most DMA events held between two drains (a bound on what a guest can make us keep). One
/// PTE-checker scan of a large mapping is a few CPU page-table reads per page, so this is
/// generous; past it (or past [`MAX_DMA_LOG_BYTES`]) events are counted, not kept, and the
/// drain reports the count ([`ModelEvent::EventsDropped`]).
pub const MAX_DMA_EVENTS: usize = 1 << 20;
/// Most DMA bytes (read data, `--trace-data` write data) held between two drains.
pub const MAX_DMA_LOG_BYTES: usize = 64 << 20;

/// Video memory plus guest RAM.
pub struct PhysMem {
    /// Video memory.
    pub vid: VidMem,
    sys: Box<dyn SysMem + Send>,
    log_on: bool,
    log_write_data: bool,
    log: RefCell<Vec<ModelEvent>>,
    log_bytes: Cell<usize>,
    dropped: Cell<u64>,
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
            log_write_data: false,
            log: RefCell::new(Vec::new()),
            log_bytes: Cell::new(0),
            dropped: Cell::new(0),
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
            self.log_bytes.set(0);
            self.dropped.set(0);
        }
    }

    /// Whether logged DMA writes carry their bytes (not only a CRC).
    pub fn set_log_write_data(&mut self, on: bool) {
        self.log_write_data = on;
    }

    /// Whether DMA events are waiting for [`PhysMem::take_log`].
    pub fn has_log(&self) -> bool {
        !self.log.borrow().is_empty() || self.dropped.get() > 0
    }

    /// The DMA events since the last call.
    pub fn take_log(&mut self) -> Vec<ModelEvent> {
        self.log_bytes.set(0);
        let mut l = std::mem::take(self.log.get_mut());
        let count = self.dropped.replace(0);
        if count > 0 {
            l.push(ModelEvent::EventsDropped { count });
        }
        l
    }

    fn push(&self, e: ModelEvent, bytes: usize) {
        let mut l = self.log.borrow_mut();
        let total = self.log_bytes.get().saturating_add(bytes);
        if l.len() < MAX_DMA_EVENTS && total <= MAX_DMA_LOG_BYTES {
            l.push(e);
            self.log_bytes.set(total);
        } else {
            self.dropped.set(self.dropped.get().saturating_add(1));
        }
    }

    /// Reads guest RAM (logged).
    pub fn sys_read(&self, addr: u64, buf: &mut [u8]) -> Result<(), MemError> {
        let r = self.sys.read(addr, buf);
        if self.log_on {
            self.push(
                ModelEvent::DmaRead {
                    addr,
                    len: buf.len() as u32,
                    data: r.is_ok().then(|| Data::from_slice(buf)),
                },
                buf.len(),
            );
        }
        r
    }

    /// Writes guest RAM (logged).
    pub fn sys_write(&self, addr: u64, buf: &[u8]) -> Result<(), MemError> {
        let r = self.sys.write(addr, buf);
        if self.log_on {
            self.push(
                ModelEvent::DmaWrite {
                    addr,
                    len: buf.len() as u32,
                    crc: crc32fast::hash(buf),
                    ok: r.is_ok(),
                    data: self.log_write_data.then(|| Data::from_slice(buf)),
                },
                if self.log_write_data { buf.len() } else { 0 },
            );
        }
        r
    }
}

impl Backing for PhysMem {
    fn vid(&self) -> &VidMem {
        &self.vid
    }
    fn vid_mut(&mut self) -> &mut VidMem {
        &mut self.vid
    }
    fn sys_read(&self, addr: u64, buf: &mut [u8]) -> Result<(), MemError> {
        PhysMem::sys_read(self, addr, buf)
    }
    fn sys_write(&self, addr: u64, buf: &[u8]) -> Result<(), MemError> {
        PhysMem::sys_write(self, addr, buf)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::mem::{GpuMemory, Target};
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
                    ok: true,
                    data: None,
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
        p.set_log_write_data(true);
        p.write_bytes(Target::SysCoherent, 0x20, &[5, 6]).unwrap();
        assert_eq!(
            p.take_log(),
            vec![ModelEvent::DmaWrite {
                addr: 0x20,
                len: 2,
                crc: crc32fast::hash(&[5, 6]),
                ok: true,
                data: Some(Data::from_slice(&[5, 6])),
            }]
        );
        p.set_log(false);
        p.read_bytes(Target::SysCoherent, 0x10, &mut b).unwrap();
        assert!(p.take_log().is_empty());
    }

    #[test]
    fn the_log_is_bounded_and_says_what_it_dropped() {
        let ram = GuestMemoryMmap::<()>::from_ranges(&[(GuestAddress(0), 0x1000)]).unwrap();
        let mut p = PhysMem::new(1 << 20);
        p.set_sys(Box::new(ram));
        p.set_log(true);
        let mut page = vec![0u8; 0x1000];
        let fit = MAX_DMA_LOG_BYTES / page.len();
        for _ in 0..fit + 3 {
            p.read_bytes(Target::SysCoherent, 0, &mut page).unwrap();
        }
        let log = p.take_log();
        assert_eq!(log.len(), fit + 1);
        assert_eq!(log.last(), Some(&ModelEvent::EventsDropped { count: 3 }));
        // The next drain starts afresh.
        p.read_bytes(Target::SysCoherent, 0, &mut page).unwrap();
        assert_eq!(p.take_log().len(), 1);
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
