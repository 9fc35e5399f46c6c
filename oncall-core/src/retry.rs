//! When to try a vendor call again: a pure decision adapters call around their requests.

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use crate::error::Error;

/// Retry settings: capped exponential backoff with jitter.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RetryPolicy {
    /// Most attempts in all, the first included.
    pub max_attempts: u32,
    /// Wait before the second attempt.
    pub base_delay: Duration,
    /// Longest wait between attempts of our own backoff. A vendor's rate-limit hint is not cut
    /// to it: the vendor's wait is waited, within [`RetryPolicy::max_total_delay`].
    pub max_delay: Duration,
    /// Longest total wait across all attempts of one call: a retry that would wait beyond it is
    /// not made, and the last error (a rate limit, say) is reported.
    pub max_total_delay: Duration,
}

impl Default for RetryPolicy {
    fn default() -> Self {
        RetryPolicy {
            max_attempts: 4,
            base_delay: Duration::from_millis(500),
            max_delay: Duration::from_secs(30),
            max_total_delay: Duration::from_secs(90),
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
            // The vendor's wait is what it takes; whether it fits the budget is the caller's
            // (`run_with_retries` reports the rate limit rather than wait past the total).
            Error::RateLimited { retry_after, .. } => {
                RetryDecision::RetryAfter(retry_after.unwrap_or_else(backoff))
            }
            Error::Transient { .. } if idempotent => RetryDecision::RetryAfter(backoff()),
            _ => RetryDecision::GiveUp,
        }
    }

    /// How long every request of a connection holds back after a rate limit: the vendor's
    /// `retry_after` (else [`RetryPolicy::base_delay`]), no longer than
    /// [`RetryPolicy::max_total_delay`] (a wait beyond it is reported, not waited). Adapters pass it
    /// to [`Pacer::pause_for`](crate::pacing::Pacer::pause_for) so that concurrent calls back off
    /// together.
    ///
    /// ```
    /// use std::time::Duration;
    /// use oncall_core::RetryPolicy;
    /// let policy = RetryPolicy::default();
    /// assert_eq!(policy.rate_limit_pause(None), policy.base_delay);
    /// assert_eq!(policy.rate_limit_pause(Some(Duration::from_secs(60))), Duration::from_secs(60));
    /// assert_eq!(policy.rate_limit_pause(Some(Duration::MAX)), policy.max_total_delay);
    /// ```
    pub fn rate_limit_pause(&self, retry_after: Option<Duration>) -> Duration {
        retry_after
            .unwrap_or(self.base_delay)
            .min(self.max_total_delay)
    }
}

/// A shared source of jitter in `[0, 1)` for [`run_with_retries`] (SplitMix64: spreading retries
/// needs no more). Pure: the adapter passes the seed, so the core reads no clock or entropy.
///
/// ```
/// use oncall_core::retry::Jitter;
/// let jitter = Jitter::new(7);
/// assert!((0.0..1.0).contains(&jitter.next()));
/// ```
#[derive(Debug)]
pub struct Jitter(AtomicU64);

impl Jitter {
    /// A sequence started from `seed`; give each connection a different one.
    pub fn new(seed: u64) -> Jitter {
        Jitter(AtomicU64::new(seed))
    }

    /// The next number in `[0, 1)`; callable from many tasks at once.
    pub fn next(&self) -> f64 {
        const GAMMA: u64 = 0x9E37_79B9_7F4A_7C15;
        let mut z = self
            .0
            .fetch_add(GAMMA, Ordering::Relaxed)
            .wrapping_add(GAMMA);
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^= z >> 31;
        // The top 53 bits: every value below 1 is exact in an f64.
        (z >> 11) as f64 / (1u64 << 53) as f64
    }
}

/// Runs one vendor call with retries: `attempt(n)` makes try `n` (from 1); after a failure the
/// policy decides ([`RetryPolicy::decide`]), and `sleep` waits as it says, until the call succeeds,
/// the policy gives up, or the waits would pass [`RetryPolicy::max_total_delay`].
///
/// Runtime-agnostic: the adapter passes its runtime's sleep (the core has no timer and reads no
/// clock) and a source of jitter in `[0, 1)`. The last error is returned as it came.
///
/// ```
/// use std::time::Duration;
/// use oncall_core::{retry::run_with_retries, Error, RetryPolicy};
/// # futures_executor_free::run(async {
/// let policy = RetryPolicy { base_delay: Duration::from_millis(1), ..RetryPolicy::default() };
/// let mut slept = Vec::new();
/// let result = run_with_retries(
///     &policy,
///     true,
///     || 0.5,
///     |d| { slept.push(d); async {} },
///     |n| async move {
///         if n < 3 { Err(Error::Transient { message: "503".into() }) } else { Ok(n) }
///     },
/// )
/// .await;
/// assert_eq!(result, Ok(3));
/// assert_eq!(slept.len(), 2);
/// # });
/// # mod futures_executor_free {
/// #     pub fn run<F: std::future::Future>(f: F) -> F::Output {
/// #         let mut f = std::pin::pin!(f);
/// #         let mut cx = std::task::Context::from_waker(std::task::Waker::noop());
/// #         loop { if let std::task::Poll::Ready(v) = f.as_mut().poll(&mut cx) { return v; } }
/// #     }
/// # }
/// ```
pub async fn run_with_retries<T, A, AF, S, SF>(
    policy: &RetryPolicy,
    idempotent: bool,
    mut jitter: impl FnMut() -> f64,
    mut sleep: S,
    mut attempt: A,
) -> Result<T, Error>
where
    A: FnMut(u32) -> AF,
    AF: std::future::Future<Output = Result<T, Error>>,
    S: FnMut(Duration) -> SF,
    SF: std::future::Future<Output = ()>,
{
    let mut waited = Duration::ZERO;
    let mut n = 1;
    loop {
        let error = match attempt(n).await {
            Ok(value) => return Ok(value),
            Err(error) => error,
        };
        match policy.decide(&error, n, idempotent, jitter()) {
            RetryDecision::RetryAfter(wait) => {
                waited = waited.saturating_add(wait);
                if waited > policy.max_total_delay {
                    return Err(error);
                }
                sleep(wait).await;
                n += 1;
            }
            RetryDecision::GiveUp => return Err(error),
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
    fn jitter_stays_in_range_and_varies() {
        let jitter = Jitter::new(1);
        let draws: Vec<f64> = (0..1000).map(|_| jitter.next()).collect();
        assert!(draws.iter().all(|j| (0.0..1.0).contains(j)));
        let low = draws.iter().filter(|&&j| j < 0.5).count();
        assert!((400..600).contains(&low), "{low} of 1000 below one half");
        assert_ne!(Jitter::new(2).next(), Jitter::new(3).next());
    }

    #[test]
    fn backoff_doubles_with_jitter_and_is_capped() {
        let p = RetryPolicy {
            max_attempts: 10,
            base_delay: Duration::from_secs(1),
            max_delay: Duration::from_secs(5),
            max_total_delay: Duration::MAX,
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
            max_total_delay: Duration::MAX,
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
            p.decide(&limited(Some(60)), 1, false, 0.0),
            RetryDecision::RetryAfter(Duration::from_secs(60)),
            "the vendor's wait is not cut to our own backoff's cap"
        );
        assert_eq!(
            p.decide(&limited(None), 2, false, 1.0),
            RetryDecision::RetryAfter(Duration::from_secs(1)),
            "no hint: backoff"
        );
    }
}

#[cfg(test)]
mod runner_tests {
    use super::*;

    fn block_on<F: std::future::Future>(f: F) -> F::Output {
        // Nothing here waits on anything real: the sleeps are recorded, not slept.
        let mut f = std::pin::pin!(f);
        let mut cx = std::task::Context::from_waker(std::task::Waker::noop());
        loop {
            if let std::task::Poll::Ready(v) = f.as_mut().poll(&mut cx) {
                return v;
            }
        }
    }

    fn policy() -> RetryPolicy {
        RetryPolicy {
            max_attempts: 5,
            base_delay: Duration::from_secs(1),
            max_delay: Duration::from_secs(10),
            max_total_delay: Duration::from_secs(6),
        }
    }

    fn run(
        policy: &RetryPolicy,
        idempotent: bool,
        errors: Vec<Error>,
    ) -> (Result<u32, Error>, Vec<Duration>) {
        let mut slept = Vec::new();
        let result = block_on(run_with_retries(
            policy,
            idempotent,
            || 1.0,
            |d| {
                slept.push(d);
                async {}
            },
            |n| {
                let e = errors.get(n as usize - 1).cloned();
                async move { e.map_or(Ok(n), Err) }
            },
        ));
        (result, slept)
    }

    fn transient() -> Error {
        Error::Transient {
            message: "503".into(),
        }
    }

    #[test]
    fn retries_until_success_with_growing_waits() {
        let (result, slept) = run(&policy(), true, vec![transient(), transient()]);
        assert_eq!(result, Ok(3));
        assert_eq!(slept, [Duration::from_secs(1), Duration::from_secs(2)]);
    }

    #[test]
    fn stops_at_the_total_wait() {
        // 1 + 2 = 3 s waited, the next 4 s would make 7 s > 6 s.
        let (result, slept) = run(&policy(), true, vec![transient(); 5]);
        assert_eq!(result, Err(transient()));
        assert_eq!(slept.len(), 2);
    }

    #[test]
    fn never_retries_what_may_have_landed_or_is_refused_for_rights() {
        let (result, slept) = run(&policy(), false, vec![transient()]);
        assert_eq!(result, Err(transient()));
        assert!(slept.is_empty(), "a non-idempotent call is not re-sent");
        let denied = Error::PermissionDenied {
            message: "read-only".into(),
        };
        let (result, slept) = run(&policy(), true, vec![denied.clone()]);
        assert_eq!(result, Err(denied));
        assert!(slept.is_empty(), "R8: never retried");
    }

    #[test]
    fn waits_as_the_vendor_says_on_a_rate_limit() {
        let limited = Error::RateLimited {
            retry_after: Some(Duration::from_secs(3)),
            message: "429".into(),
        };
        let (result, slept) = run(&policy(), false, vec![limited]);
        assert_eq!(result, Ok(2));
        assert_eq!(slept, [Duration::from_secs(3)]);
    }

    #[test]
    fn a_rate_limit_longer_than_the_budget_is_reported_not_waited() {
        let limited = Error::RateLimited {
            retry_after: Some(Duration::from_secs(3600)),
            message: "429".into(),
        };
        let (result, slept) = run(&policy(), false, vec![limited.clone()]);
        assert_eq!(result, Err(limited));
        assert!(slept.is_empty(), "{slept:?}");
    }

    #[test]
    fn a_vendor_wait_beyond_our_backoff_cap_is_waited_within_the_budget() {
        let policy = RetryPolicy {
            max_delay: Duration::from_secs(30),
            max_total_delay: Duration::from_secs(90),
            ..policy()
        };
        let limited = Error::RateLimited {
            retry_after: Some(Duration::from_secs(60)),
            message: "429".into(),
        };
        let (result, slept) = run(&policy, false, vec![limited]);
        assert_eq!(result, Ok(2));
        assert_eq!(slept, [Duration::from_secs(60)]);
    }
}
