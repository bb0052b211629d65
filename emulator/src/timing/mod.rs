//! Placeholder: owned by the MMU-core work (issue 2).
