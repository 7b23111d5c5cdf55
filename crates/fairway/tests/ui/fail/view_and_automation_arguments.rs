//! `#[view]` and `#[automation]` take no arguments.

use fairway::{Automation, AutomationContext, AutomationError, Event, View, ViewError, ViewTx, automation, view};
use serde::{Deserialize, Serialize};

#[derive(Serialize, Deserialize, Event)]
struct Anything {}

#[derive(Default)]
struct Notes;

#[view(x)]
impl View for Notes {
    const NAME: &'static str = "notes";
    const VERSION: u32 = 1;
    type Events = Anything;

    async fn apply(&self, _: Anything, _: &ViewTx) -> Result<(), ViewError> {
        Ok(())
    }
}

#[derive(Default)]
struct Echo;

#[automation(every = 5)]
impl Automation for Echo {
    const NAME: &'static str = "echo";
    type Events = Anything;

    async fn handle(&self, _: Anything, _: &AutomationContext) -> Result<(), AutomationError> {
        Ok(())
    }
}

#[derive(Default)]
struct Echo2;

#[automation(snapshots)]
impl Automation for Echo2 {
    const NAME: &'static str = "echo-2";
    type Events = Anything;

    async fn handle(&self, _: Anything, _: &AutomationContext) -> Result<(), AutomationError> {
        Ok(())
    }
}

fn main() {}
