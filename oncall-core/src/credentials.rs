//! API keys that never show up in logs, errors or `Debug` output.

use std::fmt;

/// A vendor API key. `Debug` and `Display` print `ApiKey(***)`; only [`ApiKey::expose`] reveals it,
/// for the one place that builds the `Authorization` header.
///
/// ```
/// use oncall_core::ApiKey;
/// let key = ApiKey::new("s3cr3t-key").unwrap();
/// assert_eq!(format!("{key:?}"), "ApiKey(***)");
/// assert_eq!(key.expose(), "s3cr3t-key");
/// ```
#[derive(Clone, PartialEq, Eq)]
pub struct ApiKey(String);

impl ApiKey {
    /// Wraps a key; refuses an empty one or one with white space or control characters, which no
    /// vendor issues and which would corrupt a header.
    pub fn new(key: impl Into<String>) -> Result<ApiKey, crate::ValidationError> {
        let key = key.into();
        if key.is_empty() || key.chars().any(|c| c.is_whitespace() || c.is_control()) {
            return Err(crate::ValidationError::InvalidApiKey);
        }
        Ok(ApiKey(key))
    }

    /// The key itself.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for ApiKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("ApiKey(***)")
    }
}

impl fmt::Display for ApiKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("***")
    }
}
