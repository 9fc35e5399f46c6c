//! # oncall-pagerduty
//!
//! The PagerDuty adapter of oncall-sync. This release holds the connection settings (region or base URL,
//! API key kept out of `Debug`); the HTTP client implementing [`oncall_core::Provider`] is not
//! written yet.
#![deny(missing_docs)]
#![forbid(unsafe_code)]

use oncall_core::{ApiKey, Error};

/// Where the PagerDuty account lives.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum Region {
    /// The US service, `https://api.pagerduty.com`.
    Us,
    /// The EU service, `https://api.eu.pagerduty.com`.
    Eu,
    /// Any other base URL (a proxy, a simulator).
    Custom(String),
}

impl Region {
    /// The base URL of the API, without a trailing slash.
    pub fn base_url(&self) -> &str {
        match self {
            Region::Us => "https://api.pagerduty.com",
            Region::Eu => "https://api.eu.pagerduty.com",
            Region::Custom(url) => url.trim_end_matches('/'),
        }
    }
}

/// Validated settings of a PagerDuty connection.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PagerDutyConfig {
    /// The API key (redacted in `Debug`).
    pub api_key: ApiKey,
    /// The region or base URL.
    pub region: Region,
}

/// Builds a [`PagerDutyConfig`].
///
/// ```
/// use oncall_pagerduty::{PagerDutyBuilder, Region};
/// let config = PagerDutyBuilder::new().with_api_key("key").with_region(Region::Eu).build().unwrap();
/// assert_eq!(config.region.base_url(), "https://api.eu.pagerduty.com");
/// assert!(!format!("{config:?}").contains("key\""));
/// ```
#[derive(Debug, Default, Clone)]
pub struct PagerDutyBuilder {
    api_key: Option<String>,
    region: Option<Region>,
}

impl PagerDutyBuilder {
    /// A builder for the US region with no key.
    pub fn new() -> Self {
        Self::default()
    }

    /// Sets the API key.
    pub fn with_api_key(mut self, key: impl Into<String>) -> Self {
        self.api_key = Some(key.into());
        self
    }

    /// Sets the region.
    pub fn with_region(mut self, region: Region) -> Self {
        self.region = Some(region);
        self
    }

    /// Sets a custom base URL (`http://` or `https://`).
    pub fn with_base_url(mut self, url: impl Into<String>) -> Self {
        self.region = Some(Region::Custom(url.into()));
        self
    }

    /// Validates the settings.
    pub fn build(self) -> Result<PagerDutyConfig, Error> {
        let api_key = ApiKey::new(self.api_key.unwrap_or_default())?;
        let region = self.region.unwrap_or(Region::Us);
        if let Region::Custom(url) = &region {
            if !(url.starts_with("http://") || url.starts_with("https://")) {
                return Err(Error::InvalidInput(
                    oncall_core::ValidationError::OutOfRange {
                        what: "base URL",
                        value: url.clone(),
                    },
                ));
            }
        }
        Ok(PagerDutyConfig { api_key, region })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn key_never_appears_in_debug() {
        let config = PagerDutyBuilder::new()
            .with_api_key("top-secret-123")
            .build()
            .unwrap();
        assert!(!format!("{config:?}").contains("top-secret-123"));
        assert_eq!(config.api_key.expose(), "top-secret-123");
    }

    #[test]
    fn regions_and_custom_urls() {
        assert_eq!(Region::Us.base_url(), "https://api.pagerduty.com");
        let c = PagerDutyBuilder::new()
            .with_api_key("k")
            .with_base_url("http://127.0.0.1:9/")
            .build()
            .unwrap();
        assert_eq!(c.region.base_url(), "http://127.0.0.1:9");
        assert!(PagerDutyBuilder::new()
            .with_api_key("k")
            .with_base_url("ftp://x")
            .build()
            .is_err());
        assert!(
            PagerDutyBuilder::new().build().is_err(),
            "a key is required"
        );
    }
}
