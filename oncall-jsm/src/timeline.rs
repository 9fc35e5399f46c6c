//! From JSM's schedule timeline to the core's role timelines: which rotations are roles and in
//! which order, and their periods as one sorted, disjoint list per role. Translation only: who is
//! on call is what the vendor's `finalTimeline` says, overrides included as the vendor applied
//! them.

use std::collections::HashMap;

use chrono::{DateTime, TimeDelta, Utc};
use oncall_core::{Email, OnCallPeriod, RoleTimeline, Window};

use crate::models::{TimelineRotation, WireResponder, WireRotation};

/// Longest stretch one timeline request asks for (the vendor's limits on `interval` are
/// UNCONFIRMED; four weeks keeps each answer small).
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

/// Days to ask for so that the answer covers `chunk`: the vendor starts its window at the
/// beginning of the day containing `date` (the spec: "the beginning of the intervalUnit containing
/// this date", in a zone it does not name) and counts days of 23 to 25 hours, so two days more
/// than the chunk's length always reach its end.
pub(crate) fn interval_days(chunk: Window) -> i64 {
    let seconds = (chunk.end() - chunk.start()).num_seconds();
    (seconds + 86_399) / 86_400 + 2
}

/// The order of the schedule's rotations as the UI shows them: by timeline `order` ascending,
/// ties (and rotations the timeline does not list) by the vendor's array index. Indices into
/// `rotations`.
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

/// One rotation's periods gathered over the chunks.
struct Gathered {
    id: String,
    name: String,
    order: Option<f64>,
    /// Where it was first seen (chunk, index): the tie-break after `order`.
    seen: (usize, usize),
    periods: Vec<(DateTime<Utc>, DateTime<Utc>, Email)>,
}

/// One [`RoleTimeline`] per rotation that covers `window`, in timeline order, from the answers of
/// [`chunks`]. Deleted rotations are no role; nor is one that ended before the window or starts
/// after it (`config`: the schedule's rotations, when known). `people` maps accountIds to the
/// e-mails standing for them; `noone`, a team or an escalation on call leaves the role empty.
pub(crate) fn role_timelines(
    answers: &[(Window, Vec<TimelineRotation>)],
    config: &[WireRotation],
    people: &HashMap<String, Email>,
    window: Window,
) -> Vec<RoleTimeline> {
    let mut gathered: Vec<Gathered> = Vec::new();
    for (c, (chunk, rotations)) in answers.iter().enumerate() {
        for (i, r) in rotations.iter().enumerate().filter(|(_, r)| !r.deleted) {
            let slot = match gathered.iter().position(|g| g.id == r.id) {
                Some(slot) => slot,
                None => {
                    gathered.push(Gathered {
                        id: r.id.clone(),
                        name: r.name.clone(),
                        order: r.order,
                        seen: (c, i),
                        periods: Vec::new(),
                    });
                    gathered.len() - 1
                }
            };
            let (lo, hi) = (
                chunk.start().max(window.start()),
                chunk.end().min(window.end()),
            );
            for p in &r.periods {
                let (start, end) = (p.start.max(lo), p.end.min(hi));
                if start >= end {
                    continue;
                }
                if let WireResponder::User(account) = &p.responder {
                    if let Some(email) = people.get(account) {
                        gathered[slot].periods.push((start, end, email.clone()));
                    }
                }
            }
        }
    }
    gathered.retain(|g| {
        config
            .iter()
            .find(|r| r.id == g.id)
            .is_none_or(|r| r.start < window.end() && r.end.is_none_or(|e| e > window.start()))
    });
    gathered.sort_by(|a, b| {
        let key = |g: &Gathered| g.order.unwrap_or(f64::INFINITY);
        key(a).total_cmp(&key(b)).then(a.seen.cmp(&b.seen))
    });
    let cuts: Vec<DateTime<Utc>> = answers.iter().map(|(c, _)| c.start()).collect();
    gathered
        .into_iter()
        .map(|g| RoleTimeline {
            name: g.name,
            periods: joined(g.periods, &cuts),
        })
        .collect()
}

/// Sorts the periods and makes them disjoint, joining the pieces the wire split: neighbours of one
/// person that meet at an instant with a fraction of a second (where the vendor splits a period at
/// the request instant into `historical` and the rest, as the spec's example shows: nothing else
/// it keeps has fractions) or at a chunk boundary. Handoffs at whole seconds stay as they are.
fn joined(
    mut periods: Vec<(DateTime<Utc>, DateTime<Utc>, Email)>,
    cuts: &[DateTime<Utc>],
) -> Vec<OnCallPeriod> {
    periods.sort_by(|a, b| a.0.cmp(&b.0).then(a.1.cmp(&b.1)));
    let mut out: Vec<OnCallPeriod> = Vec::with_capacity(periods.len());
    for (start, end, member) in periods {
        let Some(last) = out.last_mut() else {
            out.push(OnCallPeriod { start, end, member });
            continue;
        };
        let split = start.timestamp_subsec_nanos() != 0 || cuts.contains(&start);
        if last.end == start && last.member == member && split {
            last.end = end;
            continue;
        }
        // A final timeline does not overlap itself; if it ever did, the earlier period keeps its
        // end and the later one starts after it.
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

    fn t(h: u32, m: u32, s: u32, ms: i64) -> DateTime<Utc> {
        Utc.with_ymd_and_hms(2024, 2, 1, h, m, s).unwrap() + TimeDelta::milliseconds(ms)
    }

    fn period(start: DateTime<Utc>, end: DateTime<Utc>, who: &str) -> TimelinePeriod {
        let responder = match who {
            "team" => WireResponder::Other {
                kind: "team".into(),
                id: "t".into(),
            },
            "noone" => WireResponder::Nobody,
            account => WireResponder::User(account.into()),
        };
        TimelinePeriod {
            start,
            end,
            responder,
        }
    }

    fn people() -> HashMap<String, Email> {
        ["ann", "bob"]
            .iter()
            .map(|n| {
                (
                    (*n).to_owned(),
                    Email::parse(&format!("{n}@example.com")).unwrap(),
                )
            })
            .collect()
    }

    #[test]
    fn pieces_split_at_the_request_instant_join_and_handoffs_stay() {
        // As in the spec's example: a period split at 08:12:19.866 (historical, then the rest).
        let split = t(8, 12, 19, 866);
        let rotation = TimelineRotation {
            id: "r".into(),
            name: "Primary".into(),
            order: Some(1.0),
            deleted: false,
            periods: vec![
                period(split, t(12, 0, 0, 0), "ann"),
                period(t(6, 0, 0, 0), split, "ann"),
                period(t(12, 0, 0, 0), t(14, 0, 0, 0), "ann"),
                period(t(14, 0, 0, 0), t(16, 0, 0, 0), "team"),
                period(t(16, 0, 0, 0), t(18, 0, 0, 0), "noone"),
                period(t(18, 0, 0, 0), t(20, 0, 0, 0), "bob"),
            ],
        };
        let window = Window::new(t(7, 0, 0, 0), t(19, 0, 0, 0)).unwrap();
        let roles = role_timelines(&[(window, vec![rotation])], &[], &people(), window);
        let got: Vec<_> = roles[0]
            .periods
            .iter()
            .map(|p| (p.start, p.end, p.member.as_str().to_owned()))
            .collect();
        assert_eq!(
            got,
            vec![
                (t(7, 0, 0, 0), t(12, 0, 0, 0), "ann@example.com".into()),
                (t(12, 0, 0, 0), t(14, 0, 0, 0), "ann@example.com".into()),
                (t(18, 0, 0, 0), t(19, 0, 0, 0), "bob@example.com".into()),
            ]
        );
    }

    #[test]
    fn roles_follow_timeline_order_and_deleted_rotations_are_none() {
        let w1 = Window::new(t(0, 0, 0, 0), t(12, 0, 0, 0)).unwrap();
        let w2 = Window::new(t(12, 0, 0, 0), t(23, 0, 0, 0)).unwrap();
        let whole = Window::new(w1.start(), w2.end()).unwrap();
        let rot = |id: &str, order: Option<f64>, deleted: bool| TimelineRotation {
            id: id.into(),
            name: id.into(),
            order,
            deleted,
            periods: vec![period(t(6, 0, 0, 0), t(18, 0, 0, 0), "ann")],
        };
        let answer = vec![
            rot("a", Some(4.5), false),
            rot("b", None, false),
            rot("c", Some(1.0), false),
            rot("d", None, true),
        ];
        let roles = role_timelines(&[(w1, answer.clone()), (w2, answer)], &[], &people(), whole);
        let names: Vec<_> = roles.iter().map(|r| r.name.as_str()).collect();
        assert_eq!(names, ["c", "a", "b"]);
        assert_eq!(
            roles[0].periods.len(),
            1,
            "joined across the chunk boundary"
        );
    }

    #[test]
    fn chunks_cover_the_window() {
        let w = Window::new(t(0, 0, 0, 0), t(0, 0, 0, 0) + TimeDelta::days(60)).unwrap();
        let c = chunks(w);
        assert_eq!(c.len(), 3);
        assert!(c.windows(2).all(|p| p[0].end() == p[1].start()));
        assert_eq!((c[0].start(), c[2].end()), (w.start(), w.end()));
        assert_eq!(interval_days(c[0]), 30);
    }
}
