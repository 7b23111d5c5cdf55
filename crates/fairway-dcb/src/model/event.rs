//! Events: what is appended and what is read back.

use std::time::SystemTime;

use crate::model::{Position, Tag};

/// An event as the store holds it: a type, tags, an opaque payload, and optionally an id
/// and metadata. (Apps write typed events, `#[derive(fairway::Event)]`, which encode to
/// this.)
///
/// Tags form a set: duplicates are dropped and they are kept sorted.
#[derive(Clone, PartialEq, Eq, Debug)]
pub struct RawEvent {
    /// The event type, e.g. `StudentSubscribed`.
    pub event_type: String,
    /// The tags placing the event in consistency boundaries.
    pub tags: Vec<Tag>,
    /// The opaque payload.
    pub payload: Vec<u8>,
    /// An id for idempotent appends: re-appending a batch whose ids are stored returns the
    /// original positions and writes nothing.
    pub id: Option<String>,
    /// Opaque metadata (correlation ids, causation, ...).
    pub metadata: Option<Vec<u8>>,
}

impl RawEvent {
    /// An event of `event_type` carrying `payload`, with no tags.
    pub fn new(event_type: impl Into<String>, payload: impl Into<Vec<u8>>) -> Self {
        RawEvent { event_type: event_type.into(), tags: Vec::new(), payload: payload.into(), id: None, metadata: None }
    }

    /// Adds a tag.
    pub fn with_tag(mut self, tag: Tag) -> Self {
        if let Err(at) = self.tags.binary_search(&tag) {
            self.tags.insert(at, tag);
        }
        self
    }

    /// Adds several tags.
    pub fn with_tags(self, tags: impl IntoIterator<Item = Tag>) -> Self {
        tags.into_iter().fold(self, RawEvent::with_tag)
    }

    /// Sets the id used for idempotent appends.
    pub fn with_id(mut self, id: impl Into<String>) -> Self {
        self.id = Some(id.into());
        self
    }

    /// Sets the metadata.
    pub fn with_metadata(mut self, metadata: impl Into<Vec<u8>>) -> Self {
        self.metadata = Some(metadata.into());
        self
    }

    /// Whether the event carries `tag`.
    pub fn has_tag(&self, tag: &Tag) -> bool {
        self.tags.iter().any(|t| t == tag)
    }

    /// Sorts and deduplicates the tags (they may have been pushed directly).
    pub(crate) fn normalize(&mut self) {
        self.tags.sort();
        self.tags.dedup();
    }
}

/// An event read from the store, with where and when it was recorded.
#[derive(Clone, PartialEq, Eq, Debug)]
pub struct SequencedEvent {
    /// Its position in the log.
    pub position: Position,
    /// When the append that stored it was accepted (wall clock of the appending process).
    pub recorded_at: SystemTime,
    /// The event itself.
    pub event: RawEvent,
}
