//! Reviewer's probe: drift cost in authoritative mode when a person deleted many of ours.
#![allow(clippy::unwrap_used)]

use chrono::{TimeDelta, TimeZone, Utc};
use oncall_sync::{
    plan_export, Capabilities, Desired, DestinationId, DestinationMode, DestinationState, Email,
    Override, OverrideId, PlanInput, RoleIndex, Span,
};

fn time(n: usize, mode: DestinationMode, caps: Capabilities) -> (std::time::Duration, usize) {
    let now = Utc.with_ymd_and_hms(2024, 1, 1, 0, 30, 0).unwrap();
    let members: Vec<Email> = (0..10)
        .map(|i| Email::parse(&format!("m{i}@example.com")).unwrap())
        .collect();
    let hour = |i: usize| Utc.with_ymd_and_hms(2024, 1, 1, 1, 0, 0).unwrap() + TimeDelta::hours(i as i64);
    let spans: Vec<Span> = (0..n).map(|i| Span::new(hour(i), hour(i + 1), members[i % 10].clone())).collect();
    let ledger: Vec<Override> = spans
        .iter()
        .enumerate()
        .map(|(i, s)| Override { id: OverrideId::new(format!("ours-{i}")), span: s.clone() })
        .collect();
    // A person deleted every other one of ours.
    let vendor: Vec<Override> = ledger.iter().step_by(2).cloned().collect();
    let state = DestinationState { high_water: Some(hour(n)), ledger, last_run: None, mode: mode };
    let desired = Desired::new(now, spans, hour(n)).unwrap();
    let d = DestinationId("p".into());
    let t = std::time::Instant::now();
    let plan = plan_export(PlanInput {
        destination: &d,
        role: RoleIndex::PRIMARY,
        mode,
        now,
        desired: &desired,
        vendor: &vendor,
        state: &state,
        capabilities: caps,
    });
    (t.elapsed(), plan.drift.len())
}

#[test]
fn drift_cost_grows_with_deleted_ours() {
    for mode in [DestinationMode::Protect, DestinationMode::Authoritative] {
        for n in [2_000usize, 8_000, 32_000] {
            let (t, drift) = time(n, mode, Capabilities::PAGERDUTY);
            eprintln!("{mode} n={n}: {t:?}, {drift} drift records");
        }
    }
}
