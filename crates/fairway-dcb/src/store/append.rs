//! Appends: boundary checks, then one transaction that checks ids and conditions and
//! writes the events with their indexes.

use std::collections::{BTreeMap, HashSet};
use std::time::SystemTime;

use futures::StreamExt;
use futures::stream::FuturesOrdered;

use crate::codec;
use crate::error::{Error, InvalidInput, StorageError};
use crate::kv::{KvTransaction, VERSIONSTAMP_LEN, Versionstamp};
use crate::layout::{Layout, PULSE_SHARDS, block_value};
use crate::model::limits::{
    MAX_CONDITIONS, MAX_EVENTS_PER_APPEND, MAX_METADATA_BYTES, MAX_NAMESPACE_LEN, MAX_PAYLOAD_BYTES,
    MAX_TAGS_PER_EVENT, NameKind, check_name, check_type,
};
use crate::model::{AppendCondition, POSITION_LEN, Position, RawEvent, Tag};
use crate::store::plan::{ItemPlan, plan_query};
use crate::store::scan::{PageLimit, Window, read_page};

/// Keys scanned per page while checking a condition.
const CONDITION_PAGE: usize = 32;

/// The in-append indexes of the events of each type (or tag): one index block each.
type Blocks<K> = BTreeMap<K, Vec<u16>>;

/// An append checked at the boundary and ready to run (again) in a transaction.
pub struct PreparedAppend {
    events: Vec<RawEvent>,
    records: Vec<Vec<u8>>,
    conditions: Vec<(Vec<ItemPlan>, Option<Position>)>,
    pulse_shard: u8,
}

/// What the append transaction did.
pub enum AppendOutcome {
    /// The events were written; their positions follow from the commit's versionstamp.
    Written,
    /// Every event's id was already stored: nothing was written.
    AlreadyStored(Vec<Position>),
    /// The append's receipt key held this standing value: nothing was written.
    ReceiptStands(Vec<u8>),
    /// An earlier run of this append landed with this commit stamp (its result had been
    /// reported unknown): nothing more was written.
    LandedBefore(Versionstamp),
}

/// The positions of the `count` events an append wrote, from its commit's versionstamp.
pub fn positions_of(stamp: Option<Versionstamp>, count: usize) -> Result<Vec<Position>, Error> {
    let stamp = stamp.ok_or_else(|| StorageError::Engine("append committed without a versionstamp".into()))?;
    Ok(stamp.positions(count as u16))
}

/// Checks every rule and limit of an append; nothing is written if one fails.
pub fn validate(events: &[RawEvent], conditions: &[AppendCondition]) -> Result<(), InvalidInput> {
    if events.is_empty() {
        return Err(InvalidInput::EmptyBatch);
    }
    if events.len() > MAX_EVENTS_PER_APPEND {
        return Err(InvalidInput::TooManyEvents { count: events.len(), limit: MAX_EVENTS_PER_APPEND });
    }
    if conditions.len() > MAX_CONDITIONS {
        return Err(InvalidInput::TooManyConditions { count: conditions.len(), limit: MAX_CONDITIONS });
    }
    let mut ids = HashSet::new();
    for (index, event) in events.iter().enumerate() {
        check_event(index, event)?;
        if let Some(id) = &event.id
            && !ids.insert(id.as_str())
        {
            return Err(InvalidInput::DuplicateIdInBatch { id: id.clone() });
        }
    }
    for condition in conditions {
        condition.fail_if_events_match.validate()?;
    }
    Ok(())
}

/// Checks the rules and limits of one event, the `index`-th of its append: its type's name,
/// its number of tags, the size of its payload and metadata, its id's name. (A batch adds
/// its own: size, count, ids unique within it.)
pub fn check_event(index: usize, event: &RawEvent) -> Result<(), InvalidInput> {
    check_type(&event.event_type)?;
    if event.tags.len() > MAX_TAGS_PER_EVENT {
        return Err(InvalidInput::TooManyTags { index, count: event.tags.len(), limit: MAX_TAGS_PER_EVENT });
    }
    if event.payload.len() > MAX_PAYLOAD_BYTES {
        return Err(InvalidInput::PayloadTooLarge { index, bytes: event.payload.len(), limit: MAX_PAYLOAD_BYTES });
    }
    let metadata = event.metadata.as_ref().map_or(0, Vec::len);
    if metadata > MAX_METADATA_BYTES {
        return Err(InvalidInput::MetadataTooLarge { index, bytes: metadata, limit: MAX_METADATA_BYTES });
    }
    if let Some(id) = &event.id {
        check_name(NameKind::EventId, id)?;
    }
    Ok(())
}

/// Bytes FoundationDB counts against its transaction limit for a key written with its
/// write conflict range: the mutation's key (with a versionstamp's 4-byte offset) and value,
/// and the range's two ends (a versionstamped key's range spans every stamp: two keys of its
/// length).
const fn written(key: usize, value: usize) -> usize {
    (key + 4 + value) + (2 * key + 1)
}

/// Bytes of a read conflict range whose ends are keys of about `key` bytes.
const fn read_range(key: usize) -> usize {
    2 * key + 1
}

/// The longest namespace prefix (the namespace and its `0x00`).
const LONGEST_PREFIX: usize = MAX_NAMESPACE_LEN + 1;

/// An upper bound of the bytes one event adds to its append's transaction, as FoundationDB
/// counts them (keys and values written, write conflict ranges, the read of its id), for the
/// longest namespace and as if its type and each tag were an index block of its own. The
/// store counts a whole append exactly (blocks are shared by the events of one append) and
/// refuses more than [`MAX_APPEND_BYTES`](crate::limits::MAX_APPEND_BYTES); batches whose
/// events add up to less always fit.
pub fn append_bytes(event: &RawEvent) -> usize {
    let record = codec::RECORD_OVERHEAD
        + event.event_type.len()
        + event.tags.iter().map(|t| t.as_str().len()).sum::<usize>()
        + event.id.as_ref().map_or(0, String::len)
        + event.metadata.as_ref().map_or(0, Vec::len)
        + event.payload.len();
    let index_key = |name: usize| LONGEST_PREFIX + 1 + name + 1 + POSITION_LEN;
    let blocks = written(index_key(event.event_type.len()), 0)
        + event.tags.iter().map(|t| written(index_key(t.as_str().len()), 0)).sum::<usize>();
    let id = event.id.as_ref().map_or(0, |id| {
        let key = LONGEST_PREFIX + 1 + id.len();
        read_range(key) + written(key, VERSIONSTAMP_LEN + 2)
    });
    written(LONGEST_PREFIX + 1 + POSITION_LEN, record) + blocks + id
}

impl PreparedAppend {
    /// The bytes the append's transaction counts against FoundationDB's limit, computed as
    /// FoundationDB does (keys and values written, write conflict ranges, read conflict
    /// ranges) with the store's own keys: the events, their index blocks and ids, the pulse,
    /// the reads of ids and conditions (one range per scan), and the `extra` keys of the run
    /// (commit marker, receipt) as `(key length, value length)`.
    pub fn transaction_bytes(&self, layout: &Layout, extra: &[(usize, usize)]) -> usize {
        let log_key = layout.log().base.len() + POSITION_LEN;
        let mut bytes = written(layout.pulse_key(0).len(), 8);
        for (event, record) in self.events.iter().zip(&self.records) {
            bytes += written(log_key, record.len());
            if let Some(id) = &event.id {
                let key = layout.id_key(id).len();
                bytes += read_range(key) + written(key, VERSIONSTAMP_LEN + 2);
            }
        }
        let (types, tags) = self.blocks();
        let block = |base: usize, indexes: &Vec<u16>| written(base + POSITION_LEN, 2 * (indexes.len() - 1));
        bytes += types.iter().map(|(name, indexes)| block(layout.type_index(name).base.len(), indexes)).sum::<usize>();
        bytes += tags.iter().map(|(tag, indexes)| block(layout.tag_index(tag).base.len(), indexes)).sum::<usize>();
        for scan in self.conditions.iter().flat_map(|(plans, _)| plans).flat_map(|plan| &plan.scans) {
            bytes += read_range(scan.range.base.len() + POSITION_LEN + 1);
        }
        bytes + extra.iter().map(|(key, value)| read_range(*key) + written(*key, *value)).sum::<usize>()
    }

    /// The events of each type and each tag of the append, by index: one index block each.
    fn blocks(&self) -> (Blocks<&str>, Blocks<&Tag>) {
        let (mut types, mut tags) = (Blocks::new(), Blocks::new());
        for (index, event) in self.events.iter().enumerate() {
            types.entry(event.event_type.as_str()).or_default().push(index as u16);
            for tag in &event.tags {
                tags.entry(tag).or_default().push(index as u16);
            }
        }
        (types, tags)
    }

    /// Prepares checked `events` and `conditions` for `layout`.
    pub fn new(layout: &Layout, mut events: Vec<RawEvent>, conditions: Vec<AppendCondition>) -> Self {
        let recorded_at = codec::micros_since_epoch(SystemTime::now());
        events.iter_mut().for_each(RawEvent::normalize);
        let records = events.iter().map(|e| codec::encode(e, recorded_at)).collect();
        let conditions =
            conditions.into_iter().map(|c| (plan_query(layout, &c.fail_if_events_match), c.after)).collect();
        PreparedAppend { events, records, conditions, pulse_shard: rand::random::<u8>() % PULSE_SHARDS }
    }
}

/// The body of the append transaction.
pub async fn append_body<T: KvTransaction>(
    tx: &T,
    layout: &Layout,
    append: &PreparedAppend,
) -> Result<AppendOutcome, Error> {
    if let Some(stored) = stored_ids(tx, layout, append).await? {
        return Ok(AppendOutcome::AlreadyStored(stored));
    }
    for (condition, (plans, after)) in append.conditions.iter().enumerate() {
        if let Some(position) = first_match_after(tx, layout, plans, *after).await? {
            return Err(Error::ConditionFailed { condition, position });
        }
    }
    write_events(tx, layout, append);
    Ok(AppendOutcome::Written)
}

/// `Some(positions)` if every event's id is stored; an error if only some are.
async fn stored_ids<T: KvTransaction>(
    tx: &T,
    layout: &Layout,
    append: &PreparedAppend,
) -> Result<Option<Vec<Position>>, Error> {
    let ids: Vec<&String> = append.events.iter().filter_map(|event| event.id.as_ref()).collect();
    if ids.is_empty() {
        return Ok(None);
    }
    let mut missing = append.events.len() - ids.len();
    let keys = ids.iter().map(|id| layout.id_key(id)).collect();
    let stored = concurrent_gets(tx, keys, false).await?;
    let mut found = Vec::new();
    for (id, stored) in ids.into_iter().zip(stored) {
        match stored {
            Some(bytes) => {
                let position = Position::from_bytes(&bytes)
                    .ok_or_else(|| StorageError::Corrupt(format!("id index entry of {id:?} holds no position")))?;
                found.push((id, position));
            }
            None => missing += 1,
        }
    }
    match (found.first(), missing) {
        (None, _) => Ok(None),
        (Some(_), 0) => Ok(Some(found.into_iter().map(|(_, p)| p).collect())),
        (Some((id, position)), _) => Err(Error::PartialDuplicate { id: (*id).clone(), position: *position }),
    }
}

/// Reads issued together by one transaction, at most: FoundationDB answers them in parallel
/// (a lookup of 10,000 ids in series takes some 10,000 round trips).
pub const CONCURRENT_READS: usize = 256;

/// The values of `keys`, in order, read with up to [`CONCURRENT_READS`] reads in flight.
pub async fn concurrent_gets<T: KvTransaction>(
    tx: &T,
    keys: Vec<Vec<u8>>,
    snapshot: bool,
) -> Result<Vec<Option<Vec<u8>>>, StorageError> {
    let mut keys = keys.into_iter();
    let mut pending = FuturesOrdered::new();
    let mut values = Vec::with_capacity(keys.len());
    loop {
        while pending.len() < CONCURRENT_READS {
            let Some(key) = keys.next() else { break };
            pending.push_back(get_owned(tx.clone(), key, snapshot));
        }
        match pending.next().await {
            Some(value) => values.push(value?),
            None => return Ok(values),
        }
    }
}

/// One read owning its transaction handle and key, so that many can be in flight.
async fn get_owned<T: KvTransaction>(tx: T, key: Vec<u8>, snapshot: bool) -> Result<Option<Vec<u8>>, StorageError> {
    tx.get(&key, snapshot).await
}

/// The first event after `after` matching any of `plans` (reads add conflict ranges).
async fn first_match_after<T: KvTransaction>(
    tx: &T,
    layout: &Layout,
    plans: &[ItemPlan],
    after: Option<Position>,
) -> Result<Option<Position>, Error> {
    let low = after.map_or(Position::ZERO, Position::next);
    if after == Some(Position::MAX) {
        return Ok(None);
    }
    let log = layout.log();
    let mut first: Option<Position> = None;
    for scan in plans.iter().flat_map(|p| &p.scans) {
        let mut window = Window::new(low, first.map_or(Position::MAX, Position::prev));
        while !window.is_exhausted() {
            let page = read_page(tx, &log, scan, &window, false, PageLimit::events(CONDITION_PAGE), false).await?;
            if let Some(event) = page.events.first() {
                first = Some(first.map_or(event.position, |f| f.min(event.position)));
                break;
            }
            window = page.rest;
        }
    }
    Ok(first)
}

/// Writes the log entries, one index block per type and tag of the append, the id index
/// and a pulse.
fn write_events<T: KvTransaction>(tx: &T, layout: &Layout, append: &PreparedAppend) {
    let log = layout.log();
    for (index, (event, record)) in append.events.iter().zip(&append.records).enumerate() {
        let index = index as u16;
        let (key, offset) = log.stamped_key(index);
        tx.set_versionstamped_key(key, offset, record);
        if let Some(id) = &event.id {
            let mut value = vec![0u8; VERSIONSTAMP_LEN];
            value.extend_from_slice(&index.to_be_bytes());
            tx.set_versionstamped_value(&layout.id_key(id), value, 0);
        }
    }
    let (types, tags) = append.blocks();
    let blocks = types
        .into_iter()
        .map(|(name, indexes)| (layout.type_index(name), indexes))
        .chain(tags.into_iter().map(|(tag, indexes)| (layout.tag_index(tag), indexes)));
    for (range, indexes) in blocks {
        let last = *indexes.last().expect("a block holds at least one event");
        let (key, offset) = range.stamped_key(last);
        tx.set_versionstamped_key(key, offset, &block_value(&indexes));
    }
    tx.atomic_add(&layout.pulse_key(append.pulse_shard), append.events.len() as i64);
}
