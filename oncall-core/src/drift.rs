//! Drift (DESIGN §8): what people changed in the vendor, set against the host's rota, and the
//! host-side edits that would take those changes in.
//!
//! Every plan ([`crate::Plan::drift`]) reports, for each of the host's shifts of the
//! destination's role in `[now, E)`, where the vendor shows someone else than the host planned
//! because of a person:
//!
//! - **someone's override** over the shift, naming another member (a person covering, a swap made
//!   in the vendor, another tool's override), or anyone over a shift whose role the host left
//!   empty ([`Drift::planned`] is `None`: the sync removes it in the fresh region, and the record
//!   proposes the person as the shift's assignee);
//! - **one of ours, deleted** in the vendor, where no override covers the shift any more (the
//!   vendor's own rotation shows);
//! - **one of ours, edited** in the vendor (moved, shortened, stretched, given to someone else).
//!
//! One record per shift and per who the vendor shows there instead ([`Drift::shown`]; nobody when
//! ours is gone). Its id is a hash of the destination, the shift's end, the planned member and the
//! shown one, so the same difference has the same id on every sync while it lasts, however its
//! stretches change (a later sync cutting part of it, `now` moving through it, the person moving
//! their override within the shift).
//!
//! **Why per shift, not per override.** One person's override across two shifts (covering the end
//! of Ann's and the start of Bob's) is two records with two ids. The host's rota, its edits and so
//! the proposals are per shift, and so is what a host decides: it may take Bob's shift over to the
//! person and not Ann's, and accepts records one by one ([`accept_drift`] takes any selection; the
//! CLI's `drift --accept ID...`). Each record is one difference for its whole life (DESIGN §8:
//! "each person's change reported while it lasts, under one id": the change as it touches one
//! shift), and both name the same override in [`Drift::changes`], by which a host that wants to
//! show "one change" groups them.
//!
//! Each stretch says what the plan does about it ([`DriftFate`]): in protect mode a person's change
//! before the mark stands (R3); after the mark, and everywhere in authoritative and manual mode, the
//! plan reverts it (R2), so the record is also the record of a person's override we removed.
//!
//! Where the change covers a whole shift, the record proposes the host-side edit that takes it
//! into the host's rota ([`Proposal`]): the shift's assignee replaced, or two shifts swapped where
//! two such changes mirror each other. Accepting proposals ([`accept_drift`], record by record) is
//! the bidirectional mode: the next sync then finds the vendor already showing the host's rota
//! there. A change that covers part of a shift proposes nothing: the host's rota has no edit that
//! splits a shift.

use std::fmt;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use crate::error::ValidationError;
use crate::model::{Email, RoleIndex, Schedule};
use crate::plan::{Override, Span};
use crate::stable_hash::Fnv64;
use crate::state::DestinationId;

/// A drift record's id: the same difference (destination, shift, planned and shown member) has the
/// same id on every sync while it lasts, so a host can show it once.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(transparent)]
pub struct DriftId(pub String);

impl DriftId {
    /// The id of the difference where the host planned `planned` (nobody: `None`) in the shift
    /// ending at `shift_end` of `destination`, and the vendor shows `shown` (nobody: `None`).
    ///
    /// ```
    /// use chrono::{TimeZone, Utc};
    /// use oncall_core::{DestinationId, DriftId, Email};
    /// let d = DestinationId("ops-primary".into());
    /// let end = Utc.with_ymd_and_hms(2024, 3, 11, 9, 0, 0).unwrap();
    /// let (ann, bob) = (Email::parse("ann@x.io").unwrap(), Email::parse("bob@x.io").unwrap());
    /// let id = DriftId::of(&d, end, Some(&ann), Some(&bob));
    /// assert_eq!(id, DriftId::of(&d, end, Some(&ann), Some(&bob)));
    /// assert_ne!(id, DriftId::of(&d, end, Some(&ann), None));
    /// assert_ne!(id, DriftId::of(&d, end, None, Some(&bob)), "an empty role");
    /// assert!(id.0.starts_with("drift-"));
    /// ```
    pub fn of(
        destination: &DestinationId,
        shift_end: DateTime<Utc>,
        planned: Option<&Email>,
        shown: Option<&Email>,
    ) -> DriftId {
        let mut h = Fnv64::new();
        // Each part is followed by a zero byte (none of them holds one), so no two inputs run
        // together into the same bytes.
        h.feed(destination.0.as_bytes());
        h.feed(&[0]);
        h.feed(&shift_end.timestamp().to_be_bytes());
        h.feed(&[0]);
        // Nobody planned (an empty role) is the empty string, which no email is: the ids of
        // assigned shifts are what they were before empty roles had drift.
        h.feed(planned.map_or(&b""[..], |e| e.as_str().as_bytes()));
        h.feed(&[0]);
        match shown {
            Some(e) => {
                h.feed(b"+");
                h.feed(e.as_str().as_bytes());
            }
            None => h.feed(b"-"),
        }
        DriftId(format!("drift-{:016x}", h.finish()))
    }
}

impl fmt::Display for DriftId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// What a person did in the vendor.
#[non_exhaustive]
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum PersonChange {
    /// An override that is not ours: a person's, a script's, another tool's.
    Override {
        /// The override, as the vendor holds it.
        target: Override,
    },
    /// One of ours, changed in the vendor (where overrides can be changed in place).
    EditedOurs {
        /// Ours, as the ledger wrote it.
        ours: Override,
        /// What the vendor holds under its id now.
        now: Span,
    },
    /// One of ours, gone from the vendor.
    DeletedOurs {
        /// Ours, as the ledger wrote it.
        ours: Override,
    },
}

/// What the plan does about a stretch of drift.
#[non_exhaustive]
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum DriftFate {
    /// Left as the person made it: a last-minute change before the mark, in protect mode (R3).
    Stands,
    /// Undone by the plan: the vendor is made to show the host's rota there (R2 after the mark; all
    /// of `[now, E)` in authoritative and manual mode). In a dry run or a manual plan, it would be.
    Reverted,
}

/// A stretch of a drift record, clipped at now, and what the plan does about it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DriftStretch {
    /// First instant.
    pub start: DateTime<Utc>,
    /// First instant after.
    pub end: DateTime<Utc>,
    /// Whether it stands or the plan reverts it.
    pub fate: DriftFate,
}

/// A host-side edit that would take a person's change in the vendor into the host's rota: one of
/// the edits [`Schedule`] has ([`Schedule::replace_assignee`], [`Schedule::swap_assignees`]).
#[non_exhaustive]
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Proposal {
    /// The shift starting at `shift_start` gets `to` instead of `from` (nobody: `None`, the
    /// vendor's own rotation).
    ReplaceAssignee {
        /// The role.
        role: RoleIndex,
        /// The shift's start, as the host has it.
        shift_start: DateTime<Utc>,
        /// Its assignee in the host now.
        from: Option<Email>,
        /// Its assignee once accepted.
        to: Option<Email>,
    },
    /// The shifts starting at `a` (assigned `a_assignee`) and `b` (assigned `b_assignee`) swap
    /// assignees: two mirrored changes in the vendor, proposed as one edit on both records.
    SwapAssignees {
        /// The role.
        role: RoleIndex,
        /// The earlier shift's start.
        a: DateTime<Utc>,
        /// Its assignee in the host now.
        a_assignee: Email,
        /// The later shift's start.
        b: DateTime<Utc>,
        /// Its assignee in the host now.
        b_assignee: Email,
    },
}

/// One assignee change a proposal makes: the shift starting at `shift_start` goes from `from` to
/// `to` in `role`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AssigneeEdit {
    /// The role.
    pub role: RoleIndex,
    /// The shift's start.
    pub shift_start: DateTime<Utc>,
    /// The assignee the host has.
    pub from: Option<Email>,
    /// The assignee it gets.
    pub to: Option<Email>,
}

impl Proposal {
    /// The assignee changes this proposal makes, in shift order.
    pub fn edits(&self) -> Vec<AssigneeEdit> {
        match self {
            Proposal::ReplaceAssignee {
                role,
                shift_start,
                from,
                to,
            } => vec![AssigneeEdit {
                role: *role,
                shift_start: *shift_start,
                from: from.clone(),
                to: to.clone(),
            }],
            Proposal::SwapAssignees {
                role,
                a,
                a_assignee,
                b,
                b_assignee,
            } => vec![
                AssigneeEdit {
                    role: *role,
                    shift_start: *a,
                    from: Some(a_assignee.clone()),
                    to: Some(b_assignee.clone()),
                },
                AssigneeEdit {
                    role: *role,
                    shift_start: *b,
                    from: Some(b_assignee.clone()),
                    to: Some(a_assignee.clone()),
                },
            ],
        }
    }
}

impl fmt::Display for Proposal {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let t = |t: &DateTime<Utc>| t.format("%Y-%m-%d %H:%M:%SZ").to_string();
        let who = |e: &Option<Email>| e.as_ref().map_or("nobody".to_owned(), Email::to_string);
        match self {
            Proposal::ReplaceAssignee {
                shift_start,
                from,
                to,
                ..
            } => write!(
                f,
                "replace {} by {} in the shift from {}",
                who(from),
                who(to),
                t(shift_start)
            ),
            Proposal::SwapAssignees {
                a,
                a_assignee,
                b,
                b_assignee,
                ..
            } => write!(
                f,
                "swap the shifts from {} ({a_assignee}) and {} ({b_assignee})",
                t(a),
                t(b)
            ),
        }
    }
}

/// A difference, in one of the host's shifts, between who the host planned and who the vendor
/// shows because of a person (see the [module docs](self)).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Drift {
    /// Stable across syncs while the difference lasts.
    pub id: DriftId,
    /// The role the destination exports.
    pub role: RoleIndex,
    /// The shift's start, as the host has it (before clipping at now).
    pub shift_start: DateTime<Utc>,
    /// The shift's end.
    pub shift_end: DateTime<Utc>,
    /// Who the host planned there: nobody (`None`) where the shift's role is empty, and a
    /// person's override puts someone on call there.
    pub planned: Option<Email>,
    /// Who the person's change puts on call instead: someone's override names them; `None` where
    /// ours is gone and no override covers (the vendor's own rotation shows).
    pub shown: Option<Email>,
    /// What people did that makes the difference.
    pub changes: Vec<PersonChange>,
    /// Where, clipped at now, sorted, and what the plan does about each stretch.
    pub stretches: Vec<DriftStretch>,
    /// The host-side edit that would take the change in, where the change covers whole shifts.
    pub proposal: Option<Proposal>,
}

impl Drift {
    /// Whether any stretch stands after the plan (the person's change survives it).
    pub fn stands(&self) -> bool {
        self.stretches.iter().any(|s| s.fate == DriftFate::Stands)
    }
}

impl fmt::Display for Drift {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let t = |t: &DateTime<Utc>| t.format("%Y-%m-%d %H:%M:%SZ").to_string();
        let shown = self.shown.as_ref().map_or_else(
            || "nobody of ours (the vendor's rotation)".to_owned(),
            Email::to_string,
        );
        let planned = self
            .planned
            .as_ref()
            .map_or_else(|| "nobody".to_owned(), Email::to_string);
        write!(
            f,
            "{}: shift {} → {} planned {planned}, the vendor shows {shown}:",
            self.id,
            t(&self.shift_start),
            t(&self.shift_end),
        )?;
        for s in &self.stretches {
            let fate = match s.fate {
                DriftFate::Stands => "stands",
                DriftFate::Reverted => "reverted",
            };
            write!(f, " {} → {} ({fate})", t(&s.start), t(&s.end))?;
        }
        match &self.proposal {
            Some(p) => write!(f, "; proposal: {p}"),
            None => write!(f, "; no proposal (part of a shift)"),
        }
    }
}

/// Why a proposal could not be accepted. The shifts it would edit were left as they were.
#[non_exhaustive]
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum AcceptError {
    /// The host's rota changed since the drift was read: a shift no longer has the assignee the
    /// proposal expects (nor the one it proposes).
    #[error(
        "the shift from {shift_start} has {found} in role {role}, where the proposal expects {expected}: \
         the rota changed since the drift was read; sync again"
    )]
    Stale {
        /// The role.
        role: RoleIndex,
        /// The shift.
        shift_start: DateTime<Utc>,
        /// Who the proposal expects there.
        expected: String,
        /// Who is there.
        found: String,
    },
    /// Another proposal among those given edits the same shift differently (two people's
    /// overrides over one shift, seen from two destinations): neither is taken.
    #[error("two proposals change the shift from {shift_start} in role {role} differently")]
    Conflicting {
        /// The role.
        role: RoleIndex,
        /// The shift.
        shift_start: DateTime<Utc>,
    },
    /// The schedule refused an edit: no such shift or role, or a member it does not have (a cover
    /// by someone outside the host's roster: add them to the schedule's members first).
    #[error("{0}")]
    Invalid(#[from] ValidationError),
}

/// A proposal that could not be accepted, the records that made it, and why.
#[derive(Debug, Clone, PartialEq)]
pub struct NotAccepted {
    /// The records proposing it (two for a swap).
    pub records: Vec<DriftId>,
    /// The proposal.
    pub proposal: Proposal,
    /// Why.
    pub reason: AcceptError,
}

/// What accepting proposals did.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Accepted {
    /// The proposals applied, each once, in order.
    pub applied: Vec<Proposal>,
    /// Proposals the rota already held (accepted before).
    pub already: Vec<Proposal>,
    /// Records without a proposal (changes to part of a shift), left alone.
    pub without_proposal: usize,
    /// Proposals that could not be taken, each with its typed reason; the others were applied.
    pub not_accepted: Vec<NotAccepted>,
}

/// Accepts the proposals of `drift` into `schedule` (the bidirectional mode), record by record:
/// pass the records the host chose (all of a report's, or some by [`Drift::id`]). Each distinct
/// proposal is taken once, whole (both shifts of a swap, or neither), or not at all: one whose
/// shift no longer has the expected assignee ([`AcceptError::Stale`]), that names someone the
/// schedule does not have ([`AcceptError::Invalid`]), or that edits a shift another given proposal
/// edits differently ([`AcceptError::Conflicting`]) is listed in [`Accepted::not_accepted`], and
/// the rest are applied. A proposal the rota already holds is skipped.
///
/// ```
/// use chrono::{TimeZone, Utc};
/// use oncall_core::{accept_drift, AcceptError, Drift, DriftId, Email, Member, Proposal, RoleIndex, Schedule, ScheduleId, Shift};
/// let t = |d| Utc.with_ymd_and_hms(2024, 3, d, 9, 0, 0).unwrap();
/// let e = |n: &str| Email::parse(&format!("{n}@x.io")).unwrap();
/// let members = vec![Member::new(e("ann"), "Ann"), Member::new(e("bob"), "Bob")];
/// let shifts = vec![
///     Shift::new(t(4), t(5), vec![Some(e("ann"))]),
///     Shift::new(t(5), t(6), vec![Some(e("bob"))]),
///     Shift::new(t(6), t(7), vec![Some(e("ann"))]),
/// ];
/// let mut host = Schedule::new(ScheduleId("h".into()), chrono_tz::UTC, vec!["primary".into()], members, shifts).unwrap();
/// let swap = Proposal::SwapAssignees {
///     role: RoleIndex::PRIMARY, a: t(4), a_assignee: e("ann"), b: t(5), b_assignee: e("bob"),
/// };
/// let cover = Proposal::ReplaceAssignee {
///     role: RoleIndex::PRIMARY, shift_start: t(6), from: Some(e("ann")), to: Some(e("mgr")),
/// };
/// // A swap made in the vendor comes back as two records proposing the same swap; a manager
/// // outside the roster covered day 6.
/// let record = |start, planned: &str, shown: &str, proposal: &Proposal| Drift {
///     id: DriftId(format!("drift-{start}")), role: RoleIndex::PRIMARY,
///     shift_start: t(start), shift_end: t(start + 1), planned: Some(e(planned)), shown: Some(e(shown)),
///     changes: Vec::new(), stretches: Vec::new(), proposal: Some(proposal.clone()),
/// };
/// let drift = [record(4, "ann", "bob", &swap), record(5, "bob", "ann", &swap), record(6, "ann", "mgr", &cover)];
/// let accepted = accept_drift(&mut host, &drift);
/// assert_eq!(accepted.applied, [swap], "applied once");
/// assert_eq!(host.shifts()[0].assignees[0].as_ref(), Some(&e("bob")));
/// assert_eq!(host.shifts()[1].assignees[0].as_ref(), Some(&e("ann")));
/// let [refused] = accepted.not_accepted.as_slice() else { panic!() };
/// assert_eq!(refused.records, [DriftId("drift-6".into())]);
/// assert!(matches!(refused.reason, AcceptError::Invalid(_)), "mgr is not a member");
/// ```
pub fn accept_drift(schedule: &mut Schedule, drift: &[Drift]) -> Accepted {
    let mut accepted = Accepted::default();
    let mut proposals: Vec<(&Proposal, Vec<DriftId>)> = Vec::new();
    for record in drift {
        match &record.proposal {
            Some(p) => match proposals.iter_mut().find(|(q, _)| *q == p) {
                Some((_, ids)) => ids.push(record.id.clone()),
                None => proposals.push((p, vec![record.id.clone()])),
            },
            None => accepted.without_proposal += 1,
        }
    }
    let conflicts = conflicting_shifts(proposals.iter().map(|(p, _)| *p));
    for (proposal, records) in proposals {
        let refuse = |reason| NotAccepted {
            records: records.clone(),
            proposal: proposal.clone(),
            reason,
        };
        let edits = proposal.edits();
        if let Some(edit) = edits
            .iter()
            .find(|e| conflicts.contains(&(e.role, e.shift_start)))
        {
            accepted.not_accepted.push(refuse(AcceptError::Conflicting {
                role: edit.role,
                shift_start: edit.shift_start,
            }));
            continue;
        }
        match accept_one(schedule, &edits) {
            Ok(true) => accepted.applied.push(proposal.clone()),
            Ok(false) => accepted.already.push(proposal.clone()),
            Err(reason) => accepted.not_accepted.push(refuse(reason)),
        }
    }
    accepted
}

/// The shifts (role, start) that two of `proposals` edit to different assignees.
fn conflicting_shifts<'a>(
    proposals: impl Iterator<Item = &'a Proposal>,
) -> Vec<(RoleIndex, DateTime<Utc>)> {
    let mut to: std::collections::BTreeMap<(RoleIndex, DateTime<Utc>), Option<Email>> =
        std::collections::BTreeMap::new();
    let mut conflicts = Vec::new();
    for edit in proposals.flat_map(Proposal::edits) {
        let key = (edit.role, edit.shift_start);
        match to.get(&key) {
            Some(other) if *other != edit.to => conflicts.push(key),
            Some(_) => {}
            None => {
                to.insert(key, edit.to);
            }
        }
    }
    conflicts
}

/// Makes one proposal's edits, all or none: `Ok(false)` when the rota holds them already.
fn accept_one(schedule: &mut Schedule, edits: &[AssigneeEdit]) -> Result<bool, AcceptError> {
    let mut todo = Vec::new();
    for edit in edits {
        let current = assignee(schedule, edit.role, edit.shift_start)?;
        if current == edit.to.as_ref() {
            continue;
        }
        if current != edit.from.as_ref() {
            let who = |e: Option<&Email>| e.map_or("nobody".to_owned(), Email::to_string);
            return Err(AcceptError::Stale {
                role: edit.role,
                shift_start: edit.shift_start,
                expected: who(edit.from.as_ref()),
                found: who(current),
            });
        }
        todo.push(edit);
    }
    if todo.is_empty() {
        return Ok(false);
    }
    let mut edited = schedule.clone();
    for edit in todo {
        edited.replace_assignee(edit.role, edit.shift_start, edit.to.clone())?;
    }
    *schedule = edited;
    Ok(true)
}

/// The assignee of `role` in the shift starting at `start`.
fn assignee(
    schedule: &Schedule,
    role: RoleIndex,
    start: DateTime<Utc>,
) -> Result<Option<&Email>, ValidationError> {
    if role.0 >= schedule.roles().len() {
        return Err(ValidationError::NoSuchRole {
            role: role.0,
            roles: schedule.roles().len(),
        });
    }
    let shifts = schedule.shifts();
    let i = shifts
        .binary_search_by(|s| s.start.cmp(&start))
        .map_err(|_| ValidationError::NoSuchShift { start })?;
    Ok(shifts[i].assignee(role))
}
