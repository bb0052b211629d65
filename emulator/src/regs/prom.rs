//! PROM: the VBIOS ROM window at BAR0 + 0x300000 (1 MiB), read-only. nouveau's PROM shadow
//! source (nvkm/subdev/bios/shadowrom.c) reads it 32 bits at a time; we serve our synthetic
//! image (crate::vbios) there. Reads past the image return 0 (our choice; an EEPROM would read
//! 0xff, and nouveau stops at the image length the PCIR gives either way).

use super::Bar0Unit;

/// Window base.
pub const PROM_BASE: u32 = 0x300000;
/// Window size.
pub const PROM_SIZE: u32 = 0x100000;

/// The ROM window.
#[derive(Debug, Clone)]
pub struct Prom {
    image: Vec<u8>,
}

impl Prom {
    /// A window serving `image`.
    pub fn new(image: Vec<u8>) -> Self {
        Prom { image }
    }

    /// Whether `offset` is in the window.
    pub fn contains(offset: u32) -> bool {
        (PROM_BASE..PROM_BASE + PROM_SIZE).contains(&offset)
    }
}

impl Bar0Unit for Prom {
    fn name(&self) -> &'static str {
        "PROM"
    }

    fn ranges(&self) -> Vec<std::ops::Range<u32>> {
        crate::bus::block(PROM_BASE, PROM_SIZE)
    }

    fn read32(&mut self, offset: u32) -> Option<u32> {
        if !Self::contains(offset) {
            return None;
        }
        let at = (offset - PROM_BASE) as usize;
        let mut w = [0u8; 4];
        for (i, byte) in w.iter_mut().enumerate() {
            *byte = self.image.get(at + i).copied().unwrap_or(0);
        }
        Some(u32::from_le_bytes(w))
    }

    fn write32(&mut self, offset: u32, _value: u32) -> bool {
        // Read-only: writes are decoded and dropped.
        Self::contains(offset)
    }

    fn reset(&mut self) {}
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn serves_the_image_read_only() {
        let mut p = Prom::new(vec![0x55, 0xaa, 0x08, 0x00, 0x11]);
        assert_eq!(p.read32(PROM_BASE), Some(0x0008_aa55));
        assert_eq!(p.read32(PROM_BASE + 4), Some(0x11));
        assert_eq!(p.read32(PROM_BASE + PROM_SIZE - 4), Some(0));
        assert!(p.write32(PROM_BASE, 0));
        assert_eq!(p.read32(PROM_BASE), Some(0x0008_aa55));
        assert_eq!(p.read32(PROM_BASE + PROM_SIZE), None);
    }
}
