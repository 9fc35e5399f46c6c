//! The simulator's HTTP face: which endpoint a request is, the credentials, the request log,
//! rate limits and faults. The endpoints' behaviour is in `endpoints.rs`.

use std::time::Instant;

use oncall_core::testkit::{Admission, Fault};
use serde_json::Value;

use super::endpoints::route;
use super::state::{Pending, State};
use super::wire::{error_reply, forbidden, too_many, unauthorized, Reply};
use super::{HttpFault, KeyKind, LoggedRequest, Surface};
use super::{ACCOUNT_EMAIL, CLOUD_ID, READ_ONLY_TOKEN, READ_WRITE_TOKEN};
use crate::credentials::base64;

/// The endpoints the simulator serves: the site's tenant info and its two user lookups, and the
/// Operations API's schedules, rotations, timeline and overrides (R10).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Endpoint {
    TenantInfo,
    UserSearch,
    User,
    ListSchedules,
    GetSchedule(String),
    ListRotations(String),
    Timeline(String),
    ListOverrides(String),
    CreateOverride(String),
    GetOverride(String, String),
    UpdateOverride(String, String),
    DeleteOverride(String, String),
}

impl Endpoint {
    /// The endpoint of a request, and which host it is on; `None` for anything else.
    fn parse(method: &str, segments: &[String]) -> Option<(Surface, Endpoint)> {
        let s: Vec<&str> = segments.iter().map(String::as_str).collect();
        let user = |rest: &[&str]| match (method, rest) {
            ("GET", ["user", "search"]) => Some(Endpoint::UserSearch),
            ("GET", ["user"]) => Some(Endpoint::User),
            _ => None,
        };
        match s.as_slice() {
            ["_edge", "tenant_info"] if method == "GET" => {
                Some((Surface::Site, Endpoint::TenantInfo))
            }
            ["rest", "api", "3", rest @ ..] => user(rest).map(|e| (Surface::Site, e)),
            ["ex", "jira", cloud, "rest", "api", "3", rest @ ..] if *cloud == CLOUD_ID => {
                user(rest).map(|e| (Surface::Site, e))
            }
            ["jsm", "ops", "api", cloud, "v1", rest @ ..] if *cloud == CLOUD_ID => {
                Self::ops(method, rest).map(|e| (Surface::Ops, e))
            }
            _ => None,
        }
    }

    fn ops(method: &str, s: &[&str]) -> Option<Endpoint> {
        let id = |i: usize| s[i].to_owned();
        Some(match (method, s) {
            ("GET", ["schedules"]) => Endpoint::ListSchedules,
            ("GET", ["schedules", _]) => Endpoint::GetSchedule(id(1)),
            ("GET", ["schedules", _, "rotations"]) => Endpoint::ListRotations(id(1)),
            ("GET", ["schedules", _, "timeline"]) => Endpoint::Timeline(id(1)),
            ("GET", ["schedules", _, "overrides"]) => Endpoint::ListOverrides(id(1)),
            ("POST", ["schedules", _, "overrides"]) => Endpoint::CreateOverride(id(1)),
            ("GET", ["schedules", _, "overrides", _]) => Endpoint::GetOverride(id(1), id(3)),
            ("PUT", ["schedules", _, "overrides", _]) => Endpoint::UpdateOverride(id(1), id(3)),
            ("DELETE", ["schedules", _, "overrides", _]) => Endpoint::DeleteOverride(id(1), id(3)),
            _ => return None,
        })
    }
}

/// What one request carries, read once.
pub(crate) struct Incoming<'a> {
    pub query: &'a [(String, String)],
    pub body: &'a [u8],
}

impl Incoming<'_> {
    pub fn query(&self, name: &str) -> Option<&str> {
        self.query
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    }
}

/// Handles one request: counts and logs it, applies rate limits and faults, checks the
/// credentials, and answers from the endpoint over the state.
pub(crate) fn handle(state: &mut State, request: &wiremock::Request) -> Reply {
    let method = request.method.as_str().to_owned();
    let write = matches!(method.as_str(), "POST" | "PUT" | "DELETE" | "PATCH");
    let parsed = Endpoint::parse(&method, &segments(request));
    let fault = state.count(write);
    let query: Vec<(String, String)> = request.url.query_pairs().into_owned().collect();
    state.log.push(LoggedRequest {
        method,
        surface: parsed.as_ref().map(|(s, _)| *s),
        path: request.url.path().to_owned(),
        query: query.clone(),
        key: key_kind(&request.headers),
        status: None,
        body: serde_json::from_slice::<Value>(&request.body).ok(),
        simulated: parsed.is_some(),
    });
    let incoming = Incoming {
        query: &query,
        body: &request.body,
    };
    let mut reply = decide(
        state,
        parsed.map(|(_, e)| e),
        write,
        fault,
        &request.headers,
        &incoming,
    );
    reply.delay += state.latency;
    if let Some(entry) = state.log.last_mut() {
        entry.status = Some(reply.status);
    }
    reply
}

fn decide(
    state: &mut State,
    endpoint: Option<Endpoint>,
    write: bool,
    fault: Option<Pending>,
    headers: &wiremock::http::HeaderMap,
    incoming: &Incoming<'_>,
) -> Reply {
    let mut delay = std::time::Duration::ZERO;
    if let Some(throttle) = state.throttle.as_mut() {
        match throttle.admit(Instant::now()) {
            Admission::Admit => {}
            Admission::Refused { retry_after, .. } => return too_many(retry_after, state.now),
            Admission::Delayed(wait) => delay = wait,
        }
    }
    if state.rate_limited > 0 {
        state.rate_limited -= 1;
        let wait = std::time::Duration::from_secs(state.retry_after);
        return too_many(wait, state.now);
    }
    if let Some(Pending::Core(Fault::Fail(e))) = &fault {
        return error_reply(e, state);
    }
    if let Some(Pending::Http(HttpFault::EchoCredentials)) = &fault {
        let sent = headers
            .get("authorization")
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default();
        return Reply::errors(
            400,
            format!("Bad request from a client sending Authorization: {sent}"),
            "BAD_REQUEST",
        );
    }
    let mut reply = authorised(state, endpoint, write, headers, incoming);
    reply.delay += delay;
    match fault {
        // The request took effect; its answer is lost on the way back.
        Some(Pending::Core(Fault::LoseResponse)) => {
            Reply::errors(502, "Bad Gateway", "BAD_GATEWAY")
        }
        Some(Pending::Http(HttpFault::MalformedBody)) => {
            Reply::json(200, serde_json::json!({"unexpected": ["shape"]}))
        }
        Some(Pending::Http(HttpFault::Slow(extra))) => Reply {
            delay: reply.delay + extra,
            ..reply
        },
        _ => reply,
    }
}

fn authorised(
    state: &mut State,
    endpoint: Option<Endpoint>,
    write: bool,
    headers: &wiremock::http::HeaderMap,
    incoming: &Incoming<'_>,
) -> Reply {
    let Some(endpoint) = endpoint else {
        return Reply::errors(
            404,
            "the JSM simulator serves only the tenant info, the user search and lookup, and the \
             schedule, rotation, timeline and override endpoints the sync uses (R10)",
            "NOT_FOUND",
        );
    };
    // The tenant info is public (reference §1, SETUP).
    if endpoint == Endpoint::TenantInfo {
        return route(state, &endpoint, incoming);
    }
    let key = key_kind(headers);
    if !matches!(key, KeyKind::ReadWrite | KeyKind::ReadOnly) {
        return unauthorized();
    }
    if write && (key == KeyKind::ReadOnly || state.read_only) {
        return forbidden(
            state.dialect.forbidden_body,
            "The user does not have permission to change this schedule's overrides",
        );
    }
    if state.deletes_forbidden && matches!(endpoint, Endpoint::DeleteOverride(..)) {
        return forbidden(
            state.dialect.forbidden_body,
            "The user does not have permission to delete this schedule's overrides",
        );
    }
    // The Jira platform's shape (the site's user endpoints), as it answers an account without
    // the "Browse users and groups" permission.
    if state.people_forbidden && matches!(endpoint, Endpoint::UserSearch | Endpoint::User) {
        return Reply::json(
            403,
            serde_json::json!({"errorMessages": ["You do not have the permission to see the specified users."], "errors": {}}),
        );
    }
    route(state, &endpoint, incoming)
}

/// Which credentials a request carries: the simulator's account e-mail with one of its tokens.
pub(crate) fn key_kind(headers: &wiremock::http::HeaderMap) -> KeyKind {
    let Some(value) = headers.get("authorization").and_then(|v| v.to_str().ok()) else {
        return KeyKind::Missing;
    };
    let basic = |token: &str| {
        format!(
            "Basic {}",
            base64(format!("{ACCOUNT_EMAIL}:{token}").as_bytes())
        )
    };
    if value == basic(READ_WRITE_TOKEN) {
        KeyKind::ReadWrite
    } else if value == basic(READ_ONLY_TOKEN) {
        KeyKind::ReadOnly
    } else {
        KeyKind::Invalid
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

    fn segs(p: &str) -> Vec<String> {
        p.split('/').map(str::to_owned).collect()
    }

    #[test]
    fn paths_route_to_the_served_endpoints_only() {
        assert_eq!(percent_decode("712020%3Aabc"), "712020:abc");
        let ops = |rest: &str| format!("jsm/ops/api/{CLOUD_ID}/v1/{rest}");
        assert_eq!(
            Endpoint::parse("PUT", &segs(&ops("schedules/S/overrides/x"))),
            Some((
                Surface::Ops,
                Endpoint::UpdateOverride("S".into(), "x".into())
            ))
        );
        assert_eq!(
            Endpoint::parse("GET", &segs("rest/api/3/user/search")),
            Some((Surface::Site, Endpoint::UserSearch))
        );
        for outside in [
            ("GET", "rest/api/3/users/search".to_owned()),
            ("GET", "rest/api/3/users".to_owned()),
            ("GET", "jsm/ops/api/another-cloud/v1/schedules".to_owned()),
            ("POST", ops("schedules")),
            ("GET", ops("alerts")),
            ("GET", ops("schedules/S/on-calls")),
        ] {
            assert_eq!(
                Endpoint::parse(outside.0, &segs(&outside.1)),
                None,
                "{outside:?}"
            );
        }
    }
}
