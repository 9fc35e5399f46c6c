//! `oncall probe` for PagerDuty: what the account says about each point the documentation leaves
//! open (DESIGN §7), named as the simulator dialect's switches and settings
//! ([`PagerDutyDialect`](crate::testkit) with the `testkit` feature).
//!
//! Read-only points, per schedule: `layer_turns` and `layer_order` (the core's expansion of each
//! reading against the layers' own rendering over a year from `now`, which spans both DST changes
//! of a zone that has them, and the stacking of those renderings against `final_schedule`),
//! `listing_filter` (a window that starts inside an override lists it or not) and `listing_status`,
//! `roster` (each member's e-mail found again with `GET /users?query=`); for the account,
//! `unauthorized_body` (one read with a key that is no key) and `key_rights`.
//!
//! With [`ProbeRequest::write_to`] (a scratch schedule), also: `create_answer` and `rounding` (a
//! future override created with a start 30 s past the minute), `listing_lag` (how long until a
//! read shows it), `delete_answer` (its delete's first answer), `delete_running` (an override
//! written from now, deleted: truncated or removed), `all_failed_status` and `error_texts` (a
//! batch whose one item ends in the past). Everything made is deleted; what could not be is in
//! [`ProbeReport::left_behind`]. PagerDuty has no client-chosen ids, so there is no alias to try.
//! `lost_writes`, `rate_limit` and `v3_answer` cannot be settled without a lost answer, a rate
//! limit or a v3 schedule: they are reported unsettled.

use std::collections::HashMap;

use async_trait::async_trait;
use chrono::{DateTime, TimeDelta, Timelike, Utc};
use oncall_core::probe::{Probe, ProbeFinding, ProbeReport, ProbeRequest};
use oncall_core::{Email, Error, OverrideId, Provider, VendorScheduleId, Window};
use reqwest::{Method, StatusCode};
use serde_json::{json, Value};

use crate::client::Answer;
use crate::layers::{check_layers, Rendered};
use crate::models::{
    self, decode, decode_optional_items, wire_time, Layer, ScheduleHead, UserRef, WireOverride,
};
use crate::provider::PagerDutyProvider;
use crate::translate::Turns;

/// The span of the layer points: a year, so that both DST changes of a zone fall in it.
const YEAR: TimeDelta = TimeDelta::days(365);

/// One render read covers at most this much (PagerDuty's longest render span is UNCONFIRMED).
const CHUNK: TimeDelta = TimeDelta::days(30);

/// How far around `now` the read-only look for an override reaches.
const LOOK_AROUND: TimeDelta = TimeDelta::days(60);

/// Members of a schedule whose e-mails the roster point looks up, at most.
const ROSTER_SAMPLE: usize = 20;

/// Attempts to remove what the probe made before it is left behind.
const CLEANUP_ATTEMPTS: u32 = 8;

/// Texts PagerDuty was seen to send for an override that ends in the past or before its start
/// (go-pagerduty#339, the spec's example).
const CAPTURED_REFUSALS: [&str; 2] = [
    "Override must end in the future",
    "Override must end after its start",
];

fn finding(
    point: &str,
    schedule: Option<&VendorScheduleId>,
    reading: Option<&str>,
    detail: impl Into<String>,
) -> ProbeFinding {
    ProbeFinding {
        point: point.to_owned(),
        schedule: schedule.cloned(),
        reading: reading.map(str::to_owned),
        detail: detail.into(),
    }
}

/// What the reads showed about the key's rights.
#[derive(Debug, Default)]
struct Rights {
    refused_reads: Vec<String>,
    wrote: bool,
    refused_write: bool,
}

fn segment(id: &str) -> String {
    id.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                (b as char).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect()
}

fn overrides_path(schedule: &VendorScheduleId) -> String {
    format!("/schedules/{}/overrides", segment(&schedule.0))
}

fn body_text(answer: &Answer) -> String {
    let text = String::from_utf8_lossy(&answer.body);
    match text.char_indices().nth(200) {
        Some((cut, _)) => format!("{}…", &text[..cut]),
        None => text.into_owned(),
    }
}

#[async_trait]
impl Probe for PagerDutyProvider {
    /// Probes the account (see the module docs for each point). Fails whole only when the
    /// schedules cannot be listed at all (a bad key, an outage).
    async fn probe(&self, request: &ProbeRequest) -> Result<ProbeReport, Error> {
        let mut report = ProbeReport {
            vendor: "pagerduty".into(),
            ..ProbeReport::default()
        };
        let mut rights = Rights::default();
        let schedules = match &request.schedule {
            Some(s) => vec![s.clone()],
            None => self
                .scrubbed(self.schedule_ids().await)?
                .into_iter()
                .collect(),
        };
        report.findings.push(self.unauthorized_body().await);
        for schedule in &schedules {
            self.probe_schedule(schedule, request.now, &mut report, &mut rights)
                .await;
        }
        if let Some(scratch) = &request.write_to {
            self.probe_writes(scratch, request.now, &mut report, &mut rights)
                .await;
        }
        for (point, why) in [
            (
                "lost_writes",
                "needs an answer lost in transit: not provoked on a real account",
            ),
            (
                "rate_limit",
                "needs PagerDuty's rate limit (960 requests a minute): not provoked",
            ),
            (
                "v3_answer",
                "needs a shift-based (v3) schedule id: the v2 listing shows none",
            ),
        ] {
            report.findings.push(finding(point, None, None, why));
        }
        report
            .findings
            .push(key_rights(&rights, request.write_to.is_some()));
        for f in &mut report.findings {
            f.detail = self.client().key.redact_in(&f.detail);
        }
        Ok(report)
    }
}

fn key_rights(rights: &Rights, wrote: bool) -> ProbeFinding {
    let (reading, detail) = if rights.refused_write {
        (
            "read_only",
            "a write to the scratch schedule was refused (403)".to_owned(),
        )
    } else if rights.wrote {
        (
            "read_write",
            "reads and writes to the scratch schedule succeeded".to_owned(),
        )
    } else if rights.refused_reads.is_empty() {
        (
            "read",
            if wrote {
                "every read succeeded; no write got through to tell".to_owned()
            } else {
                "every read succeeded (nothing was written: no write_to)".to_owned()
            },
        )
    } else {
        (
            "partial_read",
            format!("refused reads: {}", rights.refused_reads.join(", ")),
        )
    };
    finding("key_rights", None, Some(reading), detail)
}

impl PagerDutyProvider {
    /// The ids of every listed schedule.
    async fn schedule_ids(&self) -> Result<Vec<VendorScheduleId>, Error> {
        let heads: Vec<ScheduleHead> =
            crate::pagination::collect_pages("schedules", |offset, limit| async move {
                let body = self
                    .client()
                    .get(
                        "/schedules",
                        &[("limit", limit.to_string()), ("offset", offset.to_string())],
                    )
                    .await?;
                models::decode_page(&body, "schedules")
            })
            .await?;
        Ok(heads.into_iter().map(|h| VendorScheduleId(h.id)).collect())
    }

    /// `unauthorized_body`: one listing read with a key that is no key.
    async fn unauthorized_body(&self) -> ProbeFinding {
        const POINT: &str = "unauthorized_body";
        let answer = self
            .client()
            .once(
                Method::GET,
                "/schedules",
                &[("limit", "1".into())],
                None,
                Some("oncall-probe-not-a-key"),
            )
            .await;
        let answer = match answer {
            Ok(a) => a,
            Err(e) => return finding(POINT, None, None, format!("no answer: {e}")),
        };
        if answer.status != StatusCode::UNAUTHORIZED {
            return finding(
                POINT,
                None,
                None,
                format!(
                    "a key that is no key was answered {}",
                    answer.status.as_u16()
                ),
            );
        }
        let content_type = answer
            .headers
            .get(reqwest::header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .unwrap_or("")
            .to_owned();
        let json = content_type.starts_with("application/json")
            && serde_json::from_slice::<Value>(&answer.body).is_ok();
        finding(
            POINT,
            None,
            Some(if json { "json" } else { "text_plain" }),
            format!("401 as {content_type:?}: {}", body_text(&answer)),
        )
    }

    async fn probe_schedule(
        &self,
        schedule: &VendorScheduleId,
        now: DateTime<Utc>,
        report: &mut ProbeReport,
        rights: &mut Rights,
    ) {
        let root = match self.read_schedule(schedule, &[]).await {
            Ok(root) => root,
            Err(e) => {
                if e.is_permission_denied() {
                    rights.refused_reads.push(format!("schedule {schedule}"));
                }
                report.findings.push(finding(
                    "schedule",
                    Some(schedule),
                    None,
                    format!("the schedule could not be read: {e}"),
                ));
                return;
            }
        };
        for f in self.layer_findings(schedule, &root, now).await {
            report.findings.push(f);
        }
        report
            .findings
            .extend(self.listing_findings(schedule, now, rights).await);
        report
            .findings
            .push(self.roster_finding(schedule, &root, rights).await);
    }

    /// `layer_turns` and `layer_order` over a year from `now`, read in chunks.
    async fn layer_findings(
        &self,
        schedule: &VendorScheduleId,
        root: &Value,
        now: DateTime<Utc>,
    ) -> Vec<ProbeFinding> {
        let fail = |why: String| {
            vec![
                finding("layer_turns", Some(schedule), None, why.clone()),
                finding("layer_order", Some(schedule), None, why),
            ]
        };
        let head: ScheduleHead =
            match models::at(root, "schedule").and_then(|v| decode(v, "schedule")) {
                Ok(h) => h,
                Err(e) => return fail(e.to_string()),
            };
        let Ok(zone) = head.time_zone.parse::<chrono_tz::Tz>() else {
            return fail(format!("{:?} is not an IANA zone", head.time_zone));
        };
        let layers: Vec<Layer> = match decode_optional_items(root, "schedule.schedule_layers") {
            Ok(l) => l,
            Err(e) => return fail(e.to_string()),
        };
        if layers.is_empty() {
            return fail("the schedule has no layers".into());
        }
        let Some(end) = now.checked_add_signed(YEAR) else {
            return fail("no year after now".into());
        };
        let Ok(window) = Window::new(now, end) else {
            return fail("no year after now".into());
        };
        let mut rendered = Rendered::default();
        let mut ids = Vec::new();
        let mut roots = Vec::new();
        let mut from = now;
        while from < end {
            let to = from.checked_add_signed(CHUNK).unwrap_or(end).min(end);
            let query = [
                ("since", wire_time(from)),
                ("until", wire_time(to)),
                ("overflow", "true".to_owned()),
            ];
            match self.read_schedule(schedule, &query).await {
                Ok(chunk) => {
                    match crate::layers::entry_users(&chunk) {
                        Ok(users) => ids.extend(users),
                        Err(e) => return fail(e.to_string()),
                    }
                    roots.push(chunk);
                }
                Err(e) => return fail(format!("the rendering could not be read: {e}")),
            }
            from = to;
        }
        ids.extend(
            layers
                .iter()
                .flat_map(|l| l.users.iter().map(|u| u.user.id.clone())),
        );
        ids.sort();
        ids.dedup();
        let refs: Vec<UserRef> = ids
            .into_iter()
            .map(|id| UserRef { id, summary: None })
            .collect();
        let emails: HashMap<String, Email> =
            match self.members_of(&refs.iter().collect::<Vec<_>>()).await {
                Ok(m) => m.into_iter().map(|(id, m)| (id, m.email)).collect(),
                Err(e) => return fail(format!("the layers' users could not be read: {e}")),
            };
        for chunk in &roots {
            match crate::layers::rendered(chunk, &emails) {
                Ok(part) => {
                    if rendered.layers.is_empty() {
                        rendered.layers = part.layers;
                    } else {
                        for (mine, theirs) in rendered.layers.iter_mut().zip(part.layers) {
                            mine.1.extend(theirs.1);
                        }
                    }
                    rendered.overrides.extend(part.overrides);
                    rendered.final_schedule.extend(part.final_schedule);
                }
                Err(e) => return fail(e.to_string()),
            }
        }
        let check = check_layers(&layers, zone, &emails, &rendered, window);
        let unlike = if check.unlike.is_empty() {
            String::new()
        } else {
            format!(
                "; rendered unlike either reading: {}",
                check.unlike.join(", ")
            )
        };
        let turns = check.turns.map(Turns::name);
        let order = check.highest_first.map(|highest| {
            if highest {
                "reversed_on_get"
            } else {
                "post_order"
            }
        });
        vec![
            finding(
                "layer_turns",
                Some(schedule),
                turns,
                format!("{} over {now} + 1 year{unlike}", check.detail),
            ),
            finding(
                "layer_order",
                Some(schedule),
                order,
                if layers.len() < 2 {
                    "fewer than two layers".to_owned()
                } else {
                    check.detail.clone()
                },
            ),
        ]
    }

    /// One raw override listing: its status and the overrides it names.
    async fn raw_listing(
        &self,
        schedule: &VendorScheduleId,
        window: Window,
    ) -> Result<(StatusCode, Vec<WireOverride>), String> {
        let query = [
            ("since", wire_time(window.start())),
            ("until", wire_time(window.end())),
            ("overflow", "true".to_owned()),
        ];
        let answer = self
            .client()
            .once(Method::GET, &overrides_path(schedule), &query, None, None)
            .await
            .map_err(|e| e.to_string())?;
        if !answer.status.is_success() {
            return Err(format!(
                "the listing was answered {}: {}",
                answer.status.as_u16(),
                body_text(&answer)
            ));
        }
        let listed = models::json(&answer.body, "overrides")
            .and_then(|root| models::decode_items::<WireOverride>(&root, "overrides"))
            .map_err(|e| e.to_string())?;
        Ok((answer.status, listed))
    }

    /// `listing_status` and `listing_filter` from the overrides already there.
    async fn listing_findings(
        &self,
        schedule: &VendorScheduleId,
        now: DateTime<Utc>,
        rights: &mut Rights,
    ) -> Vec<ProbeFinding> {
        let wide = match Window::new(now - LOOK_AROUND, now + LOOK_AROUND) {
            Ok(w) => w,
            Err(e) => {
                return vec![finding(
                    "listing_filter",
                    Some(schedule),
                    None,
                    e.to_string(),
                )]
            }
        };
        let (status, listed) = match self.raw_listing(schedule, wide).await {
            Ok(x) => x,
            Err(why) => {
                if why.contains(" 403") {
                    rights
                        .refused_reads
                        .push(format!("overrides of {schedule}"));
                }
                return vec![
                    finding("listing_status", Some(schedule), None, why.clone()),
                    finding("listing_filter", Some(schedule), None, why),
                ];
            }
        };
        let mut out = vec![status_finding(schedule, status)];
        let Some(long) = listed
            .iter()
            .find(|o| o.id.is_some() && o.end - o.start >= TimeDelta::seconds(120))
        else {
            out.push(finding(
                "listing_filter",
                Some(schedule),
                None,
                "no override of two minutes or more within 60 days of now to look with",
            ));
            return out;
        };
        out.push(self.filter_finding(schedule, long).await);
        out
    }

    /// Lists a window that starts a minute inside `o`: listed (intersecting) or not.
    async fn filter_finding(&self, schedule: &VendorScheduleId, o: &WireOverride) -> ProbeFinding {
        let inside = o.start + TimeDelta::seconds(60);
        let Ok(window) = Window::new(inside, o.end) else {
            return finding("listing_filter", Some(schedule), None, "no window inside");
        };
        match self.raw_listing(schedule, window).await {
            Ok((_, listed)) => {
                let seen = listed.iter().any(|x| x.id == o.id);
                finding(
                    "listing_filter",
                    Some(schedule),
                    Some(if seen {
                        "intersecting"
                    } else {
                        "starts_in_window"
                    }),
                    format!(
                        "override {} [{}, {}) {} listed for a window from {inside}",
                        o.id.as_deref().unwrap_or("?"),
                        o.start,
                        o.end,
                        if seen { "is" } else { "is not" }
                    ),
                )
            }
            Err(why) => finding("listing_filter", Some(schedule), None, why),
        }
    }

    /// `roster`: the members' e-mails, found again by `query`.
    async fn roster_finding(
        &self,
        schedule: &VendorScheduleId,
        root: &Value,
        rights: &mut Rights,
    ) -> ProbeFinding {
        const POINT: &str = "roster";
        let head: ScheduleHead =
            match models::at(root, "schedule").and_then(|v| decode(v, "schedule")) {
                Ok(h) => h,
                Err(e) => return finding(POINT, Some(schedule), None, e.to_string()),
            };
        let refs: Vec<&UserRef> = head.users.iter().take(ROSTER_SAMPLE).collect();
        if refs.is_empty() {
            return finding(POINT, Some(schedule), None, "the schedule lists no users");
        }
        let members = match self.members_of(&refs).await {
            Ok(m) => m,
            Err(e) => {
                if e.is_permission_denied() {
                    rights.refused_reads.push("users".into());
                }
                return finding(POINT, Some(schedule), None, format!("users not read: {e}"));
            }
        };
        let mut unresolved = Vec::new();
        for r in &refs {
            let Some(member) = members.get(&r.id) else {
                continue;
            };
            match self.find_user(&member.email).await {
                Ok(Some(id)) if id == r.id => {}
                Ok(found) => unresolved.push(format!("{} ({found:?})", r.id)),
                Err(e) => unresolved.push(format!("{} ({e})", r.id)),
            }
        }
        let reading = if unresolved.is_empty() {
            "resolves"
        } else {
            "unresolved"
        };
        finding(
            POINT,
            Some(schedule),
            Some(reading),
            format!(
                "{} of {} members found again by e-mail with users?query={}",
                refs.len() - unresolved.len(),
                refs.len(),
                if unresolved.is_empty() {
                    String::new()
                } else {
                    format!("; not: {}", unresolved.join(", "))
                }
            ),
        )
    }

    /// The write points, on the scratch schedule.
    async fn probe_writes(
        &self,
        scratch: &VendorScheduleId,
        now: DateTime<Utc>,
        report: &mut ProbeReport,
        rights: &mut Rights,
    ) {
        let user = match self.scratch_user(scratch).await {
            Ok(u) => u,
            Err(why) => {
                report
                    .findings
                    .push(finding("create_answer", Some(scratch), None, why));
                return;
            }
        };
        // A future override, starting 30 s past a minute two days from now.
        let hour = now + TimeDelta::days(2);
        let start = hour
            - TimeDelta::seconds(i64::from(hour.second()))
            - TimeDelta::nanoseconds(i64::from(hour.nanosecond()))
            + TimeDelta::seconds(30);
        let end = start + TimeDelta::hours(2);
        let future = self
            .probe_create(scratch, &user, start, end, report, rights)
            .await;
        let Some(future) = future else {
            return;
        };
        let id = OverrideId::new(future.id.clone().unwrap_or_default());
        report
            .findings
            .push(self.lag_finding(scratch, &future).await);
        report
            .findings
            .push(self.filter_finding(scratch, &future).await);
        report.write_calls += 1;
        report
            .findings
            .push(self.delete_finding(scratch, &id).await);
        report.write_calls += self.cleanup(scratch, &id, &mut report.left_behind).await;
        let running = self.running_finding(scratch, &user, now, report).await;
        report.findings.push(running);
        let refused = self.all_failed_findings(scratch, &user, now, report).await;
        report.findings.extend(refused);
    }

    /// The user the probe writes overrides for: the scratch schedule's first.
    async fn scratch_user(&self, scratch: &VendorScheduleId) -> Result<String, String> {
        let root = self
            .read_schedule(scratch, &[])
            .await
            .map_err(|e| format!("the scratch schedule could not be read: {e}"))?;
        let head: ScheduleHead = models::at(&root, "schedule")
            .and_then(|v| decode(v, "schedule"))
            .map_err(|e| e.to_string())?;
        head.users
            .first()
            .map(|u| u.id.clone())
            .ok_or_else(|| "the scratch schedule lists no users to write for".to_owned())
    }

    async fn post(
        &self,
        scratch: &VendorScheduleId,
        items: Value,
        report: &mut ProbeReport,
    ) -> Result<Answer, Error> {
        report.write_calls += 1;
        self.client()
            .once(
                Method::POST,
                &overrides_path(scratch),
                &[],
                Some(&json!({ "overrides": items })),
                None,
            )
            .await
    }

    /// Creates the future override: `create_answer` and `rounding`. The override as held.
    async fn probe_create(
        &self,
        scratch: &VendorScheduleId,
        user: &str,
        start: DateTime<Utc>,
        end: DateTime<Utc>,
        report: &mut ProbeReport,
        rights: &mut Rights,
    ) -> Option<WireOverride> {
        let item = json!([{ "start": wire_time(start), "end": wire_time(end), "user": { "id": user, "type": "user_reference" } }]);
        let answer = match self.post(scratch, item, report).await {
            Ok(a) => a,
            Err(e) => {
                report.findings.push(finding(
                    "create_answer",
                    Some(scratch),
                    None,
                    format!("the create got no answer: {e}; look for an override at {start} to delete by hand"),
                ));
                return None;
            }
        };
        if answer.status == StatusCode::FORBIDDEN {
            rights.refused_write = true;
            report.findings.push(finding(
                "create_answer",
                Some(scratch),
                None,
                "the create was refused (403): the key may not write",
            ));
            return None;
        }
        let root = serde_json::from_slice::<Value>(&answer.body).unwrap_or(Value::Null);
        let (shape, first) = match &root {
            Value::Array(items) => (Some("top_level_array"), items.first().cloned()),
            Value::Object(map) => match map.get("overrides") {
                Some(Value::Array(items)) => {
                    let first = items.first().cloned();
                    let statuses = first.as_ref().is_some_and(|i| i.get("status").is_some());
                    (
                        Some(if statuses {
                            "wrapped_statuses"
                        } else {
                            "wrapped_bare"
                        }),
                        first,
                    )
                }
                _ => (None, None),
            },
            _ => (None, None),
        };
        report.findings.push(finding(
            "create_answer",
            Some(scratch),
            shape,
            format!("HTTP {}: {}", answer.status.as_u16(), body_text(&answer)),
        ));
        let created = first
            .map(|f| f.get("override").cloned().unwrap_or(f))
            .and_then(|o| serde_json::from_value::<WireOverride>(o).ok());
        let created = created.filter(|_| answer.status.is_success())?;
        rights.wrote = true;
        created.id.as_ref()?;
        let reading = if created.start == start && created.end == end {
            Some("whole_seconds")
        } else if created.start.second() == 0 && created.start == start - TimeDelta::seconds(30) {
            Some("minutes")
        } else {
            None
        };
        report.findings.push(finding(
            "rounding",
            Some(scratch),
            reading,
            format!(
                "sent [{start}, {end}), held [{}, {})",
                created.start, created.end
            ),
        ));
        Some(created)
    }

    /// `listing_lag`: reads until the created override shows, every poll, for the patience.
    async fn lag_finding(
        &self,
        scratch: &VendorScheduleId,
        created: &WireOverride,
    ) -> ProbeFinding {
        let id = OverrideId::new(created.id.clone().unwrap_or_default());
        let Ok(window) = Window::new(
            created.start - TimeDelta::hours(1),
            created.end + TimeDelta::hours(1),
        ) else {
            return finding("listing_lag", Some(scratch), None, "no window");
        };
        let began = std::time::Instant::now();
        let mut reads = 0u32;
        loop {
            reads += 1;
            match self.list_overrides(scratch, window).await {
                Ok(listed) if listed.iter().any(|o| o.id == id) => {
                    let reading = if reads == 1 { "current" } else { "lagging" };
                    return finding(
                        "listing_lag",
                        Some(scratch),
                        Some(reading),
                        format!(
                            "shown by read {reads}, {:.1?} after the create's answer",
                            began.elapsed()
                        ),
                    );
                }
                Ok(_) => {}
                Err(e) => return finding("listing_lag", Some(scratch), None, e.to_string()),
            }
            if began.elapsed() >= self.inner.probe_patience {
                return finding(
                    "listing_lag",
                    Some(scratch),
                    None,
                    format!("not shown after {reads} reads in {:.1?}", began.elapsed()),
                );
            }
            tokio::time::sleep(self.inner.probe_poll).await;
        }
    }

    /// `delete_answer`: the first answer to the future override's delete.
    async fn delete_finding(&self, scratch: &VendorScheduleId, id: &OverrideId) -> ProbeFinding {
        let path = format!("{}/{}", overrides_path(scratch), segment(id.as_str()));
        match self
            .client()
            .once(Method::DELETE, &path, &[], None, None)
            .await
        {
            Ok(a) => {
                let reading = match a.status.as_u16() {
                    204 | 200 => Some("documented"),
                    400 => Some("account_locked"),
                    408 => Some("timed_out"),
                    _ => None,
                };
                finding(
                    "delete_answer",
                    Some(scratch),
                    reading,
                    format!(
                        "a future override's delete was answered {} first: {}",
                        a.status.as_u16(),
                        body_text(&a)
                    ),
                )
            }
            Err(e) => finding("delete_answer", Some(scratch), None, e.to_string()),
        }
    }

    /// Deletes what the probe made until PagerDuty says it is gone; the write calls it took. An
    /// override it cannot remove is left behind, named.
    async fn cleanup(
        &self,
        scratch: &VendorScheduleId,
        id: &OverrideId,
        left_behind: &mut Vec<String>,
    ) -> usize {
        let path = format!("{}/{}", overrides_path(scratch), segment(id.as_str()));
        for attempt in 1..=CLEANUP_ATTEMPTS {
            match self
                .client()
                .once(Method::DELETE, &path, &[], None, None)
                .await
            {
                Ok(a) if a.status.is_success() || a.status == StatusCode::NOT_FOUND => {
                    return attempt as usize
                }
                _ => tokio::time::sleep(self.inner.probe_poll).await,
            }
        }
        left_behind.push(id.to_string());
        CLEANUP_ATTEMPTS as usize
    }

    /// `delete_running`: an override written from now is deleted; PagerDuty truncates it (200)
    /// or removes it (204). A truncated stub is history: it cannot be deleted, and stays.
    async fn running_finding(
        &self,
        scratch: &VendorScheduleId,
        user: &str,
        now: DateTime<Utc>,
        report: &mut ProbeReport,
    ) -> ProbeFinding {
        const POINT: &str = "delete_running";
        let end = now + TimeDelta::hours(1);
        let item = json!([{ "start": wire_time(now), "end": wire_time(end), "user": { "id": user, "type": "user_reference" } }]);
        let answer = match self.post(scratch, item, report).await {
            Ok(a) => a,
            Err(e) => return finding(POINT, Some(scratch), None, e.to_string()),
        };
        let id = crate::models::decode_create_results(
            &serde_json::from_slice::<Value>(&answer.body).unwrap_or(Value::Null),
        )
        .ok()
        .and_then(|r| r.into_iter().next())
        .and_then(|r| r.created)
        .and_then(|o| o.id);
        let Some(id) = id.filter(|_| answer.status.is_success()) else {
            return finding(
                POINT,
                Some(scratch),
                None,
                format!(
                    "an override from now was not created ({}): {}",
                    answer.status.as_u16(),
                    body_text(&answer)
                ),
            );
        };
        let id = OverrideId::new(id);
        let path = format!("{}/{}", overrides_path(scratch), segment(id.as_str()));
        // Through refusals that are not an answer about the override (the account lock, a
        // timeout), to the one that is.
        let mut seen = Vec::new();
        let mut reading = None;
        for _ in 0..CLEANUP_ATTEMPTS {
            report.write_calls += 1;
            match self
                .client()
                .once(Method::DELETE, &path, &[], None, None)
                .await
            {
                Ok(a) => {
                    seen.push(a.status.as_u16());
                    match a.status.as_u16() {
                        200 => reading = Some("truncated"),
                        204 => reading = Some("deleted"),
                        404 => {}
                        _ => {
                            tokio::time::sleep(self.inner.probe_poll).await;
                            continue;
                        }
                    }
                }
                // No answer: whether it landed is unknown; named below if not settled.
                Err(_) => seen.push(0),
            }
            break;
        }
        if reading.is_none() && !seen.contains(&404) {
            report.left_behind.push(id.to_string());
        }
        finding(
            POINT,
            Some(scratch),
            reading,
            format!(
                "an override written from {now} was deleted, answered {seen:?} (a truncated stub \
                 stays as history)"
            ),
        )
    }

    /// `all_failed_status` and `error_texts`: a batch of one override that ends in the past.
    async fn all_failed_findings(
        &self,
        scratch: &VendorScheduleId,
        user: &str,
        now: DateTime<Utc>,
        report: &mut ProbeReport,
    ) -> Vec<ProbeFinding> {
        let (start, end) = (now - TimeDelta::days(2), now - TimeDelta::days(1));
        let item = json!([{ "start": wire_time(start), "end": wire_time(end), "user": { "id": user, "type": "user_reference" } }]);
        let answer = match self.post(scratch, item, report).await {
            Ok(a) => a,
            Err(e) => {
                return vec![finding(
                    "all_failed_status",
                    Some(scratch),
                    None,
                    e.to_string(),
                )]
            }
        };
        let status = match answer.status.as_u16() {
            201 => Some("created_201"),
            400 => Some("bad_request_400"),
            _ => None,
        };
        let results = serde_json::from_slice::<Value>(&answer.body)
            .ok()
            .and_then(|root| crate::models::decode_create_results(&root).ok())
            .unwrap_or_default();
        // Created after all? Then it is removed (and left behind if it cannot be).
        let landed: Vec<String> = results
            .iter()
            .filter(|r| r.status.is_none_or(|s| (200..300).contains(&s)))
            .filter_map(|r| r.created.as_ref().and_then(|o| o.id.clone()))
            .collect();
        for id in landed {
            report.write_calls += self
                .cleanup(scratch, &OverrideId::new(id), &mut report.left_behind)
                .await;
        }
        let mut texts: Vec<String> = results.iter().flat_map(|r| r.errors.clone()).collect();
        if texts.is_empty() && !answer.status.is_success() {
            texts.push(body_text(&answer));
        }
        let captured = texts
            .iter()
            .any(|t| CAPTURED_REFUSALS.iter().any(|c| t.contains(c)));
        let wording = match (texts.is_empty(), captured) {
            (true, _) => None,
            (false, true) => Some("captured"),
            (false, false) => Some("invented"),
        };
        vec![
            finding(
                "all_failed_status",
                Some(scratch),
                status,
                format!(
                    "a batch whose one item ends in the past: HTTP {}",
                    answer.status.as_u16()
                ),
            ),
            finding(
                "error_texts",
                Some(scratch),
                wording,
                if texts.is_empty() {
                    "the answer gives no refusal text".to_owned()
                } else {
                    format!(
                        "refused with {:?} ({} the captured wording)",
                        texts,
                        if captured { "is" } else { "is not" }
                    )
                },
            ),
        ]
    }
}

fn status_finding(schedule: &VendorScheduleId, status: StatusCode) -> ProbeFinding {
    let reading = match status.as_u16() {
        200 => Some("ok_200"),
        201 => Some("created_201"),
        _ => None,
    };
    finding(
        "listing_status",
        Some(schedule),
        reading,
        format!("the override listing answered {}", status.as_u16()),
    )
}
