//! Overrides a person limited to some rotations (`rotations` on the wire): which ones are limited,
//! and the memory that sends their rotations back on every update.
//!
//! Why: an update is a full replace, and what Opsgenie does with a `PUT` that leaves `rotations`
//! out is UNCONFIRMED. If it resets the override to every rotation, cutting a running override
//! limited to one rotation would make its past apply to every rotation (an R1 violation). So every
//! `PUT` of a limited override sends its rotations back, as last listed or fetched.

use std::collections::HashMap;
use std::sync::{Mutex, MutexGuard};

use oncall_core::OverrideId;
use serde_json::{json, Value};

use crate::models::WireRotation;

/// A rotation an override names: by id, or by name when the vendor gave no id.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct RotationRef {
    pub id: Option<String>,
    pub name: Option<String>,
}

impl RotationRef {
    /// As a `PUT` body names it: by id where there is one.
    pub fn json(&self) -> Value {
        match (&self.id, &self.name) {
            (Some(id), _) => json!({ "id": id }),
            (None, name) => json!({ "name": name }),
        }
    }

    fn names(&self, rotation: &WireRotation) -> bool {
        self.id.as_deref() == Some(rotation.id.as_str())
            || (self.id.is_none() && self.name.as_deref() == Some(rotation.rotation.name.as_str()))
    }
}

/// Whether `rotations` limits an override on a schedule with `schedule` as its rotations: not when
/// it is empty, nor when it names every rotation (for an override of every rotation the vendor may
/// answer either: UNCONFIRMED, both are read as "every rotation").
pub(crate) fn limits(rotations: &[RotationRef], schedule: &[WireRotation]) -> bool {
    !rotations.is_empty()
        && !schedule
            .iter()
            .all(|r| rotations.iter().any(|x| x.names(r)))
}

/// The rotations of the limited overrides this provider (and its clones) last listed or fetched,
/// per schedule and alias. Bounded by what the vendor holds: each listing of a schedule replaces
/// what is remembered of it.
#[derive(Debug, Default)]
pub(crate) struct RotationMemory {
    limited: Mutex<HashMap<String, HashMap<OverrideId, Vec<RotationRef>>>>,
}

impl RotationMemory {
    fn lock(&self) -> MutexGuard<'_, HashMap<String, HashMap<OverrideId, Vec<RotationRef>>>> {
        self.limited.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// After a listing of the whole schedule: its limited overrides, and nothing else.
    pub fn listed(&self, schedule: &str, limited: HashMap<OverrideId, Vec<RotationRef>>) {
        let mut memory = self.lock();
        if limited.is_empty() {
            memory.remove(schedule);
        } else {
            memory.insert(schedule.to_owned(), limited);
        }
    }

    /// After a fetch of one override: its rotations if it is limited (`None`: every rotation, or
    /// the vendor no longer holds it).
    pub fn fetched(&self, schedule: &str, id: &OverrideId, limited: Option<Vec<RotationRef>>) {
        let mut memory = self.lock();
        match limited {
            Some(rotations) => {
                memory
                    .entry(schedule.to_owned())
                    .or_default()
                    .insert(id.clone(), rotations);
            }
            None => {
                if let Some(known) = memory.get_mut(schedule) {
                    known.remove(id);
                    if known.is_empty() {
                        memory.remove(schedule);
                    }
                }
            }
        }
    }

    /// The rotations to send back with an update of `id`; empty for an override of every rotation.
    pub fn of(&self, schedule: &str, id: &OverrideId) -> Vec<RotationRef> {
        self.lock()
            .get(schedule)
            .and_then(|known| known.get(id))
            .cloned()
            .unwrap_or_default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn r(id: &str) -> RotationRef {
        RotationRef {
            id: Some(id.into()),
            name: None,
        }
    }

    #[test]
    fn memory_follows_listings_and_fetches() {
        let m = RotationMemory::default();
        let (a, b) = (OverrideId::new("a"), OverrideId::new("b"));
        m.listed("S", HashMap::from([(a.clone(), vec![r("r1")])]));
        assert_eq!(m.of("S", &a), vec![r("r1")]);
        m.fetched("S", &b, Some(vec![r("r2")]));
        assert_eq!(m.of("S", &b), vec![r("r2")]);
        m.fetched("S", &a, None);
        assert!(m.of("S", &a).is_empty());
        // A new listing replaces what was remembered of the schedule.
        m.listed("S", HashMap::new());
        assert!(m.of("S", &b).is_empty());
        assert!(
            m.lock().is_empty(),
            "nothing kept for a schedule without limited overrides"
        );
    }
}
