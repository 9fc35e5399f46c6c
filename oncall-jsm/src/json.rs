//! Reading vendor JSON with the path of every value at hand: a malformed answer becomes an
//! [`Error::InvalidResponse`] naming the field (`values[2].startDate`), never a panic.
//!
//! Lenient where the vendor may be: unknown fields are ignored, optional fields may be absent or
//! `null`, instants may carry fractions of a second and any offset.

use chrono::{DateTime, Utc};
use oncall_core::Error;
use serde_json::Value;

/// A value in a vendor answer and where it sits.
#[derive(Debug, Clone)]
pub(crate) struct Node<'a> {
    value: &'a Value,
    path: String,
}

/// The error for a value at `path` that is not what was expected.
pub(crate) fn invalid(path: &str, what: impl std::fmt::Display) -> Error {
    Error::InvalidResponse {
        message: format!("{path}: {what}"),
    }
}

/// Parses a whole answer body; one that is not JSON is an error at the root (`$`).
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

    /// Whether the field is present at all (even as `null`).
    pub(crate) fn has(&self, key: &str) -> bool {
        self.value.as_object().is_some_and(|o| o.contains_key(key))
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

    /// An optional string field.
    pub(crate) fn opt_str(&self, key: &str) -> Result<Option<&'a str>, Error> {
        self.opt(key)?.map(|n| n.str()).transpose()
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
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn errors_name_the_field_path() {
        let v = json!({"values": [{"startDate": "2024-01-01T00:00:00Z"}, {"alias": 3}]});
        let root = Node::root(&v);
        let items = root.field("values").unwrap().items().unwrap();
        assert!(items[0].field("startDate").unwrap().instant().is_ok());
        assert_eq!(
            items[1].field("startDate").unwrap_err().to_string(),
            "invalid vendor response: values[1].startDate: missing"
        );
        assert!(items[1]
            .field("alias")
            .unwrap()
            .str()
            .unwrap_err()
            .to_string()
            .contains("values[1].alias: expected a string"));
        assert!(parse_body(b"<html>")
            .unwrap_err()
            .to_string()
            .contains("$: not JSON"));
        assert!(Node::root(&json!([1])).opt("x").is_err(), "not an object");
    }

    #[test]
    fn lenient_where_the_vendor_may_be() {
        let v = json!({"a": null, "when": "2024-02-01T08:11:21.263Z", "at": "2023-11-27T05:00:00+02:00",
                       "n": 2.0, "flag": false});
        let root = Node::root(&v);
        assert!(root.opt("a").unwrap().is_none() && root.has("a") && !root.has("b"));
        assert!(root.opt_items("a").unwrap().is_empty());
        assert_eq!(
            root.field("when")
                .unwrap()
                .instant()
                .unwrap()
                .timestamp_subsec_millis(),
            263
        );
        assert_eq!(
            root.field("at").unwrap().instant().unwrap().to_rfc3339(),
            "2023-11-27T03:00:00+00:00"
        );
        assert_eq!(root.field("n").unwrap().u32().unwrap(), 2);
        assert!(!root.field("flag").unwrap().bool().unwrap());
        assert_eq!(root.opt_str("missing").unwrap(), None);
    }
}
