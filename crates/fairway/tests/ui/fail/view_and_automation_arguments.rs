//! `#[view]` and `#[automation]` take no arguments.

use fairway::dcb::{Query, QueryItem};
use fairway::{Automation, AutomationContext, AutomationError, Recorded, View, ViewError, ViewTx, automation, view};

#[derive(Default)]
struct Notes;

#[view(x)]
impl View for Notes {
    const NAME: &'static str = "notes";
    const VERSION: u32 = 1;

    fn query(&self) -> Query {
        QueryItem::types(["Anything"]).into()
    }

    async fn apply(&self, _: &Recorded, _: &ViewTx) -> Result<(), ViewError> {
        Ok(())
    }
}

#[derive(Default)]
struct Echo;

#[automation(every = 5)]
impl Automation for Echo {
    const NAME: &'static str = "echo";

    fn query(&self) -> Query {
        QueryItem::types(["Anything"]).into()
    }

    async fn handle(&self, _: &Recorded, _: &AutomationContext) -> Result<(), AutomationError> {
        Ok(())
    }
}

#[derive(Default)]
struct Echo2;

#[automation(snapshots)]
impl Automation for Echo2 {
    const NAME: &'static str = "echo-2";

    fn query(&self) -> Query {
        QueryItem::types(["Anything"]).into()
    }

    async fn handle(&self, _: &Recorded, _: &AutomationContext) -> Result<(), AutomationError> {
        Ok(())
    }
}

fn main() {}
