//! Launcher (in progress).
