//! Why this bench exists: pacing when the vendor's limits are unknown (issue 13 §5). A first
//! export of a year of daily shifts through the sync, with the adapters' default adaptive pace,
//! against a naive client that sends one request at a time (one listing, then one create per
//! shift, each waiting for the one before; no pace of its own, a 429 waited as the vendor says),
//! on the same simulator, at 20 ms and 200 ms of latency per request, under a generous and a tight
//! token bucket of the simulated account:
//!
//! - generous: 1,000 requests a second, 60,000 a minute (the account allows whatever the export
//!   asks). Goal: the sync at least 10 times faster than one at a time.
//! - tight: 10 requests a second, 600 a minute (Opsgenie answers a 429 naming the window,
//!   PagerDuty a 429 with `ratelimit-reset`). Goal: a bounded number of 429s (the non-timed test
//!   `tests/pacing.rs` holds the bound).
//!
//! A custom harness (`harness = false`) that runs each configuration once and prints calls, wall
//! time and 429s: the naive runs take over a minute each at 200 ms, too long for criterion's ten
//! samples. `cargo bench --bench pacing` (about twelve minutes); `PACING_BENCH=opsgenie` (or
//! `pagerduty`, `20ms`, `tight`, ...) keeps only the rows whose name contains it.

#![allow(missing_docs)]

use std::time::{Duration, Instant};

use chrono::{DateTime, TimeDelta, TimeZone, Utc};
use oncall_sync::opsgenie::testkit::{
    Bucket as OgBucket, BucketLimit as OgLimit, OpsgenieDialect, OpsgenieSimulator,
};
use oncall_sync::pagerduty::testkit::{
    Bucket as PdBucket, BucketLimit as PdLimit, PagerDutyDialect, PagerDutySimulator,
};
use oncall_sync::testkit::VendorSimulator;
use oncall_sync::{
    sync, ConnectionId, Destination, DestinationId, DestinationMode, Email, InMemoryStateStore,
    Member, NewOverride, Provider, RetryPolicy, RoleIndex, Schedule, ScheduleId, Shift, Span,
    SyncMode, SyncOptions, SyncTarget, VendorSchedule, VendorScheduleId, Window,
};

const PEOPLE: [&str; 4] = ["ann", "bob", "cat", "dan"];
const DAYS: i64 = 365;

fn email(name: &str) -> Email {
    Email::parse(&format!("{name}@example.com")).unwrap_or_else(|e| panic!("{e}"))
}

fn now() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2025, 1, 1, 8, 0, 0)
        .single()
        .unwrap_or_default()
}

fn day(d: i64) -> DateTime<Utc> {
    now() + TimeDelta::hours(1) + TimeDelta::days(d)
}

/// A year of daily shifts from tomorrow, primary round-robin.
fn year() -> Schedule {
    let members = PEOPLE.iter().map(|n| Member::new(email(n), *n)).collect();
    let shifts = (0..DAYS)
        .map(|d| {
            let who = email(PEOPLE[d as usize % PEOPLE.len()]);
            Shift::new(day(d), day(d + 1), vec![Some(who)])
        })
        .collect();
    Schedule::new(
        ScheduleId("host".into()),
        chrono_tz::UTC,
        vec!["primary".into()],
        members,
        shifts,
    )
    .unwrap_or_else(|e| panic!("{e}"))
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Vendor {
    Opsgenie,
    PagerDuty,
}

/// Requests per rolling second and per rolling minute the simulated account allows.
#[derive(Clone, Copy, Debug)]
struct Limits {
    name: &'static str,
    per_second: u32,
    per_minute: u32,
}

const GENEROUS: Limits = Limits {
    name: "generous",
    per_second: 1_000,
    per_minute: 60_000,
};

const TIGHT: Limits = Limits {
    name: "tight",
    per_second: 10,
    per_minute: 600,
};

/// One simulated account with a token bucket that refuses with a 429.
struct Account {
    vendor: Vendor,
    og: Option<OpsgenieSimulator>,
    pd: Option<PagerDutySimulator>,
}

impl Account {
    async fn open(vendor: Vendor, latency: Duration, limits: Limits) -> Account {
        let schedule = VendorSchedule {
            id: VendorScheduleId("VS".into()),
            name: "Bench".into(),
            zone: chrono_tz::UTC,
            members: PEOPLE.iter().map(|n| Member::new(email(n), *n)).collect(),
            rotations: Vec::new(),
        };
        let account = match vendor {
            Vendor::Opsgenie => {
                let dialect = OpsgenieDialect {
                    bucket: OgBucket::Refuse429,
                    bucket_limit: OgLimit {
                        per_second: limits.per_second,
                        per_minute: limits.per_minute,
                    },
                    ..OpsgenieDialect::default()
                };
                let sim = OpsgenieSimulator::start_with(now(), dialect).await;
                sim.set_latency(latency);
                sim.add_schedule(schedule);
                Account {
                    vendor,
                    og: Some(sim),
                    pd: None,
                }
            }
            Vendor::PagerDuty => {
                let dialect = PagerDutyDialect {
                    bucket: PdBucket::Refuse429(PdLimit {
                        per_second: limits.per_second,
                        per_minute: limits.per_minute,
                    }),
                    ..PagerDutyDialect::default()
                };
                let sim = PagerDutySimulator::start_with(now(), dialect).await;
                sim.set_latency(latency);
                sim.add_schedule(schedule);
                Account {
                    vendor,
                    og: None,
                    pd: Some(sim),
                }
            }
        };
        account
    }

    /// The provider as a user gets it: the default (adaptive) pace and retry policy.
    fn adaptive(&self) -> Box<dyn Provider> {
        let built = match (&self.og, &self.pd) {
            (Some(sim), _) => sim
                .provider_builder()
                .with_retry(RetryPolicy::default())
                .with_adaptive_rate(oncall_sync::pacing::AdaptiveRate::BRISK)
                .build()
                .map(|p| Box::new(p) as Box<dyn Provider>),
            (_, Some(sim)) => sim
                .provider_builder()
                .with_retry(RetryPolicy::default())
                .with_adaptive_rate(oncall_sync::pacing::AdaptiveRate::at_most_per_minute(
                    oncall_sync::pagerduty::DEFAULT_RATE_PER_MINUTE,
                ))
                .build()
                .map(|p| Box::new(p) as Box<dyn Provider>),
            _ => unreachable!("an account has a simulator"),
        };
        built.unwrap_or_else(|e| panic!("{e}"))
    }

    /// A provider with no pace of its own and one request in flight (the naive client's): a 429
    /// is waited as the vendor says, by the default retry policy.
    fn naive_provider(&self) -> Box<dyn Provider> {
        let built = match (&self.og, &self.pd) {
            (Some(sim), _) => sim
                .provider_builder()
                .with_retry(RetryPolicy::default())
                .with_max_concurrency(1)
                .without_rate_limit()
                .build()
                .map(|p| Box::new(p) as Box<dyn Provider>),
            (_, Some(sim)) => sim
                .provider_builder()
                .with_retry(RetryPolicy::default())
                .with_max_concurrency(1)
                .with_rate_per_minute(6_000_000)
                .build()
                .map(|p| Box::new(p) as Box<dyn Provider>),
            _ => unreachable!("an account has a simulator"),
        };
        built.unwrap_or_else(|e| panic!("{e}"))
    }

    /// Requests received so far, and how many were answered 429.
    fn counts(&self) -> (usize, usize) {
        match (&self.og, &self.pd) {
            (Some(sim), _) => {
                let log = sim.requests();
                let limited = log.iter().filter(|r| r.status == Some(429)).count();
                (log.len(), limited)
            }
            (_, Some(sim)) => {
                let log = sim.requests();
                let limited = log.iter().filter(|r| r.status == 429).count();
                (log.len(), limited)
            }
            _ => (0, 0),
        }
    }

    fn overrides(&self) -> usize {
        let schedule = VendorScheduleId("VS".into());
        match (&self.og, &self.pd) {
            (Some(sim), _) => sim.overrides(&schedule).len(),
            (_, Some(sim)) => sim.overrides(&schedule).len(),
            _ => 0,
        }
    }

    /// The first export through the sync.
    async fn sync(&self, host: &Schedule) -> Run {
        let provider = self.adaptive();
        let destination = Destination {
            id: DestinationId("bench".into()),
            connection: ConnectionId("bench".into()),
            schedule: VendorScheduleId("VS".into()),
            role: RoleIndex::PRIMARY,
            mode: DestinationMode::Protect,
        };
        let store = InMemoryStateStore::new();
        let targets = [SyncTarget {
            destination: &destination,
            provider: provider.as_ref(),
        }];
        let options = SyncOptions {
            now: now(),
            horizon: None,
            mode: SyncMode::Apply,
        };
        let started = Instant::now();
        let report = sync(host, &targets, &store, options)
            .await
            .unwrap_or_else(|e| panic!("{e}"));
        let time = started.elapsed();
        assert!(report.is_ok(), "{:?}: {report}", self.vendor);
        self.run(time)
    }

    /// One request at a time: a listing, then one create per shift.
    async fn naive(&self, host: &Schedule) -> Run {
        let provider = self.naive_provider();
        let schedule = VendorScheduleId("VS".into());
        let started = Instant::now();
        let window = Window::new(now(), day(DAYS + 1)).unwrap_or_else(|e| panic!("{e}"));
        provider
            .list_overrides(&schedule, window)
            .await
            .unwrap_or_else(|e| panic!("{e}"));
        for shift in host.shifts() {
            let Some(who) = shift.assignee(RoleIndex::PRIMARY) else {
                continue;
            };
            let new = NewOverride {
                span: Span::new(shift.start, shift.end, who.clone()),
                id: None,
            };
            let results = provider
                .create_overrides(&schedule, &[new])
                .await
                .unwrap_or_else(|e| panic!("{e}"));
            for r in results {
                r.unwrap_or_else(|e| panic!("{e}"));
            }
        }
        self.run(started.elapsed())
    }

    fn run(&self, time: Duration) -> Run {
        assert_eq!(self.overrides(), DAYS as usize, "{:?}", self.vendor);
        let (calls, limited) = self.counts();
        Run {
            calls,
            limited,
            time,
        }
    }
}

/// Calls, 429s and wall time of one export.
#[derive(Clone, Copy, Debug)]
struct Run {
    calls: usize,
    limited: usize,
    time: Duration,
}

impl std::fmt::Display for Run {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{:>4} calls {:>3} x429 {:>7.2} s",
            self.calls,
            self.limited,
            self.time.as_secs_f64()
        )
    }
}

async fn table() {
    let host = year();
    let only = std::env::var("PACING_BENCH").unwrap_or_default();
    println!(
        "\n{:<9} {:<7} {:<8} {:<31} {:<31} speed-up",
        "vendor", "latency", "limits", "oncall-sync (adaptive)", "one at a time"
    );
    for vendor in [Vendor::Opsgenie, Vendor::PagerDuty] {
        for latency in [Duration::from_millis(20), Duration::from_millis(200)] {
            for limits in [GENEROUS, TIGHT] {
                let name =
                    format!("{vendor:?} {}ms {}", latency.as_millis(), limits.name).to_lowercase();
                if !name.contains(&only.to_lowercase()) {
                    continue;
                }
                let ours = Account::open(vendor, latency, limits)
                    .await
                    .sync(&host)
                    .await;
                let naive = Account::open(vendor, latency, limits)
                    .await
                    .naive(&host)
                    .await;
                let speedup = naive.time.as_secs_f64() / ours.time.as_secs_f64().max(1e-9);
                println!(
                    "{:<9} {:<7} {:<8} {:<31} {:<31} {speedup:>6.1}x",
                    format!("{vendor:?}"),
                    format!("{} ms", latency.as_millis()),
                    limits.name,
                    ours.to_string(),
                    naive.to_string(),
                );
            }
        }
    }
}

fn main() {
    // `cargo bench` passes `--bench`; `cargo test --benches` runs this too: build only then.
    if !std::env::args().any(|a| a == "--bench") {
        return;
    }
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .unwrap_or_else(|e| panic!("{e}"));
    runtime.block_on(table());
}
