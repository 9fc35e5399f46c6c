//! The simulated `finalTimeline` of one rotation: its turns expanded in the schedule's zone (the
//! core's `expand_rotation`), the overrides that apply to it laid over the times it is active, and
//! everything split at the request instant (with milliseconds) into `historical` and the rest, as
//! the spec's example shows (`historical`, then `base` or `override`).
//!
//! That an override shows only where its rotation is active is Opsgenie's observed behaviour,
//! taken for JSM as well: UNCONFIRMED.

use chrono::{DateTime, TimeDelta, Utc};
use chrono_tz::Tz;
use oncall_core::{expand_rotation, Email, OnCallPeriod, Participant, Rotation, Window};

use super::state::Stored;

/// One period of a simulated timeline: who (`None`: nobody), and its type.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct SimPeriod {
    pub start: DateTime<Utc>,
    pub end: DateTime<Utc>,
    /// `historical`, `base` or `override`.
    pub kind: &'static str,
    pub member: Email,
}

/// Where a stretch comes from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Source {
    Turn(usize),
    Override(u64),
}

/// The rotation's periods over `window`, each whole where it straddles the window's edges (within
/// a week and a day), split at `split`.
pub(crate) fn rotation_periods(
    rotation: &Rotation,
    zone: Tz,
    overrides: &[&Stored],
    window: Window,
    split: DateTime<Utc>,
) -> Vec<SimPeriod> {
    let margin = TimeDelta::days(8);
    let wide = match (
        window.start().checked_sub_signed(margin),
        window.end().checked_add_signed(margin),
    ) {
        (Some(s), Some(e)) => Window::new(s, e).unwrap_or(window),
        _ => window,
    };
    let turns = expand_rotation(rotation, zone, wide).unwrap_or_default();
    let active = active_windows(rotation, zone, wide);
    let mut out = Vec::new();
    for (start, end, source, member) in paint(&turns, &active, overrides, wide) {
        if end <= window.start() || start >= window.end() {
            continue;
        }
        let later = match source {
            Source::Turn(_) => "base",
            Source::Override(_) => "override",
        };
        if start < split && split < end {
            out.push(SimPeriod {
                start,
                end: split,
                kind: "historical",
                member: member.clone(),
            });
            out.push(SimPeriod {
                start: split,
                end,
                kind: later,
                member,
            });
        } else {
            let kind = if end <= split { "historical" } else { later };
            out.push(SimPeriod {
                start,
                end,
                kind,
                member,
            });
        }
    }
    out
}

/// Where the rotation is active, whoever's turn it is: the rotation expanded with one stand-in
/// participant, joined.
fn active_windows(
    rotation: &Rotation,
    zone: Tz,
    wide: Window,
) -> Vec<(DateTime<Utc>, DateTime<Utc>)> {
    let Ok(stand_in) = Email::parse("active@oncall-sync.invalid") else {
        return Vec::new();
    };
    let probe = Rotation {
        participants: vec![Participant::Member(stand_in)],
        ..rotation.clone()
    };
    let mut windows: Vec<(DateTime<Utc>, DateTime<Utc>)> = Vec::new();
    for p in expand_rotation(&probe, zone, wide).unwrap_or_default() {
        match windows.last_mut() {
            Some(last) if last.1 == p.start => last.1 = p.end,
            _ => windows.push((p.start, p.end)),
        }
    }
    windows
}

/// At every instant: where the rotation is active, the last created override covering it, else
/// the turn. Consecutive pieces of one source are joined.
fn paint(
    turns: &[OnCallPeriod],
    active: &[(DateTime<Utc>, DateTime<Utc>)],
    overrides: &[&Stored],
    wide: Window,
) -> Vec<(DateTime<Utc>, DateTime<Utc>, Source, Email)> {
    let mut cuts: Vec<DateTime<Utc>> = turns
        .iter()
        .flat_map(|p| [p.start, p.end])
        .chain(active.iter().flat_map(|a| [a.0, a.1]))
        .chain(overrides.iter().flat_map(|o| [o.span.start, o.span.end]))
        .map(|t| t.clamp(wide.start(), wide.end()))
        .collect();
    cuts.sort_unstable();
    cuts.dedup();
    let mut out: Vec<(DateTime<Utc>, DateTime<Utc>, Source, Email)> = Vec::new();
    for pair in cuts.windows(2) {
        let (s, e) = (pair[0], pair[1]);
        let is_active = active.iter().any(|a| a.0 <= s && e <= a.1);
        let winner = overrides
            .iter()
            .filter(|o| is_active && o.span.start <= s && e <= o.span.end)
            .max_by_key(|o| o.seq);
        let turn = turns.iter().position(|t| t.start <= s && e <= t.end);
        let piece = match (winner, turn) {
            (Some(o), _) => (Source::Override(o.seq), o.span.member.clone()),
            (None, Some(i)) => (Source::Turn(i), turns[i].member.clone()),
            (None, None) => continue,
        };
        match out.last_mut() {
            Some(last) if last.1 == s && last.2 == piece.0 => last.1 = e,
            _ => out.push((s, e, piece.0, piece.1)),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::{NaiveDate, TimeZone};
    use oncall_core::{Restriction, RotationUnit, Span};

    fn email(n: &str) -> Email {
        Email::parse(&format!("{n}@example.com")).unwrap()
    }

    fn t(d: u32, h: u32) -> DateTime<Utc> {
        Utc.with_ymd_and_hms(2024, 1, d, h, 0, 0).unwrap()
    }

    #[test]
    fn overrides_show_where_the_rotation_is_active_and_everything_splits_at_now() {
        let start = NaiveDate::from_ymd_opt(2024, 1, 1)
            .unwrap()
            .and_hms_opt(9, 0, 0)
            .unwrap();
        let mut rotation = Rotation::new(
            "business",
            RotationUnit::Daily,
            1,
            start,
            vec![Participant::Member(email("ann")), Participant::Nobody],
        );
        rotation.restrictions = vec![Restriction::time_of_day(9, 0, 17, 0).unwrap()];
        let o = Stored {
            alias: "x".into(),
            span: Span::new(t(2, 0), t(3, 12), email("cat")),
            seq: 1,
            rotation_ids: None,
        };
        let split = t(2, 12) + TimeDelta::milliseconds(263);
        let window = Window::new(t(1, 0), t(4, 0)).unwrap();
        let got: Vec<_> = rotation_periods(&rotation, chrono_tz::UTC, &[&o], window, split)
            .into_iter()
            .map(|p| (p.start, p.end, p.kind, p.member.as_str().to_owned()))
            .collect();
        let (ann, cat) = ("ann@example.com".to_owned(), "cat@example.com".to_owned());
        assert_eq!(
            got,
            vec![
                (t(1, 9), t(1, 17), "historical", ann.clone()),
                (t(2, 9), split, "historical", cat.clone()),
                (split, t(2, 17), "override", cat.clone()),
                (t(3, 9), t(3, 12), "override", cat),
                (t(3, 12), t(3, 17), "base", ann),
            ]
        );
    }
}
