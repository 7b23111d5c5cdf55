//! Course subscriptions: `cargo run -p courses` serves the app on the embedded store.

use courses as _;

#[tokio::main]
async fn main() -> std::process::ExitCode {
    fairway::App::main().await
}
