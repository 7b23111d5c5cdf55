//! The names of the metrics the store records in the process's `metrics` recorder, when one
//! is installed (the app installs a Prometheus one and serves it at `/metrics`).

/// Histogram of the time to write and sync one group's journal record (the fsync latency
/// of an acknowledged commit), embedded engine.
pub const JOURNAL_SYNC_SECONDS: &str = "fairway_store_journal_sync_seconds";
/// Histogram of the transactions committed together in one group, embedded engine.
pub const GROUP_TRANSACTIONS: &str = "fairway_store_group_commit_transactions";
