//! The conformance suite on FoundationDB. Runs when the crate is built with the `fdb`
//! feature and `FAIRWAY_FDB_CLUSTER_FILE` names a cluster file; otherwise each case prints
//! why it did not run. Every case works in its own random namespace.
//!
//! `FAIRWAY_FDB_CLUSTER_FILE=/etc/foundationdb/fdb.cluster cargo test -p fairway-dcb --features fdb --test conformance_fdb`
//! (or `cargo xtask fdb-test`).

#[cfg(feature = "fdb")]
mod on_foundationdb {
    use std::sync::{Arc, Mutex};

    use fairway_dcb::conformance::StoreFactory;
    use fairway_dcb::kv::RetryPolicy;
    use fairway_dcb::kv::fdb::FdbEngine;
    use fairway_dcb::{DcbStore, EventStore};

    struct Fdb {
        engine: Arc<FdbEngine>,
        /// The namespaces the case opened, cleared when it passes.
        opened: Mutex<Vec<String>>,
    }

    impl StoreFactory for Fdb {
        type Store = DcbStore<FdbEngine>;

        async fn open(&self, namespace: &str) -> DcbStore<FdbEngine> {
            self.opened.lock().expect("namespaces").push(namespace.to_owned());
            DcbStore::new(self.engine.clone(), namespace).expect("valid namespace")
        }

        async fn finish(&self) {
            let opened = std::mem::take(&mut *self.opened.lock().expect("namespaces"));
            for namespace in opened {
                let store = DcbStore::new(self.engine.clone(), &namespace).expect("valid namespace");
                store.clear_namespace().await.expect("the case's namespace is cleared");
                assert_eq!(store.head().await.expect("head"), None, "{namespace} is empty once cleared");
            }
        }
    }

    async fn foundationdb() -> Option<Fdb> {
        let cluster_file = fairway_dcb::conformance::fdb_cluster_file("the conformance suite")?;
        let engine = FdbEngine::open(Some(&cluster_file), RetryPolicy::default()).expect("cluster reachable");
        Some(Fdb { engine: Arc::new(engine), opened: Mutex::default() })
    }

    fairway_dcb::conformance_tests!(foundationdb);
}

/// Why the FoundationDB cases cannot run in this build.
#[cfg(not(feature = "fdb"))]
fn skip_notice(cluster_file: Option<String>) -> String {
    let configured = cluster_file.map_or(String::new(), |file| format!(" (cluster file {file} is ignored)"));
    format!("notice: FoundationDB conformance skipped: built without the `fdb` feature{configured}")
}

#[cfg(not(feature = "fdb"))]
#[test]
fn foundationdb_conformance_needs_the_fdb_feature() {
    let notice = skip_notice(std::env::var(fairway_dcb::conformance::FDB_CLUSTER_FILE_VAR).ok());
    eprintln!("{notice}");
    assert!(notice.contains("`fdb` feature"));
    assert!(skip_notice(Some("x.cluster".into())).contains("x.cluster"));
}
