//! Property tests for rotation expansion and merging (DESIGN §2).

#![allow(clippy::unwrap_used)] // tests: a panic is the failure report

use chrono::{DateTime, Days, NaiveDate, NaiveDateTime, NaiveTime, TimeDelta, Utc};
use chrono_tz::Tz;
use oncall_core::{
    expand_rotation, local_date, merge_rotations, resolve_local, Email, OnCallPeriod, Participant,
    Restriction, Rotation, RotationUnit, Window,
};
use proptest::prelude::*;

const ZONES: [Tz; 7] = [
    chrono_tz::America::New_York,
    chrono_tz::Europe::London,
    chrono_tz::Europe::Berlin,
    chrono_tz::Australia::Lord_Howe,
    chrono_tz::Australia::Sydney,
    chrono_tz::Asia::Kolkata,
    chrono_tz::UTC,
];

fn email(i: usize) -> Email {
    Email::parse(&format!("p{i}@example.com")).unwrap()
}

fn base() -> NaiveDateTime {
    NaiveDate::from_ymd_opt(2023, 12, 1)
        .unwrap()
        .and_hms_opt(0, 0, 0)
        .unwrap()
}

fn unit() -> impl Strategy<Value = RotationUnit> {
    prop_oneof![
        Just(RotationUnit::Hourly),
        Just(RotationUnit::Daily),
        Just(RotationUnit::Weekly)
    ]
}

fn restriction() -> impl Strategy<Value = Restriction> {
    (
        0u32..24,
        prop_oneof![Just(0u32), Just(30)],
        0u32..24,
        0u32..7,
        any::<bool>(),
    )
        .prop_map(|(sh, sm, eh, day, weekly)| {
            if weekly {
                let d = |n: u32| chrono::Weekday::try_from(n as u8).unwrap();
                Restriction::weekday_and_time(d(day), sh, sm, d((day + 2) % 7), eh, 0).unwrap()
            } else {
                Restriction::time_of_day(sh, sm, eh, 0).unwrap()
            }
        })
}

prop_compose! {
    fn rotation(allow_nobody: bool)(
        unit in unit(),
        length in 1u32..4,
        start_minutes in 0i64..(400 * 24 * 4),
        people in prop::collection::vec(0usize..5, 1..5),
        restrictions in prop::collection::vec(restriction(), 0..3),
    ) -> Rotation {
        let participants = people
            .into_iter()
            .map(|i| if allow_nobody && i == 4 { Participant::Nobody } else { Participant::Member(email(i)) })
            .collect();
        let mut r = Rotation::new(
            "r",
            unit,
            length,
            base() + TimeDelta::minutes(start_minutes * 15),
            participants,
        );
        r.restrictions = restrictions;
        r
    }
}

prop_compose! {
    /// Three increasing instants in 2023-2025.
    fn split_window()(a in 0i64..(500 * 24), ab in 1i64..(24 * 30), bc in 1i64..(24 * 30), jitter in 0i64..60)
        -> (DateTime<Utc>, DateTime<Utc>, DateTime<Utc>)
    {
        let a = base().and_utc() + TimeDelta::hours(a) + TimeDelta::minutes(jitter);
        (a, a + TimeDelta::hours(ab) + TimeDelta::minutes(jitter), a + TimeDelta::hours(ab + bc))
    }
}

fn cut_at(periods: Vec<OnCallPeriod>, b: DateTime<Utc>) -> Vec<OnCallPeriod> {
    periods
        .into_iter()
        .flat_map(|p| {
            if p.start < b && b < p.end {
                vec![
                    OnCallPeriod {
                        end: b,
                        ..p.clone()
                    },
                    OnCallPeriod { start: b, ..p },
                ]
            } else {
                vec![p]
            }
        })
        .collect()
}

fn who_at(periods: &[OnCallPeriod], t: DateTime<Utc>) -> Option<&Email> {
    periods
        .iter()
        .find(|p| p.start <= t && t < p.end)
        .map(|p| &p.member)
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    /// Expanding [a, c) equals expanding [a, b) then [b, c), once the first is cut at b.
    #[test]
    fn expansion_splits_at_any_instant(zone in prop::sample::select(ZONES.to_vec()), r in rotation(true), (a, b, c) in split_window()) {
        let whole = expand_rotation(&r, zone, Window::new(a, c).unwrap()).unwrap();
        let mut parts = expand_rotation(&r, zone, Window::new(a, b).unwrap()).unwrap();
        parts.extend(expand_rotation(&r, zone, Window::new(b, c).unwrap()).unwrap());
        prop_assert_eq!(cut_at(whole, b), parts);
    }

    /// Periods are sorted, disjoint, non-empty and inside the window.
    #[test]
    fn periods_are_sorted_and_inside(zone in prop::sample::select(ZONES.to_vec()), r in rotation(true), (a, _b, c) in split_window()) {
        let periods = expand_rotation(&r, zone, Window::new(a, c).unwrap()).unwrap();
        for p in &periods {
            prop_assert!(p.start < p.end && p.start >= a && p.end <= c);
        }
        for w in periods.windows(2) {
            prop_assert!(w[0].end <= w[1].start);
        }
    }

    /// Merged shifts are sorted and disjoint, and at every instant role i's assignee is rotation i's
    /// on-call member.
    #[test]
    fn merge_keeps_every_role(
        zone in prop::sample::select(ZONES.to_vec()),
        rotations in prop::collection::vec(rotation(true), 1..4),
        (a, _b, c) in split_window(),
    ) {
        let window = Window::new(a, c).unwrap();
        let periods: Vec<Vec<OnCallPeriod>> =
            rotations.iter().map(|r| expand_rotation(r, zone, window).unwrap()).collect();
        let shifts = merge_rotations(&periods);
        for w in shifts.windows(2) {
            prop_assert!(w[0].end <= w[1].start);
            prop_assert!(w[0].end < w[1].start || w[0].assignees != w[1].assignees, "equal neighbours are joined");
        }
        let mut probes: Vec<DateTime<Utc>> = periods
            .iter()
            .flatten()
            .flat_map(|p| [p.start, p.end - TimeDelta::seconds(1), p.start + (p.end - p.start) / 2])
            .chain(shifts.iter().flat_map(|s| [s.start, s.end]))
            .collect();
        probes.sort_unstable();
        probes.dedup();
        for t in probes {
            let shift = shifts.iter().find(|s| s.start <= t && t < s.end);
            for (i, p) in periods.iter().enumerate() {
                let expected = who_at(p, t);
                let got = shift.and_then(|s| s.assignees[i].as_ref());
                prop_assert_eq!(got, expected, "role {} at {}", i, t);
            }
            if let Some(s) = shift {
                prop_assert!(s.assignees.iter().any(Option::is_some), "no shift is empty in every role");
            }
        }
    }

    /// Every daily handoff falls on the configured local time of its day (or the end of that day's
    /// gap when the time does not exist).
    #[test]
    fn daily_handoffs_keep_local_time(
        zone in prop::sample::select(ZONES.to_vec()),
        length in 1u32..3,
        minute_of_day in 0u32..(24 * 4),
        (a, _b, c) in split_window(),
    ) {
        let time = NaiveTime::from_num_seconds_from_midnight_opt(minute_of_day * 15 * 60, 0).unwrap();
        let start = base().date().and_time(time);
        let r = Rotation::new("daily", RotationUnit::Daily, length, start, (0..3).map(|i| Participant::Member(email(i))).collect());
        let periods = expand_rotation(&r, zone, Window::new(a, c).unwrap()).unwrap();
        for p in periods.iter().filter(|p| p.start > a) {
            let day = local_date(zone, p.start);
            let expected = resolve_local(zone, day.and_time(time));
            let previous_day = resolve_local(zone, (day - Days::new(1)).and_time(time));
            prop_assert!(p.start == expected || p.start == previous_day, "handoff {} is not at {} local", p.start, time);
            let days = (day - base().date()).num_days();
            prop_assert!(p.start != expected || days % i64::from(length) == 0, "handoff every {} days", length);
        }
    }
}
