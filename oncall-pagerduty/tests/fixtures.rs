//! Every endpoint and error path against wiremock with PagerDuty's own example bodies (from the spec
//! excerpts and the reference, in `tests/fixtures/`). Each server mounts a catch-all last that
//! answers 500 and must see no request: a call outside the mocked endpoints (and so outside R10)
//! fails the test.

#![allow(clippy::unwrap_used)] // tests: a panic is the failure report

use std::time::Duration;

use chrono::{DateTime, TimeZone, Utc};
use oncall_core::{
    Deletion, Email, Error, NewOverride, Provider, Resource, RetryPolicy, RotationUnit, Span,
    VendorScheduleId, Window,
};
use oncall_pagerduty::PagerDutyProvider;
use wiremock::matchers::{
    any, body_json, header, method, path, query_param, query_param_is_missing,
};
use wiremock::{Mock, MockBuilder, MockServer, Request, ResponseTemplate};

const KEY: &str = "y_NbAkKc66ryYTWUXYEu";
const ACCEPT: &str = "application/vnd.pagerduty+json;version=2";

fn utc(s: &str) -> DateTime<Utc> {
    DateTime::parse_from_rfc3339(s).unwrap().with_timezone(&Utc)
}

fn email(s: &str) -> Email {
    Email::parse(s).unwrap()
}

fn json(body: &str) -> ResponseTemplate {
    ResponseTemplate::new(200).set_body_raw(body, "application/json")
}

/// A request PagerDuty would accept: the method and path, the key, the versioning header.
fn pd(verb: &str, p: &str) -> MockBuilder {
    Mock::given(method(verb))
        .and(path(p))
        .and(header(
            "authorization",
            format!("Token token={KEY}").as_str(),
        ))
        .and(header("accept", ACCEPT))
}

fn retry(max_attempts: u32) -> RetryPolicy {
    RetryPolicy {
        max_attempts,
        base_delay: Duration::from_millis(1),
        max_delay: Duration::from_millis(5),
        max_total_delay: Duration::from_millis(500),
    }
}

fn provider(server: &MockServer) -> PagerDutyProvider {
    PagerDutyProvider::builder()
        .with_api_key(KEY)
        .with_base_url(server.uri())
        .with_retry(retry(4))
        .with_rate_per_minute(600_000)
        .build()
        .unwrap()
}

/// The user directory in two pages: the spec's example users, then two more (one email in mixed case).
async fn mount_users(server: &MockServer) {
    pd("GET", "/users")
        .and(query_param("limit", "100"))
        .and(query_param("offset", "0"))
        .and(query_param_is_missing("include[]"))
        .respond_with(json(include_str!("fixtures/users_page1.json")))
        .expect(1)
        .mount(server)
        .await;
    pd("GET", "/users")
        .and(query_param("limit", "100"))
        .and(query_param("offset", "2"))
        .respond_with(json(include_str!("fixtures/users_page2.json")))
        .expect(1)
        .mount(server)
        .await;
}

/// Mounted last: any request no other mock took fails the test when the server drops.
async fn catch_all(server: &MockServer) {
    Mock::given(any())
        .respond_with(
            ResponseTemplate::new(500).set_body_string("request outside the mocked endpoints"),
        )
        .with_priority(u8::MAX)
        .named("a request outside the endpoints this test allows (R10)")
        .expect(0)
        .mount(server)
        .await;
}

fn no_key<T: std::fmt::Debug>(what: &T) {
    let shown = format!("{what:?}");
    assert!(!shown.contains(KEY), "the key leaked: {shown}");
}

fn no_key_in(e: &Error) {
    no_key(e);
    assert!(!e.to_string().contains(KEY), "the key leaked: {e}");
}

#[tokio::test]
async fn lists_schedules_with_layers_and_members() {
    let server = MockServer::start().await;
    mount_users(&server).await;
    pd("GET", "/schedules")
        .and(query_param("limit", "100"))
        .and(query_param("offset", "0"))
        .respond_with(json(include_str!("fixtures/schedules.json")))
        .expect(1)
        .mount(&server)
        .await;
    pd("GET", "/schedules/PI7DH85")
        .and(query_param_is_missing("since"))
        .respond_with(json(include_str!("fixtures/schedule.json")))
        .expect(1)
        .mount(&server)
        .await;
    // The layers' check: a week around the first handoff after New York's spring-forward of
    // 2016-03-13, where the two readings of daily turns part (this fixture renders 2015 only:
    // nothing to tell them apart, so the documented reading stays).
    pd("GET", "/schedules/PI7DH85")
        .and(query_param("since", "2016-03-12T00:00:00Z"))
        .and(query_param("until", "2016-03-19T00:00:00Z"))
        .and(query_param("overflow", "true"))
        .respond_with(json(include_str!("fixtures/schedule.json")))
        .expect(1)
        .mount(&server)
        .await;
    catch_all(&server).await;
    let p = provider(&server);
    let all = p.list_schedules().await.unwrap();
    assert_eq!(all.schedules.len(), 1);
    let s = &all.schedules[0];
    assert_eq!(s.id, VendorScheduleId("PI7DH85".into()));
    assert_eq!(s.name, "Daily Engineering Rotation");
    assert_eq!(s.zone, chrono_tz::America::New_York);
    assert_eq!(s.members.len(), 1);
    assert_eq!(
        s.members[0].email,
        email("125.greenholt.earline@graham.name")
    );
    assert_eq!(s.members[0].name, "Earline Greenholt");
    let r = &s.rotations[0];
    assert_eq!((r.unit, r.length), (RotationUnit::Daily, 1));
    assert_eq!(r.start.to_string(), "2015-11-06 20:00:00");
    assert_eq!(
        r.effective_from.map(|t| t.to_string()).as_deref(),
        Some("2015-11-06 21:00:00")
    );
    assert_eq!(r.restrictions.len(), 1);
    assert_eq!(r.restrictions[0].duration_seconds, 32_400);
}

#[tokio::test]
async fn imports_the_final_schedule_in_chunks() {
    let server = MockServer::start().await;
    mount_users(&server).await;
    pd("GET", "/schedules/PI7DH85")
        .and(query_param("overflow", "true"))
        .respond_with(json(include_str!("fixtures/schedule.json")))
        .expect(2)
        .mount(&server)
        .await;
    catch_all(&server).await;
    let p = provider(&server);
    // 44 days: two reads of at most 30 days; both answer the same entry, which is joined.
    let window = Window::new(utc("2015-11-01T00:00:00Z"), utc("2015-12-15T00:00:00Z")).unwrap();
    let timelines = p
        .on_call(&VendorScheduleId("PI7DH85".into()), window)
        .await
        .unwrap();
    assert_eq!(
        timelines.len(),
        1,
        "a PagerDuty schedule imports as one role"
    );
    assert_eq!(timelines[0].name, "primary");
    let periods = &timelines[0].periods;
    assert_eq!(periods.len(), 1);
    assert_eq!(periods[0].start, utc("2015-11-10T13:00:00Z"));
    assert_eq!(periods[0].end, utc("2015-11-10T22:00:00Z"));
    assert_eq!(
        periods[0].member,
        email("125.greenholt.earline@graham.name")
    );
    let asked: Vec<(String, String)> = server
        .received_requests()
        .await
        .unwrap()
        .iter()
        .filter(|r| r.url.path() == "/schedules/PI7DH85")
        .map(|r| {
            let q = |k: &str| {
                r.url
                    .query_pairs()
                    .find(|(n, _)| n == k)
                    .unwrap()
                    .1
                    .into_owned()
            };
            (q("since"), q("until"))
        })
        .collect();
    assert_eq!(
        asked,
        [
            (
                "2015-11-01T00:00:00Z".to_owned(),
                "2015-12-01T00:00:00Z".to_owned()
            ),
            (
                "2015-12-01T00:00:00Z".to_owned(),
                "2015-12-15T00:00:00Z".to_owned()
            ),
        ]
    );
}

/// Two consecutive daily turns of one person stay two shifts (as Opsgenie and the in-memory
/// provider import them), while the copy of a turn that crosses a chunk border (`overflow=true`
/// answers it whole in both chunks) becomes one.
#[tokio::test]
async fn an_import_keeps_consecutive_turns_apart_and_joins_chunk_copies() {
    let server = MockServer::start().await;
    mount_users(&server).await;
    let entry = |start: &str, end: &str, user: &str| {
        format!(
            r#"{{"start":"{start}","end":"{end}","user":{{"id":"{user}","type":"user_reference"}}}}"#
        )
    };
    let answer = |entries: &[String]| {
        json(&format!(
            r#"{{"schedule":{{"id":"PI7DH85","type":"schedule","name":"Ops","time_zone":"UTC",
                "users":[],"schedule_layers":[],
                "final_schedule":{{"name":"Final Schedule","rendered_schedule_entries":[{}]}}}}}}"#,
            entries.join(",")
        ))
    };
    // Scott on Nov 29 and Nov 30 (two turns that touch), then Aurelio from Nov 30 09:00 across the
    // chunk border at Dec 1 00:00 into Dec 1 09:00, answered whole by both chunks.
    let crossing = entry("2015-11-30T09:00:00Z", "2015-12-01T09:00:00Z", "PEYSGVF");
    pd("GET", "/schedules/PI7DH85")
        .and(query_param("since", "2015-11-01T00:00:00Z"))
        .and(query_param("overflow", "true"))
        .respond_with(answer(&[
            entry("2015-11-28T09:00:00Z", "2015-11-29T09:00:00Z", "P37CSDJ"),
            entry("2015-11-29T09:00:00Z", "2015-11-30T09:00:00Z", "P37CSDJ"),
            crossing.clone(),
        ]))
        .expect(1)
        .mount(&server)
        .await;
    pd("GET", "/schedules/PI7DH85")
        .and(query_param("since", "2015-12-01T00:00:00Z"))
        .and(query_param("overflow", "true"))
        .respond_with(answer(&[crossing]))
        .expect(1)
        .mount(&server)
        .await;
    catch_all(&server).await;
    let window = Window::new(utc("2015-11-01T00:00:00Z"), utc("2015-12-15T00:00:00Z")).unwrap();
    let timelines = provider(&server)
        .on_call(&VendorScheduleId("PI7DH85".into()), window)
        .await
        .unwrap();
    let got: Vec<(DateTime<Utc>, DateTime<Utc>, String)> = timelines[0]
        .periods
        .iter()
        .map(|p| (p.start, p.end, p.member.to_string()))
        .collect();
    assert_eq!(
        got,
        [
            (
                utc("2015-11-28T09:00:00Z"),
                utc("2015-11-29T09:00:00Z"),
                "scott@example.com".to_owned()
            ),
            (
                utc("2015-11-29T09:00:00Z"),
                utc("2015-11-30T09:00:00Z"),
                "scott@example.com".to_owned()
            ),
            (
                utc("2015-11-30T09:00:00Z"),
                utc("2015-12-01T09:00:00Z"),
                "aurelio.rice@example.com".to_owned()
            ),
        ]
    );
}

#[tokio::test]
async fn lists_overrides_whole_with_users_past_the_first_page() {
    let server = MockServer::start().await;
    mount_users(&server).await;
    pd("GET", "/schedules/PI7DH85/overrides")
        // Asked from 60 days earlier (LISTING_LOOKBACK): a running override shows under either
        // reading of the listing's filter.
        .and(query_param("since", "2012-05-02T12:00:00Z"))
        .and(query_param("until", "2012-07-01T13:00:00Z"))
        .and(query_param("overflow", "true"))
        .respond_with(json(include_str!("fixtures/overrides.json")))
        .expect(1)
        .mount(&server)
        .await;
    catch_all(&server).await;
    let p = provider(&server);
    let window = Window::new(utc("2012-07-01T12:00:00Z"), utc("2012-07-01T13:00:00Z")).unwrap();
    let listed = p
        .list_overrides(&VendorScheduleId("PI7DH85".into()), window)
        .await
        .unwrap();
    assert_eq!(listed.len(), 1);
    assert_eq!(listed[0].id.as_str(), "PQ47DCP");
    assert_eq!(
        listed[0].span,
        Span::new(
            utc("2012-07-01T04:00:00Z"),
            utc("2012-07-02T04:00:00Z"),
            // PEYSGVF is on the second page, as Aurelio.Rice@Example.COM.
            email("aurelio.rice@example.com")
        )
    );
}

#[tokio::test]
async fn creates_a_batch_and_reads_per_item_results() {
    let server = MockServer::start().await;
    mount_users(&server).await;
    let item = |s: &str, e: &str| serde_json::json!({"start": s, "end": e, "user": {"id": "P37CSDJ", "type": "user_reference"}});
    pd("POST", "/schedules/PI7DH85/overrides")
        .and(header("content-type", "application/json"))
        .and(body_json(serde_json::json!({"overrides": [
            item("2021-03-09T05:00:00Z", "2021-03-09T17:00:00Z"),
            item("2021-03-10T05:00:00Z", "2021-03-10T17:00:00Z"),
            item("2021-03-11T05:00:00Z", "2021-03-11T05:00:00Z"),
        ]})))
        .respond_with(
            ResponseTemplate::new(201)
                .set_body_raw(include_str!("fixtures/create_201.json"), "application/json"),
        )
        .expect(1)
        .mount(&server)
        .await;
    catch_all(&server).await;
    let p = provider(&server);
    let scott = email("Scott@Example.com");
    let new = |s: &str, e: &str, who: &Email| NewOverride {
        span: Span::new(utc(s), utc(e), who.clone()),
        id: None,
    };
    let unknown = email("nobody@example.com");
    let batch = [
        new("2021-03-09T05:00:00Z", "2021-03-09T17:00:00Z", &scott),
        new("2021-03-09T17:00:00Z", "2021-03-10T05:00:00Z", &unknown),
        new("2021-03-10T05:00:00Z", "2021-03-10T17:00:00Z", &scott),
        new("2021-03-11T05:00:00Z", "2021-03-11T05:00:00Z", &scott),
    ];
    let results = p
        .create_overrides(&VendorScheduleId("PI7DH85".into()), &batch)
        .await
        .unwrap();
    assert_eq!(results.len(), 4, "one result per item, in order");
    let first = results[0].as_ref().unwrap();
    assert_eq!(first.id.as_str(), "Q3X6MJ1LUKD6QW");
    assert_eq!(first.span, batch[0].span);
    assert!(
        matches!(&results[1], Err(Error::UnknownMember { email, .. }) if *email == unknown),
        "an unknown member is not sent and is named: {:?}",
        results[1]
    );
    assert_eq!(results[2].as_ref().unwrap().id.as_str(), "Q37A85CJZP1DTT");
    assert!(
        matches!(&results[3], Err(Error::Rejected { message }) if message.contains("Override must end after its start")),
        "{:?}",
        results[3]
    );
    // The directory was read once: the unknown email did not reload a directory read just now.
    for r in &results {
        if let Err(e) = r {
            no_key_in(e);
        }
    }
}

/// A check of one create result.
type CreateCheck = fn(&Result<oncall_core::Override, Error>) -> bool;

#[tokio::test]
async fn accepts_every_documented_create_answer() {
    let cases: [(u16, &str, CreateCheck); 3] = [
        (201, include_str!("fixtures/create_single.json"), |r| {
            r.as_ref().is_ok_and(|o| o.id.as_str() == "PQ47DCP")
        }),
        (201, include_str!("fixtures/create_wrapped.json"), |r| {
            r.as_ref().is_ok_and(|o| o.id.as_str() == "Q3X6MJ1LUKD6QW")
        }),
        (
            400,
            include_str!("fixtures/create_all_failed_400.json"),
            |r| matches!(r, Err(Error::Rejected { message }) if message.contains("end in the future")),
        ),
    ];
    for (status, body, check) in cases {
        let server = MockServer::start().await;
        mount_users(&server).await;
        pd("POST", "/schedules/PI7DH85/overrides")
            .respond_with(ResponseTemplate::new(status).set_body_raw(body, "application/json"))
            .expect(1)
            .mount(&server)
            .await;
        catch_all(&server).await;
        let p = provider(&server);
        // The single-form fixture answers for Aurelio Rice; the others for Scott.
        let (who, s, e) = if body.contains("PQ47DCP") {
            (
                "aurelio.rice@example.com",
                "2012-07-01T04:00:00Z",
                "2012-07-02T04:00:00Z",
            )
        } else {
            (
                "scott@example.com",
                "2021-03-09T05:00:00Z",
                "2021-03-09T17:00:00Z",
            )
        };
        let batch = [NewOverride {
            span: Span::new(utc(s), utc(e), email(who)),
            id: None,
        }];
        let results = p
            .create_overrides(&VendorScheduleId("PI7DH85".into()), &batch)
            .await
            .unwrap();
        assert_eq!(results.len(), 1);
        assert!(check(&results[0]), "{body}: {:?}", results[0]);
    }
}

#[tokio::test]
async fn deletes_tell_deleted_from_truncated_and_map_errors() {
    let server = MockServer::start().await;
    let answers: [(&str, ResponseTemplate); 5] = [
        ("A", ResponseTemplate::new(204)),
        ("B", ResponseTemplate::new(200)),
        (
            "C",
            ResponseTemplate::new(404)
                .set_body_raw(include_str!("fixtures/error_404.json"), "application/json"),
        ),
        (
            "D",
            ResponseTemplate::new(400).set_body_raw(
                include_str!("fixtures/error_400_errors_string.json"),
                "application/json",
            ),
        ),
        (
            "E",
            ResponseTemplate::new(403)
                .set_body_raw(include_str!("fixtures/error_403.json"), "application/json"),
        ),
    ];
    for (id, answer) in answers {
        pd("DELETE", &format!("/schedules/PI7DH85/overrides/{id}"))
            .respond_with(answer)
            .expect(1) // none of these is retried
            .mount(&server)
            .await;
    }
    catch_all(&server).await;
    let p = provider(&server);
    let s = VendorScheduleId("PI7DH85".into());
    let del = |id: &'static str| {
        let p = p.clone();
        let s = s.clone();
        async move {
            p.delete_override(&s, &oncall_core::OverrideId::new(id))
                .await
        }
    };
    assert_eq!(del("A").await, Ok(Deletion::Deleted));
    assert_eq!(del("B").await, Ok(Deletion::Truncated));
    let c = del("C").await.unwrap_err();
    assert!(
        matches!(&c, Error::NotFound { resource: Resource::Override(id), .. } if id == "C"),
        "{c:?}"
    );
    // The spec lists no 400 for this endpoint: what it refused, and whether the override is still
    // there, is for a read to settle (issue 13, defect 1), never a truncation taken for granted.
    let d = del("D").await.unwrap_err();
    assert!(
        matches!(&d, Error::Transient { message } if message.contains("Override must end in the future") && message.contains("read back")),
        "{d:?}"
    );
    let e = del("E").await.unwrap_err();
    assert!(
        matches!(&e, Error::PermissionDenied { message } if message.contains("read-only")),
        "{e:?}"
    );
    for e in [c, d, e] {
        no_key_in(&e);
    }
}

/// A vendor or a proxy that echoes the key in its answer: no error carries it on, whether the
/// client maps the answer or the provider reads it (a batch's 400, an item's refusal).
#[tokio::test]
async fn an_answer_that_echoes_the_key_leaves_no_trace_of_it_in_errors() {
    let server = MockServer::start().await;
    mount_users(&server).await;
    let echo = format!(
        r#"{{"error":{{"message":"Invalid Input Provided","code":2001,"errors":["Token token={KEY} may not do this"]}}}}"#
    );
    pd("POST", "/schedules/PI7DH85/overrides")
        .and(wiremock::matchers::body_string_contains(
            "2021-03-09T05:00:00Z",
        ))
        .respond_with(ResponseTemplate::new(400).set_body_raw(echo.clone(), "application/json"))
        .expect(1)
        .mount(&server)
        .await;
    let item_echo = format!(
        r#"[{{"status":400,"errors":["User scott@example.com invalid for key {KEY}"],"override":{{"start":"2021-03-10T05:00:00Z","end":"2021-03-10T17:00:00Z","user":{{"id":"P37CSDJ"}}}}}}]"#
    );
    pd("POST", "/schedules/PI7DH85/overrides")
        .and(wiremock::matchers::body_string_contains(
            "2021-03-10T05:00:00Z",
        ))
        .respond_with(ResponseTemplate::new(201).set_body_raw(item_echo, "application/json"))
        .expect(1)
        .mount(&server)
        .await;
    pd("GET", "/schedules/PI7DH85")
        .respond_with(ResponseTemplate::new(401).set_body_raw(echo, "application/json"))
        .mount(&server)
        .await;
    catch_all(&server).await;
    let p = provider(&server);
    let id = VendorScheduleId("PI7DH85".into());
    let item = |day: u32| NewOverride {
        span: Span::new(
            Utc.with_ymd_and_hms(2021, 3, day, 5, 0, 0).unwrap(),
            Utc.with_ymd_and_hms(2021, 3, day, 17, 0, 0).unwrap(),
            email("scott@example.com"),
        ),
        id: None,
    };
    let refused = p.create_overrides(&id, &[item(9)]).await;
    match &refused {
        Err(e) => no_key_in(e),
        Ok(results) => results
            .iter()
            .flat_map(|r| r.as_ref().err())
            .for_each(no_key_in),
    }
    assert!(
        refused.is_err() || matches!(&refused, Ok(r) if r[0].is_err()),
        "{refused:?}"
    );
    let results = p.create_overrides(&id, &[item(10)]).await.unwrap();
    let e = results[0].as_ref().unwrap_err();
    no_key_in(e);
    let e = p.schedule(&id).await.unwrap_err();
    assert!(matches!(e, Error::Unauthenticated { .. }), "{e:?}");
    no_key_in(&e);
}

#[tokio::test]
async fn a_bad_key_is_unauthenticated_and_names_the_region() {
    let server = MockServer::start().await;
    pd("GET", "/schedules")
        .respond_with(
            ResponseTemplate::new(401)
                .set_body_raw(include_str!("fixtures/error_401.html"), "text/html"),
        )
        .expect(1)
        .mount(&server)
        .await;
    catch_all(&server).await;
    let e = provider(&server).list_schedules().await.unwrap_err();
    assert!(
        matches!(&e, Error::Unauthenticated { message } if message.contains("region") && message.contains("401 Authorization Required")),
        "{e:?}"
    );
    no_key_in(&e);
}

#[tokio::test]
async fn rate_limits_are_waited_out_even_for_creates() {
    let server = MockServer::start().await;
    mount_users(&server).await;
    let limited = ResponseTemplate::new(429)
        .insert_header("ratelimit-limit", "960")
        .insert_header("ratelimit-remaining", "0")
        .insert_header("ratelimit-reset", "0")
        .set_body_raw(include_str!("fixtures/error_429.json"), "application/json");
    pd("POST", "/schedules/PI7DH85/overrides")
        .respond_with(limited.clone())
        .up_to_n_times(2)
        .expect(2)
        .with_priority(1)
        .mount(&server)
        .await;
    pd("POST", "/schedules/PI7DH85/overrides")
        .respond_with(ResponseTemplate::new(201).set_body_raw(
            include_str!("fixtures/create_wrapped.json"),
            "application/json",
        ))
        .expect(1)
        .mount(&server)
        .await;
    catch_all(&server).await;
    let p = provider(&server);
    let batch = [NewOverride {
        span: Span::new(
            utc("2021-03-09T05:00:00Z"),
            utc("2021-03-09T17:00:00Z"),
            email("scott@example.com"),
        ),
        id: None,
    }];
    let results = p
        .create_overrides(&VendorScheduleId("PI7DH85".into()), &batch)
        .await
        .unwrap();
    assert!(
        results[0].is_ok(),
        "the vendor refused twice, then took it: {results:?}"
    );
}

#[tokio::test]
async fn server_errors_retry_reads_within_bounds_and_never_creates() {
    let server = MockServer::start().await;
    mount_users(&server).await;
    // A read: two 503s, then the answer.
    pd("GET", "/schedules/PI7DH85/overrides")
        .respond_with(ResponseTemplate::new(503).set_body_string("Service Unavailable"))
        .up_to_n_times(2)
        .expect(2)
        .with_priority(1)
        .mount(&server)
        .await;
    pd("GET", "/schedules/PI7DH85/overrides")
        .respond_with(json(include_str!("fixtures/overrides.json")))
        .expect(1)
        .mount(&server)
        .await;
    // A create: a 502 may mean it landed; it is not sent again.
    pd("POST", "/schedules/PI7DH85/overrides")
        .respond_with(ResponseTemplate::new(502))
        .expect(1)
        .mount(&server)
        .await;
    // A read that never succeeds: bounded by the policy's attempts.
    pd("GET", "/schedules/PBROKEN/overrides")
        .respond_with(ResponseTemplate::new(500).set_body_string("Internal Server Error"))
        .expect(4)
        .mount(&server)
        .await;
    catch_all(&server).await;
    let p = provider(&server);
    let window = Window::new(utc("2012-07-01T00:00:00Z"), utc("2012-07-03T00:00:00Z")).unwrap();
    let listed = p
        .list_overrides(&VendorScheduleId("PI7DH85".into()), window)
        .await
        .unwrap();
    assert_eq!(listed.len(), 1);
    let batch = [NewOverride {
        span: Span::new(
            utc("2021-03-09T05:00:00Z"),
            utc("2021-03-09T17:00:00Z"),
            email("scott@example.com"),
        ),
        id: None,
    }];
    let lost = p
        .create_overrides(&VendorScheduleId("PI7DH85".into()), &batch)
        .await;
    assert!(matches!(&lost, Err(Error::Transient { .. })), "{lost:?}");
    let broken = p
        .list_overrides(&VendorScheduleId("PBROKEN".into()), window)
        .await;
    assert!(
        matches!(&broken, Err(Error::Transient { .. })),
        "{broken:?}"
    );
}

#[tokio::test]
async fn a_malformed_answer_names_the_field_and_nothing_is_written() {
    let server = MockServer::start().await;
    // The directory serves the create's user; the reads fail before any user id needs it.
    mount_users(&server).await;
    // A create that landed, answered with an item that lacks its end: one POST, never again.
    pd("POST", "/schedules/PI7DH85/overrides")
        .respond_with(ResponseTemplate::new(201).set_body_raw(
            r#"[{"status":201,"override":{"id":"Q1","start":"2021-03-09T05:00:00Z","user":{"id":"P37CSDJ"}}}]"#,
            "application/json",
        ))
        .expect(1)
        .mount(&server)
        .await;
    pd("GET", "/schedules/PI7DH85/overrides")
        .respond_with(json(
            r#"{"overrides":[{"id":"PQ47DCP","start":"2012-07-01T00:00:00-04:00","user":{"id":"PEYSGVF"}}]}"#,
        ))
        .expect(1)
        .mount(&server)
        .await;
    pd("GET", "/schedules/PBAD")
        .respond_with(json(
            r#"{"schedule": {"id": "PBAD", "type": "schedule", "name": "x"}}"#,
        ))
        .expect(1)
        .mount(&server)
        .await;
    pd("GET", "/schedules/PCUT/overrides")
        .respond_with(json(r#"{"overrides": [{"id": "#))
        .expect(1)
        .mount(&server)
        .await;
    catch_all(&server).await; // no write after any of these
    let p = provider(&server);
    let window = Window::new(utc("2012-07-01T00:00:00Z"), utc("2012-07-03T00:00:00Z")).unwrap();
    let e = p
        .list_overrides(&VendorScheduleId("PI7DH85".into()), window)
        .await
        .unwrap_err();
    assert!(
        matches!(&e, Error::InvalidResponse { message } if message.contains("overrides[0]") && message.contains("end")),
        "{e:?}"
    );
    let e = p
        .schedule(&VendorScheduleId("PBAD".into()))
        .await
        .unwrap_err();
    assert!(
        matches!(&e, Error::InvalidResponse { message } if message.contains("schedule") && message.contains("time_zone")),
        "{e:?}"
    );
    let e = p
        .list_overrides(&VendorScheduleId("PCUT".into()), window)
        .await
        .unwrap_err();
    assert!(matches!(&e, Error::InvalidResponse { .. }), "{e:?}");
    // The write: the whole call is the malformed answer, naming the field; nothing is re-sent
    // (the catch-all and the POST's `expect(1)` check it when the server drops).
    let batch = [NewOverride {
        span: Span::new(
            utc("2021-03-09T05:00:00Z"),
            utc("2021-03-09T17:00:00Z"),
            email("scott@example.com"),
        ),
        id: None,
    }];
    // A 201 whose item cannot be read landed all the same: an answer lost (the sync reads back
    // what landed), never a fatal malformed answer (issue 13, defect 7).
    let e = p
        .create_overrides(&VendorScheduleId("PI7DH85".into()), &batch)
        .await
        .unwrap_err();
    assert!(
        matches!(&e, Error::Transient { message } if message.contains("[0].override") && message.contains("end") && message.contains("read back")),
        "{e:?}"
    );
}

/// A full-access key that may not see one schedule: PagerDuty answers 403 to the read, which the
/// spec defines as "not authorized to view the requested resource": a refusal that names the
/// schedule, never a missing schedule (a wrong "not found" is not safe: issue 13, defect 4), and
/// never taken for R8's read-only key (the message says it is a read that was refused).
#[tokio::test]
async fn a_schedule_forbidden_to_the_key_is_a_refusal_not_a_missing_schedule() {
    let server = MockServer::start().await;
    let forbidden = || {
        ResponseTemplate::new(403)
            .set_body_raw(include_str!("fixtures/error_403.json"), "application/json")
    };
    pd("GET", "/schedules/PHIDDEN")
        .respond_with(forbidden())
        .expect(1)
        .mount(&server)
        .await;
    pd("GET", "/schedules/PHIDDEN/overrides")
        .respond_with(forbidden())
        .expect(1)
        .mount(&server)
        .await;
    catch_all(&server).await;
    let p = provider(&server);
    let id = VendorScheduleId("PHIDDEN".into());
    let window = Window::new(utc("2024-01-01T00:00:00Z"), utc("2024-01-02T00:00:00Z")).unwrap();
    let errors = [
        p.schedule(&id).await.unwrap_err(),
        p.list_overrides(&id, window).await.unwrap_err(),
    ];
    for e in &errors {
        assert!(
            matches!(e, Error::PermissionDenied { message }
                if message.contains("PHIDDEN") && message.contains("may not view") && !message.contains("read-only")),
            "{e:?}"
        );
        no_key_in(e);
    }
}

#[tokio::test]
async fn a_shift_based_schedule_says_so() {
    let server = MockServer::start().await;
    pd("GET", "/schedules/PV3FLEX")
        .respond_with(json(include_str!("fixtures/schedule_v3.json")))
        .expect(2)
        .mount(&server)
        .await;
    pd("GET", "/schedules/PV3FLEX/overrides")
        .respond_with(ResponseTemplate::new(400).set_body_raw(
            r#"{"error":{"message":"Invalid Schedule","code":3001}}"#,
            "application/json",
        ))
        .expect(1)
        .mount(&server)
        .await;
    catch_all(&server).await;
    let p = provider(&server);
    let id = VendorScheduleId("PV3FLEX".into());
    let e = p.schedule(&id).await.unwrap_err();
    assert!(
        matches!(&e, Error::Unsupported { message } if message.contains("shift-based") && message.contains("layer-based")),
        "{e:?}"
    );
    let window = Window::new(utc("2024-01-01T00:00:00Z"), utc("2024-01-02T00:00:00Z")).unwrap();
    let e = p.list_overrides(&id, window).await.unwrap_err();
    assert!(
        matches!(&e, Error::Unsupported { message } if message.contains("shift-based")),
        "{e:?}"
    );
}

/// PagerDuty pages no further than `offset + limit` = 10000. The directory stops there (never
/// asking past it) and a member it does not hold is found with `query`, matched exactly.
#[tokio::test]
async fn a_directory_past_ten_thousand_users_stops_at_the_cap_and_asks_by_query() {
    let server = MockServer::start().await;
    pd("GET", "/users")
        .and(query_param_is_missing("query"))
        .respond_with(|r: &Request| {
            let offset: usize = r
                .url
                .query_pairs()
                .find(|(k, _)| k == "offset")
                .and_then(|(_, v)| v.parse().ok())
                .unwrap_or(0);
            let users: Vec<_> = (offset..offset + 100)
                .map(|i| serde_json::json!({"id": format!("P{i}"), "name": "u", "email": format!("u{i}@example.com")}))
                .collect();
            ResponseTemplate::new(200)
                .set_body_json(serde_json::json!({"users": users, "limit": 100, "offset": offset, "more": true}))
        })
        .expect(100)
        .mount(&server)
        .await;
    pd("GET", "/users")
        .and(query_param("query", "u12000@example.com"))
        .respond_with(json(
            r#"{"users": [{"id": "PX1", "name": "Decoy", "email": "xu12000@example.com"},
                          {"id": "P12000", "name": "Late", "email": "U12000@Example.com"}],
                "limit": 100, "offset": 0, "more": false, "total": null}"#,
        ))
        .expect(1)
        .mount(&server)
        .await;
    pd("POST", "/schedules/PX/overrides")
        .and(body_json(serde_json::json!({"overrides": [{"start": "2030-01-01T00:00:00Z", "end": "2030-01-02T00:00:00Z", "user": {"id": "P12000", "type": "user_reference"}}]})))
        .respond_with(ResponseTemplate::new(201).set_body_raw(
            r#"[{"status":201,"override":{"id":"Q1","start":"2030-01-01T00:00:00Z","end":"2030-01-02T00:00:00Z","user":{"id":"P12000"}}}]"#,
            "application/json",
        ))
        .expect(1)
        .mount(&server)
        .await;
    catch_all(&server).await;
    let p = provider(&server);
    let batch = [NewOverride {
        span: Span::new(
            Utc.with_ymd_and_hms(2030, 1, 1, 0, 0, 0).unwrap(),
            Utc.with_ymd_and_hms(2030, 1, 2, 0, 0, 0).unwrap(),
            email("U12000@example.com"),
        ),
        id: None,
    }];
    let results = p
        .create_overrides(&VendorScheduleId("PX".into()), &batch)
        .await
        .unwrap();
    assert_eq!(results[0].as_ref().unwrap().id.as_str(), "Q1");
    let last = server
        .received_requests()
        .await
        .unwrap()
        .iter()
        .filter_map(|r| {
            r.url
                .query_pairs()
                .find(|(k, _)| k == "offset")
                .map(|(_, v)| v.parse::<u32>().unwrap())
        })
        .max();
    assert_eq!(last, Some(9900), "offset + limit never passed 10000");
}

#[tokio::test]
async fn a_rate_limit_without_headers_backs_off_and_retries() {
    let server = MockServer::start().await;
    // "429 without the rate limit headers or the response body" may happen ([D-RATE]).
    pd("GET", "/schedules")
        .respond_with(ResponseTemplate::new(429))
        .up_to_n_times(3)
        .expect(3)
        .with_priority(1)
        .mount(&server)
        .await;
    pd("GET", "/schedules")
        .respond_with(json(
            r#"{"schedules": [], "limit": 100, "offset": 0, "more": false}"#,
        ))
        .expect(1)
        .mount(&server)
        .await;
    catch_all(&server).await;
    assert_eq!(
        provider(&server).list_schedules().await.unwrap().schedules,
        []
    );
    // Past the policy's attempts the rate limit is reported, with no wait hint.
    let server = MockServer::start().await;
    pd("GET", "/schedules")
        .respond_with(ResponseTemplate::new(429))
        .expect(4)
        .mount(&server)
        .await;
    catch_all(&server).await;
    let e = provider(&server).list_schedules().await.unwrap_err();
    assert!(
        matches!(
            e,
            Error::RateLimited {
                retry_after: None,
                ..
            }
        ),
        "{e:?}"
    );
}

#[tokio::test]
async fn users_missing_from_the_directory_are_looked_up_or_kept_apart() {
    let server = MockServer::start().await;
    mount_users(&server).await;
    pd("GET", "/schedules/PI7DH85/overrides")
        .respond_with(json(
            r#"{"overrides": [
                {"id": "PNEW01", "start": "2012-07-03T00:00:00Z", "end": "2012-07-04T00:00:00Z",
                 "user": {"id": "PADDED1", "type": "user_reference", "summary": "Added Later"}},
                {"id": "PGONE1", "start": "2012-07-01T00:00:00Z", "end": "2012-07-02T00:00:00Z",
                 "user": {"id": "PGONE", "type": "user_reference", "summary": "Deleted User"}}]}"#,
        ))
        .expect(2)
        .mount(&server)
        .await;
    // Added since the directory was read: one lookup by id.
    pd("GET", "/users/PADDED1")
        .respond_with(json(
            r#"{"user": {"id": "PADDED1", "type": "user", "name": "Added Later", "email": "Added.Later@Example.com"}}"#,
        ))
        .expect(1)
        .mount(&server)
        .await;
    // Deleted: PagerDuty still names the user in old overrides, but the user is gone.
    pd("GET", "/users/PGONE")
        .respond_with(
            ResponseTemplate::new(404)
                .set_body_raw(include_str!("fixtures/error_404.json"), "application/json"),
        )
        .expect(1)
        .mount(&server)
        .await;
    catch_all(&server).await;
    let p = provider(&server);
    let window = Window::new(utc("2012-07-01T00:00:00Z"), utc("2012-07-05T00:00:00Z")).unwrap();
    let listed = p
        .list_overrides(&VendorScheduleId("PI7DH85".into()), window)
        .await
        .unwrap();
    let who: Vec<(&str, &str)> = listed
        .iter()
        .map(|o| (o.id.as_str(), o.span.member.as_str()))
        .collect();
    assert_eq!(
        who,
        [
            ("PGONE1", "pgone@deleted-user.pagerduty.invalid"),
            ("PNEW01", "added.later@example.com"),
        ],
        "sorted by start; a deleted user is nobody the host knows"
    );
    // Looked-up users are remembered: a second listing makes no lookup (expect(1) above).
    p.list_overrides(&VendorScheduleId("PI7DH85".into()), window)
        .await
        .map(|_| ())
        .unwrap_or_else(|e| panic!("{e}"));
}
