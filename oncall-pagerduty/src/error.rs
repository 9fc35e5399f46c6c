//! PagerDuty's error answers, mapped once into the core's [`Error`].
//!
//! PagerDuty documents `{"error": {"message", "code", "errors": [..]}}`, but real answers deviate:
//! `errors` as one string (go-pagerduty#339), `error` as an array of strings (go-pagerduty#478), a 401
//! with a body that is not JSON at all (go-pagerduty#469), a 429 with no body. [`parse_error`] reads
//! all of them and never fails itself.

use std::time::Duration;

use oncall_core::{Email, Error, Resource};
use reqwest::header::HeaderMap;
use reqwest::StatusCode;
use serde_json::Value;

/// The longest vendor text kept in a message: enough for every documented error, short enough that a
/// misbehaving proxy's HTML page does not flood a report.
const MAX_MESSAGE: usize = 300;

/// What a PagerDuty error body says, read leniently.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub(crate) struct VendorError {
    /// `error.message`, or the plain text of a body that is not JSON.
    pub(crate) message: String,
    /// `error.code`, when there is one.
    pub(crate) code: Option<i64>,
    /// `error.errors`, one string or many (or the strings of an `error` array).
    pub(crate) details: Vec<String>,
}

impl VendorError {
    /// Reads an error body of any shape PagerDuty is known to send.
    pub(crate) fn parse(body: &[u8]) -> VendorError {
        let Ok(json) = serde_json::from_slice::<Value>(body) else {
            let text = String::from_utf8_lossy(body);
            return VendorError {
                message: clip(text.trim()),
                ..VendorError::default()
            };
        };
        // `{"error": {...}}` as documented; some answers put the object at the top level.
        let error = json.get("error").unwrap_or(&json);
        match error {
            Value::Array(items) => VendorError {
                details: strings(items),
                ..VendorError::default()
            },
            Value::String(s) => VendorError {
                message: clip(s),
                ..VendorError::default()
            },
            _ => VendorError {
                message: error
                    .get("message")
                    .and_then(Value::as_str)
                    .map(clip)
                    .unwrap_or_default(),
                code: error.get("code").and_then(Value::as_i64),
                details: match error.get("errors") {
                    Some(Value::String(s)) => {
                        s.split(", ").map(clip).filter(|s| !s.is_empty()).collect()
                    }
                    Some(Value::Array(items)) => strings(items),
                    _ => Vec::new(),
                },
            },
        }
    }

    /// Every text the vendor gave, for matching.
    fn texts(&self) -> impl Iterator<Item = &str> {
        std::iter::once(self.message.as_str())
            .chain(self.details.iter().map(String::as_str))
            .filter(|s| !s.is_empty())
    }

    /// Whether any of the vendor's texts contains `needle` (ASCII case-insensitive).
    pub(crate) fn mentions(&self, needle: &str) -> bool {
        let needle = needle.to_ascii_lowercase();
        self.texts()
            .any(|t| t.to_ascii_lowercase().contains(&needle))
    }

    /// The vendor's words in one line: `message (code N): detail; detail`.
    pub(crate) fn describe(&self, status: StatusCode) -> String {
        let mut out = if self.message.is_empty() {
            format!("HTTP {}", status.as_u16())
        } else {
            format!("{} (HTTP {}", self.message, status.as_u16())
                + &self.code.map(|c| format!(", code {c}")).unwrap_or_default()
                + ")"
        };
        if !self.details.is_empty() {
            out.push_str(": ");
            out.push_str(&self.details.join("; "));
        }
        out
    }

    /// The first email address the vendor's texts name, if any.
    fn named_email(&self) -> Option<Email> {
        self.texts()
            .flat_map(|t| t.split(|c: char| c.is_whitespace() || "\"'(),;<>[]".contains(c)))
            .find(|w| w.contains('@'))
            .and_then(|w| Email::parse(w.trim_end_matches('.')).ok())
    }
}

fn strings(items: &[Value]) -> Vec<String> {
    items.iter().filter_map(Value::as_str).map(clip).collect()
}

fn clip(text: &str) -> String {
    match text.char_indices().nth(MAX_MESSAGE) {
        Some((cut, _)) => format!("{}…", &text[..cut]),
        None => text.to_owned(),
    }
}

/// The vendor's wait after a 429: `ratelimit-reset` (seconds from now, not an epoch), else a
/// `Retry-After` in seconds (not documented for PagerDuty; read in case a proxy adds it).
pub(crate) fn rate_limit_reset(headers: &HeaderMap) -> Option<Duration> {
    ["ratelimit-reset", "retry-after"].iter().find_map(|name| {
        let value = headers.get(*name)?.to_str().ok()?.trim();
        let seconds: f64 = value.parse().ok()?;
        Duration::try_from_secs_f64(seconds).ok()
    })
}

/// Maps a PagerDuty error answer into the core's [`Error`], from the status first: the body's
/// words only name what happened, except for the account lock below.
///
/// `is_write` says whether the request was a POST or a DELETE. A 403 is what the spec says it is,
/// "not authorized to view the requested resource ... does not have permission to perform this
/// action", on a read as on a write: [`Error::PermissionDenied`], never a missing resource (a
/// wrongly read "not found" could make a person a deleted user, or a schedule gone). On a write
/// it is R8's read-only key (PagerDuty answers 403 to every non-GET request of one). A 404 is
/// reported as [`Resource::Other`]; the provider, which knows what it asked for, names it.
/// Messages carry the vendor's words, never the key (the client scrubs the body before it gets
/// here, so no cut can leave part of a key behind).
pub fn parse_error(status: StatusCode, headers: &HeaderMap, body: &[u8], is_write: bool) -> Error {
    let vendor = VendorError::parse(body);
    let said = vendor.describe(status);
    match status.as_u16() {
        401 => Error::Unauthenticated {
            message: format!(
                "PagerDuty did not accept the API key: {said}. Check the key, and the region: a key \
                 of an EU account is refused by the US API (api.pagerduty.com) and the other way round"
            ),
        },
        403 if is_write => Error::PermissionDenied {
            message: format!(
                "PagerDuty refused a write: the API key is read-only or lacks rights on this \
                 schedule ({said})"
            ),
        },
        403 => Error::PermissionDenied {
            message: format!(
                "PagerDuty refused this key a read: it may not view this resource ({said})"
            ),
        },
        404 => Error::NotFound {
            resource: match vendor.code {
                Some(3004) => Resource::Other("schedule".into()),
                Some(4004) => Resource::Other("override".into()),
                _ => Resource::Other("PagerDuty resource".into()),
            },
            message: said,
        },
        408 => Error::Transient { message: said },
        429 => Error::RateLimited {
            retry_after: rate_limit_reset(headers),
            message: said,
        },
        // An account lock under concurrent writes passes: the Terraform provider retries it.
        400 if vendor.mentions("could not be locked") => Error::Transient { message: said },
        400 | 422 => match vendor.named_email() {
            Some(email) if vendor.mentions("user") => Error::UnknownMember {
                email,
                message: said,
            },
            _ => Error::Rejected { message: said },
        },
        409 => Error::Conflict { message: said },
        s if s >= 500 => Error::Transient { message: said },
        _ => Error::Rejected { message: said },
    }
}

/// Names the resource of a [`Error::NotFound`] the caller asked for; other errors pass unchanged.
pub(crate) fn with_resource(error: Error, resource: Resource) -> Error {
    match error {
        Error::NotFound { message, .. } => Error::NotFound { resource, message },
        other => other,
    }
}

/// A 200 answer that is not what the API documents: names the field path that was wrong.
pub(crate) fn invalid(path: &str, what: impl std::fmt::Display) -> Error {
    Error::InvalidResponse {
        message: format!("PagerDuty's answer at `{path}`: {what}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use reqwest::header::HeaderValue;

    fn headers(pairs: &[(&'static str, &'static str)]) -> HeaderMap {
        let mut h = HeaderMap::new();
        for (k, v) in pairs {
            h.insert(*k, HeaderValue::from_static(v));
        }
        h
    }

    /// One row: status, headers, body, whether the call wrote, and a check of the result.
    struct Case {
        status: u16,
        headers: &'static [(&'static str, &'static str)],
        body: &'static str,
        write: bool,
        check: fn(&Error) -> bool,
        why: &'static str,
    }

    fn check(cases: &[Case]) {
        for c in cases {
            let status = StatusCode::from_u16(c.status).unwrap();
            let e = parse_error(status, &headers(c.headers), c.body.as_bytes(), c.write);
            assert!((c.check)(&e), "{}: got {e:?}", c.why);
        }
    }

    #[test]
    fn maps_real_vendor_bodies() {
        check(&[
            Case {
                status: 401,
                headers: &[],
                body: "<html><body>401 Authorization Required</body></html>",
                write: false,
                check: |e| matches!(e, Error::Unauthenticated { message } if message.contains("region") && message.contains("401 Authorization Required")),
                why: "a 401 that is not JSON names the key and the region (go-pagerduty#469)",
            },
            Case {
                status: 401,
                headers: &[],
                body: r#"{"error":{"message":"Authentication failed","code":2006}}"#,
                write: false,
                check: |e| matches!(e, Error::Unauthenticated { message } if message.contains("code 2006")),
                why: "a JSON 401",
            },
            Case {
                status: 403,
                headers: &[],
                body: r#"{"error":{"message":"Access Denied","code":2010}}"#,
                write: true,
                check: |e| matches!(e, Error::PermissionDenied { message } if message.contains("read-only")),
                why: "R8: a refused write says the key is read-only or lacks rights",
            },
            Case {
                status: 403,
                headers: &[],
                body: r#"{"error":{"code":403,"errors":[],"message":"Insufficient permissions"}}"#,
                write: false,
                check: |e| matches!(e, Error::PermissionDenied { message } if message.contains("may not view") && message.contains("Insufficient permissions") && !message.contains("read-only")),
                why: "a refused read is a refusal, per the spec, not a missing resource (terraform-provider#310 body)",
            },
            Case {
                status: 403,
                headers: &[],
                body: r#"{"message":"Token missing required scopes","required_scopes":"users.read"}"#,
                write: false,
                check: |e| matches!(e, Error::PermissionDenied { message } if message.contains("Token missing required scopes")),
                why: "a scoped token's refusal, at the top level",
            },
            Case {
                status: 404,
                headers: &[],
                body: r#"{"error":{"message":"Not Found","code":2100}}"#,
                write: false,
                check: |e| matches!(e, Error::NotFound { message, .. } if message.contains("Not Found")),
                why: "404 with the spec's example body",
            },
            Case {
                status: 400,
                headers: &[],
                body: r#"{"error":{"message":"Invalid Override","code":2001,"errors":"Override must end in the future, Override must end after its start"}}"#,
                write: true,
                check: |e| matches!(e, Error::Rejected { message } if message.contains("Override must end in the future; Override must end after its start")),
                why: "`errors` as a string (go-pagerduty#339)",
            },
            Case {
                status: 400,
                headers: &[],
                body: r#"{"error":["links should have at most 50 item(s)"]}"#,
                write: true,
                check: |e| matches!(e, Error::Rejected { message } if message.contains("at most 50")),
                why: "`error` as an array of strings (go-pagerduty#478)",
            },
            Case {
                status: 400,
                headers: &[],
                body: r#"{"error":{"message":"Invalid Input Provided","code":2001,"errors":["User Ann.Lee@Example.com not found"]}}"#,
                write: true,
                check: |e| matches!(e, Error::UnknownMember { email, .. } if email.as_str() == "ann.lee@example.com"),
                why: "an unknown user the vendor names is UnknownMember",
            },
            Case {
                status: 400,
                headers: &[],
                body: r#"{"error":{"message":"Invalid Input Provided","code":2001,"errors":["Offset + limit must be at most 10000"]}}"#,
                write: false,
                check: |e| matches!(e, Error::Rejected { .. }),
                why: "other 400s are Rejected",
            },
            Case {
                status: 400,
                headers: &[],
                body: r#"{"error":{"message":"Invalid Input Provided","code":2001,"errors":["Account could not be locked"]}}"#,
                write: false,
                check: |e| matches!(e, Error::Transient { .. }),
                why: "an account lock passes",
            },
            Case {
                status: 429,
                headers: &[
                    ("ratelimit-limit", "960"),
                    ("ratelimit-remaining", "0"),
                    ("ratelimit-reset", "20"),
                ],
                body: r#"{"error": {"message": "Rate Limit Exceeded", "code": 2020}}"#,
                write: true,
                check: |e| matches!(e, Error::RateLimited { retry_after: Some(d), .. } if *d == Duration::from_secs(20)),
                why: "429 waits ratelimit-reset seconds",
            },
            Case {
                status: 429,
                headers: &[],
                body: "",
                write: false,
                check: |e| {
                    matches!(
                        e,
                        Error::RateLimited {
                            retry_after: None,
                            ..
                        }
                    )
                },
                why: "a 429 without headers or body (documented as possible)",
            },
            Case {
                status: 503,
                headers: &[],
                body: "Service Unavailable",
                write: false,
                check: |e| matches!(e, Error::Transient { message } if message.contains("Service Unavailable")),
                why: "5xx is transient",
            },
            Case {
                status: 502,
                headers: &[],
                body: "",
                write: true,
                check: |e| matches!(e, Error::Transient { message } if message.contains("502")),
                why: "an empty 502 still names its status",
            },
            Case {
                status: 409,
                headers: &[],
                body: r#"{"error":{"message":"Conflict","code":2001}}"#,
                write: true,
                check: |e| matches!(e, Error::Conflict { .. }),
                why: "409",
            },
            Case {
                status: 402,
                headers: &[],
                body: r#"{"error":{"message":"Payment Required","code":2012}}"#,
                write: false,
                check: |e| matches!(e, Error::Rejected { message } if message.contains("Payment Required")),
                why: "an account lacking an ability",
            },
        ]);
    }

    #[test]
    fn long_bodies_are_clipped() {
        let body = "x".repeat(5000);
        let e = parse_error(
            StatusCode::BAD_GATEWAY,
            &HeaderMap::new(),
            body.as_bytes(),
            false,
        );
        assert!(e.to_string().len() < 600, "{e}");
    }

    #[test]
    fn not_found_can_be_named_by_the_caller() {
        let e = parse_error(StatusCode::NOT_FOUND, &HeaderMap::new(), b"", false);
        let e = with_resource(e, Resource::Schedule("PX".into()));
        assert!(
            matches!(e, Error::NotFound { resource: Resource::Schedule(id), .. } if id == "PX")
        );
    }
}
