//! The calls the vendors' official clients make, replayed byte for byte (headers and query
//! strings as those clients write them) on the simulators through the recording proxy; every
//! answer checked against the official spec, and against the behaviour the spec documents in words
//! for the parameters those calls use.
//!
//! - PagerDuty: `python-pagerduty` (PyPI `pagerduty`, PagerDuty/python-pagerduty @ 096632b):
//!   `Accept: application/vnd.pagerduty+json;version=2`, `Authorization: Token token=…`, its
//!   `User-Agent`, and `Content-Type: application/json` on POST, PUT and PATCH only
//!   (`ApiClient.prepare_headers`); `iter_all` pages with `limit=100&total=false&…&offset=N`,
//!   `get_total` asks `total=true&limit=1&offset=0`, `find` adds `query=`; `rget`, `rpost` (the
//!   create wrapped as `{"overrides": […]}`) and `rdelete`.
//! - Opsgenie: the official Python SDK (PyPI `opsgenie-sdk`, opsgenie/opsgenie-python-sdk, every
//!   tag through 2.1.5) has no schedule, rotation or override API at all; these are the calls of
//!   the official Go SDK (opsgenie/opsgenie-go-sdk-v2 @ 718e135, `schedule/`): `Accept:
//!   application/json`, `Authorization: GenieKey …`, `Content-Type: application/json;
//!   charset=utf-8` on writes and an empty one on GET and DELETE (`buildHttpRequest`), bodies
//!   ending in a newline (`json.Encoder`), query parameters sorted by name, dates as
//!   `2006-01-02T15:04:05.000Z`, rotations of an override named by `name` or `id`.

use chrono::{DateTime, FixedOffset, Offset, TimeDelta, TimeZone, Utc};
use oncall_sync::opsgenie::testkit::{self as og_kit, OpsgenieSimulator};
use oncall_sync::pagerduty::testkit::PagerDutySimulator;
use oncall_sync::testkit::VendorSimulator;
use oncall_sync::{
    Email, Member, Participant, Rotation, RotationUnit, Span, VendorSchedule, VendorScheduleId,
};
use serde_json::{json, Value};

use crate::spec_support::{
    assert_conforms, Exchange, Recorder, Rule, Side, Spec, Suite, Vendor, Violation,
};

const SCHEDULE: &str = "PCLIENT";

fn email(name: &str) -> Email {
    Email::parse(&format!("{name}@example.com")).unwrap()
}

fn now() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2024, 3, 4, 12, 0, 0).unwrap()
}

fn schedule() -> VendorSchedule {
    let start = chrono::NaiveDate::from_ymd_opt(2024, 2, 5)
        .unwrap()
        .and_hms_opt(9, 0, 0)
        .unwrap();
    let turn = |names: &[&str]| {
        names
            .iter()
            .map(|n| Participant::Member(email(n)))
            .collect()
    };
    VendorSchedule {
        id: VendorScheduleId(SCHEDULE.into()),
        name: "Platform".into(),
        zone: chrono_tz::Europe::Berlin,
        members: ["ann", "bob", "cat"]
            .iter()
            .map(|p| Member::new(email(p), format!("{p} Example")))
            .collect(),
        rotations: vec![
            Rotation::new(
                "primary",
                RotationUnit::Weekly,
                1,
                start,
                turn(&["ann", "bob"]),
            ),
            Rotation::new(
                "secondary",
                RotationUnit::Daily,
                1,
                start,
                turn(&["cat", "bob"]),
            ),
        ],
    }
}

/// A violation of behaviour the spec documents in words, found in `exchanges[index]`.
fn behaviour(
    vendor: Vendor,
    exchanges: &[Exchange],
    index: usize,
    detail: String,
) -> (usize, Violation) {
    let e = &exchanges[index];
    let op = Spec::of(vendor).find(&e.method, e.path());
    (
        index,
        Violation {
            vendor,
            side: Side::Answer,
            rule: Rule::Behaviour,
            method: e.method.clone(),
            path: op.map_or_else(|| e.path().to_owned(), |o| o.template.clone()),
            operation: op.map(|o| o.id.clone()),
            status: e.status(),
            location: String::new(),
            detail,
        },
    )
}

/// The body of an exchange's answer as JSON (`null` when it is not JSON).
fn answer_json(e: &Exchange) -> Value {
    e.answer
        .as_ref()
        .and_then(|a| a.json())
        .unwrap_or(Value::Null)
}

/// Replays requests as one client writes them, and remembers where each landed in the log.
struct Client<'a> {
    recorder: &'a Recorder,
    headers: Vec<(&'static str, String)>,
    /// Headers of requests with a body (python-pagerduty and the Go SDK add `Content-Type`).
    body_headers: Vec<(&'static str, String)>,
    /// Headers of requests without a body (GET, DELETE).
    bodiless_headers: Vec<(&'static str, String)>,
    /// Whether the JSON body ends with a newline (Go's `json.Encoder` writes one).
    newline: bool,
}

impl Client<'_> {
    /// Sends one request; returns its exchange's index in the recorder's log.
    fn send(&self, method: &str, target: &str, body: Option<Value>) -> usize {
        let mut headers: Vec<(&str, &str)> =
            self.headers.iter().map(|(n, v)| (*n, v.as_str())).collect();
        if body.is_some() {
            headers.extend(self.body_headers.iter().map(|(n, v)| (*n, v.as_str())));
        } else {
            headers.extend(self.bodiless_headers.iter().map(|(n, v)| (*n, v.as_str())));
        }
        let newline = if self.newline { "\n" } else { "" };
        let bytes = body
            .map(|b| format!("{b}{newline}").into_bytes())
            .unwrap_or_default();
        tokio::task::block_in_place(|| {
            self.recorder.send(method, target, &headers, &bytes);
            self.recorder.exchanges().len() - 1
        })
    }
}

fn python_pagerduty<'a>(recorder: &'a Recorder, key: &str) -> Client<'a> {
    Client {
        recorder,
        headers: vec![
            (
                "User-Agent",
                "python-pagerduty/7.0.0 httpx2/0.28.1 Python/3.12".into(),
            ),
            ("Accept", "application/vnd.pagerduty+json;version=2".into()),
            ("Accept-Encoding", "gzip, deflate".into()),
            ("Authorization", format!("Token token={key}")),
        ],
        body_headers: vec![("Content-Type", "application/json".into())],
        bodiless_headers: Vec::new(),
        newline: false,
    }
}

fn go_sdk<'a>(recorder: &'a Recorder, key: &str) -> Client<'a> {
    Client {
        recorder,
        headers: vec![
            ("Accept", "application/json".into()),
            ("Authorization", format!("GenieKey {key}")),
            (
                "User-Agent",
                "opsgenie-go-sdk-2.0.0 go1.22.5 (linux/amd64)".into(),
            ),
            ("Accept-Encoding", "gzip".into()),
        ],
        body_headers: vec![("Content-Type", "application/json; charset=utf-8".into())],
        // `buildHttpRequest` adds the `Content-Type` it holds, empty for GET and DELETE.
        bodiless_headers: vec![("Content-Type", String::new())],
        newline: true,
    }
}

/// Percent-encodes a query value as python's httpx and Go's `url.Values` do.
fn q(value: &str) -> String {
    url::form_urlencoded::byte_serialize(value.as_bytes()).collect()
}

fn iso(t: DateTime<Utc>) -> String {
    t.to_rfc3339_opts(chrono::SecondsFormat::Secs, false) // `+00:00`, as Python's isoformat()
}

/// Every date-time under `start`, `end` and `rotation_virtual_start` keys in `value` whose UTC
/// offset is not `zone`'s at that instant.
fn offsets_not_in(value: &Value, zone: chrono_tz::Tz, path: &str, wrong: &mut Vec<String>) {
    match value {
        Value::Object(map) => {
            for (k, v) in map {
                let here = format!("{path}/{k}");
                if let (true, Some(s)) = (
                    ["start", "end", "rotation_virtual_start"].contains(&k.as_str()),
                    v.as_str(),
                ) {
                    if let Ok(t) = DateTime::parse_from_rfc3339(s) {
                        let expected: FixedOffset =
                            zone.offset_from_utc_datetime(&t.naive_utc()).fix();
                        if *t.offset() != expected {
                            wrong.push(format!(
                                "{here} = {s} (the zone's offset there is {expected})"
                            ));
                        }
                    }
                }
                offsets_not_in(v, zone, &here, wrong);
            }
        }
        Value::Array(items) => {
            for (i, v) in items.iter().enumerate() {
                offsets_not_in(v, zone, &format!("{path}/{i}"), wrong);
            }
        }
        _ => {}
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn pagerduty_answers_python_pagerduty_as_the_spec_says() {
    let sim = PagerDutySimulator::start_at(now()).await;
    sim.add_schedule(schedule());
    sim.add_user("Zed Zulu", "zed@example.com");
    let (ann, bob) = (
        sim.user_id("ann@example.com").unwrap(),
        sim.user_id("bob@example.com").unwrap(),
    );
    let id = VendorScheduleId(SCHEDULE.into());
    // A running override and a future one, so that `editable` has something to leave out.
    sim.insert_override(
        &id,
        Span::new(
            now() - TimeDelta::hours(3),
            now() + TimeDelta::hours(5),
            email("cat"),
        ),
    );
    sim.insert_override(
        &id,
        Span::new(
            now() + TimeDelta::days(2),
            now() + TimeDelta::days(3),
            email("bob"),
        ),
    );
    let recorder = Recorder::start(&sim.uri());
    let pd = python_pagerduty(&recorder, PagerDutySimulator::READ_WRITE_KEY);
    let (since, until) = (
        iso(now() - TimeDelta::days(1)),
        iso(now() + TimeDelta::days(7)),
    );
    let window = format!("since={}&until={}", q(&since), q(&until));

    let all_users = pd.send("GET", "/users?limit=100&total=false&offset=0", None);
    let find_user = pd.send(
        "GET",
        "/users?limit=100&total=false&query=ann%40example.com&offset=0",
        None,
    );
    let total_users = pd.send("GET", "/users?total=true&limit=1&offset=0", None);
    let one_user = pd.send("GET", &format!("/users/{ann}"), None);
    let all_schedules = pd.send("GET", "/schedules?limit=100&total=false&offset=0", None);
    let find_schedule = pd.send(
        "GET",
        "/schedules?limit=100&total=false&query=Platform&offset=0",
        None,
    );
    let no_schedule = pd.send(
        "GET",
        "/schedules?limit=100&total=false&query=Nothing%20like%20it&offset=0",
        None,
    );
    let total_schedules = pd.send("GET", "/schedules?total=true&limit=1&offset=0", None);
    let _layers = pd.send(
        "GET",
        "/schedules?limit=100&total=false&include%5B%5D=schedule_layers&include%5B%5D=final_schedule&offset=0",
        None,
    );
    let _plain = pd.send("GET", &format!("/schedules/{SCHEDULE}"), None);
    let rendered = pd.send(
        "GET",
        &format!(
            "/schedules/{SCHEDULE}?{window}&time_zone={}",
            q("America/New_York")
        ),
        None,
    );
    let overrides = pd.send(
        "GET",
        &format!("/schedules/{SCHEDULE}/overrides?{window}"),
        None,
    );
    let editable = pd.send(
        "GET",
        &format!("/schedules/{SCHEDULE}/overrides?{window}&editable=true"),
        None,
    );
    let on_call_users = pd.send(
        "GET",
        &format!("/schedules/{SCHEDULE}/users?{window}"),
        None,
    );
    let start = now() + TimeDelta::days(4);
    let _created = pd.send(
        "POST",
        &format!("/schedules/{SCHEDULE}/overrides"),
        Some(json!({"overrides": [
            {"start": iso(start), "end": iso(start + TimeDelta::days(1)),
             "user": {"id": ann, "type": "user_reference"}, "time_zone": "UTC"},
            {"start": iso(start + TimeDelta::days(1)), "end": iso(start),
             "user": {"id": bob, "type": "user_reference"}, "time_zone": "UTC"},
        ]})),
    );
    let listed = answer_json(&recorder.exchanges()[overrides]);
    for o in listed["overrides"].as_array().into_iter().flatten() {
        pd.send(
            "DELETE",
            &format!(
                "/schedules/{SCHEDULE}/overrides/{}",
                o["id"].as_str().unwrap()
            ),
            None,
        );
    }
    pd.send("GET", "/schedules/PNOSUCH", None);
    let bad = python_pagerduty(&recorder, "notAKeyOfThisAccount");
    bad.send("GET", "/users?total=true&limit=1&offset=0", None);
    let read_only = python_pagerduty(&recorder, PagerDutySimulator::READ_ONLY_KEY);
    read_only.send(
        "POST",
        &format!("/schedules/{SCHEDULE}/overrides"),
        Some(
            json!({"overrides": [{"start": iso(start), "end": iso(start + TimeDelta::hours(2)),
                                     "user": {"id": ann, "type": "user_reference"}}]}),
        ),
    );

    let exchanges = recorder.exchanges();
    let v = Vendor::PagerDuty;
    let mut found = Vec::new();
    // `total`: "Set `total` to `true` for this field to be populated" (offset_total).
    let user_count = answer_json(&exchanges[all_users])["users"]
        .as_array()
        .map_or(0, Vec::len);
    let schedule_count = answer_json(&exchanges[all_schedules])["schedules"]
        .as_array()
        .map_or(0, Vec::len);
    for (i, expected) in [(total_users, user_count), (total_schedules, schedule_count)] {
        let total = &answer_json(&exchanges[i])["total"];
        if total.as_u64() != Some(expected as u64) {
            found.push(behaviour(
                v,
                &exchanges,
                i,
                format!("total=true: `total` is {total}, not {expected}"),
            ));
        }
    }
    // `query`: "showing only the records whose name matches the query" (users: or email).
    for (i, key, query) in [
        (find_user, "users", "ann@example.com"),
        (find_schedule, "schedules", "platform"),
        (no_schedule, "schedules", "nothing like it"),
    ] {
        for item in answer_json(&exchanges[i])[key]
            .as_array()
            .into_iter()
            .flatten()
        {
            let text = format!(
                "{} {}",
                item["name"].as_str().unwrap_or(""),
                item["email"].as_str().unwrap_or("")
            );
            if !text.to_lowercase().contains(query) {
                found.push(behaviour(
                    v,
                    &exchanges,
                    i,
                    format!("query={query}: {key} {} does not match", item["id"]),
                ));
            }
        }
    }
    // `editable`: "only editable overrides … only the id of the override … Only future overrides
    // are editable."
    let future: Vec<&str> = listed["overrides"]
        .as_array()
        .into_iter()
        .flatten()
        .filter(|o| {
            o["start"]
                .as_str()
                .and_then(|s| DateTime::parse_from_rfc3339(s).ok())
                .is_some_and(|s| s > now())
        })
        .filter_map(|o| o["id"].as_str())
        .collect();
    let editable_items: Vec<Value> = answer_json(&exchanges[editable])["overrides"]
        .as_array()
        .cloned()
        .unwrap_or_default();
    let editable_ids: Vec<&str> = editable_items
        .iter()
        .filter_map(|o| o["id"].as_str())
        .collect();
    if editable_ids != future {
        found.push(behaviour(
            v,
            &exchanges,
            editable,
            format!("editable=true: ids {editable_ids:?}, the future overrides are {future:?}"),
        ));
    }
    if editable_items
        .iter()
        .any(|o| o.as_object().is_some_and(|m| m.keys().any(|k| k != "id")))
    {
        found.push(behaviour(
            v,
            &exchanges,
            editable,
            "editable=true: items carry more than their id".into(),
        ));
    }
    // `since`/`until` on a schedule: "rendered_coverage_percentage … Returns null unless since or
    // until are set"; `time_zone`: "Time zone in which results will be rendered".
    let s = &answer_json(&exchanges[rendered])["schedule"];
    let mut parts: Vec<(String, &Value)> = vec![
        ("final_schedule".into(), &s["final_schedule"]),
        ("overrides_subschedule".into(), &s["overrides_subschedule"]),
    ];
    for (n, layer) in s["schedule_layers"]
        .as_array()
        .into_iter()
        .flatten()
        .enumerate()
    {
        parts.push((format!("schedule_layers/{n}"), layer));
    }
    for (name, part) in parts {
        if !part["rendered_coverage_percentage"].is_number() {
            found.push(behaviour(
                v,
                &exchanges,
                rendered,
                format!(
                    "since/until given: {name}/rendered_coverage_percentage is {}",
                    part["rendered_coverage_percentage"]
                ),
            ));
        }
    }
    let mut wrong = Vec::new();
    offsets_not_in(s, chrono_tz::America::New_York, "/schedule", &mut wrong);
    if !wrong.is_empty() {
        found.push(behaviour(
            v,
            &exchanges,
            rendered,
            format!(
                "time_zone=America/New_York: {} times in another offset, e.g. {}",
                wrong.len(),
                wrong[0]
            ),
        ));
    }
    // `GET /schedules/{id}/users`: "List the users on call for a given schedule".
    if exchanges[on_call_users].status() != Some(200) {
        found.push(behaviour(
            v,
            &exchanges,
            on_call_users,
            "the schedule exists: its on-call users are not served".into(),
        ));
    }
    let _ = one_user;
    assert!(
        exchanges.iter().filter(|e| e.method == "DELETE").count() >= 2,
        "the listed overrides were deleted"
    );
    assert_conforms(Suite::Clients, v, &exchanges, &found);
}

#[tokio::test(flavor = "multi_thread")]
async fn opsgenie_answers_the_go_sdk_as_the_spec_says() {
    let sim = OpsgenieSimulator::start_at(now()).await;
    sim.add_schedule(schedule());
    let id = VendorScheduleId(SCHEDULE.into());
    let rotation_ids = sim.rotation_ids(&id);
    let recorder = Recorder::start(&sim.uri());
    let og = go_sdk(&recorder, og_kit::READ_WRITE_KEY);
    let date = (now() - TimeDelta::days(1))
        .format("%Y-%m-%dT%H:%M:%S%.3fZ")
        .to_string();
    let at = |t: DateTime<Utc>| t.to_rfc3339_opts(chrono::SecondsFormat::Secs, true);
    let start = now() + TimeDelta::days(2);

    og.send("GET", "/v2/schedules?expand=rotation", None);
    og.send("GET", "/v2/schedules", None);
    og.send(
        "GET",
        &format!("/v2/schedules/{SCHEDULE}?identifierType=id"),
        None,
    );
    og.send("GET", "/v2/schedules/Platform?identifierType=name", None);
    let expanded = og.send(
        "GET",
        &format!("/v2/schedules/{SCHEDULE}/timeline?date={}&expand=base%2Cforwarding%2Coverride&identifierType=id&interval=2&intervalUnit=weeks", q(&date)),
        None,
    );
    og.send(
        "GET",
        &format!("/v2/schedules/{SCHEDULE}/timeline?identifierType=id&intervalUnit=days"),
        None,
    );
    let rotations = og.send(
        "GET",
        &format!("/v2/schedules/{SCHEDULE}/rotations?scheduleIdentifierType=id"),
        None,
    );
    og.send(
        "GET",
        &format!(
            "/v2/schedules/{SCHEDULE}/rotations/{}?scheduleIdentifierType=id",
            rotation_ids[0]
        ),
        None,
    );
    og.send(
        "POST",
        &format!("/v2/schedules/{SCHEDULE}/overrides?scheduleIdentifierType=id"),
        Some(json!({"alias": "go-sdk-by-name", "user": {"type": "user", "username": "ann@example.com"},
                    "startDate": at(start), "endDate": at(start + TimeDelta::hours(8)),
                    "rotations": [{"name": "primary"}]})),
    );
    let by_name = og.send(
        "GET",
        &format!("/v2/schedules/{SCHEDULE}/overrides/go-sdk-by-name?scheduleIdentifierType=id"),
        None,
    );
    og.send(
        "PUT",
        &format!("/v2/schedules/{SCHEDULE}/overrides/go-sdk-by-name?scheduleIdentifierType=id"),
        Some(
            json!({"user": {"type": "user", "username": "bob@example.com"},
                    "startDate": at(start), "endDate": at(start + TimeDelta::hours(10)),
                    "rotations": [{"id": rotation_ids[1]}]}),
        ),
    );
    og.send(
        "GET",
        &format!("/v2/schedules/{SCHEDULE}/overrides?scheduleIdentifierType=id"),
        None,
    );
    let unknown_rotation = og.send(
        "POST",
        &format!("/v2/schedules/{SCHEDULE}/overrides?scheduleIdentifierType=id"),
        Some(json!({"alias": "go-sdk-unknown-rotation", "user": {"type": "user", "username": "cat@example.com"},
                    "startDate": at(start), "endDate": at(start + TimeDelta::hours(1)),
                    "rotations": [{"name": "no such rotation"}]})),
    );
    og.send(
        "DELETE",
        &format!("/v2/schedules/{SCHEDULE}/overrides/go-sdk-by-name?scheduleIdentifierType=id"),
        None,
    );
    og.send(
        "GET",
        &format!("/v2/schedules/{SCHEDULE}/overrides/go-sdk-by-name?scheduleIdentifierType=id"),
        None,
    );
    og.send(
        "GET",
        "/v2/schedules/no-such-schedule?identifierType=id",
        None,
    );
    let bad = go_sdk(&recorder, "not-a-key-of-this-account");
    bad.send("GET", "/v2/schedules", None);
    let read_only = go_sdk(&recorder, og_kit::READ_ONLY_KEY);
    read_only.send(
        "POST",
        &format!("/v2/schedules/{SCHEDULE}/overrides?scheduleIdentifierType=id"),
        Some(
            json!({"user": {"type": "user", "username": "ann@example.com"},
                    "startDate": at(start), "endDate": at(start + TimeDelta::hours(1))}),
        ),
    );

    let exchanges = recorder.exchanges();
    let v = Vendor::Opsgenie;
    let mut found = Vec::new();
    // `expand` on the timeline: "Returns more detailed response with expanding it. Possible values
    // are 'base', 'forwarding', and 'override'".
    let data = &answer_json(&exchanges[expanded])["data"];
    for part in ["baseTimeline", "forwardingTimeline", "overrideTimeline"] {
        if data.get(part).is_none() {
            found.push(behaviour(
                v,
                &exchanges,
                expanded,
                format!("expand=base,forwarding,override: no {part}"),
            ));
        }
    }
    // An override's `rotations`: "Identifier (id or name) of rotations that override will apply".
    // One named by name reads back as that rotation, id and name.
    let listed: Vec<Value> = answer_json(&exchanges[rotations])["data"]
        .as_array()
        .cloned()
        .unwrap_or_default();
    let primary = listed
        .iter()
        .find(|r| r["name"] == "primary")
        .cloned()
        .unwrap_or(Value::Null);
    let read_back = &answer_json(&exchanges[by_name])["data"]["rotations"];
    if read_back != &json!([{"id": primary["id"], "name": "primary"}]) {
        found.push(behaviour(
            v,
            &exchanges,
            by_name,
            format!("rotations [{{\"name\": \"primary\"}}] read back as {read_back}, not that rotation ({})", primary["id"]),
        ));
    }
    // A rotation the schedule does not have cannot be what an override applies to.
    if exchanges[unknown_rotation]
        .status()
        .is_some_and(|s| s < 300)
    {
        found.push(behaviour(
            v,
            &exchanges,
            unknown_rotation,
            "an override for a rotation the schedule does not have was accepted".into(),
        ));
    }
    assert_conforms(Suite::Clients, v, &exchanges, &found);
}
