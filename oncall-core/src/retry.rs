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
            // Jitter on the upper half: between half and all of the backoff. A jitter that is not a
            // number counts as the middle; nothing here may panic, whatever the caller passes.
            let jitter = if jitter.is_finite() {
                jitter.clamp(0.0, 1.0)
            } else {
                0.5
            };
            Duration::try_from_secs_f64(exp.as_secs_f64() * (0.5 + 0.5 * jitter))
                .unwrap_or(exp)
                .min(self.max_delay)
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

#[cfg(test)]
mod tests {
    use super::*;

    fn transient() -> Error {
        Error::Transient {
            message: "502".into(),
        }
    }

    #[test]
    fn backoff_doubles_with_jitter_and_is_capped() {
        let p = RetryPolicy {
            max_attempts: 10,
            base_delay: Duration::from_secs(1),
            max_delay: Duration::from_secs(5),
        };
        let d = |attempt, jitter| p.decide(&transient(), attempt, true, jitter);
        assert_eq!(d(1, 1.0), RetryDecision::RetryAfter(Duration::from_secs(1)));
        assert_eq!(
            d(1, 0.0),
            RetryDecision::RetryAfter(Duration::from_millis(500))
        );
        assert_eq!(d(2, 1.0), RetryDecision::RetryAfter(Duration::from_secs(2)));
        assert_eq!(d(3, 1.0), RetryDecision::RetryAfter(Duration::from_secs(4)));
        assert_eq!(
            d(4, 1.0),
            RetryDecision::RetryAfter(Duration::from_secs(5)),
            "capped"
        );
        assert_eq!(
            d(9, 7.0),
            RetryDecision::RetryAfter(Duration::from_secs(5)),
            "jitter clamped"
        );
        assert_eq!(d(10, 0.5), RetryDecision::GiveUp, "attempts exhausted");
        assert_eq!(
            d(1, f64::NAN),
            RetryDecision::RetryAfter(Duration::from_millis(750))
        );
        let huge = RetryPolicy {
            max_attempts: 3,
            base_delay: Duration::MAX,
            max_delay: Duration::MAX,
        };
        assert!(matches!(
            huge.decide(&transient(), 2, true, 1.0),
            RetryDecision::RetryAfter(_)
        ));
    }

    #[test]
    fn what_is_never_retried() {
        let p = RetryPolicy::default();
        // A create that timed out may have landed: the sync re-reads instead (DESIGN §4).
        assert_eq!(p.decide(&transient(), 1, false, 0.5), RetryDecision::GiveUp);
        for e in [
            Error::PermissionDenied {
                message: String::new(),
            },
            Error::Unauthenticated {
                message: String::new(),
            },
            Error::Rejected {
                message: String::new(),
            },
            Error::NotFound {
                resource: crate::error::Resource::Other(String::new()),
                message: String::new(),
            },
        ] {
            assert_eq!(p.decide(&e, 1, true, 0.5), RetryDecision::GiveUp, "{e}");
        }
    }

    #[test]
    fn rate_limits_wait_as_told_even_for_creates() {
        let p = RetryPolicy::default();
        let limited = |s: Option<u64>| Error::RateLimited {
            retry_after: s.map(Duration::from_secs),
            message: String::new(),
        };
        assert_eq!(
            p.decide(&limited(Some(7)), 1, false, 0.0),
            RetryDecision::RetryAfter(Duration::from_secs(7))
        );
        assert_eq!(
            p.decide(&limited(Some(3600)), 1, false, 0.0),
            RetryDecision::RetryAfter(p.max_delay),
            "the vendor's hint is capped"
        );
        assert_eq!(
            p.decide(&limited(None), 2, false, 1.0),
            RetryDecision::RetryAfter(Duration::from_secs(1)),
            "no hint: backoff"
        );
    }
}
