//! What the simulated account holds, and PagerDuty's rules over it: layers stacked (the last in
//! POST order wins), overrides over every layer (the last created wins), deletes that truncate a
//! running override, refusals of what ends in the past. No HTTP here.

use std::collections::{BTreeMap, BTreeSet};

use chrono::{DateTime, TimeDelta, Utc};
use chrono_tz::Tz;
use oncall_core::testkit::{resolve_overlaps, Layered};
use oncall_core::{expand_rotation, Email, Participant, Rotation, Window};

/// A user of the account. The email keeps the case it was given.
#[derive(Debug, Clone)]
pub(crate) struct SimUser {
    pub(crate) id: String,
    pub(crate) name: String,
    pub(crate) email: String,
}

/// A layer: an id and a rotation (participants by email).
#[derive(Debug, Clone)]
pub(crate) struct SimLayer {
    pub(crate) id: String,
    pub(crate) rotation: Rotation,
}

/// An override as PagerDuty keeps it; `seq` is its creation order.
#[derive(Debug, Clone)]
pub(crate) struct SimOverride {
    pub(crate) id: String,
    pub(crate) start: DateTime<Utc>,
    pub(crate) end: DateTime<Utc>,
    pub(crate) user_id: String,
    pub(crate) seq: u64,
}

/// A layer-based schedule.
#[derive(Debug, Clone)]
pub(crate) struct SimSchedule {
    pub(crate) id: String,
    pub(crate) name: String,
    pub(crate) zone: Tz,
    /// In POST order: the last one has the highest precedence.
    pub(crate) layers: Vec<SimLayer>,
    pub(crate) member_ids: Vec<String>,
    pub(crate) overrides: Vec<SimOverride>,
}

/// One rendered entry: who, from when to when.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Rendered {
    pub(crate) start: DateTime<Utc>,
    pub(crate) end: DateTime<Utc>,
    pub(crate) user_id: String,
}

/// A refusal of a write, in PagerDuty's words.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Refusal {
    /// 404.
    NotFound(&'static str),
    /// 400 with these errors.
    Invalid(Vec<String>),
}

/// The account.
#[derive(Debug, Default)]
pub(crate) struct Account {
    pub(crate) now: DateTime<Utc>,
    pub(crate) users: Vec<SimUser>,
    pub(crate) schedules: BTreeMap<String, SimSchedule>,
    pub(crate) v3: BTreeSet<String>,
    pub(crate) next_id: u64,
    pub(crate) next_seq: u64,
}

impl Account {
    fn fresh_id(&mut self, prefix: &str) -> String {
        self.next_id += 1;
        format!("{prefix}{:06}", self.next_id)
    }

    /// The id of the user with this email (case-insensitive).
    pub(crate) fn user_by_email(&self, email: &str) -> Option<&SimUser> {
        self.users
            .iter()
            .find(|u| u.email.eq_ignore_ascii_case(email))
    }

    pub(crate) fn user(&self, id: &str) -> Option<&SimUser> {
        self.users.iter().find(|u| u.id == id)
    }

    /// Adds a user; returns its id.
    pub(crate) fn add_user(&mut self, name: &str, email: &str) -> String {
        let id = self.fresh_id("PU");
        self.users.push(SimUser {
            id: id.clone(),
            name: name.to_owned(),
            email: email.to_owned(),
        });
        id
    }

    /// The user with this email, added if there is none.
    pub(crate) fn ensure_user(&mut self, name: &str, email: &str) -> String {
        match self.user_by_email(email) {
            Some(u) => u.id.clone(),
            None => self.add_user(name, email),
        }
    }

    /// Adds or reconfigures a schedule, keeping its overrides.
    pub(crate) fn put_schedule(
        &mut self,
        id: &str,
        name: &str,
        zone: Tz,
        layers_post_order: Vec<Rotation>,
        member_ids: Vec<String>,
    ) {
        let layers = layers_post_order
            .into_iter()
            .map(|rotation| SimLayer {
                id: self.fresh_id("PL"),
                rotation,
            })
            .collect();
        let overrides = self
            .schedules
            .remove(id)
            .map(|s| s.overrides)
            .unwrap_or_default();
        self.schedules.insert(
            id.to_owned(),
            SimSchedule {
                id: id.to_owned(),
                name: name.to_owned(),
                zone,
                layers,
                member_ids,
                overrides,
            },
        );
    }

    /// Creates an override (no checks: a person in the UI, or after the API's checks).
    pub(crate) fn insert_override(
        &mut self,
        schedule: &str,
        start: DateTime<Utc>,
        end: DateTime<Utc>,
        user_id: String,
    ) -> Option<SimOverride> {
        let id = self.fresh_id("PO");
        self.next_seq += 1;
        let o = SimOverride {
            id,
            start,
            end,
            user_id,
            seq: self.next_seq,
        };
        self.schedules.get_mut(schedule)?.overrides.push(o.clone());
        Some(o)
    }

    /// Creates an override through the API: PagerDuty's checks, per item.
    pub(crate) fn create_override(
        &mut self,
        schedule: &str,
        start: Option<DateTime<Utc>>,
        end: Option<DateTime<Utc>>,
        user_id: &str,
    ) -> Result<SimOverride, Vec<String>> {
        let mut errors = Vec::new();
        let (Some(start), Some(end)) = (start, end) else {
            return Err(vec!["Override start and end must be valid times".into()]);
        };
        if self.user(user_id).is_none() {
            errors.push(format!("User {user_id} not found"));
        }
        if end <= start {
            errors.push("Override must end after its start".into());
        }
        if end <= self.now {
            errors.push("Override must end in the future".into());
        }
        if !errors.is_empty() {
            return Err(errors);
        }
        self.insert_override(schedule, start, end, user_id.to_owned())
            .ok_or_else(|| vec!["Schedule not found".into()])
    }

    /// Deletes an override: removed if it has not started, truncated at now if running, refused if
    /// past. `Ok(true)` means truncated.
    pub(crate) fn delete_override(&mut self, schedule: &str, id: &str) -> Result<bool, Refusal> {
        let now = self.now;
        let s = self
            .schedules
            .get_mut(schedule)
            .ok_or(Refusal::NotFound("schedule"))?;
        let i = s
            .overrides
            .iter()
            .position(|o| o.id == id)
            .ok_or(Refusal::NotFound("override"))?;
        let o = &mut s.overrides[i];
        if o.end <= now {
            return Err(Refusal::Invalid(vec![
                "Cannot delete an override that has already ended".into(),
            ]));
        }
        if o.start < now {
            o.end = now;
            return Ok(true);
        }
        s.overrides.remove(i);
        Ok(false)
    }

    /// Removes an override outright (a person in the UI). Whether it existed.
    pub(crate) fn remove_override(&mut self, schedule: &str, id: &str) -> bool {
        let Some(s) = self.schedules.get_mut(schedule) else {
            return false;
        };
        let before = s.overrides.len();
        s.overrides.retain(|o| o.id != id);
        before != s.overrides.len()
    }

    /// Who a layer puts on call over `window`, by user id.
    fn layer_entries(&self, s: &SimSchedule, layer: &SimLayer, window: Window) -> Vec<Rendered> {
        expand_rotation(&layer.rotation, s.zone, window)
            .unwrap_or_default()
            .into_iter()
            .filter_map(|p| {
                Some(Rendered {
                    start: p.start,
                    end: p.end,
                    user_id: self.user_by_email(p.member.as_str())?.id.clone(),
                })
            })
            .collect()
    }

    /// The overrides layer over `window`: the last created wins.
    pub(crate) fn overrides_layer(&self, s: &SimSchedule, window: Window) -> Vec<Rendered> {
        let mut live: Vec<&SimOverride> = s
            .overrides
            .iter()
            .filter(|o| o.start < window.end() && o.end > window.start())
            .collect();
        live.sort_by_key(|o| o.seq);
        let levels = live
            .into_iter()
            .map(|o| {
                vec![Rendered {
                    start: o.start,
                    end: o.end,
                    user_id: o.user_id.clone(),
                }]
            })
            .collect();
        stack(levels, window)
    }

    /// The final schedule over `window`: layers in precedence order, the overrides above them.
    pub(crate) fn final_schedule(&self, s: &SimSchedule, window: Window) -> Vec<Rendered> {
        let mut levels: Vec<Vec<Rendered>> = s
            .layers
            .iter()
            .map(|l| self.layer_entries(s, l, window))
            .collect();
        levels.push(self.overrides_layer(s, window));
        stack(levels, window)
    }

    /// A layer's own entries over `window`.
    pub(crate) fn layer(&self, s: &SimSchedule, i: usize, window: Window) -> Vec<Rendered> {
        s.layers
            .get(i)
            .map(|l| self.layer_entries(s, l, window))
            .unwrap_or_default()
    }

    /// Members of a schedule: its listed members and everyone in its layers, by user id.
    pub(crate) fn members(&self, s: &SimSchedule) -> Vec<String> {
        let mut ids = s.member_ids.clone();
        for l in &s.layers {
            for p in &l.rotation.participants {
                if let Participant::Member(e) = p {
                    if let Some(u) = self.user_by_email(e.as_str()) {
                        if !ids.contains(&u.id) {
                            ids.push(u.id.clone());
                        }
                    }
                }
            }
        }
        ids
    }

    /// The email of a user id, as the core sees it.
    pub(crate) fn email_of(&self, id: &str) -> Option<Email> {
        self.user(id).and_then(|u| Email::parse(&u.email).ok())
    }

    /// Moves the clock.
    pub(crate) fn advance(&mut self, step: TimeDelta) {
        self.now = self.now.checked_add_signed(step).unwrap_or(self.now);
    }
}

/// Stacks levels of entries (later levels win where they cover) over `window`, clipped to it and
/// joined where the same user continues.
pub(crate) fn stack(levels: Vec<Vec<Rendered>>, window: Window) -> Vec<Rendered> {
    let stretches: Vec<Layered<String>> = levels
        .into_iter()
        .enumerate()
        .flat_map(|(level, entries)| {
            entries.into_iter().map(move |r| Layered {
                start: r.start,
                end: r.end,
                who: r.user_id,
                precedence: level as u64,
            })
        })
        .collect();
    resolve_overlaps(&stretches, window)
        .into_iter()
        .map(|(start, end, user_id)| Rendered {
            start,
            end,
            user_id,
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;
    use oncall_core::RotationUnit;

    fn t(d: u32, h: u32) -> DateTime<Utc> {
        Utc.with_ymd_and_hms(2024, 1, d, h, 0, 0).unwrap()
    }

    fn r(s: DateTime<Utc>, e: DateTime<Utc>, who: &str) -> Rendered {
        Rendered {
            start: s,
            end: e,
            user_id: who.into(),
        }
    }

    #[test]
    fn later_levels_win_and_runs_join() {
        let w = Window::new(t(1, 0), t(3, 0)).unwrap();
        let out = stack(
            vec![
                vec![r(t(1, 0), t(2, 0), "A"), r(t(2, 0), t(3, 0), "B")],
                vec![r(t(1, 12), t(2, 12), "C")],
                vec![r(t(2, 6), t(2, 8), "A")],
            ],
            w,
        );
        assert_eq!(
            out,
            [
                r(t(1, 0), t(1, 12), "A"),
                r(t(1, 12), t(2, 6), "C"),
                r(t(2, 6), t(2, 8), "A"),
                r(t(2, 8), t(2, 12), "C"),
                r(t(2, 12), t(3, 0), "B"),
            ]
        );
    }

    #[test]
    fn the_lowest_layer_wins_and_overrides_beat_layers() {
        let mut a = Account {
            now: t(1, 0),
            ..Account::default()
        };
        let ann = a.add_user("Ann", "Ann@Example.com");
        let bob = a.add_user("Bob", "bob@example.com");
        let start = t(1, 0).naive_utc();
        let member = |e: &str| Participant::Member(Email::parse(e).unwrap());
        let layer1 = Rotation::new(
            "Layer 1",
            RotationUnit::Daily,
            1,
            start,
            vec![member("ann@example.com")],
        );
        let mut layer2 = Rotation::new(
            "Layer 2",
            RotationUnit::Daily,
            1,
            start,
            vec![member("bob@example.com")],
        );
        layer2.restrictions = vec![oncall_core::Restriction::daily(
            chrono::NaiveTime::from_hms_opt(9, 0, 0).unwrap(),
            8 * 3600,
        )
        .unwrap()];
        a.put_schedule("S", "S", chrono_tz::UTC, vec![layer1, layer2], vec![]);
        a.create_override("S", Some(t(1, 10)), Some(t(1, 12)), &ann)
            .unwrap();
        let w = Window::new(t(1, 0), t(2, 0)).unwrap();
        let s = &a.schedules["S"];
        assert_eq!(
            a.final_schedule(s, w),
            [
                r(t(1, 0), t(1, 9), &ann),
                r(t(1, 9), t(1, 10), &bob),
                r(t(1, 10), t(1, 12), &ann),
                r(t(1, 12), t(1, 17), &bob),
                r(t(1, 17), t(2, 0), &ann),
            ]
        );
    }

    #[test]
    fn deletes_truncate_running_and_refuse_past() {
        let mut a = Account {
            now: t(2, 0),
            ..Account::default()
        };
        let ann = a.add_user("Ann", "ann@example.com");
        a.put_schedule("S", "S", chrono_tz::UTC, vec![], vec![]);
        let past = a
            .insert_override("S", t(1, 0), t(1, 6), ann.clone())
            .unwrap();
        let running = a
            .insert_override("S", t(1, 0), t(3, 0), ann.clone())
            .unwrap();
        let future = a
            .insert_override("S", t(4, 0), t(5, 0), ann.clone())
            .unwrap();
        assert!(matches!(
            a.delete_override("S", &past.id),
            Err(Refusal::Invalid(_))
        ));
        assert_eq!(a.delete_override("S", &running.id), Ok(true));
        assert_eq!(a.schedules["S"].overrides[1].end, t(2, 0));
        assert_eq!(a.delete_override("S", &future.id), Ok(false));
        assert_eq!(
            a.delete_override("S", &future.id),
            Err(Refusal::NotFound("override"))
        );
        assert_eq!(
            a.create_override("S", Some(t(1, 0)), Some(t(1, 12)), &ann)
                .unwrap_err(),
            ["Override must end in the future"]
        );
    }
}
