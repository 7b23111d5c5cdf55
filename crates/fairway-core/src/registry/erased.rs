//! The type erasure behind the descriptors: what `#[command]`, `#[view]` and
//! `#[automation]` put in them. A command's handler decodes its body and answers a
//! [`CommandReply`]; a view's or an automation's starter binds it to a store as a
//! [`DynView`] or a [`DynAutomation`], which the app runs and serves without knowing its
//! type.

use std::sync::Arc;
use std::time::Duration;

use fairway_dcb::{EventStore, Position};
use futures::FutureExt;
use futures::future::BoxFuture;
use serde::de::DeserializeOwned;
use tokio::sync::watch;

use crate::BoxError;
use crate::automation::{Automation, AutomationError, AutomationRuntime, DeadLetter};
use crate::backend::Backend;
use crate::command::{Command, CommandError, CommandReply, CommandRunner};
use crate::dependencies::Dependencies;
use crate::view::{Page, Progress, View, ViewError, ViewRuntime};

/// Why a command handler did not append: its body did not decode, or the command failed.
#[derive(Debug, thiserror::Error)]
pub enum CommandFailure {
    /// The body does not decode into the command; the message names the field at fault
    /// (`course_id: must not be empty`).
    #[error("invalid command body: {0}")]
    InvalidBody(#[source] serde_path_to_error::Error<serde_json::Error>),
    /// The command ran and did not append; its refusal ([`CommandError::Rejected`]) keeps
    /// the command's own error.
    #[error(transparent)]
    Command(CommandError<Refusal>),
}

/// A command's own error, its type erased by the handler.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct Refusal(pub BoxError);

/// The handler of command `C` (used by `#[command]`).
pub fn command_handler<C: Command + DeserializeOwned>(
    runner: CommandRunner<Arc<dyn EventStore>>,
    body: serde_json::Value,
) -> BoxFuture<'static, Result<CommandReply, CommandFailure>> {
    async move {
        let command: C = serde_path_to_error::deserialize(body).map_err(CommandFailure::InvalidBody)?;
        let executed = runner
            .execute(&command)
            .await
            .map_err(|err| CommandFailure::Command(err.map_rejected(|refusal| Refusal(Box::new(refusal)))))?;
        Ok(CommandReply::appended(&executed.positions, executed.attempts))
    }
    .boxed()
}

/// A view bound to a store, type-erased for the app.
pub trait DynView: Send + Sync {
    /// Its name.
    fn name(&self) -> &'static str;
    /// Its version.
    fn version(&self) -> u32;
    /// The projector of app instance `instance` (see [`ViewRuntime::run`]), to spawn.
    fn run(&self, instance: String) -> BoxFuture<'static, Result<(), ViewError>>;
    /// Gives up the projector lease `instance` holds, once its projector stopped.
    fn release<'a>(&'a self, instance: &'a str) -> BoxFuture<'a, Result<(), ViewError>>;
    /// Waits until the view reflects `position`.
    fn wait_for(&self, position: Position, timeout: Duration) -> BoxFuture<'_, Result<(), ViewError>>;
    /// One document as data.
    fn get(&self, key: String) -> BoxFuture<'_, Result<Option<serde_json::Value>, ViewError>>;
    /// Every document as data, in key order.
    fn list(&self) -> BoxFuture<'_, Result<Vec<(String, serde_json::Value)>, ViewError>>;
    /// Up to `limit` documents as data whose key starts with `prefix`, after key `cursor`.
    fn page(
        &self,
        prefix: String,
        cursor: Option<String>,
        limit: usize,
    ) -> BoxFuture<'_, Result<Page<serde_json::Value>, ViewError>>;
    /// Projector progress.
    fn progress(&self) -> BoxFuture<'_, Result<Progress, ViewError>>;
    /// Events still to apply, counted up to `cap`.
    fn remaining(&self, cap: usize) -> BoxFuture<'_, Result<usize, ViewError>>;
}

impl<V: View> DynView for ViewRuntime<V> {
    fn name(&self) -> &'static str {
        V::NAME
    }

    fn version(&self) -> u32 {
        V::VERSION
    }

    fn run(&self, instance: String) -> BoxFuture<'static, Result<(), ViewError>> {
        self.clone().run(instance).boxed()
    }

    fn release<'a>(&'a self, instance: &'a str) -> BoxFuture<'a, Result<(), ViewError>> {
        ViewRuntime::release(self, instance).boxed()
    }

    fn wait_for(&self, position: Position, timeout: Duration) -> BoxFuture<'_, Result<(), ViewError>> {
        ViewRuntime::wait_for(self, position, timeout).boxed()
    }

    fn get(&self, key: String) -> BoxFuture<'_, Result<Option<serde_json::Value>, ViewError>> {
        async move {
            let key = &key;
            self.read(move |tx| async move { tx.get::<serde_json::Value>(key).await }).await
        }
        .boxed()
    }

    fn list(&self) -> BoxFuture<'_, Result<Vec<(String, serde_json::Value)>, ViewError>> {
        self.read(|tx| async move { tx.range::<serde_json::Value>("").await }).boxed()
    }

    fn page(
        &self,
        prefix: String,
        cursor: Option<String>,
        limit: usize,
    ) -> BoxFuture<'_, Result<Page<serde_json::Value>, ViewError>> {
        async move {
            let (prefix, cursor) = (&prefix, cursor.as_deref());
            self.read(move |tx| async move { tx.page(prefix, cursor, limit).await }).await
        }
        .boxed()
    }

    fn progress(&self) -> BoxFuture<'_, Result<Progress, ViewError>> {
        ViewRuntime::progress(self).boxed()
    }

    fn remaining(&self, cap: usize) -> BoxFuture<'_, Result<usize, ViewError>> {
        ViewRuntime::remaining(self, cap).boxed()
    }
}

/// The starter of view `V` (used by `#[view]`).
pub fn view_starter<V: View + Default>(backend: Arc<dyn Backend>) -> Arc<dyn DynView> {
    Arc::new(ViewRuntime::new(V::default(), backend))
}

/// An automation bound to a store, type-erased for the app.
pub trait DynAutomation: Send + Sync {
    /// Its name.
    fn name(&self) -> &'static str;
    /// Workers to run per app instance.
    fn workers(&self) -> usize;
    /// The enqueuer, to spawn.
    fn run_enqueuer(&self) -> BoxFuture<'static, Result<(), AutomationError>>;
    /// A worker named `worker` that stops (after its current job) when `stop` turns true.
    fn run_worker(
        &self,
        worker: String,
        stop: watch::Receiver<bool>,
    ) -> BoxFuture<'static, Result<(), AutomationError>>;
    /// Jobs waiting or in progress.
    fn pending(&self) -> BoxFuture<'_, Result<usize, AutomationError>>;
    /// Jobs a worker holds an unexpired lease on.
    fn leased(&self) -> BoxFuture<'_, Result<usize, AutomationError>>;
    /// The dead-letter queue, oldest first.
    fn dead_letters(&self) -> BoxFuture<'_, Result<Vec<DeadLetter>, AutomationError>>;
    /// Re-queues one dead letter; `false` if there is none at `position`.
    fn replay(&self, position: Position) -> BoxFuture<'_, Result<bool, AutomationError>>;
    /// Deletes every dead letter; returns how many.
    fn purge(&self) -> BoxFuture<'_, Result<usize, AutomationError>>;
}

impl<A: Automation> DynAutomation for AutomationRuntime<A> {
    fn name(&self) -> &'static str {
        A::NAME
    }

    fn workers(&self) -> usize {
        self.settings().workers
    }

    fn run_enqueuer(&self) -> BoxFuture<'static, Result<(), AutomationError>> {
        self.clone().run_enqueuer().boxed()
    }

    fn run_worker(
        &self,
        worker: String,
        stop: watch::Receiver<bool>,
    ) -> BoxFuture<'static, Result<(), AutomationError>> {
        self.clone().run_worker_until(worker, stop).boxed()
    }

    fn pending(&self) -> BoxFuture<'_, Result<usize, AutomationError>> {
        AutomationRuntime::pending(self).boxed()
    }

    fn leased(&self) -> BoxFuture<'_, Result<usize, AutomationError>> {
        AutomationRuntime::leased(self).boxed()
    }

    fn dead_letters(&self) -> BoxFuture<'_, Result<Vec<DeadLetter>, AutomationError>> {
        AutomationRuntime::dead_letters(self).boxed()
    }

    fn replay(&self, position: Position) -> BoxFuture<'_, Result<bool, AutomationError>> {
        AutomationRuntime::replay(self, position).boxed()
    }

    fn purge(&self) -> BoxFuture<'_, Result<usize, AutomationError>> {
        AutomationRuntime::purge(self).boxed()
    }
}

/// The starter of automation `A` (used by `#[automation]`).
pub fn automation_starter<A: Automation + Default>(
    backend: Arc<dyn Backend>,
    dependencies: Dependencies,
) -> Arc<dyn DynAutomation> {
    let automation = A::default();
    let settings = automation.settings();
    Arc::new(AutomationRuntime::new(automation, backend, settings).with_dependencies(dependencies))
}
