//! Export planning: desired spans, the high-water rules R1-R6 of DESIGN §3, and the plan they produce.

use std::fmt;

use chrono::{DateTime, TimeDelta, Utc};
use serde::{Deserialize, Serialize};

use crate::fast_hash::{FastMap, FastSet};
use crate::model::{Email, RoleIndex, Schedule};
use crate::provider::Capabilities;
use crate::state::{DestinationId, DestinationState};
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
/// ```
pub fn alias_for(destination: &DestinationId, start: DateTime<Utc>) -> OverrideId {
    // FNV-1a 64: tiny, and stable across Rust releases (std's hashers are not). The bytes: the
    // destination id, a zero byte, the start's seconds (big-endian i64) and nanoseconds (u32).
    let mut hash: u64 = 0xcbf2_9ce4_8422_2325;
    let mut feed = |bytes: &[u8]| {
        for &b in bytes {
            hash ^= u64::from(b);
            hash = hash.wrapping_mul(0x0000_0100_0000_01b3);
        }
    };
    feed(destination.0.as_bytes());
    feed(&[0]);
    feed(&start.timestamp().to_be_bytes());
    feed(&start.timestamp_subsec_nanos().to_be_bytes());
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
    horizon_end: DateTime<Utc>,
    gaps: Vec<(DateTime<Utc>, DateTime<Utc>)>,
}

impl Desired {
    /// Desired spans from `now` to `horizon_end` (E). Spans are clipped at `now` (ended ones are
    /// dropped) and must be sorted and must not overlap; the stretches of `[now, E)` they leave
    /// uncovered are the gaps.
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
        let mut clipped: Vec<Span> = Vec::with_capacity(spans.len());
        let mut gaps = Vec::new();
        let mut covered = now;
        for (index, span) in spans.into_iter().enumerate() {
            if span.end <= span.start {
                return Err(ValidationError::InvalidSpan {
                    index,
                    reason: "it does not end after it starts",
                });
            }
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
        }
        if horizon_end > covered {
            gaps.push((covered, horizon_end));
        }
        Ok(Desired {
            spans: clipped,
            horizon_end,
            gaps,
        })
    }

    /// One span per assigned shift, clipped at `now`, sorted.
    pub fn spans(&self) -> &[Span] {
        &self.spans
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
    let limit = horizon.and_then(|h| now.checked_add_signed(h));
    let in_horizon = schedule
        .shifts()
        .iter()
        .filter(|s| s.end > now && limit.is_none_or(|l| s.start < l));
    let mut spans = Vec::new();
    let mut horizon_end = now;
    for shift in in_horizon {
        horizon_end = horizon_end.max(shift.end);
        if let Some(member) = shift.assignee(role) {
            spans.push(Span::new(shift.start, shift.end, member.clone()));
        }
    }
    // A valid schedule's shifts are sorted and disjoint, so this only repeats that check.
    Desired::new(now, spans, horizon_end)
}

/// Everything the planner looks at, for one destination.
#[derive(Debug, Clone, Copy)]
pub struct PlanInput<'a> {
    /// The destination, for aliases.
    pub destination: &'a DestinationId,
    /// The instant the sync runs.
    pub now: DateTime<Utc>,
    /// What the destination should show.
    pub desired: &'a Desired,
    /// The vendor's overrides overlapping `[now, max(H, E))`.
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
    /// An override of ours that no desired span matches any more (R2, R4).
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
    /// A vendor override equal to a desired span (R2, R6).
    ExactMatch,
    /// A vendor override carrying the alias this destination gives its own overrides (R6).
    OurAlias,
    /// The override is no longer in the vendor.
    AlreadyGone,
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
        write!(f, "  [{:?}]", self.reason)
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
            Warning::UnknownMember { email } => {
                write!(
                    f,
                    "the vendor does not know {email}: their shifts were not exported"
                )
            }
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
        Ok(())
    }
}

/// Order of execution: removals before creates, so vendors that reject overlaps accept the creates,
/// and remainders of foreign overrides before the deletes that would lose them.
fn phase(op: &PlannedOperation) -> u8 {
    match (&op.action, op.reason) {
        (Action::Adopt { .. } | Action::Forget { .. }, _) => 0,
        (Action::Create { .. }, Reason::KeepForeignRemainder) => 1,
        (Action::Create { .. }, _) => 3,
        _ => 2,
    }
}

fn sort_time(op: &PlannedOperation) -> DateTime<Utc> {
    match &op.action {
        Action::Create { span, .. } => span.start,
        Action::Update { from, .. } => from.start,
        Action::Delete { target, .. }
        | Action::Truncate { target, .. }
        | Action::Adopt { target }
        | Action::Forget { target } => target.span.start,
    }
}

/// Plans one destination's export (DESIGN §3, rules R1-R6). Pure: same input, same plan.
///
/// Runs in O((n + m) log(n + m)) for n desired spans and m vendor and ledger overrides.
pub fn plan_export(input: PlanInput<'_>) -> Plan {
    let PlanInput {
        destination,
        now,
        desired,
        vendor,
        state,
        capabilities: caps,
    } = input;
    let horizon_end = desired.horizon_end;
    let high_water = state.high_water;
    let fresh_from = high_water.map_or(now, |h| h.max(now));
    let in_fresh = |start: DateTime<Utc>| start >= fresh_from;

    // R1: only what ends after now is looked at. Desired spans are sorted, with distinct starts.
    let desired_spans: Vec<Span> = desired
        .spans
        .iter()
        .filter(|s| s.start < horizon_end)
        .filter_map(|s| s.clipped(now))
        .collect();
    let desired_at =
        |start: DateTime<Utc>| desired_spans.binary_search_by(|s| s.start.cmp(&start)).ok();
    let desired_equal = |span: &Span| desired_at(span.start).filter(|&i| desired_spans[i] == *span);
    // R5: a step touching `[start, end)` that fails holds the mark at `start` when any of it lies in
    // the fresh region, rounded down to the start of the desired span there, so the mark always sits
    // on a shift boundary and never splits a shift between the protected and the fresh region.
    let mark_limit = |start: DateTime<Utc>, end: DateTime<Utc>| {
        (end > fresh_from).then(|| {
            let i = desired_spans.partition_point(|s| s.start <= start);
            match i.checked_sub(1).map(|i| &desired_spans[i]) {
                Some(s) if s.end > start => s.start,
                _ => start,
            }
        })
    };
    // Room for the usual steps (a create per desired span, a step per vendor override): growing a
    // large vector copies it.
    let mut ops: Vec<PlannedOperation> = Vec::with_capacity(desired_spans.len() + vendor.len());
    // The stretches of the protected region that the plan changes, for R4's warnings.
    let mut changes: Vec<(DateTime<Utc>, DateTime<Utc>)> = Vec::new();

    // Sort the vendor's live overrides into ours (with the ledger entry they belong to) and foreign.
    let ledger_pos: FastMap<&OverrideId, usize> = state
        .ledger
        .iter()
        .enumerate()
        .map(|(i, l)| (&l.id, i))
        .collect();
    let mut copies: Vec<Option<&Override>> = vec![None; state.ledger.len()];
    let mut orphans: Vec<&Override> = Vec::new();
    let mut foreign: Vec<(Span, &Override)> = Vec::new();
    for o in vendor.iter().filter(|o| o.span.end > now) {
        match ledger_pos.get(&o.id) {
            // A ledger entry that has ended is history; if a person stretched its vendor copy past
            // now, that live part is theirs. (The driver keeps such entries while the copy lives, so
            // the alias check below never takes it back.)
            Some(&i) if state.ledger[i].span.end > now => copies[i] = Some(o),
            Some(_) => foreign.extend(o.span.clipped(now).map(|c| (c, o))),
            // With client-chosen ids, an override carrying one of our aliases for its own start is
            // ours even when the ledger lost it (a create whose answer was lost): take it back, so
            // it is never written twice.
            None if caps.client_ids && is_alias_for(destination, &o.id, o.span.start) => {
                orphans.push(o);
            }
            None => foreign.extend(o.span.clipped(now).map(|c| (c, o))),
        }
    }
    for o in &orphans {
        ops.push(PlannedOperation {
            action: Action::Adopt {
                target: (*o).clone(),
            },
            reason: Reason::OurAlias,
            mark_limit: None,
        });
    }
    // Live ledger entries in scope (starting before the horizon end), each with its vendor copy.
    let ledger_in_scope: Vec<(&Override, Option<&Override>, Span)> = state
        .ledger
        .iter()
        .zip(copies.iter().copied())
        .chain(orphans.iter().map(|o| (*o, Some(*o))))
        .filter(|(l, _)| l.span.start < horizon_end)
        .filter_map(|(l, copy)| l.span.clipped(now).map(|c| (l, copy, c)))
        .collect();
    let vendor_by_id: FastMap<&OverrideId, &Override> = ledger_in_scope
        .iter()
        .filter_map(|(l, copy, _)| copy.map(|c| (&l.id, c)))
        .collect();

    let mut desired_done = vec![false; desired_spans.len()];
    // Desired spans the ledger holds but the vendor lost or changed, in the fresh region.
    let mut restore = vec![false; desired_spans.len()];
    let mut stale: Vec<(&Override, Span)> = Vec::new();
    let mut kept: Vec<&Override> = Vec::new();

    // Match the ledger against the desired spans (R3: in the protected region a match stands even if a
    // person deleted or edited the vendor's copy; R2: in the fresh region the vendor must hold it intact).
    for (entry, copy, clipped) in ledger_in_scope {
        let matched = desired_equal(&clipped).filter(|&i| !desired_done[i]);
        let intact = !in_fresh(clipped.start)
            || copy
                .and_then(|v| v.span.clipped(now))
                .is_some_and(|v| v == clipped);
        match matched {
            Some(i) if intact => {
                desired_done[i] = true;
                kept.push(entry);
            }
            Some(i) => {
                restore[i] = true;
                stale.push((entry, clipped));
            }
            None => stale.push((entry, clipped)),
        }
    }

    // Adopt vendor overrides that equal a desired span (R2, R6). Foreign overrides are sorted by their
    // span clipped at now, so each desired span finds its equals by binary search.
    foreign.sort_by(|a, b| a.0.cmp(&b.0).then_with(|| a.1.id.cmp(&b.1.id)));
    let mut adopted = vec![false; foreign.len()];
    for (i, span) in desired_spans.iter().enumerate() {
        if desired_done[i] {
            continue;
        }
        let first = foreign.partition_point(|(c, _)| c < span);
        let equal = (first..foreign.len()).take_while(|&j| foreign[j].0 == *span);
        if let Some(j) = equal.into_iter().find(|&j| !adopted[j]) {
            adopted[j] = true;
            desired_done[i] = true;
            ops.push(PlannedOperation {
                action: Action::Adopt {
                    target: foreign[j].1.clone(),
                },
                reason: Reason::ExactMatch,
                mark_limit: None,
            });
        }
    }

    // Stale ledger entries: pair with a desired span starting at the same instant for an in-place update
    // where the vendor has one, otherwise remove them.
    for (entry, clipped) in stale {
        let Some(current) = vendor_by_id.get(&entry.id).copied() else {
            ops.push(PlannedOperation {
                action: Action::Forget {
                    target: entry.clone(),
                },
                reason: Reason::AlreadyGone,
                mark_limit: None,
            });
            continue;
        };
        let reason = if in_fresh(clipped.start) {
            if desired_equal(&clipped).is_some() {
                Reason::Restore
            } else {
                Reason::NoLongerDesired
            }
        } else {
            Reason::PlannedChange
        };
        let running = current.span.start < now;
        if caps.update_in_place {
            if let Some(i) = desired_at(clipped.start).filter(|&i| !desired_done[i]) {
                let want = &desired_spans[i];
                let to = if !running {
                    Some(want.clone())
                } else if current.span.member == want.member && want.start == now {
                    // Only the end of a running override may change: its past stays as it was (R1).
                    // That serves a desired span in progress (clipped, it starts at now); one that
                    // starts later (a person moved the copy earlier) would be joined to it across
                    // the stretch between them.
                    Some(Span::new(current.span.start, want.end, want.member.clone()))
                } else {
                    None
                };
                if let Some(to) = to {
                    desired_done[i] = true;
                    let (s, e) = (clipped.start.min(want.start), clipped.end.max(want.end));
                    let op = PlannedOperation {
                        action: Action::Update {
                            id: entry.id.clone(),
                            from: current.span.clone(),
                            to,
                            owned: true,
                        },
                        reason,
                        mark_limit: mark_limit(s, e),
                    };
                    push_change(&mut ops, &mut changes, fresh_from, op, s, e);
                    continue;
                }
            }
        }
        let action = if running {
            truncate(current, now, true, caps)
        } else {
            Action::Delete {
                target: current.clone(),
                owned: true,
            }
        };
        let from = current.span.start.max(now);
        let op = PlannedOperation {
            action,
            reason,
            mark_limit: mark_limit(from, current.span.end),
        };
        push_change(
            &mut ops,
            &mut changes,
            fresh_from,
            op,
            from,
            current.span.end,
        );
    }

    // R2: clear foreign overrides from the fresh region [F, E), keeping their parts outside it.
    let mut to_clear: Vec<(&Override, DateTime<Utc>, Option<Reason>)> = foreign
        .iter()
        .enumerate()
        .filter(|(j, (_, o))| !adopted[*j] && o.span.overlaps(fresh_from, horizon_end))
        .map(|(_, (_, o))| (*o, fresh_from, None))
        .collect();
    // R2 over R3: an override of ours that a person stretched past its ledger span into the fresh
    // region loses the stretch; the ledger keeps its span, so the person's other changes stand.
    for entry in kept {
        let Some(current) = vendor_by_id.get(&entry.id) else {
            continue;
        };
        let from = fresh_from.max(entry.span.end);
        if current.span != entry.span && current.span.overlaps(from, horizon_end) {
            to_clear.push((current, from, Some(Reason::TrimEditedOurs)));
        }
    }
    let clearing = Clearing {
        now,
        to: horizon_end,
        caps,
        vendor,
        fresh_from,
        ledger_pos: &ledger_pos,
        taken: foreign
            .iter()
            .zip(&adopted)
            .filter(|(_, adopted)| **adopted)
            .map(|((_, o), _)| &o.id)
            .chain(orphans.iter().map(|o| &o.id))
            .collect(),
        kept: Default::default(),
        checks: std::cell::Cell::new(0),
        index: std::cell::OnceCell::new(),
        mark_limit: &mark_limit,
    };
    for (o, from, reason) in to_clear {
        clearing.clear(o, from, reason, &mut ops);
    }

    ops.sort_by_key(|op| (phase(op), sort_time(op)));
    // Desired spans still unmatched are written last, in time order, each under the first alias of
    // its start that no listed override holds (one a person moved, or one cut short, keeps it).
    let held: FastSet<&OverrideId> = if caps.client_ids {
        vendor
            .iter()
            .filter(|o| o.id.as_str().starts_with(ALIAS_PREFIX))
            .map(|o| &o.id)
            .collect()
    } else {
        FastSet::default()
    };
    let free_alias = |start: DateTime<Utc>| {
        if held.is_empty() {
            return alias_for(destination, start);
        }
        (0..ALIAS_ATTEMPTS)
            .map(|attempt| alias_attempt(destination, start, attempt))
            .find(|alias| !held.contains(alias))
            .unwrap_or_else(|| alias_for(destination, start))
    };
    for (i, span) in desired_spans.iter().enumerate() {
        if desired_done[i] {
            continue;
        }
        let reason = if !in_fresh(span.start) {
            Reason::PlannedChange
        } else if restore[i] {
            Reason::Restore
        } else {
            Reason::NewSpan
        };
        let op = PlannedOperation {
            action: Action::Create {
                span: span.clone(),
                id: caps.client_ids.then(|| free_alias(span.start)),
                owned: true,
                keeps_part_of: None,
            },
            reason,
            mark_limit: mark_limit(span.start, span.end),
        };
        push_change(&mut ops, &mut changes, fresh_from, op, span.start, span.end);
    }

    // R4 warnings: a foreign override in the protected region overlapping a planned change. A sweep
    // over both, sorted by start: foreign overrides join a heap keyed by end when they start before
    // a change ends, and leave it once a change starts after they end. Planned changes are shifts,
    // which do not nest, so the heap holds little beyond what overlaps: O((n + m) log m) plus the
    // warnings themselves.
    let mut warnings = Vec::new();
    let protected: Vec<(DateTime<Utc>, &Override)> = foreign
        .iter()
        .enumerate()
        .filter(|(j, (_, o))| !adopted[*j] && o.span.start < fresh_from)
        .map(|(_, (clipped, o))| (clipped.start, *o))
        .collect();
    changes.sort_unstable();
    // A delete and a create of one span are one change to warn about.
    changes.dedup();
    // Changes start at or after now, so clipped starts decide overlaps as well as the real ones.
    let mut active: std::collections::BinaryHeap<std::cmp::Reverse<(DateTime<Utc>, usize)>> =
        std::collections::BinaryHeap::new();
    let mut next = 0;
    for (start, end) in changes {
        while next < protected.len() && protected[next].0 < end {
            // One that ends before this change starts overlaps no later change either.
            if protected[next].1.span.end > start {
                active.push(std::cmp::Reverse((protected[next].1.span.end, next)));
            }
            next += 1;
        }
        while active
            .peek()
            .is_some_and(|std::cmp::Reverse((e, _))| *e <= start)
        {
            active.pop();
        }
        for std::cmp::Reverse((_, k)) in active.iter() {
            if protected[*k].0 < end {
                warnings.push(Warning::ForeignOverlapsChange {
                    foreign: protected[*k].1.clone(),
                    start,
                    end,
                });
            }
        }
    }
    warnings.sort_by(|a, b| match (a, b) {
        (
            Warning::ForeignOverlapsChange {
                foreign: f1,
                start: s1,
                end: e1,
            },
            Warning::ForeignOverlapsChange {
                foreign: f2,
                start: s2,
                end: e2,
            },
        ) => (s1, e1, &f1.id).cmp(&(s2, e2, &f2.id)),
        _ => std::cmp::Ordering::Equal,
    });
    warnings.dedup();
    warnings.extend(
        desired
            .gaps
            .iter()
            .filter(|(_, end)| *end > now)
            .map(|&(start, end)| Warning::RoleEmpty {
                start: start.max(now),
                end,
            }),
    );

    Plan {
        destination: destination.clone(),
        now,
        high_water,
        fresh_from,
        horizon_end,
        operations: ops,
        warnings,
    }
}

/// Adds `op`, which touches `[start, end)`, and notes the stretch it changes in the protected region
/// (before `fresh_from`).
fn push_change(
    ops: &mut Vec<PlannedOperation>,
    changes: &mut Vec<(DateTime<Utc>, DateTime<Utc>)>,
    fresh_from: DateTime<Utc>,
    op: PlannedOperation,
    start: DateTime<Utc>,
    end: DateTime<Utc>,
) {
    if start < fresh_from {
        changes.push((start, end.min(fresh_from)));
    }
    ops.push(op);
}

fn truncate(target: &Override, now: DateTime<Utc>, owned: bool, caps: Capabilities) -> Action {
    Action::Truncate {
        target: target.clone(),
        at: now,
        owned,
        by_delete: caps.delete_truncates_running || !caps.update_in_place,
    }
}

/// Plans removing overrides from a stretch of the fresh region while keeping their parts outside it.
struct Clearing<'a> {
    now: DateTime<Utc>,
    /// The end of the stretch: the horizon end `E`.
    to: DateTime<Utc>,
    caps: Capabilities,
    vendor: &'a [Override],
    /// Where the fresh region starts: foreign overrides reaching into `[fresh_from, to)` are cleared.
    fresh_from: DateTime<Utc>,
    /// Our ledger's ids.
    ledger_pos: &'a FastMap<&'a OverrideId, usize>,
    /// Overrides this plan takes as ours (adopted, or carrying our alias).
    taken: FastSet<&'a OverrideId>,
    /// Parts kept so far in this plan, as (member, end) → starts.
    kept: std::cell::RefCell<EarliestStarts<Email>>,
    /// Cover checks against the vendor so far: the first few scan, later ones use `index`.
    checks: std::cell::Cell<usize>,
    /// Live overrides that may stand in, as (member, end) → starts; built when many checks come.
    index: std::cell::OnceCell<EarliestStarts<&'a Email>>,
    mark_limit: &'a dyn Fn(DateTime<Utc>, DateTime<Utc>) -> Option<DateTime<Utc>>,
}

/// Who is kept on call up to an end: (member, end) → the starts (usually one).
type EarliestStarts<M> = FastMap<(M, DateTime<Utc>), Vec<DateTime<Utc>>>;

/// Cover checks done by scanning before an index pays off.
const SCANNED_CHECKS: usize = 8;

impl<'a> Clearing<'a> {
    /// Whether the part `span` of `original` is already there: kept earlier in this plan, or a live
    /// foreign override of the same person with the same end that starts within
    /// `[original.start, span.start]`, which is where a copy re-created by an interrupted run lies
    /// (matching on the end, not the exact start, keeps this true while `now` moves between runs).
    /// An older, unrelated override of that person is no stand-in: on PagerDuty the newest wins.
    fn covered(&self, original: &Override, span: &Span) -> bool {
        let (lo, hi) = (original.span.start, span.start);
        let key = (span.member.clone(), span.end);
        if self
            .kept
            .borrow()
            .get(&key)
            .is_some_and(|starts| starts.iter().any(|s| (lo..=hi).contains(s)))
        {
            return true;
        }
        // Neither what this plan clears nor ours (they change with the host's plan) can stand in for
        // a part of someone else's override. (Checked after the cheap span comparison.)
        let may_cover = |o: &Override| {
            o.id != original.id
                && !o.span.overlaps(self.fresh_from, self.to)
                && !self.ledger_pos.contains_key(&o.id)
                && !self.taken.contains(&o.id)
        };
        let checks = self.checks.get() + 1;
        self.checks.set(checks);
        if checks <= SCANNED_CHECKS {
            return self.vendor.iter().any(|o| {
                o.span.end == span.end
                    && (lo..=hi).contains(&o.span.start)
                    && o.span.member == span.member
                    && may_cover(o)
            });
        }
        let index = self.index.get_or_init(|| {
            let mut index: EarliestStarts<&Email> =
                FastMap::with_capacity_and_hasher(self.vendor.len(), Default::default());
            for o in self
                .vendor
                .iter()
                .filter(|o| o.span.end > self.now && may_cover(o))
            {
                index
                    .entry((&o.span.member, o.span.end))
                    .or_default()
                    .push(o.span.start);
            }
            index
        });
        index
            .get(&(&span.member, span.end))
            .is_some_and(|starts| starts.iter().any(|s| (lo..=hi).contains(s)))
    }

    fn keep(&self, span: &Span) {
        self.kept
            .borrow_mut()
            .entry((span.member.clone(), span.end))
            .or_default()
            .push(span.start);
    }

    /// Removes `o` from `[from, self.to)`, keeping its parts outside. Where the vendor updates in
    /// place, an edited override of ours keeps its id and the ledger keeps believing its span (R3).
    /// Where it cannot, a person cannot edit an override either, so an edited copy of ours is only
    /// the vendor's own doing: it is replaced like a foreign one and leaves the ledger.
    fn clear(
        &self,
        o: &Override,
        from: DateTime<Utc>,
        reason: Option<Reason>,
        ops: &mut Vec<PlannedOperation>,
    ) {
        let (now, to, caps) = (self.now, self.to, self.caps);
        let member = &o.span.member;
        let left = (o.span.start < from).then(|| Span::new(o.span.start, from, member.clone()));
        let right = (o.span.end > to).then(|| Span::new(to, o.span.end, member.clone()));
        let start = o.span.start.max(from);
        let mark = (self.mark_limit)(start, o.span.end.min(to));
        let reason = reason.unwrap_or(match (&left, &right) {
            (Some(_), _) => Reason::CutAtFreshStart,
            (None, Some(_)) => Reason::TrimAtHorizonEnd,
            (None, None) => Reason::ForeignInFreshRegion,
        });
        let remainder = |span: Span, ops: &mut Vec<PlannedOperation>| {
            if span.start < span.end && span.end > now && !self.covered(o, &span) {
                self.keep(&span);
                ops.push(PlannedOperation {
                    action: Action::Create {
                        span,
                        id: None,
                        owned: false,
                        keeps_part_of: Some(o.id.clone()),
                    },
                    reason: Reason::KeepForeignRemainder,
                    mark_limit: mark,
                });
            }
        };
        let running = o.span.start < now;
        let removal = if caps.update_in_place {
            // The left part stays in place (it lies before the fresh region: R3); otherwise the right
            // one does, unless someone already covers it. A second part is re-created.
            let keep = match (left, right) {
                (Some(l), r) => {
                    if let Some(r) = r {
                        remainder(r, ops);
                    }
                    Some(l)
                }
                (None, Some(r)) if !self.covered(o, &r) => Some(r),
                (None, _) => None,
            };
            match keep {
                Some(to) => {
                    self.keep(&to);
                    if running && to.end == now && caps.delete_truncates_running {
                        truncate(o, now, false, caps)
                    } else {
                        Action::Update {
                            id: o.id.clone(),
                            from: o.span.clone(),
                            to,
                            owned: false,
                        }
                    }
                }
                None => Action::Delete {
                    target: o.clone(),
                    owned: false,
                },
            }
        } else {
            // Delete (which truncates a running override at now) and re-create the parts that stay.
            if let Some(l) = left {
                remainder(Span::new(l.start.max(now), l.end, l.member), ops);
            }
            if let Some(r) = right {
                remainder(r, ops);
            }
            let ours = reason == Reason::TrimEditedOurs;
            if running {
                truncate(o, now, ours, caps)
            } else {
                Action::Delete {
                    target: o.clone(),
                    owned: ours,
                }
            }
        };
        ops.push(PlannedOperation {
            action: removal,
            reason,
            mark_limit: mark,
        });
    }
}
