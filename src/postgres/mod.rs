//! Destination state in PostgreSQL, shared by many worker processes (feature `postgres`).
//!
//! [`PostgresStateStore`] keeps one row per destination in one table: the state as `jsonb` and a
//! version that makes every save a compare-and-swap (`UPDATE … WHERE version = $n`; a lost race is
//! the core's [`Error::Conflict`]). The same rows carry what the [`worker`](crate::worker) needs to
//! share destinations between processes: the host schedule a destination belongs to, when it is due,
//! and a lease ([`leases`](PostgresStateStore::claim_due)).
//!
//! ```no_run
//! use oncall_sync::postgres::PostgresStateStore;
//! # async fn demo() -> Result<(), oncall_sync::Error> {
//! let store = PostgresStateStore::connect("postgres://oncall@db.internal/oncall").await?;
//! store.migrate().await?; // safe from many processes at once
//! # Ok(()) }
//! ```
//!
//! Connections follow libpq's `sslmode` (`prefer` by default) and `sslrootcert` (see
//! [`ConnectOptions`] and the table in the `connect` module's docs: `verify-full` with a private
//! CA works as with `psql`), with rustls on ring; every connection gets a statement timeout and
//! TCP keepalives, and every call of the store a deadline of its own. A host with client
//! certificates or its own pool builds the pool and passes it to
//! [`PostgresStateStore::from_pool`].
//!
//! # Errors
//!
//! The core's [`Error`] has no storage kind of its own: a connection that failed, timed out or was
//! refused, and any error PostgreSQL reports, is [`Error::Transient`] (a worker backs off and tries
//! again); connection settings that cannot work (a bad connection string or `sslmode`, an
//! unreadable `sslrootcert`, a server certificate that fails verification, a database that does
//! not exist) are [`Error::Unsupported`], permanent; a host's input the store cannot take (one
//! destination given twice with different descriptions) is [`Error::InvalidInput`]; a row that does not read as a state, a state format this library does not know, and a
//! schema that is missing or newer than this library are [`Error::CorruptState`]. Messages name the
//! schema, the table and the destination, never the connection's password.

mod budget;
mod connect;
mod guard;
mod leases;
mod listen;
mod migrations;
mod registry;

use std::fmt;
use std::sync::Arc;

use async_trait::async_trait;
use std::future::Future;
use std::time::Duration;

use deadpool_postgres::{Manager, ManagerConfig, Pool, RecyclingMethod};
use oncall_core::{DestinationId, DestinationState, Error, StateStore, Versioned};
use serde_json::Value;

pub use budget::PostgresRateBudget;
pub use connect::ConnectOptions;
pub use deadpool_postgres;
pub(crate) use guard::panic_message;
pub use guard::{Interrupted, LeaseOptions, LeasedGroup, LeasedProvider};
pub(crate) use leases::is_named_again;
pub use leases::{
    unique_holder, Claim, Dropped, FencedStore, HeldElsewhere, Reconciled, DEFAULT_MAX_GROUP,
};
pub use tokio_postgres;

/// The schema the store uses unless told otherwise.
pub const DEFAULT_SCHEMA: &str = "oncall_sync";

/// The format of the `state` column this library writes (and the only one it reads).
const STATE_FORMAT: i32 = 1;

/// How long one call of a store over a host's own pool may take in all.
const FROM_POOL_CALL_TIMEOUT: Duration = Duration::from_secs(35);

/// A [`StateStore`] in PostgreSQL, with the leases a [`Worker`](crate::worker::Worker) needs.
///
/// Cheap to clone: clones share the pool.
#[derive(Clone)]
pub struct PostgresStateStore {
    pool: Pool,
    sql: Arc<Sql>,
    /// How connections are opened, for the connections outside the pool (a worker's
    /// `LISTEN`); `None` over a host's own pool.
    connector: Option<Arc<connect::Connector>>,
    /// How long one call may take in all (a hung network never stalls a caller longer).
    call_timeout: Duration,
    /// The rate budget's own small pool ([`rate_budget`](Self::rate_budget)), so that vendor
    /// requests never wait for (or take) the connections of syncs, renewals and claims; `None`
    /// over a host's own pool.
    budget_pool: Option<Pool>,
}

impl fmt::Debug for PostgresStateStore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // The pool's settings hold the connection's password: only its size is shown.
        let status = self.pool.status();
        f.debug_struct("PostgresStateStore")
            .field("schema", &self.sql.schema)
            .field("pool_size", &status.size)
            .field("pool_max_size", &status.max_size)
            .finish()
    }
}

impl PostgresStateStore {
    /// Connects to the database at `url` (a `postgres://` URL or a `key=value` string, read as
    /// libpq reads it, `sslmode` and `sslrootcert` included) with the default
    /// [`ConnectOptions`]: see [`connect_with`](Self::connect_with).
    pub async fn connect(url: &str) -> Result<PostgresStateStore, Error> {
        Self::connect_with(url, ConnectOptions::default()).await
    }

    /// Connects to the database at `url` with a pool set up by `options` (its size, the
    /// statement timeout, keepalives, bounded waits), and checks that one connection works. The
    /// schema is [`DEFAULT_SCHEMA`]; call [`migrate`](Self::migrate) before the first use.
    ///
    /// Settings that cannot work (a bad URL or `sslmode`, an unreadable `sslrootcert`, a server
    /// certificate that fails verification, a database that does not exist) are
    /// [`Error::Unsupported`]; a server that cannot be
    /// reached is [`Error::Transient`].
    pub async fn connect_with(
        url: &str,
        options: ConnectOptions,
    ) -> Result<PostgresStateStore, Error> {
        let connector = Arc::new(connect::Connector::new(url, &options)?);
        // Bounded waits: a worker whose database is gone fails its step and tries again later,
        // it never hangs.
        let pool = build_pool(
            &connector,
            options.pool_size.max(1),
            options.pool_wait_timeout,
            &options,
        )?;
        // The budget's pool: a reservation that cannot get a connection soon is not worth
        // waiting for (the adapter's own pacing goes on).
        let budget_pool = build_pool(
            &connector,
            budget::POOL_SIZE,
            budget::CALL_TIMEOUT,
            &options,
        )?;
        let store = PostgresStateStore {
            pool,
            sql: Arc::new(Sql::new(DEFAULT_SCHEMA)),
            connector: Some(connector),
            call_timeout: options.call_timeout(),
            budget_pool: Some(budget_pool),
        };
        // One connection now, so that a wrong URL or password fails here rather than later.
        drop(store.client().await?);
        Ok(store)
    }

    /// A store over the host's own pool (its TLS, its pool size, its timeouts), in
    /// [`DEFAULT_SCHEMA`]. Each call gives up after 35 s; a worker over it wakes up by polling
    /// only (it has no way to open a connection of its own for `LISTEN`).
    pub fn from_pool(pool: Pool) -> PostgresStateStore {
        PostgresStateStore {
            pool,
            sql: Arc::new(Sql::new(DEFAULT_SCHEMA)),
            connector: None,
            call_timeout: FROM_POOL_CALL_TIMEOUT,
            budget_pool: None,
        }
    }

    /// The same pool, with the tables in `schema` (lowercase letters, digits and `_`, starting with
    /// a letter or `_`, at most 63 bytes; reserved words such as `user` too: the store quotes it):
    /// several deployments, or tests running in parallel, share one database without seeing each
    /// other.
    pub fn with_schema(self, schema: &str) -> Result<PostgresStateStore, Error> {
        Self::check_schema_name(schema)?;
        Ok(PostgresStateStore {
            sql: Arc::new(Sql::new(schema)),
            ..self
        })
    }

    /// Checks a schema name as [`with_schema`](Self::with_schema) does, without a store (a
    /// command line checks its arguments before it connects).
    pub fn check_schema_name(schema: &str) -> Result<(), Error> {
        let valid = !schema.is_empty()
            && schema.len() <= 63
            && schema
                .bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_')
            && !schema.as_bytes()[0].is_ascii_digit();
        if !valid {
            return Err(Error::Unsupported {
                message: format!(
                    "schema name {schema:?}: use lowercase letters, digits and _, starting with a letter or _, at most 63 bytes"
                ),
            });
        }
        Ok(())
    }

    /// The schema holding the tables.
    pub fn schema(&self) -> &str {
        &self.sql.schema
    }

    /// The pool, for a host that runs its own queries beside the store's.
    pub fn pool(&self) -> &Pool {
        &self.pool
    }

    /// The table of destination state, schema-qualified with the schema quoted
    /// (`"oncall_sync".destination_state`), as the store's statements name it.
    pub fn table(&self) -> &str {
        &self.sql.table
    }

    async fn client(&self) -> Result<deadpool_postgres::Object, Error> {
        self.pool.get().await.map_err(|e| {
            let message = |why: String| {
                format!(
                    "no PostgreSQL connection for schema {}: {why}",
                    self.sql.schema
                )
            };
            match &e {
                // Settings that cannot work: retrying would fail the same way.
                deadpool_postgres::PoolError::Backend(e)
                    if connect::is_permanent_tls_failure(e) =>
                {
                    let why = connect::tls_reason(e).unwrap_or_else(|| db_message(e));
                    Error::Unsupported {
                        message: message(format!("{why} (check sslmode and sslrootcert)")),
                    }
                }
                // A database that does not exist: the connection string is wrong, and stays so.
                deadpool_postgres::PoolError::Backend(e)
                    if e.code() == Some(&tokio_postgres::error::SqlState::INVALID_CATALOG_NAME) =>
                {
                    Error::Unsupported {
                        message: message(format!(
                            "{} (check the database name of the connection string)",
                            db_message(e)
                        )),
                    }
                }
                // The server's reason (a refused password, a server starting up) rather than the
                // client's bare "db error"; servers never echo a password.
                deadpool_postgres::PoolError::Backend(e) => Error::Transient {
                    message: message(db_message(e)),
                },
                other => Error::Transient {
                    message: message(other.to_string()),
                },
            }
        })
    }

    /// Runs one call of the store within its deadline: a call that has not ended by then is
    /// [`Error::Transient`] (its connection is dropped with it).
    async fn within<T>(
        &self,
        what: &str,
        call: impl Future<Output = Result<T, Error>>,
    ) -> Result<T, Error> {
        match tokio::time::timeout(self.call_timeout, call).await {
            Ok(result) => result,
            Err(_) => Err(Error::Transient {
                message: format!(
                    "{what} in schema {}: no answer from PostgreSQL within {} s",
                    self.sql.schema,
                    self.call_timeout.as_secs()
                ),
            }),
        }
    }

    /// Maps a PostgreSQL error: a missing table means the schema was never migrated.
    fn db_error(&self, what: &str, e: tokio_postgres::Error) -> Error {
        use tokio_postgres::error::SqlState;
        let missing = e.code().is_some_and(|c| {
            *c == SqlState::UNDEFINED_TABLE || *c == SqlState::INVALID_SCHEMA_NAME
        });
        if missing {
            return Error::CorruptState {
                message: format!(
                    "{what}: table {} does not exist: call PostgresStateStore::migrate first",
                    self.sql.table
                ),
            };
        }
        Error::Transient {
            message: format!("{what} in {}: {}", self.sql.table, db_message(&e)),
        }
    }

    fn corrupt(&self, destination: &DestinationId, why: impl fmt::Display) -> Error {
        Error::CorruptState {
            message: format!(
                "state of destination {destination} in table {}: {why}",
                self.sql.table
            ),
        }
    }

    /// Reads a row's version and state (version 0 and the default state when there is none).
    fn read_state(
        &self,
        destination: &DestinationId,
        row: Option<&tokio_postgres::Row>,
    ) -> Result<Versioned<DestinationState>, Error> {
        let Some(row) = row else {
            return Ok(Versioned {
                version: 0,
                value: DestinationState::default(),
            });
        };
        let version = version_of(
            row.try_get::<_, i64>(0)
                .map_err(|e| self.corrupt(destination, e))?,
        );
        let format: Option<i32> = row.try_get(1).map_err(|e| self.corrupt(destination, e))?;
        let state: Option<Value> = row.try_get(2).map_err(|e| self.corrupt(destination, e))?;
        let value = match (format, state) {
            // Enrolled for a worker (or claimed) but never saved.
            (_, None) => DestinationState::default(),
            (Some(STATE_FORMAT), Some(json)) => serde_json::from_value(json)
                .map_err(|e| self.corrupt(destination, format!("not a destination state: {e}")))?,
            (format, Some(_)) => {
                return Err(self.corrupt(
                    destination,
                    format!(
                    "state format {format:?} is unknown to this library (it writes {STATE_FORMAT})"
                ),
                ))
            }
        };
        Ok(Versioned { version, value })
    }

    fn conflict(&self, destination: &DestinationId, expected: u64, what: &str) -> Error {
        Error::Conflict {
            message: format!(
                "state of destination {destination} is no longer at version {expected}: another \
                 worker {what} first (or took the destination over)"
            ),
        }
    }
}

impl PostgresStateStore {
    async fn load_now(
        &self,
        destination: &DestinationId,
    ) -> Result<Versioned<DestinationState>, Error> {
        let client = self.client().await?;
        let row = client
            .query_opt(&self.sql.load, &[&destination.0])
            .await
            .map_err(|e| self.db_error(&format!("loading destination {destination}"), e))?;
        self.read_state(destination, row.as_ref())
    }

    async fn save_now(
        &self,
        destination: &DestinationId,
        expected: u64,
        state: &DestinationState,
    ) -> Result<u64, Error> {
        let Ok(expected_db) = i64::try_from(expected) else {
            return Err(self.conflict(destination, expected, "saved"));
        };
        let json = serde_json::to_value(state).map_err(|e| Error::InvalidResponse {
            message: format!("state of destination {destination} does not serialise: {e}"),
        })?;
        let client = self.client().await?;
        let what = format!("saving destination {destination}");
        let row = if expected == 0 {
            client
                .query_opt(&self.sql.insert, &[&destination.0, &STATE_FORMAT, &json])
                .await
        } else {
            client
                .query_opt(
                    &self.sql.update,
                    &[&destination.0, &expected_db, &STATE_FORMAT, &json],
                )
                .await
        }
        .map_err(|e| self.db_error(&what, e))?;
        match row {
            Some(row) => Ok(version_of(
                row.try_get(0).map_err(|e| self.db_error(&what, e))?,
            )),
            None => Err(self.conflict(destination, expected, "saved")),
        }
    }

    async fn remove_now(&self, destination: &DestinationId, expected: u64) -> Result<(), Error> {
        let Ok(expected_db) = i64::try_from(expected) else {
            return Err(self.conflict(destination, expected, "saved"));
        };
        let client = self.client().await?;
        let what = format!("removing destination {destination}");
        let deleted = client
            .execute(&self.sql.remove, &[&destination.0, &expected_db])
            .await
            .map_err(|e| self.db_error(&what, e))?;
        if deleted == 1 {
            return Ok(());
        }
        // Nothing deleted: fine for an unknown destination at version 0, a lost race otherwise.
        let exists = client
            .query_opt(&self.sql.load, &[&destination.0])
            .await
            .map_err(|e| self.db_error(&what, e))?
            .is_some();
        if !exists && expected == 0 {
            Ok(())
        } else {
            Err(self.conflict(destination, expected, "saved"))
        }
    }
}

#[async_trait]
impl StateStore for PostgresStateStore {
    async fn load(
        &self,
        destination: &DestinationId,
    ) -> Result<Versioned<DestinationState>, Error> {
        self.within("loading a destination", self.load_now(destination))
            .await
    }

    async fn save(
        &self,
        destination: &DestinationId,
        expected: u64,
        state: &DestinationState,
    ) -> Result<u64, Error> {
        self.within(
            "saving a destination",
            self.save_now(destination, expected, state),
        )
        .await
    }

    async fn remove(&self, destination: &DestinationId, expected: u64) -> Result<(), Error> {
        self.within(
            "removing a destination",
            self.remove_now(destination, expected),
        )
        .await
    }
}

/// A pool of at most `size` connections opened by `connector`, whose callers wait at most
/// `wait` for one.
fn build_pool(
    connector: &Arc<connect::Connector>,
    size: usize,
    wait: Duration,
    options: &ConnectOptions,
) -> Result<Pool, Error> {
    let manager = Manager::from_connect(
        tokio_postgres::Config::new(),
        connect::PoolConnect(connector.clone()),
        ManagerConfig {
            recycling_method: RecyclingMethod::Fast,
        },
    );
    Pool::builder(manager)
        .max_size(size)
        .runtime(deadpool_postgres::Runtime::Tokio1)
        .wait_timeout(Some(wait))
        .create_timeout(Some(options.connect_timeout * 2))
        .recycle_timeout(Some(options.connect_timeout))
        .build()
        .map_err(|e| Error::Transient {
            message: format!("cannot build a PostgreSQL pool: {e}"),
        })
}

/// The `LISTEN`/`NOTIFY` channel of a schema's wake-ups: a fixed tag and a hash of the schema
/// (FNV-1a: stable across releases; channel names are at most 63 bytes, schema names too).
fn channel_of(schema: &str) -> String {
    let mut hash: u64 = 0xcbf2_9ce4_8422_2325;
    for byte in schema.bytes() {
        hash ^= u64::from(byte);
        hash = hash.wrapping_mul(0x0100_0000_01b3);
    }
    format!("oncall_sync_due_{hash:016x}")
}

/// A random seed from the standard library's randomly keyed hasher (no extra crate).
pub(crate) fn random_seed() -> u64 {
    use std::hash::{BuildHasher, Hasher};
    let mut hasher = std::collections::hash_map::RandomState::new().build_hasher();
    hasher.write_u64(
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_nanos() as u64),
    );
    hasher.finish()
}

/// Versions are `bigint` in the table and never negative (a check constraint says so).
fn version_of(v: i64) -> u64 {
    u64::try_from(v).unwrap_or(0)
}

/// PostgreSQL's own words for an error, where it sent some (the client's `Display` alone says
/// only "db error").
fn db_message(e: &tokio_postgres::Error) -> String {
    match e.as_db_error() {
        Some(db) => format!("{} ({})", db.message(), db.code().code()),
        None => e.to_string(),
    }
}

/// The store's statements, written once per schema.
struct Sql {
    schema: String,
    /// The schema as an identifier in SQL: quoted, so that a reserved word (`user`) is a schema
    /// name like any other (names are lowercase letters, digits and `_`: nothing to escape).
    quoted: String,
    table: String,
    load: String,
    insert: String,
    update: String,
    remove: String,
    leases: leases::LeaseSql,
}

impl Sql {
    fn new(schema: &str) -> Sql {
        let quoted = format!("\"{schema}\"");
        let table = format!("{quoted}.destination_state");
        Sql {
            load: format!("SELECT version, format, state FROM {table} WHERE destination = $1"),
            // Version 0: a new row, or one enrolled (never saved, never claimed) by a worker.
            insert: format!(
                "INSERT INTO {table} AS t (destination, version, format, state) VALUES ($1, 1, $2, $3) \
                 ON CONFLICT (destination) DO UPDATE \
                 SET version = 1, format = EXCLUDED.format, state = EXCLUDED.state, updated_at = now() \
                 WHERE t.version = 0 \
                 RETURNING version"
            ),
            update: format!(
                "UPDATE {table} SET version = version + 1, format = $3, state = $4, updated_at = now() \
                 WHERE destination = $1 AND version = $2 \
                 RETURNING version"
            ),
            remove: format!("DELETE FROM {table} WHERE destination = $1 AND version = $2"),
            leases: leases::LeaseSql::new(&quoted, &table, &channel_of(schema)),
            schema: schema.to_owned(),
            quoted,
            table,
        }
    }
}
