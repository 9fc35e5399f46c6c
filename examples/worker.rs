//! A sync worker over PostgreSQL and the `oncall` CLI's config file (feature `postgres`).
//!
//! ```text
//! worker --config FILE [--database-env VAR] [--schema NAME] [--concurrency N] [--period-secs S]
//!        [--once [--timeout-secs S]]
//! ```
//!
//! It migrates the database, enrols the config's destinations, and runs a
//! [`Worker`](oncall_sync::worker::Worker) until Ctrl-C (a graceful shutdown), or with `--once` until
//! every destination has run once (exit 0 when all are in step, 1 otherwise). A destination another
//! worker holds runs when that worker lets go of it, which may take a while: `--timeout-secs`
//! bounds the wait (then exit 1, naming the destinations that did not run). Start it in as many
//! processes, on as many machines, as you like: they share the destinations through the database.
//! The database URL is read from the environment variable `--database-env` names (`DATABASE_URL`
//! by default), never from the arguments (it may hold a password); the vendors' keys from the
//! variables the config names. Each destination run is logged to stderr as a tracing span.
//!
//! ```sh
//! DATABASE_URL=postgres://oncall@db/oncall OG_KEY=… PD_KEY=… \
//!     cargo run --example worker --features postgres -- --config oncall.json
//! ```
//!
//! Exit codes: 0 as above; 1 a destination failed (`--once`) or the database could not be used;
//! 2 bad usage or config, with nothing sent.

use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use clap::Parser;
use oncall_sync::config::{process_env, Config};
use oncall_sync::postgres::{ConnectOptions, Dropped, PostgresStateStore};
use oncall_sync::worker::{Host, HostSchedule, Worker, WorkerOptions};
use oncall_sync::{
    ConnectionId, DestinationId, Error, Provider, RateBudget, ScheduleId, StateStore,
};

/// A sync worker over PostgreSQL and the oncall CLI's config file.
#[derive(Debug, Parser)]
#[command(name = "worker")]
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
    /// Host schedules synced at once.
    #[arg(long, default_value_t = 4)]
    concurrency: usize,
    /// Seconds between the syncs of a destination in step.
    #[arg(long, default_value_t = 3600)]
    period_secs: u64,
    /// Stop once every destination has run (and been released).
    #[arg(long)]
    once: bool,
    /// With --once: stop after this many seconds even if some destination has not run (another
    /// worker may hold it); exit 1 then.
    #[arg(long, value_name = "S", requires = "once")]
    timeout_secs: Option<u64>,
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    tracing_subscriber::fmt()
        .with_writer(std::io::stderr)
        .init();
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
        Err(Stop::Database(message)) => {
            eprintln!("error: {message}");
            ExitCode::from(1)
        }
        Err(Stop::Usage(message)) => {
            eprintln!("error: {message}");
            ExitCode::from(2)
        }
    }
}

enum Stop {
    /// Bad usage or config: nothing was sent.
    Usage(String),
    /// The database failed.
    Database(String),
}

async fn run(cli: Cli) -> Result<bool, Stop> {
    let config = Config::from_file(&cli.config).map_err(|e| Stop::Usage(format!("config: {e}")))?;
    // The keys are checked before the database is reached.
    config
        .destination_providers(&process_env)
        .map_err(|e| Stop::Usage(format!("config: {e}")))?;
    let url = std::env::var(&cli.database_env)
        .ok()
        .filter(|u| !u.is_empty())
        .ok_or_else(|| Stop::Usage(format!("set {} to the PostgreSQL URL", cli.database_env)))?;
    let store = connect(&url, &cli.schema, cli.concurrency).await?;
    // One request budget per connection, shared with every worker over this database.
    let budget: Arc<dyn RateBudget> = Arc::new(store.rate_budget());
    let providers = config
        .destination_providers_with_budget(&process_env, Some(&budget))
        .map_err(|e| Stop::Usage(format!("config: {e}")))?;
    // The config states the schedule's destinations: one it no longer names is taken out of
    // the workers' hands, its overrides left as they are (`oncall retire` deletes them).
    store
        .reconcile(config.schedule_id(), config.destinations(), Dropped::Keep)
        .await
        .map_err(|e| Stop::Database(e.to_string()))?;
    let host = ConfigHost {
        config,
        providers: providers.into_iter().collect(),
    };
    let started = host.now();
    let destinations: Vec<DestinationId> = host
        .config
        .destinations()
        .iter()
        .map(|d| d.id.clone())
        .collect();
    if cli.once {
        // Whatever else is due, these run now.
        store
            .sync_soon(&destinations)
            .await
            .map_err(|e| Stop::Database(e.to_string()))?;
    }
    let options = WorkerOptions {
        concurrency: cli.concurrency,
        period: Duration::from_secs(cli.period_secs),
        ..WorkerOptions::default()
    };
    let worker = Worker::new(store.clone(), Arc::new(host), options);
    eprintln!("worker {} started", worker.id());
    if cli.once {
        let ran = ran_once(&store, &destinations, started);
        match cli.timeout_secs {
            Some(s) => {
                worker
                    .run(async {
                        let _ = tokio::time::timeout(Duration::from_secs(s), ran).await;
                    })
                    .await;
            }
            None => worker.run(ran).await,
        }
        return all_in_step(&store, &destinations, started).await;
    }
    worker
        .run(async {
            let signal = shutdown_signal().await;
            eprintln!("{signal}: shutting down, finishing or releasing what this worker holds");
        })
        .await;
    Ok(true)
}

/// Completes at the first SIGINT (ctrl-c) or SIGTERM (what orchestrators send before they
/// kill), and says which.
async fn shutdown_signal() -> &'static str {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{signal, SignalKind};
        if let Ok(mut term) = signal(SignalKind::terminate()) {
            return tokio::select! {
                _ = tokio::signal::ctrl_c() => "SIGINT",
                _ = term.recv() => "SIGTERM",
            };
        }
    }
    let _ = tokio::signal::ctrl_c().await;
    "SIGINT"
}

async fn connect(url: &str, schema: &str, concurrency: usize) -> Result<PostgresStateStore, Stop> {
    // The pool the worker needs (its syncs, their renewals, its claims).
    let workers = WorkerOptions {
        concurrency,
        ..WorkerOptions::default()
    };
    let options = ConnectOptions::default().with_pool_size(workers.pool_size());
    let store = PostgresStateStore::connect_with(url, options)
        .await
        .map_err(|e| Stop::Database(e.to_string()))?
        .with_schema(schema)
        .map_err(|e| Stop::Usage(e.to_string()))?;
    store
        .migrate()
        .await
        .map_err(|e| Stop::Database(e.to_string()))?;
    Ok(store)
}

/// Completes once every destination has a run recorded at or after `since` (the worker saves the
/// run before it releases the destination; the graceful shutdown releases the rest).
async fn ran_once(
    store: &PostgresStateStore,
    destinations: &[DestinationId],
    since: DateTime<Utc>,
) {
    loop {
        let mut done = true;
        for d in destinations {
            let ran = match store.load(d).await {
                Ok(state) => ran_since(&state.value, since),
                // An unreadable state is a run that cannot happen: reported by all_in_step.
                Err(_) => true,
            };
            done &= ran;
        }
        if done {
            return;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

/// Whether a destination's state records a run at or after `since`.
fn ran_since(state: &oncall_sync::DestinationState, since: DateTime<Utc>) -> bool {
    let since = since - chrono::TimeDelta::seconds(1); // runs floor `now` to whole seconds
    state.last_run.as_ref().is_some_and(|r| r.at >= since)
}

/// Prints each destination's mark and the run it had since `since`; whether all ran, in step.
async fn all_in_step(
    store: &PostgresStateStore,
    destinations: &[DestinationId],
    since: DateTime<Utc>,
) -> Result<bool, Stop> {
    let mut ok = true;
    for d in destinations {
        match store.load(d).await {
            Ok(state) if !ran_since(&state.value, since) => {
                ok = false;
                println!(
                    "{d}: did not run (another worker may hold it; it runs once released), mark {}",
                    state
                        .value
                        .high_water
                        .map_or_else(|| "none".into(), |t| t.to_rfc3339())
                );
            }
            Ok(state) => {
                let run = state.value.last_run;
                let in_step = run.as_ref().is_some_and(|r| r.ok);
                ok &= in_step;
                println!(
                    "{d}: {} mark {}{}",
                    if in_step { "ok" } else { "failed" },
                    state
                        .value
                        .high_water
                        .map_or_else(|| "none".into(), |t| t.to_rfc3339()),
                    run.and_then(|r| r.error)
                        .map(|e| format!(", error: {e}"))
                        .unwrap_or_default()
                );
            }
            Err(e) => {
                ok = false;
                println!("{d}: state unreadable: {e}");
            }
        }
    }
    Ok(ok)
}

/// The config file as the host: its one schedule (a rotation expanded as of the sync's now), its
/// destinations, and the providers built from it at start.
struct ConfigHost {
    config: Config,
    providers: std::collections::HashMap<ConnectionId, Arc<dyn Provider>>,
}

#[async_trait]
impl Host for ConfigHost {
    async fn schedule(&self, id: &ScheduleId) -> Result<Option<HostSchedule>, Error> {
        if id != self.config.schedule_id() {
            return Ok(None);
        }
        let schedule = self
            .config
            .schedule(self.now())
            .map_err(|e| Error::Unsupported {
                message: format!("config: {e}"),
            })?;
        Ok(Some(HostSchedule {
            schedule,
            destinations: self.config.destinations().to_vec(),
            horizon: self.config.horizon(),
        }))
    }

    async fn provider(&self, connection: &ConnectionId) -> Result<Arc<dyn Provider>, Error> {
        self.providers
            .get(connection)
            .cloned()
            .ok_or_else(|| Error::Unsupported {
                message: format!("the config has no connection {connection}"),
            })
    }
}
