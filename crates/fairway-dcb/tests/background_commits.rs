//! Background work (`KvTransaction::set_background`: a view's batch, jobs enqueued) shares
//! a command's group commit on the embedded engine: while commands are committing, a
//! background commit waits a moment for the next one and both are synced as one group,
//! instead of the command queueing behind a sync of its own. It is acknowledged only once
//! durable: after a restart every acknowledged write is there.

use std::sync::Arc;
use std::time::Duration;

use fairway_dcb::kv::{KvEngine, KvTransaction};
use fairway_dcb::{EmbeddedEngine, EmbeddedOptions, StorageError};

fn open(dir: &std::path::Path) -> Arc<EmbeddedEngine> {
    Arc::new(EmbeddedEngine::open(dir, EmbeddedOptions::default()).expect("the engine opens"))
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

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn background_work_shares_the_next_commands_group_commit() {
    let dir = tempfile::tempdir().unwrap();
    let engine = open(dir.path());
    const ROUNDS: usize = 20;
    let keys: Vec<&'static [u8]> = (0..ROUNDS * 2).map(|i| format!("key-{i:02}").leak().as_bytes()).collect();
    let mut shared = 0;
    for round in 0..ROUNDS {
        // A command commits: commands are live.
        write(engine.clone(), b"command", false).await;
        let background = tokio::spawn(write(engine.clone(), keys[2 * round], true));
        // The background commit reaches the committer first, then a command's.
        tokio::time::sleep(Duration::from_micros(500)).await;
        let command = write(engine.clone(), keys[2 * round + 1], false).await;
        shared += usize::from(background.await.unwrap() == command);
    }
    // Without the wait none would share: the background commit was alone for 0.5 ms, longer
    // than it takes to sync. A loaded machine may delay a task past the wait now and then.
    assert!(shared >= ROUNDS / 2, "{shared} of {ROUNDS} background commits shared a command's group");

    // Every acknowledged write is durable: all there after a restart.
    drop(engine);
    let engine = open(dir.path());
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
    assert_eq!(found.value, ROUNDS * 2);
}
