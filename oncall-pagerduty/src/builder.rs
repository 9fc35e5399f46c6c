//! [`PagerDutyBuilder`]: connection settings, timeouts, retries and pacing of a provider.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use oncall_core::connection::{ConnectionBuilder, Region};
use oncall_core::pacing::{AdaptiveRate, Pacer};
use oncall_core::retry::Jitter;
use oncall_core::trace::HttpTrace;
use oncall_core::{BudgetLimit, Error, RateBudget, RetryPolicy, SharedBudget};

use crate::client::{default_headers, Client};
use crate::directory::DirectoryCache;
use crate::gate::Gate;
use crate::provider::{Inner, PagerDutyProvider};
use crate::URLS;

/// The fastest a connection goes by default, in requests a minute: under PagerDuty's 960 per key,
/// with room for the burst. The adaptive pace starts there and slows down on push-back.
pub const DEFAULT_RATE_PER_MINUTE: u32 = 900;

/// Requests in flight per connection unless told otherwise: PagerDuty asks for requests made
/// "serially for a given authentication token", and the sync sends them one after another; a
/// host that runs several syncs on one provider at once shares these.
pub const DEFAULT_MAX_CONCURRENCY: usize = 5;

/// How a connection paces its requests.
#[derive(Debug, Clone, Copy, PartialEq)]
enum Rate {
    /// Found as the connection goes, within the settings' bounds (the default).
    Adaptive(AdaptiveRate),
    /// At most this many requests a minute.
    Fixed(u32),
}

/// Builds a [`PagerDutyProvider`].
///
/// ```
/// use std::time::Duration;
/// use oncall_pagerduty::{PagerDutyProvider, Region};
/// let provider = PagerDutyProvider::builder()
///     .with_api_key("u+abcdefghijklmnopqr")
///     .with_region(Region::Eu)
///     .with_timeout(Duration::from_secs(20))
///     .build()?;
/// assert_eq!(provider.base_url(), "https://api.eu.pagerduty.com");
/// assert!(!format!("{provider:?}").contains("abcdefghijklmnopqr"));
/// # Ok::<(), oncall_core::Error>(())
/// ```
#[derive(Debug, Clone)]
pub struct PagerDutyBuilder {
    connection: ConnectionBuilder,
    timeout: Duration,
    retry: RetryPolicy,
    user_agent: String,
    rate: Rate,
    max_concurrency: usize,
    directory_ttl: Duration,
    rate_budget: Option<(Arc<dyn RateBudget>, String)>,
    trace: Option<Arc<dyn HttpTrace>>,
    probe_poll: Duration,
    probe_patience: Duration,
}

impl Default for PagerDutyBuilder {
    fn default() -> Self {
        PagerDutyBuilder {
            connection: ConnectionBuilder::new(URLS),
            timeout: Duration::from_secs(30),
            retry: RetryPolicy::default(),
            user_agent: concat!("oncall-sync/", env!("CARGO_PKG_VERSION")).to_owned(),
            rate: Rate::Adaptive(AdaptiveRate::at_most_per_minute(DEFAULT_RATE_PER_MINUTE)),
            max_concurrency: DEFAULT_MAX_CONCURRENCY,
            directory_ttl: Duration::from_secs(60),
            rate_budget: None,
            trace: None,
            probe_poll: Duration::from_secs(1),
            probe_patience: Duration::from_secs(60),
        }
    }
}

impl PagerDutyBuilder {
    /// A builder for the US region, no key yet.
    pub fn new() -> Self {
        Self::default()
    }

    /// The API key (an account key, read-only for import, full access for export).
    pub fn with_api_key(mut self, key: impl Into<String>) -> Self {
        self.connection = self.connection.with_api_key(key);
        self
    }

    /// The region: [`Region::Us`] (default), [`Region::Eu`], or any base URL.
    pub fn with_region(mut self, region: Region) -> Self {
        self.connection = self.connection.with_region(region);
        self
    }

    /// Any base URL (a proxy, a simulator on loopback).
    pub fn with_base_url(mut self, url: impl Into<String>) -> Self {
        self.connection = self.connection.with_base_url(url);
        self
    }

    /// How long one request may take, answer included (default 30 s).
    pub fn with_timeout(mut self, timeout: Duration) -> Self {
        self.timeout = timeout;
        self
    }

    /// Retries of rate limits, and of reads and deletes after 5xx answers and timeouts.
    pub fn with_retry(mut self, retry: RetryPolicy) -> Self {
        self.retry = retry;
        self
    }

    /// The `User-Agent` header.
    pub fn with_user_agent(mut self, user_agent: impl Into<String>) -> Self {
        self.user_agent = user_agent.into();
        self
    }

    /// A fixed rate instead of the adaptive one: at most `requests` a minute on this key, shared
    /// by every clone of the provider, for users who know what their key may use (PagerDuty allows
    /// 960 a minute per key, fewer where other tools share it). The concurrency stays fixed too.
    pub fn with_rate_per_minute(mut self, requests: u32) -> Self {
        self.rate = Rate::Fixed(requests.max(1));
        self
    }

    /// How the request rate adapts (default
    /// [`AdaptiveRate::at_most_per_minute`]`(`[`DEFAULT_RATE_PER_MINUTE`]`)`: it starts at 15
    /// requests a second, halves its rate and its window of requests in flight on a 429 and waits
    /// `ratelimit-reset`, cuts both by a fifth on answers markedly slower than the fastest seen,
    /// and recovers additively). Shared by every clone of the provider.
    pub fn with_adaptive_rate(mut self, rate: AdaptiveRate) -> Self {
        self.rate = Rate::Adaptive(rate);
        self
    }

    /// Most requests in flight at once (at least 1, default [`DEFAULT_MAX_CONCURRENCY`]), shared
    /// by every clone; under the adaptive rate, the largest window.
    pub fn with_max_concurrency(mut self, max_concurrency: usize) -> Self {
        self.max_concurrency = max_concurrency.clamp(1, tokio::sync::Semaphore::MAX_PERMITS);
        self
    }

    /// How long the user directory is reused before it is read again (default 60 s): long enough
    /// that one sync run reads it once for all its destinations.
    pub fn with_directory_ttl(mut self, ttl: Duration) -> Self {
        self.directory_ttl = ttl;
        self
    }

    /// Shares the request rate with every process whose provider has the same `budget` and
    /// `key` (a name for the PagerDuty account, never the API key): together they stay under
    /// [`with_rate_per_minute`](Self::with_rate_per_minute) (or [`DEFAULT_RATE_PER_MINUTE`]
    /// under the adaptive rate), not each of them.
    pub fn with_rate_budget(mut self, budget: Arc<dyn RateBudget>, key: impl Into<String>) -> Self {
        self.rate_budget = Some((budget, key.into()));
        self
    }

    /// Records every HTTP attempt (retries included) in `trace`, with the key scrubbed from the
    /// headers (`Authorization: ***`), the URL and both bodies, wherever and however it is echoed
    /// ([`ApiKey::redact_in`](oncall_core::ApiKey::redact_in)). E-mail addresses are the sink's to
    /// redact ([`Redactor`](oncall_core::trace::Redactor)): `--trace-http` does.
    ///
    /// ```
    /// use std::sync::{Arc, Mutex};
    /// use oncall_core::trace::{HttpExchange, HttpTrace};
    ///
    /// #[derive(Debug, Default)]
    /// struct Kept(Mutex<Vec<HttpExchange>>);
    /// impl HttpTrace for Kept {
    ///     fn record(&self, exchange: HttpExchange) {
    ///         self.0.lock().unwrap().push(exchange);
    ///     }
    /// }
    ///
    /// let trace = Arc::new(Kept::default());
    /// let provider = oncall_pagerduty::PagerDutyProvider::builder()
    ///     .with_api_key("u+abcdefghijklmnopqr")
    ///     .with_http_trace(trace.clone())
    ///     .build()?;
    /// # drop(provider);
    /// # Ok::<(), oncall_core::Error>(())
    /// ```
    pub fn with_http_trace(mut self, trace: Arc<dyn HttpTrace>) -> Self {
        self.trace = Some(trace);
        self
    }

    /// How `oncall probe` waits for a write to show in a read (read-after-write lag): it reads
    /// again every `poll`, for at most `patience` (defaults 1 s and 60 s).
    pub fn with_probe_polls(mut self, poll: Duration, patience: Duration) -> Self {
        self.probe_poll = poll;
        self.probe_patience = patience;
        self
    }

    /// Validates the settings and builds the provider.
    pub fn build(self) -> Result<PagerDutyProvider, Error> {
        let settings = self.connection.build()?;
        let http = reqwest::Client::builder()
            .timeout(self.timeout)
            .user_agent(self.user_agent)
            .default_headers(default_headers())
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .map_err(|e| Error::Unsupported {
                message: format!("the HTTP client could not be set up: {e}"),
            })?;
        // A per-provider seed without reading a clock: std's randomly keyed hasher.
        let seed = std::collections::hash_map::RandomState::new();
        let seed = std::hash::BuildHasher::hash_one(&seed, 0u8);
        let burst = u32::try_from(self.max_concurrency).unwrap_or(u32::MAX);
        let (pacer, per_minute) = match self.rate {
            Rate::Adaptive(rate) => (Pacer::adaptive(rate, burst), DEFAULT_RATE_PER_MINUTE),
            Rate::Fixed(per_minute) => (Pacer::per_minute(per_minute, burst), per_minute),
        };
        let client = Client {
            http,
            base_url: settings.base_url,
            key: settings.api_key,
            retry: self.retry,
            pacer: Mutex::new(pacer),
            gate: Gate::new(self.max_concurrency),
            jitter: Jitter::new(seed),
            rate_budget: self.rate_budget.map(|(budget, key)| {
                let limit = BudgetLimit { per_minute, burst };
                SharedBudget::new(budget, key, limit)
            }),
            trace: self.trace,
        };
        Ok(PagerDutyProvider {
            inner: Arc::new(Inner {
                client,
                directory: DirectoryCache::new(self.directory_ttl),
                probe_poll: self.probe_poll,
                probe_patience: self.probe_patience,
            }),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn official_urls_and_validation() {
        let url = |r| {
            PagerDutyBuilder::new()
                .with_api_key("k")
                .with_region(r)
                .build()
                .unwrap()
                .base_url()
                .to_owned()
        };
        assert_eq!(url(Region::Us), "https://api.pagerduty.com");
        assert_eq!(url(Region::Eu), "https://api.eu.pagerduty.com");
        assert!(matches!(
            PagerDutyBuilder::new().build(),
            Err(Error::InvalidInput(_))
        ));
        assert!(matches!(
            PagerDutyBuilder::new()
                .with_api_key("k")
                .with_base_url("ftp://x")
                .build(),
            Err(Error::InvalidInput(_))
        ));
    }

    #[test]
    fn the_key_is_never_shown() {
        let builder = PagerDutyBuilder::new().with_api_key("y_NbAkKc66ryYTWUXYEu");
        assert!(!format!("{builder:?}").contains("y_NbAkKc66ryYTWUXYEu"));
        let provider = builder.build().unwrap();
        assert!(!format!("{provider:?}").contains("y_NbAkKc66ryYTWUXYEu"));
        assert!(!format!("{:?}", provider.clone()).contains("y_NbAkKc66ryYTWUXYEu"));
    }
}
