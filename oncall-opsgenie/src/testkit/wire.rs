//! Opsgenie's wire shapes as the simulator answers them (reference §2, §3): schedules, rotations,
//! overrides, and the status and body of each kind of refusal.

use chrono::{DateTime, SecondsFormat, Utc};
use oncall_core::{resolve_local, Email, Error, Participant, Resource, Restriction, RotationUnit};
use serde_json::{json, Map, Value};

use super::dialect::{AliasTaken, MissingOverride, OpsgenieDialect, UnknownSchedule, UnknownUser};
use super::http::Reply;
use super::state::{user_id, SimSchedule, Stored};
use crate::OverrideRecipient;

/// The DXW capture's body for a schedule that does not exist (or that the key may not see).
fn not_authorized_for_the_schedule() -> Reply {
    Reply::json(
        403,
        json!({"code": 40301, "message": "Api key is not authorized to access the schedule"}),
    )
}

pub(super) fn unknown_schedule(answer: UnknownSchedule, schedule: &str) -> Reply {
    match answer {
        UnknownSchedule::Forbidden40301 => not_authorized_for_the_schedule(),
        UnknownSchedule::NotFound404 => Reply::message(
            404,
            format!("Schedule with identifier [{schedule}] does not exist"),
        ),
    }
}

/// The answer to a `GET`, `PUT` or `DELETE` of an alias the schedule does not hold.
pub(super) fn no_override(answer: MissingOverride, alias: &str) -> Reply {
    match answer {
        MissingOverride::NotFound404 => {
            Reply::message(404, format!("Could not find override with alias [{alias}]"))
        }
        MissingOverride::Forbidden40301 => not_authorized_for_the_schedule(),
    }
}

/// The refusal of a create or update naming a user the account does not have.
pub(super) fn unknown_user(answer: UnknownUser, who: &str) -> Reply {
    match answer {
        UnknownUser::FieldError => unprocessable("user", format!("User [{who}] does not exist")),
        UnknownUser::MessageOnly => Reply::message(422, format!("User [{who}] does not exist")),
        UnknownUser::NotFound404 => {
            Reply::message(404, format!("No user exists with username [{who}]"))
        }
    }
}

/// The refusal of a create whose alias the schedule holds.
pub(super) fn alias_taken(answer: AliasTaken, alias: &str) -> Reply {
    match answer {
        AliasTaken::Conflict409 => Reply::message(
            409,
            format!(
                "There can be only one override with the same alias [{alias}] for that schedule"
            ),
        ),
        AliasTaken::Unprocessable422 => unprocessable(
            "alias",
            "There can be only one override with the same alias for that schedule",
        ),
        AliasTaken::BadRequest400 => {
            Reply::message(400, format!("Override with alias [{alias}] already exists"))
        }
    }
}

/// A 429, with `X-RateLimit-Period-In-Sec` when `period` is given.
pub(super) fn too_many(period: Option<u64>) -> Reply {
    // The Go SDK's 429 fixture: body and headers.
    let mut r = Reply::message(429, "TooManyRequests");
    r.headers = vec![
        ("X-RateLimit-State", "THROTTLED".into()),
        ("X-RateLimit-Reason", "ACCOUNT".into()),
    ];
    if let Some(period) = period {
        r.headers
            .push(("X-RateLimit-Period-In-Sec", period.to_string()));
    }
    r
}

/// The status and body the vendor gives for a kind of failure (`Fault::Fail`), in `dialect`.
pub(super) fn error_reply(error: &Error, dialect: &OpsgenieDialect) -> Reply {
    match error {
        Error::RateLimited { retry_after, .. } => too_many(Some(
            retry_after.map_or(dialect.rate_limit_period_secs, |d| d.as_secs()),
        )),
        Error::Transient { .. } => Reply::message(503, "Service Unavailable"),
        Error::PermissionDenied { message } => {
            Reply::json(403, json!({"code": 40301, "message": message}))
        }
        Error::Unauthenticated { message } => Reply::message(401, message.clone()),
        Error::NotFound {
            resource: Resource::Schedule(id),
            ..
        } => unknown_schedule(dialect.unknown_schedule, id),
        Error::NotFound { resource, .. } => {
            no_override(dialect.missing_override, &resource.to_string())
        }
        Error::UnknownMember { email, .. } => unknown_user(dialect.unknown_user, email.as_str()),
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

pub(super) fn unprocessable(field: &str, message: impl Into<String>) -> Reply {
    let mut errors = Map::new();
    errors.insert(field.into(), Value::String(message.into()));
    Reply::json(
        422,
        json!({"message": "Request body is not processable. Please check the errors.", "errors": errors}),
    )
}

pub(super) fn fmt(t: DateTime<Utc>) -> String {
    t.to_rfc3339_opts(SecondsFormat::AutoSi, true)
}

pub(super) fn parent_json(s: &SimSchedule) -> Value {
    json!({"id": s.config.id.0, "name": s.config.name, "enabled": s.enabled})
}

/// A schedule, with its rotations in the dialect's array order when asked for.
pub(super) fn schedule_json(
    s: &SimSchedule,
    with_rotations: bool,
    dialect: &OpsgenieDialect,
) -> Value {
    let rotations: Vec<Value> = if with_rotations {
        s.array_order(dialect.rotation_order)
            .into_iter()
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
pub(super) fn rotation_json(s: &SimSchedule, index: usize) -> Value {
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

pub(super) fn user_json(email: &Email) -> Value {
    json!({"type": "user", "id": user_id(email), "username": email.as_str()})
}

/// Who an override names, as the vendor writes it: a user, or (for the reserved emails of
/// [`OverrideRecipient`]) `none`, a team or an escalation.
pub(super) fn override_user_json(member: &Email) -> Value {
    match OverrideRecipient::from_email(member) {
        OverrideRecipient::Nobody => json!({"type": "none"}),
        OverrideRecipient::Team(id) => {
            json!({"type": "team", "id": id, "name": format!("team {id}")})
        }
        OverrideRecipient::Escalation(id) => {
            json!({"type": "escalation", "id": id, "name": format!("escalation {id}")})
        }
        _ => user_json(member),
    }
}

/// Who is on call in a timeline period, as the vendor writes it (`name` is a user's username).
pub(super) fn recipient_json(member: &Email) -> Value {
    match OverrideRecipient::from_email(member) {
        OverrideRecipient::Nobody => json!({"type": "none"}),
        OverrideRecipient::Team(id) => {
            json!({"type": "team", "id": id, "name": format!("team {id}")})
        }
        OverrideRecipient::Escalation(id) => {
            json!({"type": "escalation", "id": id, "name": format!("escalation {id}")})
        }
        _ => json!({"id": user_id(member), "type": "user", "name": member.as_str()}),
    }
}

pub(super) const WEEKDAYS: [&str; 7] = [
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
pub(super) fn restriction_json(restrictions: &[Restriction]) -> Option<Value> {
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

/// An override as the vendor lists it: its rotations by id and name as the schedule has them
/// (for an override of every rotation, `[]` or the full list, as the dialect says).
pub(super) fn override_json(s: &SimSchedule, o: &Stored, dialect: &OpsgenieDialect) -> Value {
    let indices: Vec<usize> = match (&o.rotations, dialect.all_rotations) {
        (Some(rs), _) => rs.clone(),
        (None, super::AllRotations::Empty) => Vec::new(),
        (None, super::AllRotations::FullList) => (0..s.config.rotations.len()).collect(),
    };
    let rotations: Vec<Value> = indices
        .into_iter()
        .filter_map(|i| {
            let r = s.config.rotations.get(i)?;
            Some(json!({"id": s.rotation_id(i), "name": r.name}))
        })
        .collect();
    json!({
        "_parent": parent_json(s),
        "alias": o.alias.as_str(),
        "user": override_user_json(&o.span.member),
        "startDate": fmt(o.span.start),
        "endDate": fmt(o.span.end),
        "rotations": rotations,
    })
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
    fn faults_answer_as_the_vendor_does() {
        let d = OpsgenieDialect::default();
        let r = error_reply(
            &Error::RateLimited {
                retry_after: None,
                message: String::new(),
            },
            &d,
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
                &d
            )
            .status,
            422
        );
        assert_eq!(
            error_reply(
                &Error::Transient {
                    message: String::new()
                },
                &d
            )
            .status,
            503
        );
        assert_eq!(
            error_reply(
                &Error::PermissionDenied {
                    message: String::new()
                },
                &d
            )
            .status,
            403
        );
    }
}
