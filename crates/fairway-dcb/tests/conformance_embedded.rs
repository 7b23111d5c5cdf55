//! The conformance suite on the embedded engine (durable, with spurious conflicts injected
//! so every retry path runs).

use std::sync::Arc;

use fairway_dcb::conformance::StoreFactory;
use fairway_dcb::{DcbStore, EmbeddedEngine, EmbeddedOptions, EmbeddedStore};

struct Embedded {
    engine: Arc<EmbeddedEngine>,
    _dir: tempfile::TempDir,
}

impl StoreFactory for Embedded {
    type Store = EmbeddedStore;

    async fn open(&self, namespace: &str) -> EmbeddedStore {
        DcbStore::new(self.engine.clone(), namespace).expect("valid namespace")
    }
}

async fn embedded() -> Option<Embedded> {
    let dir = tempfile::tempdir().expect("temp dir");
    let options = EmbeddedOptions { spurious_conflict_rate: 0.05, ..EmbeddedOptions::default() };
    let engine = EmbeddedEngine::open(dir.path(), options).expect("engine opens");
    Some(Embedded { engine: Arc::new(engine), _dir: dir })
}

fairway_dcb::conformance_tests!(embedded);
