//! A stopped app's embedded store, opened directly from its data directory.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use fairway_core::stored::StoredState;
use fairway_dcb::{DcbStore, EmbeddedEngine, EmbeddedOptions, EmbeddedStore, StorageError};

use crate::error::{Error, Result};

/// The store of one namespace in a data directory, held by this process until dropped.
pub struct Local {
    store: EmbeddedStore,
    dir: PathBuf,
}

impl std::fmt::Debug for Local {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Local").field("dir", &self.dir).field("namespace", &self.namespace()).finish()
    }
}

impl Local {
    /// Opens the store in `dir`, which must hold one already (reads never create a store).
    pub fn open_existing(dir: &Path, namespace: &str) -> Result<Self> {
        if !dir.join(EmbeddedEngine::DATABASE_FILE).is_file() {
            return Err(Error::NoStore { dir: dir.to_path_buf(), file: EmbeddedEngine::DATABASE_FILE });
        }
        Local::open(dir, namespace)
    }

    /// Opens the store in `dir`, creating the directory and the store if needed.
    pub fn open(dir: &Path, namespace: &str) -> Result<Self> {
        let engine = EmbeddedEngine::open(dir, EmbeddedOptions::default()).map_err(|err| locked(dir, err))?;
        let store = DcbStore::new(Arc::new(engine), namespace)?;
        Ok(Local { store, dir: dir.to_path_buf() })
    }

    /// The event store.
    pub fn store(&self) -> &EmbeddedStore {
        &self.store
    }

    /// The views and automation queues the app left in the store.
    pub fn state(&self) -> StoredState {
        StoredState::new(Arc::new(self.store.clone()))
    }

    /// The data directory.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// The namespace.
    pub fn namespace(&self) -> &str {
        self.store.namespace()
    }

    /// Bytes of every file under the data directory.
    pub fn bytes_on_disk(&self) -> u64 {
        EmbeddedEngine::bytes_on_disk(&self.dir)
    }

    /// Closes the store: every acknowledged append is in the database, the directory is free
    /// for the app again.
    pub fn close(self) {
        self.store.engine().close();
    }
}

/// The error of opening `dir`: [`Error::Locked`] when another process holds the store.
fn locked(dir: &Path, err: StorageError) -> Error {
    match err {
        StorageError::Locked { .. } => Error::Locked { dir: dir.to_path_buf() },
        err => Error::Store(err.into()),
    }
}
