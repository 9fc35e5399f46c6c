//! Applying a saved plan (DESIGN §8, manual mode) as named steps: check it is this destination's,
//! load the state and compare its digest, settle the instant, read the vendor again and compare
//! its digest, plan again and compare the operations, then the sync's own steps: apply, advance
//! the mark, record. Every refusal comes before the first write.

use chrono::{DateTime, Utc};

use super::run::Run;
use super::saved::{rebased, SavedPlan, StateDigest, VendorDigest, SAVED_PLAN_FORMAT};
use super::{Destination, DestinationReport, SyncTarget};
use crate::error::Error;
use crate::plan::{Override, Warning};
use crate::state::{DestinationId, StateStore};

/// Why a saved plan was not applied. Nothing was written to the vendor or the state.
#[non_exhaustive]
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum PlanRefused {
    /// Not a saved plan this release reads.
    #[error("not a saved plan of this release: format {found:?}, expected {SAVED_PLAN_FORMAT:?}")]
    Format {
        /// The format the file names.
        found: String,
    },
    /// The plan was made for another destination (or the destination's settings changed since:
    /// its connection, vendor schedule, role or mode).
    #[error(
        "the plan is for destination {} ({} on {}, role {}, {} mode), not for {} ({} on {}, role {}, \
         {} mode): plan again",
        planned.id, planned.schedule, planned.connection, planned.role, planned.mode,
        given.id, given.schedule, given.connection, given.role, given.mode
    )]
    OtherDestination {
        /// The destination in the plan.
        planned: Box<Destination>,
        /// The destination it was applied to.
        given: Box<Destination>,
    },
    /// The destination's state changed since the plan was made (another sync or apply saved a
    /// mark, ledger, last run or mode other than the plan read). A claim that only raises the
    /// store's version (a lease's fencing token) changes nothing the plan depends on.
    #[error(
        "destination {destination}: its state changed since the plan was made (digest {planned} \
         then, {current} now): plan again"
    )]
    StateChanged {
        /// The destination.
        destination: DestinationId,
        /// The digest of the state the plan read.
        planned: StateDigest,
        /// The digest of the state now.
        current: StateDigest,
    },
    /// The vendor's overrides changed since the plan was made (a person's edit, another tool).
    #[error(
        "destination {destination}: the vendor's overrides changed since the plan was made (digest \
         {planned} then, {current} now): plan again"
    )]
    VendorChanged {
        /// The destination.
        destination: DestinationId,
        /// The digest the plan read.
        planned: VendorDigest,
        /// The digest now.
        current: VendorDigest,
    },
    /// Planning again now gives other operations than the plan's, with everything it read
    /// unchanged: time passed a handoff or an override's start or end (a running override is cut,
    /// not deleted; a shift that started is written from now), or the plan file was edited. Also
    /// where what the vendor lists changed after time passed the end of an override the plan read
    /// ([`Preconditions::first_end`](crate::Preconditions::first_end)): a vendor that lists only overrides that have not ended no
    /// longer shows it, and nothing tells that from a person's edit.
    #[error(
        "destination {destination}: planned at {planned_at}, the plan is no longer what the planner \
         does at {now} (time passed a handoff or an override's start or end, or the plan was \
         edited): plan again"
    )]
    Outdated {
        /// The destination.
        destination: DestinationId,
        /// When the plan was made.
        planned_at: DateTime<Utc>,
        /// The instant it was applied at.
        now: DateTime<Utc>,
    },
    /// The state or the vendor could not be read to check the preconditions.
    #[error("destination {destination}: cannot check the plan: {error}")]
    Unreadable {
        /// The destination.
        destination: DestinationId,
        /// What failed.
        error: Error,
    },
}

/// Applies a saved plan to its destination (DESIGN §8), only while its preconditions hold: the
/// destination is the one planned for, its state holds what the plan read ([`StateDigest`]), the vendor's
/// overrides have the digest the plan read, and planning again at `now` from the same desired
/// spans gives the same operations (up to the instant). Otherwise it is refused with a
/// [`PlanRefused`] and nothing is written.
///
/// Once checked, it runs as a sync does (the rules of the plan's mode; R5 for the mark; a crash
/// leaves nothing a later sync cannot finish) and returns the destination's report. `now` is
/// floored to whole seconds and never earlier than the plan's instant.
///
/// ```
/// # #[cfg(feature = "testkit")] {
/// use chrono::{TimeZone, Utc};
/// use oncall_core::testkit::{InMemoryProvider, VendorSimulator};
/// use oncall_core::{
///     apply_plan, sync, ConnectionId, Destination, DestinationId, DestinationMode, Email,
///     InMemoryStateStore, Member, PlanRefused, RoleIndex, Schedule, ScheduleId, Shift, Span,
///     SyncMode, SyncOptions, SyncStatus, SyncTarget, VendorSchedule, VendorScheduleId,
/// };
/// # futures_lite_block_on(async {
/// let t = |d, h| Utc.with_ymd_and_hms(2024, 3, d, h, 0, 0).unwrap();
/// let ann = Email::parse("ann@example.com").unwrap();
/// let members = vec![Member::new(ann.clone(), "Ann")];
/// let vendor = InMemoryProvider::pagerduty_like(t(1, 12));
/// let ops = VendorScheduleId("ops".into());
/// vendor.add_schedule(VendorSchedule {
///     id: ops.clone(), name: "Ops".into(), zone: chrono_tz::UTC, members: members.clone(), rotations: Vec::new(),
/// });
/// let shifts = (2..5).map(|d| Shift::new(t(d, 9), t(d + 1, 9), vec![Some(ann.clone())])).collect();
/// let host = Schedule::new(ScheduleId("host".into()), chrono_tz::UTC, vec!["primary".into()], members, shifts)?;
/// let destination = Destination {
///     id: DestinationId("ops-primary".into()),
///     connection: ConnectionId("mem".into()),
///     schedule: ops.clone(),
///     role: RoleIndex::PRIMARY,
///     mode: DestinationMode::Manual,
/// };
/// let store = InMemoryStateStore::new();
/// let target = SyncTarget { destination: &destination, provider: &vendor };
/// let options = SyncOptions { now: t(1, 12), horizon: None, mode: SyncMode::Apply };
///
/// // A manual destination only plans.
/// let report = sync(&host, &[target], &store, options).await?;
/// let planned = &report.destinations[0];
/// assert_eq!(planned.status, SyncStatus::Planned);
/// assert!(vendor.overrides(&ops).is_empty());
/// let saved = planned.saved_plan.as_deref().expect("a plan to apply");
///
/// // Someone changes the vendor in between: the plan is refused, nothing is written.
/// let theirs = vendor.insert_override(&ops, Span::new(t(3, 10), t(3, 12), ann.clone()));
/// let refused = apply_plan(saved, target, &store, t(1, 13)).await;
/// assert!(matches!(refused, Err(PlanRefused::VendorChanged { .. })), "{refused:?}");
/// assert_eq!(vendor.overrides(&ops).len(), 1);
///
/// // Planned again, it applies.
/// vendor.remove_override(&ops, &theirs);
/// let report = sync(&host, &[target], &store, options).await?;
/// let saved = report.destinations[0].saved_plan.as_deref().expect("a plan to apply");
/// let applied = apply_plan(saved, target, &store, t(1, 13)).await.expect("applied");
/// assert_eq!(applied.status, SyncStatus::Ok, "{applied}");
/// assert_eq!(vendor.overrides(&ops).len(), 3);
/// # Ok::<(), oncall_core::Error>(())
/// # }).unwrap();
/// # fn futures_lite_block_on<F: std::future::Future>(f: F) -> F::Output {
/// #     let mut f = std::pin::pin!(f);
/// #     let mut cx = std::task::Context::from_waker(std::task::Waker::noop());
/// #     loop { if let std::task::Poll::Ready(v) = f.as_mut().poll(&mut cx) { return v; } }
/// # }
/// # }
/// ```
pub async fn apply_plan(
    saved: &SavedPlan,
    target: SyncTarget<'_>,
    store: &dyn StateStore,
    now: DateTime<Utc>,
) -> Result<DestinationReport, PlanRefused> {
    check_destination(saved, target.destination)?;
    let mut run = Run::new(target, store);
    let id = target.destination.id.clone();
    let unreadable = |error: Error| PlanRefused::Unreadable {
        destination: id.clone(),
        error,
    };
    run.load_state_or_fail().await.map_err(unreadable)?;
    let current = StateDigest::of(&run.state);
    if current != saved.preconditions.state_digest {
        return Err(PlanRefused::StateChanged {
            destination: id,
            planned: saved.preconditions.state_digest.clone(),
            current,
        });
    }
    settle_now(&mut run, saved, now);
    let planned_at = (saved.plan.now, run.now);
    let outdated = || PlanRefused::Outdated {
        destination: id.clone(),
        planned_at: planned_at.0,
        now: planned_at.1,
    };
    let vendor = read_again(&mut run, saved).await.map_err(unreadable)?;
    let current = VendorDigest::of(&vendor);
    if current != saved.preconditions.vendor_digest {
        // Time that passed the end of an override the plan read may be all that changed: a vendor
        // listing only overrides that have not ended no longer shows it.
        if outlived(saved, run.now) {
            return Err(outdated());
        }
        return Err(PlanRefused::VendorChanged {
            destination: id,
            planned: saved.preconditions.vendor_digest.clone(),
            current,
        });
    }
    let desired = saved.desired.at(run.now).map_err(|_| outdated())?;
    let plan = run.plan(&desired, &vendor);
    if plan.operations != rebased(&saved.plan, run.now) {
        return Err(outdated());
    }
    let applied = run.apply(&plan).await;
    run.advance_mark(&plan, &applied);
    run.note_written_over(&vendor);
    run.keep_live_entries(&vendor);
    run.finish(plan, applied).await;
    Ok(run.report)
}

/// Whether time at `now` has passed the end of an override the plan read.
fn outlived(saved: &SavedPlan, now: DateTime<Utc>) -> bool {
    saved.preconditions.first_end.is_some_and(|end| now >= end)
}

fn check_destination(saved: &SavedPlan, given: &Destination) -> Result<(), PlanRefused> {
    if saved.format != SAVED_PLAN_FORMAT {
        return Err(PlanRefused::Format {
            found: saved.format.clone(),
        });
    }
    if saved.destination != *given || saved.plan.destination != given.id {
        return Err(PlanRefused::OtherDestination {
            planned: Box::new(saved.destination.clone()),
            given: Box::new(given.clone()),
        });
    }
    Ok(())
}

/// The instant: whole seconds, never before the plan's (nor, as in a sync, the last run's).
fn settle_now(run: &mut Run<'_>, saved: &SavedPlan, now: DateTime<Utc>) {
    run.settle_now(now);
    if run.now < saved.plan.now {
        run.report.warnings.push(Warning::ClockBehind {
            given: run.now,
            last_run: saved.plan.now,
        });
        run.now = saved.plan.now;
    }
}

/// Reads what the plan read, the same way: the window, then the overrides looked up by id.
async fn read_again(run: &mut Run<'_>, saved: &SavedPlan) -> Result<Vec<Override>, Error> {
    let provider = run.target.provider;
    let schedule = &run.target.destination.schedule;
    let mut vendor = match saved.preconditions.read {
        Some(window) => provider.list_overrides(schedule, window).await?,
        None => Vec::new(),
    };
    super::run::canonical_order(&mut vendor);
    let mut found = false;
    for id in &saved.preconditions.looked_up {
        if let Some(copy) = provider.get_override(schedule, id).await? {
            if !vendor.iter().any(|o| o.id == copy.id) {
                vendor.push(copy);
                found = true;
            }
        }
    }
    if found {
        super::run::canonical_order(&mut vendor);
    }
    Ok(vendor)
}
