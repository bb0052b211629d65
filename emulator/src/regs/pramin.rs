//! PRAMIN: the 1 MiB window in BAR0 (0x700000..0x7fffff) onto video or system memory, and
//! the register that places it (`NV_PBUS_BAR0_WINDOW` 0x001700: BASE 23:0 in 64 KiB units,
//! TARGET 25:24 = 0 video memory / 2 system coherent / 3 system non-coherent; open-gpu-doc
//! gv100 `dev_bus.ref`, the same layout nouveau 6.12 uses in `nvkm/subdev/instmem/nv50.c`
//! `nv50_instobj_rd32_slow/wr32_slow`: `0x1700 <- addr >> 16`, then `0x700000 + (addr &
//! 0xfffff)`).
//!
//! nouveau builds instance blocks and the BAR2 page tables through this window before BAR2
//! is up, so every access here is a real memory access, made through the context's memory.

use std::ops::Range;

use crate::bus::{Ctx, Unit};
use crate::mem::{GpuMemory, Target};

/// `NV_PBUS_BAR0_WINDOW`.
pub const BAR0_WINDOW: u32 = 0x001700;
/// First BAR0 offset of the window.
pub const PRAMIN_BASE: u32 = 0x700000;
/// Size of the window.
pub const PRAMIN_SIZE: u32 = 0x100000;

/// The window's position.
#[derive(Debug, Clone, Default)]
pub struct Pramin {
    window: u32,
}

impl Pramin {
    /// Whether a BAR0 offset is inside the window.
    pub fn contains(offset: u32) -> bool {
        (PRAMIN_BASE..PRAMIN_BASE + PRAMIN_SIZE).contains(&offset)
    }

    /// The BAR0_WINDOW register.
    pub fn window(&self) -> u32 {
        self.window
    }

    /// Writes BAR0_WINDOW (bits above TARGET are reserved and read back as 0).
    pub fn set_window(&mut self, v: u32) {
        self.window = v & 0x03ff_ffff;
    }

    /// The memory and address a window offset reaches; None for target 1 (no memory).
    pub fn resolve(&self, offset: u32) -> Option<(Target, u64)> {
        let target = Target::from_target_field(u64::from(self.window >> 24))?;
        let base = u64::from(self.window & 0x00ff_ffff) << 16;
        Some((target, base + u64::from(offset - PRAMIN_BASE)))
    }

    /// Reset: the window at video memory 0.
    pub fn reset(&mut self) {
        self.window = 0;
    }
}

impl Unit for Pramin {
    fn name(&self) -> &'static str {
        "PRAMIN"
    }

    fn ranges(&self) -> Vec<Range<u32>> {
        vec![
            BAR0_WINDOW..BAR0_WINDOW + 4,
            PRAMIN_BASE..PRAMIN_BASE + PRAMIN_SIZE,
        ]
    }

    fn read32(&mut self, ctx: &mut Ctx, offset: u32) -> Option<u32> {
        if offset == BAR0_WINDOW {
            return Some(self.window());
        }
        let (t, a) = self.resolve(offset)?;
        ctx.phys.read_u32(t, a).ok()
    }

    fn write32(&mut self, ctx: &mut Ctx, offset: u32, value: u32) -> bool {
        if offset == BAR0_WINDOW {
            self.set_window(value);
            return true;
        }
        let Some((t, a)) = self.resolve(offset) else {
            return false;
        };
        // A write outside memory is dropped, as the hardware drops it.
        let _ = ctx.phys.write_u32(t, a, value);
        // The host watches instance memory too (a RAMFC or USERD written here).
        ctx.fifo.kick();
        true
    }

    fn reset(&mut self, _: &mut Ctx) {
        Pramin::reset(self);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn window_places_the_megabyte() {
        let mut p = Pramin::default();
        assert_eq!(p.resolve(PRAMIN_BASE + 8), Some((Target::Video, 8)));
        p.set_window(0x0000_0123);
        assert_eq!(
            p.resolve(PRAMIN_BASE + 0xffffc),
            Some((Target::Video, 0x123_0000 + 0xffffc))
        );
        p.set_window(0x0200_0010);
        assert_eq!(
            p.resolve(PRAMIN_BASE),
            Some((Target::SysCoherent, 0x10_0000))
        );
        p.set_window(0xfc00_0000 | 1 << 24);
        assert_eq!(p.window(), 1 << 24);
        assert_eq!(p.resolve(PRAMIN_BASE), None);
        assert!(Pramin::contains(0x7fffff) && !Pramin::contains(0x800000));
    }
}
