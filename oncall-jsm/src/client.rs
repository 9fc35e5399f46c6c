//! Sending one request to JSM Operations or to the site's user endpoints: Basic auth, the cloudId
//! in the path (found once from the site when not given), pacing and retries shared by every clone,
//! an HTTP trace of every attempt, and the vendor's failures mapped by [`parse_error`].

use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use chrono::{DateTime, Utc};
use oncall_core::pacing::Pacer;
use oncall_core::retry::{run_with_retries, Jitter};
use oncall_core::trace::{scrub_credential_headers, HttpExchange, HttpTrace};
use oncall_core::{Error, RetryPolicy, SharedBudget, ValidationError};
use reqwest::header::{HeaderMap, HeaderValue, ACCEPT, AUTHORIZATION, DATE};
use reqwest::{Method, Url};
use serde_json::Value;
use tokio::sync::{OnceCell, Semaphore};

use crate::credentials::Credentials;
use crate::error::{parse_error, transport_error, CallContext};
use crate::json::{parse_body, Node};

/// Which of the connection's two hosts a request goes to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Host {
    /// The Operations API: `<api base>/jsm/ops/api/<cloudId>/v1/…`.
    Ops,
    /// The site's Jira platform API: `<site>/rest/api/3/…` (or, without a site,
    /// `<api base>/ex/jira/<cloudId>/rest/api/3/…`).
    Site,
}

/// Where a request goes: a path below its host's root, or a URL the vendor gave (a next page),
/// already checked to lie on the same host.
#[derive(Debug, Clone)]
pub(crate) enum Target {
    Path(Host, Vec<String>),
    Url(Url),
}

/// One request: method, target, query, JSON body, and what it is about (for errors).
#[derive(Debug, Clone)]
pub(crate) struct Request<'a> {
    pub method: Method,
    pub target: Target,
    pub query: Vec<(&'static str, String)>,
    pub body: Option<Value>,
    pub context: CallContext<'a>,
}

impl<'a> Request<'a> {
    /// A read of `path` on the Operations API.
    pub fn ops(method: Method, path: &[&str], context: CallContext<'a>) -> Request<'a> {
        Request {
            method,
            target: Target::Path(Host::Ops, path.iter().map(|s| (*s).to_owned()).collect()),
            query: Vec::new(),
            body: None,
            context,
        }
    }

    /// A read of `path` below the site's `/rest/api/3/`.
    pub fn site(path: &[&str]) -> Request<'a> {
        Request {
            method: Method::GET,
            target: Target::Path(Host::Site, path.iter().map(|s| (*s).to_owned()).collect()),
            query: Vec::new(),
            body: None,
            context: CallContext {
                people: true,
                ..CallContext::default()
            },
        }
    }

    /// Adds a query parameter.
    pub fn query(mut self, name: &'static str, value: impl Into<String>) -> Request<'a> {
        self.query.push((name, value.into()));
        self
    }

    /// Sets the JSON body.
    pub fn body(mut self, body: Value) -> Request<'a> {
        self.body = Some(body);
        self
    }
}

/// A 2xx answer's JSON body (`Null` when empty).
#[derive(Debug, Clone)]
pub(crate) struct Answer {
    pub body: Value,
}

/// An answer as it came, for the probe: status, headers and body, unmapped.
#[derive(Debug, Clone)]
pub(crate) struct RawAnswer {
    pub status: u16,
    pub body: Vec<u8>,
}

/// What [`Client::new`] needs.
pub(crate) struct ClientSettings {
    pub credentials: Credentials,
    pub api_base: Url,
    pub site: Option<Url>,
    pub cloud_id: Option<String>,
    pub timeout: Duration,
    pub retry: RetryPolicy,
    pub user_agent: String,
    pub max_concurrency: usize,
    pub pacer: Pacer,
    pub rate_budget: Option<SharedBudget>,
    pub trace: Option<Arc<dyn HttpTrace>>,
}

/// One connection's HTTP machinery, shared by a provider's clones.
pub(crate) struct Client {
    http: reqwest::Client,
    credentials: Credentials,
    /// `Basic …`, marked sensitive (hyper and reqwest keep it out of their `Debug`).
    authorization: HeaderValue,
    api_base: Url,
    site: Option<Url>,
    cloud_id: OnceCell<String>,
    timeout: Duration,
    retry: RetryPolicy,
    max_concurrency: usize,
    pacer: Mutex<Pacer>,
    /// The site's rate shared with other processes, if the host set one.
    rate_budget: Option<SharedBudget>,
    permits: Semaphore,
    jitter: Jitter,
    trace: Option<Arc<dyn HttpTrace>>,
    /// The latest `Date` the vendor answered with: its clock, to whole seconds.
    vendor_now: Mutex<Option<DateTime<Utc>>>,
}

impl std::fmt::Debug for Client {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Client")
            .field("api_base", &self.api_base.as_str())
            .field("site", &self.site.as_ref().map(Url::as_str))
            .field("cloud_id", &self.cloud_id.get())
            .field("credentials", &self.credentials)
            .field("timeout", &self.timeout)
            .field("retry", &self.retry)
            .field("max_concurrency", &self.max_concurrency)
            .field("trace", &self.trace.is_some())
            .finish_non_exhaustive()
    }
}

/// Locks a mutex that holds plain data: a panic elsewhere cannot leave it inconsistent.
pub(crate) fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

impl Client {
    pub fn new(settings: ClientSettings) -> Result<Client, Error> {
        let ClientSettings {
            credentials,
            api_base,
            site,
            cloud_id,
            timeout,
            retry,
            user_agent,
            max_concurrency,
            pacer,
            rate_budget,
            trace,
        } = settings;
        let max_concurrency = max_concurrency.clamp(1, Semaphore::MAX_PERMITS);
        let mut authorization = HeaderValue::from_str(&credentials.header_value())
            .map_err(|_| Error::InvalidInput(ValidationError::InvalidApiKey))?;
        authorization.set_sensitive(true);
        let http = reqwest::Client::builder()
            .timeout(timeout)
            .user_agent(user_agent)
            // A redirect would carry the credentials to wherever it points.
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .map_err(|e| Error::Unsupported {
                message: format!("the HTTP client could not be set up: {e}"),
            })?;
        let cell = OnceCell::new();
        if let Some(id) = cloud_id {
            // A fresh cell takes its first value.
            let _ = cell.set(id);
        }
        Ok(Client {
            http,
            credentials,
            authorization,
            api_base,
            site,
            cloud_id: cell,
            timeout,
            retry,
            max_concurrency,
            pacer: Mutex::new(pacer),
            rate_budget,
            permits: Semaphore::new(max_concurrency),
            jitter: Jitter::new(jitter_seed()),
            trace,
            vendor_now: Mutex::new(None),
        })
    }

    pub fn max_concurrency(&self) -> usize {
        self.max_concurrency
    }

    pub fn api_base(&self) -> &Url {
        &self.api_base
    }

    /// The vendor's clock as its last answer's `Date` header gave it, if any.
    pub fn vendor_now(&self) -> Option<DateTime<Utc>> {
        *lock(&self.vendor_now)
    }

    /// `error` without the credentials, whatever an answer echoed into it.
    pub fn scrub(&self, error: Error) -> Error {
        self.credentials.redact_error(error)
    }

    /// The cloudId: given, or read once from the site (`GET /_edge/tenant_info`, reference §1).
    pub async fn cloud_id(&self) -> Result<&str, Error> {
        self.cloud_id
            .get_or_try_init(|| async {
                let Some(site) = &self.site else {
                    return Err(Error::InvalidInput(ValidationError::InvalidBaseUrl {
                        value: "a JSM connection needs a site or a cloudId".into(),
                    }));
                };
                let mut url = site.clone();
                if let Ok(mut segments) = url.path_segments_mut() {
                    segments.pop_if_empty().extend(["_edge", "tenant_info"]);
                }
                let request = Request {
                    method: Method::GET,
                    target: Target::Url(url.clone()),
                    query: Vec::new(),
                    body: None,
                    context: CallContext::default(),
                };
                let answer = self.send_to(&request, &url).await?;
                let id = Node::root(&answer.body).field("cloudId")?.str()?.to_owned();
                if id.is_empty() || id.contains('/') {
                    return Err(crate::json::invalid("cloudId", "not a cloudId"));
                }
                Ok(id)
            })
            .await
            .map(String::as_str)
    }

    /// The root every Operations API path hangs from: `<api base>/jsm/ops/api/<cloudId>`.
    pub async fn ops_root(&self) -> Result<Url, Error> {
        let cloud_id = self.cloud_id().await?.to_owned();
        let mut url = self.api_base.clone();
        if let Ok(mut segments) = url.path_segments_mut() {
            segments
                .pop_if_empty()
                .extend(["jsm", "ops", "api", cloud_id.as_str()]);
        }
        Ok(url)
    }

    async fn url(&self, request: &Request<'_>) -> Result<Url, Error> {
        let (mut url, prefix): (Url, Vec<String>) = match &request.target {
            Target::Url(url) => (url.clone(), Vec::new()),
            Target::Path(Host::Ops, path) => {
                let mut prefix = vec!["v1".to_owned()];
                prefix.extend(path.iter().cloned());
                (self.ops_root().await?, prefix)
            }
            Target::Path(Host::Site, path) => {
                let mut prefix: Vec<String> = ["rest", "api", "3"].map(str::to_owned).to_vec();
                prefix.extend(path.iter().cloned());
                match &self.site {
                    Some(site) => (site.clone(), prefix),
                    None => {
                        let cloud_id = self.cloud_id().await?.to_owned();
                        let mut url = self.api_base.clone();
                        if let Ok(mut segments) = url.path_segments_mut() {
                            segments
                                .pop_if_empty()
                                .extend(["ex", "jira", cloud_id.as_str()]);
                        }
                        (url, prefix)
                    }
                }
            }
        };
        if !prefix.is_empty() {
            if let Ok(mut segments) = url.path_segments_mut() {
                // Each segment is percent-encoded: ids and aliases may hold any character.
                segments.pop_if_empty().extend(&prefix);
            }
        }
        if !request.query.is_empty() {
            url.query_pairs_mut().extend_pairs(&request.query);
        }
        Ok(url)
    }

    /// Sends a request, retrying as the policy says. A create (POST) is retried only after a 429
    /// (refused, so not created); one whose answer was lost is never re-sent.
    pub async fn send(&self, request: &Request<'_>) -> Result<Answer, Error> {
        let url = self.url(request).await.map_err(|e| self.scrub(e))?;
        self.send_to(request, &url).await
    }

    /// [`Client::send`] to a URL already built.
    async fn send_to(&self, request: &Request<'_>, url: &Url) -> Result<Answer, Error> {
        let idempotent = request.method != Method::POST;
        run_with_retries(
            &self.retry,
            idempotent,
            || self.jitter.next(),
            tokio::time::sleep,
            |_| self.attempt(request, url),
        )
        .await
        .map_err(|e| self.scrub(e))
    }

    /// One attempt, its answer unmapped (the probe reads statuses and bodies as they are). A
    /// transport failure is still an error.
    pub async fn exchange(&self, request: &Request<'_>) -> Result<RawAnswer, Error> {
        let url = self.url(request).await.map_err(|e| self.scrub(e))?;
        let (status, _headers, body) = self
            .round_trip(request, &url)
            .await
            .map_err(|e| self.scrub(e))?;
        Ok(RawAnswer { status, body })
    }

    async fn attempt(&self, request: &Request<'_>, url: &Url) -> Result<Answer, Error> {
        let (status, headers, body) = self.round_trip(request, url).await?;
        if (200..300).contains(&status) {
            let body = if body.iter().all(u8::is_ascii_whitespace) {
                Value::Null
            } else {
                parse_body(&body)?
            };
            return Ok(Answer { body });
        }
        let now = self.vendor_now().unwrap_or(DateTime::<Utc>::UNIX_EPOCH);
        let error = parse_error(status, &headers, &body, &request.context, now);
        if let Error::RateLimited { retry_after, .. } = &error {
            let wait = self.retry.rate_limit_pause(*retry_after);
            lock(&self.pacer).rate_limited(Instant::now(), wait);
            if let Some(budget) = &self.rate_budget {
                budget.pause(wait).await;
            }
        }
        Err(error)
    }

    /// Sends once: a permit, the pacer's slot, the request; the answer's status, headers and
    /// body; the exchange recorded in the trace.
    async fn round_trip(
        &self,
        request: &Request<'_>,
        url: &Url,
    ) -> Result<(u16, HeaderMap, Vec<u8>), Error> {
        let _permit = self.permits.acquire().await.map_err(|_| Error::Transient {
            message: "the connection is shutting down".into(),
        })?;
        self.pace().await;
        let mut builder = self
            .http
            .request(request.method.clone(), url.clone())
            .header(AUTHORIZATION, self.authorization.clone())
            .header(ACCEPT, "application/json");
        if let Some(body) = &request.body {
            builder = builder.json(body);
        }
        let started = Instant::now();
        let result = async {
            let response = builder.send().await?;
            let status = response.status().as_u16();
            let headers = response.headers().clone();
            let body = response.bytes().await?;
            Ok::<_, reqwest::Error>((status, headers, body.to_vec()))
        }
        .await;
        let elapsed = started.elapsed();
        self.record(request, url, &result, elapsed);
        match result {
            Ok((status, headers, body)) => {
                self.note_vendor_time(&headers);
                if status != 429 {
                    lock(&self.pacer).answered(Instant::now(), elapsed);
                }
                Ok((status, headers, body))
            }
            Err(e) => Err(transport_error(&e, self.timeout)),
        }
    }

    /// Hands the attempt to the trace, with the credentials scrubbed from it.
    fn record(
        &self,
        request: &Request<'_>,
        url: &Url,
        result: &Result<(u16, HeaderMap, Vec<u8>), reqwest::Error>,
        elapsed: Duration,
    ) {
        let Some(trace) = &self.trace else { return };
        let clean = |text: &str| self.credentials.redact_in(text);
        let mut request_headers = vec![
            ("Authorization".to_owned(), self.credentials.header_value()),
            ("Accept".to_owned(), "application/json".to_owned()),
        ];
        if request.body.is_some() {
            request_headers.push(("Content-Type".to_owned(), "application/json".to_owned()));
        }
        scrub_credential_headers(&mut request_headers);
        let mut exchange = HttpExchange {
            method: request.method.as_str().to_owned(),
            url: clean(url.as_str()),
            request_headers,
            request_body: request.body.as_ref().map(|b| clean(&b.to_string())),
            elapsed_ms: u64::try_from(elapsed.as_millis()).unwrap_or(u64::MAX),
            ..HttpExchange::default()
        };
        match result {
            Ok((status, headers, body)) => {
                exchange.status = Some(*status);
                let mut response_headers: Vec<(String, String)> = headers
                    .iter()
                    .map(|(k, v)| {
                        (
                            k.as_str().to_owned(),
                            clean(&String::from_utf8_lossy(v.as_bytes())),
                        )
                    })
                    .collect();
                scrub_credential_headers(&mut response_headers);
                exchange.response_headers = response_headers;
                if !body.is_empty() {
                    exchange.response_body = Some(clean(&String::from_utf8_lossy(body)));
                }
            }
            Err(e) => exchange.error = Some(clean(&e.to_string())),
        }
        trace.record(exchange);
    }

    /// Waits for this request's slot in the connection's pace, and in the shared budget's.
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

    /// Holds back every request of the connection (a 429 seen elsewhere, tests).
    #[cfg(test)]
    pub(crate) fn pause(&self, retry_after: Option<Duration>) {
        let wait = self.retry.rate_limit_pause(retry_after);
        lock(&self.pacer).rate_limited(Instant::now(), wait);
    }

    /// The adaptive pacer's current rate (requests a second), if it adapts.
    pub(crate) fn rate_per_second(&self) -> Option<f64> {
        lock(&self.pacer).rate_per_second()
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
        *now = Some(now.map_or(date, |n| n.max(date)));
    }
}

/// A per-process random seed for the jitter, without reading a clock: std's randomly keyed hasher.
fn jitter_seed() -> u64 {
    use std::hash::{BuildHasher, Hasher};
    std::collections::hash_map::RandomState::new()
        .build_hasher()
        .finish()
}
