//! The core's conformance suite against `PagerDutyProvider` talking HTTP to `PagerDutySimulator`,
//! under every setting of the simulator's dialect.

#![allow(clippy::unwrap_used)] // tests: a panic is the failure report

use chrono::{NaiveDate, TimeDelta, TimeZone, Utc};
use oncall_core::testkit::conformance::{self, Context};
use oncall_core::testkit::VendorSimulator;
use oncall_core::{
    Email, Member, Participant, Rotation, RotationUnit, VendorSchedule, VendorScheduleId,
};
use oncall_pagerduty::testkit::{PagerDutyDialect, PagerDutySimulator};

fn email(s: &str) -> Email {
    Email::parse(s).unwrap()
}

#[tokio::test]
async fn the_conformance_suite_passes_under_every_dialect() {
    for (name, dialect) in PagerDutyDialect::variants() {
        conformance_under(name, dialect).await;
    }
}

async fn conformance_under(name: &str, dialect: PagerDutyDialect) {
    let now = Utc.with_ymd_and_hms(2024, 3, 1, 0, 0, 0).unwrap();
    let sim = PagerDutySimulator::start_with(now, dialect).await;
    // Where the account shows a write only after a while, that while passes between requests
    // (the suite reads right after it writes).
    let settle = dialect.settles_within();
    if settle > TimeDelta::zero() {
        sim.set_clock_step(settle + TimeDelta::seconds(1));
    }
    let (ann, bob) = (email("ann@example.com"), email("bob@example.com"));
    let start = NaiveDate::from_ymd_opt(2024, 1, 1)
        .unwrap()
        .and_hms_opt(9, 0, 0)
        .unwrap();
    sim.add_schedule(VendorSchedule {
        id: VendorScheduleId("PCONF01".into()),
        name: "Conformance".into(),
        zone: chrono_tz::Europe::Berlin,
        members: vec![
            Member::new(ann.clone(), "Ann"),
            Member::new(bob.clone(), "Bob"),
        ],
        rotations: vec![Rotation::new(
            "Layer 1",
            RotationUnit::Daily,
            1,
            start,
            vec![
                Participant::Member(ann.clone()),
                Participant::Member(bob.clone()),
            ],
        )],
    });
    let provider = sim.provider();
    let ctx = Context {
        schedule: VendorScheduleId("PCONF01".into()),
        members: vec![ann, bob],
        now,
    };
    conformance::run_all(&provider, &ctx).await;
    // Everything went to endpoints PagerDuty has, with the read-write key and the versioning header.
    for r in sim.requests() {
        assert!(r.routed, "{name}: {r:?}");
        assert_eq!(
            r.accept.as_deref(),
            Some("application/vnd.pagerduty+json;version=2"),
            "{name}"
        );
        assert_eq!(
            r.content_type.as_deref(),
            Some("application/json"),
            "{name}"
        );
    }
}
