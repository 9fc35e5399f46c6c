//! Layers read as PagerDuty renders them (issue 13, defect 3).
//!
//! Two points of a layer's meaning are UNCONFIRMED: whether turns of whole days hand off on the
//! wall clock or every so many absolute seconds, and whether `GET` lists layers highest precedence
//! first (the reverse of POST order) or in POST order. A `GET /schedules/{id}` with `since` and
//! `until` settles both for the account: it carries each layer's `rendered_schedule_entries` (what
//! PagerDuty makes of the layer) and the `final_schedule` (how the layers stack). The core's
//! expansion of each reading is compared with the first, the stacking of the vendor's own layer
//! renderings in each order with the second; the reading the vendor shows is taken, and where
//! neither reading matches, the documented one is kept and the difference reported.

use std::collections::HashMap;

use chrono::TimeDelta;
use chrono_tz::Tz;
use oncall_core::{Email, Error, OnCallPeriod, Rotation, Window};
use serde_json::Value;

use crate::models::{decode_optional_items, Entry, Layer};
use crate::translate::{coverage, divergence, layer_rotation, renders_as, stacked, Turns};

/// The window a schedule read renders to settle its layers: a week around the first handoff the
/// two readings of turns put apart (so the read tells them apart), else the week after the latest
/// layer's start.
pub(crate) fn check_window(layers: &[Layer], zone: Tz) -> Option<Window> {
    let first_apart = layers.iter().filter_map(|l| divergence(l, zone)).min();
    let start = match first_apart {
        Some(t) => t.checked_sub_signed(TimeDelta::days(2))?,
        None => layers
            .iter()
            .map(|l| l.start.with_timezone(&chrono::Utc))
            .max()?,
    };
    Window::new(start, start.checked_add_signed(TimeDelta::days(7))?).ok()
}

/// What a schedule read with `since`/`until` rendered: each layer's entries (by the layer's
/// position in the answer, and its id), the overrides layer, and the final schedule, as periods.
#[derive(Debug, Clone, Default)]
pub(crate) struct Rendered {
    pub(crate) layers: Vec<(Option<String>, Vec<OnCallPeriod>)>,
    pub(crate) overrides: Vec<OnCallPeriod>,
    pub(crate) final_schedule: Vec<OnCallPeriod>,
}

/// The user ids an answer's rendered entries name (to resolve before [`rendered`]).
pub(crate) fn entry_users(root: &Value) -> Result<Vec<String>, Error> {
    let mut ids = Vec::new();
    for entries in entry_lists(root)? {
        ids.extend(entries.into_iter().filter_map(|e| e.user.map(|u| u.id)));
    }
    Ok(ids)
}

fn entry_lists(root: &Value) -> Result<Vec<Vec<Entry>>, Error> {
    let mut lists = Vec::new();
    let layers = root
        .pointer("/schedule/schedule_layers")
        .and_then(Value::as_array)
        .map_or(0, Vec::len);
    for i in 0..layers {
        let layer = root
            .pointer(&format!("/schedule/schedule_layers/{i}"))
            .cloned()
            .unwrap_or(Value::Null);
        let wrapped = serde_json::json!({ "layer": layer });
        lists.push(decode_optional_items::<Entry>(
            &wrapped,
            "layer.rendered_schedule_entries",
        )?);
    }
    for sub in ["overrides_subschedule", "final_schedule"] {
        lists.push(decode_optional_items::<Entry>(
            root,
            &format!("schedule.{sub}.rendered_schedule_entries"),
        )?);
    }
    Ok(lists)
}

/// Reads the rendered entries of a schedule answer; `emails` resolves user ids (an entry of a user
/// it does not know is left out).
pub(crate) fn rendered(root: &Value, emails: &HashMap<String, Email>) -> Result<Rendered, Error> {
    let periods = |entries: Vec<Entry>| -> Vec<OnCallPeriod> {
        entries
            .into_iter()
            .filter_map(|e| {
                Some(OnCallPeriod {
                    start: e.start,
                    end: e.end,
                    member: emails.get(&e.user?.id)?.clone(),
                })
            })
            .collect()
    };
    let mut lists = entry_lists(root)?;
    let final_schedule = periods(lists.pop().unwrap_or_default());
    let overrides = periods(lists.pop().unwrap_or_default());
    let layers = lists
        .into_iter()
        .enumerate()
        .map(|(i, entries)| {
            let id = root
                .pointer(&format!("/schedule/schedule_layers/{i}/id"))
                .and_then(Value::as_str)
                .map(str::to_owned);
            (id, periods(entries))
        })
        .collect();
    Ok(Rendered {
        layers,
        overrides,
        final_schedule,
    })
}

/// What the vendor's rendering settled about a schedule's layers.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub(crate) struct LayerCheck {
    /// How turns of whole days advance, where a layer showed it (`None`: the rendering reads
    /// alike under both, or layers disagree).
    pub(crate) turns: Option<Turns>,
    /// Whether `GET` lists the highest-precedence layer first (`None`: the final schedule reads
    /// alike in both orders, e.g. layers that never overlap in the window).
    pub(crate) highest_first: Option<bool>,
    /// Layers the core's expansion of the reading taken does not render as PagerDuty does (names).
    pub(crate) unlike: Vec<String>,
    /// What was seen, for a person (each reading that matched, per layer).
    pub(crate) detail: String,
}

/// Compares the layers (in GET order) with their rendering over `window`.
pub(crate) fn check_layers(
    layers: &[Layer],
    zone: Tz,
    emails: &HashMap<String, Email>,
    rendered: &Rendered,
    window: Window,
) -> LayerCheck {
    let mut check = LayerCheck::default();
    let mut wall_only = Vec::new();
    let mut absolute_only = Vec::new();
    let mut notes = Vec::new();
    let entries = |i: usize, layer: &Layer| -> Vec<OnCallPeriod> {
        rendered
            .layers
            .iter()
            .find(|(id, _)| id.is_some() && *id == layer.id)
            .or_else(|| rendered.layers.get(i))
            .map(|(_, e)| e.clone())
            .unwrap_or_default()
    };
    let reads = |turns| -> Vec<Option<Rotation>> {
        layers
            .iter()
            .enumerate()
            .map(|(i, l)| {
                layer_rotation(l, zone, emails, &format!("schedule_layers[{i}]"), turns)
                    .ok()
                    .flatten()
            })
            .collect()
    };
    let (wall, absolute) = (reads(Turns::WallClock), reads(Turns::AbsoluteSeconds));
    for (i, layer) in layers.iter().enumerate() {
        let shown = entries(i, layer);
        let name = layer
            .name
            .clone()
            .or_else(|| layer.id.clone())
            .unwrap_or_else(|| format!("layer {i}"));
        let matches = |r: &Option<Rotation>| {
            r.as_ref()
                .is_some_and(|r| renders_as(r, zone, window, &shown))
        };
        match (matches(&wall[i]), matches(&absolute[i])) {
            (true, false) => {
                wall_only.push(name.clone());
                notes.push(format!("{name}: wall clock"));
            }
            (false, true) => {
                absolute_only.push(name.clone());
                notes.push(format!("{name}: absolute seconds"));
            }
            (true, true) => notes.push(format!("{name}: both readings alike")),
            (false, false) => {
                check.unlike.push(name.clone());
                notes.push(format!("{name}: neither reading renders as PagerDuty does"));
            }
        }
    }
    check.turns = match (wall_only.is_empty(), absolute_only.is_empty()) {
        (false, true) => Some(Turns::WallClock),
        (true, false) => Some(Turns::AbsoluteSeconds),
        _ => None,
    };
    // A layer that matched only the reading not taken renders unlike what is imported.
    match check.turns {
        Some(Turns::WallClock) => check.unlike.extend(absolute_only),
        Some(Turns::AbsoluteSeconds) => check.unlike.extend(wall_only),
        None if !wall_only.is_empty() => check.unlike.extend(absolute_only),
        None => {}
    }
    if layers.len() >= 2 {
        let shown: Vec<Vec<OnCallPeriod>> = layers
            .iter()
            .enumerate()
            .map(|(i, l)| entries(i, l))
            .collect();
        let mut order: Vec<&[OnCallPeriod]> = shown.iter().map(Vec::as_slice).collect();
        let final_schedule = coverage(rendered.final_schedule.clone(), window);
        let as_listed = stacked(&order, &rendered.overrides, window) == final_schedule;
        order.reverse();
        let reversed = stacked(&order, &rendered.overrides, window) == final_schedule;
        check.highest_first = match (as_listed, reversed) {
            (true, false) => Some(true),
            (false, true) => Some(false),
            _ => None,
        };
        notes.push(match check.highest_first {
            Some(true) => "the final schedule stacks the layers highest first as listed".into(),
            Some(false) => {
                "the final schedule stacks the layers in the reverse of the listing".into()
            }
            None if as_listed => "the final schedule reads alike in both orders".into(),
            None => "the final schedule matches neither order".into(),
        });
    }
    check.detail = notes.join("; ");
    check
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::{TimeZone, Utc};

    fn email(s: &str) -> Email {
        Email::parse(s).unwrap()
    }

    #[test]
    fn a_week_around_the_first_handoff_the_readings_put_apart() {
        let layer: Layer = serde_json::from_str(
            r#"{"id":"PL","start":"2024-03-01T09:00:00+01:00","rotation_virtual_start":"2024-03-01T09:00:00+01:00",
                "rotation_turn_length_seconds":86400,"users":[]}"#,
        )
        .unwrap();
        let w = check_window(std::slice::from_ref(&layer), chrono_tz::Europe::Berlin).unwrap();
        assert_eq!(
            w.start(),
            Utc.with_ymd_and_hms(2024, 3, 29, 7, 0, 0).unwrap()
        );
        assert_eq!(w.end() - w.start(), TimeDelta::days(7));
        let w = check_window(&[layer], chrono_tz::UTC).unwrap();
        assert_eq!(
            w.start(),
            Utc.with_ymd_and_hms(2024, 3, 1, 8, 0, 0).unwrap()
        );
        assert_eq!(check_window(&[], chrono_tz::UTC), None);
    }

    #[test]
    fn a_rendering_in_absolute_seconds_is_recognised() {
        // A daily layer from 2024-03-01 09:00 Berlin; PagerDuty renders the handoff after the
        // spring-forward at 10:00 CEST (08:00 UTC): absolute seconds.
        let layer: Layer = serde_json::from_str(
            r#"{"id":"PL","name":"Base","start":"2024-03-01T09:00:00+01:00",
                "rotation_virtual_start":"2024-03-01T09:00:00+01:00","rotation_turn_length_seconds":86400,
                "users":[{"user":{"id":"PA"}},{"user":{"id":"PB"}}]}"#,
        )
        .unwrap();
        let emails = HashMap::from([
            ("PA".to_owned(), email("a@x.io")),
            ("PB".to_owned(), email("b@x.io")),
        ]);
        let zone = chrono_tz::Europe::Berlin;
        let window = check_window(std::slice::from_ref(&layer), zone).unwrap();
        // Turn k runs from 2024-03-01 08:00 UTC + k days, a's when k is even: every day at 08:00
        // UTC, across the DST change too.
        let first = Utc.with_ymd_and_hms(2024, 3, 1, 8, 0, 0).unwrap();
        let absolute: Vec<OnCallPeriod> = (27..36)
            .map(|k| OnCallPeriod {
                start: first + TimeDelta::days(k),
                end: first + TimeDelta::days(k + 1),
                member: email(if k % 2 == 0 { "a@x.io" } else { "b@x.io" }),
            })
            .collect();
        let rendered = Rendered {
            layers: vec![(Some("PL".into()), absolute.clone())],
            ..Rendered::default()
        };
        let check = check_layers(
            std::slice::from_ref(&layer),
            zone,
            &emails,
            &rendered,
            window,
        );
        assert_eq!(check.turns, Some(Turns::AbsoluteSeconds), "{check:?}");
        assert!(check.unlike.is_empty(), "{check:?}");
        // Shifted by an hour from Mar 31 on: the wall clock.
        let wall: Vec<OnCallPeriod> = absolute
            .into_iter()
            .map(|mut p| {
                let dst = Utc.with_ymd_and_hms(2024, 3, 31, 1, 0, 0).unwrap();
                if p.start > dst {
                    p.start -= TimeDelta::hours(1);
                }
                if p.end > dst {
                    p.end -= TimeDelta::hours(1);
                }
                p
            })
            .collect();
        let rendered = Rendered {
            layers: vec![(Some("PL".into()), wall)],
            ..Rendered::default()
        };
        let check = check_layers(
            std::slice::from_ref(&layer),
            zone,
            &emails,
            &rendered,
            window,
        );
        assert_eq!(check.turns, Some(Turns::WallClock), "{check:?}");
        // Nothing rendered at all: neither reading.
        let check = check_layers(&[layer], zone, &emails, &Rendered::default(), window);
        assert_eq!((check.turns, check.unlike.len()), (None, 1), "{check:?}");
    }
}
