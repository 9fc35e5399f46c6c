//! One run of a claimed group of one host schedule, as named steps: settle `now` (the host's
//! clock or the database's), retire the destinations the host asked to retire, ask the host
//! for the schedule, find the providers, sync through the fenced store, read each destination's
//! outcome; and the tracing span of each destination run, open from the claim to the release.

use std::collections::HashMap;
use std::sync::Arc;

use chrono::{DateTime, Utc};
use oncall_core::{
    retire, sync, ConnectionId, Destination, DestinationId, DestinationReport, Error, Provider,
    SyncMode, SyncOptions, SyncTarget,
};
use tracing::field::{debug, display, Empty};
use tracing::{info, info_span, warn};

use super::host::{Host, HostSchedule};
use super::schedule::RunOutcome;
use super::traced::{TracedProvider, TracedStore};
use super::{Clock, WorkerOptions};
use crate::postgres::{is_named_again, Claim, LeasedGroup, PostgresStateStore};

/// What became of one claimed destination, and why, for its release.
pub(super) struct Ended {
    pub(super) destination: DestinationId,
    pub(super) outcome: RunOutcome,
    /// The sync's report, when it ran.
    pub(super) report: Option<DestinationReport>,
}

/// The spans of a group's destination runs, by destination.
pub(super) type RunSpans = HashMap<DestinationId, tracing::Span>;

/// Syncs the group's claims (all of one host schedule) in one `sync` call, each destination's
/// provider and store calls in its span of `spans`; retires those the host asked to retire.
pub(super) async fn sync_group<H: Host>(
    host: &H,
    store: &PostgresStateStore,
    options: &WorkerOptions,
    group: &LeasedGroup,
    spans: &RunSpans,
) -> Vec<Ended> {
    let worker = options.id.as_str();
    let (retiring, claims): (Vec<Claim>, Vec<Claim>) =
        group.claims().iter().cloned().partition(|c| c.retiring);
    let Some(now) = now(host, store, options).await else {
        return ended(group.claims(), RunOutcome::Failed);
    };
    let mut ended_runs = retire_all(host, group, &retiring, now, worker, spans).await;
    if claims.is_empty() {
        return ended_runs;
    }
    ended_runs.extend(sync_claims(host, group, &claims, now, worker, spans).await);
    ended_runs
}

/// The instant the group's runs plan with, from the clock the options name.
async fn now<H: Host>(
    host: &H,
    store: &PostgresStateStore,
    options: &WorkerOptions,
) -> Option<DateTime<Utc>> {
    match options.clock {
        Clock::Host => Some(host.now()),
        Clock::Database => match store.database_now().await {
            Ok(now) => Some(now),
            Err(error) => {
                warn!(worker = %options.id, %error, "the database's clock could not be read");
                None
            }
        },
    }
}

fn ended(claims: &[Claim], outcome: RunOutcome) -> Vec<Ended> {
    claims
        .iter()
        .map(|c| Ended {
            destination: c.destination.clone(),
            outcome,
            report: None,
        })
        .collect()
}

/// Syncs the claims the host asked to sync: ask the host, find the providers, sync through the
/// fenced store, read each destination's outcome.
async fn sync_claims<H: Host>(
    host: &H,
    group: &LeasedGroup,
    claims: &[Claim],
    now: DateTime<Utc>,
    worker: &str,
    spans: &RunSpans,
) -> Vec<Ended> {
    let Some(schedule_id) = claims.first().and_then(|c| c.schedule.clone()) else {
        // Claimed by name, enrolled nowhere: not a worker's to sync (claim_due never gives one).
        return ended(claims, RunOutcome::NotNamed);
    };
    let host_schedule = match host.schedule(&schedule_id).await {
        Ok(Some(s)) => s,
        Ok(None) => {
            warn!(worker, schedule = %schedule_id,
                  "the host does not name this schedule: its destinations are kept and tried again later (reconcile retires or drops them)");
            return ended(claims, RunOutcome::NotNamed);
        }
        Err(e) => {
            warn!(worker, schedule = %schedule_id, error = %e, "the host could not give the schedule");
            return ended(claims, RunOutcome::Failed);
        }
    };
    let (targets, mut ended_runs) = find_targets(host, &host_schedule, worker, claims).await;
    if targets.is_empty() {
        return ended_runs;
    }
    let synced: Vec<&Claim> = claims
        .iter()
        .filter(|c| targets.iter().any(|(d, _)| d.id == c.destination))
        .collect();
    let traced_store = TracedStore {
        inner: group.store(),
        spans,
    };
    let providers: Vec<TracedProvider> = targets
        .iter()
        .map(|(destination, provider)| traced(group, spans, destination, provider.clone()))
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
        now,
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
                ended_runs.push(Ended {
                    destination: d.destination.clone(),
                    outcome: RunOutcome::of(&d),
                    report: Some(d),
                });
            }
            ended_runs
        }
        Err(e) => {
            // Refused before any call (two destinations on one vendor schedule): the host's
            // configuration is wrong.
            warn!(worker, schedule = %schedule_id, error = %e, "sync refused the destinations");
            ended_runs.extend(synced.iter().map(|c| Ended {
                destination: c.destination.clone(),
                outcome: RunOutcome::Failed,
                report: None,
            }));
            ended_runs
        }
    }
}

/// A destination's provider as the group's runs use it: refusing calls past the lease's
/// deadline, each call in the destination's span.
fn traced(
    group: &LeasedGroup,
    spans: &RunSpans,
    destination: &Destination,
    provider: Arc<dyn Provider>,
) -> TracedProvider {
    let span = spans
        .get(&destination.id)
        .cloned()
        .unwrap_or_else(tracing::Span::current);
    span.record("connection", display(&destination.connection));
    TracedProvider {
        inner: Arc::new(group.guard_provider(provider)),
        span,
    }
}

/// Retires the destinations the host asked to retire (a reconcile that no longer names them),
/// each from the description it was enrolled with: our overrides that have not started are
/// deleted and its state dropped (DESIGN §3).
async fn retire_all<H: Host>(
    host: &H,
    group: &LeasedGroup,
    claims: &[Claim],
    now: DateTime<Utc>,
    worker: &str,
    spans: &RunSpans,
) -> Vec<Ended> {
    let mut ended_runs = Vec::new();
    let store = TracedStore {
        inner: group.store(),
        spans,
    };
    for claim in claims {
        let Some(destination) = &claim.target else {
            // reconcile never marks one without a description; an older row, by hand.
            warn!(worker, destination = %claim.destination, "retiring without a description: kept");
            ended_runs.extend(ended(std::slice::from_ref(claim), RunOutcome::NotNamed));
            continue;
        };
        let provider = match host.provider(&destination.connection).await {
            Ok(p) => traced(group, spans, destination, p),
            Err(e) => {
                warn!(worker, destination = %claim.destination, error = %e, "no provider to retire with");
                ended_runs.extend(ended(std::slice::from_ref(claim), RunOutcome::Failed));
                continue;
            }
        };
        let report = retire(destination, &provider, &store, now, SyncMode::Apply).await;
        let named_again = report.errors.iter().any(|e| is_named_again(&e.error));
        let outcome = match RunOutcome::of(&report) {
            // The host named it again meanwhile: kept, and due at once (its enrolment counted
            // a request) to write back what the retirement deleted.
            _ if named_again => RunOutcome::Interrupted,
            RunOutcome::Synced if report.errors.is_empty() => RunOutcome::Retired,
            RunOutcome::Synced => RunOutcome::Failed,
            other => other,
        };
        ended_runs.push(Ended {
            destination: claim.destination.clone(),
            outcome,
            report: Some(report),
        });
    }
    ended_runs
}

type Targets = Vec<(Destination, Arc<dyn Provider>)>;

/// The host's destinations for the claims, each with its connection's provider. A claim the host
/// does not name, or whose provider it cannot give, ends here (kept, tried again later).
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
            warn!(worker, destination = %claim.destination,
                  "the host's schedule does not name this destination: kept and tried again later (reconcile retires or drops it)");
            ended.push(Ended {
                destination: claim.destination.clone(),
                outcome: RunOutcome::NotNamed,
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
