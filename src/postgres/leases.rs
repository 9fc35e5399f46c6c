//! Destinations shared between workers: enrolment, due times, leases, and the fenced view of the
//! store a lease holder syncs through.
//!
//! A worker claims due destinations (`FOR UPDATE SKIP LOCKED`: concurrent claimers never wait for
//! each other and never get the same row), holds each with an expiry it renews while it works, and
//! releases it with the next due time. Each claim has a number of its own ([`Claim::id`]), which
//! renewals and releases name: a late release of an old claim never ends a newer one, even of the
//! same holder. Every claim also raises the destination's state version: the version is the
//! fencing token. A worker whose lease expired and whose destination another
//! worker claimed cannot save any more (its version is stale), and through [`FencedStore`] it
//! cannot even start a sync of it.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::Duration;

use async_trait::async_trait;
use oncall_core::{DestinationId, DestinationState, Error, ScheduleId, StateStore, Versioned};

use super::{version_of, PostgresStateStore};

/// A destination a worker claimed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Claim {
    /// The destination.
    pub destination: DestinationId,
    /// The host schedule it is enrolled in; `None` for a destination claimed by name
    /// ([`claim_now`](PostgresStateStore::claim_now)) that no host schedule enrolled.
    pub schedule: Option<ScheduleId>,
    /// Its state's version right after the claim: the fencing token.
    pub token: u64,
    /// How many runs in a row failed before this claim.
    pub failures: u32,
    /// The claim's own number (unique in the schema): renewals and the release name it, so that
    /// a late release of an older claim never ends this one.
    pub id: u64,
}

/// A destination [`claim_now`](PostgresStateStore::claim_now) did not claim: another holder's
/// lease on it has not run out.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HeldElsewhere {
    /// The destination.
    pub destination: DestinationId,
    /// Who holds it (a worker's id, or another command line's).
    pub holder: String,
}

/// The lease statements of one table.
pub(super) struct LeaseSql {
    enroll: String,
    unenroll: String,
    sync_soon: String,
    claim: String,
    ensure_rows: String,
    lock_named: String,
    claim_named: String,
    renew: String,
    release: String,
    give_back: String,
}

impl LeaseSql {
    /// The statements over `table` in the schema `quoted` (an identifier, quoted).
    pub(super) fn new(quoted: &str, table: &str) -> LeaseSql {
        let claim_ids = format!("{quoted}.claim_ids");
        LeaseSql {
            // A new destination is due at once; a known one keeps its due time (or becomes due at
            // once if it was not scheduled).
            enroll: format!(
                "INSERT INTO {table} AS t (destination, schedule, due_at) VALUES ($1, $2, now()) \
                 ON CONFLICT (destination) DO UPDATE \
                 SET schedule = EXCLUDED.schedule, due_at = coalesce(t.due_at, now())"
            ),
            unenroll: format!(
                "UPDATE {table} SET schedule = NULL, due_at = NULL WHERE destination = $1"
            ),
            sync_soon: format!(
                "UPDATE {table} SET due_at = now() \
                 WHERE destination = ANY($1) AND schedule IS NOT NULL"
            ),
            // Due rows first, oldest due first; then the due rows of the same host schedules, so
            // that one sync serves a schedule's destinations together. Rows other claimers hold
            // or are claiming are skipped, never waited for.
            claim: format!(
                "WITH first AS ( \
                     SELECT destination, schedule FROM {table} \
                     WHERE due_at <= now() AND schedule IS NOT NULL \
                       AND (holder IS NULL OR lease_expires_at <= now()) \
                     ORDER BY due_at, schedule \
                     LIMIT $2 \
                     FOR UPDATE SKIP LOCKED), \
                 siblings AS ( \
                     SELECT destination FROM {table} \
                     WHERE due_at <= now() AND schedule IN (SELECT schedule FROM first) \
                       AND (holder IS NULL OR lease_expires_at <= now()) \
                     FOR UPDATE SKIP LOCKED), \
                 claimed AS ( \
                     SELECT destination FROM first UNION SELECT destination FROM siblings) \
                 UPDATE {table} AS t \
                 SET holder = $1, lease_expires_at = now() + $3 * interval '1 millisecond', \
                     version = t.version + 1, claim_id = nextval('{claim_ids}') \
                 FROM claimed WHERE t.destination = claimed.destination \
                 RETURNING t.destination, t.schedule, t.version, t.failures, t.claim_id"
            ),
            // Claims by name: a row for each destination (a destination no worker enrolled and
            // never saved has none), then the rows locked in one order (two command lines never
            // deadlock), then the free ones claimed, due or not.
            ensure_rows: format!(
                "INSERT INTO {table} (destination) SELECT unnest($1::text[]) \
                 ON CONFLICT (destination) DO NOTHING"
            ),
            lock_named: format!(
                "SELECT destination, holder, \
                        holder IS NULL OR holder = $2 OR lease_expires_at <= now() \
                 FROM {table} WHERE destination = ANY($1) ORDER BY destination FOR UPDATE"
            ),
            claim_named: format!(
                "UPDATE {table} AS t \
                 SET holder = $1, lease_expires_at = now() + $3 * interval '1 millisecond', \
                     version = t.version + 1, claim_id = nextval('{claim_ids}') \
                 WHERE t.destination = ANY($2) \
                 RETURNING t.destination, t.schedule, t.version, t.failures, t.claim_id"
            ),
            renew: format!(
                "UPDATE {table} AS t SET lease_expires_at = now() + $3 * interval '1 millisecond' \
                 FROM unnest($2::text[], $4::bigint[]) AS c(destination, claim_id) \
                 WHERE t.destination = c.destination AND t.claim_id = c.claim_id \
                   AND t.holder = $1 \
                 RETURNING t.destination"
            ),
            release: format!(
                "UPDATE {table} \
                 SET holder = NULL, lease_expires_at = NULL, claim_id = NULL, failures = $4, \
                     due_at = CASE WHEN schedule IS NULL THEN NULL \
                                   ELSE now() + $3 * interval '1 millisecond' END \
                 WHERE destination = $1 AND holder = $2 AND claim_id = $5"
            ),
            give_back: format!(
                "UPDATE {table} SET holder = NULL, lease_expires_at = NULL, claim_id = NULL \
                 WHERE destination = $1 AND holder = $2 AND claim_id = $3"
            ),
        }
    }
}

fn millis(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}

/// A claim's number as the `bigint` column holds it (numbers come from a sequence: never
/// negative, so none is out of range; -1 matches nothing).
fn claim_id(id: u64) -> i64 {
    i64::try_from(id).unwrap_or(-1)
}

impl PostgresStateStore {
    /// Puts a destination of host schedule `schedule` in the workers' hands: new, it is due at once;
    /// known, it moves to `schedule` and keeps its due time. Its state is untouched.
    pub async fn enroll(
        &self,
        destination: &DestinationId,
        schedule: &ScheduleId,
    ) -> Result<(), Error> {
        let client = self.client().await?;
        client
            .execute(&self.sql.leases.enroll, &[&destination.0, &schedule.0])
            .await
            .map_err(|e| self.db_error(&format!("enrolling destination {destination}"), e))?;
        Ok(())
    }

    /// Takes a destination out of the workers' hands (a worker holding it finishes its run); its
    /// state stays until [`StateStore::remove`].
    pub async fn unenroll(&self, destination: &DestinationId) -> Result<(), Error> {
        let client = self.client().await?;
        client
            .execute(&self.sql.leases.unenroll, &[&destination.0])
            .await
            .map_err(|e| self.db_error(&format!("unenrolling destination {destination}"), e))?;
        Ok(())
    }

    /// Makes enrolled destinations due now (the host changed its rota: sync it soon rather than
    /// at the next period). Returns how many were found.
    pub async fn sync_soon(&self, destinations: &[DestinationId]) -> Result<u64, Error> {
        let ids: Vec<&str> = destinations.iter().map(|d| d.0.as_str()).collect();
        let client = self.client().await?;
        client
            .execute(&self.sql.leases.sync_soon, &[&ids])
            .await
            .map_err(|e| self.db_error("making destinations due", e))
    }

    /// Claims up to `limit` due destinations for `holder` until `lease` from now (the database's
    /// clock), oldest due first, and with them the other due destinations of their host schedules
    /// (so the result may hold more than `limit`), skipping rows other claimers hold or are
    /// claiming. Each claim raises the destination's version (see [`Claim::token`]).
    pub async fn claim_due(
        &self,
        holder: &str,
        limit: usize,
        lease: Duration,
    ) -> Result<Vec<Claim>, Error> {
        let limit = i64::try_from(limit).unwrap_or(i64::MAX);
        let client = self.client().await?;
        let rows = client
            .query(&self.sql.leases.claim, &[&holder, &limit, &millis(lease)])
            .await
            .map_err(|e| self.db_error("claiming due destinations", e))?;
        rows.iter().map(|row| self.claim_of(row)).collect()
    }

    /// Claims `destinations` for `holder` until `lease` from now, whether due or not (a command
    /// line syncing out of turn), except those another holder's live lease keeps: those are
    /// returned apart, untouched. A destination with no row yet gets one (enrolled in no host
    /// schedule). Each claim raises the destination's version, as [`claim_due`](Self::claim_due)'s
    /// do; give them back with [`give_back`](Self::give_back).
    pub async fn claim_now(
        &self,
        holder: &str,
        destinations: &[DestinationId],
        lease: Duration,
    ) -> Result<(Vec<Claim>, Vec<HeldElsewhere>), Error> {
        let mut ids: Vec<&str> = destinations.iter().map(|d| d.0.as_str()).collect();
        ids.sort_unstable();
        ids.dedup();
        let fail = |e| self.db_error("claiming destinations by name", e);
        let mut client = self.client().await?;
        let tx = client.transaction().await.map_err(fail)?;
        tx.execute(&self.sql.leases.ensure_rows, &[&ids])
            .await
            .map_err(fail)?;
        let rows = tx
            .query(&self.sql.leases.lock_named, &[&ids, &holder])
            .await
            .map_err(fail)?;
        let (mut free, mut held) = (Vec::new(), Vec::new());
        for row in &rows {
            let destination: String = row.try_get(0).map_err(fail)?;
            if row.try_get::<_, Option<bool>>(2).map_err(fail)? == Some(true) {
                free.push(destination);
            } else {
                held.push(HeldElsewhere {
                    destination: DestinationId(destination),
                    holder: row
                        .try_get::<_, Option<String>>(1)
                        .map_err(fail)?
                        .unwrap_or_default(),
                });
            }
        }
        let claimed = tx
            .query(
                &self.sql.leases.claim_named,
                &[&holder, &free, &millis(lease)],
            )
            .await
            .map_err(fail)?;
        let claims = claimed
            .iter()
            .map(|row| self.claim_of(row))
            .collect::<Result<Vec<Claim>, Error>>()?;
        tx.commit().await.map_err(fail)?;
        Ok((claims, held))
    }

    /// Gives a claim back leaving the destination as it was: its due time and its failures in a
    /// row unchanged (a command line's claim: a worker's schedule of the destination goes on).
    /// Returns false when the claim no longer held it.
    pub async fn give_back(&self, holder: &str, claim: &Claim) -> Result<bool, Error> {
        let destination = &claim.destination;
        let client = self.client().await?;
        let released = client
            .execute(
                &self.sql.leases.give_back,
                &[&destination.0, &holder, &claim_id(claim.id)],
            )
            .await
            .map_err(|e| self.db_error(&format!("giving destination {destination} back"), e))?;
        Ok(released == 1)
    }

    /// Reads a claim from a row of (destination, schedule, version, failures, claim_id).
    fn claim_of(&self, row: &tokio_postgres::Row) -> Result<Claim, Error> {
        let read = |e| self.db_error("reading a claim", e);
        Ok(Claim {
            destination: DestinationId(row.try_get(0).map_err(read)?),
            schedule: row
                .try_get::<_, Option<String>>(1)
                .map_err(read)?
                .map(ScheduleId),
            token: version_of(row.try_get(2).map_err(read)?),
            failures: u32::try_from(row.try_get::<_, i32>(3).map_err(read)?).unwrap_or(0),
            id: version_of(row.try_get(4).map_err(read)?),
        })
    }

    /// Extends `holder`'s `claims` to `lease` from now. Returns the destinations whose claim it
    /// still holds; any other was released or taken over after its lease expired (a newer claim
    /// of the same destination, even by the same holder, is not this one).
    pub async fn renew(
        &self,
        holder: &str,
        claims: &[Claim],
        lease: Duration,
    ) -> Result<Vec<DestinationId>, Error> {
        let ids: Vec<&str> = claims.iter().map(|c| c.destination.0.as_str()).collect();
        let claim_ids: Vec<i64> = claims.iter().map(|c| claim_id(c.id)).collect();
        let client = self.client().await?;
        let rows = client
            .query(
                &self.sql.leases.renew,
                &[&holder, &ids, &millis(lease), &claim_ids],
            )
            .await
            .map_err(|e| self.db_error("renewing leases", e))?;
        rows.iter()
            .map(|row| {
                row.try_get(0)
                    .map(DestinationId)
                    .map_err(|e| self.db_error("reading a renewal", e))
            })
            .collect()
    }

    /// Gives a claimed destination back: due again `next_run` from now, with `failures` runs in a
    /// row failed. Returns false when the claim no longer held it (it was released, or taken over;
    /// nothing changes).
    pub async fn release(
        &self,
        holder: &str,
        claim: &Claim,
        next_run: Duration,
        failures: u32,
    ) -> Result<bool, Error> {
        let destination = &claim.destination;
        let failures = i32::try_from(failures).unwrap_or(i32::MAX);
        let client = self.client().await?;
        let released = client
            .execute(
                &self.sql.leases.release,
                &[
                    &destination.0,
                    &holder,
                    &millis(next_run),
                    &failures,
                    &claim_id(claim.id),
                ],
            )
            .await
            .map_err(|e| self.db_error(&format!("releasing destination {destination}"), e))?;
        Ok(released == 1)
    }

    /// The store as the holder of `claims` syncs through it: see [`FencedStore`].
    pub fn fenced(&self, claims: &[Claim]) -> FencedStore {
        FencedStore {
            store: self.clone(),
            tokens: Mutex::new(
                claims
                    .iter()
                    .map(|c| (c.destination.clone(), c.token))
                    .collect(),
            ),
        }
    }
}

/// The store as a lease holder sees it: a destination loads only while its version is still the
/// one the holder's claim (or its own last save) left, so a worker whose destination was taken
/// over stops before it reads the vendor, let alone writes. Saves are the store's compare-and-swap.
/// Destinations not claimed are refused.
#[derive(Debug)]
pub struct FencedStore {
    store: PostgresStateStore,
    tokens: Mutex<HashMap<DestinationId, u64>>,
}

impl FencedStore {
    fn token(&self, destination: &DestinationId) -> Option<u64> {
        self.tokens
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .get(destination)
            .copied()
    }

    fn set_token(&self, destination: &DestinationId, token: u64) {
        self.tokens
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .insert(destination.clone(), token);
    }

    fn not_held(destination: &DestinationId) -> Error {
        Error::Conflict {
            message: format!(
                "destination {destination} is not held by this worker: its lease was lost or never claimed"
            ),
        }
    }
}

#[async_trait]
impl StateStore for FencedStore {
    async fn load(
        &self,
        destination: &DestinationId,
    ) -> Result<Versioned<DestinationState>, Error> {
        let token = self
            .token(destination)
            .ok_or_else(|| Self::not_held(destination))?;
        let loaded = self.store.load(destination).await?;
        if loaded.version != token {
            return Err(Error::Conflict {
                message: format!(
                    "destination {destination} was taken over: its state is at version {}, \
                     not this worker's {token}",
                    loaded.version
                ),
            });
        }
        Ok(loaded)
    }

    async fn save(
        &self,
        destination: &DestinationId,
        expected: u64,
        state: &DestinationState,
    ) -> Result<u64, Error> {
        if self.token(destination).is_none() {
            return Err(Self::not_held(destination));
        }
        let version = self.store.save(destination, expected, state).await?;
        self.set_token(destination, version);
        Ok(version)
    }

    async fn remove(&self, destination: &DestinationId, expected: u64) -> Result<(), Error> {
        if self.token(destination).is_none() {
            return Err(Self::not_held(destination));
        }
        self.store.remove(destination, expected).await
    }
}
