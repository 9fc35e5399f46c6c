//! The simulator's answers in the shapes the JSM Operations OpenAPI spec declares (the spec's
//! `ListSchedulesResponse`, `Schedule`, `Rotation`, `ListOverridesResponse`, `Override`,
//! `ScheduleTimelineResponse`, `ErrorResponses`, `UnauthorizedErrorResponse`; an OpenAPI copy of
//! the spec is `ops/v1/openapi.json` in shitchell/jira-cloud-rest-api), under every dialect: the
//! simulator is a reading of the vendor's documentation, not of the adapter (STYLE habit 14).
//! The shapes are written here from the spec; the raw answers are fetched over HTTP, not through
//! the adapter.

#![allow(clippy::unwrap_used)] // tests: a panic is the failure report

mod common;

use chrono::{DateTime, TimeDelta};
use common::{email, now, simulator_with_schedule};
use oncall_core::testkit::VendorSimulator;
use oncall_core::Span;
use oncall_jsm::testkit::{JsmDialect, JsmSimulator, ACCOUNT_EMAIL, CLOUD_ID, READ_WRITE_TOKEN};
use serde_json::{json, Value};

/// A JSON shape, as the spec declares it.
enum Shape {
    Str,
    DateTime,
    Int,
    Num,
    Bool,
    /// One of these strings.
    Enum(&'static [&'static str]),
    Array(Box<Shape>),
    /// Fields: name, shape, required. Fields the spec does not declare are refused.
    Object(Vec<(&'static str, Shape, bool)>),
    /// `null` or the shape.
    Nullable(Box<Shape>),
}

fn check(value: &Value, shape: &Shape, path: &str) {
    match shape {
        Shape::Str => assert!(value.is_string(), "{path}: a string, got {value}"),
        Shape::DateTime => {
            let text = value
                .as_str()
                .unwrap_or_else(|| panic!("{path}: a date-time, got {value}"));
            assert!(
                DateTime::parse_from_rfc3339(text).is_ok(),
                "{path}: {text:?} is no date-time"
            );
        }
        Shape::Int => assert!(
            value.is_i64() || value.is_u64(),
            "{path}: an integer, got {value}"
        ),
        Shape::Num => assert!(value.is_number(), "{path}: a number, got {value}"),
        Shape::Bool => assert!(value.is_boolean(), "{path}: a boolean, got {value}"),
        Shape::Enum(allowed) => {
            let text = value.as_str().unwrap_or_default();
            assert!(
                allowed.contains(&text),
                "{path}: {value} is not one of {allowed:?}"
            );
        }
        Shape::Array(item) => {
            let items = value
                .as_array()
                .unwrap_or_else(|| panic!("{path}: an array, got {value}"));
            for (i, v) in items.iter().enumerate() {
                check(v, item, &format!("{path}[{i}]"));
            }
        }
        Shape::Nullable(inner) => {
            if !value.is_null() {
                check(value, inner, path);
            }
        }
        Shape::Object(fields) => {
            let map = value
                .as_object()
                .unwrap_or_else(|| panic!("{path}: an object, got {value}"));
            for key in map.keys() {
                assert!(
                    fields.iter().any(|(name, _, _)| name == key),
                    "{path}.{key}: not in the spec"
                );
            }
            for (name, shape, required) in fields {
                match map.get(*name) {
                    Some(v) => check(v, shape, &format!("{path}.{name}")),
                    None => assert!(!required, "{path}.{name}: required"),
                }
            }
        }
    }
}

fn obj(fields: Vec<(&'static str, Shape, bool)>) -> Shape {
    Shape::Object(fields)
}

fn array(item: Shape) -> Shape {
    Shape::Array(Box::new(item))
}

fn responder(types: &'static [&'static str]) -> Shape {
    obj(vec![
        ("type", Shape::Enum(types), true),
        ("id", Shape::Str, false),
        ("deleted", Shape::Bool, false),
    ])
}

fn rotation() -> Shape {
    let time_of_day = obj(vec![
        ("startHour", Shape::Int, false),
        ("endHour", Shape::Int, false),
        ("startMin", Shape::Int, false),
        ("endMin", Shape::Int, false),
    ]);
    let weekday = obj(vec![
        ("startDay", Shape::Str, false),
        ("endDay", Shape::Str, false),
        ("startHour", Shape::Int, false),
        ("endHour", Shape::Int, false),
        ("startMin", Shape::Int, false),
        ("endMin", Shape::Int, false),
    ]);
    obj(vec![
        ("id", Shape::Str, false),
        ("name", Shape::Str, false),
        ("startDate", Shape::DateTime, false),
        ("endDate", Shape::DateTime, false),
        ("type", Shape::Enum(&["daily", "weekly", "hourly"]), false),
        ("length", Shape::Int, false),
        (
            "participants",
            array(responder(&["user", "team", "escalation", "noone"])),
            false,
        ),
        (
            "timeRestriction",
            obj(vec![
                ("type", Shape::Str, false),
                ("restriction", time_of_day, false),
                ("restrictions", array(weekday), false),
            ]),
            false,
        ),
    ])
}

fn schedule() -> Shape {
    obj(vec![
        ("id", Shape::Str, false),
        ("name", Shape::Str, false),
        ("description", Shape::Str, false),
        ("timezone", Shape::Str, false),
        ("enabled", Shape::Bool, false),
        ("teamId", Shape::Str, false),
        ("rotations", array(rotation()), false),
    ])
}

fn links() -> Shape {
    obj(vec![("next", Shape::Str, false)])
}

fn override_() -> Shape {
    obj(vec![
        ("alias", Shape::Str, false),
        ("responder", responder(&["user", "noone"]), false),
        ("startDate", Shape::DateTime, false),
        ("endDate", Shape::DateTime, false),
        (
            "rotationIds",
            Shape::Nullable(Box::new(array(Shape::Str))),
            false,
        ),
    ])
}

fn timeline() -> Shape {
    let period = obj(vec![
        ("startDate", Shape::DateTime, false),
        ("endDate", Shape::DateTime, false),
        (
            "type",
            Shape::Enum(&["base", "override", "forwarding", "historical"]),
            false,
        ),
        (
            "from",
            responder(&["user", "team", "escalation", "noone"]),
            false,
        ),
        (
            "responder",
            responder(&["user", "team", "escalation", "noone"]),
            false,
        ),
        (
            "flattenedResponders",
            array(responder(&["user", "team", "escalation", "noone"])),
            false,
        ),
    ]);
    let rotations = obj(vec![(
        "rotations",
        array(obj(vec![
            ("id", Shape::Str, false),
            ("name", Shape::Str, false),
            ("order", Shape::Num, false),
            ("deleted", Shape::Bool, false),
            ("periods", array(period), false),
        ])),
        false,
    )]);
    obj(vec![
        ("startDate", Shape::DateTime, false),
        ("endDate", Shape::DateTime, false),
        ("finalTimeline", rotations, false),
        ("_expands", array(Shape::Str), false),
    ])
}

fn errors() -> Shape {
    obj(vec![(
        "errors",
        array(obj(vec![
            ("title", Shape::Str, false),
            ("code", Shape::Str, false),
        ])),
        false,
    )])
}

/// The raw answer of a request, with the simulator's read-write account.
async fn fetch(
    sim: &JsmSimulator,
    method: reqwest::Method,
    path: &str,
    body: Option<Value>,
) -> (u16, Value) {
    let url = format!("{}/jsm/ops/api/{CLOUD_ID}/v1/{path}", sim.uri());
    let mut request = reqwest::Client::new()
        .request(method, url)
        .basic_auth(ACCOUNT_EMAIL, Some(READ_WRITE_TOKEN));
    if let Some(body) = body {
        request = request.json(&body);
    }
    let response = request.send().await.unwrap();
    let status = response.status().as_u16();
    let bytes = response.bytes().await.unwrap();
    (
        status,
        serde_json::from_slice(&bytes).unwrap_or(Value::Null),
    )
}

#[tokio::test]
async fn every_answer_has_the_shape_the_spec_declares() {
    for (name, dialect) in JsmDialect::variants() {
        let (sim, vs) = simulator_with_schedule(dialect).await;
        sim.insert_override(
            &vs,
            Span::new(
                now() + TimeDelta::hours(1),
                now() + TimeDelta::days(1),
                email("bob"),
            ),
        );
        let nobody = oncall_jsm::Responder::Nobody.email().unwrap();
        sim.insert_override(
            &vs,
            Span::new(
                now() + TimeDelta::days(2),
                now() + TimeDelta::days(3),
                nobody,
            ),
        );
        let get = reqwest::Method::GET;
        let (status, list) =
            fetch(&sim, get.clone(), "schedules?expand=rotation&size=10", None).await;
        assert_eq!(status, 200, "{name}");
        check(
            &list,
            &obj(vec![
                ("values", array(schedule()), false),
                ("links", links(), false),
                ("_expands", array(Shape::Str), false),
            ]),
            "schedules",
        );
        let (_, one) = fetch(&sim, get.clone(), "schedules/VS?expand=rotation", None).await;
        check(&one, &schedule(), "schedule");
        let (_, rotations) = fetch(&sim, get.clone(), "schedules/VS/rotations", None).await;
        check(
            &rotations,
            &obj(vec![
                ("values", array(rotation()), false),
                ("links", links(), false),
            ]),
            "rotations",
        );
        let (_, overrides) = fetch(&sim, get.clone(), "schedules/VS/overrides", None).await;
        check(
            &overrides,
            &obj(vec![
                ("values", array(override_()), false),
                ("links", links(), false),
            ]),
            "overrides",
        );
        let date = (now() - TimeDelta::days(1)).to_rfc3339();
        let (status, t) = fetch(
            &sim,
            get.clone(),
            &format!(
                "schedules/VS/timeline?interval=3&intervalUnit=days&date={}",
                date.replace('+', "%2B")
            ),
            None,
        )
        .await;
        assert_eq!(status, 200, "{name}: {t}");
        check(&t, &timeline(), "timeline");
        // A create, an update and the refusals, in their shapes.
        let account = sim.account_id(&email("ann")).unwrap();
        let body = json!({"responder": {"type": "user", "id": account},
                          "startDate": (now() + TimeDelta::days(5)).to_rfc3339(),
                          "endDate": (now() + TimeDelta::days(6)).to_rfc3339(),
                          "rotationIds": sim.rotation_ids(&vs)});
        let (status, created) = fetch(
            &sim,
            reqwest::Method::POST,
            "schedules/VS/overrides",
            Some(body.clone()),
        )
        .await;
        assert_eq!(status, 201, "{name}: {created}");
        check(&created, &override_(), "created");
        let alias = created["alias"].as_str().unwrap().to_owned();
        let (status, updated) = fetch(
            &sim,
            reqwest::Method::PUT,
            &format!("schedules/VS/overrides/{alias}"),
            Some(body),
        )
        .await;
        assert_eq!(status, 200, "{name}: {updated}");
        check(&updated, &override_(), "updated");
        let (status, missing) = fetch(
            &sim,
            get.clone(),
            "schedules/VS/overrides/no-such-alias",
            None,
        )
        .await;
        assert_eq!(status, 404);
        check(&missing, &errors(), "404");
        let (status, refused) = fetch(
            &sim,
            reqwest::Method::POST,
            "schedules/VS/overrides",
            Some(json!({"responder": {"type": "noone"}})),
        )
        .await;
        assert_eq!(status, 422);
        check(&refused, &errors(), "422");
        let unauthorized = reqwest::Client::new()
            .get(format!("{}/jsm/ops/api/{CLOUD_ID}/v1/schedules", sim.uri()))
            .basic_auth(ACCOUNT_EMAIL, Some("wrong"))
            .send()
            .await
            .unwrap();
        assert_eq!(unauthorized.status().as_u16(), 401);
        let body: Value = unauthorized.json().await.unwrap();
        check(
            &body,
            &obj(vec![
                ("code", Shape::Int, false),
                ("message", Shape::Str, false),
            ]),
            "401",
        );
    }
}
