//! The `oncall` CLI on Jira Service Management Operations, and `oncall migrate` moving a
//! destination off Opsgenie: the compiled example binary, run as a child process against the
//! Opsgenie and JSM simulators started in this process. Every run is checked for leaks: no key or
//! token in the arguments, the output, the config or the state file.
//!
//! The binary is `target/<profile>/examples/oncall` (`cargo test` builds it; after a filtered
//! build run `cargo build --example oncall` first).
#![allow(clippy::unwrap_used)] // tests: a panic is the failure report

mod common;
use std::path::PathBuf;
use std::process::Command;
use std::sync::atomic::{AtomicUsize, Ordering};

use chrono::{DateTime, NaiveDate, TimeDelta, TimeZone, Utc};
use oncall_sync::config::Config;
use oncall_sync::jsm::testkit::{self as jsm_kit, JsmSimulator, MigrationDialect};
use oncall_sync::opsgenie::testkit::{self as og_kit, OpsgenieSimulator};
use oncall_sync::testkit::VendorSimulator;
use oncall_sync::{
    ConnectionId, Email, Member, Participant, Rotation, RotationUnit, Span, VendorSchedule,
    VendorScheduleId,
};
use serde_json::{json, Value};

const PEOPLE: [&str; 4] = ["ann", "bob", "cat", "dan"];
const SECRETS: [&str; 3] = [
    og_kit::READ_WRITE_KEY,
    jsm_kit::READ_WRITE_TOKEN,
    jsm_kit::READ_ONLY_TOKEN,
];

fn email(name: &str) -> Email {
    Email::parse(&format!("{name}@example.com")).unwrap()
}

/// Day `n` at 09:00 UTC (December 2026).
fn day(n: i64) -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 11, 30, 9, 0, 0).unwrap() + TimeDelta::days(n)
}

fn now() -> DateTime<Utc> {
    day(0) + TimeDelta::hours(4)
}

fn rfc3339(t: DateTime<Utc>) -> String {
    t.to_rfc3339_opts(chrono::SecondsFormat::Secs, true)
}

fn vendor_schedule() -> VendorSchedule {
    let start = NaiveDate::from_ymd_opt(2026, 11, 2)
        .unwrap()
        .and_hms_opt(9, 0, 0)
        .unwrap();
    VendorSchedule {
        id: VendorScheduleId("og-sched".into()),
        name: "Platform".into(),
        zone: chrono_tz::UTC,
        members: PEOPLE.iter().map(|p| Member::new(email(p), *p)).collect(),
        rotations: vec![Rotation::new(
            "Primary",
            RotationUnit::Weekly,
            1,
            start,
            PEOPLE
                .iter()
                .map(|p| Participant::Member(email(p)))
                .collect(),
        )],
    }
}

struct World {
    og: OpsgenieSimulator,
    jsm: JsmSimulator,
    dir: PathBuf,
    /// The JSM token the CLI gets.
    token: &'static str,
}

struct Run {
    code: i32,
    stdout: String,
    stderr: String,
}

impl Run {
    fn json(&self) -> Value {
        serde_json::from_str(&self.stdout)
            .unwrap_or_else(|e| panic!("not JSON ({e}): {}\n{}", self.stdout, self.stderr))
    }
}

impl World {
    async fn new() -> World {
        static NEXT: AtomicUsize = AtomicUsize::new(0);
        let og = OpsgenieSimulator::start_at(now()).await;
        og.add_schedule(vendor_schedule());
        let jsm = JsmSimulator::start_at(now()).await;
        let dir = std::env::temp_dir().join(format!(
            "oncall-cli-jsm-{}-{}",
            std::process::id(),
            NEXT.fetch_add(1, Ordering::Relaxed)
        ));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        World {
            og,
            jsm,
            dir,
            token: jsm_kit::READ_WRITE_TOKEN,
        }
    }

    fn config_path(&self) -> PathBuf {
        self.dir.join("oncall.json")
    }

    fn state_path(&self) -> PathBuf {
        self.dir.join("state.json")
    }

    /// Daily shifts from day 0 to `days`, people taking turns; the destination on `connection`.
    fn config(&self, days: i64, connection: &str, schedule: &str) -> Value {
        let shifts: Vec<Value> = (0..days)
            .map(|d| {
                json!({"start": rfc3339(day(d)), "end": rfc3339(day(d + 1)),
                       "assignees": [format!("{}@example.com", PEOPLE[d as usize % 4])]})
            })
            .collect();
        json!({
            "connections": [
                {"id": "og", "provider": "opsgenie", "api_key_env": "OG_KEY", "base_url": self.og.uri()},
                {"id": "jsm", "provider": "jsm", "site": self.jsm.uri(), "base_url": self.jsm.uri(),
                 "email_env": "JSM_EMAIL", "api_token_env": "JSM_TOKEN"},
            ],
            "schedule": {"id": "platform", "time_zone": "UTC", "roles": ["primary"], "shifts": shifts},
            "destinations": [
                {"id": "platform-primary", "connection": connection, "schedule_id": schedule, "role": "primary"},
            ],
        })
    }

    fn write_config(&self, config: &Value) {
        std::fs::write(
            self.config_path(),
            serde_json::to_string_pretty(config).unwrap(),
        )
        .unwrap();
    }

    fn run(&self, args: &[&str]) -> Run {
        let mut full: Vec<String> = args.iter().map(|a| a.to_string()).collect();
        full.extend(["--config".into(), self.config_path().display().to_string()]);
        if matches!(args[0], "plan" | "sync" | "status" | "retire" | "migrate") {
            full.extend(["--state".into(), self.state_path().display().to_string()]);
        }
        let output = Command::new(common::example_binary("oncall"))
            .args(&full)
            .env_clear()
            .env("OG_KEY", og_kit::READ_WRITE_KEY)
            .env("JSM_EMAIL", jsm_kit::ACCOUNT_EMAIL)
            .env("JSM_TOKEN", self.token)
            .output()
            .unwrap();
        let run = Run {
            code: output.status.code().unwrap_or(-1),
            stdout: String::from_utf8_lossy(&output.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&output.stderr).into_owned(),
        };
        for secret in SECRETS {
            assert!(
                !run.stdout.contains(secret),
                "a secret on stdout: {}",
                run.stdout
            );
            assert!(
                !run.stderr.contains(secret),
                "a secret on stderr: {}",
                run.stderr
            );
        }
        for entry in std::fs::read_dir(&self.dir).unwrap() {
            let content = std::fs::read(entry.unwrap().path()).unwrap_or_default();
            let content = String::from_utf8_lossy(&content);
            assert!(
                SECRETS.iter().all(|s| !content.contains(s)),
                "a secret in a file"
            );
        }
        run
    }
}

impl Drop for World {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

#[test]
fn a_jsm_connection_is_read_from_the_config() {
    let text = r#"{"connections": [{"id": "jsm", "provider": "jsm", "site": "acme.atlassian.net",
        "email_env": "JSM_EMAIL", "api_token_env": "JSM_TOKEN"}],
      "schedule": {"id": "p", "time_zone": "UTC", "roles": ["primary"],
        "shifts": [{"start": "2026-12-01T09:00:00Z", "end": "2026-12-02T09:00:00Z", "assignees": ["ann@example.com"]}]},
      "destinations": [{"id": "d", "connection": "jsm", "schedule_id": "s", "role": "primary"}]}"#;
    let config = Config::from_json(text).unwrap();
    let env = |name: &str| match name {
        "JSM_EMAIL" => Some("ops@example.com".to_owned()),
        "JSM_TOKEN" => Some("tok-never-shown".to_owned()),
        _ => None,
    };
    let provider = config.provider(&ConnectionId("jsm".into()), &env).unwrap();
    assert_eq!(provider.name(), "jsm");
    assert_eq!(
        provider.account().as_deref(),
        Some("jsm https://api.atlassian.com/")
    );
    assert!(config.prober(&ConnectionId("jsm".into()), &env).is_ok());
    let no_email = |name: &str| (name == "JSM_TOKEN").then(|| "t".to_owned());
    let e = config
        .provider(&ConnectionId("jsm".into()), &no_email)
        .err()
        .unwrap();
    assert!(
        e.to_string().contains("connections[0].email_env") && e.to_string().contains("JSM_EMAIL"),
        "{e}"
    );
    for (from, to, expect) in [
        (
            r#""api_token_env": "JSM_TOKEN""#,
            r#""api_key_env": "JSM_TOKEN""#,
            "connections[0].api_key_env",
        ),
        (
            r#""site": "acme.atlassian.net","#,
            "",
            "connections[0].site",
        ),
        (
            r#""email_env": "JSM_EMAIL","#,
            "",
            "connections[0].email_env",
        ),
        (
            r#""site": "acme.atlassian.net""#,
            r#""site": "acme.atlassian.net", "region": "eu""#,
            "connections[0].region",
        ),
        (
            r#""site": "acme.atlassian.net""#,
            r#""site": "a b/c""#,
            "connections[0].site",
        ),
    ] {
        let e = Config::from_json(&text.replace(from, to)).unwrap_err();
        assert!(e.to_string().contains(expect), "{expect}: {e}");
    }
    // The other vendors do not take JSM's fields.
    let og = r#"{"connections": [{"id": "og", "provider": "opsgenie", "api_key_env": "K", "site": "x"}],
      "schedule": {"id": "p", "time_zone": "UTC", "roles": ["primary"], "shifts": []},
      "destinations": []}"#;
    assert!(Config::from_json(og)
        .unwrap_err()
        .to_string()
        .contains("connections[0].site"));
    // A cloudId instead of a site.
    let by_id = text.replace(r#""site": "acme.atlassian.net""#, r#""cloud_id": "c-1""#);
    let provider = Config::from_json(&by_id)
        .unwrap()
        .provider(&ConnectionId("jsm".into()), &env)
        .unwrap();
    assert_eq!(
        provider.account().as_deref(),
        Some("jsm https://api.atlassian.com/")
    );
}

#[tokio::test]
async fn the_cli_moves_a_destination_off_opsgenie_and_works_on_jsm() {
    let w = World::new().await;
    w.write_config(&w.config(14, "og", "og-sched"));
    let t0 = rfc3339(now());
    let sync = w.run(&["sync", "--now", &t0, "--json"]);
    assert_eq!(sync.code, 0, "{}{}", sync.stdout, sync.stderr);
    // A person's manual override in Opsgenie, then Atlassian migrates the account (new aliases,
    // new schedule ids).
    let manual = Span::new(
        day(4) + TimeDelta::hours(2),
        day(4) + TimeDelta::hours(5),
        email("dan"),
    );
    w.og.insert_override(&VendorScheduleId("og-sched".into()), manual.clone());
    let migration = MigrationDialect {
        aliases: jsm_kit::Carried::Replaced,
        schedule_ids: jsm_kit::Carried::Replaced,
    };
    let moved = w
        .jsm
        .import_migrated(&w.og, &[vendor_schedule()], migration);
    let new_schedule = moved[0].1.clone();

    let t1 = rfc3339(now() + TimeDelta::hours(1));
    let dry = w.run(&[
        "migrate",
        "--destination",
        "platform-primary",
        "--to-connection",
        "jsm",
        "--now",
        &t1,
        "--dry-run",
        "--json",
    ]);
    assert_eq!(dry.code, 0, "{}{}", dry.stdout, dry.stderr);
    let report = dry.json();
    assert_eq!(report["migration"]["saved"], false);
    assert_eq!(
        report["migration"]["to"]["schedule"],
        new_schedule.0.as_str()
    );
    let before = std::fs::read_to_string(w.state_path()).unwrap();
    let moved_run = w.run(&[
        "migrate",
        "--destination",
        "platform-primary",
        "--to-connection",
        "jsm",
        "--now",
        &t1,
    ]);
    assert_eq!(
        moved_run.code, 0,
        "{}{}",
        moved_run.stdout, moved_run.stderr
    );
    assert!(
        moved_run
            .stdout
            .contains("found by its exact span and person"),
        "{}",
        moved_run.stdout
    );
    assert!(
        moved_run
            .stdout
            .contains(&format!("\"schedule_id\": \"{new_schedule}\"")),
        "{}",
        moved_run.stdout
    );
    assert_ne!(
        std::fs::read_to_string(w.state_path()).unwrap(),
        before,
        "the ledger is re-keyed"
    );
    assert_eq!(w.jsm.write_calls(), 0, "the move writes nothing");

    // The config now points at JSM; the rota grows by a week.
    w.write_config(&w.config(21, "jsm", &new_schedule.0));
    w.jsm.set_now(now() + TimeDelta::hours(2));
    let t2 = rfc3339(now() + TimeDelta::hours(2));
    let plan = w.run(&["plan", "--now", &t2, "--json"]);
    assert_eq!(plan.code, 0, "{}{}", plan.stdout, plan.stderr);
    let sync = w.run(&["sync", "--now", &t2, "--json"]);
    assert_eq!(sync.code, 0, "{}{}", sync.stdout, sync.stderr);
    let held = w.jsm.overrides(&new_schedule);
    assert!(
        held.iter().any(|o| o.span == manual),
        "the manual override survives: {held:?}"
    );
    let mut spans: Vec<&Span> = held.iter().map(|o| &o.span).collect();
    let count = spans.len();
    spans.sort();
    spans.dedup();
    assert_eq!(spans.len(), count, "nothing twice: {held:?}");
    assert!(
        held.iter().any(|o| o.span.start == day(20)),
        "the new week is exported"
    );
    let again = w.run(&[
        "sync",
        "--now",
        &rfc3339(now() + TimeDelta::hours(3)),
        "--json",
    ]);
    assert_eq!(again.code, 0);
    let writes = w.jsm.write_calls();
    let third = w.run(&[
        "sync",
        "--now",
        &rfc3339(now() + TimeDelta::hours(3)),
        "--json",
    ]);
    assert_eq!(
        (third.code, w.jsm.write_calls()),
        (0, writes),
        "a re-sync writes nothing"
    );
    let status = w.run(&["status", "--now", &t2, "--json"]);
    assert_eq!(status.code, 0, "{}{}", status.stdout, status.stderr);

    // schedules and import on JSM.
    let listed = w.run(&["schedules", "--connection", "jsm", "--json"]);
    assert_eq!(listed.code, 0, "{}{}", listed.stdout, listed.stderr);
    assert_eq!(listed.json()["schedules"][0]["id"], new_schedule.0.as_str());
    let imported = w.run(&[
        "import",
        "--connection",
        "jsm",
        "--schedule",
        &new_schedule.0,
        "--from",
        &rfc3339(day(5)),
        "--to",
        &rfc3339(day(8)),
        "--json",
    ]);
    assert_eq!(imported.code, 0, "{}{}", imported.stdout, imported.stderr);
    let shifts = imported.json()["shifts"].as_array().unwrap().len();
    assert!(shifts >= 3, "{}", imported.stdout);

    // retire on JSM: ours not started are deleted, the manual override stays.
    let retired = w.run(&["retire", "--destination", "platform-primary", "--now", &t2]);
    assert_eq!(retired.code, 0, "{}{}", retired.stdout, retired.stderr);
    let held = w.jsm.overrides(&new_schedule);
    assert!(held.iter().any(|o| o.span == manual));
    assert!(
        held.iter()
            .all(|o| o.span.start < now() + TimeDelta::hours(2) || o.span == manual),
        "{held:?}"
    );
    // Only the endpoints R10 allows, and the credentials of the read-write account.
    assert!(w.jsm.requests().iter().all(|r| r.simulated));
    assert!(w
        .jsm
        .requests()
        .iter()
        .all(|r| r.path == "/_edge/tenant_info" || r.key == jsm_kit::KeyKind::ReadWrite));
}

#[tokio::test]
async fn migrate_refuses_bad_usage_and_a_read_only_account_fails_on_jsm() {
    let mut w = World::new().await;
    w.write_config(&w.config(7, "og", "og-sched"));
    let t0 = rfc3339(now());
    for (args, expect) in [
        (
            vec!["migrate", "--destination", "nope", "--to-connection", "jsm"],
            "--destination nope",
        ),
        (
            vec![
                "migrate",
                "--destination",
                "platform-primary",
                "--to-connection",
                "zz",
            ],
            "--to-connection zz",
        ),
        (
            vec![
                "migrate",
                "--destination",
                "platform-primary",
                "--to-connection",
                "og",
            ],
            "is on it already",
        ),
    ] {
        let run = w.run(&args);
        assert_eq!(run.code, 2, "{args:?}: {}{}", run.stdout, run.stderr);
        assert!(run.stderr.contains(expect), "{}", run.stderr);
    }
    assert!(!w.state_path().exists(), "nothing was created");
    // No schedule with this id or name in JSM yet: a failure naming what to do.
    let run = w.run(&[
        "migrate",
        "--destination",
        "platform-primary",
        "--to-connection",
        "jsm",
        "--now",
        &t0,
    ]);
    assert_eq!(run.code, 1, "{}{}", run.stdout, run.stderr);
    assert!(
        run.stderr.contains("give the new schedule's id"),
        "{}",
        run.stderr
    );
    // A read-only JSM account: sync fails with the typed error, exit 1.
    w.jsm.add_schedule(vendor_schedule());
    w.token = jsm_kit::READ_ONLY_TOKEN;
    w.write_config(&w.config(7, "jsm", "og-sched"));
    let run = w.run(&["sync", "--now", &t0, "--json"]);
    assert_eq!(run.code, 1, "{}{}", run.stdout, run.stderr);
    assert!(
        run.stdout.contains("read-only or lacks rights"),
        "{}",
        run.stdout
    );
}

/// With the old connection unreadable (its key's variable unset), `migrate` says so in one note,
/// words spaced as written, and still moves the destination from the ledger's spans.
#[tokio::test]
async fn migrate_notes_an_unreadable_old_connection_in_one_plain_sentence() {
    let w = World::new().await;
    w.write_config(&w.config(14, "og", "og-sched"));
    let sync = w.run(&["sync", "--now", &rfc3339(now()), "--json"]);
    assert_eq!(sync.code, 0, "{}{}", sync.stdout, sync.stderr);
    w.jsm
        .import_migrated(&w.og, &[vendor_schedule()], MigrationDialect::default());
    let mut config = w.config(14, "og", "og-sched");
    config["connections"][0]["api_key_env"] = json!("OG_KEY_GONE");
    w.write_config(&config);
    let dry = w.run(&[
        "migrate",
        "--destination",
        "platform-primary",
        "--to-connection",
        "jsm",
        "--now",
        &rfc3339(now() + TimeDelta::hours(1)),
        "--dry-run",
    ]);
    assert_eq!(dry.code, 0, "{}{}", dry.stdout, dry.stderr);
    let note = dry
        .stderr
        .lines()
        .find(|l| l.starts_with("note: the old connection og cannot be read"))
        .unwrap_or_else(|| panic!("no note: {}", dry.stderr));
    assert!(
        note.ends_with(
            "overrides a person changed there before the move are not looked for by their \
             changed span"
        ),
        "{note:?}"
    );
    assert!(!note.contains("  "), "spacing: {note:?}");
}
