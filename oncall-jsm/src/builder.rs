//! [`JsmBuilder`]: everything one connection needs, validated once.

use std::sync::Arc;
use std::time::Duration;

use oncall_core::pacing::{AdaptiveRate, Pacer};
use oncall_core::trace::HttpTrace;
use oncall_core::{
    ApiKey, BudgetLimit, Email, Error, RateBudget, RetryPolicy, SharedBudget, ValidationError,
};
use reqwest::Url;

use crate::client::{Client, ClientSettings};
use crate::credentials::Credentials;
use crate::JsmProvider;

/// Where the Operations API lives unless told otherwise (reference §1).
pub const DEFAULT_API_BASE_URL: &str = "https://api.atlassian.com";

/// Requests in flight per connection unless told otherwise (and so the creates of one batch).
pub const DEFAULT_MAX_CONCURRENCY: usize = 8;

/// How long one request may take unless told otherwise.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(30);

/// How the connection paces its requests.
#[derive(Debug, Clone, Copy)]
enum Rate {
    Adaptive(AdaptiveRate),
    Unlimited,
}

/// Builds a [`JsmProvider`]. The API token is never shown, in `Debug` or anywhere else.
///
/// A connection needs the account e-mail and API token (HTTP Basic), and where the site is: its
/// host (`acme.atlassian.net`; the cloudId is then read once from the site), or its cloudId (with
/// [`JsmBuilder::with_api_base_url`] where the API is not Atlassian's). Tests point both the site
/// and the API base at a simulator on loopback.
///
/// ```
/// use oncall_jsm::JsmProvider;
/// let provider = JsmProvider::builder()
///     .with_site("acme.atlassian.net")
///     .with_email("ops-bot@acme.example")
///     .with_api_token("ATATT3xFfGF0-secret")
///     .build()
///     .unwrap();
/// assert!(!format!("{provider:?}").contains("ATATT3xFfGF0-secret"));
/// ```
#[derive(Clone)]
pub struct JsmBuilder {
    site: Option<String>,
    cloud_id: Option<String>,
    api_base_url: String,
    email: Option<String>,
    /// `None` when missing or invalid: both are the same error at `build`.
    token: Option<ApiKey>,
    known: Vec<(String, String)>,
    timeout: Duration,
    retry: RetryPolicy,
    user_agent: String,
    max_concurrency: usize,
    rate: Rate,
    rate_budget: Option<(Arc<dyn RateBudget>, String)>,
    trace: Option<Arc<dyn HttpTrace>>,
}

impl std::fmt::Debug for JsmBuilder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("JsmBuilder")
            .field("site", &self.site)
            .field("cloud_id", &self.cloud_id)
            .field("api_base_url", &self.api_base_url)
            .field("email", &self.email.as_ref().map(|_| "***"))
            .field("api_token", &self.token.as_ref().map(|_| "***"))
            .field("known_account_ids", &self.known.len())
            .field("timeout", &self.timeout)
            .field("retry", &self.retry)
            .field("max_concurrency", &self.max_concurrency)
            .field("rate", &self.rate)
            .field(
                "rate_budget",
                &self.rate_budget.as_ref().map(|(_, key)| key),
            )
            .finish_non_exhaustive()
    }
}

impl Default for JsmBuilder {
    fn default() -> Self {
        JsmBuilder {
            site: None,
            cloud_id: None,
            api_base_url: DEFAULT_API_BASE_URL.to_owned(),
            email: None,
            token: None,
            known: Vec::new(),
            timeout: DEFAULT_TIMEOUT,
            retry: RetryPolicy::default(),
            user_agent: concat!("oncall-sync/", env!("CARGO_PKG_VERSION"), " (oncall-jsm)").into(),
            max_concurrency: DEFAULT_MAX_CONCURRENCY,
            // JSM Operations' limits are undocumented (reference §5): the rate is found as the
            // connection goes.
            rate: Rate::Adaptive(AdaptiveRate::BRISK),
            rate_budget: None,
            trace: None,
        }
    }
}

impl JsmBuilder {
    /// A builder with the defaults above and no site, account or token.
    pub fn new() -> Self {
        Self::default()
    }

    /// The site: a host (`acme.atlassian.net`) or a URL (`https://acme.atlassian.net`, a
    /// simulator's `http://127.0.0.1:<port>`). The cloudId is read from it once, unless given, and
    /// people are looked up on it.
    pub fn with_site(mut self, site: impl Into<String>) -> Self {
        self.site = Some(site.into());
        self
    }

    /// The site's cloudId (skips reading it from the site). Without a site, people are looked up
    /// through the API base (`<base>/ex/jira/<cloudId>/rest/api/3/…`).
    pub fn with_cloud_id(mut self, cloud_id: impl Into<String>) -> Self {
        self.cloud_id = Some(cloud_id.into());
        self
    }

    /// Where the Operations API lives (default [`DEFAULT_API_BASE_URL`]); the adapter appends
    /// `/jsm/ops/api/<cloudId>/v1/…`.
    pub fn with_api_base_url(mut self, url: impl Into<String>) -> Self {
        self.api_base_url = url.into();
        self
    }

    /// The Atlassian account's e-mail (half of the Basic login; the account's rights are the
    /// connection's).
    pub fn with_email(mut self, email: impl Into<String>) -> Self {
        self.email = Some(email.into());
        self
    }

    /// The account's API token. (An invalid one is reported by [`JsmBuilder::build`]; the token
    /// itself is never kept in plain sight, even in the builder.)
    pub fn with_api_token(mut self, token: impl Into<String>) -> Self {
        self.token = ApiKey::new(token).ok();
        self
    }

    /// A person's accountId, handed over by the host: no lookup is made for them, and they are
    /// known even where the site hides their e-mail.
    pub fn with_account_id(
        mut self,
        email: impl Into<String>,
        account_id: impl Into<String>,
    ) -> Self {
        self.known.push((email.into(), account_id.into()));
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

    /// Most requests in flight at once (at least 1), shared by every clone of the provider; also
    /// the largest create batch the provider declares (its POSTs go out side by side).
    pub fn with_max_concurrency(mut self, max_concurrency: usize) -> Self {
        self.max_concurrency = max_concurrency.clamp(1, tokio::sync::Semaphore::MAX_PERMITS);
        self
    }

    /// How the request rate adapts (default [`AdaptiveRate::BRISK`]): JSM's limits are not
    /// documented, so the connection speeds up while answers come back clean and slows down on a
    /// 429 or on answers the vendor delays.
    pub fn with_adaptive_rate(mut self, rate: AdaptiveRate) -> Self {
        self.rate = Rate::Adaptive(rate);
        self
    }

    /// No request rate of our own: only the concurrency limit and the vendor's 429s pace requests.
    pub fn without_rate_limit(mut self) -> Self {
        self.rate = Rate::Unlimited;
        self
    }

    /// Shares the request rate with every process whose provider has the same `budget` and
    /// `key` (a name for the JSM site, never the token): together they stay under the adaptive
    /// rate's ceiling ([`AdaptiveRate::at_most_per_minute`] sets one), not each of them, and a
    /// 429 one of them meets holds all of them back for the wait the vendor asked for.
    pub fn with_rate_budget(mut self, budget: Arc<dyn RateBudget>, key: impl Into<String>) -> Self {
        self.rate_budget = Some((budget, key.into()));
        self
    }

    /// Records every HTTP attempt (retries included) in `trace`, with the credentials scrubbed
    /// (the `Authorization` header replaced, the token and the encoded login removed wherever an
    /// answer echoes them). E-mail addresses are left to the trace's sink to redact.
    pub fn with_trace(mut self, trace: Arc<dyn HttpTrace>) -> Self {
        self.trace = Some(trace);
        self
    }

    /// Validates the settings and builds the provider: an e-mail and a token, a site or a
    /// cloudId, `http://` or `https://` URLs.
    pub fn build(self) -> Result<JsmProvider, Error> {
        let email = self.email.as_deref().unwrap_or_default();
        let token = self.token.ok_or(ValidationError::InvalidApiKey)?;
        let credentials = Credentials::new(email, token)?;
        let api_base = parse_url(&self.api_base_url)?;
        let site = self.site.as_deref().map(site_url).transpose()?;
        let cloud_id = self.cloud_id.filter(|id| !id.trim().is_empty());
        if site.is_none() && cloud_id.is_none() {
            return Err(ValidationError::InvalidBaseUrl {
                value: "a JSM connection needs its site (acme.atlassian.net) or its cloudId".into(),
            }
            .into());
        }
        let mut known = Vec::with_capacity(self.known.len());
        for (email, account) in self.known {
            let email = Email::parse(&email)?;
            if account.trim().is_empty() {
                return Err(ValidationError::InvalidEmail {
                    value: email.to_string(),
                    reason: "an accountId handed over for this e-mail is empty",
                }
                .into());
            }
            known.push((email, account.trim().to_owned()));
        }
        let user_agent: String = self
            .user_agent
            .chars()
            .filter(|c| !c.is_control())
            .collect();
        let burst = u32::try_from(self.max_concurrency).unwrap_or(u32::MAX);
        let pacer = match self.rate {
            Rate::Adaptive(rate) => Pacer::adaptive(rate, burst),
            Rate::Unlimited => Pacer::unlimited(),
        };
        // The shared budget goes at most at the rate's ceiling (requests a minute).
        let per_minute = match self.rate {
            Rate::Adaptive(rate) if rate.ceiling.is_finite() => {
                (rate.ceiling * 60.0).clamp(1.0, f64::from(u32::MAX)) as u32
            }
            _ => u32::MAX,
        };
        let rate_budget = self
            .rate_budget
            .map(|(budget, key)| SharedBudget::new(budget, key, BudgetLimit { per_minute, burst }));
        let client = Client::new(ClientSettings {
            credentials,
            api_base,
            site,
            cloud_id,
            timeout: self.timeout,
            retry: self.retry,
            user_agent,
            max_concurrency: self.max_concurrency,
            pacer,
            rate_budget,
            trace: self.trace,
        })?;
        Ok(JsmProvider::from_parts(client, &known))
    }
}

fn parse_url(value: &str) -> Result<Url, Error> {
    let bad = || ValidationError::InvalidBaseUrl {
        value: value.to_owned(),
    };
    if !(value.starts_with("http://") || value.starts_with("https://")) {
        return Err(bad().into());
    }
    let url = Url::parse(value.trim_end_matches('/')).map_err(|_| bad())?;
    if url.cannot_be_a_base() || url.query().is_some() {
        return Err(bad().into());
    }
    Ok(url)
}

/// A site given as a host (`acme.atlassian.net`) or a URL.
fn site_url(value: &str) -> Result<Url, Error> {
    let value = value.trim();
    if value.starts_with("http://") || value.starts_with("https://") {
        parse_url(value)
    } else {
        parse_url(&format!("https://{value}"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use oncall_core::Provider;

    fn base() -> JsmBuilder {
        JsmBuilder::new()
            .with_email("ops@example.com")
            .with_api_token("tok-123")
    }

    #[test]
    fn a_site_or_a_cloud_id_is_needed() {
        assert!(matches!(base().build(), Err(Error::InvalidInput(_))));
        // One account name whichever way the connection is given.
        let p = base().with_site("acme.atlassian.net").build().unwrap();
        assert_eq!(
            p.account().as_deref(),
            Some("jsm https://api.atlassian.com/")
        );
        let p = base().with_cloud_id("c-1").build().unwrap();
        assert_eq!(
            p.account().as_deref(),
            Some("jsm https://api.atlassian.com/")
        );
        let p = base()
            .with_cloud_id("c-1")
            .with_api_base_url("https://ops.example.test/")
            .build()
            .unwrap();
        assert_eq!(
            p.account().as_deref(),
            Some("jsm https://ops.example.test/")
        );
        for bad in ["ftp://x", "https://"] {
            assert!(
                base()
                    .with_site("s")
                    .with_api_base_url(bad)
                    .build()
                    .is_err(),
                "{bad}"
            );
        }
    }

    #[test]
    fn credentials_are_required_valid_and_never_shown() {
        let secret = "ATATT-very-secret";
        let b = JsmBuilder::new()
            .with_site("acme.atlassian.net")
            .with_email("ops@example.com")
            .with_api_token(secret);
        assert!(!format!("{b:?}").contains(secret));
        assert!(!format!("{b:?}").contains("ops@example.com"));
        let p = b.build().unwrap();
        assert!(!format!("{p:?}").contains(secret));
        assert!(
            JsmBuilder::new()
                .with_site("s")
                .with_api_token(secret)
                .build()
                .is_err(),
            "no e-mail"
        );
        assert!(
            JsmBuilder::new()
                .with_site("s")
                .with_email("ops@example.com")
                .build()
                .is_err(),
            "no token"
        );
        assert!(JsmBuilder::new()
            .with_site("s")
            .with_email("ops@example.com")
            .with_api_token("has space")
            .build()
            .is_err());
        let e = base()
            .with_site("s")
            .with_account_id("not-an-email", "acc")
            .build()
            .unwrap_err();
        assert!(!e.to_string().contains("tok-123"));
    }

    #[test]
    fn capabilities_follow_the_concurrency() {
        let p = base()
            .with_site("s")
            .with_max_concurrency(3)
            .build()
            .unwrap();
        let caps = p.capabilities();
        assert_eq!(caps.max_batch, 3);
        assert!(caps.update_in_place && !caps.client_ids && !caps.batch_is_one_request);
        assert!(!caps.delete_truncates_running);
    }
}
