//! gp100emu's own vendor window: a 4 KiB register window in BAR0 that real GP100
//! leaves undecoded, used by guest tests to talk to the emulator itself.
//!
//! **This is not NVIDIA hardware.** It lives at BAR0 + [`WINDOW_BASE`]; a guest
//! program reaches it by mapping `/sys/bus/pci/devices/<bdf>/resource0` and
//! accessing offset `WINDOW_BASE + reg`. nouveau never touches this range.
//!
//! | offset | name | access | meaning |
//! | --- | --- | --- | --- |
//! | 0x000 | `ID` | RO | [`WINDOW_ID_VALUE`] ("GPEM" in ASCII) |
//! | 0x004 | `VERSION` | RO | layout version, [`WINDOW_VERSION_VALUE`] |
//! | 0x010..0x01c | `SCRATCH[0..4]` | RW | plain storage; cleared by reset |
//! | 0x020 | `WRITES` | RO | number of guest writes this window has taken since reset |
//! | 0x030 | `UNDECODED_COUNT` | RO | distinct BAR0 offsets touched that no unit decodes |
//! | 0x034 | `UNDECODED_INDEX` | RW | selects one of them (sorted by offset) |
//! | 0x038 | `UNDECODED_OFFSET` | RO | the selected offset, or 0xffffffff past the end |
//! | 0x040 | `CHANNELS_ACTIVE` | RO | channels bound, enabled and on a runlist |
//! | 0x044 | `HOST_GP_ENTRIES` | RO | GPFIFO entries the host has executed (low 32 bits) |
//! | 0x048 | `RUNLISTS_SUBMITTED` | RO | runlist submissions the host accepted |
//!
//! The status registers (0x030..0x048) report device-wide state, so the device answers
//! them ([`crate::device::Device`]); this unit holds the scratch storage. Later issues add
//! the access engine (0x100..) and the PTE checker's mailbox (0x200..) here.

use super::Bar0Unit;

/// BAR0 offset of the window.
pub const WINDOW_BASE: u32 = 0x00ff_0000;
/// Size of the window in bytes.
pub const WINDOW_SIZE: u32 = 0x1000;

/// `ID` register.
pub const WINDOW_ID: u32 = 0x000;
/// `VERSION` register.
pub const WINDOW_VERSION: u32 = 0x004;
/// First `SCRATCH` register; there are [`WINDOW_SCRATCH_COUNT`] of them, 4 bytes apart.
pub const WINDOW_SCRATCH0: u32 = 0x010;
/// Number of scratch registers.
pub const WINDOW_SCRATCH_COUNT: usize = 4;
/// `WRITES` register.
pub const WINDOW_WRITES: u32 = 0x020;

/// `UNDECODED_COUNT` register.
pub const WINDOW_UNDECODED_COUNT: u32 = 0x030;
/// `UNDECODED_INDEX` register.
pub const WINDOW_UNDECODED_INDEX: u32 = 0x034;
/// `UNDECODED_OFFSET` register.
pub const WINDOW_UNDECODED_OFFSET: u32 = 0x038;
/// `CHANNELS_ACTIVE` register.
pub const WINDOW_CHANNELS_ACTIVE: u32 = 0x040;
/// `HOST_GP_ENTRIES` register.
pub const WINDOW_HOST_GP_ENTRIES: u32 = 0x044;
/// `RUNLISTS_SUBMITTED` register.
pub const WINDOW_RUNLISTS_SUBMITTED: u32 = 0x048;

/// "GPEM" (0x47 0x50 0x45 0x4d), most significant byte first.
pub const WINDOW_ID_VALUE: u32 = 0x4750_454d;
/// Layout version of the window.
pub const WINDOW_VERSION_VALUE: u32 = 1;

/// State of the vendor window.
#[derive(Debug, Clone, Default)]
pub struct VendorWindow {
    scratch: [u32; WINDOW_SCRATCH_COUNT],
    writes: u32,
}

impl VendorWindow {
    /// Creates the window in its reset state.
    pub fn new() -> Self {
        Self::default()
    }

    /// Whether a BAR0 offset falls inside the window.
    pub fn contains(offset: u32) -> bool {
        (WINDOW_BASE..WINDOW_BASE + WINDOW_SIZE).contains(&offset)
    }

    fn scratch_index(reg: u32) -> Option<usize> {
        let end = WINDOW_SCRATCH0 + 4 * WINDOW_SCRATCH_COUNT as u32;
        (WINDOW_SCRATCH0..end)
            .contains(&reg)
            .then(|| ((reg - WINDOW_SCRATCH0) / 4) as usize)
    }
}

impl Bar0Unit for VendorWindow {
    fn name(&self) -> &'static str {
        "GP100EMU_WINDOW"
    }

    fn read32(&mut self, offset: u32) -> Option<u32> {
        let reg = offset.checked_sub(WINDOW_BASE)?;
        match reg {
            WINDOW_ID => Some(WINDOW_ID_VALUE),
            WINDOW_VERSION => Some(WINDOW_VERSION_VALUE),
            WINDOW_WRITES => Some(self.writes),
            _ => Self::scratch_index(reg).map(|i| self.scratch[i]),
        }
    }

    fn write32(&mut self, offset: u32, value: u32) -> bool {
        let Some(reg) = offset.checked_sub(WINDOW_BASE) else {
            return false;
        };
        let decoded = match reg {
            WINDOW_ID | WINDOW_VERSION | WINDOW_WRITES => true, // read-only
            _ => match Self::scratch_index(reg) {
                Some(i) => {
                    self.scratch[i] = value;
                    true
                }
                None => false,
            },
        };
        if decoded {
            self.writes = self.writes.wrapping_add(1);
        }
        decoded
    }

    fn reset(&mut self) {
        *self = Self::default();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn scratch_reads_back_and_counts_writes() {
        let mut w = VendorWindow::new();
        assert_eq!(w.read32(WINDOW_BASE + WINDOW_ID), Some(WINDOW_ID_VALUE));
        for i in 0..WINDOW_SCRATCH_COUNT as u32 {
            assert!(w.write32(WINDOW_BASE + WINDOW_SCRATCH0 + 4 * i, 0xdead_0000 | i));
        }
        for i in 0..WINDOW_SCRATCH_COUNT as u32 {
            assert_eq!(
                w.read32(WINDOW_BASE + WINDOW_SCRATCH0 + 4 * i),
                Some(0xdead_0000 | i)
            );
        }
        assert_eq!(w.read32(WINDOW_BASE + WINDOW_WRITES), Some(4));
        w.reset();
        assert_eq!(w.read32(WINDOW_BASE + WINDOW_SCRATCH0), Some(0));
        assert_eq!(w.read32(WINDOW_BASE + WINDOW_WRITES), Some(0));
    }

    #[test]
    fn read_only_and_undecoded_registers() {
        let mut w = VendorWindow::new();
        assert!(w.write32(WINDOW_BASE + WINDOW_ID, 0));
        assert_eq!(w.read32(WINDOW_BASE + WINDOW_ID), Some(WINDOW_ID_VALUE));
        assert_eq!(w.read32(WINDOW_BASE + 0x800), None);
        assert!(!w.write32(WINDOW_BASE + 0x800, 1));
        assert_eq!(w.read32(0x10), None, "below the window");
    }
}
