//! Leases on a real PostgreSQL (`DATABASE_URL`): due destinations are claimed once among many
//! claimers, renewed while held, released with the next due time; and the state's version fences a
//! worker whose lease expired off a destination another worker took over.
#![cfg(feature = "postgres")]
#![allow(clippy::unwrap_used)] // tests: a panic is the failure report

mod postgres_support;

use std::collections::HashSet;
use std::time::Duration;

use oncall_sync::postgres::PostgresStateStore;
use oncall_sync::testkit::store_conformance::sample_state;
use oncall_sync::{DestinationId, Error, ScheduleId, StateStore};
use postgres_support::*;

const LONG: Duration = Duration::from_secs(60);

fn d(name: &str) -> DestinationId {
    DestinationId(name.into())
}

async fn enroll_many(store: &PostgresStateStore, n: usize) -> Vec<DestinationId> {
    let mut all = Vec::new();
    for i in 0..n {
        let id = d(&format!("dest-{i:03}"));
        store
            .enroll(
                &postgres_support::destination(&id),
                &ScheduleId(format!("sched-{}", i / 2)),
            )
            .await
            .unwrap();
        all.push(id);
    }
    all
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_claimers_never_get_the_same_destination() {
    let Some(store) = fresh_store("claimers").await else {
        return;
    };
    let all = enroll_many(&store, 60).await;
    let url = database_url("claimers").unwrap();
    // Six claimers with pools of their own claim in small batches until nothing is due.
    let mut tasks = Vec::new();
    for c in 0..6 {
        let claimer = store_in(&url, store.schema()).await;
        tasks.push(tokio::spawn(async move {
            let mut got = Vec::new();
            loop {
                let claims = claimer.claim_due(&format!("c{c}"), 4, LONG).await.unwrap();
                if claims.is_empty() {
                    return got;
                }
                got.extend(claims.into_iter().map(|c| c.destination));
            }
        }));
    }
    let mut seen = HashSet::new();
    for task in tasks {
        for id in task.await.unwrap() {
            assert!(seen.insert(id.clone()), "{id} was claimed twice");
        }
    }
    assert_eq!(
        seen,
        all.into_iter().collect(),
        "every due destination was claimed"
    );
    drop_schema(&store).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_held_lease_is_not_claimed_again_until_it_expires_and_renewal_keeps_it() {
    let Some(store) = fresh_store("expiry").await else {
        return;
    };
    let id = d("og-primary");
    store
        .enroll(
            &postgres_support::destination(&id),
            &ScheduleId("platform".into()),
        )
        .await
        .unwrap();
    let first = store
        .claim_due("w1", 10, Duration::from_millis(400))
        .await
        .unwrap();
    assert_eq!(first.len(), 1);
    assert_eq!(first[0].schedule, Some(ScheduleId("platform".into())));
    assert!(
        store.claim_due("w2", 10, LONG).await.unwrap().is_empty(),
        "held"
    );
    // Renewed before it expires, it stays with w1 past the first expiry.
    tokio::time::sleep(Duration::from_millis(250)).await;
    let renewed = store
        .renew("w1", &first, Duration::from_millis(400))
        .await
        .unwrap();
    assert_eq!(renewed, vec![id.clone()]);
    tokio::time::sleep(Duration::from_millis(250)).await;
    assert!(
        store.claim_due("w2", 10, LONG).await.unwrap().is_empty(),
        "renewed"
    );
    // Not renewed, it expires, and w2 takes it over; w1's renewal then says it is gone.
    tokio::time::sleep(Duration::from_millis(300)).await;
    let taken = store.claim_due("w2", 10, LONG).await.unwrap();
    assert_eq!(taken.len(), 1, "an expired lease is claimable");
    assert!(
        taken[0].token > first[0].token,
        "a claim raises the version"
    );
    let renewed = store.renew("w1", &first, LONG).await.unwrap();
    assert!(renewed.is_empty(), "w1 learns it lost the lease");
    assert!(
        !store
            .release("w1", &first[0], Duration::ZERO, 0)
            .await
            .unwrap(),
        "w1 cannot release what w2 holds"
    );
    drop_schema(&store).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn release_sets_the_next_due_time_and_the_failure_count() {
    let Some(store) = fresh_store("release").await else {
        return;
    };
    let (a, b) = (d("a"), d("b"));
    for id in [&a, &b] {
        store
            .enroll(&postgres_support::destination(id), &ScheduleId("s".into()))
            .await
            .unwrap();
    }
    let mut claims = store.claim_due("w1", 10, LONG).await.unwrap();
    claims.sort_by(|x, y| x.destination.0.cmp(&y.destination.0));
    assert_eq!(claims.len(), 2);
    assert!(store
        .release("w1", &claims[0], Duration::ZERO, 3)
        .await
        .unwrap());
    assert!(store
        .release("w1", &claims[1], Duration::from_secs(3600), 0)
        .await
        .unwrap());
    let again = store.claim_due("w2", 10, LONG).await.unwrap();
    assert_eq!(again.len(), 1, "only a is due again: {again:?}");
    assert_eq!((&again[0].destination, again[0].failures), (&a, 3));
    // The host asks for b now (its rota changed); enrolling again keeps b's due time.
    store
        .enroll(&postgres_support::destination(&b), &ScheduleId("s".into()))
        .await
        .unwrap();
    assert!(store.claim_due("w2", 10, LONG).await.unwrap().is_empty());
    assert_eq!(store.sync_soon(std::slice::from_ref(&b)).await.unwrap(), 1);
    assert_eq!(store.claim_due("w2", 10, LONG).await.unwrap().len(), 1);
    // An unenrolled destination is never due, and keeps its state.
    store
        .save(&a, again[0].token, &sample_state(1))
        .await
        .unwrap();
    assert!(store
        .release("w2", &again[0], Duration::ZERO, 0)
        .await
        .unwrap());
    store.unenroll(&a).await.unwrap();
    assert_eq!(store.sync_soon(std::slice::from_ref(&a)).await.unwrap(), 0);
    assert!(store.claim_due("w3", 10, LONG).await.unwrap().is_empty());
    assert_eq!(store.load(&a).await.unwrap().value, sample_state(1));
    drop_schema(&store).await;
}

/// The fencing proof: w1 claims and loads, its lease expires, w2 takes the destination over. w1
/// can neither save (its version is stale, even before w2 saved anything) nor start another sync
/// of it through its fenced view; w2 saves, and the stored state is w2's.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_worker_whose_lease_expired_cannot_save_over_the_one_that_took_over() {
    let Some(store) = fresh_store("fencing").await else {
        return;
    };
    let url = database_url("fencing").unwrap();
    let (w1, w2) = (
        store_in(&url, store.schema()).await,
        store_in(&url, store.schema()).await,
    );
    let id = d("pd-secondary");
    store
        .enroll(
            &postgres_support::destination(&id),
            &ScheduleId("platform".into()),
        )
        .await
        .unwrap();
    store.save(&id, 0, &sample_state(1)).await.unwrap();

    let c1 = w1
        .claim_due("w1", 1, Duration::from_millis(200))
        .await
        .unwrap();
    let fenced1 = w1.fenced(&c1);
    let loaded1 = fenced1.load(&id).await.unwrap();
    assert_eq!(loaded1.version, c1[0].token);

    tokio::time::sleep(Duration::from_millis(300)).await; // w1 stalls past its lease
    let c2 = w2.claim_due("w2", 1, LONG).await.unwrap();
    assert_eq!(c2.len(), 1, "w2 takes the expired lease over");
    let fenced2 = w2.fenced(&c2);
    let loaded2 = fenced2.load(&id).await.unwrap();

    // w1 wakes up: its save loses, before and after w2's own save.
    let early = fenced1.save(&id, loaded1.version, &sample_state(66)).await;
    assert!(matches!(early, Err(Error::Conflict { .. })), "{early:?}");
    let v = fenced2
        .save(&id, loaded2.version, &sample_state(2))
        .await
        .unwrap();
    let late = fenced1.save(&id, loaded1.version, &sample_state(67)).await;
    assert!(matches!(late, Err(Error::Conflict { .. })), "{late:?}");
    // Nor can it start again: its view refuses to load what it no longer holds.
    let reload = fenced1.load(&id).await;
    assert!(
        matches!(&reload, Err(Error::Conflict { message }) if message.contains("taken over")),
        "{reload:?}"
    );
    let stored = store.load(&id).await.unwrap();
    assert_eq!(
        (stored.version, stored.value),
        (v, sample_state(2)),
        "w2's state stands"
    );
    // w2 can go on saving through its view (its token follows its saves).
    fenced2.load(&id).await.unwrap();
    fenced2.save(&id, v, &sample_state(3)).await.unwrap();
    // And a destination that was never claimed is refused by a fenced view.
    let other = fenced2.load(&d("not-claimed")).await;
    assert!(matches!(other, Err(Error::Conflict { .. })), "{other:?}");
    drop_schema(&store).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_claim_brings_the_due_siblings_of_its_host_schedule() {
    let Some(store) = fresh_store("siblings").await else {
        return;
    };
    for (id, schedule) in [("a-og", "s1"), ("a-pd", "s1"), ("b-og", "s2")] {
        store
            .enroll(
                &postgres_support::destination(&d(id)),
                &ScheduleId(schedule.into()),
            )
            .await
            .unwrap();
    }
    let claims = store.claim_due("w1", 1, LONG).await.unwrap();
    let mut got: Vec<(String, String)> = claims
        .iter()
        .map(|c| (c.destination.0.clone(), c.schedule.clone().unwrap().0))
        .collect();
    got.sort();
    assert_eq!(
        got,
        vec![("a-og".into(), "s1".into()), ("a-pd".into(), "s1".into())],
        "one destination asked for, its schedule's other due destination with it"
    );
    let rest = store.claim_due("w2", 5, LONG).await.unwrap();
    assert_eq!(rest.len(), 1);
    assert_eq!(rest[0].destination, d("b-og"));
    drop_schema(&store).await;
}

/// A worker's claim of a destination expires (its renewals did not get through), and the same
/// worker claims the destination again. The first claim's late renewal and release (its run
/// ending after all) must not touch the second claim: it stays held, by the second claim only.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_late_release_of_an_old_claim_leaves_a_newer_claim_of_the_same_holder_alone() {
    let Some(store) = fresh_store("late_release").await else {
        return;
    };
    let id = d("og-primary");
    store
        .enroll(
            &postgres_support::destination(&id),
            &ScheduleId("platform".into()),
        )
        .await
        .unwrap();
    let old = store
        .claim_due("w1", 1, Duration::from_millis(100))
        .await
        .unwrap();
    tokio::time::sleep(Duration::from_millis(200)).await; // w1's first claim expires
    let new = store.claim_due("w1", 1, LONG).await.unwrap();
    assert_eq!(new.len(), 1, "the expired claim is claimable again");
    assert_ne!(old[0].id, new[0].id, "each claim has a number of its own");

    let renewed = store.renew("w1", &old, LONG).await.unwrap();
    assert!(
        renewed.is_empty(),
        "the old claim is not renewed: {renewed:?}"
    );
    assert!(
        !store
            .release("w1", &old[0], Duration::ZERO, 0)
            .await
            .unwrap(),
        "the old claim's release changes nothing"
    );
    assert!(
        store.claim_due("w2", 10, LONG).await.unwrap().is_empty(),
        "the newer claim still holds the destination"
    );
    assert_eq!(
        store.renew("w1", &new, LONG).await.unwrap(),
        vec![id.clone()]
    );
    assert!(store
        .release("w1", &new[0], Duration::ZERO, 0)
        .await
        .unwrap());
    assert!(
        !store
            .release("w1", &new[0], Duration::ZERO, 0)
            .await
            .unwrap(),
        "a claim is released once"
    );
    drop_schema(&store).await;
}

/// A command line claims destinations by name, due or not: a destination under another holder's
/// live lease is refused and left alone; one enrolled nowhere (or never stored) is claimed too;
/// giving a claim back leaves the due time and the failure count as they were.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn claims_by_name_refuse_live_leases_of_others_and_give_back_leaves_the_schedule() {
    let Some(store) = fresh_store("claim_now").await else {
        return;
    };
    let (held, later, unknown) = (d("held"), d("later"), d("unknown"));
    for id in [&held, &later] {
        store
            .enroll(&postgres_support::destination(id), &ScheduleId("s".into()))
            .await
            .unwrap();
    }
    // `later` is released by a worker due in an hour after two failures; `held` is a worker's.
    let first = store.claim_due("w1", 10, LONG).await.unwrap();
    let later_claim = first.iter().find(|c| c.destination == later).unwrap();
    let held_claim = first.iter().find(|c| c.destination == held).unwrap();
    assert!(store
        .release("w1", later_claim, Duration::from_secs(3600), 2)
        .await
        .unwrap());

    let (claims, refused) = store
        .claim_now(
            "cli-1",
            &[held.clone(), later.clone(), unknown.clone()],
            LONG,
        )
        .await
        .unwrap();
    assert_eq!(
        refused,
        vec![oncall_sync::postgres::HeldElsewhere {
            destination: held.clone(),
            holder: "w1".into()
        }]
    );
    let mut got: Vec<(&str, Option<&str>)> = claims
        .iter()
        .map(|c| {
            (
                c.destination.0.as_str(),
                c.schedule.as_ref().map(|s| s.0.as_str()),
            )
        })
        .collect();
    got.sort();
    assert_eq!(got, vec![("later", Some("s")), ("unknown", None)]);
    let later_now = claims.iter().find(|c| c.destination == later).unwrap();
    assert!(
        later_now.token > later_claim.token,
        "a claim raises the version"
    );
    assert_eq!(later_now.failures, 2);
    // The worker's lease is untouched; nobody else gets the command line's claims meanwhile.
    assert_eq!(
        store
            .renew("w1", std::slice::from_ref(held_claim), LONG)
            .await
            .unwrap(),
        vec![held.clone()]
    );
    let (none, refused) = store
        .claim_now("cli-2", std::slice::from_ref(&later), LONG)
        .await
        .unwrap();
    assert!(none.is_empty());
    assert_eq!(refused[0].holder, "cli-1");
    // Through the claims' fenced view, even the destination never stored before saves.
    let fenced = store.fenced(&claims);
    let loaded = fenced.load(&unknown).await.unwrap();
    fenced
        .save(&unknown, loaded.version, &sample_state(5))
        .await
        .unwrap();

    for claim in &claims {
        assert!(store.give_back("cli-1", claim).await.unwrap());
        assert!(!store.give_back("cli-1", claim).await.unwrap(), "once");
    }
    assert!(
        store.claim_due("w2", 10, LONG).await.unwrap().is_empty(),
        "given back, `later` is still due in an hour and `unknown` enrolled nowhere"
    );
    let client = store.pool().get().await.unwrap();
    let row = client
        .query_one(
            &format!(
                "SELECT extract(epoch FROM due_at - now())::float8, failures, holder, schedule \
                 FROM {} WHERE destination = 'later'",
                store.table()
            ),
            &[],
        )
        .await
        .unwrap();
    let (due, failures, holder): (f64, i32, Option<String>) = (row.get(0), row.get(1), row.get(2));
    assert!((3500.0..=3600.0).contains(&due), "due as it was: {due}");
    assert_eq!((failures, holder), (2, None));
    assert_eq!(store.load(&unknown).await.unwrap().value, sample_state(5));
    drop(client);
    drop_schema(&store).await;
}

/// Bug 1 of issue 16: a `sync_soon` made while a worker holds the destination (the host changed
/// its rota mid-run) must not be lost when the run releases it with the next period: the run
/// read the rota before the change, so the destination runs again right after.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_sync_requested_while_held_runs_again_right_after_the_release() {
    let Some(store) = fresh_store("soon_while_held").await else {
        return;
    };
    let (asked, quiet) = (d("asked"), d("quiet"));
    for id in [&asked, &quiet] {
        store
            .enroll(
                &postgres_support::destination(id),
                &ScheduleId(id.0.clone()),
            )
            .await
            .unwrap();
    }
    let claims = store.claim_due("w1", 10, LONG).await.unwrap();
    assert_eq!(claims.len(), 2);
    // Mid-run, the host asks for `asked` again.
    assert_eq!(
        store.sync_soon(std::slice::from_ref(&asked)).await.unwrap(),
        1
    );
    for claim in &claims {
        assert!(store
            .release("w1", claim, Duration::from_secs(3600), 0)
            .await
            .unwrap());
    }
    let again = store.claim_due("w2", 10, LONG).await.unwrap();
    let again: Vec<&DestinationId> = again.iter().map(|c| &c.destination).collect();
    assert_eq!(
        again,
        vec![&asked],
        "the request made during the run is due at once; the other waits its period"
    );
    drop_schema(&store).await;
}

/// Bug 2 of issue 16: a holder with the same name (two command lines that are both `cli-1`, as
/// pids are in containers) must not take a live lease: only an expired one is taken.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_holder_of_the_same_name_does_not_take_a_live_lease() {
    let Some(store) = fresh_store("same_name").await else {
        return;
    };
    let id = d("og-primary");
    let (first, refused) = store
        .claim_now("cli-1", std::slice::from_ref(&id), LONG)
        .await
        .unwrap();
    assert_eq!((first.len(), refused.len()), (1, 0));
    let (second, refused) = store
        .claim_now("cli-1", std::slice::from_ref(&id), LONG)
        .await
        .unwrap();
    assert!(
        second.is_empty(),
        "a second claim under the same name took the live lease: {second:?}"
    );
    assert_eq!(refused.len(), 1);
    drop_schema(&store).await;
}

/// Renewals lock their rows in the order of the destinations' ids, as claims by name do: the
/// two never wait for each other in a circle (PostgreSQL would abort one as a deadlock). The rows
/// are stored in the reverse order of their ids, so that an unordered renewal (the table's order)
/// and a claim by name (the ids' order) meet from opposite ends.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn renewals_and_claims_by_name_never_deadlock() {
    let Some(store) = fresh_store("renew_order").await else {
        return;
    };
    let url = database_url("renew_order").unwrap();
    let ids: Vec<DestinationId> = (0..40).rev().map(|i| d(&format!("d{i:02}"))).collect();
    for id in &ids {
        // One statement each: stored d39 first, d00 last.
        store
            .enroll(&postgres_support::destination(id), &ScheduleId("s".into()))
            .await
            .unwrap();
    }
    let (claims, _) = store.claim_now("w1", &ids, LONG).await.unwrap();
    let (renewer, claimer) = (
        store_in(&url, store.schema()).await,
        store_in(&url, store.schema()).await,
    );
    let until = std::time::Instant::now() + Duration::from_secs(3);
    let renewing = tokio::spawn(async move {
        let mut renewals = 0;
        while std::time::Instant::now() < until {
            let kept = renewer.renew("w1", &claims, LONG).await.unwrap();
            assert_eq!(kept.len(), 40);
            renewals += 1;
        }
        renewals
    });
    let claiming = tokio::spawn(async move {
        let mut claims_by_name = 0;
        while std::time::Instant::now() < until {
            let (got, held) = claimer.claim_now("cli", &ids, LONG).await.unwrap();
            assert!(got.is_empty() && held.len() == 40);
            claims_by_name += 1;
        }
        claims_by_name
    });
    let (renewals, claims_by_name) = (renewing.await.unwrap(), claiming.await.unwrap());
    assert!(
        renewals > 10 && claims_by_name > 10,
        "{renewals} {claims_by_name}"
    );
    drop_schema(&store).await;
}

/// Each host schedule found first gets its own share of its due siblings: one that sorts
/// first does not take every sibling slot and leave the others' due siblings behind.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn each_schedule_found_first_gets_its_own_siblings() {
    let Some(store) = fresh_store("siblings_fair").await else {
        return;
    };
    let enroll = |name: String, schedule: &'static str| {
        let store = store.clone();
        async move {
            store
                .enroll(
                    &postgres_support::destination(&d(&name)),
                    &ScheduleId(schedule.into()),
                )
                .await
                .unwrap();
        }
    };
    // Due in this order: a0, b0, then a1..a9, b1, b2.
    enroll("a0".into(), "a").await;
    enroll("b0".into(), "b").await;
    for i in 1..10 {
        enroll(format!("a{i}"), "a").await;
    }
    for i in 1..3 {
        enroll(format!("b{i}"), "b").await;
    }
    let claims = store.claim_due_grouped("w", 2, 3, LONG).await.unwrap();
    let of = |schedule: &str| {
        claims
            .iter()
            .filter(|c| c.schedule.as_ref().is_some_and(|s| s.0 == schedule))
            .count()
    };
    assert_eq!(
        (of("a"), of("b")),
        (3, 3),
        "b's due siblings were left behind"
    );
    drop_schema(&store).await;
}
