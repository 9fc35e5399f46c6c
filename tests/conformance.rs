//! The in-memory provider passes the conformance suite every adapter will run; a provider that breaks
//! the contract does not.

#![allow(clippy::unwrap_used)] // tests: a panic is the failure report

mod common;

use async_trait::async_trait;
use common::*;
use oncall_sync::testkit::conformance::{self, Context};
use oncall_sync::testkit::{InMemoryProvider, VendorSimulator};
use oncall_sync::{
    Capabilities, Deletion, Error, NewOverride, OnCallPeriod, Override, OverrideId, Participant,
    Provider, RoleTimeline, Rotation, RotationUnit, Span, VendorSchedule, VendorScheduleId, Window,
};

fn context() -> Context {
    Context {
        schedule: VendorScheduleId("VS".into()),
        members: vec![email("ann"), email("bob")],
        now: at(3, 12),
    }
}

fn provider(vendor: Vendor) -> InMemoryProvider {
    let p = match vendor {
        Vendor::PagerDutyLike => InMemoryProvider::pagerduty_like(at(3, 12)),
        Vendor::OpsgenieLike => InMemoryProvider::opsgenie_like(at(3, 12)),
    };
    let start = chrono::NaiveDate::from_ymd_opt(2024, 1, 1)
        .unwrap()
        .and_hms_opt(9, 0, 0)
        .unwrap();
    p.add_schedule(VendorSchedule {
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
        ..vendor_schedule("VS")
    });
    p
}

#[tokio::test]
async fn in_memory_provider_passes_the_conformance_suite() {
    for vendor in VENDORS {
        conformance::run_all(&provider(vendor), &context()).await;
    }
}

/// A provider that fails a whole batch for one bad item, as a careless adapter would.
struct WholeBatchFails(InMemoryProvider);

#[async_trait]
impl Provider for WholeBatchFails {
    fn name(&self) -> &str {
        "broken"
    }
    fn capabilities(&self) -> Capabilities {
        self.0.capabilities()
    }
    fn account(&self) -> Option<String> {
        self.0.account()
    }
    async fn list_schedules(&self) -> Result<oncall_sync::ScheduleListing, Error> {
        self.0.list_schedules().await
    }
    async fn schedule(&self, s: &VendorScheduleId) -> Result<VendorSchedule, Error> {
        self.0.schedule(s).await
    }
    async fn on_call(&self, s: &VendorScheduleId, w: Window) -> Result<Vec<RoleTimeline>, Error> {
        self.0.on_call(s, w).await
    }
    async fn get_override(
        &self,
        s: &VendorScheduleId,
        id: &OverrideId,
    ) -> Result<Option<Override>, Error> {
        self.0.get_override(s, id).await
    }
    async fn list_overrides(
        &self,
        s: &VendorScheduleId,
        w: Window,
    ) -> Result<Vec<Override>, Error> {
        self.0.list_overrides(s, w).await
    }
    async fn create_overrides(
        &self,
        s: &VendorScheduleId,
        o: &[NewOverride],
    ) -> Result<Vec<Result<Override, Error>>, Error> {
        let results = self.0.create_overrides(s, o).await?;
        match results.iter().find_map(|r| r.as_ref().err()) {
            Some(e) => Err(e.clone()),
            None => Ok(results),
        }
    }
    async fn update_override(
        &self,
        s: &VendorScheduleId,
        id: &OverrideId,
        span: &Span,
    ) -> Result<Override, Error> {
        self.0.update_override(s, id, span).await
    }
    async fn delete_override(
        &self,
        s: &VendorScheduleId,
        id: &OverrideId,
    ) -> Result<Deletion, Error> {
        self.0.delete_override(s, id).await
    }
}

#[tokio::test]
#[should_panic(expected = "create call succeeds")]
async fn conformance_rejects_a_provider_that_fails_whole_batches() {
    conformance::answers_per_item_in_a_batch(
        &WholeBatchFails(provider(Vendor::PagerDutyLike)),
        &context(),
    )
    .await;
}

#[tokio::test]
async fn in_memory_provider_behaves_like_the_vendors() {
    let now = at(3, 12);
    let vs = VendorScheduleId("VS".into());
    // PagerDuty-like: deleting a running override truncates it at now; past ones cannot be deleted.
    let pd = provider(Vendor::PagerDutyLike);
    let running = pd.insert_override(&vs, Span::new(at(3, 0), at(4, 0), email("ann")));
    let past = pd.insert_override(&vs, Span::new(at(1, 0), at(2, 0), email("ann")));
    assert_eq!(
        pd.delete_override(&vs, &running).await,
        Ok(Deletion::Truncated)
    );
    assert!(pd
        .overrides(&vs)
        .iter()
        .any(|o| o.id == running && o.span.end == now));
    assert!(matches!(
        pd.delete_override(&vs, &past).await,
        Err(Error::Rejected { .. })
    ));
    // Opsgenie-like: an update cuts a running override at the vendor's now, even when the caller's
    // "now" is already past (the Provider contract); an override that has not started cannot be
    // moved into the past.
    let og = provider(Vendor::OpsgenieLike);
    let running = og.insert_override(&vs, Span::new(at(3, 0), at(4, 0), email("ann")));
    let cut = Span::new(at(3, 0), now, email("ann"));
    assert_eq!(
        og.update_override(&vs, &running, &cut).await.unwrap().span,
        cut
    );
    og.set_clock_step(chrono::TimeDelta::seconds(5));
    let running = og.insert_override(&vs, Span::new(at(3, 0), at(4, 0), email("bob")));
    let late_cut = Span::new(at(3, 0), now, email("bob"));
    let cut_at = og
        .update_override(&vs, &running, &late_cut)
        .await
        .unwrap()
        .span
        .end;
    assert_eq!(cut_at, og.now(), "ended at the vendor's now, not refused");
    assert!(cut_at > now);
    let future = og.insert_override(&vs, Span::new(at(5, 0), at(6, 0), email("ann")));
    let into_past = Span::new(at(2, 0), at(3, 0), email("ann"));
    assert!(matches!(
        og.update_override(&vs, &future, &into_past).await,
        Err(Error::Rejected { .. })
    ));
    // Last created wins where overrides overlap.
    let p = provider(Vendor::PagerDutyLike);
    p.insert_override(&vs, Span::new(at(5, 0), at(6, 0), email("ann")));
    p.insert_override(&vs, Span::new(at(5, 6), at(5, 12), email("bob")));
    let shown: Vec<OnCallPeriod> = p.render(&vs, Window::new(at(5, 0), at(6, 0)).unwrap());
    let who: Vec<(u32, &str)> = shown
        .iter()
        .map(|x| (chrono::Timelike::hour(&x.start), x.member.as_str()))
        .collect();
    assert_eq!(
        who,
        [
            (0, "ann@example.com"),
            (6, "bob@example.com"),
            (12, "ann@example.com")
        ]
    );
}

#[tokio::test]
async fn in_memory_store_passes_the_store_conformance_suite() {
    let store = oncall_sync::InMemoryStateStore::new();
    // Memory cannot be corrupted from outside: that one check is skipped.
    oncall_sync::testkit::store_conformance::run_all(&store, "memory", |_| false).await;
}
