//! Every validation error, with the input that triggers it.

#![allow(clippy::unwrap_used)] // tests: a panic is the failure report

use chrono::{DateTime, NaiveDate, TimeZone, Utc, Weekday};
use oncall_core::{
    desired_spans, expand_rotation, Email, Member, Participant, Restriction, RoleIndex, Rotation,
    RotationUnit, Schedule, ScheduleId, Shift, ValidationError, Window,
};

fn t(h: u32) -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2024, 5, 1, h, 0, 0).unwrap()
}

fn ada() -> Email {
    Email::parse("ada@example.com").unwrap()
}

fn schedule(
    roles: Vec<&str>,
    members: Vec<Member>,
    shifts: Vec<Shift>,
) -> Result<Schedule, ValidationError> {
    Schedule::new(
        ScheduleId("s".into()),
        chrono_tz::Europe::Berlin,
        roles.into_iter().map(String::from).collect(),
        members,
        shifts,
    )
}

fn members() -> Vec<Member> {
    vec![Member::new(ada(), "Ada")]
}

#[test]
fn emails() {
    for (input, reason) in [
        ("", "empty"),
        ("   ", "empty"),
        ("a b@example.com", "contains white space"),
        ("example.com", "no '@'"),
        (
            "@example.com",
            "expected exactly one '@' between a local part and a domain",
        ),
        (
            "ada@",
            "expected exactly one '@' between a local part and a domain",
        ),
        (
            "a@b@c",
            "expected exactly one '@' between a local part and a domain",
        ),
    ] {
        assert_eq!(
            Email::parse(input),
            Err(ValidationError::InvalidEmail {
                value: input.into(),
                reason
            }),
            "{input:?}"
        );
    }
    assert_eq!(
        Email::parse("Ada@Example.com").unwrap(),
        ada(),
        "case-insensitive"
    );
    let json: Result<Email, _> = serde_json::from_str("\"not an email\"");
    assert!(json.is_err(), "serde validates too");
}

#[test]
fn schedule_shape() {
    assert_eq!(
        schedule(vec![], members(), vec![]),
        Err(ValidationError::NoRoles)
    );
    assert_eq!(
        schedule(vec!["primary", " "], members(), vec![]),
        Err(ValidationError::EmptyRoleName { index: 1 })
    );
    assert_eq!(
        schedule(
            vec!["primary"],
            vec![Member::new(ada(), "A"), Member::new(ada(), "B")],
            vec![]
        ),
        Err(ValidationError::DuplicateMember { email: ada() })
    );
}

#[test]
fn shifts() {
    let ok = |s, e| Shift::new(t(s), t(e), vec![Some(ada())]);
    assert_eq!(
        schedule(vec!["primary"], members(), vec![ok(1, 2), ok(3, 3)]),
        Err(ValidationError::EmptyShift {
            index: 1,
            start: t(3),
            end: t(3)
        })
    );
    assert_eq!(
        schedule(vec!["primary"], members(), vec![ok(5, 6), ok(1, 2)]),
        Err(ValidationError::UnsortedShifts {
            index: 1,
            start: t(1),
            previous_start: t(5)
        })
    );
    assert_eq!(
        schedule(vec!["primary"], members(), vec![ok(1, 4), ok(3, 5)]),
        Err(ValidationError::OverlappingShifts {
            index: 1,
            start: t(3),
            previous_end: t(4)
        })
    );
    assert_eq!(
        schedule(vec!["primary", "secondary"], members(), vec![ok(1, 2)]),
        Err(ValidationError::AssigneeCount {
            index: 0,
            expected: 2,
            found: 1
        })
    );
    let stranger = Email::parse("bob@example.com").unwrap();
    assert_eq!(
        schedule(
            vec!["primary"],
            members(),
            vec![Shift::new(t(1), t(2), vec![Some(stranger.clone())])]
        ),
        Err(ValidationError::UnknownAssignee {
            index: 0,
            role: 0,
            email: stranger
        })
    );
    let json = r#"{"id":"s","zone":"Europe/Berlin","roles":["primary"],"members":[],
        "shifts":[{"start":"2024-05-01T02:00:00Z","end":"2024-05-01T01:00:00Z","assignees":[null]}]}"#;
    let err = serde_json::from_str::<Schedule>(json)
        .unwrap_err()
        .to_string();
    assert!(err.contains("shift 0 ends at"), "{err}");
    let json = json.replace("Europe/Berlin", "Mars/Olympus");
    let err = serde_json::from_str::<Schedule>(&json)
        .unwrap_err()
        .to_string();
    assert!(err.contains("unknown IANA time zone"), "{err}");
}

#[test]
fn host_edits() {
    let mut s = schedule(
        vec!["primary"],
        members(),
        vec![
            Shift::new(t(1), t(2), vec![Some(ada())]),
            Shift::new(t(2), t(3), vec![None]),
        ],
    )
    .unwrap();
    assert_eq!(
        s.swap_assignees(RoleIndex(1), t(1), t(2)),
        Err(ValidationError::NoSuchRole { role: 1, roles: 1 })
    );
    assert_eq!(
        s.replace_assignee(RoleIndex::PRIMARY, t(7), None),
        Err(ValidationError::NoSuchShift { start: t(7) })
    );
    let stranger = Email::parse("bob@example.com").unwrap();
    assert_eq!(
        s.replace_assignee(RoleIndex::PRIMARY, t(2), Some(stranger.clone())),
        Err(ValidationError::UnknownAssignee {
            index: 1,
            role: 0,
            email: stranger
        })
    );
    s.swap_assignees(RoleIndex::PRIMARY, t(1), t(2)).unwrap();
    assert_eq!(s.shifts()[0].assignees, vec![None]);
    assert_eq!(s.shifts()[1].assignees, vec![Some(ada())]);
    assert_eq!(
        s.extend(vec![Shift::new(t(2), t(4), vec![None])]),
        Err(ValidationError::OverlappingShifts {
            index: 2,
            start: t(2),
            previous_end: t(3)
        })
    );
    assert_eq!(s.shifts().len(), 2, "a refused extension changes nothing");
    s.extend(vec![Shift::new(t(3), t(4), vec![Some(ada())])])
        .unwrap();
    assert_eq!(s.shifts().len(), 3);
    assert_eq!(
        desired_spans(&s, RoleIndex(2), t(0), None),
        Err(ValidationError::NoSuchRole { role: 2, roles: 1 })
    );
}

#[test]
fn windows() {
    assert_eq!(
        Window::new(t(2), t(2)),
        Err(ValidationError::EmptyWindow {
            start: t(2),
            end: t(2)
        })
    );
    assert!(serde_json::from_str::<Window>(
        r#"{"start":"2024-05-01T02:00:00Z","end":"2024-05-01T01:00:00Z"}"#
    )
    .is_err());
}

fn start() -> chrono::NaiveDateTime {
    NaiveDate::from_ymd_opt(2024, 5, 1)
        .unwrap()
        .and_hms_opt(9, 0, 0)
        .unwrap()
}

fn expand(r: &Rotation) -> Result<Vec<oncall_core::OnCallPeriod>, ValidationError> {
    expand_rotation(r, chrono_tz::UTC, Window::new(t(0), t(23)).unwrap())
}

#[test]
fn rotations() {
    let who = vec![Participant::Member(ada())];
    let r = Rotation::new("zero", RotationUnit::Daily, 0, start(), who.clone());
    assert_eq!(
        expand(&r),
        Err(ValidationError::ZeroRotationLength {
            rotation: "zero".into()
        })
    );
    let r = Rotation::new("empty", RotationUnit::Daily, 1, start(), vec![]);
    assert_eq!(
        expand(&r),
        Err(ValidationError::NoParticipants {
            rotation: "empty".into()
        })
    );
    let mut r = Rotation::new("ended", RotationUnit::Daily, 1, start(), who.clone());
    r.end = Some(start());
    assert_eq!(
        expand(&r),
        Err(ValidationError::RotationEndsBeforeStart {
            rotation: "ended".into(),
            start: start(),
            end: start()
        })
    );
    let mut r = Rotation::new("far", RotationUnit::Daily, 1, start(), who.clone());
    r.start = NaiveDate::from_ymd_opt(9999, 1, 1)
        .unwrap()
        .and_hms_opt(0, 0, 0)
        .unwrap();
    assert!(matches!(
        expand(&r),
        Err(ValidationError::OutOfRange {
            what: "rotation start",
            ..
        })
    ));
    let r = Rotation::new("ok", RotationUnit::Daily, 1, start(), who.clone());
    let far = Window::new(
        Utc.with_ymd_and_hms(9500, 1, 1, 0, 0, 0).unwrap(),
        Utc.with_ymd_and_hms(9500, 1, 2, 0, 0, 0).unwrap(),
    )
    .unwrap();
    assert!(matches!(
        expand_rotation(&r, chrono_tz::UTC, far),
        Err(ValidationError::OutOfRange {
            what: "window start",
            ..
        })
    ));
    let mut r = Rotation::new("bad restriction", RotationUnit::Daily, 1, start(), who);
    r.restrictions = vec![Restriction {
        day: None,
        start: chrono::NaiveTime::MIN,
        duration_seconds: 0,
    }];
    assert_eq!(
        expand(&r),
        Err(ValidationError::RestrictionDuration {
            seconds: 0,
            max_seconds: 86_400
        })
    );
}

#[test]
fn restrictions() {
    assert_eq!(
        Restriction::time_of_day(25, 0, 3, 0),
        Err(ValidationError::RestrictionTime {
            hour: 25,
            minute: 0
        })
    );
    assert_eq!(
        Restriction::time_of_day(9, 60, 3, 0),
        Err(ValidationError::RestrictionTime {
            hour: 9,
            minute: 60
        })
    );
    assert_eq!(
        Restriction::time_of_day(24, 30, 3, 0),
        Err(ValidationError::RestrictionTime {
            hour: 24,
            minute: 30
        })
    );
    assert_eq!(
        Restriction::daily(chrono::NaiveTime::MIN, 86_401),
        Err(ValidationError::RestrictionDuration {
            seconds: 86_401,
            max_seconds: 86_400
        })
    );
    assert_eq!(
        Restriction::weekly(Weekday::Mon, chrono::NaiveTime::MIN, 0),
        Err(ValidationError::RestrictionDuration {
            seconds: 0,
            max_seconds: 604_800
        })
    );
    // 24:00 is the end of the day; Sunday 24:00 starts Monday.
    let r = Restriction::weekday_and_time(Weekday::Sun, 24, 0, Weekday::Mon, 10, 0).unwrap();
    assert_eq!((r.day, r.duration_seconds), (Some(Weekday::Mon), 10 * 3600));
    let r = Restriction::time_of_day(9, 0, 9, 0).unwrap();
    assert_eq!(
        r.duration_seconds, 86_400,
        "equal start and end is the whole day"
    );
}
