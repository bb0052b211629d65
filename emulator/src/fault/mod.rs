//! The replayable fault buffer (class MAXWELL_FAULT_BUFFER_A, `clb069.h`).
//!
//! Done: [`entry`], the 32-byte fault-buffer entry layout with encoder and decoder; [`ring`],
//! the buffer's registers (0x002a70..0x002a80), GET/PUT, wrap, counted overflows and the
//! interrupt condition.
//!
//! The device routes the registers to the ring, raises PMC interrupt 0x200 while it holds
//! unread entries, and stamps entries with its GPU clock (`Device::report_fault`).
//!
//! NOT done yet (issue 2): replay and cancel of the faulted accesses — they need the access
//! engine that will also be the one reporting faults.

pub mod entry;
pub mod ring;

pub use entry::{AccessType, FaultEntry, FaultType};
pub use ring::{FaultRing, Report};
