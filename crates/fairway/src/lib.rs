//! # Fairway
//!
//! Backends as micromodules on event sourcing with Dynamic Consistency Boundaries. This
//! façade re-exports what applications use: typed events (`#[derive(Event)]`), commands
//! (`#[command]`), views (`#[view]`), automations (`#[automation]`), the app runtime, the testkit, and the DCB store
//! (`fairway::dcb`).
#![deny(missing_docs)]

pub use fairway_core::*;
pub use fairway_macros::{Event, automation, command, view};

/// The DCB event store.
pub use fairway_dcb as dcb;
/// Registration of slices and event types (used by generated code).
pub use inventory;
/// Serialization (used by generated code and event types).
pub use rmp_serde;
pub use serde;
