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
    /// message. Echoes in other spellings are scrubbed too: percent-encoded (a URL quoted back),
    /// JSON-escaped (`/` as `\/`), and a prefix of the key that ends the text (an echo cut short
    /// by whoever shortened the text first).
    ///
    /// ```
    /// use oncall_core::ApiKey;
    /// let key = ApiKey::new("s3cr3t/key+42").unwrap();
    /// assert_eq!(
    ///     key.redact_in("401: key s3cr3t/key+42 is not valid (s3cr3t%2Fkey%2B42)"),
    ///     "401: key *** is not valid (***)"
    /// );
    /// assert_eq!(key.redact_in("echo: s3cr3t\\/key+42"), "echo: ***");
    /// assert_eq!(key.redact_in("cut short: s3cr3t/k"), "cut short: ***");
    /// assert_eq!(key.redact_in("nothing to hide"), "nothing to hide");
    /// ```
    pub fn redact_in(&self, text: &str) -> String {
        // The spellings are never empty (see `new`), so `replace` terminates.
        let mut out = text.to_owned();
        for spelling in self.spellings() {
            if out.contains(spelling.as_str()) {
                out = out.replace(spelling.as_str(), "***");
            }
        }
        self.redact_cut_tail(out)
    }

    /// The key as it may be echoed: itself, percent-encoded (upper- and lower-case hex), and
    /// JSON-escaped.
    fn spellings(&self) -> Vec<String> {
        let key = self.0.as_str();
        let mut spellings = vec![key.to_owned()];
        let mut upper = String::new();
        let mut lower = String::new();
        for b in key.bytes() {
            if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b'~') {
                upper.push(char::from(b));
                lower.push(char::from(b));
            } else {
                upper.push_str(&format!("%{b:02X}"));
                lower.push_str(&format!("%{b:02x}"));
            }
        }
        spellings.push(upper);
        spellings.push(lower);
        spellings.push(key.replace('/', "\\/"));
        spellings.sort();
        spellings.dedup();
        // Longest first, so a spelling that contains another is scrubbed whole.
        spellings.sort_by_key(|s| std::cmp::Reverse(s.len()));
        spellings
    }

    /// Scrubs a proper prefix of the key (at least 4 characters) that ends `text`: what is left of
    /// an echo when the text was cut before it was scrubbed.
    fn redact_cut_tail(&self, mut text: String) -> String {
        const SHORTEST: usize = 4;
        let key = self.0.as_str();
        let longest = key.len().saturating_sub(1).min(text.len());
        for len in (SHORTEST..=longest).rev() {
            let Some(prefix) = key.get(..len) else {
                continue;
            };
            if text.ends_with(prefix) {
                text.truncate(text.len() - len);
                text.push_str("***");
                break;
            }
        }
        text
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
        let clean = |message: String| self.redact_in(&message);
        match error {
            Error::Unauthenticated { message } => Error::Unauthenticated {
                message: clean(message),
            },
            Error::PermissionDenied { message } => Error::PermissionDenied {
                message: clean(message),
            },
            Error::PeopleLookupDenied { message } => Error::PeopleLookupDenied {
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
