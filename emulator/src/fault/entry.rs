//! One replayable-fault-buffer entry: 32 bytes, eight little-endian 32-bit words.
//!
//! Layout: `NVB069_FAULT_BUF_ENTRY_*` in open-gpu-doc / open-gpu-kernel-modules `clb069.h`,
//! and how nouveau reads it (`nouveau_svm_fault_cache`, drivers/gpu/drm/nouveau/nouveau_svm.c):
//!
//! | word | bits | field |
//! | --- | --- | --- |
//! | 0 | 9:8 | INST_APERTURE (0 video, 2 sys coherent, 3 sys non-coherent) |
//! | 0–1 | 63:12 | INST (instance block address) |
//! | 2–3 | 63:0 | ADDR (faulting virtual address) |
//! | 4–5 | 63:0 | TIMESTAMP (GPU clock) |
//! | 6 | 31:0 | engine id as nouveau reads it (`RESERVED` in clb069.h) |
//! | 7 | 4:0 | FAULT_TYPE (`NV_PFAULT_FAULT_TYPE_*`, dev_fault.h) |
//! | 7 | 14:8 | CLIENT |
//! | 7 | 18:16 | ACCESS_TYPE (`NV_PFAULT_ACCESS_TYPE_*`) |
//! | 7 | 20 | MMU_CLIENT_TYPE (0 GPC, 1 HUB) |
//! | 7 | 28:24 | GPC_ID |
//! | 7 | 31 | VALID |

use serde::Serialize;

pub use crate::hw::fault::FaultType;
use crate::hw::field::hex_u64;

/// `NV_PFAULT_ACCESS_TYPE_*` (gp100 dev_fault.h): 0 read, 1 write, 2 atomic, 3 prefetch.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum AccessType {
    /// 0.
    Read,
    /// 1.
    Write,
    /// 2.
    Atomic,
    /// 3.
    Prefetch,
    /// 4..7: not defined for GP100.
    Unknown(u8),
}

impl AccessType {
    /// From the 3-bit field.
    pub fn from_bits(v: u32) -> Self {
        match v & 7 {
            0 => AccessType::Read,
            1 => AccessType::Write,
            2 => AccessType::Atomic,
            3 => AccessType::Prefetch,
            v => AccessType::Unknown(v as u8),
        }
    }
    /// The 3-bit field.
    pub fn bits(self) -> u32 {
        match self {
            AccessType::Read => 0,
            AccessType::Write => 1,
            AccessType::Atomic => 2,
            AccessType::Prefetch => 3,
            AccessType::Unknown(v) => u32::from(v) & 7,
        }
    }
}

/// A decoded fault-buffer entry, named as `gp100emu decode fault` prints it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct FaultEntry {
    /// Instance block byte address.
    #[serde(serialize_with = "hex_u64")]
    pub inst: u64,
    /// INST_APERTURE (0 video, 2 sys coherent, 3 sys non-coherent).
    pub inst_aperture: u8,
    /// Faulting virtual address.
    #[serde(serialize_with = "hex_u64")]
    pub addr: u64,
    /// GPU-clock timestamp.
    pub timestamp: u64,
    /// Engine id (word 6).
    pub engine: u32,
    /// VALID.
    pub valid: bool,
    /// GPC_ID.
    pub gpc: u8,
    /// MMU_CLIENT_TYPE is HUB.
    pub hub: bool,
    /// ACCESS_TYPE.
    pub access: AccessType,
    /// CLIENT.
    pub client: u8,
    /// FAULT_TYPE.
    pub fault_type: FaultType,
}

impl FaultEntry {
    /// Decodes 32 bytes.
    pub fn decode(b: &[u8; 32]) -> Self {
        let w = |i: usize| u32::from_le_bytes(b[4 * i..4 * i + 4].try_into().expect("4 bytes"));
        let info = w(7);
        FaultEntry {
            inst: (u64::from(w(1)) << 32) | u64::from(w(0) & 0xffff_f000),
            inst_aperture: ((w(0) >> 8) & 3) as u8,
            addr: (u64::from(w(3)) << 32) | u64::from(w(2)),
            timestamp: (u64::from(w(5)) << 32) | u64::from(w(4)),
            engine: w(6),
            valid: info >> 31 != 0,
            gpc: ((info >> 24) & 0x1f) as u8,
            hub: (info >> 20) & 1 != 0,
            access: AccessType::from_bits(info >> 16),
            client: ((info >> 8) & 0x7f) as u8,
            fault_type: FaultType::from_bits(info),
        }
    }

    /// Encodes 32 bytes (what the GPU writes into the buffer).
    pub fn encode(&self) -> [u8; 32] {
        let info = self.fault_type.bits()
            | (u32::from(self.client) & 0x7f) << 8
            | self.access.bits() << 16
            | u32::from(self.hub) << 20
            | (u32::from(self.gpc) & 0x1f) << 24
            | u32::from(self.valid) << 31;
        let words = [
            (self.inst as u32 & 0xffff_f000) | (u32::from(self.inst_aperture) & 3) << 8,
            (self.inst >> 32) as u32,
            self.addr as u32,
            (self.addr >> 32) as u32,
            self.timestamp as u32,
            (self.timestamp >> 32) as u32,
            self.engine,
            info,
        ];
        let mut b = [0u8; 32];
        for (i, v) in words.iter().enumerate() {
            b[4 * i..4 * i + 4].copy_from_slice(&v.to_le_bytes());
        }
        b
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn entry_round_trip_and_nouveau_view() {
        let e = FaultEntry {
            inst: 0x1_2345_6000,
            inst_aperture: 2,
            addr: 0x7fff_1234_5000,
            timestamp: 0x0123_4567_89ab_cdef,
            engine: 0x40,
            valid: true,
            gpc: 3,
            hub: false,
            access: AccessType::Write,
            client: 0x1c,
            fault_type: FaultType::Pte,
        };
        let b = e.encode();
        assert_eq!(FaultEntry::decode(&b), e);
        // nouveau_svm_fault_cache reads the info word at 0x1c: bit 31 valid, 28:24 gpc,
        // 20 hub, 19:16 access, 14:8 client, 4:0 fault type.
        let info = u32::from_le_bytes(b[0x1c..0x20].try_into().unwrap());
        assert_eq!(info, 1 << 31 | 3 << 24 | 1 << 16 | 0x1c << 8 | 2);
        let inst_lo = u32::from_le_bytes(b[0..4].try_into().unwrap());
        assert_eq!(inst_lo & 0xfffff000, 0x2345_6000);
        assert_eq!((inst_lo >> 8) & 3, 2);
    }

    #[test]
    fn every_fault_and_access_code_round_trips() {
        for v in 0..32 {
            assert_eq!(FaultType::from_bits(v).bits(), v);
        }
        for v in 0..8 {
            assert_eq!(AccessType::from_bits(v).bits(), v);
        }
        assert_eq!(FaultType::from_bits(0xf), FaultType::AtomicViolation);
        assert_eq!(FaultType::from_bits(0x6), FaultType::RoViolation);
    }

    #[test]
    fn garbage_decodes() {
        let e = FaultEntry::decode(&[0xff; 32]);
        assert!(e.valid);
        assert_eq!(e.fault_type, FaultType::Unknown(0x1f));
        assert_eq!(e.access, AccessType::Unknown(7));
    }
}
