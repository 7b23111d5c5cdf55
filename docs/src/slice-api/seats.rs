// Shared code of the examples in ../slice-api.md, which include it with `include!`: the
// `Seats` event set of the section "Event sets", with the events it reads (events.rs).
include!("events.rs");

#[derive(Debug, EventSet)]
pub enum Seats {
    Defined(CourseDefined),
    Subscribed(StudentSubscribed),
    Unsubscribed(StudentUnsubscribed),
}
