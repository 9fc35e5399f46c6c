//! The one error type of the core, and the validation errors of the model.

use std::time::Duration;

use chrono::{DateTime, Utc};

use crate::model::Email;

/// What went wrong, in kinds a host application can act on.
///
/// Adapters keep their own private errors and convert them into this enum; messages carry the vendor's
/// words where there are any, never an API key.
#[non_exhaustive]
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum Error {
    /// The input given to the library is invalid; the inner error says what and where.
    #[error("invalid input: {0}")]
    InvalidInput(#[from] ValidationError),
    /// The vendor did not accept the API key at all.
    #[error("authentication failed: {message}")]
    Unauthenticated {
        /// The vendor's message.
        message: String,
    },
    /// The key is valid but may not do this: typically a read-only key asked to write. Never retried.
    #[error(
        "permission denied: the API key is read-only or lacks rights for this call: {message}"
    )]
    PermissionDenied {
        /// The vendor's message.
        message: String,
    },
    /// The account may not look people up (JSM: the site's user search answered 403, the account
    /// lacks the "Browse users and groups" permission), so no person's e-mail can be turned into
    /// the vendor's id. Not a refused write (R8) and not an unknown member (R5): every write that
    /// names a person fails until the permission is granted. Never retried.
    #[error(
        "people lookup denied: the account may not look people up (grant it the Browse users \
         and groups permission): {message}"
    )]
    PeopleLookupDenied {
        /// The vendor's message.
        message: String,
    },
    /// A schedule, override or other resource does not exist (or is invisible to this key).
    #[error("not found: {resource}: {message}")]
    NotFound {
        /// What was looked for.
        resource: Resource,
        /// The vendor's message.
        message: String,
    },
    /// The vendor does not know a person the host assigned.
    #[error("unknown member {email}: {message}")]
    UnknownMember {
        /// The member's email.
        email: Email,
        /// The vendor's message.
        message: String,
    },
    /// The vendor throttled the key; `retry_after` is its hint when it gave one.
    #[error("rate limited by the vendor: {message}")]
    RateLimited {
        /// How long the vendor asked us to wait.
        retry_after: Option<Duration>,
        /// The vendor's message.
        message: String,
    },
    /// A failure that may pass: timeouts, 5xx, lost connections. Whether a write landed is unknown.
    #[error("transient vendor failure: {message}")]
    Transient {
        /// What happened.
        message: String,
    },
    /// The vendor answered something we could not understand.
    #[error("invalid vendor response: {message}")]
    InvalidResponse {
        /// What was wrong with it.
        message: String,
    },
    /// The vendor refused a well-formed request (e.g. "override must end in the future").
    #[error("rejected by the vendor: {message}")]
    Rejected {
        /// The vendor's message.
        message: String,
    },
    /// Someone else changed the same thing first (state store compare-and-swap, duplicate alias).
    #[error("conflict: {message}")]
    Conflict {
        /// What conflicted.
        message: String,
    },
    /// A state store holds something it cannot read (a corrupt file or row, an unknown format
    /// version). Nothing is replaced or emptied: a person must look.
    #[error("corrupt state: {message}")]
    CorruptState {
        /// What is unreadable, and where (the file, the table and destination).
        message: String,
    },
    /// The provider cannot do this at all (e.g. in-place update on PagerDuty).
    #[error("unsupported: {message}")]
    Unsupported {
        /// What is unsupported and, where useful, what to do instead.
        message: String,
    },
}

impl Error {
    /// Whether the error says the key lacks rights (R8); such failures are never retried.
    pub fn is_permission_denied(&self) -> bool {
        matches!(self, Error::PermissionDenied { .. })
    }

    /// A short, stable name of the error's kind for machine-readable output (`not_found`,
    /// `permission_denied`, ...).
    pub fn kind(&self) -> &'static str {
        match self {
            Error::InvalidInput(_) => "invalid_input",
            Error::Unauthenticated { .. } => "unauthenticated",
            Error::PermissionDenied { .. } => "permission_denied",
            Error::PeopleLookupDenied { .. } => "people_lookup_denied",
            Error::NotFound { .. } => "not_found",
            Error::UnknownMember { .. } => "unknown_member",
            Error::RateLimited { .. } => "rate_limited",
            Error::Transient { .. } => "transient",
            Error::InvalidResponse { .. } => "invalid_response",
            Error::Rejected { .. } => "rejected",
            Error::Conflict { .. } => "conflict",
            Error::CorruptState { .. } => "corrupt_state",
            Error::Unsupported { .. } => "unsupported",
        }
    }

    /// Whether trying the same call again later could succeed.
    pub fn is_transient(&self) -> bool {
        matches!(self, Error::Transient { .. } | Error::RateLimited { .. })
    }
}

/// What a [`Error::NotFound`] is about.
#[non_exhaustive]
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Resource {
    /// A vendor schedule, by id.
    Schedule(String),
    /// An override, by id or alias.
    Override(String),
    /// Anything else, described.
    Other(String),
}

impl std::fmt::Display for Resource {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Resource::Schedule(id) => write!(f, "schedule {id}"),
            Resource::Override(id) => write!(f, "override {id}"),
            Resource::Other(what) => f.write_str(what),
        }
    }
}

/// Input that the model refuses, with enough detail to find the offending item.
#[non_exhaustive]
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ValidationError {
    /// An email address is malformed.
    #[error("invalid email {value:?}: {reason}")]
    InvalidEmail {
        /// The input.
        value: String,
        /// Why it was refused.
        reason: &'static str,
    },
    /// A schedule declares no role.
    #[error("a schedule needs at least one role")]
    NoRoles,
    /// A role name is empty.
    #[error("role {index} has an empty name")]
    EmptyRoleName {
        /// Position of the role.
        index: usize,
    },
    /// Two members share an email.
    #[error("member {email} is listed twice")]
    DuplicateMember {
        /// The repeated email.
        email: Email,
    },
    /// A shift does not end after it starts.
    #[error("shift {index} ends at {end}, not after its start {start}")]
    EmptyShift {
        /// Position of the shift.
        index: usize,
        /// Its start.
        start: DateTime<Utc>,
        /// Its end.
        end: DateTime<Utc>,
    },
    /// A shift starts before the previous one.
    #[error("shift {index} starts at {start}, before shift {} which starts at {previous_start}: shifts must be sorted", index - 1)]
    UnsortedShifts {
        /// Position of the shift.
        index: usize,
        /// Its start.
        start: DateTime<Utc>,
        /// The previous shift's start.
        previous_start: DateTime<Utc>,
    },
    /// A shift starts before the previous one ends.
    #[error("shift {index} starts at {start}, before shift {} ends at {previous_end}: shifts must not overlap", index - 1)]
    OverlappingShifts {
        /// Position of the shift.
        index: usize,
        /// Its start.
        start: DateTime<Utc>,
        /// The previous shift's end.
        previous_end: DateTime<Utc>,
    },
    /// A shift has a different number of assignees than the schedule has roles.
    #[error("shift {index} has {found} assignees, but the schedule has {expected} roles")]
    AssigneeCount {
        /// Position of the shift.
        index: usize,
        /// The schedule's role count.
        expected: usize,
        /// The shift's assignee count.
        found: usize,
    },
    /// A shift names someone who is not a member of the schedule.
    #[error("shift {index}, role {role}: {email} is not a member of the schedule")]
    UnknownAssignee {
        /// Position of the shift.
        index: usize,
        /// Position of the role.
        role: usize,
        /// The unknown email.
        email: Email,
    },
    /// A role position beyond the schedule's roles.
    #[error("role {role} does not exist: the schedule has {roles} roles")]
    NoSuchRole {
        /// The requested role.
        role: usize,
        /// How many roles there are.
        roles: usize,
    },
    /// No shift starts at the given instant.
    #[error("no shift starts at {start}")]
    NoSuchShift {
        /// The instant asked for.
        start: DateTime<Utc>,
    },
    /// A desired span that cannot be planned.
    #[error("span {index} is invalid: {reason}")]
    InvalidSpan {
        /// Position of the span.
        index: usize,
        /// Why.
        reason: &'static str,
    },
    /// A time window whose end is not after its start.
    #[error("window ends at {end}, not after its start {start}")]
    EmptyWindow {
        /// Its start.
        start: DateTime<Utc>,
        /// Its end.
        end: DateTime<Utc>,
    },
    /// A date outside the years this library computes with (1000-9000).
    #[error("{what} {value} is outside the supported years 1000 to 9000")]
    OutOfRange {
        /// What the value is.
        what: &'static str,
        /// The value, printed.
        value: String,
    },
    /// A rotation's turn length is zero.
    #[error("rotation {rotation:?}: length must be at least 1")]
    ZeroRotationLength {
        /// The rotation's name.
        rotation: String,
    },
    /// A rotation has no participant.
    #[error("rotation {rotation:?} has no participant")]
    NoParticipants {
        /// The rotation's name.
        rotation: String,
    },
    /// A rotation ends before (or when) it starts.
    #[error("rotation {rotation:?} ends at {end}, not after its start {start}")]
    RotationEndsBeforeStart {
        /// The rotation's name.
        rotation: String,
        /// Local start.
        start: chrono::NaiveDateTime,
        /// Local end.
        end: chrono::NaiveDateTime,
    },
    /// A restriction's hour or minute is out of range.
    #[error("restriction time {hour:02}:{minute:02} is out of range (00:00 to 24:00)")]
    RestrictionTime {
        /// The hour given.
        hour: u32,
        /// The minute given.
        minute: u32,
    },
    /// An API key that no vendor would issue (empty, or with white space or control characters).
    #[error("the API key is empty or contains white space or control characters")]
    InvalidApiKey,
    /// A base URL that is not `http://` or `https://`.
    #[error("base URL {value:?} must start with http:// or https://")]
    InvalidBaseUrl {
        /// The URL given.
        value: String,
    },
    /// Two destinations of one sync write to the same vendor schedule of one connection: each
    /// would take the other's overrides for foreign ones and delete them.
    #[error(
        "destinations {first} and {second} both export to schedule {schedule} of connection \
         {connection}: give each vendor schedule one destination (one role)"
    )]
    SharedVendorSchedule {
        /// The first destination.
        first: crate::state::DestinationId,
        /// The second destination.
        second: crate::state::DestinationId,
        /// Their connection.
        connection: crate::sync::ConnectionId,
        /// The vendor schedule they share.
        schedule: crate::provider::VendorScheduleId,
    },
    /// Two destinations of one sync write to the same vendor schedule of one account through two
    /// connections (two keys to one account): each would delete the other's overrides as foreign.
    #[error(transparent)]
    SharedVendorScheduleAcrossConnections(Box<SharedAcrossConnections>),
    /// One destination id given twice with different descriptions (two rows of a host for one
    /// destination): which one is meant cannot be told.
    #[error(
        "destination {destination} is given twice with different connections, vendor schedules \
         or roles: give each destination id once"
    )]
    DuplicateDestination {
        /// The destination.
        destination: crate::state::DestinationId,
    },
    /// A sync (or retirement) of a destination through another connection or vendor schedule
    /// than the one its mark and ledger belong to: the ledger's ids would be taken for the other
    /// side's. Nothing was sent or saved.
    #[error(transparent)]
    LedgerElsewhere(Box<LedgerElsewhere>),
    /// An instant with a fraction of a second: the vendors keep whole seconds, so the library
    /// sends nothing finer.
    #[error("{what} {value} has a fraction of a second: instants must be whole seconds")]
    SubSecondInstant {
        /// What the instant is (e.g. "shift 3 start").
        what: String,
        /// The instant.
        value: DateTime<Utc>,
    },
    /// A restriction's duration is zero or longer than its period.
    #[error("restriction duration of {seconds} s is outside 1 s to {max_seconds} s")]
    RestrictionDuration {
        /// The duration given.
        seconds: u32,
        /// The longest allowed (a day or a week).
        max_seconds: u32,
    },
}

/// Two destinations on one vendor schedule of one account, through two connections
/// ([`ValidationError::SharedVendorScheduleAcrossConnections`]).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error(
    "destinations {first} (connection {first_connection}) and {second} (connection \
     {second_connection}) both export to schedule {schedule} of the same account ({account}): give \
     each vendor schedule one destination (one role)"
)]
pub struct SharedAcrossConnections {
    /// The first destination.
    pub first: crate::state::DestinationId,
    /// Its connection.
    pub first_connection: crate::sync::ConnectionId,
    /// The second destination.
    pub second: crate::state::DestinationId,
    /// Its connection.
    pub second_connection: crate::sync::ConnectionId,
    /// The account both connections reach ([`crate::Provider::account`]).
    pub account: String,
    /// The vendor schedule they share.
    pub schedule: crate::provider::VendorScheduleId,
}

/// A destination synced away from its ledger ([`ValidationError::LedgerElsewhere`]).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error(
    "destination {destination}: its mark and ledger belong to {home}, not {asked}: sync it \
     through its connection, or move it there first (migrate)"
)]
pub struct LedgerElsewhere {
    /// The destination.
    pub destination: crate::state::DestinationId,
    /// Where its mark and ledger belong.
    pub home: crate::state::LedgerHome,
    /// Where the sync was asked to go.
    pub asked: crate::state::LedgerHome,
}
