//! The on-call actually served (issue 15), read through both HTTP adapters from the simulators'
//! final rendering: a daily rotation of ann and bob in Europe/Berlin with cat's override on one
//! day, over the week of the spring-forward night (2024-03-25 to 2024-04-01, 167 hours). Reads
//! only, within the endpoints of DESIGN §1.

#![allow(clippy::unwrap_used)] // tests: a panic is the failure report

use chrono::{DateTime, NaiveDate, Utc};
use chrono_tz::Europe::Berlin;
use oncall_sync::opsgenie::testkit::OpsgenieSimulator;
use oncall_sync::pagerduty::testkit::PagerDutySimulator;
use oncall_sync::testkit::VendorSimulator;
use oncall_sync::{
    read_actuals, resolve_local, Actuals, ActualsOptions, Email, Member, Participant, Provider,
    Rotation, RotationUnit, Span, VendorSchedule, VendorScheduleId, Window,
};

fn email(name: &str) -> Email {
    Email::parse(&format!("{name}@example.com")).unwrap()
}

fn berlin(d: u32, h: u32) -> DateTime<Utc> {
    let (m, d) = if d > 31 { (4, d - 31) } else { (3, d) };
    resolve_local(
        Berlin,
        NaiveDate::from_ymd_opt(2024, m, d)
            .unwrap()
            .and_hms_opt(h, 0, 0)
            .unwrap(),
    )
}

fn vendor_schedule() -> VendorSchedule {
    let start = NaiveDate::from_ymd_opt(2024, 3, 25)
        .unwrap()
        .and_hms_opt(9, 0, 0)
        .unwrap();
    VendorSchedule {
        id: VendorScheduleId("S1".into()),
        name: "Platform".into(),
        zone: Berlin,
        members: ["ann", "bob", "cat"]
            .iter()
            .map(|n| Member::new(email(n), *n))
            .collect(),
        rotations: vec![Rotation::new(
            "Daily",
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

fn hours(a: &Actuals, who: &str) -> (i64, i64, i64, i64) {
    let t = a.totals.iter().find(|t| t.member == email(who)).unwrap();
    let h = |s: i64| s / 3600;
    (
        h(t.split.total_seconds),
        h(t.split.weekday_seconds),
        h(t.split.weekend_seconds),
        h(t.split.night_seconds),
    )
}

/// Monday ann, Tuesday bob, Wednesday cat (the override), Thursday bob, Friday ann, Saturday bob
/// (23 hours: the clocks spring forward on Sunday night), Sunday ann.
fn check(a: &Actuals) {
    assert_eq!(a.zone, Berlin);
    let total: i64 = a.totals.iter().map(|t| t.split.total_seconds).sum();
    assert_eq!(total, 167 * 3600, "{a:#?}");
    // Bob: Tuesday and Thursday are 16 weekday and 8 night hours each; Saturday is all weekend.
    assert_eq!(hours(a, "bob"), (71, 32, 23, 16));
    // Ann: Monday (16 + 8); Friday 09:00 to Saturday 09:00 (13 weekday, 2 night, 9 weekend);
    // Sunday 09:00 to Monday 09:00 (15 weekend, then 6 night and 3 weekday on Monday).
    assert_eq!(hours(a, "ann"), (72, 16 + 13 + 3, 9 + 15, 8 + 2 + 6));
    assert_eq!(hours(a, "cat"), (24, 16, 0, 8));
    let cat: Vec<_> = a
        .periods
        .iter()
        .filter(|p| p.member == email("cat"))
        .map(|p| (p.start, p.end))
        .collect();
    assert_eq!(cat, [(berlin(27, 9), berlin(28, 9))]);
}

fn window() -> Window {
    Window::new(berlin(25, 9), berlin(32, 9)).unwrap()
}

#[tokio::test]
async fn actuals_from_the_opsgenie_final_timeline() {
    let sim = OpsgenieSimulator::start_at(berlin(33, 12)).await;
    sim.add_schedule(vendor_schedule());
    let id = VendorScheduleId("S1".into());
    sim.insert_override(&id, Span::new(berlin(27, 9), berlin(28, 9), email("cat")));
    let provider = sim.provider();
    sim.clear_requests();
    let a = read_actuals(&provider, &id, window(), &ActualsOptions::default())
        .await
        .unwrap();
    check(&a);
    let log = sim.requests();
    assert!(
        log.iter().all(|r| r.method == "GET" && r.simulated),
        "read-only, within DESIGN §1: {log:?}"
    );
}

#[tokio::test]
async fn actuals_from_the_pagerduty_final_schedule() {
    let sim = PagerDutySimulator::start_at(berlin(33, 12)).await;
    sim.add_schedule(vendor_schedule());
    let id = VendorScheduleId("S1".into());
    sim.insert_override(&id, Span::new(berlin(27, 9), berlin(28, 9), email("cat")));
    let provider = sim.provider();
    sim.clear_requests();
    let a = read_actuals(&provider, &id, window(), &ActualsOptions::default())
        .await
        .unwrap();
    check(&a);
    let log = sim.requests();
    assert!(
        log.iter().all(|r| r.method == "GET"
            && (r.path.starts_with("/schedules") || r.path.starts_with("/users"))),
        "read-only, Schedule and User endpoints only: {log:?}"
    );
    // The zone can be given instead of read.
    let utc = ActualsOptions {
        zone: Some(chrono_tz::UTC),
        ..ActualsOptions::default()
    };
    let a = read_actuals(&provider, &id, window(), &utc).await.unwrap();
    assert_eq!(a.zone, chrono_tz::UTC);
    assert_eq!(provider.name(), "pagerduty");
}
