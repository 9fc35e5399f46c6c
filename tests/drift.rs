//! Drift (DESIGN §8) beyond the worked examples of `tests/modes.rs`: people's overrides over a
//! role the host left empty, what the vendor shows where a newer override of ours covers a
//! person's, one record per shift of a change, and accepting records one by one. Daily shifts
//! hand off at 09:00; `now` is day 3 12:00 unless stated.
#![allow(clippy::unwrap_used)] // tests: a panic is the failure report

mod common;

use common::*;
use oncall_sync::{
    accept_drift, AcceptError, Action, DestinationMode, Drift, DriftId, Member, PersonChange,
    Proposal, RoleIndex, Schedule, ScheduleId, Shift, SyncMode, SyncStatus,
};

/// Days 3-10 with day 7's primary left empty (the vendor's rotation shows there).
fn schedule_with_gap() -> Schedule {
    let shifts = (3..11)
        .map(|d| {
            let who = (d != 7).then(|| email(PEOPLE[d as usize % 5]));
            Shift::new(day(d), day(d + 1), vec![who])
        })
        .collect();
    Schedule::new(
        ScheduleId("host".into()),
        chrono_tz::UTC,
        vec!["primary".into()],
        PEOPLE.iter().map(|n| Member::new(email(n), *n)).collect(),
        shifts,
    )
    .unwrap()
}

/// The record of the empty day 7 showing `who`, with its proposal: the person as the assignee.
fn empty_role_record<'a>(drift: &'a [Drift], who: &str) -> &'a Drift {
    let record = drift
        .iter()
        .find(|d| d.shift_start == day(7))
        .unwrap_or_else(|| panic!("no record of day 7: {drift:?}"));
    assert_eq!(record.planned, None, "{record}");
    assert_eq!(record.shown, Some(email(who)), "{record}");
    assert_eq!(
        record.proposal,
        Some(Proposal::ReplaceAssignee {
            role: RoleIndex::PRIMARY,
            shift_start: day(7),
            from: None,
            to: Some(email(who)),
        }),
        "{record}"
    );
    record
}

/// Authoritative: a person's override over a shift whose role the host left empty is removed
/// (R2 with F = now), and reported as drift proposing the person for the shift.
#[tokio::test]
async fn authoritative_reports_a_persons_override_it_removes_over_an_empty_role() {
    for vendor in VENDORS {
        let mut f = Fixture::new(vendor, at(3, 12));
        let schedule = schedule_with_gap();
        assert_eq!(f.sync(&schedule, at(3, 12)).await.status, SyncStatus::Ok);
        f.destination.mode = DestinationMode::Authoritative;
        let theirs = f.foreign(day(7), day(8), "ann");
        let report = f.sync(&schedule, at(3, 13)).await;
        assert_eq!(report.status, SyncStatus::Ok, "{report}");
        assert!(!f.vendor_overrides().iter().any(|o| o.id == theirs));
        let record = empty_role_record(report.drift(), "ann");
        assert!(!record.stands(), "{record}");
        assert!(
            matches!(&record.changes[..], [PersonChange::Override { target }] if target.id == theirs),
            "{record}"
        );
    }
}

/// Protect, first export (no mark: all of `[now, E)` is fresh): the same override is deleted, and
/// the plan reports it.
#[tokio::test]
async fn a_first_export_reports_a_persons_override_it_removes_over_an_empty_role() {
    for vendor in VENDORS {
        let f = Fixture::new(vendor, at(3, 12));
        let theirs = f.foreign(day(7), day(8), "ann");
        let report = f
            .run(&schedule_with_gap(), at(3, 12), SyncMode::DryRun)
            .await;
        let plan = report.plan.as_ref().unwrap();
        let deletes_it = plan
            .operations
            .iter()
            .any(|op| matches!(&op.action, Action::Delete { target, .. } if target.id == theirs));
        assert!(deletes_it, "{plan}");
        empty_role_record(&plan.drift, "ann");
    }
}

/// One person's override across the end of day 6 and the start of day 7 (two shifts, two people
/// relieved) is two records, one per shift: each is its own difference to the host, with its own
/// id for as long as it lasts (the next sync, `now` moving into the change), and both name the
/// same override.
#[tokio::test]
async fn a_change_over_two_shifts_is_a_record_per_shift_each_under_one_id() {
    let f = Fixture::new(Vendor::OpsgenieLike, at(3, 12));
    let schedule = schedule(3, 11);
    f.sync(&schedule, at(3, 12)).await;
    let theirs = f.foreign(at(6, 12), at(7, 12), "eve");
    let ids = |drift: &[Drift]| -> Vec<(chrono::DateTime<chrono::Utc>, DriftId)> {
        drift
            .iter()
            .map(|d| (d.shift_start, d.id.clone()))
            .collect()
    };
    let first = f.run(&schedule, at(3, 13), SyncMode::DryRun).await;
    let records = first.drift();
    assert_eq!(records.len(), 2, "{first}");
    assert_eq!(
        records.iter().map(|d| d.shift_start).collect::<Vec<_>>(),
        [day(6), day(7)]
    );
    for d in records {
        assert!(
            matches!(&d.changes[..], [PersonChange::Override { target }] if target.id == theirs),
            "{d}"
        );
        assert_eq!(d.proposal, None, "part of a shift: {d}");
    }
    let again = f.sync(&schedule, at(4, 10)).await;
    assert_eq!(ids(again.drift()), ids(records), "{again}");
    let inside = f.sync(&schedule, at(6, 18)).await;
    assert_eq!(ids(inside.drift()), ids(records), "{inside}");
}

/// A person's cover in the protected region, then a host change of the same shift (R4). Where
/// the change is a new override of ours (PagerDuty: delete and create), ours is newer than theirs,
/// so the vendor (the last created wins) shows the host's new assignee: the sync that writes it
/// reverts the cover there, and later syncs report nothing and propose nothing. Where ours is
/// updated in place (Opsgenie), the cover is still the newer and still shows: drift keeps saying
/// so. Either way drift says what the vendor renders.
#[tokio::test]
async fn drift_says_which_of_two_overlapping_overrides_the_vendor_shows() {
    for vendor in VENDORS {
        let f = Fixture::new(vendor, at(3, 12));
        let mut host = schedule(3, 11);
        f.sync(&host, at(3, 12)).await;
        f.foreign(day(6), day(7), "eve");
        let covered = f.sync(&host, at(3, 13)).await;
        assert_eq!(covered.write_calls, 0);
        assert!(
            covered.drift().iter().any(|d| d.stands()),
            "the cover stands: {covered}"
        );
        host.replace_assignee(RoleIndex::PRIMARY, day(6), Some(email("cat")))
            .unwrap();
        let written = f.sync(&host, at(3, 14)).await;
        assert_eq!(written.status, SyncStatus::Ok, "{written}");
        let again = f.sync(&host, at(3, 15)).await;
        assert_eq!(again.write_calls, 0);
        let shown = f.rendered(day(6), day(7));
        let renders_eve = shown.iter().any(|(_, _, m)| *m == email("eve"));
        for report in [&written, &again] {
            let claims_eve = report
                .drift()
                .iter()
                .any(|d| d.shown == Some(email("eve")) && d.stands());
            assert_eq!(claims_eve, renders_eve, "{vendor:?}: {shown:?}\n{report}");
        }
        if vendor == Vendor::PagerDutyLike {
            assert_eq!(shown, [(day(6), day(7), email("cat"))]);
            assert!(again.drift().is_empty(), "{again}");
        }
    }
}

/// The same where the host fills a role it had left empty, under a person's cover, in the
/// protected region: our create is newer, so the vendor shows the host's pick.
#[tokio::test]
async fn a_cover_under_a_role_the_host_then_filled_is_no_longer_drift() {
    for vendor in VENDORS {
        let f = Fixture::new(vendor, at(3, 12));
        let mut host = schedule_with_gap();
        f.sync(&host, at(3, 12)).await;
        f.foreign(day(7), day(8), "eve");
        let covered = f.sync(&host, at(3, 13)).await;
        assert_eq!(covered.write_calls, 0);
        empty_role_record(covered.drift(), "eve");
        host.replace_assignee(RoleIndex::PRIMARY, day(7), Some(email("cat")))
            .unwrap();
        assert_eq!(f.sync(&host, at(3, 14)).await.status, SyncStatus::Ok);
        let again = f.sync(&host, at(3, 15)).await;
        assert_eq!(f.rendered(day(7), day(8)), [(day(7), day(8), email("cat"))]);
        assert!(again.drift().is_empty(), "{vendor:?}: {again}");
    }
}

/// A cover by someone the host's roster does not list (a manager stepping in) proposes an edit the
/// host cannot take: it is not accepted, with its reason, and the swap made elsewhere is.
#[tokio::test]
async fn accepting_drift_takes_what_it_can_and_gives_the_reason_for_the_rest() {
    let f = Fixture::new(Vendor::OpsgenieLike, at(3, 12));
    let mut host = schedule(3, 11);
    f.sync(&host, at(3, 12)).await;
    f.foreign(day(6), day(7), PEOPLE[7 % 5]);
    f.foreign(day(7), day(8), PEOPLE[6 % 5]);
    f.foreign(day(9), day(10), "mgr");
    let report = f.run(&host, at(3, 13), SyncMode::DryRun).await;
    let drift = report.drift();
    assert_eq!(drift.iter().filter(|d| d.proposal.is_some()).count(), 3);
    let manager = drift
        .iter()
        .find(|d| d.shown == Some(email("mgr")))
        .unwrap();
    let accepted = accept_drift(&mut host, drift);
    assert!(
        matches!(&accepted.applied[..], [Proposal::SwapAssignees { .. }]),
        "{accepted:?}"
    );
    let [refused] = &accepted.not_accepted[..] else {
        panic!("{accepted:?}")
    };
    assert_eq!(refused.records, std::slice::from_ref(&manager.id));
    assert!(
        matches!(refused.reason, AcceptError::Invalid(_)),
        "{refused:?}"
    );
    assert_eq!(
        host.shifts()[3].assignee(RoleIndex::PRIMARY),
        Some(&email(PEOPLE[7 % 5]))
    );
    assert_eq!(
        host.shifts()[6].assignee(RoleIndex::PRIMARY),
        Some(&email(PEOPLE[9 % 5])),
        "the manager's cover is not taken"
    );
    // Chosen by id, a record alone is taken.
    let mut fresh = schedule(3, 11);
    let swap: Vec<Drift> = drift
        .iter()
        .filter(|d| d.shift_start == day(6))
        .cloned()
        .collect();
    let taken = accept_drift(&mut fresh, &swap);
    assert_eq!(taken.applied.len(), 1, "{taken:?}");
    assert_eq!(fresh, host);
}

/// Two proposals that change one shift differently (two destinations' records of one host shift)
/// are neither taken; the others are.
#[test]
fn conflicting_proposals_are_neither_taken() {
    let mut host = schedule(3, 11);
    let record = |n: u8, start: i64, to: &str| Drift {
        id: DriftId(format!("drift-{n}")),
        role: RoleIndex::PRIMARY,
        shift_start: day(start),
        shift_end: day(start + 1),
        planned: Some(email(PEOPLE[start as usize % 5])),
        shown: Some(email(to)),
        changes: Vec::new(),
        stretches: Vec::new(),
        proposal: Some(Proposal::ReplaceAssignee {
            role: RoleIndex::PRIMARY,
            shift_start: day(start),
            from: Some(email(PEOPLE[start as usize % 5])),
            to: Some(email(to)),
        }),
    };
    let drift = [
        record(1, 5, "cat"),
        record(2, 5, "bob"),
        record(3, 8, "eve"),
    ];
    let accepted = accept_drift(&mut host, &drift);
    assert_eq!(accepted.applied.len(), 1, "{accepted:?}");
    assert_eq!(accepted.not_accepted.len(), 2, "{accepted:?}");
    assert!(accepted
        .not_accepted
        .iter()
        .all(|r| matches!(r.reason, AcceptError::Conflicting { .. })));
    assert_eq!(
        host.shifts()[2].assignee(RoleIndex::PRIMARY),
        Some(&email(PEOPLE[5 % 5]))
    );
    assert_eq!(
        host.shifts()[5].assignee(RoleIndex::PRIMARY),
        Some(&email("eve"))
    );
}
