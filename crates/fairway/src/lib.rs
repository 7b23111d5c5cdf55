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

pub use fairway_core::*;
pub use fairway_macros::{Event, EventSet, automation, command, slices, view};

/// The HTTP framework the app serves with: write layers for [`App::layer`] with it.
pub use axum;
/// The DCB event store.
pub use fairway_dcb as dcb;
/// Registration of slices and event types (used by generated code).
pub use inventory;
/// Serialization (used by generated code and event types).
pub use rmp_serde;
pub use serde;

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
