//! The sync driver: for each destination, read, plan, apply in order, record, advance the mark.

use std::collections::{HashMap, HashSet};
use std::fmt;

use chrono::{DateTime, TimeDelta, Utc};
use serde::{Deserialize, Serialize, Serializer};

use crate::error::{Error, Resource, ValidationError};
use crate::model::{RoleIndex, Schedule, Window};
use crate::plan::{
    alias_attempt, desired_spans, is_alias_for, plan_export, Action, Override, OverrideId, Plan,
    PlanInput, PlannedOperation, Span, Warning, ALIAS_ATTEMPTS,
};
use crate::provider::{NewOverride, Provider, VendorScheduleId};
use crate::state::{DestinationId, DestinationState, LastRun, StateStore};

/// A host-chosen identifier of a connection (one vendor account and key).
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(transparent)]
pub struct ConnectionId(pub String);

impl fmt::Display for ConnectionId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// Where one role of a host schedule is exported: a vendor schedule on a connection.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Destination {
    /// The destination's id (keys its state and its aliases).
    pub id: DestinationId,
    /// The connection it writes through.
    pub connection: ConnectionId,
    /// The vendor schedule.
    pub schedule: VendorScheduleId,
    /// The host role exported there.
    pub role: RoleIndex,
}

/// A destination and the provider of its connection.
#[derive(Clone, Copy)]
pub struct SyncTarget<'a> {
    /// The destination.
    pub destination: &'a Destination,
    /// The connection's provider.
    pub provider: &'a dyn Provider,
}

/// Whether a sync writes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum SyncMode {
    /// Apply the plan.
    Apply,
    /// Plan only: read the vendor, write nothing, save nothing.
    DryRun,
}

/// Parameters of one sync run.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SyncOptions {
    /// The instant the sync runs (the core never reads the clock).
    pub now: DateTime<Utc>,
    /// How far ahead to export: shifts starting before `now + horizon`. `None`: every shift.
    pub horizon: Option<TimeDelta>,
    /// Apply or dry run.
    pub mode: SyncMode,
}

/// An error in one destination's sync, naming the destination and the connection (R8).
#[derive(Debug, Clone, PartialEq)]
pub struct SyncError {
    /// The destination.
    pub destination: DestinationId,
    /// Its connection.
    pub connection: ConnectionId,
    /// The operation that failed, if it was one.
    pub operation: Option<String>,
    /// What went wrong.
    pub error: Error,
}

impl fmt::Display for SyncError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "destination {} (connection {}): {}",
            self.destination, self.connection, self.error
        )?;
        if let Some(op) = &self.operation {
            write!(f, " [while: {op}]")?;
        }
        Ok(())
    }
}

impl std::error::Error for SyncError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        Some(&self.error)
    }
}

impl Serialize for SyncError {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        use serde::ser::SerializeStruct;
        let mut st = s.serialize_struct("SyncError", 4)?;
        st.serialize_field("destination", &self.destination)?;
        st.serialize_field("connection", &self.connection)?;
        st.serialize_field("operation", &self.operation)?;
        st.serialize_field("message", &self.error.to_string())?;
        st.end()
    }
}

/// How a destination's sync ended.
#[non_exhaustive]
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum SyncStatus {
    /// Everything succeeded.
    Ok,
    /// Some operations succeeded, some failed.
    Partial,
    /// Nothing succeeded.
    Failed,
    /// Dry run: planned, nothing written.
    Planned,
}

/// What became of one planned operation.
#[non_exhaustive]
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Outcome {
    /// It succeeded.
    Done,
    /// It failed; the error is in the report's errors.
    Failed,
    /// It was not tried, because an earlier failure made it pointless (read-only key, conflict).
    Skipped,
}

/// A planned operation and its outcome.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct OperationOutcome {
    /// The operation.
    pub operation: PlannedOperation,
    /// What became of it.
    pub outcome: Outcome,
}

/// The result of syncing one destination.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct DestinationReport {
    /// The destination.
    pub destination: DestinationId,
    /// Its connection.
    pub connection: ConnectionId,
    /// How it ended.
    pub status: SyncStatus,
    /// The plan, when reading the vendor succeeded.
    pub plan: Option<Plan>,
    /// Each operation and its outcome (empty in a dry run).
    pub outcomes: Vec<OperationOutcome>,
    /// Errors, with the vendor's messages.
    pub errors: Vec<SyncError>,
    /// Things to tell a person.
    pub warnings: Vec<Warning>,
    /// `H` before.
    pub high_water_before: Option<DateTime<Utc>>,
    /// `H` after (unchanged on failure and in a dry run).
    pub high_water_after: Option<DateTime<Utc>>,
    /// How many vendor write calls were made.
    pub write_calls: usize,
}

impl fmt::Display for DestinationReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let t = |t: Option<DateTime<Utc>>| {
            t.map_or_else(
                || "none".to_owned(),
                |t| t.format("%Y-%m-%d %H:%M:%SZ").to_string(),
            )
        };
        writeln!(
            f,
            "{} via {}: {:?}, {} write calls, mark {} → {}",
            self.destination,
            self.connection,
            self.status,
            self.write_calls,
            t(self.high_water_before),
            t(self.high_water_after)
        )?;
        if self.status == SyncStatus::Planned {
            if let Some(plan) = &self.plan {
                write!(f, "{plan}")?;
            }
        } else {
            for o in &self.outcomes {
                writeln!(
                    f,
                    "  {:<7} {}",
                    format!("{:?}", o.outcome).to_lowercase(),
                    o.operation
                )?;
            }
            for w in &self.warnings {
                writeln!(f, "  warning: {w}")?;
            }
        }
        for e in &self.errors {
            writeln!(f, "  error: {e}")?;
        }
        Ok(())
    }
}

/// The result of a sync: one report per destination.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct SyncReport {
    /// The instant the sync ran.
    pub now: DateTime<Utc>,
    /// One report per destination, in the order given.
    pub destinations: Vec<DestinationReport>,
}

impl SyncReport {
    /// Whether every destination ended [`SyncStatus::Ok`] (or was only planned).
    pub fn is_ok(&self) -> bool {
        self.destinations
            .iter()
            .all(|d| matches!(d.status, SyncStatus::Ok | SyncStatus::Planned))
    }
}

impl fmt::Display for SyncReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for d in &self.destinations {
            write!(f, "{d}")?;
        }
        Ok(())
    }
}

/// Syncs `schedule` to every target, one after the other. A failing destination does not stop or roll
/// back the others (R7).
///
/// Refuses, before any call, a set of targets in which two destinations write to the same vendor
/// schedule of one connection ([`ValidationError::SharedVendorSchedule`]): each would take the
/// other's overrides for foreign ones. Every other failure is reported per destination.
pub async fn sync(
    schedule: &Schedule,
    targets: &[SyncTarget<'_>],
    store: &dyn StateStore,
    options: SyncOptions,
) -> Result<SyncReport, Error> {
    check_targets(targets)?;
    let mut destinations = Vec::with_capacity(targets.len());
    for target in targets {
        destinations.push(sync_destination(schedule, *target, store, options).await);
    }
    Ok(SyncReport {
        now: options.now,
        destinations,
    })
}

/// One destination per vendor schedule of a connection.
fn check_targets(targets: &[SyncTarget<'_>]) -> Result<(), ValidationError> {
    let mut seen: HashMap<(&ConnectionId, &VendorScheduleId), &DestinationId> = HashMap::new();
    for target in targets {
        let d = target.destination;
        if let Some(first) = seen.insert((&d.connection, &d.schedule), &d.id) {
            return Err(ValidationError::SharedVendorSchedule {
                first: first.clone(),
                second: d.id.clone(),
                connection: d.connection.clone(),
                schedule: d.schedule.clone(),
            });
        }
    }
    Ok(())
}

/// Whether an error means every further write on this destination will fail too. (A vendor's
/// conflict, such as an alias in use, concerns one override; a conflict saving state stops the run
/// where the save fails.)
fn is_fatal(error: &Error) -> bool {
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

struct Run<'a> {
    target: SyncTarget<'a>,
    store: &'a dyn StateStore,
    now: DateTime<Utc>,
    version: u64,
    state: DestinationState,
    report: DestinationReport,
    fatal: bool,
    save_failed: bool,
    /// Overrides whose surviving part could not be re-created: they are not removed this run.
    held: HashSet<OverrideId>,
}

impl Run<'_> {
    fn error(&mut self, operation: Option<&PlannedOperation>, error: Error) {
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

    /// Saves the state under compare-and-swap; a failure is recorded and stops further writes.
    async fn save(&mut self) -> bool {
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

    /// Applies one non-create operation; returns whether it succeeded.
    async fn apply_one(&mut self, op: &PlannedOperation) -> bool {
        let provider = self.target.provider;
        let schedule = &self.target.destination.schedule;
        let result: Result<Option<Override>, Error> = match &op.action {
            Action::Adopt { target } => {
                // An ended entry of the same id may still be there (a person stretched its copy):
                // the ledger holds one entry per id, as the vendor holds it now.
                self.forget(&target.id);
                self.state.ledger.push(target.clone());
                return true;
            }
            Action::Forget { target } => {
                self.forget(&target.id);
                return true;
            }
            Action::Create { .. } => return self.apply_creates(&[op]).await.iter().all(|ok| *ok),
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
                match (&op.action, updated) {
                    (
                        Action::Update {
                            owned: true, id, ..
                        },
                        Some(new),
                    ) => {
                        self.forget(id);
                        self.state.ledger.push(Override {
                            id: new.id,
                            span: new.span,
                        });
                    }
                    (
                        Action::Delete {
                            target,
                            owned: true,
                        }
                        | Action::Truncate {
                            target,
                            owned: true,
                            ..
                        },
                        _,
                    ) => self.forget(&target.id),
                    _ => {}
                }
                true
            }
            Err(e) => {
                self.error(Some(op), e);
                false
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

    /// Applies a batch of creates; returns one success flag per operation.
    async fn apply_creates(&mut self, ops: &[&PlannedOperation]) -> Vec<bool> {
        let batch: Vec<NewOverride> = ops
            .iter()
            .filter_map(|op| match &op.action {
                Action::Create { span, id, .. } => Some(NewOverride {
                    span: span.clone(),
                    id: id.clone(),
                }),
                _ => None,
            })
            .collect();
        self.report.write_calls += 1;
        let results = match self
            .target
            .provider
            .create_overrides(&self.target.destination.schedule, &batch)
            .await
        {
            Ok(results) => results,
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
                return vec![false; ops.len()];
            }
        };
        let mut ok = Vec::with_capacity(ops.len());
        let mut results = results.into_iter();
        for op in ops {
            let Action::Create {
                span,
                id,
                owned,
                keeps_part_of,
            } = &op.action
            else {
                continue;
            };
            let result = match (results.next(), id) {
                // The alias is taken: by an override of ours that a person moved or that was cut
                // short (it keeps the alias), or by this very override, written by someone else.
                (Some(Err(Error::Conflict { message })), Some(refused)) if !self.fatal => {
                    let result = self.create_under_free_alias(span, refused, message).await;
                    if let Ok(created) = &result {
                        // An override taken as it was found may already be in the ledger.
                        self.forget(&created.id);
                    }
                    Some(result)
                }
                (result, _) => result,
            };
            match result {
                Some(Ok(created)) => {
                    if *owned {
                        self.state.ledger.push(created);
                    }
                    ok.push(true);
                }
                Some(Err(e)) => {
                    self.held.extend(keeps_part_of.iter().cloned());
                    self.error(Some(op), e);
                    ok.push(false);
                }
                None => {
                    self.held.extend(keeps_part_of.iter().cloned());
                    self.error(
                        Some(op),
                        Error::InvalidResponse {
                            message: "the vendor answered fewer results than overrides sent".into(),
                        },
                    );
                    ok.push(false);
                }
            }
        }
        ok
    }
}

async fn sync_destination(
    schedule: &Schedule,
    target: SyncTarget<'_>,
    store: &dyn StateStore,
    options: SyncOptions,
) -> DestinationReport {
    let destination = target.destination;
    let now = options.now;
    let mut run = Run {
        target,
        store,
        now,
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
        fatal: false,
        save_failed: false,
        held: HashSet::new(),
    };
    match store.load(&destination.id).await {
        Ok(loaded) => {
            run.version = loaded.version;
            run.state = loaded.value;
        }
        Err(e) => {
            run.error(None, e);
            return run.report;
        }
    }
    run.report.high_water_before = run.state.high_water;
    run.report.high_water_after = run.state.high_water;

    let desired = match desired_spans(schedule, destination.role, now, options.horizon) {
        Ok(d) => d,
        Err(e) => {
            run.error(None, e.into());
            return run.report;
        }
    };
    // Read everything the plan may touch: up to the horizon, the mark and the ledger in scope, and a
    // second past it, so that a part kept after the horizon by an interrupted run (starting exactly
    // there) is seen and not created twice. Vendors keep whole seconds.
    let read_end = run
        .state
        .ledger
        .iter()
        .filter(|l| l.span.start < desired.horizon_end())
        .map(|l| l.span.end)
        .chain(run.state.high_water)
        .fold(desired.horizon_end(), DateTime::max);
    let read_end = read_end
        .checked_add_signed(TimeDelta::seconds(1))
        .unwrap_or(read_end);
    let vendor = match Window::new(now, read_end) {
        Ok(window) => match target
            .provider
            .list_overrides(&destination.schedule, window)
            .await
        {
            Ok(v) => v,
            Err(e) => {
                run.error(None, e);
                record_last_run(&mut run).await;
                return run.report;
            }
        },
        Err(_) => Vec::new(),
    };
    let plan = plan_export(PlanInput {
        destination: &destination.id,
        now,
        desired: &desired,
        vendor: &vendor,
        state: &run.state,
        capabilities: target.provider.capabilities(),
    });
    run.report.warnings = plan.warnings.clone();
    if options.mode == SyncMode::DryRun {
        run.report.status = SyncStatus::Planned;
        run.report.plan = Some(plan);
        return run.report;
    }

    let max_batch = target.provider.capabilities().max_batch.max(1);
    let mut outcomes: Vec<Outcome> = Vec::with_capacity(plan.operations.len());
    let ops = &plan.operations;
    let mut i = 0;
    while i < ops.len() {
        if run.fatal {
            outcomes.push(Outcome::Skipped);
            i += 1;
            continue;
        }
        let op = &ops[i];
        let removes_held = match &op.action {
            Action::Update { id, .. } => run.held.contains(id),
            Action::Delete { target, .. } | Action::Truncate { target, .. } => {
                run.held.contains(&target.id)
            }
            _ => false,
        };
        if removes_held {
            // Removing it now would lose the part that should have been kept.
            outcomes.push(Outcome::Skipped);
            i += 1;
            continue;
        }
        if matches!(op.action, Action::Create { .. }) {
            // Consecutive creates go to the vendor in batches.
            let batch: Vec<&PlannedOperation> = ops[i..]
                .iter()
                .take_while(|o| matches!(o.action, Action::Create { .. }))
                .take(max_batch)
                .collect();
            let results = run.apply_creates(&batch).await;
            let any_ok = results.iter().any(|ok| *ok);
            outcomes.extend(results.into_iter().map(|ok| {
                if ok {
                    Outcome::Done
                } else {
                    Outcome::Failed
                }
            }));
            i += batch.len();
            if any_ok {
                run.save().await;
            }
        } else {
            let ok = run.apply_one(op).await;
            outcomes.push(if ok { Outcome::Done } else { Outcome::Failed });
            i += 1;
            if ok && op.is_write() {
                run.save().await;
            }
        }
    }

    let failed = ops
        .iter()
        .zip(&outcomes)
        .filter(|(_, o)| **o != Outcome::Done)
        .map(|(op, _)| op);
    run.state.high_water = plan.next_high_water(failed);
    // Ended entries are history, except while a person's stretched copy of one lives on in the vendor.
    let live: HashSet<&OverrideId> = vendor
        .iter()
        .filter(|o| o.span.end > now)
        .map(|o| &o.id)
        .collect();
    run.state
        .ledger
        .retain(|l| l.span.end > now || live.contains(&l.id));
    run.report.outcomes = ops
        .iter()
        .cloned()
        .zip(outcomes)
        .map(|(operation, outcome)| OperationOutcome { operation, outcome })
        .collect();
    run.report.plan = Some(plan);
    // After a failed save (another worker won the compare-and-swap) this run's state is not saved.
    if !run.save_failed && record_last_run(&mut run).await {
        run.report.high_water_after = run.state.high_water;
    }
    // The status counts the final save too: an unsaved mark is a failure the host must see.
    let any_done = run
        .report
        .outcomes
        .iter()
        .any(|o| o.outcome == Outcome::Done && o.operation.is_write());
    run.report.status = match (run.report.errors.is_empty(), any_done) {
        (true, _) => SyncStatus::Ok,
        (false, true) => SyncStatus::Partial,
        (false, false) => SyncStatus::Failed,
    };
    run.report
}

/// Saves the state with the outcome of this run; returns whether the save succeeded.
async fn record_last_run(run: &mut Run<'_>) -> bool {
    run.state.last_run = Some(LastRun {
        at: run.now,
        ok: run.report.errors.is_empty(),
        error: run.report.errors.first().map(ToString::to_string),
    });
    run.save().await
}
