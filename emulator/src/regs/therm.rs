//! THERM: the internal temperature sensor nouveau reads at 0x020460 (nvkm/subdev/therm/gp100.c:
//! bit 29 valid, bit 30 shadowed, temperature in bits 16:8). Our device has no sensor to
//! report, so the valid bit is clear: nouveau prints "internal sensor: no" and runs no
//! thermal policy (docs/probe-plan.md §2.17). Without this register nouveau reads the PRI error
//! value as 273 °C, hits its shutdown threshold and powers the guest off.

use super::Bar0Unit;

/// The sensor register.
pub const THERM_SENSOR: u32 = 0x020460;

/// The sensor (read-only: not valid).
#[derive(Debug, Clone, Default)]
pub struct Therm;

impl Bar0Unit for Therm {
    fn name(&self) -> &'static str {
        "THERM"
    }

    fn ranges(&self) -> Vec<std::ops::Range<u32>> {
        crate::bus::block(THERM_SENSOR, 4)
    }

    fn read32(&mut self, offset: u32) -> Option<u32> {
        (offset == THERM_SENSOR).then_some(0)
    }

    fn write32(&mut self, offset: u32, _value: u32) -> bool {
        offset == THERM_SENSOR
    }

    fn reset(&mut self) {}
}
