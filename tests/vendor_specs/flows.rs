//! The adapters' flows against the three simulators, through the recording proxy, every exchange
//! checked against the vendor's official spec: list, import, plan, sync (creates, deletes, cuts,
//! an update or a delete-and-create for a host swap, a member the vendor does not know), retire,
//! and errors (a bad key's 401, a read-only key's 403, an unknown schedule, 429, 5xx, answers lost
//! after a write, a dropped connection).

use std::collections::BTreeSet;
use std::time::Duration;

use chrono::{DateTime, NaiveDate, TimeDelta, TimeZone, Utc};
use oncall_sync::jsm::testkit::{self as jsm_kit, JsmSimulator};
use oncall_sync::opsgenie::testkit::{self as og_kit, HttpFault as OgHttpFault, OpsgenieSimulator};
use oncall_sync::pagerduty::testkit::{HttpFault as PdHttpFault, PagerDutySimulator};
use oncall_sync::testkit::{Fault, Trigger, VendorSimulator};
use oncall_sync::{
    import_schedule, retire, sync, ConnectionId, Destination, DestinationId, Email, Error,
    InMemoryStateStore, Member, Participant, Provider, RoleIndex, Rotation, RotationUnit, Schedule,
    ScheduleId, Shift, Span, SyncMode, SyncOptions, SyncTarget, VendorSchedule, VendorScheduleId,
    Window,
};

use crate::spec_support::{assert_conforms, Exchange, Recorder, Spec, Suite, Vendor};

const PEOPLE: [&str; 3] = ["ann", "bob", "cat"];
const SCHEDULE: &str = "PSPEC01";

fn email(name: &str) -> Email {
    Email::parse(&format!("{name}@example.com")).unwrap()
}

/// Day `n` at 09:00 UTC, from 2024-03-01.
fn day(n: i64) -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2024, 3, 1, 9, 0, 0).unwrap() + TimeDelta::days(n)
}

/// The first sync's instant: day 3, 12:00.
fn now() -> DateTime<Utc> {
    day(3) + TimeDelta::hours(3)
}

fn vendor_schedule() -> VendorSchedule {
    let start = NaiveDate::from_ymd_opt(2024, 2, 1)
        .unwrap()
        .and_hms_opt(10, 0, 0)
        .unwrap();
    let turn = |names: &[&str]| {
        names
            .iter()
            .map(|n| Participant::Member(email(n)))
            .collect()
    };
    VendorSchedule {
        id: VendorScheduleId(SCHEDULE.into()),
        name: "Platform".into(),
        zone: chrono_tz::Europe::Berlin,
        members: PEOPLE.iter().map(|p| Member::new(email(p), *p)).collect(),
        rotations: vec![
            Rotation::new(
                "primary",
                RotationUnit::Weekly,
                1,
                start,
                turn(&["ann", "bob"]),
            ),
            Rotation::new(
                "secondary",
                RotationUnit::Daily,
                1,
                start,
                turn(&["cat", "ann"]),
            ),
        ],
    }
}

/// Daily shifts from day `from` to day `to` (exclusive) for the primary; `who(d)` names day d's.
fn host(from: i64, to: i64, who: impl Fn(i64) -> &'static str) -> Schedule {
    let mut members: Vec<Member> = PEOPLE.iter().map(|p| Member::new(email(p), *p)).collect();
    members.push(Member::new(email("zed"), "zed"));
    let shifts = (from..to)
        .map(|d| Shift::new(day(d), day(d + 1), vec![Some(email(who(d)))]))
        .collect();
    Schedule::new(
        ScheduleId("host".into()),
        chrono_tz::UTC,
        vec!["primary".into()],
        members,
        shifts,
    )
    .unwrap()
}

fn rota(d: i64) -> &'static str {
    PEOPLE[d.rem_euclid(3) as usize]
}

fn destination() -> Destination {
    Destination {
        id: DestinationId("spec-primary".into()),
        connection: ConnectionId("spec".into()),
        schedule: VendorScheduleId(SCHEDULE.into()),
        role: RoleIndex::PRIMARY,
        mode: oncall_sync::DestinationMode::Protect,
    }
}

async fn run(
    schedule: &Schedule,
    provider: &dyn Provider,
    store: &InMemoryStateStore,
    now: DateTime<Utc>,
    mode: SyncMode,
) -> oncall_sync::DestinationReport {
    let destination = destination();
    let targets = [SyncTarget {
        destination: &destination,
        provider,
    }];
    let options = SyncOptions {
        now,
        horizon: None,
        mode,
    };
    let mut report = sync(schedule, &targets, store, options).await.unwrap();
    report.destinations.remove(0)
}

/// The flows every adapter goes through; `good`, `read_only` and `bad_key` talk to `sim`
/// through the recorder.
async fn common_flows(
    sim: &dyn VendorSimulator,
    good: &dyn Provider,
    read_only: &dyn Provider,
    bad_key: &dyn Provider,
) {
    let id = VendorScheduleId(SCHEDULE.into());
    sim.set_now(now());
    // List and import.
    let listing = good.list_schedules().await.unwrap();
    assert!(listing.schedules.iter().any(|s| s.id == id), "{listing:?}");
    let window = Window::new(day(0), day(14)).unwrap();
    let imported = import_schedule(good, &id, window).await.unwrap();
    assert!(!imported.shifts().is_empty());
    // People's overrides: one running now (to cut), one ahead (to delete).
    sim.insert_override(&id, Span::new(day(2), day(4), email("cat")));
    sim.insert_override(
        &id,
        Span::new(
            day(5) + TimeDelta::hours(1),
            day(5) + TimeDelta::hours(5),
            email("bob"),
        ),
    );
    // Plan, then sync: cut, delete, create.
    let store = InMemoryStateStore::new();
    let schedule = host(3, 10, rota);
    let plan = run(&schedule, good, &store, now(), SyncMode::DryRun).await;
    assert!(
        plan.plan.as_ref().is_some_and(|p| !p.operations.is_empty()),
        "{plan}"
    );
    let first = run(&schedule, good, &store, now(), SyncMode::Apply).await;
    assert!(first.errors.is_empty(), "{first}");
    assert!(first.write_calls >= 3, "{first}");
    // A host swap before the mark: updates in place (Opsgenie) or delete and re-create.
    let later = now() + TimeDelta::hours(2);
    sim.set_now(later);
    let swapped = host(3, 10, |d| match d {
        6 => rota(7),
        7 => rota(6),
        _ => rota(d),
    });
    let second = run(&swapped, good, &store, later, SyncMode::Apply).await;
    assert!(second.errors.is_empty(), "{second}");
    assert!(second.write_calls >= 1, "{second}");
    // A member the vendor does not know: that span fails alone.
    let unknown = host(3, 12, |d| if d == 11 { "zed" } else { rota(d) });
    let third = run(&unknown, good, &store, later, SyncMode::Apply).await;
    assert!(
        !third.errors.is_empty(),
        "zed is unknown to the vendor: {third}"
    );
    // Reads of one override and of the list.
    let held = good
        .list_overrides(&id, Window::new(day(3), day(12)).unwrap())
        .await
        .unwrap();
    let one = held.first().expect("overrides were written");
    match good.get_override(&id, &one.id).await {
        Ok(found) => assert!(found.is_some()),
        Err(Error::Unsupported { .. }) => {} // PagerDuty has no single-override read
        Err(e) => panic!("{e}"),
    }
    // A read-only key: reads work, writes are refused (403), never retried.
    let ro_store = InMemoryStateStore::new();
    let refused = run(
        &host(3, 8, |d| rota(d + 1)),
        read_only,
        &ro_store,
        later,
        SyncMode::Apply,
    )
    .await;
    assert!(
        refused
            .errors
            .iter()
            .any(|e| matches!(e.error, Error::PermissionDenied { .. })),
        "{refused}"
    );
    // A bad key (401) and a schedule the account does not have.
    assert!(matches!(
        bad_key.list_schedules().await,
        Err(Error::Unauthenticated { .. })
    ));
    assert!(good
        .schedule(&VendorScheduleId("PNOSUCH".into()))
        .await
        .is_err());
    // A rate limit, a transient failure, and a write whose answer is lost: retried or read back.
    sim.rate_limit_next(1);
    good.list_schedules().await.unwrap();
    sim.inject(
        Trigger::Write(sim.write_calls() + 1),
        Fault::Fail(Error::Transient {
            message: "down".into(),
        }),
    );
    sim.inject(Trigger::Write(sim.write_calls() + 2), Fault::LoseResponse);
    let extended = host(3, 14, rota);
    let fourth = run(&extended, good, &store, later, SyncMode::Apply).await;
    // With client ids a create is read back and sent again within the run; without them (the
    // answer may still land) the next run adopts or writes it.
    let settled = if fourth.errors.is_empty() {
        fourth
    } else {
        assert!(
            !good.capabilities().client_ids
                && fourth
                    .errors
                    .iter()
                    .all(|e| matches!(e.error, Error::Transient { .. })),
            "{fourth}"
        );
        run(&extended, good, &store, later, SyncMode::Apply).await
    };
    assert!(
        settled.errors.is_empty(),
        "retried and read back: {settled}"
    );
    // Retire: our overrides that have not started are deleted, a running one is cut.
    let gone = retire(&destination(), good, &store, later, SyncMode::Apply).await;
    assert!(gone.errors.is_empty(), "{gone}");
}

/// Answers (method and status; `None`: no answer) and operations the traffic must have covered,
/// so that a scenario that silently stops exercising a path fails here rather than passing
/// unchecked.
fn assert_covers(
    vendor: Vendor,
    exchanges: &[Exchange],
    answers: &[(&str, Option<u16>)],
    operations: &[&str],
) {
    let spec = Spec::of(vendor);
    let seen: BTreeSet<(String, Option<u16>)> = exchanges
        .iter()
        .map(|e| (e.method.clone(), e.status()))
        .collect();
    let seen_operations: BTreeSet<String> = exchanges
        .iter()
        .filter_map(|e| spec.find(&e.method, e.path()).map(|o| o.id.clone()))
        .collect();
    for (method, status) in answers {
        assert!(
            seen.contains(&((*method).to_owned(), *status)),
            "{}: no {method} answered {status:?} in {seen:?}",
            vendor.name()
        );
    }
    for o in operations {
        assert!(
            seen_operations.contains(*o),
            "{}: no {o} in {seen_operations:?}",
            vendor.name()
        );
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn opsgenie_adapter_flows_conform() {
    let sim = OpsgenieSimulator::start_at(now()).await;
    sim.add_schedule(vendor_schedule());
    let recorder = Recorder::start(&sim.uri());
    let through = |key: &str| {
        sim.provider_builder()
            .with_base_url(recorder.uri())
            .with_api_key(key)
            .build()
            .unwrap()
    };
    let (good, read_only, bad_key) = (
        through(og_kit::READ_WRITE_KEY),
        through(og_kit::READ_ONLY_KEY),
        through("not-a-key-of-this-account"),
    );
    common_flows(&sim, &good, &read_only, &bad_key).await;
    // Opsgenie only: a dropped connection, and a slow answer the client gives up on.
    let id = VendorScheduleId(SCHEDULE.into());
    let window = Window::new(day(3), day(12)).unwrap();
    sim.inject_http(Trigger::Call(sim.calls() + 1), OgHttpFault::DropConnection);
    good.list_overrides(&id, window).await.unwrap();
    let impatient = sim
        .provider_builder()
        .with_base_url(recorder.uri())
        .with_timeout(Duration::from_millis(200))
        .build()
        .unwrap();
    sim.inject_http(
        Trigger::Call(sim.calls() + 1),
        OgHttpFault::Slow(Duration::from_millis(400)),
    );
    impatient.list_overrides(&id, window).await.unwrap();
    // Unknown schedules as 404 too (the default is the observed 403/40301).
    sim.update_dialect(|d| d.unknown_schedule = og_kit::UnknownSchedule::NotFound404);
    assert!(good
        .schedule(&VendorScheduleId("nope".into()))
        .await
        .is_err());
    let exchanges = recorder.exchanges();
    assert_covers(
        Vendor::Opsgenie,
        &exchanges,
        &[
            ("GET", Some(200)),
            ("GET", Some(401)),
            ("GET", Some(403)),
            ("GET", Some(404)),
            ("GET", Some(429)),
            ("GET", None),
            ("POST", Some(201)),
            ("POST", Some(422)),
            ("POST", Some(502)),
            ("POST", Some(503)),
            ("PUT", Some(200)),
            ("PUT", Some(403)),
            ("DELETE", Some(200)),
        ],
        &[
            "listSchedules",
            "getSchedule",
            "getScheduleTimeline",
            "listScheduleOverride",
            "getScheduleOverride",
            "createScheduleOverride",
            "updateScheduleOverride",
            "deleteScheduleOverride",
        ],
    );
    assert_conforms(Suite::Flows, Vendor::Opsgenie, &exchanges, &[]);
}

#[tokio::test(flavor = "multi_thread")]
async fn pagerduty_adapter_flows_conform() {
    let sim = PagerDutySimulator::start_at(now()).await;
    sim.set_rate_limit_reset(0); // its 429s say "now": waited out at once
    sim.add_schedule(vendor_schedule());
    let recorder = Recorder::start(&sim.uri());
    let through = |key: &str| {
        sim.provider_builder()
            .with_base_url(recorder.uri())
            .with_api_key(key)
            .build()
            .unwrap()
    };
    let (good, read_only, bad_key) = (
        through(PagerDutySimulator::READ_WRITE_KEY),
        through(PagerDutySimulator::READ_ONLY_KEY),
        through("notAKeyOfThisAccount"),
    );
    common_flows(&sim, &good, &read_only, &bad_key).await;
    // PagerDuty only: a slow answer the client gives up on.
    let id = VendorScheduleId(SCHEDULE.into());
    let impatient = sim
        .provider_builder()
        .with_base_url(recorder.uri())
        .with_timeout(Duration::from_millis(200))
        .build()
        .unwrap();
    sim.inject_http(
        Trigger::Call(sim.requests().len() + 1),
        PdHttpFault::Slow(Duration::from_millis(400)),
    );
    let _ = impatient
        .list_overrides(&id, Window::new(day(3), day(12)).unwrap())
        .await;
    let exchanges = recorder.exchanges();
    assert_covers(
        Vendor::PagerDuty,
        &exchanges,
        &[
            ("GET", Some(200)),
            ("GET", Some(401)),
            ("GET", Some(404)),
            ("GET", Some(429)),
            ("POST", Some(201)),
            ("DELETE", Some(403)),
            ("POST", Some(502)),
            ("POST", Some(503)),
            ("DELETE", Some(200)),
            ("DELETE", Some(204)),
        ],
        &[
            "listSchedules",
            "getSchedule",
            "listScheduleOverrides",
            "createScheduleOverride",
            "deleteScheduleOverride",
            "listUsers",
        ],
    );
    assert_conforms(Suite::Flows, Vendor::PagerDuty, &exchanges, &[]);
}

#[tokio::test(flavor = "multi_thread")]
async fn jsm_adapter_flows_conform() {
    let sim = JsmSimulator::start_at(now()).await;
    sim.add_schedule(vendor_schedule());
    let recorder = Recorder::start(&sim.uri());
    let through = |token: &str| {
        sim.provider_builder()
            .with_site(recorder.uri())
            .with_api_base_url(recorder.uri())
            .with_api_token(token)
            .build()
            .unwrap()
    };
    let (good, read_only, bad_key) = (
        through(jsm_kit::READ_WRITE_TOKEN),
        through(jsm_kit::READ_ONLY_TOKEN),
        through("not-a-token-of-this-account"),
    );
    common_flows(&sim, &good, &read_only, &bad_key).await;
    // JSM only: the site refuses the user search (a fresh connection, nobody cached yet).
    sim.set_people_lookup_forbidden(true);
    let fresh = through(jsm_kit::READ_WRITE_TOKEN);
    let store = InMemoryStateStore::new();
    let refused = run(
        &host(3, 6, rota),
        &fresh,
        &store,
        now() + TimeDelta::hours(2),
        SyncMode::Apply,
    )
    .await;
    assert!(
        refused
            .errors
            .iter()
            .any(|e| matches!(e.error, Error::PeopleLookupDenied { .. })),
        "{refused}"
    );
    sim.set_people_lookup_forbidden(false);
    let exchanges = recorder.exchanges();
    assert_covers(
        Vendor::Jsm,
        &exchanges,
        &[
            ("GET", Some(200)),
            ("GET", Some(401)),
            ("GET", Some(403)),
            ("GET", Some(404)),
            ("GET", Some(429)),
            ("POST", Some(201)),
            ("POST", Some(502)),
            ("POST", Some(503)),
            ("PUT", Some(200)),
            ("PUT", Some(403)),
            ("DELETE", Some(204)),
        ],
        &[
            "getTenantInfo",
            "findUsers",
            "getUser",
            "listSchedules",
            "getSchedule",
            "getScheduleTimeline",
            "listScheduleOverrides",
            "getScheduleOverride",
            "createScheduleOverride",
            "updateScheduleOverride",
            "deleteScheduleOverride",
        ],
    );
    assert_conforms(Suite::Flows, Vendor::Jsm, &exchanges, &[]);
}
