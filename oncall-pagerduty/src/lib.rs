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
//! `GET|POST /schedules/{id}/overrides`, `DELETE /schedules/{id}/overrides/{id}`, `GET /users`
//! (all of them, or by `query=<email>`), `GET /users/{id}`. Of users only `id`, `name` and
//! `email` are read and kept: no `include[]`, no contact methods or phone numbers. Every request
//! carries `Authorization: Token token=…`, `Accept: application/vnd.pagerduty+json;version=2`
//! and `Content-Type: application/json` (the spec marks it required on every operation, GETs
//! included; validating gateways refuse requests without it).
//!
//! ## Behaviour
//!
//! - **Users.** The directory (id ↔ email, case-insensitive) is read lazily and reused for 60 s
//!   (`with_directory_ttl`) by every clone, so one sync run reads it once for all destinations on
//!   the connection. A create naming an unknown email reloads it once if it is more than 5 s old;
//!   items whose member is still unknown are not sent and answer
//!   [`Error::UnknownMember`](oncall_core::Error::UnknownMember). PagerDuty lists no more than
//!   10,000 users: the directory of a larger account holds those, and an email it does not hold is
//!   found with `GET /users?query=<email>` (an exact, case-insensitive match), then remembered. A
//!   user the directory does not hold is read by id; a 404 (a deleted user, still named in old
//!   overrides) becomes a placeholder address no host knows; a 403 is an error, never a guess.
//! - **Pagination** (`/users`, `/schedules`): `limit=100`, offset advanced by the items received,
//!   `more` followed; the schedule list past `offset + limit > 10000` is an error, never truncated.
//! - **Schedules.** The listing reads each schedule; one that cannot be read (forbidden to this
//!   key, deleted since the listing, an unknown zone, a layer the model has no rotation for, a
//!   malformed answer) is an [`UnreadableSchedule`](oncall_core::UnreadableSchedule) with its
//!   typed error, and the others are listed. A shift-based (v3) schedule is refused with an error
//!   that says so.
//! - **Layers, as PagerDuty renders them.** Turn lengths of whole weeks or days are weekly or daily
//!   rotations handing off at local wall time, other whole hours hourly ones in absolute time;
//!   anything else is refused. `rotation_virtual_start` is the rotation's start, the layer's
//!   `start` its effective start. Whether whole-day turns run on the wall clock or in absolute
//!   seconds, and whether GET lists layers highest precedence first, are not documented: every
//!   schedule read renders a week around the first handoff the two readings of turns put apart
//!   (`since`/`until` on the same endpoint), compares the core's expansion of each reading with
//!   each layer's `rendered_schedule_entries`, and the stacking of those renderings in each order
//!   with `final_schedule`, and takes what PagerDuty shows (whole-day turns in absolute seconds
//!   become hourly rotations; layers listed lowest first are reversed), with a `tracing` warning.
//!   Rotation 0 is the layer that wins. Where neither reading matches, the documented one is kept
//!   and the warning names the layer.
//! - **Import** reads `final_schedule` in chunks of at most 30 days with `overflow=true`; the
//!   copies of an entry that crosses a chunk border are joined, consecutive turns of one person
//!   are not (each turn is a shift).
//! - **Listing overrides** asks from [`LISTING_LOOKBACK`] (60 days) before the window, with
//!   `overflow=true`, and keeps exactly those that overlap it: an override already running is seen
//!   whether PagerDuty lists overrides that intersect the window or only those that start in it
//!   (unless it started more than 60 days earlier and the account lists by start).
//! - **Creates** use the multi form and read every documented answer shape; a created override is
//!   answered with the span PagerDuty holds. A create whose answer is lost (timeout, 5xx, dropped
//!   connection) or cannot be read (a 2xx that is not what the spec says, an item created without
//!   an id) is [`Error::Transient`](oncall_core::Error::Transient), never re-sent: the sync reads
//!   back what landed, and never sends it again in the same run (PagerDuty has no client ids, so
//!   a create still in progress, or a listing that lags it, cannot be told from one that never
//!   landed). The next run adopts it if it landed. The bound: no duplicate as long as PagerDuty
//!   lists an accepted create by the time the destination's next run reads.
//! - **Deletes** are done when PagerDuty says so: 204 (removed), 200 (a running override
//!   truncated at PagerDuty's now); a 404 is gone. Anything else (the account lock's 400 after the
//!   retries, a 408, a 400 the spec does not list for this endpoint) leaves the outcome unknown:
//!   [`Error::Transient`](oncall_core::Error::Transient), which the sync settles by reading the
//!   override (gone, or ending by now, is done; else the failure holds the mark).
//! - **Errors** come from the status first: a 403 is
//!   [`Error::PermissionDenied`](oncall_core::Error::PermissionDenied) on a write (R8: a read-only
//!   key, never retried) and on a read (the spec's "not authorized to view the requested
//!   resource"), never a missing resource. Wording is read only to retry the account lock ("could
//!   not be locked") and to name a user PagerDuty does not know; a wrong guess fails safe.
//! - **Pacing** per key, shared by clones, adaptive: it starts at 900 requests a minute (PagerDuty
//!   allows 960), halves its rate and its window of requests in flight on a 429 and cuts both by a
//!   fifth on answers markedly slower than the fastest seen, recovering additively;
//!   [`PagerDutyBuilder::with_rate_per_minute`] fixes the rate instead. A 429 waits `ratelimit-reset` seconds, whole, within the retry policy's total budget (else the
//!   rate limit is reported), and pauses every clone; a 429 without the header (the docs say it
//!   may come without headers or body) gives no hint, so the policy's own backoff applies (0.5 s,
//!   1 s, 2 s by default, jittered). Reads and deletes are retried after 5xx answers and timeouts,
//!   bounded in attempts and total wait.
//! - **Keys** appear in no `Debug` output, error, message or trace: an error body is scrubbed of
//!   the key (as sent, percent-encoded, JSON-escaped, or cut short) before any text is cut to 300
//!   characters. [`PagerDutyBuilder::with_http_trace`] records every attempt with the key scrubbed
//!   from headers, URL and bodies (e-mails are the sink's to redact).
//! - **Probe.** `PagerDutyProvider` implements [`Probe`](oncall_core::probe::Probe): each
//!   UNCONFIRMED point below, as the account shows it, named as the simulator dialect's switch and
//!   setting (read-only unless given a scratch schedule to write to).
//!
//! ## UNCONFIRMED vendor behaviour, and the reading taken
//!
//! Each row is a switch of the simulator's `PagerDutyDialect` (feature `testkit`), with every
//! plausible reading; the property tests and the conformance suite run under each of them, and
//! `oncall probe` tells which one an account speaks.
//!
//! | Question (dialect switch) | Reading |
//! |---|---|
//! | Status of the override listing (`listing_status`; spec: 201) | any 2xx |
//! | Which overrides the listing returns (`listing_filter`) | asked from 60 days earlier with `overflow=true`; kept are exactly those overlapping the window |
//! | Delete answers (`delete_answer`: 204/200, the account lock's 400, 408) | done on 204/200, gone on 404, else unknown (retried, then settled by a read) |
//! | Daily/weekly turns across DST (`layer_turns`) | as each schedule's own rendering shows (wall clock where it cannot tell) |
//! | GET order of layers (`layer_order`) | as `final_schedule` shows (highest first where it cannot tell) |
//! | Reads lagging writes (`listing_lag`), writes landing after a lost answer (`lost_writes`) | a lost create is never re-sent in its run; the next run adopts it |
//! | 429 with or without headers, or a delayed answer (`rate_limit`) | `ratelimit-reset`, else the policy's backoff; `Retry-After` read if present |
//! | 401 and error bodies (`unauthorized_body`, `error_texts`) | read leniently: JSON or text, any wording |
//! | Rounding of override instants (`rounding`) | the span PagerDuty holds is the one kept |
//! | Shape of the create answer (`create_answer`) | every documented shape; an item the bare form leaves out was refused |
//! | Status when every item fails (`all_failed_status`) | a 400 carrying per-item results is read like a 201 |
//! | v2 answer for a v3 schedule id (`v3_answer`) | `type: schedule_v3`, or a 4xx: a 400/404 is followed by one `GET /schedules/{id}` that tells them apart |
//! | Batch limit of multi-create | 50 per call |
//! | Order of per-item results | matched by echoed start, end and user, then by position |
//! | Deleting a past override | a 400: unknown, settled by a read; never asked by the core (R1) |
#![deny(missing_docs)]
#![forbid(unsafe_code)]

mod builder;
mod client;
mod directory;
mod error;
mod gate;
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

pub use builder::{PagerDutyBuilder, DEFAULT_MAX_CONCURRENCY, DEFAULT_RATE_PER_MINUTE};
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
