//! Retiring a destination (DESIGN §3, scope): a host that stops exporting to a destination deletes
//! our overrides there that have not started, and leaves the running one and everything foreign
//! alone. Pure, like [`super::plan_export`]; the driver is [`crate::sync::retire`].

use std::collections::HashSet;

use chrono::{DateTime, Utc};

use super::{is_alias_for, Action, Override, OverrideId, Plan, PlannedOperation, Reason};
use crate::provider::Capabilities;
use crate::state::{DestinationId, DestinationState};
use crate::time::whole_seconds;

/// Everything the retirement planner looks at.
#[derive(Debug, Clone, Copy)]
pub struct RetirementInput<'a> {
    /// The destination being retired.
    pub destination: &'a DestinationId,
    /// The instant of the retirement (floored to whole seconds).
    pub now: DateTime<Utc>,
    /// The vendor's overrides from `now` on, covering every ledger entry that has not ended, and
    /// any copy of one that a person moved (found by id where the vendor updates in place).
    pub vendor: &'a [Override],
    /// The destination's mark and ledger.
    pub state: &'a DestinationState,
    /// What the provider can do.
    pub capabilities: Capabilities,
}

/// Plans a destination's retirement: deletes our overrides that have not started, as the vendor
/// holds them, and nothing else.
///
/// - A ledger entry whose vendor copy starts after `now` is deleted ([`Reason::Retired`]),
///   wherever a person moved it; one whose copy has started (the running one) is left alone, and so
///   is every past override (R1).
/// - A ledger entry the vendor no longer holds is forgotten ([`Reason::AlreadyGone`]).
/// - Where the vendor takes client-chosen ids, an override that carries our alias for its own
///   start is ours even when the ledger lost it (a create whose answer was lost, R6): it is deleted
///   too if it has not started ([`Reason::OurAlias`]).
/// - Foreign overrides (a person's, another tool's) are never touched; without client ids a
///   person's exact copy of ours cannot be told from a lost create, and is left alone as foreign.
///
/// The plan's `fresh_from` and `horizon_end` are `now`: nothing is desired any more.
///
/// ```
/// use chrono::{TimeZone, Utc};
/// use oncall_core::plan::{plan_retirement, RetirementInput};
/// use oncall_core::{Action, Capabilities, DestinationId, DestinationState, Email, Override, OverrideId, Span};
///
/// let t = |d| Utc.with_ymd_and_hms(2024, 3, d, 9, 0, 0).unwrap();
/// let ann = Email::parse("ann@example.com").unwrap();
/// let ours = |id: &str, from, to| Override { id: OverrideId::new(id), span: Span::new(t(from), t(to), ann.clone()) };
/// let (running, future) = (ours("P1", 1, 3), ours("P2", 3, 4));
/// let foreign = ours("P9", 5, 6);
/// let state = DestinationState {
///     high_water: Some(t(4)),
///     ledger: vec![running.clone(), future.clone()],
///     last_run: None,
///     mode: Default::default(),
///     home: None,
///     written_over: Vec::new(),
/// };
/// let vendor = [running, future.clone(), foreign];
/// let plan = plan_retirement(RetirementInput {
///     destination: &DestinationId("pd-primary".into()),
///     now: t(2),
///     vendor: &vendor,
///     state: &state,
///     capabilities: Capabilities::PAGERDUTY,
/// });
/// assert_eq!(plan.operations.len(), 1, "only our override that has not started");
/// assert_eq!(plan.operations[0].action, Action::Delete { target: future, owned: true });
/// ```
pub fn plan_retirement(input: RetirementInput<'_>) -> Plan {
    let now = whole_seconds(input.now);
    let mut operations = Vec::new();
    let mut seen: HashSet<&OverrideId> = HashSet::new();
    for entry in &input.state.ledger {
        if !seen.insert(&entry.id) {
            continue;
        }
        match input.vendor.iter().find(|o| o.id == entry.id) {
            Some(copy) if copy.span.start > now => {
                operations.push(delete(copy, Reason::Retired));
            }
            // The running one (or one a person ended): left alone.
            Some(_) => {}
            None => operations.push(PlannedOperation {
                action: Action::Forget {
                    target: entry.clone(),
                },
                reason: Reason::AlreadyGone,
                mark_limit: None,
            }),
        }
    }
    if input.capabilities.client_ids {
        let orphans = input.vendor.iter().filter(|o| {
            o.span.start > now
                && !seen.contains(&o.id)
                && is_alias_for(input.destination, &o.id, o.span.start)
        });
        operations.extend(orphans.map(|o| delete(o, Reason::OurAlias)));
    }
    // Ledger-only steps first, then the deletes in the order they start.
    operations.sort_by_key(|op| match &op.action {
        Action::Delete { target, .. } => (1, target.span.start),
        _ => (0, DateTime::<Utc>::MIN_UTC),
    });
    Plan {
        destination: input.destination.clone(),
        now,
        high_water: input.state.high_water,
        fresh_from: now,
        horizon_end: now,
        operations,
        warnings: Vec::new(),
        drift: Vec::new(),
    }
}

fn delete(target: &Override, reason: Reason) -> PlannedOperation {
    PlannedOperation {
        action: Action::Delete {
            target: target.clone(),
            owned: true,
        },
        reason,
        mark_limit: None,
    }
}

#[cfg(test)]
mod tests {
    use chrono::TimeZone;

    use super::*;
    use crate::model::Email;
    use crate::plan::{alias_for, Span};

    fn t(day: u32, hour: u32) -> DateTime<Utc> {
        Utc.with_ymd_and_hms(2024, 3, day, hour, 0, 0).unwrap()
    }

    fn o(id: &str, from: DateTime<Utc>, to: DateTime<Utc>, who: &str) -> Override {
        Override {
            id: OverrideId::new(id),
            span: Span::new(
                from,
                to,
                Email::parse(&format!("{who}@example.com")).unwrap(),
            ),
        }
    }

    struct Case {
        ledger: Vec<Override>,
        vendor: Vec<Override>,
        caps: Capabilities,
    }

    /// Plans at day 3 12:00 and returns the steps as `(kind, id)` pairs.
    #[track_caller]
    fn check(case: Case, expect: &[(&str, &str)]) {
        let state = DestinationState {
            high_water: Some(t(10, 9)),
            ledger: case.ledger,
            last_run: None,
            mode: Default::default(),
            home: None,
            written_over: Vec::new(),
        };
        let d = DestinationId("d".into());
        let plan = plan_retirement(RetirementInput {
            destination: &d,
            now: t(3, 12),
            vendor: &case.vendor,
            state: &state,
            capabilities: case.caps,
        });
        let got: Vec<(&str, String)> = plan
            .operations
            .iter()
            .map(|op| match &op.action {
                Action::Delete {
                    target,
                    owned: true,
                } => ("delete", target.id.to_string()),
                Action::Forget { target } => ("forget", target.id.to_string()),
                other => panic!("retirement plans only deletes and forgets: {other:?}"),
            })
            .collect();
        let expect: Vec<(&str, String)> =
            expect.iter().map(|(k, id)| (*k, id.to_string())).collect();
        assert_eq!(got, expect);
        assert_eq!(plan.horizon_end, t(3, 12));
        assert!(plan.operations.iter().all(|op| op.mark_limit.is_none()));
    }

    #[test]
    fn deletes_ours_that_have_not_started_and_keeps_the_running_one() {
        let running = o("P1", t(3, 9), t(4, 9), "ann");
        let next = o("P2", t(4, 9), t(5, 9), "bob");
        let later = o("P3", t(5, 9), t(6, 9), "cat");
        let past = o("P0", t(2, 9), t(3, 9), "dan");
        check(
            Case {
                ledger: vec![past.clone(), running.clone(), later.clone(), next.clone()],
                vendor: vec![past, running, next, later],
                caps: Capabilities::PAGERDUTY,
            },
            // The past one is history (R1): listed, it is left alone like the running one.
            &[("delete", "P2"), ("delete", "P3")],
        );
    }

    #[test]
    fn foreign_overrides_are_never_touched() {
        let ours = o("P2", t(4, 9), t(5, 9), "bob");
        let manual = o("P7", t(4, 10), t(4, 12), "eve");
        let exact_copy = o("P8", t(5, 9), t(6, 9), "cat");
        check(
            Case {
                ledger: vec![ours.clone()],
                vendor: vec![ours, manual, exact_copy],
                caps: Capabilities::PAGERDUTY,
            },
            &[("delete", "P2")],
        );
    }

    #[test]
    fn acts_on_the_vendor_copy_as_a_person_left_it() {
        // A person moved our future override to start before now: it runs, it stays.
        let believed_future = o("a1", t(5, 9), t(6, 9), "ann");
        let moved_running = o("a1", t(3, 10), t(6, 9), "ann");
        // A person moved our running override into the future: it has not started, it goes.
        let believed_running = o("a2", t(3, 9), t(4, 9), "bob");
        let moved_future = o("a2", t(8, 9), t(9, 9), "bob");
        // Deleted by a person: forgotten.
        let gone = o("a3", t(7, 9), t(8, 9), "cat");
        check(
            Case {
                ledger: vec![believed_future, believed_running, gone],
                vendor: vec![moved_running, moved_future.clone()],
                caps: Capabilities::OPSGENIE,
            },
            &[("forget", "a3"), ("delete", "a2")],
        );
    }

    #[test]
    fn our_alias_without_a_ledger_entry_is_ours_where_clients_choose_ids() {
        let d = DestinationId("d".into());
        let start = t(6, 9);
        let lost = Override {
            id: alias_for(&d, start),
            span: Span::new(start, t(7, 9), Email::parse("ann@example.com").unwrap()),
        };
        let alias = lost.id.to_string();
        // A running override under our alias is left alone like every running one.
        let running = Override {
            id: alias_for(&d, t(3, 9)),
            span: Span::new(t(3, 9), t(4, 9), Email::parse("bob@example.com").unwrap()),
        };
        // An alias of ours that does not belong to its start is someone's edit: not provably ours.
        let moved = Override {
            id: alias_for(&d, t(1, 9)),
            span: Span::new(t(8, 9), t(9, 9), Email::parse("cat@example.com").unwrap()),
        };
        check(
            Case {
                ledger: Vec::new(),
                vendor: vec![running.clone(), lost.clone(), moved.clone()],
                caps: Capabilities::OPSGENIE,
            },
            &[("delete", alias.as_str())],
        );
        // Without client ids nothing is recognised by its id.
        check(
            Case {
                ledger: Vec::new(),
                vendor: vec![running, lost, moved],
                caps: Capabilities::PAGERDUTY,
            },
            &[],
        );
    }

    #[test]
    fn a_ledger_entry_listed_twice_is_deleted_once() {
        let next = o("P2", t(4, 9), t(5, 9), "bob");
        check(
            Case {
                ledger: vec![next.clone(), next.clone()],
                vendor: vec![next],
                caps: Capabilities::PAGERDUTY,
            },
            &[("delete", "P2")],
        );
    }
}
