//! The MMU invalidate registers' fields, named: the trigger word written to 0x100cbc and the
//! PDB register pair 0x100cb8/0x100cec.
//!
//! Source: gp100 `dev_fb.h` `NV_PFB_PRI_MMU_INVALIDATE_*` (open-gpu-doc) and nouveau 6.12
//! `nvkm/subdev/mmu/vmmgf100.c` `gf100_vmm_invalidate` / `vmmgp100.c`
//! `gp100_vmm_invalidate_pdb`, which write `0x80000000 | type` and the PDB as
//! `(pd_addr >> 12) << 4 | aperture`. The fault-cancel id fields are what nvgpu's
//! `gmmu_mmu_invalidate_cancel_*` programs for a targeted cancel.

use crate::hw::field::Field;

/// `ALL_VA` (0:0): every virtual address, not only the VA register's.
pub const ALL_VA: Field = Field::bit(0);
/// `ALL_PDB` (1:1): every address space, not only the PDB register's.
pub const ALL_PDB: Field = Field::bit(1);
/// `HUBTLB_ONLY` (2:2): only the hub's TLBs.
pub const HUBTLB_ONLY: Field = Field::bit(2);
/// `REPLAY` (5:3): what happens to faulted accesses waiting for a replay ([`ReplayOp`]).
pub const REPLAY: Field = Field::new(3, 3);
/// `CANCEL_CLIENT_ID` (14:9): the client a targeted cancel names.
pub const CANCEL_CLIENT_ID: Field = Field::new(9, 6);
/// `CANCEL_GPC_ID` (19:15): the GPC a targeted cancel names.
pub const CANCEL_GPC_ID: Field = Field::new(15, 5);
/// `CANCEL_CLIENT_TYPE` (20:20): 0 a GPC client, 1 a HUB client.
pub const CANCEL_CLIENT_TYPE_HUB: Field = Field::bit(20);
/// `TRIGGER` (31:31): the write starts the invalidate (without it nothing happens).
pub const TRIGGER: Field = Field::bit(31);

/// The PDB registers' `ADDR` field (bits 63:4 of high:low, the directory's address >> 12).
pub const PDB_ADDR: Field = Field::new(4, 60);
/// The PDB registers' aperture (bits 1:0, the `Target::from_target_field` encoding).
pub const PDB_APERTURE: Field = Field::new(0, 2);

/// The `REPLAY` field's values.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ReplayOp {
    /// 0 `NONE`.
    None,
    /// 1 `START`: re-issue the waiting accesses.
    Start,
    /// 2 `START_ACK_ALL`: the same, acknowledging every fault.
    StartAckAll,
    /// 3 `CANCEL_TARGETED`: end the waiting accesses of one client ([`cancel_target`]).
    CancelTargeted,
    /// 4 `CANCEL_GLOBAL`: end every waiting access.
    CancelGlobal,
    /// Another value (5..7); the model gives it no effect.
    Other(u32),
}

/// The `REPLAY` field of a trigger word.
pub fn replay_op(word: u32) -> ReplayOp {
    match REPLAY.get32(word) {
        0 => ReplayOp::None,
        1 => ReplayOp::Start,
        2 => ReplayOp::StartAckAll,
        3 => ReplayOp::CancelTargeted,
        4 => ReplayOp::CancelGlobal,
        v => ReplayOp::Other(v),
    }
}

/// The client a targeted cancel names: (HUB client, GPC id, client id).
pub fn cancel_target(word: u32) -> (bool, u8, u8) {
    let w = u64::from(word);
    (
        CANCEL_CLIENT_TYPE_HUB.is_set(w),
        CANCEL_GPC_ID.get(w) as u8,
        CANCEL_CLIENT_ID.get(w) as u8,
    )
}

/// The page directory's byte address the PDB registers (high << 32 | low) name.
pub fn pdb_address(pdb_regs: u64) -> u64 {
    PDB_ADDR.get(pdb_regs) << 12
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fields_of_the_words_nouveau_writes() {
        // gp100_vmm_invalidate_pdb + a targeted cancel of GPC 2 client 0x21 (GPC type).
        let w = 0x8000_0000 | (0x21 << 9) | (2 << 15) | (3 << 3) | 1;
        assert!(TRIGGER.is_set(u64::from(w)));
        assert_eq!(replay_op(w), ReplayOp::CancelTargeted);
        assert_eq!(cancel_target(w), (false, 2, 0x21));
        assert!(ALL_VA.is_set(u64::from(w)));
        assert!(!ALL_PDB.is_set(u64::from(w)));
        assert_eq!(replay_op(0x8000_000b), ReplayOp::Start);
        assert_eq!(replay_op(0x8000_0000 | 4 << 3), ReplayOp::CancelGlobal);
        assert_eq!(replay_op(7 << 3), ReplayOp::Other(7));
        assert!(cancel_target(1 << 20).0);
        let pd = 0x1234_5000u64;
        assert_eq!(pdb_address((pd >> 12) << 4 | 2), pd);
        assert_eq!(PDB_APERTURE.get((pd >> 12) << 4 | 2), 2);
    }
}
