//! The GP100 MMU.
//!
//! Done: [`format`], the version-2 PDE / dual PD0 entry / PTE layouts with encoders and
//! decoders, including the PFN-map PTEs nouveau writes for SVM; [`walk`], the bounded
//! five-level walker over video memory and guest RAM, with GP100 fault types and the
//! instance-block PDB word.
//!
//! NOT done yet (issue 2): the L1/L2 TLBs and PDE cache with invalidate/replay/cancel
//! semantics, and per-level walk costs in the cycle model. Nothing in the device translates
//! addresses yet (BAR1/BAR2 and the access engine will).

pub mod format;
pub mod walk;

pub use format::{DualPde, Pde, PdeAperture, Pte, PteAperture, PteFields};
