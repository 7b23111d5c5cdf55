//! Background work (`KvTransaction::set_background`: a view's batch, jobs enqueued) shares
//! a command's group commit on the embedded engine: while commands are committing, a
//! background commit waits a moment for the next one and both are synced as one group,
//! instead of the command queueing behind a sync of its own. It is acknowledged only once
//! durable: after a restart every acknowledged write is there.

use std::sync::Arc;
use std::time::Duration;

use fairway_dcb::kv::{KvEngine, KvTransaction};
use fairway_dcb::{EmbeddedEngine, EmbeddedOptions, StorageError};

fn open(dir: &std::path::Path, background_wait: Duration) -> Arc<EmbeddedEngine> {
    let options = EmbeddedOptions { background_wait, ..EmbeddedOptions::default() };
    Arc::new(EmbeddedEngine::open(dir, options).expect("the engine opens"))
}

/// Commits `key` = `value`, as background work or not; returns the group's commit version.
async fn write(engine: Arc<EmbeddedEngine>, key: &'static [u8], background: bool) -> u64 {
    let committed = engine
        .transact(|tx| async move {
            if background {
                tx.set_background();
            }
            tx.set(key, b"v");
            tx.set_versionstamped_value(&[key, b"/stamp"].concat(), vec![0; 10], 0);
            Ok::<_, StorageError>(())
        })
        .await
        .expect("the commit succeeds");
    committed.versionstamp.expect("the transaction wrote").commit()
}

/// Rounds of: a command commits; background work is sent; 50 ms later another command.
/// Returns how many background commits shared the second command's group.
async fn rounds(engine: &Arc<EmbeddedEngine>, keys: &[&'static [u8]]) -> usize {
    let mut shared = 0;
    for pair in keys.chunks(2) {
        // A command commits: commands are live.
        write(engine.clone(), b"command", false).await;
        let background = tokio::spawn(write(engine.clone(), pair[0], true));
        // The background commit reaches the committer first, then a command's.
        tokio::time::sleep(Duration::from_millis(50)).await;
        let command = write(engine.clone(), pair[1], false).await;
        shared += usize::from(background.await.unwrap() == command);
    }
    shared
}

async fn found(engine: &EmbeddedEngine, keys: &[&'static [u8]]) -> usize {
    let keys = keys.to_vec();
    let found = engine
        .transact(|tx| {
            let keys = keys.clone();
            async move {
                let mut found = 0;
                for key in keys {
                    found += usize::from(tx.get(key, false).await?.is_some());
                }
                Ok::<_, StorageError>(found)
            }
        })
        .await
        .unwrap();
    found.value
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn background_work_shares_the_next_commands_group_commit() {
    const ROUNDS: usize = 10;
    let keys: Vec<&'static [u8]> = (0..ROUNDS * 2).map(|i| format!("key-{i:02}").leak().as_bytes()).collect();
    // A wait far longer than the 50 ms between the two, so that a loaded machine cannot
    // make the command miss it.
    let dir = tempfile::tempdir().unwrap();
    let engine = open(dir.path(), Duration::from_secs(2));
    assert_eq!(rounds(&engine, &keys).await, ROUNDS, "every background commit shared the command's group");

    // Every acknowledged write is durable: all there after a restart.
    drop(engine);
    let engine = open(dir.path(), Duration::ZERO);
    assert_eq!(found(&engine, &keys).await, ROUNDS * 2);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_a_wait_background_work_commits_alone() {
    const ROUNDS: usize = 5;
    let keys: Vec<&'static [u8]> = (0..ROUNDS * 2).map(|i| format!("key-{i:02}").leak().as_bytes()).collect();
    let dir = tempfile::tempdir().unwrap();
    let engine = open(dir.path(), Duration::ZERO);
    assert_eq!(rounds(&engine, &keys).await, 0, "no background commit waited 50 ms for a command");
    assert_eq!(found(&engine, &keys).await, ROUNDS * 2);
}
