//! The checks every [`StateStore`] must pass, as `pub async fn`s over `&dyn StateStore`: load of an
//! unknown destination, save and load, compare-and-swap, concurrent savers (exactly one wins),
//! removal under compare-and-swap, and a corrupt entry (a typed error, never a silent default).
//!
//! ```no_run
//! # async fn demo(store: &dyn oncall_core::StateStore) {
//! use oncall_core::testkit::store_conformance;
//! store_conformance::run_all(store, "conformance-run-1", |_destination| {
//!     // Make the stored state of `_destination` unreadable, as a damaged file or row would be;
//!     // return false where the store cannot be corrupted from outside.
//!     false
//! })
//! .await;
//! # }
//! ```
//!
//! Each check uses destinations named after `prefix`, so the suite runs against a store that
//! holds other state (a shared database) and can run again with another prefix.

use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};

use chrono::{DateTime, TimeZone, Utc};

use crate::error::Error;
use crate::model::Email;
use crate::plan::{Override, OverrideId, Span};
use crate::state::{
    DestinationId, DestinationMode, DestinationState, LastRun, StateStore, WrittenOver,
};

/// Runs every check. `corrupt` makes a destination's stored state unreadable (and returns whether
/// it could); the corrupt-entry check is skipped where it returns false.
pub async fn run_all(
    store: &dyn StateStore,
    prefix: &str,
    corrupt: impl FnOnce(&DestinationId) -> bool,
) {
    loads_an_unknown_destination_as_new(store, prefix).await;
    saves_and_loads_exactly(store, prefix).await;
    refuses_a_stale_version(store, prefix).await;
    lets_one_of_many_concurrent_savers_win(store, prefix).await;
    keeps_destinations_apart(store, prefix).await;
    removes_under_compare_and_swap(store, prefix).await;
    reports_a_corrupt_entry(store, prefix, corrupt).await;
}

fn destination(prefix: &str, name: &str) -> DestinationId {
    DestinationId(format!("{prefix}-{name}"))
}

fn instant(day: u32) -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2024, 3, day, 9, 0, 0)
        .single()
        .unwrap_or_default()
}

/// A state with a mark, a ledger of two entries and a last run with an error.
pub fn sample_state(seed: u32) -> DestinationState {
    let member = |name: &str| Email::parse(&format!("{name}@example.com")).expect("valid email");
    DestinationState {
        high_water: Some(instant(10 + seed % 10)),
        ledger: vec![
            Override {
                id: OverrideId::new(format!("oncall-sync-{seed:016x}")),
                span: Span::new(instant(1), instant(2), member("ada")),
            },
            Override {
                id: OverrideId::new(format!("P{seed}XYZ")),
                span: Span::new(instant(2), instant(3), member("grace")),
            },
        ],
        last_run: Some(LastRun {
            at: instant(1),
            ok: false,
            error: Some(format!("run {seed}: rate limited; ünïcode survives")),
        }),
        // Not the default: a store that dropped the mode would fail the round trip.
        mode: if seed % 2 == 0 {
            DestinationMode::Authoritative
        } else {
            DestinationMode::Manual
        },
        home: None,
        // Not empty: a store that dropped it would fail the round trip.
        written_over: vec![WrittenOver {
            ours: OverrideId::new(format!("P{seed}XYZ")),
            theirs: OverrideId::new(format!("Q{seed}")),
        }],
    }
}

/// An unknown destination loads as version 0 with the default state.
pub async fn loads_an_unknown_destination_as_new(store: &dyn StateStore, prefix: &str) {
    let loaded = store
        .load(&destination(prefix, "never-saved"))
        .await
        .expect("load of an unknown destination succeeds");
    assert_eq!(loaded.version, 0, "an unknown destination is version 0");
    assert_eq!(loaded.value, DestinationState::default());
}

/// What is saved loads back exactly, under the version `save` returned.
pub async fn saves_and_loads_exactly(store: &dyn StateStore, prefix: &str) {
    let d = destination(prefix, "round-trip");
    let first = sample_state(1);
    let v1 = store.save(&d, 0, &first).await.expect("first save");
    let loaded = store.load(&d).await.expect("load");
    assert_eq!((loaded.version, &loaded.value), (v1, &first));
    let second = sample_state(2);
    let v2 = store.save(&d, v1, &second).await.expect("second save");
    assert!(v2 > v1, "versions grow: {v1} then {v2}");
    let loaded = store.load(&d).await.expect("load");
    assert_eq!((loaded.version, &loaded.value), (v2, &second));
}

/// A save under a version that is no longer stored is [`Error::Conflict`] and changes nothing.
pub async fn refuses_a_stale_version(store: &dyn StateStore, prefix: &str) {
    let d = destination(prefix, "stale");
    let v1 = store.save(&d, 0, &sample_state(3)).await.expect("save");
    let again = store.save(&d, 0, &sample_state(4)).await;
    assert!(
        matches!(again, Err(Error::Conflict { .. })),
        "a second creator loses with Conflict, got {again:?}"
    );
    let v2 = store.save(&d, v1, &sample_state(5)).await.expect("save");
    let stale = store.save(&d, v1, &sample_state(6)).await;
    assert!(
        matches!(stale, Err(Error::Conflict { .. })),
        "a stale version loses with Conflict, got {stale:?}"
    );
    let loaded = store.load(&d).await.expect("load");
    assert_eq!(
        (loaded.version, loaded.value),
        (v2, sample_state(5)),
        "the loser changed nothing"
    );
}

/// Many savers that loaded the same version save at once: exactly one wins, the others get
/// [`Error::Conflict`], and the stored state is the winner's.
pub async fn lets_one_of_many_concurrent_savers_win(store: &dyn StateStore, prefix: &str) {
    const SAVERS: u32 = 8;
    let d = destination(prefix, "race");
    let v = store.save(&d, 0, &sample_state(7)).await.expect("save");
    let states: Vec<DestinationState> = (0..SAVERS).map(|i| sample_state(100 + i)).collect();
    let saves: Vec<BoxedFuture<'_, Result<u64, Error>>> =
        states.iter().map(|s| store.save(&d, v, s)).collect();
    let results = JoinAll::new(saves).await;
    let winners: Vec<usize> = (0..results.len()).filter(|&i| results[i].is_ok()).collect();
    assert_eq!(winners.len(), 1, "exactly one saver wins: {results:?}");
    for (i, r) in results.iter().enumerate() {
        if i != winners[0] {
            assert!(
                matches!(r, Err(Error::Conflict { .. })),
                "the losers get Conflict, got {r:?}"
            );
        }
    }
    let loaded = store.load(&d).await.expect("load");
    assert_eq!(
        loaded.value, states[winners[0]],
        "the winner's state is stored"
    );
}

/// Two destinations' states never mix.
pub async fn keeps_destinations_apart(store: &dyn StateStore, prefix: &str) {
    let (a, b) = (
        destination(prefix, "apart-a"),
        destination(prefix, "apart-b"),
    );
    store.save(&a, 0, &sample_state(8)).await.expect("save a");
    store.save(&b, 0, &sample_state(9)).await.expect("save b");
    assert_eq!(store.load(&a).await.expect("load a").value, sample_state(8));
    assert_eq!(store.load(&b).await.expect("load b").value, sample_state(9));
}

/// `remove` is a compare-and-swap: a stale version is [`Error::Conflict`] and keeps the state; the
/// current one drops it, after which the destination loads as unknown (version 0) and can be saved
/// afresh. Removing an unknown destination at version 0 succeeds; at another version it conflicts.
/// Other destinations are untouched.
pub async fn removes_under_compare_and_swap(store: &dyn StateStore, prefix: &str) {
    let (d, other) = (destination(prefix, "removed"), destination(prefix, "kept"));
    store
        .remove(&d, 0)
        .await
        .expect("removing an unknown destination at version 0 succeeds");
    let unknown = store.remove(&d, 1).await;
    assert!(
        matches!(unknown, Err(Error::Conflict { .. })),
        "an unknown destination is at version 0, not 1: got {unknown:?}"
    );
    store
        .save(&other, 0, &sample_state(11))
        .await
        .expect("save other");
    let v1 = store.save(&d, 0, &sample_state(12)).await.expect("save");
    let v2 = store.save(&d, v1, &sample_state(13)).await.expect("save");
    let stale = store.remove(&d, v1).await;
    assert!(
        matches!(stale, Err(Error::Conflict { .. })),
        "a remove under a stale version loses with Conflict, got {stale:?}"
    );
    let loaded = store.load(&d).await.expect("load");
    assert_eq!(
        (loaded.version, loaded.value),
        (v2, sample_state(13)),
        "the refused remove kept it"
    );
    store
        .remove(&d, v2)
        .await
        .expect("remove under the current version");
    let loaded = store.load(&d).await.expect("load after remove");
    assert_eq!(loaded.version, 0, "a removed destination loads as unknown");
    assert_eq!(loaded.value, DestinationState::default());
    let again = store
        .save(&d, 0, &sample_state(14))
        .await
        .expect("save afresh after remove");
    assert_eq!(store.load(&d).await.expect("load").version, again);
    assert_eq!(
        store.load(&other).await.expect("load other").value,
        sample_state(11),
        "removing one destination leaves the others"
    );
}

/// A destination whose stored state is unreadable loads as [`Error::CorruptState`] naming it,
/// never as a default state that a sync would then overwrite.
pub async fn reports_a_corrupt_entry(
    store: &dyn StateStore,
    prefix: &str,
    corrupt: impl FnOnce(&DestinationId) -> bool,
) {
    let d = destination(prefix, "corrupt");
    store.save(&d, 0, &sample_state(10)).await.expect("save");
    if !corrupt(&d) {
        return;
    }
    let loaded = store.load(&d).await;
    match loaded {
        Err(Error::CorruptState { message }) => assert!(
            message.contains(&d.0),
            "the error names the destination: {message}"
        ),
        other => panic!("a corrupt entry is CorruptState, got {other:?}"),
    }
}

type BoxedFuture<'a, T> = Pin<Box<dyn Future<Output = T> + Send + 'a>>;

/// Polls every future until all are ready; results in order. (The core has no executor of its
/// own: this runs the savers of one check concurrently on whatever runtime drives the check.)
struct JoinAll<'a, T> {
    futures: Vec<Option<BoxedFuture<'a, T>>>,
    results: Vec<Option<T>>,
}

impl<'a, T> JoinAll<'a, T> {
    fn new(futures: Vec<BoxedFuture<'a, T>>) -> Self {
        let results = futures.iter().map(|_| None).collect();
        JoinAll {
            futures: futures.into_iter().map(Some).collect(),
            results,
        }
    }
}

// The futures are boxed and the results never pinned: moving the struct moves neither.
impl<T> Unpin for JoinAll<'_, T> {}

impl<T> Future for JoinAll<'_, T> {
    type Output = Vec<T>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Vec<T>> {
        let this = self.get_mut();
        for (slot, result) in this.futures.iter_mut().zip(this.results.iter_mut()) {
            if let Some(future) = slot {
                if let Poll::Ready(value) = future.as_mut().poll(cx) {
                    *result = Some(value);
                    *slot = None;
                }
            }
        }
        if this.futures.iter().all(Option::is_none) {
            Poll::Ready(this.results.iter_mut().filter_map(Option::take).collect())
        } else {
            Poll::Pending
        }
    }
}
