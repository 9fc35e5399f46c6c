//! The endpoints' behaviour over the state: listing, the timeline, and override writes with the
//! vendor's checks.

use chrono::{DateTime, Months, NaiveDate, NaiveTime, TimeDelta, Utc};
use oncall_core::{local_date, resolve_local, Email, OverrideId, Span, Window};
use serde_json::{json, Value};

use super::dialect::{DeleteAnswer, OverrideSplit, PastEnd, PutWithoutRotations, TimelineSplit};
use super::http::{Endpoint, Incoming, Reply};
use super::state::{user_id, State, Stored};
use super::timeline::{rotation_periods, Drawing, SimPeriod, Split};
use super::wire::{
    alias_taken, fmt, no_override, override_json, parent_json, recipient_json, rotation_json,
    schedule_json, unknown_user, unprocessable,
};
use crate::OverrideRecipient;

/// Answers a request for an endpoint, the schedule found at `index` (unused for the list).
pub(super) fn route(
    state: &mut State,
    endpoint: &Endpoint,
    index: usize,
    incoming: &Incoming<'_>,
) -> Reply {
    let dialect = state.dialect;
    match endpoint {
        Endpoint::ListSchedules => list_schedules(state, incoming),
        Endpoint::GetSchedule(_) => Reply::json(
            200,
            json!({"data": schedule_json(&state.schedules[index], true, &dialect)}),
        ),
        Endpoint::Timeline(_) => timeline(state, index, incoming),
        Endpoint::ListRotations(_) => {
            let s = &state.schedules[index];
            let data: Vec<Value> = s
                .array_order(dialect.rotation_order)
                .into_iter()
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
            let listed = state.listing(index);
            let s = &state.schedules[index];
            let data: Vec<Value> = listed
                .iter()
                .map(|o| override_json(s, o, &dialect))
                .collect();
            Reply::json(200, json!({"data": data}))
        }
        Endpoint::GetOverride(_, alias) => {
            let s = &state.schedules[index];
            match s.find(alias) {
                Some(i) => Reply::json(
                    200,
                    json!({"data": override_json(s, &s.overrides[i], &dialect)}),
                ),
                None => no_override(dialect.missing_override, alias),
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
        .map(|s| schedule_json(s, expand, &state.dialect))
        .collect();
    Reply::json(200, json!({"data": data, "expandable": ["rotation"]}))
}

/// One timeline (`finalTimeline`, `baseTimeline`, ...) as JSON: per rotation, its periods.
fn timeline_json(state: &State, index: usize, periods: &[Vec<SimPeriod>]) -> Value {
    let s = &state.schedules[index];
    let rotations: Vec<Value> = (0..s.config.rotations.len())
        .map(|i| {
            let r = &s.config.rotations[i];
            let periods: Vec<Value> = periods[i]
                .iter()
                .map(|p| {
                    json!({"startDate": fmt(p.start), "endDate": fmt(p.end), "type": p.kind,
                           "recipient": recipient_json(&p.member)})
                })
                .collect();
            json!({"id": s.rotation_id(i), "name": r.name,
                   "order": s.order.get(i).copied().unwrap_or(i as f64 + 1.0),
                   "periods": periods})
        })
        .collect();
    json!({ "rotations": rotations })
}

/// `GET /v2/schedules/{id}/timeline`: the window starts at local midnight of `date` (observed) and
/// runs `interval` `intervalUnit`s. `finalTimeline` always; `baseTimeline` (the rotations' own
/// turns), `overrideTimeline` (the overrides as applied to each rotation) and
/// `forwardingTimeline` (none: the simulator keeps no forwarding) when `expand` names them. Turns
/// (and override periods, as the dialect says) split at the request instant.
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
    let expand: Vec<&str> = incoming
        .query("expand")
        .map(|e| e.split(',').map(str::trim).collect())
        .unwrap_or_default();
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
    let dialect = state.dialect;
    let at = match dialect.timeline_split {
        TimelineSplit::Milliseconds => state.now + TimeDelta::milliseconds(401),
        TimelineSplit::WholeSeconds | TimelineSplit::NoSplit => state.now,
    };
    let drawing = Drawing {
        split: Split {
            at,
            turns: dialect.timeline_split != TimelineSplit::NoSplit,
            overrides: dialect.override_split == OverrideSplit::Split,
        },
        handoffs: dialect.handoffs,
        precedence: dialect.overlap,
    };
    let draw = |with_overrides: bool| -> Vec<Vec<SimPeriod>> {
        s.config
            .rotations
            .iter()
            .enumerate()
            .map(|(i, r)| {
                let applies: Vec<&Stored> = s
                    .overrides
                    .iter()
                    .filter(|o| with_overrides && o.applies_to(i))
                    .collect();
                rotation_periods(r, zone, &applies, window, drawing)
            })
            .collect()
    };
    let finals = draw(true);
    let mut data = json!({"_parent": parent_json(s), "startDate": fmt(window.start()),
                          "endDate": fmt(window.end()),
                          "finalTimeline": timeline_json(state, index, &finals)});
    if expand.contains(&"base") {
        data["baseTimeline"] = timeline_json(state, index, &draw(false));
    }
    if expand.contains(&"override") {
        let overrides: Vec<Vec<SimPeriod>> = finals
            .iter()
            .map(|ps| {
                ps.iter()
                    .filter(|p| p.kind == "override")
                    .cloned()
                    .collect()
            })
            .collect();
        data["overrideTimeline"] = timeline_json(state, index, &overrides);
    }
    if expand.contains(&"forwarding") {
        let none = vec![Vec::new(); s.config.rotations.len()];
        data["forwardingTimeline"] = timeline_json(state, index, &none);
    }
    Reply::json(
        200,
        json!({"data": data, "expandable": ["base", "forwarding", "override"]}),
    )
}

/// The fields of a create or update body, checked as the vendor would.
pub(super) struct OverrideBody {
    span: Span,
    /// The rotations named, by index; `None`: the field was left out.
    rotations: Option<Vec<usize>>,
}

pub(super) fn read_body(
    state: &State,
    index: usize,
    body: &[u8],
) -> Result<(Value, OverrideBody), Reply> {
    let Ok(value) = serde_json::from_slice::<Value>(body) else {
        return Err(Reply::message(400, "Invalid JSON body"));
    };
    let (start, end) = (
        read_date(&value, "startDate")?,
        read_date(&value, "endDate")?,
    );
    let member = read_member(state, &value)?;
    let rotations = match value.get("rotations") {
        None | Some(Value::Null) => None,
        Some(Value::Array(named)) => {
            let s = &state.schedules[index];
            let mut indices = Vec::new();
            for r in named {
                let reference = r
                    .get("id")
                    .or_else(|| r.get("name"))
                    .and_then(Value::as_str)
                    .unwrap_or_default();
                match s.rotation_index(reference) {
                    Some(i) if !indices.contains(&i) => indices.push(i),
                    Some(_) => {}
                    None => {
                        return Err(unprocessable(
                            "rotations",
                            format!("Rotation [{reference}] does not exist"),
                        ))
                    }
                }
            }
            Some(indices)
        }
        Some(_) => return Err(unprocessable("rotations", "rotations must be a list")),
    };
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

/// A required date field, in whole seconds.
fn read_date(value: &Value, field: &str) -> Result<DateTime<Utc>, Reply> {
    let text = value
        .get(field)
        .and_then(Value::as_str)
        .ok_or_else(|| unprocessable(field, format!("{field} is required")))?;
    let t = DateTime::parse_from_rfc3339(text)
        .map_err(|_| unprocessable(field, format!("Invalid date [{text}]")))?;
    Ok(DateTime::from_timestamp(t.timestamp(), 0).unwrap_or_else(|| t.with_timezone(&Utc)))
}

/// The span as the vendor keeps it ([`Rounding`](super::Rounding)); a span that rounds to nothing is refused.
fn kept(state: &State, span: Span) -> Result<Span, Reply> {
    state
        .kept(span)
        .ok_or_else(|| unprocessable("endDate", "End date must be after start date"))
}

/// Who an override names: a user of the account by username or id, `none`, or a team or an
/// escalation by id (any id: the simulator keeps no teams), held as the reserved email of
/// [`OverrideRecipient`]; anyone else is refused as the dialect's [`UnknownUser`] says.
///
/// [`UnknownUser`]: super::UnknownUser
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
    member.ok_or_else(|| unknown_user(state.dialect.unknown_user, username.or(id).unwrap_or("?")))
}

/// `POST …/overrides`. Checks in the in-memory provider's order: the span, the person, the alias.
/// An end in the past is refused (UNCONFIRMED for the real vendor).
pub(super) fn create_override(state: &mut State, index: usize, incoming: &Incoming<'_>) -> Reply {
    let (value, body) = match read_body(state, index, incoming.body) {
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
    let answer = state.dialect.alias_taken;
    if state.schedules[index].find(alias.as_str()).is_some() {
        return alias_taken(answer, alias.as_str());
    }
    let span = match kept(state, body.span) {
        Ok(span) => span,
        Err(reply) => return reply,
    };
    state.note_api_write(index, &alias, None);
    state.schedules[index].overrides.push(Stored {
        alias: alias.clone(),
        span,
        seq,
        written: seq,
        rotations: body.rotations,
    });
    Reply::json(
        201,
        json!({"result": "Created", "data": {"alias": alias.as_str()}}),
    )
}

/// `PUT …/overrides/{alias}`: a full replace. Ending a running override at or before now is
/// clamped to now or refused, as [`PastEnd`] says; leaving `rotations` out resets or keeps them,
/// as [`PutWithoutRotations`] says.
pub(super) fn update_override(
    state: &mut State,
    index: usize,
    alias: &str,
    incoming: &Incoming<'_>,
) -> Reply {
    let dialect = state.dialect;
    let Some(i) = state.schedules[index].find(alias) else {
        return no_override(dialect.missing_override, alias);
    };
    let (_, body) = match read_body(state, index, incoming.body) {
        Ok(b) => b,
        Err(reply) => return reply,
    };
    let now = state.now;
    let before = state.schedules[index].overrides[i].clone();
    let mut span = body.span;
    let running_cut = before.span.start < now && span.start < now && span.end <= now;
    if running_cut && dialect.past_end == PastEnd::Clamp {
        span.end = now;
    }
    // An end before now is refused (an end at now is not in the past).
    if span.end < now {
        return unprocessable("endDate", "End date must be in the future");
    }
    let span = match kept(state, span) {
        Ok(span) => span,
        Err(reply) => return reply,
    };
    let rotations = match (body.rotations, dialect.put_without_rotations) {
        (Some(named), _) => Some(named),
        (None, PutWithoutRotations::ResetsToAll) => None,
        (None, PutWithoutRotations::KeepsRotations) => before.rotations.clone(),
    };
    let written = state.next_seq();
    let alias = before.alias.clone();
    state.note_api_write(index, &alias, Some(before));
    let stored = &mut state.schedules[index].overrides[i];
    stored.span = span;
    stored.rotations = rotations;
    stored.written = written;
    Reply::json(200, json!({"result": "Updated", "data": {"alias": alias}}))
}

/// `DELETE …/overrides/{alias}`: removes it, running or not; one that has ended is refused, as the
/// in-memory provider does (UNCONFIRMED for the real vendor).
pub(super) fn delete_override(state: &mut State, index: usize, alias: &str) -> Reply {
    let (now, dialect) = (state.now, state.dialect);
    let s = &mut state.schedules[index];
    let Some(i) = s.find(alias) else {
        return no_override(dialect.missing_override, alias);
    };
    if s.overrides[i].span.end <= now {
        return Reply::message(422, "An override that has ended cannot be deleted");
    }
    let gone = s.overrides.remove(i);
    let alias = gone.alias.clone();
    state.note_api_write(index, &alias, Some(gone));
    match dialect.delete_answer {
        DeleteAnswer::Ok200 => Reply::json(200, json!({"result": "Deleted"})),
        DeleteAnswer::NoContent204 => Reply::empty(204),
    }
}
