//! What the simulated account holds, and PagerDuty's rules over it: layers stacked (the last in
//! POST order wins), overrides over every layer (the last created wins), deletes that truncate a
//! running override, refusals of what ends in the past. No HTTP here.
//!
//! Layers are kept as PagerDuty keeps them (a virtual start, a turn length in seconds, user ids,
//! restrictions in the schedule's local time) and rendered here from that configuration, under the
//! dialect's reading of how turns advance: a second reading of PagerDuty's documentation, not the
//! core's rotation expansion.

use std::collections::{BTreeMap, BTreeSet};

use chrono::{DateTime, Datelike, Days, NaiveDate, NaiveDateTime, TimeDelta, Utc};
use chrono_tz::Tz;
use oncall_core::testkit::{resolve_overlaps, Layered};
use oncall_core::{Email, Window};

use super::dialect::LayerTurns;

/// A user of the account. The email keeps the case it was given.
#[derive(Debug, Clone)]
pub(crate) struct SimUser {
    pub(crate) id: String,
    pub(crate) name: String,
    pub(crate) email: String,
}

/// A restriction as a layer keeps it: a local time of day (seconds after midnight, in the
/// schedule's zone), a length, and for weekly ones the ISO weekday it starts on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct SimRestriction {
    /// ISO weekday (1 = Monday) of a `weekly_restriction`; `None` for a `daily_restriction`.
    pub(crate) weekday: Option<u32>,
    pub(crate) start_of_day: u32,
    pub(crate) duration_seconds: u32,
}

/// A layer as PagerDuty keeps it.
#[derive(Debug, Clone)]
pub(crate) struct SimLayer {
    pub(crate) id: String,
    pub(crate) name: String,
    /// Coverage begins here.
    pub(crate) start: DateTime<Utc>,
    /// Coverage stops here (`None`: never).
    pub(crate) end: Option<DateTime<Utc>>,
    /// Where turn 0 begins.
    pub(crate) virtual_start: DateTime<Utc>,
    pub(crate) turn_seconds: i64,
    /// User ids in turn order.
    pub(crate) users: Vec<String>,
    pub(crate) restrictions: Vec<SimRestriction>,
}

/// An override as PagerDuty keeps it; `seq` is its creation order.
#[derive(Debug, Clone)]
pub(crate) struct SimOverride {
    pub(crate) id: String,
    pub(crate) start: DateTime<Utc>,
    pub(crate) end: DateTime<Utc>,
    pub(crate) user_id: String,
    pub(crate) seq: u64,
    /// Reads show it from this instant on (a listing that lags creates).
    pub(crate) listed_from: DateTime<Utc>,
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

/// A refusal of a delete, in PagerDuty's terms.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Refusal {
    /// 404.
    NotFound(&'static str),
    /// The override has ended.
    Past,
}

/// Why a create item is refused.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum ItemRefusal {
    BadTimes,
    UnknownUser(String),
    EndsBeforeStart,
    EndsInThePast,
    NoSchedule,
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

    /// The user with this email (case-insensitive).
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

    /// A layer id for a new layer.
    pub(crate) fn layer_id(&mut self) -> String {
        self.fresh_id("PL")
    }

    /// Adds or reconfigures a schedule, keeping its overrides.
    pub(crate) fn put_schedule(
        &mut self,
        id: &str,
        name: &str,
        zone: Tz,
        layers_post_order: Vec<SimLayer>,
        member_ids: Vec<String>,
    ) {
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
                layers: layers_post_order,
                member_ids,
                overrides,
            },
        );
    }

    /// Creates an override (no checks: a person in the UI, or after the API's checks), listed
    /// from `listed_from`.
    pub(crate) fn insert_override(
        &mut self,
        schedule: &str,
        start: DateTime<Utc>,
        end: DateTime<Utc>,
        user_id: String,
        listed_from: DateTime<Utc>,
    ) -> Option<SimOverride> {
        if !self.schedules.contains_key(schedule) {
            return None;
        }
        let id = self.fresh_id("PO");
        self.next_seq += 1;
        let o = SimOverride {
            id,
            start,
            end,
            user_id,
            seq: self.next_seq,
            listed_from,
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
        listed_from: DateTime<Utc>,
    ) -> Result<SimOverride, Vec<ItemRefusal>> {
        let (Some(start), Some(end)) = (start, end) else {
            return Err(vec![ItemRefusal::BadTimes]);
        };
        let mut errors = Vec::new();
        if self.user(user_id).is_none() {
            errors.push(ItemRefusal::UnknownUser(user_id.to_owned()));
        }
        if end <= start {
            errors.push(ItemRefusal::EndsBeforeStart);
        }
        if end <= self.now {
            errors.push(ItemRefusal::EndsInThePast);
        }
        if !errors.is_empty() {
            return Err(errors);
        }
        self.insert_override(schedule, start, end, user_id.to_owned(), listed_from)
            .ok_or_else(|| vec![ItemRefusal::NoSchedule])
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
            return Err(Refusal::Past);
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

    /// The overrides a read at the simulator's now shows (a lagging listing hides recent creates).
    pub(crate) fn listed<'a>(&self, s: &'a SimSchedule) -> impl Iterator<Item = &'a SimOverride> {
        let now = self.now;
        s.overrides.iter().filter(move |o| o.listed_from <= now)
    }

    /// The overrides layer over `window`, as a read shows it: the last created wins.
    pub(crate) fn overrides_layer(&self, s: &SimSchedule, window: Window) -> Vec<Rendered> {
        let mut live: Vec<&SimOverride> = self
            .listed(s)
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

    /// The overrides layer over `window` as it truly is (a person looking at the account).
    pub(crate) fn true_overrides_layer(&self, s: &SimSchedule, window: Window) -> Vec<Rendered> {
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
    pub(crate) fn final_schedule(
        &self,
        s: &SimSchedule,
        window: Window,
        turns: LayerTurns,
    ) -> Vec<Rendered> {
        let mut levels: Vec<Vec<Rendered>> = s
            .layers
            .iter()
            .map(|l| render_layer(l, s.zone, window, turns))
            .collect();
        levels.push(self.overrides_layer(s, window));
        stack(levels, window)
    }

    /// Members of a schedule: its listed members and everyone in its layers, by user id.
    pub(crate) fn members(&self, s: &SimSchedule) -> Vec<String> {
        let mut ids = s.member_ids.clone();
        for l in &s.layers {
            for u in &l.users {
                if !ids.contains(u) {
                    ids.push(u.clone());
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

/// A local wall time as an instant: a time in a spring-forward gap moves to the gap's end, an
/// ambiguous one takes the earlier instant (the reading DESIGN §2 takes; PagerDuty's own is not
/// documented).
fn instant(zone: Tz, local: NaiveDateTime) -> DateTime<Utc> {
    oncall_core::resolve_local(zone, local)
}

/// Where turn `k` of a layer begins under the dialect's reading.
fn turn_start(layer: &SimLayer, zone: Tz, turns: LayerTurns, k: i64) -> Option<DateTime<Utc>> {
    const DAY: i64 = 86_400;
    let wall_days = layer.turn_seconds % DAY == 0 && turns == LayerTurns::WallClock;
    if wall_days {
        let local = layer.virtual_start.with_timezone(&zone).naive_local();
        let days = k.checked_mul(layer.turn_seconds / DAY)?;
        let moved = if days >= 0 {
            local.checked_add_days(Days::new(u64::try_from(days).ok()?))?
        } else {
            local.checked_sub_days(Days::new(days.unsigned_abs()))?
        };
        Some(instant(zone, moved))
    } else {
        let seconds = k.checked_mul(layer.turn_seconds)?;
        layer
            .virtual_start
            .checked_add_signed(TimeDelta::try_seconds(seconds)?)
    }
}

/// The restriction windows of a layer that touch `[lo, hi)`, sorted and merged; `None` when the
/// layer has no restrictions (it always covers).
fn restriction_windows(
    layer: &SimLayer,
    zone: Tz,
    lo: DateTime<Utc>,
    hi: DateTime<Utc>,
) -> Option<Vec<(DateTime<Utc>, DateTime<Utc>)>> {
    if layer.restrictions.is_empty() {
        return None;
    }
    // A weekly window lasts up to a week: start looking eight days before.
    let local_lo = lo.with_timezone(&zone).date_naive();
    let first: NaiveDate = local_lo.checked_sub_days(Days::new(8)).unwrap_or(local_lo);
    let last: NaiveDate = hi.with_timezone(&zone).date_naive();
    let mut windows = Vec::new();
    let mut day = first;
    while day <= last {
        for r in &layer.restrictions {
            let applies = r
                .weekday
                .is_none_or(|w| day.weekday().number_from_monday() == w);
            if !applies {
                continue;
            }
            let Some(begin) = day.and_hms_opt(0, 0, 0).and_then(|midnight| {
                midnight.checked_add_signed(TimeDelta::seconds(i64::from(r.start_of_day)))
            }) else {
                continue;
            };
            // The window ends at the local wall time `start + duration`.
            let Some(finish) =
                begin.checked_add_signed(TimeDelta::seconds(i64::from(r.duration_seconds)))
            else {
                continue;
            };
            let (s, e) = (instant(zone, begin), instant(zone, finish));
            if s < e && e > lo && s < hi {
                windows.push((s, e));
            }
        }
        let Some(next) = day.succ_opt() else { break };
        day = next;
    }
    windows.sort();
    let mut merged: Vec<(DateTime<Utc>, DateTime<Utc>)> = Vec::with_capacity(windows.len());
    for (s, e) in windows {
        match merged.last_mut() {
            Some(last) if s <= last.1 => last.1 = last.1.max(e),
            _ => merged.push((s, e)),
        }
    }
    Some(merged)
}

/// A layer's own entries over `window`: the user whose turn contains an instant covers it,
/// inside the layer's coverage and its restrictions. Turns are cut at restriction edges and at the
/// window; entries of one turn are never joined with the next.
pub(crate) fn render_layer(
    layer: &SimLayer,
    zone: Tz,
    window: Window,
    turns: LayerTurns,
) -> Vec<Rendered> {
    let lo = window.start().max(layer.start);
    let hi = layer.end.map_or(window.end(), |e| e.min(window.end()));
    if lo >= hi || layer.users.is_empty() || layer.turn_seconds <= 0 {
        return Vec::new();
    }
    // The turn that contains `lo`: estimated in seconds, then corrected (wall-clock turns drift).
    let mut k = (lo - layer.virtual_start)
        .num_seconds()
        .div_euclid(layer.turn_seconds);
    while turn_start(layer, zone, turns, k).is_some_and(|t| t > lo) {
        k -= 1;
    }
    while turn_start(layer, zone, turns, k + 1).is_some_and(|t| t <= lo) {
        k += 1;
    }
    let windows = restriction_windows(layer, zone, lo, hi);
    let n = layer.users.len() as i64;
    let mut out = Vec::new();
    while let (Some(begin), Some(finish)) = (
        turn_start(layer, zone, turns, k),
        turn_start(layer, zone, turns, k + 1),
    ) {
        if begin >= hi {
            break;
        }
        let (s, e) = (begin.max(lo), finish.min(hi));
        let user = &layer.users[usize::try_from(k.rem_euclid(n)).unwrap_or(0)];
        if s < e {
            match &windows {
                None => out.push(Rendered {
                    start: s,
                    end: e,
                    user_id: user.clone(),
                }),
                Some(windows) => {
                    for &(ws, we) in windows {
                        let (a, b) = (ws.max(s), we.min(e));
                        if a < b {
                            out.push(Rendered {
                                start: a,
                                end: b,
                                user_id: user.clone(),
                            });
                        }
                    }
                }
            }
        }
        k += 1;
    }
    out
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

    fn layer(
        start: DateTime<Utc>,
        turn_seconds: i64,
        users: &[&str],
        restrictions: Vec<SimRestriction>,
    ) -> SimLayer {
        SimLayer {
            id: "PL1".into(),
            name: "Layer".into(),
            start,
            end: None,
            virtual_start: start,
            turn_seconds,
            users: users.iter().map(|u| (*u).to_owned()).collect(),
            restrictions,
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
    fn daily_turns_follow_the_wall_clock_or_absolute_seconds() {
        // 09:00 Berlin daily, across the spring-forward of 2024-03-31.
        let zone = chrono_tz::Europe::Berlin;
        let start = Utc.with_ymd_and_hms(2024, 3, 29, 8, 0, 0).unwrap();
        let l = layer(start, 86_400, &["A", "B"], vec![]);
        let w = Window::new(start, start + TimeDelta::days(3)).unwrap();
        let wall = render_layer(&l, zone, w, LayerTurns::WallClock);
        let abs = render_layer(&l, zone, w, LayerTurns::AbsoluteSeconds);
        let april_1_wall = Utc.with_ymd_and_hms(2024, 3, 31, 7, 0, 0).unwrap();
        let april_1_abs = Utc.with_ymd_and_hms(2024, 3, 31, 8, 0, 0).unwrap();
        assert_eq!(wall[1].end, april_1_wall, "09:00 CEST");
        assert_eq!(abs[1].end, april_1_abs, "10:00 CEST");
        assert_eq!(wall[1].user_id, "B");
        assert_eq!(wall[2].user_id, "A");
    }

    #[test]
    fn restrictions_mask_turns_and_weekly_ones_wrap() {
        let zone = chrono_tz::UTC;
        // Monday 2024-01-01; a daily layer restricted to 09:00-17:00, and Friday 18:00 for 60 h.
        let daily = layer(
            t(1, 0),
            86_400,
            &["A"],
            vec![SimRestriction {
                weekday: None,
                start_of_day: 9 * 3600,
                duration_seconds: 8 * 3600,
            }],
        );
        let w = Window::new(t(1, 0), t(3, 0)).unwrap();
        assert_eq!(
            render_layer(&daily, zone, w, LayerTurns::WallClock),
            [r(t(1, 9), t(1, 17), "A"), r(t(2, 9), t(2, 17), "A")]
        );
        let weekend = layer(
            t(1, 0),
            7 * 86_400,
            &["A", "B"],
            vec![SimRestriction {
                weekday: Some(5),
                start_of_day: 18 * 3600,
                duration_seconds: 60 * 3600,
            }],
        );
        let w = Window::new(t(1, 0), t(16, 0)).unwrap();
        assert_eq!(
            render_layer(&weekend, zone, w, LayerTurns::WallClock),
            [
                r(t(1, 0), t(1, 6), "A"),
                r(t(5, 18), t(8, 0), "A"),
                r(t(8, 0), t(8, 6), "B"),
                r(t(12, 18), t(15, 0), "B"),
                r(t(15, 0), t(15, 6), "A")
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
        let at = t(1, 0);
        let past = a
            .insert_override("S", t(1, 0), t(1, 6), ann.clone(), at)
            .unwrap();
        let running = a
            .insert_override("S", t(1, 0), t(3, 0), ann.clone(), at)
            .unwrap();
        let future = a
            .insert_override("S", t(4, 0), t(5, 0), ann.clone(), at)
            .unwrap();
        assert_eq!(a.delete_override("S", &past.id), Err(Refusal::Past));
        assert_eq!(a.delete_override("S", &running.id), Ok(true));
        assert_eq!(a.schedules["S"].overrides[1].end, t(2, 0));
        assert_eq!(a.delete_override("S", &future.id), Ok(false));
        assert_eq!(
            a.delete_override("S", &future.id),
            Err(Refusal::NotFound("override"))
        );
        assert_eq!(
            a.create_override("S", Some(t(1, 0)), Some(t(1, 12)), &ann, at)
                .unwrap_err(),
            [ItemRefusal::EndsInThePast]
        );
    }

    #[test]
    fn a_lagging_read_hides_recent_creates() {
        let mut a = Account {
            now: t(2, 0),
            ..Account::default()
        };
        let ann = a.add_user("Ann", "ann@example.com");
        a.put_schedule("S", "S", chrono_tz::UTC, vec![], vec![]);
        a.create_override("S", Some(t(4, 0)), Some(t(5, 0)), &ann, t(2, 1))
            .unwrap();
        let s = &a.schedules["S"];
        assert_eq!(a.listed(s).count(), 0);
        let w = Window::new(t(3, 0), t(6, 0)).unwrap();
        assert!(a.overrides_layer(s, w).is_empty());
        assert_eq!(a.true_overrides_layer(s, w).len(), 1);
        a.now = t(2, 1);
        let s = &a.schedules["S"];
        assert_eq!(a.listed(s).count(), 1);
    }
}
