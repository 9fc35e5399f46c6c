//! A sync job on the lease API, without the `Worker` loop (feature `postgres`): what a host's
//! own job system runs (a cron job, an apalis job, a tokio task of the host's). Copy it.
//!
//! ```text
//! sync_job --config FILE [--database-env VAR] [--schema NAME] [--period-secs S]
//! ```
//!
//! Each run states the config's destinations (`reconcile`), then claims what is due of the
//! config's host schedule (other schedules' destinations are left alone, to their own jobs), one
//! group at a time (a group claimed is run at once: its leases are renewed only while it runs),
//! syncs it under its lease guard (renewed while it works, stopped at its deadline, a panic
//! caught), releases each destination with its next due time, and exits when nothing is due any
//! more: 0 when every destination it ran is in step, 1 otherwise, 2 for bad
//! usage or config. Run it as often as you like, from as many machines as you like, beside
//! workers: a destination is synced by one holder at a time. The database URL is read from the
//! environment variable `--database-env` names (`DATABASE_URL` by default), the vendors' keys
//! from the variables the config names. Every provider shares its connection's request rate
//! with every other process over the same database (`PostgresStateStore::rate_budget`).

use std::collections::HashMap;
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

use chrono::Utc;
use clap::Parser;
use oncall_sync::config::{process_env, Config};
use oncall_sync::postgres::{Dropped, LeaseOptions, LeasedGroup, PostgresStateStore};
use oncall_sync::{
    sync, ConnectionId, Provider, RateBudget, SyncMode, SyncOptions, SyncStatus, SyncTarget,
};

/// A sync job over PostgreSQL and the oncall CLI's config file, on the lease API.
#[derive(Debug, Parser)]
#[command(name = "sync_job")]
struct Cli {
    /// The config file (the `oncall` CLI's JSON).
    #[arg(long)]
    config: PathBuf,
    /// The environment variable holding the PostgreSQL URL.
    #[arg(long, default_value = "DATABASE_URL")]
    database_env: String,
    /// The schema of the tables (created by the migrations).
    #[arg(long, default_value = oncall_sync::postgres::DEFAULT_SCHEMA)]
    schema: String,
    /// Seconds until a destination in step is due again.
    #[arg(long, default_value_t = 3600)]
    period_secs: u64,
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime,
        Err(e) => {
            eprintln!("error: cannot start the async runtime: {e}");
            return ExitCode::from(1);
        }
    };
    match runtime.block_on(run(cli)) {
        Ok(true) => ExitCode::SUCCESS,
        Ok(false) => ExitCode::from(1),
        Err((code, message)) => {
            eprintln!("error: {message}");
            ExitCode::from(code)
        }
    }
}

/// What the job needs from the config: its schedule, destinations and a provider each.
struct Job {
    config: Config,
    providers: HashMap<ConnectionId, Arc<dyn Provider>>,
    period: Duration,
}

async fn run(cli: Cli) -> Result<bool, (u8, String)> {
    let usage = |e: String| (2, e);
    let database = |e: oncall_sync::Error| (1, e.to_string());
    let config = Config::from_file(&cli.config).map_err(|e| usage(format!("config: {e}")))?;
    // The keys are checked before the database is reached.
    config
        .destination_providers(&process_env)
        .map_err(|e| usage(format!("config: {e}")))?;
    let url = std::env::var(&cli.database_env)
        .ok()
        .filter(|u| !u.is_empty())
        .ok_or_else(|| usage(format!("set {} to the PostgreSQL URL", cli.database_env)))?;
    let store = PostgresStateStore::connect(&url)
        .await
        .map_err(database)?
        .with_schema(&cli.schema)
        .map_err(|e| usage(e.to_string()))?;
    store.migrate().await.map_err(database)?;
    // One request budget per connection, shared with every process over this database.
    let budget: Arc<dyn RateBudget> = Arc::new(store.rate_budget());
    let providers = config
        .destination_providers_with_budget(&process_env, Some(&budget))
        .map_err(|e| usage(format!("config: {e}")))?
        .into_iter()
        .collect();
    // 1. State the schedule's destinations; one the config no longer names is kept at the
    //    vendor and taken out of the workers' hands (Dropped::Retire would delete its overrides).
    store
        .reconcile(config.schedule_id(), config.destinations(), Dropped::Keep)
        .await
        .map_err(database)?;
    let job = Job {
        config,
        providers,
        period: Duration::from_secs(cli.period_secs),
    };
    // 2. Claim what is due of this config's schedule, a group at a time, until nothing is.
    let options = LeaseOptions::new("sync-job");
    let schedule = job.config.schedule_id().clone();
    let (mut ran, mut all_ok) = (0, true);
    loop {
        let groups = store
            .claim_groups_of(&options, &schedule, 1)
            .await
            .map_err(database)?;
        if groups.is_empty() {
            break;
        }
        for group in groups {
            ran += group.claims().len();
            all_ok &= job.sync_group(&group).await;
        }
    }
    println!("{ran} destination runs");
    Ok(all_ok)
}

impl Job {
    /// 3. Syncs one group under its lease guard and releases each destination; whether all
    ///    are in step.
    async fn sync_group(&self, group: &LeasedGroup) -> bool {
        // A job runs at the system clock: reading it is the host's part (the core never does).
        #[allow(clippy::disallowed_methods)]
        let now = Utc::now();
        let schedule = match self.config.schedule(now) {
            Ok(schedule) => schedule,
            Err(e) => {
                eprintln!("the config's schedule: {e}");
                self.put_back(group, Duration::from_secs(60)).await;
                return false;
            }
        };
        let claimed: Vec<_> = self
            .config
            .destinations()
            .iter()
            .filter(|d| group.claims().iter().any(|c| c.destination == d.id))
            .collect();
        // Every vendor call checks the lease's deadline right before it is sent.
        let providers: Vec<_> = claimed
            .iter()
            .filter_map(|d| self.providers.get(&d.connection))
            .map(|p| group.guard_provider(p.clone()))
            .collect();
        let targets: Vec<SyncTarget<'_>> = claimed
            .iter()
            .zip(&providers)
            .map(|(destination, provider)| SyncTarget {
                destination,
                provider,
            })
            .collect();
        let options = SyncOptions {
            now,
            horizon: self.config.horizon(),
            mode: SyncMode::Apply,
        };
        let mut all_ok = true;
        match group
            .run(sync(&schedule, &targets, group.store(), options))
            .await
        {
            Ok(Ok(report)) => {
                for d in &report.destinations {
                    let ok = d.status == SyncStatus::Ok;
                    all_ok &= ok;
                    println!(
                        "{}: {:?}, {} writes",
                        d.destination, d.status, d.write_calls
                    );
                    let failures = group
                        .claims()
                        .iter()
                        .find(|c| c.destination == d.destination)
                        .map_or(0, |c| c.failures);
                    let (next, failures) = if ok {
                        (self.period, 0)
                    } else {
                        (Duration::from_secs(60), failures + 1)
                    };
                    if let Err(e) = group.release(&d.destination, next, failures).await {
                        eprintln!("{}: not released ({e}): its lease runs out", d.destination);
                    }
                }
            }
            Ok(Err(refused)) => {
                eprintln!("sync refused: {refused}");
                all_ok = false;
            }
            // The lease was lost, or the sync panicked: put back below, after a minute (a
            // panic that repeats must not spin).
            Err(interrupted) => {
                eprintln!("sync interrupted: {interrupted}");
                all_ok = false;
            }
        }
        // 4. Anything not released above: due again in a minute.
        self.put_back(group, Duration::from_secs(60)).await && all_ok
    }

    /// Releases what the group still holds, due again after `next`.
    async fn put_back(&self, group: &LeasedGroup, next: Duration) -> bool {
        match group.release_rest(next).await {
            Ok(()) => true,
            Err(e) => {
                eprintln!("not released ({e}): the leases run out");
                false
            }
        }
    }
}
