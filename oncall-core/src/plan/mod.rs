//! Export planning: desired spans, the high-water rules R1-R6 of DESIGN §3, and the plan they produce.

use std::fmt;

use chrono::{DateTime, TimeDelta, Utc};
use serde::{Deserialize, Serialize};

use crate::drift::Drift;
use crate::model::{Email, RoleIndex, Schedule};
use crate::provider::Capabilities;
use crate::stable_hash::Fnv64;
use crate::state::{DestinationId, DestinationMode, DestinationState};
use crate::time::whole_seconds;
use crate::ValidationError;

/// Someone on call over `[start, end)`.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub struct Span {
    /// First instant.
    pub start: DateTime<Utc>,
    /// First instant after.
    pub end: DateTime<Utc>,
    /// Who.
    pub member: Email,
}

impl Span {
    /// A span.
    pub fn new(start: DateTime<Utc>, end: DateTime<Utc>, member: Email) -> Span {
        Span { start, end, member }
    }

    /// The part at or after `now`, or `None` when the span has ended (DESIGN §3: spans are compared
    /// after clipping at `now`).
    pub fn clipped(&self, now: DateTime<Utc>) -> Option<Span> {
        (self.end > now).then(|| Span::new(self.start.max(now), self.end, self.member.clone()))
    }

    /// Whether `[start, end)` intersects `[from, to)` (never when that is empty).
    pub fn overlaps(&self, from: DateTime<Utc>, to: DateTime<Utc>) -> bool {
        from < to && self.start < to && from < self.end
    }
}

impl fmt::Display for Span {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{} → {} {}",
            self.start.format("%Y-%m-%d %H:%M:%SZ"),
            self.end.format("%Y-%m-%d %H:%M:%SZ"),
            self.member
        )
    }
}

/// A vendor's handle for an override: PagerDuty's id, Opsgenie's alias. Cheap to clone (shared).
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(from = "String", into = "String")]
pub struct OverrideId(std::sync::Arc<str>);

impl From<String> for OverrideId {
    fn from(id: String) -> OverrideId {
        OverrideId(id.into())
    }
}

impl From<OverrideId> for String {
    fn from(id: OverrideId) -> String {
        id.0.to_string()
    }
}

impl OverrideId {
    /// An id as the vendor spells it.
    pub fn new(id: impl Into<std::sync::Arc<str>>) -> OverrideId {
        OverrideId(id.into())
    }

    /// The id as the vendor spells it.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for OverrideId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// An override as the vendor holds it, or as the ledger remembers it.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Override {
    /// The vendor's handle.
    pub id: OverrideId,
    /// When and who.
    #[serde(flatten)]
    pub span: Span,
}

/// How far apart the host's and the vendor's clocks may be. A cut "at now" lands at the vendor's
/// now, a moment later: an override that started before `now` and ends no later than this after it
/// is a cut that has landed (or ends as good as now), and is never cut again (R6).
pub const CLOCK_SKEW: TimeDelta = TimeDelta::seconds(60);

/// The prefix of the aliases this library chooses where the vendor lets clients choose ids.
pub const ALIAS_PREFIX: &str = "oncall-sync-";

/// The deterministic alias of an override we write for `destination` starting at `start` (R6):
/// a retry after a crash asks for the same alias, and the next plan recognises what it finds under
/// it as ours ([`is_alias_for`]) instead of writing it again.
///
/// ```
/// use chrono::{TimeZone, Utc};
/// use oncall_core::{alias_for, DestinationId};
/// let d = DestinationId("ops-primary".into());
/// let t = Utc.with_ymd_and_hms(2024, 3, 10, 9, 0, 0).unwrap();
/// assert_eq!(alias_for(&d, t), alias_for(&d, t));
/// assert!(alias_for(&d, t).as_str().starts_with("oncall-sync-"));
/// // Aliases live in vendors' databases: the same input gives this alias in every release.
/// assert_eq!(alias_for(&d, t).as_str(), "oncall-sync-dce329ce29dcb324");
/// ```
pub fn alias_for(destination: &DestinationId, start: DateTime<Utc>) -> OverrideId {
    // FNV-1a 64: tiny, and stable across Rust releases (std's hashers are not). The bytes: the
    // destination id, a zero byte, the start's seconds (big-endian i64) and nanoseconds (u32).
    let mut hasher = Fnv64::new();
    hasher.feed(destination.0.as_bytes());
    hasher.feed(&[0]);
    hasher.feed(&start.timestamp().to_be_bytes());
    hasher.feed(&start.timestamp_subsec_nanos().to_be_bytes());
    let hash = hasher.finish();
    // Written by hand into one buffer: the planner makes an alias per create, and `format!` with its
    // extra allocation showed in the profile.
    const LEN: usize = ALIAS_PREFIX.len() + 16;
    let mut alias = [0u8; LEN];
    alias[..ALIAS_PREFIX.len()].copy_from_slice(ALIAS_PREFIX.as_bytes());
    for (i, byte) in alias[ALIAS_PREFIX.len()..].iter_mut().enumerate() {
        let nibble = ((hash >> ((15 - i) * 4)) & 0xf) as u8;
        *byte = if nibble < 10 {
            b'0' + nibble
        } else {
            b'a' + nibble - 10
        };
    }
    // Always ASCII; the fallback only keeps this free of panics.
    OverrideId::new(std::str::from_utf8(&alias).unwrap_or(ALIAS_PREFIX))
}

/// How many aliases one create may try: [`alias_for`] and then [`alias_attempt`] 1, 2, … up to
/// this count minus one. It bounds the tries only: [`is_alias_for`] recognises any attempt, so
/// overrides written under another bound by another release stay ours.
pub const ALIAS_ATTEMPTS: u32 = 8;

/// The alias to ask for on the `attempt`-th try (0 is [`alias_for`]; later ones add `-<attempt>`).
///
/// A vendor keeps an alias while its override exists, and an override of ours may still exist
/// with the alias of `start` after a person moved it, or after it was cut short. The planner asks
/// for the first alias no listed override holds; where the vendor still refuses one as taken (the
/// holder ended, or moved out of view), the driver tries the next. The sequence is deterministic,
/// so a create whose answer was lost is still recognised as ours by [`is_alias_for`].
///
/// ```
/// use chrono::{TimeZone, Utc};
/// use oncall_core::{alias_attempt, alias_for, is_alias_for, DestinationId};
/// let d = DestinationId("ops-primary".into());
/// let t = Utc.with_ymd_and_hms(2024, 3, 10, 9, 0, 0).unwrap();
/// assert_eq!(alias_attempt(&d, t, 0), alias_for(&d, t));
/// let second = alias_attempt(&d, t, 1);
/// assert_eq!(second.as_str(), format!("{}-1", alias_for(&d, t)));
/// assert!(is_alias_for(&d, &second, t));
/// ```
pub fn alias_attempt(
    destination: &DestinationId,
    start: DateTime<Utc>,
    attempt: u32,
) -> OverrideId {
    let base = alias_for(destination, start);
    if attempt == 0 {
        return base;
    }
    OverrideId::new(format!("{base}-{attempt}"))
}

/// Whether `id` is one of the aliases this library asks for when it writes an override for
/// `destination` starting at `start` (see [`alias_attempt`]).
pub fn is_alias_for(destination: &DestinationId, id: &OverrideId, start: DateTime<Utc>) -> bool {
    let id = id.as_str();
    if !id.starts_with(ALIAS_PREFIX) {
        return false;
    }
    let base = alias_for(destination, start);
    // The attempt is written plainly: digits, no leading zero (so never attempt 0).
    let attempt = |n: &str| {
        !n.starts_with('0') && n.bytes().all(|b| b.is_ascii_digit()) && n.parse::<u32>().is_ok()
    };
    match id.strip_prefix(base.as_str()) {
        Some("") => true,
        Some(rest) => rest.strip_prefix('-').is_some_and(attempt),
        None => false,
    }
}

/// What a destination should show: the desired spans of one role from `now` to the horizon end.
/// Always valid: spans clipped at `now`, sorted, non-overlapping.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Desired {
    spans: Vec<Span>,
    /// Each span's start before clipping at now: its shift's start as the host has it.
    starts: Vec<DateTime<Utc>>,
    horizon_end: DateTime<Utc>,
    /// `now + horizon`, when the host gave a horizon: it vouches for its rota up to there.
    vouched_until: Option<DateTime<Utc>>,
    gaps: Vec<(DateTime<Utc>, DateTime<Utc>)>,
    /// The host's shifts (unclipped start, end) that have not ended and whose role has nobody.
    empty_shifts: Vec<(DateTime<Utc>, DateTime<Utc>)>,
}

impl Desired {
    /// Desired spans from `now` to `horizon_end` (E). Spans are clipped at `now` (ended ones are
    /// dropped) and must be sorted, must not overlap and must be whole seconds; the stretches of
    /// `[now, E)` they leave uncovered are the gaps. `now` is floored to whole seconds (DESIGN §3).
    ///
    /// ```
    /// use chrono::{TimeZone, Utc};
    /// use oncall_core::{Desired, Email, Span};
    /// let t = |h| Utc.with_ymd_and_hms(2024, 1, 1, h, 0, 0).unwrap();
    /// let ada = Email::parse("ada@example.com").unwrap();
    /// let spans = vec![Span::new(t(0), t(4), ada.clone()), Span::new(t(6), t(8), ada)];
    /// let d = Desired::new(t(2), spans, t(10)).unwrap();
    /// assert_eq!(d.spans()[0].start, t(2), "clipped at now");
    /// assert_eq!(d.gaps(), [(t(4), t(6)), (t(8), t(10))]);
    /// ```
    pub fn new(
        now: DateTime<Utc>,
        spans: Vec<Span>,
        horizon_end: DateTime<Utc>,
    ) -> Result<Desired, ValidationError> {
        let now = whole_seconds(now);
        let mut clipped: Vec<Span> = Vec::with_capacity(spans.len());
        let mut starts = Vec::with_capacity(spans.len());
        let mut gaps = Vec::new();
        let mut covered = now;
        for (index, span) in spans.into_iter().enumerate() {
            if span.end <= span.start {
                return Err(ValidationError::InvalidSpan {
                    index,
                    reason: "it does not end after it starts",
                });
            }
            if whole_seconds(span.start) != span.start || whole_seconds(span.end) != span.end {
                return Err(ValidationError::InvalidSpan {
                    index,
                    reason: "it has a fraction of a second: the vendors keep whole seconds",
                });
            }
            let start = span.start;
            let Some(span) = span.clipped(now) else {
                continue;
            };
            if clipped
                .last()
                .is_some_and(|previous| span.start < previous.end)
            {
                return Err(ValidationError::InvalidSpan {
                    index,
                    reason:
                        "it starts before the previous span ends: spans must be sorted and disjoint",
                });
            }
            if span.start > covered && covered < horizon_end {
                gaps.push((covered, span.start.min(horizon_end)));
            }
            covered = covered.max(span.end);
            clipped.push(span);
            starts.push(start);
        }
        if horizon_end > covered {
            gaps.push((covered, horizon_end));
        }
        Ok(Desired {
            spans: clipped,
            starts,
            horizon_end,
            vouched_until: None,
            gaps,
            empty_shifts: Vec::new(),
        })
    }

    /// Names the host's shifts whose role has nobody (their start as the host has it, and end),
    /// sorted: drift reports a person's override over one of them, and proposes the person as its
    /// assignee (DESIGN §8). Those that start at or after `E` are left out (the planner clips the
    /// rest at now); the gaps are what they were.
    pub fn with_empty_shifts(mut self, shifts: Vec<(DateTime<Utc>, DateTime<Utc>)>) -> Desired {
        self.empty_shifts = shifts
            .into_iter()
            .filter(|(start, end)| *start < self.horizon_end && start < end)
            .collect();
        self
    }

    /// The host's shifts whose role has nobody ([`Desired::with_empty_shifts`]), unclipped.
    pub fn empty_shifts(&self) -> &[(DateTime<Utc>, DateTime<Utc>)] {
        &self.empty_shifts
    }

    /// Says the host vouches for its rota up to `until` (`now + horizon`): the scope `S` then
    /// reaches at least that far ([`Desired::scope_end`]).
    pub fn vouched_until(mut self, until: DateTime<Utc>) -> Desired {
        self.vouched_until = Some(until);
        self
    }

    /// `S`, how far the host vouches for its rota (DESIGN §3): `max(E, now + horizon)` with a
    /// horizon, `max(E, H)` without. Within `[now, S)` an override of ours that no desired span
    /// matches is removed; ours wholly at or after `S` are left alone.
    ///
    /// ```
    /// use chrono::{TimeZone, Utc};
    /// use oncall_core::Desired;
    /// let t = |d| Utc.with_ymd_and_hms(2024, 1, d, 9, 0, 0).unwrap();
    /// let desired = Desired::new(t(1), Vec::new(), t(3)).unwrap();
    /// assert_eq!(desired.scope_end(Some(t(9))), t(9), "no horizon: up to the mark");
    /// assert_eq!(desired.clone().vouched_until(t(5)).scope_end(Some(t(9))), t(5));
    /// assert_eq!(desired.scope_end(None), t(3));
    /// ```
    pub fn scope_end(&self, high_water: Option<DateTime<Utc>>) -> DateTime<Utc> {
        let vouched = self.vouched_until.or(high_water);
        vouched.map_or(self.horizon_end, |v| v.max(self.horizon_end))
    }

    /// One span per assigned shift, clipped at `now`, sorted.
    pub fn spans(&self) -> &[Span] {
        &self.spans
    }

    /// The start of each span's shift as the host has it, before clipping at `now` (one per
    /// [`Desired::spans`], in the same order): drift proposals name shifts by it.
    pub fn shift_starts(&self) -> &[DateTime<Utc>] {
        &self.starts
    }

    /// The spans as given (not clipped at `now`), for rebuilding this `Desired` at a later
    /// instant ([`crate::SavedPlan`]).
    pub fn unclipped_spans(&self) -> Vec<Span> {
        self.spans
            .iter()
            .zip(&self.starts)
            .map(|(s, start)| Span::new(*start, s.end, s.member.clone()))
            .collect()
    }

    /// How far the host vouches for its rota (`now + horizon`), when it gave a horizon.
    pub fn vouched(&self) -> Option<DateTime<Utc>> {
        self.vouched_until
    }

    /// `E`: the end of the last shift that starts before `now + horizon` (or of the last shift).
    pub fn horizon_end(&self) -> DateTime<Utc> {
        self.horizon_end
    }

    /// Stretches of `[now, E)` where the role has nobody: the vendor's own rotation shows there.
    pub fn gaps(&self) -> &[(DateTime<Utc>, DateTime<Utc>)] {
        &self.gaps
    }
}

/// Computes [`Desired`] for `role` of `schedule` (DESIGN §3 terms `D` and `E`).
///
/// With `horizon: None` every shift counts.
pub fn desired_spans(
    schedule: &Schedule,
    role: RoleIndex,
    now: DateTime<Utc>,
    horizon: Option<TimeDelta>,
) -> Result<Desired, ValidationError> {
    if role.0 >= schedule.roles().len() {
        return Err(ValidationError::NoSuchRole {
            role: role.0,
            roles: schedule.roles().len(),
        });
    }
    let now = whole_seconds(now);
    let limit = horizon.and_then(|h| now.checked_add_signed(h));
    let in_horizon = schedule
        .shifts()
        .iter()
        .filter(|s| s.end > now && limit.is_none_or(|l| s.start < l));
    let mut spans = Vec::new();
    let mut empty = Vec::new();
    let mut horizon_end = now;
    for shift in in_horizon {
        horizon_end = horizon_end.max(shift.end);
        match shift.assignee(role) {
            Some(member) => spans.push(Span::new(shift.start, shift.end, member.clone())),
            None => empty.push((shift.start, shift.end)),
        }
    }
    // A valid schedule's shifts are sorted, disjoint and whole seconds, so this only repeats that
    // check.
    let desired = Desired::new(now, spans, horizon_end)?.with_empty_shifts(empty);
    Ok(match limit {
        Some(until) => desired.vouched_until(until),
        None => desired,
    })
}

/// Everything the planner looks at, for one destination.
#[derive(Debug, Clone, Copy)]
pub struct PlanInput<'a> {
    /// The destination, for aliases and drift ids.
    pub destination: &'a DestinationId,
    /// The host role the destination exports, for the edits drift records propose.
    pub role: RoleIndex,
    /// How the destination is kept in step (DESIGN §8): in authoritative and manual mode the fresh
    /// region of R2 starts at `now`.
    pub mode: DestinationMode,
    /// The instant the sync runs (floored to whole seconds by the planner).
    pub now: DateTime<Utc>,
    /// What the destination should show.
    pub desired: &'a Desired,
    /// The vendor's overrides overlapping `[now, S)` and every span of the ledger entries in it
    /// (the driver reads a second past those), plus copies of ledger entries found by id.
    pub vendor: &'a [Override],
    /// The destination's mark and ledger.
    pub state: &'a DestinationState,
    /// What the provider can do.
    pub capabilities: Capabilities,
}

/// One vendor call (or ledger-only step) of a plan.
#[non_exhaustive]
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Action {
    /// Create an override. `owned` ones join the ledger; others re-create the part of an override
    /// that must survive when that override is deleted.
    Create {
        /// What to create.
        span: Span,
        /// The alias to ask for, where the provider takes client-chosen ids.
        id: Option<OverrideId>,
        /// Whether it becomes ours.
        owned: bool,
        /// The override whose part this keeps: until this create succeeds, that override is not
        /// removed.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        keeps_part_of: Option<OverrideId>,
    },
    /// Change an override in place.
    Update {
        /// Which override.
        id: OverrideId,
        /// What it is now.
        from: Span,
        /// What it becomes.
        to: Span,
        /// Whether it is ours.
        owned: bool,
    },
    /// Delete an override that has not started.
    Delete {
        /// The override.
        target: Override,
        /// Whether it is ours.
        owned: bool,
    },
    /// End a running override at `at` (the sync's `now`), by delete where the vendor truncates running
    /// overrides on delete, else by an in-place update of its end.
    Truncate {
        /// The override.
        target: Override,
        /// Where it will end.
        at: DateTime<Utc>,
        /// Whether it is ours.
        owned: bool,
        /// How the vendor is asked.
        by_delete: bool,
    },
    /// Take a vendor override that equals a desired span into the ledger. No vendor call.
    Adopt {
        /// The override.
        target: Override,
    },
    /// Drop a ledger entry whose override is already gone from the vendor. No vendor call.
    Forget {
        /// The ledger entry.
        target: Override,
    },
}

/// Why the planner chose an action.
#[non_exhaustive]
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Reason {
    /// A desired span in the fresh region that the vendor lacks (R2).
    NewSpan,
    /// The host changed the rota in the protected region (R4).
    PlannedChange,
    /// An override of ours that no desired span matches any more, within the scope `S` (R2, R4).
    NoLongerDesired,
    /// An override of ours in the fresh region that a person deleted or edited (R2).
    Restore,
    /// A foreign override inside the fresh region (R2).
    ForeignInFreshRegion,
    /// A foreign override reaching into the fresh region from before it, cut back to end at its start (R2).
    CutAtFreshStart,
    /// A foreign override reaching past the horizon end, trimmed to start there.
    TrimAtHorizonEnd,
    /// Re-creating the part of an override outside the fresh region (vendors without update).
    KeepForeignRemainder,
    /// A person extended an override of ours into the fresh region: the extension goes (R2), the rest
    /// stays (R3).
    TrimEditedOurs,
    /// A vendor override equal to a desired span (R2, R6). In the protected region this adopts an
    /// exact copy of a planned change too: where the vendor has no client ids it cannot be told from
    /// our own create whose answer was lost, so it is taken as ours.
    ExactMatch,
    /// A vendor override carrying the alias this destination gives its own overrides (R6).
    OurAlias,
    /// The override is no longer in the vendor.
    AlreadyGone,
    /// A person moved an override of ours wholly past the scope `S`: it is left alone there, and the
    /// ledger follows it (DESIGN §3, scope).
    MovedOutOfScope,
    /// The destination is retired: ours that have not started are deleted (DESIGN §3).
    Retired,
    /// Ours, already cut at the vendor's now (its answer was lost): the ledger follows it (R6).
    CutLanded,
}

impl Reason {
    /// The reason in a few words, for plans people read.
    pub fn describe(self) -> &'static str {
        match self {
            Reason::NewSpan => "new shift (R2)",
            Reason::PlannedChange => "planned change before the mark (R4)",
            Reason::NoLongerDesired => "ours, no longer in the rota (R2, R4)",
            Reason::Restore => "ours, changed or deleted in the vendor after the mark (R2)",
            Reason::ForeignInFreshRegion => "foreign, after the mark (R2)",
            Reason::CutAtFreshStart => "foreign, reaching past the mark: cut there (R2)",
            Reason::TrimAtHorizonEnd => "foreign, reaching past the horizon: trimmed",
            Reason::KeepForeignRemainder => "keeps the part of a foreign override outside the change",
            Reason::TrimEditedOurs => "ours, stretched by a person past the mark: the stretch goes (R2)",
            Reason::ExactMatch => {
                "the vendor already shows exactly this shift: taken as ours, not written twice (R2, R6)"
            }
            Reason::OurAlias => "carries our alias: a create whose answer was lost (R6)",
            Reason::AlreadyGone => "no longer in the vendor",
            Reason::MovedOutOfScope => "ours, moved by a person past the scope: left there",
            Reason::Retired => "ours, not started, and the destination is retired",
            Reason::CutLanded => "ours, already cut at the vendor's now (R6)",
        }
    }
}

/// One step of a plan.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PlannedOperation {
    /// What to do.
    pub action: Action,
    /// Why.
    pub reason: Reason,
    /// For steps in the fresh region: the instant the mark must stay at or before if this step fails
    /// (R5). `None` for steps in the protected region and ledger-only steps.
    pub mark_limit: Option<DateTime<Utc>>,
}

impl PlannedOperation {
    /// Whether the step calls the vendor.
    pub fn is_write(&self) -> bool {
        !matches!(self.action, Action::Adopt { .. } | Action::Forget { .. })
    }
}

impl fmt::Display for PlannedOperation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let whose = |owned: bool| if owned { "ours" } else { "foreign" };
        match &self.action {
            Action::Create {
                span, id, owned, ..
            } => {
                write!(f, "create  {span} ({})", whose(*owned))?;
                if let Some(id) = id {
                    write!(f, " as {id}")?;
                }
            }
            Action::Update {
                id,
                from,
                to,
                owned,
            } => write!(f, "update  {id} ({}): {from}  ⇒  {to}", whose(*owned))?,
            Action::Delete { target, owned } => write!(
                f,
                "delete  {} ({}): {}",
                target.id,
                whose(*owned),
                target.span
            )?,
            Action::Truncate {
                target,
                at,
                owned,
                by_delete,
            } => write!(
                f,
                "cut     {} ({}): {} at {}{}",
                target.id,
                whose(*owned),
                target.span,
                at.format("%Y-%m-%d %H:%M:%SZ"),
                if *by_delete { " (by delete)" } else { "" }
            )?,
            Action::Adopt { target } => write!(f, "adopt   {}: {}", target.id, target.span)?,
            Action::Forget { target } => write!(f, "forget  {}: {}", target.id, target.span)?,
        }
        write!(f, "  [{}]", self.reason.describe())
    }
}

/// Something a person should know about a sync.
#[non_exhaustive]
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Warning {
    /// A foreign override overlaps a planned change in the protected region (R4). It is left alone,
    /// but where the two overlap the vendor shows only one of them: on PagerDuty the newer, which is
    /// the change just written.
    ForeignOverlapsChange {
        /// The foreign override, left alone.
        foreign: Override,
        /// Start of the change.
        start: DateTime<Utc>,
        /// End of the change.
        end: DateTime<Utc>,
    },
    /// The role has nobody over this stretch of the horizon: the vendor's own rotation shows there.
    RoleEmpty {
        /// First instant.
        start: DateTime<Utc>,
        /// First instant after.
        end: DateTime<Utc>,
    },
    /// The vendor does not know this member; their overrides could not be written.
    UnknownMember {
        /// The member.
        email: Email,
    },
    /// The sync was asked to run at an instant before the destination's last run: a clock went
    /// back. It planned with the last run's instant instead, so nothing is planned from the past.
    ClockBehind {
        /// The instant the sync was given.
        given: DateTime<Utc>,
        /// The last run's instant, used instead.
        last_run: DateTime<Utc>,
    },
    /// The destination's mode is not the one its state was last saved under (DESIGN §8): this run
    /// follows the new mode's rules. From protect to authoritative or manual, people's overrides
    /// between now and the mark, which protect let stand, are now removed; back to protect, they
    /// stand again from the mark on.
    ModeChanged {
        /// The mode the state was saved under.
        from: DestinationMode,
        /// The destination's mode now.
        to: DestinationMode,
    },
}

impl fmt::Display for Warning {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let t = |t: &DateTime<Utc>| t.format("%Y-%m-%d %H:%M:%SZ").to_string();
        match self {
            Warning::ForeignOverlapsChange {
                foreign,
                start,
                end,
            } => write!(
                f,
                "foreign override {} ({}) overlaps the planned change {} → {}: where they overlap the \
                 vendor shows only one of them (on PagerDuty, the newer)",
                foreign.id,
                foreign.span,
                t(start),
                t(end)
            ),
            Warning::RoleEmpty { start, end } => write!(
                f,
                "nobody is assigned from {} to {}: the vendor's own rotation shows there",
                t(start),
                t(end)
            ),
            Warning::ClockBehind { given, last_run } => write!(
                f,
                "the clock says {} but this destination last ran at {}: planned from the last run \
                 (a clock went back by {} s)",
                t(given),
                t(last_run),
                (*last_run - *given).num_seconds()
            ),
            Warning::UnknownMember { email } => {
                write!(
                    f,
                    "the vendor does not know {email}: their shifts were not exported"
                )
            }
            Warning::ModeChanged { from, to } => write!(
                f,
                "the destination was last saved in {from} mode and is now in {to} mode: this run \
                 follows the {to} rules"
            ),
        }
    }
}

/// What a sync would do for one destination, in order.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Plan {
    /// The destination.
    pub destination: DestinationId,
    /// The instant planned for.
    pub now: DateTime<Utc>,
    /// `H` before the sync.
    pub high_water: Option<DateTime<Utc>>,
    /// `F = max(H, now)`: where the fresh region starts.
    pub fresh_from: DateTime<Utc>,
    /// `E`: where the horizon ends.
    pub horizon_end: DateTime<Utc>,
    /// Steps in the order they must run.
    pub operations: Vec<PlannedOperation>,
    /// Things to tell a person.
    pub warnings: Vec<Warning>,
    /// What people changed in the vendor against the host's rota (DESIGN §8), and what this plan
    /// does about it.
    #[serde(default)]
    pub drift: Vec<Drift>,
}

impl Plan {
    /// How many steps call the vendor. Each is one call, except a create whose alias the vendor
    /// refuses as taken: that one reads once and tries the next aliases ([`alias_attempt`]).
    pub fn write_count(&self) -> usize {
        self.operations.iter().filter(|o| o.is_write()).count()
    }

    /// The mark after the sync if the steps that failed are the given ones (R5): `max(H, E)` when
    /// none in the fresh region failed, else the earliest failed fresh step's start. Never backwards;
    /// a first export that got nowhere leaves it `None`.
    pub fn next_high_water<'a>(
        &self,
        failed: impl IntoIterator<Item = &'a PlannedOperation>,
    ) -> Option<DateTime<Utc>> {
        let reached = failed
            .into_iter()
            .filter_map(|o| o.mark_limit)
            .min()
            .map_or(self.horizon_end, |t| t.min(self.horizon_end));
        match self.high_water {
            Some(h) => Some(h.max(reached)),
            None => (reached > self.now).then_some(reached),
        }
    }
}

impl fmt::Display for Plan {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let t = |t: DateTime<Utc>| t.format("%Y-%m-%d %H:%M:%SZ").to_string();
        writeln!(
            f,
            "destination {}: now {}, mark {}, fresh from {}, horizon to {}",
            self.destination,
            t(self.now),
            self.high_water.map_or_else(|| "none".to_owned(), t),
            t(self.fresh_from),
            t(self.horizon_end)
        )?;
        if self.operations.is_empty() {
            writeln!(f, "  nothing to do")?;
        }
        for op in &self.operations {
            writeln!(f, "  {op}")?;
        }
        for w in &self.warnings {
            writeln!(f, "  warning: {w}")?;
        }
        for d in &self.drift {
            writeln!(f, "  drift: {d}")?;
        }
        Ok(())
    }
}

mod clearing;
mod drift;
mod planner;
mod retirement;

pub use planner::plan_export;
pub use retirement::{plan_retirement, RetirementInput};
