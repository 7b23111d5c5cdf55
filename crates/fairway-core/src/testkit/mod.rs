//! Given/When/Then tests for every kind of slice, with outcomes made for `insta` snapshots.
//!
//! ```ignore
//! // Commands: given events, when a command → the events it appended, or its error.
//! let outcome = CommandTest::new().given(CourseDefined { .. }).when(&SubscribeStudent { .. }).await;
//! insta::assert_yaml_snapshot!(outcome);
//! // Views: given events → every document of the view.
//! let state = ViewTest::new().given(CourseDefined { .. }).then(CourseList).await;
//! // Automations: given events, when a triggering event → the commands the handler ran.
//! let reaction = AutomationTest::new().given(..).when(CourseCapacityChanged { .. }, &Promote).await;
//! ```
//! Outcomes hold no positions or timestamps, so snapshots are stable without redactions.
//! Each test runs on a fresh embedded store in a temporary directory; [`TestApp`] runs a
//! whole app in-process for end-to-end tests over HTTP.

mod app;
mod automation;
mod command;
mod view;

use std::sync::Arc;

use fairway_dcb::{DcbStore, EmbeddedEngine, EmbeddedOptions, EmbeddedStore, EventStore};
use serde::Serialize;

use crate::command::CommandRunner;
use crate::snapshot::Snapshots;

pub use app::{TestApp, runs_on_foundationdb};
pub use automation::{AutomationTest, Reaction};
pub use command::{CommandOutcome, CommandTest};
pub use view::{ViewState, ViewTest};

use crate::event::Event;

/// One event as plain data, as snapshots show it: type, tags and the decoded payload.
#[derive(Debug, Serialize, PartialEq)]
pub struct PlainEvent {
    /// The type name.
    #[serde(rename = "type")]
    pub event_type: String,
    /// The tags.
    pub tags: Vec<String>,
    /// The payload decoded from MessagePack into plain data.
    pub payload: serde_json::Value,
}

impl PlainEvent {
    /// The plain data of a stored event.
    pub fn of(event: &fairway_dcb::RawEvent) -> Self {
        let payload = rmp_serde::from_slice(&event.payload)
            .unwrap_or_else(|e| serde_json::json!({ "undecodable": e.to_string() }));
        PlainEvent {
            event_type: event.event_type.clone(),
            tags: event.tags.iter().map(|t| t.to_string()).collect(),
            payload,
        }
    }
}

/// Past events of a test, in order.
#[derive(Default)]
struct Given(Vec<fairway_dcb::RawEvent>);

impl Given {
    fn push(&mut self, event: impl Event) {
        self.0.push(event.to_raw().expect("given events encode"));
    }
}

/// A fresh non-durable store in a temporary directory (removed when dropped).
struct TestStore {
    store: Arc<EmbeddedStore>,
    _dir: tempfile::TempDir,
}

impl TestStore {
    /// A fresh store holding `given`, each event appended on its own.
    async fn with(given: Given) -> Self {
        let dir = tempfile::tempdir().expect("temp dir");
        let options = EmbeddedOptions { durable: false, ..EmbeddedOptions::default() };
        let engine = Arc::new(EmbeddedEngine::open(dir.path(), options).expect("test store opens"));
        let store: EmbeddedStore = DcbStore::new(engine, "test").expect("namespace");
        for event in given.0 {
            store.append(vec![event], None).await.expect("given events append");
        }
        TestStore { store: Arc::new(store), _dir: dir }
    }

    /// Runs commands as the app does: with decision-model snapshots in the same store.
    fn runner(&self) -> CommandRunner<Arc<dyn EventStore>> {
        let snapshots = Snapshots::new(self.store.clone());
        CommandRunner::new(self.store.clone() as Arc<dyn EventStore>).with_snapshots(snapshots)
    }
}
