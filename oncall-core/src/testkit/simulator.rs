//! What a test can do to a simulated vendor account, whichever vendor it simulates.

use chrono::{DateTime, TimeDelta, Utc};

use crate::error::Error;
use crate::model::Window;
use crate::plan::{Override, OverrideId, Span};
use crate::provider::{VendorSchedule, VendorScheduleId};
use crate::rotation::OnCallPeriod;

/// Which call a [`Fault`] hits, counted from 1 over the simulator's life.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Trigger {
    /// The n-th call (request) of any kind.
    Call(usize),
    /// The n-th write call (create, update, delete).
    Write(usize),
}

/// What an injected fault does.
#[derive(Debug, Clone, PartialEq)]
pub enum Fault {
    /// The call fails with this error and changes nothing. HTTP simulators answer the status the
    /// vendor would give for that kind of error (a rate limit: 429 with the vendor's headers; a
    /// transient failure: 503; a permission error: 403; ...).
    Fail(Error),
    /// The call takes effect, but its answer is lost: the caller sees a transient error.
    LoseResponse,
}

/// A simulated vendor account as a test drives it: its clock, the manual changes people make in the
/// vendor's UI, injected faults, and what it holds. The core's [`InMemoryProvider`](super::InMemoryProvider)
/// implements it, and so does each adapter's HTTP simulator, so that one property test (or a
/// downstream project's own) runs unchanged against each of them.
///
/// Simulators never read the real clock: time is whatever the test sets.
pub trait VendorSimulator: Send + Sync {
    /// The simulator's clock.
    fn now(&self) -> DateTime<Utc>;

    /// Moves the simulator's clock.
    fn set_now(&self, now: DateTime<Utc>);

    /// Advances the clock by `step` after every call, as real time passes while a sync runs (a
    /// sync's `now` is then always a little in the vendor's past). Zero, the default, freezes it.
    fn set_clock_step(&self, step: TimeDelta);

    /// Adds (or replaces the configuration of) a schedule, keeping its overrides.
    fn add_schedule(&self, schedule: VendorSchedule);

    /// All overrides of a schedule, as a person looking at the vendor sees them, sorted by span.
    fn overrides(&self, schedule: &VendorScheduleId) -> Vec<Override>;

    /// A person adds an override by hand (not a provider call). Returns its id.
    fn insert_override(&self, schedule: &VendorScheduleId, span: Span) -> OverrideId;

    /// A person deletes an override by hand. Returns whether it existed.
    fn remove_override(&self, schedule: &VendorScheduleId, id: &OverrideId) -> bool;

    /// A person edits an override by hand, as the vendor's UI lets them: in place where the vendor
    /// updates in place (the id stays), else by deleting it and creating a new one (a new id).
    /// Returns the id the edited override has, or `None` if it did not exist.
    fn edit_override(
        &self,
        schedule: &VendorScheduleId,
        id: &OverrideId,
        span: Span,
    ) -> Option<OverrideId>;

    /// Who the overrides put on call over `window` as the vendor resolves overlaps, joined where
    /// the member is the same; stretches without an override are absent.
    fn render(&self, schedule: &VendorScheduleId, window: Window) -> Vec<OnCallPeriod>;

    /// Injects a fault.
    fn inject(&self, trigger: Trigger, fault: Fault);

    /// Makes every write fail as a read-only key's does.
    fn set_read_only(&self, read_only: bool);

    /// Makes the next `calls` calls fail with a rate limit (which a provider may retry).
    fn rate_limit_next(&self, calls: usize);

    /// Removes every pending fault, the read-only mode and the rate limit.
    fn clear_faults(&self);

    /// How many write calls the simulator has received.
    fn write_calls(&self) -> usize;
}
