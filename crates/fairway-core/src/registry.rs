//! Slice registration: `#[command]` and `#[view]` submit descriptors here, and the app
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

use crate::backend::Backend;
use crate::command::{Command, CommandError, CommandRunner};
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

/// Why a command handler did not append, mapped to HTTP statuses by the app.
#[derive(Debug, thiserror::Error)]
pub enum CommandFailure {
    /// The body is not the command (400).
    #[error("invalid command body: {0}")]
    BadRequest(String),
    /// The command refused (422).
    #[error("{0}")]
    Rejected(String),
    /// The boundary kept changing (409).
    #[error("{0}")]
    Conflict(String),
    /// The store failed (500).
    #[error("{0}")]
    Internal(String),
}

/// A type-erased command entry point.
pub type CommandHandler = fn(
    CommandRunner<Arc<dyn EventStore>>,
    serde_json::Value,
) -> BoxFuture<'static, Result<CommandReply, CommandFailure>>;

/// A registered command.
pub struct CommandSlice {
    /// The command's name (its route is `POST /commands/<name>`).
    pub name: &'static str,
    /// Decodes the body and runs the command.
    pub handler: CommandHandler,
}

inventory::collect!(CommandSlice);

/// The handler of command `C` (used by `#[command]`).
pub fn command_handler<C: Command + DeserializeOwned>(
    runner: CommandRunner<Arc<dyn EventStore>>,
    body: serde_json::Value,
) -> BoxFuture<'static, Result<CommandReply, CommandFailure>> {
    async move {
        let command: C = serde_json::from_value(body).map_err(|e| CommandFailure::BadRequest(e.to_string()))?;
        match runner.execute(&command).await {
            Ok(executed) => Ok(CommandReply {
                positions: executed.positions.iter().map(Position::to_string).collect(),
                last_position: executed.last_position().map(|p| p.to_string()),
                attempts: executed.attempts,
            }),
            Err(CommandError::Rejected(e)) => Err(CommandFailure::Rejected(e.to_string())),
            Err(e @ CommandError::Conflict { .. }) => Err(CommandFailure::Conflict(e.to_string())),
            Err(CommandError::Event(e)) => Err(CommandFailure::BadRequest(e.to_string())),
            Err(CommandError::Store(fairway_dcb::Error::InvalidInput(e))) => {
                Err(CommandFailure::BadRequest(e.to_string()))
            }
            Err(e) => Err(CommandFailure::Internal(e.to_string())),
        }
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
}

/// Binds a view type to a store.
pub type ViewStarter = fn(Arc<dyn Backend>) -> Arc<dyn DynView>;

/// A registered view.
pub struct ViewSlice {
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

/// Every slice of the binary.
pub struct Slices {
    /// Commands by name.
    pub commands: BTreeMap<&'static str, CommandHandler>,
    /// Views by name.
    pub views: BTreeMap<&'static str, &'static ViewSlice>,
    /// Event types by name (to their Rust types).
    pub events: BTreeMap<&'static str, &'static str>,
}

/// Two slices (or event types) registered under one name.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum RegistryError {
    /// Two commands share a name.
    #[error("two commands are named {0:?}")]
    DuplicateCommand(&'static str),
    /// Two views share a name.
    #[error("two views are named {0:?} (versions {1} and {2})")]
    DuplicateView(&'static str, u32, u32),
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

/// Lists every registered slice, refusing duplicate names.
pub fn discover() -> Result<Slices, RegistryError> {
    let mut commands = BTreeMap::new();
    for slice in inventory::iter::<CommandSlice> {
        check_route_name(slice.name)?;
        if commands.insert(slice.name, slice.handler).is_some() {
            return Err(RegistryError::DuplicateCommand(slice.name));
        }
    }
    let mut views: BTreeMap<&'static str, &'static ViewSlice> = BTreeMap::new();
    for slice in inventory::iter::<ViewSlice> {
        check_route_name(slice.name)?;
        if let Some(other) = views.insert(slice.name, slice) {
            return Err(RegistryError::DuplicateView(slice.name, other.version, slice.version));
        }
    }
    Ok(Slices { commands, views, events: registered_event_types()? })
}
