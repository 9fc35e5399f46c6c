//! What the host states on a real PostgreSQL (`DATABASE_URL`): `reconcile`, `enroll` and the
//! retirements they ask for, beside the workers' claims: a destination named again during its
//! retirement keeps its state and is written back; a retirement asked for while a worker holds
//! the destination runs right after that run; a host transaction never deadlocks with the
//! workers; a host's duplicate is its error, not a transient one.
#![cfg(feature = "postgres")]
#![allow(clippy::unwrap_used)] // tests: a panic is the failure report

mod postgres_support;

use std::time::Duration;

use chrono::{DateTime, TimeDelta, TimeZone, Utc};
use oncall_sync::postgres::{Dropped, PostgresStateStore};
use oncall_sync::testkit::{InMemoryProvider, VendorSimulator};
use oncall_sync::{
    retire, sync, Destination, DestinationId, Email, Error, Member, Schedule, ScheduleId, Shift,
    SyncMode, SyncOptions, SyncTarget, ValidationError, VendorSchedule,
};
use postgres_support::*;

const LONG: Duration = Duration::from_secs(60);

fn d(name: &str) -> DestinationId {
    DestinationId(name.into())
}

fn s(name: &str) -> ScheduleId {
    ScheduleId(name.into())
}

/// A destination's row: its host schedule, whether it is retiring, and in how many seconds it
/// is due (-1: not scheduled); `None` without a row.
async fn row(store: &PostgresStateStore, name: &str) -> Option<(Option<String>, bool, f64)> {
    let client = store.pool().get().await.unwrap();
    client
        .query_opt(
            &format!(
                "SELECT schedule, retiring, \
                        coalesce(extract(epoch FROM due_at - now())::float8, -1) \
                 FROM {} WHERE destination = $1",
                store.table()
            ),
            &[&name],
        )
        .await
        .unwrap()
        .map(|r| (r.get(0), r.get(1), r.get(2)))
}

fn day(n: u32) -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2024, 3, n, 9, 0, 0).unwrap()
}

/// A vendor (in memory) with `destination`'s schedule, and a host schedule of days 1 to 6 for
/// one person.
fn world(destination: &Destination) -> (InMemoryProvider, Schedule) {
    let ann = Email::parse("ann@example.com").unwrap();
    let members = vec![Member::new(ann.clone(), "Ann")];
    let vendor = InMemoryProvider::pagerduty_like(day(1));
    vendor.add_schedule(VendorSchedule {
        id: destination.schedule.clone(),
        name: "x".into(),
        zone: chrono_tz::UTC,
        members: members.clone(),
        rotations: Vec::new(),
    });
    let shifts = (1..6)
        .map(|n| Shift::new(day(n), day(n + 1), vec![Some(ann.clone())]))
        .collect();
    let host = Schedule::new(
        s("host"),
        chrono_tz::UTC,
        vec!["primary".into()],
        members,
        shifts,
    )
    .unwrap();
    (vendor, host)
}

/// The host retires `x` (a reconcile without it), a worker claims it to retire it, and while
/// that run goes on the host names `x` again. The run deletes our overrides, but its last step,
/// dropping the state, is refused: `x` stays enrolled, its run ends due at once, and its next
/// sync writes back what the retirement deleted.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_destination_named_again_during_its_retirement_keeps_its_state_and_is_written_back() {
    let Some(store) = fresh_store("reconcile_named_again").await else {
        return;
    };
    let x = destination(&d("x"));
    let (vendor, host) = world(&x);
    let targets = [SyncTarget {
        destination: &x,
        provider: &vendor,
    }];
    let options = SyncOptions {
        now: day(1) + TimeDelta::hours(1),
        horizon: None,
        mode: SyncMode::Apply,
    };
    store
        .reconcile(&s("host"), std::slice::from_ref(&x), Dropped::Retire)
        .await
        .unwrap();
    // A first export, as a worker runs it.
    let first = store.claim_due("w0", 1, LONG).await.unwrap();
    let report = sync(&host, &targets, &store.fenced(&first), options)
        .await
        .unwrap();
    assert!(report.destinations[0].errors.is_empty(), "{report}");
    let exported = vendor.overrides(&x.schedule).len();
    assert_eq!(exported, 5);
    assert!(store
        .release("w0", &first[0], Duration::from_secs(3600), 0)
        .await
        .unwrap());
    // The host stops exporting to x; a worker claims it to retire it.
    let gone = store
        .reconcile(&s("host"), &[], Dropped::Retire)
        .await
        .unwrap();
    assert_eq!(gone.retiring, vec![x.id.clone()]);
    let claims = store.claim_due("w1", 1, LONG).await.unwrap();
    assert!(claims[0].retiring);
    // The host names x again while the worker retires it.
    let back = store
        .reconcile(&s("host"), std::slice::from_ref(&x), Dropped::Retire)
        .await
        .unwrap();
    assert_eq!(back.enrolled, 1);
    let now = day(1) + TimeDelta::hours(2);
    vendor.set_now(now);
    let retired = retire(&x, &vendor, &store.fenced(&claims), now, SyncMode::Apply).await;
    assert!(
        retired.errors.iter().any(
            |e| matches!(&e.error, Error::Conflict { message } if message.contains("named again"))
        ),
        "{retired}"
    );
    assert_eq!(
        row(&store, "x").await.map(|r| (r.0, r.1)),
        Some((Some("host".into()), false)),
        "x was named by the host's last reconcile"
    );
    // The run ends (a worker gives an interrupted run back due at once; even a release for
    // an hour leaves it due at once: the enrolment counted a request).
    assert!(store
        .release("w1", &claims[0], Duration::from_secs(3600), 0)
        .await
        .unwrap());
    let again = store.claim_due("w2", 1, LONG).await.unwrap();
    assert_eq!(again.len(), 1, "due at once");
    assert!(!again[0].retiring);
    let report = sync(
        &host,
        &targets,
        &store.fenced(&again),
        SyncOptions { now, ..options },
    )
    .await
    .unwrap();
    assert!(report.destinations[0].errors.is_empty(), "{report}");
    let live = |o: &&oncall_sync::Override| o.span.end > now;
    assert_eq!(
        vendor.overrides(&x.schedule).iter().filter(live).count(),
        5,
        "the overrides the retirement deleted are written back"
    );
    drop_schema(&store).await;
}

/// A retirement asked for (a reconcile without `x`) while a worker syncs `x` runs right after
/// that run, however long the run's release asks it to wait.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_retirement_asked_while_a_worker_holds_the_destination_is_due_right_after_its_run() {
    let Some(store) = fresh_store("reconcile_retire_held").await else {
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
    // The run (a sync, begun before the reconcile) ends in step: next in an hour.
    assert!(store
        .release("w1", &claims[0], Duration::from_secs(3600), 0)
        .await
        .unwrap());
    let again = store.claim_due("w2", 1, LONG).await.unwrap();
    assert_eq!(
        again.len(),
        1,
        "the retirement waits {:?}",
        row(&store, "x").await
    );
    assert!(again[0].retiring);
    drop_schema(&store).await;
}

/// A host transaction that enrols, and then states the schedule's set, while a worker renews
/// the same destinations: neither waits for the other in a circle (PostgreSQL's 40P01).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_reconcile_in_the_hosts_transaction_and_renewals_never_deadlock() {
    let Some(store) = fresh_store("reconcile_deadlock").await else {
        return;
    };
    let url = database_url("reconcile_deadlock").unwrap();
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
    // ... a worker renews a and b meanwhile ...
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
    assert!(
        reconciled.is_ok() && committed.is_ok(),
        "{reconciled:?} {committed:?}"
    );
    assert_eq!(renewed.unwrap().len(), 2, "both renewed");
    drop(client);
    drop_schema(&store).await;
}

/// A destination named twice alike in one reconcile counts once; named twice with different
/// descriptions it is the host's error, typed and permanent (not retried for ever), and nothing
/// is enrolled.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_destination_named_twice_counts_once_or_is_the_hosts_error() {
    let Some(store) = fresh_store("reconcile_twice").await else {
        return;
    };
    let x = destination(&d("x"));
    let reconciled = store
        .reconcile(&s("s"), &[x.clone(), x.clone()], Dropped::Keep)
        .await
        .unwrap();
    assert_eq!(reconciled.enrolled, 1);
    let other_schedule = Destination {
        schedule: oncall_sync::VendorScheduleId("elsewhere".into()),
        ..x.clone()
    };
    let y = destination(&d("y"));
    for result in [
        store
            .reconcile(
                &s("s"),
                &[y.clone(), x.clone(), other_schedule.clone()],
                Dropped::Keep,
            )
            .await
            .map(|_| ()),
        store
            .enroll_in(
                &**store.pool().get().await.unwrap(),
                &[y.clone(), other_schedule.clone(), x.clone()],
                &s("s"),
            )
            .await
            .map(|_| ()),
    ] {
        assert!(
            matches!(
                &result,
                Err(Error::InvalidInput(ValidationError::DuplicateDestination { destination }))
                    if destination == &x.id
            ),
            "{result:?}"
        );
    }
    assert_eq!(row(&store, "y").await, None, "nothing enrolled");
    drop_schema(&store).await;
}
