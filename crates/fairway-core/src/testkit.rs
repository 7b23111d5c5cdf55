//! Given/When/Then for commands, with outcomes made for `insta` snapshots.
//!
//! ```ignore
//! let outcome = CommandTest::new().given(CourseDefined { .. }).when(&SubscribeStudent { .. }).await;
//! insta::assert_yaml_snapshot!(outcome);
//! ```
//! Outcomes hold no positions or timestamps, so snapshots are stable without redactions.

use fairway_dcb::{DcbStore, EmbeddedEngine, EmbeddedOptions, EmbeddedStore, EventStore};
use serde::Serialize;

use crate::command::{Command, CommandError, CommandRunner};
use crate::event::Event;

/// A command test: a fresh store holding the given events.
pub struct CommandTest {
    given: Vec<fairway_dcb::Event>,
}

/// One event as snapshotted: type, tags and the payload as data.
#[derive(Debug, Serialize, PartialEq)]
pub struct EventView {
    /// The type name.
    #[serde(rename = "type")]
    pub event_type: String,
    /// The tags.
    pub tags: Vec<String>,
    /// The payload decoded from MessagePack into plain data.
    pub payload: serde_json::Value,
}

impl EventView {
    /// Views a raw event.
    pub fn of(event: &fairway_dcb::Event) -> Self {
        let payload = rmp_serde::from_slice(&event.payload)
            .unwrap_or_else(|e| serde_json::json!({ "undecodable": e.to_string() }));
        EventView {
            event_type: event.event_type.clone(),
            tags: event.tags.iter().map(|t| t.to_string()).collect(),
            payload,
        }
    }
}

/// What a command did, for snapshots and assertions.
#[derive(Debug, Serialize, PartialEq)]
pub struct Outcome {
    /// The command's name.
    pub command: &'static str,
    /// `accepted`, `rejected`, `conflict` or `failed`.
    pub result: &'static str,
    /// Events appended.
    pub events: Vec<EventView>,
    /// The error's message when not accepted.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

impl Default for CommandTest {
    fn default() -> Self {
        CommandTest::new()
    }
}

impl CommandTest {
    /// A test with no events yet.
    pub fn new() -> Self {
        CommandTest { given: Vec::new() }
    }

    /// Adds a past event.
    pub fn given(mut self, event: impl Event) -> Self {
        self.given.push(event.to_raw().expect("given events encode"));
        self
    }

    /// Runs `command` against a fresh store holding the given events.
    pub async fn when<C: Command>(self, command: &C) -> Outcome {
        let dir = tempfile::tempdir().expect("temp dir");
        let options = EmbeddedOptions { durable: false, ..EmbeddedOptions::default() };
        let engine = std::sync::Arc::new(EmbeddedEngine::open(dir.path(), options).expect("test store opens"));
        let store: EmbeddedStore = DcbStore::new(engine, "test").expect("namespace");
        for event in self.given {
            store.append(vec![event], None).await.expect("given events append");
        }
        let result = CommandRunner::new(store).execute(command).await;
        let (result, events, error) = match result {
            Ok(executed) => ("accepted", executed.events.iter().map(EventView::of).collect(), None),
            Err(CommandError::Rejected(e)) => ("rejected", Vec::new(), Some(e.to_string())),
            Err(e @ CommandError::Conflict { .. }) => ("conflict", Vec::new(), Some(e.to_string())),
            Err(e) => ("failed", Vec::new(), Some(e.to_string())),
        };
        Outcome { command: C::NAME, result, events, error }
    }
}
