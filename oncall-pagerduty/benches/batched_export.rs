//! Why this bench exists: PagerDuty creates overrides in batches, and a first export of a year of
//! daily shifts is 365 creates. At a realistic 20 ms per request, sent one per call that is seven
//! seconds of round trips, batched it is a handful. This measures both through the real adapter and
//! the simulator (HTTP on loopback, 20 ms added to every answer), so a change that breaks batching, or
//! adds calls to an export, shows up as time.
//!
//! `cargo bench -p oncall-pagerduty --bench batched_export` (about a minute and a half: the unbatched
//! export takes seven seconds an iteration). The request counts are printed once per variant.

#![allow(missing_docs)] // criterion_group! generates an undocumented function

use std::time::{Duration, Instant};

use chrono::{DateTime, TimeDelta, TimeZone, Utc};
use criterion::{criterion_group, criterion_main, Criterion, SamplingMode};
use oncall_core::testkit::VendorSimulator;
use oncall_core::{
    sync, ConnectionId, Destination, DestinationId, DestinationMode, Email, InMemoryStateStore,
    Member, Provider, RoleIndex, Schedule, ScheduleId, Shift, SyncMode, SyncOptions, SyncTarget,
    VendorSchedule, VendorScheduleId,
};
use oncall_pagerduty::testkit::{PagerDutySimulator, Unbatched};

const LATENCY: Duration = Duration::from_millis(20);
const PEOPLE: [&str; 4] = ["ann", "bob", "cat", "dan"];

fn email(name: &str) -> Email {
    Email::parse(&format!("{name}@example.com")).unwrap_or_else(|e| panic!("{e}"))
}

fn day(d: i64) -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2025, 1, 1, 9, 0, 0)
        .single()
        .unwrap_or_default()
        + TimeDelta::days(d)
}

/// A year of daily shifts, primary round-robin.
fn year() -> Schedule {
    let members = PEOPLE.iter().map(|n| Member::new(email(n), *n)).collect();
    let shifts = (0..365)
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

/// A fresh account with an empty schedule, answering every request 20 ms late.
async fn account(now: DateTime<Utc>) -> PagerDutySimulator {
    let sim = PagerDutySimulator::start_at(now).await;
    sim.add_schedule(VendorSchedule {
        id: VendorScheduleId("PYEAR".into()),
        name: "Year".into(),
        zone: chrono_tz::UTC,
        members: PEOPLE.iter().map(|n| Member::new(email(n), *n)).collect(),
        rotations: Vec::new(),
    });
    sim.set_latency(LATENCY);
    sim
}

/// The first export of the year; returns the requests it made.
async fn first_export(sim: &PagerDutySimulator, schedule: &Schedule, batched: bool) -> usize {
    let provider = sim.provider();
    let unbatched = Unbatched(provider.clone());
    let p: &dyn Provider = if batched { &provider } else { &unbatched };
    let destination = Destination {
        id: DestinationId("year".into()),
        connection: ConnectionId("pagerduty".into()),
        schedule: VendorScheduleId("PYEAR".into()),
        role: RoleIndex::PRIMARY,
        mode: DestinationMode::Protect,
    };
    let store = InMemoryStateStore::new();
    let options = SyncOptions {
        now: sim.now(),
        horizon: Some(TimeDelta::days(365)),
        mode: SyncMode::Apply,
    };
    let targets = [SyncTarget {
        destination: &destination,
        provider: p,
    }];
    let report = sync(schedule, &targets, &store, options)
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    assert!(report.is_ok(), "{report}");
    sim.requests().len()
}

fn batched_export(c: &mut Criterion) {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap_or_else(|e| panic!("{e}"));
    let schedule = year();
    let now = day(0) - TimeDelta::hours(1);
    let mut group = c.benchmark_group("first_export_365_daily_at_20ms");
    group.sampling_mode(SamplingMode::Flat);
    group.sample_size(10);
    group.warm_up_time(Duration::from_millis(1));
    group.measurement_time(Duration::from_secs(1));
    for (name, batched) in [("batched_50", true), ("one_per_call", false)] {
        let mut printed = false;
        group.bench_function(name, |b| {
            b.iter_custom(|iters| {
                let mut spent = Duration::ZERO;
                for _ in 0..iters {
                    let sim = rt.block_on(account(now));
                    let started = Instant::now();
                    let requests = rt.block_on(first_export(&sim, &schedule, batched));
                    spent += started.elapsed();
                    if !printed {
                        let posts = sim.requests().iter().filter(|r| r.method == "POST").count();
                        eprintln!("{name}: {requests} requests, {posts} of them creates");
                        printed = true;
                    }
                }
                spent
            });
        });
    }
    group.finish();
}

criterion_group!(benches, batched_export);
criterion_main!(benches);
