//! One destination's sync as named steps: load the state, settle the instant, read the vendor,
//! plan, apply the plan in order, advance the mark, record the run.

use std::collections::HashSet;

use chrono::{DateTime, TimeDelta, Utc};

use super::saved::{Preconditions, SavedPlan, StateDigest, VendorDigest};
use super::{
    DestinationReport, OperationOutcome, Outcome, SyncError, SyncMode, SyncOptions, SyncStatus,
    SyncTarget,
};
use crate::error::{Error, LedgerElsewhere, Resource, ValidationError};
use crate::model::{Schedule, Window};
use crate::plan::{
    alias_attempt, desired_spans, is_alias_for, plan_export, Action, Desired, Override, OverrideId,
    Plan, PlanInput, PlannedOperation, Span, Warning, ALIAS_ATTEMPTS, CLOCK_SKEW,
};
use crate::provider::NewOverride;
use crate::state::{DestinationState, LastRun, LedgerHome, StateStore, WrittenOver};
use crate::time::whole_seconds;

/// How many times one run re-reads and re-sends creates whose answers were lost (where the vendor
/// takes client ids; without them a lost create is read back once and never re-sent in the run).
const LOST_CREATE_ROUNDS: usize = 2;

/// Syncs one destination: the steps below, in order. Nothing here panics or returns early without
/// a report; a failure stops the steps that depend on it and is recorded.
pub(super) async fn sync_destination(
    schedule: &Schedule,
    target: SyncTarget<'_>,
    store: &dyn StateStore,
    options: SyncOptions,
) -> DestinationReport {
    let mut run = Run::new(target, store);
    if !run.load_state().await {
        return run.report;
    }
    run.settle_now(options.now);
    let Some(desired) = run.desired(schedule, options) else {
        return run.report;
    };
    // A dry run, and any sync of a manual destination (DESIGN §8), only plans: it saves nothing,
    // not even a failure, so the state a saved plan names stays as it read it.
    let plans_only = options.mode == SyncMode::DryRun || target.destination.mode.plans_only();
    let Some(vendor) = run.read_vendor(&desired).await else {
        if !plans_only {
            run.record_last_run().await;
        }
        return run.report;
    };
    let Some((plan, vendor)) = run.plan_with_lookups(&desired, vendor).await else {
        if !plans_only {
            run.record_last_run().await;
        }
        return run.report;
    };
    if plans_only {
        run.report.status = SyncStatus::Planned;
        run.report.saved_plan = Some(Box::new(run.saved_plan(&desired, &vendor, &plan)));
        run.report.plan = Some(plan);
        return run.report;
    }
    let applied = run.apply(&plan).await;
    run.advance_mark(&plan, &applied);
    run.note_written_over(&vendor);
    run.keep_live_entries(&vendor);
    run.finish(plan, applied).await;
    run.report
}

/// What became of one planned step, as the mark needs to know it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Applied {
    Done,
    /// Failed; `holds_mark` is false only where R5 lets the mark pass (a member the vendor does
    /// not know).
    Failed {
        holds_mark: bool,
    },
    Skipped,
}

impl Applied {
    pub(super) fn outcome(self) -> Outcome {
        match self {
            Applied::Done => Outcome::Done,
            Applied::Failed { .. } => Outcome::Failed,
            Applied::Skipped => Outcome::Skipped,
        }
    }

    fn holds_mark(self) -> bool {
        match self {
            Applied::Done => false,
            Applied::Failed { holds_mark } => holds_mark,
            Applied::Skipped => true,
        }
    }
}

/// R5: a failed step holds the mark, except a span of ours (written or changed into) whose member
/// the vendor does not know: it is reported and tried again on every later sync, from the
/// protected region (R4), without holding everything after it in the fresh region.
fn holds_mark(op: &PlannedOperation, error: &Error) -> bool {
    let ours = matches!(
        op.action,
        Action::Create { owned: true, .. } | Action::Update { owned: true, .. }
    );
    !(ours && matches!(error, Error::UnknownMember { .. }))
}

/// Whether an error means every further write on this destination will fail too, or must not be
/// tried: a vendor answer we could not read leaves what happened unknown, so nothing more is
/// written this run. (A vendor's conflict, such as an alias in use, concerns one override; a
/// conflict saving state stops the run where the save fails.)
fn is_fatal(error: &Error) -> bool {
    matches!(
        error,
        Error::PermissionDenied { .. }
            | Error::PeopleLookupDenied { .. }
            | Error::Unauthenticated { .. }
            | Error::RateLimited { .. }
            | Error::InvalidResponse { .. }
            | Error::NotFound {
                resource: Resource::Schedule(_),
                ..
            }
    )
}

/// One destination's run: what the sync (and a retirement, [`super::retire`]) reads, writes and
/// reports, step by step.
pub(super) struct Run<'a> {
    pub(super) target: SyncTarget<'a>,
    pub(super) store: &'a dyn StateStore,
    /// The instant this destination plans with: whole seconds, never before its last run.
    pub(super) now: DateTime<Utc>,
    pub(super) version: u64,
    pub(super) state: DestinationState,
    pub(super) report: DestinationReport,
    fatal: bool,
    save_failed: bool,
    /// Overrides whose surviving part could not be re-created: they are not removed this run.
    held: HashSet<OverrideId>,
    /// Every override this run created (ours and kept parts of others').
    created: HashSet<OverrideId>,
    /// The window the vendor's overrides were listed over, if any.
    read: Option<Window>,
    /// Ledger entries looked up by id (found or not).
    looked_up: Vec<OverrideId>,
}

impl<'a> Run<'a> {
    pub(super) fn new(target: SyncTarget<'a>, store: &'a dyn StateStore) -> Run<'a> {
        let destination = target.destination;
        Run {
            target,
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
                saved_plan: None,
            },
            fatal: false,
            save_failed: false,
            held: HashSet::new(),
            created: HashSet::new(),
            read: None,
            looked_up: Vec::new(),
        }
    }

    /// Loads the destination's mark, ledger and last run; a failure is recorded.
    pub(super) async fn load_state(&mut self) -> bool {
        match self.load_state_or_fail().await {
            Ok(()) => true,
            Err(e) => {
                self.error(None, e);
                false
            }
        }
    }

    /// Loads the destination's mark, ledger and last run.
    pub(super) async fn load_state_or_fail(&mut self) -> Result<(), Error> {
        let loaded = self.store.load(&self.target.destination.id).await?;
        // The ledger's ids are those of one connection's vendor schedule: refused through
        // another (after `migrate`, the old one), nothing sent or saved.
        let here = LedgerHome {
            connection: self.target.destination.connection.clone(),
            schedule: self.target.destination.schedule.clone(),
        };
        if let Some(home) = loaded.value.home.as_ref().filter(|h| **h != here) {
            let elsewhere = LedgerElsewhere {
                destination: self.target.destination.id.clone(),
                home: home.clone(),
                asked: here,
            };
            return Err(Error::InvalidInput(ValidationError::LedgerElsewhere(
                Box::new(elsewhere),
            )));
        }
        self.version = loaded.version;
        self.state = loaded.value;
        self.state.home = Some(here);
        // The mode stored with the state tells a mode change between runs (DESIGN §8). Only a
        // state a run saved holds a mode: under leases a claim raises the version of a row
        // nobody saved yet, which reads as the default.
        let mode = self.target.destination.mode;
        if self.state.last_run.is_some() && self.state.mode != mode {
            self.report.warnings.push(Warning::ModeChanged {
                from: self.state.mode,
                to: mode,
            });
        }
        // A mark saved before instants were whole seconds is rounded up: never backwards.
        self.state.high_water = self.state.high_water.map(|h| {
            let floor = whole_seconds(h);
            if floor == h {
                h
            } else {
                floor + TimeDelta::seconds(1)
            }
        });
        self.report.high_water_before = self.state.high_water;
        self.report.high_water_after = self.state.high_water;
        Ok(())
    }

    /// What this planning run read and planned, to apply later ([`super::apply_plan`]).
    fn saved_plan(&self, desired: &Desired, vendor: &[Override], plan: &Plan) -> SavedPlan {
        let preconditions = Preconditions {
            state_digest: StateDigest::of(&self.state),
            vendor_digest: VendorDigest::of(vendor),
            read: self.read,
            looked_up: self.looked_up.clone(),
            first_end: Preconditions::first_end_after(vendor, self.now),
        };
        SavedPlan::new(
            self.target.destination.clone(),
            preconditions,
            desired,
            plan.clone(),
        )
    }

    /// DESIGN §3: instants are whole seconds, and a destination never plans with a `now` earlier
    /// than its last run's: a clock that went back is replaced by the last run's `now`, with a
    /// warning.
    pub(super) fn settle_now(&mut self, given: DateTime<Utc>) {
        let given = whole_seconds(given);
        let last_run = self.state.last_run.as_ref().map(|r| whole_seconds(r.at));
        self.now = match last_run {
            Some(last_run) if last_run > given => {
                self.report
                    .warnings
                    .push(Warning::ClockBehind { given, last_run });
                last_run
            }
            _ => given,
        };
    }

    /// `D`, `E` and `S` of the role this destination exports.
    fn desired(&mut self, schedule: &Schedule, options: SyncOptions) -> Option<Desired> {
        match desired_spans(
            schedule,
            self.target.destination.role,
            self.now,
            options.horizon,
        ) {
            Ok(d) => Some(d),
            Err(e) => {
                self.error(None, e.into());
                None
            }
        }
    }

    /// Reads everything the plan may touch: up to the scope end, the mark and the ledger in scope,
    /// and a second past it, so that a part kept after the horizon by an interrupted run (starting
    /// exactly there) is seen and not created twice.
    async fn read_vendor(&mut self, desired: &Desired) -> Option<Vec<Override>> {
        let scope_end = desired.scope_end(self.state.high_water);
        let read_end = self
            .state
            .ledger
            .iter()
            .filter(|l| l.span.start < scope_end)
            .map(|l| l.span.end)
            .chain(self.state.high_water)
            .fold(scope_end, DateTime::max);
        let read_end = read_end
            .checked_add_signed(TimeDelta::seconds(1))
            .unwrap_or(read_end);
        let Ok(window) = Window::new(self.now, read_end) else {
            return Some(Vec::new());
        };
        self.read = Some(window);
        let destination = self.target.destination;
        match self
            .target
            .provider
            .list_overrides(&destination.schedule, window)
            .await
        {
            Ok(mut vendor) => {
                canonical_order(&mut vendor);
                Some(vendor)
            }
            Err(e) => {
                self.error(None, e);
                None
            }
        }
    }

    /// Plans; then, where a person can move an override of ours anywhere (vendors that update in
    /// place), looks up each ledger entry the plan would forget, and plans again with the copies
    /// found: an entry is forgotten only when the vendor no longer holds it.
    async fn plan_with_lookups(
        &mut self,
        desired: &Desired,
        mut vendor: Vec<Override>,
    ) -> Option<(Plan, Vec<Override>)> {
        let provider = self.target.provider;
        let schedule = &self.target.destination.schedule;
        let mut plan = self.plan(desired, &vendor);
        if !provider.capabilities().update_in_place {
            return Some((plan, vendor));
        }
        let forgotten: Vec<OverrideId> = plan
            .operations
            .iter()
            .filter_map(|op| match &op.action {
                Action::Forget { target } => Some(target.id.clone()),
                _ => None,
            })
            .collect();
        let mut found = false;
        for id in forgotten {
            self.looked_up.push(id.clone());
            match provider.get_override(schedule, &id).await {
                Ok(Some(copy)) if !vendor.iter().any(|o| o.id == copy.id) => {
                    vendor.push(copy);
                    found = true;
                }
                Ok(_) => {}
                Err(e) => {
                    self.error(None, e);
                    return None;
                }
            }
        }
        if found {
            canonical_order(&mut vendor);
            plan = self.plan(desired, &vendor);
        }
        Some((plan, vendor))
    }

    /// Plans against `vendor` as read, with the destination's mode; the plan's warnings join the
    /// report's.
    pub(super) fn plan(&mut self, desired: &Desired, vendor: &[Override]) -> Plan {
        let plan = plan_export(PlanInput {
            destination: &self.target.destination.id,
            role: self.target.destination.role,
            mode: self.target.destination.mode,
            now: self.now,
            desired,
            vendor,
            state: &self.state,
            capabilities: self.target.provider.capabilities(),
        });
        self.report.warnings.retain(|w| {
            matches!(
                w,
                Warning::ClockBehind { .. }
                    | Warning::UnknownMember { .. }
                    | Warning::ModeChanged { .. }
            )
        });
        self.report.warnings.extend(plan.warnings.iter().cloned());
        plan
    }

    /// Applies the plan in its order: consecutive creates in batches, the rest one call each,
    /// saving the state after every successful write. After a fatal error (a read-only key, a
    /// missing schedule) the rest is skipped; a removal whose kept part failed is skipped too.
    pub(super) async fn apply(&mut self, plan: &Plan) -> Vec<Applied> {
        let max_batch = self.target.provider.capabilities().max_batch.max(1);
        let ops = &plan.operations;
        let mut applied: Vec<Applied> = Vec::with_capacity(ops.len());
        let mut i = 0;
        while i < ops.len() {
            let op = &ops[i];
            if self.fatal || self.removes_held(op) {
                applied.push(Applied::Skipped);
                i += 1;
                continue;
            }
            if matches!(op.action, Action::Create { .. }) {
                let batch: Vec<&PlannedOperation> = ops[i..]
                    .iter()
                    .take_while(|o| matches!(o.action, Action::Create { .. }))
                    .take(max_batch)
                    .collect();
                let results = self.apply_creates(&batch).await;
                let any_done = results.contains(&Applied::Done);
                i += batch.len();
                applied.extend(results);
                if any_done {
                    self.save().await;
                }
            } else {
                let result = self.apply_one(op).await;
                applied.push(result);
                i += 1;
                if result == Applied::Done && op.is_write() {
                    self.save().await;
                }
            }
        }
        applied
    }

    /// Whether `op` would remove an override whose kept part could not be re-created: removing it
    /// now would lose that part.
    fn removes_held(&self, op: &PlannedOperation) -> bool {
        match &op.action {
            Action::Update { id, .. } => self.held.contains(id),
            Action::Delete { target, .. } | Action::Truncate { target, .. } => {
                self.held.contains(&target.id)
            }
            _ => false,
        }
    }

    /// R5: the mark advances to `max(H, E)` unless a step in the fresh region failed; then only to
    /// the earliest failed step's span. A span whose member the vendor does not know holds nothing:
    /// it is reported and tried again next time, from the protected region (R4).
    pub(super) fn advance_mark(&mut self, plan: &Plan, applied: &[Applied]) {
        let holding = plan
            .operations
            .iter()
            .zip(applied)
            .filter(|(_, a)| a.holds_mark())
            .map(|(op, _)| op);
        self.state.high_water = plan.next_high_water(holding);
    }

    /// Ended ledger entries are history, except while a person's stretched copy of one lives on.
    /// DESIGN §8: ours created in this run over a person's override that the vendor held live
    /// under it is the newer of the two, so the vendor shows ours where they overlap (the last
    /// created wins): noted with the state, for drift to say what the vendor shows.
    pub(super) fn note_written_over(&mut self, vendor: &[Override]) {
        let now = self.now;
        let ledger = &self.state.ledger;
        let before: HashSet<&OverrideId> = ledger
            .iter()
            .filter(|l| !self.created.contains(&l.id))
            .map(|l| &l.id)
            .collect();
        let mut noted = Vec::new();
        for ours in ledger.iter().filter(|l| self.created.contains(&l.id)) {
            let under = vendor.iter().filter(|o| {
                o.span.end > now
                    && !before.contains(&o.id)
                    && !self.created.contains(&o.id)
                    && o.span.member != ours.span.member
                    && o.span.overlaps(ours.span.start, ours.span.end)
            });
            noted.extend(under.map(|o| WrittenOver {
                ours: ours.id.clone(),
                theirs: o.id.clone(),
            }));
        }
        self.state.written_over.extend(noted);
    }

    pub(super) fn keep_live_entries(&mut self, vendor: &[Override]) {
        let now = self.now;
        let live: HashSet<&OverrideId> = vendor
            .iter()
            .filter(|o| o.span.end > now)
            .map(|o| &o.id)
            .collect();
        self.state
            .ledger
            .retain(|l| l.span.end > now || live.contains(&l.id));
        let ours: HashSet<&OverrideId> = self.state.ledger.iter().map(|l| &l.id).collect();
        self.state
            .written_over
            .retain(|w| ours.contains(&w.ours) && live.contains(&w.theirs));
    }

    /// Records the outcomes, saves the state with this run's result, and settles the status.
    pub(super) async fn finish(&mut self, plan: Plan, applied: Vec<Applied>) {
        self.report.outcomes = plan
            .operations
            .iter()
            .cloned()
            .zip(applied.iter())
            .map(|(operation, a)| OperationOutcome {
                operation,
                outcome: a.outcome(),
            })
            .collect();
        self.report.plan = Some(plan);
        // After a failed save (another worker won the compare-and-swap) this run's state is not saved.
        if !self.save_failed && self.record_last_run().await {
            self.report.high_water_after = self.state.high_water;
        }
        // The status counts the final save too: an unsaved mark is a failure the host must see. A
        // member the vendor does not know leaves the rest in step: partial, not failed.
        let any_done = self
            .report
            .outcomes
            .iter()
            .any(|o| o.outcome == Outcome::Done && o.operation.is_write());
        let only_unknown_members = self
            .report
            .errors
            .iter()
            .all(|e| matches!(e.error, Error::UnknownMember { .. }));
        self.report.status = match (self.report.errors.is_empty(), any_done) {
            (true, _) => SyncStatus::Ok,
            (false, true) => SyncStatus::Partial,
            (false, false) if only_unknown_members => SyncStatus::Partial,
            (false, false) => SyncStatus::Failed,
        };
    }

    /// Saves the state with the outcome of this run; returns whether the save succeeded.
    pub(super) async fn record_last_run(&mut self) -> bool {
        self.state.last_run = Some(LastRun {
            at: self.now,
            ok: self.report.errors.is_empty(),
            error: self.report.errors.first().map(ToString::to_string),
        });
        self.save().await
    }

    pub(super) fn error(&mut self, operation: Option<&PlannedOperation>, error: Error) {
        if let Error::UnknownMember { email, .. } = &error {
            let warning = Warning::UnknownMember {
                email: email.clone(),
            };
            if !self.report.warnings.contains(&warning) {
                self.report.warnings.push(warning);
            }
        }
        self.fatal |= is_fatal(&error);
        self.report.errors.push(SyncError {
            destination: self.target.destination.id.clone(),
            connection: self.target.destination.connection.clone(),
            operation: operation.map(ToString::to_string),
            error,
        });
    }

    /// Saves the state under compare-and-swap, with the mode it was synced under; a failure is
    /// recorded and stops further writes.
    pub(super) async fn save(&mut self) -> bool {
        self.state.mode = self.target.destination.mode;
        match self
            .store
            .save(&self.target.destination.id, self.version, &self.state)
            .await
        {
            Ok(v) => {
                self.version = v;
                true
            }
            Err(e) => {
                self.fatal = true;
                self.save_failed = true;
                self.error(None, e);
                false
            }
        }
    }

    fn forget(&mut self, id: &OverrideId) {
        self.state.ledger.retain(|l| &l.id != id);
    }

    /// Applies one non-create step.
    async fn apply_one(&mut self, op: &PlannedOperation) -> Applied {
        let provider = self.target.provider;
        let schedule = &self.target.destination.schedule;
        let result: Result<Option<Override>, Error> = match &op.action {
            Action::Adopt { target } => {
                // An ended entry of the same id may still be there (a person stretched its copy):
                // the ledger holds one entry per id, as the vendor holds it now.
                self.forget(&target.id);
                self.state.ledger.push(target.clone());
                return Applied::Done;
            }
            Action::Forget { target } => {
                self.forget(&target.id);
                return Applied::Done;
            }
            Action::Create { .. } => {
                return self
                    .apply_creates(&[op])
                    .await
                    .pop()
                    .unwrap_or(Applied::Failed { holds_mark: true })
            }
            Action::Update { id, to, .. } => {
                self.report.write_calls += 1;
                provider.update_override(schedule, id, to).await.map(Some)
            }
            Action::Delete { target, .. }
            | Action::Truncate {
                target,
                by_delete: true,
                ..
            } => {
                self.report.write_calls += 1;
                match provider.delete_override(schedule, &target.id).await {
                    // Already gone is as good as deleted; a missing schedule is not.
                    Ok(_)
                    | Err(Error::NotFound {
                        resource: Resource::Override(_),
                        ..
                    }) => Ok(None),
                    // The outcome is unknown: a read settles it.
                    Err(e @ Error::Transient { .. }) => match self.read_deletion(target).await {
                        true => Ok(None),
                        false => Err(e),
                    },
                    Err(e) => Err(e),
                }
            }
            Action::Truncate { target, at, .. } => {
                self.report.write_calls += 1;
                let cut = Span::new(target.span.start, *at, target.span.member.clone());
                provider
                    .update_override(schedule, &target.id, &cut)
                    .await
                    .map(|_| None)
            }
        };
        match result {
            Ok(updated) => {
                self.record_change(op, updated);
                Applied::Done
            }
            Err(e) => {
                let holds_mark = holds_mark(op, &e);
                let refused_member = matches!(e, Error::UnknownMember { .. });
                self.error(Some(op), e);
                match &op.action {
                    Action::Update {
                        id,
                        from,
                        owned: true,
                        ..
                    } if refused_member => self.remove_after_refused_update(id, from).await,
                    _ => Applied::Failed { holds_mark },
                }
            }
        }
    }

    /// Whether a read shows a delete whose answer was unknown as done: the override is gone, or
    /// (a running one the vendor truncates) it now ends by the vendor's now. A failed read settles
    /// nothing: the delete stays failed and holds the mark, and the next run plans it again.
    async fn read_deletion(&mut self, target: &Override) -> bool {
        if self.fatal {
            return false;
        }
        let start = target.span.start.max(self.now);
        let Ok(window) = Window::new(start, target.span.end.max(start + TimeDelta::seconds(1)))
        else {
            return false;
        };
        let provider = self.target.provider;
        let schedule = &self.target.destination.schedule;
        let Ok(listed) = provider.list_overrides(schedule, window).await else {
            return false;
        };
        let landed_by = self.now + CLOCK_SKEW;
        !listed
            .iter()
            .any(|o| o.id == target.id && o.span.end > landed_by)
    }

    /// R4 when the vendor refuses an in-place update for a member it does not know: the change
    /// still removes the ledger's override there (as a delete and a create would on a vendor
    /// without update), so the vendor's own rotation shows until the member exists. The failed
    /// span does not hold the mark (R5); a failed removal does.
    async fn remove_after_refused_update(&mut self, id: &OverrideId, from: &Span) -> Applied {
        let caps = self.target.provider.capabilities();
        let target = Override {
            id: id.clone(),
            span: from.clone(),
        };
        let action = if from.start < self.now {
            Action::Truncate {
                target,
                at: self.now,
                owned: true,
                by_delete: caps.delete_truncates_running || !caps.update_in_place,
            }
        } else {
            Action::Delete {
                target,
                owned: true,
            }
        };
        let removal = PlannedOperation {
            action,
            reason: crate::plan::Reason::PlannedChange,
            mark_limit: None,
        };
        match Box::pin(self.apply_one(&removal)).await {
            Applied::Done => Applied::Failed { holds_mark: false },
            _ => Applied::Failed { holds_mark: true },
        }
    }

    /// Keeps the ledger as the vendor now holds ours after a successful update, delete or cut.
    fn record_change(&mut self, op: &PlannedOperation, updated: Option<Override>) {
        match (&op.action, updated) {
            (
                Action::Update {
                    owned: true, id, ..
                },
                Some(new),
            ) => {
                self.forget(id);
                self.state.ledger.push(new);
            }
            (
                Action::Delete {
                    target,
                    owned: true,
                },
                _,
            ) => self.forget(&target.id),
            // A cut override of ours stays in the ledger as cut, so that it is history once it has
            // ended: a copy a person then stretches on is theirs, never taken back by its alias.
            (
                Action::Truncate {
                    target,
                    at,
                    owned: true,
                    ..
                },
                _,
            ) => {
                self.forget(&target.id);
                self.state.ledger.push(Override {
                    id: target.id.clone(),
                    span: Span::new(target.span.start, *at, target.span.member.clone()),
                });
            }
            _ => {}
        }
    }

    /// Applies a batch of creates: one call, the answers read per item; answers that were lost are
    /// recovered by re-reading ([`Run::recover_lost_creates`]); an alias the vendor says is taken is
    /// retried under the next one ([`Run::create_under_free_alias`]).
    async fn apply_creates(&mut self, ops: &[&PlannedOperation]) -> Vec<Applied> {
        let items: Vec<NewOverride> = ops.iter().filter_map(|op| new_override(op)).collect();
        self.count_creates(items.len());
        let mut results: Vec<Option<Result<Override, Error>>> = match self
            .target
            .provider
            .create_overrides(&self.target.destination.schedule, &items)
            .await
        {
            Ok(results) if results.len() == items.len() => results.into_iter().map(Some).collect(),
            // Answers that do not line up with the items cannot be read item by item.
            Ok(results) => {
                let e = Error::InvalidResponse {
                    message: format!(
                        "the vendor answered {} results for {} overrides sent",
                        results.len(),
                        items.len()
                    ),
                };
                vec![Some(Err(e)); items.len()]
            }
            // Whether anything landed is unknown: every item is recovered as lost.
            Err(e @ Error::Transient { .. }) => vec![Some(Err(e)); items.len()],
            Err(e) => {
                for op in ops {
                    if let Action::Create {
                        keeps_part_of: Some(id),
                        ..
                    } = &op.action
                    {
                        self.held.insert(id.clone());
                    }
                }
                self.error(ops.first().copied(), e);
                return vec![Applied::Failed { holds_mark: true }; ops.len()];
            }
        };
        self.recover_lost_creates(&items, &mut results).await;
        let mut applied = Vec::with_capacity(ops.len());
        for ((op, item), result) in ops.iter().zip(&items).zip(results) {
            let result = match (result, &item.id) {
                // The alias is taken: by an override of ours that a person moved or that was cut
                // short (it keeps the alias), or by this very override, written by someone else.
                (Some(Err(Error::Conflict { message })), Some(refused)) if !self.fatal => {
                    let result = self
                        .create_under_free_alias(&item.span, refused, message)
                        .await;
                    if let Ok(created) = &result {
                        // An override taken as it was found may already be in the ledger.
                        self.forget(&created.id);
                    }
                    Some(result)
                }
                (result, _) => result,
            };
            applied.push(self.record_create(op, result));
        }
        applied
    }

    /// Counts the write requests a create call of `items` overrides makes.
    fn count_creates(&mut self, items: usize) {
        let caps = self.target.provider.capabilities();
        self.report.write_calls += if caps.batch_is_one_request { 1 } else { items };
    }

    /// Records one create's result in the ledger or the errors.
    fn record_create(
        &mut self,
        op: &PlannedOperation,
        result: Option<Result<Override, Error>>,
    ) -> Applied {
        let Action::Create {
            owned,
            keeps_part_of,
            ..
        } = &op.action
        else {
            return Applied::Skipped;
        };
        let error = match result {
            Some(Ok(created)) => {
                self.created.insert(created.id.clone());
                if *owned {
                    // The vendor's ids are unique: an entry still holding this one (an override of
                    // ours a person moved past the scope, then deleted, freeing its alias) is gone.
                    self.forget(&created.id);
                    self.state.ledger.push(created);
                }
                return Applied::Done;
            }
            Some(Err(e)) => e,
            None => Error::InvalidResponse {
                message: "the vendor answered fewer results than overrides sent".into(),
            },
        };
        self.held.extend(keeps_part_of.iter().cloned());
        let holds_mark = holds_mark(op, &error);
        self.error(Some(op), error);
        Applied::Failed { holds_mark }
    }

    /// R6: creates whose answers were lost (a timeout, a 5xx, a dropped connection, an answer that
    /// cannot be read) are never sent again blindly. The window they cover is read; what landed is
    /// taken as it is (with client ids, under the alias asked for; without, the exact span, which
    /// nothing else of ours holds).
    ///
    /// What the read does not show is sent again, for a few rounds within this run, only where the
    /// vendor takes client ids: a second create under the same alias cannot land twice. Without
    /// client ids (PagerDuty) a create may still be in progress, or a listing may lag it, when the
    /// run reads: sending it again could put it there twice, for good (the copy lies before the
    /// mark, where a person's override is left alone). So it stays failed and holds the mark, and
    /// the next run, reading after the vendor has settled, adopts the exact copy if it landed
    /// (R2 in the fresh region, R6 in the protected one) or writes it. The bound: no duplicate
    /// arises as long as the vendor lists an accepted create by the time the destination's next
    /// run reads it.
    async fn recover_lost_creates(
        &mut self,
        items: &[NewOverride],
        results: &mut [Option<Result<Override, Error>>],
    ) {
        let provider = self.target.provider;
        let schedule = &self.target.destination.schedule;
        for _ in 0..LOST_CREATE_ROUNDS {
            let lost: Vec<usize> = (0..items.len())
                .filter(|&i| matches!(results[i], Some(Err(Error::Transient { .. }))))
                .collect();
            let (Some(start), Some(end)) = (
                lost.iter().map(|&i| items[i].span.start).min(),
                lost.iter().map(|&i| items[i].span.end).max(),
            ) else {
                return;
            };
            if self.fatal {
                return;
            }
            let Ok(window) = Window::new(start, end) else {
                return;
            };
            let Ok(listed) = provider.list_overrides(schedule, window).await else {
                return;
            };
            // Nothing ours, and nothing this run wrote (a kept part of someone's override), is
            // taken for a lost create.
            let mut claimed: HashSet<OverrideId> = self
                .state
                .ledger
                .iter()
                .map(|l| l.id.clone())
                .chain(self.created.iter().cloned())
                .chain(results.iter().filter_map(|r| match r {
                    Some(Ok(o)) => Some(o.id.clone()),
                    _ => None,
                }))
                .collect();
            let mut resend = Vec::new();
            for i in lost {
                let item = &items[i];
                let landed = listed.iter().find(|o| {
                    o.span == item.span
                        && !claimed.contains(&o.id)
                        && item.id.as_ref().is_none_or(|alias| *alias == o.id)
                });
                match landed {
                    Some(o) => {
                        claimed.insert(o.id.clone());
                        results[i] = Some(Ok(o.clone()));
                    }
                    None => resend.push(i),
                }
            }
            if resend.is_empty() {
                return;
            }
            if !provider.capabilities().client_ids {
                for i in resend {
                    if let Some(Err(Error::Transient { message })) = &results[i] {
                        results[i] = Some(Err(Error::Transient {
                            message: format!(
                                "{message}; not seen by a read after it, and not sent again in \
                                 this run (without client ids it could land twice): the next run \
                                 adopts it if it landed, or writes it"
                            ),
                        }));
                    }
                }
                return;
            }
            let again: Vec<NewOverride> = resend.iter().map(|&i| items[i].clone()).collect();
            self.count_creates(again.len());
            match provider.create_overrides(schedule, &again).await {
                Ok(answers) => {
                    let mut answers = answers.into_iter();
                    for i in resend {
                        results[i] = answers.next();
                    }
                }
                Err(e @ Error::Transient { .. }) => {
                    for i in resend {
                        results[i] = Some(Err(e.clone()));
                    }
                }
                Err(e) => {
                    self.fatal |= is_fatal(&e);
                    for i in resend {
                        results[i] = Some(Err(e.clone()));
                    }
                    return;
                }
            }
        }
    }

    /// After the vendor refused `refused` as taken for an override of `span`: takes our identical
    /// override if one is there already (another worker, or an adapter's retry, wrote it), else
    /// creates `span` under the first alias of its start that is free ([`alias_attempt`]). A conflict
    /// on every one of them is the error.
    async fn create_under_free_alias(
        &mut self,
        span: &Span,
        refused: &OverrideId,
        mut message: String,
    ) -> Result<Override, Error> {
        let destination = &self.target.destination;
        let provider = self.target.provider;
        // One read shows who holds the aliases of this start, unless they moved elsewhere.
        let second = span.start.checked_add_signed(TimeDelta::seconds(1));
        let listed = match second.map(|end| Window::new(span.start, end)) {
            Some(Ok(window)) => {
                provider
                    .list_overrides(&destination.schedule, window)
                    .await?
            }
            _ => Vec::new(),
        };
        if let Some(ours) = listed
            .iter()
            .find(|o| o.span == *span && is_alias_for(&destination.id, &o.id, span.start))
        {
            return Ok(ours.clone());
        }
        for attempt in 0..ALIAS_ATTEMPTS {
            let alias = alias_attempt(&destination.id, span.start, attempt);
            if alias == *refused || listed.iter().any(|o| o.id == alias) {
                continue;
            }
            if self.fatal {
                break;
            }
            let new = NewOverride {
                span: span.clone(),
                id: Some(alias),
            };
            self.report.write_calls += 1;
            let result = provider
                .create_overrides(&destination.schedule, std::slice::from_ref(&new))
                .await
                .and_then(|results| match <[_; 1]>::try_from(results) {
                    Ok([result]) => result,
                    Err(results) => Err(Error::InvalidResponse {
                        message: format!(
                            "the vendor answered {} results for one override sent",
                            results.len()
                        ),
                    }),
                });
            match result {
                Err(Error::Conflict { message: m }) => message = m,
                other => return other,
            }
        }
        Err(Error::Conflict { message })
    }
}

/// The vendor's overrides in one order whatever order the vendor listed them in (by start, then
/// id): a saved plan's precondition is that planning again gives the same operations.
pub(super) fn canonical_order(vendor: &mut [Override]) {
    vendor.sort_by(|a, b| {
        a.span
            .start
            .cmp(&b.span.start)
            .then_with(|| a.id.cmp(&b.id))
    });
}

/// The create a planned step asks for.
fn new_override(op: &PlannedOperation) -> Option<NewOverride> {
    match &op.action {
        Action::Create { span, id, .. } => Some(NewOverride {
            span: span.clone(),
            id: id.clone(),
        }),
        _ => None,
    }
}
