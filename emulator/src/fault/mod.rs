//! The replayable fault buffer (class MAXWELL_FAULT_BUFFER_A, `clb069.h`).
//!
//! Done: [`entry`], the 32-byte fault-buffer entry layout with encoder and decoder; [`ring`],
//! the buffer's registers (0x002a70..0x002a84), GET/PUT, wrap, overflows (INFO.OVERFLOW,
//! counted) and the interrupt condition.
//!
//! The device routes the registers to the ring, raises PMC interrupt 0x200 while it holds
//! unread entries, and stamps entries with its GPU clock (`Device::report_fault`).
//!
//! Replay and cancel of the faulted accesses live with the access engine ([`crate::access`],
//! its batch in [`crate::access::batch`]). NOT modelled: PFIFO_INTR_0 bit 25
//! (replayable_fault_error, nvgpu `hw_fifo_gp10b.h`) on an overflow — nouveau 6.12 neither
//! enables nor reads it.

pub mod entry;
pub mod ring;

pub use entry::{AccessType, FaultEntry, FaultType};
pub use ring::{FaultRing, Report};
