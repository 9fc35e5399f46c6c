//! The main job end to end, over the real HTTP adapters, against the Opsgenie and PagerDuty
//! simulators started in this process (no keys, no network beyond loopback):
//!
//! 1. list the Opsgenie account's schedules and import "Platform" (a daily primary and a weekly
//!    secondary rotation, merged by position into two roles) for four weeks across the
//!    Europe/Berlin spring-forward night;
//! 2. plan (dry run) an export of the primary to an Opsgenie schedule and the secondary to a
//!    PagerDuty schedule, with a person's manual override already in the way;
//! 3. sync; then a person covers tonight's secondary by hand in PagerDuty at 2 a.m., the host swaps
//!    two primaries, and the sync runs again: the manual override survives, the swap is exported
//!    (two in-place updates on Opsgenie), and a third sync writes nothing;
//! 4. drift (DESIGN §8): a person swaps two secondary shifts in PagerDuty by hand; the sync keeps
//!    the swap (it is before the mark) and reports it as drift proposing that swap to the host; the
//!    host accepts it into its rota, the next sync adopts the person's overrides, and the one after
//!    writes nothing.
//! 5. move the primary's destination off Opsgenie (its API ends on 2027-04-05): Atlassian migrates
//!    the account to the JSM Operations simulator (new aliases, new schedule ids), `migrate`
//!    re-points the destination to the JSM connection keeping its mark and ledger, and the sync
//!    through JSM writes nothing twice and keeps a person's manual override.
//!
//! Every step prints what it cost in vendor calls. `cargo run --example demo` prints it for people;
//! `cargo run --example demo -- --json` prints the plan and the reports as one JSON document. The
//! demo exits non-zero if any of that does not happen: CI runs it as a smoke test.

use chrono::{DateTime, NaiveDate, TimeDelta, TimeZone, Utc};
use chrono_tz::Europe::Berlin;
use oncall_sync::jsm::testkit::{Carried, JsmSimulator, MigrationDialect};
use oncall_sync::opsgenie::testkit::OpsgenieSimulator;
use oncall_sync::pagerduty::testkit::PagerDutySimulator;
use oncall_sync::testkit::VendorSimulator;
use oncall_sync::{
    accept_drift, import_schedule, migrate, sync, ConnectionId, Destination, DestinationId,
    DestinationMode, Email, Found, InMemoryStateStore, Member, Migration, Participant, Proposal,
    Provider, RoleIndex, Rotation, RotationUnit, Schedule, Span, SyncMode, SyncOptions, SyncReport,
    SyncTarget, VendorSchedule, VendorScheduleId, Window,
};

const PEOPLE: [(&str, &str); 5] = [
    ("ada@example.com", "Ada Lovelace"),
    ("grace@example.com", "Grace Hopper"),
    ("edsger@example.com", "Edsger Dijkstra"),
    ("barbara@example.com", "Barbara Liskov"),
    ("ken@example.com", "Ken Thompson"),
];

fn email(i: usize) -> Email {
    Email::parse(PEOPLE[i].0).unwrap_or_else(|e| fail(&e.to_string()))
}

fn members() -> Vec<Member> {
    (0..PEOPLE.len())
        .map(|i| Member::new(email(i), PEOPLE[i].1))
        .collect()
}

fn local(y: i32, m: u32, d: u32, h: u32) -> chrono::NaiveDateTime {
    NaiveDate::from_ymd_opt(y, m, d)
        .and_then(|d| d.and_hms_opt(h, 0, 0))
        .unwrap_or_else(|| fail("invalid demo date"))
}

fn schedule(id: &str, name: &str, rotations: Vec<Rotation>) -> VendorSchedule {
    VendorSchedule {
        id: VendorScheduleId(id.into()),
        name: name.into(),
        zone: Berlin,
        members: members(),
        rotations,
    }
}

/// The Opsgenie account: "Platform" with a daily primary and a weekly secondary rotation (the
/// import source), and "Platform primary", the schedule the primary role is exported to.
async fn opsgenie_account(now: DateTime<Utc>) -> OpsgenieSimulator {
    let sim = OpsgenieSimulator::start_at(now).await;
    let people = |ids: &[usize]| ids.iter().map(|&i| Participant::Member(email(i))).collect();
    sim.add_schedule(schedule(
        "og-platform",
        "Platform",
        vec![
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
    ));
    let primary_rotation = Rotation::new(
        "Primary",
        RotationUnit::Weekly,
        1,
        local(2024, 3, 4, 9),
        people(&[0, 1]),
    );
    sim.add_schedule(schedule(
        "og-platform-primary",
        "Platform primary",
        vec![primary_rotation],
    ));
    sim
}

/// The PagerDuty account: "Platform secondary", the schedule the secondary role is exported to.
async fn pagerduty_account(now: DateTime<Utc>) -> PagerDutySimulator {
    let sim = PagerDutySimulator::start_at(now).await;
    let layer = Rotation::new(
        "Layer 1",
        RotationUnit::Weekly,
        1,
        local(2024, 3, 4, 9),
        vec![Participant::Member(email(2)), Participant::Member(email(3))],
    );
    sim.add_schedule(schedule("PSECOND", "Platform secondary", vec![layer]));
    sim
}

/// Requests and writes each simulator has answered so far.
struct Calls<'a> {
    opsgenie: &'a OpsgenieSimulator,
    pagerduty: &'a PagerDutySimulator,
    seen: (usize, usize, usize, usize),
}

impl<'a> Calls<'a> {
    fn new(opsgenie: &'a OpsgenieSimulator, pagerduty: &'a PagerDutySimulator) -> Self {
        let mut calls = Calls {
            opsgenie,
            pagerduty,
            seen: (0, 0, 0, 0),
        };
        calls.seen = calls.now();
        calls
    }

    fn now(&self) -> (usize, usize, usize, usize) {
        let og = self.opsgenie.requests();
        let pd = self.pagerduty.requests();
        let og_writes = og.iter().filter(|r| r.method != "GET").count();
        let pd_writes = pd.iter().filter(|r| r.method != "GET").count();
        (og.len(), og_writes, pd.len(), pd_writes)
    }

    /// The calls since the last step, as a line, and the writes among them.
    fn step(&mut self) -> (String, usize) {
        let now = self.now();
        let (og, ogw, pd, pdw) = (
            now.0 - self.seen.0,
            now.1 - self.seen.1,
            now.2 - self.seen.2,
            now.3 - self.seen.3,
        );
        self.seen = now;
        (
            format!("  vendor calls: Opsgenie {og} ({ogw} writes), PagerDuty {pd} ({pdw} writes)"),
            ogw + pdw,
        )
    }
}

fn print_schedule(out: &Output, schedule: &Schedule) {
    let zone = schedule.zone();
    out.line(format!(
        "  {:<30} {:<6} {}",
        "from (Europe/Berlin)",
        "hours",
        schedule.roles().join(" / ")
    ));
    for shift in schedule.shifts() {
        let who: Vec<&str> = shift
            .assignees
            .iter()
            .map(|a| {
                a.as_ref()
                    .map_or("-", |e| e.as_str().split('@').next().unwrap_or(""))
            })
            .collect();
        out.line(format!(
            "  {:<30} {:<6} {}",
            shift
                .start
                .with_timezone(&zone)
                .format("%a %Y-%m-%d %H:%M %Z")
                .to_string(),
            format!(
                "{:.0}",
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

    fn value(&mut self, key: &str, value: impl serde::Serialize) {
        if let Some(map) = &mut self.json {
            let value = serde_json::to_value(value).unwrap_or_else(|e| e.to_string().into());
            map.insert(key.to_owned(), value);
        }
    }

    fn report(&mut self, key: &str, report: &SyncReport) {
        if self.json.is_none() {
            print!("{report}");
        }
        self.value(key, report);
    }

    fn finish(self) {
        if let Some(map) = self.json {
            match serde_json::to_string_pretty(&map) {
                Ok(text) => println!("{text}"),
                Err(e) => fail(&format!("cannot print JSON: {e}")),
            }
        }
    }
}

/// Steps 8 and 9: the primary's destination moves off Opsgenie to JSM Operations. A person covers Friday
/// noon in Opsgenie by hand first; Atlassian's migration copies the account with new aliases and
/// new schedule ids (the harder reading of what it keeps); `migrate` finds each override of ours
/// again by its exact span and person and re-keys the ledger; the sync through JSM then writes
/// nothing (everything is there already), and after a host swap, only the swap.
async fn move_off_opsgenie(
    out: &mut Output,
    opsgenie: &OpsgenieSimulator,
    host: &Schedule,
    destinations: &[Destination; 2],
    store: &InMemoryStateStore,
    now: chrono::DateTime<Utc>,
) {
    let now = now + TimeDelta::hours(1);
    let primary = &destinations[0];
    let friday_noon = Span::new(
        now + TimeDelta::days(4) + TimeDelta::hours(1),
        now + TimeDelta::days(4) + TimeDelta::hours(4),
        email(1),
    );
    opsgenie.insert_override(&primary.schedule, friday_noon.clone());
    let jsm = JsmSimulator::start_at(now).await;
    let carried = MigrationDialect {
        aliases: Carried::Replaced,
        schedule_ids: Carried::Replaced,
    };
    let config = schedule(
        &primary.schedule.0,
        "Platform primary",
        vec![Rotation::new(
            "Primary",
            RotationUnit::Weekly,
            1,
            local(2024, 3, 4, 9),
            vec![Participant::Member(email(0)), Participant::Member(email(1))],
        )],
    );
    jsm.import_migrated(opsgenie, &[config], carried);
    let (og, jsm_provider) = (opsgenie.provider(), jsm.provider());
    out.heading(&format!(
        "8. Moving \"{}\" off Opsgenie (its API ends on 2027-04-05) to JSM Operations at {}: \
         Atlassian migrated the account with new aliases and schedule ids",
        primary.id,
        jsm.uri()
    ));
    let to = ConnectionId("jsm-acme".into());
    let moved = migrate(
        Migration {
            destination: primary,
            from: Some(&og),
            to_connection: &to,
            to: &jsm_provider,
            to_schedule: None,
            now,
            mode: SyncMode::Apply,
        },
        store,
    )
    .await
    .unwrap_or_else(|e| fail(&format!("the move failed: {e}")));
    out.line(&moved);
    out.value("migration", &moved);
    let moving = jsm.requests().len();
    out.line(format!(
        "  vendor calls: JSM {moving} (0 writes; each override of ours asked for by its old alias, \
         then found in one listing by its span)"
    ));
    check(
        moved.saved && moved.count(Found::NotFound) == 0 && moved.count(Found::BySpan) > 0,
        "the move did not find every override of ours",
    );
    let writes = |jsm: &JsmSimulator| jsm.requests().iter().filter(|r| r.method != "GET").count();
    check(writes(&jsm) == 0, "the move wrote to a vendor");
    let moved_destination = moved.to.clone();
    let targets = [SyncTarget {
        destination: &moved_destination,
        provider: &jsm_provider,
    }];
    let options = |now| SyncOptions {
        now,
        horizon: None,
        mode: SyncMode::Apply,
    };
    let report = sync(host, &targets, store, options(now))
        .await
        .unwrap_or_else(|e| fail(&e.to_string()));
    out.report("first_sync_through_jsm", &report);
    let requests = jsm.requests().len();
    out.line(format!(
        "  vendor calls: JSM {} ({} writes): every override of ours was there already",
        requests - moving,
        writes(&jsm)
    ));
    check(
        report.is_ok() && writes(&jsm) == 0,
        "the first sync through JSM wrote twice",
    );
    let held = jsm.overrides(&moved_destination.schedule);
    check(
        held.iter().any(|o| o.span == friday_noon),
        "the manual override made in Opsgenie was lost in the move",
    );
    out.line("  the manual override made in Opsgenie before the move is still there in JSM");
    let mut swapped = host.clone();
    let (saturday, sunday) = (host.shifts()[5].start, host.shifts()[6].start);
    swapped
        .swap_assignees(RoleIndex::PRIMARY, saturday, sunday)
        .unwrap_or_else(|e| fail(&format!("swap failed: {e}")));
    let report = sync(
        &swapped,
        &targets,
        store,
        options(now + TimeDelta::minutes(1)),
    )
    .await
    .unwrap_or_else(|e| fail(&e.to_string()));
    out.heading("9. The host swaps Saturday's and Sunday's primaries: two updates in place on JSM");
    out.report("swap_through_jsm", &report);
    out.line(format!(
        "  vendor calls: JSM {} ({} writes)",
        jsm.requests().len() - requests,
        writes(&jsm)
    ));
    check(
        report.is_ok() && writes(&jsm) <= 2,
        "the swap through JSM was not two updates",
    );
}

/// Two shifts a few days ahead whose secondaries differ (one this week, one next week).
fn swap_candidates(host: &Schedule) -> Option<(oncall_sync::Shift, oncall_sync::Shift)> {
    let shifts = host.shifts();
    let first = shifts.get(4)?;
    let second = shifts
        .iter()
        .skip(5)
        .find(|s| s.assignees[1].is_some() && s.assignees[1] != first.assignees[1])?;
    Some((first.clone(), second.clone()))
}

fn host_index(host: &Schedule, shift: &oncall_sync::Shift) -> usize {
    host.shifts()
        .iter()
        .position(|s| s.start == shift.start)
        .unwrap_or_else(|| fail("a shift left the rota"))
}

/// Stops the demo with a non-zero exit code: it doubles as a smoke test of the whole job.
fn fail(message: &str) -> ! {
    eprintln!("demo failed: {message}");
    std::process::exit(1)
}

fn check(ok: bool, message: &str) {
    if !ok {
        fail(message);
    }
}

#[tokio::main(flavor = "current_thread")]
async fn main() {
    let json = std::env::args().any(|a| a == "--json");
    let mut out = Output {
        json: json.then(serde_json::Map::new),
    };
    // A fixed "now" makes the demo reproducible: Monday 2024-03-25 09:00 in Berlin, the week the
    // clocks spring forward.
    let mut now = Utc
        .with_ymd_and_hms(2024, 3, 25, 8, 0, 0)
        .single()
        .unwrap_or_else(|| fail("invalid demo instant"));
    let opsgenie = opsgenie_account(now).await;
    let pagerduty = pagerduty_account(now).await;
    let (og, pd) = (opsgenie.provider(), pagerduty.provider());
    let mut calls = Calls::new(&opsgenie, &pagerduty);
    out.line(format!(
        "Opsgenie simulator at {}, PagerDuty simulator at {}",
        opsgenie.uri(),
        pagerduty.uri()
    ));

    out.heading("1. Schedules in the Opsgenie account");
    let listed = og
        .list_schedules()
        .await
        .unwrap_or_else(|e| fail(&format!("listing failed: {e}")));
    for s in &listed.schedules {
        let rotations: Vec<&str> = s.rotations.iter().map(|r| r.name.as_str()).collect();
        out.line(format!(
            "  {} ({}), {} members, rotations: {}",
            s.name,
            s.zone,
            s.members.len(),
            rotations.join(", ")
        ));
    }
    out.line(calls.step().0);

    // Four weeks from now, ending at a handoff (09:00 in Berlin).
    let until = oncall_sync::resolve_local(Berlin, local(2024, 4, 22, 9));
    let window = Window::new(now, until).unwrap_or_else(|e| fail(&e.to_string()));
    let source = VendorScheduleId("og-platform".into());
    let mut host = import_schedule(&og, &source, window)
        .await
        .unwrap_or_else(|e| fail(&format!("import failed: {e}")));
    out.heading("Imported \"Platform\" for four weeks (the shift over the DST change lasts 23 h)");
    print_schedule(&out, &host);
    out.line(calls.step().0);
    check(
        host.shifts()
            .iter()
            .any(|s| s.end - s.start == TimeDelta::hours(23)),
        "the import lost the DST change",
    );
    out.value("imported", &host);

    // Someone already covers part of Wednesday's secondary by hand in PagerDuty.
    let start = now;
    let at = |d: i64, h: i64| start + TimeDelta::days(d) + TimeDelta::hours(h);
    let secondary_schedule = VendorScheduleId("PSECOND".into());
    pagerduty.insert_override(
        &secondary_schedule,
        Span::new(at(2, 2), at(2, 10), email(0)),
    );

    let destinations = [
        Destination {
            id: DestinationId("platform-primary-to-opsgenie".into()),
            connection: ConnectionId("opsgenie-acme".into()),
            schedule: VendorScheduleId("og-platform-primary".into()),
            role: RoleIndex::PRIMARY,
            mode: DestinationMode::Protect,
        },
        Destination {
            id: DestinationId("platform-secondary-to-pagerduty".into()),
            connection: ConnectionId("pagerduty-acme".into()),
            schedule: secondary_schedule.clone(),
            role: RoleIndex::SECONDARY,
            mode: DestinationMode::Protect,
        },
    ];
    let targets = [
        SyncTarget {
            destination: &destinations[0],
            provider: &og,
        },
        SyncTarget {
            destination: &destinations[1],
            provider: &pd,
        },
    ];
    let store = InMemoryStateStore::new();
    let options = |now, mode| SyncOptions {
        now,
        horizon: None,
        mode,
    };
    let run = |now, mode| sync(&host, &targets, &store, options(now, mode));

    out.heading("2. Plan (dry run): nothing is written");
    let plan = run(now, SyncMode::DryRun)
        .await
        .unwrap_or_else(|e| fail(&e.to_string()));
    out.report("plan", &plan);
    let (line, writes) = calls.step();
    out.line(line);
    check(writes == 0, "the dry run wrote to a vendor");

    out.heading("3. Sync");
    let report = run(now, SyncMode::Apply)
        .await
        .unwrap_or_else(|e| fail(&e.to_string()));
    out.report("first_sync", &report);
    out.line(calls.step().0);
    check(report.is_ok(), "the first sync did not succeed");

    // Two hours later: Ken covers tonight's secondary from 02:00 to 04:00 (Berlin) by hand in
    // PagerDuty, and the host swaps the primaries of Wednesday and Thursday.
    now += TimeDelta::hours(2);
    opsgenie.set_now(now);
    pagerduty.set_now(now);
    let tonight = Span::new(at(0, 17), at(0, 19), email(4));
    let manual = pagerduty.insert_override(&secondary_schedule, tonight.clone());
    let (wednesday, thursday) = (host.shifts()[2].clone(), host.shifts()[3].clone());
    host.swap_assignees(RoleIndex::PRIMARY, wednesday.start, thursday.start)
        .unwrap_or_else(|e| fail(&format!("swap failed: {e}")));
    let run = |now, mode| sync(&host, &targets, &store, options(now, mode));
    out.heading(&format!(
        "4. After a manual override in PagerDuty ({manual}, Ken tonight 02:00-04:00) and a swap of \
         Wednesday's and Thursday's primaries in the host"
    ));
    let report = run(now, SyncMode::Apply)
        .await
        .unwrap_or_else(|e| fail(&e.to_string()));
    out.report("after_manual_change_and_swap", &report);
    out.line(calls.step().0);
    check(report.is_ok(), "the sync after the changes did not succeed");
    let kept = pagerduty
        .overrides(&secondary_schedule)
        .into_iter()
        .any(|o| o.id == manual && o.span == tonight);
    check(kept, "the manual override made in the vendor was lost");
    out.line("  the manual override is still there, as the person made it");
    let primary_overrides = opsgenie.overrides(&destinations[0].schedule);
    let shows = |shift: &oncall_sync::Shift, who: &Option<Email>| {
        primary_overrides
            .iter()
            .any(|o| o.span.start == shift.start && Some(&o.span.member) == who.as_ref())
    };
    check(
        shows(&wednesday, &thursday.assignees[0]) && shows(&thursday, &wednesday.assignees[0]),
        "the swap was not exported",
    );
    out.line("  the swap is in Opsgenie: Wednesday and Thursday changed hands");

    out.heading("5. Sync again with nothing changed");
    let report = run(now + TimeDelta::minutes(1), SyncMode::Apply)
        .await
        .unwrap_or_else(|e| fail(&e.to_string()));
    out.report("second_sync", &report);
    let (line, writes) = calls.step();
    out.line(line);
    check(
        writes == 0 && report.is_ok(),
        "a sync with nothing changed wrote to a vendor or failed",
    );

    // Drift (DESIGN §8): at 2 a.m. a person swaps two secondary shifts in PagerDuty, by hand.
    let secondary = |shift: &oncall_sync::Shift| shift.assignees[1].clone();
    let (first, second) = swap_candidates(&host).unwrap_or_else(|| fail("no two shifts to swap"));
    for (shift, other) in [(&first, &second), (&second, &first)] {
        let who = secondary(other).unwrap_or_else(|| fail("a shift without a secondary"));
        pagerduty.insert_override(&secondary_schedule, Span::new(shift.start, shift.end, who));
    }
    let name = |e: Option<Email>| e.map_or_else(String::new, |e| e.as_str().to_owned());
    out.heading(&format!(
        "6. A person swaps two secondary shifts in PagerDuty ({} on {}, {} on {}): the sync keeps \
         the swap (before the mark) and reports it as drift, proposing the swap to the host",
        name(secondary(&second)),
        first.start.with_timezone(&Berlin).format("%a %d %b"),
        name(secondary(&first)),
        second.start.with_timezone(&Berlin).format("%a %d %b"),
    ));
    let report = run(now + TimeDelta::minutes(2), SyncMode::Apply)
        .await
        .unwrap_or_else(|e| fail(&e.to_string()));
    out.report("drift_reported", &report);
    let (line, writes) = calls.step();
    out.line(line);
    let drift = report.destinations[1].drift().to_vec();
    let proposed: Vec<&Proposal> = drift.iter().filter_map(|d| d.proposal.as_ref()).collect();
    check(
        writes == 0 && proposed.len() == 2 && proposed[0] == proposed[1],
        "the swap made in PagerDuty did not come back as drift proposing it",
    );
    check(
        matches!(proposed[0], Proposal::SwapAssignees { .. }),
        "the drift did not propose a swap",
    );

    out.heading(
        "7. The host accepts the drift: the swap is in its rota, and the vendor already shows it",
    );
    let accepted = accept_drift(&mut host, &drift);
    if let Some(refused) = accepted.not_accepted.first() {
        fail(&format!("accept failed: {}", refused.reason));
    }
    for p in &accepted.applied {
        out.line(format!("  accepted: {p}"));
    }
    out.line(format!(
        "  {} record(s) without a proposal (a change to part of a shift) left as they are",
        accepted.without_proposal
    ));
    out.value("accepted", accepted.applied.len());
    check(
        secondary(&host.shifts()[host_index(&host, &first)]) == secondary(&second)
            && secondary(&host.shifts()[host_index(&host, &second)]) == secondary(&first),
        "the host's rota does not have the swap",
    );
    let run = |now, mode| sync(&host, &targets, &store, options(now, mode));
    let report = run(now + TimeDelta::minutes(3), SyncMode::Apply)
        .await
        .unwrap_or_else(|e| fail(&e.to_string()));
    out.report("after_accepting", &report);
    out.line(calls.step().0);
    check(report.is_ok(), "the sync after accepting did not succeed");
    check(
        report.destinations[1]
            .drift()
            .iter()
            .all(|d| d.proposal.is_none()),
        "the accepted swap is still drift",
    );
    let report = run(now + TimeDelta::minutes(4), SyncMode::Apply)
        .await
        .unwrap_or_else(|e| fail(&e.to_string()));
    let (line, writes) = calls.step();
    out.line(line);
    check(
        writes == 0 && report.is_ok(),
        "a sync after accepting the drift wrote again",
    );
    out.line("  the rota and PagerDuty agree; the sync writes nothing more");

    move_off_opsgenie(&mut out, &opsgenie, &host, &destinations, &store, now).await;

    out.heading("Where each destination stands");
    for d in &destinations {
        let Some(state) = store.get(&d.id) else {
            fail(&format!("no state for {}", d.id));
        };
        let mark = state.high_water.map_or_else(
            || "none".to_owned(),
            |h| {
                h.with_timezone(&Berlin)
                    .format("%a %Y-%m-%d %H:%M %Z")
                    .to_string()
            },
        );
        out.line(format!(
            "  {}: mark {mark}, {} overrides of ours in the vendor",
            d.id,
            state.ledger.len()
        ));
    }
    out.finish();
}
