//! `NV_PFAULT_FAULT_TYPE_*`: why the MMU faulted (gp100 `dev_fault.h`). Defined at the
//! bottom because the typed reasons of the model's events carry it ([`crate::fault`]
//! re-exports it beside the fault-buffer entry that encodes it).
//!
//! Inside those reasons it is part of the trace format (postcard variant index, which is
//! also the field's value for 0x0..=0xf): append only; `reason_tags_are_pinned` in
//! [`crate::hw::reason`] pins the tags.

use serde::{Deserialize, Serialize};

/// `NV_PFAULT_FAULT_TYPE_*` (gp100 dev_fault.h).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum FaultType {
    /// 0x0: no valid PDE on the way.
    Pde,
    /// 0x1: PDE page-size mismatch.
    PdeSize,
    /// 0x2: no valid PTE.
    Pte,
    /// 0x3: beyond the VA limit.
    VaLimitViolation,
    /// 0x4: the instance block is not bound.
    UnboundInstBlock,
    /// 0x5: privileged page, unprivileged client.
    PrivViolation,
    /// 0x6: write to a read-only page.
    RoViolation,
    /// 0x7: read of a write-only page.
    WoViolation,
    /// 0x8.
    PitchMaskViolation,
    /// 0x9.
    WorkCreation,
    /// 0xa.
    UnsupportedAperture,
    /// 0xb.
    CompressionFailure,
    /// 0xc.
    UnsupportedKind,
    /// 0xd.
    RegionViolation,
    /// 0xe.
    Poisoned,
    /// 0xf: atomic on an ATOMIC_DISABLE page.
    AtomicViolation,
    /// 0x10..0x1f: not defined for GP100.
    Unknown(u8),
}

impl FaultType {
    /// From the 5-bit field.
    pub fn from_bits(v: u32) -> Self {
        use FaultType::*;
        match v & 0x1f {
            0x0 => Pde,
            0x1 => PdeSize,
            0x2 => Pte,
            0x3 => VaLimitViolation,
            0x4 => UnboundInstBlock,
            0x5 => PrivViolation,
            0x6 => RoViolation,
            0x7 => WoViolation,
            0x8 => PitchMaskViolation,
            0x9 => WorkCreation,
            0xa => UnsupportedAperture,
            0xb => CompressionFailure,
            0xc => UnsupportedKind,
            0xd => RegionViolation,
            0xe => Poisoned,
            0xf => AtomicViolation,
            v => Unknown(v as u8),
        }
    }

    /// The 5-bit field.
    pub fn bits(self) -> u32 {
        use FaultType::*;
        match self {
            Pde => 0x0,
            PdeSize => 0x1,
            Pte => 0x2,
            VaLimitViolation => 0x3,
            UnboundInstBlock => 0x4,
            PrivViolation => 0x5,
            RoViolation => 0x6,
            WoViolation => 0x7,
            PitchMaskViolation => 0x8,
            WorkCreation => 0x9,
            UnsupportedAperture => 0xa,
            CompressionFailure => 0xb,
            UnsupportedKind => 0xc,
            RegionViolation => 0xd,
            Poisoned => 0xe,
            AtomicViolation => 0xf,
            Unknown(v) => u32::from(v) & 0x1f,
        }
    }
}
