//! Shared fixtures: daily 09:00 UTC shifts, "day N" instants, a destination over an in-memory provider.
#![allow(dead_code)]

use std::sync::atomic::{AtomicUsize, Ordering};

use async_trait::async_trait;
use chrono::{DateTime, TimeDelta, TimeZone, Utc};
use oncall_sync::testkit::{InMemoryProvider, VendorSimulator};
use oncall_sync::{
    sync, ConnectionId, Destination, DestinationId, DestinationMode, DestinationReport,
    DestinationState, Email, Error, InMemoryStateStore, Member, Override, RoleIndex, Schedule,
    ScheduleId, Shift, Span, StateStore, SyncMode, SyncOptions, SyncTarget, VendorSchedule,
    VendorScheduleId, Versioned, Window,
};

pub const PEOPLE: [&str; 5] = ["ann", "bob", "cat", "dan", "eve"];

/// Day `d` at 09:00 UTC (the handoff), plus `h` hours.
pub fn day(d: i64) -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2024, 1, 1, 9, 0, 0).unwrap() + TimeDelta::days(d)
}

pub fn at(d: i64, hour: u32) -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2024, 1, 1, hour, 0, 0).unwrap() + TimeDelta::days(d)
}

pub fn email(name: &str) -> Email {
    Email::parse(&format!("{name}@example.com")).unwrap()
}

pub fn members() -> Vec<Member> {
    PEOPLE.iter().map(|n| Member::new(email(n), *n)).collect()
}

/// Daily shifts from day `from` to day `to` (exclusive), primary assigned round-robin.
pub fn shifts(from: i64, to: i64) -> Vec<Shift> {
    (from..to)
        .map(|d| {
            Shift::new(
                day(d),
                day(d + 1),
                vec![Some(email(PEOPLE[d as usize % PEOPLE.len()]))],
            )
        })
        .collect()
}

pub fn schedule(from: i64, to: i64) -> Schedule {
    Schedule::new(
        ScheduleId("host".into()),
        chrono_tz::UTC,
        vec!["primary".into()],
        members(),
        shifts(from, to),
    )
    .unwrap()
}

pub fn vendor_schedule(id: &str) -> VendorSchedule {
    VendorSchedule {
        id: VendorScheduleId(id.into()),
        name: id.into(),
        zone: chrono_tz::UTC,
        members: members(),
        rotations: Vec::new(),
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Vendor {
    PagerDutyLike,
    OpsgenieLike,
}

pub const VENDORS: [Vendor; 2] = [Vendor::PagerDutyLike, Vendor::OpsgenieLike];

/// A store that "crashes" after a number of saves: later saves fail, so the driver stops as a dying
/// process would, right after a vendor write whose state was not saved.
pub struct CrashingStore<'a> {
    inner: &'a InMemoryStateStore,
    saves_left: AtomicUsize,
}

impl<'a> CrashingStore<'a> {
    /// A store over `inner` that saves `saves` times, then "dies".
    pub fn new(inner: &'a InMemoryStateStore, saves: usize) -> Self {
        CrashingStore {
            inner,
            saves_left: AtomicUsize::new(saves),
        }
    }
}

#[async_trait]
impl StateStore for CrashingStore<'_> {
    async fn load(&self, d: &DestinationId) -> Result<Versioned<DestinationState>, Error> {
        self.inner.load(d).await
    }
    async fn save(
        &self,
        d: &DestinationId,
        expected: u64,
        state: &DestinationState,
    ) -> Result<u64, Error> {
        if self.saves_left.load(Ordering::SeqCst) == 0 {
            return Err(Error::Transient {
                message: "process died".into(),
            });
        }
        self.saves_left.fetch_sub(1, Ordering::SeqCst);
        self.inner.save(d, expected, state).await
    }
    async fn remove(&self, d: &DestinationId, expected: u64) -> Result<(), Error> {
        self.inner.remove(d, expected).await
    }
}

pub struct Fixture {
    pub provider: InMemoryProvider,
    pub store: InMemoryStateStore,
    pub destination: Destination,
    pub vendor: Vendor,
}

impl Fixture {
    pub fn new(vendor: Vendor, now: DateTime<Utc>) -> Fixture {
        let provider = match vendor {
            Vendor::PagerDutyLike => InMemoryProvider::pagerduty_like(now),
            Vendor::OpsgenieLike => InMemoryProvider::opsgenie_like(now),
        };
        provider.add_schedule(vendor_schedule("VS"));
        Fixture {
            provider,
            store: InMemoryStateStore::new(),
            destination: Destination {
                id: DestinationId("dest".into()),
                connection: ConnectionId("conn".into()),
                schedule: VendorScheduleId("VS".into()),
                role: RoleIndex::PRIMARY,
                mode: DestinationMode::Protect,
            },
            vendor,
        }
    }

    pub fn vs(&self) -> VendorScheduleId {
        self.destination.schedule.clone()
    }

    pub async fn run(
        &self,
        schedule: &Schedule,
        now: DateTime<Utc>,
        mode: SyncMode,
    ) -> DestinationReport {
        self.provider.set_now(now);
        let targets = [SyncTarget {
            destination: &self.destination,
            provider: &self.provider,
        }];
        let options = SyncOptions {
            now,
            horizon: None,
            mode,
        };
        let mut report = sync(schedule, &targets, &self.store, options)
            .await
            .unwrap();
        report.destinations.remove(0)
    }

    pub async fn sync(&self, schedule: &Schedule, now: DateTime<Utc>) -> DestinationReport {
        self.run(schedule, now, SyncMode::Apply).await
    }

    /// A sync that keeps its state in `store`, with the vendor's clock at `now`.
    pub async fn sync_with_store(
        &self,
        schedule: &Schedule,
        now: DateTime<Utc>,
        store: &dyn StateStore,
    ) -> DestinationReport {
        self.provider.set_now(now);
        self.sync_full(schedule, now, store, None).await
    }

    /// A sync with every knob: the state store and the horizon (the vendor's clock is left as set).
    pub async fn sync_full(
        &self,
        schedule: &Schedule,
        now: DateTime<Utc>,
        store: &dyn StateStore,
        horizon: Option<TimeDelta>,
    ) -> DestinationReport {
        let targets = [SyncTarget {
            destination: &self.destination,
            provider: &self.provider,
        }];
        let options = SyncOptions {
            now,
            horizon,
            mode: SyncMode::Apply,
        };
        let mut report = sync(schedule, &targets, store, options).await.unwrap();
        report.destinations.remove(0)
    }

    pub fn foreign(
        &self,
        start: DateTime<Utc>,
        end: DateTime<Utc>,
        who: &str,
    ) -> oncall_sync::OverrideId {
        self.provider
            .insert_override(&self.vs(), Span::new(start, end, email(who)))
    }

    pub fn vendor_overrides(&self) -> Vec<Override> {
        self.provider.overrides(&self.vs())
    }

    pub fn high_water(&self) -> Option<DateTime<Utc>> {
        self.store
            .get(&self.destination.id)
            .and_then(|s| s.high_water)
    }

    pub fn ledger(&self) -> Vec<Override> {
        self.store
            .get(&self.destination.id)
            .map(|s| s.ledger)
            .unwrap_or_default()
    }

    /// Who the vendor's overrides put on call over `[from, to)`, as (start, end, name) triples.
    pub fn rendered(
        &self,
        from: DateTime<Utc>,
        to: DateTime<Utc>,
    ) -> Vec<(DateTime<Utc>, DateTime<Utc>, Email)> {
        self.provider
            .render(&self.vs(), Window::new(from, to).unwrap())
            .into_iter()
            .map(|p| (p.start, p.end, p.member))
            .collect()
    }
}

/// The desired spans of `schedule`'s primary, clipped to `[from, to)`, joined where the member repeats.
pub fn desired_view(
    schedule: &Schedule,
    from: DateTime<Utc>,
    to: DateTime<Utc>,
) -> Vec<(DateTime<Utc>, DateTime<Utc>, Email)> {
    let mut out: Vec<(DateTime<Utc>, DateTime<Utc>, Email)> = Vec::new();
    for s in schedule.shifts() {
        let (start, end) = (s.start.max(from), s.end.min(to));
        if start >= end {
            continue;
        }
        if let Some(who) = s.assignee(RoleIndex::PRIMARY) {
            match out.last_mut() {
                Some(last) if last.1 == start && &last.2 == who => last.1 = end,
                _ => out.push((start, end, who.clone())),
            }
        }
    }
    out
}

/// The binary of an example (`oncall`, `worker`) next to this test's own: `cargo test` builds the
/// examples (with the features of the run); after a filtered build, build it first, e.g.
/// `cargo build --example oncall` (`--features postgres` for the worker).
pub fn example_binary(name: &str) -> std::path::PathBuf {
    let exe = std::env::current_exe().unwrap();
    let profile = exe
        .parent()
        .and_then(std::path::Path::parent)
        .unwrap()
        .to_path_buf();
    let bin = profile
        .join("examples")
        .join(format!("{name}{}", std::env::consts::EXE_SUFFIX));
    assert!(
        bin.exists(),
        "{} is missing: `cargo test` builds the examples; after a filtered build run `cargo \
         build --example {name}` first (with `--features postgres` for the PostgreSQL tests)",
        bin.display()
    );
    bin
}
