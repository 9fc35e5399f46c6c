//! [`OpsgenieProvider`]: the core's [`Provider`] over Opsgenie's REST API v2. Translation only:
//! every call maps to the Schedule, Schedule Rotation or Schedule Override endpoints (R10).

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use async_trait::async_trait;
use chrono::{DateTime, SecondsFormat, TimeDelta, Utc};
use futures_util::future::join_all;
use oncall_core::{
    Capabilities, Deletion, Error, Member, NewOverride, Override, OverrideId, Provider, Resource,
    RoleTimeline, ScheduleListing, Span, VendorSchedule, VendorScheduleId, Window,
};
use reqwest::Method;
use serde_json::Value;

use crate::builder::OpsgenieBuilder;
use crate::client::{Client, Request};
use crate::error::CallContext;
use crate::json::Node;
use crate::limits::{limits, RotationMemory, RotationRef};
use crate::models::{self, HeldOverride, WireSchedule};
use crate::timeline::{chunks, interval_days, role_timelines, rotation_order};
use crate::{Note, OnCallReport, ScheduleDetails};

/// How many times an update that ends a running override is re-sent with the vendor's clock, if
/// the vendor refuses an end in its past (UNCONFIRMED whether it does).
const CUT_RESENDS: usize = 3;

/// The Opsgenie adapter: a [`Provider`] over one account and key.
///
/// Cheap to clone: clones share the HTTP connection pool, the request pacer and the concurrency
/// limit, so a host may hand clones to several tasks and still stay under the account's rate limit.
/// `Debug` shows the base URL and settings, never the key.
#[derive(Debug, Clone)]
pub struct OpsgenieProvider {
    client: Arc<Client>,
    /// Rotations of the limited overrides last listed or fetched, shared by clones.
    rotations: Arc<RotationMemory>,
}

impl OpsgenieProvider {
    /// A builder: key, region or base URL, timeout, retries, concurrency and rate.
    pub fn builder() -> OpsgenieBuilder {
        OpsgenieBuilder::new()
    }

    pub(crate) fn from_client(client: Client) -> OpsgenieProvider {
        OpsgenieProvider {
            client: Arc::new(client),
            rotations: Arc::new(RotationMemory::default()),
        }
    }

    /// The API's base URL.
    pub fn base_url(&self) -> &str {
        self.client.base_url()
    }

    /// A result as it leaves the provider: the key redacted from any error, whatever answer its
    /// message quotes (the client's errors, a malformed body's values).
    fn scrubbed<T>(&self, result: Result<T, Error>) -> Result<T, Error> {
        result.map_err(|e| self.client.scrub(e))
    }

    /// [`Self::scrubbed`] for a batch's results, item by item.
    fn scrubbed_batch(
        &self,
        result: Result<Vec<Result<Override, Error>>, Error>,
    ) -> Result<Vec<Result<Override, Error>>, Error> {
        self.scrubbed(result)
            .map(|items| items.into_iter().map(|r| self.scrubbed(r)).collect())
    }

    /// Every schedule with what the core's [`VendorSchedule`] has no field for: whether it is
    /// enabled, and participants imported as nobody (teams, escalations).
    ///
    /// Disabled schedules are listed here and by [`Provider::list_schedules`] alike: hiding one
    /// would make it look deleted to a host that exports to it; a host that wants only live
    /// schedules filters on [`ScheduleDetails::enabled`].
    pub async fn list_schedule_details(&self) -> Result<Vec<ScheduleDetails>, Error> {
        self.scrubbed(
            async {
                let request = Request::get(vec!["schedules"], CallContext::default())
                    .query("expand", "rotation");
                let answer = self.client.send(&request).await?;
                let root = Node::root(&answer);
                let schedules = root
                    .field("data")?
                    .items()?
                    .iter()
                    .map(models::schedule)
                    .collect::<Result<Vec<_>, _>>()?;
                let mut details = Vec::with_capacity(schedules.len());
                for wire in schedules {
                    details.push(self.details(wire).await?);
                }
                Ok(details)
            }
            .await,
        )
    }

    /// One schedule with its [`ScheduleDetails`].
    pub async fn schedule_details(
        &self,
        schedule: &VendorScheduleId,
    ) -> Result<ScheduleDetails, Error> {
        self.scrubbed(
            async {
                let wire = self.get_schedule(schedule).await?;
                self.details(wire).await
            }
            .await,
        )
    }

    /// Who is on call over `window`, one timeline per rotation in timeline order, with notes on
    /// what the core's model cannot carry: team or escalation on call (their slots are empty),
    /// rotations left out because they do not cover the window.
    ///
    /// Reads the schedule (for the rotations' start and end) and its timeline in chunks of
    /// [`CHUNK_DAYS`](crate::CHUNK_DAYS) days. Periods are the vendor's `finalTimeline`: overrides
    /// as the vendor applied them to each rotation, the pieces of one person's period split at the
    /// request instant (`historical` then `default`, or an override's two parts: an instant with a
    /// fraction of a second) joined again, clipped to the window.
    pub async fn on_call_report(
        &self,
        schedule: &VendorScheduleId,
        window: Window,
    ) -> Result<OnCallReport, Error> {
        self.scrubbed(
            async {
                let config = self.get_schedule(schedule).await?;
                let mut answers = Vec::new();
                for chunk in chunks(window) {
                    let date = chunk.start().to_rfc3339_opts(SecondsFormat::Millis, true);
                    let rotations = self
                        .timeline(schedule, Some((date, interval_days(chunk))))
                        .await?;
                    answers.push((chunk, rotations));
                }
                let mut notes = Vec::new();
                let timelines = role_timelines(&answers, &config.rotations, window, &mut notes);
                Ok(OnCallReport { timelines, notes })
            }
            .await,
        )
    }

    async fn get_schedule(&self, schedule: &VendorScheduleId) -> Result<WireSchedule, Error> {
        let context = CallContext {
            schedule: Some(&schedule.0),
            ..CallContext::default()
        };
        let request =
            Request::get(vec!["schedules", &schedule.0], context).query("identifierType", "id");
        let answer = self.client.send(&request).await?;
        models::schedule(&Node::root(&answer).field("data")?)
    }

    /// The schedule's timeline: `finalTimeline` rotations. `span` is `(date, days)`; without it
    /// the vendor answers one day from its own now (enough for the rotations' `order`).
    async fn timeline(
        &self,
        schedule: &VendorScheduleId,
        span: Option<(String, i64)>,
    ) -> Result<Vec<models::TimelineRotation>, Error> {
        let context = CallContext {
            schedule: Some(&schedule.0),
            ..CallContext::default()
        };
        let mut request = Request::get(vec!["schedules", &schedule.0, "timeline"], context)
            .query("identifierType", "id");
        let days = match span {
            Some((date, days)) => {
                request = request.query("date", date);
                days
            }
            None => 1,
        };
        let request = request
            .query("interval", days.to_string())
            .query("intervalUnit", "days");
        let answer = self.client.send(&request).await?;
        models::timeline(&Node::root(&answer))
    }

    /// Orders the rotations as the UI does (one timeline read, only when there is a choice) and
    /// translates the schedule.
    async fn details(&self, wire: WireSchedule) -> Result<ScheduleDetails, Error> {
        let id = VendorScheduleId(wire.id.clone());
        let order: Vec<usize> = if wire.rotations.len() > 1 {
            rotation_order(&wire.rotations, &self.timeline(&id, None).await?)
        } else {
            (0..wire.rotations.len()).collect()
        };
        let mut members: Vec<Member> = Vec::new();
        let mut notes = Vec::new();
        let mut rotations = Vec::with_capacity(order.len());
        for i in order {
            let r = &wire.rotations[i];
            for email in &r.members {
                if !members.iter().any(|m| &m.email == email) {
                    // Opsgenie usernames are emails; the name a host shows is the email too.
                    members.push(Member::new(email.clone(), email.as_str()));
                }
            }
            notes.extend(r.non_users.iter().map(|who| Note::NonUserParticipant {
                rotation: r.rotation.name.clone(),
                kind: who.kind.clone(),
                name: who.name.clone(),
            }));
            rotations.push(r.rotation.clone());
        }
        Ok(ScheduleDetails {
            schedule: VendorSchedule {
                id,
                name: wire.name,
                zone: wire.zone,
                members,
                rotations,
            },
            enabled: wire.enabled,
            notes,
        })
    }

    fn override_request<'a>(
        method: Method,
        schedule: &'a VendorScheduleId,
        alias: Option<&'a OverrideId>,
        member: Option<&'a oncall_core::Email>,
    ) -> Request<'a> {
        let mut path = vec!["schedules", schedule.0.as_str(), "overrides"];
        path.extend(alias.map(OverrideId::as_str));
        let context = CallContext {
            write: method != Method::GET,
            schedule: Some(&schedule.0),
            alias: alias.map(OverrideId::as_str),
            member,
        };
        Request {
            method,
            path,
            query: vec![("scheduleIdentifierType", "id".to_owned())],
            body: None,
            context,
        }
    }

    async fn create_one(
        &self,
        schedule: &VendorScheduleId,
        new: &NewOverride,
        stopped: &Mutex<Option<Error>>,
    ) -> Result<Override, Error> {
        let span = models::wire_span(&new.span);
        let mut request =
            Self::override_request(Method::POST, schedule, new.id.as_ref(), Some(&span.member));
        // The alias goes in the body, not the path.
        request.path.truncate(3);
        request.body = Some(models::create_body(&span, new.id.as_ref()));
        let not_sent = || match &*stopped.lock().unwrap_or_else(|e| e.into_inner()) {
            None => Ok(()),
            Some(e) => Err(not_sent_after(e)),
        };
        let result = self
            .client
            .send_unless(&request, not_sent)
            .await
            .and_then(|answer| models::answered_alias(&Node::root(&answer)));
        if let Err(e) = &result {
            if stops_a_batch(e) {
                let mut first = stopped.lock().unwrap_or_else(|e| e.into_inner());
                first.get_or_insert_with(|| e.clone());
            }
        }
        result.map(|id| Override { id, span })
    }

    async fn put(
        &self,
        schedule: &VendorScheduleId,
        id: &OverrideId,
        span: &Span,
    ) -> Result<(), Error> {
        let mut request =
            Self::override_request(Method::PUT, schedule, Some(id), Some(&span.member));
        // A full replace: an override limited to some rotations keeps them (see `limits`).
        let rotations = self.rotations.of(&schedule.0, id);
        request.body = Some(models::update_body(span, &rotations));
        self.client.send(&request).await.map(|_| ())
    }

    /// `GET …/overrides/{alias}`, remembering the rotations of a limited override.
    async fn fetch_override(
        &self,
        schedule: &VendorScheduleId,
        id: &OverrideId,
    ) -> Result<Option<Override>, Error> {
        let request = Self::override_request(Method::GET, schedule, Some(id), None);
        let held = match self.client.send(&request).await {
            Ok(answer) => models::override_(&Node::root(&answer).field("data")?)?,
            Err(Error::NotFound {
                resource: Resource::Override(_),
                ..
            }) => None,
            Err(e) => return Err(e),
        };
        let limited = self.limited(schedule, held.iter()).await?;
        self.rotations
            .fetched(&schedule.0, id, limited.into_values().next());
        Ok(held.map(|h| h.held))
    }

    /// `GET …/overrides`: every override the schedule holds (Opsgenie has no window parameter),
    /// remembering the rotations of the limited ones.
    async fn fetch_overrides(&self, schedule: &VendorScheduleId) -> Result<Vec<Override>, Error> {
        let request = Self::override_request(Method::GET, schedule, None, None);
        let answer = self.client.send(&request).await?;
        let mut held = Vec::new();
        for node in Node::root(&answer).field("data")?.items()? {
            held.extend(models::override_(&node)?);
        }
        let limited = self.limited(schedule, held.iter()).await?;
        self.rotations.listed(&schedule.0, limited);
        Ok(held.into_iter().map(|h| h.held).collect())
    }

    /// The overrides among `held` that are limited to some rotations, with those rotations. Only
    /// when one names rotations is the schedule read, to tell a list of every rotation (which
    /// limits nothing) from a real limit.
    async fn limited<'a>(
        &self,
        schedule: &VendorScheduleId,
        held: impl Iterator<Item = &'a HeldOverride>,
    ) -> Result<HashMap<OverrideId, Vec<RotationRef>>, Error> {
        let named: Vec<&HeldOverride> = held.filter(|h| !h.rotations.is_empty()).collect();
        if named.is_empty() {
            return Ok(HashMap::new());
        }
        let all = self.get_schedule(schedule).await?.rotations;
        Ok(named
            .into_iter()
            .filter(|h| limits(&h.rotations, &all))
            .map(|h| (h.held.id.clone(), h.rotations.clone()))
            .collect())
    }

    /// Whether `span` ends a running override at or before the vendor's now, as far as its last
    /// `Date` header tells.
    fn is_cut(&self, span: &Span) -> Option<DateTime<Utc>> {
        let now = self.client.vendor_now()?;
        (span.start < now && span.end <= now).then_some(now)
    }
}

/// Whether the vendor refused a write for its end date (a 422 naming `endDate`, or saying the end
/// is in the past): only such a refusal of a cut is re-sent with the vendor's now. Any other
/// refusal stands.
fn refuses_the_end(e: &Error) -> bool {
    let Error::Rejected { message } = e else {
        return false;
    };
    let m = message.to_lowercase();
    m.starts_with("http 422") && (m.contains("enddate") || m.contains("end date"))
}

/// Errors after which the rest of a batch is not sent: the key cannot write, the schedule is gone,
/// or the vendor answers what we cannot read (nothing is written after a malformed answer).
fn stops_a_batch(e: &Error) -> bool {
    matches!(
        e,
        Error::PermissionDenied { .. }
            | Error::Unauthenticated { .. }
            | Error::InvalidResponse { .. }
            | Error::NotFound {
                resource: Resource::Schedule(_),
                ..
            }
    )
}

/// The error of a create not sent because an earlier one of its batch failed with `e` (one that
/// [`stops_a_batch`]): of the same kind, so that the sync treats the unsent item as it treats
/// the failure that stopped it. After a malformed answer that is [`Error::InvalidResponse`],
/// never [`Error::Transient`]: the sync takes a transient item for a lost answer, re-reads and
/// re-sends it, and nothing may be written after an answer that could not be read.
fn not_sent_after(e: &Error) -> Error {
    let message = format!("not sent: an earlier create of this batch failed ({e})");
    match e {
        Error::PermissionDenied { .. } => Error::PermissionDenied { message },
        Error::Unauthenticated { .. } => Error::Unauthenticated { message },
        Error::NotFound { resource, .. } => Error::NotFound {
            resource: resource.clone(),
            message,
        },
        _ => Error::InvalidResponse { message },
    }
}

#[async_trait]
impl Provider for OpsgenieProvider {
    fn name(&self) -> &str {
        "opsgenie"
    }

    /// Opsgenie's capabilities, with one create call per item sent concurrently: a batch is as
    /// large as the connection's concurrency limit.
    fn capabilities(&self) -> Capabilities {
        Capabilities {
            max_batch: self.client.max_concurrency(),
            ..Capabilities::OPSGENIE
        }
    }

    /// `opsgenie <base URL>`: schedule ids are UUIDs, unique within the service a base URL names.
    fn account(&self) -> Option<String> {
        Some(format!("opsgenie {}", self.base_url()))
    }

    async fn list_schedules(&self) -> Result<ScheduleListing, Error> {
        self.scrubbed(
            async {
                let details = self.list_schedule_details().await?;
                Ok(ScheduleListing::complete(
                    details.into_iter().map(|d| d.schedule).collect(),
                ))
            }
            .await,
        )
    }

    async fn schedule(&self, schedule: &VendorScheduleId) -> Result<VendorSchedule, Error> {
        self.scrubbed(async { Ok(self.schedule_details(schedule).await?.schedule) }.await)
    }

    async fn on_call(
        &self,
        schedule: &VendorScheduleId,
        window: Window,
    ) -> Result<Vec<RoleTimeline>, Error> {
        self.scrubbed(async { Ok(self.on_call_report(schedule, window).await?.timelines) }.await)
    }

    /// `GET …/overrides/{alias}`. A 404 is `None`, unless the vendor says the schedule is missing.
    /// A 403 is the schedule's [`Error::NotFound`] ("not found, or not visible to this key"), not
    /// `None`: the sync would otherwise forget an override it merely cannot see.
    async fn get_override(
        &self,
        schedule: &VendorScheduleId,
        id: &OverrideId,
    ) -> Result<Option<Override>, Error> {
        self.scrubbed(async { self.fetch_override(schedule, id).await }.await)
    }

    /// `GET …/overrides` (Opsgenie has no window parameter), kept where they overlap `window`.
    /// Overrides that name no person are listed under their reserved emails
    /// ([`OverrideRecipient`](crate::OverrideRecipient)); the rotations of those limited to some
    /// are remembered for their updates.
    async fn list_overrides(
        &self,
        schedule: &VendorScheduleId,
        window: Window,
    ) -> Result<Vec<Override>, Error> {
        self.scrubbed(
            async {
                let mut overrides = self.fetch_overrides(schedule).await?;
                overrides.retain(|o| o.span.overlaps(window.start(), window.end()));
                overrides.sort_by(|a, b| a.span.cmp(&b.span).then_with(|| a.id.cmp(&b.id)));
                Ok(overrides)
            }
            .await,
        )
    }

    /// One POST per item, sent concurrently within the connection's limit and pace; one result
    /// per item, in order. A POST is retried only after a 429; one whose answer was lost is that
    /// item's [`Error::Transient`] (the sync re-reads and adopts). A taken alias is that item's
    /// [`Error::Conflict`], an unknown person its [`Error::UnknownMember`]. After a refusal for
    /// rights or a malformed answer, items not yet sent are not sent. A batch larger than
    /// [`Capabilities::max_batch`] is refused whole ([`Error::Rejected`]), unsent.
    async fn create_overrides(
        &self,
        schedule: &VendorScheduleId,
        overrides: &[NewOverride],
    ) -> Result<Vec<Result<Override, Error>>, Error> {
        self.scrubbed_batch(
            async {
                let max_batch = self.client.max_concurrency();
                if overrides.len() > max_batch {
                    return Err(Error::Rejected {
                        message: format!(
                            "at most {max_batch} overrides per create call (the connection's \
                             concurrency), {} given",
                            overrides.len()
                        ),
                    });
                }
                let stopped = Mutex::new(None);
                let creates = overrides
                    .iter()
                    .map(|new| self.create_one(schedule, new, &stopped));
                Ok(join_all(creates).await)
            }
            .await,
        )
    }

    /// `PUT …/overrides/{alias}`: a full replace of person and span. An override limited to some
    /// rotations, as this provider or a clone last listed or fetched it, keeps them (they are sent
    /// back); any other is sent without `rotations` (every rotation).
    ///
    /// Ending a running override at or before the vendor's now: whether Opsgenie clamps such an
    /// end to its now, keeps it in its past, or refuses it is UNCONFIRMED. The safe reading: send
    /// it as asked; if the vendor accepted it, read the override back and answer what the vendor
    /// holds; if it refused the end (a 422 naming `endDate`), re-send (up to three times) with the end at the first
    /// whole second not before the vendor's now, as its `Date` header gives it.
    async fn update_override(
        &self,
        schedule: &VendorScheduleId,
        id: &OverrideId,
        span: &Span,
    ) -> Result<Override, Error> {
        self.scrubbed(
            async {
                let span = models::wire_span(span);
                let mut result = self.put(schedule, id, &span).await;
                let mut sent = span.clone();
                for _ in 0..CUT_RESENDS {
                    match (&result, self.is_cut(&sent)) {
                        (Err(e), Some(now)) if refuses_the_end(e) => {
                            sent.end = now + TimeDelta::seconds(1);
                            result = self.put(schedule, id, &sent).await;
                        }
                        _ => break,
                    }
                }
                result?;
                if self.is_cut(&sent).is_some() {
                    if let Some(held) = self.get_override(schedule, id).await? {
                        return Ok(held);
                    }
                }
                Ok(Override {
                    id: id.clone(),
                    span: sent,
                })
            }
            .await,
        )
    }

    /// `DELETE …/overrides/{alias}`: Opsgenie removes the override, running or not. An alias the
    /// vendor does not hold is [`Error::NotFound`] of the override.
    async fn delete_override(
        &self,
        schedule: &VendorScheduleId,
        id: &OverrideId,
    ) -> Result<Deletion, Error> {
        self.scrubbed(
            async {
                let request = Self::override_request(Method::DELETE, schedule, Some(id), None);
                let _: Value = self.client.send(&request).await?;
                Ok(Deletion::Deleted)
            }
            .await,
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::{Duration, Instant};

    #[tokio::test]
    async fn a_rate_limit_pauses_every_clone() {
        let policy = oncall_core::RetryPolicy {
            max_total_delay: Duration::from_millis(80),
            ..oncall_core::RetryPolicy::default()
        };
        let a = OpsgenieProvider::builder()
            .with_api_key("k")
            .with_retry(policy)
            .without_rate_limit()
            .build()
            .unwrap();
        let b = a.clone();
        // A 429 seen by one clone asks for 60 s; the policy's total budget caps the pause at 80 ms.
        a.client.pause(Some(Duration::from_secs(60)));
        let started = Instant::now();
        b.client.pace().await;
        let waited = started.elapsed();
        assert!(waited >= Duration::from_millis(70), "{waited:?}");
        assert!(waited < Duration::from_secs(5), "{waited:?}");
    }
}
