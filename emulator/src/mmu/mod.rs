//! The GP100 MMU.
//!
//! Done: [`format`], the version-2 PDE / dual PD0 entry / PTE layouts with encoders and
//! decoders, including the PFN-map PTEs nouveau writes for SVM; [`walk`], the bounded
//! five-level walker over video memory and guest RAM, with GP100 fault types and the
//! instance-block PDB word; [`tlb`], per-client L1 and shared L2 TLBs with the invalidate
//! semantics nouveau uses (ALL_VA, ALL_PDB, HUBTLB_ONLY).
//!
//! [`unit`] puts them together: TLB lookup, walk on a miss, TLB fill, the cycle cost of
//! each, and the invalidate registers (0x100c80/0x100cb8/0x100cbc/0x100cec) the device routes
//! to it.
//!
//! The walker reads directories through a page-directory cache ([`walk::PdeCache`]) that
//! every invalidate clears.
//!
//! NOT done yet (issue 2): replay of faulted accesses (REPLAY/CANCEL triggers are counted; there is no access engine to
//! re-issue anything yet). Nothing in the device translates addresses yet: BAR1/BAR2 and the
//! access engine are the probe and SVM issues' work.

pub mod format;
pub mod geometry;
pub mod tlb;
pub mod trigger;
pub mod unit;
pub mod walk;

pub use format::{DualPde, Pde, PdeAperture, Pte, PteAperture, PteFields};
