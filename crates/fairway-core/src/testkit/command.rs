//! Given/When/Then for commands.

use serde::Serialize;

use super::{Given, PlainEvent, TestStore};
use crate::command::{Command, CommandError, Executed};
use crate::event::Event;

/// A command test: a fresh store holding the given events.
#[derive(Default)]
pub struct CommandTest {
    given: Given,
}

/// What a command did, for snapshots and assertions.
#[derive(Debug, Serialize, PartialEq)]
pub struct CommandOutcome {
    /// The command's name.
    pub command: &'static str,
    /// `accepted`, `rejected`, `conflict` or `failed`.
    pub result: &'static str,
    /// Events appended.
    pub events: Vec<PlainEvent>,
    /// The error's message when not accepted.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

impl CommandOutcome {
    /// The outcome of running command `C`.
    pub fn of<C: Command>(result: &Result<Executed, CommandError<C::Error>>) -> Self {
        let (result, events, error) = match result {
            Ok(executed) => ("accepted", executed.events.iter().map(PlainEvent::of).collect(), None),
            Err(CommandError::Rejected(e)) => ("rejected", Vec::new(), Some(e.to_string())),
            Err(e @ CommandError::Conflict { .. }) => ("conflict", Vec::new(), Some(e.to_string())),
            Err(e) => ("failed", Vec::new(), Some(e.to_string())),
        };
        CommandOutcome { command: C::NAME, result, events, error }
    }
}

impl CommandTest {
    /// A test with no events yet.
    pub fn new() -> Self {
        CommandTest::default()
    }

    /// Adds a past event.
    pub fn given(mut self, event: impl Event) -> Self {
        self.given.push(event);
        self
    }

    /// Runs `command` against a fresh store holding the given events, as the app runs it
    /// (from decision-model snapshots when it is registered with `#[command(snapshots)]`).
    pub async fn when<C: Command>(self, command: &C) -> CommandOutcome {
        let test = TestStore::with(self.given).await;
        CommandOutcome::of::<C>(&test.runner().execute(command).await)
    }
}
