//! [`Probe`] for JSM Operations: what an account shows on each UNCONFIRMED point, named as the
//! simulator dialect's switch (`point`) and setting (`reading`).
//!
//! Read-only by default: one listing of schedules at the largest page size (`page_size`), the
//! overrides of the schedules in scope (`past_overrides`). With a scratch schedule ([`ProbeRequest::write_to`]) it
//! also creates one future override for nobody two days ahead (`rotation_ids_omitted`), changes it
//! with a partial and then a full body (`update_body`), deletes it (`delete_status`), and reports
//! the body of any 403 it met (`forbidden_body`). Then one override that runs now, cut to end in
//! the vendor's past (`past_end`): deleted where the vendor refuses the cut; where it clamps the
//! end to its now, the override has ended, history no one deletes, and nothing of it runs. What it
//! made and could not remove is listed.
//! `key_rights` is a point of its own, as on the other vendors: `read` (nothing written),
//! `read_write` (a write to the scratch schedule went through) or `read_only` (it was refused
//! with 403).

use async_trait::async_trait;
use chrono::{DateTime, TimeDelta, Utc};
use oncall_core::{Error, Probe, ProbeFinding, ProbeReport, ProbeRequest, VendorScheduleId};
use reqwest::Method;
use serde_json::{json, Value};

use crate::client::{RawAnswer, Request};
use crate::error::CallContext;
use crate::json::Node;
use crate::models::{self, wire_instant};
use crate::pagination::PAGE_SIZE;
use crate::JsmProvider;

/// One probe run: the findings so far and what it wrote.
struct Run {
    report: ProbeReport,
    /// The bodies of 403s met, for `forbidden_body`.
    forbidden: Vec<Vec<u8>>,
    rate_limited: Option<String>,
    /// A write to the scratch schedule went through.
    wrote: bool,
    /// A write to the scratch schedule was refused with 403.
    write_refused: bool,
}

impl Run {
    /// Notes what a write's answer says about the key's rights.
    fn written(&mut self, answer: &RawAnswer) {
        match answer.status {
            200..=299 => self.wrote = true,
            403 => self.write_refused = true,
            _ => {}
        }
    }

    /// `key_rights`: what the writes (if any) showed.
    fn key_rights(&mut self, scratch: Option<&VendorScheduleId>) {
        let (reading, detail) = match scratch {
            None => (
                "read",
                "the reads went through; nothing was written (no scratch schedule)",
            ),
            Some(_) if self.write_refused => (
                "read_only",
                "a write to the scratch schedule was refused with 403",
            ),
            Some(_) if self.wrote => ("read_write", "writes to the scratch schedule went through"),
            Some(_) => {
                self.find(
                    "key_rights",
                    scratch,
                    None,
                    "no write was answered either way".into(),
                );
                return;
            }
        };
        self.find("key_rights", scratch, Some(reading), detail.into());
    }

    fn find(
        &mut self,
        point: &str,
        schedule: Option<&VendorScheduleId>,
        reading: Option<&str>,
        detail: String,
    ) {
        self.report.findings.push(ProbeFinding {
            point: point.to_owned(),
            schedule: schedule.cloned(),
            reading: reading.map(str::to_owned),
            detail,
        });
    }

    /// Notes what an answer says beyond its own point (a 403's body, a 429).
    fn note(&mut self, answer: &RawAnswer) {
        match answer.status {
            403 => self.forbidden.push(answer.body.clone()),
            429 => {
                self.rate_limited
                    .get_or_insert_with(|| excerpt(&answer.body));
            }
            _ => {}
        }
    }
}

fn excerpt(body: &[u8]) -> String {
    String::from_utf8_lossy(body)
        .chars()
        .filter(|c| !c.is_control())
        .take(160)
        .collect()
}

/// Whether a write was refused for its end date (a 400 or 422 naming the end date, or saying
/// the end is in the past): the refusal the adapter answers by sending a cut again at the
/// vendor's now.
fn refuses_the_end(answer: &RawAnswer) -> bool {
    let words = String::from_utf8_lossy(&answer.body).to_lowercase();
    matches!(answer.status, 400 | 422)
        && (words.contains("enddate")
            || words.contains("end date")
            || words.contains("in the past"))
}

fn json_of(answer: &RawAnswer) -> Option<Value> {
    serde_json::from_slice(&answer.body).ok()
}

#[async_trait]
impl Probe for JsmProvider {
    async fn probe(&self, request: &ProbeRequest) -> Result<ProbeReport, Error> {
        let mut run = Run {
            report: ProbeReport {
                vendor: "jsm".into(),
                ..ProbeReport::default()
            },
            forbidden: Vec::new(),
            rate_limited: None,
            wrote: false,
            write_refused: false,
        };
        let scope = self.scrubbed(self.probe_page_size(&mut run, request).await)?;
        for schedule in &scope {
            let result = self
                .probe_listed_overrides(&mut run, schedule, request.now)
                .await;
            if let Err(e) = self.scrubbed(result) {
                run.find(
                    "past_overrides",
                    Some(schedule),
                    None,
                    format!("the overrides could not be read: {e}"),
                );
            }
        }
        if let Some(scratch) = &request.write_to {
            self.probe_writes(&mut run, scratch, request.now).await;
            self.probe_past_end(&mut run, scratch, request.now).await;
        }
        run.key_rights(request.write_to.as_ref());
        self.report_forbidden_body(&mut run);
        let detail = match &run.rate_limited {
            Some(body) => format!("a 429 came back during the probe: {body}"),
            None => "no 429 during the probe: its limits, if any, were not met".to_owned(),
        };
        let reading = run.rate_limited.as_ref().map(|_| "refused");
        run.find("rate_limit", None, reading, detail);
        Ok(run.report)
    }
}

impl JsmProvider {
    /// `page_size`: the schedules listed at the largest size the spec allows. Returns the
    /// schedules to probe (the one asked for, or every one listed on that page).
    async fn probe_page_size(
        &self,
        run: &mut Run,
        request: &ProbeRequest,
    ) -> Result<Vec<VendorScheduleId>, Error> {
        let listing = Request::ops(Method::GET, &["schedules"], CallContext::default())
            .query("size", PAGE_SIZE.to_string());
        let answer = self.client.exchange(&listing).await?;
        run.note(&answer);
        let asked = format!("GET /v1/schedules?size={PAGE_SIZE}");
        let mut listed = Vec::new();
        let (reading, detail) = match answer.status {
            401 => {
                return Err(Error::Unauthenticated {
                    message: format!(
                        "{asked}: 401: the account e-mail and API token were not accepted"
                    ),
                })
            }
            400 | 422 => (
                Some("refused_above"),
                format!("{asked}: {} {}", answer.status, excerpt(&answer.body)),
            ),
            200 => {
                let body = json_of(&answer).unwrap_or(Value::Null);
                let (values, next) = crate::pagination::page(&body)?;
                for v in &values {
                    if let Some(id) = v.get("id").and_then(Value::as_str) {
                        listed.push(VendorScheduleId(id.to_owned()));
                    }
                }
                let served = values.len();
                match (served, next) {
                    (n, _) if n >= PAGE_SIZE as usize => {
                        (Some("up_to_50"), format!("{asked}: a page of {n}"))
                    }
                    (n, Some(next)) => (
                        Some("capped"),
                        format!("{asked}: a page of {n}, then {next}"),
                    ),
                    (n, None) => (
                        None,
                        format!("{asked}: {n} schedules, all on one page: too few to tell"),
                    ),
                }
            }
            status => (None, format!("{asked}: {status} {}", excerpt(&answer.body))),
        };
        run.find("page_size", None, reading, detail);
        Ok(match &request.schedule {
            Some(one) => vec![one.clone()],
            None => listed,
        })
    }

    /// `past_overrides`. (An override listed with `rotationIds: null` does not settle
    /// `rotation_ids_omitted`: a person may have made it in the UI, whatever the API takes.)
    async fn probe_listed_overrides(
        &self,
        run: &mut Run,
        schedule: &VendorScheduleId,
        now: DateTime<Utc>,
    ) -> Result<(), Error> {
        let first = Request::ops(
            Method::GET,
            &["schedules", &schedule.0, "overrides"],
            CallContext::default(),
        );
        let items = crate::pagination::collect(
            &self.client,
            first,
            &std::sync::atomic::AtomicBool::new(false),
            "overrides",
        )
        .await?;
        let wires = items
            .iter()
            .map(|i| models::override_(&Node::root(i)))
            .collect::<Result<Vec<_>, _>>()?;
        let ended = wires.iter().filter(|o| o.end <= now).count();
        let (reading, detail) = if ended > 0 {
            (
                Some("all"),
                format!("{ended} of {} listed overrides had ended", wires.len()),
            )
        } else {
            (
                None,
                format!(
                    "{} overrides listed, none ended: as documented, or no ended one to show",
                    wires.len()
                ),
            )
        };
        run.find("past_overrides", Some(schedule), reading, detail);
        Ok(())
    }

    /// Writes to the scratch schedule: one override for nobody, two days ahead, an hour long;
    /// created, changed, deleted.
    async fn probe_writes(&self, run: &mut Run, scratch: &VendorScheduleId, now: DateTime<Utc>) {
        let start = now + TimeDelta::days(2);
        let end = start + TimeDelta::hours(1);
        let nobody = json!({"type": "noone"});
        let body = |end: DateTime<Utc>, ids: Option<&[String]>| {
            let mut b = json!({"responder": nobody, "startDate": wire_instant(start), "endDate": wire_instant(end)});
            if let Some(ids) = ids {
                b["rotationIds"] = json!(ids);
            }
            b
        };
        let at = |alias: Option<&str>| {
            let mut path = vec!["schedules", scratch.0.as_str(), "overrides"];
            path.extend(alias);
            path.into_iter().map(str::to_owned).collect::<Vec<_>>()
        };
        let send = |method: Method, path: Vec<String>, body: Option<Value>| {
            let refs: Vec<&str> = path.iter().map(String::as_str).collect();
            let context = CallContext {
                write: method != Method::GET,
                schedule: Some(&scratch.0),
                ..CallContext::default()
            };
            let mut request = Request::ops(method, &refs, context);
            request.body = body;
            async move { self.client.exchange(&request).await }
        };
        let all_ids = match self.schedule_rotation_ids(scratch).await {
            Ok(ids) => ids,
            Err(e) => {
                run.find(
                    "rotation_ids_omitted",
                    Some(scratch),
                    None,
                    format!("the scratch schedule could not be read: {e}"),
                );
                return;
            }
        };
        // rotation_ids_omitted: a create that names no rotation.
        run.report.write_calls += 1;
        let created = send(Method::POST, at(None), Some(body(end, None))).await;
        if let Ok(a) = &created {
            run.written(a);
        }
        let mut needs_ids = false;
        let alias = match created {
            Ok(a) if a.status == 201 || a.status == 200 => {
                let v = json_of(&a).unwrap_or(Value::Null);
                let ids = v.get("rotationIds").filter(|i| !i.is_null());
                let reading = match ids.and_then(Value::as_array) {
                    None => Some("all_rotations"),
                    Some(list) if list.len() == all_ids.len() && !all_ids.is_empty() => {
                        Some("all_rotations_listed")
                    }
                    Some(_) => None,
                };
                run.find(
                    "rotation_ids_omitted",
                    Some(scratch),
                    reading,
                    format!(
                        "POST without rotationIds: {} rotationIds {}",
                        a.status,
                        ids.map_or("null".into(), Value::to_string)
                    ),
                );
                v.get("alias").and_then(Value::as_str).map(str::to_owned)
            }
            Ok(a) => {
                run.note(&a);
                let refused = (a.status == 400 || a.status == 422)
                    && excerpt(&a.body).to_lowercase().contains("rotation");
                run.find(
                    "rotation_ids_omitted",
                    Some(scratch),
                    refused.then_some("refused"),
                    format!(
                        "POST without rotationIds: {} {}",
                        a.status,
                        excerpt(&a.body)
                    ),
                );
                if !refused {
                    return;
                }
                needs_ids = true;
                run.report.write_calls += 1;
                match send(Method::POST, at(None), Some(body(end, Some(&all_ids)))).await {
                    Ok(a) if a.status == 201 || a.status == 200 => {
                        run.written(&a);
                        json_of(&a)
                            .and_then(|v| v.get("alias").and_then(Value::as_str).map(str::to_owned))
                    }
                    Ok(a) => {
                        run.written(&a);
                        run.note(&a);
                        None
                    }
                    Err(_) => None,
                }
            }
            Err(e) => {
                run.find(
                    "rotation_ids_omitted",
                    Some(scratch),
                    None,
                    format!("POST failed: {e}"),
                );
                return;
            }
        };
        let Some(alias) = alias else { return };
        self.probe_update(run, scratch, &alias, end, needs_ids, &all_ids, &send, &at)
            .await;
        // delete_status.
        run.report.write_calls += 1;
        match send(Method::DELETE, at(Some(&alias)), None).await {
            Ok(a) if (200..300).contains(&a.status) => {
                let reading = match (a.status, a.body.iter().all(u8::is_ascii_whitespace)) {
                    (204, _) => Some("no_content"),
                    (200, true) => Some("ok_empty"),
                    (200, false) => Some("ok_json"),
                    _ => None,
                };
                run.find(
                    "delete_status",
                    Some(scratch),
                    reading,
                    format!("DELETE: {} {}", a.status, excerpt(&a.body)),
                );
            }
            other => {
                if let Ok(a) = &other {
                    run.note(a);
                }
                run.find(
                    "delete_status",
                    Some(scratch),
                    None,
                    format!(
                        "DELETE did not succeed: {}",
                        other
                            .map(|a| a.status.to_string())
                            .unwrap_or_else(|e| e.to_string())
                    ),
                );
                run.report.left_behind.push(alias);
            }
        }
    }

    /// `update_body`: first only a new end (a patch), then the full body without `rotationIds`,
    /// then with them.
    #[allow(clippy::too_many_arguments)]
    async fn probe_update<F, Fut>(
        &self,
        run: &mut Run,
        scratch: &VendorScheduleId,
        alias: &str,
        end: DateTime<Utc>,
        needs_ids: bool,
        all_ids: &[String],
        send: &F,
        at: &(dyn Fn(Option<&str>) -> Vec<String> + Sync),
    ) where
        F: Fn(Method, Vec<String>, Option<Value>) -> Fut,
        Fut: std::future::Future<Output = Result<RawAnswer, Error>>,
    {
        let later = end + TimeDelta::minutes(30);
        let ok = |r: &Result<RawAnswer, Error>| matches!(r, Ok(a) if a.status == 200);
        run.report.write_calls += 1;
        let patch = send(
            Method::PUT,
            at(Some(alias)),
            Some(json!({"endDate": wire_instant(later)})),
        )
        .await;
        if let Ok(a) = &patch {
            run.note(a);
        }
        if ok(&patch) {
            run.find(
                "update_body",
                Some(scratch),
                Some("partial"),
                "PUT with only endDate: 200".into(),
            );
            return;
        }
        let full = |ids: Option<&[String]>| {
            let mut b = json!({"responder": {"type": "noone"}, "startDate": wire_instant(end - TimeDelta::hours(1)), "endDate": wire_instant(later)});
            if let Some(ids) = ids {
                b["rotationIds"] = json!(ids);
            }
            b
        };
        run.report.write_calls += 1;
        let without = send(Method::PUT, at(Some(alias)), Some(full(None))).await;
        if let Ok(a) = &without {
            run.note(a);
        }
        if ok(&without) {
            run.find(
                "update_body",
                Some(scratch),
                Some("create_shape"),
                "PUT with only endDate refused; the full body without rotationIds: 200".into(),
            );
            return;
        }
        run.report.write_calls += 1;
        let with = send(Method::PUT, at(Some(alias)), Some(full(Some(all_ids)))).await;
        let reading = (ok(&with) && !needs_ids).then_some("rotation_ids_required");
        let detail = if needs_ids {
            "the account names rotations on every write (rotation_ids_omitted=refused): the update body could not be told apart".to_owned()
        } else {
            format!(
                "PUT without rotationIds refused; with them: {}",
                with.as_ref()
                    .map(|a| a.status.to_string())
                    .unwrap_or_else(|e| e.to_string())
            )
        };
        run.find("update_body", Some(scratch), reading, detail);
    }

    /// `past_end`: on the scratch schedule, an override for nobody that runs now (from a minute
    /// before the vendor's now to the hour after next), cut to end 30 s before the vendor's now,
    /// as a sync's cut lands a little behind the vendor's clock. A 2xx that ends it later than
    /// asked is `clamp`: the vendor ended it at its now, history as every ended override, nothing
    /// left running. A 400 or 422 naming the end date is `refuse`: the override still runs, and
    /// is deleted.
    async fn probe_past_end(&self, run: &mut Run, scratch: &VendorScheduleId, now: DateTime<Utc>) {
        let at = Some(scratch);
        if run.write_refused {
            run.find(
                "past_end",
                at,
                None,
                "not tried: a write to the scratch schedule was refused with 403".into(),
            );
            return;
        }
        let ids = match self.schedule_rotation_ids(scratch).await {
            Ok(ids) => ids,
            Err(e) => {
                run.find(
                    "past_end",
                    at,
                    None,
                    format!("the scratch schedule could not be read: {e}"),
                );
                return;
            }
        };
        // The vendor's clock (its last answer's `Date`) decides what runs and what has ended.
        let now = self.client.vendor_now().unwrap_or(now);
        let now = DateTime::from_timestamp(now.timestamp(), 0).unwrap_or(now);
        let start = now - TimeDelta::minutes(1);
        let hour = now.timestamp().div_euclid(3600) * 3600;
        let end = DateTime::from_timestamp(hour + 2 * 3600, 0).unwrap_or(now + TimeDelta::hours(2));
        let body = |end: DateTime<Utc>| {
            let mut b = json!({"responder": {"type": "noone"}, "startDate": wire_instant(start), "endDate": wire_instant(end)});
            // Named where the schedule has rotations: every dialect takes them on both writes.
            if !ids.is_empty() {
                b["rotationIds"] = json!(ids);
            }
            b
        };
        let Some(alias) = self.create_running(run, scratch, body(end)).await else {
            return;
        };
        let asked = start + TimeDelta::seconds(30);
        run.report.write_calls += 1;
        let cut = self
            .scratch_write(Method::PUT, scratch, Some(&alias), Some(body(asked)))
            .await;
        if let Ok(a) = &cut {
            run.written(a);
            run.note(a);
        }
        let held_end = cut
            .as_ref()
            .ok()
            .filter(|a| (200..300).contains(&a.status))
            .and_then(json_of)
            .and_then(|v| models::override_(&Node::root(&v)).ok())
            .map(|o| o.end);
        let (reading, detail) = match (&cut, held_end) {
            (Ok(a), Some(held)) => (
                (held > asked).then_some("clamp"),
                format!(
                    "PUT ending a running override at {} (30 s after its start, before the vendor's now {}): {}, held until {}",
                    wire_instant(asked),
                    wire_instant(now),
                    a.status,
                    wire_instant(held)
                ),
            ),
            (Ok(a), None) => (
                refuses_the_end(a).then_some("refuse"),
                format!(
                    "PUT ending a running override at {} (before the vendor's now {}): {} {}",
                    wire_instant(asked),
                    wire_instant(now),
                    a.status,
                    excerpt(&a.body)
                ),
            ),
            (Err(e), _) => (None, format!("PUT ending a running override failed: {e}")),
        };
        run.find("past_end", at, reading, detail);
        // Ended at or before the vendor's now: history, which no one deletes. Else it runs.
        let vendor_now = self.client.vendor_now().unwrap_or(now);
        if held_end.is_none_or(|held| held > vendor_now) {
            self.remove_running(run, scratch, &alias).await;
        }
    }

    /// Creates the override `past_end` cuts; its alias, or `None` (with the finding) if the
    /// vendor did not make it.
    async fn create_running(
        &self,
        run: &mut Run,
        scratch: &VendorScheduleId,
        body: Value,
    ) -> Option<String> {
        run.report.write_calls += 1;
        let created = self
            .scratch_write(Method::POST, scratch, None, Some(body))
            .await;
        let detail = match &created {
            Ok(a) => {
                run.written(a);
                run.note(a);
                let alias = json_of(a)
                    .and_then(|v| v.get("alias").and_then(Value::as_str).map(str::to_owned));
                match alias {
                    Some(alias) if (200..300).contains(&a.status) => return Some(alias),
                    _ => format!(
                        "a running override could not be created: {} {}",
                        a.status,
                        excerpt(&a.body)
                    ),
                }
            }
            Err(e) => format!("a running override could not be created: {e}"),
        };
        run.find("past_end", Some(scratch), None, detail);
        None
    }

    /// Deletes the override `past_end` made while it runs; listed as left behind if it stays.
    async fn remove_running(&self, run: &mut Run, scratch: &VendorScheduleId, alias: &str) {
        run.report.write_calls += 1;
        let deleted = self
            .scratch_write(Method::DELETE, scratch, Some(alias), None)
            .await;
        match deleted {
            Ok(a) if (200..300).contains(&a.status) || a.status == 404 => {}
            other => {
                if let Ok(a) = &other {
                    run.note(a);
                }
                run.report.left_behind.push(alias.to_owned());
            }
        }
    }

    /// One write to the scratch schedule's overrides (or to one of them), its answer as it came.
    async fn scratch_write(
        &self,
        method: Method,
        scratch: &VendorScheduleId,
        alias: Option<&str>,
        body: Option<Value>,
    ) -> Result<RawAnswer, Error> {
        let mut path = vec!["schedules", scratch.0.as_str(), "overrides"];
        path.extend(alias);
        let context = CallContext {
            write: true,
            schedule: Some(&scratch.0),
            ..CallContext::default()
        };
        let mut request = Request::ops(method, &path, context);
        request.body = body;
        self.client.exchange(&request).await
    }

    async fn schedule_rotation_ids(
        &self,
        schedule: &VendorScheduleId,
    ) -> Result<Vec<String>, Error> {
        self.scrubbed(self.rotation_ids_of(schedule).await)
    }

    /// `forbidden_body`: the shape of the 403s met, if any.
    fn report_forbidden_body(&self, run: &mut Run) {
        let Some(body) = run.forbidden.first().cloned() else {
            run.find(
                "forbidden_body",
                None,
                None,
                "no write was refused: no 403 to read".into(),
            );
            return;
        };
        let reading = match serde_json::from_slice::<Value>(&body) {
            _ if body.iter().all(u8::is_ascii_whitespace) => Some("empty"),
            Ok(v) if v.get("errors").is_some_and(Value::is_array) => Some("errors"),
            Ok(v) if v.get("message").is_some() => Some("message"),
            _ => None,
        };
        run.find(
            "forbidden_body",
            None,
            reading,
            format!("a 403 said: {}", excerpt(&body)),
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn answer(status: u16, body: &str) -> RawAnswer {
        RawAnswer {
            status,
            body: body.as_bytes().to_vec(),
        }
    }

    #[test]
    fn only_a_refusal_naming_the_end_reads_as_refuse() {
        let end = r#"{"message": "End date must be in the future"}"#;
        assert!(refuses_the_end(&answer(422, end)));
        assert!(refuses_the_end(&answer(
            400,
            r#"{"errors": [{"title": "endDate is in the past"}]}"#
        )));
        assert!(!refuses_the_end(&answer(403, end)));
        assert!(!refuses_the_end(&answer(
            422,
            r#"{"message": "rotationIds must not be null"}"#
        )));
    }
}
