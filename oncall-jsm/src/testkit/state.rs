//! The simulated site: schedules, people, overrides, the clock, faults and the request log. No
//! HTTP here: `http.rs` turns requests into calls on this state.

use std::time::Duration;

use chrono::{DateTime, TimeDelta, Utc};
use oncall_core::testkit::{resolve_overlaps, Fault, Layered, Throttle, Trigger};
use oncall_core::{Email, OnCallPeriod, Override, OverrideId, Span, VendorSchedule, Window};

use super::dialect::JsmDialect;
use super::{HttpFault, LoggedRequest};

/// A fault waiting for its trigger.
#[derive(Debug, Clone)]
pub(crate) enum Pending {
    Core(Fault),
    Http(HttpFault),
}

/// A person of the site.
#[derive(Debug, Clone)]
pub(crate) struct SimUser {
    pub account: String,
    pub email: Email,
    pub name: String,
    /// Whether the site shows the e-mail (a user may hide it).
    pub email_visible: bool,
}

/// An override as the simulated site holds it. The responder is kept as the e-mail a person
/// reading the site would name: a user's own, or a reserved one (`nobody@jsm.invalid`).
#[derive(Debug, Clone)]
pub(crate) struct Stored {
    pub alias: String,
    pub span: Span,
    /// Creation order: the last created wins where overrides overlap (UNCONFIRMED; the same rule as
    /// the core's in-memory provider).
    pub seq: u64,
    /// The rotations it applies to; `None`: every rotation.
    pub rotation_ids: Option<Vec<String>>,
}

/// A schedule: the core's configuration, its rotations' ids, and its overrides.
#[derive(Debug, Clone)]
pub(crate) struct SimSchedule {
    pub config: VendorSchedule,
    pub rotation_ids: Vec<String>,
    /// Timeline `order` per rotation, by index (1, 2, 3 … unless a test sets it).
    pub order: Vec<f64>,
    pub overrides: Vec<Stored>,
}

impl SimSchedule {
    pub fn id(&self) -> &str {
        &self.config.id.0
    }

    pub fn find(&self, alias: &str) -> Option<usize> {
        self.overrides.iter().position(|o| o.alias == alias)
    }
}

/// Everything the simulator holds, behind one mutex.
#[derive(Debug)]
pub(crate) struct State {
    pub now: DateTime<Utc>,
    pub clock_step: TimeDelta,
    pub dialect: JsmDialect,
    /// In the order they were added (the list's order).
    pub schedules: Vec<SimSchedule>,
    pub users: Vec<SimUser>,
    pub next_seq: u64,
    pub log: Vec<LoggedRequest>,
    pub calls: usize,
    pub writes: usize,
    pub faults: Vec<(Trigger, Pending)>,
    pub read_only: bool,
    /// The account may create and update overrides but not delete them (403).
    pub deletes_forbidden: bool,
    /// The account may not look people up on the site (403 from `user/search` and `user`).
    pub people_forbidden: bool,
    pub rate_limited: usize,
    /// `Retry-After` of the simulated 429s, in seconds.
    pub retry_after: u64,
    pub throttle: Option<Throttle>,
    pub latency: Duration,
}

impl State {
    pub fn new(now: DateTime<Utc>, dialect: JsmDialect) -> State {
        State {
            now,
            clock_step: TimeDelta::zero(),
            dialect,
            schedules: Vec::new(),
            users: Vec::new(),
            next_seq: 0,
            log: Vec::new(),
            calls: 0,
            writes: 0,
            faults: Vec::new(),
            read_only: false,
            deletes_forbidden: false,
            people_forbidden: false,
            rate_limited: 0,
            retry_after: 1,
            throttle: super::throttle_for(dialect.rate_limit),
            latency: Duration::ZERO,
        }
    }

    pub fn schedule(&self, id: &str) -> Option<&SimSchedule> {
        self.schedules.iter().find(|s| s.id() == id)
    }

    pub fn schedule_mut(&mut self, id: &str) -> Option<&mut SimSchedule> {
        self.schedules.iter_mut().find(|s| s.id() == id)
    }

    pub fn next_seq(&mut self) -> u64 {
        self.next_seq += 1;
        self.next_seq
    }

    /// A server-chosen alias, shaped like the spec's example (a UUID).
    pub fn new_alias(&mut self) -> String {
        let seq = self.next_seq();
        uuid_like("override", seq)
    }

    /// Adds a person (or updates their name), with a stable accountId.
    pub fn add_user(&mut self, email: Email, name: &str) -> String {
        if let Some(u) = self.users.iter_mut().find(|u| u.email == email) {
            u.name = name.to_owned();
            return u.account.clone();
        }
        let account = account_id(&email);
        self.users.push(SimUser {
            account: account.clone(),
            email,
            name: name.to_owned(),
            email_visible: true,
        });
        account
    }

    pub fn user_by_email(&self, email: &Email) -> Option<&SimUser> {
        self.users.iter().find(|u| &u.email == email)
    }

    pub fn user_by_account(&self, account: &str) -> Option<&SimUser> {
        self.users.iter().find(|u| u.account == account)
    }

    pub fn add_schedule(&mut self, config: VendorSchedule) {
        for m in &config.members {
            self.add_user(m.email.clone(), &m.name);
        }
        let rotation_ids = (0..config.rotations.len())
            .map(|i| uuid_like(&format!("rotation {} {i}", config.id), i as u64))
            .collect();
        let order = (1..=config.rotations.len()).map(|i| i as f64).collect();
        match self.schedule_mut(&config.id.0) {
            Some(s) => {
                s.rotation_ids = rotation_ids;
                s.order = order;
                s.config = config;
            }
            None => self.schedules.push(SimSchedule {
                config,
                rotation_ids,
                order,
                overrides: Vec::new(),
            }),
        }
    }

    /// Counts a request, moves the clock on, and takes the fault it triggers, if any.
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

    pub fn clear_faults(&mut self) {
        self.faults.clear();
        self.read_only = false;
        self.deletes_forbidden = false;
        self.people_forbidden = false;
        self.rate_limited = 0;
    }
}

/// Who the overrides put on call over `window`, last created winning, joined where the member is
/// the same.
pub(crate) fn render(overrides: &[Stored], window: Window) -> Vec<OnCallPeriod> {
    let stretches: Vec<Layered<Email>> = overrides
        .iter()
        .map(|o| Layered {
            start: o.span.start,
            end: o.span.end,
            who: o.span.member.clone(),
            precedence: o.seq,
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
            id: OverrideId::new(o.alias.as_str()),
            span: o.span.clone(),
        })
        .collect();
    list.sort_by(|a, b| a.span.cmp(&b.span).then_with(|| a.id.cmp(&b.id)));
    list
}

fn fnv(text: &str, salt: u64) -> u64 {
    let mut hash: u64 = 0xcbf2_9ce4_8422_2325 ^ salt;
    for b in text.bytes() {
        hash ^= u64::from(b);
        hash = hash.wrapping_mul(0x0000_0100_0000_01b3);
    }
    hash
}

/// A stable, UUID-shaped id from a text and a number.
pub(crate) fn uuid_like(text: &str, n: u64) -> String {
    let a = fnv(text, n);
    let b = fnv(text, n.wrapping_add(0x9e37_79b9));
    format!(
        "{:08x}-{:04x}-4{:03x}-8{:03x}-{:012x}",
        a >> 32,
        (a >> 16) & 0xffff,
        a & 0xfff,
        (b >> 48) & 0xfff,
        b & 0xffff_ffff_ffff
    )
}

/// A stable Atlassian-looking accountId for an e-mail (`712020:<uuid>`, the newer shape, which
/// has a colon in it).
pub(crate) fn account_id(email: &Email) -> String {
    format!("712020:{}", uuid_like(email.as_str(), 7))
}
