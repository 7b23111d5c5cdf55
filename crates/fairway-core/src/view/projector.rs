//! The projector: [`ViewRuntime::run`], what every app instance runs for each view.
//!
//! With several instances on one store, each runs the projector of every view, and one of
//! them at a time projects a view version: the holder of its lease (module `lease`). It
//! catches up, then follows the log, renewing the lease with each batch and every
//! [`RENEW_EVERY`] while idle; the others try to take the lease every [`RETRY_EVERY`] and
//! take it over once it expires (its holder died) or is free. A holder that finds its lease
//! taken stops at that batch, without writing, and stands by.
//!
//! An instance whose version is older than the active one (an old instance during a
//! rolling deploy) does not project: the active version only moves up, and that version's
//! data is gone. It logs a warning once, naming both versions, and its readers fail with
//! [`ViewError::Superseded`].

use futures::{StreamExt, TryStreamExt};
use tokio::time::Instant;
use tracing::{Instrument, debug, info, info_span, warn};

use super::lease::{self, Claim, RENEW_EVERY, RETRY_EVERY};
use super::{View, ViewError, ViewRuntime};
use crate::event::Recorded;

impl<V: View> ViewRuntime<V> {
    /// The projector of app instance `instance`: projects the view version while it holds
    /// its lease (catching up, then following the log), stands by while another instance
    /// holds it, and stops projecting for good once a newer version is active. Returns only
    /// on error; run it as a task.
    pub async fn run(self, instance: impl Into<String>) -> Result<(), ViewError> {
        let instance = instance.into();
        let span = info_span!("projector", slice = V::NAME, version = V::VERSION, instance);
        async move {
            let mut seen_holder = None;
            loop {
                let (keys, holder) = (self.keys(), instance.as_str());
                let claim = self
                    .backend
                    .transact(move |tx| async move { lease::claim(tx.as_ref(), keys, V::VERSION, holder).await })
                    .await?;
                match claim {
                    Claim::Taken => {
                        info!("projector lease taken");
                        seen_holder = None;
                        match self.project(&instance).await {
                            Err(ViewError::LeaseLost { holder, .. }) => {
                                info!(?holder, "projector lease lost; standing by")
                            }
                            Err(ViewError::Superseded { active, .. }) => return self.stand_down(active).await,
                            ended => return ended,
                        }
                    }
                    Claim::Held { holder } => {
                        if seen_holder.as_ref() != Some(&holder) {
                            info!(holder, "another instance projects this version; standing by");
                            seen_holder = Some(holder);
                        }
                        tokio::time::sleep(RETRY_EVERY).await;
                    }
                    Claim::Superseded { active } => return self.stand_down(active).await,
                }
            }
        }
        .instrument(span)
        .await
    }

    /// Gives up the lease `instance` holds, if it does, so that another instance takes it
    /// at once instead of after it expires. Call it once the instance's projector stopped
    /// (a graceful shutdown).
    pub async fn release(&self, instance: &str) -> Result<(), ViewError> {
        let keys = self.keys();
        self.backend.transact(move |tx| async move { lease::release(tx.as_ref(), keys, instance).await }).await?;
        debug!(view = V::NAME, version = V::VERSION, instance, "projector lease released, if held");
        Ok(())
    }

    /// Projects while `holder` holds the lease: catches up, then applies live batches,
    /// renewing the lease meanwhile. Ends with [`ViewError::LeaseLost`] or
    /// [`ViewError::Superseded`] when a batch or a renewal finds either.
    async fn project(&self, holder: &str) -> Result<(), ViewError> {
        let (mut processed, checkpoint) = self.catch_up_as(Some(holder)).await?;
        let batch = self.backend.bulk_events_per_transaction();
        let mut live =
            self.backend.events().subscribe(self.view.query(), checkpoint).map_ok(Recorded::new).ready_chunks(batch);
        loop {
            tokio::select! {
                chunk = live.next() => {
                    let Some(chunk) = chunk else { return Ok(()) };
                    let events: Vec<Recorded> = chunk.into_iter().collect::<Result<_, _>>()?;
                    let (first, last) = (events.first().map(Recorded::position), events.last().map(Recorded::position));
                    processed += self.apply_batch(events, None, false, Some(holder)).await?;
                    debug!(processed, ?first, ?last, "applied live events");
                }
                _ = tokio::time::sleep_until(Instant::now() + RENEW_EVERY) => {
                    self.apply_batch(Vec::new(), None, false, Some(holder)).await?;
                }
            }
        }
    }

    /// Never projects again (a newer version is active, and versions only move up): warns
    /// once, naming both versions, and waits forever.
    async fn stand_down(&self, active: u32) -> Result<(), ViewError> {
        warn!(
            view = V::NAME,
            version = V::VERSION,
            active,
            "view version {} is superseded by version {active}: this instance does not project it, and its reads \
             of the view fail until it runs version {active} or later",
            V::VERSION
        );
        std::future::pending().await
    }
}
