//! The endpoints' behaviour over the state: listing, the timeline, and override writes with the
//! vendor's checks.

use chrono::{DateTime, Months, NaiveDate, NaiveTime, TimeDelta, Utc};
use oncall_core::{local_date, resolve_local, Email, OverrideId, Span, Window};
use serde_json::{json, Value};

use super::http::{Endpoint, Incoming, Reply};
use super::state::{user_id, State, Stored};
use super::timeline::{rotation_periods, Split};
use super::wire::{
    fmt, no_override, override_json, parent_json, recipient_json, rotation_json, schedule_json,
    unprocessable,
};
use super::{AliasTaken, PastEnd};
use crate::OverrideRecipient;

/// Answers a request for an endpoint, the schedule found at `index` (unused for the list).
pub(super) fn route(
    state: &mut State,
    endpoint: &Endpoint,
    index: usize,
    incoming: &Incoming<'_>,
) -> Reply {
    match endpoint {
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

pub(super) fn list_schedules(state: &State, incoming: &Incoming<'_>) -> Reply {
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

/// `GET /v2/schedules/{id}/timeline`: the window starts at local midnight of `date` (observed) and
/// runs `interval` `intervalUnit`s; turns (and, unless turned off, override periods) split at the
/// simulator's now plus 401 ms (the vendor's split has milliseconds, reference §2.5).
pub(super) fn timeline(state: &State, index: usize, incoming: &Incoming<'_>) -> Reply {
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
    let split = Split {
        at: state.now + TimeDelta::milliseconds(401),
        overrides: state.split_overrides,
    };
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
                           "recipient": recipient_json(&p.member)})
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
pub(super) struct OverrideBody {
    span: Span,
    rotations: Option<Vec<String>>,
}

pub(super) fn read_body(state: &State, body: &[u8]) -> Result<(Value, OverrideBody), Reply> {
    let Ok(value) = serde_json::from_slice::<Value>(body) else {
        return Err(Reply::message(400, "Invalid JSON body"));
    };
    let (start, end) = (
        read_date(&value, "startDate")?,
        read_date(&value, "endDate")?,
    );
    let member = read_member(state, &value)?;
    let rotations = value.get("rotations").and_then(Value::as_array).map(|rs| {
        rs.iter()
            .filter_map(|r| r.get("id").or_else(|| r.get("name")))
            .filter_map(|r| r.as_str().map(str::to_owned))
            .collect()
    });
    if end <= start {
        return Err(unprocessable(
            "endDate",
            "End date must be after start date",
        ));
    }
    let body = OverrideBody {
        span: Span::new(start, end, member),
        rotations,
    };
    Ok((value, body))
}

/// A required date field, floored to whole seconds as the vendor keeps them.
fn read_date(value: &Value, field: &str) -> Result<DateTime<Utc>, Reply> {
    let text = value
        .get(field)
        .and_then(Value::as_str)
        .ok_or_else(|| unprocessable(field, format!("{field} is required")))?;
    let t = DateTime::parse_from_rfc3339(text)
        .map_err(|_| unprocessable(field, format!("Invalid date [{text}]")))?;
    Ok(DateTime::from_timestamp(t.timestamp(), 0).unwrap_or_else(|| t.with_timezone(&Utc)))
}

/// Who an override names: a user of the account by username or id, `none`, or a team or an
/// escalation by id (any id: the simulator keeps no teams), held as the reserved email of
/// [`OverrideRecipient`]; anything else is a 422 naming `user`.
fn read_member(state: &State, value: &Value) -> Result<Email, Reply> {
    let user = value
        .get("user")
        .ok_or_else(|| unprocessable("user", "user is required"))?;
    let by_id = |kind: &str| {
        let id = user.get("id").and_then(Value::as_str).unwrap_or_default();
        let recipient = match kind {
            "team" => OverrideRecipient::Team(id.to_owned()),
            _ => OverrideRecipient::Escalation(id.to_owned()),
        };
        recipient
            .email()
            .filter(|_| !id.is_empty())
            .ok_or_else(|| unprocessable("user", format!("Invalid {kind} [{id}]")))
    };
    match user.get("type").and_then(Value::as_str) {
        Some("user") => {}
        Some("none") => {
            return OverrideRecipient::Nobody
                .email()
                .ok_or_else(|| unprocessable("user", "none"))
        }
        Some(kind @ ("team" | "escalation")) => return by_id(kind),
        other => {
            return Err(unprocessable(
                "user",
                format!("Invalid recipient type [{}]", other.unwrap_or_default()),
            ))
        }
    }
    let username = user.get("username").and_then(Value::as_str);
    let id = user.get("id").and_then(Value::as_str);
    let member = match (username, id) {
        (Some(name), _) => Email::parse(name).ok().filter(|e| state.users.contains(e)),
        (None, Some(id)) => state.users.iter().find(|e| user_id(e) == id).cloned(),
        (None, None) => None,
    };
    member.ok_or_else(|| {
        let who = username.or(id).unwrap_or("?");
        unprocessable("user", format!("User [{who}] does not exist"))
    })
}

/// `POST …/overrides`. Checks in the in-memory provider's order: the span, the person, the alias.
/// An end in the past is refused (UNCONFIRMED for the real vendor).
pub(super) fn create_override(state: &mut State, index: usize, incoming: &Incoming<'_>) -> Reply {
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
pub(super) fn update_override(
    state: &mut State,
    index: usize,
    alias: &str,
    incoming: &Incoming<'_>,
) -> Reply {
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
pub(super) fn delete_override(state: &mut State, index: usize, alias: &str) -> Reply {
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
