//! Transports: how QEMU reaches the device model. Today one: vfio-user
//! (QEMU >= 10.1 `-device vfio-user-pci`), chosen because it presents a real PCI
//! function under TCG (see ../shared/spec/qemu-transport.md).

pub mod bench;
pub mod irq;
pub mod signals;
pub mod vfio_user;
