//! `#[derive(Event)]` accepts `#[event(name = "...")]` on the struct, once, and
//! `#[tag("key")]` or `#[tag(KEY_CONSTANT)]` on named fields.

use fairway::Event;
use serde::{Deserialize, Serialize};

#[derive(Serialize, Deserialize, Event)]
#[event(nam = "Misspelt")]
struct Misspelt {
    id: String,
}

#[derive(Serialize, Deserialize, Event)]
#[event(name)]
struct NameWithoutValue {
    id: String,
}

#[derive(Serialize, Deserialize, Event)]
#[event(name = "First")]
#[event(name = "Second")]
struct NamedTwice {
    id: String,
}

#[derive(Serialize, Deserialize, Event)]
#[event]
struct EventWithoutArguments {
    id: String,
}

#[derive(Serialize, Deserialize, Event)]
struct TagWithANumber {
    #[tag(1)]
    id: String,
}

#[derive(Serialize, Deserialize, Event)]
struct TagWithTwoKeys {
    #[tag("course", "student")]
    id: String,
}

#[derive(Serialize, Deserialize, Event)]
struct TagWithoutKey {
    #[tag]
    id: String,
}

#[derive(Serialize, Deserialize, Event)]
#[tag("course")]
struct TagOnTheStruct {
    id: String,
}

#[derive(Serialize, Deserialize, Event)]
struct EventOnAField {
    #[event(name = "Field")]
    id: String,
}

#[derive(Serialize, Deserialize, Event)]
struct TagOnATupleField(#[tag("course")] String);

fn main() {}
