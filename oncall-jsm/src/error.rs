//! JSM Operations' failures, mapped once onto the core's [`Error`] kinds.
//!
//! The status decides first (DESIGN §7); the request says the rest (a write refused with 403 is
//! R8's refusal, a read refused with 403 hides a schedule); the body's words are the last resort,
//! and only to tell an unknown person from another refusal of a create or update.
//!
//! Bodies come in the shapes of the spec (`{"errors": [{"title", "code"}]}` for 4xx,
//! `{"code", "message"}` for 401), the Jira platform's (`{"errorMessages": [...], "errors": {...}}`
//! on the site's user endpoints), or anything a proxy sends: all are read leniently, none is needed.

use std::time::Duration;

use chrono::{DateTime, Utc};
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
    /// The override alias in the path, if any.
    pub alias: Option<&'a str>,
    /// The person a create or update names, if any.
    pub member: Option<&'a Email>,
    /// Whether the call looks people up on the site (`user/search`, `user?accountId=`).
    pub people: bool,
}

/// An error body, as far as it could be read.
#[derive(Debug, Default)]
pub(crate) struct VendorError {
    /// Titles, messages and field errors, in the order given.
    pub texts: Vec<String>,
    /// Codes (`"FORBIDDEN"`, `403`, ...).
    pub codes: Vec<String>,
}

impl VendorError {
    pub(crate) fn read(body: &[u8]) -> VendorError {
        let Ok(value) = serde_json::from_slice::<Value>(body) else {
            // Not JSON (a gateway's page, an empty body): a short, printable excerpt.
            let text: String = String::from_utf8_lossy(body)
                .chars()
                .filter(|c| !c.is_control())
                .take(200)
                .collect();
            let text = text.trim().to_owned();
            return VendorError {
                texts: if text.is_empty() {
                    Vec::new()
                } else {
                    vec![text]
                },
                codes: Vec::new(),
            };
        };
        let mut e = VendorError::default();
        let text = |v: &Value| match v {
            Value::String(s) => s.clone(),
            other => other.to_string(),
        };
        if let Some(items) = value.get("errors").and_then(Value::as_array) {
            for item in items {
                if let Some(t) = item.get("title").or_else(|| item.get("message")) {
                    e.texts.push(text(t));
                }
                if let Some(c) = item.get("code") {
                    e.codes.push(text(c));
                }
            }
        }
        // The Jira platform's field errors: {"errors": {"field": "message"}}.
        if let Some(fields) = value.get("errors").and_then(Value::as_object) {
            e.texts
                .extend(fields.iter().map(|(k, v)| format!("{k}: {}", text(v))));
        }
        if let Some(messages) = value.get("errorMessages").and_then(Value::as_array) {
            e.texts.extend(messages.iter().map(text));
        }
        if let Some(m) = value.get("message") {
            e.texts.push(text(m));
        }
        if let Some(c) = value.get("code") {
            e.codes.push(text(c));
        }
        e
    }

    /// Everything the vendor said, lower-cased, for recognising a kind of refusal.
    fn words(&self) -> String {
        self.texts.join(" ").to_lowercase()
    }

    /// Whether the refusal is about the person: the responder, a user or an account id. (The
    /// adapter names a person only as the responder, so such a refusal means the vendor does not
    /// take that person; the exact titles are UNCONFIRMED.)
    pub(crate) fn names_a_person(&self) -> bool {
        let words = self.words();
        ["responder", "user", "account"]
            .iter()
            .any(|w| words.contains(w))
    }

    /// Whether the refusal is about the page size.
    pub(crate) fn names_the_size(&self) -> bool {
        let words = self.words();
        words.contains("size") || words.contains("limit")
    }

    fn names_the_schedule(&self) -> bool {
        let words = self.words();
        words.contains("schedule") && !words.contains("override")
    }

    /// Whether a 404 to a write naming a person is about that person: the words name the
    /// responder, a user or an account, and neither the schedule nor the override.
    fn is_the_person_missing(&self) -> bool {
        let words = self.words();
        self.names_a_person() && !words.contains("schedule") && !words.contains("override")
    }

    /// `HTTP 422: <titles> [code …]`.
    pub(crate) fn describe(&self, status: u16) -> String {
        let mut out = format!("HTTP {status}");
        if !self.texts.is_empty() {
            out.push_str(": ");
            out.push_str(&self.texts.join("; "));
        }
        if !self.codes.is_empty() {
            out.push_str(&format!(" [code {}]", self.codes.join(", ")));
        }
        out
    }
}

/// How long a 429 asks us to wait: `Retry-After` in seconds (a fraction allowed) or as an HTTP
/// date (measured from the answer's `Date`, or `now`). Absent or unreadable: no hint (the core's
/// backoff then decides).
pub(crate) fn retry_after(headers: &HeaderMap, now: DateTime<Utc>) -> Option<Duration> {
    let value = headers.get("retry-after")?.to_str().ok()?.trim();
    if let Ok(seconds) = value.parse::<f64>() {
        return Duration::try_from_secs_f64(seconds.max(0.0)).ok();
    }
    let at = DateTime::parse_from_rfc2822(value)
        .ok()?
        .with_timezone(&Utc);
    let base = headers
        .get("date")
        .and_then(|d| d.to_str().ok())
        .and_then(|d| DateTime::parse_from_rfc2822(d).ok())
        .map_or(now, |d| d.with_timezone(&Utc));
    (at - base).to_std().ok().or(Some(Duration::ZERO))
}

/// Maps a failed answer (any status but 2xx) to the core's [`Error`].
pub(crate) fn parse_error(
    status: u16,
    headers: &HeaderMap,
    body: &[u8],
    call: &CallContext<'_>,
    now: DateTime<Utc>,
) -> Error {
    let vendor = VendorError::read(body);
    let message = vendor.describe(status);
    let schedule = || Resource::Schedule(call.schedule.unwrap_or_default().to_owned());
    match status {
        401 => Error::Unauthenticated {
            message: format!(
                "the account e-mail and API token were not accepted (a revoked or mistyped \
                 token, or another site's account): {message}"
            ),
        },
        // The site's user search or lookup refused: the account lacks the "Browse users and
        // groups" permission. Not R8 (the account may well write overrides) and not an unknown
        // person (the person may well be there): its own kind.
        403 if call.people => Error::PeopleLookupDenied {
            message: format!(
                "the site refused to look people up (the account lacks the Browse users and \
                 groups permission): {message}"
            ),
        },
        // Rights are the user's (reference §1): any write refused is R8's refusal, never retried.
        403 if call.write => Error::PermissionDenied {
            message: format!(
                "the account lacks the rights to change this schedule's overrides (edit \
                 configuration, team membership): {message}"
            ),
        },
        // A read of a schedule the account may not see.
        403 if call.schedule.is_some() => Error::NotFound {
            resource: schedule(),
            message: format!("not found, or not visible to this account: {message}"),
        },
        403 => Error::PermissionDenied { message },
        // A write naming a person, refused with 404 for that person (the responder is not a user
        // of the site): that span's unknown member (R5's exception), not the schedule gone, which
        // would stop the destination run after run.
        404 if call.write && vendor.is_the_person_missing() => match call.member {
            Some(email) => Error::UnknownMember {
                email: email.clone(),
                message,
            },
            None => Error::Rejected { message },
        },
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
        400 | 422 if call.write && call.member.is_some() && vendor.names_a_person() => {
            match call.member {
                Some(email) => Error::UnknownMember {
                    email: email.clone(),
                    message,
                },
                None => Error::Rejected { message },
            }
        }
        429 => Error::RateLimited {
            retry_after: retry_after(headers, now),
            message,
        },
        501 => Error::Unsupported { message },
        500..=599 => Error::Transient { message },
        400..=499 => Error::Rejected { message },
        _ => Error::InvalidResponse {
            message: format!("unexpected status: {message}"),
        },
    }
}

/// A failure below HTTP (connect, timeout, a connection dropped mid-answer): whether a write
/// landed is unknown. reqwest's message names the URL (no credentials there) and the cause.
pub(crate) fn transport_error(error: &reqwest::Error, timeout: Duration) -> Error {
    let what = if error.is_timeout() {
        format!("no answer within {} ms", timeout.as_millis())
    } else if error.is_connect() {
        "could not connect".to_owned()
    } else {
        "the connection failed before the answer arrived".to_owned()
    };
    Error::Transient {
        message: format!("{what}: {error}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;
    use reqwest::header::HeaderValue;

    fn now() -> DateTime<Utc> {
        Utc.with_ymd_and_hms(2024, 2, 1, 8, 0, 0).unwrap()
    }

    fn ann() -> Email {
        Email::parse("ann@example.com").unwrap()
    }

    fn map(status: u16, body: &str, call: CallContext<'_>) -> Error {
        parse_error(status, &HeaderMap::new(), body.as_bytes(), &call, now())
    }

    fn read() -> CallContext<'static> {
        CallContext {
            schedule: Some("S1"),
            ..CallContext::default()
        }
    }

    #[test]
    fn statuses_decide_in_the_spec_shapes() {
        // 401 in the spec's UnauthorizedErrorResponse shape.
        let e = map(
            401,
            r#"{"code":401,"message":"Unauthorized; scope does not match"}"#,
            read(),
        );
        assert!(
            matches!(&e, Error::Unauthenticated { message } if message.contains("scope does not match"))
        );
        // 403 on a write, whatever the body: R8.
        let member = ann();
        let write = CallContext {
            write: true,
            schedule: Some("S1"),
            alias: None,
            member: Some(&member),
            people: false,
        };
        for body in [
            r#"{"errors":[{"title":"Forbidden","code":"FORBIDDEN"}]}"#,
            "",
            "<html>nope</html>",
            r#"{"message":"no"}"#,
        ] {
            let e = map(403, body, write);
            assert!(e.is_permission_denied(), "{body}: {e:?}");
            assert!(e.to_string().contains("read-only or lacks rights"));
        }
        // 403 on a schedule read: hidden from this account.
        let e = map(403, "", read());
        assert!(matches!(e, Error::NotFound { resource: Resource::Schedule(s), .. } if s == "S1"));
        // 404 with an alias: the override, unless the vendor names the schedule.
        let alias = CallContext {
            alias: Some("c73c3ffa"),
            ..read()
        };
        let e = map(404, r#"{"errors":[{"title":"Override not found"}]}"#, alias);
        assert!(
            matches!(e, Error::NotFound { resource: Resource::Override(a), .. } if a == "c73c3ffa")
        );
        let e = map(404, r#"{"errors":[{"title":"Schedule not found"}]}"#, alias);
        assert!(matches!(
            e,
            Error::NotFound {
                resource: Resource::Schedule(_),
                ..
            }
        ));
        // 422 naming the responder on a write naming a person: that person is unknown.
        let e = map(
            422,
            r#"{"errors":[{"title":"Responder user could not be found","code":"INVALID"}]}"#,
            write,
        );
        assert!(
            matches!(&e, Error::UnknownMember { email, message } if *email == member && message.contains("INVALID"))
        );
        // 404 to a create whose words name the responder: that person, not the schedule.
        let e = map(
            404,
            r#"{"errors":[{"title":"Responder user could not be found","code":"NOT_FOUND"}]}"#,
            write,
        );
        assert!(
            matches!(&e, Error::UnknownMember { email, .. } if *email == member),
            "{e:?}"
        );
        let e = map(404, r#"{"errors":[{"title":"Schedule not found"}]}"#, write);
        assert!(matches!(e, Error::NotFound { resource: Resource::Schedule(s), .. } if s == "S1"));
        // 403 from the site's user endpoints: the account may not look people up.
        let people = CallContext {
            people: true,
            ..CallContext::default()
        };
        for body in [
            r#"{"errorMessages":["You do not have the permission to see the specified users."],"errors":{}}"#,
            "",
        ] {
            let e = map(403, body, people);
            assert!(
                matches!(e, Error::PeopleLookupDenied { .. }),
                "{body}: {e:?}"
            );
        }
        // Other refusals stand as refusals, with the vendor's words.
        let e = map(
            422,
            r#"{"errors":[{"title":"End date must be in the future"}]}"#,
            write,
        );
        assert!(matches!(&e, Error::Rejected { message } if message.contains("End date")));
        assert!(matches!(map(409, "{}", write), Error::Conflict { .. }));
        assert!(
            matches!(map(503, "<html>busy</html>", read()), Error::Transient { message } if message.contains("busy"))
        );
        assert!(matches!(map(501, "", read()), Error::Unsupported { .. }));
        assert!(matches!(
            map(302, "", read()),
            Error::InvalidResponse { .. }
        ));
    }

    #[test]
    fn rate_limits_honour_retry_after_in_seconds_or_as_a_date() {
        let mut h = HeaderMap::new();
        h.insert("retry-after", HeaderValue::from_static("7"));
        let e = parse_error(429, &h, b"", &read(), now());
        assert!(
            matches!(e, Error::RateLimited { retry_after: Some(d), .. } if d == Duration::from_secs(7))
        );
        h.insert("retry-after", HeaderValue::from_static("0.5"));
        assert_eq!(retry_after(&h, now()), Some(Duration::from_millis(500)));
        h.insert(
            "retry-after",
            HeaderValue::from_static("Thu, 01 Feb 2024 08:00:30 GMT"),
        );
        h.insert(
            "date",
            HeaderValue::from_static("Thu, 01 Feb 2024 08:00:10 GMT"),
        );
        assert_eq!(retry_after(&h, now()), Some(Duration::from_secs(20)));
        h.insert("retry-after", HeaderValue::from_static("soon"));
        assert_eq!(retry_after(&h, now()), None);
        assert!(matches!(
            parse_error(429, &HeaderMap::new(), b"", &read(), now()),
            Error::RateLimited {
                retry_after: None,
                ..
            }
        ));
    }

    #[test]
    fn every_body_shape_is_read() {
        let jira = VendorError::read(br#"{"errorMessages":["The query parameter 'accountId' is required"],"errors":{"query":"bad"}}"#);
        assert_eq!(
            jira.describe(400),
            "HTTP 400: query: bad; The query parameter 'accountId' is required"
        );
        let spec = VendorError::read(
            br#"{"errors":[{"title":"size must be at most 25","code":"BAD_REQUEST"}]}"#,
        );
        assert!(spec.names_the_size() && !spec.names_a_person());
        assert_eq!(
            spec.describe(422),
            "HTTP 422: size must be at most 25 [code BAD_REQUEST]"
        );
        assert_eq!(VendorError::read(b"").describe(502), "HTTP 502");
    }
}
