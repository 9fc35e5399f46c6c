//! The request budget shared across processes (`PostgresRateBudget` on a real PostgreSQL,
//! `DATABASE_URL`): reservations from four pools at once (four workers) are spaced at the
//! account's limit in all, a 429's pause holds everyone back for all of it, every adapter asks
//! the budget before each request and passes each 429 on to it, four providers against a
//! throttling vendor meet few 429s sharing a budget (and many without), and reservations never
//! wait for the store's own connections.
#![cfg(feature = "postgres")]
#![allow(clippy::unwrap_used)] // tests: a panic is the failure report

mod postgres_support;

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use async_trait::async_trait;
use chrono::{TimeZone, Utc};
use oncall_sync::jsm::testkit::{JsmDialect, JsmSimulator, RateLimitReading};
use oncall_sync::opsgenie::testkit::OpsgenieSimulator;
use oncall_sync::pacing::AdaptiveRate;
use oncall_sync::pagerduty::testkit::PagerDutySimulator;
use oncall_sync::postgres::{ConnectOptions, PostgresStateStore};
use oncall_sync::testkit::VendorSimulator;
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

/// A 429's pause holds every holder back for all of it: the burst's tolerance (Opsgenie's
/// defaults: 600 a minute, a burst of 16, 1.5 s ahead of the pace) does not let a request
/// through before it ends.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_pause_is_not_shortened_by_the_burst() {
    let Some(store) = fresh_store("budget_pause_burst").await else {
        return;
    };
    let limit = BudgetLimit {
        per_minute: 600,
        burst: 16,
    };
    let budget = store.rate_budget();
    assert_eq!(budget.reserve("k", limit).await.unwrap(), Duration::ZERO);
    budget.pause("k", Duration::from_secs(1)).await.unwrap();
    let other = store.rate_budget();
    for _ in 0..3 {
        let wait = other.reserve("k", limit).await.unwrap();
        assert!(
            wait >= Duration::from_millis(900),
            "another holder's request waits {wait:?} after a 1 s pause"
        );
    }
    // A shorter pause does not shorten it.
    budget.pause("k", Duration::from_millis(10)).await.unwrap();
    assert!(other.reserve("k", limit).await.unwrap() >= Duration::from_millis(800));
    drop_schema(&store).await;
}

/// Reservations have a pool of their own: a store whose connections are all taken (its syncs,
/// renewals and claims) still answers its budget at once.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reservations_never_wait_for_the_stores_connections() {
    let Some(url) = database_url("budget_pool") else {
        return;
    };
    let store = PostgresStateStore::connect_with(&url, ConnectOptions::default().with_pool_size(1))
        .await
        .unwrap()
        .with_schema(&unique_schema("budget_pool"))
        .unwrap();
    store.migrate().await.unwrap();
    let taken = store.pool().get().await.unwrap();
    let reserved = tokio::time::timeout(
        Duration::from_secs(3),
        store.rate_budget().reserve("k", LIMIT),
    )
    .await;
    assert!(
        matches!(reserved, Ok(Ok(_))),
        "a reservation waited for the store's pool: {reserved:?}"
    );
    drop(taken);
    drop_schema(&store).await;
}

/// A budget that records what it is asked.
#[derive(Debug, Default)]
struct Recording {
    reserved: Mutex<Vec<(String, BudgetLimit)>>,
    paused: Mutex<Vec<(String, Duration)>>,
}

#[async_trait]
impl RateBudget for Recording {
    async fn reserve(&self, key: &str, limit: BudgetLimit) -> Result<Duration, Error> {
        self.reserved.lock().unwrap().push((key.to_owned(), limit));
        Ok(Duration::ZERO)
    }

    async fn pause(&self, key: &str, pause: Duration) -> Result<(), Error> {
        self.paused.lock().unwrap().push((key.to_owned(), pause));
        Ok(())
    }
}

/// No database needed: a 429 any adapter meets is passed on to its budget, under the host's
/// key name, so that every process holds back.
#[tokio::test]
async fn every_adapters_429_reaches_its_budget() {
    let now = Utc.with_ymd_and_hms(2024, 3, 1, 9, 0, 0).unwrap();
    let (og, pd, jsm) = (
        OpsgenieSimulator::start_at(now).await,
        PagerDutySimulator::start_at(now).await,
        JsmSimulator::start_at(now).await,
    );
    let budget = Arc::new(Recording::default());
    let providers: Vec<(&str, Box<dyn Provider>, &dyn VendorSimulator)> = vec![
        (
            "og-acme",
            Box::new(
                og.provider_builder()
                    .with_rate_budget(budget.clone(), "og-acme")
                    .build()
                    .unwrap(),
            ),
            &og,
        ),
        (
            "pd-acme",
            Box::new(
                pd.provider_builder()
                    .with_rate_budget(budget.clone(), "pd-acme")
                    .build()
                    .unwrap(),
            ),
            &pd,
        ),
        (
            "jsm-acme",
            Box::new(
                jsm.provider_builder()
                    .with_rate_budget(budget.clone(), "jsm-acme")
                    .build()
                    .unwrap(),
            ),
            &jsm,
        ),
    ];
    for (key, provider, simulator) in &providers {
        simulator.rate_limit_next(1);
        // Retried within the adapter's policy, or given up: the pause is passed on either way.
        let _ = provider.list_schedules().await;
        let paused = budget.paused.lock().unwrap().clone();
        assert!(
            paused.iter().any(|(k, _)| k == key),
            "{key}: the 429 did not reach the budget: {paused:?}"
        );
    }
}

/// Four providers (four processes) against a vendor that refuses more than 20 requests a
/// second, each paced at 18 a second: sharing a budget they meet (almost) no 429, where alone
/// each goes at its own pace and runs into the vendor's limit.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn four_providers_sharing_a_budget_stay_within_a_throttled_vendors_limit() {
    let Some(store) = fresh_store("budget_throttled").await else {
        return;
    };
    let url = database_url("budget_throttled").unwrap();
    let now = Utc.with_ymd_and_hms(2024, 3, 1, 9, 0, 0).unwrap();
    let dialect = JsmDialect {
        rate_limit: RateLimitReading::Refused(20),
        ..JsmDialect::default()
    };
    let vendor = JsmSimulator::start_with(now, dialect).await;
    let refused = |vendor: &JsmSimulator| {
        vendor
            .requests()
            .iter()
            .filter(|r| r.status == Some(429))
            .count()
    };
    // Each process: its own provider (its own pacer), ten calls.
    let run = |budget: Option<Arc<dyn RateBudget>>| {
        let mut builder = vendor
            .provider_builder()
            .with_adaptive_rate(AdaptiveRate::at_most_per_minute(18 * 60))
            .with_max_concurrency(1);
        if let Some(budget) = budget {
            builder = builder.with_rate_budget(budget, "jsm-acme");
        }
        let provider = builder.build().unwrap();
        tokio::spawn(async move {
            for _ in 0..10 {
                let _ = provider.list_schedules().await;
            }
        })
    };
    let mut alone = Vec::new();
    for _ in 0..4 {
        alone.push(run(None));
    }
    for task in alone {
        task.await.unwrap();
    }
    let refused_alone = refused(&vendor);
    // A second for the vendor's window to empty, then the same with a shared budget.
    tokio::time::sleep(Duration::from_millis(1100)).await;
    vendor.clear_requests();
    let mut shared = Vec::new();
    for _ in 0..4 {
        let budget: Arc<dyn RateBudget> =
            Arc::new(store_in(&url, store.schema()).await.rate_budget());
        shared.push(run(Some(budget)));
    }
    for task in shared {
        task.await.unwrap();
    }
    let refused_shared = refused(&vendor);
    eprintln!("429s: {refused_alone} without a budget, {refused_shared} with one");
    assert!(
        refused_shared <= 2,
        "{refused_shared} 429s with a shared budget ({refused_alone} without)"
    );
    // Alone, each process runs into the vendor's limit (and pauses only itself).
    assert!(
        refused_alone >= 4,
        "the vendor refused only {refused_alone} requests of four processes at its limit each"
    );
    drop_schema(&store).await;
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
    let asked = budget.reserved.lock().unwrap().clone();
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

/// No database needed: the CLI's config builds every connection's provider with the budget it
/// is given, under the connection's id (what the worker and sync_job examples give it).
#[tokio::test]
async fn a_configs_providers_share_the_budget_they_are_given() {
    let now = Utc.with_ymd_and_hms(2024, 3, 1, 9, 0, 0).unwrap();
    let (og, pd, jsm) = (
        OpsgenieSimulator::start_at(now).await,
        PagerDutySimulator::start_at(now).await,
        JsmSimulator::start_at(now).await,
    );
    let config = serde_json::json!({
        "connections": [
            {"id": "og", "provider": "opsgenie", "api_key_env": "OG_KEY", "base_url": og.uri()},
            {"id": "pd", "provider": "pagerduty", "api_key_env": "PD_KEY", "base_url": pd.uri()},
            {"id": "jsm", "provider": "jsm", "site": jsm.uri(), "base_url": jsm.uri(),
             "email_env": "JSM_EMAIL", "api_token_env": "JSM_TOKEN"}],
        "schedule": {"id": "platform", "time_zone": "UTC", "roles": ["primary"], "shifts": [
            {"start": "2024-03-02T09:00:00Z", "end": "2024-03-03T09:00:00Z",
             "assignees": ["ann@example.com"]}]},
        "destinations": [
            {"id": "a", "connection": "og", "schedule_id": "A", "role": "primary"},
            {"id": "b", "connection": "pd", "schedule_id": "B", "role": "primary"},
            {"id": "c", "connection": "jsm", "schedule_id": "C", "role": "primary"}]
    });
    let config = oncall_sync::config::Config::from_json(&config.to_string()).unwrap();
    let env = |name: &str| {
        Some(match name {
            "OG_KEY" => oncall_sync::opsgenie::testkit::READ_WRITE_KEY.to_owned(),
            "PD_KEY" => PagerDutySimulator::READ_WRITE_KEY.to_owned(),
            "JSM_EMAIL" => oncall_sync::jsm::testkit::ACCOUNT_EMAIL.to_owned(),
            _ => oncall_sync::jsm::testkit::READ_WRITE_TOKEN.to_owned(),
        })
    };
    let budget = Arc::new(Recording::default());
    let shared: Arc<dyn RateBudget> = budget.clone();
    let providers = config
        .destination_providers_with_budget(&env, Some(&shared))
        .unwrap();
    for provider in providers.values() {
        provider.list_schedules().await.unwrap();
    }
    let mut keys: Vec<String> = budget
        .reserved
        .lock()
        .unwrap()
        .iter()
        .map(|(k, _)| k.clone())
        .collect();
    keys.dedup();
    keys.sort();
    keys.dedup();
    assert_eq!(keys, ["jsm", "og", "pd"]);
}
