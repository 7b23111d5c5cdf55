//! Compile-time behaviour of the macros (`#[command]`, `#[view]`, `#[automation]`,
//! `#[derive(Event)]`): every argument they accept compiles, and an unknown, duplicate or
//! misplaced argument is a compile error naming what is allowed; an app cannot name the
//! runtime's internals through the façade (`fail/internals_are_private.rs`). One test runs all cases,
//! so the cases share one build of their dependencies.

#[test]
fn attribute_arguments_are_checked_at_compile_time() {
    let cases = trybuild::TestCases::new();
    cases.pass("tests/ui/pass/*.rs");
    cases.compile_fail("tests/ui/fail/*.rs");
}
