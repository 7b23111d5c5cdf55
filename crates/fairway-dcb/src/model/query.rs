//! Queries: which events a read, a subscription or an append condition is about.

use crate::error::InvalidInput;
use crate::model::limits::{MAX_ITEM_TERMS, MAX_QUERY_ITEMS, check_type};
use crate::model::{Position, RawEvent, Tag};

/// One part of a query: events of *any* of `types` (or of any type if empty) that carry
/// *all* of `tags`.
#[derive(Clone, PartialEq, Eq, Debug, Default)]
pub struct QueryItem {
    /// Accepted types; empty means every type.
    pub types: Vec<String>,
    /// Required tags; empty means no tag is required.
    pub tags: Vec<Tag>,
    /// Only the last matching event counts (e.g. "the last invoice number", "the current
    /// aggregate version"): the item contributes at most one event, the last one in the log.
    pub last_only: bool,
}

impl QueryItem {
    /// An item matching every event.
    pub fn new() -> Self {
        QueryItem::default()
    }

    /// An item matching events of any of `types`.
    pub fn types<S: Into<String>>(types: impl IntoIterator<Item = S>) -> Self {
        QueryItem::new().with_types(types)
    }

    /// An item matching events carrying all of `tags`.
    pub fn tags(tags: impl IntoIterator<Item = Tag>) -> Self {
        QueryItem::new().with_tags(tags)
    }

    /// Adds accepted types.
    pub fn with_types<S: Into<String>>(mut self, types: impl IntoIterator<Item = S>) -> Self {
        self.types.extend(types.into_iter().map(Into::into));
        self.types.sort();
        self.types.dedup();
        self
    }

    /// Adds required tags.
    pub fn with_tags(mut self, tags: impl IntoIterator<Item = Tag>) -> Self {
        self.tags.extend(tags);
        self.tags.sort();
        self.tags.dedup();
        self
    }

    /// A query matching this item or `other` (e.g. two consistency boundaries of one
    /// decision).
    ///
    /// ```
    /// use fairway_dcb::{QueryItem, Tag};
    ///
    /// let course = QueryItem::tags([Tag::new("course", "c1").unwrap()]);
    /// let query = course.or(QueryItem::tags([Tag::new("student", "s1").unwrap()]));
    /// assert_eq!(query.items().len(), 2);
    /// ```
    pub fn or(self, other: QueryItem) -> Query {
        Query::from(self).or(other)
    }

    /// Keeps only the last matching event.
    pub fn last_only(mut self) -> Self {
        self.last_only = true;
        self
    }

    /// Whether `event` matches this item (ignoring `last_only`).
    pub fn matches(&self, event: &RawEvent) -> bool {
        (self.types.is_empty() || self.types.contains(&event.event_type)) && self.tags.iter().all(|t| event.has_tag(t))
    }
}

/// The format byte [`Query::stable_bytes`] starts with.
const STABLE_FORMAT: u8 = 1;

/// A query: the union of its items. [`Query::all`] matches every event.
#[derive(Clone, PartialEq, Eq, Debug)]
pub struct Query {
    items: Vec<QueryItem>,
}

impl Query {
    /// A query matching every event.
    pub fn all() -> Self {
        Query { items: vec![QueryItem::new()] }
    }

    /// A query made of `items` (at least one; checked when used).
    pub fn from_items(items: impl IntoIterator<Item = QueryItem>) -> Self {
        Query { items: items.into_iter().collect() }
    }

    /// Adds an item.
    pub fn or(mut self, item: QueryItem) -> Self {
        self.items.push(item);
        self
    }

    /// The items.
    pub fn items(&self) -> &[QueryItem] {
        &self.items
    }

    /// Whether the query matches every event.
    pub fn is_all(&self) -> bool {
        self.items.iter().any(|i| i.types.is_empty() && i.tags.is_empty() && !i.last_only)
    }

    /// Whether `event` matches some item (ignoring `last_only`).
    pub fn matches(&self, event: &RawEvent) -> bool {
        self.items.iter().any(|i| i.matches(event))
    }

    /// The query as bytes that never change between versions of this crate, for keys that
    /// persist a query (e.g. decision-model snapshots): equal queries give equal bytes, and
    /// different ones different bytes. Unlike `Debug`, this is a format, and a test pins it:
    ///
    /// `1` (the format), the item count (u32 BE), then per item: `last_only` (one byte, 0 or
    /// 1), the type count (u32 BE) and each type, the tag count (u32 BE) and each tag as
    /// `key:value`; every string is its length (u32 BE) and its UTF-8 bytes. Items, types
    /// and tags keep their order.
    ///
    /// ```
    /// use fairway_dcb::{Query, QueryItem, Tag};
    ///
    /// let item = QueryItem::types(["CourseDefined"]).with_tags([Tag::new("course", "c1").unwrap()]);
    /// let query = Query::from(item);
    /// let mut bytes = vec![1, 0, 0, 0, 1, 0];
    /// bytes.extend([0, 0, 0, 1, 0, 0, 0, 13]);
    /// bytes.extend(b"CourseDefined");
    /// bytes.extend([0, 0, 0, 1, 0, 0, 0, 9]);
    /// bytes.extend(b"course:c1");
    /// assert_eq!(query.stable_bytes(), bytes);
    /// ```
    pub fn stable_bytes(&self) -> Vec<u8> {
        fn string(out: &mut Vec<u8>, text: &str) {
            out.extend((text.len() as u32).to_be_bytes());
            out.extend(text.as_bytes());
        }
        let mut out = vec![STABLE_FORMAT];
        out.extend((self.items.len() as u32).to_be_bytes());
        for item in &self.items {
            out.push(u8::from(item.last_only));
            out.extend((item.types.len() as u32).to_be_bytes());
            item.types.iter().for_each(|t| string(&mut out, t));
            out.extend((item.tags.len() as u32).to_be_bytes());
            item.tags.iter().for_each(|t| string(&mut out, t.as_str()));
        }
        out
    }

    /// Checks the query's rules and limits.
    pub fn validate(&self) -> Result<(), InvalidInput> {
        if self.items.is_empty() {
            return Err(InvalidInput::EmptyQuery);
        }
        if self.items.len() > MAX_QUERY_ITEMS {
            return Err(InvalidInput::TooManyQueryItems { count: self.items.len(), limit: MAX_QUERY_ITEMS });
        }
        for (item_index, item) in self.items.iter().enumerate() {
            for (what, count) in [("types", item.types.len()), ("tags", item.tags.len())] {
                if count > MAX_ITEM_TERMS {
                    return Err(InvalidInput::QueryItemTooLarge {
                        item: item_index,
                        what,
                        count,
                        limit: MAX_ITEM_TERMS,
                    });
                }
            }
            item.types.iter().try_for_each(|t| check_type(t))?;
            // Tags are checked when built; a `Tag` cannot be malformed.
        }
        Ok(())
    }
}

impl From<QueryItem> for Query {
    fn from(item: QueryItem) -> Self {
        Query { items: vec![item] }
    }
}

/// "Fail the append if any event matching `query` exists after `after`."
#[derive(Clone, PartialEq, Eq, Debug)]
pub struct AppendCondition {
    /// Events that must not exist.
    pub fail_if_events_match: Query,
    /// Only events after this position count; `None` means the whole log.
    pub after: Option<Position>,
}

impl AppendCondition {
    /// Fails if any event matches `query` anywhere in the log.
    pub fn none_match(query: impl Into<Query>) -> Self {
        AppendCondition { fail_if_events_match: query.into(), after: None }
    }

    /// Fails if any event matches `query` after `after` (`None`: anywhere).
    pub fn none_match_after(query: impl Into<Query>, after: Option<Position>) -> Self {
        AppendCondition { fail_if_events_match: query.into(), after }
    }
}

/// Options of a read.
#[derive(Clone, Copy, PartialEq, Eq, Debug, Default)]
pub struct ReadOptions {
    /// Start at this position, inclusive (forwards: events at or after it; backwards: at or
    /// before it). `None` starts at the beginning (forwards) or the end (backwards).
    pub from: Option<Position>,
    /// Read newest first.
    pub backwards: bool,
    /// Return at most this many events.
    pub limit: Option<usize>,
    /// Read nothing after this position: the head a read is bounded by. `None` bounds the
    /// read by the head taken when it starts.
    pub up_to: Option<Position>,
}

impl ReadOptions {
    /// Forwards from the start, no limit.
    pub fn forwards() -> Self {
        ReadOptions::default()
    }

    /// Backwards from the end, no limit.
    pub fn backwards() -> Self {
        ReadOptions { backwards: true, ..ReadOptions::default() }
    }

    /// Starts at `position` (inclusive).
    pub fn from(mut self, position: Position) -> Self {
        self.from = Some(position);
        self
    }

    /// Returns at most `limit` events.
    pub fn limit(mut self, limit: usize) -> Self {
        self.limit = Some(limit);
        self
    }

    /// Reads nothing after `head` (the tighter bound wins when one is already set).
    pub fn up_to(mut self, head: Position) -> Self {
        self.up_to = Some(self.up_to.map_or(head, |bound| bound.min(head)));
        self
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tag(text: &str) -> Tag {
        let (key, value) = text.split_once(':').unwrap();
        Tag::new(key, value).unwrap()
    }

    #[test]
    fn stable_bytes_tell_every_two_different_queries_apart() {
        let queries = [
            Query::all(),
            Query::from(QueryItem::new().last_only()),
            Query::from(QueryItem::types(["a"])),
            Query::from(QueryItem::types(["a", "b"])),
            Query::from(QueryItem::types(["ab"])),
            Query::from(QueryItem::tags([tag("a:b")])),
            Query::from(QueryItem::types(["a:b"])),
            Query::from(QueryItem::tags([tag("a:b"), tag("c:d")])),
            Query::from(QueryItem::tags([tag("a:b")])).or(QueryItem::tags([tag("c:d")])),
            Query::from(QueryItem::types(["a"]).with_tags([tag("c:d")])),
            Query::from(QueryItem::types(["a"])).or(QueryItem::tags([tag("c:d")])),
        ];
        for (i, a) in queries.iter().enumerate() {
            for (j, b) in queries.iter().enumerate() {
                assert_eq!(a.stable_bytes() == b.stable_bytes(), i == j, "{a:?} / {b:?}");
            }
        }
        let built_twice = || Query::from(QueryItem::types(["b", "a"]).with_tags([tag("c:d")]));
        assert_eq!(built_twice().stable_bytes(), built_twice().stable_bytes());
    }
}
