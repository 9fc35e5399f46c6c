//! The endpoints' behaviour over the state: the site's tenant info and user lookups, schedules,
//! rotations and the timeline, overrides with the vendor's checks, and pagination, each as the
//! dialect says where the documentation leaves it open.

use chrono::{DateTime, Datelike, Months, NaiveDate, NaiveTime, TimeDelta, Utc};
use oncall_core::{local_date, resolve_local, Email, Span, Window};
use serde_json::{json, Value};

use super::dialect::{
    DeleteStatus, PageSize, PastEnd, PastOverrides, RotationIdsOmitted, UpdateBody,
};
use super::http::{Endpoint, Incoming};
use super::state::{State, Stored};
use super::timeline::rotation_periods;
use super::wire::{
    fmt, no_override, no_schedule, override_json, responder_json, rotation_json, schedule_json,
    unprocessable, Reply,
};
use super::CLOUD_ID;
use crate::recipient::Responder;

/// Answers a request for an endpoint.
pub(crate) fn route(state: &mut State, endpoint: &Endpoint, incoming: &Incoming<'_>) -> Reply {
    match endpoint {
        Endpoint::TenantInfo => Reply::json(200, json!({"cloudId": CLOUD_ID})),
        Endpoint::UserSearch => user_search(state, incoming),
        Endpoint::User => user(state, incoming),
        Endpoint::ListSchedules => {
            let expand = expands_rotations(incoming);
            let values: Vec<Value> = state
                .schedules
                .iter()
                .map(|s| schedule_json(state, s, expand))
                .collect();
            paginate(state, values, "/v1/schedules", incoming)
        }
        Endpoint::GetSchedule(id) => match state.schedule(id) {
            Some(s) => Reply::json(200, schedule_json(state, s, expands_rotations(incoming))),
            None => no_schedule(),
        },
        Endpoint::ListRotations(id) => match state.schedule(id) {
            Some(s) => {
                let values = (0..s.config.rotations.len())
                    .map(|i| rotation_json(state, s, i))
                    .collect();
                paginate(
                    state,
                    values,
                    &format!("/v1/schedules/{id}/rotations"),
                    incoming,
                )
            }
            None => no_schedule(),
        },
        Endpoint::Timeline(id) => timeline(state, id, incoming),
        Endpoint::ListOverrides(id) => match state.schedule(id) {
            Some(s) => {
                let now = state.now;
                let mut all: Vec<&Stored> = s
                    .overrides
                    .iter()
                    .filter(|o| {
                        state.dialect.past_overrides == PastOverrides::All || o.span.end > now
                    })
                    .collect();
                all.sort_by(|a, b| {
                    a.span
                        .start
                        .cmp(&b.span.start)
                        .then_with(|| a.alias.cmp(&b.alias))
                });
                let values = all.iter().map(|o| override_json(state, s, o)).collect();
                paginate(
                    state,
                    values,
                    &format!("/v1/schedules/{id}/overrides"),
                    incoming,
                )
            }
            None => no_schedule(),
        },
        Endpoint::GetOverride(id, alias) => match state.schedule(id) {
            Some(s) => match s.find(alias) {
                Some(i) => Reply::json(200, override_json(state, s, &s.overrides[i])),
                None => no_override(),
            },
            None => no_schedule(),
        },
        Endpoint::CreateOverride(id) => create_override(state, id, incoming),
        Endpoint::UpdateOverride(id, alias) => update_override(state, id, alias, incoming),
        Endpoint::DeleteOverride(id, alias) => delete_override(state, id, alias),
    }
}

fn expands_rotations(incoming: &Incoming<'_>) -> bool {
    incoming
        .query
        .iter()
        .filter(|(k, _)| k == "expand")
        .any(|(_, v)| v.split(',').any(|x| x.trim() == "rotation"))
}

/// `{"values", "links": {"next"}}` with `offset` and `size` (default 25, as the spec says), the
/// largest size as the dialect says; the next link as in the spec's examples: the path below the
/// API root with `offset` and `size` only.
fn paginate(state: &State, values: Vec<Value>, path: &str, incoming: &Incoming<'_>) -> Reply {
    let number = |name: &str, default: u32| match incoming.query(name) {
        None => Ok(default),
        Some(v) => v
            .parse::<u32>()
            .map_err(|_| format!("{name} must be a number")),
    };
    let (size, offset) = match (number("size", 25), number("offset", 0)) {
        (Ok(size), Ok(offset)) => (size, offset),
        (Err(e), _) | (_, Err(e)) => return unprocessable(e),
    };
    let size = match state.dialect.page_size {
        _ if size == 0 => return unprocessable("size must be at least 1"),
        PageSize::UpTo50 if size > 50 => return unprocessable("size must be between 1 and 50"),
        PageSize::RefusedAbove(max) if size > max => {
            return unprocessable(format!("size must be between 1 and {max}"))
        }
        PageSize::CappedAt(max) => size.min(max.max(1)),
        _ => size,
    };
    let start = (offset as usize).min(values.len());
    let end = (start + size as usize).min(values.len());
    let page: Vec<Value> = values[start..end].to_vec();
    let mut links = json!({});
    if end < values.len() {
        links["next"] = json!(format!("{path}?offset={end}&size={size}"));
    }
    Reply::json(200, json!({"values": page, "links": links}))
}

/// The Jira platform's user search: users whose e-mail or display name starts with the query,
/// at most `maxResults`; a hidden e-mail is left out of the answer (the Atlassian KB).
fn user_search(state: &State, incoming: &Incoming<'_>) -> Reply {
    let Some(query) = incoming.query("query").filter(|q| !q.trim().is_empty()) else {
        return Reply::json(
            400,
            json!({"errorMessages": ["The query parameter 'query' is required"], "errors": {}}),
        );
    };
    let max = incoming
        .query("maxResults")
        .and_then(|m| m.parse::<usize>().ok())
        .unwrap_or(50);
    let q = query.to_lowercase();
    let found: Vec<Value> = state
        .users
        .iter()
        .filter(|u| {
            (u.email_visible && u.email.as_str().starts_with(&q))
                || u.name.to_lowercase().starts_with(&q)
                || (!u.email_visible && u.email.as_str() == q)
        })
        .take(max)
        .map(user_json)
        .collect();
    Reply::json(200, Value::Array(found))
}

fn user(state: &State, incoming: &Incoming<'_>) -> Reply {
    let Some(account) = incoming.query("accountId") else {
        return Reply::json(
            400,
            json!({"errorMessages": ["The query parameter 'accountId' is required"], "errors": {}}),
        );
    };
    match state.user_by_account(account) {
        Some(u) => Reply::json(200, user_json(u)),
        None => Reply::json(
            404,
            json!({"errorMessages": ["Specified user does not exist or you do not have required permissions"], "errors": {}}),
        ),
    }
}

fn user_json(u: &super::state::SimUser) -> Value {
    let mut v = json!({
        "self": format!("https://sim.atlassian.net/rest/api/3/user?accountId={}", u.account),
        "accountId": u.account,
        "accountType": "atlassian",
        "displayName": u.name,
        "active": true,
        "timeZone": "Etc/UTC",
    });
    if u.email_visible {
        v["emailAddress"] = json!(u.email.as_str());
    }
    v
}

/// `GET …/timeline`: from the beginning of the `intervalUnit` containing `date` (local to the
/// schedule: midnight, Monday, the 1st) for `interval` units; at most a year back and two years
/// ahead of now (the spec). Periods split at the simulator's now plus 263 ms (the vendor's split has
/// milliseconds, as the spec's example shows).
fn timeline(state: &State, id: &str, incoming: &Incoming<'_>) -> Reply {
    let Some(s) = state.schedule(id) else {
        return no_schedule();
    };
    let zone = s.config.zone;
    let date = match incoming.query("date") {
        None => state.now,
        Some(d) => match DateTime::parse_from_rfc3339(d) {
            Ok(d) => d.with_timezone(&Utc),
            Err(_) => return unprocessable(format!("date {d:?} is not a date-time")),
        },
    };
    let interval = match incoming.query("interval").map(str::parse::<u32>) {
        None => 1,
        Some(Ok(n)) if n >= 1 => n,
        Some(_) => return unprocessable("interval must be a positive number"),
    };
    let day = local_date(zone, date);
    let (first, last): (Option<NaiveDate>, Option<NaiveDate>) =
        match incoming.query("intervalUnit").unwrap_or("weeks") {
            "days" => (
                Some(day),
                day.checked_add_days(chrono::Days::new(interval.into())),
            ),
            "weeks" => {
                let monday = day - TimeDelta::days(i64::from(day.weekday().num_days_from_monday()));
                (
                    Some(monday),
                    monday.checked_add_days(chrono::Days::new(u64::from(interval) * 7)),
                )
            }
            "months" => {
                let first = day.with_day(1);
                (
                    first,
                    first.and_then(|f| f.checked_add_months(Months::new(interval))),
                )
            }
            other => {
                return unprocessable(format!(
                    "intervalUnit {other:?} is not one of days, weeks, months"
                ))
            }
        };
    let midnight = |d: NaiveDate| resolve_local(zone, d.and_time(NaiveTime::MIN));
    let Some(window) = first
        .zip(last)
        .and_then(|(f, l)| Window::new(midnight(f), midnight(l)).ok())
    else {
        return unprocessable("the time range is out of range");
    };
    if window.start() < state.now - TimeDelta::days(366)
        || window.end() > state.now + TimeDelta::days(2 * 366)
    {
        return unprocessable(
            "The time range of the timeline can go back at most one year from today and as far as \
             two years from today",
        );
    }
    let split = state.now + TimeDelta::milliseconds(263);
    let rotations: Vec<Value> = s
        .config
        .rotations
        .iter()
        .enumerate()
        .map(|(i, r)| {
            let rid = &s.rotation_ids[i];
            let applies: Vec<&Stored> = s
                .overrides
                .iter()
                .filter(|o| o.rotation_ids.as_ref().is_none_or(|ids| ids.contains(rid)))
                .collect();
            let periods: Vec<Value> = rotation_periods(r, zone, &applies, window, split)
                .into_iter()
                .map(|p| {
                    let who = responder_json(state, &p.member);
                    json!({"startDate": fmt(p.start), "endDate": fmt(p.end), "type": p.kind,
                           "responder": who.clone(), "flattenedResponders": [who]})
                })
                .collect();
            let order = s.order.get(i).copied().unwrap_or(i as f64 + 1.0);
            json!({"id": rid, "name": r.name, "order": order, "deleted": false, "periods": periods})
        })
        .collect();
    Reply::json(
        200,
        json!({"startDate": fmt(window.start()), "endDate": fmt(window.end()),
               "finalTimeline": {"rotations": rotations},
               "_expands": ["base", "forwarding", "override"]}),
    )
}

/// The fields of a create or update body, as given (each may be missing).
struct Fields {
    member: Option<Email>,
    start: Option<DateTime<Utc>>,
    end: Option<DateTime<Utc>>,
    /// `None`: absent or `null` (every rotation); `Some`: as given, every id one of the
    /// schedule's rotations.
    rotation_ids: Option<Vec<String>>,
}

fn read_fields(state: &State, schedule: &str, body: &[u8]) -> Result<Fields, Reply> {
    let Ok(value) = serde_json::from_slice::<Value>(body) else {
        return Err(Reply::errors(400, "Invalid JSON body", "BAD_REQUEST"));
    };
    let date = |field: &str| -> Result<Option<DateTime<Utc>>, Reply> {
        match value.get(field) {
            None | Some(Value::Null) => Ok(None),
            Some(Value::String(text)) => DateTime::parse_from_rfc3339(text)
                .map(|t| DateTime::from_timestamp(t.timestamp(), 0))
                .map_err(|_| unprocessable(format!("{field} is not a date-time"))),
            Some(_) => Err(unprocessable(format!("{field} is not a date-time"))),
        }
    };
    let member = match value.get("responder").filter(|r| !r.is_null()) {
        None => None,
        Some(r) => Some(read_responder(state, r)?),
    };
    let rotation_ids = match value.get("rotationIds") {
        None | Some(Value::Null) => None,
        Some(Value::Array(items)) => {
            let s = state
                .schedule(schedule)
                .map(|s| s.rotation_ids.clone())
                .unwrap_or_default();
            let mut ids = Vec::with_capacity(items.len());
            for item in items {
                match item.as_str() {
                    Some(id) if s.iter().any(|r| r == id) => ids.push(id.to_owned()),
                    _ => {
                        return Err(unprocessable(format!(
                            "Rotation {item} not found in the schedule"
                        )))
                    }
                }
            }
            // Present, even empty (a schedule without rotations): the field is given.
            Some(ids)
        }
        Some(_) => return Err(unprocessable("rotationIds must be a list")),
    };
    Ok(Fields {
        member,
        start: date("startDate")?,
        end: date("endDate")?,
        rotation_ids,
    })
}

/// `{"type": "user", "id": "<accountId>"}` of a user of the site, or `{"type": "noone"}`.
fn read_responder(state: &State, r: &Value) -> Result<Email, Reply> {
    match r.get("type").and_then(Value::as_str) {
        Some("user") => {
            let id = r.get("id").and_then(Value::as_str).unwrap_or_default();
            state
                .user_by_account(id)
                .map(|u| u.email.clone())
                .ok_or_else(|| unprocessable("Responder user could not be found"))
        }
        Some("noone") => Responder::Nobody
            .email()
            .ok_or_else(|| unprocessable("noone")),
        other => Err(unprocessable(format!(
            "Responder type {:?} is not one of user, noone",
            other.unwrap_or_default()
        ))),
    }
}

/// `POST …/overrides`: the span, the person and the rotations checked as the vendor would; an
/// end in the past refused; the alias chosen by the server.
fn create_override(state: &mut State, id: &str, incoming: &Incoming<'_>) -> Reply {
    if state.schedule(id).is_none() {
        return no_schedule();
    }
    let f = match read_fields(state, id, incoming.body) {
        Ok(f) => f,
        Err(reply) => return reply,
    };
    let (Some(member), Some(start), Some(end)) = (f.member, f.start, f.end) else {
        return unprocessable("responder, startDate and endDate are required");
    };
    if end <= start {
        return unprocessable("End date must be after start date");
    }
    if end <= state.now {
        return unprocessable("End date must be in the future");
    }
    if f.rotation_ids.is_none() && state.dialect.rotation_ids_omitted == RotationIdsOmitted::Refused
    {
        return unprocessable("rotationIds must not be empty");
    }
    let alias = state.new_alias();
    let seq = state.next_seq();
    let stored = Stored {
        alias,
        span: Span::new(start, end, member),
        seq,
        rotation_ids: f.rotation_ids,
    };
    let Some(s) = state.schedule_mut(id) else {
        return no_schedule();
    };
    s.overrides.push(stored.clone());
    let s = state.schedule(id).map(|s| override_json(state, s, &stored));
    Reply::json(201, s.unwrap_or(Value::Null))
}

/// `PUT …/overrides/{alias}`, as the dialect's update body says. Ending a running override before
/// now ends it at now or is refused, as [`PastEnd`] says (the vendor's behaviour is undocumented).
fn update_override(state: &mut State, id: &str, alias: &str, incoming: &Incoming<'_>) -> Reply {
    let Some(s) = state.schedule(id) else {
        return no_schedule();
    };
    let Some(i) = s.find(alias) else {
        return no_override();
    };
    let old = s.overrides[i].clone();
    let f = match read_fields(state, id, incoming.body) {
        Ok(f) => f,
        Err(reply) => return reply,
    };
    let dialect = state.dialect;
    let (member, start, end, rotation_ids) = match dialect.update_body {
        UpdateBody::Partial => (
            f.member.unwrap_or(old.span.member.clone()),
            f.start.unwrap_or(old.span.start),
            f.end.unwrap_or(old.span.end),
            f.rotation_ids.or(old.rotation_ids.clone()),
        ),
        UpdateBody::CreateShape | UpdateBody::RotationIdsRequired => {
            let (Some(member), Some(start), Some(end)) = (f.member, f.start, f.end) else {
                return unprocessable("responder, startDate and endDate are required");
            };
            if f.rotation_ids.is_none() && dialect.update_body == UpdateBody::RotationIdsRequired {
                return unprocessable("rotationIds must not be null");
            }
            (member, start, end, f.rotation_ids)
        }
    };
    if rotation_ids.is_none() && dialect.rotation_ids_omitted == RotationIdsOmitted::Refused {
        return unprocessable("rotationIds must not be empty");
    }
    let now = state.now;
    let mut span = Span::new(start, end, member);
    if old.span.start < now
        && span.start < now
        && span.end <= now
        && (dialect.past_end == PastEnd::Clamp || span.end == now)
    {
        span.end = now;
    }
    if span.end <= span.start {
        return unprocessable("End date must be after start date");
    }
    // An end before now is refused (one at now is not in the past).
    if span.end < now {
        return unprocessable("End date must be in the future");
    }
    let updated = Stored {
        span,
        rotation_ids,
        ..old
    };
    if let Some(s) = state.schedule_mut(id) {
        s.overrides[i] = updated.clone();
    }
    let answer = state
        .schedule(id)
        .map(|s| override_json(state, s, &updated));
    Reply::json(200, answer.unwrap_or(Value::Null))
}

/// `DELETE …/overrides/{alias}`: removes it, running or not, answered as the dialect says; one
/// that has ended is refused, as the core's in-memory provider does (UNCONFIRMED for the vendor).
fn delete_override(state: &mut State, id: &str, alias: &str) -> Reply {
    let now = state.now;
    let status = state.dialect.delete_status;
    let Some(s) = state.schedule_mut(id) else {
        return no_schedule();
    };
    let Some(i) = s.find(alias) else {
        return no_override();
    };
    if s.overrides[i].span.end <= now {
        return unprocessable("An override that has ended cannot be deleted");
    }
    s.overrides.remove(i);
    match status {
        DeleteStatus::NoContent => Reply::empty(204),
        DeleteStatus::OkEmpty => Reply::empty(200),
        DeleteStatus::OkJson => {
            Reply::json(200, json!({"result": "Override deleted", "alias": alias}))
        }
    }
}
