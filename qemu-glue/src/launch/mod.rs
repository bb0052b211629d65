//! Starting QEMU and the device process together: finding or provisioning a
//! QEMU with vfio-user-pci ([`qemu`]), and running a guest to its verdict
//! ([`guest`]).

pub mod guest;
pub mod qemu;

use std::path::PathBuf;

/// The per-user cache for big artefacts (QEMU root, kernel builds):
/// `$GP100EMU_CACHE`, else `$XDG_CACHE_HOME/gp100emu`, else `~/.cache/gp100emu`.
pub fn cache_dir() -> PathBuf {
    if let Some(d) = std::env::var_os("GP100EMU_CACHE") {
        return PathBuf::from(d);
    }
    if let Some(d) = std::env::var_os("XDG_CACHE_HOME") {
        return PathBuf::from(d).join("gp100emu");
    }
    let home = std::env::var_os("HOME")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from("/tmp"));
    home.join(".cache/gp100emu")
}
