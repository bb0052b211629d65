//! gp100emu's device model of the NVIDIA GP100 (Pascal, Tesla P100).
//!
//! A plain state machine with no I/O, no threads and no host clock. Transports
//! (see the `qemu-glue` crate) call [`device::Device`]'s BAR and config entry
//! points; guest RAM is reached only through `vm-memory`'s `GuestMemory`.
//!
//! Rooms, one per hardware unit or concern, bottom layer first (a module imports only the
//! ones above it in this list; `tests/layering.rs` fails the build otherwise):
//! - [`hw`]: the vocabulary every unit shares: the model's events ([`hw::event`],
//!   append-only), named register fields ([`hw::field`]), the engine table.
//! - [`timing`]: the cycle model, one deterministic GPU clock.
//! - [`pci`]: the PCI function: config space, BAR layout, capabilities.
//! - [`vbios`]: our synthetic VBIOS image, served through the PROM window.
//! - [`mem`]: video memory, guest RAM (DMA, logged for traces) and the memory interface.
//! - [`fault`]: the replayable fault buffer (MAXWELL_FAULT_BUFFER_A).
//! - [`mmu`]: page-table formats (PDE/PTE), walker, TLBs, invalidate/replay/cancel.
//! - [`engine`]: what memory-accessing units share (virtual accesses through the MMU).
//! - [`ce`]: the copy engine (PASCAL_DMA_COPY_A).
//! - [`fifo`]: the host: channels, runlists, the PBDMAs that run pushbuffers.
//! - [`bar`]: PBUS BAR binding: what the BAR1 and BAR3 apertures show.
//! - [`access`]: the access engine (our own unit: loads/stores in a channel's address space).
//! - [`check`]: the PTE checker (GPU PTEs against the guest process's CPU page tables).
//! - [`bus`]: the one BAR0 unit trait and the context every access hands a unit.
//! - [`regs`]: the BAR0 register file, one module per unit, each with its offsets table.
//! - [`window`]: our vendor window, whole: its registers, the access engine's, the checker's.
//! - [`device`]: the GP100 as the transport sees it (the BAR0 map, apertures, interrupts,
//!   reset).
//! - [`host`]: above the device: [`port`] (accesses by address space, as transports deliver
//!   them) and [`trace`] (recording, replay, diff, timeline export).
//! - [`decode`]: human-facing decoders for PTE/PDE/fault values (`gp100emu decode`).
//! - [`scenarios`]: end-to-end flows through the device's registers (tests and benches).

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
pub mod host;
pub mod hw;
pub mod mem;
pub mod mmu;
pub mod pci;
pub mod regs;
pub mod scenarios;
pub mod timing;
pub mod vbios;
pub mod window;

pub use device::Device;
pub use host::{port, trace};
