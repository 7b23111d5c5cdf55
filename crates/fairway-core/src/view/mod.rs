//! Views: read models folded from the log into the view's own keyspace in the same store.
//!
//! A projector per view follows the log; each batch of events and the view's checkpoint
//! commit in one transaction, after re-reading the checkpoint inside it, so an event is
//! applied exactly once — also after a crash mid-batch, and whichever instance applies it.
//! A new [`View::VERSION`] builds into a fresh keyspace from the start of the log while
//! readers keep the previous version; once caught up it becomes the active version and the
//! old data is dropped. The active version only moves up.
//!
//! With several app instances on one store, what runs where:
//! - every instance runs a projector per view, and one of them at a time projects a view
//!   version: the holder of the version's lease (module `lease`), taken over within
//!   seconds when its holder dies, released when it stops gracefully;
//! - every instance serves reads and `wait_for` (which watches the checkpoint, whoever
//!   moves it);
//! - an instance whose version is older than the active one neither projects nor serves
//!   the view: its readers fail with [`ViewError::Superseded`].
//!
//! - [`ViewTx`] (module `tx`): typed access to the documents inside a transaction;
//! - [`ViewRuntime`] (module `runtime`): batches, catch-up and activation, and the readers;
//!   module `projector`: its run loop under the lease.

mod lease;
mod projector;
mod runtime;
mod tx;

use std::future::Future;
use std::time::Duration;

use fairway_dcb::{Position, Query};

use crate::backend::TxFailure;
use crate::event::{EventError, EventSet, UndecodableEvent};

pub use runtime::ViewRuntime;
pub(crate) use runtime::{read_active, read_checkpoint};
pub use tx::{Document, MAX_DOCUMENT_BYTES, MAX_DOCUMENT_KEY_BYTES, Page, ViewTx};

/// A read model.
pub trait View: Send + Sync + 'static {
    /// Stable name (routes, keyspace).
    const NAME: &'static str;
    /// Bump to rebuild the view from the log (no migrations).
    const VERSION: u32;
    /// The events the view folds: an [`EventSet`] (or one [`Event`](crate::Event) type).
    type Events: EventSet;

    /// The events the view reads: by default every event of [`View::Events`]. Narrow it
    /// with tags if the view only follows some boundaries.
    fn query(&self) -> Query {
        Self::Events::query()
    }

    /// Applies one event, writing through `tx` (which also tells the event's position and
    /// time).
    fn apply(&self, event: Self::Events, tx: &ViewTx) -> impl Future<Output = Result<(), ViewError>> + Send;
}

/// Failures of views.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ViewError {
    /// An event did not decode (what `apply` returns; the runtime turns it into
    /// [`ViewError::Undecodable`]).
    #[error(transparent)]
    Event(#[from] EventError),
    /// A stored event the view applies does not decode.
    #[error(transparent)]
    Undecodable(#[from] UndecodableEvent),
    /// A stored document did not decode or encode.
    #[error("view document {key:?}: {reason}")]
    Document {
        /// The document key.
        key: String,
        /// Why.
        reason: String,
    },
    /// The store failed.
    #[error("store: {0}")]
    Store(#[from] fairway_dcb::Error),
    /// A transaction body failed with an error of its own.
    #[error("{0}")]
    Body(#[source] Box<dyn std::error::Error + Send + Sync + 'static>),
    /// A newer version of the view is active: this version's data is gone and this
    /// instance neither projects nor reads it (an old instance during a rolling deploy).
    #[error(
        "view {view} version {version} is superseded by version {active}, now active: this instance runs the \
         older version and cannot serve it; upgrade it, or read from an instance running version {active}"
    )]
    Superseded {
        /// The view.
        view: &'static str,
        /// This instance's version.
        version: u32,
        /// The active version.
        active: u32,
    },
    /// This instance's projector no longer holds the lease of the view version: another
    /// instance projects it (the projector stands by; nothing was written).
    #[error("view {view} version {version}: the projector lease is held by {holder:?}, not this instance")]
    LeaseLost {
        /// The view.
        view: &'static str,
        /// The version.
        version: u32,
        /// The instance holding the lease now, if any.
        holder: Option<String>,
    },
    /// Waiting for a position timed out.
    #[error("view {view} did not reach position {position} within {timeout:?}")]
    Timeout {
        /// The view.
        view: &'static str,
        /// The awaited position.
        position: Position,
        /// How long was waited.
        timeout: Duration,
    },
}

impl From<TxFailure> for ViewError {
    fn from(err: TxFailure) -> Self {
        match err {
            TxFailure::Body(body) => match body.downcast::<ViewError>() {
                Ok(view) => *view,
                Err(other) => ViewError::Body(other),
            },
            TxFailure::Storage(storage) => storage.into(),
        }
    }
}

impl From<fairway_dcb::StorageError> for ViewError {
    fn from(err: fairway_dcb::StorageError) -> Self {
        ViewError::Store(fairway_dcb::Error::Storage(err))
    }
}

/// Progress of a projector.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Progress {
    /// The last position applied (or skipped as not matching), if any.
    pub checkpoint: Option<Position>,
    /// Events this version applied so far (those its query matched).
    pub processed: u64,
    /// Whether this version is the one readers use.
    pub active: bool,
    /// The app instance projecting this version (holding its unexpired lease), if any.
    pub holder: Option<String>,
}
