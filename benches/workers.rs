//! Two benchmarks over one PostgreSQL (`DATABASE_URL`):
//!
//! - `claims`: the latency of one claim (`claim_due`, 4 destinations and their siblings) among
//!   10^4 and 10^5 enrolled destinations, 1% of them due (the rest due within the hour, as an
//!   hourly period spreads them), each claimed destination released due again at once (outside
//!   the measured time) so that the queue stays as it was. Criterion's estimate is of the mean;
//!   p50 and p99 over 2000 claims are printed beside it.
//! - `workers`: destinations synced per second by 1, 2, 4 and 8 workers, at 20 ms per vendor
//!   request.
//!
//! 40 host schedules export primary to Opsgenie and secondary to PagerDuty (80 destinations, each
//! in its own vendor schedule). Each iteration moves the clock a day on and makes every
//! destination due: a run reads the vendor, creates the one shift that entered the week's horizon
//! (Opsgenie: a POST; PagerDuty: a batch POST) and saves its state, the steady work of an hourly
//! refresh. The time is from "all due" until every destination has synced and been released.
//! Each worker has its own pool, syncs up to 4 host schedules at once (the default), and talks to
//! the simulators through a loopback forwarder of its own (as in the chaos test). The providers
//! have no rate limit of their own here: the vendors' limits are what stops scaling in a real
//! deployment (see the note in the commit that added this file).
//!
//! `cargo bench --bench workers --features postgres` (with `DATABASE_URL` set; `bash .ci/run`'s
//! cluster or any database you may create schemas in).
#![allow(clippy::unwrap_used)] // a bench: a panic is the failure report
#![allow(missing_docs)] // criterion's macros generate undocumented items

#[path = "../tests/postgres_support/mod.rs"]
mod postgres_support;
#[path = "../tests/worker_support/mod.rs"]
mod worker_support;

use std::time::{Duration, Instant};

use chrono::TimeDelta;
use criterion::{criterion_group, criterion_main, Criterion, SamplingMode, Throughput};
use oncall_sync::postgres::PostgresStateStore;
use oncall_sync::worker::WorkerOptions;
use worker_support::{day, Fleet, WorkerHandle};

const SCHEDULES: usize = 40;
const LATENCY: Duration = Duration::from_millis(20);

fn options() -> WorkerOptions {
    WorkerOptions {
        idle_poll: Duration::from_millis(10),
        lease: Duration::from_secs(30),
        ..WorkerOptions::default()
    }
}

/// Why it exists: a host sizing its worker fleet needs to know what one more worker buys.
fn workers(c: &mut Criterion) {
    let Ok(url) = std::env::var("DATABASE_URL") else {
        eprintln!(
            "SKIPPED workers bench: set DATABASE_URL=postgres://… (bash .ci/run starts a cluster)"
        );
        return;
    };
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .unwrap();
    let schema = postgres_support::unique_schema("bench_workers");
    let fleet = runtime.block_on(Fleet::new(&url, &schema, SCHEDULES));
    fleet.og.set_latency(LATENCY);
    fleet.pd.set_latency(LATENCY);
    let total = (SCHEDULES * 2) as i64;
    let mut clock = day(0) - TimeDelta::hours(1);
    // The first export (a week of shifts each) is not what is measured.
    runtime.block_on(async {
        let w = fleet.start_worker("bench-warm", options()).await;
        fleet.set_now(clock);
        fleet.all_due().await;
        wait_synced(&fleet, clock, total).await;
        stop(w).await;
    });

    let mut group = c.benchmark_group("workers");
    group
        .sample_size(10)
        .sampling_mode(SamplingMode::Flat)
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(8))
        .throughput(Throughput::Elements(total as u64));
    for n in [1usize, 2, 4, 8] {
        let handles: Vec<WorkerHandle> = runtime.block_on(async {
            let mut handles = Vec::new();
            for i in 0..n {
                handles.push(
                    fleet
                        .start_worker(&format!("bench-{n}-{i}"), options())
                        .await,
                );
            }
            handles
        });
        group.bench_function(format!("{n}_workers/{total}_destinations/20ms"), |b| {
            b.iter_custom(|iters| {
                let mut spent = Duration::ZERO;
                for _ in 0..iters {
                    clock += TimeDelta::days(1);
                    spent += runtime.block_on(async {
                        fleet.set_now(clock);
                        let started = Instant::now();
                        fleet.all_due().await;
                        wait_synced(&fleet, clock, total).await;
                        started.elapsed()
                    });
                }
                spent
            })
        });
        runtime.block_on(async {
            for h in handles {
                stop(h).await;
            }
        });
    }
    group.finish();
    runtime.block_on(postgres_support::drop_schema(&fleet.store));
}

/// Why it exists: a claim runs every time a worker looks for work; it must stay cheap as the
/// number of destinations grows (the claim's indexes: free due rows, expired leases, siblings).
fn claims(c: &mut Criterion) {
    let Ok(url) = std::env::var("DATABASE_URL") else {
        eprintln!(
            "SKIPPED claims bench: set DATABASE_URL=postgres://… (bash .ci/run starts a cluster)"
        );
        return;
    };
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .unwrap();
    let mut group = c.benchmark_group("claims");
    group
        .sample_size(50)
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(5));
    for enrolled in [10_000usize, 100_000] {
        let store = runtime.block_on(populated(&url, enrolled));
        let claim = || async {
            let started = Instant::now();
            let claims = store
                .claim_due("bench", 4, Duration::from_secs(60))
                .await
                .unwrap();
            let spent = started.elapsed();
            assert!(!claims.is_empty(), "nothing due");
            for claim in &claims {
                store
                    .release("bench", claim, Duration::ZERO, 0)
                    .await
                    .unwrap();
            }
            spent
        };
        let mut samples: Vec<Duration> =
            runtime.block_on(async { futures_join(2000, &claim).await });
        samples.sort();
        eprintln!(
            "claims/{enrolled}: p50 {:.2} ms, p99 {:.2} ms over {} claims",
            samples[samples.len() / 2].as_secs_f64() * 1e3,
            samples[samples.len() * 99 / 100].as_secs_f64() * 1e3,
            samples.len()
        );
        group.bench_function(format!("claim_due/{enrolled}_enrolled"), |b| {
            b.iter_custom(|iters| {
                runtime.block_on(async {
                    let mut spent = Duration::ZERO;
                    for _ in 0..iters {
                        spent += claim().await;
                    }
                    spent
                })
            })
        });
        runtime.block_on(postgres_support::drop_schema(&store));
    }
    group.finish();
}

/// `n` claims one after the other; their times.
async fn futures_join<F: std::future::Future<Output = Duration>>(
    n: usize,
    claim: &impl Fn() -> F,
) -> Vec<Duration> {
    let mut samples = Vec::with_capacity(n);
    for _ in 0..n {
        samples.push(claim().await);
    }
    samples
}

/// A schema with `n` enrolled destinations, two per host schedule, 1% due now and the rest due
/// within the hour.
async fn populated(url: &str, n: usize) -> PostgresStateStore {
    let schema = postgres_support::unique_schema(&format!("bench_claims_{n}"));
    let store = postgres_support::store_in(url, &schema).await;
    postgres_support::execute(
        &store,
        &format!(
            "INSERT INTO {table} (destination, schedule, target, due_at) \
             SELECT 'd' || i, 's' || (i / 2), \
                    jsonb_build_object('id', 'd' || i, 'connection', 'og', 'schedule', 'v' || i, 'role', 0), \
                    CASE WHEN i % 100 = 0 THEN now() - interval '1 minute' \
                         ELSE now() + (i % 3600) * interval '1 second' END \
             FROM generate_series(1, {n}) AS i; \
             ANALYZE {table};",
            table = store.table()
        ),
    )
    .await;
    store
}

async fn wait_synced(fleet: &Fleet, now: chrono::DateTime<chrono::Utc>, total: i64) {
    let deadline = Instant::now() + Duration::from_secs(120);
    while fleet.synced_at(now).await < total {
        assert!(Instant::now() < deadline, "the workers did not finish");
        tokio::time::sleep(Duration::from_millis(2)).await;
    }
}

async fn stop(w: WorkerHandle) {
    let _ = w.stop.send(());
    w.task.await.unwrap();
}

criterion_group!(benches, claims, workers);
criterion_main!(benches);
