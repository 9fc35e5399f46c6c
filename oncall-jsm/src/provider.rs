//! [`JsmProvider`]: the core's [`Provider`] over JSM Operations' REST API. Translation only:
//! schedules, rotations, timelines and overrides on the Operations API, and one user lookup per
//! person on the site (R10).

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};

use async_trait::async_trait;
use chrono::{DateTime, SecondsFormat, TimeDelta, Utc};
use futures_util::future::join_all;
use oncall_core::{
    local_time, Capabilities, Deletion, Email, Error, Member, NewOverride, Override, OverrideId,
    Participant, Provider, Resource, RoleTimeline, Rotation, ScheduleListing, Span,
    UnreadableSchedule, VendorSchedule, VendorScheduleId, Window,
};
use reqwest::Method;
use serde_json::{json, Value};

use crate::builder::JsmBuilder;
use crate::client::{lock, Client, Request};
use crate::directory::Directory;
use crate::error::CallContext;
use crate::json::Node;
use crate::models::{self, WireOverride, WireResponder, WireRotation, WireSchedule};
use crate::pagination;
use crate::recipient::Responder;
use crate::timeline::{chunks, interval_days, role_timelines, rotation_order};

/// The JSM Operations adapter: a [`Provider`] over one site and account.
///
/// Cheap to clone: clones share the HTTP connection pool, the pacer, the concurrency limit and
/// the directory of people, so a host may hand clones to several tasks. `Debug` shows the site and
/// settings, never the token.
#[derive(Debug, Clone)]
pub struct JsmProvider {
    pub(crate) client: Arc<Client>,
    pub(crate) directory: Arc<Directory>,
    memory: Arc<Memory>,
}

/// What the connection has learnt about the account as it went.
#[derive(Debug, Default)]
struct Memory {
    /// Per schedule, the `rotationIds` the vendor named for an override (absent: it named none,
    /// so every rotation). An update sends them back, so an override limited to some rotations
    /// stays limited (R1: a cut never spreads a running override's past over other rotations).
    rotation_ids: Mutex<HashMap<String, HashMap<OverrideId, Vec<String>>>>,
    /// The vendor refused a page size: lists go at its default size.
    size_refused: AtomicBool,
    /// The vendor refused a create that named no rotation (whether leaving `rotationIds` out
    /// means "every rotation" is UNCONFIRMED): creates name every rotation of the schedule.
    name_rotations_on_create: AtomicBool,
    /// The same, for updates (the update body's fields are UNCONFIRMED too).
    name_rotations_on_update: AtomicBool,
}

impl JsmProvider {
    /// A builder: site or cloudId, account e-mail, API token, timeout, retries, rate, trace.
    pub fn builder() -> JsmBuilder {
        JsmBuilder::new()
    }

    pub(crate) fn from_parts(client: Client, known: &[(Email, String)]) -> JsmProvider {
        JsmProvider {
            client: Arc::new(client),
            directory: Arc::new(Directory::with_known(known)),
            memory: Arc::new(Memory::default()),
        }
    }

    /// The Operations API's base URL as configured (without the cloudId).
    pub fn api_base_url(&self) -> &str {
        self.client.api_base().as_str()
    }

    /// The adaptive pacer's current rate in requests a second (`None` without a rate of our own).
    pub fn rate_per_second(&self) -> Option<f64> {
        self.client.rate_per_second()
    }

    /// The cloudId: given, or read once from the site.
    pub async fn cloud_id(&self) -> Result<String, Error> {
        self.scrubbed(self.client.cloud_id().await.map(str::to_owned))
    }

    /// A person's accountId, looked up on the site (once per connection).
    pub async fn account_id(&self, email: &Email) -> Result<String, Error> {
        self.scrubbed(self.directory.account_of(&self.client, email).await)
    }

    pub(crate) fn scrubbed<T>(&self, result: Result<T, Error>) -> Result<T, Error> {
        result.map_err(|e| self.client.scrub(e))
    }

    fn override_request<'a>(
        method: Method,
        schedule: &'a VendorScheduleId,
        alias: Option<&'a str>,
        member: Option<&'a Email>,
    ) -> Request<'a> {
        let mut path = vec!["schedules", schedule.0.as_str(), "overrides"];
        path.extend(alias);
        let context = CallContext {
            write: method != Method::GET,
            schedule: Some(&schedule.0),
            alias,
            member,
            people: false,
        };
        Request::ops(method, &path, context)
    }

    // ------------------------------------------------------------------------------------------
    // Schedules.

    /// Every schedule item of the listing, each parsed on its own: one odd item is that item's
    /// error, never the listing's.
    async fn list_wire_schedules(
        &self,
    ) -> Result<Vec<Result<WireSchedule, Box<UnreadableSchedule>>>, Error> {
        let first = Request::ops(Method::GET, &["schedules"], CallContext::default())
            .query("expand", "rotation");
        let items =
            pagination::collect(&self.client, first, &self.memory.size_refused, "schedules")
                .await?;
        Ok(items
            .iter()
            .map(|item| {
                let node = Node::root(item);
                models::schedule(&node).map_err(|error| {
                    Box::new(UnreadableSchedule {
                        id: VendorScheduleId(
                            node.opt_str("id")
                                .ok()
                                .flatten()
                                .unwrap_or("(no id)")
                                .to_owned(),
                        ),
                        name: node.opt_str("name").ok().flatten().map(str::to_owned),
                        error,
                    })
                })
            })
            .collect())
    }

    /// One schedule with its rotations (read from `/rotations` when the answer leaves them out).
    async fn wire_schedule(&self, schedule: &VendorScheduleId) -> Result<WireSchedule, Error> {
        let context = CallContext {
            schedule: Some(&schedule.0),
            ..CallContext::default()
        };
        let request = Request::ops(Method::GET, &["schedules", &schedule.0], context)
            .query("expand", "rotation");
        let answer = self.client.send(&request).await?;
        let wire = models::schedule(&Node::root(&answer.body))?;
        self.with_rotations(wire).await
    }

    /// The schedule with its rotations: as the answer gave them, or read from `/rotations` when it
    /// left them out (a listing's later pages may not carry the expansion the first asked for).
    async fn with_rotations(&self, mut wire: WireSchedule) -> Result<WireSchedule, Error> {
        if wire.rotations.is_some() {
            return Ok(wire);
        }
        let id = wire.id.clone();
        let context = CallContext {
            schedule: Some(&id),
            ..CallContext::default()
        };
        let first = Request::ops(Method::GET, &["schedules", &id, "rotations"], context);
        let items =
            pagination::collect(&self.client, first, &self.memory.size_refused, "rotations")
                .await?;
        wire.rotations = Some(
            items
                .iter()
                .map(|r| models::rotation(&Node::root(r)))
                .collect::<Result<Vec<_>, _>>()?,
        );
        Ok(wire)
    }

    /// The schedule's timeline from `date` for `days` days (the vendor starts at the beginning of
    /// that day); without a span, one day from the vendor's now (enough for the rotations' order).
    async fn timeline(
        &self,
        schedule: &VendorScheduleId,
        span: Option<(String, i64)>,
    ) -> Result<Vec<models::TimelineRotation>, Error> {
        let context = CallContext {
            schedule: Some(&schedule.0),
            ..CallContext::default()
        };
        let mut request = Request::ops(
            Method::GET,
            &["schedules", &schedule.0, "timeline"],
            context,
        );
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
        models::timeline(&Node::root(&answer.body))
    }

    /// The core's view of a schedule, rotations in `order`, people by e-mail.
    async fn translate(
        &self,
        wire: WireSchedule,
        order: &[usize],
    ) -> Result<VendorSchedule, Error> {
        let rotations = wire.rotations.unwrap_or_default();
        let mut members: Vec<Member> = Vec::new();
        let mut translated = Vec::with_capacity(order.len());
        for &i in order {
            let r = &rotations[i];
            let mut participants = Vec::with_capacity(r.participants.len());
            for p in &r.participants {
                match p {
                    WireResponder::User(account) => {
                        match self.directory.member_of(&self.client, account).await? {
                            Some(member) => {
                                if !members.iter().any(|m| m.email == member.email) {
                                    members.push(member.clone());
                                }
                                participants.push(Participant::Member(member.email));
                            }
                            None => participants.push(Participant::Nobody),
                        }
                    }
                    // `noone`, a team or an escalation: the slot is imported as nobody.
                    _ => participants.push(Participant::Nobody),
                }
            }
            if participants.is_empty() {
                participants.push(Participant::Nobody);
            }
            translated.push(Rotation {
                name: r.name.clone(),
                unit: r.unit,
                length: r.length,
                start: local_time(wire.zone, r.start),
                effective_from: None,
                end: r.end.map(|e| local_time(wire.zone, e)),
                participants,
                restrictions: r.restrictions.clone(),
            });
        }
        Ok(VendorSchedule {
            id: VendorScheduleId(wire.id),
            name: wire.name,
            zone: wire.zone,
            members,
            rotations: translated,
        })
    }

    /// The ids of a schedule's rotations (for overrides that must name them).
    pub(crate) async fn rotation_ids_of(
        &self,
        schedule: &VendorScheduleId,
    ) -> Result<Vec<String>, Error> {
        let wire = self.wire_schedule(schedule).await?;
        Ok(wire
            .rotations
            .unwrap_or_default()
            .into_iter()
            .map(|r| r.id)
            .collect())
    }

    // ------------------------------------------------------------------------------------------
    // Overrides.

    /// An override as the core sees it: the responder as an e-mail (a reserved one for
    /// `noone`, a hidden person, a team or an escalation). `None` for a responder no e-mail can
    /// carry.
    async fn to_override(&self, wire: &WireOverride) -> Result<Option<Override>, Error> {
        let member = match &wire.responder {
            WireResponder::User(account) => self.directory.email_of(&self.client, account).await?,
            WireResponder::Nobody => Responder::Nobody.email(),
            WireResponder::Other { kind, id } => match kind.as_str() {
                "team" => Responder::Team(id.clone()).email(),
                "escalation" => Responder::Escalation(id.clone()).email(),
                _ => None,
            },
        };
        Ok(member.map(|member| Override {
            id: OverrideId::new(wire.alias.as_str()),
            span: Span::new(wire.start, wire.end, member),
        }))
    }

    /// The responder object for the person (or reserved e-mail) a span names.
    async fn responder_json(&self, member: &Email) -> Result<Value, Error> {
        Ok(match Responder::from_email(member) {
            Responder::User(email) => {
                let account = self.directory.account_of(&self.client, &email).await?;
                json!({"type": "user", "id": account})
            }
            Responder::Account(account) => json!({"type": "user", "id": account}),
            Responder::Nobody => json!({"type": "noone"}),
            Responder::Team(id) => json!({"type": "team", "id": id}),
            Responder::Escalation(id) => json!({"type": "escalation", "id": id}),
        })
    }

    fn remember(&self, schedule: &VendorScheduleId, wire: &WireOverride) {
        let mut memory = lock(&self.memory.rotation_ids);
        let known = memory.entry(schedule.0.clone()).or_default();
        let id = OverrideId::new(wire.alias.as_str());
        match &wire.rotation_ids {
            Some(ids) => known.insert(id, ids.clone()),
            None => known.remove(&id),
        };
    }

    fn remembered(&self, schedule: &VendorScheduleId, id: &OverrideId) -> Option<Vec<String>> {
        lock(&self.memory.rotation_ids)
            .get(&schedule.0)
            .and_then(|known| known.get(id))
            .cloned()
    }

    /// Every override the schedule lists (ongoing and future ones, the documented reading; ended
    /// ones too where the vendor lists them), remembering the rotations each names.
    async fn fetch_overrides(&self, schedule: &VendorScheduleId) -> Result<Vec<Override>, Error> {
        let first = Self::override_request(Method::GET, schedule, None, None);
        let items =
            pagination::collect(&self.client, first, &self.memory.size_refused, "overrides")
                .await?;
        let mut held = Vec::with_capacity(items.len());
        let mut named = HashMap::new();
        for item in &items {
            let wire = models::override_(&Node::root(item))?;
            if let Some(ids) = &wire.rotation_ids {
                named.insert(OverrideId::new(wire.alias.as_str()), ids.clone());
            }
            held.extend(self.to_override(&wire).await?);
        }
        // A listing of the whole schedule replaces what is remembered of it.
        lock(&self.memory.rotation_ids).insert(schedule.0.clone(), named);
        Ok(held)
    }

    /// `GET …/overrides/{alias}`: `None` when the vendor holds no such override.
    async fn fetch_override(
        &self,
        schedule: &VendorScheduleId,
        id: &OverrideId,
    ) -> Result<Option<Override>, Error> {
        let request = Self::override_request(Method::GET, schedule, Some(id.as_str()), None);
        let answer = match self.client.send(&request).await {
            Ok(answer) => answer,
            Err(Error::NotFound {
                resource: Resource::Override(_),
                ..
            }) => return Ok(None),
            // An id the vendor cannot even take as an alias (one another vendor gave, carried
            // over by a migration) names no override it holds.
            Err(Error::Rejected { message })
                if message.starts_with("HTTP 400") || message.starts_with("HTTP 422") =>
            {
                return Ok(None)
            }
            Err(e) => return Err(e),
        };
        let wire = models::override_(&Node::root(&answer.body))?;
        self.remember(schedule, &wire);
        self.to_override(&wire).await
    }

    /// Sends a create or update body; if the vendor refuses it for naming no rotation, names
    /// every rotation of the schedule and sends it once more (and from then on, on this
    /// connection). A refusal is no write, so sending again is safe.
    async fn send_override(
        &self,
        request: Request<'_>,
        schedule: &VendorScheduleId,
        responder: Value,
        span: &Span,
        rotation_ids: Option<Vec<String>>,
    ) -> Result<WireOverride, Error> {
        let name_rotations = if request.method == Method::POST {
            &self.memory.name_rotations_on_create
        } else {
            &self.memory.name_rotations_on_update
        };
        let mut ids = rotation_ids;
        if ids.is_none() && name_rotations.load(Ordering::Relaxed) {
            ids = Some(self.rotation_ids_of(schedule).await?);
        }
        let body = models::override_body(responder.clone(), span, ids.as_deref());
        let result = self.client.send(&request.clone().body(body)).await;
        let answer = match result {
            Err(Error::Rejected { message }) if ids.is_none() && refuses_no_rotation(&message) => {
                name_rotations.store(true, Ordering::Relaxed);
                let all = self.rotation_ids_of(schedule).await?;
                let body = models::override_body(responder, span, Some(&all));
                self.client.send(&request.body(body)).await?
            }
            other => other?,
        };
        let wire = models::override_(&Node::root(&answer.body))?;
        self.remember(schedule, &wire);
        Ok(wire)
    }

    /// One `PUT` of a span (see [`Provider::update_override`]).
    async fn put(
        &self,
        schedule: &VendorScheduleId,
        id: &OverrideId,
        responder: Value,
        span: &Span,
        rotations: Option<Vec<String>>,
    ) -> Result<WireOverride, Error> {
        let request =
            Self::override_request(Method::PUT, schedule, Some(id.as_str()), Some(&span.member));
        self.send_override(request, schedule, responder, span, rotations)
            .await
    }

    /// Whether `span` ends a running override at or before the vendor's now, as far as the `Date`
    /// of its last answer tells: that now, if so.
    fn is_cut(&self, span: &Span) -> Option<DateTime<Utc>> {
        let now = self.client.vendor_now()?;
        (span.start < now && span.end <= now).then_some(now)
    }

    async fn create_one(
        &self,
        schedule: &VendorScheduleId,
        new: &NewOverride,
        responder: Result<Value, Error>,
        stopped: &Mutex<Option<Error>>,
    ) -> Result<Override, Error> {
        let span = models::wire_span(&new.span);
        let responder = responder?;
        if let Some(e) = &*lock(stopped) {
            return Err(not_sent_after(e));
        }
        let request = Self::override_request(Method::POST, schedule, None, Some(&span.member));
        let result = self
            .send_override(request, schedule, responder, &span, None)
            .await
            .map(|wire| held_span(&wire, &span));
        if let Err(e) = &result {
            if stops_a_batch(e) {
                lock(stopped).get_or_insert_with(|| e.clone());
            }
        }
        result
    }
}

/// The override as the vendor answered it: its alias and the span it holds, for the person the
/// create or update named (the answer names them by accountId).
fn held_span(wire: &WireOverride, sent: &Span) -> Override {
    Override {
        id: OverrideId::new(wire.alias.as_str()),
        span: Span::new(wire.start, wire.end, sent.member.clone()),
    }
}

/// How many times a cut refused for its end in the vendor's past is sent again at the vendor's
/// now (its clock may move on between the answers).
pub const CUT_RESENDS: usize = 3;

/// Whether the vendor refused a write for its end date (a 400 or 422 naming the end date, or
/// saying the end is in the past): only such a refusal of a cut is sent again at the vendor's now.
/// Any other refusal stands.
fn refuses_the_end(e: &Error) -> bool {
    let Error::Rejected { message } = e else {
        return false;
    };
    let m = message.to_lowercase();
    (m.starts_with("http 400") || m.starts_with("http 422"))
        && (m.contains("enddate") || m.contains("end date") || m.contains("in the past"))
}

/// Whether a refusal is for naming no rotation (a 400 or 422 whose words name the rotations).
fn refuses_no_rotation(message: &str) -> bool {
    let m = message.to_lowercase();
    (m.starts_with("http 400") || m.starts_with("http 422")) && m.contains("rotation")
}

/// Errors after which the rest of a batch is not sent: the account cannot write, the schedule is
/// gone, or the vendor answers what we cannot read.
fn stops_a_batch(e: &Error) -> bool {
    matches!(
        e,
        Error::PermissionDenied { .. }
            | Error::PeopleLookupDenied { .. }
            | Error::Unauthenticated { .. }
            | Error::InvalidResponse { .. }
            | Error::NotFound {
                resource: Resource::Schedule(_),
                ..
            }
    )
}

/// The error of a create not sent because an earlier one of its batch failed with `e`: of the
/// same kind, so the sync treats it as it treats that failure (never `Transient`: that would read
/// as a lost answer, and nothing is written after an answer that could not be read).
fn not_sent_after(e: &Error) -> Error {
    let message = format!("not sent: an earlier create of this batch failed ({e})");
    match e {
        Error::PermissionDenied { .. } => Error::PermissionDenied { message },
        Error::PeopleLookupDenied { .. } => Error::PeopleLookupDenied { message },
        Error::Unauthenticated { .. } => Error::Unauthenticated { message },
        Error::NotFound { resource, .. } => Error::NotFound {
            resource: resource.clone(),
            message,
        },
        _ => Error::InvalidResponse { message },
    }
}

#[async_trait]
impl Provider for JsmProvider {
    fn name(&self) -> &str {
        "jsm"
    }

    /// One create per call, sent side by side up to the connection's concurrency; update in place;
    /// server-chosen aliases (the core's adoption by exact span is the crash-safety, R6); a delete
    /// removes, so a running override is cut by updating its end.
    fn capabilities(&self) -> Capabilities {
        Capabilities {
            max_batch: self.client.max_concurrency(),
            batch_is_one_request: false,
            update_in_place: true,
            client_ids: false,
            delete_truncates_running: false,
        }
    }

    /// `jsm <API base URL>`, however the connection was given (a site, or a cloudId and base URL)
    /// and whether or not the cloudId has been read yet: one name for one account, from the first
    /// call to the last. JSM schedule ids are UUIDs, unique across the sites one API base serves
    /// (a migration that keeps Opsgenie's ids keeps UUIDs too), so two destinations on one
    /// schedule id through this base are on one schedule, whichever site or cloudId each
    /// connection names.
    fn account(&self) -> Option<String> {
        Some(format!("jsm {}", self.client.api_base().as_str()))
    }

    /// `GET /v1/schedules?expand=rotation`, every page; rotations in the vendor's order (the
    /// timeline's order is settled by [`Provider::schedule`]). A schedule that cannot be read (an
    /// unknown zone or rotation type) is listed as unreadable, with the reason.
    async fn list_schedules(&self) -> Result<ScheduleListing, Error> {
        self.scrubbed(
            async {
                let mut listing = ScheduleListing::default();
                for item in self.list_wire_schedules().await? {
                    match item {
                        Ok(wire) => {
                            let id = VendorScheduleId(wire.id.clone());
                            let name = Some(wire.name.clone());
                            let read = async {
                                let wire = self.with_rotations(wire).await?;
                                let order: Vec<usize> =
                                    (0..wire.rotations.as_ref().map_or(0, Vec::len)).collect();
                                self.translate(wire, &order).await
                            };
                            match read.await {
                                Ok(schedule) => listing.schedules.push(schedule),
                                // Gone or hidden since it was listed, or rotations this adapter
                                // cannot read: that schedule alone.
                                Err(
                                    error
                                    @ (Error::NotFound { .. } | Error::InvalidResponse { .. }),
                                ) => {
                                    listing
                                        .unreadable
                                        .push(UnreadableSchedule { id, name, error })
                                }
                                Err(e) => return Err(e),
                            }
                        }
                        Err(unreadable) => listing.unreadable.push(*unreadable),
                    }
                }
                Ok(listing)
            }
            .await,
        )
    }

    /// `GET /v1/schedules/{id}`, rotations in the UI's order (the timeline's `order`, one read
    /// when there is a choice).
    async fn schedule(&self, schedule: &VendorScheduleId) -> Result<VendorSchedule, Error> {
        self.scrubbed(
            async {
                let wire = self.wire_schedule(schedule).await?;
                let rotations = wire.rotations.as_deref().unwrap_or_default();
                let order = if rotations.len() > 1 {
                    rotation_order(rotations, &self.timeline(schedule, None).await?)
                } else {
                    (0..rotations.len()).collect()
                };
                self.translate(wire, &order).await
            }
            .await,
        )
    }

    /// The schedule's timeline in chunks of [`CHUNK_DAYS`](crate::CHUNK_DAYS) days: one role per
    /// rotation in the timeline's order, the pieces of a period split at the request instant joined
    /// again, clipped to the window. `noone`, a team or an escalation on call leaves a role empty.
    async fn on_call(
        &self,
        schedule: &VendorScheduleId,
        window: Window,
    ) -> Result<Vec<RoleTimeline>, Error> {
        self.scrubbed(
            async {
                let config: Vec<WireRotation> = self
                    .wire_schedule(schedule)
                    .await?
                    .rotations
                    .unwrap_or_default();
                let mut answers = Vec::new();
                for chunk in chunks(window) {
                    let date = chunk.start().to_rfc3339_opts(SecondsFormat::Secs, true);
                    let rotations = self
                        .timeline(schedule, Some((date, interval_days(chunk))))
                        .await?;
                    answers.push((chunk, rotations));
                }
                let mut people = HashMap::new();
                for (_, rotations) in &answers {
                    for p in rotations.iter().flat_map(|r| &r.periods) {
                        if let WireResponder::User(account) = &p.responder {
                            if !people.contains_key(account) {
                                if let Some(email) =
                                    self.directory.email_of(&self.client, account).await?
                                {
                                    people.insert(account.clone(), email);
                                }
                            }
                        }
                    }
                }
                Ok(role_timelines(&answers, &config, &people, window))
            }
            .await,
        )
    }

    /// `GET …/overrides/{alias}`. A 404 is `None` (the override, or so the vendor says); a 403 is
    /// the schedule's [`Error::NotFound`], not `None`: the sync would otherwise forget an override
    /// it merely cannot see.
    async fn get_override(
        &self,
        schedule: &VendorScheduleId,
        id: &OverrideId,
    ) -> Result<Option<Override>, Error> {
        self.scrubbed(self.fetch_override(schedule, id).await)
    }

    /// `GET …/overrides`, every page (JSM has no window parameter), kept where they overlap
    /// `window`, sorted. People by e-mail; `noone`, hidden people, teams and escalations under
    /// their reserved e-mails ([`Responder`]).
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

    /// One POST per item, side by side within the connection's concurrency; one result per item,
    /// in order. People are looked up first, each once: an unknown one (or one whose e-mail the
    /// site hides) is that item's [`Error::UnknownMember`], and nothing is sent for it. A POST is
    /// retried only after a 429; one whose answer was lost is that item's [`Error::Transient`]
    /// (the sync re-reads and adopts by exact span, R6). After a refusal for rights or a malformed
    /// answer, items not yet sent are not sent. A batch larger than [`Capabilities::max_batch`] is
    /// refused whole, unsent.
    async fn create_overrides(
        &self,
        schedule: &VendorScheduleId,
        overrides: &[NewOverride],
    ) -> Result<Vec<Result<Override, Error>>, Error> {
        let result = async {
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
            let mut responders = Vec::with_capacity(overrides.len());
            for new in overrides {
                responders.push(self.responder_json(&new.span.member).await);
            }
            // A failure of the lookup itself (not an unknown person) ends the call: nothing sent.
            if let Some(Err(e)) = responders
                .iter()
                .find(|r| matches!(r, Err(e) if !matches!(e, Error::UnknownMember { .. })))
            {
                return Err(e.clone());
            }
            let stopped = Mutex::new(None);
            let creates = overrides
                .iter()
                .zip(responders)
                .map(|(new, responder)| self.create_one(schedule, new, responder, &stopped));
            Ok(join_all(creates).await)
        }
        .await;
        self.scrubbed(result)
            .map(|items| items.into_iter().map(|r| self.scrubbed(r)).collect())
    }

    /// `PUT …/overrides/{alias}` with the responder, the span, and the rotations the vendor last
    /// named for it (so an override limited to some rotations stays so, whatever the update body's
    /// UNCONFIRMED semantics); answered as the vendor holds it.
    ///
    /// An end at or before the vendor's now on a running override (a cut at the sync's now, a
    /// little behind the vendor's): whether JSM clamps such an end to its now or refuses it is
    /// undocumented. Where it clamps, its answer says where the override ended. Where it refuses
    /// the end (a 400 or 422 naming the end date), the cut is sent again (up to
    /// [`CUT_RESENDS`] times) with its end at the first whole second not before the vendor's now,
    /// as the `Date` of its last answer gives it.
    async fn update_override(
        &self,
        schedule: &VendorScheduleId,
        id: &OverrideId,
        span: &Span,
    ) -> Result<Override, Error> {
        self.scrubbed(
            async {
                let mut sent = models::wire_span(span);
                let responder = self.responder_json(&sent.member).await?;
                let rotations = self.remembered(schedule, id);
                let mut result = self
                    .put(schedule, id, responder.clone(), &sent, rotations.clone())
                    .await;
                for _ in 0..CUT_RESENDS {
                    match (&result, self.is_cut(&sent)) {
                        (Err(e), Some(now)) if refuses_the_end(e) => {
                            sent.end = now + TimeDelta::seconds(1);
                            result = self
                                .put(schedule, id, responder.clone(), &sent, rotations.clone())
                                .await;
                        }
                        _ => break,
                    }
                }
                Ok(held_span(&result?, &sent))
            }
            .await,
        )
    }

    /// `DELETE …/overrides/{alias}`: any success status is a confirmed delete (the spec says 204;
    /// the status is UNCONFIRMED, and the body, if any, is not read). An alias the vendor does not
    /// hold is [`Error::NotFound`] of the override; an answer lost on the way is
    /// [`Error::Transient`] (the sync reads to settle it).
    async fn delete_override(
        &self,
        schedule: &VendorScheduleId,
        id: &OverrideId,
    ) -> Result<Deletion, Error> {
        self.scrubbed(
            async {
                let request =
                    Self::override_request(Method::DELETE, schedule, Some(id.as_str()), None);
                self.client.send(&request).await?;
                if let Some(known) = lock(&self.memory.rotation_ids).get_mut(&schedule.0) {
                    known.remove(id);
                }
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
        let a = JsmProvider::builder()
            .with_site("acme.atlassian.net")
            .with_email("ops@example.com")
            .with_api_token("t")
            .with_retry(policy)
            .without_rate_limit()
            .build()
            .unwrap();
        let b = a.clone();
        a.client.pause(Some(Duration::from_secs(60)));
        let started = Instant::now();
        b.client.pace().await;
        let waited = started.elapsed();
        assert!(waited >= Duration::from_millis(70), "{waited:?}");
        assert!(waited < Duration::from_secs(5), "{waited:?}");
    }

    #[test]
    fn refusals_for_naming_no_rotation_are_recognised() {
        assert!(refuses_no_rotation(
            "HTTP 422: rotationIds must not be empty"
        ));
        assert!(!refuses_no_rotation(
            "HTTP 422: End date must be in the future"
        ));
        assert!(!refuses_no_rotation("HTTP 404: rotation not found"));
    }
}
