//! [`OpsgenieDialect`]: every behaviour of Opsgenie that the reference marks UNCONFIRMED and the
//! adapter depends on, as one switch per point with each plausible reading (DESIGN §7).
//!
//! The default of each switch is the reading the reference documents or a capture shows (the
//! captured bodies are the default texts); the others are the readings the documentation leaves
//! open. [`OpsgenieDialect::variants`] lists the default and one setting per other reading, for
//! tests to run under every one. A switch's name is also the `point` an
//! [`oncall_core::probe::ProbeFinding`] names, and a reading's name its `reading`.

use chrono::TimeDelta;

/// Defines a switch: an enum of readings with a name each, `Default` the first listed.
macro_rules! readings {
    (
        $(#[$meta:meta])*
        $name:ident {
            $(#[$dmeta:meta])* $default:ident = $dtext:literal,
            $( $(#[$vmeta:meta])* $variant:ident = $text:literal ),* $(,)?
        }
    ) => {
        $(#[$meta])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
        pub enum $name {
            $(#[$dmeta])*
            #[default]
            $default,
            $( $(#[$vmeta])* $variant, )*
        }

        impl $name {
            /// Every reading, the default first.
            pub const ALL: &'static [$name] = &[$name::$default, $($name::$variant),*];

            /// The reading's name (as a probe reports it).
            pub fn name(self) -> &'static str {
                match self {
                    $name::$default => $dtext,
                    $($name::$variant => $text,)*
                }
            }

            /// The reading of that name.
            pub fn from_name(name: &str) -> Option<$name> {
                $name::ALL.iter().copied().find(|r| r.name() == name)
            }
        }
    };
}

readings! {
    /// Whether `GET …/overrides` lists overrides that have ended (reference §2.6: UNCONFIRMED;
    /// JSM, the successor, documents "ongoing and future" only).
    PastOverrides {
        /// Every override the schedule holds is listed, ended ones too.
        Listed = "listed",
        /// Only overrides that have not ended are listed (a `GET` by alias still finds the others).
        NotListed = "not_listed",
    }
}

readings! {
    /// Whether `GET …/overrides` shows the API's writes at once (reference §2.6 says nothing;
    /// DESIGN §6: peers saw listings that lag a write).
    ListingLag {
        /// A write shows in the next listing.
        Immediate = "immediate",
        /// The listing shows the schedule as it was [`LISTING_LAG`] of the vendor's time ago, as
        /// far as the API's own writes go (a person's edits in the UI, made long before, show);
        /// a `GET` by alias is a read by key and shows the latest state.
        Lagged = "lagged",
    }
}

/// How far the listing trails the API's writes under [`ListingLag::Lagged`], in the simulator's
/// time (which runs only as the test moves it or steps it per call).
pub const LISTING_LAG: TimeDelta = TimeDelta::seconds(5);

readings! {
    /// When a write whose answer is lost ([`Fault::LoseResponse`](oncall_core::testkit::Fault)) or
    /// slow ([`HttpFault::Slow`](super::HttpFault)) takes effect (nothing documents it).
    LostAnswerWrites {
        /// It took effect before the answer was lost (or before the slow answer left).
        LandBeforeAnswer = "land_before_answer",
        /// It takes effect later: right before the second request after it is handled (a retry
        /// or a re-read may come first). A slow answer then claims what has not happened yet.
        LandAfterAnswer = "land_after_answer",
        /// A lost answer means nothing happened. (A slow answer that arrives is a real one.)
        NeverLand = "never_land",
    }
}

readings! {
    /// What Opsgenie does to a request over its rate limit (reference §3.2: "either rejected
    /// with the HTTP status 429 - Too Many Requests or delayed to be executed").
    Throttle {
        /// 429 `TooManyRequests` with `X-RateLimit-State: THROTTLED`, `X-RateLimit-Reason:
        /// ACCOUNT` and `X-RateLimit-Period-In-Sec` (the Go SDK's captured fixture).
        Reject429 = "reject_429",
        /// The same 429 without `X-RateLimit-Period-In-Sec`.
        Reject429WithoutPeriod = "reject_429_without_period",
        /// No 429: the request is carried out, and answered [`THROTTLE_DELAY`] late.
        Delay = "delay",
    }
}

readings! {
    /// Whether the account enforces a rate limit of its own: a token bucket per rolling second
    /// and per rolling minute (reference §3.2: "checked per minute and per second", numbers
    /// UNCONFIRMED, over-limit requests "either rejected with the HTTP status 429 - Too Many
    /// Requests or delayed to be executed"). The limits are [`OpsgenieDialect::bucket_limit`].
    Bucket {
        /// No limit the sync meets (only injected rate limits, [`Throttle`]).
        Off = "off",
        /// A request over the limit gets a 429 with `X-RateLimit-State: THROTTLED`,
        /// `X-RateLimit-Reason: ACCOUNT` and `X-RateLimit-Period-In-Sec` naming the window that
        /// was full, 1 or 60 (left out where [`Throttle::Reject429WithoutPeriod`] says so).
        Refuse429 = "refuse_429",
        /// A request over the limit is carried out and answered once the window has room, in
        /// turn: no 429, only slow answers.
        Delay = "delay",
    }
}

/// The limits of [`OpsgenieDialect::bucket`]: requests per rolling second and per rolling minute.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct BucketLimit {
    /// Requests per rolling second.
    pub per_second: u32,
    /// Requests per rolling minute.
    pub per_minute: u32,
}

impl BucketLimit {
    /// What the property tests and the conformance suite run under: 30 a second, 3,000 a minute.
    /// A history's first export meets the second's limit, never the minute's (whose 60 s period
    /// would outlast the tests' retry budget).
    pub const TESTS: BucketLimit = BucketLimit {
        per_second: 30,
        per_minute: 3_000,
    };
}

/// How late a throttled request is answered under [`Throttle::Delay`] (real time).
pub const THROTTLE_DELAY: std::time::Duration = std::time::Duration::from_millis(150);

readings! {
    /// How a create or update naming a user the account does not have is refused (no capture;
    /// reference §3.1 "422: validation (bad dates, unknown user…)").
    UnknownUser {
        /// 422 with the Go SDK fixture's generic message and the user named in a field error:
        /// `{"message":"Request body is not processable. Please check the errors.",
        /// "errors":{"user":"User [x] does not exist"}}`.
        FieldError = "field_error",
        /// 422 with the user named in the message only: `{"message":"User [x] does not exist"}`.
        MessageOnly = "message_only",
        /// 404 ("Resource or handler not found"): `{"message":"No user exists with username [x]"}`.
        NotFound404 = "not_found_404",
    }
}

readings! {
    /// How a create with an alias the schedule already holds is refused (reference §4:
    /// UNCONFIRMED, "409 ... or 422 likely").
    AliasTaken {
        /// 409, the D-RESP meaning "ID or name conflicts with another entity":
        /// `{"message":"There can be only one override with the same alias [x] for that schedule"}`.
        Conflict409 = "conflict_409",
        /// 422 with a field error on `alias`.
        Unprocessable422 = "unprocessable_422",
        /// 400 with a message only: `{"message":"Override with alias [x] already exists"}`.
        BadRequest400 = "bad_request_400",
    }
}

readings! {
    /// How a `GET`, `PUT` or `DELETE` of an alias the schedule does not hold is answered
    /// (reference §2.6: "should return 404 (OAS). Not observed"; §3.1: not-found may come back
    /// as 403/40301).
    MissingOverride {
        /// 404 `{"message":"Could not find override with alias [x]"}`.
        NotFound404 = "not_found_404",
        /// 403 with the captured body `{"code":40301,"message":"Api key is not authorized to
        /// access the schedule"}`: it names the schedule, though the schedule is there.
        Forbidden40301 = "forbidden_40301",
    }
}

readings! {
    /// How a request for a schedule the account does not hold is answered (reference §3.1).
    UnknownSchedule {
        /// 403 `{"code":40301,"message":"Api key is not authorized to access the schedule"}`, as
        /// observed (DXW capture).
        Forbidden40301 = "forbidden_40301",
        /// 404 `{"message":"Schedule with identifier [x] does not exist"}`.
        NotFound404 = "not_found_404",
    }
}

readings! {
    /// Which override shows in the timeline where overrides overlap (reference §4:
    /// UNCONFIRMED).
    OverlapPrecedence {
        /// The last created wins (as PagerDuty documents for itself, and the in-memory provider).
        LastCreated = "last_created",
        /// The last created or updated wins.
        LastWritten = "last_written",
        /// The first created wins.
        FirstCreated = "first_created",
    }
}

readings! {
    /// Where the timeline splits a turn that straddles the request instant into `historical`
    /// and `default` (reference §2.5: observed at the request instant with milliseconds).
    TimelineSplit {
        /// At the request instant with milliseconds (`…11:30:14.401Z`), as captured (SR).
        Milliseconds = "milliseconds",
        /// At the request instant in whole seconds.
        WholeSeconds = "whole_seconds",
        /// Not at all: one period, typed by whether it has ended.
        NoSplit = "no_split",
    }
}

readings! {
    /// Whether an override period that straddles the request instant is split there too
    /// (reference §2.5: the captures show only turns split).
    OverrideSplit {
        /// Split into two `override` periods at the turns' split instant: the reading that asks
        /// more of an importer.
        Split = "split",
        /// One period.
        Whole = "whole",
    }
}

readings! {
    /// What Opsgenie keeps of an override's instants (reference §4: rotations round minutes to
    /// :00/:30; whether overrides are rounded is UNCONFIRMED).
    Rounding {
        /// Whole seconds, as sent (`yyyy-MM-dd'T'HH:mm:ssZ`).
        Seconds = "seconds",
        /// Floored to the minute.
        FloorToMinute = "floor_to_minute",
    }
}

readings! {
    /// What `rotations` of an override of every rotation reads back as (reference §2.6:
    /// UNCONFIRMED, "may come back as `[]` or as the full explicit list").
    AllRotations {
        /// `[]`.
        Empty = "empty",
        /// Every rotation of the schedule, by id and name.
        FullList = "full_list",
    }
}

readings! {
    /// What a `PUT` without `rotations` does to an override limited to some rotations
    /// (reference §4: UNCONFIRMED).
    PutWithoutRotations {
        /// It applies to every rotation from then on: the reading that puts history at risk.
        ResetsToAll = "resets_to_all",
        /// It keeps its rotations.
        KeepsRotations = "keeps_rotations",
    }
}

readings! {
    /// What an update that ends a running override at or before the vendor's now gets
    /// (UNCONFIRMED; the Provider contract asks for the end at the vendor's now).
    PastEnd {
        /// The end becomes the vendor's now.
        Clamp = "clamp",
        /// A 422 naming `endDate` for an end before the vendor's now.
        Refuse = "refuse",
    }
}

readings! {
    /// Whether daily and weekly rotations hand off at the same wall-clock time across DST
    /// (DESIGN §2; the reference observes restriction hours local to the schedule's zone, not
    /// the handoffs).
    Handoffs {
        /// At the same local time: a day across a DST change lasts 23 or 25 hours (the core's
        /// expansion).
        WallClock = "wall_clock",
        /// Every 24 hours (or 7 days) of absolute time from the rotation's start.
        AbsoluteSeconds = "absolute_seconds",
    }
}

readings! {
    /// The order of the `rotations` array of a schedule (reference §2.5: "whether the rotations
    /// array from GET schedule or rotations is always in display order is UNCONFIRMED").
    RotationOrder {
        /// The timeline's `order`, as the UI shows them.
        Timeline = "timeline",
        /// Another order (the simulator serves them reversed).
        Shuffled = "shuffled",
    }
}

readings! {
    /// What a successful `DELETE …/overrides/{alias}` answers (OAS: 200 `SuccessResponse`).
    DeleteAnswer {
        /// 200 `{"result":"Deleted", …}`.
        Ok200 = "ok_200",
        /// 204 with no body.
        NoContent204 = "no_content_204",
    }
}

/// Defines the dialect struct, its switch list and its variants from one list of fields.
macro_rules! dialect {
    ($( $(#[$meta:meta])* $field:ident : $ty:ident ),* $(,)?) => {
        /// How a simulated Opsgenie account behaves on each point the reference leaves
        /// UNCONFIRMED: one field per point, each an enum of its plausible readings.
        ///
        /// `Default` is the documented or captured reading of each. Start a simulator under a
        /// dialect with [`OpsgenieSimulator::start_with`](super::OpsgenieSimulator::start_with)
        /// (or change it with [`OpsgenieSimulator::set_dialect`](super::OpsgenieSimulator::set_dialect)):
        ///
        /// ```
        /// use oncall_opsgenie::testkit::{OpsgenieDialect, Rounding};
        /// let dialect = OpsgenieDialect { rounding: Rounding::FloorToMinute, ..OpsgenieDialect::default() };
        /// assert_eq!(dialect.reading("rounding"), Some("floor_to_minute"));
        /// // The default and one setting per other reading of every switch.
        /// let variants = OpsgenieDialect::variants();
        /// assert_eq!(variants[0].0, "default");
        /// assert!(variants.iter().any(|(name, d)| name == "rounding=floor_to_minute" && *d == dialect));
        /// ```
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
        pub struct OpsgenieDialect {
            $( $(#[$meta])* pub $field: $ty, )*
            /// The `X-RateLimit-Period-In-Sec` of a 429 under [`Throttle::Reject429`]: which
            /// window was hit, 1 or 60 seconds (reference §3.2). The simulator's default is 1,
            /// to keep tests quick.
            pub rate_limit_period_secs: u64,
            /// The limits of the token bucket under [`Bucket::Refuse429`] and [`Bucket::Delay`]
            /// (default [`BucketLimit::TESTS`]).
            pub bucket_limit: BucketLimit,
        }

        impl Default for OpsgenieDialect {
            fn default() -> Self {
                OpsgenieDialect {
                    $( $field: $ty::default(), )*
                    rate_limit_period_secs: 1,
                    bucket_limit: BucketLimit::TESTS,
                }
            }
        }

        impl OpsgenieDialect {
            /// The switches' names, in declaration order: the probe's points.
            pub const SWITCHES: &'static [&'static str] = &[$(stringify!($field)),*];

            /// Every switch with this dialect's reading of it: `(switch, reading)`.
            pub fn switches(&self) -> Vec<(&'static str, &'static str)> {
                vec![$((stringify!($field), self.$field.name())),*]
            }

            /// This dialect's reading of `switch`, by name; `None` for no such switch.
            pub fn reading(&self, switch: &str) -> Option<&'static str> {
                match switch {
                    $(stringify!($field) => Some(self.$field.name()),)*
                    _ => None,
                }
            }

            /// Sets `switch` to the reading named `reading`; `false` (and nothing changed) when
            /// either name is unknown.
            pub fn set(&mut self, switch: &str, reading: &str) -> bool {
                match switch {
                    $(stringify!($field) => match $ty::from_name(reading) {
                        Some(r) => { self.$field = r; true }
                        None => false,
                    },)*
                    _ => false,
                }
            }

            /// The settings a test iterates: `("default", default)`, then one
            /// `("<switch>=<reading>", …)` per reading that is not a switch's default, every
            /// other switch at its default.
            pub fn variants() -> Vec<(String, OpsgenieDialect)> {
                let mut out = vec![("default".to_owned(), OpsgenieDialect::default())];
                $(
                    for reading in $ty::ALL.iter().copied().filter(|r| *r != $ty::default()) {
                        out.push((
                            format!("{}={}", stringify!($field), reading.name()),
                            OpsgenieDialect { $field: reading, ..OpsgenieDialect::default() },
                        ));
                    }
                )*
                out
            }
        }
    };
}

dialect! {
    /// Whether ended overrides are listed.
    past_overrides: PastOverrides,
    /// Whether listings show the API's writes at once.
    listing_lag: ListingLag,
    /// When a write whose answer was lost or slow takes effect.
    lost_answer_writes: LostAnswerWrites,
    /// 429 or a delayed answer, and whether a 429 says how long to wait.
    throttle: Throttle,
    /// A token bucket of the account's own, and what it does over the limit.
    bucket: Bucket,
    /// How an unknown user is refused.
    unknown_user: UnknownUser,
    /// How a taken alias is refused.
    alias_taken: AliasTaken,
    /// How a missing override is answered.
    missing_override: MissingOverride,
    /// How a missing schedule is answered.
    unknown_schedule: UnknownSchedule,
    /// Which overlapping override the timeline shows.
    overlap: OverlapPrecedence,
    /// Where turns split at the request instant.
    timeline_split: TimelineSplit,
    /// Whether override periods split there too.
    override_split: OverrideSplit,
    /// What is kept of an override's instants.
    rounding: Rounding,
    /// `rotations` of an override of every rotation.
    all_rotations: AllRotations,
    /// A `PUT` without `rotations` of a limited override.
    put_without_rotations: PutWithoutRotations,
    /// An update ending a running override in the vendor's past.
    past_end: PastEnd,
    /// Wall-clock or absolute handoffs.
    handoffs: Handoffs,
    /// The order of a schedule's `rotations` array.
    rotation_order: RotationOrder,
    /// The answer to a successful delete.
    delete_answer: DeleteAnswer,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn variants_cover_every_reading_once() {
        let variants = OpsgenieDialect::variants();
        let names: std::collections::HashSet<&str> =
            variants.iter().map(|(n, _)| n.as_str()).collect();
        assert_eq!(names.len(), variants.len(), "names are unique");
        for (name, dialect) in &variants[1..] {
            let (switch, reading) = name.split_once('=').unwrap();
            assert_eq!(dialect.reading(switch), Some(reading));
            let differs: Vec<_> = dialect
                .switches()
                .into_iter()
                .zip(OpsgenieDialect::default().switches())
                .filter(|(a, b)| a != b)
                .collect();
            assert_eq!(differs.len(), 1, "{name}: one switch differs");
            let mut back = OpsgenieDialect::default();
            assert!(back.set(switch, reading));
            assert_eq!(back, *dialect);
        }
        assert_eq!(OpsgenieDialect::SWITCHES.len(), 19);
        assert!(!OpsgenieDialect::default().set("rounding", "nonsense"));
        assert!(!OpsgenieDialect::default().set("nonsense", "seconds"));
    }
}
