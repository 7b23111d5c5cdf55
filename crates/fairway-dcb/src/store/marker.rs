//! Commit markers: how an append recognises its own earlier commit. An engine may report
//! a commit's result as unknown (FoundationDB's `commit_unknown_result`, 1021) when it did
//! land; the engine then runs the transaction again. Without a marker that run would see
//! its own events (a false condition failure) or write them twice. With one, it finds the
//! marker its landed run wrote and answers with that run's positions.

use std::time::{SystemTime, UNIX_EPOCH};

use crate::error::StorageError;
use crate::kv::{KvTransaction, VERSIONSTAMP_LEN, Versionstamp};
use crate::layout::{COMMIT_MARKER_MINUTES, Layout};

/// The marker of one append, the same in every run of its transaction.
pub(super) struct CommitMarker {
    key: Vec<u8>,
    expired: (Vec<u8>, Vec<u8>),
}

impl CommitMarker {
    /// A marker with a fresh random token, made now.
    pub(super) fn new(layout: &Layout) -> Self {
        let minute = SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| (d.as_secs() / 60) as u32);
        let token: [u8; 16] = rand::random();
        CommitMarker {
            key: layout.commit_marker_key(minute, &token),
            expired: layout.commit_markers_before(minute.saturating_sub(COMMIT_MARKER_MINUTES)),
        }
    }

    /// The versionstamp of this append's commit, if an earlier run of it landed.
    pub(super) async fn landed<T: KvTransaction>(&self, tx: &T) -> Result<Option<Versionstamp>, StorageError> {
        let Some(value) = tx.get(&self.key, false).await? else { return Ok(None) };
        let stamp: [u8; VERSIONSTAMP_LEN] = value.as_slice().try_into().map_err(|_| {
            StorageError::Corrupt(format!("a commit marker holds {} bytes, not a versionstamp", value.len()))
        })?;
        Ok(Some(Versionstamp(stamp)))
    }

    /// The marker's `(key length, value length)`, and the range of expired markers it clears
    /// counted as one more key, for the append's transaction size.
    pub(super) fn size(&self) -> (usize, usize) {
        (self.key.len() + self.expired.0.len() + self.expired.1.len(), VERSIONSTAMP_LEN)
    }

    /// Writes the marker (the commit's stamp filled in at commit) and clears expired ones.
    pub(super) fn write<T: KvTransaction>(&self, tx: &T) {
        tx.set_versionstamped_value(&self.key, vec![0; VERSIONSTAMP_LEN], 0);
        tx.clear_range(&self.expired.0, &self.expired.1);
    }
}
