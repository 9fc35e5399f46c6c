use std::collections::BTreeMap;
use std::sync::{Mutex, MutexGuard};

use async_trait::async_trait;
use chrono::{DateTime, Timelike, Utc};

use crate::error::{Error, Resource};
use crate::model::{Email, Window};
use crate::plan::{Override, OverrideId, Span};
use crate::provider::{
    Capabilities, Deletion, NewOverride, Provider, RoleTimeline, ScheduleListing, VendorSchedule,
    VendorScheduleId,
};
use crate::rotation::{expand_rotation, OnCallPeriod};

use super::overlaps::{resolve_overlaps, Layered};
use super::simulator::{Fault, Trigger, VendorSimulator};

/// A kind of provider call, as recorded in the call log.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CallKind {
    /// `list_schedules`.
    ListSchedules,
    /// `schedule`.
    GetSchedule,
    /// `on_call`.
    OnCall,
    /// `list_overrides`.
    ListOverrides,
    /// `get_override`.
    GetOverride,
    /// `create_overrides` with this many items.
    Create(usize),
    /// `update_override`.
    Update,
    /// `delete_override`.
    Delete,
}

impl CallKind {
    /// Whether the call writes.
    pub fn is_write(self) -> bool {
        matches!(
            self,
            CallKind::Create(_) | CallKind::Update | CallKind::Delete
        )
    }
}

/// One recorded call.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Call {
    /// What kind.
    pub kind: CallKind,
    /// Against which schedule, if any.
    pub schedule: Option<VendorScheduleId>,
}

#[derive(Debug)]
struct Stored {
    ov: Override,
    /// Creation order: the last created wins where overrides overlap.
    seq: u64,
}

#[derive(Debug)]
struct Sim {
    config: VendorSchedule,
    overrides: Vec<Stored>,
}

#[derive(Debug, Default)]
struct Inner {
    now: DateTime<Utc>,
    schedules: BTreeMap<VendorScheduleId, Sim>,
    next_seq: u64,
    calls: Vec<Call>,
    writes: usize,
    faults: Vec<(Trigger, Fault)>,
    read_only: bool,
    rate_limited_calls: usize,
    clock_step: chrono::TimeDelta,
    whole_seconds: bool,
    /// Creates of overrides starting at these instants fail with the error (until cleared).
    refused_starts: Vec<(DateTime<Utc>, Error)>,
    /// What [`Provider::account`] answers.
    account: Option<String>,
}

/// A provider in memory, behaving as the vendors do where it matters to the sync: overrides with ids,
/// last-created-wins rendering, truncation of running overrides on delete (where the capabilities say
/// so), refusal of writes that end in the past, per-item batch results, and injected faults.
///
/// Its clock is set by the test ([`InMemoryProvider::set_now`]); it never reads the real one.
#[derive(Debug)]
pub struct InMemoryProvider {
    name: String,
    capabilities: Capabilities,
    inner: Mutex<Inner>,
}

impl InMemoryProvider {
    /// A provider with the given capabilities.
    pub fn new(name: impl Into<String>, capabilities: Capabilities, now: DateTime<Utc>) -> Self {
        InMemoryProvider {
            name: name.into(),
            capabilities,
            inner: Mutex::new(Inner {
                now,
                ..Inner::default()
            }),
        }
    }

    /// With PagerDuty's capabilities ([`Capabilities::PAGERDUTY`]).
    pub fn pagerduty_like(now: DateTime<Utc>) -> Self {
        Self::new("memory-pagerduty", Capabilities::PAGERDUTY, now)
    }

    /// With Opsgenie's capabilities ([`Capabilities::OPSGENIE`]).
    pub fn opsgenie_like(now: DateTime<Utc>) -> Self {
        Self::new("memory-opsgenie", Capabilities::OPSGENIE, now)
    }

    fn lock(&self) -> MutexGuard<'_, Inner> {
        self.inner.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Every call so far.
    pub fn calls(&self) -> Vec<Call> {
        self.lock().calls.clone()
    }

    /// Makes every create of an override starting at `start` fail with `error`, alone in its batch
    /// (as a vendor refuses one item), until [`VendorSimulator::clear_faults`].
    pub fn refuse_creates_starting_at(&self, start: DateTime<Utc>, error: Error) {
        self.lock().refused_starts.push((start, error));
    }

    /// Says which account this provider reaches ([`Provider::account`]); `None` (the default) for
    /// an unknown one. Two providers with the same account stand for two keys to one account.
    pub fn set_account(&self, account: Option<String>) {
        self.lock().account = account;
    }

    /// Stores whole seconds only, as the vendors do: instants written through the provider lose
    /// their fraction of a second.
    pub fn set_whole_seconds(&self, whole_seconds: bool) {
        self.lock().whole_seconds = whole_seconds;
    }

    /// Records a call and decides whether a fault hits it. `Err` fails the call before it acts;
    /// `Ok(true)` means act, then lose the answer.
    fn begin(
        &self,
        inner: &mut Inner,
        kind: CallKind,
        schedule: Option<&VendorScheduleId>,
    ) -> Result<bool, Error> {
        inner.calls.push(Call {
            kind,
            schedule: schedule.cloned(),
        });
        let step = inner.clock_step;
        inner.now = inner.now.checked_add_signed(step).unwrap_or(inner.now);
        let call_no = inner.calls.len();
        let write_no = if kind.is_write() {
            inner.writes += 1;
            Some(inner.writes)
        } else {
            None
        };
        if inner.rate_limited_calls > 0 {
            inner.rate_limited_calls -= 1;
            return Err(Error::RateLimited {
                retry_after: Some(std::time::Duration::from_secs(60)),
                message: "too many requests".into(),
            });
        }
        let hit = inner.faults.iter().position(|(t, _)| match t {
            Trigger::Call(n) => *n == call_no,
            Trigger::Write(n) => Some(*n) == write_no,
        });
        let lose = match hit.map(|i| inner.faults.remove(i).1) {
            Some(Fault::Fail(e)) => return Err(e),
            Some(Fault::LoseResponse) => true,
            None => false,
        };
        if kind.is_write() && inner.read_only {
            return Err(Error::PermissionDenied {
                message: "this API key is read-only".into(),
            });
        }
        if let Some(id) = schedule {
            if !inner.schedules.contains_key(id) {
                return Err(no_schedule(id));
            }
        }
        Ok(lose)
    }
}

fn no_schedule(schedule: &VendorScheduleId) -> Error {
    Error::NotFound {
        resource: Resource::Schedule(schedule.to_string()),
        message: "no such schedule".into(),
    }
}

impl Sim {
    fn check_member(&self, span: &Span) -> Result<(), Error> {
        if self.config.members.iter().any(|m| m.email == span.member) {
            return Ok(());
        }
        Err(Error::UnknownMember {
            email: span.member.clone(),
            message: "no such user".into(),
        })
    }

    fn find(&self, id: &OverrideId) -> Result<usize, Error> {
        self.overrides
            .iter()
            .position(|o| &o.ov.id == id)
            .ok_or_else(|| Error::NotFound {
                resource: Resource::Override(id.to_string()),
                message: "no such override".into(),
            })
    }
}

/// The span as the simulated vendor keeps it: floored to whole seconds where it keeps no more.
fn stored_span(span: &Span, whole_seconds: bool) -> Span {
    let floor = |t: DateTime<Utc>| {
        if whole_seconds {
            t.with_nanosecond(0).unwrap_or(t)
        } else {
            t
        }
    };
    Span::new(floor(span.start), floor(span.end), span.member.clone())
}

fn lost() -> Error {
    Error::Transient {
        message: "connection reset before the response arrived".into(),
    }
}

fn check_writable(span: &Span, now: DateTime<Utc>) -> Result<(), Error> {
    if span.end <= span.start {
        return Err(Error::Rejected {
            message: "override must end after it starts".into(),
        });
    }
    if span.end <= now {
        return Err(Error::Rejected {
            message: "override must end in the future".into(),
        });
    }
    Ok(())
}

#[async_trait]
impl Provider for InMemoryProvider {
    fn name(&self) -> &str {
        &self.name
    }

    fn capabilities(&self) -> Capabilities {
        self.capabilities
    }

    fn account(&self) -> Option<String> {
        self.lock().account.clone()
    }

    async fn list_schedules(&self) -> Result<ScheduleListing, Error> {
        let mut inner = self.lock();
        let lose = self.begin(&mut inner, CallKind::ListSchedules, None)?;
        if lose {
            return Err(lost());
        }
        Ok(ScheduleListing::complete(
            inner.schedules.values().map(|s| s.config.clone()).collect(),
        ))
    }

    async fn schedule(&self, schedule: &VendorScheduleId) -> Result<VendorSchedule, Error> {
        let mut inner = self.lock();
        let lose = self.begin(&mut inner, CallKind::GetSchedule, Some(schedule))?;
        if lose {
            return Err(lost());
        }
        inner
            .schedules
            .get(schedule)
            .map(|s| s.config.clone())
            .ok_or_else(|| no_schedule(schedule))
    }

    async fn on_call(
        &self,
        schedule: &VendorScheduleId,
        window: Window,
    ) -> Result<Vec<RoleTimeline>, Error> {
        let mut inner = self.lock();
        let lose = self.begin(&mut inner, CallKind::OnCall, Some(schedule))?;
        if lose {
            return Err(lost());
        }
        let Some(sim) = inner.schedules.get(schedule) else {
            return Ok(Vec::new());
        };
        sim.config
            .rotations
            .iter()
            .map(|r| {
                Ok(RoleTimeline {
                    name: r.name.clone(),
                    periods: expand_rotation(r, sim.config.zone, window)?,
                })
            })
            .collect()
    }

    async fn get_override(
        &self,
        schedule: &VendorScheduleId,
        id: &OverrideId,
    ) -> Result<Option<Override>, Error> {
        {
            let mut inner = self.lock();
            if self.begin(&mut inner, CallKind::GetOverride, Some(schedule))? {
                return Err(lost());
            }
        }
        Ok(self.overrides(schedule).into_iter().find(|o| &o.id == id))
    }

    async fn list_overrides(
        &self,
        schedule: &VendorScheduleId,
        window: Window,
    ) -> Result<Vec<Override>, Error> {
        {
            let mut inner = self.lock();
            if self.begin(&mut inner, CallKind::ListOverrides, Some(schedule))? {
                return Err(lost());
            }
        }
        Ok(self
            .overrides(schedule)
            .into_iter()
            .filter(|o| o.span.overlaps(window.start(), window.end()))
            .collect())
    }

    async fn create_overrides(
        &self,
        schedule: &VendorScheduleId,
        overrides: &[NewOverride],
    ) -> Result<Vec<Result<Override, Error>>, Error> {
        let mut inner = self.lock();
        let lose = self.begin(
            &mut inner,
            CallKind::Create(overrides.len()),
            Some(schedule),
        )?;
        if overrides.len() > self.capabilities.max_batch {
            return Err(Error::Rejected {
                message: format!("at most {} overrides per call", self.capabilities.max_batch),
            });
        }
        let now = inner.now;
        let whole_seconds = inner.whole_seconds;
        let refused = inner.refused_starts.clone();
        let mut results = Vec::with_capacity(overrides.len());
        for new in overrides {
            inner.next_seq += 1;
            let seq = inner.next_seq;
            let Some(sim) = inner.schedules.get_mut(schedule) else {
                break;
            };
            let result = (|| {
                if let Some((_, e)) = refused.iter().find(|(t, _)| *t == new.span.start) {
                    return Err(e.clone());
                }
                check_writable(&new.span, now)?;
                sim.check_member(&new.span)?;
                let id = match (&new.id, self.capabilities.client_ids) {
                    (Some(alias), true) => {
                        if sim.overrides.iter().any(|o| &o.ov.id == alias) {
                            return Err(Error::Conflict {
                                message: format!("an override with alias {alias} already exists"),
                            });
                        }
                        alias.clone()
                    }
                    _ => OverrideId::new(format!("ov-{seq}")),
                };
                let ov = Override {
                    id,
                    span: stored_span(&new.span, whole_seconds),
                };
                sim.overrides.push(Stored {
                    ov: ov.clone(),
                    seq,
                });
                Ok(ov)
            })();
            results.push(result);
        }
        if lose {
            return Err(lost());
        }
        Ok(results)
    }

    async fn update_override(
        &self,
        schedule: &VendorScheduleId,
        id: &OverrideId,
        span: &Span,
    ) -> Result<Override, Error> {
        let mut inner = self.lock();
        let lose = self.begin(&mut inner, CallKind::Update, Some(schedule))?;
        if !self.capabilities.update_in_place {
            return Err(Error::Unsupported {
                message: "overrides cannot be updated; delete and create instead".into(),
            });
        }
        let now = inner.now;
        let whole_seconds = inner.whole_seconds;
        let sim = inner
            .schedules
            .get_mut(schedule)
            .ok_or_else(|| no_schedule(schedule))?;
        sim.check_member(span)?;
        let index = sim.find(id)?;
        let stored = &mut sim.overrides[index];
        // Cutting a started override "now" ends it at this vendor's now (the Provider contract).
        let mut span = stored_span(span, whole_seconds);
        if stored.ov.span.start < now && span.start < now && span.end <= now {
            span.end = now;
        }
        let just_before = now
            .checked_sub_signed(chrono::TimeDelta::nanoseconds(1))
            .unwrap_or(now);
        check_writable(&span, just_before)?;
        stored.ov.span = span;
        let ov = stored.ov.clone();
        if lose {
            return Err(lost());
        }
        Ok(ov)
    }

    async fn delete_override(
        &self,
        schedule: &VendorScheduleId,
        id: &OverrideId,
    ) -> Result<Deletion, Error> {
        let mut inner = self.lock();
        let lose = self.begin(&mut inner, CallKind::Delete, Some(schedule))?;
        let now = inner.now;
        let whole_seconds = inner.whole_seconds;
        let truncates = self.capabilities.delete_truncates_running;
        let sim = inner
            .schedules
            .get_mut(schedule)
            .ok_or_else(|| no_schedule(schedule))?;
        let index = sim.find(id)?;
        let span = sim.overrides[index].ov.span.clone();
        if span.end <= now {
            return Err(Error::Rejected {
                message: "cannot remove a past override".into(),
            });
        }
        let deletion = if span.start < now && truncates {
            sim.overrides[index].ov.span.end =
                stored_span(&Span::new(now, now, span.member), whole_seconds).end;
            Deletion::Truncated
        } else {
            sim.overrides.remove(index);
            Deletion::Deleted
        };
        if lose {
            return Err(lost());
        }
        Ok(deletion)
    }
}

impl VendorSimulator for InMemoryProvider {
    fn add_schedule(&self, schedule: VendorSchedule) {
        let mut inner = self.lock();
        let id = schedule.id.clone();
        match inner.schedules.get_mut(&id) {
            Some(sim) => sim.config = schedule,
            None => {
                inner.schedules.insert(
                    id,
                    Sim {
                        config: schedule,
                        overrides: Vec::new(),
                    },
                );
            }
        }
    }

    fn set_now(&self, now: DateTime<Utc>) {
        self.lock().now = now;
    }

    fn now(&self) -> DateTime<Utc> {
        self.lock().now
    }

    fn set_clock_step(&self, step: chrono::TimeDelta) {
        self.lock().clock_step = step;
    }

    fn set_read_only(&self, read_only: bool) {
        self.lock().read_only = read_only;
    }

    fn rate_limit_next(&self, calls: usize) {
        self.lock().rate_limited_calls = calls;
    }

    fn inject(&self, trigger: Trigger, fault: Fault) {
        self.lock().faults.push((trigger, fault));
    }

    fn clear_faults(&self) {
        let mut inner = self.lock();
        inner.faults.clear();
        inner.read_only = false;
        inner.rate_limited_calls = 0;
        inner.refused_starts.clear();
    }

    fn write_calls(&self) -> usize {
        self.lock().writes
    }

    fn overrides(&self, schedule: &VendorScheduleId) -> Vec<Override> {
        let inner = self.lock();
        let mut list: Vec<Override> = inner
            .schedules
            .get(schedule)
            .map(|s| s.overrides.iter().map(|o| o.ov.clone()).collect())
            .unwrap_or_default();
        list.sort_by(|a, b| a.span.cmp(&b.span).then_with(|| a.id.cmp(&b.id)));
        list
    }

    fn insert_override(&self, schedule: &VendorScheduleId, span: Span) -> OverrideId {
        let mut inner = self.lock();
        inner.next_seq += 1;
        let seq = inner.next_seq;
        let id = OverrideId::new(format!("manual-{seq}"));
        if let Some(sim) = inner.schedules.get_mut(schedule) {
            sim.overrides.push(Stored {
                ov: Override {
                    id: id.clone(),
                    span,
                },
                seq,
            });
        }
        id
    }

    fn remove_override(&self, schedule: &VendorScheduleId, id: &OverrideId) -> bool {
        let mut inner = self.lock();
        let Some(sim) = inner.schedules.get_mut(schedule) else {
            return false;
        };
        let before = sim.overrides.len();
        sim.overrides.retain(|o| &o.ov.id != id);
        sim.overrides.len() != before
    }

    fn edit_override(
        &self,
        schedule: &VendorScheduleId,
        id: &OverrideId,
        span: Span,
    ) -> Option<OverrideId> {
        if !self.capabilities.update_in_place {
            return self
                .remove_override(schedule, id)
                .then(|| self.insert_override(schedule, span));
        }
        let mut inner = self.lock();
        let found = inner
            .schedules
            .get_mut(schedule)
            .and_then(|sim| sim.overrides.iter_mut().find(|o| &o.ov.id == id))?;
        found.ov.span = span;
        Some(id.clone())
    }

    fn render(&self, schedule: &VendorScheduleId, window: Window) -> Vec<OnCallPeriod> {
        let inner = self.lock();
        let Some(sim) = inner.schedules.get(schedule) else {
            return Vec::new();
        };
        let stretches: Vec<Layered<Email>> = sim
            .overrides
            .iter()
            .map(|o| Layered {
                start: o.ov.span.start,
                end: o.ov.span.end,
                who: o.ov.span.member.clone(),
                precedence: o.seq,
            })
            .collect();
        resolve_overlaps(&stretches, window)
            .into_iter()
            .map(|(start, end, member)| OnCallPeriod { start, end, member })
            .collect()
    }
}
