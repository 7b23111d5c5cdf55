//! Whether the cluster answers, for [`KvEngine::health`](crate::kv::KvEngine::health): a
//! thread asks for a read version every second (2 s timeout) and keeps the last answer, so
//! `/health` says the cluster is down without any request waiting on it.

use std::sync::{Arc, Mutex, PoisonError, Weak};
use std::time::Duration;

use foundationdb::Database;
use foundationdb::options::TransactionOption;

/// Time between two probes.
const PERIOD: Duration = Duration::from_secs(1);
/// How long one probe waits for a read version.
const PROBE_TIMEOUT_MS: i32 = 2_000;

/// The last answer of the cluster to the probe thread.
pub(super) struct Probe {
    failure: Arc<Mutex<Option<String>>>,
}

impl Probe {
    /// Starts probing `db` until it is dropped.
    pub(super) fn start(db: Weak<Database>) -> Self {
        let failure = Arc::new(Mutex::new(None));
        let last = failure.clone();
        let spawned = std::thread::Builder::new().name("fdb-health-probe".into()).spawn(move || {
            while let Some(db) = db.upgrade() {
                let answer = futures::executor::block_on(read_version(&db));
                drop(db);
                *last.lock().unwrap_or_else(PoisonError::into_inner) = answer.err();
                std::thread::sleep(PERIOD);
            }
        });
        if let Err(err) = spawned {
            *failure.lock().unwrap_or_else(PoisonError::into_inner) =
                Some(format!("the FoundationDB health probe could not start: {err}"));
        }
        Probe { failure }
    }

    /// Why the cluster did not answer the last probe, if it did not.
    pub(super) fn failure(&self) -> Option<String> {
        self.failure.lock().unwrap_or_else(PoisonError::into_inner).clone()
    }
}

async fn read_version(db: &Database) -> Result<(), String> {
    let unreachable = |err: foundationdb::FdbError| format!("the FoundationDB cluster does not answer: {err}");
    let trx = db.create_trx().map_err(unreachable)?;
    trx.set_option(TransactionOption::Timeout(PROBE_TIMEOUT_MS)).map_err(unreachable)?;
    trx.get_read_version().await.map(|_| ()).map_err(unreachable)
}
