// An app names what the façade exports: the runtime's internals (its store transactions,
// its registry, what generated code calls) are not part of it.
use fairway::backend::Backend;
use fairway::registry::discover;
use fairway::stored::StoredState;

fn main() {}
