//! The worker's life, against a real PostgreSQL (`DATABASE_URL`) and both vendor simulators: one
//! sync per host schedule with a tracing span per destination run, the next runs it schedules
//! (period, read-only wait), a destination the host dropped, a lease that ran out mid-sync and was
//! taken over, a group that panics, and a graceful shutdown.
#![cfg(feature = "postgres")]
#![allow(clippy::unwrap_used)] // tests: a panic is the failure report

mod postgres_support;
mod worker_support;

use std::io::Write;
use std::sync::{Arc, Mutex, OnceLock};
use std::time::{Duration, Instant};

use oncall_sync::postgres::Dropped;
use oncall_sync::testkit::VendorSimulator;
use oncall_sync::worker::{WorkerOptions, RELEASE_AT_SHUTDOWN};
use oncall_sync::{ScheduleId, StateStore};
use postgres_support::{database_url, drop_schema, unique_schema};
use worker_support::pg_proxy::PgProxy;
use worker_support::{day, Fleet};

/// Everything the worker traces, as the fmt subscriber writes it (one global subscriber: the
/// workers' tasks run on the runtime's threads).
fn traces() -> Arc<Mutex<Vec<u8>>> {
    static TRACES: OnceLock<Arc<Mutex<Vec<u8>>>> = OnceLock::new();
    TRACES
        .get_or_init(|| {
            let buffer = Arc::new(Mutex::new(Vec::new()));
            let sink = buffer.clone();
            tracing_subscriber::fmt()
                .with_writer(move || Sink(sink.clone()))
                .init();
            buffer
        })
        .clone()
}

struct Sink(Arc<Mutex<Vec<u8>>>);

impl Write for Sink {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(buf);
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// The traced lines of one worker.
fn lines_of(worker: &str) -> Vec<String> {
    let text = String::from_utf8_lossy(&traces().lock().unwrap()).into_owned();
    text.lines()
        .filter(|l| l.contains(&format!("worker={worker}")))
        .map(str::to_owned)
        .collect()
}

fn options() -> WorkerOptions {
    WorkerOptions {
        failure_backoff: Duration::from_millis(20),
        max_backoff: Duration::from_millis(100),
        lease: Duration::from_secs(3),
        idle_poll: Duration::from_millis(20),
        shutdown_grace: Duration::from_millis(100),
        ..WorkerOptions::default()
    }
}

async fn fleet(test: &str, schedules: usize) -> Option<Fleet> {
    let url = database_url(test)?;
    let fleet = Fleet::new(&url, &unique_schema(test), schedules).await;
    fleet.set_now(day(0));
    Some(fleet)
}

/// Polls `what` until it holds (or panics after ten seconds).
async fn eventually<F: std::future::Future<Output = bool>>(
    what: &str,
    mut check: impl FnMut() -> F,
) {
    let deadline = Instant::now() + Duration::from_secs(10);
    while !check().await {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// One row's lease and schedule columns, for assertions.
#[derive(Debug)]
struct Row {
    holder: Option<String>,
    schedule: Option<String>,
    due_in_s: Option<f64>,
    failures: i32,
    version: i64,
}

async fn row(fleet: &Fleet, destination: &str) -> Row {
    let client = fleet.store.pool().get().await.unwrap();
    let r = client
        .query_one(
            &format!(
                "SELECT holder, schedule, extract(epoch FROM due_at - now())::float8, failures, version \
                 FROM {} WHERE destination = $1",
                fleet.store.table()
            ),
            &[&destination],
        )
        .await
        .unwrap();
    Row {
        holder: r.get(0),
        schedule: r.get(1),
        due_in_s: r.get(2),
        failures: r.get(3),
        version: r.get(4),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn syncs_each_schedule_in_one_run_traces_each_destination_and_schedules_the_period() {
    let Some(fleet) = fleet("worker_sync", 2).await else {
        return;
    };
    traces();
    let w = fleet.start_worker("trace-w1", options()).await;
    eventually("every destination synced", || async {
        fleet.synced_at(day(0)).await == 4
    })
    .await;
    for d in fleet.destinations() {
        let r = row(&fleet, &d.id.0).await;
        let due = r.due_in_s.unwrap();
        assert!(
            (3000.0..=4000.0).contains(&due),
            "{}: next run in {due} s",
            d.id
        );
        assert_eq!((r.holder, r.failures), (None, 0), "{}", d.id);
        assert!(
            !fleet.og.overrides(&d.schedule).is_empty()
                || !fleet.pd.overrides(&d.schedule).is_empty()
        );
    }
    let lines = lines_of("trace-w1");
    for d in fleet.destinations() {
        let run: Vec<&String> = lines
            .iter()
            .filter(|l| {
                l.contains("destination_run")
                    && l.contains(&format!("destination={}", d.id))
                    && l.contains("outcome=")
            })
            .collect();
        assert_eq!(run.len(), 1, "one traced run of {}: {lines:#?}", d.id);
        for field in [
            "status=\"Ok\"",
            "write_calls=",
            "mark_after=",
            "outcome=Synced",
            "next_run_s=",
        ] {
            assert!(run[0].contains(field), "{field} in {}", run[0]);
        }
    }
    // Each destination's span is open around its part of the work: every vendor call of a
    // destination runs inside its own destination_run span.
    let calls: Vec<&String> = lines
        .iter()
        .filter(|l| l.contains("vendor_call="))
        .collect();
    assert!(calls.len() >= 8, "{lines:#?}");
    for call in calls {
        let owner = fleet
            .destinations()
            .into_iter()
            .find(|d| call.contains(&format!("vendor_schedule={}", d.schedule)))
            .unwrap_or_else(|| panic!("a call to no destination's schedule: {call}"));
        let span = call
            .find("destination_run{")
            .map(|at| &call[at..])
            .unwrap_or_else(|| panic!("a vendor call outside any destination_run: {call}"));
        assert!(
            span.starts_with(&format!(
                "destination_run{{worker=trace-w1 destination={}",
                owner.id
            )),
            "{call}"
        );
    }
    // One sync per host schedule: each destination's run sits in its schedule's group span.
    assert!(lines.iter().any(|l| l.contains("sync_group")
        && l.contains("schedule=s000")
        && l.contains("destinations=2")));
    // The same schedule's destinations stay due together (one jitter draw per group).
    let (a, b) = (row(&fleet, "s000-og").await, row(&fleet, "s000-pd").await);
    assert!(
        (a.due_in_s.unwrap() - b.due_in_s.unwrap()).abs() < 1.0,
        "{a:?} {b:?}"
    );
    w.stop.send(()).unwrap();
    w.task.await.unwrap();
    drop_schema(&fleet.store).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_read_only_key_waits_the_long_backoff_while_the_other_connection_syncs() {
    let Some(fleet) = fleet("worker_read_only", 1).await else {
        return;
    };
    fleet.og.set_read_only(true);
    let w = fleet
        .start_worker(
            "ro-w1",
            WorkerOptions {
                read_only_backoff: Duration::from_secs(6 * 3600),
                ..options()
            },
        )
        .await;
    eventually("both destinations released", || async {
        let (og, pd) = (row(&fleet, "s000-og").await, row(&fleet, "s000-pd").await);
        og.due_in_s.is_some_and(|d| d > 0.0) && pd.due_in_s.is_some_and(|d| d > 0.0)
    })
    .await;
    let og = row(&fleet, "s000-og").await;
    assert!(og.due_in_s.unwrap() > 5.0 * 3600.0, "{og:?}");
    assert_eq!(og.failures, 1);
    let pd = row(&fleet, "s000-pd").await;
    assert!(pd.due_in_s.unwrap() < 4000.0 && pd.failures == 0, "{pd:?}");
    // Writes were refused once and not retried (R8): one POST per override planned, no more.
    let posts = fleet
        .og
        .requests()
        .iter()
        .filter(|r| r.method == "POST")
        .count();
    assert!(
        posts >= 1 && fleet.og.requests().iter().all(|r| r.status != Some(201)),
        "{posts}"
    );
    w.stop.send(()).unwrap();
    w.task.await.unwrap();
    drop_schema(&fleet.store).await;
}

/// The host states a schedule's destinations with `reconcile`: one it no longer names is retired
/// (our overrides that have not started are deleted, its state dropped) or kept at the vendor
/// and taken out of the workers' hands, as the host chooses.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reconcile_retires_or_keeps_the_destinations_the_host_no_longer_names() {
    let Some(fleet) = fleet("worker_reconcile", 2).await else {
        return;
    };
    let w = fleet.start_worker("reconcile-w1", options()).await;
    eventually("every destination synced", || async {
        fleet.synced_at(day(0)).await == 4
    })
    .await;
    let [s0_og, s0_pd] = worker_support::destinations_of(0);
    let [s1_og, s1_pd] = worker_support::destinations_of(1);
    let kept_overrides = fleet.pd.overrides(&s1_pd.schedule).len();
    assert!(kept_overrides > 0 && !fleet.og.overrides(&s0_og.schedule).is_empty());
    // The host stops exporting s000's primary (retired) and s001's secondary (kept).
    fleet.rota.hide(&s0_og.id.0);
    fleet.rota.hide(&s1_pd.id.0);
    let retired = fleet
        .store
        .reconcile(
            &ScheduleId("s000".into()),
            std::slice::from_ref(&s0_pd),
            Dropped::Retire,
        )
        .await
        .unwrap();
    assert_eq!(retired.retiring, vec![s0_og.id.clone()]);
    let kept = fleet
        .store
        .reconcile(
            &ScheduleId("s001".into()),
            std::slice::from_ref(&s1_og),
            Dropped::Keep,
        )
        .await
        .unwrap();
    assert_eq!(kept.unenrolled, vec![s1_pd.id.clone()]);
    eventually("s000-og retired", || async {
        let client = fleet.store.pool().get().await.unwrap();
        client
            .query_opt(
                &format!(
                    "SELECT 1 FROM {} WHERE destination = 's000-og'",
                    fleet.store.table()
                ),
                &[],
            )
            .await
            .unwrap()
            .is_none()
    })
    .await;
    // Retired: nothing of ours that has not started is left (the first shift starts at day 0,
    // the clock's now: it has started and stays).
    let left: Vec<_> = fleet
        .og
        .overrides(&s0_og.schedule)
        .into_iter()
        .filter(|o| o.span.start > day(0))
        .collect();
    assert!(left.is_empty(), "{left:?}");
    // Kept: untouched at the vendor, out of the workers' hands, its state kept.
    let r = row(&fleet, &s1_pd.id.0).await;
    assert_eq!((r.schedule, r.due_in_s), (None, None), "{}", s1_pd.id);
    assert_eq!(fleet.pd.overrides(&s1_pd.schedule).len(), kept_overrides);
    assert!(fleet
        .store
        .load(&s1_pd.id)
        .await
        .unwrap()
        .value
        .high_water
        .is_some());
    // The others go on as before.
    for d in [&s0_pd, &s1_og] {
        assert!(row(&fleet, &d.id.0).await.schedule.is_some(), "{}", d.id);
    }
    w.stop.send(()).unwrap();
    w.task.await.unwrap();
    drop_schema(&fleet.store).await;
}

/// A worker whose database stalls mid-sync (its renewals cannot get through) lets its lease run
/// out, and another worker claims the destination: the first worker has stopped sending to the
/// vendor by then (it stops a margin before its lease runs out), and leaves the new holder's
/// lease and state alone. The proof is the simulator's own log: no write to the destination's
/// vendor schedule arrived after the takeover.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_lease_that_ran_out_mid_sync_stops_the_sync_before_another_worker_takes_over() {
    let Some(mut fleet) = fleet("worker_lease_lost", 1).await else {
        return;
    };
    traces();
    // Slow vendors, and Opsgenie's creates sent one at a time: the first export takes seconds,
    // and is still writing when the lease runs out.
    fleet.og_concurrency = Some(1);
    fleet.og.set_latency(Duration::from_millis(250));
    fleet.pd.set_latency(Duration::from_millis(250));
    let w = fleet
        .start_worker(
            "lost-w1",
            WorkerOptions {
                lease: Duration::from_millis(900),
                ..options()
            },
        )
        .await;
    let writes_to_og_000 = |from: usize| {
        fleet.og.requests()[from..]
            .iter()
            .filter(|r| r.method != "GET" && r.path.starts_with("/v2/schedules/og-000/"))
            .count()
    };
    eventually("the worker writes to og-000", || async {
        writes_to_og_000(0) > 0
    })
    .await;
    assert_eq!(
        row(&fleet, "s000-og").await.holder.as_deref(),
        Some("lost-w1")
    );
    // The worker's database stalls for s000-og: a transaction locks its row and its lease (in
    // the order every statement locks them), so its renewals wait (and so would its save),
    // until its lease has run out by the database's clock.
    let mut locker = fleet.store.pool().get().await.unwrap();
    let tx = locker.transaction().await.unwrap();
    let table = fleet.store.table();
    let leases = format!("\"{}\".leases", fleet.store.schema());
    tx.query_one(
        &format!("SELECT version FROM {table} WHERE destination = 's000-og' FOR UPDATE"),
        &[],
    )
    .await
    .unwrap();
    tx.query_one(
        &format!("SELECT claim_id FROM {leases} WHERE destination = 's000-og' FOR UPDATE"),
        &[],
    )
    .await
    .unwrap();
    eventually("the worker's lease ran out", || async {
        let client = fleet.store.pool().get().await.unwrap();
        client
            .query_one(
                &format!("SELECT expires_at <= now() FROM {leases} WHERE destination = 's000-og'"),
                &[],
            )
            .await
            .unwrap()
            .get(0)
    })
    .await;
    // Another worker claims it, as claim_due would: a new holder, claim and version, and a lease
    // of its own (checked against the clock: `now()` is the transaction's start).
    let taken = tx
        .execute(
            &format!(
                "WITH stolen AS ( \
                     UPDATE {table} SET holder = 'thief', version = version + 1, \
                            claim_id = nextval('{}.claim_ids') \
                     WHERE destination = 's000-og' RETURNING destination, claim_id) \
                 UPDATE {leases} AS l SET holder = 'thief', claim_id = stolen.claim_id, \
                        expires_at = now() + interval '1 hour' \
                 FROM stolen WHERE l.destination = stolen.destination \
                   AND l.expires_at <= clock_timestamp()",
                fleet.store.schema()
            ),
            &[],
        )
        .await
        .unwrap();
    assert_eq!(taken, 1);
    let takeover = fleet.og.requests().len();
    tx.commit().await.unwrap();
    drop(locker);
    let stolen = row(&fleet, "s000-og").await.version;
    let ended = || {
        lines_of("lost-w1")
            .into_iter()
            .find(|l| l.contains("destination=s000-og") && l.contains("outcome="))
    };
    eventually("the worker's run of s000-og ended", || async {
        ended().is_some()
    })
    .await;
    tokio::time::sleep(Duration::from_millis(300)).await; // a late write would have landed
    assert_eq!(
        writes_to_og_000(takeover),
        0,
        "a write to og-000 arrived after the takeover: {:#?}",
        &fleet.og.requests()[takeover..]
    );
    let ended = ended().unwrap();
    assert!(ended.contains("outcome=Interrupted"), "{ended}");
    let r = row(&fleet, "s000-og").await;
    assert_eq!(
        r.holder.as_deref(),
        Some("thief"),
        "its release did not touch the new holder's lease"
    );
    assert_eq!(r.version, stolen, "nothing was saved over the new holder");
    w.stop.send(()).unwrap();
    w.task.await.unwrap();
    drop_schema(&fleet.store).await;
}

/// A bug in the host (or an adapter, or the core) panics the sync of one host schedule: its
/// destinations are given back with a failure's backoff and the panic is logged, rather than
/// held (and renewed) for the life of the process; the worker goes on with the rest.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_group_that_panics_gives_its_destinations_back_and_the_worker_goes_on() {
    let Some(fleet) = fleet("worker_panic", 2).await else {
        return;
    };
    traces();
    fleet.rota.panic_on(0);
    let w = fleet
        .start_worker(
            "panic-w1",
            WorkerOptions {
                failure_backoff: Duration::from_secs(600),
                max_backoff: Duration::from_secs(3600),
                lease: Duration::from_millis(600),
                ..options()
            },
        )
        .await;
    eventually("the other schedule synced", || async {
        fleet.synced_at(day(0)).await == 2
    })
    .await;
    eventually("the panicked schedule's destinations released", || async {
        let (og, pd) = (row(&fleet, "s000-og").await, row(&fleet, "s000-pd").await);
        og.holder.is_none() && pd.holder.is_none()
    })
    .await;
    for name in ["s000-og", "s000-pd"] {
        let r = row(&fleet, name).await;
        let due = r.due_in_s.unwrap();
        assert!(
            (200.0..=700.0).contains(&due) && r.failures == 1,
            "{name}: a failure's backoff: {r:?}"
        );
    }
    let lines = lines_of("panic-w1");
    assert!(
        lines
            .iter()
            .any(|l| l.contains("panicked") && l.contains("schedule=s000")),
        "the panic is logged: {lines:#?}"
    );
    w.stop.send(()).unwrap();
    w.task.await.unwrap();
    drop_schema(&fleet.store).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn graceful_shutdown_releases_what_it_holds_due_at_once() {
    let Some(fleet) = fleet("worker_shutdown", 2).await else {
        return;
    };
    fleet.og.set_latency(Duration::from_millis(300));
    fleet.pd.set_latency(Duration::from_millis(300));
    let w = fleet.start_worker("stop-w1", options()).await;
    eventually("the worker holds something", || async {
        row(&fleet, "s000-og").await.holder.is_some()
    })
    .await;
    w.stop.send(()).unwrap();
    w.task.await.unwrap();
    let client = fleet.store.pool().get().await.unwrap();
    let (held, due): (i64, i64) = {
        let r = client
            .query_one(
                &format!(
                    "SELECT count(*) FILTER (WHERE holder IS NOT NULL), \
                            count(*) FILTER (WHERE due_at <= now()) FROM {}",
                    fleet.store.table()
                ),
                &[],
            )
            .await
            .unwrap();
        (r.get(0), r.get(1))
    };
    assert_eq!(held, 0, "nothing stays held");
    assert!(
        due >= 1,
        "what it could not finish is due at once for the next worker"
    );
    drop(client);
    drop_schema(&fleet.store).await;
}

/// Bug 3 of issue 16: one negative or partial answer from the host (a lagging replica, a second
/// config on the same schema) must not unenroll destinations for good: they stay enrolled, are
/// tried again later, and sync once the host names them again.
/// With the database gone (a partition: every call hangs until its own timeout) while a claim
/// is in flight and groups are running, a worker still ends within its grace and
/// `RELEASE_AT_SHUTDOWN` of the moment shutdown is asked (25 s by default, under the 30 s
/// orchestrators give); what it held runs out by itself.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn shutdown_ends_within_its_bound_with_the_database_gone() {
    let Some(fleet) = fleet("worker_shutdown_bound", 2).await else {
        return;
    };
    let config: oncall_sync::postgres::tokio_postgres::Config = fleet.url.parse().unwrap();
    let port = config.get_ports()[0];
    let proxy = PgProxy::start(([127, 0, 0, 1], port).into());
    let user = config.get_user().unwrap_or("postgres");
    let url = format!(
        "host=127.0.0.1 port={} user={user} dbname={} connect_timeout=30",
        proxy.port,
        config.get_dbname().unwrap_or("postgres")
    );
    fleet.og.set_latency(Duration::from_millis(300));
    fleet.pd.set_latency(Duration::from_millis(300));
    let grace = Duration::from_secs(1);
    let w = fleet
        .start_worker_over(
            "bound-w1",
            WorkerOptions {
                shutdown_grace: grace,
                lease: Duration::from_secs(60),
                ..options()
            },
            &url,
        )
        .await;
    eventually("the worker holds something", || async {
        row(&fleet, "s000-og").await.holder.is_some()
    })
    .await;
    proxy.freeze();
    // Its next claim (it polls every 20 ms) is now in flight, and hangs.
    tokio::time::sleep(Duration::from_millis(200)).await;
    let asked = std::time::Instant::now();
    w.stop.send(()).unwrap();
    w.task.await.unwrap();
    let took = asked.elapsed();
    assert!(
        took <= grace + RELEASE_AT_SHUTDOWN + Duration::from_millis(1500),
        "shutdown took {took:?} with a grace of {grace:?}"
    );
    drop_schema(&fleet.store).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_destination_the_host_leaves_out_once_stays_enrolled_and_syncs_later() {
    let Some(fleet) = fleet("worker_transient_answer", 2).await else {
        return;
    };
    // Schedule s000 is answered `None`; s001's answer leaves out its PagerDuty destination.
    fleet.rota.hide("s000");
    fleet.rota.hide("s001-pd");
    let w = fleet.start_worker("transient-w1", options()).await;
    eventually("s001-og synced", || async {
        fleet.synced_at(day(0)).await == 1
    })
    .await;
    eventually("the left-out destinations released", || async {
        let mut released = true;
        for name in ["s000-og", "s000-pd", "s001-pd"] {
            let r = row(&fleet, name).await;
            released &= r.holder.is_none() && r.version > 0;
        }
        released
    })
    .await;
    for name in ["s000-og", "s000-pd", "s001-pd"] {
        let r = row(&fleet, name).await;
        assert!(
            r.schedule.is_some() && r.due_in_s.is_some(),
            "{name} was dropped on one answer: {r:?}"
        );
    }
    // The host names them again: they sync.
    fleet.rota.show("s000");
    fleet.rota.show("s001-pd");
    fleet.all_due().await;
    eventually("every destination synced", || async {
        fleet.synced_at(day(0)).await == 4
    })
    .await;
    w.stop.send(()).unwrap();
    w.task.await.unwrap();
    drop_schema(&fleet.store).await;
}

/// Wake-ups: a worker that would poll only every minute syncs a destination within seconds of
/// the host's request (`NOTIFY` at commit, the worker's `LISTEN`).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_sync_request_wakes_an_idle_worker_before_its_next_poll() {
    let Some(fleet) = fleet("worker_wake", 1).await else {
        return;
    };
    let w = fleet
        .start_worker(
            "wake-w1",
            WorkerOptions {
                idle_poll: Duration::from_secs(60),
                ..options()
            },
        )
        .await;
    // The first claim runs at start; then the worker waits out its minute.
    eventually("the first sync", || async {
        fleet.synced_at(day(0)).await == 2
    })
    .await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    let later = day(0) + chrono::TimeDelta::hours(1);
    fleet.set_now(later);
    let asked = Instant::now();
    fleet.all_due().await;
    eventually("the requested sync", || async {
        fleet.synced_at(later).await == 2
    })
    .await;
    assert!(
        asked.elapsed() < Duration::from_secs(30),
        "woken, not polled: {:?}",
        asked.elapsed()
    );
    w.stop.send(()).unwrap();
    w.task.await.unwrap();
    drop_schema(&fleet.store).await;
}

/// One clock: with `Clock::Database` a worker plans with the database's now, whatever the host's
/// clock says (here two years off).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_worker_on_the_database_clock_plans_with_the_databases_now() {
    let Some(fleet) = fleet("worker_db_clock", 1).await else {
        return;
    };
    let w = fleet
        .start_worker(
            "clock-w1",
            WorkerOptions {
                clock: oncall_sync::worker::Clock::Database,
                ..options()
            },
        )
        .await;
    let id = oncall_sync::DestinationId("s000-og".into());
    eventually("a run recorded", || async {
        fleet
            .store
            .load(&id)
            .await
            .unwrap()
            .value
            .last_run
            .is_some()
    })
    .await;
    let database_now = fleet.store.database_now().await.unwrap();
    let at = fleet
        .store
        .load(&id)
        .await
        .unwrap()
        .value
        .last_run
        .unwrap()
        .at;
    assert!(
        (database_now - at).num_seconds().abs() < 30,
        "ran at {at}, the database's clock reads {database_now} (the host's: {})",
        day(0)
    );
    w.stop.send(()).unwrap();
    w.task.await.unwrap();
    drop_schema(&fleet.store).await;
}
