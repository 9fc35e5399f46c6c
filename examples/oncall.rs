//! `oncall`: the command line over oncall-sync.
//!
//! ```text
//! oncall schedules --config FILE --connection ID [--json]
//! oncall import    --config FILE --connection ID --schedule REMOTE_ID --from T --to T [--json]
//! oncall plan      --config FILE --state FILE [--now T] [--json] [--out PLAN.json]
//! oncall sync      --config FILE --state FILE [--now T] [--json]
//! oncall apply     --config FILE --state FILE --plan PLAN.json [--now T] [--json]
//! oncall drift     --config FILE --state FILE [--now T] [--json] [--accept ID... | --accept-all]
//! oncall status    --config FILE --state FILE [--now T] [--json]
//! oncall retire    --config FILE --state FILE --destination ID [--now T] [--dry-run] [--json]
//! oncall migrate   --config FILE --state FILE --destination ID --to-connection JSM_CONN
//!                  [--to-schedule REMOTE_ID] [--now T] [--dry-run] [--json]
//! oncall actuals   --config FILE --connection ID --schedule REMOTE_ID --from T --to T
//!                  [--csv | --json] [--night HH:MM-HH:MM] [--weekend sat,sun] [--time-zone ZONE]
//! oncall probe     --config FILE --connection ID [--schedule REMOTE_ID] [--write-to SCRATCH_ID]
//!                  [--now T] [--json]
//! ```
//!
//! Every command also takes `--trace-http FILE`: each HTTP request and answer of the run (method,
//! URL, status, headers with credentials replaced, bodies) is written to FILE as one JSON line,
//! every key and token scrubbed and every e-mail address replaced by a placeholder
//! (`person-1@redacted.invalid`), for a bug report. The file is created (or emptied) with mode
//! 0600; a command that calls no vendor (`status`) leaves it empty.
//!
//! `probe` asks a connection's account how it behaves on each point the vendor's documentation
//! leaves open (DESIGN §7): for each schedule (or the one named), the core's expansion of its
//! rotations or layers against the vendor's own rendering over a year, whether running overrides
//! are listed, layer and rotation order, whether the roster resolves, and the key's rights as far
//! as reads show them. It only reads, unless `--write-to` names a scratch schedule (not one a
//! destination of the config exports to): then it also creates, changes and deletes overrides
//! there (one running now), tries a taken alias, measures how long a write takes to show in a
//! read, and removes what it made. Each line names the point and the reading the account showed,
//! as the simulator dialect's switch and setting. Exit 1 when the key may not write to the scratch
//! schedule (`--write-to` with a read-only key), a schedule named does not exist, the account
//! could not be read, or the probe could not remove what it made (it names those overrides).
//!
//! Destination modes (DESIGN §8, the config's `mode`): `sync` writes to `protect` and
//! `authoritative` destinations and only plans for `manual` ones. `plan --out` saves every
//! destination's plan to a file a person can read; `apply --plan` applies each saved plan only
//! while what it was planned against still holds (a digest of the destination's state, a digest of
//! the vendor's overrides, the same operations when planned again now), and otherwise refuses it
//! with nothing written (exit 1). `drift` reads the vendor (writing nothing) and lists what people
//! changed there against the rota; `--accept ID...` (or `--accept-all`) writes the proposed edits
//! of those records, each that can be taken (the others are listed with why, exit 1), into the config's
//! `schedule.shifts` (only the `assignees` concerned change; a `rotation` cannot take them).
//! `actuals` reads who was on call from the vendor's final rendering, with hours per person split
//! into weekday, weekend and night hours in the schedule's zone: `--csv` prints the hours per
//! person, `--json` the periods and the hours.
//!
//! `T` is an RFC 3339 instant; `--now` is the instant the sync treats as now (default: the system
//! clock; `status` takes it too, for the health it computes). The config file is described in
//! `oncall_sync::config`; each connection's API key is read from the environment variable the
//! config names, and never appears in the arguments, the config, the state file or any output.
//! The state file is a `FileStateStore` (created on the first save; `plan` and `status` never
//! create it); it also remembers which connections' keys proved read-only. Built with the
//! `postgres` feature, `--state` also takes a `postgres://` URL: the state then lives in PostgreSQL
//! (`oncall_sync::postgres`, migrated on first use, schema `oncall_sync` or the URL's
//! `oncall_schema` parameter), shared with workers (`examples/worker.rs`): `sync` and `retire`
//! claim their destinations as a worker claims them (holder `cli-<pid>-<random>`, due or not), write
//! through the claims' fenced view and give them back due as they were; a destination a worker
//! (or another command) holds is reported as an error (exit 1) and nothing is sent for it. Keep a
//! password out of the URL where others can list processes: use the server's trust, peer or
//! certificate auth.
//!
//! Exit codes: 0 every destination ok; 1 at least one destination failed or partly failed (or, for
//! `status`, has health `error`; for `schedules` and `import`, the vendor call failed); 2 bad usage
//! or config, with nothing sent and no state file created.
//!
//! `migrate` moves a destination off Opsgenie to a JSM connection (after Atlassian's migration of
//! the account), keeping its mark and ledger: each override of ours is found again in JSM by its
//! alias, else by its exact span and person (`oncall_sync::migrate`); nothing is written to either
//! vendor. The schedule is the one with the same id in JSM, else the one with the Opsgenie
//! schedule's name, else `--to-schedule`. Then edit the config as it says.
//!
//! Run it with `cargo run --example oncall -- plan --config oncall.json --state state.json`.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;

use chrono::{DateTime, SecondsFormat, TimeDelta, Utc, Weekday};
use chrono_tz::Tz;
use clap::{Parser, Subcommand};
use oncall_sync::config::{process_env, Config, ConfigError, ProbeError};
use oncall_sync::probe::{ProbeReport, ProbeRequest};
use oncall_sync::trace_file::JsonLinesTrace;
use oncall_sync::{
    apply_plan, desired_spans, import_schedule, read_actuals, retire, sync, Action, Actuals,
    ActualsOptions, ConnectionId, ConnectionRegistry, Desired, Destination, DestinationId,
    DestinationMode, DestinationReport, Drift, DriftFate, Error, FileStateStore, NightWindow,
    Outcome, PlanRefused, PlannedOperation, Provider, SavedPlan, Schedule, Span, StateStore,
    SyncError, SyncMode, SyncOptions, SyncStatus, SyncTarget, VendorScheduleId, Window,
};
use serde_json::{json, Value};

/// Keep on-call rotas planned in a host application in step with PagerDuty and Opsgenie.
#[derive(Parser)]
#[command(name = "oncall", version, about)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(clap::Args)]
struct Common {
    /// The JSON config file (connections, schedule, destinations).
    #[arg(long, value_name = "FILE")]
    config: PathBuf,
    /// Print one JSON object instead of text for people.
    #[arg(long)]
    json: bool,
    /// Record every HTTP request and answer to FILE as JSON lines (mode 0600), keys and e-mail
    /// addresses redacted, for a bug report.
    #[arg(long, value_name = "FILE")]
    trace_http: Option<PathBuf>,
}

#[derive(clap::Args)]
struct Stateful {
    #[command(flatten)]
    common: Common,
    /// The state file (marks and ledgers per destination), or a postgres:// URL (feature
    /// `postgres`).
    #[arg(long, value_name = "FILE")]
    state: PathBuf,
    /// The instant to treat as now (RFC 3339; default: the system clock).
    #[arg(long, value_name = "T", value_parser = instant)]
    now: Option<DateTime<Utc>>,
}

#[derive(Subcommand)]
enum Command {
    /// List the schedules a connection's key can see.
    Schedules {
        #[command(flatten)]
        common: Common,
        /// The connection's id in the config.
        #[arg(long, value_name = "ID")]
        connection: String,
    },
    /// Import a vendor schedule's shifts, in a form that pastes into the config as its schedule.
    Import {
        #[command(flatten)]
        common: Common,
        /// The connection's id in the config.
        #[arg(long, value_name = "ID")]
        connection: String,
        /// The vendor's schedule id.
        #[arg(long, value_name = "REMOTE_ID")]
        schedule: String,
        /// Start of the window to import (RFC 3339).
        #[arg(long, value_name = "T", value_parser = instant)]
        from: DateTime<Utc>,
        /// End of the window to import (RFC 3339).
        #[arg(long, value_name = "T", value_parser = instant)]
        to: DateTime<Utc>,
    },
    /// Show what a sync would do, writing nothing.
    Plan {
        #[command(flatten)]
        stateful: Stateful,
        /// Save the plans to this file, to apply later with `oncall apply`.
        #[arg(long, value_name = "PLAN.json")]
        out: Option<PathBuf>,
    },
    /// Export the schedule to every destination (manual ones are only planned).
    Sync(Stateful),
    /// Apply plans saved by `oncall plan --out`, each only while what it was planned against
    /// still holds.
    Apply {
        #[command(flatten)]
        stateful: Stateful,
        /// The saved plans.
        #[arg(long, value_name = "PLAN.json")]
        plan: PathBuf,
    },
    /// Show what people changed in the vendor against the rota, writing nothing to any vendor.
    Drift {
        #[command(flatten)]
        stateful: Stateful,
        /// Write the proposals of these drift records (ids as `drift` lists them) into the
        /// config's shifts.
        #[arg(long, value_name = "ID", num_args = 1.., conflicts_with = "accept_all")]
        accept: Vec<String>,
        /// Write the proposals of every drift record into the config's shifts.
        #[arg(long)]
        accept_all: bool,
    },
    /// Show each destination's mark, last run, ledger and health, without calling any vendor.
    Status(Stateful),
    /// Stop exporting to a destination: delete our overrides there that have not started, then
    /// drop its state.
    Retire {
        #[command(flatten)]
        stateful: Stateful,
        /// The destination's id in the config.
        #[arg(long, value_name = "ID")]
        destination: String,
        /// Only show what would be deleted.
        #[arg(long)]
        dry_run: bool,
    },
    /// Move a destination to another connection (off Opsgenie to JSM), keeping its mark and
    /// ledger: our overrides are found again there by alias, else by exact span and person.
    Migrate {
        #[command(flatten)]
        stateful: Stateful,
        /// The destination's id in the config (as it is now, on the old connection).
        #[arg(long, value_name = "ID")]
        destination: String,
        /// The connection it moves to.
        #[arg(long, value_name = "JSM_CONN")]
        to_connection: String,
        /// The vendor schedule on the new connection (default: the same id, else the one named
        /// as the old schedule).
        #[arg(long, value_name = "REMOTE_ID")]
        to_schedule: Option<String>,
        /// Only show what would be found; save nothing.
        #[arg(long)]
        dry_run: bool,
    },
    /// Who was on call when, from the vendor's final rendering, with hours per person split into
    /// weekday, weekend and night hours (reads only).
    Actuals {
        #[command(flatten)]
        common: Common,
        /// The connection's id in the config.
        #[arg(long, value_name = "ID")]
        connection: String,
        /// The vendor's schedule id.
        #[arg(long, value_name = "REMOTE_ID")]
        schedule: String,
        /// Start of the window (RFC 3339).
        #[arg(long, value_name = "T", value_parser = instant)]
        from: DateTime<Utc>,
        /// End of the window (RFC 3339).
        #[arg(long, value_name = "T", value_parser = instant)]
        to: DateTime<Utc>,
        /// Print the hours per person as CSV.
        #[arg(long, conflicts_with = "json")]
        csv: bool,
        /// The night window, local wall times (default 22:00-06:00).
        #[arg(long, value_name = "HH:MM-HH:MM")]
        night: Option<NightWindow>,
        /// The weekend days, comma-separated (default sat,sun; `none` for no weekend).
        #[arg(long, value_name = "DAYS", value_parser = weekend_days)]
        weekend: Option<WeekendDays>,
        /// The zone to split hours in (default: the vendor schedule's).
        #[arg(long, value_name = "ZONE", value_parser = zone)]
        time_zone: Option<Tz>,
    },
    /// Ask a connection's account which reading it speaks on each behaviour the vendor's
    /// documentation leaves open (reads only, unless --write-to names a scratch schedule).
    Probe {
        #[command(flatten)]
        common: Common,
        /// The connection's id in the config.
        #[arg(long, value_name = "ID")]
        connection: String,
        /// Only this vendor schedule (default: every schedule the key lists).
        #[arg(long, value_name = "REMOTE_ID")]
        schedule: Option<String>,
        /// A scratch schedule nobody is paged from, which the probe may write to (overrides
        /// created, changed and deleted, one running now; removed before it ends).
        #[arg(long, value_name = "SCRATCH_ID")]
        write_to: Option<String>,
        /// The instant to treat as now (RFC 3339; default: the system clock).
        #[arg(long, value_name = "T", value_parser = instant)]
        now: Option<DateTime<Utc>>,
    },
}

/// `--weekend`'s days (one argument, comma-separated).
#[derive(Clone)]
struct WeekendDays(Vec<Weekday>);

fn weekend_days(value: &str) -> Result<WeekendDays, String> {
    if value == "none" {
        return Ok(WeekendDays(Vec::new()));
    }
    value
        .split(',')
        .map(|d| {
            d.trim()
                .parse::<Weekday>()
                .map_err(|_| format!("{d:?} is not a day (mon, tue, ... sun)"))
        })
        .collect::<Result<_, _>>()
        .map(WeekendDays)
}

fn zone(value: &str) -> Result<Tz, String> {
    value
        .parse()
        .map_err(|_| format!("{value:?} is not an IANA time zone"))
}

fn instant(value: &str) -> Result<DateTime<Utc>, String> {
    DateTime::parse_from_rfc3339(value)
        .map(|t| t.with_timezone(&Utc))
        .map_err(|e| format!("not an RFC 3339 instant ({e}), e.g. 2026-12-01T09:00:00+01:00"))
}

/// Why a command stopped early: bad usage or config (exit 2, nothing sent), or a failure (exit 1).
enum Stop {
    Usage(String),
    Failed(String),
}

impl From<ConfigError> for Stop {
    fn from(e: ConfigError) -> Stop {
        Stop::Usage(format!("config: {e}"))
    }
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let runtime = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime,
        Err(e) => {
            eprintln!("error: cannot start the async runtime: {e}");
            return ExitCode::from(1);
        }
    };
    let result = runtime.block_on(run(cli.command));
    if let Some(e) = TRACE.get().and_then(|t| t.error()) {
        eprintln!("warning: --trace-http: the trace misses exchanges: {e}");
    }
    match result {
        Ok(true) => ExitCode::SUCCESS,
        Ok(false) => ExitCode::from(1),
        Err(Stop::Failed(message)) => {
            eprintln!("error: {message}");
            ExitCode::from(1)
        }
        Err(Stop::Usage(message)) => {
            eprintln!("error: {message}");
            ExitCode::from(2)
        }
    }
}

/// Runs a command; `Ok(false)` when a destination failed (exit 1).
async fn run(command: Command) -> Result<bool, Stop> {
    match command {
        Command::Schedules { common, connection } => schedules(&common, &connection).await,
        Command::Import {
            common,
            connection,
            schedule,
            from,
            to,
        } => import(&common, &connection, &schedule, from, to).await,
        Command::Plan { stateful, out } => {
            export(&stateful, SyncMode::DryRun, out.as_deref()).await
        }
        Command::Sync(s) => export(&s, SyncMode::Apply, None).await,
        Command::Apply { stateful, plan } => apply_saved(&stateful, &plan).await,
        Command::Drift {
            stateful,
            accept,
            accept_all,
        } => {
            let accept = match (accept_all, accept.is_empty()) {
                (true, _) => Some(Accept::All),
                (false, false) => Some(Accept::Records(accept)),
                (false, true) => None,
            };
            drift(&stateful, accept).await
        }
        Command::Actuals {
            common,
            connection,
            schedule,
            from,
            to,
            csv,
            night,
            weekend,
            time_zone,
        } => {
            let defaults = ActualsOptions::default();
            let options = ActualsOptions {
                night: night.unwrap_or(defaults.night),
                weekend: weekend.map_or(defaults.weekend, |w| w.0),
                zone: time_zone,
            };
            let window =
                Window::new(from, to).map_err(|e| Stop::Usage(format!("--from/--to: {e}")))?;
            actuals(&common, &connection, &schedule, window, &options, csv).await
        }
        Command::Status(s) => status(&s).await,
        Command::Probe {
            common,
            connection,
            schedule,
            write_to,
            now,
        } => {
            let request = ProbeRequest {
                now: now_or_clock(now),
                schedule: schedule.map(VendorScheduleId),
                write_to: write_to.map(VendorScheduleId),
            };
            probe(&common, &connection, &request).await
        }
        Command::Retire {
            stateful,
            destination,
            dry_run,
        } => {
            let mode = if dry_run {
                SyncMode::DryRun
            } else {
                SyncMode::Apply
            };
            retire_destination(&stateful, &destination, mode).await
        }
        Command::Migrate {
            stateful,
            destination,
            to_connection,
            to_schedule,
            dry_run,
        } => {
            let mode = if dry_run {
                SyncMode::DryRun
            } else {
                SyncMode::Apply
            };
            let to = MigrationTarget {
                connection: to_connection,
                schedule: to_schedule,
            };
            migrate_destination(&stateful, &destination, &to, mode).await
        }
    }
}

#[allow(clippy::disallowed_methods)] // The CLI is where the clock is read, once.
fn now_or_clock(now: Option<DateTime<Utc>>) -> DateTime<Utc> {
    now.unwrap_or_else(Utc::now)
}

fn print_json(value: &Value) -> Result<(), Stop> {
    let text = serde_json::to_string_pretty(value)
        .map_err(|e| Stop::Failed(format!("cannot print JSON: {e}")))?;
    println!("{text}");
    Ok(())
}

fn rfc3339(t: DateTime<Utc>) -> String {
    t.to_rfc3339_opts(SecondsFormat::Secs, true)
}

fn local(t: DateTime<Utc>, zone: Tz) -> String {
    t.with_timezone(&zone)
        .format("%Y-%m-%d %H:%M %Z")
        .to_string()
}

fn local_mark(t: Option<DateTime<Utc>>, zone: Tz) -> String {
    t.map_or_else(|| "none".to_owned(), |t| local(t, zone))
}

/// The `--trace-http` file of this run, once opened.
static TRACE: std::sync::OnceLock<Arc<JsonLinesTrace>> = std::sync::OnceLock::new();

/// Reads and validates the config; with `--trace-http`, opens the trace (once the config is
/// valid: a usage error creates no file), tells it every key the config's connections read, and
/// gives it to every provider the config builds.
fn load_config(common: &Common) -> Result<Config, Stop> {
    let config = Config::from_file(&common.config)?;
    let Some(path) = &common.trace_http else {
        return Ok(config);
    };
    let trace = match TRACE.get() {
        Some(trace) => trace.clone(),
        None => {
            let trace = Arc::new(
                JsonLinesTrace::create(path)
                    .map_err(|e| Stop::Usage(format!("--trace-http {}: {e}", path.display())))?,
            );
            TRACE.get_or_init(|| trace).clone()
        }
    };
    for c in config.connections() {
        if let Ok(key) = config.api_key(&c.id, &process_env) {
            trace.hide(key);
        }
    }
    Ok(config.with_http_trace(trace))
}

// ---------------------------------------------------------------------------------------------
// schedules and import: one connection, reads only.

fn connection_provider(config: &Config, id: &str) -> Result<Arc<dyn Provider>, Stop> {
    let id = ConnectionId(id.to_owned());
    if config.connection(&id).is_none() {
        return Err(Stop::Usage(format!(
            "--connection {id}: no such connection in the config"
        )));
    }
    Ok(config.provider(&id, &process_env)?)
}

async fn schedules(common: &Common, connection: &str) -> Result<bool, Stop> {
    let config = load_config(common)?;
    let provider = connection_provider(&config, connection)?;
    let listed = provider
        .list_schedules()
        .await
        .map_err(|e| Stop::Failed(format!("connection {connection}: {e}")))?;
    if common.json {
        let schedules: Vec<Value> = listed
            .schedules
            .iter()
            .map(|s| {
                json!({
                    "id": s.id.0,
                    "name": s.name,
                    "time_zone": s.zone.name(),
                    "members": s.members.iter().map(|m| m.email.as_str()).collect::<Vec<_>>(),
                })
            })
            .collect();
        print_json(&json!({ "schedules": schedules, "unreadable": listed.unreadable }))?;
    } else {
        for s in &listed.schedules {
            println!(
                "{}  {:?}  {}  {} members, {} rotations",
                s.id,
                s.name,
                s.zone.name(),
                s.members.len(),
                s.rotations.len()
            );
        }
        for u in &listed.unreadable {
            println!(
                "{}  {:?}  unreadable: {}",
                u.id,
                u.name.as_deref().unwrap_or(""),
                u.error
            );
        }
        println!(
            "{} schedules on connection {connection}{}",
            listed.schedules.len(),
            match listed.unreadable.len() {
                0 => String::new(),
                n => format!(", {n} more could not be read"),
            }
        );
    }
    Ok(true)
}

async fn import(
    common: &Common,
    connection: &str,
    schedule: &str,
    from: DateTime<Utc>,
    to: DateTime<Utc>,
) -> Result<bool, Stop> {
    let config = load_config(common)?;
    let window = Window::new(from, to).map_err(|e| Stop::Usage(format!("--from/--to: {e}")))?;
    let provider = connection_provider(&config, connection)?;
    let id = VendorScheduleId(schedule.to_owned());
    let imported = import_schedule(provider.as_ref(), &id, window)
        .await
        .map_err(|e| Stop::Failed(format!("connection {connection}, schedule {schedule}: {e}")))?;
    let zone = imported.zone();
    let warnings = empty_roles(&imported, window);
    if common.json {
        let in_zone = |t: DateTime<Utc>| {
            t.with_timezone(&zone)
                .to_rfc3339_opts(SecondsFormat::Secs, true)
        };
        let shifts: Vec<Value> = imported
            .shifts()
            .iter()
            .map(|s| {
                json!({
                    "start": in_zone(s.start),
                    "end": in_zone(s.end),
                    "assignees": s.assignees.iter().map(|a| a.as_ref().map(|e| e.as_str())).collect::<Vec<_>>(),
                })
            })
            .collect();
        print_json(&json!({
            "id": schedule,
            "time_zone": zone.name(),
            "roles": imported.roles(),
            "shifts": shifts,
            "warnings": warnings,
        }))?;
    } else {
        println!(
            "schedule {schedule} ({}), roles {:?}",
            zone.name(),
            imported.roles()
        );
        for s in imported.shifts() {
            let who: Vec<&str> = s
                .assignees
                .iter()
                .map(|a| a.as_ref().map_or("-", |e| e.as_str()))
                .collect();
            println!(
                "  {} → {}  {}",
                local(s.start, zone),
                local(s.end, zone),
                who.join(", ")
            );
        }
        for w in &warnings {
            println!("  warning: {w}");
        }
    }
    Ok(true)
}

/// Stretches of the window where a role has nobody (the vendor's rotation shows nobody there).
fn empty_roles(schedule: &Schedule, window: Window) -> Vec<String> {
    let zone = schedule.zone();
    let mut warnings = Vec::new();
    for (role, name) in schedule.roles().iter().enumerate() {
        let mut covered = window.start();
        let mut gap = |from: DateTime<Utc>, to: DateTime<Utc>| {
            if from < to {
                warnings.push(format!(
                    "role {name} has nobody from {} to {}",
                    local(from, zone),
                    local(to, zone)
                ));
            }
        };
        for shift in schedule.shifts() {
            if shift.assignees.get(role).is_some_and(Option::is_some) {
                gap(covered, shift.start);
                covered = covered.max(shift.end);
            }
        }
        gap(covered, window.end());
    }
    warnings
}

// ---------------------------------------------------------------------------------------------
// plan and sync.

/// Everything a command over the destinations needs, validated before any request.
struct Prepared {
    config: Config,
    schedule: Schedule,
    now: DateTime<Utc>,
    store: StateBackend,
}

/// Whether a command may create the state (the file, or the schema, migrated) or only reads it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Access {
    Read,
    Write,
}

/// The config, its schedule and the instant, checked (with `--state`'s form) before any state
/// is opened or any request sent.
struct Checked {
    config: Config,
    schedule: Schedule,
    now: DateTime<Utc>,
}

fn check(s: &Stateful) -> Result<Checked, Stop> {
    let config = load_config(&s.common)?;
    let now = now_or_clock(s.now);
    let schedule = config.schedule(now)?;
    StateBackend::check(&s.state)?;
    Ok(Checked {
        config,
        schedule,
        now,
    })
}

impl Checked {
    /// Opens the state, once everything the command needs has been checked.
    async fn open(self, state: &std::path::Path, access: Access) -> Result<Prepared, Stop> {
        Ok(Prepared {
            store: StateBackend::open(state, access).await?,
            config: self.config,
            schedule: self.schedule,
            now: self.now,
        })
    }
}

/// A `postgres://` state in a build without the feature.
#[cfg(not(feature = "postgres"))]
const NEEDS_POSTGRES: &str = "--state: a postgres:// URL needs the postgres feature (cargo run --features postgres --example oncall)";

/// Where the state lives: a file, or a PostgreSQL database (feature `postgres`).
enum StateBackend {
    File(FileStateStore),
    #[cfg(feature = "postgres")]
    Postgres(oncall_sync::postgres::PostgresStateStore),
    /// A database no sync has written to yet, read by `plan` or `status`: nothing stored, as
    /// with a state file that does not exist yet (and nothing is created).
    #[cfg(feature = "postgres")]
    Unwritten(oncall_sync::InMemoryStateStore),
}

impl StateBackend {
    fn is_database(state: &std::path::Path) -> bool {
        let text = state.to_string_lossy();
        text.starts_with("postgres://") || text.starts_with("postgresql://")
    }

    /// Checks `--state`'s form (a URL needs the feature; its schema name), opening nothing.
    fn check(state: &std::path::Path) -> Result<(), Stop> {
        if !Self::is_database(state) {
            return Ok(());
        }
        #[cfg(feature = "postgres")]
        {
            let text = state.to_string_lossy();
            let (_, schema) = split_schema(&text);
            oncall_sync::postgres::PostgresStateStore::check_schema_name(
                schema.unwrap_or(oncall_sync::postgres::DEFAULT_SCHEMA),
            )
            .map_err(|e| Stop::Usage(format!("--state: {e}")))
        }
        #[cfg(not(feature = "postgres"))]
        Err(Stop::Usage(NEEDS_POSTGRES.into()))
    }

    /// Opens the state checked by [`check`](Self::check). A file is created on the first save
    /// (by a command that writes); a database's schema is created or migrated for `Write`, and
    /// for `Read` must be there already.
    async fn open(state: &std::path::Path, access: Access) -> Result<StateBackend, Stop> {
        Self::check(state)?;
        if !Self::is_database(state) {
            return Ok(StateBackend::File(FileStateStore::new(state)));
        }
        #[cfg(feature = "postgres")]
        {
            let text = state.to_string_lossy();
            let (url, schema) = split_schema(&text);
            let schema = schema.unwrap_or(oncall_sync::postgres::DEFAULT_SCHEMA);
            let store = oncall_sync::postgres::PostgresStateStore::connect(&url)
                .await
                .map_err(|e| Stop::Failed(e.to_string()))?
                .with_schema(schema)
                .map_err(|e| Stop::Usage(format!("--state: {e}")))?;
            if access == Access::Read
                && !store
                    .schema_exists()
                    .await
                    .map_err(|e| Stop::Failed(format!("--state: {e}")))?
            {
                return Ok(StateBackend::Unwritten(
                    oncall_sync::InMemoryStateStore::new(),
                ));
            }
            let ready = match access {
                Access::Write => store.migrate().await,
                Access::Read => store
                    .verify_schema()
                    .await
                    .map_err(|e| Error::CorruptState {
                        message: format!(
                        "{e}; plan and status only read: `oncall sync` (or a worker) migrates the \
                         schema"
                    ),
                    }),
            };
            ready.map_err(|e| Stop::Failed(format!("--state: {e}")))?;
            Ok(StateBackend::Postgres(store))
        }
        #[cfg(not(feature = "postgres"))]
        {
            let _ = access;
            Err(Stop::Usage(NEEDS_POSTGRES.into()))
        }
    }

    fn store(&self) -> &dyn StateStore {
        match self {
            StateBackend::File(f) => f,
            #[cfg(feature = "postgres")]
            StateBackend::Postgres(p) => p,
            #[cfg(feature = "postgres")]
            StateBackend::Unwritten(m) => m,
        }
    }

    async fn load_connections(&self) -> Result<ConnectionRegistry, Error> {
        match self {
            StateBackend::File(f) => f.load_connections(),
            #[cfg(feature = "postgres")]
            StateBackend::Postgres(p) => p.load_connections().await,
            #[cfg(feature = "postgres")]
            StateBackend::Unwritten(_) => Ok(ConnectionRegistry::default()),
        }
    }

    async fn update_connections(
        &self,
        change: impl FnOnce(&mut ConnectionRegistry) + Send,
    ) -> Result<(), Error> {
        match self {
            StateBackend::File(f) => f.update_connections(change),
            #[cfg(feature = "postgres")]
            StateBackend::Postgres(p) => p.update_connections(change).await,
            // Only commands that write update the registry, and they migrate first.
            #[cfg(feature = "postgres")]
            StateBackend::Unwritten(_) => {
                let _ = change;
                Ok(())
            }
        }
    }
}

/// `postgres://h/db?oncall_schema=s&sslmode=…` → (`postgres://h/db?sslmode=…`, `Some("s")`).
#[cfg(feature = "postgres")]
fn split_schema(url: &str) -> (String, Option<&str>) {
    let Some((base, query)) = url.split_once('?') else {
        return (url.to_owned(), None);
    };
    let mut schema = None;
    let rest: Vec<&str> = query
        .split('&')
        .filter(|pair| match pair.strip_prefix("oncall_schema=") {
            Some(s) => {
                schema = Some(s);
                false
            }
            None => true,
        })
        .collect();
    if rest.is_empty() {
        (base.to_owned(), schema)
    } else {
        (format!("{base}?{}", rest.join("&")), schema)
    }
}

// ---------------------------------------------------------------------------------------------
// Claims: what a writing command (sync, retire) holds while it writes.

/// How long this command's claims last in PostgreSQL unless renewed (every third of it); work
/// stops a quarter of it before they would run out.
#[cfg(feature = "postgres")]
const CLAIM_LEASE: std::time::Duration = std::time::Duration::from_secs(60);

/// The destinations a writing command holds, and the store it saves them through.
///
/// A state file needs no claim: its lock serialises saves, and no worker syncs from it. In
/// PostgreSQL, workers may be syncing the same destinations: they are claimed by name on the
/// lease API (`claim_named_group`), due or not, under a holder of their own
/// (`cli-<pid>-<random>`); one under another holder's live lease is refused (reported, nothing
/// sent for it). The command's work runs under the group's guard (`LeasedGroup::run`: renewed
/// every third of the lease, stopped at its deadline), every vendor call through a guarded
/// provider (`guard_provider`: the deadline checked right before each call) and every save
/// through the group's fenced store; the claims are given back with the destinations due as
/// they were.
enum Claimed<'a> {
    File(&'a FileStateStore),
    #[cfg(feature = "postgres")]
    Postgres(Box<Leased>),
}

/// A command's claims in PostgreSQL.
#[cfg(feature = "postgres")]
struct Leased {
    /// `None` when another holder keeps every destination asked for.
    group: Option<oncall_sync::postgres::LeasedGroup>,
    refused: Vec<oncall_sync::postgres::HeldElsewhere>,
    /// The store of a command that holds nothing: it refuses every destination.
    nothing: oncall_sync::postgres::FencedStore,
}

impl StateBackend {
    /// Claims `destinations` for a command that writes.
    #[cfg_attr(not(feature = "postgres"), allow(unused_variables))]
    async fn claim(&self, destinations: &[DestinationId]) -> Result<Claimed<'_>, Stop> {
        match self {
            StateBackend::File(f) => Ok(Claimed::File(f)),
            #[cfg(feature = "postgres")]
            StateBackend::Postgres(store) => {
                let options =
                    oncall_sync::postgres::LeaseOptions::new("cli").with_lease(CLAIM_LEASE);
                let (group, refused) = store
                    .claim_named_group(&options, destinations)
                    .await
                    .map_err(|e| Stop::Failed(e.to_string()))?;
                Ok(Claimed::Postgres(Box::new(Leased {
                    group,
                    refused,
                    nothing: store.fenced(&[]),
                })))
            }
            // Commands that write open the database for writing (migrated), never unwritten.
            #[cfg(feature = "postgres")]
            StateBackend::Unwritten(_) => Err(Stop::Failed(
                "--state: the database holds no state yet and this command only reads".into(),
            )),
        }
    }

    /// The request budget every process over the same database shares, per connection.
    #[cfg(feature = "postgres")]
    fn rate_budget(&self) -> Option<Arc<dyn oncall_sync::RateBudget>> {
        match self {
            StateBackend::Postgres(store) => Some(Arc::new(store.rate_budget())),
            _ => None,
        }
    }

    #[cfg(not(feature = "postgres"))]
    fn rate_budget(&self) -> Option<Arc<dyn oncall_sync::RateBudget>> {
        None
    }
}

impl Claimed<'_> {
    /// The store to sync through.
    fn store(&self) -> &dyn StateStore {
        match self {
            Claimed::File(f) => *f,
            #[cfg(feature = "postgres")]
            Claimed::Postgres(l) => match &l.group {
                Some(group) => group.store(),
                None => &l.nothing,
            },
        }
    }

    /// Whether this command holds `destination`.
    #[cfg_attr(not(feature = "postgres"), allow(unused_variables))]
    fn holds(&self, destination: &DestinationId) -> bool {
        match self {
            Claimed::File(_) => true,
            #[cfg(feature = "postgres")]
            Claimed::Postgres(l) => l
                .group
                .as_ref()
                .is_some_and(|g| g.claims().iter().any(|c| &c.destination == destination)),
        }
    }

    /// The destinations another holder keeps, each with its holder.
    fn refused(&self) -> Vec<(&DestinationId, &str)> {
        match self {
            Claimed::File(_) => Vec::new(),
            #[cfg(feature = "postgres")]
            Claimed::Postgres(l) => l
                .refused
                .iter()
                .map(|r| (&r.destination, r.holder.as_str()))
                .collect(),
        }
    }

    /// `provider` as this command sends through it: refusing every call once the claims'
    /// deadline has passed.
    fn guard(&self, provider: &Arc<dyn Provider>) -> Arc<dyn Provider> {
        match self {
            #[cfg(feature = "postgres")]
            Claimed::Postgres(l) => match &l.group {
                Some(group) => Arc::new(group.guard_provider(provider.clone())),
                None => provider.clone(),
            },
            _ => provider.clone(),
        }
    }

    /// Runs `work` while the claims are held: renewed every third of the lease, and stopped
    /// (an error) if they are lost or could not be renewed in time, or if it panics.
    async fn hold_while<T>(&self, work: impl std::future::Future<Output = T>) -> Result<T, Stop> {
        match self {
            #[cfg(feature = "postgres")]
            Claimed::Postgres(l) => match &l.group {
                Some(group) => group.run(work).await.map_err(|interrupted| {
                    Stop::Failed(format!(
                        "this command ({}) was stopped: {interrupted}; a later sync finishes the work",
                        group.holder()
                    ))
                }),
                None => Ok(work.await),
            },
            _ => Ok(work.await),
        }
    }

    /// Gives the claims back (due as they were); a failure is a warning: they run out by
    /// themselves.
    async fn give_back(&self) {
        #[cfg(feature = "postgres")]
        if let Claimed::Postgres(l) = self {
            if let Some(group) = &l.group {
                if let Err(e) = group.release_rest(std::time::Duration::ZERO).await {
                    eprintln!(
                        "warning: this command's claims were not all given back ({e}): they run \
                         out within {} s",
                        CLAIM_LEASE.as_secs()
                    );
                }
            }
        }
    }
}

/// The providers of `claimed`'s command: each guarded by its claims.
fn guarded(
    claimed: &Claimed<'_>,
    providers: &BTreeMap<ConnectionId, Arc<dyn Provider>>,
) -> BTreeMap<ConnectionId, Arc<dyn Provider>> {
    providers
        .iter()
        .map(|(id, p)| (id.clone(), claimed.guard(p)))
        .collect()
}

/// Every destination of the config with its connection's provider.
fn sync_targets<'a>(
    config: &'a Config,
    providers: &'a BTreeMap<ConnectionId, Arc<dyn Provider>>,
) -> Result<Vec<SyncTarget<'a>>, Stop> {
    config
        .destinations()
        .iter()
        .map(|destination| {
            let provider = providers.get(&destination.connection).ok_or_else(|| {
                Stop::Usage(format!("destination {}: no provider", destination.id))
            })?;
            Ok(SyncTarget {
                destination,
                provider: provider.as_ref(),
            })
        })
        .collect()
}

async fn export(s: &Stateful, mode: SyncMode, out: Option<&std::path::Path>) -> Result<bool, Stop> {
    let checked = check(s)?;
    // Key variables and providers, before any state is opened.
    let providers = checked.config.destination_providers(&process_env)?;
    sync_targets(&checked.config, &providers)?;
    let access = match mode {
        SyncMode::DryRun => Access::Read,
        _ => Access::Write,
    };
    let p = checked.open(&s.state, access).await?;
    // Over PostgreSQL, each connection's requests share one budget with every other process.
    let providers = match p.store.rate_budget() {
        Some(budget) if mode != SyncMode::DryRun => p
            .config
            .destination_providers_with_budget(&process_env, Some(&budget))?,
        _ => providers,
    };
    let targets = sync_targets(&p.config, &providers)?;
    let options = SyncOptions {
        now: p.now,
        horizon: p.config.horizon(),
        mode,
    };
    if mode == SyncMode::DryRun {
        // A plan only reads: no claim.
        let report = sync(&p.schedule, &targets, p.store.store(), options)
            .await
            .map_err(|e| Stop::Usage(e.to_string()))?;
        if let Some(out) = out {
            save_plans(out, &report.destinations)?;
        }
        print_reports(&p, &report.destinations, mode, s.common.json)?;
        if let (Some(out), false) = (out, s.common.json) {
            println!(
                "plans saved to {}: apply them with `oncall apply --plan`",
                out.display()
            );
        }
        return Ok(report.destinations.iter().all(is_ok));
    }
    let ids: Vec<DestinationId> = targets.iter().map(|t| t.destination.id.clone()).collect();
    let claimed = p.store.claim(&ids).await?;
    let guarded = guarded(&claimed, &providers);
    let mut targets = sync_targets(&p.config, &guarded)?;
    targets.retain(|t| claimed.holds(&t.destination.id));
    let report = claimed
        .hold_while(sync(&p.schedule, &targets, claimed.store(), options))
        .await;
    claimed.give_back().await;
    let report = report?.map_err(|e| Stop::Usage(e.to_string()))?;
    remember_keys(&p, |registry| {
        registry.record_report(&report);
    })
    .await;
    let mut reports = report.destinations;
    for (id, holder) in claimed.refused() {
        if let Some(destination) = p.config.destination(id) {
            reports.push(held_elsewhere(&p, destination, holder).await);
        }
    }
    let order = |r: &DestinationReport| {
        p.config
            .destinations()
            .iter()
            .position(|d| d.id == r.destination)
    };
    reports.sort_by_key(order);
    print_reports(&p, &reports, mode, s.common.json)?;
    Ok(reports.iter().all(is_ok))
}

/// The report of a destination this command did not claim: another holder (a worker, another
/// command line) is syncing it. Nothing was sent for it.
async fn held_elsewhere(
    p: &Prepared,
    destination: &Destination,
    holder: &str,
) -> DestinationReport {
    let mark = p
        .store
        .store()
        .load(&destination.id)
        .await
        .ok()
        .and_then(|v| v.value.high_water);
    let error = Error::Conflict {
        message: format!(
            "held by {holder}, whose lease has not run out: not synced, nothing sent; try again \
             once it is released"
        ),
    };
    DestinationReport {
        destination: destination.id.clone(),
        connection: destination.connection.clone(),
        status: SyncStatus::Failed,
        plan: None,
        outcomes: Vec::new(),
        errors: vec![SyncError {
            destination: destination.id.clone(),
            connection: destination.connection.clone(),
            operation: None,
            error,
        }],
        warnings: Vec::new(),
        high_water_before: mark,
        high_water_after: mark,
        write_calls: 0,
        saved_plan: None,
    }
}

fn is_ok(report: &DestinationReport) -> bool {
    matches!(report.status, SyncStatus::Ok | SyncStatus::Planned)
}

/// Keeps the connection registry in the state file: the config's connections, each keeping what
/// it proved before (while its key variable and endpoint are the same), then `learn`.
async fn remember_keys(p: &Prepared, learn: impl FnOnce(&mut ConnectionRegistry) + Send) {
    let mut fresh = p.config.registry();
    let result = p
        .store
        .update_connections(|stored| {
            merge_evidence(&mut fresh, stored);
            learn(&mut fresh);
            *stored = fresh;
        })
        .await;
    if let Err(e) = result {
        eprintln!("warning: the connection registry was not saved: {e}");
    }
}

/// Carries over "this key proved read-only" from `stored` to `fresh` for connections unchanged.
fn merge_evidence(fresh: &mut ConnectionRegistry, stored: &ConnectionRegistry) {
    let mut merged = ConnectionRegistry::new();
    for c in fresh.list() {
        let mut c = c.clone();
        if let Some(old) = stored.get(&c.id) {
            if (old.provider, &old.key, &old.endpoint) == (c.provider, &c.key, &c.endpoint) {
                c.read_only = old.read_only.clone();
            }
        }
        // Ids come from a valid registry: unique.
        let _ = merged.add(c);
    }
    *fresh = merged;
}

fn status_word(status: SyncStatus) -> &'static str {
    match status {
        SyncStatus::Ok | SyncStatus::Planned => "ok",
        SyncStatus::Partial => "partial",
        _ => "failed",
    }
}

fn error_kind(e: &Error) -> &'static str {
    e.kind()
}

/// One line of a diff: the sign, the operation name, the span shown, and the vendor id.
struct Line<'a> {
    sign: char,
    op: &'static str,
    span: Span,
    id: Option<&'a str>,
    from: Option<&'a Span>,
}

fn line(op: &PlannedOperation) -> Option<Line<'_>> {
    Some(match &op.action {
        Action::Create { span, id, .. } => Line {
            sign: '+',
            op: "create",
            span: span.clone(),
            id: id.as_ref().map(|i| i.as_str()),
            from: None,
        },
        Action::Update { id, from, to, .. } => Line {
            sign: '~',
            op: "update",
            span: to.clone(),
            id: Some(id.as_str()),
            from: Some(from),
        },
        Action::Delete { target, .. } => Line {
            sign: '-',
            op: "delete",
            span: target.span.clone(),
            id: Some(target.id.as_str()),
            from: None,
        },
        Action::Truncate { target, at, .. } => Line {
            sign: '<',
            op: "truncate",
            span: Span::new(target.span.start, *at, target.span.member.clone()),
            id: Some(target.id.as_str()),
            from: Some(&target.span),
        },
        Action::Adopt { target } => Line {
            sign: '=',
            op: "adopt",
            span: target.span.clone(),
            id: Some(target.id.as_str()),
            from: None,
        },
        // Ledger-only: counted as `forgotten`, not listed.
        _ => return None,
    })
}

fn span_json(span: &Span) -> Value {
    json!({"start": rfc3339(span.start), "end": rfc3339(span.end), "member": span.member.as_str()})
}

fn operation_json(op: &PlannedOperation, outcome: Option<&Outcome>) -> Option<Value> {
    let line = line(op)?;
    let mut value = span_json(&line.span);
    value["op"] = json!(line.op);
    value["id"] = json!(line.id);
    value["reason"] = json!(op.reason);
    if let Some(from) = line.from {
        value["from"] = span_json(from);
    }
    if let Some(outcome) = outcome {
        value["outcome"] = json!(outcome);
    }
    Some(value)
}

/// The operations of a report: with outcomes after a run, the plan's in a dry run.
fn operations(report: &DestinationReport) -> Vec<(&PlannedOperation, Option<&Outcome>)> {
    if report.status == SyncStatus::Planned || report.outcomes.is_empty() {
        report
            .plan
            .iter()
            .flat_map(|p| &p.operations)
            .map(|op| (op, None))
            .collect()
    } else {
        report
            .outcomes
            .iter()
            .map(|o| (&o.operation, Some(&o.outcome)))
            .collect()
    }
}

fn report_json(report: &DestinationReport, mode: SyncMode) -> Value {
    let ops = operations(report);
    let forgotten = ops.iter().filter(|(op, _)| line(op).is_none()).count();
    let operations: Vec<Value> = ops
        .iter()
        .filter_map(|(op, outcome)| operation_json(op, *outcome))
        .collect();
    let errors: Vec<Value> = report
        .errors
        .iter()
        .map(|e| {
            json!({
                "kind": error_kind(&e.error),
                "message": e.to_string(),
                "connection": e.connection.0,
                "destination": e.destination.0,
                "operation": e.operation,
            })
        })
        .collect();
    let mark = match mode {
        SyncMode::DryRun => report.high_water_before,
        _ => report.high_water_after,
    };
    json!({
        "id": report.destination.0,
        "connection": report.connection.0,
        "status": status_word(report.status),
        "high_water": mark.map(rfc3339),
        "high_water_before": report.high_water_before.map(rfc3339),
        "operations": operations,
        "forgotten": forgotten,
        "errors": errors,
        "warnings": report.warnings.iter().map(ToString::to_string).collect::<Vec<_>>(),
        "drift": report.drift(),
        "write_calls": report.write_calls,
        "planned": mode == SyncMode::DryRun || report.status == SyncStatus::Planned,
    })
}

fn print_reports(
    p: &Prepared,
    reports: &[DestinationReport],
    mode: SyncMode,
    as_json: bool,
) -> Result<(), Stop> {
    if as_json {
        let destinations: Vec<Value> = reports
            .iter()
            .map(|r| {
                let mut value = report_json(r, mode);
                value["mode"] = json!(p.config.destination(&r.destination).map(|d| d.mode.name()));
                value
            })
            .collect();
        return print_json(&json!({ "now": rfc3339(p.now), "destinations": destinations }));
    }
    let zone = p.config.time_zone();
    for report in reports {
        print_report(p, report, mode, zone);
    }
    Ok(())
}

fn print_report(p: &Prepared, report: &DestinationReport, mode: SyncMode, zone: Tz) {
    let target = p
        .config
        .destination(&report.destination)
        .map_or_else(String::new, |d| {
            format!(
                " → schedule {} of connection {} ({})",
                d.schedule,
                d.connection,
                role_name(p, d)
            )
        });
    println!("{}{target}", report.destination);
    let ops = operations(report);
    if ops.iter().all(|(op, _)| line(op).is_none()) {
        println!("  (nothing to do)");
    }
    for (op, outcome) in &ops {
        let Some(l) = line(op) else { continue };
        let id = l.id.map_or_else(String::new, |i| format!(" [{i}]"));
        let was = l.from.map_or_else(String::new, |f| {
            format!(
                " (was {} → {} {})",
                local(f.start, zone),
                local(f.end, zone),
                f.member
            )
        });
        let result = match outcome {
            Some(Outcome::Done) | None => String::new(),
            Some(other) => format!("  ({})", format!("{other:?}").to_lowercase()),
        };
        println!(
            "  {} {:<8} {} → {}  {}{id}{was}  {}{result}",
            l.sign,
            l.op,
            local(l.span.start, zone),
            local(l.span.end, zone),
            l.span.member,
            op.reason.describe()
        );
    }
    for w in &report.warnings {
        println!("  warning: {w}");
    }
    for d in report.drift() {
        let shown = d.shown.as_ref().map_or_else(
            || "nobody (the vendor's rotation)".to_owned(),
            ToString::to_string,
        );
        let fate = if d.stands() { "stands" } else { "reverted" };
        println!(
            "  drift {}: shift from {} planned {}, the vendor shows {shown} ({fate}; `oncall drift` for more)",
            d.id,
            local(d.shift_start, zone),
            d.planned.as_ref().map_or_else(|| "nobody".to_owned(), ToString::to_string)
        );
    }
    for e in &report.errors {
        println!("  error: {e}");
    }
    let manual = p
        .config
        .destination(&report.destination)
        .is_some_and(|d| d.mode == DestinationMode::Manual);
    if manual && mode == SyncMode::Apply && report.status == SyncStatus::Planned {
        println!(
            "  manual mode: planned only, nothing written; save the plan with `oncall plan --out` \
             and apply it with `oncall apply --plan`"
        );
    }
    let writes = match (&report.plan, mode) {
        (Some(plan), SyncMode::DryRun) => format!("{} operations planned", plan.write_count()),
        (Some(plan), _) if report.status == SyncStatus::Planned => {
            format!("{} operations planned", plan.write_count())
        }
        _ => format!("{} write calls", report.write_calls),
    };
    let mark = match mode {
        SyncMode::DryRun => local_mark(report.high_water_before, zone),
        _ => format!(
            "{} (was {})",
            local_mark(report.high_water_after, zone),
            local_mark(report.high_water_before, zone)
        ),
    };
    println!(
        "{}: {}, {writes}, mark {mark}",
        report.destination,
        status_word(report.status)
    );
}

fn role_name(p: &Prepared, d: &Destination) -> String {
    p.schedule
        .roles()
        .get(d.role.0)
        .cloned()
        .unwrap_or_else(|| d.role.default_name())
}

// ---------------------------------------------------------------------------------------------
// retire.

async fn retire_destination(s: &Stateful, id: &str, mode: SyncMode) -> Result<bool, Stop> {
    let checked = check(s)?;
    let destination = checked
        .config
        .destination(&DestinationId(id.to_owned()))
        .ok_or_else(|| {
            Stop::Usage(format!(
                "--destination {id}: no such destination in the config"
            ))
        })?
        .clone();
    let provider = checked
        .config
        .provider(&destination.connection, &process_env)?;
    let access = match mode {
        SyncMode::DryRun => Access::Read,
        _ => Access::Write,
    };
    let p = checked.open(&s.state, access).await?;
    let report = if mode == SyncMode::DryRun {
        retire(
            &destination,
            provider.as_ref(),
            p.store.store(),
            p.now,
            mode,
        )
        .await
    } else {
        let claimed = p.store.claim(std::slice::from_ref(&destination.id)).await?;
        let provider = claimed.guard(&provider);
        let report = match claimed.refused().first() {
            Some((_, holder)) => Ok(held_elsewhere(&p, &destination, holder).await),
            None => {
                claimed
                    .hold_while(retire(
                        &destination,
                        provider.as_ref(),
                        claimed.store(),
                        p.now,
                        mode,
                    ))
                    .await
            }
        };
        claimed.give_back().await;
        report?
    };
    if mode == SyncMode::Apply {
        remember_keys(&p, |registry| {
            registry.record_destination(p.now, &report);
        })
        .await;
    }
    let ok = is_ok(&report);
    print_reports(&p, std::slice::from_ref(&report), mode, s.common.json)?;
    if !s.common.json && mode == SyncMode::Apply && ok {
        println!(
            "destination {id} is retired: remove it from the config, or the next sync exports to it again"
        );
    }
    Ok(ok)
}

// ---------------------------------------------------------------------------------------------
// migrate.

/// Where `migrate` moves a destination.
struct MigrationTarget {
    connection: String,
    schedule: Option<String>,
}

async fn migrate_destination(
    s: &Stateful,
    id: &str,
    to: &MigrationTarget,
    mode: SyncMode,
) -> Result<bool, Stop> {
    let checked = check(s)?;
    let destination = checked
        .config
        .destination(&DestinationId(id.to_owned()))
        .ok_or_else(|| {
            Stop::Usage(format!(
                "--destination {id}: no such destination in the config"
            ))
        })?
        .clone();
    let to_connection = ConnectionId(to.connection.clone());
    if checked.config.connection(&to_connection).is_none() {
        return Err(Stop::Usage(format!(
            "--to-connection {to_connection}: no such connection in the config"
        )));
    }
    if to_connection == destination.connection {
        return Err(Stop::Usage(format!(
            "--to-connection {to_connection}: destination {id} is on it already"
        )));
    }
    let new_side = checked.config.provider(&to_connection, &process_env)?;
    // The old side may be off already (or its key gone): then our overrides are found by id, or
    // by the spans the ledger remembers.
    let old_side = match checked
        .config
        .provider(&destination.connection, &process_env)
    {
        Ok(p) => Some(p),
        Err(e) => {
            eprintln!(
                "note: the old connection {} cannot be read ({e}): overrides a person changed \
                 there before the move are not looked for by their changed span",
                destination.connection
            );
            None
        }
    };
    let to_schedule = to.schedule.clone().map(VendorScheduleId);
    let access = match mode {
        SyncMode::DryRun => Access::Read,
        _ => Access::Write,
    };
    let p = checked.open(&s.state, access).await?;
    let migration = |store, from: Option<Arc<dyn Provider>>, to: Arc<dyn Provider>| {
        let (destination, to_connection, to_schedule) =
            (&destination, &to_connection, &to_schedule);
        async move {
            oncall_sync::migrate(
                oncall_sync::Migration {
                    destination,
                    from: from.as_deref(),
                    to_connection,
                    to: to.as_ref(),
                    to_schedule: to_schedule.as_ref(),
                    now: p.now,
                    mode,
                },
                store,
            )
            .await
        }
    };
    let report = if mode == SyncMode::DryRun {
        migration(p.store.store(), old_side.clone(), new_side.clone()).await
    } else {
        let claimed = p.store.claim(std::slice::from_ref(&destination.id)).await?;
        let result = match claimed.refused().first() {
            Some((_, holder)) => Err(Error::Conflict {
                message: format!("held by {holder}: not moved; try again once it is released"),
            }),
            None => {
                let from = old_side.as_ref().map(|p| claimed.guard(p));
                let to = claimed.guard(&new_side);
                claimed
                    .hold_while(migration(claimed.store(), from, to))
                    .await?
            }
        };
        claimed.give_back().await;
        result
    };
    let report = report.map_err(|e| Stop::Failed(format!("destination {id}: {e}")))?;
    let index = p
        .config
        .destinations()
        .iter()
        .position(|d| d.id == destination.id)
        .unwrap_or_default();
    let edit = json!({"connection": report.to.connection, "schedule_id": report.to.schedule});
    if s.common.json {
        print_json(
            &json!({"migration": report, "config_edit": {format!("destinations[{index}]"): edit}}),
        )?;
    } else {
        print!("{report}");
        if report.saved {
            println!(
                "now set destinations[{index}] (\"{id}\") in the config to \"connection\": \"{}\", \
                 \"schedule_id\": \"{}\": until then a sync still writes to {}",
                report.to.connection, report.to.schedule, destination.connection
            );
        }
    }
    Ok(true)
}

// ---------------------------------------------------------------------------------------------
// status: the state file and the config only, no vendor call.

/// A desired shift that starts within this of now and is not exported makes the health `error`.
const SOON: TimeDelta = TimeDelta::days(3);

#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
enum Health {
    Ok,
    Warning,
    Error,
}

impl Health {
    fn word(self) -> &'static str {
        match self {
            Health::Ok => "ok",
            Health::Warning => "warning",
            Health::Error => "error",
        }
    }
}

struct DestinationStatus {
    destination: Destination,
    state: Result<oncall_sync::DestinationState, Error>,
    not_exported: Vec<Span>,
    health: Health,
}

async fn status(s: &Stateful) -> Result<bool, Stop> {
    let checked = check(s)?;
    let mut desired = Vec::new();
    for d in checked.config.destinations() {
        desired.push(
            desired_spans(
                &checked.schedule,
                d.role,
                checked.now,
                checked.config.horizon(),
            )
            .map_err(|e| Stop::Usage(format!("destination {}: {e}", d.id)))?,
        );
    }
    let p = checked.open(&s.state, Access::Read).await?;
    let registry = p
        .store
        .load_connections()
        .await
        .map_err(|e| Stop::Failed(e.to_string()))?;
    let mut statuses = Vec::new();
    for (destination, desired) in p.config.destinations().iter().zip(desired) {
        statuses.push(destination_status(&p, destination, desired).await);
    }
    if s.common.json {
        let destinations: Vec<Value> = statuses
            .iter()
            .map(|st| status_json(st, &registry))
            .collect();
        print_json(&json!({ "now": rfc3339(p.now), "destinations": destinations }))?;
    } else {
        for st in &statuses {
            print_status(&p, st, &registry);
        }
    }
    Ok(statuses.iter().all(|st| st.health != Health::Error))
}

async fn destination_status(p: &Prepared, d: &Destination, desired: Desired) -> DestinationStatus {
    let state = p.store.store().load(&d.id).await.map(|v| v.value);
    let now = p.now;
    let ledger: Vec<Span> = match &state {
        Ok(state) => state
            .ledger
            .iter()
            .filter_map(|l| l.span.clipped(now))
            .collect(),
        Err(_) => Vec::new(),
    };
    let not_exported: Vec<Span> = desired
        .spans()
        .iter()
        .filter(|span| span.clipped(now).is_some_and(|c| !ledger.contains(&c)))
        .cloned()
        .collect();
    let health = if state.is_err() || not_exported.iter().any(|s| s.start.max(now) < now + SOON) {
        Health::Error
    } else if !not_exported.is_empty() {
        Health::Warning
    } else {
        Health::Ok
    };
    DestinationStatus {
        destination: d.clone(),
        state,
        not_exported,
        health,
    }
}

fn status_json(st: &DestinationStatus, registry: &ConnectionRegistry) -> Value {
    let d = &st.destination;
    let read_only = registry
        .get(&d.connection)
        .and_then(|c| c.read_only.as_ref());
    let (high_water, last_run, ledger, state_error) = match &st.state {
        Ok(state) => (
            state.high_water.map(rfc3339),
            state
                .last_run
                .as_ref()
                .map(|r| json!({"at": rfc3339(r.at), "ok": r.ok, "error": r.error})),
            state.ledger.len(),
            None,
        ),
        Err(e) => (None, None, 0, Some(e.to_string())),
    };
    json!({
        "id": d.id.0,
        "connection": d.connection.0,
        "mode": d.mode.name(),
        "state_mode": st.state.as_ref().ok().filter(|s| s.last_run.is_some()).map(|s| s.mode.name()),
        "health": st.health.word(),
        "high_water": high_water,
        "last_run": last_run,
        "ledger_overrides": ledger,
        "key_read_only": read_only.is_some(),
        "read_only_evidence": read_only.map(|e| json!({"at": rfc3339(e.at), "destination": e.destination.0, "message": e.message})),
        "not_exported": st.not_exported.iter().map(span_json).collect::<Vec<_>>(),
        "state_error": state_error,
    })
}

fn print_status(p: &Prepared, st: &DestinationStatus, registry: &ConnectionRegistry) {
    let zone = p.config.time_zone();
    let d = &st.destination;
    println!(
        "{} → schedule {} of connection {} ({}, {} mode): health {}",
        d.id,
        d.schedule,
        d.connection,
        role_name(p, d),
        d.mode,
        st.health.word()
    );
    match &st.state {
        Ok(state) => {
            let last = state.last_run.as_ref().map_or_else(
                || "never".to_owned(),
                |r| {
                    let outcome = if r.ok { "ok" } else { "failed" };
                    let error = r
                        .error
                        .as_deref()
                        .map_or_else(String::new, |e| format!(": {e}"));
                    format!("{} {outcome}{error}", local(r.at, zone))
                },
            );
            println!(
                "  mark {}; last run {last}; {} overrides in the ledger",
                local_mark(state.high_water, zone),
                state.ledger.len()
            );
        }
        Err(e) => println!("  state unreadable: {e}"),
    }
    match registry
        .get(&d.connection)
        .and_then(|c| c.read_only.as_ref())
    {
        Some(e) => println!(
            "  key of connection {} proved read-only: a write to {} was refused at {}",
            d.connection,
            e.destination,
            local(e.at, zone)
        ),
        None => println!("  key of connection {}: no write refused", d.connection),
    }
    for span in &st.not_exported {
        println!(
            "  not exported: {} → {}  {}",
            local(span.start, zone),
            local(span.end, zone),
            span.member
        );
    }
}

// ---------------------------------------------------------------------------------------------
// plan --out and apply: saved plans (manual mode, DESIGN §8).

/// The file `plan --out` writes and `apply --plan` reads.
#[derive(serde::Serialize, serde::Deserialize)]
struct PlansFile {
    plans: Vec<SavedPlan>,
}

/// Writes `text` to `path` through a temporary file renamed into place: a reader never sees half a
/// file, and a crash leaves the old one.
fn write_atomically(path: &std::path::Path, text: &str) -> Result<(), Stop> {
    use std::io::Write;
    let name = path
        .file_name()
        .map_or_else(|| "file".into(), |n| n.to_string_lossy().into_owned());
    let temporary = path.with_file_name(format!(".{name}.{}.tmp", std::process::id()));
    let failed = |doing: &str, e: std::io::Error| {
        Stop::Failed(format!("cannot {doing} {}: {e}", path.display()))
    };
    let mut file = std::fs::File::create(&temporary).map_err(|e| failed("write", e))?;
    file.write_all(text.as_bytes())
        .and_then(|()| file.sync_all())
        .map_err(|e| failed("write", e))?;
    std::fs::rename(&temporary, path).map_err(|e| {
        let _ = std::fs::remove_file(&temporary);
        failed("replace", e)
    })
}

/// Saves the plans of every destination that was read (the others failed: their errors show).
fn save_plans(out: &std::path::Path, reports: &[DestinationReport]) -> Result<(), Stop> {
    let plans = PlansFile {
        plans: reports
            .iter()
            .filter_map(|r| r.saved_plan.as_deref().cloned())
            .collect(),
    };
    let text = serde_json::to_string_pretty(&plans)
        .map_err(|e| Stop::Failed(format!("cannot write the plans: {e}")))?;
    write_atomically(out, &(text + "\n"))
}

fn refusal_kind(refusal: &PlanRefused) -> &'static str {
    match refusal {
        PlanRefused::Format { .. } => "format",
        PlanRefused::OtherDestination { .. } => "other_destination",
        PlanRefused::StateChanged { .. } => "state_changed",
        PlanRefused::VendorChanged { .. } => "vendor_changed",
        PlanRefused::Outdated { .. } => "outdated",
        PlanRefused::Unreadable { .. } => "unreadable",
        _ => "refused",
    }
}

async fn apply_saved(s: &Stateful, plan_file: &std::path::Path) -> Result<bool, Stop> {
    let checked = check(s)?;
    let text = std::fs::read_to_string(plan_file)
        .map_err(|e| Stop::Usage(format!("--plan {}: {e}", plan_file.display())))?;
    let file: PlansFile = serde_json::from_str(&text).map_err(|e| {
        Stop::Usage(format!(
            "--plan {}: not a file of saved plans ({e})",
            plan_file.display()
        ))
    })?;
    for saved in &file.plans {
        if checked.config.destination(&saved.destination.id).is_none() {
            return Err(Stop::Usage(format!(
                "--plan: the plan for destination {} names a destination the config does not have",
                saved.destination.id
            )));
        }
    }
    let providers = checked.config.destination_providers(&process_env)?;
    let p = checked.open(&s.state, Access::Write).await?;
    let ids: Vec<DestinationId> = file
        .plans
        .iter()
        .map(|saved| saved.destination.id.clone())
        .collect();
    let claimed = p.store.claim(&ids).await?;
    let mut results: Vec<(DestinationReport, Option<PlanRefused>)> = Vec::new();
    let work = async {
        let mut results = Vec::new();
        for saved in &file.plans {
            let Some(destination) = p.config.destination(&saved.destination.id) else {
                continue;
            };
            if !claimed.holds(&destination.id) {
                continue;
            }
            let Some(provider) = providers.get(&destination.connection) else {
                continue;
            };
            let target = SyncTarget {
                destination,
                provider: provider.as_ref(),
            };
            match apply_plan(saved, target, claimed.store(), p.now).await {
                Ok(report) => results.push((report, None)),
                Err(refused) => {
                    results.push((refused_report(destination, &refused), Some(refused)))
                }
            }
        }
        results
    };
    let outcome = claimed.hold_while(work).await;
    claimed.give_back().await;
    results.extend(outcome?);
    for (id, holder) in claimed.refused() {
        if let Some(destination) = p.config.destination(id) {
            results.push((held_elsewhere(&p, destination, holder).await, None));
        }
    }
    remember_keys(&p, |registry| {
        for (report, _) in &results {
            registry.record_destination(p.now, report);
        }
    })
    .await;
    if s.common.json {
        let destinations: Vec<Value> = results
            .iter()
            .map(|(report, refused)| {
                let mut value = report_json(report, SyncMode::Apply);
                value["refused"] = json!(refused.as_ref().map(refusal_kind));
                value
            })
            .collect();
        print_json(&json!({ "now": rfc3339(p.now), "destinations": destinations }))?;
    } else {
        let zone = p.config.time_zone();
        for (report, refused) in &results {
            match refused {
                Some(refused) => println!(
                    "{}: refused, nothing written: {refused}",
                    report.destination
                ),
                None => print_report(&p, report, SyncMode::Apply, zone),
            }
        }
        if results.is_empty() {
            println!("the plan file holds no plan");
        }
    }
    Ok(results
        .iter()
        .all(|(report, refused)| refused.is_none() && is_ok(report)))
}

/// The report of a saved plan that was refused: nothing was sent or saved.
fn refused_report(destination: &Destination, refused: &PlanRefused) -> DestinationReport {
    DestinationReport {
        destination: destination.id.clone(),
        connection: destination.connection.clone(),
        status: SyncStatus::Failed,
        plan: None,
        outcomes: Vec::new(),
        errors: vec![SyncError {
            destination: destination.id.clone(),
            connection: destination.connection.clone(),
            operation: None,
            error: Error::Conflict {
                message: format!("the saved plan was refused: {refused}"),
            },
        }],
        warnings: Vec::new(),
        high_water_before: None,
        high_water_after: None,
        write_calls: 0,
        saved_plan: None,
    }
}

// ---------------------------------------------------------------------------------------------
// drift: what people changed in the vendor, and accepting it into the config.

/// Which drift records `drift` accepts.
enum Accept {
    /// Every record's proposal (`--accept-all`).
    All,
    /// Those of the records with these ids (`--accept ID...`).
    Records(Vec<String>),
}

async fn drift(s: &Stateful, accept: Option<Accept>) -> Result<bool, Stop> {
    let checked = check(s)?;
    let providers = checked.config.destination_providers(&process_env)?;
    let p = checked.open(&s.state, Access::Read).await?;
    let targets = sync_targets(&p.config, &providers)?;
    let options = SyncOptions {
        now: p.now,
        horizon: p.config.horizon(),
        mode: SyncMode::DryRun,
    };
    let report = sync(&p.schedule, &targets, p.store.store(), options)
        .await
        .map_err(|e| Stop::Usage(e.to_string()))?;
    let mut ok = report.destinations.iter().all(is_ok);
    let all: Vec<&Drift> = report.destinations.iter().flat_map(|r| r.drift()).collect();
    let accepted = match accept {
        Some(which) => {
            let chosen = chosen_records(&all, which)?;
            let taken = accept_into_config(&s.common.config, &p.schedule, &chosen)?;
            ok &= taken.refused.is_empty();
            Some(taken)
        }
        None => None,
    };
    if s.common.json {
        let destinations: Vec<Value> = report
            .destinations
            .iter()
            .map(|r| {
                json!({
                    "id": r.destination.0,
                    "connection": r.connection.0,
                    "mode": p.config.destination(&r.destination).map(|d| d.mode.name()),
                    "status": status_word(r.status),
                    "drift": r.drift(),
                    "errors": r.errors.iter().map(ToString::to_string).collect::<Vec<_>>(),
                })
            })
            .collect();
        let mut value = json!({ "now": rfc3339(p.now), "destinations": destinations });
        if let Some(taken) = &accepted {
            value["accepted"] = json!(taken.made.len());
            value["not_accepted"] = json!(taken
                .refused
                .iter()
                .map(|r| json!({
                    "records": r.records,
                    "proposal": r.proposal,
                    "reason": r.reason.to_string(),
                    "kind": accept_error_kind(&r.reason),
                }))
                .collect::<Vec<_>>());
        }
        print_json(&value)?;
    } else {
        let zone = p.config.time_zone();
        for r in &report.destinations {
            println!("{}", r.destination);
            for e in &r.errors {
                println!("  error: {e}");
            }
            if r.drift().is_empty() && r.errors.is_empty() {
                println!("  (no drift: the vendor shows the rota)");
            }
            for d in r.drift() {
                print_drift(d, zone);
            }
        }
        if let Some(taken) = &accepted {
            for r in &taken.refused {
                let ids: Vec<&str> = r.records.iter().map(|id| id.0.as_str()).collect();
                println!(
                    "not accepted: {} ({}): {}",
                    ids.join(", "),
                    r.proposal,
                    r.reason
                );
            }
            if taken.made.is_empty() {
                println!("nothing to accept");
            } else {
                println!(
                    "accepted {} edits into {}: only the assignees of those shifts changed",
                    taken.made.len(),
                    s.common.config.display()
                );
                for line in &taken.made {
                    println!("  {line}");
                }
            }
        }
    }
    Ok(ok)
}

fn print_drift(d: &Drift, zone: Tz) {
    let who = |e: Option<&oncall_sync::Email>| {
        e.map_or_else(
            || "nobody (the vendor's rotation)".to_owned(),
            ToString::to_string,
        )
    };
    println!(
        "  {}  shift {} → {}: planned {}, the vendor shows {}",
        d.id,
        local(d.shift_start, zone),
        local(d.shift_end, zone),
        d.planned
            .as_ref()
            .map_or_else(|| "nobody".to_owned(), ToString::to_string),
        who(d.shown.as_ref())
    );
    for s in &d.stretches {
        let fate = match s.fate {
            DriftFate::Stands => "stands (a person's change before the mark)",
            DriftFate::Reverted => "reverted by the sync",
            _ => "",
        };
        println!(
            "      {} → {}  {fate}",
            local(s.start, zone),
            local(s.end, zone)
        );
    }
    match &d.proposal {
        Some(p) => println!("      proposal: {p}"),
        None => println!("      no proposal: the change covers part of the shift"),
    }
}

/// The records `which` names; an id no record has is a usage error (nothing is written).
fn chosen_records(all: &[&Drift], which: Accept) -> Result<Vec<Drift>, Stop> {
    match which {
        Accept::All => Ok(all.iter().map(|d| (*d).clone()).collect()),
        Accept::Records(ids) => {
            let unknown: Vec<&str> = ids
                .iter()
                .filter(|id| !all.iter().any(|d| d.id.0 == **id))
                .map(String::as_str)
                .collect();
            if !unknown.is_empty() {
                return Err(Stop::Usage(format!(
                    "--accept: no drift record {} now (run `oncall drift` for the current ids); \
                     the config was not changed",
                    unknown.join(", ")
                )));
            }
            Ok(all
                .iter()
                .filter(|d| ids.contains(&d.id.0))
                .map(|d| (*d).clone())
                .collect())
        }
    }
}

/// Rewriting the config file in place (`drift --accept`): the file a symlink points to is the one
/// rewritten (the link stays), with its permissions, atomically (a temporary file in the same
/// directory, then a rename over it), and only if nobody changed it since it was read.
mod config_file {
    use std::io::Write;
    use std::path::{Path, PathBuf};

    use super::Stop;

    /// The config as read: its text, and the real file it came from.
    pub struct Read {
        pub text: String,
        real: PathBuf,
    }

    /// Reads the file `path` names (through symlinks).
    pub fn read(path: &Path) -> Result<Read, Stop> {
        let failed = |e: std::io::Error| Stop::Usage(format!("--config {}: {e}", path.display()));
        let real = std::fs::canonicalize(path).map_err(failed)?;
        let text = std::fs::read_to_string(&real).map_err(failed)?;
        Ok(Read { text, real })
    }

    /// Replaces the file `read` came from by `text`, unless it changed since it was read.
    pub fn replace(path: &Path, read: &Read, text: &str) -> Result<(), Stop> {
        let failed = |doing: &str, e: std::io::Error| {
            Stop::Failed(format!(
                "cannot {doing} {}: {e}; the config was not changed",
                read.real.display()
            ))
        };
        let permissions = std::fs::metadata(&read.real)
            .map_err(|e| failed("read", e))?
            .permissions();
        let name = read
            .real
            .file_name()
            .map_or_else(|| "config".into(), |n| n.to_string_lossy().into_owned());
        let temporary = read
            .real
            .with_file_name(format!(".{name}.{}.tmp", std::process::id()));
        let written = (|| {
            let mut file = std::fs::File::create(&temporary)?;
            file.write_all(text.as_bytes())?;
            file.sync_all()?;
            std::fs::set_permissions(&temporary, permissions)
        })();
        let discard = |e| {
            let _ = std::fs::remove_file(&temporary);
            e
        };
        written.map_err(|e| discard(failed("write", e)))?;
        // Someone else's edit since the read would be lost by the rename: refuse instead.
        let now = std::fs::read_to_string(&read.real).map_err(|e| discard(failed("read", e)))?;
        if now != read.text {
            return Err(discard(Stop::Failed(format!(
                "{} changed while the drift was accepted (by someone else?): the config was \
                 not changed; run `oncall drift` again",
                path.display()
            ))));
        }
        std::fs::rename(&temporary, &read.real).map_err(|e| discard(failed("replace", e)))
    }
}

/// What `drift --accept` did to the config.
struct Taken {
    /// A line per edit made.
    made: Vec<String>,
    /// The proposals not taken, with their reasons.
    refused: Vec<oncall_sync::NotAccepted>,
}

/// Takes the chosen records' proposals into the config's shifts, record by record: the library
/// decides which can be taken against the rota the config holds (`accept_drift`), and those are
/// written into the file (only their shifts' assignees change).
fn accept_into_config(
    path: &std::path::Path,
    rota: &Schedule,
    chosen: &[Drift],
) -> Result<Taken, Stop> {
    let read = config_file::read(path)?;
    let mut edited = with_newcomers(rota, &read.text, chosen)?;
    let accepted = oncall_sync::accept_drift(&mut edited, chosen);
    let edits: Vec<_> = accepted.applied.iter().flat_map(|p| p.edits()).collect();
    let mut taken = Taken {
        made: Vec::new(),
        refused: accepted.not_accepted,
    };
    if edits.is_empty() {
        return Ok(taken);
    }
    let written = oncall_sync::config::accept_edits(&read.text, &edits)
        .map_err(|e| Stop::Usage(format!("--accept: {e}; the config was not changed")))?;
    if !written.made.is_empty() {
        config_file::replace(path, &read, &written.text)?;
    }
    taken.made = written
        .made
        .iter()
        .map(|e| {
            let who = |e: &Option<oncall_sync::Email>| {
                e.as_ref()
                    .map_or_else(|| "nobody".to_owned(), ToString::to_string)
            };
            format!(
                "shift from {} (role {}): {} → {}",
                rfc3339(e.shift_start),
                e.role,
                who(&e.from),
                who(&e.to)
            )
        })
        .collect();
    Ok(taken)
}

/// The rota, with the people the proposals name added as members where the config lists no
/// `schedule.members` (its members are then whoever its shifts name, so a newcomer is one more).
fn with_newcomers(rota: &Schedule, text: &str, chosen: &[Drift]) -> Result<Schedule, Stop> {
    let listed = serde_json::from_str::<Value>(text)
        .map(|v| !v["schedule"]["members"].is_null())
        .unwrap_or(true);
    let mut members = rota.members().to_vec();
    if !listed {
        let named = chosen
            .iter()
            .filter_map(|d| d.proposal.as_ref())
            .flat_map(|p| p.edits())
            .filter_map(|e| e.to);
        for email in named {
            if !members.iter().any(|m| m.email == email) {
                let name = email.to_string();
                members.push(oncall_sync::Member::new(email, name));
            }
        }
    }
    if members.len() == rota.members().len() {
        return Ok(rota.clone());
    }
    Schedule::new(
        rota.id().clone(),
        rota.zone(),
        rota.roles().to_vec(),
        members,
        rota.shifts().to_vec(),
    )
    .map_err(|e| Stop::Usage(format!("--accept: {e}; the config was not changed")))
}

fn accept_error_kind(error: &oncall_sync::AcceptError) -> &'static str {
    match error {
        oncall_sync::AcceptError::Stale { .. } => "stale",
        oncall_sync::AcceptError::Conflicting { .. } => "conflicting",
        oncall_sync::AcceptError::Invalid(_) => "invalid",
        _ => "refused",
    }
}

// ---------------------------------------------------------------------------------------------
// actuals: the on-call actually served, for reporting and pay.

async fn actuals(
    common: &Common,
    connection: &str,
    schedule: &str,
    window: Window,
    options: &ActualsOptions,
    csv: bool,
) -> Result<bool, Stop> {
    let config = load_config(common)?;
    let provider = connection_provider(&config, connection)?;
    let id = VendorScheduleId(schedule.to_owned());
    let a = read_actuals(provider.as_ref(), &id, window, options)
        .await
        .map_err(|e| Stop::Failed(format!("connection {connection}, schedule {schedule}: {e}")))?;
    // Hours as the CSV rounds them (hundredths that add up); the seconds are exact.
    let hours = |hundredths: i64| hundredths as f64 / 100.0;
    let split_json = |s: &oncall_sync::HoursSplit| {
        let h = s.rounded_hours();
        json!({
            "hours": hours(h.total),
            "weekday_hours": hours(h.weekday),
            "weekend_hours": hours(h.weekend),
            "night_hours": hours(h.night),
            "seconds": s.total_seconds,
            "weekday_seconds": s.weekday_seconds,
            "weekend_seconds": s.weekend_seconds,
            "night_seconds": s.night_seconds,
        })
    };
    if csv {
        print!("{}", a.to_csv());
    } else if common.json {
        let with = |mut v: Value, split: &oncall_sync::HoursSplit| {
            if let (Value::Object(map), Value::Object(extra)) = (&mut v, split_json(split)) {
                map.extend(extra);
            }
            v
        };
        let periods: Vec<Value> = a
            .periods
            .iter()
            .map(|p| {
                with(
                    json!({"role": p.role_name, "member": p.member.as_str(), "start": rfc3339(p.start), "end": rfc3339(p.end)}),
                    &p.split,
                )
            })
            .collect();
        let totals: Vec<Value> = a
            .totals
            .iter()
            .map(|t| {
                with(
                    json!({"role": t.role_name, "member": t.member.as_str()}),
                    &t.split,
                )
            })
            .collect();
        print_json(&json!({
            "schedule": schedule,
            "from": rfc3339(window.start()),
            "to": rfc3339(window.end()),
            "time_zone": a.zone.name(),
            "night": a.options.night.to_string(),
            "weekend": a.options.weekend.iter().map(|d| d.to_string().to_lowercase()).collect::<Vec<_>>(),
            "periods": periods,
            "totals": totals,
        }))?;
    } else {
        print_actuals(&a, schedule);
    }
    Ok(true)
}

fn print_actuals(a: &Actuals, schedule: &str) {
    use oncall_sync::actuals::hours_and_minutes as hm;
    let weekend: Vec<String> = a.options.weekend.iter().map(ToString::to_string).collect();
    println!(
        "schedule {schedule}, {} to {} ({}; night {}, weekend {})",
        local(a.window.start(), a.zone),
        local(a.window.end(), a.zone),
        a.zone.name(),
        a.options.night,
        if weekend.is_empty() {
            "none".to_owned()
        } else {
            weekend.join(",")
        }
    );
    for p in &a.periods {
        println!(
            "  {:<10} {} → {}  {}  {}",
            p.role_name,
            local(p.start, a.zone),
            local(p.end, a.zone),
            p.member,
            hm(p.split.total_seconds)
        );
    }
    println!("  hours per person (h:mm): total, weekday, weekend, night");
    for t in &a.totals {
        let s = &t.split;
        println!(
            "  {:<10} {:<28} {:>8} {:>8} {:>8} {:>8}",
            t.role_name,
            t.member.as_str(),
            hm(s.total_seconds),
            hm(s.weekday_seconds),
            hm(s.weekend_seconds),
            hm(s.night_seconds)
        );
    }
}

// ---------------------------------------------------------------------------------------------
// probe: which reading an account speaks on each UNCONFIRMED point.

async fn probe(common: &Common, connection: &str, request: &ProbeRequest) -> Result<bool, Stop> {
    let config = load_config(common)?;
    let id = ConnectionId(connection.to_owned());
    let (vendor, report, error) = match config.probe(&id, request, &process_env).await {
        Ok((kind, report)) => (kind.to_string(), report, None),
        Err(e) if e.report().is_some() => {
            let report = e.report().cloned().unwrap_or_default();
            (report.vendor.clone(), report, Some(e))
        }
        Err(e) if e.nothing_sent() => return Err(Stop::Usage(e.to_string())),
        Err(e) => return Err(Stop::Failed(e.to_string())),
    };
    if common.json {
        print_json(&probe_json(
            connection,
            &vendor,
            request,
            &report,
            error.as_ref(),
        )?)?;
    } else {
        print_probe(connection, request, &report);
    }
    if let Some(e) = error {
        return Err(Stop::Failed(e.to_string()));
    }
    if !report.left_behind.is_empty() {
        return Err(Stop::Failed(format!(
            "the probe could not remove overrides it made on schedule {}: {} (delete them by hand)",
            request
                .write_to
                .as_ref()
                .map_or_else(String::new, |s| s.0.clone()),
            report.left_behind.join(", ")
        )));
    }
    Ok(true)
}

fn probe_json(
    connection: &str,
    vendor: &str,
    request: &ProbeRequest,
    report: &ProbeReport,
    error: Option<&ProbeError>,
) -> Result<Value, Stop> {
    let findings = serde_json::to_value(&report.findings)
        .map_err(|e| Stop::Failed(format!("cannot print JSON: {e}")))?;
    Ok(json!({
        "connection": connection,
        "vendor": vendor,
        "now": rfc3339(request.now),
        "schedule": request.schedule.as_ref().map(|s| s.0.as_str()),
        "write_to": request.write_to.as_ref().map(|s| s.0.as_str()),
        "findings": findings,
        "write_calls": report.write_calls,
        "left_behind": report.left_behind,
        "error": error.map(|e| json!({"kind": e.kind(), "message": e.to_string()})),
    }))
}

fn print_probe(connection: &str, request: &ProbeRequest, report: &ProbeReport) {
    let scope = match &request.schedule {
        Some(s) => format!("schedule {s}"),
        None => "every schedule the key lists".to_owned(),
    };
    let writes = match &request.write_to {
        Some(s) => format!("writing to scratch schedule {s}"),
        None => "reads only".to_owned(),
    };
    println!(
        "connection {connection}, {scope}, {writes}, at {}",
        rfc3339(request.now)
    );
    println!(
        "Each point is a behaviour the vendor's documentation leaves open; its reading is the one \
         this account showed (the simulator dialect's setting of the same name), or \
         \"(could not tell)\"."
    );
    print!("{report}");
}
