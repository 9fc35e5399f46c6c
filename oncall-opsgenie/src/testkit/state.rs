//! The simulated account: schedules, users, overrides, the clock, faults and the request log. No
//! HTTP here: `http.rs` turns requests into calls on this state.

use std::collections::{BTreeSet, HashMap, VecDeque};
use std::time::{Duration, Instant};

use chrono::{DateTime, TimeDelta, Utc};
use oncall_core::testkit::{
    resolve_overlaps, Admission, Fault, Layered, OverLimit, RateLimit, Throttle, Trigger,
};
use oncall_core::{Email, OnCallPeriod, Override, OverrideId, Span, VendorSchedule, Window};
use serde_json::Value;

use super::dialect::{
    Bucket, BucketLimit, OpsgenieDialect, OverlapPrecedence, PastOverrides, LISTING_LAG,
};
use super::http::{Arrival, Fingerprint};
use super::{HttpFault, KeyKind, LoggedRequest};

/// A fault waiting for its trigger.
#[derive(Debug, Clone)]
pub(crate) enum Pending {
    Core(Fault),
    Http(HttpFault),
}

/// An override as the simulated vendor holds it.
#[derive(Debug, Clone)]
pub(crate) struct Stored {
    pub alias: OverrideId,
    pub span: Span,
    /// Creation order (which override wins an overlap: [`OverlapPrecedence`]).
    pub seq: u64,
    /// The order of its last create or update.
    pub written: u64,
    /// The rotations it is limited to, by index into the schedule's rotations; `None`: every
    /// rotation.
    pub rotations: Option<Vec<usize>>,
}

impl Stored {
    /// Its precedence where overrides overlap: the higher wins.
    pub fn precedence(&self, rule: OverlapPrecedence) -> u64 {
        match rule {
            OverlapPrecedence::LastCreated => self.seq,
            OverlapPrecedence::LastWritten => self.written,
            OverlapPrecedence::FirstCreated => u64::MAX - self.seq,
        }
    }

    /// Whether it applies to the rotation at `index`.
    pub fn applies_to(&self, index: usize) -> bool {
        self.rotations.as_ref().is_none_or(|rs| rs.contains(&index))
    }
}

/// A write through the API, remembered for [`ListingLag::Lagged`](super::ListingLag): what the
/// alias held before it.
#[derive(Debug, Clone)]
pub(crate) struct ApiWrite {
    pub at: DateTime<Utc>,
    pub schedule: String,
    pub alias: OverrideId,
    pub before: Option<Stored>,
}

/// A write whose answer was lost or slow, to take effect later
/// ([`LostAnswerWrites::LandAfterAnswer`](super::LostAnswerWrites)).
#[derive(Debug, Clone)]
pub(crate) struct Deferred {
    /// It lands right before the request of this number is handled.
    pub due: usize,
    pub method: String,
    pub segments: Vec<String>,
    pub query: Vec<(String, String)>,
    pub body: Vec<u8>,
    pub key: KeyKind,
}

/// A schedule: the core's configuration plus what only Opsgenie has.
#[derive(Debug, Clone)]
pub(crate) struct SimSchedule {
    pub config: VendorSchedule,
    pub enabled: bool,
    /// Timeline `order` per rotation, by array index.
    pub order: Vec<f64>,
    pub overrides: Vec<Stored>,
}

impl SimSchedule {
    pub fn rotation_id(&self, index: usize) -> String {
        format!("{}-rotation-{}", self.config.id, index + 1)
    }

    pub fn find(&self, alias: &str) -> Option<usize> {
        self.overrides
            .iter()
            .position(|o| o.alias.as_str() == alias)
    }

    /// The index of the rotation a reference names: its id, else its name.
    pub fn rotation_index(&self, reference: &str) -> Option<usize> {
        (0..self.config.rotations.len())
            .find(|&i| self.rotation_id(i) == reference)
            .or_else(|| {
                self.config
                    .rotations
                    .iter()
                    .position(|r| r.name == reference)
            })
    }

    /// The rotation indices in the order the `rotations` array lists them.
    pub fn array_order(&self, order: super::RotationOrder) -> Vec<usize> {
        let mut indices: Vec<usize> = (0..self.config.rotations.len()).collect();
        // The UI's order is the timeline's `order`; ties by the order given.
        indices.sort_by(|&a, &b| {
            let key = |i: usize| self.order.get(i).copied().unwrap_or(i as f64 + 1.0);
            key(a).total_cmp(&key(b)).then(a.cmp(&b))
        });
        if order == super::RotationOrder::Shuffled {
            indices.reverse();
        }
        indices
    }
}

/// A deterministic pseudo-random sequence (SplitMix64) for the fault rate.
#[derive(Debug, Clone)]
pub(crate) struct Rng(u64);

impl Rng {
    pub fn new(seed: u64) -> Rng {
        Rng(seed)
    }

    /// A number in `[0, 1)`.
    pub fn next(&mut self) -> f64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^= z >> 31;
        (z >> 11) as f64 / (1u64 << 53) as f64
    }
}

/// Everything the simulator holds, behind one mutex.
#[derive(Debug)]
pub(crate) struct State {
    pub now: DateTime<Utc>,
    pub clock_step: TimeDelta,
    /// In the order they were added (the list endpoint's order).
    pub schedules: Vec<SimSchedule>,
    pub users: BTreeSet<Email>,
    pub next_seq: u64,
    pub log: Vec<LoggedRequest>,
    pub calls: usize,
    pub writes: usize,
    pub faults: Vec<(Trigger, Pending)>,
    pub read_only: bool,
    pub rate_limited: usize,
    pub fault_rate: Option<(f64, Rng)>,
    pub latency: Duration,
    /// The token bucket of [`super::Bucket`], with the setting it enforces (rebuilt when the
    /// dialect changes it).
    pub bucket: Option<(Bucket, BucketLimit, Throttle)>,
    /// How the account behaves where the reference is UNCONFIRMED.
    pub dialect: OpsgenieDialect,
    /// The API's recent writes ([`super::ListingLag::Lagged`]).
    pub api_writes: Vec<ApiWrite>,
    /// Writes still to land ([`super::LostAnswerWrites::LandAfterAnswer`]).
    pub deferred: Vec<Deferred>,
    /// Requests counted on arrival (by wiremock's matcher) and not yet answered (by its
    /// responder), by fingerprint, first come first served.
    pub arrived: HashMap<Fingerprint, VecDeque<Arrival>>,
    /// How many requests were logged since the start, cleared ones included.
    pub logged: usize,
    /// How many log entries were cleared ([`OpsgenieSimulator::clear_requests`]).
    ///
    /// [`OpsgenieSimulator::clear_requests`]: super::OpsgenieSimulator::clear_requests
    pub cleared: usize,
}

impl State {
    pub fn new(now: DateTime<Utc>) -> State {
        State {
            now,
            clock_step: TimeDelta::zero(),
            schedules: Vec::new(),
            users: BTreeSet::new(),
            next_seq: 0,
            log: Vec::new(),
            calls: 0,
            writes: 0,
            faults: Vec::new(),
            read_only: false,
            rate_limited: 0,
            fault_rate: None,
            latency: Duration::ZERO,
            bucket: None,
            dialect: OpsgenieDialect::default(),
            api_writes: Vec::new(),
            deferred: Vec::new(),
            arrived: HashMap::new(),
            logged: 0,
            cleared: 0,
        }
    }

    /// The log entry of the request numbered `number` ([`Arrival::number`]), unless cleared.
    pub fn logged_entry(&mut self, number: usize) -> Option<&mut LoggedRequest> {
        let at = number.checked_sub(self.cleared + 1)?;
        self.log.get_mut(at)
    }

    /// Empties the request log; numbering goes on.
    pub fn clear_log(&mut self) {
        self.cleared += self.log.len();
        self.log.clear();
    }

    pub fn schedule(&self, id: &str) -> Option<&SimSchedule> {
        self.schedules.iter().find(|s| s.config.id.0 == id)
    }

    pub fn schedule_mut(&mut self, id: &str) -> Option<&mut SimSchedule> {
        self.schedules.iter_mut().find(|s| s.config.id.0 == id)
    }

    pub fn add_schedule(&mut self, config: VendorSchedule) {
        self.users
            .extend(config.members.iter().map(|m| m.email.clone()));
        let order = (1..=config.rotations.len()).map(|i| i as f64).collect();
        match self.schedule_mut(&config.id.0) {
            Some(s) => {
                s.order = order;
                s.config = config;
            }
            None => self.schedules.push(SimSchedule {
                config,
                enabled: true,
                order,
                overrides: Vec::new(),
            }),
        }
    }

    pub fn next_seq(&mut self) -> u64 {
        self.next_seq += 1;
        self.next_seq
    }

    /// A span as the vendor keeps it ([`Rounding`](super::Rounding)): its instants floored to the
    /// minute under [`Rounding::FloorToMinute`](super::Rounding). `None` when nothing is left.
    pub fn kept(&self, span: Span) -> Option<Span> {
        let unit = match self.dialect.rounding {
            super::Rounding::Seconds => return Some(span),
            super::Rounding::FloorToMinute => 60,
        };
        let floor = |t: DateTime<Utc>| {
            DateTime::from_timestamp(t.timestamp().div_euclid(unit) * unit, 0).unwrap_or(t)
        };
        let (start, end) = (floor(span.start), floor(span.end));
        (start < end).then(|| Span::new(start, end, span.member))
    }

    /// Remembers a write through the API for the lagged listing: what `alias` held before it.
    pub fn note_api_write(&mut self, schedule: usize, alias: &OverrideId, before: Option<Stored>) {
        if self.dialect.listing_lag != super::ListingLag::Lagged {
            return;
        }
        let id = self.schedules[schedule].config.id.0.clone();
        self.api_writes.push(ApiWrite {
            at: self.now,
            schedule: id,
            alias: alias.clone(),
            before,
        });
    }

    /// The overrides `GET …/overrides` lists: per [`PastOverrides`], and, under a lagged
    /// listing, as they were [`LISTING_LAG`] ago as far as the API's writes go.
    pub fn listing(&mut self, index: usize) -> Vec<Stored> {
        let now = self.now;
        let cutoff = now.checked_sub_signed(LISTING_LAG).unwrap_or(now);
        let lagged = self.dialect.listing_lag == super::ListingLag::Lagged;
        self.api_writes.retain(|w| lagged && w.at > cutoff);
        let s = &self.schedules[index];
        let mut view = s.overrides.clone();
        for w in self
            .api_writes
            .iter()
            .rev()
            .filter(|w| w.schedule == s.config.id.0)
        {
            view.retain(|o| o.alias != w.alias);
            view.extend(w.before.clone());
        }
        if self.dialect.past_overrides == PastOverrides::NotListed {
            view.retain(|o| o.span.end > now);
        }
        view.sort_by(|a, b| a.span.cmp(&b.span).then_with(|| a.alias.cmp(&b.alias)));
        view
    }

    /// Counts a request and takes the fault it triggers, if any.
    pub fn count(&mut self, write: bool) -> Option<Pending> {
        self.calls += 1;
        if write {
            self.writes += 1;
        }
        self.now = self
            .now
            .checked_add_signed(self.clock_step)
            .unwrap_or(self.now);
        let (call, writes) = (self.calls, self.writes);
        let hit = self.faults.iter().position(|(t, _)| match t {
            Trigger::Call(n) => *n == call,
            Trigger::Write(n) => write && *n == writes,
        })?;
        Some(self.faults.remove(hit).1)
    }

    /// Whether the random fault rate hits this request, and with a 429 (`true`) or a 503.
    pub fn random_fault(&mut self) -> Option<bool> {
        let (rate, rng) = self.fault_rate.as_mut()?;
        let rate = *rate;
        (rng.next() < rate).then(|| rng.next() < 0.5)
    }

    /// What the account's token bucket ([`Bucket`]) decides for a request arriving now: `None`
    /// when the dialect has none. The bucket starts empty whenever the dialect changes it.
    pub fn admit(&mut self) -> Option<Admission> {
        let (setting, limit) = (self.dialect.bucket, self.dialect.bucket_limit);
        let over_limit = match setting {
            Bucket::Off => {
                self.bucket = None;
                return None;
            }
            Bucket::Refuse429 => OverLimit::Refuse,
            Bucket::Delay => OverLimit::Delay,
        };
        if !matches!(&self.bucket, Some((s, l, _)) if *s == setting && *l == limit) {
            let throttle = Throttle::new(RateLimit {
                per_second: Some(limit.per_second),
                per_minute: Some(limit.per_minute),
                over_limit,
            });
            self.bucket = Some((setting, limit, throttle));
        }
        self.bucket
            .as_mut()
            .map(|(_, _, throttle)| throttle.admit(Instant::now()))
    }

    pub fn clear_faults(&mut self) {
        self.faults.clear();
        self.read_only = false;
        self.rate_limited = 0;
        self.fault_rate = None;
    }
}

/// Who the overrides put on call over `window`, the winner of an overlap as the dialect says,
/// joined where the member is the same (the
/// [`VendorSimulator::render`](oncall_core::testkit::VendorSimulator::render) view).
pub(crate) fn render(
    overrides: &[Stored],
    window: Window,
    rule: OverlapPrecedence,
) -> Vec<OnCallPeriod> {
    let stretches: Vec<Layered<Email>> = overrides
        .iter()
        .map(|o| Layered {
            start: o.span.start,
            end: o.span.end,
            who: o.span.member.clone(),
            precedence: o.precedence(rule),
        })
        .collect();
    resolve_overlaps(&stretches, window)
        .into_iter()
        .map(|(start, end, member)| OnCallPeriod { start, end, member })
        .collect()
}

/// The overrides of a schedule as a person sees them: sorted by span, then alias.
pub(crate) fn listed(schedule: &SimSchedule) -> Vec<Override> {
    let mut list: Vec<Override> = schedule
        .overrides
        .iter()
        .map(|o| Override {
            id: o.alias.clone(),
            span: o.span.clone(),
        })
        .collect();
    list.sort_by(|a, b| a.span.cmp(&b.span).then_with(|| a.id.cmp(&b.id)));
    list
}

/// A stable, Opsgenie-looking user id for an email.
pub(crate) fn user_id(email: &Email) -> String {
    let mut hash: u64 = 0xcbf2_9ce4_8422_2325;
    for b in email.as_str().bytes() {
        hash ^= u64::from(b);
        hash = hash.wrapping_mul(0x0000_0100_0000_01b3);
    }
    format!("user-{hash:016x}")
}

/// A JSON body for the request log (`None` when empty or not JSON).
pub(crate) fn logged_body(body: &[u8]) -> Option<Value> {
    serde_json::from_slice(body).ok()
}
