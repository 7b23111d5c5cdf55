//! The stored format of decision-model snapshots: the key of a snapshot and its value (the
//! position folded up to, then the state as its model encodes it).

use fairway_dcb::{POSITION_LEN, Position, Query};

use crate::backend::Backend;

/// The keys of decision-model snapshots.
#[derive(Clone)]
pub(crate) struct SnapshotKeys {
    root: Vec<u8>,
}

impl SnapshotKeys {
    /// The snapshot keys of `backend`.
    pub(crate) fn new(backend: &dyn Backend) -> Self {
        SnapshotKeys { root: backend.keyspace("snapshot") }
    }

    /// The snapshot of command `command`'s model version `model_version` folded over
    /// `query`.
    /// The query is its SHA-256 over [`Query::stable_bytes`]: a fixed 32 bytes whatever the
    /// query's size, and a format that no change of `Debug` can move.
    pub(crate) fn snapshot(&self, command: &str, model_version: u32, query: &Query) -> Vec<u8> {
        use sha2::Digest;
        let query = sha2::Sha256::digest(query.stable_bytes());
        [self.root.as_slice(), command.as_bytes(), b"\0", &model_version.to_be_bytes(), query.as_slice()].concat()
    }
}

/// A stored snapshot: the position its state was folded up to (12 bytes), then the state
/// as its model encodes it.
pub(crate) fn encode_snapshot(position: Position, state: &[u8]) -> Vec<u8> {
    [position.to_bytes().as_slice(), state].concat()
}

/// The position and the encoded state of a stored snapshot.
pub(crate) fn decode_snapshot(bytes: &[u8]) -> Option<(Position, &[u8])> {
    let (position, state) = bytes.split_at_checked(POSITION_LEN)?;
    Some((Position::from_bytes(position)?, state))
}
