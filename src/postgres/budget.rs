//! The request budget of a vendor key shared by every worker of a database
//! ([`RateBudget`](oncall_core::RateBudget)): one row per key holding the generic cell rate
//! algorithm's next slot, moved on by each reservation in one statement (the row's lock orders
//! the reservations of all processes) on the database's clock, and the end of the last pause a
//! vendor's 429 asked for, honoured in full.

use std::time::Duration;

use async_trait::async_trait;
use oncall_core::{BudgetLimit, Error, RateBudget};

use super::PostgresStateStore;

/// Connections of a store's budget pool: reservations are one short statement each.
pub(super) const POOL_SIZE: usize = 2;

/// How long a reservation may take in all, waiting for a connection included: a budget that
/// cannot answer by then is skipped (the adapter's own pacing goes on, failing open).
pub(super) const CALL_TIMEOUT: Duration = Duration::from_secs(2);

/// A [`RateBudget`] in the store's database (table `rate_budget` of its schema). Give each
/// adapter the same key for the same vendor account, in every process: their requests then go
/// out at the account's limit in all, not at the limit per process, and a 429 one of them meets
/// holds all of them back for the pause the vendor asked for.
///
/// A store from [`connect`](PostgresStateStore::connect) gives its budgets a pool of their own
/// (two connections, shared by every budget of the store): reservations never take, or wait
/// for, the connections a worker's syncs, renewals and claims use. Over a host's own pool
/// ([`from_pool`](PostgresStateStore::from_pool)) they share that pool: size it for a
/// connection per request in flight besides the worker's
/// [`pool_size`](crate::worker::WorkerOptions::pool_size). A reservation that gets no answer
/// within two seconds is skipped.
///
/// ```no_run
/// use std::sync::Arc;
/// use oncall_sync::pagerduty::PagerDutyProvider;
/// use oncall_sync::postgres::PostgresStateStore;
/// # async fn demo(store: PostgresStateStore) -> Result<(), oncall_sync::Error> {
/// let pagerduty = PagerDutyProvider::builder()
///     .with_api_key(std::env::var("PD_KEY").unwrap_or_default())
///     .with_rate_budget(Arc::new(store.rate_budget()), "pagerduty-acme")
///     .build()?;
/// # Ok(()) }
/// ```
#[derive(Debug, Clone)]
pub struct PostgresRateBudget {
    store: PostgresStateStore,
}

impl PostgresStateStore {
    /// The request budgets kept in this store's schema (migrated), over the store's budget pool
    /// (see [`PostgresRateBudget`]).
    pub fn rate_budget(&self) -> PostgresRateBudget {
        let mut store = self.clone();
        if let Some(pool) = &self.budget_pool {
            store.pool = pool.clone();
        }
        store.call_timeout = CALL_TIMEOUT;
        PostgresRateBudget { store }
    }
}

fn millis(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}

#[async_trait]
impl RateBudget for PostgresRateBudget {
    async fn reserve(&self, key: &str, limit: BudgetLimit) -> Result<Duration, Error> {
        let store = &self.store;
        let what = "reserving a request of a rate budget";
        // The slot is the later of the next slot and now; the request may go a tolerance ahead
        // of it (a burst), but never before a pause ends; the next slot is one interval after it.
        let sql = format!(
            "INSERT INTO {s}.rate_budget AS b (key, next_slot) \
             VALUES ($1, clock_timestamp() + $2 * interval '1 millisecond') \
             ON CONFLICT (key) DO UPDATE \
             SET next_slot = greatest(b.next_slot, clock_timestamp()) + $2 * interval '1 millisecond' \
             RETURNING greatest(0, \
                 extract(epoch FROM b.next_slot - clock_timestamp()) * 1000 - $2 - $3, \
                 extract(epoch FROM b.paused_until - clock_timestamp()) * 1000)::float8",
            s = store.sql.quoted
        );
        let (interval, tolerance) = (millis(limit.interval()), millis(limit.tolerance()));
        store
            .within(what, async {
                let client = store.client().await?;
                let row = client
                    .query_one(&sql, &[&key, &interval, &tolerance])
                    .await
                    .map_err(|e| store.db_error(what, e))?;
                let wait: f64 = row.try_get(0).map_err(|e| store.db_error(what, e))?;
                Ok(Duration::from_secs_f64(wait.max(0.0) / 1000.0))
            })
            .await
    }

    async fn pause(&self, key: &str, pause: Duration) -> Result<(), Error> {
        let store = &self.store;
        let what = "pausing a rate budget";
        // No request before the pause ends (a later pause is never shortened), and the pace
        // starts again from there.
        let sql = format!(
            "INSERT INTO {s}.rate_budget AS b (key, next_slot, paused_until) \
             VALUES ($1, clock_timestamp() + $2 * interval '1 millisecond', \
                     clock_timestamp() + $2 * interval '1 millisecond') \
             ON CONFLICT (key) DO UPDATE \
             SET next_slot = greatest(b.next_slot, EXCLUDED.next_slot), \
                 paused_until = greatest(b.paused_until, EXCLUDED.paused_until)",
            s = store.sql.quoted
        );
        store
            .within(what, async {
                let client = store.client().await?;
                client
                    .execute(&sql, &[&key, &millis(pause)])
                    .await
                    .map_err(|e| store.db_error(what, e))?;
                Ok(())
            })
            .await
    }
}
