//! The stored format of views: the keys of a view version (documents, checkpoint, projector
//! lease, the active version) and the values of its checkpoint, its lease and the active
//! version.

use fairway_dcb::{POSITION_LEN, Position};

use crate::backend::Backend;

/// The keys of one view version.
#[derive(Clone)]
pub(crate) struct ViewKeys {
    /// Prefix of every version of the view.
    pub(crate) versions: Vec<u8>,
    /// Prefix of the version's documents.
    pub(crate) data: Vec<u8>,
    /// The version's checkpoint.
    pub(crate) checkpoint: Vec<u8>,
    /// The lease of the instance projecting the version.
    pub(crate) lease: Vec<u8>,
    /// Prefix of everything the version stores.
    pub(crate) version_root: Vec<u8>,
    /// The version readers use (shared by every version of the view).
    pub(crate) active: Vec<u8>,
}

impl ViewKeys {
    /// The keys of version `version` of view `name`.
    pub(crate) fn new(backend: &dyn Backend, name: &str, version: u32) -> Self {
        let root = backend.keyspace(&format!("view/{name}"));
        let versions = [root.as_slice(), b"v"].concat();
        let version_root = [versions.as_slice(), &version.to_be_bytes()].concat();
        ViewKeys {
            data: [version_root.as_slice(), b"d"].concat(),
            checkpoint: [version_root.as_slice(), b"c"].concat(),
            lease: [version_root.as_slice(), b"l"].concat(),
            active: [root.as_slice(), b"active"].concat(),
            version_root,
            versions,
        }
    }

    /// The version a key under [`ViewKeys::versions`] belongs to.
    pub(crate) fn version_of(&self, key: &[u8]) -> Option<u32> {
        let number = key.strip_prefix(self.versions.as_slice())?.get(..4)?;
        decode_version(number)
    }

    /// The first key of version `version` (to continue a scan of the versions there).
    pub(crate) fn version_start(&self, version: u32) -> Vec<u8> {
        [self.versions.as_slice(), &encode_version(version)].concat()
    }
}

/// The key of document `key` under a version's `data` prefix ([`ViewKeys::data`]).
pub(crate) fn document(data: &[u8], key: &str) -> Vec<u8> {
    [data, key.as_bytes()].concat()
}

/// A view version's checkpoint: the last position it has seen, and how many events it
/// applied.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Checkpoint {
    /// The last position seen.
    pub(crate) position: Position,
    /// Events applied.
    pub(crate) processed: u64,
}

impl Checkpoint {
    /// The stored value: the position (12 bytes), then the count (u64 BE).
    pub(crate) fn encode(&self) -> Vec<u8> {
        [self.position.to_bytes().as_slice(), &self.processed.to_be_bytes()].concat()
    }

    /// The checkpoint stored as `bytes`; a value holding the position alone (no count)
    /// counts 0 events applied.
    pub(crate) fn decode(bytes: &[u8]) -> Option<Self> {
        let position = Position::from_bytes(bytes.get(..POSITION_LEN)?)?;
        let processed = bytes.get(POSITION_LEN..).and_then(|b| b.try_into().ok()).map_or(0, u64::from_be_bytes);
        Some(Checkpoint { position, processed })
    }
}

/// The lease of the app instance projecting a view version.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Lease {
    /// When the lease ends: microseconds of the store's clock.
    pub(crate) until_micros: u64,
    /// The instance holding it.
    pub(crate) holder: String,
}

impl Lease {
    /// The stored value: the end (u64 BE), then the holder (UTF-8).
    pub(crate) fn encode(&self) -> Vec<u8> {
        [self.until_micros.to_be_bytes().as_slice(), self.holder.as_bytes()].concat()
    }

    /// The lease stored as `bytes`.
    pub(crate) fn decode(bytes: &[u8]) -> Option<Self> {
        let until_micros = u64::from_be_bytes(bytes.get(..8)?.try_into().ok()?);
        let holder = String::from_utf8(bytes.get(8..)?.to_vec()).ok()?;
        Some(Lease { until_micros, holder })
    }
}

/// A view version number as stored (in keys and as the active version): u32 BE.
pub(crate) fn encode_version(version: u32) -> [u8; 4] {
    version.to_be_bytes()
}

/// The version number stored as `bytes`.
pub(crate) fn decode_version(bytes: &[u8]) -> Option<u32> {
    bytes.try_into().ok().map(u32::from_be_bytes)
}
