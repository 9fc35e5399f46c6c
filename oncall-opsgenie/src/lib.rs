//! # oncall-opsgenie
//!
//! The Opsgenie adapter of oncall-sync: [`OpsgenieProvider`] implements the core's
//! [`Provider`](oncall_core::Provider) over Opsgenie's REST API v2, and (feature `testkit`) a
//! stateful simulator of that API, [`testkit::OpsgenieSimulator`], lets tests run against it on
//! loopback.
//!
//! ```no_run
//! use oncall_core::{import_schedule, Provider, VendorScheduleId, Window};
//! use oncall_opsgenie::{OpsgenieProvider, Region};
//! # async fn demo(window: Window) -> Result<(), oncall_core::Error> {
//! let opsgenie = OpsgenieProvider::builder()
//!     .with_api_key(std::env::var("OPSGENIE_API_KEY").unwrap_or_default())
//!     .with_region(Region::Eu)
//!     .build()?;
//! let listing = opsgenie.list_schedules().await?;
//! for schedule in &listing.schedules {
//!     println!("{} ({}): {} rotations", schedule.name, schedule.zone, schedule.rotations.len());
//! }
//! for odd in &listing.unreadable {
//!     println!("{} could not be read: {}", odd.id, odd.error);
//! }
//! let rota = import_schedule(&opsgenie, &VendorScheduleId("<schedule id>".into()), window).await?;
//! # Ok(()) }
//! ```
//!
//! ## What it calls
//!
//! Only the Schedule, Schedule Rotation and Schedule Override endpoints (DESIGN R10), always by id:
//! `identifierType=id` on `/v2/schedules/{id}` and its `/timeline`, `scheduleIdentifierType=id` on
//! every `/overrides` call. `Authorization: GenieKey <key>`; the key never appears in `Debug`, an
//! error or a panic message.
//!
//! ## Capabilities
//!
//! - [x] client-chosen ids: the core's deterministic aliases; a taken alias is the item's `Conflict`
//! - [x] update in place (`PUT`, a full replace that keeps the alias)
//! - [x] concurrent creates: `max_batch` is the connection's concurrency limit; a batch's POSTs
//!   go out together, paced, one result per item in order
//! - [ ] delete truncates a running override (Opsgenie removes it; the sync cuts by updating the end)
//!
//! ## Choices where the core's model has no field
//!
//! - A schedule's `enabled` flag and participants that are teams or escalations (imported as
//!   nobody) are in [`ScheduleDetails`] ([`OpsgenieProvider::schedule_details`]); disabled schedules
//!   are still listed.
//! - Import notes (a team on call, a rotation left out because it ended before the window) are in
//!   [`OnCallReport`] ([`OpsgenieProvider::on_call_report`]).
//! - Overrides that name no person (`none`, a team, an escalation, a recipient of a kind this
//!   adapter does not know, a user named only by id) are listed and fetched under reserved,
//!   reversible emails in the `.invalid` domain ([`OverrideRecipient`]:
//!   `nobody@opsgenie.invalid`, `team.<id>@opsgenie.invalid`, `escalation.<id>@opsgenie.invalid`,
//!   `recipient.<kind>.<id>@opsgenie.invalid`), and written back as the recipient they stand for:
//!   a sync clears a person's `none` override from the fresh region like any foreign one, a cut
//!   keeps who it is, an override of a kind nobody foresaw is still a foreign override (never
//!   dropped from a listing), and an override of ours that a person set to nobody is still found.
//!   No create names one unless asked to.
//! - Roles are positions taken instant by instant ([`OpsgenieProvider::on_call_report`]): the
//!   rotations running at an instant, in timeline `order`, are the primary, the secondary, ...;
//!   which rotation is the primary never depends on the window read, and a change inside it is a
//!   [`Note::RolesChanged`].
//!
//! ## What reads settle (vendor truth, DESIGN §7)
//!
//! Where the reference marks Opsgenie's behaviour UNCONFIRMED, the adapter does not assume one
//! reading; it is right under each, and its simulator speaks each (feature `testkit`:
//! `testkit::OpsgenieDialect`, one switch per point, one setting per reading):
//!
//! - Error kinds come from the status, the endpoint and the field first, wording last: a 404 on an
//!   override's path is the override's, never the schedule's; a conflict only on a create whose
//!   error names the alias (409, or a 422 or 400 naming the field or the word); an unknown user
//!   (a field error on `user`, a message naming the person, a 404) is `UnknownMember`, whatever
//!   its address says. A 403 on an override's path is settled by a read of the alias and the
//!   listing: gone (Opsgenie answers 403/40301 for what is not there) or the key's rights.
//! - Spans written are read back as the vendor holds them (rounding is UNCONFIRMED) until the
//!   account has shown it keeps seconds; a cut a rounding vendor would put in its past is sent
//!   rounded up. A taken alias is read: the override asked for, already there, is the create's
//!   success (a create whose answer was lost, a listing that lags).
//! - A listing is checked against this connection's own recent writes: where it disagrees (a
//!   listing may lag a write), a read of the alias settles it.
//! - Listing schedules is one call (`GET /v2/schedules?expand=rotation`): configuration only,
//!   never a timeline; a schedule that cannot be translated is reported on its own
//!   ([`oncall_core::ScheduleListing::unreadable`]), typed, with the reason.
//! - [`oncall_core::Probe`] is implemented: `oncall probe` reports which reading an account
//!   speaks on each point, named as the dialect's switches and settings, reading only unless
//!   given a scratch schedule. [`OpsgenieBuilder::with_http_trace`] records every attempt with
//!   the key scrubbed, for bug reports.
//!
//! ## Overrides limited to some rotations
//!
//! A person may limit an override to some rotations (`rotations` on the wire). The core's model has
//! no such field, so:
//!
//! - Every update is a full replace, and whether Opsgenie resets such an override to every rotation
//!   on a `PUT` without `rotations` is UNCONFIRMED. The adapter therefore remembers, per schedule
//!   and alias, the rotations of the limited overrides it (or a clone) last listed or fetched, and
//!   sends them back with every update: a running one cut by a sync keeps its rotations, and its
//!   past stays where it was (R1). A listing of a schedule replaces what is remembered of it. An
//!   override named with `[]`, or with every rotation of the schedule, counts as every rotation;
//!   telling the two apart costs one read of the schedule, only when a listing or a fetch names
//!   rotations.
//! - **Known limitation** (needs a change to the core's model): the sync sees a limited override as
//!   covering every rotation. A foreign limited override in the fresh region is removed or cut like
//!   any other, and one that equals a desired span (same start, end and person) is adopted into
//!   the ledger as ours (R2), although it covers only its rotations; the role's other rotations then
//!   show their own turns there. Creates never name rotations, so the sync's own overrides always
//!   apply to every rotation.
//!
//! ## Retries and pacing
//!
//! Reads, updates and deletes are retried on 429, 5xx and timeouts with the core's backoff and
//! jitter, bounded in attempts and total wait. Creates are retried only after a 429; a create whose
//! answer was lost is never re-sent (the sync re-reads and adopts it). A 429 waits what the vendor
//! says, `X-RateLimit-Period-In-Sec` (60 s when the header is missing), whole, within the
//! policy's total budget, and is reported as a rate limit when it does not fit.
//!
//! **Pacing when the limits are unknown.** Opsgenie's numeric limits are undocumented and depend
//! on the plan (per second and per minute, answered by a 429 or by delaying the request), so by
//! default the connection finds its pace as it goes ([`AdaptiveRate::BRISK`](oncall_core::pacing::AdaptiveRate::BRISK)):
//! it starts at 20 requests a second with [`DEFAULT_MAX_CONCURRENCY`] in flight, speeds up with
//! each clean answer, halves its rate and its window of requests in flight on a 429 (and waits
//! the vendor's period), cuts both by a fifth when answers come back markedly slower than the
//! fastest seen (a vendor delaying requests), and grows back additively. Every clone of a
//! provider shares that one pace. A batch of creates is one POST per override, sent side by side
//! within the window, so a year of daily shifts goes out in a few round trips of a few dozen
//! requests each (the root crate's `pacing` bench measures it against one request at a time).
//! Users who know their plan's limit can fix the rate instead with
//! [`OpsgenieBuilder::with_rate_per_minute`] (the account's own figures are at
//! `GET /v2/request-limits/`, outside the endpoints this adapter calls, so look them up by hand),
//! or drop our own pace with [`OpsgenieBuilder::without_rate_limit`] and let the vendor's 429s
//! pace the connection.
#![deny(missing_docs)]
#![forbid(unsafe_code)]

mod builder;
mod client;
mod error;
mod gate;
mod json;
mod limits;
mod models;
mod probe;
mod provider;
mod recipient;
#[cfg(feature = "testkit")]
pub mod testkit;
mod timeline;

use chrono::{DateTime, Utc};
pub use oncall_core::connection::Region;
use oncall_core::connection::VendorUrls;
use oncall_core::{RoleTimeline, VendorSchedule};

pub use builder::{
    OpsgenieBuilder, DEFAULT_MAX_CONCURRENCY, DEFAULT_RATE_PER_MINUTE, DEFAULT_TIMEOUT,
    MAX_CONCURRENCY,
};
pub use provider::{OpsgenieProvider, ScheduleDetailsListing};
pub use recipient::{OverrideRecipient, RESERVED_DOMAIN};
pub use timeline::CHUNK_DAYS;

/// Opsgenie's API base URLs.
pub const URLS: VendorUrls = VendorUrls {
    us: "https://api.opsgenie.com",
    eu: "https://api.eu.opsgenie.com",
};

/// A schedule with what the core's [`VendorSchedule`] has no field for.
#[derive(Debug, Clone, PartialEq)]
pub struct ScheduleDetails {
    /// The schedule as the core sees it; rotations in the Opsgenie UI's order (timeline `order`).
    pub schedule: VendorSchedule,
    /// Whether the schedule is enabled in Opsgenie (a disabled one routes no alert).
    pub enabled: bool,
    /// Participants imported as nobody.
    pub notes: Vec<Note>,
}

/// Who is on call per role, and what the core's model could not carry.
#[derive(Debug, Clone, PartialEq)]
pub struct OnCallReport {
    /// One timeline per rotation that covers the window, in timeline order.
    pub timelines: Vec<RoleTimeline>,
    /// What a person should know about the import.
    pub notes: Vec<Note>,
}

/// Something a host should show a person: what an import left out and why.
#[non_exhaustive]
#[derive(Debug, Clone, PartialEq)]
pub enum Note {
    /// A rotation participant that is a team or an escalation: its turns are imported as nobody.
    NonUserParticipant {
        /// The rotation's name.
        rotation: String,
        /// `team`, `escalation`, ...
        kind: String,
        /// The team's or escalation's name.
        name: String,
    },
    /// A team or an escalation on call in the timeline: the role is empty there.
    NonUserOnCall {
        /// The rotation's name.
        rotation: String,
        /// `team`, `escalation`, ...
        kind: String,
        /// Its name.
        name: String,
    },
    /// A rotation that ended before the window or starts after it: no role.
    RotationOutsideWindow {
        /// The rotation's name.
        rotation: String,
        /// When it starts.
        start: DateTime<Utc>,
        /// When it ends, if it does.
        end: Option<DateTime<Utc>>,
    },
    /// A rotation starts or ends inside the window: from `at` the roles are these rotations, in
    /// order (the first the primary).
    RolesChanged {
        /// When.
        at: DateTime<Utc>,
        /// The rotations running from then, in timeline order.
        rotations: Vec<String>,
    },
}

impl std::fmt::Display for Note {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Note::NonUserParticipant {
                rotation,
                kind,
                name,
            } => write!(
                f,
                "rotation {rotation:?}: {kind} {name:?} is a participant; its turns are imported as nobody"
            ),
            Note::NonUserOnCall {
                rotation,
                kind,
                name,
            } => write!(
                f,
                "rotation {rotation:?}: {kind} {name:?} is on call; the role is empty there"
            ),
            Note::RotationOutsideWindow {
                rotation,
                start,
                end,
            } => {
                let end = end.map_or_else(|| "no end".to_owned(), |e| e.to_rfc3339());
                write!(
                    f,
                    "rotation {rotation:?} ({start} to {end}) does not cover the window: not imported"
                )
            }
            Note::RolesChanged { at, rotations } => {
                write!(f, "from {at} the roles are, in order: {}", rotations.join(", "))
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn official_urls() {
        let url = |r| {
            OpsgenieProvider::builder()
                .with_api_key("k")
                .with_region(r)
                .build()
                .unwrap()
                .base_url()
                .to_owned()
        };
        assert_eq!(url(Region::Us), "https://api.opsgenie.com");
        assert_eq!(url(Region::Eu), "https://api.eu.opsgenie.com");
    }

    #[test]
    fn the_key_is_required_and_never_shown() {
        let key = "s3cret-GenieKey-123";
        let builder = OpsgenieProvider::builder().with_api_key(key);
        assert!(!format!("{builder:?}").contains(key));
        let provider = builder.build().unwrap();
        assert!(!format!("{provider:?}").contains(key));
        assert!(matches!(
            OpsgenieProvider::builder().build(),
            Err(oncall_core::Error::InvalidInput(_))
        ));
        let bad_url = OpsgenieProvider::builder()
            .with_api_key(key)
            .with_base_url("ftp://x")
            .build()
            .unwrap_err();
        assert!(!bad_url.to_string().contains(key));
    }

    #[test]
    fn any_concurrency_builds() {
        use oncall_core::Provider;
        for asked in [0, 1, usize::MAX / 2, usize::MAX] {
            let p = OpsgenieProvider::builder()
                .with_api_key("k")
                .with_max_concurrency(asked)
                .build()
                .unwrap();
            let got = p.capabilities().max_batch;
            assert!(got >= 1 && got <= asked.max(1), "{asked}: {got}");
        }
    }

    #[test]
    fn clones_share_one_connection() {
        use oncall_core::Provider;
        let a = OpsgenieProvider::builder()
            .with_api_key("k")
            .with_max_concurrency(7)
            .build()
            .unwrap();
        let b = a.clone();
        assert_eq!(b.capabilities().max_batch, 7);
        assert!(b.capabilities().client_ids && b.capabilities().update_in_place);
        assert!(!b.capabilities().delete_truncates_running);
    }
}
