//! Opsgenie's wire shapes (reference §2) and their translation to and from the core model.
//!
//! Answers are read through [`Node`] so that every malformed value is reported with its path. Only
//! the fields the sync uses are read; everything else is ignored.

use chrono::{DateTime, SecondsFormat, Utc, Weekday};
use chrono_tz::Tz;
use oncall_core::{
    local_time, Email, Error, Override, OverrideId, Participant, Restriction, Rotation,
    RotationUnit, Span,
};
use serde_json::{json, Value};

use crate::json::{invalid, Node};
use crate::limits::RotationRef;
use crate::OverrideRecipient;

/// A rotation participant or timeline recipient that is not a person: a team, an escalation, or a
/// kind this adapter does not know. Its role slot is imported as nobody; the name is reported.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct NonUser {
    /// `team`, `escalation`, ...
    pub kind: String,
    /// Its name (or id, when the vendor gave no name).
    pub name: String,
}

/// A configuration the adapter cannot translate (a kind of rotation or restriction it does not
/// know, an unknown zone): the schedule is unsupported, not the answer malformed.
fn unsupported(path: &str, what: impl std::fmt::Display) -> Error {
    Error::Unsupported {
        message: format!("{path}: {what}"),
    }
}

/// A schedule as Opsgenie describes it.
#[derive(Debug, Clone)]
pub(crate) struct WireSchedule {
    pub id: String,
    pub name: String,
    pub zone: Tz,
    pub enabled: bool,
    /// In the vendor's array order.
    pub rotations: Vec<WireRotation>,
}

/// A rotation as Opsgenie describes it, translated.
#[derive(Debug, Clone)]
pub(crate) struct WireRotation {
    pub id: String,
    pub start: DateTime<Utc>,
    pub end: Option<DateTime<Utc>>,
    pub rotation: Rotation,
    /// People among the participants.
    pub members: Vec<Email>,
    /// Participants that are not people (imported as nobody).
    pub non_users: Vec<NonUser>,
}

/// One rotation of a timeline answer.
#[derive(Debug, Clone)]
pub(crate) struct TimelineRotation {
    pub id: String,
    pub name: String,
    /// The UI's order (a float, not contiguous); `None` when absent.
    pub order: Option<f64>,
    pub periods: Vec<TimelinePeriod>,
}

/// One period of a timeline rotation.
#[derive(Debug, Clone)]
pub(crate) struct TimelinePeriod {
    pub start: DateTime<Utc>,
    pub end: DateTime<Utc>,
    pub recipient: Recipient,
    /// `historical`, `default`, `override`, ... as the vendor typed it.
    pub kind: Option<String>,
}

/// Who a timeline period or an override names.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Recipient {
    User(Email),
    Nobody,
    Other(NonUser),
}

/// Parses one schedule object (`data` of a get, an item of a list).
pub(crate) fn schedule(node: &Node<'_>) -> Result<WireSchedule, Error> {
    let id = node.field("id")?.str()?.to_owned();
    let name = match node.opt("name")? {
        Some(n) => n.str()?.to_owned(),
        None => id.clone(),
    };
    let tz = node.field("timezone")?;
    let zone: Tz = tz.str()?.parse().map_err(|_| {
        unsupported(
            tz.path(),
            format_args!(
                "unknown time zone {:?} (not an IANA zone this build knows)",
                tz.str().unwrap_or_default()
            ),
        )
    })?;
    let enabled = match node.opt("enabled")? {
        Some(n) => n.bool()?,
        None => true,
    };
    let rotations = node
        .opt_items("rotations")?
        .iter()
        .map(|r| rotation(r, zone))
        .collect::<Result<Vec<_>, _>>()?;
    Ok(WireSchedule {
        id,
        name,
        zone,
        enabled,
        rotations,
    })
}

fn rotation(node: &Node<'_>, zone: Tz) -> Result<WireRotation, Error> {
    let id = node.field("id")?.str()?.to_owned();
    let name = match node.opt("name")? {
        Some(n) => n.str()?.to_owned(),
        None => String::new(),
    };
    let start = node.field("startDate")?.instant()?;
    let end = node.opt("endDate")?.map(|n| n.instant()).transpose()?;
    let kind = node.field("type")?;
    let unit = match kind.str()? {
        "hourly" => RotationUnit::Hourly,
        "daily" => RotationUnit::Daily,
        "weekly" => RotationUnit::Weekly,
        other => {
            return Err(unsupported(
                kind.path(),
                format_args!(
                    "rotation type {other:?} is not supported (hourly, daily and weekly are)"
                ),
            ))
        }
    };
    // "default value 1" (OAS).
    let length = match node.opt("length")? {
        Some(n) if n.u32()? == 0 => return Err(invalid(n.path(), "length must be at least 1")),
        Some(n) => n.u32()?,
        None => 1,
    };
    let mut participants = Vec::new();
    let mut members = Vec::new();
    let mut non_users = Vec::new();
    for p in node.opt_items("participants")? {
        match participant(&p)? {
            Recipient::User(email) => {
                members.push(email.clone());
                participants.push(Participant::Member(email));
            }
            Recipient::Nobody => participants.push(Participant::Nobody),
            Recipient::Other(who) => {
                non_users.push(who);
                participants.push(Participant::Nobody);
            }
        }
    }
    if participants.is_empty() {
        // A rotation whose people were all removed covers nothing; the core wants one slot.
        participants.push(Participant::Nobody);
    }
    let restrictions = match node.opt("timeRestriction")? {
        Some(r) => time_restriction(&r)?,
        None => Vec::new(),
    };
    Ok(WireRotation {
        id,
        start,
        end,
        rotation: Rotation {
            name,
            unit,
            length,
            start: local_time(zone, start),
            effective_from: None,
            end: end.map(|e| local_time(zone, e)),
            participants,
            restrictions,
        },
        members,
        non_users,
    })
}

/// A rotation participant: `{"type":"user","username":…}`, `{"type":"none"}`, a team or an escalation.
fn participant(node: &Node<'_>) -> Result<Recipient, Error> {
    let kind = node.field("type")?.str()?;
    match kind {
        "user" => Ok(Recipient::User(node.field("username")?.email()?)),
        "none" => Ok(Recipient::Nobody),
        other => Ok(Recipient::Other(non_user(node, other)?)),
    }
}

fn non_user(node: &Node<'_>, kind: &str) -> Result<NonUser, Error> {
    let name = match (node.opt("name")?, node.opt("id")?) {
        (Some(n), _) | (None, Some(n)) => n.str()?.to_owned(),
        (None, None) => String::from("(unnamed)"),
    };
    Ok(NonUser {
        kind: kind.to_owned(),
        name,
    })
}

/// `time-of-day` has one `restriction`; `weekday-and-time-of-day` has a list of `restrictions`.
/// Hours are local to the schedule's zone.
fn time_restriction(node: &Node<'_>) -> Result<Vec<Restriction>, Error> {
    let kind = node.field("type")?;
    let hm = |n: &Node<'_>, hour: &str, minute: &str| -> Result<(u32, u32), Error> {
        let m = match n.opt(minute)? {
            Some(m) => m.u32()?,
            None => 0,
        };
        Ok((n.field(hour)?.u32()?, m))
    };
    match kind.str()? {
        "time-of-day" => {
            let r = node.field("restriction")?;
            let (sh, sm) = hm(&r, "startHour", "startMin")?;
            let (eh, em) = hm(&r, "endHour", "endMin")?;
            let restriction =
                Restriction::time_of_day(sh, sm, eh, em).map_err(|e| invalid(r.path(), e))?;
            Ok(vec![restriction])
        }
        "weekday-and-time-of-day" => node
            .field("restrictions")?
            .items()?
            .iter()
            .map(|r| {
                let day = |key: &str| -> Result<Weekday, Error> {
                    let n = r.field(key)?;
                    n.str()?
                        .parse::<Weekday>()
                        .map_err(|_| invalid(n.path(), "expected a weekday name"))
                };
                let (sh, sm) = hm(r, "startHour", "startMin")?;
                let (eh, em) = hm(r, "endHour", "endMin")?;
                Restriction::weekday_and_time(day("startDay")?, sh, sm, day("endDay")?, eh, em)
                    .map_err(|e| invalid(r.path(), e))
            })
            .collect(),
        other => Err(unsupported(
            kind.path(),
            format_args!("restriction type {other:?} is not supported"),
        )),
    }
}

/// Parses one timeline of a timeline answer: `finalTimeline` (always there), or one the request
/// asked `expand` for (`baseTimeline`, `overrideTimeline`; absent: none).
pub(crate) fn timeline(root: &Node<'_>, which: &str) -> Result<Vec<TimelineRotation>, Error> {
    let data = root.field("data")?;
    let Some(timeline) = (if which == "finalTimeline" {
        Some(data.field(which)?)
    } else {
        data.opt(which)?
    }) else {
        return Ok(Vec::new());
    };
    timeline
        .opt_items("rotations")?
        .iter()
        .map(|r| {
            let id = r.field("id")?.str()?.to_owned();
            let name = match r.opt("name")? {
                Some(n) => n.str()?.to_owned(),
                None => String::new(),
            };
            let order = r.opt("order")?.map(|o| o.f64()).transpose()?;
            // "periods" may be absent altogether (observed).
            let periods = r
                .opt_items("periods")?
                .iter()
                .map(period)
                .collect::<Result<Vec<_>, _>>()?;
            Ok(TimelineRotation {
                id,
                name,
                order,
                periods,
            })
        })
        .collect()
}

fn period(node: &Node<'_>) -> Result<TimelinePeriod, Error> {
    let start = node.field("startDate")?.instant()?;
    let end = node.field("endDate")?.instant()?;
    let kind = node
        .opt("type")?
        .map(|k| k.str().map(str::to_owned))
        .transpose()?;
    let recipient = match node.opt("recipient")? {
        None => Recipient::Nobody,
        Some(r) => match r.field("type")?.str()? {
            // A timeline names a user by username (the login email) in `name`; one whose name
            // is no email is reported like a team (its slot is empty), never fails the answer.
            "user" => match r.field("name")?.email() {
                Ok(email) => Recipient::User(email),
                Err(_) => Recipient::Other(non_user(&r, "user")?),
            },
            "none" => Recipient::Nobody,
            other => Recipient::Other(non_user(&r, other)?),
        },
    };
    Ok(TimelinePeriod {
        start,
        end,
        recipient,
        kind,
    })
}

/// An override as Opsgenie holds it: the core's override, and the rotations it names.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct HeldOverride {
    pub held: Override,
    /// As the vendor lists them; empty: every rotation (see [`crate::limits::limits`]).
    pub rotations: Vec<RotationRef>,
}

/// Parses one override (`data` of a get, an item of a list). One that names no person (`none`, a
/// team, an escalation, a kind this adapter does not know, a user by id only) names the reserved
/// email of its [`OverrideRecipient`]: it is kept, as a foreign override.
pub(crate) fn override_(node: &Node<'_>) -> Result<HeldOverride, Error> {
    let alias = node.field("alias")?.str()?;
    let user = node.field("user")?;
    let member = override_recipient(&user)?
        .email()
        .ok_or_else(|| invalid(user.path(), "a recipient no reserved email can carry"))?;
    let start = node.field("startDate")?.instant()?;
    let end = node.field("endDate")?.instant()?;
    let mut rotations = Vec::new();
    for r in node.opt_items("rotations")? {
        let text = |key: &str| -> Result<Option<String>, Error> {
            Ok(r.opt(key)?.map(|n| n.str()).transpose()?.map(str::to_owned))
        };
        let (id, name) = (text("id")?, text("name")?);
        if id.is_none() && name.is_none() {
            return Err(invalid(r.path(), "a rotation with neither id nor name"));
        }
        rotations.push(RotationRef { id, name });
    }
    Ok(HeldOverride {
        held: Override {
            id: OverrideId::new(alias),
            span: Span::new(start, end, member),
        },
        rotations,
    })
}

/// Who an override names: `{"type":"user","username":…}`, `{"type":"none"}`, a team or an
/// escalation by id, or anything else as [`OverrideRecipient::Other`] (a kind the API does not
/// list for overrides, a user named by id only).
fn override_recipient(user: &Node<'_>) -> Result<OverrideRecipient, Error> {
    let id = || -> Result<Option<String>, Error> {
        Ok(user
            .opt("id")?
            .map(|n| n.str())
            .transpose()?
            .map(str::to_owned))
    };
    let kind = user.field("type")?.str()?;
    let username = match user.opt("username")? {
        Some(n) => n.str().ok().and_then(|u| Email::parse(u).ok()),
        None => None,
    };
    Ok(match (kind, username, id()?) {
        ("user", Some(email), _) => OverrideRecipient::User(email),
        ("none", _, _) => OverrideRecipient::Nobody,
        ("team", _, Some(id)) => OverrideRecipient::Team(id),
        ("escalation", _, Some(id)) => OverrideRecipient::Escalation(id),
        (kind, _, id) => OverrideRecipient::Other {
            kind: kind.to_owned(),
            id,
        },
    })
}

/// `user` of a create or update body: the recipient `member` stands for (a user by username, or
/// `none`, a team or an escalation for the reserved emails), so that a cut keeps who it is.
fn user_json(member: &Email) -> Value {
    match OverrideRecipient::from_email(member) {
        OverrideRecipient::Nobody => json!({"type": "none"}),
        OverrideRecipient::Team(id) => json!({"type": "team", "id": id}),
        OverrideRecipient::Escalation(id) => json!({"type": "escalation", "id": id}),
        OverrideRecipient::Other { kind, id: Some(id) } => json!({"type": kind, "id": id}),
        OverrideRecipient::Other { kind, id: None } => json!({"type": kind}),
        _ => json!({"type": "user", "username": member.as_str()}),
    }
}

/// The alias a create or update answers (`data.alias`).
pub(crate) fn answered_alias(root: &Node<'_>) -> Result<OverrideId, Error> {
    let alias = root.field("data")?.field("alias")?;
    let text = alias.str()?;
    if text.is_empty() {
        return Err(invalid(alias.path(), "empty"));
    }
    Ok(OverrideId::new(text))
}

/// An instant as Opsgenie takes it: `yyyy-MM-dd'T'HH:mm:ssZ`, whole seconds.
pub(crate) fn wire_instant(t: DateTime<Utc>) -> String {
    t.to_rfc3339_opts(SecondsFormat::Secs, true)
}

/// The span as it goes on the wire and as the vendor keeps it: whole seconds.
pub(crate) fn wire_span(span: &Span) -> Span {
    let floor = |t: DateTime<Utc>| DateTime::from_timestamp(t.timestamp(), 0).unwrap_or(t);
    Span::new(floor(span.start), floor(span.end), span.member.clone())
}

/// The body of a create: the alias, the user by username (a reserved email as the recipient it
/// stands for), the span, and no `rotations` field, so that the override applies to every rotation
/// of the schedule (DESIGN §1.4).
pub(crate) fn create_body(span: &Span, alias: Option<&OverrideId>) -> Value {
    let mut body = update_body(span, &[]);
    if let (Some(alias), Value::Object(map)) = (alias, &mut body) {
        map.insert("alias".into(), Value::String(alias.to_string()));
    }
    body
}

/// The body of an update: a full replace of user and span, and the rotations of an override
/// limited to some (none: every rotation, and the field is left out, as in a create).
pub(crate) fn update_body(span: &Span, rotations: &[RotationRef]) -> Value {
    let mut body = json!({
        "user": user_json(&span.member),
        "startDate": wire_instant(span.start),
        "endDate": wire_instant(span.end),
    });
    if let (false, Value::Object(map)) = (rotations.is_empty(), &mut body) {
        let named = rotations.iter().map(RotationRef::json).collect();
        map.insert("rotations".into(), Value::Array(named));
    }
    body
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::{NaiveDate, TimeZone};

    /// The DXW capture of `GET /v2/schedules/{id}` (reference §2.3), with a restriction of each kind,
    /// a team and a `none` slot added.
    const SCHEDULE: &str = r#"{"data":{"id":"e71d500f-896a-4b28-8b08-3bfe56e1ed76","name":"first_line","description":"",
      "timezone":"Europe/London","enabled":true,
      "ownerTeam":{"id":"72c99d92-c7c8-4fd9-b8db-9cc293cd19e7","name":"support_team"},
      "rotations":[
       {"id":"69e7d46d-538e-4fca-95d0-5c316a54424e","name":"On Call Phone",
        "startDate":"2017-03-15T08:00:00Z","type":"daily","length":1,
        "participants":[{"type":"user","id":"19e39115-07d5-4924-8295-332a66dd1569","username":"systems@dxw.com"},
                        {"type":"none"},{"type":"team","id":"t1","name":"support_team"}],
        "timeRestriction":{"type":"time-of-day","restriction":{"startHour":9,"startMin":0,"endHour":17,"endMin":30}}},
       {"id":"b073c102-ecd5-4a6f-acf2-443280074c33","name":"Ops",
        "startDate":"2019-07-24T09:00:00Z","endDate":"2019-09-04T10:00:00Z","type":"weekly","length":1,
        "participants":[{"type":"user","id":"c0b51b7f","username":"olivia@dxw.com"},
                        {"type":"user","id":"8be02293","username":"bob@dxw.com"}],
        "timeRestriction":{"type":"weekday-and-time-of-day","restrictions":[
           {"startDay":"monday","endDay":"monday","startHour":10,"endHour":18,"startMin":0,"endMin":0},
           {"startDay":"friday","endDay":"monday","startHour":18,"endHour":10,"startMin":0,"endMin":0}]}}
      ]},
     "took":0.015,"requestId":"90c90a0d-6b0d-4f31-b2c0-c7487e0087f3"}"#;

    #[test]
    fn a_schedule_translates_to_the_core_model() {
        let v: Value = serde_json::from_str(SCHEDULE).unwrap();
        let s = schedule(&Node::root(&v).field("data").unwrap()).unwrap();
        assert_eq!(s.zone, chrono_tz::Europe::London);
        assert!(s.enabled);
        let phone = &s.rotations[0];
        // 08:00Z in March is 08:00 GMT: the local wall time of the first handoff.
        let local = NaiveDate::from_ymd_opt(2017, 3, 15)
            .unwrap()
            .and_hms_opt(8, 0, 0)
            .unwrap();
        assert_eq!(phone.rotation.start, local);
        assert_eq!(phone.rotation.unit, RotationUnit::Daily);
        assert_eq!(
            phone.rotation.participants,
            vec![
                Participant::Member(Email::parse("systems@dxw.com").unwrap()),
                Participant::Nobody,
                Participant::Nobody
            ]
        );
        assert_eq!(
            phone.non_users,
            vec![NonUser {
                kind: "team".into(),
                name: "support_team".into()
            }]
        );
        assert_eq!(
            phone.rotation.restrictions,
            vec![Restriction::time_of_day(9, 0, 17, 30).unwrap()]
        );
        let ops = &s.rotations[1];
        // 09:00Z in July is 10:00 BST.
        assert_eq!(ops.rotation.start.format("%H:%M").to_string(), "10:00");
        assert_eq!(
            ops.end,
            Some(Utc.with_ymd_and_hms(2019, 9, 4, 10, 0, 0).unwrap())
        );
        assert_eq!(
            ops.rotation.restrictions,
            vec![
                Restriction::weekday_and_time(Weekday::Mon, 10, 0, Weekday::Mon, 18, 0).unwrap(),
                Restriction::weekday_and_time(Weekday::Fri, 18, 0, Weekday::Mon, 10, 0).unwrap(),
            ]
        );
    }

    #[test]
    fn malformed_schedules_name_the_field() {
        let cases = [
            (
                r#"{"id":"s","timezone":"Mars/Olympus"}"#,
                "timezone: unknown time zone \"Mars/Olympus\"",
            ),
            (r#"{"id":"s"}"#, "timezone: missing"),
            (
                r#"{"id":"s","timezone":"UTC","rotations":[{"id":"r","type":"daily","participants":[]}]}"#,
                "rotations[0].startDate: missing",
            ),
            (
                r#"{"id":"s","timezone":"UTC","rotations":[{"id":"r","type":"monthly","startDate":"2024-01-01T00:00:00Z"}]}"#,
                "rotations[0].type: rotation type \"monthly\" is not supported",
            ),
            (
                r#"{"id":"s","timezone":"UTC","rotations":[{"id":"r","type":"daily","startDate":"2024-01-01T00:00:00Z","participants":[{"type":"user","username":"not-an-email"}]}]}"#,
                "rotations[0].participants[0].username",
            ),
        ];
        for (json, expect) in cases {
            let v: Value = serde_json::from_str(json).unwrap();
            let e = schedule(&Node::root(&v)).unwrap_err();
            // What cannot be translated is unsupported; what is malformed, an invalid response.
            let translatable =
                !expect.contains("unknown time zone") && !expect.contains("not supported");
            assert_eq!(
                matches!(e, Error::InvalidResponse { .. }),
                translatable,
                "{e:?}"
            );
            assert!(
                e.to_string().contains(expect),
                "{e} should contain {expect}"
            );
        }
    }

    #[test]
    fn bodies_name_the_user_and_no_rotation() {
        let span = Span::new(
            Utc.with_ymd_and_hms(2025, 7, 1, 6, 0, 0).unwrap(),
            Utc.with_ymd_and_hms(2025, 7, 2, 6, 0, 0).unwrap(),
            Email::parse("alice@example.com").unwrap(),
        );
        let body = create_body(&span, Some(&OverrideId::new("oncall-sync-3f2a9c0e")));
        assert_eq!(
            body,
            json!({"alias":"oncall-sync-3f2a9c0e","user":{"type":"user","username":"alice@example.com"},
                   "startDate":"2025-07-01T06:00:00Z","endDate":"2025-07-02T06:00:00Z"})
        );
        assert!(update_body(&span, &[]).get("rotations").is_none());
        assert!(update_body(&span, &[]).get("alias").is_none());
        let limited = [RotationRef {
            id: Some("r1".into()),
            name: Some("Ops".into()),
        }];
        assert_eq!(
            update_body(&span, &limited)["rotations"],
            json!([{"id": "r1"}])
        );
        // The reserved emails go back as the recipients they stand for.
        for (who, user) in [
            (OverrideRecipient::Nobody, json!({"type": "none"})),
            (
                OverrideRecipient::Team("t-1".into()),
                json!({"type": "team", "id": "t-1"}),
            ),
            (
                OverrideRecipient::Escalation("e-1".into()),
                json!({"type": "escalation", "id": "e-1"}),
            ),
        ] {
            let reserved = Span::new(span.start, span.end, who.email().unwrap());
            assert_eq!(update_body(&reserved, &[])["user"], user);
            assert_eq!(create_body(&reserved, None)["user"], user);
        }
    }

    #[test]
    fn overrides_of_every_recipient_are_read() {
        let item = |user: Value| {
            json!({"alias": "a", "user": user, "startDate": "2025-07-01T00:00:00Z",
                   "endDate": "2025-07-02T00:00:00Z", "rotations": []})
        };
        let member = |user: Value| {
            let v = item(user);
            override_(&Node::root(&v))
                .ok()
                .map(|o| o.held.span.member.to_string())
        };
        assert_eq!(
            member(json!({"type": "user", "username": "Ann@Example.com"})).as_deref(),
            Some("ann@example.com")
        );
        assert_eq!(
            member(json!({"type": "none"})).as_deref(),
            Some("nobody@opsgenie.invalid")
        );
        assert_eq!(
            member(json!({"type": "team", "id": "t-1", "name": "ops"})).as_deref(),
            Some("team.t-1@opsgenie.invalid")
        );
        assert_eq!(
            member(json!({"type": "escalation", "id": "e-1"})).as_deref(),
            Some("escalation.e-1@opsgenie.invalid")
        );
        // Kinds this adapter does not know, and a user by id only, are kept too.
        assert_eq!(
            member(json!({"type": "schedule", "id": "s"})).as_deref(),
            Some("recipient.schedule.s@opsgenie.invalid")
        );
        assert_eq!(
            member(json!({"type": "user", "id": "u-1"})).as_deref(),
            Some("recipient.user.u-1@opsgenie.invalid")
        );
        assert_eq!(
            member(json!({"type": "team", "name": "no id"})).as_deref(),
            Some("recipient.team@opsgenie.invalid")
        );
    }
}
