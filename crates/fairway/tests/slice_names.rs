//! A slice whose impl leaves out `const NAME` is named after its type in kebab-case (as an
//! event is named after its type); a `NAME` the impl gives is kept.

use fairway::dcb::Query;
use fairway::{
    Automation, AutomationContext, AutomationError, Command, Decision, Event, EventSet, View, ViewError, ViewTx,
    automation, command, view,
};
use serde::{Deserialize, Serialize};

#[derive(Debug, Serialize, Deserialize, Event)]
struct LampLit {
    #[tag("lamp")]
    lamp: String,
}

#[derive(Debug, Deserialize)]
struct LightTheHTTPLamp {
    lamp: String,
}

#[command]
impl Command for LightTheHTTPLamp {
    type Events = LampLit;
    type State = ();
    type Error = std::convert::Infallible;

    fn query(&self) -> Query {
        LampLit::query()
    }

    fn evolve(&self, _: &mut (), _: LampLit) {}

    fn decide(&self, _: &()) -> Result<Decision, Self::Error> {
        Ok(Decision::event(LampLit { lamp: self.lamp.clone() }))
    }
}

#[derive(Default)]
struct LitLamps;

#[view]
impl View for LitLamps {
    const VERSION: u32 = 1;
    type Events = LampLit;

    async fn apply(&self, _: LampLit, _: &ViewTx) -> Result<(), ViewError> {
        Ok(())
    }
}

#[derive(Default)]
struct NamedAutomation;

#[automation]
impl Automation for NamedAutomation {
    const NAME: &'static str = "kept-as-given";
    type Events = LampLit;

    async fn handle(&self, _: LampLit, _: &AutomationContext) -> Result<(), AutomationError> {
        Ok(())
    }
}

#[derive(Default)]
struct ReportLitLamp;

#[automation]
impl Automation for ReportLitLamp {
    type Events = LampLit;

    async fn handle(&self, _: LampLit, _: &AutomationContext) -> Result<(), AutomationError> {
        Ok(())
    }
}

#[test]
fn a_slice_without_a_name_is_named_after_its_type_in_kebab_case() {
    assert_eq!(<LightTheHTTPLamp as Command>::NAME, "light-the-http-lamp");
    assert_eq!(<LitLamps as View>::NAME, "lit-lamps");
    assert_eq!(<ReportLitLamp as Automation>::NAME, "report-lit-lamp");
}

#[test]
fn a_name_the_impl_gives_is_kept() {
    assert_eq!(<NamedAutomation as Automation>::NAME, "kept-as-given");
}
