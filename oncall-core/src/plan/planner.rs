//! The planner: one destination's export as named phases, each keeping one rule of DESIGN §3.
//!
//! [`plan_export`] reads top to bottom as the rules: sort the vendor's overrides into ours and
//! foreign, and take back ours by alias (R6); match the ledger against the desired spans (R3, R2);
//! adopt copies people moved onto a desired span and exact matches (R2, R6); change what the host
//! changed, within the scope S (R4); clear the fresh region (R2); write what is missing; warn.

use chrono::{DateTime, Utc};

use super::clearing::Clearing;
use super::drift;
use super::{
    alias_attempt, alias_for, is_alias_for, Action, Override, OverrideId, Plan, PlanInput,
    PlannedOperation, Reason, Span, Warning, ALIAS_ATTEMPTS, ALIAS_PREFIX, CLOCK_SKEW,
};
use crate::drift::PersonChange;
use crate::fast_hash::{FastMap, FastSet};
use crate::provider::Capabilities;
use crate::state::{DestinationId, DestinationMode, DestinationState};
use crate::time::whole_seconds;

/// Plans one destination's export (DESIGN §3, rules R1-R6). Pure: same input, same plan.
///
/// Runs in O((n + m) log(n + m)) for n desired spans and m vendor and ledger overrides.
pub fn plan_export(input: PlanInput<'_>) -> Plan {
    let frame = Frame::new(&input);
    let mut steps = Steps::with_capacity(frame.desired.len() + input.vendor.len());
    let vendor = sort_vendor_overrides(&frame, input.vendor, input.state);
    steps.adopt_our_aliases(&vendor.orphans);
    let ledger = LedgerIndex::new(&frame, input.state, &vendor);
    let mut matching = match_ledger(&frame, &ledger);
    let mut foreign = vendor.foreign;
    steps.adopt_moved_copies(&frame, &ledger, &mut matching);
    let adopted = steps.adopt_exact_matches(&frame, &mut matching.desired_done, &mut foreign);
    steps.change_stale_entries(&frame, &ledger, &mut matching);
    steps.clear_fresh_region(&frame, input.vendor, &ledger, &matching, &foreign, &adopted);
    steps.order();
    steps.write_missing_spans(&frame, input.vendor, &matching);
    let warnings = steps.warnings(&frame, &foreign, &adopted, input.desired.gaps());
    let people = what_people_did(&frame, &ledger, &foreign, input.state);
    let drift = drift::detect(&frame, input.role, people, input.vendor, &steps.ops);
    Plan {
        destination: frame.destination.clone(),
        now: frame.now,
        high_water: input.state.high_water,
        fresh_from: frame.fresh_from,
        horizon_end: frame.horizon_end,
        operations: steps.ops,
        warnings,
        drift,
    }
}

/// The instants and desired spans every phase plans against.
pub(super) struct Frame<'a> {
    pub(super) destination: &'a DestinationId,
    pub(super) now: DateTime<Utc>,
    /// `F = max(H, now)`: where the fresh region starts.
    pub(super) fresh_from: DateTime<Utc>,
    /// `E`: the horizon end.
    pub(super) horizon_end: DateTime<Utc>,
    /// `S`: how far the host vouches for its rota; ours wholly after it are left alone.
    scope_end: DateTime<Utc>,
    pub(super) caps: Capabilities,
    /// The desired spans that start before `E`, clipped at now (R1): sorted, with distinct starts.
    pub(super) desired: Vec<Span>,
    /// Each desired span's shift start as the host has it, before clipping.
    pub(super) shift_starts: Vec<DateTime<Utc>>,
    /// The host's shifts whose role has nobody, that start before `E` and have not ended: each
    /// clipped at now, with its start as the host has it.
    pub(super) empty_shifts: Vec<(Stretch, DateTime<Utc>)>,
}

/// A half-open stretch of time.
type Stretch = (DateTime<Utc>, DateTime<Utc>);

impl<'a> Frame<'a> {
    fn new(input: &PlanInput<'a>) -> Frame<'a> {
        let now = whole_seconds(input.now);
        let horizon_end = input.desired.horizon_end();
        let (desired, shift_starts) = input
            .desired
            .spans()
            .iter()
            .zip(input.desired.shift_starts())
            .filter(|(s, _)| s.start < horizon_end)
            .filter_map(|(s, start)| s.clipped(now).map(|c| (c, *start)))
            .unzip();
        let empty_shifts = input
            .desired
            .empty_shifts()
            .iter()
            .filter(|(start, end)| *start < horizon_end && *end > now)
            .map(|&(start, end)| ((start.max(now), end), start))
            .collect();
        Frame {
            empty_shifts,
            destination: input.destination,
            now,
            fresh_from: fresh_region_start(input.mode, input.state.high_water, now),
            horizon_end,
            scope_end: input.desired.scope_end(input.state.high_water),
            caps: input.capabilities,
            desired,
            shift_starts,
        }
    }

    fn in_fresh(&self, start: DateTime<Utc>) -> bool {
        start >= self.fresh_from
    }

    /// R6: whether an override that started before now ends within the clock skew after it: a cut
    /// that has landed (the vendor ended it at its own now, a moment after ours). It is done, and
    /// never cut again.
    fn landed_cut(&self, span: &Span) -> bool {
        span.start < self.now
            && self
                .now
                .checked_add_signed(CLOCK_SKEW)
                .is_some_and(|t| span.end <= t)
    }

    /// The desired span starting at `start`.
    fn desired_at(&self, start: DateTime<Utc>) -> Option<usize> {
        self.desired.binary_search_by(|s| s.start.cmp(&start)).ok()
    }

    /// The desired span equal to `span`.
    fn desired_equal(&self, span: &Span) -> Option<usize> {
        self.desired_at(span.start)
            .filter(|&i| self.desired[i] == *span)
    }

    /// R5: a step touching `[start, end)` that fails holds the mark at `start` when any of it lies
    /// in the fresh region, rounded down to the start of the desired span there, so the mark always
    /// sits on a shift boundary and never splits a shift between the protected and the fresh region.
    pub(super) fn mark_limit(
        &self,
        start: DateTime<Utc>,
        end: DateTime<Utc>,
    ) -> Option<DateTime<Utc>> {
        (end > self.fresh_from).then(|| {
            let i = self.desired.partition_point(|s| s.start <= start);
            match i.checked_sub(1).map(|i| &self.desired[i]) {
                Some(s) if s.end > start => s.start,
                _ => start,
            }
        })
    }
}

/// `F`, where the fresh region starts. R2: `F = max(H, now)`, or `now` before the first export; in
/// authoritative and manual mode (DESIGN §8) the host owns all of `[now, E)`, so `F = now`: every
/// later phase then treats the whole horizon as fresh (people's overrides there are cleared, our
/// edited ones restored), and the protected region `[now, F)` is empty.
fn fresh_region_start(
    mode: DestinationMode,
    high_water: Option<DateTime<Utc>>,
    now: DateTime<Utc>,
) -> DateTime<Utc> {
    match high_water {
        Some(h) if !mode.owns_whole_horizon() => h.max(now),
        _ => now,
    }
}

/// The vendor's live overrides, sorted into ours and foreign.
struct VendorView<'a> {
    /// Ledger id → position in the ledger (every entry).
    positions: FastMap<&'a OverrideId, usize>,
    /// Per ledger entry that is still live, its vendor copy.
    copies: Vec<Option<&'a Override>>,
    /// Overrides carrying our alias that the ledger lost (a create whose answer was lost).
    orphans: Vec<&'a Override>,
    /// Everything else that has not ended, with its span clipped at now.
    foreign: Vec<(Span, &'a Override)>,
}

/// R6: sorts the vendor's live overrides into copies of ledger entries, ours by alias, and foreign.
fn sort_vendor_overrides<'a>(
    frame: &Frame<'_>,
    vendor: &'a [Override],
    state: &'a DestinationState,
) -> VendorView<'a> {
    let now = frame.now;
    let last_run = state.last_run.as_ref().map(|r| whole_seconds(r.at));
    let mut view = VendorView {
        positions: state
            .ledger
            .iter()
            .enumerate()
            .map(|(i, l)| (&l.id, i))
            .collect(),
        copies: vec![None; state.ledger.len()],
        orphans: Vec::new(),
        foreign: Vec::new(),
    };
    for o in vendor.iter().filter(|o| o.span.end > now) {
        match view.positions.get(&o.id).copied() {
            // A ledger entry that has ended (or that a sync cut) is history; if a person stretched
            // its vendor copy past now, that live part is theirs. (The driver keeps such entries
            // while the copy lives, so the alias check below never takes it back.)
            Some(i) if state.ledger[i].span.end > now => view.copies[i] = Some(o),
            // A running override that ends within the clock skew is a cut that has landed (the
            // vendor ended it at its own now): it is done, never cut again (R6).
            _ if frame.landed_cut(&o.span) => {}
            Some(_) => view.foreign.extend(o.span.clipped(now).map(|c| (c, o))),
            // With client-chosen ids, an override carrying one of our aliases for its own start is
            // ours even when the ledger lost it (a create whose answer was lost): take it back, so
            // it is never written twice. A create starts no earlier than the run that wrote it,
            // and no run that wrote one the ledger lost was saved: one that starts before the
            // last saved run is an override of ours the ledger let go of as history, which a
            // person has since stretched on: theirs.
            None if frame.caps.client_ids
                && is_alias_for(frame.destination, &o.id, o.span.start)
                && last_run.is_none_or(|t| o.span.start >= t) =>
            {
                view.orphans.push(o);
            }
            None => view.foreign.extend(o.span.clipped(now).map(|c| (c, o))),
        }
    }
    view
}

/// Our live overrides: ledger entries that have not ended and orphans, each with its vendor copy
/// and its span clipped at now.
struct LedgerIndex<'a> {
    /// Ledger id → position in the ledger (every entry).
    positions: FastMap<&'a OverrideId, usize>,
    live: Vec<(&'a Override, Option<&'a Override>, Span)>,
    /// Id → vendor copy, for the live entries.
    copies: FastMap<&'a OverrideId, &'a Override>,
    /// Orphans carrying our alias: the plan takes them as ours.
    orphans: Vec<&'a Override>,
}

impl<'a> LedgerIndex<'a> {
    fn new(frame: &Frame<'_>, state: &'a DestinationState, vendor: &VendorView<'a>) -> Self {
        let live: Vec<(&Override, Option<&Override>, Span)> = state
            .ledger
            .iter()
            .zip(vendor.copies.iter().copied())
            .chain(vendor.orphans.iter().map(|o| (*o, Some(*o))))
            .filter_map(|(l, copy)| l.span.clipped(frame.now).map(|c| (l, copy, c)))
            .collect();
        let copies = live
            .iter()
            .filter_map(|(l, copy, _)| copy.map(|c| (&l.id, c)))
            .collect();
        LedgerIndex {
            positions: vendor.positions.clone(),
            live,
            copies,
            orphans: vendor.orphans.clone(),
        }
    }
}

/// DESIGN §8: what people did, as the phases above sorted the vendor's overrides. Every foreign
/// override is someone's, and so is the copy of ours a person edited; a ledger entry that serves a
/// desired span is lost when its copy is gone or edited (in the protected region it still stands,
/// R3, but the vendor no longer shows it).
fn what_people_did<'a>(
    frame: &Frame<'_>,
    ledger: &LedgerIndex<'a>,
    foreign: &[(Span, &'a Override)],
    state: &DestinationState,
) -> drift::People<'a> {
    let now = frame.now;
    // Where the vendor shows ours over a person's override: ours written after it (the last
    // created wins), as long as the vendor still holds ours.
    let mut hidden: FastMap<OverrideId, Vec<Stretch>> = FastMap::default();
    for w in &state.written_over {
        if let Some(copy) = ledger.copies.get(&w.ours) {
            hidden
                .entry(w.theirs.clone())
                .or_default()
                .push((copy.span.start, copy.span.end));
        }
    }
    let mut people = drift::People {
        overrides: foreign
            .iter()
            .map(|(_, o)| drift::Someones {
                held: o,
                ours: None,
                hidden_by_ours: hidden.remove(&o.id).unwrap_or_default(),
            })
            .collect(),
        lost: Vec::new(),
    };
    let mut served = vec![false; frame.desired.len()];
    for (entry, copy, clipped) in &ledger.live {
        // (Copies are live: the vendor holds them past now.)
        let change = match copy {
            Some(c) if c.span.clipped(now).as_ref() == Some(clipped) => None,
            Some(c) => {
                people.overrides.push(drift::Someones {
                    held: c,
                    ours: Some(entry),
                    hidden_by_ours: Vec::new(),
                });
                Some(PersonChange::EditedOurs {
                    ours: (*entry).clone(),
                    now: c.span.clone(),
                })
            }
            None => Some(PersonChange::DeletedOurs {
                ours: (*entry).clone(),
            }),
        };
        // As R3 matches them: the first live entry equal to a desired span serves it.
        if let Some(i) = frame.desired_equal(clipped).filter(|&i| !served[i]) {
            served[i] = true;
            people.lost.extend(change.map(|c| (i, c)));
        }
    }
    people
}

/// How the ledger meets the desired spans.
struct Matching<'a> {
    /// Desired spans already served (kept, adopted, updated into).
    desired_done: Vec<bool>,
    /// Desired spans the ledger holds but the vendor lost or changed, in the fresh region (R2).
    restore: Vec<bool>,
    /// Ledger entries no desired span matches (or whose vendor copy must be restored), clipped.
    stale: Vec<(&'a Override, Span)>,
    /// Ledger entries that match a desired span and stand.
    kept: Vec<&'a Override>,
}

/// R3 and R2: in the protected region a ledger entry that matches a desired span stands, even if a
/// person deleted or edited its vendor copy; in the fresh region the vendor must hold it intact.
fn match_ledger<'a>(frame: &Frame<'_>, ledger: &LedgerIndex<'a>) -> Matching<'a> {
    let now = frame.now;
    let mut m = Matching {
        desired_done: vec![false; frame.desired.len()],
        restore: vec![false; frame.desired.len()],
        stale: Vec::new(),
        kept: Vec::new(),
    };
    for (entry, copy, clipped) in &ledger.live {
        let matched = frame.desired_equal(clipped).filter(|&i| !m.desired_done[i]);
        let intact = !frame.in_fresh(clipped.start)
            || copy
                .and_then(|v| v.span.clipped(now))
                .is_some_and(|v| v == *clipped);
        match matched {
            Some(i) if intact => {
                m.desired_done[i] = true;
                m.kept.push(entry);
            }
            Some(i) => {
                m.restore[i] = true;
                m.stale.push((entry, clipped.clone()));
            }
            None => m.stale.push((entry, clipped.clone())),
        }
    }
    m
}

/// The plan's steps as they are found, and the stretches of the protected region they change.
struct Steps {
    ops: Vec<PlannedOperation>,
    /// The stretches of the protected region that the plan changes, for R4's warnings.
    changes: Vec<(DateTime<Utc>, DateTime<Utc>)>,
}

impl Steps {
    /// Room for the usual steps (a create per desired span, a step per vendor override): growing a
    /// large vector copies it.
    fn with_capacity(capacity: usize) -> Steps {
        Steps {
            ops: Vec::with_capacity(capacity),
            changes: Vec::new(),
        }
    }

    /// Adds `op`, which touches `[start, end)`, and notes the stretch it changes in the protected
    /// region (before `F`).
    fn push_change(
        &mut self,
        frame: &Frame<'_>,
        op: PlannedOperation,
        start: DateTime<Utc>,
        end: DateTime<Utc>,
    ) {
        if start < frame.fresh_from {
            self.changes.push((start, end.min(frame.fresh_from)));
        }
        self.ops.push(op);
    }

    /// R6: overrides carrying our alias that the ledger lost are taken back, never written twice.
    fn adopt_our_aliases(&mut self, orphans: &[&Override]) {
        for o in orphans {
            self.ops.push(PlannedOperation {
                action: Action::Adopt {
                    target: (*o).clone(),
                },
                reason: Reason::OurAlias,
                mark_limit: None,
            });
        }
    }

    /// R6: a stale ledger entry whose vendor copy a person moved or edited onto a desired span that
    /// nothing serves yet is taken for that span as it stands: the ledger follows the copy, and
    /// nothing is written.
    fn adopt_moved_copies(
        &mut self,
        frame: &Frame<'_>,
        ledger: &LedgerIndex<'_>,
        matching: &mut Matching<'_>,
    ) {
        let desired_done = &mut matching.desired_done;
        let ops = &mut self.ops;
        matching.stale.retain(|(entry, _)| {
            let Some(copy) = ledger.copies.get(&entry.id) else {
                return true;
            };
            let served = copy
                .span
                .clipped(frame.now)
                .filter(|_| copy.span != entry.span)
                .and_then(|c| frame.desired_equal(&c))
                .filter(|&i| !desired_done[i]);
            let Some(i) = served else {
                return true;
            };
            desired_done[i] = true;
            ops.push(PlannedOperation {
                action: Action::Adopt {
                    target: (*copy).clone(),
                },
                reason: Reason::ExactMatch,
                mark_limit: None,
            });
            false
        });
    }

    /// R2 and R6: a foreign override that equals a desired span the ledger does not serve is
    /// adopted, not deleted and written again. In the protected region this adopts an exact copy of
    /// a planned change: where the vendor has no client ids, it cannot be told from our own create
    /// whose answer was lost. Returns which foreign overrides were adopted.
    fn adopt_exact_matches(
        &mut self,
        frame: &Frame<'_>,
        desired_done: &mut [bool],
        foreign: &mut [(Span, &Override)],
    ) -> Vec<bool> {
        // Sorted by their span clipped at now, so each desired span finds its equals by binary search.
        foreign.sort_by(|a, b| a.0.cmp(&b.0).then_with(|| a.1.id.cmp(&b.1.id)));
        let mut adopted = vec![false; foreign.len()];
        for (i, span) in frame.desired.iter().enumerate() {
            if desired_done[i] {
                continue;
            }
            let first = foreign.partition_point(|(c, _)| c < span);
            let equal = (first..foreign.len()).take_while(|&j| foreign[j].0 == *span);
            if let Some(j) = equal.into_iter().find(|&j| !adopted[j]) {
                adopted[j] = true;
                desired_done[i] = true;
                self.ops.push(PlannedOperation {
                    action: Action::Adopt {
                        target: foreign[j].1.clone(),
                    },
                    reason: Reason::ExactMatch,
                    mark_limit: None,
                });
            }
        }
        adopted
    }

    /// R4 (and R2 in the fresh region), within the scope `S`: a ledger entry no desired span
    /// matches is changed into the desired span starting at the same instant where the vendor
    /// updates in place, else removed (cut at now if running), wherever a person moved its vendor
    /// copy inside `[now, S)`; one whose copy is gone is forgotten. Ours that lie, as the vendor holds
    /// them, wholly at or after `S` are left alone, and the ledger follows a copy moved there.
    fn change_stale_entries(
        &mut self,
        frame: &Frame<'_>,
        ledger: &LedgerIndex<'_>,
        matching: &mut Matching<'_>,
    ) {
        let now = frame.now;
        for (entry, clipped) in std::mem::take(&mut matching.stale) {
            let copy = ledger.copies.get(&entry.id).copied();
            let held = copy.map_or(&entry.span, |c| &c.span);
            if !held.overlaps(now, frame.scope_end) {
                if let Some(moved) = copy.filter(|c| c.span != entry.span) {
                    self.ops.push(PlannedOperation {
                        action: Action::Adopt {
                            target: moved.clone(),
                        },
                        reason: Reason::MovedOutOfScope,
                        mark_limit: None,
                    });
                }
                continue;
            }
            let Some(current) = copy else {
                self.ops.push(PlannedOperation {
                    action: Action::Forget {
                        target: entry.clone(),
                    },
                    reason: Reason::AlreadyGone,
                    mark_limit: None,
                });
                continue;
            };
            // A cut whose answer was lost has landed all the same: the ledger follows it (R6).
            if frame.landed_cut(&current.span) {
                if current.span != entry.span {
                    self.ops.push(PlannedOperation {
                        action: Action::Adopt {
                            target: current.clone(),
                        },
                        reason: Reason::CutLanded,
                        mark_limit: None,
                    });
                }
                continue;
            }
            let reason = if frame.in_fresh(clipped.start) {
                if frame.desired_equal(&clipped).is_some() {
                    Reason::Restore
                } else {
                    Reason::NoLongerDesired
                }
            } else {
                Reason::PlannedChange
            };
            if let Some((i, to)) = in_place_update(frame, matching, current, &clipped) {
                matching.desired_done[i] = true;
                let want = &frame.desired[i];
                let (s, e) = (clipped.start.min(want.start), clipped.end.max(want.end));
                let op = PlannedOperation {
                    action: Action::Update {
                        id: entry.id.clone(),
                        from: current.span.clone(),
                        to,
                        owned: true,
                    },
                    reason,
                    mark_limit: frame.mark_limit(s, e),
                };
                self.push_change(frame, op, s, e);
                continue;
            }
            let action = if current.span.start < now {
                truncate(current, now, true, frame.caps)
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
                mark_limit: frame.mark_limit(from, current.span.end),
            };
            self.push_change(frame, op, from, current.span.end);
        }
    }

    /// R2: foreign overrides reaching into the fresh region `[F, E)` are removed from it, keeping
    /// their parts outside; and (R2 over R3) an override of ours that a person stretched past its
    /// ledger span into the fresh region loses the stretch, while the ledger keeps its span, so the
    /// person's other changes stand.
    fn clear_fresh_region(
        &mut self,
        frame: &Frame<'_>,
        vendor: &[Override],
        ledger: &LedgerIndex<'_>,
        matching: &Matching<'_>,
        foreign: &[(Span, &Override)],
        adopted: &[bool],
    ) {
        let (fresh_from, horizon_end) = (frame.fresh_from, frame.horizon_end);
        let mut to_clear: Vec<(&Override, DateTime<Utc>, Option<Reason>)> = foreign
            .iter()
            .enumerate()
            .filter(|(j, (_, o))| !adopted[*j] && o.span.overlaps(fresh_from, horizon_end))
            .map(|(_, (_, o))| (*o, fresh_from, None))
            .collect();
        for entry in &matching.kept {
            let Some(current) = ledger.copies.get(&entry.id) else {
                continue;
            };
            let from = fresh_from.max(entry.span.end);
            if current.span != entry.span && current.span.overlaps(from, horizon_end) {
                to_clear.push((current, from, Some(Reason::TrimEditedOurs)));
            }
        }
        let clearing = Clearing {
            vendor,
            ledger_pos: &ledger.positions,
            taken: foreign
                .iter()
                .zip(adopted)
                .filter(|(_, adopted)| **adopted)
                .map(|((_, o), _)| &o.id)
                .chain(ledger.orphans.iter().map(|o| &o.id))
                .collect(),
            kept: Default::default(),
            checks: std::cell::Cell::new(0),
            index: std::cell::OnceCell::new(),
            frame,
        };
        for (o, from, reason) in to_clear {
            clearing.clear(o, from, reason, &mut self.ops);
        }
    }

    /// Puts the steps found so far in execution order ([`phase`], then time).
    fn order(&mut self) {
        self.ops.sort_by_key(|op| (phase(op), sort_time(op)));
    }

    /// R2 and R4: desired spans still unserved are written last, in time order, each under the
    /// first alias of its start that no listed override holds (one a person moved, or one cut
    /// short, keeps it).
    fn write_missing_spans(
        &mut self,
        frame: &Frame<'_>,
        vendor: &[Override],
        matching: &Matching<'_>,
    ) {
        let held: FastSet<&OverrideId> = if frame.caps.client_ids {
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
                return alias_for(frame.destination, start);
            }
            (0..ALIAS_ATTEMPTS)
                .map(|attempt| alias_attempt(frame.destination, start, attempt))
                .find(|alias| !held.contains(alias))
                .unwrap_or_else(|| alias_for(frame.destination, start))
        };
        for (i, span) in frame.desired.iter().enumerate() {
            if matching.desired_done[i] {
                continue;
            }
            let reason = if !frame.in_fresh(span.start) {
                Reason::PlannedChange
            } else if matching.restore[i] {
                Reason::Restore
            } else {
                Reason::NewSpan
            };
            let op = PlannedOperation {
                action: Action::Create {
                    span: span.clone(),
                    id: frame.caps.client_ids.then(|| free_alias(span.start)),
                    owned: true,
                    keeps_part_of: None,
                },
                reason,
                mark_limit: frame.mark_limit(span.start, span.end),
            };
            self.push_change(frame, op, span.start, span.end);
        }
    }

    /// R4's warnings (a foreign override in the protected region overlapping a planned change) and
    /// the stretches where the role has nobody.
    fn warnings(
        &mut self,
        frame: &Frame<'_>,
        foreign: &[(Span, &Override)],
        adopted: &[bool],
        gaps: &[(DateTime<Utc>, DateTime<Utc>)],
    ) -> Vec<Warning> {
        let protected: Vec<(DateTime<Utc>, &Override)> = foreign
            .iter()
            .enumerate()
            .filter(|(j, (_, o))| !adopted[*j] && o.span.start < frame.fresh_from)
            .map(|(_, (clipped, o))| (clipped.start, *o))
            .collect();
        let mut warnings = masking_warnings(&protected, std::mem::take(&mut self.changes));
        warnings.extend(
            gaps.iter()
                .filter(|(_, end)| *end > frame.now)
                .map(|&(start, end)| Warning::RoleEmpty {
                    start: start.max(frame.now),
                    end,
                }),
        );
        warnings
    }
}

/// Where the vendor can update in place, the desired span (not yet served) that starts where the
/// stale entry does, and what its copy becomes. Only the end of a running override may change: its
/// past stays as it was (R1). That serves a desired span in progress (clipped, it starts at now);
/// one that starts later (a person moved the copy earlier) would be joined to it across the stretch
/// between them.
fn in_place_update(
    frame: &Frame<'_>,
    matching: &Matching<'_>,
    current: &Override,
    clipped: &Span,
) -> Option<(usize, Span)> {
    if !frame.caps.update_in_place {
        return None;
    }
    let i = frame
        .desired_at(clipped.start)
        .filter(|&i| !matching.desired_done[i])?;
    let want = &frame.desired[i];
    let to = if current.span.start >= frame.now {
        want.clone()
    } else if current.span.member == want.member && want.start == frame.now {
        Span::new(current.span.start, want.end, want.member.clone())
    } else {
        return None;
    };
    Some((i, to))
}

/// A foreign override in the protected region that overlaps a planned change is left alone (R3), but
/// the vendor shows only one of them there (R4). A sweep over both, sorted by start: foreign overrides
/// join a heap keyed by end when they start before a change ends, and leave it once a change starts
/// after they end. Planned changes are shifts, which do not nest, so the heap holds little beyond what
/// overlaps: O((n + m) log m) plus the warnings themselves.
fn masking_warnings(
    protected: &[(DateTime<Utc>, &Override)],
    mut changes: Vec<(DateTime<Utc>, DateTime<Utc>)>,
) -> Vec<Warning> {
    use std::cmp::Reverse;
    let mut warnings = Vec::new();
    changes.sort_unstable();
    // A delete and a create of one span are one change to warn about.
    changes.dedup();
    // Changes start at or after now, so clipped starts decide overlaps as well as the real ones.
    let mut active: std::collections::BinaryHeap<Reverse<(DateTime<Utc>, usize)>> =
        std::collections::BinaryHeap::new();
    let mut next = 0;
    for (start, end) in changes {
        while next < protected.len() && protected[next].0 < end {
            // One that ends before this change starts overlaps no later change either.
            if protected[next].1.span.end > start {
                active.push(Reverse((protected[next].1.span.end, next)));
            }
            next += 1;
        }
        while active.peek().is_some_and(|Reverse((e, _))| *e <= start) {
            active.pop();
        }
        for Reverse((_, k)) in active.iter() {
            if protected[*k].0 < end {
                warnings.push(Warning::ForeignOverlapsChange {
                    foreign: protected[*k].1.clone(),
                    start,
                    end,
                });
            }
        }
    }
    let key = |w: &Warning| match w {
        Warning::ForeignOverlapsChange {
            foreign,
            start,
            end,
        } => Some((*start, *end, foreign.id.clone())),
        _ => None,
    };
    warnings.sort_by_key(key);
    warnings.dedup();
    warnings
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

/// Ends a running override at now: by delete where the vendor truncates running overrides on
/// delete (or cannot update), else by an in-place update of its end.
pub(super) fn truncate(
    target: &Override,
    now: DateTime<Utc>,
    owned: bool,
    caps: Capabilities,
) -> Action {
    Action::Truncate {
        target: target.clone(),
        at: now,
        owned,
        by_delete: caps.delete_truncates_running || !caps.update_in_place,
    }
}
