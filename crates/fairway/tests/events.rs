//! Typed events: names, tags, payloads that survive changes to their struct, and event
//! sets that decode exactly their types.

mod common;

use common::{CourseDefined, CourseEvents, StudentSubscribed};
use fairway::dcb::{Query, QueryItem, Tag};
use fairway::{Event, EventError, EventSet};
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
    let new: v2::PriceSet = rmp_serde::from_slice(&old.payload).expect("maps keep old facts readable");
    assert_eq!(new, v2::PriceSet { item: "book".into(), amount: 1250, currency: "EUR".into() });
}

#[test]
fn an_event_set_names_its_types_and_decodes_only_those() {
    assert_eq!(CourseEvents::TYPES, ["CourseDefined", "StudentSubscribedToCourse"]);
    assert_eq!(CourseDefined::TYPES, ["CourseDefined"], "an event is a set of one");
    let course = Tag::parse("course:c1").unwrap();
    let item = CourseEvents::tagged([course.clone()]);
    assert_eq!(item, QueryItem::types(["CourseDefined", "StudentSubscribedToCourse"]).with_tags([course]));
    assert_eq!(CourseEvents::query(), Query::from(CourseEvents::item()));

    let defined = CourseDefined { course_id: "c1".into(), capacity: 3 };
    let subscribed = StudentSubscribed { course_id: "c1".into(), student_id: "s1".into() };
    let decoded = [defined.to_raw().unwrap(), subscribed.to_raw().unwrap()]
        .iter()
        .map(|raw| match CourseEvents::decode(raw).expect("in the set").expect("decodes") {
            CourseEvents::Defined(e) => format!("defined {} for {}", e.course_id, e.capacity),
            CourseEvents::Subscribed(e) => format!("{} joined {}", e.student_id, e.course_id),
        })
        .collect::<Vec<_>>();
    assert_eq!(decoded, ["defined c1 for 3", "s1 joined c1"]);

    let other = Optional { owner: None }.to_raw().unwrap();
    assert!(CourseEvents::decode(&other).is_none(), "a type outside the set is not decoded");
    let mut broken = defined.to_raw().unwrap();
    broken.payload = vec![0xc1];
    let err = CourseEvents::decode(&broken).expect("in the set").unwrap_err();
    assert!(matches!(err, EventError::Decode { name: "CourseDefined", .. }), "{err}");
}
