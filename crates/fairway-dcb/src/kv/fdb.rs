//! FoundationDB engine (in progress).
