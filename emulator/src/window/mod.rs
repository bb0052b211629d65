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
//! The PTE checker ([`crate::check`]), 0x200..0x334. Registering is a sequence of writes
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
//! | 0x2d8 | `CHK_MM_RANGES` | WO | written by gp100emu_pgd: it reports the CPU invalidates of the mm whose root is this value << 12, so that mm's spaces are scanned by change |
//! | 0x2dc / 0x2e0 | `CHK_INVAL_START_LO/HI` | RW | start of a CPU invalidate (staged for `CHK_INVAL_ROOT`) |
//! | 0x2e4 / 0x2e8 | `CHK_INVAL_END_LO/HI` | RW | its end (exclusive) |
//! | 0x2ec | `CHK_INVAL_ROOT` | WO | written by gp100emu_pgd from `invalidate_range_end`: the mm (root >> 12) changed its CPU page tables over `[START, END)`; its spaces' GPU PTEs there are judged now |
//! | 0x2f0 | `CHK_FULL_EVERY` | RW | a space scanned by change is scanned in full every N scans (write 0 for the default, 64; 1 makes every scan full) |
//! | 0x2f4 | `CHK_FULL_SCANS` | RO | scans that judged every valid PTE |
//! | 0x2f8 | `CHK_CPU_INVALIDATES` | RO | CPU invalidates reported |
//! | 0x2fc | `CHK_LEAVES_REUSED` | RO | page tables (and 2 MiB PTEs) scans took unchanged from the scan before, unread |
//! | 0x300 / 0x304 / 0x308 | `CHK_MAPPED_4K/64K/2M` | RO | valid PTEs the scans saw appear or change, by page size (the driver's PFN maps) |
//! | 0x30c / 0x310 / 0x314 | `CHK_CLEARED_4K/64K/2M` | RO | valid PTEs the scans saw disappear, by page size |
//! | 0x318 | `CHK_MAPPED_VRAM` | RO | of the mapped, PTEs of video memory (pages migrated to the GPU) |
//! | 0x320 | `CHK_NEW_VIOLATIONS` | RO | of `CHK_VIOLATIONS`, the pages first found wrong (a PTE that stays wrong is reported again at each flush; only its first report is new; a GPU use is new unless it went through a PTE already found wrong) |
//! | 0x324 / 0x328 | `CHK_LAST_NEW_VA_LO/HI` | RO | the VA of the last new violation |
//! | 0x32c | `CHK_LAST_NEW_HOW` | RO | that violation: 7:0 reason code, 9:8 where found (0 a flush, 1 a GPU use, 2 a CPU invalidate: a PTE the driver left over it), 23:16 the GPU PTE's page shift (12, 16 or 21; 0 if unknown) |
//! | 0x330 | `CHK_PARTIAL_2M` | RO | 2 MiB GPU PTEs a reported CPU invalidate covered only in part (the driver's notifier clears part of a 2 MiB mapping) |
//!
//! The window is one unit, whole: it owns the access engine, its batch and the PTE checker
//! behind these registers, and reaches the rest of the device (memory, MMU, PFIFO's channels,
//! the fault buffer) through the access's [`Ctx`]. `WRITES` counts every guest write to the
//! window, whichever register it names.

use std::ops::Range;

use crate::access::batch::{ctrl, Batch, SlotEvent};
use crate::access::{self, AccessEngine};
use crate::bus::{Ctx, Unit};
use crate::check::{x86::CpuSpace, CheckedSpace, Checker, Inject, Life};
use crate::engine::Hw;
use crate::fault;
use crate::hw::event::ModelEvent;
use crate::hw::ramin;
pub use crate::hw::reason::ChannelLookupError;
use crate::mem::{GpuMemory, Target};

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
/// `CHK_MM_RANGES`.
pub const CHK_MM_RANGES: u32 = 0x2d8;
/// `CHK_INVAL_START_LO`.
pub const CHK_INVAL_START_LO: u32 = 0x2dc;
/// `CHK_INVAL_START_HI`.
pub const CHK_INVAL_START_HI: u32 = 0x2e0;
/// `CHK_INVAL_END_LO`.
pub const CHK_INVAL_END_LO: u32 = 0x2e4;
/// `CHK_INVAL_END_HI`.
pub const CHK_INVAL_END_HI: u32 = 0x2e8;
/// `CHK_INVAL_ROOT`.
pub const CHK_INVAL_ROOT: u32 = 0x2ec;
/// `CHK_FULL_EVERY`.
pub const CHK_FULL_EVERY: u32 = 0x2f0;
/// `CHK_FULL_SCANS`.
pub const CHK_FULL_SCANS: u32 = 0x2f4;
/// `CHK_CPU_INVALIDATES`.
pub const CHK_CPU_INVALIDATES: u32 = 0x2f8;
/// `CHK_LEAVES_REUSED`.
pub const CHK_LEAVES_REUSED: u32 = 0x2fc;
/// `CHK_MAPPED_4K`; `CHK_MAPPED_64K` and `CHK_MAPPED_2M` follow.
pub const CHK_MAPPED: u32 = 0x300;
/// `CHK_CLEARED_4K`; `CHK_CLEARED_64K` and `CHK_CLEARED_2M` follow.
pub const CHK_CLEARED: u32 = 0x30c;
/// `CHK_MAPPED_VRAM`.
pub const CHK_MAPPED_VRAM: u32 = 0x318;
/// `CHK_NEW_VIOLATIONS`.
pub const CHK_NEW_VIOLATIONS: u32 = 0x320;
/// `CHK_LAST_NEW_VA_LO`.
pub const CHK_LAST_NEW_VA_LO: u32 = 0x324;
/// `CHK_LAST_NEW_VA_HI`.
pub const CHK_LAST_NEW_VA_HI: u32 = 0x328;
/// `CHK_LAST_NEW_HOW`.
pub const CHK_LAST_NEW_HOW: u32 = 0x32c;
/// `CHK_PARTIAL_2M`.
pub const CHK_PARTIAL_2M: u32 = 0x330;
/// End of the checker registers.
pub const CHK_END: u32 = 0x334;

/// Fields of `CHK_LAST_NEW_HOW`.
pub mod last_new_how {
    /// Bits 7:0, the reason code.
    pub const REASON_SHIFT: u32 = 0;
    /// Bits 9:8, where it was found (the values below).
    pub const AT_SHIFT: u32 = 8;
    /// Found at a scan after a flush.
    pub const AT_FLUSH: u32 = 0;
    /// Found at a GPU use.
    pub const AT_USE: u32 = 1;
    /// Found at a CPU invalidate.
    pub const AT_CPU_INVALIDATE: u32 = 2;
    /// Bits 23:16, the GPU PTE's page shift.
    pub const SHIFT_SHIFT: u32 = 16;
}

/// "GPEM" (0x47 0x50 0x45 0x4d), most significant byte first.
pub const WINDOW_ID_VALUE: u32 = 0x4750_454d;
/// Layout version of the window.
pub const WINDOW_VERSION_VALUE: u32 = 1;

/// The vendor window and the units behind it.
#[derive(Debug)]
pub struct Window {
    scratch: [u32; WINDOW_SCRATCH_COUNT],
    writes: u32,
    undecoded_index: u32,
    /// The access engine.
    pub access: AccessEngine,
    /// The access engine's batch.
    pub batch: Batch,
    /// The PTE checker.
    pub checker: Checker,
    chk_regs: CheckRegs,
}

impl Default for Window {
    fn default() -> Self {
        Self::new()
    }
}

impl Window {
    /// Creates the window in its reset state, with a checker that injects nothing.
    pub fn new() -> Self {
        Window {
            scratch: [0; WINDOW_SCRATCH_COUNT],
            writes: 0,
            undecoded_index: 0,
            access: AccessEngine::default(),
            batch: Batch::default(),
            checker: Checker::new(Inject::None),
            chk_regs: CheckRegs::default(),
        }
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

    /// Makes the checker inject a seeded bug (a fresh checker: registrations are dropped).
    pub fn set_inject(&mut self, inject: Inject) {
        self.checker = Checker::new(inject);
    }

    fn status_read(&self, ctx: &Ctx, reg: u32) -> Option<u32> {
        Some(match reg {
            WINDOW_ID => WINDOW_ID_VALUE,
            WINDOW_VERSION => WINDOW_VERSION_VALUE,
            WINDOW_WRITES => self.writes,
            WINDOW_UNDECODED_COUNT => ctx.unknown_seen.len() as u32,
            WINDOW_UNDECODED_INDEX => self.undecoded_index,
            WINDOW_UNDECODED_OFFSET => ctx
                .unknown_seen
                .iter()
                .nth(self.undecoded_index as usize)
                .copied()
                .unwrap_or(u32::MAX),
            WINDOW_CHANNELS_ACTIVE => ctx.fifo.active_channels().len() as u32,
            WINDOW_HOST_GP_ENTRIES => ctx.host_gp_entries as u32,
            WINDOW_RUNLISTS_SUBMITTED => ctx.runlists_submitted as u32,
            _ => return Self::scratch_index(reg).map(|i| self.scratch[i]),
        })
    }

    fn status_write(&mut self, reg: u32, v: u32) -> bool {
        match reg {
            WINDOW_ID | WINDOW_VERSION | WINDOW_WRITES => true, // read-only
            WINDOW_UNDECODED_INDEX => {
                self.undecoded_index = v;
                true
            }
            _ => match Self::scratch_index(reg) {
                Some(i) => {
                    self.scratch[i] = v;
                    true
                }
                None => false,
            },
        }
    }

    /// Resolves a channel id to the access engine's view of it: the PCCSR instance
    /// pointer, then the instance block's PDB word.
    fn lookup_channel(ctx: &Ctx, chid: u32) -> Result<access::Channel, ChannelLookupError> {
        let w = ctx
            .fifo
            .channel_inst(chid)
            .ok_or(ChannelLookupError::NotBound(chid))?;
        let aperture = ramin::TARGET.get32(w) as u8;
        let target =
            Target::from_target_field(u64::from(aperture)).ok_or(ChannelLookupError::InstTarget)?;
        let inst = ramin::ptr_address(w);
        let pdb_word = ctx
            .phys
            .read_u64(target, inst + ramin::INST_PDB)
            .map_err(ChannelLookupError::InstUnreadable)?;
        let pdb = crate::mmu::walk::Pdb::from_instance_word(pdb_word)
            .ok_or(ChannelLookupError::NoPageDirectory)?;
        Ok(access::Channel {
            pdb,
            pdb_word,
            inst: (inst, aperture),
            chid,
        })
    }

    /// Accounts the data access of each translation an access used and lets the PTE checker
    /// judge each use.
    fn judge_uses(&mut self, ctx: &mut Ctx, uses: Vec<access::Use>) {
        for u in uses {
            let cost = if u.target.is_sys() {
                ctx.costs.data_read_sysmem
            } else {
                ctx.costs.data_read_vidmem
            };
            ctx.clock.advance(cost);
            self.checker.check_use(
                &ctx.phys,
                (u.chid, u.inst, u.pdb),
                u.va,
                u.target,
                u.pa,
                u.write,
                u.page_size.shift(),
            );
        }
        self.drain_checker_events(ctx);
    }

    /// Exited processes' spaces whose channel is no longer bound to the same instance block
    /// (nouveau freed it at file close) stop being scanned: the page directory may be reused.
    fn retire_unbound_spaces(&mut self, ctx: &Ctx) {
        for (chid, inst) in self.checker.exited_channels() {
            if Self::lookup_channel(ctx, chid).map(|c| c.inst.0).ok() != Some(inst) {
                self.checker.retire(chid, inst);
            }
        }
    }

    fn drain_checker_events(&mut self, ctx: &mut Ctx) {
        for e in self.checker.take_events() {
            ctx.log(e);
        }
    }

    /// Runs the access engine's operation until it completes, faults or fails.
    fn step_access(&mut self, ctx: &mut Ctx) {
        let mut hw = Hw {
            phys: &mut ctx.phys,
            mmu: &mut ctx.mmu,
            now_ns: 0,
        };
        let r = self.access.step(&mut hw);
        let uses = self.access.take_uses();
        self.judge_uses(ctx, uses);
        let c = ctx.mmu.take_cost();
        ctx.clock.advance(c);
        match r {
            access::StepResult::Done => ctx.log(ModelEvent::AccessDone {
                op: self.access.last_op() as u8,
                va: self.access.va,
                faults: self.access.faults(),
            }),
            access::StepResult::Fault(e) => {
                ctx.report_fault(e);
            }
            access::StepResult::Error(why) => ctx.log(ModelEvent::AccessFailed { why }),
        }
    }

    /// Runs the batch's waiting slots; their misses go to the fault buffer in slot order.
    fn step_batch(&mut self, ctx: &mut Ctx) {
        let mut hw = Hw {
            phys: &mut ctx.phys,
            mmu: &mut ctx.mmu,
            now_ns: 0,
        };
        let events = self.batch.run(&mut hw);
        let uses = self.batch.take_uses();
        self.judge_uses(ctx, uses);
        let c = ctx.mmu.take_cost();
        ctx.clock.advance(c);
        self.log_slot_events(ctx, events);
    }

    fn log_slot_events(&mut self, ctx: &mut Ctx, events: Vec<SlotEvent>) {
        for e in events {
            match e {
                SlotEvent::Done { op, va, faults, .. } => ctx.log(ModelEvent::AccessDone {
                    op: op as u8,
                    va,
                    faults,
                }),
                SlotEvent::Fault(f) => {
                    if !matches!(ctx.report_fault(f), fault::Report::Written(_)) {
                        self.batch.note_dropped();
                    }
                }
                SlotEvent::Error(why) => ctx.log(ModelEvent::AccessFailed { why }),
            }
        }
    }

    /// What an invalidate sets off beyond the TLBs: the PTE checker scans the space it
    /// covers (nouveau flushes after every PTE update), and the REPLAY/CANCEL field
    /// resumes or ends the access engine's and the batch's waiting operations.
    pub fn after_invalidate(&mut self, ctx: &mut Ctx, word: u32, pdb_regs: u64) {
        use crate::mmu::trigger;
        if self.checker.armed() {
            self.retire_unbound_spaces(ctx);
            self.checker.scan_invalidated(
                &mut ctx.phys,
                trigger::ALL_PDB.is_set(u64::from(word)),
                trigger::pdb_address(pdb_regs),
            );
            self.drain_checker_events(ctx);
        }
        let op = trigger::replay_op(word);
        let target = trigger::cancel_target(word);
        match op {
            trigger::ReplayOp::Start | trigger::ReplayOp::StartAckAll => {
                if self.access.replay() {
                    ctx.log(ModelEvent::Replay);
                    self.step_access(ctx);
                }
            }
            trigger::ReplayOp::CancelTargeted => {
                if self.access.cancel(Some(target)) {
                    ctx.log(ModelEvent::Cancel);
                }
            }
            trigger::ReplayOp::CancelGlobal => {
                if self.access.cancel(None) {
                    ctx.log(ModelEvent::Cancel);
                }
            }
            trigger::ReplayOp::None | trigger::ReplayOp::Other(_) => {}
        }
        // The batch's waiting slots: a replay re-issues all of them, a cancel ends those it
        // names.
        let cancelled = match op {
            trigger::ReplayOp::Start | trigger::ReplayOp::StartAckAll => {
                if self.batch.replay() > 0 {
                    ctx.log(ModelEvent::Replay);
                    self.step_batch(ctx);
                }
                0
            }
            trigger::ReplayOp::CancelTargeted => self.batch.cancel(Some(target)),
            trigger::ReplayOp::CancelGlobal => self.batch.cancel(None),
            trigger::ReplayOp::None | trigger::ReplayOp::Other(_) => 0,
        };
        if cancelled > 0 {
            ctx.log(ModelEvent::Cancel);
        }
    }

    fn access_regs(&mut self, ctx: &mut Ctx, reg: u32, write: Option<u32>) -> Option<u32> {
        let a = &mut self.access;
        if let Some(v) = write {
            match reg {
                AE_CHID => a.chid = v,
                AE_VA_LO => set_half(&mut a.va, v, false),
                AE_VA_HI => set_half(&mut a.va, v, true),
                AE_LEN => a.len = v,
                AE_DATA_LO => set_half(&mut a.data, v, false),
                AE_DATA_HI => set_half(&mut a.data, v, true),
                AE_OP => {
                    let chan = Self::lookup_channel(ctx, self.access.chid);
                    match self.access.start(v, chan) {
                        Ok(()) => self.step_access(ctx),
                        Err(why) => ctx.log(ModelEvent::AccessFailed { why }),
                    }
                }
                AE_STATUS | AE_FAULTS | AE_REPLAYS | AE_RESULT => {}
                _ => return None,
            }
            return Some(0);
        }
        Some(match reg {
            AE_CHID => a.chid,
            AE_VA_LO => lo(a.va),
            AE_VA_HI => hi(a.va),
            AE_LEN => a.len,
            AE_DATA_LO => lo(a.data),
            AE_DATA_HI => hi(a.data),
            AE_OP => a.last_op(),
            AE_STATUS => a.status_word(),
            AE_FAULTS => a.faults(),
            AE_REPLAYS => a.replays(),
            AE_RESULT => a.result,
            _ => return None,
        })
    }

    fn batch_regs(&mut self, ctx: &mut Ctx, reg: u32, write: Option<u32>) -> Option<u32> {
        let b = &mut self.batch;
        if let Some(v) = write {
            match reg {
                AB_INDEX => b.index = v,
                AB_CHID => b.selected().chid = v,
                AB_VA_LO => set_half(&mut b.selected().va, v, false),
                AB_VA_HI => set_half(&mut b.selected().va, v, true),
                AB_LEN => b.selected().len = v,
                AB_DATA_LO => set_half(&mut b.selected().data, v, false),
                AB_DATA_HI => set_half(&mut b.selected().data, v, true),
                AB_OP => b.selected().op = v,
                AB_GPC => b.selected().gpc = v,
                AB_COUNT => b.count = v,
                AB_CTRL if v == ctrl::ISSUE => {
                    let mut batch = std::mem::take(&mut self.batch);
                    let errors = batch.issue(|chid| Self::lookup_channel(ctx, chid));
                    self.batch = batch;
                    self.log_slot_events(ctx, errors);
                    self.step_batch(ctx);
                }
                AB_CTRL if v == ctrl::CLEAR => self.batch.clear(),
                AB_CTRL | AB_STATUS | AB_FAULTS | AB_REPLAYS | AB_RESULT | AB_DONE | AB_ERRORS
                | AB_FAULTS_TOTAL | AB_DROPPED | AB_BUFFER_INFO => {}
                _ => return None,
            }
            return Some(0);
        }
        let info = ctx.fault.info();
        let b = &mut self.batch;
        Some(match reg {
            AB_INDEX => b.index,
            AB_CHID => b.selected().chid,
            AB_VA_LO => lo(b.selected().va),
            AB_VA_HI => hi(b.selected().va),
            AB_LEN => b.selected().len,
            AB_DATA_LO => lo(b.selected().data),
            AB_DATA_HI => hi(b.selected().data),
            AB_OP => b.selected().op,
            AB_GPC => b.selected().gpc,
            AB_STATUS => b.selected().status_word(),
            AB_FAULTS => b.selected().faults(),
            AB_REPLAYS => b.selected().replays(),
            AB_RESULT => b.selected().result,
            AB_COUNT => b.count,
            AB_CTRL => b.pending(),
            AB_DONE => b.done(),
            AB_ERRORS => b.errors(),
            AB_FAULTS_TOTAL => b.faults,
            AB_DROPPED => b.dropped,
            AB_BUFFER_INFO => info,
            AB_PROGRESS => b.selected().progress(),
            _ => return None,
        })
    }

    fn check_regs(&mut self, ctx: &mut Ctx, reg: u32, write: Option<u32>) -> Option<u32> {
        let r = &mut self.chk_regs;
        if let Some(v) = write {
            match reg {
                CHK_CHID => r.chid = v,
                CHK_ROOT_LO => set_half(&mut r.root, v, false),
                CHK_ROOT_HI => set_half(&mut r.root, v, true),
                CHK_FLAGS => r.flags = v,
                CHK_EXCL_LO => set_half(&mut r.excl, v, false),
                CHK_EXCL_HI => set_half(&mut r.excl, v, true),
                CHK_EXCL_SIZE_LO => set_half(&mut r.excl_size, v, false),
                CHK_EXCL_SIZE_HI => set_half(&mut r.excl_size, v, true),
                CHK_CTRL => self.check_ctrl(ctx, v),
                CHK_SWAP_MIGRATION_READ => r.swap_migration_read = v as u8,
                CHK_PID => r.pid = v,
                CHK_SPACE_SEL => r.space_sel = v,
                CHK_MM_WATCH => self.checker.mm_watched(u64::from(v) << 12),
                CHK_MM_EXIT => {
                    self.checker.mm_exited(&mut ctx.phys, u64::from(v) << 12);
                    self.drain_checker_events(ctx);
                }
                CHK_MM_RANGES => self.checker.mm_ranges_reported(u64::from(v) << 12),
                CHK_INVAL_START_LO => set_half(&mut r.inval_start, v, false),
                CHK_INVAL_START_HI => set_half(&mut r.inval_start, v, true),
                CHK_INVAL_END_LO => set_half(&mut r.inval_end, v, false),
                CHK_INVAL_END_HI => set_half(&mut r.inval_end, v, true),
                CHK_INVAL_ROOT => {
                    let (start, end) = (r.inval_start, r.inval_end);
                    self.checker
                        .cpu_invalidated(&mut ctx.phys, u64::from(v) << 12, start, end);
                    self.drain_checker_events(ctx);
                }
                CHK_FULL_EVERY => self.checker.set_full_scan_every(v),
                _ if reg < CHK_END => {}
                _ => return None,
            }
            return Some(0);
        }
        let st = self.checker.stats();
        let last = self.checker.last();
        let last_new = self.checker.last_new();
        let r = &self.chk_regs;
        let space = self.checker.report(r.space_sel);
        Some(match reg {
            CHK_CHID => r.chid,
            CHK_ROOT_LO => lo(r.root),
            CHK_ROOT_HI => hi(r.root),
            CHK_FLAGS => r.flags,
            CHK_EXCL_LO => lo(r.excl),
            CHK_EXCL_HI => hi(r.excl),
            CHK_EXCL_SIZE_LO => lo(r.excl_size),
            CHK_EXCL_SIZE_HI => hi(r.excl_size),
            CHK_CTRL => u32::from(self.checker.armed()),
            CHK_VIOLATIONS => st.violations as u32,
            CHK_CHECKED => st.checked as u32,
            CHK_SCANS => st.scans as u32,
            CHK_LAST_VA_LO => last.map_or(0, |v| lo(v.va)),
            CHK_LAST_VA_HI => last.map_or(0, |v| hi(v.va)),
            CHK_LAST_GPU_PTE_LO => last.map_or(0, |v| lo(v.gpu_pte)),
            CHK_LAST_GPU_PTE_HI => last.map_or(0, |v| hi(v.gpu_pte)),
            CHK_LAST_CPU_PTE_LO => last.map_or(0, |v| lo(v.cpu_pte)),
            CHK_LAST_CPU_PTE_HI => last.map_or(0, |v| hi(v.cpu_pte)),
            CHK_LAST_REASON => last.map_or(0, |v| {
                v.reason as u32 | u32::from(v.at == crate::check::At::Use) << 8
            }),
            CHK_LAST_INST => last.map_or(0, |v| (v.inst >> 12) as u32),
            CHK_INJECT => self.checker.inject().code(),
            CHK_ERROR => r.error,
            CHK_SWAP_MIGRATION_READ => u32::from(r.swap_migration_read),
            CHK_HAZARDS => st.hazards as u32,
            o if (CHK_BY_REASON..CHK_BY_REASON_END).contains(&o) => {
                st.by_reason[((o - CHK_BY_REASON) / 4) as usize] as u32
            }
            CHK_PID => r.pid,
            CHK_LAST_CHID => last.map_or(0, |v| v.chid),
            CHK_LAST_PID => last.map_or(0, |v| v.pid),
            CHK_SPACE_SEL => r.space_sel,
            CHK_SPACE_STATE => space.map_or(0, |s| {
                let life = match s.life {
                    Life::Live => 1,
                    Life::Exited => 2,
                    Life::Retired => 3,
                };
                life | u32::from(s.watched) << 8 | s.order.min(0xffff) << 16
            }),
            CHK_SPACE_VIOLATIONS => space.map_or(0, |s| s.violations as u32),
            CHK_SPACE_STALE => space.map_or(0, |s| s.stale as u32),
            CHK_SPACE_PID => space.map_or(0, |s| s.pid),
            CHK_STALE => st.stale as u32,
            CHK_SPACES => self.checker.spaces() as u32,
            CHK_ALIASES => st.aliases as u32,
            CHK_TRUNCATED => st.truncated_scans as u32,
            CHK_INVAL_START_LO => lo(r.inval_start),
            CHK_INVAL_START_HI => hi(r.inval_start),
            CHK_INVAL_END_LO => lo(r.inval_end),
            CHK_INVAL_END_HI => hi(r.inval_end),
            CHK_FULL_EVERY => self.checker.full_scan_every(),
            CHK_FULL_SCANS => st.full_scans as u32,
            CHK_CPU_INVALIDATES => st.cpu_invalidates as u32,
            CHK_LEAVES_REUSED => st.leaves_reused as u32,
            o if (CHK_MAPPED..CHK_MAPPED + 12).contains(&o) => {
                st.mapped[((o - CHK_MAPPED) / 4) as usize] as u32
            }
            o if (CHK_CLEARED..CHK_CLEARED + 12).contains(&o) => {
                st.cleared[((o - CHK_CLEARED) / 4) as usize] as u32
            }
            CHK_MAPPED_VRAM => st.mapped_vram as u32,
            CHK_NEW_VIOLATIONS => st.new_violations as u32,
            CHK_PARTIAL_2M => st.partial_2m_invalidates as u32,
            CHK_LAST_NEW_VA_LO => last_new.map_or(0, |v| lo(v.va)),
            CHK_LAST_NEW_VA_HI => last_new.map_or(0, |v| hi(v.va)),
            CHK_LAST_NEW_HOW => last_new.map_or(0, |v| {
                use crate::check::At;
                let at = match v.at {
                    At::Flush => last_new_how::AT_FLUSH,
                    At::Use => last_new_how::AT_USE,
                    At::CpuInvalidate => last_new_how::AT_CPU_INVALIDATE,
                };
                (v.reason as u32) << last_new_how::REASON_SHIFT
                    | at << last_new_how::AT_SHIFT
                    | u32::from(v.shift) << last_new_how::SHIFT_SHIFT
            }),
            _ if reg < CHK_END => 0,
            _ => return None,
        })
    }

    fn check_ctrl(&mut self, ctx: &mut Ctx, v: u32) {
        match v {
            1 => match Self::lookup_channel(ctx, self.chk_regs.chid) {
                Ok(c) => {
                    let r = &self.chk_regs;
                    let space = CheckedSpace {
                        swap: crate::check::x86::SwapTypes {
                            migration_read: r.swap_migration_read,
                        },
                        pdb: c.pdb,
                        inst: c.inst.0,
                        cpu: CpuSpace {
                            root: r.root,
                            la57: r.flags & 1 != 0,
                        },
                        exclude: (r.excl, r.excl.saturating_add(r.excl_size)),
                    };
                    match self.checker.register(space, r.chid, r.pid) {
                        Ok(()) => {
                            self.chk_regs.error = 0;
                            self.checker.scan_space(&mut ctx.phys, c.pdb);
                            self.drain_checker_events(ctx);
                        }
                        Err(why) => {
                            log::warn!("PTE checker not armed: {why}");
                            self.chk_regs.error = 2;
                        }
                    }
                }
                Err(why) => {
                    log::warn!("PTE checker not armed: {why}");
                    self.chk_regs.error = 1;
                }
            },
            2 => {
                if let Ok(c) = Self::lookup_channel(ctx, self.chk_regs.chid) {
                    self.checker.unregister(Some(c.pdb));
                }
            }
            3 => {
                self.retire_unbound_spaces(ctx);
                self.checker.scan(&mut ctx.phys);
                self.drain_checker_events(ctx);
            }
            4 => self.checker.unregister(None),
            _ => {}
        }
    }
}

impl Unit for Window {
    fn name(&self) -> &'static str {
        "GP100EMU_WINDOW"
    }

    fn ranges(&self) -> Vec<Range<u32>> {
        crate::bus::block(WINDOW_BASE, WINDOW_SIZE)
    }

    fn read32(&mut self, ctx: &mut Ctx, offset: u32) -> Option<u32> {
        let reg = offset.checked_sub(WINDOW_BASE)?;
        if (AE_BASE..AE_END).contains(&reg) {
            self.access_regs(ctx, reg, None)
        } else if (AB_BASE..AB_END).contains(&reg) {
            self.batch_regs(ctx, reg, None)
        } else if (CHK_BASE..CHK_END).contains(&reg) {
            self.check_regs(ctx, reg, None)
        } else {
            self.status_read(ctx, reg)
        }
    }

    /// Every write counts in `WRITES` (decoded or not: the register documents the window's
    /// writes, not its registers').
    fn write32(&mut self, ctx: &mut Ctx, offset: u32, value: u32) -> bool {
        let Some(reg) = offset.checked_sub(WINDOW_BASE) else {
            return false;
        };
        self.writes = self.writes.wrapping_add(1);
        if (AE_BASE..AE_END).contains(&reg) {
            self.access_regs(ctx, reg, Some(value)).is_some()
        } else if (AB_BASE..AB_END).contains(&reg) {
            self.batch_regs(ctx, reg, Some(value)).is_some()
        } else if (CHK_BASE..CHK_END).contains(&reg) {
            self.check_regs(ctx, reg, Some(value)).is_some()
        } else {
            self.status_write(reg, value)
        }
    }

    /// Scratch, WRITES, the selectors, the access engine, the batch and the checker's
    /// registrations go back to reset; the checker keeps the bug it injects (a device
    /// setting, not a register).
    fn reset(&mut self, _: &mut Ctx) {
        let inject = self.checker.inject();
        *self = Window::new();
        self.checker = Checker::new(inject);
    }
}

/// The low 32 bits of a 64-bit value the window shows as two registers.
fn lo(x: u64) -> u32 {
    x as u32
}

/// The high 32 bits of a 64-bit value the window shows as two registers.
fn hi(x: u64) -> u32 {
    (x >> 32) as u32
}

/// Replaces the high or the low 32 bits of `x` with `v` (a write to one of the two registers).
fn set_half(x: &mut u64, v: u32, high: bool) {
    *x = if high {
        (*x & 0xffff_ffff) | u64::from(v) << 32
    } else {
        (*x & !0xffff_ffff) | u64::from(v)
    }
}

/// The checker's registration registers in the window.
#[derive(Debug, Clone)]
struct CheckRegs {
    swap_migration_read: u8,
    chid: u32,
    root: u64,
    flags: u32,
    excl: u64,
    excl_size: u64,
    error: u32,
    pid: u32,
    space_sel: u32,
    inval_start: u64,
    inval_end: u64,
}

impl Default for CheckRegs {
    fn default() -> Self {
        CheckRegs {
            swap_migration_read: crate::check::x86::DEFAULT_SWAP_TYPES.migration_read,
            chid: 0,
            root: 0,
            flags: 0,
            excl: 0,
            excl_size: 0,
            error: 0,
            pid: 0,
            space_sel: 0,
            inval_start: 0,
            inval_end: 0,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn scratch_reads_back_and_counts_writes() {
        let mut c = Ctx::for_tests();
        let mut w = Window::new();
        assert_eq!(
            w.read32(&mut c, WINDOW_BASE + WINDOW_ID),
            Some(WINDOW_ID_VALUE)
        );
        for i in 0..WINDOW_SCRATCH_COUNT as u32 {
            assert!(w.write32(
                &mut c,
                WINDOW_BASE + WINDOW_SCRATCH0 + 4 * i,
                0xdead_0000 | i
            ));
        }
        for i in 0..WINDOW_SCRATCH_COUNT as u32 {
            assert_eq!(
                w.read32(&mut c, WINDOW_BASE + WINDOW_SCRATCH0 + 4 * i),
                Some(0xdead_0000 | i)
            );
        }
        assert_eq!(w.read32(&mut c, WINDOW_BASE + WINDOW_WRITES), Some(4));
        w.reset(&mut c);
        assert_eq!(w.read32(&mut c, WINDOW_BASE + WINDOW_SCRATCH0), Some(0));
        assert_eq!(w.read32(&mut c, WINDOW_BASE + WINDOW_WRITES), Some(0));
    }

    #[test]
    fn read_only_and_undecoded_registers() {
        let mut c = Ctx::for_tests();
        let mut w = Window::new();
        assert!(w.write32(&mut c, WINDOW_BASE + WINDOW_ID, 0));
        assert_eq!(
            w.read32(&mut c, WINDOW_BASE + WINDOW_ID),
            Some(WINDOW_ID_VALUE)
        );
        assert_eq!(w.read32(&mut c, WINDOW_BASE + 0x800), None);
        assert!(!w.write32(&mut c, WINDOW_BASE + 0x800, 1));
        assert_eq!(w.read32(&mut c, 0x10), None, "below the window");
    }

    /// `WRITES` counts every guest write to the window, as documented: the status selectors,
    /// the access engine's, the batch's and the checker's registers and undecoded offsets
    /// included (it used to miss all but ID/VERSION/WRITES/SCRATCH).
    #[test]
    fn writes_counts_every_write_to_the_window() {
        let mut c = Ctx::for_tests();
        let mut w = Window::new();
        let writes = [
            (WINDOW_SCRATCH0, 1),
            (WINDOW_UNDECODED_INDEX, 0),
            (AE_CHID, 3),
            (AE_VA_LO, 0x1000),
            (AE_OP, 1), // fails (channel 3 is not bound): still a write
            (AB_INDEX, 2),
            (AB_COUNT, 0),
            (CHK_CHID, 3),
            (CHK_PID, 42),
            (CHK_CTRL, 4),
            (0x800, 7),         // undecoded
            (WINDOW_WRITES, 0), // read-only
        ];
        for (n, (reg, v)) in writes.iter().enumerate() {
            w.write32(&mut c, WINDOW_BASE + reg, *v);
            assert_eq!(
                w.read32(&mut c, WINDOW_BASE + WINDOW_WRITES),
                Some(n as u32 + 1),
                "after writing {reg:#x}"
            );
        }
        // Reads do not count.
        w.read32(&mut c, WINDOW_BASE + AE_STATUS);
        w.read32(&mut c, WINDOW_BASE + CHK_VIOLATIONS);
        assert_eq!(
            w.read32(&mut c, WINDOW_BASE + WINDOW_WRITES),
            Some(writes.len() as u32)
        );
    }

    /// The access engine's failures reach the event log typed: an operation on a channel
    /// that is not bound is an `AccessFailed` naming it, and so is a batch slot's.
    #[test]
    fn access_failures_are_logged_typed() {
        let mut c = Ctx::for_tests();
        c.set_event_log(true);
        let mut w = Window::new();
        for (reg, v) in [
            (AE_CHID, 3),
            (AE_LEN, 4),
            (AE_OP, 1),
            (AB_INDEX, 0),
            (AB_CHID, 5),
            (AB_LEN, 4),
            (AB_OP, 1),
            (AB_COUNT, 1),
            (AB_CTRL, ctrl::ISSUE),
        ] {
            w.write32(&mut c, WINDOW_BASE + reg, v);
        }
        assert_eq!(
            c.take_events(),
            vec![
                ModelEvent::AccessFailed {
                    why: ChannelLookupError::NotBound(3).into(),
                },
                ModelEvent::AccessFailed {
                    why: access::AccessFailure::from(ChannelLookupError::NotBound(5)).in_slot(0),
                },
            ]
        );
    }
}
