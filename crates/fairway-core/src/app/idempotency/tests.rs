//! Two processes, one key: each claims it (neither sees the other running), both decide,
//! and the key's receipt admits one append; the other request replays its answer.

use std::sync::Arc;
use std::time::Duration;

use fairway_dcb::{
    AppendCondition, DcbStore, EmbeddedEngine, EmbeddedOptions, Error as StoreError, EventStore, Query, QueryItem,
    RawEvent, Tag,
};

use super::{Claim, Idempotency, Settlement, StoredResponse, Ticket};
use crate::backend::Backend;
use crate::command::CommandReply;

fn opened(event_type: &str) -> RawEvent {
    RawEvent::new(event_type, vec![0x90]).with_tag(Tag::new("ticket", "t1").unwrap())
}

async fn claimed(idempotency: &Idempotency) -> Ticket {
    match idempotency.claim("open-ticket", "key-1", br#"{"id":"t1"}"#).await.unwrap() {
        Claim::Run(ticket) => ticket,
        _ => panic!("the key is new to this process: it runs"),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_key_answered_in_another_process_appends_once_and_replays_that_answer() {
    let dir = tempfile::tempdir().unwrap();
    let engine = Arc::new(EmbeddedEngine::open(dir.path(), EmbeddedOptions::default()).unwrap());
    let backend: Arc<dyn Backend> = Arc::new(DcbStore::new(engine, "app").unwrap());
    // Two processes: each has its own set of running keys.
    let first = Idempotency::new(backend.clone(), Duration::from_secs(60));
    let second = Idempotency::new(backend.clone(), Duration::from_secs(60));
    let (winner, loser) = (claimed(&first).await, claimed(&second).await);

    // Both decided on an empty boundary; the winner's append carries the receipt.
    let condition = || AppendCondition::none_match(Query::from(QueryItem::types(["Opened"])));
    let appended = winner.append_step().append(vec![opened("Opened")], condition(), 1).await.unwrap();
    // The loser's condition alone would fail too; take one it passes, so only the receipt
    // can stop it.
    let unrelated = AppendCondition::none_match(Query::from(QueryItem::types(["Closed"])));
    let refused = loser.append_step().append(vec![opened("Other")], unrelated, 2).await;
    assert!(matches!(refused, Err(StoreError::ReceiptStands { .. })), "{refused:?}");

    let answer = StoredResponse::reply(&CommandReply::appended(&appended.positions, 1));
    assert_eq!(winner.finish(answer.clone()).await.unwrap(), Settlement::Respond(answer.clone()));
    // Whatever the loser's command answered, the winner's answer is sent in its place.
    let conflict = StoredResponse { status: 409, body: br#"{"error":"receipt"}"#.to_vec() };
    assert_eq!(loser.finish(conflict).await.unwrap(), Settlement::Replay(answer));
    assert_eq!(backend.events().count().await.unwrap(), 1, "one append for the key");
}

/// Every commit that lands is reported as of unknown result and its transaction run again:
/// storing an answer finds its own record, and answers as the first, not as a replay.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_answer_whose_commit_was_reported_unknown_is_still_the_first() {
    let dir = tempfile::tempdir().unwrap();
    let options = EmbeddedOptions { unknown_result_rate: 1.0, ..EmbeddedOptions::default() };
    let engine = Arc::new(EmbeddedEngine::open(dir.path(), options).unwrap());
    let backend: Arc<dyn Backend> = Arc::new(DcbStore::new(engine, "app").unwrap());
    let idempotency = Idempotency::new(backend, Duration::from_secs(60));

    let refusal = StoredResponse { status: 422, body: br#"{"error":"refused"}"#.to_vec() };
    let ticket = claimed(&idempotency).await;
    assert_eq!(ticket.finish(refusal.clone()).await.unwrap(), Settlement::Respond(refusal.clone()));
    // A retry with the key is a replay of that answer.
    match idempotency.claim("open-ticket", "key-1", br#"{"id":"t1"}"#).await.unwrap() {
        Claim::Replay(replayed) => assert_eq!(replayed, refusal),
        _ => panic!("the key was answered: a retry replays it"),
    }
}
