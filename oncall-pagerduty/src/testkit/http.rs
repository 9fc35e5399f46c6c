//! The simulator's HTTP face: one wiremock responder that checks the key, applies faults, routes
//! PagerDuty's schedule, override and user endpoints over the shared [`Account`], and logs every
//! request.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use chrono::{DateTime, SecondsFormat, TimeDelta, Utc};
use chrono_tz::Tz;
use oncall_core::testkit::{Fault, Trigger};
use oncall_core::{Error, Participant, Window};
use serde_json::{json, Value};
use wiremock::{Request, Respond, ResponseTemplate};

use super::state::{Account, Refusal, Rendered, SimSchedule};
use super::{CreateAnswer, HttpFault, KeyKind, SimRequest, V3Answer};

/// The most items a list page holds, and the cap on `offset + limit`.
const MAX_LIMIT: usize = 100;
const OFFSET_CAP: usize = 10_000;

/// How far beyond a render window entries are looked for, so that `overflow=true` shows them whole
/// (entries longer than this are cut here).
const OVERFLOW_PAD: TimeDelta = TimeDelta::days(8);

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
    pub(crate) create_answer: CreateAnswer,
    pub(crate) v3_answer: V3Answer,
    pub(crate) layers_reversed_on_get: bool,
    pub(crate) max_batch: usize,
    /// The `ratelimit-reset` (seconds) of simulated 429s.
    pub(crate) rate_limit_reset: u64,
}

/// An answer being built.
struct Reply {
    status: u16,
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

    fn rate_limited(reset_seconds: u64) -> Reply {
        let mut r = Reply::error(429, "Rate Limit Exceeded", 2020, &[]);
        r.headers = vec![
            ("ratelimit-limit", "960".into()),
            ("ratelimit-remaining", "0".into()),
            ("ratelimit-reset", reset_seconds.to_string()),
        ];
        r
    }

    fn template(self) -> ResponseTemplate {
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

/// What PagerDuty answers for a kind of error (faults injected as [`Fault::Fail`]).
fn failure(error: &Error, reset_seconds: u64) -> Reply {
    match error {
        Error::RateLimited { .. } => Reply::rate_limited(reset_seconds),
        Error::Transient { .. } => Reply::text(503, "Service Unavailable"),
        Error::PermissionDenied { .. } => Reply::error(403, "Access Denied", 2010, &[]),
        Error::Unauthenticated { .. } => Reply::text(401, "Unauthorized"),
        Error::NotFound { .. } => not_found(),
        Error::Rejected { message } => invalid_input(std::slice::from_ref(message)),
        Error::UnknownMember { email, .. } => invalid_input(&[format!("User {email} not found")]),
        Error::Conflict { message } => {
            Reply::error(409, "Conflict", 2001, std::slice::from_ref(message))
        }
        Error::InvalidResponse { .. } => Reply::text(200, "{\"overrides\": [{\"id\": "),
        _ => Reply::text(500, "Internal Server Error"),
    }
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
}

fn page<T>(
    items: Vec<T>,
    key: &str,
    limit: usize,
    offset: usize,
    to_json: impl Fn(&T) -> Value,
) -> Reply {
    let total = items.len();
    let shown: Vec<Value> = items.iter().skip(offset).take(limit).map(to_json).collect();
    let more = offset + shown.len() < total;
    Reply::json(
        200,
        json!({ key: shown, "limit": limit, "offset": offset, "more": more, "total": null }),
    )
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
    fn draw(state: &mut u64) -> f64 {
        *state = state.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = *state;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^= z >> 31;
        (z >> 11) as f64 / (1u64 << 53) as f64
    }

    fn random_fault(&mut self) -> Option<Reply> {
        let (fraction, state) = self.fault_rate.as_mut()?;
        if Self::draw(state) >= *fraction {
            return None;
        }
        let reset = self.rate_limit_reset;
        Some(if Self::draw(state) < 0.5 {
            Reply::rate_limited(reset)
        } else {
            Reply::text(503, "Service Unavailable")
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
            // PagerDuty's 401 is not always JSON (go-pagerduty#469).
            return Reply::text(401, "Unauthorized");
        }
        // Faults injected for this very request come first: a seeded random fault must not swallow
        // the one a test placed on, say, the first write.
        let fault = self.take_fault(write);
        let http_fault = self.take_http_fault(write);
        if fault.is_none() && http_fault.is_none() {
            if self.rate_limited > 0 {
                self.rate_limited -= 1;
                return Reply::rate_limited(self.rate_limit_reset);
            }
            if let Some(reply) = self.random_fault() {
                return reply;
            }
        }
        match fault {
            Some(Fault::Fail(e)) => return failure(&e, self.rate_limit_reset),
            Some(Fault::LoseResponse) => {
                self.route(method, path, query, body, key, write);
                return Reply::text(502, "Bad Gateway");
            }
            None => {}
        }
        let mut reply = self.route(method, path, query, body, key, write);
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
            return Reply::error(403, "Access Denied", 2010, &[]);
        }
        match (method, segments.as_slice()) {
            ("GET", ["users"]) => self.list_users(query),
            ("GET", ["users", id]) => self.get_user(id),
            ("GET", ["schedules"]) => self.list_schedules(query),
            ("GET", ["schedules", id]) => self.get_schedule(id, query),
            ("GET", ["schedules", id, "overrides"]) => self.list_overrides(id, query),
            ("POST", ["schedules", id, "overrides"]) => self.create_overrides(id, body),
            ("DELETE", ["schedules", id, "overrides", o]) => self.delete_override(id, o),
            _ => Reply {
                routed: false,
                ..Reply::error(
                    404,
                    &format!("Not Found: the simulator has no endpoint {method} {path}"),
                    2100,
                    &[],
                )
            },
        }
    }

    fn user_json(&self, id: &str) -> Value {
        let Some(u) = self.account.user(id) else {
            return json!({ "id": id, "type": "user_reference", "summary": "Deleted user" });
        };
        json!({
            "id": u.id, "type": "user", "summary": u.name, "name": u.name, "email": u.email,
            "time_zone": "UTC", "role": "user", "job_title": null,
            "self": format!("https://api.pagerduty.com/users/{}", u.id),
            "contact_methods": [{ "id": format!("C{}", u.id), "type": "phone_contact_method_reference", "summary": "Mobile" }],
        })
    }

    fn user_ref(&self, id: &str) -> Value {
        let name = self
            .account
            .user(id)
            .map(|u| u.name.clone())
            .unwrap_or_default();
        json!({ "id": id, "type": "user_reference", "summary": name })
    }

    fn list_users(&self, query: &Query) -> Reply {
        let (limit, offset) = match query.page() {
            Ok(p) => p,
            Err(r) => return r,
        };
        let ids: Vec<String> = self.account.users.iter().map(|u| u.id.clone()).collect();
        page(ids, "users", limit, offset, |id| self.user_json(id))
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
            "time_zone": s.zone.name(), "description": null,
            "self": format!("https://api.pagerduty.com/schedules/{}", s.id),
            "users": users, "escalation_policies": [], "teams": [],
        })
    }

    fn list_schedules(&self, query: &Query) -> Reply {
        let (limit, offset) = match query.page() {
            Ok(p) => p,
            Err(r) => return r,
        };
        let layers = query.includes("schedule_layers");
        let listed: Vec<&SimSchedule> = self.account.schedules.values().collect();
        page(listed, "schedules", limit, offset, |s| {
            let mut v = self.schedule_head(s);
            if layers {
                v["schedule_layers"] = json!(self.layers_json(s, None, false));
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

    fn layers_json(
        &self,
        s: &SimSchedule,
        render: Option<(Window, Window)>,
        overflow: bool,
    ) -> Vec<Value> {
        let mut layers: Vec<Value> = s
            .layers
            .iter()
            .enumerate()
            .map(|(i, l)| {
                let r = &l.rotation;
                let at = |t| time(oncall_core::resolve_local(s.zone, t), s.zone);
                let users: Vec<Value> = r
                    .participants
                    .iter()
                    .filter_map(|p| match p {
                        Participant::Member(e) => self.account.user_by_email(e.as_str()),
                        Participant::Nobody => None,
                    })
                    .map(|u| json!({ "user": self.user_ref(&u.id) }))
                    .collect();
                let unit = match r.unit {
                    oncall_core::RotationUnit::Hourly => 3_600,
                    oncall_core::RotationUnit::Daily => 86_400,
                    oncall_core::RotationUnit::Weekly => 604_800,
                };
                let restrictions: Vec<Value> = r
                    .restrictions
                    .iter()
                    .map(|x| {
                        let start = x.start.format("%H:%M:%S").to_string();
                        match x.day {
                            None => json!({ "type": "daily_restriction", "start_time_of_day": start, "duration_seconds": x.duration_seconds }),
                            Some(d) => json!({ "type": "weekly_restriction", "start_day_of_week": d.number_from_monday(), "start_time_of_day": start, "duration_seconds": x.duration_seconds }),
                        }
                    })
                    .collect();
                let mut v = json!({
                    "id": l.id, "name": r.name,
                    "start": at(r.effective_from.unwrap_or(r.start).max(r.start)),
                    "end": r.end.map(at),
                    "rotation_virtual_start": at(r.start),
                    "rotation_turn_length_seconds": unit * i64::from(r.length),
                    "users": users, "restrictions": restrictions,
                });
                if let Some((window, padded)) = render {
                    let entries = Self::in_window(self.account.layer(s, i, padded), window, overflow);
                    v["rendered_schedule_entries"] = json!(self.entries_json(&entries, s.zone));
                }
                v
            })
            .collect();
        if self.layers_reversed_on_get {
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
        match self.v3_answer {
            V3Answer::NotFound => schedule_not_found(),
            V3Answer::TypeV3 => Reply::error(400, "Invalid Schedule", 3001, &[]),
        }
    }

    fn get_schedule(&self, id: &str, query: &Query) -> Reply {
        if self.account.v3.contains(id) {
            return match self.v3_answer {
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
        let window = match Self::render_window(query) {
            Ok(w) => w,
            Err(r) => return r,
        };
        let overflow = query.flag("overflow");
        let padded =
            window.and_then(|w| Window::new(w.start() - OVERFLOW_PAD, w.end() + OVERFLOW_PAD).ok());
        let render = window.zip(padded);
        let sub = |entries: Vec<Rendered>, name: &str| {
            let entries = match render {
                Some((w, _)) => Self::in_window(entries, w, overflow),
                None => Vec::new(),
            };
            json!({ "name": name, "rendered_schedule_entries": self.entries_json(&entries, s.zone), "rendered_coverage_percentage": null })
        };
        let (overrides, fin) = match padded {
            Some(p) => (
                self.account.overrides_layer(s, p),
                self.account.final_schedule(s, p),
            ),
            None => (Vec::new(), Vec::new()),
        };
        let mut v = self.schedule_head(s);
        v["schedule_layers"] = json!(self.layers_json(s, render, overflow));
        v["overrides_subschedule"] = sub(overrides, "Overrides");
        v["final_schedule"] = sub(fin, "Final Schedule");
        Reply::json(200, json!({ "schedule": v }))
    }

    fn override_json(&self, o: &super::state::SimOverride, zone: Tz, id: bool) -> Value {
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
        let overflow = query.flag("overflow");
        let listed: Vec<Value> = s
            .overrides
            .iter()
            .filter(|o| o.start < window.end() && o.end > window.start())
            .map(|o| {
                let mut o = o.clone();
                if !overflow {
                    o.start = o.start.max(window.start());
                    o.end = o.end.min(window.end());
                }
                self.override_json(&o, s.zone, true)
            })
            .collect();
        // The spec says 201 for this listing; real PagerDuty presumably answers 200 (UNCONFIRMED).
        Reply::json(200, json!({ "overrides": listed }))
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
        let mut results = Vec::with_capacity(items.len());
        for item in &items {
            let start = parse_time(item.get("start").and_then(Value::as_str));
            let end = parse_time(item.get("end").and_then(Value::as_str));
            let user = item
                .pointer("/user/id")
                .and_then(Value::as_str)
                .unwrap_or_default();
            let echo = json!({ "start": item.get("start"), "end": item.get("end"), "user": self.user_ref(user) });
            results.push(match self.account.create_override(id, start, end, user) {
                Ok(o) => (201, Vec::new(), self.override_json(&o, zone, true)),
                Err(errors) => (400, errors, echo),
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
        let body = match self.create_answer {
            CreateAnswer::TopLevelArray => json!(statuses()),
            CreateAnswer::WrappedStatuses => json!({ "overrides": statuses() }),
            CreateAnswer::WrappedBare => json!({
                "overrides": results.iter().filter(|r| r.0 == 201).map(|r| r.2.clone()).collect::<Vec<_>>()
            }),
        };
        Reply::json(201, body)
    }

    fn delete_override(&mut self, id: &str, override_id: &str) -> Reply {
        if self.account.v3.contains(id) {
            return self.v3_refusal();
        }
        match self.account.delete_override(id, override_id) {
            Ok(true) => Reply::empty(200),
            Ok(false) => Reply::empty(204),
            Err(Refusal::NotFound("schedule")) => schedule_not_found(),
            Err(Refusal::NotFound(_)) => not_found(),
            Err(Refusal::Invalid(errors)) => Reply::error(400, "Invalid Override", 2001, &errors),
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
}
