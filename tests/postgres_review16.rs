//! Review of issue 16: tests that prove (or rule out) findings. Each test states what the code
//! should do; every test here but r10 FAILS on this branch (d9e32da), and each failure is a
//! finding of the review (see the review report).
#![cfg(feature = "postgres")]
#![allow(clippy::unwrap_used)]

mod postgres_support;

use std::time::{Duration, Instant};

use oncall_sync::postgres::{
    tokio_postgres, Dropped, Interrupted, LeaseOptions, PostgresStateStore,
};
use oncall_sync::{BudgetLimit, DestinationId, RateBudget, ScheduleId, StateStore};
use postgres_support::*;

const LONG: Duration = Duration::from_secs(60);

fn d(name: &str) -> DestinationId {
    DestinationId(name.into())
}

fn s(name: &str) -> ScheduleId {
    ScheduleId(name.into())
}

async fn row(store: &PostgresStateStore, name: &str) -> Option<(Option<String>, bool, f64)> {
    let client = store.pool().get().await.unwrap();
    client
        .query_opt(
            &format!(
                "SELECT schedule, retiring, coalesce(extract(epoch FROM due_at - now())::float8, -1) \
                 FROM {} WHERE destination = $1",
                store.table()
            ),
            &[&name],
        )
        .await
        .unwrap()
        .map(|r| (r.get(0), r.get(1), r.get(2)))
}

/// R1. The host retires `x` (reconcile without it), a worker claims it to retire it, and while
/// that run goes on the host names `x` again (reconcile returns Ok: enrolled). The run's
/// retirement then removes the state (what `retire` does: `remove(id, version)` through the
/// fenced store): `x` must stay enrolled in `s`, as the host's last reconcile said.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn r1_a_destination_named_again_during_its_retirement_stays_enrolled() {
    let Some(store) = fresh_store("r1_rename").await else {
        return;
    };
    let x = destination(&d("x"));
    store
        .reconcile(&s("s"), std::slice::from_ref(&x), Dropped::Retire)
        .await
        .unwrap();
    let first = store.claim_due("w0", 1, LONG).await.unwrap();
    store
        .save(
            &x.id,
            first[0].token,
            &oncall_sync::testkit::store_conformance::sample_state(1),
        )
        .await
        .unwrap();
    store
        .release("w0", &first[0], Duration::from_secs(3600), 0)
        .await
        .unwrap();
    let gone = store
        .reconcile(&s("s"), &[], Dropped::Retire)
        .await
        .unwrap();
    assert_eq!(gone.retiring, vec![x.id.clone()]);
    let claims = store.claim_due("w1", 1, LONG).await.unwrap();
    assert!(claims[0].retiring);
    // The host names x again while the worker retires it.
    let back = store
        .reconcile(&s("s"), std::slice::from_ref(&x), Dropped::Retire)
        .await
        .unwrap();
    assert_eq!(back.enrolled, 1);
    // The worker's retirement ends: state removed through the fenced view.
    let fenced = store.fenced(&claims);
    let loaded = fenced.load(&x.id).await.unwrap();
    let removed = fenced.remove(&x.id, loaded.version).await;
    eprintln!("retirement's remove after the host named x again: {removed:?}");
    let now = row(&store, "x").await;
    assert_eq!(
        now.as_ref().and_then(|r| r.0.as_deref()),
        Some("s"),
        "x was named by the host's last reconcile, but its row is {now:?}"
    );
    drop_schema(&store).await;
}

/// R2. A retirement asked (reconcile without `x`) while a worker syncs `x` is pushed a whole
/// period back by that run's release, as `sync_soon` was before bug 1's fix.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn r2_a_retirement_asked_while_held_is_due_right_after_the_run() {
    let Some(store) = fresh_store("r2_retire_held").await else {
        return;
    };
    let x = destination(&d("x"));
    store
        .reconcile(&s("s"), std::slice::from_ref(&x), Dropped::Retire)
        .await
        .unwrap();
    let claims = store.claim_due("w1", 1, LONG).await.unwrap();
    assert!(!claims[0].retiring);
    let gone = store
        .reconcile(&s("s"), &[], Dropped::Retire)
        .await
        .unwrap();
    assert_eq!(gone.retiring, vec![x.id.clone()]);
    // The run (a normal sync, begun before the reconcile) ends in step: next in an hour.
    assert!(store
        .release("w1", &claims[0], Duration::from_secs(3600), 0)
        .await
        .unwrap());
    let r = row(&store, "x").await.unwrap();
    eprintln!("after the release: {r:?}");
    let again = store.claim_due("w2", 1, LONG).await.unwrap();
    assert_eq!(
        again.len(),
        1,
        "the retirement asked mid-run waits {} s",
        r.2
    );
    drop_schema(&store).await;
}

/// R3. A renewal and a reconcile in the host's transaction wait for each other in a circle:
/// the reconcile locks the named rows (enroll) and then the unnamed ones (drop), each set in id
/// order, but not all rows in one order.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn r3_renewals_and_reconciles_never_deadlock() {
    let Some(store) = fresh_store("r3_deadlock").await else {
        return;
    };
    let url = database_url("r3_deadlock").unwrap();
    let (a, b) = (destination(&d("a")), destination(&d("b")));
    store
        .reconcile(&s("s"), &[a.clone(), b.clone()], Dropped::Retire)
        .await
        .unwrap();
    let claims = store.claim_due("w1", 10, LONG).await.unwrap();
    assert_eq!(claims.len(), 2);
    let renewer = store_in(&url, store.schema()).await;
    let mut client = store.pool().get().await.unwrap();
    let tx = client.transaction().await.unwrap();
    // The host's transaction enrols b (its rota change) ...
    store
        .enroll_in(&*tx, std::slice::from_ref(&b), &s("s"))
        .await
        .unwrap();
    // ... a worker renews a and b meanwhile (locks a, waits for b) ...
    let renewing = tokio::spawn(async move { renewer.renew("w1", &claims, LONG).await });
    tokio::time::sleep(Duration::from_millis(300)).await;
    // ... and the host's transaction states the schedule's set: {b}.
    let reconciled = store
        .reconcile_in(&*tx, &s("s"), std::slice::from_ref(&b), Dropped::Retire)
        .await;
    let committed = match &reconciled {
        Ok(_) => tx.commit().await.map_err(|e| e.to_string()),
        Err(e) => {
            drop(tx);
            Err(e.to_string())
        }
    };
    let renewed = renewing.await.unwrap();
    eprintln!("reconcile_in: {reconciled:?} / commit {committed:?}; renew: {renewed:?}");
    assert!(
        reconciled.is_ok() && renewed.is_ok(),
        "a deadlock: reconcile {reconciled:?}, renew {renewed:?}"
    );
    drop(client);
    drop_schema(&store).await;
}

/// R4. A host transaction that asked for a sync (`sync_soon_in`) and is still open holds the
/// destination's row: a holder's renewals wait behind it, and its run is stopped as if its lease
/// were lost, though nobody else holds it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn r4_an_open_host_transaction_does_not_stop_a_holders_run() {
    let Some(store) = fresh_store("r4_host_tx").await else {
        return;
    };
    let x = destination(&d("x"));
    store.enroll(&x, &s("s")).await.unwrap();
    let options = LeaseOptions::new("job").with_lease(Duration::from_millis(900));
    let group = store.claim_groups(&options, 1).await.unwrap().remove(0);
    let host = store_in(&database_url("r4_host_tx").unwrap(), store.schema()).await;
    let (started_tx, tx_started) = tokio::sync::oneshot::channel();
    let host_task = tokio::spawn(async move {
        let mut client = host.pool().get().await.unwrap();
        let tx = client.transaction().await.unwrap();
        host.sync_soon_in(&*tx, &[d("x")]).await.unwrap();
        started_tx.send(()).unwrap();
        // The host's own work in the same transaction: two seconds.
        tokio::time::sleep(Duration::from_secs(2)).await;
        tx.commit().await.unwrap();
    });
    tx_started.await.unwrap();
    let t0 = Instant::now();
    let result = group
        .run(async {
            tokio::time::sleep(Duration::from_millis(1800)).await;
        })
        .await;
    eprintln!("run: {result:?} after {:?}", t0.elapsed());
    host_task.await.unwrap();
    group.release_rest(Duration::ZERO).await.unwrap();
    assert_ne!(result, Err(Interrupted::LeaseLost), "nobody else held x");
    drop_schema(&store).await;
}

/// R5. `max_group` bounds a sync's size ("at most this many destinations of one host schedule in
/// one sync"): a claim of limit > 1 whose first rows are all of one schedule goes past it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn r5_a_group_never_exceeds_max_group() {
    let Some(store) = fresh_store("r5_max_group").await else {
        return;
    };
    for i in 0..10 {
        store
            .enroll(&destination(&d(&format!("a{i}"))), &s("a"))
            .await
            .unwrap();
    }
    let options = LeaseOptions::new("job").with_max_group(3);
    let groups = store.claim_groups(&options, 4).await.unwrap();
    let sizes: Vec<usize> = groups.iter().map(|g| g.claims().len()).collect();
    for g in &groups {
        g.release_rest(Duration::ZERO).await.unwrap();
    }
    assert!(
        sizes.iter().all(|n| *n <= 3),
        "group sizes {sizes:?} with max_group 3"
    );
    drop_schema(&store).await;
}

/// R6. The siblings' LIMIT is taken over all schedules ordered by schedule: a schedule that
/// sorts first takes every sibling slot, and the others' due siblings are left behind.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn r6_each_schedule_found_first_gets_its_siblings() {
    let Some(store) = fresh_store("r6_siblings").await else {
        return;
    };
    // Due order: a0, b0, then a1..a9, b1, b2.
    store.enroll(&destination(&d("a0")), &s("a")).await.unwrap();
    store.enroll(&destination(&d("b0")), &s("b")).await.unwrap();
    for i in 1..10 {
        store
            .enroll(&destination(&d(&format!("a{i}"))), &s("a"))
            .await
            .unwrap();
    }
    for i in 1..3 {
        store
            .enroll(&destination(&d(&format!("b{i}"))), &s("b"))
            .await
            .unwrap();
    }
    let claims = store.claim_due_grouped("w", 2, 3, LONG).await.unwrap();
    let of = |sched: &str| {
        claims
            .iter()
            .filter(|c| c.schedule.as_ref().map(|x| x.0.as_str()) == Some(sched))
            .count()
    };
    eprintln!("a: {}, b: {}", of("a"), of("b"));
    assert_eq!(
        (of("a"), of("b")),
        (3, 3),
        "b's two due siblings were left behind"
    );
    drop_schema(&store).await;
}

/// R7. A 429's pause holds every holder back for the pause: the burst tolerance must not let
/// requests through before it ends.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn r7_a_pause_is_not_shortened_by_the_burst() {
    let Some(store) = fresh_store("r7_pause").await else {
        return;
    };
    // Opsgenie's defaults: 600 a minute, a burst of 16 (its max concurrency): 1.5 s of tolerance.
    let limit = BudgetLimit {
        per_minute: 600,
        burst: 16,
    };
    let budget = store.rate_budget();
    assert_eq!(budget.reserve("k", limit).await.unwrap(), Duration::ZERO);
    budget.pause("k", Duration::from_secs(1)).await.unwrap();
    let wait = store.rate_budget().reserve("k", limit).await.unwrap();
    assert!(
        wait >= Duration::from_millis(900),
        "another worker's next request waits {wait:?} after a 1 s pause"
    );
    drop_schema(&store).await;
}

/// R8. A destination named twice in one reconcile (a host's duplicate row) is a host error: it
/// must not come back as a transient error that is retried for ever.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn r8_a_duplicate_in_reconcile_is_not_transient() {
    let Some(store) = fresh_store("r8_dup").await else {
        return;
    };
    let x = destination(&d("x"));
    let result = store
        .reconcile(&s("s"), &[x.clone(), x.clone()], Dropped::Keep)
        .await;
    eprintln!("{result:?}");
    assert!(
        result.as_ref().map_or_else(|e| !e.is_transient(), |_| true),
        "{result:?}"
    );
    drop_schema(&store).await;
}

/// R9. libpq verifies the server's chain whenever a root certificate is given, in `prefer`
/// too (and falls back to plain if that fails). With a CA that signed nothing here and a role
/// the server accepts only over TLS, libpq cannot connect; an unverified connection must not be
/// made.
#[tokio::test]
async fn r9_prefer_with_sslrootcert_verifies_the_chain_as_libpq_does() {
    let (Some(url), Some(tls)) = (database_url("r9"), tls_dir("r9")) else {
        return;
    };
    let config: tokio_postgres::Config = url.parse().unwrap();
    let port = config.get_ports()[0];
    // The role is created by tests/postgres_tls.rs; create it here too.
    let (client, conn) = tokio_postgres::connect(&url, tokio_postgres::NoTls)
        .await
        .unwrap();
    tokio::spawn(conn);
    client
        .batch_execute(
            "DO $$ BEGIN CREATE ROLE oncall_tls_only LOGIN PASSWORD 'hunter2-secret'; \
             EXCEPTION WHEN duplicate_object OR unique_violation THEN NULL; END $$",
        )
        .await
        .unwrap();
    let other = tls
        .join("other-ca.crt")
        .to_str()
        .unwrap()
        .replace('/', "%2F");
    let url = format!(
        "postgres://oncall_tls_only:hunter2-secret@127.0.0.1:{port}/postgres?sslrootcert={other}"
    );
    let result = PostgresStateStore::connect(&url).await;
    eprintln!(
        "prefer + sslrootcert of another CA: {:?}",
        result.as_ref().map(|_| "connected")
    );
    assert!(
        result.is_err(),
        "connected without verifying the chain against sslrootcert"
    );
}

/// R10. `allow`: plain first, TLS when plain is refused (a role the server takes only over TLS).
#[tokio::test]
async fn r10_allow_falls_back_to_tls() {
    let (Some(url), Some(_tls)) = (database_url("r10"), tls_dir("r10")) else {
        return;
    };
    let config: tokio_postgres::Config = url.parse().unwrap();
    let port = config.get_ports()[0];
    let (client, conn) = tokio_postgres::connect(&url, tokio_postgres::NoTls)
        .await
        .unwrap();
    tokio::spawn(conn);
    client
        .batch_execute(
            "DO $$ BEGIN CREATE ROLE oncall_tls_only LOGIN PASSWORD 'hunter2-secret'; \
             EXCEPTION WHEN duplicate_object OR unique_violation THEN NULL; END $$",
        )
        .await
        .unwrap();
    let url = format!(
        "postgres://oncall_tls_only:hunter2-secret@127.0.0.1:{port}/postgres?sslmode=allow"
    );
    let store = PostgresStateStore::connect(&url).await.unwrap();
    let c = store.pool().get().await.unwrap();
    let ssl: bool = c
        .query_one(
            "SELECT ssl FROM pg_stat_ssl WHERE pid = pg_backend_pid()",
            &[],
        )
        .await
        .unwrap()
        .get(0);
    assert!(ssl);
}

/// R11. A database that does not exist is a configuration error: permanent, not retried.
#[tokio::test]
async fn r11_an_unknown_database_is_permanent() {
    let Some(url) = database_url("r11") else {
        return;
    };
    let config: tokio_postgres::Config = url.parse().unwrap();
    let port = config.get_ports()[0];
    let url = format!("postgres://postgres@127.0.0.1:{port}/no_such_database_r11");
    let result = PostgresStateStore::connect(&url).await;
    let e = result.err().unwrap();
    eprintln!("{e}");
    assert!(!e.is_transient(), "an unknown database is transient: {e}");
}

/// R12. The guarded provider (the worker's and the lease API's) forwards `account()`: `sync`
/// refuses two destinations of one account's vendor schedule across connections only when it
/// knows the account.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn r12_a_guarded_provider_keeps_its_account() {
    use oncall_sync::pagerduty::testkit::PagerDutySimulator;
    use oncall_sync::Provider;
    let Some(store) = fresh_store("r12_account").await else {
        return;
    };
    store.enroll(&destination(&d("x")), &s("s")).await.unwrap();
    let group = store
        .claim_groups(&LeaseOptions::new("job"), 1)
        .await
        .unwrap()
        .remove(0);
    let pd = PagerDutySimulator::start_at(
        chrono::TimeZone::with_ymd_and_hms(&chrono::Utc, 2024, 3, 1, 9, 0, 0).unwrap(),
    )
    .await;
    let raw: std::sync::Arc<dyn Provider> =
        std::sync::Arc::new(pd.provider_builder().build().unwrap());
    let guarded = group.guard_provider(raw.clone());
    group.release_rest(Duration::ZERO).await.unwrap();
    assert!(raw.account().is_some());
    assert_eq!(
        guarded.account(),
        raw.account(),
        "the guard hides the account"
    );
    drop_schema(&store).await;
}
