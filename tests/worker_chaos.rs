//! The chaos test of issue 10, against a real PostgreSQL (`DATABASE_URL`) and both vendor
//! simulators: 4 workers, each with its own pool, sync 100 destinations (50 host schedules,
//! primary to Opsgenie and secondary to PagerDuty) through 10% injected vendor faults while they
//! are killed at random points (their tasks aborted mid-sync) and restarted, over rounds in which
//! the clock moves on and the host swaps shifts. It checks, from the simulators and the database
//! rather than the workers' word:
//!
//! - no duplicate override ever existed: every vendor schedule is polled throughout the run and
//!   after every round, and its overrides never overlap;
//! - no two workers ever held one destination at once: in each simulator's own request log (each
//!   worker's requests are tagged on the way by a forwarder of its own), a write to a vendor
//!   schedule always follows a request of the same worker to that schedule, so no worker's
//!   reads and writes interleave with another's;
//! - every mark only moved forward: a trigger in the test's schema records the mark of every
//!   version of every destination's state;
//! - in the end every destination's vendor overrides equal its desired spans.
#![cfg(feature = "postgres")]
#![allow(clippy::unwrap_used)] // tests: a panic is the failure report

mod postgres_support;
mod worker_support;

use std::collections::{BTreeMap, HashMap, HashSet};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use chrono::{DateTime, TimeDelta, Utc};
use oncall_sync::testkit::VendorSimulator;
use oncall_sync::worker::WorkerOptions;
use oncall_sync::{desired_spans, Span, StateStore, VendorScheduleId};
use postgres_support::{database_url, drop_schema, execute, unique_schema};
use worker_support::{day, proxy, Fleet, WorkerHandle, HORIZON_DAYS};

const SCHEDULES: usize = 50; // 100 destinations
const WORKERS: usize = 4;
const ROUNDS: i64 = 5; // the last one without kills
const ROUND_TIMEOUT: Duration = Duration::from_secs(15);

fn options() -> WorkerOptions {
    WorkerOptions {
        failure_backoff: Duration::from_millis(20),
        max_backoff: Duration::from_millis(200),
        lease: Duration::from_millis(1000),
        concurrency: 4,
        idle_poll: Duration::from_millis(20),
        shutdown_grace: Duration::from_secs(5),
        ..WorkerOptions::default()
    }
}

/// A deterministic pseudo-random sequence (SplitMix64).
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn four_workers_killed_at_random_keep_every_guarantee() {
    let Some(url) = database_url("worker_chaos") else {
        return;
    };
    let started = Instant::now();
    let fleet = Arc::new(Fleet::new(&url, &unique_schema("chaos"), SCHEDULES).await);
    install_mark_audit(&fleet).await;
    fleet.og.set_fault_rate(0.10, 7);
    fleet.pd.set_fault_rate(0.10, 11);

    let mut workers: Vec<(String, WorkerHandle)> = Vec::new();
    for slot in 0..WORKERS {
        let name = format!("w{slot}g0");
        workers.push((name.clone(), fleet.start_worker(&name, options()).await));
    }
    let overlaps = Arc::new(Mutex::new(Vec::new()));
    let watching = Arc::new(AtomicBool::new(true));
    let monitor = tokio::spawn(watch_for_overlaps(
        fleet.clone(),
        overlaps.clone(),
        watching.clone(),
    ));

    let mut rng = Rng(0x5eed);
    let mut kills = 0;
    for round in 0..ROUNDS {
        let now = day(0) - TimeDelta::hours(1) + TimeDelta::hours(20 * round);
        edit_rota(&fleet, round, now);
        fleet.set_now(now);
        fleet.all_due().await;
        let kill = round < ROUNDS - 1;
        kills += run_round(&fleet, &mut workers, &mut rng, now, kill).await;
        record_overlaps(&fleet, &overlaps);
        let found = overlaps.lock().unwrap().clone();
        assert!(
            found.is_empty(),
            "round {round}: overlapping overrides: {found:#?}"
        );
    }
    watching.store(false, Ordering::Relaxed);
    monitor.await.unwrap();
    fleet.og.clear_faults();
    fleet.pd.clear_faults();

    let found = overlaps.lock().unwrap().clone();
    assert!(found.is_empty(), "overlapping overrides: {found:#?}");
    assert!(kills >= 8, "only {kills} kills: the test did not test much");
    check_final_overrides(&fleet).await;
    check_marks_only_moved_forward(&fleet).await;
    let writers = check_one_holder_at_a_time(&fleet);
    assert!(
        writers.len() > WORKERS,
        "writes came from {writers:?}: killed workers' successors wrote too"
    );
    stop_all(&fleet, workers).await;
    eprintln!(
        "chaos: {} destinations, {ROUNDS} rounds, {kills} kills, {} writers, {} vendor requests, {:.1} s",
        SCHEDULES * 2,
        writers.len(),
        fleet.og.requests().len() + fleet.pd.requests().len(),
        started.elapsed().as_secs_f64()
    );
    drop_schema(&fleet.store).await;
}

/// From the second round on, a third of the schedules swap two shifts ahead (both roles): planned
/// changes in the protected region (Opsgenie: updates; PagerDuty: deletes and creates).
fn edit_rota(fleet: &Fleet, round: i64, now: DateTime<Utc>) {
    if round == 0 {
        return;
    }
    let first = (now - day(0)).num_days() + 2;
    for i in (0..SCHEDULES).filter(|i| (*i as i64 + round) % 3 == 0) {
        fleet.rota.swap(i, first, first + 1);
    }
}

/// Waits until every destination has synced at `now`, killing and restarting workers at random
/// meanwhile when `kill`. Returns the number of kills.
async fn run_round(
    fleet: &Fleet,
    workers: &mut [(String, WorkerHandle)],
    rng: &mut Rng,
    now: DateTime<Utc>,
    kill: bool,
) -> usize {
    let deadline = Instant::now() + ROUND_TIMEOUT;
    let total = (SCHEDULES * 2) as i64;
    let mut kills = 0;
    loop {
        let synced = fleet.synced_at(now).await;
        if synced == total {
            return kills;
        }
        assert!(
            Instant::now() < deadline,
            "only {synced} of {total} destinations synced at {now} within {ROUND_TIMEOUT:?}"
        );
        if kill && kills < 6 {
            let slot = rng.below(WORKERS as u64) as usize;
            let (name, handle) = &mut workers[slot];
            handle.task.abort();
            let generation: u32 = name.rsplit('g').next().unwrap().parse().unwrap();
            let successor = format!("w{slot}g{}", generation + 1);
            *handle = fleet.start_worker(&successor, options()).await;
            *name = successor;
            kills += 1;
        }
        tokio::time::sleep(Duration::from_millis(60 + rng.below(240))).await;
    }
}

fn vendor_schedules(fleet: &Fleet) -> Vec<(VendorScheduleId, bool)> {
    fleet
        .destinations()
        .into_iter()
        .map(|d| (d.schedule, d.connection.0 == "og"))
        .collect()
}

/// Overrides of one vendor schedule that overlap (or duplicate) one another.
fn overlapping(fleet: &Fleet, schedule: &VendorScheduleId, opsgenie: bool) -> Vec<String> {
    let mut held: Vec<Span> = if opsgenie {
        fleet.og.overrides(schedule)
    } else {
        fleet.pd.overrides(schedule)
    }
    .into_iter()
    .map(|o| o.span)
    .collect();
    held.sort_by_key(|s| (s.start, s.end));
    held.windows(2)
        .filter(|w| w[1].start < w[0].end)
        .map(|w| format!("{schedule}: {:?} overlaps {:?}", w[0], w[1]))
        .collect()
}

fn record_overlaps(fleet: &Fleet, found: &Mutex<Vec<String>>) {
    for (schedule, opsgenie) in vendor_schedules(fleet) {
        let o = overlapping(fleet, &schedule, opsgenie);
        if !o.is_empty() {
            found.lock().unwrap().extend(o);
        }
    }
}

async fn watch_for_overlaps(
    fleet: Arc<Fleet>,
    found: Arc<Mutex<Vec<String>>>,
    watching: Arc<AtomicBool>,
) {
    while watching.load(Ordering::Relaxed) {
        record_overlaps(&fleet, &found);
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
}

/// Every destination's overrides that have not ended are exactly its desired spans (clipped at
/// now), and its mark reaches the horizon's end.
async fn check_final_overrides(fleet: &Fleet) {
    let now = fleet.rota.now();
    for d in fleet.destinations() {
        let host = fleet
            .rota
            .schedule(&worker_support::schedule_id(index_of(&d.id.0)))
            .unwrap();
        let desired = desired_spans(
            &host.schedule,
            d.role,
            now,
            Some(TimeDelta::days(HORIZON_DAYS)),
        )
        .unwrap();
        let held = if d.connection.0 == "og" {
            fleet.og.overrides(&d.schedule)
        } else {
            fleet.pd.overrides(&d.schedule)
        };
        let mut held: Vec<Span> = held
            .into_iter()
            .filter_map(|o| o.span.clipped(now))
            .collect();
        held.sort_by_key(|s| s.start);
        assert_eq!(
            held,
            desired.spans(),
            "{}: vendor overrides differ from desired",
            d.id
        );
        let state = fleet.store.load(&d.id).await.unwrap().value;
        assert_eq!(
            state.high_water,
            Some(desired.horizon_end()),
            "{}: mark",
            d.id
        );
    }
}

fn index_of(destination: &str) -> usize {
    destination[1..4].parse().unwrap()
}

async fn install_mark_audit(fleet: &Fleet) {
    let s = fleet.store.schema();
    execute(
        &fleet.store,
        &format!(
            "CREATE TABLE {s}.mark_audit (destination text, version bigint, high_water text);
             CREATE FUNCTION {s}.audit_mark() RETURNS trigger LANGUAGE plpgsql AS $$
             BEGIN
                 IF NEW.state IS NOT NULL THEN
                     INSERT INTO {s}.mark_audit VALUES (NEW.destination, NEW.version, NEW.state->>'high_water');
                 END IF;
                 RETURN NEW;
             END $$;
             CREATE TRIGGER audit_mark_insert AFTER INSERT ON {s}.destination_state
                 FOR EACH ROW EXECUTE FUNCTION {s}.audit_mark();
             -- Every new version (a save or a claim); leases and due times change no version.
             CREATE TRIGGER audit_mark_update AFTER UPDATE ON {s}.destination_state
                 FOR EACH ROW WHEN (NEW.version <> OLD.version) EXECUTE FUNCTION {s}.audit_mark();"
        ),
    )
    .await;
}

/// The marks of every stored version, in version order, never go back.
async fn check_marks_only_moved_forward(fleet: &Fleet) {
    let client = fleet.store.pool().get().await.unwrap();
    let rows = client
        .query(
            &format!(
                "SELECT destination, version, high_water FROM {}.mark_audit ORDER BY destination, version",
                fleet.store.schema()
            ),
            &[],
        )
        .await
        .unwrap();
    assert!(rows.len() > 200, "the audit saw {} versions", rows.len());
    let mut last: HashMap<String, (i64, Option<DateTime<Utc>>)> = HashMap::new();
    for row in rows {
        let (d, version, mark): (String, i64, Option<String>) =
            (row.get(0), row.get(1), row.get(2));
        let mark = mark.map(|m| DateTime::parse_from_rfc3339(&m).unwrap().to_utc());
        if let Some((v, before)) = last.get(&d) {
            assert!(*v < version, "{d}: versions {v} then {version}");
            assert!(
                mark >= *before,
                "{d}: mark went back from {before:?} to {mark:?} at version {version}"
            );
        }
        last.insert(d, (version, mark));
    }
}

/// One request as the simulators logged it: who (its tag), method, vendor schedule.
struct Logged {
    who: Option<String>,
    write: bool,
    schedule: Option<String>,
}

fn logged(method: &str, path: &str, query: &[(String, String)], prefix: &str) -> Logged {
    Logged {
        who: query
            .iter()
            .find(|(k, _)| k == proxy::TAG)
            .map(|(_, v)| v.clone()),
        write: method != "GET",
        schedule: path
            .strip_prefix(prefix)
            .and_then(|rest| rest.split('/').next())
            .filter(|s| !s.is_empty())
            .map(str::to_owned),
    }
}

/// From each simulator's log: no two workers' runs on a vendor schedule interleave. Returns the
/// workers that wrote.
fn check_one_holder_at_a_time(fleet: &Fleet) -> HashSet<String> {
    let og: Vec<Logged> = fleet
        .og
        .requests()
        .iter()
        .map(|r| logged(&r.method, &r.path, &r.query, "/v2/schedules/"))
        .collect();
    let pd: Vec<Logged> = fleet
        .pd
        .requests()
        .iter()
        .map(|r| logged(&r.method, &r.path, &r.query, "/schedules/"))
        .collect();
    let mut writers = HashSet::new();
    for (vendor, log) in [("opsgenie", og), ("pagerduty", pd)] {
        match one_holder_at_a_time(&log) {
            Ok((writes, who)) => {
                assert!(writes > 300, "{vendor}: only {writes} writes");
                writers.extend(who);
            }
            Err(e) => panic!("{vendor}: {e}"),
        }
    }
    writers
}

/// A write to a vendor schedule must follow a request to that schedule by the same worker: a
/// worker's run starts with a read, so a second holder's requests would land between the first
/// one's. Returns the number of writes and who wrote, or the first violation.
fn one_holder_at_a_time(log: &[Logged]) -> Result<(usize, HashSet<String>), String> {
    let mut last: BTreeMap<&str, &str> = BTreeMap::new();
    let (mut writes, mut writers) = (0, HashSet::new());
    for (n, r) in log.iter().enumerate() {
        let who = r
            .who
            .as_deref()
            .ok_or_else(|| format!("request {n} came from no worker"))?;
        let Some(schedule) = r.schedule.as_deref() else {
            continue;
        };
        if r.write {
            writes += 1;
            writers.insert(who.to_owned());
            let before = last.get(schedule).copied();
            if before != Some(who) {
                return Err(format!(
                    "request {n}: {who} wrote to {schedule} right after {before:?} used it: two holders at once"
                ));
            }
        }
        last.insert(schedule, who);
    }
    Ok((writes, writers))
}

#[test]
fn the_log_check_catches_interleaved_holders_and_passes_handovers() {
    let r = |who: &str, write: bool, schedule: &str| Logged {
        who: Some(who.into()),
        write,
        schedule: Some(schedule.into()),
    };
    // w1 syncs A, then w2 takes it over (reading first); B is w2's meanwhile.
    let handover = [
        r("w1", false, "A"),
        r("w2", false, "B"),
        r("w1", true, "A"),
        r("w2", true, "B"),
        r("w2", false, "A"),
        r("w2", true, "A"),
    ];
    assert_eq!(one_holder_at_a_time(&handover).map(|(n, _)| n), Ok(3));
    // w1 and w2 both run A: w2 reads between w1's read and write.
    let both = [r("w1", false, "A"), r("w2", false, "A"), r("w1", true, "A")];
    assert!(one_holder_at_a_time(&both).is_err());
    // A write with no read of its own first (a stale holder writing after a handover).
    let stale = [
        r("w1", false, "A"),
        r("w2", false, "A"),
        r("w2", true, "A"),
        r("w1", true, "A"),
    ];
    assert!(one_holder_at_a_time(&stale).is_err());
    let untagged = [Logged {
        who: None,
        write: false,
        schedule: None,
    }];
    assert!(one_holder_at_a_time(&untagged).is_err());
}

/// Shuts every worker down gracefully: nothing stays held.
async fn stop_all(fleet: &Fleet, workers: Vec<(String, WorkerHandle)>) {
    for (_, handle) in workers {
        let _ = handle.stop.send(());
        handle.task.await.unwrap();
    }
    let client = fleet.store.pool().get().await.unwrap();
    let held: i64 = client
        .query_one(
            &format!(
                "SELECT count(*) FROM {} WHERE holder IS NOT NULL",
                fleet.store.table()
            ),
            &[],
        )
        .await
        .unwrap()
        .get(0);
    assert_eq!(held, 0, "a graceful shutdown leaves nothing held");
}
