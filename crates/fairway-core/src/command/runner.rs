//! [`CommandRunner`]: runs commands against a store, folding each from where its fold
//! starts (the first event, or its latest snapshot) and deciding again on conflicts.

use std::sync::Arc;

use fairway_dcb::{AppendCondition, Error as StoreError, EventStore, Position, Query, ReadOptions, RetryPolicy};
use futures::TryStreamExt;
use tracing::{Instrument, debug, info_span};

use super::snapshot::{SnapshotCodec, SnapshotModel, Snapshots};
use super::{AppendStep, Command, CommandError, Executed};
use crate::event::{EventSet, Recorded, UndecodableEvent};

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
        let span = info_span!("command", slice = C::NAME);
        let started = std::time::Instant::now();
        let result = async {
            let mut attempts = 0;
            loop {
                attempts += 1;
                // Built once per attempt: the snapshot key, the read and the condition must
                // all be this one boundary.
                let query = command.query();
                let (state, from) = start.load(&query).await;
                let (state, head, folded) = self.fold(command, &query, state, from).await?;
                if let Some(last) = head {
                    start.folded(&query, &state, last, folded).await;
                }
                let events = command.decide(&state).map_err(CommandError::Rejected)?.into_events()?;
                if events.is_empty() {
                    return Ok(Executed { positions: Vec::new(), events, attempts });
                }
                let condition = AppendCondition::none_match_after(query, head);
                let appended = match &self.append_step {
                    Some(step) => step.append(events.clone(), condition, attempts).await,
                    None => self.store.append(events.clone(), Some(condition)).await,
                };
                match appended {
                    Ok(appended) => {
                        debug!(attempts, last = %appended.last(), "command appended");
                        return Ok(Executed { positions: appended.positions, events, attempts });
                    }
                    Err(StoreError::ConditionFailed { position, .. }) => {
                        metrics::counter!("fairway_command_conflicts_total", "command" => C::NAME).increment(1);
                        debug!(attempts, %position, "boundary changed; deciding again");
                        if attempts >= self.retry.max_attempts {
                            return Err(CommandError::Conflict { attempts });
                        }
                        metrics::counter!("fairway_command_retries_total", "command" => C::NAME).increment(1);
                        tokio::time::sleep(self.retry.backoff(attempts)).await;
                    }
                    Err(other) => return Err(CommandError::Store(other)),
                }
            }
        }
        .instrument(span)
        .await;
        let outcome = match &result {
            Ok(_) => "accepted",
            Err(CommandError::Rejected(_)) => "rejected",
            Err(CommandError::Conflict { .. }) => "conflict",
            Err(CommandError::Store(StoreError::ReceiptStands { .. })) => "superseded",
            Err(_) => "failed",
        };
        metrics::counter!("fairway_commands_total", "command" => C::NAME, "outcome" => outcome).increment(1);
        metrics::histogram!("fairway_command_duration_seconds", "command" => C::NAME)
            .record(started.elapsed().as_secs_f64());
        result
    }

    /// Folds the events of `query` (the command's) after `from` into `state`, up to the
    /// head taken when the read starts; returns the state, that head (everything the
    /// decision covers), and how many events were folded.
    async fn fold<C: Command>(
        &self,
        command: &C,
        query: &Query,
        mut state: C::State,
        from: Option<Position>,
    ) -> Result<(C::State, Option<Position>, usize), CommandError<C::Error>> {
        let mut folded = 0;
        let options = ReadOptions::forwards().from(from.map_or(Position::ZERO, Position::next));
        let read = self.store.read_with_head(query.clone(), options).await.map_err(CommandError::Store)?;
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
