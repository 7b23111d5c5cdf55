//! Commit faults injected for tests: a chosen FoundationDB error reported for a chosen
//! writing commit (the n-th from now) or for a share of them. FoundationDB's engine hands it
//! to its real retry path (`on_error` with that code) exactly as if the cluster had reported
//! it; the embedded engine retries it as it retries a conflict.
//!
//! An error that says the commit did not land (`transaction_too_old` 1007, `future_version`
//! 1009, `not_committed` 1020) is reported *instead of* committing; `commit_unknown_result`
//! (1021) may be reported instead of committing or *after* the commit landed, the case the
//! store's commit markers exist for.

use std::sync::Mutex;
use std::sync::PoisonError;
use std::sync::atomic::{AtomicU64, Ordering};

/// FoundationDB's `transaction_too_old`: the read version is older than the cluster keeps.
pub const TRANSACTION_TOO_OLD: i32 = 1007;
/// FoundationDB's `future_version`: a storage server is behind the read version.
pub const FUTURE_VERSION: i32 = 1009;
/// FoundationDB's `not_committed`: the transaction conflicted.
pub const NOT_COMMITTED: i32 = 1020;
/// FoundationDB's `commit_unknown_result`: the commit may or may not have landed.
pub const COMMIT_UNKNOWN_RESULT: i32 = 1021;

/// An error reported for a commit, and whether the commit landed first.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct CommitFault {
    /// The FoundationDB error code reported.
    pub code: i32,
    /// Whether the commit lands before the error is reported (only an error that leaves the
    /// result unknown, 1021, can follow a landed commit).
    pub landed: bool,
}

impl CommitFault {
    /// `code` reported instead of committing: nothing lands.
    pub fn instead_of_commit(code: i32) -> Self {
        CommitFault { code, landed: false }
    }

    /// `commit_unknown_result` reported after the commit landed.
    pub fn unknown_after_landing() -> Self {
        CommitFault { code: COMMIT_UNKNOWN_RESULT, landed: true }
    }
}

/// When a planned fault fires.
#[derive(Clone, Copy, Debug)]
enum When {
    /// On the writing commit with this number (counted by [`Faults::writing_commits`]).
    Commit(u64),
    /// On each writing commit with this probability, per million.
    Rate(u64),
}

/// The faults planned on one engine.
#[derive(Default)]
pub struct Faults {
    /// Writing commits seen so far (read-only commits are never counted, nor faulted).
    writing_commits: AtomicU64,
    planned: Mutex<Vec<(When, CommitFault)>>,
}

impl Faults {
    fn plan(&self) -> std::sync::MutexGuard<'_, Vec<(When, CommitFault)>> {
        self.planned.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Plans `fault` for the `nth` writing commit from now (1: the next one).
    pub fn on_commit(&self, nth: u64, fault: CommitFault) {
        let number = self.writing_commits.load(Ordering::SeqCst) + nth.max(1);
        self.plan().push((When::Commit(number), fault));
    }

    /// Plans `fault` for a share `rate` in `[0, 1]` of writing commits (0 removes it).
    pub fn at_rate(&self, rate: f64, fault: CommitFault) {
        let ppm = (rate.clamp(0.0, 1.0) * 1e6) as u64;
        let mut plan = self.plan();
        plan.retain(|(when, planned)| !matches!(when, When::Rate(_)) || *planned != fault);
        if ppm > 0 {
            plan.push((When::Rate(ppm), fault));
        }
    }

    /// Whether a planned fault lets its commit land (the engine must then say commit results
    /// may be unknown, so that appends write their commit markers).
    pub fn may_land(&self) -> bool {
        self.plan().iter().any(|(_, fault)| fault.landed)
    }

    /// Removes every planned fault.
    pub fn clear(&self) {
        self.plan().clear();
    }

    /// Counts a writing commit about to run and returns the fault it gets, if any.
    pub fn next_commit(&self) -> Option<CommitFault> {
        let number = self.writing_commits.fetch_add(1, Ordering::SeqCst) + 1;
        let mut plan = self.plan();
        if plan.is_empty() {
            return None;
        }
        let due = plan.iter().position(|(when, _)| matches!(when, When::Commit(n) if *n == number));
        if let Some(index) = due {
            return Some(plan.swap_remove(index).1);
        }
        plan.iter().find_map(|(when, fault)| match when {
            When::Rate(ppm) if rand::random_range(0..1_000_000) < *ppm => Some(*fault),
            _ => None,
        })
    }
}

/// An engine whose commits tests can fail (FoundationDB's and the embedded one).
pub trait InjectFaults {
    /// The faults planned on the engine.
    fn faults(&self) -> &Faults;

    /// The `nth` writing commit from now (1: the next one) fails with `fault`.
    fn fail_commit(&self, nth: u64, fault: CommitFault) {
        self.faults().on_commit(nth, fault);
    }

    /// A share `rate` in `[0, 1]` of writing commits fail with `fault` (0 stops it).
    fn fail_commits_at_rate(&self, rate: f64, fault: CommitFault) {
        self.faults().at_rate(rate, fault);
    }

    /// No more injected commit faults.
    fn clear_commit_faults(&self) {
        self.faults().clear();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_fault_planned_for_the_nth_commit_fires_on_it_once() {
        let faults = Faults::default();
        assert_eq!(faults.next_commit(), None, "nothing planned");
        faults.on_commit(2, CommitFault::instead_of_commit(NOT_COMMITTED));
        assert_eq!(faults.next_commit(), None, "the first commit from now");
        assert_eq!(faults.next_commit(), Some(CommitFault::instead_of_commit(NOT_COMMITTED)));
        assert_eq!(faults.next_commit(), None, "fired once");
    }

    #[test]
    fn a_rate_of_one_faults_every_commit_until_removed() {
        let faults = Faults::default();
        faults.at_rate(1.0, CommitFault::unknown_after_landing());
        assert!((0..50).all(|_| faults.next_commit() == Some(CommitFault::unknown_after_landing())));
        faults.at_rate(0.0, CommitFault::unknown_after_landing());
        assert_eq!(faults.next_commit(), None);
        faults.at_rate(1.0, CommitFault::instead_of_commit(FUTURE_VERSION));
        faults.clear();
        assert_eq!(faults.next_commit(), None);
    }
}
