//! The account's credentials: an Atlassian account e-mail and an API token, sent as HTTP Basic
//! auth (`base64(email:token)`, reference §1), and scrubbed from everything that leaves the adapter.
//!
//! The token is kept in the core's [`ApiKey`], which never shows it. The header value is base64 of
//! `email:token`, so an answer that echoes the header carries the token in that spelling: it is kept
//! as a second [`ApiKey`] and scrubbed too (with its percent-encoded and JSON-escaped spellings).
//!
//! Base64 is written here (about twenty lines, encode only, tested against RFC 4648's vectors)
//! rather than taken from a crate: one direction of a fixed alphabet is all Basic auth needs.

use oncall_core::{ApiKey, Error, ValidationError};

/// Encodes `bytes` as standard base64 with padding (RFC 4648 §4).
pub(crate) fn base64(bytes: &[u8]) -> String {
    const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = String::with_capacity(bytes.len().div_ceil(3) * 4);
    for chunk in bytes.chunks(3) {
        let b = [
            chunk[0],
            chunk.get(1).copied().unwrap_or(0),
            chunk.get(2).copied().unwrap_or(0),
        ];
        let n = (u32::from(b[0]) << 16) | (u32::from(b[1]) << 8) | u32::from(b[2]);
        let symbols = chunk.len() + 1;
        for i in 0..4 {
            if i < symbols {
                let index = (n >> (18 - 6 * i)) & 0x3f;
                out.push(char::from(ALPHABET[index as usize]));
            } else {
                out.push('=');
            }
        }
    }
    out
}

/// The e-mail and token of one connection, and the Basic header built from them.
#[derive(Clone)]
pub(crate) struct Credentials {
    token: ApiKey,
    /// `base64(email:token)`: the header's secret part, scrubbed like the token.
    basic: ApiKey,
}

impl std::fmt::Debug for Credentials {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // The e-mail is no secret, but it is a person's: traces redact it, and so does Debug.
        f.write_str("Credentials { email: ***, token: *** }")
    }
}

impl Credentials {
    /// Checks and keeps the pair. The e-mail must look like one (it is half of the login); the
    /// token follows the core's rules for keys (no white space or control characters).
    pub(crate) fn new(email: &str, token: ApiKey) -> Result<Credentials, Error> {
        let email = email.trim();
        if oncall_core::Email::parse(email).is_err() || email.contains(':') {
            return Err(ValidationError::InvalidEmail {
                value: email.to_owned(),
                reason: "the account e-mail of a JSM connection must be an e-mail address",
            }
            .into());
        }
        let basic = ApiKey::new(base64(format!("{email}:{}", token.expose()).as_bytes()))?;
        Ok(Credentials { token, basic })
    }

    /// `Basic <base64(email:token)>`.
    pub(crate) fn header_value(&self) -> String {
        format!("Basic {}", self.basic.expose())
    }

    /// `text` with the token and the encoded pair removed, in every spelling [`ApiKey`] knows.
    pub(crate) fn redact_in(&self, text: &str) -> String {
        self.token.redact_in(&self.basic.redact_in(text))
    }

    /// `error` with the token and the encoded pair removed from its message.
    pub(crate) fn redact_error(&self, error: Error) -> Error {
        self.token.redact_error(self.basic.redact_error(error))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rfc_4648_vectors() {
        let cases = [
            ("", ""),
            ("f", "Zg=="),
            ("fo", "Zm8="),
            ("foo", "Zm9v"),
            ("foob", "Zm9vYg=="),
            ("fooba", "Zm9vYmE="),
            ("foobar", "Zm9vYmFy"),
        ];
        for (plain, encoded) in cases {
            assert_eq!(base64(plain.as_bytes()), encoded, "{plain:?}");
        }
        // Every symbol of the alphabet, '+' and '/' included.
        assert_eq!(base64(&[0xfb, 0xff, 0xbf]), "+/+/");
    }

    #[test]
    fn the_token_and_its_header_are_scrubbed_and_never_shown() {
        let token = "ATATT3xFfGF0-tok/en+42";
        let c = Credentials::new("ops@example.com", ApiKey::new(token).unwrap()).unwrap();
        let header = c.header_value();
        assert_eq!(
            header,
            format!(
                "Basic {}",
                base64(format!("ops@example.com:{token}").as_bytes())
            )
        );
        let secret = header.trim_start_matches("Basic ");
        let echo = format!(
            "401: header was {header}; token {token}; json {}",
            secret.replace('/', "\\/")
        );
        let clean = c.redact_in(&echo);
        assert!(!clean.contains(token) && !clean.contains(secret), "{clean}");
        assert!(!format!("{c:?}").contains(token));
        assert!(!format!("{c:?}").contains("ops@example.com"));
        let e = c.redact_error(Error::Rejected { message: echo });
        assert!(!e.to_string().contains(token) && !e.to_string().contains(secret));
    }

    #[test]
    fn the_email_must_be_one() {
        let token = || ApiKey::new("t").unwrap();
        assert!(Credentials::new("not-an-email", token()).is_err());
        assert!(Credentials::new("a:b@example.com", token()).is_err());
        assert!(Credentials::new(" ops@example.com ", token()).is_ok());
    }
}
