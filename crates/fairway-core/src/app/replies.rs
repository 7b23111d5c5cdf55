//! What the app answers on its status routes, as types: the app writes them and the
//! `fairway` tool (and any client in Rust) reads them back, so the two cannot drift apart.
//! Positions are [`Position`]s in Rust and their 24-hex-digit text on the wire.

/// What `POST /commands/<name>` answers when the command ran.
pub use crate::command::CommandReply;
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
    #[serde(with = "position_text")]
    pub checkpoint: Option<Position>,
    /// Events applied so far.
    pub processed: u64,
    /// Events still to apply, counted up to a cap.
    pub remaining: u64,
    /// Whether `remaining` stopped at the cap (there are more).
    pub remaining_capped: bool,
    /// `processed + remaining`.
    pub total: u64,
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

/// An optional [`Position`] as its text, or `null`.
mod position_text {
    use fairway_dcb::Position;
    use serde::{Deserialize, Deserializer, Serializer};

    pub fn serialize<S: Serializer>(position: &Option<Position>, serializer: S) -> Result<S::Ok, S::Error> {
        match position {
            Some(position) => serializer.collect_str(position),
            None => serializer.serialize_none(),
        }
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(deserializer: D) -> Result<Option<Position>, D::Error> {
        Option::<String>::deserialize(deserializer)?
            .map(|text| text.parse().map_err(|err| serde::de::Error::custom(format!("position {text:?}: {err}"))))
            .transpose()
    }
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
            }],
        };
        let json = serde_json::to_value(&reply).unwrap();
        assert_eq!(
            json,
            serde_json::json!({ "views": [{
                "name": "courses", "version": 2, "active": true, "checkpoint": "000000000000000300000001",
                "processed": 5, "remaining": 0, "remaining_capped": false, "total": 5,
            }] })
        );
        assert_eq!(serde_json::from_value::<ProgressReply>(json).unwrap(), reply);
        let none = serde_json::json!({ "views": [{
            "name": "v", "version": 1, "active": false, "checkpoint": null,
            "processed": 0, "remaining": 0, "remaining_capped": false, "total": 0,
        }] });
        assert_eq!(serde_json::from_value::<ProgressReply>(none).unwrap().views[0].checkpoint, None);
        let bad = serde_json::json!({ "views": [{
            "name": "v", "version": 1, "active": false, "checkpoint": "nope",
            "processed": 0, "remaining": 0, "remaining_capped": false, "total": 0,
        }] });
        let err = serde_json::from_value::<ProgressReply>(bad).unwrap_err();
        assert!(err.to_string().contains("position \"nope\""), "{err}");
    }
}
