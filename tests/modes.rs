//! DESIGN §8 worked examples: the three destination modes and drift, each a named test against
//! PagerDuty-like and Opsgenie-like providers. Daily shifts hand off at 09:00; `now` is day 3 12:00
//! unless stated; the starting point is DESIGN §3's example 1 (days 3-10 exported, `H = day 11`).

#![allow(clippy::unwrap_used)] // tests: a panic is the failure report

mod common;

use common::*;
use oncall_sync::testkit::VendorSimulator;
use oncall_sync::{
    accept_drift, Action, DestinationMode, DriftFate, Email, PersonChange, Proposal, RoleIndex,
    Schedule, SyncMode, SyncStatus,
};

fn now() -> chrono::DateTime<chrono::Utc> {
    at(3, 12)
}

/// Example 1 of DESIGN §3 in protect mode: days 3-10 exported at day 3 12:00, `H = day 11`; then
/// the destination switches to `mode`.
async fn exported(vendor: Vendor, mode: DestinationMode) -> (Fixture, Schedule) {
    let mut f = Fixture::new(vendor, now());
    let schedule = schedule(3, 11);
    let report = f.sync(&schedule, now()).await;
    assert_eq!(report.status, SyncStatus::Ok, "{report}");
    assert_eq!(f.high_water(), Some(day(11)));
    f.destination.mode = mode;
    (f, schedule)
}

fn ours_at(f: &Fixture, d: i64) -> oncall_sync::Override {
    f.ledger()
        .into_iter()
        .find(|o| o.span.start == day(d))
        .unwrap()
}

/// The vendor's overrides over `[from, to)`, clipped, as (start, end, member), sorted.
fn vendor_view(
    f: &Fixture,
    from: chrono::DateTime<chrono::Utc>,
    to: chrono::DateTime<chrono::Utc>,
) -> Vec<(
    chrono::DateTime<chrono::Utc>,
    chrono::DateTime<chrono::Utc>,
    Email,
)> {
    let mut view: Vec<_> = f
        .vendor_overrides()
        .into_iter()
        .filter_map(|o| {
            let (s, e) = (o.span.start.max(from), o.span.end.min(to));
            (s < e).then_some((s, e, o.span.member))
        })
        .collect();
    view.sort();
    view
}

fn desired_exact(
    schedule: &Schedule,
    from: chrono::DateTime<chrono::Utc>,
    to: chrono::DateTime<chrono::Utc>,
) -> Vec<(
    chrono::DateTime<chrono::Utc>,
    chrono::DateTime<chrono::Utc>,
    Email,
)> {
    schedule
        .shifts()
        .iter()
        .filter_map(|s| {
            let (start, end) = (s.start.max(from), s.end.min(to));
            let who = s.assignee(RoleIndex::PRIMARY)?;
            (start < end).then(|| (start, end, who.clone()))
        })
        .collect()
}

/// Authoritative: before the mark, a person covers part of day 6, deletes our day 8 and gives our
/// day 9 to someone else. The sync removes the cover, restores day 8 and day 9: the vendor's
/// overrides in `[now, E)` are exactly the host's rota. A second sync writes nothing.
#[tokio::test]
async fn authoritative_restores_the_whole_horizon() {
    for vendor in VENDORS {
        let (f, schedule) = exported(vendor, DestinationMode::Authoritative).await;
        let cover = f.foreign(at(6, 10), at(6, 12), "ann");
        assert!(f.provider.remove_override(&f.vs(), &ours_at(&f, 8).id));
        let day9 = ours_at(&f, 9);
        let edited = f
            .provider
            .edit_override(
                &f.vs(),
                &day9.id,
                oncall_sync::Span::new(day(9), day(10), email("dan")),
            )
            .unwrap();
        let report = f.sync(&schedule, at(3, 13)).await;
        assert_eq!(report.status, SyncStatus::Ok, "{vendor:?}: {report}");
        let plan = report.plan.as_ref().unwrap();
        assert_eq!(plan.fresh_from, at(3, 13), "F = now");
        assert!(!f.vendor_overrides().iter().any(|o| o.id == cover));
        assert_eq!(
            vendor_view(&f, at(3, 13), day(11)),
            desired_exact(&schedule, at(3, 13), day(11)),
            "{vendor:?}: [now, E) is exactly D"
        );
        match vendor {
            // Opsgenie changes the edited one back in place.
            Vendor::OpsgenieLike => assert!(
                report.outcomes.iter().any(
                    |o| matches!(&o.operation.action, Action::Update { id, .. } if *id == edited)
                ),
                "{report}"
            ),
            // On PagerDuty an edit is a delete and a create: the person's new one is removed.
            Vendor::PagerDutyLike => assert!(!f.vendor_overrides().iter().any(|o| o.id == edited)),
        }
        assert_eq!(f.high_water(), Some(day(11)));
        let again = f.sync(&schedule, at(3, 14)).await;
        assert_eq!(again.write_calls, 0, "{vendor:?}: {again}");
        assert!(again.plan.unwrap().drift.is_empty());
    }
}

/// Authoritative: a person's override running now is cut at now; its past stays (R1).
#[tokio::test]
async fn authoritative_cuts_a_running_override_at_now_and_keeps_its_past() {
    for vendor in VENDORS {
        let (f, schedule) = exported(vendor, DestinationMode::Authoritative).await;
        f.provider.set_now(at(3, 13));
        let running = f.foreign(at(3, 12), at(3, 18), "dan");
        let report = f.sync(&schedule, at(3, 14)).await;
        assert_eq!(report.status, SyncStatus::Ok, "{report}");
        let cut = f
            .vendor_overrides()
            .into_iter()
            .find(|o| o.id == running)
            .unwrap();
        assert_eq!((cut.span.start, cut.span.end), (at(3, 12), at(3, 14)));
        assert_eq!(
            vendor_view(&f, at(3, 14), day(11)),
            desired_exact(&schedule, at(3, 14), day(11))
        );
    }
}

/// Protect mode leaves the same changes alone before the mark (R3); the mode switch back changes
/// nothing that authoritative mode wrote.
#[tokio::test]
async fn protect_leaves_what_authoritative_would_restore() {
    for vendor in VENDORS {
        let (f, schedule) = exported(vendor, DestinationMode::Protect).await;
        let cover = f.foreign(at(6, 10), at(6, 12), "ann");
        assert!(f.provider.remove_override(&f.vs(), &ours_at(&f, 8).id));
        let report = f.sync(&schedule, at(3, 13)).await;
        assert_eq!(report.write_calls, 0, "{report}");
        assert!(f.vendor_overrides().iter().any(|o| o.id == cover));
        let plan = report.plan.unwrap();
        assert_eq!(plan.fresh_from, day(11));
        assert_eq!(plan.drift.len(), 2, "{plan}");
        assert!(plan.drift.iter().all(|d| d.stands()));
    }
}

/// Drift in protect mode, DESIGN §3 examples 3 and 4: a person covering part of day 6, and our
/// day 8 deleted. Both stand (R3), both are reported, with stable ids; only the deletion of a
/// whole shift proposes an edit (the role left to the vendor's rotation there).
#[tokio::test]
async fn drift_reports_a_cover_and_a_deletion_with_stable_ids() {
    for vendor in VENDORS {
        let (f, schedule) = exported(vendor, DestinationMode::Protect).await;
        let cover = f.foreign(at(6, 10), at(6, 12), "ann");
        let day8 = ours_at(&f, 8);
        assert!(f.provider.remove_override(&f.vs(), &day8.id));
        let first = f.run(&schedule, at(3, 13), SyncMode::DryRun).await;
        let drift = first.plan.as_ref().unwrap().drift.clone();
        assert_eq!(drift.len(), 2, "{first}");
        let (covered, deleted) = (&drift[0], &drift[1]);
        assert_eq!(covered.shift_start, day(6));
        assert_eq!(covered.planned, Some(email(PEOPLE[6 % 5])));
        assert_eq!(covered.shown, Some(email("ann")));
        assert_eq!(
            covered
                .stretches
                .iter()
                .map(|s| (s.start, s.end, s.fate))
                .collect::<Vec<_>>(),
            [(at(6, 10), at(6, 12), DriftFate::Stands)]
        );
        assert!(
            matches!(&covered.changes[..], [PersonChange::Override { target }] if target.id == cover)
        );
        assert_eq!(covered.proposal, None, "part of a shift");
        assert_eq!(deleted.shift_start, day(8));
        assert_eq!(deleted.shown, None);
        assert!(
            matches!(&deleted.changes[..], [PersonChange::DeletedOurs { ours }] if ours.id == day8.id)
        );
        assert_eq!(
            deleted.proposal,
            Some(Proposal::ReplaceAssignee {
                role: RoleIndex::PRIMARY,
                shift_start: day(8),
                from: Some(email(PEOPLE[8 % 5])),
                to: None,
            })
        );
        // The same differences, an hour later and after a sync: the same ids.
        let report = f.sync(&schedule, at(4, 13)).await;
        let later = report.plan.unwrap().drift;
        let ids = |d: &[oncall_sync::Drift]| d.iter().map(|d| d.id.clone()).collect::<Vec<_>>();
        assert_eq!(ids(&later), ids(&drift));
    }
}

/// A swap made in the vendor comes back as drift proposing the swap; accepting it takes it into
/// the host's rota, after which the sync finds the vendor already showing the rota (it adopts the
/// person's overrides and removes ours there) and a further sync writes nothing.
#[tokio::test]
async fn a_swap_made_in_the_vendor_is_accepted_into_the_rota() {
    for vendor in VENDORS {
        let (f, mut schedule) = exported(vendor, DestinationMode::Protect).await;
        let (six, seven) = (email(PEOPLE[6 % 5]), email(PEOPLE[7 % 5]));
        f.foreign(day(6), day(7), PEOPLE[7 % 5]);
        f.foreign(day(7), day(8), PEOPLE[6 % 5]);
        let report = f.sync(&schedule, at(3, 13)).await;
        assert_eq!(
            report.write_calls, 0,
            "the person's swap stands (R3): {report}"
        );
        let drift = report.plan.unwrap().drift;
        let swap = Proposal::SwapAssignees {
            role: RoleIndex::PRIMARY,
            a: day(6),
            a_assignee: six.clone(),
            b: day(7),
            b_assignee: seven.clone(),
        };
        assert_eq!(drift.len(), 2);
        assert!(
            drift.iter().all(|d| d.proposal.as_ref() == Some(&swap)),
            "{drift:?}"
        );
        let accepted = accept_drift(&mut schedule, &drift);
        assert_eq!(accepted.applied, [swap]);
        assert!(accepted.not_accepted.is_empty(), "{accepted:?}");
        assert_eq!(
            schedule.shifts()[3].assignee(RoleIndex::PRIMARY),
            Some(&seven)
        );
        assert_eq!(
            schedule.shifts()[4].assignee(RoleIndex::PRIMARY),
            Some(&six)
        );
        // Accepting again changes nothing.
        let again = accept_drift(&mut schedule, &drift);
        assert!(again.applied.is_empty() && again.already.len() == 1);
        let report = f.sync(&schedule, at(3, 14)).await;
        assert_eq!(report.status, SyncStatus::Ok, "{report}");
        assert!(report.plan.as_ref().unwrap().drift.is_empty(), "{report}");
        assert_eq!(
            vendor_view(&f, at(3, 14), day(11))
                .into_iter()
                .filter(|(s, _, _)| *s >= day(6) && *s < day(8))
                .collect::<Vec<_>>(),
            [(day(6), day(7), seven), (day(7), day(8), six)],
            "{vendor:?}: no duplicate of the swapped shifts"
        );
        assert_eq!(f.sync(&schedule, at(3, 15)).await.write_calls, 0);
    }
}

/// Authoritative mode reverts the same swap, and still reports it: a person's override we removed.
#[tokio::test]
async fn authoritative_reports_the_overrides_it_removes() {
    for vendor in VENDORS {
        let (f, schedule) = exported(vendor, DestinationMode::Authoritative).await;
        f.foreign(day(6), day(7), PEOPLE[7 % 5]);
        let report = f.sync(&schedule, at(3, 13)).await;
        assert_eq!(report.status, SyncStatus::Ok, "{report}");
        let drift = report.plan.unwrap().drift;
        assert_eq!(drift.len(), 1);
        assert_eq!(drift[0].shown, Some(email(PEOPLE[7 % 5])));
        assert!(
            drift[0]
                .stretches
                .iter()
                .all(|s| s.fate == DriftFate::Reverted),
            "{drift:?}"
        );
        assert!(drift[0].proposal.is_some(), "the host may still take it in");
    }
}

/// Manual: a sync only plans, with the authoritative rules, and writes nothing (not even state);
/// the saved plan, read back from its JSON, applies: the vendor then shows exactly the host's rota
/// over `[now, E)`, the mark advances, and the next plan has nothing to do.
#[tokio::test]
async fn manual_plans_on_sync_and_applies_a_saved_plan() {
    for vendor in VENDORS {
        let (f, schedule) = exported(vendor, DestinationMode::Manual).await;
        let cover = f.foreign(at(6, 10), at(6, 12), "ann");
        assert!(f.provider.remove_override(&f.vs(), &ours_at(&f, 8).id));
        let state_before = f.store.get(&f.destination.id);
        let writes = f.provider.write_calls();
        let report = f.sync(&schedule, at(3, 13)).await;
        assert_eq!(report.status, SyncStatus::Planned, "{report}");
        assert_eq!(
            f.provider.write_calls(),
            writes,
            "a manual sync writes nothing"
        );
        assert_eq!(f.store.get(&f.destination.id), state_before, "nor saves");
        let plan = report.plan.as_ref().unwrap();
        assert_eq!(plan.fresh_from, at(3, 13), "the authoritative rules");
        assert_eq!(
            plan.write_count(),
            2,
            "remove the cover, restore day 8: {plan}"
        );
        assert_eq!(report.drift().len(), 2);
        let saved = report.saved_plan.as_deref().unwrap();
        let json = serde_json::to_string_pretty(saved).unwrap();
        assert!(json.contains("\"summary\""), "people read it: {json}");
        let read_back: oncall_sync::SavedPlan = serde_json::from_str(&json).unwrap();
        let applied = apply(&f, &read_back, at(3, 14)).await.unwrap();
        assert_eq!(applied.status, SyncStatus::Ok, "{applied}");
        assert!(!f.vendor_overrides().iter().any(|o| o.id == cover));
        assert_eq!(
            vendor_view(&f, at(3, 14), day(11)),
            desired_exact(&schedule, at(3, 14), day(11))
        );
        let state = f.store.get(&f.destination.id).unwrap();
        assert_eq!(state.mode, DestinationMode::Manual, "stored with the state");
        let next = f.sync(&schedule, at(3, 15)).await;
        assert_eq!(next.plan.unwrap().write_count(), 0);
    }
}

async fn apply(
    f: &Fixture,
    saved: &oncall_sync::SavedPlan,
    now: chrono::DateTime<chrono::Utc>,
) -> Result<oncall_sync::DestinationReport, oncall_sync::PlanRefused> {
    f.provider.set_now(now);
    let target = oncall_sync::SyncTarget {
        destination: &f.destination,
        provider: &f.provider,
    };
    oncall_sync::apply_plan(saved, target, &f.store, now).await
}

/// Manual: a saved plan is refused, with nothing written, once the vendor's overrides or the
/// destination's state changed, once time passed a handoff, and for another destination.
#[tokio::test]
async fn manual_refuses_a_plan_after_an_intervening_change() {
    use oncall_sync::PlanRefused;
    for vendor in VENDORS {
        let (mut f, schedule) = exported(vendor, DestinationMode::Manual).await;
        // Ours running now is gone: the plan restores it from now.
        let running = f
            .ledger()
            .into_iter()
            .find(|o| o.span.start == now())
            .unwrap();
        assert!(f.provider.remove_override(&f.vs(), &running.id));
        let planned = f.sync(&schedule, at(3, 13)).await;
        assert_eq!(planned.plan.as_ref().unwrap().write_count(), 1, "{planned}");
        let saved = planned.saved_plan.as_deref().unwrap().clone();
        let untouched = |f: &Fixture| (f.provider.write_calls(), f.store.get(&f.destination.id));
        let before = untouched(&f);

        // A person's override within what the plan read.
        let theirs = f.foreign(at(7, 10), at(7, 11), "ann");
        let refused = apply(&f, &saved, at(3, 14)).await;
        assert!(
            matches!(refused, Err(PlanRefused::VendorChanged { .. })),
            "{refused:?}"
        );
        assert_eq!(untouched(&f), before, "nothing written");
        f.provider.remove_override(&f.vs(), &theirs);

        // Time passed the day 4 handoff: the plan would now be another.
        let refused = apply(&f, &saved, at(4, 10)).await;
        assert!(
            matches!(refused, Err(PlanRefused::Outdated { .. })),
            "{refused:?}"
        );
        assert_eq!(untouched(&f), before);

        // Another destination (here: the same one in another mode).
        f.destination.mode = DestinationMode::Authoritative;
        let refused = apply(&f, &saved, at(3, 14)).await;
        assert!(
            matches!(refused, Err(PlanRefused::OtherDestination { .. })),
            "{refused:?}"
        );
        f.destination.mode = DestinationMode::Manual;

        // Applied once; a second time the state has moved on.
        let applied = apply(&f, &saved, at(3, 14)).await.unwrap();
        assert_eq!(applied.status, SyncStatus::Ok, "{applied}");
        let after = untouched(&f);
        let refused = apply(&f, &saved, at(3, 15)).await;
        assert!(
            matches!(refused, Err(PlanRefused::StateChanged { .. })),
            "{refused:?}"
        );
        assert_eq!(untouched(&f), after);
    }
}

/// A saved plan applied a little later than planned writes the shift in progress from its own
/// instant, not from the plan's (R1: nothing is written into the past).
#[tokio::test]
async fn manual_plan_applied_later_writes_from_its_own_now() {
    for vendor in VENDORS {
        let mut f = Fixture::new(vendor, now());
        f.destination.mode = DestinationMode::Manual;
        let schedule = schedule(3, 11);
        let planned = f.sync(&schedule, now()).await;
        let saved = planned.saved_plan.as_deref().unwrap().clone();
        let applied = apply(&f, &saved, at(3, 15)).await.unwrap();
        assert_eq!(applied.status, SyncStatus::Ok, "{applied}");
        let first = f.ledger().into_iter().min_by_key(|o| o.span.start).unwrap();
        assert_eq!(first.span.start, at(3, 15), "{vendor:?}");
        assert_eq!(f.high_water(), Some(day(11)));
    }
}

/// A run that only plans (a dry run, any sync of a manual destination) saves nothing, even when
/// the vendor cannot be read: a state version a saved plan names stays valid, and `oncall plan`
/// creates no state.
#[tokio::test]
async fn a_planning_run_saves_nothing_even_when_the_vendor_cannot_be_read() {
    for vendor in VENDORS {
        for mode in [DestinationMode::Protect, DestinationMode::Manual] {
            let mut f = Fixture::new(vendor, now());
            f.destination.mode = mode;
            f.destination.schedule = oncall_sync::VendorScheduleId("missing".into());
            let planned = if mode == DestinationMode::Manual {
                f.sync(&schedule(3, 11), now()).await
            } else {
                f.run(&schedule(3, 11), now(), SyncMode::DryRun).await
            };
            assert!(!planned.errors.is_empty(), "{planned}");
            assert_eq!(
                f.store.get(&f.destination.id),
                None,
                "{mode}: nothing saved"
            );
        }
    }
}

/// A person moves ours past the scope (the ledger follows it there and leaves it alone), then
/// deletes it; the override restored for its shift asks for the same alias again and gets it. The
/// ledger must then hold one entry for that id, the restored one: a re-sync writes nothing.
#[tokio::test]
async fn an_alias_freed_past_the_scope_and_asked_for_again_keeps_one_ledger_entry() {
    let (f, schedule) = exported(Vendor::OpsgenieLike, DestinationMode::Authoritative).await;
    let moved = ours_at(&f, 6);
    let far = |d: i64| oncall_sync::Span::new(day(d), day(d + 1), moved.span.member.clone());
    f.provider
        .edit_override(&f.vs(), &moved.id, far(20))
        .unwrap();
    let report = f.sync(&schedule, at(3, 13)).await;
    assert_eq!(report.status, SyncStatus::Ok, "{report}");
    // Restored under the next alias of its start; the moved one is left where the person put it.
    let restored = ours_at(&f, 6);
    assert_ne!(restored.id, moved.id);
    // The person deletes the far one and moves the restored one far too.
    assert!(f.provider.remove_override(&f.vs(), &moved.id));
    f.provider
        .edit_override(&f.vs(), &restored.id, far(21))
        .unwrap();
    let report = f.sync(&schedule, at(3, 14)).await;
    assert_eq!(report.status, SyncStatus::Ok, "{report}");
    let ids: Vec<_> = f.ledger().into_iter().map(|l| l.id).collect();
    let unique: std::collections::HashSet<_> = ids.iter().collect();
    assert_eq!(ids.len(), unique.len(), "one ledger entry per id: {ids:?}");
    let again = f.sync(&schedule, at(3, 15)).await;
    assert_eq!(again.write_calls, 0, "{again}");
    assert_eq!(
        vendor_view(&f, at(3, 15), day(11)),
        desired_exact(&schedule, at(3, 15), day(11))
    );
}

/// A store as a lease holder sees it: every load first claims the destination, which raises the
/// state's version (the fencing token) without changing what it holds.
struct ClaimingStore<'a>(&'a oncall_sync::InMemoryStateStore);

#[async_trait::async_trait]
impl oncall_sync::StateStore for ClaimingStore<'_> {
    async fn load(
        &self,
        d: &oncall_sync::DestinationId,
    ) -> Result<oncall_sync::Versioned<oncall_sync::DestinationState>, oncall_sync::Error> {
        let loaded = self.0.load(d).await?;
        let version = self.0.save(d, loaded.version, &loaded.value).await?;
        Ok(oncall_sync::Versioned {
            version,
            value: loaded.value,
        })
    }
    async fn save(
        &self,
        d: &oncall_sync::DestinationId,
        expected: u64,
        state: &oncall_sync::DestinationState,
    ) -> Result<u64, oncall_sync::Error> {
        self.0.save(d, expected, state).await
    }
    async fn remove(
        &self,
        d: &oncall_sync::DestinationId,
        expected: u64,
    ) -> Result<(), oncall_sync::Error> {
        self.0.remove(d, expected).await
    }
}

/// Manual under leases (the CLI's PostgreSQL path): claiming the destination to apply its plan
/// raises the state's version, and the plan still applies, since what it depends on (the mark,
/// the ledger, the mode) is unchanged; a save that changes them is still refused.
#[tokio::test]
async fn manual_plan_applies_through_a_store_whose_claims_raise_the_version() {
    use oncall_sync::PlanRefused;
    for vendor in VENDORS {
        let (f, schedule) = exported(vendor, DestinationMode::Manual).await;
        assert!(f.provider.remove_override(&f.vs(), &ours_at(&f, 8).id));
        let claiming = ClaimingStore(&f.store);
        let planned = {
            let targets = [oncall_sync::SyncTarget {
                destination: &f.destination,
                provider: &f.provider,
            }];
            let options = oncall_sync::SyncOptions {
                now: at(3, 13),
                horizon: None,
                mode: SyncMode::Apply,
            };
            f.provider.set_now(at(3, 13));
            oncall_sync::sync(&schedule, &targets, &claiming, options)
                .await
                .unwrap()
                .destinations
                .remove(0)
        };
        let saved = planned.saved_plan.as_deref().unwrap().clone();
        f.provider.set_now(at(3, 14));
        let target = oncall_sync::SyncTarget {
            destination: &f.destination,
            provider: &f.provider,
        };
        let applied = oncall_sync::apply_plan(&saved, target, &claiming, at(3, 14))
            .await
            .unwrap_or_else(|e| panic!("{vendor:?}: {e}"));
        assert_eq!(applied.status, SyncStatus::Ok, "{applied}");
        assert!(f.vendor_overrides().iter().any(|o| o.span.start == day(8)));
        // Applied: the ledger moved on, and the same plan is refused.
        let again = oncall_sync::apply_plan(&saved, target, &claiming, at(3, 15)).await;
        assert!(
            matches!(again, Err(PlanRefused::StateChanged { .. })),
            "{again:?}"
        );
    }
}

/// The mode stored with the state tells a mode change between runs: the first run in the new
/// mode warns of it (people's overrides before the mark, which protect let stand, are removed),
/// and the next run, saved in the new mode, does not.
#[tokio::test]
async fn a_mode_change_between_runs_is_reported_once() {
    use oncall_sync::Warning;
    for vendor in VENDORS {
        let (mut f, schedule) = exported(vendor, DestinationMode::Protect).await;
        let first = f.sync(&schedule, at(3, 13)).await;
        assert!(
            !first
                .warnings
                .iter()
                .any(|w| matches!(w, Warning::ModeChanged { .. })),
            "{first}"
        );
        f.destination.mode = DestinationMode::Authoritative;
        let changed = f.sync(&schedule, at(3, 14)).await;
        assert!(
            changed.warnings.contains(&Warning::ModeChanged {
                from: DestinationMode::Protect,
                to: DestinationMode::Authoritative
            }),
            "{changed}"
        );
        let next = f.sync(&schedule, at(3, 15)).await;
        assert!(
            !next
                .warnings
                .iter()
                .any(|w| matches!(w, Warning::ModeChanged { .. })),
            "{next}"
        );
    }
}

/// A destination never saved is no mode change, whatever its version: under leases a claim
/// raises the version of a row nobody saved yet, and its first run (or a manual destination's
/// every planning run until a plan is applied) must not warn of a change from the default.
#[tokio::test]
async fn a_claimed_destination_never_saved_is_no_mode_change() {
    use oncall_sync::Warning;
    for vendor in VENDORS {
        for mode in [DestinationMode::Authoritative, DestinationMode::Manual] {
            let mut f = Fixture::new(vendor, now());
            f.destination.mode = mode;
            let claiming = ClaimingStore(&f.store);
            for hour in [13, 14] {
                let report = f
                    .sync_with_store(&schedule(3, 11), at(3, hour), &claiming)
                    .await;
                assert!(
                    !report
                        .warnings
                        .iter()
                        .any(|w| matches!(w, Warning::ModeChanged { .. })),
                    "{vendor:?} {mode}: {report}"
                );
            }
        }
    }
}

/// Authoritative mode through the Opsgenie adapter under the simulator's `PastEnd::Refuse`
/// reading (DESIGN §7 dialect: an update ending a running override before the vendor's now is
/// refused), with the vendor's clock 5 s ahead of the host's: a person's running cover is cut at
/// the vendor's now by the first sync, and never again.
#[tokio::test]
async fn authoritative_cuts_a_running_cover_once_on_opsgenie_refusing_a_past_end() {
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
    let theirs = sim.insert_override(
        &VendorScheduleId("VS".into()),
        oncall_sync::Span::new(at(3, 13), at(3, 20), email("dan")),
    );
    let mut statuses = Vec::new();
    for k in 0..4 {
        let now = at(3, 14) + chrono::TimeDelta::minutes(10 * k);
        sim.set_now(now + chrono::TimeDelta::seconds(5));
        let r = run(now).await;
        statuses.push((r.status, r.write_calls, r.errors.len()));
    }
    assert!(
        statuses
            .iter()
            .all(|(status, _, errors)| *status == SyncStatus::Ok && *errors == 0),
        "{statuses:?}"
    );
    assert!(statuses[0].1 > 0, "the first sync cuts it: {statuses:?}");
    assert!(
        statuses[1..].iter().all(|(_, writes, _)| *writes == 0),
        "cut once, at the vendor's now: {statuses:?}"
    );
    let theirs = sim
        .overrides(&VendorScheduleId("VS".into()))
        .into_iter()
        .find(|o| o.id == theirs)
        .unwrap();
    // Cut by the first sync, before the next one's now (the vendor's clock runs 5 s ahead; the
    // adapter's re-sent cut lands a little after the host's now).
    assert!(
        theirs.span.end < at(3, 14) + chrono::TimeDelta::minutes(10),
        "cut by the first sync: {theirs:?}"
    );
}
