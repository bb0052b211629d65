//! PFIFO configuration: the channel and PBDMA counts nouveau reads at FIFO one-time init
//! (nvkm/engine/fifo/gm200.c `gm200_fifo_chid_nr` reads 0x002008, `gm200_fifo_runq_nr` reads
//! 0x002004 bits 7:0; docs/probe-plan.md §3.1).
//!
//! NOT done yet: runlists, channel binding (PCCSR 0x800000), PBDMAs, USERD — the rest of §3.1.

use super::Bar0Unit;

/// CFG0: bits 7:0 number of PBDMAs.
pub const FIFO_CFG0: u32 = 0x002004;
/// CFG1: number of channels.
pub const FIFO_CFG1: u32 = 0x002008;

/// Channels (gv100 dev_fifo's reset value of NUM_CHANNELS; GP100 assumed the same).
pub const CHANNELS: u32 = 4096;
/// PBDMAs (our choice: one per runlist we will expose — GR, CE0, CE1).
pub const PBDMAS: u32 = 3;

/// The counts (read-only).
#[derive(Debug, Clone, Default)]
pub struct FifoCfg;

impl Bar0Unit for FifoCfg {
    fn name(&self) -> &'static str {
        "PFIFO"
    }

    fn read32(&mut self, offset: u32) -> Option<u32> {
        match offset {
            FIFO_CFG0 => Some(PBDMAS),
            FIFO_CFG1 => Some(CHANNELS),
            _ => None,
        }
    }

    fn write32(&mut self, offset: u32, _value: u32) -> bool {
        matches!(offset, FIFO_CFG0 | FIFO_CFG1)
    }

    fn reset(&mut self) {}
}
