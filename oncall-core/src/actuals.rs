//! The on-call actually served (issue 15): who was on call when, from the vendor's final rendering
//! (PagerDuty's final schedule; Opsgenie's final timeline, per rotation), and the hours per person
//! split into weekday, weekend and night hours in the schedule's zone, for reporting and on-call
//! pay.
//!
//! [`compute_actuals`] is pure and exact to the second across DST: every local boundary (midnight,
//! the night window's ends) is mapped to an instant in the zone with DESIGN §2's rules (a time in a
//! spring-forward gap moves to the gap's end, an ambiguous one takes the earlier instant), so a
//! night across a change lasts what it really lasted. [`read_actuals`] reads the vendor (read-only,
//! through [`Provider::schedule`] and [`Provider::on_call`], within the endpoints of DESIGN §1) and
//! computes.
//!
//! Each second counts in exactly one bucket: **weekend** when its local date is a weekend day,
//! else **night** when its local time lies in the night window, else **weekday**.

use std::fmt;

use chrono::{DateTime, Datelike, NaiveDate, NaiveTime, TimeDelta, Utc, Weekday};
use chrono_tz::Tz;
use serde::{Deserialize, Serialize};

use crate::error::Error;
use crate::model::{Email, RoleIndex, Window};
use crate::provider::{Provider, RoleTimeline, VendorScheduleId};
use crate::time::{local_date, resolve_local};

/// The local wall times night work runs between; it may cross midnight (`22:00`–`06:00`). Equal
/// ends mean no night at all.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct NightWindow {
    /// When night starts, local time.
    pub start: NaiveTime,
    /// When it ends, local time.
    pub end: NaiveTime,
}

impl NightWindow {
    /// 22:00 to 06:00, a common definition of night work in on-call pay schemes.
    pub const DEFAULT: NightWindow = NightWindow {
        start: match NaiveTime::from_hms_opt(22, 0, 0) {
            Some(t) => t,
            None => NaiveTime::MIN,
        },
        end: match NaiveTime::from_hms_opt(6, 0, 0) {
            Some(t) => t,
            None => NaiveTime::MIN,
        },
    };
}

impl Default for NightWindow {
    fn default() -> NightWindow {
        NightWindow::DEFAULT
    }
}

impl fmt::Display for NightWindow {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{}-{}",
            self.start.format("%H:%M"),
            self.end.format("%H:%M")
        )
    }
}

impl std::str::FromStr for NightWindow {
    type Err = String;

    /// `HH:MM-HH:MM`, e.g. `22:00-06:00`.
    fn from_str(s: &str) -> Result<NightWindow, String> {
        let parse = |t: &str| {
            NaiveTime::parse_from_str(t.trim(), "%H:%M")
                .map_err(|_| format!("{t:?} is not a local time HH:MM"))
        };
        let (start, end) = s
            .split_once('-')
            .ok_or_else(|| format!("{s:?}: expected HH:MM-HH:MM, e.g. 22:00-06:00"))?;
        Ok(NightWindow {
            start: parse(start)?,
            end: parse(end)?,
        })
    }
}

/// How actuals split hours. The defaults: night 22:00–06:00, weekend Saturday and Sunday, the
/// vendor schedule's zone.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ActualsOptions {
    /// The night window, in local wall time.
    pub night: NightWindow,
    /// The days whose every hour is a weekend hour.
    pub weekend: Vec<Weekday>,
    /// The zone whose civil time the split follows; `None`: the vendor schedule's.
    #[serde(default, with = "optional_zone")]
    pub zone: Option<Tz>,
}

impl Default for ActualsOptions {
    fn default() -> ActualsOptions {
        ActualsOptions {
            night: NightWindow::DEFAULT,
            weekend: vec![Weekday::Sat, Weekday::Sun],
            zone: None,
        }
    }
}

mod optional_zone {
    use chrono_tz::Tz;
    use serde::{Deserialize, Deserializer, Serializer};

    pub fn serialize<S: Serializer>(zone: &Option<Tz>, s: S) -> Result<S::Ok, S::Error> {
        match zone {
            Some(z) => s.serialize_some(z.name()),
            None => s.serialize_none(),
        }
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Option<Tz>, D::Error> {
        Option::<String>::deserialize(d)?
            .map(|name| {
                name.parse::<Tz>().map_err(|_| {
                    serde::de::Error::custom(format!("unknown IANA time zone {name:?}"))
                })
            })
            .transpose()
    }
}

/// Seconds on call, split (they add up: `total = weekday + weekend + night`).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct HoursSplit {
    /// Every second on call.
    pub total_seconds: i64,
    /// On a weekday, outside the night window.
    pub weekday_seconds: i64,
    /// On a weekend day.
    pub weekend_seconds: i64,
    /// On a weekday, inside the night window.
    pub night_seconds: i64,
}

impl HoursSplit {
    fn add(&mut self, other: HoursSplit) {
        self.total_seconds += other.total_seconds;
        self.weekday_seconds += other.weekday_seconds;
        self.weekend_seconds += other.weekend_seconds;
        self.night_seconds += other.night_seconds;
    }

    /// Seconds as hours.
    pub fn hours(seconds: i64) -> f64 {
        seconds as f64 / 3600.0
    }

    /// The split in hundredths of an hour, as pay sheets show it: weekday, weekend and night
    /// hours each rounded half up, and the total their sum, so the columns always add up (the
    /// total may differ from the total seconds rounded by a hundredth or two; the seconds stay
    /// exact).
    ///
    /// ```
    /// use oncall_core::HoursSplit;
    /// let split = HoursSplit { total_seconds: 3 * 1200, weekday_seconds: 1200, weekend_seconds: 1200, night_seconds: 1200 };
    /// let h = split.rounded_hours();
    /// assert_eq!((h.weekday, h.weekend, h.night, h.total), (33, 33, 33, 99));
    /// assert_eq!(oncall_core::actuals::format_hundredths(h.total), "0.99");
    /// ```
    pub fn rounded_hours(&self) -> RoundedHours {
        let hundredths = |seconds: i64| (seconds * 100 + 1800).div_euclid(3600);
        let (weekday, weekend, night) = (
            hundredths(self.weekday_seconds),
            hundredths(self.weekend_seconds),
            hundredths(self.night_seconds),
        );
        RoundedHours {
            total: weekday + weekend + night,
            weekday,
            weekend,
            night,
        }
    }
}

/// A [`HoursSplit`] in hundredths of an hour ([`HoursSplit::rounded_hours`]): `total = weekday +
/// weekend + night`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct RoundedHours {
    /// Every hour on call.
    pub total: i64,
    /// On a weekday, outside the night window.
    pub weekday: i64,
    /// On a weekend day.
    pub weekend: i64,
    /// On a weekday, inside the night window.
    pub night: i64,
}

/// Hundredths of an hour as a decimal: `1234` is `12.34`.
pub fn format_hundredths(hundredths: i64) -> String {
    let sign = if hundredths < 0 { "-" } else { "" };
    let h = hundredths.unsigned_abs();
    format!("{sign}{}.{:02}", h / 100, h % 100)
}

/// One CSV field (RFC 4180): quoted when it holds a comma, a quote or a line break (quotes
/// doubled); and a field a spreadsheet would run as a formula (starting with `=`, `+`, `-`, `@`, a
/// tab or a carriage return: a vendor's rotation name is anyone's text) is prefixed with `'`.
///
/// ```
/// use oncall_core::actuals::csv_field;
/// assert_eq!(csv_field("ann@example.com"), "ann@example.com");
/// assert_eq!(csv_field("Days, nights"), "\"Days, nights\"");
/// assert_eq!(csv_field("=HYPERLINK(\"x\")"), "\"'=HYPERLINK(\"\"x\"\")\"");
/// assert_eq!(csv_field("-1"), "'-1");
/// ```
pub fn csv_field(value: &str) -> String {
    let guarded = if value.starts_with(['=', '+', '-', '@', '\t', '\r']) {
        format!("'{value}")
    } else {
        value.to_owned()
    };
    if guarded.contains([',', '"', '\n', '\r']) {
        format!("\"{}\"", guarded.replace('"', "\"\""))
    } else {
        guarded
    }
}

/// Someone on call, as the vendor rendered it, within the window asked for.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ActualPeriod {
    /// The role (Opsgenie: the rotation's position in timeline order; PagerDuty: primary).
    pub role: RoleIndex,
    /// The role's name as the vendor gave it.
    pub role_name: String,
    /// First instant.
    pub start: DateTime<Utc>,
    /// First instant after.
    pub end: DateTime<Utc>,
    /// Who.
    pub member: Email,
    /// Its hours, split.
    pub split: HoursSplit,
}

/// One person's hours in one role over the window.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ActualHours {
    /// The role.
    pub role: RoleIndex,
    /// The role's name.
    pub role_name: String,
    /// Who.
    pub member: Email,
    /// Their hours, split.
    pub split: HoursSplit,
}

/// The on-call actually served over a window: every period, and each person's hours per role.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Actuals {
    /// The window.
    pub window: Window,
    /// The zone the split follows.
    #[serde(with = "crate::model::tz_serde")]
    pub zone: Tz,
    /// The options the hours were split with.
    pub options: ActualsOptions,
    /// Who was on call when, by role then start.
    pub periods: Vec<ActualPeriod>,
    /// Hours per role and person (by role, then email).
    pub totals: Vec<ActualHours>,
}

/// Splits `[start, end)` into weekday, weekend and night seconds in `zone`.
///
/// ```
/// use chrono::{TimeZone, Utc};
/// use oncall_core::actuals::{split_hours, ActualsOptions};
/// let ny = chrono_tz::America::New_York;
/// // Sunday 2024-03-10, midnight to midnight in New York: the clocks spring forward, 23 hours.
/// let (from, to) = (Utc.with_ymd_and_hms(2024, 3, 10, 5, 0, 0).unwrap(), Utc.with_ymd_and_hms(2024, 3, 11, 4, 0, 0).unwrap());
/// let split = split_hours(from, to, ny, &ActualsOptions::default());
/// assert_eq!((split.total_seconds, split.weekend_seconds), (23 * 3600, 23 * 3600));
/// let weekdays_only = ActualsOptions { weekend: Vec::new(), ..ActualsOptions::default() };
/// let split = split_hours(from, to, ny, &weekdays_only);
/// // 00:00-06:00 lasts 5 hours that night, 22:00-24:00 two.
/// assert_eq!(split.night_seconds, 7 * 3600);
/// assert_eq!(split.weekday_seconds, 16 * 3600);
/// ```
pub fn split_hours(
    start: DateTime<Utc>,
    end: DateTime<Utc>,
    zone: Tz,
    options: &ActualsOptions,
) -> HoursSplit {
    let mut split = HoursSplit::default();
    if end <= start {
        return split;
    }
    let mut date = local_date(zone, start);
    loop {
        let (day_start, day_end) = local_day(zone, date);
        if day_start >= end {
            break;
        }
        let (from, to) = (start.max(day_start), end.min(day_end));
        if from < to {
            let seconds = (to - from).num_seconds();
            split.total_seconds += seconds;
            if options.weekend.contains(&date.weekday()) {
                split.weekend_seconds += seconds;
            } else {
                let night = night_stretches(zone, date, options.night)
                    .into_iter()
                    .map(|(s, e)| (e.min(to) - s.max(from)).num_seconds().max(0))
                    .sum::<i64>();
                split.night_seconds += night;
                split.weekday_seconds += seconds - night;
            }
        }
        match date.succ_opt() {
            Some(next) if day_end < end => date = next,
            _ => break,
        }
    }
    split
}

/// The instants a local date runs between in `zone`.
fn local_day(zone: Tz, date: NaiveDate) -> (DateTime<Utc>, DateTime<Utc>) {
    let start = resolve_local(zone, date.and_time(NaiveTime::MIN));
    let end = date
        .succ_opt()
        .map(|next| resolve_local(zone, next.and_time(NaiveTime::MIN)))
        .unwrap_or(DateTime::<Utc>::MAX_UTC);
    (start, end)
}

/// The night window's stretches within a local date.
fn night_stretches(
    zone: Tz,
    date: NaiveDate,
    night: NightWindow,
) -> Vec<(DateTime<Utc>, DateTime<Utc>)> {
    let at = |t: NaiveTime| resolve_local(zone, date.and_time(t));
    let (day_start, day_end) = local_day(zone, date);
    match night.start.cmp(&night.end) {
        std::cmp::Ordering::Equal => Vec::new(),
        std::cmp::Ordering::Less => vec![(at(night.start), at(night.end))],
        std::cmp::Ordering::Greater => {
            vec![(day_start, at(night.end)), (at(night.start), day_end)]
        }
    }
}

/// The actuals of `timelines` (one per role, as [`Provider::on_call`] returns them) over `window`
/// in `zone`. Pure: periods are clipped to the window; hours are split with `options` (its zone,
/// when given, replaces `zone`).
pub fn compute_actuals(
    timelines: &[RoleTimeline],
    zone: Tz,
    window: Window,
    options: &ActualsOptions,
) -> Actuals {
    let zone = options.zone.unwrap_or(zone);
    let mut periods = Vec::new();
    for (i, timeline) in timelines.iter().enumerate() {
        for p in &timeline.periods {
            let (start, end) = (p.start.max(window.start()), p.end.min(window.end()));
            if start >= end {
                continue;
            }
            periods.push(ActualPeriod {
                role: RoleIndex(i),
                role_name: timeline.name.clone(),
                start,
                end,
                member: p.member.clone(),
                split: split_hours(start, end, zone, options),
            });
        }
    }
    periods.sort_by_key(|p| (p.role, p.start));
    let mut totals: Vec<ActualHours> = Vec::new();
    for p in &periods {
        match totals
            .iter_mut()
            .find(|t| t.role == p.role && t.member == p.member)
        {
            Some(t) => t.split.add(p.split),
            None => totals.push(ActualHours {
                role: p.role,
                role_name: p.role_name.clone(),
                member: p.member.clone(),
                split: p.split,
            }),
        }
    }
    totals.sort_by(|a, b| (a.role, &a.member).cmp(&(b.role, &b.member)));
    Actuals {
        window,
        zone,
        options: options.clone(),
        periods,
        totals,
    }
}

/// Reads who was on call over `window` from the vendor's final rendering and computes the
/// actuals in the schedule's zone (or the options' zone). Read-only: one schedule read for the
/// zone, then [`Provider::on_call`].
pub async fn read_actuals(
    provider: &dyn Provider,
    schedule: &VendorScheduleId,
    window: Window,
    options: &ActualsOptions,
) -> Result<Actuals, Error> {
    let zone = match options.zone {
        Some(zone) => zone,
        None => provider.schedule(schedule).await?.zone,
    };
    let timelines = provider.on_call(schedule, window).await?;
    Ok(compute_actuals(&timelines, zone, window, options))
}

impl Actuals {
    /// Hours per person as CSV (a header, then a line per role and member): fields escaped and
    /// guarded against formulas ([`csv_field`]), hours in hundredths that add up
    /// ([`HoursSplit::rounded_hours`]).
    pub fn to_csv(&self) -> String {
        let mut out = String::from("role,member,hours,weekday_hours,weekend_hours,night_hours\n");
        for t in &self.totals {
            let h = t.split.rounded_hours();
            out.push_str(&format!(
                "{},{},{},{},{},{}\n",
                csv_field(&t.role_name),
                csv_field(t.member.as_str()),
                format_hundredths(h.total),
                format_hundredths(h.weekday),
                format_hundredths(h.weekend),
                format_hundredths(h.night),
            ));
        }
        out
    }
}

/// Whole hours and minutes of `seconds`, for people: `23:30`.
pub fn hours_and_minutes(seconds: i64) -> String {
    let minutes = TimeDelta::seconds(seconds).num_minutes();
    format!("{}:{:02}", minutes / 60, minutes % 60)
}

#[cfg(test)]
mod tests {
    use chrono::{NaiveDate, TimeZone};

    use super::*;
    use crate::rotation::OnCallPeriod;

    #[test]
    fn csv_escapes_fields_guards_formulas_and_rounds_hours_that_add_up() {
        let zone: Tz = chrono_tz::UTC;
        let t = |h| Utc.with_ymd_and_hms(2026, 11, 30, h, 0, 0).unwrap();
        let window = Window::new(t(0), t(12)).unwrap();
        let split = HoursSplit {
            // 20 minutes each: a third of an hour, three times.
            total_seconds: 3600,
            weekday_seconds: 1200,
            weekend_seconds: 1200,
            night_seconds: 1200,
        };
        let total = |role_name: &str, member: &str| ActualHours {
            role: RoleIndex::PRIMARY,
            role_name: role_name.to_owned(),
            member: Email::parse(member).unwrap(),
            split,
        };
        let actuals = Actuals {
            window,
            zone,
            options: ActualsOptions::default(),
            periods: Vec::new(),
            totals: vec![
                total("=cmd|' /C calc'!A0", "ann@example.com"),
                total("Days, \"nights\"", "-bob@example.com"),
                total("@SUM(1)", "+cat@example.com"),
            ],
        };
        assert_eq!(
            actuals.to_csv().lines().collect::<Vec<_>>(),
            [
                "role,member,hours,weekday_hours,weekend_hours,night_hours",
                "'=cmd|' /C calc'!A0,ann@example.com,0.99,0.33,0.33,0.33",
                "\"Days, \"\"nights\"\"\",'-bob@example.com,0.99,0.33,0.33,0.33",
                "'@SUM(1),'+cat@example.com,0.99,0.33,0.33,0.33",
            ]
        );
        assert_eq!(format_hundredths(5), "0.05");
        assert_eq!(format_hundredths(12_345), "123.45");
    }

    fn local(zone: Tz, y: i32, m: u32, d: u32, h: u32, min: u32) -> DateTime<Utc> {
        let naive = NaiveDate::from_ymd_opt(y, m, d)
            .unwrap()
            .and_hms_opt(h, min, 0)
            .unwrap();
        resolve_local(zone, naive)
    }

    fn weekdays_only() -> ActualsOptions {
        ActualsOptions {
            weekend: Vec::new(),
            ..ActualsOptions::default()
        }
    }

    /// One local day from midnight to midnight, split with no weekend: (total, night, weekday) hours
    /// as minutes.
    fn one_day(zone: Tz, y: i32, m: u32, d: u32) -> (i64, i64, i64) {
        let next = NaiveDate::from_ymd_opt(y, m, d)
            .unwrap()
            .succ_opt()
            .unwrap();
        let (from, to) = (
            local(zone, y, m, d, 0, 0),
            local(zone, next.year(), next.month(), next.day(), 0, 0),
        );
        let s = split_hours(from, to, zone, &weekdays_only());
        assert_eq!(
            s.total_seconds,
            s.weekday_seconds + s.weekend_seconds + s.night_seconds
        );
        (
            s.total_seconds / 60,
            s.night_seconds / 60,
            s.weekday_seconds / 60,
        )
    }

    #[test]
    fn golden_days_across_dst() {
        use chrono_tz::{America, Asia, Australia, Europe};
        // Spring forward at 02:00: the night before 06:00 loses an hour.
        assert_eq!(
            one_day(America::New_York, 2024, 3, 10),
            (23 * 60, 7 * 60, 16 * 60)
        );
        // Fall back at 02:00: 01:00-02:00 happens twice, the night gains it.
        assert_eq!(
            one_day(America::New_York, 2024, 11, 3),
            (25 * 60, 9 * 60, 16 * 60)
        );
        assert_eq!(
            one_day(Europe::London, 2016, 10, 30),
            (25 * 60, 9 * 60, 16 * 60)
        );
        // Lord Howe's DST is 30 minutes: fall back at 02:00 to 01:30.
        assert_eq!(
            one_day(Australia::Lord_Howe, 2024, 4, 7),
            (24 * 60 + 30, 8 * 60 + 30, 16 * 60)
        );
        // No DST: a plain day.
        assert_eq!(
            one_day(Asia::Kolkata, 2024, 3, 10),
            (24 * 60, 8 * 60, 16 * 60)
        );
    }

    #[test]
    fn weekend_days_count_whole_and_nights_cross_midnight() {
        let zone = chrono_tz::Europe::Berlin;
        // Friday 2024-03-08 18:00 to Monday 2024-03-11 08:00 in Berlin.
        let from = local(zone, 2024, 3, 8, 18, 0);
        let to = local(zone, 2024, 3, 11, 8, 0);
        let s = split_hours(from, to, zone, &ActualsOptions::default());
        assert_eq!(s.weekend_seconds, 48 * 3600, "Saturday and Sunday, whole");
        // Friday 22:00-24:00 and Monday 00:00-06:00.
        assert_eq!(s.night_seconds, 8 * 3600);
        // Friday 18:00-22:00 and Monday 06:00-08:00.
        assert_eq!(s.weekday_seconds, 6 * 3600);
        // A night window that does not cross midnight, and none at all.
        let evening: NightWindow = "18:00-23:00".parse().unwrap();
        let options = ActualsOptions {
            night: evening,
            ..weekdays_only()
        };
        let s = split_hours(from, local(zone, 2024, 3, 9, 0, 0), zone, &options);
        assert_eq!((s.night_seconds, s.weekday_seconds), (5 * 3600, 3600));
        let none = ActualsOptions {
            night: "00:00-00:00".parse().unwrap(),
            ..weekdays_only()
        };
        let s = split_hours(from, to, zone, &none);
        assert_eq!(s.weekday_seconds, s.total_seconds);
        assert!("25:00-06:00".parse::<NightWindow>().is_err());
        assert!("22:00".parse::<NightWindow>().is_err());
    }

    #[test]
    fn actuals_clip_to_the_window_and_total_per_person_and_role() {
        let zone = chrono_tz::UTC;
        let t = |d, h| Utc.with_ymd_and_hms(2024, 3, d, h, 0, 0).unwrap();
        let (ann, bob) = (
            Email::parse("ann@x.io").unwrap(),
            Email::parse("bob@x.io").unwrap(),
        );
        let period = |s, e, m: &Email| OnCallPeriod {
            start: s,
            end: e,
            member: m.clone(),
        };
        let timelines = vec![
            RoleTimeline {
                name: "primary".into(),
                periods: vec![
                    period(t(4, 9), t(5, 9), &ann),
                    period(t(5, 9), t(6, 9), &bob),
                    period(t(6, 9), t(7, 9), &ann),
                ],
            },
            RoleTimeline {
                name: "secondary".into(),
                periods: vec![period(t(4, 9), t(7, 9), &bob)],
            },
        ];
        // Monday 2024-03-04 12:00 to Thursday 2024-03-07 00:00.
        let window = Window::new(t(4, 12), t(7, 0)).unwrap();
        let a = compute_actuals(&timelines, zone, window, &ActualsOptions::default());
        assert_eq!(a.periods.len(), 4);
        assert_eq!(a.periods[0].start, t(4, 12), "clipped to the window");
        let hours: Vec<(usize, &str, i64)> = a
            .totals
            .iter()
            .map(|t| (t.role.0, t.member.as_str(), t.split.total_seconds / 3600))
            .collect();
        assert_eq!(
            hours,
            [
                (0, "ann@x.io", 21 + 15),
                (0, "bob@x.io", 24),
                (1, "bob@x.io", 60)
            ]
        );
        let total: i64 = a.totals.iter().map(|t| t.split.total_seconds).sum();
        assert_eq!(total, 2 * 60 * 3600);
        assert_eq!(hours_and_minutes(a.totals[0].split.total_seconds), "36:00");
    }
}
