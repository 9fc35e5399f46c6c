//! A vendor's rate limit, as simulators enforce it: rolling windows of one second and one minute
//! (Opsgenie checks both per request domain), each over-limit request refused (a 429) or held
//! until the window lets it through (Opsgenie: "rejected with the HTTP status 429 - Too Many
//! Requests or delayed to be executed").

use std::collections::VecDeque;
use std::time::{Duration, Instant};

/// What a throttled vendor does with a request over its limit.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OverLimit {
    /// Refuses it: a 429 naming the window that was full.
    Refuse,
    /// Holds it until the window has room, then serves it.
    Delay,
}

/// A rate limit: requests per rolling second and per rolling minute (`None`: no limit there).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RateLimit {
    /// Requests per rolling second.
    pub per_second: Option<u32>,
    /// Requests per rolling minute.
    pub per_minute: Option<u32>,
    /// What happens to a request over the limit.
    pub over_limit: OverLimit,
}

/// What the throttle decided for one request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Admission {
    /// Served now.
    Admit,
    /// Refused: the window that was full (1 s or 60 s) and when it will have room.
    Refused {
        /// The window's length (what Opsgenie's `X-RateLimit-Period-In-Sec` says).
        window: Duration,
        /// How long until a request would be admitted.
        retry_after: Duration,
    },
    /// Served after this long.
    Delayed(Duration),
}

/// Rolling-window counters of the requests admitted.
///
/// ```
/// use std::time::{Duration, Instant};
/// use oncall_core::testkit::{Admission, OverLimit, RateLimit, Throttle};
/// let mut t = Throttle::new(RateLimit { per_second: Some(2), per_minute: None, over_limit: OverLimit::Refuse });
/// let t0 = Instant::now();
/// assert_eq!(t.admit(t0), Admission::Admit);
/// assert_eq!(t.admit(t0), Admission::Admit);
/// assert!(matches!(t.admit(t0), Admission::Refused { window, .. } if window == Duration::from_secs(1)));
/// assert_eq!(t.admit(t0 + Duration::from_secs(1)), Admission::Admit);
/// ```
#[derive(Debug, Clone)]
pub struct Throttle {
    limit: RateLimit,
    /// When each request of the last minute was (or will be) served, in order.
    served: VecDeque<Instant>,
    /// How many requests were refused or delayed.
    pushed_back: usize,
}

const SECOND: Duration = Duration::from_secs(1);
const MINUTE: Duration = Duration::from_secs(60);

impl Throttle {
    /// A throttle enforcing `limit`.
    pub fn new(limit: RateLimit) -> Throttle {
        Throttle {
            limit,
            served: VecDeque::new(),
            pushed_back: 0,
        }
    }

    /// The limit enforced.
    pub fn limit(&self) -> RateLimit {
        self.limit
    }

    /// How many requests were refused or delayed so far.
    pub fn pushed_back(&self) -> usize {
        self.pushed_back
    }

    /// Decides for a request arriving at `now`.
    pub fn admit(&mut self, now: Instant) -> Admission {
        while self
            .served
            .front()
            .is_some_and(|&t| now.saturating_duration_since(t) >= MINUTE)
        {
            self.served.pop_front();
        }
        let at = self.earliest_slot(now);
        if at <= now {
            self.served.push_back(now);
            return Admission::Admit;
        }
        self.pushed_back += 1;
        let wait = at - now;
        match self.limit.over_limit {
            OverLimit::Refuse => Admission::Refused {
                window: self.full_window(now),
                retry_after: wait,
            },
            OverLimit::Delay => {
                // Kept in serving order: a delayed request is served after the later ones
                // already scheduled.
                let position = self.served.partition_point(|&t| t <= at);
                self.served.insert(position, at);
                Admission::Delayed(wait)
            }
        }
    }

    /// The first instant at or after `now` at which both windows have room.
    fn earliest_slot(&self, now: Instant) -> Instant {
        let mut at = now;
        // Each window with `limit` requests served in its span pushes the slot to when the oldest
        // of them leaves it; repeat until both agree (each round passes at least one request
        // already served or scheduled, so there are at most as many rounds as those).
        for _ in 0..=self.served.len() {
            let mut moved = false;
            for (window, limit) in [
                (SECOND, self.limit.per_second),
                (MINUTE, self.limit.per_minute),
            ] {
                let Some(limit) = limit else { continue };
                let limit = usize::try_from(limit.max(1)).unwrap_or(usize::MAX);
                let in_window: Vec<Instant> = self
                    .served
                    .iter()
                    .copied()
                    .filter(|&t| t <= at && at.saturating_duration_since(t) < window)
                    .collect();
                if in_window.len() >= limit {
                    let oldest = in_window[in_window.len() - limit];
                    let free = oldest + window;
                    if free > at {
                        at = free;
                        moved = true;
                    }
                }
            }
            if !moved {
                break;
            }
        }
        at
    }

    /// Which window is full at `now`: the second's if it is, else the minute's.
    fn full_window(&self, now: Instant) -> Duration {
        let count = |window: Duration| {
            self.served
                .iter()
                .filter(|&&t| t <= now && now.saturating_duration_since(t) < window)
                .count()
        };
        match self.limit.per_second {
            Some(limit) if count(SECOND) >= usize::try_from(limit).unwrap_or(usize::MAX) => SECOND,
            _ => MINUTE,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_minute_window_refuses_when_the_second_has_room() {
        let mut t = Throttle::new(RateLimit {
            per_second: Some(10),
            per_minute: Some(3),
            over_limit: OverLimit::Refuse,
        });
        let t0 = Instant::now();
        for i in 0..3 {
            assert_eq!(t.admit(t0 + SECOND * i), Admission::Admit);
        }
        assert_eq!(
            t.admit(t0 + SECOND * 5),
            Admission::Refused {
                window: MINUTE,
                retry_after: SECOND * 55
            }
        );
        assert_eq!(t.admit(t0 + MINUTE), Admission::Admit);
        assert_eq!(t.pushed_back(), 1);
    }

    #[test]
    fn delayed_requests_are_served_in_turn() {
        let mut t = Throttle::new(RateLimit {
            per_second: Some(1),
            per_minute: None,
            over_limit: OverLimit::Delay,
        });
        let t0 = Instant::now();
        assert_eq!(t.admit(t0), Admission::Admit);
        assert_eq!(t.admit(t0), Admission::Delayed(SECOND));
        assert_eq!(t.admit(t0), Admission::Delayed(SECOND * 2));
        assert_eq!(t.admit(t0 + SECOND * 3), Admission::Admit);
        // A long queue: each request waits its turn behind all of it.
        let t1 = t0 + MINUTE * 2;
        let waits: Vec<Admission> = (0..6).map(|_| t.admit(t1)).collect();
        let expected: Vec<Admission> = (0..6u32)
            .map(|i| match i {
                0 => Admission::Admit,
                i => Admission::Delayed(SECOND * i),
            })
            .collect();
        assert_eq!(waits, expected);
    }

    #[test]
    fn no_limit_admits_everything() {
        let mut t = Throttle::new(RateLimit {
            per_second: None,
            per_minute: None,
            over_limit: OverLimit::Refuse,
        });
        let t0 = Instant::now();
        assert!((0..1000).all(|_| t.admit(t0) == Admission::Admit));
    }
}
