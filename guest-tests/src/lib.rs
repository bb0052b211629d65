//! Placeholder: owned by the guest-side work (issue 4).
