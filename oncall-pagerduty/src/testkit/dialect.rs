//! [`PagerDutyDialect`]: how the simulated account reads each behaviour PagerDuty's documentation
//! leaves open (DESIGN §7).
//!
//! Every point the reference (`reference/pagerduty-api.md`) marks UNCONFIRMED, and that the adapter
//! or the sync depends on, is one field here, an enum of its plausible readings. `Default` is the
//! reading the reference or the official spec documents (or, where neither settles it, the one the
//! reference calls probable), with the error bodies really captured from PagerDuty. The property
//! tests and the conformance suite run under every setting of [`PagerDutyDialect::variants`], and
//! `oncall probe` names, per point, the setting a real account showed: a finding's `point` is a
//! field's name, its `reading` the setting's [`name`](ListingFilter::name).

use chrono::TimeDelta;

/// Which overrides `GET /schedules/{id}/overrides?since&until` lists (reference §2.5, §7 item 7).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum ListingFilter {
    /// Every override that intersects `[since, until)` (the reference's "probably").
    #[default]
    Intersecting,
    /// Only overrides that start inside `[since, until)`: one that is running at `since` is not
    /// listed.
    StartsInWindow,
}

/// The status of the override listing (reference §2.1, §7 item 1: the spec says 201).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum ListingStatus {
    /// `200 OK`, as for every other index (the reference's "probably").
    #[default]
    Ok200,
    /// `201 Created`, as the official spec declares.
    Created201,
}

/// How `DELETE /schedules/{id}/overrides/{override_id}` answers (reference §2.7, §3.2 on the
/// account lock, §7 item 5).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum DeleteAnswer {
    /// As documented: 204 for a future override (removed), 200 for a running one (truncated at
    /// now), 404 for one that is gone.
    #[default]
    Documented,
    /// The account lock refuses each delete `refusals` times first (400, code 2001, "... account
    /// could not be locked", the body captured in terraform-provider-pagerduty#1117); nothing is
    /// deleted until an attempt gets through.
    AccountLocked {
        /// Refusals before an attempt of the same delete gets through.
        refusals: u32,
    },
    /// Each delete is answered `408 Request Timeout` `refusals` times first, and not applied.
    TimedOut {
        /// Refusals before an attempt of the same delete gets through.
        refusals: u32,
    },
}

/// How a layer's turns of whole days advance (`rotation_turn_length_seconds`, reference §2.4;
/// DESIGN §2). Turns of other lengths advance in absolute seconds under both readings.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum LayerTurns {
    /// Daily and weekly turns hand off at the same local wall time across DST (23 h and 25 h
    /// turns), as PagerDuty's UI suggests.
    #[default]
    WallClock,
    /// Every turn lasts `rotation_turn_length_seconds` of absolute time: across DST a 09:00
    /// handoff becomes 08:00 or 10:00 local.
    AbsoluteSeconds,
}

/// The order of `schedule_layers` in a GET answer (reference §4 item 2, §7 item 10).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum LayerOrder {
    /// The reverse of POST order: the highest-precedence layer first (PagerDuty's support script,
    /// Terraform's reversal).
    #[default]
    ReversedOnGet,
    /// POST order: Layer 1 (lowest precedence) first (the server-side fix Terraform's unmerged PR
    /// #610 anticipated).
    PostOrder,
}

/// Whether reads lag creates (stale reads after a write, reported by users of other sync tools;
/// DESIGN §6).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum ListingLag {
    /// A create is listed at once.
    #[default]
    Current,
    /// A create is listed (by `GET /schedules/{id}/overrides` and in the overrides and final
    /// layers of `GET /schedules/{id}`) only `seconds` after it was made, by the simulator's clock.
    /// Deletes show at once.
    Lagging {
        /// The lag, in seconds of the simulator's clock.
        seconds: u32,
    },
}

/// When a write whose answer was lost or slow takes effect (DESIGN §4: creates are not
/// idempotent).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum LostWrites {
    /// The write is applied, then its answer is lost (a 502) or held back (a slow answer).
    #[default]
    LandBeforeAnswer,
    /// The write is still being processed when the answer is lost or given up on: it lands
    /// `seconds` later, by the simulator's clock.
    LandAfterAnswer {
        /// How long after the answer the write lands.
        seconds: u32,
    },
}

/// How the rate limit answers (reference §3.3, §7 item 11).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum RateLimitAnswer {
    /// `429` with `ratelimit-limit`, `ratelimit-remaining`, `ratelimit-reset` and the documented
    /// body (code 2020).
    #[default]
    WithHeaders,
    /// `429` "without the rate limit headers or the response body", which the docs say may happen.
    WithoutHeaders,
    /// No refusal: the request is held back and answered late (300 ms), as a throttling proxy does.
    Delayed,
}

/// Whether the account enforces its rate limit as a token bucket of its own (reference §3.3:
/// 960 requests a minute per key, per-operation limits on some endpoints; whether requests over
/// it are refused or held back is UNCONFIRMED for a throttling proxy in between).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Bucket {
    /// No limit the sync meets (only injected rate limits, [`RateLimitAnswer`]).
    #[default]
    Off,
    /// Requests over the limit get a `429` with `ratelimit-limit` (the minute's limit),
    /// `ratelimit-remaining: 0` and `ratelimit-reset` (whole seconds until the window has room),
    /// and the documented body; with no headers or body where [`RateLimitAnswer::WithoutHeaders`]
    /// says so.
    Refuse429(BucketLimit),
    /// Requests over the limit are served once the window has room, in turn: slow answers, no
    /// 429.
    Delay(BucketLimit),
}

/// The limits of a [`Bucket`]: requests per rolling second and per rolling minute.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BucketLimit {
    /// Requests per rolling second.
    pub per_second: u32,
    /// Requests per rolling minute (PagerDuty documents 960 per key).
    pub per_minute: u32,
}

impl BucketLimit {
    /// What the property tests and the conformance suite run under: 20 a second (above the
    /// adaptive pace's 15, below its bursts) and the documented 960 a minute, which one history
    /// never reaches (a 429 of the minute would outlast the tests' retry budget).
    pub const TESTS: BucketLimit = BucketLimit {
        per_second: 20,
        per_minute: 960,
    };
}

/// The body of a `401` (reference §3.1, §3.2).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum UnauthorizedBody {
    /// JSON, as the official spec declares for every error (`{"error": {"message":
    /// "Authentication failed", "code": 2006}}`).
    #[default]
    Json,
    /// `text/plain` (go-pagerduty#469: "HTTP response with status code 401 does not contain
    /// Content-Type: application/json").
    TextPlain,
}

/// The wording of error bodies (reference §3.1): what PagerDuty was seen to send, or other texts
/// for the same answers, so that nothing depends on wording it cannot check.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum ErrorTexts {
    /// Captured bodies: a 403 is `{"error": {"code": 403, "errors": [], "message": "Insufficient
    /// permissions"}}` (terraform-provider-pagerduty#310), the account lock "License error: Unable
    /// to perform request at this time. account could not be locked" (#1117), refused items
    /// "Override must end in the future" (go-pagerduty#339) and "Override must end after its
    /// start" (the spec's example).
    #[default]
    Captured,
    /// Invented texts for the same statuses: a 403 "Access Denied" (code 2010), a lock "Account
    /// busy, try again", refused items "End time is in the past", "Invalid time range".
    Invented,
}

/// The granularity PagerDuty keeps override instants at (reference §2.6, §7 item 4).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Rounding {
    /// Whole seconds, as sent.
    #[default]
    WholeSeconds,
    /// Start and end floored to the minute (the UI's granularity).
    Minutes,
}

/// Which documented shape a batch create answers in (reference §2.6: the spec and
/// python-pagerduty say a top-level array, the v2→v3 guide a wrapped list).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum CreateAnswer {
    /// `[{"status": 201, "override": {...}}, {"status": 400, "errors": [...], ...}]` (the spec).
    #[default]
    TopLevelArray,
    /// `{"overrides": [status objects]}`.
    WrappedStatuses,
    /// `{"overrides": [created overrides]}`: failed items are left out.
    WrappedBare,
}

/// The HTTP status of a batch create whose every item failed (reference §2.6, §7 item 2).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum AllFailedStatus {
    /// 201, with a 400 per item, as for a partial success.
    #[default]
    Created201,
    /// 400, still with the per-item results.
    BadRequest400,
}

/// How the v2 API answers for a shift-based (v3) schedule id (reference §4 item 11, §7 item 12).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum V3Answer {
    /// `GET /schedules/{id}` answers the schedule with `type: schedule_v3` (an upgraded schedule
    /// keeps its id and flips its type); its override endpoints answer 400.
    #[default]
    TypeV3,
    /// Every v2 endpoint answers 404.
    NotFound,
}

/// One reading of every UNCONFIRMED PagerDuty behaviour (DESIGN §7).
///
/// Every point the reference (`reference/pagerduty-api.md`) marks UNCONFIRMED, and that the
/// adapter or the sync depends on, is one field, an enum of its plausible readings. `Default` is
/// the reading the reference or the official spec documents (or, where neither settles it, the one
/// the reference calls probable), with the error bodies really captured from PagerDuty. The
/// property tests and the conformance suite run under every setting of
/// [`PagerDutyDialect::variants`], and `oncall probe` names, per point, the setting a real account
/// showed: a finding's `point` is a field's name ([`PagerDutyDialect::SWITCHES`]), its `reading`
/// the setting's name ([`PagerDutyDialect::setting`]).
///
/// ```
/// use oncall_pagerduty::testkit::{ListingFilter, PagerDutyDialect};
/// let settings = PagerDutyDialect::variants();
/// assert_eq!(settings[0], ("default", PagerDutyDialect::default()));
/// let (name, dialect) = settings
///     .iter()
///     .find(|(_, d)| d.listing_filter == ListingFilter::StartsInWindow)
///     .unwrap();
/// assert_eq!(*name, "listing_filter=starts_in_window");
/// assert_eq!(dialect.setting("listing_filter"), Some("starts_in_window"));
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct PagerDutyDialect {
    /// Which overrides the listing returns for a window.
    pub listing_filter: ListingFilter,
    /// The status of the override listing.
    pub listing_status: ListingStatus,
    /// How deletes answer.
    pub delete_answer: DeleteAnswer,
    /// How turns of whole days advance.
    pub layer_turns: LayerTurns,
    /// The order of layers on GET.
    pub layer_order: LayerOrder,
    /// Whether reads lag creates.
    pub listing_lag: ListingLag,
    /// When a write whose answer was lost lands.
    pub lost_writes: LostWrites,
    /// How the rate limit answers.
    pub rate_limit: RateLimitAnswer,
    /// Whether the account enforces a token bucket of its own, and how.
    pub bucket: Bucket,
    /// The body of a 401.
    pub unauthorized_body: UnauthorizedBody,
    /// The wording of error bodies.
    pub error_texts: ErrorTexts,
    /// The granularity of override instants.
    pub rounding: Rounding,
    /// The shape of a batch-create answer.
    pub create_answer: CreateAnswer,
    /// The status of a batch create whose every item failed.
    pub all_failed_status: AllFailedStatus,
    /// How a v3 schedule id answers.
    pub v3_answer: V3Answer,
}

impl ListingFilter {
    /// The setting's name, as `oncall probe` prints it.
    pub fn name(self) -> &'static str {
        match self {
            ListingFilter::Intersecting => "intersecting",
            ListingFilter::StartsInWindow => "starts_in_window",
        }
    }
}

impl ListingStatus {
    /// The setting's name, as `oncall probe` prints it.
    pub fn name(self) -> &'static str {
        match self {
            ListingStatus::Ok200 => "ok_200",
            ListingStatus::Created201 => "created_201",
        }
    }
}

impl DeleteAnswer {
    /// The setting's name, as `oncall probe` prints it.
    pub fn name(self) -> &'static str {
        match self {
            DeleteAnswer::Documented => "documented",
            DeleteAnswer::AccountLocked { .. } => "account_locked",
            DeleteAnswer::TimedOut { .. } => "timed_out",
        }
    }
}

impl LayerTurns {
    /// The setting's name, as `oncall probe` prints it.
    pub fn name(self) -> &'static str {
        match self {
            LayerTurns::WallClock => "wall_clock",
            LayerTurns::AbsoluteSeconds => "absolute_seconds",
        }
    }
}

impl LayerOrder {
    /// The setting's name, as `oncall probe` prints it.
    pub fn name(self) -> &'static str {
        match self {
            LayerOrder::ReversedOnGet => "reversed_on_get",
            LayerOrder::PostOrder => "post_order",
        }
    }
}

impl ListingLag {
    /// The setting's name, as `oncall probe` prints it.
    pub fn name(self) -> &'static str {
        match self {
            ListingLag::Current => "current",
            ListingLag::Lagging { .. } => "lagging",
        }
    }

    /// The lag (zero when current).
    pub fn delay(self) -> TimeDelta {
        match self {
            ListingLag::Current => TimeDelta::zero(),
            ListingLag::Lagging { seconds } => TimeDelta::seconds(i64::from(seconds)),
        }
    }
}

impl LostWrites {
    /// The setting's name, as `oncall probe` prints it.
    pub fn name(self) -> &'static str {
        match self {
            LostWrites::LandBeforeAnswer => "land_before_answer",
            LostWrites::LandAfterAnswer { .. } => "land_after_answer",
        }
    }

    /// How long after its lost answer a write lands (zero when it lands before).
    pub fn delay(self) -> TimeDelta {
        match self {
            LostWrites::LandBeforeAnswer => TimeDelta::zero(),
            LostWrites::LandAfterAnswer { seconds } => TimeDelta::seconds(i64::from(seconds)),
        }
    }
}

impl RateLimitAnswer {
    /// The setting's name, as `oncall probe` prints it.
    pub fn name(self) -> &'static str {
        match self {
            RateLimitAnswer::WithHeaders => "with_headers",
            RateLimitAnswer::WithoutHeaders => "without_headers",
            RateLimitAnswer::Delayed => "delayed",
        }
    }
}

impl Bucket {
    /// The setting's name, as `oncall probe` prints it.
    pub fn name(self) -> &'static str {
        match self {
            Bucket::Off => "off",
            Bucket::Refuse429(_) => "refuse_429",
            Bucket::Delay(_) => "delay",
        }
    }
}

impl UnauthorizedBody {
    /// The setting's name, as `oncall probe` prints it.
    pub fn name(self) -> &'static str {
        match self {
            UnauthorizedBody::Json => "json",
            UnauthorizedBody::TextPlain => "text_plain",
        }
    }
}

impl ErrorTexts {
    /// The setting's name, as `oncall probe` prints it.
    pub fn name(self) -> &'static str {
        match self {
            ErrorTexts::Captured => "captured",
            ErrorTexts::Invented => "invented",
        }
    }
}

impl Rounding {
    /// The setting's name, as `oncall probe` prints it.
    pub fn name(self) -> &'static str {
        match self {
            Rounding::WholeSeconds => "whole_seconds",
            Rounding::Minutes => "minutes",
        }
    }
}

impl CreateAnswer {
    /// The setting's name, as `oncall probe` prints it.
    pub fn name(self) -> &'static str {
        match self {
            CreateAnswer::TopLevelArray => "top_level_array",
            CreateAnswer::WrappedStatuses => "wrapped_statuses",
            CreateAnswer::WrappedBare => "wrapped_bare",
        }
    }
}

impl AllFailedStatus {
    /// The setting's name, as `oncall probe` prints it.
    pub fn name(self) -> &'static str {
        match self {
            AllFailedStatus::Created201 => "created_201",
            AllFailedStatus::BadRequest400 => "bad_request_400",
        }
    }
}

impl V3Answer {
    /// The setting's name, as `oncall probe` prints it.
    pub fn name(self) -> &'static str {
        match self {
            V3Answer::TypeV3 => "type_v3",
            V3Answer::NotFound => "not_found",
        }
    }
}

/// Refusals of each delete in the variants: twice, as the issue measured it (a retry that is
/// refused again).
const REFUSALS: u32 = 2;

/// The lag of the lagging variant: seconds, as users of other sync tools reported.
const LAG_SECONDS: u32 = 30;

/// How long after a lost answer the write lands, in the late-writes variant.
const LATE_SECONDS: u32 = 20;

impl PagerDutyDialect {
    /// The names of the switches, in field order: what `oncall probe` calls its points.
    pub const SWITCHES: [&'static str; 15] = [
        "listing_filter",
        "listing_status",
        "delete_answer",
        "layer_turns",
        "layer_order",
        "listing_lag",
        "lost_writes",
        "rate_limit",
        "bucket",
        "unauthorized_body",
        "error_texts",
        "rounding",
        "create_answer",
        "all_failed_status",
        "v3_answer",
    ];

    /// The setting of the switch named `switch` ([`Self::SWITCHES`]), by name.
    pub fn setting(&self, switch: &str) -> Option<&'static str> {
        Some(match switch {
            "listing_filter" => self.listing_filter.name(),
            "listing_status" => self.listing_status.name(),
            "delete_answer" => self.delete_answer.name(),
            "layer_turns" => self.layer_turns.name(),
            "layer_order" => self.layer_order.name(),
            "listing_lag" => self.listing_lag.name(),
            "lost_writes" => self.lost_writes.name(),
            "rate_limit" => self.rate_limit.name(),
            "bucket" => self.bucket.name(),
            "unauthorized_body" => self.unauthorized_body.name(),
            "error_texts" => self.error_texts.name(),
            "rounding" => self.rounding.name(),
            "create_answer" => self.create_answer.name(),
            "all_failed_status" => self.all_failed_status.name(),
            "v3_answer" => self.v3_answer.name(),
            _ => return None,
        })
    }

    /// The named settings tests iterate: the default, then one alternative reading at a time
    /// (`switch=setting`), then the two stale-read switches together (a listing that lags
    /// creates and writes that land after a lost answer: the duplicate the issue measured).
    pub fn variants() -> Vec<(&'static str, PagerDutyDialect)> {
        let d = PagerDutyDialect::default();
        let lagging = ListingLag::Lagging {
            seconds: LAG_SECONDS,
        };
        let late = LostWrites::LandAfterAnswer {
            seconds: LATE_SECONDS,
        };
        vec![
            ("default", d),
            (
                "listing_filter=starts_in_window",
                PagerDutyDialect {
                    listing_filter: ListingFilter::StartsInWindow,
                    ..d
                },
            ),
            (
                "listing_status=created_201",
                PagerDutyDialect {
                    listing_status: ListingStatus::Created201,
                    ..d
                },
            ),
            (
                "delete_answer=account_locked",
                PagerDutyDialect {
                    delete_answer: DeleteAnswer::AccountLocked { refusals: REFUSALS },
                    ..d
                },
            ),
            (
                "delete_answer=timed_out",
                PagerDutyDialect {
                    delete_answer: DeleteAnswer::TimedOut { refusals: REFUSALS },
                    ..d
                },
            ),
            (
                "layer_turns=absolute_seconds",
                PagerDutyDialect {
                    layer_turns: LayerTurns::AbsoluteSeconds,
                    ..d
                },
            ),
            (
                "layer_order=post_order",
                PagerDutyDialect {
                    layer_order: LayerOrder::PostOrder,
                    ..d
                },
            ),
            (
                "listing_lag=lagging",
                PagerDutyDialect {
                    listing_lag: lagging,
                    ..d
                },
            ),
            (
                "lost_writes=land_after_answer",
                PagerDutyDialect {
                    lost_writes: late,
                    ..d
                },
            ),
            (
                "listing_lag=lagging+lost_writes=land_after_answer",
                PagerDutyDialect {
                    listing_lag: lagging,
                    lost_writes: late,
                    ..d
                },
            ),
            (
                "rate_limit=without_headers",
                PagerDutyDialect {
                    rate_limit: RateLimitAnswer::WithoutHeaders,
                    ..d
                },
            ),
            (
                "rate_limit=delayed",
                PagerDutyDialect {
                    rate_limit: RateLimitAnswer::Delayed,
                    ..d
                },
            ),
            (
                "bucket=refuse_429",
                PagerDutyDialect {
                    bucket: Bucket::Refuse429(BucketLimit::TESTS),
                    ..d
                },
            ),
            (
                "bucket=delay",
                PagerDutyDialect {
                    bucket: Bucket::Delay(BucketLimit::TESTS),
                    ..d
                },
            ),
            (
                "unauthorized_body=text_plain",
                PagerDutyDialect {
                    unauthorized_body: UnauthorizedBody::TextPlain,
                    ..d
                },
            ),
            (
                "error_texts=invented",
                PagerDutyDialect {
                    error_texts: ErrorTexts::Invented,
                    ..d
                },
            ),
            (
                "rounding=minutes",
                PagerDutyDialect {
                    rounding: Rounding::Minutes,
                    ..d
                },
            ),
            (
                "create_answer=wrapped_statuses",
                PagerDutyDialect {
                    create_answer: CreateAnswer::WrappedStatuses,
                    ..d
                },
            ),
            (
                "create_answer=wrapped_bare",
                PagerDutyDialect {
                    create_answer: CreateAnswer::WrappedBare,
                    ..d
                },
            ),
            (
                "all_failed_status=bad_request_400",
                PagerDutyDialect {
                    all_failed_status: AllFailedStatus::BadRequest400,
                    ..d
                },
            ),
            (
                "v3_answer=not_found",
                PagerDutyDialect {
                    v3_answer: V3Answer::NotFound,
                    ..d
                },
            ),
        ]
    }

    /// How long after a write the account shows it, at most, by the simulator's clock: the
    /// listing lag plus the delay of a write whose answer was lost. Syncs of one destination that
    /// are at least this far apart see every write of the one before (the bound of the sync's
    /// recovery of lost creates, see the crate docs).
    pub fn settles_within(&self) -> TimeDelta {
        self.listing_lag.delay() + self.lost_writes.delay()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_variant_differs_from_the_default_only_where_named() {
        let d = PagerDutyDialect::default();
        let variants = PagerDutyDialect::variants();
        let mut names: Vec<&str> = variants.iter().map(|(n, _)| *n).collect();
        names.sort_unstable();
        names.dedup();
        assert_eq!(names.len(), variants.len(), "names are unique");
        for (name, dialect) in &variants[1..] {
            let changed: Vec<String> = PagerDutyDialect::SWITCHES
                .iter()
                .filter(|s| dialect.setting(s) != d.setting(s))
                .map(|s| format!("{s}={}", dialect.setting(s).unwrap_or_default()))
                .collect();
            assert_eq!(changed.join("+"), *name);
        }
        // Every switch has at least one alternative among the variants.
        for switch in PagerDutyDialect::SWITCHES {
            assert!(
                variants
                    .iter()
                    .any(|(_, v)| v.setting(switch) != d.setting(switch)),
                "{switch} has no alternative"
            );
        }
        assert_eq!(d.settles_within(), TimeDelta::zero());
    }
}
