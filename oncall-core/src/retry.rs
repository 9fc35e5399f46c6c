//! When to try a vendor call again: a pure decision adapters call around their requests.

use std::time::Duration;

use crate::error::Error;

/// Retry settings: capped exponential backoff with jitter.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RetryPolicy {
    /// Most attempts in all, the first included.
    pub max_attempts: u32,
    /// Wait before the second attempt.
    pub base_delay: Duration,
    /// Longest wait between attempts.
    pub max_delay: Duration,
}

impl Default for RetryPolicy {
    fn default() -> Self {
        RetryPolicy {
            max_attempts: 4,
            base_delay: Duration::from_millis(500),
            max_delay: Duration::from_secs(30),
        }
    }
}

/// What to do after a failed attempt.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RetryDecision {
    /// Wait this long, then try again.
    RetryAfter(Duration),
    /// Give up and report the error.
    GiveUp,
}

impl RetryPolicy {
    /// Decides after attempt number `attempt` (1 for the first) failed with `error`.
    ///
    /// `idempotent` says whether repeating the call is safe: a create that timed out may have landed,
    /// so it is not retried blindly (the sync re-reads and adopts instead). A rate limit is always safe
    /// to retry, since the vendor refused the call. `jitter` in `[0, 1)` spreads retries; pass a random
    /// number (tests pass fixed ones).
    ///
    /// ```
    /// use std::time::Duration;
    /// use oncall_core::{Error, RetryDecision, RetryPolicy};
    /// let policy = RetryPolicy::default();
    /// let limited = Error::RateLimited { retry_after: Some(Duration::from_secs(3)), message: String::new() };
    /// assert_eq!(policy.decide(&limited, 1, false, 0.0), RetryDecision::RetryAfter(Duration::from_secs(3)));
    /// let denied = Error::PermissionDenied { message: String::new() };
    /// assert_eq!(policy.decide(&denied, 1, true, 0.0), RetryDecision::GiveUp);
    /// ```
    pub fn decide(
        &self,
        error: &Error,
        attempt: u32,
        idempotent: bool,
        jitter: f64,
    ) -> RetryDecision {
        if attempt >= self.max_attempts {
            return RetryDecision::GiveUp;
        }
        let backoff = || {
            let exp = self
                .base_delay
                .saturating_mul(2u32.saturating_pow(attempt.saturating_sub(1)))
                .min(self.max_delay);
            // Full jitter on the upper half: between half and all of the backoff.
            let jitter = jitter.clamp(0.0, 1.0);
            exp.mul_f64(0.5 + 0.5 * jitter).min(self.max_delay)
        };
        match error {
            Error::RateLimited { retry_after, .. } => RetryDecision::RetryAfter(
                retry_after.map_or_else(backoff, |d| d.min(self.max_delay)),
            ),
            Error::Transient { .. } if idempotent => RetryDecision::RetryAfter(backoff()),
            _ => RetryDecision::GiveUp,
        }
    }
}
