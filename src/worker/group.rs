//! One sync of the claimed destinations of one host schedule, as named steps: ask the host, find
//! the providers, sync through the fenced store, read each destination's outcome; and the
//! tracing span of each destination run, open from the claim to the release.

use std::collections::HashMap;
use std::sync::Arc;

use oncall_core::{
    sync, ConnectionId, Destination, DestinationId, DestinationReport, Error, Provider, SyncMode,
    SyncOptions, SyncTarget,
};
use tracing::field::{debug, display, Empty};
use tracing::{info, info_span, warn};

use super::host::{Host, HostSchedule};
use super::schedule::RunOutcome;
use super::traced::{TracedProvider, TracedStore};
use crate::postgres::{Claim, PostgresStateStore};

/// What became of one claimed destination, and why, for its release.
pub(super) struct Ended {
    pub(super) destination: DestinationId,
    pub(super) outcome: RunOutcome,
    /// The sync's report, when it ran.
    pub(super) report: Option<DestinationReport>,
}

/// The spans of a group's destination runs, by destination.
pub(super) type RunSpans = HashMap<DestinationId, tracing::Span>;

/// Syncs `claims` (all of one host schedule) in one `sync` call, each destination's provider
/// and store calls in its span of `spans`.
pub(super) async fn sync_group<H: Host>(
    host: &H,
    store: &PostgresStateStore,
    worker: &str,
    claims: &[Claim],
    spans: &RunSpans,
) -> Vec<Ended> {
    let Some(first) = claims.first() else {
        return Vec::new();
    };
    let all = |outcome| -> Vec<Ended> {
        claims
            .iter()
            .map(|c| Ended {
                destination: c.destination.clone(),
                outcome,
                report: None,
            })
            .collect()
    };
    let Some(schedule_id) = &first.schedule else {
        // Claimed by name, enrolled nowhere: not a worker's to sync (claim_due never gives one).
        return all(RunOutcome::Unknown);
    };
    let host_schedule = match host.schedule(schedule_id).await {
        Ok(Some(s)) => s,
        Ok(None) => {
            warn!(worker, schedule = %schedule_id, "the host no longer has this schedule: its destinations are unenrolled");
            return all(RunOutcome::Unknown);
        }
        Err(e) => {
            warn!(worker, schedule = %schedule_id, error = %e, "the host could not give the schedule");
            return all(RunOutcome::Failed);
        }
    };
    let (targets, mut ended) = find_targets(host, &host_schedule, worker, claims).await;
    if targets.is_empty() {
        return ended;
    }
    let synced: Vec<Claim> = claims
        .iter()
        .filter(|c| targets.iter().any(|(d, _)| d.id == c.destination))
        .cloned()
        .collect();
    let fenced = store.fenced(&synced);
    let traced_store = TracedStore {
        inner: &fenced,
        spans,
    };
    let providers: Vec<TracedProvider> = targets
        .iter()
        .map(|(destination, provider)| {
            let span = spans
                .get(&destination.id)
                .cloned()
                .unwrap_or_else(tracing::Span::current);
            span.record("connection", display(&destination.connection));
            TracedProvider {
                inner: provider.clone(),
                span,
            }
        })
        .collect();
    let sync_targets: Vec<SyncTarget<'_>> = targets
        .iter()
        .zip(&providers)
        .map(|((destination, _), provider)| SyncTarget {
            destination,
            provider,
        })
        .collect();
    let options = SyncOptions {
        now: host.now(),
        horizon: host_schedule.horizon,
        mode: SyncMode::Apply,
    };
    match sync(
        &host_schedule.schedule,
        &sync_targets,
        &traced_store,
        options,
    )
    .await
    {
        Ok(report) => {
            for d in report.destinations {
                ended.push(Ended {
                    destination: d.destination.clone(),
                    outcome: RunOutcome::of(&d),
                    report: Some(d),
                });
            }
            ended
        }
        Err(e) => {
            // Refused before any call (two destinations on one vendor schedule): the host's
            // configuration is wrong.
            warn!(worker, schedule = %schedule_id, error = %e, "sync refused the destinations");
            ended.extend(synced.iter().map(|c| Ended {
                destination: c.destination.clone(),
                outcome: RunOutcome::Failed,
                report: None,
            }));
            ended
        }
    }
}

type Targets = Vec<(Destination, Arc<dyn Provider>)>;

/// The host's destinations for the claims, each with its connection's provider. A claim the host
/// no longer exports to, or whose provider it cannot give, ends here.
async fn find_targets<H: Host>(
    host: &H,
    host_schedule: &HostSchedule,
    worker: &str,
    claims: &[Claim],
) -> (Targets, Vec<Ended>) {
    let mut providers: HashMap<ConnectionId, Result<Arc<dyn Provider>, Error>> = HashMap::new();
    let (mut targets, mut ended) = (Vec::new(), Vec::new());
    for claim in claims {
        let Some(destination) = host_schedule
            .destinations
            .iter()
            .find(|d| d.id == claim.destination)
        else {
            warn!(worker, destination = %claim.destination, "the host no longer exports here: unenrolled");
            ended.push(Ended {
                destination: claim.destination.clone(),
                outcome: RunOutcome::Unknown,
                report: None,
            });
            continue;
        };
        let provider = match providers.get(&destination.connection) {
            Some(p) => p.clone(),
            None => {
                let p = host.provider(&destination.connection).await;
                providers.insert(destination.connection.clone(), p.clone());
                p
            }
        };
        match provider {
            Ok(provider) => targets.push((destination.clone(), provider)),
            Err(e) => {
                warn!(worker, destination = %destination.id, connection = %destination.connection,
                      error = %e, "no provider for the connection");
                ended.push(Ended {
                    destination: claim.destination.clone(),
                    outcome: RunOutcome::Failed,
                    report: None,
                });
            }
        }
    }
    (targets, ended)
}

/// The span of one destination's run, opened at its claim (under the group's span, `parent`):
/// its fields but the worker and the destination are recorded as they become known.
pub(super) fn destination_span(
    parent: &tracing::Span,
    worker: &str,
    destination: &DestinationId,
) -> tracing::Span {
    info_span!(
        parent: parent,
        "destination_run",
        worker = %worker,
        destination = %destination,
        connection = Empty,
        status = Empty,
        write_calls = Empty,
        mark_before = Empty,
        mark_after = Empty,
        outcome = Empty,
        next_run_s = Empty,
    )
}

/// Records a destination run's outcome in its span (its connection was recorded when its
/// provider was found), and one event in it.
pub(super) fn trace_run(span: &tracing::Span, ended: &Ended, next_run_s: Option<f64>) {
    let (report, outcome) = (ended.report.as_ref(), ended.outcome);
    if let Some(r) = report {
        span.record("status", format!("{:?}", r.status));
        span.record("write_calls", r.write_calls);
        if let Some(t) = r.high_water_before {
            span.record("mark_before", t.to_rfc3339());
        }
        if let Some(t) = r.high_water_after {
            span.record("mark_after", t.to_rfc3339());
        }
    }
    span.record("outcome", debug(outcome));
    if let Some(s) = next_run_s {
        span.record("next_run_s", s);
    }
    let _entered = span.enter();
    let first_error = report
        .and_then(|r| r.errors.first())
        .map(ToString::to_string);
    match (outcome, first_error) {
        (RunOutcome::Synced, None) => info!("destination in step"),
        (_, Some(error)) => warn!(error, "destination run failed"),
        (_, None) => warn!("destination run did not finish"),
    }
}
