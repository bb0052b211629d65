//! gp100emu's device model of the NVIDIA GP100 (Pascal, Tesla P100).
//!
//! A plain state machine with no I/O, no threads and no host clock. Transports
//! (see the `qemu-glue` crate) call [`device::Device`]'s BAR and config entry
//! points; guest RAM is reached only through `vm-memory`'s `GuestMemory`.
//!
//! Rooms, one per hardware unit or concern:
//! - [`mmu`]: page-table formats (PDE/PTE), walker, TLBs, invalidate/replay/cancel.
//! - [`fault`]: the replayable fault buffer (MAXWELL_FAULT_BUFFER_A).
//! - [`fifo`]: the host: channels, runlists, the PBDMAs that run pushbuffers.
//! - [`ce`]: the copy engine (PASCAL_DMA_COPY_A).
//! - [`access`]: the access engine (our own unit: loads/stores in a channel's address space).
//! - [`check`]: the PTE checker (GPU PTEs against the guest process's CPU page tables).
//! - [`engine`]: what memory-accessing units share (virtual accesses through the MMU).
//! - [`timing`]: the cycle model, one deterministic GPU clock.
//! - [`mem`]: video memory, guest RAM (DMA, logged for traces) and the memory interface.
//! - [`bar`]: PBUS BAR binding: what the BAR1 and BAR3 apertures show.
//! - [`regs`]: the BAR0 register file, one module per unit, each with its offsets table.
//! - [`pci`]: the PCI function: config space, BAR layout, capabilities.
//! - [`device`]: the GP100 as the transport sees it (BAR0 routing, interrupts, reset).
//! - [`port`]: accesses by address space as transports deliver them (shared with replay).
//! - [`trace`]: recording, replay, diff and timeline export of host-device interactions.
//! - [`vbios`]: our synthetic VBIOS image, served through the PROM window.
//! - [`decode`]: human-facing decoders for PTE/PDE/fault values (`gp100emu decode`).

pub mod access;
pub mod bar;
pub mod bus;
pub mod ce;
pub mod check;
pub mod decode;
pub mod device;
pub mod engine;
pub mod fault;
pub mod fifo;
pub mod hw;
pub mod mem;
pub mod mmu;
pub mod pci;
pub mod port;
pub mod regs;
pub mod scenarios;
pub mod timing;
pub mod trace;
pub mod vbios;
pub mod window;

pub use device::Device;
