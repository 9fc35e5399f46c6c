//! The simulator's dialects: one switch per behaviour the JSM Operations reference marks
//! UNCONFIRMED (`shared/reference/jsm-ops-api.md`), each with every plausible reading. The default
//! of each switch is the documented reading (the reference, or the JSM Operations OpenAPI spec where
//! the reference leaves it open); the others are alternatives a real account may show.
//!
//! Switch and setting names are the ones `oncall probe` reports ([`JsmDialect::reading`]).

use std::fmt;
use std::time::Duration;

/// How the simulated account behaves on each UNCONFIRMED point.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct JsmDialect {
    /// What `PUT …/overrides/{alias}` takes (reference §3: "its fields are UNCONFIRMED (assume the
    /// create body)").
    pub update_body: UpdateBody,
    /// What a successful `DELETE …/overrides/{alias}` answers (reference §3: "status codes
    /// UNCONFIRMED"; the spec says 204).
    pub delete_status: DeleteStatus,
    /// Whether ended overrides are listed (reference §2: "all ongoing and future overrides").
    pub past_overrides: PastOverrides,
    /// What leaving `rotationIds` out of a create or update means, and how such an override is
    /// answered (reference §3: "whether omitting `rotationIds` means all rotations is UNCONFIRMED").
    pub rotation_ids_omitted: RotationIdsOmitted,
    /// The page sizes lists serve (reference §5: "maximum `size` UNCONFIRMED"; the spec says 50).
    pub page_size: PageSize,
    /// The body of a 403 (reference §1: "the body of a 403 is UNCONFIRMED").
    pub forbidden_body: ForbiddenBody,
    /// Rate limits (reference §5: "undocumented for JSM Ops").
    pub rate_limit: RateLimitReading,
    /// What an update that ends a running override before the vendor's now gets (undocumented:
    /// Opsgenie may refuse such an end, and the Provider contract asks for the end at the
    /// vendor's now).
    pub past_end: PastEnd,
}

/// The readings of [`JsmDialect::past_end`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum PastEnd {
    /// The end becomes the vendor's now (the Provider contract's reading).
    #[default]
    Clamp,
    /// A 422 "End date must be in the future" for an end before the vendor's now: the adapter
    /// sends the cut again at the vendor's now.
    Refuse,
}

/// The readings of [`JsmDialect::update_body`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum UpdateBody {
    /// The create body, a full replace: `responder`, `startDate` and `endDate` required; no
    /// `rotationIds`, every rotation (as the spec's `UpdateOverrideRequest` says).
    #[default]
    CreateShape,
    /// A patch: every field may be left out, and what is left out keeps its value (`rotationIds`
    /// included).
    Partial,
    /// The create body, with `rotationIds` required: a `PUT` without them is a 422.
    RotationIdsRequired,
}

/// The readings of [`JsmDialect::delete_status`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum DeleteStatus {
    /// 204 with no body (the spec).
    #[default]
    NoContent,
    /// 200 with no body.
    OkEmpty,
    /// 200 with a JSON body.
    OkJson,
}

/// The readings of [`JsmDialect::past_overrides`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum PastOverrides {
    /// Only ongoing and future overrides are listed (documented).
    #[default]
    OngoingAndFuture,
    /// Ended overrides are listed too.
    All,
}

/// The readings of [`JsmDialect::rotation_ids_omitted`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum RotationIdsOmitted {
    /// Every rotation, and the override is answered with `rotationIds: null` (the spec: "Null if
    /// no rotation is specified during override creation").
    #[default]
    AllRotations,
    /// Every rotation, and the override is answered with the ids of every rotation.
    AllRotationsListed,
    /// Refused: a create or update without `rotationIds` is a 422 naming them.
    Refused,
}

/// The readings of [`JsmDialect::page_size`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum PageSize {
    /// Sizes up to 50 are served as asked (the spec's maximum); larger ones are a 422.
    #[default]
    UpTo50,
    /// Pages of at most this many items, whatever size is asked for (the next link goes on).
    CappedAt(u32),
    /// A size above this many is a 422 naming `size`.
    RefusedAbove(u32),
}

/// The readings of [`JsmDialect::forbidden_body`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum ForbiddenBody {
    /// `{"errors": [{"title": …, "code": …}]}` (the spec's `ErrorResponses`).
    #[default]
    Errors,
    /// `{"code": 403, "message": …}` (the shape of the spec's 401).
    Message,
    /// No body at all.
    Empty,
}

/// The readings of [`JsmDialect::rate_limit`]: none, or a limit per rolling second whose excess
/// is refused (429 with `Retry-After`) or held back (answered late, as Opsgenie says it may).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum RateLimitReading {
    /// No limit the sync meets.
    #[default]
    None,
    /// More than this many requests a second get a 429 with `Retry-After` and the Jira platform's
    /// `X-RateLimit-*` headers.
    Refused(u32),
    /// More than this many requests a second are answered late, in turn.
    Delayed(u32),
}

/// A dialect switch's setting, named as `oncall probe` names it.
pub trait Setting {
    /// The setting's name (`no_content`, `capped`, ...).
    fn name(&self) -> &'static str;
}

impl Setting for UpdateBody {
    fn name(&self) -> &'static str {
        match self {
            UpdateBody::CreateShape => "create_shape",
            UpdateBody::Partial => "partial",
            UpdateBody::RotationIdsRequired => "rotation_ids_required",
        }
    }
}

impl Setting for DeleteStatus {
    fn name(&self) -> &'static str {
        match self {
            DeleteStatus::NoContent => "no_content",
            DeleteStatus::OkEmpty => "ok_empty",
            DeleteStatus::OkJson => "ok_json",
        }
    }
}

impl Setting for PastOverrides {
    fn name(&self) -> &'static str {
        match self {
            PastOverrides::OngoingAndFuture => "ongoing_and_future",
            PastOverrides::All => "all",
        }
    }
}

impl Setting for RotationIdsOmitted {
    fn name(&self) -> &'static str {
        match self {
            RotationIdsOmitted::AllRotations => "all_rotations",
            RotationIdsOmitted::AllRotationsListed => "all_rotations_listed",
            RotationIdsOmitted::Refused => "refused",
        }
    }
}

impl Setting for PageSize {
    fn name(&self) -> &'static str {
        match self {
            PageSize::UpTo50 => "up_to_50",
            PageSize::CappedAt(_) => "capped",
            PageSize::RefusedAbove(_) => "refused_above",
        }
    }
}

impl Setting for ForbiddenBody {
    fn name(&self) -> &'static str {
        match self {
            ForbiddenBody::Errors => "errors",
            ForbiddenBody::Message => "message",
            ForbiddenBody::Empty => "empty",
        }
    }
}

impl Setting for PastEnd {
    fn name(&self) -> &'static str {
        match self {
            PastEnd::Clamp => "clamp",
            PastEnd::Refuse => "refuse",
        }
    }
}

impl Setting for RateLimitReading {
    fn name(&self) -> &'static str {
        match self {
            RateLimitReading::None => "none",
            RateLimitReading::Refused(_) => "refused",
            RateLimitReading::Delayed(_) => "delayed",
        }
    }
}

impl JsmDialect {
    /// The switch names, as probe findings name their points.
    pub const SWITCHES: [&'static str; 8] = [
        "update_body",
        "delete_status",
        "past_overrides",
        "rotation_ids_omitted",
        "page_size",
        "forbidden_body",
        "rate_limit",
        "past_end",
    ];

    /// The documented reading of every point, and each alternative on its own (one switch away
    /// from the default), named `<switch>=<setting>`: what the conformance suite and the property
    /// tests iterate over.
    ///
    /// ```
    /// use oncall_jsm::testkit::JsmDialect;
    /// let variants = JsmDialect::variants();
    /// assert_eq!(variants[0], ("documented", JsmDialect::default()));
    /// assert!(variants.iter().any(|(name, _)| *name == "delete_status=ok_json"));
    /// ```
    pub fn variants() -> Vec<(&'static str, JsmDialect)> {
        let d = JsmDialect::default;
        vec![
            ("documented", d()),
            (
                "update_body=partial",
                JsmDialect {
                    update_body: UpdateBody::Partial,
                    ..d()
                },
            ),
            (
                "update_body=rotation_ids_required",
                JsmDialect {
                    update_body: UpdateBody::RotationIdsRequired,
                    ..d()
                },
            ),
            (
                "delete_status=ok_empty",
                JsmDialect {
                    delete_status: DeleteStatus::OkEmpty,
                    ..d()
                },
            ),
            (
                "delete_status=ok_json",
                JsmDialect {
                    delete_status: DeleteStatus::OkJson,
                    ..d()
                },
            ),
            (
                "past_overrides=all",
                JsmDialect {
                    past_overrides: PastOverrides::All,
                    ..d()
                },
            ),
            (
                "rotation_ids_omitted=all_rotations_listed",
                JsmDialect {
                    rotation_ids_omitted: RotationIdsOmitted::AllRotationsListed,
                    ..d()
                },
            ),
            (
                "rotation_ids_omitted=refused",
                JsmDialect {
                    rotation_ids_omitted: RotationIdsOmitted::Refused,
                    ..d()
                },
            ),
            (
                "page_size=capped",
                JsmDialect {
                    page_size: PageSize::CappedAt(3),
                    ..d()
                },
            ),
            (
                "page_size=refused_above",
                JsmDialect {
                    page_size: PageSize::RefusedAbove(25),
                    ..d()
                },
            ),
            (
                "forbidden_body=message",
                JsmDialect {
                    forbidden_body: ForbiddenBody::Message,
                    ..d()
                },
            ),
            (
                "forbidden_body=empty",
                JsmDialect {
                    forbidden_body: ForbiddenBody::Empty,
                    ..d()
                },
            ),
            (
                "rate_limit=refused",
                JsmDialect {
                    rate_limit: RateLimitReading::Refused(200),
                    ..d()
                },
            ),
            (
                "rate_limit=delayed",
                JsmDialect {
                    rate_limit: RateLimitReading::Delayed(200),
                    ..d()
                },
            ),
            (
                "past_end=refuse",
                JsmDialect {
                    past_end: PastEnd::Refuse,
                    ..d()
                },
            ),
        ]
    }

    /// The setting of a switch, by the switch's name (`None` for an unknown switch).
    pub fn reading(&self, switch: &str) -> Option<&'static str> {
        Some(match switch {
            "update_body" => self.update_body.name(),
            "delete_status" => self.delete_status.name(),
            "past_overrides" => self.past_overrides.name(),
            "rotation_ids_omitted" => self.rotation_ids_omitted.name(),
            "page_size" => self.page_size.name(),
            "forbidden_body" => self.forbidden_body.name(),
            "rate_limit" => self.rate_limit.name(),
            "past_end" => self.past_end.name(),
            _ => return None,
        })
    }
}

impl fmt::Display for JsmDialect {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let settings: Vec<String> = JsmDialect::SWITCHES
            .iter()
            .filter_map(|s| self.reading(s).map(|r| format!("{s}={r}")))
            .collect();
        f.write_str(&settings.join(" "))
    }
}

/// How Atlassian's migration from Opsgenie carried a schedule over (reference, last paragraph:
/// "whether migrated Opsgenie schedules keep their ids, and migrated overrides their aliases, in JSM
/// is UNCONFIRMED"). [`super::JsmSimulator::import_migrated`] takes it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct MigrationDialect {
    /// Whether overrides keep their Opsgenie alias.
    pub aliases: Carried,
    /// Whether schedules keep their Opsgenie id.
    pub schedule_ids: Carried,
}

/// Whether an identifier survives the migration.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Carried {
    /// Kept as it was in Opsgenie.
    #[default]
    Kept,
    /// Replaced by a new one JSM chooses.
    Replaced,
}

impl MigrationDialect {
    /// Every combination, named `aliases=<kept|replaced>,schedule_ids=<kept|replaced>`.
    pub fn variants() -> Vec<(&'static str, MigrationDialect)> {
        use Carried::{Kept, Replaced};
        let m = |aliases, schedule_ids| MigrationDialect {
            aliases,
            schedule_ids,
        };
        vec![
            ("aliases=kept,schedule_ids=kept", m(Kept, Kept)),
            ("aliases=kept,schedule_ids=replaced", m(Kept, Replaced)),
            ("aliases=replaced,schedule_ids=kept", m(Replaced, Kept)),
            (
                "aliases=replaced,schedule_ids=replaced",
                m(Replaced, Replaced),
            ),
        ]
    }
}

/// How long a refused request is asked to wait, in whole seconds as `Retry-After` says it.
pub(crate) fn retry_after_seconds(wait: Duration) -> u64 {
    let whole = wait.as_secs();
    if wait.subsec_nanos() > 0 {
        whole + 1
    } else {
        whole.max(1)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn variants_are_the_default_and_one_switch_each() {
        let variants = JsmDialect::variants();
        let default = JsmDialect::default();
        for (name, dialect) in &variants[1..] {
            let (switch, setting) = name.split_once('=').unwrap();
            assert_eq!(dialect.reading(switch), Some(setting), "{name}");
            let differing = JsmDialect::SWITCHES
                .iter()
                .filter(|s| dialect.reading(s) != default.reading(s))
                .count();
            assert_eq!(
                differing, 1,
                "{name} differs from the default in one switch"
            );
        }
        // Every setting of every switch appears.
        let settings: std::collections::HashSet<String> = variants
            .iter()
            .flat_map(|(_, d)| {
                JsmDialect::SWITCHES.map(|s| format!("{s}={}", d.reading(s).unwrap_or("?")))
            })
            .collect();
        assert_eq!(settings.len(), 3 + 3 + 2 + 3 + 3 + 3 + 3 + 2);
        assert_eq!(default.to_string().split(' ').count(), 8);
        assert_eq!(MigrationDialect::variants().len(), 4);
        assert_eq!(retry_after_seconds(Duration::from_millis(1)), 1);
        assert_eq!(retry_after_seconds(Duration::from_millis(1500)), 2);
        assert_eq!(retry_after_seconds(Duration::ZERO), 1);
    }
}
