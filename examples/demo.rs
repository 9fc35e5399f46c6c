//! The main job end to end, on in-process vendor simulators (no keys, no network):
//!
//! 1. list an Opsgenie-style account's schedules and import one (two rotations merged by position
//!    into primary and secondary roles, across the Europe/Berlin spring-forward night);
//! 2. plan (dry run) an export of the primary to a PagerDuty-style schedule and the secondary to the
//!    Opsgenie-style one, with a person's manual override in the way;
//! 3. sync, then make a 2 a.m. manual change in the vendor and a swap in the host, and sync again:
//!    the manual change survives, the swap is exported, a second sync writes nothing.
//!
//! `cargo run --example demo` prints it for people; `cargo run --example demo -- --json` prints the
//! plan and reports as JSON.

use chrono::{DateTime, NaiveDate, TimeDelta, TimeZone, Utc};
use oncall_sync::testkit::{InMemoryProvider, VendorSimulator};
use oncall_sync::{
    import_schedule, sync, ConnectionId, Destination, DestinationId, Email, InMemoryStateStore,
    Member, Participant, Provider, RoleIndex, Rotation, RotationUnit, Schedule, Span, SyncMode,
    SyncOptions, SyncReport, SyncTarget, VendorSchedule, VendorScheduleId, Window,
};

const PEOPLE: [(&str, &str); 5] = [
    ("ada@example.com", "Ada Lovelace"),
    ("grace@example.com", "Grace Hopper"),
    ("edsger@example.com", "Edsger Dijkstra"),
    ("barbara@example.com", "Barbara Liskov"),
    ("ken@example.com", "Ken Thompson"),
];

fn email(i: usize) -> Email {
    Email::parse(PEOPLE[i].0).expect("demo emails are valid")
}

fn members() -> Vec<Member> {
    PEOPLE
        .iter()
        .map(|(e, n)| Member::new(Email::parse(e).expect("demo emails are valid"), *n))
        .collect()
}

fn local(y: i32, m: u32, d: u32, h: u32) -> chrono::NaiveDateTime {
    NaiveDate::from_ymd_opt(y, m, d)
        .and_then(|d| d.and_hms_opt(h, 0, 0))
        .expect("valid demo date")
}

/// The Opsgenie-style account: a "Platform" schedule with a daily primary and a weekly secondary.
fn opsgenie_account(now: DateTime<Utc>) -> InMemoryProvider {
    let provider = InMemoryProvider::opsgenie_like(now);
    let people = |ids: &[usize]| ids.iter().map(|&i| Participant::Member(email(i))).collect();
    provider.add_schedule(VendorSchedule {
        id: VendorScheduleId("og-platform".into()),
        name: "Platform".into(),
        zone: chrono_tz::Europe::Berlin,
        members: members(),
        rotations: vec![
            Rotation::new(
                "Daily primary",
                RotationUnit::Daily,
                1,
                local(2024, 3, 1, 9),
                people(&[0, 1, 2, 3]),
            ),
            Rotation::new(
                "Weekly secondary",
                RotationUnit::Weekly,
                1,
                local(2024, 3, 4, 9),
                people(&[4, 3, 2]),
            ),
        ],
    });
    provider
}

/// The PagerDuty-style account: an escalation schedule the primary is exported to.
fn pagerduty_account(now: DateTime<Utc>) -> InMemoryProvider {
    let provider = InMemoryProvider::pagerduty_like(now);
    provider.add_schedule(VendorSchedule {
        id: VendorScheduleId("PD-PLATFORM".into()),
        name: "Platform escalation".into(),
        zone: chrono_tz::Europe::Berlin,
        members: members(),
        rotations: Vec::new(),
    });
    provider
}

fn print_schedule(out: &Output, schedule: &Schedule) {
    let zone = schedule.zone();
    out.line(format!(
        "  {:<34} {:<7} {}",
        "from (Europe/Berlin)",
        "hours",
        schedule.roles().join(" / ")
    ));
    for shift in schedule.shifts() {
        let who: Vec<String> = shift
            .assignees
            .iter()
            .map(|a| {
                a.as_ref().map_or("-".to_owned(), |e| {
                    e.as_str().split('@').next().unwrap_or("").to_owned()
                })
            })
            .collect();
        out.line(format!(
            "  {:<34} {:<7} {}",
            shift
                .start
                .with_timezone(&zone)
                .format("%a %Y-%m-%d %H:%M %Z")
                .to_string(),
            format!(
                "{:.1}",
                (shift.end - shift.start).num_minutes() as f64 / 60.0
            ),
            who.join(" / ")
        ));
    }
}

/// Where the demo's output goes: text for people, or one JSON document at the end.
struct Output {
    json: Option<serde_json::Map<String, serde_json::Value>>,
}

impl Output {
    fn heading(&self, text: &str) {
        if self.json.is_none() {
            println!("\n== {text}");
        }
    }

    fn line(&self, text: impl std::fmt::Display) {
        if self.json.is_none() {
            println!("{text}");
        }
    }

    fn report(&mut self, key: &str, report: &SyncReport) {
        match &mut self.json {
            Some(map) => {
                let value = serde_json::to_value(report).unwrap_or_else(|e| e.to_string().into());
                map.insert(key.to_owned(), value);
            }
            None => print!("{report}"),
        }
    }

    fn finish(self) {
        if let Some(map) = self.json {
            match serde_json::to_string_pretty(&map) {
                Ok(text) => println!("{text}"),
                Err(e) => eprintln!("cannot print JSON: {e}"),
            }
        }
    }
}

/// Stops the demo with a non-zero exit code: it doubles as a smoke test of the whole job.
fn fail(message: &str) -> ! {
    eprintln!("demo failed: {message}");
    std::process::exit(1)
}

#[tokio::main(flavor = "current_thread")]
async fn main() {
    let json = std::env::args().any(|a| a == "--json");
    let mut out = Output {
        json: json.then(serde_json::Map::new),
    };
    // A fixed "now" makes the demo reproducible: Monday 2024-03-25, the week Berlin springs forward.
    let mut now = Utc
        .with_ymd_and_hms(2024, 3, 25, 8, 0, 0)
        .single()
        .expect("valid instant");
    let opsgenie = opsgenie_account(now);
    let pagerduty = pagerduty_account(now);

    out.heading("1. Schedules in the Opsgenie-style account");
    match opsgenie.list_schedules().await {
        Ok(schedules) => {
            for s in schedules {
                let rotations: Vec<&str> = s.rotations.iter().map(|r| r.name.as_str()).collect();
                out.line(format!(
                    "  {} ({}), {} members, rotations: {}",
                    s.name,
                    s.zone,
                    s.members.len(),
                    rotations.join(", ")
                ));
            }
        }
        Err(e) => fail(&format!("listing failed: {e}")),
    }

    // Ten days, ending at a handoff (Thursday 09:00 in Berlin).
    let until = oncall_sync::resolve_local(chrono_tz::Europe::Berlin, local(2024, 4, 4, 9));
    let window = Window::new(now, until).expect("non-empty window");
    let mut schedule =
        match import_schedule(&opsgenie, &VendorScheduleId("og-platform".into()), window).await {
            Ok(s) => s,
            Err(e) => fail(&format!("import failed: {e}")),
        };
    out.heading(
        "Imported \"Platform\" for the next 10 days (Saturday's shift spans the DST change: 23 h)",
    );
    print_schedule(&out, &schedule);
    if let Some(map) = &mut out.json {
        map.insert(
            "imported".into(),
            serde_json::to_value(&schedule).unwrap_or_default(),
        );
    }

    // Someone already put a manual override into the PagerDuty-style schedule, in the export horizon.
    let pd_schedule = VendorScheduleId("PD-PLATFORM".into());
    let start = now;
    let at = |d: i64, h: i64| start + TimeDelta::days(d) + TimeDelta::hours(h);
    pagerduty.insert_override(&pd_schedule, Span::new(at(3, 2), at(3, 10), email(4)));

    let destinations = [
        Destination {
            id: DestinationId("platform-primary-to-pagerduty".into()),
            connection: ConnectionId("pagerduty-acme".into()),
            schedule: pd_schedule.clone(),
            role: RoleIndex::PRIMARY,
        },
        Destination {
            id: DestinationId("platform-secondary-to-opsgenie".into()),
            connection: ConnectionId("opsgenie-acme".into()),
            schedule: VendorScheduleId("og-platform".into()),
            role: RoleIndex::SECONDARY,
        },
    ];
    let targets = [
        SyncTarget {
            destination: &destinations[0],
            provider: &pagerduty,
        },
        SyncTarget {
            destination: &destinations[1],
            provider: &opsgenie,
        },
    ];
    let store = InMemoryStateStore::new();
    let horizon = Some(TimeDelta::days(7));
    let options = |now, mode| SyncOptions { now, horizon, mode };

    out.heading("2. Plan (dry run): nothing is written");
    let plan = sync(&schedule, &targets, &store, options(now, SyncMode::DryRun))
        .await
        .unwrap_or_else(|e| fail(&e.to_string()));
    out.report("plan", &plan);

    out.heading("3. Sync");
    let report = sync(&schedule, &targets, &store, options(now, SyncMode::Apply))
        .await
        .unwrap_or_else(|e| fail(&e.to_string()));
    out.report("first_sync", &report);
    if !report.is_ok() {
        fail("the first sync did not succeed");
    }

    // Two hours later: Ken covers tonight's primary from 02:00 to 04:00 (Berlin) by hand in
    // PagerDuty, and the host swaps the primaries of Wednesday and Thursday.
    now += TimeDelta::hours(2);
    pagerduty.set_now(now);
    opsgenie.set_now(now);
    let manual = pagerduty.insert_override(&pd_schedule, Span::new(at(0, 17), at(0, 19), email(4)));
    let (wednesday, thursday) = (schedule.shifts()[2].start, schedule.shifts()[3].start);
    if let Err(e) = schedule.swap_assignees(RoleIndex::PRIMARY, wednesday, thursday) {
        fail(&format!("swap failed: {e}"));
    }
    out.heading(&format!(
        "4. After a manual override in the vendor ({manual}) and a swap in the host"
    ));
    let report = sync(&schedule, &targets, &store, options(now, SyncMode::Apply))
        .await
        .unwrap_or_else(|e| fail(&e.to_string()));
    out.report("after_manual_change_and_swap", &report);
    if !report.is_ok() {
        fail("the sync after the changes did not succeed");
    }
    let kept = pagerduty
        .overrides(&pd_schedule)
        .iter()
        .any(|o| o.id == manual);
    if !kept {
        fail("the manual override made in the vendor was lost");
    }
    out.line("  the manual override is still there");

    out.heading("5. Sync again with nothing changed");
    let report = sync(&schedule, &targets, &store, options(now, SyncMode::Apply))
        .await
        .unwrap_or_else(|e| fail(&e.to_string()));
    let writes: usize = report.destinations.iter().map(|d| d.write_calls).sum();
    out.line(format!("  {writes} write calls"));
    if writes != 0 || !report.is_ok() {
        fail("a sync with nothing changed wrote to a vendor or failed");
    }
    out.report("second_sync", &report);
    for d in &destinations {
        if let Some(state) = store.get(&d.id) {
            let mark = state
                .high_water
                .map_or_else(|| "none".to_owned(), |h| h.to_rfc3339());
            let last = state.last_run.map_or("never".to_owned(), |r| {
                if r.ok {
                    "ok".to_owned()
                } else {
                    format!("failed: {}", r.error.unwrap_or_default())
                }
            });
            out.line(format!(
                "  {}: mark {mark}, {} overrides ours, last run {last}",
                d.id,
                state.ledger.len()
            ));
        }
    }
    out.finish();
}
