//! [`OpsgenieBuilder`]: everything one connection needs, validated once.

use std::sync::Arc;
use std::time::Duration;

use oncall_core::connection::{ConnectionBuilder, Region};
use oncall_core::pacing::AdaptiveRate;
use oncall_core::trace::HttpTrace;
use oncall_core::{Error, RateBudget, RetryPolicy};

use crate::client::{Client, ClientSettings};
use crate::{OpsgenieProvider, URLS};

/// Requests in flight per connection unless told otherwise (and so the creates of one batch).
pub const DEFAULT_MAX_CONCURRENCY: usize = 16;

/// The most requests in flight a connection takes: the concurrency limit is a semaphore, which
/// holds at most this many permits.
pub const MAX_CONCURRENCY: usize = tokio::sync::Semaphore::MAX_PERMITS;

/// The limit a shared rate budget ([`OpsgenieBuilder::with_rate_budget`]) keeps the processes
/// that share it under when no fixed rate is set: 600 requests a minute. (A connection alone
/// paces adaptively by default: Opsgenie's limits per plan are UNCONFIRMED, reference §3.2.)
pub const DEFAULT_RATE_PER_MINUTE: u32 = 600;

/// How a connection paces its requests.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) enum Rate {
    /// Found as the connection goes (the default).
    Adaptive(AdaptiveRate),
    /// At most this many requests a minute, as the user's plan says.
    Fixed(u32),
    /// No rate of our own.
    Unlimited,
}

/// How long one request may take unless told otherwise.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(30);

/// Builds an [`OpsgenieProvider`]. The API key is never shown, in `Debug` or anywhere else.
///
/// ```
/// use std::time::Duration;
/// use oncall_opsgenie::{OpsgenieProvider, Region};
/// let provider = OpsgenieProvider::builder()
///     .with_api_key("my-key")
///     .with_region(Region::Eu)
///     .with_timeout(Duration::from_secs(10))
///     .with_max_concurrency(4)
///     .build()
///     .unwrap();
/// assert_eq!(provider.base_url(), "https://api.eu.opsgenie.com");
/// assert!(!format!("{provider:?}").contains("my-key"));
/// ```
#[derive(Debug, Clone)]
pub struct OpsgenieBuilder {
    connection: ConnectionBuilder,
    timeout: Duration,
    retry: RetryPolicy,
    user_agent: String,
    max_concurrency: usize,
    rate: Rate,
    rate_budget: Option<(Arc<dyn RateBudget>, String)>,
    trace: Option<Arc<dyn HttpTrace>>,
}

impl Default for OpsgenieBuilder {
    fn default() -> Self {
        OpsgenieBuilder {
            connection: ConnectionBuilder::new(URLS),
            timeout: DEFAULT_TIMEOUT,
            retry: RetryPolicy::default(),
            user_agent: concat!(
                "oncall-sync/",
                env!("CARGO_PKG_VERSION"),
                " (oncall-opsgenie)"
            )
            .into(),
            max_concurrency: DEFAULT_MAX_CONCURRENCY,
            // Opsgenie's limits are undocumented and depend on the plan: the rate is found as
            // the connection goes.
            rate: Rate::Adaptive(AdaptiveRate::BRISK),
            rate_budget: None,
            trace: None,
        }
    }
}

impl OpsgenieBuilder {
    /// A builder for the US region with the defaults above and no key.
    pub fn new() -> Self {
        Self::default()
    }

    /// The API key (an API integration key or an API Key Management key; export needs write
    /// rights, import needs read and configuration access).
    pub fn with_api_key(mut self, key: impl Into<String>) -> Self {
        self.connection = self.connection.with_api_key(key);
        self
    }

    /// The region: US (default) or EU.
    pub fn with_region(mut self, region: Region) -> Self {
        self.connection = self.connection.with_region(region);
        self
    }

    /// Any base URL (a proxy, a simulator on loopback).
    pub fn with_base_url(mut self, url: impl Into<String>) -> Self {
        self.connection = self.connection.with_base_url(url);
        self
    }

    /// How long one request may take, from sending to the last byte of the answer.
    pub fn with_timeout(mut self, timeout: Duration) -> Self {
        self.timeout = timeout;
        self
    }

    /// When to retry (rate limits, and for reads, updates and deletes, transient failures).
    pub fn with_retry(mut self, retry: RetryPolicy) -> Self {
        self.retry = retry;
        self
    }

    /// The `User-Agent` header (control characters are dropped).
    pub fn with_user_agent(mut self, user_agent: impl Into<String>) -> Self {
        self.user_agent = user_agent.into();
        self
    }

    /// Most requests in flight at once on this connection (at least 1, at most
    /// [`MAX_CONCURRENCY`]), shared by every clone of the provider. It is also the largest create
    /// batch the provider declares, so a batch's POSTs go out together. Under the adaptive rate
    /// (the default) it is the largest window: the connection starts there, lets fewer requests
    /// be in flight after a 429 or answers the vendor delays, and grows back while answers come
    /// back clean.
    pub fn with_max_concurrency(mut self, max_concurrency: usize) -> Self {
        self.max_concurrency = max_concurrency.clamp(1, MAX_CONCURRENCY);
        self
    }

    /// How the request rate adapts (default [`AdaptiveRate::BRISK`]: 20 requests a second to
    /// start, faster with each clean answer, halved on a 429, cut by a fifth on an answer four
    /// times slower than the fastest). Opsgenie's limits are undocumented and depend on the plan,
    /// so by default the connection finds them; the concurrency window adapts with the rate.
    pub fn with_adaptive_rate(mut self, rate: AdaptiveRate) -> Self {
        self.rate = Rate::Adaptive(rate);
        self
    }

    /// A fixed rate instead of the adaptive one, for users who know their plan's limit: at most
    /// `requests` a minute on average (at least 1), shared by every clone, and a fixed
    /// concurrency ([`with_max_concurrency`](Self::with_max_concurrency)). A 429 still pauses
    /// every request of the connection for the vendor's period.
    pub fn with_rate_per_minute(mut self, requests: u32) -> Self {
        self.rate = Rate::Fixed(requests.max(1));
        self
    }

    /// No request rate of our own: only the concurrency limit and the vendor's 429s pace requests.
    pub fn without_rate_limit(mut self) -> Self {
        self.rate = Rate::Unlimited;
        self
    }

    /// Shares the request rate with every process whose provider has the same `budget` and
    /// `key` (a name for the Opsgenie account, never the API key): together they stay under
    /// [`with_rate_per_minute`](Self::with_rate_per_minute) ([`DEFAULT_RATE_PER_MINUTE`] when no
    /// fixed rate is set), not each of them; each process still adapts its own pace below that.
    pub fn with_rate_budget(mut self, budget: Arc<dyn RateBudget>, key: impl Into<String>) -> Self {
        self.rate_budget = Some((budget, key.into()));
        self
    }

    /// Records every HTTP attempt (retries included) in `trace`, for a bug report: method, URL,
    /// headers, bodies, status and timing, with the `Authorization` header replaced by `***` and
    /// the key scrubbed wherever an answer or a URL echoes it. E-mail addresses are left for the
    /// sink to redact ([`oncall_core::trace::Redactor`]).
    ///
    /// ```
    /// use std::sync::{Arc, Mutex};
    /// use oncall_core::trace::{HttpExchange, HttpTrace};
    /// use oncall_opsgenie::OpsgenieProvider;
    ///
    /// #[derive(Debug, Default)]
    /// struct Collect(Mutex<Vec<HttpExchange>>);
    /// impl HttpTrace for Collect {
    ///     fn record(&self, exchange: HttpExchange) {
    ///         self.0.lock().unwrap().push(exchange);
    ///     }
    /// }
    /// let trace = Arc::new(Collect::default());
    /// let provider = OpsgenieProvider::builder()
    ///     .with_api_key("my-key")
    ///     .with_http_trace(trace.clone())
    ///     .build()
    ///     .unwrap();
    /// # drop(provider);
    /// ```
    pub fn with_http_trace(mut self, trace: Arc<dyn HttpTrace>) -> Self {
        self.trace = Some(trace);
        self
    }

    /// Validates the settings (a key is required; a custom URL must be `http://` or `https://`)
    /// and builds the provider.
    pub fn build(self) -> Result<OpsgenieProvider, Error> {
        let connection = self.connection.build()?;
        let user_agent: String = self
            .user_agent
            .chars()
            .filter(|c| !c.is_control())
            .collect();
        let client = Client::new(ClientSettings {
            connection,
            timeout: self.timeout,
            retry: self.retry,
            user_agent,
            max_concurrency: self.max_concurrency,
            rate: self.rate,
            rate_budget: self.rate_budget,
            trace: self.trace,
        })?;
        Ok(OpsgenieProvider::from_client(client))
    }
}
