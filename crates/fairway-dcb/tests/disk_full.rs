//! A full disk on a real filesystem: a small tmpfs (or an ext4 image on a loop device) is
//! mounted for each test (the tests run as root, as CI does; where mounting is not allowed
//! they print a notice and stop).
//!
//! - Appends until the disk is full: every acknowledged append stays readable, reads go on
//!   while writes fail with `StorageError::DiskFull` naming the data directory and the
//!   filesystem, health says why, and writes resume by themselves once space is freed.
//! - A process killed while the disk is full loses nothing: after space is freed, a new
//!   process opens the store (replaying the journal) and finds every acknowledged append.
//! - A volume too small for the preallocated files refuses to open with a message naming the
//!   space needed, and leaves no file behind.

use std::collections::BTreeMap;
use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use fairway_dcb::conformance::{read_all, tag};
use fairway_dcb::{
    DcbStore, EmbeddedEngine, EmbeddedOptions, Error, EventStore, Query, RawEvent, ReadOptions, StorageError,
};

const NAMESPACE: &str = "full";
/// Events per append and payload bytes per event: 64 KiB per append.
const EVENTS_PER_APPEND: usize = 16;
const PAYLOAD_BYTES: usize = 4096;
/// Free space left beside the store before appending: filled within seconds.
const HEADROOM: u64 = 8 * 1024 * 1024;
/// Size of the volumes the fill-then-recover tests use. The filler leaves the same
/// [`HEADROOM`] whatever the size, so filling up takes as long; what the size buys is room
/// to refill the space reserve once the filler is deleted, whatever the database grew by
/// while the disk was filling (with about 20 MiB free at the start, one run in many fell
/// a few hundred KiB short on ext4).
const RECOVERY_VOLUME_MIB: u64 = 160;
const CHILD_DIR: &str = "FAIRWAY_DISK_FULL_CHILD_DIR";

/// A small filesystem mounted on a fresh directory, unmounted when dropped (also on panic).
struct Tmpfs {
    dir: tempfile::TempDir,
    /// The directory holding the ext4 image, if it is one.
    _image: Option<tempfile::TempDir>,
}

/// Runs a command; `Err` says what failed.
fn run(command: &mut Command) -> Result<(), String> {
    match command.output() {
        Ok(output) if output.status.success() => Ok(()),
        Ok(output) => Err(format!("{command:?} failed: {}", String::from_utf8_lossy(&output.stderr).trim())),
        Err(err) => Err(format!("{command:?} could not run: {err}")),
    }
}

impl Tmpfs {
    /// Mounts a tmpfs of `mib` MiB, or prints why it cannot and returns `None`.
    fn mount(mib: u64, test: &str) -> Option<Tmpfs> {
        let dir = tempfile::tempdir().expect("a mount point");
        let mut mount = Command::new("mount");
        mount.args(["-t", "tmpfs", "-o", &format!("size={mib}m"), "tmpfs"]).arg(dir.path());
        match run(&mut mount) {
            Ok(()) => Some(Tmpfs { dir, _image: None }),
            Err(why) => {
                eprintln!("NOTICE: {test} skipped: mounting a tmpfs needs root: {why}");
                None
            }
        }
    }

    /// Mounts a fresh ext4 filesystem of `mib` MiB from an image file on a loop device, or
    /// prints why it cannot and returns `None`.
    fn mount_ext4(mib: u64, test: &str) -> Option<Tmpfs> {
        let image_dir = tempfile::tempdir().expect("a directory for the image");
        let image = image_dir.path().join("ext4.img");
        std::fs::File::create(&image).unwrap().set_len(mib * 1024 * 1024).unwrap();
        let dir = tempfile::tempdir().expect("a mount point");
        let made = run(Command::new("mkfs.ext4").args(["-q", "-F"]).arg(&image))
            .and_then(|()| run(Command::new("mount").args(["-o", "loop"]).arg(&image).arg(dir.path())));
        match made {
            Ok(()) => Some(Tmpfs { dir, _image: Some(image_dir) }),
            Err(why) => {
                eprintln!("NOTICE: {test} skipped: an ext4 loop mount needs root and mkfs.ext4: {why}");
                None
            }
        }
    }

    fn path(&self) -> &Path {
        self.dir.path()
    }
}

impl Drop for Tmpfs {
    fn drop(&mut self) {
        let unmounted = Command::new("umount").arg(self.dir.path()).status().is_ok_and(|s| s.success());
        if !unmounted {
            // Still busy (e.g. a child process not reaped yet): detach it now, freed when idle.
            let _ = Command::new("umount").arg("-l").arg(self.dir.path()).status();
        }
    }
}

fn available(path: &Path) -> u64 {
    let stats = rustix::fs::statvfs(path).expect("statvfs");
    stats.f_bavail * stats.f_frsize
}

/// Fills the filesystem of `dir` with a file, leaving `leave` bytes free.
fn filler(dir: &Path, leave: u64) -> PathBuf {
    let path = dir.join("filler");
    let mut file = std::fs::File::create(&path).unwrap();
    let chunk = vec![7u8; 1 << 20];
    let mut left = available(dir).saturating_sub(leave);
    while left > 0 {
        let n = left.min(chunk.len() as u64) as usize;
        file.write_all(&chunk[..n]).unwrap();
        left -= n as u64;
    }
    file.sync_all().unwrap();
    path
}

fn open(dir: &Path) -> Result<(Arc<EmbeddedEngine>, DcbStore<EmbeddedEngine>), Error> {
    open_with(dir, EmbeddedOptions::default())
}

fn open_with(dir: &Path, options: EmbeddedOptions) -> Result<(Arc<EmbeddedEngine>, DcbStore<EmbeddedEngine>), Error> {
    let engine = Arc::new(EmbeddedEngine::open(dir, options)?);
    let store = DcbStore::new(engine.clone(), NAMESPACE)?;
    Ok((engine, store))
}

/// Payload of event `index` of append `append`: its name, padded.
fn payload(append: usize, index: usize) -> Vec<u8> {
    let mut bytes = format!("{append}/{index}/").into_bytes();
    bytes.resize(PAYLOAD_BYTES, b'.');
    bytes
}

fn batch(append: usize) -> Vec<RawEvent> {
    (0..EVENTS_PER_APPEND)
        .map(|i| RawEvent::new("Filled", payload(append, i)).with_tags([tag(&format!("append:{append}"))]))
        .collect()
}

/// What a failed append reported.
fn disk_full_parts(err: &Error) -> Option<(&Path, &Path, u64, u64)> {
    match err {
        Error::Storage(StorageError::DiskFull { dir, filesystem, available, needed }) => {
            Some((dir, filesystem, *available, *needed))
        }
        _ => None,
    }
}

/// Checks that the store holds exactly the acknowledged appends, each whole and in order.
async fn assert_holds_exactly(store: &DcbStore<EmbeddedEngine>, acked: &BTreeMap<usize, fairway_dcb::Position>) {
    let stored = assert_holds(store, acked).await;
    assert_eq!(stored.len(), acked.len(), "appends stored vs acknowledged");
}

/// Checks that the store holds every acknowledged append, whole and in order, and that
/// every append it holds is whole; returns the appends it holds.
async fn assert_holds(
    store: &DcbStore<EmbeddedEngine>,
    acked: &BTreeMap<usize, fairway_dcb::Position>,
) -> std::collections::BTreeSet<usize> {
    let events = read_all(store, Query::all(), ReadOptions::forwards()).await;
    let mut seen: BTreeMap<usize, (Vec<usize>, fairway_dcb::Position)> = BTreeMap::new();
    for event in &events {
        let text = String::from_utf8_lossy(&event.event.payload);
        let mut parts = text.split('/');
        let append: usize = parts.next().unwrap().parse().unwrap();
        let index: usize = parts.next().unwrap().parse().unwrap();
        assert_eq!(event.event.payload, payload(append, index), "payload of {append}/{index}");
        assert!(event.event.tags.contains(&tag(&format!("append:{append}"))), "tags of {append}/{index}");
        let entry = seen.entry(append).or_insert_with(|| (Vec::new(), event.position));
        entry.0.push(index);
        entry.1 = event.position;
    }
    for (append, last) in acked {
        let (indexes, stored_last) =
            seen.get(append).unwrap_or_else(|| panic!("acknowledged append {append} is missing"));
        assert_eq!(indexes, &(0..EVENTS_PER_APPEND).collect::<Vec<_>>(), "append {append} is whole");
        assert_eq!(stored_last, last, "append {append} sits where it was acknowledged");
    }
    for (append, (indexes, _)) in &seen {
        assert_eq!(indexes, &(0..EVENTS_PER_APPEND).collect::<Vec<_>>(), "stored append {append} is whole");
    }
    seen.into_keys().collect()
}

/// Appends from 4 tasks until every one has been refused; returns the acknowledged appends
/// (number → last position) and the errors seen.
async fn append_until_full(
    store: &DcbStore<EmbeddedEngine>,
    first: usize,
) -> (BTreeMap<usize, fairway_dcb::Position>, Vec<Error>) {
    let acked = Arc::new(Mutex::new(BTreeMap::new()));
    let errors = Arc::new(Mutex::new(Vec::new()));
    let next = Arc::new(std::sync::atomic::AtomicUsize::new(first));
    let deadline = Instant::now() + Duration::from_secs(120);
    let writers: Vec<_> = (0..4)
        .map(|_| {
            let (store, acked, errors, next) = (store.clone(), acked.clone(), errors.clone(), next.clone());
            tokio::spawn(async move {
                while Instant::now() < deadline {
                    let n = next.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
                    match store.append(batch(n), None).await {
                        Ok(appended) => {
                            acked.lock().unwrap().insert(n, appended.last());
                        }
                        Err(err) => {
                            errors.lock().unwrap().push(err);
                            return;
                        }
                    }
                }
            })
        })
        .collect();
    for writer in writers {
        writer.await.unwrap();
    }
    let acked = std::mem::take(&mut *acked.lock().unwrap());
    let errors = std::mem::take(&mut *errors.lock().unwrap());
    (acked, errors)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_full_disk_refuses_writes_keeps_reads_and_recovers_when_space_is_freed() {
    let test = "a_full_disk_refuses_writes_keeps_reads_and_recovers_when_space_is_freed";
    let Some(volume) = Tmpfs::mount(RECOVERY_VOLUME_MIB, test) else { return };
    fill_refuse_read_recover(volume, EmbeddedOptions::default).await;
}

/// The same on ext4, which reserves blocks at `write` and frees them on truncation only
/// once its journal commits.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_full_ext4_disk_refuses_writes_keeps_reads_and_recovers_when_space_is_freed() {
    let test = "a_full_ext4_disk_refuses_writes_keeps_reads_and_recovers_when_space_is_freed";
    let Some(volume) = Tmpfs::mount_ext4(RECOVERY_VOLUME_MIB + 40, test) else { return };
    fill_refuse_read_recover(volume, EmbeddedOptions::default).await;
}

/// The same with a 1 MiB page cache: the database then writes pages out between checkpoints
/// too (when its write buffer overflows), so the disk also fills up outside checkpoints.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_full_disk_with_a_small_page_cache_refuses_writes_and_recovers() {
    let test = "a_full_disk_with_a_small_page_cache_refuses_writes_and_recovers";
    let Some(volume) = Tmpfs::mount(RECOVERY_VOLUME_MIB, test) else { return };
    fill_refuse_read_recover(volume, || EmbeddedOptions { cache_bytes: 1024 * 1024, ..EmbeddedOptions::default() })
        .await;
}

async fn fill_refuse_read_recover(volume: Tmpfs, options: impl Fn() -> EmbeddedOptions) {
    let dir = volume.path().join("store");
    let (engine, store) = open_with(&dir, options()).expect("the store opens on its volume");
    let filler = filler(volume.path(), HEADROOM);
    let started = Instant::now();

    let (mut acked, errors) = append_until_full(&store, 0).await;
    let filled_in = started.elapsed();
    assert!(acked.len() > 10, "some appends fit in {HEADROOM} bytes; acknowledged {}", acked.len());
    assert_eq!(errors.len(), 4, "every writer stopped on an error");
    for err in &errors {
        let (err_dir, filesystem, free, needed) =
            disk_full_parts(err).unwrap_or_else(|| panic!("a full disk is reported as DiskFull, not: {err}"));
        assert_eq!(err_dir, dir);
        assert_eq!(filesystem, volume.path().canonicalize().unwrap());
        assert!(free < needed, "free {free} < needed {needed}");
        let message = err.to_string();
        assert!(message.contains("disk full") && message.contains(&dir.display().to_string()), "{message}");
    }
    let message = errors[0].to_string();
    println!(
        "disk full after {} acknowledged appends of {} KiB ({filled_in:.1?}); refused with: {message}",
        acked.len(),
        EVENTS_PER_APPEND * PAYLOAD_BYTES / 1024
    );

    // Still full: writes keep failing the same way, health says why, reads go on.
    let again = store.append(batch(usize::MAX / 2), None).await.expect_err("still full");
    assert!(disk_full_parts(&again).is_some(), "{again}");
    let health = engine.health().expect_err("health reports the full disk");
    assert!(matches!(health, StorageError::DiskFull { .. }), "{health}");
    assert_holds_exactly(&store, &acked).await;
    assert!(store.head().await.unwrap().is_some());

    // Space is freed: writes resume by themselves, without a restart.
    std::fs::remove_file(&filler).unwrap();
    let freed = Instant::now();
    // ext4 hands freed blocks back when its journal next commits (every 5 s by default, later
    // on a busy machine), so allow well beyond that.
    while engine.health().is_err() {
        assert!(freed.elapsed() < Duration::from_secs(30), "health still failing: {:?}", engine.health());
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    println!("writes accepted again {:.0?} after the filler was deleted", freed.elapsed());
    let first = acked.keys().last().unwrap() + 1;
    for n in first..first + 20 {
        let appended = store.append(batch(n), None).await.expect("appends work again");
        acked.insert(n, appended.last());
    }
    assert_holds_exactly(&store, &acked).await;

    // And everything survives a reopen.
    drop(store);
    engine.close();
    drop(engine);
    let (engine, store) = open_with(&dir, options()).expect("reopens");
    assert!(engine.health().is_ok());
    assert_holds_exactly(&store, &acked).await;
    drop(store);
    drop(engine);
}

/// The child of `a_process_killed_on_a_full_disk_loses_no_acknowledged_append`: appends
/// until the disk is full, printing `ACK <append> <last position>` for each acknowledged
/// append, then `FULL <message>`, then waits to be killed.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "the child process of a_process_killed_on_a_full_disk_loses_no_acknowledged_append; started by it"]
async fn disk_full_child_process() {
    let dir = PathBuf::from(std::env::var(CHILD_DIR).expect("run by the disk-full test"));
    let (_engine, store) = open(&dir).expect("the store opens");
    let stdout = Arc::new(Mutex::new(std::io::stdout()));
    let next = Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let writers: Vec<_> = (0..4)
        .map(|_| {
            let (store, stdout, next) = (store.clone(), stdout.clone(), next.clone());
            tokio::spawn(async move {
                loop {
                    let n = next.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
                    match store.append(batch(n), None).await {
                        Ok(appended) => {
                            let mut out = stdout.lock().unwrap();
                            writeln!(out, "ACK {n} {}", appended.last()).unwrap();
                            out.flush().unwrap();
                        }
                        Err(err) => return err,
                    }
                }
            })
        })
        .collect();
    for writer in writers {
        let err = writer.await.unwrap();
        let mut out = stdout.lock().unwrap();
        writeln!(out, "FULL {err}").unwrap();
        out.flush().unwrap();
    }
    tokio::time::sleep(Duration::from_secs(600)).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_process_killed_on_a_full_disk_loses_no_acknowledged_append() {
    let Some(volume) = Tmpfs::mount(100, "a_process_killed_on_a_full_disk_loses_no_acknowledged_append") else {
        return;
    };
    let dir = volume.path().join("store");
    // Create the store, then leave it little room.
    drop(open(&dir).expect("the store opens on 100 MiB"));
    let filler = filler(volume.path(), HEADROOM);

    let mut child = Command::new(std::env::current_exe().unwrap())
        .args(["--ignored", "--exact", "disk_full_child_process", "--nocapture", "--test-threads=1"])
        .env(CHILD_DIR, &dir)
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("child starts");
    let mut acked = BTreeMap::new();
    let mut full = Vec::new();
    for line in BufReader::new(child.stdout.take().unwrap()).lines() {
        let line = line.unwrap();
        // The test harness prints `test <name> ... ` before the child's first line.
        let line = line.rsplit(" ... ").next().unwrap_or(&line);
        if let Some(rest) = line.strip_prefix("ACK ") {
            let (n, position) = rest.split_once(' ').unwrap();
            acked.insert(n.parse::<usize>().unwrap(), position.parse().unwrap());
        } else if let Some(message) = line.strip_prefix("FULL ") {
            full.push(message.to_string());
            if full.len() == 4 {
                break;
            }
        }
    }
    child.kill().unwrap();
    child.wait().unwrap();
    assert_eq!(full.len(), 4, "every writer of the child reported the full disk: {full:?}");
    assert!(full.iter().all(|m| m.contains("disk full")), "{full:?}");
    assert!(acked.len() > 10, "acknowledged {}", acked.len());
    println!("child killed on a full disk after {} acknowledged appends", acked.len());

    // Restarting on the still-full disk either serves reads (refusing writes) or says the
    // disk is full; either way nothing is lost.
    match open(&dir) {
        Ok((engine, store)) => {
            println!("reopened on the full disk: health {:?}", engine.health().err().map(|e| e.to_string()));
            assert_holds_exactly(&store, &acked).await;
            if engine.health().is_err() {
                let err = store.append(batch(usize::MAX / 2), None).await.expect_err("full");
                assert!(disk_full_parts(&err).is_some(), "{err}");
            }
        }
        Err(err) => {
            println!("reopening on the full disk refused: {err}");
            let message = err.to_string();
            assert!(message.contains("full") && message.contains(&dir.display().to_string()), "{message}");
        }
    }

    // Space freed: a fresh open replays the journal and finds every acknowledged append.
    std::fs::remove_file(&filler).unwrap();
    let (engine, store) = open(&dir).expect("reopens once space is freed");
    assert!(engine.health().is_ok(), "{:?}", engine.health());
    assert_holds_exactly(&store, &acked).await;
    let first = acked.keys().last().unwrap() + 1;
    let appended = store.append(batch(first), None).await.expect("appends work");
    acked.insert(first, appended.last());
    assert_holds_exactly(&store, &acked).await;
}

#[test]
fn a_volume_too_small_for_the_preallocated_files_refuses_to_open_and_leaves_nothing() {
    let Some(volume) =
        Tmpfs::mount(48, "a_volume_too_small_for_the_preallocated_files_refuses_to_open_and_leaves_nothing")
    else {
        return;
    };
    let dir = volume.path().join("data").join("store");
    let err = match open(&dir) {
        Ok(_) => panic!("a 48 MiB volume cannot hold the 64 MiB journal"),
        Err(err) => err,
    };
    let message = err.to_string();
    println!("{message}");
    assert!(
        matches!(&err, Error::Storage(StorageError::NotEnoughSpace { needed, available, .. }) if needed > available),
        "{err:?}"
    );
    for part in ["64 MiB journal", "16 MiB space reserve", "81 MiB", &dir.display().to_string()] {
        assert!(message.contains(part), "the message names {part:?}: {message}");
    }
    let left: Vec<_> = std::fs::read_dir(volume.path()).unwrap().map(|e| e.unwrap().path()).collect();
    assert!(left.is_empty(), "nothing is left behind: {left:?}");

    // An existing directory with other files keeps them, and gets none of the store's.
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(dir.join("notes.txt"), b"mine").unwrap();
    assert!(open(&dir).is_err());
    let left: Vec<_> = std::fs::read_dir(&dir).unwrap().map(|e| e.unwrap().file_name()).collect();
    assert_eq!(left, vec![std::ffi::OsString::from("notes.txt")]);
}

#[test]
fn a_failed_open_removes_the_files_it_created_and_keeps_the_others() {
    let parent = tempfile::tempdir().unwrap();
    let dir = parent.path().join("store");
    // The journal's name is taken by a directory: the open fails after creating the reserve
    // and the database.
    std::fs::create_dir_all(dir.join(fairway_dcb::kv::embedded::JOURNAL_FILE)).unwrap();
    std::fs::write(dir.join("notes.txt"), b"mine").unwrap();
    let err = open(&dir).err().expect("a directory is no journal");
    println!("{err}");
    let mut left: Vec<_> = std::fs::read_dir(&dir).unwrap().map(|e| e.unwrap().file_name()).collect();
    left.sort();
    assert_eq!(left, vec![std::ffi::OsString::from("fairway.journal"), std::ffi::OsString::from("notes.txt")]);
}

/// Without a space reserve the database itself runs into the full disk and must not be
/// trusted any more: writes are refused until a restart, which (once space is freed) replays
/// the journal. Nothing acknowledged is lost; appends answered "outcome unknown" may or may
/// not be there, but whole.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_a_reserve_a_full_disk_needs_a_restart_and_loses_nothing() {
    let test = "without_a_reserve_a_full_disk_needs_a_restart_and_loses_nothing";
    // Without the reserve, checkpoints stay large: up to half the journal (32 MiB) is
    // acknowledged before the database writes it. Freeing the filler must make room for that.
    let Some(volume) = Tmpfs::mount(200, test) else { return };
    let dir = volume.path().join("store");
    let no_reserve = || EmbeddedOptions { reserve_bytes: 0, ..EmbeddedOptions::default() };
    let (engine, store) = open_with(&dir, no_reserve()).expect("the store opens on 200 MiB");
    let filler = filler(volume.path(), HEADROOM);

    let (acked, errors) = append_until_full(&store, 0).await;
    assert!(acked.len() > 10, "acknowledged {}", acked.len());
    assert_eq!(errors.len(), 4);
    for err in &errors {
        assert!(disk_full_parts(err).is_none(), "without a reserve the failure is not a clean refusal: {err}");
        assert!(err.to_string().contains("restart"), "the error says to restart: {err}");
    }
    let health = engine.health().expect_err("health reports the failure").to_string();
    assert!(health.contains("restart") && health.contains("No space left"), "{health}");
    println!("without a reserve: {} appends acknowledged, then: {}", acked.len(), errors[0]);
    drop(store);
    engine.close();
    drop(engine);

    std::fs::remove_file(&filler).unwrap();
    let (engine, store) = open(&dir).expect("reopens once space is freed, replaying the journal");
    assert!(engine.health().is_ok());
    let stored = assert_holds(&store, &acked).await;
    println!("after the restart: {} appends stored ({} acknowledged)", stored.len(), acked.len());
    let first = stored.iter().last().unwrap() + 1;
    store.append(batch(first), None).await.expect("appends work after the restart");
}
