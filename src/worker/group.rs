//! One sync of the claimed destinations of one host schedule, as named steps: ask the host, find
//! the providers, sync through the fenced store, read each destination's outcome (with a tracing
//! span per destination run).

use std::collections::HashMap;
use std::sync::Arc;

use oncall_core::{
    sync, ConnectionId, Destination, DestinationId, DestinationReport, Error, Provider, SyncMode,
    SyncOptions, SyncTarget,
};
use tracing::{info, info_span, warn};

use super::host::{Host, HostSchedule};
use super::schedule::RunOutcome;
use crate::postgres::{Claim, PostgresStateStore};

/// What became of one claimed destination, and why, for its release.
pub(super) struct Ended {
    pub(super) destination: DestinationId,
    pub(super) outcome: RunOutcome,
    /// The sync's report, when it ran.
    pub(super) report: Option<DestinationReport>,
}

/// Syncs `claims` (all of one host schedule) in one `sync` call.
pub(super) async fn sync_group<H: Host>(
    host: &H,
    store: &PostgresStateStore,
    worker: &str,
    claims: &[Claim],
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
    let sync_targets: Vec<SyncTarget<'_>> = targets
        .iter()
        .map(|(destination, provider)| SyncTarget {
            destination,
            provider: provider.as_ref(),
        })
        .collect();
    let options = SyncOptions {
        now: host.now(),
        horizon: host_schedule.horizon,
        mode: SyncMode::Apply,
    };
    match sync(&host_schedule.schedule, &sync_targets, &fenced, options).await {
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

/// The tracing span of one destination's run, with its outcome as fields, and one event in it.
pub(super) fn trace_run(worker: &str, ended: &Ended, next_run_s: Option<f64>) {
    let (report, destination, outcome) = (ended.report.as_ref(), &ended.destination, ended.outcome);
    let span = info_span!(
        "destination_run",
        worker,
        destination = %destination,
        connection = report.map(|r| r.connection.0.as_str()),
        status = report.map(|r| format!("{:?}", r.status)),
        write_calls = report.map(|r| r.write_calls),
        mark_before = report.and_then(|r| r.high_water_before).map(|t| t.to_rfc3339()),
        mark_after = report.and_then(|r| r.high_water_after).map(|t| t.to_rfc3339()),
        outcome = ?outcome,
        next_run_s,
    );
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
