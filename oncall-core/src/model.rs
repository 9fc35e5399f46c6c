//! The host-side rota model: members, roles, shifts and schedules.

use std::collections::HashSet;
use std::fmt;

use chrono::{DateTime, Utc};
use chrono_tz::Tz;
use serde::{Deserialize, Serialize};

use crate::error::ValidationError;

/// An email address, the identity of a person across systems. Compared case-insensitively:
/// it is stored lower-cased. Cheap to clone (shared), since every span and shift carries one.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct Email(std::sync::Arc<str>);

impl Email {
    /// Parses and normalises an email address (trimmed, lower-cased).
    ///
    /// ```
    /// use oncall_core::Email;
    /// let a = Email::parse(" Ada@Example.COM ").unwrap();
    /// assert_eq!(a.as_str(), "ada@example.com");
    /// assert!(Email::parse("not-an-email").is_err());
    /// ```
    pub fn parse(value: &str) -> Result<Email, ValidationError> {
        let trimmed = value.trim();
        let invalid = |reason| ValidationError::InvalidEmail {
            value: value.to_owned(),
            reason,
        };
        if trimmed.is_empty() {
            return Err(invalid("empty"));
        }
        if trimmed.chars().any(char::is_whitespace) {
            return Err(invalid("contains white space"));
        }
        let (local, domain) = trimmed.split_once('@').ok_or_else(|| invalid("no '@'"))?;
        if local.is_empty() || domain.is_empty() || domain.contains('@') {
            return Err(invalid(
                "expected exactly one '@' between a local part and a domain",
            ));
        }
        Ok(Email(trimmed.to_lowercase().into()))
    }

    /// The normalised address.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for Email {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl TryFrom<String> for Email {
    type Error = ValidationError;
    fn try_from(value: String) -> Result<Self, Self::Error> {
        Email::parse(&value)
    }
}

impl From<Email> for String {
    fn from(value: Email) -> String {
        value.0.to_string()
    }
}

impl std::str::FromStr for Email {
    type Err = ValidationError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Email::parse(s)
    }
}

/// A person who can be on call.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Member {
    /// Identity across systems.
    pub email: Email,
    /// Display name.
    pub name: String,
}

impl Member {
    /// A member with a display name.
    pub fn new(email: Email, name: impl Into<String>) -> Member {
        Member {
            email,
            name: name.into(),
        }
    }
}

/// A role by position: 0 is the primary, 1 the secondary, 2 the tertiary, and so on.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(transparent)]
pub struct RoleIndex(pub usize);

impl RoleIndex {
    /// The primary role.
    pub const PRIMARY: RoleIndex = RoleIndex(0);
    /// The secondary role.
    pub const SECONDARY: RoleIndex = RoleIndex(1);
    /// The tertiary role.
    pub const TERTIARY: RoleIndex = RoleIndex(2);

    /// `primary`, `secondary`, `tertiary`, then `role 4`, `role 5` ...
    ///
    /// ```
    /// use oncall_core::RoleIndex;
    /// assert_eq!(RoleIndex(1).default_name(), "secondary");
    /// assert_eq!(RoleIndex(3).default_name(), "role 4");
    /// ```
    pub fn default_name(self) -> String {
        match self.0 {
            0 => "primary".to_owned(),
            1 => "secondary".to_owned(),
            2 => "tertiary".to_owned(),
            n => format!("role {}", n + 1),
        }
    }

    /// Default names for the first `count` roles.
    pub fn default_names(count: usize) -> Vec<String> {
        (0..count).map(|i| RoleIndex(i).default_name()).collect()
    }
}

impl fmt::Display for RoleIndex {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.default_name())
    }
}

/// A half-open interval `[start, end)` of UTC instants.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(try_from = "WindowRepr")]
pub struct Window {
    start: DateTime<Utc>,
    end: DateTime<Utc>,
}

#[derive(Deserialize)]
struct WindowRepr {
    start: DateTime<Utc>,
    end: DateTime<Utc>,
}

impl TryFrom<WindowRepr> for Window {
    type Error = ValidationError;
    fn try_from(value: WindowRepr) -> Result<Self, Self::Error> {
        Window::new(value.start, value.end)
    }
}

impl Window {
    /// A window; refuses `end <= start`.
    pub fn new(start: DateTime<Utc>, end: DateTime<Utc>) -> Result<Window, ValidationError> {
        if end <= start {
            return Err(ValidationError::EmptyWindow { start, end });
        }
        Ok(Window { start, end })
    }

    /// First instant inside.
    pub fn start(&self) -> DateTime<Utc> {
        self.start
    }

    /// First instant after.
    pub fn end(&self) -> DateTime<Utc> {
        self.end
    }
}

/// One slice of time with an optional assignee per role. `[start, end)` in UTC.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Shift {
    /// First instant of the shift.
    pub start: DateTime<Utc>,
    /// First instant after the shift.
    pub end: DateTime<Utc>,
    /// One entry per role of the schedule; `None` leaves the role empty.
    pub assignees: Vec<Option<Email>>,
}

impl Shift {
    /// A shift.
    pub fn new(start: DateTime<Utc>, end: DateTime<Utc>, assignees: Vec<Option<Email>>) -> Shift {
        Shift {
            start,
            end,
            assignees,
        }
    }

    /// The assignee of a role, if the role exists and is filled.
    pub fn assignee(&self, role: RoleIndex) -> Option<&Email> {
        self.assignees.get(role.0).and_then(Option::as_ref)
    }
}

/// Identifier of a host schedule, chosen by the host.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(transparent)]
pub struct ScheduleId(pub String);

impl fmt::Display for ScheduleId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// A host schedule: who holds which role when. Always valid: shifts sorted, non-overlapping,
/// non-empty, one assignee slot per role, every assignee a member.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(try_from = "ScheduleRepr")]
pub struct Schedule {
    id: ScheduleId,
    #[serde(with = "tz_serde")]
    zone: Tz,
    roles: Vec<String>,
    members: Vec<Member>,
    shifts: Vec<Shift>,
}

#[derive(Deserialize)]
struct ScheduleRepr {
    id: ScheduleId,
    #[serde(with = "tz_serde")]
    zone: Tz,
    roles: Vec<String>,
    members: Vec<Member>,
    shifts: Vec<Shift>,
}

impl TryFrom<ScheduleRepr> for Schedule {
    type Error = ValidationError;
    fn try_from(r: ScheduleRepr) -> Result<Self, Self::Error> {
        Schedule::new(r.id, r.zone, r.roles, r.members, r.shifts)
    }
}

/// Serde for a time zone by IANA name.
pub(crate) mod tz_serde {
    use chrono_tz::Tz;
    use serde::{Deserialize, Deserializer, Serializer};

    pub fn serialize<S: Serializer>(tz: &Tz, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(tz.name())
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Tz, D::Error> {
        let name = String::deserialize(d)?;
        name.parse::<Tz>()
            .map_err(|_| serde::de::Error::custom(format!("unknown IANA time zone {name:?}")))
    }
}

impl Schedule {
    /// Builds a schedule, validating every shift.
    ///
    /// ```
    /// use chrono::{TimeZone, Utc};
    /// use oncall_core::{Email, Member, Schedule, ScheduleId, Shift};
    ///
    /// let ada = Email::parse("ada@example.com").unwrap();
    /// let t = |h| Utc.with_ymd_and_hms(2024, 3, 1, h, 0, 0).unwrap();
    /// let schedule = Schedule::new(
    ///     ScheduleId("ops".into()),
    ///     chrono_tz::Europe::Berlin,
    ///     vec!["primary".into()],
    ///     vec![Member::new(ada.clone(), "Ada")],
    ///     vec![Shift::new(t(8), t(20), vec![Some(ada)])],
    /// )
    /// .unwrap();
    /// assert_eq!(schedule.shifts().len(), 1);
    /// ```
    pub fn new(
        id: ScheduleId,
        zone: Tz,
        roles: Vec<String>,
        members: Vec<Member>,
        shifts: Vec<Shift>,
    ) -> Result<Schedule, ValidationError> {
        if roles.is_empty() {
            return Err(ValidationError::NoRoles);
        }
        if let Some(index) = roles.iter().position(|r| r.trim().is_empty()) {
            return Err(ValidationError::EmptyRoleName { index });
        }
        let mut seen = HashSet::new();
        for m in &members {
            if !seen.insert(&m.email) {
                return Err(ValidationError::DuplicateMember {
                    email: m.email.clone(),
                });
            }
        }
        validate_shifts(&shifts, roles.len(), 0, None, &seen)?;
        Ok(Schedule {
            id,
            zone,
            roles,
            members,
            shifts,
        })
    }

    /// The host's identifier.
    pub fn id(&self) -> &ScheduleId {
        &self.id
    }

    /// The zone whose civil time the rota follows.
    pub fn zone(&self) -> Tz {
        self.zone
    }

    /// Role names, by position.
    pub fn roles(&self) -> &[String] {
        &self.roles
    }

    /// Members who may be assigned.
    pub fn members(&self) -> &[Member] {
        &self.members
    }

    /// Shifts, sorted and non-overlapping.
    pub fn shifts(&self) -> &[Shift] {
        &self.shifts
    }

    /// The member with this email.
    pub fn member(&self, email: &Email) -> Option<&Member> {
        self.members.iter().find(|m| &m.email == email)
    }

    fn check_role(&self, role: RoleIndex) -> Result<(), ValidationError> {
        if role.0 >= self.roles.len() {
            return Err(ValidationError::NoSuchRole {
                role: role.0,
                roles: self.roles.len(),
            });
        }
        Ok(())
    }

    fn shift_index(&self, start: DateTime<Utc>) -> Result<usize, ValidationError> {
        self.shifts
            .binary_search_by(|s| s.start.cmp(&start))
            .map_err(|_| ValidationError::NoSuchShift { start })
    }

    /// Swaps the assignees of `role` between the shifts starting at `a` and `b` (a host-side swap).
    pub fn swap_assignees(
        &mut self,
        role: RoleIndex,
        a: DateTime<Utc>,
        b: DateTime<Utc>,
    ) -> Result<(), ValidationError> {
        self.check_role(role)?;
        let (i, j) = (self.shift_index(a)?, self.shift_index(b)?);
        let first = self.shifts[i].assignees[role.0].take();
        let second = std::mem::replace(&mut self.shifts[j].assignees[role.0], first);
        self.shifts[i].assignees[role.0] = second;
        Ok(())
    }

    /// Replaces (or with `None` clears) the assignee of `role` in the shift starting at `start`.
    pub fn replace_assignee(
        &mut self,
        role: RoleIndex,
        start: DateTime<Utc>,
        assignee: Option<Email>,
    ) -> Result<(), ValidationError> {
        self.check_role(role)?;
        let i = self.shift_index(start)?;
        if let Some(email) = &assignee {
            if self.member(email).is_none() {
                return Err(ValidationError::UnknownAssignee {
                    index: i,
                    role: role.0,
                    email: email.clone(),
                });
            }
        }
        self.shifts[i].assignees[role.0] = assignee;
        Ok(())
    }

    /// Appends shifts after the last one (extending the horizon). All or nothing: on error the schedule
    /// is unchanged.
    pub fn extend(&mut self, shifts: Vec<Shift>) -> Result<(), ValidationError> {
        let known: HashSet<&Email> = self.members.iter().map(|m| &m.email).collect();
        validate_shifts(
            &shifts,
            self.roles.len(),
            self.shifts.len(),
            self.shifts.last(),
            &known,
        )?;
        self.shifts.extend(shifts);
        Ok(())
    }
}

fn validate_shifts<'a>(
    shifts: &'a [Shift],
    roles: usize,
    first_index: usize,
    mut previous: Option<&'a Shift>,
    members: &HashSet<&Email>,
) -> Result<(), ValidationError> {
    for (offset, shift) in shifts.iter().enumerate() {
        let index = first_index + offset;
        if shift.end <= shift.start {
            return Err(ValidationError::EmptyShift {
                index,
                start: shift.start,
                end: shift.end,
            });
        }
        for (edge, value) in [("start", shift.start), ("end", shift.end)] {
            if value.timestamp_subsec_nanos() != 0 {
                return Err(ValidationError::SubSecondInstant {
                    what: format!("shift {index} {edge}"),
                    value,
                });
            }
        }
        if shift.assignees.len() != roles {
            return Err(ValidationError::AssigneeCount {
                index,
                expected: roles,
                found: shift.assignees.len(),
            });
        }
        for (role, email) in shift.assignees.iter().enumerate() {
            if let Some(email) = email {
                if !members.contains(email) {
                    return Err(ValidationError::UnknownAssignee {
                        index,
                        role,
                        email: email.clone(),
                    });
                }
            }
        }
        if let Some(prev) = previous {
            if shift.start < prev.start {
                return Err(ValidationError::UnsortedShifts {
                    index,
                    start: shift.start,
                    previous_start: prev.start,
                });
            }
            if shift.start < prev.end {
                return Err(ValidationError::OverlappingShifts {
                    index,
                    start: shift.start,
                    previous_end: prev.end,
                });
            }
        }
        previous = Some(shift);
    }
    Ok(())
}
