//! # fairway-core
//!
//! Micromodules on the DCB event store: typed [`Event`]s, [`Command`]s deciding over the
//! minimal decision model they read, and a Given/When/Then [`testkit`].
//!
//! Users depend on the `fairway` façade crate, which re-exports this crate and the macros.
#![deny(missing_docs)]

pub mod app;
pub mod automation;
pub mod backend;
pub mod command;
pub mod dependencies;
pub mod event;
pub mod registry;
pub mod snapshot;
pub mod testkit;
pub mod view;

/// Any error, boxed to keep its source chain.
pub type BoxError = Box<dyn std::error::Error + Send + Sync + 'static>;

pub use app::{App, AppConfig};
pub use automation::{Automation, AutomationContext, AutomationError, AutomationRuntime, DeadLetter, QueueSettings};
pub use command::{AppendStep, Command, CommandError, CommandRunner, Decision, Executed};
pub use event::{DuplicateEventName, Event, EventError, EventType, Recorded, UndecodableEvent, registered_event_types};
pub use snapshot::{SnapshotModel, Snapshots};
pub use view::{Progress, View, ViewError, ViewRuntime, ViewTx};
