//! Sync hardening: the cases an independent review of the planner and driver found, each a named
//! test (vendors' clocks, whole seconds, overrides people moved far away, the scope `S`, shared
//! vendor schedules, members the vendor does not know, answers that were lost).

#![allow(clippy::unwrap_used)] // tests: a panic is the failure report

mod common;

use chrono::{TimeDelta, Timelike};
use common::*;
use oncall_sync::testkit::{Fault, Trigger, VendorSimulator};
use oncall_sync::{
    alias_attempt, alias_for, sync, Action, ConnectionId, Destination, DestinationId, Error,
    Provider, RoleIndex, Schedule, ScheduleId, Shift, Span, SyncMode, SyncOptions, SyncStatus,
    SyncTarget, ValidationError, VendorSchedule, Warning,
};

/// Who the vendor's overrides put on call over `[from, to)` equals what the host wants.
fn assert_vendor_shows_desired(
    f: &Fixture,
    schedule: &Schedule,
    from: chrono::DateTime<chrono::Utc>,
    to: chrono::DateTime<chrono::Utc>,
) {
    assert_eq!(
        f.rendered(from, to),
        desired_view(schedule, from, to),
        "{:?}",
        f.vendor_overrides()
    );
}

/// Bug 1: a first export whose day 7 create fails leaves H at day 7 and days 8-10 written; the host
/// then drops days 8-10; a person moves our day 9 override (Opsgenie keeps its alias) to day 7
/// 12:00-18:00, inside the fresh region. The next sync clears it: the fresh region shows exactly the
/// desired spans (R2).
#[tokio::test]
async fn our_override_moved_from_beyond_the_horizon_into_the_fresh_region_is_cleared() {
    for vendor in VENDORS {
        let f = Fixture::new(vendor, at(3, 12));
        f.provider.refuse_creates_starting_at(
            day(7),
            Error::Rejected {
                message: "refused".into(),
            },
        );
        let first = f.sync(&schedule(3, 11), at(3, 12)).await;
        assert_eq!(first.status, SyncStatus::Partial, "{first}");
        assert_eq!(f.high_water(), Some(day(7)));
        f.provider.clear_faults();

        let host = schedule(3, 8);
        let day9 = f
            .ledger()
            .into_iter()
            .find(|l| l.span.start == day(9))
            .unwrap();
        let moved = Span::new(at(7, 12), at(7, 18), day9.span.member.clone());
        f.provider.edit_override(&f.vs(), &day9.id, moved).unwrap();

        let report = f.sync(&host, at(3, 13)).await;
        assert_eq!(report.status, SyncStatus::Ok, "{vendor:?}: {report}");
        // The vendor holds exactly the desired span there, not the desired one plus the moved one
        // (which the newer create would merely mask on a vendor where the newest wins).
        let there: Vec<Span> = f
            .vendor_overrides()
            .into_iter()
            .filter(|o| o.span.overlaps(day(7), day(8)))
            .map(|o| o.span)
            .collect();
        assert_eq!(
            there,
            [Span::new(day(7), day(8), email(PEOPLE[7 % 5]))],
            "{vendor:?}: {report}"
        );
        assert_eq!(f.sync(&host, at(3, 14)).await.write_calls, 0);
    }
}

/// Bug 2: a person moves our day 8 override (Opsgenie keeps its alias) to day 15, past H and E and
/// out of the window the sync reads; the host then changes day 8. The ledger entry is not forgotten
/// while the vendor holds it: the moved override stays ours (left alone past the scope), and the
/// new day 8 override takes the next alias at once instead of being refused.
#[tokio::test]
async fn our_override_moved_out_of_the_read_window_stays_in_the_ledger() {
    let f = Fixture::new(Vendor::OpsgenieLike, at(3, 12));
    let mut host = schedule(3, 11);
    assert_eq!(f.sync(&host, at(3, 12)).await.status, SyncStatus::Ok);
    let day8 = alias_for(&f.destination.id, day(8));
    let moved = Span::new(day(15), day(16), email("ann"));
    f.provider
        .edit_override(&f.vs(), &day8, moved.clone())
        .unwrap();
    host.replace_assignee(RoleIndex::PRIMARY, day(8), Some(email("eve")))
        .unwrap();

    let report = f.sync(&host, at(3, 13)).await;
    assert_eq!(report.status, SyncStatus::Ok, "{report}");
    assert!(
        report
            .outcomes
            .iter()
            .all(|o| !matches!(o.operation.action, Action::Forget { .. })),
        "nothing forgotten while the vendor holds it: {report}"
    );
    assert_eq!(report.write_calls, 1, "one create, no refusal: {report}");
    let ledger = f.ledger();
    assert!(
        ledger.iter().any(|l| l.id == day8 && l.span == moved),
        "the moved override is still ours, where it lies: {ledger:?}"
    );
    let next = alias_attempt(&f.destination.id, day(8), 1);
    assert!(
        ledger
            .iter()
            .any(|l| l.id == next && l.span == Span::new(day(8), day(9), email("eve"))),
        "{ledger:?}"
    );
    assert!(
        f.vendor_overrides()
            .iter()
            .any(|o| o.id == day8 && o.span == moved),
        "left alone past the scope"
    );
    assert_eq!(f.sync(&host, at(3, 14)).await.write_calls, 0);
}

/// Bug 3: the vendor's clock is 5 s ahead of the sync's `now`. A sync cuts our running override
/// (the host left the role empty) and the vendor ends it at its own now. A second sync 2 s later,
/// nothing changed, makes no write: a cut that has landed is done (R6).
#[tokio::test]
async fn a_cut_that_landed_is_not_cut_again_with_the_vendor_clock_ahead() {
    for vendor in VENDORS {
        let f = Fixture::new(vendor, at(3, 12));
        let mut host = schedule(3, 11);
        assert_eq!(f.sync(&host, at(3, 12)).await.status, SyncStatus::Ok);
        host.replace_assignee(RoleIndex::PRIMARY, day(3), None)
            .unwrap();
        let now = at(3, 13);
        let ahead = TimeDelta::seconds(5);
        f.provider.set_now(now + ahead);
        let cut = f.sync_full(&host, now, &f.store, None).await;
        assert_eq!(cut.status, SyncStatus::Ok, "{vendor:?}: {cut}");
        assert_eq!(cut.write_calls, 1, "{cut}");
        let later = now + TimeDelta::seconds(2);
        f.provider.set_now(later + ahead);
        let again = f.sync_full(&host, later, &f.store, None).await;
        assert_eq!(again.write_calls, 0, "{vendor:?}: {again}");
        // And a minute later still: the cut ended before the sync's now by then.
        let minute = now + TimeDelta::seconds(62);
        f.provider.set_now(minute + ahead);
        assert_eq!(
            f.sync_full(&host, minute, &f.store, None).await.write_calls,
            0
        );
    }
}

/// Gap 4: two destinations on one vendor schedule of one connection would each delete the other's
/// overrides as foreign. `sync` refuses them before any call, naming both and the schedule.
#[tokio::test]
async fn two_destinations_on_one_vendor_schedule_are_refused_before_any_call() {
    let f = Fixture::new(Vendor::PagerDutyLike, at(3, 12));
    let host = Schedule::new(
        ScheduleId("host".into()),
        chrono_tz::UTC,
        vec!["primary".into(), "secondary".into()],
        members(),
        shifts(3, 11)
            .into_iter()
            .map(|s| Shift::new(s.start, s.end, vec![s.assignees[0].clone(), None]))
            .collect(),
    )
    .unwrap();
    let secondary = Destination {
        id: DestinationId("dest-secondary".into()),
        role: RoleIndex::SECONDARY,
        ..f.destination.clone()
    };
    let targets = [
        SyncTarget {
            destination: &f.destination,
            provider: &f.provider,
        },
        SyncTarget {
            destination: &secondary,
            provider: &f.provider,
        },
    ];
    let options = SyncOptions {
        now: at(3, 12),
        horizon: None,
        mode: SyncMode::Apply,
    };
    let refused = sync(&host, &targets, &f.store, options).await;
    assert_eq!(
        refused,
        Err(Error::InvalidInput(ValidationError::SharedVendorSchedule {
            first: f.destination.id.clone(),
            second: secondary.id.clone(),
            connection: f.destination.connection.clone(),
            schedule: f.destination.schedule.clone(),
        }))
    );
    let message = refused.unwrap_err().to_string();
    for name in ["dest", "dest-secondary", "VS", "conn"] {
        assert!(message.contains(name), "{message}");
    }
    assert!(f.provider.calls().is_empty(), "no call at all");
    // The same schedule on another connection (another account) is another vendor schedule.
    let elsewhere = Destination {
        connection: ConnectionId("other-account".into()),
        ..secondary.clone()
    };
    let targets = [
        targets[0],
        SyncTarget {
            destination: &elsewhere,
            provider: &f.provider,
        },
    ];
    assert!(sync(&host, &targets, &f.store, options).await.is_ok());
}

/// Gap 5a: host shift boundaries with a fraction of a second are invalid input, named.
#[test]
fn sub_second_shift_boundaries_are_rejected_where_they_are() {
    let mut shifts = shifts(3, 6);
    shifts[1].end += TimeDelta::milliseconds(250);
    shifts[2].start += TimeDelta::milliseconds(250);
    let refused = Schedule::new(
        ScheduleId("host".into()),
        chrono_tz::UTC,
        vec!["primary".into()],
        members(),
        shifts,
    );
    assert_eq!(
        refused,
        Err(ValidationError::SubSecondInstant {
            what: "shift 1 end".into(),
            value: day(5) + TimeDelta::milliseconds(250),
        })
    );
}

/// Gap 5b: every instant the library sends is whole seconds: the sync floors a sub-second `now`,
/// so the running shift is written from a whole second.
#[tokio::test]
async fn a_sub_second_now_is_floored_before_anything_is_sent() {
    for vendor in VENDORS {
        let f = Fixture::new(vendor, at(3, 12));
        let mut host = schedule(3, 11);
        let now = at(3, 12) + TimeDelta::milliseconds(700);
        f.provider.set_now(now);
        let report = f.sync_full(&host, now, &f.store, None).await;
        assert_eq!(report.status, SyncStatus::Ok, "{report}");
        // A cut at now is sent as a whole second too.
        host.replace_assignee(RoleIndex::PRIMARY, day(3), None)
            .unwrap();
        // (The vendor's own clock keeps whole seconds; on PagerDuty the cut is a delete, which
        // sends no instant, and the vendor ends the override at its own now.)
        let later = at(3, 13) + TimeDelta::milliseconds(300);
        f.provider.set_now(at(3, 13));
        let report = f.sync_full(&host, later, &f.store, None).await;
        assert_eq!(report.status, SyncStatus::Ok, "{report}");
        let overrides = f.vendor_overrides();
        assert!(
            overrides
                .iter()
                .all(|o| o.span.start.nanosecond() == 0 && o.span.end.nanosecond() == 0),
            "{vendor:?}: {overrides:?}"
        );
        assert_eq!(report.plan.as_ref().unwrap().now, at(3, 13), "floored");
    }
}

/// Gap 5c: with a vendor that keeps whole seconds, a create of the running shift whose answer was
/// lost (and whose state was never saved) is recognised by exact matching: nothing exists twice.
#[tokio::test]
async fn a_lost_create_of_the_running_shift_is_recognised_at_whole_seconds() {
    for vendor in VENDORS {
        let f = Fixture::new(vendor, at(3, 12));
        f.provider.set_whole_seconds(true);
        let host = schedule(3, 11);
        let now = at(3, 12) + TimeDelta::milliseconds(700);
        f.provider.inject(Trigger::Write(1), Fault::LoseResponse);
        let store = CrashingStore::new(&f.store, 0);
        f.provider.set_now(now);
        f.sync_full(&host, now, &store, None).await;
        let later = at(3, 12) + TimeDelta::milliseconds(1_900);
        f.provider.set_now(later);
        let report = f.sync_full(&host, later, &f.store, None).await;
        assert_eq!(report.status, SyncStatus::Ok, "{vendor:?}: {report}");
        let overrides = f.vendor_overrides();
        let running = overrides
            .iter()
            .filter(|o| o.span.start < day(4) && o.span.end > at(3, 12))
            .count();
        assert_eq!(running, 1, "{vendor:?}: written once: {overrides:?}");
        f.provider.set_now(later + TimeDelta::seconds(30));
        assert_eq!(
            f.sync_full(&host, later + TimeDelta::seconds(30), &f.store, None)
                .await
                .write_calls,
            0
        );
    }
}

/// Gap 6: a worker whose clock is behind (5 minutes, then 4 hours) plans with the last run's `now`
/// instead: no delete and re-create of the running shift, nothing created in the vendor's past, and
/// a warning that says so.
#[tokio::test]
async fn a_clock_that_goes_back_plans_from_the_last_run() {
    for vendor in VENDORS {
        let f = Fixture::new(vendor, at(3, 12));
        let host = schedule(3, 11);
        assert_eq!(f.sync(&host, at(3, 12)).await.status, SyncStatus::Ok);
        let before = f.vendor_overrides();
        for behind in [TimeDelta::minutes(5), TimeDelta::hours(4)] {
            let report = f.sync_full(&host, at(3, 12) - behind, &f.store, None).await;
            assert_eq!(report.status, SyncStatus::Ok, "{vendor:?}: {report}");
            assert_eq!(report.write_calls, 0, "{vendor:?}: {report}");
            assert!(
                report.warnings.contains(&Warning::ClockBehind {
                    given: at(3, 12) - behind,
                    last_run: at(3, 12),
                }),
                "{report}"
            );
            assert_eq!(report.plan.as_ref().unwrap().now, at(3, 12));
        }
        assert_eq!(f.vendor_overrides(), before);
    }
}

/// Gap 7, without a horizon: the host drops its last four shifts. The scope reaches the mark
/// (`S = max(E, H)`), so our overrides there are removed; a person's override there stays.
#[tokio::test]
async fn shifts_dropped_at_the_end_are_removed_without_a_horizon() {
    for vendor in VENDORS {
        let f = Fixture::new(vendor, at(3, 12));
        assert_eq!(
            f.sync(&schedule(3, 11), at(3, 12)).await.status,
            SyncStatus::Ok
        );
        let theirs = f.foreign(at(9, 12), at(9, 14), "eve");
        let host = schedule(3, 7);
        let report = f.sync(&host, at(3, 13)).await;
        assert_eq!(report.status, SyncStatus::Ok, "{vendor:?}: {report}");
        let overrides = f.vendor_overrides();
        assert!(
            overrides
                .iter()
                .filter(|o| o.id != theirs)
                .all(|o| o.span.end <= day(7)),
            "{vendor:?}: ours past the new end are gone: {overrides:?}"
        );
        assert!(overrides.iter().any(|o| o.id == theirs), "foreign stays");
        assert!(f.ledger().iter().all(|l| l.span.end <= day(7)));
        assert_eq!(f.sync(&host, at(3, 14)).await.write_calls, 0);
    }
}

/// Gap 7, with a horizon: the host vouches up to `now + horizon` (`S`), so a shift it drops inside
/// that loses our override; our overrides past `S` (exported under a longer horizon) stay.
#[tokio::test]
async fn shifts_dropped_within_the_horizon_are_removed_and_beyond_it_left_alone() {
    for vendor in VENDORS {
        let f = Fixture::new(vendor, at(3, 12));
        let long = Some(TimeDelta::days(10));
        f.provider.set_now(at(3, 12));
        let first = f
            .sync_full(&schedule(3, 20), at(3, 12), &f.store, long)
            .await;
        assert_eq!(first.status, SyncStatus::Ok, "{first}");
        // The host now plans only days 3-6 and syncs with a 5-day horizon: S = day 3 12:00 + 5 d.
        let host = schedule(3, 7);
        let short = Some(TimeDelta::days(5));
        f.provider.set_now(at(3, 13));
        let report = f.sync_full(&host, at(3, 13), &f.store, short).await;
        assert_eq!(report.status, SyncStatus::Ok, "{vendor:?}: {report}");
        let scope_end = at(3, 13) + TimeDelta::days(5);
        let overrides = f.vendor_overrides();
        assert!(
            overrides
                .iter()
                .all(|o| o.span.end <= day(7) || o.span.start >= scope_end),
            "{vendor:?}: {overrides:?}"
        );
        assert!(
            overrides.iter().any(|o| o.span.start == day(9)),
            "past S, left alone: {overrides:?}"
        );
        f.provider.set_now(at(3, 14));
        assert_eq!(
            f.sync_full(&host, at(3, 14), &f.store, short)
                .await
                .write_calls,
            0
        );
    }
}

/// Gap 7: a host that removes every shift (explicit shifts, no horizon) cuts the running override
/// and deletes the future ones up to the mark.
#[tokio::test]
async fn removing_every_shift_removes_our_future_overrides_too() {
    for vendor in VENDORS {
        let f = Fixture::new(vendor, at(3, 12));
        assert_eq!(
            f.sync(&schedule(3, 11), at(3, 12)).await.status,
            SyncStatus::Ok
        );
        let empty = Schedule::new(
            ScheduleId("host".into()),
            chrono_tz::UTC,
            vec!["primary".into()],
            members(),
            Vec::new(),
        )
        .unwrap();
        let report = f.sync(&empty, at(3, 13)).await;
        assert_eq!(report.status, SyncStatus::Ok, "{vendor:?}: {report}");
        let live: Vec<_> = f
            .vendor_overrides()
            .into_iter()
            .filter(|o| o.span.end > at(3, 13))
            .collect();
        assert!(live.is_empty(), "{vendor:?}: {live:?}");
        assert!(f.ledger().iter().all(|l| l.span.end <= at(3, 13)));
    }
}

/// R5 amended: a span whose member the vendor does not know is reported (partial, an error naming
/// the member and the span), does not hold the mark, and is tried again on every later sync, from
/// the protected region, where a person's override over it is left alone.
#[tokio::test]
async fn a_member_the_vendor_does_not_know_does_not_hold_the_mark() {
    for vendor in VENDORS {
        let f = Fixture::new(vendor, at(3, 12));
        f.provider.add_schedule(VendorSchedule {
            members: members()
                .into_iter()
                .filter(|m| m.email != email("cat"))
                .collect(),
            ..vendor_schedule("VS")
        });
        let mut host = schedule(3, 11);
        host.replace_assignee(RoleIndex::PRIMARY, day(5), Some(email("cat")))
            .unwrap();
        let report = f.sync(&host, at(3, 12)).await;
        assert_eq!(report.status, SyncStatus::Partial, "{vendor:?}: {report}");
        assert_eq!(f.high_water(), Some(day(11)), "the mark passes the span");
        let error = report.errors[0].to_string();
        assert!(error.contains("cat@example.com"), "{error}");
        assert!(
            error.contains("2024-01-06 09:00:00Z"),
            "names the span: {error}"
        );
        assert!(report.warnings.contains(&Warning::UnknownMember {
            email: email("cat")
        }));

        // A person covers day 5 by hand; the next sync tries the span again and leaves theirs be.
        let theirs = f.foreign(day(5), day(6), "eve");
        let again = f.sync(&host, at(3, 13)).await;
        assert_eq!(again.status, SyncStatus::Partial, "{again}");
        assert!(
            !again.outcomes.is_empty()
                && again.outcomes.iter().all(|o| matches!(
                    &o.operation.action,
                    Action::Create { span, .. } if span.member == email("cat")
                )),
            "cat's spans again (days 5 and 7), nothing else: {again}"
        );
        assert!(f.vendor_overrides().iter().any(|o| o.id == theirs));
        assert_eq!(f.high_water(), Some(day(11)));

        // Once the vendor knows them, the span is written (R4) and the run is ok.
        f.provider.add_schedule(vendor_schedule("VS"));
        let known = f.sync(&host, at(3, 14)).await;
        assert_eq!(known.status, SyncStatus::Ok, "{known}");
        assert!(f.ledger().iter().any(|l| l.span.start == day(5)));
    }
}

/// R6 in one run: a create whose answer is lost (a timeout, a 5xx after the vendor applied it) is
/// not sent again blindly; the run reads the window, takes what landed, sends only the rest, and
/// ends ok with every override once.
#[tokio::test]
async fn a_lost_create_answer_is_recovered_within_the_run() {
    for vendor in VENDORS {
        for fault in [
            Fault::LoseResponse,
            Fault::Fail(Error::Transient {
                message: "503".into(),
            }),
        ] {
            let f = Fixture::new(vendor, at(3, 12));
            let host = schedule(3, 11);
            f.provider.inject(Trigger::Write(2), fault.clone());
            let report = f.sync(&host, at(3, 12)).await;
            assert_eq!(
                report.status,
                SyncStatus::Ok,
                "{vendor:?} {fault:?}: {report}"
            );
            assert_vendor_shows_desired(&f, &host, at(3, 12), day(11));
            assert_eq!(f.vendor_overrides().len(), 8, "{:?}", f.vendor_overrides());
            assert_eq!(f.ledger().len(), 8);
            assert_eq!(f.high_water(), Some(day(11)));
            assert_eq!(f.sync(&host, at(3, 13)).await.write_calls, 0);
        }
    }
}

/// Decided (R6): a person had already changed our override (Opsgenie edits in place) into exactly
/// the change the host then plans. The copy is taken for the change as it stands: nothing written.
#[tokio::test]
async fn a_copy_a_person_already_changed_into_the_planned_change_is_adopted() {
    let f = Fixture::new(Vendor::OpsgenieLike, at(3, 12));
    let mut host = schedule(3, 11);
    assert_eq!(f.sync(&host, at(3, 12)).await.status, SyncStatus::Ok);
    let day8 = alias_for(&f.destination.id, day(8));
    let bob = Span::new(day(8), day(9), email("bob"));
    f.provider
        .edit_override(&f.vs(), &day8, bob.clone())
        .unwrap();
    host.replace_assignee(RoleIndex::PRIMARY, day(8), Some(email("bob")))
        .unwrap();
    let report = f.sync(&host, at(3, 13)).await;
    assert_eq!(report.status, SyncStatus::Ok, "{report}");
    assert_eq!(report.write_calls, 0, "{report}");
    assert!(f.ledger().iter().any(|l| l.id == day8 && l.span == bob));
}

/// Host and vendor members, plus one the host knows and the vendor does not.
fn with_stranger(shifts: Vec<Shift>) -> Schedule {
    let mut people = members();
    people.push(oncall_sync::Member::new(email("zed"), "Zed"));
    Schedule::new(
        ScheduleId("host".into()),
        chrono_tz::UTC,
        vec!["primary".into()],
        people,
        shifts,
    )
    .unwrap()
}

/// R5 amended, on a vendor that updates in place: a stale override of ours in the fresh region
/// changed into a span whose member the vendor does not know fails alone; the mark passes it.
#[tokio::test]
async fn an_update_to_a_member_the_vendor_does_not_know_does_not_hold_the_mark() {
    let f = Fixture::new(Vendor::OpsgenieLike, at(3, 12));
    f.provider.refuse_creates_starting_at(
        day(7),
        Error::Rejected {
            message: "refused".into(),
        },
    );
    let mut host = with_stranger(shifts(3, 11));
    assert_eq!(f.sync(&host, at(3, 12)).await.status, SyncStatus::Partial);
    assert_eq!(f.high_water(), Some(day(7)));
    f.provider.clear_faults();
    host.replace_assignee(RoleIndex::PRIMARY, day(9), Some(email("zed")))
        .unwrap();
    let report = f.sync(&host, at(3, 13)).await;
    assert_eq!(report.status, SyncStatus::Partial, "{report}");
    assert!(
        report
            .errors
            .iter()
            .all(|e| matches!(e.error, Error::UnknownMember { .. })),
        "{report}"
    );
    assert_eq!(f.high_water(), Some(day(11)), "{report}");
    // R4 all the same: the ledger's override of day 9 is gone, the vendor's rotation shows there.
    assert!(
        f.vendor_overrides()
            .iter()
            .all(|o| !o.span.overlaps(day(9), day(10))),
        "{:?}",
        f.vendor_overrides()
    );
}

/// R3 with a cut of ours: after a sync cuts our running override (the host left the role empty),
/// a person stretches that override on by hand. It is theirs now: the next sync leaves it alone
/// instead of taking it back by its alias and cutting it again.
#[tokio::test]
async fn a_cut_of_ours_that_a_person_stretches_on_is_theirs() {
    let f = Fixture::new(Vendor::OpsgenieLike, at(3, 12));
    let mut host = schedule(3, 11);
    assert_eq!(f.sync(&host, at(3, 12)).await.status, SyncStatus::Ok);
    // Day 3 was written from now, when it was running.
    let day3 = alias_for(&f.destination.id, at(3, 12));
    host.replace_assignee(RoleIndex::PRIMARY, day(3), None)
        .unwrap();
    let cut = f.sync(&host, at(3, 13)).await;
    assert_eq!(cut.write_calls, 1, "{cut}");
    let stretched = Span::new(at(3, 12), at(3, 18), email(PEOPLE[3]));
    f.provider
        .edit_override(&f.vs(), &day3, stretched.clone())
        .unwrap();
    let report = f.sync(&host, at(3, 13) + TimeDelta::minutes(30)).await;
    assert_eq!(report.status, SyncStatus::Ok, "{report}");
    assert_eq!(
        report.write_calls, 0,
        "the person's stretch stands: {report}"
    );
    assert!(f
        .vendor_overrides()
        .iter()
        .any(|o| o.id == day3 && o.span == stretched));
}

/// R6 with a cut whose answer was lost: the vendor (5 s ahead) ended our running override at its
/// own now, but the sync never heard (or, for a cut by delete, read it back). The next sync, 2 s later, sees a cut that has landed and
/// writes nothing (no second cut stretching it, no delete of what is now the vendor's past).
#[tokio::test]
async fn a_cut_whose_answer_was_lost_is_not_cut_again() {
    for vendor in VENDORS {
        let f = Fixture::new(vendor, at(3, 12));
        let mut host = schedule(3, 11);
        assert_eq!(f.sync(&host, at(3, 12)).await.status, SyncStatus::Ok);
        host.replace_assignee(RoleIndex::PRIMARY, day(3), None)
            .unwrap();
        let now = at(3, 13);
        let ahead = TimeDelta::seconds(5);
        let base = f.provider.write_calls();
        f.provider
            .inject(Trigger::Write(base + 1), Fault::LoseResponse);
        f.provider.set_now(now + ahead);
        let lost = f.sync_full(&host, now, &f.store, None).await;
        // A cut by delete whose answer was lost is settled by a read (the override now ends at
        // the vendor's now); a cut by update is not read back.
        let by_delete = f.provider.capabilities().delete_truncates_running;
        assert_eq!(
            lost.status == SyncStatus::Ok,
            by_delete,
            "{vendor:?}: {lost}"
        );
        let later = now + TimeDelta::seconds(2);
        f.provider.set_now(later + ahead);
        let again = f.sync_full(&host, later, &f.store, None).await;
        assert_eq!(again.status, SyncStatus::Ok, "{vendor:?}: {again}");
        assert_eq!(again.write_calls, 0, "{vendor:?}: {again}");
    }
}

/// Vendor truth (issue 13): two connections with two keys to one account, and destinations on the
/// same vendor schedule through each, would delete each other's overrides as foreign. `sync`
/// refuses them before any call, naming both destinations, both connections and the schedule.
#[tokio::test]
async fn one_vendor_schedule_through_two_keys_to_one_account_is_refused_before_any_call() {
    let f = Fixture::new(Vendor::PagerDutyLike, at(3, 12));
    let second_key = oncall_sync::testkit::InMemoryProvider::pagerduty_like(at(3, 12));
    second_key.add_schedule(vendor_schedule("VS"));
    for p in [&f.provider, &second_key] {
        p.set_account(Some("pagerduty https://api.pagerduty.com".into()));
    }
    let twin = Destination {
        id: DestinationId("dest-twin".into()),
        connection: ConnectionId("conn-second-key".into()),
        ..f.destination.clone()
    };
    let host = schedule(3, 11);
    let options = SyncOptions {
        now: at(3, 12),
        horizon: None,
        mode: SyncMode::Apply,
    };
    let targets = [
        SyncTarget {
            destination: &f.destination,
            provider: &f.provider,
        },
        SyncTarget {
            destination: &twin,
            provider: &second_key,
        },
    ];
    let refused = sync(&host, &targets, &f.store, options).await.unwrap_err();
    assert!(
        matches!(
            refused,
            Error::InvalidInput(ValidationError::SharedVendorScheduleAcrossConnections(_))
        ),
        "{refused:?}"
    );
    let message = refused.to_string();
    for name in ["dest", "dest-twin", "conn", "conn-second-key", "VS"] {
        assert!(message.contains(name), "{message}");
    }
    assert!(f.provider.calls().is_empty() && second_key.calls().is_empty());
    // Another account (another base URL) with the same schedule id is another schedule.
    second_key.set_account(Some("pagerduty https://api.eu.pagerduty.com".into()));
    assert!(sync(&host, &targets, &f.store, options).await.is_ok());
}

/// Vendor truth (issue 13): a delete whose answer is unknown (it landed, the answer was lost) is
/// settled by a read: the override is gone, so the step is done and the mark moves on. A delete
/// that did not land, read back, stays failed and holds the mark.
#[tokio::test]
async fn a_delete_whose_answer_was_lost_is_settled_by_a_read() {
    for vendor in VENDORS {
        for (fault, landed) in [
            (Fault::LoseResponse, true),
            (
                Fault::Fail(Error::Transient {
                    message: "503".into(),
                }),
                false,
            ),
        ] {
            let f = Fixture::new(vendor, at(3, 12));
            f.foreign(at(5, 10), at(5, 14), "zed");
            f.provider.inject(Trigger::Write(1), fault.clone());
            let host = schedule(3, 11);
            let report = f.sync(&host, at(3, 12)).await;
            let foreign_left = f
                .vendor_overrides()
                .iter()
                .any(|o| o.span.member == email("zed"));
            if landed {
                assert_eq!(report.status, SyncStatus::Ok, "{vendor:?}: {report}");
                assert_eq!(f.high_water(), Some(day(11)), "{vendor:?}");
                assert!(!foreign_left);
            } else {
                assert_ne!(report.status, SyncStatus::Ok, "{vendor:?}: {report}");
                assert!(foreign_left);
                assert!(
                    f.high_water().is_none_or(|h| h <= day(5)),
                    "{vendor:?}: {:?}",
                    f.high_water()
                );
                // The next run deletes it.
                let again = f.sync(&host, at(3, 13)).await;
                assert_eq!(again.status, SyncStatus::Ok, "{vendor:?}: {again}");
                assert_eq!(f.high_water(), Some(day(11)));
            }
            assert_vendor_shows_desired(&f, &host, at(3, 13), day(11));
        }
    }
}
