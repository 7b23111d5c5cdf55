//! `#[derive(EventSet)]` needs an enum whose variants each wrap one event type, each type
//! in one variant.

use fairway::{Event, EventSet};
use serde::{Deserialize, Serialize};

#[derive(Serialize, Deserialize, Event)]
struct Opened {
    #[tag("ticket")]
    ticket: String,
}

#[derive(Serialize, Deserialize, Event)]
struct Closed {
    #[tag("ticket")]
    ticket: String,
}

#[derive(EventSet)]
struct NotAnEnum(Opened);

#[derive(EventSet)]
enum NoVariants {}

#[derive(EventSet)]
enum TwoFields {
    Both(Opened, Closed),
}

#[derive(EventSet)]
enum NamedField {
    Opened { event: Opened },
}

#[derive(EventSet)]
enum UnitVariant {
    Opened(Opened),
    Closed,
}

#[derive(EventSet)]
enum TypeTwice {
    First(Opened),
    Again(Opened),
}

fn main() {}
