//! [`PagerDutyProvider`]: the core's [`Provider`] over PagerDuty's REST API v2. Translation only: the
//! planning and the sync live in the core.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use chrono::TimeDelta;
use chrono_tz::Tz;
use oncall_core::{
    Capabilities, Deletion, Email, Error, Member, NewOverride, OnCallPeriod, Override, OverrideId,
    Provider, Resource, RoleIndex, RoleTimeline, ScheduleListing, Span, UnreadableSchedule,
    VendorSchedule, VendorScheduleId, Window,
};
use reqwest::{Method, StatusCode};
use serde_json::{json, Value};

use crate::builder::PagerDutyBuilder;
use crate::client::Client;
use crate::directory::{Directory, DirectoryCache, UNKNOWN_EMAIL_REFRESH};
use crate::error::{invalid, parse_error, with_resource, VendorError};
use crate::layers::{check_layers, check_window, entry_users, rendered, LayerCheck};
use crate::models::{
    self, decode, decode_create_results, decode_items, decode_optional_items, decode_page,
    decode_user, wire_time, CreateResult, Entry, Layer, NewUserRef, NewWireOverride, ScheduleHead,
    User, UserRef, WireOverride,
};
use crate::pagination::{collect_pages, collect_up_to_cap};
use crate::translate::{join_entries, layer_rotation, Turns};

/// Longest window one read of the final schedule covers; longer imports are read in chunks (the
/// vendor's maximum render span is UNCONFIRMED).
const ON_CALL_CHUNK: TimeDelta = TimeDelta::days(30);

/// The batch size PagerDuty takes is undocumented (UNCONFIRMED); [`Capabilities::PAGERDUTY`] keeps
/// batches to 50.
const MAX_BATCH: usize = Capabilities::PAGERDUTY.max_batch;

/// How far before a window the override listing asks from. Whether PagerDuty lists the overrides
/// that intersect `since`/`until` or only those that start in it is UNCONFIRMED: asking from this
/// much earlier, and keeping what overlaps the window, shows an override already running at the
/// window's start under either reading, unless it started longer ago than this.
pub const LISTING_LOOKBACK: TimeDelta = TimeDelta::days(60);

/// A PagerDuty account as the core's [`Provider`].
///
/// Cheap to clone: clones share the HTTP client, the pace of the key and the user directory. Build
/// one with [`PagerDutyProvider::builder`]. See the crate docs for what it reads and writes.
#[derive(Clone)]
pub struct PagerDutyProvider {
    pub(crate) inner: Arc<Inner>,
}

pub(crate) struct Inner {
    pub(crate) client: Client,
    pub(crate) directory: DirectoryCache,
    /// How often and how long `oncall probe` reads again while a write does not show.
    pub(crate) probe_poll: Duration,
    pub(crate) probe_patience: Duration,
}

impl std::fmt::Debug for PagerDutyProvider {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PagerDutyProvider")
            .field("base_url", &self.inner.client.base_url)
            .field("api_key", &self.inner.client.key)
            .field("retry", &self.inner.client.retry)
            .field("directory_ttl", &self.inner.directory.ttl)
            .finish_non_exhaustive()
    }
}

/// A path segment, percent-encoded: ids come from callers and must not reshape the path.
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

fn v3_error(schedule: &VendorScheduleId) -> Error {
    Error::Unsupported {
        message: format!(
            "schedule {schedule} is a shift-based (v3, \"Flexible\") schedule: PagerDuty's v2 \
             schedule and override endpoints, which this library uses, cannot read or change it. \
             Use a layer-based schedule instead"
        ),
    }
}

/// Whether a refusal speaks of a shift-based schedule.
fn mentions_v3(message: &str) -> bool {
    let m = message.to_ascii_lowercase();
    ["v3", "shift-based", "shift based", "flexible"]
        .iter()
        .any(|w| m.contains(w))
}

impl PagerDutyProvider {
    /// A builder: key, region or base URL, timeout, retries, user agent, pace.
    pub fn builder() -> PagerDutyBuilder {
        PagerDutyBuilder::new()
    }

    /// The API's base URL this provider talks to.
    pub fn base_url(&self) -> &str {
        &self.inner.client.base_url
    }

    /// How many times the user directory was read (`GET /users`, all pages) by this provider and
    /// its clones.
    pub fn directory_loads(&self) -> usize {
        self.inner.directory.loads()
    }

    pub(crate) fn client(&self) -> &Client {
        &self.inner.client
    }

    /// A result as it leaves the provider: the key redacted from any error, whatever answer the
    /// message quotes (the client's errors, a batch's refusal, a malformed body).
    pub(crate) fn scrubbed<T>(&self, result: Result<T, Error>) -> Result<T, Error> {
        result.map_err(|e| self.client().scrub(e))
    }

    /// [`Self::scrubbed`] for a batch's results, item by item.
    fn scrubbed_batch(
        &self,
        result: Result<Vec<Result<Override, Error>>, Error>,
    ) -> Result<Vec<Result<Override, Error>>, Error> {
        self.scrubbed(result)
            .map(|items| items.into_iter().map(|r| self.scrubbed(r)).collect())
    }

    // ---- users -------------------------------------------------------------------------------

    /// Every user, or the first 10,000 of an account with more (PagerDuty lists no further).
    async fn load_directory(&self) -> Result<Directory, Error> {
        let (users, complete) = collect_up_to_cap("users", |offset, limit| async move {
            let body = self
                .client()
                .get(
                    "/users",
                    &[("limit", limit.to_string()), ("offset", offset.to_string())],
                )
                .await?;
            decode_page::<User>(&body, "users")
        })
        .await?;
        Ok(Directory::from_users(users, complete))
    }

    /// The user of `email`, looked up with `GET /users?query=<email>` (which matches names and
    /// emails): the answer whose email is this one, case-insensitively, or `None`.
    pub(crate) async fn find_user(&self, email: &Email) -> Result<Option<String>, Error> {
        if let Some(id) = self.inner.directory.found(email) {
            return Ok(Some(id));
        }
        let users = collect_pages("users", |offset, limit| async move {
            let body = self
                .client()
                .get(
                    "/users",
                    &[
                        ("query", email.to_string()),
                        ("limit", limit.to_string()),
                        ("offset", offset.to_string()),
                    ],
                )
                .await?;
            decode_page::<User>(&body, "users")
        })
        .await?;
        let Some(user) = users
            .into_iter()
            .find(|u| Email::parse(&u.email).is_ok_and(|e| e == *email))
        else {
            return Ok(None);
        };
        let name = user.name.clone().unwrap_or_else(|| email.to_string());
        self.inner
            .directory
            .remember_found(user.id.clone(), Member::new(email.clone(), name));
        Ok(Some(user.id))
    }

    /// The directory, read again if older than `max_age`.
    pub(crate) async fn directory(
        &self,
        max_age: std::time::Duration,
    ) -> Result<Arc<Directory>, Error> {
        self.inner
            .directory
            .get(max_age, || self.load_directory())
            .await
    }

    /// Members for user ids: from the directory, else looked up one by one (`GET /users/{id}`: a
    /// user added since the directory was read, or past the 10,000 the directory lists). A user
    /// PagerDuty no longer has (a 404: deleted users stay named in old layers and overrides) gets a
    /// placeholder address, so that such an override is still seen, and is foreign to every host.
    /// A user the key may not read (403) is an error: guessing would make a person nobody.
    pub(crate) async fn members_of(
        &self,
        ids: &[&UserRef],
    ) -> Result<HashMap<String, Member>, Error> {
        let directory = self.directory(self.inner.directory.ttl).await?;
        let mut out = HashMap::new();
        for &user in ids {
            if out.contains_key(&user.id) {
                continue;
            }
            let member = match directory.by_id.get(&user.id) {
                Some(m) => m.clone(),
                None => self.lookup_user(user).await?,
            };
            out.insert(user.id.clone(), member);
        }
        Ok(out)
    }

    async fn lookup_user(&self, user: &UserRef) -> Result<Member, Error> {
        if let Some(m) = self.inner.directory.extra(&user.id) {
            return Ok(m);
        }
        let path = format!("/users/{}", segment(&user.id));
        let member = match self.client().get(&path, &[]).await {
            Ok(body) => {
                let u = decode_user(&body)?;
                let email = Email::parse(&u.email).map_err(|e| invalid("user.email", e))?;
                let name = u.name.unwrap_or_else(|| email.to_string());
                Member::new(email, name)
            }
            Err(Error::NotFound { .. }) => {
                let email = Email::parse(&format!(
                    "{}@deleted-user.pagerduty.invalid",
                    user.id.to_ascii_lowercase()
                ))
                .map_err(|e| invalid("user.id", e))?;
                Member::new(email, user.summary.clone().unwrap_or_default())
            }
            Err(e) => return Err(e),
        };
        self.inner
            .directory
            .remember(user.id.clone(), member.clone());
        Ok(member)
    }

    // ---- schedules ---------------------------------------------------------------------------

    /// `GET /schedules/{id}` with the given query: the answer's `schedule` object.
    pub(crate) async fn read_schedule(
        &self,
        schedule: &VendorScheduleId,
        query: &[(&str, String)],
    ) -> Result<Value, Error> {
        let path = format!("/schedules/{}", segment(&schedule.0));
        let body = match self.client().get(&path, query).await {
            Ok(body) => body,
            Err(e) => return Err(self.explain_schedule_error(schedule, e, false).await),
        };
        let root = models::json(&body, "schedule")?;
        let head: ScheduleHead = decode(models::at(&root, "schedule")?, "schedule")?;
        if head.kind.as_deref() == Some("schedule_v3") {
            return Err(v3_error(schedule));
        }
        Ok(root)
    }

    /// Names what a failed schedule call hit: a missing schedule, or a shift-based (v3) one. PagerDuty's
    /// v2 answer for a v3 id is UNCONFIRMED (a 4xx, or the schedule with `type: schedule_v3`): after
    /// a 400 or 404, one `GET /schedules/{id}` tells them apart.
    async fn explain_schedule_error(
        &self,
        schedule: &VendorScheduleId,
        error: Error,
        look: bool,
    ) -> Error {
        let missing = || Error::NotFound {
            resource: Resource::Schedule(schedule.0.clone()),
            message: format!(
                "not found, or not visible to this key: PagerDuty has no layer-based schedule \
                 {schedule} this key may see (a shift-based v3 schedule is not visible to the v2 \
                 API either)"
            ),
        };
        match &error {
            Error::NotFound { .. } if !look => missing(),
            Error::PermissionDenied { message } => Error::PermissionDenied {
                message: format!("schedule {schedule}: {message}"),
            },
            Error::Rejected { message } if !look && mentions_v3(message) => v3_error(schedule),
            Error::NotFound { .. } | Error::Rejected { .. } if look => {
                let path = format!("/schedules/{}", segment(&schedule.0));
                match self.client().get(&path, &[]).await {
                    Ok(body) => {
                        let v3 = serde_json::from_slice::<Value>(&body)
                            .ok()
                            .is_some_and(|v| {
                                v.pointer("/schedule/type").and_then(Value::as_str)
                                    == Some("schedule_v3")
                            });
                        if v3 {
                            v3_error(schedule)
                        } else {
                            error
                        }
                    }
                    Err(Error::NotFound { .. }) => missing(),
                    Err(_) => error,
                }
            }
            _ => error,
        }
    }

    /// A schedule's configuration from its `GET /schedules/{id}` answer, its layers read as
    /// PagerDuty renders them ([`crate::layers`]): a second read renders a week that tells the
    /// readings apart.
    async fn schedule_from(
        &self,
        schedule: &VendorScheduleId,
        root: &Value,
    ) -> Result<VendorSchedule, Error> {
        let head: ScheduleHead = decode(models::at(root, "schedule")?, "schedule")?;
        let zone: Tz = head.time_zone.parse().map_err(|_| {
            invalid(
                "schedule.time_zone",
                format!("{:?} is not an IANA zone", head.time_zone),
            )
        })?;
        let layers: Vec<Layer> = decode_optional_items(root, "schedule.schedule_layers")?;
        let mut refs: Vec<&UserRef> = head.users.iter().collect();
        for layer in &layers {
            refs.extend(layer.users.iter().map(|u| &u.user));
        }
        let members = self.members_of(&refs).await?;
        let emails: HashMap<String, Email> = members
            .iter()
            .map(|(id, m)| (id.clone(), m.email.clone()))
            .collect();
        let mut listed = Vec::new();
        for r in refs {
            let Some(m) = members.get(&r.id) else {
                continue;
            };
            if !listed.iter().any(|x: &Member| x.email == m.email) {
                listed.push(m.clone());
            }
        }
        // Unreadable layers fail the schedule before anything more is read.
        for (i, layer) in layers.iter().enumerate() {
            let path = format!("schedule.schedule_layers[{i}]");
            layer_rotation(layer, zone, &emails, &path, Turns::WallClock)?;
        }
        let check = match check_window(&layers, zone) {
            Some(window) => Some(self.check_layers(schedule, &layers, zone, window).await?),
            None => None,
        };
        let check = check.unwrap_or_default();
        let turns = check.turns.unwrap_or(Turns::WallClock);
        let highest_first = check.highest_first.unwrap_or(true);
        if check.turns == Some(Turns::AbsoluteSeconds) || !highest_first || !check.unlike.is_empty()
        {
            tracing::warn!(
                schedule = %schedule,
                turns = turns.name(),
                highest_first,
                unlike = ?check.unlike,
                detail = %check.detail,
                "PagerDuty renders this schedule's layers unlike the documented reading: read as rendered"
            );
        }
        // Rotation 0 is the layer that wins. Layers are named by id where they have no name.
        let mut rotations = Vec::with_capacity(layers.len());
        for (i, layer) in layers.iter().enumerate() {
            let path = format!("schedule.schedule_layers[{i}]");
            rotations.extend(layer_rotation(layer, zone, &emails, &path, turns)?);
        }
        if !highest_first {
            rotations.reverse();
        }
        Ok(VendorSchedule {
            id: VendorScheduleId(head.id.clone()),
            name: head.name.unwrap_or(head.id),
            zone,
            members: listed,
            rotations,
        })
    }

    /// Reads `window` of a schedule rendered and compares its layers with it. A window the
    /// vendor refuses to render (400) settles nothing.
    pub(crate) async fn check_layers(
        &self,
        schedule: &VendorScheduleId,
        layers: &[Layer],
        zone: Tz,
        window: Window,
    ) -> Result<LayerCheck, Error> {
        let query = [
            ("since", wire_time(window.start())),
            ("until", wire_time(window.end())),
            ("overflow", "true".to_owned()),
        ];
        let root = match self.read_schedule(schedule, &query).await {
            Ok(root) => root,
            Err(Error::Rejected { message }) => {
                return Ok(LayerCheck {
                    detail: format!("the rendering could not be read: {message}"),
                    ..LayerCheck::default()
                })
            }
            Err(e) => return Err(e),
        };
        let ids = entry_users(&root)?;
        let refs: Vec<UserRef> = ids
            .into_iter()
            .map(|id| UserRef { id, summary: None })
            .collect();
        let members = self.members_of(&refs.iter().collect::<Vec<_>>()).await?;
        let emails: HashMap<String, Email> =
            members.into_iter().map(|(id, m)| (id, m.email)).collect();
        // The layers of the rendering's own answer (ids match those of the configuration read).
        let shown: Vec<Layer> = decode_optional_items(&root, "schedule.schedule_layers")?;
        let layers = if shown.len() == layers.len() {
            shown
        } else {
            layers.to_vec()
        };
        Ok(check_layers(
            &layers,
            zone,
            &emails,
            &rendered(&root, &emails)?,
            window,
        ))
    }

    // ---- overrides ---------------------------------------------------------------------------

    fn override_from(
        o: WireOverride,
        members: &HashMap<String, Member>,
        path: &str,
    ) -> Result<Override, Error> {
        let id =
            o.id.ok_or_else(|| invalid(&format!("{path}.id"), "missing"))?;
        let member = members
            .get(&o.user.id)
            .ok_or_else(|| invalid(&format!("{path}.user.id"), "unknown user"))?;
        Ok(Override {
            id: OverrideId::new(id),
            span: Span::new(o.start, o.end, member.email.clone()),
        })
    }

    /// The users of a batch, by email; members the account does not know are `None`. Emails the
    /// directory does not hold are looked up by `query` where the directory is incomplete (past
    /// 10,000 users), else the directory is read again once (someone may just have been added).
    async fn user_ids(&self, overrides: &[NewOverride]) -> Result<Vec<Option<String>>, Error> {
        let ids = |d: &Directory| -> Vec<Option<String>> {
            overrides
                .iter()
                .map(|o| {
                    d.by_email
                        .get(&o.span.member)
                        .cloned()
                        .or_else(|| self.inner.directory.found(&o.span.member))
                })
                .collect()
        };
        let directory = self.directory(self.inner.directory.ttl).await?;
        let mut found = ids(&directory);
        if found.iter().all(Option::is_some) {
            return Ok(found);
        }
        if !directory.complete {
            for (slot, o) in found.iter_mut().zip(overrides) {
                if slot.is_none() {
                    *slot = self.find_user(&o.span.member).await?;
                }
            }
            return Ok(found);
        }
        // Someone may just have been added to the account: read again, once, if not just read.
        let fresh = self
            .directory(UNKNOWN_EMAIL_REFRESH.min(self.inner.directory.ttl))
            .await?;
        Ok(ids(&fresh))
    }

    /// Sends the known items in one multi-form POST; their results, in the order sent.
    async fn post_batch(
        &self,
        schedule: &VendorScheduleId,
        sent: &[(NewWireOverride, &NewOverride)],
    ) -> Result<Vec<Result<Override, Error>>, Error> {
        let body = json!({ "overrides": sent.iter().map(|(w, _)| w).collect::<Vec<_>>() });
        let path = format!("/schedules/{}/overrides", segment(&schedule.0));
        // A 400 may still carry per-item results (when every item failed: UNCONFIRMED).
        let answer = self
            .client()
            .send(Method::POST, &path, &[], Some(&body), |s| {
                s.is_success() || s == StatusCode::BAD_REQUEST
            })
            .await
            .map_err(|e| with_resource(e, Resource::Schedule(schedule.0.clone())))?;
        let results = if answer.status.is_success() {
            // PagerDuty took the batch, but what it says cannot be read: as good as an answer
            // lost. The sync reads back what landed (R6) instead of failing the run.
            let read = models::json(&answer.body, "overrides")
                .and_then(|root| decode_create_results(&root));
            match read {
                Ok(results) => results,
                Err(e) => {
                    return Err(Error::Transient {
                        message: format!(
                            "PagerDuty answered the create with HTTP {} but its answer cannot be \
                             read ({e}): what landed is read back",
                            answer.status.as_u16()
                        ),
                    })
                }
            }
        } else {
            match serde_json::from_slice::<Value>(&answer.body)
                .ok()
                .and_then(|root| decode_create_results(&root).ok())
            {
                Some(results) => results,
                None => {
                    let body = self
                        .client()
                        .key
                        .redact_in(&String::from_utf8_lossy(&answer.body));
                    let e = parse_error(answer.status, &answer.headers, body.as_bytes(), true);
                    return Err(self.explain_schedule_error(schedule, e, true).await);
                }
            }
        };
        Ok(match_results(sent, results))
    }
}

/// Pairs per-item results with the items sent. The vendor presumably answers in request order
/// (UNCONFIRMED): results are matched by their echoed start, end and user first; an item nothing
/// echoes (a failed item may echo little) takes the result at its own position, unless that result
/// echoes another item.
fn match_results(
    sent: &[(NewWireOverride, &NewOverride)],
    results: Vec<CreateResult>,
) -> Vec<Result<Override, Error>> {
    let echoes = |r: &CreateResult, (wire, new): &(NewWireOverride, &NewOverride)| {
        r.created.as_ref().is_some_and(|o| {
            o.start == new.span.start && o.end == new.span.end && o.user.id == wire.user.id
        })
    };
    // The wrapped bare form lists only what was created: an item it leaves out was not.
    let bare = results.iter().all(|r| r.status.is_none());
    let mut used = vec![false; results.len()];
    let mut pick: Vec<Option<usize>> = sent
        .iter()
        .map(|item| {
            let j = (0..results.len()).find(|&j| !used[j] && echoes(&results[j], item))?;
            used[j] = true;
            Some(j)
        })
        .collect();
    for (k, slot) in pick.iter_mut().enumerate() {
        let free =
            k < results.len() && !used[k] && !sent.iter().any(|item| echoes(&results[k], item));
        if slot.is_none() && free {
            used[k] = true;
            *slot = Some(k);
        }
    }
    sent.iter()
        .zip(pick)
        .enumerate()
        .map(|(k, ((_, new), j))| match j {
            Some(j) => item_result(&results[j], new, j),
            // Left out of an answer that lists only what was created: refused (if that reading
            // is wrong, the next run adopts what landed). Left out of a list of results: unknown,
            // for a read to settle.
            None if bare => Err(Error::Rejected {
                message: format!(
                    "PagerDuty's answer lists the overrides it created, and not override {k}"
                ),
            }),
            None => Err(Error::Transient {
                message: format!(
                    "PagerDuty's answer to a batch create has no result for override {k}: \
                     whether it was created is read back"
                ),
            }),
        })
        .collect()
}

/// One item's result: created (a 2xx or a bare override, with its id, and the span PagerDuty
/// holds), or the vendor's refusal. A created item whose override or id is missing landed
/// unreadably: as an answer lost, the sync reads it back.
fn item_result(r: &CreateResult, new: &NewOverride, j: usize) -> Result<Override, Error> {
    let ok = r.status.is_none_or(|s| (200..300).contains(&s));
    if ok {
        let unreadable = |what: &str| Error::Transient {
            message: format!(
                "PagerDuty created override {j} but its answer has no {what}: what landed is \
                 read back"
            ),
        };
        let created = r.created.as_ref().ok_or_else(|| unreadable("override"))?;
        let id = created.id.clone().ok_or_else(|| unreadable("id"))?;
        return Ok(Override {
            id: OverrideId::new(id),
            span: Span::new(created.start, created.end, new.span.member.clone()),
        });
    }
    let vendor = VendorError {
        message: String::new(),
        code: None,
        details: r.errors.clone(),
    };
    let status = r
        .status
        .and_then(|s| StatusCode::from_u16(s).ok())
        .unwrap_or(StatusCode::BAD_REQUEST);
    let said = vendor.describe(status);
    let about_user = vendor.mentions("user")
        && ["not found", "invalid", "unknown", "does not exist"]
            .iter()
            .any(|w| vendor.mentions(w));
    Err(match status.as_u16() {
        429 => Error::RateLimited {
            retry_after: None,
            message: said,
        },
        s if s >= 500 => Error::Transient { message: said },
        _ if about_user => Error::UnknownMember {
            email: new.span.member.clone(),
            message: said,
        },
        // "Override must end in the future", "... after its start", and any other refusal.
        _ => Error::Rejected { message: said },
    })
}

#[async_trait]
impl Provider for PagerDutyProvider {
    fn name(&self) -> &str {
        "pagerduty"
    }

    fn capabilities(&self) -> Capabilities {
        Capabilities::PAGERDUTY
    }

    /// `pagerduty <base URL>`: schedule ids are unique within the service a base URL names.
    fn account(&self) -> Option<String> {
        Some(format!("pagerduty {}", self.base_url()))
    }

    /// Lists the layer-based schedules (`GET /schedules`, all pages), then reads each one
    /// (`GET /schedules/{id}`): the listing renders restrictions in the requesting user's zone, not
    /// the schedule's, so only a schedule's own read gives its layers right. A schedule that cannot
    /// be read (forbidden to this key, deleted since the listing, an unknown zone, a layer the
    /// model has no rotation for, a malformed answer) is reported alone, with why; a failure of the
    /// account (the key, the rate limit, an outage) fails the listing.
    async fn list_schedules(&self) -> Result<ScheduleListing, Error> {
        self.scrubbed(
            async {
                let heads: Vec<ScheduleHead> =
                    collect_pages("schedules", |offset, limit| async move {
                        let body = self
                            .client()
                            .get(
                                "/schedules",
                                &[("limit", limit.to_string()), ("offset", offset.to_string())],
                            )
                            .await?;
                        decode_page(&body, "schedules")
                    })
                    .await?;
                let mut listing = ScheduleListing::default();
                for head in heads {
                    let id = VendorScheduleId(head.id);
                    match self.schedule(&id).await {
                        Ok(schedule) => listing.schedules.push(schedule),
                        Err(
                            error @ (Error::NotFound { .. }
                            | Error::PermissionDenied { .. }
                            | Error::Unsupported { .. }
                            | Error::InvalidResponse { .. }
                            | Error::Rejected { .. }),
                        ) => listing.unreadable.push(UnreadableSchedule {
                            id,
                            name: head.name,
                            error,
                        }),
                        Err(e) => return Err(e),
                    }
                }
                Ok(listing)
            }
            .await,
        )
    }

    async fn schedule(&self, schedule: &VendorScheduleId) -> Result<VendorSchedule, Error> {
        self.scrubbed(
            async {
                let root = self.read_schedule(schedule, &[]).await?;
                self.schedule_from(schedule, &root).await
            }
            .await,
        )
    }

    /// The final schedule (layers and overrides, as PagerDuty resolves them) as one role, read in
    /// chunks of at most 30 days with `overflow=true` and joined.
    async fn on_call(
        &self,
        schedule: &VendorScheduleId,
        window: Window,
    ) -> Result<Vec<RoleTimeline>, Error> {
        self.scrubbed(
            async {
                let mut entries = Vec::new();
                let mut from = window.start();
                while from < window.end() {
                    let to = from
                        .checked_add_signed(ON_CALL_CHUNK)
                        .unwrap_or(window.end())
                        .min(window.end());
                    let query = [
                        ("since", wire_time(from)),
                        ("until", wire_time(to)),
                        ("overflow", "true".to_owned()),
                    ];
                    let root = self.read_schedule(schedule, &query).await?;
                    let path = "schedule.final_schedule.rendered_schedule_entries";
                    models::at(&root, "schedule.final_schedule")?;
                    entries.extend(decode_optional_items::<Entry>(&root, path)?);
                    from = to;
                }
                let refs: Vec<&UserRef> = entries.iter().filter_map(|e| e.user.as_ref()).collect();
                let members = self.members_of(&refs).await?;
                let periods = entries
                    .into_iter()
                    .filter_map(|e| {
                        let member = members.get(&e.user?.id)?;
                        Some(OnCallPeriod {
                            start: e.start,
                            end: e.end,
                            member: member.email.clone(),
                        })
                    })
                    .collect();
                Ok(vec![RoleTimeline {
                    name: RoleIndex::PRIMARY.default_name(),
                    periods: join_entries(periods, window.start(), window.end()),
                }])
            }
            .await,
        )
    }

    /// PagerDuty has no single-override read. Overrides cannot be changed in place there, so an id
    /// never moves, and the core asks only providers that update in place.
    async fn get_override(
        &self,
        _schedule: &VendorScheduleId,
        _id: &OverrideId,
    ) -> Result<Option<Override>, Error> {
        self.scrubbed(
            async {
                Err(Error::Unsupported {
                    message:
                        "PagerDuty has no single-override read; list the overrides of a window"
                            .into(),
                })
            }
            .await,
        )
    }

    async fn list_overrides(
        &self,
        schedule: &VendorScheduleId,
        window: Window,
    ) -> Result<Vec<Override>, Error> {
        self.scrubbed(
            async {
                let path = format!("/schedules/{}/overrides", segment(&schedule.0));
                let since = window
                    .start()
                    .checked_sub_signed(LISTING_LOOKBACK)
                    .unwrap_or(window.start());
                let query = [
                    ("since", wire_time(since)),
                    ("until", wire_time(window.end())),
                    ("overflow", "true".to_owned()),
                ];
                let body = match self.client().get(&path, &query).await {
                    Ok(body) => body,
                    Err(e) => return Err(self.explain_schedule_error(schedule, e, true).await),
                };
                let root = models::json(&body, "overrides")?;
                let wire: Vec<WireOverride> = decode_items(&root, "overrides")?;
                let refs: Vec<&UserRef> = wire.iter().map(|o| &o.user).collect();
                let members = self.members_of(&refs).await?;
                let mut out = wire
                    .into_iter()
                    .enumerate()
                    .map(|(i, o)| Self::override_from(o, &members, &format!("overrides[{i}]")))
                    .collect::<Result<Vec<_>, _>>()?;
                // Asked from earlier (which overrides the filter returns is UNCONFIRMED): keep
                // exactly those that overlap the window.
                out.retain(|o| o.span.overlaps(window.start(), window.end()));
                out.sort_by(|a, b| a.span.cmp(&b.span).then_with(|| a.id.cmp(&b.id)));
                Ok(out)
            }
            .await,
        )
    }

    /// One multi-form POST for the batch. Items whose member the account does not know are not
    /// sent: their result is [`Error::UnknownMember`]. A lost answer (timeout, 5xx, dropped
    /// connection) is [`Error::Transient`] for the whole call, never re-sent.
    async fn create_overrides(
        &self,
        schedule: &VendorScheduleId,
        overrides: &[NewOverride],
    ) -> Result<Vec<Result<Override, Error>>, Error> {
        self.scrubbed_batch(
            async {
                if overrides.len() > MAX_BATCH {
                    return Err(Error::Rejected {
                        message: format!("at most {MAX_BATCH} overrides per create call"),
                    });
                }
                let ids = self.user_ids(overrides).await?;
                let sent: Vec<(NewWireOverride, &NewOverride)> = overrides
                    .iter()
                    .zip(&ids)
                    .filter_map(|(new, id)| {
                        let wire = NewWireOverride {
                            start: wire_time(new.span.start),
                            end: wire_time(new.span.end),
                            user: NewUserRef {
                                id: id.clone()?,
                                kind: "user_reference",
                            },
                        };
                        Some((wire, new))
                    })
                    .collect();
                let mut answered = if sent.is_empty() {
                    Vec::new()
                } else {
                    self.post_batch(schedule, &sent).await?
                }
                .into_iter();
                Ok(overrides
                    .iter()
                    .zip(ids)
                    .map(|(new, id)| match id {
                        Some(_) => answered.next().unwrap_or_else(|| {
                            Err(Error::InvalidResponse {
                                message: "PagerDuty answered fewer results than overrides sent"
                                    .into(),
                            })
                        }),
                        None => Err(Error::UnknownMember {
                            email: new.span.member.clone(),
                            message: "no PagerDuty user of this account has this email".into(),
                        }),
                    })
                    .collect())
            }
            .await,
        )
    }

    async fn update_override(
        &self,
        _schedule: &VendorScheduleId,
        _id: &OverrideId,
        _span: &Span,
    ) -> Result<Override, Error> {
        self.scrubbed(
            async {
                Err(Error::Unsupported {
                    message:
                        "PagerDuty overrides cannot be changed in place: delete and create instead"
                            .into(),
                })
            }
            .await,
        )
    }

    /// `DELETE`: 204 deleted, 200 truncated (it was running): done only when PagerDuty says so.
    /// A 404 is gone (the schedule's, when PagerDuty says so). Anything else leaves the outcome
    /// unknown and is [`Error::Transient`], for the sync to settle by reading: the account lock's
    /// 400 and a 408 are retried first, and a 400 the spec does not list for this endpoint (a
    /// past override, a lock worded otherwise) is not read as a truncation it may not be.
    async fn delete_override(
        &self,
        schedule: &VendorScheduleId,
        id: &OverrideId,
    ) -> Result<Deletion, Error> {
        self.scrubbed(
            async {
                let path = format!(
                    "/schedules/{}/overrides/{}",
                    segment(&schedule.0),
                    segment(id.as_str())
                );
                let answer = self
                    .client()
                    .send(Method::DELETE, &path, &[], None, crate::client::success)
                    .await
                    .map_err(|e| match e {
                        Error::NotFound {
                            resource: Resource::Other(what),
                            message,
                        } if what == "schedule" => Error::NotFound {
                            resource: Resource::Schedule(schedule.0.clone()),
                            message,
                        },
                        Error::Rejected { message }
                        | Error::UnknownMember { message, .. }
                        | Error::Conflict { message } => Error::Transient {
                            message: format!(
                                "PagerDuty refused the delete of override {id} ({message}): \
                                 whether it is still there is read back"
                            ),
                        },
                        e => with_resource(e, Resource::Override(id.to_string())),
                    })?;
                Ok(if answer.status == StatusCode::OK {
                    Deletion::Truncated
                } else {
                    Deletion::Deleted
                })
            }
            .await,
        )
    }
}

/// The instant of a wire timestamp, for tests that build requests by hand.
#[cfg(test)]
pub(crate) fn parse_time(s: &str) -> chrono::DateTime<chrono::Utc> {
    chrono::DateTime::parse_from_rfc3339(s)
        .map(|t| t.with_timezone(&chrono::Utc))
        .unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn new(start: &str, end: &str, who: &str) -> NewOverride {
        NewOverride {
            span: Span::new(
                parse_time(start),
                parse_time(end),
                Email::parse(who).unwrap(),
            ),
            id: None,
        }
    }

    fn wire(n: &NewOverride, user: &str) -> NewWireOverride {
        NewWireOverride {
            start: wire_time(n.span.start),
            end: wire_time(n.span.end),
            user: NewUserRef {
                id: user.into(),
                kind: "user_reference",
            },
        }
    }

    #[test]
    fn results_match_by_echo_then_position() {
        let a = new("2024-01-01T00:00:00Z", "2024-01-02T00:00:00Z", "a@x.io");
        let b = new("2024-01-02T00:00:00Z", "2024-01-03T00:00:00Z", "b@x.io");
        let sent = [(wire(&a, "PA"), &a), (wire(&b, "PB"), &b)];
        // Answered in reverse order, the second with offsets: matched by instants and user.
        let root: Value = serde_json::from_str(
            r#"[{"status":201,"override":{"id":"Q2","start":"2024-01-01T19:00:00-05:00","end":"2024-01-03T00:00:00Z","user":{"id":"PB"}}},
                {"status":400,"errors":["Override must end in the future"],"override":{"start":"2024-01-01T00:00:00Z","end":"2024-01-02T00:00:00Z","user":{"id":"PA"}}}]"#,
        )
        .unwrap();
        let results = match_results(&sent, decode_create_results(&root).unwrap());
        assert!(
            matches!(&results[0], Err(Error::Rejected { message }) if message.contains("end in the future"))
        );
        let created = results[1].as_ref().unwrap();
        assert_eq!(created.id.as_str(), "Q2");
        assert_eq!(created.span, b.span);
        // A short answer leaves the rest without a result: whether they landed is read back.
        let root: Value =
            serde_json::from_str(r#"[{"status":400,"errors":["Invalid user id"]}]"#).unwrap();
        let results = match_results(&sent, decode_create_results(&root).unwrap());
        assert!(
            matches!(&results[0], Err(Error::UnknownMember { email, .. }) if email.as_str() == "a@x.io")
        );
        assert!(matches!(&results[1], Err(Error::Transient { .. })));
        // A created item without an id landed unreadably: read back too.
        let root: Value = serde_json::from_str(
            r#"[{"status":201,"override":{"start":"2024-01-01T00:00:00Z","end":"2024-01-02T00:00:00Z","user":{"id":"PA"}}}]"#,
        )
        .unwrap();
        let results = match_results(&sent[..1], decode_create_results(&root).unwrap());
        assert!(
            matches!(&results[0], Err(Error::Transient { .. })),
            "{results:?}"
        );
    }

    #[test]
    fn segments_are_encoded() {
        assert_eq!(segment("PI7DH85"), "PI7DH85");
        assert_eq!(segment("../users?x"), "..%2Fusers%3Fx");
    }
}
