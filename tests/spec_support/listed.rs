//! What the spec tests let through, each with its reason: the known defects of the official specs
//! ([`KNOWN_SPEC_DEFECTS`], for good), and violations of ours that others are fixing right now
//! ([`PENDING_FIXES`], to shrink to nothing). [`assert_conforms`] fails on every other violation,
//! and on a pending entry that no longer occurs where it is expected (its fix landed: delete it).

use std::collections::BTreeMap;

use super::exchange::Exchange;
use super::spec::{Rule, Side, Spec, Vendor, Violation};

/// Which test drove the traffic: a pending entry names where it is expected to occur.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Suite {
    /// The adapters' own flows (list, import, plan, sync, errors) against the simulators.
    Flows,
    /// The `oncall` CLI against the simulators.
    Cli,
    /// The calls the vendors' official clients make, replayed on the simulators.
    Clients,
    /// The specs' own examples, replayed as exchanges.
    Examples,
}

/// A defect of an official spec: what it declares is not what the vendor does, or contradicts the
/// spec's own words, so a violation it explains is not held against us.
pub struct SpecDefect {
    /// A short name.
    pub id: &'static str,
    /// Whose spec.
    pub vendor: Vendor,
    /// Where it applies (empty: everywhere).
    pub suites: &'static [Suite],
    /// Why this is the spec's defect, not ours.
    pub reason: &'static str,
    /// Whether a violation is this defect.
    pub applies: fn(&Exchange, &Violation) -> bool,
}

/// A violation of ours that someone is fixing: which component, what, and the issue item.
pub struct PendingFix {
    /// A short name.
    pub id: &'static str,
    /// Whose spec it breaks.
    pub vendor: Vendor,
    /// The component to fix (and the side of the exchange it is on).
    pub component: &'static str,
    /// What is wrong, and what the fix is.
    pub what: &'static str,
    /// The issue item that asks for the fix.
    pub issue: &'static str,
    /// Where it occurs: a suite listed here that no longer sees it fails, so the list shrinks.
    pub suites: &'static [Suite],
    /// Whether a violation is this one.
    pub applies: fn(&Exchange, &Violation) -> bool,
}

/// The official specs' known defects. Each `reason` says why the spec, not our traffic, is wrong.
pub const KNOWN_SPEC_DEFECTS: &[SpecDefect] = &[
    SpecDefect {
        id: "pd-list-overrides-201",
        vendor: Vendor::PagerDuty,
        suites: &[],
        reason: "listScheduleOverrides declares 201 as its only success. A list creates nothing: \
                 PagerDuty's REST conventions (developer docs, 05-Endpoints: \"A 200 OK response \
                 code is returned on a successful index request\") and the 2020 revision of the \
                 same spec (`openapiv3-rest-overrides-legacy-2020.excerpt.json`) say 200. The \
                 body is still checked, against the 201 schema.",
        applies: |_, v| {
            is(
                v,
                Side::Answer,
                Rule::UndeclaredStatus,
                "listScheduleOverrides",
            ) && v.status == Some(200)
        },
    },
    SpecDefect {
        id: "pd-no-5xx",
        vendor: Vendor::PagerDuty,
        suites: &[],
        reason: "No operation declares a 5xx answer (nor `default`), yet any server can fail, and \
                 the fault tests inject 502s (answers lost after a write) and 503s on purpose. \
                 What such a body holds is not specified, so nothing more is checked.",
        applies: |_, v| v.rule == Rule::UndeclaredStatus && v.status.is_some_and(|s| s >= 500),
    },
    SpecDefect {
        id: "pd-layer-end-null",
        vendor: Vendor::PagerDuty,
        suites: &[],
        reason: "ScheduleLayer.end is a non-nullable date-time, but its own description says \"If \
                 `null`, the layer does not end.\"",
        applies: |_, v| {
            v.rule == Rule::AnswerBody
                && pattern(&v.location).ends_with("/schedule_layers/N/end")
                && v.detail.starts_with("null is not of type")
        },
    },
    SpecDefect {
        id: "pd-coverage-null-without-window",
        vendor: Vendor::PagerDuty,
        suites: &[],
        reason: "rendered_coverage_percentage is a non-nullable number, but its own description \
                 says it \"Returns null unless since or until are set\". Only answers to requests \
                 with neither are let through (with them, a null is pending-fix \
                 pd-sim-coverage-null).",
        applies: |e, v| {
            v.rule == Rule::AnswerBody
                && v.location.ends_with("/rendered_coverage_percentage")
                && v.detail.starts_with("null is not of type")
                && e.query_value("since").is_none()
                && e.query_value("until").is_none()
        },
    },
    SpecDefect {
        id: "pd-editable-ids-only",
        vendor: Vendor::PagerDuty,
        suites: &[],
        reason: "With `editable=true`, \"The result will only include the id of the override\" \
                 (the parameter's description), but the answer's Override schema requires start, \
                 end and user.",
        applies: |e, v| {
            is(v, Side::Answer, Rule::AnswerBody, "listScheduleOverrides")
                && e.query_value("editable").as_deref() == Some("true")
                && pattern(&v.location) == "/overrides/N"
                && v.detail.contains("is a required property")
        },
    },
    SpecDefect {
        id: "pd-include-array-as-string",
        vendor: Vendor::PagerDuty,
        suites: &[],
        reason: "`include[]` is declared with a string schema (an enum), while its name, its \
                 `explode: true`, its description (\"Array of additional details to include\") \
                 and the docs (13-Includes) make it an array of those strings, one key per value. \
                 Each value is still checked against the enum.",
        applies: |_, v| {
            v.side == Side::Request
                && v.rule == Rule::BadParameter
                && v.location == "include[]"
                && v.detail.contains("its schema is not an array")
        },
    },
    SpecDefect {
        id: "pd-content-type-on-bodiless-requests",
        vendor: Vendor::PagerDuty,
        suites: &[Suite::Clients],
        reason: "Every operation declares `Content-Type: application/json` a required header, \
                 even those without a body (GET, DELETE). PagerDuty's own Python client sends it \
                 on POST, PUT and PATCH only, and the API serves it. Only the replay of that \
                 client is let through: our adapters send it anyway (issue 13 §1, PagerDuty 2: a \
                 proxy validating the spec refuses requests without it).",
        applies: |e, v| {
            v.side == Side::Request
                && v.rule == Rule::MissingHeader
                && v.location == "Content-Type"
                && e.body.is_empty()
        },
    },
    SpecDefect {
        id: "pd-example-next-oncall-user-array",
        vendor: Vendor::PagerDuty,
        suites: &[Suite::Examples],
        reason: "getSchedule's own answer example gives `next_oncall_for_user.user` as an array \
                 of user references; the schema declares one Reference object. Which one \
                 PagerDuty sends is unsettled: the simulators do not serve the field (nothing \
                 asks for `include_next_oncall_for_user`).",
        applies: |_, v| {
            v.rule == Rule::AnswerBody
                && v.location.ends_with("/next_oncall_for_user/user")
                && v.detail.contains("is not of type \"object\"")
        },
    },
];

/// Violations of ours waiting for a fix; the list must shrink to nothing.
pub const PENDING_FIXES: &[PendingFix] = &[];

/// What one suite's traffic came to.
#[derive(Debug, Default)]
pub struct Tally {
    /// Exchanges checked.
    pub exchanges: usize,
    /// Violations explained by a known spec defect, by defect.
    pub spec_defects: BTreeMap<&'static str, usize>,
    /// Violations waiting for a fix, by entry.
    pub pending: BTreeMap<&'static str, usize>,
    /// Violations neither explains, each with its exchange.
    pub unlisted: Vec<String>,
    /// Pending entries of this suite and vendor that did not occur.
    pub stale: Vec<&'static str>,
}

/// Sorts every violation of `exchanges` (and `behaviour`: violations a test found by checking
/// documented behaviour, each with the index of its exchange) into these lists.
pub fn classify(
    suite: Suite,
    vendor: Vendor,
    exchanges: &[Exchange],
    behaviour: &[(usize, Violation)],
    defects: &'static [SpecDefect],
    pending: &'static [PendingFix],
) -> Tally {
    let spec = Spec::of(vendor);
    let found: Vec<(usize, Violation)> = exchanges
        .iter()
        .enumerate()
        .flat_map(|(i, e)| spec.check(e).into_iter().map(move |v| (i, v)))
        .chain(behaviour.iter().cloned())
        .collect();
    sort(suite, vendor, exchanges, found, defects, pending)
}

/// Sorts violations already found (each with the index of its exchange) into these lists.
pub fn sort(
    suite: Suite,
    vendor: Vendor,
    exchanges: &[Exchange],
    found: Vec<(usize, Violation)>,
    defects: &'static [SpecDefect],
    pending: &'static [PendingFix],
) -> Tally {
    let mut tally = Tally {
        exchanges: exchanges.len(),
        ..Tally::default()
    };
    for (i, violation) in found {
        let exchange = &exchanges[i];
        let here = |suites: &[Suite]| suites.is_empty() || suites.contains(&suite);
        if let Some(d) = defects
            .iter()
            .find(|d| d.vendor == vendor && here(d.suites) && (d.applies)(exchange, &violation))
        {
            *tally.spec_defects.entry(d.id).or_default() += 1;
        } else if let Some(p) = pending.iter().find(|p| {
            p.vendor == vendor && p.suites.contains(&suite) && (p.applies)(exchange, &violation)
        }) {
            *tally.pending.entry(p.id).or_default() += 1;
        } else {
            tally
                .unlisted
                .push(format!("{violation}\n    in {}", exchange.summary()));
        }
    }
    tally.stale = pending
        .iter()
        .filter(|p| {
            p.vendor == vendor && p.suites.contains(&suite) && !tally.pending.contains_key(p.id)
        })
        .map(|p| p.id)
        .collect();
    tally
}

/// Checks every exchange against `vendor`'s spec (see [`classify`]) and fails on any violation
/// that is neither a known spec defect nor pending, and on any pending entry of this suite and
/// vendor that did not occur. Prints the tally.
pub fn assert_conforms(
    suite: Suite,
    vendor: Vendor,
    exchanges: &[Exchange],
    behaviour: &[(usize, Violation)],
) -> Tally {
    let tally = classify(
        suite,
        vendor,
        exchanges,
        behaviour,
        KNOWN_SPEC_DEFECTS,
        PENDING_FIXES,
    );
    eprintln!(
        "{} {suite:?}: {} exchanges checked; known spec defects {:?}; pending fixes {:?}",
        vendor.name(),
        tally.exchanges,
        tally.spec_defects,
        tally.pending
    );
    assert!(
        tally.unlisted.is_empty(),
        "{} violation(s) of the {} spec that are neither known spec defects nor pending fixes:\n{}",
        tally.unlisted.len(),
        vendor.name(),
        tally.unlisted.join("\n")
    );
    assert!(
        tally.stale.is_empty(),
        "PENDING_FIXES entries of {} that no longer occur in {suite:?}: their fixes landed, so \
         delete them (or drop {suite:?} from their suites): {:?}",
        vendor.name(),
        tally.stale
    );
    tally
}

/// Whether `v` is on this side, breaks this rule, in this operation.
fn is(v: &Violation, side: Side, rule: Rule, operation: &str) -> bool {
    v.side == side && v.rule == rule && v.operation.as_deref() == Some(operation)
}

/// A JSON pointer with its array indexes as `N`: `/users/3/job_title` → `/users/N/job_title`.
pub fn pattern(location: &str) -> String {
    location
        .split('/')
        .map(|s| {
            if !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit()) {
                "N"
            } else {
                s
            }
        })
        .collect::<Vec<_>>()
        .join("/")
}
