//! The simulator's HTTP face: one wiremock responder that checks the key, applies faults, routes
//! PagerDuty's schedule, override and user endpoints over the shared [`Account`], answers as the
//! dialect reads each undocumented point, and logs every request.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use chrono::{DateTime, NaiveTime, SecondsFormat, TimeDelta, Timelike, Utc};
use chrono_tz::Tz;
use oncall_core::testkit::{Admission, Fault, OverLimit, RateLimit, Throttle, Trigger};
use oncall_core::{Error, Window};
use serde_json::{json, Value};
use wiremock::{Request, Respond, ResponseTemplate};

use super::dialect::{
    AllFailedStatus, Bucket, CreateAnswer, DeleteAnswer, ErrorTexts, LayerOrder, ListingFilter,
    ListingStatus, PagerDutyDialect, RateLimitAnswer, Rounding, UnauthorizedBody, V3Answer,
};
use super::state::{
    render_layer, Account, ItemRefusal, Refusal, Rendered, SimLayer, SimOverride, SimSchedule,
};
use super::{HttpFault, KeyKind, SimRequest};

/// The most items a list page holds, and the cap on `offset + limit`.
const MAX_LIMIT: usize = 100;
const OFFSET_CAP: usize = 10_000;

/// How far beyond a render window entries are looked for, so that `overflow=true` shows them whole
/// (entries longer than this are cut here).
const OVERFLOW_PAD: TimeDelta = TimeDelta::days(8);

/// How long a throttled request is held back under [`RateLimitAnswer::Delayed`].
const THROTTLE_DELAY: Duration = Duration::from_millis(300);

/// A write accepted but not yet applied ([`super::dialect::LostWrites::LandAfterAnswer`]).
#[derive(Debug, Clone)]
pub(crate) struct Pending {
    pub(crate) lands_at: DateTime<Utc>,
    pub(crate) method: String,
    pub(crate) path: String,
    pub(crate) query: Vec<(String, String)>,
    pub(crate) body: Vec<u8>,
}

/// Everything the simulator holds, behind one lock.
#[derive(Debug)]
pub(crate) struct Sim {
    pub(crate) account: Account,
    pub(crate) read_write_key: String,
    pub(crate) read_only_key: String,
    pub(crate) clock_step: TimeDelta,
    pub(crate) calls: usize,
    pub(crate) writes: usize,
    pub(crate) faults: Vec<(Trigger, Fault)>,
    pub(crate) http_faults: Vec<(Trigger, HttpFault)>,
    pub(crate) read_only: bool,
    pub(crate) rate_limited: usize,
    /// Fraction of requests answered 429 or 503, and the random state.
    pub(crate) fault_rate: Option<(f64, u64)>,
    pub(crate) latency: Duration,
    pub(crate) log: Vec<SimRequest>,
    pub(crate) dialect: PagerDutyDialect,
    pub(crate) max_batch: usize,
    /// The `ratelimit-reset` (seconds) of simulated 429s.
    pub(crate) rate_limit_reset: u64,
    /// Writes whose answer was lost before they landed.
    pub(crate) pending: Vec<Pending>,
    /// Attempts of each delete so far (the account lock refuses the first ones).
    pub(crate) delete_attempts: HashMap<String, u32>,
    /// The token bucket of [`Bucket`], with the setting it enforces (rebuilt when the dialect
    /// changes it).
    pub(crate) bucket: Option<(Bucket, Throttle)>,
}

/// An answer being built.
pub(crate) struct Reply {
    pub(crate) status: u16,
    body: Body,
    headers: Vec<(&'static str, String)>,
    delay: Duration,
    routed: bool,
}

enum Body {
    Json(Value),
    Text(String),
    Empty,
}

impl Reply {
    fn json(status: u16, body: Value) -> Reply {
        Reply {
            status,
            body: Body::Json(body),
            headers: Vec::new(),
            delay: Duration::ZERO,
            routed: true,
        }
    }

    fn text(status: u16, body: &str) -> Reply {
        Reply {
            body: Body::Text(body.to_owned()),
            ..Reply::json(status, Value::Null)
        }
    }

    fn empty(status: u16) -> Reply {
        Reply {
            body: Body::Empty,
            ..Reply::json(status, Value::Null)
        }
    }

    fn error(status: u16, message: &str, code: u32, errors: &[String]) -> Reply {
        let mut error = json!({ "message": message, "code": code });
        if !errors.is_empty() {
            error["errors"] = json!(errors);
        }
        Reply::json(status, json!({ "error": error }))
    }

    pub(crate) fn template(self) -> ResponseTemplate {
        let mut t = ResponseTemplate::new(self.status);
        for (k, v) in self.headers {
            t = t.insert_header(k, v.as_str());
        }
        t = match self.body {
            Body::Json(v) => t.set_body_raw(v.to_string(), "application/json"),
            Body::Text(s) => t.set_body_raw(s, "text/plain"),
            Body::Empty => t,
        };
        if self.delay.is_zero() {
            t
        } else {
            t.set_delay(self.delay)
        }
    }
}

/// The wiremock responder over the shared state.
pub(crate) struct Responder(pub(crate) Arc<Mutex<Sim>>);

impl Respond for Responder {
    fn respond(&self, request: &Request) -> ResponseTemplate {
        let mut sim = self.0.lock().unwrap_or_else(|e| e.into_inner());
        sim.handle(request).template()
    }
}

fn not_found() -> Reply {
    Reply::error(404, "Not Found", 2100, &[])
}

fn schedule_not_found() -> Reply {
    Reply::error(404, "Schedule Not Found", 3004, &[])
}

fn invalid_input(errors: &[String]) -> Reply {
    Reply::error(400, "Invalid Input Provided", 2001, errors)
}

fn time(t: DateTime<Utc>, zone: Tz) -> String {
    t.with_timezone(&zone)
        .to_rfc3339_opts(SecondsFormat::Secs, true)
}

fn parse_time(s: Option<&str>) -> Option<DateTime<Utc>> {
    DateTime::parse_from_rfc3339(s?)
        .ok()
        .map(|t| t.with_timezone(&Utc))
}

/// `t` floored to the minute.
fn floor_minute(t: DateTime<Utc>) -> DateTime<Utc> {
    t - TimeDelta::seconds(i64::from(t.second()))
        - TimeDelta::nanoseconds(i64::from(t.nanosecond()))
}

struct Query(Vec<(String, String)>);

impl Query {
    fn get(&self, key: &str) -> Option<&str> {
        self.0
            .iter()
            .find(|(k, _)| k == key)
            .map(|(_, v)| v.as_str())
    }

    fn flag(&self, key: &str) -> bool {
        matches!(self.get(key), Some("true" | "1"))
    }

    fn includes(&self, what: &str) -> bool {
        self.0.iter().any(|(k, v)| k == "include[]" && v == what)
    }

    /// `limit` (default 25, at most 100: a larger one is clamped, UNCONFIRMED) and `offset`.
    fn page(&self) -> Result<(usize, usize), Reply> {
        let number = |key, default| {
            self.get(key)
                .map_or(Ok(default), |v| v.parse::<usize>().map_err(|_| ()))
        };
        let (Ok(limit), Ok(offset)) = (number("limit", 25), number("offset", 0)) else {
            return Err(invalid_input(&["limit and offset must be numbers".into()]));
        };
        let limit = limit.clamp(1, MAX_LIMIT);
        if offset + limit > OFFSET_CAP {
            return Err(invalid_input(&[format!(
                "Offset + limit must be at most {OFFSET_CAP}"
            )]));
        }
        Ok((limit, offset))
    }

    /// Whether `text` matches `query=` (case-insensitive substring; no query matches all).
    fn matches(&self, texts: &[&str]) -> bool {
        match self.get("query") {
            None | Some("") => true,
            Some(q) => {
                let q = q.to_lowercase();
                texts.iter().any(|t| t.to_lowercase().contains(&q))
            }
        }
    }
}

/// A classic page: `total` is `null` unless `total=true` (then the count of every match).
fn page<T>(items: Vec<T>, key: &str, query: &Query, to_json: impl Fn(&T) -> Value) -> Reply {
    let (limit, offset) = match query.page() {
        Ok(p) => p,
        Err(r) => return r,
    };
    let total = items.len();
    let shown: Vec<Value> = items.iter().skip(offset).take(limit).map(to_json).collect();
    let more = offset + shown.len() < total;
    let total = if query.flag("total") {
        json!(total)
    } else {
        Value::Null
    };
    Reply::json(
        200,
        json!({ key: shown, "limit": limit, "offset": offset, "more": more, "total": total }),
    )
}

/// Seconds of `window` the entries cover, as a percentage (PagerDuty's
/// `rendered_coverage_percentage`).
fn coverage(entries: &[Rendered], window: Window) -> Value {
    let total = (window.end() - window.start()).num_seconds();
    if total <= 0 {
        return json!(0);
    }
    let covered: i64 = entries
        .iter()
        .map(|e| (e.end.min(window.end()) - e.start.max(window.start())).num_seconds())
        .filter(|s| *s > 0)
        .sum();
    let percent = (covered as f64) * 100.0 / (total as f64);
    json!((percent * 100.0).round() / 100.0)
}

impl Sim {
    fn key_kind(&self, request: &Request) -> KeyKind {
        let Some(auth) = request
            .headers
            .get("authorization")
            .and_then(|v| v.to_str().ok())
        else {
            return KeyKind::Missing;
        };
        match auth.strip_prefix("Token token=") {
            Some(k) if k == self.read_write_key => KeyKind::ReadWrite,
            Some(k) if k == self.read_only_key => KeyKind::ReadOnly,
            _ => KeyKind::Invalid,
        }
    }

    /// Applies the writes whose time has come, each at the instant it lands.
    pub(crate) fn settle_pending(&mut self) {
        if self.pending.is_empty() {
            return;
        }
        self.pending.sort_by_key(|p| p.lands_at);
        let now = self.account.now;
        let due: Vec<Pending> = self
            .pending
            .iter()
            .filter(|p| p.lands_at <= now)
            .cloned()
            .collect();
        self.pending.retain(|p| p.lands_at > now);
        for p in due {
            self.account.now = p.lands_at.min(now);
            let segments: Vec<&str> = p.path.trim_matches('/').split('/').collect();
            let query = Query(p.query.clone());
            let _ = self.apply_write(&p.method, &segments, &query, &p.body);
        }
        self.account.now = now;
    }

    fn handle(&mut self, request: &Request) -> Reply {
        let method = request.method.as_str().to_owned();
        let path = request.url.path().to_owned();
        let query = Query(
            request
                .url
                .query_pairs()
                .map(|(k, v)| (k.into_owned(), v.into_owned()))
                .collect(),
        );
        let key = self.key_kind(request);
        let header = |name: &str| {
            request
                .headers
                .get(name)
                .and_then(|v| v.to_str().ok())
                .map(str::to_owned)
        };
        let (accept, content_type) = (header("accept"), header("content-type"));
        let step = self.clock_step;
        self.account.advance(step);
        self.settle_pending();
        self.calls += 1;
        let write = method != "GET";
        if write {
            self.writes += 1;
        }
        let mut reply = self.decide(&method, &path, &query, &request.body, key, write);
        reply.delay += self.latency;
        self.log.push(SimRequest {
            method,
            path,
            query: query.0,
            key,
            accept,
            content_type,
            status: reply.status,
            routed: reply.routed,
        });
        reply
    }

    fn take_fault(&mut self, write: bool) -> Option<Fault> {
        let (call, w) = (self.calls, self.writes);
        let hit = |t: &Trigger| match t {
            Trigger::Call(n) => *n == call,
            Trigger::Write(n) => write && *n == w,
        };
        let i = self.faults.iter().position(|(t, _)| hit(t))?;
        Some(self.faults.remove(i).1)
    }

    fn take_http_fault(&mut self, write: bool) -> Option<HttpFault> {
        let (call, w) = (self.calls, self.writes);
        let i = self.http_faults.iter().position(|(t, _)| match t {
            Trigger::Call(n) => *n == call,
            Trigger::Write(n) => write && *n == w,
        })?;
        Some(self.http_faults.remove(i).1)
    }

    /// A deterministic draw in `[0, 1)` (splitmix64).
    pub(crate) fn draw(state: &mut u64) -> f64 {
        *state = state.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = *state;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^= z >> 31;
        (z >> 11) as f64 / (1u64 << 53) as f64
    }

    /// Whether the seeded fault rate draws a fault for this request: `Some(true)` a rate limit,
    /// `Some(false)` a 503.
    fn random_fault(&mut self) -> Option<bool> {
        let (fraction, state) = self.fault_rate.as_mut()?;
        if Self::draw(state) >= *fraction {
            return None;
        }
        Some(Self::draw(state) < 0.5)
    }

    /// The rate limit as the dialect answers it: a refusal, or (`Delayed`) `None`, the request
    /// then served late.
    fn rate_limited(&self) -> Option<Reply> {
        match self.dialect.rate_limit {
            RateLimitAnswer::WithHeaders => {
                let mut r = Reply::error(429, "Rate Limit Exceeded", 2020, &[]);
                r.headers = vec![
                    ("ratelimit-limit", "960".into()),
                    ("ratelimit-remaining", "0".into()),
                    ("ratelimit-reset", self.rate_limit_reset.to_string()),
                ];
                Some(r)
            }
            RateLimitAnswer::WithoutHeaders => Some(Reply::empty(429)),
            RateLimitAnswer::Delayed => None,
        }
    }

    /// What the account's token bucket ([`Bucket`]) decides for a request arriving now: `None`
    /// when the dialect has none. The bucket starts empty whenever the dialect changes it.
    fn admit(&mut self) -> Option<Admission> {
        let setting = self.dialect.bucket;
        let (limit, over_limit) = match setting {
            Bucket::Off => {
                self.bucket = None;
                return None;
            }
            Bucket::Refuse429(limit) => (limit, OverLimit::Refuse),
            Bucket::Delay(limit) => (limit, OverLimit::Delay),
        };
        if !matches!(&self.bucket, Some((s, _)) if *s == setting) {
            let throttle = Throttle::new(RateLimit {
                per_second: Some(limit.per_second),
                per_minute: Some(limit.per_minute),
                over_limit,
            });
            self.bucket = Some((setting, throttle));
        }
        self.bucket
            .as_mut()
            .map(|(_, throttle)| throttle.admit(Instant::now()))
    }

    /// A 429 of the token bucket: the documented headers (the minute's limit, nothing left, whole
    /// seconds until the window has room) and body, or none at all where the dialect says so.
    fn bucket_refusal(&self, retry_after: Duration) -> Reply {
        if self.dialect.rate_limit == RateLimitAnswer::WithoutHeaders {
            return Reply::empty(429);
        }
        let limit = match self.dialect.bucket {
            Bucket::Refuse429(l) | Bucket::Delay(l) => l.per_minute,
            Bucket::Off => 960,
        };
        // Whole seconds, rounded up: never an invitation to come back before there is room.
        let reset = retry_after.as_secs() + u64::from(retry_after.subsec_nanos() > 0);
        let mut r = Reply::error(429, "Rate Limit Exceeded", 2020, &[]);
        r.headers = vec![
            ("ratelimit-limit", limit.to_string()),
            ("ratelimit-remaining", "0".into()),
            ("ratelimit-reset", reset.max(1).to_string()),
        ];
        r
    }

    fn unauthorized(&self) -> Reply {
        match self.dialect.unauthorized_body {
            UnauthorizedBody::Json => Reply::error(401, "Authentication failed", 2006, &[]),
            UnauthorizedBody::TextPlain => Reply::text(401, "HTTP Token: Access denied.\n"),
        }
    }

    fn forbidden(&self) -> Reply {
        match self.dialect.error_texts {
            ErrorTexts::Captured => Reply::json(
                403,
                json!({ "error": { "code": 403, "errors": [], "message": "Insufficient permissions" } }),
            ),
            ErrorTexts::Invented => Reply::error(403, "Access Denied", 2010, &[]),
        }
    }

    fn account_locked(&self) -> Reply {
        match self.dialect.error_texts {
            ErrorTexts::Captured => invalid_input(&[
                "License error: Unable to perform request at this time. account could not be locked"
                    .into(),
            ]),
            ErrorTexts::Invented => {
                Reply::error(400, "Account Busy", 2001, &["The account is busy, try again".into()])
            }
        }
    }

    fn item_error(&self, refusal: &ItemRefusal) -> String {
        let captured = self.dialect.error_texts == ErrorTexts::Captured;
        match (refusal, captured) {
            (ItemRefusal::EndsBeforeStart, true) => "Override must end after its start".into(),
            (ItemRefusal::EndsBeforeStart, false) => "Invalid time range".into(),
            (ItemRefusal::EndsInThePast, true) => "Override must end in the future".into(),
            (ItemRefusal::EndsInThePast, false) => "End time is in the past".into(),
            (ItemRefusal::BadTimes, _) => "Override start and end must be valid times".into(),
            (ItemRefusal::UnknownUser(id), true) => format!("User {id} not found"),
            (ItemRefusal::UnknownUser(id), false) => format!("No such person {id}"),
            (ItemRefusal::NoSchedule, _) => "Schedule not found".into(),
        }
    }

    /// What PagerDuty answers for a kind of error (faults injected as [`Fault::Fail`]).
    fn failure(&self, error: &Error) -> Option<Reply> {
        Some(match error {
            Error::RateLimited { .. } => return self.rate_limited(),
            Error::Transient { .. } => Reply::text(503, "Service Unavailable"),
            Error::PermissionDenied { .. } => self.forbidden(),
            Error::Unauthenticated { .. } => self.unauthorized(),
            Error::NotFound { .. } => not_found(),
            Error::Rejected { message } => invalid_input(std::slice::from_ref(message)),
            Error::UnknownMember { email, .. } => {
                invalid_input(&[format!("User {email} not found")])
            }
            Error::Conflict { message } => {
                Reply::error(409, "Conflict", 2001, std::slice::from_ref(message))
            }
            Error::InvalidResponse { .. } => Reply::text(200, "{\"overrides\": [{\"id\": "),
            _ => Reply::text(500, "Internal Server Error"),
        })
    }

    fn decide(
        &mut self,
        method: &str,
        path: &str,
        query: &Query,
        body: &[u8],
        key: KeyKind,
        write: bool,
    ) -> Reply {
        if matches!(key, KeyKind::Invalid | KeyKind::Missing) {
            return self.unauthorized();
        }
        // The account's own token bucket, before anything is done.
        let mut bucket_delay = Duration::ZERO;
        match self.admit() {
            None | Some(Admission::Admit) => {}
            Some(Admission::Delayed(wait)) => bucket_delay = wait,
            Some(Admission::Refused { retry_after, .. }) => {
                return self.bucket_refusal(retry_after)
            }
        }
        // Faults injected for this very request come first: a seeded random fault must not swallow
        // the one a test placed on, say, the first write.
        let fault = self.take_fault(write);
        let http_fault = self.take_http_fault(write);
        let mut throttled = Duration::ZERO;
        if fault.is_none() && http_fault.is_none() {
            let limited = if self.rate_limited > 0 {
                self.rate_limited -= 1;
                true
            } else {
                match self.random_fault() {
                    Some(true) => true,
                    Some(false) => return Reply::text(503, "Service Unavailable"),
                    None => false,
                }
            };
            if limited {
                match self.rate_limited() {
                    Some(refusal) => return refusal,
                    None => throttled = THROTTLE_DELAY,
                }
            }
        }
        let late = self.dialect.lost_writes.delay();
        let lands_later = write && !late.is_zero();
        match fault {
            Some(Fault::Fail(e)) => match self.failure(&e) {
                Some(reply) => return reply,
                None => throttled = THROTTLE_DELAY,
            },
            Some(Fault::LoseResponse) => {
                if lands_later {
                    self.defer(method, path, query, body, late);
                } else {
                    self.route(method, path, query, body, key, write);
                }
                return Reply::text(502, "Bad Gateway");
            }
            None => {}
        }
        if let (Some(HttpFault::Slow(d)), true) = (http_fault, lands_later) {
            // Still being processed when the client gives up: a gateway's timeout, later the write.
            self.defer(method, path, query, body, late);
            let mut reply = Reply::text(504, "Gateway Timeout");
            reply.delay += d;
            return reply;
        }
        let mut reply = self.route(method, path, query, body, key, write);
        reply.delay += throttled + bucket_delay;
        match http_fault {
            Some(HttpFault::MalformedBody) if reply.status < 300 => {
                reply = Reply::text(200, "{\"schedules\": [{\"id\": \"P");
            }
            Some(HttpFault::MissingField) if reply.status < 300 => {
                reply = Reply::json(200, json!({}))
            }
            Some(HttpFault::Slow(d)) => reply.delay += d,
            _ => {}
        }
        reply
    }

    /// Keeps a write to apply `after` from now.
    fn defer(&mut self, method: &str, path: &str, query: &Query, body: &[u8], after: TimeDelta) {
        self.pending.push(Pending {
            lands_at: self.account.now + after,
            method: method.to_owned(),
            path: path.to_owned(),
            query: query.0.clone(),
            body: body.to_vec(),
        });
    }

    fn route(
        &mut self,
        method: &str,
        path: &str,
        query: &Query,
        body: &[u8],
        key: KeyKind,
        write: bool,
    ) -> Reply {
        let segments: Vec<&str> = path.trim_matches('/').split('/').collect();
        if write && (key == KeyKind::ReadOnly || self.read_only) {
            // Read-only keys get 403 on every non-GET ([KB-KEYS]).
            return self.forbidden();
        }
        match (method, segments.as_slice()) {
            ("GET", ["users"]) => self.list_users(query),
            ("GET", ["users", id]) => self.get_user(id),
            ("GET", ["schedules"]) => self.list_schedules(query),
            ("GET", ["schedules", id]) => self.get_schedule(id, query),
            ("GET", ["schedules", id, "overrides"]) => self.list_overrides(id, query),
            ("GET", ["schedules", id, "users"]) => self.schedule_users(id, query),
            _ => match self.apply_write(method, &segments, query, body) {
                Some(reply) => reply,
                None => Reply {
                    routed: false,
                    ..Reply::error(
                        404,
                        &format!("Not Found: the simulator has no endpoint {method} {path}"),
                        2100,
                        &[],
                    )
                },
            },
        }
    }

    /// The write endpoints; `None` for anything else.
    fn apply_write(
        &mut self,
        method: &str,
        segments: &[&str],
        _query: &Query,
        body: &[u8],
    ) -> Option<Reply> {
        Some(match (method, segments) {
            ("POST", ["schedules", id, "overrides"]) => self.create_overrides(id, body),
            ("DELETE", ["schedules", id, "overrides", o]) => self.delete_override(id, o),
            _ => return None,
        })
    }

    fn user_json(&self, id: &str) -> Value {
        let Some(u) = self.account.user(id) else {
            return json!({ "id": id, "type": "user_reference", "summary": "Deleted user" });
        };
        json!({
            "id": u.id, "type": "user", "summary": u.name, "name": u.name, "email": u.email,
            "time_zone": "UTC", "role": "user",
            "self": format!("https://api.pagerduty.com/users/{}", u.id),
            "html_url": format!("https://subdomain.pagerduty.com/users/{}", u.id),
            "contact_methods": [{ "id": format!("C{}", u.id), "type": "phone_contact_method_reference", "summary": "Mobile" }],
        })
    }

    fn user_ref(&self, id: &str) -> Value {
        let name = self
            .account
            .user(id)
            .map(|u| u.name.clone())
            .unwrap_or_default();
        json!({
            "id": id, "type": "user_reference", "summary": name,
            "self": format!("https://api.pagerduty.com/users/{id}"),
            "html_url": format!("https://subdomain.pagerduty.com/users/{id}"),
        })
    }

    /// `GET /users`: `query` matches a name or an email (python-pagerduty's `find` relies on it).
    fn list_users(&self, query: &Query) -> Reply {
        let ids: Vec<String> = self
            .account
            .users
            .iter()
            .filter(|u| query.matches(&[&u.name, &u.email]))
            .map(|u| u.id.clone())
            .collect();
        page(ids, "users", query, |id| self.user_json(id))
    }

    fn get_user(&self, id: &str) -> Reply {
        if self.account.user(id).is_none() {
            return not_found();
        }
        Reply::json(200, json!({ "user": self.user_json(id) }))
    }

    fn schedule_head(&self, s: &SimSchedule) -> Value {
        let users: Vec<Value> = self
            .account
            .members(s)
            .iter()
            .map(|id| self.user_ref(id))
            .collect();
        json!({
            "id": s.id, "type": "schedule", "summary": s.name, "name": s.name,
            "time_zone": s.zone.name(),
            "self": format!("https://api.pagerduty.com/schedules/{}", s.id),
            "html_url": format!("https://subdomain.pagerduty.com/schedules/{}", s.id),
            "users": users, "escalation_policies": [], "teams": [],
        })
    }

    /// `GET /schedules`: `query` matches the name.
    fn list_schedules(&self, query: &Query) -> Reply {
        let layers = query.includes("schedule_layers");
        let listed: Vec<&SimSchedule> = self
            .account
            .schedules
            .values()
            .filter(|s| query.matches(&[&s.name]))
            .collect();
        page(listed, "schedules", query, |s| {
            let mut v = self.schedule_head(s);
            if layers {
                v["schedule_layers"] = json!(self.layers_json(s, s.zone, None, false));
            }
            v
        })
    }

    fn entries_json(&self, entries: &[Rendered], zone: Tz) -> Vec<Value> {
        entries
            .iter()
            .map(|e| json!({ "start": time(e.start, zone), "end": time(e.end, zone), "user": self.user_ref(&e.user_id) }))
            .collect()
    }

    /// Entries rendered over the padded window, then kept where they overlap `[since, until)`:
    /// whole with `overflow`, else clipped.
    fn in_window(entries: Vec<Rendered>, window: Window, overflow: bool) -> Vec<Rendered> {
        entries
            .into_iter()
            .filter(|e| e.start < window.end() && e.end > window.start())
            .map(|mut e| {
                if !overflow {
                    e.start = e.start.max(window.start());
                    e.end = e.end.min(window.end());
                }
                e
            })
            .collect()
    }

    /// A restriction's local start in the schedule's zone, as shown in `zone` (restrictions
    /// "respect the time_zone parameter of the request"): moved by the offsets' difference at the
    /// layer's virtual start.
    fn restriction_start(
        layer: &SimLayer,
        schedule_zone: Tz,
        zone: Tz,
        seconds: u32,
    ) -> (u32, i64) {
        use chrono::Offset;
        let at = layer.virtual_start;
        let from = at
            .with_timezone(&schedule_zone)
            .offset()
            .fix()
            .local_minus_utc();
        let to = at.with_timezone(&zone).offset().fix().local_minus_utc();
        let shifted = i64::from(seconds) + i64::from(to - from);
        let day_shift = shifted.div_euclid(86_400);
        (
            u32::try_from(shifted.rem_euclid(86_400)).unwrap_or(0),
            day_shift,
        )
    }

    fn layers_json(
        &self,
        s: &SimSchedule,
        zone: Tz,
        render: Option<(Window, Window)>,
        overflow: bool,
    ) -> Vec<Value> {
        let turns = self.dialect.layer_turns;
        let mut layers: Vec<Value> = s
            .layers
            .iter()
            .map(|l| {
                let users: Vec<Value> = l
                    .users
                    .iter()
                    .map(|u| json!({ "user": self.user_ref(u) }))
                    .collect();
                let restrictions: Vec<Value> = l
                    .restrictions
                    .iter()
                    .map(|x| {
                        let (seconds, day_shift) =
                            Self::restriction_start(l, s.zone, zone, x.start_of_day);
                        let start = NaiveTime::from_num_seconds_from_midnight_opt(seconds, 0)
                            .unwrap_or(NaiveTime::MIN)
                            .format("%H:%M:%S")
                            .to_string();
                        match x.weekday {
                            None => json!({ "type": "daily_restriction", "start_time_of_day": start, "duration_seconds": x.duration_seconds }),
                            Some(d) => {
                                let day = (i64::from(d) - 1 + day_shift).rem_euclid(7) + 1;
                                json!({ "type": "weekly_restriction", "start_day_of_week": day, "start_time_of_day": start, "duration_seconds": x.duration_seconds })
                            }
                        }
                    })
                    .collect();
                let mut v = json!({
                    "id": l.id, "name": l.name,
                    "start": time(l.start, zone),
                    "end": l.end.map(|e| time(e, zone)),
                    "rotation_virtual_start": time(l.virtual_start, zone),
                    "rotation_turn_length_seconds": l.turn_seconds,
                    "users": users, "restrictions": restrictions,
                });
                if let Some((window, padded)) = render {
                    let entries =
                        Self::in_window(render_layer(l, s.zone, padded, turns), window, overflow);
                    v["rendered_schedule_entries"] = json!(self.entries_json(&entries, zone));
                    v["rendered_coverage_percentage"] = coverage(&entries, window);
                }
                v
            })
            .collect();
        if self.dialect.layer_order == LayerOrder::ReversedOnGet {
            layers.reverse();
        }
        layers
    }

    /// `since`/`until`: both, or one and two weeks from it; none renders nothing.
    fn render_window(query: &Query) -> Result<Option<Window>, Reply> {
        let bad = || {
            Reply::error(
                400,
                "Invalid time values in 'since' and/or 'until'",
                2004,
                &[],
            )
        };
        let (since, until) = (query.get("since"), query.get("until"));
        let (since, until) = match (
            since.map(|s| parse_time(Some(s))),
            until.map(|u| parse_time(Some(u))),
        ) {
            (None, None) => return Ok(None),
            (Some(None), _) | (_, Some(None)) => return Err(bad()),
            (Some(Some(s)), None) => (s, s + TimeDelta::weeks(2)),
            (None, Some(Some(u))) => (u - TimeDelta::weeks(2), u),
            (Some(Some(s)), Some(Some(u))) => (s, u),
        };
        Window::new(since, until)
            .map(Some)
            .map_err(|_| Reply::error(400, "Invalid Query Date Range", 2005, &[]))
    }

    fn v3_refusal(&self) -> Reply {
        match self.dialect.v3_answer {
            V3Answer::NotFound => schedule_not_found(),
            V3Answer::TypeV3 => Reply::error(400, "Invalid Schedule", 3001, &[]),
        }
    }

    /// The `time_zone` a read asks for (default: the schedule's own).
    fn zone(query: &Query, default: Tz) -> Result<Tz, Reply> {
        match query.get("time_zone") {
            None => Ok(default),
            Some(z) => z
                .parse()
                .map_err(|_| invalid_input(&[format!("Time zone {z} is not valid")])),
        }
    }

    fn get_schedule(&self, id: &str, query: &Query) -> Reply {
        if self.account.v3.contains(id) {
            return match self.dialect.v3_answer {
                V3Answer::NotFound => schedule_not_found(),
                V3Answer::TypeV3 => Reply::json(
                    200,
                    json!({ "schedule": { "id": id, "type": "schedule_v3", "name": id, "time_zone": "UTC", "users": [] } }),
                ),
            };
        }
        let Some(s) = self.account.schedules.get(id) else {
            return schedule_not_found();
        };
        let zone = match Self::zone(query, s.zone) {
            Ok(z) => z,
            Err(r) => return r,
        };
        let window = match Self::render_window(query) {
            Ok(w) => w,
            Err(r) => return r,
        };
        let overflow = query.flag("overflow");
        let padded =
            window.and_then(|w| Window::new(w.start() - OVERFLOW_PAD, w.end() + OVERFLOW_PAD).ok());
        let render = window.zip(padded);
        let sub = |entries: Vec<Rendered>, name: &str| match render {
            Some((w, _)) => {
                let entries = Self::in_window(entries, w, overflow);
                json!({ "name": name, "rendered_schedule_entries": self.entries_json(&entries, zone), "rendered_coverage_percentage": coverage(&entries, w) })
            }
            None => json!({ "name": name, "rendered_schedule_entries": [] }),
        };
        let (overrides, fin) = match padded {
            Some(p) => (
                self.account.overrides_layer(s, p),
                self.account.final_schedule(s, p, self.dialect.layer_turns),
            ),
            None => (Vec::new(), Vec::new()),
        };
        let mut v = self.schedule_head(s);
        v["schedule_layers"] = json!(self.layers_json(s, zone, render, overflow));
        v["overrides_subschedule"] = sub(overrides, "Overrides");
        v["final_schedule"] = sub(fin, "Final Schedule");
        Reply::json(200, json!({ "schedule": v }))
    }

    fn override_json(&self, o: &SimOverride, zone: Tz, id: bool) -> Value {
        let mut v = json!({ "start": time(o.start, zone), "end": time(o.end, zone), "user": self.user_ref(&o.user_id) });
        if id {
            v["id"] = json!(o.id);
        }
        v
    }

    fn list_overrides(&self, id: &str, query: &Query) -> Reply {
        if self.account.v3.contains(id) {
            return self.v3_refusal();
        }
        let Some(s) = self.account.schedules.get(id) else {
            return schedule_not_found();
        };
        let window = match Self::render_window(query) {
            Ok(Some(w)) if query.get("since").is_some() && query.get("until").is_some() => w,
            Ok(_) => return invalid_input(&["since and until are required".into()]),
            Err(r) => return r,
        };
        let now = self.account.now;
        let filter = self.dialect.listing_filter;
        let listed = self.account.listed(s).filter(|o| match filter {
            ListingFilter::Intersecting => o.start < window.end() && o.end > window.start(),
            ListingFilter::StartsInWindow => o.start >= window.start() && o.start < window.end(),
        });
        let body = if query.flag("editable") {
            // "Only future overrides are editable", and only their ids come back.
            let ids: Vec<Value> = listed
                .filter(|o| o.start > now)
                .map(|o| json!({ "id": o.id }))
                .collect();
            json!({ "overrides": ids })
        } else {
            let overflow = query.flag("overflow");
            let items: Vec<Value> = listed
                .map(|o| {
                    let mut o = o.clone();
                    if !overflow {
                        o.start = o.start.max(window.start());
                        o.end = o.end.min(window.end());
                    }
                    self.override_json(&o, s.zone, true)
                })
                .collect();
            json!({ "overrides": items })
        };
        let status = match self.dialect.listing_status {
            ListingStatus::Ok200 => 200,
            ListingStatus::Created201 => 201,
        };
        Reply::json(status, body)
    }

    /// `GET /schedules/{id}/users`: the users on call in `[since, until)` (default: now), as full
    /// user objects.
    fn schedule_users(&self, id: &str, query: &Query) -> Reply {
        let Some(s) = self.account.schedules.get(id) else {
            return schedule_not_found();
        };
        let now = self.account.now;
        let window = match Self::render_window(query) {
            Ok(Some(w)) => w,
            Ok(None) => match Window::new(now, now + TimeDelta::seconds(1)) {
                Ok(w) => w,
                Err(_) => return invalid_input(&[]),
            },
            Err(r) => return r,
        };
        let mut ids: Vec<String> = Vec::new();
        for e in self
            .account
            .final_schedule(s, window, self.dialect.layer_turns)
        {
            if !ids.contains(&e.user_id) {
                ids.push(e.user_id);
            }
        }
        let users: Vec<Value> = ids.iter().map(|u| self.user_json(u)).collect();
        Reply::json(200, json!({ "users": users }))
    }

    fn create_overrides(&mut self, id: &str, body: &[u8]) -> Reply {
        if self.account.v3.contains(id) {
            return self.v3_refusal();
        }
        let Some(zone) = self.account.schedules.get(id).map(|s| s.zone) else {
            return schedule_not_found();
        };
        let Ok(body) = serde_json::from_slice::<Value>(body) else {
            return invalid_input(&["The request body is not valid JSON".into()]);
        };
        let (items, single) = match (body.get("overrides"), body.get("override")) {
            (Some(Value::Array(items)), _) => (items.clone(), false),
            (_, Some(o @ Value::Object(_))) => (vec![o.clone()], true),
            _ => return invalid_input(&["overrides is required".into()]),
        };
        if items.len() > self.max_batch {
            return invalid_input(&[format!(
                "overrides should have at most {} item(s)",
                self.max_batch
            )]);
        }
        let round = |t: Option<DateTime<Utc>>| match self.dialect.rounding {
            Rounding::WholeSeconds => t,
            Rounding::Minutes => t.map(floor_minute),
        };
        let listed_from = self.account.now + self.dialect.listing_lag.delay();
        let mut results = Vec::with_capacity(items.len());
        for item in &items {
            let start = round(parse_time(item.get("start").and_then(Value::as_str)));
            let end = round(parse_time(item.get("end").and_then(Value::as_str)));
            let user = item
                .pointer("/user/id")
                .and_then(Value::as_str)
                .unwrap_or_default();
            let echo = json!({ "start": item.get("start"), "end": item.get("end"), "user": self.user_ref(user) });
            let created = self
                .account
                .create_override(id, start, end, user, listed_from);
            results.push(match created {
                Ok(o) => (201, Vec::new(), self.override_json(&o, zone, true)),
                Err(refusals) => (
                    400,
                    refusals.iter().map(|r| self.item_error(r)).collect(),
                    echo,
                ),
            });
        }
        if single {
            return match results.pop() {
                Some((201, _, o)) => Reply::json(201, json!({ "override": o })),
                Some((_, errors, _)) => Reply::error(400, "Invalid Override", 2001, &errors),
                None => invalid_input(&[]),
            };
        }
        let statuses = || -> Vec<Value> {
            results
                .iter()
                .map(|(status, errors, o)| {
                    let mut v = json!({ "status": status, "override": o });
                    if !errors.is_empty() {
                        v["errors"] = json!(errors);
                    }
                    v
                })
                .collect()
        };
        let body = match self.dialect.create_answer {
            CreateAnswer::TopLevelArray => json!(statuses()),
            CreateAnswer::WrappedStatuses => json!({ "overrides": statuses() }),
            CreateAnswer::WrappedBare => json!({
                "overrides": results.iter().filter(|r| r.0 == 201).map(|r| r.2.clone()).collect::<Vec<_>>()
            }),
        };
        let all_failed = !results.is_empty() && results.iter().all(|r| r.0 != 201);
        let status = match (all_failed, self.dialect.all_failed_status) {
            (true, AllFailedStatus::BadRequest400) => 400,
            _ => 201,
        };
        Reply::json(status, body)
    }

    fn delete_override(&mut self, id: &str, override_id: &str) -> Reply {
        if self.account.v3.contains(id) {
            return self.v3_refusal();
        }
        let refusals = match self.dialect.delete_answer {
            DeleteAnswer::Documented => None,
            DeleteAnswer::AccountLocked { refusals } => Some((refusals, true)),
            DeleteAnswer::TimedOut { refusals } => Some((refusals, false)),
        };
        if let Some((refusals, lock)) = refusals {
            let attempts = self
                .delete_attempts
                .entry(format!("{id}/{override_id}"))
                .or_insert(0);
            if *attempts < refusals {
                *attempts += 1;
                return if lock {
                    self.account_locked()
                } else {
                    Reply::text(408, "Request Timeout")
                };
            }
        }
        match self.account.delete_override(id, override_id) {
            Ok(true) => Reply::empty(200),
            Ok(false) => Reply::empty(204),
            Err(Refusal::NotFound("schedule")) => schedule_not_found(),
            Err(Refusal::NotFound(_)) => Reply::error(404, "Override Not Found", 4004, &[]),
            Err(Refusal::Past) => Reply::error(
                400,
                "Invalid Override",
                2001,
                &["Cannot delete an override that has already ended".into()],
            ),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn draws_spread_over_the_unit_interval() {
        let mut state = 1;
        let draws: Vec<f64> = (0..1000).map(|_| Sim::draw(&mut state)).collect();
        let low = draws.iter().filter(|d| **d < 0.25).count();
        assert!((150..350).contains(&low), "{low}");
        assert!(draws.iter().all(|d| (0.0..1.0).contains(d)));
    }

    #[test]
    fn coverage_is_a_percentage_of_the_window() {
        let t = |h| DateTime::<Utc>::UNIX_EPOCH + TimeDelta::hours(h);
        let w = Window::new(t(0), t(8)).unwrap();
        let e = |s, e| Rendered {
            start: t(s),
            end: t(e),
            user_id: "U".into(),
        };
        assert_eq!(coverage(&[e(0, 2), e(6, 9)], w), json!(50.0));
        assert_eq!(coverage(&[], w), json!(0.0));
    }
}
