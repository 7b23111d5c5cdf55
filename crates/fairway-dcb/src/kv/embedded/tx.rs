//! Transactions of the embedded engine: snapshot reads, buffered writes, recorded read ranges.

use std::collections::{BTreeMap, HashMap};
use std::ops::Bound;
use std::sync::atomic::Ordering;
use std::sync::{Arc, Mutex};

use redb::ReadableDatabase;
use tokio::sync::oneshot;

use super::committer::{CommitReply, CommitRequest, Mutation};
use super::{DATA, Shared};
use crate::error::StorageError;
use crate::kv::{KvTransaction, RangeScan};

type Table = redb::ReadOnlyTable<&'static [u8], &'static [u8]>;

/// A callback receiving scanned pairs.
type Visitor<'a> = dyn FnMut(&[u8], &[u8]) -> Result<(), StorageError> + 'a;

/// A transaction of the embedded engine. Clones are handles to the same transaction.
#[derive(Clone)]
pub struct EmbeddedTx {
    inner: Arc<TxInner>,
}

struct TxInner {
    read_version: u64,
    table: Option<Table>,
    state: Mutex<TxState>,
}

#[derive(Default)]
struct TxState {
    /// Read conflict ranges `[begin, end)`.
    reads: Vec<(Vec<u8>, Vec<u8>)>,
    /// Mutations in call order.
    mutations: Vec<Mutation>,
    /// For a key whose last mutation is a plain set: that set's index in `mutations`. A
    /// later set of the key replaces its value there, so a key set many times (a view's
    /// document changed by several events of a batch) is journaled and applied once.
    last_set: HashMap<Vec<u8>, usize>,
    /// Own plain writes, visible to own reads (`None`: cleared).
    overlay: BTreeMap<Vec<u8>, Option<Vec<u8>>>,
    /// Own cleared ranges, visible to own reads.
    cleared: Vec<(Vec<u8>, Vec<u8>)>,
    committed: bool,
    /// Background work: its commit may wait for a command's group (see
    /// [`KvTransaction::set_background`]).
    background: bool,
}

fn after(key: &[u8]) -> Vec<u8> {
    let mut next = Vec::with_capacity(key.len() + 1);
    next.extend_from_slice(key);
    next.push(0);
    next
}

impl EmbeddedTx {
    pub(super) fn begin(shared: Arc<Shared>) -> Result<Self, StorageError> {
        // Read the commit number before opening the snapshot: the snapshot then holds at
        // least that commit, and checking conflicts from an older number is only safer.
        let read_version = shared.committed.load(Ordering::SeqCst);
        let read = shared.db.begin_read().map_err(StorageError::engine)?;
        let table = match read.open_table(DATA) {
            Ok(table) => Some(table),
            Err(redb::TableError::TableDoesNotExist(_)) => None,
            Err(e) => return Err(StorageError::engine(e)),
        };
        Ok(EmbeddedTx { inner: Arc::new(TxInner { read_version, table, state: Mutex::new(TxState::default()) }) })
    }

    fn state(&self) -> std::sync::MutexGuard<'_, TxState> {
        self.inner.state.lock().expect("transaction state lock")
    }

    /// The request to send to the committer, or `None` for a read-only transaction.
    /// Whether the transaction has writes to commit.
    pub(super) fn writes(&self) -> bool {
        let state = self.state();
        !state.committed && !state.mutations.is_empty()
    }

    pub(super) fn take_commit_request(&self) -> Option<(CommitRequest, oneshot::Receiver<CommitReply>)> {
        let mut state = self.state();
        if state.committed || state.mutations.is_empty() {
            return None;
        }
        state.committed = true;
        let (reply, receiver) = oneshot::channel();
        let request = CommitRequest {
            read_version: self.inner.read_version,
            reads: std::mem::take(&mut state.reads),
            mutations: std::mem::take(&mut state.mutations),
            background: state.background,
            reply,
        };
        Some((request, receiver))
    }

    fn snapshot_get(&self, key: &[u8]) -> Result<Option<Vec<u8>>, StorageError> {
        let Some(table) = &self.inner.table else { return Ok(None) };
        Ok(table.get(key).map_err(StorageError::engine)?.map(|v| v.value().to_vec()))
    }

    /// Visits the snapshot's pairs in `scan` (at most `limit`, 0: all); returns the count
    /// and the last key visited.
    fn snapshot_visit(
        &self,
        scan: &RangeScan,
        limit: usize,
        visit: &mut Visitor<'_>,
    ) -> Result<(usize, Option<Vec<u8>>), StorageError> {
        let Some(table) = &self.inner.table else { return Ok((0, None)) };
        if scan.begin >= scan.end {
            return Ok((0, None));
        }
        let bounds: (Bound<&[u8]>, Bound<&[u8]>) = (Bound::Included(&scan.begin), Bound::Excluded(&scan.end));
        let mut range = table.range::<&[u8]>(bounds).map_err(StorageError::engine)?;
        let limit = if limit == 0 { usize::MAX } else { limit };
        let mut count = 0;
        let mut last = None;
        while count < limit {
            let item = if scan.reverse { range.next_back() } else { range.next() };
            let Some(item) = item else { break };
            let (key, value) = item.map_err(StorageError::engine)?;
            visit(key.value(), value.value())?;
            count += 1;
            if count == limit {
                last = Some(key.value().to_vec());
            }
        }
        Ok((count, last))
    }
}

impl TxState {
    fn own_value(&self, key: &[u8]) -> Option<Option<Vec<u8>>> {
        if let Some(value) = self.overlay.get(key) {
            return Some(value.clone());
        }
        self.cleared.iter().any(|(b, e)| b.as_slice() <= key && key < e.as_slice()).then_some(None)
    }

    fn touches(&self, begin: &[u8], end: &[u8]) -> bool {
        self.overlay.range::<[u8], _>((Bound::Included(begin), Bound::Excluded(end))).next().is_some()
            || self.cleared.iter().any(|(b, e)| b.as_slice() < end && begin < e.as_slice())
    }
}

impl KvTransaction for EmbeddedTx {
    async fn get(&self, key: &[u8], snapshot: bool) -> Result<Option<Vec<u8>>, StorageError> {
        {
            let mut state = self.state();
            if !snapshot {
                state.reads.push((key.to_vec(), after(key)));
            }
            if let Some(own) = state.own_value(key) {
                return Ok(own);
            }
        }
        self.snapshot_get(key)
    }

    async fn scan_range<V>(&self, scan: &RangeScan, mut visit: V) -> Result<usize, StorageError>
    where
        V: FnMut(&[u8], &[u8]) -> Result<(), StorageError> + Send,
    {
        let own_writes = self.state().touches(&scan.begin, &scan.end);
        let (count, last) = if own_writes {
            // Merge the snapshot with this transaction's own writes, then apply the limit.
            let mut merged: BTreeMap<Vec<u8>, Vec<u8>> = BTreeMap::new();
            self.snapshot_visit(scan, 0, &mut |k, v| {
                merged.insert(k.to_vec(), v.to_vec());
                Ok(())
            })?;
            let pairs: Vec<(Vec<u8>, Vec<u8>)> = {
                let state = self.state();
                merged.retain(|k, _| state.own_value(k).is_none());
                let inside = (Bound::Included(&scan.begin[..]), Bound::Excluded(&scan.end[..]));
                for (k, v) in state.overlay.range::<[u8], _>(inside) {
                    if let Some(v) = v {
                        merged.insert(k.clone(), v.clone());
                    }
                }
                let limit = if scan.limit == 0 { usize::MAX } else { scan.limit };
                if scan.reverse {
                    merged.into_iter().rev().take(limit).collect()
                } else {
                    merged.into_iter().take(limit).collect()
                }
            };
            for (k, v) in &pairs {
                visit(k, v)?;
            }
            let limited = scan.limit != 0 && pairs.len() >= scan.limit;
            (pairs.len(), if limited { pairs.last().map(|(k, _)| k.clone()) } else { None })
        } else {
            self.snapshot_visit(scan, scan.limit, &mut visit)?
        };
        if !scan.snapshot {
            // A limited scan conflicts only on what it covered, as in FoundationDB.
            let range = match (last, scan.reverse) {
                (Some(last), false) => (scan.begin.clone(), after(&last)),
                (Some(last), true) => (last, scan.end.clone()),
                (None, _) => (scan.begin.clone(), scan.end.clone()),
            };
            self.state().reads.push(range);
        }
        Ok(count)
    }

    fn set(&self, key: &[u8], value: &[u8]) {
        let mut state = self.state();
        state.overlay.insert(key.to_vec(), Some(value.to_vec()));
        match state.last_set.get(key).copied() {
            // Nothing touched the key since that set: the new value takes its place.
            Some(index) => state.mutations[index] = Mutation::Set(key.to_vec(), value.to_vec()),
            None => {
                let index = state.mutations.len();
                state.mutations.push(Mutation::Set(key.to_vec(), value.to_vec()));
                state.last_set.insert(key.to_vec(), index);
            }
        }
    }

    fn clear(&self, key: &[u8]) {
        let mut state = self.state();
        state.overlay.insert(key.to_vec(), None);
        state.last_set.remove(key);
        state.mutations.push(Mutation::Clear(key.to_vec()));
    }

    fn clear_range(&self, begin: &[u8], end: &[u8]) {
        let mut state = self.state();
        let inside: Vec<Vec<u8>> = state
            .overlay
            .range::<[u8], _>((Bound::Included(begin), Bound::Excluded(end)))
            .map(|(k, _)| k.clone())
            .collect();
        for key in inside {
            state.overlay.remove(&key);
        }
        state.cleared.push((begin.to_vec(), end.to_vec()));
        state.last_set.clear();
        state.mutations.push(Mutation::ClearRange(begin.to_vec(), end.to_vec()));
    }

    fn atomic_add(&self, key: &[u8], delta: i64) {
        let mut state = self.state();
        state.last_set.remove(key);
        state.mutations.push(Mutation::Add(key.to_vec(), delta));
    }

    fn set_versionstamped_key(&self, key: Vec<u8>, offset: usize, value: &[u8]) {
        let mut state = self.state();
        // The key is known only once stamped: no earlier set may take a later value.
        state.last_set.clear();
        state.mutations.push(Mutation::StampKey { key, offset, value: value.to_vec() });
    }

    fn set_versionstamped_value(&self, key: &[u8], value: Vec<u8>, offset: usize) {
        let mut state = self.state();
        state.last_set.remove(key);
        state.mutations.push(Mutation::StampValue { key: key.to_vec(), value, offset });
    }

    async fn clock_micros(&self) -> Result<u64, StorageError> {
        Ok(monotonic_wall_clock_micros())
    }

    fn set_background(&self) {
        self.state().background = true;
    }
}

/// The host's clock in microseconds since the Unix epoch, never below a value it returned
/// before in this process (a clock stepped back holds still until it catches up).
fn monotonic_wall_clock_micros() -> u64 {
    static LAST: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |since| u64::try_from(since.as_micros()).unwrap_or(u64::MAX));
    LAST.fetch_max(now, Ordering::Relaxed).max(now)
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use rand::rngs::StdRng;
    use rand::{Rng, SeedableRng};

    use crate::kv::{KvEngine, KvTransaction, RangeScan, little_endian_i64};
    use crate::{EmbeddedEngine, StorageError};

    fn key(k: u8) -> Vec<u8> {
        vec![b'k', k]
    }

    /// Random runs of sets, clears, range clears and adds over a few keys, each in one
    /// transaction, leave exactly what applying them one by one to a map leaves: a key
    /// set again takes its latest value, whatever came between.
    #[tokio::test]
    async fn repeated_sets_coalesce_without_changing_what_is_stored() {
        let dir = tempfile::tempdir().unwrap();
        let engine = EmbeddedEngine::volatile(dir.path());
        let mut model: BTreeMap<Vec<u8>, i64> = BTreeMap::new();
        let mut rng = StdRng::seed_from_u64(7);
        for _ in 0..200 {
            let ops: Vec<(u8, u8, i64)> = (0..rng.random_range(1..40))
                .map(|_| (rng.random_range(0..4), rng.random_range(0..6), rng.random_range(-9..9)))
                .collect();
            for &(op, k, n) in &ops {
                match op {
                    0 | 1 => _ = model.insert(key(k), n),
                    2 => _ = model.remove(&key(k)),
                    _ if k == 5 => model.retain(|key, _| {
                        !(key.as_slice() >= [b'k', 1].as_slice() && key.as_slice() < [b'k', 3].as_slice())
                    }),
                    _ => *model.entry(key(k)).or_insert(0) += n,
                }
            }
            engine
                .transact(|tx| {
                    let ops = ops.clone();
                    async move {
                        for (op, k, n) in ops {
                            match op {
                                0 | 1 => tx.set(&key(k), &n.to_le_bytes()),
                                2 => tx.clear(&key(k)),
                                _ if k == 5 => tx.clear_range(&key(1), &key(3)),
                                _ => tx.atomic_add(&key(k), n),
                            }
                        }
                        Ok::<_, StorageError>(())
                    }
                })
                .await
                .unwrap();
            let stored = engine
                .transact(|tx| async move {
                    let scan = RangeScan { begin: key(0), end: key(9), limit: 0, reverse: false, snapshot: true };
                    tx.get_range(&scan).await
                })
                .await
                .unwrap()
                .value;
            let stored: BTreeMap<Vec<u8>, i64> =
                stored.into_iter().map(|kv| (kv.key, little_endian_i64(&kv.value))).collect();
            assert_eq!(stored, model, "after {ops:?}");
        }
    }

    /// A key set many times in a transaction is one mutation to journal and apply.
    #[tokio::test]
    async fn a_key_set_many_times_is_one_mutation() {
        let dir = tempfile::tempdir().unwrap();
        let engine = EmbeddedEngine::volatile(dir.path());
        let tx = engine.begin().unwrap();
        for n in 0..100i64 {
            tx.set(&key(1), &n.to_le_bytes());
            tx.set(&key(2), &n.to_le_bytes());
        }
        tx.atomic_add(&key(1), 1);
        tx.set(&key(1), b"after the add");
        let (request, _) = tx.take_commit_request().unwrap();
        assert_eq!(request.mutations.len(), 4, "set k1, set k2, add k1, set k1");
        assert!(
            matches!(&request.mutations[1], super::Mutation::Set(k, v) if *k == key(2) && *v == 99i64.to_le_bytes())
        );
    }
}
