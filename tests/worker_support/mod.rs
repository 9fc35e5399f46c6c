//! A fleet for worker tests and the workers benchmark: a real PostgreSQL schema, both vendor
//! simulators, a host with `n` schedules of two roles (primary to Opsgenie, secondary to
//! PagerDuty: two destinations per schedule), and workers started (and killed) at will, each
//! with its own pool and its own tagging forwarders in front of the simulators.

#![allow(dead_code)] // each test binary uses a part

pub mod pg_proxy;
pub mod proxy;

use std::collections::{HashMap, HashSet};
use std::sync::atomic::{AtomicI64, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use async_trait::async_trait;
use chrono::{DateTime, TimeDelta, TimeZone, Utc};
use oncall_sync::opsgenie::testkit::OpsgenieSimulator;
use oncall_sync::opsgenie::OpsgenieBuilder;
use oncall_sync::pagerduty::testkit::PagerDutySimulator;
use oncall_sync::postgres::PostgresStateStore;
use oncall_sync::testkit::VendorSimulator;
use oncall_sync::worker::{Host, HostSchedule, Worker, WorkerOptions};
use oncall_sync::{
    Capabilities, ConnectionId, Deletion, Destination, DestinationId, DestinationMode, Email,
    Error, Member, NewOverride, Override, OverrideId, Provider, RoleIndex, RoleTimeline, Schedule,
    ScheduleId, Shift, Span, VendorSchedule, VendorScheduleId, Window,
};
use tokio::sync::oneshot;
use tokio::task::JoinHandle;

/// Shifts per host schedule (daily, from the start day).
pub const DAYS: u32 = 400;
/// The export horizon.
pub const HORIZON_DAYS: i64 = 7;

pub fn people() -> Vec<Email> {
    ["ann", "bob", "cat", "dan"]
        .iter()
        .map(|n| Email::parse(&format!("{n}@example.com")).unwrap())
        .collect()
}

/// 2024-03-01 09:00 UTC plus `days`.
pub fn day(days: i64) -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2024, 3, 1, 9, 0, 0).unwrap() + TimeDelta::days(days)
}

/// The host's database: its schedules, and its clock (the simulators' clock).
pub struct Rota {
    schedules: Mutex<HashMap<ScheduleId, HostSchedule>>,
    now: Mutex<DateTime<Utc>>,
    /// Schedules whose reading panics (a bug in the host).
    panicking: Mutex<HashSet<ScheduleId>>,
    /// Schedules the host answers `None` for, and destinations it leaves out of its answers (a
    /// lagging replica, a config that does not know them).
    hidden: Mutex<HashSet<String>>,
}

impl Rota {
    /// From now on, asking the host for schedule `i` panics.
    pub fn panic_on(&self, i: usize) {
        self.panicking.lock().unwrap().insert(schedule_id(i));
    }

    pub fn schedule(&self, id: &ScheduleId) -> Option<HostSchedule> {
        self.schedules.lock().unwrap().get(id).cloned()
    }

    /// From now on the host's answers leave out `what`: a host schedule (answered `None`) or a
    /// destination (missing from its schedule's destinations); until [`show`](Self::show).
    pub fn hide(&self, what: &str) {
        self.hidden.lock().unwrap().insert(what.to_owned());
    }

    pub fn show(&self, what: &str) {
        self.hidden.lock().unwrap().remove(what);
    }

    /// The schedule as the host answers it now (hidden parts left out).
    fn answer(&self, id: &ScheduleId) -> Option<HostSchedule> {
        let hidden = self.hidden.lock().unwrap();
        if hidden.contains(&id.0) {
            return None;
        }
        let mut s = self.schedule(id)?;
        s.destinations.retain(|d| !hidden.contains(&d.id.0));
        Some(s)
    }

    pub fn now(&self) -> DateTime<Utc> {
        *self.now.lock().unwrap()
    }

    /// Swaps both roles' assignees between shifts `a` and `b` (days from the start) of schedule `i`.
    pub fn swap(&self, i: usize, a: i64, b: i64) {
        let mut schedules = self.schedules.lock().unwrap();
        let s = schedules.get_mut(&schedule_id(i)).unwrap();
        for role in [RoleIndex(0), RoleIndex(1)] {
            s.schedule.swap_assignees(role, day(a), day(b)).unwrap();
        }
    }
}

pub fn schedule_id(i: usize) -> ScheduleId {
    ScheduleId(format!("s{i:03}"))
}

/// The destinations of schedule `i`: (id, vendor schedule, opsgenie?).
pub fn destinations_of(i: usize) -> [Destination; 2] {
    [
        Destination {
            id: DestinationId(format!("s{i:03}-og")),
            connection: ConnectionId("og".into()),
            schedule: VendorScheduleId(format!("og-{i:03}")),
            role: RoleIndex(0),
            mode: DestinationMode::Protect,
        },
        Destination {
            id: DestinationId(format!("s{i:03}-pd")),
            connection: ConnectionId("pd".into()),
            schedule: VendorScheduleId(format!("PD{i:03}")),
            role: RoleIndex(1),
            mode: DestinationMode::Protect,
        },
    ]
}

fn host_schedule(i: usize) -> HostSchedule {
    let people = people();
    let members = people
        .iter()
        .map(|e| Member::new(e.clone(), e.as_str()))
        .collect();
    let shifts = (0..DAYS as usize)
        .map(|k| {
            Shift::new(
                day(k as i64),
                day(k as i64 + 1),
                vec![
                    Some(people[(i + k) % 4].clone()),
                    Some(people[(i + k + 1) % 4].clone()),
                ],
            )
        })
        .collect();
    HostSchedule {
        schedule: Schedule::new(
            schedule_id(i),
            chrono_tz::UTC,
            vec!["primary".into(), "secondary".into()],
            members,
            shifts,
        )
        .unwrap(),
        destinations: destinations_of(i).to_vec(),
        horizon: Some(TimeDelta::days(HORIZON_DAYS)),
    }
}

/// The simulators, the host's rota, and the database.
pub struct Fleet {
    pub og: Arc<OpsgenieSimulator>,
    pub pd: Arc<PagerDutySimulator>,
    pub rota: Arc<Rota>,
    pub url: String,
    /// A store of the test's own (its own pool) for set-up and checks.
    pub store: PostgresStateStore,
    pub schedules: usize,
    /// Set by [`audit`](Self::audit).
    audit: Option<Audit>,
    /// How many requests the workers' Opsgenie providers send at once (their default if `None`).
    pub og_concurrency: Option<usize>,
}

/// What an audited fleet's workers go through: a write tap per simulator, and a provider per run.
#[derive(Clone)]
struct Audit {
    og: Arc<proxy::WriteTap>,
    pd: Arc<proxy::WriteTap>,
}

impl Fleet {
    /// `schedules` host schedules (2 destinations each), enrolled, with the clock at `day(0)`.
    pub async fn new(url: &str, schema: &str, schedules: usize) -> Fleet {
        let now = day(0) - TimeDelta::hours(1);
        let (og, pd) = (
            OpsgenieSimulator::start_at(now).await,
            PagerDutySimulator::start_at(now).await,
        );
        let store = PostgresStateStore::connect(url)
            .await
            .unwrap()
            .with_schema(schema)
            .unwrap();
        store.migrate().await.unwrap();
        let members: Vec<Member> = people()
            .into_iter()
            .map(|e| Member::new(e.clone(), e.as_str()))
            .collect();
        let mut rota = HashMap::new();
        for i in 0..schedules {
            for d in destinations_of(i) {
                let vendor = VendorSchedule {
                    id: d.schedule.clone(),
                    name: d.schedule.0.clone(),
                    zone: chrono_tz::UTC,
                    members: members.clone(),
                    rotations: vec![],
                };
                if d.connection.0 == "og" {
                    og.add_schedule(vendor);
                } else {
                    pd.add_schedule(vendor);
                }
                store.enroll(&d, &schedule_id(i)).await.unwrap();
            }
            rota.insert(schedule_id(i), host_schedule(i));
        }
        Fleet {
            og: Arc::new(og),
            pd: Arc::new(pd),
            rota: Arc::new(Rota {
                schedules: Mutex::new(rota),
                now: Mutex::new(now),
                panicking: Mutex::new(HashSet::new()),
                hidden: Mutex::new(HashSet::new()),
            }),
            url: url.to_owned(),
            store,
            schedules,
            audit: None,
            og_concurrency: None,
        }
    }

    /// From now on, workers started send their writes to each simulator through `og` and `pd`
    /// (one at a time per simulator, each checked once its answer is back), and their host builds
    /// a provider for every run, tagged with a run number of its own (`proxy::RUN_TAG`): in the
    /// simulators' logs, each request names its worker and its run. (The unaudited fleet keeps
    /// one provider per connection and lets writes run in parallel, as the benchmark needs.)
    pub fn audit(&mut self, og: Arc<proxy::WriteTap>, pd: Arc<proxy::WriteTap>) {
        self.audit = Some(Audit { og, pd });
    }

    pub fn destinations(&self) -> Vec<Destination> {
        (0..self.schedules).flat_map(destinations_of).collect()
    }

    /// Sets the clock of the vendors and the host.
    pub fn set_now(&self, now: DateTime<Utc>) {
        self.og.set_now(now);
        self.pd.set_now(now);
        *self.rota.now.lock().unwrap() = now;
    }

    /// Makes every destination due now.
    pub async fn all_due(&self) {
        let ids: Vec<DestinationId> = self.destinations().into_iter().map(|d| d.id).collect();
        self.store.sync_soon(&ids).await.unwrap();
    }

    /// How many destinations ended a run at `now` in step and are released.
    pub async fn synced_at(&self, now: DateTime<Utc>) -> i64 {
        let client = self.store.pool().get().await.unwrap();
        let row = client
            .query_one(
                &format!(
                    "SELECT count(*) FROM {} WHERE holder IS NULL \
                     AND (state->'last_run'->>'ok')::boolean \
                     AND (state->'last_run'->>'at')::timestamptz = $1::text::timestamptz",
                    self.store.table()
                ),
                &[&now.to_rfc3339()],
            )
            .await
            .unwrap();
        row.get(0)
    }

    /// Starts a worker named `name` (its lease holder id and its tag in the simulators' logs),
    /// with a pool of its own.
    pub async fn start_worker(&self, name: &str, options: WorkerOptions) -> WorkerHandle {
        self.start_worker_over(name, options, &self.url).await
    }

    /// [`start_worker`](Self::start_worker) over `url` (a [`pg_proxy::PgProxy`] in front of
    /// the database, say).
    pub async fn start_worker_over(
        &self,
        name: &str,
        options: WorkerOptions,
        url: &str,
    ) -> WorkerHandle {
        let store = PostgresStateStore::connect(url)
            .await
            .unwrap()
            .with_schema(self.store.schema())
            .unwrap();
        let host = self.host(name, None);
        let worker = Worker::new(
            store,
            Arc::new(host),
            WorkerOptions {
                id: name.to_owned(),
                ..options
            },
        );
        let (stop, stopped) = oneshot::channel::<()>();
        let task = tokio::spawn(async move {
            worker
                .run(async {
                    let _ = stopped.await;
                })
                .await;
        });
        WorkerHandle { task, stop }
    }

    /// Starts a worker as [`start_worker`](Self::start_worker) does, but on a thread and a
    /// (single-threaded) runtime of its own, over `url`, with `faults`: a pause blocks the whole
    /// worker (its renewals too) as a stopped process is, and killing it drops its runtime with
    /// everything in it (nothing it held is released).
    pub fn start_worker_thread(
        &self,
        name: &str,
        options: WorkerOptions,
        url: &str,
        faults: Arc<Faults>,
    ) -> ThreadWorker {
        let host = self.host(name, Some(faults.clone()));
        let options = WorkerOptions {
            id: name.to_owned(),
            ..options
        };
        let (url, schema) = (url.to_owned(), self.store.schema().to_owned());
        let (stop, stopped) = oneshot::channel::<()>();
        let (kill, killed) = oneshot::channel::<()>();
        let thread = std::thread::spawn(move || {
            let runtime = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .unwrap();
            runtime.block_on(async move {
                let run = async {
                    // The database may be restarting: try until it answers.
                    let store = loop {
                        match PostgresStateStore::connect(&url).await {
                            Ok(store) => break store.with_schema(&schema).unwrap(),
                            Err(_) => {
                                tokio::time::sleep(std::time::Duration::from_millis(50)).await
                            }
                        }
                    };
                    let worker = Worker::new(store, Arc::new(host), options);
                    worker
                        .run(async {
                            let _ = stopped.await;
                        })
                        .await;
                };
                tokio::select! {
                    () = run => {}
                    _ = killed => {}
                }
            });
            // Whatever is left (a dropped group's give-back) dies with the runtime.
            runtime.shutdown_background();
        });
        ThreadWorker {
            thread,
            stop,
            kill,
            faults,
        }
    }

    /// The host a worker named `name` talks to: the rota, and providers through forwarders
    /// of its own (a provider per run in an audited fleet), paused and skewed by `faults`.
    fn host(&self, name: &str, faults: Option<Arc<Faults>>) -> TestHost {
        let tap = |which: fn(&Audit) -> &Arc<proxy::WriteTap>| {
            self.audit.as_ref().map(|a| which(a).clone())
        };
        let og_proxy = proxy::start(&self.og.uri(), name, tap(|a| &a.og));
        let pd_proxy = proxy::start(&self.pd.uri(), name, tap(|a| &a.pd));
        let og_builder = || match self.og_concurrency {
            Some(n) => self.og.provider_builder().with_max_concurrency(n),
            None => self.og.provider_builder(),
        };
        let per_run = self.audit.as_ref().map(|_| PerRun {
            og: (og_builder(), og_proxy.clone()),
            pd: (self.pd.clone(), pd_proxy.clone()),
            faults: faults.clone(),
        });
        let og = og_builder().with_base_url(og_proxy).build().unwrap();
        let pd = self
            .pd
            .provider_builder()
            .with_base_url(pd_proxy)
            .build()
            .unwrap();
        let announcing = |p: Arc<dyn Provider>| -> Arc<dyn Provider> {
            Arc::new(Announcing(p, faults.clone(), None))
        };
        TestHost {
            rota: self.rota.clone(),
            providers: HashMap::from([
                (ConnectionId("og".into()), announcing(Arc::new(og))),
                (ConnectionId("pd".into()), announcing(Arc::new(pd))),
            ]),
            per_run,
            faults,
        }
    }

    /// The simulators' base URLs through a tagging forwarder named `name` (with the audit's
    /// taps), for another client (a command line) to use.
    pub fn tagged_uris(&self, name: &str) -> (String, String) {
        let tap = |which: fn(&Audit) -> &Arc<proxy::WriteTap>| {
            self.audit.as_ref().map(|a| which(a).clone())
        };
        (
            proxy::start(&self.og.uri(), name, tap(|a| &a.og)),
            proxy::start(&self.pd.uri(), name, tap(|a| &a.pd)),
        )
    }

    /// How many destinations ended a run in step within `tolerance` of `now` (workers with
    /// skewed clocks record their own `now`) and are released.
    pub async fn synced_near(&self, now: DateTime<Utc>, tolerance: TimeDelta) -> i64 {
        let client = self.store.pool().get().await.unwrap();
        let row = client
            .query_one(
                &format!(
                    "SELECT count(*) FROM {} WHERE holder IS NULL \
                     AND (state->'last_run'->>'ok')::boolean \
                     AND abs(extract(epoch FROM (state->'last_run'->>'at')::timestamptz \
                                             - $1::text::timestamptz)) <= $2::float8",
                    self.store.table()
                ),
                &[&now.to_rfc3339(), &(tolerance.num_seconds() as f64)],
            )
            .await
            .unwrap();
        row.get(0)
    }
}

/// Faults of one worker: its clock's skew, and a pause of the whole worker after its next
/// vendor call (the call has come back; the worker has not yet checked its lease again).
///
/// It also follows the worker's vendor calls by run (audited fleets' providers name theirs): the
/// calls of other runs under way when a pause began had their requests handed to the HTTP
/// client before the pause, and such a request may leave the worker only after it (README: "a
/// request already handed to the HTTP client when its process stalls past the deadline may
/// still reach the vendor"); a run that was in a call when its worker paused past the lease
/// must start no call after the pause (its guard refuses them).
#[derive(Default)]
pub struct Faults {
    skew_ms: AtomicI64,
    pause_ms: AtomicU64,
    pauses: AtomicU64,
    /// Calls under way, by (run, vendor schedule).
    calls: Mutex<HashMap<(u64, String), usize>>,
    /// The (run, vendor schedule) pairs with a call under way when a pause began, and how many
    /// requests had left their senders ([`proxy::sent_so_far`]) when it ended.
    stalled: Mutex<HashMap<(u64, String), u64>>,
    /// Calls a stalled run started after its pause.
    started_after_pause: Mutex<Vec<String>>,
}

impl Faults {
    pub fn with_skew(skew: TimeDelta) -> Arc<Faults> {
        let faults = Faults::default();
        faults
            .skew_ms
            .store(skew.num_milliseconds(), Ordering::Relaxed);
        Arc::new(faults)
    }

    pub fn skew(&self) -> TimeDelta {
        TimeDelta::milliseconds(self.skew_ms.load(Ordering::Relaxed))
    }

    /// Pauses the worker for `pause` after its next vendor call.
    pub fn pause_next(&self, pause: std::time::Duration) {
        self.pause_ms
            .store(pause.as_millis() as u64, Ordering::Relaxed);
    }

    /// How many pauses happened.
    pub fn pauses(&self) -> u64 {
        self.pauses.load(Ordering::Relaxed)
    }

    /// Blocks this thread (the worker's runtime) if a pause is due.
    fn maybe_pause(&self) {
        let ms = self.pause_ms.swap(0, Ordering::Relaxed);
        if ms > 0 {
            let under_way: Vec<(u64, String)> = self
                .calls
                .lock()
                .unwrap()
                .iter()
                .filter(|(_, n)| **n > 0)
                .map(|(k, _)| k.clone())
                .collect();
            std::thread::sleep(std::time::Duration::from_millis(ms));
            let resumed = proxy::sent_so_far();
            let mut stalled = self.stalled.lock().unwrap();
            for call in under_way {
                stalled.entry(call).or_insert(resumed);
            }
            self.pauses.fetch_add(1, Ordering::Relaxed);
        }
    }

    fn call_starts(&self, run: u64, schedule: &str) {
        let stalled = self.stalled.lock().unwrap();
        if let Some(((_, was), _)) = stalled.iter().find(|((r, _), _)| *r == run) {
            self.started_after_pause.lock().unwrap().push(format!(
                "run {run} called on {schedule} after its worker paused in a call on {was}"
            ));
        }
        drop(stalled);
        *self
            .calls
            .lock()
            .unwrap()
            .entry((run, schedule.to_owned()))
            .or_default() += 1;
    }

    fn call_ends(&self, run: u64, schedule: &str) {
        if let Some(n) = self
            .calls
            .lock()
            .unwrap()
            .get_mut(&(run, schedule.to_owned()))
        {
            *n = n.saturating_sub(1);
        }
    }

    /// The (run, vendor schedule) pairs that had a call under way when the worker paused, and
    /// how many requests had left their senders when the pause ended: that run's requests to
    /// that schedule numbered after it left only after the pause.
    pub fn stalled(&self) -> HashMap<(u64, String), u64> {
        self.stalled.lock().unwrap().clone()
    }

    /// Calls that a run stalled in a pause started after it (none, if the guard holds).
    pub fn started_after_pause(&self) -> Vec<String> {
        self.started_after_pause.lock().unwrap().clone()
    }
}

/// A worker on a thread of its own ([`Fleet::start_worker_thread`]).
pub struct ThreadWorker {
    pub thread: std::thread::JoinHandle<()>,
    pub stop: oneshot::Sender<()>,
    pub kill: oneshot::Sender<()>,
    pub faults: Arc<Faults>,
}

/// A running worker: abort `task` to kill it at whatever point it is, or send `stop` to shut
/// it down gracefully.
pub struct WorkerHandle {
    pub task: JoinHandle<()>,
    pub stop: oneshot::Sender<()>,
}

struct TestHost {
    rota: Arc<Rota>,
    providers: HashMap<ConnectionId, Arc<dyn Provider>>,
    /// In an audited fleet: a provider is built for every run instead.
    per_run: Option<PerRun>,
    faults: Option<Arc<Faults>>,
}

/// The simulators and this worker's forwarders to them, to build a provider per run.
struct PerRun {
    og: (OpsgenieBuilder, String),
    pd: (Arc<PagerDutySimulator>, String),
    faults: Option<Arc<Faults>>,
}

impl PerRun {
    /// A provider of `connection` whose requests carry a run number no other run has.
    fn provider(&self, connection: &ConnectionId) -> Option<Arc<dyn Provider>> {
        static RUNS: AtomicU64 = AtomicU64::new(0);
        let run = RUNS.fetch_add(1, Ordering::Relaxed);
        let base = |proxy: &str| format!("{proxy}/run-{run}");
        let provider: Arc<dyn Provider> = match connection.0.as_str() {
            "og" => Arc::new(
                self.og
                    .0
                    .clone()
                    .with_base_url(base(&self.og.1))
                    .build()
                    .unwrap(),
            ),
            "pd" => Arc::new(
                self.pd
                    .0
                    .provider_builder()
                    .with_base_url(base(&self.pd.1))
                    .build()
                    .unwrap(),
            ),
            _ => return None,
        };
        Some(Arc::new(Announcing(
            provider,
            self.faults.clone(),
            Some(run),
        )))
    }
}

#[async_trait]
impl Host for TestHost {
    async fn schedule(&self, id: &ScheduleId) -> Result<Option<HostSchedule>, Error> {
        assert!(
            !self.rota.panicking.lock().unwrap().contains(id),
            "the host's schedule {id} panics"
        );
        Ok(self.rota.answer(id))
    }

    async fn provider(&self, connection: &ConnectionId) -> Result<Arc<dyn Provider>, Error> {
        let provider = match &self.per_run {
            Some(per_run) => per_run.provider(connection),
            None => self.providers.get(connection).cloned(),
        };
        provider.ok_or_else(|| Error::Unsupported {
            message: format!("no connection {connection}"),
        })
    }

    fn now(&self) -> DateTime<Utc> {
        let skew = self.faults.as_ref().map_or(TimeDelta::zero(), |f| f.skew());
        self.rota.now() + skew
    }
}

/// A provider that announces each vendor call as a tracing event (`vendor_call`, with the vendor
/// schedule), so that a test sees in which span the call ran; tells its worker's faults when a
/// call of its run (where it has one) starts and ends; and pauses its worker after a call where
/// its faults ask for it.
struct Announcing(Arc<dyn Provider>, Option<Arc<Faults>>, Option<u64>);

impl Announcing {
    /// A call starts: under way until what this returns is dropped (the call came back, or its
    /// future was dropped).
    fn announce(&self, call: &str, schedule: &VendorScheduleId) -> Option<UnderWay> {
        tracing::info!(vendor_call = call, vendor_schedule = %schedule, "vendor call");
        let (faults, run) = (self.1.clone()?, self.2?);
        faults.call_starts(run, &schedule.0);
        Some(UnderWay(faults, run, schedule.0.clone()))
    }

    fn after_call<T>(&self, under_way: Option<UnderWay>, result: T) -> T {
        drop(under_way);
        if let Some(faults) = &self.1 {
            faults.maybe_pause();
        }
        result
    }
}

/// A call of a run on a vendor schedule, under way until dropped.
struct UnderWay(Arc<Faults>, u64, String);

impl Drop for UnderWay {
    fn drop(&mut self) {
        self.0.call_ends(self.1, &self.2);
    }
}

#[async_trait]
impl Provider for Announcing {
    fn name(&self) -> &str {
        self.0.name()
    }

    fn capabilities(&self) -> Capabilities {
        self.0.capabilities()
    }

    fn account(&self) -> Option<String> {
        self.0.account()
    }

    async fn list_schedules(&self) -> Result<oncall_sync::ScheduleListing, Error> {
        let all = VendorScheduleId("*".into());
        let under_way = self.announce("list_schedules", &all);
        let result = self.0.list_schedules().await;
        self.after_call(under_way, result)
    }

    async fn schedule(&self, schedule: &VendorScheduleId) -> Result<VendorSchedule, Error> {
        let under_way = self.announce("schedule", schedule);
        let result = self.0.schedule(schedule).await;
        self.after_call(under_way, result)
    }

    async fn on_call(
        &self,
        schedule: &VendorScheduleId,
        window: Window,
    ) -> Result<Vec<RoleTimeline>, Error> {
        let under_way = self.announce("on_call", schedule);
        let result = self.0.on_call(schedule, window).await;
        self.after_call(under_way, result)
    }

    async fn get_override(
        &self,
        schedule: &VendorScheduleId,
        id: &OverrideId,
    ) -> Result<Option<Override>, Error> {
        let under_way = self.announce("get_override", schedule);
        let result = self.0.get_override(schedule, id).await;
        self.after_call(under_way, result)
    }

    async fn list_overrides(
        &self,
        schedule: &VendorScheduleId,
        window: Window,
    ) -> Result<Vec<Override>, Error> {
        let under_way = self.announce("list_overrides", schedule);
        let result = self.0.list_overrides(schedule, window).await;
        self.after_call(under_way, result)
    }

    async fn create_overrides(
        &self,
        schedule: &VendorScheduleId,
        overrides: &[NewOverride],
    ) -> Result<Vec<Result<Override, Error>>, Error> {
        let under_way = self.announce("create_overrides", schedule);
        let result = self.0.create_overrides(schedule, overrides).await;
        self.after_call(under_way, result)
    }

    async fn update_override(
        &self,
        schedule: &VendorScheduleId,
        id: &OverrideId,
        span: &Span,
    ) -> Result<Override, Error> {
        let under_way = self.announce("update_override", schedule);
        let result = self.0.update_override(schedule, id, span).await;
        self.after_call(under_way, result)
    }

    async fn delete_override(
        &self,
        schedule: &VendorScheduleId,
        id: &OverrideId,
    ) -> Result<Deletion, Error> {
        let under_way = self.announce("delete_override", schedule);
        let result = self.0.delete_override(schedule, id).await;
        self.after_call(under_way, result)
    }
}
