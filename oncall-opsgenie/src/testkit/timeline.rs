//! The simulated `finalTimeline` of one rotation: its turns expanded in the schedule's zone (the
//! core's `expand_rotation`), overrides laid over the times the rotation is active, and the turns
//! split at the request instant into `historical` and `default` parts, as Opsgenie answers.

use chrono::{DateTime, TimeDelta, Utc};
use chrono_tz::Tz;
use oncall_core::{
    expand_rotation, local_time, resolve_local, Email, Participant, Rotation, RotationUnit, Window,
};

use super::dialect::{Handoffs, OverlapPrecedence};
use super::state::Stored;

/// One period of a simulated timeline.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct SimPeriod {
    pub start: DateTime<Utc>,
    pub end: DateTime<Utc>,
    /// `historical`, `default` or `override`.
    pub kind: &'static str,
    pub member: Email,
}

/// Where the timeline splits periods: the request instant (with milliseconds or not), whether
/// turns are split there, and whether override periods are split there too.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Split {
    pub at: DateTime<Utc>,
    pub turns: bool,
    pub overrides: bool,
}

/// How the simulated vendor draws a rotation: where its turns hand off, and which override wins
/// an overlap.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Drawing {
    pub split: Split,
    pub handoffs: Handoffs,
    pub precedence: OverlapPrecedence,
}

/// Where a stretch of the timeline comes from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Source {
    /// The rotation's own turn (index into its expanded periods).
    Turn(usize),
    /// An override (its creation order).
    Override(u64),
}

/// The rotation's periods over `window`, unclipped: a period that straddles the window's edge
/// comes whole (within a week around it), as the vendor's do (reference §2.5).
///
/// An override applies to the rotation only where the rotation is active: inside its start and
/// end and its restriction windows, whoever's turn it is (`none` turns included). That is the
/// observed behaviour (SR captures), not a documented one: UNCONFIRMED.
pub(crate) fn rotation_periods(
    rotation: &Rotation,
    zone: Tz,
    overrides: &[&Stored],
    window: Window,
    drawing: Drawing,
) -> Vec<SimPeriod> {
    let split = drawing.split;
    let margin = TimeDelta::days(8);
    let wide = match (
        window.start().checked_sub_signed(margin),
        window.end().checked_add_signed(margin),
    ) {
        (Some(s), Some(e)) => Window::new(s, e).unwrap_or(window),
        _ => window,
    };
    let active = active_windows(rotation, zone, wide);
    let turns = turns(rotation, zone, wide, drawing.handoffs, &active);
    let stretches = paint(&turns, &active, overrides, wide, drawing.precedence);
    let (split_turns, split_overrides) = (split.turns, split.overrides);
    let split = split.at;
    let mut out = Vec::new();
    for (start, end, source, member) in stretches {
        if end <= window.start() || start >= window.end() {
            continue;
        }
        match source {
            Source::Override(_) if split_overrides && start < split && split < end => {
                for (start, end) in [(start, split), (split, end)] {
                    out.push(SimPeriod {
                        start,
                        end,
                        kind: "override",
                        member: member.clone(),
                    });
                }
            }
            Source::Override(_) => out.push(SimPeriod {
                start,
                end,
                kind: "override",
                member,
            }),
            Source::Turn(_) => {
                if split_turns && start < split && split < end {
                    out.push(SimPeriod {
                        start,
                        end: split,
                        kind: "historical",
                        member: member.clone(),
                    });
                    out.push(SimPeriod {
                        start: split,
                        end,
                        kind: "default",
                        member,
                    });
                } else {
                    let kind = if end <= split {
                        "historical"
                    } else {
                        "default"
                    };
                    out.push(SimPeriod {
                        start,
                        end,
                        kind,
                        member,
                    });
                }
            }
        }
    }
    out
}

/// The rotation's turns over `wide`: the core's expansion (wall-clock handoffs), or turns of a
/// fixed length in absolute time from the rotation's start, kept where the rotation is active.
fn turns(
    rotation: &Rotation,
    zone: Tz,
    wide: Window,
    handoffs: Handoffs,
    active: &[(DateTime<Utc>, DateTime<Utc>)],
) -> Vec<oncall_core::OnCallPeriod> {
    if handoffs == Handoffs::WallClock || rotation.unit == RotationUnit::Hourly {
        return expand_rotation(rotation, zone, wide).unwrap_or_default();
    }
    // The same rotation in UTC, where a day is always 24 hours; restrictions are local, so they
    // are applied afterwards through the active windows.
    let utc = |t| local_time(chrono_tz::UTC, resolve_local(zone, t));
    let absolute = Rotation {
        start: utc(rotation.start),
        effective_from: rotation.effective_from.map(utc),
        end: rotation.end.map(utc),
        restrictions: Vec::new(),
        ..rotation.clone()
    };
    let mut out = Vec::new();
    for p in expand_rotation(&absolute, chrono_tz::UTC, wide).unwrap_or_default() {
        for &(s, e) in active {
            let (start, end) = (p.start.max(s), p.end.min(e));
            if start < end {
                out.push(oncall_core::OnCallPeriod {
                    start,
                    end,
                    member: p.member.clone(),
                });
            }
        }
    }
    out
}

/// Where the rotation is active (whoever's turn it is): the rotation expanded with one stand-in
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

/// Lays the overrides over the turns: at every instant, the override covering it that the
/// dialect's precedence puts first wins where the rotation is active, else the turn. Consecutive pieces of one source are joined.
fn paint(
    turns: &[oncall_core::OnCallPeriod],
    active: &[(DateTime<Utc>, DateTime<Utc>)],
    overrides: &[&Stored],
    wide: Window,
    precedence: OverlapPrecedence,
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
    let (mut turn, mut window) = (0, 0);
    let mut out: Vec<(DateTime<Utc>, DateTime<Utc>, Source, Email)> = Vec::new();
    for pair in cuts.windows(2) {
        let (s, e) = (pair[0], pair[1]);
        while turn < turns.len() && turns[turn].end <= s {
            turn += 1;
        }
        while window < active.len() && active[window].1 <= s {
            window += 1;
        }
        let is_active = active.get(window).is_some_and(|a| a.0 <= s);
        let winner = overrides
            .iter()
            .filter(|o| is_active && o.span.start <= s && o.span.end >= e)
            .max_by_key(|o| o.precedence(precedence));
        let piece = match (winner, turns.get(turn).filter(|t| t.start <= s)) {
            (Some(o), _) => Some((Source::Override(o.seq), o.span.member.clone())),
            (None, Some(t)) => Some((Source::Turn(turn), t.member.clone())),
            (None, None) => None,
        };
        let Some((source, member)) = piece else {
            continue;
        };
        match out.last_mut() {
            Some(last) if last.1 == s && last.2 == source => last.1 = e,
            _ => out.push((s, e, source, member)),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::{NaiveDate, TimeZone};
    use oncall_core::{OverrideId, Restriction, RotationUnit, Span};

    fn email(n: &str) -> Email {
        Email::parse(&format!("{n}@example.com")).unwrap()
    }

    fn t(d: u32, h: u32) -> DateTime<Utc> {
        Utc.with_ymd_and_hms(2024, 1, d, h, 0, 0).unwrap()
    }

    #[test]
    fn overrides_apply_where_the_rotation_is_active_and_turns_split_at_now() {
        // Business hours 09:00-17:00 UTC, daily turns ann, bob from Jan 1 09:00.
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
        // Cat overrides Jan 2 00:00 to Jan 3 12:00: shows only inside the active hours, and on
        // Jan 2 in the `none` turn too.
        let o = Stored {
            alias: OverrideId::new("x"),
            span: Span::new(t(2, 0), t(3, 12), email("cat")),
            seq: 1,
            written: 1,
            rotations: None,
        };
        let split = t(1, 12) + TimeDelta::milliseconds(401);
        let window = Window::new(t(1, 0), t(4, 0)).unwrap();
        let drawing = Drawing {
            split: Split {
                at: split,
                turns: true,
                overrides: true,
            },
            handoffs: Handoffs::WallClock,
            precedence: OverlapPrecedence::LastCreated,
        };
        let got: Vec<_> = rotation_periods(&rotation, chrono_tz::UTC, &[&o], window, drawing)
            .into_iter()
            .map(|p| (p.start, p.end, p.kind, p.member.as_str().to_owned()))
            .collect();
        let ann = "ann@example.com".to_owned();
        let cat = "cat@example.com".to_owned();
        assert_eq!(
            got,
            vec![
                (t(1, 9), split, "historical", ann.clone()),
                (split, t(1, 17), "default", ann.clone()),
                (t(2, 9), t(2, 17), "override", cat.clone()),
                (t(3, 9), t(3, 12), "override", cat),
                (t(3, 12), t(3, 17), "default", ann),
            ]
        );
    }
}
