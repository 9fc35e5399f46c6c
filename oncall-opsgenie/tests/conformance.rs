//! The core's conformance suite, against the provider and the simulator over HTTP.

#![allow(clippy::unwrap_used)] // tests: a panic is the failure report

mod common;

use oncall_core::testkit::conformance::{self, Context};

#[tokio::test]
async fn the_provider_passes_the_conformance_suite() {
    let (sim, schedule) = common::simulator_with_schedule().await;
    let ctx = Context {
        schedule,
        members: vec![common::email("ann"), common::email("bob")],
        now: common::now(),
    };
    conformance::run_all(&sim.provider(), &ctx).await;
    assert!(
        sim.requests().iter().all(|r| r.simulated),
        "only simulated endpoints were called"
    );
}
