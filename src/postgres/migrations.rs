//! The store's schema, as numbered migrations shipped in the crate, and `migrate()`.

use oncall_core::Error;

use super::{db_message, PostgresStateStore};

/// The migrations, in order. A migration, once released, never changes: a new one is added.
/// `{schema}` stands for the store's schema, quoted.
const MIGRATIONS: &[(i32, &str)] = &[
    (
        1,
        "CREATE TABLE {schema}.destination_state (
        -- The host's destination id.
        destination      text PRIMARY KEY,
        -- Grows on every save and every claim: the compare-and-swap version and the fencing token.
        version          bigint NOT NULL DEFAULT 0 CHECK (version >= 0),
        -- The format of `state` (1: the core's DestinationState as JSON); NULL while never saved.
        format           integer,
        state            jsonb,
        -- For workers: the host schedule the destination belongs to (NULL: not enrolled) ...
        schedule         text,
        -- ... when it is due next (NULL: not scheduled) ...
        due_at           timestamptz,
        -- ... who holds it, until when, and how many runs in a row failed.
        holder           text,
        lease_expires_at timestamptz,
        failures         integer NOT NULL DEFAULT 0,
        updated_at       timestamptz NOT NULL DEFAULT now()
    );
    CREATE INDEX destination_state_due ON {schema}.destination_state (due_at)
        WHERE due_at IS NOT NULL;",
    ),
    (
        2,
        "-- The host's connection registry (which keys proved read-only), as one JSON document.
    CREATE TABLE {schema}.connection_registry (
        id         boolean PRIMARY KEY DEFAULT true CHECK (id),
        registry   jsonb NOT NULL,
        updated_at timestamptz NOT NULL DEFAULT now()
    );",
    ),
    (
        3,
        "-- Each claim gets a number of its own; renewals and releases name it, so that a late
    -- release of an old claim cannot end a newer claim of the same holder.
    CREATE SEQUENCE {schema}.claim_ids;
    ALTER TABLE {schema}.destination_state ADD COLUMN claim_id bigint;",
    ),
    (
        4,
        "-- Sync requests: each sync_soon counts one; a release that finds more than its claim saw
    -- makes the destination due at once (a request made during a run is not lost).
    ALTER TABLE {schema}.destination_state ADD COLUMN requests bigint NOT NULL DEFAULT 0;
    ALTER TABLE {schema}.destination_state ADD COLUMN claimed_requests bigint;
    -- The destination as the host enrolled it (the core's Destination as JSON), so that a
    -- destination the host no longer names can still be retired.
    ALTER TABLE {schema}.destination_state ADD COLUMN target jsonb;
    -- Set by a reconcile that retires the destinations a host schedule no longer names.
    ALTER TABLE {schema}.destination_state ADD COLUMN retiring boolean NOT NULL DEFAULT false;
    -- Claims look for due rows nobody holds, for expired leases, and for a schedule's due rows.
    DROP INDEX {schema}.destination_state_due;
    CREATE INDEX destination_state_free_due ON {schema}.destination_state (due_at)
        WHERE schedule IS NOT NULL AND holder IS NULL;
    CREATE INDEX destination_state_leases ON {schema}.destination_state (lease_expires_at)
        WHERE holder IS NOT NULL;
    CREATE INDEX destination_state_schedule ON {schema}.destination_state (schedule, due_at)
        WHERE schedule IS NOT NULL;",
    ),
    (
        5,
        "-- Request budgets shared by every process (PostgresRateBudget): per vendor account key
    -- (a name the host chose, never an API key), the next free slot of its pace.
    CREATE TABLE {schema}.rate_budget (
        key       text PRIMARY KEY,
        next_slot timestamptz NOT NULL
    );",
    ),
    (
        6,
        "-- Leases in a table of their own: a renewal touches only its lease, never the destination's
    -- row, so a host transaction holding that row (enroll_in, sync_soon_in, reconcile_in not yet
    -- committed) never holds a renewal up. One lease per held destination, named by its claim.
    CREATE TABLE {schema}.leases (
        destination text PRIMARY KEY,
        claim_id    bigint NOT NULL,
        holder      text NOT NULL,
        expires_at  timestamptz NOT NULL
    );
    CREATE INDEX leases_expiry ON {schema}.leases (expires_at);
    INSERT INTO {schema}.leases (destination, claim_id, holder, expires_at)
        SELECT destination, claim_id, holder, lease_expires_at FROM {schema}.destination_state
        WHERE holder IS NOT NULL AND claim_id IS NOT NULL AND lease_expires_at IS NOT NULL;
    -- A holder without a lease to carry over holds nothing.
    UPDATE {schema}.destination_state SET holder = NULL, claim_id = NULL, claimed_requests = NULL
        WHERE holder IS NOT NULL AND (claim_id IS NULL OR lease_expires_at IS NULL);
    ALTER TABLE {schema}.destination_state DROP COLUMN lease_expires_at;
    -- A vendor's 429 pause, apart from the pace: honoured in full, without the burst's tolerance.
    ALTER TABLE {schema}.rate_budget ADD COLUMN paused_until timestamptz;",
    ),
];

/// The newest schema version this library knows.
const LATEST: i32 = 6;

impl PostgresStateStore {
    /// Creates the schema and its tables, or brings them up to date; does nothing when they are.
    ///
    /// Safe to call from many processes at once: one transaction under an advisory lock keyed by
    /// the schema applies what is missing, and the others wait for it and then find nothing to do.
    /// A schema newer than this library (a later release migrated it) is
    /// [`Error::CorruptState`]: this library does not write to tables it does not know.
    pub async fn migrate(&self) -> Result<(), Error> {
        let (schema, quoted) = (&self.sql.schema, &self.sql.quoted);
        let fail = |e: tokio_postgres::Error| Error::Transient {
            message: format!("migrating schema {schema}: {}", db_message(&e)),
        };
        let mut client = self.client().await?;
        let tx = client.transaction().await.map_err(fail)?;
        tx.execute("SELECT pg_advisory_xact_lock($1)", &[&lock_key(schema)])
            .await
            .map_err(fail)?;
        tx.batch_execute(&format!(
            "CREATE SCHEMA IF NOT EXISTS {quoted};
             CREATE TABLE IF NOT EXISTS {quoted}.schema_migrations (
                 version    integer PRIMARY KEY,
                 applied_at timestamptz NOT NULL DEFAULT now()
             );"
        ))
        .await
        .map_err(fail)?;
        let row = tx
            .query_one(
                &format!("SELECT coalesce(max(version), 0) FROM {quoted}.schema_migrations"),
                &[],
            )
            .await
            .map_err(fail)?;
        let current: i32 = row.try_get(0).map_err(fail)?;
        if current > LATEST {
            return Err(Error::CorruptState {
                message: format!(
                    "schema {schema} is at version {current}, newer than this library knows \
                     ({LATEST}): upgrade the library"
                ),
            });
        }
        for (version, sql) in MIGRATIONS.iter().filter(|(v, _)| *v > current) {
            tx.batch_execute(&sql.replace("{schema}", quoted))
                .await
                .map_err(fail)?;
            tx.execute(
                &format!("INSERT INTO {quoted}.schema_migrations (version) VALUES ($1)"),
                &[version],
            )
            .await
            .map_err(fail)?;
        }
        tx.commit().await.map_err(fail)
    }
}

impl PostgresStateStore {
    /// Whether the schema has been created (by [`PostgresStateStore::migrate`]), reading only: a
    /// database no sync has written to yet holds no state at all.
    pub async fn schema_exists(&self) -> Result<bool, Error> {
        let schema = &self.sql.schema;
        let fail = |e: tokio_postgres::Error| Error::Transient {
            message: format!("looking for schema {schema}: {}", db_message(&e)),
        };
        let client = self.client().await?;
        let migrations = format!("{}.schema_migrations", self.sql.quoted);
        client
            .query_one("SELECT to_regclass($1) IS NOT NULL", &[&migrations])
            .await
            .map_err(fail)?
            .try_get(0)
            .map_err(fail)
    }

    /// Checks, reading only, that the schema exists and is at the version this library writes:
    /// for a host (or a command) that must not create or change the schema. A schema that is
    /// missing, older or newer is [`Error::CorruptState`] saying which, and what to do.
    pub async fn verify_schema(&self) -> Result<(), Error> {
        let (schema, quoted) = (&self.sql.schema, &self.sql.quoted);
        let fail = |e: tokio_postgres::Error| Error::Transient {
            message: format!("reading the version of schema {schema}: {}", db_message(&e)),
        };
        let client = self.client().await?;
        let migrations = format!("{quoted}.schema_migrations");
        if !self.schema_exists().await? {
            return Err(Error::CorruptState {
                message: format!(
                    "schema {schema} does not exist: PostgresStateStore::migrate creates it"
                ),
            });
        }
        let current: i32 = client
            .query_one(
                &format!("SELECT coalesce(max(version), 0) FROM {migrations}"),
                &[],
            )
            .await
            .map_err(fail)?
            .try_get(0)
            .map_err(fail)?;
        match current.cmp(&LATEST) {
            std::cmp::Ordering::Equal => Ok(()),
            std::cmp::Ordering::Less => Err(Error::CorruptState {
                message: format!(
                    "schema {schema} is at version {current}, older than this library's \
                     ({LATEST}): PostgresStateStore::migrate brings it up to date"
                ),
            }),
            std::cmp::Ordering::Greater => Err(Error::CorruptState {
                message: format!(
                    "schema {schema} is at version {current}, newer than this library knows \
                     ({LATEST}): upgrade the library"
                ),
            }),
        }
    }
}

/// The advisory lock of a schema's migrations: a fixed tag and the schema's name, hashed (FNV-1a,
/// stable across releases and platforms, unlike PostgreSQL's internal `hashtext`).
fn lock_key(schema: &str) -> i64 {
    let mut hash: u64 = 0xcbf2_9ce4_8422_2325;
    for byte in "oncall-sync migrate ".bytes().chain(schema.bytes()) {
        hash ^= u64::from(byte);
        hash = hash.wrapping_mul(0x0100_0000_01b3);
    }
    i64::from_ne_bytes(hash.to_ne_bytes())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn migrations_are_numbered_in_order_up_to_the_latest() {
        let versions: Vec<i32> = MIGRATIONS.iter().map(|(v, _)| *v).collect();
        let expected: Vec<i32> = (1..=LATEST).collect();
        assert_eq!(versions, expected);
    }

    #[test]
    fn lock_keys_differ_by_schema_and_stay_put() {
        assert_ne!(lock_key("a"), lock_key("b"));
        assert_eq!(lock_key("oncall_sync"), lock_key("oncall_sync"));
    }
}
