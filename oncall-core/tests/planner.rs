//! The planner, case by case, through one `check()` helper. Times are written `D.HH`: day D at HH:00
//! (day 0 is 2024-01-01, UTC); people by first name.

#![allow(clippy::unwrap_used)] // tests: a panic is the failure report

use chrono::{DateTime, TimeDelta, TimeZone, Utc};
use oncall_core::{
    alias_for, plan_export, Action, Capabilities, Desired, DestinationId, DestinationMode,
    DestinationState, Email, Override, OverrideId, PlanInput, RoleIndex, Span, Warning,
};

const PAGERDUTY: Capabilities = Capabilities::PAGERDUTY;
const OPSGENIE: Capabilities = Capabilities::OPSGENIE;

fn t(s: &str) -> DateTime<Utc> {
    let (d, h) = s.split_once('.').unwrap();
    Utc.with_ymd_and_hms(2024, 1, 1, 0, 0, 0).unwrap()
        + TimeDelta::days(d.parse().unwrap())
        + TimeDelta::hours(h.parse().unwrap())
}

fn show(t: DateTime<Utc>) -> String {
    let since = t - Utc.with_ymd_and_hms(2024, 1, 1, 0, 0, 0).unwrap();
    format!("{}.{:02}", since.num_days(), since.num_hours() % 24)
}

/// `"3.12-4.09 ann"` as a span.
fn span(s: &str) -> Span {
    let (range, who) = s.split_once(' ').unwrap();
    let (a, b) = range.split_once('-').unwrap();
    Span::new(t(a), t(b), Email::parse(&format!("{who}@x.io")).unwrap())
}

fn fmt_span(s: &Span) -> String {
    format!(
        "{}-{} {}",
        show(s.start),
        show(s.end),
        s.member.as_str().trim_end_matches("@x.io")
    )
}

/// `"Y 2.09-4.09 eve"` as an override with id `Y`.
fn ov(s: &str) -> Override {
    let (id, rest) = s.split_once(' ').unwrap();
    Override {
        id: OverrideId::new(id),
        span: span(rest),
    }
}

fn id_of(id: &OverrideId) -> String {
    if id.as_str().starts_with(oncall_core::ALIAS_PREFIX) {
        "alias".into()
    } else {
        id.to_string()
    }
}

fn render(a: &Action) -> String {
    match a {
        Action::Create {
            span,
            owned,
            keeps_part_of,
            ..
        } => {
            let mut s = format!("create {}", fmt_span(span));
            if !owned {
                s += " foreign";
            }
            if let Some(k) = keeps_part_of {
                s += &format!(" keeps {k}");
            }
            s
        }
        Action::Update { id, to, .. } => format!("update {} -> {}", id_of(id), fmt_span(to)),
        Action::Delete { target, .. } => format!("delete {}", id_of(&target.id)),
        Action::Truncate {
            target,
            at,
            by_delete,
            ..
        } => {
            format!(
                "cut {} at {} by {}",
                id_of(&target.id),
                show(*at),
                if *by_delete { "delete" } else { "update" }
            )
        }
        Action::Adopt { target } => format!("adopt {}", id_of(&target.id)),
        Action::Forget { target } => format!("forget {}", id_of(&target.id)),
        other => format!("{other:?}"),
    }
}

struct Case<'a> {
    caps: Capabilities,
    now: &'a str,
    mark: Option<&'a str>,
    horizon_end: &'a str,
    desired: &'a [&'a str],
    ledger: &'a [&'a str],
    vendor: &'a [&'a str],
}

fn check(case: Case<'_>, expected: &[&str]) -> Vec<Warning> {
    let destination = DestinationId("d".into());
    let spans = case.desired.iter().map(|s| span(s)).collect();
    let desired = Desired::new(t(case.now), spans, t(case.horizon_end)).unwrap();
    let state = DestinationState {
        high_water: case.mark.map(t),
        ledger: case.ledger.iter().map(|s| ov(s)).collect(),
        last_run: None,
        mode: Default::default(),
        home: None,
        written_over: Vec::new(),
    };
    let vendor: Vec<Override> = case.vendor.iter().map(|s| ov(s)).collect();
    let plan = plan_export(PlanInput {
        destination: &destination,
        role: RoleIndex::PRIMARY,
        mode: DestinationMode::Protect,
        now: t(case.now),
        desired: &desired,
        vendor: &vendor,
        state: &state,
        capabilities: case.caps,
    });
    let got: Vec<String> = plan.operations.iter().map(|o| render(&o.action)).collect();
    assert_eq!(got, expected);
    plan.warnings
}

#[test]
fn running_override_of_ours_with_a_new_member_is_cut_and_rewritten_from_now() {
    // Opsgenie could update in place, but that would rewrite who was on call before now (R1).
    for (caps, cut) in [
        (OPSGENIE, "cut A at 3.12 by update"),
        (PAGERDUTY, "cut A at 3.12 by delete"),
    ] {
        check(
            Case {
                caps,
                now: "3.12",
                mark: Some("5.09"),
                horizon_end: "5.09",
                desired: &["3.12-4.09 bob", "4.09-5.09 cat"],
                ledger: &["A 3.09-4.09 ann", "B 4.09-5.09 cat"],
                vendor: &["A 3.09-4.09 ann", "B 4.09-5.09 cat"],
            },
            &[cut, "create 3.12-4.09 bob"],
        );
    }
}

#[test]
fn running_override_of_ours_with_a_new_end_is_updated_in_place_from_its_start() {
    check(
        Case {
            caps: OPSGENIE,
            now: "3.12",
            mark: Some("5.09"),
            horizon_end: "5.09",
            desired: &["3.12-4.15 ann"],
            ledger: &["A 3.09-4.09 ann"],
            vendor: &["A 3.09-4.09 ann"],
        },
        &["update A -> 3.09-4.15 ann"],
    );
}

#[test]
fn a_copy_moved_to_run_now_is_not_stretched_to_a_later_span() {
    // A person moved A (ours for 4.09-5.09) to run from 3.10 to 3.14 for bob; the host now plans bob
    // for 4.09-5.09. Stretching A to 5.09 would put bob on call from 3.14 to 4.09 as well.
    check(
        Case {
            caps: OPSGENIE,
            now: "3.12",
            mark: Some("5.09"),
            horizon_end: "5.09",
            desired: &["4.09-5.09 bob"],
            ledger: &["A 4.09-5.09 ann"],
            vendor: &["A 3.10-3.14 bob"],
        },
        &["cut A at 3.12 by update", "create 4.09-5.09 bob"],
    );
}

#[test]
fn a_changed_member_on_an_unchanged_future_span_is_one_update() {
    check(
        Case {
            caps: OPSGENIE,
            now: "3.12",
            mark: Some("9.09"),
            horizon_end: "9.09",
            desired: &["6.09-7.09 bob"],
            ledger: &["A 6.09-7.09 ann"],
            vendor: &["A 6.09-7.09 ann"],
        },
        &["update A -> 6.09-7.09 bob"],
    );
}

#[test]
fn foreign_override_across_the_horizon_end_is_trimmed_to_start_there() {
    check(
        Case {
            caps: OPSGENIE,
            now: "3.12",
            mark: None,
            horizon_end: "5.09",
            desired: &["3.12-4.09 ann", "4.09-5.09 bob"],
            ledger: &[],
            vendor: &["Z 4.20-6.00 eve"],
        },
        &[
            "update Z -> 5.09-6.00 eve",
            "create 3.12-4.09 ann",
            "create 4.09-5.09 bob",
        ],
    );
    check(
        Case {
            caps: PAGERDUTY,
            now: "3.12",
            mark: None,
            horizon_end: "5.09",
            desired: &["3.12-4.09 ann", "4.09-5.09 bob"],
            ledger: &[],
            vendor: &["Z 4.20-6.00 eve"],
        },
        &[
            "create 5.09-6.00 eve foreign keeps Z",
            "delete Z",
            "create 3.12-4.09 ann",
            "create 4.09-5.09 bob",
        ],
    );
}

#[test]
fn foreign_override_over_the_whole_fresh_region_keeps_both_ends() {
    check(
        Case {
            caps: OPSGENIE,
            now: "3.12",
            mark: Some("4.09"),
            horizon_end: "5.09",
            desired: &["4.09-5.09 bob"],
            ledger: &[],
            vendor: &["Z 4.00-6.00 eve"],
        },
        &[
            "create 5.09-6.00 eve foreign keeps Z",
            "update Z -> 4.00-4.09 eve",
            "create 4.09-5.09 bob",
        ],
    );
    check(
        Case {
            caps: PAGERDUTY,
            now: "3.12",
            mark: Some("4.09"),
            horizon_end: "5.09",
            desired: &["4.09-5.09 bob"],
            ledger: &[],
            vendor: &["Z 4.00-6.00 eve"],
        },
        &[
            "create 4.00-4.09 eve foreign keeps Z",
            "create 5.09-6.00 eve foreign keeps Z",
            "delete Z",
            "create 4.09-5.09 bob",
        ],
    );
}

#[test]
fn a_remainder_already_in_the_vendor_is_not_created_twice() {
    // An earlier run created the kept part and died before deleting Z.
    check(
        Case {
            caps: PAGERDUTY,
            now: "3.12",
            mark: Some("4.09"),
            horizon_end: "5.09",
            desired: &["4.09-5.09 bob"],
            ledger: &[],
            vendor: &["Z 4.00-4.12 eve", "K 4.00-4.09 eve"],
        },
        &["delete Z", "create 4.09-5.09 bob"],
    );
}

#[test]
fn running_foreign_override_is_cut_at_now_in_a_first_export() {
    check(
        Case {
            caps: PAGERDUTY,
            now: "3.12",
            mark: None,
            horizon_end: "4.09",
            desired: &["3.12-4.09 ann"],
            ledger: &[],
            vendor: &["Y 2.09-4.09 eve"],
        },
        &["cut Y at 3.12 by delete", "create 3.12-4.09 ann"],
    );
    check(
        Case {
            caps: OPSGENIE,
            now: "3.12",
            mark: None,
            horizon_end: "4.09",
            desired: &["3.12-4.09 ann"],
            ledger: &[],
            vendor: &["Y 2.09-4.09 eve"],
        },
        &["update Y -> 2.09-3.12 eve", "create 3.12-4.09 ann"],
    );
}

#[test]
fn history_and_what_lies_beyond_the_horizon_are_never_touched() {
    check(
        Case {
            caps: PAGERDUTY,
            now: "3.12",
            mark: Some("5.09"),
            horizon_end: "5.09",
            desired: &["3.12-4.09 ann", "4.09-5.09 bob"],
            ledger: &[
                "A 3.09-4.09 ann",
                "B 4.09-5.09 bob",
                "C 5.09-6.09 cat",
                "OLD 1.09-2.09 dan",
            ],
            vendor: &[
                "A 3.09-4.09 ann",
                "B 4.09-5.09 bob",
                "C 5.09-6.09 cat",
                "OLD 1.09-2.09 dan",
                "P 0.00-3.00 eve",
            ],
        },
        &[],
    );
}

#[test]
fn a_stale_entry_already_gone_is_forgotten_without_a_call() {
    check(
        Case {
            caps: PAGERDUTY,
            now: "3.12",
            mark: Some("5.09"),
            horizon_end: "5.09",
            desired: &[],
            ledger: &["A 4.09-5.09 ann"],
            vendor: &[],
        },
        &["forget A"],
    );
}

#[test]
fn exact_matches_are_adopted_even_before_the_mark() {
    // A planned change written by a run that died before saving: adopt, don't duplicate (R6).
    check(
        Case {
            caps: PAGERDUTY,
            now: "3.12",
            mark: Some("9.09"),
            horizon_end: "9.09",
            desired: &["6.09-7.09 bob"],
            ledger: &["A 6.09-7.09 ann"],
            vendor: &["N 6.09-7.09 bob"],
        },
        &["adopt N", "forget A"],
    );
}

#[test]
fn our_alias_is_taken_back_when_the_ledger_lost_it() {
    let d = DestinationId("d".into());
    let alias = alias_for(&d, t("6.09")).to_string();
    let vendor = format!("{alias} 6.09-7.09 ann");
    check(
        Case {
            caps: OPSGENIE,
            now: "3.12",
            mark: Some("9.09"),
            horizon_end: "9.09",
            desired: &["6.09-7.09 bob"],
            ledger: &[],
            vendor: &[vendor.as_str()],
        },
        // Taken back, then updated in place: its alias is never asked for twice.
        &["adopt alias", "update alias -> 6.09-7.09 bob"],
    );
}

#[test]
fn foreign_override_masking_a_planned_change_is_left_with_a_warning() {
    let warnings = check(
        Case {
            caps: PAGERDUTY,
            now: "3.12",
            mark: Some("9.09"),
            horizon_end: "9.09",
            desired: &["6.09-7.09 bob"],
            ledger: &["A 6.09-7.09 ann"],
            vendor: &["A 6.09-7.09 ann", "F 6.10-6.12 eve", "G 8.10-8.12 eve"],
        },
        &["delete A", "create 6.09-7.09 bob"],
    );
    let masking: Vec<&str> = warnings
        .iter()
        .filter_map(|w| match w {
            Warning::ForeignOverlapsChange { foreign, .. } => Some(foreign.id.as_str()),
            _ => None,
        })
        .collect();
    assert_eq!(masking, ["F"], "only the override overlapping the change");
}

#[test]
fn creates_carry_deterministic_aliases_where_the_vendor_takes_them() {
    let destination = DestinationId("d".into());
    let desired = Desired::new(t("3.12"), vec![span("4.09-5.09 ann")], t("5.09")).unwrap();
    let plan = |caps| {
        plan_export(PlanInput {
            destination: &destination,
            role: RoleIndex::PRIMARY,
            mode: DestinationMode::Protect,
            now: t("3.12"),
            desired: &desired,
            vendor: &[],
            state: &DestinationState::default(),
            capabilities: caps,
        })
    };
    let alias = |p: oncall_core::Plan| match &p.operations[0].action {
        Action::Create { id, .. } => id.clone(),
        other => panic!("{other:?}"),
    };
    assert_eq!(
        alias(plan(OPSGENIE)),
        Some(alias_for(&destination, t("4.09")))
    );
    assert_eq!(alias(plan(PAGERDUTY)), None);
    assert_ne!(
        alias_for(&destination, t("4.09")),
        alias_for(&DestinationId("e".into()), t("4.09"))
    );
    assert_ne!(
        alias_for(&destination, t("4.09")),
        alias_for(&destination, t("4.10"))
    );
}

#[test]
fn a_create_skips_the_aliases_listed_overrides_hold() {
    // A person moved ours for 4.09 to 3.14-3.16 (it keeps the alias); a later attempt's holder
    // lies out there too. The new override of 4.09 asks for the first alias nobody listed holds.
    let destination = DestinationId("d".into());
    let desired = Desired::new(t("3.12"), vec![span("4.09-5.09 ann")], t("5.09")).unwrap();
    let moved = |attempt, s: &str| Override {
        id: oncall_core::alias_attempt(&destination, t("4.09"), attempt),
        span: span(s),
    };
    let vendor = [moved(0, "3.14-3.16 bob"), moved(1, "3.16-3.18 cat")];
    let plan = plan_export(PlanInput {
        destination: &destination,
        role: RoleIndex::PRIMARY,
        mode: DestinationMode::Protect,
        now: t("3.12"),
        desired: &desired,
        vendor: &vendor,
        state: &DestinationState::default(),
        capabilities: OPSGENIE,
    });
    let created: Vec<_> = plan
        .operations
        .iter()
        .filter_map(|o| match &o.action {
            Action::Create { id, .. } => Some(id.clone()),
            _ => None,
        })
        .collect();
    assert_eq!(
        created,
        [Some(oncall_core::alias_attempt(&destination, t("4.09"), 2))],
        "{plan}"
    );
}

#[test]
fn aliases_never_change_across_releases() {
    // R6 across upgrades: a run of the next release must recognise what this one wrote.
    let d = DestinationId("dest".into());
    assert_eq!(
        alias_for(&d, t("7.09")).as_str(),
        "oncall-sync-072576397e052556"
    );
    assert_eq!(
        alias_for(&d, t("3.12")).as_str(),
        "oncall-sync-dfd62d715281c3ed"
    );
}

#[test]
fn later_aliases_are_recognised_and_nothing_else_is() {
    let d = DestinationId("dest".into());
    let base = alias_for(&d, t("7.09"));
    assert_eq!(
        oncall_core::alias_attempt(&d, t("7.09"), 2).as_str(),
        "oncall-sync-072576397e052556-2"
    );
    for attempt in 0..oncall_core::ALIAS_ATTEMPTS {
        let id = oncall_core::alias_attempt(&d, t("7.09"), attempt);
        assert!(oncall_core::is_alias_for(&d, &id, t("7.09")), "{id}");
        assert!(!oncall_core::is_alias_for(&d, &id, t("7.10")), "{id}");
        let other = DestinationId("other".into());
        assert!(!oncall_core::is_alias_for(&other, &id, t("7.09")), "{id}");
    }
    // Recognition does not depend on how many attempts this release makes.
    for attempt in [oncall_core::ALIAS_ATTEMPTS, 1000] {
        let id = OverrideId::new(format!("{base}-{attempt}"));
        assert!(oncall_core::is_alias_for(&d, &id, t("7.09")), "{id}");
    }
    for suffix in ["-0", "-01", "-+1", "-", "1", "-1x", "-99999999999"] {
        let id = OverrideId::new(format!("{base}{suffix}"));
        assert!(!oncall_core::is_alias_for(&d, &id, t("7.09")), "{id}");
    }
}

#[test]
fn a_part_kept_by_a_dead_run_is_recognised_after_now_moved() {
    // Run 1 at 3.12 kept Z's part [3.12, 4.09) as K, then died before deleting Z. Run 2 at 3.13 wants
    // [3.13, 4.09): K already covers it, so only Z goes.
    check(
        Case {
            caps: PAGERDUTY,
            now: "3.13",
            mark: Some("4.09"),
            horizon_end: "5.09",
            desired: &["4.09-5.09 bob"],
            ledger: &[],
            vendor: &["Z 3.00-4.12 eve", "K 3.12-4.09 eve"],
        },
        &["cut Z at 3.13 by delete", "create 4.09-5.09 bob"],
    );
    // Two overrides of one person reaching past the horizon keep one part there, not two.
    check(
        Case {
            caps: OPSGENIE,
            now: "3.12",
            mark: None,
            horizon_end: "5.09",
            desired: &[],
            ledger: &[],
            vendor: &["Z 4.00-6.00 eve", "R 5.00-6.00 eve"],
        },
        &["update Z -> 5.09-6.00 eve", "delete R"],
    );
}

#[test]
fn a_failed_clear_holds_the_mark_at_the_start_of_its_shift() {
    let destination = DestinationId("d".into());
    let spans = vec![span("3.12-4.09 ann"), span("4.09-5.09 bob")];
    let desired = Desired::new(t("3.12"), spans, t("5.09")).unwrap();
    let vendor = [ov("X 4.10-4.14 eve")];
    let plan = plan_export(PlanInput {
        destination: &destination,
        role: RoleIndex::PRIMARY,
        mode: DestinationMode::Protect,
        now: t("3.12"),
        desired: &desired,
        vendor: &vendor,
        state: &DestinationState::default(),
        capabilities: PAGERDUTY,
    });
    let delete_x = plan
        .operations
        .iter()
        .find(|o| matches!(&o.action, Action::Delete { target, .. } if target.id.as_str() == "X"))
        .unwrap();
    assert_eq!(
        delete_x.mark_limit,
        Some(t("4.09")),
        "the shift X lies in, not X's own start"
    );
    assert_eq!(plan.next_high_water([delete_x]), Some(t("4.09")));
    assert_eq!(plan.next_high_water([]), Some(t("5.09")));
}

#[test]
fn desired_spans_must_be_sorted_and_disjoint() {
    let err = |spans: &[&str]| {
        Desired::new(
            t("3.12"),
            spans.iter().map(|s| span(s)).collect(),
            t("9.00"),
        )
        .unwrap_err()
    };
    assert!(matches!(
        err(&["4.09-5.09 ann", "4.12-6.00 bob"]),
        oncall_core::ValidationError::InvalidSpan { index: 1, .. }
    ));
    assert!(matches!(
        err(&["5.09-6.09 ann", "4.09-5.09 bob"]),
        oncall_core::ValidationError::InvalidSpan { index: 1, .. }
    ));
    assert!(matches!(
        err(&["5.09-5.09 ann"]),
        oncall_core::ValidationError::InvalidSpan { index: 0, .. }
    ));
}

#[test]
fn an_older_override_of_the_same_person_is_no_stand_in() {
    // PagerDuty shows the newest: Z (eve, newest) over Y (eve, older) and W (ann). Cutting Z must
    // re-create Z's part before the mark, or W would show there instead.
    check(
        Case {
            caps: PAGERDUTY,
            now: "3.12",
            mark: Some("11.09"),
            horizon_end: "20.09",
            desired: &[],
            ledger: &[],
            vendor: &["Y 9.09-11.09 eve", "W 10.09-11.09 ann", "Z 10.12-12.12 eve"],
        },
        &["create 10.12-11.09 eve foreign keeps Z", "delete Z"],
    );
}

#[test]
fn one_warning_per_foreign_override_and_change() {
    // On PagerDuty a swapped day is a delete and a create of the same span: one change, one warning
    // per overlapping foreign override.
    let warnings = check(
        Case {
            caps: PAGERDUTY,
            now: "3.12",
            mark: Some("9.09"),
            horizon_end: "9.09",
            desired: &["6.09-7.09 bob"],
            ledger: &["A 6.09-7.09 ann"],
            vendor: &["A 6.09-7.09 ann", "F 6.10-6.12 eve", "G 6.14-6.16 dan"],
        },
        &["delete A", "create 6.09-7.09 bob"],
    );
    let masking = warnings
        .iter()
        .filter(|w| matches!(w, Warning::ForeignOverlapsChange { .. }))
        .count();
    assert_eq!(masking, 2, "{warnings:?}");
}
