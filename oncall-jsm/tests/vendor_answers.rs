//! The adapter against answers the simulator does not give by default, served by plain wiremock
//! mocks: a cut refused for an end in the vendor's past, a 404 that names the responder, a 403
//! from the site's user search. Each is a reading the JSM documentation leaves open.

#![allow(clippy::unwrap_used)] // tests: a panic is the failure report

use chrono::{DateTime, TimeDelta, TimeZone, Utc};
use oncall_core::{Email, Error, NewOverride, OverrideId, Provider, Resource, Span, Window};
use oncall_core::{VendorScheduleId, CLOCK_SKEW};
use oncall_jsm::testkit::JsmSimulator;
use oncall_jsm::JsmProvider;
use serde_json::json;
use wiremock::matchers::{method, path};
use wiremock::{Mock, MockServer, ResponseTemplate};

const OVERRIDES: &str = "/jsm/ops/api/cloud-1/v1/schedules/S/overrides";

/// The vendor's clock in these tests: every answer's `Date` (wiremock's own would be the host's).
fn vendor_now() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2024, 2, 1, 12, 0, 5).unwrap()
}

/// A site whose cloudId is `cloud-1`.
async fn site() -> MockServer {
    let server = MockServer::start().await;
    Mock::given(method("GET"))
        .and(path("/_edge/tenant_info"))
        .respond_with(
            ResponseTemplate::new(200)
                .insert_header("Date", http_date(vendor_now()).as_str())
                .set_body_json(json!({"cloudId": "cloud-1"})),
        )
        .mount(&server)
        .await;
    server
}

/// The site's user search knows ann.
async fn ann_is_a_user(server: &MockServer) {
    Mock::given(method("GET"))
        .and(path("/rest/api/3/user/search"))
        .respond_with(
            ResponseTemplate::new(200)
                .insert_header("Date", http_date(vendor_now()).as_str())
                .set_body_json(json!([
                    {"accountId": "acc-ann", "emailAddress": "ann@example.com", "displayName": "Ann"}
                ])),
        )
        .mount(server)
        .await;
}

fn provider(server: &MockServer) -> JsmProvider {
    JsmProvider::builder()
        .with_site(server.uri())
        .with_api_base_url(server.uri())
        .with_email("ops@example.com")
        .with_api_token("tok")
        .with_retry(JsmSimulator::test_retry_policy())
        .without_rate_limit()
        .build()
        .unwrap()
}

fn ann() -> Email {
    Email::parse("ann@example.com").unwrap()
}

fn http_date(t: DateTime<Utc>) -> String {
    t.format("%a, %d %b %Y %H:%M:%S GMT").to_string()
}

fn schedule() -> VendorScheduleId {
    VendorScheduleId("S".into())
}

fn new_override(start: DateTime<Utc>) -> NewOverride {
    NewOverride {
        span: Span::new(start, start + TimeDelta::days(1), ann()),
        id: None,
    }
}

/// The Provider contract asks that a cut at or before the vendor's now end the override at the
/// vendor's now. A vendor that refuses an end in its past (as Opsgenie may) gets the cut again,
/// at the first whole second not before its now (its `Date`).
#[tokio::test]
async fn a_cut_refused_for_an_end_in_the_vendors_past_is_sent_again_at_the_vendors_now() {
    let server = site().await;
    ann_is_a_user(&server).await;
    let vendor_now = vendor_now();
    let date = http_date(vendor_now);
    Mock::given(method("PUT"))
        .and(path(format!("{OVERRIDES}/A")))
        .respond_with(move |req: &wiremock::Request| {
            let body: serde_json::Value = serde_json::from_slice(&req.body).unwrap();
            let end = DateTime::parse_from_rfc3339(body["endDate"].as_str().unwrap()).unwrap();
            if end.with_timezone(&Utc) < vendor_now {
                ResponseTemplate::new(422)
                    .insert_header("Date", date.as_str())
                    .set_body_json(json!({"errors": [{"title": "End date must be in the future", "code": "INVALID"}]}))
            } else {
                ResponseTemplate::new(200)
                    .insert_header("Date", date.as_str())
                    .set_body_json(json!({"alias": "A", "responder": {"type": "user", "id": "acc-ann"},
                        "startDate": body["startDate"], "endDate": body["endDate"], "rotationIds": null}))
            }
        })
        .mount(&server)
        .await;
    Mock::given(method("GET"))
        .and(path(OVERRIDES))
        .respond_with(
            ResponseTemplate::new(200)
                .insert_header("Date", http_date(vendor_now).as_str())
                .set_body_json(json!({"values": [], "links": {}})),
        )
        .mount(&server)
        .await;
    let p = provider(&server);
    // The sync's now is 5 s behind the vendor's; a read shows the vendor's clock first.
    let host_now = vendor_now - TimeDelta::seconds(5);
    p.list_overrides(
        &schedule(),
        Window::new(host_now, host_now + TimeDelta::days(1)).unwrap(),
    )
    .await
    .unwrap();
    let cut = Span::new(host_now - TimeDelta::hours(3), host_now, ann());
    let held = p
        .update_override(&schedule(), &OverrideId::new("A"), &cut)
        .await
        .unwrap();
    assert_eq!(held.span.start, cut.start);
    assert_eq!(held.span.end, vendor_now + TimeDelta::seconds(1));
    assert!(held.span.end - vendor_now < CLOCK_SKEW);
    let puts: Vec<String> = server
        .received_requests()
        .await
        .unwrap()
        .into_iter()
        .filter(|r| r.method.as_str() == "PUT")
        .map(|r| {
            let body: serde_json::Value = serde_json::from_slice(&r.body).unwrap();
            body["endDate"].as_str().unwrap().to_owned()
        })
        .collect();
    assert_eq!(
        puts,
        vec![
            "2024-02-01T12:00:00Z".to_owned(),
            "2024-02-01T12:00:06Z".to_owned()
        ],
        "sent as asked, then once at the vendor's now"
    );
}

/// Only a refusal of the end is sent again: another refusal of a cut stands, sent once.
#[tokio::test]
async fn a_cut_refused_for_another_reason_is_not_sent_again() {
    let server = site().await;
    ann_is_a_user(&server).await;
    let vendor_now = vendor_now();
    Mock::given(method("PUT"))
        .and(path(format!("{OVERRIDES}/A")))
        .respond_with(
            ResponseTemplate::new(422)
                .insert_header("Date", http_date(vendor_now).as_str())
                .set_body_json(
                    json!({"errors": [{"title": "Schedule is locked", "code": "INVALID"}]}),
                ),
        )
        .mount(&server)
        .await;
    let p = provider(&server);
    let host_now = vendor_now - TimeDelta::seconds(5);
    let cut = Span::new(host_now - TimeDelta::hours(3), host_now, ann());
    let result = p
        .update_override(&schedule(), &OverrideId::new("A"), &cut)
        .await;
    assert!(
        matches!(&result, Err(Error::Rejected { message }) if message.contains("locked")),
        "{result:?}"
    );
    let puts = server
        .received_requests()
        .await
        .unwrap()
        .into_iter()
        .filter(|r| r.method.as_str() == "PUT")
        .count();
    assert_eq!(puts, 1);
}

/// A 404 to a create whose words name the responder is that span's unknown member (R5's
/// exception), not the schedule gone (which stops the destination, run after run). A 404 that
/// names the schedule still is the schedule's.
#[tokio::test]
async fn a_404_to_a_create_naming_the_responder_is_that_persons_unknown_member() {
    let server = site().await;
    ann_is_a_user(&server).await;
    Mock::given(method("POST"))
        .and(path(OVERRIDES))
        .respond_with(ResponseTemplate::new(404).set_body_json(
            json!({"errors": [{"title": "Responder user could not be found", "code": "NOT_FOUND"}]}),
        ))
        .mount(&server)
        .await;
    let p = provider(&server);
    let start = Utc.with_ymd_and_hms(2030, 1, 1, 9, 0, 0).unwrap();
    let results = p
        .create_overrides(&schedule(), &[new_override(start)])
        .await
        .unwrap();
    assert!(
        matches!(&results[0], Err(Error::UnknownMember { email, message })
            if *email == ann() && message.contains("Responder user could not be found")),
        "{:?}",
        results[0]
    );

    let server = site().await;
    ann_is_a_user(&server).await;
    Mock::given(method("POST"))
        .and(path(OVERRIDES))
        .respond_with(ResponseTemplate::new(404).set_body_json(
            json!({"errors": [{"title": "Schedule not found", "code": "NOT_FOUND"}]}),
        ))
        .mount(&server)
        .await;
    let results = provider(&server)
        .create_overrides(&schedule(), &[new_override(start)])
        .await
        .unwrap();
    assert!(
        matches!(
            &results[0],
            Err(Error::NotFound {
                resource: Resource::Schedule(s),
                ..
            }) if s == "S"
        ),
        "{:?}",
        results[0]
    );
}

/// A 403 from the site's user search (the account lacks the Browse users and groups permission)
/// is its own kind: not R8's refused write (the account may well write overrides), not an
/// unknown person. Nothing is sent.
#[tokio::test]
async fn a_403_from_the_user_search_is_a_people_lookup_denial_not_a_refused_write() {
    let server = site().await;
    Mock::given(method("GET"))
        .and(path("/rest/api/3/user/search"))
        .respond_with(ResponseTemplate::new(403).set_body_json(
            json!({"errorMessages": ["You do not have the permission to see the specified users."], "errors": {}}),
        ))
        .mount(&server)
        .await;
    let p = provider(&server);
    let start = Utc.with_ymd_and_hms(2030, 1, 1, 9, 0, 0).unwrap();
    let result = p
        .create_overrides(&schedule(), &[new_override(start)])
        .await;
    let Err(e) = &result else {
        panic!("the call fails whole: {result:?}");
    };
    assert!(
        matches!(e, Error::PeopleLookupDenied { message } if message.contains("permission to see")),
        "{e:?}"
    );
    assert!(!e.is_permission_denied());
    assert_eq!(e.kind(), "people_lookup_denied");
    assert!(e.to_string().contains("Browse users and groups"), "{e}");
    let posts = server
        .received_requests()
        .await
        .unwrap()
        .into_iter()
        .filter(|r| r.method.as_str() == "POST")
        .count();
    assert_eq!(posts, 0);
}
