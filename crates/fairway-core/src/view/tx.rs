//! [`ViewTx`]: a view's documents inside one transaction, as the projector applies an event
//! or a reader reads.

use std::sync::Arc;

use fairway_dcb::Position;
use serde::Serialize;
use serde::de::DeserializeOwned;

use super::ViewError;
use crate::backend::DynTx;
use crate::event::Recorded;
use crate::format::{document, end_of};

/// The most bytes a view document may take encoded (MessagePack): inside FoundationDB's
/// 100 kB value limit, the same on every engine.
pub const MAX_DOCUMENT_BYTES: usize = 90 * 1024;
/// The most bytes a view document's key may hold (FoundationDB keys stop at 10 kB with
/// every prefix included).
pub const MAX_DOCUMENT_KEY_BYTES: usize = 1024;

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

impl ViewTx {
    /// Documents under the `data` prefix, while applying event `index` of `batch`.
    pub(super) fn applying(tx: Arc<dyn DynTx>, data: Arc<[u8]>, batch: Arc<Vec<Recorded>>, index: usize) -> Self {
        ViewTx { tx, data, applied: Some(Applied { batch, index }) }
    }

    /// Documents under the `data` prefix, for a read.
    pub(crate) fn reading(tx: Arc<dyn DynTx>, data: Arc<[u8]>) -> Self {
        ViewTx { tx, data, applied: None }
    }

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
        document(&self.data, key)
    }

    /// Reads a document.
    pub async fn get<T: DeserializeOwned>(&self, key: &str) -> Result<Option<T>, ViewError> {
        let Some(bytes) = self.tx.get(&self.key(key)).await? else { return Ok(None) };
        decode(key, &bytes).map(Some)
    }

    /// Writes a document. Its key may hold at most [`MAX_DOCUMENT_KEY_BYTES`] bytes and its
    /// MessagePack encoding at most [`MAX_DOCUMENT_BYTES`]; a larger one is refused with an
    /// error naming the limit, and nothing is written.
    pub fn put<T: Serialize>(&self, key: &str, doc: &T) -> Result<(), ViewError> {
        let refuse = |reason: String| ViewError::Document { key: key.chars().take(64).collect(), reason };
        if key.len() > MAX_DOCUMENT_KEY_BYTES {
            return Err(refuse(format!("key of {} bytes; the limit is {MAX_DOCUMENT_KEY_BYTES} bytes", key.len())));
        }
        let bytes = rmp_serde::to_vec_named(doc).map_err(|e| refuse(e.to_string()))?;
        if bytes.len() > MAX_DOCUMENT_BYTES {
            return Err(refuse(format!(
                "document of {} bytes encoded; the limit is {MAX_DOCUMENT_BYTES} bytes",
                bytes.len()
            )));
        }
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

    /// Up to `limit` documents whose key starts with `prefix`, in key order, after the key
    /// `cursor` when given; the cursor of the next page when more documents follow.
    pub async fn page<T: DeserializeOwned>(
        &self,
        prefix: &str,
        cursor: Option<&str>,
        limit: usize,
    ) -> Result<Page<T>, ViewError> {
        let first = self.key(prefix);
        let begin = match cursor {
            Some(cursor) => first.clone().max([self.key(cursor).as_slice(), &[0]].concat()),
            None => first.clone(),
        };
        let end = end_of(&first);
        if begin >= end || limit == 0 {
            return Ok(Page { documents: Vec::new(), next_cursor: None });
        }
        let mut pairs = self.tx.scan(&begin, &end, limit.saturating_add(1)).await?;
        let more = pairs.len() > limit;
        pairs.truncate(limit);
        let documents = pairs
            .into_iter()
            .map(|kv| {
                let key = String::from_utf8_lossy(&kv.key[self.data.len()..]).into_owned();
                let doc = decode(&key, &kv.value)?;
                Ok(Document { key, doc })
            })
            .collect::<Result<Vec<_>, ViewError>>()?;
        let next_cursor = if more { documents.last().map(|d| d.key.clone()) } else { None };
        Ok(Page { documents, next_cursor })
    }
}

/// One document of a view.
#[derive(Debug, Clone, PartialEq, Serialize, serde::Deserialize)]
pub struct Document<T> {
    /// Its key.
    pub key: String,
    /// The document.
    pub doc: T,
}

/// A page of a view's documents in key order.
#[derive(Debug, Clone, PartialEq, Serialize, serde::Deserialize)]
pub struct Page<T> {
    /// The documents.
    pub documents: Vec<Document<T>>,
    /// Pass it as `cursor` for the next page; `None` on the last page.
    pub next_cursor: Option<String>,
}

fn decode<T: DeserializeOwned>(key: &str, bytes: &[u8]) -> Result<T, ViewError> {
    rmp_serde::from_slice(bytes).map_err(|e| ViewError::Document { key: key.into(), reason: e.to_string() })
}
