//! The sync driver: for each destination, read, plan, apply in order, record, advance the mark.

use std::collections::HashMap;
use std::fmt;

use chrono::{DateTime, TimeDelta, Utc};
use serde::{Deserialize, Serialize, Serializer};

use crate::drift::Drift;
use crate::error::{Error, SharedAcrossConnections, ValidationError};
use crate::model::{RoleIndex, Schedule};
use crate::plan::{Plan, PlannedOperation, Warning};
use crate::provider::{Provider, VendorScheduleId};
use crate::state::{DestinationId, DestinationMode, StateStore};

mod apply;
mod migrate;
mod retire;
mod run;
mod saved;

pub use apply::{apply_plan, PlanRefused};
pub use migrate::{migrate, Absence, Found, MigratedEntry, Migration, MigrationReport};
pub use retire::retire;
pub use saved::{
    Preconditions, SavedDesired, SavedPlan, StateDigest, VendorDigest, SAVED_PLAN_FORMAT,
};

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
    /// How it is kept in step (DESIGN §8); `protect` when absent from serialised forms.
    #[serde(default)]
    pub mode: DestinationMode,
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
    /// How many write requests were sent to the vendor (a PagerDuty batch is one; Opsgenie sends
    /// one per override).
    pub write_calls: usize,
    /// For a run that only planned (a dry run, a manual destination): the plan with what it was
    /// planned against, to save and apply later with [`apply_plan`] (DESIGN §8).
    #[serde(skip)]
    pub saved_plan: Option<Box<SavedPlan>>,
}

impl DestinationReport {
    /// What people changed in the vendor against the host's rota (DESIGN §8), as the plan found
    /// it; empty when the vendor could not be read.
    pub fn drift(&self) -> &[Drift] {
        self.plan.as_ref().map_or(&[], |p| &p.drift)
    }
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
            for d in self.drift() {
                writeln!(f, "  drift: {d}")?;
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
    /// The instant the sync was given. Each destination plans with it floored to whole seconds,
    /// or with its last run's instant where the clock went back (its plan's `now`).
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
/// schedule of one connection ([`ValidationError::SharedVendorSchedule`]) or of one account through
/// two connections ([`ValidationError::SharedVendorScheduleAcrossConnections`]): each would take
/// the other's overrides for foreign ones. Every other failure is reported per destination.
pub async fn sync(
    schedule: &Schedule,
    targets: &[SyncTarget<'_>],
    store: &dyn StateStore,
    options: SyncOptions,
) -> Result<SyncReport, Error> {
    check_targets(targets)?;
    let mut destinations = Vec::with_capacity(targets.len());
    for target in targets {
        destinations.push(run::sync_destination(schedule, *target, store, options).await);
    }
    Ok(SyncReport {
        now: options.now,
        destinations,
    })
}

/// One destination per vendor schedule of a connection, and of an account: two connections (two
/// keys) that reach the same account ([`Provider::account`]) must not share a vendor schedule either.
fn check_targets(targets: &[SyncTarget<'_>]) -> Result<(), ValidationError> {
    let mut seen: HashMap<(&ConnectionId, &VendorScheduleId), &DestinationId> = HashMap::new();
    let mut by_account: HashMap<(String, &VendorScheduleId), &Destination> = HashMap::new();
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
        let Some(account) = target.provider.account() else {
            continue;
        };
        if let Some(first) = by_account.insert((account.clone(), &d.schedule), d) {
            return Err(ValidationError::SharedVendorScheduleAcrossConnections(
                Box::new(SharedAcrossConnections {
                    first: first.id.clone(),
                    first_connection: first.connection.clone(),
                    second: d.id.clone(),
                    second_connection: d.connection.clone(),
                    account,
                    schedule: d.schedule.clone(),
                }),
            ));
        }
    }
    Ok(())
}
