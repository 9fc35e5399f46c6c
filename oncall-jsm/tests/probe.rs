//! `oncall probe` on JSM: under every dialect, each point the probe settles reads as the
//! simulator's setting, spelled as the switch and setting names; without a scratch schedule it
//! writes nothing.

#![allow(clippy::unwrap_used)] // tests: a panic is the failure report

mod common;

use chrono::TimeDelta;
use common::{daily_schedule, now, simulator_with_schedule};
use oncall_core::testkit::VendorSimulator;
use oncall_core::{Probe, ProbeReport, ProbeRequest, Span, VendorScheduleId};
use oncall_jsm::testkit::{JsmDialect, PastEnd};

/// Points of their own, not dialect switches: what the key may do.
const OWN_POINTS: [(&str, &[&str]); 1] = [("key_rights", &["read", "read_write", "read_only"])];

fn check_names(report: &ProbeReport) {
    for f in &report.findings {
        if let Some((_, readings)) = OWN_POINTS.iter().find(|(p, _)| *p == f.point) {
            if let Some(reading) = f.reading.as_deref() {
                assert!(readings.contains(&reading), "{}={reading}", f.point);
            }
            continue;
        }
        assert!(
            JsmDialect::SWITCHES.contains(&f.point.as_str()),
            "point {:?} is a switch",
            f.point
        );
        if let Some(reading) = &f.reading {
            let known = JsmDialect::variants()
                .iter()
                .any(|(_, d)| d.reading(&f.point) == Some(reading.as_str()));
            assert!(known, "{}={reading} is a setting", f.point);
        }
    }
}

#[tokio::test]
async fn the_probe_reads_each_dialect_back_and_writes_only_to_the_scratch_schedule() {
    for (name, dialect) in JsmDialect::variants() {
        let (sim, vs) = simulator_with_schedule(dialect).await;
        // Enough schedules to fill a page of 50, and one ended override listed or not.
        for i in 0..50 {
            sim.add_schedule(daily_schedule(&format!("S{i:02}")));
        }
        sim.insert_override(
            &vs,
            Span::new(
                now() - TimeDelta::days(2),
                now() - TimeDelta::days(1),
                common::email("bob"),
            ),
        );
        sim.insert_override(
            &vs,
            Span::new(
                now() + TimeDelta::days(1),
                now() + TimeDelta::days(2),
                common::email("bob"),
            ),
        );
        let provider = sim.provider();
        let read_only = ProbeRequest {
            now: now(),
            schedule: Some(vs.clone()),
            write_to: None,
        };
        let report = provider.probe(&read_only).await.unwrap();
        check_names(&report);
        assert_eq!(
            (report.write_calls, sim.write_calls()),
            (0, 0),
            "{name}: a read-only probe writes nothing"
        );
        assert_eq!(report.reading("key_rights"), Some("read"), "{name}");
        let expect_page = match dialect.page_size {
            oncall_jsm::testkit::PageSize::UpTo50 => "up_to_50",
            oncall_jsm::testkit::PageSize::CappedAt(_) => "capped",
            oncall_jsm::testkit::PageSize::RefusedAbove(_) => "refused_above",
        };
        assert_eq!(
            report.reading("page_size"),
            Some(expect_page),
            "{name}: {report}"
        );
        let past = if dialect.past_overrides == oncall_jsm::testkit::PastOverrides::All {
            Some("all")
        } else {
            None
        };
        assert_eq!(report.reading("past_overrides"), past, "{name}: {report}");
        assert!(
            report.findings.iter().all(|f| f.point != "past_end"),
            "{name}: past_end needs a write: {report}"
        );

        let writing = ProbeRequest {
            write_to: Some(vs.clone()),
            ..read_only
        };
        let before = sim.overrides(&vs);
        let report = provider.probe(&writing).await.unwrap();
        check_names(&report);
        for switch in [
            "update_body",
            "delete_status",
            "rotation_ids_omitted",
            "past_end",
        ] {
            let expected = dialect.reading(switch);
            // With creates that must name rotations, the update body cannot be told apart.
            if switch == "update_body"
                && dialect.rotation_ids_omitted == oncall_jsm::testkit::RotationIdsOmitted::Refused
            {
                assert_eq!(report.reading(switch), None, "{name}: {report}");
                continue;
            }
            assert_eq!(
                report.reading(switch),
                expected,
                "{name}: {switch}: {report}"
            );
        }
        assert!(report.write_calls >= 2, "{name}: {report}");
        assert_eq!(
            report.reading("key_rights"),
            Some("read_write"),
            "{name}: {report}"
        );
        assert!(report.left_behind.is_empty(), "{name}: {report}");
        // What the probe made is gone, but for an override the vendor ended at its now
        // (`past_end=clamp`): history, as every ended override, and nothing live.
        let made: Vec<Span> = sim
            .overrides(&vs)
            .into_iter()
            .filter(|o| !before.contains(o))
            .map(|o| o.span)
            .collect();
        match dialect.past_end {
            PastEnd::Clamp => {
                assert_eq!(made.len(), 1, "{name}: {made:?}");
                assert_eq!(made[0].end, now(), "{name}: ended at the vendor's now");
                assert!(made[0].start < now(), "{name}: it ran");
            }
            PastEnd::Refuse => assert_eq!(made, vec![], "{name}: the refused cut's override"),
        }
        assert!(sim.requests().iter().all(|r| r.simulated), "{name}");
    }
}

#[tokio::test]
async fn a_refused_write_shows_the_forbidden_body() {
    for (name, dialect) in JsmDialect::variants()
        .into_iter()
        .filter(|(n, _)| n.starts_with("forbidden_body") || *n == "documented")
    {
        let (sim, vs) = simulator_with_schedule(dialect).await;
        let report = sim
            .read_only_provider()
            .probe(&ProbeRequest {
                now: now(),
                schedule: Some(VendorScheduleId("VS".into())),
                write_to: Some(vs),
            })
            .await
            .unwrap();
        check_names(&report);
        assert_eq!(
            report.reading("forbidden_body"),
            dialect.reading("forbidden_body"),
            "{name}: {report}"
        );
        assert!(report.to_string().contains("forbidden_body"));
        assert_eq!(
            report.reading("key_rights"),
            Some("read_only"),
            "{name}: {report}"
        );
    }
}
