//! The checks catch what they claim to: for each rule, an exchange that breaks it is flagged, and
//! one that keeps it is not. Then the lists' own consistency, and the specs' own examples replayed
//! as exchanges (whatever of them breaks the spec's schemas is a known spec defect, or fails here).

use std::collections::HashSet;

use serde_json::{json, Value};

use crate::spec_support::listed::{
    self, sort, PendingFix, SpecDefect, KNOWN_SPEC_DEFECTS, PENDING_FIXES,
};
use crate::spec_support::{
    assert_conforms, Answer, Exchange, Rule, Side, Spec, Suite, Vendor, Violation,
};

const PD_HEADERS: [(&str, &str); 3] = [
    ("Accept", "application/vnd.pagerduty+json;version=2"),
    ("Content-Type", "application/json"),
    ("Authorization", "Token token=abcdefghij0123456789"),
];
const OG_HEADERS: [(&str, &str); 2] = [
    ("Accept", "application/json"),
    ("Authorization", "GenieKey k"),
];
const JSM_HEADERS: [(&str, &str); 2] = [
    ("Accept", "application/json"),
    ("Authorization", "Basic b3BzQGV4YW1wbGUuY29tOnQ="),
];

fn request(vendor: Vendor, method: &str, target: &str) -> Exchange {
    let headers = match vendor {
        Vendor::PagerDuty => PD_HEADERS.as_slice(),
        Vendor::Opsgenie => OG_HEADERS.as_slice(),
        Vendor::Jsm => JSM_HEADERS.as_slice(),
    };
    Exchange {
        method: method.into(),
        target: target.into(),
        headers: headers
            .iter()
            .map(|(n, v)| ((*n).into(), (*v).into()))
            .collect(),
        body: Vec::new(),
        answer: None,
    }
}

fn without(mut e: Exchange, header: &str) -> Exchange {
    e.headers.retain(|(n, _)| !n.eq_ignore_ascii_case(header));
    e
}

fn with_header(e: Exchange, name: &str, value: &str) -> Exchange {
    let mut e = without(e, name);
    e.headers.push((name.into(), value.into()));
    e
}

fn with_body(mut e: Exchange, body: &Value) -> Exchange {
    e.body = body.to_string().into_bytes();
    with_header(e, "Content-Type", "application/json")
}

fn answered(mut e: Exchange, status: u16, content_type: &str, body: &str) -> Exchange {
    let headers = if content_type.is_empty() {
        Vec::new()
    } else {
        vec![("Content-Type".into(), content_type.into())]
    };
    e.answer = Some(Answer {
        status,
        headers,
        body: body.as_bytes().to_vec(),
    });
    e
}

fn json_answer(e: Exchange, status: u16, body: &Value) -> Exchange {
    answered(e, status, "application/json", &body.to_string())
}

/// (side, rule, location) of every violation.
fn found(vendor: Vendor, e: &Exchange) -> Vec<(Side, Rule, String)> {
    Spec::of(vendor)
        .check(e)
        .into_iter()
        .map(|v| (v.side, v.rule, v.location))
        .collect()
}

fn assert_flags(vendor: Vendor, e: &Exchange, side: Side, rule: Rule, location: &str) {
    let all = found(vendor, e);
    assert!(
        all.iter()
            .any(|(s, r, l)| *s == side && *r == rule && l == location),
        "{} should flag {side:?} {rule:?} at {location:?}; it found {all:?}",
        e.summary()
    );
}

fn assert_clean(vendor: Vendor, e: &Exchange) {
    let all = Spec::of(vendor).check(e);
    assert!(all.is_empty(), "{}: {all:#?}", e.summary());
}

fn pd_schedule() -> Value {
    json!({"schedule": {"id": "P1", "type": "schedule", "time_zone": "UTC", "name": "Ops"}})
}

fn og_envelope(data: Value) -> Value {
    json!({"data": data, "took": 0.01, "requestId": "r-1"})
}

#[test]
fn conforming_exchanges_have_no_violation() {
    let pd = request(
        Vendor::PagerDuty,
        "GET",
        "/schedules/P1?since=2024-01-01T00%3A00%3A00%2B01%3A00&overflow=true",
    );
    assert_clean(Vendor::PagerDuty, &json_answer(pd, 200, &pd_schedule()));
    let delete = request(Vendor::PagerDuty, "DELETE", "/schedules/P1/overrides/Q1");
    assert_clean(Vendor::PagerDuty, &answered(delete.clone(), 204, "", ""));
    assert_clean(Vendor::PagerDuty, &answered(delete, 200, "", ""));
    let og = request(
        Vendor::Opsgenie,
        "GET",
        "/v2/schedules/abc?identifierType=id",
    );
    let schedule =
        json!({"id": "abc", "name": "Ops", "timezone": "UTC", "enabled": true, "rotations": []});
    assert_clean(
        Vendor::Opsgenie,
        &answered(
            og,
            200,
            "application/json;charset=UTF-8",
            &og_envelope(schedule).to_string(),
        ),
    );
    let timeline = request(Vendor::Opsgenie, "GET", "/v2/schedules/abc/timeline?identifierType=id&expand=base,override&interval=2&intervalUnit=days");
    assert_clean(Vendor::Opsgenie, &timeline);
}

#[test]
fn missing_headers_parameters_and_credentials_are_flagged() {
    let v = Vendor::PagerDuty;
    let get = request(v, "GET", "/schedules/P1");
    assert_flags(
        v,
        &without(get.clone(), "Content-Type"),
        Side::Request,
        Rule::MissingHeader,
        "Content-Type",
    );
    assert_flags(
        v,
        &without(get.clone(), "Accept"),
        Side::Request,
        Rule::MissingHeader,
        "Accept",
    );
    assert_flags(
        v,
        &without(get.clone(), "Authorization"),
        Side::Request,
        Rule::Authorization,
        "Authorization",
    );
    assert_flags(
        v,
        &with_header(get, "Authorization", "Bearer abc"),
        Side::Request,
        Rule::Authorization,
        "Authorization",
    );
    let list = request(
        v,
        "GET",
        "/schedules/P1/overrides?until=2024-01-02T00%3A00%3A00Z",
    );
    assert_flags(v, &list, Side::Request, Rule::MissingParameter, "since");
    let og = request(Vendor::Opsgenie, "GET", "/v2/schedules");
    assert_flags(
        Vendor::Opsgenie,
        &without(og, "Authorization"),
        Side::Request,
        Rule::Authorization,
        "Authorization",
    );
}

#[test]
fn parameters_of_the_wrong_type_or_value_are_flagged() {
    let v = Vendor::PagerDuty;
    assert_flags(
        v,
        &request(v, "GET", "/users?limit=ten"),
        Side::Request,
        Rule::BadParameter,
        "limit",
    );
    assert_flags(
        v,
        &request(v, "GET", "/users?total=yes"),
        Side::Request,
        Rule::BadParameter,
        "total",
    );
    assert_flags(
        v,
        &request(v, "GET", "/schedules?include%5B%5D=everything"),
        Side::Request,
        Rule::BadParameter,
        "include[]",
    );
    assert_flags(
        v,
        &request(
            v,
            "GET",
            "/schedules/P1/overrides?since=yesterday&until=2024-01-02T00%3A00%3A00Z",
        ),
        Side::Request,
        Rule::BadParameter,
        "since",
    );
    assert_flags(
        v,
        &request(v, "GET", "/users?team_ids%5B%5D=T1&team_ids%5B%5D=T1"),
        Side::Request,
        Rule::BadParameter,
        "team_ids[]",
    );
    let plain = with_header(request(v, "GET", "/users"), "Content-Type", "text/plain");
    assert_flags(v, &plain, Side::Request, Rule::BadHeader, "Content-Type");
    assert_clean(
        v,
        &with_header(
            request(v, "GET", "/users"),
            "Content-Type",
            "application/json; charset=utf-8",
        ),
    );
    let o = Vendor::Opsgenie;
    assert_flags(
        o,
        &request(o, "GET", "/v2/schedules/abc?identifierType=slug"),
        Side::Request,
        Rule::BadParameter,
        "identifierType",
    );
    assert_flags(
        o,
        &request(o, "GET", "/v2/schedules/abc/timeline?interval=two"),
        Side::Request,
        Rule::BadParameter,
        "interval",
    );
    assert_flags(
        o,
        &request(o, "GET", "/v2/schedules/abc/timeline?intervalUnit=years"),
        Side::Request,
        Rule::BadParameter,
        "intervalUnit",
    );
    assert_flags(
        o,
        &request(o, "GET", "/v2/schedules/abc/timeline?date=soon"),
        Side::Request,
        Rule::BadParameter,
        "date",
    );
    assert_flags(
        o,
        &request(
            o,
            "GET",
            "/v2/schedules/abc/timeline?expand=base&expand=override",
        ),
        Side::Request,
        Rule::BadParameter,
        "expand",
    );
    // The gotcha of the reference: sub-resources take `scheduleIdentifierType`, the timeline not.
    assert_flags(
        o,
        &request(
            o,
            "GET",
            "/v2/schedules/abc/timeline?scheduleIdentifierType=id",
        ),
        Side::Request,
        Rule::UndeclaredParameter,
        "scheduleIdentifierType",
    );
    assert_flags(
        o,
        &request(o, "GET", "/v2/schedules/abc/overrides?identifierType=id"),
        Side::Request,
        Rule::UndeclaredParameter,
        "identifierType",
    );
    assert_flags(
        o,
        &with_header(request(o, "GET", "/v2/schedules"), "Accept", "text/html"),
        Side::Request,
        Rule::BadHeader,
        "Accept",
    );
}

#[test]
fn unknown_operations_are_flagged() {
    let v = Vendor::PagerDuty;
    assert_flags(
        v,
        &request(v, "GET", "/incidents"),
        Side::Request,
        Rule::UnknownOperation,
        "",
    );
    let patch = Spec::of(v).check(&request(v, "PATCH", "/schedules/P1"));
    assert_eq!(patch.len(), 1, "{patch:?}");
    assert_eq!(patch[0].rule, Rule::UnknownOperation);
    assert!(
        patch[0].detail.contains("allows only"),
        "{}",
        patch[0].detail
    );
    let o = Vendor::Opsgenie;
    assert_flags(
        o,
        &request(o, "GET", "/v2/alerts"),
        Side::Request,
        Rule::UnknownOperation,
        "",
    );
}

#[test]
fn templates_with_more_literal_text_win() {
    let og = Spec::of(Vendor::Opsgenie);
    let id = |path: &str| og.find("GET", path).map(|o| o.id.clone());
    assert_eq!(id("/v2/schedules/on-calls").as_deref(), Some("listOnCalls"));
    assert_eq!(
        id("/v2/schedules/abc.ics").as_deref(),
        Some("exportSchedule")
    );
    assert_eq!(id("/v2/schedules/abc").as_deref(), Some("getSchedule"));
    assert_eq!(
        id("/v2/schedules/abc/overrides/x").as_deref(),
        Some("getScheduleOverride")
    );
    assert_eq!(
        id("/v2/schedules//overrides"),
        None,
        "a parameter is never empty"
    );
}

#[test]
fn the_credential_form_comes_from_the_security_scheme() {
    assert_eq!(
        Spec::of(Vendor::PagerDuty).auth_prefix(),
        Some("Token token=")
    );
    assert_eq!(Spec::of(Vendor::Opsgenie).auth_prefix(), None);
}

#[test]
fn request_bodies_are_checked() {
    let v = Vendor::PagerDuty;
    let post = request(v, "POST", "/schedules/P1/overrides");
    let item = json!({"start": "2024-01-01T00:00:00Z", "end": "2024-01-02T00:00:00Z", "user": {"id": "U1", "type": "user_reference"}});
    assert_clean(v, &with_body(post.clone(), &json!({"overrides": [item]})));
    let mut wrong = item.clone();
    wrong["start"] = json!(5);
    assert_flags(
        v,
        &with_body(post.clone(), &json!({"overrides": [wrong]})),
        Side::Request,
        Rule::RequestBody,
        "/overrides/0/start",
    );
    let mut no_user = item.clone();
    no_user.as_object_mut().unwrap().remove("user");
    assert_flags(
        v,
        &with_body(post.clone(), &json!({"overrides": [no_user]})),
        Side::Request,
        Rule::RequestBody,
        "/overrides/0",
    );
    let text = with_header(
        with_body(post.clone(), &json!({"overrides": []})),
        "Content-Type",
        "text/plain",
    );
    assert_flags(
        v,
        &text,
        Side::Request,
        Rule::RequestContentType,
        "Content-Type",
    );
    assert_flags(v, &post, Side::Request, Rule::RequestBody, "");
    let mut get_with_body = request(v, "GET", "/users");
    get_with_body.body = b"{}".to_vec();
    assert_flags(v, &get_with_body, Side::Request, Rule::RequestBody, "");
    let o = Vendor::Opsgenie;
    let create = request(
        o,
        "POST",
        "/v2/schedules/abc/overrides?scheduleIdentifierType=id",
    );
    let body = json!({"user": {"type": "user", "username": "ann@example.com"}, "startDate": "2024-01-01T00:00:00Z", "endDate": "2024-01-02T00:00:00Z"});
    assert_clean(o, &with_body(create.clone(), &body));
    let mut robot = body.clone();
    robot["user"]["type"] = json!("robot");
    assert_flags(
        o,
        &with_body(create.clone(), &robot),
        Side::Request,
        Rule::RequestBody,
        "/user/type",
    );
    let mut undated = body;
    undated.as_object_mut().unwrap().remove("endDate");
    assert_flags(
        o,
        &with_body(create, &undated),
        Side::Request,
        Rule::RequestBody,
        "",
    );
}

#[test]
fn answers_are_checked() {
    let v = Vendor::PagerDuty;
    let get = request(v, "GET", "/schedules/P1");
    assert_flags(
        v,
        &json_answer(get.clone(), 418, &json!({})),
        Side::Answer,
        Rule::UndeclaredStatus,
        "",
    );
    let mut no_zone = pd_schedule();
    no_zone["schedule"]
        .as_object_mut()
        .unwrap()
        .remove("time_zone");
    assert_flags(
        v,
        &json_answer(get.clone(), 200, &no_zone),
        Side::Answer,
        Rule::AnswerBody,
        "/schedule",
    );
    let mut v3 = pd_schedule();
    v3["schedule"]["type"] = json!("schedule_v3");
    assert_flags(
        v,
        &json_answer(get.clone(), 200, &v3),
        Side::Answer,
        Rule::AnswerBody,
        "/schedule/type",
    );
    assert_flags(
        v,
        &answered(get.clone(), 200, "text/plain", "ok"),
        Side::Answer,
        Rule::AnswerContentType,
        "Content-Type",
    );
    assert_flags(
        v,
        &answered(get.clone(), 200, "application/json", "{\"sched"),
        Side::Answer,
        Rule::AnswerBody,
        "",
    );
    assert_flags(
        v,
        &answered(get.clone(), 200, "application/json", ""),
        Side::Answer,
        Rule::AnswerBody,
        "",
    );
    assert_flags(
        v,
        &json_answer(get, 401, &json!({"error": {"code": "2006"}})),
        Side::Answer,
        Rule::AnswerBody,
        "/error/code",
    );
    let delete = request(v, "DELETE", "/schedules/P1/overrides/Q1");
    assert_flags(
        v,
        &answered(delete, 204, "application/json", "{}"),
        Side::Answer,
        Rule::AnswerBody,
        "",
    );
    // A success under an undeclared code: flagged, and its body still checked.
    let list = request(
        v,
        "GET",
        "/schedules/P1/overrides?since=2024-01-01T00%3A00%3A00Z&until=2024-01-02T00%3A00%3A00Z",
    );
    let bad = json_answer(
        list,
        200,
        &json!({"overrides": [{"start": "2024-01-01T00:00:00Z"}]}),
    );
    assert_flags(v, &bad, Side::Answer, Rule::UndeclaredStatus, "");
    assert_flags(v, &bad, Side::Answer, Rule::AnswerBody, "/overrides/0");
    let o = Vendor::Opsgenie;
    let listed = request(o, "GET", "/v2/schedules");
    assert_flags(
        o,
        &json_answer(listed.clone(), 200, &og_envelope(json!([]))),
        Side::Answer,
        Rule::AnswerBody,
        "",
    );
    let error = json!({"message": 5, "took": 0.1, "requestId": "r"});
    assert_flags(
        o,
        &json_answer(listed.clone(), 404, &error),
        Side::Answer,
        Rule::AnswerBody,
        "/message",
    );
    let no_envelope = json!({"message": "Could not authenticate"});
    assert_flags(
        o,
        &json_answer(listed, 401, &no_envelope),
        Side::Answer,
        Rule::AnswerBody,
        "",
    );
}

#[test]
fn swagger_discriminators_dispatch_to_their_subtypes() {
    let o = Vendor::Opsgenie;
    let get = request(o, "GET", "/v2/schedules/abc?identifierType=id");
    let with = |restriction: Value| {
        let rotation = json!({"id": "r", "type": "weekly", "participants": [{"type": "user", "username": "ann@example.com"}], "timeRestriction": restriction});
        json_answer(
            get.clone(),
            200,
            &og_envelope(json!({"id": "abc", "rotations": [rotation]})),
        )
    };
    let day = |d: &str| json!({"startDay": d, "startHour": 9, "startMin": 0, "endDay": "friday", "endHour": 17, "endMin": 0});
    assert_clean(
        o,
        &with(json!({"type": "weekday-and-time-of-day", "restrictions": [day("monday")]})),
    );
    assert_flags(
        o,
        &with(json!({"type": "weekday-and-time-of-day", "restrictions": [day("funday")]})),
        Side::Answer,
        Rule::AnswerBody,
        "/data/rotations/0/timeRestriction",
    );
    let many: Vec<Value> = (0..16).map(|_| day("monday")).collect();
    assert_flags(
        o,
        &with(json!({"type": "weekday-and-time-of-day", "restrictions": many})),
        Side::Answer,
        Rule::AnswerBody,
        "/data/rotations/0/timeRestriction",
    );
    assert_clean(
        o,
        &with(json!({"type": "time-of-day", "restriction": {"startHour": 9, "endHour": 17}})),
    );
    assert_flags(
        o,
        &with(json!({"type": "time-of-day", "restriction": {"startHour": "9"}})),
        Side::Answer,
        Rule::AnswerBody,
        "/data/rotations/0/timeRestriction",
    );
    assert_flags(
        o,
        &with(json!({"type": "monthly"})),
        Side::Answer,
        Rule::AnswerBody,
        "/data/rotations/0/timeRestriction/type",
    );
}

#[test]
fn nullable_becomes_null_allowed_and_nothing_more() {
    let og = Spec::of(Vendor::Opsgenie);
    assert!(og
        .check_schema("/definitions/TimelineRotation", &json!({"order": null}))
        .is_empty());
    assert!(og
        .check_schema("/definitions/TimelineRotation", &json!({"order": 1.5}))
        .is_empty());
    assert!(!og
        .check_schema("/definitions/TimelineRotation", &json!({"order": "first"}))
        .is_empty());
    assert!(!og
        .check_schema("/definitions/ScheduleRotation", &json!({"length": null}))
        .is_empty());
    let pd = Spec::of(Vendor::PagerDuty);
    assert!(pd
        .check_schema("/components/schemas/Pagination", &json!({"total": null}))
        .is_empty());
    assert!(!pd
        .check_schema("/components/schemas/Pagination", &json!({"more": null}))
        .is_empty());
}

static TEST_DEFECTS: &[SpecDefect] = &[SpecDefect {
    id: "test-defect",
    vendor: Vendor::PagerDuty,
    suites: &[],
    reason: "a test",
    applies: |_, v| v.rule == Rule::UndeclaredStatus,
}];

static TEST_PENDING: &[PendingFix] = &[
    PendingFix {
        id: "test-pending",
        vendor: Vendor::PagerDuty,
        component: "a test",
        what: "a test",
        issue: "none",
        suites: &[Suite::Flows],
        applies: |_, v| v.rule == Rule::MissingHeader,
    },
    PendingFix {
        id: "test-fixed",
        vendor: Vendor::PagerDuty,
        component: "a test",
        what: "a test",
        issue: "none",
        suites: &[Suite::Flows],
        applies: |_, _| false,
    },
];

#[test]
fn violations_are_sorted_into_the_lists_and_fixed_entries_reported() {
    let v = Vendor::PagerDuty;
    let e = json_answer(
        without(request(v, "GET", "/users/U1"), "Content-Type"),
        418,
        &json!({}),
    );
    let body = json_answer(
        request(v, "GET", "/users/U1"),
        200,
        &json!({"user": {"type": "user", "name": "A", "email": 5}}),
    );
    let exchanges = [e, body];
    let tally = listed::classify(Suite::Flows, v, &exchanges, &[], TEST_DEFECTS, TEST_PENDING);
    assert_eq!(tally.spec_defects.get("test-defect"), Some(&1));
    assert_eq!(tally.pending.get("test-pending"), Some(&1));
    assert_eq!(tally.stale, vec!["test-fixed"]);
    assert_eq!(tally.unlisted.len(), 1, "{:?}", tally.unlisted);
    assert!(
        tally.unlisted[0].contains("/user/email"),
        "{:?}",
        tally.unlisted
    );
    // Pending entries count only in their suites.
    let elsewhere = listed::classify(Suite::Cli, v, &exchanges, &[], TEST_DEFECTS, TEST_PENDING);
    assert!(elsewhere.pending.is_empty() && elsewhere.stale.is_empty());
    assert_eq!(elsewhere.unlisted.len(), 2);
}

#[test]
#[should_panic(expected = "neither known spec defects nor pending fixes")]
fn an_unlisted_violation_fails_the_suite() {
    let v = Vendor::PagerDuty;
    let e = json_answer(
        request(v, "GET", "/users/U1"),
        200,
        &json!({"user": {"type": "user", "name": "A", "email": 5}}),
    );
    assert_conforms(Suite::Flows, v, &[e], &[]);
}

#[test]
fn every_listed_entry_says_why() {
    let mut ids = HashSet::new();
    for d in KNOWN_SPEC_DEFECTS {
        assert!(ids.insert(d.id), "{} twice", d.id);
        assert!(d.reason.len() > 40, "{}: say why", d.id);
    }
    for p in PENDING_FIXES {
        assert!(ids.insert(p.id), "{} twice", p.id);
        assert!(
            !p.suites.is_empty() && p.what.len() > 40 && p.issue.starts_with("issue 13"),
            "{}",
            p.id
        );
        assert!(
            p.component.ends_with("(request)") || p.component.ends_with("(answer)"),
            "{}",
            p.id
        );
    }
}

/// A value for a path parameter: its example, or a made-up id.
fn fill(template: &str, spec: &Value) -> String {
    let examples: Vec<(String, String)> = spec["components"]["parameters"]
        .as_object()
        .into_iter()
        .flatten()
        .filter(|(_, p)| p["in"] == "path")
        .filter_map(|(_, p)| {
            Some((
                p["name"].as_str()?.to_owned(),
                p["example"].as_str()?.to_owned(),
            ))
        })
        .collect();
    let mut path = template.to_owned();
    while let (Some(a), Some(b)) = (path.find('{'), path.find('}')) {
        let name = &path[a + 1..b];
        let value = examples
            .iter()
            .find(|(n, _)| n == name)
            .map_or("PEXAMPL", |(_, v)| v.as_str())
            .to_owned();
        path.replace_range(a..=b, &value);
    }
    path
}

/// The `example` of each PagerDuty schema and parameter (Opsgenie's spec has none) against the
/// schema it illustrates.
#[test]
fn the_specs_schema_examples_fit_their_schemas() {
    let spec = Spec::of(Vendor::PagerDuty);
    let mut checked = 0;
    let mut broken = Vec::new();
    for (group, inner) in [("schemas", ""), ("parameters", "/schema")] {
        for (name, node) in spec.original()["components"][group].as_object().unwrap() {
            let mut places = vec![(
                format!("/components/{group}/{name}{inner}"),
                node.get("example"),
            )];
            for (i, branch) in node["allOf"].as_array().into_iter().flatten().enumerate() {
                places.push((
                    format!("/components/{group}/{name}/allOf/{i}"),
                    branch.get("example"),
                ));
            }
            for (pointer, example) in places {
                let Some(example) = example else { continue };
                checked += 1;
                for (at, message) in spec.check_schema(&pointer, example) {
                    broken.push(format!("{pointer} example at {at}: {message}"));
                }
            }
        }
    }
    assert!(checked >= 5, "only {checked} schema examples found");
    assert!(broken.is_empty(), "{broken:#?}");
}

/// Every example of every request body and answer in PagerDuty's spec (Opsgenie's has none),
/// replayed as an exchange: the request examples as a request with the required parameters, the
/// answer examples as the answer of their status.
#[test]
fn the_specs_own_examples_break_it_only_where_listed() {
    let v = Vendor::PagerDuty;
    let spec = Spec::of(v);
    let doc = spec.original();
    let resolve = |node: &Value| -> Value {
        match node["$ref"].as_str() {
            Some(r) => doc.pointer(&r[1..]).cloned().unwrap_or(Value::Null),
            None => node.clone(),
        }
    };
    let mut exchanges = Vec::new();
    let mut sides = Vec::new();
    for (template, item) in doc["paths"].as_object().unwrap() {
        for (method, op) in item.as_object().unwrap() {
            let Some(op) = op.as_object() else { continue };
            let mut query = Vec::new();
            for p in op
                .get("parameters")
                .and_then(Value::as_array)
                .into_iter()
                .flatten()
            {
                let p = resolve(p);
                if p["in"] == "query" && p["required"] == true {
                    query.push(format!(
                        "{}={}",
                        p["name"].as_str().unwrap(),
                        url::form_urlencoded::byte_serialize(
                            p["example"]
                                .as_str()
                                .unwrap_or("2024-01-01T00:00:00Z")
                                .as_bytes()
                        )
                        .collect::<String>()
                    ));
                }
            }
            let mut target = fill(template, doc);
            if !query.is_empty() {
                target = format!("{target}?{}", query.join("&"));
            }
            let mut base = request(v, &method.to_uppercase(), &target);
            if method == "post" && template == "/users" {
                base.headers
                    .push(("From".into(), "admin@example.com".into()));
            }
            if let Some(rb) = op.get("requestBody") {
                let rb = resolve(rb);
                for example in rb["content"]["application/json"]["examples"]
                    .as_object()
                    .into_iter()
                    .flatten()
                    .map(|(_, e)| e)
                {
                    exchanges.push(with_body(base.clone(), &example["value"]));
                    sides.push(Side::Request);
                }
            }
            for (status, r) in op["responses"].as_object().unwrap() {
                let r = resolve(r);
                for example in r["content"]["application/json"]["examples"]
                    .as_object()
                    .into_iter()
                    .flatten()
                    .map(|(_, e)| e)
                {
                    exchanges.push(json_answer(
                        base.clone(),
                        status.parse().unwrap(),
                        &example["value"],
                    ));
                    sides.push(Side::Answer);
                }
            }
        }
    }
    assert!(
        exchanges.len() >= 15,
        "only {} examples found",
        exchanges.len()
    );
    // Each example is checked on its own side: the requests that carry the answer examples are
    // made up here.
    let found: Vec<(usize, Violation)> = exchanges
        .iter()
        .enumerate()
        .flat_map(|(i, e)| Spec::of(v).check(e).into_iter().map(move |v| (i, v)))
        .filter(|(i, violation)| violation.side == sides[*i])
        .collect();
    let tally = sort(
        Suite::Examples,
        v,
        &exchanges,
        found,
        KNOWN_SPEC_DEFECTS,
        PENDING_FIXES,
    );
    eprintln!(
        "PagerDuty examples: {} checked; known spec defects {:?}",
        exchanges.len(),
        tally.spec_defects
    );
    assert!(
        tally.unlisted.is_empty(),
        "the spec's own examples break it where no known spec defect says so:\n{}",
        tally.unlisted.join("\n")
    );
}

/// The JSM document (written from the reference): Basic credentials, the cloudId path, the
/// site's user search and tenant info (public), override bodies and answers.
#[test]
fn jsm_exchanges_are_checked_against_the_reference_document() {
    let v = Vendor::Jsm;
    assert_eq!(Spec::of(v).auth_prefix(), Some("Basic "));
    let ops = "/jsm/ops/api/c-1/v1";
    let listing = request(v, "GET", &format!("{ops}/schedules/S1/overrides?size=50"));
    assert_clean(
        v,
        &json_answer(
            listing.clone(),
            200,
            &json!({"values": [{"alias": "a-1", "responder": {"type": "user", "id": "712020:x"},
                "startDate": "2024-03-01T09:00:00Z", "endDate": "2024-03-02T09:00:00Z",
                "rotationIds": null}], "links": {}}),
        ),
    );
    // An override in a shape the reference does not have.
    assert_flags(
        v,
        &json_answer(
            listing.clone(),
            200,
            &json!({"values": [{"alias": "a-1", "user": "ann"}], "links": {}}),
        ),
        Side::Answer,
        Rule::AnswerBody,
        "/values/0",
    );
    assert_flags(
        v,
        &with_header(listing.clone(), "Authorization", "GenieKey k"),
        Side::Request,
        Rule::Authorization,
        "Authorization",
    );
    assert_flags(
        v,
        &request(v, "GET", &format!("{ops}/schedules/S1/overrides?limit=5")),
        Side::Request,
        Rule::UndeclaredParameter,
        "limit",
    );
    // A create without its end.
    let create = request(v, "POST", &format!("{ops}/schedules/S1/overrides"));
    assert_clean(
        v,
        &with_body(
            create.clone(),
            &json!({"responder": {"type": "noone"}, "startDate": "2024-03-01T09:00:00Z",
                "endDate": "2024-03-02T09:00:00Z"}),
        ),
    );
    assert_flags(
        v,
        &with_body(
            create,
            &json!({"responder": {"type": "user", "id": "a"}, "startDate": "2024-03-01T09:00:00Z"}),
        ),
        Side::Request,
        Rule::RequestBody,
        "",
    );
    // The site: the tenant info needs no credential; the user search's 403 in Jira's shape.
    assert_clean(
        v,
        &json_answer(
            without(request(v, "GET", "/_edge/tenant_info"), "Authorization"),
            200,
            &json!({"cloudId": "c-1"}),
        ),
    );
    assert_clean(
        v,
        &json_answer(
            request(
                v,
                "GET",
                "/rest/api/3/user/search?query=ann%40example.com&maxResults=10",
            ),
            403,
            &json!({"errorMessages": ["You do not have the permission to see the specified users."], "errors": {}}),
        ),
    );
}
