//! Opsgenie's failures, mapped once onto the core's [`Error`] kinds.
//!
//! Error bodies are `{"message", "code"?, "errors"?, "took", "requestId"}` (reference §2.1, §3.1). The
//! status says most; the body tells a taken alias from an unknown user on a 422, and the request says
//! whether a 403 refused a write (a read-only key, R8) or hid a schedule from this key.

use std::time::Duration;

use oncall_core::{Email, Error, Resource};
use reqwest::header::HeaderMap;
use serde_json::Value;

/// What a failed call was about: enough to name things in the error.
#[derive(Debug, Clone, Copy, Default)]
pub(crate) struct CallContext<'a> {
    /// Whether the call writes (POST, PUT, DELETE).
    pub write: bool,
    /// The schedule id in the path, if any.
    pub schedule: Option<&'a str>,
    /// The override alias in the path or body, if any.
    pub alias: Option<&'a str>,
    /// The person a create or update names, if any.
    pub member: Option<&'a Email>,
}

/// An error body as far as it could be read: a gateway's HTML page yields only a message.
#[derive(Debug, Default)]
struct VendorError {
    message: String,
    code: Option<i64>,
    /// Field errors of a 422, as `field: message`.
    errors: Vec<(String, String)>,
    request_id: Option<String>,
}

impl VendorError {
    fn read(body: &[u8]) -> VendorError {
        let Ok(Value::Object(map)) = serde_json::from_slice::<Value>(body) else {
            // Not the vendor's JSON (a proxy's page, an empty body): keep a short, printable excerpt.
            let text: String = String::from_utf8_lossy(body)
                .chars()
                .filter(|c| !c.is_control())
                .take(200)
                .collect();
            return VendorError {
                message: text.trim().to_owned(),
                ..VendorError::default()
            };
        };
        let text = |v: &Value| match v {
            Value::String(s) => s.clone(),
            other => other.to_string(),
        };
        VendorError {
            message: map.get("message").map(text).unwrap_or_default(),
            code: map.get("code").and_then(Value::as_i64),
            errors: map
                .get("errors")
                .and_then(Value::as_object)
                .map(|e| e.iter().map(|(k, v)| (k.clone(), text(v))).collect())
                .unwrap_or_default(),
            request_id: map
                .get("requestId")
                .and_then(Value::as_str)
                .map(str::to_owned),
        }
    }

    /// Everything the vendor said, lower-cased, for recognising a kind of refusal.
    fn words(&self) -> String {
        let mut all = self.message.to_lowercase();
        for (field, message) in &self.errors {
            all.push(' ');
            all.push_str(&field.to_lowercase());
            all.push(' ');
            all.push_str(&message.to_lowercase());
        }
        all
    }

    fn names_a_taken_alias(&self) -> bool {
        let words = self.words();
        words.contains("alias")
            && [
                "exist",
                "already",
                "unique",
                "same alias",
                "conflict",
                "duplicate",
            ]
            .iter()
            .any(|w| words.contains(w))
    }

    /// A field error on the user, or a message saying a user is unknown. (The adapter always sends
    /// `{"type":"user","username":…}`, so an error about the user means the vendor does not know
    /// the person; the exact wording is UNCONFIRMED.)
    fn names_a_user(&self) -> bool {
        let field = self
            .errors
            .iter()
            .any(|(f, _)| f.to_lowercase().contains("user"));
        let message = self.message.to_lowercase();
        let unknown = [
            "not found",
            "not exist",
            "unknown",
            "could not find",
            "no user",
        ];
        field || (message.contains("user") && unknown.iter().any(|w| message.contains(w)))
    }

    fn names_the_schedule(&self) -> bool {
        let words = self.words();
        words.contains("schedule") && !words.contains("override")
    }

    /// `HTTP 422: <message> (field: message; ...) [code 40301] [request <id>]`.
    fn describe(&self, status: u16) -> String {
        let mut out = format!("HTTP {status}");
        if !self.message.is_empty() {
            out.push_str(": ");
            out.push_str(&self.message);
        }
        if !self.errors.is_empty() {
            let fields: Vec<String> = self
                .errors
                .iter()
                .map(|(f, m)| format!("{f}: {m}"))
                .collect();
            out.push_str(&format!(" ({})", fields.join("; ")));
        }
        if let Some(code) = self.code {
            out.push_str(&format!(" [code {code}]"));
        }
        if let Some(id) = &self.request_id {
            out.push_str(&format!(" [request {id}]"));
        }
        out
    }
}

/// The header that says which rate-limit window (in seconds) a 429 hit: wait that long.
pub(crate) const RATE_LIMIT_PERIOD: &str = "X-RateLimit-Period-In-Sec";

/// How long a 429 asks us to wait, from [`RATE_LIMIT_PERIOD`] (whole seconds; absent: no hint).
pub(crate) fn rate_limit_wait(headers: &HeaderMap) -> Option<Duration> {
    headers
        .get(RATE_LIMIT_PERIOD)?
        .to_str()
        .ok()?
        .trim()
        .parse::<u64>()
        .ok()
        .map(Duration::from_secs)
}

/// Maps a failed answer (any status but 2xx) to the core's [`Error`].
pub(crate) fn parse_error(
    status: u16,
    headers: &HeaderMap,
    body: &[u8],
    call: &CallContext<'_>,
) -> Error {
    let vendor = VendorError::read(body);
    let message = vendor.describe(status);
    let schedule = || Resource::Schedule(call.schedule.unwrap_or_default().to_owned());
    match status {
        401 => Error::Unauthenticated { message },
        402 => Error::Rejected {
            message: format!("the account's plan does not allow this: {message}"),
        },
        // Any write refused with a 403, whatever its code: a read-only key, or one without
        // configuration access (R8: PermissionDenied, never retried).
        403 if call.write => Error::PermissionDenied { message },
        // 40302 on a read: "apiKey is valid and authorized but we do not support the request".
        403 if vendor.code == Some(40302) => Error::Unsupported { message },
        // A read of a schedule the key may not see: Opsgenie answers 403/40301 for a schedule that
        // does not exist, too (observed, reference §3.1).
        403 if call.schedule.is_some() => Error::NotFound {
            resource: schedule(),
            message: format!("not found, or not visible to this key: {message}"),
        },
        403 => Error::PermissionDenied { message },
        404 if call.write && call.member.is_some() && vendor.names_a_user() => {
            unknown(call, message)
        }
        404 => match call.alias {
            Some(alias) if !vendor.names_the_schedule() => Error::NotFound {
                resource: Resource::Override(alias.to_owned()),
                message,
            },
            _ if call.schedule.is_some() => Error::NotFound {
                resource: schedule(),
                message,
            },
            _ => Error::NotFound {
                resource: Resource::Other("resource".into()),
                message,
            },
        },
        409 => Error::Conflict { message },
        // Which status a taken alias gets is UNCONFIRMED (409 "ID or name conflicts" or a 422):
        // both are the per-item Conflict the Provider contract asks for.
        422 if vendor.names_a_taken_alias() => Error::Conflict { message },
        422 if call.member.is_some() && vendor.names_a_user() => unknown(call, message),
        429 => Error::RateLimited {
            retry_after: rate_limit_wait(headers),
            message,
        },
        // Go's official client does not retry 501 either: it will not start working.
        501 => Error::Unsupported { message },
        500..=599 => Error::Transient { message },
        400..=499 => Error::Rejected { message },
        _ => Error::InvalidResponse {
            message: format!("unexpected status: {message}"),
        },
    }
}

fn unknown(call: &CallContext<'_>, message: String) -> Error {
    match call.member {
        Some(email) => Error::UnknownMember {
            email: email.clone(),
            message,
        },
        None => Error::Rejected { message },
    }
}

/// A failure below HTTP (connect, timeout, a connection dropped mid-answer): whether a write
/// landed is unknown. The message never carries a header, so never the key.
pub(crate) fn transport_error(error: &reqwest::Error, timeout: Duration) -> Error {
    let what = if error.is_timeout() {
        format!("no answer within {} ms", timeout.as_millis())
    } else if error.is_connect() {
        "could not connect".to_owned()
    } else {
        "the connection failed before the answer arrived".to_owned()
    };
    // reqwest's message names the URL (no key there) and the cause; keep both for the host.
    Error::Transient {
        message: format!("{what}: {error}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use reqwest::header::HeaderValue;

    fn email() -> Email {
        Email::parse("ada@example.com").unwrap()
    }

    struct Case {
        status: u16,
        body: &'static str,
        write: bool,
        alias: Option<&'static str>,
        expect: fn(&Error) -> bool,
    }

    /// Real bodies where the reference has them (DXW captures, the Go SDK's fixtures); the
    /// others are shaped like them and marked UNCONFIRMED.
    const CASES: &[Case] = &[
        // 401: body text UNCONFIRMED.
        Case {
            status: 401,
            body: r#"{"message":"Could not authenticate","took":0.001,"requestId":"r1"}"#,
            write: false,
            alias: None,
            expect: |e| matches!(e, Error::Unauthenticated { .. }),
        },
        // 403/40301 on a read: the DXW capture for a schedule that does not exist.
        Case {
            status: 403,
            body: r#"{"code":40301,"message":"Api key is not authorized to access the schedule","took":0.008,"requestId":"fc0fdeb3-05fc-4cf0-8f9d-940fee3b10ba"}"#,
            write: false,
            alias: None,
            expect: |e| {
                matches!(e, Error::NotFound { resource: Resource::Schedule(s), message }
                    if s == "S1" && message.starts_with("not found, or not visible to this key")
                        && message.contains("fc0fdeb3-05fc-4cf0-8f9d-940fee3b10ba"))
            },
        },
        // 403/40301 on a write: read-only key (message seen in the wild, reference §3.1).
        Case {
            status: 403,
            body: r#"{"code":40301,"message":"To perform this action, use an API key from an API integration.","took":0.002,"requestId":"r2"}"#,
            write: true,
            alias: None,
            expect: |e| {
                matches!(e, Error::PermissionDenied { .. })
                    && e.to_string().contains("read-only or lacks rights")
            },
        },
        // Any 403 on a write is R8's refusal, whatever its code: never retried, and reported as
        // the key lacking rights.
        Case {
            status: 403,
            body: r#"{"code":40302,"message":"We do not support this request","took":0.0,"requestId":"r3"}"#,
            write: true,
            alias: None,
            expect: |e| {
                matches!(e, Error::PermissionDenied { message } if message.contains("40302"))
                    && e.to_string().contains("read-only or lacks rights")
            },
        },
        Case {
            status: 403,
            body: r#"{"code":40302,"message":"We do not support this request","took":0.0,"requestId":"r3b"}"#,
            write: false,
            alias: None,
            expect: |e| matches!(e, Error::Unsupported { .. }),
        },
        // 404 for an override alias (body text UNCONFIRMED).
        Case {
            status: 404,
            body: r#"{"message":"Could not find override with alias [oncall-sync-1]","took":0.0,"requestId":"r4"}"#,
            write: true,
            alias: Some("oncall-sync-1"),
            expect: |e| matches!(e, Error::NotFound { resource: Resource::Override(a), .. } if a == "oncall-sync-1"),
        },
        Case {
            status: 404,
            body: r#"{"message":"Schedule with identifier [S1] does not exist","took":0.0,"requestId":"r5"}"#,
            write: true,
            alias: Some("oncall-sync-1"),
            expect: |e| matches!(e, Error::NotFound { resource: Resource::Schedule(s), .. } if s == "S1"),
        },
        Case {
            status: 409,
            body: r#"{"message":"ID or name conflicts with another entity","took":0.0,"requestId":"r6"}"#,
            write: true,
            alias: Some("oncall-sync-1"),
            expect: |e| matches!(e, Error::Conflict { .. }),
        },
        Case {
            status: 422,
            body: r#"{"message":"There can be only one override with the same alias for that schedule","took":0.0,"requestId":"r7"}"#,
            write: true,
            alias: Some("oncall-sync-1"),
            expect: |e| matches!(e, Error::Conflict { .. }),
        },
        // 422 naming the user: UnknownMember for the person the create named.
        Case {
            status: 422,
            body: r#"{"message":"Request body is not processable. Please check the errors.","errors":{"user":"User [ada@example.com] does not exist"},"took":0.01,"requestId":"r8"}"#,
            write: true,
            alias: None,
            expect: |e| {
                matches!(e, Error::UnknownMember { email, message }
                    if email.as_str() == "ada@example.com" && message.contains("user: User [ada@example.com] does not exist"))
            },
        },
        // The Go SDK's 422 fixture: other field errors are a refusal, with the fields in the message.
        Case {
            status: 422,
            body: r#"{"message":"Request body is not processable. Please check the errors.","errors":{"recipients#type":"Invalid recipient type 'bb'"},"took":0.083,"requestId":"Id"}"#,
            write: true,
            alias: None,
            expect: |e| {
                matches!(e, Error::Rejected { message }
                    if message.contains("recipients#type: Invalid recipient type 'bb'"))
            },
        },
        Case {
            status: 422,
            body: r#"{"message":"Request body is not processable. Please check the errors.","errors":{"endDate":"End date must be in the future"},"took":0.0,"requestId":"r9"}"#,
            write: true,
            alias: None,
            expect: |e| matches!(e, Error::Rejected { message } if message.contains("endDate")),
        },
        Case {
            status: 400,
            body: r#"{"message":"Invalid JSON body","took":0.0,"requestId":"r10"}"#,
            write: true,
            alias: None,
            expect: |e| matches!(e, Error::Rejected { .. }),
        },
        // The Go SDK's 429 fixture (headers added by `check`).
        Case {
            status: 429,
            body: r#"{"message":"TooManyRequests","took":1,"requestId":"rId"}"#,
            write: true,
            alias: None,
            expect: |e| matches!(e, Error::RateLimited { retry_after: Some(d), .. } if *d == Duration::from_secs(60)),
        },
        Case {
            status: 503,
            body: "<html><body>503 Service Temporarily Unavailable</body></html>",
            write: true,
            alias: None,
            expect: |e| matches!(e, Error::Transient { message } if message.contains("503 Service Temporarily")),
        },
        Case {
            status: 500,
            body: "",
            write: false,
            alias: None,
            expect: |e| matches!(e, Error::Transient { .. }),
        },
        Case {
            status: 501,
            body: "",
            write: false,
            alias: None,
            expect: |e| matches!(e, Error::Unsupported { .. }),
        },
    ];

    #[test]
    fn every_status_maps_to_a_kind_a_host_can_act_on() {
        let member = email();
        let mut headers = HeaderMap::new();
        headers.insert("X-RateLimit-State", HeaderValue::from_static("THROTTLED"));
        headers.insert("X-RateLimit-Reason", HeaderValue::from_static("ACCOUNT"));
        headers.insert(RATE_LIMIT_PERIOD, HeaderValue::from_static("60"));
        for (i, case) in CASES.iter().enumerate() {
            let call = CallContext {
                write: case.write,
                schedule: Some("S1"),
                alias: case.alias,
                member: case.write.then_some(&member),
            };
            let error = parse_error(case.status, &headers, case.body.as_bytes(), &call);
            assert!(
                (case.expect)(&error),
                "case {i} ({}): got {error:?}",
                case.status
            );
        }
    }

    #[test]
    fn a_403_on_a_list_without_a_schedule_is_a_rights_problem() {
        let body = br#"{"code":40301,"message":"Team API Keys are not authorized to perform this action.","took":0.0,"requestId":"r"}"#;
        let e = parse_error(403, &HeaderMap::new(), body, &CallContext::default());
        assert!(matches!(e, Error::PermissionDenied { .. }), "{e:?}");
    }

    #[test]
    fn a_429_without_a_period_has_no_hint() {
        let e = parse_error(429, &HeaderMap::new(), b"{}", &CallContext::default());
        assert!(
            matches!(
                e,
                Error::RateLimited {
                    retry_after: None,
                    ..
                }
            ),
            "{e:?}"
        );
    }
}
