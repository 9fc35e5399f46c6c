//! The planner's last phase: drift (DESIGN §8), read off what the earlier phases found (which
//! overrides are ours, which a person's, which of ours are gone or edited) and off the plan's own
//! steps (what it reverts). It decides nothing that is written.

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};

use super::planner::Frame;
use super::{Action, Override, OverrideId, PlannedOperation, Span};
use crate::drift::{Drift, DriftFate, DriftId, DriftStretch, PersonChange, Proposal};
use crate::fast_hash::FastMap;
use crate::model::{Email, RoleIndex};

/// A half-open stretch of time.
type Stretch = (DateTime<Utc>, DateTime<Utc>);

/// An override that is a person's doing, as the vendor holds it.
pub(super) struct Someones<'a> {
    /// The override as the vendor holds it.
    pub(super) held: &'a Override,
    /// For a copy of ours a person edited: the ledger entry.
    pub(super) ours: Option<&'a Override>,
    /// Where the vendor shows an override of ours instead: ours written after this one, over it
    /// ([`crate::DestinationState::written_over`]; the last created wins).
    pub(super) hidden_by_ours: Vec<Stretch>,
}

impl Someones<'_> {
    /// Where the vendor shows this override: its span, less where a newer one of ours covers it.
    fn shown(&self) -> Vec<Stretch> {
        let whole = [(self.held.span.start, self.held.span.end)];
        if self.hidden_by_ours.is_empty() {
            return whole.to_vec();
        }
        subtract(&whole, &union(self.hidden_by_ours.clone()))
    }
}

impl Someones<'_> {
    fn change(&self) -> PersonChange {
        match self.ours {
            Some(ours) => PersonChange::EditedOurs {
                ours: ours.clone(),
                now: self.held.span.clone(),
            },
            None => PersonChange::Override {
                target: self.held.clone(),
            },
        }
    }
}

/// What the earlier phases found people did.
pub(super) struct People<'a> {
    /// Overrides that are a person's doing: everything not ours, and copies of ours a person
    /// edited.
    pub(super) overrides: Vec<Someones<'a>>,
    /// Desired span (by index) → the change to the ledger entry that serves it: deleted, or
    /// edited away from it.
    pub(super) lost: Vec<(usize, PersonChange)>,
}

/// One of the host's shifts in `[now, E)`, clipped at now: an assigned one (a desired span) or
/// one whose role has nobody.
struct Slot<'a> {
    start: DateTime<Utc>,
    end: DateTime<Utc>,
    /// Its start as the host has it.
    shift_start: DateTime<Utc>,
    /// Who the host planned there (nobody: the role is empty).
    planned: Option<&'a Email>,
}

/// The host's shifts in `[now, E)`, sorted (they are disjoint), and where each desired span is
/// among them.
fn slots<'a>(frame: &'a Frame<'_>) -> (Vec<Slot<'a>>, Vec<usize>) {
    let assigned = frame
        .desired
        .iter()
        .zip(&frame.shift_starts)
        .map(|(d, &shift_start)| Slot {
            start: d.start,
            end: d.end,
            shift_start,
            planned: Some(&d.member),
        });
    let empty = frame
        .empty_shifts
        .iter()
        .map(|&((start, end), shift_start)| Slot {
            start,
            end,
            shift_start,
            planned: None,
        });
    let mut all: Vec<Slot<'a>> = assigned.chain(empty).collect();
    // Stable: desired spans keep their order among themselves.
    all.sort_by_key(|s| s.start);
    let mut of_desired = Vec::with_capacity(frame.desired.len());
    for (k, slot) in all.iter().enumerate() {
        if slot.planned.is_some() {
            of_desired.push(k);
        }
    }
    (all, of_desired)
}

/// One record in the making: a shift and who the vendor shows there instead.
struct Pending<'a> {
    /// The shift, by position among the slots.
    slot: usize,
    shown: Option<&'a Email>,
    /// The person's overrides behind it (for `shown: Some`), by position in `People::overrides`.
    people: Vec<usize>,
    /// The ledger entry's change behind it (for `shown: None`).
    lost: Vec<PersonChange>,
    stretches: Vec<Stretch>,
    /// How much of the whole shift (not clipped at now) the change covers.
    whole_shift: Vec<Stretch>,
}

/// Drift records for every shift of the host in `[now, E)`, assigned or with its role empty, in
/// shift order (nobody-shown first within a shift).
pub(super) fn detect(
    frame: &Frame<'_>,
    role: RoleIndex,
    people: People<'_>,
    vendor: &[Override],
    ops: &[PlannedOperation],
) -> Vec<Drift> {
    let (slots, of_desired) = slots(frame);
    let mut pending = covers(&slots, &people.overrides);
    pending.extend(losses(frame, &of_desired, people.lost, vendor));
    pending.sort_by(|a, b| (a.slot, a.shown).cmp(&(b.slot, b.shown)));
    let after = AfterPlan::new(ops);
    let mut proposals = propose(&slots, role, &pending);
    pair_swaps(&mut proposals);
    pending
        .into_iter()
        .map(|p| {
            let slot = &slots[p.slot];
            let stretches = fates(&p, &people.overrides, slot.planned, &after);
            let mut changes = p.lost;
            changes.extend(p.people.iter().map(|&k| people.overrides[k].change()));
            Drift {
                id: DriftId::of(frame.destination, slot.end, slot.planned, p.shown),
                role,
                shift_start: slot.shift_start,
                shift_end: slot.end,
                planned: slot.planned.cloned(),
                shown: p.shown.cloned(),
                changes,
                stretches,
                proposal: proposals.get(&p.slot).cloned(),
            }
        })
        .collect()
}

/// Someone's overrides over the host's shifts, naming another member than the host planned (or
/// anyone, where the role is empty): one pending record per shift and per member shown.
fn covers<'a>(slots: &[Slot<'_>], overrides: &'a [Someones<'a>]) -> Vec<Pending<'a>> {
    let mut found: Vec<Pending<'a>> = Vec::new();
    let mut index: FastMap<(usize, &'a Email), usize> = FastMap::default();
    for (k, someone) in overrides.iter().enumerate() {
        let o = someone.held;
        let shown = someone.shown();
        // The shifts are sorted and disjoint: their ends are sorted too.
        let first = slots.partition_point(|d| d.end <= o.span.start);
        for (i, d) in slots.iter().enumerate().skip(first) {
            if d.start >= o.span.end {
                break;
            }
            if d.planned == Some(&o.span.member) {
                continue;
            }
            let stretches: Vec<Stretch> = shown
                .iter()
                .filter_map(|&s| clip(s, (d.start, d.end)))
                .collect();
            if stretches.is_empty() {
                continue;
            }
            let whole = shown
                .iter()
                .filter_map(|&s| clip(s, (d.shift_start, d.end)));
            let at = *index.entry((i, &o.span.member)).or_insert_with(|| {
                found.push(Pending {
                    slot: i,
                    shown: Some(&o.span.member),
                    people: Vec::new(),
                    lost: Vec::new(),
                    stretches: Vec::new(),
                    whole_shift: Vec::new(),
                });
                found.len() - 1
            });
            let p = &mut found[at];
            p.people.push(k);
            p.stretches.extend(stretches);
            p.whole_shift.extend(whole);
        }
    }
    for p in &mut found {
        p.stretches = union(std::mem::take(&mut p.stretches));
        p.whole_shift = union(std::mem::take(&mut p.whole_shift));
    }
    found
}

/// Ours, deleted or edited away from a desired span: where no override at all covers that span
/// any more, the vendor's own rotation shows.
fn losses<'a>(
    frame: &Frame<'_>,
    of_desired: &[usize],
    lost: Vec<(usize, PersonChange)>,
    vendor: &[Override],
) -> Vec<Pending<'a>> {
    if lost.is_empty() {
        return Vec::new();
    }
    let covered = union(
        vendor
            .iter()
            .filter(|o| o.span.end > frame.now)
            .map(|o| (o.span.start, o.span.end))
            .collect(),
    );
    let mut pending: Vec<Pending<'a>> = Vec::new();
    // Desired span → its pending record: one look-up per lost entry, however many are lost.
    let mut index: FastMap<usize, usize> = FastMap::default();
    for (i, change) in lost {
        if let Some(&at) = index.get(&i) {
            pending[at].lost.push(change);
            continue;
        }
        let d = &frame.desired[i];
        let bare = subtract(&[(d.start, d.end)], &covered);
        if bare.is_empty() {
            continue;
        }
        index.insert(i, pending.len());
        pending.push(Pending {
            slot: of_desired[i],
            shown: None,
            people: Vec::new(),
            lost: vec![change],
            whole_shift: bare.clone(),
            stretches: bare,
        });
    }
    pending
}

/// Who the vendor shows after the plan, as far as the plan decides it: each touched override's
/// remaining span (and the parts re-created for it), and the spans the plan writes as ours.
struct AfterPlan<'a> {
    /// Override id → what remains of it (an empty list: removed).
    remains: FastMap<&'a OverrideId, Vec<&'a Span>>,
    /// Override id → its parts the plan re-creates.
    kept_parts: FastMap<&'a OverrideId, Vec<&'a Span>>,
    /// Cut ends: override id → where the plan cuts it.
    cuts: FastMap<&'a OverrideId, DateTime<Utc>>,
    /// Per member, where the plan writes them as ours (sorted, disjoint once built).
    ours: FastMap<&'a Email, Vec<Stretch>>,
    /// Where the plan creates overrides of ours, whoever for (sorted, disjoint once built): they
    /// are newer than everything the vendor holds, so it shows them there.
    created: Vec<Stretch>,
}

impl<'a> AfterPlan<'a> {
    fn new(ops: &'a [PlannedOperation]) -> AfterPlan<'a> {
        let mut after = AfterPlan {
            remains: FastMap::default(),
            kept_parts: FastMap::default(),
            cuts: FastMap::default(),
            ours: FastMap::default(),
            created: Vec::new(),
        };
        for op in ops {
            match &op.action {
                Action::Create {
                    span,
                    owned,
                    keeps_part_of,
                    ..
                } => {
                    if *owned {
                        after.write(span);
                        after.created.push((span.start, span.end));
                    }
                    if let Some(id) = keeps_part_of {
                        after.kept_parts.entry(id).or_default().push(span);
                    }
                }
                Action::Update { id, to, owned, .. } => {
                    after.remains.insert(id, vec![to]);
                    if *owned {
                        after.write(to);
                    }
                }
                Action::Delete { target, .. } => {
                    after.remains.insert(&target.id, Vec::new());
                }
                Action::Truncate { target, at, .. } => {
                    after.remains.insert(&target.id, Vec::new());
                    after.cuts.insert(&target.id, *at);
                }
                Action::Adopt { .. } | Action::Forget { .. } => {}
            }
        }
        for stretches in after.ours.values_mut() {
            *stretches = union(std::mem::take(stretches));
        }
        after.created = union(std::mem::take(&mut after.created));
        after
    }

    fn write(&mut self, span: &'a Span) {
        self.ours
            .entry(&span.member)
            .or_default()
            .push((span.start, span.end));
    }

    /// Where override `o` still shows its own member after the plan.
    fn still_shown(&self, o: &Override) -> Vec<Stretch> {
        let member = &o.span.member;
        let mut spans: Vec<Stretch> = match self.remains.get(&o.id) {
            None => vec![(o.span.start, o.span.end)],
            Some(rest) => rest
                .iter()
                .filter(|s| s.member == *member)
                .map(|s| (s.start, s.end))
                .collect(),
        };
        if let Some(at) = self.cuts.get(&o.id) {
            spans.push((o.span.start, *at));
        }
        spans.extend(
            self.kept_parts
                .get(&o.id)
                .into_iter()
                .flatten()
                .filter(|s| s.member == *member)
                .map(|s| (s.start, s.end)),
        );
        union(spans)
    }

    /// Where the plan writes `member` as ours.
    fn written(&self, member: &Email) -> &[Stretch] {
        self.ours.get(member).map_or(&[], Vec::as_slice)
    }
}

/// Splits a pending record's stretches into what stands and what the plan reverts.
fn fates(
    p: &Pending<'_>,
    people: &[Someones<'_>],
    planned: Option<&Email>,
    after: &AfterPlan<'_>,
) -> Vec<DriftStretch> {
    let standing = match &p.shown {
        Some(_) => {
            let still = p
                .people
                .iter()
                .flat_map(|&k| after.still_shown(people[k].held))
                .collect();
            // What the plan creates over it is newer: the vendor shows ours there.
            subtract(&intersect(&p.stretches, &union(still)), &after.created)
        }
        None => subtract(&p.stretches, planned.map_or(&[], |m| after.written(m))),
    };
    let reverted = subtract(&p.stretches, &standing);
    let mut out: Vec<DriftStretch> = standing
        .into_iter()
        .map(|(start, end)| DriftStretch {
            start,
            end,
            fate: DriftFate::Stands,
        })
        .chain(reverted.into_iter().map(|(start, end)| DriftStretch {
            start,
            end,
            fate: DriftFate::Reverted,
        }))
        .collect();
    out.sort_by_key(|s| s.start);
    out
}

/// Per desired span with drift, the edit that takes a change covering the whole shift into the
/// host's rota: the only record of that shift, covering it from the shift's start (a shift in
/// progress only when a person's override covers its past too: who was on call then is otherwise
/// unknown) to its end.
fn propose(
    slots: &[Slot<'_>],
    role: RoleIndex,
    pending: &[Pending<'_>],
) -> BTreeMap<usize, Proposal> {
    let mut proposals = BTreeMap::new();
    let mut i = 0;
    while i < pending.len() {
        let d = pending[i].slot;
        let j = pending[i..]
            .iter()
            .position(|p| p.slot != d)
            .map_or(pending.len(), |n| i + n);
        let only = &pending[i..j];
        i = j;
        let [p] = only else { continue };
        let slot = &slots[d];
        let whole = (slot.shift_start, slot.end);
        if p.whole_shift != [whole] {
            continue;
        }
        proposals.insert(
            d,
            Proposal::ReplaceAssignee {
                role,
                shift_start: whole.0,
                from: slot.planned.cloned(),
                to: p.shown.cloned(),
            },
        );
    }
    proposals
}

/// Two replacements that mirror each other (one shift from A to B, a later one from B to A) are
/// one swap made in the vendor: both records propose it, and accepting it once takes both in.
fn pair_swaps(proposals: &mut BTreeMap<usize, Proposal>) {
    let keys: Vec<usize> = proposals.keys().copied().collect();
    let mut paired = vec![false; keys.len()];
    for x in 0..keys.len() {
        if paired[x] {
            continue;
        }
        let Some(Proposal::ReplaceAssignee {
            role,
            shift_start: a,
            from: Some(a_assignee),
            to: Some(b_assignee),
        }) = proposals.get(&keys[x]).cloned()
        else {
            continue;
        };
        let mirror = (x + 1..keys.len()).find(|&y| {
            !paired[y]
                && matches!(
                    proposals.get(&keys[y]),
                    Some(Proposal::ReplaceAssignee { from: Some(f), to: Some(t), .. })
                        if *f == b_assignee && *t == a_assignee
                )
        });
        let Some(y) = mirror else { continue };
        let Some(Proposal::ReplaceAssignee { shift_start: b, .. }) = proposals.get(&keys[y]) else {
            continue;
        };
        let swap = Proposal::SwapAssignees {
            role,
            a,
            a_assignee,
            b: *b,
            b_assignee,
        };
        paired[x] = true;
        paired[y] = true;
        proposals.insert(keys[x], swap.clone());
        proposals.insert(keys[y], swap);
    }
}

fn clip(a: Stretch, b: Stretch) -> Option<Stretch> {
    let (s, e) = (a.0.max(b.0), a.1.min(b.1));
    (s < e).then_some((s, e))
}

/// Sorted, disjoint, with touching stretches joined.
fn union(mut stretches: Vec<Stretch>) -> Vec<Stretch> {
    stretches.retain(|(s, e)| s < e);
    stretches.sort();
    let mut out: Vec<Stretch> = Vec::with_capacity(stretches.len());
    for (s, e) in stretches {
        match out.last_mut() {
            Some(last) if s <= last.1 => last.1 = last.1.max(e),
            _ => out.push((s, e)),
        }
    }
    out
}

/// `a` minus `b`, both sorted and disjoint.
fn subtract(a: &[Stretch], b: &[Stretch]) -> Vec<Stretch> {
    let mut out = Vec::new();
    for &(mut s, e) in a {
        let first = b.partition_point(|x| x.1 <= s);
        for &(bs, be) in &b[first..] {
            if bs >= e {
                break;
            }
            if bs > s {
                out.push((s, bs));
            }
            s = s.max(be);
            if s >= e {
                break;
            }
        }
        if s < e {
            out.push((s, e));
        }
    }
    out
}

/// `a` within `b`, both sorted and disjoint.
fn intersect(a: &[Stretch], b: &[Stretch]) -> Vec<Stretch> {
    subtract(a, &subtract(a, b))
}

#[cfg(test)]
mod tests {
    use chrono::TimeZone;

    use super::*;

    fn h(hour: u32) -> DateTime<Utc> {
        Utc.with_ymd_and_hms(2024, 1, 1, hour, 0, 0).unwrap()
    }

    #[test]
    fn stretch_arithmetic() {
        assert_eq!(
            union(vec![(h(5), h(7)), (h(1), h(3)), (h(3), h(4)), (h(6), h(9))]),
            [(h(1), h(4)), (h(5), h(9))]
        );
        assert_eq!(
            subtract(
                &[(h(1), h(10))],
                &[(h(0), h(2)), (h(4), h(5)), (h(9), h(12))]
            ),
            [(h(2), h(4)), (h(5), h(9))]
        );
        assert_eq!(subtract(&[(h(1), h(2))], &[(h(1), h(2))]), []);
        assert_eq!(
            intersect(&[(h(1), h(5)), (h(6), h(8))], &[(h(4), h(7))]),
            [(h(4), h(5)), (h(6), h(7))]
        );
    }
}
