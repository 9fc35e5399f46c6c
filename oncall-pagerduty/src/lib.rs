//! # oncall-pagerduty
//!
//! The PagerDuty adapter of oncall-sync: [`PagerDutyProvider`] implements the core's
//! [`Provider`](oncall_core::Provider) over PagerDuty's REST API v2 (layer-based schedules), and,
//! with the `testkit` feature, `testkit::PagerDutySimulator` simulates that API on loopback for tests.
//!
//! ```no_run
//! use oncall_core::{Provider, VendorScheduleId};
//! use oncall_pagerduty::{PagerDutyProvider, Region};
//! # async fn demo() -> Result<(), oncall_core::Error> {
//! let provider = PagerDutyProvider::builder()
//!     .with_api_key(std::env::var("PAGERDUTY_API_KEY").unwrap_or_default())
//!     .with_region(Region::Us)
//!     .build()?;
//! for schedule in provider.list_schedules().await?.schedules {
//!     println!("{} {} ({} layers)", schedule.id, schedule.name, schedule.rotations.len());
//! }
//! # Ok(()) }
//! ```
//!
//! ## Capabilities
//!
//! [`Capabilities::PAGERDUTY`](oncall_core::Capabilities::PAGERDUTY):
//! - [x] list schedules (name, zone, members, layers as rotations), read one, import its final
//!   schedule as one role (primary)
//! - [x] list overrides of a window, create in batches of up to 50 with a result per item, delete
//!   (a running override is truncated at PagerDuty's now)
//! - [ ] update in place: PagerDuty cannot; a change is a delete and a create
//! - [ ] client-chosen ids: PagerDuty chooses override ids
//! - [ ] shift-based (v3) schedules: refused with an error that says so
//!
//! ## What it calls (R10)
//!
//! Only the Schedule and User endpoints: `GET /schedules`, `GET /schedules/{id}`,
//! `GET|POST /schedules/{id}/overrides`, `DELETE /schedules/{id}/overrides/{id}`, `GET /users`,
//! `GET /users/{id}`. Of users only `id`, `name` and `email` are read and kept: no `include[]`, no
//! contact methods or phone numbers. Every request carries `Authorization: Token token=…` and
//! `Accept: application/vnd.pagerduty+json;version=2`; writes send JSON.
//!
//! ## Behaviour
//!
//! - **Users.** The directory (id ↔ email, case-insensitive) is read lazily and reused for 60 s
//!   (`with_directory_ttl`) by every clone, so one sync run reads it once for all destinations on
//!   the connection. A create naming an unknown email reloads it once if it is more than 5 s old;
//!   items whose member is still unknown are not sent and answer
//!   [`Error::UnknownMember`](oncall_core::Error::UnknownMember).
//! - **Pagination** (`/users`, `/schedules`): `limit=100`, offset advanced by the items received,
//!   `more` followed; a list that would need `offset + limit > 10000` is an error, never truncated.
//! - **Layers.** Turn lengths of whole weeks or days become weekly or daily rotations handing off at
//!   local wall time (whether PagerDuty counts them in absolute seconds across DST is UNCONFIRMED:
//!   wall time is the safe reading); other whole hours hourly ones; anything else is refused.
//!   `rotation_virtual_start` is the rotation's start, the layer's `start` its effective start.
//!   Rotations keep the GET order, read as highest precedence first (GET lists layers in reverse of
//!   POST order: UNCONFIRMED), so rotation 0 is the layer that wins.
//! - **Import** reads `final_schedule` in chunks of at most 30 days with `overflow=true`; the
//!   copies of an entry that crosses a chunk border are joined, consecutive turns of one person
//!   are not (each turn is a shift).
//! - **Creates** use the multi form and read every documented answer shape. A create whose answer
//!   is lost (timeout, 5xx, dropped connection) is [`Error::Transient`](oncall_core::Error::Transient)
//!   for the whole call and never re-sent: the sync re-reads and adopts what landed.
//! - **Pacing** per key, shared by clones: 900 requests a minute by default (PagerDuty allows 960).
//!   A 429 waits `ratelimit-reset` seconds (bounded by the retry policy) and pauses every clone;
//!   without the header the wait backs off exponentially. Reads and deletes are retried after 5xx
//!   answers and timeouts, bounded in attempts and total wait; a 403 on a write is
//!   [`Error::PermissionDenied`](oncall_core::Error::PermissionDenied), never retried (R8). A 403
//!   on a read is not a read-only key: the schedule is missing or hidden from this key, so it is
//!   the schedule's [`Error::NotFound`](oncall_core::Error::NotFound) ("not found, or not visible
//!   to this key"), as on Opsgenie.
//! - **Keys** appear in no `Debug` output, error or message.
//!
//! ## UNCONFIRMED vendor behaviour, and the reading taken
//!
//! | Question | Reading |
//! |---|---|
//! | Status of the override listing (spec: 201) | any 2xx |
//! | Which overrides the listing returns | queried with `overflow=true`; kept are exactly those overlapping the window |
//! | Batch limit of multi-create | 50 per call |
//! | Order of per-item results | matched by echoed start, end and user, then by position |
//! | Status when every item fails | a 400 carrying per-item results is read like a 201 |
//! | Deleting a past override | refused (400); never asked by the core (R1) |
//! | GET order of layers | highest precedence first |
//! | Daily/weekly turns across DST | local wall time |
//! | v2 answer for a v3 schedule id | `type: schedule_v3`, or a 4xx: a 400/404 is followed by one `GET /schedules/{id}` that tells them apart |
//! | `Retry-After` on 429 | read if present, after `ratelimit-reset` |
#![deny(missing_docs)]
#![forbid(unsafe_code)]

mod builder;
mod client;
mod directory;
mod error;
mod layers;
mod models;
mod pagination;
mod probe;
mod provider;
#[cfg(feature = "testkit")]
pub mod testkit;
mod translate;

use oncall_core::connection::VendorUrls;
pub use oncall_core::connection::{ConnectionBuilder, ConnectionSettings, Region};

pub use builder::{PagerDutyBuilder, DEFAULT_RATE_PER_MINUTE};
pub use error::parse_error;
pub use provider::{PagerDutyProvider, LISTING_LOOKBACK};

/// PagerDuty's API base URLs.
pub const URLS: VendorUrls = VendorUrls {
    us: "https://api.pagerduty.com",
    eu: "https://api.eu.pagerduty.com",
};

/// A builder for a [`PagerDutyProvider`] (the same as [`PagerDutyProvider::builder`]).
///
/// ```
/// use oncall_pagerduty::{builder, Region};
/// let provider = builder().with_api_key("key").with_region(Region::Eu).build().unwrap();
/// assert_eq!(provider.base_url(), "https://api.eu.pagerduty.com");
/// ```
pub fn builder() -> PagerDutyBuilder {
    PagerDutyBuilder::new()
}
