//! Slice registration: `#[command]`, `#[view]` and `#[automation]` submit descriptors here, and the app
//! discovers them all at start. Adding a slice never edits a shared file.
//!
//! Rust links a dependency crate only if the binary refers to it: slices living in another
//! crate need `use that_crate as _;` in the binary.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use fairway_dcb::{EventStore, InvalidInput, Position};
use futures::FutureExt;
use futures::future::BoxFuture;
use serde::de::DeserializeOwned;

use tokio::sync::watch;

use crate::app::error::{ApiError, InvalidBody};
use crate::automation::{Automation, AutomationError, AutomationRuntime, DeadLetter};
use crate::backend::Backend;
use crate::command::{Command, CommandRunner};
use crate::dependencies::Dependencies;
use crate::event::{DuplicateEventName, registered_event_types};
use crate::view::{Progress, View, ViewError, ViewRuntime};

/// What a command handler answers.
#[derive(Debug, serde::Serialize)]
pub struct CommandReply {
    /// Positions of the appended events (pass the last one as `?after=` to view reads).
    pub positions: Vec<String>,
    /// The last position, if anything was appended.
    pub last_position: Option<String>,
    /// Cycles run (more than 1 when the boundary changed under the command).
    pub attempts: u32,
}

impl CommandReply {
    /// The reply to a command that appended events at `positions` in `attempts` cycles.
    pub fn appended(positions: &[Position], attempts: u32) -> Self {
        CommandReply {
            positions: positions.iter().map(Position::to_string).collect(),
            last_position: positions.last().map(Position::to_string),
            attempts,
        }
    }
}

/// Why a command handler did not append: the app's [`ApiError`].
pub type CommandFailure = ApiError;

/// A type-erased command entry point: decodes the body and runs the command with the
/// app's runner (its snapshots, retry policy and idempotency step).
pub type CommandHandler =
    fn(CommandRunner<Arc<dyn EventStore>>, serde_json::Value) -> BoxFuture<'static, Result<CommandReply, ApiError>>;

/// A registered command.
pub struct CommandSlice {
    /// The Rust type implementing the command.
    pub rust_type: &'static str,
    /// The command's name (its route is `POST /commands/<name>`).
    pub name: &'static str,
    /// Decodes the body and runs the command.
    pub handler: CommandHandler,
}

inventory::collect!(CommandSlice);

/// Decodes a command body; an error names the field at fault (`course_id: must not be
/// empty`).
fn decode_command<C: DeserializeOwned>(body: serde_json::Value) -> Result<C, ApiError> {
    serde_path_to_error::deserialize(body).map_err(|e| ApiError::BadRequest(Box::new(InvalidBody(Box::new(e)))))
}

/// The handler of command `C` (used by `#[command]`).
pub fn command_handler<C: Command + DeserializeOwned>(
    runner: CommandRunner<Arc<dyn EventStore>>,
    body: serde_json::Value,
) -> BoxFuture<'static, Result<CommandReply, ApiError>> {
    async move {
        let command: C = decode_command(body)?;
        let executed = runner.execute(&command).await?;
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
    /// The projector, to spawn.
    fn run(&self) -> BoxFuture<'static, Result<(), ViewError>>;
    /// Waits until the view reflects `position`.
    fn wait_for(&self, position: Position, timeout: Duration) -> BoxFuture<'_, Result<(), ViewError>>;
    /// One document as data.
    fn get(&self, key: String) -> BoxFuture<'_, Result<Option<serde_json::Value>, ViewError>>;
    /// Every document as data, in key order.
    fn list(&self) -> BoxFuture<'_, Result<Vec<(String, serde_json::Value)>, ViewError>>;
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

    fn run(&self) -> BoxFuture<'static, Result<(), ViewError>> {
        self.clone().run().boxed()
    }

    fn wait_for(&self, position: Position, timeout: Duration) -> BoxFuture<'_, Result<(), ViewError>> {
        ViewRuntime::wait_for(self, position, timeout).boxed()
    }

    fn get(&self, key: String) -> BoxFuture<'_, Result<Option<serde_json::Value>, ViewError>> {
        self.read(move |tx| {
            let key = key.clone();
            async move { tx.get::<serde_json::Value>(&key).await }.boxed()
        })
        .boxed()
    }

    fn list(&self) -> BoxFuture<'_, Result<Vec<(String, serde_json::Value)>, ViewError>> {
        self.read(|tx| async move { tx.range::<serde_json::Value>("").await }.boxed()).boxed()
    }

    fn progress(&self) -> BoxFuture<'_, Result<Progress, ViewError>> {
        ViewRuntime::progress(self).boxed()
    }

    fn remaining(&self, cap: usize) -> BoxFuture<'_, Result<usize, ViewError>> {
        ViewRuntime::remaining(self, cap).boxed()
    }
}

/// Binds a view type to a store.
pub type ViewStarter = fn(Arc<dyn Backend>) -> Arc<dyn DynView>;

/// A registered view.
pub struct ViewSlice {
    /// The Rust type implementing the view.
    pub rust_type: &'static str,
    /// The view's name (its routes are `GET /views/<name>[/<key>]`).
    pub name: &'static str,
    /// Its version.
    pub version: u32,
    /// Binds it to a store.
    pub start: ViewStarter,
}

inventory::collect!(ViewSlice);

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

/// Binds an automation type to a store and the app's dependencies.
pub type AutomationStarter = fn(Arc<dyn Backend>, Dependencies) -> Arc<dyn DynAutomation>;

/// A registered automation.
pub struct AutomationSlice {
    /// The Rust type implementing the automation.
    pub rust_type: &'static str,
    /// The automation's name (its routes are under `/automations/<name>`).
    pub name: &'static str,
    /// Binds it to a store.
    pub start: AutomationStarter,
}

inventory::collect!(AutomationSlice);

/// The starter of automation `A` (used by `#[automation]`).
pub fn automation_starter<A: Automation + Default>(
    backend: Arc<dyn Backend>,
    dependencies: Dependencies,
) -> Arc<dyn DynAutomation> {
    let automation = A::default();
    let settings = automation.settings();
    Arc::new(AutomationRuntime::new(automation, backend, settings).with_dependencies(dependencies))
}

/// Every slice of the binary.
pub struct Slices {
    /// Commands by name.
    pub commands: BTreeMap<&'static str, &'static CommandSlice>,
    /// Views by name.
    pub views: BTreeMap<&'static str, &'static ViewSlice>,
    /// Automations by name.
    pub automations: BTreeMap<&'static str, &'static AutomationSlice>,
    /// Event types by name (to their Rust types).
    pub events: BTreeMap<&'static str, &'static str>,
}

/// Two slices (or event types) registered under one name.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum RegistryError {
    /// Two slices of one kind share a name.
    #[error("two {kind}s are named {name:?}: {first} and {second}")]
    DuplicateSlice {
        /// `command`, `view` or `automation`.
        kind: &'static str,
        /// The shared name.
        name: &'static str,
        /// One Rust type.
        first: &'static str,
        /// The other.
        second: &'static str,
    },
    /// Two event types share a name.
    #[error(transparent)]
    DuplicateEvent(#[from] DuplicateEventName),
    /// A slice name cannot be used in a route.
    #[error("slice name {name:?}: {reason}")]
    BadName {
        /// The name.
        name: &'static str,
        /// Why.
        reason: InvalidInput,
    },
}

fn check_route_name(name: &'static str) -> Result<(), RegistryError> {
    fairway_dcb::layout::Layout::new(name).map(|_| ()).map_err(|reason| RegistryError::BadName { name, reason })
}

/// Indexes `slices` by name, refusing route-unsafe and duplicate names.
fn index<T>(
    kind: &'static str,
    slices: impl Iterator<Item = &'static T>,
    name: fn(&T) -> &'static str,
    rust_type: fn(&T) -> &'static str,
) -> Result<BTreeMap<&'static str, &'static T>, RegistryError> {
    let mut by_name: BTreeMap<&'static str, &'static T> = BTreeMap::new();
    for slice in slices {
        check_route_name(name(slice))?;
        if let Some(other) = by_name.insert(name(slice), slice) {
            let (mut first, mut second) = (rust_type(other), rust_type(slice));
            if first > second {
                std::mem::swap(&mut first, &mut second);
            }
            return Err(RegistryError::DuplicateSlice { kind, name: name(slice), first, second });
        }
    }
    Ok(by_name)
}

/// Lists every registered slice, refusing duplicate names.
pub fn discover() -> Result<Slices, RegistryError> {
    Ok(Slices {
        commands: index("command", inventory::iter::<CommandSlice>.into_iter(), |s| s.name, |s| s.rust_type)?,
        views: index("view", inventory::iter::<ViewSlice>.into_iter(), |s| s.name, |s| s.rust_type)?,
        automations: index("automation", inventory::iter::<AutomationSlice>.into_iter(), |s| s.name, |s| s.rust_type)?,
        events: registered_event_types()?,
    })
}

impl Slices {
    /// Every slice and event type as data (for `GET /slices` and `--list-slices`).
    pub fn describe(&self) -> serde_json::Value {
        serde_json::json!({
            "commands": self.commands.values().map(|s| serde_json::json!({ "name": s.name, "type": s.rust_type })).collect::<Vec<_>>(),
            "views": self.views.values().map(|s| serde_json::json!({ "name": s.name, "version": s.version, "type": s.rust_type })).collect::<Vec<_>>(),
            "automations": self.automations.values().map(|s| serde_json::json!({ "name": s.name, "type": s.rust_type })).collect::<Vec<_>>(),
            "events": self.events.iter().map(|(name, rust_type)| serde_json::json!({ "name": name, "type": rust_type })).collect::<Vec<_>>(),
        })
    }
}
