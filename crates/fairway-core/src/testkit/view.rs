//! Given/Then for views: the documents a view holds after folding the given events.

use std::collections::BTreeMap;

use serde::Serialize;

use super::{Given, TestStore};
use crate::backend::Backend;
use crate::event::Event;
use crate::view::{View, ViewRuntime};

/// A view test: a fresh store holding the given events.
#[derive(Default)]
pub struct ViewTest {
    given: Given,
}

/// Every document of a view, by key, for snapshots and assertions.
#[derive(Debug, Serialize, PartialEq)]
pub struct ViewState {
    /// The view's name.
    pub view: &'static str,
    /// Documents by key, as data.
    pub documents: BTreeMap<String, serde_json::Value>,
}

impl ViewTest {
    /// A test with no events yet.
    pub fn new() -> Self {
        ViewTest::default()
    }

    /// Adds a past event.
    pub fn given(mut self, event: impl Event) -> Self {
        self.given.push(event);
        self
    }

    /// Folds the given events into `view` and returns its documents.
    pub async fn then<V: View>(self, view: V) -> ViewState {
        let test = TestStore::with(self.given).await;
        let backend: std::sync::Arc<dyn Backend> = test.store.clone();
        let runtime = ViewRuntime::new(view, backend);
        runtime.catch_up().await.expect("the view folds the given events");
        let documents = runtime
            .read(|tx| async move { tx.range::<serde_json::Value>("").await })
            .await
            .expect("the view's documents decode");
        ViewState { view: V::NAME, documents: documents.into_iter().collect() }
    }
}
