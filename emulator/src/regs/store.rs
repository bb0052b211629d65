//! Table-driven registers for units whose registers are plain storage with documented reset
//! values: each unit lists its registers once ([`Reg`]), with name, reset value and access
//! kind, and [`RegFile`] does the reads, writes and reset. Units with behaviour (a write that
//! starts work, a status that reflects it) do not use this.

/// How a register responds to writes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Access {
    /// Read/write storage.
    Rw,
    /// Read-only: writes are accepted and dropped.
    Ro,
    /// Status bits cleared by writing 1 (write-one-to-clear).
    W1c,
}

/// One register of a unit's table.
#[derive(Debug, Clone, Copy)]
pub struct Reg {
    /// BAR0 offset.
    pub offset: u32,
    /// NVIDIA's or nouveau's name for it (for logs and docs).
    pub name: &'static str,
    /// Value after reset.
    pub reset: u32,
    /// Write behaviour.
    pub access: Access,
}

/// A register table with live values.
#[derive(Debug, Clone)]
pub struct RegFile {
    regs: &'static [Reg],
    values: Vec<u32>,
}

impl RegFile {
    /// Registers of `regs` at their reset values.
    pub fn new(regs: &'static [Reg]) -> Self {
        RegFile {
            regs,
            values: regs.iter().map(|r| r.reset).collect(),
        }
    }

    fn index(&self, offset: u32) -> Option<usize> {
        self.regs.iter().position(|r| r.offset == offset)
    }

    /// Whether `offset` is in the table.
    pub fn contains(&self, offset: u32) -> bool {
        self.index(offset).is_some()
    }

    /// Reads a register.
    pub fn read(&self, offset: u32) -> Option<u32> {
        self.index(offset).map(|i| self.values[i])
    }

    /// Writes a register; false when not in the table.
    pub fn write(&mut self, offset: u32, value: u32) -> bool {
        let Some(i) = self.index(offset) else {
            return false;
        };
        match self.regs[i].access {
            Access::Rw => self.values[i] = value,
            Access::Ro => {}
            Access::W1c => self.values[i] &= !value,
        }
        true
    }

    /// Sets status bits of a W1C (or any) register from the hardware side.
    pub fn raise(&mut self, offset: u32, bits: u32) {
        if let Some(i) = self.index(offset) {
            self.values[i] |= bits;
        }
    }

    /// Every register back to its reset value.
    pub fn reset(&mut self) {
        for (v, r) in self.values.iter_mut().zip(self.regs) {
            *v = r.reset;
        }
    }
}

/// A unit that is nothing but a register table.
#[derive(Debug, Clone)]
pub struct TableUnit {
    name: &'static str,
    file: RegFile,
    enable_bit: Option<u32>,
}

impl TableUnit {
    /// A unit called `name` with the registers of `regs`.
    pub fn new(name: &'static str, regs: &'static [Reg]) -> Self {
        TableUnit {
            name,
            file: RegFile::new(regs),
            enable_bit: None,
        }
    }

    /// The unit, held in reset while PMC_ENABLE bit `bit` is clear.
    pub fn with_enable_bit(mut self, bit: u32) -> Self {
        self.enable_bit = Some(bit);
        self
    }

    /// Whether `offset` is one of its registers.
    pub fn contains(&self, offset: u32) -> bool {
        self.file.contains(offset)
    }

    /// The register file (for units that raise status bits).
    pub fn file_mut(&mut self) -> &mut RegFile {
        &mut self.file
    }
}

impl super::Bar0Unit for TableUnit {
    fn name(&self) -> &'static str {
        self.name
    }
    fn ranges(&self) -> Vec<std::ops::Range<u32>> {
        crate::bus::words(self.file.regs.iter().map(|r| r.offset))
    }
    fn pmc_enable_bit(&self) -> Option<u32> {
        self.enable_bit
    }
    fn read32(&mut self, offset: u32) -> Option<u32> {
        self.file.read(offset)
    }
    fn write32(&mut self, offset: u32, value: u32) -> bool {
        self.file.write(offset, value)
    }
    fn reset(&mut self) {
        self.file.reset();
    }
}

/// Shorthand for a table row.
pub const fn reg(offset: u32, name: &'static str, reset: u32, access: Access) -> Reg {
    Reg {
        offset,
        name,
        reset,
        access,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    static TABLE: &[Reg] = &[
        Reg {
            offset: 0x10,
            name: "RW",
            reset: 5,
            access: Access::Rw,
        },
        Reg {
            offset: 0x14,
            name: "RO",
            reset: 7,
            access: Access::Ro,
        },
        Reg {
            offset: 0x18,
            name: "W1C",
            reset: 0,
            access: Access::W1c,
        },
    ];

    #[test]
    fn rw_ro_w1c_and_reset() {
        let mut f = RegFile::new(TABLE);
        assert_eq!(f.read(0x10), Some(5));
        assert!(f.write(0x10, 9));
        assert_eq!(f.read(0x10), Some(9));
        assert!(f.write(0x14, 9));
        assert_eq!(f.read(0x14), Some(7));
        f.raise(0x18, 0b1011);
        assert!(f.write(0x18, 0b0010));
        assert_eq!(f.read(0x18), Some(0b1001));
        assert_eq!(f.read(0x1c), None);
        assert!(!f.write(0x1c, 1));
        f.reset();
        assert_eq!(f.read(0x10), Some(5));
        assert_eq!(f.read(0x18), Some(0));
    }
}
