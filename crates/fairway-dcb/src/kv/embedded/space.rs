//! Disk space: what is free, the space reserve, and the database backend that spends the
//! reserve instead of failing a write on a full disk.
//!
//! A full disk must not break the database: redb latches its first I/O error and then fails
//! every call, reads included, until it is reopened. So the engine keeps a *reserve file*
//! ([`RESERVE_FILE`], [`DEFAULT_RESERVE`] bytes by default) beside the database. When a
//! database write fails for lack of space, [`ReservedFile`] truncates the reserve to nothing
//! and retries the write, which then finds room. The committer sees the reserve spent, tries
//! to fill it again and, if the disk has no room for it, refuses writes with
//! [`StorageError::DiskFull`] while reads go on. It tries again every few hundred
//! milliseconds, so writes resume by themselves once space is freed.
//!
//! The reserve only has to cover what the database writes between two looks of the
//! committer. When the disk runs low the committer makes checkpoints small and waits for each
//! group to be applied before sequencing the next (see `committer.rs`), so that is one
//! group's pages, which the default reserve covers with a wide margin.

use std::fs::{File, OpenOptions};
use std::io::{self, Write};
use std::ops::Bound;
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, Ordering};

use redb::backends::FileBackend;
use redb::{BackendError, StorageBackend};
use tracing::warn;

use crate::error::{StorageError, human_bytes};

/// Name of the space reserve inside the engine's directory.
pub const RESERVE_FILE: &str = "fairway.reserve";
/// Default size of the space reserve.
pub const DEFAULT_RESERVE: u64 = 16 * 1024 * 1024;

/// Whether an I/O error means the filesystem (or the user's quota) is full.
pub fn is_disk_full(err: &io::Error) -> bool {
    matches!(err.kind(), io::ErrorKind::StorageFull | io::ErrorKind::QuotaExceeded)
}

/// The filesystem holding a data directory.
#[derive(Debug, Clone)]
pub struct Volume {
    dir: PathBuf,
    filesystem: PathBuf,
}

impl Volume {
    /// The volume of `dir`, which need not exist yet (its nearest existing ancestor counts).
    pub fn of(dir: &Path) -> Self {
        Volume { dir: dir.to_path_buf(), filesystem: mount_point(&existing_ancestor(dir)) }
    }

    /// The data directory.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// Bytes an unprivileged writer may still allocate on the filesystem.
    pub fn available(&self) -> io::Result<u64> {
        available(&existing_ancestor(&self.dir))
    }

    /// The error refusing writes: `available` bytes are free, `needed` must be.
    pub fn disk_full(&self, available: u64, needed: u64) -> StorageError {
        StorageError::DiskFull { dir: self.dir.clone(), filesystem: self.filesystem.clone(), available, needed }
    }

    /// The error refusing to open: the files need `needed` bytes, for `what`.
    pub fn not_enough(&self, available: u64, needed: u64, what: String) -> StorageError {
        StorageError::NotEnoughSpace {
            dir: self.dir.clone(),
            filesystem: self.filesystem.clone(),
            available,
            needed,
            what,
        }
    }
}

fn existing_ancestor(dir: &Path) -> PathBuf {
    let absolute = std::path::absolute(dir).unwrap_or_else(|_| dir.to_path_buf());
    absolute.ancestors().find(|a| a.exists()).unwrap_or(Path::new("/")).to_path_buf()
}

#[cfg(unix)]
fn available(path: &Path) -> io::Result<u64> {
    let stats = rustix::fs::statvfs(path)?;
    Ok(stats.f_bavail.saturating_mul(stats.f_frsize))
}

#[cfg(not(unix))]
fn available(_path: &Path) -> io::Result<u64> {
    Ok(u64::MAX)
}

/// The directory the filesystem holding `path` is mounted on (the highest ancestor on the
/// same device).
#[cfg(unix)]
fn mount_point(path: &Path) -> PathBuf {
    use std::os::unix::fs::MetadataExt;
    let path = path.canonicalize().unwrap_or_else(|_| path.to_path_buf());
    let Ok(device) = std::fs::metadata(&path).map(|m| m.dev()) else { return path };
    let mut mount = path.clone();
    for ancestor in path.ancestors().skip(1) {
        match std::fs::metadata(ancestor) {
            Ok(meta) if meta.dev() == device => mount = ancestor.to_path_buf(),
            _ => break,
        }
    }
    mount
}

#[cfg(not(unix))]
fn mount_point(path: &Path) -> PathBuf {
    path.to_path_buf()
}

/// The reserve file: space held for the database, given up when it runs out.
#[derive(Debug)]
pub struct Reserve {
    path: PathBuf,
    target: u64,
    file: Mutex<File>,
    /// Set when the reserve was given up to a database write; taken by the committer.
    spent: AtomicBool,
    /// Set when a database write failed for lack of space with the reserve already spent.
    exhausted: AtomicBool,
}

impl Reserve {
    /// Opens (creating if needed, without filling) the reserve of `target` bytes at `path`.
    pub fn open(path: &Path, target: u64) -> io::Result<Self> {
        let file = OpenOptions::new().read(true).write(true).create(true).truncate(false).open(path)?;
        Ok(Reserve {
            path: path.to_path_buf(),
            target,
            file: Mutex::new(file),
            spent: AtomicBool::new(false),
            exhausted: AtomicBool::new(false),
        })
    }

    /// Bytes the reserve should hold.
    pub fn target(&self) -> u64 {
        self.target
    }

    /// Bytes it holds now.
    pub fn len(&self) -> io::Result<u64> {
        Ok(self.file.lock().expect("reserve lock").metadata()?.len())
    }

    /// Bytes missing to the full reserve.
    pub fn missing(&self) -> io::Result<u64> {
        Ok(self.target.saturating_sub(self.len()?))
    }

    /// Grows the reserve to its full size if `available` bytes allow it. `Ok(false)`: the
    /// disk has no room for it (nothing was kept of a failed attempt).
    pub fn fill(&self, available: u64) -> io::Result<bool> {
        let file = self.file.lock().expect("reserve lock");
        let len = file.metadata()?.len();
        if len >= self.target {
            return Ok(true);
        }
        if available < self.target - len {
            return Ok(false);
        }
        match allocate(&file, len, self.target - len).and_then(|()| file.sync_all()) {
            Ok(()) => Ok(true),
            Err(err) => {
                // Give back what the failed attempt took, so the database can use it.
                file.set_len(len)?;
                if is_disk_full(&err) { Ok(false) } else { Err(err) }
            }
        }
    }

    /// Gives the whole reserve up so that a database write can proceed; `false` if it held
    /// nothing.
    pub fn release(&self) -> bool {
        let file = self.file.lock().expect("reserve lock");
        let len = file.metadata().map(|m| m.len()).unwrap_or(0);
        if len == 0 {
            return false;
        }
        if let Err(err) = file.set_len(0) {
            warn!(%err, path = %self.path.display(), "the space reserve could not be released");
            return false;
        }
        self.spent.store(true, Ordering::SeqCst);
        warn!(
            freed = %human_bytes(len),
            path = %self.path.display(),
            "the disk is full: the space reserve was released so the database write could finish"
        );
        true
    }

    /// Whether the reserve was released since the last call.
    pub fn take_spent(&self) -> bool {
        self.spent.swap(false, Ordering::SeqCst)
    }

    /// Whether a database write ever failed for lack of space with no reserve left to spend.
    pub fn exhausted(&self) -> bool {
        self.exhausted.load(Ordering::SeqCst)
    }
}

/// Allocates `len` bytes of `file` from `offset`: `fallocate` where the filesystem has it,
/// written zeros elsewhere.
fn allocate(file: &File, offset: u64, len: u64) -> io::Result<()> {
    #[cfg(target_os = "linux")]
    match rustix::fs::fallocate(file, rustix::fs::FallocateFlags::empty(), offset, len) {
        Ok(()) => return Ok(()),
        Err(rustix::io::Errno::OPNOTSUPP | rustix::io::Errno::NOSYS) => {}
        Err(err) => return Err(err.into()),
    }
    write_zeros(file, offset, len)
}

fn write_zeros(mut file: &File, offset: u64, len: u64) -> io::Result<()> {
    use std::io::{Seek, SeekFrom};
    file.seek(SeekFrom::Start(offset))?;
    let zeros = vec![0u8; 1 << 20];
    let mut left = len;
    while left > 0 {
        let n = left.min(zeros.len() as u64) as usize;
        file.write_all(&zeros[..n])?;
        left -= n as u64;
    }
    Ok(())
}

/// The database file as redb's storage backend: a write or resize that fails for lack of
/// space releases the [`Reserve`] and is tried once more.
#[derive(Debug)]
pub struct ReservedFile {
    file: FileBackend,
    reserve: std::sync::Arc<Reserve>,
}

impl ReservedFile {
    /// Wraps the open database `file`.
    pub fn new(file: File, reserve: std::sync::Arc<Reserve>) -> Result<Self, StorageError> {
        Ok(ReservedFile { file: FileBackend::new(file).map_err(StorageError::engine)?, reserve })
    }

    fn spending_reserve(&self, op: impl Fn() -> io::Result<()>) -> io::Result<()> {
        spending_reserve(&self.reserve, op)
    }
}

/// Runs a database write; if it fails for lack of space, releases the reserve and tries once
/// more.
///
/// The second try happens even when the reserve held nothing: the committer may have been
/// filling it at that very moment, and a fill that fails gives its space back before
/// [`Reserve::release`] can take the reserve's lock, so that space is free again by now.
fn spending_reserve(reserve: &Reserve, op: impl Fn() -> io::Result<()>) -> io::Result<()> {
    let result = match op() {
        Err(err) if is_disk_full(&err) => {
            reserve.release();
            op()
        }
        other => other,
    };
    if result.as_ref().is_err_and(is_disk_full) {
        reserve.exhausted.store(true, Ordering::SeqCst);
    }
    result
}

impl StorageBackend for ReservedFile {
    fn len(&self) -> Result<u64, io::Error> {
        self.file.len()
    }

    fn read(&self, offset: u64, out: &mut [u8]) -> Result<(), io::Error> {
        self.file.read(offset, out)
    }

    fn set_len(&self, len: u64) -> Result<(), io::Error> {
        self.spending_reserve(|| self.file.set_len(len))
    }

    fn sync_data(&self) -> Result<(), io::Error> {
        // Never retried: after a failed sync the kernel may have dropped the dirty pages.
        self.file.sync_data()
    }

    fn write(&self, offset: u64, data: &[u8]) -> Result<(), io::Error> {
        self.spending_reserve(|| self.file.write(offset, data))
    }

    fn close(&self) -> Result<(), io::Error> {
        self.file.close()
    }

    fn try_lock_range(&self, start: Bound<u64>, end: Bound<u64>) -> Result<bool, BackendError> {
        self.file.try_lock_range(start, end)
    }

    fn try_lock_shared_range(&self, start: Bound<u64>, end: Bound<u64>) -> Result<bool, BackendError> {
        self.file.try_lock_shared_range(start, end)
    }

    fn lock_range(&self, start: Bound<u64>, end: Bound<u64>) -> Result<(), BackendError> {
        self.file.lock_range(start, end)
    }

    fn lock_shared_range(&self, start: Bound<u64>, end: Bound<u64>) -> Result<(), BackendError> {
        self.file.lock_shared_range(start, end)
    }

    fn unlock_range(&self, start: Bound<u64>, end: Bound<u64>) -> Result<(), BackendError> {
        self.file.unlock_range(start, end)
    }

    fn query_lock_range(&self, start: Bound<u64>, end: Bound<u64>) -> Result<bool, BackendError> {
        self.file.query_lock_range(start, end)
    }
}

/// Bytes of every file under `dir` (the store's database, journal and space reserve when
/// `dir` is a data directory); unreadable entries count as 0.
pub fn bytes_on_disk(dir: &Path) -> u64 {
    let Ok(entries) = std::fs::read_dir(dir) else { return 0 };
    entries
        .flatten()
        .map(|entry| match entry.metadata() {
            Ok(meta) if meta.is_dir() => bytes_on_disk(&entry.path()),
            Ok(meta) => meta.len(),
            Err(_) => 0,
        })
        .sum()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_reserve_fills_only_when_the_disk_has_room_and_is_given_up_once() {
        let dir = tempfile::tempdir().unwrap();
        let reserve = Reserve::open(&dir.path().join(RESERVE_FILE), 1 << 20).unwrap();
        assert_eq!(reserve.missing().unwrap(), 1 << 20);
        assert!(!reserve.fill(1000).unwrap(), "1000 bytes free cannot hold 1 MiB");
        assert_eq!(reserve.len().unwrap(), 0, "a refused fill keeps nothing");
        assert!(reserve.fill(u64::MAX).unwrap());
        assert_eq!(reserve.len().unwrap(), 1 << 20);
        assert!(!reserve.take_spent());
        assert!(reserve.release());
        assert!(!reserve.release(), "an empty reserve has nothing to give");
        assert!(reserve.take_spent());
        assert!(!reserve.take_spent(), "spent is reported once");
        assert_eq!(reserve.len().unwrap(), 0);
    }

    #[test]
    fn a_write_refused_for_space_is_tried_again_even_when_the_reserve_was_already_empty() {
        use std::cell::Cell;
        let dir = tempfile::tempdir().unwrap();
        let reserve = Reserve::open(&dir.path().join(RESERVE_FILE), 1 << 20).unwrap();
        let full = || io::Error::from(io::ErrorKind::StorageFull);

        // The space a failed fill held is back by the time the write is tried again.
        let tries = Cell::new(0);
        let once_full = || {
            tries.set(tries.get() + 1);
            if tries.get() == 1 { Err(full()) } else { Ok(()) }
        };
        spending_reserve(&reserve, once_full).expect("the second try finds room");
        assert_eq!(tries.get(), 2);
        assert!(!reserve.exhausted(), "nothing was lost for lack of space");

        // Still no room on the second try: the reserve counts as exhausted.
        let tries = Cell::new(0);
        let always_full = || {
            tries.set(tries.get() + 1);
            Err(full())
        };
        assert!(spending_reserve(&reserve, always_full).is_err_and(|e| is_disk_full(&e)));
        assert_eq!(tries.get(), 2, "tried exactly twice");
        assert!(reserve.exhausted());

        // Other errors are not retried.
        let tries = Cell::new(0);
        let broken = || {
            tries.set(tries.get() + 1);
            Err(io::Error::other("broken"))
        };
        assert!(spending_reserve(&reserve, broken).is_err());
        assert_eq!(tries.get(), 1);
    }

    #[test]
    fn zeros_are_written_where_fallocate_is_missing() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("zeros");
        let file = OpenOptions::new().read(true).write(true).create(true).truncate(false).open(&path).unwrap();
        write_zeros(&file, 0, (1 << 20) + 5).unwrap();
        let bytes = std::fs::read(&path).unwrap();
        assert_eq!(bytes.len(), (1 << 20) + 5);
        assert!(bytes.iter().all(|&b| b == 0));
    }

    #[test]
    fn the_volume_of_a_missing_directory_is_its_nearest_existing_ancestor() {
        let dir = tempfile::tempdir().unwrap();
        let volume = Volume::of(&dir.path().join("a/b/c"));
        assert!(volume.available().unwrap() > 0);
        assert!(dir.path().canonicalize().unwrap().starts_with(&volume.filesystem));
        let message = volume.disk_full(1536, 16 << 20).to_string();
        assert!(message.contains("1.5 KiB") && message.contains("16 MiB") && message.contains("a/b/c"), "{message}");
    }
}
