//! Typed events: names, tags, and payloads that survive changes to their struct.

mod common;

use common::{CourseDefined, StudentSubscribed};
use fairway::dcb::Tag;
use fairway::{Event, EventError};
use serde::{Deserialize, Serialize};

#[test]
fn names_default_to_the_type_and_can_be_overridden() {
    assert_eq!(CourseDefined::NAME, "CourseDefined");
    assert_eq!(StudentSubscribed::NAME, "StudentSubscribedToCourse");
    let registered = fairway::registered_event_types().expect("no duplicate names");
    assert!(registered.contains_key("CourseDefined"));
    assert!(registered["StudentSubscribedToCourse"].ends_with("StudentSubscribed"));
}

#[test]
fn tagged_fields_become_tags() {
    let event = StudentSubscribed { course_id: "c1".into(), student_id: "s9".into() };
    let raw = event.to_raw().unwrap();
    assert_eq!(raw.event_type, "StudentSubscribedToCourse");
    assert_eq!(raw.tags, vec![Tag::parse("course:c1").unwrap(), Tag::parse("student:s9").unwrap()]);
    assert_eq!(StudentSubscribed::from_raw(&raw).unwrap().unwrap(), event);
    assert!(CourseDefined::from_raw(&raw).is_none(), "other types do not decode");
}

#[derive(Debug, Serialize, Deserialize, Event)]
struct Optional {
    #[tag("owner")]
    owner: Option<String>,
}

#[test]
fn optional_tags_and_invalid_tag_values() {
    assert!(Optional { owner: None }.tags().unwrap().is_empty());
    assert_eq!(Optional { owner: Some("a".into()) }.tags().unwrap(), vec![Tag::parse("owner:a").unwrap()]);
    let spaced = Optional { owner: Some("Ada Lovelace".into()) }.tags().unwrap();
    assert_eq!(spaced, vec![Tag::parse("owner:Ada Lovelace").unwrap()], "tags are opaque strings");
    let invalid = Optional { owner: Some("has\nnewline".into()) }.to_raw();
    assert!(matches!(invalid, Err(EventError::Tag(_))), "{invalid:?}");
    let empty = Optional { owner: Some(String::new()) }.to_raw();
    assert!(matches!(empty, Err(EventError::Tag(_))), "{empty:?}");
}

mod v1 {
    use super::*;
    #[derive(Debug, Serialize, Deserialize, Event)]
    #[event(name = "PriceSet")]
    pub struct PriceSet {
        pub item: String,
        pub cents: u64,
        pub note: String,
    }
}

mod v2 {
    use super::*;
    /// A later version: `cents` renamed to `amount`, `note` removed, `currency` added.
    #[derive(Debug, Serialize, Deserialize, PartialEq)]
    pub struct PriceSet {
        pub item: String,
        #[serde(alias = "cents")]
        pub amount: u64,
        #[serde(default = "euro")]
        pub currency: String,
    }
    fn euro() -> String {
        "EUR".into()
    }
}

#[test]
fn old_payloads_decode_into_newer_structs() {
    let old = v1::PriceSet { item: "book".into(), cents: 1250, note: "launch".into() }.to_raw().unwrap();
    let new: v2::PriceSet = fairway::rmp_serde::from_slice(&old.payload).expect("maps keep old facts readable");
    assert_eq!(new, v2::PriceSet { item: "book".into(), amount: 1250, currency: "EUR".into() });
}
