//! `oncall probe`'s adapter side: the probe names, on every point it can settle, the dialect the
//! simulator speaks, under every setting of [`OpsgenieDialect::variants`]; without a scratch
//! schedule it writes nothing. And the HTTP trace hook: every attempt recorded, no key anywhere.

#![allow(clippy::unwrap_used)] // tests: a panic is the failure report

mod common;

use std::sync::{Arc, Mutex};

use chrono::{DateTime, NaiveDate, TimeDelta, TimeZone, Utc};
use common::*;
use oncall_core::probe::{Probe, ProbeRequest};
use oncall_core::testkit::VendorSimulator;
use oncall_core::trace::{HttpExchange, HttpTrace};
use oncall_core::{
    NewOverride, OverrideId, Participant, Provider, Rotation, RotationUnit, Span, VendorSchedule,
    VendorScheduleId,
};
use oncall_opsgenie::testkit::{OpsgenieDialect, OpsgenieSimulator, READ_WRITE_KEY};

/// 2024-03-20 12:00 UTC: a year around it spans Berlin's changes of offset.
fn probe_now() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2024, 3, 20, 12, 0, 0).unwrap()
}

/// A Berlin schedule with two daily rotations (ann and bob, then cat and dan), an override that
/// ended two days ago, in `dialect`.
async fn account(dialect: OpsgenieDialect) -> (OpsgenieSimulator, VendorScheduleId) {
    let sim = OpsgenieSimulator::start_with(probe_now(), dialect).await;
    let start = NaiveDate::from_ymd_opt(2024, 1, 1)
        .unwrap()
        .and_hms_opt(9, 0, 0)
        .unwrap();
    let daily = |name: &str, a: &str, b: &str| {
        Rotation::new(
            name,
            RotationUnit::Daily,
            1,
            start,
            vec![Participant::Member(email(a)), Participant::Member(email(b))],
        )
    };
    let vs = VendorScheduleId("VS".into());
    sim.add_schedule(VendorSchedule {
        id: vs.clone(),
        name: "VS".into(),
        zone: chrono_tz::Europe::Berlin,
        members: members(),
        rotations: vec![daily("first", "ann", "bob"), daily("second", "cat", "dan")],
    });
    let ended = probe_now() - TimeDelta::days(2);
    sim.insert_override(
        &vs,
        Span::new(ended, ended + TimeDelta::hours(2), email("eve")),
    );
    (sim, vs)
}

/// Points no probe can settle without making the vendor fail or throttle it.
const UNPROBED: [&str; 3] = ["lost_answer_writes", "throttle", "bucket"];

#[tokio::test]
async fn the_probe_names_each_dialect_it_can_settle() {
    let mut settled = 0;
    // A probe reads each answer once, unretried: an account whose token bucket refuses it
    // (`bucket=…`, issue 13 §5) is not one it settles points on.
    for (name, dialect) in OpsgenieDialect::variants()
        .into_iter()
        .filter(|(name, _)| !name.starts_with("bucket="))
    {
        let (sim, vs) = account(dialect).await;
        let report = sim
            .provider()
            .probe(&ProbeRequest {
                now: probe_now(),
                schedule: Some(vs.clone()),
                write_to: Some(vs.clone()),
            })
            .await
            .unwrap();
        for finding in &report.findings {
            let (Some(reading), Some(speaks)) = (&finding.reading, dialect.reading(&finding.point))
            else {
                continue;
            };
            assert_eq!(
                reading, speaks,
                "{name}: {} read as {reading} ({})",
                finding.point, finding.detail
            );
            settled += 1;
        }
        // Every switch a probe can reach is settled, under every setting.
        for switch in OpsgenieDialect::SWITCHES
            .iter()
            .filter(|s| !UNPROBED.contains(s))
        {
            assert!(
                report.reading(switch).is_some(),
                "{name}: {switch} was not settled: {report}"
            );
        }
        assert!(report.write_calls > 0);
        let listed = report.reading("running_overrides");
        assert!(
            listed == Some("listed") || (listed.is_none() && name == "listing_lag=lagged"),
            "{name}: {listed:?}"
        );
        // What the probe made is gone, but an override the vendor ended at its now (history).
        let left: Vec<String> = sim
            .overrides(&vs)
            .iter()
            .filter(|o| o.id.as_str().starts_with("oncall-sync-probe-"))
            .filter(|o| o.span.end > sim.now())
            .map(|o| o.id.to_string())
            .collect();
        assert!(left.is_empty(), "{name}: left {left:?}");
        // History the vendor ended at its now is no one's to delete: not left behind.
        assert!(
            report.left_behind.is_empty(),
            "{name}: {:?}",
            report.left_behind
        );
        let text = report.to_string();
        assert!(text.starts_with("opsgenie probe:"), "{text}");
        let json = serde_json::to_value(&report).unwrap();
        assert_eq!(json["vendor"], "opsgenie");
    }
    eprintln!(
        "{settled} findings matched the dialect over {} settings",
        OpsgenieDialect::variants().len()
    );
}

#[tokio::test]
async fn the_probe_without_a_scratch_schedule_writes_nothing() {
    let (sim, vs) = account(OpsgenieDialect::default()).await;
    let report = sim
        .provider()
        .probe(&ProbeRequest {
            now: probe_now(),
            schedule: None,
            write_to: None,
        })
        .await
        .unwrap();
    assert_eq!(sim.write_calls(), 0);
    assert_eq!(report.write_calls, 0);
    assert!(report.left_behind.is_empty());
    assert_eq!(report.reading("key_rights"), Some("read"));
    // The read-only points of the default dialect.
    for (point, reading) in [
        ("roster", "resolves"),
        ("rotation_order", "timeline"),
        ("timeline_split", "milliseconds"),
        ("past_overrides", "listed"),
        ("missing_override", "not_found_404"),
        ("unknown_schedule", "forbidden_40301"),
        ("handoffs", "wall_clock"),
        ("all_rotations", "empty"),
    ] {
        assert_eq!(report.reading(point), Some(reading), "{point}: {report}");
    }
    assert!(report.reading("rounding").is_none(), "a write point");
    assert!(sim.requests().iter().all(|r| r.simulated));
    assert_eq!(
        sim.overrides(&vs).len(),
        1,
        "only the person's ended override"
    );
}

/// Collects what a provider records.
#[derive(Debug, Default)]
struct Collect(Mutex<Vec<HttpExchange>>);

impl HttpTrace for Collect {
    fn record(&self, exchange: HttpExchange) {
        self.0.lock().unwrap().push(exchange);
    }
}

#[tokio::test]
async fn every_attempt_is_traced_without_the_key() {
    let (sim, vs) = simulator_with_schedule().await;
    let trace = Arc::new(Collect::default());
    let traced = sim
        .provider_builder()
        .with_http_trace(trace.clone())
        .build()
        .unwrap();
    // A retried read (a 429 first), a create with a body, a refusal.
    sim.rate_limit_next(1);
    traced.list_schedules().await.unwrap();
    let created = traced
        .create_overrides(
            &vs,
            &[NewOverride {
                span: Span::new(
                    now() + TimeDelta::days(3),
                    now() + TimeDelta::days(4),
                    email("ann"),
                ),
                id: Some(OverrideId::new("traced")),
            }],
        )
        .await
        .unwrap();
    assert!(created[0].is_ok(), "{created:?}");
    let gone = traced
        .delete_override(&vs, &OverrideId::new("no-such-alias"))
        .await;
    assert!(gone.is_err());
    let exchanges = trace.0.lock().unwrap().clone();
    assert_eq!(
        exchanges.len(),
        sim.requests().len(),
        "one exchange per attempt, retries included"
    );
    assert_eq!(exchanges[0].status, Some(429));
    assert_eq!(exchanges[1].status, Some(200));
    let post = exchanges.iter().find(|e| e.method == "POST").unwrap();
    assert!(post
        .request_body
        .as_deref()
        .unwrap()
        .contains("\"alias\":\"traced\""));
    assert_eq!(post.status, Some(201));
    assert!(post.response_body.as_deref().unwrap().contains("traced"));
    for e in &exchanges {
        let auth = e
            .request_headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case("authorization"))
            .map(|(_, v)| v.as_str());
        assert_eq!(auth, Some("***"), "{e:?}");
        assert!(e.url.starts_with(&sim.uri()), "{}", e.url);
    }
    let all = serde_json::to_string(&exchanges).unwrap();
    assert!(!all.contains(READ_WRITE_KEY), "the key is in the trace");
}

/// A proxy that echoes the key into its answer: the trace carries none of it, in any spelling.
#[tokio::test]
async fn a_trace_of_an_answer_echoing_the_key_holds_no_key() {
    use wiremock::matchers::any;
    use wiremock::{Mock, MockServer, ResponseTemplate};
    let key = "s3cr3t/GenieKey+echo-5d41402a";
    let server = MockServer::start().await;
    Mock::given(any())
        .respond_with(ResponseTemplate::new(401).set_body_string(format!(
            "{{\"message\":\"bad key {key} ({})\",\"took\":0,\"requestId\":\"r\"}}",
            key.replace('/', "\\/")
        )))
        .mount(&server)
        .await;
    let trace = Arc::new(Collect::default());
    let p = oncall_opsgenie::OpsgenieProvider::builder()
        .with_base_url(server.uri())
        .with_api_key(key)
        .with_http_trace(trace.clone())
        .without_rate_limit()
        .build()
        .unwrap();
    assert!(p.list_schedules().await.is_err());
    let all = serde_json::to_string(&*trace.0.lock().unwrap()).unwrap();
    assert!(all.contains("bad key ***"), "{all}");
    for spelling in [key, "s3cr3t\\\\/GenieKey", "s3cr3t%2FGenieKey"] {
        assert!(!all.contains(spelling), "{spelling} in {all}");
    }
}
