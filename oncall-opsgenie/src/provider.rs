//! [`OpsgenieProvider`]: the core's [`Provider`] over Opsgenie's REST API v2. Translation only:
//! every call maps to the Schedule, Schedule Rotation or Schedule Override endpoints (R10).
//!
//! Where the reference leaves the vendor's behaviour UNCONFIRMED, the provider settles it with a
//! read instead of assuming (DESIGN §7): a create's and an update's span is read back as the
//! vendor holds it (until the account has shown it keeps whole seconds), a taken alias is read to
//! tell our own landed create from someone else's, a 403 on an override's path is read to tell a
//! missing override from a key without rights, and a listing that disagrees with this
//! connection's own recent writes is checked by a read of the alias (a listing may lag a write).

use std::collections::HashMap;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use async_trait::async_trait;
use chrono::{DateTime, SecondsFormat, TimeDelta, Utc};
use futures_util::future::join_all;
use oncall_core::{
    Capabilities, Deletion, Error, Member, NewOverride, Override, OverrideId, Provider, Resource,
    RoleTimeline, ScheduleListing, Span, UnreadableSchedule, VendorSchedule, VendorScheduleId,
    Window,
};
use reqwest::Method;
use serde_json::Value;

use crate::builder::OpsgenieBuilder;
use crate::client::{Client, Request};
use crate::error::{CallContext, Op, NOT_VISIBLE};
use crate::json::Node;
use crate::limits::{limits, RotationMemory, RotationRef};
use crate::models::{self, HeldOverride, WireSchedule};
use crate::timeline::{chunks, interval_days, role_timelines, rotation_order, Answer};
use crate::{Note, OnCallReport, ScheduleDetails};

/// How many times an update that ends a running override is re-sent with the vendor's clock, if
/// the vendor refuses an end in its past (UNCONFIRMED whether it does), or keeps it rounded into
/// its past.
const CUT_RESENDS: usize = 3;

/// How long a write of this connection is remembered for checking listings against it: a
/// listing that still disagrees after that is taken as it is (a person changed the override).
const JOURNAL_TTL: Duration = Duration::from_secs(300);

/// Locks a mutex that holds plain data: a panic elsewhere cannot leave it inconsistent.
fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

/// What the account has shown about how it keeps an override's instants (reference §4: whether
/// override instants are rounded is UNCONFIRMED), learned from what writes read back as.
#[derive(Debug, Default, Clone, Copy)]
struct Granularity {
    /// An instant with seconds was kept exactly: nothing needs reading back any more.
    keeps_seconds: bool,
    /// Instants were seen floored to this many seconds (60: the minute).
    floors_to: Option<i64>,
}

/// `t` floored to a multiple of `unit` seconds.
fn floor_to(t: DateTime<Utc>, unit: i64) -> DateTime<Utc> {
    DateTime::from_timestamp(t.timestamp().div_euclid(unit) * unit, 0).unwrap_or(t)
}

/// `t` rounded up to a multiple of `unit` seconds.
fn ceil_to(t: DateTime<Utc>, unit: i64) -> DateTime<Utc> {
    let floor = floor_to(t, unit);
    if floor == t {
        t
    } else {
        floor + TimeDelta::seconds(unit)
    }
}

/// Whether the vendor holds `held` for a write of `sent`: the same, or each instant floored to
/// the minute (the plausible rounding, reference §4).
fn holds_as_sent(sent: &Span, held: &Span) -> bool {
    held.member == sent.member
        && ((held.start, held.end) == (sent.start, sent.end)
            || (held.start, held.end) == (floor_to(sent.start, 60), floor_to(sent.end, 60)))
}

/// This connection's writes, per schedule and alias, as the vendor answered them (`None`: gone),
/// until a listing shows them: a listing that lags a write is corrected by a read by alias.
#[derive(Debug, Default)]
struct WriteJournal {
    entries: Mutex<HashMap<String, Noted>>,
}

/// One schedule's writes in a [`WriteJournal`]: what each alias holds (`None`: gone), and since
/// when.
type Noted = HashMap<OverrideId, (Option<Override>, Instant)>;

impl WriteJournal {
    fn note(&self, schedule: &VendorScheduleId, id: &OverrideId, held: Option<Override>) {
        lock(&self.entries)
            .entry(schedule.0.clone())
            .or_default()
            .insert(id.clone(), (held, Instant::now()));
    }

    fn take(&self, schedule: &VendorScheduleId) -> Noted {
        lock(&self.entries).remove(&schedule.0).unwrap_or_default()
    }
}

/// One schedule's override as a read by alias settled it.
pub(crate) enum Fetched {
    Held(HeldOverride),
    /// 404: the schedule holds no such alias.
    Missing,
    /// 403: not there, or not visible to this key (reference §3.1); a listing settles which.
    Hidden,
}

/// The Opsgenie adapter: a [`Provider`] over one account and key.
///
/// Cheap to clone: clones share the HTTP connection pool, the request pacer, the concurrency
/// limit and what the connection has learned of the account, so a host may hand clones to several
/// tasks and still stay under the account's rate limit. `Debug` shows the base URL and settings,
/// never the key.
#[derive(Debug, Clone)]
pub struct OpsgenieProvider {
    pub(crate) client: Arc<Client>,
    /// Rotations of the limited overrides last listed or fetched, shared by clones.
    rotations: Arc<RotationMemory>,
    /// This connection's recent writes, to check listings against.
    journal: Arc<WriteJournal>,
    /// How the account keeps override instants, as far as reads have shown.
    granularity: Arc<Mutex<Granularity>>,
}

/// Every schedule the key can see, with what the core's [`VendorSchedule`] has no field for, and
/// each one listed that could not be translated.
#[derive(Debug, Clone, PartialEq)]
pub struct ScheduleDetailsListing {
    /// The schedules read, in the vendor's listing order, their rotations in the vendor's array
    /// order (one schedule read, [`OpsgenieProvider::schedule_details`], settles the UI's order).
    pub schedules: Vec<ScheduleDetails>,
    /// The schedules listed but not translatable, each with the reason.
    pub unreadable: Vec<UnreadableSchedule>,
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
            journal: Arc::new(WriteJournal::default()),
            granularity: Arc::new(Mutex::new(Granularity::default())),
        }
    }

    /// The API's base URL.
    pub fn base_url(&self) -> &str {
        self.client.base_url()
    }

    /// A result as it leaves the provider: the key redacted from any error, whatever answer its
    /// message quotes (the client's errors, a malformed body's values).
    pub(crate) fn scrubbed<T>(&self, result: Result<T, Error>) -> Result<T, Error> {
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
    /// enabled, and participants imported as nobody (teams, escalations). One call,
    /// `GET /v2/schedules?expand=rotation`: configuration only, never a timeline (assigned shifts
    /// are read only for schedules a host links), so the rotations come in the vendor's array
    /// order. A schedule the adapter cannot translate (an unknown rotation type or zone, a
    /// malformed item) is reported in [`ScheduleDetailsListing::unreadable`], typed
    /// ([`Error::Unsupported`] or [`Error::InvalidResponse`]), and never hides the others.
    ///
    /// Disabled schedules are listed: hiding one would make it look deleted to a host that exports
    /// to it; a host that wants only live schedules filters on [`ScheduleDetails::enabled`].
    pub async fn list_schedule_details(&self) -> Result<ScheduleDetailsListing, Error> {
        self.scrubbed(
            async {
                let request = Request::get(vec!["schedules"], CallContext::default())
                    .query("expand", "rotation");
                let answer = self.client.send(&request).await?;
                let root = Node::root(&answer);
                let mut listing = ScheduleDetailsListing {
                    schedules: Vec::new(),
                    unreadable: Vec::new(),
                };
                for (i, item) in root.field("data")?.items()?.iter().enumerate() {
                    match models::schedule(item) {
                        Ok(wire) => {
                            let order = (0..wire.rotations.len()).collect();
                            listing.schedules.push(details(wire, order));
                        }
                        Err(error) => listing.unreadable.push(unreadable(item, i, error)),
                    }
                }
                Ok(listing)
            }
            .await,
        )
    }

    /// One schedule with its [`ScheduleDetails`], its rotations in the Opsgenie UI's order
    /// (timeline `order`; one timeline read, only when there is a choice).
    pub async fn schedule_details(
        &self,
        schedule: &VendorScheduleId,
    ) -> Result<ScheduleDetails, Error> {
        self.scrubbed(
            async {
                let wire = self.get_schedule(schedule).await?;
                let order: Vec<usize> = if wire.rotations.len() > 1 {
                    let timeline = self.timeline(schedule, None).await?.rotations;
                    rotation_order(&wire.rotations, &timeline)
                } else {
                    (0..wire.rotations.len()).collect()
                };
                Ok(details(wire, order))
            }
            .await,
        )
    }

    /// Who is on call over `window`, one timeline per role, with notes on what the core's model
    /// cannot carry: team or escalation on call (their slots are empty), rotations that run
    /// nowhere in the window, roles that change hands inside it.
    ///
    /// Roles are positions taken instant by instant: at every instant the rotations running then
    /// (by their start and end), in timeline `order`, are the primary, the secondary, and so on;
    /// so which rotation is the primary never depends on the window read.
    ///
    /// Reads the schedule (for the rotations' start and end) and its timeline in chunks of
    /// [`CHUNK_DAYS`](crate::CHUNK_DAYS) days. Periods are the vendor's `finalTimeline`: overrides
    /// as the vendor applied them to each rotation, the pieces of one person's period split at the
    /// request instant (`historical` then `default`, with milliseconds or without, or an override's
    /// two parts) joined again, clipped to the window.
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
                    let mut answer = self
                        .timeline(schedule, Some((date, interval_days(chunk))))
                        .await?;
                    answer.chunk = chunk;
                    answers.push(answer);
                }
                let mut notes = Vec::new();
                let timelines = role_timelines(&answers, &config.rotations, window, &mut notes);
                Ok(OnCallReport { timelines, notes })
            }
            .await,
        )
    }

    pub(crate) async fn get_schedule(
        &self,
        schedule: &VendorScheduleId,
    ) -> Result<WireSchedule, Error> {
        let context = CallContext {
            op: Op::GetSchedule,
            schedule: Some(&schedule.0),
            ..CallContext::default()
        };
        let request =
            Request::get(vec!["schedules", &schedule.0], context).query("identifierType", "id");
        let answer = self.client.send(&request).await?;
        models::schedule(&Node::root(&answer).field("data")?)
    }

    /// The schedule's timeline: `finalTimeline` rotations, and the vendor's clock when it
    /// answered. `span` is `(date, days)`; without it the vendor answers one day from its own now
    /// (enough for the rotations' `order`). The answer's `chunk` is the day asked for, or the
    /// caller's to set.
    pub(crate) async fn timeline(
        &self,
        schedule: &VendorScheduleId,
        span: Option<(String, i64)>,
    ) -> Result<Answer, Error> {
        self.timeline_expanded(schedule, span, None)
            .await
            .map(|(answer, _)| answer)
    }

    /// [`Self::timeline`], with `expand` (`base`, `override`, ...) asked for too: the answer's
    /// JSON comes back for the caller to read what it asked for.
    pub(crate) async fn timeline_expanded(
        &self,
        schedule: &VendorScheduleId,
        span: Option<(String, i64)>,
        expand: Option<&str>,
    ) -> Result<(Answer, Value), Error> {
        let context = CallContext {
            op: Op::Timeline,
            schedule: Some(&schedule.0),
            ..CallContext::default()
        };
        let mut request = Request::get(vec!["schedules", &schedule.0, "timeline"], context)
            .query("identifierType", "id");
        if let Some(expand) = expand {
            request = request.query("expand", expand);
        }
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
        let json = self.client.send(&request).await?;
        let rotations = models::timeline(&Node::root(&json), "finalTimeline")?;
        let vendor_now = self.client.vendor_now();
        let start = vendor_now.unwrap_or(DateTime::<Utc>::UNIX_EPOCH);
        let chunk = Window::new(start, start + TimeDelta::days(days.max(1)))?;
        let answer = Answer {
            chunk,
            rotations,
            vendor_now,
        };
        Ok((answer, json))
    }

    pub(crate) fn override_request<'a>(
        op: Op,
        schedule: &'a VendorScheduleId,
        alias: Option<&'a OverrideId>,
        member: Option<&'a oncall_core::Email>,
    ) -> Request<'a> {
        let method = match op {
            Op::CreateOverride => Method::POST,
            Op::UpdateOverride => Method::PUT,
            Op::DeleteOverride => Method::DELETE,
            _ => Method::GET,
        };
        let mut path = vec!["schedules", schedule.0.as_str(), "overrides"];
        if op != Op::CreateOverride {
            // The alias of a create goes in the body, not the path.
            path.extend(alias.map(OverrideId::as_str));
        }
        let context = CallContext {
            op,
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

    /// One POST; its answer is the alias only.
    async fn post(
        &self,
        schedule: &VendorScheduleId,
        new: &NewOverride,
        span: &Span,
        stopped: &Mutex<Option<Error>>,
    ) -> Result<OverrideId, Error> {
        let mut request = Self::override_request(
            Op::CreateOverride,
            schedule,
            new.id.as_ref(),
            Some(&span.member),
        );
        request.body = Some(models::create_body(span, new.id.as_ref()));
        let not_sent = || match &*lock(stopped) {
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
                lock(stopped).get_or_insert_with(|| e.clone());
            }
        }
        result
    }

    /// One create: the POST, and when the vendor says the alias is taken, a read of the alias:
    /// the override asked for, already there (our own create whose answer was lost, or one a
    /// listing has not shown yet), is this item's success; anything else under it is the item's
    /// [`Error::Conflict`]. Answers the alias created, with the span sent (read back later).
    async fn create_one(
        &self,
        schedule: &VendorScheduleId,
        new: &NewOverride,
        stopped: &Mutex<Option<Error>>,
    ) -> Result<Created, Error> {
        let span = models::wire_span(&new.span);
        match (self.post(schedule, new, &span, stopped).await, &new.id) {
            (Ok(id), _) => Ok(Created::Sent(id, span)),
            (Err(Error::Conflict { message }), Some(id)) => {
                match self.fetch_override(schedule, id).await {
                    Ok(Fetched::Held(held)) if holds_as_sent(&span, &held.held.span) => {
                        self.learn(&span, &held.held.span);
                        Ok(Created::Held(held.held))
                    }
                    _ => Err(Error::Conflict { message }),
                }
            }
            (Err(e), _) => Err(e),
        }
    }

    /// The spans the vendor holds for overrides just created: one listing (or, for one, a read by
    /// alias), then a read by alias for each the listing does not show (it may lag). Skipped once
    /// the account has shown it keeps instants as sent. An override the reads cannot find or
    /// settle is the item's [`Error::Transient`]: its create landed, and the sync re-reads it.
    async fn read_back(
        &self,
        schedule: &VendorScheduleId,
        results: Vec<Result<Created, Error>>,
    ) -> Vec<Result<Override, Error>> {
        let sent = |r: &Result<Created, Error>| matches!(r, Ok(Created::Sent(..)));
        let needed = results.iter().filter(|r| sent(r)).count();
        let exact = lock(&self.granularity).keeps_seconds;
        let listed: Option<Vec<Override>> = if exact || needed < 2 {
            None
        } else {
            self.fetch_overrides(schedule).await.ok()
        };
        let mut out = Vec::with_capacity(results.len());
        for result in results {
            let held = match result {
                Ok(Created::Held(held)) => Ok(held),
                Ok(Created::Sent(id, span)) if exact => Ok(Override { id, span }),
                Ok(Created::Sent(id, span)) => {
                    let shown = listed
                        .as_ref()
                        .and_then(|l| l.iter().find(|o| o.id == id))
                        .cloned();
                    let held = match shown {
                        Some(o) => Ok(Some(o)),
                        None => self.fetch_override_settled(schedule, &id).await,
                    };
                    match held {
                        Ok(Some(o)) => {
                            self.learn(&span, &o.span);
                            Ok(o)
                        }
                        Ok(None) | Err(_) => Err(Error::Transient {
                            message: format!(
                                "override {id} was created, but a read could not show how the \
                                 vendor holds it"
                            ),
                        }),
                    }
                }
                Err(e) => Err(e),
            };
            if let Ok(o) = &held {
                self.journal.note(schedule, &o.id, Some(o.clone()));
            }
            out.push(held);
        }
        out
    }

    /// Notes what a write of `sent` read back as.
    fn learn(&self, sent: &Span, held: &Span) {
        let mut g = lock(&self.granularity);
        let exact = (held.start, held.end) == (sent.start, sent.end);
        let has_seconds = |t: DateTime<Utc>| t.timestamp().rem_euclid(60) != 0;
        if exact && (has_seconds(sent.start) || has_seconds(sent.end)) {
            g.keeps_seconds = true;
        }
        if !exact && (held.start, held.end) == (floor_to(sent.start, 60), floor_to(sent.end, 60)) {
            g.floors_to = Some(60);
        }
    }

    async fn put(
        &self,
        schedule: &VendorScheduleId,
        id: &OverrideId,
        span: &Span,
    ) -> Result<(), Error> {
        let mut request =
            Self::override_request(Op::UpdateOverride, schedule, Some(id), Some(&span.member));
        // A full replace: an override limited to some rotations keeps them (see `limits`).
        let rotations = self.rotations.of(&schedule.0, id);
        request.body = Some(models::update_body(span, &rotations));
        match self.client.send(&request).await {
            Ok(_) => Ok(()),
            Err(e @ Error::PermissionDenied { .. }) => {
                Err(self.forbidden_write(schedule, id, e).await)
            }
            Err(e) => Err(e),
        }
    }

    /// A 403 on a write to one override's path: a read-only key (R8), or, where the vendor
    /// answers 403 for what is not there, an override that is gone (reference §3.1). A read of
    /// the alias, then of the listing, settles it; when they cannot, the refusal stands.
    async fn forbidden_write(
        &self,
        schedule: &VendorScheduleId,
        id: &OverrideId,
        refusal: Error,
    ) -> Error {
        match self.fetch_override_settled(schedule, id).await {
            Ok(None) => Error::NotFound {
                resource: Resource::Override(id.to_string()),
                message: format!("the override is not there (the vendor answered: {refusal})"),
            },
            _ => refusal,
        }
    }

    /// `GET …/overrides/{alias}`, remembering the rotations of a limited override.
    pub(crate) async fn fetch_override(
        &self,
        schedule: &VendorScheduleId,
        id: &OverrideId,
    ) -> Result<Fetched, Error> {
        let request = Self::override_request(Op::GetOverride, schedule, Some(id), None);
        let held = match self.client.send(&request).await {
            Ok(answer) => models::override_(&Node::root(&answer).field("data")?)?,
            Err(Error::NotFound {
                resource: Resource::Override(_),
                message,
            }) => {
                self.rotations.fetched(&schedule.0, id, None);
                return Ok(if message.starts_with(NOT_VISIBLE) {
                    Fetched::Hidden
                } else {
                    Fetched::Missing
                });
            }
            Err(e) => return Err(e),
        };
        let limited = self.limited(schedule, std::iter::once(&held)).await?;
        self.rotations
            .fetched(&schedule.0, id, limited.into_values().next());
        Ok(Fetched::Held(held))
    }

    /// [`Self::fetch_override`], a 403 settled by the listing: absent there, the override is
    /// gone; shown there, it is the listing's.
    async fn fetch_override_settled(
        &self,
        schedule: &VendorScheduleId,
        id: &OverrideId,
    ) -> Result<Option<Override>, Error> {
        match self.fetch_override(schedule, id).await? {
            Fetched::Held(held) => Ok(Some(held.held)),
            Fetched::Missing => Ok(None),
            Fetched::Hidden => {
                let listed = self.fetch_overrides(schedule).await?;
                Ok(listed.into_iter().find(|o| o.id == *id))
            }
        }
    }

    /// `GET …/overrides`: every override the schedule holds (Opsgenie has no window parameter),
    /// remembering the rotations of the limited ones.
    pub(crate) async fn fetch_overrides(
        &self,
        schedule: &VendorScheduleId,
    ) -> Result<Vec<Override>, Error> {
        let request = Self::override_request(Op::ListOverrides, schedule, None, None);
        let answer = self.client.send(&request).await?;
        let mut held = Vec::new();
        for node in Node::root(&answer).field("data")?.items()? {
            held.push(models::override_(&node)?);
        }
        // An override held with seconds shows the account keeps them.
        if held.iter().any(|h| {
            h.held.span.start.timestamp().rem_euclid(60) != 0
                || h.held.span.end.timestamp().rem_euclid(60) != 0
        }) {
            lock(&self.granularity).keeps_seconds = true;
        }
        let limited = self.limited(schedule, held.iter()).await?;
        self.rotations.listed(&schedule.0, limited);
        Ok(held.into_iter().map(|h| h.held).collect())
    }

    /// The listing, checked against this connection's recent writes: where it disagrees with
    /// one (the listing may lag a write: UNCONFIRMED), a read of the alias settles what the
    /// vendor holds. A write the listing shows is forgotten; one it does not show yet is kept
    /// for the next listing, for [`JOURNAL_TTL`]. An override that ended may be left out of a
    /// listing (UNCONFIRMED whether ended ones are listed), so its absence agrees.
    async fn listing(&self, schedule: &VendorScheduleId) -> Result<Vec<Override>, Error> {
        let mut listed = self.fetch_overrides(schedule).await?;
        let vendor_now = self.client.vendor_now();
        for (id, (expected, noted)) in self.journal.take(schedule) {
            let shown = listed.iter().find(|o| o.id == id);
            let ended_and_unlisted = shown.is_none()
                && expected
                    .as_ref()
                    .zip(vendor_now)
                    .is_some_and(|(o, now)| o.span.end <= now);
            if shown == expected.as_ref() || ended_and_unlisted || noted.elapsed() > JOURNAL_TTL {
                continue;
            }
            let held = self.fetch_override_settled(schedule, &id).await?;
            listed.retain(|o| o.id != id);
            listed.extend(held.clone());
            // Still ahead of the listing: checked again next time.
            lock(&self.journal.entries)
                .entry(schedule.0.clone())
                .or_default()
                .insert(id, (held, noted));
        }
        Ok(listed)
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

/// A create's result before it is read back.
enum Created {
    /// The vendor answered the alias; it holds the span sent, or a rounding of it.
    Sent(OverrideId, Span),
    /// Read already: the override asked for, found under its alias.
    Held(Override),
}

/// The details of a schedule read, its rotations in `order` (indices into its array).
fn details(wire: WireSchedule, order: Vec<usize>) -> ScheduleDetails {
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
    ScheduleDetails {
        schedule: VendorSchedule {
            id: VendorScheduleId(wire.id.clone()),
            name: wire.name,
            zone: wire.zone,
            members,
            rotations,
        },
        enabled: wire.enabled,
        notes,
    }
}

/// A listed schedule that could not be translated: its id and name as far as they read (`#<n>`,
/// its place in the listing, when it has no id), and why.
fn unreadable(item: &Node<'_>, index: usize, error: Error) -> UnreadableSchedule {
    let text = |key: &str| {
        item.opt(key)
            .ok()
            .flatten()
            .and_then(|n| n.str().ok().map(str::to_owned))
    };
    UnreadableSchedule {
        id: VendorScheduleId(text("id").unwrap_or_else(|| format!("#{index}"))),
        name: text("name"),
        error,
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

    /// One call, `GET /v2/schedules?expand=rotation` ([`OpsgenieProvider::list_schedule_details`]):
    /// configuration only, the rotations in the vendor's array order ([`Provider::schedule`]
    /// settles the UI's order), each schedule that cannot be translated in
    /// [`ScheduleListing::unreadable`].
    async fn list_schedules(&self) -> Result<ScheduleListing, Error> {
        self.scrubbed(
            async {
                let listing = self.list_schedule_details().await?;
                Ok(ScheduleListing {
                    schedules: listing.schedules.into_iter().map(|d| d.schedule).collect(),
                    unreadable: listing.unreadable,
                })
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

    /// `GET …/overrides/{alias}`: a 404 is `None`, whatever its wording; a 403 (Opsgenie answers
    /// 403/40301 for what is not there, or not visible) is settled by the listing: `None` when it
    /// does not show the alias, the schedule's [`Error::NotFound`] when the key cannot read the
    /// schedule at all.
    async fn get_override(
        &self,
        schedule: &VendorScheduleId,
        id: &OverrideId,
    ) -> Result<Option<Override>, Error> {
        self.scrubbed(async { self.fetch_override_settled(schedule, id).await }.await)
    }

    /// `GET …/overrides` (Opsgenie has no window parameter), checked against this connection's
    /// recent writes (a read by alias settles a listing that lags one), kept where they overlap
    /// `window`. Overrides that name no person are listed under their reserved emails
    /// ([`OverrideRecipient`](crate::OverrideRecipient)); the rotations of those limited to some
    /// are remembered for their updates.
    async fn list_overrides(
        &self,
        schedule: &VendorScheduleId,
        window: Window,
    ) -> Result<Vec<Override>, Error> {
        self.scrubbed(
            async {
                let mut overrides = self.listing(schedule).await?;
                overrides.retain(|o| o.span.overlaps(window.start(), window.end()));
                overrides.sort_by(|a, b| a.span.cmp(&b.span).then_with(|| a.id.cmp(&b.id)));
                Ok(overrides)
            }
            .await,
        )
    }

    /// One POST per item, sent concurrently within the connection's limit and pace; one result
    /// per item, in order, each with the span the vendor holds (read back until the account has
    /// shown it keeps instants as sent). A POST is retried only after a 429; one whose answer was
    /// lost is that item's [`Error::Transient`] (the sync re-reads and adopts). A taken alias is
    /// read: the override asked for, already there under it, is the item's success; anything
    /// else is its [`Error::Conflict`]. An unknown person is the item's
    /// [`Error::UnknownMember`]. After a refusal for rights or a malformed answer, items not yet
    /// sent are not sent. A batch larger than [`Capabilities::max_batch`] is refused whole
    /// ([`Error::Rejected`]), unsent.
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
                let results = join_all(creates).await;
                Ok(self.read_back(schedule, results).await)
            }
            .await,
        )
    }

    /// `PUT …/overrides/{alias}`: a full replace of person and span, answered as the vendor holds
    /// it (read back until the account has shown it keeps instants as sent, and always for a
    /// cut). An override limited to some rotations, as this provider or a clone last listed or
    /// fetched it, keeps them (they are sent back); any other is sent without `rotations` (every
    /// rotation).
    ///
    /// Ending a running override at or before the vendor's now: whether Opsgenie clamps such an
    /// end to its now, keeps it in its past, or refuses it is UNCONFIRMED. The safe reading: send
    /// it as asked; if the vendor accepted it, read the override back and answer what the vendor
    /// holds; if it refused the end (a 422 naming `endDate`), re-send (up to three times) with the
    /// end at the vendor's now as its `Date` header gives it, moved on by as much as its clock
    /// moved between its last two answers, then a second later, then two.
    /// On an account seen to floor instants to the minute, a cut's end is sent rounded up to the
    /// minute (never into the past, R1), and a cut that read back floored into the vendor's past
    /// is re-sent so.
    ///
    /// A 403 is settled by a read: an override that is not there is its [`Error::NotFound`], any
    /// other refusal the key's [`Error::PermissionDenied`] (R8).
    async fn update_override(
        &self,
        schedule: &VendorScheduleId,
        id: &OverrideId,
        span: &Span,
    ) -> Result<Override, Error> {
        self.scrubbed(
            async {
                let mut sent = models::wire_span(span);
                let floors = lock(&self.granularity).floors_to;
                if let (Some(unit), Some(_)) = (floors, self.is_cut(&sent)) {
                    sent.end = ceil_to(sent.end, unit);
                }
                let mut result = self.put(schedule, id, &sent).await;
                // At the vendor's now as its `Date` gives it, moved on as far as its clock moved
                // between its last two answers (it will have by the time the request lands), then
                // a second and two later (its clock has fractions the header does not show).
                for late in 0..CUT_RESENDS {
                    match (&result, self.is_cut(&sent)) {
                        (Err(e), Some(now)) if refuses_the_end(e) => {
                            let late = TimeDelta::seconds(i64::try_from(late).unwrap_or(0));
                            let lands = now + self.client.vendor_step() + late;
                            sent.end = ceil_to(lands, floors.unwrap_or(1));
                            result = self.put(schedule, id, &sent).await;
                        }
                        _ => break,
                    }
                }
                result?;
                let exact = lock(&self.granularity).keeps_seconds;
                let cut = self.is_cut(&sent).is_some();
                if exact && !cut {
                    self.journal.note(
                        schedule,
                        id,
                        Some(Override {
                            id: id.clone(),
                            span: sent.clone(),
                        }),
                    );
                    return Ok(Override {
                        id: id.clone(),
                        span: sent,
                    });
                }
                let mut held = self.fetch_override_settled(schedule, id).await?;
                for _ in 0..CUT_RESENDS {
                    // A cut the vendor rounded down into its past: its past changed (R1). Send
                    // the end rounded up instead.
                    let Some(h) = held
                        .as_ref()
                        .filter(|h| h.span.end < sent.end && sent.start < h.span.end && cut)
                    else {
                        break;
                    };
                    let unit = if h.span.end == floor_to(sent.end, 60) {
                        60
                    } else {
                        3600
                    };
                    lock(&self.granularity).floors_to = Some(unit);
                    sent.end = ceil_to(sent.end, unit);
                    self.put(schedule, id, &sent).await?;
                    held = self.fetch_override_settled(schedule, id).await?;
                }
                let held = held.ok_or_else(|| Error::Transient {
                    message: format!("override {id} was updated, but a read no longer finds it"),
                })?;
                self.learn(&sent, &held.span);
                self.journal.note(schedule, id, Some(held.clone()));
                Ok(held)
            }
            .await,
        )
    }

    /// `DELETE …/overrides/{alias}`: Opsgenie removes the override, running or not (any 2xx; a
    /// body is not needed). An alias the vendor does not hold is [`Error::NotFound`] of the
    /// override, whether it says so with a 404 or (settled by a read) a 403.
    async fn delete_override(
        &self,
        schedule: &VendorScheduleId,
        id: &OverrideId,
    ) -> Result<Deletion, Error> {
        self.scrubbed(
            async {
                let request = Self::override_request(Op::DeleteOverride, schedule, Some(id), None);
                match self.client.send(&request).await {
                    Ok(_) => {
                        self.journal.note(schedule, id, None);
                        Ok(Deletion::Deleted)
                    }
                    Err(e @ Error::PermissionDenied { .. }) => {
                        Err(self.forbidden_write(schedule, id, e).await)
                    }
                    Err(e) => Err(e),
                }
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

    #[test]
    fn the_adaptive_pace_is_the_default_and_one_for_every_clone() {
        let a = OpsgenieProvider::builder()
            .with_api_key("k")
            .with_max_concurrency(16)
            .build()
            .unwrap();
        let b = a.clone();
        assert_eq!(b.client.adaptive_pace(), Some((20.0, 16)), "brisk to start");
        a.client.pause(Some(Duration::ZERO));
        assert_eq!(
            b.client.adaptive_pace(),
            Some((10.0, 8)),
            "a 429 seen by one clone halves the rate and the window of all"
        );
        assert_eq!(b.client.gate_limit(), 8, "the gate follows the window");
        let fixed = OpsgenieProvider::builder()
            .with_api_key("k")
            .with_rate_per_minute(600)
            .build()
            .unwrap();
        assert_eq!(
            fixed.client.adaptive_pace(),
            None,
            "a fixed rate for a known plan"
        );
        fixed.client.pause(Some(Duration::ZERO));
        assert_eq!(fixed.client.gate_limit(), crate::DEFAULT_MAX_CONCURRENCY);
    }
}
