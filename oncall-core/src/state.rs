//! Per-destination state (the high-water mark and the ledger) and where it is kept.

use std::collections::HashMap;
use std::fmt;
use std::sync::Mutex;

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use crate::error::Error;
use crate::plan::{Override, OverrideId};

/// A host-chosen identifier of a destination (one vendor schedule plus one role).
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(transparent)]
pub struct DestinationId(pub String);

impl fmt::Display for DestinationId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// How a destination is kept in step (DESIGN §8). Chosen by the host per destination, and stored
/// with its state ([`DestinationState::mode`]) by every run that saves it.
///
/// Serialised as `"protect"`, `"authoritative"` or `"manual"`; absent means [`Protect`](Self::Protect),
/// so configs and state saved before modes existed read as they always behaved.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum DestinationMode {
    /// The rules of DESIGN §3 as written: people's last-minute vendor edits before the mark
    /// survive (R3); after it, the vendor is made to show the host's rota (R2).
    #[default]
    Protect,
    /// The host is the source of truth for all of `[now, E)`: R2 with the fresh region starting at
    /// `now`. People's overrides there are removed or cut at `now`, and our overrides a person
    /// edited are restored. History is never touched (R1).
    Authoritative,
    /// The authoritative rules, applied on demand: a sync only plans; a saved plan
    /// ([`crate::SavedPlan`]) is applied by [`crate::apply_plan`] while its preconditions hold.
    Manual,
}

impl DestinationMode {
    /// Whether the host owns all of `[now, E)` (authoritative and manual): the fresh region of R2
    /// then starts at `now`, whatever the mark.
    pub fn owns_whole_horizon(self) -> bool {
        matches!(
            self,
            DestinationMode::Authoritative | DestinationMode::Manual
        )
    }

    /// Whether a sync only plans (manual): writes wait for [`crate::apply_plan`].
    pub fn plans_only(self) -> bool {
        self == DestinationMode::Manual
    }

    /// The mode's name as the config and the JSON output spell it.
    pub fn name(self) -> &'static str {
        match self {
            DestinationMode::Protect => "protect",
            DestinationMode::Authoritative => "authoritative",
            DestinationMode::Manual => "manual",
        }
    }
}

impl fmt::Display for DestinationMode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl std::str::FromStr for DestinationMode {
    type Err = String;

    fn from_str(s: &str) -> Result<DestinationMode, String> {
        match s {
            "protect" => Ok(DestinationMode::Protect),
            "authoritative" => Ok(DestinationMode::Authoritative),
            "manual" => Ok(DestinationMode::Manual),
            other => Err(format!(
                "unknown mode {other:?}: protect, authoritative or manual"
            )),
        }
    }
}

/// How the last sync of a destination ended, for status displays.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LastRun {
    /// When it ran.
    pub at: DateTime<Utc>,
    /// Whether everything succeeded.
    pub ok: bool,
    /// The first error, as text.
    pub error: Option<String>,
}

/// What the library remembers about one destination between syncs.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct DestinationState {
    /// `H`: the instant up to which export has succeeded; `None` before the first export.
    pub high_water: Option<DateTime<Utc>>,
    /// Overrides this library created (or adopted) and still believes exist.
    pub ledger: Vec<Override>,
    /// The last sync's outcome.
    pub last_run: Option<LastRun>,
    /// The mode the destination last saved under (DESIGN §8). A run whose destination has another
    /// mode warns of the change ([`crate::Warning::ModeChanged`]); a saved plan's state digest
    /// covers it. State saved before modes existed reads as [`DestinationMode::Protect`], which is
    /// how it was synced.
    #[serde(default)]
    pub mode: DestinationMode,
    /// The connection and vendor schedule the mark and ledger belong to (the ledger's ids are
    /// that schedule's): set by the first sync, moved by [`crate::migrate`]. A sync through
    /// another is refused. `None` in states saved before it was kept: the next sync sets it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub home: Option<LedgerHome>,
    /// Overrides of ours written while a person's override was live under them (DESIGN §8): where
    /// the two overlap the vendor shows ours, the newer. Drift reads it to say what the vendor
    /// shows, not only what it holds; entries go with ours when it leaves the ledger.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub written_over: Vec<WrittenOver>,
}

/// Where a destination's mark and ledger belong: see [`DestinationState::home`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LedgerHome {
    /// The connection.
    pub connection: crate::sync::ConnectionId,
    /// The vendor schedule of that connection.
    pub schedule: crate::provider::VendorScheduleId,
}

impl fmt::Display for LedgerHome {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "schedule {} of connection {}",
            self.schedule, self.connection
        )
    }
}

/// One of ours written over a person's override (see [`DestinationState::written_over`]).
///
/// Where overrides overlap the vendor shows the last created: PagerDuty documents it, and it is
/// the reading Opsgenie and JSM Operations are simulated with by default (their precedence is
/// UNCONFIRMED; under a first-created reading the person's override would still show, and drift
/// would say it no longer does).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct WrittenOver {
    /// Ours, the newer.
    pub ours: OverrideId,
    /// The person's, live under it when ours was created.
    pub theirs: OverrideId,
}

/// A value with the version it was stored under (0: never stored).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Versioned<T> {
    /// The store's version.
    pub version: u64,
    /// The value.
    pub value: T,
}

/// Where destination state lives (a database row, a file, memory).
///
/// # Contract
///
/// `save` is a compare-and-swap: it succeeds only if the stored version still equals `expected`, and
/// returns the new version. Otherwise it fails with [`Error::Conflict`], so two workers syncing the
/// same destination cannot both win. `load` of an unknown destination gives version 0 and the default
/// state. `remove` is a compare-and-swap too: it drops a destination's state (a destination the host
/// retired, [`crate::sync::retire`]) only if its version is still `expected`; afterwards the destination loads
/// as unknown. Removing an unknown destination at version 0 succeeds and changes nothing.
///
/// A store whose stored state is unreadable answers [`Error::CorruptState`] naming what it cannot
/// read, and never replaces it with a default. `testkit::store_conformance` (feature `testkit`)
/// checks all of this.
#[async_trait]
pub trait StateStore: Send + Sync {
    /// Reads a destination's state.
    async fn load(&self, destination: &DestinationId)
        -> Result<Versioned<DestinationState>, Error>;

    /// Writes a destination's state if its version is still `expected`.
    async fn save(
        &self,
        destination: &DestinationId,
        expected: u64,
        state: &DestinationState,
    ) -> Result<u64, Error>;

    /// Drops a destination's state if its version is still `expected` (see the contract above).
    async fn remove(&self, destination: &DestinationId, expected: u64) -> Result<(), Error>;
}

/// A [`StateStore`] in memory, for tests, demos and hosts that keep state themselves.
#[derive(Debug, Default)]
pub struct InMemoryStateStore {
    states: Mutex<HashMap<DestinationId, Versioned<DestinationState>>>,
}

impl InMemoryStateStore {
    /// An empty store.
    pub fn new() -> InMemoryStateStore {
        InMemoryStateStore::default()
    }

    fn lock(
        &self,
    ) -> std::sync::MutexGuard<'_, HashMap<DestinationId, Versioned<DestinationState>>> {
        // A panic elsewhere while holding the lock leaves plain data behind: still usable.
        self.states.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// The stored state of a destination, if any.
    pub fn get(&self, destination: &DestinationId) -> Option<DestinationState> {
        self.lock().get(destination).map(|v| v.value.clone())
    }
}

#[async_trait]
impl StateStore for InMemoryStateStore {
    async fn load(
        &self,
        destination: &DestinationId,
    ) -> Result<Versioned<DestinationState>, Error> {
        Ok(self.lock().get(destination).cloned().unwrap_or(Versioned {
            version: 0,
            value: DestinationState::default(),
        }))
    }

    async fn save(
        &self,
        destination: &DestinationId,
        expected: u64,
        state: &DestinationState,
    ) -> Result<u64, Error> {
        let mut states = self.lock();
        let current = states.get(destination).map_or(0, |v| v.version);
        if current != expected {
            return Err(Error::Conflict {
                message: format!(
                    "state of destination {destination} is at version {current}, not {expected}: another sync saved first"
                ),
            });
        }
        let version = current + 1;
        states.insert(
            destination.clone(),
            Versioned {
                version,
                value: state.clone(),
            },
        );
        Ok(version)
    }

    async fn remove(&self, destination: &DestinationId, expected: u64) -> Result<(), Error> {
        let mut states = self.lock();
        let current = states.get(destination).map_or(0, |v| v.version);
        if current != expected {
            return Err(Error::Conflict {
                message: format!(
                    "state of destination {destination} is at version {current}, not {expected}: another sync saved first"
                ),
            });
        }
        states.remove(destination);
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn block_on<F: std::future::Future>(f: F) -> F::Output {
        // The store never awaits anything pending, so one poll finishes it.
        let waker = std::task::Waker::noop();
        let mut cx = std::task::Context::from_waker(waker);
        let mut f = std::pin::pin!(f);
        match f.as_mut().poll(&mut cx) {
            std::task::Poll::Ready(v) => v,
            std::task::Poll::Pending => panic!("the in-memory store never waits"),
        }
    }

    #[test]
    fn compare_and_swap() {
        let store = InMemoryStateStore::new();
        let d = DestinationId("d".into());
        let first = block_on(store.load(&d)).unwrap();
        assert_eq!(first.version, 0);
        let state = DestinationState {
            high_water: Some(DateTime::<Utc>::UNIX_EPOCH),
            ..DestinationState::default()
        };
        assert_eq!(block_on(store.save(&d, 0, &state)), Ok(1));
        // A second worker that loaded version 0 loses.
        let lost = block_on(store.save(&d, 0, &DestinationState::default()));
        assert!(matches!(lost, Err(Error::Conflict { .. })), "{lost:?}");
        assert_eq!(
            store.get(&d),
            Some(state.clone()),
            "the loser changed nothing"
        );
        assert_eq!(block_on(store.save(&d, 1, &state)), Ok(2));
    }

    #[test]
    fn remove_is_a_compare_and_swap() {
        let store = InMemoryStateStore::new();
        let d = DestinationId("d".into());
        assert_eq!(
            block_on(store.remove(&d, 0)),
            Ok(()),
            "unknown at 0: nothing to do"
        );
        assert!(matches!(
            block_on(store.remove(&d, 3)),
            Err(Error::Conflict { .. })
        ));
        let state = DestinationState {
            high_water: Some(DateTime::<Utc>::UNIX_EPOCH),
            ..DestinationState::default()
        };
        assert_eq!(block_on(store.save(&d, 0, &state)), Ok(1));
        let stale = block_on(store.remove(&d, 0));
        assert!(matches!(stale, Err(Error::Conflict { .. })), "{stale:?}");
        assert_eq!(
            store.get(&d),
            Some(state),
            "a refused remove keeps the state"
        );
        assert_eq!(block_on(store.remove(&d, 1)), Ok(()));
        assert_eq!(store.get(&d), None);
        assert_eq!(block_on(store.load(&d)).map(|v| v.version), Ok(0));
    }

    #[test]
    fn state_round_trips_through_json() {
        let state = DestinationState {
            high_water: Some(DateTime::<Utc>::UNIX_EPOCH),
            ledger: Vec::new(),
            last_run: Some(LastRun {
                at: DateTime::<Utc>::UNIX_EPOCH,
                ok: false,
                error: Some("boom".into()),
            }),
            mode: DestinationMode::Authoritative,
            home: Some(LedgerHome {
                connection: crate::sync::ConnectionId("og".into()),
                schedule: crate::provider::VendorScheduleId("S".into()),
            }),
            written_over: vec![WrittenOver {
                ours: OverrideId::new("P1"),
                theirs: OverrideId::new("P2"),
            }],
        };
        let json = serde_json::to_string(&state).unwrap();
        assert!(json.contains(r#""mode":"authoritative""#), "{json}");
        assert!(
            json.contains(r#""written_over":[{"ours":"P1","theirs":"P2"}]"#),
            "{json}"
        );
        assert_eq!(
            serde_json::from_str::<DestinationState>(&json).unwrap(),
            state
        );
        // A state saved before the home was kept reads without one.
        let old = r#"{"high_water": null, "ledger": [], "last_run": null}"#;
        assert_eq!(
            serde_json::from_str::<DestinationState>(old).unwrap(),
            DestinationState::default()
        );
    }

    #[test]
    fn state_saved_before_modes_reads_as_protect() {
        let old = r#"{"high_water":"1970-01-01T00:00:00Z","ledger":[],"last_run":null}"#;
        let state: DestinationState = serde_json::from_str(old).unwrap();
        assert_eq!(state.mode, DestinationMode::Protect);
        assert_eq!(state.high_water, Some(DateTime::<Utc>::UNIX_EPOCH));
    }

    #[test]
    fn modes_parse_and_print_as_the_config_spells_them() {
        for mode in [
            DestinationMode::Protect,
            DestinationMode::Authoritative,
            DestinationMode::Manual,
        ] {
            assert_eq!(mode.name().parse::<DestinationMode>(), Ok(mode));
            assert_eq!(serde_json::to_string(&mode).unwrap(), format!("\"{mode}\""));
        }
        assert!("Manual".parse::<DestinationMode>().is_err());
        assert_eq!(DestinationMode::default(), DestinationMode::Protect);
    }
}
