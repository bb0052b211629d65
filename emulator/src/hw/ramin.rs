//! Instance memory layouts, named: the block pointer words that point at an instance block
//! (PCCSR_CHANNEL_INST, PBUS BAR1/BAR2_BLOCK, RUNLIST_BASE), PCCSR_CHANNEL, and the words of
//! the instance block and its RAMFC that the host and the BARs read.
//!
//! Sources: PCCSR from NVIDIA's gp106 `hw_ccsr_gp106.h` (`ccsr_channel_inst_*`,
//! `ccsr_channel_*`), the BLOCK registers from open-gpu-doc gv100 `dev_bus.ref`
//! (`NV_PBUS_BAR1_BLOCK`: PTR 27:0, TARGET 29:28, MODE 31), the RAMFC words from what nouveau
//! 6.12 writes in `nvkm/engine/fifo/gk104.c` `gk104_chan_ramfc_write` (0x08/0x0c USERD,
//! 0x48/0x4c GP_BASE, 0xe4 privilege) and the PDB words from `nvkm/subdev/mmu/vmmgf100.c`
//! `gf100_vmm_join_` (0x200 PDB, 0x208 VA limit); summarised in docs/probe-plan.md §3.1 and
//! gp100-facts.md. GP_BASE_HI's fields are open-gpu-doc gm107's pbdma hwref (the same on
//! Pascal).

use crate::hw::field::Field;

/// A pointer to an instance block (or a runlist) in 4 KiB units: `PTR` (27:0).
pub const PTR: Field = Field::new(0, 28);
/// The memory it is in (29:28; the `Target::from_target_field` encoding).
pub const TARGET: Field = Field::new(28, 2);
/// PCCSR_CHANNEL_INST `BIND` (31): the channel is bound to the block. The same bit is the
/// BLOCK registers' `MODE` (1 virtual: through the block's page directory).
pub const BIND: Field = Field::bit(31);

/// Shift from `PTR` to a byte address.
pub const PTR_SHIFT: u32 = 12;

/// The byte address a block pointer word names.
pub const fn ptr_address(word: u32) -> u64 {
    (PTR.get32(word) as u64) << PTR_SHIFT
}

/// PCCSR_CHANNEL `ENABLE` (0, read).
pub const CHANNEL_ENABLE: Field = Field::bit(0);
/// PCCSR_CHANNEL `ENABLE_SET` (10, write 1).
pub const CHANNEL_ENABLE_SET: Field = Field::bit(10);
/// PCCSR_CHANNEL `ENABLE_CLR` (11, write 1).
pub const CHANNEL_ENABLE_CLR: Field = Field::bit(11);
/// The runlist the channel is on, as the model reports it in PCCSR_CHANNEL (19:16; our
/// choice, nouveau does not read it).
pub const CHANNEL_RUNLIST: Field = Field::new(16, 4);

/// RAMFC `USERD` low word: target in 1:0, address bits 31:9.
pub const RAMFC_USERD_LO: u64 = 0x08;
/// RAMFC `USERD` high word: address bits 39:32 in 7:0.
pub const RAMFC_USERD_HI: u64 = 0x0c;
/// RAMFC `GP_BASE` low word: the GPFIFO's VA bits 31:3.
pub const RAMFC_GP_BASE: u64 = 0x48;
/// RAMFC `GP_BASE_HI`: `OFFSET` (VA bits 39:32) 7:0, `LIMIT2` (log2 of the entries) 20:16.
pub const RAMFC_GP_BASE_HI: u64 = 0x4c;
/// The RAMFC word whose bit 5 marks a privileged channel (nouveau writes 0x20 for one).
pub const RAMFC_CONFIG: u64 = 0xe4;

/// `USERD` low word's target (1:0).
pub const USERD_TARGET: Field = Field::new(0, 2);
/// `USERD` low word's address bits (31:9, in place).
pub const USERD_ADDR_LO: Field = Field::new(9, 23);
/// `USERD` high word's address bits 39:32 (7:0).
pub const USERD_ADDR_HI: Field = Field::new(0, 8);
/// `GP_BASE` low word's address bits (31:3, in place).
pub const GP_BASE_LO: Field = Field::new(3, 29);
/// `GP_BASE_HI.OFFSET`: VA bits 39:32 (the host fetches with 40-bit addresses).
pub const GP_BASE_HI_OFFSET: Field = Field::new(0, 8);
/// The bits of GP_BASE_HI above `OFFSET` that nouveau fills from a higher VA (15:8); not
/// part of the address.
pub const GP_BASE_HI_IGNORED: Field = Field::new(8, 8);
/// `GP_BASE_HI.LIMIT2`: log2 of the GPFIFO's entries.
pub const GP_BASE_HI_LIMIT2: Field = Field::new(16, 5);
/// The RAMFC config word's privileged-channel bit (5).
pub const CONFIG_PRIVILEGED: Field = Field::bit(5);

/// The instance block's page-directory base word (64 bits; `Pdb::from_instance_word`).
pub const INST_PDB: u64 = 0x200;
/// The instance block's VA limit minus one (64 bits).
pub const INST_LIMIT: u64 = 0x208;

/// The USERD address (low and high words of RAMFC).
pub fn userd_address(lo: u32, hi: u32) -> u64 {
    (USERD_ADDR_HI.get(u64::from(hi)) << 32) | (u64::from(lo) & USERD_ADDR_LO.mask())
}

/// The GPFIFO's VA (low word and GP_BASE_HI).
pub fn gp_base(lo: u32, hi: u32) -> u64 {
    (GP_BASE_HI_OFFSET.get(u64::from(hi)) << 32) | (u64::from(lo) & GP_BASE_LO.mask())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn words_nouveau_writes() {
        // PCCSR_CHANNEL_INST of a bound block at 0x12345000 in system memory (target 2).
        let w = 0x8000_0000 | 2 << 28 | 0x12345;
        assert!(BIND.is_set(u64::from(w)));
        assert_eq!(TARGET.get32(w), 2);
        assert_eq!(ptr_address(w), 0x1234_5000);
        assert_eq!(userd_address(0x0010_0202, 0x0000_0001), 0x1_0010_0200);
        assert_eq!(gp_base(0x0002_000f, 0x000c_0301), 0x1_0002_0008);
        assert_eq!(GP_BASE_HI_LIMIT2.get32(0x000c_0301), 12);
        assert_eq!(GP_BASE_HI_IGNORED.get32(0x000c_0301), 3);
        assert!(CONFIG_PRIVILEGED.is_set(0x20));
    }
}
