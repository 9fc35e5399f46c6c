//! Why this bench exists: Opsgenie creates one override per POST, so a year's first export is 365
//! round trips. The adapter declares a batch as large as its concurrency limit and sends a batch's
//! POSTs together; this measures that against one POST at a time, through the core's `sync`, over
//! the simulator with 20 ms of latency per request. Issue 7's goal: well under a tenth of the
//! one-at-a-time time.
//!
//! Three configurations: `concurrent` and `one_at_a_time` with no request rate of our own (only
//! the concurrency differs), and `concurrent_adaptive`, the builder's defaults (concurrency 16, the
//! adaptive pace of issue 13 §5, which starts at 20 requests a second and speeds up while answers
//! come back clean). The root crate's `pacing` bench sets it against one request at a time under
//! token buckets.
#![allow(missing_docs)] // criterion's macros generate undocumented items

use std::time::{Duration, Instant};

use chrono::{NaiveDate, TimeDelta, TimeZone, Utc};
use criterion::{criterion_group, criterion_main, Criterion};
use oncall_core::pacing::AdaptiveRate;
use oncall_core::testkit::VendorSimulator;
use oncall_core::{
    sync, ConnectionId, Destination, DestinationId, DestinationMode, Email, InMemoryStateStore,
    Member, Participant, RoleIndex, Rotation, RotationUnit, Schedule, ScheduleId, Shift, SyncMode,
    SyncOptions, SyncTarget, VendorSchedule, VendorScheduleId,
};
use oncall_opsgenie::testkit::OpsgenieSimulator;
use oncall_opsgenie::DEFAULT_MAX_CONCURRENCY;

const LATENCY: Duration = Duration::from_millis(20);

fn people() -> Vec<Member> {
    ["ann", "bob", "cat", "dan"]
        .iter()
        .filter_map(|n| Email::parse(&format!("{n}@example.com")).ok())
        .map(|e| Member::new(e.clone(), e.as_str()))
        .collect()
}

/// A year of daily shifts from 2024-01-01 09:00 UTC.
fn year() -> Option<Schedule> {
    let members = people();
    let first = Utc.with_ymd_and_hms(2024, 1, 1, 9, 0, 0).single()?;
    let shifts = (0..365)
        .map(|d| {
            let start = first + TimeDelta::days(d);
            let who = members[d as usize % members.len()].email.clone();
            Shift::new(start, start + TimeDelta::days(1), vec![Some(who)])
        })
        .collect();
    Schedule::new(
        ScheduleId("host".into()),
        chrono_tz::UTC,
        vec!["primary".into()],
        members,
        shifts,
    )
    .ok()
}

/// One first export, timed from the sync's start to its end (the simulator's start is not timed);
/// `rate` is the provider's adaptive pace, `None` for no rate of its own.
async fn first_export(
    schedule: &Schedule,
    concurrency: usize,
    rate: Option<AdaptiveRate>,
) -> Duration {
    let now = Utc
        .with_ymd_and_hms(2024, 1, 1, 8, 0, 0)
        .single()
        .unwrap_or_default();
    let sim = OpsgenieSimulator::start_at(now).await;
    let start = NaiveDate::from_ymd_opt(2024, 1, 1)
        .and_then(|d| d.and_hms_opt(9, 0, 0))
        .unwrap_or_default();
    let members = people();
    sim.add_schedule(VendorSchedule {
        id: VendorScheduleId("VS".into()),
        name: "VS".into(),
        zone: chrono_tz::UTC,
        rotations: vec![Rotation::new(
            "daily",
            RotationUnit::Daily,
            1,
            start,
            members
                .iter()
                .map(|m| Participant::Member(m.email.clone()))
                .collect(),
        )],
        members,
    });
    sim.set_latency(LATENCY);
    let builder = sim.provider_builder().with_max_concurrency(concurrency);
    let builder = match rate {
        Some(rate) => builder.with_adaptive_rate(rate),
        None => builder,
    };
    let provider = match builder.build() {
        Ok(p) => p,
        Err(e) => panic!("{e}"),
    };
    let destination = Destination {
        id: DestinationId("bench".into()),
        connection: ConnectionId("opsgenie".into()),
        schedule: VendorScheduleId("VS".into()),
        role: RoleIndex::PRIMARY,
        mode: DestinationMode::Protect,
    };
    let store = InMemoryStateStore::new();
    let targets = [SyncTarget {
        destination: &destination,
        provider: &provider,
    }];
    let options = SyncOptions {
        now,
        horizon: None,
        mode: SyncMode::Apply,
    };
    let started = Instant::now();
    let report = sync(schedule, &targets, &store, options).await;
    let took = started.elapsed();
    match report {
        Ok(r) if r.is_ok() => {}
        other => panic!("the export failed: {other:?}"),
    }
    assert_eq!(sim.overrides(&destination.schedule).len(), 365);
    took
}

fn bench(c: &mut Criterion) {
    let Some(schedule) = year() else {
        panic!("the bench's schedule is invalid");
    };
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(r) => r,
        Err(e) => panic!("{e}"),
    };
    let mut group = c.benchmark_group("opsgenie_first_export_365_days_20ms");
    group.sample_size(10);
    for (name, concurrency, rate) in [
        ("concurrent", DEFAULT_MAX_CONCURRENCY, None),
        ("one_at_a_time", 1, None),
        (
            "concurrent_adaptive",
            DEFAULT_MAX_CONCURRENCY,
            Some(AdaptiveRate::BRISK),
        ),
    ] {
        group.bench_function(name, |b| {
            b.to_async(&runtime).iter_custom(|iters| {
                let schedule = &schedule;
                async move {
                    let mut total = Duration::ZERO;
                    for _ in 0..iters {
                        total += first_export(schedule, concurrency, rate).await;
                    }
                    total
                }
            });
        });
    }
    group.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
