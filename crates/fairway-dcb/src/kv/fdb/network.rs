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
//! start, after the first database, and after every engine's last use).
//!
//! A process that exits with the network still running (test binaries, a `main` that does
//! not call [`stop_network`]) would run the client library's global destructors while its
//! network thread still uses them: the process then crashed at exit now and then (SIGSEGV
//! in the network thread, seen on 7.3). So starting the network also arms an exit handler
//! (module `exit_guard`): if the network still runs when the process exits, the process
//! ends there, with its exit status, without running the library's destructors.

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
            exit_guard::arm();
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

/// Whether the network runs now; `true` also when another thread holds its state (it is
/// then starting or stopping it).
fn running() -> bool {
    match NETWORK.try_lock() {
        Ok(network) => matches!(*network, Network::Running(_)),
        Err(std::sync::TryLockError::Poisoned(poisoned)) => matches!(*poisoned.into_inner(), Network::Running(_)),
        Err(std::sync::TryLockError::WouldBlock) => true,
    }
}

/// Ends a process that exits with the network running before the client library's
/// destructors run (see the module doc).
#[cfg(all(target_os = "linux", target_env = "gnu"))]
mod exit_guard {
    use std::ffi::{c_int, c_void};

    unsafe extern "C" {
        /// glibc's `on_exit`: `function` runs at `exit` (in reverse order of registration,
        /// before the libraries' own destructors), given the exit status.
        fn on_exit(function: extern "C" fn(c_int, *mut c_void), arg: *mut c_void) -> c_int;
    }

    extern "C" fn end_if_running(status: c_int, _: *mut c_void) {
        if super::running() {
            // SAFETY: `_exit` ends the process at once with its status. Rust flushed its
            // standard output before calling `exit`; nothing else of the process needs a
            // destructor to run at exit.
            unsafe { libc::_exit(status) }
        }
    }

    /// Registers the handler; called once, when the network starts.
    pub(super) fn arm() {
        // SAFETY: registers a plain function without captured state.
        let failed = unsafe { on_exit(end_if_running, std::ptr::null_mut()) } != 0;
        if failed {
            tracing::warn!("no exit handler for the FoundationDB network: the process may crash at exit");
        }
    }
}

/// No exit handler outside glibc: the process exits as the client library tolerates.
#[cfg(not(all(target_os = "linux", target_env = "gnu")))]
mod exit_guard {
    /// Does nothing here.
    pub(super) fn arm() {}
}
