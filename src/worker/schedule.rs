//! When a destination runs next: the period with jitter after a success, a growing backoff after
//! failures, a long wait after its key proved read-only. Pure: the caller draws the randomness.

use std::time::Duration;

use oncall_core::{DestinationReport, Error, SyncStatus};

use super::WorkerOptions;

/// How one destination's run ended, as the schedule of its next run needs to know it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RunOutcome {
    /// In step (or only members the vendor does not know failed: trying sooner would not help).
    Synced,
    /// A write was refused for permissions: the key is read-only (R8). A person must act.
    ReadOnly,
    /// Anything else failed: the vendor, the network, the database.
    Failed,
    /// The state moved on under this worker: another worker took the destination over after its
    /// lease expired (then releasing it changes nothing), or something saved it without a lease.
    TakenOver,
    /// The run was stopped before it ended (lease lost, shutdown): due again at once.
    Interrupted,
    /// The host's answer did not name the destination (or its schedule). It stays enrolled and
    /// is tried again with a failure's backoff: one answer (a lagging replica, another config)
    /// never drops it; [`reconcile`](crate::postgres::PostgresStateStore::reconcile) does.
    NotNamed,
    /// The host asked for it to be retired and it was: its state is gone, nothing is scheduled.
    Retired,
}

impl RunOutcome {
    /// Reads a destination's report.
    pub fn of(report: &DestinationReport) -> RunOutcome {
        let errors = || report.errors.iter().map(|e| &e.error);
        if errors().any(|e| matches!(e, Error::Conflict { message } if is_fence(message))) {
            return RunOutcome::TakenOver;
        }
        if errors().any(Error::is_permission_denied) {
            return RunOutcome::ReadOnly;
        }
        let only_unknown_members = errors().all(|e| matches!(e, Error::UnknownMember { .. }));
        match report.status {
            SyncStatus::Ok | SyncStatus::Planned => RunOutcome::Synced,
            _ if only_unknown_members => RunOutcome::Synced,
            _ => RunOutcome::Failed,
        }
    }
}

/// Whether a conflict came from the fence: the state moved on under this worker.
fn is_fence(message: &str) -> bool {
    message.contains("taken over")
        || message.contains("not held by this worker")
        || message.contains("took the destination over")
}

/// When to run a destination next and its failures in a row after this run; `None`: it is no
/// longer scheduled (retired). `unit` is a random draw in `[0, 1)`.
pub fn next_run(
    outcome: RunOutcome,
    failures: u32,
    options: &WorkerOptions,
    unit: f64,
) -> Option<(Duration, u32)> {
    let unit = if unit.is_finite() {
        unit.clamp(0.0, 1.0)
    } else {
        0.5
    };
    // Within ± jitter of the period, so that destinations enrolled together spread out.
    let spread = |d: Duration| {
        let jitter = options.jitter.clamp(0.0, 1.0);
        d.mul_f64(1.0 + jitter * (2.0 * unit - 1.0))
    };
    match outcome {
        RunOutcome::Synced => Some((spread(options.period), 0)),
        RunOutcome::ReadOnly => Some((
            spread(options.read_only_backoff),
            failures.saturating_add(1),
        )),
        RunOutcome::Failed | RunOutcome::NotNamed => {
            // Doubling from the first backoff, capped; between half and all of it.
            let doubling = 2f64.powi(i32::try_from(failures.min(30)).unwrap_or(30));
            let backoff = options
                .failure_backoff
                .mul_f64(doubling)
                .min(options.max_backoff);
            Some((
                backoff.mul_f64(0.5 + 0.5 * unit),
                failures.saturating_add(1),
            ))
        }
        RunOutcome::Interrupted => Some((Duration::ZERO, failures)),
        // Whoever saved holds it now (the release is refused), or saved without a lease: soon.
        RunOutcome::TakenOver => Some((options.failure_backoff.mul_f64(0.5 * unit), failures)),
        RunOutcome::Retired => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn options() -> WorkerOptions {
        WorkerOptions {
            period: Duration::from_secs(3600),
            jitter: 0.1,
            failure_backoff: Duration::from_secs(60),
            max_backoff: Duration::from_secs(3600),
            read_only_backoff: Duration::from_secs(6 * 3600),
            ..WorkerOptions::default()
        }
    }

    #[test]
    fn a_synced_destination_runs_again_after_the_period_within_the_jitter() {
        let o = options();
        assert_eq!(
            next_run(RunOutcome::Synced, 3, &o, 0.5),
            Some((Duration::from_secs(3600), 0)),
            "the middle draw is the period; failures reset"
        );
        assert_eq!(
            next_run(RunOutcome::Synced, 0, &o, 0.0),
            Some((Duration::from_secs(3240), 0))
        );
        assert_eq!(
            next_run(RunOutcome::Synced, 0, &o, 1.0),
            Some((Duration::from_secs(3960), 0))
        );
    }

    #[test]
    fn failures_back_off_doubling_up_to_the_cap() {
        let o = options();
        let full = |failures| next_run(RunOutcome::Failed, failures, &o, 1.0);
        assert_eq!(full(0), Some((Duration::from_secs(60), 1)));
        assert_eq!(full(1), Some((Duration::from_secs(120), 2)));
        assert_eq!(full(5), Some((Duration::from_secs(1920), 6)));
        assert_eq!(full(6), Some((Duration::from_secs(3600), 7)), "capped");
        assert_eq!(full(u32::MAX), Some((Duration::from_secs(3600), u32::MAX)));
        assert_eq!(
            next_run(RunOutcome::Failed, 0, &o, 0.0),
            Some((Duration::from_secs(30), 1)),
            "at least half"
        );
    }

    #[test]
    fn a_read_only_key_waits_longer_than_any_failure_backoff() {
        let o = options();
        let (wait, failures) = next_run(RunOutcome::ReadOnly, 0, &o, 0.0).unwrap();
        assert!(wait > o.max_backoff, "{wait:?}");
        assert_eq!(failures, 1);
    }

    #[test]
    fn interrupted_runs_are_due_at_once_taken_over_ones_soon_retired_ones_never() {
        let o = options();
        assert_eq!(
            next_run(RunOutcome::Interrupted, 2, &o, 0.3),
            Some((Duration::ZERO, 2))
        );
        assert_eq!(
            next_run(RunOutcome::TakenOver, 2, &o, 1.0),
            Some((Duration::from_secs(30), 2))
        );
        assert_eq!(next_run(RunOutcome::Retired, 2, &o, 0.3), None);
        assert_eq!(
            next_run(RunOutcome::NotNamed, 0, &o, 1.0),
            next_run(RunOutcome::Failed, 0, &o, 1.0),
            "a destination the host did not name is kept, and backs off as a failure"
        );
    }

    #[test]
    fn a_bad_draw_is_taken_as_the_middle() {
        let o = options();
        assert_eq!(
            next_run(RunOutcome::Synced, 0, &o, f64::NAN),
            Some((Duration::from_secs(3600), 0))
        );
    }
}
