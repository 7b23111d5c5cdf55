//! # fairway-core
//!
//! Micromodules on the DCB event store: typed [`Event`]s, [`Command`]s deciding over the
//! minimal decision model they read, and (with the `testkit` feature) Given/When/Then
//! tests.
//!
//! Users depend on the `fairway` façade crate, which re-exports this crate and the macros.
#![deny(missing_docs)]
#![deny(clippy::unwrap_used, clippy::dbg_macro, clippy::todo, clippy::unimplemented)]
#![cfg_attr(test, allow(clippy::unwrap_used))]

pub mod app;
pub mod automation;
pub mod backend;
pub mod command;
pub mod dependencies;
pub mod event;
mod format;
pub mod id;
pub mod registry;
pub mod stored;
#[cfg(feature = "testkit")]
pub mod testkit;
pub mod view;

/// Any error, boxed to keep its source chain.
pub type BoxError = Box<dyn std::error::Error + Send + Sync + 'static>;

pub use app::{ApiError, App, AppConfig};
pub use automation::{Automation, AutomationContext, AutomationError, AutomationRuntime, DeadLetter, QueueSettings};
pub use command::{AppendStep, Command, CommandError, CommandRunner, Decision, Executed};
// Snapshots keep their path at the root (`#[command(snapshots)]` emits
// `::fairway::snapshot::SnapshotCodec`).
pub use command::snapshot;
pub use event::{
    DuplicateEventName, Event, EventError, EventSet, EventType, Recorded, UndecodableEvent, registered_event_types,
};
pub use id::{BadId, Id};
pub use snapshot::{SnapshotModel, Snapshots};
pub use view::{Progress, View, ViewError, ViewRuntime, ViewTx};
