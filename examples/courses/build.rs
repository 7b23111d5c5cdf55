//! Rebuild when a slice file is added or removed: `automod::dir!` lists `src/slices/` at
//! compile time, which Cargo does not track on its own.

fn main() {
    println!("cargo:rerun-if-changed=src/slices");
}
