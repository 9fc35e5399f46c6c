//! The core's conformance suite, against the provider and the simulator over HTTP, under every
//! dialect setting.

#![allow(clippy::unwrap_used)] // tests: a panic is the failure report

mod common;

use oncall_core::testkit::conformance::{self, Context};
use oncall_jsm::testkit::JsmDialect;

#[tokio::test]
async fn the_provider_passes_the_conformance_suite_under_every_dialect() {
    for (name, dialect) in JsmDialect::variants() {
        let (sim, schedule) = common::simulator_with_schedule(dialect).await;
        let ctx = Context {
            schedule,
            members: vec![common::email("ann"), common::email("bob")],
            now: common::now(),
        };
        eprintln!("dialect {name}");
        conformance::run_all(&sim.provider(), &ctx).await;
        let outside: Vec<_> = sim
            .requests()
            .into_iter()
            .filter(|r| !r.simulated)
            .collect();
        assert!(
            outside.is_empty(),
            "{name}: only simulated endpoints: {outside:?}"
        );
    }
}
