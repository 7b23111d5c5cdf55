//! The conflict history: which keys recent commits wrote, to check read ranges against.

use std::collections::{BTreeSet, VecDeque};
use std::ops::Bound;

/// Keys and ranges written by one commit.
#[derive(Default)]
pub struct WriteSet {
    keys: BTreeSet<Vec<u8>>,
    ranges: Vec<(Vec<u8>, Vec<u8>)>,
}

impl WriteSet {
    /// Records a written key.
    pub fn key(&mut self, key: Vec<u8>) {
        self.keys.insert(key);
    }

    /// Records a cleared range.
    pub fn range(&mut self, begin: Vec<u8>, end: Vec<u8>) {
        self.ranges.push((begin, end));
    }

    /// Number of keys and ranges recorded.
    pub fn len(&self) -> usize {
        self.keys.len() + self.ranges.len()
    }

    /// Whether anything written lies in `[begin, end)`.
    pub fn intersects(&self, begin: &[u8], end: &[u8]) -> bool {
        (begin < end && self.keys.range::<[u8], _>((Bound::Included(begin), Bound::Excluded(end))).next().is_some())
            || self.ranges.iter().any(|(b, e)| b.as_slice() < end && begin < e.as_slice())
    }
}

/// Write sets of recent commits, newest last, bounded in size.
pub struct History {
    commits: VecDeque<(u64, WriteSet)>,
    /// Every commit after this number is in `commits`.
    floor: u64,
    entries: usize,
    max_entries: usize,
}

/// Why a transaction cannot commit.
#[derive(Debug, PartialEq, Eq)]
pub enum Verdict {
    /// No conflict.
    Clear,
    /// A commit after the snapshot wrote into a read range.
    Conflict,
    /// The snapshot is older than the history kept.
    TooOld,
}

impl History {
    /// An empty history starting after commit `last_commit`, keeping about `max_entries`
    /// written keys.
    pub fn new(last_commit: u64, max_entries: usize) -> Self {
        History { commits: VecDeque::new(), floor: last_commit, entries: 0, max_entries }
    }

    /// Records commit `version`'s writes and forgets the oldest beyond the size bound.
    pub fn push(&mut self, version: u64, writes: WriteSet) {
        self.entries += writes.len();
        self.commits.push_back((version, writes));
        while self.entries > self.max_entries && self.commits.len() > 1 {
            let (version, old) = self.commits.pop_front().expect("non-empty");
            self.entries -= old.len();
            self.floor = version;
        }
    }

    /// Checks `reads` of a transaction whose snapshot holds every commit up to
    /// `read_version` against later commits and the writes already accepted into the
    /// commit being built (`pending`).
    pub fn check(&self, read_version: u64, reads: &[(Vec<u8>, Vec<u8>)], pending: &WriteSet) -> Verdict {
        if reads.is_empty() {
            return Verdict::Clear;
        }
        if read_version < self.floor {
            return Verdict::TooOld;
        }
        let first_newer = self.commits.partition_point(|(v, _)| *v <= read_version);
        let newer = self.commits.range(first_newer..).map(|(_, w)| w);
        for writes in newer.chain(std::iter::once(pending)) {
            if reads.iter().any(|(b, e)| writes.intersects(b, e)) {
                return Verdict::Conflict;
            }
        }
        Verdict::Clear
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn set(keys: &[&[u8]]) -> WriteSet {
        let mut w = WriteSet::default();
        keys.iter().for_each(|k| w.key(k.to_vec()));
        w
    }

    #[test]
    fn only_later_overlapping_writes_conflict() {
        let mut history = History::new(0, 1000);
        history.push(1, set(&[b"a1"]));
        history.push(2, set(&[b"b1"]));
        let reads = vec![(b"a".to_vec(), b"b".to_vec())];
        assert_eq!(history.check(0, &reads, &WriteSet::default()), Verdict::Conflict);
        assert_eq!(history.check(1, &reads, &WriteSet::default()), Verdict::Clear);
        assert_eq!(history.check(1, &reads, &set(&[b"a9"])), Verdict::Conflict);
        let mut ranged = WriteSet::default();
        ranged.range(b"a5".to_vec(), b"c".to_vec());
        assert_eq!(history.check(2, &reads, &ranged), Verdict::Conflict);
        assert_eq!(history.check(2, &[], &set(&[b"a"])), Verdict::Clear);
    }

    #[test]
    fn snapshots_older_than_the_history_are_too_old() {
        let mut history = History::new(0, 2);
        history.push(1, set(&[b"x"]));
        history.push(2, set(&[b"y"]));
        history.push(3, set(&[b"z"]));
        let reads = vec![(b"q".to_vec(), b"r".to_vec())];
        assert_eq!(history.check(0, &reads, &WriteSet::default()), Verdict::TooOld);
        assert_eq!(history.check(2, &reads, &WriteSet::default()), Verdict::Clear);
    }
}
