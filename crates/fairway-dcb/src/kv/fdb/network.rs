//! The FoundationDB client network thread: started by the first engine of the process, and
//! stopped by [`stop_network`], which a program calls at the end of `main` once its engines
//! are dropped.
//!
//! The client allows one network per process, started once and never again after it stops,
//! and asks that it be stopped before the process exits. Its handle lives here, process-wide
//! (not leaked): [`stop_network`] stops the network and joins its thread, and engines opened
//! afterwards fail with a clear error. It is not stopped from an exit handler: the client
//! library registers the destructors of its globals (its memory allocator's among them) as
//! it first uses them, so by the time a handler registered earlier runs they are gone, and
//! `fdb_stop_network` crashes inside the library (seen on 7.3 with a handler registered at
//! start, after the first database, and after every engine's last use). A process that does
//! not call [`stop_network`] (test binaries) exits with the network running, as the client
//! tolerates in practice.

use std::sync::{Mutex, MutexGuard, PoisonError};

use foundationdb::api::NetworkAutoStop;
use tracing::debug;

use crate::error::StorageError;

/// Where the process's network is.
enum Network {
    NotStarted,
    Running(NetworkAutoStop),
    Stopped,
}

static NETWORK: Mutex<Network> = Mutex::new(Network::NotStarted);

fn network() -> MutexGuard<'static, Network> {
    NETWORK.lock().unwrap_or_else(PoisonError::into_inner)
}

/// Starts the network if it is not running yet; fails if it was stopped.
pub(super) fn start() -> Result<(), StorageError> {
    let mut network = network();
    match *network {
        Network::Running(_) => Ok(()),
        Network::Stopped => Err(StorageError::Engine(
            "the FoundationDB client network of this process was stopped; it cannot start again".into(),
        )),
        Network::NotStarted => {
            // SAFETY: the network is started once per process (the state says it never ran);
            // its handle is kept until `stop_network` drops it.
            *network = Network::Running(unsafe { foundationdb::boot() });
            debug!("FoundationDB client network started");
            Ok(())
        }
    }
}

/// Stops the process's FoundationDB client network and joins its thread; `true` if it was
/// running. Call it at the end of `main` once every engine is dropped: transactions still
/// running would fail or never finish, and no engine can be opened in the process afterwards
/// (the client library allows one network per process).
pub fn stop_network() -> bool {
    let mut network = network();
    match std::mem::replace(&mut *network, Network::Stopped) {
        Network::Running(handle) => {
            drop(network);
            drop(handle);
            debug!("FoundationDB client network stopped");
            true
        }
        other => {
            *network = other;
            false
        }
    }
}
