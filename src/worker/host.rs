//! What only the host knows: its schedules, where they go, and a provider per connection.

use std::sync::Arc;

use async_trait::async_trait;
use chrono::{DateTime, TimeDelta, Utc};
use oncall_core::{ConnectionId, Destination, Error, Provider, Schedule, ScheduleId};

/// A host schedule as a worker syncs it.
#[derive(Debug, Clone)]
pub struct HostSchedule {
    /// Who is on call when.
    pub schedule: Schedule,
    /// Where its roles are exported (the worker syncs those it claimed, by id).
    pub destinations: Vec<Destination>,
    /// How far ahead to export (`None`: every shift), as in `SyncOptions::horizon`.
    pub horizon: Option<TimeDelta>,
}

/// The host application, as a [`Worker`](super::Worker) asks it for what only it knows.
///
/// Called from many tasks at once; answers should come from the host's own database or cache.
#[async_trait]
pub trait Host: Send + Sync + 'static {
    /// The host schedule with this id, with its destinations; `None` when the host does not
    /// have it. A schedule or destination the answer leaves out is kept enrolled and tried again
    /// later with a failure's backoff (one answer, from a lagging replica say, never drops it):
    /// the host takes destinations out of the workers' hands with
    /// [`reconcile`](crate::postgres::PostgresStateStore::reconcile). An error is retried later,
    /// with backoff.
    async fn schedule(&self, id: &ScheduleId) -> Result<Option<HostSchedule>, Error>;

    /// The provider of a connection (built once and kept by the host: providers pace their
    /// requests per connection, and keep a connection pool).
    async fn provider(&self, connection: &ConnectionId) -> Result<Arc<dyn Provider>, Error>;

    /// The instant a sync runs at. The system clock unless the host says otherwise (tests run
    /// against a simulated vendor's clock).
    fn now(&self) -> DateTime<Utc> {
        // The worker is the host's process: reading the clock here is its job (the core never does).
        #[allow(clippy::disallowed_methods)]
        Utc::now()
    }
}
