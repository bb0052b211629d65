//! The BAR0 map: every unit of the register file, and the sorted table of the BAR0 ranges
//! they declare ([`crate::bus::Unit::ranges`]) that routes an offset to exactly one of them.
//!
//! Adding a register unit is one file (the unit, its offsets table and its tests) and one
//! row in [`Units::new`]'s list. Ranges may not overlap: [`Map::new`] refuses an overlap
//! with [`MapError::Overlap`], and the default map is built (and checked) by a test. Reads,
//! writes and reset all go through this one table, so no order decides who answers.

use std::ops::Range;

use crate::bus::Unit;
use crate::regs::pmc::Pmc;
use crate::regs::ptimer::Ptimer;
use crate::window::Window;

/// The units of the register file. PMC, PTIMER and the window are named because the device
/// drives them outside register accesses (interrupt lines, the timer, invalidate effects);
/// every other unit is only reached through the map.
#[derive(Debug)]
pub struct Units {
    /// PMC: identification, interrupts, engine enables.
    pub pmc: Pmc,
    /// PTIMER.
    pub ptimer: Ptimer,
    /// gp100emu's window (with the access engine and the PTE checker).
    pub window: Window,
    /// The rest, one row each.
    pub rest: Vec<Box<dyn Unit>>,
}

/// Indices of the named units in [`Units::get`].
const PMC: usize = 0;
const PTIMER: usize = 1;
const WINDOW: usize = 2;
const NAMED: usize = 3;

impl Units {
    /// Every unit in its reset state.
    pub fn new() -> Self {
        use crate::bus::{BarRegs, FaultRegs, FifoRegs, MmuRegs};
        use crate::regs::*;
        let rest: Vec<Box<dyn Unit>> = vec![
            Box::new(prom::Prom::new(crate::vbios::build())),
            Box::new(fuse::Fuse),
            Box::new(devinit::Devinit),
            Box::new(therm::Therm),
            Box::new(top::Top),
            Box::new(uflush::Uflush::default()),
            Box::new(fb::new()),
            Box::new(ltc::new()),
            Box::new(pbus::new()),
            Box::new(pmgr::new()),
            Box::new(pextdev::new()),
            Box::new(gr::new()),
            Box::new(absent::Absent),
            Box::new(pramin::Pramin::default()),
            Box::new(pci_mirror::PciMirror),
            Box::new(FifoRegs),
            Box::new(FaultRegs),
            Box::new(MmuRegs),
            Box::new(BarRegs),
        ];
        Units {
            pmc: Pmc::new(),
            ptimer: Ptimer::new(),
            window: Window::new(),
            rest,
        }
    }

    /// How many units there are.
    pub fn len(&self) -> usize {
        NAMED + self.rest.len()
    }

    /// Whether there are none (never: PMC is always there).
    pub fn is_empty(&self) -> bool {
        false
    }

    /// Unit `i` of the map.
    pub fn get(&mut self, i: usize) -> &mut dyn Unit {
        match i {
            PMC => &mut self.pmc,
            PTIMER => &mut self.ptimer,
            WINDOW => &mut self.window,
            n => &mut *self.rest[n - NAMED],
        }
    }

    fn get_ref(&self, i: usize) -> &dyn Unit {
        match i {
            PMC => &self.pmc,
            PTIMER => &self.ptimer,
            WINDOW => &self.window,
            n => &*self.rest[n - NAMED],
        }
    }
}

impl Default for Units {
    fn default() -> Self {
        Self::new()
    }
}

/// Why a map could not be built.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum MapError {
    /// Two units claim the same offsets.
    #[error("BAR0 {a_range:#x?} of {a} overlaps {b_range:#x?} of {b}")]
    Overlap {
        /// One unit.
        a: &'static str,
        /// Its range.
        a_range: Range<u32>,
        /// The other.
        b: &'static str,
        /// Its range.
        b_range: Range<u32>,
    },
    /// A unit declared an empty or reversed range.
    #[error("{unit} declares the empty range {range:#x?}")]
    Empty {
        /// The unit.
        unit: &'static str,
        /// The range.
        range: Range<u32>,
    },
}

/// One row of the table: a BAR0 range and the unit (index in [`Units::get`]) it routes to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Row {
    /// BAR0 offsets [start, end).
    pub range: Range<u32>,
    /// The unit's name.
    pub name: &'static str,
    /// Its index.
    pub unit: usize,
}

/// The sorted, disjoint table of BAR0 ranges.
#[derive(Debug, Clone)]
pub struct Map {
    rows: Vec<Row>,
}

impl Map {
    /// Builds the table from the units' declared ranges; refuses overlaps.
    pub fn new(units: &Units) -> Result<Self, MapError> {
        let mut rows = Vec::new();
        for i in 0..units.len() {
            let u = units.get_ref(i);
            for range in u.ranges() {
                if range.start >= range.end {
                    return Err(MapError::Empty {
                        unit: u.name(),
                        range,
                    });
                }
                rows.push(Row {
                    range,
                    name: u.name(),
                    unit: i,
                });
            }
        }
        rows.sort_by_key(|r| r.range.start);
        for w in rows.windows(2) {
            if w[1].range.start < w[0].range.end {
                return Err(MapError::Overlap {
                    a: w[0].name,
                    a_range: w[0].range.clone(),
                    b: w[1].name,
                    b_range: w[1].range.clone(),
                });
            }
        }
        Ok(Map { rows })
    }

    /// The unit that decodes `offset`, if any (a binary search of the table).
    pub fn find(&self, offset: u32) -> Option<usize> {
        self.row(offset).map(|r| r.unit)
    }

    /// The row that decodes `offset`, if any.
    pub fn row(&self, offset: u32) -> Option<&Row> {
        let i = self.rows.partition_point(|r| r.range.end <= offset);
        self.rows.get(i).filter(|r| r.range.contains(&offset))
    }

    /// The rows, sorted by offset.
    pub fn rows(&self) -> &[Row] {
        &self.rows
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::bus::Bar0Unit;

    #[test]
    fn the_bar0_map_is_sorted_and_disjoint() {
        let units = Units::new();
        let map = Map::new(&units).expect("the units' ranges do not overlap");
        for w in map.rows().windows(2) {
            assert!(w[0].range.end <= w[1].range.start, "{w:x?}");
        }
        // Every unit has at least one row.
        for i in 0..units.len() {
            assert!(
                map.rows().iter().any(|r| r.unit == i),
                "unit {i} has no row"
            );
        }
        // The fault buffer's registers sit inside PFIFO's block and go to the fault unit.
        let name = |o: u32| {
            map.rows()
                .iter()
                .find(|r| r.range.contains(&o))
                .map(|r| r.name)
        };
        assert_eq!(name(crate::fault::ring::regs::GET), Some("FAULT"));
        assert_eq!(name(crate::fifo::regs::RUNLIST), Some("PFIFO"));
        assert_eq!(name(0x00ff_0000), Some("GP100EMU_WINDOW"));
        assert_eq!(name(0x00ff_1000), None);
        assert_eq!(map.find(0x00ff_1000), None);
        assert_eq!(map.find(0), Some(PMC));
    }

    #[derive(Debug)]
    struct Claims(&'static str, Range<u32>);

    impl Bar0Unit for Claims {
        fn name(&self) -> &'static str {
            self.0
        }
        fn ranges(&self) -> Vec<Range<u32>> {
            vec![self.1.clone()]
        }
        fn read32(&mut self, _: u32) -> Option<u32> {
            None
        }
        fn write32(&mut self, _: u32, _: u32) -> bool {
            false
        }
        fn reset(&mut self) {}
    }

    #[test]
    fn an_overlapping_unit_is_refused() {
        let mut units = Units::new();
        units
            .rest
            .push(Box::new(Claims("OVERLAPS_PMC", 0x000ffc..0x001004)));
        match Map::new(&units) {
            Err(MapError::Overlap { a, b, .. }) => {
                assert_eq!((a, b), ("PMC", "OVERLAPS_PMC"));
            }
            other => panic!("expected an overlap, got {other:?}"),
        }
        let mut units = Units::new();
        units.rest.push(Box::new(Claims("EMPTY", 0x10..0x10)));
        assert!(matches!(Map::new(&units), Err(MapError::Empty { .. })));
    }
}
