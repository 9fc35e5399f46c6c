//! Pure translations between PagerDuty's wire shapes and the core model: layers to rotations,
//! rendered entries to on-call periods, and the checks of both against what PagerDuty rendered in
//! the same answer (turns of whole days, layer precedence). No IO here; the provider resolves user
//! ids first.

use std::collections::HashMap;

use chrono::{DateTime, Days, FixedOffset, NaiveDateTime, NaiveTime, TimeDelta, Utc, Weekday};
use chrono_tz::Tz;
use oncall_core::{
    expand_rotation, resolve_local, Email, Error, OnCallPeriod, Participant, Restriction, Rotation,
    RotationUnit, Window,
};

use crate::error::invalid;
use crate::models::{Layer, WireRestriction};

const HOUR: i64 = 3_600;
const DAY: i64 = 24 * HOUR;
const WEEK: i64 = 7 * DAY;

/// How PagerDuty advances turns of whole days (UNCONFIRMED): the two readings the adapter can
/// import a layer with.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Turns {
    /// Daily and weekly turns hand off at the same local wall time across DST (the default
    /// reading: DESIGN §2 and PagerDuty's UI).
    WallClock,
    /// Every turn lasts its length in absolute seconds.
    AbsoluteSeconds,
}

impl Turns {
    /// The reading's name, as the simulator's dialect and `oncall probe` spell it.
    pub(crate) fn name(self) -> &'static str {
        match self {
            Turns::WallClock => "wall_clock",
            Turns::AbsoluteSeconds => "absolute_seconds",
        }
    }
}

/// A layer's turn length in the core's units, under a reading of turns.
///
/// Under [`Turns::WallClock`], whole weeks are weekly and whole days daily turns, which the core
/// hands off at the same local wall time across DST; under [`Turns::AbsoluteSeconds`] they are
/// hourly turns of as many hours. Other whole hours are hourly turns in absolute time either way.
/// A length that is not a whole number of hours (PagerDuty's UI offers none) has no rotation in
/// the core's model: it is refused rather than approximated.
pub(crate) fn turn_unit(
    seconds: i64,
    path: &str,
    turns: Turns,
) -> Result<(RotationUnit, u32), Error> {
    let unit = |unit, per: i64| {
        u32::try_from(seconds / per)
            .map(|n| (unit, n))
            .map_err(|_| invalid(path, format!("turn length of {seconds} s is out of range")))
    };
    let wall = turns == Turns::WallClock;
    match seconds {
        s if s <= 0 => Err(invalid(path, format!("turn length of {s} s"))),
        s if wall && s % WEEK == 0 => unit(RotationUnit::Weekly, WEEK),
        s if wall && s % DAY == 0 => unit(RotationUnit::Daily, DAY),
        s if s % HOUR == 0 => unit(RotationUnit::Hourly, HOUR),
        s => Err(Error::Unsupported {
            message: format!(
                "layer at `{path}` hands off every {s} s, not a whole number of hours: the \
                 rotation model has no such turn"
            ),
        }),
    }
}

fn local(t: DateTime<FixedOffset>, zone: Tz) -> NaiveDateTime {
    t.with_timezone(&zone).naive_local()
}

fn restriction(r: &WireRestriction, path: &str) -> Result<Restriction, Error> {
    let start = NaiveTime::parse_from_str(&r.start_time_of_day, "%H:%M:%S")
        .map_err(|e| invalid(&format!("{path}.start_time_of_day"), e))?;
    let made = match (r.kind.as_str(), r.start_day_of_week) {
        ("daily_restriction", _) => Restriction::daily(start, r.duration_seconds),
        ("weekly_restriction", Some(day @ 1..=7)) => {
            let day = Weekday::try_from((day - 1) as u8)
                .map_err(|e| invalid(&format!("{path}.start_day_of_week"), e))?;
            Restriction::weekly(day, start, r.duration_seconds)
        }
        ("weekly_restriction", day) => {
            return Err(invalid(
                &format!("{path}.start_day_of_week"),
                format!("{day:?} is not an ISO weekday (1-7)"),
            ))
        }
        (other, _) => {
            return Err(invalid(
                &format!("{path}.type"),
                format!("unknown restriction {other:?}"),
            ))
        }
    };
    made.map_err(|e| invalid(path, e))
}

/// A layer as a core [`Rotation`], in the schedule's zone, or `None` for a layer that covers nothing
/// (ended before it began: PagerDuty never deletes layers, it ends them).
///
/// `rotation_virtual_start` is where turn 0 starts, `start` where coverage begins (when later),
/// `end` where it stops. Restrictions are in the request's time zone, which for `GET
/// /schedules/{id}` is the schedule's own: the zone given here.
pub(crate) fn layer_rotation(
    layer: &Layer,
    zone: Tz,
    emails: &HashMap<String, Email>,
    path: &str,
    turns: Turns,
) -> Result<Option<Rotation>, Error> {
    let (unit, length) = turn_unit(
        layer.rotation_turn_length_seconds,
        &format!("{path}.rotation_turn_length_seconds"),
        turns,
    )?;
    let start = local(layer.rotation_virtual_start, zone);
    let effective = local(layer.start, zone);
    let end = layer.end.map(|e| local(e, zone));
    if end.is_some_and(|end| end <= start.max(effective)) {
        return Ok(None);
    }
    let participants = layer
        .users
        .iter()
        .enumerate()
        .map(|(i, u)| {
            emails
                .get(&u.user.id)
                .cloned()
                .map(Participant::Member)
                .ok_or_else(|| invalid(&format!("{path}.users[{i}].user.id"), "unknown user"))
        })
        .collect::<Result<Vec<_>, _>>()?;
    if participants.is_empty() {
        return Err(invalid(&format!("{path}.users"), "a layer without users"));
    }
    let restrictions = layer
        .restrictions
        .iter()
        .enumerate()
        .map(|(i, r)| restriction(r, &format!("{path}.restrictions[{i}]")))
        .collect::<Result<Vec<_>, _>>()?;
    let name = layer
        .name
        .clone()
        .or_else(|| layer.id.clone())
        .unwrap_or_else(|| "layer".to_owned());
    Ok(Some(Rotation {
        name,
        unit,
        length,
        start,
        effective_from: (effective > start).then_some(effective),
        end,
        participants,
        restrictions,
    }))
}

/// How far ahead of a layer's coverage start [`divergence`] looks for a DST change.
const DIVERGENCE_HORIZON: TimeDelta = TimeDelta::days(800);

/// The first handoff, at or after the layer's coverage start, that the two readings of
/// [`Turns`] put at different instants (a turn of whole days across a DST change), or `None`
/// within two years (a zone without DST, or turns of hours, read alike).
pub(crate) fn divergence(layer: &Layer, zone: Tz) -> Option<DateTime<Utc>> {
    let length = layer.rotation_turn_length_seconds;
    if length <= 0 || length % DAY != 0 {
        return None;
    }
    let anchor = layer.rotation_virtual_start.with_timezone(&Utc);
    let from = layer.start.with_timezone(&Utc).max(anchor);
    let until = from.checked_add_signed(DIVERGENCE_HORIZON)?;
    let until = layer
        .end
        .map_or(until, |e| e.with_timezone(&Utc).min(until));
    let local = anchor.with_timezone(&zone).naive_local();
    let days = u64::try_from(length / DAY).ok()?;
    let first = u64::try_from((from - anchor).num_seconds() / length).unwrap_or(0);
    let mut k = first;
    loop {
        let absolute = anchor.checked_add_signed(TimeDelta::try_seconds(
            i64::try_from(k).ok()?.checked_mul(length)?,
        )?)?;
        if absolute > until {
            return None;
        }
        let wall = resolve_local(
            zone,
            local.checked_add_days(Days::new(k.checked_mul(days)?))?,
        );
        if wall != absolute && absolute.min(wall) >= from {
            return Some(absolute.min(wall));
        }
        k += 1;
    }
}

/// Periods as coverage: clipped to `window`, sorted, adjacent stretches of one person joined
/// (whether PagerDuty splits or joins them is not settled: compare coverage, not entries).
pub(crate) fn coverage(mut periods: Vec<OnCallPeriod>, window: Window) -> Vec<OnCallPeriod> {
    periods.retain(|p| p.start < window.end() && p.end > window.start() && p.start < p.end);
    for p in &mut periods {
        p.start = p.start.max(window.start());
        p.end = p.end.min(window.end());
    }
    periods.sort_by(|a, b| a.start.cmp(&b.start).then(a.end.cmp(&b.end)));
    let mut out: Vec<OnCallPeriod> = Vec::with_capacity(periods.len());
    for p in periods {
        match out.last_mut() {
            Some(last) if last.member == p.member && p.start <= last.end => {
                last.end = last.end.max(p.end);
            }
            _ => out.push(p),
        }
    }
    out
}

/// Whether the core's expansion of `rotation` over `window` is what PagerDuty rendered there.
pub(crate) fn renders_as(
    rotation: &Rotation,
    zone: Tz,
    window: Window,
    rendered: &[OnCallPeriod],
) -> bool {
    match expand_rotation(rotation, zone, window) {
        Ok(ours) => coverage(ours, window) == coverage(rendered.to_vec(), window),
        Err(_) => false,
    }
}

/// Who is on call over `window` when `layers` (highest precedence first) are stacked under the
/// overrides layer: at each instant, an override, else the first layer that covers it.
pub(crate) fn stacked(
    layers: &[&[OnCallPeriod]],
    overrides: &[OnCallPeriod],
    window: Window,
) -> Vec<OnCallPeriod> {
    let levels: Vec<&[OnCallPeriod]> = std::iter::once(overrides)
        .chain(layers.iter().copied())
        .collect();
    let mut cuts: Vec<DateTime<Utc>> = vec![window.start(), window.end()];
    for p in levels.iter().flat_map(|l| l.iter()) {
        cuts.extend([p.start, p.end]);
    }
    cuts.retain(|t| *t >= window.start() && *t <= window.end());
    cuts.sort();
    cuts.dedup();
    let mut out = Vec::new();
    for pair in cuts.windows(2) {
        let (a, b) = (pair[0], pair[1]);
        let who = levels.iter().find_map(|level| {
            level
                .iter()
                .find(|p| p.start <= a && p.end >= b)
                .map(|p| p.member.clone())
        });
        if let Some(member) = who {
            out.push(OnCallPeriod {
                start: a,
                end: b,
                member,
            });
        }
    }
    coverage(out, window)
}

/// Rendered entries (possibly from several chunk reads, with `overflow=true`) as sorted, disjoint
/// periods clipped to `[from, to)`. Only what overlaps is joined: an entry that crosses a chunk
/// border comes whole in both chunks, and its copies become one. Entries of one person that only
/// touch stay apart, as the vendor gave them: consecutive turns are consecutive shifts, as on
/// Opsgenie and the in-memory provider (whether PagerDuty itself joins them is UNCONFIRMED).
pub(crate) fn join_entries(
    mut entries: Vec<OnCallPeriod>,
    from: DateTime<Utc>,
    to: DateTime<Utc>,
) -> Vec<OnCallPeriod> {
    entries.retain(|p| p.start < p.end && p.start < to && p.end > from);
    entries.sort_by(|a, b| a.start.cmp(&b.start).then(a.end.cmp(&b.end)));
    let mut out: Vec<OnCallPeriod> = Vec::with_capacity(entries.len());
    for mut p in entries {
        p.start = p.start.max(from);
        p.end = p.end.min(to);
        match out.last_mut() {
            Some(last) if p.start < last.end && p.member == last.member => {
                last.end = last.end.max(p.end);
            }
            // The final schedule has one person at a time: an overlap of two is cut at the first's
            // end rather than reported twice.
            Some(last) if p.start < last.end => {
                if p.end > last.end {
                    p.start = last.end;
                    out.push(p);
                }
            }
            _ => out.push(p),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    fn email(s: &str) -> Email {
        Email::parse(s).unwrap()
    }

    #[test]
    fn turn_lengths() {
        let u = |s| turn_unit(s, "l", Turns::WallClock);
        assert_eq!(u(604_800 * 2), Ok((RotationUnit::Weekly, 2)));
        assert_eq!(u(86_400), Ok((RotationUnit::Daily, 1)));
        assert_eq!(u(86_400 * 3), Ok((RotationUnit::Daily, 3)));
        assert_eq!(u(3_600 * 12), Ok((RotationUnit::Hourly, 12)));
        assert_eq!(u(3_600 * 36), Ok((RotationUnit::Hourly, 36)));
        assert!(matches!(u(1_800), Err(Error::Unsupported { .. })));
        assert!(matches!(u(0), Err(Error::InvalidResponse { .. })));
        let abs = |s| turn_unit(s, "l", Turns::AbsoluteSeconds);
        assert_eq!(abs(86_400), Ok((RotationUnit::Hourly, 24)));
        assert_eq!(abs(604_800 * 2), Ok((RotationUnit::Hourly, 336)));
        assert_eq!(abs(3_600 * 12), Ok((RotationUnit::Hourly, 12)));
    }

    #[test]
    fn the_readings_of_turns_part_at_the_first_dst_change() {
        let layer: Layer = serde_json::from_str(
            r#"{"id":"PL","start":"2024-03-01T09:00:00+01:00","rotation_virtual_start":"2024-03-01T09:00:00+01:00",
                "rotation_turn_length_seconds":86400,"users":[]}"#,
        )
        .unwrap();
        let berlin = chrono_tz::Europe::Berlin;
        // 2024-03-31 09:00 CEST (07:00 UTC) on the wall clock; 08:00 UTC in absolute seconds.
        assert_eq!(
            divergence(&layer, berlin),
            Some(Utc.with_ymd_and_hms(2024, 3, 31, 7, 0, 0).unwrap())
        );
        assert_eq!(divergence(&layer, chrono_tz::Asia::Kolkata), None);
        let mut hourly = layer;
        hourly.rotation_turn_length_seconds = 43_200;
        assert_eq!(divergence(&hourly, berlin), None);
    }

    #[test]
    fn stacking_puts_overrides_first_then_layers_in_precedence() {
        let t = |h| Utc.with_ymd_and_hms(2024, 1, 1, h, 0, 0).unwrap();
        let p = |s, e, who: &str| OnCallPeriod {
            start: t(s),
            end: t(e),
            member: email(who),
        };
        let window = Window::new(t(0), t(12)).unwrap();
        let top = [p(2, 4, "b@x.io")];
        let base = [p(0, 12, "a@x.io")];
        let overrides = [p(3, 5, "c@x.io")];
        assert_eq!(
            stacked(&[&top, &base], &overrides, window),
            [
                p(0, 2, "a@x.io"),
                p(2, 3, "b@x.io"),
                p(3, 5, "c@x.io"),
                p(5, 12, "a@x.io")
            ]
        );
        assert_eq!(
            stacked(&[&base, &top], &[], window),
            [p(0, 12, "a@x.io")],
            "the other order hides the top layer"
        );
    }

    #[test]
    fn the_spec_example_layer() {
        // GET /schedules/PI7DH85 from the spec, layer PG68P1M.
        let layer: Layer = serde_json::from_str(
            r#"{"name":"Layer 1","id":"PG68P1M","start":"2015-11-06T21:00:00-05:00",
                "rotation_virtual_start":"2015-11-06T20:00:00-05:00","rotation_turn_length_seconds":86400,
                "users":[{"user":{"id":"PXPGF42","type":"user_reference","summary":"Regina Phalange"}}],
                "restrictions":[{"type":"daily_restriction","start_time_of_day":"08:00:00","duration_seconds":32400},
                                {"type":"weekly_restriction","start_day_of_week":5,"start_time_of_day":"18:00:00","duration_seconds":7200}]}"#,
        )
        .unwrap();
        let emails = HashMap::from([("PXPGF42".to_owned(), email("regina@example.com"))]);
        let zone = chrono_tz::America::New_York;
        let r = layer_rotation(
            &layer,
            zone,
            &emails,
            "schedule.schedule_layers[0]",
            Turns::WallClock,
        )
        .unwrap()
        .unwrap();
        let at = |h, m| {
            chrono::NaiveDate::from_ymd_opt(2015, 11, 6)
                .unwrap()
                .and_hms_opt(h, m, 0)
                .unwrap()
        };
        assert_eq!((r.unit, r.length), (RotationUnit::Daily, 1));
        assert_eq!(r.start, at(20, 0));
        assert_eq!(r.effective_from, Some(at(21, 0)));
        assert_eq!(r.end, None);
        assert_eq!(
            r.participants,
            [Participant::Member(email("regina@example.com"))]
        );
        assert_eq!(
            r.restrictions,
            [
                Restriction::daily(NaiveTime::from_hms_opt(8, 0, 0).unwrap(), 32_400).unwrap(),
                Restriction::weekly(
                    Weekday::Fri,
                    NaiveTime::from_hms_opt(18, 0, 0).unwrap(),
                    7_200
                )
                .unwrap()
            ]
        );
        // An unknown user id or a bad restriction names its path.
        let e = layer_rotation(
            &layer,
            zone,
            &HashMap::new(),
            "schedule.schedule_layers[0]",
            Turns::WallClock,
        )
        .unwrap_err();
        assert!(
            e.to_string()
                .contains("schedule.schedule_layers[0].users[0].user.id"),
            "{e}"
        );
        let mut bad = layer.clone();
        bad.restrictions[1].start_day_of_week = Some(8);
        let e = layer_rotation(&bad, zone, &emails, "l", Turns::WallClock).unwrap_err();
        assert!(
            e.to_string()
                .contains("l.restrictions[1].start_day_of_week"),
            "{e}"
        );
        // A layer ended before it began covers nothing.
        let mut ended = layer;
        ended.end = Some(ended.start);
        assert_eq!(
            layer_rotation(&ended, zone, &emails, "l", Turns::WallClock),
            Ok(None)
        );
    }

    #[test]
    fn chunks_join_and_clip() {
        let t = |d, h| Utc.with_ymd_and_hms(2024, 1, d, h, 0, 0).unwrap();
        let p = |s, e, who: &str| OnCallPeriod {
            start: s,
            end: e,
            member: email(who),
        };
        let entries = vec![
            // Chunk 2 repeats the entry crossing the chunk border (overflow=true): one period.
            p(t(2, 9), t(3, 9), "b@x.io"),
            p(t(1, 9), t(2, 9), "a@x.io"),
            p(t(2, 9), t(3, 9), "b@x.io"),
            // The same person's next turn touches the last: two turns, as the vendor gave them
            // (Opsgenie and the in-memory provider keep consecutive turns apart too).
            p(t(3, 9), t(3, 17), "b@x.io"),
            // A partial copy overlapping c's entry is joined into it.
            p(t(4, 9), t(6, 9), "c@x.io"),
            p(t(4, 12), t(5, 9), "c@x.io"),
        ];
        let joined = join_entries(entries, t(1, 12), t(5, 0));
        assert_eq!(
            joined,
            [
                p(t(1, 12), t(2, 9), "a@x.io"),
                p(t(2, 9), t(3, 9), "b@x.io"),
                p(t(3, 9), t(3, 17), "b@x.io"),
                p(t(4, 9), t(5, 0), "c@x.io"),
            ]
        );
    }
}
