//! Reviewer's probes for issue 15 (modes, drift, saved plans).
#![allow(clippy::unwrap_used)]

mod common;

use common::*;
use oncall_sync::testkit::VendorSimulator;
use oncall_sync::{
    DestinationMode, Member, RoleIndex, Schedule, ScheduleId, Shift, SyncMode, SyncStatus,
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

/// DESIGN §8 lists "a person's override we removed (authoritative mode, first export, fresh
/// region)" as drift. An override a person put over a shift whose role the host left empty is
/// removed by the sync (R2 with F = now), and no drift record reports it.
#[tokio::test]
async fn authoritative_removes_a_persons_override_over_an_empty_role_without_drift() {
    for vendor in VENDORS {
        let mut f = Fixture::new(vendor, at(3, 12));
        let schedule = schedule_with_gap();
        assert_eq!(f.sync(&schedule, at(3, 12)).await.status, SyncStatus::Ok);
        f.destination.mode = DestinationMode::Authoritative;
        let theirs = f.foreign(day(7), day(8), "ann");
        let report = f.sync(&schedule, at(3, 13)).await;
        assert_eq!(report.status, SyncStatus::Ok, "{report}");
        let removed = !f.vendor_overrides().iter().any(|o| o.id == theirs);
        let drift = report.drift().len();
        eprintln!("{vendor:?}: removed={removed} drift records={drift}\n{report}");
        assert!(removed, "the person's override is removed");
        assert!(
            drift > 0,
            "{vendor:?}: a person's override we removed, unreported"
        );
    }
}

/// The same in protect mode on a first export (H = None): a person's override over an empty
/// role in the fresh region is deleted and nothing reports it.
#[tokio::test]
async fn first_export_removes_a_persons_override_over_an_empty_role_without_drift() {
    for vendor in VENDORS {
        let f = Fixture::new(vendor, at(3, 12));
        let theirs = f.foreign(day(7), day(8), "ann");
        let report = f
            .run(&schedule_with_gap(), at(3, 12), SyncMode::DryRun)
            .await;
        let plan = report.plan.as_ref().unwrap();
        let deletes_it = plan.operations.iter().any(|op| {
            matches!(&op.action, oncall_sync::Action::Delete { target, .. } if target.id == theirs)
        });
        assert!(deletes_it, "{plan}");
        assert!(
            !plan.drift.is_empty(),
            "{vendor:?}: unreported removal: {plan}"
        );
    }
}

/// One person's override across two shifts of two other people: one change, two records with
/// two ids (the issue: "each person's change reported while it lasts, under one id").
#[tokio::test]
async fn one_change_over_two_shifts_gets_two_ids() {
    let (f, schedule) = {
        let f = Fixture::new(Vendor::OpsgenieLike, at(3, 12));
        let s = schedule(3, 11);
        f.sync(&s, at(3, 12)).await;
        (f, s)
    };
    f.foreign(at(6, 12), at(7, 12), "eve");
    let report = f.run(&schedule, at(3, 13), SyncMode::DryRun).await;
    let ids: Vec<_> = report.drift().iter().map(|d| d.id.clone()).collect();
    eprintln!("{report}");
    assert_eq!(ids.len(), 1, "one change, {} ids: {ids:?}", ids.len());
}

/// Authoritative mode through the Opsgenie adapter under the simulator's `PastEnd::Refuse`
/// reading (DESIGN §7 dialect), with the vendor's clock 5 s ahead of the host's: a person's
/// running override must be cut at now on every sync.
#[tokio::test]
async fn authoritative_under_opsgenie_past_end_refused() {
    use oncall_sync::opsgenie::testkit::{OpsgenieDialect, OpsgenieSimulator, PastEnd};
    use oncall_sync::{
        sync, ConnectionId, Destination, DestinationId, InMemoryStateStore, SyncOptions,
        SyncTarget, VendorScheduleId,
    };
    let t0 = at(3, 12);
    let sim = OpsgenieSimulator::start_at(t0).await;
    sim.set_dialect(OpsgenieDialect {
        past_end: PastEnd::Refuse,
        ..OpsgenieDialect::default()
    });
    sim.add_schedule(vendor_schedule("VS"));
    let provider = sim.provider();
    let destination = Destination {
        id: DestinationId("dest".into()),
        connection: ConnectionId("c".into()),
        schedule: VendorScheduleId("VS".into()),
        role: RoleIndex::PRIMARY,
        mode: DestinationMode::Authoritative,
    };
    let store = InMemoryStateStore::new();
    let host = schedule(3, 11);
    let run = |now: chrono::DateTime<chrono::Utc>| {
        let (host, store, destination, provider) = (&host, &store, &destination, &provider);
        async move {
            let targets = [SyncTarget {
                destination,
                provider,
            }];
            let options = SyncOptions {
                now,
                horizon: None,
                mode: SyncMode::Apply,
            };
            sync(host, &targets, store, options)
                .await
                .unwrap()
                .destinations
                .remove(0)
        }
    };
    sim.set_now(t0 + chrono::TimeDelta::seconds(5));
    assert_eq!(run(t0).await.status, SyncStatus::Ok);
    // A person covers from an hour ago to this evening.
    sim.insert_override(
        &VendorScheduleId("VS".into()),
        oncall_sync::Span::new(at(3, 13), at(3, 20), email("dan")),
    );
    let mut statuses = Vec::new();
    for k in 0..4 {
        let now = at(3, 14) + chrono::TimeDelta::minutes(10 * k);
        sim.set_now(now + chrono::TimeDelta::seconds(5));
        let r = run(now).await;
        statuses.push(format!(
            "{:?} writes={} errors={:?}",
            r.status,
            r.write_calls,
            r.errors.iter().map(|e| e.to_string()).collect::<Vec<_>>()
        ));
    }
    eprintln!("{statuses:#?}");
    assert!(
        statuses.last().unwrap().starts_with("Ok writes=0"),
        "{statuses:#?}"
    );
}

/// A person's cover by someone the host's roster does not list (a manager stepping in) proposes a
/// replacement the host cannot take; accepting all the drift then fails as a whole, so a swap
/// elsewhere cannot be accepted either (the CLI's `drift --accept` has no way to pick records).
#[tokio::test]
async fn one_outsider_blocks_every_proposal() {
    let f = Fixture::new(Vendor::OpsgenieLike, at(3, 12));
    let mut host = schedule(3, 11);
    f.sync(&host, at(3, 12)).await;
    f.foreign(day(6), day(7), PEOPLE[7 % 5]);
    f.foreign(day(7), day(8), PEOPLE[6 % 5]);
    f.foreign(day(9), day(10), "mgr");
    let report = f.run(&host, at(3, 13), SyncMode::DryRun).await;
    let drift = report.drift();
    eprintln!("{report}");
    assert_eq!(drift.iter().filter(|d| d.proposal.is_some()).count(), 3);
    let result = oncall_sync::accept_drift(&mut host, drift);
    eprintln!("{result:?}");
    assert_eq!(result.applied.len(), 1, "the swap: {result:?}");
    assert_eq!(result.not_accepted.len(), 1, "{result:?}");
}

/// A person's cover in the protected region, then a host change of the same shift (R4): our new
/// override is created after theirs, so the vendor (last created wins) shows the host's new
/// assignee. Drift keeps saying the vendor shows the person's pick, that it "stands", and
/// proposes replacing the host's new assignee with it, on every sync.
#[tokio::test]
async fn drift_ignores_which_override_the_vendor_shows() {
    for vendor in [Vendor::OpsgenieLike, Vendor::PagerDutyLike] {
        let f = Fixture::new(vendor, at(3, 12));
        let mut host = schedule(3, 11);
        f.sync(&host, at(3, 12)).await;
        f.foreign(day(6), day(7), "eve");
        assert_eq!(f.sync(&host, at(3, 13)).await.write_calls, 0);
        // The host gives day 6 to cat (not the person's pick).
        host.replace_assignee(RoleIndex::PRIMARY, day(6), Some(email("cat")))
            .unwrap();
        let r = f.sync(&host, at(3, 14)).await;
        assert_eq!(r.status, SyncStatus::Ok, "{r}");
        let again = f.sync(&host, at(3, 15)).await;
        assert_eq!(again.write_calls, 0);
        let shown = f.rendered(day(6), day(7));
        eprintln!("{vendor:?}: vendor renders {shown:?}\n{again}");
        let d = again.drift();
        let claims_eve = d
            .iter()
            .any(|d| d.shown == Some(email("eve")) && d.stands());
        let renders_eve = shown.iter().any(|(_, _, m)| *m == email("eve"));
        assert_eq!(
            claims_eve, renders_eve,
            "{vendor:?}: drift says eve stands; the vendor renders {shown:?}"
        );
    }
}

/// The same on Opsgenie: the host fills a role it had left empty, under a person's cover, in the
/// protected region; our create is newer, so the vendor shows the host's pick.
#[tokio::test]
async fn drift_ignores_which_override_the_vendor_shows_opsgenie_fill() {
    let f = Fixture::new(Vendor::OpsgenieLike, at(3, 12));
    let mut host = schedule_with_gap();
    f.sync(&host, at(3, 12)).await;
    f.foreign(day(7), day(8), "eve");
    assert_eq!(f.sync(&host, at(3, 13)).await.write_calls, 0);
    host.replace_assignee(RoleIndex::PRIMARY, day(7), Some(email("cat")))
        .unwrap();
    assert_eq!(f.sync(&host, at(3, 14)).await.status, SyncStatus::Ok);
    let again = f.sync(&host, at(3, 15)).await;
    let shown = f.rendered(day(7), day(8));
    eprintln!("renders {shown:?}\n{again}");
    let claims_eve = again
        .drift()
        .iter()
        .any(|d| d.shown == Some(email("eve")) && d.stands());
    let renders_eve = shown.iter().any(|(_, _, m)| *m == email("eve"));
    assert_eq!(
        claims_eve, renders_eve,
        "drift says eve stands; the vendor renders {shown:?}"
    );
}
