//! Course subscriptions: `cargo run -p courses` serves the app on the embedded store in
//! `./courses-data`.

// Links the library, so every slice it registers is discovered at start.
use courses as _;

// Concurrent requests allocate many small objects across threads: mimalloc serves them
// with less CPU than the system allocator (docs/benchmarks.md).
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

#[tokio::main]
async fn main() -> std::process::ExitCode {
    fairway::App::main(env!("CARGO_PKG_NAME")).await
}
