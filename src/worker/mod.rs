//! The sync worker: the loop a host runs in each of its processes, over one PostgreSQL database
//! (feature `postgres`).
//!
//! A [`Worker`] claims due destinations ([`PostgresStateStore::claim_groups`]), groups those of
//! one host schedule into one [`sync`](oncall_core::sync()) call, syncs them through the store's
//! [fenced view](PostgresStateStore::fenced), and releases each with its next due time: the
//! period (hourly by default) with jitter after a success, a doubling backoff after failures, a
//! long wait once its key proved read-only; at once when the host asked for a sync while it ran.
//! Each group runs under the [lease guard](crate::postgres::LeasedGroup): its leases are renewed
//! while it works, its sync is stopped before a lease it could not renew runs out, and every
//! vendor call checks the deadline right before it is sent. A sync that panics (a bug in the
//! host, an adapter or the core) is logged, and its destinations are released as failed runs.
//! Shutdown is graceful: no new claims, the running syncs get a grace period to finish (20 s by
//! default: under the 30 s most orchestrators wait before they kill), and what is still held is
//! released due at once.
//!
//! It wakes up when the host enrols destinations or asks for a sync (`LISTEN`/`NOTIFY`, over a
//! connection of its own), and polls every [`WorkerOptions::idle_poll`] as a fallback.
//!
//! The host supplies what only it knows through [`Host`]: a schedule and its destinations by id,
//! and a provider per connection; and states each host schedule's destinations with
//! [`PostgresStateStore::reconcile`] (or enrols them one by one with
//! [`PostgresStateStore::enroll`]). A destination the host's answer does not name is kept and
//! tried again later with a failure's backoff, never dropped on one answer: only a reconcile
//! retires a destination or takes it out of the workers' hands.
//!
//! Tracing: each group's sync is a span `sync_group` (worker, host schedule, number of
//! destinations), and each destination's run a span `destination_run` under it (worker,
//! destination), open from the claim to the release. The destination's own vendor calls and state
//! loads and saves run inside its span (the core's `sync` runs a group's destinations one after
//! the other; the worker hands it, per destination, a provider and a store that enter the
//! destination's span), while the core's planning between those calls is traced under the group's
//! span. Its `connection` is recorded when its provider is found; at the end of the run its
//! `status`, `write_calls`, `mark_before`, `mark_after`, `outcome` and `next_run_s` are recorded
//! and one event is emitted in it (`destination in step`, or a warning with the first error).
//!
//! ```no_run
//! use std::sync::Arc;
//! use oncall_sync::postgres::PostgresStateStore;
//! use oncall_sync::worker::{Host, HostSchedule, Worker, WorkerOptions};
//! use oncall_sync::{ConnectionId, Error, Provider, ScheduleId};
//!
//! struct MyHost; // the host's database and its providers
//!
//! #[async_trait::async_trait]
//! impl Host for MyHost {
//!     async fn schedule(&self, id: &ScheduleId) -> Result<Option<HostSchedule>, Error> {
//!         Ok(None) // read the schedule, its destinations and horizon from the host's database
//!     }
//!     async fn provider(&self, connection: &ConnectionId) -> Result<Arc<dyn Provider>, Error> {
//!         Err(Error::Unsupported { message: format!("no connection {connection}") })
//!     }
//! }
//!
//! # async fn demo() -> Result<(), Error> {
//! let store = PostgresStateStore::connect("postgres://oncall@db.internal/oncall").await?;
//! store.migrate().await?;
//! let worker = Worker::new(store, Arc::new(MyHost), WorkerOptions::default());
//! let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
//! // The host keeps `stop`, and sends on it (or drops it) to shut the worker down.
//! # drop(stop);
//! worker.run(async { stopped.await.ok(); }).await;
//! # Ok(()) }
//! ```

mod group;
mod host;
mod schedule;
mod traced;

use std::collections::HashMap;
use std::future::Future;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use tokio::sync::{watch, Notify};
use tokio::task::{self, JoinSet};
use tracing::{error, info_span, warn, Instrument};

pub use host::{Host, HostSchedule};
pub use schedule::{next_run, RunOutcome};

use crate::postgres::{
    panic_message, random_seed, unique_holder, Interrupted, LeaseOptions, LeasedGroup,
    PostgresStateStore, DEFAULT_MAX_GROUP,
};
use group::Ended;

/// Where a worker takes the `now` its syncs plan with.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[non_exhaustive]
pub enum Clock {
    /// [`Host::now`] (the machine's clock unless the host says otherwise).
    #[default]
    Host,
    /// The database's clock ([`PostgresStateStore::database_now`]), the one leases run on:
    /// every worker plans with the same clock, so one whose machine runs fast cannot move
    /// every destination's floor (a run's `now` never goes back) ahead of the others.
    Database,
}

/// How a [`Worker`] paces its work.
#[derive(Debug, Clone)]
pub struct WorkerOptions {
    /// Its name as a lease holder: unique among all holders of one database (the default is
    /// `worker-`, the process id and a random part: [`unique_holder`]).
    pub id: String,
    /// How often a destination in step is synced again (default: hourly).
    pub period: Duration,
    /// Next runs spread within ± this fraction of the period (default 0.1).
    pub jitter: f64,
    /// The wait after a first failure, doubling with each further one (default: a minute).
    pub failure_backoff: Duration,
    /// The longest wait after failures (default: an hour).
    pub max_backoff: Duration,
    /// The wait once a destination's key proved read-only (default: six hours).
    pub read_only_backoff: Duration,
    /// How long a claim holds a destination unless renewed (default: a minute); renewed every
    /// third of it, and given up a quarter of it before it runs out. Keep that quarter above
    /// the providers' request timeout: a request sent just before the deadline then ends (is
    /// answered, or given up on) before the lease does; one the network holds up may still land
    /// later (README, "One holder at a time").
    pub lease: Duration,
    /// How many host schedules it syncs at once (default 4). The store's pool is grown to twice
    /// this plus one ([`WorkerOptions::pool_size`]): a connection for each group's sync and one
    /// for its renewals, so that a renewal never waits behind a sync, and one for claims.
    pub concurrency: usize,
    /// At most this many destinations of one host schedule in one sync (default
    /// [`DEFAULT_MAX_GROUP`]); a larger schedule is synced in parts.
    pub max_group: usize,
    /// How long it waits before looking again when nothing was due and nothing woke it
    /// (default: two seconds).
    pub idle_poll: Duration,
    /// How long running syncs may take to finish after shutdown is asked (default: 20 s, so
    /// that the release that follows fits in the 30 s most orchestrators give).
    pub shutdown_grace: Duration,
    /// Where `now` comes from (default: the host).
    pub clock: Clock,
}

impl Default for WorkerOptions {
    fn default() -> WorkerOptions {
        WorkerOptions {
            id: unique_holder("worker"),
            period: Duration::from_secs(3600),
            jitter: 0.1,
            failure_backoff: Duration::from_secs(60),
            max_backoff: Duration::from_secs(3600),
            read_only_backoff: Duration::from_secs(6 * 3600),
            lease: Duration::from_secs(60),
            concurrency: 4,
            max_group: DEFAULT_MAX_GROUP,
            idle_poll: Duration::from_secs(2),
            shutdown_grace: Duration::from_secs(20),
            clock: Clock::Host,
        }
    }
}

impl WorkerOptions {
    /// The defaults with `id` as the holder's name.
    pub fn named(id: impl Into<String>) -> WorkerOptions {
        WorkerOptions {
            id: id.into(),
            ..WorkerOptions::default()
        }
    }

    /// The connections a worker with these options uses at most: twice the concurrency (each
    /// group's sync, and its renewals) and one for claims. (`LISTEN` has one of its own.)
    pub fn pool_size(&self) -> usize {
        self.concurrency.max(1) * 2 + 1
    }

    fn lease_options(&self) -> LeaseOptions {
        LeaseOptions::new("worker")
            .with_holder(self.id.clone())
            .with_lease(self.lease)
            .with_max_group(self.max_group)
    }
}

/// The loop a host runs in each process. See the [module docs](self).
pub struct Worker<H: Host> {
    inner: Arc<Inner<H>>,
}

impl<H: Host> std::fmt::Debug for Worker<H> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Worker")
            .field("id", &self.inner.options.id)
            .field("store", &self.inner.store)
            .finish_non_exhaustive()
    }
}

struct Inner<H: Host> {
    store: PostgresStateStore,
    host: Arc<H>,
    options: WorkerOptions,
    leases: LeaseOptions,
    /// Woken by the store's `NOTIFY` (an enrolment, a sync request).
    wake: Arc<Notify>,
    rng: Mutex<u64>,
}

impl<H: Host> Worker<H> {
    /// A worker over `store` (migrated) for `host`. Options out of range are brought into it: at
    /// least one schedule at a time, a lease of at least 100 ms, a jitter within 0 and 1. The
    /// store's pool is grown to [`WorkerOptions::pool_size`], if it is smaller.
    pub fn new(store: PostgresStateStore, host: Arc<H>, mut options: WorkerOptions) -> Worker<H> {
        options.concurrency = options.concurrency.max(1);
        options.max_group = options.max_group.max(1);
        options.lease = options.lease.max(Duration::from_millis(100));
        options.jitter = if options.jitter.is_finite() {
            options.jitter.clamp(0.0, 1.0)
        } else {
            0.1
        };
        let needed = options.pool_size();
        if store.pool().status().max_size < needed {
            store.pool().resize(needed);
        }
        Worker {
            inner: Arc::new(Inner {
                leases: options.lease_options(),
                store,
                host,
                options,
                wake: Arc::new(Notify::new()),
                rng: Mutex::new(random_seed()),
            }),
        }
    }

    /// Its name as a lease holder.
    pub fn id(&self) -> &str {
        &self.inner.options.id
    }

    /// Claims, syncs and releases until `shutdown` completes, then shuts down gracefully (see the
    /// [module docs](self)). Database failures are logged and retried after
    /// [`WorkerOptions::idle_poll`]; they never end the loop.
    pub async fn run(&self, shutdown: impl Future<Output = ()>) {
        let inner = &self.inner;
        // Wake-ups stop with this future, however it ends.
        let _listener = AbortOnDrop(tokio::spawn(
            inner.store.clone().listen_for_work(inner.wake.clone()),
        ));
        let (stop, stopped) = watch::channel(false);
        let mut groups = Groups::default();
        let mut shutdown = std::pin::pin!(shutdown);
        loop {
            let free = inner.options.concurrency.saturating_sub(groups.tasks.len());
            let mut claimed = false;
            if free > 0 {
                // A claim that hangs (the database is gone) does not hold shutdown up; one that
                // is only slow still ends, and what it claimed is given back at once.
                let claim = inner.claim(free);
                tokio::pin!(claim);
                let found = tokio::select! {
                    biased;
                    found = &mut claim => found,
                    () = &mut shutdown => {
                        let asked = Instant::now();
                        // The claim's wait and its release come out of the shutdown's bound.
                        let bound = asked + inner.options.shutdown_grace + RELEASE_AT_SHUTDOWN;
                        let claimed = async {
                            for group in claim.await {
                                let _ = group.release_rest(Duration::ZERO).await;
                            }
                        };
                        let until = (asked + RELEASE_AT_SHUTDOWN).min(bound);
                        let _ = tokio::time::timeout_at(until.into(), claimed).await;
                        inner.shut_down(groups, stop, asked).await;
                        return;
                    }
                };
                for group in found {
                    claimed = true;
                    groups.spawn(inner, group, stopped.clone());
                }
            }
            let room = groups.tasks.len() < inner.options.concurrency;
            tokio::select! {
                biased;
                () = &mut shutdown => break,
                () = std::future::ready(()), if claimed && room => {}
                Some(joined) = groups.tasks.join_next_with_id(), if !groups.tasks.is_empty() => {
                    inner.joined(joined, &mut groups.schedules);
                }
                () = inner.wake.notified() => {}
                () = tokio::time::sleep(inner.options.idle_poll) => {}
            }
        }
        inner.shut_down(groups, stop, Instant::now()).await;
    }
}

impl<H: Host> Inner<H> {
    /// A draw in `[0, 1)` (SplitMix64).
    fn unit(&self) -> f64 {
        let mut state = self.rng.lock().unwrap_or_else(|e| e.into_inner());
        *state = state.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = *state;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^= z >> 31;
        (z >> 11) as f64 / (1u64 << 53) as f64
    }

    /// Claims up to `free` due destinations (and their due siblings), a group per host schedule.
    async fn claim(&self, free: usize) -> Vec<LeasedGroup> {
        match self.store.claim_groups(&self.leases, free).await {
            Ok(groups) => groups,
            Err(e) => {
                warn!(worker = %self.options.id, error = %e, "claiming due destinations failed");
                Vec::new()
            }
        }
    }

    /// Syncs one group under its lease guard (stopped at shutdown's `stop`), then releases it.
    async fn run_group(self: Arc<Self>, group: LeasedGroup, mut stop: watch::Receiver<bool>) {
        let claims = group.claims().to_vec();
        let schedule = group.schedule().map_or("", |s| s.0.as_str()).to_owned();
        let span = info_span!(
            "sync_group",
            worker = %self.options.id,
            schedule = %schedule,
            destinations = claims.len()
        );
        let spans: group::RunSpans = claims
            .iter()
            .map(|c| {
                let run = group::destination_span(&span, &self.options.id, &c.destination);
                (c.destination.clone(), run)
            })
            .collect();
        let work = group::sync_group(&*self.host, &self.store, &self.options, &group, &spans);
        let stopped = async move {
            let _ = stop.wait_for(|stop| *stop).await;
        };
        let interrupted = |outcome| -> Vec<Ended> {
            claims
                .iter()
                .map(|c| Ended {
                    destination: c.destination.clone(),
                    outcome,
                    report: None,
                })
                .collect()
        };
        let ended = match group
            .run_until(work, stopped)
            .instrument(span.clone())
            .await
        {
            Ok(ended) => ended,
            Err(Interrupted::Panicked(panic)) => {
                // A bug in the host, an adapter or the core: released as failed runs (with the
                // failure backoff, so a panic that repeats does not spin).
                error!(parent: &span, worker = %self.options.id, schedule = %schedule, %panic,
                       "a sync group panicked: its destinations are released as failed runs");
                interrupted(RunOutcome::Failed)
            }
            Err(_) => interrupted(RunOutcome::Interrupted),
        };
        self.release(&group, ended, &spans).instrument(span).await;
    }

    /// Releases a group's destinations with their next due times (one jitter draw for the group,
    /// so that its destinations stay due together), and traces each run.
    async fn release(&self, group: &LeasedGroup, ended: Vec<Ended>, spans: &group::RunSpans) {
        let unit = self.unit();
        for e in ended {
            let Some(claim) = group
                .claims()
                .iter()
                .find(|c| c.destination == e.destination)
            else {
                continue;
            };
            let next = next_run(e.outcome, claim.failures, &self.options, unit);
            let span = spans.get(&e.destination).cloned().unwrap_or_else(|| {
                group::destination_span(&tracing::Span::current(), &self.options.id, &e.destination)
            });
            group::trace_run(&span, &e, next.map(|(d, _)| d.as_secs_f64()));
            // Retired: its row went with its state; nothing to release.
            let Some((wait, failures)) = next else {
                continue;
            };
            if let Err(error) = group.release(&e.destination, wait, failures).await {
                warn!(worker = %self.options.id, destination = %e.destination, %error,
                      "releasing failed: the lease runs out by itself");
            }
        }
        // Anything the sync did not report on (none, unless a bug): due at once.
        if let Err(error) = group.release_rest(Duration::ZERO).await {
            warn!(worker = %self.options.id, %error, "releasing failed: the lease runs out by itself");
        }
    }

    /// A group's task ended. Groups release what they hold themselves, and catch their work's
    /// panics; a task that panicked anyway (in the release) gave its destinations back when
    /// its group was dropped. The panic is logged.
    fn joined(
        &self,
        joined: Result<(task::Id, ()), task::JoinError>,
        running: &mut HashMap<task::Id, String>,
    ) {
        let error = match joined {
            Ok((id, ())) => {
                running.remove(&id);
                return;
            }
            Err(error) => error,
        };
        let schedule = running.remove(&error.id()).unwrap_or_default();
        if error.is_panic() {
            let panic = panic_message(error.into_panic().as_ref());
            error!(worker = %self.options.id, %schedule, %panic, "a sync group's task panicked");
        }
    }

    /// Lets running syncs finish within the grace period from `asked` (when shutdown was asked),
    /// then stops the rest (they release what they hold, due at once) and waits for them until
    /// [`RELEASE_AT_SHUTDOWN`] after the grace at most: with the database gone, what they hold
    /// runs out by itself. Whatever happens, it returns within the grace and
    /// [`RELEASE_AT_SHUTDOWN`] of `asked`.
    async fn shut_down(&self, mut groups: Groups, stop: watch::Sender<bool>, asked: Instant) {
        let grace_end = asked + self.options.shutdown_grace;
        let grace = tokio::time::sleep_until(grace_end.into());
        tokio::pin!(grace);
        loop {
            tokio::select! {
                () = &mut grace => break,
                next = groups.tasks.join_next_with_id() => match next {
                    Some(joined) => self.joined(joined, &mut groups.schedules),
                    None => break,
                },
            }
        }
        let _ = stop.send(true);
        let released = async {
            while let Some(joined) = groups.tasks.join_next_with_id().await {
                self.joined(joined, &mut groups.schedules);
            }
        };
        let bound = grace_end + RELEASE_AT_SHUTDOWN;
        if tokio::time::timeout_at(bound.into(), released)
            .await
            .is_err()
        {
            warn!(worker = %self.options.id, "releasing at shutdown timed out: the leases run out by themselves");
        }
        groups.tasks.abort_all();
    }
}

/// How long a shutdown waits for the releases after the grace: the grace (20 s by default) and
/// this, 25 s in all from the moment shutdown is asked (a claim in flight then included), stay
/// under the 30 s orchestrators usually give.
pub const RELEASE_AT_SHUTDOWN: Duration = Duration::from_secs(5);

/// The sync groups running, and the host schedule of each task (for logs).
#[derive(Default)]
struct Groups {
    tasks: JoinSet<()>,
    schedules: HashMap<task::Id, String>,
}

impl Groups {
    fn spawn<H: Host>(
        &mut self,
        inner: &Arc<Inner<H>>,
        group: LeasedGroup,
        stop: watch::Receiver<bool>,
    ) {
        let schedule = group.schedule().map_or("", |s| s.0.as_str()).to_owned();
        let task = self.tasks.spawn(inner.clone().run_group(group, stop));
        self.schedules.insert(task.id(), schedule);
    }
}

/// Aborts a task when dropped.
struct AbortOnDrop(tokio::task::JoinHandle<()>);

impl Drop for AbortOnDrop {
    fn drop(&mut self) {
        self.0.abort();
    }
}
