//! Clearing the fresh region (R2): removing overrides from a stretch while keeping their parts
//! outside it, and not re-creating a part that is already there.

use chrono::{DateTime, Utc};

use super::planner::{truncate, Frame};
use super::{Action, Override, OverrideId, PlannedOperation, Reason, Span};
use crate::fast_hash::{FastMap, FastSet};
use crate::model::Email;

/// Plans removing overrides from a stretch of the fresh region while keeping their parts outside it.
///
/// The stretch is the fresh region `[F, E)` of its frame: overrides reaching into it are cleared.
pub(super) struct Clearing<'a> {
    pub(super) vendor: &'a [Override],
    /// Our ledger's ids.
    pub(super) ledger_pos: &'a FastMap<&'a OverrideId, usize>,
    /// Overrides this plan takes as ours (adopted, or carrying our alias).
    pub(super) taken: FastSet<&'a OverrideId>,
    /// Parts kept so far in this plan, as (member, end) → starts.
    pub(super) kept: std::cell::RefCell<EarliestStarts<Email>>,
    /// Cover checks against the vendor so far: the first few scan, later ones use `index`.
    pub(super) checks: std::cell::Cell<usize>,
    /// Live overrides that may stand in, as (member, end) → starts; built when many checks come.
    pub(super) index: std::cell::OnceCell<EarliestStarts<&'a Email>>,
    /// The desired spans and regions, for the mark limits of the steps (R5).
    pub(super) frame: &'a Frame<'a>,
}

/// Who is kept on call up to an end: (member, end) → the starts (usually one).
pub(super) type EarliestStarts<M> = FastMap<(M, DateTime<Utc>), Vec<DateTime<Utc>>>;

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
                && !o
                    .span
                    .overlaps(self.frame.fresh_from, self.frame.horizon_end)
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
                .filter(|o| o.span.end > self.frame.now && may_cover(o))
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

    /// Removes `o` from `[from, E)`, keeping its parts outside. Where the vendor updates in
    /// place, an edited override of ours keeps its id and the ledger keeps believing its span (R3).
    /// Where it cannot, a person cannot edit an override either, so an edited copy of ours is only
    /// the vendor's own doing: it is replaced like a foreign one and leaves the ledger.
    pub(super) fn clear(
        &self,
        o: &Override,
        from: DateTime<Utc>,
        reason: Option<Reason>,
        ops: &mut Vec<PlannedOperation>,
    ) {
        let (now, to, caps) = (self.frame.now, self.frame.horizon_end, self.frame.caps);
        let member = &o.span.member;
        let left = (o.span.start < from).then(|| Span::new(o.span.start, from, member.clone()));
        let right = (o.span.end > to).then(|| Span::new(to, o.span.end, member.clone()));
        let start = o.span.start.max(from);
        let mark = self.frame.mark_limit(start, o.span.end.min(to));
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
