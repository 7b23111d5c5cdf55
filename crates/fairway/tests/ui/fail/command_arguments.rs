//! `#[command]` accepts `snapshots` only, once, as a bare word.

use fairway::dcb::{Query, QueryItem};
use fairway::{Command, Decision, EventError, Recorded, command};
use serde::Deserialize;

macro_rules! command_with {
    ($name:ident, [$($args:tt)*]) => {
        #[derive(Deserialize)]
        struct $name;

        #[command($($args)*)]
        impl Command for $name {
            const NAME: &'static str = stringify!($name);
            type State = ();
            type Error = std::convert::Infallible;

            fn query(&self) -> Query {
                QueryItem::types(["Anything"]).into()
            }

            fn evolve(&self, _: &mut (), _: &Recorded) -> Result<(), EventError> {
                Ok(())
            }

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
