//! Errors keep their type and source: a stored event that no longer decodes is a server
//! fault (500) naming the event and its position, not a bad request, and the runtime
//! reports it before a command, view or automation sees it; `?` converts any error inside
//! an automation handler, keeping the error and its source chain.

mod support;

use std::error::Error as _;

use fairway::dcb::{EventStore, Query, Tag};
use fairway::runtime::ViewRuntime;
use fairway::testkit::{AutomationTest, TestApp};
use fairway::{
    Automation, AutomationContext, AutomationError, Command, Decision, Event, EventSet, View, ViewError, ViewTx,
    automation, command,
};
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use support::open_store;

/// A ticket as first stored: no priority.
#[derive(Debug, Serialize, Deserialize, Event)]
struct TicketOpened {
    #[tag("ticket")]
    ticket: String,
}

/// The same event type as the code reads it now: a required field was added without a
/// `#[serde(default)]`, so events stored before no longer decode. (Implemented by hand:
/// two derived types may not share a name.)
#[derive(Debug, Serialize, Deserialize)]
struct TicketOpenedV2 {
    ticket: String,
    priority: u8,
}

impl Event for TicketOpenedV2 {
    const NAME: &'static str = TicketOpened::NAME;

    fn tags(&self) -> Result<Vec<Tag>, fairway::dcb::InvalidInput> {
        Ok(vec![Tag::new("ticket", &self.ticket)?])
    }
}

#[derive(Debug, thiserror::Error)]
#[error("ticket {0} is already open")]
struct AlreadyOpen(String);

fn ticket_query(ticket: &str) -> Query {
    TicketOpened::tagged([Tag::new("ticket", ticket).unwrap()]).into()
}

/// Opens a ticket (stores the first version of the event).
#[derive(Debug, Deserialize)]
struct OpenTicket {
    ticket: String,
}

#[command]
impl Command for OpenTicket {
    const NAME: &'static str = "open-ticket";
    type Events = TicketOpened;
    type State = bool;
    type Error = AlreadyOpen;

    fn query(&self) -> Query {
        ticket_query(&self.ticket)
    }

    fn evolve(&self, open: &mut bool, _: TicketOpened) {
        *open = true;
    }

    fn decide(&self, open: &bool) -> Result<Decision, AlreadyOpen> {
        if *open {
            return Err(AlreadyOpen(self.ticket.clone()));
        }
        Ok(Decision::event(TicketOpened { ticket: self.ticket.clone() }))
    }
}

/// Reads the ticket as the current code does: its fold decodes `TicketOpenedV2` (the
/// runtime decodes; an old event fails before `evolve` sees it).
#[derive(Debug, Deserialize)]
struct EscalateTicket {
    ticket: String,
}

#[derive(Debug, thiserror::Error)]
#[error("ticket {0} is not open")]
struct NotOpen(String);

#[command]
impl Command for EscalateTicket {
    const NAME: &'static str = "escalate-ticket";
    type Events = TicketOpenedV2;
    type State = Option<u8>;
    type Error = NotOpen;

    fn query(&self) -> Query {
        ticket_query(&self.ticket)
    }

    fn evolve(&self, priority: &mut Option<u8>, opened: TicketOpenedV2) {
        *priority = Some(opened.priority);
    }

    fn decide(&self, priority: &Option<u8>) -> Result<Decision, NotOpen> {
        priority.map(|_| Decision::none()).ok_or_else(|| NotOpen(self.ticket.clone()))
    }
}

async fn post(app: &TestApp, path: &str, body: Value) -> (u16, Value) {
    let response = reqwest::Client::new().post(app.url(path)).json(&body).send().await.unwrap();
    (response.status().as_u16(), response.json().await.unwrap())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stored_event_that_no_longer_decodes_is_a_server_fault_naming_it() {
    let app = TestApp::start().await;
    let (status, opened) = post(&app, "/commands/open-ticket", json!({ "ticket": "t1" })).await;
    assert_eq!(status, 200, "{opened}");
    let position = opened["last_position"].as_str().unwrap().to_owned();

    let (status, body) = post(&app, "/commands/escalate-ticket", json!({ "ticket": "t1" })).await;
    assert_eq!(status, 500, "{body}");
    let error = body["error"].as_str().unwrap();
    let expected =
        format!("stored event TicketOpened at position {position} does not decode: cannot decode TicketOpened");
    assert!(error.starts_with(&expected), "{error}");
    assert!(error.contains("priority"), "the reason names the missing field: {error}");

    // A body that is not the command stays a bad request; a refusal stays 422.
    let (status, body) = post(&app, "/commands/escalate-ticket", json!({ "ticket": 7 })).await;
    assert_eq!(status, 400, "{body}");
    assert!(body["error"].as_str().unwrap().starts_with("invalid command body: ticket: invalid type"), "{body}");
    let (status, body) = post(&app, "/commands/escalate-ticket", json!({ "ticket": "t2" })).await;
    assert_eq!((status, body), (422, json!({ "error": "ticket t2 is not open" })));
    app.stop().await;
}

/// A failure of an outside service, with its own source.
#[derive(Debug, thiserror::Error)]
#[error("the pager did not answer")]
struct PagerFailed(#[source] std::io::Error);

/// Pages on every ticket; its handler uses `?` on errors of foreign types.
#[derive(Default)]
struct PageOnTicket;

impl PageOnTicket {
    fn page(ticket: &str) -> Result<(), PagerFailed> {
        Err(PagerFailed(std::io::Error::new(std::io::ErrorKind::TimedOut, format!("paging {ticket} timed out"))))
    }
}

#[automation]
impl Automation for PageOnTicket {
    const NAME: &'static str = "page-on-ticket";
    type Events = TicketOpened;

    async fn handle(&self, opened: TicketOpened, _ctx: &AutomationContext) -> Result<(), AutomationError> {
        let ticket = Tag::new("ticket", &opened.ticket)?; // InvalidInput
        assert_eq!(ticket.value(), opened.ticket);
        let attempts: u32 = "3".parse()?; // ParseIntError
        assert_eq!(attempts, 3);
        PageOnTicket::page(&opened.ticket)?; // a user error with a source
        Ok(())
    }
}

#[tokio::test]
async fn question_mark_converts_foreign_errors_in_an_automation_keeping_the_source_chain() {
    let test = open_store(0.0);
    let ctx = AutomationContext::new(test.store.events(), fairway::runtime::Dependencies::default());

    let err = PageOnTicket.handle(TicketOpened { ticket: "t9".into() }, &ctx).await.unwrap_err();
    assert_eq!(err.to_string(), "the pager did not answer");
    assert!(err.downcast_ref::<PagerFailed>().is_some(), "the original type is kept: {err:?}");
    let source = err.source().expect("the chain is kept");
    let io = source.downcast_ref::<std::io::Error>().expect("the source is the io error");
    assert_eq!((io.kind(), io.to_string()), (std::io::ErrorKind::TimedOut, "paging t9 timed out".to_owned()));
    let boxed: fairway::BoxError = err.into();
    assert!(boxed.source().is_some(), "converting to a boxed error keeps the chain");

    // The testkit reports the handler's failure with its message.
    let reaction = AutomationTest::new().when(TicketOpened { ticket: "t9".into() }, &PageOnTicket).await;
    assert_eq!((reaction.result, reaction.error.as_deref()), ("failed", Some("the pager did not answer")));
    test.clear().await;
}

#[test]
fn a_message_only_failure_and_the_deprecated_wrapper_still_work() {
    let err = AutomationError::msg("pager is down");
    assert_eq!(err.to_string(), "pager is down");
    assert!(err.source().is_none());
    #[allow(deprecated)]
    let wrapped = AutomationError::from_error(PagerFailed(std::io::Error::other("down")));
    assert!(wrapped.downcast_ref::<PagerFailed>().is_some() && wrapped.source().is_some());
}

/// Reads tickets as the current code does (not registered: the app does not run it).
struct TicketPriorities;

impl View for TicketPriorities {
    const NAME: &'static str = "ticket-priorities";
    const VERSION: u32 = 1;
    type Events = TicketOpenedV2;

    async fn apply(&self, opened: TicketOpenedV2, tx: &ViewTx) -> Result<(), ViewError> {
        tx.put(&opened.ticket, &opened.priority)
    }
}

#[tokio::test]
async fn a_view_names_the_stored_event_that_no_longer_decodes() {
    let test = open_store(0.0);
    let opened = vec![TicketOpened { ticket: "t1".into() }.to_raw().unwrap()];
    let appended = test.store.events().append(opened, None).await.unwrap();

    let err = ViewRuntime::new(TicketPriorities, test.store.clone()).catch_up().await.unwrap_err();
    let ViewError::Undecodable(undecodable) = &err else { panic!("expected an undecodable event, got {err:?}") };
    assert_eq!((undecodable.event_type.as_str(), undecodable.position), (TicketOpened::NAME, appended.last()));
    let reason = err.source().expect("the decode error is the source").to_string();
    assert!(reason.starts_with("cannot decode TicketOpened: missing field `priority`"), "{reason}");
    assert!(
        err.to_string()
            .starts_with(&format!("stored event TicketOpened at position {} does not decode", appended.last()))
    );
    test.clear().await;
}

/// Escalates every ticket as the current code reads it (not registered).
struct EscalateOnOpen;

impl Automation for EscalateOnOpen {
    const NAME: &'static str = "escalate-on-open";
    type Events = TicketOpenedV2;

    async fn handle(&self, opened: TicketOpenedV2, _ctx: &AutomationContext) -> Result<(), AutomationError> {
        panic!("an undecodable trigger reached the handler: {opened:?}");
    }
}

#[tokio::test]
async fn an_automation_names_the_trigger_that_no_longer_decodes_before_handling_it() {
    let reaction = AutomationTest::new().when(TicketOpened { ticket: "t1".into() }, &EscalateOnOpen).await;
    assert_eq!(reaction.result, "failed", "{reaction:?}");
    let error = reaction.error.expect("the failure is reported");
    assert!(error.starts_with("stored event TicketOpened at position "), "{error}");
    assert!(error.contains("does not decode: cannot decode TicketOpened: missing field `priority`"), "{error}");

    // A trigger outside the automation's event set is not handled at all.
    let reaction = AutomationTest::new().when(Unrelated { ticket: "t1".into() }, &EscalateOnOpen).await;
    assert_eq!((reaction.result, reaction.error), ("ignored", None));
}

#[derive(Debug, Serialize, Deserialize, Event)]
struct Unrelated {
    #[tag("ticket")]
    ticket: String,
}
