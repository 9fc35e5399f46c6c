//! The HTTP side: one request with PagerDuty's headers, paced per key, retried as the core's policy
//! says, every attempt handed to the trace (if any) with the key scrubbed, and every failure mapped
//! by [`parse_error`] from a body the key was scrubbed from first.

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use oncall_core::pacing::Pacer;
use oncall_core::retry::{run_with_retries, Jitter};
use oncall_core::trace::{scrub_credential_headers, HttpExchange, HttpTrace};
use oncall_core::{ApiKey, Error, RetryPolicy, SharedBudget};
use reqwest::header::{HeaderMap, HeaderValue, AUTHORIZATION, CONTENT_TYPE};
use reqwest::{Method, StatusCode};
use serde_json::Value;

use crate::error::parse_error;
use crate::gate::Gate;

/// PagerDuty's versioning header: always sent (the spec marks it required).
pub(crate) const ACCEPT: &str = "application/vnd.pagerduty+json;version=2";

/// The JSON content type: the spec marks `Content-Type: application/json` required on every
/// operation, GETs included (validating gateways refuse requests without it).
pub(crate) const JSON: &str = "application/json";

/// An answer the caller asked to see.
#[derive(Debug)]
pub(crate) struct Answer {
    pub(crate) status: StatusCode,
    pub(crate) headers: HeaderMap,
    pub(crate) body: Vec<u8>,
}

/// Which answers a call reads itself instead of mapping them to errors.
pub(crate) type Accept = fn(StatusCode) -> bool;

/// Success only.
pub(crate) fn success(status: StatusCode) -> bool {
    status.is_success()
}

/// One PagerDuty account's HTTP client; shared (in an `Arc`) by every clone of the provider.
pub(crate) struct Client {
    pub(crate) http: reqwest::Client,
    pub(crate) base_url: String,
    pub(crate) key: ApiKey,
    pub(crate) retry: RetryPolicy,
    /// Requests per key stay under PagerDuty's 960 a minute, adapting to push-back (a 429, answers
    /// the vendor delays); a 429 pauses everyone.
    pub(crate) pacer: Mutex<Pacer>,
    /// The requests in flight, at most the adaptive pacer's window.
    pub(crate) gate: Gate,
    pub(crate) jitter: Jitter,
    /// Where every attempt is recorded, keys scrubbed (`with_http_trace`).
    pub(crate) trace: Option<Arc<dyn HttpTrace>>,
    /// The account's rate shared with other processes, if the host set one.
    pub(crate) rate_budget: Option<SharedBudget>,
}

impl std::fmt::Debug for Client {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Client")
            .field("base_url", &self.base_url)
            .field("key", &self.key)
            .field("retry", &self.retry)
            .finish_non_exhaustive()
    }
}

impl Client {
    /// A GET; the body of a 2xx answer.
    pub(crate) async fn get(&self, path: &str, query: &[(&str, String)]) -> Result<Vec<u8>, Error> {
        let answer = self.send(Method::GET, path, query, None, success).await?;
        Ok(answer.body)
    }

    /// Sends one request: paced, retried where the policy allows (GET and DELETE on 5xx and
    /// timeouts; anything on 429, which the vendor refused), and mapped to an error unless `accept`
    /// takes the answer.
    pub(crate) async fn send(
        &self,
        method: Method,
        path: &str,
        query: &[(&str, String)],
        body: Option<&Value>,
        accept: Accept,
    ) -> Result<Answer, Error> {
        // A POST whose answer was lost may have landed: never re-sent (the sync re-reads and adopts).
        let idempotent = method != Method::POST;
        let result = run_with_retries(
            &self.retry,
            idempotent,
            || self.jitter.next(),
            tokio::time::sleep,
            |_| async {
                let answer = self
                    .exchange(method.clone(), path, query, body, None)
                    .await?;
                let judged = self.judge(&method, answer, accept);
                if let (Err(Error::RateLimited { retry_after, .. }), Some(budget)) =
                    (&judged, &self.rate_budget)
                {
                    // Every process sharing the account's budget pauses too.
                    budget
                        .pause(self.retry.rate_limit_pause(*retry_after))
                        .await;
                }
                judged
            },
        )
        .await;
        result.map_err(|e| self.scrub(e))
    }

    /// One attempt, never retried, whatever its status: for `oncall probe`, which reads the
    /// vendor's answers as they come. `key` replaces the provider's key (the probe's look at a
    /// refused key); errors are only the transport's (no answer at all).
    pub(crate) async fn once(
        &self,
        method: Method,
        path: &str,
        query: &[(&str, String)],
        body: Option<&Value>,
        key: Option<&str>,
    ) -> Result<Answer, Error> {
        self.exchange(method, path, query, body, key)
            .await
            .map_err(|e| self.scrub(e))
    }

    /// An answer's fate: taken by `accept`, or mapped to an error from a body the key was
    /// scrubbed from before any text is cut.
    fn judge(&self, method: &Method, answer: Answer, accept: Accept) -> Result<Answer, Error> {
        if accept(answer.status) {
            return Ok(answer);
        }
        let body = self.key.redact_in(&String::from_utf8_lossy(&answer.body));
        let error = parse_error(
            answer.status,
            &answer.headers,
            body.as_bytes(),
            *method != Method::GET,
        );
        if let Error::RateLimited { retry_after, .. } = &error {
            self.pause(*retry_after);
        }
        Err(error)
    }

    /// One HTTP exchange, paced, recorded in the trace.
    async fn exchange(
        &self,
        method: Method,
        path: &str,
        query: &[(&str, String)],
        body: Option<&Value>,
        key: Option<&str>,
    ) -> Result<Answer, Error> {
        let _pass = self.gate.enter().await.ok_or_else(|| Error::Transient {
            message: "the connection is shutting down".into(),
        })?;
        self.pace().await;
        let token = key.unwrap_or(self.key.expose());
        let mut auth = HeaderValue::try_from(format!("Token token={token}"))
            .map_err(|_| Error::InvalidInput(oncall_core::ValidationError::InvalidApiKey))?;
        auth.set_sensitive(true);
        let mut request = self
            .http
            .request(method, format!("{}{path}", self.base_url))
            .header(AUTHORIZATION, auth)
            // Also a default header; set here so that a trace shows it.
            .header(reqwest::header::ACCEPT, ACCEPT)
            // The spec marks it required on every operation, GETs included.
            .header(CONTENT_TYPE, JSON)
            .query(query);
        if let Some(body) = body {
            request = request.body(body.to_string());
        }
        let request = request.build().map_err(transport)?;
        let mut record = self.trace.as_ref().map(|_| self.describe(&request, key));
        let started = Instant::now();
        let result: Result<Answer, Error> = async {
            let response = self.http.execute(request).await.map_err(transport)?;
            let status = response.status();
            let headers = response.headers().clone();
            let body = response.bytes().await.map_err(transport)?.to_vec();
            Ok(Answer {
                status,
                headers,
                body,
            })
        }
        .await;
        if let Ok(answer) = &result {
            if answer.status != StatusCode::TOO_MANY_REQUESTS {
                self.answered(started.elapsed());
            }
        }
        if let (Some(trace), Some(mut exchange)) = (&self.trace, record.take()) {
            exchange.elapsed_ms = u64::try_from(started.elapsed().as_millis()).unwrap_or(u64::MAX);
            match &result {
                Ok(answer) => {
                    exchange.status = Some(answer.status.as_u16());
                    exchange.response_headers = header_pairs(&answer.headers);
                    scrub_credential_headers(&mut exchange.response_headers);
                    exchange.response_body = (!answer.body.is_empty())
                        .then(|| self.redact(&String::from_utf8_lossy(&answer.body), key));
                }
                Err(e) => exchange.error = Some(self.redact(&e.to_string(), key)),
            }
            for (_, value) in &mut exchange.response_headers {
                *value = self.redact(value, key);
            }
            trace.record(exchange);
        }
        result
    }

    /// A request as the trace keeps it: credentials replaced, the key scrubbed wherever echoed.
    fn describe(&self, request: &reqwest::Request, key: Option<&str>) -> HttpExchange {
        let mut headers = header_pairs(request.headers());
        scrub_credential_headers(&mut headers);
        for (_, value) in &mut headers {
            *value = self.redact(value, key);
        }
        HttpExchange {
            method: request.method().to_string(),
            url: self.redact(request.url().as_str(), key),
            request_headers: headers,
            request_body: request
                .body()
                .and_then(reqwest::Body::as_bytes)
                .map(|b| self.redact(&String::from_utf8_lossy(b), key)),
            ..HttpExchange::default()
        }
    }

    /// `text` with the provider's key (and a probe's other key) scrubbed.
    fn redact(&self, text: &str, key: Option<&str>) -> String {
        let text = self.key.redact_in(text);
        match key.and_then(|k| ApiKey::new(k).ok()) {
            Some(other) => other.redact_in(&text),
            None => text,
        }
    }

    /// Waits for this request's slot in the key's pace, and in the shared budget's.
    async fn pace(&self) {
        let wait = self
            .pacer
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .reserve(Instant::now());
        if !wait.is_zero() {
            tokio::time::sleep(wait).await;
        }
        // A 429 that came while this request waited for its slot pauses it too.
        loop {
            let paused = self
                .pacer
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .paused_for(Instant::now());
            if paused.is_zero() {
                break;
            }
            tokio::time::sleep(paused).await;
        }
        if let Some(budget) = &self.rate_budget {
            let wait = budget.reserve().await;
            if !wait.is_zero() {
                tokio::time::sleep(wait).await;
            }
        }
    }

    /// After a 429: every request on this key waits the vendor's reset (bounded by the policy),
    /// and an adaptive pace slows down and lets fewer requests be in flight.
    fn pause(&self, reset: Option<Duration>) {
        let wait = self.retry.rate_limit_pause(reset);
        let mut pacer = self.pacer.lock().unwrap_or_else(|e| e.into_inner());
        pacer.rate_limited(Instant::now(), wait);
        self.resize_gate(&pacer);
    }

    /// An answer other than a 429 came back after `latency`: an adaptive pace speeds up, or slows
    /// down if the vendor delayed it.
    fn answered(&self, latency: Duration) {
        let mut pacer = self.pacer.lock().unwrap_or_else(|e| e.into_inner());
        pacer.answered(Instant::now(), latency);
        self.resize_gate(&pacer);
    }

    /// Follows the adaptive pacer's window (a fixed pace keeps the whole concurrency).
    fn resize_gate(&self, pacer: &Pacer) {
        if let Some(window) = pacer.in_flight_limit() {
            self.gate.resize(window);
        }
    }

    /// Makes sure the key appears in no message, whatever a vendor or proxy echoed.
    pub(crate) fn scrub(&self, error: Error) -> Error {
        self.key.redact_error(error)
    }
}

/// A request that got no (complete) answer: a timeout, a refused or dropped connection. Whether a
/// write landed is unknown.
fn transport(e: reqwest::Error) -> Error {
    let what = if e.is_timeout() {
        "timed out"
    } else if e.is_connect() {
        "could not connect"
    } else {
        "lost its answer"
    };
    // The URL holds no secret (the key travels in a header); the error's own text names the cause.
    Error::Transient {
        message: format!("the request to PagerDuty {what}: {e}"),
    }
}

/// Header pairs as text (values that are not text shown as such).
fn header_pairs(headers: &HeaderMap) -> Vec<(String, String)> {
    headers
        .iter()
        .map(|(name, value)| {
            (
                name.as_str().to_owned(),
                value.to_str().unwrap_or("(not text)").to_owned(),
            )
        })
        .collect()
}

/// Default headers of every request: the versioning `Accept`.
pub(crate) fn default_headers() -> HeaderMap {
    let mut headers = HeaderMap::new();
    headers.insert(reqwest::header::ACCEPT, HeaderValue::from_static(ACCEPT));
    headers
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;

    #[test]
    fn a_huge_vendor_wait_under_an_unbounded_policy_does_not_panic() {
        let provider = crate::PagerDutyProvider::builder()
            .with_api_key("k")
            .with_retry(RetryPolicy {
                max_delay: Duration::MAX,
                ..RetryPolicy::default()
            })
            .build()
            .unwrap();
        let client = &provider.inner.client;
        client.pause(Some(Duration::from_secs(u64::MAX)));
        client.pause(Some(Duration::MAX));
    }
}
