//! Civil-time rules (DESIGN §2): mapping local wall times to instants without ever panicking.

use chrono::{DateTime, LocalResult, NaiveDate, NaiveDateTime, Offset, TimeDelta, TimeZone, Utc};
use chrono_tz::Tz;

/// The instant floored to whole seconds: the vendors keep no more, so the library sends no more.
///
/// ```
/// use chrono::{TimeZone, Utc};
/// use oncall_core::time::whole_seconds;
/// let t = Utc.with_ymd_and_hms(2024, 3, 10, 9, 0, 0).unwrap();
/// assert_eq!(whole_seconds(t + chrono::TimeDelta::milliseconds(999)), t);
/// ```
pub fn whole_seconds(instant: DateTime<Utc>) -> DateTime<Utc> {
    instant
        .checked_sub_signed(TimeDelta::nanoseconds(i64::from(
            instant.timestamp_subsec_nanos(),
        )))
        .unwrap_or(instant)
}

/// Maps a local wall time in `zone` to a UTC instant.
///
/// A time in a spring-forward gap moves to the first instant after the gap; an ambiguous time in a
/// fall-back fold takes the earlier instant.
///
/// ```
/// use chrono::{NaiveDate, TimeZone, Utc};
/// use oncall_core::resolve_local;
/// let tz = chrono_tz::America::New_York;
/// // 02:30 does not exist on 2024-03-10: the gap ends at 03:00 EDT = 07:00 UTC.
/// let gap = NaiveDate::from_ymd_opt(2024, 3, 10).unwrap().and_hms_opt(2, 30, 0).unwrap();
/// assert_eq!(resolve_local(tz, gap), Utc.with_ymd_and_hms(2024, 3, 10, 7, 0, 0).unwrap());
/// // 01:30 happens twice on 2024-11-03: the earlier is 01:30 EDT = 05:30 UTC.
/// let fold = NaiveDate::from_ymd_opt(2024, 11, 3).unwrap().and_hms_opt(1, 30, 0).unwrap();
/// assert_eq!(resolve_local(tz, fold), Utc.with_ymd_and_hms(2024, 11, 3, 5, 30, 0).unwrap());
/// ```
pub fn resolve_local(zone: Tz, local: NaiveDateTime) -> DateTime<Utc> {
    match zone.from_local_datetime(&local) {
        LocalResult::Single(t) => t.with_timezone(&Utc),
        LocalResult::Ambiguous(a, b) => a.with_timezone(&Utc).min(b.with_timezone(&Utc)),
        LocalResult::None => gap_end(zone, local),
    }
}

fn offset_seconds(zone: Tz, instant: NaiveDateTime) -> i64 {
    i64::from(
        zone.offset_from_utc_datetime(&instant)
            .fix()
            .local_minus_utc(),
    )
}

/// The first instant after the gap that contains `local`.
fn gap_end(zone: Tz, local: NaiveDateTime) -> DateTime<Utc> {
    let day = TimeDelta::days(1);
    let (Some(before_probe), Some(after_probe)) =
        (local.checked_sub_signed(day), local.checked_add_signed(day))
    else {
        return local.and_utc();
    };
    let before = offset_seconds(zone, before_probe);
    let after = offset_seconds(zone, after_probe);
    // With the old offset the local time lies at or after the transition; with the new one, before it.
    let mut hi = local.and_utc().timestamp() - before;
    let mut lo = local.and_utc().timestamp() - after;
    if after <= before || lo >= hi {
        return DateTime::from_timestamp(hi, 0).unwrap_or_else(|| local.and_utc());
    }
    // Invariant: the offset at `lo` is the old one, at `hi` the new one. Transitions fall on whole seconds.
    while hi - lo > 1 {
        let mid = lo + (hi - lo) / 2;
        let Some(t) = DateTime::from_timestamp(mid, 0) else {
            break;
        };
        if offset_seconds(zone, t.naive_utc()) == after {
            hi = mid;
        } else {
            lo = mid;
        }
    }
    DateTime::from_timestamp(hi, 0).unwrap_or_else(|| local.and_utc())
}

/// The local date of an instant in `zone`.
pub fn local_date(zone: Tz, instant: DateTime<Utc>) -> NaiveDate {
    instant.with_timezone(&zone).date_naive()
}

/// The local wall time of an instant in `zone`.
pub fn local_time(zone: Tz, instant: DateTime<Utc>) -> NaiveDateTime {
    instant.with_timezone(&zone).naive_local()
}

/// Years this library computes with; outside them chrono arithmetic could overflow.
pub(crate) const SUPPORTED_YEARS: std::ops::RangeInclusive<i32> = 1000..=9000;

pub(crate) fn check_year(
    what: &'static str,
    date: NaiveDate,
    value: impl FnOnce() -> String,
) -> Result<(), crate::ValidationError> {
    use chrono::Datelike;
    if SUPPORTED_YEARS.contains(&date.year()) {
        Ok(())
    } else {
        Err(crate::ValidationError::OutOfRange {
            what,
            value: value(),
        })
    }
}
