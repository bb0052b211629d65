//! PMGR: the GPIO and I2C interrupt registers nouveau touches although our board has no DCB
//! GPIO lines or I2C busses (nouveau 6.12 `nvkm/subdev/gpio/gk104.c`: 0x00dc00/0x00dc80
//! status, write-one-to-clear, 0x00dc08/0x00dc88 enables; `nvkm/subdev/i2c/gk104.c`:
//! 0x00dc60 status, 0x00dc68 enables). With no lines, no status bit is ever raised.

use super::store::{
    reg,
    Access::{Rw, W1c},
    Reg, TableUnit,
};

static REGS: &[Reg] = &[
    reg(0x00dc00, "GPIO INTR 0", 0, W1c),
    reg(0x00dc08, "GPIO INTR_EN 0", 0, Rw),
    reg(0x00dc60, "I2C INTR", 0, W1c),
    reg(0x00dc68, "I2C INTR_EN", 0, Rw),
    reg(0x00dc80, "GPIO INTR 1", 0, W1c),
    reg(0x00dc88, "GPIO INTR_EN 1", 0, Rw),
];

/// The PMGR interrupt registers.
pub fn new() -> TableUnit {
    TableUnit::new("PMGR", REGS)
}
