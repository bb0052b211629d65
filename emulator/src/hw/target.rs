//! Memory targets and a failed access to one: the vocabulary every unit that touches memory
//! shares (defined here, at the bottom, because the model's events carry [`MemError`] inside
//! their typed reasons; [`crate::mem`] re-exports both).
//!
//! Both are part of the trace format inside those reasons (postcard variant index): append
//! only, like [`crate::hw::event::ModelEvent`]; `reason_tags_are_pinned` in
//! [`crate::hw::reason`] pins their tags.

use serde::{Deserialize, Serialize};

/// Which memory an address is in.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
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

impl Target {
    /// Decodes NVIDIA's two-bit memory-target field as the instance block's page-directory
    /// word, the BAR BLOCK registers, PCCSR's instance pointer, RUNLIST_BASE, RAMFC's USERD
    /// and BAR0_WINDOW all encode it (gp100 `dev_ram.h`/`dev_bus.h`/`dev_fifo.h`: 0 VID_MEM,
    /// 2 SYS_MEM_COHERENT, 3 SYS_MEM_NONCOHERENT). The low two bits of `bits` are read; 1 is
    /// no memory the unit can reach, so None.
    pub fn from_target_field(bits: u64) -> Option<Target> {
        match bits & 3 {
            0 => Some(Target::Video),
            2 => Some(Target::SysCoherent),
            3 => Some(Target::SysNoncoherent),
            _ => None,
        }
    }

    /// Whether this is system memory (either kind).
    pub fn is_sys(self) -> bool {
        matches!(self, Target::SysCoherent | Target::SysNoncoherent)
    }
}

/// A failed memory access (the MMU turns these into faults; nothing panics).
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error, Serialize, Deserialize)]
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
