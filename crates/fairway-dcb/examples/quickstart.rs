//! Appends a few course-subscription events to an embedded store, guards one append with a
//! DCB condition, and prints what the log holds.
//!
//! `cargo run -p fairway-dcb --example quickstart [-- <data dir>]` (default `./fairway-data`).

use fairway_dcb::{AppendCondition, Error, EventStore, Query, QueryItem, RawEvent, ReadOptions, Tag};
use futures::TryStreamExt;

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let dir = std::env::args().nth(1).unwrap_or_else(|| "fairway-data".into());
    let store = fairway_dcb::open_embedded(&dir, "quickstart")?;
    let course = Tag::new("course", "rust-101")?;
    let defined = Query::from(QueryItem::types(["CourseDefined"]).with_tags([course.clone()]));

    // Define the course once: the condition makes the second run a no-op, not a duplicate.
    let define = RawEvent::new("CourseDefined", br#"{"capacity":2}"#.to_vec()).with_tag(course.clone());
    match store.append(vec![define], Some(AppendCondition::none_match(defined.clone()))).await {
        Ok(appended) => println!("defined course rust-101 at {}", appended.last()),
        Err(Error::ConditionFailed { position, .. }) => println!("course rust-101 already defined at {position}"),
        Err(other) => return Err(other.into()),
    }

    // Subscribe a student, deciding on what was read: the condition covers exactly that.
    let boundary = Query::from(QueryItem::tags([course.clone()]));
    let seen: Vec<_> = store.read(boundary.clone(), ReadOptions::forwards()).try_collect().await?;
    let after = seen.last().map(|e| e.position);
    let student = Tag::new("student", format!("s{}", seen.len()))?;
    let subscribe = RawEvent::new("StudentSubscribed", Vec::new()).with_tags([course.clone(), student]);
    let appended = store.append(vec![subscribe], Some(AppendCondition::none_match_after(boundary, after))).await?;
    println!("subscribed at {}", appended.last());

    println!("the log of {dir}:");
    let mut events = store.read(Query::all(), ReadOptions::forwards());
    while let Some(event) = events.try_next().await? {
        let tags: Vec<&str> = event.event.tags.iter().map(Tag::as_str).collect();
        println!("  {}  {:<18} {:?}", event.position, event.event.event_type, tags);
    }
    println!("head: {:?}", store.head().await?.map(|p| p.to_string()));
    Ok(())
}
