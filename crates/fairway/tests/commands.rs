//! Commands decide over exactly what they read: unrelated commands never retry, and a
//! shared boundary keeps its invariant under concurrency.

mod common;
mod support;

use std::sync::Arc;

use common::{CourseError, DefineCourse, StudentSubscribed, SubscribeStudent};
use fairway::dcb::{EventStore, Query, QueryItem, ReadOptions};
use fairway::runtime::CommandRunner;
use fairway::{CommandError, Event};
use futures::TryStreamExt;
use support::{TestStore, open_store};

/// A fresh store on the suite's engine, and a runner of commands on it.
fn runner() -> (TestStore, CommandRunner<Arc<dyn EventStore>>) {
    let test = open_store(0.0);
    let runner = CommandRunner::new(test.store.events());
    (test, runner)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn commands_on_different_entities_never_retry() {
    let (test, runner) = runner();
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
    test.clear().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_shared_boundary_holds_its_invariant_under_32_concurrent_commands() {
    let (test, runner) = runner();
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
    test.clear().await;
}

#[tokio::test]
async fn domain_errors_are_returned_and_nothing_is_appended() {
    let (test, runner) = runner();
    let missing = runner.execute(&SubscribeStudent { course_id: "nope".into(), student_id: "s1".into() }).await;
    assert!(matches!(missing, Err(CommandError::Rejected(CourseError::NotFound(_)))));
    runner.execute(&DefineCourse { course_id: "c".into(), capacity: 1 }).await.unwrap();
    let again = runner.execute(&DefineCourse { course_id: "c".into(), capacity: 1 }).await;
    assert!(matches!(again, Err(CommandError::Rejected(CourseError::AlreadyExists(_)))));
    assert_eq!(
        runner.store().read(Query::all(), ReadOptions::forwards()).try_collect::<Vec<_>>().await.unwrap().len(),
        1
    );
    test.clear().await;
}
