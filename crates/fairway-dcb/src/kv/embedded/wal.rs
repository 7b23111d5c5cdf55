//! The write-ahead journal of the embedded engine.
//!
//! A durable B-tree commit costs several fsyncs' worth of page writes; an append to a
//! preallocated journal costs one small sequential write and one `fdatasync`. So each group
//! commit is first written here and synced (that is when it is durable and acknowledged),
//! then applied to the database without a sync. Every second or so the database makes a
//! durable checkpoint and the journal starts over. On open, records newer than the
//! database's last durable commit are replayed.
//!
//! Record: `magic u32 | commit u64 | length u32 | crc32 u32 | ops`, little-endian; ops are
//! `kind u8 | key | value` with `u32` length prefixes (an atomic add is journaled as its
//! delta: replay starts from the checkpointed state and applies records in order). Replay accepts only records with a
//! valid checksum whose commit numbers follow the database's without a gap, so a torn tail
//! or stale records from an earlier cycle are never applied.

use std::fs::{File, OpenOptions};
use std::io::{self, Read, Seek, SeekFrom, Write};
use std::path::Path;

const MAGIC: u32 = 0x4c41_5746;
const HEADER: usize = 4 + 8 + 4 + 4;
/// Bytes preallocated for the journal, so syncing an append never updates file metadata.
pub const PREALLOCATED: u64 = 64 * 1024 * 1024;

/// One resolved write, as replayed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Op {
    /// Set a key.
    Set(Vec<u8>, Vec<u8>),
    /// Remove a key.
    Clear(Vec<u8>),
    /// Remove `[begin, end)`.
    ClearRange(Vec<u8>, Vec<u8>),
    /// Add to the little-endian `i64` at a key.
    Add(Vec<u8>, i64),
}

/// A commit found in the journal: its number and its writes.
pub type Replayed = (u64, Vec<Op>);

/// Encodes the ops of one commit.
#[derive(Default)]
pub struct RecordBuilder {
    ops: Vec<u8>,
}

impl RecordBuilder {
    /// Adds an op.
    pub fn push(&mut self, kind: u8, key: &[u8], value: &[u8]) {
        self.ops.push(kind);
        self.ops.extend_from_slice(&(key.len() as u32).to_le_bytes());
        self.ops.extend_from_slice(key);
        self.ops.extend_from_slice(&(value.len() as u32).to_le_bytes());
        self.ops.extend_from_slice(value);
    }

    /// Clears the builder for reuse.
    pub fn clear(&mut self) {
        self.ops.clear();
    }
}

/// Op kinds in records.
pub const SET: u8 = 1;
/// See [`SET`].
pub const CLEAR: u8 = 2;
/// See [`SET`].
pub const CLEAR_RANGE: u8 = 3;
/// See [`SET`].
pub const ADD: u8 = 4;

/// The journal file.
pub struct Journal {
    file: File,
    offset: u64,
    buffer: Vec<u8>,
}

/// Adds what was being done to an I/O error, keeping its kind (a full disk stays one).
fn io(context: &str) -> impl Fn(io::Error) -> io::Error + '_ {
    move |e| io::Error::new(e.kind(), format!("journal {context}: {e}"))
}

impl Journal {
    /// Opens (creating and preallocating if needed) the journal at `path` and returns it with
    /// the records that follow commit `last_durable` without a gap. A preallocation that
    /// fails (e.g. on a full disk) is undone: the file keeps its former length.
    pub fn open(path: &Path, last_durable: u64) -> io::Result<(Self, Vec<Replayed>)> {
        let mut file =
            OpenOptions::new().read(true).write(true).create(true).truncate(false).open(path).map_err(io("open"))?;
        let mut bytes = Vec::new();
        file.read_to_end(&mut bytes).map_err(io("read"))?;
        let records = parse(&bytes, last_durable);
        let len = bytes.len() as u64;
        if len < PREALLOCATED
            && let Err(err) = preallocate(&mut file, len)
        {
            file.set_len(len).map_err(io("undo the preallocation"))?;
            return Err(err);
        }
        Ok((Journal { file, offset: 0, buffer: Vec::new() }, records))
    }

    /// Bytes written since the last reset.
    pub fn len(&self) -> u64 {
        self.offset
    }

    /// Whether nothing was written since the last reset.
    pub fn is_empty(&self) -> bool {
        self.offset == 0
    }

    /// Appends the record of `commit` and syncs it: once this returns, the commit is durable.
    /// On an error the write position stays put, so the next record overwrites a torn one.
    pub fn append(&mut self, commit: u64, record: &RecordBuilder) -> io::Result<()> {
        self.buffer.clear();
        self.buffer.extend_from_slice(&MAGIC.to_le_bytes());
        self.buffer.extend_from_slice(&commit.to_le_bytes());
        self.buffer.extend_from_slice(&(record.ops.len() as u32).to_le_bytes());
        self.buffer.extend_from_slice(&crc32fast::hash(&record.ops).to_le_bytes());
        self.buffer.extend_from_slice(&record.ops);
        self.file.seek(SeekFrom::Start(self.offset)).map_err(io("seek"))?;
        self.file.write_all(&self.buffer).map_err(io("write"))?;
        self.file.sync_data().map_err(io("sync"))?;
        self.offset += self.buffer.len() as u64;
        Ok(())
    }

    /// Starts over after a durable checkpoint: later records overwrite from the beginning.
    pub fn reset(&mut self) {
        self.offset = 0;
    }
}

/// Zero-fills the journal from `len` to its preallocated size and syncs it. Zero-filled, not
/// sparse: appends then change no file metadata.
fn preallocate(file: &mut File, len: u64) -> io::Result<()> {
    file.seek(SeekFrom::Start(len)).map_err(io("seek"))?;
    let zeros = vec![0u8; 1 << 20];
    let mut left = PREALLOCATED - len;
    while left > 0 {
        let n = left.min(zeros.len() as u64) as usize;
        file.write_all(&zeros[..n]).map_err(io("preallocate"))?;
        left -= n as u64;
    }
    file.sync_all().map_err(io("sync"))
}

/// The valid, gapless records after `last_durable`.
fn parse(bytes: &[u8], last_durable: u64) -> Vec<Replayed> {
    let mut records = Vec::new();
    let mut at = 0usize;
    let mut expected = last_durable + 1;
    let mut seen_first = false;
    while at + HEADER <= bytes.len() {
        let word = |from: usize| u32::from_le_bytes(bytes[from..from + 4].try_into().expect("4 bytes"));
        if word(at) != MAGIC {
            break;
        }
        let commit = u64::from_le_bytes(bytes[at + 4..at + 12].try_into().expect("8 bytes"));
        let len = word(at + 12) as usize;
        let crc = word(at + 16);
        let Some(ops) = bytes.get(at + HEADER..at + HEADER + len) else { break };
        if crc32fast::hash(ops) != crc {
            break;
        }
        at += HEADER + len;
        if commit <= last_durable && !seen_first {
            continue; // Already in the database.
        }
        if commit != expected {
            break;
        }
        seen_first = true;
        match decode_ops(ops) {
            Some(ops) => records.push((commit, ops)),
            None => break,
        }
        expected += 1;
    }
    records
}

fn decode_ops(mut bytes: &[u8]) -> Option<Vec<Op>> {
    fn field<'a>(bytes: &mut &'a [u8]) -> Option<&'a [u8]> {
        let len = u32::from_le_bytes(bytes.get(..4)?.try_into().ok()?) as usize;
        let out = bytes.get(4..4 + len)?;
        *bytes = &bytes[4 + len..];
        Some(out)
    }
    let mut ops = Vec::new();
    while let Some((&kind, rest)) = bytes.split_first() {
        bytes = rest;
        let key = field(&mut bytes)?.to_vec();
        let value = field(&mut bytes)?.to_vec();
        ops.push(match kind {
            SET => Op::Set(key, value),
            CLEAR => Op::Clear(key),
            CLEAR_RANGE => Op::ClearRange(key, value),
            ADD => Op::Add(key, i64::from_le_bytes(value.try_into().ok()?)),
            _ => return None,
        });
    }
    Some(ops)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn record(key: &[u8]) -> RecordBuilder {
        let mut r = RecordBuilder::default();
        r.push(SET, key, b"v");
        r.push(CLEAR_RANGE, b"a", b"b");
        r
    }

    #[test]
    fn replays_only_gapless_valid_records_after_the_checkpoint() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("journal");
        let (mut journal, replay) = Journal::open(&path, 0).unwrap();
        assert!(replay.is_empty());
        for commit in 1..=3 {
            journal.append(commit, &record(&[commit as u8])).unwrap();
        }
        let (_, replay) = Journal::open(&path, 1).unwrap();
        assert_eq!(replay.iter().map(|r| r.0).collect::<Vec<_>>(), vec![2, 3]);
        assert_eq!(replay[0].1[0], Op::Set(vec![2], b"v".to_vec()));
        assert_eq!(replay[0].1[1], Op::ClearRange(b"a".to_vec(), b"b".to_vec()));

        // A new cycle overwrites from the start; stale records behind it are ignored.
        let (mut journal, _) = Journal::open(&path, 3).unwrap();
        journal.append(4, &record(b"x")).unwrap();
        let (_, replay) = Journal::open(&path, 3).unwrap();
        assert_eq!(replay.iter().map(|r| r.0).collect::<Vec<_>>(), vec![4]);

        // A torn record is not replayed.
        let mut bytes = std::fs::read(&path).unwrap();
        bytes[HEADER + 2] ^= 0xff;
        std::fs::write(&path, &bytes).unwrap();
        let (_, replay) = Journal::open(&path, 3).unwrap();
        assert!(replay.is_empty());
    }
}
