//! Rotation configuration as both vendors express it, its expansion into on-call periods, and the merge
//! of several rotations into multi-role shifts (DESIGN §1.3, §2).

use chrono::{
    DateTime, Datelike, Days, NaiveDate, NaiveDateTime, NaiveTime, TimeDelta, Utc, Weekday,
};
use chrono_tz::Tz;
use serde::{Deserialize, Serialize};

use crate::error::ValidationError;
use crate::model::{Email, Shift, Window};
use crate::time::{check_year, local_date, resolve_local};

/// How a rotation's turn length is counted.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum RotationUnit {
    /// Turns of `length` hours, in absolute time (a turn across a DST change still lasts `length` hours).
    Hourly,
    /// Turns of `length` days that hand off at the same local wall time (23 h or 25 h across DST).
    Daily,
    /// Turns of `length` weeks that hand off at the same local wall time.
    Weekly,
}

/// One slot in a rotation's order.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Participant {
    /// A person, by email.
    Member(Email),
    /// Nobody: the turn is a gap in the rotation.
    Nobody,
}

/// A recurring local-time window during which a rotation is active. Outside every window of a
/// rotation that has some, the rotation has nobody on call; turns keep advancing underneath.
///
/// `day: None` repeats daily, `day: Some(d)` weekly from weekday `d`. The window ends at the local wall
/// time `start + duration` (so a 09:00-17:00 window stays 09:00-17:00 across DST); a window may wrap
/// across midnight or, when weekly, across days.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Restriction {
    /// Weekday the window starts on, or `None` for every day.
    pub day: Option<Weekday>,
    /// Local time the window starts.
    pub start: NaiveTime,
    /// Length of the window in seconds: up to a day for daily windows, a week for weekly ones.
    pub duration_seconds: u32,
}

const DAY_SECONDS: u32 = 86_400;
const WEEK_SECONDS: u32 = 7 * DAY_SECONDS;

fn hm_seconds(hour: u32, minute: u32) -> Result<u32, ValidationError> {
    if hour > 24 || minute > 59 || (hour == 24 && minute != 0) {
        return Err(ValidationError::RestrictionTime { hour, minute });
    }
    Ok(hour * 3600 + minute * 60)
}

fn time_of(seconds: u32) -> NaiveTime {
    NaiveTime::from_num_seconds_from_midnight_opt(seconds % DAY_SECONDS, 0)
        .unwrap_or(NaiveTime::MIN)
}

impl Restriction {
    /// A daily window (PagerDuty `daily_restriction`).
    pub fn daily(start: NaiveTime, duration_seconds: u32) -> Result<Restriction, ValidationError> {
        let r = Restriction {
            day: None,
            start,
            duration_seconds,
        };
        r.validate()?;
        Ok(r)
    }

    /// A weekly window (PagerDuty `weekly_restriction`).
    pub fn weekly(
        day: Weekday,
        start: NaiveTime,
        duration_seconds: u32,
    ) -> Result<Restriction, ValidationError> {
        let r = Restriction {
            day: Some(day),
            start,
            duration_seconds,
        };
        r.validate()?;
        Ok(r)
    }

    /// A time-of-day window (Opsgenie `time-of-day`): hours 0-24. An end at or before the start wraps
    /// past midnight; equal start and end mean the whole day.
    pub fn time_of_day(
        start_hour: u32,
        start_minute: u32,
        end_hour: u32,
        end_minute: u32,
    ) -> Result<Restriction, ValidationError> {
        let start = hm_seconds(start_hour, start_minute)?;
        let end = hm_seconds(end_hour, end_minute)?;
        let duration = if end > start {
            end - start
        } else {
            end + DAY_SECONDS - start
        };
        Restriction::daily(time_of(start), duration)
    }

    /// A weekday-and-time window (Opsgenie `weekday-and-time-of-day`), which may wrap across days and
    /// the week end (Friday 18:00 to Monday 10:00). An end at or before the start means a full week.
    pub fn weekday_and_time(
        start_day: Weekday,
        start_hour: u32,
        start_minute: u32,
        end_day: Weekday,
        end_hour: u32,
        end_minute: u32,
    ) -> Result<Restriction, ValidationError> {
        let start =
            start_day.num_days_from_monday() * DAY_SECONDS + hm_seconds(start_hour, start_minute)?;
        let end = end_day.num_days_from_monday() * DAY_SECONDS + hm_seconds(end_hour, end_minute)?;
        let duration = if end > start {
            end - start
        } else {
            end + WEEK_SECONDS - start
        };
        // A start of 24:00 belongs to the next day (and Sunday 24:00 to Monday).
        let day = Weekday::try_from(((start / DAY_SECONDS) % 7) as u8).unwrap_or(start_day);
        Restriction::weekly(day, time_of(start), duration)
    }

    fn max_seconds(&self) -> u32 {
        if self.day.is_some() {
            WEEK_SECONDS
        } else {
            DAY_SECONDS
        }
    }

    /// Checks the duration against the window's period.
    pub fn validate(&self) -> Result<(), ValidationError> {
        if self.duration_seconds == 0 || self.duration_seconds > self.max_seconds() {
            return Err(ValidationError::RestrictionDuration {
                seconds: self.duration_seconds,
                max_seconds: self.max_seconds(),
            });
        }
        Ok(())
    }
}

/// A rotation: participants take turns of `length` units from `start`, optionally only inside
/// restriction windows. Times are local wall times in the schedule's zone.
///
/// Turn `k` (from 0) starts at `start + k × length units` and belongs to participant `k mod n`.
/// Coverage begins at `start`, or at `effective_from` when that is later (PagerDuty layers whose
/// `rotation_virtual_start` precedes their `start`), and stops at `end`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Rotation {
    /// Display name.
    pub name: String,
    /// Unit of the turn length.
    pub unit: RotationUnit,
    /// Turn length in units, at least 1.
    pub length: u32,
    /// Local wall time of the first handoff (turn 0).
    pub start: NaiveDateTime,
    /// Local wall time before which the rotation covers nothing, when later than `start`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub effective_from: Option<NaiveDateTime>,
    /// Local wall time the rotation stops, if it does.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub end: Option<NaiveDateTime>,
    /// Turn order.
    pub participants: Vec<Participant>,
    /// Windows the rotation is limited to; empty means always.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub restrictions: Vec<Restriction>,
}

impl Rotation {
    /// A rotation with no end and no restrictions.
    pub fn new(
        name: impl Into<String>,
        unit: RotationUnit,
        length: u32,
        start: NaiveDateTime,
        participants: Vec<Participant>,
    ) -> Rotation {
        Rotation {
            name: name.into(),
            unit,
            length,
            start,
            effective_from: None,
            end: None,
            participants,
            restrictions: Vec::new(),
        }
    }

    /// Checks every rule the expansion relies on.
    pub fn validate(&self) -> Result<(), ValidationError> {
        if self.length == 0 {
            return Err(ValidationError::ZeroRotationLength {
                rotation: self.name.clone(),
            });
        }
        if self.participants.is_empty() {
            return Err(ValidationError::NoParticipants {
                rotation: self.name.clone(),
            });
        }
        for (what, t) in [
            ("rotation start", Some(self.start)),
            ("rotation effective start", self.effective_from),
            ("rotation end", self.end),
        ] {
            if let Some(t) = t {
                check_year(what, t.date(), || t.to_string())?;
            }
        }
        if let Some(end) = self.end {
            if end <= self.start.max(self.effective_from.unwrap_or(self.start)) {
                return Err(ValidationError::RotationEndsBeforeStart {
                    rotation: self.name.clone(),
                    start: self.start,
                    end,
                });
            }
        }
        self.restrictions.iter().try_for_each(Restriction::validate)
    }
}

/// One person on call for one rotation over `[start, end)`.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct OnCallPeriod {
    /// First instant.
    pub start: DateTime<Utc>,
    /// First instant after.
    pub end: DateTime<Utc>,
    /// Who is on call.
    pub member: Email,
}

/// Where turn `k` starts, or `None` past chrono's range.
fn turn_start(
    rotation: &Rotation,
    zone: Tz,
    anchor: DateTime<Utc>,
    k: u64,
) -> Option<DateTime<Utc>> {
    let length = u64::from(rotation.length);
    match rotation.unit {
        RotationUnit::Hourly => {
            let hours = i64::try_from(k.checked_mul(length)?).ok()?;
            anchor.checked_add_signed(TimeDelta::try_hours(hours)?)
        }
        RotationUnit::Daily => {
            let local = rotation
                .start
                .checked_add_days(Days::new(k.checked_mul(length)?))?;
            Some(resolve_local(zone, local))
        }
        RotationUnit::Weekly => {
            let local = rotation
                .start
                .checked_add_days(Days::new(k.checked_mul(length)?.checked_mul(7)?))?;
            Some(resolve_local(zone, local))
        }
    }
}

fn nominal_turn_seconds(rotation: &Rotation) -> i64 {
    let unit = match rotation.unit {
        RotationUnit::Hourly => 3_600,
        RotationUnit::Daily => 86_400,
        RotationUnit::Weekly => 604_800,
    };
    unit * i64::from(rotation.length)
}

/// Expands a rotation into the periods someone is on call inside `window`, sorted and disjoint.
///
/// Periods are cut at turn handoffs and at the window's edges, so expanding `[a, c)` gives the same
/// periods as expanding `[a, b)` and then `[b, c)`, once those are cut at `b`.
///
/// ```
/// use chrono::{NaiveDate, TimeZone, Utc};
/// use oncall_core::{expand_rotation, Email, Participant, Rotation, RotationUnit, Window};
///
/// let tz = chrono_tz::Europe::Berlin;
/// let start = NaiveDate::from_ymd_opt(2024, 3, 29).unwrap().and_hms_opt(9, 0, 0).unwrap();
/// let ada = Participant::Member(Email::parse("ada@example.com").unwrap());
/// let rotation = Rotation::new("daily", RotationUnit::Daily, 1, start, vec![ada]);
/// let window = Window::new(
///     Utc.with_ymd_and_hms(2024, 3, 30, 8, 0, 0).unwrap(),
///     Utc.with_ymd_and_hms(2024, 4, 1, 7, 0, 0).unwrap(),
/// )
/// .unwrap();
/// let periods = expand_rotation(&rotation, tz, window).unwrap();
/// // Europe/Berlin springs forward on 2024-03-31: the turn from 09:00 CET to 09:00 CEST lasts 23 h.
/// assert_eq!(periods[0].end, Utc.with_ymd_and_hms(2024, 3, 31, 7, 0, 0).unwrap());
/// assert_eq!(periods[1].end - periods[1].start, chrono::TimeDelta::hours(24));
/// ```
pub fn expand_rotation(
    rotation: &Rotation,
    zone: Tz,
    window: Window,
) -> Result<Vec<OnCallPeriod>, ValidationError> {
    rotation.validate()?;
    for (what, t) in [
        ("window start", window.start()),
        ("window end", window.end()),
    ] {
        check_year(what, t.date_naive(), || t.to_string())?;
    }
    let anchor = resolve_local(zone, rotation.start);
    let coverage_start = match rotation.effective_from {
        Some(from) => anchor.max(resolve_local(zone, from)),
        None => anchor,
    };
    let lo = window.start().max(coverage_start);
    let hi = match rotation.end {
        Some(end) => window.end().min(resolve_local(zone, end)),
        None => window.end(),
    };
    if lo >= hi {
        return Ok(Vec::new());
    }

    // Find the turn that contains `lo`: estimate from the nominal length, then correct for DST drift.
    let nominal = nominal_turn_seconds(rotation);
    let mut k = u64::try_from((lo - anchor).num_seconds() / nominal).unwrap_or(0);
    while k > 0 && turn_start(rotation, zone, anchor, k).is_none_or(|t| t > lo) {
        k -= 1;
    }
    while turn_start(rotation, zone, anchor, k + 1).is_some_and(|t| t <= lo) {
        k += 1;
    }

    let restriction_windows = restriction_windows(&rotation.restrictions, zone, lo, hi);
    let participants = rotation.participants.len() as u64;
    // Sized from the nominal turn count (capped: it is only a hint).
    let turns = (hi - lo).num_seconds() / nominal + 2;
    let mut periods = Vec::with_capacity(usize::try_from(turns.min(1 << 16)).unwrap_or(0));
    let mut next_window = 0;
    let Some(mut turn_begin) = turn_start(rotation, zone, anchor, k) else {
        return Ok(periods);
    };
    while turn_begin < hi {
        let turn_end = turn_start(rotation, zone, anchor, k + 1).unwrap_or(hi);
        let start = turn_begin.max(lo);
        let end = turn_end.min(hi);
        let index = usize::try_from(k % participants).unwrap_or(0);
        if let (Participant::Member(member), true) = (&rotation.participants[index], start < end) {
            match &restriction_windows {
                None => periods.push(OnCallPeriod {
                    start,
                    end,
                    member: member.clone(),
                }),
                Some(windows) => {
                    // Windows are sorted and disjoint; skip those that end before this turn.
                    while next_window < windows.len() && windows[next_window].1 <= start {
                        next_window += 1;
                    }
                    let mut w = next_window;
                    while w < windows.len() && windows[w].0 < end {
                        let (s, e) = (windows[w].0.max(start), windows[w].1.min(end));
                        if s < e {
                            periods.push(OnCallPeriod {
                                start: s,
                                end: e,
                                member: member.clone(),
                            });
                        }
                        w += 1;
                    }
                }
            }
        }
        if turn_end >= hi {
            break;
        }
        turn_begin = turn_end;
        k += 1;
    }
    Ok(periods)
}

/// The union of all restriction windows that touch `[lo, hi)`, sorted and disjoint, or `None` when the
/// rotation is unrestricted.
fn restriction_windows(
    restrictions: &[Restriction],
    zone: Tz,
    lo: DateTime<Utc>,
    hi: DateTime<Utc>,
) -> Option<Vec<(DateTime<Utc>, DateTime<Utc>)>> {
    if restrictions.is_empty() {
        return None;
    }
    // A weekly window can start up to a week (plus a DST hour) before it reaches `lo`.
    let first: NaiveDate = local_date(zone, lo) - Days::new(8);
    let last: NaiveDate = local_date(zone, hi);
    let mut windows = Vec::new();
    let mut day = first;
    while day <= last {
        for r in restrictions {
            if r.day.is_some_and(|d| d != day.weekday()) {
                continue;
            }
            let local_start = day.and_time(r.start);
            let Some(local_end) =
                local_start.checked_add_signed(TimeDelta::seconds(i64::from(r.duration_seconds)))
            else {
                continue;
            };
            let (s, e) = (
                resolve_local(zone, local_start),
                resolve_local(zone, local_end),
            );
            if s < e && e > lo && s < hi {
                windows.push((s, e));
            }
        }
        let Some(next) = day.succ_opt() else { break };
        day = next;
    }
    windows.sort_unstable();
    let mut merged: Vec<(DateTime<Utc>, DateTime<Utc>)> = Vec::with_capacity(windows.len());
    for (s, e) in windows {
        match merged.last_mut() {
            Some(last) if s <= last.1 => last.1 = last.1.max(e),
            _ => merged.push((s, e)),
        }
    }
    Some(merged)
}

/// Merges several rotations' periods into shifts: role `i` comes from `rotations[i]`.
///
/// Shifts split at every boundary of any rotation; a role nobody covers is `None`; spans where every
/// role is empty produce no shift; adjacent shifts with the same assignees in every role are joined.
/// Each input must be sorted and disjoint, as [`expand_rotation`] returns it.
///
/// ```
/// use chrono::{TimeZone, Utc};
/// use oncall_core::{merge_rotations, Email, OnCallPeriod};
///
/// let t = |h| Utc.with_ymd_and_hms(2024, 1, 1, h, 0, 0).unwrap();
/// let (a, b) = (Email::parse("a@x.io").unwrap(), Email::parse("b@x.io").unwrap());
/// let primary = vec![OnCallPeriod { start: t(0), end: t(12), member: a.clone() }];
/// let secondary = vec![OnCallPeriod { start: t(6), end: t(18), member: b.clone() }];
/// let shifts = merge_rotations(&[primary, secondary]);
/// assert_eq!(shifts.len(), 3);
/// assert_eq!(shifts[1].assignees, vec![Some(a), Some(b.clone())]);
/// assert_eq!(shifts[2].assignees, vec![None, Some(b)]);
/// ```
pub fn merge_rotations(rotations: &[Vec<OnCallPeriod>]) -> Vec<Shift> {
    // A sweep over the rotations' own sorted periods: O(boundaries × rotations), no sort.
    let mut cursors = vec![0usize; rotations.len()];
    let mut shifts: Vec<Shift> = Vec::new();
    // Filled per piece and compared with the previous shift before anything is allocated.
    let mut assignees: Vec<Option<&Email>> = vec![None; rotations.len()];
    let Some(mut at) = rotations
        .iter()
        .filter_map(|p| p.first())
        .map(|p| p.start)
        .min()
    else {
        return shifts;
    };
    loop {
        let mut next: Option<DateTime<Utc>> = None;
        for ((periods, cursor), slot) in rotations
            .iter()
            .zip(cursors.iter_mut())
            .zip(assignees.iter_mut())
        {
            while *cursor < periods.len() && periods[*cursor].end <= at {
                *cursor += 1;
            }
            *slot = None;
            if let Some(p) = periods.get(*cursor) {
                // The rotation's next boundary: the end of the period covering `at`, or the next start.
                let boundary = if p.start <= at {
                    *slot = Some(&p.member);
                    p.end
                } else {
                    p.start
                };
                next = Some(next.map_or(boundary, |n| n.min(boundary)));
            }
        }
        let Some(end) = next else { break };
        if assignees.iter().any(Option::is_some) {
            match shifts.last_mut() {
                Some(last)
                    if last.end == at
                        && last
                            .assignees
                            .iter()
                            .map(Option::as_ref)
                            .eq(assignees.iter().copied()) =>
                {
                    last.end = end;
                }
                _ => shifts.push(Shift::new(
                    at,
                    end,
                    assignees.iter().map(|a| a.cloned()).collect(),
                )),
            }
        }
        at = end;
    }
    shifts
}

/// Expands several rotations over one window and merges them by position (role `i` from rotation `i`).
pub fn expand_and_merge(
    rotations: &[Rotation],
    zone: Tz,
    window: Window,
) -> Result<Vec<Shift>, ValidationError> {
    let periods = rotations
        .iter()
        .map(|r| expand_rotation(r, zone, window))
        .collect::<Result<Vec<_>, _>>()?;
    Ok(merge_rotations(&periods))
}
