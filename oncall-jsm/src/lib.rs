//! # oncall-jsm
//!
//! The Jira Service Management Operations adapter of oncall-sync, the successor of Opsgenie (whose
//! REST API ends on 2027-04-05): [`JsmProvider`] implements the core's
//! [`Provider`](oncall_core::Provider) over JSM Operations' REST API, and (feature `testkit`) a
//! stateful simulator of that API, [`testkit::JsmSimulator`], with a dialect switch for every
//! behaviour the documentation leaves open, lets tests run against it on loopback.
//!
//! ```no_run
//! use oncall_core::{import_schedule, Provider, VendorScheduleId, Window};
//! use oncall_jsm::JsmProvider;
//! # async fn demo(window: Window) -> Result<(), oncall_core::Error> {
//! let jsm = JsmProvider::builder()
//!     .with_site("acme.atlassian.net")
//!     .with_email("ops-bot@acme.example")
//!     .with_api_token(std::env::var("JSM_API_TOKEN").unwrap_or_default())
//!     .build()?;
//! for schedule in jsm.list_schedules().await?.schedules {
//!     println!("{} ({}): {} rotations", schedule.name, schedule.zone, schedule.rotations.len());
//! }
//! let rota = import_schedule(&jsm, &VendorScheduleId("<schedule id>".into()), window).await?;
//! # Ok(()) }
//! ```
//!
//! ## What it calls
//!
//! On the Operations API (`https://api.atlassian.com/jsm/ops/api/<cloudId>/v1`): schedules,
//! rotations, the timeline and overrides, by id. On the site: `/_edge/tenant_info` once (the
//! cloudId, unless given), and the Jira user endpoints for one person at a time
//! (`/rest/api/3/user/search?query=<e-mail>&maxResults=10`, the hit with exactly that e-mail
//! taken, and `/rest/api/3/user?accountId=<id>`),
//! for the people the sync names and the accountIds the vendor answers with: never a listing of all
//! users. Of a user only the accountId, the e-mail and the display name are read (R10).
//!
//! Auth is HTTP Basic with the account's e-mail and API token. The token, and the header that
//! encodes it, never appear in `Debug`, an error, a trace or a panic message.
//!
//! ## Capabilities
//!
//! - [ ] client-chosen ids: the server chooses each override's alias and no field carries ours
//!   (JSDCLOUD-18644). A create whose answer was lost is found again by its exact span and person:
//!   the core's adoption by exact span is the crash-safety mechanism (R6).
//! - [x] update in place (`PUT`), answered as the vendor holds the override
//! - [x] concurrent creates: `max_batch` is the connection's concurrency limit
//! - [ ] delete truncates a running override (JSM removes it; the sync cuts by updating the end)
//!
//! ## People
//!
//! The vendor names people by Atlassian accountId; the core by e-mail. The adapter looks each
//! person up once per connection ([`JsmBuilder::with_account_id`] hands over the ones a host
//! knows). A person the site does not know, or whose e-mail it hides, cannot be written to:
//! [`oncall_core::Error::UnknownMember`], the span reported and tried again on every sync (R5's
//! exception). Responders that are not a person with a known e-mail travel as reserved e-mails
//! ([`Responder`]) and stay foreign overrides. An account the site does not let look people up
//! (a 403 from the user endpoints: it lacks the "Browse users and groups" permission) is
//! [`oncall_core::Error::PeopleLookupDenied`]: neither a read-only account (R8) nor an unknown
//! person.
//!
//! ## What the documentation leaves open
//!
//! Every operation is marked experimental, and several behaviours are UNCONFIRMED (reference
//! `jsm-ops-api.md`). The adapter works under every plausible reading, each a switch of
//! [`testkit::JsmDialect`] that the conformance suite and the property tests run under:
//!
//! - `update_body`: what a `PUT` takes. The adapter always sends the full body, and the rotations
//!   the vendor last named for that override, so the reading does not matter.
//! - `delete_status`: any success status is a confirmed delete; the body is not read.
//! - `past_overrides`: listings are filtered by window, so ended overrides listed or not are alike.
//! - `rotation_ids_omitted`: creates name no rotation (every rotation, per the spec); if the vendor
//!   refuses that, the adapter names every rotation of the schedule from then on.
//! - `page_size`: pages of 50 are asked for, whatever size comes back is followed by its next link,
//!   and a refused size is dropped for the vendor's default.
//! - `forbidden_body`: a 403 is decided by its status and the request, never by its body.
//! - `rate_limit`: 429s wait `Retry-After`; the pacer adapts to 429s and to delayed answers.
//! - `past_end`: a cut ending in the vendor's past is clamped to its now, or refused; a refused
//!   one is sent again with its end at the vendor's now (its `Date`), up to [`CUT_RESENDS`] times.
//!
//! [`JsmProvider`] also implements the core's [`Probe`](oncall_core::Probe): `oncall probe` reports
//! which reading an account shows on each point, named as the switch and its setting.
#![deny(missing_docs)]
#![forbid(unsafe_code)]

mod builder;
mod client;
mod credentials;
mod directory;
mod error;
mod json;
mod models;
mod pagination;
mod probe;
mod provider;
mod recipient;
#[cfg(feature = "testkit")]
pub mod testkit;
mod timeline;

pub use builder::{JsmBuilder, DEFAULT_API_BASE_URL, DEFAULT_MAX_CONCURRENCY, DEFAULT_TIMEOUT};
pub use directory::{SEARCH_RESULTS, UNKNOWN_RETRY};
pub use pagination::PAGE_SIZE;
pub use provider::{JsmProvider, CUT_RESENDS};
pub use recipient::{Responder, RESERVED_DOMAIN};
pub use timeline::CHUNK_DAYS;
