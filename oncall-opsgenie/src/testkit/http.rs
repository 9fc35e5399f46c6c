//! The simulator's HTTP face: which endpoint a request is, the request log, faults and keys.

use std::time::Duration;

use chrono::{DateTime, Utc};
use oncall_core::testkit::{Admission, Fault};
use serde_json::{json, Value};

use super::dialect::{LostAnswerWrites, Throttle, THROTTLE_DELAY};
use super::endpoints::route;
use super::state::{logged_body, Deferred, Pending, State};
use super::wire::{error_reply, too_many, unknown_schedule};
use super::{HttpFault, KeyKind, LoggedRequest};
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
    pub(super) fn json(status: u16, body: Value) -> Reply {
        Reply {
            status,
            body,
            headers: Vec::new(),
            delay: Duration::ZERO,
            drop: false,
        }
    }

    /// An answer with no body at all.
    pub(super) fn empty(status: u16) -> Reply {
        Reply::json(status, Value::Null)
    }

    pub(super) fn message(status: u16, message: impl Into<String>) -> Reply {
        Reply::json(status, json!({ "message": message.into() }))
    }

    /// The wiremock response: JSON body, the vendor's standard headers, the clock as `Date`.
    pub fn template(&self, now: DateTime<Utc>, request_id: &str) -> wiremock::ResponseTemplate {
        let mut body = self.body.clone();
        if let Value::Object(map) = &mut body {
            map.entry("took").or_insert(json!(0.01));
            map.entry("requestId").or_insert(json!(request_id));
        }
        let mut t = wiremock::ResponseTemplate::new(self.status);
        if !body.is_null() {
            let bytes = serde_json::to_vec(&body).unwrap_or_default();
            t = t.set_body_raw(bytes, "application/json;charset=UTF-8");
        }
        let mut t = t
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
pub(super) enum Endpoint {
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
pub(super) struct Incoming<'a> {
    pub(super) query: &'a [(String, String)],
    pub(super) body: &'a [u8],
}

impl Incoming<'_> {
    pub(super) fn query(&self, name: &str) -> Option<&str> {
        self.query
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    }
}

/// A request as the simulator counted it on arrival: its number (its place in the log) and the
/// fault it triggered. Its answer is decided later, when wiremock asks for it ([`answer`]).
#[derive(Debug, Clone)]
pub(crate) struct Arrival {
    /// The request's number, from 1: its place in the log, counting cleared entries.
    pub number: usize,
    fault: Option<Pending>,
    write: bool,
}

impl Arrival {
    /// Whether the connection is to be closed without an answer ([`HttpFault::DropConnection`]).
    pub fn drops(&self) -> bool {
        matches!(self.fault, Some(Pending::Http(HttpFault::DropConnection)))
    }
}

/// What identifies a request well enough to pair its arrival with its answer: requests that share
/// it are identical, so which of them was counted first is immaterial.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub(crate) struct Fingerprint {
    method: String,
    url: String,
    authorization: Option<Vec<u8>>,
    body: Vec<u8>,
}

impl Fingerprint {
    pub fn of(request: &wiremock::Request) -> Fingerprint {
        Fingerprint {
            method: request.method.as_str().to_owned(),
            url: request.url.as_str().to_owned(),
            authorization: request
                .headers
                .get("authorization")
                .map(|v| v.as_bytes().to_vec()),
            body: request.body.clone(),
        }
    }
}

/// Counts a request, logs it and takes the fault it triggers, if any (the first step of handling
/// it). A dropped connection is settled here: it is logged without a status.
pub(crate) fn arrive(state: &mut State, request: &wiremock::Request) -> Arrival {
    let method = request.method.as_str().to_owned();
    let write = matches!(method.as_str(), "POST" | "PUT" | "DELETE" | "PATCH");
    let endpoint = Endpoint::parse(&method, &segments(request));
    let fault = state.count(write);
    state.log.push(LoggedRequest {
        method,
        path: request.url.path().to_owned(),
        query: request.url.query_pairs().into_owned().collect(),
        key: key_kind(&request.headers),
        status: None,
        body: logged_body(&request.body),
        simulated: endpoint.is_some(),
    });
    state.logged += 1;
    Arrival {
        number: state.logged,
        fault,
        write,
    }
}

/// Answers a request counted by [`arrive`] (the second step): rate limits, faults, keys and the
/// endpoint, over the state as it is now; the status goes into the request's log entry.
pub(crate) fn answer(state: &mut State, request: &wiremock::Request, arrival: Arrival) -> Reply {
    let method = request.method.as_str();
    let endpoint = Endpoint::parse(method, &segments(request));
    let query: Vec<(String, String)> = request.url.query_pairs().into_owned().collect();
    let incoming = Incoming {
        query: &query,
        body: &request.body,
    };
    let key = key_kind(&request.headers);
    land_deferred(state, arrival.number);
    let context = Context {
        method,
        segments: segments(request),
        key,
        number: arrival.number,
    };
    let mut reply = decide(
        state,
        endpoint,
        &context,
        arrival.write,
        arrival.fault,
        &incoming,
    );
    reply.delay += state.latency;
    let status = (!reply.drop).then_some(reply.status);
    if let Some(entry) = state.logged_entry(arrival.number) {
        entry.status = status;
    }
    reply
}

/// What [`decide`] needs to defer a write.
struct Context<'a> {
    method: &'a str,
    segments: Vec<String>,
    key: KeyKind,
    number: usize,
}

/// Lands the deferred writes due by the request numbered `number`, in the order they came.
fn land_deferred(state: &mut State, number: usize) {
    while let Some(i) = state.deferred.iter().position(|d| d.due <= number) {
        let d = state.deferred.remove(i);
        let endpoint = Endpoint::parse(&d.method, &d.segments);
        let incoming = Incoming {
            query: &d.query,
            body: &d.body,
        };
        let _landed = authorised(state, endpoint, d.key, true, &incoming);
    }
}

/// The answer a write would get, without making it: what a slow answer claims for a write that
/// lands after it.
fn predicted(endpoint: &Option<Endpoint>, incoming: &Incoming<'_>) -> Reply {
    match endpoint {
        Some(Endpoint::CreateOverride(_)) => {
            let alias = serde_json::from_slice::<Value>(incoming.body)
                .ok()
                .and_then(|b| b.get("alias").and_then(Value::as_str).map(str::to_owned))
                .unwrap_or_default();
            Reply::json(201, json!({"result": "Created", "data": {"alias": alias}}))
        }
        Some(Endpoint::UpdateOverride(_, alias)) => {
            Reply::json(200, json!({"result": "Updated", "data": {"alias": alias}}))
        }
        _ => Reply::json(200, json!({"result": "Deleted"})),
    }
}

/// The path's segments, percent-decoded.
fn segments(request: &wiremock::Request) -> Vec<String> {
    request
        .url
        .path_segments()
        .map(|s| s.map(percent_decode).collect())
        .unwrap_or_default()
}

fn decide(
    state: &mut State,
    endpoint: Option<Endpoint>,
    context: &Context<'_>,
    write: bool,
    fault: Option<Pending>,
    incoming: &Incoming<'_>,
) -> Reply {
    let key = context.key;
    let mut delay = Duration::ZERO;
    // The account's own token bucket, over every request (they all fall in its configuration
    // domain, reference §3.2).
    match state.admit() {
        None | Some(Admission::Admit) => {}
        Some(Admission::Delayed(wait)) => delay += wait,
        Some(Admission::Refused { window, .. }) => {
            let period = match state.dialect.throttle {
                Throttle::Reject429WithoutPeriod => None,
                Throttle::Reject429 | Throttle::Delay => Some(window.as_secs().max(1)),
            };
            return too_many(period);
        }
    }
    let throttled = |state: &mut State| match state.dialect.throttle {
        Throttle::Reject429 => Some(too_many(Some(state.dialect.rate_limit_period_secs))),
        Throttle::Reject429WithoutPeriod => Some(too_many(None)),
        Throttle::Delay => None,
    };
    if state.rate_limited > 0 {
        state.rate_limited -= 1;
        match throttled(state) {
            Some(reply) => return reply,
            None => delay += THROTTLE_DELAY,
        }
    }
    match &fault {
        Some(Pending::Core(Fault::Fail(oncall_core::Error::RateLimited {
            retry_after, ..
        }))) => match state.dialect.throttle {
            Throttle::Reject429 => {
                let period =
                    retry_after.map_or(state.dialect.rate_limit_period_secs, |d| d.as_secs());
                return too_many(Some(period));
            }
            Throttle::Reject429WithoutPeriod => return too_many(None),
            Throttle::Delay => delay += THROTTLE_DELAY,
        },
        Some(Pending::Core(Fault::Fail(e))) => return error_reply(e, &state.dialect),
        Some(Pending::Http(HttpFault::DropConnection)) => {
            let mut r = Reply::message(0, "");
            r.drop = true;
            return r;
        }
        _ => {}
    }
    // Random faults fall on requests no injected fault claimed.
    if let Some(limited) = fault.is_none().then(|| state.random_fault()).flatten() {
        if !limited {
            return Reply::message(503, "Service Unavailable");
        }
        match throttled(state) {
            Some(reply) => return reply,
            None => delay += THROTTLE_DELAY,
        }
    }
    let lands_later = write
        && endpoint.is_some()
        && matches!(
            fault,
            Some(Pending::Core(Fault::LoseResponse)) | Some(Pending::Http(HttpFault::Slow(_)))
        );
    let reply = match state.dialect.lost_answer_writes {
        LostAnswerWrites::LandAfterAnswer if lands_later => {
            state.deferred.push(Deferred {
                due: context.number + 2,
                method: context.method.to_owned(),
                segments: context.segments.clone(),
                query: incoming.query.to_vec(),
                body: incoming.body.to_vec(),
                key,
            });
            predicted(&endpoint, incoming)
        }
        LostAnswerWrites::NeverLand
            if matches!(fault, Some(Pending::Core(Fault::LoseResponse))) =>
        {
            Reply::message(502, "Bad Gateway")
        }
        _ => authorised(state, endpoint, key, write, incoming),
    };
    let mut reply = match fault {
        // The answer is lost on the way back (whether the request took effect, the dialect says).
        Some(Pending::Core(Fault::LoseResponse)) => Reply::message(502, "Bad Gateway"),
        Some(Pending::Http(HttpFault::MalformedBody)) => {
            Reply::json(200, json!({"result": "Ok", "took": 0.01}))
        }
        Some(Pending::Http(HttpFault::Slow(slow))) => Reply {
            delay: reply.delay + slow,
            ..reply
        },
        _ => reply,
    };
    reply.delay += delay;
    reply
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
        return route(state, &endpoint, 0, incoming);
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
        return unknown_schedule(state.dialect.unknown_schedule, schedule);
    };
    route(state, &endpoint, index, incoming)
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
}
