//! `impl Probe for OpsgenieProvider`: what an account says about each point the reference leaves
//! UNCONFIRMED (DESIGN §7), read from the account itself. Each finding names its point as the
//! simulator dialect's switch ([`testkit::OpsgenieDialect`](crate::testkit)) and its reading as
//! that switch's setting; `roster`, `key_rights`, `running_overrides` and `delete_running` are
//! points of their own.
//!
//! Without [`ProbeRequest::write_to`] the probe only reads, within the endpoints a sync uses
//! (R10). With it, it writes to that schedule only: overrides a month ahead (and two that run
//! now, for the points about running overrides), all removed before it returns. What the vendor
//! ended at its now (a running override truncated by its delete, or cut by an update) is history
//! no one can delete, and is not listed; what could not be removed otherwise is
//! ([`ProbeReport::left_behind`]).

use std::time::Duration;

use async_trait::async_trait;
use chrono::{DateTime, SecondsFormat, TimeDelta, Utc};
use oncall_core::probe::{Probe, ProbeFinding, ProbeReport, ProbeRequest};
use oncall_core::{
    expand_rotation, local_time, resolve_local, Email, Error, OnCallPeriod, OverrideId,
    Participant, Rotation, RotationUnit, Span, VendorScheduleId, Window,
};
use serde_json::{json, Value};

use crate::client::{RawAnswer, Request};
use crate::error::{CallContext, Op};
use crate::json::Node;
use crate::models::{self, WireRotation, WireSchedule};
use crate::provider::OpsgenieProvider;
use crate::timeline::{chunks, interval_days, periods_of, rotation_order};

/// The findings so far, and what the probe wrote.
struct Findings {
    report: ProbeReport,
    /// Aliases the probe created and has not removed yet.
    made: Vec<(VendorScheduleId, OverrideId)>,
}

impl Findings {
    fn add(
        &mut self,
        point: &str,
        schedule: Option<&VendorScheduleId>,
        reading: Option<&str>,
        detail: impl Into<String>,
    ) {
        self.report.findings.push(ProbeFinding {
            point: point.to_owned(),
            schedule: schedule.cloned(),
            reading: reading.map(str::to_owned),
            detail: detail.into(),
        });
    }
}

/// A whole second, `seconds` after the next whole hour after `now`.
fn at_hour_after(now: DateTime<Utc>, hours: i64, seconds: i64) -> DateTime<Utc> {
    let hour = now.timestamp().div_euclid(3600) * 3600 + 3600;
    DateTime::from_timestamp(hour + hours * 3600 + seconds, 0).unwrap_or(now)
}

fn iso(t: DateTime<Utc>) -> String {
    t.to_rfc3339_opts(SecondsFormat::Millis, true)
}

/// Consecutive periods of one person joined: two renderings compare by who is on call when,
/// not by where each cuts turns of one person.
fn normalised(periods: Vec<OnCallPeriod>) -> Vec<OnCallPeriod> {
    let mut out: Vec<OnCallPeriod> = Vec::new();
    for p in periods {
        match out.last_mut() {
            Some(last) if last.end == p.start && last.member == p.member => last.end = p.end,
            _ => out.push(p),
        }
    }
    out
}

/// The rotation's turns in absolute time (every 24 hours or 7 days from its start), kept where
/// the rotation is active in its zone: the other reading of [`Handoffs`](crate::testkit).
fn absolute_expansion(
    rotation: &Rotation,
    zone: chrono_tz::Tz,
    window: Window,
) -> Vec<OnCallPeriod> {
    let Ok(stand_in) = Email::parse("active@oncall-sync.invalid") else {
        return Vec::new();
    };
    let probe = Rotation {
        participants: vec![Participant::Member(stand_in)],
        ..rotation.clone()
    };
    let mut active: Vec<(DateTime<Utc>, DateTime<Utc>)> = Vec::new();
    for p in expand_rotation(&probe, zone, window).unwrap_or_default() {
        match active.last_mut() {
            Some(last) if last.1 == p.start => last.1 = p.end,
            _ => active.push((p.start, p.end)),
        }
    }
    let utc = |t| local_time(chrono_tz::UTC, resolve_local(zone, t));
    let absolute = Rotation {
        start: utc(rotation.start),
        effective_from: rotation.effective_from.map(utc),
        end: rotation.end.map(utc),
        restrictions: Vec::new(),
        ..rotation.clone()
    };
    let mut out = Vec::new();
    for p in expand_rotation(&absolute, chrono_tz::UTC, window).unwrap_or_default() {
        for &(s, e) in &active {
            let (start, end) = (p.start.max(s), p.end.min(e));
            if start < end {
                out.push(OnCallPeriod {
                    start,
                    end,
                    member: p.member.clone(),
                });
            }
        }
    }
    out
}

impl OpsgenieProvider {
    /// One attempt, its answer as it came (the probe reads refusals itself).
    async fn raw(&self, request: &Request<'_>) -> Result<RawAnswer, Error> {
        self.client.raw(request).await
    }

    /// A raw override call with a JSON body.
    async fn raw_override(
        &self,
        op: Op,
        schedule: &VendorScheduleId,
        alias: Option<&OverrideId>,
        body: Option<Value>,
    ) -> Result<RawAnswer, Error> {
        let mut request = Self::override_request(op, schedule, alias, None);
        request.body = body;
        self.raw(&request).await
    }

    /// The listing's overrides with their rotations, straight from the vendor (no journal).
    async fn raw_listing(
        &self,
        schedule: &VendorScheduleId,
    ) -> Result<Vec<models::HeldOverride>, Error> {
        let answer = self
            .raw_override(Op::ListOverrides, schedule, None, None)
            .await?;
        if !(200..300).contains(&answer.status) {
            return Err(Error::Rejected {
                message: format!("listing overrides answered HTTP {}", answer.status),
            });
        }
        let json = answer.json();
        Node::root(&json)
            .field("data")?
            .items()?
            .iter()
            .map(models::override_)
            .collect()
    }

    /// One override straight from the vendor, when it answers 2xx.
    async fn raw_get(
        &self,
        schedule: &VendorScheduleId,
        alias: &OverrideId,
    ) -> Result<Option<models::HeldOverride>, Error> {
        let answer = self
            .raw_override(Op::GetOverride, schedule, Some(alias), None)
            .await?;
        if !(200..300).contains(&answer.status) {
            return Ok(None);
        }
        let json = answer.json();
        models::override_(&Node::root(&json).field("data")?).map(Some)
    }

    /// The vendor's own rendering (one timeline of a timeline answer) over `window`, per chunk.
    async fn rendering(
        &self,
        schedule: &VendorScheduleId,
        window: Window,
        which: &str,
        expand: &str,
    ) -> Result<Vec<crate::timeline::Answer>, Error> {
        let mut answers = Vec::new();
        for chunk in chunks(window) {
            let span = Some((iso(chunk.start()), interval_days(chunk)));
            let (mut answer, json) = self.timeline_expanded(schedule, span, Some(expand)).await?;
            answer.rotations = models::timeline(&Node::root(&json), which)?;
            answer.chunk = chunk;
            answers.push(answer);
        }
        Ok(answers)
    }

    /// Settles the read-only points of one schedule.
    async fn probe_schedule(&self, f: &mut Findings, id: &VendorScheduleId, now: DateTime<Utc>) {
        let at = Some(id);
        let details = match self.schedule_details(id).await {
            Ok(d) => d,
            Err(e) => {
                f.add(
                    "roster",
                    at,
                    None,
                    format!("the schedule could not be read: {e}"),
                );
                return;
            }
        };
        let unresolved: Vec<String> = details.notes.iter().map(ToString::to_string).collect();
        if unresolved.is_empty() {
            f.add(
                "roster",
                at,
                Some("resolves"),
                format!(
                    "every participant of its {} rotations is a user with an e-mail",
                    details.schedule.rotations.len()
                ),
            );
        } else {
            f.add("roster", at, Some("unresolved"), unresolved.join("; "));
        }
        let wire = match self.get_schedule(id).await {
            Ok(w) => w,
            Err(e) => {
                f.add(
                    "rotation_order",
                    at,
                    None,
                    format!("the schedule could not be read: {e}"),
                );
                return;
            }
        };
        self.probe_rotation_order(f, id, &wire).await;
        self.probe_timeline_split(f, id, now).await;
        self.probe_past_overrides(f, id, now).await;
        self.probe_missing_override(f, id, now).await;
        self.probe_handoffs(f, id, &wire, now).await;
    }

    async fn probe_rotation_order(
        &self,
        f: &mut Findings,
        id: &VendorScheduleId,
        wire: &WireSchedule,
    ) {
        let at = Some(id);
        if wire.rotations.len() < 2 {
            f.add(
                "rotation_order",
                at,
                None,
                "fewer than two rotations: nothing to order",
            );
            return;
        }
        let timeline = match self.timeline(id, None).await {
            Ok(t) => t.rotations,
            Err(e) => {
                f.add(
                    "rotation_order",
                    at,
                    None,
                    format!("the timeline could not be read: {e}"),
                );
                return;
            }
        };
        let mut orders: Vec<f64> = wire
            .rotations
            .iter()
            .filter_map(|r| timeline.iter().find(|t| t.id == r.id).and_then(|t| t.order))
            .collect();
        orders.sort_by(f64::total_cmp);
        orders.dedup();
        if orders.len() < wire.rotations.len() {
            f.add(
                "rotation_order",
                at,
                None,
                "the timeline gives no distinct `order` for every rotation",
            );
            return;
        }
        let ui = rotation_order(&wire.rotations, &timeline);
        let array: Vec<usize> = (0..wire.rotations.len()).collect();
        let names = |order: &[usize]| -> String {
            order
                .iter()
                .map(|&i| wire.rotations[i].rotation.name.clone())
                .collect::<Vec<_>>()
                .join(", ")
        };
        let reading = if ui == array { "timeline" } else { "shuffled" };
        f.add(
            "rotation_order",
            at,
            Some(reading),
            format!("array: {}; timeline order: {}", names(&array), names(&ui)),
        );
    }

    async fn probe_timeline_split(
        &self,
        f: &mut Findings,
        id: &VendorScheduleId,
        now: DateTime<Utc>,
    ) {
        let at = Some(id);
        let span = Some((iso(now - TimeDelta::days(1)), 3));
        let answer = match self.timeline_expanded(id, span, None).await {
            Ok((answer, _)) => answer,
            Err(e) => {
                f.add(
                    "timeline_split",
                    at,
                    None,
                    format!("the timeline could not be read: {e}"),
                );
                return;
            }
        };
        let vendor_now = answer.vendor_now.unwrap_or(now);
        for r in &answer.rotations {
            for a in r
                .periods
                .iter()
                .filter(|p| p.kind.as_deref() == Some("historical"))
            {
                let split = r.periods.iter().any(|b| {
                    b.kind.as_deref() == Some("default")
                        && b.start == a.end
                        && b.recipient == a.recipient
                });
                if split {
                    let reading = if a.end.timestamp_subsec_nanos() != 0 {
                        "milliseconds"
                    } else {
                        "whole_seconds"
                    };
                    f.add(
                        "timeline_split",
                        at,
                        Some(reading),
                        format!(
                            "rotation {:?}: historical, then default, at {}",
                            r.name,
                            iso(a.end)
                        ),
                    );
                    return;
                }
            }
            if let Some(p) = r.periods.iter().find(|p| {
                p.start < vendor_now && vendor_now < p.end && p.kind.as_deref() != Some("override")
            }) {
                f.add(
                    "timeline_split",
                    at,
                    Some("no_split"),
                    format!(
                        "rotation {:?}: one period from {} to {} across the vendor's now {}",
                        r.name,
                        iso(p.start),
                        iso(p.end),
                        iso(vendor_now)
                    ),
                );
                return;
            }
        }
        f.add(
            "timeline_split",
            at,
            None,
            "no turn runs at the request instant: nothing to split",
        );
    }

    async fn probe_past_overrides(
        &self,
        f: &mut Findings,
        id: &VendorScheduleId,
        now: DateTime<Utc>,
    ) {
        let at = Some(id);
        let held = match self.raw_listing(id).await {
            Ok(h) => h,
            Err(e) => {
                f.add(
                    "past_overrides",
                    at,
                    None,
                    format!("the overrides could not be listed: {e}"),
                );
                return;
            }
        };
        let vendor_now = self.client.vendor_now().unwrap_or(now);
        if let Some(h) = held.iter().find(|h| h.held.span.end <= vendor_now) {
            f.add(
                "past_overrides",
                at,
                Some("listed"),
                format!(
                    "{} ended at {} and is listed",
                    h.held.id,
                    iso(h.held.span.end)
                ),
            );
        } else {
            let past = Window::new(now - TimeDelta::days(28), now);
            let rendering = match past {
                Ok(w) => self.rendering(id, w, "overrideTimeline", "override").await,
                Err(e) => Err(e.into()),
            };
            match rendering {
                Ok(answers) => {
                    let ended = answers
                        .iter()
                        .flat_map(|a| &a.rotations)
                        .flat_map(|r| &r.periods)
                        .find(|p| p.end <= vendor_now);
                    match ended {
                        Some(p) => f.add(
                            "past_overrides",
                            at,
                            Some("not_listed"),
                            format!(
                                "the timeline shows an override that ended at {}; the listing shows none that ended",
                                iso(p.end)
                            ),
                        ),
                        None => f.add(
                            "past_overrides",
                            at,
                            None,
                            "no override ended in the last 28 days: nothing to tell by",
                        ),
                    }
                }
                Err(e) => f.add(
                    "past_overrides",
                    at,
                    None,
                    format!("the timeline could not be read: {e}"),
                ),
            }
        }
        if held.iter().any(|h| h.rotations.is_empty()) {
            f.add(
                "all_rotations",
                at,
                Some("empty"),
                "an override names no rotation (`rotations: []`)",
            );
        }
    }

    async fn probe_missing_override(
        &self,
        f: &mut Findings,
        id: &VendorScheduleId,
        now: DateTime<Utc>,
    ) {
        let at = Some(id);
        let alias = OverrideId::new(format!("oncall-sync-probe-missing-{}", now.timestamp()));
        match self
            .raw_override(Op::GetOverride, id, Some(&alias), None)
            .await
        {
            Ok(a) => {
                let reading = match a.status {
                    404 => Some("not_found_404"),
                    403 => Some("forbidden_40301"),
                    _ => None,
                };
                f.add(
                    "missing_override",
                    at,
                    reading,
                    format!(
                        "GET of an alias the schedule does not hold: HTTP {}",
                        a.status
                    ),
                );
            }
            Err(e) => f.add("missing_override", at, None, e.to_string()),
        }
    }

    /// The core's expansion of each daily or weekly rotation against the vendor's own rendering
    /// (`baseTimeline`) over a year around `now`: wall-clock handoffs, or every 24 hours.
    async fn probe_handoffs(
        &self,
        f: &mut Findings,
        id: &VendorScheduleId,
        wire: &WireSchedule,
        now: DateTime<Utc>,
    ) {
        let at = Some(id);
        let Ok(year) = Window::new(now - TimeDelta::days(182), now + TimeDelta::days(183)) else {
            return;
        };
        let candidates: Vec<&WireRotation> = wire
            .rotations
            .iter()
            .filter(|r| r.rotation.unit != RotationUnit::Hourly)
            .filter(|r| {
                let wall = expand_rotation(&r.rotation, wire.zone, year).unwrap_or_default();
                normalised(wall) != normalised(absolute_expansion(&r.rotation, wire.zone, year))
            })
            .collect();
        if candidates.is_empty() {
            f.add(
                "handoffs",
                at,
                None,
                format!(
                    "no daily or weekly rotation crosses a change of offset in {} within a year: nothing to tell by",
                    wire.zone.name()
                ),
            );
            return;
        }
        let answers = match self.rendering(id, year, "baseTimeline", "base").await {
            Ok(a) => a,
            Err(e) => {
                f.add(
                    "handoffs",
                    at,
                    None,
                    format!("the timeline could not be read: {e}"),
                );
                return;
            }
        };
        let mut readings = Vec::new();
        let mut details = Vec::new();
        for r in candidates {
            let vendor = normalised(periods_of(&answers, &r.id, year));
            let wall =
                normalised(expand_rotation(&r.rotation, wire.zone, year).unwrap_or_default());
            let absolute = normalised(absolute_expansion(&r.rotation, wire.zone, year));
            let reading = if vendor == wall {
                Some("wall_clock")
            } else if vendor == absolute {
                Some("absolute_seconds")
            } else {
                None
            };
            details.push(format!(
                "rotation {:?}: {} periods, {}",
                r.rotation.name,
                vendor.len(),
                reading.unwrap_or("matching neither reading")
            ));
            readings.push(reading);
        }
        let first = readings[0];
        let agreed = readings
            .iter()
            .all(|r| *r == first)
            .then_some(first)
            .flatten();
        f.add("handoffs", at, agreed, details.join("; "));
    }

    /// The write points, on the scratch schedule only. Everything made is removed; what the vendor
    /// keeps as history is reported left behind.
    async fn probe_writes(&self, f: &mut Findings, id: &VendorScheduleId, now: DateTime<Utc>) {
        let at = Some(id);
        let wire = match self.get_schedule(id).await {
            Ok(w) => w,
            Err(e) => {
                f.add(
                    "key_rights",
                    at,
                    None,
                    format!("the scratch schedule could not be read: {e}"),
                );
                return;
            }
        };
        let people: Vec<Email> = {
            let mut people: Vec<Email> = Vec::new();
            for r in &wire.rotations {
                for m in &r.members {
                    if !people.contains(m) {
                        people.push(m.clone());
                    }
                }
            }
            people
        };
        let Some(first) = people.first().cloned() else {
            f.add(
                "key_rights",
                at,
                None,
                "the scratch schedule has no user to write overrides for",
            );
            return;
        };
        let stamp = now.timestamp();
        let alias = |tag: &str| OverrideId::new(format!("oncall-sync-probe-{stamp}-{tag}"));
        let base = at_hour_after(now, 24 * 30, 0);

        // A future override, with seconds: rounding, listing lag, rotations read back.
        let f_alias = alias("f");
        let f_span = Span::new(
            base + TimeDelta::seconds(37),
            base + TimeDelta::hours(1) + TimeDelta::seconds(37),
            first.clone(),
        );
        let created = self.probe_create(f, id, &f_span, &f_alias, None).await;
        match created {
            Some(201..=299) => {
                f.add(
                    "key_rights",
                    at,
                    Some("read_write"),
                    "an override was created on the scratch schedule",
                );
            }
            Some(403) => {
                f.add(
                    "key_rights",
                    at,
                    Some("read_only"),
                    "the create was refused with 403",
                );
                return;
            }
            other => {
                f.add(
                    "key_rights",
                    at,
                    None,
                    format!("the create was answered {other:?}"),
                );
                return;
            }
        }
        self.probe_listing_lag(f, id, &f_alias).await;
        match self.raw_get(id, &f_alias).await {
            Ok(Some(held)) => {
                let reading = if held.held.span.start == f_span.start {
                    Some("seconds")
                } else if held.held.span.start == f_span.start - TimeDelta::seconds(37) {
                    Some("floor_to_minute")
                } else {
                    None
                };
                f.add(
                    "rounding",
                    at,
                    reading,
                    format!(
                        "sent a start of {}, held {}",
                        iso(f_span.start),
                        iso(held.held.span.start)
                    ),
                );
                let reading = if held.rotations.is_empty() {
                    Some("empty")
                } else if held.rotations.len() == wire.rotations.len() {
                    Some("full_list")
                } else {
                    None
                };
                f.add(
                    "all_rotations",
                    at,
                    reading,
                    format!(
                        "an override of every rotation reads back {} rotations",
                        held.rotations.len()
                    ),
                );
            }
            other => f.add(
                "rounding",
                at,
                None,
                format!("the override could not be read back: {other:?}"),
            ),
        }
        // The same alias again.
        let again = Span::new(
            base + TimeDelta::hours(2),
            base + TimeDelta::hours(3),
            first.clone(),
        );
        match self
            .raw_override(
                Op::CreateOverride,
                id,
                None,
                Some(models::create_body(&again, Some(&f_alias))),
            )
            .await
        {
            Ok(a) => {
                f.report.write_calls += 1;
                let reading = match a.status {
                    409 => Some("conflict_409"),
                    422 => Some("unprocessable_422"),
                    400 => Some("bad_request_400"),
                    _ => None,
                };
                f.add(
                    "alias_taken",
                    at,
                    reading,
                    format!("a second create under one alias: HTTP {}", a.status),
                );
            }
            Err(e) => f.add("alias_taken", at, None, e.to_string()),
        }
        self.probe_overlap(f, id, &wire, &people, &f_span, &f_alias, &alias("g"))
            .await;
        self.probe_put_without_rotations(f, id, &wire, &first, base, &alias("h"))
            .await;
        self.probe_unknown_user(f, id, base, &alias("u")).await;
        // Delete the future one: what the answer is.
        match self
            .raw_override(Op::DeleteOverride, id, Some(&f_alias), None)
            .await
        {
            Ok(a) => {
                f.report.write_calls += 1;
                let reading = match a.status {
                    200 => Some("ok_200"),
                    204 => Some("no_content_204"),
                    _ => None,
                };
                if (200..300).contains(&a.status) {
                    f.made.retain(|(_, m)| *m != f_alias);
                }
                f.add(
                    "delete_answer",
                    at,
                    reading,
                    format!("DELETE of a future override: HTTP {}", a.status),
                );
            }
            Err(e) => f.add("delete_answer", at, None, e.to_string()),
        }
        self.probe_running(f, id, &wire, &first, now, &alias("r"), &alias("p"))
            .await;
    }

    /// Creates an override for the probe; the status answered.
    async fn probe_create(
        &self,
        f: &mut Findings,
        id: &VendorScheduleId,
        span: &Span,
        alias: &OverrideId,
        rotations: Option<Value>,
    ) -> Option<u16> {
        let mut body = models::create_body(span, Some(alias));
        if let (Some(r), Value::Object(map)) = (rotations, &mut body) {
            map.insert("rotations".into(), r);
        }
        let answer = self
            .raw_override(Op::CreateOverride, id, None, Some(body))
            .await
            .ok()?;
        f.report.write_calls += 1;
        if (200..300).contains(&answer.status) {
            f.made.push((id.clone(), alias.clone()));
        }
        Some(answer.status)
    }

    async fn probe_listing_lag(&self, f: &mut Findings, id: &VendorScheduleId, alias: &OverrideId) {
        let at = Some(id);
        for read in 1..=3 {
            match self.raw_listing(id).await {
                Ok(held) if held.iter().any(|h| h.held.id == *alias) => {
                    let reading = if read == 1 { "immediate" } else { "lagged" };
                    f.add(
                        "listing_lag",
                        at,
                        Some(reading),
                        format!("the create showed in listing number {read} after it"),
                    );
                    return;
                }
                Ok(_) => tokio::time::sleep(Duration::from_millis(300)).await,
                Err(e) => {
                    f.add("listing_lag", at, None, e.to_string());
                    return;
                }
            }
        }
        f.add(
            "listing_lag",
            at,
            Some("lagged"),
            "the create did not show in three listings over 0.6 s",
        );
    }

    /// Who the final timeline shows over `span` in the first rotation that shows anyone there.
    async fn shown_over(&self, id: &VendorScheduleId, span: &Span) -> Option<Email> {
        let window = Window::new(span.start, span.end).ok()?;
        let date = iso(span.start - TimeDelta::days(1));
        let (answer, _) = self
            .timeline_expanded(id, Some((date, 3)), None)
            .await
            .ok()?;
        let middle = span.start + (span.end - span.start) / 2;
        answer.rotations.iter().find_map(|r| {
            r.periods.iter().find_map(|p| match &p.recipient {
                models::Recipient::User(email)
                    if p.kind.as_deref() == Some("override")
                        && p.start <= middle
                        && middle < p.end
                        && window.start() < p.end =>
                {
                    Some(email.clone())
                }
                _ => None,
            })
        })
    }

    #[allow(clippy::too_many_arguments)]
    async fn probe_overlap(
        &self,
        f: &mut Findings,
        id: &VendorScheduleId,
        wire: &WireSchedule,
        people: &[Email],
        f_span: &Span,
        f_alias: &OverrideId,
        g_alias: &OverrideId,
    ) {
        let at = Some(id);
        let Some(second) = people.get(1).cloned() else {
            f.add(
                "overlap",
                at,
                None,
                "the scratch schedule has one user: nothing to overlap",
            );
            return;
        };
        let _ = wire;
        let g_span = Span::new(f_span.start, f_span.end, second.clone());
        if !matches!(
            self.probe_create(f, id, &g_span, g_alias, None).await,
            Some(200..=299)
        ) {
            f.add(
                "overlap",
                at,
                None,
                "the overlapping override could not be created",
            );
            return;
        }
        let first_look = self.shown_over(id, f_span).await;
        // Write the first one again, unchanged.
        let put = self
            .raw_override(
                Op::UpdateOverride,
                id,
                Some(f_alias),
                Some(models::update_body(f_span, &[])),
            )
            .await;
        f.report.write_calls += 1;
        let second_look = self.shown_over(id, f_span).await;
        let owner = &f_span.member;
        let reading = match (&first_look, &second_look, put) {
            (Some(a), _, _) if a == owner => Some("first_created"),
            (Some(a), Some(b), Ok(p)) if *a == second && (200..300).contains(&p.status) => {
                if b == owner {
                    Some("last_written")
                } else {
                    Some("last_created")
                }
            }
            _ => None,
        };
        let shown = |who: &Option<Email>| {
            who.as_ref()
                .map_or("nobody".to_owned(), ToString::to_string)
        };
        f.add(
            "overlap",
            at,
            reading,
            format!(
                "{owner} first, then {second}, over one hour: the timeline shows {}; after {owner}'s \
                 is written again, {}",
                shown(&first_look),
                shown(&second_look)
            ),
        );
        if let Ok(a) = self
            .raw_override(Op::DeleteOverride, id, Some(g_alias), None)
            .await
        {
            f.report.write_calls += 1;
            if (200..300).contains(&a.status) {
                f.made.retain(|(_, m)| m != g_alias);
            }
        }
    }

    async fn probe_put_without_rotations(
        &self,
        f: &mut Findings,
        id: &VendorScheduleId,
        wire: &WireSchedule,
        who: &Email,
        base: DateTime<Utc>,
        h_alias: &OverrideId,
    ) {
        let at = Some(id);
        if wire.rotations.len() < 2 {
            f.add(
                "put_without_rotations",
                at,
                None,
                "fewer than two rotations: no override can be limited",
            );
            return;
        }
        let limited_to = &wire.rotations[0].id;
        let span = Span::new(
            base + TimeDelta::hours(4),
            base + TimeDelta::hours(5),
            who.clone(),
        );
        let created = self
            .probe_create(f, id, &span, h_alias, Some(json!([{ "id": limited_to }])))
            .await;
        if !matches!(created, Some(200..=299)) {
            f.add(
                "put_without_rotations",
                at,
                None,
                format!("a limited override could not be created: {created:?}"),
            );
            return;
        }
        let put = self
            .raw_override(
                Op::UpdateOverride,
                id,
                Some(h_alias),
                Some(models::update_body(&span, &[])),
            )
            .await;
        f.report.write_calls += 1;
        let held = self.raw_get(id, h_alias).await;
        let reading = match (put, held) {
            (Ok(p), Ok(Some(h))) if (200..300).contains(&p.status) => {
                let names_only_first = h.rotations.len() == 1
                    && h.rotations[0].id.as_deref() == Some(limited_to.as_str());
                Some(if names_only_first {
                    "keeps_rotations"
                } else {
                    "resets_to_all"
                })
            }
            _ => None,
        };
        f.add(
            "put_without_rotations",
            at,
            reading,
            "an override limited to one rotation, updated without `rotations`",
        );
        self.remove(f, id, h_alias).await;
    }

    async fn probe_unknown_user(
        &self,
        f: &mut Findings,
        id: &VendorScheduleId,
        base: DateTime<Utc>,
        u_alias: &OverrideId,
    ) {
        let at = Some(id);
        let Ok(nobody) = Email::parse("oncall-sync-probe-nobody@example.invalid") else {
            return;
        };
        let span = Span::new(
            base + TimeDelta::hours(6),
            base + TimeDelta::hours(7),
            nobody,
        );
        let answer = self
            .raw_override(
                Op::CreateOverride,
                id,
                None,
                Some(models::create_body(&span, Some(u_alias))),
            )
            .await;
        f.report.write_calls += 1;
        match answer {
            Ok(a) if (200..300).contains(&a.status) => {
                f.made.push((id.clone(), u_alias.clone()));
                f.add(
                    "unknown_user",
                    at,
                    None,
                    "the vendor accepted an override for a user it cannot have",
                );
                self.remove(f, id, u_alias).await;
            }
            Ok(a) => {
                let json = a.json();
                let field = json
                    .get("errors")
                    .and_then(Value::as_object)
                    .is_some_and(|e| e.keys().any(|k| k.to_lowercase().starts_with("user")));
                let reading = match a.status {
                    422 if field => Some("field_error"),
                    422 => Some("message_only"),
                    404 => Some("not_found_404"),
                    _ => None,
                };
                f.add(
                    "unknown_user",
                    at,
                    reading,
                    format!("HTTP {}: {}", a.status, String::from_utf8_lossy(&a.body)),
                );
            }
            Err(e) => f.add("unknown_user", at, None, e.to_string()),
        }
    }

    /// Two overrides that run now: one split or not in the timeline and deleted (running), one
    /// ended in the vendor's past by an update.
    #[allow(clippy::too_many_arguments)]
    async fn probe_running(
        &self,
        f: &mut Findings,
        id: &VendorScheduleId,
        wire: &WireSchedule,
        who: &Email,
        now: DateTime<Utc>,
        r_alias: &OverrideId,
        p_alias: &OverrideId,
    ) {
        let at = Some(id);
        let _ = wire;
        let start = DateTime::from_timestamp(now.timestamp() - 60, 0).unwrap_or(now);
        let running = Span::new(start, at_hour_after(now, 1, 0), who.clone());
        if matches!(
            self.probe_create(f, id, &running, r_alias, None).await,
            Some(200..=299)
        ) {
            // Whether a running override is listed (a listing that lags writes cannot tell).
            let lags = f.report.reading("listing_lag") != Some("immediate");
            match self.raw_listing(id).await {
                Ok(held) if !lags => {
                    let listed = held.iter().any(|h| h.held.id == *r_alias);
                    let reading = if listed { "listed" } else { "not_listed" };
                    f.add(
                        "running_overrides",
                        at,
                        Some(reading),
                        "an override that runs now, in the listing",
                    );
                }
                Ok(_) => f.add(
                    "running_overrides",
                    at,
                    None,
                    "the listing lags writes: cannot tell",
                ),
                Err(e) => f.add("running_overrides", at, None, e.to_string()),
            }
            let span = Some((iso(now - TimeDelta::days(1)), 3));
            match self.timeline_expanded(id, span, None).await {
                Ok((answer, _)) => {
                    let pieces = answer
                        .rotations
                        .iter()
                        .map(|r| {
                            r.periods
                                .iter()
                                .filter(|p| p.kind.as_deref() == Some("override"))
                                .filter(|p| p.start < running.end && running.start < p.end)
                                .count()
                        })
                        .max()
                        .unwrap_or(0);
                    let reading = match pieces {
                        1 => Some("whole"),
                        2 => Some("split"),
                        _ => None,
                    };
                    f.add(
                        "override_split",
                        at,
                        reading,
                        format!("a running override shows as {pieces} period(s)"),
                    );
                }
                Err(e) => f.add("override_split", at, None, e.to_string()),
            }
            match self
                .raw_override(Op::DeleteOverride, id, Some(r_alias), None)
                .await
            {
                Ok(a) => {
                    f.report.write_calls += 1;
                    let after = self.raw_get(id, r_alias).await;
                    let reading = match (&after, (200..300).contains(&a.status)) {
                        (Ok(None), true) => Some("removed"),
                        (Ok(Some(_)), true) => Some("truncated"),
                        _ => None,
                    };
                    // Removed, or ended at the vendor's now: history, which no one can
                    // delete, not something left behind.
                    if reading.is_some() {
                        f.made.retain(|(_, m)| m != r_alias);
                    }
                    f.add(
                        "delete_running",
                        at,
                        reading,
                        format!("DELETE of a running override: HTTP {}", a.status),
                    );
                }
                Err(e) => f.add("delete_running", at, None, e.to_string()),
            }
        } else {
            f.add(
                "override_split",
                at,
                None,
                "an override starting a minute ago could not be created",
            );
        }
        // End a running one a little in the vendor's past.
        if !matches!(
            self.probe_create(f, id, &running.clone(), p_alias, None)
                .await,
            Some(200..=299)
        ) {
            f.add(
                "past_end",
                at,
                None,
                "a running override could not be created",
            );
            return;
        }
        let cut = Span::new(
            running.start,
            running.start + TimeDelta::seconds(30),
            who.clone(),
        );
        let answer = self
            .raw_override(
                Op::UpdateOverride,
                id,
                Some(p_alias),
                Some(models::update_body(&cut, &[])),
            )
            .await;
        f.report.write_calls += 1;
        let reading = match &answer {
            Ok(a) if (200..300).contains(&a.status) => Some("clamp"),
            Ok(a) if a.status == 422 => Some("refuse"),
            _ => None,
        };
        f.add(
            "past_end",
            at,
            reading,
            format!(
                "an update ending a running override 30 s before its end was asked: {:?}",
                answer.map(|a| a.status)
            ),
        );
        self.remove(f, id, p_alias).await;
        if reading == Some("clamp") {
            // The vendor ended it at its now: history, which no one can delete.
            f.made.retain(|(_, m)| m != p_alias);
        }
    }

    /// Deletes one of the probe's overrides; one the vendor keeps stays in `made`.
    async fn remove(&self, f: &mut Findings, id: &VendorScheduleId, alias: &OverrideId) {
        if let Ok(a) = self
            .raw_override(Op::DeleteOverride, id, Some(alias), None)
            .await
        {
            f.report.write_calls += 1;
            if (200..300).contains(&a.status) || a.status == 404 {
                f.made.retain(|(_, m)| m != alias);
            }
        }
    }
}

#[async_trait]
impl Probe for OpsgenieProvider {
    /// Reads, for every schedule (or the one named): the roster, the rotations' array order
    /// against the timeline's, where turns split at the request instant, whether ended overrides
    /// are listed, how a missing alias is answered, and (for daily and weekly rotations in a zone
    /// with DST) the vendor's own rendering over a year against the core's expansion. Once:
    /// how an unknown schedule is answered and the key's rights as reads show them.
    ///
    /// With [`ProbeRequest::write_to`], on that schedule: an override a month ahead with seconds
    /// (rounding, listing lag, `rotations` read back, a taken alias, the delete's answer), two
    /// that overlap (which the timeline shows), one limited to a rotation and updated without
    /// `rotations`, one for a user the account cannot have, and two that run now (listed or not,
    /// split in the timeline or not, deleted while running, ended in the vendor's past by an
    /// update).
    async fn probe(&self, request: &ProbeRequest) -> Result<ProbeReport, Error> {
        self.scrubbed(
            async {
                let mut f = Findings {
                    report: ProbeReport {
                        vendor: "opsgenie".into(),
                        ..ProbeReport::default()
                    },
                    made: Vec::new(),
                };
                let listing = self.list_schedule_details().await?;
                let now =
                    DateTime::from_timestamp(request.now.timestamp(), 0).unwrap_or(request.now);
                let schedules: Vec<VendorScheduleId> = match &request.schedule {
                    Some(id) => vec![id.clone()],
                    None => listing
                        .schedules
                        .iter()
                        .map(|d| d.schedule.id.clone())
                        .collect(),
                };
                let missing = VendorScheduleId(format!("oncall-sync-probe-{}", now.timestamp()));
                let context = CallContext {
                    op: Op::GetSchedule,
                    schedule: Some(&missing.0),
                    ..CallContext::default()
                };
                let unknown = Request::get(vec!["schedules", &missing.0], context)
                    .query("identifierType", "id");
                match self.raw(&unknown).await {
                    Ok(a) => {
                        let reading = match a.status {
                            403 => Some("forbidden_40301"),
                            404 => Some("not_found_404"),
                            _ => None,
                        };
                        f.add(
                            "unknown_schedule",
                            None,
                            reading,
                            format!("GET of a schedule id nobody has: HTTP {}", a.status),
                        );
                    }
                    Err(e) => f.add("unknown_schedule", None, None, e.to_string()),
                }
                if request.write_to.is_none() {
                    f.add(
                        "key_rights",
                        None,
                        Some("read"),
                        format!(
                            "{} schedules listed ({} not translatable); writes untried",
                            listing.schedules.len(),
                            listing.unreadable.len()
                        ),
                    );
                }
                for id in &schedules {
                    self.probe_schedule(&mut f, id, now).await;
                }
                if let Some(scratch) = &request.write_to {
                    self.probe_writes(&mut f, scratch, now).await;
                    for (schedule, alias) in std::mem::take(&mut f.made) {
                        let removed = self
                            .raw_override(Op::DeleteOverride, &schedule, Some(&alias), None)
                            .await
                            .is_ok_and(|a| (200..300).contains(&a.status) || a.status == 404);
                        f.report.write_calls += 1;
                        if !removed {
                            f.report.left_behind.push(alias.to_string());
                        }
                    }
                }
                Ok(f.report)
            }
            .await,
        )
    }
}
