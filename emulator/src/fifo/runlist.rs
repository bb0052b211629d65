//! Runlists: the lists of channel groups (TSGs) and channels the host schedules, read from
//! memory when nouveau submits one.
//!
//! Pascal runlist entries are 8 bytes (nvgpu gp106 `hw_ram_gp106.h`: `ram_rl_entry_size`
//! 8). Word 0: ID 11:0, TYPE 13 (0 channel, 1 TSG); a TSG header also has TIMESLICE_SCALE
//! 17:14, TIMESLICE_TIMEOUT 25:18 and TSG_LENGTH 31:26 (the channels that follow). nouveau
//! 6.12 writes a TSG header per channel group (`gk110_runl_insert_cgrp`: `n << 26 | 128 << 18
//! | 3 << 14 | 0x2000 | cgid`, word 1 zero; GP100 forces every channel into a group) and
//! channel entries `chid | runq << 14`, `inst >> 12` (`gp100_runl_insert_chan`).
//!
//! A list that does not follow that shape (a channel outside a TSG, a TSG whose length
//! runs past the list or is zero) is rejected as a whole, as the hardware's scheduler
//! reports SCHED_ERROR BAD_TSG instead of running it (gv100 `dev_fifo`).

pub use crate::hw::reason::RunlistError;
use crate::mem::{GpuMemory, Target};

/// Bytes per entry.
pub const ENTRY_BYTES: u64 = 8;
/// Most entries a runlist may have (LENGTH is 16 bits).
pub const MAX_ENTRIES: u32 = 0xffff;

/// A channel entry of a submitted runlist.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RunlistChan {
    /// Channel id.
    pub chid: u16,
    /// TSG it belongs to.
    pub tsg: u16,
    /// Runqueue (PBDMA) selector, bit 14.
    pub runq: u8,
}

/// Reads and checks a runlist of `count` entries at `addr` in `target`.
pub fn parse<M: GpuMemory + ?Sized>(
    mem: &M,
    target: Target,
    addr: u64,
    count: u32,
) -> Result<Vec<RunlistChan>, RunlistError> {
    let count = count.min(MAX_ENTRIES);
    let mut out = Vec::new();
    let mut i = 0u32;
    while i < count {
        let w0 = mem
            .read_u32(target, addr + u64::from(i) * ENTRY_BYTES)
            .map_err(|_| RunlistError::Unreadable(i))?;
        if w0 & (1 << 13) == 0 {
            return Err(RunlistError::ChannelOutsideTsg(i));
        }
        let tsg = (w0 & 0xfff) as u16;
        let len = w0 >> 26;
        // Its channel entries are i+1 ..= i+len, all inside the list.
        if len == 0 || i + len >= count {
            return Err(RunlistError::BadTsgLength(i));
        }
        for k in 1..=len {
            let at = addr + u64::from(i + k) * ENTRY_BYTES;
            let c = mem
                .read_u32(target, at)
                .map_err(|_| RunlistError::Unreadable(i + k))?;
            if c & (1 << 13) != 0 {
                return Err(RunlistError::NestedTsg(i + k));
            }
            out.push(RunlistChan {
                chid: (c & 0xfff) as u16,
                tsg,
                runq: ((c >> 14) & 1) as u8,
            });
        }
        i += len + 1;
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::mem::VidMem;

    fn put(v: &mut VidMem, at: u64, words: &[(u32, u32)]) {
        for (i, (a, b)) in words.iter().enumerate() {
            v.write_u32(at + 8 * i as u64, *a).unwrap();
            v.write_u32(at + 8 * i as u64 + 4, *b).unwrap();
        }
    }

    /// The TSG header nouveau writes for a group of `n` channels.
    fn tsg(n: u32, cgid: u32) -> (u32, u32) {
        (n << 26 | 128 << 18 | 3 << 14 | 0x2000 | cgid, 0)
    }

    #[test]
    fn nouveau_shaped_lists_parse() {
        let mut v = VidMem::new(1 << 20);
        put(
            &mut v,
            0x1000,
            &[
                tsg(1, 0),
                (0, 0x12),
                tsg(2, 5),
                (7 | 1 << 14, 0x13),
                (8, 0x14),
            ],
        );
        let l = parse(&v, Target::Video, 0x1000, 5).unwrap();
        assert_eq!(
            l,
            vec![
                RunlistChan {
                    chid: 0,
                    tsg: 0,
                    runq: 0
                },
                RunlistChan {
                    chid: 7,
                    tsg: 5,
                    runq: 1
                },
                RunlistChan {
                    chid: 8,
                    tsg: 5,
                    runq: 0
                },
            ]
        );
        assert_eq!(parse(&v, Target::Video, 0x1000, 0).unwrap(), vec![]);
        // A TSG header on the last entry, its channel past the end of memory.
        put(&mut v, (1 << 20) - 8, &[tsg(1, 0)]);
        assert_eq!(
            parse(&v, Target::Video, (1 << 20) - 8, 2),
            Err(RunlistError::Unreadable(1))
        );
    }

    #[test]
    fn malformed_lists_are_rejected() {
        let mut v = VidMem::new(1 << 20);
        put(&mut v, 0, &[(3, 0)]);
        assert_eq!(
            parse(&v, Target::Video, 0, 1),
            Err(RunlistError::ChannelOutsideTsg(0))
        );
        put(&mut v, 0, &[tsg(4, 0), (1, 0)]);
        assert_eq!(
            parse(&v, Target::Video, 0, 2),
            Err(RunlistError::BadTsgLength(0))
        );
        put(&mut v, 0, &[tsg(0, 0)]);
        assert_eq!(
            parse(&v, Target::Video, 0, 1),
            Err(RunlistError::BadTsgLength(0))
        );
        put(&mut v, 0, &[tsg(1, 0), tsg(1, 1)]);
        assert_eq!(
            parse(&v, Target::Video, 0, 2),
            Err(RunlistError::NestedTsg(1))
        );
        assert_eq!(
            parse(&v, Target::Video, 1 << 20, 3),
            Err(RunlistError::Unreadable(0))
        );
    }
}
