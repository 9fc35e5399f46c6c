//! # oncall-core
//!
//! The sans-IO heart of oncall-sync: the rota model, DST-correct rotation expansion and merging,
//! export planning under the high-water rules, the [`Provider`] trait adapters implement, and a sync
//! driver over it. Nothing here performs IO or reads the clock: every function that depends on "now"
//! takes it as an argument.
//!
//! - [`model`]: members, roles, shifts, host schedules (validated).
//! - [`rotation`] and [`time`]: rotation configuration, expansion in civil time, merging by position.
//! - [`plan`]: desired spans, the planner for DESIGN rules R1-R6, plans people can read.
//! - [`provider`]: the [`Provider`] trait and its contract; [`import_schedule`] over it.
//! - [`connections`]: the registry of vendor accounts a host embeds (R9: none destroyed in use).
//! - [`state`]: the high-water mark, the ledger, the [`StateStore`] trait.
//! - [`mod@sync`]: the driver that applies plans through providers; destination modes
//!   ([`DestinationMode`]), saved plans applied later ([`apply_plan`]), moving a destination to
//!   another connection ([`migrate`]).
//! - [`drift`]: what people changed in the vendor against the host's rota, and accepting it.
//! - [`actuals`]: the on-call actually served, hours split for pay.
//! - [`retry`] and [`pacing`]: when adapters retry and how they pace requests, decided here once;
//!   [`budget`]: the trait of a request budget shared by many processes.
//! - [`probe`] and [`trace`]: what `oncall probe` reports of an account, and HTTP traces with
//!   secrets and e-mail addresses redacted.
//! - `testkit` (feature): an in-memory provider with fault injection and the conformance suite.
#![deny(missing_docs)]
#![forbid(unsafe_code)]

pub mod actuals;
pub mod budget;
pub mod connection;
pub mod connections;
pub mod credentials;
pub mod drift;
pub mod error;
mod fast_hash;
pub mod import;
pub mod model;
pub mod pacing;
pub mod plan;
pub mod probe;
pub mod provider;
pub mod retry;
pub mod rotation;
mod stable_hash;
pub mod state;
pub mod sync;
#[cfg(feature = "testkit")]
pub mod testkit;
pub mod time;
pub mod trace;

pub use actuals::{
    compute_actuals, read_actuals, ActualHours, ActualPeriod, Actuals, ActualsOptions, HoursSplit,
    NightWindow, RoundedHours,
};
pub use budget::{BudgetLimit, RateBudget, SharedBudget};
pub use connections::{
    Connection, ConnectionError, ConnectionRegistry, Endpoint, KeyReference, ProviderKind, Usage,
};
pub use credentials::ApiKey;
pub use drift::{
    accept_drift, AcceptError, Accepted, AssigneeEdit, Drift, DriftFate, DriftId, DriftStretch,
    NotAccepted, PersonChange, Proposal,
};
pub use error::{Error, LedgerElsewhere, Resource, SharedAcrossConnections, ValidationError};
pub use import::import_schedule;
pub use model::{Email, Member, RoleIndex, Schedule, ScheduleId, Shift, Window};
pub use plan::{
    alias_attempt, alias_for, desired_spans, is_alias_for, plan_export, plan_retirement, Action,
    Desired, Override, OverrideId, Plan, PlanInput, PlannedOperation, Reason, RetirementInput,
    Span, Warning, ALIAS_ATTEMPTS, ALIAS_PREFIX, CLOCK_SKEW,
};
pub use probe::{Probe, ProbeFinding, ProbeReport, ProbeRequest};
pub use provider::{
    Capabilities, Deletion, NewOverride, Provider, RoleTimeline, ScheduleListing,
    UnreadableSchedule, VendorSchedule, VendorScheduleId,
};
pub use retry::{RetryDecision, RetryPolicy};
pub use rotation::{
    expand_and_merge, expand_rotation, merge_rotations, OnCallPeriod, Participant, Restriction,
    Rotation, RotationUnit,
};
pub use state::{
    DestinationId, DestinationMode, DestinationState, InMemoryStateStore, LastRun, LedgerHome,
    StateStore, Versioned, WrittenOver,
};
pub use sync::{
    apply_plan, retire, sync, ConnectionId, Destination, DestinationReport, OperationOutcome,
    Outcome, PlanRefused, Preconditions, SavedDesired, SavedPlan, StateDigest, SyncError, SyncMode,
    SyncOptions, SyncReport, SyncStatus, SyncTarget, VendorDigest, SAVED_PLAN_FORMAT,
};
pub use sync::{migrate, Absence, Found, MigratedEntry, Migration, MigrationReport};
pub use time::{local_date, local_time, resolve_local};
