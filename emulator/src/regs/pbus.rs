//! PBUS interrupt registers (`NV_PBUS_INTR_0` 0x1100, `NV_PBUS_INTR_EN_0` 0x1140; NVIDIA
//! `dev_bus.h`; nouveau 6.12 `nvkm/subdev/bus/gf100.c` `gf100_bus_init` writes ~0 and 0xe).
//!
//! The status bits report PRI squashes, FECS errors and PRI timeouts. The model answers an
//! access to an absent unit with the PRI error value but does not raise these bits (our
//! choice, docs/probe-plan.md §2.9: nouveau would then log every probe of an absent unit as
//! an MMIO fault). The BAR block registers of PBUS are in [`crate::bar`]; the PRAMIN window
//! register 0x1700 in [`super::pramin`].

use super::store::{
    reg,
    Access::{Rw, W1c},
    Reg, TableUnit,
};

static REGS: &[Reg] = &[
    reg(0x001100, "NV_PBUS_INTR_0", 0, W1c),
    reg(0x001140, "NV_PBUS_INTR_EN_0", 0, Rw),
];

/// The PBUS interrupt registers.
pub fn new() -> TableUnit {
    TableUnit::new("PBUS", REGS)
}
