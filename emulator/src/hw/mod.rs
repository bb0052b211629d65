//! The bottom layer: hardware vocabulary every unit shares and that imports nothing above it.
//!
//! - [`event`]: the model's events (what the device did on its own), append-only.
//! - [`engines`]: the engines GP100's TOP reports and PFIFO schedules.
//! - [`field`]: named register bit fields (extract/deposit), registerfields.h style.
//! - [`host`]: GP entries, method headers, host methods (PASCAL_CHANNEL_GPFIFO_A).
//! - [`ramin`]: instance block, RAMFC and PCCSR layouts.

pub mod engines;
pub mod event;
pub mod field;
pub mod host;
pub mod ramin;
