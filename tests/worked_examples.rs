//! DESIGN §3 worked examples, each a named test, against PagerDuty-like and Opsgenie-like providers.
//! Daily shifts hand off at 09:00; `now` is day 3 12:00 unless stated.

#![allow(clippy::unwrap_used)] // tests: a panic is the failure report

mod common;

use common::*;
use oncall_sync::testkit::{CallKind, VendorSimulator};
use oncall_sync::{Action, Error, Outcome, RoleIndex, SyncMode, SyncStatus, Warning};

fn now() -> chrono::DateTime<chrono::Utc> {
    at(3, 12)
}

/// Example 1 as the starting point of later examples: first export of days 3-10 with foreign Y
/// (day 2 to day 4, running) and X (day 5 10:00-14:00).
async fn first_export(
    vendor: Vendor,
) -> (
    Fixture,
    oncall_sync::Schedule,
    oncall_sync::DestinationReport,
) {
    let f = Fixture::new(vendor, now());
    f.foreign(day(2), day(4), "eve");
    f.foreign(at(5, 10), at(5, 14), "dan");
    let schedule = schedule(3, 11);
    let report = f.sync(&schedule, now()).await;
    (f, schedule, report)
}

#[tokio::test]
async fn example_1_first_export() {
    for vendor in VENDORS {
        let (f, schedule, report) = first_export(vendor).await;
        assert_eq!(report.status, SyncStatus::Ok, "{vendor:?}: {report}");
        let kinds: Vec<&str> = report
            .outcomes
            .iter()
            .map(|o| match &o.operation.action {
                Action::Truncate {
                    by_delete: true, ..
                } => "delete-truncate",
                Action::Update { .. } => "update",
                Action::Truncate {
                    by_delete: false, ..
                } => "update-truncate",
                Action::Delete { .. } => "delete",
                Action::Create { .. } => "create",
                _ => "other",
            })
            .collect();
        let cut = match vendor {
            Vendor::PagerDutyLike => "delete-truncate",
            Vendor::OpsgenieLike => "update",
        };
        assert_eq!(
            kinds,
            [vec![cut, "delete"], vec!["create"; 8]].concat(),
            "{vendor:?}"
        );
        let ours: Vec<_> = f
            .ledger()
            .into_iter()
            .map(|o| (o.span.start, o.span.end))
            .collect();
        assert_eq!(ours[0], (now(), day(4)), "day 3 is written from now");
        assert_eq!(ours.len(), 8);
        // Y now ends at now, X is gone; the fresh region shows exactly the desired spans.
        let vendor_view = f.vendor_overrides();
        assert!(
            vendor_view
                .iter()
                .any(|o| o.span.start == day(2) && o.span.end == now()),
            "{vendor_view:?}"
        );
        assert!(!vendor_view.iter().any(|o| o.span.start == at(5, 10)));
        assert_eq!(
            f.rendered(now(), day(11)),
            desired_view(&schedule, now(), day(11))
        );
        assert_eq!(f.high_water(), Some(day(11)));
        let expected_writes = match vendor {
            Vendor::PagerDutyLike => 3, // delete Y, delete X, one batch of 8
            Vendor::OpsgenieLike => 10, // update Y, delete X, 8 single creates
        };
        assert_eq!(report.write_calls, expected_writes, "{vendor:?}");
        assert_eq!(f.provider.write_calls(), expected_writes);
    }
}

#[tokio::test]
async fn example_2_nothing_changed_makes_no_write_calls() {
    for vendor in VENDORS {
        let (f, schedule, _) = first_export(vendor).await;
        let before = f.provider.write_calls();
        let report = f.sync(&schedule, at(3, 13)).await;
        assert_eq!(report.status, SyncStatus::Ok);
        assert_eq!(report.write_calls, 0, "{vendor:?}: {report}");
        assert_eq!(f.provider.write_calls(), before);
        assert_eq!(f.high_water(), Some(day(11)));
    }
}

#[tokio::test]
async fn example_3_host_swap_before_the_mark() {
    for vendor in VENDORS {
        let (f, mut schedule, _) = first_export(vendor).await;
        schedule
            .swap_assignees(RoleIndex::PRIMARY, day(6), day(7))
            .unwrap();
        let foreign = f.foreign(at(6, 10), at(6, 12), "ann");
        let before = f.provider.calls().len();
        let report = f.sync(&schedule, at(3, 13)).await;
        assert_eq!(report.status, SyncStatus::Ok, "{report}");
        let writes: Vec<CallKind> = f.provider.calls()[before..]
            .iter()
            .map(|c| c.kind)
            .filter(|k| k.is_write())
            .collect();
        match vendor {
            Vendor::PagerDutyLike => assert_eq!(
                writes,
                [CallKind::Delete, CallKind::Delete, CallKind::Create(2)]
            ),
            Vendor::OpsgenieLike => assert_eq!(writes, [CallKind::Update, CallKind::Update]),
        }
        assert!(
            f.vendor_overrides().iter().any(|o| o.id == foreign),
            "the foreign override stays"
        );
        assert!(
            report.warnings.iter().any(|w| matches!(w, Warning::ForeignOverlapsChange { foreign: o, .. } if o.id == foreign)),
            "{report}"
        );
        // Apart from the foreign override, the vendor shows the swap.
        let ours = f.ledger();
        let who = |d| {
            ours.iter()
                .find(|o| o.span.start == day(d))
                .map(|o| o.span.member.clone())
        };
        assert_eq!(who(6), Some(email(PEOPLE[7 % 5])));
        assert_eq!(who(7), Some(email(PEOPLE[6 % 5])));
    }
}

#[tokio::test]
async fn example_4_person_deleted_ours_before_the_mark() {
    for vendor in VENDORS {
        let (f, schedule, _) = first_export(vendor).await;
        let day8 = f
            .ledger()
            .into_iter()
            .find(|o| o.span.start == day(8))
            .unwrap();
        assert!(f.provider.remove_override(&f.vs(), &day8.id));
        let report = f.sync(&schedule, at(3, 13)).await;
        assert_eq!(report.write_calls, 0, "the person's change wins: {report}");
        assert!(!f.vendor_overrides().iter().any(|o| o.span.start == day(8)));
    }
}

#[tokio::test]
async fn example_5_horizon_extended() {
    for vendor in VENDORS {
        let (f, mut schedule, _) = first_export(vendor).await;
        schedule.extend(shifts(11, 20)).unwrap();
        let z = f.foreign(at(10, 12), at(12, 12), "ann");
        let w = f.foreign(at(15, 10), at(15, 14), "bob");
        let report = f.sync(&schedule, at(3, 13)).await;
        assert_eq!(report.status, SyncStatus::Ok, "{report}");
        let overrides = f.vendor_overrides();
        // Z's part before the mark survives, for the same person, still foreign.
        let z_part: Vec<_> = overrides
            .iter()
            .filter(|o| {
                o.span.start == at(10, 12) && o.span.end == day(11) && o.span.member == email("ann")
            })
            .collect();
        assert_eq!(z_part.len(), 1, "{vendor:?}: {overrides:?}");
        assert!(
            !f.ledger().iter().any(|o| o.id == z_part[0].id),
            "the kept part is not ours"
        );
        if vendor == Vendor::OpsgenieLike {
            assert_eq!(z_part[0].id, z, "Opsgenie updates Z in place");
        }
        assert!(!overrides.iter().any(|o| o.id == w));
        assert_eq!(
            f.rendered(day(11), day(20)),
            desired_view(&schedule, day(11), day(20))
        );
        assert_eq!(f.high_water(), Some(day(20)));
    }
}

#[tokio::test]
async fn example_6_partial_failure_holds_the_mark() {
    for vendor in VENDORS {
        let f = Fixture::new(vendor, now());
        let schedule = schedule(3, 11);
        // The vendor refuses the day 7 create alone (on PagerDuty, one item of the batch).
        f.provider.refuse_creates_starting_at(
            day(7),
            Error::Rejected {
                message: "the vendor refused this override".into(),
            },
        );
        let report = f.sync(&schedule, now()).await;
        assert_eq!(report.status, SyncStatus::Partial, "{report}");
        assert_eq!(f.high_water(), Some(day(7)));
        assert_eq!(f.ledger().len(), 7);
        f.provider.clear_faults();
        let before = f.provider.calls().len();
        let report = f.sync(&schedule, at(3, 13)).await;
        assert_eq!(report.status, SyncStatus::Ok, "{report}");
        let writes: Vec<CallKind> = f.provider.calls()[before..]
            .iter()
            .map(|c| c.kind)
            .filter(|k| k.is_write())
            .collect();
        assert_eq!(writes, [CallKind::Create(1)], "day 7 only");
        assert_eq!(f.high_water(), Some(day(11)));
        assert_eq!(
            f.rendered(at(3, 13), day(11)),
            desired_view(&schedule, at(3, 13), day(11))
        );
    }
}

#[tokio::test]
async fn example_7_crash_after_a_write_adopts_instead_of_duplicating() {
    for vendor in VENDORS {
        let f = Fixture::new(vendor, now());
        let schedule = schedule(3, 11);
        // The create carrying day 4 lands, but the process dies before it saves the state: on
        // PagerDuty the first batch carries days 3-10; on Opsgenie the second create is day 4.
        let store = CrashingStore::new(
            &f.store,
            match vendor {
                Vendor::PagerDutyLike => 0,
                Vendor::OpsgenieLike => 1,
            },
        );
        let first = f.sync_with_store(&schedule, now(), &store).await;
        assert_ne!(first.status, SyncStatus::Ok);
        assert!(
            f.vendor_overrides().iter().any(|o| o.span.start == day(4)),
            "the write landed"
        );
        assert!(
            f.ledger().iter().all(|l| l.span.start != day(4)),
            "and was never saved"
        );
        let second = f.sync(&schedule, at(3, 13)).await;
        assert_eq!(second.status, SyncStatus::Ok, "{second}");
        assert!(
            second.outcomes.iter().any(|o| matches!(&o.operation.action, Action::Adopt { target } if target.span.start == day(4))),
            "{second}"
        );
        assert!(
            second.outcomes.iter().all(|o| match &o.operation.action {
                Action::Create { span, .. } => span.start != day(4),
                Action::Delete { .. } | Action::Truncate { .. } | Action::Update { .. } => false,
                _ => true,
            }),
            "no delete, no second create: {second}"
        );
        let day4 = f
            .vendor_overrides()
            .into_iter()
            .filter(|o| o.span.start == day(4))
            .count();
        assert_eq!(day4, 1, "no duplicate");
        assert_eq!(f.high_water(), Some(day(11)));
        assert_eq!(f.sync(&schedule, at(3, 14)).await.write_calls, 0);
    }
}

#[tokio::test]
async fn example_8_role_left_empty() {
    for vendor in VENDORS {
        let (f, mut schedule, _) = first_export(vendor).await;
        schedule
            .replace_assignee(RoleIndex::PRIMARY, day(9), None)
            .unwrap();
        let report = f.sync(&schedule, at(3, 13)).await;
        assert_eq!(report.status, SyncStatus::Ok, "{report}");
        assert_eq!(report.write_calls, 1, "one delete: {report}");
        assert!(!f.vendor_overrides().iter().any(|o| o.span.start == day(9)));
        assert!(
            report.warnings.contains(&Warning::RoleEmpty {
                start: day(9),
                end: day(10)
            }),
            "{report}"
        );
    }
}

#[tokio::test]
async fn dry_run_plans_without_writing() {
    for vendor in VENDORS {
        let f = Fixture::new(vendor, now());
        f.foreign(at(5, 10), at(5, 14), "dan");
        let schedule = schedule(3, 11);
        let report = f.run(&schedule, now(), SyncMode::DryRun).await;
        assert_eq!(report.status, SyncStatus::Planned);
        assert_eq!(f.provider.write_calls(), 0);
        assert_eq!(f.high_water(), None, "nothing saved");
        let plan = report.plan.as_ref().unwrap();
        assert_eq!(
            plan.write_count(),
            match vendor {
                Vendor::PagerDutyLike => 9,
                Vendor::OpsgenieLike => 9,
            }
        );
        let text = plan.to_string();
        assert!(text.contains("delete") && text.contains("create"), "{text}");
        let json = serde_json::to_value(plan).unwrap();
        assert_eq!(json["operations"].as_array().unwrap().len(), 9);
        assert_eq!(json["operations"][0]["action"]["kind"], "delete");
    }
}

#[tokio::test]
async fn read_only_key_is_a_typed_error_naming_connection_and_destination() {
    for vendor in VENDORS {
        let f = Fixture::new(vendor, now());
        f.provider.set_read_only(true);
        let report = f.sync(&schedule(3, 11), now()).await;
        assert_eq!(report.status, SyncStatus::Failed);
        assert_eq!(
            report.errors.len(),
            1,
            "never retried, the rest skipped: {report}"
        );
        let e = &report.errors[0];
        assert!(matches!(e.error, Error::PermissionDenied { .. }));
        let text = e.to_string();
        assert!(
            text.contains("read-only") && text.contains("dest") && text.contains("conn"),
            "{text}"
        );
        assert_eq!(f.provider.write_calls(), 1);
        // The one refused call's items failed; everything after it was skipped, not tried.
        let failed = report
            .outcomes
            .iter()
            .filter(|o| o.outcome == Outcome::Failed)
            .count();
        let skipped = report
            .outcomes
            .iter()
            .filter(|o| o.outcome == Outcome::Skipped)
            .count();
        let first_call = match vendor {
            Vendor::PagerDutyLike => 8,
            Vendor::OpsgenieLike => 1,
        };
        assert_eq!((failed, skipped), (first_call, 8 - first_call), "{report}");
        assert_eq!(f.high_water(), None, "the mark does not move");
    }
}
