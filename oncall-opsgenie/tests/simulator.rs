//! The provider and the simulator together: imports across DST, exports through faults, the
//! request log of a whole import and export (R10), keys and malformed answers.

#![allow(clippy::unwrap_used)] // tests: a panic is the failure report

mod common;

use std::collections::HashSet;
use std::time::{Duration, Instant};

use chrono::{DateTime, NaiveDate, TimeDelta, TimeZone, Utc};
use common::*;
use oncall_core::testkit::{Fault, Trigger, VendorSimulator};
use oncall_core::{
    import_schedule, sync, ConnectionId, Destination, DestinationId, DestinationMode,
    DestinationReport, Error, InMemoryStateStore, NewOverride, Override, OverrideId, Participant,
    Provider, Restriction, RoleIndex, Rotation, RotationUnit, Schedule, ScheduleId, Shift, Span,
    SyncMode, SyncOptions, SyncTarget, VendorSchedule, VendorScheduleId, Window,
};
use oncall_opsgenie::testkit::{
    HttpFault, KeyKind, OpsgenieDialect, OpsgenieSimulator, OverrideSplit, PastEnd, TimelineSplit,
    READ_ONLY_KEY, READ_WRITE_KEY,
};
use oncall_opsgenie::{OpsgenieProvider, OverrideRecipient};

fn utc(y: i32, mo: u32, d: u32, h: u32, mi: u32) -> DateTime<Utc> {
    Utc.with_ymd_and_hms(y, mo, d, h, mi, 0).unwrap()
}

/// Day `d` of January 2024 at 09:00 UTC (the daily handoff).
fn day(d: i64) -> DateTime<Utc> {
    utc(2024, 1, 1, 9, 0) + TimeDelta::days(d)
}

/// Daily shifts from day `from` to day `to`, one role, round-robin over the five people.
fn host(from: i64, to: i64) -> Schedule {
    let shifts = (from..to)
        .map(|d| {
            Shift::new(
                day(d),
                day(d + 1),
                vec![Some(email(PEOPLE[d as usize % 5]))],
            )
        })
        .collect();
    Schedule::new(
        ScheduleId("host".into()),
        chrono_tz::UTC,
        vec!["primary".into()],
        members(),
        shifts,
    )
    .unwrap()
}

fn destination() -> Destination {
    Destination {
        id: DestinationId("ops-primary".into()),
        connection: ConnectionId("opsgenie".into()),
        schedule: VendorScheduleId("VS".into()),
        role: RoleIndex::PRIMARY,
        mode: DestinationMode::Protect,
    }
}

async fn export(
    provider: &OpsgenieProvider,
    schedule: &Schedule,
    store: &InMemoryStateStore,
    now: DateTime<Utc>,
) -> DestinationReport {
    let d = destination();
    let targets = [SyncTarget {
        destination: &d,
        provider,
    }];
    let options = SyncOptions {
        now,
        horizon: None,
        mode: SyncMode::Apply,
    };
    sync(schedule, &targets, store, options)
        .await
        .unwrap()
        .destinations
        .remove(0)
}

/// The spans a host schedule asks for at `now`: every shift still running, clipped at `now`.
fn desired(schedule: &Schedule, now: DateTime<Utc>) -> Vec<Span> {
    schedule
        .shifts()
        .iter()
        .filter(|s| s.end > now)
        .filter_map(|s| Some(Span::new(s.start.max(now), s.end, s.assignees[0].clone()?)))
        .collect()
}

/// Spans held twice or more: a duplicate written by the sync.
fn duplicates(overrides: &[Override]) -> Vec<Span> {
    let mut seen = HashSet::new();
    overrides
        .iter()
        .filter(|o| !seen.insert(o.span.clone()))
        .map(|o| o.span.clone())
        .collect()
}

#[tokio::test]
async fn an_export_through_faults_and_a_lost_answer_converges_within_three_syncs() {
    // Several seeds: the bound must hold for each, not for one lucky sequence.
    let mut totals = (0, 0);
    let mut most_syncs = 0;
    for seed in 1..=8u64 {
        let now = day(3) + TimeDelta::hours(3);
        let (sim, vs) = simulator_with_schedule().await;
        sim.set_now(now);
        let provider = sim.provider();
        let schedule = host(3, 25);
        let store = InMemoryStateStore::new();
        sim.set_fault_rate(0.25, seed);
        // The third write is a create that lands and whose answer is lost.
        sim.inject(Trigger::Write(3), Fault::LoseResponse);
        let want = desired(&schedule, now);
        let mut syncs = 0;
        loop {
            syncs += 1;
            let report = export(&provider, &schedule, &store, now).await;
            let held = sim.overrides(&vs);
            assert!(
                duplicates(&held).is_empty(),
                "seed {seed}, sync {syncs}: duplicates in {held:?}"
            );
            assert!(
                held.iter().all(|o| want.contains(&o.span)),
                "seed {seed}, sync {syncs}: only desired overrides: {held:?}"
            );
            let spans: Vec<Span> = held.iter().map(|o| o.span.clone()).collect();
            if spans == want {
                break;
            }
            assert!(
                syncs < 3,
                "seed {seed}: not converged after 3 syncs: {report}"
            );
        }
        let log = sim.requests();
        let count = |status: u16| log.iter().filter(|r| r.status == Some(status)).count();
        let failed_creates = log
            .iter()
            .filter(|r| r.method == "POST" && r.status == Some(503))
            .count();
        assert_eq!(count(502), 1, "seed {seed}: one lost answer");
        eprintln!(
            "seed {seed}: exact after {syncs} syncs; {} requests, {} x 429, {} x 503 ({failed_creates} on creates)",
            log.len(),
            count(429),
            count(503),
        );
        totals.0 += count(429);
        totals.1 += failed_creates;
        most_syncs = most_syncs.max(syncs);
    }
    // The faults did their work: throttled requests and refused creates.
    assert!(totals.0 > 0 && totals.1 > 0, "{totals:?}");
    eprintln!("at most {most_syncs} syncs");
}

#[tokio::test]
async fn the_request_log_of_an_import_and_an_export_stays_within_r10() {
    let now = day(3) + TimeDelta::hours(3);
    let sim = OpsgenieSimulator::start_at(now).await;
    let start = NaiveDate::from_ymd_opt(2024, 1, 1)
        .unwrap()
        .and_hms_opt(9, 0, 0)
        .unwrap();
    let mut secondary = Rotation::new(
        "secondary",
        RotationUnit::Weekly,
        1,
        start,
        vec![Participant::Member(email("cat")), Participant::Nobody],
    );
    secondary.restrictions = vec![Restriction::time_of_day(8, 0, 20, 0).unwrap()];
    sim.add_schedule(VendorSchedule {
        rotations: vec![daily_schedule("VS").rotations[0].clone(), secondary],
        ..daily_schedule("VS")
    });
    let vs = VendorScheduleId("VS".into());
    let provider = sim.provider();

    // Import sixty days (three timeline chunks).
    let window = Window::new(day(0), day(60)).unwrap();
    let rota = import_schedule(&provider, &vs, window).await.unwrap();
    assert_eq!(rota.roles().len(), 2);
    provider.list_schedules().await.unwrap();

    // Export: a foreign override running now (cut by an update), one in the fresh region
    // (deleted), then a host swap before the mark (two updates in place).
    sim.insert_override(&vs, Span::new(day(2), day(4), email("eve")));
    sim.insert_override(
        &vs,
        Span::new(day(6), day(6) + TimeDelta::hours(4), email("eve")),
    );
    let store = InMemoryStateStore::new();
    let mut schedule = host(3, 10);
    assert!(export(&provider, &schedule, &store, now)
        .await
        .errors
        .is_empty());
    schedule
        .swap_assignees(RoleIndex::PRIMARY, day(6), day(7))
        .unwrap();
    let later = now + TimeDelta::hours(1);
    sim.set_now(later);
    let report = export(&provider, &schedule, &store, later).await;
    assert!(report.errors.is_empty(), "{report}");

    let log = sim.requests();
    let dated_timelines = log
        .iter()
        .filter(|r| r.path.ends_with("/timeline") && r.query_value("date").is_some())
        .count();
    assert_eq!(dated_timelines, 3, "sixty days in chunks of 28");
    let methods: HashSet<&str> = log.iter().map(|r| r.method.as_str()).collect();
    assert_eq!(
        methods,
        HashSet::from(["GET", "POST", "PUT", "DELETE"]),
        "every kind was exercised"
    );
    for r in &log {
        assert!(r.simulated, "outside R10: {} {}", r.method, r.path);
        assert_eq!(r.key, KeyKind::ReadWrite);
        let segments: Vec<&str> = r.path.trim_start_matches('/').split('/').collect();
        match segments.as_slice() {
            ["v2", "schedules"] => assert_eq!(r.query_value("expand"), Some("rotation")),
            ["v2", "schedules", _] | ["v2", "schedules", _, "timeline"] => {
                assert_eq!(r.query_value("identifierType"), Some("id"), "{r:?}")
            }
            ["v2", "schedules", _, "overrides", ..] => {
                assert_eq!(r.query_value("scheduleIdentifierType"), Some("id"), "{r:?}");
                if let Some(body) = &r.body {
                    assert!(
                        body.get("rotations").is_none(),
                        "no rotations field: {body}"
                    );
                }
            }
            other => panic!("unexpected endpoint {other:?}"),
        }
    }
}

/// Europe/Berlin springs forward on 2024-03-31 at 02:00 (01:00Z).
#[tokio::test]
async fn an_import_across_dst_merges_two_rotations_and_an_override() {
    let berlin = chrono_tz::Europe::Berlin;
    let monday = NaiveDate::from_ymd_opt(2024, 3, 25)
        .unwrap()
        .and_hms_opt(9, 0, 0)
        .unwrap();
    let primary = Rotation::new(
        "primary",
        RotationUnit::Daily,
        1,
        monday,
        vec![
            Participant::Member(email("ann")),
            Participant::Member(email("bob")),
        ],
    );
    let mut secondary = Rotation::new(
        "secondary",
        RotationUnit::Weekly,
        1,
        monday,
        vec![
            Participant::Member(email("cat")),
            Participant::Member(email("dan")),
        ],
    );
    secondary.restrictions = vec![Restriction::time_of_day(8, 0, 20, 0).unwrap()];
    // The clock inside bob's turn: the vendor splits it into historical and default.
    let sim = OpsgenieSimulator::start_at(utc(2024, 3, 30, 12, 0)).await;
    let vs = VendorScheduleId("berlin".into());
    sim.add_schedule(VendorSchedule {
        id: vs.clone(),
        name: "Berlin".into(),
        zone: berlin,
        members: members(),
        rotations: vec![primary, secondary],
    });
    // A person's override: eve, 12:00-14:00 CEST on the 31st, over every rotation.
    sim.insert_override(
        &vs,
        Span::new(
            utc(2024, 3, 31, 10, 0),
            utc(2024, 3, 31, 12, 0),
            email("eve"),
        ),
    );
    let window = Window::new(utc(2024, 3, 30, 0, 0), utc(2024, 4, 1, 12, 0)).unwrap();
    let rota = import_schedule(&sim.provider(), &vs, window).await.unwrap();
    assert_eq!(rota.zone(), berlin);
    let got: Vec<_> = rota
        .shifts()
        .iter()
        .map(|s| {
            let who = |i: usize| {
                s.assignees[i]
                    .as_ref()
                    .map(|e| e.as_str().split('@').next().unwrap_or_default().to_owned())
            };
            (s.start, s.end, who(0), who(1))
        })
        .collect();
    let p = |name: &str| Some(name.to_owned());
    assert_eq!(
        got,
        vec![
            (
                utc(2024, 3, 30, 0, 0),
                utc(2024, 3, 30, 7, 0),
                p("ann"),
                None
            ),
            // 08:00 CET: the secondary's window opens.
            (
                utc(2024, 3, 30, 7, 0),
                utc(2024, 3, 30, 8, 0),
                p("ann"),
                p("cat")
            ),
            // 09:00 CET: bob's turn, 23 hours long across the change.
            (
                utc(2024, 3, 30, 8, 0),
                utc(2024, 3, 30, 19, 0),
                p("bob"),
                p("cat")
            ),
            (
                utc(2024, 3, 30, 19, 0),
                utc(2024, 3, 31, 6, 0),
                p("bob"),
                None
            ),
            // 08:00 CEST is 06:00Z now.
            (
                utc(2024, 3, 31, 6, 0),
                utc(2024, 3, 31, 7, 0),
                p("bob"),
                p("cat")
            ),
            // 09:00 CEST: ann's turn.
            (
                utc(2024, 3, 31, 7, 0),
                utc(2024, 3, 31, 10, 0),
                p("ann"),
                p("cat")
            ),
            // The override, in both roles.
            (
                utc(2024, 3, 31, 10, 0),
                utc(2024, 3, 31, 12, 0),
                p("eve"),
                p("eve")
            ),
            (
                utc(2024, 3, 31, 12, 0),
                utc(2024, 3, 31, 18, 0),
                p("ann"),
                p("cat")
            ),
            (
                utc(2024, 3, 31, 18, 0),
                utc(2024, 4, 1, 6, 0),
                p("ann"),
                None
            ),
            (
                utc(2024, 4, 1, 6, 0),
                utc(2024, 4, 1, 7, 0),
                p("ann"),
                p("cat")
            ),
            // Monday 09:00 CEST: the weekly handoff to dan, and bob's day.
            (
                utc(2024, 4, 1, 7, 0),
                utc(2024, 4, 1, 12, 0),
                p("bob"),
                p("dan")
            ),
        ]
    );
}

/// An override running at the vendor's clock: the timeline may split it there, as it splits turns
/// into `historical` and `default`, at an instant with milliseconds or in whole seconds (each
/// UNCONFIRMED for overrides; each a reading of the simulator's dialect). The import joins the
/// pieces under every reading: shifts stay whole seconds, so `import_schedule` succeeds, and the
/// override is one shift.
#[tokio::test]
async fn an_import_joins_an_override_split_at_the_request_instant() {
    for timeline_split in TimelineSplit::ALL.iter().copied() {
        for override_split in OverrideSplit::ALL.iter().copied() {
            let reading = format!("{timeline_split:?}, {override_split:?}");
            let sim = OpsgenieSimulator::start_with(
                now(),
                OpsgenieDialect {
                    timeline_split,
                    override_split,
                    ..OpsgenieDialect::default()
                },
            )
            .await;
            sim.add_schedule(daily_schedule("VS"));
            let vs = VendorScheduleId("VS".into());
            // now() is 12:00 on day 3: eve's override runs from 10:00 to 14:00.
            let (from, to) = (now() - TimeDelta::hours(2), now() + TimeDelta::hours(2));
            sim.insert_override(&vs, Span::new(from, to, email("eve")));
            let provider = sim.provider();
            let window = Window::new(day(3), day(4)).unwrap();
            let timeline = provider.on_call(&vs, window).await.unwrap();
            let periods: Vec<_> = timeline[0]
                .periods
                .iter()
                .map(|p| (p.start, p.end, p.member.clone()))
                .collect();
            assert_eq!(
                periods,
                [
                    (day(3), from, email("bob")),
                    (from, to, email("eve")),
                    (to, day(4), email("bob")),
                ],
                "{reading}: one period for the override, whole seconds"
            );
            let rota = import_schedule(&provider, &vs, window).await.unwrap();
            let got: Vec<_> = rota
                .shifts()
                .iter()
                .map(|s| (s.start, s.end, s.assignees[0].clone()))
                .collect();
            assert_eq!(
                got,
                [
                    (day(3), from, Some(email("bob"))),
                    (from, to, Some(email("eve"))),
                    (to, day(4), Some(email("bob"))),
                ],
                "{reading}"
            );
        }
    }
}

#[tokio::test]
async fn rotations_come_in_timeline_order_not_array_order() {
    let (sim, vs) = simulator_with_schedule().await;
    let start = NaiveDate::from_ymd_opt(2024, 1, 1)
        .unwrap()
        .and_hms_opt(9, 0, 0)
        .unwrap();
    let backup = Rotation::new(
        "backup",
        RotationUnit::Weekly,
        1,
        start,
        vec![Participant::Member(email("eve"))],
    );
    sim.add_schedule(VendorSchedule {
        rotations: vec![backup, daily_schedule("VS").rotations[0].clone()],
        ..daily_schedule("VS")
    });
    // The UI shows "daily" first: order 1.0 for the second array entry.
    sim.set_timeline_order(&vs, &[4.5, 1.0]);
    let provider = sim.provider();
    let names: Vec<String> = provider
        .schedule(&vs)
        .await
        .unwrap()
        .rotations
        .into_iter()
        .map(|r| r.name)
        .collect();
    assert_eq!(names, ["daily", "backup"]);
    let window = Window::new(day(3), day(4)).unwrap();
    let timelines = provider.on_call(&vs, window).await.unwrap();
    let names: Vec<&str> = timelines.iter().map(|t| t.name.as_str()).collect();
    assert_eq!(names, ["daily", "backup"]);
    let rota = import_schedule(&provider, &vs, window).await.unwrap();
    assert_eq!(
        rota.shifts()[0].assignees,
        vec![Some(email("bob")), Some(email("eve"))]
    );
}

#[tokio::test]
async fn a_read_only_key_imports_and_is_refused_writes_once() {
    let (sim, vs) = simulator_with_schedule().await;
    let reader = sim.read_only_provider();
    assert!(
        import_schedule(&reader, &vs, Window::new(day(3), day(10)).unwrap())
            .await
            .is_ok()
    );
    let store = InMemoryStateStore::new();
    let report = export(&reader, &host(3, 6), &store, now()).await;
    assert!(
        report
            .errors
            .iter()
            .all(|e| matches!(e.error, Error::PermissionDenied { .. }))
            && !report.errors.is_empty(),
        "{report}"
    );
    assert!(report.errors[0]
        .to_string()
        .contains("read-only or lacks rights"));
    let writes: Vec<_> = sim
        .requests()
        .into_iter()
        .filter(|r| r.method != "GET")
        .collect();
    assert!(
        !writes.is_empty()
            && writes
                .iter()
                .all(|r| r.status == Some(403) && r.key == KeyKind::ReadOnly)
    );
    assert!(
        writes.len()
            <= OpsgenieProvider::builder()
                .with_api_key("k")
                .build()
                .unwrap()
                .capabilities()
                .max_batch
    );
    assert!(sim.overrides(&vs).is_empty());
    // The same through the simulator's read-only mode, with the read-write key: never retried.
    sim.set_read_only(true);
    sim.clear_requests();
    let one = NewOverride {
        span: Span::new(day(8), day(9), email("ann")),
        id: Some(OverrideId::new("x")),
    };
    let results = sim.provider().create_overrides(&vs, &[one]).await.unwrap();
    assert!(matches!(results[0], Err(Error::PermissionDenied { .. })));
    assert_eq!(sim.requests().len(), 1);
}

#[tokio::test]
async fn invalid_keys_are_unauthenticated_and_never_leak() {
    let (sim, _vs) = simulator_with_schedule().await;
    let secret = "not-a-key-but-secret-4242";
    let p = sim.provider_builder().with_api_key(secret).build().unwrap();
    let e = p.list_schedules().await.unwrap_err();
    assert!(matches!(e, Error::Unauthenticated { .. }), "{e:?}");
    assert!(!format!(
        "{e} {e:?} {p:?} {:?}",
        sim.provider_builder().with_api_key(secret)
    )
    .contains(secret));
    assert_eq!(sim.requests()[0].key, KeyKind::Invalid);
    assert!(![READ_WRITE_KEY, READ_ONLY_KEY].contains(&secret));
}

#[tokio::test]
async fn a_malformed_answer_stops_the_destination_before_any_write() {
    let (sim, vs) = simulator_with_schedule().await;
    sim.insert_override(&vs, Span::new(day(5), day(6), email("eve")));
    let before = sim.overrides(&vs);
    // The sync's first request is its read of the overrides.
    sim.inject_http(Trigger::Call(1), HttpFault::MalformedBody);
    let store = InMemoryStateStore::new();
    let report = export(&sim.provider(), &host(3, 10), &store, now()).await;
    assert!(
        matches!(&report.errors[0].error, Error::InvalidResponse { message } if message == "data: missing"),
        "{report}"
    );
    assert_eq!(
        sim.write_calls(),
        0,
        "nothing written after a malformed answer"
    );
    assert_eq!(sim.overrides(&vs), before, "the vendor's state is intact");
    assert_eq!(
        store.get(&destination().id).and_then(|s| s.high_water),
        None
    );
}

/// A create answered with a malformed 200 (it landed; the answer cannot be read): nothing more is
/// written in that run, not even the batch's creates held back behind it, and the next run adopts
/// what landed and ends ok, with no duplicate.
#[tokio::test]
async fn nothing_is_written_after_a_malformed_answer_to_a_create() {
    let (sim, vs) = simulator_with_schedule().await;
    // Two at a time, at 600 a minute: after the sync's read, the batch's first create goes at once
    // and the second waits its slot, by when the first's malformed answer is in.
    let provider = sim
        .provider_builder()
        .with_max_concurrency(2)
        .with_rate_per_minute(600)
        .build()
        .unwrap();
    sim.inject_http(Trigger::Write(1), HttpFault::MalformedBody);
    let schedule = host(5, 9);
    let store = InMemoryStateStore::new();
    let report = export(&provider, &schedule, &store, now()).await;
    let writes: Vec<String> = sim
        .requests()
        .iter()
        .filter(|r| r.method != "GET")
        .map(|r| format!("{} {} {:?}", r.method, r.path, r.status))
        .collect();
    assert_eq!(writes.len(), 1, "one write reached the vendor: {writes:?}");
    assert_ne!(report.status, oncall_core::SyncStatus::Ok, "{report}");
    assert!(
        report
            .errors
            .iter()
            .any(|e| matches!(e.error, Error::InvalidResponse { .. })),
        "{report}"
    );
    assert!(
        report
            .errors
            .iter()
            .all(|e| !matches!(e.error, Error::Transient { .. })),
        "nothing is left for the driver to re-send: {report}"
    );
    sim.clear_faults();
    let again = export(&provider, &schedule, &store, now()).await;
    assert_eq!(again.status, oncall_core::SyncStatus::Ok, "{again}");
    let held = sim.overrides(&vs);
    assert!(duplicates(&held).is_empty(), "{held:?}");
    let spans: Vec<Span> = held.iter().map(|o| o.span.clone()).collect();
    assert_eq!(spans, desired(&schedule, now()));
}

/// R2 over an override that names no person: a person's `none` override in the fresh region is
/// a foreign override like any other, and a sync clears it.
#[tokio::test]
async fn a_persons_none_override_in_the_fresh_region_is_cleared() {
    let (sim, vs) = simulator_with_schedule().await;
    let nobody = sim
        .insert_recipient_override(&vs, day(6), day(7), &OverrideRecipient::Nobody)
        .unwrap();
    let team = OverrideRecipient::Team("6c4e2b1a-0d9f-4e0a-9a4b-2f7c1d3e5a6b".into());
    let teams = sim
        .insert_recipient_override(&vs, day(7), day(8), &team)
        .unwrap();
    let listed = sim
        .provider()
        .list_overrides(&vs, Window::new(day(5), day(9)).unwrap())
        .await
        .unwrap();
    assert_eq!(
        listed
            .iter()
            .map(|o| (o.id.clone(), OverrideRecipient::from_email(&o.span.member)))
            .collect::<Vec<_>>(),
        [(nobody, OverrideRecipient::Nobody), (teams, team)],
        "listed like any override"
    );
    let store = InMemoryStateStore::new();
    let schedule = host(3, 10);
    let report = export(&sim.provider(), &schedule, &store, now()).await;
    assert!(report.errors.is_empty(), "{report}");
    let held: Vec<Span> = sim.overrides(&vs).iter().map(|o| o.span.clone()).collect();
    assert_eq!(
        held,
        desired(&schedule, now()),
        "R2: only the desired spans"
    );
}

/// An override of ours that a person set to nobody is still ours: `get_override` finds it (the
/// contract's `None` says the vendor no longer holds it, and the sync would forget it).
#[tokio::test]
async fn an_override_of_ours_set_to_nobody_is_still_found() {
    let (sim, vs) = simulator_with_schedule().await;
    let store = InMemoryStateStore::new();
    let schedule = host(3, 10);
    let provider = sim.provider();
    assert!(export(&provider, &schedule, &store, now())
        .await
        .errors
        .is_empty());
    let ours = sim.overrides(&vs).pop().unwrap();
    let nobody = OverrideRecipient::Nobody.email().unwrap();
    let edited = Span::new(ours.span.start, ours.span.end, nobody.clone());
    assert_eq!(
        sim.edit_override(&vs, &ours.id, edited.clone()),
        Some(ours.id.clone())
    );
    let found = provider.get_override(&vs, &ours.id).await.unwrap();
    assert_eq!(found.map(|o| o.span), Some(edited), "found, naming nobody");
}

/// A running override of a team, cut by a sync (R2), keeps naming the team: the PUT writes back
/// who it is, not a user.
#[tokio::test]
async fn a_running_team_override_is_cut_and_stays_the_teams() {
    let (sim, vs) = simulator_with_schedule().await;
    let team = OverrideRecipient::Team("6c4e2b1a-0d9f-4e0a-9a4b-2f7c1d3e5a6b".into());
    let id = sim
        .insert_recipient_override(&vs, day(2), day(4), &team)
        .unwrap();
    let store = InMemoryStateStore::new();
    let report = export(&sim.provider(), &host(3, 10), &store, now()).await;
    assert!(report.errors.is_empty(), "{report}");
    let puts: Vec<serde_json::Value> = sim
        .requests()
        .into_iter()
        .filter(|r| r.method == "PUT")
        .filter_map(|r| r.body)
        .collect();
    assert_eq!(puts.len(), 1, "{puts:?}");
    assert_eq!(
        puts[0]["user"],
        serde_json::json!({"type": "team", "id": "6c4e2b1a-0d9f-4e0a-9a4b-2f7c1d3e5a6b"})
    );
    let cut = sim.overrides(&vs).into_iter().find(|o| o.id == id).unwrap();
    assert_eq!(OverrideRecipient::from_email(&cut.span.member), team);
    assert_eq!((cut.span.start, cut.span.end), (day(2), now()));
}

/// R1 for an override a person limited to one rotation: a sync that cuts it while it runs (R2)
/// keeps its rotations, so its past stays where it was. (A PUT without `rotations` may reset it to
/// every rotation: UNCONFIRMED; the simulator does, and the past would then change.)
#[tokio::test]
async fn a_running_override_limited_to_one_rotation_keeps_its_rotations_and_past_when_cut() {
    let (sim, vs) = simulator_with_schedule().await;
    let start = NaiveDate::from_ymd_opt(2024, 1, 1)
        .unwrap()
        .and_hms_opt(9, 0, 0)
        .unwrap();
    let secondary = Rotation::new(
        "secondary",
        RotationUnit::Weekly,
        1,
        start,
        vec![Participant::Member(email("cat"))],
    );
    sim.add_schedule(VendorSchedule {
        rotations: vec![daily_schedule("VS").rotations[0].clone(), secondary],
        ..daily_schedule("VS")
    });
    let rotations = sim.rotation_ids(&vs);
    let limited = vec![rotations[1].clone()];
    let id =
        sim.insert_override_for_rotations(&vs, Span::new(day(2), day(5), email("eve")), &limited);
    let provider = sim.provider();
    let past = Window::new(day(1), now()).unwrap();
    let before = provider.on_call(&vs, past).await.unwrap();
    let store = InMemoryStateStore::new();
    let report = export(&provider, &host(3, 10), &store, now()).await;
    assert!(report.errors.is_empty(), "{report}");
    let cut = sim.overrides(&vs).into_iter().find(|o| o.id == id).unwrap();
    assert_eq!(
        (cut.span.start, cut.span.end),
        (day(2), now()),
        "cut at now"
    );
    assert_eq!(
        sim.override_rotations(&vs, &id),
        Some(Some(limited)),
        "the cut keeps its rotations"
    );
    let after = provider.on_call(&vs, past).await.unwrap();
    assert_eq!(after, before, "R1: the past of every rotation is as it was");
}

#[tokio::test]
async fn lost_and_dropped_creates_are_not_sent_twice() {
    let (sim, vs) = simulator_with_schedule().await;
    let provider = sim.provider();
    let item = |d: i64, alias: &str| NewOverride {
        span: Span::new(day(d), day(d + 1), email("ann")),
        id: Some(OverrideId::new(alias)),
    };
    // Lost after it landed: the item is Transient and the override exists, once.
    sim.inject(Trigger::Write(1), Fault::LoseResponse);
    let r = provider
        .create_overrides(&vs, &[item(5, "lost")])
        .await
        .unwrap();
    assert!(matches!(r[0], Err(Error::Transient { .. })), "{r:?}");
    // Dropped before it landed: Transient, and nothing exists.
    sim.inject_http(Trigger::Write(2), HttpFault::DropConnection);
    let r = provider
        .create_overrides(&vs, &[item(6, "dropped")])
        .await
        .unwrap();
    assert!(matches!(r[0], Err(Error::Transient { .. })), "{r:?}");
    // Slower than the client's timeout: lost to it, though it landed.
    sim.inject_http(
        Trigger::Write(3),
        HttpFault::Slow(Duration::from_millis(600)),
    );
    let impatient = sim
        .provider_builder()
        .with_timeout(Duration::from_millis(100))
        .build()
        .unwrap();
    let r = impatient
        .create_overrides(&vs, &[item(7, "slow")])
        .await
        .unwrap();
    assert!(
        matches!(&r[0], Err(Error::Transient { message }) if message.contains("no answer within")),
        "{r:?}"
    );
    let held: Vec<String> = sim
        .overrides(&vs)
        .iter()
        .map(|o| o.id.to_string())
        .collect();
    assert_eq!(
        held,
        ["lost", "slow"],
        "the lost and the slow landed; the dropped did not"
    );
    let posts = sim.requests().iter().filter(|r| r.method == "POST").count();
    assert_eq!(posts, 3, "each create sent once");
    // A person's edit keeps the alias (Opsgenie edits in place).
    let moved = Span::new(day(8), day(9), email("bob"));
    assert_eq!(
        sim.edit_override(&vs, &OverrideId::new("lost"), moved.clone()),
        Some(OverrideId::new("lost"))
    );
    assert_eq!(
        provider
            .get_override(&vs, &OverrideId::new("lost"))
            .await
            .unwrap()
            .unwrap()
            .span,
        moved
    );
}

#[tokio::test]
async fn rate_limits_pause_and_succeed() {
    let (sim, vs) = simulator_with_schedule().await;
    sim.rate_limit_next(3);
    let items: Vec<NewOverride> = (5..9)
        .map(|d| NewOverride {
            span: Span::new(day(d), day(d + 1), email("ann")),
            id: Some(OverrideId::new(format!("a{d}"))),
        })
        .collect();
    let results = sim.provider().create_overrides(&vs, &items).await.unwrap();
    assert!(results.iter().all(Result::is_ok), "{results:?}");
    let log = sim.requests();
    assert_eq!(log.iter().filter(|r| r.status == Some(429)).count(), 3);
    assert_eq!(log.iter().filter(|r| r.status == Some(201)).count(), 4);
    assert_eq!(sim.overrides(&vs).len(), 4);
}

#[tokio::test]
async fn a_batch_of_creates_goes_out_concurrently() {
    let (sim, vs) = simulator_with_schedule().await;
    sim.set_latency(Duration::from_millis(100));
    let items: Vec<NewOverride> = (5..25)
        .map(|d| NewOverride {
            span: Span::new(day(d), day(d + 1), email("ann")),
            id: Some(OverrideId::new(format!("c{d}"))),
        })
        .collect();
    let provider = sim
        .provider_builder()
        .with_max_concurrency(20)
        .build()
        .unwrap();
    let started = Instant::now();
    let results = provider.create_overrides(&vs, &items).await.unwrap();
    let took = started.elapsed();
    assert!(results.iter().all(Result::is_ok));
    let ids: Vec<String> = results
        .into_iter()
        .map(|r| r.unwrap().id.to_string())
        .collect();
    let asked: Vec<String> = items
        .iter()
        .map(|i| i.id.clone().unwrap().to_string())
        .collect();
    assert_eq!(ids, asked, "one result per item, in order");
    // One at a time would take 20 × 100 ms.
    assert!(took < Duration::from_millis(1000), "took {took:?}");
    // Bounded across clones: five batches of four at once, four requests at a time in all, take
    // at least five rounds.
    let bounded = sim
        .provider_builder()
        .with_max_concurrency(4)
        .build()
        .unwrap();
    let batches: Vec<Vec<NewOverride>> = (0..5)
        .map(|b| {
            (0..4)
                .map(|i| {
                    let d = 30 + 4 * b + i;
                    NewOverride {
                        span: Span::new(day(d), day(d + 1), email("bob")),
                        id: Some(OverrideId::new(format!("c{d}"))),
                    }
                })
                .collect()
        })
        .collect();
    let started = Instant::now();
    let all = futures_util::future::join_all(batches.iter().map(|batch| {
        let clone = bounded.clone();
        let vs = vs.clone();
        async move { clone.create_overrides(&vs, batch).await }
    }))
    .await;
    assert!(all
        .iter()
        .all(|r| r.as_ref().unwrap().iter().all(Result::is_ok)));
    assert!(
        started.elapsed() >= Duration::from_millis(500),
        "{:?}",
        started.elapsed()
    );
}

/// The Provider contract: an update that ends a running override at or before the vendor's now
/// ends it at the vendor's now, whether the vendor clamps (default) or refuses such an end.
#[tokio::test]
async fn cutting_a_running_override_ends_it_at_the_vendors_now() {
    for mode in [PastEnd::Clamp, PastEnd::Refuse] {
        let (sim, vs) = simulator_with_schedule().await;
        sim.update_dialect(|d| d.past_end = mode);
        let id = sim.insert_override(&vs, Span::new(day(2), day(4), email("eve")));
        // The vendor's clock runs 2 s ahead of the caller's idea of now by the time the cut lands.
        sim.set_clock_step(TimeDelta::seconds(1));
        sim.set_now(now() + TimeDelta::seconds(1));
        let cut = Span::new(day(2), now(), email("eve"));
        let held = sim
            .provider()
            .update_override(&vs, &id, &cut)
            .await
            .unwrap();
        let vendor = sim.overrides(&vs)[0].span.end;
        assert_eq!(
            held.span.end, vendor,
            "{mode:?}: the answer is what the vendor holds"
        );
        assert!(
            vendor > now() && vendor <= sim.now() + TimeDelta::seconds(1),
            "{mode:?}: {vendor}"
        );
    }
}

#[tokio::test]
async fn requests_outside_the_simulated_endpoints_are_logged() {
    let (sim, _vs) = simulator_with_schedule().await;
    let response = reqwest::Client::new()
        .get(format!("{}/v2/alerts", sim.uri()))
        .header("Authorization", format!("GenieKey {READ_WRITE_KEY}"))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status().as_u16(), 404);
    let log = sim.requests();
    assert!(!log[0].simulated);
    assert_eq!(log[0].path, "/v2/alerts");
}

#[tokio::test]
async fn ended_and_future_rotations_take_no_role() {
    let (sim, vs) = simulator_with_schedule().await;
    let local = |d: u32| {
        NaiveDate::from_ymd_opt(2024, 1, d)
            .unwrap()
            .and_hms_opt(9, 0, 0)
            .unwrap()
    };
    let mut ended = Rotation::new(
        "ended",
        RotationUnit::Daily,
        1,
        local(1),
        vec![Participant::Member(email("cat"))],
    );
    ended.end = Some(local(2));
    let future = Rotation::new(
        "future",
        RotationUnit::Daily,
        1,
        local(20),
        vec![Participant::Member(email("dan"))],
    );
    let current = daily_schedule("VS").rotations[0].clone();
    sim.add_schedule(VendorSchedule {
        rotations: vec![ended, current, future],
        ..daily_schedule("VS")
    });
    let provider = sim.provider();
    // The configuration lists all three, with their start and end.
    let all = provider.schedule(&vs).await.unwrap().rotations;
    assert_eq!(all.len(), 3);
    assert_eq!(all[0].end, Some(local(2)));
    let report = provider
        .on_call_report(&vs, Window::new(day(3), day(6)).unwrap())
        .await
        .unwrap();
    let names: Vec<&str> = report.timelines.iter().map(|t| t.name.as_str()).collect();
    assert_eq!(
        names,
        ["daily"],
        "only the rotation that covers the window is a role"
    );
    let left_out: Vec<String> = report
        .notes
        .iter()
        .filter_map(|n| match n {
            oncall_opsgenie::Note::RotationOutsideWindow { rotation, .. } => Some(rotation.clone()),
            _ => None,
        })
        .collect();
    assert_eq!(left_out, ["ended", "future"]);
}
