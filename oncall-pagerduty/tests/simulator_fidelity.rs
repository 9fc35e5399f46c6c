//! The simulator answers as PagerDuty documents (the official spec and the reference), not as
//! the adapter assumes: the calls a downstream client (python-pagerduty's `iter_all`, `find`,
//! `get_total`) makes, driven over plain HTTP, each answer checked against what the spec says of
//! it.

#![allow(clippy::unwrap_used)] // tests: a panic is the failure report

use chrono::{NaiveDate, TimeDelta, TimeZone, Utc};
use oncall_core::testkit::VendorSimulator;
use oncall_core::{
    Email, Member, Participant, Restriction, Rotation, RotationUnit, Span, VendorSchedule,
    VendorScheduleId,
};
use oncall_pagerduty::testkit::{PagerDutyDialect, PagerDutySimulator, UnauthorizedBody};
use serde_json::Value;

fn email(name: &str) -> Email {
    Email::parse(&format!("{name}@example.com")).unwrap()
}

async fn get(sim: &PagerDutySimulator, path_and_query: &str) -> (u16, String, Value) {
    let answer = reqwest::Client::new()
        .get(format!("{}{path_and_query}", sim.uri()))
        .header(
            "Authorization",
            format!("Token token={}", PagerDutySimulator::READ_WRITE_KEY),
        )
        .header("Accept", "application/vnd.pagerduty+json;version=2")
        .header("Content-Type", "application/json")
        .send()
        .await
        .unwrap();
    let status = answer.status().as_u16();
    let content_type = answer
        .headers()
        .get("content-type")
        .and_then(|v| v.to_str().ok())
        .unwrap_or("")
        .to_owned();
    let body = answer.text().await.unwrap();
    (
        status,
        content_type,
        serde_json::from_str(&body).unwrap_or(Value::String(body)),
    )
}

async fn account() -> PagerDutySimulator {
    let now = Utc.with_ymd_and_hms(2024, 1, 10, 12, 0, 0).unwrap();
    let sim = PagerDutySimulator::start_at(now).await;
    sim.add_users(30, "crowd.example");
    let day = |d| {
        NaiveDate::from_ymd_opt(2024, 1, d)
            .unwrap()
            .and_hms_opt(9, 0, 0)
            .unwrap()
    };
    let mut layer = Rotation::new(
        "Days",
        RotationUnit::Daily,
        1,
        day(1),
        vec![
            Participant::Member(email("ann")),
            Participant::Member(email("bob")),
        ],
    );
    layer.restrictions =
        vec![
            Restriction::daily(chrono::NaiveTime::from_hms_opt(9, 0, 0).unwrap(), 8 * 3600)
                .unwrap(),
        ];
    for (id, name) in [("PLAYERS", "Platform primary"), ("POTHER", "Billing")] {
        sim.add_schedule(VendorSchedule {
            id: VendorScheduleId(id.into()),
            name: name.into(),
            zone: chrono_tz::Europe::Berlin,
            members: vec![
                Member::new(email("ann"), "Ann"),
                Member::new(email("bob"), "Bob"),
            ],
            rotations: vec![layer.clone()],
        });
    }
    let id = VendorScheduleId("PLAYERS".into());
    sim.insert_override(
        &id,
        Span::new(
            now - TimeDelta::hours(3),
            now + TimeDelta::hours(3),
            email("bob"),
        ),
    );
    sim.insert_override(
        &id,
        Span::new(
            now + TimeDelta::days(2),
            now + TimeDelta::days(3),
            email("ann"),
        ),
    );
    sim
}

#[tokio::test]
async fn total_is_counted_only_when_asked() {
    let sim = account().await;
    let (_, _, page) = get(&sim, "/users?limit=10").await;
    assert_eq!(page["total"], Value::Null, "null unless total=true");
    assert_eq!(page["more"], true);
    let (_, _, page) = get(&sim, "/users?limit=10&total=true").await;
    assert_eq!(page["total"], 32, "30 users and two members");
    let (_, _, page) = get(&sim, "/schedules?total=true").await;
    assert_eq!(page["total"], 2);
}

#[tokio::test]
async fn query_filters_users_by_name_or_email_and_schedules_by_name() {
    let sim = account().await;
    let (_, _, page) = get(&sim, "/users?query=ANN%40example.com").await;
    let emails: Vec<&str> = page["users"]
        .as_array()
        .unwrap()
        .iter()
        .map(|u| u["email"].as_str().unwrap())
        .collect();
    assert_eq!(emails, ["ann@example.com"]);
    let (_, _, page) = get(&sim, "/users?query=User%2012").await;
    assert_eq!(page["users"].as_array().unwrap().len(), 1, "by name");
    let (_, _, page) = get(&sim, "/schedules?query=platform").await;
    let names: Vec<&str> = page["schedules"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["name"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["Platform primary"]);
}

#[tokio::test]
async fn editable_lists_only_future_overrides_by_id() {
    let sim = account().await;
    let window = "since=2024-01-01T00:00:00Z&until=2024-02-01T00:00:00Z";
    let (status, _, all) = get(&sim, &format!("/schedules/PLAYERS/overrides?{window}")).await;
    assert_eq!(status, 200);
    assert_eq!(all["overrides"].as_array().unwrap().len(), 2);
    let (_, _, editable) = get(
        &sim,
        &format!("/schedules/PLAYERS/overrides?{window}&editable=true"),
    )
    .await;
    let items = editable["overrides"].as_array().unwrap();
    assert_eq!(
        items.len(),
        1,
        "only future overrides are editable: {editable}"
    );
    assert_eq!(
        items[0].as_object().unwrap().keys().collect::<Vec<_>>(),
        ["id"]
    );
    let (status, _, refused) = get(&sim, "/schedules/PLAYERS/overrides").await;
    assert_eq!(status, 400, "since and until are required: {refused}");
}

#[tokio::test]
async fn a_rendered_schedule_carries_its_coverage() {
    let sim = account().await;
    let (_, _, plain) = get(&sim, "/schedules/PLAYERS").await;
    let layer = &plain["schedule"]["schedule_layers"][0];
    assert!(
        layer.get("rendered_coverage_percentage").is_none(),
        "{layer}"
    );
    // One day, the layer on 09:00-17:00 Berlin (8 of 24 hours), bob's override 09:00-15:00 UTC.
    let (_, _, rendered) = get(
        &sim,
        "/schedules/PLAYERS?since=2024-01-10T00:00:00Z&until=2024-01-11T00:00:00Z",
    )
    .await;
    let s = &rendered["schedule"];
    let pct = |v: &Value| v["rendered_coverage_percentage"].as_f64().unwrap();
    assert!((pct(&s["schedule_layers"][0]) - 33.33).abs() < 0.01, "{s}");
    assert!(
        (pct(&s["overrides_subschedule"]) - 25.0).abs() < 0.01,
        "{s}"
    );
    // Final: the layer 08:00-16:00 UTC and the override 09:00-15:00: 08:00-16:00.
    assert!((pct(&s["final_schedule"]) - 33.33).abs() < 0.01, "{s}");
    assert_eq!(s["final_schedule"]["name"], "Final Schedule");
}

#[tokio::test]
async fn time_zone_renders_a_schedule_in_another_zone() {
    let sim = account().await;
    let (_, _, read) = get(
        &sim,
        "/schedules/PLAYERS?time_zone=America%2FNew_York&since=2024-01-10T00:00:00Z&until=2024-01-11T00:00:00Z",
    )
    .await;
    let s = &read["schedule"];
    assert_eq!(
        s["time_zone"], "Europe/Berlin",
        "the schedule keeps its zone"
    );
    let entry = &s["schedule_layers"][0]["rendered_schedule_entries"][0];
    assert_eq!(entry["start"], "2024-01-10T03:00:00-05:00", "{entry}");
    let restriction = &s["schedule_layers"][0]["restrictions"][0];
    assert_eq!(
        restriction["start_time_of_day"], "03:00:00",
        "{restriction}"
    );
    let (status, _, _) = get(&sim, "/schedules/PLAYERS?time_zone=Mars%2FBase").await;
    assert_eq!(status, 400);
}

#[tokio::test]
async fn the_users_on_call_in_a_window_are_listed() {
    let sim = account().await;
    let (status, _, page) = get(
        &sim,
        "/schedules/PLAYERS/users?since=2024-01-10T00:00:00Z&until=2024-01-10T12:00:00Z",
    )
    .await;
    assert_eq!(status, 200);
    let users = page["users"].as_array().unwrap();
    let emails: Vec<&str> = users.iter().map(|u| u["email"].as_str().unwrap()).collect();
    // bob's override from 09:00 UTC, the layer's ann or bob from 08:00 UTC (day 9 of the turn).
    assert!(emails.contains(&"bob@example.com"), "{page}");
    assert!(users.iter().all(|u| u["type"] == "user"));
}

#[tokio::test]
async fn a_bad_key_gets_json_unless_the_dialect_says_text() {
    for (body, json) in [
        (UnauthorizedBody::Json, true),
        (UnauthorizedBody::TextPlain, false),
    ] {
        let sim = PagerDutySimulator::start_with(
            Utc.with_ymd_and_hms(2024, 1, 1, 0, 0, 0).unwrap(),
            PagerDutyDialect {
                unauthorized_body: body,
                ..PagerDutyDialect::default()
            },
        )
        .await;
        let answer = reqwest::Client::new()
            .get(format!("{}/schedules", sim.uri()))
            .header("Authorization", "Token token=nope")
            .send()
            .await
            .unwrap();
        assert_eq!(answer.status(), 401);
        let content_type = answer.headers()["content-type"]
            .to_str()
            .unwrap()
            .to_owned();
        let text = answer.text().await.unwrap();
        let parsed = serde_json::from_str::<Value>(&text);
        assert_eq!(
            content_type.starts_with("application/json"),
            json,
            "{body:?}"
        );
        assert_eq!(parsed.is_ok(), json, "{body:?}: {text}");
        if json {
            assert!(parsed.unwrap()["error"]["message"].is_string());
        }
    }
}

/// Answers are JSON where the spec says so, and nothing the spec types as a string is null.
#[tokio::test]
async fn answers_carry_no_nulls_where_the_spec_types_strings() {
    let sim = account().await;
    for path in [
        "/users?limit=5",
        "/users/PU000001",
        "/schedules",
        "/schedules/PLAYERS",
    ] {
        let (status, content_type, body) = get(&sim, path).await;
        assert_eq!(status, 200, "{path}");
        assert!(content_type.starts_with("application/json"), "{path}");
        let text = body.to_string();
        for field in [
            "\"description\":null",
            "\"job_title\":null",
            "\"name\":null",
        ] {
            assert!(!text.contains(field), "{path}: {field} in {text}");
        }
    }
}
