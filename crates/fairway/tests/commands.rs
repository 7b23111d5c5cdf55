//! Commands decide over exactly what they read: unrelated commands never retry, and a
//! shared boundary keeps its invariant under concurrency.

mod common;

use std::sync::Arc;

use common::{CourseError, DefineCourse, StudentSubscribed, SubscribeStudent};
use fairway::dcb::{
    DcbStore, EmbeddedEngine, EmbeddedOptions, EmbeddedStore, EventStore, Query, QueryItem, ReadOptions,
};
use fairway::runtime::CommandRunner;
use fairway::{CommandError, Event};
use futures::TryStreamExt;

fn runner(dir: &std::path::Path) -> CommandRunner<EmbeddedStore> {
    let engine = Arc::new(EmbeddedEngine::open(dir, EmbeddedOptions::default()).unwrap());
    CommandRunner::new(DcbStore::new(engine, "courses").unwrap())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn commands_on_different_entities_never_retry() {
    let dir = tempfile::tempdir().unwrap();
    let runner = runner(dir.path());
    for round in 0..40 {
        let tasks: Vec<_> = (0..2)
            .map(|c| {
                let runner = runner.clone();
                tokio::spawn(async move {
                    let define = DefineCourse { course_id: format!("r{round}-c{c}"), capacity: 3 };
                    runner.execute(&define).await.expect("defines")
                })
            })
            .collect();
        for task in tasks {
            let executed = task.await.unwrap();
            assert_eq!(executed.attempts, 1, "round {round}: disjoint boundaries never conflict");
            assert_eq!(executed.positions.len(), 1);
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_shared_boundary_holds_its_invariant_under_32_concurrent_commands() {
    let dir = tempfile::tempdir().unwrap();
    let runner = runner(dir.path());
    runner.execute(&DefineCourse { course_id: "popular".into(), capacity: 10 }).await.unwrap();
    let tasks: Vec<_> = (0..32)
        .map(|s| {
            let runner = runner.clone();
            tokio::spawn(async move {
                let subscribe = SubscribeStudent { course_id: "popular".into(), student_id: format!("s{s}") };
                runner.execute(&subscribe).await
            })
        })
        .collect();
    let (mut accepted, mut full, mut retried) = (0, 0, 0);
    for task in tasks {
        match task.await.unwrap() {
            Ok(executed) => {
                accepted += 1;
                retried += usize::from(executed.attempts > 1);
            }
            Err(CommandError::Rejected(CourseError::Full(_))) => full += 1,
            Err(other) => panic!("unexpected outcome: {other}"),
        }
    }
    assert_eq!((accepted, full), (10, 22), "exactly the capacity is accepted");
    let query = Query::from(QueryItem::types([StudentSubscribed::NAME]));
    let stored: Vec<_> = runner.store().read(query, ReadOptions::forwards()).try_collect().await.unwrap();
    assert_eq!(stored.len(), 10, "the log agrees: never over capacity");
    assert!(retried > 0, "the race made some commands decide again");
}

#[tokio::test]
async fn domain_errors_are_returned_and_nothing_is_appended() {
    let dir = tempfile::tempdir().unwrap();
    let runner = runner(dir.path());
    let missing = runner.execute(&SubscribeStudent { course_id: "nope".into(), student_id: "s1".into() }).await;
    assert!(matches!(missing, Err(CommandError::Rejected(CourseError::NotFound(_)))));
    runner.execute(&DefineCourse { course_id: "c".into(), capacity: 1 }).await.unwrap();
    let again = runner.execute(&DefineCourse { course_id: "c".into(), capacity: 1 }).await;
    assert!(matches!(again, Err(CommandError::Rejected(CourseError::AlreadyExists(_)))));
    assert_eq!(
        runner.store().read(Query::all(), ReadOptions::forwards()).try_collect::<Vec<_>>().await.unwrap().len(),
        1
    );
}
