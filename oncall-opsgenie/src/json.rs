//! Reading vendor JSON with the path of every value at hand, so that a malformed answer becomes an
//! [`Error::InvalidResponse`] naming the field (`data.rotations[2].startDate`), not a line and column.
//!
//! Lenient where the vendor is: unknown fields are ignored, optional fields may be absent or `null`,
//! instants may carry fractions of a second and any offset.

use chrono::{DateTime, Utc};
use oncall_core::{Email, Error};
use serde_json::Value;

/// A value in a vendor answer and where it sits.
#[derive(Debug, Clone)]
pub(crate) struct Node<'a> {
    value: &'a Value,
    path: String,
}

/// The error for a value at `path` that is not what we expected.
pub(crate) fn invalid(path: &str, what: impl std::fmt::Display) -> Error {
    Error::InvalidResponse {
        message: format!("{path}: {what}"),
    }
}

/// Parses a whole answer body; a body that is not JSON is an error at the root (`$`).
pub(crate) fn parse_body(body: &[u8]) -> Result<Value, Error> {
    serde_json::from_slice(body).map_err(|e| invalid("$", format_args!("not JSON ({e})")))
}

impl<'a> Node<'a> {
    /// The root of an answer.
    pub(crate) fn root(value: &'a Value) -> Node<'a> {
        Node {
            value,
            path: String::new(),
        }
    }

    /// Where this value sits (`$` for the root).
    pub(crate) fn path(&self) -> &str {
        if self.path.is_empty() {
            "$"
        } else {
            &self.path
        }
    }

    fn child(&self, key: &str) -> String {
        if self.path.is_empty() {
            key.to_owned()
        } else {
            format!("{}.{key}", self.path)
        }
    }

    /// A field that must be there (and not `null`).
    pub(crate) fn field(&self, key: &str) -> Result<Node<'a>, Error> {
        self.opt(key)?
            .ok_or_else(|| invalid(&self.child(key), "missing"))
    }

    /// A field that may be absent or `null`. The value itself must be an object.
    pub(crate) fn opt(&self, key: &str) -> Result<Option<Node<'a>>, Error> {
        let object = self
            .value
            .as_object()
            .ok_or_else(|| invalid(self.path(), "expected an object"))?;
        Ok(object.get(key).filter(|v| !v.is_null()).map(|value| Node {
            value,
            path: self.child(key),
        }))
    }

    /// The items of an array.
    pub(crate) fn items(&self) -> Result<Vec<Node<'a>>, Error> {
        let items = self
            .value
            .as_array()
            .ok_or_else(|| invalid(self.path(), "expected an array"))?;
        Ok(items
            .iter()
            .enumerate()
            .map(|(i, value)| Node {
                value,
                path: format!("{}[{i}]", self.path()),
            })
            .collect())
    }

    /// The items of an optional array field (absent or `null`: none).
    pub(crate) fn opt_items(&self, key: &str) -> Result<Vec<Node<'a>>, Error> {
        self.opt(key)?.map_or(Ok(Vec::new()), |n| n.items())
    }

    /// A string.
    pub(crate) fn str(&self) -> Result<&'a str, Error> {
        self.value
            .as_str()
            .ok_or_else(|| invalid(self.path(), "expected a string"))
    }

    /// A number.
    pub(crate) fn f64(&self) -> Result<f64, Error> {
        self.value
            .as_f64()
            .ok_or_else(|| invalid(self.path(), "expected a number"))
    }

    /// A whole number from 0 to `u32::MAX` (a vendor may write `1.0`).
    pub(crate) fn u32(&self) -> Result<u32, Error> {
        let n = self.f64()?;
        if n.fract() != 0.0 || !(0.0..=f64::from(u32::MAX)).contains(&n) {
            return Err(invalid(
                self.path(),
                format_args!("expected a count, got {n}"),
            ));
        }
        Ok(n as u32)
    }

    /// A boolean.
    pub(crate) fn bool(&self) -> Result<bool, Error> {
        self.value
            .as_bool()
            .ok_or_else(|| invalid(self.path(), "expected true or false"))
    }

    /// An instant: RFC 3339 with any offset and any fraction of a second.
    pub(crate) fn instant(&self) -> Result<DateTime<Utc>, Error> {
        let text = self.str()?;
        DateTime::parse_from_rfc3339(text)
            .map(|t| t.with_timezone(&Utc))
            .map_err(|e| {
                invalid(
                    self.path(),
                    format_args!("{text:?} is not a date-time ({e})"),
                )
            })
    }

    /// An email address (Opsgenie usernames are the users' login emails).
    pub(crate) fn email(&self) -> Result<Email, Error> {
        let text = self.str()?;
        Email::parse(text).map_err(|e| invalid(self.path(), e))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn errors_name_the_field_path() {
        let v =
            json!({"data": {"rotations": [{"startDate": "2024-01-01T00:00:00Z"}, {"type": 3}]}});
        let root = Node::root(&v);
        let rotations = root.field("data").unwrap().field("rotations").unwrap();
        let items = rotations.items().unwrap();
        assert!(items[0].field("startDate").unwrap().instant().is_ok());
        let missing = items[1].field("startDate").unwrap_err();
        assert_eq!(
            missing.to_string(),
            "invalid vendor response: data.rotations[1].startDate: missing"
        );
        let wrong = items[1].field("type").unwrap().str().unwrap_err();
        assert!(wrong
            .to_string()
            .contains("data.rotations[1].type: expected a string"));
        assert!(root.field("took").is_err());
        assert!(parse_body(b"{oops")
            .unwrap_err()
            .to_string()
            .contains("$: not JSON"));
    }

    #[test]
    fn lenient_where_the_vendor_is() {
        let v = json!({"a": null, "when": "2020-06-22T11:30:14.401Z", "offset": "2017-01-15T08:00:00+02:00",
                       "n": 1.0, "user": "Ada@Example.com"});
        let root = Node::root(&v);
        assert!(root.opt("a").unwrap().is_none(), "null is absent");
        assert!(root.opt_items("a").unwrap().is_empty());
        let t = root.field("when").unwrap().instant().unwrap();
        assert_eq!(t.timestamp_subsec_millis(), 401);
        let o = root.field("offset").unwrap().instant().unwrap();
        assert_eq!(o.to_rfc3339(), "2017-01-15T06:00:00+00:00");
        assert_eq!(root.field("n").unwrap().u32().unwrap(), 1);
        assert_eq!(
            root.field("user").unwrap().email().unwrap().as_str(),
            "ada@example.com"
        );
    }
}
