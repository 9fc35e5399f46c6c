//! Why this bench exists: what a sync costs a vendor, in calls and in wall time, is the product's
//! promise of frugality (issue 9). Through the real HTTP adapters (Opsgenie, PagerDuty, and JSM
//! Operations, Opsgenie's successor, beside it) and their simulators at 20 ms per request, for a
//! year of daily shifts:
//!
//! - a first export (goal: faster in wall time than one write at a time),
//! - a re-sync with nothing changed (goal: at most 2 calls per destination, no write; on JSM, whose
//!   overrides come in pages of at most 50 with no window parameter, one call per page),
//! - a re-sync after one host swap (goal: at most 2 writes on Opsgenie, 3 on PagerDuty),
//! - in authoritative mode (DESIGN §8), a re-sync with nothing changed (goal: no write, as in
//!   protect mode: owning the whole horizon costs nothing while nobody changes it) and one after a
//!   person's override (goal: the one write that removes it),
//!
//! each beside the naive approach (delete every future override, re-create one per shift, one call
//! at a time) and the minimum number of writes the change needs. The table is printed once at the
//! start; criterion then times the three syncs per vendor.
//!
//! `cargo bench --bench sync_costs` (about two minutes: the naive runs take tens of seconds).

#![allow(missing_docs)] // criterion_group! generates an undocumented function

use std::time::{Duration, Instant};

use chrono::{DateTime, TimeDelta, TimeZone, Utc};
use criterion::{criterion_group, criterion_main, Criterion};
use oncall_sync::jsm::testkit::JsmSimulator;
use oncall_sync::opsgenie::testkit::OpsgenieSimulator;
use oncall_sync::pagerduty::testkit::PagerDutySimulator;
use oncall_sync::testkit::VendorSimulator;
use oncall_sync::{
    sync, ConnectionId, Destination, DestinationId, DestinationMode, Email, InMemoryStateStore,
    Member, NewOverride, Provider, RoleIndex, Schedule, ScheduleId, Shift, Span, SyncMode,
    SyncOptions, SyncTarget, VendorSchedule, VendorScheduleId, Window,
};

const LATENCY: Duration = Duration::from_millis(20);
const PEOPLE: [&str; 4] = ["ann", "bob", "cat", "dan"];
const DAYS: i64 = 365;

fn email(name: &str) -> Email {
    Email::parse(&format!("{name}@example.com")).unwrap_or_else(|e| panic!("{e}"))
}

fn now() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2025, 1, 1, 8, 0, 0)
        .single()
        .unwrap_or_default()
}

fn day(d: i64) -> DateTime<Utc> {
    now() + TimeDelta::hours(1) + TimeDelta::days(d)
}

/// A year of daily shifts from tomorrow, primary round-robin.
fn year() -> Schedule {
    let members = PEOPLE.iter().map(|n| Member::new(email(n), *n)).collect();
    let shifts = (0..DAYS)
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

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Vendor {
    Opsgenie,
    PagerDuty,
    Jsm,
}

/// One vendor account behind its simulator, with the destination exported there.
struct Account {
    sim: Box<dyn Simulated>,
    provider: Box<dyn Provider>,
    destination: Destination,
}

/// What the bench needs of a simulator besides [`VendorSimulator`]: its request count.
trait Simulated: VendorSimulator {
    fn calls_and_writes(&self) -> (usize, usize);
}

impl Simulated for OpsgenieSimulator {
    fn calls_and_writes(&self) -> (usize, usize) {
        let log = self.requests();
        (log.len(), log.iter().filter(|r| r.method != "GET").count())
    }
}

impl Simulated for JsmSimulator {
    fn calls_and_writes(&self) -> (usize, usize) {
        let log = self.requests();
        (log.len(), log.iter().filter(|r| r.method != "GET").count())
    }
}

impl Simulated for PagerDutySimulator {
    fn calls_and_writes(&self) -> (usize, usize) {
        let log = self.requests();
        (log.len(), log.iter().filter(|r| r.method != "GET").count())
    }
}

impl Account {
    async fn open(vendor: Vendor) -> Account {
        Account::open_in(vendor, DestinationMode::Protect).await
    }

    async fn open_in(vendor: Vendor, mode: DestinationMode) -> Account {
        let schedule = VendorSchedule {
            id: VendorScheduleId("VS".into()),
            name: "Bench".into(),
            zone: chrono_tz::UTC,
            members: PEOPLE.iter().map(|n| Member::new(email(n), *n)).collect(),
            rotations: Vec::new(),
        };
        let (sim, provider): (Box<dyn Simulated>, Box<dyn Provider>) = match vendor {
            Vendor::Opsgenie => {
                let sim = OpsgenieSimulator::start_at(now()).await;
                sim.set_latency(LATENCY);
                let provider = Box::new(sim.provider());
                (Box::new(sim), provider)
            }
            Vendor::PagerDuty => {
                let sim = PagerDutySimulator::start_at(now()).await;
                sim.set_latency(LATENCY);
                let provider = Box::new(sim.provider());
                (Box::new(sim), provider)
            }
            Vendor::Jsm => {
                let sim = JsmSimulator::start_at(now()).await;
                sim.set_latency(LATENCY);
                let provider = Box::new(sim.provider());
                (Box::new(sim), provider)
            }
        };
        sim.add_schedule(schedule);
        Account {
            sim,
            provider,
            destination: Destination {
                id: DestinationId("bench".into()),
                connection: ConnectionId("bench".into()),
                schedule: VendorScheduleId("VS".into()),
                role: RoleIndex::PRIMARY,
                mode,
            },
        }
    }

    /// Syncs `host` at `now`; returns the calls and writes it cost and the wall time.
    async fn sync(&self, host: &Schedule, store: &InMemoryStateStore, now: DateTime<Utc>) -> Cost {
        let before = self.sim.calls_and_writes();
        let started = Instant::now();
        let targets = [SyncTarget {
            destination: &self.destination,
            provider: self.provider.as_ref(),
        }];
        let options = SyncOptions {
            now,
            horizon: None,
            mode: SyncMode::Apply,
        };
        let report = sync(host, &targets, store, options)
            .await
            .unwrap_or_else(|e| panic!("{e}"));
        assert!(report.is_ok(), "{report}");
        Cost::since(before, self.sim.calls_and_writes(), started)
    }

    /// The naive approach: list, delete every future override, then create one per shift, one
    /// call at a time.
    async fn naive(&self, host: &Schedule) -> Cost {
        let before = self.sim.calls_and_writes();
        let started = Instant::now();
        let schedule = &self.destination.schedule;
        let window = Window::new(now(), day(DAYS + 1)).unwrap_or_else(|e| panic!("{e}"));
        let existing = self
            .provider
            .list_overrides(schedule, window)
            .await
            .unwrap_or_else(|e| panic!("{e}"));
        for o in existing.iter().filter(|o| o.span.start >= now()) {
            self.provider
                .delete_override(schedule, &o.id)
                .await
                .unwrap_or_else(|e| panic!("{e}"));
        }
        for shift in host.shifts() {
            let Some(who) = shift.assignee(RoleIndex::PRIMARY) else {
                continue;
            };
            let new = NewOverride {
                span: Span::new(shift.start, shift.end, who.clone()),
                id: None,
            };
            self.provider
                .create_overrides(schedule, &[new])
                .await
                .unwrap_or_else(|e| panic!("{e}"));
        }
        Cost::since(before, self.sim.calls_and_writes(), started)
    }
}

/// Calls, writes and wall time of one step.
#[derive(Clone, Copy, Debug)]
struct Cost {
    calls: usize,
    writes: usize,
    time: Duration,
}

impl Cost {
    fn since(before: (usize, usize), after: (usize, usize), started: Instant) -> Cost {
        Cost {
            calls: after.0 - before.0,
            writes: after.1 - before.1,
            time: started.elapsed(),
        }
    }
}

impl std::fmt::Display for Cost {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{:>4} calls {:>4} writes {:>8.2} s",
            self.calls,
            self.writes,
            self.time.as_secs_f64()
        )
    }
}

/// The host's rota after one swap of two shifts a week ahead (inside the exported stretch).
fn swapped(host: &Schedule) -> Schedule {
    let mut host = host.clone();
    host.swap_assignees(RoleIndex::PRIMARY, day(7), day(8))
        .unwrap_or_else(|e| panic!("{e}"));
    host
}

/// The fewest writes each step needs: a create per override on Opsgenie and JSM (no batch
/// endpoint), batches of 50 on PagerDuty; nothing for no change; a swap: two updates on Opsgenie
/// and JSM, two deletes and one create batch on PagerDuty.
fn minimum(vendor: Vendor) -> [usize; 3] {
    match vendor {
        Vendor::Opsgenie | Vendor::Jsm => [DAYS as usize, 0, 2],
        Vendor::PagerDuty => [(DAYS as usize).div_ceil(50), 0, 3],
    }
}

/// The most calls a re-sync with nothing changed may make: one read (PagerDuty: and its users), or
/// on JSM one page of 50 overrides per call.
fn no_change_calls(vendor: Vendor) -> usize {
    match vendor {
        Vendor::Opsgenie | Vendor::PagerDuty => 2,
        Vendor::Jsm => (DAYS as usize).div_ceil(oncall_sync::jsm::PAGE_SIZE as usize),
    }
}

/// Runs every step once and prints what it cost; checks the goals.
async fn table() {
    let host = year();
    println!(
        "\n{:<10} {:<24} {:<36} {:<36} min writes",
        "vendor", "step", "oncall-sync", "naive"
    );
    for vendor in [Vendor::Opsgenie, Vendor::PagerDuty, Vendor::Jsm] {
        let ours = Account::open(vendor).await;
        let store = InMemoryStateStore::new();
        let first = ours.sync(&host, &store, now()).await;
        let again = ours
            .sync(&host, &store, now() + TimeDelta::minutes(1))
            .await;
        let swap = ours
            .sync(&swapped(&host), &store, now() + TimeDelta::minutes(2))
            .await;

        let naive = Account::open(vendor).await;
        let naive_first = naive.naive(&host).await;
        let naive_again = naive.naive(&host).await;
        let naive_swap = naive.naive(&swapped(&host)).await;

        let min = minimum(vendor);
        let rows = [
            ("first export (a year)", first, naive_first, min[0]),
            ("re-sync, nothing changed", again, naive_again, min[1]),
            ("re-sync after one swap", swap, naive_swap, min[2]),
        ];
        for (step, ours, naive, min) in rows {
            println!(
                "{:<10} {:<24} {:<36} {:<36} {}",
                format!("{vendor:?}"),
                step,
                ours.to_string(),
                naive.to_string(),
                min
            );
        }
        assert!(
            first.time < naive_first.time,
            "first export beats one at a time"
        );
        assert!(
            again.calls <= no_change_calls(vendor) && again.writes == 0,
            "no change: {again}"
        );
        let swap_goal = match vendor {
            Vendor::Opsgenie | Vendor::Jsm => 2,
            Vendor::PagerDuty => 3,
        };
        assert!(swap.writes <= swap_goal, "one swap: {swap}");

        let owned = Account::open_in(vendor, DestinationMode::Authoritative).await;
        let store = InMemoryStateStore::new();
        owned.sync(&host, &store, now()).await;
        let again = owned
            .sync(&host, &store, now() + TimeDelta::minutes(1))
            .await;
        // A person covers two hours of a shift a week ahead: authoritative mode removes it.
        let cover = Span::new(
            day(7) + TimeDelta::hours(2),
            day(7) + TimeDelta::hours(4),
            email(PEOPLE[0]),
        );
        owned
            .sim
            .insert_override(&owned.destination.schedule, cover);
        let reverted = owned
            .sync(&host, &store, now() + TimeDelta::minutes(2))
            .await;
        for (step, cost, min) in [
            ("authoritative: no change", again, 0),
            ("authoritative: one cover", reverted, 1),
        ] {
            println!(
                "{:<10} {:<24} {:<36} {:<36} {}",
                format!("{vendor:?}"),
                step,
                cost.to_string(),
                "",
                min
            );
        }
        assert!(
            again.calls <= 2 && again.writes == 0,
            "authoritative, no change: {again}"
        );
        assert_eq!(reverted.writes, 1, "authoritative, one cover: {reverted}");
    }
    println!();
}

fn bench(c: &mut Criterion) {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap_or_else(|e| panic!("{e}"));
    rt.block_on(table());
    let host = year();
    for vendor in [Vendor::Opsgenie, Vendor::PagerDuty, Vendor::Jsm] {
        let mut group = c.benchmark_group(format!("{vendor:?}_year_of_daily_shifts"));
        group.sample_size(10);
        group.bench_function("first_export", |b| {
            b.iter_custom(|iters| {
                rt.block_on(async {
                    let mut total = Duration::ZERO;
                    for _ in 0..iters {
                        let account = Account::open(vendor).await;
                        let store = InMemoryStateStore::new();
                        total += account.sync(&host, &store, now()).await.time;
                    }
                    total
                })
            })
        });
        let (account, store) = rt.block_on(async {
            let account = Account::open(vendor).await;
            let store = InMemoryStateStore::new();
            account.sync(&host, &store, now()).await;
            (account, store)
        });
        let mut minute = 0;
        group.bench_function("resync_nothing_changed", |b| {
            b.iter_custom(|iters| {
                rt.block_on(async {
                    let mut total = Duration::ZERO;
                    for _ in 0..iters {
                        minute += 1;
                        let at = now() + TimeDelta::seconds(minute);
                        total += account.sync(&host, &store, at).await.time;
                    }
                    total
                })
            })
        });
        let other = swapped(&host);
        let mut is_swapped = false;
        group.bench_function("resync_after_one_swap", |b| {
            b.iter_custom(|iters| {
                rt.block_on(async {
                    let mut total = Duration::ZERO;
                    for _ in 0..iters {
                        minute += 1;
                        let at = now() + TimeDelta::seconds(minute);
                        // Swap there and back, so each iteration is one swap.
                        is_swapped = !is_swapped;
                        let rota = if is_swapped { &other } else { &host };
                        total += account.sync(rota, &store, at).await.time;
                    }
                    total
                })
            })
        });
        let (owned, owned_store) = rt.block_on(async {
            let account = Account::open_in(vendor, DestinationMode::Authoritative).await;
            let store = InMemoryStateStore::new();
            account.sync(&host, &store, now()).await;
            (account, store)
        });
        group.bench_function("authoritative_resync_nothing_changed", |b| {
            b.iter_custom(|iters| {
                rt.block_on(async {
                    let mut total = Duration::ZERO;
                    for _ in 0..iters {
                        minute += 1;
                        let at = now() + TimeDelta::seconds(minute);
                        let cost = owned.sync(&host, &owned_store, at).await;
                        assert_eq!(cost.writes, 0, "authoritative, no change: {cost}");
                        total += cost.time;
                    }
                    total
                })
            })
        });
        group.finish();
    }
}

criterion_group!(benches, bench);
criterion_main!(benches);
