//! `migrate`: a destination's ledger found again on another connection, by id or by exact span,
//! over in-memory providers, and from the Opsgenie simulator to the JSM simulator under every
//! migration dialect.

#![allow(clippy::unwrap_used)] // tests: a panic is the failure report

use chrono::{DateTime, TimeDelta, TimeZone, Utc};
use oncall_sync::testkit::{InMemoryProvider, VendorSimulator};
use oncall_sync::{
    migrate, Absence, Capabilities, ConnectionId, Destination, DestinationId, DestinationState,
    Email, Error, Found, InMemoryStateStore, LastRun, Member, Migration, Override, OverrideId,
    RoleIndex, Span, StateStore, SyncMode, VendorSchedule, VendorScheduleId,
};

fn t(h: i64) -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 6, 1, 0, 0, 0).unwrap() + TimeDelta::hours(h)
}

fn ann() -> Email {
    Email::parse("ann@example.com").unwrap()
}

fn schedule(id: &str, name: &str) -> VendorSchedule {
    VendorSchedule {
        id: VendorScheduleId(id.into()),
        name: name.into(),
        zone: chrono_tz::UTC,
        members: vec![Member::new(ann(), "Ann")],
        rotations: Vec::new(),
    }
}

fn jsm_like(now: DateTime<Utc>) -> InMemoryProvider {
    let caps = Capabilities {
        max_batch: 8,
        batch_is_one_request: false,
        update_in_place: true,
        client_ids: false,
        delete_truncates_running: false,
    };
    InMemoryProvider::new("memory-jsm", caps, now)
}

fn destination() -> Destination {
    Destination {
        id: DestinationId("d".into()),
        connection: ConnectionId("og".into()),
        schedule: VendorScheduleId("S".into()),
        role: RoleIndex::PRIMARY,
        mode: oncall_sync::DestinationMode::Protect,
    }
}

struct World {
    og: InMemoryProvider,
    jsm: InMemoryProvider,
    store: InMemoryStateStore,
    ledger: Vec<Override>,
}

/// Three overrides of ours in Opsgenie (one ended, one running, one future), copied to JSM with
/// new ids; a person stretched the future one in Opsgenie before the move.
async fn world() -> World {
    let now = t(10);
    let og = InMemoryProvider::opsgenie_like(now);
    og.add_schedule(schedule("S", "Platform"));
    let jsm = jsm_like(now);
    jsm.add_schedule(schedule("J", "Platform"));
    jsm.add_schedule(schedule("K", "Other"));
    let spans = [
        Span::new(t(0), t(5), ann()),
        Span::new(t(8), t(12), ann()),
        Span::new(t(20), t(24), ann()),
    ];
    let mut ledger = Vec::new();
    for span in spans {
        let id = og.insert_override(&VendorScheduleId("S".into()), span.clone());
        ledger.push(Override { id, span });
    }
    // A person stretched the future one by an hour in Opsgenie.
    let stretched = Span::new(t(20), t(25), ann());
    og.edit_override(
        &VendorScheduleId("S".into()),
        &ledger[2].id,
        stretched.clone(),
    );
    // The migration copied what Opsgenie holds (not the ended one), under new ids (the in-memory
    // vendors count their ids alike: move JSM's on first).
    for _ in 0..10 {
        let id = jsm.insert_override(&VendorScheduleId("K".into()), Span::new(t(0), t(1), ann()));
        jsm.remove_override(&VendorScheduleId("K".into()), &id);
    }
    for span in [ledger[1].span.clone(), stretched] {
        jsm.insert_override(&VendorScheduleId("J".into()), span);
    }
    let store = InMemoryStateStore::new();
    let state = DestinationState {
        high_water: Some(t(30)),
        ledger: ledger.clone(),
        last_run: Some(LastRun {
            at: t(9),
            ok: true,
            error: None,
        }),
        ..DestinationState::default()
    };
    store.save(&destination().id, 0, &state).await.unwrap();
    World {
        og,
        jsm,
        store,
        ledger,
    }
}

#[tokio::test]
async fn finds_the_ledger_by_span_as_the_old_side_holds_it_and_keeps_the_mark() {
    let w = world().await;
    let to = ConnectionId("jsm".into());
    let m = Migration {
        destination: &destination(),
        from: Some(&w.og),
        to_connection: &to,
        to: &w.jsm,
        to_schedule: None,
        now: t(10),
        mode: SyncMode::DryRun,
    };
    let dry = migrate(m, &w.store).await.unwrap();
    assert!(!dry.saved);
    assert_eq!(
        w.store.get(&destination().id).unwrap().ledger,
        w.ledger,
        "a dry run saves nothing"
    );
    assert_eq!(
        dry.to.schedule,
        VendorScheduleId("J".into()),
        "found by the old schedule's name"
    );
    let found: Vec<Found> = dry.entries.iter().map(|e| e.found).collect();
    assert_eq!(found, [Found::Ended, Found::BySpan, Found::ByOldSidesSpan]);
    let report = migrate(
        Migration {
            mode: SyncMode::Apply,
            ..m
        },
        &w.store,
    )
    .await
    .unwrap();
    assert!(report.saved);
    let state = w.store.get(&destination().id).unwrap();
    assert_eq!(state.high_water, Some(t(30)), "the mark is kept");
    assert_eq!(state.last_run.map(|r| r.at), Some(t(9)));
    let jsm_ids: Vec<OverrideId> = w
        .jsm
        .overrides(&VendorScheduleId("J".into()))
        .into_iter()
        .map(|o| o.id)
        .collect();
    assert_eq!(state.ledger.len(), 2);
    assert!(
        state.ledger.iter().all(|l| jsm_ids.contains(&l.id)),
        "re-keyed to the new side's ids"
    );
    assert_eq!(
        state.ledger[1].span, w.ledger[2].span,
        "the ledger keeps believing its span (R3)"
    );
    // Once more: everything is found by id now, nothing changes.
    let again = migrate(
        Migration {
            mode: SyncMode::Apply,
            ..m
        },
        &w.store,
    )
    .await
    .unwrap();
    assert!(
        again.entries.iter().all(|e| e.found == Found::ById),
        "{again}"
    );
    assert_eq!(w.store.get(&destination().id).unwrap().ledger, state.ledger);
    assert!(again.to_string().contains("2 found by id"), "{again}");
}

#[tokio::test]
async fn without_the_old_side_an_edited_copy_is_not_found_and_kept_under_its_old_id() {
    let w = world().await;
    let to = ConnectionId("jsm".into());
    let m = Migration {
        destination: &destination(),
        from: None,
        to_connection: &to,
        to: &w.jsm,
        to_schedule: Some(&VendorScheduleId("J".into())),
        now: t(10),
        mode: SyncMode::Apply,
    };
    let report = migrate(m, &w.store).await.unwrap();
    let found: Vec<Found> = report.entries.iter().map(|e| e.found).collect();
    assert_eq!(found, [Found::Ended, Found::BySpan, Found::NotFound]);
    assert_eq!(
        report.entries[2].after.as_ref(),
        Some(&w.ledger[2]),
        "kept as it was (R3)"
    );
    assert_eq!(report.entries[2].absence, Some(Absence::OldSideUnread));
    assert!(
        report.to_string().contains("the old side cannot be read"),
        "{report}"
    );
}

/// The new side lacks two entries the old side holds: one as the ledger remembers it, one as a
/// person changed it there. Neither was carried by the migration: both are dropped from the
/// ledger (the next sync writes the host's spans), and the report says how the old side holds
/// each. One the old side no longer holds stays, a person's deletion (R3).
#[tokio::test]
async fn entries_the_old_side_holds_but_the_migration_did_not_carry_are_dropped_with_the_reason() {
    let w = world().await;
    let s = VendorScheduleId("S".into());
    let j = VendorScheduleId("J".into());
    // Two more of ours in Opsgenie, written after the account was copied (not in JSM).
    let later = [
        Span::new(t(30), t(34), ann()),
        Span::new(t(40), t(44), ann()),
    ];
    let mut ledger = w.ledger.clone();
    for span in &later {
        let id = w.og.insert_override(&s, span.clone());
        ledger.push(Override {
            id,
            span: span.clone(),
        });
    }
    // A person changed the first one there; a person deleted the stretched one everywhere.
    let changed = Span::new(t(30), t(35), ann());
    w.og.edit_override(&s, &ledger[3].id, changed.clone());
    let stretched_copy = w
        .jsm
        .overrides(&j)
        .into_iter()
        .find(|o| o.span.start == t(20))
        .unwrap();
    w.jsm.remove_override(&j, &stretched_copy.id);
    w.og.remove_override(&s, &ledger[2].id);
    let loaded = w.store.load(&destination().id).await.unwrap();
    let state = DestinationState {
        ledger: ledger.clone(),
        ..loaded.value
    };
    w.store
        .save(&destination().id, loaded.version, &state)
        .await
        .unwrap();
    let to = ConnectionId("jsm".into());
    let report = migrate(
        Migration {
            destination: &destination(),
            from: Some(&w.og),
            to_connection: &to,
            to: &w.jsm,
            to_schedule: None,
            now: t(10),
            mode: SyncMode::Apply,
        },
        &w.store,
    )
    .await
    .unwrap();
    let found: Vec<(Found, Option<Absence>)> = report
        .entries
        .iter()
        .map(|e| (e.found, e.absence.clone()))
        .collect();
    assert_eq!(
        found,
        [
            (Found::Ended, None),
            (Found::BySpan, None),
            (Found::NotFound, Some(Absence::DeletedOnTheOldSide)),
            (
                Found::NotCarried,
                Some(Absence::OldSideHoldsAChange(changed.clone()))
            ),
            (Found::NotCarried, Some(Absence::OldSideHoldsIt)),
        ]
    );
    let text = report.to_string();
    assert!(text.contains("2 not carried"), "{text}");
    assert!(text.contains("the old side holds it unchanged"), "{text}");
    assert!(text.contains("a person deleted it"), "{text}");
    let saved = w.store.get(&destination().id).unwrap().ledger;
    assert_eq!(saved.len(), 2, "{saved:?}");
    assert!(
        saved.iter().any(|l| l == &ledger[2]),
        "the deletion is kept (R3)"
    );
    assert!(
        !saved.iter().any(|l| l.span.start >= t(30)),
        "not carried: dropped, for the next sync to write: {saved:?}"
    );
}

/// A running override the migration copied from its own instant (the part the vendor holds from
/// then on) is found by span: spans are compared from now on. A cut that landed a few seconds
/// later than the ledger's end (the vendor's now) is found too.
#[tokio::test]
async fn a_running_override_is_found_by_the_part_the_vendor_holds() {
    let w = world().await;
    let j = VendorScheduleId("J".into());
    let running = w
        .jsm
        .overrides(&j)
        .into_iter()
        .find(|o| o.span.start == t(8))
        .unwrap();
    w.jsm.remove_override(&j, &running.id);
    let clipped = Span::new(t(9), t(12) + TimeDelta::seconds(4), ann());
    let copy = w.jsm.insert_override(&j, clipped);
    let to = ConnectionId("jsm".into());
    let report = migrate(
        Migration {
            destination: &destination(),
            from: None,
            to_connection: &to,
            to: &w.jsm,
            to_schedule: Some(&j),
            now: t(10),
            mode: SyncMode::DryRun,
        },
        &w.store,
    )
    .await
    .unwrap();
    assert_eq!(report.entries[1].found, Found::BySpan, "{report}");
    assert_eq!(report.entries[1].after.as_ref().unwrap().id, copy);
}

#[tokio::test]
async fn a_schedule_that_cannot_be_told_is_an_error_and_nothing_is_saved() {
    let w = world().await;
    w.jsm.add_schedule(schedule("J2", "Platform"));
    let to = ConnectionId("jsm".into());
    let m = Migration {
        destination: &destination(),
        from: Some(&w.og),
        to_connection: &to,
        to: &w.jsm,
        to_schedule: None,
        now: t(10),
        mode: SyncMode::Apply,
    };
    let e = migrate(m, &w.store).await.unwrap_err();
    assert!(
        matches!(&e, Error::Conflict { message } if message.contains("J2")),
        "{e}"
    );
    let e = migrate(Migration { from: None, ..m }, &w.store)
        .await
        .unwrap_err();
    assert!(
        matches!(&e, Error::NotFound { message, .. } if message.contains("give the new schedule's id")),
        "{e}"
    );
    assert_eq!(w.store.get(&destination().id).unwrap().ledger, w.ledger);
    // A given schedule that does not exist.
    let e = migrate(
        Migration {
            to_schedule: Some(&VendorScheduleId("nope".into())),
            ..m
        },
        &w.store,
    )
    .await
    .unwrap_err();
    assert!(matches!(e, Error::NotFound { .. }));
}

// ---------------------------------------------------------------------------------------------
// From the Opsgenie simulator to the JSM simulator, under every migration dialect.

mod http {
    use super::*;
    use oncall_sync::jsm::testkit::{JsmDialect, JsmSimulator, MigrationDialect};
    use oncall_sync::opsgenie::testkit::OpsgenieSimulator;
    use oncall_sync::{
        sync, Provider, Schedule, ScheduleId, Shift, SyncOptions, SyncReport, SyncTarget,
    };
    use std::collections::HashMap;

    const PEOPLE: [&str; 4] = ["ann", "bob", "cat", "dan"];

    fn person(name: &str) -> Email {
        Email::parse(&format!("{name}@example.com")).unwrap()
    }

    /// Day `d` at 09:00 UTC (2024).
    fn day(d: i64) -> DateTime<Utc> {
        Utc.with_ymd_and_hms(2024, 1, 1, 9, 0, 0).unwrap() + TimeDelta::days(d)
    }

    fn rota(until: i64, swapped: bool) -> Schedule {
        let mut who: Vec<&str> = (0..until)
            .map(|d| PEOPLE[d as usize % PEOPLE.len()])
            .collect();
        if swapped {
            who.swap(9, 10);
        }
        let shifts = (0..until)
            .map(|d| Shift::new(day(d), day(d + 1), vec![Some(person(who[d as usize]))]))
            .collect();
        let members = PEOPLE.iter().map(|p| Member::new(person(p), *p)).collect();
        Schedule::new(
            ScheduleId("host".into()),
            chrono_tz::UTC,
            vec!["primary".into()],
            members,
            shifts,
        )
        .unwrap()
    }

    fn vendor_schedule() -> VendorSchedule {
        VendorSchedule {
            id: VendorScheduleId("og-platform".into()),
            name: "Platform".into(),
            zone: chrono_tz::UTC,
            members: PEOPLE.iter().map(|p| Member::new(person(p), *p)).collect(),
            rotations: vec![oncall_sync::Rotation::new(
                "Primary",
                oncall_sync::RotationUnit::Weekly,
                1,
                chrono::NaiveDate::from_ymd_opt(2024, 1, 1)
                    .unwrap()
                    .and_hms_opt(9, 0, 0)
                    .unwrap(),
                PEOPLE
                    .iter()
                    .map(|p| oncall_sync::Participant::Member(person(p)))
                    .collect(),
            )],
        }
    }

    async fn run_sync(
        rota: &Schedule,
        destination: &Destination,
        provider: &dyn Provider,
        store: &InMemoryStateStore,
        now: DateTime<Utc>,
    ) -> SyncReport {
        let targets = [SyncTarget {
            destination,
            provider,
        }];
        let options = SyncOptions {
            now,
            horizon: None,
            mode: SyncMode::Apply,
        };
        sync(rota, &targets, store, options).await.unwrap()
    }

    /// A destination with a live ledger in Opsgenie, and people's changes there: a manual override
    /// (day 5, 10:00-12:00), one of ours deleted (day 6), one of ours stretched by two hours (day 7).
    /// Atlassian migrates; `migrate` moves the destination; the host swaps days 9 and 10 and
    /// extends the rota; the sync through JSM keeps every person's change, writes the host's,
    /// and writes nothing twice; a second sync writes nothing.
    async fn move_one(migration: MigrationDialect, dialect: JsmDialect, old_side: bool) -> String {
        let now = day(3) + TimeDelta::hours(3);
        let og = OpsgenieSimulator::start_at(now).await;
        og.add_schedule(vendor_schedule());
        let og_provider = og.provider();
        let vs = VendorScheduleId("og-platform".into());
        let destination = Destination {
            id: DestinationId("platform-primary".into()),
            connection: ConnectionId("og".into()),
            schedule: vs.clone(),
            role: RoleIndex::PRIMARY,
            mode: oncall_sync::DestinationMode::Protect,
        };
        let store = InMemoryStateStore::new();
        let first = run_sync(&rota(15, false), &destination, &og_provider, &store, now).await;
        assert!(first.is_ok(), "{first}");
        let ours = store.get(&destination.id).unwrap().ledger;
        let of_day = |d: i64| {
            ours.iter()
                .find(|o| o.span.start == day(d))
                .unwrap()
                .clone()
        };
        let manual = Span::new(
            day(5) + TimeDelta::hours(1),
            day(5) + TimeDelta::hours(3),
            person("dan"),
        );
        og.insert_override(&vs, manual.clone());
        og.remove_override(&vs, &of_day(6).id);
        let stretched = Span::new(
            day(7),
            day(8) + TimeDelta::hours(2),
            of_day(7).span.member.clone(),
        );
        og.edit_override(&vs, &of_day(7).id, stretched.clone());

        let jsm = JsmSimulator::start_with(now, dialect).await;
        let moved = jsm.import_migrated(&og, &[vendor_schedule()], migration);
        let jsm_provider = jsm.provider();
        let to = ConnectionId("jsm".into());
        let report = migrate(
            Migration {
                destination: &destination,
                from: old_side.then_some(&og_provider as &dyn Provider),
                to_connection: &to,
                to: &jsm_provider,
                // With Opsgenie off, its schedule's name cannot be read: the id is given.
                to_schedule: (!old_side).then_some(&moved[0].1),
                now,
                mode: SyncMode::Apply,
            },
            &store,
        )
        .await
        .unwrap();
        assert_eq!(
            report.to.schedule, moved[0].1,
            "the migrated schedule is found"
        );
        assert_eq!(report.high_water, Some(day(15)));
        assert_eq!(jsm.write_calls(), 0, "the move writes nothing");

        let later = now + TimeDelta::hours(1);
        jsm.set_now(later);
        let host = rota(20, true);
        let moved_destination = report.to.clone();
        let sync = run_sync(&host, &moved_destination, &jsm_provider, &store, later).await;
        assert!(sync.is_ok(), "{sync}");
        let held = jsm.overrides(&moved_destination.schedule);
        // Nothing twice.
        let mut by_span: HashMap<&Span, usize> = HashMap::new();
        for o in &held {
            *by_span.entry(&o.span).or_default() += 1;
        }
        assert!(by_span.values().all(|&n| n == 1), "written twice: {held:?}");
        // Every person's change survives.
        assert!(
            held.iter().any(|o| o.span == manual),
            "the manual override is lost: {held:?}"
        );
        assert!(
            held.iter().any(|o| o.span == stretched),
            "the stretched one is lost: {held:?}"
        );
        assert!(
            !held.iter().any(|o| o.span.start == day(6)),
            "the deleted one came back: {held:?}"
        );
        assert!(
            !held
                .iter()
                .any(|o| o.span.start == day(7) && o.span.end == day(8)),
            "day 7 twice: {held:?}"
        );
        // The host's change went out (R4), and the new days (R2).
        let shift = |d: i64| host.shifts()[d as usize].assignees[0].clone().unwrap();
        for d in [9, 10, 15, 19] {
            assert!(
                held.iter()
                    .any(|o| o.span == Span::new(day(d), day(d + 1), shift(d))),
                "day {d} as the host has it: {held:?}"
            );
        }
        let again = run_sync(
            &host,
            &moved_destination,
            &jsm_provider,
            &store,
            later + TimeDelta::minutes(5),
        )
        .await;
        assert_eq!(again.destinations[0].write_calls, 0, "{again}");
        assert!(jsm.requests().iter().all(|r| r.simulated));
        format!(
            "{} by id, {} by span, {} by the old side's span, {} not found, {} not carried",
            report.count(Found::ById),
            report.count(Found::BySpan),
            report.count(Found::ByOldSidesSpan),
            report.count(Found::NotFound),
            report.count(Found::NotCarried)
        )
    }

    /// README "Moving off Opsgenie" says to pause syncs while a destination moves. One that ran
    /// anyway, through Opsgenie after Atlassian copied the account and before `migrate`, wrote
    /// days the migration did not carry. `migrate` reports them as not carried (the old side
    /// holds them unchanged), not as a person's deletion, and drops them from the ledger; the
    /// first sync through JSM writes them, each once; the next writes nothing.
    async fn move_after_a_sync_during_the_move(migration: MigrationDialect, dialect: JsmDialect) {
        let now = day(3) + TimeDelta::hours(3);
        let og = OpsgenieSimulator::start_at(now).await;
        og.add_schedule(vendor_schedule());
        let og_provider = og.provider();
        let vs = VendorScheduleId("og-platform".into());
        let destination = Destination {
            id: DestinationId("platform-primary".into()),
            connection: ConnectionId("og".into()),
            schedule: vs.clone(),
            role: RoleIndex::PRIMARY,
            mode: oncall_sync::DestinationMode::Protect,
        };
        let store = InMemoryStateStore::new();
        let first = run_sync(&rota(15, false), &destination, &og_provider, &store, now).await;
        assert!(first.is_ok(), "{first}");
        // 1. Atlassian copies the account.
        let jsm = JsmSimulator::start_with(now, dialect).await;
        let moved = jsm.import_migrated(&og, &[vendor_schedule()], migration);
        // The host's job syncs once more through Opsgenie before `migrate`: days 15 to 19.
        let later = now + TimeDelta::hours(1);
        og.set_now(later);
        jsm.set_now(later);
        let second = run_sync(&rota(20, false), &destination, &og_provider, &store, later).await;
        assert!(second.is_ok(), "{second}");
        let written_meanwhile: Vec<Override> = store
            .get(&destination.id)
            .unwrap()
            .ledger
            .into_iter()
            .filter(|l| l.span.start >= day(15))
            .collect();
        assert_eq!(written_meanwhile.len(), 5);
        // 4. `oncall migrate`, Opsgenie still readable.
        let jsm_provider = jsm.provider();
        let to = ConnectionId("jsm".into());
        let report = migrate(
            Migration {
                destination: &destination,
                from: Some(&og_provider as &dyn Provider),
                to_connection: &to,
                to: &jsm_provider,
                to_schedule: None,
                now: later,
                mode: SyncMode::Apply,
            },
            &store,
        )
        .await
        .unwrap();
        assert_eq!(report.to.schedule, moved[0].1);
        assert_eq!(report.count(Found::NotFound), 0, "{report}");
        let not_carried: Vec<&Override> = report
            .entries
            .iter()
            .filter(|e| e.found == Found::NotCarried)
            .map(|e| &e.before)
            .collect();
        assert_eq!(not_carried, written_meanwhile.iter().collect::<Vec<_>>());
        assert!(report
            .entries
            .iter()
            .filter(|e| e.found == Found::NotCarried)
            .all(|e| e.absence == Some(Absence::OldSideHoldsIt) && e.after.is_none()));
        assert!(report.to_string().contains("5 not carried"), "{report}");
        // 5. The first sync through JSM writes the days the migration did not carry, once each.
        let moved_destination = report.to.clone();
        let at = later + TimeDelta::minutes(5);
        let sync = run_sync(
            &rota(20, false),
            &moved_destination,
            &jsm_provider,
            &store,
            at,
        )
        .await;
        assert!(sync.is_ok(), "{sync}");
        let held = jsm.overrides(&moved_destination.schedule);
        let mut by_span: HashMap<&Span, usize> = HashMap::new();
        for o in &held {
            *by_span.entry(&o.span).or_default() += 1;
        }
        assert!(by_span.values().all(|&n| n == 1), "written twice: {held:?}");
        for l in &written_meanwhile {
            assert!(
                held.iter().any(|o| o.span == l.span),
                "JSM lacks {} after the first sync through it: {held:?}",
                l.span
            );
        }
        let again = run_sync(
            &rota(20, false),
            &moved_destination,
            &jsm_provider,
            &store,
            at + TimeDelta::minutes(5),
        )
        .await;
        assert_eq!(again.destinations[0].write_calls, 0, "{again}");
    }

    #[tokio::test]
    async fn overrides_a_sync_wrote_during_the_move_are_not_carried_and_written_by_the_first_jsm_sync(
    ) {
        for (name, migration) in MigrationDialect::variants() {
            eprintln!("{name}");
            move_after_a_sync_during_the_move(migration, JsmDialect::default()).await;
        }
        for (name, dialect) in JsmDialect::variants()
            .into_iter()
            .filter(|(n, _)| !n.starts_with("rate_limit"))
        {
            eprintln!("{name}");
            move_after_a_sync_during_the_move(MigrationDialect::default(), dialect).await;
        }
    }

    #[tokio::test]
    async fn a_destination_moves_off_opsgenie_under_every_migration_and_jsm_dialect() {
        for (migration_name, migration) in MigrationDialect::variants() {
            for (dialect_name, dialect) in JsmDialect::variants() {
                if matches!(dialect_name, "rate_limit=refused" | "rate_limit=delayed") {
                    continue; // below, once: their waits are real time
                }
                let found = move_one(migration, dialect, true).await;
                if dialect_name == "documented" {
                    eprintln!("{migration_name}: {found}");
                }
            }
            let found = move_one(migration, JsmDialect::default(), false).await;
            eprintln!("{migration_name}, Opsgenie already off: {found}");
        }
        for (name, dialect) in JsmDialect::variants()
            .into_iter()
            .filter(|(n, _)| n.starts_with("rate_limit"))
        {
            let found = move_one(MigrationDialect::default(), dialect, true).await;
            eprintln!("{name}: {found}");
        }
    }
}

/// After `migrate`, and before the host moves the destination in its config, a sync through the
/// old connection would plan with a ledger of the new side's ids (days it wrote to the old side
/// would count as ours, protected, on the new one): refused, typed, nothing written or saved.
/// Through the new connection it syncs.
#[tokio::test]
async fn after_migrate_a_sync_through_the_old_connection_is_refused_and_writes_nothing() {
    use oncall_sync::{
        sync, Schedule, ScheduleId, Shift, SyncOptions, SyncTarget, ValidationError,
    };
    let w = world().await;
    let to = ConnectionId("jsm".into());
    let moved = migrate(
        Migration {
            destination: &destination(),
            from: Some(&w.og),
            to_connection: &to,
            to: &w.jsm,
            to_schedule: None,
            now: t(10),
            mode: SyncMode::Apply,
        },
        &w.store,
    )
    .await
    .unwrap();
    let saved = w.store.get(&destination().id).unwrap();
    let host = Schedule::new(
        ScheduleId("host".into()),
        chrono_tz::UTC,
        vec!["primary".into()],
        vec![Member::new(ann(), "Ann")],
        vec![
            Shift::new(t(8), t(12), vec![Some(ann())]),
            Shift::new(t(20), t(24), vec![Some(ann())]),
            Shift::new(t(24), t(30), vec![Some(ann())]),
        ],
    )
    .unwrap();
    let options = SyncOptions {
        now: t(10),
        horizon: None,
        mode: SyncMode::Apply,
    };
    let old = destination();
    let og_writes = w.og.write_calls();
    let report = sync(
        &host,
        &[SyncTarget {
            destination: &old,
            provider: &w.og,
        }],
        &w.store,
        options,
    )
    .await
    .unwrap();
    let errors = &report.destinations[0].errors;
    assert!(
        matches!(
            errors.first().map(|e| &e.error),
            Some(Error::InvalidInput(ValidationError::LedgerElsewhere(e)))
                if e.home.connection == to && e.asked.connection == old.connection
        ),
        "{report}"
    );
    assert_eq!(w.og.write_calls(), og_writes, "nothing written");
    assert_eq!(w.store.get(&old.id).unwrap(), saved, "nothing saved");
    // Through the new connection, as the config says after the edit `migrate` printed.
    let new = moved.to.clone();
    let report = sync(
        &host,
        &[SyncTarget {
            destination: &new,
            provider: &w.jsm,
        }],
        &w.store,
        options,
    )
    .await
    .unwrap();
    assert!(
        !report.destinations[0]
            .errors
            .iter()
            .any(|e| matches!(e.error, Error::InvalidInput(_))),
        "{report}"
    );
}
