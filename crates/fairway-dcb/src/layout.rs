//! The DCB key layout inside one namespace.
//!
//! Every key starts with the namespace prefix (`<namespace> 0x00`); namespaces are limited to
//! `[A-Za-z0-9_.-]`, so no prefix is the prefix of another. Inside it:
//!
//! | section | key | value |
//! |---|---|---|
//! | log | `e <position>` | the encoded event |
//! | type index | `t <type> 0x00 <position>` | earlier indexes of the block (below) |
//! | tag index | `g <tag> 0x00 <position>` | earlier indexes of the block (below) |
//! | id index | `i <event id>` | position |
//! | pulse | `p <shard>` | events appended through this shard (little-endian `i64`): watched by subscriptions; the shards add up to the event count |
//! | commit marker | `c <minute, u32 BE> <append token, 16 bytes>` | the commit's versionstamp (10 bytes): written only on engines whose commit result can be unknown, so that a retried append finds its own commit; later appends clear markers older than [`COMMIT_MARKER_MINUTES`] |
//!
//! Types and tags hold no control characters, and in UTF-8 only U+0000 encodes to a `0x00`
//! byte, so the `0x00` terminator keeps every index prefix-free: the range of one tag never
//! holds keys of a longer tag starting with it (`k:a` and `k:a b`: the byte after `k:a` is
//! `0x00` in one and `0x20` in the other). Tags are otherwise opaque: spaces, `:` and any
//! script are written as their UTF-8 bytes, unescaped.
//!
//! An index entry is a *block*: the events of one append sharing that type (or tag). Its
//! key holds the position of the block's last event; its value lists the in-append
//! indexes of the block's other events (2 big-endian bytes each, ascending). An append of
//! `n` events therefore writes `n` log keys plus one index key per distinct type and tag,
//! plus one key per event id: a batch sharing a tag costs one index write, not `n`. A
//! block of one event has an empty value.

use crate::error::{InvalidInput, StorageError};
use crate::kv::VERSIONSTAMP_LEN;
use crate::model::limits::{NameKind, check_name};
use crate::model::{POSITION_LEN, Position, Tag};

const LOG: u8 = b'e';
const TYPE_INDEX: u8 = b't';
const TAG_INDEX: u8 = b'g';
const ID_INDEX: u8 = b'i';
const PULSE: u8 = b'p';
const COMMIT_MARKER: u8 = b'c';
const USER: u8 = b'u';

/// Minutes a commit marker is kept: far longer than any append's retries may last.
pub const COMMIT_MARKER_MINUTES: u32 = 10;

/// Number of pulse keys an append may bump (spread so no single key is hot).
pub const PULSE_SHARDS: u8 = 16;

/// The keys of one namespace.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Layout {
    prefix: Vec<u8>,
}

/// A family of keys ending in a position: `base <position>`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PositionedRange {
    /// Everything before the position.
    pub base: Vec<u8>,
}

impl PositionedRange {
    /// The key of `position` in this family.
    pub fn key(&self, position: Position) -> Vec<u8> {
        let mut key = Vec::with_capacity(self.base.len() + POSITION_LEN);
        key.extend_from_slice(&self.base);
        key.extend_from_slice(&position.to_bytes());
        key
    }

    /// Keys for positions in `[low, high]`, as a half-open byte range.
    pub fn bounds(&self, low: Position, high: Position) -> (Vec<u8>, Vec<u8>) {
        let mut end = self.key(high);
        end.push(0);
        (self.key(low), end)
    }

    /// The position at the end of a key of this family.
    pub fn position_of(&self, key: &[u8]) -> Option<Position> {
        key.strip_prefix(self.base.as_slice()).and_then(Position::from_bytes)
    }

    /// A key to write with a versionstamp placed at the returned offset and `index` after it.
    pub fn stamped_key(&self, index: u16) -> (Vec<u8>, usize) {
        let mut key = Vec::with_capacity(self.base.len() + POSITION_LEN);
        key.extend_from_slice(&self.base);
        key.extend_from_slice(&[0u8; VERSIONSTAMP_LEN]);
        key.extend_from_slice(&index.to_be_bytes());
        (key, self.base.len())
    }
}

impl Layout {
    /// The layout of `namespace`, checked against the namespace rules.
    pub fn new(namespace: &str) -> Result<Self, InvalidInput> {
        check_name(NameKind::Namespace, namespace)?;
        let mut prefix = namespace.as_bytes().to_vec();
        prefix.push(0);
        Ok(Layout { prefix })
    }

    /// The namespace prefix shared by all its keys.
    pub fn prefix(&self) -> &[u8] {
        &self.prefix
    }

    fn section(&self, section: u8, name: &[u8], terminate: bool) -> Vec<u8> {
        let mut key = Vec::with_capacity(self.prefix.len() + 2 + name.len());
        key.extend_from_slice(&self.prefix);
        key.push(section);
        key.extend_from_slice(name);
        if terminate {
            key.push(0);
        }
        key
    }

    /// The event log.
    pub fn log(&self) -> PositionedRange {
        PositionedRange { base: self.section(LOG, b"", false) }
    }

    /// The index of events of `event_type`.
    pub fn type_index(&self, event_type: &str) -> PositionedRange {
        PositionedRange { base: self.section(TYPE_INDEX, event_type.as_bytes(), true) }
    }

    /// The index of events carrying `tag`.
    pub fn tag_index(&self, tag: &Tag) -> PositionedRange {
        PositionedRange { base: self.section(TAG_INDEX, tag.as_str().as_bytes(), true) }
    }

    /// The key recording where the event with `id` is stored.
    pub fn id_key(&self, id: &str) -> Vec<u8> {
        self.section(ID_INDEX, id.as_bytes(), false)
    }

    /// The pulse key number `shard`.
    pub fn pulse_key(&self, shard: u8) -> Vec<u8> {
        self.section(PULSE, &[shard], false)
    }

    /// Every pulse key.
    pub fn pulse_keys(&self) -> Vec<Vec<u8>> {
        (0..PULSE_SHARDS).map(|s| self.pulse_key(s)).collect()
    }

    /// The commit marker of the append with `token`, made in `minute` (since the Unix epoch).
    pub fn commit_marker_key(&self, minute: u32, token: &[u8; 16]) -> Vec<u8> {
        self.section(COMMIT_MARKER, &[minute.to_be_bytes().as_slice(), token].concat(), false)
    }

    /// The range of every commit marker made before `minute`.
    pub fn commit_markers_before(&self, minute: u32) -> (Vec<u8>, Vec<u8>) {
        (self.section(COMMIT_MARKER, &[], false), self.section(COMMIT_MARKER, &minute.to_be_bytes(), false))
    }

    /// A prefix for data kept beside the events by higher layers (views, queues, ...).
    pub fn user_prefix(&self, name: &str) -> Vec<u8> {
        self.section(USER, name.as_bytes(), true)
    }

    /// Whether `key` lies in the section kept for higher layers (under some
    /// [`Layout::user_prefix`]), away from the events and their indexes.
    pub fn is_user_key(&self, key: &[u8]) -> bool {
        key.strip_prefix(self.prefix.as_slice()).is_some_and(|rest| rest.first() == Some(&USER))
    }
}

/// The largest index block value (every event of the largest append) stays well inside
/// FoundationDB's 100 kB value limit.
const _: () = assert!(2 * crate::model::limits::MAX_EVENTS_PER_APPEND <= 100_000 / 4);

/// The value of an index block holding `indexes` (ascending; the last one is in the key).
pub fn block_value(indexes: &[u16]) -> Vec<u8> {
    let earlier = &indexes[..indexes.len().saturating_sub(1)];
    earlier.iter().flat_map(|i| i.to_be_bytes()).collect()
}

/// Visits the positions of the index block keyed at `last` with `value`, ascending.
pub fn block_positions(last: Position, value: &[u8], mut visit: impl FnMut(Position)) -> Result<(), StorageError> {
    if !value.len().is_multiple_of(2) {
        return Err(StorageError::Corrupt(format!("index block at {last} has an odd length {}", value.len())));
    }
    for index in value.chunks_exact(2).map(|b| u16::from_be_bytes([b[0], b[1]])) {
        if index >= last.index() {
            return Err(StorageError::Corrupt(format!("index block at {last} lists a later index {index}")));
        }
        visit(Position::new(last.commit(), last.batch_order(), index));
    }
    visit(last);
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn expired_commit_markers_are_one_range_that_spares_newer_ones_and_other_sections() {
        let layout = Layout::new("ns").unwrap();
        let token = [7; 16];
        let (begin, end) = layout.commit_markers_before(100);
        let inside = |key: &[u8]| begin.as_slice() <= key && key < end.as_slice();
        assert!(inside(&layout.commit_marker_key(0, &token)));
        assert!(inside(&layout.commit_marker_key(99, &[0xff; 16])));
        assert!(!inside(&layout.commit_marker_key(100, &[0; 16])), "a marker of the cut-off minute stays");
        assert!(!inside(&layout.id_key("x")) && !inside(&layout.pulse_key(0)) && !inside(&layout.user_prefix("v")));
        assert_eq!(layout.commit_marker_key(1, &token).len(), layout.prefix().len() + 1 + 4 + 16);
    }

    #[test]
    fn namespaces_do_not_prefix_each_other() {
        let a = Layout::new("a").unwrap();
        let ab = Layout::new("ab").unwrap();
        assert!(!ab.log().base.starts_with(a.prefix()));
        assert!(!a.log().base.starts_with(ab.prefix()));
    }

    #[test]
    fn stamped_keys_place_the_stamp_before_the_index() {
        let layout = Layout::new("ns").unwrap();
        let tag = Tag::parse("k:v").unwrap();
        let (key, offset) = layout.tag_index(&tag).stamped_key(7);
        assert_eq!(&key[..offset], layout.tag_index(&tag).base.as_slice());
        assert_eq!(&key[key.len() - 2..], &7u16.to_be_bytes());
    }

    #[test]
    fn blocks_list_their_positions_in_order() {
        let value = block_value(&[1, 4, 9]);
        assert_eq!(value, vec![0, 1, 0, 4]);
        let mut seen = Vec::new();
        block_positions(Position::new(3, 2, 9), &value, |p| seen.push(p)).unwrap();
        assert_eq!(seen, [1, 4, 9].map(|i| Position::new(3, 2, i)));
        assert!(block_value(&[7]).is_empty(), "a block of one event is the key alone");
        assert!(block_positions(Position::new(3, 2, 1), &value, |_| {}).is_err(), "indexes must precede the key");
        assert!(block_positions(Position::new(3, 2, 9), &[0], |_| {}).is_err(), "odd length");
    }

    #[test]
    fn user_keys_are_told_apart_from_event_keys() {
        let layout = Layout::new("ns").unwrap();
        assert!(layout.is_user_key(&[layout.user_prefix("idempotency").as_slice(), b"k"].concat()));
        assert!(!layout.is_user_key(&layout.id_key("u")));
        assert!(!layout.is_user_key(&Layout::new("other").unwrap().user_prefix("idempotency")));
    }

    #[test]
    fn a_tag_range_never_holds_a_longer_tag_starting_with_it() {
        let layout = Layout::new("ns").unwrap();
        let short = Tag::parse("k:a").unwrap();
        let (begin, end) = layout.tag_index(&short).bounds(Position::ZERO, Position::MAX);
        let inside = layout.tag_index(&short).key(Position::new(5, 0, 0));
        assert!(begin <= inside && inside < end);
        for longer in ["k:a b", "k:a:b", "k:a!", "k:a\u{a0}", "k:aé", "k:a東", "k:a\u{10ffff}"] {
            let longer = Tag::parse(longer).unwrap();
            for position in [Position::ZERO, Position::new(5, 0, 0), Position::MAX] {
                let key = layout.tag_index(&longer).key(position);
                assert!(!(begin <= key && key < end), "{longer:?} at {position} falls in the range of {short:?}");
            }
        }
    }

    #[test]
    fn bounds_include_both_ends() {
        let log = Layout::new("ns").unwrap().log();
        let (begin, end) = log.bounds(Position::new(1, 0, 0), Position::new(2, 0, 0));
        let inside = log.key(Position::new(2, 0, 0));
        assert!(begin <= inside && inside < end);
        assert!(log.key(Position::new(2, 0, 1)) >= end);
    }
}
