//! `#[tag(KEY)]` takes the tag key from a `&str` constant (any path), so queries and views
//! name the key with the constant the event is tagged with: the tags carry its value.

use fairway::dcb::Tag;
use fairway::{Event, Id};
use serde::{Deserialize, Serialize};

const TICKET: &str = "ticket";

mod keys {
    pub const ASSIGNEE: &str = "assignee";
}

#[derive(Serialize, Deserialize, Event)]
struct TicketAssigned {
    #[tag(TICKET)]
    ticket: Id,
    #[tag(keys::ASSIGNEE)]
    #[tag("person")]
    assignee: Option<String>,
}

fn main() {
    let ticket = Id::from("t1");
    let assigned = TicketAssigned { ticket: ticket.clone(), assignee: Some("ada".into()) };
    let tags = assigned.tags().unwrap();
    assert_eq!(
        tags,
        [ticket.tag(TICKET), Tag::new(keys::ASSIGNEE, "ada").unwrap(), Tag::new("person", "ada").unwrap()]
    );
    assert_eq!(tags.iter().map(Tag::as_str).collect::<Vec<_>>(), ["ticket:t1", "assignee:ada", "person:ada"]);
    let unassigned = TicketAssigned { ticket, assignee: None };
    assert_eq!(unassigned.tags().unwrap(), [Tag::new(TICKET, "t1").unwrap()]);
}
