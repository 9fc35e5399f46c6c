//! The chaos test of issues 10 and 16, against a real PostgreSQL (`DATABASE_URL`) and both vendor
//! simulators: 4 workers, each on a thread and a runtime of its own with its own pool, sync 100
//! destinations (50 host schedules, primary to Opsgenie and secondary to PagerDuty) through 10%
//! injected vendor faults, over rounds in which the clock moves on and the host swaps shifts,
//! while:
//!
//! - workers are killed at random points (their runtimes dropped mid-sync) and restarted;
//! - workers are paused (their whole runtime blocked, renewals too, right after a vendor call
//!   came back) for longer than their lease, and resumed: alive, past their lease, and another
//!   worker may hold their destinations by then;
//! - the database "restarts": the workers reach it through a forwarder that cuts every
//!   connection and refuses new ones for a while;
//! - the workers' clocks are skewed by -30 s to +30 s;
//! - the `oncall` CLI syncs one host schedule beside them each round (its own claims);
//! - the workers connect with `sslmode=verify-full` and the test cluster's throwaway CA, where
//!   `.ci/run` started it with TLS (`ONCALL_TEST_PG_TLS_DIR`).
//!
//! It checks, from the simulators and the database rather than the workers' word:
//!
//! - no duplicate override ever existed: the writes to each simulator go through one tap, one at
//!   a time, and after each write has landed (its answer is back) and before the next is sent,
//!   the overrides of the vendor schedule written to are checked for overlaps: every state the
//!   simulators ever held is checked (reads change nothing), and the count of writes checked
//!   equals the simulators' own count of writes;
//! - no two holders on a vendor schedule at once, as README promises it: every request is
//!   tagged on the way with its worker (or the CLI), its run, and its place in the order in
//!   which the requests left their senders; in that order, the requests each simulator logged
//!   to a vendor schedule come in one block per run, never interleaved with another run's and
//!   never resumed after another run's began. The order they landed in is not the one: a write
//!   waits in its forwarder for the tap (above), up to a second on a loaded machine, longer than
//!   the quarter-lease between a holder's deadline and the lease's end. The one exception is
//!   README's: a request already handed to the HTTP client when its worker paused past its lease
//!   (a call of its run was under way when the pause began) may leave after the pause; such a
//!   run starts no call after the pause (checked too);
//! - some kills and pauses hit a worker while it held leases;
//! - every mark only moved forward: a trigger in the test's schema records the mark of every
//!   version of every destination's state;
//! - nothing is lost: every round ends with every destination in step, and in the end every
//!   destination's vendor overrides equal its desired spans.
#![cfg(feature = "postgres")]
#![allow(clippy::unwrap_used)] // tests: a panic is the failure report

mod common;
mod postgres_support;
mod worker_support;

use std::collections::{BTreeMap, HashMap, HashSet};
use std::net::ToSocketAddrs;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use chrono::{DateTime, TimeDelta, Utc};
use oncall_sync::postgres::tokio_postgres;
use oncall_sync::testkit::VendorSimulator;
use oncall_sync::worker::WorkerOptions;
use oncall_sync::{desired_spans, Override, Span, StateStore, VendorScheduleId};
use postgres_support::{database_url, drop_schema, execute, tls_dir, unique_schema};
use worker_support::pg_proxy::PgProxy;
use worker_support::{day, proxy, Faults, Fleet, ThreadWorker, HORIZON_DAYS};

const SCHEDULES: usize = 50; // 100 destinations
const WORKERS: usize = 4;
const ROUNDS: i64 = 5; // the last one without faults
const ROUND_TIMEOUT: Duration = Duration::from_secs(30);
const LEASE: Duration = Duration::from_millis(1000);

fn options() -> WorkerOptions {
    WorkerOptions {
        failure_backoff: Duration::from_millis(20),
        max_backoff: Duration::from_millis(200),
        lease: LEASE,
        concurrency: 4,
        idle_poll: Duration::from_millis(20),
        shutdown_grace: Duration::from_secs(5),
        ..WorkerOptions::default()
    }
}

/// The skew of each worker slot's clock.
fn skew(slot: usize) -> TimeDelta {
    TimeDelta::seconds([30, -30, 0, 15][slot % 4])
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
async fn four_workers_killed_paused_skewed_beside_the_cli_and_a_restarting_database_keep_every_guarantee(
) {
    let Some(url) = database_url("worker_chaos") else {
        return;
    };
    let started = Instant::now();
    let mut fleet = Fleet::new(&url, &unique_schema("chaos"), SCHEDULES).await;
    let overlaps = Arc::new(Mutex::new(Vec::new()));
    let taps = (
        check_every_write(&fleet, &overlaps, true),
        check_every_write(&fleet, &overlaps, false),
    );
    fleet.audit(taps.0.clone(), taps.1.clone());
    let fleet = Arc::new(fleet);
    install_mark_audit(&fleet).await;
    fleet.og.set_fault_rate(0.10, 7);
    fleet.pd.set_fault_rate(0.10, 11);
    let database = Database::start(&url);

    let mut workers: Vec<(String, ThreadWorker)> = (0..WORKERS)
        .map(|slot| {
            let name = format!("w{slot}g0");
            let worker = database.start_worker(&fleet, &name, slot);
            (name, worker)
        })
        .collect();
    let cli = Cli::new(&fleet);

    let mut rng = Rng(0x5eed);
    let mut chaos = Chaos::default();
    for round in 0..ROUNDS {
        let now = day(0) - TimeDelta::hours(1) + TimeDelta::hours(20 * round);
        edit_rota(&fleet, round, now);
        fleet.set_now(now);
        fleet.all_due().await;
        let faults = round < ROUNDS - 1;
        let beside = (round > 0 && faults).then(|| cli.sync(&fleet, round, now));
        run_round(
            &fleet,
            &database,
            &mut workers,
            &mut rng,
            now,
            faults,
            &mut chaos,
        )
        .await;
        if let Some(run) = beside {
            chaos.cli_runs.push(cli.wait(run).await);
        }
        if round == 0 {
            database.check_tls(&fleet).await;
        }
        let found = overlaps.lock().unwrap().clone();
        assert!(
            found.is_empty(),
            "round {round}: overlapping overrides: {found:#?}"
        );
    }
    fleet.og.clear_faults();
    fleet.pd.clear_faults();
    for (_, worker) in &workers {
        chaos.note_faults(&worker.faults);
    }

    // Every write was checked, and none ever left two overrides overlapping.
    assert_eq!(taps.0.writes(), fleet.og.write_calls() as u64, "opsgenie");
    assert_eq!(taps.1.writes(), fleet.pd.write_calls() as u64, "pagerduty");
    let found = overlaps.lock().unwrap().clone();
    assert!(found.is_empty(), "overlapping overrides: {found:#?}");
    chaos.check(&database);
    check_final_overrides(&fleet).await;
    check_marks_only_moved_forward(&fleet).await;
    assert!(
        chaos.started_after_pause.is_empty(),
        "runs stalled past their lease started calls: {:#?}",
        chaos.started_after_pause
    );
    let (writers, late) = check_one_holder_at_a_time(&fleet, &chaos.stalled);
    assert!(
        writers.len() > WORKERS,
        "writes came from {writers:?}: killed workers' successors wrote too"
    );
    stop_all(&fleet, workers).await;
    eprintln!(
        "chaos: {} destinations, {ROUNDS} rounds, {} kills ({} holding leases), {} pauses past \
         the lease ({} asked of workers holding leases), {} database restarts, CLI exits {:?}, \
         TLS {}, {} writers, {} writes checked, {} vendor requests ({} left a worker after a \
         pause they were handed to its HTTP client before), {:.1} s",
        SCHEDULES * 2,
        chaos.kills,
        chaos.kills_holding,
        chaos.pauses,
        chaos.pauses_asked,
        database.proxy.restarts(),
        chaos.cli_runs,
        database.tls,
        writers.len(),
        taps.0.writes() + taps.1.writes(),
        fleet.og.requests().len() + fleet.pd.requests().len(),
        late,
        started.elapsed().as_secs_f64()
    );
    drop_schema(&fleet.store).await;
}

/// The workers' way to the database: through a forwarder that can restart, over TLS verified
/// against the test cluster's CA where there is one.
struct Database {
    proxy: PgProxy,
    url: String,
    tls: bool,
}

impl Database {
    fn start(url: &str) -> Database {
        let config: tokio_postgres::Config = url.parse().unwrap();
        let host = match config.get_hosts().first() {
            Some(tokio_postgres::config::Host::Tcp(h)) => h.clone(),
            _ => "127.0.0.1".to_owned(),
        };
        let port = config.get_ports().first().copied().unwrap_or(5432);
        let upstream = (host.as_str(), port)
            .to_socket_addrs()
            .unwrap()
            .next()
            .unwrap();
        let proxy = PgProxy::start(upstream);
        let quote = |v: &str| format!("'{}'", v.replace('\\', "\\\\").replace('\'', "\\'"));
        let mut proxied = format!(
            "host=127.0.0.1 port={} user={} dbname={} connect_timeout=5",
            proxy.port,
            quote(config.get_user().unwrap_or("postgres")),
            quote(config.get_dbname().unwrap_or("postgres")),
        );
        if let Some(password) = config.get_password() {
            proxied.push_str(&format!(
                " password={}",
                quote(&String::from_utf8_lossy(password))
            ));
        }
        // The cluster's certificate names 127.0.0.1: through the forwarder it still does.
        let tls = tls_dir("worker_chaos (its TLS part)");
        if let Some(dir) = &tls {
            proxied.push_str(&format!(
                " sslmode=verify-full sslrootcert={}",
                quote(dir.join("ca.crt").to_str().unwrap())
            ));
        }
        Database {
            proxy,
            url: proxied,
            tls: tls.is_some(),
        }
    }

    fn start_worker(&self, fleet: &Fleet, name: &str, slot: usize) -> ThreadWorker {
        fleet.start_worker_thread(name, options(), &self.url, Faults::with_skew(skew(slot)))
    }

    /// With TLS: every connection of the workers' (and the test's) runs over it.
    async fn check_tls(&self, fleet: &Fleet) {
        if !self.tls {
            return;
        }
        let client = fleet.store.pool().get().await.unwrap();
        let row = client
            .query_one(
                "SELECT count(*) FILTER (WHERE s.ssl), count(*) FILTER (WHERE NOT s.ssl) \
                 FROM pg_stat_activity a JOIN pg_stat_ssl s USING (pid) \
                 WHERE a.application_name = 'oncall-sync' AND a.datname = current_database()",
                &[],
            )
            .await
            .unwrap();
        let (over_tls, plain): (i64, i64) = (row.get(0), row.get(1));
        assert!(
            over_tls >= WORKERS as i64,
            "{over_tls} connections over TLS"
        );
        assert_eq!(plain, 0, "a connection without TLS");
    }
}

/// What the rounds did to the workers.
#[derive(Default)]
struct Chaos {
    kills: usize,
    kills_holding: usize,
    /// Pauses, of every worker.
    pauses: u64,
    /// Every worker's (run, vendor schedule) pairs that had a call under way when the worker
    /// paused, and how many requests had left their senders when the pause ended.
    stalled: HashMap<(u64, String), u64>,
    /// Calls that runs stalled in a pause started after it.
    started_after_pause: Vec<String>,
    pauses_asked: usize,
    cli_runs: Vec<i32>,
}

impl Chaos {
    /// What a worker's faults saw, read once it is killed, or at the end.
    fn note_faults(&mut self, faults: &worker_support::Faults) {
        self.pauses += faults.pauses();
        self.stalled.extend(faults.stalled());
        self.started_after_pause
            .extend(faults.started_after_pause());
    }

    fn check(&self, database: &Database) {
        assert!(
            self.kills >= 6,
            "only {} kills: the test did not test much",
            self.kills
        );
        assert!(
            self.kills_holding * 2 >= self.kills,
            "only {} of {} kills hit a worker holding leases",
            self.kills_holding,
            self.kills
        );
        assert!(self.pauses >= 3, "only {} pauses happened", self.pauses);
        assert!(
            database.proxy.restarts() >= 3,
            "only {} restarts",
            database.proxy.restarts()
        );
        assert!(
            !self.cli_runs.is_empty() && self.cli_runs.iter().all(|code| *code == 0 || *code == 1),
            "the CLI beside the workers: exits {:?} (0 in step, 1 a destination held or failed)",
            self.cli_runs
        );
    }
}

/// The `oncall` CLI syncing host schedule s000 beside the workers, through forwarders tagged
/// `cli` (its requests are checked and logged like the workers').
struct Cli {
    og: String,
    pd: String,
    dir: std::path::PathBuf,
}

impl Cli {
    fn new(fleet: &Fleet) -> Cli {
        let (og, pd) = fleet.tagged_uris("cli");
        let dir = std::env::temp_dir().join(unique_schema("chaos_cli"));
        std::fs::create_dir_all(&dir).unwrap();
        Cli { og, pd, dir }
    }

    /// Starts `oncall sync` of s000 as the host's rota has it now.
    fn sync(&self, fleet: &Fleet, round: i64, now: DateTime<Utc>) -> std::process::Child {
        use oncall_sync::opsgenie::testkit::READ_WRITE_KEY;
        use oncall_sync::pagerduty::testkit::PagerDutySimulator;
        let host = fleet
            .rota
            .schedule(&worker_support::schedule_id(0))
            .unwrap();
        let shifts: Vec<serde_json::Value> = host
            .schedule
            .shifts()
            .iter()
            .map(|s| {
                serde_json::json!({"start": s.start.to_rfc3339(), "end": s.end.to_rfc3339(),
                    "assignees": s.assignees.iter().map(|a| a.as_ref().map(|e| e.as_str())).collect::<Vec<_>>()})
            })
            .collect();
        let run = format!("run-cli{round}");
        let config = serde_json::json!({
            "connections": [
                {"id": "og", "provider": "opsgenie", "api_key_env": "CHAOS_OG_KEY", "base_url": format!("{}/{run}", self.og)},
                {"id": "pd", "provider": "pagerduty", "api_key_env": "CHAOS_PD_KEY", "base_url": format!("{}/{run}", self.pd)}],
            "schedule": {"id": "s000", "time_zone": "UTC", "roles": ["primary", "secondary"],
                         "shifts": shifts, "horizon_days": HORIZON_DAYS},
            "destinations": [
                {"id": "s000-og", "connection": "og", "schedule_id": "og-000", "role": "primary"},
                {"id": "s000-pd", "connection": "pd", "schedule_id": "PD000", "role": "secondary"}]
        });
        let file = self.dir.join(format!("round-{round}.json"));
        std::fs::write(&file, config.to_string()).unwrap();
        let joiner = if fleet.url.contains('?') { '&' } else { '?' };
        let state = format!(
            "{}{joiner}oncall_schema={}",
            fleet.url,
            fleet.store.schema()
        );
        std::process::Command::new(common::example_binary("oncall"))
            .args([
                "sync",
                "--config",
                file.to_str().unwrap(),
                "--state",
                &state,
            ])
            .args(["--now", &now.to_rfc3339()])
            .env("CHAOS_OG_KEY", READ_WRITE_KEY)
            .env("CHAOS_PD_KEY", PagerDutySimulator::READ_WRITE_KEY)
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .unwrap()
    }

    /// Its exit code, once it ended (a minute at most).
    async fn wait(&self, mut child: std::process::Child) -> i32 {
        for _ in 0..600 {
            if let Some(status) = child.try_wait().unwrap() {
                return status.code().unwrap_or(-1);
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        let _ = child.kill();
        panic!("the CLI did not end within a minute");
    }
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

/// Waits until every destination has synced at `now` (by the clocks of the workers, up to their
/// skew), doing harm meanwhile when `faults` (eight things a round, one every 60-300 ms, in a
/// fixed order): kill a worker (and start its successor), pause one past its lease, or restart
/// the database.
/// Kills and pauses pick a worker holding leases where one does within half a second.
async fn run_round(
    fleet: &Fleet,
    database: &Database,
    workers: &mut [(String, ThreadWorker)],
    rng: &mut Rng,
    now: DateTime<Utc>,
    faults: bool,
    chaos: &mut Chaos,
) {
    let deadline = Instant::now() + ROUND_TIMEOUT;
    let total = (SCHEDULES * 2) as i64;
    let mut this_round = 0;
    loop {
        let synced = fleet.synced_near(now, TimeDelta::seconds(31)).await;
        if synced == total {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "only {synced} of {total} destinations synced at {now} within {ROUND_TIMEOUT:?}"
        );
        // The same harms every round, in this order (which worker, how long: drawn).
        const HARMS: [Harm; 8] = [
            Harm::Restart,
            Harm::Pause,
            Harm::Kill,
            Harm::Pause,
            Harm::Kill,
            Harm::Restart,
            Harm::Pause,
            Harm::Kill,
        ];
        if faults && this_round < HARMS.len() {
            match HARMS[this_round] {
                Harm::Kill => kill(fleet, database, workers, rng, chaos).await,
                Harm::Pause => {
                    let holding = holding_slots(fleet, workers).await;
                    if !holding.is_empty() {
                        chaos.pauses_asked += 1;
                    }
                    let slot = pick(&holding, rng);
                    let pause = LEASE + Duration::from_millis(500 + rng.below(1000));
                    workers[slot].1.faults.pause_next(pause);
                }
                Harm::Restart => database
                    .proxy
                    .restart(Duration::from_millis(200 + rng.below(600))),
            }
            this_round += 1;
        }
        tokio::time::sleep(Duration::from_millis(60 + rng.below(240))).await;
    }
}

/// What a round does to the workers.
#[derive(Clone, Copy)]
enum Harm {
    Kill,
    Pause,
    Restart,
}

fn pick(holding: &[usize], rng: &mut Rng) -> usize {
    if holding.is_empty() {
        rng.below(WORKERS as u64) as usize
    } else {
        holding[rng.below(holding.len() as u64) as usize]
    }
}

/// Kills a worker (a holding one where one holds leases), and starts its successor.
async fn kill(
    fleet: &Fleet,
    database: &Database,
    workers: &mut [(String, ThreadWorker)],
    rng: &mut Rng,
    chaos: &mut Chaos,
) {
    let slot = pick(&holding_slots(fleet, workers).await, rng);
    let generation: u32 = workers[slot].0.rsplit('g').next().unwrap().parse().unwrap();
    let successor = format!("w{slot}g{}", generation + 1);
    let new = database.start_worker(fleet, &successor, slot);
    let (name, old) = std::mem::replace(&mut workers[slot], (successor, new));
    let _ = old.kill.send(());
    let paused = old.faults.clone();
    tokio::task::spawn_blocking(move || old.thread.join().unwrap())
        .await
        .unwrap();
    chaos.note_faults(&paused);
    // Killed, it released nothing: what it held is still its own until the leases run out.
    if live_leases(fleet).await.contains_key(name.as_str()) {
        chaos.kills_holding += 1;
    }
    chaos.kills += 1;
}

/// The workers holding leases, looked for every few milliseconds for up to half a second (late in
/// a round, only the retries of failed destinations hold leases, briefly).
async fn holding_slots(fleet: &Fleet, workers: &[(String, ThreadWorker)]) -> Vec<usize> {
    let until = Instant::now() + Duration::from_millis(500);
    loop {
        let holders = live_leases(fleet).await;
        let holding: Vec<usize> = (0..WORKERS)
            .filter(|slot| holders.contains_key(&workers[*slot].0))
            .collect();
        if !holding.is_empty() || Instant::now() >= until {
            return holding;
        }
        tokio::time::sleep(Duration::from_millis(3)).await;
    }
}

/// How many live leases each holder has.
async fn live_leases(fleet: &Fleet) -> HashMap<String, i64> {
    let client = fleet.store.pool().get().await.unwrap();
    client
        .query(
            &format!(
                "SELECT holder, count(*) FROM \"{}\".leases WHERE expires_at > now() \
                 GROUP BY holder",
                fleet.store.schema()
            ),
            &[],
        )
        .await
        .unwrap()
        .iter()
        .map(|r| (r.get(0), r.get(1)))
        .collect()
}

/// The tap of one simulator (Opsgenie's or PagerDuty's): after each write, the overrides of the
/// vendor schedule it wrote to are checked for overlaps (each one found is recorded in `found`,
/// with the tagged request line of the write after which it was found).
fn check_every_write(
    fleet: &Fleet,
    found: &Arc<Mutex<Vec<String>>>,
    opsgenie: bool,
) -> Arc<proxy::WriteTap> {
    let found = found.clone();
    let (og, pd) = (fleet.og.clone(), fleet.pd.clone());
    proxy::WriteTap::new(move |path, sent| {
        let prefix = if opsgenie {
            "/v2/schedules/"
        } else {
            "/schedules/"
        };
        let Some(schedule) = schedule_in(path, prefix) else {
            found
                .lock()
                .unwrap()
                .push(format!("a write to no schedule: {path}"));
            return;
        };
        let schedule = VendorScheduleId(schedule);
        let held = if opsgenie {
            og.overrides(&schedule)
        } else {
            pd.overrides(&schedule)
        };
        let overlaps = overlapping(&schedule, held);
        if !overlaps.is_empty() {
            found
                .lock()
                .unwrap()
                .extend(overlaps.into_iter().map(|o| format!("{o}, after {sent}")));
        }
    })
}

/// The vendor schedule of a path under `prefix` (`/v2/schedules/og-001/overrides` → `og-001`).
fn schedule_in(path: &str, prefix: &str) -> Option<String> {
    path.strip_prefix(prefix)
        .and_then(|rest| rest.split('/').next())
        .filter(|s| !s.is_empty())
        .map(str::to_owned)
}

/// Overrides of one vendor schedule that overlap (or duplicate) one another.
fn overlapping(schedule: &VendorScheduleId, held: Vec<Override>) -> Vec<String> {
    let mut held: Vec<Span> = held.into_iter().map(|o| o.span).collect();
    held.sort_by_key(|s| (s.start, s.end));
    held.windows(2)
        .filter(|w| w[1].start < w[0].end)
        .map(|w| format!("{schedule}: {:?} overlaps {:?}", w[0], w[1]))
        .collect()
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

/// One request as the simulators logged it: who and which of its runs (its tags), when it left
/// its sender (its number in that order), method, vendor schedule, and whether it left its
/// worker only after a pause it was handed to the HTTP client before.
#[derive(Clone)]
struct Logged {
    who: Option<String>,
    run: Option<String>,
    sent: Option<u64>,
    write: bool,
    schedule: Option<String>,
    late: bool,
    /// Method, path and status, for the failure report.
    what: String,
}

fn logged(
    method: &str,
    path: &str,
    query: &[(String, String)],
    prefix: &str,
    status: Option<u16>,
    stalled: &HashMap<(u64, String), u64>,
) -> Logged {
    let tag = |name: &str| {
        query
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.clone())
    };
    let (run, sent, schedule) = (
        tag(proxy::RUN_TAG),
        tag(proxy::SENT_TAG).and_then(|n| n.parse::<u64>().ok()),
        schedule_in(path, prefix),
    );
    let stalled_in = run
        .as_deref()
        .and_then(|r| r.parse::<u64>().ok())
        .zip(schedule.clone())
        .and_then(|call| stalled.get(&call));
    Logged {
        who: tag(proxy::TAG),
        late: matches!((stalled_in, sent), (Some(resumed), Some(n)) if n > *resumed),
        run,
        sent,
        write: method != "GET",
        schedule,
        what: format!("{method} {path} -> {status:?}"),
    }
}

/// From each simulator's log: no two workers' runs on a vendor schedule interleave, in the order
/// the requests left their senders, but for requests that left a worker after a pause they
/// were handed to its HTTP client before (`stalled`: see [`Chaos::stalled`]). Returns the
/// workers that wrote and how many requests were such late ones.
fn check_one_holder_at_a_time(
    fleet: &Fleet,
    stalled: &HashMap<(u64, String), u64>,
) -> (HashSet<String>, usize) {
    let og: Vec<Logged> = fleet
        .og
        .requests()
        .iter()
        .map(|r| {
            logged(
                &r.method,
                &r.path,
                &r.query,
                "/v2/schedules/",
                r.status,
                stalled,
            )
        })
        .collect();
    let pd: Vec<Logged> = fleet
        .pd
        .requests()
        .iter()
        .map(|r| {
            logged(
                &r.method,
                &r.path,
                &r.query,
                "/schedules/",
                Some(r.status),
                stalled,
            )
        })
        .collect();
    let mut writers = HashSet::new();
    let late = og.iter().chain(&pd).filter(|r| r.late).count();
    for (vendor, log) in [("opsgenie", og), ("pagerduty", pd)] {
        match one_holder_at_a_time(&log) {
            Ok((writes, who)) => {
                assert!(writes > 300, "{vendor}: only {writes} writes");
                writers.extend(who);
            }
            Err(e) => panic!("{vendor}: {e}"),
        }
    }
    (writers, late)
}

/// In the order the requests left their senders, the requests to each vendor schedule come in
/// blocks, one per run (one claim of the destination, one lease): another run's request never
/// leaves between two of a run's requests to that schedule, so a run's block never resumes once
/// another run's has begun. Two holders at once would interleave; a holder sending after its
/// destination was taken over would resume its block. Late requests (handed to the HTTP client
/// before a pause of their worker, gone out after it) are left out. Returns the number of
/// writes and who wrote, or the first violation.
fn one_holder_at_a_time(log: &[Logged]) -> Result<(usize, HashSet<String>), String> {
    let mut order = Vec::with_capacity(log.len());
    for (n, r) in log.iter().enumerate() {
        let sent = r
            .sent
            .ok_or_else(|| format!("request {n} was not numbered by a forwarder"))?;
        order.push((sent, n));
    }
    order.sort_unstable();
    // Per vendor schedule: the run whose block is going on, and the runs whose blocks ended.
    let mut current: BTreeMap<&str, (&str, &str)> = BTreeMap::new();
    let mut ended: HashSet<(&str, &str, &str)> = HashSet::new();
    let (mut writes, mut writers) = (0, HashSet::new());
    for (n, r) in order.into_iter().map(|(_, n)| (n, &log[n])) {
        let who = r
            .who
            .as_deref()
            .ok_or_else(|| format!("request {n} came from no worker"))?;
        let Some(schedule) = r.schedule.as_deref() else {
            continue;
        };
        let run = r
            .run
            .as_deref()
            .ok_or_else(|| format!("request {n} (from {who}) names no run"))?;
        if r.write {
            writes += 1;
            writers.insert(who.to_owned());
        }
        if r.late {
            continue;
        }
        match current.insert(schedule, (who, run)) {
            Some(before) if before == (who, run) => {}
            Some((was, was_run)) => {
                ended.insert((schedule, was, was_run));
                if ended.contains(&(schedule, who, run)) {
                    return Err(format!(
                        "request {n}: {who} (run {run}) used {schedule} again after {was} (run \
                         {was_run}) had: two holders at once; its requests:\n{}",
                        requests_to(log, schedule, run, n)
                    ));
                }
            }
            None => {}
        }
    }
    Ok((writes, writers))
}

/// The requests to `schedule`, in the order they left their senders, from run `run`'s first up
/// to request `last` (numbered as the simulator logged them), one a line.
fn requests_to(log: &[Logged], schedule: &str, run: &str, last: usize) -> String {
    let to_it: Vec<(usize, &Logged)> = log
        .iter()
        .enumerate()
        .filter(|(_, r)| r.schedule.as_deref() == Some(schedule))
        .collect();
    let first = to_it
        .iter()
        .filter(|(_, r)| r.run.as_deref() == Some(run))
        .filter_map(|(_, r)| r.sent)
        .min();
    let until = log[last].sent;
    let mut lines: Vec<(Option<u64>, String)> = to_it
        .into_iter()
        .filter(|(_, r)| r.sent >= first && r.sent <= until)
        .map(|(n, r)| {
            let line = format!(
                "  sent {:?}, logged {n}: {} run {}: {}{}",
                r.sent,
                r.who.as_deref().unwrap_or("?"),
                r.run.as_deref().unwrap_or("?"),
                r.what,
                if r.late { " (late)" } else { "" }
            );
            (r.sent, line)
        })
        .collect();
    lines.sort();
    lines
        .into_iter()
        .map(|(_, l)| l)
        .collect::<Vec<_>>()
        .join("\n")
}

#[test]
fn the_log_check_catches_interleaved_holders_and_passes_handovers() {
    let r = |who: &str, run: &str, write: bool, schedule: &str| Logged {
        who: Some(who.into()),
        run: Some(run.into()),
        write,
        schedule: Some(schedule.into()),
        sent: None,
        late: false,
        what: String::new(),
    };
    // w1 syncs A (run 1), then w2 takes it over (run 2); B is w2's meanwhile (run 3); then w1
    // claims A again (a new run, 4).
    let handover = [
        r("w1", "1", false, "A"),
        r("w2", "3", false, "B"),
        r("w1", "1", true, "A"),
        r("w2", "3", true, "B"),
        r("w2", "2", false, "A"),
        r("w2", "2", true, "A"),
        r("w1", "4", false, "A"),
        r("w1", "4", true, "A"),
    ];
    assert_eq!(
        one_holder_at_a_time(&sent_in_order(handover.clone())).map(|(n, _)| n),
        Ok(4)
    );
    // w1 and w2 both run A: w2 reads between w1's read and write.
    let both = [
        r("w1", "1", false, "A"),
        r("w2", "2", false, "A"),
        r("w1", "1", true, "A"),
    ];
    assert!(one_holder_at_a_time(&sent_in_order(both.clone())).is_err());
    // w1 reads, w2 reads and writes, w1 reads again and writes, all in w1's one run: w1 held A
    // all along while w2 synced it.
    let reread = [
        r("w1", "1", false, "A"),
        r("w2", "2", false, "A"),
        r("w2", "2", true, "A"),
        r("w1", "1", false, "A"),
        r("w1", "1", true, "A"),
    ];
    assert!(one_holder_at_a_time(&sent_in_order(reread)).is_err());
    // A stale holder writing after a handover.
    let stale = [
        r("w1", "1", false, "A"),
        r("w2", "2", false, "A"),
        r("w2", "2", true, "A"),
        r("w1", "1", true, "A"),
    ];
    assert!(one_holder_at_a_time(&sent_in_order(stale)).is_err());
    // Landed out of order: w1's write waited in the network (the forwarder's tap) and landed
    // after w2's read, but it left w1 before w2's run began. Sent after it began, it fails;
    // unless it was handed to w1's HTTP client before w1 paused, and left after the pause.
    let mut delayed = sent_in_order(both);
    delayed[2].sent = Some(0);
    assert_eq!(one_holder_at_a_time(&delayed).map(|(n, _)| n), Ok(1));
    delayed[2].sent = Some(5);
    assert!(one_holder_at_a_time(&delayed).is_err());
    delayed[2].late = true;
    assert_eq!(one_holder_at_a_time(&delayed).map(|(n, _)| n), Ok(1));
    // A request the forwarders did not number.
    let mut unnumbered = sent_in_order(handover);
    unnumbered[3].sent = None;
    assert!(one_holder_at_a_time(&unnumbered).is_err());
    let untagged = [Logged {
        who: None,
        run: None,
        write: false,
        schedule: None,
        sent: None,
        late: false,
        what: String::new(),
    }];
    assert!(one_holder_at_a_time(&sent_in_order(untagged)).is_err());
    let no_run = [Logged {
        who: Some("w1".into()),
        run: None,
        write: false,
        schedule: Some("A".into()),
        sent: None,
        late: false,
        what: String::new(),
    }];
    assert!(one_holder_at_a_time(&sent_in_order(no_run)).is_err());
}

/// `log`, numbered in the order given (as if each request landed as it left).
fn sent_in_order<const N: usize>(log: [Logged; N]) -> Vec<Logged> {
    log.into_iter()
        .zip(1..)
        .map(|(r, n)| Logged { sent: Some(n), ..r })
        .collect()
}

/// The tap sees the vendor schedule after every write, one write at a time: even a state that
/// lasts only from one write to the next (two overrides, between a create and a delete sent at
/// once) is checked, where polling could miss it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_write_tap_checks_the_state_after_every_write() {
    use oncall_sync::opsgenie::testkit::OpsgenieSimulator;
    use oncall_sync::{Member, NewOverride, Provider, VendorSchedule};

    let now = day(0);
    let og = Arc::new(OpsgenieSimulator::start_at(now).await);
    let people = worker_support::people();
    let schedule = VendorScheduleId("og-tap".into());
    og.add_schedule(VendorSchedule {
        id: schedule.clone(),
        name: "tap".into(),
        zone: chrono_tz::UTC,
        members: people
            .iter()
            .map(|e| Member::new(e.clone(), e.as_str()))
            .collect(),
        rotations: vec![],
    });
    let seen = Arc::new(Mutex::new(Vec::new()));
    let tap = {
        let (og, seen, schedule) = (og.clone(), seen.clone(), schedule.clone());
        proxy::WriteTap::new(move |path, _| {
            assert_eq!(
                schedule_in(path, "/v2/schedules/").as_deref(),
                Some("og-tap")
            );
            seen.lock().unwrap().push(og.overrides(&schedule).len());
        })
    };
    let provider = og
        .provider_builder()
        .with_base_url(proxy::start(&og.uri(), "tapped", Some(tap.clone())))
        .build()
        .unwrap();
    let span = |d: i64, who: usize| Span::new(day(d), day(d + 1), people[who].clone());
    let created = provider
        .create_overrides(
            &schedule,
            &[
                NewOverride {
                    span: span(1, 0),
                    id: None,
                },
                NewOverride {
                    span: span(2, 1),
                    id: None,
                },
            ],
        )
        .await
        .unwrap();
    let ids: Vec<_> = created.into_iter().map(|c| c.unwrap().id).collect();
    // Two deletes at once: between them, one override is left, for as long as one write takes.
    let (a, b) = tokio::join!(
        provider.delete_override(&schedule, &ids[0]),
        provider.delete_override(&schedule, &ids[1])
    );
    a.unwrap();
    b.unwrap();
    let mut seen = seen.lock().unwrap().clone();
    assert_eq!(tap.writes(), og.write_calls() as u64, "every write checked");
    assert_eq!(seen.len(), 4, "{seen:?}");
    // The creates may land in either order, the deletes too; each state was seen once.
    seen[..2].sort_unstable();
    assert_eq!(seen, vec![1, 2, 1, 0]);
}

/// Shuts every worker down gracefully: nothing stays held.
async fn stop_all(fleet: &Fleet, workers: Vec<(String, ThreadWorker)>) {
    for (_, worker) in workers {
        let _ = worker.stop.send(());
        tokio::task::spawn_blocking(move || worker.thread.join().unwrap())
            .await
            .unwrap();
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
