//! Makes Cargo rebuild when a slice file is added or removed (`fairway::slices!()` lists
//! `src/slices/` at compile time, which Cargo does not track on its own), and tells the
//! macro so: without this script it refuses to compile.

fn main() {
    println!("cargo:rerun-if-changed=src/slices");
    println!("cargo:rustc-env=FAIRWAY_SLICES_WATCHED=src/slices");
}
