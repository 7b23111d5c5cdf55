//! Derived state is a faithful function of the log even when appends commit between the
//! pages and scans of the reads behind it: a view's catch-up, an automation's enqueuer and
//! a command's fold over a multi-scan query. Appends are injected before each transaction
//! of the reader in turn ([`Interleaving`]). Each case runs on the engine the suite runs on.

mod support;

use std::sync::Arc;
use std::time::Duration;

use fairway::dcb::kv::KvEngine;
use fairway::dcb::kv::interleave::Interleaving;
use fairway::dcb::{DcbStore, EmbeddedOptions, EventStore, Query, QueryItem, RawEvent, ReadOptions, SequencedEvent};
use fairway::runtime::Store;
use fairway::runtime::{AutomationRuntime, CommandRunner, ViewRuntime};
use fairway::{
    Automation, AutomationContext, AutomationError, Command, Decision, EventError, EventSet, QueueSettings, View,
    ViewError, ViewTx,
};
use futures::TryStreamExt;
use support::{open_engine, with_engine};

struct Fixture<E: KvEngine> {
    hooked: Arc<Interleaving<E>>,
    reader: DcbStore<Interleaving<E>>,
    writer: DcbStore<E>,
}

/// Runs `case` for each step from 0 to 5 on a fresh store of the suite's engine, written
/// by [`fixture`].
macro_rules! each_step {
    ($case:ident) => {
        for step in 0..6 {
            // Throwaway stores: no fsync per append on the embedded engine.
            let test = open_engine(EmbeddedOptions { durable: false, ..EmbeddedOptions::default() });
            with_engine!(&test.engine, |engine| $case(fixture(engine.clone(), &test.namespace).await, step).await);
        }
    };
}

/// A store in `namespace` on `engine` holding one `A` then 200 `B` (one append each).
async fn fixture<E: KvEngine>(engine: Arc<E>, namespace: &str) -> Fixture<E> {
    let hooked = Arc::new(Interleaving::new(engine.clone()));
    let reader = DcbStore::new(hooked.clone(), namespace).unwrap();
    let writer = DcbStore::new(engine, namespace).unwrap();
    writer.append(vec![RawEvent::new("A", Vec::new())], None).await.unwrap();
    for _ in 0..200 {
        writer.append(vec![RawEvent::new("B", Vec::new())], None).await.unwrap();
    }
    Fixture { hooked, reader, writer }
}

/// Schedules `A2` then `B2` before the reader's transaction `step` from now.
fn inject<E: KvEngine>(f: &Fixture<E>, step: usize) {
    let writer = f.writer.clone();
    f.hooked.before(f.hooked.transactions() + step, async move {
        writer.append(vec![RawEvent::new("A", Vec::new())], None).await.unwrap();
        writer.append(vec![RawEvent::new("B", Vec::new())], None).await.unwrap();
    });
}

/// The fixture's events: bare types without payloads, so the set is written by hand and
/// decodes the type name alone.
enum Letter {
    A,
    B,
}

impl EventSet for Letter {
    const TYPES: &'static [&'static str] = &["A", "B"];

    fn decode(event: &RawEvent) -> Option<Result<Self, EventError>> {
        match event.event_type.as_str() {
            "A" => Some(Ok(Letter::A)),
            "B" => Some(Ok(Letter::B)),
            _ => None,
        }
    }
}

impl Letter {
    fn name(&self) -> &'static str {
        match self {
            Letter::A => "A",
            Letter::B => "B",
        }
    }
}

/// One scan per type: reads behind it span several scans.
fn a_or_b() -> Query {
    Query::from_items([QueryItem::types(["A"]), QueryItem::types(["B"])])
}

async fn log<E: KvEngine>(writer: &DcbStore<E>) -> Vec<SequencedEvent> {
    writer.read(Query::all(), ReadOptions::forwards()).try_collect().await.unwrap()
}

fn count(log: &[SequencedEvent], kind: &str, up_to: fairway::dcb::Position) -> u64 {
    log.iter().filter(|e| e.event.event_type == kind && e.position <= up_to).count() as u64
}

/// Counts `A` and `B` events.
struct Tally;

impl View for Tally {
    const NAME: &'static str = "tally";
    const VERSION: u32 = 1;
    type Events = Letter;

    fn query(&self) -> Query {
        a_or_b()
    }

    async fn apply(&self, letter: Letter, tx: &ViewTx) -> Result<(), ViewError> {
        let n: u64 = tx.get(letter.name()).await?.unwrap_or(0);
        tx.put(letter.name(), &(n + 1))
    }
}

#[tokio::test]
async fn a_view_catching_up_applies_every_event_up_to_its_checkpoint() {
    each_step!(view_catching_up);
}

async fn view_catching_up<E: KvEngine>(f: Fixture<E>, step: usize) {
    inject(&f, step);
    let view = ViewRuntime::new(Tally, Arc::new(f.reader.clone()));
    let (_, checkpoint) = view.catch_up().await.unwrap();
    let checkpoint = checkpoint.unwrap();
    let counts: Vec<(String, u64)> = view.read(|tx| async move { tx.range::<u64>("").await }).await.unwrap();
    let log = log(&f.writer).await;
    let wanted = vec![("A".to_owned(), count(&log, "A", checkpoint)), ("B".to_owned(), count(&log, "B", checkpoint))];
    assert_eq!(
        counts, wanted,
        "appends before transaction {step}: the view equals a fold of the log up to its checkpoint"
    );
    f.writer.clear_namespace().await.unwrap();
}

/// Enqueues a job per `A` or `B`; its handler is never run here.
struct Echo;

impl Automation for Echo {
    const NAME: &'static str = "echo";
    type Events = Letter;

    fn query(&self) -> Query {
        a_or_b()
    }

    async fn handle(&self, _: Letter, _ctx: &AutomationContext) -> Result<(), AutomationError> {
        Ok(())
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_automation_enqueues_a_job_for_every_triggering_event() {
    each_step!(automation_enqueuing);
}

async fn automation_enqueuing<E: KvEngine>(f: Fixture<E>, step: usize) {
    inject(&f, step);
    let backend: Arc<dyn Store> = Arc::new(f.reader.clone());
    let runtime = AutomationRuntime::new(Echo, backend, QueueSettings::default());
    let enqueuer = tokio::spawn(runtime.clone().run_enqueuer());
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    let mut pending = 0;
    while tokio::time::Instant::now() < deadline {
        pending = runtime.pending().await.unwrap();
        if pending == 203 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    enqueuer.abort();
    assert_eq!(pending, 203, "appends before transaction {step}: one job per A and B of the log");
    f.writer.clear_namespace().await.unwrap();
}

/// What the census saw.
#[derive(Debug, PartialEq, serde::Serialize, serde::Deserialize, fairway::Event)]
struct CensusTaken {
    a: u64,
    b: u64,
}

/// Records how many `A` and `B` it saw: its decision is only right if its fold was.
struct Census;

#[derive(Debug, thiserror::Error)]
#[error("never")]
struct Never;

impl Command for Census {
    const NAME: &'static str = "census";
    type Events = Letter;
    type State = (u64, u64);
    type Error = Never;

    fn query(&self) -> Query {
        a_or_b()
    }

    fn evolve(&self, state: &mut (u64, u64), letter: Letter) {
        match letter {
            Letter::A => state.0 += 1,
            Letter::B => state.1 += 1,
        }
    }

    fn decide(&self, &(a, b): &(u64, u64)) -> Result<Decision, Never> {
        Ok(Decision::event(CensusTaken { a, b }))
    }
}

#[tokio::test]
async fn a_command_decides_on_every_event_before_its_append() {
    each_step!(command_deciding);
}

async fn command_deciding<E: KvEngine>(f: Fixture<E>, step: usize) {
    inject(&f, step);
    let executed = CommandRunner::new(f.reader.clone()).execute(&Census).await.unwrap();
    let position = executed.last_position().unwrap();
    let log = log(&f.writer).await;
    let decided = log.iter().find(|e| e.position == position).unwrap();
    let wanted = CensusTaken { a: count(&log, "A", position), b: count(&log, "B", position) };
    let seen = CensusTaken::decode(&decided.event).expect("the census").unwrap();
    assert_eq!(seen, wanted, "appends before transaction {step}: the decision saw every event before it");
    f.writer.clear_namespace().await.unwrap();
}
