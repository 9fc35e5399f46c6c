//! JSM Operations' wire shapes as the simulator answers them, read from the spec (`Schedule`,
//! `Rotation`, `Override`, `ScheduleTimelineResponse`, `ErrorResponses`, the 401's
//! `UnauthorizedErrorResponse`) and the reference, never from the adapter.

use std::time::Duration;

use chrono::{DateTime, SecondsFormat, Utc};
use oncall_core::{Email, Error, Participant, Resource, Restriction, RotationUnit};
use serde_json::{json, Value};

use super::dialect::{retry_after_seconds, ForbiddenBody};
use super::state::{SimSchedule, State, Stored};
use crate::recipient::Responder;

/// The answer to one request, before it becomes a wiremock response.
#[derive(Debug, Clone)]
pub(crate) struct Reply {
    pub status: u16,
    /// `None`: no body at all.
    pub body: Option<Value>,
    pub headers: Vec<(&'static str, String)>,
    pub delay: Duration,
}

impl Reply {
    pub fn json(status: u16, body: Value) -> Reply {
        Reply {
            status,
            body: Some(body),
            headers: Vec::new(),
            delay: Duration::ZERO,
        }
    }

    pub fn empty(status: u16) -> Reply {
        Reply {
            status,
            body: None,
            headers: Vec::new(),
            delay: Duration::ZERO,
        }
    }

    /// `{"errors": [{"title", "code"}]}`, the spec's `ErrorResponses`.
    pub fn errors(status: u16, title: impl Into<String>, code: &str) -> Reply {
        Reply::json(
            status,
            json!({"errors": [{"title": title.into(), "code": code}]}),
        )
    }

    /// The wiremock response: the body, and the clock as `Date`.
    pub fn template(&self, now: DateTime<Utc>) -> wiremock::ResponseTemplate {
        let mut t = wiremock::ResponseTemplate::new(self.status)
            .insert_header("Date", now.format("%a, %d %b %Y %H:%M:%S GMT").to_string());
        if let Some(body) = &self.body {
            let bytes = serde_json::to_vec(body).unwrap_or_default();
            t = t.set_body_raw(bytes, "application/json");
        }
        for (name, value) in &self.headers {
            t = t.insert_header(*name, value.as_str());
        }
        t.set_delay(self.delay)
    }
}

pub(crate) fn unauthorized() -> Reply {
    Reply::json(
        401,
        json!({"code": 401, "message": "Unauthorized; scope does not match"}),
    )
}

/// A 403 in the dialect's body.
pub(crate) fn forbidden(body: ForbiddenBody, title: &str) -> Reply {
    match body {
        ForbiddenBody::Errors => Reply::errors(403, title, "FORBIDDEN"),
        ForbiddenBody::Message => Reply::json(403, json!({"code": 403, "message": title})),
        ForbiddenBody::Empty => Reply::empty(403),
    }
}

/// A 429 as the Jira platform sends it (reference §5, RL): `Retry-After` and the `X-RateLimit-*`
/// headers.
pub(crate) fn too_many(wait: Duration, now: DateTime<Utc>) -> Reply {
    let seconds = retry_after_seconds(wait);
    let reset = now + chrono::TimeDelta::seconds(i64::try_from(seconds).unwrap_or(i64::MAX / 2));
    let mut r = Reply::errors(429, "Too many requests", "TOO_MANY_REQUESTS");
    r.headers = vec![
        ("Retry-After", seconds.to_string()),
        ("X-RateLimit-Limit", "100".into()),
        ("X-RateLimit-Remaining", "0".into()),
        (
            "X-RateLimit-Reset",
            reset.to_rfc3339_opts(SecondsFormat::Secs, true),
        ),
        ("RateLimit-Reason", "jira-burst-based".into()),
    ];
    r
}

pub(crate) fn unprocessable(title: impl Into<String>) -> Reply {
    Reply::errors(422, title, "INVALID")
}

pub(crate) fn no_schedule() -> Reply {
    Reply::errors(404, "Schedule not found", "NOT_FOUND")
}

pub(crate) fn no_override() -> Reply {
    Reply::errors(404, "Override not found", "NOT_FOUND")
}

/// The status and body the vendor gives for a kind of failure (`Fault::Fail`).
pub(crate) fn error_reply(error: &Error, state: &State) -> Reply {
    match error {
        Error::RateLimited { retry_after, .. } => too_many(
            retry_after.unwrap_or(Duration::from_secs(state.retry_after)),
            state.now,
        ),
        Error::Transient { .. } => Reply::errors(503, "Service Unavailable", "SERVICE_UNAVAILABLE"),
        Error::PermissionDenied { .. } => forbidden(
            state.dialect.forbidden_body,
            "You are not allowed to do this",
        ),
        Error::Unauthenticated { .. } => unauthorized(),
        Error::NotFound {
            resource: Resource::Schedule(_),
            ..
        } => no_schedule(),
        Error::NotFound { .. } => no_override(),
        Error::UnknownMember { .. } => unprocessable("Responder user could not be found"),
        Error::Rejected { message } => unprocessable(message.clone()),
        Error::Conflict { message } => Reply::errors(409, message.clone(), "CONFLICT"),
        // A success the adapter cannot read.
        Error::InvalidResponse { .. } => Reply::json(200, json!({"unexpected": true})),
        other => Reply::errors(500, other.to_string(), "INTERNAL_SERVER_ERROR"),
    }
}

/// An instant as the vendor writes it: UTC, `Z`, fractions only where there are any.
pub(crate) fn fmt(t: DateTime<Utc>) -> String {
    t.to_rfc3339_opts(SecondsFormat::AutoSi, true)
}

/// The responder object of a person (by accountId) or a reserved e-mail.
pub(crate) fn responder_json(state: &State, member: &Email) -> Value {
    match Responder::from_email(member) {
        Responder::Nobody => json!({"type": "noone"}),
        Responder::Team(id) => json!({"type": "team", "id": id}),
        Responder::Escalation(id) => json!({"type": "escalation", "id": id}),
        Responder::Account(id) => json!({"type": "user", "id": id}),
        Responder::User(email) => match state.user_by_email(&email) {
            Some(u) => json!({"type": "user", "id": u.account}),
            // Not a user of the site (a test inserted one by hand): an account nobody can look up.
            None => json!({"type": "user", "id": format!("unknown:{email}")}),
        },
    }
}

pub(crate) fn override_json(state: &State, s: &SimSchedule, o: &Stored) -> Value {
    let rotation_ids = match (&o.rotation_ids, state.dialect.rotation_ids_omitted) {
        (Some(ids), _) => json!(ids),
        (None, super::dialect::RotationIdsOmitted::AllRotationsListed) => json!(s.rotation_ids),
        (None, _) => Value::Null,
    };
    json!({
        "alias": o.alias,
        "responder": responder_json(state, &o.span.member),
        "startDate": fmt(o.span.start),
        "endDate": fmt(o.span.end),
        "rotationIds": rotation_ids,
    })
}

pub(crate) fn schedule_json(state: &State, s: &SimSchedule, with_rotations: bool) -> Value {
    let mut v = json!({
        "id": s.id(),
        "name": s.config.name,
        "description": "",
        "timezone": s.config.zone.name(),
        "enabled": true,
        "teamId": "sim-team",
    });
    if with_rotations {
        let rotations: Vec<Value> = (0..s.config.rotations.len())
            .map(|i| rotation_json(state, s, i))
            .collect();
        v["rotations"] = json!(rotations);
    }
    v
}

/// A core rotation in the spec's `Rotation` shape. (JSM has no "effective from": such a rotation
/// starts there.)
pub(crate) fn rotation_json(state: &State, s: &SimSchedule, index: usize) -> Value {
    let r = &s.config.rotations[index];
    let zone = s.config.zone;
    let start = oncall_core::resolve_local(zone, r.effective_from.unwrap_or(r.start).max(r.start));
    let participants: Vec<Value> = r
        .participants
        .iter()
        .map(|p| match p {
            Participant::Member(email) => responder_json(state, email),
            Participant::Nobody => json!({"type": "noone"}),
        })
        .collect();
    let mut v = json!({
        "id": s.rotation_ids[index],
        "name": r.name,
        "startDate": fmt(start),
        "type": match r.unit {
            RotationUnit::Hourly => "hourly",
            RotationUnit::Daily => "daily",
            RotationUnit::Weekly => "weekly",
        },
        "length": r.length,
        "participants": participants,
    });
    if let Some(end) = r.end {
        v["endDate"] = json!(fmt(oncall_core::resolve_local(zone, end)));
    }
    if let Some(restriction) = restriction_json(&r.restrictions) {
        v["timeRestriction"] = restriction;
    }
    v
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
