//! One watch on a store's pulse keys, shared by all its subscriptions.
//!
//! Every append bumps one of the namespace's pulse keys, so a watch on all of them wakes on
//! any append. Armed per subscription, that is 16 watches each: a thousand idle
//! subscriptions would hold 16,000 of FoundationDB's 10,000 watches per database. Shared,
//! a store holds 16 however many subscriptions wait. A watch armed earlier serves a waiter
//! as well as one armed now: it fires on any change after it was armed, so a waiter that
//! takes it, then reads, misses nothing (a change before its read only wakes it once more).

use futures::FutureExt;
use futures::future::{BoxFuture, Shared};

use crate::error::StorageError;
use crate::kv::KvEngine;
use crate::layout::Layout;

/// A watch shared by several waiters: completes once the pulse may have changed.
pub(super) type PulseWatch = Shared<BoxFuture<'static, ()>>;

/// The store's current watch on its pulse keys.
#[derive(Default)]
pub(super) struct Pulse {
    current: tokio::sync::Mutex<Option<PulseWatch>>,
}

impl Pulse {
    /// An armed watch on the pulse keys of `layout`: the current one while it has not
    /// fired, a new one otherwise.
    pub(super) async fn armed<E: KvEngine>(&self, engine: &E, layout: &Layout) -> Result<PulseWatch, StorageError> {
        let mut current = self.current.lock().await;
        if let Some(watch) = current.as_ref().filter(|watch| watch.peek().is_none()) {
            return Ok(watch.clone());
        }
        let watch = engine.watch_any(layout.pulse_keys()).await?.map(|_| ()).boxed().shared();
        *current = Some(watch.clone());
        Ok(watch)
    }
}
