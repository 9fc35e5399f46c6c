//! A stateful simulator of a JSM Operations site (feature `testkit`), served on loopback by
//! wiremock, for this crate's tests and for downstream projects' own tests and property tests.
//!
//! [`JsmSimulator`] implements the core's [`VendorSimulator`]: a test sets its clock, adds
//! schedules (the core's [`VendorSchedule`], served in JSM's wire shapes), plays a person editing
//! overrides, injects faults, and reads back what the site holds. A provider built by
//! [`JsmSimulator::provider`] talks to it over HTTP exactly as it would to Atlassian: the simulator
//! serves both hosts a connection uses, the site (`/_edge/tenant_info`, `/rest/api/3/user/search`,
//! `/rest/api/3/user`) and the Operations API (`/jsm/ops/api/<cloudId>/v1/…`), on one port.
//!
//! What it simulates, read from the reference and the JSM Operations OpenAPI spec (not from the
//! adapter):
//!
//! - Schedules (`expand=rotation`), rotations, the timeline (turns in the schedule's zone by the
//!   core's expansion, overrides laid over the rotations they apply to, periods split at the clock
//!   with milliseconds into `historical` and `base`/`override`; at most a year back and two ahead),
//!   and overrides: server-chosen aliases, `PUT` in place, `GET` by alias, `DELETE`; creates ending
//!   in the past refused; an update ending a running override in the past ends it at now; the last
//!   created override wins where they overlap.
//! - People: users with Atlassian-looking accountIds (`712020:<uuid>`); the members of added
//!   schedules are users; [`JsmSimulator::hide_email`] hides one's e-mail from the site's answers.
//! - Pagination: `offset` and `size` (default 25), `values` and `links.next` relative to the API
//!   root (`/v1/…?offset=…&size=…`, as in the spec's examples).
//! - Credentials: HTTP Basic with [`ACCOUNT_EMAIL`] and [`READ_WRITE_TOKEN`] or
//!   [`READ_ONLY_TOKEN`] (an account without write rights: its writes get 403); anything else 401.
//! - Every UNCONFIRMED behaviour as a [`JsmDialect`] switch; Opsgenie's migration to JSM as a
//!   [`MigrationDialect`] ([`JsmSimulator::import_migrated`]).
//! - Faults: the core's [`Fault`]s by [`Trigger`] (a [`Fault::Fail`] answers the status and body
//!   JSM gives for that kind of error and changes nothing; [`Fault::LoseResponse`] applies the
//!   request and answers 502), [`HttpFault`]s, [`VendorSimulator::rate_limit_next`] (429 with
//!   `Retry-After`), a latency per request.
//! - A request log ([`JsmSimulator::requests`]): method, host, path, query, credentials, status,
//!   JSON body, and whether the endpoint is one the simulator serves (anything else is a 404, so a
//!   test can assert that nothing outside them was asked for: R10).
//!
//! The simulator's clock is only ever the one the test sets; the `Date` header of every answer
//! carries it.
//!
//! ```
//! use chrono::{NaiveDate, TimeZone, Utc};
//! use oncall_core::testkit::VendorSimulator;
//! use oncall_core::{
//!     sync, ConnectionId, Destination, DestinationId, DestinationMode, Email, InMemoryStateStore,
//!     Member, Participant, RoleIndex, Rotation, RotationUnit, Schedule, ScheduleId, Shift,
//!     SyncMode, SyncOptions, SyncTarget, VendorSchedule, VendorScheduleId,
//! };
//! use oncall_jsm::testkit::{JsmDialect, JsmSimulator};
//! # tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap().block_on(async {
//! let now = Utc.with_ymd_and_hms(2024, 3, 1, 12, 0, 0).unwrap();
//! let sim = JsmSimulator::start_with(now, JsmDialect::default()).await;
//! let (ann, bob) = (Email::parse("ann@example.com").unwrap(), Email::parse("bob@example.com").unwrap());
//! let start = NaiveDate::from_ymd_opt(2024, 1, 1).unwrap().and_hms_opt(9, 0, 0).unwrap();
//! sim.add_schedule(VendorSchedule {
//!     id: VendorScheduleId("ops".into()),
//!     name: "Ops".into(),
//!     zone: chrono_tz::Europe::Berlin,
//!     members: vec![Member::new(ann.clone(), "Ann"), Member::new(bob.clone(), "Bob")],
//!     rotations: vec![Rotation::new("primary", RotationUnit::Weekly, 1, start,
//!         vec![Participant::Member(ann.clone()), Participant::Member(bob.clone())])],
//! });
//! let provider = sim.provider();
//! let day = |d| Utc.with_ymd_and_hms(2024, 3, d, 8, 0, 0).unwrap();
//! let host = Schedule::new(
//!     ScheduleId("host".into()),
//!     chrono_tz::Europe::Berlin,
//!     vec!["primary".into()],
//!     vec![Member::new(ann.clone(), "Ann"), Member::new(bob.clone(), "Bob")],
//!     vec![Shift::new(day(2), day(3), vec![Some(bob.clone())])],
//! )
//! .unwrap();
//! let destination = Destination {
//!     id: DestinationId("ops-primary".into()),
//!     connection: ConnectionId("jsm".into()),
//!     schedule: VendorScheduleId("ops".into()),
//!     role: RoleIndex::PRIMARY,
//!     mode: DestinationMode::Protect,
//! };
//! let store = InMemoryStateStore::new();
//! let options = SyncOptions { now, horizon: None, mode: SyncMode::Apply };
//! let targets = [SyncTarget { destination: &destination, provider: &provider }];
//! let report = sync(&host, &targets, &store, options).await.unwrap();
//! assert!(report.is_ok(), "{report}");
//! let held = sim.overrides(&VendorScheduleId("ops".into()));
//! assert_eq!(held.len(), 1);
//! assert_eq!(held[0].span.member, bob);
//! // Every request went to an endpoint the simulator serves.
//! assert!(sim.requests().iter().all(|r| r.simulated));
//! # });
//! ```

mod dialect;
mod endpoints;
mod http;
mod state;
mod timeline;
mod wire;

use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use chrono::{DateTime, TimeDelta, TimeZone, Utc};
use oncall_core::pacing::AdaptiveRate;
use oncall_core::testkit::{Fault, OverLimit, RateLimit, Throttle, Trigger, VendorSimulator};
use oncall_core::{
    Email, OnCallPeriod, Override, OverrideId, RetryPolicy, Span, VendorSchedule, VendorScheduleId,
    Window,
};
use serde_json::Value;
use wiremock::{Mock, MockServer, Request, Respond, ResponseTemplate};

pub use dialect::{
    Carried, DeleteStatus, ForbiddenBody, JsmDialect, MigrationDialect, PageSize, PastOverrides,
    RateLimitReading, RotationIdsOmitted, Setting, UpdateBody,
};

use crate::{JsmBuilder, JsmProvider};
use state::{State, Stored};

/// The simulated site's cloudId.
pub const CLOUD_ID: &str = "0e1f6b6a-5c3d-4a2b-9f8e-sim0cloud001";

/// The account the simulator knows (the Basic login's e-mail).
pub const ACCOUNT_EMAIL: &str = "ops-bot@jsm-sim.example";

/// The API token of an account with write rights.
pub const READ_WRITE_TOKEN: &str = "jsm-sim-token-read-write";

/// The API token of an account that may read but not change overrides: its writes get 403.
pub const READ_ONLY_TOKEN: &str = "jsm-sim-token-read-only";

/// Which of the connection's hosts a logged request was for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Surface {
    /// The site (`/_edge/tenant_info`, `/rest/api/3/…`).
    Site,
    /// The Operations API (`/jsm/ops/api/<cloudId>/v1/…`).
    Ops,
}

/// Which credentials a logged request carried.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum KeyKind {
    /// [`ACCOUNT_EMAIL`] with [`READ_WRITE_TOKEN`].
    ReadWrite,
    /// [`ACCOUNT_EMAIL`] with [`READ_ONLY_TOKEN`].
    ReadOnly,
    /// Other credentials (answered 401).
    Invalid,
    /// No `Authorization` header (answered 401, but for the public tenant info).
    Missing,
}

/// One request as the simulator received it.
#[derive(Debug, Clone, PartialEq)]
pub struct LoggedRequest {
    /// `GET`, `POST`, ...
    pub method: String,
    /// The host it was for; `None` outside the served endpoints.
    pub surface: Option<Surface>,
    /// The path, percent-encoded as sent.
    pub path: String,
    /// Query parameters, decoded, in order.
    pub query: Vec<(String, String)>,
    /// Which credentials it carried.
    pub key: KeyKind,
    /// The status answered.
    pub status: Option<u16>,
    /// The JSON body, if it had one.
    pub body: Option<Value>,
    /// Whether it is one of the endpoints the simulator serves (all within DESIGN R10).
    pub simulated: bool,
}

impl LoggedRequest {
    /// The value of a query parameter.
    pub fn query_value(&self, name: &str) -> Option<&str> {
        self.query
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    }
}

/// Faults only an HTTP simulator can inject.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum HttpFault {
    /// The request takes effect, and the answer is a 200 whose JSON is not the expected shape.
    MalformedBody,
    /// The request takes effect, and the answer comes this much later (beyond the client's
    /// timeout, it is lost to it).
    Slow(Duration),
    /// The request is refused with a 400 whose body quotes its `Authorization` header back (as
    /// some proxies and gateways do): the adapter must scrub it from whatever it reports.
    EchoCredentials,
}

/// The throttle a rate-limit reading enforces.
pub(crate) fn throttle_for(reading: RateLimitReading) -> Option<Throttle> {
    let limit = |per_second: u32, over_limit| RateLimit {
        per_second: Some(per_second),
        per_minute: None,
        over_limit,
    };
    match reading {
        RateLimitReading::None => None,
        RateLimitReading::Refused(n) => Some(Throttle::new(limit(n, OverLimit::Refuse))),
        RateLimitReading::Delayed(n) => Some(Throttle::new(limit(n, OverLimit::Delay))),
    }
}

/// A simulated JSM Operations site on `127.0.0.1`. See the [module docs](self).
pub struct JsmSimulator {
    server: MockServer,
    state: Arc<Mutex<State>>,
}

impl std::fmt::Debug for JsmSimulator {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("JsmSimulator")
            .field("uri", &self.server.uri())
            .field("dialect", &self.dialect())
            .finish_non_exhaustive()
    }
}

fn lock(state: &Mutex<State>) -> MutexGuard<'_, State> {
    state.lock().unwrap_or_else(|e| e.into_inner())
}

/// Answers every request over the shared state.
struct Handler(Arc<Mutex<State>>);

impl Respond for Handler {
    fn respond(&self, request: &Request) -> ResponseTemplate {
        let mut state = lock(&self.0);
        let reply = http::handle(&mut state, request);
        reply.template(state.now)
    }
}

impl JsmSimulator {
    /// Starts a simulator with the documented dialect and its clock at 2024-01-01 00:00 UTC.
    pub async fn start() -> JsmSimulator {
        let start = Utc
            .with_ymd_and_hms(2024, 1, 1, 0, 0, 0)
            .single()
            .unwrap_or_default();
        JsmSimulator::start_with(start, JsmDialect::default()).await
    }

    /// Starts a simulator with the documented dialect and its clock at `now`.
    pub async fn start_at(now: DateTime<Utc>) -> JsmSimulator {
        JsmSimulator::start_with(now, JsmDialect::default()).await
    }

    /// Starts a simulator under `dialect` with its clock at `now`.
    pub async fn start_with(now: DateTime<Utc>, dialect: JsmDialect) -> JsmSimulator {
        // No wiremock recording: the simulator keeps its own log (a bench sends thousands).
        let server = MockServer::builder()
            .disable_request_recording()
            .start()
            .await;
        let state = Arc::new(Mutex::new(State::new(now, dialect)));
        Mock::given(wiremock::matchers::any())
            .respond_with(Handler(state.clone()))
            .mount(&server)
            .await;
        JsmSimulator { server, state }
    }

    /// The base URL (`http://127.0.0.1:<port>`): both the site and the API base.
    pub fn uri(&self) -> String {
        self.server.uri()
    }

    /// The dialect it speaks.
    pub fn dialect(&self) -> JsmDialect {
        lock(&self.state).dialect
    }

    /// Changes the dialect (the rate limit starts afresh).
    pub fn set_dialect(&self, dialect: JsmDialect) {
        let mut state = lock(&self.state);
        state.dialect = dialect;
        state.throttle = throttle_for(dialect.rate_limit);
    }

    /// Retries for tests: ten attempts, waits of 1 to 5 ms, three seconds in all (a 429's
    /// `Retry-After` of a second is waited within it).
    pub fn test_retry_policy() -> RetryPolicy {
        RetryPolicy {
            max_attempts: 10,
            base_delay: Duration::from_millis(1),
            max_delay: Duration::from_millis(5),
            max_total_delay: Duration::from_secs(3),
        }
    }

    /// A builder pointed at the simulator (site and API base both its URI, the cloudId read from
    /// it) with the read-write account, [`Self::test_retry_policy`], a 5 s timeout, and no rate of
    /// its own unless the dialect rate-limits (then the adaptive pacer).
    pub fn provider_builder(&self) -> JsmBuilder {
        let builder = JsmProvider::builder()
            .with_site(self.uri())
            .with_api_base_url(self.uri())
            .with_email(ACCOUNT_EMAIL)
            .with_api_token(READ_WRITE_TOKEN)
            .with_retry(Self::test_retry_policy())
            .with_timeout(Duration::from_secs(5));
        match self.dialect().rate_limit {
            RateLimitReading::None => builder.without_rate_limit(),
            _ => builder.with_adaptive_rate(AdaptiveRate {
                initial: 100.0,
                ..AdaptiveRate::BRISK
            }),
        }
    }

    /// A provider with [`Self::provider_builder`]'s settings.
    pub fn provider(&self) -> JsmProvider {
        self.build(self.provider_builder())
    }

    /// A provider with [`READ_ONLY_TOKEN`].
    pub fn read_only_provider(&self) -> JsmProvider {
        self.build(self.provider_builder().with_api_token(READ_ONLY_TOKEN))
    }

    fn build(&self, builder: JsmBuilder) -> JsmProvider {
        match builder.build() {
            Ok(p) => p,
            // The simulator's URL and credentials are valid by construction.
            Err(e) => panic!("the simulator's provider settings are invalid: {e}"),
        }
    }

    /// Every request received so far, in order.
    pub fn requests(&self) -> Vec<LoggedRequest> {
        lock(&self.state).log.clone()
    }

    /// Empties the request log (the call and write counts go on).
    pub fn clear_requests(&self) {
        lock(&self.state).log.clear();
    }

    /// How many requests of any kind the simulator has received.
    pub fn calls(&self) -> usize {
        lock(&self.state).calls
    }

    /// Every answer waits this long (on the server, without holding up other requests).
    pub fn set_latency(&self, latency: Duration) {
        lock(&self.state).latency = latency;
    }

    /// The `Retry-After` of simulated 429s, in seconds (default 1).
    pub fn set_retry_after(&self, seconds: u64) {
        lock(&self.state).retry_after = seconds;
    }

    /// Injects an HTTP-level fault at a trigger (counted like [`VendorSimulator::inject`]).
    pub fn inject_http(&self, trigger: Trigger, fault: HttpFault) {
        lock(&self.state)
            .faults
            .push((trigger, state::Pending::Http(fault)));
    }

    /// Adds a person to the site (the members of added schedules are people already); returns
    /// their accountId.
    pub fn add_user(&self, email: Email, name: &str) -> String {
        lock(&self.state).add_user(email, name)
    }

    /// The person hides their e-mail: the site's answers leave it out (a search by the exact
    /// e-mail still finds them, without it).
    pub fn hide_email(&self, email: &Email) {
        if let Some(u) = lock(&self.state)
            .users
            .iter_mut()
            .find(|u| &u.email == email)
        {
            u.email_visible = false;
        }
    }

    /// A person's accountId.
    pub fn account_id(&self, email: &Email) -> Option<String> {
        lock(&self.state)
            .user_by_email(email)
            .map(|u| u.account.clone())
    }

    /// The ids of a schedule's rotations, in the order given to [`VendorSimulator::add_schedule`].
    pub fn rotation_ids(&self, schedule: &VendorScheduleId) -> Vec<String> {
        lock(&self.state)
            .schedule(&schedule.0)
            .map(|s| s.rotation_ids.clone())
            .unwrap_or_default()
    }

    /// Sets the timeline `order` of a schedule's rotations, by index (by default 1, 2, 3 …).
    pub fn set_timeline_order(&self, schedule: &VendorScheduleId, order: &[f64]) {
        if let Some(s) = lock(&self.state).schedule_mut(&schedule.0) {
            s.order = order.to_vec();
        }
    }

    /// A person's override limited to some of the schedule's rotations (ids from
    /// [`Self::rotation_ids`]). Returns its alias.
    pub fn insert_override_for_rotations(
        &self,
        schedule: &VendorScheduleId,
        span: Span,
        rotation_ids: &[String],
    ) -> OverrideId {
        let id = self.insert_override(schedule, span);
        if let Some(s) = lock(&self.state).schedule_mut(&schedule.0) {
            if let Some(i) = s.find(id.as_str()) {
                s.overrides[i].rotation_ids = Some(rotation_ids.to_vec());
            }
        }
        id
    }

    /// The rotations an override applies to (`Some(None)`: every rotation); `None` when the
    /// schedule holds no such override.
    pub fn override_rotation_ids(
        &self,
        schedule: &VendorScheduleId,
        id: &OverrideId,
    ) -> Option<Option<Vec<String>>> {
        let state = lock(&self.state);
        let s = state.schedule(&schedule.0)?;
        let i = s.find(id.as_str())?;
        Some(s.overrides[i].rotation_ids.clone())
    }

    /// Atlassian's migration of an Opsgenie account, as `migration` reads it: each of `schedules`
    /// (read from the Opsgenie side, `source`) is added here with its id kept or replaced, and its
    /// overrides that have not ended are copied with their aliases kept or replaced, each for every
    /// rotation. Returns, per schedule, the Opsgenie id and the JSM one.
    pub fn import_migrated(
        &self,
        source: &dyn VendorSimulator,
        schedules: &[VendorSchedule],
        migration: MigrationDialect,
    ) -> Vec<(VendorScheduleId, VendorScheduleId)> {
        let mut state = lock(&self.state);
        let now = state.now;
        let mut moved = Vec::with_capacity(schedules.len());
        for config in schedules {
            let old = config.id.clone();
            let new = match migration.schedule_ids {
                Carried::Kept => old.clone(),
                Carried::Replaced => {
                    VendorScheduleId(state::uuid_like(&format!("migrated {old}"), 1))
                }
            };
            state.add_schedule(VendorSchedule {
                id: new.clone(),
                ..config.clone()
            });
            for o in source
                .overrides(&old)
                .into_iter()
                .filter(|o| o.span.end > now)
            {
                if crate::recipient::Responder::from_email(&o.span.member).is_user()
                    && state.user_by_email(&o.span.member).is_none()
                {
                    let name = o.span.member.to_string();
                    state.add_user(o.span.member.clone(), &name);
                }
                let alias = match migration.aliases {
                    Carried::Kept => o.id.as_str().to_owned(),
                    Carried::Replaced => state.new_alias(),
                };
                let seq = state.next_seq();
                if let Some(s) = state.schedule_mut(&new.0) {
                    s.overrides.push(Stored {
                        alias,
                        span: o.span,
                        seq,
                        rotation_ids: None,
                    });
                }
            }
            moved.push((old, new));
        }
        moved
    }
}

impl VendorSimulator for JsmSimulator {
    fn now(&self) -> DateTime<Utc> {
        lock(&self.state).now
    }

    fn set_now(&self, now: DateTime<Utc>) {
        lock(&self.state).now = now;
    }

    fn set_clock_step(&self, step: TimeDelta) {
        lock(&self.state).clock_step = step;
    }

    /// Serves the schedule in JSM's shapes; its members become people of the site.
    fn add_schedule(&self, schedule: VendorSchedule) {
        lock(&self.state).add_schedule(schedule);
    }

    fn overrides(&self, schedule: &VendorScheduleId) -> Vec<Override> {
        lock(&self.state)
            .schedule(&schedule.0)
            .map(state::listed)
            .unwrap_or_default()
    }

    /// A person's override gets a server-chosen alias, as any other.
    fn insert_override(&self, schedule: &VendorScheduleId, span: Span) -> OverrideId {
        let mut state = lock(&self.state);
        let alias = state.new_alias();
        let seq = state.next_seq();
        if let Some(s) = state.schedule_mut(&schedule.0) {
            s.overrides.push(Stored {
                alias: alias.clone(),
                span,
                seq,
                rotation_ids: None,
            });
        }
        OverrideId::new(alias)
    }

    fn remove_override(&self, schedule: &VendorScheduleId, id: &OverrideId) -> bool {
        let mut state = lock(&self.state);
        let Some(s) = state.schedule_mut(&schedule.0) else {
            return false;
        };
        let before = s.overrides.len();
        s.overrides.retain(|o| o.alias != id.as_str());
        s.overrides.len() != before
    }

    /// JSM's UI edits an override in place: the alias stays.
    fn edit_override(
        &self,
        schedule: &VendorScheduleId,
        id: &OverrideId,
        span: Span,
    ) -> Option<OverrideId> {
        let mut state = lock(&self.state);
        let s = state.schedule_mut(&schedule.0)?;
        let i = s.find(id.as_str())?;
        s.overrides[i].span = span;
        Some(id.clone())
    }

    fn render(&self, schedule: &VendorScheduleId, window: Window) -> Vec<OnCallPeriod> {
        lock(&self.state)
            .schedule(&schedule.0)
            .map(|s| state::render(&s.overrides, window))
            .unwrap_or_default()
    }

    fn inject(&self, trigger: Trigger, fault: Fault) {
        lock(&self.state)
            .faults
            .push((trigger, state::Pending::Core(fault)));
    }

    fn set_read_only(&self, read_only: bool) {
        lock(&self.state).read_only = read_only;
    }

    fn rate_limit_next(&self, calls: usize) {
        lock(&self.state).rate_limited = calls;
    }

    /// Clears pending faults (HTTP ones too), the read-only mode and the rate limit of
    /// [`VendorSimulator::rate_limit_next`] (not the dialect's).
    fn clear_faults(&self) {
        lock(&self.state).clear_faults();
    }

    fn write_calls(&self) -> usize {
        lock(&self.state).writes
    }
}
