//! PagerDuty's wire types, read leniently: unknown fields are ignored, arrays default to empty,
//! timestamps take any offset and fractional seconds. Of users only `id`, `name` and `email` are
//! declared, so nothing else a user record carries (phone numbers, contact methods) is ever kept.
//!
//! Schedule and override bodies are decoded in two steps: JSON to a [`Value`], then each part to
//! its type, so that a malformed answer is reported with the path of the field that was wrong
//! (`schedule.schedule_layers[1].rotation_turn_length_seconds: missing field`), not a line and
//! column. Pages of lists and user records are decoded straight from the bytes into their types
//! ([`decode_page`], [`decode_user`]), so that nothing of a user but id, name and email is ever
//! held, not even for a moment in a [`Value`] (R10); a failing item is still named by its index.

use chrono::{DateTime, Utc};
use oncall_core::Error;
use std::cell::Cell;
use std::marker::PhantomData;

use serde::de::{
    self, DeserializeOwned, DeserializeSeed, Deserializer, IgnoredAny, MapAccess, SeqAccess,
    Visitor,
};
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

/// Decodes a page of a classic list straight from the bytes: the items under `key` as `T`, and
/// `more` (a missing `more` ends the list, as the reference clients do, rather than looping).
///
/// No [`Value`] is built on the way: every other field, of the page and of its items, is skipped
/// unread, so a user record is never held with more than `T`'s fields (of users, id, name and
/// email: R10). An item that fails is named by its index (`users[3]`).
pub(crate) fn decode_page<T: DeserializeOwned>(
    body: &[u8],
    key: &'static str,
) -> Result<Page<T>, Error> {
    let failed = Cell::new(None);
    let seed = PageSeed::<T> {
        key,
        failed: &failed,
        item: PhantomData,
    };
    let mut reader = serde_json::Deserializer::from_slice(body);
    let page = seed
        .deserialize(&mut reader)
        .and_then(|page| reader.end().map(|()| page));
    page.map_err(|e| {
        let path = match failed.get() {
            Some(i) => format!("{key}[{i}]"),
            None => key.to_owned(),
        };
        if e.is_syntax() || e.is_eof() {
            invalid(&path, format!("not JSON ({e})"))
        } else {
            invalid(&path, e)
        }
    })
}

/// One user's answer (`GET /users/{id}`: `{"user": {...}}`), decoded straight into [`User`].
pub(crate) fn decode_user(body: &[u8]) -> Result<User, Error> {
    #[derive(Deserialize)]
    struct Answer {
        user: User,
    }
    serde_json::from_slice::<Answer>(body)
        .map(|a| a.user)
        .map_err(|e| invalid("user", e))
}

/// Reads `{"<key>": [items], "more": bool, ...}`, skipping every other field.
struct PageSeed<'a, T> {
    key: &'static str,
    /// The index of the item that failed to decode, if one did.
    failed: &'a Cell<Option<usize>>,
    item: PhantomData<T>,
}

impl<'de, T: DeserializeOwned> DeserializeSeed<'de> for PageSeed<'_, T> {
    type Value = Page<T>;

    fn deserialize<D: Deserializer<'de>>(self, deserializer: D) -> Result<Page<T>, D::Error> {
        deserializer.deserialize_map(self)
    }
}

impl<'de, T: DeserializeOwned> Visitor<'de> for PageSeed<'_, T> {
    type Value = Page<T>;

    fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "a page with a `{}` list", self.key)
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Page<T>, A::Error> {
        let (mut items, mut more) = (None, false);
        while let Some(field) = map.next_key::<String>()? {
            if field == self.key {
                items = Some(map.next_value_seed(ItemsSeed::<T> {
                    failed: self.failed,
                    item: PhantomData,
                })?);
            } else if field == "more" {
                more = map.next_value::<Option<bool>>()?.unwrap_or(false);
            } else {
                map.next_value::<IgnoredAny>()?;
            }
        }
        let items = items.ok_or_else(|| de::Error::missing_field(self.key))?;
        Ok(Page { items, more })
    }
}

/// Reads a list item by item, noting the index of the first that fails.
struct ItemsSeed<'a, T> {
    failed: &'a Cell<Option<usize>>,
    item: PhantomData<T>,
}

impl<'de, T: DeserializeOwned> DeserializeSeed<'de> for ItemsSeed<'_, T> {
    type Value = Vec<T>;

    fn deserialize<D: Deserializer<'de>>(self, deserializer: D) -> Result<Vec<T>, D::Error> {
        deserializer.deserialize_seq(self)
    }
}

impl<'de, T: DeserializeOwned> Visitor<'de> for ItemsSeed<'_, T> {
    type Value = Vec<T>;

    fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("a list")
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Vec<T>, A::Error> {
        let mut items = Vec::with_capacity(seq.size_hint().unwrap_or(0).min(PAGE_HINT));
        loop {
            match seq.next_element::<T>() {
                Ok(Some(item)) => items.push(item),
                Ok(None) => return Ok(items),
                Err(e) => {
                    self.failed.set(Some(items.len()));
                    return Err(e);
                }
            }
        }
    }
}

/// Most items a page holds (PagerDuty's `limit` maximum): a bound on what a hint reserves.
const PAGE_HINT: usize = 100;

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
    fn users_decode_straight_into_id_name_email() {
        let page = br#"{"users":[
            {"id":"P1","type":"user","name":"Ann","email":"ann@example.com","time_zone":"UTC",
             "contact_methods":[{"type":"phone_contact_method","address":"+15555550100"}],
             "notification_rules":[{"id":"N1","urgency":"high"}]},
            {"id":"P2","email":"bob@example.com","name":null}],
            "limit":100,"offset":0,"more":true,"total":null}"#;
        let page = decode_page::<User>(page, "users").unwrap();
        assert!(page.more);
        assert_eq!(
            format!("{:?}", page.items),
            r#"[User { id: "P1", name: Some("Ann"), email: "ann@example.com" }, User { id: "P2", name: None, email: "bob@example.com" }]"#
        );
        let bad = br#"{"users":[{"id":"P1","email":"a@x.io"},{"id":"P2","name":"No Email"}],"more":false}"#;
        let e = decode_page::<User>(bad, "users").unwrap_err();
        assert!(
            matches!(&e, Error::InvalidResponse { message } if message.contains("`users[1]`") && message.contains("email")),
            "{e}"
        );
        let e = decode_page::<User>(br#"{"more":false}"#, "users").unwrap_err();
        assert!(e.to_string().contains("`users`"), "{e}");
        let e = decode_page::<User>(br#"{"users":[{"id":"#, "users").unwrap_err();
        assert!(e.to_string().contains("not JSON"), "{e}");
        let one = br#"{"user":{"id":"P9","name":"Cat","email":"cat@example.com","contact_methods":[{"address":"+15555550101"}]}}"#;
        assert_eq!(
            decode_user(one).unwrap(),
            User {
                id: "P9".into(),
                name: Some("Cat".into()),
                email: "cat@example.com".into()
            }
        );
        let e = decode_user(br#"{"user":{"id":"P9"}}"#).unwrap_err();
        assert!(
            e.to_string().contains("`user`") && e.to_string().contains("email"),
            "{e}"
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
