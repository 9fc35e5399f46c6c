//! Property tests for DESIGN §3 rules R1-R7 over random sequences of host changes, manual vendor
//! edits, time passing, syncs and faults, against PagerDuty-like and Opsgenie-like providers.

#![allow(clippy::unwrap_used)] // tests: a panic is the failure report

mod common;

use std::collections::HashMap;

use chrono::{DateTime, TimeDelta, Utc};
use common::*;
use oncall_sync::testkit::{Fault, InMemoryProvider, Trigger, VendorSimulator};
use oncall_sync::{
    sync, ConnectionId, Destination, DestinationId, DestinationReport, Error, Override, RoleIndex,
    Schedule, ScheduleId, Shift, Span, StateStore, SyncMode, SyncOptions, SyncStatus, SyncTarget,
};
use proptest::prelude::*;

#[derive(Debug, Clone)]
enum SyncFault {
    None,
    FailWrite(usize),
    LoseWrite(usize),
    ReadOnly,
    RateLimited,
    CrashAfterSaves(usize),
}

#[derive(Debug, Clone)]
enum Step {
    /// The host sets (or clears) the primary of shift `i`.
    Assign { shift: usize, who: Option<usize> },
    /// The host swaps the primaries of two shifts.
    Swap { a: usize, b: usize },
    /// A person adds an override: start offset from now in hours, length in hours.
    ManualAdd { offset: i64, hours: i64, who: usize },
    /// A person deletes the k-th vendor override.
    ManualDelete { k: usize },
    /// A person changes the end of the k-th vendor override.
    ManualEdit {
        k: usize,
        hours: i64,
        shift: i64,
        who: Option<usize>,
    },
    /// Time passes.
    Wait { hours: i64 },
    /// The host exports further ahead.
    Horizon { days: i64 },
    /// A sync, possibly with a fault.
    Sync(SyncFault),
}

fn step() -> impl Strategy<Value = Step> {
    prop_oneof![
        2 => (0usize..40, prop::option::weighted(0.8, 0usize..5)).prop_map(|(shift, who)| Step::Assign { shift, who }),
        1 => (0usize..40, 0usize..40).prop_map(|(a, b)| Step::Swap { a, b }),
        2 => (-48i64..(24 * 15), 1i64..72, 0usize..5).prop_map(|(offset, hours, who)| Step::ManualAdd { offset, hours, who }),
        1 => (0usize..30).prop_map(|k| Step::ManualDelete { k }),
        1 => (0usize..30, 1i64..60, -3i64..4, prop::option::of(0usize..5))
            .prop_map(|(k, hours, shift, who)| Step::ManualEdit { k, hours, shift, who }),
        2 => (1i64..40).prop_map(|hours| Step::Wait { hours }),
        1 => (2i64..16).prop_map(|days| Step::Horizon { days }),
        4 => prop_oneof![
            4 => Just(SyncFault::None),
            1 => (1usize..6).prop_map(SyncFault::FailWrite),
            1 => (1usize..6).prop_map(SyncFault::LoseWrite),
            1 => Just(SyncFault::ReadOnly),
            1 => Just(SyncFault::RateLimited),
            2 => (0usize..6).prop_map(SyncFault::CrashAfterSaves),
        ].prop_map(Step::Sync),
    ]
}

struct World {
    f: Fixture,
    shape: Shape,
    /// Overrides a person edited in place (Opsgenie keeps the alias): theirs to shape as they like,
    /// unless the ledger holds them as they are.
    edited: std::collections::HashSet<oncall_sync::OverrideId>,
    /// Parts of overrides the syncs re-created: their ids, and the overrides whose parts they keep.
    kept_parts: std::cell::RefCell<HashMap<oncall_sync::OverrideId, oncall_sync::OverrideId>>,
    schedule: Schedule,
    now: DateTime<Utc>,
    horizon: i64,
    /// A second destination whose provider always fails, synced alongside (R7).
    broken_provider: InMemoryProvider,
    broken: Destination,
}

/// Shift boundaries, as (hours of gap before, hours long) per shift from day 0 on.
type Shape = Vec<(i64, i64)>;

/// Forty daily shifts.
fn daily() -> Shape {
    vec![(0, 24); 40]
}

fn host_schedule(shape: &[(i64, i64)], assignees: &[Option<usize>]) -> Schedule {
    let mut end = day(0);
    let shifts = shape
        .iter()
        .zip(assignees)
        .map(|(&(gap, hours), who)| {
            let start = end + TimeDelta::hours(gap);
            end = start + TimeDelta::hours(hours);
            Shift::new(
                start,
                end,
                vec![who.map(|w| email(PEOPLE[w])), Some(email("eve"))],
            )
        })
        .collect();
    Schedule::new(
        ScheduleId("host".into()),
        chrono_tz::UTC,
        vec!["primary".into(), "secondary".into()],
        members(),
        shifts,
    )
    .unwrap()
}

impl World {
    fn new(
        vendor: Vendor,
        shape: Shape,
        assignees: &[Option<usize>],
        start_hours: i64,
        clock_step: i64,
    ) -> World {
        let now = day(2) + TimeDelta::hours(start_hours);
        let broken_provider = InMemoryProvider::pagerduty_like(now);
        broken_provider.add_schedule(vendor_schedule("B"));
        broken_provider.set_read_only(true);
        World {
            f: {
                let f = Fixture::new(vendor, now);
                f.provider.set_clock_step(TimeDelta::seconds(clock_step));
                f
            },
            schedule: host_schedule(&shape, assignees),
            shape,
            edited: Default::default(),
            kept_parts: Default::default(),
            now,
            horizon: 5,
            broken_provider,
            broken: Destination {
                id: DestinationId("broken".into()),
                connection: ConnectionId("broken-conn".into()),
                schedule: oncall_sync::VendorScheduleId("B".into()),
                role: RoleIndex::PRIMARY,
            },
        }
    }

    async fn sync(&self, store: &dyn StateStore) -> DestinationReport {
        // The vendor's clock runs on during a sync and never goes back.
        self.f.provider.set_now(self.now.max(self.f.provider.now()));
        self.broken_provider.set_now(self.now);
        let targets = [
            SyncTarget {
                destination: &self.broken,
                provider: &self.broken_provider,
            },
            SyncTarget {
                destination: &self.f.destination,
                provider: &self.f.provider,
            },
        ];
        let options = SyncOptions {
            now: self.now,
            horizon: Some(TimeDelta::days(self.horizon)),
            mode: SyncMode::Apply,
        };
        let before: std::collections::HashSet<_> = self
            .f
            .vendor_overrides()
            .into_iter()
            .map(|o| o.id)
            .collect();
        let mut report = sync(&self.schedule, &targets, store, options)
            .await
            .unwrap();
        // The overrides this sync wrote as kept parts: new, not ours, with the span of a kept-part
        // create (a failed one may still have landed). Any other new one that is not ours is a
        // create of ours whose answer was lost.
        let parts: HashMap<&Span, &oncall_sync::OverrideId> = report.destinations[1]
            .outcomes
            .iter()
            .filter_map(|o| match &o.operation.action {
                oncall_sync::Action::Create {
                    span,
                    keeps_part_of: Some(of),
                    ..
                } => Some((span, of)),
                _ => None,
            })
            .collect();
        let ledger: std::collections::HashSet<_> =
            self.ledger().into_iter().map(|l| l.id).collect();
        for o in self.f.vendor_overrides() {
            if !before.contains(&o.id) && !ledger.contains(&o.id) {
                if let Some(of) = parts.get(&o.span) {
                    self.kept_parts.borrow_mut().insert(o.id, (*of).clone());
                }
            }
        }
        // R7: the broken destination fails alone; nothing of it is written and its ledger stays empty.
        // (R5 may carry its mark over a stretch that needed no write, never past a failed step.)
        let broken = &report.destinations[0];
        let had_writes = broken.plan.as_ref().is_some_and(|p| p.write_count() > 0);
        if had_writes {
            assert_eq!(broken.status, SyncStatus::Failed);
        }
        let broken_state = self.f.store.get(&self.broken.id).unwrap_or_default();
        assert!(broken_state.ledger.is_empty());
        assert!(self
            .broken_provider
            .overrides(&self.broken.schedule)
            .is_empty());
        if let (Some(h), Some(plan)) = (broken_state.high_water, &broken.plan) {
            let first_write = plan.operations.iter().filter_map(|o| o.mark_limit).min();
            assert!(
                first_write.is_none_or(|t| h <= t),
                "R5/R7: mark past a failed step"
            );
        }
        report.destinations.remove(1)
    }

    fn ledger(&self) -> Vec<Override> {
        self.f.ledger()
    }

    /// Host and vendor share one clock: while a sync ran, the vendor's moved on, and the next sync's
    /// `now` is read after that.
    fn catch_up(&mut self) {
        self.now = self.now.max(self.f.provider.now());
    }
}

fn clip(
    span: &Span,
    from: DateTime<Utc>,
    to: DateTime<Utc>,
) -> Option<(DateTime<Utc>, DateTime<Utc>, String)> {
    let (s, e) = (span.start.max(from), span.end.min(to));
    (s < e).then(|| (s, e, span.member.to_string()))
}

/// Checks R1-R5 for one sync, given the vendor and ledger before it.
fn check_rules(
    w: &World,
    before: &[Override],
    ledger_before: &[Override],
    h_before: Option<DateTime<Utc>>,
    report: &DestinationReport,
) {
    let now = w.now;
    let after = w.f.vendor_overrides();
    let after_by_id: HashMap<_, _> = after.iter().map(|o| (o.id.clone(), o)).collect();
    let before_ids: HashMap<_, _> = before.iter().map(|o| (o.id.clone(), o)).collect();

    // R1: history is untouched; what ran at `now` keeps its past.
    for o in before {
        if o.span.end <= now {
            assert_eq!(
                after_by_id.get(&o.id).copied(),
                Some(o),
                "R1: ended override changed"
            );
        } else if o.span.start < now {
            let a = after_by_id
                .get(&o.id)
                .unwrap_or_else(|| panic!("R1: running override {o:?} vanished"));
            assert_eq!(
                (a.span.start, &a.span.member),
                (o.span.start, &o.span.member),
                "R1: running override's past changed"
            );
            assert!(a.span.end >= now, "R1: cut before now");
        }
    }
    for a in &after {
        if !before_ids.contains_key(&a.id) {
            assert!(a.span.start >= now, "R1: created in the past: {a:?}");
        }
    }

    let Some(plan) = &report.plan else { return };
    // What was cut "now" ends at the vendor's now, a moment later than the plan's.
    let vendor_now = w.f.provider.now();
    let (fresh, end) = (plan.fresh_from, plan.horizon_end);
    let ledger_ids: std::collections::HashSet<_> =
        ledger_before.iter().map(|l| l.id.clone()).collect();

    // R3: foreign overrides wholly before the fresh region are never touched.
    for o in before {
        if !ledger_ids.contains(&o.id)
            && o.span.end > now
            && o.span.end <= fresh
            && !o.id.as_str().starts_with(oncall_sync::ALIAS_PREFIX)
        {
            assert_eq!(
                after_by_id.get(&o.id).copied(),
                Some(o),
                "R3: foreign override in the protected region touched"
            );
        }
    }

    // R5: the mark never moves backwards and never passes E.
    let h_after = w.f.high_water();
    if let (Some(b), Some(a)) = (h_before, h_after) {
        assert!(a >= b, "R5: mark moved backwards");
    }
    if let Some(a) = h_after {
        assert!(a <= end.max(h_before.unwrap_or(a)), "R5: mark beyond E");
    }

    if report.status != SyncStatus::Ok {
        return;
    }
    assert_eq!(
        h_after,
        Some(h_before.map_or(end, |h| h.max(end))).filter(|h| *h > now || h_before.is_some()),
        "R5 after success"
    );

    // R2: after success, the vendor's overrides in [F, E) are exactly the desired spans there.
    let desired = oncall_sync::desired_spans(
        &w.schedule,
        RoleIndex::PRIMARY,
        now,
        Some(TimeDelta::days(w.horizon)),
    )
    .unwrap();
    let checked_from = fresh.max(vendor_now);
    let mut want: Vec<_> = desired
        .spans()
        .iter()
        .filter_map(|s| clip(s, checked_from, end))
        .collect();
    let mut got: Vec<_> = after
        .iter()
        .filter_map(|o| clip(&o.span, checked_from, end))
        .collect();
    want.sort();
    got.sort();
    assert_eq!(got, want, "R2: fresh region [{checked_from}, {end})");

    // R4: in the protected region the ledger now equals the desired spans (both clipped at now).
    let protected = |spans: Vec<(DateTime<Utc>, DateTime<Utc>, String)>| {
        let mut spans: Vec<_> = spans.into_iter().filter(|(s, _, _)| *s < fresh).collect();
        spans.sort();
        spans
    };
    let ledger = protected(
        w.ledger()
            .iter()
            .filter_map(|l| clip(&l.span, now, end))
            .collect(),
    );
    let planned = protected(
        desired
            .spans()
            .iter()
            .filter_map(|s| clip(s, now, end))
            .collect(),
    );
    assert_eq!(ledger, planned, "R4: protected region");
}

async fn run_with_clock(
    vendor: Vendor,
    shape: Shape,
    assignees: Vec<Option<usize>>,
    start_hours: i64,
    clock_step: i64,
    steps: Vec<Step>,
) {
    let mut w = World::new(vendor, shape, &assignees, start_hours, clock_step);
    let mut assignees = assignees;
    for step in steps {
        match step {
            Step::Assign { shift, who } => {
                assignees[shift] = who;
                w.schedule = host_schedule(&w.shape, &assignees);
            }
            Step::Swap { a, b } => {
                assignees.swap(a, b);
                w.schedule = host_schedule(&w.shape, &assignees);
            }
            Step::ManualAdd { offset, hours, who } => {
                let start = w.now + TimeDelta::hours(offset);
                w.f.foreign(start, start + TimeDelta::hours(hours), PEOPLE[who]);
            }
            Step::ManualDelete { k } => {
                let all = w.f.vendor_overrides();
                if let Some(o) = all.get(k % all.len().max(1)) {
                    w.f.provider.remove_override(&w.f.vs(), &o.id);
                }
            }
            Step::ManualEdit {
                k,
                hours,
                shift,
                who,
            } => {
                let all = w.f.vendor_overrides();
                if let Some(o) = all.get(k % all.len().max(1)) {
                    // A person moves the start, the end, or the person of any override.
                    let start = o.span.start + TimeDelta::hours(shift);
                    let member = who.map_or(o.span.member.clone(), |w| email(PEOPLE[w]));
                    let span = Span::new(start, start + TimeDelta::hours(hours), member);
                    if let Some(id) = w.f.provider.edit_override(&w.f.vs(), &o.id, span) {
                        w.edited.insert(id);
                    }
                }
            }
            Step::Wait { hours } => w.now += TimeDelta::hours(hours),
            Step::Horizon { days } => w.horizon = days,
            Step::Sync(fault) => {
                w.catch_up();
                let before = w.f.vendor_overrides();
                let ledger_before = w.ledger();
                let h_before = w.f.high_water();
                let base = w.f.provider.write_calls();
                let crash_store;
                let store: &dyn StateStore = match fault {
                    SyncFault::None => &w.f.store,
                    SyncFault::FailWrite(k) => {
                        w.f.provider.inject(
                            Trigger::Write(base + k),
                            Fault::Fail(Error::Transient {
                                message: "503".into(),
                            }),
                        );
                        &w.f.store
                    }
                    SyncFault::LoseWrite(k) => {
                        w.f.provider
                            .inject(Trigger::Write(base + k), Fault::LoseResponse);
                        &w.f.store
                    }
                    SyncFault::ReadOnly => {
                        w.f.provider.set_read_only(true);
                        &w.f.store
                    }
                    SyncFault::RateLimited => {
                        w.f.provider.rate_limit_next(2);
                        &w.f.store
                    }
                    SyncFault::CrashAfterSaves(n) => {
                        crash_store = CrashingStore::new(&w.f.store, n);
                        &crash_store
                    }
                };
                let report = w.sync(store).await;
                if std::env::var("SYNC_PROPS_DEBUG").is_ok() {
                    let show = |v: Vec<Override>| {
                        v.iter()
                            .map(|o| format!("    {} {}\n", o.id, o.span))
                            .collect::<String>()
                    };
                    eprintln!(
                        "--- sync {fault:?} at {}\n{report}vendor:\n{}ledger:\n{}",
                        w.now,
                        show(w.f.vendor_overrides()),
                        show(w.ledger())
                    );
                }
                w.f.provider.clear_faults();
                check_rules(&w, &before, &ledger_before, h_before, &report);
                if let SyncFault::ReadOnly = fault {
                    assert!(
                        report
                            .errors
                            .iter()
                            .all(|e| matches!(e.error, Error::PermissionDenied { .. })),
                        "R8"
                    );
                    assert!(report.write_calls <= 1, "R8: never retried");
                }
                // Every sync is followed by a clean one a little later, which must converge; then a
                // second clean one at the same instant must make no write call (R6).
                w.now += TimeDelta::seconds(90);
                w.catch_up();
                let before = w.f.vendor_overrides();
                let ledger_before = w.ledger();
                let h_before = w.f.high_water();
                let report = w.sync(&w.f.store).await;
                if std::env::var("SYNC_PROPS_DEBUG").is_ok() {
                    eprintln!("--- clean sync\n{report}");
                }
                assert_eq!(
                    report.status,
                    SyncStatus::Ok,
                    "converges after {fault:?}: {report}"
                );
                check_rules(&w, &before, &ledger_before, h_before, &report);
                w.catch_up();
                let again = w.sync(&w.f.store).await;
                assert_eq!(
                    again.write_calls, 0,
                    "R6: a second sync with nothing changed writes nothing: {again}"
                );
                // No duplicates of ours.
                let ours: Vec<_> = w.ledger().iter().map(|l| l.id.clone()).collect();
                let mut unique = ours.clone();
                unique.sort();
                unique.dedup();
                assert_eq!(ours.len(), unique.len(), "ledger ids unique");
                // Nothing the sync wrote exists twice. Copies of one span are allowed only as one of
                // ours (the ledger holds it as it is), kept parts of distinct overrides (a person's
                // part before F may equal a planned change: both stand), and a person's (theirs, or
                // one of ours they edited, e.g. moved onto another of ours).
                let ledger: HashMap<_, _> =
                    w.ledger().into_iter().map(|l| (l.id, l.span)).collect();
                let mut by_span: HashMap<Span, Vec<oncall_sync::OverrideId>> = HashMap::new();
                for o in w.f.vendor_overrides() {
                    if o.span.end > w.now {
                        by_span.entry(o.span).or_default().push(o.id);
                    }
                }
                let kept = w.kept_parts.borrow();
                for (span, ids) in by_span.into_iter().filter(|(_, ids)| ids.len() > 1) {
                    let (ours, others): (Vec<_>, Vec<_>) =
                        ids.iter().partition(|id| ledger.get(*id) == Some(&span));
                    let mut origins = Vec::new();
                    let mut unexplained = Vec::new();
                    for id in others {
                        if let Some(of) = kept.get(id) {
                            origins.push(of);
                        } else if !id.as_str().starts_with("manual-") && !w.edited.contains(id) {
                            unexplained.push(id);
                        }
                    }
                    let parts = origins.len();
                    origins.sort();
                    origins.dedup();
                    assert!(
                        ours.len() <= 1 && unexplained.is_empty() && origins.len() == parts,
                        "written twice: {span} (ours: {ours:?}; unexplained: {unexplained:?}; kept \
                         parts of {origins:?} from {parts}): {:?}",
                        w.f.vendor_overrides()
                    );
                }
            }
        }
    }
}

proptest! {
    // SYNC_PROPS_CASES raises the count for a deeper search than CI's.
    #![proptest_config(ProptestConfig {
        cases: std::env::var("SYNC_PROPS_CASES").ok().and_then(|v| v.parse().ok()).unwrap_or(160),
        failure_persistence: None,
        ..ProptestConfig::default()
    })]

    #[test]
    fn rules_hold_over_random_histories(
        vendor in prop::sample::select(VENDORS.to_vec()),
        // Daily shifts, or shifts of 1 to 48 hours, mostly back to back, some after a gap (a
        // rotation's restriction).
        shape in prop_oneof![
            1 => Just(daily()),
            2 => prop::collection::vec((prop_oneof![3 => Just(0i64), 1 => 1i64..12], 1i64..49), 40),
        ],
        assignees in prop::collection::vec(prop::option::weighted(0.85, 0usize..5), 40),
        start_hours in 0i64..24,
        clock_step in prop_oneof![Just(0i64), 1i64..6],
        steps in prop::collection::vec(step(), 1..16),
    ) {
        let rt = tokio::runtime::Builder::new_current_thread().build().unwrap();
        rt.block_on(run_with_clock(vendor, shape, assignees, start_hours, clock_step, steps));
    }
}

// Histories the property test once shrank to; kept as named regressions.

fn everyone() -> Vec<Option<usize>> {
    (0..40).map(|i| Some(i % 5)).collect()
}

/// Shifts starting with `head`, then one-hour shifts, forty in all.
fn shaped(head: &[(i64, i64)]) -> Shape {
    let mut shape = head.to_vec();
    shape.resize(40, (0, 1));
    shape
}

/// Forty shifts, nobody assigned but `who` (shift, person).
fn assigned(who: &[(usize, usize)]) -> Vec<Option<usize>> {
    let mut assignees = vec![None; 40];
    for &(shift, person) in who {
        assignees[shift] = Some(person);
    }
    assignees
}

/// Runs the history against both vendors.
async fn run_everywhere(
    shape: Shape,
    assignees: Vec<Option<usize>>,
    start_hours: i64,
    steps: Vec<Step>,
) {
    for vendor in VENDORS {
        run_with_clock(
            vendor,
            shape.clone(),
            assignees.clone(),
            start_hours,
            0,
            steps.clone(),
        )
        .await;
    }
}

/// A person stretches an override of ours into the fresh region: the stretch is cut (R2), the
/// override stays ours (R3).
#[tokio::test]
async fn regression_our_override_stretched_into_the_fresh_region() {
    let steps = vec![
        Step::Wait { hours: 1 },
        Step::Sync(SyncFault::None),
        Step::ManualEdit {
            k: 17,
            hours: 25,
            shift: 0,
            who: None,
        },
        Step::Wait { hours: 24 },
        Step::Sync(SyncFault::None),
    ];
    run_everywhere(daily(), everyone(), 0, steps).await;
}

/// The same stretch reaching past the horizon end while the key is read-only: nothing is re-keyed
/// wrongly, and the next clean sync is final.
#[tokio::test]
async fn regression_stretch_past_the_horizon_with_a_read_only_key() {
    let steps = vec![
        Step::Sync(SyncFault::None),
        Step::ManualAdd {
            offset: 0,
            hours: 1,
            who: 0,
        },
        Step::ManualEdit {
            k: 6,
            hours: 25,
            shift: 0,
            who: None,
        },
        Step::Sync(SyncFault::ReadOnly),
    ];
    run_everywhere(daily(), everyone(), 1, steps).await;
}

/// A person stretches our running override past its end; once our span has ended, the stretched
/// copy is theirs and is never taken back by its alias.
#[tokio::test]
async fn regression_stretched_running_override_outlives_our_span() {
    let steps = vec![
        Step::Sync(SyncFault::None),
        Step::ManualEdit {
            k: 12,
            hours: 41,
            shift: 0,
            who: None,
        },
        Step::Assign {
            shift: 0,
            who: None,
        },
        Step::Wait { hours: 16 },
        Step::Sync(SyncFault::RateLimited),
    ];
    run_everywhere(daily(), everyone(), 8, steps).await;
}

/// A run dies right after re-creating the part of a foreign override beyond the horizon; the next
/// run must see that part (it starts exactly at the horizon end) and not create it twice.
#[tokio::test]
async fn regression_part_kept_beyond_the_horizon_by_a_dead_run() {
    let steps = vec![
        Step::ManualAdd {
            offset: 110,
            hours: 33,
            who: 0,
        },
        Step::Sync(SyncFault::CrashAfterSaves(0)),
    ];
    run_everywhere(daily(), everyone(), 2, steps).await;
}

/// A person moves an override of ours (Opsgenie keeps the alias) exactly onto the next one of ours:
/// the person made that copy, in the protected region, and it stands (R3).
#[tokio::test]
async fn regression_a_person_moves_ours_onto_ours() {
    let assignees = assigned(&[(2, 0), (3, 0)]);
    let steps = vec![
        Step::Sync(SyncFault::CrashAfterSaves(0)),
        Step::ManualEdit {
            k: 0,
            hours: 24,
            shift: 3,
            who: None,
        },
        Step::Sync(SyncFault::None),
    ];
    run_everywhere(daily(), assignees, 21, steps).await;
}

/// A person moves ours to start two hours early; the host changes who is on call there while that
/// copy runs. The copy is cut at now and keeps its alias, so the new override takes the next one.
#[tokio::test]
async fn regression_a_moved_copy_keeps_the_alias_of_its_start() {
    let shape = shaped(&[
        (0, 36),
        (0, 39),
        (9, 11),
        (0, 1),
        (0, 18),
        (11, 2),
        (7, 5),
        (0, 40),
        (1, 1),
    ]);
    let assignees = assigned(&[(3, 0), (4, 0), (7, 0), (19, 1)]);
    let steps = vec![
        Step::Sync(SyncFault::None),
        Step::ManualAdd {
            offset: 0,
            hours: 1,
            who: 0,
        },
        Step::Swap { a: 19, b: 3 },
        Step::ManualEdit {
            k: 0,
            hours: 1,
            shift: 0,
            who: None,
        },
        Step::Wait { hours: 35 },
        Step::ManualEdit {
            k: 13,
            hours: 1,
            shift: -2,
            who: None,
        },
        Step::Sync(SyncFault::None),
    ];
    run_everywhere(shape, assignees, 10, steps).await;
}

/// On PagerDuty a person's override straddling F loses its part before F, which is re-created; that
/// part equals a planned change written beside it. Both stand: the part is the person's (R3), the
/// change is ours (R4), and neither is a duplicate of the other.
#[tokio::test]
async fn regression_a_kept_part_equal_to_a_planned_change() {
    let shape = shaped(&[
        (0, 12),
        (0, 47),
        (0, 33),
        (0, 47),
        (0, 16),
        (4, 1),
        (0, 1),
        (0, 12),
    ]);
    let assignees = assigned(&[(3, 0), (4, 0), (5, 2), (6, 0)]);
    let steps = vec![
        Step::Sync(SyncFault::None),
        Step::Assign {
            shift: 7,
            who: Some(2),
        },
        Step::ManualEdit {
            k: 2,
            hours: 13,
            shift: 2,
            who: None,
        },
        Step::Wait { hours: 5 },
        Step::Sync(SyncFault::None),
    ];
    run_everywhere(shape, assignees, 0, steps).await;
}

/// A person moves a future override of ours (Opsgenie keeps the alias) to run now, for the person
/// the host then plans for the override's own span. Extending the running copy to the span's end
/// would put that person on call in the stretch between; the copy is cut and the span written.
#[tokio::test]
async fn regression_a_running_moved_copy_is_not_stretched_to_a_later_span() {
    let shape = shaped(&[
        (0, 1),
        (0, 11),
        (0, 23),
        (0, 31),
        (0, 2),
        (0, 6),
        (0, 33),
        (0, 36),
        (0, 42),
    ]);
    let assignees = assigned(&[(3, 0), (4, 0), (5, 0), (6, 0), (7, 0), (8, 0)]);
    let steps = vec![
        Step::Sync(SyncFault::None),
        Step::ManualEdit {
            k: 7,
            hours: 1,
            shift: -2,
            who: Some(4),
        },
        Step::Assign {
            shift: 4,
            who: Some(4),
        },
        Step::Sync(SyncFault::None),
    ];
    run_everywhere(shape, assignees, 16, steps).await;
}
