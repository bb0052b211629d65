//! GR as it is on our board: present and powered (PMC_ENABLE bit 12, TOP lists it), but never
//! initialised, because no GR-class object is ever created (our tests do not run 3D or compute
//! work; the access engine, [`crate::access`], stands in for the SMs). Its two falcons, FECS
//! (0x409000) and GPCCS (0x41a000), are therefore halted: they were never booted.
//!
//! What nouveau 6.12 touches without initialising GR:
//! - ACR's one-time init reads each falcon's configuration (`nvkm/falcon/base.c`
//!   `nvkm_falcon_oneinit`: +0x12c HWCFG1 — version 3:0, security 5:4, code ports 12:8, data
//!   ports 14:12 —, +0x108 HWCFG — IMEM blocks of 256 bytes 8:0, DMEM 256-byte blocks 17:9).
//!   None is validated. Values (our choice): falcon version 5, one port each; FECS 32 KiB IMEM
//!   and 16 KiB DMEM, GPCCS 16 KiB and 8 KiB.
//! - An SVM fault *cancel* asks FECS to pause context switching (`gp100_vmm_fault_cancel` →
//!   `gf100_gr_fecs_ctrl_ctxsw`: 0x409804 ← ~0, 0x409800 ← 0, 0x409500 ← ~0, 0x409504 ←
//!   method, then poll 0x409804 for 1 (done) or 2 (error)). A halted falcon never answers:
//!   the mailboxes are plain storage, so the poll times out and nouveau WARNs, as it would on a
//!   GPU whose FECS is not running. 0x409b00 (the context FECS has resident) reads 0: none.

use super::store::{
    reg,
    Access::{Ro, Rw},
    Reg, TableUnit,
};

static REGS: &[Reg] = &[
    reg(0x409108, "FECS FALCON_HWCFG", 0x40 << 9 | 0x80, Ro),
    reg(0x40912c, "FECS FALCON_HWCFG1", 0x1105, Ro),
    reg(0x409500, "FECS method data", 0, Rw),
    reg(0x409504, "FECS method push", 0, Rw),
    reg(0x409800, "FECS mailbox 0 (CTXSW_MAILBOX)", 0, Rw),
    reg(0x409804, "FECS mailbox 1", 0, Rw),
    reg(0x409b00, "FECS CURRENT_CTX (none resident)", 0, Ro),
    reg(0x41a108, "GPCCS FALCON_HWCFG", 0x20 << 9 | 0x40, Ro),
    reg(0x41a12c, "GPCCS FALCON_HWCFG1", 0x1105, Ro),
];

/// The GR registers nouveau touches while GR stays uninitialised; clearing GR's PMC_ENABLE
/// bit ([`crate::hw::engines::ENGINE_GR`]) resets them.
pub fn new() -> TableUnit {
    TableUnit::new("PGRAPH", REGS).with_enable_bit(crate::hw::engines::ENGINE_GR.reset)
}
