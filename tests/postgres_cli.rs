//! The `oncall` CLI with `--state postgres://…` (feature `postgres`), against both simulators and a
//! real PostgreSQL (`DATABASE_URL`): sync exports and keeps the state in the database, a second sync
//! writes nothing, status reads it back, and a read-only key is remembered in the database's
//! connection registry.
//!
//! The binary is `target/<profile>/examples/oncall` built with the feature: `cargo test --features
//! postgres` builds it (a filtered run does not: `cargo build --features postgres --example oncall`
//! first, as `.ci/run` does).
#![cfg(feature = "postgres")]
#![allow(clippy::unwrap_used)] // tests: a panic is the failure report

mod common;
mod postgres_support;

use std::process::Output;

use chrono::{DateTime, TimeDelta, TimeZone, Utc};
use oncall_sync::opsgenie::testkit::{OpsgenieSimulator, READ_WRITE_KEY};
use oncall_sync::pagerduty::testkit::PagerDutySimulator;
use oncall_sync::postgres::PostgresStateStore;
use oncall_sync::testkit::VendorSimulator;
use oncall_sync::{DestinationId, Email, Member, StateStore, VendorSchedule, VendorScheduleId};
use postgres_support::{database_url, drop_schema, unique_schema};
use serde_json::{json, Value};

fn now() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 12, 1, 6, 0, 0).unwrap()
}

async fn oncall(args: &[&str], og_key: &str) -> Output {
    let mut child = std::process::Command::new(common::example_binary("oncall"))
        .args(args)
        .env("PGCLI_TEST_OG_KEY", og_key)
        .env("PGCLI_TEST_PD_KEY", PagerDutySimulator::READ_WRITE_KEY)
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    // The simulators run on this test's runtime: wait without blocking it.
    for _ in 0..600 {
        if child.try_wait().unwrap().is_some() {
            return child.wait_with_output().unwrap();
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    let _ = child.kill();
    panic!("oncall did not finish: {:?}", child.wait_with_output());
}

fn json_of(output: &Output) -> Value {
    serde_json::from_slice(&output.stdout).unwrap_or_else(|e| {
        panic!(
            "not JSON ({e}): {}\n{}",
            String::from_utf8_lossy(&output.stdout),
            String::from_utf8_lossy(&output.stderr)
        )
    })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sync_and_status_keep_their_state_in_postgres() {
    let Some(url) = database_url("postgres_cli") else {
        return;
    };
    let (og, pd) = (
        OpsgenieSimulator::start_at(now()).await,
        PagerDutySimulator::start_at(now()).await,
    );
    let ann = Email::parse("ann@example.com").unwrap();
    for (sim, id) in [(&og as &dyn VendorSimulator, "og-sched"), (&pd, "PDSCHED")] {
        sim.add_schedule(VendorSchedule {
            id: VendorScheduleId(id.into()),
            name: id.into(),
            zone: chrono_tz::UTC,
            members: vec![Member::new(ann.clone(), "Ann")],
            rotations: vec![],
        });
    }
    let day = |d: i64| (now() + TimeDelta::days(d) + TimeDelta::hours(3)).to_rfc3339();
    let shifts: Vec<Value> = (0..3)
        .map(|d| json!({"start": day(d), "end": day(d + 1), "assignees": ["ann@example.com", "ann@example.com"]}))
        .collect();
    let config = json!({
        "connections": [
            {"id": "og", "provider": "opsgenie", "api_key_env": "PGCLI_TEST_OG_KEY", "base_url": og.uri()},
            {"id": "pd", "provider": "pagerduty", "api_key_env": "PGCLI_TEST_PD_KEY", "base_url": pd.uri()}],
        "schedule": {"id": "platform", "time_zone": "UTC", "roles": ["primary", "secondary"], "shifts": shifts},
        "destinations": [
            {"id": "og-primary", "connection": "og", "schedule_id": "og-sched", "role": "primary"},
            {"id": "pd-secondary", "connection": "pd", "schedule_id": "PDSCHED", "role": "secondary"}]
    });
    let schema = unique_schema("postgres_cli");
    let dir = std::env::temp_dir().join(&schema);
    std::fs::create_dir_all(&dir).unwrap();
    let file = dir.join("oncall.json");
    std::fs::write(&file, config.to_string()).unwrap();
    let sep = if url.contains('?') { '&' } else { '?' };
    let state = format!("{url}{sep}oncall_schema={schema}");
    let now = now().to_rfc3339();
    let args = |command: &'static str| -> Vec<String> {
        [
            command,
            "--config",
            file.to_str().unwrap(),
            "--state",
            &state,
            "--now",
            &now,
            "--json",
        ]
        .iter()
        .map(|s| s.to_string())
        .collect()
    };
    let run = |command: &'static str, key: &'static str| {
        let a = args(command);
        async move {
            let a: Vec<&str> = a.iter().map(String::as_str).collect();
            oncall(&a, key).await
        }
    };

    let first = run("sync", READ_WRITE_KEY).await;
    assert_eq!(
        first.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&first.stderr)
    );
    assert_eq!(og.overrides(&VendorScheduleId("og-sched".into())).len(), 3);
    assert_eq!(pd.overrides(&VendorScheduleId("PDSCHED".into())).len(), 3);
    // The state is in the database, in the schema the URL named.
    let store = PostgresStateStore::connect(&url)
        .await
        .unwrap()
        .with_schema(&schema)
        .unwrap();
    let og_state = store
        .load(&DestinationId("og-primary".into()))
        .await
        .unwrap();
    assert_eq!(og_state.value.ledger.len(), 3);

    let writes = og.write_calls() + pd.write_calls();
    let second = run("sync", READ_WRITE_KEY).await;
    assert_eq!(second.status.code(), Some(0));
    assert_eq!(
        og.write_calls() + pd.write_calls(),
        writes,
        "nothing changed: no write"
    );

    let status = json_of(&run("status", READ_WRITE_KEY).await);
    let marks: Vec<&Value> = status["destinations"]
        .as_array()
        .unwrap()
        .iter()
        .map(|d| &d["high_water"])
        .collect();
    assert!(marks.iter().all(|m| m.is_string()), "{status}");

    // A read-only Opsgenie key: the refusal is remembered in the database's registry.
    og.set_read_only(true);
    std::fs::write(
        &file,
        config.to_string().replace(
            &day(2),
            &(chrono::DateTime::parse_from_rfc3339(&day(2)).unwrap() + TimeDelta::hours(1))
                .to_rfc3339(),
        ),
    )
    .unwrap();
    let refused = run("sync", READ_WRITE_KEY).await;
    assert_eq!(
        refused.status.code(),
        Some(1),
        "{}",
        String::from_utf8_lossy(&refused.stdout)
    );
    let registry = store.load_connections().await.unwrap();
    let og_connection = registry
        .list()
        .iter()
        .find(|c| c.id.0 == "og")
        .expect("the registry lists og");
    assert!(og_connection.read_only.is_some(), "{registry:?}");
    for output in [&first, &second, &refused] {
        for text in [&output.stdout, &output.stderr] {
            let text = String::from_utf8_lossy(text);
            assert!(
                !text.contains(READ_WRITE_KEY)
                    && !text.contains(PagerDutySimulator::READ_WRITE_KEY)
            );
        }
    }
    drop_schema(&store).await;
    let _ = std::fs::remove_dir_all(&dir);
}
