//! The bottom layer: hardware vocabulary every unit shares and that imports nothing above it.
//!
//! - [`event`]: the model's events (what the device did on its own), append-only.
//! - [`reason`]: the typed reasons those events carry (why a runlist, a channel or the access
//!   engine failed), append-only too.
//! - [`target`]: memory targets and a failed memory access; [`fault`]: the MMU's fault types
//!   (both inside those reasons).
//! - [`engines`]: the engines GP100's TOP reports and PFIFO schedules.
//! - [`field`]: named register bit fields (extract/deposit), registerfields.h style.
//! - [`host`]: GP entries, method headers, host methods (PASCAL_CHANNEL_GPFIFO_A).
//! - [`ramin`]: instance block, RAMFC and PCCSR layouts.

pub mod engines;
pub mod event;
pub mod fault;
pub mod field;
pub mod host;
pub mod ramin;
pub mod reason;
pub mod target;
