//! Named register bit fields, in the manner of QEMU's `include/hw/registerfields.h`: every
//! field of a register word has a name, a shift and a width, and logic extracts or deposits
//! it through the name, never through a bare shift and mask.
//!
//! ```
//! use emulator::hw::field::Field;
//! const REPLAY: Field = Field::new(3, 3); // bits 5:3
//! assert_eq!(REPLAY.get(0b101_000), 5);
//! assert_eq!(REPLAY.set(0, 2), 0b010_000);
//! ```

/// A bit field `[shift + width - 1 : shift]` of a 32- or 64-bit register word.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Field {
    /// Lowest bit.
    pub shift: u32,
    /// Width in bits (1..=64).
    pub width: u32,
}

impl Field {
    /// The field of `width` bits starting at bit `shift`.
    pub const fn new(shift: u32, width: u32) -> Self {
        assert!(
            width >= 1 && shift + width <= 64,
            "field outside a 64-bit word"
        );
        Field { shift, width }
    }

    /// A one-bit field.
    pub const fn bit(shift: u32) -> Self {
        Field::new(shift, 1)
    }

    /// The field's mask in place (`R_..._MASK`).
    pub const fn mask(self) -> u64 {
        (u64::MAX >> (64 - self.width)) << self.shift
    }

    /// The field's value in `word` (`FIELD_EX64`).
    pub const fn get(self, word: u64) -> u64 {
        (word & self.mask()) >> self.shift
    }

    /// The field's value in a 32-bit word (`FIELD_EX32`).
    pub const fn get32(self, word: u32) -> u32 {
        self.get(word as u64) as u32
    }

    /// Whether a one-bit field is set.
    pub const fn is_set(self, word: u64) -> bool {
        self.get(word) != 0
    }

    /// `word` with the field replaced by `value` (`FIELD_DP64`; extra bits are dropped).
    pub const fn set(self, word: u64, value: u64) -> u64 {
        (word & !self.mask()) | ((value << self.shift) & self.mask())
    }

    /// `word` with the field replaced by `value`, 32-bit (`FIELD_DP32`).
    pub const fn set32(self, word: u32, value: u32) -> u32 {
        self.set(word as u64, value as u64) as u32
    }
}

/// Serialises an address as a `0x…` string (JSON numbers lose precision above 2^53).
pub fn hex_u64<S: serde::Serializer>(v: &u64, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_str(&format!("{v:#x}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn extract_and_deposit() {
        let f = Field::new(9, 6);
        assert_eq!(f.mask(), 0x3f << 9);
        assert_eq!(f.get(0xffff_ffff), 0x3f);
        assert_eq!(f.set(0xffff_ffff, 0), 0xffff_ffff & !(0x3f << 9));
        assert_eq!(f.set(0, 0x7f), 0x3f << 9, "extra bits are dropped");
        assert!(Field::bit(20).is_set(1 << 20));
        assert!(!Field::bit(20).is_set(1 << 19));
        assert_eq!(Field::new(0, 64).get(u64::MAX), u64::MAX);
        assert_eq!(Field::new(28, 2).get32(0x3000_0000), 3);
    }
}
