//! Every endpoint and error path against wiremock with Opsgenie's answers checked in under
//! `tests/fixtures/`. Each mock insists on the key, the `Accept` header and the identifier-type
//! parameter; a catch-all mounted last fails the test on any other request (DESIGN R10).

#![allow(clippy::unwrap_used)] // tests: a panic is the failure report

use std::time::Duration;

use chrono::{DateTime, NaiveDate, Utc};
use oncall_core::{
    import_schedule, Email, Error, NewOverride, OverrideId, Participant, Provider, Resource,
    Restriction, RetryPolicy, RotationUnit, Span, VendorScheduleId, Window,
};
use oncall_opsgenie::{Note, OpsgenieProvider};
use serde_json::{json, Value};
use wiremock::matchers::{
    any, body_json, header, method, path, query_param, query_param_is_missing,
};
use wiremock::{Mock, MockBuilder, MockServer, ResponseTemplate};

const KEY: &str = "fixture-key-5d41402abc4b2a76";
const S1: &str = "e71d500f-896a-4b28-8b08-3bfe56e1ed76";
const ALIAS: &str = "oncall-sync-3f2a9c0e11223344";
/// The vendor's clock (its `Date` header) before the fixtures' overrides start.
const BEFORE: &str = "Tue, 01 Jul 2025 00:00:00 GMT";
/// The vendor's clock while the fixtures' first override runs.
const DURING: &str = "Wed, 02 Jul 2025 12:00:00 GMT";

fn fixture(name: &str) -> Value {
    let file = format!("{}/tests/fixtures/{name}", env!("CARGO_MANIFEST_DIR"));
    serde_json::from_str(&std::fs::read_to_string(&file).unwrap()).unwrap()
}

fn answer(status: u16, name: &str) -> ResponseTemplate {
    ResponseTemplate::new(status).set_body_json(fixture(name))
}

fn email(s: &str) -> Email {
    Email::parse(s).unwrap()
}

fn t(s: &str) -> DateTime<Utc> {
    DateTime::parse_from_rfc3339(s).unwrap().with_timezone(&Utc)
}

/// A mock of `verb` on `path` that requires the key and JSON.
fn call(verb: &str, p: &str) -> MockBuilder {
    Mock::given(method(verb))
        .and(path(p.to_owned()))
        .and(header("Authorization", format!("GenieKey {KEY}").as_str()))
        .and(header("Accept", "application/json"))
}

fn overrides_path(alias: Option<&str>) -> String {
    match alias {
        Some(a) => format!("/v2/schedules/{S1}/overrides/{a}"),
        None => format!("/v2/schedules/{S1}/overrides"),
    }
}

/// An override call: `scheduleIdentifierType=id` always.
fn override_call(verb: &str, alias: Option<&str>) -> MockBuilder {
    call(verb, &overrides_path(alias)).and(query_param("scheduleIdentifierType", "id"))
}

/// A write: JSON body.
fn write_call(verb: &str, alias: Option<&str>) -> MockBuilder {
    override_call(verb, alias).and(header("Content-Type", "application/json"))
}

/// Mounted last: any request no fixture mock took fails the test when the server drops.
async fn forbid_everything_else(server: &MockServer) {
    Mock::given(any())
        .respond_with(ResponseTemplate::new(500).set_body_string("outside the fixture's endpoints"))
        .with_priority(u8::MAX)
        .expect(0)
        .named("catch-all: a request outside R10 or without the identifier type")
        .mount(server)
        .await;
}

/// `GET /v2/schedules/{S1}`: read when a listed or fetched override names rotations, to tell an
/// override of every rotation from one limited to some.
async fn mount_schedule(server: &MockServer) {
    call("GET", &format!("/v2/schedules/{S1}"))
        .and(query_param("identifierType", "id"))
        .respond_with(answer(200, "get_schedule.json").insert_header("Date", BEFORE))
        .mount(server)
        .await;
}

fn provider_with(server: &MockServer, concurrency: usize, timeout: Duration) -> OpsgenieProvider {
    OpsgenieProvider::builder()
        .with_base_url(server.uri())
        .with_api_key(KEY)
        .with_retry(RetryPolicy {
            max_attempts: 4,
            base_delay: Duration::from_millis(1),
            max_delay: Duration::from_millis(5),
            max_total_delay: Duration::from_secs(3),
        })
        .with_timeout(timeout)
        .with_max_concurrency(concurrency)
        .without_rate_limit()
        .build()
        .unwrap()
}

fn provider(server: &MockServer) -> OpsgenieProvider {
    provider_with(server, 4, Duration::from_secs(2))
}

/// The key never shows in an error (R8's messages name the connection, never the key).
fn no_key<T: std::fmt::Debug>(result: &Result<T, Error>) {
    if let Err(e) = result {
        assert!(!format!("{e} {e:?}").contains(KEY), "the key leaked: {e:?}");
    }
}

async fn requests(server: &MockServer) -> usize {
    server.received_requests().await.unwrap().len()
}

fn s1() -> VendorScheduleId {
    VendorScheduleId(S1.into())
}

fn span(start: &str, end: &str, who: &str) -> Span {
    Span::new(t(start), t(end), email(who))
}

/// `GET …/overrides/{alias}` answering an override of every rotation with `held`: what a create
/// or an update reads back (issue 13, defect 8: the span answered is the one the vendor holds).
/// Its `Date` is before every fixture's span (the vendor's clock never goes back, so an earlier
/// `Date` leaves a later one standing).
async fn mount_held(server: &MockServer, alias: &str, held: &Span) {
    override_call("GET", Some(alias))
        .respond_with(
            ResponseTemplate::new(200)
                .insert_header("Date", BEFORE)
                .set_body_json(json!({"data": {
            "alias": alias, "user": {"type": "user", "username": held.member.as_str()},
            "startDate": held.start.to_rfc3339(), "endDate": held.end.to_rfc3339(),
            "rotations": []}, "took": 0.01, "requestId": "r"})),
        )
        .mount(server)
        .await;
}

/// Listing reads configuration only (issue 13, defect 4): one call, no timeline, the rotations
/// in the vendor's array order. Reading one schedule settles the UI's order with one short
/// timeline read.
#[tokio::test]
async fn lists_schedules_in_array_order_and_reads_one_in_timeline_order() {
    let server = MockServer::start().await;
    call("GET", "/v2/schedules")
        .and(query_param("expand", "rotation"))
        .respond_with(answer(200, "list_schedules.json"))
        .expect(2)
        .mount(&server)
        .await;
    call("GET", &format!("/v2/schedules/{S1}"))
        .and(query_param("identifierType", "id"))
        .respond_with(answer(200, "get_schedule.json"))
        .expect(1)
        .mount(&server)
        .await;
    // The order needs one short timeline read, and only for a schedule with two rotations or more.
    call("GET", &format!("/v2/schedules/{S1}/timeline"))
        .and(query_param("identifierType", "id"))
        .and(query_param("interval", "1"))
        .and(query_param("intervalUnit", "days"))
        .and(query_param_is_missing("date"))
        .respond_with(answer(200, "timeline_order.json"))
        .expect(1)
        .mount(&server)
        .await;
    forbid_everything_else(&server).await;
    let p = provider(&server);

    let listed = p.list_schedules().await.unwrap();
    assert!(listed.unreadable.is_empty(), "{:?}", listed.unreadable);
    let schedules = listed.schedules;
    assert_eq!(schedules.len(), 2);
    let one = p.schedule(&s1()).await.unwrap();
    let names: Vec<_> = one.rotations.iter().map(|r| r.name.as_str()).collect();
    assert_eq!(
        names,
        ["On Call Phone", "Ops", "Dev 2020-06-24 to 2020-12-23"],
        "timeline order 2.0 before 3.0, then the one without an order, not array order"
    );
    let first = &schedules[0];
    assert_eq!(first.zone, chrono_tz::Europe::London);
    let names: Vec<_> = first.rotations.iter().map(|r| r.name.as_str()).collect();
    assert_eq!(names, ["Ops", "On Call Phone"], "the vendor's array order");
    let members: Vec<_> = first.members.iter().map(|m| m.email.as_str()).collect();
    assert_eq!(
        members,
        [
            "carlos@example.com",
            "bob@example.com",
            "systems@example.com"
        ]
    );
    let phone = &first.rotations[1];
    assert_eq!(
        phone.participants[1],
        Participant::Nobody,
        "a team's slot is nobody"
    );
    assert_eq!(
        phone.restrictions,
        vec![Restriction::time_of_day(9, 0, 17, 30).unwrap()]
    );
    let ops = &first.rotations[0];
    assert_eq!(ops.unit, RotationUnit::Weekly);
    assert_eq!(ops.restrictions.len(), 2);
    let second = &schedules[1];
    assert_eq!(second.zone, chrono_tz::America::New_York);
    let nights = &second.rotations[0];
    assert_eq!((nights.unit, nights.length), (RotationUnit::Hourly, 12));
    // 05:00Z on 2024-01-01 is midnight in New York: the local wall time of the first handoff.
    let midnight = NaiveDate::from_ymd_opt(2024, 1, 1)
        .unwrap()
        .and_hms_opt(0, 0, 0)
        .unwrap();
    assert_eq!(nights.start, midnight);
    assert_eq!(
        nights.participants,
        vec![
            Participant::Member(email("bob@example.com")),
            Participant::Nobody
        ]
    );

    let details = p.list_schedule_details().await.unwrap().schedules;
    assert!(details[0].enabled);
    assert!(
        !details[1].enabled,
        "a disabled schedule is listed, and says so"
    );
    assert_eq!(
        details[0].notes,
        vec![Note::NonUserParticipant {
            rotation: "On Call Phone".into(),
            kind: "team".into(),
            name: "support_team".into()
        }]
    );
}

/// The schedule and its timelines for the import tests.
async fn mount_schedule_and_timelines(server: &MockServer) {
    call("GET", &format!("/v2/schedules/{S1}"))
        .and(query_param("identifierType", "id"))
        .respond_with(answer(200, "get_schedule.json"))
        .mount(server)
        .await;
    call("GET", &format!("/v2/schedules/{S1}/timeline"))
        .and(query_param("identifierType", "id"))
        .and(query_param_is_missing("date"))
        .respond_with(answer(200, "timeline_order.json"))
        .mount(server)
        .await;
    call("GET", &format!("/v2/schedules/{S1}/timeline"))
        .and(query_param("identifierType", "id"))
        .and(query_param("date", "2020-06-22T00:00:00.000Z"))
        .and(query_param("interval", "3"))
        .and(query_param("intervalUnit", "days"))
        .respond_with(answer(200, "timeline.json"))
        .mount(server)
        .await;
    forbid_everything_else(server).await;
}

#[tokio::test]
async fn reads_one_schedule() {
    let server = MockServer::start().await;
    mount_schedule_and_timelines(&server).await;
    let s = provider(&server).schedule(&s1()).await.unwrap();
    let names: Vec<_> = s.rotations.iter().map(|r| r.name.as_str()).collect();
    // Ops 3.0 and the phone 2.0 in the timeline; the Dev rotation is not there: it goes last.
    assert_eq!(
        names,
        ["On Call Phone", "Ops", "Dev 2020-06-24 to 2020-12-23"]
    );
    let dev = &s.rotations[2];
    // 2020-12-23 08:00Z is 08:00 GMT.
    assert_eq!(
        dev.end.unwrap().format("%Y-%m-%d %H:%M").to_string(),
        "2020-12-23 08:00"
    );
}

#[tokio::test]
async fn imports_the_final_timeline_joined_and_clipped() {
    let server = MockServer::start().await;
    mount_schedule_and_timelines(&server).await;
    let p = provider(&server);
    let window = Window::new(t("2020-06-22T00:00:00Z"), t("2020-06-23T00:00:00Z")).unwrap();

    let report = p.on_call_report(&s1(), window).await.unwrap();
    let names: Vec<_> = report.timelines.iter().map(|r| r.name.as_str()).collect();
    assert_eq!(
        names,
        ["On Call Phone", "Ops"],
        "the Dev rotation starts after the window"
    );
    assert!(
        report.timelines[0].periods.is_empty(),
        "no `periods` key: none"
    );
    let ops: Vec<_> = report.timelines[1]
        .periods
        .iter()
        .map(|p| (p.start, p.end, p.member.as_str()))
        .collect();
    assert_eq!(
        ops,
        [
            // historical 09:00-11:30:14.401 and default from 11:30:14.401, joined.
            (
                t("2020-06-22T09:00:00Z"),
                t("2020-06-22T17:00:00Z"),
                "carlos@example.com"
            ),
            (
                t("2020-06-22T17:00:00Z"),
                t("2020-06-22T20:00:00Z"),
                "bob@example.com"
            ),
        ]
    );
    assert!(report.notes.contains(&Note::NonUserOnCall {
        rotation: "Ops".into(),
        kind: "team".into(),
        name: "support_team".into()
    }));
    assert!(report.notes.iter().any(
        |n| matches!(n, Note::RotationOutsideWindow { rotation, .. } if rotation.starts_with("Dev"))
    ));

    // The core's import over the provider: roles by timeline order, merged into shifts.
    let rota = import_schedule(&p, &s1(), window).await.unwrap();
    assert_eq!(rota.roles(), ["primary", "secondary"]);
    let shifts: Vec<_> = rota
        .shifts()
        .iter()
        .map(|s| (s.start, s.end, s.assignees.clone()))
        .collect();
    assert_eq!(
        shifts,
        [
            (
                t("2020-06-22T09:00:00Z"),
                t("2020-06-22T17:00:00Z"),
                vec![None, Some(email("carlos@example.com"))]
            ),
            (
                t("2020-06-22T17:00:00Z"),
                t("2020-06-22T20:00:00Z"),
                vec![None, Some(email("bob@example.com"))]
            ),
        ]
    );
}

#[tokio::test]
async fn lists_overrides_overlapping_the_window_whole_and_sorted() {
    let server = MockServer::start().await;
    mount_schedule(&server).await;
    override_call("GET", None)
        .respond_with(answer(200, "overrides.json"))
        .mount(&server)
        .await;
    forbid_everything_else(&server).await;
    let window = Window::new(t("2025-07-01T00:00:00Z"), t("2025-07-02T12:00:00Z")).unwrap();
    let listed = provider(&server)
        .list_overrides(&s1(), window)
        .await
        .unwrap();
    let got: Vec<_> = listed
        .iter()
        .map(|o| (o.id.as_str(), o.span.clone()))
        .collect();
    assert_eq!(
        got,
        [
            // An override that names nobody, under its reserved email.
            (
                "a-nobody-override",
                span(
                    "2025-07-01T00:00:00Z",
                    "2025-07-05T00:00:00Z",
                    "nobody@opsgenie.invalid"
                )
            ),
            // +02:00 and fractional seconds read; the username lower-cased.
            (
                "2d3a8b8e-6c1f-4a55-9a2e-11c8e0c0a5f0",
                span(
                    "2025-07-01T06:00:00Z",
                    "2025-07-01T12:00:00Z",
                    "bob@example.com"
                )
            ),
            // Unclipped, though the window ends at 12:00 on the 2nd.
            (
                ALIAS,
                span(
                    "2025-07-02T06:00:00Z",
                    "2025-07-03T06:00:00Z",
                    "alice@example.com"
                )
            ),
        ],
        "the one long ago is not listed"
    );
}

#[tokio::test]
async fn looks_up_an_override_by_alias() {
    let server = MockServer::start().await;
    mount_schedule(&server).await;
    override_call("GET", Some(ALIAS))
        .respond_with(answer(200, "get_override.json"))
        .mount(&server)
        .await;
    override_call("GET", Some("gone"))
        .respond_with(answer(404, "error_404_override.json"))
        .expect(1)
        .mount(&server)
        .await;
    override_call("GET", Some("hidden"))
        .respond_with(answer(403, "error_403_read.json"))
        .expect(2)
        .mount(&server)
        .await;
    // The listing settles a 403: first the key cannot read the schedule at all, then it can.
    override_call("GET", None)
        .respond_with(answer(403, "error_403_read.json"))
        .up_to_n_times(1)
        .mount(&server)
        .await;
    override_call("GET", None)
        .respond_with(answer(200, "overrides.json"))
        .mount(&server)
        .await;
    forbid_everything_else(&server).await;
    let p = provider(&server);
    // A 403 whose listing is refused too is the schedule's NotFound, not "gone": the sync must
    // not forget what it cannot see.
    let hidden = p.get_override(&s1(), &OverrideId::new("hidden")).await;
    assert!(
        matches!(&hidden, Err(Error::NotFound { resource: Resource::Schedule(s), .. }) if s == S1),
        "{hidden:?}"
    );
    // A 403 on an alias the readable listing does not show: the override is not there (issue 13,
    // defect 2: a vendor that answers 403 for what is missing).
    assert_eq!(
        p.get_override(&s1(), &OverrideId::new("hidden")).await,
        Ok(None)
    );
    let found = p
        .get_override(&s1(), &OverrideId::new(ALIAS))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(
        found.span,
        span(
            "2025-07-02T06:00:00Z",
            "2025-07-03T06:00:00Z",
            "alice@example.com"
        )
    );
    assert_eq!(
        p.get_override(&s1(), &OverrideId::new("gone")).await,
        Ok(None),
        "404: gone, not retried"
    );
}

#[tokio::test]
async fn creates_with_the_alias_and_no_rotations_field() {
    let server = MockServer::start().await;
    write_call("POST", None)
        .and(body_json(json!({
            "alias": ALIAS,
            "user": {"type": "user", "username": "alice@example.com"},
            "startDate": "2025-07-02T06:00:00Z",
            "endDate": "2025-07-03T06:00:00Z"
        })))
        .respond_with(answer(201, "create_override.json"))
        .expect(1)
        .mount(&server)
        .await;
    let s = span(
        "2025-07-02T06:00:00Z",
        "2025-07-03T06:00:00Z",
        "alice@example.com",
    );
    mount_held(&server, ALIAS, &s).await;
    forbid_everything_else(&server).await;
    let results = provider(&server)
        .create_overrides(
            &s1(),
            &[NewOverride {
                span: s.clone(),
                id: Some(OverrideId::new(ALIAS)),
            }],
        )
        .await
        .unwrap();
    assert_eq!(
        results,
        vec![Ok(oncall_core::Override {
            id: OverrideId::new(ALIAS),
            span: s
        })]
    );
}

#[tokio::test]
async fn updates_in_place_with_a_full_replace() {
    let server = MockServer::start().await;
    write_call("PUT", Some(ALIAS))
        .and(body_json(json!({
            "user": {"type": "user", "username": "bob@example.com"},
            "startDate": "2025-07-02T06:00:00Z",
            "endDate": "2025-07-03T09:00:00Z"
        })))
        .respond_with(answer(200, "update_override.json").insert_header("Date", BEFORE))
        .expect(1)
        .mount(&server)
        .await;
    let to = span(
        "2025-07-02T06:00:00Z",
        "2025-07-03T09:00:00Z",
        "bob@example.com",
    );
    mount_held(&server, ALIAS, &to).await;
    forbid_everything_else(&server).await;
    let updated = provider(&server)
        .update_override(&s1(), &OverrideId::new(ALIAS), &to)
        .await
        .unwrap();
    assert_eq!((updated.id.as_str(), updated.span), (ALIAS, to));
}

/// An update is a full replace: an override a person limited to some rotations gets them back
/// with it (whether a PUT without them resets it to every rotation is UNCONFIRMED); one of every
/// rotation (`[]`, or a list of all of the schedule's rotations) is sent without the field.
#[tokio::test]
async fn updates_send_back_the_rotations_of_a_limited_override() {
    let server = MockServer::start().await;
    mount_schedule(&server).await;
    // Every answer carries the vendor's clock before the spans: none of the updates is a cut.
    override_call("GET", None)
        .respond_with(answer(200, "overrides.json").insert_header("Date", BEFORE))
        .expect(1)
        .mount(&server)
        .await;
    let every: Vec<Value> = [
        ("b073c102-ecd5-4a6f-acf2-443280074c33", "Ops"),
        (
            "06af48dc-0496-43ea-bae7-77b96e77ff76",
            "Dev 2020-06-24 to 2020-12-23",
        ),
        ("69e7d46d-538e-4fca-95d0-5c316a54424e", "On Call Phone"),
    ]
    .iter()
    .map(|(id, name)| json!({"id": id, "name": name}))
    .collect();
    override_call("GET", Some("every-rotation"))
        .respond_with(
            ResponseTemplate::new(200)
                .insert_header("Date", BEFORE)
                .set_body_json(json!({"data": {
            "alias": "every-rotation", "user": {"type": "user", "username": "cat@example.com"},
            "startDate": "2025-07-04T06:00:00Z", "endDate": "2025-07-05T06:00:00Z",
            "rotations": every}})),
        )
        .expect(2)
        .mount(&server)
        .await;
    let limited = "2d3a8b8e-6c1f-4a55-9a2e-11c8e0c0a5f0";
    // Each update is read back (the limited one as still limited, the other of every rotation).
    override_call("GET", Some(limited))
        .respond_with(
            ResponseTemplate::new(200)
                .insert_header("Date", BEFORE)
                .set_body_json(json!({"data": {
            "alias": limited, "user": {"type": "user", "username": "bob@example.com"},
            "startDate": "2025-07-01T06:00:00Z", "endDate": "2025-07-01T10:00:00Z",
            "rotations": [{"id": "b073c102-ecd5-4a6f-acf2-443280074c33", "name": "Ops"}]}})),
        )
        .expect(1)
        .mount(&server)
        .await;
    mount_held(
        &server,
        ALIAS,
        &span(
            "2025-07-02T06:00:00Z",
            "2025-07-03T09:00:00Z",
            "alice@example.com",
        ),
    )
    .await;
    write_call("PUT", Some(limited))
        .and(body_json(json!({
            "user": {"type": "user", "username": "bob@example.com"},
            "startDate": "2025-07-01T06:00:00Z",
            "endDate": "2025-07-01T10:00:00Z",
            "rotations": [{"id": "b073c102-ecd5-4a6f-acf2-443280074c33"}]
        })))
        .respond_with(answer(200, "update_override.json").insert_header("Date", BEFORE))
        .expect(1)
        .mount(&server)
        .await;
    for (alias, who) in [
        (ALIAS, "alice@example.com"),
        ("every-rotation", "cat@example.com"),
    ] {
        write_call("PUT", Some(alias))
            .and(wiremock::matchers::body_partial_json(
                json!({"user": {"username": who}}),
            ))
            .and(|r: &wiremock::Request| {
                r.body_json::<Value>()
                    .is_ok_and(|b| b.get("rotations").is_none())
            })
            .respond_with(answer(200, "update_override.json").insert_header("Date", BEFORE))
            .expect(1)
            .mount(&server)
            .await;
    }
    forbid_everything_else(&server).await;
    let p = provider(&server);
    let window = Window::new(t("2025-07-01T00:00:00Z"), t("2025-07-04T00:00:00Z")).unwrap();
    p.list_overrides(&s1(), window).await.unwrap();
    p.get_override(&s1(), &OverrideId::new("every-rotation"))
        .await
        .unwrap()
        .unwrap();
    // A clone shares what the provider learnt.
    let clone = p.clone();
    for (alias, to) in [
        (
            limited,
            span(
                "2025-07-01T06:00:00Z",
                "2025-07-01T10:00:00Z",
                "bob@example.com",
            ),
        ),
        (
            ALIAS,
            span(
                "2025-07-02T06:00:00Z",
                "2025-07-03T09:00:00Z",
                "alice@example.com",
            ),
        ),
        (
            "every-rotation",
            span(
                "2025-07-04T06:00:00Z",
                "2025-07-05T09:00:00Z",
                "cat@example.com",
            ),
        ),
    ] {
        clone
            .update_override(&s1(), &OverrideId::new(alias), &to)
            .await
            .unwrap();
    }
}

/// Ending a running override in the vendor's past: whether Opsgenie clamps, keeps or refuses such an
/// end is UNCONFIRMED. Accepted: the override is read back and answered as the vendor holds it.
#[tokio::test]
async fn a_cut_the_vendor_accepts_is_read_back() {
    let server = MockServer::start().await;
    write_call("PUT", Some(ALIAS))
        .and(wiremock::matchers::body_partial_json(
            json!({"endDate": "2025-07-02T11:00:00Z"}),
        ))
        .respond_with(answer(200, "update_override.json").insert_header("Date", DURING))
        .expect(1)
        .mount(&server)
        .await;
    override_call("GET", Some(ALIAS))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({"data": {
            "alias": ALIAS, "user": {"type": "user", "username": "alice@example.com"},
            "startDate": "2025-07-02T06:00:00Z", "endDate": "2025-07-02T12:00:00Z"}})))
        .expect(1)
        .mount(&server)
        .await;
    forbid_everything_else(&server).await;
    let cut = span(
        "2025-07-02T06:00:00Z",
        "2025-07-02T11:00:00Z",
        "alice@example.com",
    );
    let held = provider(&server)
        .update_override(&s1(), &OverrideId::new(ALIAS), &cut)
        .await
        .unwrap();
    assert_eq!(
        held.span.end,
        t("2025-07-02T12:00:00Z"),
        "the end the vendor holds (its now)"
    );
}

/// Refused: re-sent with the end at the vendor's `Date`, then a second later.
#[tokio::test]
async fn a_cut_the_vendor_refuses_is_resent_at_its_now() {
    let server = MockServer::start().await;
    write_call("PUT", Some(ALIAS))
        .and(wiremock::matchers::body_partial_json(json!({"endDate": "2025-07-02T11:00:00Z"})))
        .respond_with(ResponseTemplate::new(422).insert_header("Date", DURING).set_body_json(json!({
            "message": "Request body is not processable. Please check the errors.",
            "errors": {"endDate": "End date must be in the future"}, "took": 0.0, "requestId": "r"})))
        .expect(1)
        .mount(&server)
        .await;
    // The vendor's clock has moved on past its `Date`'s second: refused again.
    write_call("PUT", Some(ALIAS))
        .and(wiremock::matchers::body_partial_json(
            json!({"endDate": "2025-07-02T12:00:00Z"}),
        ))
        .respond_with(ResponseTemplate::new(422).insert_header("Date", DURING).set_body_json(json!({
            "message": "Request body is not processable. Please check the errors.",
            "errors": {"endDate": "End date must be in the future"}, "took": 0.0, "requestId": "r"})))
        .expect(1)
        .mount(&server)
        .await;
    write_call("PUT", Some(ALIAS))
        .and(wiremock::matchers::body_partial_json(
            json!({"endDate": "2025-07-02T12:00:01Z"}),
        ))
        .respond_with(answer(200, "update_override.json").insert_header("Date", DURING))
        .expect(1)
        .mount(&server)
        .await;
    mount_held(
        &server,
        ALIAS,
        &span(
            "2025-07-02T06:00:00Z",
            "2025-07-02T12:00:01Z",
            "alice@example.com",
        ),
    )
    .await;
    forbid_everything_else(&server).await;
    let cut = span(
        "2025-07-02T06:00:00Z",
        "2025-07-02T11:00:00Z",
        "alice@example.com",
    );
    let held = provider(&server)
        .update_override(&s1(), &OverrideId::new(ALIAS), &cut)
        .await
        .unwrap();
    assert_eq!(held.span.end, t("2025-07-02T12:00:01Z"));
}

/// Refused for another reason: the refusal stands, nothing is re-sent.
#[tokio::test]
async fn a_cut_refused_for_another_reason_is_not_resent() {
    let server = MockServer::start().await;
    write_call("PUT", Some(ALIAS))
        .respond_with(answer(422, "error_422_fields.json").insert_header("Date", DURING))
        .expect(1)
        .mount(&server)
        .await;
    forbid_everything_else(&server).await;
    let cut = span(
        "2025-07-02T06:00:00Z",
        "2025-07-02T11:00:00Z",
        "alice@example.com",
    );
    let refused = provider(&server)
        .update_override(&s1(), &OverrideId::new(ALIAS), &cut)
        .await;
    assert!(
        matches!(refused, Err(Error::Rejected { .. })),
        "{refused:?}"
    );
}

#[tokio::test]
async fn deletes_and_reports_an_unknown_alias() {
    let server = MockServer::start().await;
    override_call("DELETE", Some(ALIAS))
        .respond_with(answer(200, "delete_override.json"))
        .expect(1)
        .mount(&server)
        .await;
    override_call("DELETE", Some("gone"))
        .respond_with(answer(404, "error_404_override.json"))
        .expect(1)
        .mount(&server)
        .await;
    forbid_everything_else(&server).await;
    let p = provider(&server);
    assert_eq!(
        p.delete_override(&s1(), &OverrideId::new(ALIAS)).await,
        Ok(oncall_core::Deletion::Deleted)
    );
    let gone = p.delete_override(&s1(), &OverrideId::new("gone")).await;
    assert!(
        matches!(&gone, Err(Error::NotFound { resource: Resource::Override(a), .. }) if a == "gone"),
        "{gone:?}"
    );
    no_key(&gone);
}

#[tokio::test]
async fn refusals_are_typed_and_never_retried() {
    let server = MockServer::start().await;
    call("GET", "/v2/schedules")
        .respond_with(answer(401, "error_401.json"))
        .expect(1)
        .mount(&server)
        .await;
    call("GET", "/v2/schedules/unknown")
        .and(query_param("identifierType", "id"))
        .respond_with(answer(403, "error_403_read.json"))
        .expect(1)
        .mount(&server)
        .await;
    write_call("PUT", Some(ALIAS))
        .respond_with(answer(403, "error_403_write.json"))
        .expect(1)
        .mount(&server)
        .await;
    // A 403 on an override's path is settled by a read: the override is there, so the key lacks
    // rights (R8).
    mount_held(
        &server,
        ALIAS,
        &span(
            "2025-07-02T06:00:00Z",
            "2025-07-03T06:00:00Z",
            "a@example.com",
        ),
    )
    .await;
    forbid_everything_else(&server).await;
    let p = provider(&server);
    let e = p.list_schedules().await;
    assert!(matches!(e, Err(Error::Unauthenticated { .. })), "{e:?}");
    no_key(&e);
    let e = p.schedule(&VendorScheduleId("unknown".into())).await;
    assert!(
        matches!(&e, Err(Error::NotFound { resource: Resource::Schedule(s), message })
            if s == "unknown" && message.contains("not found, or not visible to this key")),
        "{e:?}"
    );
    no_key(&e);
    let e = p
        .update_override(
            &s1(),
            &OverrideId::new(ALIAS),
            &span(
                "2025-07-02T06:00:00Z",
                "2025-07-03T06:00:00Z",
                "a@example.com",
            ),
        )
        .await;
    assert!(
        matches!(&e, Err(Error::PermissionDenied { .. }))
            && e.as_ref()
                .unwrap_err()
                .to_string()
                .contains("read-only or lacks rights"),
        "{e:?}"
    );
    no_key(&e);
}

#[tokio::test]
async fn a_read_only_key_stops_the_rest_of_a_batch() {
    let server = MockServer::start().await;
    mount_schedule(&server).await;
    override_call("GET", None)
        .respond_with(answer(200, "overrides.json"))
        .expect(1)
        .mount(&server)
        .await;
    write_call("POST", None)
        .respond_with(answer(403, "error_403_write.json"))
        .expect(1)
        .mount(&server)
        .await;
    forbid_everything_else(&server).await;
    // Two at a time, at 600 a minute: after one read, the first create goes at once and the
    // second waits its 100 ms slot, by when the first's refusal is in.
    let p = OpsgenieProvider::builder()
        .with_base_url(server.uri())
        .with_api_key(KEY)
        .with_max_concurrency(2)
        .with_rate_per_minute(600)
        .build()
        .unwrap();
    let window = Window::new(t("2025-07-01T00:00:00Z"), t("2025-07-04T00:00:00Z")).unwrap();
    p.list_overrides(&s1(), window).await.unwrap();
    let items: Vec<NewOverride> = (1..=2)
        .map(|d| NewOverride {
            span: span(
                &format!("2025-07-0{d}T06:00:00Z"),
                &format!("2025-07-0{d}T18:00:00Z"),
                "a@example.com",
            ),
            id: Some(OverrideId::new(format!("oncall-sync-{d}"))),
        })
        .collect();
    let results = p.create_overrides(&s1(), &items).await.unwrap();
    assert_eq!(results.len(), 2, "one result per item");
    assert!(
        results
            .iter()
            .all(|r| matches!(r, Err(Error::PermissionDenied { .. }))),
        "{results:?}"
    );
    assert!(results[1]
        .as_ref()
        .unwrap_err()
        .to_string()
        .contains("not sent"));
    assert_eq!(
        requests(&server).await,
        3,
        "R8: the reads (overrides, and the schedule for the rotations one names), one refusal, \
         nothing retried or sent after it"
    );
}

/// A batch larger than the provider declares is refused whole, before anything is sent (the
/// contract: creates take at most `max_batch` items), as the other providers do.
#[tokio::test]
async fn a_batch_larger_than_max_batch_is_refused_unsent() {
    let server = MockServer::start().await;
    forbid_everything_else(&server).await;
    let p = provider_with(&server, 2, Duration::from_secs(2));
    assert_eq!(p.capabilities().max_batch, 2);
    let items: Vec<NewOverride> = (1..=3)
        .map(|d| NewOverride {
            span: span(
                &format!("2025-07-0{d}T06:00:00Z"),
                &format!("2025-07-0{d}T18:00:00Z"),
                "a@example.com",
            ),
            id: Some(OverrideId::new(format!("oncall-sync-{d}"))),
        })
        .collect();
    let e = p.create_overrides(&s1(), &items).await;
    assert!(
        matches!(&e, Err(Error::Rejected { message }) if message.contains("at most 2")),
        "{e:?}"
    );
    assert_eq!(requests(&server).await, 0);
}

#[tokio::test]
async fn per_item_refusals_of_a_create() {
    let server = MockServer::start().await;
    let refuse = |alias: &str, status: u16, body: &str| {
        write_call("POST", None)
            .and(wiremock::matchers::body_partial_json(
                json!({"alias": alias}),
            ))
            .respond_with(answer(status, body))
            .expect(1)
    };
    refuse("taken-409", 409, "error_409.json")
        .mount(&server)
        .await;
    write_call("POST", None)
        .and(wiremock::matchers::body_partial_json(
            json!({"alias": "taken-422"}),
        ))
        .respond_with(ResponseTemplate::new(422).set_body_json(json!({
            "message": "There can be only one override with the same alias for that schedule",
            "took": 0.01, "requestId": "r"})))
        .expect(1)
        .mount(&server)
        .await;
    refuse("unknown-user", 422, "error_422_user.json")
        .mount(&server)
        .await;
    refuse("bad-fields", 422, "error_422_fields.json")
        .mount(&server)
        .await;
    refuse("ok", 201, "create_override.json")
        .mount(&server)
        .await;
    // A taken alias is read: someone else's override under the first, nothing under the second
    // (gone since); either way the item's Conflict. The created one is read back.
    mount_held(
        &server,
        "taken-409",
        &span(
            "2025-08-02T06:00:00Z",
            "2025-08-03T06:00:00Z",
            "b@example.com",
        ),
    )
    .await;
    override_call("GET", Some("taken-422"))
        .respond_with(answer(404, "error_404_override.json"))
        .mount(&server)
        .await;
    mount_held(
        &server,
        ALIAS,
        &span(
            "2025-07-02T06:00:00Z",
            "2025-07-03T06:00:00Z",
            "a@example.com",
        ),
    )
    .await;
    forbid_everything_else(&server).await;
    let item = |alias: &str, who: &str| NewOverride {
        span: span("2025-07-02T06:00:00Z", "2025-07-03T06:00:00Z", who),
        id: Some(OverrideId::new(alias)),
    };
    let items = [
        item("taken-409", "a@example.com"),
        item("taken-422", "a@example.com"),
        item("unknown-user", "nobody@example.com"),
        item("bad-fields", "a@example.com"),
        item("ok", "a@example.com"),
    ];
    let results = provider_with(&server, items.len(), Duration::from_secs(2))
        .create_overrides(&s1(), &items)
        .await
        .unwrap();
    assert!(
        matches!(results[0], Err(Error::Conflict { .. })),
        "{:?}",
        results[0]
    );
    assert!(
        matches!(results[1], Err(Error::Conflict { .. })),
        "{:?}",
        results[1]
    );
    assert!(
        matches!(&results[2], Err(Error::UnknownMember { email, .. }) if email.as_str() == "nobody@example.com"),
        "{:?}",
        results[2]
    );
    assert!(
        matches!(&results[3], Err(Error::Rejected { message }) if message.contains("recipients#type")),
        "{:?}",
        results[3]
    );
    assert!(results[4].is_ok(), "one bad item does not fail the others");
    results.iter().for_each(no_key);
}

/// A 429 for the per-second window (the captured fixture's headers, with a 1 s period so that the
/// test waits it out within the policy's budget).
fn throttled() -> ResponseTemplate {
    answer(429, "error_429.json")
        .insert_header("X-RateLimit-State", "THROTTLED")
        .insert_header("X-RateLimit-Reason", "ACCOUNT")
        .insert_header("X-RateLimit-Period-In-Sec", "1")
}

#[tokio::test]
async fn rate_limits_and_server_errors_are_retried_where_safe() {
    let server = MockServer::start().await;
    mount_schedule(&server).await;
    // A read: one 429 (its 1 s period is waited), one 503, then the answer.
    override_call("GET", None)
        .respond_with(throttled())
        .up_to_n_times(1)
        .mount(&server)
        .await;
    override_call("GET", None)
        .respond_with(ResponseTemplate::new(503))
        .up_to_n_times(1)
        .mount(&server)
        .await;
    override_call("GET", None)
        .respond_with(answer(200, "overrides.json"))
        .mount(&server)
        .await;
    // A create: a 429 is retried (the vendor refused it)...
    write_call("POST", None)
        .and(wiremock::matchers::body_partial_json(
            json!({"alias": "after-429"}),
        ))
        .respond_with(throttled())
        .up_to_n_times(1)
        .mount(&server)
        .await;
    write_call("POST", None)
        .and(wiremock::matchers::body_partial_json(
            json!({"alias": "after-429"}),
        ))
        .respond_with(answer(201, "create_override.json"))
        .mount(&server)
        .await;
    // ...a 503 is not (it may have landed): the item is Transient.
    write_call("POST", None)
        .and(wiremock::matchers::body_partial_json(
            json!({"alias": "after-503"}),
        ))
        .respond_with(ResponseTemplate::new(503))
        .expect(1)
        .mount(&server)
        .await;
    // An update is idempotent: retried after a 502.
    write_call("PUT", Some(ALIAS))
        .respond_with(ResponseTemplate::new(502))
        .up_to_n_times(1)
        .mount(&server)
        .await;
    write_call("PUT", Some(ALIAS))
        .respond_with(answer(200, "update_override.json").insert_header("Date", BEFORE))
        .mount(&server)
        .await;
    // What the create and the update read back.
    mount_held(
        &server,
        ALIAS,
        &span(
            "2099-07-02T06:00:00Z",
            "2099-07-03T06:00:00Z",
            "a@example.com",
        ),
    )
    .await;
    forbid_everything_else(&server).await;
    let p = provider(&server);
    let window = Window::new(t("2025-07-01T00:00:00Z"), t("2025-07-04T00:00:00Z")).unwrap();
    assert_eq!(p.list_overrides(&s1(), window).await.unwrap().len(), 3);
    let item = |alias: &str| NewOverride {
        span: span(
            "2025-07-02T06:00:00Z",
            "2025-07-03T06:00:00Z",
            "a@example.com",
        ),
        id: Some(OverrideId::new(alias)),
    };
    let results = p
        .create_overrides(&s1(), &[item("after-429"), item("after-503")])
        .await
        .unwrap();
    assert!(results[0].is_ok(), "{:?}", results[0]);
    assert!(
        matches!(results[1], Err(Error::Transient { .. })),
        "{:?}",
        results[1]
    );
    // Far ahead of the vendor's clock (the other answers carry wiremock's real `Date`).
    let to = span(
        "2099-07-02T06:00:00Z",
        "2099-07-03T06:00:00Z",
        "a@example.com",
    );
    assert_eq!(
        p.update_override(&s1(), &OverrideId::new(ALIAS), &to)
            .await
            .unwrap()
            .span,
        to
    );
    let log = server.received_requests().await.unwrap();
    let count = |verb: &str, alias: &str| {
        log.iter()
            .filter(|r| {
                r.method.as_str() == verb && String::from_utf8_lossy(&r.body).contains(alias)
            })
            .count()
    };
    assert_eq!(
        log.iter()
            .filter(|r| r.method.as_str() == "GET" && r.url.path().ends_with("/overrides"))
            .count(),
        3,
        "429, 503, 200"
    );
    assert_eq!(count("POST", "after-429"), 2);
    assert_eq!(
        count("POST", "after-503"),
        1,
        "a create whose answer may be lost is never re-sent"
    );
    assert_eq!(log.iter().filter(|r| r.method.as_str() == "PUT").count(), 2);
}

#[tokio::test]
async fn a_create_that_times_out_is_not_sent_again() {
    let server = MockServer::start().await;
    write_call("POST", None)
        .respond_with(answer(201, "create_override.json").set_delay(Duration::from_millis(800)))
        .expect(1)
        .mount(&server)
        .await;
    forbid_everything_else(&server).await;
    let p = provider_with(&server, 4, Duration::from_millis(150));
    let item = NewOverride {
        span: span(
            "2025-07-02T06:00:00Z",
            "2025-07-03T06:00:00Z",
            "a@example.com",
        ),
        id: Some(OverrideId::new(ALIAS)),
    };
    let results = p.create_overrides(&s1(), &[item]).await.unwrap();
    assert!(
        matches!(&results[0], Err(Error::Transient { message }) if message.contains("no answer within 150 ms")),
        "{:?}",
        results[0]
    );
    no_key(&results[0]);
}

#[tokio::test]
async fn a_malformed_answer_names_the_field() {
    let server = MockServer::start().await;
    override_call("GET", None)
        .respond_with(answer(200, "malformed_overrides.json"))
        .expect(1)
        .mount(&server)
        .await;
    call("GET", &format!("/v2/schedules/{S1}"))
        .and(query_param("identifierType", "id"))
        .respond_with(ResponseTemplate::new(200).set_body_string("<html>maintenance</html>"))
        .expect(1)
        .mount(&server)
        .await;
    forbid_everything_else(&server).await;
    let p = provider(&server);
    let window = Window::new(t("2025-07-01T00:00:00Z"), t("2025-07-04T00:00:00Z")).unwrap();
    let e = p.list_overrides(&s1(), window).await;
    assert_eq!(
        e.as_ref().unwrap_err().to_string(),
        "invalid vendor response: data[0].startDate: missing"
    );
    let e = p.schedule(&s1()).await;
    assert!(
        matches!(&e, Err(Error::InvalidResponse { message }) if message.starts_with("$: not JSON")),
        "{e:?}"
    );
}

/// A vendor or a proxy that echoes the key in its answer: no error carries it on.
#[tokio::test]
async fn an_answer_that_echoes_the_key_leaves_no_trace_of_it_in_errors() {
    let server = MockServer::start().await;
    call("GET", "/v2/schedules")
        .respond_with(ResponseTemplate::new(401).set_body_json(json!({
            "message": format!("Key [GenieKey {KEY}] is not valid"), "took": 0.0, "requestId": "r"})))
        .expect(1)
        .mount(&server)
        .await;
    write_call("POST", None)
        .respond_with(ResponseTemplate::new(422).set_body_json(json!({
            "message": "Request body is not processable. Please check the errors.",
            "errors": {"alias": format!("alias taken by key {KEY}")}, "took": 0.0, "requestId": "r"})))
        .expect(1)
        .mount(&server)
        .await;
    write_call("PUT", Some(ALIAS))
        .respond_with(ResponseTemplate::new(502).set_body_string(format!(
            "<html>proxy error for Authorization: GenieKey {KEY}</html>"
        )))
        .mount(&server)
        .await;
    // The taken alias is read, and is not there (any more).
    override_call("GET", Some(ALIAS))
        .respond_with(answer(404, "error_404_override.json"))
        .mount(&server)
        .await;
    forbid_everything_else(&server).await;
    let p = provider(&server);
    let listed = p.list_schedules().await;
    assert!(
        matches!(listed, Err(Error::Unauthenticated { .. })),
        "{listed:?}"
    );
    no_key(&listed);
    let item = NewOverride {
        span: span(
            "2025-07-02T06:00:00Z",
            "2025-07-03T06:00:00Z",
            "a@example.com",
        ),
        id: Some(OverrideId::new(ALIAS)),
    };
    let created = p.create_overrides(&s1(), &[item]).await.unwrap();
    assert!(created[0].is_err(), "{created:?}");
    no_key(&created[0]);
    let updated = p
        .update_override(
            &s1(),
            &OverrideId::new(ALIAS),
            &span(
                "2025-07-02T06:00:00Z",
                "2025-07-03T06:00:00Z",
                "a@example.com",
            ),
        )
        .await;
    assert!(
        matches!(updated, Err(Error::Transient { .. })),
        "{updated:?}"
    );
    no_key(&updated);
}

#[tokio::test]
async fn the_key_is_sent_only_in_the_authorization_header() {
    let server = MockServer::start().await;
    mount_schedule(&server).await;
    override_call("GET", None)
        .respond_with(answer(200, "overrides.json"))
        .mount(&server)
        .await;
    forbid_everything_else(&server).await;
    let p = provider(&server);
    assert!(!format!("{p:?}").contains(KEY));
    let window = Window::new(t("2025-07-01T00:00:00Z"), t("2025-07-04T00:00:00Z")).unwrap();
    p.list_overrides(&s1(), window).await.unwrap();
    for r in server.received_requests().await.unwrap() {
        assert!(!r.url.as_str().contains(KEY));
        let elsewhere = r
            .headers
            .iter()
            .filter(|(name, _)| name.as_str() != "authorization")
            .any(|(_, v)| v.to_str().unwrap_or_default().contains(KEY));
        assert!(!elsewhere);
    }
    // A connection refused: the error names the URL, never the key.
    let closed = OpsgenieProvider::builder()
        .with_base_url("http://127.0.0.1:9")
        .with_api_key(KEY)
        .with_retry(RetryPolicy {
            max_attempts: 1,
            ..RetryPolicy::default()
        })
        .build()
        .unwrap();
    let e = closed.list_schedules().await;
    assert!(matches!(e, Err(Error::Transient { .. })), "{e:?}");
    no_key(&e);
}
