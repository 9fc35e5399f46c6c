//! Retiring a destination as named steps: load its state, read the vendor, plan the retirement,
//! delete (or only plan), then drop the state.

use chrono::{DateTime, TimeDelta, Utc};

use super::{
    Destination, DestinationReport, OperationOutcome, Outcome, SyncError, SyncMode, SyncStatus,
};
use crate::error::{Error, Resource};
use crate::model::Window;
use crate::plan::{plan_retirement, Action, Override, Plan, PlannedOperation, RetirementInput};
use crate::provider::Provider;
use crate::state::{DestinationState, LastRun, StateStore};
use crate::time::whole_seconds;

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
///     retire, sync, ConnectionId, Destination, DestinationId, Email, InMemoryStateStore, Member,
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
    let mut run = Retirement::new(destination, provider, store);
    if !run.load_state().await {
        return run.report;
    }
    run.settle_now(now);
    let Some(vendor) = run.read_vendor().await else {
        return run.report;
    };
    let plan = run.plan(&vendor);
    if mode == SyncMode::DryRun {
        run.report.status = SyncStatus::Planned;
        run.report.plan = Some(plan);
        return run.report;
    }
    let outcomes = run.apply(&plan).await;
    run.finish(plan, outcomes).await;
    run.report
}

/// Whether every further delete on this destination would fail too.
fn stops_the_rest(error: &Error) -> bool {
    matches!(
        error,
        Error::PermissionDenied { .. }
            | Error::Unauthenticated { .. }
            | Error::RateLimited { .. }
            | Error::NotFound {
                resource: Resource::Schedule(_),
                ..
            }
    )
}

struct Retirement<'a> {
    destination: &'a Destination,
    provider: &'a dyn Provider,
    store: &'a dyn StateStore,
    now: DateTime<Utc>,
    version: u64,
    state: DestinationState,
    report: DestinationReport,
}

impl<'a> Retirement<'a> {
    fn new(
        destination: &'a Destination,
        provider: &'a dyn Provider,
        store: &'a dyn StateStore,
    ) -> Self {
        Retirement {
            destination,
            provider,
            store,
            now: DateTime::<Utc>::UNIX_EPOCH,
            version: 0,
            state: DestinationState::default(),
            report: DestinationReport {
                destination: destination.id.clone(),
                connection: destination.connection.clone(),
                status: SyncStatus::Failed,
                plan: None,
                outcomes: Vec::new(),
                errors: Vec::new(),
                warnings: Vec::new(),
                high_water_before: None,
                high_water_after: None,
                write_calls: 0,
            },
        }
    }

    fn error(&mut self, operation: Option<&PlannedOperation>, error: Error) {
        self.report.errors.push(SyncError {
            destination: self.destination.id.clone(),
            connection: self.destination.connection.clone(),
            operation: operation.map(ToString::to_string),
            error,
        });
    }

    async fn load_state(&mut self) -> bool {
        match self.store.load(&self.destination.id).await {
            Ok(loaded) => {
                self.version = loaded.version;
                self.state = loaded.value;
                self.report.high_water_before = self.state.high_water;
                self.report.high_water_after = self.state.high_water;
                true
            }
            Err(e) => {
                self.error(None, e);
                false
            }
        }
    }

    /// Whole seconds, and never before the last run (a clock that went back).
    fn settle_now(&mut self, given: DateTime<Utc>) {
        let given = whole_seconds(given);
        let last_run = self.state.last_run.as_ref().map(|r| whole_seconds(r.at));
        self.now = last_run.map_or(given, |last| last.max(given));
        if self.now != given {
            self.report
                .warnings
                .push(crate::plan::Warning::ClockBehind {
                    given,
                    last_run: self.now,
                });
        }
    }

    /// Reads the vendor's overrides from now to past the last ledger entry and the mark; where
    /// overrides can be moved in place, looks up by id each ledger entry not found there.
    async fn read_vendor(&mut self) -> Option<Vec<Override>> {
        let end = self
            .state
            .ledger
            .iter()
            .map(|l| l.span.end)
            .chain(self.state.high_water)
            .fold(self.now, DateTime::max);
        let end = end.checked_add_signed(TimeDelta::seconds(1)).unwrap_or(end);
        let mut vendor = match Window::new(self.now, end) {
            Ok(window) => {
                let listed = self
                    .provider
                    .list_overrides(&self.destination.schedule, window)
                    .await;
                match listed {
                    Ok(listed) => listed,
                    Err(e) => {
                        self.error(None, e);
                        return None;
                    }
                }
            }
            Err(_) => Vec::new(),
        };
        if !self.provider.capabilities().update_in_place {
            return Some(vendor);
        }
        let missing: Vec<Override> = self
            .state
            .ledger
            .iter()
            .filter(|l| !vendor.iter().any(|o| o.id == l.id))
            .cloned()
            .collect();
        for entry in missing {
            match self
                .provider
                .get_override(&self.destination.schedule, &entry.id)
                .await
            {
                Ok(Some(copy)) => vendor.push(copy),
                Ok(None) => {}
                Err(e) => {
                    self.error(None, e);
                    return None;
                }
            }
        }
        Some(vendor)
    }

    fn plan(&mut self, vendor: &[Override]) -> Plan {
        plan_retirement(RetirementInput {
            destination: &self.destination.id,
            now: self.now,
            vendor,
            state: &self.state,
            capabilities: self.provider.capabilities(),
        })
    }

    /// Deletes in the plan's order, keeping the ledger (and the saved state) in step after each.
    async fn apply(&mut self, plan: &Plan) -> Vec<Outcome> {
        let mut outcomes = Vec::with_capacity(plan.operations.len());
        let mut stopped = false;
        for op in &plan.operations {
            if stopped {
                outcomes.push(Outcome::Skipped);
                continue;
            }
            let target = match &op.action {
                Action::Forget { target } => {
                    self.state.ledger.retain(|l| l.id != target.id);
                    outcomes.push(Outcome::Done);
                    continue;
                }
                Action::Delete { target, .. } => target,
                _ => {
                    outcomes.push(Outcome::Skipped);
                    continue;
                }
            };
            self.report.write_calls += 1;
            let deleted = self
                .provider
                .delete_override(&self.destination.schedule, &target.id)
                .await;
            match deleted {
                Ok(_)
                | Err(Error::NotFound {
                    resource: Resource::Override(_),
                    ..
                }) => {
                    self.state.ledger.retain(|l| l.id != target.id);
                    outcomes.push(Outcome::Done);
                    // A process that dies from here on retires again from what is left.
                    if !self.save().await {
                        stopped = true;
                    }
                }
                Err(e) => {
                    stopped = stops_the_rest(&e);
                    self.error(Some(op), e);
                    outcomes.push(Outcome::Failed);
                }
            }
        }
        outcomes
    }

    async fn save(&mut self) -> bool {
        match self
            .store
            .save(&self.destination.id, self.version, &self.state)
            .await
        {
            Ok(version) => {
                self.version = version;
                true
            }
            Err(e) => {
                self.error(None, e);
                false
            }
        }
    }

    /// Drops the state when every step succeeded; otherwise keeps it with this run's outcome.
    async fn finish(&mut self, plan: Plan, outcomes: Vec<Outcome>) {
        self.report.outcomes = plan
            .operations
            .iter()
            .cloned()
            .zip(outcomes)
            .map(|(operation, outcome)| OperationOutcome { operation, outcome })
            .collect();
        self.report.plan = Some(plan);
        if self.report.errors.is_empty() {
            match self.store.remove(&self.destination.id, self.version).await {
                Ok(()) => {
                    self.report.high_water_after = None;
                    self.report.status = SyncStatus::Ok;
                    return;
                }
                Err(e) => self.error(None, e),
            }
        } else {
            self.state.last_run = Some(LastRun {
                at: self.now,
                ok: false,
                error: self.report.errors.first().map(ToString::to_string),
            });
            self.save().await;
        }
        let wrote = self
            .report
            .outcomes
            .iter()
            .any(|o| o.outcome == Outcome::Done && o.operation.is_write());
        self.report.status = if wrote {
            SyncStatus::Partial
        } else {
            SyncStatus::Failed
        };
    }
}

#[cfg(test)]
#[cfg(feature = "testkit")]
mod tests {
    use chrono::TimeZone;

    use super::*;
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
