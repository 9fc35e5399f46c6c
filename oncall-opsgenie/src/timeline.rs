//! From Opsgenie's schedule timeline to the core's role timelines: which rotations are roles and in
//! which order, and the periods as one sorted, disjoint list per role. Translation only: who is on
//! call is what the vendor's `finalTimeline` says, overrides included as the vendor applied them.

use std::collections::HashMap;

use chrono::{DateTime, TimeDelta, Utc};
use oncall_core::{OnCallPeriod, RoleTimeline, Window};

use crate::models::{Recipient, TimelineRotation, WireRotation};
use crate::Note;

/// Longest stretch one timeline request asks for. The vendor's maximum `interval` is UNCONFIRMED
/// (captures show three months); four weeks keeps each answer small.
pub const CHUNK_DAYS: i64 = 28;

/// The request windows covering `window`, in order.
pub(crate) fn chunks(window: Window) -> Vec<Window> {
    let mut out = Vec::new();
    let mut start = window.start();
    while start < window.end() {
        let end = start
            .checked_add_signed(TimeDelta::days(CHUNK_DAYS))
            .map_or(window.end(), |e| e.min(window.end()));
        if let Ok(w) = Window::new(start, end) {
            out.push(w);
        }
        start = end;
    }
    out
}

/// Days to ask for so that the answer covers `chunk`: the vendor starts its window at local
/// midnight of `date` (observed, reference §2.5) and counts local days (23 to 25 hours), so two
/// days more than the chunk's length always reach its end.
pub(crate) fn interval_days(chunk: Window) -> i64 {
    let seconds = (chunk.end() - chunk.start()).num_seconds();
    (seconds + 86_399) / 86_400 + 2
}

/// The order of the schedule's rotations as the Opsgenie UI shows them: by timeline `order`
/// ascending, ties (and rotations the timeline does not list) by the vendor's array index.
/// Returns indices into `rotations`.
pub(crate) fn rotation_order(
    rotations: &[WireRotation],
    timeline: &[TimelineRotation],
) -> Vec<usize> {
    let order: HashMap<&str, f64> = timeline
        .iter()
        .filter_map(|t| Some((t.id.as_str(), t.order?)))
        .collect();
    let mut indices: Vec<usize> = (0..rotations.len()).collect();
    indices.sort_by(|&a, &b| {
        let key = |i: usize| {
            order
                .get(rotations[i].id.as_str())
                .copied()
                .unwrap_or(f64::INFINITY)
        };
        key(a).total_cmp(&key(b)).then(a.cmp(&b))
    });
    indices
}

/// One timeline answer: the chunk it was asked for, its rotations, and the vendor's clock when it
/// answered (its `Date`, whole seconds), where the answer splits turns.
#[derive(Debug, Clone)]
pub(crate) struct Answer {
    pub chunk: Window,
    pub rotations: Vec<TimelineRotation>,
    pub vendor_now: Option<DateTime<Utc>>,
}

/// One rotation's periods gathered over the chunks.
struct Gathered {
    id: String,
    name: String,
    order: Option<f64>,
    /// Position of first sight (chunk, index): the tie-break after `order`.
    seen: (usize, usize),
    /// Clipped periods: start, end, member.
    periods: Vec<(DateTime<Utc>, DateTime<Utc>, oncall_core::Email)>,
    /// When it runs, from the schedule's configuration (unbounded when the configuration we read
    /// does not have it: the timeline is the authority).
    from: Option<DateTime<Utc>>,
    until: Option<DateTime<Utc>>,
}

impl Gathered {
    fn runs_over(&self, start: DateTime<Utc>, end: DateTime<Utc>) -> bool {
        self.from.is_none_or(|f| f < end) && self.until.is_none_or(|u| u > start)
    }
}

/// Builds the role timelines over `window` from the timeline answers of [`chunks`].
///
/// Roles are positions (DESIGN §1.3), taken instant by instant: at every instant, the rotations
/// running then (by the configuration's start and end, `config`), in timeline `order`, are the
/// primary, the secondary, and so on. So the role a rotation plays never depends on the window
/// read: a rotation that ended inside the window and its successor do not become two roles of
/// their own. There are as many roles as rotations run at once within the window; a change of
/// who plays which role inside the window is a [`Note::RolesChanged`], and a rotation that runs
/// nowhere in it a [`Note::RotationOutsideWindow`].
pub(crate) fn role_timelines(
    answers: &[Answer],
    config: &[WireRotation],
    window: Window,
    notes: &mut Vec<Note>,
) -> Vec<RoleTimeline> {
    let mut gathered: Vec<Gathered> = Vec::new();
    for (c, answer) in answers.iter().enumerate() {
        let splits = split_instants(answer);
        for (i, r) in answer.rotations.iter().enumerate() {
            let slot = match gathered.iter().position(|g| g.id == r.id) {
                Some(slot) => slot,
                None => {
                    let configured = config.iter().find(|w| w.id == r.id);
                    gathered.push(Gathered {
                        id: r.id.clone(),
                        name: r.name.clone(),
                        order: r.order,
                        seen: (c, i),
                        periods: Vec::new(),
                        from: configured.map(|w| w.start),
                        until: configured.and_then(|w| w.end),
                    });
                    gathered.len() - 1
                }
            };
            collect_periods(&mut gathered[slot], r, answer.chunk, window, notes);
        }
        for g in &mut gathered {
            g.periods.sort_by(|a, b| a.0.cmp(&b.0).then(a.1.cmp(&b.1)));
        }
        for g in &mut gathered {
            let joined = join_at(std::mem::take(&mut g.periods), &splits);
            g.periods = joined;
        }
    }
    for g in gathered
        .iter()
        .filter(|g| !g.runs_over(window.start(), window.end()))
    {
        notes.push(Note::RotationOutsideWindow {
            rotation: g.name.clone(),
            start: g.from.unwrap_or(window.start()),
            end: g.until,
        });
    }
    gathered.retain(|g| g.runs_over(window.start(), window.end()));
    gathered.sort_by(|a, b| {
        let key = |g: &Gathered| g.order.unwrap_or(f64::INFINITY);
        key(a).total_cmp(&key(b)).then(a.seen.cmp(&b.seen))
    });
    let cuts: Vec<DateTime<Utc>> = answers.iter().map(|a| a.chunk.start()).collect();
    // The instants where a rotation starts or ends inside the window cut it into segments; in
    // each, the rotations running are the roles, in order.
    let mut edges: Vec<DateTime<Utc>> = gathered
        .iter()
        .flat_map(|g| [g.from, g.until])
        .flatten()
        .filter(|t| *t > window.start() && *t < window.end())
        .chain([window.start(), window.end()])
        .collect();
    edges.sort_unstable();
    edges.dedup();
    let mut roles: Vec<(Vec<String>, Vec<OnCallPeriod>)> = Vec::new();
    let mut previous: Option<Vec<usize>> = None;
    for pair in edges.windows(2) {
        let (start, end) = (pair[0], pair[1]);
        let running: Vec<usize> = (0..gathered.len())
            .filter(|&i| gathered[i].runs_over(start, end))
            .collect();
        if previous.as_ref().is_some_and(|p| *p != running) {
            notes.push(Note::RolesChanged {
                at: start,
                rotations: running.iter().map(|&i| gathered[i].name.clone()).collect(),
            });
        }
        for (k, &i) in running.iter().enumerate() {
            if roles.len() <= k {
                roles.push((Vec::new(), Vec::new()));
            }
            let g = &gathered[i];
            if !roles[k].0.contains(&g.name) {
                roles[k].0.push(g.name.clone());
            }
            roles[k].1.extend(g.periods.iter().filter_map(|(s, e, m)| {
                let (s, e) = ((*s).max(start), (*e).min(end));
                (s < e).then(|| OnCallPeriod {
                    start: s,
                    end: e,
                    member: m.clone(),
                })
            }));
        }
        previous = Some(running);
    }
    roles
        .into_iter()
        .map(|(names, periods)| RoleTimeline {
            name: names.join(" then "),
            periods: joined(periods, &cuts),
        })
        .collect()
}

/// One rotation's periods over `window` from the answers of [`chunks`] (of any of the answer's
/// timelines): people only, the pieces the vendor split at its request instant or at a chunk
/// boundary joined, turns of one person handing over to themselves kept apart.
pub(crate) fn periods_of(answers: &[Answer], rotation: &str, window: Window) -> Vec<OnCallPeriod> {
    let mut pieces = Vec::new();
    let mut splits = Vec::new();
    for answer in answers {
        splits.extend(split_instants(answer));
        let (lo, hi) = (
            answer.chunk.start().max(window.start()),
            answer.chunk.end().min(window.end()),
        );
        for r in answer.rotations.iter().filter(|r| r.id == rotation) {
            for p in &r.periods {
                let (start, end) = (p.start.max(lo), p.end.min(hi));
                if let (Recipient::User(email), true) = (&p.recipient, start < end) {
                    pieces.push((start, end, email.clone()));
                }
            }
        }
    }
    pieces.sort_by(|a, b| a.0.cmp(&b.0).then(a.1.cmp(&b.1)));
    let cuts: Vec<DateTime<Utc>> = answers.iter().map(|a| a.chunk.start()).collect();
    let periods = join_at(pieces, &splits)
        .into_iter()
        .map(|(start, end, member)| OnCallPeriod { start, end, member })
        .collect();
    joined(periods, &cuts)
}

/// Where an answer splits periods at its request instant: where a `historical` period ends and
/// a `default` one of the same recipient begins, and the vendor's clock when it answered (a
/// split in whole seconds, or an override's split, need not show a `historical` end).
fn split_instants(answer: &Answer) -> Vec<DateTime<Utc>> {
    let mut splits: Vec<DateTime<Utc>> = answer.vendor_now.into_iter().collect();
    for r in &answer.rotations {
        for a in r
            .periods
            .iter()
            .filter(|p| p.kind.as_deref() == Some("historical"))
        {
            let continued = r.periods.iter().any(|b| {
                b.kind.as_deref() == Some("default")
                    && b.start == a.end
                    && b.recipient == a.recipient
            });
            if continued && !splits.contains(&a.end) {
                splits.push(a.end);
            }
        }
    }
    splits
}

/// Joins neighbours of one person that meet at one of `splits` (pieces the vendor split at its
/// request instant).
fn join_at(
    periods: Vec<(DateTime<Utc>, DateTime<Utc>, oncall_core::Email)>,
    splits: &[DateTime<Utc>],
) -> Vec<(DateTime<Utc>, DateTime<Utc>, oncall_core::Email)> {
    let mut out: Vec<(DateTime<Utc>, DateTime<Utc>, oncall_core::Email)> = Vec::new();
    for (start, end, member) in periods {
        match out.last_mut() {
            Some(last) if last.1 == start && last.2 == member && splits.contains(&start) => {
                last.1 = end;
            }
            _ => out.push((start, end, member)),
        }
    }
    out
}

fn collect_periods(
    into: &mut Gathered,
    rotation: &TimelineRotation,
    chunk: Window,
    window: Window,
    notes: &mut Vec<Note>,
) {
    let (lo, hi) = (
        chunk.start().max(window.start()),
        chunk.end().min(window.end()),
    );
    for p in &rotation.periods {
        let (start, end) = (p.start.max(lo), p.end.min(hi));
        if start >= end {
            continue;
        }
        match &p.recipient {
            Recipient::User(email) => into.periods.push((start, end, email.clone())),
            Recipient::Nobody => {}
            Recipient::Other(who) => {
                let note = Note::NonUserOnCall {
                    rotation: rotation.name.clone(),
                    kind: who.kind.clone(),
                    name: who.name.clone(),
                };
                if !notes.contains(&note) {
                    notes.push(note);
                }
            }
        }
    }
}

/// Sorts the periods and makes them disjoint, joining the pieces the wire split: neighbours of one
/// person that meet at an instant with a fraction of a second (the request instant, where the
/// vendor splits a turn into `historical` and `default`, and perhaps an override too: whatever the
/// period types, as nothing else the vendor keeps has fractions), and a period cut at a chunk
/// boundary. Handoffs between turns, at whole seconds, stay as they are.
fn joined(mut periods: Vec<OnCallPeriod>, cuts: &[DateTime<Utc>]) -> Vec<OnCallPeriod> {
    periods.sort_by(|a, b| a.start.cmp(&b.start).then(a.end.cmp(&b.end)));
    let mut out: Vec<OnCallPeriod> = Vec::with_capacity(periods.len());
    for OnCallPeriod { start, end, member } in periods {
        let Some(last) = out.last_mut() else {
            out.push(OnCallPeriod { start, end, member });
            continue;
        };
        let split = start.timestamp_subsec_nanos() != 0 || cuts.contains(&start);
        if last.end == start && last.member == member && split {
            last.end = end;
            continue;
        }
        // The vendor's final timeline does not overlap itself; if it ever did, the earlier
        // period keeps its end and the later one starts after it.
        let start = start.max(last.end);
        if start < end {
            out.push(OnCallPeriod { start, end, member });
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::models::TimelinePeriod;
    use chrono::TimeZone;
    use oncall_core::Email;

    fn t(h: u32, m: u32, s: u32, ms: u32) -> DateTime<Utc> {
        Utc.with_ymd_and_hms(2020, 6, 22, h, m, s).unwrap() + TimeDelta::milliseconds(ms.into())
    }

    fn user(name: &str) -> Recipient {
        Recipient::User(Email::parse(&format!("{name}@example.com")).unwrap())
    }

    /// A period as the wire gives it, typed `historical`, `default` or `override`.
    fn period(
        start: DateTime<Utc>,
        end: DateTime<Utc>,
        kind: &str,
        who: Recipient,
    ) -> TimelinePeriod {
        TimelinePeriod {
            start,
            end,
            recipient: who,
            kind: Some(kind.to_owned()),
        }
    }

    fn answer(chunk: Window, rotations: Vec<TimelineRotation>) -> Answer {
        Answer {
            chunk,
            rotations,
            vendor_now: None,
        }
    }

    #[test]
    fn chunks_cover_the_window_and_ask_for_enough_days() {
        let w = Window::new(t(0, 0, 0, 0), t(0, 0, 0, 0) + TimeDelta::days(60)).unwrap();
        let c = chunks(w);
        assert_eq!(c.len(), 3);
        assert_eq!(c[0].start(), w.start());
        assert_eq!(c[2].end(), w.end());
        assert!(c.windows(2).all(|p| p[0].end() == p[1].start()));
        assert_eq!(interval_days(c[0]), 30);
        assert_eq!(interval_days(c[2]), 4 + 2);
    }

    #[test]
    fn historical_and_default_join_and_handoffs_stay() {
        // The SR capture's split at 11:30:14.401, then a handoff to bob at 17:00, then an override.
        let split = t(11, 30, 14, 401);
        let rotation = TimelineRotation {
            id: "r".into(),
            name: "Ops".into(),
            order: Some(3.0),
            periods: vec![
                period(split, t(17, 0, 0, 0), "default", user("carlos")),
                period(t(9, 0, 0, 0), split, "historical", user("carlos")),
                period(t(17, 0, 0, 0), t(20, 0, 0, 0), "default", user("carlos")),
                period(t(20, 0, 0, 0), t(22, 0, 0, 0), "override", user("bob")),
                period(
                    t(22, 0, 0, 0),
                    t(23, 0, 0, 0),
                    "default",
                    Recipient::Other(crate::models::NonUser {
                        kind: "team".into(),
                        name: "support_team".into(),
                    }),
                ),
            ],
        };
        let window = Window::new(t(10, 0, 0, 0), t(23, 0, 0, 0)).unwrap();
        let mut notes = Vec::new();
        let roles = role_timelines(&[answer(window, vec![rotation])], &[], window, &mut notes);
        let got: Vec<_> = roles[0]
            .periods
            .iter()
            .map(|p| (p.start, p.end, p.member.as_str().to_owned()))
            .collect();
        assert_eq!(
            got,
            vec![
                (t(10, 0, 0, 0), t(17, 0, 0, 0), "carlos@example.com".into()),
                (t(17, 0, 0, 0), t(20, 0, 0, 0), "carlos@example.com".into()),
                (t(20, 0, 0, 0), t(22, 0, 0, 0), "bob@example.com".into()),
            ]
        );
        assert_eq!(
            notes,
            vec![Note::NonUserOnCall {
                rotation: "Ops".into(),
                kind: "team".into(),
                name: "support_team".into()
            }]
        );
    }

    #[test]
    fn pieces_split_at_an_instant_with_milliseconds_join_whatever_their_type() {
        // An override split at the request instant (UNCONFIRMED whether the vendor does), a turn
        // split historical/default, and a change of person at a whole second, which stays.
        let split = t(12, 0, 0, 401);
        let rotation = TimelineRotation {
            id: "r".into(),
            name: "Ops".into(),
            order: Some(1.0),
            periods: vec![
                period(t(10, 0, 0, 0), split, "override", user("eve")),
                period(split, t(14, 0, 0, 0), "override", user("eve")),
                period(t(14, 0, 0, 0), t(16, 0, 0, 0), "default", user("ann")),
                period(t(16, 0, 0, 0), t(16, 30, 0, 250), "historical", user("bob")),
                period(t(16, 30, 0, 250), t(18, 0, 0, 0), "default", user("bob")),
                period(t(18, 0, 0, 0), t(20, 0, 0, 0), "override", user("bob")),
            ],
        };
        let window = Window::new(t(9, 0, 0, 0), t(21, 0, 0, 0)).unwrap();
        let roles = role_timelines(
            &[answer(window, vec![rotation])],
            &[],
            window,
            &mut Vec::new(),
        );
        let got: Vec<_> = roles[0]
            .periods
            .iter()
            .map(|p| (p.start, p.end, p.member.as_str().to_owned()))
            .collect();
        assert_eq!(
            got,
            vec![
                (t(10, 0, 0, 0), t(14, 0, 0, 0), "eve@example.com".into()),
                (t(14, 0, 0, 0), t(16, 0, 0, 0), "ann@example.com".into()),
                (t(16, 0, 0, 0), t(18, 0, 0, 0), "bob@example.com".into()),
                (t(18, 0, 0, 0), t(20, 0, 0, 0), "bob@example.com".into()),
            ]
        );
    }

    #[test]
    fn roles_follow_timeline_order_and_chunks_join() {
        let w1 = Window::new(t(0, 0, 0, 0), t(12, 0, 0, 0)).unwrap();
        let w2 = Window::new(t(12, 0, 0, 0), t(23, 0, 0, 0)).unwrap();
        let whole = Window::new(w1.start(), w2.end()).unwrap();
        let rot = |id: &str, order: Option<f64>, who: &str| TimelineRotation {
            id: id.into(),
            name: id.into(),
            order,
            periods: vec![period(t(6, 0, 0, 0), t(18, 0, 0, 0), "default", user(who))],
        };
        // Array order a, b, c; timeline order c (1.0), a (4.5), then b (no order: last).
        let rotations = vec![
            rot("a", Some(4.5), "ann"),
            rot("b", None, "bob"),
            rot("c", Some(1.0), "cat"),
        ];
        let answer_of = answer;
        let roles = role_timelines(
            &[answer_of(w1, rotations.clone()), answer_of(w2, rotations)],
            &[],
            whole,
            &mut Vec::new(),
        );
        let names: Vec<_> = roles.iter().map(|r| r.name.as_str()).collect();
        assert_eq!(names, ["c", "a", "b"]);
        assert_eq!(
            roles[0].periods.len(),
            1,
            "joined across the chunk boundary"
        );
        assert_eq!(
            (roles[0].periods[0].start, roles[0].periods[0].end),
            (t(6, 0, 0, 0), t(18, 0, 0, 0))
        );
    }
}

#[cfg(test)]
mod split_tests {
    use super::*;
    use crate::models::TimelinePeriod;
    use chrono::TimeZone;
    use oncall_core::Email;

    fn t(h: u32, m: u32, s: u32) -> DateTime<Utc> {
        Utc.with_ymd_and_hms(2020, 6, 22, h, m, s).unwrap()
    }

    fn carlos() -> Recipient {
        Recipient::User(Email::parse("carlos@example.com").unwrap())
    }

    fn p(start: DateTime<Utc>, end: DateTime<Utc>, kind: &str) -> TimelinePeriod {
        TimelinePeriod {
            start,
            end,
            recipient: carlos(),
            kind: Some(kind.into()),
        }
    }

    /// A split in whole seconds is joined where `historical` meets `default`, and an override
    /// split at the vendor's clock (its `Date`) too; other handoffs of one person stay.
    #[test]
    fn splits_in_whole_seconds_join() {
        let window = Window::new(t(0, 0, 0), t(23, 0, 0)).unwrap();
        let rotation = TimelineRotation {
            id: "r".into(),
            name: "Ops".into(),
            order: Some(1.0),
            periods: vec![
                p(t(9, 0, 0), t(11, 30, 14), "historical"),
                p(t(11, 30, 14), t(17, 0, 0), "default"),
                p(t(17, 0, 0), t(18, 0, 0), "default"),
            ],
        };
        let other = TimelineRotation {
            id: "o".into(),
            name: "Other".into(),
            order: Some(2.0),
            periods: vec![
                p(t(10, 0, 0), t(11, 30, 14), "override"),
                p(t(11, 30, 14), t(12, 0, 0), "override"),
            ],
        };
        let answer = Answer {
            chunk: window,
            rotations: vec![rotation, other],
            vendor_now: Some(t(11, 30, 14)),
        };
        let roles = role_timelines(&[answer], &[], window, &mut Vec::new());
        let spans =
            |i: usize| -> Vec<_> { roles[i].periods.iter().map(|p| (p.start, p.end)).collect() };
        assert_eq!(
            spans(0),
            [(t(9, 0, 0), t(17, 0, 0)), (t(17, 0, 0), t(18, 0, 0))]
        );
        assert_eq!(spans(1), [(t(10, 0, 0), t(12, 0, 0))]);
    }
}
