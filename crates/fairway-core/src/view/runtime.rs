//! [`ViewRuntime`]: a view bound to a store. It applies batches of events, each with its
//! checkpoint in one transaction, catches up with the log and activates its version once
//! there (dropping the previous version's data; the active version only moves up); its
//! readers read the active version. The projector that runs it under a lease is in module
//! `projector`.

use std::future::Future;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use fairway_dcb::{Position, ReadOptions};
use futures::{StreamExt, TryFutureExt, TryStreamExt};
use tracing::{Instrument, debug, info};

use super::{Progress, View, ViewError, ViewTx, lease};
use crate::backend::{Backend, DynTx, TxFailure};
use crate::event::{Recorded, UndecodableEvent};
use crate::format::{Checkpoint, ViewKeys, decode_version, encode_version, end_of};

/// How long `wait_for` pauses before looking again when its watch failed.
const WATCH_FAILED_PAUSE: Duration = Duration::from_millis(50);

/// Pages between two progress lines in the log while rebuilding.
const PROGRESS_LOG_PAGES: usize = 40;

/// A view bound to a store: its projector and its readers.
pub struct ViewRuntime<V: View> {
    pub(super) view: Arc<V>,
    pub(super) backend: Arc<dyn Backend>,
    keys: ViewKeys,
    /// Readers of this process waiting for the view to reach a position (`?after=`): while
    /// any waits, batches commit at once rather than in the background.
    waiting_readers: Arc<AtomicUsize>,
}

impl<V: View> Clone for ViewRuntime<V> {
    fn clone(&self) -> Self {
        ViewRuntime {
            view: self.view.clone(),
            backend: self.backend.clone(),
            keys: self.keys.clone(),
            waiting_readers: self.waiting_readers.clone(),
        }
    }
}

/// A view's failure as its transaction's: a storage error stays one, so the engine retries
/// what is retryable (e.g. FoundationDB's 1007 or 1009 raised by a read inside `apply` or a
/// reader); anything else is the body's own.
fn body_error(err: ViewError) -> TxFailure {
    match err {
        ViewError::Store(fairway_dcb::Error::Storage(storage)) => TxFailure::Storage(storage),
        other => TxFailure::Body(Box::new(other)),
    }
}

impl<V: View> ViewRuntime<V> {
    /// Binds `view` to `backend`.
    pub fn new(view: V, backend: Arc<dyn Backend>) -> Self {
        let keys = ViewKeys::new(backend.as_ref(), V::NAME, V::VERSION);
        ViewRuntime { view: Arc::new(view), backend, keys, waiting_readers: Arc::default() }
    }

    pub(super) fn keys(&self) -> &ViewKeys {
        &self.keys
    }

    /// Reads the checkpoint, whether this version is active and which instance projects it.
    pub async fn progress(&self) -> Result<Progress, ViewError> {
        let keys = &self.keys;
        let ((checkpoint, processed), active, holder) = self
            .backend
            .transact(move |tx| async move {
                let tx = tx.as_ref();
                Ok((read_checkpoint(tx, keys).await?, read_active(tx, keys).await?, lease::holder(tx, keys).await?))
            })
            .await?;
        Ok(Progress { checkpoint, processed, active: active == Some(V::VERSION), holder })
    }

    /// Applies one batch (skipping events at or before the stored checkpoint) and moves the
    /// checkpoint to its last event, or to `through` when that is later (a head the batch
    /// was read up to), atomically; activates this version when `caught_up`. Writes nothing
    /// when a newer version is active ([`ViewError::Superseded`]) or, for a `holder`, when
    /// it lost the lease ([`ViewError::LeaseLost`]); renews the holder's lease otherwise.
    /// Returns how many events were applied.
    pub(super) async fn apply_batch(
        &self,
        events: Vec<Recorded>,
        through: Option<Position>,
        caught_up: bool,
        holder: Option<&str>,
    ) -> Result<usize, ViewError> {
        let events = &Arc::new(events);
        let data: &Arc<[u8]> = &self.keys.data.as_slice().into();
        let applied = self
            .backend
            .transact(move |tx| async move {
                // A batch is background work (it may share a command's group commit) unless
                // a reader waits for it.
                if self.waiting_readers.load(Ordering::SeqCst) == 0 {
                    tx.set_background();
                }
                lease::hold(tx.as_ref(), &self.keys, V::NAME, V::VERSION, holder).await.map_err(body_error)?;
                let (stored, processed) = read_checkpoint(tx.as_ref(), &self.keys).await?;
                let mut count = 0;
                for (index, event) in events.iter().enumerate().filter(|(_, e)| stored.is_none_or(|s| e.position() > s))
                {
                    count += 1;
                    let decoded = match event.decode::<V::Events>() {
                        Some(Ok(decoded)) => decoded,
                        Some(Err(undecodable)) => return Err(body_error(undecodable.into())),
                        None => continue,
                    };
                    let view_tx = ViewTx::applying(tx.clone(), data.clone(), events.clone(), index);
                    self.view.apply(decoded, &view_tx).await.map_err(|err| match err {
                        ViewError::Event(source) => body_error(UndecodableEvent::new(event, source).into()),
                        other => body_error(other),
                    })?;
                }
                if let Some(last) = events.last().map(Recorded::position).max(through)
                    && stored.is_none_or(|s| last > s)
                {
                    let checkpoint = Checkpoint { position: last, processed: processed + count as u64 };
                    tx.set(&self.keys.checkpoint, &checkpoint.encode());
                }
                if caught_up {
                    activate(tx.as_ref(), self.backend.as_ref(), &self.keys, V::NAME, V::VERSION).await?;
                }
                Ok(count)
            })
            .await?;
        Ok(applied)
    }

    /// Applies every event of the log not yet applied, up to the head taken when it
    /// starts, in batches read from one stream (the next read while one is applied; as
    /// many events a batch as the engine takes in one transaction), and activates this
    /// version once there.
    /// Returns the events applied and the checkpoint (that head). It runs without a lease
    /// (a one-off fold, e.g. in tests); [`ViewRuntime::run`] is the projector.
    pub async fn catch_up(&self) -> Result<(usize, Option<Position>), ViewError> {
        self.catch_up_as(None).await
    }

    /// [`ViewRuntime::catch_up`], each batch checking and renewing the lease of `holder`.
    pub(super) async fn catch_up_as(&self, holder: Option<&str>) -> Result<(usize, Option<Position>), ViewError> {
        let start = self.progress().await?;
        info!(view = V::NAME, version = V::VERSION, checkpoint = ?start.checkpoint, active = start.active, "catching up");
        let from = start.checkpoint.map_or(Position::ZERO, Position::next);
        let read = self.backend.events().read_with_head(self.view.query(), ReadOptions::forwards().from(from)).await?;
        let head = read.head.max(start.checkpoint);
        let batch = self.backend.bulk_events_per_transaction();
        let mut batches = ReadAhead::spawn(read.events.map_ok(Recorded::new).try_ready_chunks(batch).map_err(|e| e.1));
        let mut processed = 0usize;
        let mut batch_count = 0usize;
        let mut checkpoint = start.checkpoint;
        while let Some(batch) = batches.next().await.transpose().map_err(ViewError::Store)? {
            checkpoint = batch.last().map(Recorded::position).or(checkpoint);
            processed += self.apply_batch(batch, None, false, holder).await?;
            batch_count += 1;
            if batch_count.is_multiple_of(PROGRESS_LOG_PAGES) {
                info!(view = V::NAME, version = V::VERSION, processed, checkpoint = ?checkpoint, "rebuilding");
            }
        }
        // Nothing else matches up to the head: the checkpoint moves there and the version
        // becomes active.
        processed += self.apply_batch(Vec::new(), head, true, holder).await?;
        info!(view = V::NAME, version = V::VERSION, processed, "caught up");
        Ok((processed, head))
    }

    /// Events the view's query matches after its checkpoint, counted up to `cap`.
    pub async fn remaining(&self, cap: usize) -> Result<usize, ViewError> {
        let from = self.progress().await?.checkpoint.map_or(Position::ZERO, Position::next);
        let count = self
            .backend
            .events()
            .read(self.view.query(), ReadOptions::forwards().from(from).limit(cap))
            .try_fold(0usize, |n, _| async move { Ok(n + 1) })
            .await?;
        Ok(count)
    }

    /// Waits until the view reflects every event up to `position` (read-your-writes): checks,
    /// then sleeps until the checkpoint (or the active version) changes, on a watch armed
    /// before each check, whichever instance projects (a watch that fails wakes it after
    /// 50 ms). Fails with [`ViewError::Superseded`] when a newer version is active, and with
    /// [`ViewError::Timeout`] after `timeout`.
    pub async fn wait_for(&self, position: Position, timeout: Duration) -> Result<(), ViewError> {
        let deadline = tokio::time::Instant::now() + timeout;
        let mut waiting = None;
        loop {
            let armed = self.backend.watch_any(vec![self.keys.checkpoint.clone(), self.keys.active.clone()]).await;
            if self.reflects(position).await? {
                return Ok(());
            }
            waiting.get_or_insert_with(|| WaitingReader::new(&self.waiting_readers));
            let changed = async {
                if let Err(err) = futures::future::ready(armed).and_then(|watch| watch).await {
                    debug!(view = V::NAME, %err, "watch on the checkpoint failed; looking again shortly");
                    tokio::time::sleep(WATCH_FAILED_PAUSE).await;
                }
            };
            tokio::select! {
                _ = changed => {}
                _ = tokio::time::sleep_until(deadline) => {
                    return Err(ViewError::Timeout { view: V::NAME, position, timeout });
                }
            }
        }
    }

    /// Whether the view reflects every event up to `position`: its checkpoint is there, or
    /// nothing the view reads lies between its checkpoint and `position`.
    async fn reflects(&self, position: Position) -> Result<bool, ViewError> {
        let keys = &self.keys;
        let (checkpoint, active) = self
            .backend
            .transact(move |tx| async move {
                Ok((read_checkpoint(tx.as_ref(), keys).await?.0, read_active(tx.as_ref(), keys).await?))
            })
            .await?;
        if let Some(active) = active.filter(|active| *active > V::VERSION) {
            return Err(self.superseded(active));
        }
        if checkpoint.is_some_and(|c| c >= position) {
            return Ok(true);
        }
        let from = checkpoint.map_or(Position::ZERO, Position::next);
        let next = self
            .backend
            .events()
            .read(self.view.query(), ReadOptions::forwards().from(from).limit(1))
            .try_next()
            .await?;
        Ok(next.is_none_or(|e| e.position > position))
    }

    /// Reads documents of the active version (this one once active, else the previous one)
    /// through `read`, in one snapshot-consistent transaction. Fails with
    /// [`ViewError::Superseded`] when a newer version is active: its documents have another
    /// shape.
    pub async fn read<'b, R, F, Fut>(&'b self, read: F) -> Result<R, ViewError>
    where
        R: Send + 'static,
        F: Fn(ViewTx) -> Fut + Send + Sync + 'b,
        Fut: Future<Output = Result<R, ViewError>> + Send + 'b,
    {
        let read = &read;
        let value = self
            .backend
            .transact(move |tx| async move {
                let data = match read_active(tx.as_ref(), &self.keys).await? {
                    Some(active) if active > V::VERSION => return Err(body_error(self.superseded(active))),
                    Some(active) if active < V::VERSION => ViewKeys::new(self.backend.as_ref(), V::NAME, active).data,
                    _ => self.keys.data.clone(),
                };
                read(ViewTx::reading(tx, data.as_slice().into())).await.map_err(body_error)
            })
            .await?;
        Ok(value)
    }

    pub(super) fn superseded(&self, active: u32) -> ViewError {
        ViewError::Superseded { view: V::NAME, version: V::VERSION, active }
    }
}

/// Batches read in a task of their own (in the caller's span), one ahead of the consumer:
/// the next batch is read while the current one is applied.
struct ReadAhead<T> {
    batches: tokio::sync::mpsc::Receiver<Result<T, fairway_dcb::Error>>,
    reader: Option<tokio::task::JoinHandle<()>>,
}

impl<T: Send + 'static> ReadAhead<T> {
    /// Starts reading `batches`; the task ends after the first error.
    fn spawn(batches: impl futures::Stream<Item = Result<T, fairway_dcb::Error>> + Send + 'static) -> Self {
        let (sender, receiver) = tokio::sync::mpsc::channel(1);
        let reader = tokio::spawn(
            async move {
                let mut batches = std::pin::pin!(batches);
                while let Some(batch) = batches.next().await {
                    let failed = batch.is_err();
                    if sender.send(batch).await.is_err() || failed {
                        break;
                    }
                }
            }
            .in_current_span(),
        );
        ReadAhead { batches: receiver, reader: Some(reader) }
    }

    /// The next batch; `None` once the stream ended. A panic of the reading task goes on
    /// here, rather than passing for the end of the stream.
    async fn next(&mut self) -> Option<Result<T, fairway_dcb::Error>> {
        let batch = self.batches.recv().await;
        if batch.is_none()
            && let Some(reader) = self.reader.take()
            && let Err(failed) = reader.await
            && failed.is_panic()
        {
            std::panic::resume_unwind(failed.into_panic());
        }
        batch
    }
}

/// The stored checkpoint: the last position seen and how many events were applied.
pub(crate) async fn read_checkpoint(tx: &dyn DynTx, keys: &ViewKeys) -> Result<(Option<Position>, u64), TxFailure> {
    let stored = tx.get(&keys.checkpoint).await?.as_deref().and_then(Checkpoint::decode);
    Ok(stored.map_or((None, 0), |checkpoint| (Some(checkpoint.position), checkpoint.processed)))
}

/// The version of the view readers use, once one has caught up.
pub(crate) async fn read_active(tx: &dyn DynTx, keys: &ViewKeys) -> Result<Option<u32>, TxFailure> {
    Ok(tx.get(&keys.active).await?.as_deref().and_then(decode_version))
}

/// Makes this version the active one and drops the data of the previous active version, an
/// older one (the caller checked that no newer version is active).
async fn activate(
    tx: &dyn DynTx,
    backend: &dyn Backend,
    keys: &ViewKeys,
    name: &str,
    version: u32,
) -> Result<(), TxFailure> {
    let active = read_active(tx, keys).await?;
    if active.is_some_and(|active| active >= version) {
        return Ok(());
    }
    if let Some(old) = active {
        let old_root = ViewKeys::new(backend, name, old).version_root;
        tx.clear_range(&old_root, &end_of(&old_root));
        info!(view = name, from = old, to = version, "view version switched; old data dropped");
    }
    tx.set(&keys.active, &encode_version(version));
    Ok(())
}

/// A reader counted in a view's waiting readers while it lives.
struct WaitingReader(Arc<AtomicUsize>);

impl WaitingReader {
    fn new(count: &Arc<AtomicUsize>) -> Self {
        count.fetch_add(1, Ordering::SeqCst);
        WaitingReader(count.clone())
    }
}

impl Drop for WaitingReader {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::SeqCst);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Batches read ahead arrive in order and end with their stream; a reading task that
    /// panics makes the consumer panic instead of seeing the end of the stream.
    #[tokio::test]
    async fn batches_read_ahead_end_with_their_stream_and_a_panic_is_not_an_end() {
        let mut ahead = ReadAhead::spawn(futures::stream::iter([Ok(1), Ok(2)]));
        assert_eq!(ahead.next().await.map(Result::unwrap), Some(1));
        assert_eq!(ahead.next().await.map(Result::unwrap), Some(2));
        assert!(ahead.next().await.is_none());

        let panicking = futures::stream::iter([Ok(1)]).chain(futures::stream::poll_fn(
            |_| -> std::task::Poll<Option<Result<i32, fairway_dcb::Error>>> { panic!("the store's read panicked") },
        ));
        let consumer = tokio::spawn(async move {
            let mut ahead = ReadAhead::spawn(panicking);
            assert_eq!(ahead.next().await.map(Result::unwrap), Some(1));
            ahead.next().await
        });
        let failed = consumer.await.expect_err("the consumer panics");
        assert!(failed.is_panic());
    }
}
