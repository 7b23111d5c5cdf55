//! A stopped app's derived state, read straight from its store without its slices: which
//! views and automations it has, each view's versions with their checkpoints and the active
//! version's documents, each automation's queue and dead letters.
//!
//! The `fairway` tool uses it on a data directory. Names are found from the keys themselves
//! (the layout is in the `keys` module), one key read per name, so a view's documents are
//! never scanned to list the views. Documents come back as data (their MessagePack decoded
//! as JSON), since the slices' types are not at hand.

use std::sync::Arc;

use fairway_dcb::Position;
use futures::FutureExt;
use serde_json::Value;

use crate::automation::{AutomationError, DeadLetter, queue, transact};
use crate::backend::{Backend, DynTx, TxFailure, transact_value};
use crate::keys::{QueueKeys, ViewKeys, end_of};
use crate::view::{Page, ViewError, ViewTx, read_checkpoint};

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
        let family = family_prefix(self.backend.as_ref(), "view/");
        let backend = self.backend.clone();
        let views = transact_value(self.backend.as_ref(), move |tx| {
            let (family, backend) = (family.clone(), backend.clone());
            async move {
                let mut views = Vec::new();
                for name in names(tx.as_ref(), &family).await? {
                    views.push(read_view(tx.as_ref(), backend.as_ref(), name).await?);
                }
                Ok(views)
            }
            .boxed()
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
        let (prefix, cursor) = (prefix.to_owned(), cursor.map(str::to_owned));
        self.read_active(name, move |tx| {
            let (prefix, cursor) = (prefix.clone(), cursor.clone());
            async move { tx.page::<Value>(&prefix, cursor.as_deref(), limit).await }.boxed()
        })
        .await
    }

    /// Document `key` of view `name`'s active version; `None` when the view has no active
    /// version or no such document.
    pub async fn view_document(&self, name: &str, key: &str) -> Result<Option<Value>, ViewError> {
        let key = key.to_owned();
        let found = self
            .read_active(name, move |tx| {
                let key = key.clone();
                async move { tx.get::<Value>(&key).await }.boxed()
            })
            .await?;
        Ok(found.flatten())
    }

    /// Runs `read` on the documents of view `name`'s active version.
    async fn read_active<R: Send + 'static>(
        &self,
        name: &str,
        read: impl Fn(ViewTx) -> futures::future::BoxFuture<'static, Result<R, ViewError>> + Send + Sync + 'static,
    ) -> Result<Option<R>, ViewError> {
        let (backend, name, read) = (self.backend.clone(), name.to_owned(), Arc::new(read));
        let value = transact_value(self.backend.as_ref(), move |tx| {
            let (backend, name, read) = (backend.clone(), name.clone(), read.clone());
            async move {
                let Some(active) = active_version(tx.as_ref(), backend.as_ref(), &name).await? else {
                    return Ok(None);
                };
                let data = ViewKeys::new(backend.as_ref(), &name, active).data;
                let value =
                    read(ViewTx::reading(tx, data.as_slice().into())).await.map_err(|e| TxFailure::Body(e.into()))?;
                Ok(Some(value))
            }
            .boxed()
        })
        .await?;
        Ok(value)
    }

    /// Every automation with a queue in the store, by name.
    pub async fn automations(&self) -> Result<Vec<StoredAutomation>, AutomationError> {
        let family = family_prefix(self.backend.as_ref(), "automation/");
        let backend = self.backend.clone();
        transact(self.backend.as_ref(), move |tx| {
            let (family, backend) = (family.clone(), backend.clone());
            async move {
                let mut found = Vec::new();
                for name in names(tx.as_ref(), &family).await? {
                    let keys = QueueKeys::new(backend.as_ref(), &name);
                    let pending = queue::pending(tx.as_ref(), &keys).await?;
                    let dead_letters = queue::dead_letters(tx.as_ref(), &keys).await?.len();
                    found.push(StoredAutomation { name, pending, dead_letters });
                }
                Ok(found)
            }
            .boxed()
        })
        .await
    }

    /// The dead letters of automation `name`, oldest first.
    pub async fn dead_letters(&self, name: &str) -> Result<Vec<DeadLetter>, AutomationError> {
        let keys = QueueKeys::new(self.backend.as_ref(), name);
        self.on_queue(keys, |tx, keys| async move { queue::dead_letters(tx.as_ref(), &keys).await }.boxed()).await
    }

    /// Moves the dead letter at `position` of automation `name` back to its queue with
    /// fresh attempts (run when the app starts again); `false` if there is none.
    pub async fn replay(&self, name: &str, position: Position) -> Result<bool, AutomationError> {
        let keys = QueueKeys::new(self.backend.as_ref(), name);
        self.on_queue(keys, move |tx, keys| async move { queue::replay(tx.as_ref(), &keys, position).await }.boxed())
            .await
    }

    /// Deletes every dead letter of automation `name`; returns how many.
    pub async fn purge(&self, name: &str) -> Result<usize, AutomationError> {
        let keys = QueueKeys::new(self.backend.as_ref(), name);
        self.on_queue(keys, |tx, keys| async move { queue::purge(tx.as_ref(), &keys).await }.boxed()).await
    }

    async fn on_queue<R: Send + 'static>(
        &self,
        keys: QueueKeys,
        op: impl Fn(Arc<dyn DynTx>, QueueKeys) -> futures::future::BoxFuture<'static, Result<R, TxFailure>> + Send + Sync,
    ) -> Result<R, AutomationError> {
        transact(self.backend.as_ref(), |tx| op(tx, keys.clone())).await
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

async fn active_version(tx: &dyn DynTx, backend: &dyn Backend, name: &str) -> Result<Option<u32>, TxFailure> {
    let active = ViewKeys::new(backend, name, 0).active;
    Ok(tx.get(&active).await?.and_then(|b| b.try_into().ok()).map(u32::from_be_bytes))
}

/// A view's active version and every version found under it, with their checkpoints.
async fn read_view(tx: &dyn DynTx, backend: &dyn Backend, name: String) -> Result<StoredView, TxFailure> {
    let active = active_version(tx, backend, &name).await?;
    let root = ViewKeys::new(backend, &name, 0).version_root;
    let versions_prefix = &root[..root.len() - 4];
    let end = end_of(versions_prefix);
    let mut begin = versions_prefix.to_vec();
    let mut versions = Vec::new();
    while let Some(first) = tx.scan(&begin, &end, 1).await?.into_iter().next() {
        let Some(number) = first.key.get(versions_prefix.len()..versions_prefix.len() + 4) else { break };
        let version = u32::from_be_bytes(number.try_into().expect("4 bytes"));
        let (checkpoint, processed) = read_checkpoint(tx, &ViewKeys::new(backend, &name, version)).await?;
        versions.push(StoredVersion { version, checkpoint, processed });
        match version.checked_add(1) {
            Some(next) => begin = [versions_prefix, &next.to_be_bytes()].concat(),
            None => break,
        }
    }
    Ok(StoredView { name, active, versions })
}
