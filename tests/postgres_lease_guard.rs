//! The public lease API on a real PostgreSQL (`DATABASE_URL`): a group claimed and run under its
//! guard keeps its leases past their length, stops when a lease is lost (and its guarded
//! provider sends nothing more), survives a panic, and gives back what it held when dropped;
//! requests made in the host's own transaction count only once it commits; a claim's group is
//! bounded.
#![cfg(feature = "postgres")]
#![allow(clippy::unwrap_used)] // tests: a panic is the failure report

mod postgres_support;

use std::sync::Arc;
use std::time::{Duration, Instant};

use oncall_sync::postgres::{Interrupted, LeaseOptions, PostgresStateStore};
use oncall_sync::testkit::InMemoryProvider;
use oncall_sync::{DestinationId, Error, Provider, ScheduleId, VendorScheduleId, Window};
use postgres_support::*;

fn d(name: &str) -> DestinationId {
    DestinationId(name.into())
}

async fn enrolled(test: &str, names: &[&str]) -> Option<PostgresStateStore> {
    let store = fresh_store(test).await?;
    for name in names {
        store
            .enroll(&destination(&d(name)), &ScheduleId("s".into()))
            .await
            .unwrap();
    }
    Some(store)
}

async fn holder_of(store: &PostgresStateStore, name: &str) -> Option<String> {
    let client = store.pool().get().await.unwrap();
    client
        .query_one(
            &format!(
                "SELECT holder FROM {} WHERE destination = $1",
                store.table()
            ),
            &[&name],
        )
        .await
        .unwrap()
        .get(0)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_group_run_under_its_guard_keeps_its_leases_past_their_length_and_releases_them() {
    let Some(store) = enrolled("guard_renews", &["a", "b"]).await else {
        return;
    };
    let options = LeaseOptions::new("job").with_lease(Duration::from_millis(600));
    let groups = store.claim_groups(&options, 4).await.unwrap();
    assert_eq!(groups.len(), 1, "one group for the host schedule");
    let group = &groups[0];
    assert_eq!(group.claims().len(), 2);
    let other = LeaseOptions::new("other");
    let done = group
        .run(async {
            tokio::time::sleep(Duration::from_millis(1500)).await;
            // Still held, by the guard's renewals, well past the lease's length.
            store.claim_groups(&other, 4).await.unwrap().len()
        })
        .await;
    assert_eq!(done, Ok(0));
    group
        .release(&d("a"), Duration::from_secs(3600), 0)
        .await
        .unwrap();
    group.release_rest(Duration::ZERO).await.unwrap();
    assert_eq!(holder_of(&store, "a").await, None);
    let again = store.claim_groups(&other, 4).await.unwrap();
    assert_eq!(again.len(), 1);
    assert_eq!(
        again[0].claims().len(),
        1,
        "b is due again at once, a in an hour"
    );
    drop_schema(&store).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_lost_lease_stops_the_work_and_the_guarded_provider_sends_nothing_more() {
    let Some(store) = enrolled("guard_lost", &["a"]).await else {
        return;
    };
    let options = LeaseOptions::new("job").with_lease(Duration::from_millis(600));
    let group = store.claim_groups(&options, 1).await.unwrap().remove(0);
    let t0 = chrono::TimeZone::with_ymd_and_hms(&chrono::Utc, 2024, 3, 1, 9, 0, 0).unwrap();
    let vendor = Arc::new(InMemoryProvider::pagerduty_like(t0));
    let guarded = group.guard_provider(vendor.clone());
    let schedule = VendorScheduleId("a".into());
    let window = || Window::new(t0, t0 + chrono::TimeDelta::days(1));
    // Before the deadline, calls go through (this schedule is unknown: the vendor's answer).
    assert!(!matches!(
        guarded.list_overrides(&schedule, window().unwrap()).await,
        Err(Error::Conflict { .. })
    ));
    // Another holder takes the destination over (as if the lease had run out).
    execute(
        &store,
        &format!(
            "WITH stolen AS ( \
                 UPDATE {} SET holder = 'thief', claim_id = nextval('\"{s}\".claim_ids'), \
                        version = version + 1 RETURNING destination, claim_id) \
             UPDATE \"{s}\".leases AS l SET holder = 'thief', claim_id = stolen.claim_id \
             FROM stolen WHERE l.destination = stolen.destination",
            store.table(),
            s = store.schema()
        ),
    )
    .await;
    let started = Instant::now();
    let result = group
        .run(async {
            tokio::time::sleep(Duration::from_secs(5)).await;
            "finished"
        })
        .await;
    assert_eq!(result, Err(Interrupted::LeaseLost));
    assert!(
        started.elapsed() < Duration::from_secs(2),
        "stopped at the first renewal"
    );
    // Past the deadline, the guarded provider refuses to send.
    tokio::time::sleep(Duration::from_millis(500)).await;
    let refused = guarded.list_overrides(&schedule, window().unwrap()).await;
    assert!(
        matches!(&refused, Err(Error::Conflict { message }) if message.contains("not sent")),
        "{refused:?}"
    );
    // Its release changes nothing: the thief holds it.
    group.release_rest(Duration::ZERO).await.unwrap();
    assert_eq!(holder_of(&store, "a").await.as_deref(), Some("thief"));
    drop_schema(&store).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_panic_is_caught_and_a_dropped_group_gives_its_destinations_back() {
    let Some(store) = enrolled("guard_panic", &["a"]).await else {
        return;
    };
    let options = LeaseOptions::new("job");
    let group = store.claim_groups(&options, 1).await.unwrap().remove(0);
    let result = group
        .run(async {
            tokio::task::yield_now().await;
            panic!("a bug in the host");
        })
        .await;
    assert_eq!(
        result,
        Err(Interrupted::Panicked("a bug in the host".into()))
    );
    assert!(
        holder_of(&store, "a").await.is_some(),
        "held until released"
    );
    drop(group);
    let until = Instant::now() + Duration::from_secs(5);
    while holder_of(&store, "a").await.is_some() {
        assert!(Instant::now() < until, "a dropped group gave nothing back");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert_eq!(
        store.claim_groups(&options, 1).await.unwrap().len(),
        1,
        "due at once"
    );
    drop_schema(&store).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_sync_requested_in_the_hosts_transaction_counts_once_it_commits() {
    let Some(store) = enrolled("guard_host_tx", &["a"]).await else {
        return;
    };
    let options = LeaseOptions::new("job");
    let group = store.claim_groups(&options, 1).await.unwrap().remove(0);
    group.release_rest(Duration::from_secs(3600)).await.unwrap();
    let mut client = store.pool().get().await.unwrap();
    // Rolled back: nothing is due.
    let tx = client.transaction().await.unwrap();
    assert_eq!(store.sync_soon_in(&*tx, &[d("a")]).await.unwrap(), 1);
    tx.rollback().await.unwrap();
    assert!(store.claim_groups(&options, 1).await.unwrap().is_empty());
    // Committed with the host's own change: due.
    let tx = client.transaction().await.unwrap();
    tx.batch_execute("CREATE TEMP TABLE rota_change (x int)")
        .await
        .unwrap();
    store.sync_soon_in(&*tx, &[d("a")]).await.unwrap();
    tx.commit().await.unwrap();
    let due = store.claim_groups(&options, 1).await.unwrap();
    assert_eq!(due.len(), 1);
    due[0].release_rest(Duration::ZERO).await.unwrap();
    drop(client);
    drop_schema(&store).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_claim_brings_at_most_max_group_destinations_of_a_schedule() {
    let names: Vec<String> = (0..10).map(|i| format!("d{i}")).collect();
    let refs: Vec<&str> = names.iter().map(String::as_str).collect();
    let Some(store) = enrolled("guard_bound", &refs).await else {
        return;
    };
    let options = LeaseOptions::new("job").with_max_group(3);
    let mut held = Vec::new();
    while held.len() < 10 {
        let groups = store.claim_groups(&options, 1).await.unwrap();
        if groups.is_empty() {
            break;
        }
        held.extend(groups);
    }
    let sizes: Vec<usize> = held.iter().map(|g| g.claims().len()).collect();
    assert_eq!(
        sizes,
        vec![3, 3, 3, 1],
        "the one found first and two siblings each time"
    );
    for group in &held {
        group.release_rest(Duration::ZERO).await.unwrap();
    }
    drop_schema(&store).await;
}

/// A claim of several groups' worth on one large host schedule: the group is still bounded by
/// `max_group`, those found first included.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_group_never_exceeds_max_group_however_many_are_found_first() {
    let names: Vec<String> = (0..10).map(|i| format!("d{i}")).collect();
    let refs: Vec<&str> = names.iter().map(String::as_str).collect();
    let Some(store) = enrolled("guard_bound_limit", &refs).await else {
        return;
    };
    let options = LeaseOptions::new("job").with_max_group(3);
    let groups = store.claim_groups(&options, 4).await.unwrap();
    let sizes: Vec<usize> = groups.iter().map(|g| g.claims().len()).collect();
    for g in &groups {
        g.release_rest(Duration::ZERO).await.unwrap();
    }
    assert_eq!(sizes, vec![3], "one schedule, at most max_group of it");
    drop_schema(&store).await;
}

/// A host transaction that asked for a sync (`sync_soon_in`) and is still open holds the
/// destination's row, not its lease: the holder's renewals go through, and its run goes on.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_open_host_transaction_does_not_stop_a_holders_run() {
    let Some(store) = enrolled("guard_open_host_tx", &["x"]).await else {
        return;
    };
    let options = LeaseOptions::new("job").with_lease(Duration::from_millis(900));
    let group = store.claim_groups(&options, 1).await.unwrap().remove(0);
    let host = store_in(&database_url("guard_open_host_tx").unwrap(), store.schema()).await;
    let (started_tx, tx_started) = tokio::sync::oneshot::channel();
    let host_task = tokio::spawn(async move {
        let mut client = host.pool().get().await.unwrap();
        let tx = client.transaction().await.unwrap();
        host.enroll_in(&*tx, &[destination(&d("x"))], &ScheduleId("s".into()))
            .await
            .unwrap();
        host.sync_soon_in(&*tx, &[d("x")]).await.unwrap();
        started_tx.send(()).unwrap();
        // The host's own work in the same transaction: two seconds, past the lease.
        tokio::time::sleep(Duration::from_secs(2)).await;
        tx.commit().await.unwrap();
    });
    tx_started.await.unwrap();
    let result = group
        .run(async {
            tokio::time::sleep(Duration::from_millis(1800)).await;
            "done"
        })
        .await;
    host_task.await.unwrap();
    group.release_rest(Duration::from_secs(3600)).await.unwrap();
    assert_eq!(result, Ok("done"), "nobody else held x");
    // The request counted: due at once after the release.
    let again = store.claim_groups(&options, 1).await.unwrap();
    assert_eq!(again.len(), 1);
    again[0].release_rest(Duration::ZERO).await.unwrap();
    drop_schema(&store).await;
}

/// The guarded provider keeps its provider's account: `sync` refuses two connections to one
/// account sharing a vendor schedule only when it knows the account.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_guarded_provider_keeps_its_providers_account() {
    let Some(store) = enrolled("guard_account", &["x"]).await else {
        return;
    };
    let group = store
        .claim_groups(&LeaseOptions::new("job"), 1)
        .await
        .unwrap()
        .remove(0);
    let t0 = chrono::TimeZone::with_ymd_and_hms(&chrono::Utc, 2024, 3, 1, 9, 0, 0).unwrap();
    let vendor = InMemoryProvider::pagerduty_like(t0);
    vendor.set_account(Some("pagerduty https://acme".into()));
    let raw: Arc<dyn Provider> = Arc::new(vendor);
    let guarded = group.guard_provider(raw.clone());
    group.release_rest(Duration::ZERO).await.unwrap();
    assert_eq!(guarded.account().as_deref(), Some("pagerduty https://acme"));
    drop_schema(&store).await;
}
