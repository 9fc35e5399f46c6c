//! `oncall probe`'s PagerDuty half against the simulator in every dialect setting: each point the
//! probe can settle names the setting the simulator speaks, and it leaves nothing behind.

#![allow(clippy::unwrap_used)] // tests: a panic is the failure report

use std::time::Duration;

use chrono::{NaiveDate, TimeDelta, TimeZone, Utc};
use oncall_core::probe::{Probe, ProbeRequest};
use oncall_core::testkit::VendorSimulator;
use oncall_core::{
    Email, Member, Participant, Restriction, Rotation, RotationUnit, Span, VendorSchedule,
    VendorScheduleId,
};
use oncall_pagerduty::testkit::{CreateAnswer, PagerDutyDialect, PagerDutySimulator};

fn email(name: &str) -> Email {
    Email::parse(&format!("{name}@example.com")).unwrap()
}

fn members(names: &[&str]) -> Vec<Member> {
    names.iter().map(|n| Member::new(email(n), *n)).collect()
}

/// Two overlapping layers in Berlin (DST), from before the probe's year.
fn layered() -> VendorSchedule {
    let at = |m, d, h| {
        NaiveDate::from_ymd_opt(2023, m, d)
            .unwrap()
            .and_hms_opt(h, 0, 0)
            .unwrap()
    };
    let m = |n: &str| Participant::Member(email(n));
    let mut office = Rotation::new(
        "Office hours",
        RotationUnit::Weekly,
        1,
        at(12, 4, 9),
        vec![m("dan"), m("eve")],
    );
    office.restrictions =
        vec![
            Restriction::daily(chrono::NaiveTime::from_hms_opt(9, 0, 0).unwrap(), 8 * 3600)
                .unwrap(),
        ];
    let base = Rotation::new(
        "Base",
        RotationUnit::Daily,
        1,
        at(12, 1, 9),
        vec![m("ann"), m("bob"), m("cat")],
    );
    VendorSchedule {
        id: VendorScheduleId("PLAYERS".into()),
        name: "Layers".into(),
        zone: chrono_tz::Europe::Berlin,
        members: members(&["ann", "bob", "cat", "dan", "eve"]),
        rotations: vec![office, base],
    }
}

/// Points the probe settles on this account, by the dialect switch of the same name.
const SETTLED: [&str; 11] = [
    "listing_filter",
    "listing_status",
    "delete_answer",
    "layer_turns",
    "layer_order",
    "listing_lag",
    "unauthorized_body",
    "error_texts",
    "rounding",
    "create_answer",
    "all_failed_status",
];

#[tokio::test]
async fn the_probe_names_the_setting_of_every_dialect() {
    for (name, dialect) in PagerDutyDialect::variants() {
        let now = Utc.with_ymd_and_hms(2024, 1, 10, 12, 0, 0).unwrap();
        let sim = PagerDutySimulator::start_with(now, dialect).await;
        // Time passes as the probe reads (a lagging listing catches up).
        sim.set_clock_step(TimeDelta::seconds(1));
        sim.add_schedule(layered());
        let scratch = VendorScheduleId("PSCRATCH".into());
        sim.add_schedule(VendorSchedule {
            id: scratch.clone(),
            name: "Scratch".into(),
            zone: chrono_tz::UTC,
            members: members(&["ann", "bob"]),
            rotations: vec![],
        });
        // Something to read listings with, running now.
        sim.insert_override(
            &VendorScheduleId("PLAYERS".into()),
            Span::new(
                now - TimeDelta::hours(2),
                now + TimeDelta::hours(20),
                email("eve"),
            ),
        );
        let provider = sim
            .provider_builder()
            .with_probe_polls(Duration::from_millis(1), Duration::from_secs(10))
            .build()
            .unwrap();
        let report = provider
            .probe(&ProbeRequest {
                now: sim.now(),
                schedule: None,
                write_to: Some(scratch.clone()),
            })
            .await
            .unwrap();
        for point in SETTLED {
            // The wrapped bare create answer leaves refused items out, and their words with them.
            let hidden =
                point == "error_texts" && dialect.create_answer == CreateAnswer::WrappedBare;
            let expected = if hidden { None } else { dialect.setting(point) };
            assert_eq!(
                report.reading(point),
                expected,
                "{name}: {point}:\n{report}"
            );
        }
        for point in ["lost_writes", "rate_limit", "v3_answer"] {
            assert_eq!(report.reading(point), None, "{name}: {point}");
        }
        assert_eq!(
            report.reading("roster"),
            Some("resolves"),
            "{name}:\n{report}"
        );
        assert_eq!(report.reading("key_rights"), Some("read_write"), "{name}");
        assert_eq!(
            report.reading("delete_running"),
            Some("truncated"),
            "{name}:\n{report}"
        );
        assert!(report.left_behind.is_empty(), "{name}:\n{report}");
        // What the probe made is gone, but the stub of the running override it deleted (history).
        let left = sim.overrides(&scratch);
        assert!(
            left.len() == 1 && left[0].span.end <= sim.now(),
            "{name}: {left:?}"
        );
        assert!(report.write_calls >= 4, "{name}: {}", report.write_calls);
        // JSON for the CLI: the same findings.
        let json = serde_json::to_value(&report).unwrap();
        assert_eq!(
            json["findings"].as_array().unwrap().len(),
            report.findings.len()
        );
    }
}

/// Without `write_to`, the probe writes nothing.
#[tokio::test]
async fn a_probe_without_a_scratch_schedule_writes_nothing() {
    let now = Utc.with_ymd_and_hms(2024, 1, 10, 12, 0, 0).unwrap();
    let sim = PagerDutySimulator::start_at(now).await;
    sim.add_schedule(layered());
    let report = sim
        .provider()
        .probe(&ProbeRequest {
            now,
            schedule: Some(VendorScheduleId("PLAYERS".into())),
            write_to: None,
        })
        .await
        .unwrap();
    assert_eq!(sim.write_calls(), 0);
    assert_eq!(report.write_calls, 0);
    assert!(sim.requests().iter().all(|r| r.method == "GET"));
    assert_eq!(
        report.reading("layer_turns"),
        Some("wall_clock"),
        "{report}"
    );
    assert_eq!(report.reading("key_rights"), Some("read"), "{report}");
    assert_eq!(report.reading("rounding"), None);
    // A bad key cannot probe at all.
    let e = sim
        .provider_builder()
        .with_api_key("not-the-key")
        .build()
        .unwrap()
        .probe(&ProbeRequest {
            now,
            schedule: None,
            write_to: None,
        })
        .await
        .unwrap_err();
    assert!(
        matches!(e, oncall_core::Error::Unauthenticated { .. }),
        "{e:?}"
    );
}
