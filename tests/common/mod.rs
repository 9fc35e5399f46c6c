//! Shared fixtures: daily 09:00 UTC shifts, "day N" instants, a destination over an in-memory provider.
#![allow(dead_code)]

use chrono::{DateTime, TimeDelta, TimeZone, Utc};
use oncall_sync::testkit::{InMemoryProvider, VendorSimulator};
use oncall_sync::{
    sync, ConnectionId, Destination, DestinationId, DestinationReport, Email, InMemoryStateStore,
    Member, Override, RoleIndex, Schedule, ScheduleId, Shift, Span, SyncMode, SyncOptions,
    SyncTarget, VendorSchedule, VendorScheduleId, Window,
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
