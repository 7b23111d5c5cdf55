//! The export file: one JSON object per line, one line per event, in log order.
//!
//! ```json
//! {"position":"000000000000000300000000","recorded_at_ms":1767225600000,"type":"Noted","tags":["note:n1"],"id":null,"payload_b64":"gqJpZKJuMaR0ZXh0omhp","metadata_b64":null}
//! ```
//!
//! - `position`: where the event sat in the exported log (24 hex digits). Informative:
//!   `import` gives new positions, in the file's order.
//! - `recorded_at_ms`: when it was recorded, in milliseconds since the Unix epoch.
//!   Informative: the store stamps imported events with the time of the import.
//! - `type`, `tags` (`key:value` strings), `id` (the idempotency id, or `null`).
//! - `payload_b64`: the payload bytes, standard base64 with padding (RFC 4648).
//! - `metadata_b64`: the metadata bytes, base64 the same way, or `null` when there is none.
//!
//! The bytes are those stored, whether exported from a data directory or over HTTP (the
//! admin API's `encoding=base64` gives them exactly).
//!
//! `import` checks the whole file first (every line an event, positions increasing, ids
//! unique), then appends the events in the file's order, in batches.

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use fairway_dcb::{RawEvent, SequencedEvent, Tag};
use serde::{Deserialize, Serialize};
use serde_json::Value;

/// One exported event: one line of an export file.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ExportedEvent {
    /// Its position in the exported log.
    pub position: String,
    /// When it was recorded, in milliseconds since the Unix epoch.
    pub recorded_at_ms: u64,
    /// Its type.
    #[serde(rename = "type")]
    pub event_type: String,
    /// Its tags, `key:value`.
    pub tags: Vec<String>,
    /// Its idempotency id.
    #[serde(default)]
    pub id: Option<String>,
    /// Its payload, base64.
    pub payload_b64: String,
    /// Its metadata, base64.
    #[serde(default)]
    pub metadata_b64: Option<String>,
}

impl ExportedEvent {
    /// The line of a stored event: its exact bytes.
    pub fn from_stored(stored: &SequencedEvent) -> Self {
        let event = &stored.event;
        let recorded_at_ms =
            stored.recorded_at.duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_millis() as u64);
        ExportedEvent {
            position: stored.position.to_string(),
            recorded_at_ms,
            event_type: event.event_type.clone(),
            tags: event.tags.iter().map(|t| t.as_str().to_owned()).collect(),
            id: event.id.clone(),
            payload_b64: STANDARD.encode(&event.payload),
            metadata_b64: event.metadata.as_ref().map(|m| STANDARD.encode(m)),
        }
    }

    /// The line of an event as the admin API shows it with `encoding=base64`
    /// (`payload_b64`, `metadata_b64`: the exact bytes).
    pub fn from_api(event: &Value) -> Result<Self, String> {
        let text = |field: &str| event.get(field).and_then(Value::as_str).ok_or_else(|| format!("no {field:?}"));
        let payload = STANDARD.decode(text("payload_b64")?).map_err(|e| format!("payload_b64: {e}"))?;
        let metadata = match event.get("metadata_b64") {
            Some(Value::String(encoded)) => Some(STANDARD.decode(encoded).map_err(|e| format!("metadata_b64: {e}"))?),
            None | Some(Value::Null) => None,
            Some(other) => return Err(format!("metadata_b64 is {other}")),
        };
        let tags = match event.get("tags") {
            Some(Value::Array(tags)) => {
                tags.iter().map(|t| t.as_str().map(str::to_owned).ok_or("a tag is not a string")).collect()
            }
            _ => Err("no \"tags\""),
        }?;
        Ok(ExportedEvent {
            position: text("position")?.to_owned(),
            recorded_at_ms: event.get("recorded_at_ms").and_then(Value::as_u64).ok_or("no \"recorded_at_ms\"")?,
            event_type: text("type")?.to_owned(),
            tags,
            id: event.get("id").and_then(Value::as_str).map(str::to_owned),
            payload_b64: STANDARD.encode(payload),
            metadata_b64: metadata.map(|m| STANDARD.encode(m)),
        })
    }

    /// The event to append: type, tags, payload, id and metadata as exported.
    pub fn to_event(&self) -> Result<RawEvent, String> {
        let payload = STANDARD.decode(&self.payload_b64).map_err(|e| format!("payload_b64: {e}"))?;
        let mut event = RawEvent::new(self.event_type.clone(), payload);
        for tag in &self.tags {
            event = event.with_tag(Tag::parse(tag.as_str()).map_err(|e| e.to_string())?);
        }
        if let Some(id) = &self.id {
            event = event.with_id(id.clone());
        }
        if let Some(metadata) = &self.metadata_b64 {
            event = event.with_metadata(STANDARD.decode(metadata).map_err(|e| format!("metadata_b64: {e}"))?);
        }
        Ok(event)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use fairway_dcb::Position;
    use serde_json::json;

    #[test]
    fn stored_events_round_trip_through_a_line() {
        let event = RawEvent::new("Raw", vec![0xc1, 0, 255])
            .with_tag(Tag::parse("k:v").unwrap())
            .with_id("id-1")
            .with_metadata(b"meta".to_vec());
        let stored = SequencedEvent {
            position: Position::new(3, 0, 1),
            recorded_at: std::time::UNIX_EPOCH + std::time::Duration::from_millis(1234),
            event: event.clone(),
        };
        let line = ExportedEvent::from_stored(&stored);
        let text = serde_json::to_string(&line).unwrap();
        assert_eq!(
            text,
            r#"{"position":"000000000000000300000001","recorded_at_ms":1234,"type":"Raw","tags":["k:v"],"id":"id-1","payload_b64":"wQD/","metadata_b64":"bWV0YQ=="}"#
        );
        let back: ExportedEvent = serde_json::from_str(&text).unwrap();
        assert_eq!(back.to_event().unwrap(), event);
    }

    #[test]
    fn api_events_in_their_exact_form_become_the_stored_lines() {
        let event = RawEvent::new("Raw", vec![0xc1, 0xff]).with_tag(Tag::parse("a:b").unwrap()).with_metadata(vec![0]);
        let stored = SequencedEvent { position: Position::new(3, 0, 1), recorded_at: std::time::UNIX_EPOCH, event };
        let api = fairway_core::app::admin::event_json_exact(&stored);
        assert_eq!(ExportedEvent::from_api(&api).unwrap(), ExportedEvent::from_stored(&stored));

        let plain = RawEvent::new("T", rmp_serde::to_vec(&json!({"a": 1})).unwrap()).with_id("x");
        let stored = SequencedEvent { event: plain, ..stored };
        let line = ExportedEvent::from_api(&fairway_core::app::admin::event_json_exact(&stored)).unwrap();
        assert_eq!(line.to_event().unwrap(), stored.event, "no metadata stays none");
        let readable = fairway_core::app::admin::event_json(&stored);
        assert!(
            ExportedEvent::from_api(&readable).unwrap_err().contains("payload_b64"),
            "the readable form is refused"
        );
        assert!(ExportedEvent::from_api(&json!({"position": "p"})).is_err());
    }
}
