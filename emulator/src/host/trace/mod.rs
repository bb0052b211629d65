//! Traces: every interaction of the host with the device as an event stamped with the GPU
//! clock, in a chunked, checksummed binary file that replays through the model alone.
//!
//! - [`event`]: what is recorded ([`Record`] = GPU-clock stamp + [`Event`]).
//! - [`codec`]: how records are encoded inside a chunk (differences from the record before).
//! - [`file`]: the file format (header, zstd-compressed chunks with CRC-32, streaming writer,
//!   reader that keeps the good prefix of a damaged file).
//! - [`replay`]: feed the recorded inputs to a fresh [`crate::Device`] and check every output.
//! - [`diff`]: the first divergence between two traces.
//! - [`perfetto`]: Chrome trace-event JSON for the Perfetto UI.
//!
//! Inputs are what the host did (reads' addresses, writes, DMA maps, resets); outputs are what
//! the device answered or did (read data, errors, interrupt level changes, the clock).
//!
//! Compatibility (traces/README.md has the whole of it): the model's events and their typed
//! reasons are append-only enums, so old files decode; replay compares a model event with
//! the recorded one through [`crate::hw::event::ModelEvent::matches_recorded`], which also
//! takes an old String-reason event (`RunlistRejected`, `ChannelError`, `AccessError`) as
//! equal to its typed successor (`RunlistRefused`, `ChannelStopped`, `AccessFailed`) when the
//! typed reason's text is the recorded string, and as a mismatch otherwise.

pub mod codec;
pub mod diff;
pub mod event;
pub mod file;
pub mod perfetto;
pub mod replay;

pub use event::{Data, Event, Record};
pub use file::{TraceError, TraceHeader, TraceReader, TraceWriter};
