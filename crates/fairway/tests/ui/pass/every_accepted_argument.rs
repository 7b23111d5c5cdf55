//! Every argument the macros accept, in every form they accept it.

use fairway::dcb::Query;
use fairway::{
    Automation, AutomationContext, AutomationError, Command, Decision, Event, EventSet, View, ViewError, ViewTx,
    automation, command, view,
};
use serde::{Deserialize, Serialize};

#[derive(Serialize, Deserialize, Event)]
#[event(name = "NoteTaken")]
struct Noted {
    #[tag("note")]
    note: String,
    #[tag("author")]
    #[tag("reviewer")]
    author: Option<String>,
}

#[derive(Serialize, Deserialize, Event)]
struct Plain {
    text: String,
}

#[derive(Deserialize)]
struct TakeNote {
    note: String,
}

impl fairway::SnapshotModel for TakeNote {
    const MODEL_VERSION: u32 = 1;
}

#[command(snapshots)]
impl Command for TakeNote {
    const NAME: &'static str = "take-note";
    type Events = Noted;
    type State = ();
    type Error = std::convert::Infallible;

    fn query(&self) -> Query {
        Noted::query()
    }

    fn evolve(&self, _: &mut (), _: Noted) {}

    fn decide(&self, _: &()) -> Result<Decision, Self::Error> {
        Ok(Decision::event(Noted { note: self.note.clone(), author: None }))
    }
}

#[derive(Deserialize)]
struct WritePlain {
    text: String,
}

#[command]
impl Command for WritePlain {
    const NAME: &'static str = "write-plain";
    type Events = Plain;
    type State = ();
    type Error = std::convert::Infallible;

    fn query(&self) -> Query {
        Plain::query()
    }

    fn evolve(&self, _: &mut (), _: Plain) {}

    fn decide(&self, _: &()) -> Result<Decision, Self::Error> {
        Ok(Decision::event(Plain { text: self.text.clone() }))
    }
}

#[derive(Default)]
struct Notes;

#[view()]
impl View for Notes {
    const NAME: &'static str = "notes";
    const VERSION: u32 = 1;
    type Events = Noted;

    async fn apply(&self, _: Noted, _: &ViewTx) -> Result<(), ViewError> {
        Ok(())
    }
}

#[derive(Default)]
struct Echo;

#[automation]
impl Automation for Echo {
    const NAME: &'static str = "echo";
    type Events = Noted;

    async fn handle(&self, _: Noted, _: &AutomationContext) -> Result<(), AutomationError> {
        Ok(())
    }
}

fn main() {
    assert_eq!(Noted::NAME, "NoteTaken");
    assert_eq!(Plain::NAME, "Plain");
}
