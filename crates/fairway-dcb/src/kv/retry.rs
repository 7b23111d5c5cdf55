//! The bounded retry policy of transaction loops.

use std::time::Duration;

/// How often and how patiently a transaction is retried after a retryable failure.
#[derive(Clone, Copy, Debug)]
pub struct RetryPolicy {
    /// Most attempts, the first included.
    pub max_attempts: u32,
    /// Delay before the first retry; doubled at each further retry.
    pub initial_backoff: Duration,
    /// Longest delay between two attempts.
    pub max_backoff: Duration,
}

impl Default for RetryPolicy {
    fn default() -> Self {
        RetryPolicy {
            max_attempts: 200,
            initial_backoff: Duration::from_micros(200),
            max_backoff: Duration::from_millis(20),
        }
    }
}

impl RetryPolicy {
    /// The delay before retry number `retry` (1-based), with jitter in `[d/2, d]`.
    pub fn backoff(&self, retry: u32) -> Duration {
        let exp = self.initial_backoff.saturating_mul(1u32 << retry.saturating_sub(1).min(16));
        let capped = exp.min(self.max_backoff);
        let half = capped / 2;
        half + half.mul_f64(rand::random::<f64>())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_grows_and_is_capped() {
        let policy = RetryPolicy::default();
        assert!(policy.backoff(1) <= policy.initial_backoff);
        assert!(policy.backoff(1) >= policy.initial_backoff / 2);
        for retry in 1..40 {
            assert!(policy.backoff(retry) <= policy.max_backoff);
        }
        assert!(policy.backoff(30) >= policy.max_backoff / 2);
    }
}
