//! A stateful simulator of Opsgenie's Schedule, Schedule Rotation and Schedule Override API
//! (feature `testkit`), served on loopback by wiremock, for this crate's tests and for downstream
//! projects' own tests and property tests.
//!
//! [`OpsgenieSimulator`] implements the core's
//! [`VendorSimulator`]: a test sets its clock, adds schedules
//! (the core's [`VendorSchedule`], served in Opsgenie's wire shapes), plays a person editing
//! overrides in the UI, injects faults, and reads back what the vendor holds. A provider built by
//! [`OpsgenieSimulator::provider`] talks to it over HTTP, exactly as it would to Opsgenie.
//!
//! It is a second reading of Opsgenie's documentation, not a mirror of the adapter (STYLE habit
//! 14): its answers follow the official spec (`vendor-specs/opsgenie/`), its error bodies are the
//! ones captured from the real API where the reference has them, and every behaviour the
//! reference marks UNCONFIRMED is a switch of its [`OpsgenieDialect`], one setting per plausible
//! reading ([`OpsgenieDialect::variants`]), chosen with [`OpsgenieSimulator::start_with`] or
//! [`OpsgenieSimulator::set_dialect`].
//!
//! What it simulates:
//!
//! - `GET /v2/schedules[?expand=rotation]`, `GET /v2/schedules/{id}` and `…/timeline` (by id, or
//!   by name with `identifierType=name`), `GET …/rotations[/{id}]`, and `GET`, `POST`, `PUT`,
//!   `DELETE` of `…/overrides[/{alias}]` (by id, or by name with `scheduleIdentifierType=name`).
//!   Anything else is answered 404 and logged with [`LoggedRequest::simulated`] false, so a test can
//!   assert that nothing outside these endpoints was asked for (DESIGN R10).
//! - Rotations (hourly, daily, weekly; handoffs in the schedule's zone as [`Handoffs`] says; `none`
//!   participants; both kinds of time restriction), in the array order [`RotationOrder`] says. The
//!   timeline's `finalTimeline` applies overrides to the rotations they name (every rotation when
//!   they name none), clipped to the times each rotation is active, the winner of an overlap as
//!   [`OverlapPrecedence`] says; turns (and override periods: [`OverrideSplit`]) split at the
//!   request instant into `historical` and `default` as [`TimelineSplit`] says; `expand=base`,
//!   `override` and `forwarding` add the other three timelines.
//! - Overrides: aliases unique per schedule (a taken one refused as [`AliasTaken`] says), `PUT` in
//!   place, `GET` by alias, `DELETE` (answered as [`DeleteAnswer`] says); a missing alias is
//!   answered as [`MissingOverride`] says, an unknown user as [`UnknownUser`] says; creates that end
//!   in the past are refused; an update that ends a running override in the past is clamped to now
//!   or refused ([`PastEnd`]); instants are kept as [`Rounding`] says. Overrides may be limited to
//!   some rotations, by id or name (read back with the rotations' ids and names; an unknown one
//!   is a 422 naming `rotations`), with `rotations` of an override of every rotation read back as
//!   [`AllRotations`] says and a `PUT` without `rotations` as [`PutWithoutRotations`] says; and
//!   they may name nobody, a team or an escalation
//!   ([`OpsgenieSimulator::insert_recipient_override`]; held under the reserved emails of
//!   [`OverrideRecipient`], served as `{"type":"none"}`, `{"type":"team","id":…}`, …). The list
//!   endpoint shows ended overrides or not ([`PastOverrides`]) and the API's writes at once or
//!   late ([`ListingLag`]).
//! - Keys: [`READ_WRITE_KEY`], [`READ_ONLY_KEY`] (writes get 403/40301), anything else 401.
//! - Faults: the core's [`Fault`]s by [`Trigger`] (the n-th request, or the n-th write); a
//!   [`Fault::Fail`] answers the status and body Opsgenie gives for that kind of error and changes
//!   nothing, [`Fault::LoseResponse`] answers 502, the write landing as [`LostAnswerWrites`] says;
//!   [`HttpFault`]s (malformed 200, slow answer, dropped connection);
//!   [`VendorSimulator::rate_limit_next`] (a 429 with Opsgenie's rate-limit headers, or a late
//!   answer: [`Throttle`]); a random rate of 429s and 503s from a seed
//!   ([`OpsgenieSimulator::set_fault_rate`]); a latency per request
//!   ([`OpsgenieSimulator::set_latency`]).
//! - A rate limit of the account's own ([`Bucket`]): a token bucket per rolling second and per
//!   rolling minute ([`BucketLimit`]) that answers a request over it with a 429 naming the full
//!   window in `X-RateLimit-Period-In-Sec`, or late; off by default.
//! - A request log ([`OpsgenieSimulator::requests`]): method, path, query, key, status, JSON body.
//!
//! The simulator's clock is only ever the one the test sets; the `Date` header of every answer
//! carries it (that is how a provider learns the vendor's now).
//!
//! # Example: a sync against the simulator
//!
//! ```
//! use chrono::{NaiveDate, TimeZone, Utc};
//! use oncall_core::testkit::VendorSimulator;
//! use oncall_core::{
//!     sync, ConnectionId, Destination, DestinationId, DestinationMode, Email, InMemoryStateStore, Member, Participant,
//!     RoleIndex, Rotation, RotationUnit, Schedule, ScheduleId, Shift, SyncMode, SyncOptions,
//!     SyncTarget, VendorSchedule, VendorScheduleId,
//! };
//! use oncall_opsgenie::testkit::OpsgenieSimulator;
//! # tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap().block_on(async {
//! let now = Utc.with_ymd_and_hms(2024, 3, 1, 12, 0, 0).unwrap();
//! let sim = OpsgenieSimulator::start_at(now).await;
//! let (ann, bob) = (Email::parse("ann@example.com").unwrap(), Email::parse("bob@example.com").unwrap());
//! let start = NaiveDate::from_ymd_opt(2024, 1, 1).unwrap().and_hms_opt(9, 0, 0).unwrap();
//! sim.add_schedule(VendorSchedule {
//!     id: VendorScheduleId("ops".into()),
//!     name: "Ops".into(),
//!     zone: chrono_tz::Europe::Berlin,
//!     members: vec![Member::new(ann.clone(), "Ann"), Member::new(bob.clone(), "Bob")],
//!     rotations: vec![Rotation::new(
//!         "primary",
//!         RotationUnit::Weekly,
//!         1,
//!         start,
//!         vec![Participant::Member(ann.clone()), Participant::Member(bob.clone())],
//!     )],
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
//!     connection: ConnectionId("opsgenie".into()),
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
//! // Everything the sync asked for is an endpoint the simulator serves.
//! assert!(sim.requests().iter().all(|r| r.simulated));
//! # });
//! ```
//!
//! The core's conformance suite runs the same way:
//! `oncall_core::testkit::conformance::run_all(&sim.provider(), &context)`.

mod dialect;
mod endpoints;
mod http;
mod state;
mod timeline;
mod wire;

pub use dialect::{
    AliasTaken, AllRotations, Bucket, BucketLimit, DeleteAnswer, Handoffs, ListingLag,
    LostAnswerWrites, MissingOverride, OpsgenieDialect, OverlapPrecedence, OverrideSplit, PastEnd,
    PastOverrides, PutWithoutRotations, RotationOrder, Rounding, Throttle, TimelineSplit,
    UnknownSchedule, UnknownUser, LISTING_LAG, THROTTLE_DELAY,
};

use std::collections::VecDeque;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use chrono::{DateTime, TimeDelta, TimeZone, Utc};
use oncall_core::testkit::{Fault, Trigger, VendorSimulator};
use oncall_core::{
    Email, OnCallPeriod, Override, OverrideId, RetryPolicy, Span, VendorSchedule, VendorScheduleId,
    Window,
};
use serde_json::Value;
use wiremock::{Match, Mock, MockServer, Request, Respond, ResponseTemplate};

use crate::{OpsgenieBuilder, OpsgenieProvider, OverrideRecipient};
use state::{State, Stored};

/// The key the simulator accepts for reads and writes.
pub const READ_WRITE_KEY: &str = "opsgenie-sim-read-write-key";

/// The key the simulator accepts for reads only: its writes get 403/40301.
pub const READ_ONLY_KEY: &str = "opsgenie-sim-read-only-key";

/// Which key a logged request carried.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum KeyKind {
    /// [`READ_WRITE_KEY`].
    ReadWrite,
    /// [`READ_ONLY_KEY`].
    ReadOnly,
    /// Some other key (answered 401).
    Invalid,
    /// No `Authorization: GenieKey …` header at all (answered 401).
    Missing,
}

/// One request as the simulator received it.
#[derive(Debug, Clone, PartialEq)]
pub struct LoggedRequest {
    /// `GET`, `POST`, ...
    pub method: String,
    /// The path, percent-encoded as sent (`/v2/schedules/ops/overrides`).
    pub path: String,
    /// Query parameters, decoded, in order.
    pub query: Vec<(String, String)>,
    /// Which key it carried.
    pub key: KeyKind,
    /// The status answered; `None` when the connection was dropped.
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
    /// The request takes effect, and the answer is a 200 whose JSON lacks `data`.
    MalformedBody,
    /// The request takes effect, and the answer comes after this delay (beyond the client's
    /// timeout, the answer is lost to it).
    Slow(Duration),
    /// The connection is closed without an answer; the request does not take effect.
    DropConnection,
}

/// A simulated Opsgenie account on `127.0.0.1`. See the [module docs](self).
pub struct OpsgenieSimulator {
    server: MockServer,
    state: Arc<Mutex<State>>,
}

impl std::fmt::Debug for OpsgenieSimulator {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("OpsgenieSimulator")
            .field("uri", &self.server.uri())
            .finish_non_exhaustive()
    }
}

fn lock(state: &Mutex<State>) -> MutexGuard<'_, State> {
    state.lock().unwrap_or_else(|e| e.into_inner())
}

/// The intake "matcher" counts every request on arrival, logs it and takes the fault it
/// triggers; it matches (with the dropping responder) only when the connection is to be dropped.
/// Otherwise the arrival waits, under the request's fingerprint, for [`Replay`] to answer it.
struct Intake(Arc<Mutex<State>>);

impl Match for Intake {
    fn matches(&self, request: &Request) -> bool {
        let mut state = lock(&self.0);
        let arrival = http::arrive(&mut state, request);
        if arrival.drops() {
            return true;
        }
        state
            .arrived
            .entry(http::Fingerprint::of(request))
            .or_default()
            .push_back(arrival);
        false
    }
}

/// Answers a request over the state as it is when wiremock asks, pairing it with its own arrival
/// by fingerprint: were two requests matched before either was answered, each still gets its own
/// answer. (Wiremock 0.6 happens to match and respond under one lock; nothing here relies on it.)
struct Replay(Arc<Mutex<State>>);

impl Respond for Replay {
    fn respond(&self, request: &Request) -> ResponseTemplate {
        let mut state = lock(&self.0);
        let fingerprint = http::Fingerprint::of(request);
        let waiting = state
            .arrived
            .get_mut(&fingerprint)
            .and_then(VecDeque::pop_front);
        if state
            .arrived
            .get(&fingerprint)
            .is_some_and(VecDeque::is_empty)
        {
            state.arrived.remove(&fingerprint);
        }
        // A request wiremock answers without asking the intake first cannot happen; count it now
        // rather than answer nothing.
        let arrival = match waiting {
            Some(arrival) => arrival,
            None => http::arrive(&mut state, request),
        };
        let request_id = format!("sim-{}", arrival.number);
        let reply = http::answer(&mut state, request, arrival);
        reply.template(state.now, &request_id)
    }
}

impl OpsgenieSimulator {
    /// Starts a simulator on `127.0.0.1` (a free port) with its clock at 2024-01-01 00:00 UTC.
    pub async fn start() -> OpsgenieSimulator {
        let start = Utc
            .with_ymd_and_hms(2024, 1, 1, 0, 0, 0)
            .single()
            .unwrap_or_default();
        OpsgenieSimulator::start_at(start).await
    }

    /// Starts a simulator with its clock at `now`, speaking the default [`OpsgenieDialect`].
    pub async fn start_at(now: DateTime<Utc>) -> OpsgenieSimulator {
        OpsgenieSimulator::start_with(now, OpsgenieDialect::default()).await
    }

    /// Starts a simulator with its clock at `now`, speaking `dialect` where the reference is
    /// UNCONFIRMED.
    pub async fn start_with(now: DateTime<Utc>, dialect: OpsgenieDialect) -> OpsgenieSimulator {
        // No wiremock recording: the simulator keeps its own log (a bench sends thousands).
        let server = MockServer::builder()
            .disable_request_recording()
            .start()
            .await;
        let mut state = State::new(now);
        state.dialect = dialect;
        let state = Arc::new(Mutex::new(state));
        Mock::given(Intake(state.clone()))
            .respond_with_err(move |_: &Request| {
                std::io::Error::new(
                    std::io::ErrorKind::ConnectionAborted,
                    "the simulator drops this connection",
                )
            })
            .with_priority(1)
            .mount(&server)
            .await;
        Mock::given(wiremock::matchers::any())
            .respond_with(Replay(state.clone()))
            .with_priority(2)
            .mount(&server)
            .await;
        OpsgenieSimulator { server, state }
    }

    /// The base URL (`http://127.0.0.1:<port>`).
    pub fn uri(&self) -> String {
        self.server.uri()
    }

    /// Retries for tests: ten attempts, waits of 1 to 5 ms of our own backoff, a second in all
    /// (a 429's period is waited whole when it fits that second, and reported otherwise).
    pub fn test_retry_policy() -> RetryPolicy {
        RetryPolicy {
            max_attempts: 10,
            base_delay: Duration::from_millis(1),
            max_delay: Duration::from_millis(5),
            max_total_delay: Duration::from_secs(1),
        }
    }

    /// A builder pointed at the simulator with [`READ_WRITE_KEY`], [`Self::test_retry_policy`], a
    /// 5 s timeout and no request rate of its own, unless the dialect enforces a token bucket
    /// ([`Bucket`]): then the adaptive pace, as a real account gets it; change what a test needs.
    pub fn provider_builder(&self) -> OpsgenieBuilder {
        let builder = OpsgenieProvider::builder()
            .with_base_url(self.uri())
            .with_api_key(READ_WRITE_KEY)
            .with_retry(Self::test_retry_policy())
            .with_timeout(Duration::from_secs(5));
        match self.dialect().bucket {
            Bucket::Off => builder.without_rate_limit(),
            Bucket::Refuse429 | Bucket::Delay => {
                builder.with_adaptive_rate(oncall_core::pacing::AdaptiveRate::BRISK)
            }
        }
    }

    /// A provider with [`Self::provider_builder`]'s settings.
    pub fn provider(&self) -> OpsgenieProvider {
        self.build(self.provider_builder())
    }

    /// A provider with [`READ_ONLY_KEY`].
    pub fn read_only_provider(&self) -> OpsgenieProvider {
        self.build(self.provider_builder().with_api_key(READ_ONLY_KEY))
    }

    fn build(&self, builder: OpsgenieBuilder) -> OpsgenieProvider {
        match builder.build() {
            Ok(p) => p,
            // The simulator's URL and keys are valid by construction.
            Err(e) => panic!("the simulator's provider settings are invalid: {e}"),
        }
    }

    /// Every request received so far, in order.
    pub fn requests(&self) -> Vec<LoggedRequest> {
        lock(&self.state).log.clone()
    }

    /// Empties the request log (the call and write counts go on).
    pub fn clear_requests(&self) {
        lock(&self.state).clear_log();
    }

    /// How many requests of any kind the simulator has received.
    pub fn calls(&self) -> usize {
        lock(&self.state).calls
    }

    /// Every answer waits this long (on the server, without holding up other requests).
    pub fn set_latency(&self, latency: Duration) {
        lock(&self.state).latency = latency;
    }

    /// Answers a `fraction` of requests (0 to 1) with a 429 or a 503, half and half, chosen by a
    /// pseudo-random sequence from `seed`: the same requests get the same faults on every run.
    /// [`VendorSimulator::clear_faults`] ends it.
    pub fn set_fault_rate(&self, fraction: f64, seed: u64) {
        lock(&self.state).fault_rate = Some((fraction.clamp(0.0, 1.0), state::Rng::new(seed)));
    }

    /// Injects an HTTP-level fault at a trigger (counted like [`VendorSimulator::inject`]).
    pub fn inject_http(&self, trigger: Trigger, fault: HttpFault) {
        lock(&self.state)
            .faults
            .push((trigger, state::Pending::Http(fault)));
    }

    /// The dialect the simulator speaks.
    pub fn dialect(&self) -> OpsgenieDialect {
        lock(&self.state).dialect
    }

    /// Speaks `dialect` from now on (what is held stays).
    pub fn set_dialect(&self, dialect: OpsgenieDialect) {
        lock(&self.state).dialect = dialect;
    }

    /// Changes one or more switches of the dialect:
    /// `sim.update_dialect(|d| d.rounding = Rounding::FloorToMinute)`.
    pub fn update_dialect(&self, change: impl FnOnce(&mut OpsgenieDialect)) {
        change(&mut lock(&self.state).dialect);
    }

    /// Sets the timeline `order` of a schedule's rotations, by array index (by default 1, 2, 3 …
    /// in the order given to [`VendorSimulator::add_schedule`]).
    pub fn set_timeline_order(&self, schedule: &VendorScheduleId, order: &[f64]) {
        if let Some(s) = lock(&self.state).schedule_mut(&schedule.0) {
            s.order = order.to_vec();
        }
    }

    /// Enables or disables a schedule (only the `enabled` flag changes).
    pub fn set_enabled(&self, schedule: &VendorScheduleId, enabled: bool) {
        if let Some(s) = lock(&self.state).schedule_mut(&schedule.0) {
            s.enabled = enabled;
        }
    }

    /// A person's override that names a recipient who is not a person (`none`, a team, an
    /// escalation; see [`OverrideRecipient`]), over every rotation, as Opsgenie's UI makes one.
    /// It is held, listed and fetched under the recipient's reserved email, and served on the wire
    /// as that recipient (`{"type":"none"}`, `{"type":"team","id":…}`, …); the timeline shows it
    /// as nobody, or as the team or escalation, on call. Returns its alias, as
    /// [`VendorSimulator::insert_override`] does; `None` for a recipient with no reserved email.
    pub fn insert_recipient_override(
        &self,
        schedule: &VendorScheduleId,
        start: DateTime<Utc>,
        end: DateTime<Utc>,
        recipient: &OverrideRecipient,
    ) -> Option<OverrideId> {
        let member = recipient.email()?;
        Some(self.insert_override(schedule, Span::new(start, end, member)))
    }

    /// The ids of a schedule's rotations, in the order given to
    /// [`VendorSimulator::add_schedule`] (`<schedule id>-rotation-<n>`, from 1).
    pub fn rotation_ids(&self, schedule: &VendorScheduleId) -> Vec<String> {
        lock(&self.state)
            .schedule(&schedule.0)
            .map(|s| {
                (0..s.config.rotations.len())
                    .map(|i| s.rotation_id(i))
                    .collect()
            })
            .unwrap_or_default()
    }

    /// A person's override limited to some of the schedule's rotations (ids from
    /// [`Self::rotation_ids`], or rotation names; names of no rotation are left out), as
    /// Opsgenie's UI makes one: the timeline shows it in those rotations only. Returns its alias,
    /// as [`VendorSimulator::insert_override`] does.
    ///
    /// What a `PUT` without `rotations` does to such an override is the dialect's
    /// [`PutWithoutRotations`].
    pub fn insert_override_for_rotations(
        &self,
        schedule: &VendorScheduleId,
        span: Span,
        rotations: &[String],
    ) -> OverrideId {
        let id = self.insert_override(schedule, span);
        if let Some(s) = lock(&self.state).schedule_mut(&schedule.0) {
            let indices: Vec<usize> = rotations
                .iter()
                .filter_map(|r| s.rotation_index(r))
                .collect();
            if let Some(i) = s.find(id.as_str()) {
                s.overrides[i].rotations = Some(indices);
            }
        }
        id
    }

    /// The rotations an override is limited to, by id (`Some(None)`: every rotation); `None`
    /// when the schedule holds no override of that alias.
    pub fn override_rotations(
        &self,
        schedule: &VendorScheduleId,
        id: &OverrideId,
    ) -> Option<Option<Vec<String>>> {
        let state = lock(&self.state);
        let s = state.schedule(&schedule.0)?;
        let i = s.find(id.as_str())?;
        Some(
            s.overrides[i]
                .rotations
                .as_ref()
                .map(|rs| rs.iter().map(|&r| s.rotation_id(r)).collect()),
        )
    }

    /// Adds a user to the account (the members of added schedules are users already). Overrides
    /// may name any user of the account; anyone else is a 422 naming `user`.
    pub fn add_user(&self, email: Email) {
        lock(&self.state).users.insert(email);
    }
}

impl VendorSimulator for OpsgenieSimulator {
    fn now(&self) -> DateTime<Utc> {
        lock(&self.state).now
    }

    fn set_now(&self, now: DateTime<Utc>) {
        lock(&self.state).now = now;
    }

    fn set_clock_step(&self, step: TimeDelta) {
        lock(&self.state).clock_step = step;
    }

    /// Serves the schedule in Opsgenie's shapes; its members become users of the account.
    fn add_schedule(&self, schedule: VendorSchedule) {
        lock(&self.state).add_schedule(schedule);
    }

    fn overrides(&self, schedule: &VendorScheduleId) -> Vec<Override> {
        lock(&self.state)
            .schedule(&schedule.0)
            .map(state::listed)
            .unwrap_or_default()
    }

    /// A person's override gets the alias `manual-<n>` (the vendor would choose a random one).
    /// Its instants are kept as the dialect's [`Rounding`] says (a span that rounds to nothing
    /// is kept as given).
    fn insert_override(&self, schedule: &VendorScheduleId, span: Span) -> OverrideId {
        let mut state = lock(&self.state);
        let span = state.kept(span.clone()).unwrap_or(span);
        let seq = state.next_seq();
        let alias = OverrideId::new(format!("manual-{seq}"));
        if let Some(s) = state.schedule_mut(&schedule.0) {
            s.overrides.push(Stored {
                alias: alias.clone(),
                span,
                seq,
                written: seq,
                rotations: None,
            });
        }
        alias
    }

    fn remove_override(&self, schedule: &VendorScheduleId, id: &OverrideId) -> bool {
        let mut state = lock(&self.state);
        let Some(s) = state.schedule_mut(&schedule.0) else {
            return false;
        };
        let before = s.overrides.len();
        s.overrides.retain(|o| &o.alias != id);
        s.overrides.len() != before
    }

    /// Opsgenie's UI edits an override in place: the alias stays. Instants are kept as the
    /// dialect's [`Rounding`] says.
    fn edit_override(
        &self,
        schedule: &VendorScheduleId,
        id: &OverrideId,
        span: Span,
    ) -> Option<OverrideId> {
        let mut state = lock(&self.state);
        let span = state.kept(span.clone()).unwrap_or(span);
        let written = state.next_seq();
        let s = state.schedule_mut(&schedule.0)?;
        let i = s.find(id.as_str())?;
        s.overrides[i].span = span;
        s.overrides[i].written = written;
        Some(id.clone())
    }

    /// As the dialect's [`OverlapPrecedence`] resolves overlaps.
    fn render(&self, schedule: &VendorScheduleId, window: Window) -> Vec<OnCallPeriod> {
        let state = lock(&self.state);
        let rule = state.dialect.overlap;
        state
            .schedule(&schedule.0)
            .map(|s| state::render(&s.overrides, window, rule))
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

    /// Clears pending faults (HTTP ones too), the read-only mode, the rate limit and the fault rate.
    fn clear_faults(&self) {
        lock(&self.state).clear_faults();
    }

    fn write_calls(&self) -> usize {
        lock(&self.state).writes
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;
    use wiremock::http::{HeaderMap, HeaderValue, Method, Url};

    fn request(method: Method, path: &str) -> Request {
        let mut headers = HeaderMap::new();
        headers.insert(
            "authorization",
            HeaderValue::from_str(&format!("GenieKey {READ_WRITE_KEY}")).unwrap(),
        );
        Request {
            url: Url::parse(&format!("http://127.0.0.1:9{path}")).unwrap(),
            method,
            headers,
            body: Vec::new(),
        }
    }

    fn status(template: &ResponseTemplate) -> String {
        let shown = format!("{template:?}");
        let at = shown.find("status_code: ").unwrap() + "status_code: ".len();
        shown[at..at + 3].to_owned()
    }

    /// Wiremock happens to match and respond to one request at a time, under one lock. Were two
    /// requests to interleave (both matched, then both answered, in any order), each must still
    /// get its own answer.
    #[test]
    fn interleaved_requests_keep_their_own_answers() {
        let state = Arc::new(Mutex::new(State::new(
            Utc.with_ymd_and_hms(2024, 1, 1, 0, 0, 0).unwrap(),
        )));
        lock(&state).add_schedule(VendorSchedule {
            id: VendorScheduleId("VS".into()),
            name: "VS".into(),
            zone: chrono_tz::UTC,
            members: Vec::new(),
            rotations: Vec::new(),
        });
        let (intake, replay) = (Intake(state.clone()), Replay(state.clone()));
        let listed = request(Method::GET, "/v2/schedules");
        let outside = request(Method::GET, "/v2/alerts");
        assert!(!intake.matches(&listed));
        assert!(!intake.matches(&outside));
        assert_eq!(status(&replay.respond(&outside)), "404");
        assert_eq!(status(&replay.respond(&listed)), "200");
        let log = lock(&state).log.clone();
        assert_eq!(
            log.iter()
                .map(|r| (r.path.as_str(), r.status))
                .collect::<Vec<_>>(),
            [("/v2/schedules", Some(200)), ("/v2/alerts", Some(404))]
        );
    }
}
