//! The `oncall` CLI (the example binary, run as a child process) against both simulators through
//! the recording proxy: `schedules`, `import`, `plan`, `sync` (a first export that cuts and deletes
//! people's overrides, then a swap), `retire`, a bad key and a read-only key; every exchange
//! checked against the vendor's official spec.

use std::path::PathBuf;
use std::process::Command;

use chrono::{DateTime, NaiveDate, TimeDelta, TimeZone, Utc};
use chrono_tz::Europe::Berlin;
use oncall_sync::opsgenie::testkit::{self as og_kit, OpsgenieSimulator};
use oncall_sync::pagerduty::testkit::PagerDutySimulator;
use oncall_sync::testkit::VendorSimulator;
use oncall_sync::{
    Email, Member, Participant, Rotation, RotationUnit, Span, VendorSchedule, VendorScheduleId,
};
use serde_json::{json, Value};

use crate::common::example_binary;
use crate::spec_support::{assert_conforms, Recorder, Suite, Vendor};

const PEOPLE: [&str; 3] = ["ann", "bob", "cat"];
const OG_SCHEDULE: &str = "og-cli";
const PD_SCHEDULE: &str = "PCLI001";

fn email(name: &str) -> Email {
    Email::parse(&format!("{name}@example.com")).unwrap()
}

/// Day `n` at 09:00 in Berlin (08:00 UTC in December 2026).
fn day(n: i64) -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 11, 30, 8, 0, 0).unwrap() + TimeDelta::days(n)
}

fn now() -> DateTime<Utc> {
    day(1) + TimeDelta::hours(4)
}

fn at(t: DateTime<Utc>) -> String {
    t.to_rfc3339_opts(chrono::SecondsFormat::Secs, true)
}

fn vendor_schedule(id: &str) -> VendorSchedule {
    let start = NaiveDate::from_ymd_opt(2026, 11, 2)
        .unwrap()
        .and_hms_opt(9, 0, 0)
        .unwrap();
    VendorSchedule {
        id: VendorScheduleId(id.into()),
        name: format!("Schedule {id}"),
        zone: Berlin,
        members: PEOPLE.iter().map(|p| Member::new(email(p), *p)).collect(),
        rotations: vec![Rotation::new(
            "primary",
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

/// The config: both vendors through their recorders, daily shifts from day 1 to day 8, the
/// primary exported to Opsgenie and the secondary to PagerDuty; `swap` trades days 5 and 6.
fn config(og: &Recorder, pd: &Recorder, swap: bool) -> Value {
    let who = |d: i64| PEOPLE[d.rem_euclid(3) as usize];
    let shifts: Vec<Value> = (1..8)
        .map(|d| {
            let d2 = match (swap, d) {
                (true, 5) => 6,
                (true, 6) => 5,
                _ => d,
            };
            json!({
                "start": day(d).with_timezone(&Berlin).to_rfc3339(),
                "end": day(d + 1).with_timezone(&Berlin).to_rfc3339(),
                "assignees": [format!("{}@example.com", who(d2)), format!("{}@example.com", who(d2 + 1))],
            })
        })
        .collect();
    json!({
        "connections": [
            {"id": "og", "provider": "opsgenie", "api_key_env": "OG_KEY", "base_url": og.uri()},
            {"id": "pd", "provider": "pagerduty", "api_key_env": "PD_KEY", "base_url": pd.uri()},
        ],
        "schedule": {"id": "platform", "time_zone": "Europe/Berlin",
                     "roles": ["primary", "secondary"], "shifts": shifts},
        "destinations": [
            {"id": "og-primary", "connection": "og", "schedule_id": OG_SCHEDULE, "role": "primary"},
            {"id": "pd-secondary", "connection": "pd", "schedule_id": PD_SCHEDULE, "role": "secondary"},
        ],
    })
}

struct Cli {
    dir: PathBuf,
}

impl Cli {
    fn new() -> Cli {
        let dir = std::env::temp_dir().join(format!("oncall-vendor-specs-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        Cli { dir }
    }

    fn write_config(&self, config: &Value) {
        std::fs::write(self.dir.join("oncall.json"), config.to_string()).unwrap();
    }

    /// Runs the CLI with these keys; returns its exit code.
    fn run(&self, args: &[&str], og_key: &str, pd_key: &str) -> i32 {
        let mut full: Vec<String> = args.iter().map(|a| (*a).to_owned()).collect();
        full.extend([
            "--config".into(),
            self.dir.join("oncall.json").display().to_string(),
        ]);
        if matches!(args[0], "plan" | "sync" | "status" | "retire") {
            full.extend([
                "--state".into(),
                self.dir.join("state.json").display().to_string(),
            ]);
            full.extend(["--now".into(), at(now())]);
        }
        let output = tokio::task::block_in_place(|| {
            Command::new(example_binary("oncall"))
                .args(&full)
                .env_clear()
                .env("OG_KEY", og_key)
                .env("PD_KEY", pd_key)
                .output()
                .unwrap()
        });
        let code = output.status.code().unwrap_or(-1);
        assert!(
            code == 0 || code == 1,
            "oncall {}: exit {code}\n{}",
            full.join(" "),
            String::from_utf8_lossy(&output.stderr)
        );
        code
    }
}

impl Drop for Cli {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn the_cli_traffic_conforms() {
    let og = OpsgenieSimulator::start_at(now()).await;
    let pd = PagerDutySimulator::start_at(now()).await;
    og.add_schedule(vendor_schedule(OG_SCHEDULE));
    pd.add_schedule(vendor_schedule(PD_SCHEDULE));
    // People's overrides: a running one to cut, a future one to delete.
    for (sim, id) in [
        (&og as &dyn VendorSimulator, OG_SCHEDULE),
        (&pd, PD_SCHEDULE),
    ] {
        let id = VendorScheduleId(id.into());
        sim.insert_override(
            &id,
            Span::new(day(1), day(2) + TimeDelta::hours(2), email("cat")),
        );
        sim.insert_override(
            &id,
            Span::new(
                day(4) + TimeDelta::hours(1),
                day(4) + TimeDelta::hours(3),
                email("bob"),
            ),
        );
    }
    let (og_rec, pd_rec) = (Recorder::start(&og.uri()), Recorder::start(&pd.uri()));
    let cli = Cli::new();
    cli.write_config(&config(&og_rec, &pd_rec, false));
    let (og_rw, pd_rw) = (og_kit::READ_WRITE_KEY, PagerDutySimulator::READ_WRITE_KEY);
    let (from, to) = (at(day(0)), at(day(14)));
    for connection in ["og", "pd"] {
        assert_eq!(
            cli.run(&["schedules", "--connection", connection], og_rw, pd_rw),
            0
        );
    }
    for (connection, schedule) in [("og", OG_SCHEDULE), ("pd", PD_SCHEDULE)] {
        let args = [
            "import",
            "--connection",
            connection,
            "--schedule",
            schedule,
            "--from",
            &from,
            "--to",
            &to,
        ];
        assert_eq!(cli.run(&args, og_rw, pd_rw), 0);
    }
    assert_eq!(cli.run(&["plan"], og_rw, pd_rw), 0);
    assert_eq!(cli.run(&["sync"], og_rw, pd_rw), 0);
    cli.write_config(&config(&og_rec, &pd_rec, true));
    assert_eq!(cli.run(&["sync"], og_rw, pd_rw), 0);
    assert_eq!(cli.run(&["status"], og_rw, pd_rw), 0);
    // A read-only key: reads pass, the writes are refused (exit 1).
    cli.write_config(&config(&og_rec, &pd_rec, false));
    assert_eq!(
        cli.run(
            &["sync"],
            og_kit::READ_ONLY_KEY,
            PagerDutySimulator::READ_ONLY_KEY
        ),
        1
    );
    for destination in ["og-primary", "pd-secondary"] {
        assert_eq!(
            cli.run(
                &["retire", "--destination", destination, "--dry-run"],
                og_rw,
                pd_rw
            ),
            0
        );
        assert_eq!(
            cli.run(&["retire", "--destination", destination], og_rw, pd_rw),
            0
        );
    }
    // A bad key.
    assert_eq!(
        cli.run(&["schedules", "--connection", "og"], "not-a-key", pd_rw),
        1
    );
    assert_eq!(
        cli.run(
            &["schedules", "--connection", "pd"],
            og_rw,
            "notAKeyOfThisAccount"
        ),
        1
    );

    let (og_traffic, pd_traffic) = (og_rec.exchanges(), pd_rec.exchanges());
    for (traffic, writes) in [
        (&og_traffic, ["POST", "PUT", "DELETE"].as_slice()),
        (&pd_traffic, &["POST", "DELETE"]),
    ] {
        for method in writes {
            assert!(
                traffic.iter().any(|e| e.method == *method),
                "the CLI sent no {method}"
            );
        }
        for status in [401, 403] {
            assert!(
                traffic.iter().any(|e| e.status() == Some(status)),
                "no {status} answer"
            );
        }
    }
    assert_conforms(Suite::Cli, Vendor::Opsgenie, &og_traffic, &[]);
    assert_conforms(Suite::Cli, Vendor::PagerDuty, &pd_traffic, &[]);
}
