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

    /// `text` with every occurrence of the key replaced by `***`: for vendor or proxy answers
    /// that echo it (an error page quoting the `Authorization` header), before they become a
    /// message.
    ///
    /// ```
    /// use oncall_core::ApiKey;
    /// let key = ApiKey::new("s3cr3t-key").unwrap();
    /// assert_eq!(
    ///     key.redact_in("401: key s3cr3t-key is not valid (s3cr3t-key)"),
    ///     "401: key *** is not valid (***)"
    /// );
    /// assert_eq!(key.redact_in("nothing to hide"), "nothing to hide");
    /// ```
    pub fn redact_in(&self, text: &str) -> String {
        // The key is never empty (see `new`), so `replace` terminates and changes only the key.
        text.replace(self.0.as_str(), "***")
    }

    /// `error` with the key redacted ([`ApiKey::redact_in`]) from its message, whatever kind it
    /// is: the one scrub every adapter applies to what it hands a host.
    ///
    /// ```
    /// use oncall_core::{ApiKey, Error};
    /// let key = ApiKey::new("s3cr3t-key").unwrap();
    /// let echoed = Error::Rejected { message: "bad request from GenieKey s3cr3t-key".into() };
    /// assert_eq!(
    ///     key.redact_error(echoed),
    ///     Error::Rejected { message: "bad request from GenieKey ***".into() }
    /// );
    /// ```
    pub fn redact_error(&self, error: crate::Error) -> crate::Error {
        use crate::Error;
        let clean = |message: String| {
            if message.contains(self.0.as_str()) {
                self.redact_in(&message)
            } else {
                message
            }
        };
        match error {
            Error::Unauthenticated { message } => Error::Unauthenticated {
                message: clean(message),
            },
            Error::PermissionDenied { message } => Error::PermissionDenied {
                message: clean(message),
            },
            Error::NotFound { resource, message } => Error::NotFound {
                resource,
                message: clean(message),
            },
            Error::UnknownMember { email, message } => Error::UnknownMember {
                email,
                message: clean(message),
            },
            Error::RateLimited {
                retry_after,
                message,
            } => Error::RateLimited {
                retry_after,
                message: clean(message),
            },
            Error::Transient { message } => Error::Transient {
                message: clean(message),
            },
            Error::InvalidResponse { message } => Error::InvalidResponse {
                message: clean(message),
            },
            Error::Rejected { message } => Error::Rejected {
                message: clean(message),
            },
            Error::Conflict { message } => Error::Conflict {
                message: clean(message),
            },
            Error::CorruptState { message } => Error::CorruptState {
                message: clean(message),
            },
            Error::Unsupported { message } => Error::Unsupported {
                message: clean(message),
            },
            // Validation errors hold the host's input, never a vendor's answer. (No catch-all: a
            // kind added to `Error` must be listed here to compile.)
            Error::InvalidInput(invalid) => Error::InvalidInput(invalid),
        }
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
