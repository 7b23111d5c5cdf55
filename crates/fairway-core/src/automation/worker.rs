//! [`AutomationRuntime`]: an automation bound to a store. Its enqueuer turns triggering
//! events into jobs, its workers claim and run them (renewing their lease meanwhile) and
//! sleep while none is due; the admin calls list, replay and purge dead letters.

use std::future::Future;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};

use fairway_dcb::{Position, Query, ReadOptions};
use futures::{StreamExt, TryStreamExt};
use tokio::time::Instant;
use tracing::{Instrument, debug, info_span, warn};

use super::queue::{self, Claim};
use super::wake::{self, Wake};
use super::{Automation, AutomationContext, AutomationError, DeadLetter, QueueSettings, TriggerNotFound};
use crate::backend::{Backend, DynTx, TxFailure};
use crate::command::CommandRunner;
use crate::command::snapshot::Snapshots;
use crate::dependencies::Dependencies;
use crate::event::Recorded;
use crate::format::QueueKeys;

/// Resolves once `stop` is true; never if its sender is gone without asking to stop.
async fn stop_requested(stop: &mut tokio::sync::watch::Receiver<bool>) {
    if stop.wait_for(|stop| *stop).await.is_err() {
        std::future::pending::<()>().await;
    }
}

impl AutomationError {
    /// The failure of a queue transaction: the body's own error unwrapped, so
    /// [`AutomationError::downcast_ref`] finds it.
    pub(crate) fn from_tx(failure: TxFailure) -> Self {
        match failure {
            TxFailure::Body(body) => AutomationError(body),
            TxFailure::Storage(storage) => storage.into(),
        }
    }
}

/// An automation bound to a store: its enqueuer, its workers and its dead-letter queue.
pub struct AutomationRuntime<A: Automation> {
    automation: Arc<A>,
    backend: Arc<dyn Backend>,
    keys: QueueKeys,
    settings: QueueSettings,
    dependencies: Dependencies,
    wake: Wake,
}

impl<A: Automation> Clone for AutomationRuntime<A> {
    fn clone(&self) -> Self {
        AutomationRuntime {
            automation: self.automation.clone(),
            backend: self.backend.clone(),
            keys: self.keys.clone(),
            settings: self.settings,
            dependencies: self.dependencies.clone(),
            wake: self.wake.clone(),
        }
    }
}

impl<A: Automation> AutomationRuntime<A> {
    /// Binds `automation` to `backend`.
    pub fn new(automation: A, backend: Arc<dyn Backend>, settings: QueueSettings) -> Self {
        let keys = QueueKeys::new(backend.as_ref(), A::NAME);
        let wake = Wake::new(keys.wake.clone());
        AutomationRuntime {
            automation: Arc::new(automation),
            backend,
            keys,
            settings,
            dependencies: Dependencies::new(),
            wake,
        }
    }

    /// Runs `body` on this automation's queue in one transaction (see
    /// [`<dyn Backend>::transact`](Backend#method.transact)).
    async fn in_queue<'b, R, F, Fut>(&'b self, body: F) -> Result<R, AutomationError>
    where
        R: Send + 'static,
        F: Fn(Arc<dyn DynTx>, &'b QueueKeys) -> Fut + Send + Sync + 'b,
        Fut: Future<Output = Result<R, TxFailure>> + Send + 'b,
    {
        let keys = &self.keys;
        self.backend.transact(move |tx| body(tx, keys)).await.map_err(AutomationError::from_tx)
    }

    /// Gives handlers access to `dependencies`.
    pub fn with_dependencies(mut self, dependencies: Dependencies) -> Self {
        self.dependencies = dependencies;
        self
    }

    /// The queue settings.
    pub fn settings(&self) -> QueueSettings {
        self.settings
    }

    /// Follows the triggering events forever, enqueuing a job per event and waking idle
    /// workers.
    pub async fn run_enqueuer(self) -> Result<(), AutomationError> {
        let cursor = self.in_queue(move |tx, keys| async move { queue::cursor(tx.as_ref(), keys).await }).await?;
        let mut events = self.backend.events().subscribe(self.automation.query(), cursor).ready_chunks(256);
        while let Some(chunk) = events.next().await {
            let positions: Vec<Position> =
                chunk.into_iter().map(|e| e.map(|e| e.position)).collect::<Result<_, _>>()?;
            let positions = &positions;
            let enqueued = self
                .in_queue(move |tx, keys| async move {
                    // No reply waits on it: it may share a command's group commit.
                    tx.set_background();
                    queue::enqueue(tx.as_ref(), keys, positions).await
                })
                .await?;
            if enqueued > 0 {
                self.wake.notify();
            }
        }
        Ok(())
    }

    /// Claims a due job under a lease owned by `worker`.
    async fn claim(&self, worker: &str) -> Result<Claim, AutomationError> {
        let (lease, earlier) = (self.settings.lease, &queue::Earlier::default());
        let claim = self
            .in_queue(move |tx, keys| async move { queue::claim(tx.as_ref(), keys, worker, lease, earlier).await })
            .await?;
        Ok(claim)
    }

    /// Updates the job at `position` if `worker` still holds it.
    async fn settle(
        &self,
        worker: &str,
        position: Position,
        outcome: Result<(), String>,
    ) -> Result<(), AutomationError> {
        let (settings, outcome) = (&self.settings, &outcome);
        self.in_queue(move |tx, keys| async move {
            tx.set_background();
            queue::settle(tx.as_ref(), keys, worker, position, outcome, settings).await
        })
        .await?;
        Ok(())
    }

    /// Extends the lease of `worker` on the job at `position`; `false` if it lost it.
    async fn renew(&self, worker: &str, position: Position) -> Result<bool, AutomationError> {
        let lease = self.settings.lease;
        self.in_queue(move |tx, keys| async move { queue::renew(tx.as_ref(), keys, worker, position, lease).await })
            .await
    }

    /// Renews the lease of `worker` on the job at `position`, claimed at `claimed` (taken
    /// before the claim's transaction began, so the lease ends no earlier in the store),
    /// every third of the lease; resolves when the worker no longer holds the job: another
    /// worker took it, or renewals kept failing until the lease ended.
    async fn hold_lease(&self, worker: &str, position: Position, claimed: Instant) -> &'static str {
        let lease = self.settings.lease;
        let mut held_until = claimed + lease;
        let mut next = claimed + lease / 3;
        loop {
            tokio::time::sleep_until(next.min(held_until)).await;
            if Instant::now() >= held_until {
                return "the lease ended while renewals failed";
            }
            let asked = Instant::now();
            match self.renew(worker, position).await {
                Ok(true) => held_until = asked + lease,
                Ok(false) => return "the lease was lost",
                Err(err) => warn!(%err, "lease renewal failed"),
            }
            next = Instant::now() + lease / 3;
        }
    }

    /// Runs one due job, if any; returns whether one ran.
    pub async fn work_once(&self, worker: &str) -> Result<bool, AutomationError> {
        Ok(matches!(self.work_next(worker).await?, Claim::Claimed(..)))
    }

    /// Runs one due job if there is one; else says when the next one becomes due.
    async fn work_next(&self, worker: &str) -> Result<Claim, AutomationError> {
        let claimed = Instant::now();
        let claim = self.claim(worker).await?;
        let Claim::Claimed(position, attempt) = claim else { return Ok(claim) };
        let span = info_span!("job", slice = A::NAME, %position, attempt);
        async {
            let event = self
                .backend
                .events()
                .read(Query::all(), ReadOptions::forwards().from(position).limit(1))
                .try_next()
                .await?
                .filter(|e| e.position == position)
                .ok_or(TriggerNotFound(position))?;
            let runner = CommandRunner::new(self.backend.events()).with_snapshots(Snapshots::new(self.backend.clone()));
            let ctx = AutomationContext::with_runner(runner, self.dependencies.clone()).triggered_by(position);
            // The lease is renewed while the handler runs, in the same task: if the worker
            // dies, renewals stop with it and the lease ends. A worker that no longer holds
            // the job stops its handler there (as a crash would), so two never run one job
            // at once, and leaves the job to its holder.
            let outcome = match Recorded::new(event).decode::<A::Events>() {
                None => Ok(()),
                Some(Err(undecodable)) => Err(undecodable.to_string()),
                Some(Ok(event)) => tokio::select! {
                    outcome = self.automation.handle(event, &ctx) => outcome.map_err(|e| e.to_string()),
                    lost = self.hold_lease(worker, position, claimed) => {
                        warn!(reason = lost, "job abandoned: the worker no longer holds its lease");
                        return Ok(claim);
                    }
                },
            };
            if let Err(error) = &outcome {
                warn!(%error, "job failed");
            } else {
                debug!("job done");
            }
            self.settle(worker, position, outcome).await?;
            Ok(claim)
        }
        .instrument(span)
        .await
    }

    /// Gives jobs written by earlier versions, before the due-time index, their due entry,
    /// and makes those whose times were not on the store's clock due now.
    async fn upgrade_older_jobs(&self) -> Result<(), AutomationError> {
        while !self.in_queue(move |tx, keys| async move { queue::index_older_jobs(tx.as_ref(), keys).await }).await? {}
        let lease = self.settings.lease;
        while !self
            .in_queue(move |tx, keys| async move { queue::rebase_foreign_times(tx.as_ref(), keys, lease).await })
            .await?
        {}
        Ok(())
    }

    /// Works forever as `worker`.
    pub async fn run_worker(self, worker: String) -> Result<(), AutomationError> {
        let (_keep, stop) = tokio::sync::watch::channel(false);
        self.run_worker_until(worker, stop).await
    }

    /// Works as `worker` until `stop` turns true; a job in progress is finished first.
    ///
    /// When no job is due, the worker arms its wake-ups (its process's enqueuer, and a
    /// watch on the queue's wake key for enqueuers elsewhere), looks once more, and sleeps
    /// until one fires, the earliest waiting job becomes due, or [`QueueSettings::poll`]
    /// passes; it arms them again before its next look.
    pub async fn run_worker_until(
        self,
        worker: String,
        mut stop: tokio::sync::watch::Receiver<bool>,
    ) -> Result<(), AutomationError> {
        self.upgrade_older_jobs().await?;
        let mut armed: Option<wake::Armed> = None;
        while !*stop.borrow() {
            let next_due = match self.work_next(&worker).await? {
                Claim::Claimed(..) => {
                    armed = None;
                    continue;
                }
                Claim::Idle(next_due) => next_due,
            };
            if let Some(wake_ups) = armed.take() {
                let idle = next_due.map_or(self.settings.poll, |d| d.min(self.settings.poll));
                tokio::select! {
                    woken = wake_ups.wait(idle) => woken?,
                    _ = stop_requested(&mut stop) => break,
                }
            }
            // Armed before the next look, so a job enqueued in between is not slept through.
            armed = Some(self.wake.arm(self.backend.as_ref()).await?);
        }
        debug!(automation = A::NAME, worker, "worker stopped");
        Ok(())
    }

    /// Jobs waiting or in progress.
    pub async fn pending(&self) -> Result<usize, AutomationError> {
        self.in_queue(move |tx, keys| async move { queue::pending(tx.as_ref(), keys).await }).await
    }

    /// Jobs a worker holds an unexpired lease on.
    pub async fn leased(&self) -> Result<usize, AutomationError> {
        self.in_queue(move |tx, keys| async move { queue::leased(tx.as_ref(), keys).await }).await
    }

    /// The dead-letter queue, oldest first.
    pub async fn dead_letters(&self) -> Result<Vec<DeadLetter>, AutomationError> {
        self.in_queue(move |tx, keys| async move { queue::dead_letters(tx.as_ref(), keys).await }).await
    }

    /// Moves a dead letter back to the queue with fresh attempts; `false` if absent.
    pub async fn replay(&self, position: Position) -> Result<bool, AutomationError> {
        // A run again after a landed commit reported of unknown result finds the letter gone:
        // the answer of the run that found it stands.
        let found = &AtomicBool::new(false);
        let replayed = self
            .in_queue(move |tx, keys| async move {
                let replayed = queue::replay(tx.as_ref(), keys, position).await?;
                Ok(found.fetch_or(replayed, Ordering::SeqCst) || replayed)
            })
            .await?;
        if replayed {
            self.wake.notify();
        }
        Ok(replayed)
    }

    /// Deletes every dead letter; returns how many.
    pub async fn purge(&self) -> Result<usize, AutomationError> {
        // As in `replay`: a run again after a landed commit finds fewer letters, or none.
        let most = &AtomicUsize::new(0);
        self.in_queue(move |tx, keys| async move {
            let purged = queue::purge(tx.as_ref(), keys).await?;
            Ok(most.fetch_max(purged, Ordering::SeqCst).max(purged))
        })
        .await
    }
}
