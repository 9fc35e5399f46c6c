//! Why: the planner runs on every sync of every destination; a year of hourly shifts against 10,000
//! existing overrides must plan in under 5 ms, and cost must grow near-linearly (issue: export
//! planning). The series from 1,000 to 100,000 spans shows the growth. The drift series (a person
//! deleted every other one of ours, in protect and authoritative mode) shows that reporting what
//! people did grows near-linearly too: it once looked each loss up among the others (quadratic).
#![allow(missing_docs)] // criterion's macros generate undocumented items

use chrono::{DateTime, TimeDelta, TimeZone, Utc};
use criterion::{black_box, criterion_group, criterion_main, BenchmarkId, Criterion, Throughput};
use oncall_sync::{
    plan_export, Capabilities, Desired, DestinationId, DestinationMode, DestinationState, Email,
    Override, OverrideId, PlanInput, RoleIndex, Span,
};

struct Input {
    desired: Desired,
    vendor: Vec<Override>,
    state: DestinationState,
    now: DateTime<Utc>,
}

/// `spans` hourly desired spans; the first half already exported (ledger and vendor agree, with
/// every 50th swapped by the host); the vendor holds `existing` overrides in all: those, and foreign
/// ones spread over the whole range.
fn input(spans: usize, existing: usize) -> Input {
    let now = Utc.with_ymd_and_hms(2024, 1, 1, 0, 30, 0).unwrap();
    let members: Vec<Email> = (0..10)
        .map(|i| Email::parse(&format!("m{i}@example.com")).expect("email"))
        .collect();
    let hour =
        |i: usize| Utc.with_ymd_and_hms(2024, 1, 1, 0, 0, 0).unwrap() + TimeDelta::hours(i as i64);
    let desired_spans: Vec<Span> = (0..spans)
        .map(|i| Span::new(hour(i).max(now), hour(i + 1), members[i % 10].clone()))
        .collect();
    let exported = spans / 2;
    let ledger: Vec<Override> = desired_spans[..exported]
        .iter()
        .enumerate()
        .map(|(i, s)| {
            let member = if i % 50 == 0 {
                members[(i + 1) % 10].clone()
            } else {
                s.member.clone()
            };
            Override {
                id: OverrideId::new(format!("ours-{i}")),
                span: Span::new(s.start, s.end, member),
            }
        })
        .collect();
    let mut vendor = ledger.clone();
    let foreign = existing.saturating_sub(vendor.len());
    let step = (spans.max(1) * 60 / foreign.max(1)).max(1) as i64;
    vendor.extend((0..foreign).map(|i| Override {
        id: OverrideId::new(format!("foreign-{i}")),
        span: Span::new(
            now + TimeDelta::minutes(i as i64 * step),
            now + TimeDelta::minutes(i as i64 * step + 90),
            members[(i * 7) % 10].clone(),
        ),
    }));
    let state = DestinationState {
        high_water: Some(hour(exported)),
        ledger,
        last_run: None,
        mode: Default::default(),
        home: None,
        written_over: Vec::new(),
    };
    Input {
        desired: Desired::new(now, desired_spans, hour(spans)).expect("valid spans"),
        vendor,
        state,
        now,
    }
}

fn run(input: &Input, caps: Capabilities) -> usize {
    let destination = DestinationId("bench".into());
    plan_export(PlanInput {
        role: RoleIndex::PRIMARY,
        mode: DestinationMode::Protect,
        destination: &destination,
        now: input.now,
        desired: &input.desired,
        vendor: &input.vendor,
        state: &input.state,
        capabilities: caps,
    })
    .operations
    .len()
}

const PAGERDUTY: Capabilities = Capabilities::PAGERDUTY;
const OPSGENIE: Capabilities = Capabilities::OPSGENIE;

fn bench(c: &mut Criterion) {
    // A year of hourly shifts against 10,000 existing overrides (4,380 ours, 5,620 foreign).
    let year = input(8_760, 10_000);
    let mut group = c.benchmark_group("plan_year_hourly_vs_10k_overrides");
    group.bench_function("pagerduty_caps", |b| {
        b.iter(|| run(black_box(&year), PAGERDUTY))
    });
    group.bench_function("opsgenie_caps", |b| {
        b.iter(|| run(black_box(&year), OPSGENIE))
    });
    group.finish();

    let mut group = c.benchmark_group("plan_scaling");
    group.sample_size(20);
    for n in [1_000, 10_000, 100_000] {
        let data = input(n, 2 * n);
        group.throughput(Throughput::Elements(n as u64));
        group.bench_with_input(BenchmarkId::from_parameter(n), &data, |b, d| {
            b.iter(|| run(black_box(d), PAGERDUTY))
        });
    }
    group.finish();
}

/// `n` hourly desired spans, all exported (ledger, mark at the end), and a person deleted every
/// other one of ours in the vendor: `n / 2` drift records, restored in authoritative mode.
fn deleted_every_other(n: usize) -> Input {
    let now = Utc.with_ymd_and_hms(2024, 1, 1, 0, 30, 0).unwrap();
    let members: Vec<Email> = (0..10)
        .map(|i| Email::parse(&format!("m{i}@example.com")).expect("email"))
        .collect();
    let hour =
        |i: usize| Utc.with_ymd_and_hms(2024, 1, 1, 1, 0, 0).unwrap() + TimeDelta::hours(i as i64);
    let spans: Vec<Span> = (0..n)
        .map(|i| Span::new(hour(i), hour(i + 1), members[i % 10].clone()))
        .collect();
    let ledger: Vec<Override> = spans
        .iter()
        .enumerate()
        .map(|(i, s)| Override {
            id: OverrideId::new(format!("ours-{i}")),
            span: s.clone(),
        })
        .collect();
    let vendor = ledger.iter().step_by(2).cloned().collect();
    Input {
        desired: Desired::new(now, spans, hour(n)).expect("valid spans"),
        vendor,
        state: DestinationState {
            high_water: Some(hour(n)),
            ledger,
            last_run: None,
            mode: Default::default(),
            home: None,
            written_over: Vec::new(),
        },
        now,
    }
}

/// The number of drift records of a plan in `mode`.
fn drift(input: &Input, mode: DestinationMode) -> usize {
    let destination = DestinationId("bench".into());
    plan_export(PlanInput {
        role: RoleIndex::PRIMARY,
        mode,
        destination: &destination,
        now: input.now,
        desired: &input.desired,
        vendor: &input.vendor,
        state: &input.state,
        capabilities: PAGERDUTY,
    })
    .drift
    .len()
}

fn bench_drift(c: &mut Criterion) {
    let mut group = c.benchmark_group("plan_drift_deleted_every_other");
    group.sample_size(10);
    for n in [2_000, 8_000, 32_000] {
        let data = deleted_every_other(n);
        group.throughput(Throughput::Elements(n as u64));
        for mode in [DestinationMode::Protect, DestinationMode::Authoritative] {
            group.bench_with_input(BenchmarkId::new(mode.name(), n), &data, |b, d| {
                b.iter(|| drift(black_box(d), mode))
            });
        }
    }
    group.finish();
}

criterion_group!(benches, bench, bench_drift);
criterion_main!(benches);
