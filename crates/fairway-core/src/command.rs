//! Commands: a decision model over exactly the events a command reads, decided and
//! appended under a DCB condition limited to what was read.

use std::sync::Arc;

use fairway_dcb::kv::RetryPolicy;
use fairway_dcb::{AppendCondition, Appended, Error as StoreError, EventStore, Position, Query, ReadOptions};
use futures::TryStreamExt;
use futures::future::BoxFuture;
use tracing::{Instrument, debug, info_span};

use crate::event::{Event, EventError, EventSet, Recorded, UndecodableEvent};
use crate::snapshot::{SnapshotCodec, SnapshotModel, Snapshots};

/// A command: its input (the implementing type) plus its own minimal decision model.
///
/// The runtime reads every event matching [`Command::query`] up to the log's head,
/// decodes those of [`Command::Events`] and folds them with [`Command::evolve`] into
/// [`Command::State`], asks [`Command::decide`],
/// and appends the decided events on condition that no event matching the query was
/// appended after that head. If that condition fails, the whole cycle runs again (bounded). Two
/// commands therefore conflict only when one appends an event the other's query matches.
pub trait Command: Send + Sync + 'static {
    /// Stable name, used in logs, routes and test snapshots.
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
    /// it from [`SnapshotModel`], so the command folds from snapshots wherever it runs
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
    events: Vec<Result<fairway_dcb::Event, EventError>>,
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

    fn into_events(self) -> Result<Vec<fairway_dcb::Event>, EventError> {
        self.events.into_iter().collect()
    }
}

/// What an executed command did.
#[derive(Debug, Clone)]
pub struct Executed {
    /// Positions of the appended events (empty when nothing was decided).
    pub positions: Vec<Position>,
    /// The appended events.
    pub events: Vec<fairway_dcb::Event>,
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
    /// The store failed or refused the input.
    #[error("store: {0}")]
    Store(#[source] StoreError),
    /// The [`AppendStep`] found this request already answered (e.g. another request with
    /// the same idempotency key appended first): nothing was written.
    #[error("another request with the same idempotency key was answered first")]
    Superseded,
}

/// Appends a command's decision in place of the store's plain append, e.g. together with
/// the record of an idempotency key in the same transaction
/// (see [`CommandRunner::with_append_step`]).
pub trait AppendStep: Send + Sync {
    /// Appends `events` under `condition`, decided in cycle `attempt`. `Ok(None)` means
    /// the request was already answered: nothing was written and the command ends with
    /// [`CommandError::Superseded`].
    fn append(
        &self,
        events: Vec<fairway_dcb::Event>,
        condition: AppendCondition,
        attempt: u32,
    ) -> BoxFuture<'_, Result<Option<Appended>, StoreError>>;
}

/// Runs commands against a store.
#[derive(Clone)]
pub struct CommandRunner<S> {
    store: S,
    retry: RetryPolicy,
    append_step: Option<Arc<dyn AppendStep>>,
    snapshots: Option<Snapshots>,
}

impl<S: EventStore + Clone> CommandRunner<S> {
    /// A runner over `store` retrying conflicts with the default policy.
    pub fn new(store: S) -> Self {
        CommandRunner {
            store,
            retry: RetryPolicy { max_attempts: 20, ..RetryPolicy::default() },
            append_step: None,
            snapshots: None,
        }
    }

    /// Folds commands registered with `#[command(snapshots)]` from their snapshots in
    /// `snapshots`.
    pub fn with_snapshots(mut self, snapshots: Snapshots) -> Self {
        self.snapshots = Some(snapshots);
        self
    }

    /// Appends decisions through `step` instead of the store's plain append.
    pub fn with_append_step(mut self, step: Arc<dyn AppendStep>) -> Self {
        self.append_step = Some(step);
        self
    }

    /// Sets the retry policy for failed conditions.
    pub fn with_retry(mut self, retry: RetryPolicy) -> Self {
        self.retry = retry;
        self
    }

    /// The store.
    pub fn store(&self) -> &S {
        &self.store
    }

    /// Executes `command`: read, fold, decide, append under condition; again on conflict.
    /// A command registered with `#[command(snapshots)]` folds from its snapshots when the
    /// runner has them ([`CommandRunner::with_snapshots`]).
    pub async fn execute<C: Command>(&self, command: &C) -> Result<Executed, CommandError<C::Error>> {
        match (C::snapshot_codec(), &self.snapshots) {
            (Some(codec), Some(snapshots)) => self.cycles(command, &SnapshotStart { snapshots, codec }).await,
            _ => self.cycles(command, &FromScratch).await,
        }
    }

    /// Executes `command` folding from its latest decision-model snapshot in `snapshots`,
    /// and saves a new snapshot when the fold read [`SnapshotModel::SNAPSHOT_EVERY`] events
    /// or more past it.
    pub async fn execute_with_snapshots<C: SnapshotModel>(
        &self,
        command: &C,
        snapshots: &Snapshots,
    ) -> Result<Executed, CommandError<C::Error>> {
        self.cycles(command, &SnapshotStart { snapshots, codec: SnapshotCodec::of() }).await
    }

    /// Runs read-fold (from `start`), decide, conditional append; again on conflict.
    async fn cycles<C: Command>(
        &self,
        command: &C,
        start: &impl FoldStart<C>,
    ) -> Result<Executed, CommandError<C::Error>> {
        let span = info_span!("command", name = C::NAME);
        async {
            let mut attempts = 0;
            loop {
                attempts += 1;
                let query = command.query();
                let (state, from) = start.load(&query).await;
                let (state, head, folded) = self.fold(command, state, from).await?;
                if let Some(last) = head {
                    start.folded(&query, &state, last, folded).await;
                }
                let events = command.decide(&state).map_err(CommandError::Rejected)?.into_events()?;
                if events.is_empty() {
                    return Ok(Executed { positions: Vec::new(), events, attempts });
                }
                let condition = AppendCondition::none_match_after(command.query(), head);
                let appended = match &self.append_step {
                    Some(step) => step.append(events.clone(), condition, attempts).await,
                    None => self.store.append(events.clone(), Some(condition)).await.map(Some),
                };
                match appended {
                    Ok(Some(appended)) => {
                        debug!(attempts, last = %appended.last(), "command appended");
                        return Ok(Executed { positions: appended.positions, events, attempts });
                    }
                    Ok(None) => return Err(CommandError::Superseded),
                    Err(StoreError::ConditionFailed { position, .. }) => {
                        debug!(attempts, %position, "boundary changed; deciding again");
                        if attempts >= self.retry.max_attempts {
                            return Err(CommandError::Conflict { attempts });
                        }
                        tokio::time::sleep(self.retry.backoff(attempts)).await;
                    }
                    Err(other) => return Err(CommandError::Store(other)),
                }
            }
        }
        .instrument(span)
        .await
    }

    /// Folds the events of the command's query after `from` into `state`, up to the head
    /// taken when the read starts; returns the state, that head (everything the decision
    /// covers), and how many events were folded.
    async fn fold<C: Command>(
        &self,
        command: &C,
        mut state: C::State,
        from: Option<Position>,
    ) -> Result<(C::State, Option<Position>, usize), CommandError<C::Error>> {
        let mut folded = 0;
        let options = ReadOptions::forwards().from(from.map_or(Position::ZERO, Position::next));
        let read = self.store.read_with_head(command.query(), options).await.map_err(CommandError::Store)?;
        let mut events = read.events;
        while let Some(event) = events.try_next().await.map_err(CommandError::Store)? {
            folded += 1;
            match C::Events::decode(&event.event) {
                Some(Ok(decoded)) => command.evolve(&mut state, decoded),
                Some(Err(source)) => return Err(UndecodableEvent::new(&Recorded::new(event), source).into()),
                None => {}
            }
        }
        Ok((state, read.head.max(from), folded))
    }
}

/// Where a fold starts, and what happens after it.
trait FoldStart<C: Command>: Sync {
    /// The state to fold from and the position it reflects.
    fn load(&self, query: &Query) -> impl Future<Output = (C::State, Option<Position>)> + Send;
    /// Called after a fold that read `folded` events, the last at `last`.
    fn folded(&self, query: &Query, state: &C::State, last: Position, folded: usize)
    -> impl Future<Output = ()> + Send;
}

/// Every fold starts from the first event.
struct FromScratch;

impl<C: Command> FoldStart<C> for FromScratch {
    async fn load(&self, _: &Query) -> (C::State, Option<Position>) {
        (C::State::default(), None)
    }

    fn folded(&self, _: &Query, _: &C::State, _: Position, _: usize) -> impl Future<Output = ()> + Send {
        std::future::ready(())
    }
}

/// Every fold starts from the latest snapshot.
struct SnapshotStart<'a, C: Command> {
    snapshots: &'a Snapshots,
    codec: SnapshotCodec<C>,
}

impl<C: Command> FoldStart<C> for SnapshotStart<'_, C> {
    async fn load(&self, query: &Query) -> (C::State, Option<Position>) {
        match self.snapshots.load(&self.codec, query).await {
            Some(loaded) => (loaded.state, Some(loaded.position)),
            None => (C::State::default(), None),
        }
    }

    fn folded(
        &self,
        query: &Query,
        state: &C::State,
        last: Position,
        folded: usize,
    ) -> impl Future<Output = ()> + Send {
        // Encode now, so the returned future holds bytes, not the state.
        let encoded =
            (folded >= self.codec.every).then(|| self.snapshots.encode(&self.codec, query, state, last)).flatten();
        async move {
            if let Some((key, value)) = encoded {
                self.snapshots.save::<C>(key, value, last).await;
            }
        }
    }
}
