//! `examples/worker.rs` end to end: the binary, the CLI's config file pointing at both simulators,
//! a real PostgreSQL (`DATABASE_URL`). `--once` exports every destination and exits 0; a second
//! `--once` writes nothing (R6); no key and no database password in any output.
//!
//! The binary is `target/<profile>/examples/worker`, which `cargo test --features postgres` builds
//! with the other examples (a filtered run does not: `cargo build --features postgres --example
//! worker` first, as `.ci/run` does).
#![cfg(feature = "postgres")]
#![allow(clippy::unwrap_used)] // tests: a panic is the failure report

mod common;
mod postgres_support;

use std::path::Path;
use std::process::Output;
use std::time::Duration;

use chrono::{DateTime, DurationRound, TimeDelta, Utc};
use oncall_sync::opsgenie::testkit::{OpsgenieSimulator, READ_WRITE_KEY};
use oncall_sync::pagerduty::testkit::PagerDutySimulator;
use oncall_sync::postgres::PostgresStateStore;
use oncall_sync::testkit::VendorSimulator;
use oncall_sync::{DestinationId, Email, Member, VendorSchedule, VendorScheduleId};
use postgres_support::{database_url, unique_schema};
use serde_json::json;

/// The example syncs at the system clock (it is a real worker): the simulators follow it.
fn system_now() -> DateTime<Utc> {
    #[allow(clippy::disallowed_methods)]
    let now = Utc::now();
    now.duration_trunc(TimeDelta::seconds(1)).unwrap()
}

fn vendor_schedule(id: &str, people: &[Email]) -> VendorSchedule {
    VendorSchedule {
        id: VendorScheduleId(id.into()),
        name: id.into(),
        zone: chrono_tz::UTC,
        members: people
            .iter()
            .map(|e| Member::new(e.clone(), e.as_str()))
            .collect(),
        rotations: vec![],
    }
}

async fn run_once(config: &Path, url: &str, schema: &str, extra: &[&str]) -> Output {
    run_example(
        "worker",
        config,
        url,
        schema,
        &[&["--once"], extra].concat(),
    )
    .await
}

async fn run_example(
    example: &str,
    config: &Path,
    url: &str,
    schema: &str,
    extra: &[&str],
) -> Output {
    let mut child = std::process::Command::new(common::example_binary(example))
        .args(["--config", config.to_str().unwrap(), "--schema", schema])
        .args(extra)
        .env("DATABASE_URL", url)
        .env("WORKER_TEST_OG_KEY", READ_WRITE_KEY)
        .env("WORKER_TEST_PD_KEY", PagerDutySimulator::READ_WRITE_KEY)
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    // The simulators run on this test's runtime: wait without blocking it.
    for _ in 0..600 {
        if child.try_wait().unwrap().is_some() {
            return child.wait_with_output().unwrap();
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let _ = child.kill();
    panic!(
        "{example} did not finish within a minute: {:?}",
        child.wait_with_output()
    );
}

/// Both simulators with a schedule each, and a config file exporting five days to them.
struct Setup {
    og: OpsgenieSimulator,
    pd: PagerDutySimulator,
    dir: std::path::PathBuf,
    file: std::path::PathBuf,
}

async fn setup(test: &str) -> Setup {
    let now = system_now();
    let (og, pd) = (
        OpsgenieSimulator::start_at(now).await,
        PagerDutySimulator::start_at(now).await,
    );
    let people: Vec<Email> = ["ann", "bob"]
        .iter()
        .map(|n| Email::parse(&format!("{n}@example.com")).unwrap())
        .collect();
    og.add_schedule(vendor_schedule("og-sched", &people));
    pd.add_schedule(vendor_schedule("PDSCHED", &people));
    let day = |d: i64| {
        (now + TimeDelta::days(d))
            .duration_trunc(TimeDelta::days(1))
            .unwrap()
    };
    let shifts: Vec<_> = (1..=5)
        .map(|d| {
            json!({"start": day(d).to_rfc3339(), "end": day(d + 1).to_rfc3339(),
                   "assignees": [people[(d % 2) as usize].as_str(), people[((d + 1) % 2) as usize].as_str()]})
        })
        .collect();
    let config = json!({
        "connections": [
            {"id": "og", "provider": "opsgenie", "api_key_env": "WORKER_TEST_OG_KEY", "base_url": og.uri()},
            {"id": "pd", "provider": "pagerduty", "api_key_env": "WORKER_TEST_PD_KEY", "base_url": pd.uri()}],
        "schedule": {"id": "platform", "time_zone": "UTC", "roles": ["primary", "secondary"], "shifts": shifts},
        "destinations": [
            {"id": "og-primary", "connection": "og", "schedule_id": "og-sched", "role": "primary"},
            {"id": "pd-secondary", "connection": "pd", "schedule_id": "PDSCHED", "role": "secondary"}]
    });
    let dir = std::env::temp_dir().join(unique_schema(test));
    std::fs::create_dir_all(&dir).unwrap();
    let file = dir.join("oncall.json");
    std::fs::write(&file, serde_json::to_string_pretty(&config).unwrap()).unwrap();
    Setup { og, pd, dir, file }
}

/// The lease API's example (a cron job): its first run exports what is due, its second finds
/// nothing due (released with the period) and writes nothing.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_sync_job_example_exports_what_is_due_and_then_finds_nothing_due() {
    let Some(url) = database_url("sync_job_example") else {
        return;
    };
    let Setup { og, pd, dir, file } = setup("sync_job_example").await;
    let schema = unique_schema("sync_job_example");
    let first = run_example("sync_job", &file, &url, &schema, &[]).await;
    let stdout = String::from_utf8_lossy(&first.stdout).into_owned();
    assert_eq!(first.status.code(), Some(0), "{first:?}");
    assert!(stdout.contains("og-primary: Ok"), "{stdout}");
    assert!(stdout.contains("2 destination runs"), "{stdout}");
    assert_eq!(og.overrides(&VendorScheduleId("og-sched".into())).len(), 5);
    assert_eq!(pd.overrides(&VendorScheduleId("PDSCHED".into())).len(), 5);
    let writes = og.write_calls() + pd.write_calls();
    let second = run_example("sync_job", &file, &url, &schema, &[]).await;
    let stdout = String::from_utf8_lossy(&second.stdout).into_owned();
    assert_eq!(second.status.code(), Some(0), "{second:?}");
    assert!(stdout.contains("0 destination runs"), "{stdout}");
    assert_eq!(og.write_calls() + pd.write_calls(), writes);
    for output in [&first, &second] {
        for text in [&output.stdout, &output.stderr] {
            let text = String::from_utf8_lossy(text);
            assert!(!text.contains(READ_WRITE_KEY));
        }
    }
    let store = PostgresStateStore::connect(&url)
        .await
        .unwrap()
        .with_schema(&schema)
        .unwrap();
    postgres_support::drop_schema(&store).await;
    let _ = std::fs::remove_dir_all(&dir);
}

/// The sync job claims its own schedule's destinations only: another host schedule's due
/// destination (another config's, on the same schema) is neither claimed (its version would
/// move) nor put off.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_sync_job_example_leaves_other_schedules_alone() {
    let Some(url) = database_url("sync_job_others") else {
        return;
    };
    let Setup {
        og: _og,
        pd: _pd,
        dir,
        file,
    } = setup("sync_job_others").await;
    let schema = unique_schema("sync_job_others");
    let store = PostgresStateStore::connect(&url)
        .await
        .unwrap()
        .with_schema(&schema)
        .unwrap();
    store.migrate().await.unwrap();
    let other = postgres_support::destination(&DestinationId("other-x".into()));
    store
        .enroll(&other, &oncall_sync::ScheduleId("another-config".into()))
        .await
        .unwrap();
    let run = run_example("sync_job", &file, &url, &schema, &[]).await;
    assert_eq!(run.status.code(), Some(0), "{run:?}");
    let client = store.pool().get().await.unwrap();
    let row = client
        .query_one(
            &format!(
                "SELECT version, holder, due_at <= now() FROM {} WHERE destination = 'other-x'",
                store.table()
            ),
            &[],
        )
        .await
        .unwrap();
    let (version, holder, due): (i64, Option<String>, bool) = (row.get(0), row.get(1), row.get(2));
    assert_eq!(
        (version, holder, due),
        (0, None, true),
        "another schedule's destination was claimed or put off"
    );
    drop(client);
    postgres_support::drop_schema(&store).await;
    let _ = std::fs::remove_dir_all(&dir);
}

/// Orchestrators stop a worker with SIGTERM: the example shuts down gracefully (exit 0, what it
/// held released), as on ctrl-c.
#[cfg(unix)]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_worker_example_shuts_down_gracefully_on_sigterm() {
    let Some(url) = database_url("worker_example_sigterm") else {
        return;
    };
    let Setup {
        og: _og,
        pd: _pd,
        dir,
        file,
    } = setup("worker_example_sigterm").await;
    let schema = unique_schema("worker_example_sigterm");
    let mut child = std::process::Command::new(common::example_binary("worker"))
        .args(["--config", file.to_str().unwrap(), "--schema", &schema])
        .env("DATABASE_URL", &url)
        .env("WORKER_TEST_OG_KEY", READ_WRITE_KEY)
        .env("WORKER_TEST_PD_KEY", PagerDutySimulator::READ_WRITE_KEY)
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    // Running: it has exported both destinations (their state is saved).
    let store = PostgresStateStore::connect(&url)
        .await
        .unwrap()
        .with_schema(&schema)
        .unwrap();
    for _ in 0..300 {
        let ran = store.schema_exists().await.unwrap_or(false) && {
            let mut all = true;
            for d in ["og-primary", "pd-secondary"] {
                let loaded = oncall_sync::StateStore::load(&store, &DestinationId(d.into())).await;
                all &= loaded.is_ok_and(|s| s.value.last_run.is_some());
            }
            all
        };
        if ran {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let terminated = std::process::Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(terminated.success());
    let mut status = None;
    for _ in 0..300 {
        status = child.try_wait().unwrap();
        if status.is_some() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    if status.is_none() {
        let _ = child.kill();
    }
    let output = child.wait_with_output().unwrap();
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(0), "{output:?}");
    assert!(stderr.contains("SIGTERM: shutting down"), "{stderr}");
    postgres_support::drop_schema(&store).await;
    let _ = std::fs::remove_dir_all(&dir);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_worker_example_exports_the_config_once_and_then_writes_nothing() {
    let Some(url) = database_url("worker_example") else {
        return;
    };
    let Setup { og, pd, dir, file } = setup("worker_example").await;
    let schema = unique_schema("worker_example");

    let first = run_once(&file, &url, &schema, &[]).await;
    let (stdout, stderr) = (
        String::from_utf8_lossy(&first.stdout).into_owned(),
        String::from_utf8_lossy(&first.stderr).into_owned(),
    );
    assert_eq!(
        first.status.code(),
        Some(0),
        "stdout:\n{stdout}\nstderr:\n{stderr}"
    );
    assert!(stdout.contains("og-primary: ok mark"), "{stdout}");
    assert!(stdout.contains("pd-secondary: ok mark"), "{stdout}");
    assert!(
        stderr.contains("destination_run"),
        "the runs are traced: {stderr}"
    );
    assert_eq!(og.overrides(&VendorScheduleId("og-sched".into())).len(), 5);
    assert_eq!(pd.overrides(&VendorScheduleId("PDSCHED".into())).len(), 5);

    let writes = og.write_calls() + pd.write_calls();
    let second = run_once(&file, &url, &schema, &[]).await;
    assert_eq!(second.status.code(), Some(0), "{second:?}");
    assert_eq!(
        og.write_calls() + pd.write_calls(),
        writes,
        "a second run writes nothing"
    );

    // Neither key nor the database URL's password (if any) shows anywhere.
    let password = url
        .parse::<oncall_sync::postgres::tokio_postgres::Config>()
        .ok()
        .and_then(|c| {
            c.get_password()
                .map(|p| String::from_utf8_lossy(p).into_owned())
        });
    // Another worker holds og-primary (its lease has ten minutes to run): `--once` would wait
    // for it; with `--timeout-secs` it gives up, says which destination did not run, exits 1.
    let store = PostgresStateStore::connect(&url)
        .await
        .unwrap()
        .with_schema(&schema)
        .unwrap();
    let (held, _) = store
        .claim_now(
            "other-worker",
            &[DestinationId("og-primary".into())],
            Duration::from_secs(600),
        )
        .await
        .unwrap();
    assert_eq!(held.len(), 1);
    // Runs are recorded in whole seconds: the second run must be over a second old to not count
    // as this one's.
    tokio::time::sleep(Duration::from_secs(2)).await;
    let started = std::time::Instant::now();
    let third = run_once(&file, &url, &schema, &["--timeout-secs", "2"]).await;
    let stdout = String::from_utf8_lossy(&third.stdout).into_owned();
    assert_eq!(third.status.code(), Some(1), "{third:?}");
    assert!(
        started.elapsed() < Duration::from_secs(20),
        "it gave up in time: {:?}",
        started.elapsed()
    );
    assert!(
        stdout.contains("og-primary: did not run"),
        "names what did not run: {stdout}"
    );
    assert!(stdout.contains("pd-secondary: ok mark"), "{stdout}");
    assert!(store.give_back("other-worker", &held[0]).await.unwrap());
    postgres_support::drop_schema(&store).await;

    for output in [&first, &second, &third] {
        for text in [&output.stdout, &output.stderr] {
            let text = String::from_utf8_lossy(text);
            assert!(
                !text.contains(READ_WRITE_KEY)
                    && !text.contains(PagerDutySimulator::READ_WRITE_KEY)
            );
            if let Some(p) = &password {
                assert!(!text.contains(p.as_str()), "the database password leaked");
            }
        }
    }
    let _ = std::fs::remove_dir_all(&dir);
}
