//! Golden DST cases (DESIGN §2), restriction behaviour and the merge, through one `check()` helper.

#![allow(clippy::unwrap_used)] // tests: a panic is the failure report

use chrono::{DateTime, NaiveDate, NaiveDateTime, TimeZone, Utc, Weekday};
use chrono_tz::Tz;
use oncall_core::{
    expand_and_merge, expand_rotation, merge_rotations, resolve_local, Email, OnCallPeriod,
    Participant, Restriction, Rotation, RotationUnit, Window,
};

fn utc(s: &str) -> DateTime<Utc> {
    DateTime::parse_from_rfc3339(&format!("{s}:00Z"))
        .unwrap_or_else(|e| panic!("bad instant {s}: {e}"))
        .with_timezone(&Utc)
}

fn local(s: &str) -> NaiveDateTime {
    NaiveDateTime::parse_from_str(s, "%Y-%m-%dT%H:%M")
        .unwrap_or_else(|e| panic!("bad local {s}: {e}"))
}

fn email(name: &str) -> Email {
    Email::parse(&format!("{name}@example.com")).unwrap()
}

fn people(names: &[&str]) -> Vec<Participant> {
    names
        .iter()
        .map(|n| {
            if *n == "-" {
                Participant::Nobody
            } else {
                Participant::Member(email(n))
            }
        })
        .collect()
}

fn rotation(unit: RotationUnit, length: u32, start: &str, names: &[&str]) -> Rotation {
    Rotation::new("r", unit, length, local(start), people(names))
}

/// Expands `rotation` in `zone` over `[from, to)` (UTC, `YYYY-MM-DDTHH:MM`) and compares with
/// `expected` lines `start end member`.
fn check(zone: Tz, rotation: &Rotation, from: &str, to: &str, expected: &[&str]) {
    let window = Window::new(utc(from), utc(to)).unwrap();
    let got: Vec<String> = expand_rotation(rotation, zone, window)
        .unwrap()
        .iter()
        .map(|p| {
            format!(
                "{} {} {}",
                p.start.format("%Y-%m-%dT%H:%M"),
                p.end.format("%Y-%m-%dT%H:%M"),
                p.member.as_str().trim_end_matches("@example.com")
            )
        })
        .collect();
    assert_eq!(got, expected, "{zone} {from}..{to}");
}

#[test]
fn new_york_spring_forward_daily_0900() {
    let r = rotation(RotationUnit::Daily, 1, "2024-03-08T09:00", &["a", "b"]);
    check(
        chrono_tz::America::New_York,
        &r,
        "2024-03-09T14:00",
        "2024-03-11T13:00",
        // 09:00 EST = 14:00Z, then 09:00 EDT = 13:00Z: the turn across the change lasts 23 h.
        &[
            "2024-03-09T14:00 2024-03-10T13:00 b",
            "2024-03-10T13:00 2024-03-11T13:00 a",
        ],
    );
}

#[test]
fn new_york_fall_back_daily_0900() {
    let r = rotation(RotationUnit::Daily, 1, "2024-11-01T09:00", &["a", "b"]);
    check(
        chrono_tz::America::New_York,
        &r,
        "2024-11-02T13:00",
        "2024-11-04T14:00",
        &[
            "2024-11-02T13:00 2024-11-03T14:00 b",
            "2024-11-03T14:00 2024-11-04T14:00 a",
        ],
    );
}

#[test]
fn handoff_in_the_spring_forward_gap_moves_to_the_gap_end() {
    // 02:30 does not exist in New York on 2024-03-10: the handoff moves to 03:00 EDT (07:00Z).
    let r = rotation(RotationUnit::Daily, 1, "2024-03-09T02:30", &["a", "b"]);
    check(
        chrono_tz::America::New_York,
        &r,
        "2024-03-09T07:30",
        "2024-03-11T06:30",
        &[
            "2024-03-09T07:30 2024-03-10T07:00 a",
            "2024-03-10T07:00 2024-03-11T06:30 b",
        ],
    );
}

#[test]
fn handoff_in_the_fall_back_fold_takes_the_earlier_instant() {
    // 01:30 happens twice in New York on 2024-11-03: the first, 01:30 EDT (05:30Z), is the handoff.
    let r = rotation(RotationUnit::Daily, 1, "2024-11-02T01:30", &["a", "b"]);
    check(
        chrono_tz::America::New_York,
        &r,
        "2024-11-02T05:30",
        "2024-11-04T06:30",
        &[
            "2024-11-02T05:30 2024-11-03T05:30 a",
            "2024-11-03T05:30 2024-11-04T06:30 b",
        ],
    );
}

#[test]
fn london_2016_fall_back() {
    let r = rotation(RotationUnit::Daily, 1, "2016-10-29T09:00", &["a", "b"]);
    check(
        chrono_tz::Europe::London,
        &r,
        "2016-10-29T08:00",
        "2016-10-31T09:00",
        &[
            "2016-10-29T08:00 2016-10-30T09:00 a",
            "2016-10-30T09:00 2016-10-31T09:00 b",
        ],
    );
    assert_eq!(
        resolve_local(chrono_tz::Europe::London, local("2016-10-30T01:30")),
        utc("2016-10-30T00:30")
    );
}

#[test]
fn lord_howe_half_hour_dst() {
    let zone = chrono_tz::Australia::Lord_Howe;
    let r = rotation(RotationUnit::Daily, 1, "2024-04-06T09:00", &["a", "b"]);
    // DST ends 2024-04-07: +11:00 to +10:30, so that turn lasts 24.5 h.
    check(
        zone,
        &r,
        "2024-04-05T22:00",
        "2024-04-07T22:30",
        &[
            "2024-04-05T22:00 2024-04-06T22:30 a",
            "2024-04-06T22:30 2024-04-07T22:30 b",
        ],
    );
    // DST starts 2024-10-06: 02:00 jumps to 02:30, so that turn lasts 23.5 h.
    let r = rotation(RotationUnit::Daily, 1, "2024-10-05T09:00", &["a", "b"]);
    check(
        zone,
        &r,
        "2024-10-04T22:30",
        "2024-10-06T22:00",
        &[
            "2024-10-04T22:30 2024-10-05T22:00 a",
            "2024-10-05T22:00 2024-10-06T22:00 b",
        ],
    );
    assert_eq!(
        resolve_local(zone, local("2024-10-06T02:15")),
        utc("2024-10-05T15:30")
    );
    assert_eq!(
        resolve_local(zone, local("2024-04-07T01:45")),
        utc("2024-04-06T14:45")
    );
}

#[test]
fn kolkata_has_no_dst() {
    let r = rotation(RotationUnit::Daily, 1, "2024-03-09T09:00", &["a"]);
    check(
        chrono_tz::Asia::Kolkata,
        &r,
        "2024-03-09T03:30",
        "2024-03-12T03:30",
        &[
            "2024-03-09T03:30 2024-03-10T03:30 a",
            "2024-03-10T03:30 2024-03-11T03:30 a",
            "2024-03-11T03:30 2024-03-12T03:30 a",
        ],
    );
}

#[test]
fn weekly_monday_0900_across_both_transitions() {
    let zone = chrono_tz::America::New_York;
    let r = rotation(RotationUnit::Weekly, 1, "2024-03-04T09:00", &["a", "b"]);
    check(
        zone,
        &r,
        "2024-03-04T14:00",
        "2024-03-18T13:00",
        &[
            "2024-03-04T14:00 2024-03-11T13:00 a",
            "2024-03-11T13:00 2024-03-18T13:00 b",
        ],
    );
    let r = rotation(RotationUnit::Weekly, 1, "2024-10-28T09:00", &["a", "b"]);
    check(
        zone,
        &r,
        "2024-10-28T13:00",
        "2024-11-11T14:00",
        &[
            "2024-10-28T13:00 2024-11-04T14:00 a",
            "2024-11-04T14:00 2024-11-11T14:00 b",
        ],
    );
}

#[test]
fn hourly_rotations_advance_in_absolute_time() {
    // New York's 2024-03-10 has 23 hours: an hourly rotation gives 23 one-hour turns that local day.
    let zone = chrono_tz::America::New_York;
    let r = rotation(
        RotationUnit::Hourly,
        1,
        "2024-03-10T00:00",
        &["a", "b", "c"],
    );
    let window = Window::new(utc("2024-03-10T05:00"), utc("2024-03-11T04:00")).unwrap();
    let periods = expand_rotation(&r, zone, window).unwrap();
    assert_eq!(periods.len(), 23);
    assert!(periods
        .iter()
        .all(|p| p.end - p.start == chrono::TimeDelta::hours(1)));
    assert_eq!(
        periods[22].member,
        email("b"),
        "turn 22 is participant 22 mod 3 = 1"
    );
}

#[test]
fn nobody_turns_leave_gaps_and_windows_clip() {
    let r = rotation(RotationUnit::Daily, 1, "2024-01-01T00:00", &["a", "-", "b"]);
    check(
        chrono_tz::UTC,
        &r,
        "2024-01-01T12:00",
        "2024-01-03T12:00",
        &[
            "2024-01-01T12:00 2024-01-02T00:00 a",
            "2024-01-03T00:00 2024-01-03T12:00 b",
        ],
    );
}

#[test]
fn rotation_end_and_effective_start_bound_coverage() {
    let mut r = rotation(RotationUnit::Daily, 1, "2024-01-01T00:00", &["a", "b"]);
    r.effective_from = Some(local("2024-01-02T06:00"));
    r.end = Some(local("2024-01-03T12:00"));
    check(
        chrono_tz::UTC,
        &r,
        "2024-01-01T00:00",
        "2024-01-05T00:00",
        // Turn 1 belongs to b even though coverage starts inside it.
        &[
            "2024-01-02T06:00 2024-01-03T00:00 b",
            "2024-01-03T00:00 2024-01-03T12:00 a",
        ],
    );
}

#[test]
fn time_of_day_restriction_is_local() {
    // Opsgenie: 10:00-18:00 in a Europe/London schedule is 09:00Z-17:00Z in June (BST).
    let mut r = rotation(RotationUnit::Weekly, 1, "2024-06-10T00:00", &["a"]);
    r.restrictions = vec![Restriction::time_of_day(10, 0, 18, 0).unwrap()];
    check(
        chrono_tz::Europe::London,
        &r,
        "2024-06-14T00:00",
        "2024-06-16T00:00",
        &[
            "2024-06-14T09:00 2024-06-14T17:00 a",
            "2024-06-15T09:00 2024-06-15T17:00 a",
        ],
    );
}

#[test]
fn weekday_restriction_wraps_over_the_weekend() {
    // Friday 18:00 to Monday 10:00, daily handoffs at 12:00 keep cutting the window into turns.
    let mut r = rotation(RotationUnit::Daily, 1, "2024-06-03T12:00", &["a", "b"]);
    r.restrictions =
        vec![Restriction::weekday_and_time(Weekday::Fri, 18, 0, Weekday::Mon, 10, 0).unwrap()];
    check(
        chrono_tz::UTC,
        &r,
        "2024-06-06T00:00",
        "2024-06-12T00:00",
        &[
            "2024-06-07T18:00 2024-06-08T12:00 a",
            "2024-06-08T12:00 2024-06-09T12:00 b",
            "2024-06-09T12:00 2024-06-10T10:00 a",
        ],
    );
}

#[test]
fn restriction_window_across_midnight_and_dst() {
    // A 22:00-06:00 window stays on local wall time across the New York spring-forward night; the
    // weekly handoff at Monday 00:00 EDT (04:00Z) cuts the second window.
    let mut r = rotation(RotationUnit::Weekly, 1, "2024-03-04T00:00", &["a"]);
    r.restrictions = vec![Restriction::time_of_day(22, 0, 6, 0).unwrap()];
    check(
        chrono_tz::America::New_York,
        &r,
        "2024-03-10T00:00",
        "2024-03-11T12:00",
        &[
            "2024-03-10T03:00 2024-03-10T10:00 a",
            "2024-03-11T02:00 2024-03-11T04:00 a",
            "2024-03-11T04:00 2024-03-11T10:00 a",
        ],
    );
}

#[test]
fn pagerduty_style_daily_and_weekly_restrictions() {
    let t = |h| chrono::NaiveTime::from_hms_opt(h, 0, 0).unwrap();
    let mut r = rotation(RotationUnit::Weekly, 1, "2024-06-03T00:00", &["a"]);
    r.restrictions = vec![
        Restriction::daily(t(8), 9 * 3600).unwrap(),
        Restriction::weekly(Weekday::Sat, t(20), 3600 * 30).unwrap(),
    ];
    check(
        chrono_tz::UTC,
        &r,
        "2024-06-08T00:00",
        "2024-06-10T00:00",
        &[
            "2024-06-08T08:00 2024-06-08T17:00 a",
            // Saturday 20:00 + 30 h ends Monday 02:00; Sunday's daily window falls inside it.
            "2024-06-08T20:00 2024-06-10T00:00 a",
        ],
    );
}

#[test]
fn merge_by_position_splits_and_joins() {
    let zone = chrono_tz::UTC;
    let primary = rotation(RotationUnit::Daily, 1, "2024-01-01T09:00", &["a", "b"]);
    let mut secondary = rotation(RotationUnit::Daily, 2, "2024-01-01T00:00", &["c"]);
    secondary.restrictions = vec![Restriction::time_of_day(0, 0, 12, 0).unwrap()];
    let window = Window::new(utc("2024-01-01T09:00"), utc("2024-01-02T12:00")).unwrap();
    let shifts = expand_and_merge(&[primary, secondary], zone, window).unwrap();
    let got: Vec<String> = shifts
        .iter()
        .map(|s| {
            let names: Vec<&str> = s
                .assignees
                .iter()
                .map(|a| {
                    a.as_ref()
                        .map_or("-", |e| e.as_str().trim_end_matches("@example.com"))
                })
                .collect();
            format!(
                "{} {} {}",
                s.start.format("%dT%H"),
                s.end.format("%dT%H"),
                names.join(",")
            )
        })
        .collect();
    assert_eq!(
        got,
        [
            "01T09 01T12 a,c",
            "01T12 02T00 a,-",
            "02T00 02T09 a,c",
            "02T09 02T12 b,c"
        ]
    );
}

#[test]
fn merge_drops_stretches_where_everyone_is_empty_and_joins_equal_neighbours() {
    let p = |s: &str, e: &str, who: &str| OnCallPeriod {
        start: utc(s),
        end: utc(e),
        member: email(who),
    };
    let a = vec![
        p("2024-01-01T00:00", "2024-01-01T06:00", "a"),
        p("2024-01-01T06:00", "2024-01-01T12:00", "a"),
    ];
    let b = vec![p("2024-01-01T14:00", "2024-01-01T16:00", "b")];
    let shifts = merge_rotations(&[a, b]);
    assert_eq!(shifts.len(), 2);
    assert_eq!(
        (shifts[0].start, shifts[0].end),
        (utc("2024-01-01T00:00"), utc("2024-01-01T12:00"))
    );
    assert_eq!(shifts[1].assignees, vec![None, Some(email("b"))]);
}

#[test]
fn long_windows_far_from_the_start_are_found_quickly_and_exactly() {
    // The turn search estimates from nominal lengths and corrects for DST drift over decades.
    let zone = chrono_tz::Europe::Berlin;
    let r = rotation(
        RotationUnit::Daily,
        3,
        "2001-01-01T09:00",
        &["a", "b", "c", "d"],
    );
    let window = Window::new(utc("2031-07-01T00:00"), utc("2031-07-10T00:00")).unwrap();
    let periods = expand_rotation(&r, zone, window).unwrap();
    let start = NaiveDate::from_ymd_opt(2001, 1, 1).unwrap();
    for p in &periods[1..] {
        let local = p.start.with_timezone(&zone);
        assert_eq!(local.format("%H:%M").to_string(), "09:00");
        let days = (local.date_naive() - start).num_days();
        assert_eq!(days % 3, 0);
        let turn = (days / 3) % 4;
        assert_eq!(p.member, email(["a", "b", "c", "d"][turn as usize]));
    }
    assert_eq!(
        chrono_tz::UTC
            .with_ymd_and_hms(2031, 7, 1, 0, 0, 0)
            .unwrap(),
        periods[0].start
    );
}
