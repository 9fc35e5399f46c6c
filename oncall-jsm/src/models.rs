//! JSM Operations' wire shapes (reference §2-§3; the spec's `Schedule`, `Rotation`, `Override`,
//! `ScheduleTimelineResponse`) and the bodies this adapter sends.
//!
//! Answers are read through [`Node`], so every malformed value is reported with its path. Only
//! the fields the sync uses are read. People are accountIds here: the provider maps them to and
//! from e-mails through its directory.

use chrono::{DateTime, SecondsFormat, Utc, Weekday};
use chrono_tz::Tz;
use oncall_core::{Error, Restriction, RotationUnit, Span};
use serde_json::{json, Value};

use crate::json::{invalid, Node};

/// Who a rotation slot, an override or a timeline period names, as the wire says it.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub(crate) enum WireResponder {
    /// A user, by accountId.
    User(String),
    /// `noone`.
    Nobody,
    /// A team, an escalation, or a kind this adapter does not know, with its id.
    Other { kind: String, id: String },
}

/// A schedule as JSM describes it.
#[derive(Debug, Clone)]
pub(crate) struct WireSchedule {
    pub id: String,
    pub name: String,
    pub zone: Tz,
    /// `None` when the answer had no `rotations` field (not expanded).
    pub rotations: Option<Vec<WireRotation>>,
}

/// A rotation as JSM describes it.
#[derive(Debug, Clone)]
pub(crate) struct WireRotation {
    pub id: String,
    pub name: String,
    pub start: DateTime<Utc>,
    pub end: Option<DateTime<Utc>>,
    pub unit: RotationUnit,
    pub length: u32,
    pub participants: Vec<WireResponder>,
    pub restrictions: Vec<Restriction>,
}

/// An override as JSM holds it.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct WireOverride {
    pub alias: String,
    pub responder: WireResponder,
    pub start: DateTime<Utc>,
    pub end: DateTime<Utc>,
    /// `None`: absent or `null` (every rotation, per the spec); `Some`: as listed.
    pub rotation_ids: Option<Vec<String>>,
}

/// One rotation of a timeline answer.
#[derive(Debug, Clone)]
pub(crate) struct TimelineRotation {
    pub id: String,
    pub name: String,
    /// The UI's order (a float); `None` when absent (a deleted rotation has none).
    pub order: Option<f64>,
    pub deleted: bool,
    pub periods: Vec<TimelinePeriod>,
}

/// One period of a timeline rotation.
#[derive(Debug, Clone)]
pub(crate) struct TimelinePeriod {
    pub start: DateTime<Utc>,
    pub end: DateTime<Utc>,
    pub responder: WireResponder,
}

/// A responder object: `{"type": "user", "id": "<accountId>"}`, `{"type": "noone"}`, a team or an
/// escalation by id.
pub(crate) fn responder(node: &Node<'_>) -> Result<WireResponder, Error> {
    let kind = node.field("type")?.str()?;
    let id = || -> Result<String, Error> { Ok(node.field("id")?.str()?.to_owned()) };
    Ok(match kind {
        "user" => WireResponder::User(id()?),
        "noone" | "none" => WireResponder::Nobody,
        other => WireResponder::Other {
            kind: other.to_owned(),
            id: node.opt_str("id")?.unwrap_or("(no id)").to_owned(),
        },
    })
}

/// Parses one schedule object (an item of a list, or a get).
pub(crate) fn schedule(node: &Node<'_>) -> Result<WireSchedule, Error> {
    let id = node.field("id")?.str()?.to_owned();
    let name = node
        .opt_str("name")?
        .map_or_else(|| id.clone(), str::to_owned);
    let tz = node.field("timezone")?;
    let zone: Tz = tz.str()?.parse().map_err(|_| {
        invalid(
            tz.path(),
            format_args!("unknown time zone {:?}", tz.str().unwrap_or_default()),
        )
    })?;
    let rotations = if node.has("rotations") {
        Some(
            node.opt_items("rotations")?
                .iter()
                .map(rotation)
                .collect::<Result<Vec<_>, _>>()?,
        )
    } else {
        None
    };
    Ok(WireSchedule {
        id,
        name,
        zone,
        rotations,
    })
}

/// Parses one rotation object.
pub(crate) fn rotation(node: &Node<'_>) -> Result<WireRotation, Error> {
    let id = node.field("id")?.str()?.to_owned();
    let name = node.opt_str("name")?.unwrap_or_default().to_owned();
    let start = node.field("startDate")?.instant()?;
    let end = node.opt("endDate")?.map(|n| n.instant()).transpose()?;
    let kind = node.field("type")?;
    let unit = match kind.str()? {
        "hourly" => RotationUnit::Hourly,
        "daily" => RotationUnit::Daily,
        "weekly" => RotationUnit::Weekly,
        other => {
            return Err(invalid(
                kind.path(),
                format_args!("unknown rotation type {other:?}"),
            ))
        }
    };
    let length = match node.opt("length")? {
        Some(n) if n.u32()? == 0 => return Err(invalid(n.path(), "length must be at least 1")),
        Some(n) => n.u32()?,
        None => 1,
    };
    let participants = node
        .opt_items("participants")?
        .iter()
        .map(responder)
        .collect::<Result<Vec<_>, _>>()?;
    let restrictions = match node.opt("timeRestriction")? {
        Some(r) => time_restriction(&r)?,
        None => Vec::new(),
    };
    Ok(WireRotation {
        id,
        name,
        start,
        end,
        unit,
        length,
        participants,
        restrictions,
    })
}

/// `time-of-day` has one `restriction`; `weekday-and-time-of-day` a list of `restrictions`. Hours
/// are local to the schedule's zone.
fn time_restriction(node: &Node<'_>) -> Result<Vec<Restriction>, Error> {
    let hm = |n: &Node<'_>, hour: &str, minute: &str| -> Result<(u32, u32), Error> {
        let m = match n.opt(minute)? {
            Some(m) => m.u32()?,
            None => 0,
        };
        let h = match n.opt(hour)? {
            Some(h) => h.u32()?,
            None => 0,
        };
        Ok((h, m))
    };
    // The spec's default type is `weekday-and-time-of-day`.
    let kind = node.opt_str("type")?.unwrap_or("weekday-and-time-of-day");
    match kind {
        "time-of-day" => {
            let r = node.field("restriction")?;
            let (sh, sm) = hm(&r, "startHour", "startMin")?;
            let (eh, em) = hm(&r, "endHour", "endMin")?;
            let restriction =
                Restriction::time_of_day(sh, sm, eh, em).map_err(|e| invalid(r.path(), e))?;
            Ok(vec![restriction])
        }
        "weekday-and-time-of-day" => node
            .opt_items("restrictions")?
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
        other => Err(invalid(
            &format!("{}.type", node.path()),
            format_args!("unknown restriction type {other:?}"),
        )),
    }
}

/// Parses one override (an item of a list, or the answer of a get, create or update).
pub(crate) fn override_(node: &Node<'_>) -> Result<WireOverride, Error> {
    let alias = node.field("alias")?;
    let text = alias.str()?;
    if text.is_empty() {
        return Err(invalid(alias.path(), "empty"));
    }
    let rotation_ids = match node.opt("rotationIds")? {
        None => None,
        Some(list) => Some(
            list.items()?
                .iter()
                .map(|n| n.str().map(str::to_owned))
                .collect::<Result<Vec<_>, _>>()?,
        ),
    };
    Ok(WireOverride {
        alias: text.to_owned(),
        responder: responder(&node.field("responder")?)?,
        start: node.field("startDate")?.instant()?,
        end: node.field("endDate")?.instant()?,
        rotation_ids,
    })
}

/// Parses a timeline answer's `finalTimeline`.
pub(crate) fn timeline(root: &Node<'_>) -> Result<Vec<TimelineRotation>, Error> {
    let Some(final_timeline) = root.opt("finalTimeline")? else {
        return Ok(Vec::new());
    };
    final_timeline
        .opt_items("rotations")?
        .iter()
        .map(|r| {
            let periods = r
                .opt_items("periods")?
                .iter()
                .map(period)
                .collect::<Result<Vec<_>, _>>()?;
            Ok(TimelineRotation {
                id: r.field("id")?.str()?.to_owned(),
                name: r.opt_str("name")?.unwrap_or_default().to_owned(),
                order: r.opt("order")?.map(|o| o.f64()).transpose()?,
                deleted: r
                    .opt("deleted")?
                    .map(|d| d.bool())
                    .transpose()?
                    .unwrap_or(false),
                periods,
            })
        })
        .collect()
}

fn period(node: &Node<'_>) -> Result<TimelinePeriod, Error> {
    // The spec names the person `responder`; Opsgenie said `recipient`, which some readers report
    // for JSM too (UNCONFIRMED): either is read.
    let who = match node.opt("responder")? {
        Some(r) => Some(r),
        None => node.opt("recipient")?,
    };
    Ok(TimelinePeriod {
        start: node.field("startDate")?.instant()?,
        end: node.field("endDate")?.instant()?,
        responder: who
            .map(|r| responder(&r))
            .transpose()?
            .unwrap_or(WireResponder::Nobody),
    })
}

/// An instant as JSM takes it: RFC 3339 in UTC, whole seconds.
pub(crate) fn wire_instant(t: DateTime<Utc>) -> String {
    t.to_rfc3339_opts(SecondsFormat::Secs, true)
}

/// The span as it goes on the wire: whole seconds.
pub(crate) fn wire_span(span: &Span) -> Span {
    let floor = |t: DateTime<Utc>| DateTime::from_timestamp(t.timestamp(), 0).unwrap_or(t);
    Span::new(floor(span.start), floor(span.end), span.member.clone())
}

/// The body of a create or an update: the responder, the span, and `rotationIds` only when given
/// (left out, the override applies to every rotation: the spec's "should be null to apply the
/// override to all rotations").
pub(crate) fn override_body(
    responder: Value,
    span: &Span,
    rotation_ids: Option<&[String]>,
) -> Value {
    let mut body = json!({
        "responder": responder,
        "startDate": wire_instant(span.start),
        "endDate": wire_instant(span.end),
    });
    if let (Some(ids), Value::Object(map)) = (rotation_ids, &mut body) {
        map.insert("rotationIds".into(), json!(ids));
    }
    body
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    /// Shaped after the spec's examples (`Schedule`, `Rotation`, `ResponderInfo`).
    const SCHEDULE: &str = r#"{"id":"f8f2a4ec-54b2-4513-865b-8cb3b81c9544","name":"Support Schedule",
      "description":"On-call schedule for support team","timezone":"America/New_York","enabled":true,
      "teamId":"cd68207b-c55d-4611-ab25-72fd0c439e9f",
      "rotations":[{"id":"3ce33f53-69be-4b92-8d34-a1df0efe642e","name":"Daily rotation",
        "startDate":"2023-11-10T05:00:00Z","endDate":"2024-04-28T10:00:00Z","type":"weekly","length":2,
        "participants":[{"type":"user","id":"14a994fd-78c6-4236-8b83-d107e5d32d6a"},{"type":"noone"},
                        {"type":"team","id":"t-1"}],
        "timeRestriction":{"type":"time-of-day","restriction":{"startHour":9,"endHour":17,"startMin":0,"endMin":30}}}]}"#;

    #[test]
    fn a_schedule_and_its_rotations_are_read() {
        let v: Value = serde_json::from_str(SCHEDULE).unwrap();
        let s = schedule(&Node::root(&v)).unwrap();
        assert_eq!(s.zone, chrono_tz::America::New_York);
        let r = &s.rotations.as_ref().unwrap()[0];
        assert_eq!((r.unit, r.length), (RotationUnit::Weekly, 2));
        assert_eq!(
            r.participants,
            vec![
                WireResponder::User("14a994fd-78c6-4236-8b83-d107e5d32d6a".into()),
                WireResponder::Nobody,
                WireResponder::Other {
                    kind: "team".into(),
                    id: "t-1".into()
                }
            ]
        );
        assert_eq!(
            r.end,
            Some(Utc.with_ymd_and_hms(2024, 4, 28, 10, 0, 0).unwrap())
        );
        assert_eq!(
            r.restrictions,
            vec![Restriction::time_of_day(9, 0, 17, 30).unwrap()]
        );
        let bare: Value = serde_json::json!({"id": "s", "timezone": "UTC"});
        assert!(schedule(&Node::root(&bare)).unwrap().rotations.is_none());
    }

    #[test]
    fn malformed_answers_name_the_field() {
        for (json, expect) in [
            (
                r#"{"id":"s","timezone":"Mars/Base"}"#,
                "timezone: unknown time zone",
            ),
            (
                r#"{"id":"s","timezone":"UTC","rotations":[{"id":"r","type":"monthly","startDate":"2024-01-01T00:00:00Z"}]}"#,
                "rotations[0].type: unknown rotation type",
            ),
            (
                r#"{"id":"s","timezone":"UTC","rotations":[{"id":"r","type":"daily","startDate":"2024-01-01T00:00:00Z","participants":[{"type":"user"}]}]}"#,
                "rotations[0].participants[0].id: missing",
            ),
        ] {
            let v: Value = serde_json::from_str(json).unwrap();
            let e = schedule(&Node::root(&v)).unwrap_err();
            assert!(e.to_string().contains(expect), "{e}");
        }
        let v =
            json!({"alias": "", "responder": {"type": "noone"}, "startDate": "x", "endDate": "y"});
        assert!(override_(&Node::root(&v))
            .unwrap_err()
            .to_string()
            .contains("alias: empty"));
    }

    #[test]
    fn overrides_and_timelines_in_the_spec_shapes() {
        // The spec's Override example.
        let v = json!({"alias": "c73c3ffa-dcc3-4f28-ad13-d150ec108fc9",
            "responder": {"type": "user", "id": "1626a3a7-e159-45e0-b067-b99210917b16"},
            "startDate": "2023-11-27T05:00:00Z", "endDate": "2023-11-28T10:00:00Z",
            "rotationIds": ["dec43451-becf-4d2b-99c6-2f98ff2c1eb3", "0c829882-7de3-431e-8b64-8edcca7606d8"]});
        let o = override_(&Node::root(&v)).unwrap();
        assert_eq!(o.rotation_ids.as_ref().map(Vec::len), Some(2));
        let every = json!({"alias": "a", "responder": {"type": "noone"}, "startDate": "2023-11-27T05:00:00Z",
                           "endDate": "2023-11-28T10:00:00Z", "rotationIds": null});
        let o = override_(&Node::root(&every)).unwrap();
        assert_eq!((o.responder, o.rotation_ids), (WireResponder::Nobody, None));
        // Periods from the spec's timeline example; `recipient` is read where `responder` is absent.
        let t = json!({"startDate": "2024-01-29T00:00:00Z", "endDate": "2024-02-12T00:00:00Z",
            "finalTimeline": {"rotations": [{"id": "r1", "name": "Primary Rotation", "order": 1, "deleted": false,
              "periods": [
                {"startDate": "2024-02-01T08:11:21.263Z", "endDate": "2024-02-01T08:12:19.866Z", "type": "historical",
                 "responder": {"id": "5b2b0e011b3a756623f4e25e", "type": "user"}},
                {"startDate": "2024-02-02T00:00:00Z", "endDate": "2024-02-03T07:00:00Z", "type": "base",
                 "recipient": {"id": "153c98d1", "type": "team"}}]},
              {"id": "gone", "deleted": true}]}});
        let rotations = timeline(&Node::root(&t)).unwrap();
        assert_eq!(rotations.len(), 2);
        assert_eq!(rotations[0].order, Some(1.0));
        assert_eq!(
            rotations[0].periods[0].responder,
            WireResponder::User("5b2b0e011b3a756623f4e25e".into())
        );
        assert!(
            matches!(&rotations[0].periods[1].responder, WireResponder::Other { kind, .. } if kind == "team")
        );
        assert!(rotations[1].deleted && rotations[1].periods.is_empty());
    }

    #[test]
    fn bodies_leave_rotation_ids_out_unless_given() {
        let span = Span::new(
            Utc.with_ymd_and_hms(2025, 7, 1, 6, 0, 0).unwrap(),
            Utc.with_ymd_and_hms(2025, 7, 2, 6, 0, 0).unwrap(),
            oncall_core::Email::parse("ann@example.com").unwrap(),
        );
        let who = json!({"type": "user", "id": "acc-1"});
        assert_eq!(
            override_body(who.clone(), &span, None),
            json!({"responder": {"type": "user", "id": "acc-1"},
                   "startDate": "2025-07-01T06:00:00Z", "endDate": "2025-07-02T06:00:00Z"})
        );
        let ids = ["r1".to_owned()];
        assert_eq!(
            override_body(who, &span, Some(&ids))["rotationIds"],
            json!(["r1"])
        );
    }
}
