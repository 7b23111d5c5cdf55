//! Decision-model snapshots: a command with a long history (an account's thousands of
//! movements) folds from its latest snapshot instead of the first event.
//!
//! A snapshot is keyed by (command name, model version, query) and holds the folded state
//! and the position of the last event folded into it. Positions become visible in order,
//! so every event the query matches at or before that position is in the state; the
//! command folds only later events and its append condition still starts after the last
//! event it knows. Bumping [`SnapshotModel::MODEL_VERSION`] ignores older snapshots (a
//! changed `State` or `evolve` never reads a stale one). Snapshots are a cache: a missing,
//! undecodable or failed snapshot only costs a full fold.

use std::sync::Arc;

use fairway_dcb::{Position, Query};
use serde::Serialize;
use serde::de::DeserializeOwned;
use tracing::{debug, warn};

use super::Command;
use crate::backend::Backend;
use crate::format::{SnapshotKeys, decode_snapshot, encode_snapshot};

/// Longest snapshot key; queries beyond it are not snapshotted.
const MAX_KEY_LEN: usize = 4_096;

/// A command whose decision model may be snapshotted. Register it with
/// `#[command(snapshots)]`, or run it with [`crate::CommandRunner::execute_with_snapshots`].
///
/// The state must depend only on the events the query matches and on input fields the
/// query is built from (the snapshot key is the query, not the whole input).
pub trait SnapshotModel: Command<State: Serialize + DeserializeOwned> {
    /// The version of `State` and `evolve`: bump it when either changes.
    const MODEL_VERSION: u32;
    /// Save a new snapshot once a fold read at least this many events past the last one.
    const SNAPSHOT_EVERY: usize = 100;
}

/// How a command's decision model is stored in a snapshot: built from its
/// [`SnapshotModel`] by `#[command(snapshots)]` (see [`Command::snapshot_codec`]).
pub struct SnapshotCodec<C: Command> {
    /// [`SnapshotModel::MODEL_VERSION`].
    pub(crate) model_version: u32,
    /// [`SnapshotModel::SNAPSHOT_EVERY`].
    pub(crate) every: usize,
    encode: fn(&C::State) -> Result<Vec<u8>, rmp_serde::encode::Error>,
    decode: fn(&[u8]) -> Result<C::State, rmp_serde::decode::Error>,
}

impl<C: SnapshotModel> SnapshotCodec<C> {
    /// The codec of `C`'s model.
    pub fn of() -> Self {
        SnapshotCodec {
            model_version: C::MODEL_VERSION,
            every: C::SNAPSHOT_EVERY,
            encode: |state| rmp_serde::to_vec_named(state),
            decode: |bytes| rmp_serde::from_slice(bytes),
        }
    }
}

/// Snapshots stored in the store's runtime keyspace.
#[derive(Clone)]
pub struct Snapshots {
    backend: Arc<dyn Backend>,
    keys: SnapshotKeys,
}

/// A loaded snapshot.
pub(crate) struct Loaded<S> {
    pub state: S,
    pub position: Position,
}

impl Snapshots {
    /// Snapshots in `backend`.
    pub fn new(backend: Arc<dyn Backend>) -> Self {
        let keys = SnapshotKeys::new(backend.as_ref());
        Snapshots { backend, keys }
    }

    fn key<C: Command>(&self, codec: &SnapshotCodec<C>, query: &Query) -> Option<Vec<u8>> {
        let key = self.keys.snapshot(C::NAME, codec.model_version, query);
        (key.len() <= MAX_KEY_LEN).then_some(key)
    }

    /// The latest snapshot of `C`'s model for `query`, if a usable one exists.
    pub(crate) async fn load<C: Command>(&self, codec: &SnapshotCodec<C>, query: &Query) -> Option<Loaded<C::State>> {
        let key = self.key(codec, query)?;
        let key = &key;
        let bytes = self.backend.transact(move |tx| async move { Ok(tx.get(key).await?) }).await;
        let bytes = match bytes {
            Ok(bytes) => bytes?,
            Err(err) => {
                warn!(command = C::NAME, %err, "snapshot read failed; folding from the start");
                return None;
            }
        };
        let (position, state) = decode_snapshot(&bytes)?;
        match (codec.decode)(state) {
            Ok(state) => Some(Loaded { state, position }),
            Err(err) => {
                warn!(command = C::NAME, %err, "snapshot undecodable; folding from the start");
                None
            }
        }
    }

    /// The key and value of a snapshot of `state` as folded up to `position`.
    pub(crate) fn encode<C: Command>(
        &self,
        codec: &SnapshotCodec<C>,
        query: &Query,
        state: &C::State,
        position: Position,
    ) -> Option<(Vec<u8>, Vec<u8>)> {
        let key = self.key(codec, query)?;
        match (codec.encode)(state) {
            Ok(encoded) => Some((key, encode_snapshot(position, &encoded))),
            Err(err) => {
                warn!(command = C::NAME, %err, "snapshot not encodable");
                None
            }
        }
    }

    /// Stores an encoded snapshot at `position`, unless a newer one is stored.
    pub(crate) async fn save<C: Command>(&self, key: Vec<u8>, value: Vec<u8>, position: Position) {
        let (key, value) = (&key, &value);
        let saved = self
            .backend
            .transact(move |tx| async move {
                let stored = tx.get(key).await?.as_deref().and_then(decode_snapshot).map(|(position, _)| position);
                if stored.is_none_or(|stored| stored < position) {
                    tx.set(key, value);
                }
                Ok(())
            })
            .await;
        match saved {
            Ok(()) => debug!(command = C::NAME, %position, "snapshot saved"),
            Err(err) => warn!(command = C::NAME, %err, "snapshot not saved"),
        }
    }
}
