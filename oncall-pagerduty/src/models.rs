//! PagerDuty's wire types, read leniently: unknown fields are ignored, arrays default to empty,
//! timestamps take any offset and fractional seconds. Of users only `id`, `name` and `email` are
//! declared, so nothing else a user record carries (phone numbers, contact methods) is ever kept.
//!
//! Bodies are decoded in two steps: JSON to a [`Value`], then each part to its type, so that a
//! malformed answer is reported with the path of the field that was wrong
//! (`schedule.schedule_layers[1].rotation_turn_length_seconds: missing field`), not a line and column.

use chrono::{DateTime, Utc};
use oncall_core::Error;
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::error::invalid;

/// A reference to a user (`user_reference`), as schedules and overrides carry it.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize, Serialize)]
pub(crate) struct UserRef {
    pub(crate) id: String,
    /// The user's name, when the vendor adds it.
    #[serde(default)]
    pub(crate) summary: Option<String>,
}

/// A user of the account: the three fields this library reads (DESIGN §1, R10).
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub(crate) struct User {
    pub(crate) id: String,
    #[serde(default)]
    pub(crate) name: Option<String>,
    pub(crate) email: String,
}

/// An override as listed or created.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub(crate) struct WireOverride {
    #[serde(default)]
    pub(crate) id: Option<String>,
    pub(crate) start: DateTime<Utc>,
    pub(crate) end: DateTime<Utc>,
    pub(crate) user: UserRef,
}

/// One entry of a rendered (sub)schedule.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub(crate) struct Entry {
    pub(crate) start: DateTime<Utc>,
    pub(crate) end: DateTime<Utc>,
    /// Absent or null for a stretch nobody covers (v2 omits those, but be lenient).
    #[serde(default)]
    pub(crate) user: Option<UserRef>,
}

/// A restriction of a layer: `daily_restriction` or `weekly_restriction`.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub(crate) struct WireRestriction {
    #[serde(rename = "type")]
    pub(crate) kind: String,
    /// `HH:mm:ss` in the request's time zone.
    pub(crate) start_time_of_day: String,
    pub(crate) duration_seconds: u32,
    /// ISO weekday, 1 = Monday; weekly restrictions only.
    #[serde(default)]
    pub(crate) start_day_of_week: Option<u32>,
}

/// A layer member: `{"user": {...}}`.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub(crate) struct LayerUser {
    pub(crate) user: UserRef,
}

/// A schedule layer.
#[derive(Debug, Clone, PartialEq, Deserialize)]
pub(crate) struct Layer {
    #[serde(default)]
    pub(crate) id: Option<String>,
    #[serde(default)]
    pub(crate) name: Option<String>,
    pub(crate) start: chrono::DateTime<chrono::FixedOffset>,
    #[serde(default)]
    pub(crate) end: Option<chrono::DateTime<chrono::FixedOffset>>,
    pub(crate) rotation_virtual_start: chrono::DateTime<chrono::FixedOffset>,
    pub(crate) rotation_turn_length_seconds: i64,
    #[serde(default)]
    pub(crate) users: Vec<LayerUser>,
    #[serde(default)]
    pub(crate) restrictions: Vec<WireRestriction>,
}

/// Schedule metadata, as listed and as read (layers and sub-schedules are decoded separately).
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub(crate) struct ScheduleHead {
    pub(crate) id: String,
    #[serde(rename = "type", default)]
    pub(crate) kind: Option<String>,
    #[serde(default)]
    pub(crate) name: Option<String>,
    pub(crate) time_zone: String,
    #[serde(default)]
    pub(crate) users: Vec<UserRef>,
}

/// One page of a classically paginated list: its items and whether more follow.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Page<T> {
    pub(crate) items: Vec<T>,
    pub(crate) more: bool,
}

/// An override to create, as the multi form takes it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub(crate) struct NewWireOverride {
    pub(crate) start: String,
    pub(crate) end: String,
    pub(crate) user: NewUserRef,
}

/// `{"id": ..., "type": "user_reference"}`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub(crate) struct NewUserRef {
    pub(crate) id: String,
    #[serde(rename = "type")]
    pub(crate) kind: &'static str,
}

/// One per-item result of a batch create, whichever documented shape it came in.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct CreateResult {
    /// The item's own status; `None` when the vendor answered bare overrides (all created).
    pub(crate) status: Option<u16>,
    pub(crate) errors: Vec<String>,
    /// The override as the vendor echoes it (no `id` when the item failed).
    pub(crate) created: Option<WireOverride>,
}

/// Wire form of an instant: RFC 3339 in UTC, whole seconds.
pub(crate) fn wire_time(t: DateTime<Utc>) -> String {
    t.format("%Y-%m-%dT%H:%M:%SZ").to_string()
}

/// Parses a body as JSON.
pub(crate) fn json(body: &[u8], what: &str) -> Result<Value, Error> {
    serde_json::from_slice(body).map_err(|e| invalid(what, format!("not JSON ({e})")))
}

/// The value at `path` (dot-separated object keys), or an error naming it.
pub(crate) fn at<'a>(value: &'a Value, path: &str) -> Result<&'a Value, Error> {
    path.split('.')
        .try_fold(value, |v, key| v.get(key))
        .filter(|v| !v.is_null())
        .ok_or_else(|| invalid(path, "missing"))
}

/// Decodes one value, naming `path` in the error.
pub(crate) fn decode<T: DeserializeOwned>(value: &Value, path: &str) -> Result<T, Error> {
    T::deserialize(value).map_err(|e| invalid(path, e))
}

/// Decodes the array at `path` item by item, naming `path[i]` in an error.
pub(crate) fn decode_items<T: DeserializeOwned>(root: &Value, path: &str) -> Result<Vec<T>, Error> {
    let Value::Array(items) = at(root, path)? else {
        return Err(invalid(path, "not an array"));
    };
    items
        .iter()
        .enumerate()
        .map(|(i, item)| decode(item, &format!("{path}[{i}]")))
        .collect()
}

/// The optional array at `path`: missing or null is empty.
pub(crate) fn decode_optional_items<T: DeserializeOwned>(
    root: &Value,
    path: &str,
) -> Result<Vec<T>, Error> {
    match path.split('.').try_fold(root, |v, key| v.get(key)) {
        None | Some(Value::Null) => Ok(Vec::new()),
        Some(_) => decode_items(root, path),
    }
}

/// Decodes a page of a classic list: the items under `key`, and `more` (a missing `more` ends the
/// list, as the reference clients do, rather than looping).
pub(crate) fn decode_page<T: DeserializeOwned>(body: &[u8], key: &str) -> Result<Page<T>, Error> {
    let root = json(body, key)?;
    Ok(Page {
        items: decode_items(&root, key)?,
        more: root.get("more").and_then(Value::as_bool).unwrap_or(false),
    })
}

/// Reads a batch-create answer in every shape seen documented: a top-level array of
/// `{status, errors?, override}` (the spec), `{"overrides": [...]}` with status objects or bare
/// overrides (the v2→v3 guide), or `{"override": {...}}` (the deprecated single form).
pub(crate) fn decode_create_results(root: &Value) -> Result<Vec<CreateResult>, Error> {
    let (items, path): (Vec<&Value>, &str) = match root {
        Value::Array(items) => (items.iter().collect(), ""),
        Value::Object(map) => match (map.get("overrides"), map.get("override")) {
            (Some(Value::Array(items)), _) => (items.iter().collect(), "overrides"),
            (_, Some(single @ Value::Object(_))) => (vec![single], "override"),
            _ => {
                return Err(invalid(
                    "overrides",
                    "neither a list of results nor an override",
                ))
            }
        },
        _ => return Err(invalid("", "neither a list of results nor an override")),
    };
    items
        .into_iter()
        .enumerate()
        .map(|(i, item)| create_result(item, &format!("{path}[{i}]")))
        .collect()
}

fn create_result(item: &Value, path: &str) -> Result<CreateResult, Error> {
    let status = item.get("status").and_then(Value::as_u64);
    if status.is_none() && item.get("override").is_none() {
        // A bare override: it was created.
        return Ok(CreateResult {
            status: None,
            errors: Vec::new(),
            created: Some(decode(item, path)?),
        });
    }
    let errors = match item.get("errors") {
        Some(Value::Array(e)) => e
            .iter()
            .filter_map(Value::as_str)
            .map(str::to_owned)
            .collect(),
        Some(Value::String(s)) => vec![s.clone()],
        _ => Vec::new(),
    };
    let created = match item.get("override") {
        None | Some(Value::Null) => None,
        Some(o) => Some(decode(o, &format!("{path}.override"))?),
    };
    Ok(CreateResult {
        status: status.and_then(|s| u16::try_from(s).ok()),
        errors,
        created,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn timestamps_take_offsets_and_fractions() {
        let o: WireOverride = serde_json::from_str(
            r#"{"id":"PQ47DCP","start":"2012-07-01T04:00:00.000Z","end":"2012-07-02T00:00:00-04:00",
                "user":{"id":"PEYSGVF","type":"user_reference","summary":"Aurelio Rice","self":"x"}}"#,
        )
        .unwrap();
        assert_eq!(o.end - o.start, chrono::TimeDelta::hours(24));
    }

    #[test]
    fn users_keep_only_id_name_email() {
        let u: User = serde_json::from_str(
            r#"{"id":"P1","type":"user","name":"Ann","email":"ann@example.com",
                "contact_methods":[{"type":"phone_contact_method","address":"+15555550100"}]}"#,
        )
        .unwrap();
        assert_eq!(
            format!("{u:?}"),
            r#"User { id: "P1", name: Some("Ann"), email: "ann@example.com" }"#
        );
    }

    #[test]
    fn errors_name_the_field_path() {
        let root: Value = serde_json::from_str(
            r#"{"overrides":[{"id":"A","start":"2024-01-01T00:00:00Z","end":"2024-01-02T00:00:00Z","user":{"id":"U"}},
                             {"id":"B","start":"2024-01-01T00:00:00Z","user":{"id":"U"}}]}"#,
        )
        .unwrap();
        let e = decode_items::<WireOverride>(&root, "overrides").unwrap_err();
        assert!(e.to_string().contains("`overrides[1]`"), "{e}");
        assert!(e.to_string().contains("end"), "{e}");
        let e = at(&root, "schedule.time_zone").unwrap_err();
        assert!(e.to_string().contains("`schedule.time_zone`"), "{e}");
        let e = json(b"{\"users\": [", "users").unwrap_err();
        assert!(matches!(e, Error::InvalidResponse { .. }), "{e}");
    }

    #[test]
    fn every_create_answer_shape() {
        let o = r#"{"id":"Q1","start":"2021-03-09T05:00:00Z","end":"2021-03-09T17:00:00Z","user":{"id":"P37CSDJ"}}"#;
        let failed = r#"{"status":400,"errors":["Override must end after its start"],"override":{"start":"2021-03-11T05:00:00Z","end":"2021-03-11T05:00:00Z","user":{"id":"P37CSDJ"}}}"#;
        let shapes = [
            format!(r#"[{{"status":201,"override":{o}}},{failed}]"#),
            format!(r#"{{"overrides":[{{"status":201,"override":{o}}},{failed}]}}"#),
        ];
        for shape in shapes {
            let results = decode_create_results(&serde_json::from_str(&shape).unwrap()).unwrap();
            assert_eq!(results.len(), 2, "{shape}");
            assert_eq!(results[0].status, Some(201));
            assert_eq!(
                results[0].created.as_ref().and_then(|o| o.id.as_deref()),
                Some("Q1")
            );
            assert_eq!(results[1].status, Some(400));
            assert_eq!(results[1].errors, ["Override must end after its start"]);
            assert_eq!(results[1].created.as_ref().and_then(|o| o.id.clone()), None);
        }
        for shape in [
            format!(r#"{{"overrides":[{o}]}}"#),
            format!(r#"{{"override":{o}}}"#),
        ] {
            let results = decode_create_results(&serde_json::from_str(&shape).unwrap()).unwrap();
            assert_eq!(results.len(), 1);
            assert_eq!(results[0].status, None, "bare overrides were created");
            assert!(results[0].created.is_some());
        }
        let e = decode_create_results(&serde_json::json!({"ok": true})).unwrap_err();
        assert!(matches!(e, Error::InvalidResponse { .. }));
    }
}
