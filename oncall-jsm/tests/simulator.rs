//! The adapter against its simulator over HTTP: least data (R10), people by accountId, hidden
//! e-mails, credentials kept out of everything, read-only accounts (R8), pagination, rate limits,
//! overrides limited to some rotations (R1), lost answers (R6), import.

#![allow(clippy::unwrap_used)] // tests: a panic is the failure report

mod common;

use std::sync::{Arc, Mutex};
use std::time::Duration;

use chrono::{DateTime, NaiveDate, TimeDelta, Utc};
use common::{daily_schedule, email, members, now, simulator_with_schedule};
use oncall_core::testkit::{Fault, Trigger, VendorSimulator};
use oncall_core::trace::{HttpExchange, HttpTrace};
use oncall_core::{
    import_schedule, sync, ConnectionId, Destination, DestinationId, Error, InMemoryStateStore,
    NewOverride, OverrideId, Participant, Provider, RoleIndex, Rotation, RotationUnit, Schedule,
    ScheduleId, Shift, Span, StateStore, SyncMode, SyncOptions, SyncReport, SyncTarget,
    VendorSchedule, VendorScheduleId, Window,
};
use oncall_jsm::testkit::{
    ForbiddenBody, HttpFault, JsmDialect, JsmSimulator, KeyKind, PastEnd, RateLimitReading,
    Surface, UpdateBody, READ_WRITE_TOKEN,
};
use oncall_jsm::{JsmProvider, Responder};

fn day(d: i64) -> DateTime<Utc> {
    now() - TimeDelta::hours(3) + TimeDelta::days(d)
}

/// Daily shifts at 09:00 from day `from` to day `to`, people round-robin.
fn host(from: i64, to: i64, people: &[&str]) -> Schedule {
    let shifts = (from..to)
        .map(|d| {
            Shift::new(
                day(d),
                day(d + 1),
                vec![Some(email(people[d as usize % people.len()]))],
            )
        })
        .collect();
    let mut roster = members();
    for p in people {
        if !roster.iter().any(|m| m.email == email(p)) {
            roster.push(oncall_core::Member::new(email(p), *p));
        }
    }
    Schedule::new(
        ScheduleId("host".into()),
        chrono_tz::UTC,
        vec!["primary".into()],
        roster,
        shifts,
    )
    .unwrap()
}

fn destination(schedule: &VendorScheduleId) -> Destination {
    Destination {
        id: DestinationId("dest".into()),
        connection: ConnectionId("jsm".into()),
        schedule: schedule.clone(),
        role: RoleIndex::PRIMARY,
        mode: oncall_core::DestinationMode::Protect,
    }
}

async fn sync_once(
    schedule: &Schedule,
    provider: &JsmProvider,
    target: &VendorScheduleId,
    store: &InMemoryStateStore,
    at: DateTime<Utc>,
) -> SyncReport {
    let d = destination(target);
    let targets = [SyncTarget {
        destination: &d,
        provider,
    }];
    let options = SyncOptions {
        now: at,
        horizon: None,
        mode: SyncMode::Apply,
    };
    sync(schedule, &targets, store, options).await.unwrap()
}

/// Records every exchange a provider hands over.
#[derive(Debug, Default)]
struct Recorder(Mutex<Vec<HttpExchange>>);

impl HttpTrace for Recorder {
    fn record(&self, exchange: HttpExchange) {
        self.0.lock().unwrap().push(exchange);
    }
}

#[tokio::test]
async fn a_sync_calls_only_the_served_endpoints_and_looks_each_person_up_once() {
    let (sim, vs) = simulator_with_schedule(JsmDialect::default()).await;
    let provider = sim.provider();
    let store = InMemoryStateStore::new();
    let rota = host(1, 15, &["ann", "bob", "cat"]);
    let report = sync_once(&rota, &provider, &vs, &store, now()).await;
    assert!(report.is_ok(), "{report}");
    assert_eq!(sim.overrides(&vs).len(), 14);
    // Once more, nothing changed: no write, and nobody looked up again.
    let before = sim.requests().len();
    let again = sync_once(&rota, &provider, &vs, &store, now() + TimeDelta::minutes(5)).await;
    assert_eq!(again.destinations[0].write_calls, 0, "{again}");
    let log = sim.requests();
    assert!(
        log.iter().all(|r| r.simulated),
        "R10: {:?}",
        log.iter().filter(|r| !r.simulated).collect::<Vec<_>>()
    );
    let site: Vec<_> = log
        .iter()
        .filter(|r| r.surface == Some(Surface::Site))
        .collect();
    let searches: Vec<&str> = site
        .iter()
        .filter(|r| r.path.ends_with("/user/search"))
        .map(|r| r.query_value("query").unwrap())
        .collect();
    assert_eq!(
        searches.len(),
        3,
        "one search per person the sync names: {searches:?}"
    );
    assert!(site
        .iter()
        .filter(|r| r.path.ends_with("/user/search"))
        .all(|r| r.query_value("maxResults") == Some(&oncall_jsm::SEARCH_RESULTS.to_string())));
    assert!(
        !log[before..]
            .iter()
            .any(|r| r.surface == Some(Surface::Site) && r.path != "/_edge/tenant_info"),
        "the second sync looks nobody up"
    );
    assert_eq!(
        log.iter()
            .filter(|r| r.path == "/_edge/tenant_info")
            .count(),
        1,
        "the cloudId is read once"
    );
    assert!(log
        .iter()
        .all(|r| r.path == "/_edge/tenant_info" || r.key == KeyKind::ReadWrite));
    // The creates name people by accountId and no rotation (every rotation).
    let post = log.iter().find(|r| r.method == "POST").unwrap();
    let body = post.body.as_ref().unwrap();
    assert_eq!(body["responder"]["type"], "user");
    assert!(body["responder"]["id"]
        .as_str()
        .unwrap()
        .starts_with("712020:"));
    assert!(body.get("rotationIds").is_none(), "{body}");
}

#[tokio::test]
async fn unknown_and_hidden_people_fail_alone_and_a_host_may_hand_account_ids_over() {
    let (sim, vs) = simulator_with_schedule(JsmDialect::default()).await;
    let hidden = email("cat");
    sim.hide_email(&hidden);
    let stranger = oncall_core::Email::parse("zed@example.com").unwrap();
    let provider = sim.provider();
    let span = |d: i64, who: &oncall_core::Email| NewOverride {
        span: Span::new(day(d), day(d + 1), who.clone()),
        id: None,
    };
    let results = provider
        .create_overrides(
            &vs,
            &[span(2, &email("ann")), span(3, &hidden), span(4, &stranger)],
        )
        .await
        .unwrap();
    assert!(results[0].is_ok(), "{:?}", results[0]);
    for (r, who) in results[1..].iter().zip([&hidden, &stranger]) {
        assert!(
            matches!(r, Err(Error::UnknownMember { email, .. }) if email == who),
            "{r:?}"
        );
    }
    assert!(
        format!("{:?}", results[1]).contains("hides the e-mail"),
        "says why: {:?}",
        results[1]
    );
    assert_eq!(sim.write_calls(), 1, "nothing is sent for someone unknown");
    // A host that knows the hidden person's accountId hands it over: then they can be written,
    // and read back as themselves.
    let account = sim.account_id(&hidden).unwrap();
    let knowing = sim
        .provider_builder()
        .with_account_id("cat@example.com", account.as_str())
        .build()
        .unwrap();
    let created = knowing
        .create_overrides(&vs, &[span(5, &hidden)])
        .await
        .unwrap();
    let created = created[0].clone().unwrap();
    assert_eq!(created.span.member, hidden);
    let listed = knowing
        .list_overrides(&vs, Window::new(day(5), day(6)).unwrap())
        .await
        .unwrap();
    assert_eq!(listed, vec![created.clone()]);
    // A provider that does not know them lists that override under a reserved e-mail, and a cut
    // writes it back as the same accountId.
    let listed = provider
        .list_overrides(&vs, Window::new(day(5), day(6)).unwrap())
        .await
        .unwrap();
    assert_eq!(
        listed[0].span.member,
        Responder::Account(account.clone()).email().unwrap()
    );
    let cut = Span::new(
        day(5),
        day(5) + TimeDelta::hours(6),
        listed[0].span.member.clone(),
    );
    provider
        .update_override(&vs, &listed[0].id, &cut)
        .await
        .unwrap();
    let put = sim
        .requests()
        .into_iter()
        .rev()
        .find(|r| r.method == "PUT")
        .unwrap();
    assert_eq!(put.body.unwrap()["responder"]["id"], account.as_str());
}

#[tokio::test]
async fn nobody_overrides_are_foreign_and_cleared_from_the_fresh_region() {
    let (sim, vs) = simulator_with_schedule(JsmDialect::default()).await;
    let nobody = Responder::Nobody.email().unwrap();
    let theirs = sim.insert_override(
        &vs,
        Span::new(day(3), day(3) + TimeDelta::hours(4), nobody.clone()),
    );
    let provider = sim.provider();
    let listed = provider
        .list_overrides(&vs, Window::new(day(0), day(10)).unwrap())
        .await
        .unwrap();
    assert_eq!(listed.len(), 1);
    assert_eq!(listed[0].span.member, nobody);
    let store = InMemoryStateStore::new();
    let report = sync_once(&host(1, 6, &["ann"]), &provider, &vs, &store, now()).await;
    assert!(report.is_ok(), "{report}");
    assert!(
        !sim.overrides(&vs).iter().any(|o| o.id == theirs),
        "R2: a foreign override in the fresh region goes"
    );
}

#[tokio::test]
async fn the_token_never_shows_in_errors_debug_or_traces() {
    let (sim, vs) = simulator_with_schedule(JsmDialect::default()).await;
    let recorder = Arc::new(Recorder::default());
    let provider = sim
        .provider_builder()
        .with_trace(recorder.clone())
        .build()
        .unwrap();
    assert!(!format!("{provider:?}").contains(READ_WRITE_TOKEN));
    // A gateway quotes the Authorization header back in its error (the second call: the first
    // reads the cloudId).
    sim.inject_http(Trigger::Call(2), HttpFault::EchoCredentials);
    let e = provider
        .list_overrides(&vs, Window::new(day(0), day(2)).unwrap())
        .await
        .unwrap_err();
    let message = e.to_string();
    assert!(
        message.contains("Bad request from a client sending Authorization: Basic ***"),
        "the echo came back, scrubbed: {message}"
    );
    assert!(!message.contains(READ_WRITE_TOKEN));
    // Wrong credentials: a 401, typed, without the token.
    let wrong = sim
        .provider_builder()
        .with_api_token("not-the-token-xyz")
        .build()
        .unwrap();
    let e = wrong.list_schedules().await.unwrap_err();
    assert!(matches!(e, Error::Unauthenticated { .. }), "{e:?}");
    assert!(!e.to_string().contains("not-the-token-xyz"));
    let traced = recorder.0.lock().unwrap().clone();
    assert!(!traced.is_empty());
    let text = serde_json::to_string(&traced).unwrap();
    assert!(!text.contains(READ_WRITE_TOKEN), "{text}");
    assert!(
        sim.requests().iter().any(|r| r.key == KeyKind::ReadWrite),
        "the simulator took the credentials"
    );
    assert!(traced.iter().all(|x| x
        .request_headers
        .iter()
        .any(|(k, v)| k == "Authorization" && v == "***")));
    assert!(traced.iter().any(|x| x.status == Some(400)
        && x.response_body
            .as_deref()
            .is_some_and(|b| b.contains("Basic ***"))));
}

#[tokio::test]
async fn a_read_only_account_is_named_as_such_and_never_retried_whatever_the_403_says() {
    for body in [
        ForbiddenBody::Errors,
        ForbiddenBody::Message,
        ForbiddenBody::Empty,
    ] {
        let dialect = JsmDialect {
            forbidden_body: body,
            ..JsmDialect::default()
        };
        let (sim, vs) = simulator_with_schedule(dialect).await;
        let provider = sim.read_only_provider();
        let store = InMemoryStateStore::new();
        let report = sync_once(&host(1, 4, &["ann"]), &provider, &vs, &store, now()).await;
        let d = &report.destinations[0];
        assert!(!d.errors.is_empty(), "{report}");
        assert!(
            d.errors.iter().all(|e| e.error.is_permission_denied()),
            "{body:?}: {report}"
        );
        assert!(d.errors[0]
            .to_string()
            .contains("destination dest (connection jsm)"));
        assert!(
            sim.write_calls() <= provider.capabilities().max_batch,
            "R8: never retried"
        );
        assert!(sim.overrides(&vs).is_empty());
    }
}

#[tokio::test]
async fn lists_longer_than_a_page_are_followed_to_the_end_under_every_page_size() {
    for (name, dialect) in JsmDialect::variants()
        .into_iter()
        .filter(|(n, _)| n.starts_with("page_size") || *n == "documented")
    {
        let (sim, vs) = simulator_with_schedule(dialect).await;
        for i in 0..7 {
            sim.add_schedule(daily_schedule(&format!("VS{i}")));
        }
        for h in 0..60 {
            sim.insert_override(
                &vs,
                Span::new(
                    day(1) + TimeDelta::hours(h),
                    day(1) + TimeDelta::hours(h) + TimeDelta::minutes(30),
                    email("bob"),
                ),
            );
        }
        let provider = sim.provider();
        let listed = provider
            .list_overrides(&vs, Window::new(day(0), day(10)).unwrap())
            .await
            .unwrap();
        assert_eq!(listed.len(), 60, "{name}");
        let schedules = provider.list_schedules().await.unwrap();
        assert_eq!(schedules.schedules.len(), 8, "{name}");
        assert!(
            schedules.schedules.iter().all(|s| s.rotations.len() == 1),
            "{name}: rotations on every page"
        );
        let log = sim.requests();
        assert!(log.iter().all(|r| r.simulated), "{name}");
        let pages = log
            .iter()
            .filter(|r| r.path.ends_with("/overrides") && r.method == "GET")
            .count();
        match name {
            "page_size=capped" => assert_eq!(pages, 20, "{name}: pages of 3"),
            "page_size=refused_above" => {
                assert_eq!(pages, 1 + 3, "{name}: a refused size, then pages of 25")
            }
            _ => assert_eq!(pages, 2, "{name}: pages of 50"),
        }
    }
}

#[tokio::test]
async fn rate_limits_are_waited_out_and_the_pacer_slows_down() {
    let dialect = JsmDialect {
        rate_limit: RateLimitReading::Refused(10),
        ..JsmDialect::default()
    };
    let (sim, vs) = simulator_with_schedule(dialect).await;
    let provider = sim
        .provider_builder()
        .with_adaptive_rate(oncall_core::pacing::AdaptiveRate {
            initial: 200.0,
            ..oncall_core::pacing::AdaptiveRate::BRISK
        })
        .build()
        .unwrap();
    let store = InMemoryStateStore::new();
    let report = sync_once(&host(1, 30, &["ann", "bob"]), &provider, &vs, &store, now()).await;
    assert!(report.is_ok(), "{report}");
    let refused = sim
        .requests()
        .iter()
        .filter(|r| r.status == Some(429))
        .count();
    assert!(refused > 0, "the limit was met");
    assert!(
        provider.rate_per_second().unwrap() < 200.0,
        "and the pacer slowed down"
    );
    assert_eq!(sim.overrides(&vs).len(), 29);
}

#[tokio::test]
async fn an_override_limited_to_one_rotation_stays_so_when_cut_under_every_update_body() {
    for update_body in [
        UpdateBody::CreateShape,
        UpdateBody::Partial,
        UpdateBody::RotationIdsRequired,
    ] {
        let dialect = JsmDialect {
            update_body,
            ..JsmDialect::default()
        };
        let sim = JsmSimulator::start_with(now(), dialect).await;
        let mut two = daily_schedule("VS");
        two.rotations.push(two.rotations[0].clone());
        sim.add_schedule(two);
        let vs = VendorScheduleId("VS".into());
        let rotations = sim.rotation_ids(&vs);
        // A person's override for the second rotation, running now, reaching into the fresh region.
        let theirs = sim.insert_override_for_rotations(
            &vs,
            Span::new(now() - TimeDelta::hours(2), day(3), email("eve")),
            &rotations[1..],
        );
        let provider = sim.provider();
        let store = InMemoryStateStore::new();
        let report = sync_once(&host(0, 5, &["ann"]), &provider, &vs, &store, now()).await;
        assert!(report.is_ok(), "{update_body:?}: {report}");
        let held = sim
            .overrides(&vs)
            .into_iter()
            .find(|o| o.id == theirs)
            .unwrap();
        assert!(
            held.span.end <= now() + TimeDelta::seconds(1),
            "cut at now: {held:?}"
        );
        assert_eq!(
            sim.override_rotation_ids(&vs, &theirs),
            Some(Some(rotations[1..].to_vec())),
            "{update_body:?}: R1, the cut keeps its rotation"
        );
    }
}

/// R6 without client ids: the create whose answer was lost is adopted by its exact span, under
/// the alias the server chose for it (not deleted and written again), and nothing is written twice.
#[tokio::test]
async fn a_create_whose_answer_was_lost_is_adopted_by_its_exact_span() {
    let (sim, vs) = simulator_with_schedule(JsmDialect::default()).await;
    let provider = sim.provider();
    let store = InMemoryStateStore::new();
    sim.inject(Trigger::Write(2), Fault::LoseResponse);
    let rota = host(1, 5, &["ann", "bob"]);
    let _ = sync_once(&rota, &provider, &vs, &store, now()).await;
    let aliases_after_first: Vec<OverrideId> =
        sim.overrides(&vs).into_iter().map(|o| o.id).collect();
    assert_eq!(aliases_after_first.len(), 4, "the lost create landed");
    let again = sync_once(&rota, &provider, &vs, &store, now() + TimeDelta::minutes(1)).await;
    assert!(again.is_ok(), "{again}");
    let after_second: Vec<OverrideId> = sim.overrides(&vs).into_iter().map(|o| o.id).collect();
    assert_eq!(
        after_second, aliases_after_first,
        "R6: each override kept under its alias (adopted, not deleted and written again)"
    );
    assert_eq!(again.destinations[0].write_calls, 0, "{again}");
    let ledger = store
        .load(&DestinationId("dest".into()))
        .await
        .unwrap()
        .value
        .ledger;
    let mut ledger_ids: Vec<OverrideId> = ledger.into_iter().map(|l| l.id).collect();
    ledger_ids.sort();
    let mut held = after_second.clone();
    held.sort();
    assert_eq!(
        ledger_ids, held,
        "the ledger knows every alias the server chose"
    );
    let third = sync_once(&rota, &provider, &vs, &store, now() + TimeDelta::minutes(2)).await;
    assert_eq!(third.destinations[0].write_calls, 0, "{third}");
}

/// The site's user search matches prefixes: `ann@example.com` also finds `ann@example.com.au`.
/// The person is the hit that shows exactly their e-mail, wherever it comes among the hits.
#[tokio::test]
async fn a_person_is_the_search_hit_with_exactly_their_email_not_the_first_hit() {
    let sim = JsmSimulator::start_with(now(), JsmDialect::default()).await;
    let lookalike = oncall_core::Email::parse("ann@example.com.au").unwrap();
    let lookalike_account = sim.add_user(lookalike.clone(), "Ann AU");
    sim.add_schedule(daily_schedule("VS"));
    let vs = VendorScheduleId("VS".into());
    let ann_account = sim.account_id(&email("ann")).unwrap();
    assert_ne!(ann_account, lookalike_account);
    let provider = sim.provider();
    let span = |d: i64, who: &oncall_core::Email| NewOverride {
        span: Span::new(day(d), day(d + 1), who.clone()),
        id: None,
    };
    let results = provider
        .create_overrides(&vs, &[span(2, &email("ann")), span(3, &lookalike)])
        .await
        .unwrap();
    assert!(results.iter().all(Result::is_ok), "{results:?}");
    let sent: Vec<String> = sim
        .requests()
        .into_iter()
        .filter(|r| r.method == "POST")
        .map(|r| {
            r.body.unwrap()["responder"]["id"]
                .as_str()
                .unwrap()
                .to_owned()
        })
        .collect();
    let mut expected = vec![ann_account.clone(), lookalike_account.clone()];
    let mut got = sent.clone();
    expected.sort();
    got.sort();
    assert_eq!(got, expected, "each person under their own accountId");
    let searches: Vec<_> = sim
        .requests()
        .into_iter()
        .filter(|r| r.path.ends_with("/user/search"))
        .collect();
    assert_eq!(searches.len(), 2, "one lookup per person");
    assert!(searches.iter().all(|r| r
        .query
        .iter()
        .any(|(k, v)| k == "maxResults" && v == &oncall_jsm::SEARCH_RESULTS.to_string())));
    // Someone the search finds only lookalikes of is unknown, and the error says so.
    let an = oncall_core::Email::parse("ann@example.co").unwrap();
    let results = provider
        .create_overrides(&vs, &[span(4, &an)])
        .await
        .unwrap();
    assert!(
        matches!(&results[0], Err(Error::UnknownMember { email, message })
            if *email == an && message.contains("none with it exactly")),
        "{:?}",
        results[0]
    );
}

/// An account that may not look people up (403 from the site's user search) fails the sync with
/// its own kind, not R8's read-only and not an unknown member; nothing is written, and once the
/// permission is granted the next sync writes everything.
#[tokio::test]
async fn an_account_that_may_not_look_people_up_is_named_as_such_not_as_read_only() {
    let (sim, vs) = simulator_with_schedule(JsmDialect::default()).await;
    sim.set_people_lookup_forbidden(true);
    let provider = sim.provider();
    let store = InMemoryStateStore::new();
    let rota = host(1, 4, &["ann"]);
    let report = sync_once(&rota, &provider, &vs, &store, now()).await;
    let d = &report.destinations[0];
    assert!(!d.errors.is_empty(), "{report}");
    assert!(
        d.errors
            .iter()
            .all(|e| matches!(e.error, Error::PeopleLookupDenied { .. })),
        "{report}"
    );
    assert!(!d.errors.iter().any(|e| e.error.is_permission_denied()));
    assert_eq!(sim.write_calls(), 0);
    sim.set_people_lookup_forbidden(false);
    let provider = sim.provider();
    let report = sync_once(&rota, &provider, &vs, &store, now() + TimeDelta::minutes(1)).await;
    assert!(report.is_ok(), "{report}");
    assert_eq!(sim.overrides(&vs).len(), 3);
}

/// Rights are the user's: an account may create overrides yet be refused deletes. The refused
/// delete is R8's refusal (never retried), and nothing is lost: the override the host no longer
/// wants is still there, and in the ledger, for a later sync.
#[tokio::test]
async fn an_account_that_may_create_but_not_delete_reports_the_refused_delete() {
    let (sim, vs) = simulator_with_schedule(JsmDialect::default()).await;
    let provider = sim.provider();
    let store = InMemoryStateStore::new();
    let first = sync_once(&host(1, 4, &["ann"]), &provider, &vs, &store, now()).await;
    assert!(first.is_ok(), "{first}");
    sim.set_deletes_forbidden(true);
    // The host drops its last day: our override for it is removed (a delete).
    let changed = host(1, 3, &["ann"]);
    let second = sync_once(
        &changed,
        &provider,
        &vs,
        &store,
        now() + TimeDelta::minutes(1),
    )
    .await;
    let d = &second.destinations[0];
    assert!(
        !d.errors.is_empty() && d.errors.iter().all(|e| e.error.is_permission_denied()),
        "{second}"
    );
    let deletes = sim
        .requests()
        .into_iter()
        .filter(|r| r.method == "DELETE")
        .count();
    assert_eq!(deletes, 1, "R8: asked once, never retried");
    let held = sim.overrides(&vs);
    assert!(
        held.iter()
            .any(|o| o.span == Span::new(day(3), day(4), email("ann"))),
        "the refused delete left ann's day 3: {held:?}"
    );
    let ledger = store
        .load(&DestinationId("dest".into()))
        .await
        .unwrap()
        .value
        .ledger;
    assert!(ledger
        .iter()
        .any(|l| l.span == Span::new(day(3), day(4), email("ann"))));
    // Granted again, the next sync finishes the change.
    sim.set_deletes_forbidden(false);
    let third = sync_once(
        &changed,
        &provider,
        &vs,
        &store,
        now() + TimeDelta::minutes(2),
    )
    .await;
    assert!(third.is_ok(), "{third}");
    assert!(!sim
        .overrides(&vs)
        .iter()
        .any(|o| o.span == Span::new(day(3), day(4), email("ann"))));
}

/// `past_end=refuse`: the simulated vendor refuses a cut whose end is in its past; the adapter
/// sends it again at the vendor's now, and answers the end the vendor holds. Under the default
/// (`clamp`) the vendor ends it at its now.
#[tokio::test]
async fn a_cut_behind_the_vendors_clock_ends_at_the_vendors_now_under_every_past_end_reading() {
    for past_end in [PastEnd::Clamp, PastEnd::Refuse] {
        let dialect = JsmDialect {
            past_end,
            ..JsmDialect::default()
        };
        let (sim, vs) = simulator_with_schedule(dialect).await;
        let running = Span::new(
            now() - TimeDelta::hours(2),
            now() + TimeDelta::hours(5),
            email("ann"),
        );
        let id = sim.insert_override(&vs, running.clone());
        let vendor_now = now() + TimeDelta::seconds(5);
        sim.set_now(vendor_now);
        let provider = sim.provider();
        provider
            .list_overrides(&vs, Window::new(now(), now() + TimeDelta::days(1)).unwrap())
            .await
            .unwrap();
        let cut = Span::new(running.start, now(), email("ann"));
        let held = provider.update_override(&vs, &id, &cut).await.unwrap();
        let expected_end = match past_end {
            PastEnd::Clamp => vendor_now,
            PastEnd::Refuse => vendor_now + TimeDelta::seconds(1),
        };
        assert_eq!(held.span.end, expected_end, "{past_end:?}");
        let stored = sim.overrides(&vs);
        assert_eq!(stored.len(), 1);
        assert_eq!(stored[0].span, held.span, "{past_end:?}: answered as held");
        let puts = sim
            .requests()
            .into_iter()
            .filter(|r| r.method == "PUT")
            .count();
        let expected_puts = match past_end {
            PastEnd::Clamp => 1,
            PastEnd::Refuse => 2,
        };
        assert_eq!(puts, expected_puts, "{past_end:?}");
    }
}

/// [`Provider::account`] names one account however the connection was given (a site, or its
/// cloudId and the API base URL), and the same before and after the cloudId is read: the sync's
/// refusal of two destinations on one vendor schedule of one account depends on it.
#[tokio::test]
async fn the_account_name_is_one_for_a_site_and_its_cloud_id_before_and_after_the_first_call() {
    let (sim, _) = simulator_with_schedule(JsmDialect::default()).await;
    let by_site = sim.provider();
    let before = by_site.account();
    assert!(before.is_some());
    by_site.list_schedules().await.unwrap();
    let after = by_site.account();
    let by_id = JsmProvider::builder()
        .with_cloud_id(oncall_jsm::testkit::CLOUD_ID)
        .with_api_base_url(sim.uri())
        .with_email(oncall_jsm::testkit::ACCOUNT_EMAIL)
        .with_api_token(READ_WRITE_TOKEN)
        .build()
        .unwrap();
    assert_eq!(before, after, "one provider, one account name");
    assert_eq!(before, by_id.account(), "one site, one account name");
}

#[tokio::test]
async fn a_schedule_imports_its_rotations_by_timeline_order_with_overrides_applied() {
    let sim = JsmSimulator::start_at(now()).await;
    let start = NaiveDate::from_ymd_opt(2024, 1, 1)
        .unwrap()
        .and_hms_opt(9, 0, 0)
        .unwrap();
    let rotation = |name: &str, who: &[&str]| {
        Rotation::new(
            name,
            RotationUnit::Daily,
            1,
            start,
            who.iter().map(|w| Participant::Member(email(w))).collect(),
        )
    };
    sim.add_schedule(VendorSchedule {
        id: VendorScheduleId("two".into()),
        name: "Two roles".into(),
        zone: chrono_tz::Europe::Berlin,
        members: members(),
        rotations: vec![
            rotation("listed first", &["cat"]),
            rotation("ordered first", &["ann", "bob"]),
        ],
    });
    let vs = VendorScheduleId("two".into());
    sim.set_timeline_order(&vs, &[5.0, 1.5]);
    sim.insert_override(&vs, Span::new(day(2), day(3), email("eve")));
    let provider = sim.provider();
    let window = Window::new(day(0), day(4)).unwrap();
    let schedule = provider.schedule(&vs).await.unwrap();
    assert_eq!(schedule.rotations[0].name, "ordered first");
    let imported = import_schedule(&provider, &vs, window).await.unwrap();
    assert_eq!(imported.roles().len(), 2);
    let primary: Vec<_> = imported
        .shifts()
        .iter()
        .map(|s| s.assignees[0].as_ref().map(|e| e.as_str().to_owned()))
        .collect();
    assert!(
        primary.contains(&Some("eve@example.com".into())),
        "the override shows: {primary:?}"
    );
    assert!(
        imported
            .shifts()
            .iter()
            .all(|s| s.start.timestamp_subsec_nanos() == 0 && s.end.timestamp_subsec_nanos() == 0),
        "the split at the request instant is joined again"
    );
    assert!(sim.requests().iter().all(|r| r.simulated));
}

#[tokio::test]
async fn a_malformed_answer_is_a_typed_error_and_stops_the_batch() {
    let (sim, vs) = simulator_with_schedule(JsmDialect::default()).await;
    let provider = sim.provider();
    // Warm up: the cloudId and the people.
    provider.account_id(&email("ann")).await.unwrap();
    sim.inject_http(Trigger::Write(1), HttpFault::MalformedBody);
    let items: Vec<NewOverride> = (1..4)
        .map(|d| NewOverride {
            span: Span::new(day(d), day(d + 1), email("ann")),
            id: None,
        })
        .collect();
    let results = provider.create_overrides(&vs, &items).await.unwrap();
    assert!(
        results
            .iter()
            .any(|r| matches!(r, Err(Error::InvalidResponse { .. }))),
        "{results:?}"
    );
    let e = provider
        .get_override(&vs, &oncall_core::OverrideId::new("x"))
        .await;
    assert_eq!(e, Ok(None));
    // A slow answer beyond the timeout is a transient failure, never a panic.
    let quick = sim
        .provider_builder()
        .with_timeout(Duration::from_millis(200))
        .build()
        .unwrap();
    sim.inject_http(
        Trigger::Call(sim.calls() + 1),
        HttpFault::Slow(Duration::from_secs(2)),
    );
    let slow = quick
        .get_override(&vs, &oncall_core::OverrideId::new("x"))
        .await;
    assert!(
        slow.is_ok() || matches!(slow, Err(Error::Transient { .. })),
        "{slow:?}"
    );
}
