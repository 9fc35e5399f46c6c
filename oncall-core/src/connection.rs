//! Connection settings shared by the adapters: where the vendor's API lives and the key to use.

use crate::credentials::ApiKey;
use crate::error::{Error, ValidationError};

/// Where a vendor account lives.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum Region {
    /// The vendor's US service.
    Us,
    /// The vendor's EU service.
    Eu,
    /// Any other base URL (a proxy, a simulator on loopback).
    Custom(String),
}

/// A vendor's API base URLs per region.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct VendorUrls {
    /// The US service.
    pub us: &'static str,
    /// The EU service.
    pub eu: &'static str,
}

/// Validated settings of one connection.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConnectionSettings {
    /// The API key (redacted in `Debug`).
    pub api_key: ApiKey,
    /// The API's base URL, without a trailing slash.
    pub base_url: String,
}

/// Builds [`ConnectionSettings`] for a vendor; adapters hand one out with their URLs.
///
/// ```
/// use oncall_core::connection::{ConnectionBuilder, Region, VendorUrls};
/// const URLS: VendorUrls = VendorUrls { us: "https://api.example.com", eu: "https://api.eu.example.com" };
/// let settings = ConnectionBuilder::new(URLS).with_api_key("key").with_region(Region::Eu).build().unwrap();
/// assert_eq!(settings.base_url, "https://api.eu.example.com");
/// assert!(!format!("{settings:?}").contains("\"key\""));
/// ```
#[derive(Debug, Clone)]
pub struct ConnectionBuilder {
    urls: VendorUrls,
    /// `None` when missing or invalid: both are the same error at `build`.
    api_key: Option<ApiKey>,
    region: Region,
}

impl ConnectionBuilder {
    /// A builder for the US region with no key.
    pub fn new(urls: VendorUrls) -> Self {
        ConnectionBuilder {
            urls,
            api_key: None,
            region: Region::Us,
        }
    }

    /// Sets the API key. (An invalid key is reported by [`ConnectionBuilder::build`]; the key itself
    /// is never kept in plain sight, even in the builder.)
    pub fn with_api_key(mut self, key: impl Into<String>) -> Self {
        self.api_key = ApiKey::new(key).ok();
        self
    }

    /// Sets the region.
    pub fn with_region(mut self, region: Region) -> Self {
        self.region = region;
        self
    }

    /// Sets a custom base URL (`http://` or `https://`).
    pub fn with_base_url(self, url: impl Into<String>) -> Self {
        self.with_region(Region::Custom(url.into()))
    }

    /// Validates the settings.
    pub fn build(self) -> Result<ConnectionSettings, Error> {
        let api_key = self.api_key.ok_or(ValidationError::InvalidApiKey)?;
        let base_url = match self.region {
            Region::Us => self.urls.us.to_owned(),
            Region::Eu => self.urls.eu.to_owned(),
            Region::Custom(url) => {
                if !(url.starts_with("http://") || url.starts_with("https://")) {
                    return Err(ValidationError::InvalidBaseUrl { value: url }.into());
                }
                url.trim_end_matches('/').to_owned()
            }
        };
        Ok(ConnectionSettings { api_key, base_url })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const URLS: VendorUrls = VendorUrls {
        us: "https://us.example",
        eu: "https://eu.example",
    };

    #[test]
    fn regions_and_custom_urls() {
        let build = |b: ConnectionBuilder| b.with_api_key("k").build().map(|s| s.base_url);
        assert_eq!(
            build(ConnectionBuilder::new(URLS)),
            Ok("https://us.example".into())
        );
        assert_eq!(
            build(ConnectionBuilder::new(URLS).with_region(Region::Eu)),
            Ok("https://eu.example".into())
        );
        assert_eq!(
            build(ConnectionBuilder::new(URLS).with_base_url("http://127.0.0.1:9/")),
            Ok("http://127.0.0.1:9".into())
        );
        assert_eq!(
            build(ConnectionBuilder::new(URLS).with_base_url("ftp://x")),
            Err(Error::InvalidInput(ValidationError::InvalidBaseUrl {
                value: "ftp://x".into()
            }))
        );
    }

    #[test]
    fn keys_are_required_valid_and_never_shown() {
        let invalid = Err(Error::InvalidInput(ValidationError::InvalidApiKey));
        assert_eq!(ConnectionBuilder::new(URLS).build(), invalid);
        assert_eq!(
            ConnectionBuilder::new(URLS).with_api_key("a b").build(),
            invalid
        );
        assert_eq!(
            ConnectionBuilder::new(URLS).with_api_key("").build(),
            invalid
        );
        let builder = ConnectionBuilder::new(URLS).with_api_key("top-secret-123");
        assert!(!format!("{builder:?}").contains("top-secret-123"));
        let settings = builder.build().unwrap();
        assert!(!format!("{settings:?}").contains("top-secret-123"));
        assert_eq!(settings.api_key.expose(), "top-secret-123");
    }
}
