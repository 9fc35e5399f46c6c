//! `oncall probe` and `--trace-http`: the compiled example binary, run as a child process against
//! the Opsgenie, PagerDuty and JSM simulators started in this process, in every dialect setting
//! each simulator has. Each run reads first (nothing may be written), then writes to a scratch
//! schedule (which holds nothing new afterwards); every reading the probe names must be the
//! setting the simulator speaks, and the setting a variant changes must be named. The trace file
//! of a run holds every call, and no key or roster e-mail in any spelling.
//!
//! The binary is `target/<profile>/examples/oncall` (`cargo test` builds it; after a filtered
//! build run `cargo build --example oncall` first).
#![allow(clippy::unwrap_used)] // tests: a panic is the failure report

mod common;
use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::atomic::{AtomicUsize, Ordering};

use chrono::{DateTime, NaiveDate, NaiveTime, TimeDelta, TimeZone, Utc};
use oncall_sync::jsm::testkit::{self as jsm_kit, JsmDialect, JsmSimulator};
use oncall_sync::opsgenie::testkit::{self as og_kit, OpsgenieDialect, OpsgenieSimulator};
use oncall_sync::pagerduty::testkit::{CreateAnswer, PagerDutyDialect, PagerDutySimulator};
use oncall_sync::testkit::VendorSimulator;
use oncall_sync::trace::HttpExchange;
use oncall_sync::{
    Email, Member, Override, Participant, Restriction, Rotation, RotationUnit, Span,
    VendorSchedule, VendorScheduleId,
};
use serde_json::{json, Value};

const PEOPLE: [&str; 5] = ["ann", "bob", "cat", "dan", "eve"];

/// The vendor schedule the config's one destination exports to: never a scratch schedule.
const LIVE: &str = "LIVE";

fn email(name: &str) -> Email {
    Email::parse(&format!("{name}@example.com")).unwrap()
}

fn members() -> Vec<Member> {
    PEOPLE.iter().map(|n| Member::new(email(n), *n)).collect()
}

fn rfc3339(t: DateTime<Utc>) -> String {
    t.to_rfc3339_opts(chrono::SecondsFormat::Secs, true)
}

fn local(y: i32, m: u32, d: u32, h: u32) -> chrono::NaiveDateTime {
    NaiveDate::from_ymd_opt(y, m, d)
        .unwrap()
        .and_hms_opt(h, 0, 0)
        .unwrap()
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

    /// `point -> reading` of every settled finding, with the finding for messages.
    fn readings(&self) -> Vec<(String, String, String)> {
        self.json()["findings"]
            .as_array()
            .unwrap()
            .iter()
            .filter_map(|f| {
                Some((
                    f["point"].as_str()?.to_owned(),
                    f["reading"].as_str()?.to_owned(),
                    f["detail"].as_str().unwrap_or("").to_owned(),
                ))
            })
            .collect()
    }

    fn reading(&self, point: &str) -> Option<String> {
        self.readings()
            .into_iter()
            .find(|(p, _, _)| p == point)
            .map(|(_, r, _)| r)
    }
}

/// A folder with the config, the environment the CLI gets, and the secrets it must not leak.
struct Folder {
    dir: PathBuf,
    env: Vec<(&'static str, String)>,
    secrets: Vec<String>,
}

impl Folder {
    fn new(connection: Value, env: Vec<(&'static str, String)>) -> Folder {
        static NEXT: AtomicUsize = AtomicUsize::new(0);
        let dir = std::env::temp_dir().join(format!(
            "oncall-cli-probe-{}-{}",
            std::process::id(),
            NEXT.fetch_add(1, Ordering::Relaxed)
        ));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        let id = connection["id"].clone();
        let config = json!({
            "connections": [connection],
            "schedule": {"id": "platform", "time_zone": "UTC", "roles": ["primary"],
                         "shifts": [{"start": "2030-01-01T09:00:00Z", "end": "2030-01-02T09:00:00Z",
                                     "assignees": ["ann@example.com"]}]},
            "destinations": [{"id": "live", "connection": id, "schedule_id": LIVE, "role": "primary"}],
        });
        std::fs::write(
            dir.join("oncall.json"),
            serde_json::to_string_pretty(&config).unwrap(),
        )
        .unwrap();
        let secrets = env
            .iter()
            .filter(|(k, _)| k.ends_with("KEY") || k.ends_with("TOKEN"))
            .map(|(_, v)| v.clone())
            .collect();
        Folder { dir, env, secrets }
    }

    fn path(&self, name: &str) -> PathBuf {
        self.dir.join(name)
    }

    fn set_env(&mut self, name: &'static str, value: &str) {
        self.env.retain(|(k, _)| *k != name);
        self.env.push((name, value.to_owned()));
        if (name.ends_with("KEY") || name.ends_with("TOKEN")) && !value.is_empty() {
            self.secrets.push(value.to_owned());
        }
    }

    /// Runs `oncall` with `args` and `--config`, only the configured variables in its
    /// environment; no secret may show on its output or in the folder.
    fn run(&self, args: &[&str]) -> Run {
        let mut command = Command::new(common::example_binary("oncall"));
        command
            .args(args)
            .arg("--config")
            .arg(self.path("oncall.json"))
            .env_clear();
        for (k, v) in &self.env {
            command.env(k, v);
        }
        let output = command.output().unwrap();
        let run = Run {
            code: output.status.code().unwrap_or(-1),
            stdout: String::from_utf8_lossy(&output.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&output.stderr).into_owned(),
        };
        for secret in &self.secrets {
            assert!(!run.stdout.contains(secret.as_str()), "{}", run.stdout);
            assert!(!run.stderr.contains(secret.as_str()), "{}", run.stderr);
        }
        for entry in std::fs::read_dir(&self.dir).unwrap() {
            let text = std::fs::read(entry.unwrap().path()).unwrap_or_default();
            let text = String::from_utf8_lossy(&text);
            for secret in &self.secrets {
                assert!(!text.contains(secret.as_str()), "a secret in the folder");
            }
        }
        run
    }
}

impl Drop for Folder {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// Overrides that have not ended at `now`: what a probe must not leave behind.
fn live_overrides(overrides: Vec<Override>, now: DateTime<Utc>) -> Vec<Span> {
    overrides
        .into_iter()
        .filter(|o| o.span.end > now)
        .map(|o| o.span)
        .collect()
}

/// Every reading the probe named for a point the dialect has a switch for is the dialect's
/// setting; returns the points so matched.
fn check_named(
    vendor: &str,
    variant: &str,
    run: &Run,
    speaks: impl Fn(&str) -> Option<&'static str>,
) -> BTreeSet<String> {
    assert_eq!(
        run.code, 0,
        "{vendor} {variant}: {}\n{}",
        run.stdout, run.stderr
    );
    let mut matched = BTreeSet::new();
    for (point, reading, detail) in run.readings() {
        if let Some(setting) = speaks(&point) {
            assert_eq!(
                reading, setting,
                "{vendor} {variant}: {point} read as {reading} ({detail})"
            );
            matched.insert(point);
        }
    }
    matched
}

/// The switch a variant (`switch=setting`, or `a=x+b=y`) changes from the default.
fn switches_of(variant: &str) -> Vec<&str> {
    variant
        .split('+')
        .filter_map(|part| part.split_once('=').map(|(switch, _)| switch))
        .collect()
}

// ---------------------------------------------------------------------------------------------
// Opsgenie

/// 2024-03-20 12:00 UTC: a year around it spans Berlin's changes of offset.
fn og_now() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2024, 3, 20, 12, 0, 0).unwrap()
}

/// Points an Opsgenie probe cannot settle without making the vendor fail or throttle it (a
/// token bucket's limits are only learnt by exceeding them, which the adaptive pace does in use).
const OG_UNPROBED: [&str; 3] = ["lost_answer_writes", "throttle", "bucket"];

/// A Berlin schedule of two daily rotations with an override that ended two days ago (read
/// only), and a scratch schedule with one.
async fn og_account(dialect: OpsgenieDialect) -> OpsgenieSimulator {
    let sim = OpsgenieSimulator::start_with(og_now(), dialect).await;
    let daily = |name: &str, a: &str, b: &str| {
        Rotation::new(
            name,
            RotationUnit::Daily,
            1,
            local(2024, 1, 1, 9),
            vec![Participant::Member(email(a)), Participant::Member(email(b))],
        )
    };
    for (id, zone) in [
        ("VS", chrono_tz::Europe::Berlin),
        ("SCRATCH", chrono_tz::UTC),
    ] {
        sim.add_schedule(VendorSchedule {
            id: VendorScheduleId(id.into()),
            name: id.into(),
            zone,
            members: members(),
            rotations: vec![daily("first", "ann", "bob"), daily("second", "cat", "dan")],
        });
    }
    let ended = og_now() - TimeDelta::days(2);
    sim.insert_override(
        &VendorScheduleId("VS".into()),
        Span::new(ended, ended + TimeDelta::hours(2), email("eve")),
    );
    sim
}

fn og_folder(sim: &OpsgenieSimulator, key: &str) -> Folder {
    Folder::new(
        json!({"id": "og", "provider": "opsgenie", "api_key_env": "OG_KEY", "base_url": sim.uri()}),
        vec![("OG_KEY", key.to_owned())],
    )
}

#[tokio::test]
async fn opsgenie_the_probe_names_every_dialect() {
    let now = rfc3339(og_now());
    let scratch = VendorScheduleId("SCRATCH".into());
    let mut matched = 0;
    for (variant, dialect) in OpsgenieDialect::variants() {
        let sim = og_account(dialect).await;
        let folder = og_folder(&sim, og_kit::READ_WRITE_KEY);
        let reads = folder.run(&[
            "probe",
            "--connection",
            "og",
            "--schedule",
            "VS",
            "--now",
            &now,
            "--json",
        ]);
        let mut named = check_named("opsgenie", &variant, &reads, |p| dialect.reading(p));
        assert!(
            sim.requests().iter().all(|r| r.method == "GET"),
            "{variant}: a read-only probe wrote"
        );
        assert_eq!(reads.reading("key_rights").as_deref(), Some("read"));
        let before = live_overrides(sim.overrides(&scratch), sim.now());
        let writes = folder.run(&[
            "probe",
            "--connection",
            "og",
            "--schedule",
            "VS",
            "--write-to",
            "SCRATCH",
            "--now",
            &now,
            "--json",
        ]);
        named.extend(check_named("opsgenie", &variant, &writes, |p| {
            dialect.reading(p)
        }));
        assert_eq!(
            writes.reading("key_rights").as_deref(),
            Some("read_write"),
            "{variant}"
        );
        assert!(writes.json()["write_calls"].as_u64().unwrap() > 0);
        assert_eq!(writes.json()["left_behind"], json!([]), "{variant}");
        assert_eq!(
            live_overrides(sim.overrides(&scratch), sim.now()),
            before,
            "{variant}: the scratch schedule holds something new"
        );
        assert!(
            sim.overrides(&VendorScheduleId("VS".into())).len() == 1,
            "{variant}: only the scratch schedule is written to"
        );
        // Every switch a probe reaches is named, the one this variant changes included.
        for switch in OpsgenieDialect::SWITCHES
            .iter()
            .filter(|s| !OG_UNPROBED.contains(s))
        {
            let lagging = variant == "listing_lag=lagged" && *switch == "running_overrides";
            assert!(
                named.contains(*switch) || lagging,
                "{variant}: {switch} not named:\n{}\n{}",
                reads.stdout,
                writes.stdout
            );
        }
        for switch in switches_of(&variant) {
            assert!(
                named.contains(switch) || OG_UNPROBED.contains(&switch),
                "{variant}: the setting changed is not named:\n{}",
                writes.stdout
            );
        }
        matched += named.len();
    }
    eprintln!(
        "{matched} points named as their dialect over {} Opsgenie settings",
        OpsgenieDialect::variants().len()
    );
}

// ---------------------------------------------------------------------------------------------
// PagerDuty

fn pd_now() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2024, 1, 10, 12, 0, 0).unwrap()
}

/// Points a PagerDuty probe cannot settle without a lost answer, a rate limit (a fixed one, or a
/// token bucket's) or a v3 schedule.
const PD_UNPROBED: [&str; 4] = ["lost_writes", "rate_limit", "v3_answer", "bucket"];

/// Two overlapping layers in Berlin (DST), from before the probe's year, with an override
/// running now; a scratch schedule.
async fn pd_account(dialect: PagerDutyDialect) -> PagerDutySimulator {
    let sim = PagerDutySimulator::start_with(pd_now(), dialect).await;
    // Time passes as the probe reads (a lagging listing catches up).
    sim.set_clock_step(TimeDelta::seconds(1));
    let m = |n: &str| Participant::Member(email(n));
    let mut office = Rotation::new(
        "Office hours",
        RotationUnit::Weekly,
        1,
        local(2023, 12, 4, 9),
        vec![m("dan"), m("eve")],
    );
    office.restrictions =
        vec![Restriction::daily(NaiveTime::from_hms_opt(9, 0, 0).unwrap(), 8 * 3600).unwrap()];
    let base = Rotation::new(
        "Base",
        RotationUnit::Daily,
        1,
        local(2023, 12, 1, 9),
        vec![m("ann"), m("bob"), m("cat")],
    );
    let layers = VendorScheduleId("PLAYERS".into());
    sim.add_schedule(VendorSchedule {
        id: layers.clone(),
        name: "Layers".into(),
        zone: chrono_tz::Europe::Berlin,
        members: members(),
        rotations: vec![office, base],
    });
    sim.add_schedule(VendorSchedule {
        id: VendorScheduleId("PSCRATCH".into()),
        name: "Scratch".into(),
        zone: chrono_tz::UTC,
        members: members(),
        rotations: vec![],
    });
    sim.insert_override(
        &layers,
        Span::new(
            pd_now() - TimeDelta::hours(2),
            pd_now() + TimeDelta::hours(20),
            email("eve"),
        ),
    );
    sim
}

fn pd_folder(sim: &PagerDutySimulator, key: &str) -> Folder {
    Folder::new(
        json!({"id": "pd", "provider": "pagerduty", "api_key_env": "PD_KEY", "base_url": sim.uri()}),
        vec![("PD_KEY", key.to_owned())],
    )
}

#[tokio::test]
async fn pagerduty_the_probe_names_every_dialect() {
    let scratch = VendorScheduleId("PSCRATCH".into());
    let mut matched = 0;
    for (variant, dialect) in PagerDutyDialect::variants() {
        let sim = pd_account(dialect).await;
        let folder = pd_folder(&sim, PagerDutySimulator::READ_WRITE_KEY);
        // The wrapped bare create answer leaves refused items out, and their words with them.
        let speaks = |p: &str| {
            let hidden = p == "error_texts" && dialect.create_answer == CreateAnswer::WrappedBare;
            (!hidden).then(|| dialect.setting(p)).flatten()
        };
        let reads = folder.run(&[
            "probe",
            "--connection",
            "pd",
            "--schedule",
            "PLAYERS",
            "--now",
            &rfc3339(sim.now()),
            "--json",
        ]);
        let mut named = check_named("pagerduty", variant, &reads, speaks);
        assert!(
            sim.requests().iter().all(|r| r.method == "GET"),
            "{variant}: a read-only probe wrote"
        );
        assert_eq!(sim.write_calls(), 0, "{variant}");
        assert_eq!(reads.reading("key_rights").as_deref(), Some("read"));
        let before = live_overrides(sim.overrides(&scratch), sim.now());
        let writes = folder.run(&[
            "probe",
            "--connection",
            "pd",
            "--write-to",
            "PSCRATCH",
            "--now",
            &rfc3339(sim.now()),
            "--json",
        ]);
        named.extend(check_named("pagerduty", variant, &writes, speaks));
        assert_eq!(
            writes.reading("key_rights").as_deref(),
            Some("read_write"),
            "{variant}"
        );
        assert_eq!(writes.reading("roster").as_deref(), Some("resolves"));
        assert_eq!(writes.json()["left_behind"], json!([]), "{variant}");
        assert_eq!(
            live_overrides(sim.overrides(&scratch), sim.now()),
            before,
            "{variant}: the scratch schedule holds something new"
        );
        for switch in PagerDutyDialect::SWITCHES
            .iter()
            .filter(|s| !PD_UNPROBED.contains(s))
        {
            let hidden = speaks(switch).is_none();
            assert!(
                named.contains(*switch) || hidden,
                "{variant}: {switch} not named:\n{}\n{}",
                reads.stdout,
                writes.stdout
            );
        }
        for switch in switches_of(variant) {
            assert!(
                named.contains(switch) || PD_UNPROBED.contains(&switch),
                "{variant}: the setting changed is not named:\n{}",
                writes.stdout
            );
        }
        matched += named.len();
    }
    eprintln!(
        "{matched} points named as their dialect over {} PagerDuty settings",
        PagerDutyDialect::variants().len()
    );
}

// ---------------------------------------------------------------------------------------------
// JSM Operations

/// 2024-01-04 12:00 UTC.
fn jsm_now() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2024, 1, 4, 12, 0, 0).unwrap()
}

fn daily_utc(id: &str) -> VendorSchedule {
    VendorSchedule {
        id: VendorScheduleId(id.into()),
        name: id.into(),
        zone: chrono_tz::UTC,
        members: members(),
        rotations: vec![Rotation::new(
            "daily",
            RotationUnit::Daily,
            1,
            local(2024, 1, 1, 9),
            vec![
                Participant::Member(email("ann")),
                Participant::Member(email("bob")),
            ],
        )],
    }
}

/// A schedule with an ended and a future override, a scratch schedule, and enough others to
/// fill a page of 50.
async fn jsm_account(dialect: JsmDialect) -> JsmSimulator {
    let sim = JsmSimulator::start_with(jsm_now(), dialect).await;
    for id in ["VS", "SCRATCH"] {
        sim.add_schedule(daily_utc(id));
    }
    for i in 0..50 {
        sim.add_schedule(daily_utc(&format!("S{i:02}")));
    }
    let vs = VendorScheduleId("VS".into());
    for (from, to) in [(-2, -1), (1, 2)] {
        sim.insert_override(
            &vs,
            Span::new(
                jsm_now() + TimeDelta::days(from),
                jsm_now() + TimeDelta::days(to),
                email("bob"),
            ),
        );
    }
    sim
}

fn jsm_folder(sim: &JsmSimulator, token: &str) -> Folder {
    Folder::new(
        json!({"id": "jsm", "provider": "jsm", "site": sim.uri(), "base_url": sim.uri(),
               "email_env": "JSM_EMAIL", "api_token_env": "JSM_TOKEN"}),
        vec![
            ("JSM_EMAIL", jsm_kit::ACCOUNT_EMAIL.to_owned()),
            ("JSM_TOKEN", token.to_owned()),
        ],
    )
}

#[tokio::test]
async fn jsm_the_probe_names_every_dialect() {
    let now = rfc3339(jsm_now());
    let scratch = VendorScheduleId("SCRATCH".into());
    let mut matched = 0;
    for (variant, dialect) in JsmDialect::variants() {
        let sim = jsm_account(dialect).await;
        let folder = jsm_folder(&sim, jsm_kit::READ_WRITE_TOKEN);
        let reads = folder.run(&[
            "probe",
            "--connection",
            "jsm",
            "--schedule",
            "VS",
            "--now",
            &now,
            "--json",
        ]);
        let mut named = check_named("jsm", variant, &reads, |p| dialect.reading(p));
        assert_eq!(sim.write_calls(), 0, "{variant}: a read-only probe wrote");
        assert!(
            sim.requests().iter().all(|r| r.method == "GET"),
            "{variant}"
        );
        assert_eq!(reads.reading("key_rights").as_deref(), Some("read"));
        let before = live_overrides(sim.overrides(&scratch), sim.now());
        let writes = folder.run(&[
            "probe",
            "--connection",
            "jsm",
            "--schedule",
            "VS",
            "--write-to",
            "SCRATCH",
            "--now",
            &now,
            "--json",
        ]);
        // With creates that must name rotations, the update body cannot be told apart.
        let speaks = |p: &str| {
            let hidden = p == "update_body"
                && dialect.rotation_ids_omitted == jsm_kit::RotationIdsOmitted::Refused;
            (!hidden).then(|| dialect.reading(p)).flatten()
        };
        named.extend(check_named("jsm", variant, &writes, speaks));
        assert_eq!(
            writes.reading("key_rights").as_deref(),
            Some("read_write"),
            "{variant}"
        );
        assert_eq!(writes.json()["left_behind"], json!([]), "{variant}");
        assert_eq!(
            live_overrides(sim.overrides(&scratch), sim.now()),
            before,
            "{variant}: the scratch schedule holds something new"
        );
        // What the probe can settle with a read-write token: the dialect's own switches, but
        // a 403's body (`forbidden_body`, read-only tokens) and limits it does not meet.
        for switch in JsmDialect::SWITCHES
            .iter()
            .filter(|s| !["forbidden_body", "rate_limit"].contains(s))
        {
            let past_hidden = *switch == "past_overrides"
                && dialect.past_overrides != jsm_kit::PastOverrides::All;
            assert!(
                named.contains(*switch) || speaks(switch).is_none() || past_hidden,
                "{variant}: {switch} not named:\n{}\n{}",
                reads.stdout,
                writes.stdout
            );
        }
        matched += named.len();
    }
    eprintln!(
        "{matched} points named as their dialect over {} JSM settings",
        JsmDialect::variants().len()
    );
}

// ---------------------------------------------------------------------------------------------
// Errors and exit codes

/// What a scratch schedule holds, read from its simulator.
type Held<'a> = Box<dyn Fn() -> Vec<Span> + 'a>;

#[tokio::test]
async fn a_read_only_key_with_write_to_is_a_typed_error_and_nothing_is_written() {
    let og = og_account(OpsgenieDialect::default()).await;
    let pd = pd_account(PagerDutyDialect::default()).await;
    let jsm = jsm_account(JsmDialect::default()).await;
    let cases: Vec<(Folder, &str, &str, Held<'_>)> = vec![
        (
            og_folder(&og, og_kit::READ_ONLY_KEY),
            "og",
            "SCRATCH",
            Box::new(|| {
                og.overrides(&VendorScheduleId("SCRATCH".into()))
                    .into_iter()
                    .map(|o| o.span)
                    .collect()
            }),
        ),
        (
            pd_folder(&pd, PagerDutySimulator::READ_ONLY_KEY),
            "pd",
            "PSCRATCH",
            Box::new(|| {
                pd.overrides(&VendorScheduleId("PSCRATCH".into()))
                    .into_iter()
                    .map(|o| o.span)
                    .collect()
            }),
        ),
        (
            jsm_folder(&jsm, jsm_kit::READ_ONLY_TOKEN),
            "jsm",
            "SCRATCH",
            Box::new(|| {
                jsm.overrides(&VendorScheduleId("SCRATCH".into()))
                    .into_iter()
                    .map(|o| o.span)
                    .collect()
            }),
        ),
    ];
    for (folder, connection, scratch, held) in cases {
        let before = held();
        let now = match connection {
            "og" => og_now(),
            "pd" => pd.now(),
            _ => jsm_now(),
        };
        let args = [
            "probe",
            "--connection",
            connection,
            "--write-to",
            scratch,
            "--now",
            &rfc3339(now),
        ];
        let text = folder.run(&args);
        assert_eq!(
            text.code, 1,
            "{connection}: {}\n{}",
            text.stdout, text.stderr
        );
        assert!(
            text.stderr.contains("may not write to schedule")
                && text
                    .stderr
                    .contains("--write-to needs a key with write access"),
            "{connection}: {}",
            text.stderr
        );
        // What the reads found is still printed.
        assert!(text.stdout.contains("key_rights"), "{}", text.stdout);
        let mut json_args = args.to_vec();
        json_args.push("--json");
        let run = folder.run(&json_args);
        assert_eq!(run.code, 1, "{connection}: {}", run.stderr);
        let report = run.json();
        assert_eq!(report["error"]["kind"], "read_only_key", "{report}");
        assert_eq!(run.reading("key_rights").as_deref(), Some("read_only"));
        assert_eq!(held(), before, "{connection}: nothing was written");
    }
}

#[tokio::test]
async fn usage_errors_send_nothing_and_a_missing_schedule_writes_nothing() {
    let sim = og_account(OpsgenieDialect::default()).await;
    let mut folder = og_folder(&sim, og_kit::READ_WRITE_KEY);
    let now = rfc3339(og_now());
    // An unknown connection, a scratch schedule a destination exports to: exit 2, no request.
    for (args, says) in [
        (
            vec!["probe", "--connection", "nope", "--now", &now],
            "--connection nope: no such connection",
        ),
        (
            vec![
                "probe",
                "--connection",
                "og",
                "--write-to",
                LIVE,
                "--now",
                &now,
            ],
            "destination live exports to this schedule",
        ),
    ] {
        let run = folder.run(&args);
        assert_eq!(run.code, 2, "{args:?}: {}", run.stderr);
        assert!(run.stderr.contains(says), "{}", run.stderr);
    }
    assert!(sim.requests().is_empty(), "{:?}", sim.requests());
    // A scratch schedule that does not exist: read, refused (exit 1), nothing written.
    let run = folder.run(&[
        "probe",
        "--connection",
        "og",
        "--write-to",
        "GONE",
        "--now",
        &now,
    ]);
    assert_eq!(run.code, 1, "{}", run.stderr);
    assert!(
        run.stderr.contains("--write-to GONE: no such schedule"),
        "{}",
        run.stderr
    );
    assert!(sim.requests().iter().all(|r| r.method == "GET"));
    // No key in the environment: a config error (exit 2), nothing sent.
    let sent = sim.requests().len();
    folder.set_env("OG_KEY", "");
    let run = folder.run(&["probe", "--connection", "og", "--now", &now]);
    assert_eq!(run.code, 2, "{}", run.stderr);
    assert!(run.stderr.contains("OG_KEY"), "{}", run.stderr);
    assert_eq!(sim.requests().len(), sent);
    // Text output: a header, then one line per point.
    folder.set_env("OG_KEY", og_kit::READ_WRITE_KEY);
    let run = folder.run(&[
        "probe",
        "--connection",
        "og",
        "--schedule",
        "VS",
        "--now",
        &now,
    ]);
    assert_eq!(run.code, 0, "{}", run.stderr);
    assert!(
        run.stdout
            .starts_with("connection og, schedule VS, reads only, at 2024-03-20T12:00:00Z"),
        "{}",
        run.stdout
    );
    assert!(run.stdout.contains("opsgenie probe:"), "{}", run.stdout);
    assert!(
        run.stdout.contains("  handoffs [schedule VS]: wall_clock"),
        "{}",
        run.stdout
    );
}

// ---------------------------------------------------------------------------------------------
// --trace-http

/// The exchanges of a trace file, after checking it is the owner's alone and holds no secret
/// and no roster e-mail, in any spelling.
fn read_trace(path: &Path, secrets: &[String]) -> Vec<HttpExchange> {
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(path).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o600, "{}", path.display());
    }
    let text = std::fs::read_to_string(path).unwrap();
    let lower = text.to_lowercase();
    for secret in secrets {
        for spelling in spellings(secret) {
            assert!(
                !text.contains(&spelling),
                "{spelling} in {}",
                path.display()
            );
        }
    }
    for person in PEOPLE {
        for spelling in [
            format!("{person}@example.com"),
            format!("{person}%40example.com"),
        ] {
            assert!(
                !lower.contains(&spelling),
                "{spelling} in {}",
                path.display()
            );
        }
    }
    assert!(!lower.contains("example.com"), "an e-mail domain in {text}");
    text.lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("{e}: {l}")))
        .collect()
}

/// A secret as it may be echoed (plain, percent-encoded, JSON-escaped), and as base64 in a JSM
/// Basic login.
fn spellings(secret: &str) -> Vec<String> {
    let mut all = echoes(secret);
    all.push(base64(&format!("{}:{secret}", jsm_kit::ACCOUNT_EMAIL)));
    all
}

/// A secret as a proxy may echo it: plain, percent-encoded, JSON-escaped.
fn echoes(secret: &str) -> Vec<String> {
    let percent: String = secret
        .bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                (b as char).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect();
    vec![secret.to_owned(), percent, secret.replace('/', "\\/")]
}

fn base64(text: &str) -> String {
    const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let bytes = text.as_bytes();
    let mut out = String::new();
    for chunk in bytes.chunks(3) {
        let n = chunk
            .iter()
            .enumerate()
            .fold(0u32, |n, (i, b)| n | u32::from(*b) << (16 - 8 * i));
        for i in 0..4 {
            if i <= chunk.len() {
                out.push(ALPHABET[(n >> (18 - 6 * i) & 63) as usize] as char);
            } else {
                out.push('=');
            }
        }
    }
    out
}

#[test]
fn base64_spells_as_the_rfc_says() {
    assert_eq!(base64("f"), "Zg==");
    assert_eq!(base64("fo"), "Zm8=");
    assert_eq!(base64("foobar"), "Zm9vYmFy");
}

#[tokio::test]
async fn every_command_takes_trace_http_and_the_file_has_every_call_without_secrets() {
    let og = og_account(OpsgenieDialect::default()).await;
    og.add_schedule(daily_utc(LIVE));
    let folder = og_folder(&og, og_kit::READ_WRITE_KEY);
    let now = rfc3339(og_now());
    let state = folder.path("state.json").display().to_string();
    let plan = folder.path("plan.json").display().to_string();
    let from = rfc3339(og_now() - TimeDelta::days(3));
    let to = rfc3339(og_now() + TimeDelta::days(3));
    let runs: Vec<(&str, Vec<&str>)> = vec![
        ("schedules", vec!["schedules", "--connection", "og"]),
        (
            "import",
            vec![
                "import",
                "--connection",
                "og",
                "--schedule",
                "VS",
                "--from",
                &from,
                "--to",
                &to,
            ],
        ),
        (
            "plan",
            vec!["plan", "--state", &state, "--now", &now, "--out", &plan],
        ),
        (
            "apply",
            vec!["apply", "--state", &state, "--plan", &plan, "--now", &now],
        ),
        ("sync", vec!["sync", "--state", &state, "--now", &now]),
        ("drift", vec!["drift", "--state", &state, "--now", &now]),
        ("status", vec!["status", "--state", &state, "--now", &now]),
        (
            "actuals",
            vec![
                "actuals",
                "--connection",
                "og",
                "--schedule",
                "VS",
                "--from",
                &from,
                "--to",
                &to,
            ],
        ),
        (
            "retire",
            vec![
                "retire",
                "--state",
                &state,
                "--destination",
                "live",
                "--dry-run",
                "--now",
                &now,
            ],
        ),
        (
            "probe",
            vec![
                "probe",
                "--connection",
                "og",
                "--schedule",
                "VS",
                "--write-to",
                "SCRATCH",
                "--now",
                &now,
            ],
        ),
    ];
    let mut recorded = 0;
    for (name, args) in runs {
        let trace = folder.path(&format!("{name}.jsonl"));
        let sent = og.requests().len();
        let mut args = args.clone();
        let trace_arg = trace.display().to_string();
        args.extend(["--trace-http", &trace_arg]);
        let run = folder.run(&args);
        assert!(run.code == 0, "{name}: {}\n{}", run.stdout, run.stderr);
        let exchanges = read_trace(&trace, &folder.secrets);
        let calls = &og.requests()[sent..];
        assert_eq!(exchanges.len(), calls.len(), "{name}: one line per call");
        for (e, call) in exchanges.iter().zip(calls) {
            assert_eq!(e.method, call.method, "{name}");
            assert!(
                e.url.contains(&call.path),
                "{name}: {} for {}",
                e.url,
                call.path
            );
            assert_eq!(e.status, call.status, "{name}");
            let auth = e
                .request_headers
                .iter()
                .find(|(n, _)| n.eq_ignore_ascii_case("authorization"));
            assert_eq!(auth.map(|(_, v)| v.as_str()), Some("***"), "{name}");
        }
        if name == "status" {
            assert!(exchanges.is_empty(), "status calls no vendor");
        }
        recorded += exchanges.len();
    }
    let probe = std::fs::read_to_string(folder.path("probe.jsonl")).unwrap();
    assert!(
        probe.contains("\"method\":\"POST\""),
        "the probe's writes are traced"
    );
    // People are there, as placeholders, where the answers named them.
    assert!(probe.contains("person-1@redacted.invalid"), "{probe}");
    // migrate takes it too (here refused for its unknown connection, before any call).
    let trace = folder.path("migrate.jsonl").display().to_string();
    let run = folder.run(&[
        "migrate",
        "--state",
        &state,
        "--destination",
        "live",
        "--to-connection",
        "nope",
        "--dry-run",
        "--now",
        &now,
        "--trace-http",
        &trace,
    ]);
    assert_eq!(run.code, 2, "{}", run.stderr);
    assert!(run.stderr.contains("nope"), "{}", run.stderr);
    assert!(
        !run.stderr.contains("unexpected argument"),
        "{}",
        run.stderr
    );
    eprintln!("{recorded} exchanges traced over 10 commands");
}

/// PagerDuty and JSM: the probe's trace holds every call, no key, token, Basic login or e-mail.
#[tokio::test]
async fn probe_traces_hold_no_secret_on_pagerduty_and_jsm() {
    let pd = pd_account(PagerDutyDialect::default()).await;
    let folder = pd_folder(&pd, PagerDutySimulator::READ_WRITE_KEY);
    let trace = folder.path("pd.jsonl");
    let run = folder.run(&[
        "probe",
        "--connection",
        "pd",
        "--write-to",
        "PSCRATCH",
        "--now",
        &rfc3339(pd.now()),
        "--trace-http",
        &trace.display().to_string(),
    ]);
    assert_eq!(run.code, 0, "{}", run.stderr);
    let exchanges = read_trace(&trace, &folder.secrets);
    assert_eq!(exchanges.len(), pd.requests().len());
    assert!(exchanges.iter().any(|e| e.url.contains("redacted.invalid")
        || e.response_body
            .as_deref()
            .is_some_and(|b| b.contains("redacted.invalid"))));

    let jsm = jsm_account(JsmDialect::default()).await;
    let folder = jsm_folder(&jsm, jsm_kit::READ_WRITE_TOKEN);
    let trace = folder.path("jsm.jsonl");
    let run = folder.run(&[
        "probe",
        "--connection",
        "jsm",
        "--schedule",
        "VS",
        "--write-to",
        "SCRATCH",
        "--now",
        &rfc3339(jsm_now()),
        "--trace-http",
        &trace.display().to_string(),
    ]);
    assert_eq!(run.code, 0, "{}", run.stderr);
    let exchanges = read_trace(&trace, &folder.secrets);
    assert_eq!(exchanges.len(), jsm.requests().len());
    let text = std::fs::read_to_string(&trace).unwrap();
    assert!(!text.contains(jsm_kit::ACCOUNT_EMAIL), "the login's e-mail");
}

/// An account (or a proxy in front of it) that echoes the credentials it is sent, in every
/// spelling, with a roster e-mail, in its answer's body and headers.
struct Echo;

impl wiremock::Respond for Echo {
    fn respond(&self, request: &wiremock::Request) -> wiremock::ResponseTemplate {
        let auth = request
            .headers
            .get("authorization")
            .and_then(|v| v.to_str().ok())
            .unwrap_or("");
        let key = auth.rsplit([' ', '=']).next().unwrap_or("");
        let spelled = echoes(key).join(" | ");
        let body = json!({
            "message": format!("key {auth} refused: {spelled}, owner ann@example.com (bob%40example.com)"),
            "took": 0,
            "requestId": "echo",
        });
        wiremock::ResponseTemplate::new(401)
            .insert_header("X-Echo", format!("{key} ann@example.com"))
            .set_body_json(body)
    }
}

#[tokio::test]
async fn keys_and_emails_echoed_back_in_any_spelling_never_reach_the_trace() {
    use wiremock::{matchers::any, Mock, MockServer};
    let server = MockServer::start().await;
    Mock::given(any()).respond_with(Echo).mount(&server).await;
    for (id, provider, key) in [
        ("og", "opsgenie", "s3cr3t/GenieKey+echo-5d41402a"),
        ("pd", "pagerduty", "u+PD/t0ken_echo-77aa"),
    ] {
        let folder = Folder::new(
            json!({"id": id, "provider": provider, "api_key_env": "THE_KEY", "base_url": server.uri()}),
            vec![("THE_KEY", key.to_owned())],
        );
        let trace = folder.path("trace.jsonl");
        for args in [
            vec!["schedules", "--connection", id],
            vec!["probe", "--connection", id, "--now", "2024-01-10T12:00:00Z"],
        ] {
            let mut args = args.clone();
            let path = trace.display().to_string();
            args.extend(["--trace-http", &path]);
            let run = folder.run(&args);
            assert_eq!(run.code, 1, "{id} {args:?}: {}\n{}", run.stdout, run.stderr);
            let exchanges = read_trace(&trace, &folder.secrets);
            assert!(!exchanges.is_empty(), "{id}: the refused call is traced");
            let text = std::fs::read_to_string(&trace).unwrap();
            // The echo is there, scrubbed: the key as ***, the owner as a placeholder.
            assert!(text.contains("refused"), "{text}");
            assert!(text.contains("***"), "{text}");
            assert!(text.contains("person-1@redacted.invalid"), "{text}");
            assert!(text.contains("person-2%40redacted.invalid"), "{text}");
        }
    }
}
