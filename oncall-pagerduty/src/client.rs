//! The HTTP side: one request with PagerDuty's headers, paced per key, retried as the core's policy
//! says, and every failure mapped by [`parse_error`].

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use oncall_core::pacing::Pacer;
use oncall_core::retry::{run_with_retries, Jitter};
use oncall_core::{ApiKey, Error, RetryPolicy, SharedBudget};
use reqwest::header::{HeaderMap, HeaderValue, AUTHORIZATION};
use reqwest::{Method, StatusCode};
use serde_json::Value;

use crate::error::parse_error;

/// PagerDuty's versioning header: always sent (the spec marks it required).
pub(crate) const ACCEPT: &str = "application/vnd.pagerduty+json;version=2";

/// An answer the caller asked to see.
#[derive(Debug)]
pub(crate) struct Answer {
    pub(crate) status: StatusCode,
    pub(crate) body: Vec<u8>,
}

/// Which answers a call reads itself instead of mapping them to errors: `(status, landed)`, where
/// `landed` says whether an earlier attempt of this call may have taken effect (its answer was
/// lost: a 5xx, a timeout, a dropped connection). A refusal (a 429, any 4xx) never landed.
pub(crate) type Accept = fn(StatusCode, bool) -> bool;

/// Success only.
pub(crate) fn success(status: StatusCode, _landed: bool) -> bool {
    status.is_success()
}

/// One PagerDuty account's HTTP client; shared (in an `Arc`) by every clone of the provider.
pub(crate) struct Client {
    pub(crate) http: reqwest::Client,
    pub(crate) base_url: String,
    pub(crate) key: ApiKey,
    pub(crate) retry: RetryPolicy,
    /// Requests per key stay under PagerDuty's 960 a minute; a 429 pauses everyone.
    pub(crate) pacer: Mutex<Pacer>,
    pub(crate) jitter: Jitter,
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
        let landed = AtomicBool::new(false);
        let result = run_with_retries(
            &self.retry,
            idempotent,
            || self.jitter.next(),
            tokio::time::sleep,
            |_| async {
                let result = self
                    .attempt(method.clone(), path, query, body, accept, &landed)
                    .await;
                // Only a lost answer leaves the attempt's effect unknown; a 429 refused it.
                if matches!(result, Err(Error::Transient { .. })) {
                    landed.store(true, Ordering::Relaxed);
                }
                result
            },
        )
        .await;
        result.map_err(|e| self.scrub(e))
    }

    async fn attempt(
        &self,
        method: Method,
        path: &str,
        query: &[(&str, String)],
        body: Option<&Value>,
        accept: Accept,
        landed: &AtomicBool,
    ) -> Result<Answer, Error> {
        self.pace().await;
        let is_write = method != Method::GET;
        let mut auth = HeaderValue::try_from(format!("Token token={}", self.key.expose()))
            .map_err(|_| Error::InvalidInput(oncall_core::ValidationError::InvalidApiKey))?;
        auth.set_sensitive(true);
        let mut request = self
            .http
            .request(method, format!("{}{path}", self.base_url))
            .header(AUTHORIZATION, auth)
            .query(query);
        match body {
            Some(body) => request = request.json(body),
            // The spec marks the JSON content type required on every operation; the docs on writes.
            None if is_write => {
                request = request.header(reqwest::header::CONTENT_TYPE, "application/json");
            }
            None => {}
        }
        let response = request.send().await.map_err(transport)?;
        let status = response.status();
        let headers = response.headers().clone();
        let body = response.bytes().await.map_err(transport)?.to_vec();
        if accept(status, landed.load(Ordering::Relaxed)) {
            return Ok(Answer { status, body });
        }
        let error = parse_error(status, &headers, &body, is_write);
        if let Error::RateLimited { retry_after, .. } = &error {
            self.pause(*retry_after);
            if let Some(budget) = &self.rate_budget {
                budget
                    .pause(self.retry.rate_limit_pause(*retry_after))
                    .await;
            }
        }
        Err(error)
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
        if let Some(budget) = &self.rate_budget {
            let wait = budget.reserve().await;
            if !wait.is_zero() {
                tokio::time::sleep(wait).await;
            }
        }
    }

    /// After a 429: every request on this key waits the vendor's reset (bounded by the policy).
    fn pause(&self, reset: Option<Duration>) {
        let wait = self.retry.rate_limit_pause(reset);
        self.pacer
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .pause_for(Instant::now(), wait);
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
