//! # oncall-opsgenie
//!
//! The Opsgenie adapter of oncall-sync. This release holds the connection settings (region or base URL,
//! API key kept out of `Debug`); the HTTP client implementing [`oncall_core::Provider`] is not
//! written yet.
#![deny(missing_docs)]
#![forbid(unsafe_code)]

use oncall_core::{ApiKey, Error};

/// Where the Opsgenie account lives.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum Region {
    /// The US service, `https://api.opsgenie.com`.
    Us,
    /// The EU service, `https://api.eu.opsgenie.com`.
    Eu,
    /// Any other base URL (a proxy, a simulator).
    Custom(String),
}

impl Region {
    /// The base URL of the API, without a trailing slash.
    pub fn base_url(&self) -> &str {
        match self {
            Region::Us => "https://api.opsgenie.com",
            Region::Eu => "https://api.eu.opsgenie.com",
            Region::Custom(url) => url.trim_end_matches('/'),
        }
    }
}

/// Validated settings of a Opsgenie connection.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OpsgenieConfig {
    /// The API key (redacted in `Debug`).
    pub api_key: ApiKey,
    /// The region or base URL.
    pub region: Region,
}

/// Builds a [`OpsgenieConfig`].
///
/// ```
/// use oncall_opsgenie::{OpsgenieBuilder, Region};
/// let config = OpsgenieBuilder::new().with_api_key("key").with_region(Region::Eu).build().unwrap();
/// assert_eq!(config.region.base_url(), "https://api.eu.opsgenie.com");
/// assert!(!format!("{config:?}").contains("key\""));
/// ```
#[derive(Debug, Default, Clone)]
pub struct OpsgenieBuilder {
    api_key: Option<String>,
    region: Option<Region>,
}

impl OpsgenieBuilder {
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
    pub fn build(self) -> Result<OpsgenieConfig, Error> {
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
        Ok(OpsgenieConfig { api_key, region })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn key_never_appears_in_debug() {
        let config = OpsgenieBuilder::new()
            .with_api_key("top-secret-123")
            .build()
            .unwrap();
        assert!(!format!("{config:?}").contains("top-secret-123"));
        assert_eq!(config.api_key.expose(), "top-secret-123");
    }

    #[test]
    fn regions_and_custom_urls() {
        assert_eq!(Region::Us.base_url(), "https://api.opsgenie.com");
        let c = OpsgenieBuilder::new()
            .with_api_key("k")
            .with_base_url("http://127.0.0.1:9/")
            .build()
            .unwrap();
        assert_eq!(c.region.base_url(), "http://127.0.0.1:9");
        assert!(OpsgenieBuilder::new()
            .with_api_key("k")
            .with_base_url("ftp://x")
            .build()
            .is_err());
        assert!(OpsgenieBuilder::new().build().is_err(), "a key is required");
    }
}
