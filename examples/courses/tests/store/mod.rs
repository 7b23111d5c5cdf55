//! The store a test's app writes to, on the engine the suite runs on: the embedded store in
//! a directory, or a namespace of the FoundationDB cluster `FAIRWAY_FDB_CLUSTER_FILE` names
//! (under `FAIRWAY_TEST_ENGINE=fdb` in a build with the `fdb` feature, as `TestApp`
//! decides it). The test reads its log back from it and clears it when it passed.
#![allow(dead_code)]

use std::path::{Path, PathBuf};

use fairway::Recorded;
use fairway::dcb::{EventStore, Query, ReadOptions};
use fairway::testkit::TestApp;
use futures::TryStreamExt;

/// Where an app's events are.
#[derive(Clone, Debug)]
pub enum TestStore {
    /// The embedded store in `data_dir`, under `namespace`.
    Embedded { data_dir: PathBuf, namespace: String },
    /// The namespace `namespace` of the FoundationDB cluster `cluster_file` names.
    #[cfg(feature = "fdb")]
    Fdb { cluster_file: String, namespace: String },
}

impl TestStore {
    /// A fresh store for the courses binary on the engine the suite runs on: a namespace
    /// `courses-<random>` on the cluster, or the binary's own namespace (its app name) in
    /// the embedded data directory `data_dir`.
    pub fn fresh(data_dir: &Path) -> TestStore {
        #[cfg(feature = "fdb")]
        if fairway::testkit::runs_on_foundationdb() {
            let cluster_file =
                std::env::var("FAIRWAY_FDB_CLUSTER_FILE").expect("FAIRWAY_TEST_ENGINE=fdb needs a cluster file");
            return TestStore::fdb(&cluster_file, env!("CARGO_PKG_NAME"));
        }
        TestStore::embedded(data_dir)
    }

    /// The courses binary's store in the embedded data directory `data_dir`.
    pub fn embedded(data_dir: &Path) -> TestStore {
        // The binary's namespace is its app name, the package name (`App::main` in main.rs).
        TestStore::Embedded { data_dir: data_dir.to_owned(), namespace: env!("CARGO_PKG_NAME").to_owned() }
    }

    /// A fresh namespace `<prefix>-<random>` on the FoundationDB cluster `cluster_file` names.
    #[cfg(feature = "fdb")]
    pub fn fdb(cluster_file: &str, prefix: &str) -> TestStore {
        let namespace = format!("{prefix}-{:016x}", rand::random::<u64>());
        TestStore::Fdb { cluster_file: cluster_file.to_owned(), namespace }
    }

    /// The store `app` used: its namespace on the cluster, or its embedded data directory.
    pub fn of(app: &TestApp) -> TestStore {
        let namespace = app.namespace().to_owned();
        #[cfg(feature = "fdb")]
        if app.on_foundationdb() {
            let cluster_file =
                std::env::var("FAIRWAY_FDB_CLUSTER_FILE").expect("an app on FoundationDB has a cluster file");
            return TestStore::Fdb { cluster_file, namespace };
        }
        TestStore::Embedded { data_dir: app.data_dir(), namespace }
    }

    /// The whole log, forwards (open the embedded store only once its app stopped).
    pub async fn read_log(&self) -> Vec<Recorded> {
        match self {
            TestStore::Embedded { data_dir, namespace } => {
                read_all(&fairway::dcb::open_embedded(data_dir, namespace).expect("the embedded store opens")).await
            }
            #[cfg(feature = "fdb")]
            TestStore::Fdb { .. } => read_all(&self.fdb_store()).await,
        }
    }

    /// Clears the namespace on FoundationDB (call it when the test passed: a failed test
    /// leaves its namespace for a look); an embedded store goes with its directory.
    pub async fn clear(&self) {
        #[cfg(feature = "fdb")]
        if let TestStore::Fdb { .. } = self {
            self.fdb_store().clear_namespace().await.expect("the namespace clears");
        }
    }

    #[cfg(feature = "fdb")]
    fn fdb_store(&self) -> fairway::dcb::DcbStore<fairway::dcb::FdbEngine> {
        let TestStore::Fdb { cluster_file, namespace } = self else { unreachable!("a store on FoundationDB") };
        let retry = fairway::dcb::RetryPolicy::default();
        let engine = fairway::dcb::FdbEngine::open(Some(cluster_file), retry).expect("the cluster opens");
        fairway::dcb::DcbStore::new(std::sync::Arc::new(engine), namespace).expect("a valid namespace")
    }
}

async fn read_all(store: &impl EventStore) -> Vec<Recorded> {
    store.read(Query::all(), ReadOptions::forwards()).map_ok(Recorded::new).try_collect().await.expect("the log reads")
}
