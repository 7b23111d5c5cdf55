//! Waking idle workers when jobs are enqueued, instead of leaving them to poll.
//!
//! Two paths, armed together before a worker's last look for due jobs, so a job enqueued
//! between that look and the wait is never slept through:
//! - in this process, the enqueuer notifies the workers directly once its transaction has
//!   committed;
//! - from other processes, every enqueue rewrites the queue's wake key, which idle workers
//!   watch through the storage port. Engines may wake a watch spuriously (the port allows
//!   it; FoundationDB does on some failures), so a wake-up through the watch is followed by
//!   a short quiet period: that bounds the looks spurious wake-ups cost, and delays a real
//!   one from elsewhere by at most that.
//!
//! One enqueue wakes every idle worker of every instance at once. Each then waits a random
//! moment of up to [`WAKE_JITTER`] before it looks, so their claims reach the store one
//! after another and mostly find what the earlier ones took instead of conflicting with
//! them (the claims in `queue` also pick among several due jobs).

use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;

use fairway_dcb::StorageError;
use tokio::sync::Notify;
use tokio::sync::futures::OwnedNotified;
use tokio::time::Instant;

use crate::backend::{Backend, Watch};

/// The quiet period after a wake-up through the watch.
const WATCH_QUIET: Duration = Duration::from_millis(10);

/// The longest random wait of a woken worker before it looks for jobs.
pub(super) const WAKE_JITTER: Duration = Duration::from_millis(4);

/// The wake-ups of one automation's workers.
#[derive(Clone)]
pub(super) struct Wake {
    notify: Arc<Notify>,
    key: Arc<Vec<u8>>,
}

/// Wake-ups armed by one idle worker.
pub(super) struct Armed {
    notified: Pin<Box<OwnedNotified>>,
    watch: Watch,
}

impl Wake {
    /// The wake-ups of a queue whose wake key is `key`.
    pub(super) fn new(key: Vec<u8>) -> Self {
        Wake { notify: Arc::new(Notify::new()), key: Arc::new(key) }
    }

    /// Wakes the workers of this process that are waiting (call after the enqueue commits).
    pub(super) fn notify(&self) {
        self.notify.notify_waiters();
    }

    /// Arms both paths: every enqueue from now on ends the wait.
    pub(super) async fn arm(&self, backend: &dyn Backend) -> Result<Armed, StorageError> {
        let mut notified = Box::pin(self.notify.clone().notified_owned());
        notified.as_mut().enable();
        let watch = backend.watch_any(vec![self.key.to_vec()]).await?;
        Ok(Armed { notified, watch })
    }
}

impl Armed {
    /// Waits until a job is enqueued after these wake-ups were armed, or `timeout` passes;
    /// a wake-up is followed by a random wait of up to [`WAKE_JITTER`].
    pub(super) async fn wait(self, timeout: Duration) -> Result<(), StorageError> {
        let Armed { mut notified, watch } = self;
        let deadline = Instant::now() + timeout;
        tokio::select! {
            _ = notified.as_mut() => {}
            changed = watch => {
                changed?;
                let quiet = (Instant::now() + WATCH_QUIET).min(deadline);
                tokio::select! {
                    _ = notified.as_mut() => {}
                    _ = tokio::time::sleep_until(quiet) => {}
                }
            }
            _ = tokio::time::sleep_until(deadline) => return Ok(()),
        }
        tokio::time::sleep(super::queue::jitter(WAKE_JITTER)).await;
        Ok(())
    }
}
