//! # oncall-opsgenie
//!
//! The Opsgenie adapter of oncall-sync. This release holds the connection settings (region or base URL,
//! API key kept out of `Debug`); the HTTP client implementing [`oncall_core::Provider`] is not
//! written yet.
#![deny(missing_docs)]
#![forbid(unsafe_code)]

use oncall_core::connection::VendorUrls;
pub use oncall_core::connection::{ConnectionBuilder, ConnectionSettings, Region};

/// Opsgenie's API base URLs.
pub const URLS: VendorUrls = VendorUrls {
    us: "https://api.opsgenie.com",
    eu: "https://api.eu.opsgenie.com",
};

/// Connection settings for a Opsgenie account.
///
/// ```
/// use oncall_opsgenie::{builder, Region};
/// let settings = builder().with_api_key("key").with_region(Region::Eu).build().unwrap();
/// assert_eq!(settings.base_url, "https://api.eu.opsgenie.com");
/// ```
pub fn builder() -> ConnectionBuilder {
    ConnectionBuilder::new(URLS)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn official_urls() {
        let url = |r| {
            builder()
                .with_api_key("k")
                .with_region(r)
                .build()
                .unwrap()
                .base_url
        };
        assert_eq!(url(Region::Us), "https://api.opsgenie.com");
        assert_eq!(url(Region::Eu), "https://api.eu.opsgenie.com");
    }
}
