//! Retiring a destination as named steps: load its state, read the vendor, plan the retirement,
//! delete (or only plan), then drop the state.

use std::collections::HashSet;

use chrono::{DateTime, TimeDelta, Utc};

use super::run::{Applied, Run};
use super::{
    Destination, DestinationReport, OperationOutcome, Outcome, SyncMode, SyncStatus, SyncTarget,
};
use crate::model::Window;
use crate::plan::{plan_retirement, Override, OverrideId, Plan, RetirementInput};
use crate::provider::Provider;
use crate::state::StateStore;

/// Retires a destination the host stops exporting to (DESIGN §3): deletes our overrides there that
/// have not started ([`plan_retirement`]), leaves the running one and everything foreign alone, and
/// then drops the destination's state from `store` ([`StateStore::remove`]).
///
/// With [`SyncMode::DryRun`] it only plans: the report's status is [`SyncStatus::Planned`] and
/// nothing is written or saved. When a delete fails, the state is kept (with the deletes that
/// succeeded taken out of the ledger and the failure as its last run), so that retiring again
/// finishes the job; the report is then `partial` or `failed`, and the mark is unchanged. A
/// delete refused for permissions (R8) stops the rest. As in [`super::sync`], `now` is floored to
/// whole seconds and never earlier than the destination's last run.
///
/// ```
/// # #[cfg(feature = "testkit")] {
/// use chrono::{TimeZone, Utc};
/// use oncall_core::testkit::{InMemoryProvider, VendorSimulator};
/// use oncall_core::{
///     retire, sync, ConnectionId, Destination, DestinationId, DestinationMode, Email, InMemoryStateStore, Member,
///     RoleIndex, Schedule, ScheduleId, Shift, StateStore, SyncMode, SyncOptions, SyncTarget,
///     VendorSchedule, VendorScheduleId,
/// };
/// # futures_lite_block_on(async {
/// let t = |d| Utc.with_ymd_and_hms(2024, 3, d, 9, 0, 0).unwrap();
/// let ann = Email::parse("ann@example.com").unwrap();
/// let members = vec![Member::new(ann.clone(), "Ann")];
/// let vendor = InMemoryProvider::pagerduty_like(t(1));
/// let schedule_id = VendorScheduleId("ops".into());
/// vendor.add_schedule(VendorSchedule {
///     id: schedule_id.clone(),
///     name: "Ops".into(),
///     zone: chrono_tz::UTC,
///     members: members.clone(),
///     rotations: Vec::new(),
/// });
/// let shifts = (1..5).map(|d| Shift::new(t(d), t(d + 1), vec![Some(ann.clone())])).collect();
/// let host = Schedule::new(ScheduleId("host".into()), chrono_tz::UTC, vec!["primary".into()], members, shifts)?;
/// let destination = Destination {
///     id: DestinationId("ops-primary".into()),
///     connection: ConnectionId("mem".into()),
///     schedule: schedule_id.clone(),
///     role: RoleIndex::PRIMARY,
///     mode: DestinationMode::Protect,
/// };
/// let store = InMemoryStateStore::new();
/// let targets = [SyncTarget { destination: &destination, provider: &vendor }];
/// let options = SyncOptions { now: t(1), horizon: None, mode: SyncMode::Apply };
/// sync(&host, &targets, &store, options).await?;
/// assert_eq!(vendor.overrides(&schedule_id).len(), 4);
///
/// // A day later the host stops exporting there: the running override stays, the rest go.
/// vendor.set_now(t(2) + chrono::TimeDelta::hours(3));
/// let report = retire(&destination, &vendor, &store, vendor.now(), SyncMode::Apply).await;
/// assert!(report.errors.is_empty(), "{report}");
/// assert_eq!(vendor.overrides(&schedule_id).len(), 2, "the past one and the running one");
/// assert_eq!(store.load(&destination.id).await?.version, 0, "the state is gone");
/// # Ok::<(), oncall_core::Error>(())
/// # }).unwrap();
/// # fn futures_lite_block_on<F: std::future::Future>(f: F) -> F::Output {
/// #     let mut f = std::pin::pin!(f);
/// #     let mut cx = std::task::Context::from_waker(std::task::Waker::noop());
/// #     loop { if let std::task::Poll::Ready(v) = f.as_mut().poll(&mut cx) { return v; } }
/// # }
/// # }
/// ```
pub async fn retire(
    destination: &Destination,
    provider: &dyn Provider,
    store: &dyn StateStore,
    now: DateTime<Utc>,
    mode: SyncMode,
) -> DestinationReport {
    let mut run = Run::new(
        SyncTarget {
            destination,
            provider,
        },
        store,
    );
    if !run.load_state().await {
        return run.report;
    }
    run.settle_now(now);
    let Some(vendor) = read_ours(&mut run).await else {
        return run.report;
    };
    let plan = plan_retirement(RetirementInput {
        destination: &destination.id,
        now: run.now,
        vendor: &vendor,
        state: &run.state,
        capabilities: provider.capabilities(),
    });
    if mode == SyncMode::DryRun {
        run.report.status = SyncStatus::Planned;
        run.report.plan = Some(plan);
        return run.report;
    }
    // The sync's own steps delete, keep the ledger and the saved state in step after each delete,
    // and stop after an error every later write would share (R8).
    let applied = run.apply(&plan).await;
    finish(&mut run, plan, applied).await;
    run.report
}

/// Reads the vendor's overrides from now to past the last ledger entry and the mark (and, where
/// our overrides carry our alias, far beyond: a create whose answer was lost may lie past both);
/// where overrides can be moved in place, looks up by id each ledger entry not found there.
async fn read_ours(run: &mut Run<'_>) -> Option<Vec<Override>> {
    let (provider, schedule) = (run.target.provider, &run.target.destination.schedule);
    let lost_creates = provider
        .capabilities()
        .client_ids
        .then(|| {
            run.now
                .checked_add_signed(TimeDelta::days(LOST_CREATES_DAYS))
        })
        .flatten();
    let end = run
        .state
        .ledger
        .iter()
        .map(|l| l.span.end)
        .chain(run.state.high_water)
        .chain(lost_creates)
        .fold(run.now, DateTime::max);
    let end = end.checked_add_signed(TimeDelta::seconds(1)).unwrap_or(end);
    let mut vendor = match Window::new(run.now, end) {
        Ok(window) => match provider.list_overrides(schedule, window).await {
            Ok(listed) => listed,
            Err(e) => {
                run.error(None, e);
                return None;
            }
        },
        Err(_) => Vec::new(),
    };
    if !provider.capabilities().update_in_place {
        return Some(vendor);
    }
    let listed: HashSet<OverrideId> = vendor.iter().map(|o| o.id.clone()).collect();
    let missing: Vec<OverrideId> = run
        .state
        .ledger
        .iter()
        .filter(|l| !listed.contains(&l.id))
        .map(|l| l.id.clone())
        .collect();
    for id in missing {
        match provider.get_override(schedule, &id).await {
            Ok(Some(copy)) => vendor.push(copy),
            Ok(None) => {}
            Err(e) => {
                run.error(None, e);
                return None;
            }
        }
    }
    Some(vendor)
}

/// How far past now a retirement looks for overrides carrying our alias that the ledger lost (ten
/// years: further than any horizon a host exports; Opsgenie lists every override in one call).
const LOST_CREATES_DAYS: i64 = 3_660;

/// Drops the state when every step succeeded; otherwise keeps it with this run's outcome, so that
/// retiring again finishes the job.
async fn finish(run: &mut Run<'_>, plan: Plan, applied: Vec<Applied>) {
    run.report.outcomes = plan
        .operations
        .iter()
        .cloned()
        .zip(applied)
        .map(|(operation, a)| OperationOutcome {
            operation,
            outcome: a.outcome(),
        })
        .collect();
    run.report.plan = Some(plan);
    if run.report.errors.is_empty() {
        let destination = &run.target.destination.id;
        match run.store.remove(destination, run.version).await {
            Ok(()) => {
                run.report.high_water_after = None;
                run.report.status = SyncStatus::Ok;
                return;
            }
            Err(e) => run.error(None, e),
        }
    } else {
        run.record_last_run().await;
    }
    let wrote = run
        .report
        .outcomes
        .iter()
        .any(|o| o.outcome == Outcome::Done && o.operation.is_write());
    run.report.status = if wrote {
        SyncStatus::Partial
    } else {
        SyncStatus::Failed
    };
}

#[cfg(test)]
#[cfg(feature = "testkit")]
mod tests {
    use chrono::TimeZone;

    use super::*;
    use crate::error::Error;
    use crate::model::{Email, Member, RoleIndex, Schedule, ScheduleId, Shift};
    use crate::plan::Span;
    use crate::provider::{Capabilities, VendorSchedule, VendorScheduleId};
    use crate::state::{DestinationId, InMemoryStateStore};
    use crate::sync::{sync, ConnectionId, SyncOptions, SyncTarget};
    use crate::testkit::{Fault, InMemoryProvider, Trigger, VendorSimulator};

    fn block_on<F: std::future::Future>(f: F) -> F::Output {
        // The in-memory provider and store never wait: polling until ready finishes them.
        let mut f = std::pin::pin!(f);
        let mut cx = std::task::Context::from_waker(std::task::Waker::noop());
        loop {
            if let std::task::Poll::Ready(v) = f.as_mut().poll(&mut cx) {
                return v;
            }
        }
    }

    fn t(day: u32, hour: u32) -> DateTime<Utc> {
        Utc.with_ymd_and_hms(2024, 3, day, hour, 0, 0).unwrap()
    }

    fn ann() -> Email {
        Email::parse("ann@example.com").unwrap()
    }

    struct World {
        vendor: InMemoryProvider,
        store: InMemoryStateStore,
        destination: Destination,
    }

    /// Days 1-6 exported at day 1 09:00 (our six overrides), then the clock at day 2 12:00.
    fn exported(capabilities: Capabilities) -> World {
        let vendor = InMemoryProvider::new("memory", capabilities, t(1, 9));
        let schedule = VendorScheduleId("ops".into());
        let members = vec![Member::new(ann(), "Ann")];
        vendor.add_schedule(VendorSchedule {
            id: schedule.clone(),
            name: "Ops".into(),
            zone: chrono_tz::UTC,
            members: members.clone(),
            rotations: Vec::new(),
        });
        let shifts = (1..7)
            .map(|d| Shift::new(t(d, 9), t(d + 1, 9), vec![Some(ann())]))
            .collect();
        let host = Schedule::new(
            ScheduleId("host".into()),
            chrono_tz::UTC,
            vec!["primary".into()],
            members,
            shifts,
        )
        .unwrap();
        let destination = Destination {
            id: DestinationId("ops-primary".into()),
            connection: ConnectionId("mem".into()),
            schedule,
            role: RoleIndex::PRIMARY,
            mode: crate::DestinationMode::Protect,
        };
        let store = InMemoryStateStore::new();
        let options = SyncOptions {
            now: t(1, 9),
            horizon: None,
            mode: SyncMode::Apply,
        };
        let targets = [SyncTarget {
            destination: &destination,
            provider: &vendor,
        }];
        let report = block_on(sync(&host, &targets, &store, options)).unwrap();
        assert!(report.is_ok(), "{report}");
        vendor.set_now(t(2, 12));
        World {
            vendor,
            store,
            destination,
        }
    }

    #[test]
    fn deletes_what_has_not_started_keeps_the_rest_and_drops_the_state() {
        for caps in [Capabilities::PAGERDUTY, Capabilities::OPSGENIE] {
            let w = exported(caps);
            let schedule = &w.destination.schedule;
            let manual = w
                .vendor
                .insert_override(schedule, Span::new(t(4, 10), t(4, 12), ann()));
            let before = w.vendor.write_calls();
            let report = block_on(retire(
                &w.destination,
                &w.vendor,
                &w.store,
                t(2, 12),
                SyncMode::Apply,
            ));
            assert_eq!(report.status, SyncStatus::Ok, "{report}");
            assert_eq!(report.write_calls, 4, "days 3-6: {report}");
            assert_eq!(w.vendor.write_calls() - before, 4);
            let left: Vec<_> = w.vendor.overrides(schedule);
            let starts: Vec<_> = left.iter().map(|o| o.span.start).collect();
            assert_eq!(
                starts,
                [t(1, 9), t(2, 9), t(4, 10)],
                "the past one, the running one and the person's stay"
            );
            assert!(left.iter().any(|o| o.id == manual));
            assert_eq!(w.store.get(&w.destination.id), None, "the state is gone");
            assert_eq!(report.high_water_after, None);
        }
    }

    /// A first export that died after its creates and before saving anything leaves overrides
    /// carrying our alias that no ledger or mark points at: retiring still finds and deletes them.
    #[test]
    fn finds_our_creates_whose_state_was_never_saved() {
        let w = exported(Capabilities::OPSGENIE);
        let lost = block_on(w.store.load(&w.destination.id)).unwrap().version;
        block_on(w.store.remove(&w.destination.id, lost)).unwrap();
        let report = block_on(retire(
            &w.destination,
            &w.vendor,
            &w.store,
            t(2, 12),
            SyncMode::Apply,
        ));
        assert_eq!(report.status, SyncStatus::Ok, "{report}");
        let starts: Vec<_> = w
            .vendor
            .overrides(&w.destination.schedule)
            .iter()
            .map(|o| o.span.start)
            .collect();
        assert_eq!(
            starts,
            [t(1, 9), t(2, 9)],
            "only the past and the running one"
        );
    }

    #[test]
    fn a_dry_run_writes_nothing_and_keeps_the_state() {
        let w = exported(Capabilities::PAGERDUTY);
        let before = (w.vendor.write_calls(), w.store.get(&w.destination.id));
        let report = block_on(retire(
            &w.destination,
            &w.vendor,
            &w.store,
            t(2, 12),
            SyncMode::DryRun,
        ));
        assert_eq!(report.status, SyncStatus::Planned);
        assert_eq!(report.plan.as_ref().map(Plan::write_count), Some(4));
        assert_eq!(
            (w.vendor.write_calls(), w.store.get(&w.destination.id)),
            before
        );
    }

    #[test]
    fn a_refused_delete_keeps_the_state_for_the_next_try() {
        let w = exported(Capabilities::PAGERDUTY);
        let writes = w.vendor.write_calls();
        w.vendor.inject(
            Trigger::Write(writes + 2),
            Fault::Fail(Error::PermissionDenied {
                message: "read-only key".into(),
            }),
        );
        let report = block_on(retire(
            &w.destination,
            &w.vendor,
            &w.store,
            t(2, 12),
            SyncMode::Apply,
        ));
        assert_eq!(report.status, SyncStatus::Partial, "{report}");
        let outcomes: Vec<Outcome> = report.outcomes.iter().map(|o| o.outcome.clone()).collect();
        assert_eq!(
            outcomes,
            [
                Outcome::Done, // forget day 1, ended
                Outcome::Done, // delete day 3
                Outcome::Failed,
                Outcome::Skipped,
                Outcome::Skipped
            ]
        );
        assert!(report.errors[0].to_string().contains("ops-primary"));
        let kept = w.store.get(&w.destination.id).expect("the state is kept");
        assert_eq!(
            kept.ledger.len(),
            4,
            "the ended one and the deleted one left the ledger"
        );
        assert_eq!(kept.high_water, report.high_water_before);
        // Once the key can write again, retiring finishes the job.
        let report = block_on(retire(
            &w.destination,
            &w.vendor,
            &w.store,
            t(2, 13),
            SyncMode::Apply,
        ));
        assert_eq!(report.status, SyncStatus::Ok, "{report}");
        assert_eq!(w.vendor.overrides(&w.destination.schedule).len(), 2);
        assert_eq!(w.store.get(&w.destination.id), None);
    }
}
