//! The core's conformance suite, against the provider and the simulator over HTTP, under every
//! setting of the simulator's dialect (each plausible reading of each UNCONFIRMED point).

#![allow(clippy::unwrap_used)] // tests: a panic is the failure report

mod common;

use oncall_core::testkit::conformance::{self, Context};
use oncall_core::testkit::VendorSimulator;
use oncall_opsgenie::testkit::{OpsgenieDialect, OpsgenieSimulator};

#[tokio::test]
async fn the_provider_passes_the_conformance_suite_in_every_dialect() {
    for (name, dialect) in OpsgenieDialect::variants() {
        let sim = OpsgenieSimulator::start_with(common::now(), dialect).await;
        sim.add_schedule(common::daily_schedule("VS"));
        let ctx = Context {
            schedule: oncall_core::VendorScheduleId("VS".into()),
            members: vec![common::email("ann"), common::email("bob")],
            now: common::now(),
        };
        let run = tokio::spawn({
            let provider = sim.provider();
            async move { conformance::run_all(&provider, &ctx).await }
        });
        if let Err(e) = run.await {
            panic!("under the dialect {name}: {e}");
        }
        assert!(
            sim.requests().iter().all(|r| r.simulated),
            "{name}: only simulated endpoints were called"
        );
        assert!(sim.write_calls() > 0, "{name}");
    }
}
