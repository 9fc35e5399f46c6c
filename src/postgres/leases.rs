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
use chrono::{DateTime, Utc};
use oncall_core::{
    Destination, DestinationId, DestinationState, Error, ScheduleId, StateStore, ValidationError,
    Versioned,
};
use serde_json::Value;
use tokio_postgres::GenericClient;

use super::{version_of, PostgresStateStore};

/// How many due destinations of one host schedule one claim takes at most, those it found first
/// included (a schedule exported to hundreds of destinations is synced in parts).
pub const DEFAULT_MAX_GROUP: usize = 32;

/// A destination a worker claimed.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
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
    /// The host no longer names it and asked for it to be retired
    /// ([`reconcile`](PostgresStateStore::reconcile) with [`Dropped::Retire`]): the run deletes
    /// our overrides that have not started and drops its state, rather than syncing it.
    pub retiring: bool,
    /// The destination as the host last enrolled it (`None` for one enrolled by an older
    /// release, or claimed by name and never enrolled).
    pub target: Option<Destination>,
}

/// What [`reconcile`](PostgresStateStore::reconcile) does with the destinations of a host
/// schedule that the host no longer names.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Dropped {
    /// Retire them (DESIGN §3): a worker deletes our overrides there that have not started and
    /// drops their state; the running override and everything people made stay.
    Retire,
    /// Leave the vendor as it is: they are only taken out of the workers' hands (their state
    /// and our overrides stay, as [`unenroll`](PostgresStateStore::unenroll) leaves them).
    Keep,
}

/// What a [`reconcile`](PostgresStateStore::reconcile) changed.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct Reconciled {
    /// The destinations named, now enrolled in the host schedule.
    pub enrolled: usize,
    /// Destinations no longer named, to be retired by a worker (those already retiring too).
    pub retiring: Vec<DestinationId>,
    /// Destinations no longer named, taken out of the workers' hands: with [`Dropped::Keep`],
    /// and with [`Dropped::Retire`] those enrolled by an older release, whose vendor schedule
    /// the store does not know (retire them by hand with the core's `retire`).
    pub unenrolled: Vec<DestinationId>,
}

/// A lease holder's name unique to this process and this call: `prefix`, the process id and a
/// random part (`cli-1-3f9a0c2e`). Two processes with the same pid (containers, where it is
/// often 1) or two holders in one process never share a name.
pub fn unique_holder(prefix: &str) -> String {
    format!(
        "{prefix}-{}-{:08x}",
        std::process::id(),
        super::random_seed() as u32
    )
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
    lock_reconciled: String,
    unenroll: String,
    drop_unknown: String,
    drop_retire: String,
    sync_soon: String,
    claim: String,
    ensure_rows: String,
    lock_named: String,
    lock_named_leases: String,
    claim_named: String,
    renew: String,
    release: String,
    give_back: String,
    fenced_remove: String,
    /// The `LISTEN`/`NOTIFY` channel of the schema: enrolments and sync requests wake workers.
    pub(super) channel: String,
}

impl LeaseSql {
    /// The statements over `table` in the schema `quoted` (an identifier, quoted), whose
    /// wake-ups go to `channel`.
    pub(super) fn new(quoted: &str, table: &str, channel: &str) -> LeaseSql {
        let claim_ids = format!("{quoted}.claim_ids");
        let leases = format!("{quoted}.leases");
        // Locks, and why the workers' statements never wait for each other in a circle (a
        // deadlock):
        // - each statement that waits for locks takes destination rows before lease rows, each
        //   kind in the order of the destination ids (a reconcile locks all the rows it may
        //   change first, in one statement);
        // - claims of due destinations wait for nothing (`SKIP LOCKED`);
        // - renewals lock only lease rows, which no host transaction touches.
        // What this cannot order is a host's own transaction that makes several calls (an
        // `enroll_in`, then a `reconcile_in` of another schedule): two such transactions of the
        // host may still lock rows in opposite orders, and PostgreSQL then aborts one (40P01,
        // a transient error to retry); a renewal is never part of that circle.
        LeaseSql {
            // New destinations are due at once; known ones move to the schedule, keep their due
            // time (or become due at once if they were not scheduled), stop retiring, and take
            // the host's current description. A destination that was retiring counts a sync
            // request: a holder retiring it right now does not drop its state (see
            // `fenced_remove`), and its release makes it due at once. One wake-up.
            enroll: format!(
                "WITH enrolled AS ( \
                     INSERT INTO {table} AS t (destination, schedule, target, due_at) \
                     SELECT d, $2, tg, now() FROM unnest($1::text[], $3::jsonb[]) AS u(d, tg) \
                     ORDER BY d \
                     ON CONFLICT (destination) DO UPDATE \
                     SET schedule = EXCLUDED.schedule, target = EXCLUDED.target, retiring = false, \
                         due_at = coalesce(t.due_at, now()), \
                         requests = t.requests + CASE WHEN t.retiring THEN 1 ELSE 0 END \
                     RETURNING 1) \
                 SELECT count(*), CASE WHEN count(*) > 0 THEN pg_notify('{channel}', '') END \
                 FROM enrolled"
            ),
            // A reconcile locks every row it may change, in one order, before it changes any.
            lock_reconciled: format!(
                "SELECT destination FROM {table} \
                 WHERE schedule = $1 OR destination = ANY($2) \
                 ORDER BY destination FOR UPDATE"
            ),
            unenroll: format!(
                "UPDATE {table} SET schedule = NULL, due_at = NULL, retiring = false \
                 WHERE destination = $1"
            ),
            // Of a schedule's destinations not in $2: with no description (enrolled by an
            // older release) or with Keep, out of the workers' hands ...
            drop_unknown: format!(
                "WITH dropped AS ( \
                     SELECT destination FROM {table} \
                     WHERE schedule = $1 AND NOT (destination = ANY($2)) AND ($3 OR target IS NULL) \
                     ORDER BY destination FOR UPDATE) \
                 UPDATE {table} AS t SET schedule = NULL, due_at = NULL, retiring = false \
                 FROM dropped WHERE t.destination = dropped.destination \
                 RETURNING t.destination"
            ),
            // ... and with Retire, retiring, due at once, and one more sync request (a holder's
            // release sees it and leaves the destination due at once); those already retiring
            // keep their due time (a failed retirement backs off).
            drop_retire: format!(
                "WITH dropped AS ( \
                     SELECT destination FROM {table} \
                     WHERE schedule = $1 AND NOT (destination = ANY($2)) \
                     ORDER BY destination FOR UPDATE) \
                 UPDATE {table} AS t \
                 SET due_at = CASE WHEN t.retiring THEN t.due_at ELSE now() END, \
                     requests = t.requests + CASE WHEN t.retiring THEN 0 ELSE 1 END, \
                     retiring = true \
                 FROM dropped WHERE t.destination = dropped.destination \
                 RETURNING t.destination"
            ),
            // Due now, and one more request: a holder's release sees it and makes the
            // destination due again at once. One wake-up for the statement.
            sync_soon: format!(
                "WITH asked AS ( \
                     SELECT destination FROM {table} \
                     WHERE destination = ANY($1) AND schedule IS NOT NULL \
                     ORDER BY destination FOR UPDATE), \
                 made_due AS ( \
                     UPDATE {table} AS t SET due_at = now(), requests = t.requests + 1 \
                     FROM asked WHERE t.destination = asked.destination \
                     RETURNING 1) \
                 SELECT count(*), CASE WHEN count(*) > 0 THEN pg_notify('{channel}', '') END \
                 FROM made_due"
            ),
            // Due rows nobody holds (oldest due first) and due rows whose lease expired (with
            // their lease), each through its own index: up to $2 found first. Then, for each
            // host schedule among them (of host schedule $5 only, unless it is null), its other
            // due rows nobody holds, up to $4 per schedule,
            // and of the schedule's rows found, at most $4 (those found first first): a group
            // never holds more than $4. Rows other claimers hold or are claiming are skipped,
            // never waited for; the claimed rows get a new lease each.
            claim: format!(
                "WITH free AS ( \
                     SELECT destination, schedule, due_at FROM {table} \
                     WHERE schedule IS NOT NULL AND holder IS NULL AND due_at <= now() \
                       AND ($5::text IS NULL OR schedule = $5) \
                     ORDER BY due_at LIMIT $2 \
                     FOR UPDATE SKIP LOCKED), \
                 expired AS ( \
                     SELECT t.destination, t.schedule, t.due_at \
                     FROM {leases} AS l JOIN {table} AS t \
                       ON t.destination = l.destination AND t.claim_id = l.claim_id \
                     WHERE l.expires_at <= now() AND t.schedule IS NOT NULL AND t.due_at <= now() \
                       AND ($5::text IS NULL OR t.schedule = $5) \
                     ORDER BY l.expires_at LIMIT $2 \
                     FOR UPDATE OF t, l SKIP LOCKED), \
                 first AS ( \
                     SELECT destination, schedule, due_at FROM ( \
                         SELECT * FROM free UNION ALL SELECT * FROM expired) found \
                     ORDER BY due_at, schedule LIMIT $2), \
                 siblings AS ( \
                     SELECT s.destination, s.schedule, s.due_at \
                     FROM (SELECT DISTINCT schedule FROM first) g CROSS JOIN LATERAL ( \
                         SELECT destination, schedule, due_at FROM {table} \
                         WHERE schedule = g.schedule AND holder IS NULL AND due_at <= now() \
                           AND destination NOT IN (SELECT destination FROM first) \
                         ORDER BY due_at, destination LIMIT $4 \
                         FOR UPDATE SKIP LOCKED) s), \
                 chosen AS ( \
                     SELECT destination FROM ( \
                         SELECT destination, row_number() OVER ( \
                                    PARTITION BY schedule ORDER BY found_first DESC, due_at, destination) AS n \
                         FROM (SELECT destination, schedule, due_at, true AS found_first FROM first \
                               UNION ALL \
                               SELECT destination, schedule, due_at, false FROM siblings) candidates \
                     ) numbered \
                     WHERE n <= $4), \
                 claimed AS ( \
                     UPDATE {table} AS t \
                     SET holder = $1, version = t.version + 1, claim_id = nextval('{claim_ids}'), \
                         claimed_requests = t.requests \
                     FROM chosen WHERE t.destination = chosen.destination \
                     RETURNING t.destination, t.schedule, t.version, t.failures, t.claim_id, \
                               t.retiring, t.target), \
                 leased AS ( \
                     INSERT INTO {leases} AS l (destination, claim_id, holder, expires_at) \
                     SELECT destination, claim_id, $1, now() + $3 * interval '1 millisecond' \
                     FROM claimed \
                     ON CONFLICT (destination) DO UPDATE \
                     SET claim_id = EXCLUDED.claim_id, holder = EXCLUDED.holder, \
                         expires_at = EXCLUDED.expires_at) \
                 SELECT destination, schedule, version, failures, claim_id, retiring, target \
                 FROM claimed"
            ),
            // Claims by name: a row for each destination (a destination no worker enrolled and
            // never saved has none), then the rows locked in one order (two command lines never
            // deadlock), then their leases, then the free ones claimed, due or not. A lease is
            // free only when nobody holds it or it expired: a holder of the same name is another
            // holder.
            ensure_rows: format!(
                "INSERT INTO {table} (destination) SELECT unnest($1::text[]) \
                 ON CONFLICT (destination) DO NOTHING"
            ),
            lock_named: format!(
                "SELECT destination, holder FROM {table} WHERE destination = ANY($1) \
                 ORDER BY destination FOR UPDATE"
            ),
            // Every lease of them, live or not (a renewal of an expired lease waits for this
            // claim, and then finds its claim gone); live ones are kept by their holder.
            lock_named_leases: format!(
                "SELECT l.destination, l.holder, \
                        l.expires_at > now() AND l.claim_id IS NOT DISTINCT FROM t.claim_id \
                 FROM {leases} AS l JOIN {table} AS t ON t.destination = l.destination \
                 WHERE l.destination = ANY($1) \
                 ORDER BY l.destination FOR UPDATE OF l"
            ),
            claim_named: format!(
                "WITH claimed AS ( \
                     UPDATE {table} AS t \
                     SET holder = $1, version = t.version + 1, claim_id = nextval('{claim_ids}'), \
                         claimed_requests = t.requests \
                     WHERE t.destination = ANY($2) \
                     RETURNING t.destination, t.schedule, t.version, t.failures, t.claim_id, \
                               t.retiring, t.target), \
                 leased AS ( \
                     INSERT INTO {leases} AS l (destination, claim_id, holder, expires_at) \
                     SELECT destination, claim_id, $1, now() + $3 * interval '1 millisecond' \
                     FROM claimed \
                     ON CONFLICT (destination) DO UPDATE \
                     SET claim_id = EXCLUDED.claim_id, holder = EXCLUDED.holder, \
                         expires_at = EXCLUDED.expires_at) \
                 SELECT destination, schedule, version, failures, claim_id, retiring, target \
                 FROM claimed"
            ),
            // Only the leases: never the destinations' rows, which a host's open transaction
            // may hold.
            renew: format!(
                "WITH held AS ( \
                     SELECT l.destination FROM {leases} AS l \
                     JOIN unnest($2::text[], $4::bigint[]) AS c(destination, claim_id) \
                       ON l.destination = c.destination AND l.claim_id = c.claim_id \
                     WHERE l.holder = $1 \
                     ORDER BY l.destination FOR UPDATE OF l) \
                 UPDATE {leases} AS l SET expires_at = now() + $3 * interval '1 millisecond' \
                 FROM held WHERE l.destination = held.destination \
                 RETURNING l.destination"
            ),
            // Due again after $3, or at once when a sync was requested since the claim; the
            // lease ends with it.
            release: format!(
                "WITH released AS ( \
                     UPDATE {table} \
                     SET holder = NULL, claim_id = NULL, failures = $4, \
                         due_at = CASE WHEN schedule IS NULL THEN NULL \
                                       WHEN requests <> coalesce(claimed_requests, requests) THEN now() \
                                       ELSE now() + $3 * interval '1 millisecond' END, \
                         claimed_requests = NULL \
                     WHERE destination = $1 AND holder = $2 AND claim_id = $5 \
                     RETURNING destination), \
                 ended AS ( \
                     DELETE FROM {leases} AS l USING released \
                     WHERE l.destination = released.destination AND l.claim_id = $5) \
                 SELECT count(*) FROM released"
            ),
            give_back: format!(
                "WITH released AS ( \
                     UPDATE {table} \
                     SET holder = NULL, claim_id = NULL, claimed_requests = NULL \
                     WHERE destination = $1 AND holder = $2 AND claim_id = $3 \
                     RETURNING destination), \
                 ended AS ( \
                     DELETE FROM {leases} AS l USING released \
                     WHERE l.destination = released.destination AND l.claim_id = $3) \
                 SELECT count(*) FROM released"
            ),
            // A lease holder's removal of a state (a retirement's last step): only while its
            // claim holds the row, and, for a destination claimed to be retired, only while it
            // is still retiring (the host may have named it again meanwhile).
            fenced_remove: format!(
                "WITH removed AS ( \
                     DELETE FROM {table} \
                     WHERE destination = $1 AND version = $2 AND claim_id = $3 AND (retiring OR NOT $4) \
                     RETURNING destination), \
                 ended AS ( \
                     DELETE FROM {leases} AS l USING removed \
                     WHERE l.destination = removed.destination AND l.claim_id = $3) \
                 SELECT count(*) FROM removed"
            ),
            channel: channel.to_owned(),
        }
    }
}

/// `destinations` sorted by id, each once: a destination given twice alike counts once, and
/// one given twice with different descriptions is the host's error
/// ([`ValidationError::DuplicateDestination`], permanent).
fn distinct(destinations: &[Destination]) -> Result<Vec<&Destination>, Error> {
    let mut sorted: Vec<&Destination> = destinations.iter().collect();
    sorted.sort_by(|a, b| a.id.cmp(&b.id));
    if let Some(pair) = sorted
        .windows(2)
        .find(|p| p[0].id == p[1].id && p[0] != p[1])
    {
        return Err(Error::InvalidInput(ValidationError::DuplicateDestination {
            destination: pair[0].id.clone(),
        }));
    }
    sorted.dedup_by(|a, b| a.id == b.id);
    Ok(sorted)
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
    /// known, it moves to `schedule`, keeps its due time and stops retiring. Its state is
    /// untouched. Wakes the workers listening.
    pub async fn enroll(
        &self,
        destination: &Destination,
        schedule: &ScheduleId,
    ) -> Result<(), Error> {
        let what = format!("enrolling destination {}", destination.id);
        self.within(&what, async {
            let client = self.client().await?;
            self.enroll_in(&**client, std::slice::from_ref(destination), schedule)
                .await
                .map(|_| ())
        })
        .await
    }

    /// [`enroll`](Self::enroll) of many destinations, as part of the caller's transaction (or
    /// on any client): the host's rota change and the enrolment commit together, and the
    /// workers are woken when it commits. Returns how many were enrolled.
    pub async fn enroll_in<C: GenericClient + Sync>(
        &self,
        client: &C,
        destinations: &[Destination],
        schedule: &ScheduleId,
    ) -> Result<u64, Error> {
        let sorted = distinct(destinations)?;
        let ids: Vec<&str> = sorted.iter().map(|d| d.id.0.as_str()).collect();
        let targets = sorted
            .iter()
            .map(|d| {
                serde_json::to_value(d).map_err(|e| Error::InvalidResponse {
                    message: format!("destination {} does not serialise: {e}", d.id),
                })
            })
            .collect::<Result<Vec<Value>, Error>>()?;
        let row = client
            .query_one(&self.sql.leases.enroll, &[&ids, &schedule.0, &targets])
            .await
            .map_err(|e| self.db_error("enrolling destinations", e))?;
        Ok(version_of(
            row.try_get(0)
                .map_err(|e| self.db_error("enrolling destinations", e))?,
        ))
    }

    /// Takes a destination out of the workers' hands (a worker holding it finishes its run); its
    /// state stays until [`StateStore::remove`]. Prefer [`reconcile`](Self::reconcile), which
    /// states a host schedule's whole set.
    pub async fn unenroll(&self, destination: &DestinationId) -> Result<(), Error> {
        let what = format!("unenrolling destination {destination}");
        self.within(&what, async {
            let client = self.client().await?;
            client
                .execute(&self.sql.leases.unenroll, &[&destination.0])
                .await
                .map_err(|e| self.db_error(&what, e))?;
            Ok(())
        })
        .await
    }

    /// States the destinations of host schedule `schedule`: those named are enrolled in it (as
    /// [`enroll`](Self::enroll) does), and those enrolled in it that are not named any more are
    /// retired or kept as `dropped` says. This is the only way a worker's destinations leave its
    /// hands besides [`unenroll`](Self::unenroll): a worker never drops a destination because
    /// the host's [`Host::schedule`](crate::worker::Host::schedule) did not name it once (a
    /// lagging replica, a second config on the same schema).
    ///
    /// One transaction; see [`reconcile_in`](Self::reconcile_in) for the caller's own.
    pub async fn reconcile(
        &self,
        schedule: &ScheduleId,
        destinations: &[Destination],
        dropped: Dropped,
    ) -> Result<Reconciled, Error> {
        let what = format!("reconciling host schedule {schedule}");
        self.within(&what, async {
            let mut client = self.client().await?;
            let tx = client
                .transaction()
                .await
                .map_err(|e| self.db_error(&what, e))?;
            let reconciled = self
                .reconcile_in(&*tx, schedule, destinations, dropped)
                .await?;
            tx.commit().await.map_err(|e| self.db_error(&what, e))?;
            Ok(reconciled)
        })
        .await
    }

    /// [`reconcile`](Self::reconcile) in the caller's transaction: the host's change of where a
    /// schedule is exported and the workers' view of it commit together. (On a client outside a
    /// transaction its statements commit one by one.)
    pub async fn reconcile_in<C: GenericClient + Sync>(
        &self,
        client: &C,
        schedule: &ScheduleId,
        destinations: &[Destination],
        dropped: Dropped,
    ) -> Result<Reconciled, Error> {
        let what = format!("reconciling host schedule {schedule}");
        let named: Vec<&str> = distinct(destinations)?
            .iter()
            .map(|d| d.id.0.as_str())
            .collect();
        // Every row this reconcile may change, locked in one order first: it never waits in a
        // circle with another statement that locks rows in that order.
        client
            .query(&self.sql.leases.lock_reconciled, &[&schedule.0, &named])
            .await
            .map_err(|e| self.db_error(&what, e))?;
        let enrolled = self.enroll_in(client, destinations, schedule).await?;
        let ids = |rows: Vec<tokio_postgres::Row>| -> Result<Vec<DestinationId>, Error> {
            rows.iter()
                .map(|r| {
                    r.try_get(0)
                        .map(DestinationId)
                        .map_err(|e| self.db_error(&what, e))
                })
                .collect()
        };
        let keep = dropped == Dropped::Keep;
        let unenrolled = ids(client
            .query(&self.sql.leases.drop_unknown, &[&schedule.0, &named, &keep])
            .await
            .map_err(|e| self.db_error(&what, e))?)?;
        let retiring = if keep {
            Vec::new()
        } else {
            ids(client
                .query(&self.sql.leases.drop_retire, &[&schedule.0, &named])
                .await
                .map_err(|e| self.db_error(&what, e))?)?
        };
        if !retiring.is_empty() {
            client
                .execute("SELECT pg_notify($1, '')", &[&self.sql.leases.channel])
                .await
                .map_err(|e| self.db_error(&what, e))?;
        }
        Ok(Reconciled {
            enrolled: usize::try_from(enrolled).unwrap_or(usize::MAX),
            retiring,
            unenrolled,
        })
    }

    /// Makes enrolled destinations due now (the host changed its rota: sync it soon rather than
    /// at the next period), and wakes the workers listening. A destination held by a worker
    /// right now runs again as soon as that run ends (the run may have read the rota before the
    /// change). Returns how many were found.
    pub async fn sync_soon(&self, destinations: &[DestinationId]) -> Result<u64, Error> {
        self.within("making destinations due", async {
            let client = self.client().await?;
            self.sync_soon_in(&**client, destinations).await
        })
        .await
    }

    /// [`sync_soon`](Self::sync_soon) as part of the caller's transaction (or on any client): a
    /// rota change and its sync request commit together, and the workers are woken when it
    /// commits.
    pub async fn sync_soon_in<C: GenericClient + Sync>(
        &self,
        client: &C,
        destinations: &[DestinationId],
    ) -> Result<u64, Error> {
        let ids: Vec<&str> = destinations.iter().map(|d| d.0.as_str()).collect();
        let row = client
            .query_one(&self.sql.leases.sync_soon, &[&ids])
            .await
            .map_err(|e| self.db_error("making destinations due", e))?;
        Ok(version_of(row.try_get(0).map_err(|e| {
            self.db_error("making destinations due", e)
        })?))
    }

    /// Claims up to `limit` due destinations for `holder` until `lease` from now (the database's
    /// clock), oldest due first, and with them other due destinations of their host schedules,
    /// so that a schedule's destinations are synced together: at most [`DEFAULT_MAX_GROUP`] of
    /// one host schedule in all (so the result may hold more than `limit`, and at most
    /// `limit` host schedules). Rows other claimers hold or are claiming are skipped. Each
    /// claim raises the destination's version (see [`Claim::token`]).
    pub async fn claim_due(
        &self,
        holder: &str,
        limit: usize,
        lease: Duration,
    ) -> Result<Vec<Claim>, Error> {
        self.claim_due_grouped(holder, limit, DEFAULT_MAX_GROUP, lease)
            .await
    }

    /// [`claim_due`](Self::claim_due) with at most `max_group` destinations of one host
    /// schedule (at least 1): those found first count too. Each host schedule found gets its
    /// own share of its due destinations, whichever sorts first.
    pub async fn claim_due_grouped(
        &self,
        holder: &str,
        limit: usize,
        max_group: usize,
        lease: Duration,
    ) -> Result<Vec<Claim>, Error> {
        self.claim_due_of(holder, None, limit, max_group, lease)
            .await
    }

    /// [`claim_due_grouped`](Self::claim_due_grouped), of host schedule `schedule` only when
    /// given.
    pub(super) async fn claim_due_of(
        &self,
        holder: &str,
        schedule: Option<&ScheduleId>,
        limit: usize,
        max_group: usize,
        lease: Duration,
    ) -> Result<Vec<Claim>, Error> {
        let schedule = schedule.map(|s| s.0.as_str());
        let as_i64 = |n: usize| i64::try_from(n).unwrap_or(i64::MAX);
        let (limit, max_group) = (as_i64(limit.max(1)), as_i64(max_group.max(1)));
        self.within("claiming due destinations", async {
            let client = self.client().await?;
            let rows = client
                .query(
                    &self.sql.leases.claim,
                    &[&holder, &limit, &millis(lease), &max_group, &schedule],
                )
                .await
                .map_err(|e| self.db_error("claiming due destinations", e))?;
            rows.iter().map(|row| self.claim_of(row)).collect()
        })
        .await
    }

    /// The database's clock (`clock_timestamp()`, the clock leases run on), to whole
    /// microseconds: one clock for every worker, whatever their machines' clocks say.
    pub async fn database_now(&self) -> Result<DateTime<Utc>, Error> {
        self.within("reading the database's clock", async {
            let client = self.client().await?;
            let row = client
                .query_one(
                    "SELECT (extract(epoch FROM clock_timestamp()) * 1000000)::int8",
                    &[],
                )
                .await
                .map_err(|e| self.db_error("reading the database's clock", e))?;
            let micros: i64 = row
                .try_get(0)
                .map_err(|e| self.db_error("reading the database's clock", e))?;
            DateTime::from_timestamp_micros(micros).ok_or_else(|| Error::InvalidResponse {
                message: format!("the database's clock reads {micros} µs after 1970"),
            })
        })
        .await
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
        self.within(
            "claiming destinations by name",
            self.claim_named(holder, &ids, lease),
        )
        .await
    }

    async fn claim_named(
        &self,
        holder: &str,
        ids: &[&str],
        lease: Duration,
    ) -> Result<(Vec<Claim>, Vec<HeldElsewhere>), Error> {
        let fail = |e| self.db_error("claiming destinations by name", e);
        let mut client = self.client().await?;
        let tx = client.transaction().await.map_err(fail)?;
        tx.execute(&self.sql.leases.ensure_rows, &[&ids])
            .await
            .map_err(fail)?;
        let rows = tx
            .query(&self.sql.leases.lock_named, &[&ids])
            .await
            .map_err(fail)?;
        let leases = tx
            .query(&self.sql.leases.lock_named_leases, &[&ids])
            .await
            .map_err(fail)?;
        let mut live = HashMap::new();
        for lease in &leases {
            if lease.try_get::<_, Option<bool>>(2).map_err(fail)? == Some(true) {
                let destination: String = lease.try_get(0).map_err(fail)?;
                live.insert(destination, lease.try_get::<_, String>(1).map_err(fail)?);
            }
        }
        let (mut free, mut held) = (Vec::new(), Vec::new());
        for row in &rows {
            let destination: String = row.try_get(0).map_err(fail)?;
            match live.remove(&destination) {
                None => free.push(destination),
                Some(holder) => held.push(HeldElsewhere {
                    destination: DestinationId(destination),
                    holder,
                }),
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
        let what = format!("giving destination {destination} back");
        self.within(&what, async {
            let client = self.client().await?;
            let released: i64 = client
                .query_one(
                    &self.sql.leases.give_back,
                    &[&destination.0, &holder, &claim_id(claim.id)],
                )
                .await
                .and_then(|row| row.try_get(0))
                .map_err(|e| self.db_error(&what, e))?;
            Ok(released == 1)
        })
        .await
    }

    /// Reads a claim from a row of (destination, schedule, version, failures, claim_id,
    /// retiring, target).
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
            retiring: row.try_get(5).map_err(read)?,
            // A description that does not read (written by a later release) is no description.
            target: row
                .try_get::<_, Option<Value>>(6)
                .map_err(read)?
                .and_then(|v| serde_json::from_value(v).ok()),
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
        self.within("renewing leases", async {
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
        })
        .await
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
        let what = format!("releasing destination {destination}");
        self.within(&what, async {
            let client = self.client().await?;
            let released: i64 = client
                .query_one(
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
                .and_then(|row| row.try_get(0))
                .map_err(|e| self.db_error(&what, e))?;
            Ok(released == 1)
        })
        .await
    }

    /// The store as the holder of `claims` syncs through it: see [`FencedStore`].
    pub fn fenced(&self, claims: &[Claim]) -> FencedStore {
        FencedStore {
            store: self.clone(),
            held: Mutex::new(
                claims
                    .iter()
                    .map(|c| {
                        let held = Held {
                            token: c.token,
                            claim_id: c.id,
                            retiring: c.retiring,
                        };
                        (c.destination.clone(), held)
                    })
                    .collect(),
            ),
        }
    }

    /// Removes a held destination's state (and its row) as [`FencedStore::remove`] does.
    async fn remove_held(
        &self,
        destination: &DestinationId,
        expected: u64,
        held: Held,
    ) -> Result<(), Error> {
        let what = format!("removing destination {destination}");
        let Ok(expected_db) = i64::try_from(expected) else {
            return Err(self.conflict(destination, expected, "saved"));
        };
        let client = self.client().await?;
        let removed: i64 = client
            .query_one(
                &self.sql.leases.fenced_remove,
                &[
                    &destination.0,
                    &expected_db,
                    &claim_id(held.claim_id),
                    &held.retiring,
                ],
            )
            .await
            .and_then(|row| row.try_get(0))
            .map_err(|e| self.db_error(&what, e))?;
        if removed == 1 {
            return Ok(());
        }
        // Nothing removed: named again by its host while held to be retired, or the claim and
        // version moved on (taken over).
        let row = client
            .query_opt(
                &format!(
                    "SELECT version, claim_id, retiring FROM {} WHERE destination = $1",
                    self.sql.table
                ),
                &[&destination.0],
            )
            .await
            .map_err(|e| self.db_error(&what, e))?;
        let still_ours = row.as_ref().is_some_and(|r| {
            r.try_get::<_, i64>(0).ok() == Some(expected_db)
                && r.try_get::<_, Option<i64>>(1).ok().flatten() == Some(claim_id(held.claim_id))
        });
        if still_ours && held.retiring {
            return Err(Error::Conflict {
                message: format!("destination {destination}: {NAMED_AGAIN}"),
            });
        }
        Err(self.conflict(destination, expected, "saved"))
    }
}

/// What a retirement's removal says when the host named the destination again while it was
/// held to be retired (see [`is_named_again`]).
const NAMED_AGAIN: &str = "named again by its host during its retirement: its state is kept, \
                           and it is synced again at once";

/// Whether `error` is a retirement's removal refused because the host named the destination
/// again meanwhile: the run ends as interrupted, and the next run (due at once) syncs it.
pub(crate) fn is_named_again(error: &Error) -> bool {
    matches!(error, Error::Conflict { message } if message.ends_with(NAMED_AGAIN))
}

/// What a fenced store knows of one claim.
#[derive(Debug, Clone, Copy)]
struct Held {
    /// The version the claim (or this holder's last save) left.
    token: u64,
    claim_id: u64,
    /// Claimed to be retired.
    retiring: bool,
}

/// The store as a lease holder sees it: a destination loads only while its version is still the
/// one the holder's claim (or its own last save) left, so a worker whose destination was taken
/// over stops before it reads the vendor, let alone writes. Saves are the store's compare-and-swap.
/// A removal (a retirement's last step) happens only while the claim holds the destination and,
/// for a destination claimed to be retired, only while it still is: one the host named again
/// meanwhile keeps its state (an [`Error::Conflict`]), and its next run, due at once, writes
/// back what the retirement deleted. Destinations not claimed are refused.
#[derive(Debug)]
pub struct FencedStore {
    store: PostgresStateStore,
    held: Mutex<HashMap<DestinationId, Held>>,
}

impl FencedStore {
    fn held(&self, destination: &DestinationId) -> Option<Held> {
        self.held
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .get(destination)
            .copied()
    }

    fn set_token(&self, destination: &DestinationId, token: u64) {
        if let Some(held) = self
            .held
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .get_mut(destination)
        {
            held.token = token;
        }
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
            .held(destination)
            .ok_or_else(|| Self::not_held(destination))?
            .token;
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
        if self.held(destination).is_none() {
            return Err(Self::not_held(destination));
        }
        let version = self.store.save(destination, expected, state).await?;
        self.set_token(destination, version);
        Ok(version)
    }

    async fn remove(&self, destination: &DestinationId, expected: u64) -> Result<(), Error> {
        let held = self
            .held(destination)
            .ok_or_else(|| Self::not_held(destination))?;
        self.store
            .within(
                "removing a destination",
                self.store.remove_held(destination, expected, held),
            )
            .await
    }
}
