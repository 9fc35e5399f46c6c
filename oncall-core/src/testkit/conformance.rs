//! The checks every [`Provider`] must pass, as `pub async fn`s over `&dyn Provider`.
//!
//! An adapter's tests point them at its vendor simulator:
//!
//! ```no_run
//! # async fn demo(provider: &dyn oncall_core::Provider, ctx: oncall_core::testkit::conformance::Context) {
//! oncall_core::testkit::conformance::run_all(provider, &ctx).await;
//! # }
//! ```
//!
//! Each check works in its own stretch of time (days ahead of `now`) and deletes what it created, so
//! the checks can run in any order against one schedule. They panic with a message on failure, as
//! test assertions do.

use chrono::{DateTime, TimeDelta, Utc};

use crate::error::Error;
use crate::model::{Email, Window};
use crate::plan::{Override, Span};
use crate::provider::{Deletion, NewOverride, Provider, VendorScheduleId};
use crate::rotation::OnCallPeriod;

/// What the checks need to know about the account under test.
#[derive(Debug, Clone)]
pub struct Context {
    /// A schedule the key can read and write, with at least one rotation, and no overrides from 10
    /// to 80 days after `now`.
    pub schedule: VendorScheduleId,
    /// At least two members of that schedule.
    pub members: Vec<Email>,
    /// The provider's current time (the simulator's clock).
    pub now: DateTime<Utc>,
}

impl Context {
    fn at(&self, days: i64, hours: i64) -> DateTime<Utc> {
        self.now + TimeDelta::days(days) + TimeDelta::hours(hours)
    }

    fn member(&self, i: usize) -> Email {
        assert!(
            self.members.len() >= 2,
            "the conformance context needs two members"
        );
        self.members[i % self.members.len()].clone()
    }

    fn window(&self, from_days: i64, to_days: i64) -> Window {
        Window::new(self.at(from_days, 0), self.at(to_days, 0)).expect("a non-empty window")
    }
}

/// Runs every check.
pub async fn run_all(provider: &dyn Provider, ctx: &Context) {
    lists_and_reads_schedules(provider, ctx).await;
    reads_on_call_periods(provider, ctx).await;
    creates_a_batch_and_lists_it(provider, ctx).await;
    lists_only_overlapping_overrides(provider, ctx).await;
    answers_per_item_in_a_batch(provider, ctx).await;
    refuses_overrides_that_end_in_the_past(provider, ctx).await;
    updates_in_place_or_says_unsupported(provider, ctx).await;
    deletes_future_overrides(provider, ctx).await;
    keeps_client_ids_unique(provider, ctx).await;
    looks_up_overrides_by_id(provider, ctx).await;
}

async fn create_one(provider: &dyn Provider, ctx: &Context, span: Span) -> Override {
    let mut results = provider
        .create_overrides(
            &ctx.schedule,
            &[NewOverride {
                span: span.clone(),
                id: None,
            }],
        )
        .await
        .expect("create call succeeds");
    assert_eq!(results.len(), 1, "one result per item");
    let created = results.remove(0).expect("the override is created");
    assert_eq!(
        created.span, span,
        "the created override has the span asked for"
    );
    created
}

async fn cleanup(provider: &dyn Provider, ctx: &Context, overrides: &[Override]) {
    for o in overrides {
        let _ = provider.delete_override(&ctx.schedule, &o.id).await;
    }
}

/// `list_schedules` includes the context's schedule with its members; `schedule` returns the same;
/// an unknown schedule is [`Error::NotFound`].
pub async fn lists_and_reads_schedules(provider: &dyn Provider, ctx: &Context) {
    let all = provider.list_schedules().await.expect("list schedules");
    assert!(
        all.unreadable.is_empty(),
        "every schedule of the context reads: {:?}",
        all.unreadable
    );
    let listed = all
        .schedules
        .iter()
        .find(|s| s.id == ctx.schedule)
        .expect("the schedule is listed");
    for m in &ctx.members {
        assert!(
            listed.members.iter().any(|x| &x.email == m),
            "member {m} is listed"
        );
    }
    let one = provider
        .schedule(&ctx.schedule)
        .await
        .expect("read schedule");
    assert_eq!(one.id, listed.id);
    assert_eq!(one.zone, listed.zone);
    let missing = provider
        .schedule(&VendorScheduleId("no-such-schedule-oncall-sync".into()))
        .await;
    assert!(
        matches!(missing, Err(Error::NotFound { .. })),
        "unknown schedule gives NotFound, got {missing:?}"
    );
}

/// `on_call` returns sorted, disjoint periods per role that overlap the window.
pub async fn reads_on_call_periods(provider: &dyn Provider, ctx: &Context) {
    let window = ctx.window(0, 14);
    let timelines = provider
        .on_call(&ctx.schedule, window)
        .await
        .expect("read on-call");
    assert!(
        !timelines.is_empty(),
        "a schedule with a rotation has a timeline"
    );
    for t in &timelines {
        let sorted = t.periods.windows(2).all(|p| p[0].end <= p[1].start);
        assert!(sorted, "periods of {:?} are sorted and disjoint", t.name);
        assert!(
            t.periods.iter().all(|p: &OnCallPeriod| p.start < p.end
                && p.start < window.end()
                && p.end > window.start()),
            "periods of {:?} are non-empty and overlap the window",
            t.name
        );
    }
}

/// A batch create answers one result per item in order; the listing then shows the overrides with
/// their full spans; where the provider takes client ids, it keeps the one asked for.
pub async fn creates_a_batch_and_lists_it(provider: &dyn Provider, ctx: &Context) {
    let caps = provider.capabilities();
    let spans = [
        Span::new(ctx.at(10, 0), ctx.at(10, 8), ctx.member(0)),
        Span::new(ctx.at(10, 8), ctx.at(10, 16), ctx.member(1)),
    ];
    let batch: Vec<NewOverride> = spans
        .iter()
        .enumerate()
        .map(|(i, s)| NewOverride {
            span: s.clone(),
            id: caps
                .client_ids
                .then(|| crate::plan::OverrideId::new(format!("oncall-sync-conformance-{i}"))),
        })
        .collect();
    let mut created = Vec::new();
    for chunk in batch.chunks(caps.max_batch.max(1)) {
        let results = provider
            .create_overrides(&ctx.schedule, chunk)
            .await
            .expect("create call succeeds");
        assert_eq!(results.len(), chunk.len(), "one result per item");
        for (new, r) in chunk.iter().zip(results) {
            let o = r.expect("each override is created");
            assert_eq!(o.span, new.span, "created as asked");
            if let Some(id) = &new.id {
                assert_eq!(&o.id, id, "client-chosen id kept");
            }
            created.push(o);
        }
    }
    assert_ne!(created[0].id, created[1].id, "ids are distinct");
    let listed = provider
        .list_overrides(&ctx.schedule, ctx.window(10, 11))
        .await
        .expect("list overrides");
    for o in &created {
        assert!(listed.contains(o), "listing shows {o:?}; got {listed:?}");
    }
    let starts: Vec<_> = listed.iter().map(|o| o.span.start).collect();
    assert!(
        starts.windows(2).all(|w| w[0] <= w[1]),
        "listing sorted by start"
    );
    cleanup(provider, ctx, &created).await;
}

/// Listing returns exactly the overrides that overlap the window, unclipped.
pub async fn lists_only_overlapping_overrides(provider: &dyn Provider, ctx: &Context) {
    let inside = create_one(
        provider,
        ctx,
        Span::new(ctx.at(20, 0), ctx.at(20, 6), ctx.member(0)),
    )
    .await;
    let outside = create_one(
        provider,
        ctx,
        Span::new(ctx.at(20, 12), ctx.at(20, 18), ctx.member(1)),
    )
    .await;
    let window = Window::new(ctx.at(20, 3), ctx.at(20, 12)).expect("window");
    let listed = provider
        .list_overrides(&ctx.schedule, window)
        .await
        .expect("list overrides");
    assert!(
        listed.contains(&inside),
        "an override overlapping the window is listed whole"
    );
    assert!(
        !listed.iter().any(|o| o.id == outside.id),
        "an override starting at the window's end is not listed"
    );
    cleanup(provider, ctx, &[inside, outside]).await;
}

/// One bad item (an unknown member) fails alone: the others in the batch are created.
pub async fn answers_per_item_in_a_batch(provider: &dyn Provider, ctx: &Context) {
    let unknown = Email::parse("nobody-oncall-sync-conformance@example.invalid").expect("email");
    let items = [
        NewOverride {
            span: Span::new(ctx.at(30, 0), ctx.at(30, 4), ctx.member(0)),
            id: None,
        },
        NewOverride {
            span: Span::new(ctx.at(30, 4), ctx.at(30, 8), unknown.clone()),
            id: None,
        },
    ];
    let mut results = Vec::new();
    for chunk in items.chunks(provider.capabilities().max_batch.max(1)) {
        results.extend(
            provider
                .create_overrides(&ctx.schedule, chunk)
                .await
                .expect("create call succeeds"),
        );
    }
    assert_eq!(results.len(), 2, "one result per item");
    let good = results[0].clone().expect("the valid item is created");
    assert!(
        matches!(&results[1], Err(Error::UnknownMember { email, .. }) if *email == unknown),
        "the unknown member fails alone with UnknownMember, got {:?}",
        results[1]
    );
    cleanup(provider, ctx, &[good]).await;
}

/// An override that ends in the past is refused as [`Error::Rejected`], never created.
pub async fn refuses_overrides_that_end_in_the_past(provider: &dyn Provider, ctx: &Context) {
    let span = Span::new(ctx.at(-2, 0), ctx.at(-1, 0), ctx.member(0));
    let result = provider
        .create_overrides(
            &ctx.schedule,
            &[NewOverride {
                span: span.clone(),
                id: None,
            }],
        )
        .await;
    let refused = match &result {
        Err(Error::Rejected { .. }) => true,
        Ok(items) => items.len() == 1 && matches!(items[0], Err(Error::Rejected { .. })),
        Err(_) => false,
    };
    assert!(refused, "a past override is refused, got {result:?}");
    let listed = provider
        .list_overrides(
            &ctx.schedule,
            Window::new(ctx.at(-2, 0), ctx.at(-1, 0)).expect("window"),
        )
        .await
        .expect("list overrides");
    assert!(
        !listed.iter().any(|o| o.span == span),
        "nothing was created"
    );
}

/// Where the provider updates in place, an update changes member and end and keeps the id; elsewhere
/// it says [`Error::Unsupported`].
pub async fn updates_in_place_or_says_unsupported(provider: &dyn Provider, ctx: &Context) {
    let original = create_one(
        provider,
        ctx,
        Span::new(ctx.at(40, 0), ctx.at(40, 8), ctx.member(0)),
    )
    .await;
    let to = Span::new(ctx.at(40, 0), ctx.at(40, 10), ctx.member(1));
    let result = provider
        .update_override(&ctx.schedule, &original.id, &to)
        .await;
    if provider.capabilities().update_in_place {
        let updated = result.expect("update in place");
        assert_eq!(updated.id, original.id, "update keeps the id");
        assert_eq!(updated.span, to, "update applies");
        let listed = provider
            .list_overrides(&ctx.schedule, ctx.window(40, 41))
            .await
            .expect("list overrides");
        assert!(listed.contains(&updated), "listing shows the update");
    } else {
        assert!(
            matches!(result, Err(Error::Unsupported { .. })),
            "a provider without update says Unsupported, got {result:?}"
        );
    }
    cleanup(provider, ctx, &[original]).await;
}

/// Deleting a future override removes it; deleting it again is [`Error::NotFound`].
pub async fn deletes_future_overrides(provider: &dyn Provider, ctx: &Context) {
    let o = create_one(
        provider,
        ctx,
        Span::new(ctx.at(50, 0), ctx.at(50, 8), ctx.member(0)),
    )
    .await;
    let deleted = provider.delete_override(&ctx.schedule, &o.id).await;
    assert_eq!(
        deleted,
        Ok(Deletion::Deleted),
        "a future override is deleted"
    );
    let listed = provider
        .list_overrides(&ctx.schedule, ctx.window(50, 51))
        .await
        .expect("list overrides");
    assert!(
        !listed.iter().any(|x| x.id == o.id),
        "gone from the listing"
    );
    let again = provider.delete_override(&ctx.schedule, &o.id).await;
    assert!(
        matches!(again, Err(Error::NotFound { .. })),
        "deleting it again gives NotFound, got {again:?}"
    );
}

/// Where the client chooses ids, a create keeps the id asked for, and a second create asking for an
/// id the vendor holds is refused, for that item, with [`Error::Conflict`] (the sync then asks for the
/// next alias). Providers without client-chosen ids pass trivially.
pub async fn keeps_client_ids_unique(provider: &dyn Provider, ctx: &Context) {
    if !provider.capabilities().client_ids {
        return;
    }
    let id = crate::plan::OverrideId::new("oncall-sync-conformance-60");
    let create = |span: Span| {
        let id = id.clone();
        async move {
            provider
                .create_overrides(&ctx.schedule, &[NewOverride { span, id: Some(id) }])
                .await
                .expect("create call succeeds")
        }
    };
    let first = Span::new(ctx.at(60, 0), ctx.at(60, 8), ctx.member(0));
    let created = create(first.clone())
        .await
        .pop()
        .expect("one result per item")
        .expect("the override is created");
    assert_eq!(created.id, id, "the override keeps the id asked for");
    assert_eq!(
        created.span, first,
        "the created override has the span asked for"
    );
    let second = create(Span::new(ctx.at(61, 0), ctx.at(61, 8), ctx.member(1)))
        .await
        .pop()
        .expect("one result per item");
    assert!(
        matches!(second, Err(Error::Conflict { .. })),
        "an id the vendor holds is a Conflict, got {second:?}"
    );
    let listed = provider
        .list_overrides(&ctx.schedule, ctx.window(60, 62))
        .await
        .expect("list overrides");
    assert_eq!(
        listed,
        vec![created.clone()],
        "only the first override exists"
    );
    cleanup(provider, ctx, &[created]).await;
}

/// Where overrides can be changed in place, one can be looked up by id wherever it lies, and a
/// deleted one is `None`; elsewhere the lookup answers correctly or says [`Error::Unsupported`].
pub async fn looks_up_overrides_by_id(provider: &dyn Provider, ctx: &Context) {
    let o = create_one(
        provider,
        ctx,
        Span::new(ctx.at(70, 0), ctx.at(70, 8), ctx.member(0)),
    )
    .await;
    let found = provider.get_override(&ctx.schedule, &o.id).await;
    if !provider.capabilities().update_in_place {
        assert!(
            matches!(&found, Err(Error::Unsupported { .. })) || found == Ok(Some(o.clone())),
            "a lookup answers the override or Unsupported, got {found:?}"
        );
        cleanup(provider, ctx, &[o]).await;
        return;
    }
    assert_eq!(found, Ok(Some(o.clone())), "the override is found by id");
    // Moved far out of any window the sync reads, it keeps its id and is still found.
    let moved = Span::new(ctx.at(75, 0), ctx.at(75, 8), ctx.member(1));
    provider
        .update_override(&ctx.schedule, &o.id, &moved)
        .await
        .expect("update in place");
    let found = provider.get_override(&ctx.schedule, &o.id).await;
    assert_eq!(
        found,
        Ok(Some(Override {
            id: o.id.clone(),
            span: moved
        })),
        "a moved override is found where it lies"
    );
    provider
        .delete_override(&ctx.schedule, &o.id)
        .await
        .expect("delete");
    let gone = provider.get_override(&ctx.schedule, &o.id).await;
    assert_eq!(gone, Ok(None), "a deleted override is not found");
}
