//! The lease API a host's own job system drives (apalis, a cron job, a tokio task of its own),
//! without the [`Worker`](crate::worker::Worker) loop: claim a group of destinations, run the
//! work under a guard that renews the leases, stops the work at the deadline, releases what it
//! holds and survives a panic. The worker runs on it too.
//!
//! ```no_run
//! use std::time::Duration;
//! use oncall_sync::postgres::{LeaseOptions, PostgresStateStore};
//! # async fn job(store: PostgresStateStore) -> Result<(), oncall_sync::Error> {
//! let options = LeaseOptions::new("nightly-job");
//! // One group at a time: a group's leases are renewed only while it runs (claim as many as
//! // you run at once).
//! while let Some(group) = store.claim_groups(&options, 1).await?.pop() {
//!     // `group.store()` is the fenced store to sync through; `group.guard_provider(p)` a
//!     // provider that refuses calls once the lease's deadline has passed.
//!     let outcome = group.run(async { /* sync the group's destinations */ }).await;
//!     let next = if outcome.is_ok() { Duration::from_secs(3600) } else { Duration::ZERO };
//!     group.release_rest(next).await?;
//! }
//! # Ok(()) }
//! ```
//!
//! What the guard promises: the work is polled only while every lease of the group is held by
//! this holder's clock (renewed every third of the lease, and given up a quarter of the lease
//! before it runs out); once the deadline passes, the work is dropped before it is polled again,
//! and a provider from [`LeasedGroup::guard_provider`] refuses to send another request. A request
//! already sent (on the wire, or handed to the HTTP client) when the process stalls past its
//! deadline may still reach the vendor after another holder took over: the state's version
//! fences its save, and the next run adopts what such a request created (R6), so it never
//! leaves a duplicate; it is the one case where two holders' requests reach a vendor schedule
//! in the same stretch of time.

use std::collections::HashSet;
use std::future::Future;
use std::panic::AssertUnwindSafe;
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use async_trait::async_trait;
use oncall_core::{
    Capabilities, Deletion, DestinationId, Error, NewOverride, Override, OverrideId, Provider,
    RoleTimeline, ScheduleId, Span, VendorSchedule, VendorScheduleId, Window,
};

use super::leases::{Claim, FencedStore, HeldElsewhere, DEFAULT_MAX_GROUP};
use super::PostgresStateStore;

/// Who claims, for how long, and how many destinations of one host schedule at most.
#[derive(Debug, Clone)]
pub struct LeaseOptions {
    /// The holder's name: unique among all holders of the database
    /// ([`unique_holder`](super::unique_holder) makes one).
    pub holder: String,
    /// How long a claim holds a destination unless renewed (default: a minute). Renewed every
    /// third of it; the work stops a quarter of it before it runs out.
    pub lease: Duration,
    /// At most this many destinations of one host schedule in one group, those a claim found
    /// first included (default [`DEFAULT_MAX_GROUP`]).
    pub max_group: usize,
}

impl LeaseOptions {
    /// A holder named `prefix` plus this process's id and a random part, a one-minute lease.
    pub fn new(prefix: &str) -> LeaseOptions {
        LeaseOptions {
            holder: super::unique_holder(prefix),
            lease: Duration::from_secs(60),
            max_group: DEFAULT_MAX_GROUP,
        }
    }

    /// The same options with another lease (at least 100 ms).
    pub fn with_lease(mut self, lease: Duration) -> LeaseOptions {
        self.lease = lease.max(Duration::from_millis(100));
        self
    }

    /// The same options with another holder name (it must be unique: see [`Self::holder`]).
    pub fn with_holder(mut self, holder: impl Into<String>) -> LeaseOptions {
        self.holder = holder.into();
        self
    }

    /// The same options with another bound on a group (at least 1).
    pub fn with_max_group(mut self, max_group: usize) -> LeaseOptions {
        self.max_group = max_group.max(1);
        self
    }
}

/// Why [`LeasedGroup::run`] stopped the work before it ended.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum Interrupted {
    /// A lease was lost: a renewal found a claim taken over or released, or the deadline passed
    /// before a renewal got through. Its destination may be held by someone else now.
    LeaseLost,
    /// The caller's `stop` completed ([`LeasedGroup::run_until`]).
    Stopped,
    /// The work panicked, with this message.
    Panicked(String),
}

impl std::fmt::Display for Interrupted {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Interrupted::LeaseLost => write!(f, "a lease was lost"),
            Interrupted::Stopped => write!(f, "stopped"),
            Interrupted::Panicked(message) => write!(f, "the work panicked: {message}"),
        }
    }
}

impl PostgresStateStore {
    /// Claims up to `limit` due destinations (see [`claim_due`](Self::claim_due)) with their
    /// due siblings, as one [`LeasedGroup`] per host schedule (at most
    /// [`LeaseOptions::max_group`] destinations each, at most `limit` groups). Run each group as
    /// soon as it is claimed: its leases are renewed only while [`LeasedGroup::run`] runs, so
    /// claim as many as you run at once.
    pub async fn claim_groups(
        &self,
        options: &LeaseOptions,
        limit: usize,
    ) -> Result<Vec<LeasedGroup>, Error> {
        let asked = Instant::now();
        let claims = self
            .claim_due_grouped(&options.holder, limit, options.max_group, options.lease)
            .await?;
        Ok(Self::grouped(claims)
            .into_iter()
            .map(|claims| LeasedGroup::new(self, options, claims, asked, false))
            .collect())
    }

    /// [`claim_groups`](Self::claim_groups) of one host schedule's due destinations only: what
    /// a job that syncs one schedule claims, leaving every other schedule's to its own job.
    pub async fn claim_groups_of(
        &self,
        options: &LeaseOptions,
        schedule: &ScheduleId,
        limit: usize,
    ) -> Result<Vec<LeasedGroup>, Error> {
        let asked = Instant::now();
        let claims = self
            .claim_due_of(
                &options.holder,
                Some(schedule),
                limit,
                options.max_group,
                options.lease,
            )
            .await?;
        Ok(Self::grouped(claims)
            .into_iter()
            .map(|claims| LeasedGroup::new(self, options, claims, asked, false))
            .collect())
    }

    /// Claims by host schedule, one list each, in the order found.
    fn grouped(claims: Vec<Claim>) -> Vec<Vec<Claim>> {
        let mut groups: Vec<Vec<Claim>> = Vec::new();
        for claim in claims {
            match groups.iter_mut().find(|g| g[0].schedule == claim.schedule) {
                Some(group) => group.push(claim),
                None => groups.push(vec![claim]),
            }
        }
        groups
    }

    /// Claims `destinations` by name, due or not (see [`claim_now`](Self::claim_now)), as one
    /// group (`None` when none was free), and those another holder keeps. A group claimed by
    /// name is given back as it was (due as before) unless released otherwise.
    pub async fn claim_named_group(
        &self,
        options: &LeaseOptions,
        destinations: &[DestinationId],
    ) -> Result<(Option<LeasedGroup>, Vec<HeldElsewhere>), Error> {
        let asked = Instant::now();
        let (claims, held) = self
            .claim_now(&options.holder, destinations, options.lease)
            .await?;
        let group =
            (!claims.is_empty()).then(|| LeasedGroup::new(self, options, claims, asked, true));
        Ok((group, held))
    }
}

/// Claimed destinations (of one host schedule, or named), held while [`run`](Self::run) works
/// on them. Dropped with destinations still held (a panic, a cancelled task), it gives them back
/// in a task of its own: due at once (or as they were, when claimed by name).
pub struct LeasedGroup {
    store: PostgresStateStore,
    holder: String,
    lease: Duration,
    claims: Vec<Claim>,
    fenced: FencedStore,
    /// Until when the work may go on: a quarter-lease before the leases run out, as last renewed.
    deadline: Arc<Mutex<Instant>>,
    released: Mutex<HashSet<DestinationId>>,
    by_name: bool,
}

impl std::fmt::Debug for LeasedGroup {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LeasedGroup")
            .field("holder", &self.holder)
            .field("claims", &self.claims)
            .finish_non_exhaustive()
    }
}

impl LeasedGroup {
    fn new(
        store: &PostgresStateStore,
        options: &LeaseOptions,
        claims: Vec<Claim>,
        asked: Instant,
        by_name: bool,
    ) -> LeasedGroup {
        // The leases run from the database's now, a little after `asked`.
        let deadline = asked + options.lease - margin(options.lease);
        LeasedGroup {
            fenced: store.fenced(&claims),
            store: store.clone(),
            holder: options.holder.clone(),
            lease: options.lease,
            claims,
            deadline: Arc::new(Mutex::new(deadline)),
            released: Mutex::new(HashSet::new()),
            by_name,
        }
    }

    /// The claims (all of [`schedule`](Self::schedule), unless claimed by name).
    pub fn claims(&self) -> &[Claim] {
        &self.claims
    }

    /// The host schedule of the group (`None` for destinations claimed by name that no host
    /// schedule enrolled).
    pub fn schedule(&self) -> Option<&ScheduleId> {
        self.claims.first().and_then(|c| c.schedule.as_ref())
    }

    /// The holder's name.
    pub fn holder(&self) -> &str {
        &self.holder
    }

    /// The fenced store to sync the group's destinations through: a destination loads and
    /// saves only while this group's claim is the latest.
    pub fn store(&self) -> &FencedStore {
        &self.fenced
    }

    /// Until when the work may go on, by this process's clock.
    pub fn deadline(&self) -> Instant {
        *self.deadline.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// `provider`, refusing every call once the group's deadline has passed (an
    /// [`Error::Conflict`] saying the lease ran out, nothing sent): a process that stalled past
    /// its lease in the middle of a sync sends nothing more when it resumes.
    pub fn guard_provider(&self, provider: Arc<dyn Provider>) -> LeasedProvider {
        LeasedProvider {
            inner: provider,
            deadline: self.deadline.clone(),
        }
    }

    /// Runs `work` while the group's leases are held: see [`run_until`](Self::run_until).
    pub async fn run<T>(&self, work: impl Future<Output = T>) -> Result<T, Interrupted> {
        self.run_until(work, std::future::pending()).await
    }

    /// Runs `work` while the group's leases are held, renewing them every third of the lease (a
    /// twelfth after a renewal failed), until it ends, `stop` completes, or a lease is lost; a panic of the work is caught. At
    /// every wake-up the deadline is checked before the work is polled: once it has passed, the
    /// work is not polled again. The leases stay held after it returns: release them.
    pub async fn run_until<T>(
        &self,
        work: impl Future<Output = T>,
        stop: impl Future<Output = ()>,
    ) -> Result<T, Interrupted> {
        let mut work = std::pin::pin!(CatchUnwind(Box::pin(work)));
        let mut stop = std::pin::pin!(stop);
        let mut renewal: Option<Pin<Box<dyn Future<Output = Renewal> + Send + '_>>> = None;
        let mut next_renewal = Instant::now() + self.lease / 3;
        loop {
            let deadline = self.deadline();
            tokio::select! {
                // The lease first, then the caller's stop, then the renewal, then the work.
                biased;
                () = reached(deadline) => return Err(Interrupted::LeaseLost),
                () = &mut stop => return Err(Interrupted::Stopped),
                renewed = poll_renewal(&mut renewal) => {
                    renewal = None;
                    // After a failed renewal, try again soon: the deadline is near.
                    let every = if renewed == Renewal::Failed { self.lease / 12 } else { self.lease / 3 };
                    next_renewal = Instant::now() + every;
                    if renewed == Renewal::Lost {
                        return Err(Interrupted::LeaseLost);
                    }
                }
                () = tokio::time::sleep_until(next_renewal.into()), if renewal.is_none() => {
                    renewal = Some(Box::pin(self.renew()));
                }
                done = &mut work => return done.map_err(Interrupted::Panicked),
            }
        }
    }

    /// Renews the group's claims that are not released yet; moves the deadline on when all
    /// were renewed.
    async fn renew(&self) -> Renewal {
        let held: Vec<Claim> = {
            let released = self.released.lock().unwrap_or_else(|e| e.into_inner());
            self.claims
                .iter()
                .filter(|c| !released.contains(&c.destination))
                .cloned()
                .collect()
        };
        if held.is_empty() {
            return Renewal::Kept;
        }
        let sent = Instant::now();
        match self.store.renew(&self.holder, &held, self.lease).await {
            Ok(kept) if kept.len() == held.len() => {
                *self.deadline.lock().unwrap_or_else(|e| e.into_inner()) =
                    sent + self.lease - margin(self.lease);
                Renewal::Kept
            }
            Ok(kept) => {
                let lost: Vec<&DestinationId> = held
                    .iter()
                    .map(|c| &c.destination)
                    .filter(|d| !kept.contains(d))
                    .collect();
                tracing::warn!(holder = %self.holder, ?lost, "lease lost: another holder has it");
                Renewal::Lost
            }
            // The deadline stands: if no renewal gets through before it, the work stops.
            Err(error) => {
                tracing::warn!(holder = %self.holder, %error, "renewing leases failed");
                Renewal::Failed
            }
        }
    }

    /// Releases one destination: due again `next_run` from now (at once if a sync was
    /// requested during the claim), with `failures` runs in a row failed. Returns false when the
    /// claim no longer held it.
    pub async fn release(
        &self,
        destination: &DestinationId,
        next_run: Duration,
        failures: u32,
    ) -> Result<bool, Error> {
        let Some(claim) = self.claims.iter().find(|c| &c.destination == destination) else {
            return Ok(false);
        };
        self.mark_released(destination);
        self.store
            .release(&self.holder, claim, next_run, failures)
            .await
    }

    /// Releases what is still held: due again `next_run` from now with their failures in a row
    /// unchanged; a group claimed by name is given back as it was (due as before). A failed
    /// release is left to the lease's expiry, and the first error returned.
    pub async fn release_rest(&self, next_run: Duration) -> Result<(), Error> {
        let mut first_error = None;
        for claim in self.unreleased() {
            self.mark_released(&claim.destination);
            let result = if self.by_name {
                self.store.give_back(&self.holder, &claim).await
            } else {
                self.store
                    .release(&self.holder, &claim, next_run, claim.failures)
                    .await
            };
            if let Err(e) = result {
                first_error.get_or_insert(e);
            }
        }
        first_error.map_or(Ok(()), Err)
    }

    fn unreleased(&self) -> Vec<Claim> {
        let released = self.released.lock().unwrap_or_else(|e| e.into_inner());
        self.claims
            .iter()
            .filter(|c| !released.contains(&c.destination))
            .cloned()
            .collect()
    }

    fn mark_released(&self, destination: &DestinationId) {
        self.released
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .insert(destination.clone());
    }
}

impl Drop for LeasedGroup {
    fn drop(&mut self) {
        let rest = self.unreleased();
        if rest.is_empty() {
            return;
        }
        // Outside a runtime the leases simply run out.
        let Ok(runtime) = tokio::runtime::Handle::try_current() else {
            return;
        };
        let (store, holder, by_name) = (self.store.clone(), self.holder.clone(), self.by_name);
        runtime.spawn(async move {
            for claim in rest {
                let _ = if by_name {
                    store.give_back(&holder, &claim).await
                } else {
                    store
                        .release(&holder, &claim, Duration::ZERO, claim.failures)
                        .await
                };
            }
        });
    }
}

/// A quarter of the lease: the work stops that long before a lease runs out.
fn margin(lease: Duration) -> Duration {
    lease / 4
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Renewal {
    Kept,
    Lost,
    Failed,
}

/// The renewal under way, or never (none is).
async fn poll_renewal(
    renewal: &mut Option<Pin<Box<dyn Future<Output = Renewal> + Send + '_>>>,
) -> Renewal {
    match renewal {
        Some(r) => r.await,
        None => std::future::pending().await,
    }
}

/// Completes at `deadline`, by the clock at every poll: a task woken by other work (the sync's
/// answers) after the deadline sees it passed even before the runtime's timer has fired.
pub(crate) async fn reached(deadline: Instant) {
    let timer = tokio::time::sleep_until(deadline.into());
    tokio::pin!(timer);
    std::future::poll_fn(|cx| {
        if Instant::now() >= deadline {
            return Poll::Ready(());
        }
        timer.as_mut().poll(cx)
    })
    .await;
}

/// A future whose panic becomes `Err(message)`.
struct CatchUnwind<F>(Pin<Box<F>>);

impl<F: Future> Future for CatchUnwind<F> {
    type Output = Result<F::Output, String>;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let inner = self.0.as_mut();
        match std::panic::catch_unwind(AssertUnwindSafe(|| inner.poll(cx))) {
            Ok(Poll::Pending) => Poll::Pending,
            Ok(Poll::Ready(v)) => Poll::Ready(Ok(v)),
            Err(payload) => Poll::Ready(Err(panic_message(payload.as_ref()))),
        }
    }
}

/// A panic's message, where it has one.
pub(crate) fn panic_message(payload: &(dyn std::any::Any + Send)) -> String {
    payload
        .downcast_ref::<&str>()
        .map(|s| (*s).to_owned())
        .or_else(|| payload.downcast_ref::<String>().cloned())
        .unwrap_or_else(|| "a panic without a message".to_owned())
}

/// A provider that sends nothing once its group's deadline has passed
/// ([`LeasedGroup::guard_provider`]).
pub struct LeasedProvider {
    inner: Arc<dyn Provider>,
    deadline: Arc<Mutex<Instant>>,
}

impl std::fmt::Debug for LeasedProvider {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LeasedProvider")
            .field("provider", &self.inner.name())
            .finish_non_exhaustive()
    }
}

impl LeasedProvider {
    /// Checked right before each call is handed to the provider.
    fn check(&self, schedule: &VendorScheduleId) -> Result<(), Error> {
        let deadline = *self.deadline.lock().unwrap_or_else(|e| e.into_inner());
        if Instant::now() >= deadline {
            return Err(Error::Conflict {
                message: format!(
                    "vendor schedule {schedule}: the lease ran out before this call, which was \
                     not sent (the destination is not held by this worker any more)"
                ),
            });
        }
        Ok(())
    }
}

#[async_trait]
impl Provider for LeasedProvider {
    fn name(&self) -> &str {
        self.inner.name()
    }

    fn capabilities(&self) -> Capabilities {
        self.inner.capabilities()
    }

    fn account(&self) -> Option<String> {
        self.inner.account()
    }

    async fn list_schedules(&self) -> Result<oncall_core::ScheduleListing, Error> {
        self.check(&VendorScheduleId("*".into()))?;
        self.inner.list_schedules().await
    }

    async fn schedule(&self, schedule: &VendorScheduleId) -> Result<VendorSchedule, Error> {
        self.check(schedule)?;
        self.inner.schedule(schedule).await
    }

    async fn on_call(
        &self,
        schedule: &VendorScheduleId,
        window: Window,
    ) -> Result<Vec<RoleTimeline>, Error> {
        self.check(schedule)?;
        self.inner.on_call(schedule, window).await
    }

    async fn get_override(
        &self,
        schedule: &VendorScheduleId,
        id: &OverrideId,
    ) -> Result<Option<Override>, Error> {
        self.check(schedule)?;
        self.inner.get_override(schedule, id).await
    }

    async fn list_overrides(
        &self,
        schedule: &VendorScheduleId,
        window: Window,
    ) -> Result<Vec<Override>, Error> {
        self.check(schedule)?;
        self.inner.list_overrides(schedule, window).await
    }

    async fn create_overrides(
        &self,
        schedule: &VendorScheduleId,
        overrides: &[NewOverride],
    ) -> Result<Vec<Result<Override, Error>>, Error> {
        self.check(schedule)?;
        self.inner.create_overrides(schedule, overrides).await
    }

    async fn update_override(
        &self,
        schedule: &VendorScheduleId,
        id: &OverrideId,
        span: &Span,
    ) -> Result<Override, Error> {
        self.check(schedule)?;
        self.inner.update_override(schedule, id, span).await
    }

    async fn delete_override(
        &self,
        schedule: &VendorScheduleId,
        id: &OverrideId,
    ) -> Result<Deletion, Error> {
        self.check(schedule)?;
        self.inner.delete_override(schedule, id).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_panic_in_the_work_is_caught_with_its_message() {
        let caught = CatchUnwind(Box::pin(async {
            tokio::task::yield_now().await;
            panic!("boom in the host");
        }))
        .await;
        assert_eq!(caught, Err::<(), _>("boom in the host".to_owned()));
        assert_eq!(CatchUnwind(Box::pin(async { 7 })).await, Ok(7));
    }

    #[tokio::test]
    async fn a_deadline_that_passed_is_seen_at_the_next_poll_before_the_timer_fires() {
        use std::future::poll_fn;
        let deadline = Instant::now() + Duration::from_millis(30);
        let mut waiting = std::pin::pin!(reached(deadline));
        let first = poll_fn(|cx| Poll::Ready(waiting.as_mut().poll(cx))).await;
        assert!(first.is_pending());
        // The runtime's thread is blocked past the deadline: its timer has not fired when the
        // task is polled next (woken by the sync's own work, say).
        std::thread::sleep(Duration::from_millis(40));
        let second = poll_fn(|cx| Poll::Ready(waiting.as_mut().poll(cx))).await;
        assert!(second.is_ready());
    }
}
