//! The sync driver: isolation between destinations (R7), compare-and-swap between workers, reads that
//! fail, and import.

#![allow(clippy::unwrap_used)] // tests: a panic is the failure report

mod common;

use async_trait::async_trait;
use chrono::{NaiveDate, TimeDelta};
use common::*;
use oncall_sync::testkit::{Fault, InMemoryProvider, Trigger, VendorSimulator};
use oncall_sync::{
    alias_attempt, alias_for, import_schedule, sync, ConnectionId, Destination, DestinationId,
    DestinationState, Error, InMemoryStateStore, Participant, RoleIndex, Rotation, RotationUnit,
    Span, StateStore, SyncMode, SyncOptions, SyncStatus, SyncTarget, VendorSchedule,
    VendorScheduleId, Versioned, Window,
};

fn options(now: chrono::DateTime<chrono::Utc>) -> SyncOptions {
    SyncOptions {
        now,
        horizon: None,
        mode: SyncMode::Apply,
    }
}

#[tokio::test]
async fn a_failing_destination_leaves_the_others_intact() {
    let now = at(3, 12);
    let schedule = schedule(3, 11);
    // Healthy destination alone.
    let alone = Fixture::new(Vendor::PagerDutyLike, now);
    let solo = alone.sync(&schedule, now).await;

    // The same healthy destination beside three broken ones: read-only key, unknown schedule, outage.
    let f = Fixture::new(Vendor::PagerDutyLike, now);
    let broken: Vec<(InMemoryProvider, Destination)> = ["read-only", "unknown", "outage"]
        .iter()
        .map(|kind| {
            let p = InMemoryProvider::opsgenie_like(now);
            p.add_schedule(vendor_schedule("OG"));
            match *kind {
                "read-only" => p.set_read_only(true),
                "outage" => p.inject(
                    Trigger::Call(1),
                    Fault::Fail(Error::Transient {
                        message: "503".into(),
                    }),
                ),
                _ => {}
            }
            let d = Destination {
                id: DestinationId(format!("broken-{kind}")),
                connection: ConnectionId(format!("conn-{kind}")),
                schedule: VendorScheduleId(if *kind == "unknown" {
                    "nope".into()
                } else {
                    "OG".into()
                }),
                role: RoleIndex::PRIMARY,
            };
            (p, d)
        })
        .collect();
    let mut targets: Vec<SyncTarget<'_>> = broken
        .iter()
        .map(|(p, d)| SyncTarget {
            destination: d,
            provider: p,
        })
        .collect();
    targets.insert(
        1,
        SyncTarget {
            destination: &f.destination,
            provider: &f.provider,
        },
    );
    let report = sync(&schedule, &targets, &f.store, options(now))
        .await
        .unwrap();

    let healthy = &report.destinations[1];
    assert_eq!(healthy.status, SyncStatus::Ok);
    assert_eq!(
        healthy.outcomes, solo.outcomes,
        "same operations, same outcomes as alone"
    );
    assert_eq!(f.vendor_overrides().len(), alone.vendor_overrides().len());
    assert_eq!(f.high_water(), alone.high_water());
    for (d, (p, dest)) in [
        &report.destinations[0],
        &report.destinations[2],
        &report.destinations[3],
    ]
    .into_iter()
    .zip(&broken)
    {
        assert_eq!(d.status, SyncStatus::Failed, "{d}");
        assert!(!d.errors.is_empty());
        assert!(d
            .errors
            .iter()
            .all(|e| e.destination == dest.id && e.connection == dest.connection));
        assert!(p.overrides(&VendorScheduleId("OG".into())).is_empty());
        let state = f.store.get(&dest.id).unwrap_or_default();
        assert!(state.ledger.is_empty() && state.high_water.is_none());
    }
    assert!(matches!(
        report.destinations[2].errors[0].error,
        Error::NotFound { .. }
    ));
    assert!(!report.is_ok());
}

/// A store that lets another worker save first, right before our first save.
struct Racing<'a> {
    inner: &'a InMemoryStateStore,
    raced: std::sync::atomic::AtomicBool,
}

#[async_trait]
impl StateStore for Racing<'_> {
    async fn load(&self, d: &DestinationId) -> Result<Versioned<DestinationState>, Error> {
        self.inner.load(d).await
    }
    async fn save(
        &self,
        d: &DestinationId,
        expected: u64,
        state: &DestinationState,
    ) -> Result<u64, Error> {
        if !self.raced.swap(true, std::sync::atomic::Ordering::SeqCst) {
            self.inner
                .save(d, expected, &DestinationState::default())
                .await?;
        }
        self.inner.save(d, expected, state).await
    }
    async fn remove(&self, d: &DestinationId, expected: u64) -> Result<(), Error> {
        self.inner.remove(d, expected).await
    }
}

#[tokio::test]
async fn two_workers_cannot_both_win() {
    let now = at(3, 12);
    let f = Fixture::new(Vendor::OpsgenieLike, now);
    let racing = Racing {
        inner: &f.store,
        raced: Default::default(),
    };
    let targets = [SyncTarget {
        destination: &f.destination,
        provider: &f.provider,
    }];
    let report = sync(&schedule(3, 11), &targets, &racing, options(now))
        .await
        .unwrap();
    let d = &report.destinations[0];
    assert!(
        d.errors
            .iter()
            .any(|e| matches!(e.error, Error::Conflict { .. })),
        "{d}"
    );
    assert_eq!(
        f.provider.write_calls(),
        1,
        "the loser stops writing after its first save fails"
    );
    assert_ne!(d.status, SyncStatus::Ok);
    assert_eq!(d.high_water_after, None, "the loser reports no new mark");
    // The winner's next sync converges, adopting what the loser wrote.
    let again = f.sync(&schedule(3, 11), at(3, 13)).await;
    assert_eq!(again.status, SyncStatus::Ok, "{again}");
    assert_eq!(f.vendor_overrides().len(), 8, "no duplicates");
}

#[tokio::test]
async fn a_failed_read_changes_nothing_but_the_last_run() {
    let now = at(3, 12);
    let f = Fixture::new(Vendor::PagerDutyLike, now);
    f.provider.inject(Trigger::Call(1), Fault::LoseResponse);
    let report = f.sync(&schedule(3, 11), now).await;
    assert_eq!(report.status, SyncStatus::Failed);
    assert!(report.plan.is_none());
    assert_eq!(f.provider.write_calls(), 0);
    let state = f.store.get(&f.destination.id).unwrap();
    assert_eq!((state.high_water, state.ledger.len()), (None, 0));
    let last = state.last_run.unwrap();
    assert!(!last.ok && last.error.unwrap().contains("transient"));
}

#[tokio::test]
async fn import_merges_rotations_by_position_across_dst() {
    let now = at(0, 0);
    let p = InMemoryProvider::opsgenie_like(now);
    let local = |d: u32, h: u32| {
        NaiveDate::from_ymd_opt(2024, 3, d)
            .unwrap()
            .and_hms_opt(h, 0, 0)
            .unwrap()
    };
    let who = |names: &[&str]| {
        names
            .iter()
            .map(|n| Participant::Member(email(n)))
            .collect()
    };
    p.add_schedule(VendorSchedule {
        zone: chrono_tz::Europe::Berlin,
        rotations: vec![
            Rotation::new(
                "primary",
                RotationUnit::Daily,
                1,
                local(29, 9),
                who(&["ann", "bob"]),
            ),
            Rotation::new(
                "secondary",
                RotationUnit::Weekly,
                1,
                local(25, 9),
                who(&["cat"]),
            ),
        ],
        ..vendor_schedule("VS")
    });
    let utc = |d: u32, h: u32| {
        chrono::TimeZone::with_ymd_and_hms(&chrono::Utc, 2024, 3, d, h, 0, 0).unwrap()
    };
    let window = Window::new(utc(29, 8), utc(31, 7)).unwrap();
    let schedule = import_schedule(&p, &VendorScheduleId("VS".into()), window)
        .await
        .unwrap();
    assert_eq!(schedule.roles(), ["primary", "secondary"]);
    assert_eq!(schedule.zone(), chrono_tz::Europe::Berlin);
    let shifts: Vec<_> = schedule
        .shifts()
        .iter()
        .map(|s| (s.start, s.end, s.assignees.clone()))
        .collect();
    assert_eq!(
        shifts,
        [
            (
                utc(29, 8),
                utc(30, 8),
                vec![Some(email("ann")), Some(email("cat"))]
            ),
            // 09:00 CET to 09:00 CEST: 23 hours.
            (
                utc(30, 8),
                utc(31, 7),
                vec![Some(email("bob")), Some(email("cat"))]
            ),
        ]
    );
    let missing = import_schedule(&p, &VendorScheduleId("nope".into()), window).await;
    assert!(matches!(missing, Err(Error::NotFound { .. })));
}

#[tokio::test]
async fn a_vendor_conflict_fails_one_operation_not_the_destination() {
    let now = at(3, 12);
    let f = Fixture::new(Vendor::OpsgenieLike, now);
    f.provider.inject(
        Trigger::Write(2),
        Fault::Fail(Error::Conflict {
            message: "alias in use".into(),
        }),
    );
    let report = f.sync(&schedule(3, 11), now).await;
    assert_eq!(report.status, SyncStatus::Partial, "{report}");
    assert_eq!(report.errors.len(), 1);
    assert_eq!(
        f.provider.write_calls(),
        8,
        "the other seven creates went ahead"
    );
    assert_eq!(
        f.high_water(),
        Some(day(4)),
        "held at the failed day 4 (R5)"
    );
}

/// An in-memory provider whose creates answer wrongly.
struct Twisted(InMemoryProvider, Twist);

enum Twist {
    /// Batches answer one result short.
    ShortAnswers,
    /// Creates apply, and then answer as an adapter that re-sent them after a timeout would: the
    /// alias is taken.
    ConflictAfterApplying,
    /// Creates apply, and then the vendor's answer cannot be read.
    UnreadableAfterApplying,
}

#[async_trait]
impl oncall_sync::Provider for Twisted {
    fn name(&self) -> &str {
        "twisted"
    }
    fn capabilities(&self) -> oncall_sync::Capabilities {
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
    async fn on_call(
        &self,
        s: &VendorScheduleId,
        w: Window,
    ) -> Result<Vec<oncall_sync::RoleTimeline>, Error> {
        self.0.on_call(s, w).await
    }
    async fn get_override(
        &self,
        s: &VendorScheduleId,
        id: &oncall_sync::OverrideId,
    ) -> Result<Option<oncall_sync::Override>, Error> {
        self.0.get_override(s, id).await
    }
    async fn list_overrides(
        &self,
        s: &VendorScheduleId,
        w: Window,
    ) -> Result<Vec<oncall_sync::Override>, Error> {
        self.0.list_overrides(s, w).await
    }
    async fn create_overrides(
        &self,
        s: &VendorScheduleId,
        o: &[oncall_sync::NewOverride],
    ) -> Result<Vec<Result<oncall_sync::Override, Error>>, Error> {
        let mut results = self.0.create_overrides(s, o).await?;
        match self.1 {
            Twist::ShortAnswers => {
                results.pop();
                Ok(results)
            }
            Twist::ConflictAfterApplying => self.0.create_overrides(s, o).await,
            Twist::UnreadableAfterApplying => Err(Error::InvalidResponse {
                message: "data[0].alias: missing".into(),
            }),
        }
    }
    async fn update_override(
        &self,
        s: &VendorScheduleId,
        id: &oncall_sync::OverrideId,
        span: &oncall_sync::Span,
    ) -> Result<oncall_sync::Override, Error> {
        self.0.update_override(s, id, span).await
    }
    async fn delete_override(
        &self,
        s: &VendorScheduleId,
        id: &oncall_sync::OverrideId,
    ) -> Result<oncall_sync::Deletion, Error> {
        self.0.delete_override(s, id).await
    }
}

#[tokio::test]
async fn an_override_whose_kept_part_went_unanswered_is_not_removed() {
    let now = at(3, 12);
    let inner = InMemoryProvider::pagerduty_like(now);
    inner.add_schedule(vendor_schedule("VS"));
    // Z reaches past the horizon end (day 11): its part after it must survive the cut.
    let vs = VendorScheduleId("VS".into());
    let z = inner.insert_override(&vs, Span::new(at(10, 12), at(12, 12), email("eve")));
    let provider = Twisted(inner, Twist::ShortAnswers);
    let destination = Destination {
        id: DestinationId("d".into()),
        connection: ConnectionId("c".into()),
        schedule: vs.clone(),
        role: RoleIndex::PRIMARY,
    };
    let store = InMemoryStateStore::new();
    let targets = [SyncTarget {
        destination: &destination,
        provider: &provider,
    }];
    let mut report = sync(&schedule(3, 11), &targets, &store, options(now))
        .await
        .unwrap();
    let report = report.destinations.remove(0);
    let delete_z = report
        .outcomes
        .iter()
        .find(|o| matches!(&o.operation.action, oncall_sync::Action::Delete { target, .. } if target.id == z))
        .unwrap();
    assert_eq!(delete_z.outcome, oncall_sync::Outcome::Skipped, "{report}");
    assert!(
        provider.0.overrides(&vs).iter().any(|o| o.id == z),
        "Z is still there"
    );
}

/// A person moved our override of day 0 (Opsgenie edits keep the alias) so that it now covers the
/// rest of day 1 for the person the host then plans there. Once day 0 has ended, adopting that copy
/// for day 1 must replace the ledger's ended entry of the same id, not sit beside it.
#[tokio::test]
async fn adopting_an_edited_copy_of_an_ended_entry_keeps_one_ledger_entry() {
    let f = Fixture::new(Vendor::OpsgenieLike, day(0));
    let mut host = schedule(0, 4);
    assert_eq!(
        f.sync(&host, day(0) - TimeDelta::hours(1)).await.status,
        SyncStatus::Ok
    );
    let day0 = f
        .vendor_overrides()
        .into_iter()
        .find(|o| o.span.start == day(0))
        .unwrap();
    let hour = TimeDelta::hours(1);
    let edited = Span::new(day(0) + hour, day(2), email("eve"));
    f.provider
        .edit_override(&f.vs(), &day0.id, edited.clone())
        .unwrap();
    host.replace_assignee(RoleIndex::PRIMARY, day(1), Some(email("eve")))
        .unwrap();

    let report = f.sync(&host, day(1) + hour).await;
    assert_eq!(report.status, SyncStatus::Ok, "{report}");
    let ledger = f.ledger();
    let mut ids: Vec<_> = ledger.iter().map(|l| l.id.clone()).collect();
    ids.sort();
    ids.dedup();
    assert_eq!(ids.len(), ledger.len(), "one entry per id: {ledger:?}");
    assert!(
        ledger.iter().any(|l| l.id == day0.id && l.span == edited),
        "the copy is ours again, as the vendor holds it: {ledger:?}"
    );
    let again = f.sync(&host, day(1) + hour * 2).await;
    assert_eq!(again.write_calls, 0, "{again}");
}

/// Opsgenie keeps an alias while its override exists. A person moved our override of day 1 to start
/// two hours early; the host then gives day 1 to someone else while that copy runs. Its past must
/// stay (R1), so it is cut at now and still holds day 1's alias: the new override takes the next
/// alias instead of failing on every sync from then on.
async fn moved_override_setup() -> (Fixture, oncall_sync::Schedule, oncall_sync::OverrideId) {
    let f = Fixture::new(Vendor::OpsgenieLike, day(0));
    let mut host = schedule(0, 4);
    let hour = TimeDelta::hours(1);
    assert_eq!(f.sync(&host, day(0) - hour).await.status, SyncStatus::Ok);
    let day1 = alias_for(&f.destination.id, day(1));
    let moved = Span::new(day(1) - hour * 2, day(1) + hour * 10, email("bob"));
    f.provider.edit_override(&f.vs(), &day1, moved).unwrap();
    host.replace_assignee(RoleIndex::PRIMARY, day(1), Some(email("eve")))
        .unwrap();
    (f, host, day1)
}

#[tokio::test]
async fn a_listed_holder_of_the_alias_makes_the_plan_take_the_next_one() {
    let (f, host, day1) = moved_override_setup().await;
    let hour = TimeDelta::hours(1);
    let report = f.sync(&host, day(1) - hour).await;
    assert_eq!(report.status, SyncStatus::Ok, "{report}");
    assert_eq!(
        report.write_calls, 2,
        "the cut and the create, nothing refused: {report}"
    );
    let next = alias_attempt(&f.destination.id, day(1), 1);
    let overrides = f.vendor_overrides();
    let cut = overrides.iter().find(|o| o.id == day1).unwrap();
    assert_eq!(cut.span.end, day(1) - hour, "the moved copy keeps its past");
    let new = overrides.iter().find(|o| o.id == next).unwrap();
    assert_eq!(new.span, Span::new(day(1), day(2), email("eve")));
    assert!(f.ledger().iter().any(|l| l.id == next));
    assert_eq!(f.sync(&host, day(1) - hour / 2).await.write_calls, 0);
}

#[tokio::test]
async fn a_lost_answer_under_the_next_alias_is_adopted_not_repeated() {
    let (f, host, _) = moved_override_setup().await;
    // Writes: the cut, then the create under the next alias, whose answer is lost. The run reads
    // the window again and takes what landed: no second create, and the run ends ok.
    let base = f.provider.write_calls();
    f.provider
        .inject(Trigger::Write(base + 2), Fault::LoseResponse);
    let hour = TimeDelta::hours(1);
    let report = f.sync(&host, day(1) - hour).await;
    assert_eq!(report.status, SyncStatus::Ok, "{report}");
    assert_eq!(report.write_calls, 2, "the cut and one create: {report}");
    let report = f.sync(&host, day(1) - hour / 2).await;
    assert_eq!(report.status, SyncStatus::Ok, "{report}");
    assert_eq!(report.write_calls, 0, "adopted: {report}");
    let next = alias_attempt(&f.destination.id, day(1), 1);
    assert!(f.ledger().iter().any(|l| l.id == next), "{report}");
    let eves: Vec<_> = f
        .vendor_overrides()
        .into_iter()
        .filter(|o| o.span.member == email("eve"))
        .collect();
    assert_eq!(eves.len(), 1, "{eves:?}");
}

/// The holder of day 1's alias is out of view and out of the ledger: a person moved it to a
/// stretch that has ended, and the run that wrote it lost its state. The vendor refuses the alias,
/// and the driver takes the next one.
#[tokio::test]
async fn an_alias_held_out_of_view_is_refused_then_the_next_one_is_taken() {
    let f = Fixture::new(Vendor::OpsgenieLike, day(0));
    let mut host = schedule(0, 4);
    let hour = TimeDelta::hours(1);
    assert_eq!(
        f.sync(&host, day(0) - hour * 3).await.status,
        SyncStatus::Ok
    );
    let day1 = alias_for(&f.destination.id, day(1));
    let moved = Span::new(day(0) - hour * 2, day(0) - hour, email("bob"));
    f.provider.edit_override(&f.vs(), &day1, moved).unwrap();
    let stored = f.store.load(&f.destination.id).await.unwrap();
    let mut lost = stored.value;
    lost.ledger.retain(|l| l.id != day1);
    f.store
        .save(&f.destination.id, stored.version, &lost)
        .await
        .unwrap();
    host.replace_assignee(RoleIndex::PRIMARY, day(1), Some(email("eve")))
        .unwrap();

    let report = f.sync(&host, day(0)).await;
    assert_eq!(report.status, SyncStatus::Ok, "{report}");
    assert_eq!(report.write_calls, 2, "refused, then taken: {report}");
    let next = alias_attempt(&f.destination.id, day(1), 1);
    let new = f
        .vendor_overrides()
        .into_iter()
        .find(|o| o.id == next)
        .unwrap();
    assert_eq!(new.span, Span::new(day(1), day(2), email("eve")));
    assert!(f.ledger().iter().any(|l| l.id == next));
    assert!(
        f.ledger().iter().all(|l| l.id != day1),
        "the moved copy is forgotten"
    );
    assert_eq!(f.sync(&host, day(0) + hour).await.write_calls, 0);
}

/// An adapter that re-sent a create after a timeout answers that the alias is taken, by the very
/// override asked for. The driver finds it and takes it; nothing is written twice (R6).
#[tokio::test]
async fn our_own_override_under_a_refused_alias_is_taken_not_written_twice() {
    let now = day(0);
    let inner = InMemoryProvider::opsgenie_like(now);
    inner.add_schedule(vendor_schedule("VS"));
    let provider = Twisted(inner, Twist::ConflictAfterApplying);
    let destination = Destination {
        id: DestinationId("dest".into()),
        connection: ConnectionId("conn".into()),
        schedule: VendorScheduleId("VS".into()),
        role: RoleIndex::PRIMARY,
    };
    let store = InMemoryStateStore::new();
    let host = schedule(1, 3);
    let targets = [SyncTarget {
        destination: &destination,
        provider: &provider,
    }];
    let report = sync(&host, &targets, &store, options(now)).await.unwrap();
    let report = &report.destinations[0];
    assert_eq!(report.status, SyncStatus::Ok, "{report}");
    let overrides = provider.0.overrides(&destination.schedule);
    assert_eq!(overrides.len(), 2, "{overrides:?}");
    let ledger = store.get(&destination.id).unwrap().ledger;
    let mut ids: Vec<_> = ledger.iter().map(|l| &l.id).collect();
    ids.sort();
    let mut listed: Vec<_> = overrides.iter().map(|o| &o.id).collect();
    listed.sort();
    assert_eq!(ids, listed, "the ledger holds what the vendor holds, once");
}

/// A vendor answer that cannot be read leaves what happened unknown: nothing more is written in
/// that run, and the next run adopts what landed instead of writing it twice.
#[tokio::test]
async fn nothing_is_written_after_an_answer_that_cannot_be_read() {
    let now = day(0);
    let inner = InMemoryProvider::opsgenie_like(now);
    inner.add_schedule(vendor_schedule("VS"));
    let provider = Twisted(inner, Twist::UnreadableAfterApplying);
    let destination = Destination {
        id: DestinationId("dest".into()),
        connection: ConnectionId("conn".into()),
        schedule: VendorScheduleId("VS".into()),
        role: RoleIndex::PRIMARY,
    };
    let store = InMemoryStateStore::new();
    let host = schedule(1, 5);
    let targets = [SyncTarget {
        destination: &destination,
        provider: &provider,
    }];
    let report = sync(&host, &targets, &store, options(now)).await.unwrap();
    let report = &report.destinations[0];
    assert_eq!(report.status, SyncStatus::Failed, "{report}");
    assert_eq!(report.write_calls, 1, "one create, then nothing: {report}");
    assert_eq!(provider.0.write_calls(), 1);
    assert!(report.outcomes[1..]
        .iter()
        .all(|o| o.outcome == oncall_sync::Outcome::Skipped));
    assert_eq!(
        store.get(&destination.id).unwrap().high_water,
        Some(day(1)),
        "the mark stops at the span whose answer was unreadable"
    );

    // Once the vendor answers properly, the landed create is adopted, not written again.
    let healthy = provider.0;
    let targets = [SyncTarget {
        destination: &destination,
        provider: &healthy,
    }];
    let report = sync(
        &host,
        &targets,
        &store,
        options(now + TimeDelta::minutes(1)),
    )
    .await
    .unwrap();
    let report = &report.destinations[0];
    assert_eq!(report.status, SyncStatus::Ok, "{report}");
    assert_eq!(healthy.overrides(&destination.schedule).len(), 4);
    assert_eq!(report.write_calls, 3, "the three not yet written: {report}");
}
