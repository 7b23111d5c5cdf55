//! The queue's claims against stores written by older versions and stale due entries.

use std::sync::Arc;

use fairway_dcb::{DcbStore, EmbeddedEngine, EmbeddedOptions};
use futures::FutureExt;
use futures::future::BoxFuture;

use super::*;
use crate::backend::Backend;

fn backend(dir: &std::path::Path) -> Arc<dyn Backend> {
    let engine = Arc::new(EmbeddedEngine::open(dir, EmbeddedOptions::default()).unwrap());
    Arc::new(DcbStore::new(engine, "queue").unwrap())
}

async fn run<R: Send + 'static>(
    backend: &Arc<dyn Backend>,
    body: impl Fn(Arc<dyn DynTx>, QueueKeys) -> BoxFuture<'static, Result<R, TxFailure>> + Send + Sync,
) -> R {
    let keys = QueueKeys::new(backend.as_ref(), "test");
    backend.transact(move |tx| body(tx, keys.clone())).await.unwrap()
}

fn position(n: u16) -> Position {
    Position::new(1, 0, n)
}

async fn claim_now(backend: &Arc<dyn Backend>) -> Claim {
    run(backend, |tx, keys| {
        async move { claim(tx.as_ref(), &keys, "w", Duration::from_secs(60), now_micros()).await }.boxed()
    })
    .await
}

#[tokio::test]
async fn jobs_written_before_the_index_are_indexed_once_then_claimed() {
    let dir = tempfile::tempdir().unwrap();
    let backend = backend(dir.path());
    let count = INDEX_PAGE as u16 + 88;
    // The layout of earlier versions: job records only.
    run(&backend, move |tx, keys| {
        async move {
            for n in 0..count {
                tx.set(&keys.job(position(n)), &Job::fresh(0).encode());
            }
            Ok(())
        }
        .boxed()
    })
    .await;
    assert_eq!(claim_now(&backend).await, Claim::Idle(None), "unindexed jobs are invisible to claims");
    let first = run(&backend, |tx, keys| async move { index_older_jobs(tx.as_ref(), &keys).await }.boxed()).await;
    assert!(!first, "one page at a time");
    let second = run(&backend, |tx, keys| async move { index_older_jobs(tx.as_ref(), &keys).await }.boxed()).await;
    assert!(second, "done after the second page");
    for n in 0..count {
        assert_eq!(claim_now(&backend).await, Claim::Claimed(position(n), 1));
    }
    assert!(matches!(claim_now(&backend).await, Claim::Idle(Some(_))), "all leased now");
    let again = run(&backend, |tx, keys| async move { index_older_jobs(tx.as_ref(), &keys).await }.boxed()).await;
    assert!(again, "the marker says done");
}

#[tokio::test]
async fn claims_follow_due_times_and_skip_stale_entries() {
    let dir = tempfile::tempdir().unwrap();
    let backend = backend(dir.path());
    let now = now_micros();
    run(&backend, move |tx, keys| {
        async move {
            // Position 1 is due later than position 2; position 3 is not due yet.
            put_job(tx.as_ref(), &keys, position(1), None, &Job::fresh(now - 10));
            put_job(tx.as_ref(), &keys, position(2), None, &Job::fresh(now - 20));
            put_job(tx.as_ref(), &keys, position(3), None, &Job::fresh(now + 60_000_000));
            // A due entry whose job is gone.
            tx.set(&keys.due_entry(now - 30, position(9)), &[]);
            Ok(())
        }
        .boxed()
    })
    .await;
    assert_eq!(claim_now(&backend).await, Claim::Claimed(position(2), 1));
    assert_eq!(claim_now(&backend).await, Claim::Claimed(position(1), 1));
    assert_eq!(claim_now(&backend).await, Claim::Idle(Some(now + 60_000_000)));
    let entries =
        run(&backend, |tx, keys| async move { Ok(tx.scan(&keys.due, &end_of(&keys.due), 0).await?.len()) }.boxed())
            .await;
    assert_eq!(entries, 3, "one entry per job, the stale one removed");
}
