//! Shared fixtures for the simulator tests.
#![allow(dead_code)]

use chrono::{DateTime, NaiveDate, TimeZone, Utc};
use oncall_core::testkit::VendorSimulator;
use oncall_core::{
    Email, Member, Participant, Rotation, RotationUnit, VendorSchedule, VendorScheduleId,
};
use oncall_jsm::testkit::{JsmDialect, JsmSimulator};

pub const PEOPLE: [&str; 5] = ["ann", "bob", "cat", "dan", "eve"];

pub fn email(name: &str) -> Email {
    Email::parse(&format!("{name}@example.com")).unwrap()
}

pub fn members() -> Vec<Member> {
    PEOPLE.iter().map(|n| Member::new(email(n), *n)).collect()
}

/// 2024-01-04 12:00 UTC.
pub fn now() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2024, 1, 4, 12, 0, 0).unwrap()
}

/// A UTC schedule with one daily rotation of ann and bob handing off at 09:00.
pub fn daily_schedule(id: &str) -> VendorSchedule {
    let start = NaiveDate::from_ymd_opt(2024, 1, 1)
        .unwrap()
        .and_hms_opt(9, 0, 0)
        .unwrap();
    VendorSchedule {
        id: VendorScheduleId(id.into()),
        name: id.into(),
        zone: chrono_tz::UTC,
        members: members(),
        rotations: vec![Rotation::new(
            "daily",
            RotationUnit::Daily,
            1,
            start,
            vec![
                Participant::Member(email("ann")),
                Participant::Member(email("bob")),
            ],
        )],
    }
}

pub async fn simulator_with_schedule(dialect: JsmDialect) -> (JsmSimulator, VendorScheduleId) {
    let sim = JsmSimulator::start_with(now(), dialect).await;
    sim.add_schedule(daily_schedule("VS"));
    (sim, VendorScheduleId("VS".into()))
}
