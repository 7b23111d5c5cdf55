//! Slice registration: `#[command]`, `#[view]` and `#[automation]` submit descriptors here, and the app
//! discovers them all at start. Adding a slice never edits a shared file.
//!
//! Rust links a dependency crate only if the binary refers to it: slices living in another
//! crate need `use that_crate as _;` in the binary.
//!
//! The descriptors live here, with [`discover`] and its name checks; module `erased` holds
//! what they point to: command handlers, view and automation starters, and the type-erased
//! runtimes [`DynView`] and [`DynAutomation`].

mod erased;

use std::collections::BTreeMap;
use std::sync::Arc;

use fairway_dcb::{EventStore, InvalidInput};
use futures::future::BoxFuture;

use crate::backend::Backend;
use crate::command::{CommandReply, CommandRunner};
use crate::dependencies::Dependencies;
use crate::event::{DuplicateEventName, registered_event_types};

pub use erased::{CommandFailure, DynAutomation, DynView, Refusal, automation_starter, command_handler, view_starter};

/// A type-erased command entry point: decodes the body and runs the command with the
/// app's runner (its snapshots, retry policy and idempotency step).
pub type CommandHandler = fn(
    CommandRunner<Arc<dyn EventStore>>,
    serde_json::Value,
) -> BoxFuture<'static, Result<CommandReply, CommandFailure>>;

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

/// Every slice of the binary.
#[derive(Default)]
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
