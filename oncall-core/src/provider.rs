//! The [`Provider`] trait: the small surface every vendor adapter implements.

use async_trait::async_trait;
use chrono_tz::Tz;
use serde::{Deserialize, Serialize};

use crate::error::Error;
use crate::model::{Member, Window};
use crate::plan::{Override, OverrideId, Span};
use crate::rotation::{OnCallPeriod, Rotation};

/// A vendor's identifier of one of its schedules.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(transparent)]
pub struct VendorScheduleId(pub String);

impl std::fmt::Display for VendorScheduleId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

/// A vendor schedule as listed: name, zone, members and rotation configuration.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct VendorSchedule {
    /// The vendor's id.
    pub id: VendorScheduleId,
    /// Display name.
    pub name: String,
    /// The schedule's zone.
    #[serde(with = "crate::model::tz_serde")]
    pub zone: Tz,
    /// Everyone who appears in the schedule's rotations.
    pub members: Vec<Member>,
    /// Rotations (Opsgenie) or layers (PagerDuty), in role order: the first is the primary.
    pub rotations: Vec<Rotation>,
}

/// What listing an account's schedules found: every schedule that could be read, and each one that
/// could not, with why. One odd schedule (an unknown rotation type or zone, a schedule this key may
/// not read, one deleted between two reads) never hides the others.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct ScheduleListing {
    /// The schedules read, in the vendor's listing order.
    pub schedules: Vec<VendorSchedule>,
    /// The schedules listed but not readable, each with the reason.
    pub unreadable: Vec<UnreadableSchedule>,
}

impl ScheduleListing {
    /// A listing in which every schedule could be read.
    pub fn complete(schedules: Vec<VendorSchedule>) -> ScheduleListing {
        ScheduleListing {
            schedules,
            unreadable: Vec::new(),
        }
    }
}

/// A schedule the vendor listed that could not be read or translated.
#[derive(Debug, Clone, PartialEq)]
pub struct UnreadableSchedule {
    /// The vendor's id.
    pub id: VendorScheduleId,
    /// Its name, where the listing gave one.
    pub name: Option<String>,
    /// Why it could not be read: a typed error ([`Error::Unsupported`] for a configuration the
    /// adapter cannot translate, [`Error::NotFound`] for one gone or hidden from this key, ...).
    pub error: Error,
}

impl Serialize for UnreadableSchedule {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        use serde::ser::SerializeStruct;
        let mut st = s.serialize_struct("UnreadableSchedule", 4)?;
        st.serialize_field("id", &self.id)?;
        st.serialize_field("name", &self.name)?;
        st.serialize_field("kind", self.error.kind())?;
        st.serialize_field("reason", &self.error.to_string())?;
        st.end()
    }
}

/// Who the vendor says is on call for one role over a window.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RoleTimeline {
    /// Role name (usually the rotation's).
    pub name: String,
    /// Sorted, disjoint periods.
    pub periods: Vec<OnCallPeriod>,
}

/// An override to create. `id` is set only for providers with [`Capabilities::client_ids`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct NewOverride {
    /// When and who.
    pub span: Span,
    /// The client-chosen id (alias), if any.
    pub id: Option<OverrideId>,
}

/// What a delete did.
#[non_exhaustive]
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum Deletion {
    /// The override is gone.
    Deleted,
    /// The override was running and now ends at the vendor's "now".
    Truncated,
}

/// What a provider can do; the planner, the driver and the conformance suite adapt to it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Capabilities {
    /// Most overrides one create call takes (1 when the vendor creates one at a time).
    pub max_batch: usize,
    /// Whether a batch of creates is one request to the vendor (PagerDuty's multi form), or one
    /// request per item sent side by side (Opsgenie). Counts of write calls follow it.
    pub batch_is_one_request: bool,
    /// Whether an override can be changed in place (Opsgenie PUT).
    pub update_in_place: bool,
    /// Whether the client chooses override ids (Opsgenie aliases).
    pub client_ids: bool,
    /// Whether deleting a running override truncates it at now instead of removing it (PagerDuty).
    pub delete_truncates_running: bool,
}

impl Capabilities {
    /// PagerDuty's REST API v2: batched creates with a result per item (the batch limit is not
    /// documented; 50 stays modest), no update, server-chosen ids, delete truncates a running override.
    pub const PAGERDUTY: Capabilities = Capabilities {
        max_batch: 50,
        batch_is_one_request: true,
        update_in_place: false,
        client_ids: false,
        delete_truncates_running: true,
    };

    /// Opsgenie's API v2: one create per call, update in place (PUT), client-chosen aliases, delete
    /// removes (so a running override is cut by updating its end).
    pub const OPSGENIE: Capabilities = Capabilities {
        max_batch: 1,
        batch_is_one_request: false,
        update_in_place: true,
        client_ids: true,
        delete_truncates_running: false,
    };
}

/// One vendor account, as the sync needs it.
///
/// # Contract
///
/// - **Windows** are half-open `[start, end)`. Listing calls return every item that *overlaps* the
///   window, with its full, unclipped span.
/// - **Ordering**: lists come sorted by start; ties in any order.
/// - **People** are identified by email, lower-cased ([`crate::Email`]); adapters map vendor user ids.
/// - **Errors**: implementations map vendor failures to [`Error`] kinds: a write refused for rights is
///   [`Error::PermissionDenied`] (never retried), an unknown schedule or override
///   [`Error::NotFound`], a person the vendor does not know [`Error::UnknownMember`]. Adapters retry
///   rate limits and transient failures themselves, but never blindly re-send a create that is not
///   idempotent: after a timeout the sync re-reads and adopts (R6).
/// - **Creates** take at most [`Capabilities::max_batch`] items and answer one result per item, in
///   order; one bad item does not fail the others. An `Err` of the whole call means nothing is known to
///   have been created. Where the client chooses ids, an item whose id the vendor already holds is
///   [`Error::Conflict`]: the sync then asks for the next alias ([`crate::alias_attempt`]).
/// - **Deletes** of a running override truncate it at now where [`Capabilities::delete_truncates_running`],
///   and a delete of an override that is already gone is [`Error::NotFound`]. A delete answers `Ok`
///   only when the vendor confirmed it (a success status); when the outcome is unknown (an answer
///   lost, then refused on retry; a lock that never cleared) it is [`Error::Transient`], and the
///   sync reads the vendor to settle it.
/// - **Spans written** are answered as the vendor holds them (it may round), not as they were sent.
/// - Implementations hold no scheduling logic: they translate between wire formats and this model.
#[async_trait]
pub trait Provider: Send + Sync {
    /// A short name for messages, e.g. `pagerduty`.
    fn name(&self) -> &str;

    /// What this provider can do.
    fn capabilities(&self) -> Capabilities;

    /// The account this provider talks to, as far as its settings tell: the vendor and the API's
    /// base URL (e.g. `pagerduty https://api.pagerduty.com`). Two connections (two keys) to one
    /// account have the same; [`crate::sync()`] refuses two destinations on one vendor schedule id
    /// of one account, whichever connections they use. `None` (the default) where it is unknown:
    /// then only the connection id tells accounts apart.
    fn account(&self) -> Option<String> {
        None
    }

    /// Every schedule the key can see, with members and rotation configuration, and each listed
    /// schedule that could not be read, typed, with the reason. An `Err` means the listing itself
    /// failed (a bad key, an outage), not one schedule.
    ///
    /// Listing reads configuration only, never who is on call: assigned shifts are read only for
    /// schedules a host links ([`Provider::schedule`], [`Provider::on_call`]). Where the vendor
    /// settles the order of rotations only with a timeline (Opsgenie), the listing keeps the
    /// vendor's configuration order and [`Provider::schedule`] settles it.
    async fn list_schedules(&self) -> Result<ScheduleListing, Error>;

    /// One schedule's configuration.
    async fn schedule(&self, schedule: &VendorScheduleId) -> Result<VendorSchedule, Error>;

    /// Who is on call over `window`, one timeline per role (Opsgenie: per rotation in timeline
    /// order; PagerDuty: the final schedule as one role).
    async fn on_call(
        &self,
        schedule: &VendorScheduleId,
        window: Window,
    ) -> Result<Vec<RoleTimeline>, Error>;

    /// One override by its id, wherever it lies: `None` when the vendor no longer holds it.
    ///
    /// Where overrides can be changed in place ([`Capabilities::update_in_place`]), a person can
    /// move one of ours anywhere, out of every window the sync reads, and it keeps its id. Before
    /// the sync forgets a ledger entry it could not see, it asks here, so a moved override is never
    /// left behind unmanaged. Providers without in-place update may answer
    /// [`Error::Unsupported`]: there an id never moves, so a listing that covers the ledger's span
    /// settles whether the override is still there.
    async fn get_override(
        &self,
        schedule: &VendorScheduleId,
        id: &OverrideId,
    ) -> Result<Option<Override>, Error>;

    /// Overrides overlapping `window`.
    async fn list_overrides(
        &self,
        schedule: &VendorScheduleId,
        window: Window,
    ) -> Result<Vec<Override>, Error>;

    /// Creates a batch of overrides; one result per item, in order.
    async fn create_overrides(
        &self,
        schedule: &VendorScheduleId,
        overrides: &[NewOverride],
    ) -> Result<Vec<Result<Override, Error>>, Error>;

    /// Replaces an override's span and member in place. [`Error::Unsupported`] where the vendor can't.
    ///
    /// An update of an override that has started, to a span that ends at or before the vendor's
    /// now, ends it at the vendor's now: the sync cuts running overrides this way, and by the time the
    /// call lands, its idea of "now" is in the vendor's past. Implementations clamp such an end
    /// rather than refuse it.
    async fn update_override(
        &self,
        schedule: &VendorScheduleId,
        id: &OverrideId,
        span: &Span,
    ) -> Result<Override, Error>;

    /// Deletes an override (or truncates it, if running, where the vendor does that).
    async fn delete_override(
        &self,
        schedule: &VendorScheduleId,
        id: &OverrideId,
    ) -> Result<Deletion, Error>;
}
