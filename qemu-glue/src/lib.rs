//! gp100emu's device process and launcher: the vfio-user transport, guest RAM
//! mapped from QEMU's fds, interrupts, and the `run` command that starts QEMU
//! and the device together.

pub mod bench;
pub mod explore;
pub mod fuzzing;
pub mod guest_ram;
pub mod launch;
pub mod run;
pub mod trace_cmd;
pub mod transport;
