//! The device's host-facing port: accesses by address space exactly as a transport delivers
//! them (a vfio-user region index, an offset, a buffer), with the size rules and the answers
//! for bad accesses in one place. The vfio-user server and trace replay both go through here,
//! so a replay reproduces what the guest saw bit for bit.

use serde::{Deserialize, Serialize};

use crate::device::{Device, DeviceError};
use crate::pci::CONFIG_SPACE_SIZE;

/// Which address space an access targets (vfio-user's region indices: 0–5 BARs, 6 ROM,
/// 7 config space; linux/vfio.h `VFIO_PCI_*_REGION_INDEX`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum Space {
    /// BAR `n` (0–5).
    Bar(u8),
    /// The expansion ROM BAR.
    Rom,
    /// PCI configuration space.
    Config,
    /// Any other region index (answered as an error).
    Other(u32),
}

/// vfio's region index of the expansion ROM.
pub const REGION_ROM: u32 = 6;
/// vfio's region index of PCI configuration space.
pub const REGION_CONFIG: u32 = 7;

impl Space {
    /// The space of a vfio-user region index.
    pub fn from_region(region: u32) -> Self {
        match region {
            0..=5 => Space::Bar(region as u8),
            REGION_ROM => Space::Rom,
            REGION_CONFIG => Space::Config,
            r => Space::Other(r),
        }
    }
}

/// Largest single BAR access accepted (QEMU splits guest accesses into at most 8 bytes).
pub const MAX_BAR_ACCESS: usize = 8;
/// Largest single config-space access: the whole space (QEMU reads all 256 bytes at setup).
pub const MAX_CONFIG_ACCESS: usize = CONFIG_SPACE_SIZE;

/// Why an access was refused or only partly served. The buffer of a refused read holds the
/// bus's answer (all ones) whenever its size is plausible.
#[derive(Debug, thiserror::Error)]
pub enum PortError {
    /// Zero bytes, or more than the space allows in one access.
    #[error("{space:?} access of {len} bytes at {offset:#x}: bad size")]
    BadSize {
        /// The space.
        space: Space,
        /// The offset.
        offset: u64,
        /// The length asked for.
        len: usize,
    },
    /// The model refused it.
    #[error("{space:?}: {source}")]
    Device {
        /// The space.
        space: Space,
        /// What the model said.
        #[source]
        source: DeviceError,
    },
    /// No ROM is served yet.
    #[error("expansion ROM read at {0:#x}: no ROM is served")]
    NoRom(u64),
    /// A region that does not exist or is not writable.
    #[error("{space:?} at {offset:#x}: no such region or not writable")]
    NoRegion {
        /// The space.
        space: Space,
        /// The offset.
        offset: u64,
    },
}

fn size_ok(space: Space, len: usize) -> bool {
    let max = if space == Space::Config {
        MAX_CONFIG_ACCESS
    } else {
        MAX_BAR_ACCESS
    };
    len != 0 && len <= max
}

/// Reads `data.len()` bytes at `offset` of `space`.
pub fn read(dev: &mut Device, space: Space, offset: u64, data: &mut [u8]) -> Result<(), PortError> {
    if !size_ok(space, data.len()) {
        // All ones for a plausible size; an absurd buffer (sized by a hostile message) is
        // left untouched rather than filled gigabyte by gigabyte.
        if data.len() <= MAX_CONFIG_ACCESS {
            data.fill(0xff);
        }
        return Err(PortError::BadSize {
            space,
            offset,
            len: data.len(),
        });
    }
    match space {
        Space::Bar(n) => dev
            .bar_read(n as u32, offset, data)
            .map_err(|source| PortError::Device { space, source }),
        Space::Config => {
            dev.config_read(offset, data);
            Ok(())
        }
        Space::Rom => {
            data.fill(0xff);
            Err(PortError::NoRom(offset))
        }
        Space::Other(_) => {
            data.fill(0xff);
            Err(PortError::NoRegion { space, offset })
        }
    }
}

/// Writes `data` at `offset` of `space`.
pub fn write(dev: &mut Device, space: Space, offset: u64, data: &[u8]) -> Result<(), PortError> {
    if !size_ok(space, data.len()) {
        return Err(PortError::BadSize {
            space,
            offset,
            len: data.len(),
        });
    }
    match space {
        Space::Bar(n) => dev
            .bar_write(n as u32, offset, data)
            .map_err(|source| PortError::Device { space, source }),
        Space::Config => {
            dev.config_write(offset, data);
            Ok(())
        }
        Space::Rom | Space::Other(_) => Err(PortError::NoRegion { space, offset }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn boot0_through_the_port() {
        let mut d = Device::new();
        let mut b = [0u8; 4];
        read(&mut d, Space::Bar(0), 0, &mut b).unwrap();
        assert_eq!(u32::from_le_bytes(b), 0x1300_00a1);
    }

    #[test]
    fn bad_sizes_and_spaces_answer_all_ones() {
        let mut d = Device::new();
        let mut b = [0u8; 16];
        assert!(matches!(
            read(&mut d, Space::Bar(0), 0, &mut b),
            Err(PortError::BadSize { .. })
        ));
        assert_eq!(b, [0xff; 16]);
        let mut b = [0u8; 4];
        assert!(read(&mut d, Space::Rom, 0, &mut b).is_err());
        assert_eq!(b, [0xff; 4]);
        assert!(read(&mut d, Space::Other(9), 0, &mut b).is_err());
        assert!(write(&mut d, Space::Rom, 0, &b).is_err());
        assert!(write(&mut d, Space::Bar(0), 0, &[]).is_err());
        let mut big = vec![0u8; 4096];
        assert!(read(&mut d, Space::Config, 0, &mut big).is_err());
        assert!(big.iter().all(|&x| x == 0), "absurd buffers are not filled");
    }

    #[test]
    fn region_indices() {
        assert_eq!(Space::from_region(0), Space::Bar(0));
        assert_eq!(Space::from_region(5), Space::Bar(5));
        assert_eq!(Space::from_region(6), Space::Rom);
        assert_eq!(Space::from_region(7), Space::Config);
        assert_eq!(Space::from_region(8), Space::Other(8));
    }
}
