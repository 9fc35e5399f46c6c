//! A registry of connections a host application embeds (DESIGN §1.1, §1.6, R8, R9): which vendor
//! accounts it talks to, where each one's key lives, which host schedules use each one, and which
//! keys proved read-only.
//!
//! The registry is plain data with serde, so a host keeps it in its own database (or, for the CLI,
//! in its state file). It never holds a key: a [`KeyReference`] says where the key is (an
//! environment variable, a secret store's handle), and the host reads it when it builds a provider.
//!
//! ```
//! use oncall_core::connections::{
//!     Connection, ConnectionError, ConnectionRegistry, Endpoint, KeyReference, ProviderKind, Usage,
//! };
//! use oncall_core::{ConnectionId, DestinationId, ScheduleId};
//!
//! let mut registry = ConnectionRegistry::new();
//! let og = ConnectionId("og".into());
//! registry.add(Connection::new(
//!     og.clone(),
//!     ProviderKind::Opsgenie,
//!     KeyReference::EnvVar("OG_KEY".into()),
//!     Endpoint::Eu,
//! ))?;
//! registry.record_use(
//!     &og,
//!     Usage::Destination {
//!         schedule: ScheduleId("platform".into()),
//!         destination: DestinationId("og-primary".into()),
//!     },
//! )?;
//! // R9: a connection in use cannot be destroyed; the error lists the schedules using it.
//! match registry.destroy(&og) {
//!     Err(ConnectionError::InUse { schedules, .. }) => {
//!         assert_eq!(schedules, [ScheduleId("platform".into())])
//!     }
//!     other => panic!("expected InUse, got {other:?}"),
//! }
//! registry.release_schedule(&ScheduleId("platform".into()));
//! assert!(registry.destroy(&og).is_ok());
//! // Kept as JSON in the host's database, without any key.
//! let json = serde_json::to_string(&registry)?;
//! assert!(!json.contains("secret"));
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

use std::fmt;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use crate::connection::Region;
use crate::error::{Error, Resource};
use crate::model::ScheduleId;
use crate::state::DestinationId;
use crate::sync::{ConnectionId, DestinationReport, Outcome, SyncReport};

/// The vendor a connection talks to.
#[non_exhaustive]
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ProviderKind {
    /// Opsgenie (REST API v2).
    Opsgenie,
    /// PagerDuty (REST API v2).
    Pagerduty,
    /// Jira Service Management Operations (REST API v1), Opsgenie's successor.
    Jsm,
}

impl fmt::Display for ProviderKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            ProviderKind::Opsgenie => "opsgenie",
            ProviderKind::Pagerduty => "pagerduty",
            ProviderKind::Jsm => "jsm",
        })
    }
}

/// Where a connection's API key is kept: a reference the host resolves, never the key itself.
#[non_exhaustive]
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum KeyReference {
    /// The name of an environment variable holding the key.
    EnvVar(String),
    /// A handle the host resolves in its own secret store (a vault path, a row id).
    Secret(String),
}

impl fmt::Display for KeyReference {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            KeyReference::EnvVar(name) => write!(f, "environment variable {name}"),
            KeyReference::Secret(handle) => write!(f, "secret {handle}"),
        }
    }
}

/// Where a connection's vendor API lives: a region of the vendor's service, or any base URL.
#[non_exhaustive]
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Endpoint {
    /// The vendor's US service.
    Us,
    /// The vendor's EU service.
    Eu,
    /// Any other base URL (a proxy, a simulator on loopback).
    BaseUrl(String),
}

impl Endpoint {
    /// The region to give an adapter's builder.
    pub fn region(&self) -> Region {
        match self {
            Endpoint::Us => Region::Us,
            Endpoint::Eu => Region::Eu,
            Endpoint::BaseUrl(url) => Region::Custom(url.clone()),
        }
    }
}

impl fmt::Display for Endpoint {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Endpoint::Us => f.write_str("region us"),
            Endpoint::Eu => f.write_str("region eu"),
            Endpoint::BaseUrl(url) => write!(f, "{url}"),
        }
    }
}

/// How a host schedule uses a connection.
#[non_exhaustive]
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(tag = "as", rename_all = "snake_case")]
pub enum Usage {
    /// The schedule was imported from the connection (and may be again).
    Source {
        /// The host schedule.
        schedule: ScheduleId,
    },
    /// One of the schedule's destinations writes through the connection.
    Destination {
        /// The host schedule.
        schedule: ScheduleId,
        /// The destination.
        destination: DestinationId,
    },
}

impl Usage {
    /// The host schedule that uses the connection.
    pub fn schedule(&self) -> &ScheduleId {
        match self {
            Usage::Source { schedule } | Usage::Destination { schedule, .. } => schedule,
        }
    }
}

impl fmt::Display for Usage {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Usage::Source { schedule } => write!(f, "schedule {schedule} (import source)"),
            Usage::Destination {
                schedule,
                destination,
            } => write!(f, "schedule {schedule} (destination {destination})"),
        }
    }
}

/// The proof that a connection's key is read-only: a write the vendor refused for permissions
/// (R8).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ReadOnlyEvidence {
    /// When the write was refused (the sync's `now`).
    pub at: DateTime<Utc>,
    /// The destination whose write was refused.
    pub destination: DestinationId,
    /// The error, as the sync reported it.
    pub message: String,
}

/// One vendor account: provider, where its key is kept, where its API is, what uses it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Connection {
    /// The host's id for it.
    pub id: ConnectionId,
    /// The vendor.
    pub provider: ProviderKind,
    /// Where the key is kept (never the key).
    pub key: KeyReference,
    /// Where the vendor's API is.
    pub endpoint: Endpoint,
    /// Host schedules that use the connection, sorted.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub uses: Vec<Usage>,
    /// Set once a write through this connection was refused for permissions; cleared when a
    /// later write succeeds (a key with rights replaced it).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub read_only: Option<ReadOnlyEvidence>,
}

impl Connection {
    /// A connection nothing uses yet.
    pub fn new(
        id: ConnectionId,
        provider: ProviderKind,
        key: KeyReference,
        endpoint: Endpoint,
    ) -> Connection {
        Connection {
            id,
            provider,
            key,
            endpoint,
            uses: Vec::new(),
            read_only: None,
        }
    }

    /// Whether the key proved read-only (a write was refused for permissions).
    pub fn is_read_only(&self) -> bool {
        self.read_only.is_some()
    }
}

/// One line for a status display: provider, endpoint, where the key is, whether it proved
/// read-only, and what uses it.
///
/// ```
/// use oncall_core::connections::{Connection, Endpoint, KeyReference, ProviderKind};
/// use oncall_core::ConnectionId;
/// let c = Connection::new(
///     ConnectionId("pd".into()),
///     ProviderKind::Pagerduty,
///     KeyReference::EnvVar("PD_KEY".into()),
///     Endpoint::Us,
/// );
/// assert_eq!(
///     c.to_string(),
///     "pd: pagerduty, region us, key from environment variable PD_KEY; unused"
/// );
/// ```
impl fmt::Display for Connection {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{}: {}, {}, key from {}",
            self.id, self.provider, self.endpoint, self.key
        )?;
        if let Some(evidence) = &self.read_only {
            write!(
                f,
                "; key proved read-only: a write to destination {} was refused at {}",
                evidence.destination,
                evidence.at.format("%Y-%m-%d %H:%M:%SZ")
            )?;
        }
        if self.uses.is_empty() {
            return f.write_str("; unused");
        }
        f.write_str("; used by ")?;
        for (i, usage) in self.uses.iter().enumerate() {
            if i > 0 {
                f.write_str(", ")?;
            }
            write!(f, "{usage}")?;
        }
        Ok(())
    }
}

/// Why the registry refused a change.
#[non_exhaustive]
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ConnectionError {
    /// A connection with this id is registered already.
    #[error("connection {connection} already exists")]
    Duplicate {
        /// The id.
        connection: ConnectionId,
    },
    /// No connection has this id.
    #[error("no connection {connection}")]
    Unknown {
        /// The id.
        connection: ConnectionId,
    },
    /// R9: the connection is used by host schedules, as an import source or by destinations; it
    /// can be destroyed only once none does.
    #[error(
        "connection {connection} is in use and cannot be destroyed: used by {}",
        list(uses)
    )]
    InUse {
        /// The connection.
        connection: ConnectionId,
        /// Every schedule that uses it, sorted, each once.
        schedules: Vec<ScheduleId>,
        /// Every use, sorted.
        uses: Vec<Usage>,
    },
}

fn list(uses: &[Usage]) -> String {
    uses.iter()
        .map(ToString::to_string)
        .collect::<Vec<_>>()
        .join(", ")
}

impl From<ConnectionError> for Error {
    fn from(e: ConnectionError) -> Error {
        match e {
            ConnectionError::Unknown { connection } => Error::NotFound {
                resource: Resource::Other(format!("connection {connection}")),
                message: "no such connection in the registry".into(),
            },
            other => Error::Conflict {
                message: other.to_string(),
            },
        }
    }
}

/// The host's connections, by id. See the [module docs](self).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(try_from = "RegistryRepr")]
pub struct ConnectionRegistry {
    /// Sorted by id, ids unique.
    connections: Vec<Connection>,
}

#[derive(Deserialize)]
struct RegistryRepr {
    connections: Vec<Connection>,
}

impl TryFrom<RegistryRepr> for ConnectionRegistry {
    type Error = ConnectionError;
    fn try_from(repr: RegistryRepr) -> Result<Self, Self::Error> {
        let mut registry = ConnectionRegistry::new();
        for mut connection in repr.connections {
            connection.uses.sort();
            connection.uses.dedup();
            registry.add(connection)?;
        }
        Ok(registry)
    }
}

impl ConnectionRegistry {
    /// An empty registry.
    pub fn new() -> ConnectionRegistry {
        ConnectionRegistry::default()
    }

    fn position(&self, id: &ConnectionId) -> Result<usize, usize> {
        self.connections.binary_search_by(|c| c.id.cmp(id))
    }

    fn get_mut(&mut self, id: &ConnectionId) -> Result<&mut Connection, ConnectionError> {
        match self.position(id) {
            Ok(i) => Ok(&mut self.connections[i]),
            Err(_) => Err(ConnectionError::Unknown {
                connection: id.clone(),
            }),
        }
    }

    /// Registers a connection; refuses an id that is taken.
    pub fn add(&mut self, connection: Connection) -> Result<(), ConnectionError> {
        match self.position(&connection.id) {
            Ok(_) => Err(ConnectionError::Duplicate {
                connection: connection.id,
            }),
            Err(i) => {
                self.connections.insert(i, connection);
                Ok(())
            }
        }
    }

    /// The connection with this id.
    pub fn get(&self, id: &ConnectionId) -> Option<&Connection> {
        self.position(id).ok().map(|i| &self.connections[i])
    }

    /// Every connection, sorted by id.
    pub fn list(&self) -> &[Connection] {
        &self.connections
    }

    /// Records that a host schedule uses a connection (recording it twice changes nothing).
    pub fn record_use(
        &mut self,
        connection: &ConnectionId,
        usage: Usage,
    ) -> Result<(), ConnectionError> {
        let uses = &mut self.get_mut(connection)?.uses;
        if let Err(i) = uses.binary_search(&usage) {
            uses.insert(i, usage);
        }
        Ok(())
    }

    /// Forgets one use of a connection; returns whether it was recorded.
    pub fn release_use(&mut self, connection: &ConnectionId, usage: &Usage) -> bool {
        let Ok(connection) = self.get_mut(connection) else {
            return false;
        };
        match connection.uses.binary_search(usage) {
            Ok(i) => {
                connection.uses.remove(i);
                true
            }
            Err(_) => false,
        }
    }

    /// Forgets every use by a host schedule (the host deleted it), on every connection.
    pub fn release_schedule(&mut self, schedule: &ScheduleId) {
        for connection in &mut self.connections {
            connection.uses.retain(|u| u.schedule() != schedule);
        }
    }

    /// Removes a connection that no schedule uses (R9) and returns it. A connection in use is
    /// [`ConnectionError::InUse`], listing every schedule that uses it; nothing changes.
    pub fn destroy(&mut self, id: &ConnectionId) -> Result<Connection, ConnectionError> {
        let i = self.position(id).map_err(|_| ConnectionError::Unknown {
            connection: id.clone(),
        })?;
        let uses = &self.connections[i].uses;
        if !uses.is_empty() {
            let mut schedules: Vec<ScheduleId> =
                uses.iter().map(|u| u.schedule().clone()).collect();
            schedules.sort();
            schedules.dedup();
            return Err(ConnectionError::InUse {
                connection: id.clone(),
                schedules,
                uses: uses.clone(),
            });
        }
        Ok(self.connections.remove(i))
    }

    /// Learns from a sync what the keys may do (R8): a connection one of whose destinations had a
    /// write refused for permissions proved read-only; one whose destinations wrote successfully
    /// (and had nothing refused) is not, whatever it proved before. Returns the connections that
    /// newly proved read-only. Connections the registry does not hold are ignored.
    pub fn record_report(&mut self, report: &SyncReport) -> Vec<ConnectionId> {
        let mut newly = Vec::new();
        for destination in &report.destinations {
            if self.record_destination(report.now, destination) {
                newly.push(destination.connection.clone());
            }
        }
        newly.dedup();
        newly
    }

    /// [`ConnectionRegistry::record_report`] for one destination's report of a run at `at` (a
    /// sync's, or a retirement's); returns whether its connection newly proved read-only.
    pub fn record_destination(&mut self, at: DateTime<Utc>, report: &DestinationReport) -> bool {
        let Ok(connection) = self.get_mut(&report.connection) else {
            return false;
        };
        let refused = report
            .errors
            .iter()
            .find(|e| e.error.is_permission_denied());
        if let Some(refused) = refused {
            let newly = connection.read_only.is_none();
            connection.read_only = Some(ReadOnlyEvidence {
                at,
                destination: report.destination.clone(),
                message: refused.error.to_string(),
            });
            return newly;
        }
        let wrote = report
            .outcomes
            .iter()
            .any(|o| o.outcome == Outcome::Done && o.operation.is_write());
        if wrote {
            connection.read_only = None;
        }
        false
    }
}

#[cfg(test)]
mod tests {
    use chrono::TimeZone;

    use super::*;
    use crate::model::Email;
    use crate::plan::{Action, PlannedOperation, Reason, Span};
    use crate::sync::{OperationOutcome, SyncError, SyncStatus};

    fn id(s: &str) -> ConnectionId {
        ConnectionId(s.into())
    }

    fn connection(name: &str, provider: ProviderKind) -> Connection {
        Connection::new(
            id(name),
            provider,
            KeyReference::EnvVar(format!("{}_KEY", name.to_uppercase())),
            Endpoint::Us,
        )
    }

    fn destination_use(schedule: &str, destination: &str) -> Usage {
        Usage::Destination {
            schedule: ScheduleId(schedule.into()),
            destination: DestinationId(destination.into()),
        }
    }

    fn registry() -> ConnectionRegistry {
        let mut r = ConnectionRegistry::new();
        r.add(connection("pd", ProviderKind::Pagerduty)).unwrap();
        r.add(connection("og", ProviderKind::Opsgenie)).unwrap();
        r
    }

    #[test]
    fn add_list_and_refuse_duplicates() {
        let mut r = registry();
        let ids: Vec<&str> = r.list().iter().map(|c| c.id.0.as_str()).collect();
        assert_eq!(ids, ["og", "pd"], "sorted by id");
        assert_eq!(
            r.add(connection("og", ProviderKind::Pagerduty)),
            Err(ConnectionError::Duplicate {
                connection: id("og")
            })
        );
        assert_eq!(
            r.get(&id("og")).map(|c| c.provider),
            Some(ProviderKind::Opsgenie)
        );
        assert_eq!(
            r.record_use(&id("nope"), destination_use("s", "d")),
            Err(ConnectionError::Unknown {
                connection: id("nope")
            })
        );
    }

    #[test]
    fn destroy_in_use_lists_every_schedule_as_source_or_destination() {
        let mut r = registry();
        r.record_use(&id("og"), destination_use("platform", "og-primary"))
            .unwrap();
        r.record_use(&id("og"), destination_use("platform", "og-secondary"))
            .unwrap();
        r.record_use(
            &id("og"),
            Usage::Source {
                schedule: ScheduleId("imported".into()),
            },
        )
        .unwrap();
        r.record_use(&id("og"), destination_use("platform", "og-primary"))
            .unwrap();
        let before = r.clone();
        let refused = r.destroy(&id("og")).unwrap_err();
        let ConnectionError::InUse {
            schedules, uses, ..
        } = &refused
        else {
            panic!("expected InUse, got {refused:?}");
        };
        assert_eq!(
            schedules,
            &[ScheduleId("imported".into()), ScheduleId("platform".into())]
        );
        assert_eq!(
            uses.len(),
            3,
            "recording a use twice keeps it once: {uses:?}"
        );
        let message = refused.to_string();
        for needle in [
            "og",
            "schedule platform (destination og-primary)",
            "schedule imported (import source)",
        ] {
            assert!(message.contains(needle), "{needle:?} in {message}");
        }
        assert_eq!(r, before, "a refused destroy changes nothing");
        assert!(matches!(Error::from(refused), Error::Conflict { .. }));

        assert!(r.release_use(&id("og"), &destination_use("platform", "og-secondary")));
        assert!(!r.release_use(&id("og"), &destination_use("platform", "og-secondary")));
        r.release_schedule(&ScheduleId("platform".into()));
        assert!(
            r.destroy(&id("og")).is_err(),
            "the import source still uses it"
        );
        r.release_schedule(&ScheduleId("imported".into()));
        let gone = r.destroy(&id("og")).unwrap();
        assert_eq!(gone.id, id("og"));
        assert!(r.get(&id("og")).is_none());
        assert_eq!(
            r.destroy(&id("og")),
            Err(ConnectionError::Unknown {
                connection: id("og")
            })
        );
        // The other connection is untouched.
        assert!(r.destroy(&id("pd")).is_ok());
    }

    fn t(h: u32) -> DateTime<Utc> {
        Utc.with_ymd_and_hms(2024, 3, 1, h, 0, 0).unwrap()
    }

    fn create_outcome(outcome: Outcome) -> OperationOutcome {
        let span = Span::new(t(1), t(2), Email::parse("ann@example.com").unwrap());
        OperationOutcome {
            operation: PlannedOperation {
                action: Action::Create {
                    span,
                    id: None,
                    owned: true,
                    keeps_part_of: None,
                },
                reason: Reason::NewSpan,
                mark_limit: None,
            },
            outcome,
        }
    }

    fn report(
        connection: &str,
        errors: Vec<Error>,
        outcomes: Vec<OperationOutcome>,
    ) -> DestinationReport {
        let destination = DestinationId(format!("{connection}-primary"));
        DestinationReport {
            destination: destination.clone(),
            connection: id(connection),
            status: if errors.is_empty() {
                SyncStatus::Ok
            } else {
                SyncStatus::Failed
            },
            plan: None,
            outcomes,
            errors: errors
                .into_iter()
                .map(|error| SyncError {
                    destination: destination.clone(),
                    connection: id(connection),
                    operation: None,
                    error,
                })
                .collect(),
            warnings: Vec::new(),
            high_water_before: None,
            high_water_after: None,
            saved_plan: None,
            write_calls: 0,
        }
    }

    #[test]
    fn a_refused_write_proves_the_key_read_only_until_a_write_succeeds() {
        let mut r = registry();
        let denied = Error::PermissionDenied {
            message: "40301 read-only key".into(),
        };
        let sync = SyncReport {
            now: t(3),
            destinations: vec![
                report("og", vec![denied], vec![create_outcome(Outcome::Failed)]),
                report("pd", Vec::new(), vec![create_outcome(Outcome::Done)]),
            ],
        };
        assert_eq!(r.record_report(&sync), [id("og")]);
        let og = r.get(&id("og")).unwrap();
        let evidence = og.read_only.as_ref().unwrap();
        assert_eq!(
            (evidence.at, evidence.destination.0.as_str()),
            (t(3), "og-primary")
        );
        assert!(
            evidence.message.contains("read-only"),
            "{}",
            evidence.message
        );
        assert!(og.to_string().contains("key proved read-only"), "{og}");
        assert!(!r.get(&id("pd")).unwrap().is_read_only());
        // Seen again: remembered, not new.
        assert_eq!(r.record_report(&sync), Vec::<ConnectionId>::new());
        // Reads only (nothing written, nothing refused): still remembered.
        let quiet = SyncReport {
            now: t(4),
            destinations: vec![report("og", Vec::new(), Vec::new())],
        };
        r.record_report(&quiet);
        assert!(r.get(&id("og")).unwrap().is_read_only());
        // A write went through: the key was replaced by one with rights.
        let wrote = SyncReport {
            now: t(5),
            destinations: vec![report(
                "og",
                Vec::new(),
                vec![create_outcome(Outcome::Done)],
            )],
        };
        r.record_report(&wrote);
        assert!(!r.get(&id("og")).unwrap().is_read_only());
    }

    #[test]
    fn round_trips_through_json_without_keys_and_refuses_duplicate_ids() {
        let mut r = registry();
        r.record_use(&id("pd"), destination_use("platform", "pd-secondary"))
            .unwrap();
        r.get_mut(&id("pd")).unwrap().read_only = Some(ReadOnlyEvidence {
            at: t(1),
            destination: DestinationId("pd-secondary".into()),
            message: "permission denied".into(),
        });
        r.add(Connection::new(
            id("sim"),
            ProviderKind::Opsgenie,
            KeyReference::Secret("vault:ops/og".into()),
            Endpoint::BaseUrl("http://127.0.0.1:9".into()),
        ))
        .unwrap();
        let json = serde_json::to_value(&r).unwrap();
        assert_eq!(
            json["connections"][0]["key"],
            serde_json::json!({"env_var": "OG_KEY"})
        );
        assert_eq!(json["connections"][1]["endpoint"], "us");
        assert_eq!(
            json["connections"][2]["endpoint"],
            serde_json::json!({"base_url": "http://127.0.0.1:9"})
        );
        assert_eq!(json["connections"][1]["uses"][0]["as"], "destination");
        let back: ConnectionRegistry = serde_json::from_value(json).unwrap();
        assert_eq!(back, r);
        let twice = serde_json::json!({"connections": [
            {"id": "a", "provider": "opsgenie", "key": {"env_var": "A"}, "endpoint": "eu"},
            {"id": "a", "provider": "pagerduty", "key": {"env_var": "B"}, "endpoint": "us"}
        ]});
        let refused = serde_json::from_value::<ConnectionRegistry>(twice).unwrap_err();
        assert!(
            refused.to_string().contains("connection a already exists"),
            "{refused}"
        );
    }

    #[test]
    fn endpoints_map_to_regions() {
        assert_eq!(Endpoint::Us.region(), Region::Us);
        assert_eq!(Endpoint::Eu.region(), Region::Eu);
        assert_eq!(
            Endpoint::BaseUrl("http://x".into()).region(),
            Region::Custom("http://x".into())
        );
    }
}
