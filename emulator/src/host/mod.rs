//! Above the device: what transports and tools drive it through.
//!
//! - [`port`]: accesses by address space as a transport delivers them (shared with replay).
//! - [`trace`]: recording, replay, diff and timeline export of host-device interactions.
//!
//! Nothing below imports this layer (emulator/tests/layering.rs checks it); the crate root
//! re-exports both as `emulator::port` and `emulator::trace`, the paths transports use.

pub mod port;
pub mod trace;
