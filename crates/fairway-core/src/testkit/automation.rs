//! Given/When/Then for automations: the commands a handler runs for one triggering event.

use fairway_dcb::{EventStore, Query, ReadOptions};
use futures::TryStreamExt;
use serde::Serialize;

use super::{CommandOutcome, Given, TestStore};
use crate::automation::{Automation, AutomationContext};
use crate::dependencies::Dependencies;
use crate::event::{Event, Recorded};

/// An automation test: a fresh store holding the given events, and the dependencies the
/// handler may ask for.
#[derive(Default)]
pub struct AutomationTest {
    given: Given,
    dependencies: Dependencies,
}

/// How a handler reacted to one event, for snapshots and assertions.
#[derive(Debug, Serialize, PartialEq)]
pub struct Reaction {
    /// The automation's name.
    pub automation: &'static str,
    /// `handled`, `failed` (the job would be retried) or `ignored` (the trigger is not in
    /// the automation's event set).
    pub result: &'static str,
    /// Every command the handler ran, in order, with its outcome.
    pub commands: Vec<CommandOutcome>,
    /// The handler's error when failed.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

impl AutomationTest {
    /// A test with no events yet.
    pub fn new() -> Self {
        AutomationTest::default()
    }

    /// Adds a past event.
    pub fn given(mut self, event: impl Event) -> Self {
        self.given.push(event);
        self
    }

    /// Provides a dependency to the handler (e.g. a fake mailer that records calls).
    pub fn provide<T: Send + Sync + 'static>(self, value: T) -> Self {
        self.dependencies.provide(value);
        self
    }

    /// Appends `trigger` after the given events and runs `automation`'s handler on it once.
    pub async fn when<A: Automation>(mut self, trigger: impl Event, automation: &A) -> Reaction {
        self.given.push(trigger);
        let test = TestStore::with(self.given).await;
        let last = test
            .store
            .read(Query::all(), ReadOptions::backwards().limit(1))
            .try_next()
            .await
            .expect("the store reads")
            .expect("the trigger was appended");
        let recorder = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
        let position = last.position;
        let ctx = AutomationContext::with_runner(test.runner(), self.dependencies)
            .triggered_by(position)
            .recording(recorder.clone());
        let outcome = match Recorded::new(last).decode::<A::Events>() {
            None => return Reaction { automation: A::NAME, result: "ignored", commands: Vec::new(), error: None },
            Some(Err(undecodable)) => Err(undecodable.into()),
            Some(Ok(event)) => automation.handle(event, &ctx).await,
        };
        let commands = std::mem::take(&mut *recorder.lock().expect("recorder"));
        match outcome {
            Ok(()) => Reaction { automation: A::NAME, result: "handled", commands, error: None },
            Err(e) => Reaction { automation: A::NAME, result: "failed", commands, error: Some(e.to_string()) },
        }
    }
}
