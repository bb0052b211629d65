//! The GP100's PCI function as the guest's PCI core sees it: type-0 config
//! space, BAR layout and sizing, capabilities.

pub mod config;

pub use config::{BarLayout, BarLayoutError, ConfigSpace, CONFIG_SPACE_SIZE};
