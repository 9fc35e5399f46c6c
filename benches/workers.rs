//! Destinations synced per second by 1, 2, 4 and 8 workers over one PostgreSQL (`DATABASE_URL`), at
//! 20 ms per vendor request.
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

criterion_group!(benches, workers);
criterion_main!(benches);
