//! The simulator's HTTP face: which endpoint a request is, faults and keys, and the wire shapes of
//! Opsgenie's answers (reference §2), rendered from the state.

use std::time::Duration;

use chrono::{DateTime, Months, NaiveDate, NaiveTime, SecondsFormat, TimeDelta, Utc};
use oncall_core::testkit::Fault;
use oncall_core::{
    local_date, resolve_local, Email, Error, OverrideId, Participant, Resource, Restriction,
    RotationUnit, Span, Window,
};
use serde_json::{json, Map, Value};

use super::state::{logged_body, user_id, Pending, SimSchedule, State, Stored};
use super::timeline::rotation_periods;
use super::{AliasTaken, HttpFault, KeyKind, LoggedRequest, PastEnd, UnknownSchedule};
use super::{READ_ONLY_KEY, READ_WRITE_KEY};

/// The answer to one request, before it becomes a wiremock response.
#[derive(Debug, Clone)]
pub(crate) struct Reply {
    pub status: u16,
    pub body: Value,
    pub headers: Vec<(&'static str, String)>,
    pub delay: Duration,
    /// Close the connection without answering.
    pub drop: bool,
}

impl Reply {
    fn json(status: u16, body: Value) -> Reply {
        Reply {
            status,
            body,
            headers: Vec::new(),
            delay: Duration::ZERO,
            drop: false,
        }
    }

    fn message(status: u16, message: impl Into<String>) -> Reply {
        Reply::json(status, json!({ "message": message.into() }))
    }

    /// The wiremock response: JSON body, the vendor's standard headers, the clock as `Date`.
    pub fn template(&self, now: DateTime<Utc>, request_id: &str) -> wiremock::ResponseTemplate {
        let mut body = self.body.clone();
        if let Value::Object(map) = &mut body {
            map.entry("took").or_insert(json!(0.01));
            map.entry("requestId").or_insert(json!(request_id));
        }
        let bytes = serde_json::to_vec(&body).unwrap_or_default();
        let mut t = wiremock::ResponseTemplate::new(self.status)
            .set_body_raw(bytes, "application/json;charset=UTF-8")
            .insert_header("Date", now.format("%a, %d %b %Y %H:%M:%S GMT").to_string())
            .insert_header("X-Request-ID", request_id)
            .insert_header("X-Response-Time", "0.010")
            .insert_header("X-RateLimit-State", "OK");
        for (name, value) in &self.headers {
            t = t.insert_header(*name, value.as_str());
        }
        t.set_delay(self.delay)
    }
}

/// The endpoints the simulator serves: Opsgenie's Schedule, Schedule Rotation and Schedule
/// Override endpoints that the sync can use (R10).
#[derive(Debug, Clone, PartialEq, Eq)]
enum Endpoint {
    ListSchedules,
    GetSchedule(String),
    Timeline(String),
    ListRotations(String),
    GetRotation(String, String),
    ListOverrides(String),
    CreateOverride(String),
    GetOverride(String, String),
    UpdateOverride(String, String),
    DeleteOverride(String, String),
}

impl Endpoint {
    fn parse(method: &str, segments: &[String]) -> Option<Endpoint> {
        let s: Vec<&str> = segments.iter().map(String::as_str).collect();
        let id = |i: usize| s[i].to_owned();
        Some(match (method, s.as_slice()) {
            ("GET", ["v2", "schedules"]) => Endpoint::ListSchedules,
            ("GET", ["v2", "schedules", _]) => Endpoint::GetSchedule(id(2)),
            ("GET", ["v2", "schedules", _, "timeline"]) => Endpoint::Timeline(id(2)),
            ("GET", ["v2", "schedules", _, "rotations"]) => Endpoint::ListRotations(id(2)),
            ("GET", ["v2", "schedules", _, "rotations", _]) => Endpoint::GetRotation(id(2), id(4)),
            ("GET", ["v2", "schedules", _, "overrides"]) => Endpoint::ListOverrides(id(2)),
            ("POST", ["v2", "schedules", _, "overrides"]) => Endpoint::CreateOverride(id(2)),
            ("GET", ["v2", "schedules", _, "overrides", _]) => Endpoint::GetOverride(id(2), id(4)),
            ("PUT", ["v2", "schedules", _, "overrides", _]) => {
                Endpoint::UpdateOverride(id(2), id(4))
            }
            ("DELETE", ["v2", "schedules", _, "overrides", _]) => {
                Endpoint::DeleteOverride(id(2), id(4))
            }
            _ => return None,
        })
    }

    /// The query parameter that says how the schedule is identified (reference §2.0).
    fn identifier_param(&self) -> &'static str {
        match self {
            Endpoint::GetSchedule(_) | Endpoint::Timeline(_) => "identifierType",
            _ => "scheduleIdentifierType",
        }
    }

    fn schedule(&self) -> Option<&str> {
        match self {
            Endpoint::ListSchedules => None,
            Endpoint::GetSchedule(s)
            | Endpoint::Timeline(s)
            | Endpoint::ListRotations(s)
            | Endpoint::GetRotation(s, _)
            | Endpoint::ListOverrides(s)
            | Endpoint::CreateOverride(s)
            | Endpoint::GetOverride(s, _)
            | Endpoint::UpdateOverride(s, _)
            | Endpoint::DeleteOverride(s, _) => Some(s),
        }
    }
}

/// What one request carries, read once.
struct Incoming<'a> {
    query: &'a [(String, String)],
    body: &'a [u8],
}

impl Incoming<'_> {
    fn query(&self, name: &str) -> Option<&str> {
        self.query
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    }
}

/// Handles one request: logs it, counts it, applies faults, keys and the endpoint.
pub(crate) fn handle(state: &mut State, request: &wiremock::Request) -> Reply {
    let method = request.method.as_str().to_owned();
    let write = matches!(method.as_str(), "POST" | "PUT" | "DELETE" | "PATCH");
    let segments: Vec<String> = request
        .url
        .path_segments()
        .map(|s| s.map(percent_decode).collect())
        .unwrap_or_default();
    let query: Vec<(String, String)> = request.url.query_pairs().into_owned().collect();
    let endpoint = Endpoint::parse(&method, &segments);
    let fault = state.count(write);
    state.log.push(LoggedRequest {
        method,
        path: request.url.path().to_owned(),
        query: query.clone(),
        key: key_kind(&request.headers),
        status: None,
        body: logged_body(&request.body),
        simulated: endpoint.is_some(),
    });
    let index = state.log.len() - 1;
    let key = state.log[index].key;
    let incoming = Incoming {
        query: &query,
        body: &request.body,
    };
    let mut reply = decide(state, endpoint, key, write, fault, &incoming);
    reply.delay += state.latency;
    state.log[index].status = (!reply.drop).then_some(reply.status);
    reply
}

fn decide(
    state: &mut State,
    endpoint: Option<Endpoint>,
    key: KeyKind,
    write: bool,
    fault: Option<Pending>,
    incoming: &Incoming<'_>,
) -> Reply {
    if state.rate_limited > 0 {
        state.rate_limited -= 1;
        return too_many(state.rate_limit_period);
    }
    match &fault {
        Some(Pending::Core(Fault::Fail(e))) => return error_reply(e, state.rate_limit_period),
        Some(Pending::Http(HttpFault::DropConnection)) => {
            let mut r = Reply::message(0, "");
            r.drop = true;
            return r;
        }
        _ => {}
    }
    // Random faults fall on requests no injected fault claimed.
    if let Some(limited) = fault.is_none().then(|| state.random_fault()).flatten() {
        return if limited {
            too_many(state.rate_limit_period)
        } else {
            Reply::message(503, "Service Unavailable")
        };
    }
    let reply = authorised(state, endpoint, key, write, incoming);
    match fault {
        // The request took effect; its answer is lost on the way back.
        Some(Pending::Core(Fault::LoseResponse)) => Reply::message(502, "Bad Gateway"),
        Some(Pending::Http(HttpFault::MalformedBody)) => {
            Reply::json(200, json!({"result": "Ok", "took": 0.01}))
        }
        Some(Pending::Http(HttpFault::Slow(delay))) => Reply { delay, ..reply },
        _ => reply,
    }
}

fn authorised(
    state: &mut State,
    endpoint: Option<Endpoint>,
    key: KeyKind,
    write: bool,
    incoming: &Incoming<'_>,
) -> Reply {
    let Some(endpoint) = endpoint else {
        return Reply::message(
            404,
            "the Opsgenie simulator serves only the Schedule, Schedule Rotation and Schedule \
             Override endpoints the sync uses (R10); this request is outside them",
        );
    };
    if !matches!(key, KeyKind::ReadWrite | KeyKind::ReadOnly) {
        // Body text UNCONFIRMED.
        return Reply::message(401, "Could not authenticate");
    }
    if write && (key == KeyKind::ReadOnly || state.read_only) {
        // Status and code as the reference reads the docs (403/40301); wording UNCONFIRMED.
        return Reply::json(
            403,
            json!({"code": 40301, "message": "You are not authorized to perform this action: the API key is read-only"}),
        );
    }
    let Some(schedule) = endpoint.schedule() else {
        return list_schedules(state, incoming);
    };
    let by_name = incoming.query(endpoint.identifier_param()) == Some("name");
    let found = state.schedules.iter().position(|s| {
        if by_name {
            s.config.name == schedule
        } else {
            s.config.id.0 == schedule
        }
    });
    let Some(index) = found else {
        return unknown_schedule(state.unknown_schedule, schedule);
    };
    match &endpoint {
        Endpoint::ListSchedules => list_schedules(state, incoming),
        Endpoint::GetSchedule(_) => Reply::json(
            200,
            json!({"data": schedule_json(&state.schedules[index], true)}),
        ),
        Endpoint::Timeline(_) => timeline(state, index, incoming),
        Endpoint::ListRotations(_) => {
            let s = &state.schedules[index];
            let data: Vec<Value> = (0..s.config.rotations.len())
                .map(|i| rotation_json(s, i))
                .collect();
            Reply::json(200, json!({"data": data}))
        }
        Endpoint::GetRotation(_, rid) => {
            let s = &state.schedules[index];
            match (0..s.config.rotations.len()).find(|&i| &s.rotation_id(i) == rid) {
                Some(i) => {
                    let mut data = rotation_json(s, i);
                    data["_parent"] = parent_json(s);
                    Reply::json(200, json!({"data": data}))
                }
                None => Reply::message(404, format!("Rotation with id [{rid}] does not exist")),
            }
        }
        Endpoint::ListOverrides(_) => {
            let s = &state.schedules[index];
            let mut all: Vec<&Stored> = s.overrides.iter().collect();
            all.sort_by(|a, b| a.span.cmp(&b.span).then_with(|| a.alias.cmp(&b.alias)));
            let data: Vec<Value> = all.iter().map(|o| override_json(s, o)).collect();
            Reply::json(200, json!({"data": data}))
        }
        Endpoint::GetOverride(_, alias) => {
            let s = &state.schedules[index];
            match s.find(alias) {
                Some(i) => Reply::json(200, json!({"data": override_json(s, &s.overrides[i])})),
                None => no_override(alias),
            }
        }
        Endpoint::CreateOverride(_) => create_override(state, index, incoming),
        Endpoint::UpdateOverride(_, alias) => update_override(state, index, alias, incoming),
        Endpoint::DeleteOverride(_, alias) => delete_override(state, index, alias),
    }
}

fn list_schedules(state: &State, incoming: &Incoming<'_>) -> Reply {
    // Without `expand=rotation` the vendor answers `"rotations": []` (observed, reference §2.2).
    let expand = incoming
        .query("expand")
        .is_some_and(|e| e.split(',').any(|x| x.trim() == "rotation"));
    let data: Vec<Value> = state
        .schedules
        .iter()
        .map(|s| schedule_json(s, expand))
        .collect();
    Reply::json(200, json!({"data": data, "expandable": ["rotation"]}))
}

fn unknown_schedule(answer: UnknownSchedule, schedule: &str) -> Reply {
    match answer {
        // The DXW capture for a schedule that does not exist.
        UnknownSchedule::Forbidden => Reply::json(
            403,
            json!({"code": 40301, "message": "Api key is not authorized to access the schedule"}),
        ),
        UnknownSchedule::NotFound => Reply::message(
            404,
            format!("Schedule with identifier [{schedule}] does not exist"),
        ),
    }
}

fn no_override(alias: &str) -> Reply {
    Reply::message(404, format!("Could not find override with alias [{alias}]"))
}

fn too_many(period: u64) -> Reply {
    // The Go SDK's 429 fixture: body and headers.
    let mut r = Reply::message(429, "TooManyRequests");
    r.headers = vec![
        ("X-RateLimit-State", "THROTTLED".into()),
        ("X-RateLimit-Reason", "ACCOUNT".into()),
        ("X-RateLimit-Period-In-Sec", period.to_string()),
    ];
    r
}

/// The status and body the vendor gives for a kind of failure (`Fault::Fail`).
fn error_reply(error: &Error, rate_limit_period: u64) -> Reply {
    match error {
        Error::RateLimited { retry_after, .. } => {
            too_many(retry_after.map_or(rate_limit_period, |d| d.as_secs()))
        }
        Error::Transient { .. } => Reply::message(503, "Service Unavailable"),
        Error::PermissionDenied { message } => {
            Reply::json(403, json!({"code": 40301, "message": message}))
        }
        Error::Unauthenticated { message } => Reply::message(401, message.clone()),
        Error::NotFound {
            resource: Resource::Schedule(id),
            ..
        } => Reply::message(
            404,
            format!("Schedule with identifier [{id}] does not exist"),
        ),
        Error::NotFound { resource, .. } => no_override(&resource.to_string()),
        Error::UnknownMember { email, .. } => {
            unprocessable("user", format!("User [{email}] does not exist"))
        }
        Error::Rejected { message } => Reply::message(422, message.clone()),
        Error::Conflict { message } => Reply::message(409, message.clone()),
        Error::InvalidResponse { .. } => Reply::json(200, json!({"result": "Ok"})),
        Error::InvalidInput(e) => Reply::message(400, e.to_string()),
        Error::Unsupported { message } => {
            Reply::json(403, json!({"code": 40302, "message": message}))
        }
        other => Reply::message(500, other.to_string()),
    }
}

fn unprocessable(field: &str, message: impl Into<String>) -> Reply {
    let mut errors = Map::new();
    errors.insert(field.into(), Value::String(message.into()));
    Reply::json(
        422,
        json!({"message": "Request body is not processable. Please check the errors.", "errors": errors}),
    )
}

fn fmt(t: DateTime<Utc>) -> String {
    t.to_rfc3339_opts(SecondsFormat::AutoSi, true)
}

fn parent_json(s: &SimSchedule) -> Value {
    json!({"id": s.config.id.0, "name": s.config.name, "enabled": s.enabled})
}

fn schedule_json(s: &SimSchedule, with_rotations: bool) -> Value {
    let rotations: Vec<Value> = if with_rotations {
        (0..s.config.rotations.len())
            .map(|i| rotation_json(s, i))
            .collect()
    } else {
        Vec::new()
    };
    json!({
        "id": s.config.id.0,
        "name": s.config.name,
        "description": "",
        "timezone": s.config.zone.name(),
        "enabled": s.enabled,
        "rotations": rotations,
    })
}

/// A core rotation in Opsgenie's shape. (Opsgenie has no "effective from": such a rotation is
/// served from its start; the simulated timeline still honours it.)
fn rotation_json(s: &SimSchedule, index: usize) -> Value {
    let r = &s.config.rotations[index];
    let zone = s.config.zone;
    let participants: Vec<Value> = r
        .participants
        .iter()
        .map(|p| match p {
            Participant::Member(email) => user_json(email),
            Participant::Nobody => json!({"type": "none"}),
        })
        .collect();
    let mut v = json!({
        "id": s.rotation_id(index),
        "name": r.name,
        "startDate": fmt(resolve_local(zone, r.start)),
        "type": match r.unit {
            RotationUnit::Hourly => "hourly",
            RotationUnit::Daily => "daily",
            RotationUnit::Weekly => "weekly",
        },
        "length": r.length,
        "participants": participants,
    });
    if let Some(end) = r.end {
        v["endDate"] = json!(fmt(resolve_local(zone, end)));
    }
    if let Some(restriction) = restriction_json(&r.restrictions) {
        v["timeRestriction"] = restriction;
    }
    v
}

fn user_json(email: &Email) -> Value {
    json!({"type": "user", "id": user_id(email), "username": email.as_str()})
}

const WEEKDAYS: [&str; 7] = [
    "monday",
    "tuesday",
    "wednesday",
    "thursday",
    "friday",
    "saturday",
    "sunday",
];

/// One daily window as `time-of-day`; anything else as `weekday-and-time-of-day`, a daily window
/// becoming one entry per weekday.
fn restriction_json(restrictions: &[Restriction]) -> Option<Value> {
    use chrono::Timelike;
    let hm = |seconds: u32| (seconds / 3600, (seconds % 3600) / 60);
    match restrictions {
        [] => None,
        [r] if r.day.is_none() => {
            let start = r.start.num_seconds_from_midnight();
            let (sh, sm) = hm(start);
            let (eh, em) = hm((start + r.duration_seconds) % 86_400);
            Some(json!({"type": "time-of-day",
                "restriction": {"startHour": sh, "startMin": sm, "endHour": eh, "endMin": em}}))
        }
        _ => {
            let mut items = Vec::new();
            for r in restrictions {
                let days: Vec<u32> = match r.day {
                    Some(d) => vec![d.num_days_from_monday()],
                    None => (0..7).collect(),
                };
                for day in days {
                    let start = day * 86_400 + r.start.num_seconds_from_midnight();
                    let end = (start + r.duration_seconds) % (7 * 86_400);
                    let ((sh, sm), (eh, em)) = (hm(start % 86_400), hm(end % 86_400));
                    items.push(json!({
                        "startDay": WEEKDAYS[(start / 86_400) as usize % 7], "startHour": sh, "startMin": sm,
                        "endDay": WEEKDAYS[(end / 86_400) as usize % 7], "endHour": eh, "endMin": em,
                    }));
                }
            }
            Some(json!({"type": "weekday-and-time-of-day", "restrictions": items}))
        }
    }
}

fn override_json(s: &SimSchedule, o: &Stored) -> Value {
    // For an override of every rotation, whether the vendor answers `[]` or the full list is
    // UNCONFIRMED; the simulator answers `[]`.
    let rotations: Vec<Value> = o
        .rotations
        .iter()
        .flatten()
        .map(|r| json!({"id": r, "name": r}))
        .collect();
    json!({
        "_parent": parent_json(s),
        "alias": o.alias.as_str(),
        "user": user_json(&o.span.member),
        "startDate": fmt(o.span.start),
        "endDate": fmt(o.span.end),
        "rotations": rotations,
    })
}

/// `GET /v2/schedules/{id}/timeline`: the window starts at local midnight of `date` (observed) and
/// runs `interval` `intervalUnit`s; turns split at the simulator's now plus 401 ms (the vendor's
/// split has milliseconds, reference §2.5).
fn timeline(state: &State, index: usize, incoming: &Incoming<'_>) -> Reply {
    let s = &state.schedules[index];
    let zone = s.config.zone;
    let date = match incoming.query("date") {
        None => state.now,
        Some(d) => match DateTime::parse_from_rfc3339(d) {
            Ok(d) => d.with_timezone(&Utc),
            Err(_) => return unprocessable("date", format!("Invalid date [{d}]")),
        },
    };
    let interval = match incoming.query("interval").map(str::parse::<u32>) {
        None => 1,
        Some(Ok(n)) if n >= 1 => n,
        Some(_) => return unprocessable("interval", "interval must be a positive number"),
    };
    let day = local_date(zone, date);
    let end_day: Option<NaiveDate> = match incoming.query("intervalUnit").unwrap_or("weeks") {
        "days" => day.checked_add_days(chrono::Days::new(interval.into())),
        "weeks" => day.checked_add_days(chrono::Days::new(u64::from(interval) * 7)),
        "months" => day.checked_add_months(Months::new(interval)),
        other => return unprocessable("intervalUnit", format!("Invalid interval unit [{other}]")),
    };
    let midnight = |d: NaiveDate| resolve_local(zone, d.and_time(NaiveTime::MIN));
    let Some(window) = end_day.and_then(|e| Window::new(midnight(day), midnight(e)).ok()) else {
        return unprocessable("date", "the window is out of range");
    };
    let split = state.now + TimeDelta::milliseconds(401);
    let rotations: Vec<Value> = s
        .config
        .rotations
        .iter()
        .enumerate()
        .map(|(i, r)| {
            let id = s.rotation_id(i);
            let applies: Vec<&Stored> = s
                .overrides
                .iter()
                .filter(|o| o.rotations.as_ref().is_none_or(|rs| rs.iter().any(|x| *x == id || *x == r.name)))
                .collect();
            let periods: Vec<Value> = rotation_periods(r, zone, &applies, window, split)
                .into_iter()
                .map(|p| {
                    json!({"startDate": fmt(p.start), "endDate": fmt(p.end), "type": p.kind,
                           "recipient": {"id": user_id(&p.member), "type": "user", "name": p.member.as_str()}})
                })
                .collect();
            json!({"id": id, "name": r.name, "order": s.order.get(i).copied().unwrap_or(i as f64 + 1.0),
                   "periods": periods})
        })
        .collect();
    Reply::json(
        200,
        json!({"data": {"_parent": parent_json(s), "startDate": fmt(window.start()), "endDate": fmt(window.end()),
                        "finalTimeline": {"rotations": rotations}},
               "expandable": ["base", "forwarding", "override"]}),
    )
}

/// The fields of a create or update body, checked as the vendor would.
struct OverrideBody {
    span: Span,
    rotations: Option<Vec<String>>,
}

fn read_body(state: &State, body: &[u8]) -> Result<(Value, OverrideBody), Reply> {
    let Ok(value) = serde_json::from_slice::<Value>(body) else {
        return Err(Reply::message(400, "Invalid JSON body"));
    };
    let date = |field: &str| -> Result<DateTime<Utc>, Reply> {
        let text = value
            .get(field)
            .and_then(Value::as_str)
            .ok_or_else(|| unprocessable(field, format!("{field} is required")))?;
        let t = DateTime::parse_from_rfc3339(text)
            .map_err(|_| unprocessable(field, format!("Invalid date [{text}]")))?;
        // The vendor keeps whole seconds.
        Ok(DateTime::from_timestamp(t.timestamp(), 0).unwrap_or_else(|| t.with_timezone(&Utc)))
    };
    let (start, end) = (date("startDate")?, date("endDate")?);
    let user = value
        .get("user")
        .ok_or_else(|| unprocessable("user", "user is required"))?;
    if user.get("type").and_then(Value::as_str) != Some("user") {
        return Err(unprocessable(
            "user",
            "the simulator takes overrides for users only",
        ));
    }
    let member = match (
        user.get("username").and_then(Value::as_str),
        user.get("id").and_then(Value::as_str),
    ) {
        (Some(name), _) => Email::parse(name).ok().filter(|e| state.users.contains(e)),
        (None, Some(id)) => state.users.iter().find(|e| user_id(e) == id).cloned(),
        (None, None) => None,
    };
    let who = user
        .get("username")
        .or_else(|| user.get("id"))
        .and_then(Value::as_str)
        .unwrap_or("?");
    let Some(member) = member else {
        return Err(unprocessable(
            "user",
            format!("User [{who}] does not exist"),
        ));
    };
    let rotations = value.get("rotations").and_then(Value::as_array).map(|rs| {
        rs.iter()
            .filter_map(|r| {
                r.get("id")
                    .or_else(|| r.get("name"))
                    .and_then(Value::as_str)
                    .map(str::to_owned)
            })
            .collect()
    });
    if end <= start {
        return Err(unprocessable(
            "endDate",
            "End date must be after start date",
        ));
    }
    Ok((
        value,
        OverrideBody {
            span: Span::new(start, end, member),
            rotations,
        },
    ))
}

/// `POST …/overrides`. Checks in the in-memory provider's order: the span, the person, the alias.
/// An end in the past is refused (UNCONFIRMED for the real vendor).
fn create_override(state: &mut State, index: usize, incoming: &Incoming<'_>) -> Reply {
    let (value, body) = match read_body(state, incoming.body) {
        Ok(b) => b,
        Err(reply) => return reply,
    };
    if body.span.end <= state.now {
        return unprocessable("endDate", "End date must be in the future");
    }
    let seq = state.next_seq();
    let alias = match value.get("alias") {
        None | Some(Value::Null) => {
            OverrideId::new(format!("{:08x}-sim0-4000-8000-{seq:012x}", seq))
        }
        Some(Value::String(a)) if !a.is_empty() => OverrideId::new(a.as_str()),
        Some(_) => return unprocessable("alias", "alias must be a non-empty string"),
    };
    let alias_taken = state.alias_taken;
    let s = &mut state.schedules[index];
    if s.find(alias.as_str()).is_some() {
        let message = format!(
            "There can be only one override with the same alias [{alias}] for that schedule"
        );
        return match alias_taken {
            AliasTaken::Conflict409 => Reply::message(409, message),
            AliasTaken::Unprocessable422 => Reply::message(422, message),
        };
    }
    s.overrides.push(Stored {
        alias: alias.clone(),
        span: body.span,
        seq,
        rotations: body.rotations,
    });
    Reply::json(
        201,
        json!({"result": "Created", "data": {"alias": alias.as_str()}}),
    )
}

/// `PUT …/overrides/{alias}`: a full replace. Ending a running override at or before now is
/// clamped to now or refused, as [`PastEnd`] says.
fn update_override(state: &mut State, index: usize, alias: &str, incoming: &Incoming<'_>) -> Reply {
    let (_, body) = match read_body(state, incoming.body) {
        Ok(b) => b,
        Err(reply) => return reply,
    };
    let (now, past_end) = (state.now, state.past_end);
    let s = &mut state.schedules[index];
    let Some(i) = s.find(alias) else {
        return no_override(alias);
    };
    let mut span = body.span;
    let running_cut = s.overrides[i].span.start < now && span.start < now && span.end <= now;
    if running_cut && past_end == PastEnd::Clamp {
        span.end = now;
    }
    // An end before now is refused (an end at now is not in the past).
    if span.end < now {
        return unprocessable("endDate", "End date must be in the future");
    }
    let stored = &mut s.overrides[i];
    stored.span = span;
    stored.rotations = body.rotations;
    Reply::json(200, json!({"result": "Updated", "data": {"alias": alias}}))
}

/// `DELETE …/overrides/{alias}`: removes it, running or not; one that has ended is refused, as the
/// in-memory provider does (UNCONFIRMED for the real vendor).
fn delete_override(state: &mut State, index: usize, alias: &str) -> Reply {
    let now = state.now;
    let s = &mut state.schedules[index];
    let Some(i) = s.find(alias) else {
        return no_override(alias);
    };
    if s.overrides[i].span.end <= now {
        return Reply::message(422, "An override that has ended cannot be deleted");
    }
    s.overrides.remove(i);
    Reply::json(200, json!({"result": "Deleted"}))
}

/// Which key a request carries.
fn key_kind(headers: &wiremock::http::HeaderMap) -> KeyKind {
    let Some(value) = headers.get("authorization").and_then(|v| v.to_str().ok()) else {
        return KeyKind::Missing;
    };
    match value.strip_prefix("GenieKey ") {
        Some(READ_WRITE_KEY) => KeyKind::ReadWrite,
        Some(READ_ONLY_KEY) => KeyKind::ReadOnly,
        _ => KeyKind::Invalid,
    }
}

fn percent_decode(segment: &str) -> String {
    let bytes = segment.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let hex = |b: u8| (b as char).to_digit(16);
        match (
            bytes[i],
            bytes.get(i + 1).copied().and_then(hex),
            bytes.get(i + 2).copied().and_then(hex),
        ) {
            (b'%', Some(h), Some(l)) => {
                out.push((h * 16 + l) as u8);
                i += 3;
            }
            (b, _, _) => {
                out.push(b);
                i += 1;
            }
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::Weekday;

    #[test]
    fn restrictions_round_trip_through_the_wire() {
        let check = |rs: Vec<Restriction>| {
            let v = restriction_json(&rs).unwrap();
            // Read back through the adapter's own parser, inside a rotation.
            let rotation = json!({"id": "r", "type": "daily", "startDate": "2024-01-01T00:00:00Z", "timeRestriction": v});
            let schedule = json!({"id": "s", "timezone": "UTC", "rotations": [rotation]});
            let back = crate::models::schedule(&crate::json::Node::root(&schedule)).unwrap();
            back.rotations[0].rotation.restrictions.clone()
        };
        let daily = vec![Restriction::time_of_day(8, 0, 20, 0).unwrap()];
        assert_eq!(check(daily.clone()), daily);
        let weekly =
            vec![Restriction::weekday_and_time(Weekday::Fri, 18, 0, Weekday::Mon, 10, 0).unwrap()];
        assert_eq!(check(weekly.clone()), weekly);
        let night = vec![Restriction::time_of_day(22, 0, 6, 0).unwrap(), weekly[0]];
        let back = check(night);
        assert_eq!(
            back.len(),
            8,
            "a daily window becomes one entry per weekday"
        );
    }

    #[test]
    fn paths_decode_and_route() {
        assert_eq!(percent_decode("a%20b%2Fc"), "a b/c");
        let segs = |p: &str| p.split('/').map(str::to_owned).collect::<Vec<_>>();
        assert_eq!(
            Endpoint::parse("PUT", &segs("v2/schedules/S/overrides/x")),
            Some(Endpoint::UpdateOverride("S".into(), "x".into()))
        );
        assert_eq!(
            Endpoint::parse("POST", &segs("v2/schedules")),
            None,
            "creating schedules is not simulated"
        );
        assert_eq!(Endpoint::parse("GET", &segs("v2/alerts")), None);
    }

    #[test]
    fn faults_answer_as_the_vendor_does() {
        let r = error_reply(
            &Error::RateLimited {
                retry_after: None,
                message: String::new(),
            },
            1,
        );
        assert_eq!(r.status, 429);
        assert!(r
            .headers
            .contains(&("X-RateLimit-Period-In-Sec", "1".into())));
        let e = Email::parse("x@example.com").unwrap();
        assert_eq!(
            error_reply(
                &Error::UnknownMember {
                    email: e,
                    message: String::new()
                },
                1
            )
            .status,
            422
        );
        assert_eq!(
            error_reply(
                &Error::Transient {
                    message: String::new()
                },
                1
            )
            .status,
            503
        );
        assert_eq!(
            error_reply(
                &Error::PermissionDenied {
                    message: String::new()
                },
                1
            )
            .status,
            403
        );
    }
}
