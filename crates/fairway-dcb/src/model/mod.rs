//! The DCB data model: events, tags, queries, conditions, positions.

mod event;
pub mod limits;
mod position;
mod query;
mod tag;

pub use event::{RawEvent, SequencedEvent};
pub use position::{POSITION_LEN, Position};
pub use query::{AppendCondition, Query, QueryItem, ReadOptions};
pub use tag::Tag;
