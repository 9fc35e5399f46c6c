//! Sending one request to Opsgenie: the key in the `Authorization` header, pacing and the
//! concurrency limit shared by every clone, retries as the core's [`RetryPolicy`] decides, and the
//! vendor's failures mapped by [`parse_error`].

use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use chrono::{DateTime, TimeDelta, Utc};
use oncall_core::connection::ConnectionSettings;
use oncall_core::pacing::Pacer;
use oncall_core::retry::{run_with_retries, Jitter};
use oncall_core::trace::{scrub_credential_headers, HttpExchange, HttpTrace};
use oncall_core::{ApiKey, BudgetLimit, Error, RateBudget, RetryPolicy, SharedBudget};
use reqwest::header::{HeaderMap, HeaderValue, ACCEPT, AUTHORIZATION, DATE};
use reqwest::{Method, Url};
use serde_json::Value;
use tokio::sync::Semaphore;

use crate::builder::Rate;
use crate::error::{parse_error, transport_error, CallContext};
use crate::gate::Gate;
use crate::json::parse_body;

/// What [`Client::new`] needs.
pub(crate) struct ClientSettings {
    pub connection: ConnectionSettings,
    pub timeout: Duration,
    pub retry: RetryPolicy,
    pub user_agent: String,
    pub max_concurrency: usize,
    pub rate: Rate,
    pub rate_budget: Option<(Arc<dyn RateBudget>, String)>,
    pub trace: Option<Arc<dyn HttpTrace>>,
}

/// An answer as it came, before it is read as a success or mapped to an [`Error`]: the status,
/// the headers and the body (scrubbed of the key).
#[derive(Debug, Clone)]
pub(crate) struct RawAnswer {
    pub status: u16,
    pub headers: HeaderMap,
    pub body: Vec<u8>,
}

impl RawAnswer {
    /// The body as JSON (`Null` when empty or not JSON).
    pub fn json(&self) -> Value {
        serde_json::from_slice(&self.body).unwrap_or(Value::Null)
    }
}

/// One connection's HTTP machinery. The provider keeps it behind an `Arc`, so that clones share
/// the connection pool, the pacer and the concurrency limit.
pub(crate) struct Client {
    http: reqwest::Client,
    base: Url,
    base_url: String,
    /// `GenieKey <key>`, marked sensitive (hyper and reqwest keep it out of their `Debug`).
    authorization: HeaderValue,
    /// The key, to redact it from whatever an answer echoes ([`Client::scrub`]).
    api_key: ApiKey,
    timeout: Duration,
    retry: RetryPolicy,
    max_concurrency: usize,
    /// The connection's pace: a rate (adaptive by default), the vendor's pauses, and the window
    /// of requests in flight that an adaptive rate moves.
    pacer: Mutex<Pacer>,
    /// The account's rate shared with other processes, if the host set one.
    rate_budget: Option<SharedBudget>,
    /// The requests in flight: at most `max_concurrency`, fewer while the pacer's window is
    /// smaller.
    gate: Gate,
    jitter: Jitter,
    /// The latest `Date` the vendor answered with (its clock, to whole seconds), and how far it
    /// had moved on from the one before.
    vendor_now: Mutex<Option<(DateTime<Utc>, TimeDelta)>>,
    /// Where every attempt is recorded, credentials scrubbed.
    trace: Option<Arc<dyn HttpTrace>>,
}

impl std::fmt::Debug for Client {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Client")
            .field("base_url", &self.base_url)
            .field("api_key", &"***")
            .field("timeout", &self.timeout)
            .field("retry", &self.retry)
            .field("max_concurrency", &self.max_concurrency)
            .finish_non_exhaustive()
    }
}

/// One request: method, path below `/v2/`, query, JSON body, and what it is about (for errors).
#[derive(Debug)]
pub(crate) struct Request<'a> {
    pub method: Method,
    pub path: Vec<&'a str>,
    pub query: Vec<(&'static str, String)>,
    pub body: Option<Value>,
    pub context: CallContext<'a>,
}

impl<'a> Request<'a> {
    /// A read of `path`.
    pub fn get(path: Vec<&'a str>, context: CallContext<'a>) -> Request<'a> {
        Request {
            method: Method::GET,
            path,
            query: Vec::new(),
            body: None,
            context,
        }
    }

    /// Adds a query parameter.
    pub fn query(mut self, name: &'static str, value: impl Into<String>) -> Request<'a> {
        self.query.push((name, value.into()));
        self
    }
}

/// Locks a mutex that holds plain data: a panic elsewhere cannot leave it inconsistent.
fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

impl Client {
    pub fn new(settings: ClientSettings) -> Result<Client, Error> {
        let ClientSettings {
            connection,
            timeout,
            retry,
            user_agent,
            max_concurrency,
            rate,
            rate_budget,
            trace,
        } = settings;
        // A semaphore holds at most MAX_PERMITS; more would panic.
        let max_concurrency = max_concurrency.clamp(1, Semaphore::MAX_PERMITS);
        let base = Url::parse(&connection.base_url).map_err(|e| {
            Error::InvalidInput(oncall_core::ValidationError::InvalidBaseUrl {
                value: format!("{} ({e})", connection.base_url),
            })
        })?;
        let mut authorization =
            HeaderValue::from_str(&format!("GenieKey {}", connection.api_key.expose()))
                .map_err(|_| Error::InvalidInput(oncall_core::ValidationError::InvalidApiKey))?;
        authorization.set_sensitive(true);
        let http = reqwest::Client::builder()
            .timeout(timeout)
            .user_agent(user_agent)
            .build()
            .map_err(|e| Error::Unsupported {
                message: format!("the HTTP client could not be set up: {e}"),
            })?;
        // The burst is the concurrency (a batch's POSTs go together), at most u32::MAX.
        let burst = u32::try_from(max_concurrency).unwrap_or(u32::MAX);
        let (pacer, fixed) = match rate {
            Rate::Adaptive(settings) => (Pacer::adaptive(settings, burst), None),
            Rate::Fixed(per_minute) => (Pacer::per_minute(per_minute, burst), Some(per_minute)),
            Rate::Unlimited => (Pacer::unlimited(), None),
        };
        let rate_budget = rate_budget.map(|(budget, key)| {
            let limit = BudgetLimit {
                per_minute: fixed.unwrap_or(crate::builder::DEFAULT_RATE_PER_MINUTE),
                burst: u32::try_from(max_concurrency).unwrap_or(u32::MAX),
            };
            SharedBudget::new(budget, key, limit)
        });
        Ok(Client {
            http,
            base,
            base_url: connection.base_url,
            authorization,
            api_key: connection.api_key,
            timeout,
            retry,
            max_concurrency,
            pacer: Mutex::new(pacer),
            gate: Gate::new(max_concurrency),
            jitter: Jitter::new(jitter_seed()),
            vendor_now: Mutex::new(None),
            rate_budget,
            trace,
        })
    }

    pub fn base_url(&self) -> &str {
        &self.base_url
    }

    pub fn max_concurrency(&self) -> usize {
        self.max_concurrency
    }

    /// The vendor's clock as its last answer's `Date` header gave it (whole seconds), if any.
    pub fn vendor_now(&self) -> Option<DateTime<Utc>> {
        lock(&self.vendor_now).map(|(now, _)| now)
    }

    /// How far the vendor's clock moved between its last two answers that moved it (zero before
    /// two): how much later its now will be by the time the next request lands.
    pub fn vendor_step(&self) -> TimeDelta {
        lock(&self.vendor_now).map_or(TimeDelta::zero(), |(_, step)| step)
    }

    /// Sends a request, retrying as the policy says. Creates (POST) are retried only after a 429
    /// (the vendor refused them); a create whose answer was lost is never re-sent.
    pub async fn send(&self, request: &Request<'_>) -> Result<Value, Error> {
        self.send_unless(request, || Ok(())).await
    }

    /// As [`Client::send`], but `stop` is asked right before each attempt goes out (after waiting
    /// for a slot): an `Err` ends the call unsent.
    pub async fn send_unless(
        &self,
        request: &Request<'_>,
        stop: impl Fn() -> Result<(), Error>,
    ) -> Result<Value, Error> {
        let idempotent = request.method != Method::POST;
        run_with_retries(
            &self.retry,
            idempotent,
            || self.jitter.next(),
            tokio::time::sleep,
            |_| self.attempt(request, &stop),
        )
        .await
        .map_err(|e| self.scrub(e))
    }

    /// `error` without the key, whatever the vendor's or a proxy's answer echoed into it.
    pub fn scrub(&self, error: Error) -> Error {
        self.api_key.redact_error(error)
    }

    async fn attempt(
        &self,
        request: &Request<'_>,
        stop: &impl Fn() -> Result<(), Error>,
    ) -> Result<Value, Error> {
        let answer = self.exchange(request, stop).await?;
        let status = answer.status;
        if (200..300).contains(&status) {
            return if answer.body.iter().all(u8::is_ascii_whitespace) {
                Ok(Value::Null)
            } else {
                parse_body(&answer.body)
            };
        }
        let error = parse_error(status, &answer.headers, &answer.body, &request.context);
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

    /// One attempt, as it came back: no retry, and no status read as an error (a probe reads
    /// refusals itself). Transport failures are [`Error::Transient`].
    pub async fn raw(&self, request: &Request<'_>) -> Result<RawAnswer, Error> {
        self.exchange(request, &|| Ok(()))
            .await
            .map_err(|e| self.scrub(e))
    }

    /// Sends one attempt within the concurrency limit and the pace, records it in the trace, and
    /// returns the answer with the key scrubbed from its body.
    async fn exchange(
        &self,
        request: &Request<'_>,
        stop: &impl Fn() -> Result<(), Error>,
    ) -> Result<RawAnswer, Error> {
        let _pass = self.gate.enter().await.ok_or_else(|| Error::Transient {
            message: "the connection is shutting down".into(),
        })?;
        self.pace().await;
        stop()?;
        let mut builder = self
            .http
            .request(request.method.clone(), self.url(request))
            .header(AUTHORIZATION, self.authorization.clone())
            .header(ACCEPT, "application/json");
        if let Some(body) = &request.body {
            // Sets `Content-Type: application/json`.
            builder = builder.json(body);
        }
        let built = builder.build().map_err(|e| Error::Rejected {
            message: format!("the request could not be built: {e}"),
        })?;
        let mut exchange = self.trace.as_ref().map(|_| self.trace_request(&built));
        let started = Instant::now();
        let result = self.receive(built).await;
        if let Ok(answer) = &result {
            if answer.status != 429 {
                self.answered(started.elapsed());
            }
        }
        if let (Some(trace), Some(exchange)) = (&self.trace, exchange.as_mut()) {
            exchange.elapsed_ms = u64::try_from(started.elapsed().as_millis()).unwrap_or(u64::MAX);
            match &result {
                Ok(answer) => {
                    exchange.status = Some(answer.status);
                    exchange.response_headers = self.header_list(&answer.headers);
                    exchange.response_body = (!answer.body.is_empty())
                        .then(|| String::from_utf8_lossy(&answer.body).into_owned());
                }
                Err(e) => exchange.error = Some(self.scrub(e.clone()).to_string()),
            }
            trace.record(std::mem::take(exchange));
        }
        result
    }

    /// Sends a built request and reads the whole answer, the key scrubbed from its body before
    /// anything else reads (or cuts) it.
    async fn receive(&self, request: reqwest::Request) -> Result<RawAnswer, Error> {
        let response = self
            .http
            .execute(request)
            .await
            .map_err(|e| transport_error(&e, self.timeout))?;
        let status = response.status().as_u16();
        let headers = response.headers().clone();
        self.note_vendor_time(&headers);
        let body = response
            .bytes()
            .await
            .map_err(|e| transport_error(&e, self.timeout))?;
        let text = String::from_utf8_lossy(&body);
        let scrubbed = self.api_key.redact_in(&text);
        let body = if scrubbed == text {
            body.to_vec()
        } else {
            scrubbed.into_bytes()
        };
        Ok(RawAnswer {
            status,
            headers,
            body,
        })
    }

    /// The request as a trace records it: credentials replaced, the key scrubbed everywhere.
    fn trace_request(&self, request: &reqwest::Request) -> HttpExchange {
        HttpExchange {
            method: request.method().to_string(),
            url: self.api_key.redact_in(request.url().as_str()),
            request_headers: self.header_list(request.headers()),
            request_body: request
                .body()
                .and_then(reqwest::Body::as_bytes)
                .map(|b| self.api_key.redact_in(&String::from_utf8_lossy(b))),
            ..HttpExchange::default()
        }
    }

    /// Headers as text, credential headers replaced by `***` and the key scrubbed from the rest.
    fn header_list(&self, headers: &HeaderMap) -> Vec<(String, String)> {
        let mut list: Vec<(String, String)> = headers
            .iter()
            .map(|(name, value)| {
                let value = String::from_utf8_lossy(value.as_bytes());
                (name.as_str().to_owned(), self.api_key.redact_in(&value))
            })
            .collect();
        scrub_credential_headers(&mut list);
        list
    }

    fn url(&self, request: &Request<'_>) -> Url {
        let mut url = self.base.clone();
        if let Ok(mut segments) = url.path_segments_mut() {
            // Each segment is percent-encoded: ids and aliases may hold any character.
            segments.pop_if_empty().push("v2").extend(&request.path);
        }
        if !request.query.is_empty() {
            url.query_pairs_mut().extend_pairs(&request.query);
        }
        url
    }

    pub(crate) async fn pace(&self) {
        let wait = lock(&self.pacer).reserve(Instant::now());
        if !wait.is_zero() {
            tokio::time::sleep(wait).await;
        }
        // A 429 that came while this request waited for its slot pauses it too.
        loop {
            let paused = lock(&self.pacer).paused_for(Instant::now());
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

    /// After a 429, every request of the connection waits the vendor's period (within the policy's
    /// total budget, as the retry's own wait is), so concurrent creates back off
    /// together instead of each running into the limit again; an adaptive pace slows down and
    /// lets fewer requests be in flight.
    pub(crate) fn pause(&self, retry_after: Option<Duration>) {
        let wait = self.retry.rate_limit_pause(retry_after);
        let mut pacer = lock(&self.pacer);
        pacer.rate_limited(Instant::now(), wait);
        self.resize_gate(&pacer);
    }

    /// An answer other than a 429 came back after `latency`: an adaptive pace speeds up, or slows
    /// down if the vendor delayed it.
    fn answered(&self, latency: Duration) {
        let mut pacer = lock(&self.pacer);
        pacer.answered(Instant::now(), latency);
        self.resize_gate(&pacer);
    }

    /// Follows the adaptive pacer's window (a fixed pace keeps the whole concurrency).
    fn resize_gate(&self, pacer: &Pacer) {
        if let Some(window) = pacer.in_flight_limit() {
            self.gate.resize(window);
        }
    }

    /// How many requests the gate lets be in flight now.
    #[cfg(test)]
    pub(crate) fn gate_limit(&self) -> usize {
        self.gate.limit()
    }

    /// The adaptive pace's rate (requests a second) and window (requests in flight), if adaptive.
    #[cfg(test)]
    pub(crate) fn adaptive_pace(&self) -> Option<(f64, usize)> {
        let pacer = lock(&self.pacer);
        pacer.rate_per_second().zip(pacer.in_flight_limit())
    }

    fn note_vendor_time(&self, headers: &HeaderMap) {
        let Some(date) = headers
            .get(DATE)
            .and_then(|d| d.to_str().ok())
            .and_then(|d| DateTime::parse_from_rfc2822(d).ok())
        else {
            return;
        };
        let date = date.with_timezone(&Utc);
        let mut now = lock(&self.vendor_now);
        *now = Some(match *now {
            None => (date, TimeDelta::zero()),
            Some((latest, _)) if date > latest => {
                (date, (date - latest).min(TimeDelta::minutes(1)))
            }
            Some(kept) => kept,
        });
    }
}

/// A per-process random seed for the jitter, without reading a clock: std's randomly keyed hasher.
fn jitter_seed() -> u64 {
    use std::hash::{BuildHasher, Hasher};
    std::collections::hash_map::RandomState::new()
        .build_hasher()
        .finish()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn client(base: &str) -> Client {
        let connection = oncall_core::connection::ConnectionBuilder::new(crate::URLS)
            .with_base_url(base)
            .with_api_key("k")
            .build()
            .unwrap();
        Client::new(ClientSettings {
            connection,
            timeout: Duration::from_secs(1),
            retry: RetryPolicy::default(),
            user_agent: "t".into(),
            max_concurrency: 2,
            rate: Rate::Unlimited,
            rate_budget: None,
            trace: None,
        })
        .unwrap()
    }

    #[test]
    fn urls_encode_every_segment_and_the_query() {
        let c = client("http://127.0.0.1:9/proxy/");
        let r = Request::get(
            vec!["schedules", "a b/c", "overrides", "x?y"],
            CallContext::default(),
        )
        .query("scheduleIdentifierType", "id")
        .query("date", "2024-03-31T00:00:00+02:00");
        assert_eq!(
            c.url(&r).as_str(),
            "http://127.0.0.1:9/proxy/v2/schedules/a%20b%2Fc/overrides/x%3Fy\
             ?scheduleIdentifierType=id&date=2024-03-31T00%3A00%3A00%2B02%3A00"
        );
    }

    #[test]
    fn a_huge_vendor_wait_under_an_unbounded_policy_does_not_panic() {
        let connection = oncall_core::connection::ConnectionBuilder::new(crate::URLS)
            .with_base_url("http://127.0.0.1:9")
            .with_api_key("k")
            .build()
            .unwrap();
        let c = Client::new(ClientSettings {
            connection,
            timeout: Duration::from_secs(1),
            retry: RetryPolicy {
                max_delay: Duration::MAX,
                ..RetryPolicy::default()
            },
            user_agent: "t".into(),
            max_concurrency: 2,
            rate: Rate::Unlimited,
            rate_budget: None,
            trace: None,
        })
        .unwrap();
        c.pause(Some(Duration::from_secs(u64::MAX)));
        c.pause(Some(Duration::MAX));
    }

    #[test]
    fn the_vendor_clock_comes_from_date_headers() {
        let c = client("http://127.0.0.1:9");
        let mut h = HeaderMap::new();
        h.insert(
            DATE,
            HeaderValue::from_static("Sun, 31 Mar 2024 07:00:05 GMT"),
        );
        c.note_vendor_time(&h);
        h.insert(
            DATE,
            HeaderValue::from_static("Sun, 31 Mar 2024 07:00:01 GMT"),
        );
        c.note_vendor_time(&h);
        assert_eq!(
            c.vendor_now().unwrap().to_rfc3339(),
            "2024-03-31T07:00:05+00:00",
            "never goes back"
        );
    }
}
