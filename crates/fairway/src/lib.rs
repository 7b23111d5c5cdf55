//! # Fairway
//!
//! Backends as micromodules on event sourcing with Dynamic Consistency Boundaries. This
//! façade re-exports what applications use: typed events (`#[derive(Event)]`), commands
//! (`#[command]`), views (`#[view]`), automations (`#[automation]`), the app runtime, the testkit, and the DCB store
//! (`fairway::dcb`).
//!
//! A slice reads the events it needs as one [`EventSet`]: its query is built from the set,
//! and its fold is one `match`.
//!
//! ```
//! use fairway::prelude::*;
//! use fairway::Id;
//!
//! #[derive(Serialize, Deserialize, Event)]
//! struct CourseDefined { #[tag("course")] course_id: Id, capacity: u32 }
//! #[derive(Serialize, Deserialize, Event)]
//! struct CourseCapacityChanged { #[tag("course")] course_id: Id, capacity: u32 }
//!
//! #[derive(EventSet)]
//! enum Capacity {
//!     Defined(CourseDefined),
//!     Changed(CourseCapacityChanged),
//! }
//!
//! assert_eq!(Capacity::TYPES, ["CourseDefined", "CourseCapacityChanged"]);
//! let course = Capacity::tagged([Id::from("c1").tag("course")]);
//! assert_eq!((course.types.len(), course.tags.len()), (2, 1));
//! let stored = CourseDefined { course_id: "c1".into(), capacity: 30 }.to_raw().unwrap();
//! let seats = match Capacity::decode(&stored).expect("in the set").expect("decodes") {
//!     Capacity::Defined(e) => e.capacity,
//!     Capacity::Changed(e) => e.capacity,
//! };
//! assert_eq!(seats, 30);
//! ```
#![deny(missing_docs)]
#![deny(clippy::unwrap_used, clippy::dbg_macro, clippy::todo, clippy::unimplemented)]
#![cfg_attr(test, allow(clippy::unwrap_used))]

// The façade's surface is this list: everything an app, its tests and the book use. The
// runtime's internals (store transactions, the registry, stored formats) stay in
// `fairway-core`; what generated code needs is in `__private`.

pub use fairway_core::view::{Document, Page};
pub use fairway_core::{
    ApiError, App, AppConfig, Automation, AutomationContext, AutomationError, BadId, BoxError, Command, CommandError,
    DeadLetter, Decision, DuplicateEventName, Event, EventError, EventSet, EventType, Id, Progress, QueueSettings,
    Recorded, SnapshotModel, UndecodableEvent, View, ViewError, ViewTx, registered_event_types,
};
pub use fairway_macros::{Event, EventSet, automation, command, slices, view};

/// Running an app: its errors, limits, HTTP headers and the typed replies of its routes.
pub mod app {
    pub use fairway_core::app::data_dir::DataDirError;
    pub use fairway_core::app::replies;
    pub use fairway_core::app::security::{AdminAccess, BlankToken, InsecureAdmin};
    pub use fairway_core::app::server::ServeLimits;
    pub use fairway_core::app::{
        AppError, DEFAULT_PAGE_LIMIT, HealthReport, IDEMPOTENCY_KEY, IDEMPOTENT_REPLAYED, LogFormat, MAX_BODY_BYTES,
        MAX_PAGE_LIMIT, ServerFailure, SupervisionPolicy, TaskState, TaskStatus, log_server_failures, shutdown_signal,
    };
    pub use fairway_core::view::{MAX_DOCUMENT_BYTES, MAX_DOCUMENT_KEY_BYTES};
}

/// Slices run by hand, outside an [`App`]: a command runner, a view's projector and readers,
/// an automation's queue, bound to a store (any [`dcb::DcbStore`], e.g.
/// `Arc::new(store) as Arc<dyn Store>`). Benchmarks, tools and tests use them.
pub mod runtime {
    pub use fairway_core::backend::{Backend as Store, StateStore};
    pub use fairway_core::command::snapshot::Snapshots;
    pub use fairway_core::dependencies::{Dependencies, MissingDependency};
    pub use fairway_core::stored::{StoredAutomation, StoredState, StoredVersion, StoredView};
    pub use fairway_core::{AutomationRuntime, CommandRunner, Executed, ViewRuntime};
}

/// Given/When/Then tests of slices and an in-process app (feature `testkit`).
#[cfg(feature = "testkit")]
pub use fairway_core::testkit;

/// The HTTP framework the app serves with: write layers for [`App::layer`] with it.
pub use axum;
/// The DCB event store.
pub use fairway_dcb as dcb;
/// Serialization: events and documents derive `Serialize` and `Deserialize`.
pub use serde;

/// What the code `#[derive(Event)]`, `#[command]`, `#[view]` and `#[automation]` generate
/// refers to. Not an API: it changes without notice.
#[doc(hidden)]
pub mod __private {
    pub use fairway_core::command::snapshot::SnapshotCodec;
    pub use fairway_core::registry::{
        AutomationSlice, CommandSlice, ViewSlice, automation_starter, command_handler, view_starter,
    };
    pub use inventory;
}

/// Returns early with `Err(error.into())` unless `condition` holds: the refusals of a
/// command's `decide`, one line each.
///
/// ```
/// # #[derive(Debug, thiserror::Error)] #[error("course is full")] struct Full;
/// fn decide(seats_left: u32) -> Result<(), Full> {
///     fairway::ensure!(seats_left > 0, Full);
///     Ok(())
/// }
/// assert!(decide(0).is_err() && decide(1).is_ok());
/// ```
#[macro_export]
macro_rules! ensure {
    ($condition:expr, $error:expr $(,)?) => {
        if !$condition {
            return ::std::result::Result::Err(::std::convert::From::from($error));
        }
    };
}

/// What a slice file needs, in one `use fairway::prelude::*;`: the three slice traits and
/// their attributes, events and event sets, decisions and [`ensure!`], the runtime contexts
/// and errors, queries, and serde's derives.
pub mod prelude {
    pub use serde::{Deserialize, Serialize};

    pub use crate::dcb::{Query, QueryItem, Tag};
    pub use crate::{
        Automation, AutomationContext, AutomationError, Command, CommandError, Decision, Event, EventSet, View,
        ViewError, ViewTx, automation, command, ensure, view,
    };
}

/// The book's chapter on the slice API, compiled as doctests.
#[cfg(doctest)]
#[doc = include_str!("../../../docs/src/slice-api.md")]
pub struct SliceApiChapter;
