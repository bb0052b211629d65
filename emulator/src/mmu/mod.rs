//! The GP100 MMU.
//!
//! Done: [`format`], the version-2 PDE / dual PD0 entry / PTE layouts with encoders and
//! decoders, including the PFN-map PTEs nouveau writes for SVM.
//!
//! NOT done yet (issue 2): the walker over a memory interface, the L1/L2 TLBs and PDE cache
//! with invalidate/replay/cancel semantics, and the instance-block PDB decode. Nothing in the
//! device translates addresses today.

pub mod format;

pub use format::{DualPde, Pde, PdeAperture, Pte, PteAperture, PteFields};
