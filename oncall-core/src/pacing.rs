//! Request pacing shared by the adapters: how long a request waits so that a connection stays
//! under its vendor's rate limit. Pure: the caller passes the instant, the core reads no clock.

use std::time::{Duration, Instant};

/// A rate and burst schedule for one connection (the generic cell rate algorithm): requests go
/// out at most `burst` at once and on average one per interval; after a rate limit the vendor's
/// pause holds every request back.
///
/// The rate is fixed ([`Pacer::per_minute`]), absent ([`Pacer::unlimited`]) or found as the
/// connection goes ([`Pacer::adaptive`]): the adapter reports each answer
/// ([`Pacer::answered`]) and each rate limit ([`Pacer::rate_limited`]), and an adaptive pacer
/// speeds up while answers come back clean and slows down when the vendor refuses (a 429) or
/// delays (answers that take far longer than the fastest ones seen).
///
/// An adaptive pacer also keeps a window: how many requests may be in flight at once
/// ([`Pacer::in_flight_limit`]), between 1 and the burst. It starts at the burst, is cut by the
/// same factors as the rate on push-back, and grows back by one request per window of clean
/// answers (additive increase, multiplicative decrease, as TCP's congestion window). The adapter
/// holds its requests to it, and the pacer lets at most a window go at once.
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
    /// The burst: how many requests may go at once.
    burst: u32,
    /// How far ahead of `now` the schedule may run before requests wait: (burst - 1) intervals.
    tolerance: Duration,
    /// When the next request would go if none had gone ahead of schedule.
    next: Option<Instant>,
    paused_until: Option<Instant>,
    adaptive: Option<Adaptation>,
}

/// How an adaptive pacer finds a connection's rate: it starts at `initial` requests a second,
/// multiplies the rate by `1 + growth` with each clean answer until the vendor first pushes back
/// (slow start), and by `1 + growth / 10` after that (congestion avoidance); a rate limit
/// multiplies it by `backoff`, an answer slower than `slow_factor` times the fastest one seen (and
/// at least [`SLOW_MARGIN`] slower) by `slowdown`, at most once per such answer's latency. The
/// rate stays within `[floor, ceiling]`. Like TCP's congestion control or the adaptive retry mode
/// of cloud SDKs, it needs no knowledge of the vendor's limits, which Opsgenie does not document.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct AdaptiveRate {
    /// Requests a second to start with.
    pub initial: f64,
    /// The slowest rate it falls to.
    pub floor: f64,
    /// The fastest rate it climbs to.
    pub ceiling: f64,
    /// Growth of the rate per clean answer before the first push-back (0.1: 10 %).
    pub growth: f64,
    /// Factor applied on a rate limit (0.5: halve).
    pub backoff: f64,
    /// Factor applied on an answer the vendor delayed.
    pub slowdown: f64,
    /// How many times slower than the fastest answer seen an answer must be to count as delayed.
    pub slow_factor: f64,
}

/// An answer counts as delayed only when it is also at least this much slower than the fastest
/// one seen: a 2 ms answer after a 0.5 ms one is noise, not a vendor holding requests back.
pub const SLOW_MARGIN: Duration = Duration::from_millis(250);

impl AdaptiveRate {
    /// Brisk defaults for a vendor whose limits are unknown: 20 requests a second to start,
    /// between 0.5 and 1,000, +10 % per clean answer until the first push-back, halved on a 429,
    /// cut by a fifth on an answer four times slower than the fastest.
    pub const BRISK: AdaptiveRate = AdaptiveRate {
        initial: 20.0,
        floor: 0.5,
        ceiling: 1_000.0,
        growth: 0.1,
        backoff: 0.5,
        slowdown: 0.8,
        slow_factor: 4.0,
    };

    /// A rate no faster than `per_minute` requests a minute (a documented limit), starting there
    /// and adapting downwards on push-back, otherwise as [`AdaptiveRate::BRISK`].
    pub fn at_most_per_minute(per_minute: u32) -> AdaptiveRate {
        let ceiling = f64::from(per_minute.max(1)) / 60.0;
        AdaptiveRate {
            initial: ceiling,
            floor: ceiling.min(AdaptiveRate::BRISK.floor),
            ceiling,
            ..AdaptiveRate::BRISK
        }
    }

    /// The settings made safe: finite, positive, floor <= initial <= ceiling, factors in (0, 1].
    fn sanitised(self) -> AdaptiveRate {
        let positive = |x: f64, default: f64| if x.is_finite() && x > 0.0 { x } else { default };
        let factor = |x: f64, default: f64| {
            if x.is_finite() && x > 0.0 && x <= 1.0 {
                x
            } else {
                default
            }
        };
        let floor = positive(self.floor, AdaptiveRate::BRISK.floor).min(1e6);
        let ceiling = positive(self.ceiling, AdaptiveRate::BRISK.ceiling)
            .min(1e6)
            .max(floor);
        AdaptiveRate {
            initial: positive(self.initial, AdaptiveRate::BRISK.initial).clamp(floor, ceiling),
            floor,
            ceiling,
            growth: if self.growth.is_finite() && self.growth >= 0.0 {
                self.growth.min(1.0)
            } else {
                AdaptiveRate::BRISK.growth
            },
            backoff: factor(self.backoff, AdaptiveRate::BRISK.backoff),
            slowdown: factor(self.slowdown, AdaptiveRate::BRISK.slowdown),
            slow_factor: positive(self.slow_factor, AdaptiveRate::BRISK.slow_factor).max(1.0),
        }
    }
}

/// The state of an adaptive pacer.
#[derive(Debug, Clone)]
struct Adaptation {
    settings: AdaptiveRate,
    /// Requests a second now.
    rate: f64,
    /// Whether the vendor has pushed back yet (slow start ends then).
    pushed_back: bool,
    /// The fastest answer seen.
    fastest: Option<Duration>,
    /// No slowdown before this instant (one per delayed answer's latency).
    calm_until: Option<Instant>,
    /// No backoff before this instant: the 429s of requests already in flight when the vendor
    /// first refused (until its pause is over and an answer could come back) are one push-back.
    limited_until: Option<Instant>,
    /// Requests that may be in flight at once, in `[1, max_window]`.
    window: f64,
    /// The largest window: the burst.
    max_window: f64,
}

impl Adaptation {
    fn interval(&self) -> Duration {
        Duration::try_from_secs_f64(1.0 / self.rate).unwrap_or(Duration::from_secs(1))
    }

    /// Push-back (a 429 or a delayed answer): the rate and the window multiplied by `factor`.
    fn push_back(&mut self, factor: f64) {
        self.rate = (self.rate * factor).max(self.settings.floor);
        self.window = (self.window * factor).max(1.0);
        self.pushed_back = true;
    }

    /// A clean answer: the rate grows by its growth factor (ten times less after a push-back),
    /// the window by one request per window of clean answers.
    fn clean(&mut self) {
        let growth = if self.pushed_back {
            self.settings.growth / 10.0
        } else {
            self.settings.growth
        };
        self.rate = (self.rate * (1.0 + growth)).min(self.settings.ceiling);
        self.window = (self.window + 1.0 / self.window).min(self.max_window);
    }
}

impl Pacer {
    /// At most `requests` a minute on average, and `burst` (at least 1) at once.
    pub fn per_minute(requests: u32, burst: u32) -> Pacer {
        let interval = Duration::from_secs(60) / requests.max(1);
        Pacer::with_interval(interval, burst, None)
    }

    /// No rate limit: only a vendor's pause holds requests back.
    pub fn unlimited() -> Pacer {
        Pacer::with_interval(Duration::ZERO, 1, None)
    }

    /// A rate found as the connection goes ([`AdaptiveRate`]), `burst` (at least 1) at once.
    ///
    /// ```
    /// use std::time::{Duration, Instant};
    /// use oncall_core::pacing::{AdaptiveRate, Pacer};
    /// let mut pacer = Pacer::adaptive(AdaptiveRate::BRISK, 1);
    /// let t0 = Instant::now();
    /// assert_eq!(pacer.rate_per_second(), Some(20.0));
    /// pacer.answered(t0, Duration::from_millis(20));
    /// assert!(pacer.rate_per_second().unwrap() > 20.0, "a clean answer speeds it up");
    /// pacer.rate_limited(t0, Duration::from_secs(1));
    /// assert!(pacer.rate_per_second().unwrap() < 20.0, "a 429 slows it down");
    /// assert_eq!(pacer.reserve(t0), Duration::from_secs(1), "and pauses for the vendor's wait");
    /// ```
    pub fn adaptive(settings: AdaptiveRate, burst: u32) -> Pacer {
        let settings = settings.sanitised();
        let max_window = f64::from(burst.max(1));
        let adaptation = Adaptation {
            settings,
            rate: settings.initial,
            pushed_back: false,
            fastest: None,
            calm_until: None,
            limited_until: None,
            window: max_window,
            max_window,
        };
        Pacer::with_interval(adaptation.interval(), burst, Some(adaptation))
    }

    fn with_interval(interval: Duration, burst: u32, adaptive: Option<Adaptation>) -> Pacer {
        let burst = burst.max(1);
        Pacer {
            interval,
            burst,
            tolerance: interval.saturating_mul(burst - 1),
            next: None,
            paused_until: None,
            adaptive,
        }
    }

    /// The current rate of an adaptive pacer, in requests a second (`None` for a fixed one).
    pub fn rate_per_second(&self) -> Option<f64> {
        self.adaptive.as_ref().map(|a| a.rate)
    }

    /// How many requests an adaptive pacer lets be in flight at once now (at least 1, at most the
    /// burst); `None` for a fixed or absent rate, where only the adapter's own limit holds.
    ///
    /// ```
    /// use std::time::{Duration, Instant};
    /// use oncall_core::pacing::{AdaptiveRate, Pacer};
    /// let mut pacer = Pacer::adaptive(AdaptiveRate::BRISK, 16);
    /// assert_eq!(pacer.in_flight_limit(), Some(16), "it starts at the burst");
    /// pacer.rate_limited(Instant::now(), Duration::ZERO);
    /// assert_eq!(pacer.in_flight_limit(), Some(8), "a 429 halves it");
    /// for _ in 0..9 {
    ///     pacer.answered(Instant::now(), Duration::from_millis(20));
    /// }
    /// assert_eq!(pacer.in_flight_limit(), Some(9), "about a window of clean answers adds one");
    /// assert_eq!(Pacer::per_minute(600, 4).in_flight_limit(), None);
    /// ```
    pub fn in_flight_limit(&self) -> Option<usize> {
        self.adaptive.as_ref().map(|a| {
            // A float in [1, max_window], itself a u32: the cast neither wraps nor saturates.
            #[allow(clippy::cast_possible_truncation, clippy::cast_sign_loss)]
            let window = a.window.floor().max(1.0) as usize;
            window
        })
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

    /// How much of a vendor's pause is left at `now` (zero when none). A request that reserved its
    /// slot before a 429 paused the connection asks again after its wait, and waits this too:
    /// it does not go out into the pause.
    ///
    /// ```
    /// use std::time::{Duration, Instant};
    /// use oncall_core::pacing::Pacer;
    /// let mut pacer = Pacer::unlimited();
    /// let t0 = Instant::now();
    /// assert_eq!(pacer.reserve(t0), Duration::ZERO); // slot taken, then a 429 elsewhere:
    /// pacer.pause_for(t0, Duration::from_secs(1));
    /// assert_eq!(pacer.paused_for(t0), Duration::from_secs(1));
    /// assert_eq!(pacer.paused_for(t0 + Duration::from_secs(2)), Duration::ZERO);
    /// ```
    pub fn paused_for(&self, now: Instant) -> Duration {
        self.paused_until
            .map_or(Duration::ZERO, |p| p.saturating_duration_since(now))
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

    /// A request answered (anything but a rate limit) at `now` after `latency`. An adaptive pacer
    /// speeds up on a clean answer and slows down on one the vendor delayed; a fixed one ignores it.
    pub fn answered(&mut self, now: Instant, latency: Duration) {
        let Some(a) = self.adaptive.as_mut() else {
            return;
        };
        let fastest = a.fastest.map_or(latency, |f| f.min(latency));
        a.fastest = Some(fastest);
        let delayed = latency.as_secs_f64() > fastest.as_secs_f64() * a.settings.slow_factor
            && latency >= fastest + SLOW_MARGIN;
        if delayed {
            if a.calm_until.is_none_or(|calm| now >= calm) {
                a.push_back(a.settings.slowdown);
                a.calm_until = now.checked_add(latency);
            }
        } else {
            a.clean();
        }
        self.retime(now);
    }

    /// The vendor refused a request for its rate at `now` and asked to wait `wait`: every request
    /// of the connection pauses that long ([`Pacer::pause_for`]), and an adaptive pacer slows down,
    /// once per push-back: the other 429s of requests that were already in flight (answered before
    /// the pause is over and the fastest answer could come back) do not cut again, or a window of
    /// refusals would take the rate to its floor at once.
    pub fn rate_limited(&mut self, now: Instant, wait: Duration) {
        self.pause_for(now, wait);
        if let Some(a) = self.adaptive.as_mut() {
            if a.limited_until.is_none_or(|until| now >= until) {
                a.push_back(a.settings.backoff);
                let settle = wait.saturating_add(a.fastest.unwrap_or(Duration::ZERO));
                a.limited_until = now.checked_add(settle);
                self.retime(now);
            }
        }
    }

    /// Applies an adaptive pacer's new rate to the schedule: the requests already scheduled ahead
    /// of `now` keep their number, each now as far apart as the new rate says (a burst sent at a
    /// slow start is not paid for at that slow rate once the pace has found a faster one).
    fn retime(&mut self, now: Instant) {
        let Some(a) = &self.adaptive else {
            return;
        };
        let interval = a.interval();
        if let Some(next) = self.next.filter(|n| *n > now) {
            let ahead = (next - now).as_secs_f64() * interval.as_secs_f64()
                / self.interval.as_secs_f64().max(f64::MIN_POSITIVE);
            let ahead = Duration::try_from_secs_f64(ahead).unwrap_or(Duration::ZERO);
            self.next = now.checked_add(ahead).or(Some(next));
        }
        self.interval = interval;
        // The burst follows the window: after a push-back, fewer requests go at once too.
        let window = self.in_flight_limit().unwrap_or(1);
        let burst = u32::try_from(window)
            .unwrap_or(self.burst)
            .clamp(1, self.burst);
        self.tolerance = self.interval.saturating_mul(burst - 1);
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

    #[test]
    fn adaptive_climbs_while_clean_and_backs_off_on_push_back() {
        let mut p = Pacer::adaptive(AdaptiveRate::BRISK, 4);
        let t0 = Instant::now();
        let fast = Duration::from_millis(20);
        for _ in 0..100 {
            p.answered(t0, fast);
        }
        assert_eq!(
            p.rate_per_second(),
            Some(1_000.0),
            "slow start reaches the ceiling"
        );
        p.rate_limited(t0, Duration::from_secs(2));
        assert_eq!(p.rate_per_second(), Some(500.0));
        assert_eq!(
            p.reserve(t0),
            Duration::from_secs(2),
            "the vendor's wait holds"
        );
        // The 429s of the requests that were in flight are the same push-back.
        p.rate_limited(t0 + Duration::from_millis(10), Duration::from_secs(2));
        p.rate_limited(t0 + Duration::from_secs(2), Duration::from_secs(2));
        assert_eq!(p.rate_per_second(), Some(500.0));
        // After a push-back it climbs ten times slower: 1 % per answer.
        p.answered(t0, fast);
        let rate = p.rate_per_second().unwrap();
        assert!((rate - 505.0).abs() < 1e-9, "{rate}");
        // A 429 once the pause is over and an answer could have come back is a new push-back.
        let later = t0 + Duration::from_secs(2) + fast;
        p.rate_limited(later, Duration::ZERO);
        assert!((p.rate_per_second().unwrap() - 252.5).abs() < 1e-9);
        for i in 1..=20 {
            p.rate_limited(later + fast * i, Duration::ZERO);
        }
        assert_eq!(p.rate_per_second(), Some(0.5), "never below the floor");
    }

    #[test]
    fn adaptive_slows_down_when_the_vendor_delays_answers_once_per_delay() {
        let mut p = Pacer::adaptive(AdaptiveRate::BRISK, 1);
        let t0 = Instant::now();
        p.answered(t0, Duration::from_millis(20));
        let before = p.rate_per_second().unwrap();
        // Four times slower but within the margin: noise.
        p.answered(t0, Duration::from_millis(100));
        assert!(p.rate_per_second().unwrap() > before);
        let before = p.rate_per_second().unwrap();
        let slow = Duration::from_secs(1);
        p.answered(t0, slow);
        let after = p.rate_per_second().unwrap();
        assert!((after - before * 0.8).abs() < 1e-9, "{before} -> {after}");
        // Another delayed answer within that delay does not cut again.
        p.answered(t0 + Duration::from_millis(500), slow);
        assert_eq!(p.rate_per_second(), Some(after));
        p.answered(t0 + Duration::from_millis(1_500), slow);
        assert!(p.rate_per_second().unwrap() < after);
    }

    #[test]
    fn adaptive_schedule_follows_the_rate() {
        let mut p = Pacer::adaptive(
            AdaptiveRate {
                initial: 10.0,
                ..AdaptiveRate::BRISK
            },
            1,
        );
        let t0 = Instant::now();
        assert_eq!(p.reserve(t0), Duration::ZERO);
        assert_eq!(p.reserve(t0), Duration::from_millis(100));
        p.rate_limited(t0, Duration::ZERO); // 5 a second from now on
        let third = p.reserve(t0);
        let fourth = p.reserve(t0);
        assert_eq!(fourth - third, Duration::from_millis(200));
    }

    #[test]
    fn a_burst_at_a_slow_start_is_rescheduled_at_the_rate_found() {
        let mut p = Pacer::adaptive(
            AdaptiveRate {
                initial: 10.0,
                ..AdaptiveRate::BRISK
            },
            10,
        );
        let t0 = Instant::now();
        // Ten at once at 10 a second: the schedule runs a second ahead.
        for _ in 0..10 {
            assert_eq!(p.reserve(t0), Duration::ZERO);
        }
        assert_eq!(p.reserve(t0), Duration::from_millis(100));
        // The rate doubles (clean answers): what is scheduled ahead is half as far away.
        let t1 = t0 + Duration::from_millis(100);
        while p.rate_per_second().is_some_and(|r| r < 20.0) {
            p.answered(t1, Duration::from_millis(20));
        }
        let rate = p.rate_per_second().unwrap();
        let wait = p.reserve(t1);
        // The 11 requests scheduled from t0 ran the schedule 1 s past t1 at 10 a second: ten
        // intervals, now 10 / rate seconds; less the burst's tolerance (9 intervals), one
        // interval to wait (at the slow start's pace it would be over half a second).
        assert!(
            (wait.as_secs_f64() - 1.0 / rate).abs() < 1e-3,
            "{wait:?} at {rate}/s"
        );
    }

    #[test]
    fn adaptive_settings_that_make_no_sense_are_made_safe() {
        let odd = AdaptiveRate {
            initial: f64::NAN,
            floor: -1.0,
            ceiling: 0.0,
            growth: f64::INFINITY,
            backoff: 2.0,
            slowdown: 0.0,
            slow_factor: 0.1,
        };
        let mut p = Pacer::adaptive(odd, 0);
        let t0 = Instant::now();
        for _ in 0..10 {
            p.answered(t0, Duration::from_millis(1));
            p.rate_limited(t0, Duration::ZERO);
        }
        let rate = p.rate_per_second().unwrap();
        assert!(rate.is_finite() && rate > 0.0, "{rate}");
        let _ = p.reserve(t0);
        let capped = AdaptiveRate::at_most_per_minute(960);
        assert!((capped.ceiling - 16.0).abs() < 1e-9);
        assert_eq!(capped.initial, capped.ceiling);
    }

    #[test]
    fn the_window_shrinks_on_push_back_and_grows_back_by_one_per_window() {
        let mut p = Pacer::adaptive(AdaptiveRate::BRISK, 16);
        let t0 = Instant::now();
        let fast = Duration::from_millis(20);
        assert_eq!(p.in_flight_limit(), Some(16));
        p.answered(t0, fast);
        assert_eq!(p.in_flight_limit(), Some(16), "never above the burst");
        p.rate_limited(t0, Duration::ZERO);
        assert_eq!(p.in_flight_limit(), Some(8));
        // A delayed answer cuts it by the slowdown factor: 8 * 0.8 = 6.4.
        p.answered(t0 + fast, Duration::from_secs(1));
        assert_eq!(p.in_flight_limit(), Some(6));
        // Additive increase: about one per window of clean answers.
        for _ in 0..6 {
            p.answered(t0 + Duration::from_secs(2), fast);
        }
        assert_eq!(p.in_flight_limit(), Some(7));
        for i in 0..20 {
            p.rate_limited(t0 + Duration::from_secs(2) + fast * i, Duration::ZERO);
        }
        assert_eq!(p.in_flight_limit(), Some(1), "never below one");
        for _ in 0..1_000 {
            p.answered(t0 + Duration::from_secs(3), fast);
        }
        assert_eq!(
            p.in_flight_limit(),
            Some(16),
            "back to the burst, no further"
        );
        assert_eq!(
            Pacer::adaptive(AdaptiveRate::BRISK, 0).in_flight_limit(),
            Some(1)
        );
    }

    #[test]
    fn after_a_push_back_at_most_a_window_goes_at_once_and_none_into_the_pause() {
        let mut p = Pacer::adaptive(
            AdaptiveRate {
                initial: 10.0,
                ..AdaptiveRate::BRISK
            },
            4,
        );
        let t0 = Instant::now();
        let slot = p.reserve(t0);
        p.rate_limited(t0, Duration::from_secs(1)); // 5 a second, a window of 2
        assert_eq!(slot, Duration::ZERO);
        assert_eq!(
            p.paused_for(t0),
            Duration::from_secs(1),
            "the slot taken waits too"
        );
        let later = t0 + Duration::from_secs(10);
        assert_eq!(p.paused_for(later), Duration::ZERO);
        let waits: Vec<Duration> = (0..3).map(|_| p.reserve(later)).collect();
        assert_eq!(
            waits,
            [Duration::ZERO, Duration::ZERO, Duration::from_millis(200)]
        );
    }

    #[test]
    fn fixed_pacers_ignore_answers() {
        let mut p = Pacer::per_minute(60, 1);
        let t0 = Instant::now();
        p.answered(t0, Duration::from_secs(10));
        p.rate_limited(t0, Duration::ZERO);
        assert_eq!(p.rate_per_second(), None);
        assert_eq!(p.in_flight_limit(), None);
        assert_eq!(p.reserve(t0), Duration::ZERO);
        assert_eq!(p.reserve(t0), Duration::from_secs(1));
    }
}
