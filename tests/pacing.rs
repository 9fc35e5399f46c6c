//! Issue 13 §5, pacing when the limits are unknown: under a tight token bucket of the simulated
//! account, a first export through the adapters' default adaptive pace completes, and the number
//! of 429s it meets stays bounded. (How fast it goes is the `pacing` bench's to measure: no timed
//! assertions here.)
//!
//! The bounds, and why they hold: the pace starts with a window of requests in flight (16 on
//! Opsgenie, 5 on PagerDuty) and a rate that climbs past the bucket's; the first 429 halves both
//! and pauses every request of the connection for the vendor's period (requests that had already
//! reserved a slot wait it too), and the other 429s of that push-back are only those of requests
//! already in flight: at most a window. Each later push-back meets a window at most half as large,
//! and the pace then grows back by 1 % of its rate and about one request of window per window of
//! clean answers, so it meets the limit again only every several dozen requests. Hence at most
//! 16 + 8 + 4 + ... < 32 on Opsgenie and 5 + 2 + 1 ... < 10 on PagerDuty, less in practice.
//! Measured (three runs each): Opsgenie 8, 10 and 11 429s in about 140 calls; PagerDuty 4 in 14.

use std::time::Duration;

use chrono::{DateTime, TimeDelta, TimeZone, Utc};
use oncall_sync::opsgenie::testkit::{
    Bucket as OgBucket, BucketLimit as OgLimit, OpsgenieDialect, OpsgenieSimulator,
};
use oncall_sync::pagerduty::testkit::{
    Bucket as PdBucket, BucketLimit as PdLimit, PagerDutyDialect, PagerDutySimulator,
};
use oncall_sync::testkit::VendorSimulator;
use oncall_sync::{
    sync, ConnectionId, Destination, DestinationId, DestinationMode, Email, InMemoryStateStore,
    Member, Provider, RetryPolicy, RoleIndex, Schedule, ScheduleId, Shift, SyncMode, SyncOptions,
    SyncTarget, VendorSchedule, VendorScheduleId,
};

const PEOPLE: [&str; 4] = ["ann", "bob", "cat", "dan"];

/// The most 429s a first export of [`OG_DAYS`] days meets on Opsgenie under [`OG_TIGHT`].
const OG_MAX_429: usize = 24;
/// Days of the Opsgenie export: about 130 calls, some seconds at 20 a second.
const OG_DAYS: i64 = 120;
/// 20 requests a second, 600 a minute: the export's calls fit the minute, not the second.
const OG_TIGHT: OgLimit = OgLimit {
    per_second: 20,
    per_minute: 600,
};

/// The most 429s a first export of a year meets on PagerDuty under [`PD_TIGHT`].
const PD_MAX_429: usize = 8;
/// 2 requests a second, 120 a minute: below the adaptive pace's start (15 a second, 5 at once).
const PD_TIGHT: PdLimit = PdLimit {
    per_second: 2,
    per_minute: 120,
};

fn email(name: &str) -> Email {
    Email::parse(&format!("{name}@example.com")).unwrap_or_else(|e| panic!("{e}"))
}

fn now() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2025, 1, 1, 8, 0, 0)
        .single()
        .unwrap_or_default()
}

/// `days` daily shifts from tomorrow, primary round-robin.
fn daily(days: i64) -> Schedule {
    let day = |d: i64| now() + TimeDelta::hours(1) + TimeDelta::days(d);
    let members = PEOPLE.iter().map(|n| Member::new(email(n), *n)).collect();
    let shifts = (0..days)
        .map(|d| {
            let who = email(PEOPLE[d as usize % PEOPLE.len()]);
            Shift::new(day(d), day(d + 1), vec![Some(who)])
        })
        .collect();
    Schedule::new(
        ScheduleId("host".into()),
        chrono_tz::UTC,
        vec!["primary".into()],
        members,
        shifts,
    )
    .unwrap_or_else(|e| panic!("{e}"))
}

fn vendor_schedule() -> VendorSchedule {
    VendorSchedule {
        id: VendorScheduleId("VS".into()),
        name: "Tight".into(),
        zone: chrono_tz::UTC,
        members: PEOPLE.iter().map(|n| Member::new(email(n), *n)).collect(),
        rotations: Vec::new(),
    }
}

/// A first export of `host` through `provider`; panics unless it is clean.
async fn first_export(host: &Schedule, provider: &dyn Provider) {
    let destination = Destination {
        id: DestinationId("tight".into()),
        connection: ConnectionId("tight".into()),
        schedule: VendorScheduleId("VS".into()),
        role: RoleIndex::PRIMARY,
        mode: DestinationMode::Protect,
    };
    let store = InMemoryStateStore::new();
    let targets = [SyncTarget {
        destination: &destination,
        provider,
    }];
    let options = SyncOptions {
        now: now(),
        horizon: None,
        mode: SyncMode::Apply,
    };
    let report = sync(host, &targets, &store, options)
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    assert!(report.is_ok(), "{report}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn opsgenie_first_export_under_a_tight_bucket_meets_a_bounded_number_of_429s() {
    let dialect = OpsgenieDialect {
        bucket: OgBucket::Refuse429,
        bucket_limit: OG_TIGHT,
        ..OpsgenieDialect::default()
    };
    let sim = OpsgenieSimulator::start_with(now(), dialect).await;
    sim.add_schedule(vendor_schedule());
    sim.set_latency(Duration::from_millis(5));
    // As a user gets it: the default pace (adaptive) and retries.
    let provider = sim
        .provider_builder()
        .with_retry(RetryPolicy::default())
        .with_adaptive_rate(oncall_sync::pacing::AdaptiveRate::BRISK)
        .build()
        .unwrap_or_else(|e| panic!("{e}"));
    first_export(&daily(OG_DAYS), &provider).await;
    let log = sim.requests();
    let refused = log.iter().filter(|r| r.status == Some(429)).count();
    eprintln!(
        "opsgenie: {} calls, {refused} answered 429 (bound {OG_MAX_429})",
        log.len()
    );
    assert_eq!(sim.overrides(&VendorScheduleId("VS".into())).len(), 120);
    assert!(refused > 0, "the bucket is tight enough to push back");
    assert!(refused <= OG_MAX_429, "{refused} 429s");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pagerduty_first_export_under_a_tight_bucket_meets_a_bounded_number_of_429s() {
    let dialect = PagerDutyDialect {
        bucket: PdBucket::Refuse429(PD_TIGHT),
        ..PagerDutyDialect::default()
    };
    let sim = PagerDutySimulator::start_with(now(), dialect).await;
    sim.add_schedule(vendor_schedule());
    sim.set_latency(Duration::from_millis(5));
    let provider = sim
        .provider_builder()
        .with_retry(RetryPolicy::default())
        .build()
        .unwrap_or_else(|e| panic!("{e}"));
    first_export(&daily(365), &provider).await;
    let log = sim.requests();
    let refused = log.iter().filter(|r| r.status == 429).count();
    eprintln!(
        "pagerduty: {} calls, {refused} answered 429 (bound {PD_MAX_429})",
        log.len()
    );
    assert_eq!(sim.overrides(&VendorScheduleId("VS".into())).len(), 365);
    assert!(refused > 0, "the bucket is tight enough to push back");
    assert!(refused <= PD_MAX_429, "{refused} 429s");
}
