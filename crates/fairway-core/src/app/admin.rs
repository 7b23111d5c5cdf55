//! The admin API under `/admin/api/`: the event log by query with a cursor, followed live
//! over server-sent events, and store facts. Views, progress and dead letters share the
//! public handlers (the `routes` module); every admin route sits behind
//! [`super::security`].

use std::convert::Infallible;
use std::sync::Arc;

use axum::Json;
use axum::extract::{RawQuery, State};
use axum::response::sse::{Event as SseEvent, KeepAlive, Sse};
use fairway_dcb::{EventStore, Position, Query, QueryItem, ReadOptions, SequencedEvent, Tag};
use futures::{Stream, StreamExt, TryStreamExt};
use serde_json::{Value, json};

use super::Shared;
use super::error::ApiError;
use super::params::NoParams;
use super::replies::{EventPage, StoreStats};

/// Events per page of `GET /admin/api/events` when `limit` is not given.
pub const DEFAULT_EVENT_LIMIT: usize = 100;
/// Most events per page of `GET /admin/api/events`.
pub const MAX_EVENT_LIMIT: usize = 10_000;

/// What a log read asks for: `type` (repeatable: any of them), `tag` (repeatable: all of
/// them), `from` (a position, inclusive), `backwards`, `limit`, `encoding`.
#[derive(Debug, Default)]
struct LogQuery {
    types: Vec<String>,
    tags: Vec<Tag>,
    from: Option<Position>,
    backwards: bool,
    limit: usize,
    encoding: Encoding,
}

/// How events show their payload and metadata.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
enum Encoding {
    /// `encoding=json` (the default): readable, see [`event_json`].
    #[default]
    Json,
    /// `encoding=base64`: the exact bytes, see [`event_json_exact`].
    Base64,
}

impl Encoding {
    fn show(self, event: &SequencedEvent) -> Value {
        match self {
            Encoding::Json => event_json(event),
            Encoding::Base64 => event_json_exact(event),
        }
    }
}

impl LogQuery {
    /// Parses the query string, refusing unknown parameters and malformed values by name.
    fn parse(raw: Option<&str>, allowed: &[&str]) -> Result<Self, ApiError> {
        let pairs: Vec<(String, String)> =
            serde_urlencoded::from_str(raw.unwrap_or("")).map_err(|e| ApiError::bad_request(e.to_string()))?;
        let mut query = LogQuery { limit: DEFAULT_EVENT_LIMIT, ..LogQuery::default() };
        let mut given: Vec<String> = Vec::new();
        for (name, value) in pairs {
            let bad = |why: String| ApiError::bad_request(format!("{name}: {why}"));
            match name.as_str() {
                _ if !allowed.contains(&name.as_str()) => {
                    return Err(bad(format!("unknown parameter; expected one of {}", allowed.join(", "))));
                }
                "from" | "backwards" | "limit" | "encoding" if given.contains(&name) => {
                    return Err(bad("given twice; give it once".into()));
                }
                "type" => query.types.push(value),
                "tag" => query.tags.push(Tag::parse(value).map_err(|e| bad(e.to_string()))?),
                "from" => query.from = Some(value.parse().map_err(|e: fairway_dcb::InvalidInput| bad(e.to_string()))?),
                "backwards" => {
                    query.backwards = value.parse().map_err(|_| bad(format!("is {value:?}; use true or false")))?
                }
                "limit" => {
                    query.limit = value
                        .parse()
                        .ok()
                        .filter(|n| (1..=MAX_EVENT_LIMIT).contains(n))
                        .ok_or_else(|| bad(format!("is {value:?}; it must be 1 to {MAX_EVENT_LIMIT}")))?;
                }
                "encoding" => {
                    query.encoding = match value.as_str() {
                        "json" => Encoding::Json,
                        "base64" => Encoding::Base64,
                        _ => return Err(bad(format!("is {value:?}; use json or base64"))),
                    }
                }
                _ => unreachable!("every allowed parameter is handled"),
            }
            given.push(name);
        }
        query.store_query().validate().map_err(|e| ApiError::bad_request(format!("type: {e}")))?;
        Ok(query)
    }

    fn store_query(&self) -> Query {
        if self.types.is_empty() && self.tags.is_empty() {
            return Query::all();
        }
        QueryItem::types(self.types.clone()).with_tags(self.tags.clone()).into()
    }
}

/// What every form of an event shows: position, type, tags, recording time, id.
fn event_facts(event: &SequencedEvent) -> Value {
    let raw = &event.event;
    let recorded_at_ms = event.recorded_at.duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_millis() as u64);
    json!({
        "position": event.position.to_string(),
        "type": raw.event_type,
        "tags": raw.tags.iter().map(Tag::as_str).collect::<Vec<_>>(),
        "recorded_at_ms": recorded_at_ms,
        "id": raw.id,
    })
}

/// One stored event with its exact bytes: `payload_b64` and `metadata_b64` (`null` when it
/// has none), standard base64 with padding.
pub fn event_json_exact(event: &SequencedEvent) -> Value {
    use base64::Engine as _;
    let base64 = base64::engine::general_purpose::STANDARD;
    let mut json = event_facts(event);
    json["payload_b64"] = base64.encode(&event.event.payload).into();
    json["metadata_b64"] = event.event.metadata.as_ref().map(|m| base64.encode(m)).into();
    json
}

/// One stored event as JSON: the payload decoded from MessagePack when it is MessagePack,
/// else as hex.
pub fn event_json(event: &SequencedEvent) -> Value {
    let raw = &event.event;
    let mut json = event_facts(event);
    match whole_msgpack(&raw.payload) {
        Some(payload) => json["payload"] = payload,
        None => json["payload_hex"] = hex(&raw.payload).into(),
    }
    if let Some(metadata) = &raw.metadata {
        json["metadata_hex"] = hex(metadata).into();
    }
    json
}

/// `bytes` as one MessagePack value and nothing after it; `None` for any other bytes (a
/// raw payload that merely starts like MessagePack included).
fn whole_msgpack(bytes: &[u8]) -> Option<Value> {
    let mut cursor = std::io::Cursor::new(bytes);
    let value: Value = rmp_serde::from_read(&mut cursor).ok()?;
    (cursor.position() == bytes.len() as u64).then_some(value)
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// `GET /admin/api/events`: one page of the log matching the query, and the cursor (a
/// position to pass as `from`) of the next page.
pub(super) async fn events(
    State(shared): State<Arc<Shared>>,
    RawQuery(raw): RawQuery,
) -> Result<Json<EventPage>, ApiError> {
    let query = LogQuery::parse(raw.as_deref(), &["type", "tag", "from", "backwards", "limit", "encoding"])?;
    let mut options = if query.backwards { ReadOptions::backwards() } else { ReadOptions::forwards() };
    if let Some(from) = query.from {
        options = options.from(from);
    }
    let read = shared.events.read_with_head(query.store_query(), options.limit(query.limit + 1)).await?;
    let mut page: Vec<SequencedEvent> = read.events.try_collect().await?;
    let next_cursor = (page.len() > query.limit).then(|| page.pop().map(|e| e.position)).flatten();
    let events = page.iter().map(|event| query.encoding.show(event)).collect();
    Ok(Json(EventPage { events, next_cursor, head: read.head }))
}

/// `GET /admin/api/events/follow`: every event matching the query from `from` (inclusive;
/// default: only new ones), then live, as server-sent events whose id is the position.
pub(super) async fn follow(
    State(shared): State<Arc<Shared>>,
    RawQuery(raw): RawQuery,
) -> Result<Sse<impl Stream<Item = Result<SseEvent, Infallible>>>, ApiError> {
    let query = LogQuery::parse(raw.as_deref(), &["type", "tag", "from", "encoding"])?;
    let after = match query.from {
        Some(from) if from == Position::ZERO => None,
        Some(from) => Some(from.prev()),
        None => shared.events.head().await?,
    };
    let encoding = query.encoding;
    let mut closing = shared.closing.subscribe();
    let closed = async move {
        let _ = closing.wait_for(|closing| *closing).await;
    };
    let stream = shared.events.subscribe(query.store_query(), after).take_until(closed).map(move |event| {
        Ok(match event {
            Ok(event) => {
                SseEvent::default().id(event.position.to_string()).json_data(encoding.show(&event)).unwrap_or_default()
            }
            Err(err) => SseEvent::default().event("error").data(err.to_string()),
        })
    });
    Ok(Sse::new(stream).keep_alive(KeepAlive::default()))
}

/// `GET /admin/api/stats`: namespace, head, event count, where the store lives and its
/// bytes on disk.
pub(super) async fn stats(State(shared): State<Arc<Shared>>, _: NoParams) -> Result<Json<StoreStats>, ApiError> {
    let head = shared.events.head().await?;
    let events = shared.events.count().await?;
    let data_dir = shared.facts.data_dir.clone();
    let bytes_on_disk = match data_dir.clone() {
        Some(dir) => tokio::task::spawn_blocking(move || fairway_dcb::EmbeddedEngine::bytes_on_disk(&dir)).await.ok(),
        None => None,
    };
    Ok(Json(StoreStats {
        namespace: shared.facts.namespace.clone(),
        head,
        events,
        data_dir,
        bytes_on_disk,
        views: Some(shared.views.len()),
        automations: Some(shared.automations.len()),
        commands: Some(shared.slices.commands.len()),
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn log_queries_name_what_is_wrong() {
        let all = ["type", "tag", "from", "backwards", "limit", "encoding"];
        let query = LogQuery::parse(Some("type=A&type=B&tag=course:c%201&backwards=true&limit=5"), &all).unwrap();
        assert_eq!(
            (query.types.len(), query.tags[0].as_str(), query.backwards, query.limit, query.encoding),
            (2, "course:c 1", true, 5, Encoding::Json)
        );
        assert_eq!(LogQuery::parse(Some("encoding=base64"), &all).unwrap().encoding, Encoding::Base64);
        let bad = [
            ("sort=x", "sort"),
            ("limit=0", "limit"),
            ("tag=nocolon", "tag"),
            ("from=zz", "from"),
            ("encoding=hex", "encoding"),
        ];
        for (raw, named) in bad {
            let err = LogQuery::parse(Some(raw), &all).unwrap_err();
            assert_eq!(err.status().as_u16(), 400, "{raw}");
            assert!(err.to_string().starts_with(named), "{raw}: {err}");
        }
        assert!(LogQuery::parse(Some("limit=5"), &["type", "tag", "from"]).is_err(), "follow takes no limit");
    }

    #[test]
    fn payloads_show_as_data_only_when_they_are_one_whole_messagepack_value() {
        let map = rmp_serde::to_vec_named(&serde_json::json!({ "id": "n1" })).unwrap();
        assert_eq!(whole_msgpack(&map), Some(serde_json::json!({ "id": "n1" })));
        assert_eq!(whole_msgpack(b"{}"), None, "`{{` is a MessagePack integer followed by more bytes");
        assert_eq!(whole_msgpack(&[map.as_slice(), b"x"].concat()), None);
        assert_eq!(hex(b"{}"), "7b7d");
    }

    #[test]
    fn the_exact_form_keeps_every_byte_in_base64() {
        let event = fairway_dcb::RawEvent::new("Raw", vec![0xc1, 0x00, 0xff]).with_metadata(b"m".to_vec());
        let stored = SequencedEvent { position: Position::new(3, 0, 1), recorded_at: std::time::UNIX_EPOCH, event };
        let exact = event_json_exact(&stored);
        assert_eq!((exact["payload_b64"].as_str(), exact["metadata_b64"].as_str()), (Some("wQD/"), Some("bQ==")));
        assert_eq!((exact["type"].as_str(), exact["recorded_at_ms"].as_u64()), (Some("Raw"), Some(0)));
        assert!(exact.get("payload").is_none() && exact.get("payload_hex").is_none(), "{exact}");
    }
}
