//! Issue 13 ("Vendor truth"), PagerDuty: one named test per defect the independent review found,
//! each against the simulator speaking the reading that shows it (or wiremock with the vendor's
//! own bodies where the simulator has no such answer).

#![allow(clippy::unwrap_used)] // tests: a panic is the failure report

use std::time::Duration;

use chrono::{DateTime, NaiveDate, TimeDelta, TimeZone, Utc};
use oncall_core::testkit::{Fault, Trigger, VendorSimulator};
use oncall_core::{
    desired_spans, expand_rotation, sync, ConnectionId, Deletion, Destination, DestinationId,
    Email, Error, InMemoryStateStore, Member, NewOverride, Participant, Provider, RoleIndex,
    Rotation, RotationUnit, Schedule, ScheduleId, Shift, Span, SyncMode, SyncOptions, SyncReport,
    SyncStatus, SyncTarget, VendorSchedule, VendorScheduleId, Window,
};
use oncall_pagerduty::testkit::{
    DeleteAnswer, HttpFault, LayerOrder, LayerTurns, ListingFilter, ListingLag, LostWrites,
    PagerDutyDialect, PagerDutySimulator,
};
use oncall_pagerduty::PagerDutyProvider;
use wiremock::matchers::{any, method, path};
use wiremock::{Mock, MockServer, ResponseTemplate};

const PEOPLE: [&str; 5] = ["ann", "bob", "cat", "dan", "eve"];

fn email(name: &str) -> Email {
    Email::parse(&format!("{name}@example.com")).unwrap()
}

fn members() -> Vec<Member> {
    PEOPLE.iter().map(|n| Member::new(email(n), *n)).collect()
}

/// Day `d` of 2024 at 09:00 UTC, the handoff.
fn day(d: i64) -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2024, 1, 1, 9, 0, 0).unwrap() + TimeDelta::days(d)
}

fn vendor_schedule(id: &str, rotations: Vec<Rotation>) -> VendorSchedule {
    VendorSchedule {
        id: VendorScheduleId(id.into()),
        name: id.into(),
        zone: chrono_tz::UTC,
        members: members(),
        rotations,
    }
}

/// Daily shifts from day 0 to day `days`, round-robin.
fn host(days: i64) -> Schedule {
    let shifts = (0..days)
        .map(|d| {
            Shift::new(
                day(d),
                day(d + 1),
                vec![Some(email(PEOPLE[d as usize % PEOPLE.len()]))],
            )
        })
        .collect();
    Schedule::new(
        ScheduleId("host".into()),
        chrono_tz::UTC,
        vec![RoleIndex::PRIMARY.default_name()],
        members(),
        shifts,
    )
    .unwrap()
}

fn destination(schedule: &str) -> Destination {
    Destination {
        id: DestinationId(format!("dest-{schedule}")),
        connection: ConnectionId("pagerduty".into()),
        schedule: VendorScheduleId(schedule.into()),
        role: RoleIndex::PRIMARY,
    }
}

async fn run(
    schedule: &Schedule,
    provider: &PagerDutyProvider,
    dest: &Destination,
    store: &InMemoryStateStore,
    now: DateTime<Utc>,
    days: i64,
) -> SyncReport {
    let targets = [SyncTarget {
        destination: dest,
        provider,
    }];
    let options = SyncOptions {
        now,
        horizon: Some(TimeDelta::days(days)),
        mode: SyncMode::Apply,
    };
    sync(schedule, &targets, store, options).await.unwrap()
}

fn held(sim: &PagerDutySimulator, id: &str) -> Vec<(DateTime<Utc>, DateTime<Utc>, Email)> {
    sim.overrides(&VendorScheduleId(id.into()))
        .into_iter()
        .map(|o| (o.span.start, o.span.end, o.span.member))
        .collect()
}

/// The desired spans of the primary, as the vendor should hold them (clipped at now).
fn desired(
    schedule: &Schedule,
    now: DateTime<Utc>,
    days: i64,
) -> Vec<(DateTime<Utc>, DateTime<Utc>, Email)> {
    let d = desired_spans(
        schedule,
        RoleIndex::PRIMARY,
        now,
        Some(TimeDelta::days(days)),
    )
    .unwrap();
    d.spans()
        .iter()
        .map(|s| (s.start.max(now), s.end, s.member.clone()))
        .collect()
}

async fn sim_with(now: DateTime<Utc>, dialect: PagerDutyDialect, id: &str) -> PagerDutySimulator {
    let sim = PagerDutySimulator::start_with(now, dialect).await;
    sim.add_schedule(vendor_schedule(id, vec![]));
    sim
}

// ---- defect 1: a delete is done on 204/200, or when a read shows it ---------------------------

/// The account lock refuses a delete twice (400, "... account could not be locked"): the delete
/// is not done until PagerDuty says so; the adapter's retries get it through.
#[tokio::test]
async fn a_delete_refused_twice_by_the_account_lock_is_not_taken_for_done() {
    let dialect = PagerDutyDialect {
        delete_answer: DeleteAnswer::AccountLocked { refusals: 2 },
        ..PagerDutyDialect::default()
    };
    let sim = sim_with(day(5), dialect, "PLOCK").await;
    let id = VendorScheduleId("PLOCK".into());
    let future = sim.insert_override(&id, Span::new(day(7), day(8), email("cat")));
    let provider = sim.provider();
    let deleted = provider.delete_override(&id, &future).await;
    assert_eq!(deleted, Ok(Deletion::Deleted));
    assert!(sim.overrides(&id).is_empty(), "{:?}", sim.overrides(&id));
}

/// A lock that outlasts every retry: the outcome stays unknown to the adapter, the sync reads the
/// override, still there, and holds the mark before it (R2, R5): no status ok over a foreign
/// override that stays for good.
#[tokio::test]
async fn a_delete_the_lock_keeps_refusing_holds_the_mark() {
    let now = day(2) + TimeDelta::hours(5);
    for dialect in [
        DeleteAnswer::AccountLocked { refusals: 50 },
        DeleteAnswer::TimedOut { refusals: 50 },
    ] {
        let dialect = PagerDutyDialect {
            delete_answer: dialect,
            ..PagerDutyDialect::default()
        };
        let sim = sim_with(now, dialect, "PLOCK").await;
        let id = VendorScheduleId("PLOCK".into());
        let stray = Span::new(
            day(6) + TimeDelta::hours(2),
            day(6) + TimeDelta::hours(5),
            email("eve"),
        );
        sim.insert_override(&id, stray.clone());
        let provider = sim.provider();
        let store = InMemoryStateStore::new();
        let dest = destination("PLOCK");
        let host = host(20);
        let report = run(&host, &provider, &dest, &store, now, 10).await;
        let d = &report.destinations[0];
        assert_ne!(d.status, SyncStatus::Ok, "{dialect:?}: {report}");
        assert!(
            sim.overrides(&id).iter().any(|o| o.span == stray),
            "the foreign override is still there"
        );
        let mark = store.get(&dest.id).unwrap().high_water;
        assert!(
            mark.is_none_or(|h| h <= day(6)),
            "{dialect:?}: the mark {mark:?} passed the override the vendor still holds"
        );
    }
}

// ---- defect 2: Content-Type on every request --------------------------------------------------

#[tokio::test]
async fn every_request_carries_the_json_content_type() {
    let now = day(2);
    let sim = sim_with(now, PagerDutyDialect::default(), "PCT").await;
    let provider = sim.provider();
    let id = VendorScheduleId("PCT".into());
    provider.list_schedules().await.unwrap();
    provider
        .list_overrides(&id, Window::new(day(2), day(9)).unwrap())
        .await
        .unwrap();
    provider
        .on_call(&id, Window::new(day(2), day(4)).unwrap())
        .await
        .unwrap();
    let created = provider
        .create_overrides(
            &id,
            &[NewOverride {
                span: Span::new(day(4), day(5), email("ann")),
                id: None,
            }],
        )
        .await
        .unwrap();
    provider
        .delete_override(&id, &created[0].as_ref().unwrap().id)
        .await
        .unwrap();
    let log = sim.requests();
    assert!(log.iter().any(|r| r.method == "GET"));
    for r in log {
        assert_eq!(
            r.content_type.as_deref(),
            Some("application/json"),
            "the spec requires it on every operation: {r:?}"
        );
    }
}

// ---- defect 3: layers as the vendor renders them ----------------------------------------------

fn berlin_layers() -> VendorSchedule {
    let at = |m, d, h| {
        NaiveDate::from_ymd_opt(2024, m, d)
            .unwrap()
            .and_hms_opt(h, 0, 0)
            .unwrap()
    };
    let m = |n: &str| Participant::Member(email(n));
    // Layer 2 (the winner, rotation 0): a weekly on-call at 09:00 for dan and eve, only on weekdays
    // 09:00-17:00. Layer 1: daily 09:00 handoffs of ann, bob, cat.
    let mut day_cover = Rotation::new(
        "Office hours",
        RotationUnit::Weekly,
        1,
        at(3, 4, 9),
        vec![m("dan"), m("eve")],
    );
    day_cover.restrictions = vec![oncall_core::Restriction::daily(
        chrono::NaiveTime::from_hms_opt(9, 0, 0).unwrap(),
        8 * 3600,
    )
    .unwrap()];
    let base = Rotation::new(
        "Base",
        RotationUnit::Daily,
        1,
        at(3, 1, 9),
        vec![m("ann"), m("bob"), m("cat")],
    );
    VendorSchedule {
        id: VendorScheduleId("PLAYERS".into()),
        name: "Layers".into(),
        zone: chrono_tz::Europe::Berlin,
        members: members(),
        rotations: vec![day_cover, base],
    }
}

/// The turns of whole days may run on absolute seconds (UNCONFIRMED): the schedule is read as
/// PagerDuty renders it, whatever the reading.
#[tokio::test]
async fn a_layer_is_read_as_the_vendor_renders_it_whatever_its_turns() {
    for turns in [LayerTurns::WallClock, LayerTurns::AbsoluteSeconds] {
        let dialect = PagerDutyDialect {
            layer_turns: turns,
            ..PagerDutyDialect::default()
        };
        let sim = PagerDutySimulator::start_with(day(0), dialect).await;
        let schedule = berlin_layers();
        sim.add_schedule(schedule.clone());
        let read = sim.provider().schedule(&schedule.id).await.unwrap();
        // After Berlin's spring-forward (2024-03-31), the daily layer's handoffs as read must be
        // where PagerDuty renders them.
        let window = Window::new(
            Utc.with_ymd_and_hms(2024, 4, 2, 0, 0, 0).unwrap(),
            Utc.with_ymd_and_hms(2024, 4, 6, 0, 0, 0).unwrap(),
        )
        .unwrap();
        let base = read
            .rotations
            .iter()
            .find(|r| r.name == "Base")
            .expect("the base layer is read");
        let ours: Vec<DateTime<Utc>> = expand_rotation(base, read.zone, window)
            .unwrap()
            .iter()
            .map(|p| p.start)
            .collect();
        let want = match turns {
            LayerTurns::WallClock => 7, // 09:00 CEST
            LayerTurns::AbsoluteSeconds => 8,
        };
        assert!(
            ours[1..]
                .iter()
                .all(|t| t.format("%H").to_string() == format!("{want:02}")),
            "{turns:?}: handoffs read at {ours:?}"
        );
    }
}

/// GET may list layers in POST order rather than reversed (UNCONFIRMED): the precedence read is
/// the one the final schedule shows.
#[tokio::test]
async fn layer_precedence_is_read_from_the_final_schedule_whatever_the_get_order() {
    for order in [LayerOrder::ReversedOnGet, LayerOrder::PostOrder] {
        let dialect = PagerDutyDialect {
            layer_order: order,
            ..PagerDutyDialect::default()
        };
        let sim = PagerDutySimulator::start_with(day(0), dialect).await;
        let schedule = berlin_layers();
        sim.add_schedule(schedule.clone());
        let read = sim.provider().schedule(&schedule.id).await.unwrap();
        let names: Vec<&str> = read.rotations.iter().map(|r| r.name.as_str()).collect();
        assert_eq!(
            names,
            ["Office hours", "Base"],
            "{order:?}: rotation 0 is the layer that wins"
        );
    }
}

// ---- defect 4: a 403 on a read is a refusal, not a missing resource ---------------------------

const KEY: &str = "y_NbAkKc66ryYTWUXYEu";

fn wiremock_provider(server: &MockServer) -> PagerDutyProvider {
    PagerDutyProvider::builder()
        .with_api_key(KEY)
        .with_base_url(server.uri())
        .with_retry(PagerDutySimulator::test_retry_policy())
        .with_rate_per_minute(600_000)
        .build()
        .unwrap()
}

fn json(status: u16, body: &str) -> ResponseTemplate {
    ResponseTemplate::new(status).set_body_raw(body.to_owned(), "application/json")
}

/// The captured 403 body (terraform-provider-pagerduty#310).
const FORBIDDEN: &str =
    r#"{"error":{"code":403,"errors":[],"message":"Insufficient permissions"}}"#;

/// A user the key may not read is not a deleted user: one of ours must never look foreign.
#[tokio::test]
async fn a_403_on_a_user_read_is_not_a_deleted_user() {
    let server = MockServer::start().await;
    Mock::given(method("GET"))
        .and(path("/users"))
        .respond_with(json(
            200,
            r#"{"users":[{"id":"PANN","name":"Ann","email":"ann@example.com"}],"limit":100,"offset":0,"more":false,"total":null}"#,
        ))
        .mount(&server)
        .await;
    Mock::given(method("GET"))
        .and(path("/schedules/PS/overrides"))
        .respond_with(json(
            200,
            r#"{"overrides":[{"id":"PO1","start":"2030-01-01T00:00:00Z","end":"2030-01-02T00:00:00Z",
                "user":{"id":"PHIDDEN","type":"user_reference","summary":"Hidden"}}]}"#,
        ))
        .mount(&server)
        .await;
    Mock::given(method("GET"))
        .and(path("/users/PHIDDEN"))
        .respond_with(json(403, FORBIDDEN))
        .mount(&server)
        .await;
    let provider = wiremock_provider(&server);
    let window = Window::new(
        Utc.with_ymd_and_hms(2030, 1, 1, 0, 0, 0).unwrap(),
        Utc.with_ymd_and_hms(2030, 1, 3, 0, 0, 0).unwrap(),
    )
    .unwrap();
    let result = provider
        .list_overrides(&VendorScheduleId("PS".into()), window)
        .await;
    assert!(
        matches!(&result, Err(Error::PermissionDenied { message }) if message.contains("Insufficient permissions")),
        "{result:?}"
    );
}

/// A schedule the key may not read is refused as the spec says (403: not permitted), not made a
/// missing schedule.
#[tokio::test]
async fn a_403_on_a_schedule_read_is_permission_denied() {
    let server = MockServer::start().await;
    Mock::given(method("GET"))
        .and(path("/schedules/PHIDDEN"))
        .respond_with(json(403, FORBIDDEN))
        .mount(&server)
        .await;
    let e = wiremock_provider(&server)
        .schedule(&VendorScheduleId("PHIDDEN".into()))
        .await
        .unwrap_err();
    assert!(matches!(&e, Error::PermissionDenied { .. }), "{e:?}");
    assert!(!e.to_string().contains(KEY));
}

// ---- defect 5 (and "one odd schedule") -------------------------------------------------------

/// The account lists only overrides that start in the window (UNCONFIRMED): a running override is
/// still seen, and a sync cuts it rather than ignore it.
#[tokio::test]
async fn a_running_override_is_seen_whatever_the_listing_filter() {
    let now = day(2) + TimeDelta::hours(5);
    for filter in [ListingFilter::Intersecting, ListingFilter::StartsInWindow] {
        let dialect = PagerDutyDialect {
            listing_filter: filter,
            ..PagerDutyDialect::default()
        };
        let sim = sim_with(now, dialect, "PRUN").await;
        let id = VendorScheduleId("PRUN".into());
        let running = Span::new(
            now - TimeDelta::hours(30),
            now + TimeDelta::hours(7),
            email("eve"),
        );
        let running_id = sim.insert_override(&id, running.clone());
        let provider = sim.provider();
        let listed = provider
            .list_overrides(&id, Window::new(now, now + TimeDelta::days(3)).unwrap())
            .await
            .unwrap();
        assert!(
            listed
                .iter()
                .any(|o| o.id == running_id && o.span == running),
            "{filter:?}: {listed:?}"
        );
        let store = InMemoryStateStore::new();
        let report = run(&host(20), &provider, &destination("PRUN"), &store, now, 10).await;
        assert_eq!(report.destinations[0].status, SyncStatus::Ok, "{report}");
        let cut = sim
            .overrides(&id)
            .into_iter()
            .find(|o| o.id == running_id)
            .unwrap();
        assert_eq!(
            cut.span.end, now,
            "{filter:?}: the running override is cut at now"
        );
    }
}

/// One odd schedule (forbidden to this key, deleted between the list and the read, an unknown
/// zone, a turn length the model has no rotation for) is reported alone, with why; the others are
/// listed.
#[tokio::test]
async fn one_odd_schedule_does_not_hide_the_others() {
    let server = MockServer::start().await;
    let head = |id: &str| {
        format!(r#"{{"id":"{id}","type":"schedule","name":"S {id}","time_zone":"UTC","users":[]}}"#)
    };
    let heads = ["PGOOD", "PFORBID", "PGONE", "PZONE", "PTURN"]
        .map(head)
        .join(",");
    Mock::given(method("GET"))
        .and(path("/schedules"))
        .respond_with(json(
            200,
            &format!(
                r#"{{"schedules":[{heads}],"limit":100,"offset":0,"more":false,"total":null}}"#
            ),
        ))
        .mount(&server)
        .await;
    Mock::given(method("GET"))
        .and(path("/users"))
        .respond_with(json(
            200,
            r#"{"users":[{"id":"PANN","name":"Ann","email":"ann@example.com"}],"limit":100,"offset":0,"more":false,"total":null}"#,
        ))
        .mount(&server)
        .await;
    let layer = |turn: i64| {
        format!(
            r#"{{"id":"PL1","name":"L","start":"2024-01-01T09:00:00Z","end":null,
               "rotation_virtual_start":"2024-01-01T09:00:00Z","rotation_turn_length_seconds":{turn},
               "users":[{{"user":{{"id":"PANN","type":"user_reference"}}}}],"restrictions":[]}}"#
        )
    };
    let schedule = |id: &str, zone: &str, turn: i64| {
        format!(
            r#"{{"schedule":{{"id":"{id}","type":"schedule","name":"S {id}","time_zone":"{zone}",
               "users":[{{"id":"PANN","type":"user_reference"}}],"schedule_layers":[{}],
               "final_schedule":{{"name":"Final Schedule","rendered_schedule_entries":[]}},
               "overrides_subschedule":{{"name":"Overrides","rendered_schedule_entries":[]}}}}}}"#,
            layer(turn)
        )
    };
    for (id, template) in [
        ("PGOOD", json(200, &schedule("PGOOD", "UTC", 86_400))),
        ("PFORBID", json(403, FORBIDDEN)),
        (
            "PGONE",
            json(404, r#"{"error":{"message":"Not Found","code":2100}}"#),
        ),
        (
            "PZONE",
            json(200, &schedule("PZONE", "Mars/Olympus_Mons", 86_400)),
        ),
        ("PTURN", json(200, &schedule("PTURN", "UTC", 1_800))),
    ] {
        Mock::given(method("GET"))
            .and(path(format!("/schedules/{id}")))
            .respond_with(template)
            .mount(&server)
            .await;
    }
    Mock::given(any())
        .respond_with(ResponseTemplate::new(500))
        .with_priority(u8::MAX)
        .mount(&server)
        .await;
    let listing = wiremock_provider(&server).list_schedules().await.unwrap();
    let read: Vec<&str> = listing.schedules.iter().map(|s| s.id.0.as_str()).collect();
    assert_eq!(read, ["PGOOD"]);
    let odd: Vec<(&str, &str)> = listing
        .unreadable
        .iter()
        .map(|u| (u.id.0.as_str(), u.error.kind()))
        .collect();
    assert_eq!(
        odd,
        [
            ("PFORBID", "permission_denied"),
            ("PGONE", "not_found"),
            ("PZONE", "invalid_response"),
            ("PTURN", "unsupported"),
        ]
    );
    assert!(listing
        .unreadable
        .iter()
        .all(|u| u.name.as_deref() == Some(&format!("S {}", u.id)[..])));
}

// ---- defect 6: a create still being processed is not sent again --------------------------------

/// The listing lags creates by 30 s and a create whose answer is lost lands 20 s later (a create
/// still being processed when the run re-reads). The run does not send it again: the next run,
/// after the account settled, finds it and adopts it. No duplicate, ever.
#[tokio::test]
async fn a_create_still_being_processed_is_never_sent_twice() {
    let now = day(2) + TimeDelta::hours(5);
    let dialect = PagerDutyDialect {
        listing_lag: ListingLag::Lagging { seconds: 30 },
        lost_writes: LostWrites::LandAfterAnswer { seconds: 20 },
        ..PagerDutyDialect::default()
    };
    let sim = sim_with(now, dialect, "PSTALE").await;
    sim.inject(Trigger::Write(1), Fault::LoseResponse);
    let provider = sim.provider();
    let store = InMemoryStateStore::new();
    let dest = destination("PSTALE");
    let host = host(20);
    let first = run(&host, &provider, &dest, &store, now, 10).await;
    let posts = sim.requests().iter().filter(|r| r.method == "POST").count();
    assert_eq!(
        posts, 1,
        "the lost create is not sent again in the run: {first}"
    );
    assert_ne!(first.destinations[0].status, SyncStatus::Ok, "{first}");
    let later = now + dialect.settles_within() + TimeDelta::seconds(10);
    sim.set_now(later);
    let second = run(&host, &provider, &dest, &store, later, 10).await;
    assert_eq!(second.destinations[0].status, SyncStatus::Ok, "{second}");
    assert_eq!(held(&sim, "PSTALE"), desired(&host, now, 10));
    let third = run(&host, &provider, &dest, &store, later, 10).await;
    assert_eq!(third.destinations[0].write_calls, 0, "{third}");
}

// ---- defect 7: an unreadable 2xx create answer is an answer lost ------------------------------

/// A batch create answered 201 with a body that cannot be read landed, but what it says is
/// unknown: the run reads back what landed, takes it, and goes on with the next batch.
#[tokio::test]
async fn an_unreadable_create_answer_is_read_back_not_fatal() {
    let now = day(2) + TimeDelta::hours(5);
    for fault in [HttpFault::MalformedBody, HttpFault::MissingField] {
        let sim = sim_with(now, PagerDutyDialect::default(), "PBAD").await;
        let provider = sim.provider();
        let store = InMemoryStateStore::new();
        let dest = destination("PBAD");
        // More than one batch of 50.
        let host = host(80);
        sim.inject_http(Trigger::Write(1), fault);
        let report = run(&host, &provider, &dest, &store, now, 70).await;
        assert_eq!(
            report.destinations[0].status,
            SyncStatus::Ok,
            "{fault:?}: {report}"
        );
        assert_eq!(held(&sim, "PBAD"), desired(&host, now, 70), "{fault:?}");
    }
}

// ---- defect 8: keys scrubbed before vendor text is cut -----------------------------------------

#[tokio::test]
async fn a_key_straddling_the_cut_leaves_no_prefix_and_encoded_echoes_are_scrubbed() {
    let key = "zq9Xk2Lm/Pp4+Rr6Tt8V";
    let server = MockServer::start().await;
    // The message is cut at 300 characters: the key starts at character 296.
    let message = format!("{}{key} was refused", "x".repeat(296));
    let encoded = "zq9Xk2Lm%2FPp4%2BRr6Tt8V";
    Mock::given(method("GET"))
        .and(path("/schedules/PA"))
        .respond_with(json(
            400,
            &format!(
                r#"{{"error":{{"message":"{message}","code":2001,"errors":["token={encoded}"]}}}}"#
            ),
        ))
        .mount(&server)
        .await;
    let provider = PagerDutyProvider::builder()
        .with_api_key(key)
        .with_base_url(server.uri())
        .with_retry(PagerDutySimulator::test_retry_policy())
        .build()
        .unwrap();
    let e = provider
        .schedule(&VendorScheduleId("PA".into()))
        .await
        .unwrap_err();
    let shown = format!("{e} {e:?}");
    assert!(
        !shown.contains("zq9X"),
        "a prefix of the key leaked: {shown}"
    );
    assert!(!shown.contains(encoded), "the encoded key leaked: {shown}");
}

// ---- defect 9: accounts over 10,000 users ------------------------------------------------------

/// The directory stops at PagerDuty's 10,000 cap; a member past it is found by `query`.
#[tokio::test]
async fn a_member_past_ten_thousand_users_is_found_by_query() {
    let sim = PagerDutySimulator::start_at(day(0)).await;
    sim.add_users(10_050, "big.example");
    sim.add_schedule(vendor_schedule("PBIG", vec![]));
    let id = VendorScheduleId("PBIG".into());
    let late = Email::parse("user10040@big.example").unwrap();
    let provider = sim.provider();
    let results = provider
        .create_overrides(
            &id,
            &[NewOverride {
                span: Span::new(day(2), day(3), late.clone()),
                id: None,
            }],
        )
        .await
        .unwrap();
    let created = results[0].as_ref().unwrap();
    assert_eq!(created.span.member, late);
    let listed = provider
        .list_overrides(&id, Window::new(day(1), day(4)).unwrap())
        .await
        .unwrap();
    assert_eq!(listed[0].span.member, late);
    let queries = sim
        .requests()
        .into_iter()
        .filter(|r| r.path == "/users" && r.query.iter().any(|(k, _)| k == "query"))
        .count();
    assert_eq!(queries, 1, "one lookup by query");
}

/// A slow answer to a create: the client gives up, the write lands after; nothing is re-sent.
#[tokio::test]
async fn a_slow_create_that_lands_late_is_adopted_by_the_next_run() {
    let now = day(2) + TimeDelta::hours(5);
    let dialect = PagerDutyDialect {
        lost_writes: LostWrites::LandAfterAnswer { seconds: 20 },
        ..PagerDutyDialect::default()
    };
    let sim = sim_with(now, dialect, "PSLOW").await;
    let provider = sim
        .provider_builder()
        .with_timeout(Duration::from_millis(300))
        .build()
        .unwrap();
    sim.inject_http(Trigger::Write(1), HttpFault::Slow(Duration::from_secs(1)));
    let store = InMemoryStateStore::new();
    let dest = destination("PSLOW");
    let host = host(20);
    let first = run(&host, &provider, &dest, &store, now, 10).await;
    assert_ne!(first.destinations[0].status, SyncStatus::Ok, "{first}");
    assert_eq!(sim.pending_writes(), 1);
    let later = now + TimeDelta::seconds(60);
    sim.set_now(later);
    let second = run(&host, &provider, &dest, &store, later, 10).await;
    assert_eq!(second.destinations[0].status, SyncStatus::Ok, "{second}");
    assert_eq!(held(&sim, "PSLOW"), desired(&host, now, 10));
    let posts = sim.requests().iter().filter(|r| r.method == "POST").count();
    assert_eq!(posts, 1, "one create call in all");
}
