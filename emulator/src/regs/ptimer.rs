//! PTIMER: the GPU's nanosecond timer, driven by the model's GPU clock (never the host's),
//! with the alarm nouveau's therm polling uses. Registers (docs/probe-plan.md §2.8, from
//! nvkm/subdev/timer/nv04.c and gk20a.c):
//!
//! | offset | name | meaning |
//! | --- | --- | --- |
//! | 0x009100 | INTR_0 | bit 0 alarm pending, write 1 to clear |
//! | 0x009140 | INTR_EN_0 | bit 0 alarm interrupt enable |
//! | 0x009400 | TIME_0 | ns, low 32 bits |
//! | 0x009410 | TIME_1 | ns, high 32 bits |
//! | 0x009420 | ALARM_0 | fire when TIME_0 passes this |
//!
//! Writing TIME_1 then TIME_0 sets the time (`nv04_timer_time`). nouveau treats 16 identical
//! reads as a stalled timer; every register access advances the GPU clock, so the time moves
//! between any two reads.

use super::Bar0Unit;

/// INTR_0.
pub const PTIMER_INTR_0: u32 = 0x009100;
/// INTR_EN_0.
pub const PTIMER_INTR_EN_0: u32 = 0x009140;
/// TIME_0.
pub const PTIMER_TIME_0: u32 = 0x009400;
/// TIME_1.
pub const PTIMER_TIME_1: u32 = 0x009410;
/// ALARM_0.
pub const PTIMER_ALARM_0: u32 = 0x009420;
/// PMC_INTR_0 line of PTIMER (`gp100_mc_intrs`: 0x00100000).
pub const INTR_PTIMER: u32 = 0x0010_0000;

/// The timer.
#[derive(Debug, Clone, Default)]
pub struct Ptimer {
    now_ns: u64,
    offset: u64,
    time_1_latch: u32,
    alarm: u32,
    armed: bool,
    intr_en: u32,
    intr: u32,
}

impl Ptimer {
    /// A timer at zero.
    pub fn new() -> Self {
        Self::default()
    }

    /// Whether `offset` is a PTIMER register.
    pub fn contains(offset: u32) -> bool {
        matches!(
            offset,
            PTIMER_INTR_0 | PTIMER_INTR_EN_0 | PTIMER_TIME_0 | PTIMER_TIME_1 | PTIMER_ALARM_0
        )
    }

    fn time(&self) -> u64 {
        self.now_ns.wrapping_add(self.offset)
    }

    /// Tells the timer the GPU clock's time (ns); fires the alarm if it passed.
    pub fn tick(&mut self, now_ns: u64) {
        self.now_ns = now_ns;
        if self.armed && (self.time() as u32).wrapping_sub(self.alarm) as i32 >= 0 {
            self.armed = false;
            self.intr |= 1;
        }
    }

    /// The time TIME_1:TIME_0 read when the GPU clock says `now_ns` (what the host writes
    /// into semaphore releases).
    pub fn time_ns(&self, now_ns: u64) -> u64 {
        now_ns.wrapping_add(self.offset)
    }

    /// The interrupt condition (PMC line [`INTR_PTIMER`]).
    pub fn pending(&self) -> bool {
        self.intr & self.intr_en & 1 != 0
    }
}

impl Bar0Unit for Ptimer {
    fn name(&self) -> &'static str {
        "PTIMER"
    }

    fn ranges(&self) -> Vec<std::ops::Range<u32>> {
        crate::bus::words([
            PTIMER_INTR_0,
            PTIMER_INTR_EN_0,
            PTIMER_TIME_0,
            PTIMER_TIME_1,
            PTIMER_ALARM_0,
        ])
    }

    fn read32(&mut self, offset: u32) -> Option<u32> {
        Some(match offset {
            PTIMER_INTR_0 => self.intr,
            PTIMER_INTR_EN_0 => self.intr_en,
            PTIMER_TIME_0 => self.time() as u32,
            PTIMER_TIME_1 => (self.time() >> 32) as u32,
            PTIMER_ALARM_0 => self.alarm,
            _ => return None,
        })
    }

    fn write32(&mut self, offset: u32, value: u32) -> bool {
        match offset {
            PTIMER_INTR_0 => self.intr &= !value,
            PTIMER_INTR_EN_0 => self.intr_en = value & 1,
            PTIMER_TIME_1 => self.time_1_latch = value,
            PTIMER_TIME_0 => {
                let want = (u64::from(self.time_1_latch) << 32) | u64::from(value);
                self.offset = want.wrapping_sub(self.now_ns);
            }
            PTIMER_ALARM_0 => {
                self.alarm = value;
                self.armed = true;
            }
            _ => return false,
        }
        true
    }

    fn reset(&mut self) {
        let now = self.now_ns;
        *self = Ptimer::default();
        self.now_ns = now;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn time_follows_the_clock_and_can_be_set() {
        let mut t = Ptimer::new();
        t.tick(1000);
        assert_eq!(t.read32(PTIMER_TIME_0), Some(1000));
        t.write32(PTIMER_TIME_1, 0x1);
        t.write32(PTIMER_TIME_0, 0x10);
        assert_eq!(t.read32(PTIMER_TIME_1), Some(1));
        assert_eq!(t.read32(PTIMER_TIME_0), Some(0x10));
        t.tick(1500);
        assert_eq!(t.read32(PTIMER_TIME_0), Some(0x10 + 500));
    }

    #[test]
    fn alarm_fires_once_when_time_passes_it() {
        let mut t = Ptimer::new();
        t.tick(0);
        t.write32(PTIMER_INTR_EN_0, 1);
        t.write32(PTIMER_ALARM_0, 100);
        t.tick(99);
        assert!(!t.pending());
        t.tick(101);
        assert!(t.pending());
        t.write32(PTIMER_INTR_0, 1);
        assert!(!t.pending());
        t.tick(200);
        assert!(!t.pending(), "fires once per ALARM_0 write");
    }
}
