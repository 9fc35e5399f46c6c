//! How a vendor shows overlapping overrides: where they overlap, the one of highest precedence is
//! on call. Every simulator renders its schedules with this one function.

use chrono::{DateTime, Utc};

use crate::model::Window;

/// One stretch someone is on call, with its precedence (higher wins where stretches overlap: the
/// creation order of overrides, the level of a layer).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Layered<W> {
    /// First instant.
    pub start: DateTime<Utc>,
    /// First instant after.
    pub end: DateTime<Utc>,
    /// Who is on call (an email, a vendor user id).
    pub who: W,
    /// Higher wins.
    pub precedence: u64,
}

/// Who is on call over `window`: the stretch of highest precedence at every instant, clipped to the
/// window and joined where the same person goes on; stretches nobody covers are absent.
///
/// ```
/// use chrono::{TimeZone, Utc};
/// use oncall_core::testkit::{resolve_overlaps, Layered};
/// use oncall_core::Window;
/// let t = |h| Utc.with_ymd_and_hms(2024, 1, 1, h, 0, 0).unwrap();
/// let stretch = |s, e, who, precedence| Layered { start: t(s), end: t(e), who, precedence };
/// // "bob" was created later and wins from 2 to 4; "ann" shows on either side.
/// let shown = resolve_overlaps(
///     &[stretch(0, 6, "ann", 1), stretch(2, 4, "bob", 2)],
///     Window::new(t(1), t(6)).unwrap(),
/// );
/// assert_eq!(shown, [(t(1), t(2), "ann"), (t(2), t(4), "bob"), (t(4), t(6), "ann")]);
/// ```
pub fn resolve_overlaps<W: Clone + PartialEq>(
    stretches: &[Layered<W>],
    window: Window,
) -> Vec<(DateTime<Utc>, DateTime<Utc>, W)> {
    let (from, to) = (window.start(), window.end());
    let live: Vec<&Layered<W>> = stretches
        .iter()
        .filter(|s| s.start < to && from < s.end && s.start < s.end)
        .collect();
    let mut cuts: Vec<DateTime<Utc>> = live
        .iter()
        .flat_map(|s| [s.start, s.end])
        .chain([from, to])
        .filter(|t| (from..=to).contains(t))
        .collect();
    cuts.sort_unstable();
    cuts.dedup();
    let mut out: Vec<(DateTime<Utc>, DateTime<Utc>, W)> = Vec::new();
    for pair in cuts.windows(2) {
        let (s, e) = (pair[0], pair[1]);
        let Some(winner) = live
            .iter()
            .filter(|x| x.start <= s && x.end >= e)
            .max_by_key(|x| x.precedence)
        else {
            continue;
        };
        match out.last_mut() {
            Some(last) if last.1 == s && last.2 == winner.who => last.1 = e,
            _ => out.push((s, e, winner.who.clone())),
        }
    }
    out
}
