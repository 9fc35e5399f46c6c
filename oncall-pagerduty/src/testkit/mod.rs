//! A stateful simulator of PagerDuty's REST API v2 schedule, override and user endpoints, on
//! loopback (feature `testkit`).
//!
//! [`PagerDutySimulator`] serves, over HTTP, what a PagerDuty account would: users and schedules
//! with classic pagination, layers rendered into the final schedule (the lowest layer, the last in
//! POST order, wins), overrides over every layer (the last created wins), batch creates with
//! per-item results, deletes that answer 204, 200 when they truncate a running override at the
//! simulator's now, and 400 for a past one. Its clock is whatever the test sets. It implements the
//! core's [`VendorSimulator`], so a test (or a downstream project's property test) drives it as it
//! drives the core's in-memory provider, and talks to it through a real [`PagerDutyProvider`].
//!
//! ```
//! use chrono::{TimeZone, Utc};
//! use oncall_core::testkit::{Fault, Trigger, VendorSimulator};
//! use oncall_core::{Email, Member, Provider, VendorSchedule, VendorScheduleId};
//! use oncall_pagerduty::testkit::PagerDutySimulator;
//!
//! # #[tokio::main(flavor = "multi_thread")] async fn main() {
//! let sim = PagerDutySimulator::start_at(Utc.with_ymd_and_hms(2024, 1, 1, 0, 0, 0).unwrap()).await;
//! let ann = Email::parse("ann@example.com").unwrap();
//! sim.add_schedule(VendorSchedule {
//!     id: VendorScheduleId("PSCHED1".into()),
//!     name: "Ops".into(),
//!     zone: chrono_tz::Europe::Berlin,
//!     members: vec![Member::new(ann.clone(), "Ann")],
//!     rotations: vec![],
//! });
//! sim.inject(Trigger::Write(1), Fault::LoseResponse); // the first write lands, its answer is lost
//! let provider = sim.provider(); // read-write key, fast retries
//! let listed = provider.list_schedules().await.unwrap();
//! assert_eq!(listed.schedules[0].members[0].email, ann);
//! assert!(sim.requests().iter().all(|r| r.routed)); // only endpoints PagerDuty has
//! # }
//! ```
//!
//! Keys: [`PagerDutySimulator::READ_WRITE_KEY`] may do everything,
//! [`PagerDutySimulator::READ_ONLY_KEY`] gets 403 on every non-GET (as PagerDuty's read-only keys
//! do), and any other key gets 401 (JSON, or text as the dialect says).
//!
//! Faults: [`VendorSimulator::inject`] takes the core's faults, counted per HTTP request
//! ([`Trigger::Call`]) or per POST/DELETE ([`Trigger::Write`]): a [`Fault::Fail`] answers what
//! PagerDuty answers for that kind of error and changes nothing (a rate limit: 429 with
//! `ratelimit-*` headers; a transient failure: 503; a permission error: 403 ...);
//! [`Fault::LoseResponse`] applies the request and answers 502 (under
//! [`LostWrites::LandAfterAnswer`] a write lands only later, by the simulator's clock). Beyond those:
//! [`PagerDutySimulator::inject_http`] ([`HttpFault`]: a malformed or incomplete 200, a slow answer),
//! [`PagerDutySimulator::set_fault_rate`] (a seeded fraction of requests answered 429 or 503),
//! [`VendorSimulator::rate_limit_next`], [`PagerDutySimulator::set_latency`] (a latency per
//! request), and a token bucket of the account's own ([`Bucket`], per rolling second and minute,
//! off by default) that refuses with the documented `ratelimit-*` 429 or answers late. A dropped connection
//! cannot be made with wiremock: a slow answer beyond the client's timeout stands in for it (the
//! client sees the same thing: no answer).
//!
//! Every request is logged ([`PagerDutySimulator::requests`]) with its method, path, query, key
//! kind, headers that matter and status; a request to an endpoint PagerDuty does not have (or that
//! R10 does not allow) is answered 404 and logged with `routed: false`.
//!
//! Vendor behaviour the reference leaves UNCONFIRMED is a [`PagerDutyDialect`]: one switch per
//! point, each with every plausible reading, the documented (or captured) one by default. Start a
//! simulator under one with [`PagerDutySimulator::start_with`] (or change it with
//! [`PagerDutySimulator::set_dialect`]); [`PagerDutyDialect::variants`] names the settings tests
//! iterate. Layers are rendered from their PagerDuty configuration under the dialect's reading of
//! turns (wall clock or absolute seconds), not with the core's rotation expansion.
//!
//! Besides what the adapter calls, the simulator answers as the official spec documents where a
//! client may look: `total=true` counts, `query` filters users (name or email) and schedules
//! (name), `editable=true` lists only future overrides by id, `time_zone` renders a schedule in
//! another zone, `rendered_coverage_percentage` is computed for a window, and `GET
//! /schedules/{id}/users` lists who is on call.

mod dialect;
mod http;
mod state;

pub use dialect::{
    AllFailedStatus, Bucket, BucketLimit, CreateAnswer, DeleteAnswer, ErrorTexts, LayerOrder,
    LayerTurns, ListingFilter, ListingLag, ListingStatus, LostWrites, PagerDutyDialect,
    RateLimitAnswer, Rounding, UnauthorizedBody, V3Answer,
};

use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use chrono::{DateTime, TimeDelta, TimeZone, Timelike, Utc};
use chrono_tz::Tz;
use oncall_core::testkit::{Fault, Trigger, VendorSimulator};
use oncall_core::{
    Email, OnCallPeriod, Override, OverrideId, Participant, RetryPolicy, Rotation, RotationUnit,
    Span, VendorSchedule, VendorScheduleId, Window,
};
use wiremock::{Mock, MockServer};

use crate::{PagerDutyBuilder, PagerDutyProvider};
use http::{Responder, Sim};

/// Which key a request carried.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum KeyKind {
    /// [`PagerDutySimulator::READ_WRITE_KEY`].
    ReadWrite,
    /// [`PagerDutySimulator::READ_ONLY_KEY`].
    ReadOnly,
    /// Another key.
    Invalid,
    /// No `Authorization: Token token=…` header at all.
    Missing,
}

/// One request the simulator received.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SimRequest {
    /// `GET`, `POST`, `DELETE` ...
    pub method: String,
    /// The path, e.g. `/schedules/PX/overrides`.
    pub path: String,
    /// Query pairs in order (`include[]` repeats).
    pub query: Vec<(String, String)>,
    /// Which key.
    pub key: KeyKind,
    /// The `Accept` header.
    pub accept: Option<String>,
    /// The `Content-Type` header.
    pub content_type: Option<String>,
    /// The status answered.
    pub status: u16,
    /// Whether the path is an endpoint the simulator serves (false: answered 404).
    pub routed: bool,
}

/// Faults only HTTP has (the core's [`Fault`]s are injected with [`VendorSimulator::inject`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum HttpFault {
    /// The request is applied; a successful answer becomes a 200 whose body is cut-off JSON.
    MalformedBody,
    /// The request is applied; a successful answer becomes a 200 of `{}` (every field missing).
    MissingField,
    /// The request is applied and answered after this extra delay (beyond the client's timeout:
    /// the answer is lost, as with a dropped connection).
    Slow(Duration),
}

/// A simulated PagerDuty account on `127.0.0.1` (see the [module docs](self)).
pub struct PagerDutySimulator {
    server: MockServer,
    state: Arc<Mutex<Sim>>,
}

impl std::fmt::Debug for PagerDutySimulator {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PagerDutySimulator")
            .field("uri", &self.server.uri())
            .finish_non_exhaustive()
    }
}

impl PagerDutySimulator {
    /// The key that may read and write.
    pub const READ_WRITE_KEY: &'static str = "simRWkey0123456789ab";
    /// The key that may only read.
    pub const READ_ONLY_KEY: &'static str = "simROkey0123456789ab";

    /// Starts a simulator whose clock reads 2024-01-01T00:00:00Z.
    pub async fn start() -> PagerDutySimulator {
        Self::start_at(
            Utc.with_ymd_and_hms(2024, 1, 1, 0, 0, 0)
                .single()
                .unwrap_or_default(),
        )
        .await
    }

    /// Starts a simulator whose clock reads `now`, speaking the default dialect.
    pub async fn start_at(now: DateTime<Utc>) -> PagerDutySimulator {
        Self::start_with(now, PagerDutyDialect::default()).await
    }

    /// Starts a simulator whose clock reads `now`, reading every UNCONFIRMED point as `dialect`
    /// says.
    pub async fn start_with(now: DateTime<Utc>, dialect: PagerDutyDialect) -> PagerDutySimulator {
        let state = Arc::new(Mutex::new(Sim {
            account: state::Account {
                now,
                ..Default::default()
            },
            read_write_key: Self::READ_WRITE_KEY.into(),
            read_only_key: Self::READ_ONLY_KEY.into(),
            clock_step: TimeDelta::zero(),
            calls: 0,
            writes: 0,
            faults: Vec::new(),
            http_faults: Vec::new(),
            read_only: false,
            rate_limited: 0,
            fault_rate: None,
            latency: Duration::ZERO,
            log: Vec::new(),
            dialect,
            max_batch: oncall_core::Capabilities::PAGERDUTY.max_batch,
            rate_limit_reset: 1,
            pending: Vec::new(),
            delete_attempts: std::collections::HashMap::new(),
            bucket: None,
        }));
        let server = MockServer::builder().start().await;
        Mock::given(wiremock::matchers::any())
            .respond_with(Responder(Arc::clone(&state)))
            .mount(&server)
            .await;
        PagerDutySimulator { server, state }
    }

    /// The state, with every write whose time has come applied.
    fn lock(&self) -> MutexGuard<'_, Sim> {
        let mut sim = self.state.lock().unwrap_or_else(|e| e.into_inner());
        sim.settle_pending();
        sim
    }

    /// The dialect the simulator speaks.
    pub fn dialect(&self) -> PagerDutyDialect {
        self.lock().dialect
    }

    /// Changes the dialect (from the next request on).
    pub fn set_dialect(&self, dialect: PagerDutyDialect) {
        self.lock().dialect = dialect;
    }

    /// The base URL to give a provider.
    pub fn uri(&self) -> String {
        self.server.uri()
    }

    /// Retries for tests: the same rules, waits of milliseconds.
    pub fn test_retry_policy() -> RetryPolicy {
        RetryPolicy {
            max_attempts: 6,
            base_delay: Duration::from_millis(1),
            max_delay: Duration::from_millis(5),
            max_total_delay: Duration::from_millis(200),
        }
    }

    /// A builder for a provider of this account: the read-write key, fast test retries, no pacing
    /// to speak of, a 5 s timeout. Under a token bucket ([`Bucket`]) the provider paces as a real
    /// one does (the default adaptive pace), and its retries wait a `ratelimit-reset` of a second
    /// or two. Change what a test needs before `build()`.
    pub fn provider_builder(&self) -> PagerDutyBuilder {
        let builder = PagerDutyProvider::builder()
            .with_api_key(Self::READ_WRITE_KEY)
            .with_base_url(self.uri())
            .with_timeout(Duration::from_secs(5));
        match self.dialect().bucket {
            Bucket::Off => builder
                .with_retry(Self::test_retry_policy())
                .with_rate_per_minute(6_000_000),
            Bucket::Refuse429(_) | Bucket::Delay(_) => builder.with_retry(RetryPolicy {
                max_total_delay: Duration::from_secs(3),
                ..Self::test_retry_policy()
            }),
        }
    }

    /// A provider of this account with the read-write key (see [`Self::provider_builder`]).
    pub fn provider(&self) -> PagerDutyProvider {
        self.provider_builder()
            .build()
            .unwrap_or_else(|e| unreachable!("the simulator's settings are valid: {e}"))
    }

    /// The `ratelimit-reset` (seconds until the window resets) of simulated 429s (default 1; the
    /// documented example says 20). Providers wait it out within their retry budget, so tests that
    /// draw many 429s set 0.
    pub fn set_rate_limit_reset(&self, seconds: u64) {
        self.lock().rate_limit_reset = seconds;
    }

    /// Adds a user (the email keeps its case, as PagerDuty shows it); returns its id.
    pub fn add_user(&self, name: &str, email: &str) -> String {
        self.lock().account.add_user(name, email)
    }

    /// Adds `count` users `user{i}@{domain}`, e.g. to test pagination.
    pub fn add_users(&self, count: usize, domain: &str) {
        let mut sim = self.lock();
        for i in 0..count {
            sim.account
                .add_user(&format!("User {i}"), &format!("user{i}@{domain}"));
        }
    }

    /// The id of the user with this email (case-insensitive).
    pub fn user_id(&self, email: &str) -> Option<String> {
        self.lock()
            .account
            .user_by_email(email)
            .map(|u| u.id.clone())
    }

    /// Adds a shift-based (v3) schedule id: not listed, and answered as [`V3Answer`] says.
    pub fn add_v3_schedule(&self, id: &str) {
        self.lock().account.v3.insert(id.to_owned());
    }

    /// How a v3 schedule id answers (the dialect's [`PagerDutyDialect::v3_answer`]).
    pub fn set_v3_answer(&self, answer: V3Answer) {
        self.lock().dialect.v3_answer = answer;
    }

    /// Which shape batch creates answer in (the dialect's [`PagerDutyDialect::create_answer`]).
    pub fn set_create_answer(&self, answer: CreateAnswer) {
        self.lock().dialect.create_answer = answer;
    }

    /// Whether GET lists layers in reverse of POST order (the dialect's
    /// [`PagerDutyDialect::layer_order`]).
    pub fn set_layers_reversed_on_get(&self, reversed: bool) {
        self.lock().dialect.layer_order = if reversed {
            LayerOrder::ReversedOnGet
        } else {
            LayerOrder::PostOrder
        };
    }

    /// Writes whose answer was lost and that have not landed yet.
    pub fn pending_writes(&self) -> usize {
        self.lock().pending.len()
    }

    /// Extra time every answer takes.
    pub fn set_latency(&self, latency: Duration) {
        self.lock().latency = latency;
    }

    /// Answers a fraction of requests (0 to 1) with 429 or 503, drawn from `seed`; 0 turns it off.
    pub fn set_fault_rate(&self, fraction: f64, seed: u64) {
        self.lock().fault_rate = (fraction > 0.0).then_some((fraction, seed));
    }

    /// Injects an HTTP-only fault.
    pub fn inject_http(&self, trigger: Trigger, fault: HttpFault) {
        self.lock().http_faults.push((trigger, fault));
    }

    /// Every request so far.
    pub fn requests(&self) -> Vec<SimRequest> {
        self.lock().log.clone()
    }

    /// Forgets the request log.
    pub fn clear_requests(&self) {
        self.lock().log.clear();
    }
}

fn period(sim: &Sim, r: state::Rendered) -> Option<OnCallPeriod> {
    Some(OnCallPeriod {
        start: r.start,
        end: r.end,
        member: sim.account.email_of(&r.user_id)?,
    })
}

/// A core rotation as the layer PagerDuty would keep for it.
fn layer_of(a: &mut state::Account, r: &Rotation, zone: Tz) -> state::SimLayer {
    let at = |t| oncall_core::resolve_local(zone, t);
    let unit = match r.unit {
        RotationUnit::Hourly => 3_600,
        RotationUnit::Daily => 86_400,
        RotationUnit::Weekly => 604_800,
    };
    let users = r
        .participants
        .iter()
        .filter_map(|p| match p {
            Participant::Member(e) => Some(a.ensure_user(e.as_str(), e.as_str())),
            Participant::Nobody => None,
        })
        .collect();
    let restrictions = r
        .restrictions
        .iter()
        .map(|x| state::SimRestriction {
            weekday: x.day.map(|d| d.number_from_monday()),
            start_of_day: x.start.num_seconds_from_midnight(),
            duration_seconds: x.duration_seconds,
        })
        .collect();
    state::SimLayer {
        id: a.layer_id(),
        name: r.name.clone(),
        start: at(r.effective_from.unwrap_or(r.start).max(r.start)),
        end: r.end.map(at),
        virtual_start: at(r.start),
        turn_seconds: unit * i64::from(r.length),
        users,
        restrictions,
    }
}

impl VendorSimulator for PagerDutySimulator {
    fn now(&self) -> DateTime<Utc> {
        self.lock().account.now
    }

    fn set_now(&self, now: DateTime<Utc>) {
        self.lock().account.now = now;
    }

    fn set_clock_step(&self, step: TimeDelta) {
        self.lock().clock_step = step;
    }

    /// Members become users of the account (an existing user of the same email, in any case, is
    /// kept); rotations become layers as PagerDuty keeps them, the first rotation the
    /// highest-precedence layer (the last in POST order): turn 0 at the rotation's start, coverage
    /// from its effective start to its end, the turn length in seconds, members in order and
    /// restrictions in local time. PagerDuty has no empty turns: nobody slots are left out.
    fn add_schedule(&self, schedule: VendorSchedule) {
        let mut sim = self.lock();
        let a = &mut sim.account;
        let member_ids = schedule
            .members
            .iter()
            .map(|m| a.ensure_user(&m.name, m.email.as_str()))
            .collect();
        let zone = schedule.zone;
        let layers = schedule
            .rotations
            .iter()
            .rev()
            .map(|r| layer_of(a, r, zone))
            .collect();
        a.put_schedule(&schedule.id.0, &schedule.name, zone, layers, member_ids);
    }

    fn overrides(&self, schedule: &VendorScheduleId) -> Vec<Override> {
        let sim = self.lock();
        let Some(s) = sim.account.schedules.get(&schedule.0) else {
            return Vec::new();
        };
        let mut list: Vec<Override> = s
            .overrides
            .iter()
            .filter_map(|o| {
                Some(Override {
                    id: OverrideId::new(o.id.as_str()),
                    span: Span::new(o.start, o.end, sim.account.email_of(&o.user_id)?),
                })
            })
            .collect();
        list.sort_by(|a, b| a.span.cmp(&b.span).then_with(|| a.id.cmp(&b.id)));
        list
    }

    /// A person's override, listed at once (a listing lags only the API's creates).
    fn insert_override(&self, schedule: &VendorScheduleId, span: Span) -> OverrideId {
        let mut sim = self.lock();
        let a = &mut sim.account;
        let user = a.ensure_user(span.member.as_str(), span.member.as_str());
        let now = a.now;
        let created = a.insert_override(&schedule.0, span.start, span.end, user, now);
        OverrideId::new(created.map(|o| o.id).unwrap_or_default())
    }

    fn remove_override(&self, schedule: &VendorScheduleId, id: &OverrideId) -> bool {
        self.lock()
            .account
            .remove_override(&schedule.0, id.as_str())
    }

    /// PagerDuty cannot edit an override: a person deletes it and creates another (a new id).
    fn edit_override(
        &self,
        schedule: &VendorScheduleId,
        id: &OverrideId,
        span: Span,
    ) -> Option<OverrideId> {
        self.remove_override(schedule, id)
            .then(|| self.insert_override(schedule, span))
    }

    fn render(&self, schedule: &VendorScheduleId, window: Window) -> Vec<OnCallPeriod> {
        let sim = self.lock();
        let Some(s) = sim.account.schedules.get(&schedule.0) else {
            return Vec::new();
        };
        sim.account
            .true_overrides_layer(s, window)
            .into_iter()
            .filter_map(|r| period(&sim, r))
            .collect()
    }

    fn inject(&self, trigger: Trigger, fault: Fault) {
        self.lock().faults.push((trigger, fault));
    }

    fn set_read_only(&self, read_only: bool) {
        self.lock().read_only = read_only;
    }

    fn rate_limit_next(&self, calls: usize) {
        self.lock().rate_limited = calls;
    }

    /// Clears pending faults; writes already accepted but not landed still land.
    fn clear_faults(&self) {
        let mut sim = self.lock();
        sim.faults.clear();
        sim.http_faults.clear();
        sim.read_only = false;
        sim.rate_limited = 0;
        sim.fault_rate = None;
    }

    fn write_calls(&self) -> usize {
        self.lock().writes
    }
}

/// Members of the simulated account by email, for tests that check a mapping.
impl PagerDutySimulator {
    /// The final schedule as PagerDuty would render it over `window` (layers and overrides, as
    /// a read shows them now).
    pub fn final_schedule(&self, schedule: &VendorScheduleId, window: Window) -> Vec<OnCallPeriod> {
        let sim = self.lock();
        let Some(s) = sim.account.schedules.get(&schedule.0) else {
            return Vec::new();
        };
        sim.account
            .final_schedule(s, window, sim.dialect.layer_turns)
            .into_iter()
            .filter_map(|r| period(&sim, r))
            .collect()
    }

    /// The email PagerDuty shows for a user id, as given (not lower-cased).
    pub fn email_as_given(&self, user_id: &str) -> Option<String> {
        self.lock().account.user(user_id).map(|u| u.email.clone())
    }

    /// Whether any user has this email (case-insensitive).
    pub fn knows(&self, email: &Email) -> bool {
        self.lock().account.user_by_email(email.as_str()).is_some()
    }
}

/// A provider that sends one override per create call, as a vendor without batch creates would:
/// the yardstick for what batching saves (the crate's bench and tests compare the two).
#[derive(Debug, Clone)]
pub struct Unbatched<P>(pub P);

#[async_trait::async_trait]
impl<P: oncall_core::Provider> oncall_core::Provider for Unbatched<P> {
    fn name(&self) -> &str {
        self.0.name()
    }

    fn capabilities(&self) -> oncall_core::Capabilities {
        oncall_core::Capabilities {
            max_batch: 1,
            ..self.0.capabilities()
        }
    }

    async fn list_schedules(&self) -> Result<oncall_core::ScheduleListing, oncall_core::Error> {
        self.0.list_schedules().await
    }

    async fn schedule(&self, id: &VendorScheduleId) -> Result<VendorSchedule, oncall_core::Error> {
        self.0.schedule(id).await
    }

    async fn on_call(
        &self,
        id: &VendorScheduleId,
        window: Window,
    ) -> Result<Vec<oncall_core::RoleTimeline>, oncall_core::Error> {
        self.0.on_call(id, window).await
    }

    async fn get_override(
        &self,
        s: &VendorScheduleId,
        id: &OverrideId,
    ) -> Result<Option<Override>, oncall_core::Error> {
        self.0.get_override(s, id).await
    }

    async fn list_overrides(
        &self,
        s: &VendorScheduleId,
        window: Window,
    ) -> Result<Vec<Override>, oncall_core::Error> {
        self.0.list_overrides(s, window).await
    }

    async fn create_overrides(
        &self,
        s: &VendorScheduleId,
        overrides: &[oncall_core::NewOverride],
    ) -> Result<Vec<Result<Override, oncall_core::Error>>, oncall_core::Error> {
        self.0.create_overrides(s, overrides).await
    }

    async fn update_override(
        &self,
        s: &VendorScheduleId,
        id: &OverrideId,
        span: &Span,
    ) -> Result<Override, oncall_core::Error> {
        self.0.update_override(s, id, span).await
    }

    async fn delete_override(
        &self,
        s: &VendorScheduleId,
        id: &OverrideId,
    ) -> Result<oncall_core::Deletion, oncall_core::Error> {
        self.0.delete_override(s, id).await
    }
}
