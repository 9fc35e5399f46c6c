//! The sync worker: the loop a host runs in each of its processes, over one PostgreSQL database
//! (feature `postgres`).
//!
//! A [`Worker`] claims due destinations ([`PostgresStateStore::claim_due`]), groups those of one
//! host schedule into one [`sync`](oncall_core::sync()) call, syncs them through the store's
//! [fenced view](PostgresStateStore::fenced), and releases each with its next due time: the
//! period (hourly by default) with jitter after a success, a doubling backoff after failures, a
//! long wait once its key proved read-only. While it works it renews its leases; a destination
//! whose lease it cannot renew in time is given up (its sync is stopped before the lease runs out,
//! so no other worker ever syncs it at the same time). A sync that panics (a bug in the host, an
//! adapter or the core) is logged, and its destinations are released as failed runs. Shutdown is
//! graceful: no new claims, the running syncs get a grace period to finish, and what is still
//! held is released due at once.
//!
//! The host supplies what only it knows through [`Host`]: a schedule and its destinations by id,
//! and a provider per connection; and enrols its destinations with
//! [`PostgresStateStore::enroll`].
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

use std::collections::{HashMap, HashSet};
use std::future::Future;
use std::hash::{BuildHasher, Hasher};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use oncall_core::DestinationId;
use tokio::sync::Notify;
use tokio::task::{self, JoinSet};
use tracing::{error, info_span, warn, Instrument};

pub use host::{Host, HostSchedule};
pub use schedule::{next_run, RunOutcome};

use crate::postgres::{Claim, PostgresStateStore};
use group::Ended;

/// How a [`Worker`] paces its work.
#[derive(Debug, Clone)]
pub struct WorkerOptions {
    /// Its name as a lease holder: unique among the workers of one database (the default is the
    /// process id and a random part).
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
    /// third of it, and given up a quarter of it before it runs out.
    pub lease: Duration,
    /// How many host schedules it syncs at once (default 4).
    pub concurrency: usize,
    /// How long it waits before looking again when nothing was due (default: two seconds).
    pub idle_poll: Duration,
    /// How long running syncs may take to finish after shutdown is asked (default: 30 s).
    pub shutdown_grace: Duration,
}

impl Default for WorkerOptions {
    fn default() -> WorkerOptions {
        WorkerOptions {
            id: format!("worker-{}-{:08x}", std::process::id(), random_seed() as u32),
            period: Duration::from_secs(3600),
            jitter: 0.1,
            failure_backoff: Duration::from_secs(60),
            max_backoff: Duration::from_secs(3600),
            read_only_backoff: Duration::from_secs(6 * 3600),
            lease: Duration::from_secs(60),
            concurrency: 4,
            idle_poll: Duration::from_secs(2),
            shutdown_grace: Duration::from_secs(30),
        }
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

/// A destination this worker holds: until when it may work on it (a margin before the lease
/// runs out), and the claim it holds it by (its failures in a row before the claim).
#[derive(Debug, Clone)]
struct Held {
    deadline: Instant,
    claim: Claim,
}

struct Inner<H: Host> {
    store: PostgresStateStore,
    host: Arc<H>,
    options: WorkerOptions,
    held: Mutex<HashMap<DestinationId, Held>>,
    /// Woken when a lease was lost.
    lost: Notify,
    rng: Mutex<u64>,
}

impl<H: Host> Worker<H> {
    /// A worker over `store` (migrated) for `host`. Options out of range are brought into it: at
    /// least one schedule at a time, a lease of at least 100 ms, a jitter within 0 and 1.
    pub fn new(store: PostgresStateStore, host: Arc<H>, mut options: WorkerOptions) -> Worker<H> {
        options.concurrency = options.concurrency.max(1);
        options.lease = options.lease.max(Duration::from_millis(100));
        options.jitter = if options.jitter.is_finite() {
            options.jitter.clamp(0.0, 1.0)
        } else {
            0.1
        };
        Worker {
            inner: Arc::new(Inner {
                store,
                host,
                options,
                held: Mutex::new(HashMap::new()),
                lost: Notify::new(),
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
        // Renewal stops with this future, however it ends: a worker dropped mid-run (its task
        // aborted) must not keep its leases alive.
        let _renewer = AbortOnDrop(tokio::spawn(inner.clone().renew_leases()));
        let mut groups = Groups::default();
        let mut shutdown = std::pin::pin!(shutdown);
        loop {
            let free = inner.options.concurrency.saturating_sub(groups.tasks.len());
            let mut claimed = false;
            if free > 0 {
                for group in inner.claim(free).await {
                    claimed = true;
                    groups.spawn(inner, group);
                }
            }
            let room = groups.tasks.len() < inner.options.concurrency;
            tokio::select! {
                biased;
                () = &mut shutdown => break,
                () = std::future::ready(()), if claimed && room => {}
                Some(joined) = groups.tasks.join_next_with_id(), if !groups.tasks.is_empty() => {
                    inner.joined(joined, &mut groups.claims).await;
                }
                () = tokio::time::sleep(inner.options.idle_poll) => {}
            }
        }
        inner.shut_down(groups).await;
    }
}

impl<H: Host> Inner<H> {
    fn held(&self) -> MutexGuard<'_, HashMap<DestinationId, Held>> {
        self.held.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// A quarter of the lease: work on a destination stops that long before its lease runs out.
    fn margin(&self) -> Duration {
        self.options.lease / 4
    }

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

    /// Claims up to `free` due destinations (and their due siblings), grouped by host schedule.
    async fn claim(&self, free: usize) -> Vec<Vec<Claim>> {
        let sent = Instant::now();
        let claims = match self
            .store
            .claim_due(&self.options.id, free, self.options.lease)
            .await
        {
            Ok(claims) => claims,
            Err(e) => {
                warn!(worker = %self.options.id, error = %e, "claiming due destinations failed");
                return Vec::new();
            }
        };
        let deadline = sent + self.options.lease - self.margin();
        let mut held = self.held();
        let mut groups: Vec<Vec<Claim>> = Vec::new();
        for claim in claims {
            held.insert(
                claim.destination.clone(),
                Held {
                    deadline,
                    claim: claim.clone(),
                },
            );
            match groups.iter_mut().find(|g| g[0].schedule == claim.schedule) {
                Some(group) => group.push(claim),
                None => groups.push(vec![claim]),
            }
        }
        groups
    }

    /// Syncs one group unless a lease of it is lost first, then releases it.
    async fn run_group(self: Arc<Self>, claims: Vec<Claim>) {
        let span = info_span!(
            "sync_group",
            worker = %self.options.id,
            schedule = %schedule_of(&claims),
            destinations = claims.len()
        );
        let spans: group::RunSpans = claims
            .iter()
            .map(|c| {
                let run = group::destination_span(&span, &self.options.id, &c.destination);
                (c.destination.clone(), run)
            })
            .collect();
        let run = group::sync_group(&*self.host, &self.store, &self.options.id, &claims, &spans);
        let ended = unless_lost(self.lease_lost(&claims), run.instrument(span.clone()))
            .await
            .unwrap_or_else(|| {
                claims
                    .iter()
                    .map(|c| Ended {
                        destination: c.destination.clone(),
                        outcome: RunOutcome::Interrupted,
                        report: None,
                    })
                    .collect()
            });
        self.release(&claims, ended, &spans).instrument(span).await;
    }

    /// Completes when any of `claims` is no longer safely held: renewal found it taken, its
    /// deadline passed without a renewal, or the destination is held by another claim now.
    async fn lease_lost(&self, claims: &[Claim]) {
        loop {
            let notified = self.lost.notified();
            tokio::pin!(notified);
            notified.as_mut().enable();
            let deadline = {
                let held = self.held();
                let deadlines: Option<Vec<Instant>> = claims
                    .iter()
                    .map(|c| self.held_by(&held, c).map(|h| h.deadline))
                    .collect();
                deadlines.and_then(|d| d.into_iter().min())
            };
            let Some(deadline) = deadline else {
                return;
            };
            if deadline <= Instant::now() {
                return;
            }
            tokio::select! {
                biased;
                () = reached(deadline) => {}
                () = notified => {}
            }
        }
    }

    /// The entry of `held` for `claim`, if this worker still holds the destination by that claim
    /// (not by a newer one).
    fn held_by<'a>(
        &self,
        held: &'a HashMap<DestinationId, Held>,
        claim: &Claim,
    ) -> Option<&'a Held> {
        held.get(&claim.destination)
            .filter(|h| h.claim.id == claim.id)
    }

    /// Forgets `claim` (not a newer claim of its destination).
    fn forget(&self, claim: &Claim) {
        let mut held = self.held();
        if self.held_by(&held, claim).is_some() {
            held.remove(&claim.destination);
        }
    }

    /// Releases a group's destinations with their next due times (one jitter draw for the group,
    /// so that its destinations stay due together), and traces each run.
    async fn release(&self, claims: &[Claim], ended: Vec<Ended>, spans: &group::RunSpans) {
        let unit = self.unit();
        for e in ended {
            let Some(claim) = claims.iter().find(|c| c.destination == e.destination) else {
                continue;
            };
            let next = next_run(e.outcome, claim.failures, &self.options, unit);
            let span = spans.get(&e.destination).cloned().unwrap_or_else(|| {
                group::destination_span(&tracing::Span::current(), &self.options.id, &e.destination)
            });
            group::trace_run(&span, &e, next.map(|(d, _)| d.as_secs_f64()));
            let result = match next {
                Some((wait, failures)) => self
                    .store
                    .release(&self.options.id, claim, wait, failures)
                    .await
                    .map(|_| ()),
                None => self.unenroll(claim).await,
            };
            if let Err(error) = result {
                warn!(worker = %self.options.id, destination = %e.destination, %error,
                      "releasing failed: the lease runs out by itself");
            }
            self.forget(claim);
        }
    }

    async fn unenroll(&self, claim: &Claim) -> Result<(), oncall_core::Error> {
        self.store.unenroll(&claim.destination).await?;
        self.store
            .release(&self.options.id, claim, Duration::ZERO, 0)
            .await
            .map(|_| ())
    }

    /// Renews every held lease each third of the lease; marks lost the ones another worker took.
    async fn renew_leases(self: Arc<Self>) {
        let every = self.options.lease / 3;
        loop {
            tokio::time::sleep(every).await;
            let claims: Vec<Claim> = self.held().values().map(|h| h.claim.clone()).collect();
            if claims.is_empty() {
                continue;
            }
            let sent = Instant::now();
            match self
                .store
                .renew(&self.options.id, &claims, self.options.lease)
                .await
            {
                Ok(kept) => self.renewed(&claims, &kept, sent),
                Err(e) => {
                    warn!(worker = %self.options.id, error = %e, "renewing leases failed");
                }
            }
        }
    }

    fn renewed(&self, asked: &[Claim], kept: &[DestinationId], sent: Instant) {
        let kept: HashSet<&DestinationId> = kept.iter().collect();
        let deadline = sent + self.options.lease - self.margin();
        let mut lost = false;
        let mut held = self.held();
        for claim in asked {
            let id = &claim.destination;
            // A newer claim of the destination (taken since the renewal was sent) is not this one.
            if let Some(h) = held.get_mut(id).filter(|h| h.claim.id == claim.id) {
                if kept.contains(id) {
                    h.deadline = deadline;
                } else {
                    warn!(worker = %self.options.id, destination = %id, "lease lost: another worker holds it");
                    h.deadline = sent;
                    lost = true;
                }
            }
        }
        drop(held);
        if lost {
            self.lost.notify_waiters();
        }
    }

    /// A group's task ended. A group releases its destinations itself when it finishes; one that
    /// panicked (a bug in the host, an adapter or the core) did not: its destinations are
    /// released here as failed runs (with the failure backoff, so a panic that repeats does not
    /// spin), and the panic is logged. A cancelled group (shutdown) is left to `shut_down`.
    async fn joined(
        &self,
        joined: Result<(task::Id, ()), task::JoinError>,
        running: &mut HashMap<task::Id, Vec<Claim>>,
    ) {
        let error = match joined {
            Ok((id, ())) => {
                running.remove(&id);
                return;
            }
            Err(error) => error,
        };
        let Some(claims) = running.remove(&error.id()) else {
            return;
        };
        if !error.is_panic() {
            return;
        }
        let payload = error.into_panic();
        let panic = payload
            .downcast_ref::<&str>()
            .map(|s| (*s).to_owned())
            .or_else(|| payload.downcast_ref::<String>().cloned())
            .unwrap_or_else(|| "a panic without a message".to_owned());
        error!(worker = %self.options.id, schedule = %schedule_of(&claims), %panic,
               "a sync group panicked: its destinations are released as failed runs");
        let ended = claims
            .iter()
            .map(|c| Ended {
                destination: c.destination.clone(),
                outcome: RunOutcome::Failed,
                report: None,
            })
            .collect();
        self.release(&claims, ended, &group::RunSpans::new()).await;
    }

    /// Lets running syncs finish within the grace period, stops the rest, and releases what is
    /// still held, due at once.
    async fn shut_down(&self, mut groups: Groups) {
        let grace = tokio::time::sleep(self.options.shutdown_grace);
        tokio::pin!(grace);
        loop {
            tokio::select! {
                () = &mut grace => break,
                next = groups.tasks.join_next_with_id() => match next {
                    Some(joined) => self.joined(joined, &mut groups.claims).await,
                    None => break,
                },
            }
        }
        groups.tasks.abort_all();
        while let Some(joined) = groups.tasks.join_next_with_id().await {
            self.joined(joined, &mut groups.claims).await;
        }
        let left: Vec<Held> = self.held().drain().map(|(_, h)| h).collect();
        for held in left {
            let claim = &held.claim;
            let released = self
                .store
                .release(&self.options.id, claim, Duration::ZERO, claim.failures)
                .await;
            if let Err(error) = released {
                warn!(worker = %self.options.id, destination = %claim.destination, %error,
                      "releasing at shutdown failed: the lease runs out by itself");
            }
        }
    }
}

/// Runs `work` unless `lost` completes first (`None`).
async fn unless_lost<T>(
    lost: impl Future<Output = ()>,
    work: impl Future<Output = T>,
) -> Option<T> {
    tokio::select! {
        // Biased, the lease first: at every wake-up the lease is checked before the sync is
        // polled, so once its deadline has passed the sync is not polled again and cannot send
        // one more request (a write) after it, even when both are ready at once. An unbiased
        // select picks either branch at random.
        biased;
        () = lost => None,
        done = work => Some(done),
    }
}

/// Completes at `deadline`, by the clock at every poll: a task woken by other work (the sync's
/// answers) after the deadline sees it passed even before the runtime's timer has fired.
async fn reached(deadline: Instant) {
    let timer = tokio::time::sleep_until(deadline.into());
    tokio::pin!(timer);
    std::future::poll_fn(|cx| {
        if Instant::now() >= deadline {
            return std::task::Poll::Ready(());
        }
        timer.as_mut().poll(cx)
    })
    .await;
}

/// The host schedule of a group's claims, for logs.
fn schedule_of(claims: &[Claim]) -> &str {
    claims
        .first()
        .and_then(|c| c.schedule.as_ref())
        .map_or("", |s| s.0.as_str())
}

/// The sync groups running, and the claims each task holds (to release them if it panics).
#[derive(Default)]
struct Groups {
    tasks: JoinSet<()>,
    claims: HashMap<task::Id, Vec<Claim>>,
}

impl Groups {
    fn spawn<H: Host>(&mut self, inner: &Arc<Inner<H>>, claims: Vec<Claim>) {
        let task = self.tasks.spawn(inner.clone().run_group(claims.clone()));
        self.claims.insert(task.id(), claims);
    }
}

/// Aborts a task when dropped.
struct AbortOnDrop(tokio::task::JoinHandle<()>);

impl Drop for AbortOnDrop {
    fn drop(&mut self) {
        self.0.abort();
    }
}

/// A random seed from the standard library's randomly keyed hasher (no extra crate).
fn random_seed() -> u64 {
    let mut hasher = std::collections::hash_map::RandomState::new().build_hasher();
    hasher.write_u64(
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_nanos() as u64),
    );
    hasher.finish()
}

#[cfg(test)]
mod tests {
    use std::future::poll_fn;
    use std::pin::pin;
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::task::Poll;

    use super::*;

    /// Polls `future` once.
    async fn poll_once<F: Future + Unpin>(future: &mut F) -> Poll<F::Output> {
        poll_fn(|cx| Poll::Ready(std::pin::Pin::new(&mut *future).poll(cx))).await
    }

    #[tokio::test]
    async fn once_the_lease_is_lost_the_work_is_not_polled_again_even_when_both_are_ready() {
        // Both ready at the same poll, many times over: an unbiased race would pick the work
        // about half of the time.
        let polls = AtomicUsize::new(0);
        for _ in 0..64 {
            let work = poll_fn(|_| {
                polls.fetch_add(1, Ordering::SeqCst);
                Poll::Ready("a write")
            });
            assert_eq!(unless_lost(std::future::ready(()), work).await, None);
        }
        assert_eq!(
            polls.load(Ordering::SeqCst),
            0,
            "the work ran after its lease was lost"
        );
        assert_eq!(
            unless_lost(std::future::pending(), std::future::ready(7)).await,
            Some(7)
        );
    }

    #[tokio::test]
    async fn a_deadline_that_passed_is_seen_at_the_next_poll_before_the_timer_fires() {
        let deadline = Instant::now() + Duration::from_millis(30);
        let mut waiting = pin!(reached(deadline));
        assert!(poll_once(&mut waiting).await.is_pending());
        // The runtime's thread is blocked past the deadline: its timer has not fired when the
        // task is polled next (woken by the sync's own work, say).
        std::thread::sleep(Duration::from_millis(40));
        assert!(poll_once(&mut waiting).await.is_ready());
    }
}
