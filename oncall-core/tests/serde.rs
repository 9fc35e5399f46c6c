//! The model round-trips through JSON, with zones by IANA name.

#![allow(clippy::unwrap_used)] // tests: a panic is the failure report

use chrono::{NaiveDate, NaiveTime, TimeZone, Utc, Weekday};
use oncall_core::{
    Email, Member, Participant, Restriction, Rotation, RotationUnit, Schedule, ScheduleId, Shift,
    VendorSchedule, VendorScheduleId,
};

#[test]
fn schedule_round_trips_with_its_zone_by_name() {
    let ada = Email::parse("ada@example.com").unwrap();
    let t = |h| Utc.with_ymd_and_hms(2024, 3, 31, h, 0, 0).unwrap();
    let schedule = Schedule::new(
        ScheduleId("ops".into()),
        chrono_tz::Australia::Lord_Howe,
        vec!["primary".into(), "secondary".into()],
        vec![Member::new(ada.clone(), "Ada")],
        vec![Shift::new(t(1), t(2), vec![Some(ada), None])],
    )
    .unwrap();
    let json = serde_json::to_value(&schedule).unwrap();
    assert_eq!(json["zone"], "Australia/Lord_Howe");
    assert_eq!(
        json["shifts"][0]["assignees"],
        serde_json::json!(["ada@example.com", null])
    );
    assert_eq!(serde_json::from_value::<Schedule>(json).unwrap(), schedule);
}

#[test]
fn rotation_config_round_trips() {
    let start = NaiveDate::from_ymd_opt(2024, 3, 4)
        .unwrap()
        .and_hms_opt(9, 0, 0)
        .unwrap();
    let mut rotation = Rotation::new(
        "weekly",
        RotationUnit::Weekly,
        2,
        start,
        vec![
            Participant::Member(Email::parse("ada@example.com").unwrap()),
            Participant::Nobody,
        ],
    );
    rotation.end = Some(start + chrono::TimeDelta::days(90));
    rotation.restrictions = vec![
        Restriction::weekday_and_time(Weekday::Fri, 18, 0, Weekday::Mon, 10, 0).unwrap(),
        Restriction::daily(NaiveTime::from_hms_opt(8, 0, 0).unwrap(), 9 * 3600).unwrap(),
    ];
    let vendor = VendorSchedule {
        id: VendorScheduleId("S1".into()),
        name: "Ops".into(),
        zone: chrono_tz::America::New_York,
        members: vec![],
        rotations: vec![rotation],
    };
    let json = serde_json::to_string(&vendor).unwrap();
    assert!(json.contains("\"America/New_York\""), "{json}");
    assert!(
        json.contains("\"weekly\"") && json.contains("\"nobody\""),
        "{json}"
    );
    assert_eq!(
        serde_json::from_str::<VendorSchedule>(&json).unwrap(),
        vendor
    );
}
