//! A destination's part of a group's sync, inside its own span: its provider and its store, each
//! call instrumented with the destination's `destination_run` span.
//!
//! The core's `sync` takes every target of a group at once and runs them one after the other;
//! the worker cannot open a span around one destination's turn from outside. What it can do is
//! hand the core, for each destination, a provider and a store whose every call runs in that
//! destination's span: the vendor requests and the state loads and saves of a destination are
//! then traced under it (and under the group's span above it). The planning between those calls
//! is pure computation in the core, traced under the group's span.

use std::collections::HashMap;
use std::sync::Arc;

use async_trait::async_trait;
use oncall_core::{
    Capabilities, Deletion, DestinationId, DestinationState, Error, NewOverride, Override,
    OverrideId, Provider, RoleTimeline, Span, StateStore, VendorSchedule, VendorScheduleId,
    Versioned, Window,
};
use tracing::Instrument;

/// A provider whose every call runs in one destination's span.
pub(super) struct TracedProvider {
    pub(super) inner: Arc<dyn Provider>,
    pub(super) span: tracing::Span,
}

#[async_trait]
impl Provider for TracedProvider {
    fn name(&self) -> &str {
        self.inner.name()
    }

    fn capabilities(&self) -> Capabilities {
        self.inner.capabilities()
    }

    fn account(&self) -> Option<String> {
        self.inner.account()
    }

    async fn list_schedules(&self) -> Result<oncall_core::ScheduleListing, Error> {
        self.inner
            .list_schedules()
            .instrument(self.span.clone())
            .await
    }

    async fn schedule(&self, schedule: &VendorScheduleId) -> Result<VendorSchedule, Error> {
        self.inner
            .schedule(schedule)
            .instrument(self.span.clone())
            .await
    }

    async fn on_call(
        &self,
        schedule: &VendorScheduleId,
        window: Window,
    ) -> Result<Vec<RoleTimeline>, Error> {
        self.inner
            .on_call(schedule, window)
            .instrument(self.span.clone())
            .await
    }

    async fn get_override(
        &self,
        schedule: &VendorScheduleId,
        id: &OverrideId,
    ) -> Result<Option<Override>, Error> {
        self.inner
            .get_override(schedule, id)
            .instrument(self.span.clone())
            .await
    }

    async fn list_overrides(
        &self,
        schedule: &VendorScheduleId,
        window: Window,
    ) -> Result<Vec<Override>, Error> {
        self.inner
            .list_overrides(schedule, window)
            .instrument(self.span.clone())
            .await
    }

    async fn create_overrides(
        &self,
        schedule: &VendorScheduleId,
        overrides: &[NewOverride],
    ) -> Result<Vec<Result<Override, Error>>, Error> {
        self.inner
            .create_overrides(schedule, overrides)
            .instrument(self.span.clone())
            .await
    }

    async fn update_override(
        &self,
        schedule: &VendorScheduleId,
        id: &OverrideId,
        span: &Span,
    ) -> Result<Override, Error> {
        self.inner
            .update_override(schedule, id, span)
            .instrument(self.span.clone())
            .await
    }

    async fn delete_override(
        &self,
        schedule: &VendorScheduleId,
        id: &OverrideId,
    ) -> Result<Deletion, Error> {
        self.inner
            .delete_override(schedule, id)
            .instrument(self.span.clone())
            .await
    }
}

/// A store whose every call runs in the span of the destination it is about.
pub(super) struct TracedStore<'a> {
    pub(super) inner: &'a dyn StateStore,
    pub(super) spans: &'a HashMap<DestinationId, tracing::Span>,
}

impl TracedStore<'_> {
    fn span(&self, destination: &DestinationId) -> tracing::Span {
        self.spans
            .get(destination)
            .cloned()
            .unwrap_or_else(tracing::Span::current)
    }
}

#[async_trait]
impl StateStore for TracedStore<'_> {
    async fn load(
        &self,
        destination: &DestinationId,
    ) -> Result<Versioned<DestinationState>, Error> {
        self.inner
            .load(destination)
            .instrument(self.span(destination))
            .await
    }

    async fn save(
        &self,
        destination: &DestinationId,
        expected: u64,
        state: &DestinationState,
    ) -> Result<u64, Error> {
        self.inner
            .save(destination, expected, state)
            .instrument(self.span(destination))
            .await
    }

    async fn remove(&self, destination: &DestinationId, expected: u64) -> Result<(), Error> {
        self.inner
            .remove(destination, expected)
            .instrument(self.span(destination))
            .await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_traced_provider_keeps_its_providers_account() {
        let now = chrono::DateTime::UNIX_EPOCH;
        let vendor = oncall_core::testkit::InMemoryProvider::pagerduty_like(now);
        vendor.set_account(Some("pagerduty https://acme".into()));
        let traced = TracedProvider {
            inner: Arc::new(vendor),
            span: tracing::Span::none(),
        };
        // `sync` refuses two connections of one account sharing a vendor schedule by it.
        assert_eq!(traced.account().as_deref(), Some("pagerduty https://acme"));
    }
}
