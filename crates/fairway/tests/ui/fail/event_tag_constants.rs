//! `#[tag(KEY)]` needs the path of a `&str` constant: a path that names nothing (a key
//! written without quotes) or a constant of another type is an error at the attribute.

use fairway::Event;
use serde::{Deserialize, Serialize};

const SEATS: u32 = 30;

#[derive(Serialize, Deserialize, Event)]
struct KeyWithoutQuotes {
    #[tag(course)]
    id: String,
}

#[derive(Serialize, Deserialize, Event)]
struct KeyOfAnotherType {
    #[tag(SEATS)]
    id: String,
}

fn main() {}
