//! The HTTP trace hook: every attempt recorded, the key in none of it.

#![allow(clippy::unwrap_used)] // tests: a panic is the failure report

use std::sync::{Arc, Mutex};

use chrono::{TimeZone, Utc};
use oncall_core::testkit::VendorSimulator;
use oncall_core::trace::{HttpExchange, HttpTrace, Redactor};
use oncall_core::{Email, Member, Provider, VendorSchedule, VendorScheduleId};
use oncall_pagerduty::testkit::PagerDutySimulator;
use oncall_pagerduty::PagerDutyProvider;
use wiremock::matchers::any;
use wiremock::{Mock, MockServer, ResponseTemplate};

#[derive(Debug, Default)]
struct Kept(Mutex<Vec<HttpExchange>>);

impl HttpTrace for Kept {
    fn record(&self, exchange: HttpExchange) {
        self.0.lock().unwrap().push(exchange);
    }
}

impl Kept {
    fn all(&self) -> Vec<HttpExchange> {
        self.0.lock().unwrap().clone()
    }
}

#[tokio::test]
async fn every_attempt_is_traced_without_the_key() {
    let sim =
        PagerDutySimulator::start_at(Utc.with_ymd_and_hms(2024, 1, 1, 0, 0, 0).unwrap()).await;
    sim.add_schedule(VendorSchedule {
        id: VendorScheduleId("PT".into()),
        name: "Traced".into(),
        zone: chrono_tz::UTC,
        members: vec![Member::new(Email::parse("ann@example.com").unwrap(), "Ann")],
        rotations: vec![],
    });
    sim.set_rate_limit_reset(0);
    let kept = Arc::new(Kept::default());
    let provider = sim
        .provider_builder()
        .with_http_trace(kept.clone())
        .build()
        .unwrap();
    // Two 429s before the listing's first request: three attempts, all traced.
    sim.rate_limit_next(2);
    provider.list_schedules().await.unwrap();
    let trace = kept.all();
    assert_eq!(trace.len(), sim.requests().len());
    let statuses: Vec<Option<u16>> = trace.iter().map(|e| e.status).collect();
    assert_eq!(&statuses[..3], [Some(429), Some(429), Some(200)]);
    for e in &trace {
        assert!(e.url.starts_with(&sim.uri()), "{e:?}");
        let auth = e
            .request_headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case("authorization"))
            .unwrap();
        assert_eq!(auth.1, "***");
        for (name, value) in [
            ("content-type", "application/json"),
            ("accept", "application/vnd.pagerduty+json;version=2"),
        ] {
            assert!(
                e.request_headers
                    .iter()
                    .any(|(k, v)| k.eq_ignore_ascii_case(name) && v == value),
                "{name}: {e:?}"
            );
        }
    }
    let text = serde_json::to_string(&trace).unwrap();
    assert!(!text.contains(PagerDutySimulator::READ_WRITE_KEY), "{text}");
    // The sink redacts people.
    let mut redactor = Redactor::default();
    let redacted: Vec<HttpExchange> = trace
        .into_iter()
        .map(|e| redactor.redact_exchange(e))
        .collect();
    let text = serde_json::to_string(&redacted).unwrap();
    assert!(!text.contains("ann@example.com"), "{text}");
}

/// A proxy that echoes the key everywhere: in a header, the body, percent-encoded, cut short.
#[tokio::test]
async fn a_key_echoed_anywhere_is_scrubbed_from_the_trace() {
    let key = "zq9Xk2Lm/Pp4+Rr6Tt8V";
    let server = MockServer::start().await;
    let body = format!("bad key {key} (zq9Xk2Lm%2FPp4%2BRr6Tt8V) {}", &key[..10]);
    Mock::given(any())
        .respond_with(
            ResponseTemplate::new(401)
                .insert_header("x-echo", format!("Token token={key}").as_str())
                .set_body_string(body),
        )
        .mount(&server)
        .await;
    let kept = Arc::new(Kept::default());
    let provider = PagerDutyProvider::builder()
        .with_api_key(key)
        .with_base_url(server.uri())
        .with_retry(PagerDutySimulator::test_retry_policy())
        .with_http_trace(kept.clone())
        .build()
        .unwrap();
    let e = provider.list_schedules().await.unwrap_err();
    assert!(matches!(e, oncall_core::Error::Unauthenticated { .. }));
    let trace = kept.all();
    assert_eq!(trace.len(), 1, "a 401 is not retried");
    let text = serde_json::to_string(&trace).unwrap();
    for leak in [key, "zq9Xk2Lm%2FPp4%2BRr6Tt8V", &key[..10]] {
        assert!(!text.contains(leak), "{leak} in {text}");
    }
    assert!(text.contains("bad key ***"), "{text}");
}
