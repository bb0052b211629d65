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
//!
//! The access engine ([`crate::access`]), 0x100..0x12c: a load/store unit in a channel's
//! address space.
//!
//! | offset | name | access | meaning |
//! | --- | --- | --- | --- |
//! | 0x100 | `AE_CHID` | RW | the channel whose address space (instance block) is used |
//! | 0x104 / 0x108 | `AE_VA_LO/HI` | RW | virtual address |
//! | 0x10c | `AE_LEN` | RW | bytes (1..=2 MiB) |
//! | 0x110 / 0x114 | `AE_DATA_LO/HI` | RW | write data, atomic operand; read data and old atomic value come back here |
//! | 0x118 | `AE_OP` | RW | writing starts: 1 read (> 8 bytes: CRC-32 into `AE_RESULT`), 2 write (> 8 bytes: u32 word k = `DATA_LO + k`), 3 atomic add (u32), 4 prefetch |
//! | 0x11c | `AE_STATUS` | RO | 1:0 = 0 idle, 1 done, 2 faulted and waiting for a replay, 3 error; 12:8 last fault type |
//! | 0x120 | `AE_FAULTS` | RO | faults the operation reported |
//! | 0x124 | `AE_REPLAYS` | RO | replays that resumed it |
//! | 0x128 | `AE_RESULT` | RO | CRC-32 of a long read |
//!
//! The access engine's batch ([`crate::access::batch`]), 0x140..0x190: up to 64 operations
//! issued together. The slot registers (0x144..0x170) act on the slot `AB_INDEX` selects.
//!
//! | offset | name | access | meaning |
//! | --- | --- | --- | --- |
//! | 0x140 | `AB_INDEX` | RW | selected slot (0..63; larger values wrap) |
//! | 0x144 | `AB_CHID` | RW | the slot's channel |
//! | 0x148 / 0x14c | `AB_VA_LO/HI` | RW | the slot's virtual address |
//! | 0x150 | `AB_LEN` | RW | its length (as `AE_LEN`) |
//! | 0x154 / 0x158 | `AB_DATA_LO/HI` | RW | operand in; read data / old atomic value out (as `AE_DATA`) |
//! | 0x15c | `AB_OP` | RW | its operation (the `AE_OP` codes); writing does not start it |
//! | 0x160 | `AB_GPC` | RW | the GPC its faults name (0..5); a targeted cancel ends the slots of one GPC |
//! | 0x164 | `AB_STATUS` | RO | the slot's status (as `AE_STATUS`) |
//! | 0x168 | `AB_FAULTS` | RO | faults the slot reported |
//! | 0x16c | `AB_REPLAYS` | RO | replays that re-issued it |
//! | 0x170 | `AB_RESULT` | RO | CRC-32 of its long read |
//! | 0x174 | `AB_COUNT` | RW | slots in the batch (0..64) |
//! | 0x178 | `AB_CTRL` | RW | write 1: issue slots 0..COUNT; 2: clear all slots. Reads the slots still waiting |
//! | 0x17c | `AB_DONE` | RO | slots completed |
//! | 0x180 | `AB_ERRORS` | RO | slots ended in error (bad arguments, cancelled) |
//! | 0x184 | `AB_FAULTS_TOTAL` | RO | faults the batch reported since it was issued |
//! | 0x188 | `AB_DROPPED` | RO | of those, entries the full (or disabled) fault buffer dropped |
//! | 0x18c | `AB_BUFFER_INFO` | RO | the fault buffer's INFO register (0x002a84: bit 0 OVERFLOW) |
//! | 0x190 | `AB_PROGRESS` | RO | bytes the selected slot has moved (a waiting slot stopped there) |
//!
//! The PTE checker ([`crate::check`]), 0x200..0x300. Registering is a sequence of writes
//! (`CHID`, `ROOT`, `FLAGS`, `EXCL`, `PID`, then `CTRL` = 1), so processes registering
//! concurrently must serialise it (guest-tests/suites/lib/gp100.h takes a lock); the module's
//! `MM_WATCH`/`MM_EXIT` are single writes.
//!
//! | offset | name | access | meaning |
//! | --- | --- | --- | --- |
//! | 0x200 | `CHK_CHID` | RW | the channel whose address space to register (or disarm) |
//! | 0x204 / 0x208 | `CHK_ROOT_LO/HI` | RW | physical address of the owning process's top-level page table (`__pa(mm->pgd)`) |
//! | 0x20c | `CHK_FLAGS` | RW | bit 0: 5-level paging |
//! | 0x210 / 0x214 | `CHK_EXCL_LO/HI` | RW | start of the unmanaged window (not checked) |
//! | 0x218 / 0x21c | `CHK_EXCL_SIZE_LO/HI` | RW | its size |
//! | 0x220 | `CHK_CTRL` | RW | write 1 register `CHK_CHID`'s space (and scan it), 2 disarm the space of `CHK_CHID`, 3 scan every space now, 4 disarm every space; reads 1 while any space is armed |
//! | 0x224 | `CHK_VIOLATIONS` | RO | violations found (4 KiB pages; every reason but stale-after-exit) |
//! | 0x228 | `CHK_CHECKED` | RO | pages judged |
//! | 0x22c | `CHK_SCANS` | RO | scans made |
//! | 0x230..0x244 | `CHK_LAST_*` | RO | the last violation (of those `CHK_VIOLATIONS` counts): VA, GPU PTE, CPU PTE (lo/hi pairs) |
//! | 0x248 | `CHK_LAST_REASON` | RO | reason code, bit 8 set if found at a GPU use |
//! | 0x24c | `CHK_LAST_INST` | RO | its instance block >> 12 |
//! | 0x250 | `CHK_INJECT` | RO | the seeded bug the device injects: bits 7:0 0 none, 1 wrong-page, 2 writable-ro, 3 stale-after-munmap; bits 15:8 the one space it targets (0 every space) |
//! | 0x254 | `CHK_ERROR` | RO | after `CTRL` = 1: 0 armed, 1 channel not bound or no page directory, 2 too many spaces |
//! | 0x258 | `CHK_SWAP_MIGRATION_READ` | RW | the guest kernel's `SWP_MIGRATION_READ` swap type (the special types follow it; default 24, our guest kernel's) |
//! | 0x25c | `CHK_HAZARDS` | RO | PD0 slots seen holding a cleared 2 MiB PTE that reads as a big-page-table pointer |
//! | 0x260 + 4·r | `CHK_BY_REASON[r]` | RO | findings (pages) with reason code r, r < 16 (1..9: cpu does not map it, different physical page, gpu writable over cpu read-only, gpu vram over a cpu system page, peer aperture, cpu tables unreadable, cpu page device-private, use in an unregistered space, stale after process exit) |
//! | 0x2a0 | `CHK_PID` | RW | the owning process's pid, recorded with the next registration (for reports) |
//! | 0x2a4 | `CHK_LAST_CHID` | RO | the last violation's channel |
//! | 0x2a8 | `CHK_LAST_PID` | RO | the last violation's process (0 if unregistered) |
//! | 0x2ac | `CHK_MM_WATCH` | WO | written by gp100emu_pgd: it now watches the exit of the mm whose page-table root is this value << 12 |
//! | 0x2b0 | `CHK_MM_EXIT` | WO | written by gp100emu_pgd from its notifier's `release` op: that mm (root >> 12) is being torn down |
//! | 0x2b4 | `CHK_SPACE_SEL` | RW | a channel id, selecting the space it was registered with for the next four |
//! | 0x2b8 | `CHK_SPACE_STATE` | RO | 1:0 = 0 none, 1 live, 2 owner exited, 3 exited and channel gone; bit 8 the exit is watched; 31:16 registration order |
//! | 0x2bc | `CHK_SPACE_VIOLATIONS` | RO | that space's violations (pages) |
//! | 0x2c0 | `CHK_SPACE_STALE` | RO | that space's stale-after-exit findings (pages) |
//! | 0x2c4 | `CHK_SPACE_PID` | RO | that space's owner pid |
//! | 0x2c8 | `CHK_STALE` | RO | stale-after-exit findings (pages), every space |
//! | 0x2cc | `CHK_SPACES` | RO | spaces registered (any state) |
//! | 0x2d0 | `CHK_ALIASES` | RO | page tables a scan reached a second time (not followed again) |
//! | 0x2d4 | `CHK_TRUNCATED` | RO | scans cut short by a bound |
//!
//! The status, access-engine and checker registers report device-wide state, so the
//! device answers them ([`crate::device::Device`]); this unit holds the scratch storage.

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

/// First access-engine register.
pub const AE_BASE: u32 = 0x100;
/// `AE_CHID`.
pub const AE_CHID: u32 = 0x100;
/// `AE_VA_LO`.
pub const AE_VA_LO: u32 = 0x104;
/// `AE_VA_HI`.
pub const AE_VA_HI: u32 = 0x108;
/// `AE_LEN`.
pub const AE_LEN: u32 = 0x10c;
/// `AE_DATA_LO`.
pub const AE_DATA_LO: u32 = 0x110;
/// `AE_DATA_HI`.
pub const AE_DATA_HI: u32 = 0x114;
/// `AE_OP`.
pub const AE_OP: u32 = 0x118;
/// `AE_STATUS`.
pub const AE_STATUS: u32 = 0x11c;
/// `AE_FAULTS`.
pub const AE_FAULTS: u32 = 0x120;
/// `AE_REPLAYS`.
pub const AE_REPLAYS: u32 = 0x124;
/// `AE_RESULT`.
pub const AE_RESULT: u32 = 0x128;
/// End of the access-engine registers.
pub const AE_END: u32 = 0x12c;

/// First batch register.
pub const AB_BASE: u32 = 0x140;
/// `AB_INDEX`.
pub const AB_INDEX: u32 = 0x140;
/// `AB_CHID`.
pub const AB_CHID: u32 = 0x144;
/// `AB_VA_LO`.
pub const AB_VA_LO: u32 = 0x148;
/// `AB_VA_HI`.
pub const AB_VA_HI: u32 = 0x14c;
/// `AB_LEN`.
pub const AB_LEN: u32 = 0x150;
/// `AB_DATA_LO`.
pub const AB_DATA_LO: u32 = 0x154;
/// `AB_DATA_HI`.
pub const AB_DATA_HI: u32 = 0x158;
/// `AB_OP`.
pub const AB_OP: u32 = 0x15c;
/// `AB_GPC`.
pub const AB_GPC: u32 = 0x160;
/// `AB_STATUS`.
pub const AB_STATUS: u32 = 0x164;
/// `AB_FAULTS`.
pub const AB_FAULTS: u32 = 0x168;
/// `AB_REPLAYS`.
pub const AB_REPLAYS: u32 = 0x16c;
/// `AB_RESULT`.
pub const AB_RESULT: u32 = 0x170;
/// `AB_COUNT`.
pub const AB_COUNT: u32 = 0x174;
/// `AB_CTRL`.
pub const AB_CTRL: u32 = 0x178;
/// `AB_DONE`.
pub const AB_DONE: u32 = 0x17c;
/// `AB_ERRORS`.
pub const AB_ERRORS: u32 = 0x180;
/// `AB_FAULTS_TOTAL`.
pub const AB_FAULTS_TOTAL: u32 = 0x184;
/// `AB_DROPPED`.
pub const AB_DROPPED: u32 = 0x188;
/// `AB_BUFFER_INFO`.
pub const AB_BUFFER_INFO: u32 = 0x18c;
/// `AB_PROGRESS`.
pub const AB_PROGRESS: u32 = 0x190;
/// End of the batch registers.
pub const AB_END: u32 = 0x194;

/// First checker register.
pub const CHK_BASE: u32 = 0x200;
/// `CHK_CHID`.
pub const CHK_CHID: u32 = 0x200;
/// `CHK_ROOT_LO`.
pub const CHK_ROOT_LO: u32 = 0x204;
/// `CHK_ROOT_HI`.
pub const CHK_ROOT_HI: u32 = 0x208;
/// `CHK_FLAGS`.
pub const CHK_FLAGS: u32 = 0x20c;
/// `CHK_EXCL_LO`.
pub const CHK_EXCL_LO: u32 = 0x210;
/// `CHK_EXCL_HI`.
pub const CHK_EXCL_HI: u32 = 0x214;
/// `CHK_EXCL_SIZE_LO`.
pub const CHK_EXCL_SIZE_LO: u32 = 0x218;
/// `CHK_EXCL_SIZE_HI`.
pub const CHK_EXCL_SIZE_HI: u32 = 0x21c;
/// `CHK_CTRL`.
pub const CHK_CTRL: u32 = 0x220;
/// `CHK_VIOLATIONS`.
pub const CHK_VIOLATIONS: u32 = 0x224;
/// `CHK_CHECKED`.
pub const CHK_CHECKED: u32 = 0x228;
/// `CHK_SCANS`.
pub const CHK_SCANS: u32 = 0x22c;
/// `CHK_LAST_VA_LO`.
pub const CHK_LAST_VA_LO: u32 = 0x230;
/// `CHK_LAST_VA_HI`.
pub const CHK_LAST_VA_HI: u32 = 0x234;
/// `CHK_LAST_GPU_PTE_LO`.
pub const CHK_LAST_GPU_PTE_LO: u32 = 0x238;
/// `CHK_LAST_GPU_PTE_HI`.
pub const CHK_LAST_GPU_PTE_HI: u32 = 0x23c;
/// `CHK_LAST_CPU_PTE_LO`.
pub const CHK_LAST_CPU_PTE_LO: u32 = 0x240;
/// `CHK_LAST_CPU_PTE_HI`.
pub const CHK_LAST_CPU_PTE_HI: u32 = 0x244;
/// `CHK_LAST_REASON`.
pub const CHK_LAST_REASON: u32 = 0x248;
/// `CHK_LAST_INST`.
pub const CHK_LAST_INST: u32 = 0x24c;
/// `CHK_INJECT`.
pub const CHK_INJECT: u32 = 0x250;
/// `CHK_ERROR`.
pub const CHK_ERROR: u32 = 0x254;
/// `CHK_SWAP_MIGRATION_READ`.
pub const CHK_SWAP_MIGRATION_READ: u32 = 0x258;
/// `CHK_HAZARDS`.
pub const CHK_HAZARDS: u32 = 0x25c;
/// `CHK_BY_REASON[0]` (reason codes 1..15 follow, 4 bytes apart).
pub const CHK_BY_REASON: u32 = 0x260;
/// End of `CHK_BY_REASON`.
pub const CHK_BY_REASON_END: u32 = 0x2a0;
/// `CHK_PID`.
pub const CHK_PID: u32 = 0x2a0;
/// `CHK_LAST_CHID`.
pub const CHK_LAST_CHID: u32 = 0x2a4;
/// `CHK_LAST_PID`.
pub const CHK_LAST_PID: u32 = 0x2a8;
/// `CHK_MM_WATCH`.
pub const CHK_MM_WATCH: u32 = 0x2ac;
/// `CHK_MM_EXIT`.
pub const CHK_MM_EXIT: u32 = 0x2b0;
/// `CHK_SPACE_SEL`.
pub const CHK_SPACE_SEL: u32 = 0x2b4;
/// `CHK_SPACE_STATE`.
pub const CHK_SPACE_STATE: u32 = 0x2b8;
/// `CHK_SPACE_VIOLATIONS`.
pub const CHK_SPACE_VIOLATIONS: u32 = 0x2bc;
/// `CHK_SPACE_STALE`.
pub const CHK_SPACE_STALE: u32 = 0x2c0;
/// `CHK_SPACE_PID`.
pub const CHK_SPACE_PID: u32 = 0x2c4;
/// `CHK_STALE`.
pub const CHK_STALE: u32 = 0x2c8;
/// `CHK_SPACES`.
pub const CHK_SPACES: u32 = 0x2cc;
/// `CHK_ALIASES`.
pub const CHK_ALIASES: u32 = 0x2d0;
/// `CHK_TRUNCATED`.
pub const CHK_TRUNCATED: u32 = 0x2d4;
/// End of the checker registers.
pub const CHK_END: u32 = 0x300;

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
