//! A request budget shared by everyone who sends with one vendor key: many worker processes, one
//! vendor limit. Each adapter paces its own process ([`pacing`](crate::pacing)); a budget paces
//! all of them together, so that N workers do not make N times the key's limit (and N times the
//! 429s). The trait is all the core knows: implementations keep the shared count where every
//! process sees it (the root crate's `postgres` feature has one over PostgreSQL).
//!
//! # Contract
//!
//! - [`RateBudget::reserve`] counts one request of `key` against `limit` and says how long the
//!   caller waits before sending it (zero: at once). The request is counted whether or not it is
//!   sent: call it once per request, right before sending, and do not call it again for the same
//!   request after the wait.
//! - Over every holder of the same budget and key, requests reserved go out at most
//!   `limit.per_minute` a minute on average and `limit.burst` at once (the generic cell rate
//!   algorithm, as [`Pacer`](crate::pacing::Pacer) does it for one process).
//! - [`RateBudget::pause`] holds every holder's next reservations of `key` back for a while (the
//!   vendor's 429 asked for it).
//! - Keys are names the host chooses for a vendor account (`pagerduty-acme`), never the API key
//!   itself: a budget may store them where people can read them.
//! - An error means the budget could not be asked (its store is down): the caller goes on with
//!   its own pacing alone rather than stop sending.
//!
//! The core reads no clock and runs no timer: implementations use their own clock (a database's),
//! and the caller waits with its own runtime's sleep.

use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;

use crate::Error;

/// How fast the requests of one key may go, over everyone who shares the budget.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BudgetLimit {
    /// Requests a minute on average (at least 1).
    pub per_minute: u32,
    /// Requests at once (at least 1).
    pub burst: u32,
}

impl BudgetLimit {
    /// The time between two requests on average.
    pub fn interval(&self) -> Duration {
        Duration::from_secs(60) / self.per_minute.max(1)
    }

    /// How far ahead of its slot a request may go: `burst - 1` intervals.
    pub fn tolerance(&self) -> Duration {
        self.interval().saturating_mul(self.burst.max(1) - 1)
    }
}

/// A request budget shared across processes. See the [module docs](self) for the contract.
#[async_trait]
pub trait RateBudget: Send + Sync + std::fmt::Debug {
    /// Counts one request of `key` and returns how long to wait before sending it.
    async fn reserve(&self, key: &str, limit: BudgetLimit) -> Result<Duration, Error>;

    /// Holds back every holder's requests of `key` for `pause` (the vendor asked for it with a
    /// 429). The default does nothing: each adapter's own pacer still pauses its process.
    async fn pause(&self, key: &str, pause: Duration) -> Result<(), Error> {
        let _ = (key, pause);
        Ok(())
    }
}

/// A budget as an adapter holds it: the shared budget, the account's key name, and the adapter's
/// own limit. Failing open: when the budget cannot be asked, the adapter's own pacing goes on.
#[derive(Debug, Clone)]
pub struct SharedBudget {
    budget: Arc<dyn RateBudget>,
    key: String,
    limit: BudgetLimit,
}

impl SharedBudget {
    /// `budget` under `key`, at `limit`.
    pub fn new(budget: Arc<dyn RateBudget>, key: String, limit: BudgetLimit) -> SharedBudget {
        SharedBudget { budget, key, limit }
    }

    /// How long the next request waits for the shared budget (zero when the budget could not
    /// be asked). Call once per request, right before sending.
    pub async fn reserve(&self) -> Duration {
        self.budget
            .reserve(&self.key, self.limit)
            .await
            .unwrap_or(Duration::ZERO)
    }

    /// Passes a vendor's 429 pause on to every holder of the budget (best effort).
    pub async fn pause(&self, pause: Duration) {
        let _ = self.budget.pause(&self.key, pause).await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_limit_spaces_requests_and_lets_a_burst_go_ahead() {
        let limit = BudgetLimit {
            per_minute: 600,
            burst: 3,
        };
        assert_eq!(limit.interval(), Duration::from_millis(100));
        assert_eq!(limit.tolerance(), Duration::from_millis(200));
        let nothing = BudgetLimit {
            per_minute: 0,
            burst: 0,
        };
        assert_eq!(nothing.interval(), Duration::from_secs(60));
        assert_eq!(nothing.tolerance(), Duration::ZERO);
    }
}
