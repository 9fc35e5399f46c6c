//! Recording a run's HTTP traffic for a bug report (`--trace-http FILE`), with secrets and e-mail
//! addresses redacted.
//!
//! Adapters hand every exchange to an [`HttpTrace`] with their own secrets already scrubbed
//! (`Authorization` and other credential headers replaced, the key removed wherever it is echoed:
//! [`crate::ApiKey::redact_in`]). A sink then redacts people: [`Redactor`] replaces each e-mail
//! address with a stable placeholder (the same address, the same placeholder, across the run), so
//! a trace still shows who is who without saying who anyone is.

use std::collections::HashMap;
use std::fmt;

use serde::{Deserialize, Serialize};

/// One request and what came back.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct HttpExchange {
    /// `GET`, `POST`, ...
    pub method: String,
    /// The full URL with its query.
    pub url: String,
    /// Request headers, credentials replaced by `***`.
    pub request_headers: Vec<(String, String)>,
    /// The request body, if any.
    pub request_body: Option<String>,
    /// The status, when an answer came.
    pub status: Option<u16>,
    /// Response headers.
    pub response_headers: Vec<(String, String)>,
    /// The response body, if any.
    pub response_body: Option<String>,
    /// Why no answer came (a timeout, a refused connection).
    pub error: Option<String>,
    /// Milliseconds from sending to the answer (or the failure).
    pub elapsed_ms: u64,
}

/// Where an adapter records its exchanges.
///
/// # Contract
///
/// Adapters call [`HttpTrace::record`] once per HTTP attempt (retries are attempts), after
/// scrubbing their credentials from it; implementations must not block for long (they run on the
/// request path) and must redact e-mail addresses before anything leaves the process
/// ([`Redactor`]).
pub trait HttpTrace: Send + Sync + fmt::Debug {
    /// Records one exchange.
    fn record(&self, exchange: HttpExchange);
}

/// Headers whose values are credentials in some vendor's API: replaced whole by `***`.
pub const CREDENTIAL_HEADERS: &[&str] = &["authorization", "proxy-authorization", "cookie"];

/// Replaces the values of [`CREDENTIAL_HEADERS`] by `***`.
///
/// ```
/// use oncall_core::trace::scrub_credential_headers;
/// let mut headers = vec![
///     ("Authorization".to_owned(), "GenieKey abc".to_owned()),
///     ("Accept".to_owned(), "application/json".to_owned()),
/// ];
/// scrub_credential_headers(&mut headers);
/// assert_eq!(headers[0].1, "***");
/// assert_eq!(headers[1].1, "application/json");
/// ```
pub fn scrub_credential_headers(headers: &mut [(String, String)]) {
    for (name, value) in headers.iter_mut() {
        if CREDENTIAL_HEADERS
            .iter()
            .any(|c| name.eq_ignore_ascii_case(c))
        {
            *value = "***".to_owned();
        }
    }
}

/// Replaces e-mail addresses with stable placeholders (`person-1@redacted.invalid`, ...), in
/// plain and percent-encoded text (`alice%40example.com` in a query). Case-insensitive: one
/// person, one placeholder.
///
/// ```
/// use oncall_core::trace::Redactor;
/// let mut r = Redactor::default();
/// assert_eq!(
///     r.redact("{\"username\":\"Alice@Example.com\"} ?query=alice%40example.com bob@x.io"),
///     "{\"username\":\"person-1@redacted.invalid\"} ?query=person-1%40redacted.invalid person-2@redacted.invalid"
/// );
/// ```
#[derive(Debug, Default, Clone)]
pub struct Redactor {
    placeholders: HashMap<String, usize>,
}

impl Redactor {
    /// `text` with every e-mail address replaced.
    pub fn redact(&mut self, text: &str) -> String {
        let mut out = String::with_capacity(text.len());
        let mut rest = text;
        while let Some((before, found, encoded, after)) = next_email(rest) {
            out.push_str(before);
            let n = self.placeholder(&found);
            let at = if encoded { "%40" } else { "@" };
            out.push_str(&format!("person-{n}{at}redacted.invalid"));
            rest = after;
        }
        out.push_str(rest);
        out
    }

    /// Every text field of `exchange` redacted.
    pub fn redact_exchange(&mut self, mut exchange: HttpExchange) -> HttpExchange {
        exchange.url = self.redact(&exchange.url);
        for (_, value) in exchange
            .request_headers
            .iter_mut()
            .chain(exchange.response_headers.iter_mut())
        {
            *value = self.redact(value);
        }
        for body in [
            &mut exchange.request_body,
            &mut exchange.response_body,
            &mut exchange.error,
        ]
        .into_iter()
        .flatten()
        {
            *body = self.redact(body);
        }
        exchange
    }

    fn placeholder(&mut self, email: &str) -> usize {
        let next = self.placeholders.len() + 1;
        *self
            .placeholders
            .entry(email.to_ascii_lowercase())
            .or_insert(next)
    }
}

fn is_local_char(c: char) -> bool {
    c.is_ascii_alphanumeric() || "._%+-'".contains(c)
}

fn is_domain_char(c: char) -> bool {
    c.is_ascii_alphanumeric() || c == '-' || c == '.'
}

/// The next address in `text`: (text before it, the address, whether its `@` was `%40`, text
/// after it).
fn next_email(text: &str) -> Option<(&str, String, bool, &str)> {
    let mut search_from = 0;
    loop {
        let rest = text.get(search_from..)?;
        let (offset, sep_len, encoded) = match (rest.find('@'), rest.find("%40")) {
            (Some(a), Some(p)) if p < a => (p, 3, true),
            (Some(a), _) => (a, 1, false),
            (None, Some(p)) => (p, 3, true),
            (None, None) => return None,
        };
        let at = search_from + offset;
        let local_start = text[..at]
            .char_indices()
            .rev()
            .take_while(|&(_, c)| is_local_char(c))
            .last()
            .map(|(i, _)| i);
        let domain_start = at + sep_len;
        let domain_len = text[domain_start..]
            .char_indices()
            .take_while(|&(_, c)| is_domain_char(c))
            .last()
            .map(|(i, c)| i + c.len_utf8())
            .unwrap_or(0);
        let domain = text[domain_start..domain_start + domain_len].trim_end_matches('.');
        match local_start {
            Some(start) if domain.contains('.') && !domain.starts_with('.') => {
                let end = domain_start + domain.len();
                let local = &text[start..at];
                let email = format!("{local}@{domain}");
                return Some((&text[..start], email, encoded, &text[end..]));
            }
            _ => search_from = at + sep_len,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn leaves_text_without_addresses_alone() {
        let mut r = Redactor::default();
        for text in [
            "",
            "no at sign",
            "a @ b",
            "@",
            "x@y",
            "%40",
            "user@localhost",
        ] {
            assert_eq!(r.redact(text), text);
        }
    }

    #[test]
    fn one_person_one_placeholder_across_texts() {
        let mut r = Redactor::default();
        assert_eq!(
            r.redact("a.b+c@ex-ample.org."),
            "person-1@redacted.invalid."
        );
        assert_eq!(r.redact("A.B+C@EX-AMPLE.ORG"), "person-1@redacted.invalid");
        assert_eq!(r.redact("d@e.fr"), "person-2@redacted.invalid");
    }

    #[test]
    fn redacts_every_field_of_an_exchange() {
        let mut r = Redactor::default();
        let exchange = HttpExchange {
            method: "GET".into(),
            url: "https://api.pagerduty.com/users?query=ann%40example.com".into(),
            request_headers: vec![("From".into(), "ann@example.com".into())],
            request_body: Some("{\"email\":\"ann@example.com\"}".into()),
            status: Some(200),
            response_headers: vec![],
            response_body: Some("[\"bob@example.com\"]".into()),
            error: None,
            elapsed_ms: 3,
        };
        let text = serde_json::to_string(&r.redact_exchange(exchange)).unwrap_or_default();
        assert!(!text.contains("example.com"), "{text}");
        assert!(text.contains("person-1%40redacted.invalid"), "{text}");
        assert!(text.contains("person-2@redacted.invalid"), "{text}");
    }
}
