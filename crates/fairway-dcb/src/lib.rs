//! # fairway-dcb
//!
//! A Dynamic Consistency Boundary event store: one ordered log of events, each with a
//! type, `key:value` tags and an opaque payload. Reads take a [`Query`] (an OR of
//! [`QueryItem`]s); appends are atomic batches guarded by [`AppendCondition`]s ("fail if
//! an event matching this query exists after that position").
//!
//! All logic is written once over a storage port ([`kv`]) with FoundationDB's semantics;
//! two engines implement it: an embedded durable engine (the default: one directory, no
//! server, group commit) and FoundationDB (feature `fdb`).
//!
//! ```no_run
//! use fairway_dcb::{AppendCondition, RawEvent, EventStore, Query, QueryItem, ReadOptions, Tag};
//! use futures::TryStreamExt;
//!
//! # async fn demo() -> Result<(), Box<dyn std::error::Error>> {
//! let store = fairway_dcb::open_embedded("./data", "demo")?;
//! let course = Tag::new("course", "c1")?;
//! let query = Query::from(QueryItem::types(["CourseDefined"]).with_tags([course.clone()]));
//! let event = RawEvent::new("CourseDefined", b"{}".to_vec()).with_tag(course);
//! store.append(vec![event], Some(AppendCondition::none_match(query.clone()))).await?;
//! let events: Vec<_> = store.read(query, ReadOptions::forwards()).try_collect().await?;
//! assert_eq!(events.len(), 1);
//! # Ok(()) }
//! ```
#![deny(missing_docs)]
#![deny(clippy::unwrap_used, clippy::dbg_macro, clippy::todo, clippy::unimplemented)]
#![cfg_attr(test, allow(clippy::unwrap_used))]

mod codec;
pub mod conformance;
pub mod error;
mod event_store;
pub mod kv;
pub mod layout;
pub mod metrics;
mod model;
mod store;

pub use error::{Error, InvalidInput, NameRule, Result, StorageError};
pub use event_store::{Appended, BoundedRead, EventStore, EventStream};
pub use kv::embedded::{EmbeddedEngine, EmbeddedOptions};
#[cfg(feature = "fdb")]
pub use kv::fdb::FdbEngine;
pub use kv::{RetryPolicy, VERSIONSTAMP_LEN, Versionstamp};
pub use model::limits;
pub use model::{
    AppendCondition, POSITION_LEN, Position, Query, QueryItem, RawEvent, ReadOptions, SequencedEvent, Tag,
};
/// The former name of [`RawEvent`].
#[deprecated(note = "renamed `RawEvent`, so that it is not read as the façade's `Event` trait")]
pub type Event = RawEvent;
pub use store::{DcbStore, Receipt, append_bytes, check_event};

/// The event store on the embedded engine.
pub type EmbeddedStore = DcbStore<EmbeddedEngine>;

/// Opens (creating if needed) the embedded engine in `dir` and the store of `namespace` in
/// it. To open several namespaces on one directory, open the engine once with
/// [`EmbeddedEngine::open`] and build a [`DcbStore`] per namespace.
pub fn open_embedded(dir: impl AsRef<std::path::Path>, namespace: &str) -> Result<EmbeddedStore> {
    let engine = EmbeddedEngine::open(dir, EmbeddedOptions::default())?;
    DcbStore::new(std::sync::Arc::new(engine), namespace)
}
