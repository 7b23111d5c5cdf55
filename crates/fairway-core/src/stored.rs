//! A stopped app's derived state, read straight from its store without its slices: which
//! views and automations it has, each view's versions with their checkpoints and the active
//! version's documents, each automation's queue and dead letters.
//!
//! The `fairway` tool uses it on a data directory. Names are found from the keys themselves
//! (the layout is in the `format` module), one key read per name, so a view's documents are
//! never scanned to list the views. Documents come back as data (their MessagePack decoded
//! as JSON), since the slices' types are not at hand.

use std::future::Future;
use std::sync::Arc;

use fairway_dcb::Position;
use serde_json::Value;

use crate::automation::{AutomationError, DeadLetter, queue};
use crate::backend::{Backend, DynTx, TxFailure};
use crate::format::{QueueKeys, ViewKeys, end_of};
use crate::view::{Page, ViewError, ViewTx, read_active, read_checkpoint};

/// One view found in a store.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredView {
    /// Its name.
    pub name: String,
    /// The version readers use, once one finished its first catch-up.
    pub active: Option<u32>,
    /// Every version holding a checkpoint or documents, oldest first.
    pub versions: Vec<StoredVersion>,
}

/// One version of a stored view.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct StoredVersion {
    /// The version number.
    pub version: u32,
    /// The last position its projector saw.
    pub checkpoint: Option<Position>,
    /// Events it applied.
    pub processed: u64,
}

/// One automation found in a store.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredAutomation {
    /// Its name.
    pub name: String,
    /// Jobs waiting or in progress.
    pub pending: usize,
    /// Jobs given up.
    pub dead_letters: usize,
}

/// The derived state kept in one store.
#[derive(Clone)]
pub struct StoredState {
    backend: Arc<dyn Backend>,
}

impl std::fmt::Debug for StoredState {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("StoredState").finish_non_exhaustive()
    }
}

impl StoredState {
    /// Reads the derived state kept in `backend`.
    pub fn new(backend: Arc<dyn Backend>) -> Self {
        StoredState { backend }
    }

    /// Every view with data in the store, by name.
    pub async fn views(&self) -> Result<Vec<StoredView>, ViewError> {
        let (family, backend) = (&family_prefix(self.backend.as_ref(), "view/"), self.backend.as_ref());
        let views = backend
            .transact(move |tx| async move {
                let mut views = Vec::new();
                for name in names(tx.as_ref(), family).await? {
                    views.push(read_view(tx.as_ref(), backend, name).await?);
                }
                Ok(views)
            })
            .await?;
        Ok(views)
    }

    /// Up to `limit` documents of view `name`'s active version whose key starts with
    /// `prefix`, after key `cursor`; `None` when the view has no active version.
    pub async fn view_page(
        &self,
        name: &str,
        prefix: &str,
        cursor: Option<&str>,
        limit: usize,
    ) -> Result<Option<Page<Value>>, ViewError> {
        self.read_active(name, move |tx| async move { tx.page::<Value>(prefix, cursor, limit).await }).await
    }

    /// Document `key` of view `name`'s active version; `None` when the view has no active
    /// version or no such document.
    pub async fn view_document(&self, name: &str, key: &str) -> Result<Option<Value>, ViewError> {
        let found = self.read_active(name, move |tx| async move { tx.get::<Value>(key).await }).await?;
        Ok(found.flatten())
    }

    /// Runs `read` on the documents of view `name`'s active version.
    async fn read_active<'b, R, F, Fut>(&'b self, name: &'b str, read: F) -> Result<Option<R>, ViewError>
    where
        R: Send + 'static,
        F: Fn(ViewTx) -> Fut + Send + Sync + 'b,
        Fut: Future<Output = Result<R, ViewError>> + Send + 'b,
    {
        let (backend, read) = (self.backend.as_ref(), &read);
        let value = backend
            .transact(move |tx| async move {
                let Some(active) = read_active(tx.as_ref(), &ViewKeys::new(backend, name, 0)).await? else {
                    return Ok(None);
                };
                let data = ViewKeys::new(backend, name, active).data;
                let value =
                    read(ViewTx::reading(tx, data.as_slice().into())).await.map_err(|e| TxFailure::Body(e.into()))?;
                Ok(Some(value))
            })
            .await?;
        Ok(value)
    }

    /// Every automation with a queue in the store, by name.
    pub async fn automations(&self) -> Result<Vec<StoredAutomation>, AutomationError> {
        let (family, backend) = (&family_prefix(self.backend.as_ref(), "automation/"), self.backend.as_ref());
        backend
            .transact(move |tx| async move {
                let mut found = Vec::new();
                for name in names(tx.as_ref(), family).await? {
                    let keys = QueueKeys::new(backend, &name);
                    let pending = queue::pending(tx.as_ref(), &keys).await?;
                    let dead_letters = queue::dead_letters(tx.as_ref(), &keys).await?.len();
                    found.push(StoredAutomation { name, pending, dead_letters });
                }
                Ok(found)
            })
            .await
            .map_err(AutomationError::from_tx)
    }

    /// The dead letters of automation `name`, oldest first.
    pub async fn dead_letters(&self, name: &str) -> Result<Vec<DeadLetter>, AutomationError> {
        let keys = &QueueKeys::new(self.backend.as_ref(), name);
        self.backend
            .transact(move |tx| async move { queue::dead_letters(tx.as_ref(), keys).await })
            .await
            .map_err(AutomationError::from_tx)
    }

    /// Moves the dead letter at `position` of automation `name` back to its queue with
    /// fresh attempts (run when the app starts again); `false` if there is none.
    pub async fn replay(&self, name: &str, position: Position) -> Result<bool, AutomationError> {
        let keys = &QueueKeys::new(self.backend.as_ref(), name);
        self.backend
            .transact(move |tx| async move { queue::replay(tx.as_ref(), keys, position).await })
            .await
            .map_err(AutomationError::from_tx)
    }

    /// Deletes every dead letter of automation `name`; returns how many.
    pub async fn purge(&self, name: &str) -> Result<usize, AutomationError> {
        let keys = &QueueKeys::new(self.backend.as_ref(), name);
        self.backend
            .transact(move |tx| async move { queue::purge(tx.as_ref(), keys).await })
            .await
            .map_err(AutomationError::from_tx)
    }
}

/// The bytes every keyspace of `family` starts with: `keyspace("view/x")` is this prefix,
/// then `x`, then `0x00`.
fn family_prefix(backend: &dyn Backend, family: &str) -> Vec<u8> {
    let mut prefix = backend.keyspace(family);
    prefix.pop();
    prefix
}

/// The names of the keyspaces under `family`, in order: one key read per name, each
/// skipping past everything the name holds.
async fn names(tx: &dyn DynTx, family: &[u8]) -> Result<Vec<String>, TxFailure> {
    let end = end_of(family);
    let mut begin = family.to_vec();
    let mut names = Vec::new();
    while let Some(first) = tx.scan(&begin, &end, 1).await?.into_iter().next() {
        let rest = &first.key[family.len()..];
        let Some(length) = rest.iter().position(|b| *b == 0) else { break };
        names.push(String::from_utf8_lossy(&rest[..length]).into_owned());
        begin = [family, &rest[..length], &[1]].concat();
    }
    Ok(names)
}

/// A view's active version and every version found under it, with their checkpoints.
async fn read_view(tx: &dyn DynTx, backend: &dyn Backend, name: String) -> Result<StoredView, TxFailure> {
    let keys = ViewKeys::new(backend, &name, 0);
    let active = read_active(tx, &keys).await?;
    let end = end_of(&keys.versions);
    let mut begin = keys.versions.clone();
    let mut versions = Vec::new();
    while let Some(first) = tx.scan(&begin, &end, 1).await?.into_iter().next() {
        let Some(version) = keys.version_of(&first.key) else { break };
        let (checkpoint, processed) = read_checkpoint(tx, &ViewKeys::new(backend, &name, version)).await?;
        versions.push(StoredVersion { version, checkpoint, processed });
        match version.checked_add(1) {
            Some(next) => begin = keys.version_start(next),
            None => break,
        }
    }
    Ok(StoredView { name, active, versions })
}
