//! Views: read models folded from the log into the view's own keyspace in the same store.
//!
//! A projector per view follows the log; each batch of events and the view's checkpoint
//! commit in one transaction, after re-reading the checkpoint inside it, so an event is
//! applied exactly once — also with several app instances running the same projector, and
//! after a crash mid-batch. A new [`View::VERSION`] builds into a fresh keyspace from the
//! start of the log while readers keep the previous version; once caught up it becomes the
//! active version and the old data is dropped.

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use fairway_dcb::{POSITION_LEN, Position, Query, ReadOptions};
use futures::future::BoxFuture;
use futures::{FutureExt, StreamExt, TryStreamExt};
use serde::Serialize;
use serde::de::DeserializeOwned;
use tracing::{Instrument, debug, info, info_span};

use crate::backend::{Backend, DynTx, TxFailure};
use crate::event::{EventError, EventSet, Recorded, UndecodableEvent};

/// Events applied per transaction, at most.
const BATCH: usize = 1024;

/// Pages between two progress lines in the log while rebuilding.
const PROGRESS_LOG_PAGES: usize = 40;

/// A read model.
pub trait View: Send + Sync + 'static {
    /// Stable name (routes, keyspace).
    const NAME: &'static str;
    /// Bump to rebuild the view from the log (no migrations).
    const VERSION: u32;
    /// The events the view folds: an [`EventSet`] (or one [`Event`](crate::Event) type).
    type Events: EventSet;

    /// The events the view reads: by default every event of [`View::Events`]. Narrow it
    /// with tags if the view only follows some boundaries.
    fn query(&self) -> Query {
        Self::Events::query()
    }

    /// Applies one event, writing through `tx` (which also tells the event's position and
    /// time).
    fn apply(&self, event: Self::Events, tx: &ViewTx) -> impl Future<Output = Result<(), ViewError>> + Send;
}

/// Failures of views.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ViewError {
    /// An event did not decode (what `apply` returns; the runtime turns it into
    /// [`ViewError::Undecodable`]).
    #[error(transparent)]
    Event(#[from] EventError),
    /// A stored event the view applies does not decode.
    #[error(transparent)]
    Undecodable(#[from] UndecodableEvent),
    /// A stored document did not decode or encode.
    #[error("view document {key:?}: {reason}")]
    Document {
        /// The document key.
        key: String,
        /// Why.
        reason: String,
    },
    /// The store failed.
    #[error("store: {0}")]
    Store(#[from] fairway_dcb::Error),
    /// A transaction body failed with an error of its own.
    #[error("{0}")]
    Body(#[source] Box<dyn std::error::Error + Send + Sync + 'static>),
    /// Waiting for a position timed out.
    #[error("view {view} did not reach position {position} within {timeout:?}")]
    Timeout {
        /// The view.
        view: &'static str,
        /// The awaited position.
        position: Position,
        /// How long was waited.
        timeout: Duration,
    },
}

impl From<TxFailure> for ViewError {
    fn from(err: TxFailure) -> Self {
        match err {
            TxFailure::Body(body) => match body.downcast::<ViewError>() {
                Ok(view) => *view,
                Err(other) => ViewError::Body(other),
            },
            TxFailure::Storage(storage) => storage.into(),
        }
    }
}

impl From<fairway_dcb::StorageError> for ViewError {
    fn from(err: fairway_dcb::StorageError) -> Self {
        ViewError::Store(fairway_dcb::Error::Storage(err))
    }
}

/// Typed access to a view's documents inside a transaction. Documents are MessagePack maps
/// under string keys.
pub struct ViewTx {
    tx: Arc<dyn DynTx>,
    data: Arc<[u8]>,
    applied: Option<Applied>,
}

/// The event a [`ViewTx`] applies: an index into its batch (no copy per event).
struct Applied {
    batch: Arc<Vec<Recorded>>,
    index: usize,
}

fn end_of(prefix: &[u8]) -> Vec<u8> {
    let mut end = prefix.to_vec();
    end.push(0xff);
    end
}

impl ViewTx {
    /// The position of the event being applied ([`Position::ZERO`] in reads).
    pub fn position(&self) -> Position {
        self.applied().map_or(Position::ZERO, Recorded::position)
    }

    fn applied(&self) -> Option<&Recorded> {
        self.applied.as_ref().map(|applied| &applied.batch[applied.index])
    }

    /// When the event being applied was recorded (the Unix epoch in reads).
    pub fn recorded_at(&self) -> std::time::SystemTime {
        self.applied().map_or(std::time::UNIX_EPOCH, Recorded::recorded_at)
    }

    /// The value of the applied event's tag with `key` (`"c1"` for `course:c1`), if it has
    /// one: views usually keep a document per tagged entity.
    pub fn tag(&self, key: &str) -> Option<&str> {
        self.applied()?.tags().iter().find(|tag| tag.key() == key).map(|tag| tag.value())
    }

    fn key(&self, key: &str) -> Vec<u8> {
        [&*self.data, key.as_bytes()].concat()
    }

    /// Reads a document.
    pub async fn get<T: DeserializeOwned>(&self, key: &str) -> Result<Option<T>, ViewError> {
        let Some(bytes) = self.tx.get(&self.key(key)).await? else { return Ok(None) };
        decode(key, &bytes).map(Some)
    }

    /// Writes a document.
    pub fn put<T: Serialize>(&self, key: &str, doc: &T) -> Result<(), ViewError> {
        let bytes =
            rmp_serde::to_vec_named(doc).map_err(|e| ViewError::Document { key: key.into(), reason: e.to_string() })?;
        self.tx.set(&self.key(key), &bytes);
        Ok(())
    }

    /// Changes the document under `key` (a default one if there is none) and writes it
    /// back.
    pub async fn update<T: Serialize + DeserializeOwned + Default>(
        &self,
        key: &str,
        change: impl FnOnce(&mut T),
    ) -> Result<(), ViewError> {
        let mut doc = self.get(key).await?.unwrap_or_default();
        change(&mut doc);
        self.put(key, &doc)
    }

    /// Removes a document.
    pub fn delete(&self, key: &str) {
        self.tx.clear(&self.key(key));
    }

    /// Every document whose key starts with `prefix`, in key order.
    pub async fn range<T: DeserializeOwned>(&self, prefix: &str) -> Result<Vec<(String, T)>, ViewError> {
        let begin = self.key(prefix);
        let pairs = self.tx.scan(&begin, &end_of(&begin), 0).await?;
        pairs
            .into_iter()
            .map(|kv| {
                let key = String::from_utf8_lossy(&kv.key[self.data.len()..]).into_owned();
                let doc = decode(&key, &kv.value)?;
                Ok((key, doc))
            })
            .collect()
    }
}

fn decode<T: DeserializeOwned>(key: &str, bytes: &[u8]) -> Result<T, ViewError> {
    rmp_serde::from_slice(bytes).map_err(|e| ViewError::Document { key: key.into(), reason: e.to_string() })
}

/// The keys of one view version.
#[derive(Clone)]
struct Keys {
    data: Vec<u8>,
    checkpoint: Vec<u8>,
    version_root: Vec<u8>,
    active: Vec<u8>,
}

impl Keys {
    fn new(backend: &dyn Backend, name: &str, version: u32) -> Self {
        let root = backend.keyspace(&format!("view/{name}"));
        let version_root = [root.as_slice(), b"v", &version.to_be_bytes()].concat();
        Keys {
            data: [version_root.as_slice(), b"d"].concat(),
            checkpoint: [version_root.as_slice(), b"c"].concat(),
            active: [root.as_slice(), b"active"].concat(),
            version_root,
        }
    }
}

/// A view bound to a store: its projector and its readers.
pub struct ViewRuntime<V: View> {
    view: Arc<V>,
    backend: Arc<dyn Backend>,
    keys: Keys,
}

impl<V: View> Clone for ViewRuntime<V> {
    fn clone(&self) -> Self {
        ViewRuntime { view: self.view.clone(), backend: self.backend.clone(), keys: self.keys.clone() }
    }
}

/// Progress of a projector.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Progress {
    /// The last position applied (or skipped as not matching), if any.
    pub checkpoint: Option<Position>,
    /// Events this version applied so far (those its query matched).
    pub processed: u64,
    /// Whether this version is the one readers use.
    pub active: bool,
}

fn body_error(err: ViewError) -> TxFailure {
    TxFailure::Body(Box::new(err))
}

impl<V: View> ViewRuntime<V> {
    /// Binds `view` to `backend`.
    pub fn new(view: V, backend: Arc<dyn Backend>) -> Self {
        let keys = Keys::new(backend.as_ref(), V::NAME, V::VERSION);
        ViewRuntime { view: Arc::new(view), backend, keys }
    }

    /// Reads the checkpoint and whether this version is active.
    pub async fn progress(&self) -> Result<Progress, ViewError> {
        let keys = self.keys.clone();
        let out = Arc::new(std::sync::Mutex::new(None));
        let slot = out.clone();
        let body = move |tx: Arc<dyn DynTx>| -> BoxFuture<'static, Result<(), TxFailure>> {
            let (keys, slot) = (keys.clone(), slot.clone());
            async move {
                let (checkpoint, processed) = read_checkpoint(tx.as_ref(), &keys).await?;
                let active = tx.get(&keys.active).await?.and_then(|b| b.try_into().ok()).map(u32::from_be_bytes);
                *slot.lock().expect("slot") =
                    Some(Progress { checkpoint, processed, active: active == Some(V::VERSION) });
                Ok(())
            }
            .boxed()
        };
        self.backend.transact(&body).await?;
        let progress = out.lock().expect("slot").take().expect("body ran");
        Ok(progress)
    }

    /// Applies one batch (skipping events at or before the stored checkpoint) and moves the
    /// checkpoint to its last event, or to `through` when that is later (a head the batch
    /// was read up to), atomically. Returns how many events were applied.
    async fn apply_batch(
        &self,
        events: Vec<Recorded>,
        through: Option<Position>,
        caught_up: bool,
    ) -> Result<usize, ViewError> {
        let events = Arc::new(events);
        let applied = Arc::new(std::sync::atomic::AtomicUsize::new(0));
        let (view, keys, counter) = (self.view.clone(), self.keys.clone(), applied.clone());
        let backend = self.backend.clone();
        let body = move |tx: Arc<dyn DynTx>| -> BoxFuture<'static, Result<(), TxFailure>> {
            let (view, keys, events, counter) = (view.clone(), keys.clone(), events.clone(), counter.clone());
            let backend = backend.clone();
            async move {
                let (stored, processed) = read_checkpoint(tx.as_ref(), &keys).await?;
                let mut count = 0;
                let data: Arc<[u8]> = keys.data.as_slice().into();
                for (index, event) in events.iter().enumerate().filter(|(_, e)| stored.is_none_or(|s| e.position() > s))
                {
                    count += 1;
                    let decoded = match event.decode::<V::Events>() {
                        Some(Ok(decoded)) => decoded,
                        Some(Err(undecodable)) => return Err(body_error(undecodable.into())),
                        None => continue,
                    };
                    let applied = Some(Applied { batch: events.clone(), index });
                    let view_tx = ViewTx { tx: tx.clone(), data: data.clone(), applied };
                    view.apply(decoded, &view_tx).await.map_err(|err| match err {
                        ViewError::Event(source) => body_error(UndecodableEvent::new(event, source).into()),
                        other => body_error(other),
                    })?;
                }
                if let Some(last) = events.last().map(Recorded::position).max(through)
                    && stored.is_none_or(|s| last > s)
                {
                    let checkpoint = [last.to_bytes().as_slice(), &(processed + count as u64).to_be_bytes()].concat();
                    tx.set(&keys.checkpoint, &checkpoint);
                }
                if caught_up {
                    activate(tx.as_ref(), backend.as_ref(), &keys, V::NAME, V::VERSION).await?;
                }
                counter.store(count, std::sync::atomic::Ordering::SeqCst);
                Ok(())
            }
            .boxed()
        };
        self.backend.transact(&body).await?;
        Ok(applied.load(std::sync::atomic::Ordering::SeqCst))
    }

    /// Applies every event of the log not yet applied, up to the head taken when it
    /// starts, in batches read from one stream, and activates this version once there.
    /// Returns the events applied and the checkpoint (that head).
    pub async fn catch_up(&self) -> Result<(usize, Option<Position>), ViewError> {
        let start = self.progress().await?;
        info!(view = V::NAME, version = V::VERSION, checkpoint = ?start.checkpoint, active = start.active, "catching up");
        let from = start.checkpoint.map_or(Position::ZERO, Position::next);
        let read = self.backend.events().read_with_head(self.view.query(), ReadOptions::forwards().from(from)).await?;
        let head = read.head.max(start.checkpoint);
        let mut batches = read.events.map_ok(Recorded::new).try_ready_chunks(BATCH);
        let mut processed = 0usize;
        let mut batch_count = 0usize;
        let mut checkpoint = start.checkpoint;
        while let Some(batch) = batches.try_next().await.map_err(|e| ViewError::Store(e.1))? {
            checkpoint = batch.last().map(Recorded::position).or(checkpoint);
            processed += self.apply_batch(batch, None, false).await?;
            batch_count += 1;
            if batch_count.is_multiple_of(PROGRESS_LOG_PAGES) {
                info!(view = V::NAME, version = V::VERSION, processed, checkpoint = ?checkpoint, "rebuilding");
            }
        }
        // Nothing else matches up to the head: the checkpoint moves there and the version
        // becomes active.
        processed += self.apply_batch(Vec::new(), head, true).await?;
        info!(view = V::NAME, version = V::VERSION, processed, "caught up");
        Ok((processed, head))
    }

    /// Catches up, then follows the log forever, applying batches; returns only on error.
    /// Run it as a task.
    pub async fn run(self) -> Result<(), ViewError> {
        let span = info_span!("projector", view = V::NAME, version = V::VERSION);
        async move {
            let (mut processed, checkpoint) = self.catch_up().await?;
            let mut live = self
                .backend
                .events()
                .subscribe(self.view.query(), checkpoint)
                .map_ok(Recorded::new)
                .ready_chunks(BATCH);
            while let Some(chunk) = live.next().await {
                let events: Vec<Recorded> = chunk.into_iter().collect::<Result<_, _>>()?;
                let (first, last) = (events.first().map(Recorded::position), events.last().map(Recorded::position));
                processed += self.apply_batch(events, None, false).await?;
                debug!(processed, ?first, ?last, "applied live events");
            }
            Ok(())
        }
        .instrument(span)
        .await
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

    /// Waits until the view reflects every event up to `position` (read-your-writes).
    pub async fn wait_for(&self, position: Position, timeout: Duration) -> Result<(), ViewError> {
        let deadline = tokio::time::Instant::now() + timeout;
        loop {
            let checkpoint = self.progress().await?.checkpoint;
            if checkpoint.is_some_and(|c| c >= position) {
                return Ok(());
            }
            // Nothing the view reads lies between its checkpoint and `position`?
            let from = checkpoint.map_or(Position::ZERO, Position::next);
            let next = self
                .backend
                .events()
                .read(self.view.query(), ReadOptions::forwards().from(from).limit(1))
                .try_next()
                .await?;
            if next.is_none_or(|e| e.position > position) {
                return Ok(());
            }
            if tokio::time::Instant::now() >= deadline {
                return Err(ViewError::Timeout { view: V::NAME, position, timeout });
            }
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
    }

    /// Reads documents of the active version (this one once active, else the previous one)
    /// through `read`, in one snapshot-consistent transaction.
    pub async fn read<R, F>(&self, read: F) -> Result<R, ViewError>
    where
        R: Send + 'static,
        F: Fn(ViewTx) -> BoxFuture<'static, Result<R, ViewError>> + Send + Sync + 'static,
    {
        let (keys, backend, read) = (self.keys.clone(), self.backend.clone(), Arc::new(read));
        let out = Arc::new(std::sync::Mutex::new(None));
        let slot = out.clone();
        let body = move |tx: Arc<dyn DynTx>| -> BoxFuture<'static, Result<(), TxFailure>> {
            let (keys, slot, backend, read) = (keys.clone(), slot.clone(), backend.clone(), read.clone());
            async move {
                let active = tx.get(&keys.active).await?.and_then(|b| b.try_into().ok()).map(u32::from_be_bytes);
                let data = match active {
                    Some(version) if version != V::VERSION => Keys::new(backend.as_ref(), V::NAME, version).data,
                    _ => keys.data,
                };
                let view_tx = ViewTx { tx, data: data.as_slice().into(), applied: None };
                let value = read(view_tx).await.map_err(body_error)?;
                *slot.lock().expect("slot") = Some(value);
                Ok(())
            }
            .boxed()
        };
        self.backend.transact(&body).await?;
        let value = out.lock().expect("slot").take().expect("body ran");
        Ok(value)
    }
}

/// The stored checkpoint: the last position seen and how many events were applied.
async fn read_checkpoint(tx: &dyn DynTx, keys: &Keys) -> Result<(Option<Position>, u64), TxFailure> {
    let Some(bytes) = tx.get(&keys.checkpoint).await? else { return Ok((None, 0)) };
    let position = bytes.get(..POSITION_LEN).and_then(Position::from_bytes);
    let processed = bytes.get(POSITION_LEN..).and_then(|b| b.try_into().ok()).map_or(0, u64::from_be_bytes);
    Ok((position, processed))
}

/// Makes this version the active one and drops the data of the previous active version.
async fn activate(
    tx: &dyn DynTx,
    backend: &dyn Backend,
    keys: &Keys,
    name: &str,
    version: u32,
) -> Result<(), TxFailure> {
    let active = tx.get(&keys.active).await?.and_then(|b| b.try_into().ok()).map(u32::from_be_bytes);
    if active == Some(version) {
        return Ok(());
    }
    if let Some(old) = active {
        let old_root = Keys::new(backend, name, old).version_root;
        tx.clear_range(&old_root, &end_of(&old_root));
        info!(view = name, from = old, to = version, "view version switched; old data dropped");
    }
    tx.set(&keys.active, &version.to_be_bytes());
    Ok(())
}
