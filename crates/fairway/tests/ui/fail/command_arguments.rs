//! `#[command]` accepts `snapshots` only, once, as a bare word.

use fairway::dcb::Query;
use fairway::{Command, Decision, Event, EventSet, command};
use serde::{Deserialize, Serialize};

#[derive(Serialize, Deserialize, Event)]
struct Anything {}

macro_rules! command_with {
    ($name:ident, [$($args:tt)*]) => {
        #[derive(Deserialize)]
        struct $name;

        #[command($($args)*)]
        impl Command for $name {
            const NAME: &'static str = stringify!($name);
            type Events = Anything;
            type State = ();
            type Error = std::convert::Infallible;

            fn query(&self) -> Query {
                Anything::query()
            }

            fn evolve(&self, _: &mut (), _: Anything) {}

            fn decide(&self, _: &()) -> Result<Decision, Self::Error> {
                Ok(Decision::none())
            }
        }
    };
}

command_with!(Unknown, [foo]);
command_with!(UnknownAmongKnown, [snapshots, fast]);
command_with!(Valued, [snapshots = true]);
command_with!(Listed, [snapshots(all)]);
command_with!(Twice, [snapshots, snapshots]);
command_with!(NotAName, ["snapshots"]);

fn main() {}
