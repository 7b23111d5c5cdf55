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
        async move { claim(tx.as_ref(), &keys, "w", Duration::from_secs(60), &Earlier::default()).await }.boxed()
    })
    .await
}

/// Writes each job at its position with its due entry.
async fn put_jobs(backend: &Arc<dyn Backend>, jobs: Vec<(u16, Job)>) {
    run(backend, move |tx, keys| {
        let jobs = jobs.clone();
        async move {
            for (n, job) in &jobs {
                put_job(tx.as_ref(), &keys, position(*n), None, job);
            }
            Ok(())
        }
        .boxed()
    })
    .await
}

/// Two claims, in the order of their positions.
async fn claim_two(backend: &Arc<dyn Backend>) -> Vec<Claim> {
    let mut claimed = vec![claim_now(backend).await, claim_now(backend).await];
    claimed.sort_by_key(|claim| format!("{claim:?}"));
    claimed
}

/// The store's clock now.
async fn clock(backend: &Arc<dyn Backend>) -> u64 {
    run(backend, |tx, _| async move { Ok(tx.clock_micros().await?) }.boxed()).await
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
    let mut claimed = std::collections::BTreeSet::new();
    for _ in 0..count {
        let Claim::Claimed(position, 1) = claim_now(&backend).await else { panic!("a job is due") };
        assert!(claimed.insert(position), "{position} claimed twice");
    }
    assert_eq!(claimed, (0..count).map(position).collect(), "every job once");
    assert!(matches!(claim_now(&backend).await, Claim::Idle(Some(_))), "all leased now");
    let again = run(&backend, |tx, keys| async move { index_older_jobs(tx.as_ref(), &keys).await }.boxed()).await;
    assert!(again, "the marker says done");
}

#[tokio::test]
async fn claims_take_due_jobs_skip_stale_entries_and_tell_how_long_until_the_next() {
    let dir = tempfile::tempdir().unwrap();
    let backend = backend(dir.path());
    let now = clock(&backend).await;
    // Positions 1 and 2 are due; position 3 is not due for a minute.
    put_jobs(&backend, vec![(1, Job::fresh(now - 10)), (2, Job::fresh(now - 20)), (3, Job::fresh(now + 60_000_000))])
        .await;
    // A due entry whose job is gone.
    run(&backend, move |tx, keys| {
        tx.set(&keys.due_entry(now - 30, position(9)), &[]);
        async { Ok(()) }.boxed()
    })
    .await;
    assert_eq!(claim_two(&backend).await, [Claim::Claimed(position(1), 1), Claim::Claimed(position(2), 1)]);
    let Claim::Idle(Some(wait)) = claim_now(&backend).await else { panic!("position 3 waits") };
    assert!(wait <= Duration::from_secs(60) && wait > Duration::from_secs(50), "{wait:?}");
    let entries =
        run(&backend, |tx, keys| async move { Ok(tx.scan(&keys.due, &end_of(&keys.due), 0).await?.len()) }.boxed())
            .await;
    assert_eq!(entries, 3, "one entry per job, the stale one removed");
}

#[tokio::test]
async fn a_claim_run_again_after_its_commit_landed_answers_with_the_job_it_leased() {
    let dir = tempfile::tempdir().unwrap();
    let backend = backend(dir.path());
    let now = clock(&backend).await;
    put_jobs(&backend, (1..=3).map(|n| (n, Job::fresh(now - 10))).collect()).await;
    // One claim's two runs, the first committed: the second finds its lease.
    let earlier = Arc::new(Earlier::default());
    let lease = Duration::from_secs(60);
    let claim_once = || {
        let earlier = earlier.clone();
        run(&backend, move |tx, keys| {
            let earlier = earlier.clone();
            async move { claim(tx.as_ref(), &keys, "w", lease, &earlier).await }.boxed()
        })
    };
    let first = claim_once().await;
    let again = claim_once();
    assert_eq!(again.await, first, "the landed claim is recognised");
    // Another claim leases another job.
    let other = claim_now(&backend).await;
    assert!(matches!(other, Claim::Claimed(..)) && other != first, "{other:?} after {first:?}");
}

#[tokio::test]
async fn times_left_by_another_clock_are_rebased_to_the_stores() {
    let dir = tempfile::tempdir().unwrap();
    let backend = backend(dir.path());
    let now = clock(&backend).await;
    let decades = 30 * 366 * 24 * 3600 * 1_000_000;
    // A leased job and a backing-off one, timed on a clock decades ahead; a job leased for
    // an hour on the store's clock.
    let gone = Job { lease_owner: Some("gone".into()), lease_until_micros: now + decades, ..Job::fresh(now) };
    let held = Job { lease_owner: Some("alive".into()), lease_until_micros: now + 3_600_000_000, ..Job::fresh(now) };
    put_jobs(&backend, vec![(1, gone), (2, Job::fresh(now + decades)), (3, held)]).await;
    let lease = Duration::from_secs(60);
    let done =
        run(&backend, move |tx, keys| async move { rebase_foreign_times(tx.as_ref(), &keys, lease).await }.boxed());
    assert!(done.await, "one page");
    assert_eq!(claim_two(&backend).await, [Claim::Claimed(position(1), 1), Claim::Claimed(position(2), 1)]);
    assert!(
        matches!(claim_now(&backend).await, Claim::Idle(Some(_))),
        "the job leased on the store's clock stays held"
    );
}
