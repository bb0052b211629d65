//! Video memory: the GPU's own memory, owned by the device and backed lazily.
//!
//! The P100 has 16 GiB of HBM2; the model's size is configurable (default 4 GiB,
//! [`crate::mem::DEFAULT_VRAM`]). Memory is backed in 64 KiB chunks on first write, so
//! never-written memory reads as zero and costs nothing. The chunks hang off a table with one
//! slot per chunk (8 bytes per 64 KiB: 512 KiB for 4 GiB), so finding one is an index, not a
//! hash.
//!
//! **Write stamps.** Every write stamps the 4 KiB pages it touches with a fresh value of one
//! counter (the epoch), so a reader that noted the epoch can later ask whether anything in a
//! range was written since ([`VidMem::written_since`]): the PTE checker re-reads only the page
//! tables that changed. The stamps are one `u64` per 4 KiB page in a zero-initialised table
//! (untouched parts of it cost no memory).

use super::{pieces, MemError, Target};

/// Bytes of video memory backed per chunk.
pub(crate) const CHUNK: u64 = 64 * 1024;

/// Video memory of a configurable size, backed lazily in 64 KiB chunks.
#[derive(Debug, Default, Clone)]
pub struct VidMem {
    size: u64,
    chunks: Vec<Option<Box<[u8]>>>,
    backed: u64,
    /// Per 4 KiB page: the epoch of its last write (0: never written).
    stamps: Vec<u64>,
    epoch: u64,
}

/// Granule of the write stamps.
pub const STAMP_PAGE: u64 = 4096;

impl VidMem {
    /// `size` bytes of video memory.
    pub fn new(size: u64) -> Self {
        VidMem {
            size,
            chunks: vec![None; size.div_ceil(CHUNK) as usize],
            backed: 0,
            stamps: vec![0; size.div_ceil(STAMP_PAGE) as usize],
            epoch: 0,
        }
    }

    /// Its size in bytes.
    pub fn size(&self) -> u64 {
        self.size
    }

    /// Bytes actually backed.
    pub fn backed_bytes(&self) -> u64 {
        self.backed * CHUNK
    }

    /// The current epoch: every later write stamps its pages with a larger value.
    pub fn epoch(&self) -> u64 {
        self.epoch
    }

    /// Whether any byte of `[addr, addr + len)` was written after `epoch` (a value of
    /// [`VidMem::epoch`]). A range reaching past the end counts as written: its reader must
    /// look again (and will get the out-of-range error).
    pub fn written_since(&self, addr: u64, len: u64, epoch: u64) -> bool {
        let Some(end) = addr.checked_add(len.max(1)).filter(|&e| e <= self.size) else {
            return true;
        };
        let (first, last) = (addr / STAMP_PAGE, (end - 1) / STAMP_PAGE);
        self.stamps[first as usize..=last as usize]
            .iter()
            .any(|&s| s > epoch)
    }

    /// Stamps the pages of `[addr, addr + len)` (checked to be in range) as written now.
    #[inline]
    fn stamp(&mut self, addr: u64, len: usize) {
        self.epoch += 1;
        let (first, last) = (
            addr / STAMP_PAGE,
            (addr + len.max(1) as u64 - 1) / STAMP_PAGE,
        );
        for s in &mut self.stamps[first as usize..=last as usize] {
            *s = self.epoch;
        }
    }

    /// The chunk holding `addr` (checked to be below the size), if it is backed.
    #[inline]
    fn chunk(&self, addr: u64) -> Option<&[u8]> {
        self.chunks
            .get((addr / CHUNK) as usize)
            .and_then(|c| c.as_deref())
    }

    /// The chunk holding `addr` (checked to be below the size), backed on first use.
    fn chunk_mut(&mut self, addr: u64) -> &mut [u8] {
        let slot = &mut self.chunks[(addr / CHUNK) as usize];
        if slot.is_none() {
            self.backed += 1;
        }
        slot.get_or_insert_with(|| vec![0u8; CHUNK as usize].into_boxed_slice())
    }

    fn check_range(&self, addr: u64, len: usize) -> Result<(), MemError> {
        if addr
            .checked_add(len as u64)
            .is_none_or(|end| end > self.size)
        {
            return Err(MemError::OutOfRange {
                target: Target::Video,
                addr,
            });
        }
        Ok(())
    }

    fn check(&self, addr: u64) -> Result<(), MemError> {
        if !addr.is_multiple_of(8) {
            return Err(MemError::OutOfRange {
                target: Target::Video,
                addr,
            });
        }
        self.check_range(addr, 8)
    }

    /// Reads a u64 at an 8-byte-aligned address.
    pub fn read_u64(&self, addr: u64) -> Result<u64, MemError> {
        self.check(addr)?;
        let Some(c) = self.chunk(addr) else {
            return Ok(0);
        };
        let o = (addr % CHUNK) as usize;
        Ok(u64::from_le_bytes(c[o..o + 8].try_into().expect("8 bytes")))
    }

    /// Writes a u64 at an 8-byte-aligned address.
    pub fn write_u64(&mut self, addr: u64, v: u64) -> Result<(), MemError> {
        self.check(addr)?;
        self.stamp(addr, 8);
        let c = self.chunk_mut(addr);
        let o = (addr % CHUNK) as usize;
        c[o..o + 8].copy_from_slice(&v.to_le_bytes());
        Ok(())
    }

    /// Reads `buf.len()` bytes at any address (chunk boundaries included).
    pub fn read(&self, addr: u64, buf: &mut [u8]) -> Result<(), MemError> {
        self.check_range(addr, buf.len())?;
        for (done, a, n) in pieces(addr, buf.len(), CHUNK) {
            let o = (a % CHUNK) as usize;
            match self.chunk(a) {
                Some(c) => buf[done..done + n].copy_from_slice(&c[o..o + n]),
                None => buf[done..done + n].fill(0),
            }
        }
        Ok(())
    }

    /// Writes `buf` at any address (chunk boundaries included).
    pub fn write(&mut self, addr: u64, buf: &[u8]) -> Result<(), MemError> {
        self.check_range(addr, buf.len())?;
        for (done, a, n) in pieces(addr, buf.len(), CHUNK) {
            let o = (a % CHUNK) as usize;
            let src = &buf[done..done + n];
            // Writing zeros to never-written memory needs no backing.
            if self.chunk(a).is_none() && src.iter().all(|&b| b == 0) {
                continue;
            }
            self.stamp(a, n);
            self.chunk_mut(a)[o..o + n].copy_from_slice(src);
        }
        Ok(())
    }

    /// Reads a little-endian u32 at a 4-byte-aligned address.
    pub fn read_u32(&self, addr: u64) -> Result<u32, MemError> {
        let mut b = [0u8; 4];
        if !addr.is_multiple_of(4) {
            return Err(MemError::OutOfRange {
                target: Target::Video,
                addr,
            });
        }
        self.read(addr, &mut b)?;
        Ok(u32::from_le_bytes(b))
    }

    /// Writes a little-endian u32 at a 4-byte-aligned address.
    pub fn write_u32(&mut self, addr: u64, v: u32) -> Result<(), MemError> {
        if !addr.is_multiple_of(4) {
            return Err(MemError::OutOfRange {
                target: Target::Video,
                addr,
            });
        }
        self.write(addr, &v.to_le_bytes())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn writes_stamp_the_pages_they_touch() {
        let mut v = VidMem::new(1 << 20);
        let e0 = v.epoch();
        assert!(!v.written_since(0, 1 << 20, e0), "nothing written yet");
        v.write_u64(0x2008, 5).unwrap();
        assert!(v.written_since(0x2000, 0x1000, e0));
        assert!(
            !v.written_since(0x1000, 0x1000, e0),
            "the page before is untouched"
        );
        assert!(
            !v.written_since(0x3000, 0x1000, e0),
            "the page after is untouched"
        );
        let e1 = v.epoch();
        assert!(!v.written_since(0x2000, 0x1000, e1), "nothing since e1");
        // A byte write across a page boundary stamps both pages.
        v.write(0x4ffe, &[1, 2, 3, 4]).unwrap();
        assert!(v.written_since(0x4000, 1, e1) && v.written_since(0x5000, 1, e1));
        // Zeros into unbacked memory change nothing and stamp nothing.
        let e2 = v.epoch();
        v.write(0x80000, &[0; 64]).unwrap();
        assert!(!v.written_since(0x80000, 64, e2));
        // A range past the end must be looked at again.
        assert!(v.written_since((1 << 20) - 8, 16, v.epoch()));
        assert!(v.written_since(u64::MAX - 4, 16, v.epoch()));
        // A failed write stamps nothing.
        let e3 = v.epoch();
        assert!(v.write_u64(1 << 20, 1).is_err());
        assert_eq!(v.epoch(), e3);
    }

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
    fn byte_ranges_cross_chunks_and_zero_writes_stay_unbacked() {
        let mut v = VidMem::new(1 << 20);
        v.write(CHUNK - 3, &[0; 64]).unwrap();
        assert_eq!(v.backed_bytes(), 0, "zeros need no backing");
        let data: Vec<u8> = (0..200u8).collect();
        v.write(CHUNK - 100, &data).unwrap();
        let mut back = vec![0u8; 200];
        v.read(CHUNK - 100, &mut back).unwrap();
        assert_eq!(back, data);
        assert_eq!(v.backed_bytes(), 2 * CHUNK);
        v.write_u32(0x40, 0xdead_beef).unwrap();
        assert_eq!(v.read_u32(0x40).unwrap(), 0xdead_beef);
        assert_eq!(v.read_u64(0x40).unwrap(), 0xdead_beef);
        assert!(v.read_u32(0x41).is_err());
        assert!(v.read(1 << 20, &mut [0u8; 1]).is_err());
        assert!(v.write(u64::MAX, &[1]).is_err());
        assert!(v.read((1 << 20) - 4, &mut [0u8; 4]).is_ok());
    }
}
