//! Commands: a decision model over exactly the events a command reads, decided and
//! appended under a DCB condition limited to what was read.
//!
//! - [`CommandRunner`] (module `runner`): the read-fold-decide-append cycle, from the first
//!   event or from a snapshot;
//! - [`snapshot`]: decision-model snapshots.

mod runner;
pub mod snapshot;

use fairway_dcb::{AppendCondition, Appended, Error as StoreError, Position, Query};
use futures::future::BoxFuture;

use crate::event::{Event, EventError, EventSet, UndecodableEvent};
use snapshot::SnapshotCodec;

pub use runner::CommandRunner;

/// A command: its input (the implementing type) plus its own minimal decision model.
///
/// The runtime reads every event matching [`Command::query`] up to the log's head,
/// decodes those of [`Command::Events`] and folds them with [`Command::evolve`] into
/// [`Command::State`], asks [`Command::decide`],
/// and appends the decided events on condition that no event matching the query was
/// appended after that head. If that condition fails, the whole cycle runs again (bounded). Two
/// commands therefore conflict only when one appends an event the other's query matches.
pub trait Command: Send + Sync + 'static {
    /// Stable name, used in logs, routes and test snapshots. `#[command]` names the command
    /// after its type in kebab-case when the impl leaves this out.
    const NAME: &'static str;
    /// The events the decision model folds: an [`EventSet`] (or one [`Event`] type). Read
    /// events of other types are skipped without being decoded.
    type Events: EventSet;
    /// The decision model.
    type State: Default + Send;
    /// The domain error `decide` may refuse with.
    type Error: std::error::Error + Send + Sync + 'static;

    /// The events the decision depends on (its consistency boundaries), built from the
    /// input: usually `Self::Events::tagged(...)`, or several items `.or`-ed to read several
    /// boundaries; the condition covers all of them.
    fn query(&self) -> Query;

    /// Folds one read event into the state.
    fn evolve(&self, state: &mut Self::State, event: Self::Events);

    /// Decides which events to append, or refuses.
    fn decide(&self, state: &Self::State) -> Result<Decision, Self::Error>;

    /// How the decision model is snapshotted, if it is: `#[command(snapshots)]` implements
    /// it from [`SnapshotModel`](snapshot::SnapshotModel), so the command folds from snapshots wherever it runs
    /// (HTTP, automations, tests). Not written by hand.
    #[doc(hidden)]
    fn snapshot_codec() -> Option<SnapshotCodec<Self>>
    where
        Self: Sized,
    {
        None
    }
}

/// The events a command decided to append.
#[derive(Default, Debug)]
pub struct Decision {
    events: Vec<Result<fairway_dcb::RawEvent, EventError>>,
}

impl Decision {
    /// Decides nothing (the command is already satisfied).
    pub fn none() -> Self {
        Decision::default()
    }

    /// Decides one event.
    pub fn event(event: impl Event) -> Self {
        Decision::none().and(event)
    }

    /// Adds an event.
    pub fn and(mut self, event: impl Event) -> Self {
        self.events.push(event.to_raw());
        self
    }

    fn into_events(self) -> Result<Vec<fairway_dcb::RawEvent>, EventError> {
        self.events.into_iter().collect()
    }
}

/// What an executed command did.
#[derive(Debug, Clone)]
pub struct Executed {
    /// Positions of the appended events (empty when nothing was decided).
    pub positions: Vec<Position>,
    /// The appended events.
    pub events: Vec<fairway_dcb::RawEvent>,
    /// Read-decide-append cycles run (1 without conflicts).
    pub attempts: u32,
}

impl Executed {
    /// The position of the last appended event, if any: pass it to read-your-writes reads.
    pub fn last_position(&self) -> Option<Position> {
        self.positions.last().copied()
    }
}

/// Why a command did not append.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum CommandError<E: std::error::Error + 'static> {
    /// `decide` refused.
    #[error("rejected: {0}")]
    Rejected(#[source] E),
    /// The boundary kept changing under the command; gave up after `attempts` cycles.
    #[error("conflict: the events read kept changing; gave up after {attempts} attempts")]
    Conflict {
        /// Cycles run.
        attempts: u32,
    },
    /// A decided event could not be encoded (e.g. a tag value is not a valid tag).
    #[error(transparent)]
    Event(#[from] EventError),
    /// A stored event read by the command does not decode: `evolve` failed on it.
    #[error(transparent)]
    Undecodable(#[from] UndecodableEvent),
    /// The store failed or refused the input (also the [`AppendStep`]'s own refusals, e.g.
    /// [`StoreError::ReceiptStands`] when its receipt was written by an earlier request).
    #[error("store: {0}")]
    Store(#[source] StoreError),
}

impl<E: std::error::Error + 'static> CommandError<E> {
    /// The same failure, with a refusal turned into `F` by `f`.
    pub fn map_rejected<F: std::error::Error + 'static>(self, f: impl FnOnce(E) -> F) -> CommandError<F> {
        match self {
            CommandError::Rejected(refusal) => CommandError::Rejected(f(refusal)),
            CommandError::Conflict { attempts } => CommandError::Conflict { attempts },
            CommandError::Event(err) => CommandError::Event(err),
            CommandError::Undecodable(err) => CommandError::Undecodable(err),
            CommandError::Store(err) => CommandError::Store(err),
        }
    }
}

/// What `POST /commands/<name>` answers when the command ran: where its events landed.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct CommandReply {
    /// Positions of the appended events (pass the last one as `?after=` to view reads).
    pub positions: Vec<Position>,
    /// The last position, if anything was appended.
    pub last_position: Option<Position>,
    /// Cycles run (more than 1 when the boundary changed under the command).
    pub attempts: u32,
}

impl CommandReply {
    /// The reply to a command that appended events at `positions` in `attempts` cycles.
    pub fn appended(positions: &[Position], attempts: u32) -> Self {
        CommandReply { positions: positions.to_vec(), last_position: positions.last().copied(), attempts }
    }
}

/// Appends a command's decision in place of the store's plain append, e.g. together with
/// a receipt in the same transaction (see [`CommandRunner::with_append_step`]): a layer
/// around the command, which sees only where its events landed or why they did not.
pub trait AppendStep: Send + Sync {
    /// Appends `events` under `condition`, decided in cycle `attempt`. A failed condition
    /// ([`StoreError::ConditionFailed`]) makes the command decide again; any other error
    /// ends it with [`CommandError::Store`].
    fn append(
        &self,
        events: Vec<fairway_dcb::RawEvent>,
        condition: AppendCondition,
        attempt: u32,
    ) -> BoxFuture<'_, Result<Appended, StoreError>>;
}
