//! What the app answers on its status and admin routes, as types: the app writes them and the
//! `fairway` tool (and any client in Rust) reads them back, so the two cannot drift apart.
//! Positions are [`Position`]s in Rust and their 24-hex-digit text on the wire.

/// What `POST /commands/<name>` answers when the command ran.
pub use crate::command::CommandReply;
use std::path::PathBuf;

use fairway_dcb::Position;
use serde::{Deserialize, Serialize};

/// `GET /progress`: every view's projector.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ProgressReply {
    /// One entry per view, by name.
    pub views: Vec<ViewProgress>,
}

/// One view's projector, in a [`ProgressReply`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ViewProgress {
    /// The view's name.
    pub name: String,
    /// The version this instance projects.
    pub version: u32,
    /// Whether readers use this version.
    pub active: bool,
    /// The last position processed, if any.
    pub checkpoint: Option<Position>,
    /// Events applied so far.
    pub processed: u64,
    /// Events still to apply, counted up to a cap.
    pub remaining: u64,
    /// Whether `remaining` stopped at the cap (there are more).
    pub remaining_capped: bool,
    /// `processed + remaining`.
    pub total: u64,
    /// The app instance projecting this version (holding its lease), if one does; absent
    /// from the JSON then.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub holder: Option<String>,
}

/// `GET /automations`: every automation's queue.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AutomationsReply {
    /// One entry per automation, by name.
    pub automations: Vec<AutomationStatus>,
}

/// One automation's queue, in an [`AutomationsReply`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AutomationStatus {
    /// The automation's name.
    pub name: String,
    /// Workers this instance runs.
    pub workers: usize,
    /// Jobs waiting or running.
    pub pending: usize,
    /// Jobs a worker holds a lease on.
    pub leased: usize,
    /// Jobs that gave up.
    pub dead_letters: usize,
}

/// `GET /admin/api/stats`: the store's facts. The `fairway` tool prints the same for a data
/// directory, without the slice counts (`None`, left out of the JSON).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct StoreStats {
    /// The store's namespace.
    pub namespace: String,
    /// The last event's position; `None` for an empty log.
    pub head: Option<Position>,
    /// Events in the log.
    pub events: u64,
    /// The data directory of the embedded store; `None` on FoundationDB.
    pub data_dir: Option<PathBuf>,
    /// Bytes the data directory holds, if known.
    pub bytes_on_disk: Option<u64>,
    /// Views the app runs.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub views: Option<usize>,
    /// Automations the app runs.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub automations: Option<usize>,
    /// Commands the app serves.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub commands: Option<usize>,
}

/// `GET /admin/api/events`: one page of the log. Each event is shown in the requested
/// encoding (a JSON object: `position`, `type`, `tags`, `recorded_at_ms`, `id`, and the
/// payload decoded or as exact base64 bytes).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct EventPage<E = serde_json::Value> {
    /// The events, in the order read.
    pub events: Vec<E>,
    /// Pass it as `from` for the next page; `None` on the last page.
    pub next_cursor: Option<Position>,
    /// The log's head when the page was read.
    pub head: Option<Position>,
}

/// `POST /automations/<name>/dead-letters/<position>/replay`: the job queued again.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Replayed {
    /// The position of the event whose job was queued again.
    pub replayed: Position,
}

/// `DELETE /automations/<name>/dead-letters`: how many dead letters were removed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Purged {
    /// Dead letters removed.
    pub purged: usize,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn progress_travels_as_the_documented_json_and_back() {
        let reply = ProgressReply {
            views: vec![ViewProgress {
                name: "courses".into(),
                version: 2,
                active: true,
                checkpoint: Some(Position::new(3, 0, 1)),
                processed: 5,
                remaining: 0,
                remaining_capped: false,
                total: 5,
                holder: Some("4242-0a0b0c0d".into()),
            }],
        };
        let json = serde_json::to_value(&reply).unwrap();
        assert_eq!(
            json,
            serde_json::json!({ "views": [{
                "name": "courses", "version": 2, "active": true, "checkpoint": "000000000000000300000001",
                "processed": 5, "remaining": 0, "remaining_capped": false, "total": 5, "holder": "4242-0a0b0c0d",
            }] })
        );
        assert_eq!(serde_json::from_value::<ProgressReply>(json).unwrap(), reply);
        let none = serde_json::json!({ "views": [{
            "name": "v", "version": 1, "active": false, "checkpoint": null,
            "processed": 0, "remaining": 0, "remaining_capped": false, "total": 0,
        }] });
        let none = serde_json::from_value::<ProgressReply>(none).unwrap();
        assert_eq!((none.views[0].checkpoint, none.views[0].holder.as_deref()), (None, None));
        assert!(!serde_json::to_string(&none).unwrap().contains("holder"), "no holder, no field");
        let bad = serde_json::json!({ "views": [{
            "name": "v", "version": 1, "active": false, "checkpoint": "nope",
            "processed": 0, "remaining": 0, "remaining_capped": false, "total": 0,
        }] });
        let err = serde_json::from_value::<ProgressReply>(bad).unwrap_err();
        assert!(err.to_string().contains("position \"nope\""), "{err}");
    }

    #[test]
    fn stats_pages_and_dead_letter_answers_travel_as_documented() {
        let local = StoreStats {
            namespace: "courses".into(),
            head: Some(Position::new(3, 0, 1)),
            events: 7,
            data_dir: Some("courses-data".into()),
            bytes_on_disk: Some(4096),
            views: None,
            automations: None,
            commands: None,
        };
        let json = serde_json::to_value(&local).unwrap();
        assert_eq!(
            json,
            serde_json::json!({
                "namespace": "courses", "head": "000000000000000300000001", "events": 7,
                "data_dir": "courses-data", "bytes_on_disk": 4096,
            }),
            "a data directory's stats leave out the slice counts"
        );
        assert_eq!(serde_json::from_value::<StoreStats>(json).unwrap(), local);

        let page: EventPage = serde_json::from_value(serde_json::json!({
            "events": [{ "type": "CourseDefined" }], "next_cursor": null, "head": "000000000000000300000001",
        }))
        .unwrap();
        assert_eq!((page.events.len(), page.next_cursor, page.head), (1, None, Some(Position::new(3, 0, 1))));
        let bad = serde_json::json!({ "events": [], "next_cursor": "later", "head": null });
        assert!(serde_json::from_value::<EventPage>(bad).is_err(), "a cursor is a position");

        let replayed = Replayed { replayed: Position::new(3, 0, 1) };
        assert_eq!(
            serde_json::to_value(replayed).unwrap(),
            serde_json::json!({ "replayed": "000000000000000300000001" })
        );
        assert_eq!(serde_json::to_value(Purged { purged: 2 }).unwrap(), serde_json::json!({ "purged": 2 }));
    }
}
