//! Typed domain events on top of the DCB store's raw events.

use std::collections::BTreeMap;

use fairway_dcb::{InvalidInput, Position, Query, QueryItem, SequencedEvent, Tag};
use serde::Serialize;
use serde::de::DeserializeOwned;

/// A domain event: a Rust type with a stable name and tags, stored as a MessagePack map.
///
/// Usually derived with `#[derive(fairway::Event)]`.
pub trait Event: Serialize + DeserializeOwned + Send + Sync + 'static {
    /// The stable type name stored with every event (never change it once events exist).
    const NAME: &'static str;

    /// The tags placing this event in consistency boundaries.
    fn tags(&self) -> Result<Vec<Tag>, InvalidInput>;

    /// The raw event to append: name, tags and the payload encoded as a map of named fields.
    fn to_raw(&self) -> Result<fairway_dcb::RawEvent, EventError> {
        let payload = rmp_serde::to_vec_named(self)
            .map_err(|e| EventError::Encode { name: Self::NAME, reason: e.to_string() })?;
        Ok(fairway_dcb::RawEvent::new(Self::NAME, payload).with_tags(self.tags()?))
    }

    /// Decodes `event` if it is of this type; `None` for other types.
    fn from_raw(event: &fairway_dcb::RawEvent) -> Option<Result<Self, EventError>> {
        (event.event_type == Self::NAME).then(|| Self::from_payload(&event.payload))
    }

    /// Decodes a stored payload of this type.
    fn from_payload(payload: &[u8]) -> Result<Self, EventError> {
        rmp_serde::from_slice(payload).map_err(|e| EventError::Decode { name: Self::NAME, reason: e.to_string() })
    }
}

/// The closed set of event types a slice reads, decoded into one value: usually an enum
/// whose variants each wrap one event type, with `#[derive(fairway::EventSet)]`; every
/// [`Event`] is also a set of one.
///
/// The set names its types, so queries are built from it ([`EventSet::query`],
/// [`EventSet::tagged`]) without listing names again, and an event whose type is not in
/// the set is never decoded.
///
/// See the `fairway` crate's documentation for an example.
pub trait EventSet: Sized + Send + 'static {
    /// The stored type names of the set's events.
    const TYPES: &'static [&'static str];

    /// Decodes `event` if its type is in the set; `None` (without decoding) otherwise.
    fn decode(event: &fairway_dcb::RawEvent) -> Option<Result<Self, EventError>>;

    /// A query item matching every type of the set.
    fn item() -> QueryItem {
        QueryItem::types(Self::TYPES.iter().copied())
    }

    /// A query item matching every type of the set carrying all of `tags`: one consistency
    /// boundary.
    fn tagged(tags: impl IntoIterator<Item = Tag>) -> QueryItem {
        Self::item().with_tags(tags)
    }

    /// A query for every event of the set.
    fn query() -> Query {
        Self::item().into()
    }
}

impl<E: Event> EventSet for E {
    const TYPES: &'static [&'static str] = &[E::NAME];

    fn decode(event: &fairway_dcb::RawEvent) -> Option<Result<Self, EventError>> {
        E::from_raw(event)
    }
}

/// Failures turning typed events into stored ones and back.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum EventError {
    /// A tag value is not a valid tag.
    #[error("invalid tag: {0}")]
    Tag(#[from] InvalidInput),
    /// The payload could not be encoded.
    #[error("cannot encode {name}: {reason}")]
    Encode {
        /// The event type.
        name: &'static str,
        /// Why.
        reason: String,
    },
    /// A stored payload does not decode into the type.
    #[error("cannot decode {name}: {reason}")]
    Decode {
        /// The event type.
        name: &'static str,
        /// Why.
        reason: String,
    },
}

/// A stored event that does not decode into the type its reader expects: a fault of the
/// server (the event type evolved incompatibly), not of the request that read it.
#[derive(Debug, thiserror::Error)]
#[error("stored event {event_type} at position {position} does not decode: {source}")]
pub struct UndecodableEvent {
    /// The stored event type.
    pub event_type: String,
    /// Where it is stored.
    pub position: Position,
    /// Why it does not decode.
    #[source]
    pub source: EventError,
}

impl UndecodableEvent {
    /// The failure of folding `event` with `source`.
    pub fn new(event: &Recorded, source: EventError) -> Self {
        UndecodableEvent { event_type: event.event_type().to_owned(), position: event.position(), source }
    }
}

/// A registered event type (submitted by `#[derive(Event)]`).
#[derive(Debug)]
pub struct EventType {
    /// The stored name.
    pub name: &'static str,
    /// The Rust type, for error messages.
    pub rust_type: &'static str,
}

inventory::collect!(EventType);

/// Two Rust types registered under one event name.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("event name {name:?} is used by both {first} and {second}")]
pub struct DuplicateEventName {
    /// The shared name.
    pub name: &'static str,
    /// One type.
    pub first: &'static str,
    /// The other.
    pub second: &'static str,
}

/// Every registered event type, by name; an error names two types sharing a name.
pub fn registered_event_types() -> Result<BTreeMap<&'static str, &'static str>, DuplicateEventName> {
    check_unique(inventory::iter::<EventType>.into_iter().map(|t| (t.name, t.rust_type)))
}

/// Checks that every name appears once.
pub fn check_unique(
    types: impl IntoIterator<Item = (&'static str, &'static str)>,
) -> Result<BTreeMap<&'static str, &'static str>, DuplicateEventName> {
    let mut seen = BTreeMap::new();
    for (name, rust_type) in types {
        if let Some(first) = seen.insert(name, rust_type)
            && first != rust_type
        {
            let (first, second) = if first < rust_type { (first, rust_type) } else { (rust_type, first) };
            return Err(DuplicateEventName { name, first, second });
        }
    }
    Ok(seen)
}

/// An event read from the store, handed to `evolve`: typed access plus position and time.
#[derive(Clone, Debug)]
pub struct Recorded {
    inner: SequencedEvent,
}

impl Recorded {
    /// Wraps a stored event.
    pub fn new(inner: SequencedEvent) -> Self {
        Recorded { inner }
    }

    /// Its position in the log.
    pub fn position(&self) -> Position {
        self.inner.position
    }

    /// When it was recorded.
    pub fn recorded_at(&self) -> std::time::SystemTime {
        self.inner.recorded_at
    }

    /// Its type name.
    pub fn event_type(&self) -> &str {
        &self.inner.event.event_type
    }

    /// Its tags.
    pub fn tags(&self) -> &[Tag] {
        &self.inner.event.tags
    }

    /// Decodes it as `E` if it is of that type. A payload that no longer decodes is a bug
    /// in the event's evolution (use `#[serde(default)]` for new fields) and is reported.
    pub fn as_event<E: Event>(&self) -> Option<Result<E, EventError>> {
        E::from_raw(&self.inner.event)
    }

    /// Decodes it into the set `S` if its type is in the set; a payload that does not
    /// decode is an [`UndecodableEvent`] naming the type and position.
    pub fn decode<S: EventSet>(&self) -> Option<Result<S, UndecodableEvent>> {
        S::decode(&self.inner.event).map(|decoded| decoded.map_err(|source| UndecodableEvent::new(self, source)))
    }

    /// The raw stored event.
    pub fn raw(&self) -> &SequencedEvent {
        &self.inner
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn duplicate_names_are_refused_naming_both_types() {
        assert!(check_unique([("A", "x::A"), ("B", "x::B")]).is_ok());
        let err = check_unique([("A", "x::A"), ("A", "y::A")]).unwrap_err();
        assert_eq!(err, DuplicateEventName { name: "A", first: "x::A", second: "y::A" });
        assert!(err.to_string().contains("x::A") && err.to_string().contains("y::A"));
    }
}
