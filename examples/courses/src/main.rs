//! Course subscriptions: `cargo run -p courses` serves the app on the embedded store in
//! `./courses-data`.

// Links the library, so every slice it registers is discovered at start.
use courses as _;

#[tokio::main]
async fn main() -> std::process::ExitCode {
    fairway::App::main(env!("CARGO_PKG_NAME")).await
}
