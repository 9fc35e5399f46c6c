//! End-to-end tests of the `oncall` CLI: the compiled example binary, run as a child process
//! against the Opsgenie and PagerDuty simulators started in this process, through each rule
//! R1-R10 of DESIGN §3 and each exit code. Every run is checked for leaks: no API key in the
//! arguments, the output, the config or any file the CLI leaves behind.
//!
//! The binary is `target/<profile>/examples/oncall`, which `cargo test` builds with the other
//! examples before it runs the tests (a filtered `cargo test --test cli` does not: build it first
//! with `cargo build --example oncall`).
#![allow(clippy::unwrap_used)] // tests: a panic is the failure report

mod common;
use std::path::PathBuf;
use std::process::Command;
use std::sync::atomic::{AtomicUsize, Ordering};

use chrono::{DateTime, TimeDelta, TimeZone, Utc};
use chrono_tz::Europe::Berlin;
use oncall_sync::config::Config;
use oncall_sync::opsgenie::testkit::{self as og_kit, OpsgenieSimulator};
use oncall_sync::pagerduty::testkit::PagerDutySimulator;
use oncall_sync::testkit::{Fault, Trigger, VendorSimulator};
use oncall_sync::{
    ConnectionError, ConnectionId, Email, Error, FileStateStore, Member, Override, Participant,
    Rotation, RotationUnit, ScheduleId, Span, VendorSchedule, VendorScheduleId,
};
use serde_json::{json, Value};

const PEOPLE: [&str; 4] = ["ann", "bob", "cat", "dan"];
const OG_SCHEDULE: &str = "og-sched";
const PD_SCHEDULE: &str = "PSCHED1";
const EVERY_KEY: [&str; 4] = [
    og_kit::READ_WRITE_KEY,
    og_kit::READ_ONLY_KEY,
    PagerDutySimulator::READ_WRITE_KEY,
    PagerDutySimulator::READ_ONLY_KEY,
];

fn email(name: &str) -> Email {
    Email::parse(&format!("{name}@example.com")).unwrap()
}

/// Day `n` at 09:00 Europe/Berlin (08:00 UTC; no DST change in December 2026).
fn day(n: i64) -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 11, 30, 8, 0, 0).unwrap() + TimeDelta::days(n)
}

/// The instant of the first sync: day 0 at 13:00 in Berlin.
fn now() -> DateTime<Utc> {
    day(0) + TimeDelta::hours(4)
}

fn rfc3339(t: DateTime<Utc>) -> String {
    t.to_rfc3339_opts(chrono::SecondsFormat::Secs, true)
}

/// One daily shift: its day and the primary and secondary (names of `PEOPLE`, or none).
type ShiftSpec = (i64, Option<&'static str>, Option<&'static str>);

/// Daily shifts from day `from` to day `to` (exclusive), people taking turns.
fn rota(from: i64, to: i64) -> Vec<ShiftSpec> {
    (from..to)
        .map(|d| {
            let i = d.rem_euclid(4) as usize;
            (d, Some(PEOPLE[i]), Some(PEOPLE[(i + 1) % 4]))
        })
        .collect()
}

fn vendor_schedule(id: &str, rotations: Vec<Rotation>) -> VendorSchedule {
    VendorSchedule {
        id: VendorScheduleId(id.into()),
        name: format!("Schedule {id}"),
        zone: Berlin,
        members: PEOPLE.iter().map(|p| Member::new(email(p), *p)).collect(),
        rotations,
    }
}

/// The simulators, a folder for the config and the state file, and the keys the CLI gets.
struct World {
    og: OpsgenieSimulator,
    pd: PagerDutySimulator,
    dir: PathBuf,
    og_key: Option<&'static str>,
    pd_key: Option<&'static str>,
}

/// What one run of the CLI gave.
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
        let pd = PagerDutySimulator::start_at(now()).await;
        og.add_schedule(vendor_schedule(OG_SCHEDULE, Vec::new()));
        pd.add_schedule(vendor_schedule(PD_SCHEDULE, Vec::new()));
        let dir = std::env::temp_dir().join(format!(
            "oncall-cli-{}-{}",
            std::process::id(),
            NEXT.fetch_add(1, Ordering::Relaxed)
        ));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        World {
            og,
            pd,
            dir,
            og_key: Some(og_kit::READ_WRITE_KEY),
            pd_key: Some(PagerDutySimulator::READ_WRITE_KEY),
        }
    }

    fn config_path(&self) -> PathBuf {
        self.dir.join("oncall.json")
    }

    fn state_path(&self) -> PathBuf {
        self.dir.join("state.json")
    }

    fn config_value(&self, shifts: &[ShiftSpec]) -> Value {
        let shifts: Vec<Value> = shifts
            .iter()
            .map(|(d, primary, secondary)| {
                let who = |p: &Option<&str>| p.map(|p| format!("{p}@example.com"));
                json!({
                    "start": day(*d).with_timezone(&Berlin).to_rfc3339(),
                    "end": day(*d + 1).with_timezone(&Berlin).to_rfc3339(),
                    "assignees": [who(primary), who(secondary)],
                })
            })
            .collect();
        json!({
            "connections": [
                {"id": "og", "provider": "opsgenie", "api_key_env": "OG_KEY", "base_url": self.og.uri()},
                {"id": "pd", "provider": "pagerduty", "api_key_env": "PD_KEY", "base_url": self.pd.uri()},
            ],
            "schedule": {"id": "platform", "time_zone": "Europe/Berlin",
                         "roles": ["primary", "secondary"], "shifts": shifts},
            "destinations": [
                {"id": "og-primary", "connection": "og", "schedule_id": OG_SCHEDULE, "role": "primary"},
                {"id": "pd-secondary", "connection": "pd", "schedule_id": PD_SCHEDULE, "role": "secondary"},
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

    /// Writes the config of these shifts.
    fn rota(&self, shifts: &[ShiftSpec]) {
        self.write_config(&self.config_value(shifts));
    }

    /// Runs the CLI with these arguments (the config and state paths are added where the
    /// subcommand takes them), with only the key variables in its environment, and checks that no
    /// key leaked anywhere.
    fn run(&self, args: &[&str]) -> Run {
        let mut full: Vec<String> = args.iter().map(|a| a.to_string()).collect();
        full.extend(["--config".into(), self.config_path().display().to_string()]);
        if matches!(
            args[0],
            "plan" | "sync" | "status" | "retire" | "apply" | "drift"
        ) {
            full.extend(["--state".into(), self.state_path().display().to_string()]);
        }
        self.run_raw(&full)
    }

    fn run_raw(&self, args: &[String]) -> Run {
        let mut command = Command::new(common::example_binary("oncall"));
        command.args(args).env_clear();
        if let Some(key) = self.og_key {
            command.env("OG_KEY", key);
        }
        if let Some(key) = self.pd_key {
            command.env("PD_KEY", key);
        }
        let output = command.output().unwrap();
        let run = Run {
            code: output.status.code().unwrap_or(-1),
            stdout: String::from_utf8_lossy(&output.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&output.stderr).into_owned(),
        };
        for key in EVERY_KEY {
            assert!(!args.iter().any(|a| a.contains(key)), "a key in argv");
            assert!(!run.stdout.contains(key), "a key on stdout: {}", run.stdout);
            assert!(!run.stderr.contains(key), "a key on stderr: {}", run.stderr);
        }
        self.check_files_for_keys();
        run
    }

    /// No key in the config, the state file or anything else in the folder.
    fn check_files_for_keys(&self) {
        for entry in std::fs::read_dir(&self.dir).unwrap() {
            let path = entry.unwrap().path();
            let content = std::fs::read(&path).unwrap_or_default();
            let content = String::from_utf8_lossy(&content);
            for key in EVERY_KEY {
                assert!(!content.contains(key), "a key in {}", path.display());
            }
        }
    }

    fn state_json(&self) -> Value {
        serde_json::from_slice(&std::fs::read(self.state_path()).unwrap()).unwrap()
    }

    /// Moves both vendors' clocks.
    fn set_now(&self, t: DateTime<Utc>) {
        self.og.set_now(t);
        self.pd.set_now(t);
    }

    fn og_writes(&self) -> usize {
        self.og
            .requests()
            .iter()
            .filter(|r| r.method != "GET")
            .count()
    }

    fn pd_writes(&self) -> usize {
        self.pd
            .requests()
            .iter()
            .filter(|r| r.method != "GET")
            .count()
    }

    fn vendor_requests(&self) -> usize {
        self.og.requests().len() + self.pd.requests().len()
    }

    /// R10: only the endpoints DESIGN §1 allows, and of users no more than the directory.
    fn check_least_data(&self) {
        for r in self.og.requests() {
            assert!(
                r.simulated,
                "Opsgenie: an endpoint it does not serve: {r:?}"
            );
            assert!(
                r.path.starts_with("/v2/schedules"),
                "Opsgenie: {} {}",
                r.method,
                r.path
            );
        }
        for r in self.pd.requests() {
            assert!(r.routed, "PagerDuty: an endpoint it does not serve: {r:?}");
            assert!(
                r.path.starts_with("/schedules") || r.path.starts_with("/users"),
                "PagerDuty: {} {}",
                r.method,
                r.path
            );
            assert!(
                !r.query.iter().any(|(k, _)| k.starts_with("include")),
                "PagerDuty: no contact methods or other user details: {r:?}"
            );
            if r.path.starts_with("/users") {
                assert_eq!(r.method, "GET", "users are only read");
            }
        }
    }
}

impl Drop for World {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

fn at(t: DateTime<Utc>) -> String {
    rfc3339(t)
}

/// The desired spans of one role from these shifts, clipped at `now`.
fn desired(shifts: &[ShiftSpec], role: usize, now: DateTime<Utc>) -> Vec<Span> {
    shifts
        .iter()
        .filter_map(|(d, primary, secondary)| {
            let who = if role == 0 { primary } else { secondary };
            let span = Span::new(day(*d), day(*d + 1), email((*who)?));
            span.clipped(now)
        })
        .collect()
}

/// A vendor's overrides from `now` on, clipped at `now`, as spans.
fn held_from(overrides: &[Override], now: DateTime<Utc>) -> Vec<Span> {
    let mut spans: Vec<Span> = overrides
        .iter()
        .filter_map(|o| o.span.clipped(now))
        .filter(|s| s.end > now + TimeDelta::minutes(1))
        .collect();
    spans.sort();
    spans
}

fn destination<'a>(report: &'a Value, id: &str) -> &'a Value {
    report["destinations"]
        .as_array()
        .unwrap()
        .iter()
        .find(|d| d["id"] == id)
        .unwrap_or_else(|| panic!("no destination {id} in {report}"))
}

fn ops(report: &Value, id: &str) -> Vec<String> {
    destination(report, id)["operations"]
        .as_array()
        .unwrap()
        .iter()
        .map(|o| o["op"].as_str().unwrap().to_owned())
        .collect()
}

fn og_id() -> VendorScheduleId {
    VendorScheduleId(OG_SCHEDULE.into())
}

fn pd_id() -> VendorScheduleId {
    VendorScheduleId(PD_SCHEDULE.into())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn plan_then_sync_makes_the_fresh_region_exact_and_a_resync_writes_nothing() {
    let w = World::new().await;
    let shifts = rota(-1, 7);
    w.rota(&shifts);
    // R2: a foreign override in the fresh region goes; a foreign one running now is cut at now.
    let foreign_ahead = w.og.insert_override(
        &og_id(),
        Span::new(
            day(3) + TimeDelta::hours(2),
            day(3) + TimeDelta::hours(6),
            email("dan"),
        ),
    );
    let foreign_running = w.pd.insert_override(
        &pd_id(),
        Span::new(
            day(0) - TimeDelta::hours(2),
            day(1) + TimeDelta::hours(3),
            email("dan"),
        ),
    );

    // plan: the operations, no write, no state file.
    let plan = w.run(&["plan", "--now", &at(now()), "--json"]);
    assert_eq!(plan.code, 0, "{}", plan.stderr);
    let planned = plan.json();
    let og_ops = ops(&planned, "og-primary");
    assert_eq!(
        og_ops.iter().filter(|o| *o == "create").count(),
        7,
        "{og_ops:?}"
    );
    assert!(og_ops.contains(&"delete".to_owned()), "{og_ops:?}");
    assert!(ops(&planned, "pd-secondary").contains(&"truncate".to_owned()));
    assert_eq!(destination(&planned, "og-primary")["status"], "ok");
    assert_eq!(
        destination(&planned, "og-primary")["high_water"],
        Value::Null
    );
    assert_eq!(
        (w.og_writes(), w.pd_writes()),
        (0, 0),
        "plan writes nothing"
    );
    assert!(!w.state_path().exists(), "plan creates no state file");

    let text = w.run(&["plan", "--now", &at(now())]);
    assert_eq!(text.code, 0);
    assert!(text.stdout.contains("+ create"), "{}", text.stdout);
    assert!(text.stdout.contains("- delete"), "{}", text.stdout);
    assert!(
        text.stdout.contains("2026-12-01 09:00 CET"),
        "times in the schedule's zone: {}",
        text.stdout
    );
    assert!(
        text.stdout
            .contains("og-primary: ok, 8 operations planned, mark none"),
        "{}",
        text.stdout
    );

    // sync: exit 0, the mark at the horizon end, the fresh region exactly the desired spans.
    let sync = w.run(&["sync", "--now", &at(now()), "--json"]);
    assert_eq!(sync.code, 0, "{}{}", sync.stdout, sync.stderr);
    let report = sync.json();
    for id in ["og-primary", "pd-secondary"] {
        assert_eq!(destination(&report, id)["status"], "ok", "{report}");
        assert_eq!(destination(&report, id)["high_water"], at(day(7)));
    }
    let og_held = w.og.overrides(&og_id());
    assert_eq!(
        held_from(&og_held, now()),
        desired(&shifts, 0, now()),
        "R2 on Opsgenie"
    );
    assert!(!og_held.iter().any(|o| o.id == foreign_ahead));
    let pd_held = w.pd.overrides(&pd_id());
    assert_eq!(
        held_from(&pd_held, now()),
        desired(&shifts, 1, now()),
        "R2 on PagerDuty"
    );
    let cut = pd_held
        .iter()
        .find(|o| o.id == foreign_running)
        .expect("truncated, not gone");
    assert!(
        cut.span.end <= now() + TimeDelta::minutes(1),
        "cut at now: {cut:?}"
    );

    let human = w.run(&["status", "--now", &at(now())]);
    assert_eq!(human.code, 0, "{}", human.stdout);
    assert!(human.stdout.contains("health ok"), "{}", human.stdout);

    // R6: an hour later with nothing changed, no write call.
    let later = now() + TimeDelta::hours(1);
    w.set_now(later);
    let (og_before, pd_before) = (w.og_writes(), w.pd_writes());
    let again = w.run(&["sync", "--now", &at(later), "--json"]);
    assert_eq!(again.code, 0, "{}", again.stderr);
    assert_eq!(
        (w.og_writes(), w.pd_writes()),
        (og_before, pd_before),
        "R6: no writes"
    );
    for id in ["og-primary", "pd-secondary"] {
        assert_eq!(destination(&again.json(), id)["write_calls"], 0);
    }
    w.check_least_data();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn history_is_never_touched() {
    let w = World::new().await;
    // R1: shifts that ended before now, and people's overrides in the past.
    let shifts = rota(-3, 3);
    w.rota(&shifts);
    let past = Span::new(
        day(-2) + TimeDelta::hours(2),
        day(-2) + TimeDelta::hours(4),
        email("dan"),
    );
    let og_past = w.og.insert_override(&og_id(), past.clone());
    let pd_past = w.pd.insert_override(&pd_id(), past.clone());
    let sync = w.run(&["sync", "--now", &at(now()), "--json"]);
    assert_eq!(sync.code, 0, "{}", sync.stderr);
    for (held, id) in [
        (w.og.overrides(&og_id()), &og_past),
        (w.pd.overrides(&pd_id()), &pd_past),
    ] {
        let kept = held
            .iter()
            .find(|o| &o.id == id)
            .expect("the past override is kept");
        assert_eq!(kept.span, past);
        for o in held.iter().filter(|o| &o.id != id) {
            assert!(o.span.start >= now(), "nothing written before now: {o:?}");
        }
    }
    let report = sync.json();
    for id in ["og-primary", "pd-secondary"] {
        for op in destination(&report, id)["operations"].as_array().unwrap() {
            assert!(op["end"].as_str().unwrap() > at(now()).as_str(), "R1: {op}");
        }
    }
    w.check_least_data();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_manual_override_before_the_mark_survives_and_a_host_swap_is_exported() {
    let w = World::new().await;
    let shifts = rota(0, 7);
    w.rota(&shifts);
    assert_eq!(w.run(&["sync", "--now", &at(now())]).code, 0);

    // R3: people cover by hand in the vendors, before the mark.
    let manual = Span::new(
        day(2) + TimeDelta::hours(2),
        day(2) + TimeDelta::hours(5),
        email("dan"),
    );
    let og_manual = w.og.insert_override(&og_id(), manual.clone());
    let pd_manual = w.pd.insert_override(&pd_id(), manual.clone());
    // R4: the host swaps days 4 and 5 in both roles.
    let mut swapped = shifts.clone();
    for i in [4, 5] {
        let other = &shifts[9 - i];
        (swapped[i].1, swapped[i].2) = (other.1, other.2);
    }
    w.rota(&swapped);

    let later = now() + TimeDelta::hours(2);
    w.set_now(later);
    let sync = w.run(&["sync", "--now", &at(later), "--json"]);
    assert_eq!(sync.code, 0, "{}", sync.stderr);
    let report = sync.json();
    assert_eq!(
        ops(&report, "og-primary"),
        ["update", "update"],
        "Opsgenie swaps in place"
    );
    let pd_ops = ops(&report, "pd-secondary");
    assert_eq!(
        pd_ops.iter().filter(|o| *o == "delete").count(),
        2,
        "{pd_ops:?}"
    );
    assert_eq!(
        pd_ops.iter().filter(|o| *o == "create").count(),
        2,
        "{pd_ops:?}"
    );

    for (held, id) in [
        (w.og.overrides(&og_id()), &og_manual),
        (w.pd.overrides(&pd_id()), &pd_manual),
    ] {
        let kept = held
            .iter()
            .find(|o| &o.id == id)
            .expect("R3: the manual override survives");
        assert_eq!(kept.span, manual);
    }
    let ours = |held: Vec<Override>, manual: &oncall_sync::OverrideId| {
        let others: Vec<Override> = held.into_iter().filter(|o| &o.id != manual).collect();
        held_from(&others, later)
    };
    assert_eq!(
        ours(w.og.overrides(&og_id()), &og_manual),
        desired(&swapped, 0, later),
        "R4"
    );
    assert_eq!(
        ours(w.pd.overrides(&pd_id()), &pd_manual),
        desired(&swapped, 1, later),
        "R4"
    );
    w.check_least_data();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_refused_write_holds_the_mark_until_it_succeeds() {
    let w = World::new().await;
    w.rota(&rota(0, 4));
    let first = w.run(&["sync", "--now", &at(now()), "--json"]).json();
    for id in ["og-primary", "pd-secondary"] {
        assert_eq!(
            destination(&first, id)["high_water"],
            at(day(4)),
            "R5: H = E"
        );
    }
    // The host extends the rota by a day; the vendors refuse that one write.
    w.rota(&rota(0, 5));
    let refused = |message: &str| {
        Fault::Fail(Error::Rejected {
            message: message.into(),
        })
    };
    w.og.inject(
        Trigger::Write(w.og.write_calls() + 1),
        refused("endDate is invalid"),
    );
    w.pd.inject(
        Trigger::Write(w.pd.write_calls() + 1),
        refused("Override must end in the future"),
    );
    let later = now() + TimeDelta::hours(1);
    w.set_now(later);
    let sync = w.run(&["sync", "--now", &at(later), "--json"]);
    assert_eq!(
        sync.code, 1,
        "a failed destination is exit 1: {}",
        sync.stdout
    );
    let report = sync.json();
    for id in ["og-primary", "pd-secondary"] {
        let d = destination(&report, id);
        assert_eq!(d["status"], "failed", "{d}");
        assert_eq!(d["errors"][0]["kind"], "rejected", "{d}");
        assert_eq!(
            d["high_water"],
            at(day(4)),
            "R5: the mark holds at the failed span's start"
        );
    }
    let text = w.run(&["status", "--now", &at(later)]);
    assert!(text.stdout.contains("last run"), "{}", text.stdout);
    assert!(text.stdout.contains("failed"), "{}", text.stdout);
    // The next sync writes it and moves the mark on.
    let again = w.run(&["sync", "--now", &at(later), "--json"]);
    assert_eq!(again.code, 0, "{}", again.stdout);
    for id in ["og-primary", "pd-secondary"] {
        assert_eq!(destination(&again.json(), id)["high_water"], at(day(5)));
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_read_only_key_fails_its_destination_alone_with_a_typed_error_never_retried() {
    let mut w = World::new().await;
    w.og_key = Some(og_kit::READ_ONLY_KEY);
    let shifts = rota(0, 4);
    w.rota(&shifts);
    let sync = w.run(&["sync", "--now", &at(now()), "--json"]);
    assert_eq!(sync.code, 1, "{}", sync.stdout);
    let report = sync.json();
    // R8: typed, naming the connection and the destination, saying the key is read-only.
    let og = destination(&report, "og-primary");
    assert_eq!(og["status"], "failed");
    let error = &og["errors"][0];
    assert_eq!(error["kind"], "permission_denied", "{og}");
    let message = error["message"].as_str().unwrap();
    for needle in ["og-primary", "connection og", "read-only"] {
        assert!(message.contains(needle), "{needle:?} in {message}");
    }
    assert_eq!(og["high_water"], Value::Null);
    // Never retried: every write went out once and was refused.
    let writes: Vec<_> =
        w.og.requests()
            .into_iter()
            .filter(|r| r.method != "GET")
            .collect();
    assert!(!writes.is_empty());
    for (i, r) in writes.iter().enumerate() {
        assert_eq!(r.status, Some(403), "{r:?}");
        assert!(
            !writes[..i]
                .iter()
                .any(|s| (&s.method, &s.path, &s.body) == (&r.method, &r.path, &r.body)),
            "R8: a refused write was sent again: {r:?}"
        );
    }
    // R7: the other destination is unaffected.
    let pd = destination(&report, "pd-secondary");
    assert_eq!(pd["status"], "ok", "{pd}");
    assert_eq!(
        held_from(&w.pd.overrides(&pd_id()), now()),
        desired(&shifts, 1, now())
    );
    // The state file remembers the key proved read-only, and status says so, without a vendor call.
    let calls = w.vendor_requests();
    let status = w.run(&["status", "--now", &at(now()), "--json"]).json();
    assert_eq!(destination(&status, "og-primary")["key_read_only"], true);
    assert_eq!(destination(&status, "og-primary")["health"], "error");
    assert_eq!(destination(&status, "pd-secondary")["key_read_only"], false);
    assert_eq!(destination(&status, "pd-secondary")["health"], "ok");
    let text = w.run(&["status", "--now", &at(now())]);
    assert_eq!(text.code, 1, "health error is exit 1");
    assert!(text.stdout.contains("proved read-only"), "{}", text.stdout);
    assert_eq!(w.vendor_requests(), calls, "status calls no vendor");
    w.check_least_data();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn destroying_a_connection_in_use_fails_listing_its_schedules() {
    let w = World::new().await;
    w.rota(&rota(0, 3));
    assert_eq!(w.run(&["sync", "--now", &at(now())]).code, 0);
    // R9, through the registry the CLI keeps in the state file.
    let mut registry = FileStateStore::new(w.state_path())
        .load_connections()
        .unwrap();
    assert_eq!(registry.list().len(), 2);
    for connection in ["og", "pd"] {
        match registry.destroy(&ConnectionId(connection.into())) {
            Err(ConnectionError::InUse {
                schedules, uses, ..
            }) => {
                assert_eq!(schedules, [ScheduleId("platform".into())]);
                assert_eq!(uses.len(), 1);
            }
            other => panic!("{connection}: expected InUse, got {other:?}"),
        }
    }
    // And through the config's own registry: once the schedule is gone, destroying works.
    let mut registry = Config::from_file(w.config_path()).unwrap().registry();
    let refused = registry.destroy(&ConnectionId("og".into())).unwrap_err();
    assert!(
        refused
            .to_string()
            .contains("schedule platform (destination og-primary)"),
        "{refused}"
    );
    registry.release_schedule(&ScheduleId("platform".into()));
    assert!(registry.destroy(&ConnectionId("og".into())).is_ok());
    w.check_files_for_keys();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_config_or_usage_is_exit_2_with_nothing_sent_and_no_state_file() {
    let mut w = World::new().await;
    let good = w.config_value(&rota(0, 3));
    let edit = |f: &dyn Fn(&mut Value)| {
        let mut c = good.clone();
        f(&mut c);
        c
    };
    let cases: Vec<(&str, Value, &str)> = vec![
        (
            "a bad instant",
            edit(&|c| c["schedule"]["shifts"][1]["start"] = json!("2026-12-01 09:00")),
            "schedule.shifts[1].start",
        ),
        (
            "an unknown role",
            edit(&|c| c["destinations"][0]["role"] = json!("tertiary")),
            "destinations[0].role",
        ),
        (
            "an unknown connection",
            edit(&|c| c["destinations"][1]["connection"] = json!("xx")),
            "destinations[1].connection",
        ),
        (
            "overlapping shifts",
            edit(&|c| c["schedule"]["shifts"][1]["start"] = json!("2026-11-30T20:00:00+01:00")),
            "schedule.shifts[1]",
        ),
        (
            "two destinations on one vendor schedule",
            edit(&|c| {
                c["destinations"][1]["connection"] = json!("og");
                c["destinations"][1]["schedule_id"] = json!(OG_SCHEDULE);
            }),
            "both export to schedule og-sched of connection og",
        ),
        ("not a config object", json!("{"), "invalid type"),
    ];
    for (what, config, place) in cases {
        w.write_config(&config);
        for command in ["plan", "sync"] {
            let run = w.run(&[command, "--now", &at(now())]);
            assert_eq!(run.code, 2, "{what}: {}", run.stderr);
            assert!(
                run.stderr.contains(place),
                "{what}: {place:?} in {}",
                run.stderr
            );
        }
    }
    std::fs::write(w.config_path(), "{\"connections\": [").unwrap();
    let run = w.run(&["sync", "--now", &at(now())]);
    assert_eq!(run.code, 2);
    assert!(run.stderr.contains("EOF while parsing"), "{}", run.stderr);
    // A missing key variable.
    w.write_config(&good);
    w.pd_key = None;
    let run = w.run(&["sync", "--now", &at(now())]);
    assert_eq!(run.code, 2);
    assert!(
        run.stderr.contains("PD_KEY") && run.stderr.contains("connection pd"),
        "{}",
        run.stderr
    );
    w.pd_key = Some(PagerDutySimulator::READ_WRITE_KEY);
    // Usage errors: a missing flag, a bad --now, an unknown destination or connection.
    let config = w.config_path().display().to_string();
    let run = w.run_raw(&["sync".into(), "--config".into(), config.clone()]);
    assert_eq!(run.code, 2, "{}", run.stderr);
    assert!(run.stderr.contains("--state"), "{}", run.stderr);
    let run = w.run(&["sync", "--now", "tomorrow"]);
    assert_eq!(run.code, 2);
    let run = w.run(&["retire", "--destination", "nowhere", "--now", &at(now())]);
    assert_eq!(run.code, 2);
    assert!(run.stderr.contains("nowhere"), "{}", run.stderr);
    let run = w.run(&["schedules", "--connection", "nowhere"]);
    assert_eq!(run.code, 2);

    assert_eq!(w.vendor_requests(), 0, "nothing was sent");
    assert!(!w.state_path().exists(), "no state file was created");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn status_reports_health_from_the_state_file_alone() {
    let w = World::new().await;
    w.rota(&rota(0, 4));
    // Nothing exported yet: shifts within three days are missing.
    let before = w.run(&["status", "--now", &at(now()), "--json"]);
    assert_eq!(before.code, 1);
    let status = before.json();
    assert_eq!(destination(&status, "og-primary")["health"], "error");
    assert_eq!(destination(&status, "og-primary")["last_run"], Value::Null);
    assert!(!w.state_path().exists(), "status creates no state file");
    assert_eq!(w.run(&["sync", "--now", &at(now())]).code, 0);
    let after = w.run(&["status", "--now", &at(now()), "--json"]);
    assert_eq!(after.code, 0);
    let status = after.json();
    let og = destination(&status, "og-primary");
    assert_eq!(og["health"], "ok", "{og}");
    assert_eq!(og["high_water"], at(day(4)));
    assert_eq!(og["ledger_overrides"], 4);
    assert_eq!(og["last_run"]["ok"], true);
    assert_eq!(og["key_read_only"], false);
    // A shift added ten days ahead and not exported yet: a warning, still exit 0.
    let mut extended = rota(0, 4);
    extended.push((10, Some("ann"), Some("bob")));
    w.rota(&extended);
    let calls = w.vendor_requests();
    let warned = w.run(&["status", "--now", &at(now()), "--json"]);
    assert_eq!(warned.code, 0);
    let og = destination(&warned.json(), "og-primary").clone();
    assert_eq!(og["health"], "warning", "{og}");
    assert_eq!(og["not_exported"][0]["start"], at(day(10)));
    assert_eq!(w.vendor_requests(), calls, "no vendor call");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn retire_deletes_ours_that_have_not_started_and_drops_the_state() {
    let w = World::new().await;
    w.rota(&rota(0, 5));
    assert_eq!(w.run(&["sync", "--now", &at(now())]).code, 0);
    let manual = Span::new(
        day(3) + TimeDelta::hours(1),
        day(3) + TimeDelta::hours(2),
        email("dan"),
    );
    let pd_manual = w.pd.insert_override(&pd_id(), manual.clone());
    let later = now() + TimeDelta::hours(1);
    w.set_now(later);

    let writes = w.pd_writes();
    let dry = w.run(&[
        "retire",
        "--destination",
        "pd-secondary",
        "--now",
        &at(later),
        "--dry-run",
        "--json",
    ]);
    assert_eq!(dry.code, 0, "{}", dry.stderr);
    assert_eq!(
        ops(&dry.json(), "pd-secondary"),
        ["delete"; 4],
        "the running one stays"
    );
    assert_eq!(w.pd_writes(), writes, "a dry run writes nothing");
    assert!(
        w.state_json()["destinations"]["pd-secondary"].is_object(),
        "and keeps the state"
    );

    let text = w.run(&[
        "retire",
        "--destination",
        "pd-secondary",
        "--now",
        &at(later),
    ]);
    assert_eq!(text.code, 0, "{}{}", text.stdout, text.stderr);
    assert!(text.stdout.contains("- delete"), "{}", text.stdout);
    assert!(text.stdout.contains("is retired"), "{}", text.stdout);
    assert_eq!(w.pd_writes(), writes + 4);
    let held = w.pd.overrides(&pd_id());
    assert_eq!(held.len(), 2, "the running one and the person's: {held:?}");
    assert!(held.iter().any(|o| o.id == pd_manual && o.span == manual));
    assert!(held
        .iter()
        .any(|o| o.span.start <= later && o.span.end > later));
    let state = w.state_json();
    assert!(
        state["destinations"].get("pd-secondary").is_none(),
        "{state}"
    );
    assert!(
        state["destinations"]["og-primary"].is_object(),
        "the other destination stays"
    );
    assert_eq!(w.og.overrides(&og_id()).len(), 5, "Opsgenie untouched");
    w.check_least_data();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn schedules_and_import_give_what_pastes_into_the_config() {
    let w = World::new().await;
    let start = chrono::NaiveDate::from_ymd_opt(2026, 11, 2)
        .unwrap()
        .and_hms_opt(9, 0, 0)
        .unwrap();
    let people = |names: &[&str]| {
        names
            .iter()
            .map(|n| Participant::Member(email(n)))
            .collect()
    };
    w.og.add_schedule(vendor_schedule(
        "og-import",
        vec![
            Rotation::new(
                "daily",
                RotationUnit::Daily,
                1,
                start,
                people(&["ann", "bob", "cat"]),
            ),
            // Handing off on Tuesdays; nobody the week before the import window's second day.
            Rotation::new(
                "weekly",
                RotationUnit::Weekly,
                1,
                start + TimeDelta::days(1),
                vec![Participant::Member(email("dan")), Participant::Nobody],
            ),
        ],
    ));
    w.rota(&rota(0, 2));
    let listed = w.run(&["schedules", "--connection", "og", "--json"]);
    assert_eq!(listed.code, 0, "{}", listed.stderr);
    let listed = listed.json();
    let mut names: Vec<&str> = listed["schedules"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["id"].as_str().unwrap())
        .collect();
    names.sort_unstable();
    assert_eq!(names, ["og-import", OG_SCHEDULE]);
    let source = listed["schedules"]
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["id"] == "og-import")
        .unwrap();
    assert_eq!(source["time_zone"], "Europe/Berlin");
    // Opsgenie's members are the people of its rotations.
    assert_eq!(source["members"].as_array().unwrap().len(), 4, "{source}");
    let pd = w.run(&["schedules", "--connection", "pd", "--json"]).json();
    assert_eq!(pd["schedules"][0]["id"], PD_SCHEDULE);

    let imported = w.run(&[
        "import",
        "--connection",
        "og",
        "--schedule",
        "og-import",
        "--from",
        &at(day(0)),
        "--to",
        &at(day(4)),
        "--json",
    ]);
    assert_eq!(imported.code, 0, "{}", imported.stderr);
    let schedule = imported.json();
    assert_eq!(schedule["roles"], json!(["primary", "secondary"]));
    assert_eq!(schedule["shifts"].as_array().unwrap().len(), 4);
    assert_eq!(schedule["shifts"][0]["start"], "2026-11-30T09:00:00+01:00");
    assert_eq!(
        schedule["shifts"][0]["assignees"],
        json!(["bob@example.com", null])
    );
    assert_eq!(
        schedule["shifts"][1]["assignees"],
        json!(["cat@example.com", "dan@example.com"])
    );
    assert_eq!(
        schedule["warnings"],
        json!(["role secondary has nobody from 2026-11-30 09:00 CET to 2026-12-01 09:00 CET"])
    );
    // It pastes into the config as its schedule, as it is, and plans.
    let mut config = w.config_value(&rota(0, 2));
    config["schedule"] = schedule.clone();
    w.write_config(&config);
    let plan = w.run(&["plan", "--now", &at(now()), "--json"]);
    assert_eq!(plan.code, 0, "{}", plan.stderr);
    assert_eq!(ops(&plan.json(), "og-primary").len(), 4);
    // A vendor failure (an unknown schedule) is exit 1.
    let missing = w.run(&[
        "import",
        "--connection",
        "pd",
        "--schedule",
        "PNOPE",
        "--from",
        &at(day(0)),
        "--to",
        &at(day(4)),
    ]);
    assert_eq!(missing.code, 1, "{}", missing.stderr);
    assert!(missing.stderr.contains("PNOPE"), "{}", missing.stderr);
    w.check_least_data();
}

/// Sets a destination's `mode` in the config.
fn with_mode(mut config: Value, destination: &str, mode: &str) -> Value {
    for d in config["destinations"].as_array_mut().unwrap() {
        if d["id"] == destination {
            d["mode"] = json!(mode);
        }
    }
    config
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn manual_mode_plans_on_sync_saves_a_plan_and_applies_it_while_nothing_changed() {
    let w = World::new().await;
    let shifts = rota(-1, 7);
    w.write_config(&with_mode(w.config_value(&shifts), "og-primary", "manual"));
    let plan_file = w.dir.join("plan.json");
    let plan_arg = plan_file.display().to_string();

    // sync: the manual destination is only planned; the other one is written.
    let sync = w.run(&["sync", "--now", &at(now()), "--json"]);
    assert_eq!(sync.code, 0, "{}{}", sync.stdout, sync.stderr);
    assert_eq!(destination(&sync.json(), "og-primary")["planned"], true);
    assert_eq!(destination(&sync.json(), "og-primary")["mode"], "manual");
    assert_eq!(w.og_writes(), 0, "manual: nothing written");
    assert!(w.pd_writes() > 0);
    let text = w.run(&["sync", "--now", &at(now())]);
    assert!(
        text.stdout.contains("manual mode: planned only"),
        "{}",
        text.stdout
    );

    // plan --out, then a person's override in between: refused, nothing written.
    let planned = w.run(&["plan", "--now", &at(now()), "--out", &plan_arg]);
    assert_eq!(planned.code, 0, "{}", planned.stderr);
    let saved: Value = serde_json::from_slice(&std::fs::read(&plan_file).unwrap()).unwrap();
    assert_eq!(saved["plans"].as_array().unwrap().len(), 2, "{saved}");
    assert!(saved["plans"][0]["summary"][0]
        .as_str()
        .unwrap()
        .contains("create"));
    let theirs = w.og.insert_override(
        &og_id(),
        Span::new(day(3), day(3) + TimeDelta::hours(2), email("dan")),
    );
    let refused = w.run(&["apply", "--plan", &plan_arg, "--now", &at(now()), "--json"]);
    assert_eq!(refused.code, 1, "{}{}", refused.stdout, refused.stderr);
    assert_eq!(
        destination(&refused.json(), "og-primary")["refused"],
        "vendor_changed"
    );
    assert_eq!(w.og_writes(), 0, "refused: nothing written");
    let human = w.run(&["apply", "--plan", &plan_arg, "--now", &at(now())]);
    assert!(
        human.stdout.contains("refused, nothing written"),
        "{}",
        human.stdout
    );

    // Planned again, it applies: the vendor shows exactly the rota from now on.
    w.og.remove_override(&og_id(), &theirs);
    let later = now() + TimeDelta::minutes(5);
    w.set_now(later);
    assert_eq!(
        w.run(&["plan", "--now", &at(later), "--out", &plan_arg])
            .code,
        0
    );
    let applied = w.run(&["apply", "--plan", &plan_arg, "--now", &at(later), "--json"]);
    assert_eq!(applied.code, 0, "{}{}", applied.stdout, applied.stderr);
    assert_eq!(destination(&applied.json(), "og-primary")["status"], "ok");
    assert_eq!(
        held_from(&w.og.overrides(&og_id()), later),
        desired(&shifts, 0, later)
    );
    assert_eq!(
        w.state_json()["destinations"]["og-primary"]["state"]["mode"],
        "manual"
    );
    // The same plan again: the state has moved on.
    let again = w.run(&["apply", "--plan", &plan_arg, "--now", &at(later), "--json"]);
    assert_eq!(again.code, 1);
    assert_eq!(
        destination(&again.json(), "og-primary")["refused"],
        "state_changed"
    );
    // A plan file that is not one: usage, exit 2.
    std::fs::write(&plan_file, "{}").unwrap();
    assert_eq!(
        w.run(&["apply", "--plan", &plan_arg, "--now", &at(later)])
            .code,
        2
    );
    w.check_least_data();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn authoritative_mode_removes_a_manual_override_before_the_mark() {
    let w = World::new().await;
    let shifts = rota(-1, 7);
    w.rota(&shifts);
    assert_eq!(w.run(&["sync", "--now", &at(now())]).code, 0);
    let theirs = w.og.insert_override(
        &og_id(),
        Span::new(day(2), day(2) + TimeDelta::hours(3), email("dan")),
    );
    // Protect leaves it (R3); authoritative removes it and reports it as drift, reverted.
    let later = now() + TimeDelta::hours(1);
    w.set_now(later);
    assert_eq!(w.run(&["sync", "--now", &at(later)]).code, 0);
    assert!(w.og.overrides(&og_id()).iter().any(|o| o.id == theirs));
    w.write_config(&with_mode(
        w.config_value(&shifts),
        "og-primary",
        "authoritative",
    ));
    let sync = w.run(&["sync", "--now", &at(later), "--json"]);
    assert_eq!(sync.code, 0, "{}", sync.stderr);
    let og = destination(&sync.json(), "og-primary").clone();
    assert_eq!(og["drift"].as_array().unwrap().len(), 1, "{og}");
    assert_eq!(og["drift"][0]["stretches"][0]["fate"], "reverted");
    assert!(!w.og.overrides(&og_id()).iter().any(|o| o.id == theirs));
    assert_eq!(
        held_from(&w.og.overrides(&og_id()), later),
        desired(&shifts, 0, later)
    );
    let status = w.run(&["status", "--now", &at(later), "--json"]);
    assert_eq!(
        destination(&status.json(), "og-primary")["mode"],
        "authoritative"
    );
    // An unknown mode is a config error: exit 2.
    w.write_config(&with_mode(w.config_value(&shifts), "og-primary", "strict"));
    let bad = w.run(&["sync", "--now", &at(later)]);
    assert_eq!(bad.code, 2);
    assert!(
        bad.stderr.contains("destinations[0].mode"),
        "{}",
        bad.stderr
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn drift_lists_a_swap_made_in_the_vendor_and_accept_writes_it_into_the_shifts() {
    let w = World::new().await;
    let shifts = rota(-1, 7);
    w.rota(&shifts);
    assert_eq!(w.run(&["sync", "--now", &at(now())]).code, 0);
    // A person swaps the primaries of days 2 and 3 in Opsgenie, by hand.
    let (two, three) = (shifts[3].1.unwrap(), shifts[4].1.unwrap());
    w.og.insert_override(&og_id(), Span::new(day(2), day(3), email(three)));
    w.og.insert_override(&og_id(), Span::new(day(3), day(4), email(two)));
    let later = now() + TimeDelta::hours(1);
    w.set_now(later);
    let writes = (w.og_writes(), w.pd_writes());
    let listed = w.run(&["drift", "--now", &at(later), "--json"]);
    assert_eq!(listed.code, 0, "{}", listed.stderr);
    let drift = destination(&listed.json(), "og-primary")["drift"].clone();
    assert_eq!(drift.as_array().unwrap().len(), 2, "{drift}");
    assert_eq!(drift[0]["proposal"]["kind"], "swap_assignees");
    assert_eq!(drift[0]["proposal"], drift[1]["proposal"]);
    assert_eq!(
        (w.og_writes(), w.pd_writes()),
        writes,
        "drift writes nothing"
    );
    let human = w.run(&["drift", "--now", &at(later)]);
    assert!(human.stdout.contains("proposal: swap"), "{}", human.stdout);

    let before = std::fs::read_to_string(w.config_path()).unwrap();
    let accepted = w.run(&["drift", "--now", &at(later), "--accept-all"]);
    assert_eq!(accepted.code, 0, "{}{}", accepted.stdout, accepted.stderr);
    assert!(
        accepted.stdout.contains("accepted 2 edits"),
        "{}",
        accepted.stdout
    );
    let after = std::fs::read_to_string(w.config_path()).unwrap();
    let mut swapped = shifts.clone();
    swapped[3].1 = Some(three);
    swapped[4].1 = Some(two);
    let expected = w.config_value(&swapped);
    assert_eq!(serde_json::from_str::<Value>(&after).unwrap(), expected);
    // Only two shifts' assignees changed: without the assignee lists, the file is byte for byte
    // the same.
    let split = |text: &str| -> (Vec<String>, Vec<String>) {
        let mut parts = text.split("\"assignees\": ");
        let mut rest = vec![parts.next().unwrap().to_owned()];
        let mut lists = Vec::new();
        for part in parts {
            let end = part.find(']').unwrap() + 1;
            lists.push(part[..end].split_whitespace().collect());
            rest.push(part[end..].to_owned());
        }
        (rest, lists)
    };
    let ((rest_before, lists_before), (rest_after, lists_after)) = (split(&before), split(&after));
    assert_eq!(rest_before, rest_after);
    let changed = lists_before
        .iter()
        .zip(&lists_after)
        .filter(|(a, b)| a != b)
        .count();
    assert_eq!(changed, 2, "{after}");
    // The next sync adopts the person's overrides; then there is no drift and nothing to write.
    assert_eq!(w.run(&["sync", "--now", &at(later)]).code, 0);
    let quiet = w.run(&["drift", "--now", &at(later), "--json"]);
    assert_eq!(destination(&quiet.json(), "og-primary")["drift"], json!([]));
    let writes = (w.og_writes(), w.pd_writes());
    assert_eq!(w.run(&["sync", "--now", &at(later)]).code, 0);
    assert_eq!((w.og_writes(), w.pd_writes()), writes);
    assert_eq!(
        w.run(&["drift", "--now", &at(later), "--accept-all"])
            .stdout
            .lines()
            .last(),
        Some("nothing to accept")
    );
}

/// `drift --accept ID...` takes the chosen records alone, record by record: a cover by someone
/// the roster lists is written while one the schedule cannot take (its `members` leave the person
/// out) is reported with its reason (exit 1); an unknown id is a usage error with nothing written.
/// The config is rewritten through its symlink, keeping its permissions.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn drift_accept_takes_the_chosen_records_and_reports_those_it_cannot() {
    let w = World::new().await;
    let shifts = rota(-1, 7);
    let with_members = |shifts: &[ShiftSpec]| {
        let mut config = w.config_value(shifts);
        let members: Vec<String> = PEOPLE.iter().map(|p| format!("{p}@example.com")).collect();
        config["schedule"]["members"] = json!(members);
        config
    };
    // The config is a symlink to the real file, which only its owner may read.
    let real = w.dir.join("real-oncall.json");
    std::fs::write(
        &real,
        serde_json::to_string_pretty(&with_members(&shifts)).unwrap(),
    )
    .unwrap();
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&real, std::fs::Permissions::from_mode(0o600)).unwrap();
        std::os::unix::fs::symlink(&real, w.config_path()).unwrap();
    }
    #[cfg(not(unix))]
    std::fs::copy(&real, w.config_path()).unwrap();
    assert_eq!(w.run(&["sync", "--now", &at(now())]).code, 0);
    // Day 2 covered by a member, day 4 by a manager outside the roster.
    let (two, four) = (shifts[3].1.unwrap(), shifts[5].1.unwrap());
    let cover = PEOPLE.iter().find(|p| **p != two).unwrap();
    w.og.insert_override(&og_id(), Span::new(day(2), day(3), email(cover)));
    w.og.insert_override(&og_id(), Span::new(day(4), day(5), email("mgr")));
    let later = now() + TimeDelta::hours(1);
    w.set_now(later);
    let listed = w.run(&["drift", "--now", &at(later), "--json"]);
    let drift = destination(&listed.json(), "og-primary")["drift"].clone();
    let id_of = |shown: &str| {
        drift
            .as_array()
            .unwrap()
            .iter()
            .find(|d| d["shown"] == format!("{shown}@example.com"))
            .unwrap_or_else(|| panic!("{drift}"))["id"]
            .as_str()
            .unwrap()
            .to_owned()
    };
    let (member_id, manager_id) = (id_of(cover), id_of("mgr"));

    let unknown = w.run(&[
        "drift",
        "--now",
        &at(later),
        "--accept",
        "drift-0000000000000000",
    ]);
    assert_eq!(unknown.code, 2, "{}{}", unknown.stdout, unknown.stderr);
    let before = std::fs::read_to_string(&real).unwrap();

    let accepted = w.run(&[
        "drift",
        "--now",
        &at(later),
        "--json",
        "--accept",
        &member_id,
        &manager_id,
    ]);
    assert_eq!(
        accepted.code, 1,
        "one not taken: {}{}",
        accepted.stdout, accepted.stderr
    );
    let out = accepted.json();
    assert_eq!(out["accepted"], 1, "{out}");
    let refused = out["not_accepted"].as_array().unwrap();
    assert_eq!(refused.len(), 1, "{out}");
    assert_eq!(refused[0]["records"], json!([manager_id]));
    assert_eq!(refused[0]["kind"], "invalid");
    let after = std::fs::read_to_string(&real).unwrap();
    assert_ne!(after, before);
    let config: Value = serde_json::from_str(&after).unwrap();
    let day_two = &config["schedule"]["shifts"][3]["assignees"][0];
    assert_eq!(*day_two, json!(format!("{cover}@example.com")));
    assert_eq!(
        config["schedule"]["shifts"][5]["assignees"][0],
        json!(format!("{four}@example.com")),
        "the manager's cover is not taken"
    );
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        assert!(std::fs::symlink_metadata(w.config_path())
            .unwrap()
            .file_type()
            .is_symlink());
        let mode = std::fs::metadata(&real).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o600, "permissions kept");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn actuals_print_hours_per_person_as_csv_and_json() {
    let w = World::new().await;
    let start = chrono::NaiveDate::from_ymd_opt(2026, 11, 30)
        .unwrap()
        .and_hms_opt(9, 0, 0)
        .unwrap();
    let daily = Rotation::new(
        "Daily",
        RotationUnit::Daily,
        1,
        start,
        vec![
            Participant::Member(email("ann")),
            Participant::Member(email("bob")),
        ],
    );
    w.og.add_schedule(vendor_schedule("og-rota", vec![daily]));
    w.rota(&rota(0, 2));
    w.og.insert_override(
        &VendorScheduleId("og-rota".into()),
        Span::new(day(1), day(2), email("cat")),
    );
    let window = ["--from", &at(day(0)), "--to", &at(day(4))];
    let args = |extra: &[&str]| {
        let mut a = vec!["actuals", "--connection", "og", "--schedule", "og-rota"];
        a.extend(window);
        a.extend(extra);
        a.into_iter().map(str::to_owned).collect::<Vec<_>>()
    };
    let run = |extra: &[&str]| {
        let a = args(extra);
        w.run(&a.iter().map(String::as_str).collect::<Vec<_>>())
    };
    // Monday 2026-11-30 ann, Tuesday cat (the override), Wednesday ann, Thursday bob.
    let csv = run(&["--csv"]);
    assert_eq!(csv.code, 0, "{}", csv.stderr);
    assert_eq!(
        csv.stdout.lines().collect::<Vec<_>>(),
        [
            "role,member,hours,weekday_hours,weekend_hours,night_hours",
            "Daily,ann@example.com,48.00,32.00,0.00,16.00",
            "Daily,bob@example.com,24.00,16.00,0.00,8.00",
            "Daily,cat@example.com,24.00,16.00,0.00,8.00",
        ]
    );
    let json = run(&["--json", "--night", "20:00-08:00", "--weekend", "none"]).json();
    assert_eq!(json["time_zone"], "Europe/Berlin");
    assert_eq!(json["periods"].as_array().unwrap().len(), 4);
    let cat = &json["totals"][2];
    assert_eq!(
        (cat["member"].clone(), cat["night_hours"].clone()),
        (json!("cat@example.com"), json!(12.0))
    );
    let text = run(&[]);
    assert!(text.stdout.contains("48:00"), "{}", text.stdout);
    assert_eq!(run(&["--csv", "--json"]).code, 2, "one output form");
    assert_eq!(w.og_writes(), 0, "actuals only read");
    w.check_least_data();
}
