//! The GP100 MMU.
//!
//! Done: [`format`], the version-2 PDE / dual PD0 entry / PTE layouts with encoders and
//! decoders, including the PFN-map PTEs nouveau writes for SVM; [`walk`], the bounded
//! five-level walker over video memory and guest RAM, with GP100 fault types and the
//! instance-block PDB word; [`tlb`], per-client L1 and shared L2 TLBs with the invalidate
//! semantics nouveau uses (ALL_VA, ALL_PDB, HUBTLB_ONLY).
//!
//! NOT done yet (issue 2): a page-directory cache, per-level walk costs in the cycle model,
//! and the wiring into the device (the invalidate registers 0x100cb8/0x100cbc/0x100cec, BAR1
//! and BAR2 translation, the access engine). Nothing in the device translates addresses yet.

pub mod format;
pub mod tlb;
pub mod walk;

pub use format::{DualPde, Pde, PdeAperture, Pte, PteAperture, PteFields};
