// Shared code of the examples in ../slice-api.md, which include it with `include!`: the
// whole `Subscribe` command of the section "Commands", registered: subscribe.rs with its
// state `Course`.
include!("subscribe.rs");

use std::collections::BTreeSet;

/// What the decision needs to know, and nothing more.
#[derive(Default)]
pub struct Course {
    capacity: Option<u32>,
    students: BTreeSet<Id>,
}

#[command]
impl Command for Subscribe {
    subscribe_items!();
}
