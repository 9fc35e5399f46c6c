//! The request budget shared across processes (`PostgresRateBudget` on a real PostgreSQL,
//! `DATABASE_URL`): reservations from four pools at once (four workers) are spaced at the
//! account's limit in all, a 429's pause holds everyone back, and both adapters ask the budget
//! before each request when the host gives them one.
#![cfg(feature = "postgres")]
#![allow(clippy::unwrap_used)] // tests: a panic is the failure report

mod postgres_support;

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use async_trait::async_trait;
use chrono::{TimeZone, Utc};
use oncall_sync::opsgenie::testkit::OpsgenieSimulator;
use oncall_sync::pagerduty::testkit::PagerDutySimulator;
use oncall_sync::{BudgetLimit, Error, Provider, RateBudget};
use postgres_support::*;

const LIMIT: BudgetLimit = BudgetLimit {
    per_minute: 600, // one per 100 ms
    burst: 2,
};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn four_processes_sharing_a_budget_go_at_the_accounts_limit_in_all() {
    let Some(store) = fresh_store("budget_shared").await else {
        return;
    };
    let url = database_url("budget_shared").unwrap();
    let mut tasks = Vec::new();
    for _ in 0..4 {
        let budget = store_in(&url, store.schema()).await.rate_budget();
        tasks.push(tokio::spawn(async move {
            let mut at = Vec::new();
            for _ in 0..40 {
                let wait = budget.reserve("pd-acme", LIMIT).await.unwrap();
                at.push(Instant::now() + wait);
            }
            at
        }));
    }
    let mut sends: Vec<Instant> = Vec::new();
    for task in tasks {
        sends.extend(task.await.unwrap());
    }
    sends.sort();
    // In any second, at most the limit's 10 and the burst (and one for the clocks' rounding):
    // 4 processes asking at once do not get 4 times the limit.
    for (i, start) in sends.iter().enumerate() {
        let in_a_second = sends[i..]
            .iter()
            .take_while(|t| **t < *start + Duration::from_secs(1))
            .count();
        assert!(in_a_second <= 13, "{in_a_second} requests within a second");
    }
    let span = *sends.last().unwrap() - sends[0];
    assert!(
        span >= Duration::from_millis(15_500),
        "160 requests at 10 a second span {span:?}"
    );
    // Another key has a budget of its own.
    let other = store.rate_budget().reserve("og-acme", LIMIT).await.unwrap();
    assert_eq!(other, Duration::ZERO);
    drop_schema(&store).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_pause_holds_every_holder_back() {
    let Some(store) = fresh_store("budget_pause").await else {
        return;
    };
    let budget = store.rate_budget();
    assert_eq!(budget.reserve("k", LIMIT).await.unwrap(), Duration::ZERO);
    budget.pause("k", Duration::from_secs(5)).await.unwrap();
    let wait = store.rate_budget().reserve("k", LIMIT).await.unwrap();
    assert!(
        wait >= Duration::from_millis(4500) && wait <= Duration::from_secs(5),
        "{wait:?}"
    );
    drop_schema(&store).await;
}

/// A budget that records what it is asked.
#[derive(Debug, Default)]
struct Recording(Mutex<Vec<(String, BudgetLimit)>>);

#[async_trait]
impl RateBudget for Recording {
    async fn reserve(&self, key: &str, limit: BudgetLimit) -> Result<Duration, Error> {
        self.0.lock().unwrap().push((key.to_owned(), limit));
        Ok(Duration::ZERO)
    }
}

/// No database needed: the adapters ask the budget they were given, under the host's key name,
/// at their own limit, once per request.
#[tokio::test]
async fn both_adapters_ask_their_budget_before_each_request() {
    let now = Utc.with_ymd_and_hms(2024, 3, 1, 9, 0, 0).unwrap();
    let (og, pd) = (
        OpsgenieSimulator::start_at(now).await,
        PagerDutySimulator::start_at(now).await,
    );
    let budget = Arc::new(Recording::default());
    let og_provider = og
        .provider_builder()
        .with_rate_budget(budget.clone(), "og-acme")
        .build()
        .unwrap();
    let pd_provider = pd
        .provider_builder()
        .with_rate_per_minute(120)
        .with_rate_budget(budget.clone(), "pd-acme")
        .build()
        .unwrap();
    og_provider.list_schedules().await.unwrap();
    pd_provider.list_schedules().await.unwrap();
    let asked = budget.0.lock().unwrap().clone();
    let og_asked: Vec<_> = asked.iter().filter(|(k, _)| k == "og-acme").collect();
    let pd_asked: Vec<_> = asked.iter().filter(|(k, _)| k == "pd-acme").collect();
    assert_eq!(
        og_asked.len(),
        og.requests().len(),
        "one reservation per request"
    );
    assert_eq!(
        pd_asked.len(),
        pd.requests().len(),
        "one reservation per request"
    );
    assert!(!og_asked.is_empty() && !pd_asked.is_empty());
    assert_eq!(og_asked[0].1.per_minute, 600, "Opsgenie's default rate");
    assert_eq!(pd_asked[0].1.per_minute, 120, "the rate the host set");
}
