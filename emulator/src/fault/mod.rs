//! The replayable fault buffer (class MAXWELL_FAULT_BUFFER_A, `clb069.h`).
//!
//! Done: [`entry`], the 32-byte fault-buffer entry layout with encoder and decoder.
//!
//! NOT done yet (issue 2): the ring itself (registers 0x002a70..0x002a80, GET/PUT, overflow
//! accounting, the PMC 0x200 interrupt condition, replay and cancel). The device exposes no
//! fault buffer today.

pub mod entry;

pub use entry::{AccessType, FaultEntry, FaultType};
