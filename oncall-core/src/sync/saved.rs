//! Saved plans (DESIGN §8, manual mode): a plan written to a file a person reads, applied later
//! only while what it was planned against still holds.

use std::fmt;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use super::Destination;
use crate::error::ValidationError;
use crate::model::Window;
use crate::plan::{Desired, Override, OverrideId, Plan, PlannedOperation, Span};
use crate::stable_hash::Fnv128;
use crate::state::DestinationState;

/// The `format` every saved plan of this release carries; [`crate::apply_plan`] refuses others.
/// (v2: the state is named by a digest of what it holds, no longer by its version.)
pub const SAVED_PLAN_FORMAT: &str = "oncall-sync saved plan v2";

/// A stable digest of vendor overrides: the same overrides (ids, spans and members), in any order,
/// give the same digest, in every release and on every platform. A saved plan keeps the digest
/// of the overrides it was planned against; applying it reads them again and compares.
///
/// ```
/// use chrono::{TimeZone, Utc};
/// use oncall_core::{Email, Override, OverrideId, Span, VendorDigest};
/// let t = |h| Utc.with_ymd_and_hms(2024, 3, 1, h, 0, 0).unwrap();
/// let ann = Email::parse("ann@example.com").unwrap();
/// let a = Override { id: OverrideId::new("P1"), span: Span::new(t(1), t(2), ann.clone()) };
/// let b = Override { id: OverrideId::new("P2"), span: Span::new(t(2), t(3), ann.clone()) };
/// assert_eq!(VendorDigest::of(&[a.clone(), b.clone()]), VendorDigest::of(&[b.clone(), a.clone()]));
/// let moved = Override { span: Span::new(t(2), t(4), ann), ..b.clone() };
/// assert_ne!(VendorDigest::of(&[a.clone(), b]), VendorDigest::of(&[a, moved]));
/// assert!(VendorDigest::of(&[]).0.starts_with("fnv1a128:"));
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(transparent)]
pub struct VendorDigest(pub String);

impl VendorDigest {
    /// The digest of `overrides`.
    pub fn of(overrides: &[Override]) -> VendorDigest {
        let mut sorted: Vec<&Override> = overrides.iter().collect();
        sorted.sort_by(|a, b| a.id.cmp(&b.id).then_with(|| a.span.cmp(&b.span)));
        let mut h = Fnv128::new();
        h.feed(b"oncall-sync vendor overrides v1\0");
        h.feed(&(sorted.len() as u64).to_be_bytes());
        let instant = |h: &mut Fnv128, t: DateTime<Utc>| {
            h.feed(&t.timestamp().to_be_bytes());
            h.feed(&t.timestamp_subsec_nanos().to_be_bytes());
        };
        for o in sorted {
            // Ids and emails hold no zero byte: it ends each of them.
            h.feed(o.id.as_str().as_bytes());
            h.feed(&[0]);
            instant(&mut h, o.span.start);
            instant(&mut h, o.span.end);
            h.feed(o.span.member.as_str().as_bytes());
            h.feed(&[0]);
        }
        VendorDigest(format!("fnv1a128:{:032x}", h.finish()))
    }
}

impl fmt::Display for VendorDigest {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// A stable digest of what a destination's state holds that a plan depends on: the mark, the
/// ledger (ids, spans, members, in order), the instant of the last run (the planner never plans
/// before it, and tells orphans of ours by it) and the mode it was saved under. The outcome text of
/// the last run is left out: it changes no plan.
///
/// A saved plan names the state by this digest, not by the store's version: a version is also a
/// lease's fencing token (PostgreSQL raises it on every claim, whatever the claim mechanism), so
/// the claim an apply takes would otherwise outdate the plan it applies. Only a save that changes
/// what the plan read changes the digest.
///
/// ```
/// use chrono::{TimeZone, Utc};
/// use oncall_core::{DestinationState, StateDigest};
/// let state = DestinationState::default();
/// assert_eq!(StateDigest::of(&state), StateDigest::of(&state.clone()));
/// let marked = DestinationState {
///     high_water: Some(Utc.with_ymd_and_hms(2024, 3, 1, 9, 0, 0).unwrap()),
///     ..DestinationState::default()
/// };
/// assert_ne!(StateDigest::of(&state), StateDigest::of(&marked));
/// assert!(StateDigest::of(&state).0.starts_with("fnv1a128:"));
/// ```
#[derive(Debug, Clone, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(transparent)]
pub struct StateDigest(pub String);

impl StateDigest {
    /// The digest of `state`.
    pub fn of(state: &DestinationState) -> StateDigest {
        let mut h = Fnv128::new();
        h.feed(b"oncall-sync destination state v1\0");
        let instant = |h: &mut Fnv128, t: Option<DateTime<Utc>>| match t {
            Some(t) => {
                h.feed(b"+");
                h.feed(&t.timestamp().to_be_bytes());
                h.feed(&t.timestamp_subsec_nanos().to_be_bytes());
            }
            None => h.feed(b"-"),
        };
        instant(&mut h, state.high_water);
        instant(&mut h, state.last_run.as_ref().map(|r| r.at));
        h.feed(state.mode.name().as_bytes());
        h.feed(&[0]);
        h.feed(&(state.ledger.len() as u64).to_be_bytes());
        for o in &state.ledger {
            // Ids and emails hold no zero byte: it ends each of them.
            h.feed(o.id.as_str().as_bytes());
            h.feed(&[0]);
            instant(&mut h, Some(o.span.start));
            instant(&mut h, Some(o.span.end));
            h.feed(o.span.member.as_str().as_bytes());
            h.feed(&[0]);
        }
        StateDigest(format!("fnv1a128:{:032x}", h.finish()))
    }
}

impl fmt::Display for StateDigest {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// What a saved plan was planned against: it is applied only while these still hold.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Preconditions {
    /// The digest of the destination's state the plan read ([`StateDigest`]; empty in plans of
    /// an earlier format, which are refused by their format).
    #[serde(default)]
    pub state_digest: StateDigest,
    /// The digest of the vendor overrides the plan read.
    pub vendor_digest: VendorDigest,
    /// The window the overrides were listed over (`None`: nothing was read, the window was empty).
    pub read: Option<Window>,
    /// Overrides of ours looked up by id besides (vendors that update in place: a person may move
    /// ours anywhere), found or not.
    pub looked_up: Vec<OverrideId>,
    /// The first instant after the plan's at which an override it read ends. From then on a vendor
    /// that lists only overrides that have not ended (JSM Operations) no longer lists it, and the
    /// digest read again differs with nobody's hand in it: the plan is then outdated, not the
    /// vendor changed. `None` when nothing read ends after the plan's instant (and in plans saved
    /// before this field).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub first_end: Option<DateTime<Utc>>,
}

impl Preconditions {
    /// The first end after `now` among `vendor`'s overrides ([`Preconditions::first_end`]).
    pub(crate) fn first_end_after(
        vendor: &[Override],
        now: DateTime<Utc>,
    ) -> Option<DateTime<Utc>> {
        vendor
            .iter()
            .map(|o| o.span.end)
            .filter(|end| *end > now)
            .min()
    }
}

/// The host's desired spans a plan was made from, as given (not clipped at the planning instant),
/// so that applying it can plan again at its own instant and check that nothing but the instant
/// changed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SavedDesired {
    /// The spans, sorted.
    pub spans: Vec<Span>,
    /// `E`.
    pub horizon_end: DateTime<Utc>,
    /// `now + horizon`, when the host gave a horizon.
    pub vouched_until: Option<DateTime<Utc>>,
    /// The host's shifts whose role has nobody ([`Desired::empty_shifts`]).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub empty_shifts: Vec<(DateTime<Utc>, DateTime<Utc>)>,
}

impl SavedDesired {
    /// What `desired` holds.
    pub fn of(desired: &Desired) -> SavedDesired {
        SavedDesired {
            spans: desired.unclipped_spans(),
            horizon_end: desired.horizon_end(),
            vouched_until: desired.vouched(),
            empty_shifts: desired.empty_shifts().to_vec(),
        }
    }

    /// The desired spans as of `now`: validated again (the file may have been edited).
    pub fn at(&self, now: DateTime<Utc>) -> Result<Desired, ValidationError> {
        let desired = Desired::new(now, self.spans.clone(), self.horizon_end)?
            .with_empty_shifts(self.empty_shifts.clone());
        Ok(match self.vouched_until {
            Some(until) => desired.vouched_until(until),
            None => desired,
        })
    }
}

/// A plan saved to apply later (DESIGN §8): manual mode plans on every sync and applies only
/// when a person asks, with [`crate::apply_plan`]. JSON a person can read: the destination, the
/// preconditions, the plan's operations (and a line of text for each), its warnings and drift,
/// and the desired spans it was planned from.
///
/// Every planning run ([`crate::SyncMode::DryRun`], or any sync of a manual destination) offers
/// one on its report ([`crate::DestinationReport::saved_plan`]).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SavedPlan {
    /// [`SAVED_PLAN_FORMAT`].
    pub format: String,
    /// The destination planned for, as it was then (its mode included).
    pub destination: Destination,
    /// What must still hold when it is applied.
    pub preconditions: Preconditions,
    /// One line per operation, for people (ignored when the plan is read back).
    #[serde(default, skip_deserializing)]
    pub summary: Vec<String>,
    /// The plan.
    pub plan: Plan,
    /// What the host wanted.
    pub desired: SavedDesired,
}

impl SavedPlan {
    /// A saved plan of `plan`, made for `destination` from `desired`, against what `preconditions`
    /// say.
    pub fn new(
        destination: Destination,
        preconditions: Preconditions,
        desired: &Desired,
        plan: Plan,
    ) -> SavedPlan {
        let summary = plan
            .operations
            .iter()
            .map(ToString::to_string)
            .chain(plan.drift.iter().map(|d| format!("drift: {d}")))
            .collect();
        SavedPlan {
            format: SAVED_PLAN_FORMAT.to_owned(),
            destination,
            preconditions,
            summary,
            plan,
            desired: SavedDesired::of(desired),
        }
    }
}

/// The operations of `plan`, as the planner would make them at `to` if nothing but the instant
/// had changed: what was clipped at the plan's instant (a span in progress written from now, and
/// the alias of its start; a cut at now; the mark's limit there) is clipped at the new one. Spans
/// the vendor holds are left as they are.
pub(super) fn rebased(plan: &Plan, to: DateTime<Utc>) -> Vec<PlannedOperation> {
    use crate::plan::{alias_attempt, alias_for, Action};
    let from = plan.now;
    let at = |t: &mut DateTime<Utc>| {
        if *t == from {
            *t = to;
        }
    };
    // Our alias for a create starting at `from`, asked for again for one starting at `to`.
    let realias = |id: &mut Option<OverrideId>| {
        let Some(alias) = id.as_ref() else { return };
        let base = alias_for(&plan.destination, from);
        let attempt = match alias.as_str().strip_prefix(base.as_str()) {
            Some("") => Some(0),
            Some(rest) => rest.strip_prefix('-').and_then(|n| n.parse::<u32>().ok()),
            None => None,
        };
        if let Some(attempt) = attempt {
            *id = Some(alias_attempt(&plan.destination, to, attempt));
        }
    };
    plan.operations
        .iter()
        .cloned()
        .map(|mut op| {
            match &mut op.action {
                Action::Create { span, id, .. } => {
                    if span.start == from {
                        span.start = to;
                        realias(id);
                    }
                }
                Action::Update { to: span, .. } => {
                    at(&mut span.start);
                    at(&mut span.end);
                }
                Action::Truncate { at: cut, .. } => at(cut),
                Action::Delete { .. } | Action::Adopt { .. } | Action::Forget { .. } => {}
            }
            if let Some(limit) = op.mark_limit.as_mut() {
                at(limit);
            }
            op
        })
        .collect()
}
