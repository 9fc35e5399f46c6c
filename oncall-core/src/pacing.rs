//! Request pacing shared by the adapters: how long a request waits so that a connection stays
//! under its vendor's rate limit. Pure: the caller passes the instant, the core reads no clock.

use std::time::{Duration, Instant};

/// A rate and burst schedule for one connection (the generic cell rate algorithm): requests go
/// out at most `burst` at once and on average one per interval; after a rate limit the vendor's
/// pause holds every request back.
///
/// ```
/// use std::time::{Duration, Instant};
/// use oncall_core::pacing::Pacer;
/// let mut pacer = Pacer::per_minute(600, 2); // one per 100 ms, bursts of 2
/// let t0 = Instant::now();
/// assert_eq!(pacer.reserve(t0), Duration::ZERO);
/// assert_eq!(pacer.reserve(t0), Duration::ZERO);
/// assert_eq!(pacer.reserve(t0), Duration::from_millis(100));
/// ```
#[derive(Debug, Clone)]
pub struct Pacer {
    interval: Duration,
    /// How far ahead of `now` the schedule may run before requests wait: (burst - 1) intervals.
    tolerance: Duration,
    /// When the next request would go if none had gone ahead of schedule.
    next: Option<Instant>,
    paused_until: Option<Instant>,
}

impl Pacer {
    /// At most `requests` a minute on average, and `burst` (at least 1) at once.
    pub fn per_minute(requests: u32, burst: u32) -> Pacer {
        let interval = Duration::from_secs(60) / requests.max(1);
        Pacer {
            interval,
            tolerance: interval.saturating_mul(burst.max(1) - 1),
            next: None,
            paused_until: None,
        }
    }

    /// No rate limit: only a vendor's pause holds requests back.
    pub fn unlimited() -> Pacer {
        Pacer {
            interval: Duration::ZERO,
            tolerance: Duration::ZERO,
            next: None,
            paused_until: None,
        }
    }

    /// Reserves a slot for a request that wants to go at `now`, and says how long it must wait
    /// first. Each call takes a slot: call it once per request, right before sending.
    pub fn reserve(&mut self, now: Instant) -> Duration {
        let earliest = self.paused_until.map_or(now, |p| p.max(now));
        let scheduled = self.next.map_or(earliest, |n| n.max(earliest));
        self.next = Some(scheduled + self.interval);
        // The request may run ahead of its slot by the burst tolerance.
        let go = scheduled
            .checked_sub(self.tolerance)
            .unwrap_or(now)
            .max(earliest);
        go.saturating_duration_since(now)
    }

    /// The vendor asked for a pause (a rate limit): no request goes before `until`.
    pub fn pause_until(&mut self, until: Instant) {
        self.paused_until = Some(self.paused_until.map_or(until, |p| p.max(until)));
    }

    /// The vendor asked for a pause of `wait` from `now`. A wait too long for the clock to
    /// represent (a vendor's huge header under a policy without a cap) is taken as a year, which
    /// means "until told otherwise"; never a panic.
    pub fn pause_for(&mut self, now: Instant, wait: Duration) {
        const A_YEAR: Duration = Duration::from_secs(365 * 86_400);
        if let Some(until) = now.checked_add(wait).or_else(|| now.checked_add(A_YEAR)) {
            self.pause_until(until);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keeps_the_average_rate_after_a_burst() {
        let mut p = Pacer::per_minute(60, 3); // 1 s apart, bursts of 3
        let t0 = Instant::now();
        let waits: Vec<Duration> = (0..6).map(|_| p.reserve(t0)).collect();
        let s = Duration::from_secs;
        assert_eq!(waits, [s(0), s(0), s(0), s(1), s(2), s(3)]);
        // Idle time refills the burst, but never beyond it.
        let later = t0 + s(100);
        let waits: Vec<Duration> = (0..4).map(|_| p.reserve(later)).collect();
        assert_eq!(waits, [s(0), s(0), s(0), s(1)]);
    }

    #[test]
    fn a_vendor_pause_holds_everyone_back() {
        let mut p = Pacer::unlimited();
        let t0 = Instant::now();
        assert_eq!(p.reserve(t0), Duration::ZERO);
        p.pause_until(t0 + Duration::from_secs(5));
        p.pause_until(t0 + Duration::from_secs(2)); // a shorter pause does not shorten it
        assert_eq!(p.reserve(t0), Duration::from_secs(5));
        assert_eq!(
            p.reserve(t0 + Duration::from_secs(6)),
            Duration::ZERO,
            "the pause is over"
        );
    }

    #[test]
    fn a_pause_too_long_for_the_clock_is_a_year() {
        let mut p = Pacer::unlimited();
        let t0 = Instant::now();
        p.pause_for(t0, Duration::MAX);
        let year = Duration::from_secs(365 * 86_400);
        assert_eq!(p.reserve(t0), year);
        p.pause_for(t0, Duration::from_secs(3));
        assert_eq!(p.reserve(t0), year, "a shorter pause does not shorten it");
    }
}
