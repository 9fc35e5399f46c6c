//! The `oncall` CLI with `--state postgres://…` (feature `postgres`), against both simulators and a
//! real PostgreSQL (`DATABASE_URL`): sync exports and keeps the state in the database, a second sync
//! writes nothing, status reads it back, and a read-only key is remembered in the database's
//! connection registry; `sync` and `retire` claim their destinations as workers do and leave one a
//! worker holds alone.
//!
//! The binary is `target/<profile>/examples/oncall` built with the feature: `cargo test --features
//! postgres` builds it (a filtered run does not: `cargo build --features postgres --example oncall`
//! first, as `.ci/run` does).
#![cfg(feature = "postgres")]
#![allow(clippy::unwrap_used)] // tests: a panic is the failure report

mod common;
mod postgres_support;

use std::process::Output;
use std::time::Duration;

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

/// Runs the CLI with `og_key` for Opsgenie and, when `pd_key`, PagerDuty's read-write key.
async fn oncall(args: &[&str], og_key: &str, pd_key: bool) -> Output {
    let mut command = std::process::Command::new(common::example_binary("oncall"));
    command
        .args(args)
        .env("PGCLI_TEST_OG_KEY", og_key)
        .env_remove("PGCLI_TEST_PD_KEY");
    if pd_key {
        command.env("PGCLI_TEST_PD_KEY", PagerDutySimulator::READ_WRITE_KEY);
    }
    let mut child = command
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
    let setup = Setup::new(&url, "postgres_cli").await;
    let (og, pd) = (&setup.og, &setup.pd);

    let first = setup.run("sync", &[]).await;
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
        .with_schema(&setup.schema)
        .unwrap();
    let og_state = store
        .load(&DestinationId("og-primary".into()))
        .await
        .unwrap();
    assert_eq!(og_state.value.ledger.len(), 3);

    let writes = og.write_calls() + pd.write_calls();
    let second = setup.run("sync", &[]).await;
    assert_eq!(second.status.code(), Some(0));
    assert_eq!(
        og.write_calls() + pd.write_calls(),
        writes,
        "nothing changed: no write"
    );

    let status_output = setup.run("status", &[]).await;
    let status = json_of(&status_output);
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
        &setup.file,
        setup.config.to_string().replace(
            &shift_bound(2),
            &(chrono::DateTime::parse_from_rfc3339(&shift_bound(2)).unwrap() + TimeDelta::hours(1))
                .to_rfc3339(),
        ),
    )
    .unwrap();
    let refused = setup.run("sync", &[]).await;
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
    assert_no_key(&[&first, &second, &status_output, &refused]);
    setup.finish(&store).await;
}

/// The leak check: no key in any output.
fn assert_no_key(outputs: &[&Output]) {
    for output in outputs {
        for text in [&output.stdout, &output.stderr] {
            let text = String::from_utf8_lossy(text);
            assert!(
                !text.contains(READ_WRITE_KEY)
                    && !text.contains(PagerDutySimulator::READ_WRITE_KEY),
                "a key in the output: {text}"
            );
        }
    }
}

/// The boundary of the daily shifts `d` days after the start (03:00 UTC).
fn shift_bound(d: i64) -> String {
    (now() + TimeDelta::days(d) + TimeDelta::hours(3)).to_rfc3339()
}

/// The fixtures of a CLI run over PostgreSQL: both simulators with one schedule each, a config
/// exporting primary to Opsgenie and secondary to PagerDuty (three daily shifts), and a schema of
/// the test's own.
struct Setup {
    og: OpsgenieSimulator,
    pd: PagerDutySimulator,
    url: String,
    schema: String,
    dir: std::path::PathBuf,
    file: std::path::PathBuf,
    config: Value,
}

impl Setup {
    async fn new(url: &str, test: &str) -> Setup {
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
        let shifts: Vec<Value> = (0..3)
            .map(|d| json!({"start": shift_bound(d), "end": shift_bound(d + 1), "assignees": ["ann@example.com", "ann@example.com"]}))
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
        let schema = unique_schema(test);
        let dir = std::env::temp_dir().join(&schema);
        std::fs::create_dir_all(&dir).unwrap();
        let file = dir.join("oncall.json");
        std::fs::write(&file, config.to_string()).unwrap();
        Setup {
            og,
            pd,
            url: url.to_owned(),
            schema,
            dir,
            file,
            config,
        }
    }

    /// `--state`: the database, in the test's schema.
    fn state(&self) -> String {
        let sep = if self.url.contains('?') { '&' } else { '?' };
        format!("{}{sep}oncall_schema={}", self.url, self.schema)
    }

    /// Runs `oncall COMMAND --config … --state … --now … --json EXTRA…`.
    async fn run(&self, command: &str, extra: &[&str]) -> Output {
        self.run_keys(command, extra, true).await
    }

    /// As `run`, with or without PagerDuty's key variable.
    async fn run_keys(&self, command: &str, extra: &[&str], pd_key: bool) -> Output {
        let (state, now) = (self.state(), now().to_rfc3339());
        let mut args = vec![
            command,
            "--config",
            self.file.to_str().unwrap(),
            "--state",
            &state,
            "--now",
            &now,
            "--json",
        ];
        args.extend_from_slice(extra);
        oncall(&args, READ_WRITE_KEY, pd_key).await
    }

    /// A store in the test's schema (its own pool), migrated.
    async fn store(&self) -> PostgresStateStore {
        postgres_support::store_in(&self.url, &self.schema).await
    }

    async fn finish(self, store: &PostgresStateStore) {
        drop_schema(store).await;
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// The lease columns of a destination's row: (holder, seconds until due, failures).
async fn lease_of(
    store: &PostgresStateStore,
    destination: &str,
) -> (Option<String>, Option<f64>, i32) {
    let client = store.pool().get().await.unwrap();
    let row = client
        .query_one(
            &format!(
                "SELECT holder, extract(epoch FROM due_at - now())::float8, failures \
                 FROM {} WHERE destination = $1",
                store.table()
            ),
            &[&destination],
        )
        .await
        .unwrap();
    (row.get(0), row.get(1), row.get(2))
}

/// `sync` and `retire` over PostgreSQL claim their destinations as a worker would: one a worker
/// holds is reported as an error (exit 1) and nothing is sent to its vendor schedule, the others
/// are synced, and the command's claims are given back with the destinations due as they were.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sync_and_retire_leave_a_destination_a_worker_holds_alone() {
    let Some(url) = database_url("postgres_cli_leases") else {
        return;
    };
    let setup = Setup::new(&url, "postgres_cli_leases").await;
    let store = setup.store().await;
    let (og_dest, pd_dest) = (
        DestinationId("og-primary".into()),
        DestinationId("pd-secondary".into()),
    );
    // A worker holds og-primary (claimed, its lease live); pd-secondary is enrolled, due now.
    for d in [&og_dest, &pd_dest] {
        store
            .enroll(
                &postgres_support::destination(d),
                &oncall_sync::ScheduleId("platform".into()),
            )
            .await
            .unwrap();
    }
    let worker_claims = store
        .claim_due("worker-7", 1, Duration::from_secs(600))
        .await
        .unwrap();
    let worker_claim = worker_claims
        .iter()
        .find(|c| c.destination == og_dest)
        .unwrap()
        .clone();
    for c in worker_claims.iter().filter(|c| c.destination != og_dest) {
        assert!(store
            .release("worker-7", c, Duration::ZERO, 1)
            .await
            .unwrap());
    }

    let synced = setup.run("sync", &[]).await;
    assert_eq!(
        synced.status.code(),
        Some(1),
        "a destination was not synced: exit 1\n{}",
        String::from_utf8_lossy(&synced.stderr)
    );
    let report = json_of(&synced);
    let og = &report["destinations"][0];
    assert_eq!(
        (og["id"].as_str(), og["status"].as_str()),
        (Some("og-primary"), Some("failed")),
        "{report}"
    );
    assert_eq!(og["errors"][0]["kind"], "conflict", "{report}");
    assert!(
        og["errors"][0]["message"]
            .as_str()
            .unwrap()
            .contains("worker-7"),
        "names the holder: {report}"
    );
    assert_eq!(report["destinations"][1]["status"], "ok", "{report}");
    // Nothing was sent to the held destination's vendor schedule; the other was exported.
    assert!(
        setup.og.requests().iter().all(|r| r.method == "GET"),
        "no write for og-primary: {:?}",
        setup.og.requests()
    );
    assert_eq!(
        setup
            .pd
            .overrides(&VendorScheduleId("PDSCHED".into()))
            .len(),
        3
    );
    // The worker's lease stands; the command's claim was given back, due as it was.
    assert_eq!(
        store
            .renew(
                "worker-7",
                std::slice::from_ref(&worker_claim),
                Duration::from_secs(600)
            )
            .await
            .unwrap(),
        vec![og_dest.clone()]
    );
    let (holder, due, failures) = lease_of(&store, "pd-secondary").await;
    assert_eq!((holder, failures), (None, 1), "given back as it was");
    assert!(due.unwrap() <= 0.0, "still due now: {due:?}");

    let retired = setup.run("retire", &["--destination", "og-primary"]).await;
    assert_eq!(
        retired.status.code(),
        Some(1),
        "{}",
        String::from_utf8_lossy(&retired.stdout)
    );
    assert!(setup.og.requests().iter().all(|r| r.method == "GET"));
    assert_eq!(
        lease_of(&store, "og-primary").await.0.as_deref(),
        Some("worker-7")
    );

    // Once the worker lets go, the command line syncs it.
    assert!(store
        .release("worker-7", &worker_claim, Duration::from_secs(3600), 0)
        .await
        .unwrap());
    let again = setup.run("sync", &[]).await;
    assert_eq!(
        again.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&again.stdout)
    );
    assert_eq!(
        setup
            .og
            .overrides(&VendorScheduleId("og-sched".into()))
            .len(),
        3
    );
    let (holder, due, _) = lease_of(&store, "og-primary").await;
    assert!(
        holder.is_none() && due.unwrap() > 3000.0,
        "due in an hour, as the worker left it"
    );
    assert_no_key(&[&synced, &retired, &again]);
    setup.finish(&store).await;
}

/// Whether the database has the schema.
async fn schema_exists(url: &str, schema: &str) -> bool {
    let store = PostgresStateStore::connect(url).await.unwrap();
    let client = store.pool().get().await.unwrap();
    client
        .query_one(
            "SELECT count(*) FROM pg_namespace WHERE nspname = $1",
            &[&schema],
        )
        .await
        .unwrap()
        .get::<_, i64>(0)
        == 1
}

/// Bad usage or config is found before the database is touched: a missing key variable is exit 2
/// with the schema never created. `plan` and `status` only read: on a database no sync has written
/// to, nothing is stored yet, as with a state file that does not exist: `plan` plans the first
/// export (reading the vendors, writing nothing) and `status` shows nothing exported, and neither
/// creates the schema.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_config_and_read_only_commands_create_no_schema() {
    let Some(url) = database_url("postgres_cli_no_schema") else {
        return;
    };
    let setup = Setup::new(&url, "postgres_cli_no_schema").await;
    let mut outputs = Vec::new();
    for (command, extra) in [
        ("sync", &[][..]),
        ("plan", &[][..]),
        ("retire", &["--destination", "pd-secondary"][..]),
    ] {
        let output = setup.run_keys(command, extra, false).await;
        let stderr = String::from_utf8_lossy(&output.stderr).into_owned();
        assert_eq!(output.status.code(), Some(2), "{command}: {stderr}");
        assert!(stderr.contains("PGCLI_TEST_PD_KEY"), "{command}: {stderr}");
        assert!(
            !schema_exists(&url, &setup.schema).await,
            "{command} created the schema before finding the config bad"
        );
        outputs.push(output);
    }
    assert!(setup.og.requests().is_empty() && setup.pd.requests().is_empty());
    let plan = setup.run("plan", &[]).await;
    let stderr = String::from_utf8_lossy(&plan.stderr).into_owned();
    assert_eq!(plan.status.code(), Some(0), "plan: {stderr}");
    let planned: Value = serde_json::from_slice(&plan.stdout).unwrap();
    assert!(
        planned["destinations"]
            .as_array()
            .unwrap()
            .iter()
            .all(|d| d["high_water"].is_null() && !d["operations"].as_array().unwrap().is_empty()),
        "a first export is planned: {planned}"
    );
    let status = setup.run("status", &[]).await;
    let shown: Value = serde_json::from_slice(&status.stdout).unwrap();
    assert!(
        shown["destinations"]
            .as_array()
            .unwrap()
            .iter()
            .all(|d| d["high_water"].is_null()),
        "nothing exported yet: {shown}"
    );
    assert!(
        !schema_exists(&url, &setup.schema).await,
        "plan or status created the schema"
    );
    let writes = setup
        .og
        .requests()
        .iter()
        .filter(|r| r.method != "GET")
        .count()
        + setup
            .pd
            .requests()
            .iter()
            .filter(|r| r.method != "GET")
            .count();
    assert_eq!(writes, 0, "plan and status write nothing");
    outputs.extend([plan, status]);
    assert_no_key(&outputs.iter().collect::<Vec<_>>());
    let _ = std::fs::remove_dir_all(&setup.dir);
}

/// A manual destination over PostgreSQL: `sync` only plans, `plan --out` saves the plan, and
/// `apply --plan` applies it although the apply's own claim raises the state's version (the lease's
/// fencing token): the plan names the state by what it holds. Applied, the state moved on, and the
/// same plan is refused (exit 1, nothing written).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_manual_plan_applies_under_the_commands_own_claim() {
    let Some(url) = database_url("postgres_cli") else {
        return;
    };
    let mut setup = Setup::new(&url, "manual_apply").await;
    setup.config["destinations"][0]["mode"] = json!("manual");
    std::fs::write(&setup.file, setup.config.to_string()).unwrap();
    let first = setup.run("sync", &[]).await;
    assert_eq!(
        first.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&first.stderr)
    );
    let plan = setup.dir.join("plan.json");
    let plan_arg = plan.to_str().unwrap().to_owned();
    let planned = setup.run("plan", &["--out", &plan_arg]).await;
    assert_eq!(
        planned.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&planned.stderr)
    );
    let applied = setup.run("apply", &["--plan", &plan_arg]).await;
    let out = json_of(&applied);
    assert_eq!(applied.status.code(), Some(0), "{out}");
    let again = setup.run("apply", &["--plan", &plan_arg]).await;
    let out = json_of(&again);
    assert_eq!(again.status.code(), Some(1), "{out}");
    assert!(out.to_string().contains("state_changed"), "{out}");
    let _ = std::fs::remove_dir_all(&setup.dir);
}
