//! The JSON configuration of the `oncall` CLI (and of workers that share its file): connections,
//! one host schedule, and its destinations, validated before anything is sent.
//!
//! ```json
//! {"connections": [
//!    {"id": "og", "provider": "opsgenie", "api_key_env": "OG_KEY", "base_url": "http://127.0.0.1:18080"},
//!    {"id": "pd", "provider": "pagerduty", "api_key_env": "PD_KEY", "region": "eu"}],
//!  "schedule": {"id": "platform", "time_zone": "Europe/Berlin", "roles": ["primary", "secondary"],
//!    "shifts": [{"start": "2026-12-01T09:00:00+01:00", "end": "2026-12-02T09:00:00+01:00",
//!                "assignees": ["alice@example.com", null]}]},
//!  "destinations": [
//!    {"id": "og-primary", "connection": "og", "schedule_id": "<vendor schedule id>", "role": "primary"}]}
//! ```
//!
//! - **Connections**: `provider` is `opsgenie`, `pagerduty` or `jsm`. For Opsgenie and PagerDuty,
//!   `api_key_env` names the environment variable holding the key (the key itself never appears in
//!   the file); `region` is `us` (the default) or `eu`; `base_url` overrides the region.
//! - **JSM connections** (Jira Service Management Operations, Opsgenie's successor) log in with an
//!   Atlassian account's e-mail and API token: `email_env` and `api_token_env` name the variables
//!   holding them; `site` is the site's host (`acme.atlassian.net`, or a URL), or `cloud_id` gives
//!   the site's cloudId; `base_url` optionally says where the Operations API is (default
//!   `https://api.atlassian.com`):
//!
//!   ```json
//!   {"id": "jsm", "provider": "jsm", "site": "acme.atlassian.net",
//!    "email_env": "JSM_EMAIL", "api_token_env": "JSM_TOKEN"}
//!   ```
//! - **Schedule**: `time_zone` is an IANA name; `roles` name the roles by position (the first is
//!   the primary). `members` is optional: by default the members are the people the shifts name;
//!   when given (emails, or `{"email", "name"}` objects), every assignee must be one of them.
//!   `horizon_days` is optional: with it, shifts starting before now plus the horizon are exported;
//!   without it, every shift is (DESIGN §3).
//! - **Shifts**: `start` and `end` are RFC 3339 instants in whole seconds; `assignees` has one
//!   entry per role, an email or `null` (the role is empty there and the vendor's own rotation shows).
//!   Shifts are sorted by start and do not overlap.
//! - **Rotation**, instead of `shifts`: everyone takes turns, one list of participants per role,
//!   expanded by the core ([`oncall_core::expand_rotation`], then merged by position with
//!   [`oncall_core::merge_rotations`]):
//!
//!   ```json
//!   "rotation": {"unit": "weekly", "length": 1, "start": "2026-12-07T09:00:00",
//!                "end": "2027-03-01T09:00:00",
//!                "participants": [["alice@example.com", "bob@example.com"],
//!                                 ["bob@example.com", null, "alice@example.com"]]}
//!   ```
//!
//!   `unit` is `hourly`, `daily` or `weekly` and `length` (default 1) counts units per turn; daily
//!   and weekly handoffs keep the local wall time of `start` across DST. `start` and the optional
//!   `end` are local wall times in the schedule's zone, without an offset. A `null` participant is
//!   a turn with nobody. Without an `end`, the rotation runs on and `horizon_days` is required.
//! - `oncall import --json` prints a schedule in this shape (its `id` is the vendor schedule's,
//!   and its `warnings` are ignored here): it pastes into the file as `schedule`.
//! - **Destinations**: one vendor schedule (`schedule_id`) of one connection, and the host role
//!   exported there (by name). No two destinations may share a vendor schedule of one connection:
//!   each would take the other's overrides for foreign ones. `mode` is optional (DESIGN §8):
//!   `protect` (the default: people's vendor edits before the mark survive), `authoritative` (the
//!   vendor is made to show the rota over the whole horizon) or `manual` (a sync only plans;
//!   `oncall plan --out` saves a plan and `oncall apply --plan` applies it).
//!
//! `oncall drift --accept` writes accepted drift into the file ([`accept_edits`]): the
//! `assignees` of the shifts concerned change, and nothing else in the file does.
//!
//! Every error says what is wrong and where, as a path into the file
//! (`schedule.shifts[3].start`), before any request is sent. [`Config::provider`] builds each
//! connection's [`Provider`], reading its key from the environment; [`Config::probe`] probes a
//! connection's account (`oncall probe`); [`Config::with_http_trace`] makes every provider built
//! record its HTTP exchanges (`oncall --trace-http`).

use std::collections::{BTreeMap, HashMap, HashSet};
use std::fmt;
use std::path::Path;
use std::sync::Arc;

use chrono::{DateTime, NaiveDateTime, TimeDelta, Utc};
use chrono_tz::Tz;
use oncall_core::trace::HttpTrace;
use oncall_core::{
    expand_rotation, merge_rotations, resolve_local, ApiKey, Connection, ConnectionId,
    ConnectionRegistry, Destination, DestinationId, DestinationMode, Email, Endpoint, KeyReference,
    Member, Participant, Provider, ProviderKind, RateBudget, RoleIndex, Rotation, RotationUnit,
    Schedule, ScheduleId, Shift, Usage, ValidationError, VendorScheduleId, Window,
};
use serde::Deserialize;

mod accept;
mod probe;

pub use accept::{accept_edits, AcceptedText};
pub use probe::ProbeError;

/// What is wrong with a configuration, and where (a path into the JSON, such as
/// `schedule.shifts[3].start`, or the connection concerned).
#[non_exhaustive]
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ConfigError {
    /// The file could not be read.
    #[error("cannot read {file}: {message}")]
    Read {
        /// The file.
        file: String,
        /// Why.
        message: String,
    },
    /// The file is not JSON of the expected shape (an unknown field, a missing one, a wrong type).
    #[error("{message}")]
    Syntax {
        /// What serde said, with the line and column.
        message: String,
    },
    /// An instant that is not an RFC 3339 instant in whole seconds (or, for a rotation, not a local
    /// wall time).
    #[error("{at}: invalid instant {value:?}: {reason}")]
    InvalidInstant {
        /// Where.
        at: String,
        /// The text given.
        value: String,
        /// Why it was refused.
        reason: String,
    },
    /// A destination names a role the schedule does not have.
    #[error("{at}: unknown role {role:?}; the schedule's roles are {roles:?}")]
    UnknownRole {
        /// Where.
        at: String,
        /// The role given.
        role: String,
        /// The schedule's roles.
        roles: Vec<String>,
    },
    /// A destination names a connection the file does not declare.
    #[error("{at}: unknown connection {connection:?}")]
    UnknownConnection {
        /// Where.
        at: String,
        /// The connection given.
        connection: String,
    },
    /// A shift starts before the previous one ends.
    #[error(
        "{at}: starts at {start}, before the previous shift ends at {previous_end}: shifts must not overlap"
    )]
    OverlappingShifts {
        /// Where.
        at: String,
        /// Its start.
        start: DateTime<Utc>,
        /// The previous shift's end.
        previous_end: DateTime<Utc>,
    },
    /// The environment variable that should hold a connection's key is not set (or empty).
    #[error("connection {connection}: the environment variable {variable} that should hold its API key is not set")]
    MissingKeyVariable {
        /// The connection.
        connection: ConnectionId,
        /// The variable's name.
        variable: String,
    },
    /// Two destinations export to the same vendor schedule of one connection.
    #[error(
        "destinations {first} and {second} both export to schedule {schedule} of connection \
         {connection}: give each vendor schedule one destination (one role)"
    )]
    SharedVendorSchedule {
        /// The first destination.
        first: DestinationId,
        /// The second destination.
        second: DestinationId,
        /// Their connection.
        connection: ConnectionId,
        /// The vendor schedule.
        schedule: VendorScheduleId,
    },
    /// Anything else the file gets wrong.
    #[error("{at}: {message}")]
    Invalid {
        /// Where.
        at: String,
        /// What is wrong.
        message: String,
    },
}

fn invalid(at: impl Into<String>, message: impl fmt::Display) -> ConfigError {
    ConfigError::Invalid {
        at: at.into(),
        message: message.to_string(),
    }
}

/// One connection of the file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConnectionConfig {
    /// Its id.
    pub id: ConnectionId,
    /// The vendor.
    pub provider: ProviderKind,
    /// The environment variable holding its key (for JSM, the API token: `api_token_env`).
    pub api_key_env: String,
    /// Where its API is (for JSM, the site's URL, or the API's root with the cloudId).
    pub endpoint: Endpoint,
    /// What only a JSM connection has; `None` for the others.
    pub jsm: Option<JsmConnectionConfig>,
}

/// The settings of a JSM connection beyond its token.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct JsmConnectionConfig {
    /// The environment variable holding the Atlassian account's e-mail.
    pub email_env: String,
    /// The site: a host or a URL.
    pub site: Option<String>,
    /// The site's cloudId, when given.
    pub cloud_id: Option<String>,
    /// Where the Operations API is, when not Atlassian's.
    pub base_url: Option<String>,
}

/// How the host schedule's shifts are given.
#[derive(Debug, Clone, PartialEq)]
enum Shifts {
    /// Explicit shifts: the schedule, validated once.
    Given(Schedule),
    /// A rotation, expanded for each `now`.
    Rotation(RotationConfig),
}

#[derive(Debug, Clone, PartialEq)]
struct RotationConfig {
    id: ScheduleId,
    zone: Tz,
    roles: Vec<String>,
    members: Vec<Member>,
    /// One rotation per role.
    rotations: Vec<Rotation>,
    start: DateTime<Utc>,
    end: Option<DateTime<Utc>>,
}

/// A validated configuration. See the [module docs](self) for the file's shape.
#[derive(Debug, Clone, PartialEq)]
pub struct Config {
    connections: Vec<ConnectionConfig>,
    shifts: Shifts,
    horizon: Option<TimeDelta>,
    destinations: Vec<Destination>,
    /// Where the providers this config builds record their HTTP exchanges (not part of the file).
    http_trace: TraceHook,
}

/// The HTTP trace every provider a [`Config`] builds is given; two configs compare equal only
/// with the same trace (or none).
#[derive(Debug, Clone, Default)]
struct TraceHook(Option<Arc<dyn HttpTrace>>);

impl PartialEq for TraceHook {
    fn eq(&self, other: &TraceHook) -> bool {
        match (&self.0, &other.0) {
            (None, None) => true,
            (Some(a), Some(b)) => Arc::ptr_eq(a, b),
            _ => false,
        }
    }
}

// The file as written, before validation.

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawConfig {
    connections: Vec<RawConnection>,
    schedule: RawSchedule,
    destinations: Vec<RawDestination>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawConnection {
    id: String,
    provider: String,
    #[serde(default)]
    api_key_env: Option<String>,
    #[serde(default)]
    region: Option<String>,
    #[serde(default)]
    base_url: Option<String>,
    // JSM only.
    #[serde(default)]
    site: Option<String>,
    #[serde(default)]
    cloud_id: Option<String>,
    #[serde(default)]
    email_env: Option<String>,
    #[serde(default)]
    api_token_env: Option<String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawSchedule {
    id: String,
    time_zone: String,
    roles: Vec<String>,
    #[serde(default)]
    members: Option<Vec<RawMember>>,
    #[serde(default)]
    shifts: Option<Vec<RawShift>>,
    #[serde(default)]
    rotation: Option<RawRotation>,
    #[serde(default)]
    horizon_days: Option<u32>,
    /// `oncall import --json` prints its notes here: pasted with the schedule, they are ignored.
    #[serde(default)]
    #[allow(dead_code)]
    warnings: Option<serde::de::IgnoredAny>,
}

#[derive(Deserialize)]
#[serde(untagged)]
enum RawMember {
    Email(String),
    Named { email: String, name: String },
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawShift {
    start: String,
    end: String,
    assignees: Vec<Option<String>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawRotation {
    unit: String,
    #[serde(default = "one")]
    length: u32,
    start: String,
    #[serde(default)]
    end: Option<String>,
    participants: Vec<Vec<Option<String>>>,
}

fn one() -> u32 {
    1
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawDestination {
    id: String,
    connection: String,
    schedule_id: String,
    role: String,
    #[serde(default)]
    mode: Option<String>,
}

impl Config {
    /// Reads and validates a configuration file.
    pub fn from_file(path: impl AsRef<Path>) -> Result<Config, ConfigError> {
        let path = path.as_ref();
        let text = std::fs::read_to_string(path).map_err(|e| ConfigError::Read {
            file: path.display().to_string(),
            message: e.to_string(),
        })?;
        Config::from_json(&text)
    }

    /// Validates a configuration given as JSON text.
    pub fn from_json(text: &str) -> Result<Config, ConfigError> {
        let raw: RawConfig = serde_json::from_str(text).map_err(|e| ConfigError::Syntax {
            message: e.to_string(),
        })?;
        let connections = validate_connections(&raw.connections)?;
        let shifts = validate_schedule(&raw.schedule)?;
        let roles = match &shifts {
            Shifts::Given(schedule) => schedule.roles().to_vec(),
            Shifts::Rotation(rotation) => rotation.roles.clone(),
        };
        let destinations = validate_destinations(&raw.destinations, &connections, &roles)?;
        Ok(Config {
            connections,
            shifts,
            horizon: raw
                .schedule
                .horizon_days
                .map(|days| TimeDelta::days(i64::from(days))),
            destinations,
            http_trace: TraceHook::default(),
        })
    }

    /// This config, with every provider it builds from now on ([`Config::provider`],
    /// [`Config::prober`], ...) recording each HTTP attempt to `trace` (`oncall --trace-http`).
    /// Adapters scrub their credentials before they record; the sink redacts e-mail addresses
    /// ([`oncall_core::trace::Redactor`], as [`crate::trace_file::JsonLinesTrace`] does).
    pub fn with_http_trace(mut self, trace: Arc<dyn HttpTrace>) -> Config {
        self.http_trace = TraceHook(Some(trace));
        self
    }

    /// The connections, in file order.
    pub fn connections(&self) -> &[ConnectionConfig] {
        &self.connections
    }

    /// One connection.
    pub fn connection(&self, id: &ConnectionId) -> Option<&ConnectionConfig> {
        self.connections.iter().find(|c| &c.id == id)
    }

    /// The destinations, in file order.
    pub fn destinations(&self) -> &[Destination] {
        &self.destinations
    }

    /// One destination.
    pub fn destination(&self, id: &DestinationId) -> Option<&Destination> {
        self.destinations.iter().find(|d| &d.id == id)
    }

    /// How far ahead to export (`horizon_days`); `None`: every shift.
    pub fn horizon(&self) -> Option<TimeDelta> {
        self.horizon
    }

    /// The host schedule's id.
    pub fn schedule_id(&self) -> &ScheduleId {
        match &self.shifts {
            Shifts::Given(schedule) => schedule.id(),
            Shifts::Rotation(rotation) => &rotation.id,
        }
    }

    /// The host schedule's zone.
    pub fn time_zone(&self) -> Tz {
        match &self.shifts {
            Shifts::Given(schedule) => schedule.zone(),
            Shifts::Rotation(rotation) => rotation.zone,
        }
    }

    /// The host schedule as of `now`: the shifts as given, or the rotation expanded from a turn
    /// before `now` to its end (or to a turn past `now` plus the horizon).
    pub fn schedule(&self, now: DateTime<Utc>) -> Result<Schedule, ConfigError> {
        match &self.shifts {
            Shifts::Given(schedule) => Ok(schedule.clone()),
            Shifts::Rotation(rotation) => rotation.expand(now, self.horizon),
        }
    }

    /// The connection registry the file describes: every connection (keys by environment
    /// variable), each used by the schedule's destinations that write through it.
    pub fn registry(&self) -> ConnectionRegistry {
        let mut registry = ConnectionRegistry::new();
        for c in &self.connections {
            // Ids are unique: validated on load.
            let _ = registry.add(Connection::new(
                c.id.clone(),
                c.provider,
                KeyReference::EnvVar(c.api_key_env.clone()),
                c.endpoint.clone(),
            ));
        }
        for d in &self.destinations {
            let usage = Usage::Destination {
                schedule: self.schedule_id().clone(),
                destination: d.id.clone(),
            };
            let _ = registry.record_use(&d.connection, usage);
        }
        registry
    }

    /// A connection's API key, read with `env` (e.g. [`process_env`]) from the variable the
    /// connection names. The key is never part of an error.
    pub fn api_key(
        &self,
        connection: &ConnectionId,
        env: &dyn Fn(&str) -> Option<String>,
    ) -> Result<ApiKey, ConfigError> {
        let (index, c) = self.find_connection(connection)?;
        let value = env(&c.api_key_env)
            .filter(|v| !v.is_empty())
            .ok_or_else(|| ConfigError::MissingKeyVariable {
                connection: c.id.clone(),
                variable: c.api_key_env.clone(),
            })?;
        ApiKey::new(value).map_err(|_| {
            invalid(
                format!("connections[{index}].api_key_env"),
                format!(
                    "the environment variable {} does not hold a usable API key (white space or \
                     control characters)",
                    c.api_key_env
                ),
            )
        })
    }

    /// The [`Provider`] of a connection, with its key (and, for JSM, its account e-mail) from
    /// `env`.
    #[allow(unreachable_code)] // a build without adapters has none to wrap
    pub fn provider(
        &self,
        connection: &ConnectionId,
        env: &dyn Fn(&str) -> Option<String>,
    ) -> Result<Arc<dyn Provider>, ConfigError> {
        self.provider_with_budget(connection, env, None)
    }

    /// [`provider`](Self::provider), sharing its request rate through `budget` (when given)
    /// under the connection's id as the budget's key: every process with the same config and
    /// budget (`PostgresStateStore::rate_budget` over one database, feature `postgres`) then
    /// sends at the connection's rate in all, and a 429 holds all of them back.
    #[allow(unreachable_code)] // a build without adapters has none to wrap
    pub fn provider_with_budget(
        &self,
        connection: &ConnectionId,
        env: &dyn Fn(&str) -> Option<String>,
        budget: Option<&Arc<dyn RateBudget>>,
    ) -> Result<Arc<dyn Provider>, ConfigError> {
        Ok(match self.adapter(connection, env, budget)? {
            #[cfg(feature = "opsgenie")]
            Adapter::Opsgenie(p) => Arc::new(p),
            #[cfg(feature = "pagerduty")]
            Adapter::Pagerduty(p) => Arc::new(p),
            #[cfg(feature = "jsm")]
            Adapter::Jsm(p) => Arc::new(p),
        })
    }

    /// A JSM connection's provider, its account e-mail and token from `env`.
    #[cfg(feature = "jsm")]
    pub fn jsm_provider(
        &self,
        connection: &ConnectionId,
        env: &dyn Fn(&str) -> Option<String>,
    ) -> Result<crate::jsm::JsmProvider, ConfigError> {
        let (index, _) = self.find_connection(connection)?;
        self.jsm_builder(connection, env)?
            .build()
            .map_err(|e| invalid(format!("connections[{index}]"), e))
    }

    /// A JSM connection's builder, its account e-mail and token from `env`.
    #[cfg(feature = "jsm")]
    fn jsm_builder(
        &self,
        connection: &ConnectionId,
        env: &dyn Fn(&str) -> Option<String>,
    ) -> Result<crate::jsm::JsmBuilder, ConfigError> {
        let key = self.api_key(connection, env)?;
        let (index, c) = self.find_connection(connection)?;
        let at = format!("connections[{index}]");
        let Some(jsm) = &c.jsm else {
            return Err(invalid(
                at,
                format!("connection {} is not a JSM connection", c.id),
            ));
        };
        let email = env(&jsm.email_env)
            .filter(|v| !v.trim().is_empty())
            .ok_or_else(|| {
                invalid(
                    format!("{at}.email_env"),
                    format!(
                        "the environment variable {} that should hold the account e-mail is not set",
                        jsm.email_env
                    ),
                )
            })?;
        let mut builder = crate::jsm::JsmProvider::builder()
            .with_email(email)
            .with_api_token(key.expose());
        if let Some(site) = &jsm.site {
            builder = builder.with_site(site);
        }
        if let Some(cloud_id) = &jsm.cloud_id {
            builder = builder.with_cloud_id(cloud_id);
        }
        if let Some(base) = &jsm.base_url {
            builder = builder.with_api_base_url(base);
        }
        if let Some(trace) = &self.http_trace.0 {
            builder = builder.with_trace(trace.clone());
        }
        Ok(builder)
    }

    /// What `oncall probe` runs on a connection: its provider's [`oncall_core::Probe`] (every
    /// adapter has one), with its key from `env` and this config's HTTP trace.
    #[allow(unreachable_code)] // a build without adapters has none to wrap
    pub fn prober(
        &self,
        connection: &ConnectionId,
        env: &dyn Fn(&str) -> Option<String>,
    ) -> Result<Arc<dyn oncall_core::Probe>, ConfigError> {
        Ok(match self.adapter(connection, env, None)? {
            #[cfg(feature = "opsgenie")]
            Adapter::Opsgenie(p) => Arc::new(p),
            #[cfg(feature = "pagerduty")]
            Adapter::Pagerduty(p) => Arc::new(p),
            #[cfg(feature = "jsm")]
            Adapter::Jsm(p) => Arc::new(p),
        })
    }

    /// The adapter of a connection, built with its key from `env`, this config's trace and, when
    /// given, a rate budget shared under the connection's id.
    fn adapter(
        &self,
        connection: &ConnectionId,
        env: &dyn Fn(&str) -> Option<String>,
        budget: Option<&Arc<dyn RateBudget>>,
    ) -> Result<Adapter, ConfigError> {
        let key = self.api_key(connection, env)?;
        let (index, c) = self.find_connection(connection)?;
        let trace = self.http_trace.0.as_ref();
        let built = match c.provider {
            #[cfg(feature = "opsgenie")]
            ProviderKind::Opsgenie => {
                let mut builder = crate::opsgenie::OpsgenieProvider::builder()
                    .with_api_key(key.expose())
                    .with_region(c.endpoint.region());
                if let Some(trace) = trace {
                    builder = builder.with_http_trace(trace.clone());
                }
                if let Some(budget) = budget {
                    builder = builder.with_rate_budget(budget.clone(), c.id.0.clone());
                }
                builder.build().map(Adapter::Opsgenie)
            }
            #[cfg(feature = "pagerduty")]
            ProviderKind::Pagerduty => {
                let mut builder = crate::pagerduty::PagerDutyProvider::builder()
                    .with_api_key(key.expose())
                    .with_region(c.endpoint.region());
                if let Some(trace) = trace {
                    builder = builder.with_http_trace(trace.clone());
                }
                if let Some(budget) = budget {
                    builder = builder.with_rate_budget(budget.clone(), c.id.0.clone());
                }
                builder.build().map(Adapter::Pagerduty)
            }
            #[cfg(feature = "jsm")]
            ProviderKind::Jsm => {
                let mut builder = self.jsm_builder(connection, env)?;
                if let Some(budget) = budget {
                    builder = builder.with_rate_budget(budget.clone(), c.id.0.clone());
                }
                builder.build().map(Adapter::Jsm)
            }
            #[allow(unreachable_patterns)] // with every adapter feature on
            other => {
                let _ = (key, trace, budget);
                Err(oncall_core::Error::Unsupported {
                    message: format!("this build has no {other} adapter (feature \"{other}\")"),
                })
            }
        };
        built.map_err(|e| invalid(format!("connections[{index}]"), e))
    }

    /// The providers of every connection the destinations use, each built once.
    pub fn destination_providers(
        &self,
        env: &dyn Fn(&str) -> Option<String>,
    ) -> Result<BTreeMap<ConnectionId, Arc<dyn Provider>>, ConfigError> {
        self.destination_providers_with_budget(env, None)
    }

    /// [`destination_providers`](Self::destination_providers), each sharing its rate through
    /// `budget` when given (see [`provider_with_budget`](Self::provider_with_budget)).
    pub fn destination_providers_with_budget(
        &self,
        env: &dyn Fn(&str) -> Option<String>,
        budget: Option<&Arc<dyn RateBudget>>,
    ) -> Result<BTreeMap<ConnectionId, Arc<dyn Provider>>, ConfigError> {
        let mut providers = BTreeMap::new();
        for d in &self.destinations {
            if !providers.contains_key(&d.connection) {
                let provider = self.provider_with_budget(&d.connection, env, budget)?;
                providers.insert(d.connection.clone(), provider);
            }
        }
        Ok(providers)
    }

    fn find_connection(
        &self,
        id: &ConnectionId,
    ) -> Result<(usize, &ConnectionConfig), ConfigError> {
        self.connections
            .iter()
            .enumerate()
            .find(|(_, c)| &c.id == id)
            .ok_or_else(|| ConfigError::UnknownConnection {
                at: "connections".into(),
                connection: id.0.clone(),
            })
    }
}

/// Reads a variable from this process's environment (the usual `env` for [`Config::provider`]).
pub fn process_env(name: &str) -> Option<String> {
    std::env::var(name).ok()
}

/// One connection's adapter, as this build has it.
enum Adapter {
    #[cfg(feature = "opsgenie")]
    Opsgenie(crate::opsgenie::OpsgenieProvider),
    #[cfg(feature = "pagerduty")]
    Pagerduty(crate::pagerduty::PagerDutyProvider),
    #[cfg(feature = "jsm")]
    Jsm(crate::jsm::JsmProvider),
}

fn validate_connections(raw: &[RawConnection]) -> Result<Vec<ConnectionConfig>, ConfigError> {
    let mut seen = HashSet::new();
    let mut connections = Vec::with_capacity(raw.len());
    for (i, c) in raw.iter().enumerate() {
        let at = |field: &str| format!("connections[{i}].{field}");
        if c.id.trim().is_empty() {
            return Err(invalid(at("id"), "empty"));
        }
        if !seen.insert(c.id.as_str()) {
            return Err(invalid(
                at("id"),
                format!("connection {:?} is declared twice", c.id),
            ));
        }
        let provider = match c.provider.as_str() {
            "opsgenie" => ProviderKind::Opsgenie,
            "pagerduty" => ProviderKind::Pagerduty,
            "jsm" => ProviderKind::Jsm,
            other => {
                return Err(invalid(
                    at("provider"),
                    format!("unknown provider {other:?}: opsgenie, pagerduty or jsm"),
                ))
            }
        };
        if provider == ProviderKind::Jsm {
            connections.push(validate_jsm_connection(i, c)?);
            continue;
        }
        for (field, given) in [
            ("site", &c.site),
            ("cloud_id", &c.cloud_id),
            ("email_env", &c.email_env),
            ("api_token_env", &c.api_token_env),
        ] {
            if given.is_some() {
                return Err(invalid(at(field), "only a jsm connection takes this"));
            }
        }
        let api_key_env = c.api_key_env.clone().unwrap_or_default();
        if !is_variable_name(&api_key_env) {
            return Err(invalid(
                at("api_key_env"),
                "the name of an environment variable, e.g. OG_KEY",
            ));
        }
        let endpoint = match (&c.base_url, c.region.as_deref()) {
            (Some(url), _) if url.starts_with("http://") || url.starts_with("https://") => {
                Endpoint::BaseUrl(url.clone())
            }
            (Some(url), _) => {
                return Err(invalid(
                    at("base_url"),
                    format!("{url:?} must start with http:// or https://"),
                ))
            }
            (None, None | Some("us")) => Endpoint::Us,
            (None, Some("eu")) => Endpoint::Eu,
            (None, Some(other)) => {
                return Err(invalid(
                    at("region"),
                    format!("unknown region {other:?}: us or eu"),
                ))
            }
        };
        connections.push(ConnectionConfig {
            id: ConnectionId(c.id.clone()),
            provider,
            api_key_env,
            endpoint,
            jsm: None,
        });
    }
    Ok(connections)
}

fn is_variable_name(name: &str) -> bool {
    !name.trim().is_empty() && !name.contains('=')
}

/// A JSM connection: the account e-mail's and token's variables, and the site or cloudId.
fn validate_jsm_connection(i: usize, c: &RawConnection) -> Result<ConnectionConfig, ConfigError> {
    let at = |field: &str| format!("connections[{i}].{field}");
    if c.api_key_env.is_some() {
        return Err(invalid(
            at("api_key_env"),
            "a jsm connection takes api_token_env (and email_env) instead",
        ));
    }
    if c.region.is_some() {
        return Err(invalid(
            at("region"),
            "a jsm connection takes a site or a cloud_id instead",
        ));
    }
    let variable = |field: &str, value: &Option<String>, example: &str| {
        value
            .clone()
            .filter(|v| is_variable_name(v))
            .ok_or_else(|| {
                invalid(
                    at(field),
                    format!("the name of an environment variable, e.g. {example}"),
                )
            })
    };
    let api_token_env = variable("api_token_env", &c.api_token_env, "JSM_TOKEN")?;
    let email_env = variable("email_env", &c.email_env, "JSM_EMAIL")?;
    let url = |field: &str, value: &str| -> Result<String, ConfigError> {
        let url = if value.starts_with("http://") || value.starts_with("https://") {
            value.trim_end_matches('/').to_owned()
        } else if !value.trim().is_empty() && !value.contains(['/', ' ', ':']) {
            format!("https://{value}")
        } else {
            return Err(invalid(
                at(field),
                format!("{value:?}: a host (acme.atlassian.net) or an http(s) URL"),
            ));
        };
        Ok(url)
    };
    let site = c.site.as_deref().map(|s| url("site", s)).transpose()?;
    let base_url = match c.base_url.as_deref() {
        Some(b) if b.starts_with("http://") || b.starts_with("https://") => {
            Some(b.trim_end_matches('/').to_owned())
        }
        Some(b) => {
            return Err(invalid(
                at("base_url"),
                format!("{b:?} must start with http:// or https://"),
            ))
        }
        None => None,
    };
    let cloud_id = c.cloud_id.clone().filter(|id| !id.trim().is_empty());
    // One site is one account (whatever e-mail logs in): its URL, or the API's root with the cloudId.
    let endpoint = match (&site, &cloud_id) {
        (Some(site), _) => Endpoint::BaseUrl(site.clone()),
        (None, Some(id)) => Endpoint::BaseUrl(format!(
            "{}/jsm/ops/api/{id}",
            base_url.as_deref().unwrap_or("https://api.atlassian.com")
        )),
        (None, None) => {
            return Err(invalid(
                at("site"),
                "a jsm connection needs its site (acme.atlassian.net) or its cloud_id",
            ))
        }
    };
    Ok(ConnectionConfig {
        id: ConnectionId(c.id.clone()),
        provider: ProviderKind::Jsm,
        api_key_env: api_token_env,
        endpoint,
        jsm: Some(JsmConnectionConfig {
            email_env,
            site: c.site.clone(),
            cloud_id,
            base_url,
        }),
    })
}

fn validate_schedule(raw: &RawSchedule) -> Result<Shifts, ConfigError> {
    if raw.id.trim().is_empty() {
        return Err(invalid("schedule.id", "empty"));
    }
    let zone: Tz = raw.time_zone.parse().map_err(|_| {
        invalid(
            "schedule.time_zone",
            format!("unknown IANA time zone {:?}", raw.time_zone),
        )
    })?;
    if raw.horizon_days == Some(0) {
        return Err(invalid("schedule.horizon_days", "must be at least 1"));
    }
    if raw.horizon_days.is_some_and(|d| d > MAX_HORIZON_DAYS) {
        return Err(invalid(
            "schedule.horizon_days",
            format!("must be at most {MAX_HORIZON_DAYS} (ten years)"),
        ));
    }
    let id = ScheduleId(raw.id.clone());
    match (&raw.shifts, &raw.rotation) {
        (Some(shifts), None) => {
            let members = raw
                .members
                .as_deref()
                .map(|m| parse_members(m, "schedule.members"))
                .transpose()?;
            let shifts = parse_shifts(shifts, raw.roles.len())?;
            let members = members.unwrap_or_else(|| members_of(&shifts));
            Schedule::new(id, zone, raw.roles.clone(), members, shifts)
                .map(Shifts::Given)
                .map_err(schedule_error)
        }
        (None, Some(rotation)) => parse_rotation(rotation, raw, id, zone).map(Shifts::Rotation),
        (Some(_), Some(_)) => Err(invalid(
            "schedule",
            "give either shifts or a rotation, not both",
        )),
        (None, None) => Err(invalid("schedule", "give shifts or a rotation")),
    }
}

fn parse_email(value: &str, at: &str) -> Result<Email, ConfigError> {
    Email::parse(value).map_err(|e| invalid(at, e))
}

fn parse_members(raw: &[RawMember], at: &str) -> Result<Vec<Member>, ConfigError> {
    raw.iter()
        .enumerate()
        .map(|(i, m)| {
            let at = format!("{at}[{i}]");
            Ok(match m {
                RawMember::Email(email) => {
                    let email = parse_email(email, &at)?;
                    Member::new(email.clone(), email.as_str())
                }
                RawMember::Named { email, name } => Member::new(parse_email(email, &at)?, name),
            })
        })
        .collect()
}

/// The people named, in order of first appearance.
fn members_of(shifts: &[Shift]) -> Vec<Member> {
    let mut seen = HashSet::new();
    shifts
        .iter()
        .flat_map(|s| s.assignees.iter().flatten())
        .filter(|e| seen.insert((*e).clone()))
        .map(|e| Member::new(e.clone(), e.as_str()))
        .collect()
}

fn parse_instant(value: &str, at: &str) -> Result<DateTime<Utc>, ConfigError> {
    let bad = |reason: String| ConfigError::InvalidInstant {
        at: at.to_owned(),
        value: value.to_owned(),
        reason,
    };
    let instant = DateTime::parse_from_rfc3339(value)
        .map_err(|e| bad(format!("not an RFC 3339 instant ({e})")))?
        .with_timezone(&Utc);
    if instant.timestamp_subsec_nanos() != 0 {
        return Err(bad(
            "a fraction of a second: instants must be whole seconds".into(),
        ));
    }
    Ok(instant)
}

fn parse_shifts(raw: &[RawShift], roles: usize) -> Result<Vec<Shift>, ConfigError> {
    raw.iter()
        .enumerate()
        .map(|(i, s)| {
            let at = |field: &str| format!("schedule.shifts[{i}].{field}");
            let start = parse_instant(&s.start, &at("start"))?;
            let end = parse_instant(&s.end, &at("end"))?;
            if s.assignees.len() != roles {
                return Err(invalid(
                    at("assignees"),
                    format!(
                        "{} entries, but the schedule has {roles} roles: one email or null per role",
                        s.assignees.len()
                    ),
                ));
            }
            let assignees = s
                .assignees
                .iter()
                .enumerate()
                .map(|(r, a)| {
                    a.as_deref()
                        .map(|e| parse_email(e, &at(&format!("assignees[{r}]"))))
                        .transpose()
                })
                .collect::<Result<_, _>>()?;
            Ok(Shift::new(start, end, assignees))
        })
        .collect()
}

/// The core's validation of a schedule, placed in the file.
fn schedule_error(e: ValidationError) -> ConfigError {
    let shift = |index: usize| format!("schedule.shifts[{index}]");
    match e {
        ValidationError::OverlappingShifts {
            index,
            start,
            previous_end,
        } => ConfigError::OverlappingShifts {
            at: shift(index),
            start,
            previous_end,
        },
        ValidationError::UnsortedShifts { index, .. } => invalid(shift(index), format!("{e}")),
        ValidationError::EmptyShift { index, .. }
        | ValidationError::AssigneeCount { index, .. } => invalid(shift(index), e),
        ValidationError::UnknownAssignee { index, role, .. } => invalid(
            format!("schedule.shifts[{index}].assignees[{role}]"),
            format!("{e}: add them to schedule.members"),
        ),
        ValidationError::NoRoles | ValidationError::EmptyRoleName { .. } => {
            invalid("schedule.roles", e)
        }
        ValidationError::DuplicateMember { .. } => invalid("schedule.members", e),
        other => invalid("schedule", other),
    }
}

fn parse_local(value: &str, at: &str) -> Result<NaiveDateTime, ConfigError> {
    ["%Y-%m-%dT%H:%M:%S", "%Y-%m-%dT%H:%M"]
        .iter()
        .find_map(|f| NaiveDateTime::parse_from_str(value, f).ok())
        .ok_or_else(|| ConfigError::InvalidInstant {
            at: at.to_owned(),
            value: value.to_owned(),
            reason: "expected a local wall time without offset, e.g. 2026-12-07T09:00:00, in \
                     the schedule's time_zone"
                .into(),
        })
}

fn parse_rotation(
    raw: &RawRotation,
    schedule: &RawSchedule,
    id: ScheduleId,
    zone: Tz,
) -> Result<RotationConfig, ConfigError> {
    let unit = match raw.unit.as_str() {
        "hourly" => RotationUnit::Hourly,
        "daily" => RotationUnit::Daily,
        "weekly" => RotationUnit::Weekly,
        other => {
            return Err(invalid(
                "schedule.rotation.unit",
                format!("unknown unit {other:?}: hourly, daily or weekly"),
            ))
        }
    };
    let longest = match unit {
        RotationUnit::Hourly => 24 * 366,
        RotationUnit::Daily => 366,
        RotationUnit::Weekly => 53,
    };
    if raw.length == 0 || raw.length > longest {
        return Err(invalid(
            "schedule.rotation.length",
            format!(
                "must be 1 to {longest} ({} a turn of up to a year)",
                raw.unit
            ),
        ));
    }
    let start = parse_local(&raw.start, "schedule.rotation.start")?;
    let end = raw
        .end
        .as_deref()
        .map(|e| parse_local(e, "schedule.rotation.end"))
        .transpose()?;
    if end.is_none() && schedule.horizon_days.is_none() {
        return Err(invalid(
            "schedule.rotation",
            "a rotation without an end needs schedule.horizon_days",
        ));
    }
    if raw.participants.len() != schedule.roles.len() {
        return Err(invalid(
            "schedule.rotation.participants",
            format!(
                "{} lists, but the schedule has {} roles: one list of participants per role",
                raw.participants.len(),
                schedule.roles.len()
            ),
        ));
    }
    let mut rotations = Vec::with_capacity(raw.participants.len());
    let mut named = Vec::new();
    for (r, list) in raw.participants.iter().enumerate() {
        let at = format!("schedule.rotation.participants[{r}]");
        let participants = list
            .iter()
            .enumerate()
            .map(|(i, p)| match p {
                Some(email) => {
                    let email = parse_email(email, &format!("{at}[{i}]"))?;
                    named.push(email.clone());
                    Ok(Participant::Member(email))
                }
                None => Ok(Participant::Nobody),
            })
            .collect::<Result<Vec<_>, ConfigError>>()?;
        let name = schedule.roles.get(r).cloned().unwrap_or_default();
        let mut rotation = Rotation::new(name, unit, raw.length, start, participants);
        rotation.end = end;
        rotation.validate().map_err(|e| invalid(&at, e))?;
        rotations.push(rotation);
    }
    let members = match schedule.members.as_deref() {
        Some(m) => parse_members(m, "schedule.members")?,
        None => {
            let mut seen = HashSet::new();
            named
                .into_iter()
                .filter(|e| seen.insert(e.clone()))
                .map(|e| Member::new(e.clone(), e.as_str()))
                .collect()
        }
    };
    let rotation = RotationConfig {
        id,
        zone,
        roles: schedule.roles.clone(),
        members,
        rotations,
        start: resolve_local(zone, start),
        end: end.map(|e| resolve_local(zone, e)),
    };
    // Expanding once now catches what only an expansion finds (members, role names).
    let probe_end = rotation.start + rotation.turn() + TimeDelta::days(1);
    rotation.expand_window(
        rotation.start,
        rotation.end.map_or(probe_end, |e| e.min(probe_end)),
    )?;
    Ok(rotation)
}

/// The longest horizon a config may ask for: longer would reach past the years chrono computes
/// with on an open-ended rotation.
const MAX_HORIZON_DAYS: u32 = 3_660;

impl RotationConfig {
    /// The longest a turn can last (a week of 25-hour days, for weekly turns across DST).
    fn turn(&self) -> TimeDelta {
        let hours = self.rotations.first().map_or(1, |r| {
            let unit = match r.unit {
                RotationUnit::Hourly => 1,
                RotationUnit::Daily => 25,
                RotationUnit::Weekly => 7 * 25,
            };
            unit * i64::from(r.length)
        });
        TimeDelta::hours(hours)
    }

    fn expand(
        &self,
        now: DateTime<Utc>,
        horizon: Option<TimeDelta>,
    ) -> Result<Schedule, ConfigError> {
        // From a turn before now (the shift in progress) to the end, or a turn and a day past
        // now + horizon, so that the last shift starting within the horizon is whole.
        let from = self.start.max(now - self.turn() - TimeDelta::days(1));
        let until = match (self.end, horizon) {
            (Some(end), _) => end,
            (None, Some(h)) => now + h + self.turn() + TimeDelta::days(1),
            (None, None) => now + self.turn(),
        };
        self.expand_window(from, until.max(from + TimeDelta::seconds(1)))
    }

    fn expand_window(
        &self,
        from: DateTime<Utc>,
        until: DateTime<Utc>,
    ) -> Result<Schedule, ConfigError> {
        let window = Window::new(from, until).map_err(|e| invalid("schedule.rotation", e))?;
        let periods = self
            .rotations
            .iter()
            .map(|r| expand_rotation(r, self.zone, window))
            .collect::<Result<Vec<_>, _>>()
            .map_err(|e| invalid("schedule.rotation", e))?;
        let shifts = merge_rotations(&periods);
        Schedule::new(
            self.id.clone(),
            self.zone,
            self.roles.clone(),
            self.members.clone(),
            shifts,
        )
        .map_err(|e| match e {
            ValidationError::UnknownAssignee { email, .. } => invalid(
                "schedule.rotation.participants",
                format!("{email} is not in schedule.members"),
            ),
            other => invalid("schedule.rotation", other),
        })
    }
}

fn validate_destinations(
    raw: &[RawDestination],
    connections: &[ConnectionConfig],
    roles: &[String],
) -> Result<Vec<Destination>, ConfigError> {
    let mut ids = HashSet::new();
    // One account is one vendor and one endpoint: two connection ids that share both (with one key
    // or two) reach the same vendor schedules.
    let account = |connection: &str| {
        connections
            .iter()
            .find(|c| c.id.0 == connection)
            // Two keys to one account (vendor and endpoint) are one account: destinations on the
            // same vendor schedule through each would delete each other's overrides.
            .map(|c| (c.provider, c.endpoint.clone()))
    };
    let mut targets: HashMap<_, (DestinationId, String)> = HashMap::new();
    let mut destinations = Vec::with_capacity(raw.len());
    for (i, d) in raw.iter().enumerate() {
        let at = |field: &str| format!("destinations[{i}].{field}");
        if d.id.trim().is_empty() {
            return Err(invalid(at("id"), "empty"));
        }
        if !ids.insert(d.id.as_str()) {
            return Err(invalid(
                at("id"),
                format!("destination {:?} is declared twice", d.id),
            ));
        }
        if !connections.iter().any(|c| c.id.0 == d.connection) {
            return Err(ConfigError::UnknownConnection {
                at: at("connection"),
                connection: d.connection.clone(),
            });
        }
        if d.schedule_id.trim().is_empty() {
            return Err(invalid(
                at("schedule_id"),
                "empty: the vendor schedule's id",
            ));
        }
        let role =
            roles
                .iter()
                .position(|r| *r == d.role)
                .ok_or_else(|| ConfigError::UnknownRole {
                    at: at("role"),
                    role: d.role.clone(),
                    roles: roles.to_vec(),
                })?;
        let mode = match d.mode.as_deref() {
            None => DestinationMode::Protect,
            Some(mode) => mode.parse().map_err(|e| invalid(at("mode"), e))?,
        };
        let id = DestinationId(d.id.clone());
        let key = (account(&d.connection), d.schedule_id.clone());
        if let Some((first, _)) = targets.insert(key, (id.clone(), d.connection.clone())) {
            return Err(ConfigError::SharedVendorSchedule {
                first,
                second: id,
                connection: ConnectionId(d.connection.clone()),
                schedule: VendorScheduleId(d.schedule_id.clone()),
            });
        }
        destinations.push(Destination {
            id,
            connection: ConnectionId(d.connection.clone()),
            schedule: VendorScheduleId(d.schedule_id.clone()),
            role: RoleIndex(role),
            mode,
        });
    }
    Ok(destinations)
}

#[cfg(test)]
mod tests {
    use chrono::{TimeZone, Timelike};

    use super::*;

    const EXAMPLE: &str = r#"{"connections": [
   {"id": "og", "provider": "opsgenie", "api_key_env": "OG_KEY", "base_url": "http://127.0.0.1:18080"},
   {"id": "pd", "provider": "pagerduty", "api_key_env": "PD_KEY", "region": "eu"}],
 "schedule": {"id": "platform", "time_zone": "Europe/Berlin", "roles": ["primary", "secondary"],
   "shifts": [{"start": "2026-12-01T09:00:00+01:00", "end": "2026-12-02T09:00:00+01:00",
               "assignees": ["alice@example.com", null]},
              {"start": "2026-12-02T09:00:00+01:00", "end": "2026-12-03T09:00:00+01:00",
               "assignees": ["bob@example.com", "Alice@Example.com"]}]},
 "destinations": [
   {"id": "og-primary", "connection": "og", "schedule_id": "og-sched", "role": "primary"},
   {"id": "pd-secondary", "connection": "pd", "schedule_id": "PSCHED", "role": "secondary"}]}"#;

    const KEY: &str = "s3cret-key-never-shown";

    fn env(name: &str) -> Option<String> {
        matches!(name, "OG_KEY" | "PD_KEY").then(|| KEY.to_owned())
    }

    fn now() -> DateTime<Utc> {
        Utc.with_ymd_and_hms(2026, 11, 30, 12, 0, 0).unwrap()
    }

    /// The example with one JSON fragment replaced by another.
    fn edited(from: &str, to: &str) -> Result<Config, ConfigError> {
        assert!(EXAMPLE.contains(from), "{from}");
        Config::from_json(&EXAMPLE.replacen(from, to, 1))
    }

    #[test]
    fn the_issue_example_builds_schedule_destinations_registry_and_providers() {
        let config = Config::from_json(EXAMPLE).unwrap();
        let schedule = config.schedule(now()).unwrap();
        assert_eq!(schedule.id().0, "platform");
        assert_eq!(schedule.zone(), chrono_tz::Europe::Berlin);
        assert_eq!(schedule.shifts().len(), 2);
        assert_eq!(
            schedule.shifts()[0].start,
            Utc.with_ymd_and_hms(2026, 12, 1, 8, 0, 0).unwrap()
        );
        let emails: Vec<&str> = schedule
            .members()
            .iter()
            .map(|m| m.email.as_str())
            .collect();
        assert_eq!(
            emails,
            ["alice@example.com", "bob@example.com"],
            "named by the shifts, once"
        );
        assert_eq!(config.horizon(), None);
        let roles: Vec<RoleIndex> = config.destinations().iter().map(|d| d.role).collect();
        assert_eq!(roles, [RoleIndex(0), RoleIndex(1)]);
        assert_eq!(
            config.connections()[0].endpoint,
            Endpoint::BaseUrl("http://127.0.0.1:18080".into())
        );
        assert_eq!(config.connections()[1].endpoint, Endpoint::Eu);

        let providers = config.destination_providers(&env).unwrap();
        assert_eq!(providers.len(), 2);
        assert_eq!(providers[&ConnectionId("og".into())].name(), "opsgenie");
        assert_eq!(providers[&ConnectionId("pd".into())].name(), "pagerduty");
        assert!(!format!("{config:?}").contains(KEY));

        let mut registry = config.registry();
        assert_eq!(registry.list().len(), 2);
        let refused = registry.destroy(&ConnectionId("og".into())).unwrap_err();
        assert!(
            refused
                .to_string()
                .contains("schedule platform (destination og-primary)"),
            "{refused}"
        );
    }

    #[track_caller]
    fn check_error(result: Result<Config, ConfigError>, expect: &[&str]) -> ConfigError {
        let e = result.expect_err("the config is refused");
        let message = e.to_string();
        for needle in expect {
            assert!(message.contains(needle), "{needle:?} in {message:?}");
        }
        e
    }

    #[test]
    fn each_error_names_the_problem_and_where() {
        let e = check_error(
            edited("2026-12-01T09:00:00+01:00", "2026-12-01 9am"),
            &["schedule.shifts[0].start", "2026-12-01 9am", "RFC 3339"],
        );
        assert!(matches!(e, ConfigError::InvalidInstant { .. }));
        check_error(
            edited(
                r#""end": "2026-12-02T09:00:00+01:00""#,
                r#""end": "2026-12-02T09:00:00.5+01:00""#,
            ),
            &["schedule.shifts[0].end", "whole seconds"],
        );
        let e = check_error(
            edited(r#""role": "secondary""#, r#""role": "tertiary""#),
            &["destinations[1].role", "tertiary", "primary"],
        );
        assert!(matches!(e, ConfigError::UnknownRole { .. }));
        let e = check_error(
            edited(r#""connection": "pd""#, r#""connection": "px""#),
            &["destinations[1].connection", "px"],
        );
        assert!(matches!(e, ConfigError::UnknownConnection { .. }));
        let e = check_error(
            edited(
                r#""start": "2026-12-02T09:00:00+01:00""#,
                r#""start": "2026-12-02T08:00:00+01:00""#,
            ),
            &["schedule.shifts[1]", "overlap"],
        );
        assert!(matches!(e, ConfigError::OverlappingShifts { .. }));
        let e = check_error(
            edited(
                r#""connection": "pd", "schedule_id": "PSCHED""#,
                r#""connection": "og", "schedule_id": "og-sched""#,
            ),
            &["og-primary", "pd-secondary", "og-sched", "connection og"],
        );
        assert!(matches!(e, ConfigError::SharedVendorSchedule { .. }));
        // The same vendor schedule id on two connections is two schedules.
        assert!(edited(r#""schedule_id": "PSCHED""#, r#""schedule_id": "og-sched""#).is_ok());
        // ... unless the two connections are one account (vendor and endpoint, whatever the key).
        let twin = edited(
            r#"{"id": "pd", "provider": "pagerduty", "api_key_env": "PD_KEY", "region": "eu"}"#,
            r#"{"id": "pd", "provider": "pagerduty", "api_key_env": "PD_KEY", "region": "eu"},
               {"id": "pd-again", "provider": "pagerduty", "api_key_env": "PD_KEY", "region": "eu"}"#,
        );
        assert!(twin.is_ok());
        let text = EXAMPLE
            .replace(
                r#"{"id": "pd", "provider": "pagerduty", "api_key_env": "PD_KEY", "region": "eu"}"#,
                r#"{"id": "pd", "provider": "pagerduty", "api_key_env": "PD_KEY", "region": "eu"},
                   {"id": "pd-again", "provider": "pagerduty", "api_key_env": "PD_KEY", "region": "eu"}"#,
            )
            .replace(r#""connection": "og", "schedule_id""#, r#""connection": "pd-again", "schedule_id""#)
            .replace(r#""schedule_id": "og-sched""#, r#""schedule_id": "PSCHED""#);
        check_error(
            Config::from_json(&text),
            &["og-primary", "pd-secondary", "PSCHED"],
        );
        // Two keys to one account are still one account.
        check_error(
            Config::from_json(&text.replace(
                r#""id": "pd-again", "provider": "pagerduty", "api_key_env": "PD_KEY""#,
                r#""id": "pd-again", "provider": "pagerduty", "api_key_env": "PD_KEY_2""#,
            )),
            &["og-primary", "pd-secondary", "PSCHED"],
        );
        check_error(
            edited(r#""id": "og", "#, r#""id": "og", "colour": 1, "#),
            &["unknown field `colour`", "line 2"],
        );
        check_error(
            edited(r#""region": "eu""#, r#""region": "mars""#),
            &["connections[1].region", "mars"],
        );
        check_error(
            edited("http://127.0.0.1:18080", "ftp://x"),
            &["connections[0].base_url"],
        );
        check_error(
            edited("Europe/Berlin", "Europe/Atlantis"),
            &["schedule.time_zone", "Atlantis"],
        );
        check_error(
            edited(r#""alice@example.com""#, r#""alice""#),
            &["schedule.shifts[0].assignees[0]", "alice"],
        );
        check_error(
            edited(r#", null]"#, "]"),
            &["schedule.shifts[0].assignees", "2 roles"],
        );
        check_error(
            edited(
                r#""roles": ["primary", "secondary"],"#,
                r#""roles": ["primary", "secondary"], "members": ["bob@example.com"],"#,
            ),
            &[
                "schedule.shifts[0].assignees[0]",
                "alice@example.com",
                "schedule.members",
            ],
        );
        check_error(
            edited(r#""id": "pd-secondary""#, r#""id": "og-primary""#),
            &["destinations[1].id", "twice"],
        );
        check_error(
            edited(
                r#""role": "secondary"}"#,
                r#""role": "secondary", "mode": "strict"}"#,
            ),
            &[
                "destinations[1].mode",
                "strict",
                "protect, authoritative or manual",
            ],
        );
    }

    #[test]
    fn a_destination_mode_is_protect_unless_given() {
        let config = edited(
            r#""role": "secondary"}"#,
            r#""role": "secondary", "mode": "manual"}"#,
        )
        .unwrap();
        let modes: Vec<DestinationMode> = config.destinations().iter().map(|d| d.mode).collect();
        assert_eq!(modes, [DestinationMode::Protect, DestinationMode::Manual]);
    }

    #[test]
    fn keys_come_from_the_named_variable_and_never_show() {
        let config = Config::from_json(EXAMPLE).unwrap();
        let none = |_: &str| None;
        let e = config.destination_providers(&none).err().expect("refused");
        assert_eq!(
            e,
            ConfigError::MissingKeyVariable {
                connection: ConnectionId("og".into()),
                variable: "OG_KEY".into()
            }
        );
        assert!(e.to_string().contains("OG_KEY"));
        let spaced = |_: &str| Some(format!("{KEY} x"));
        let e = config
            .provider(&ConnectionId("pd".into()), &spaced)
            .err()
            .expect("refused");
        assert!(
            e.to_string().contains("PD_KEY") && !e.to_string().contains(KEY),
            "{e}"
        );
        let key = config.api_key(&ConnectionId("pd".into()), &env).unwrap();
        assert_eq!(key.expose(), KEY);
        assert!(!format!("{key:?}").contains(KEY));
    }

    #[test]
    fn a_rotation_expands_by_role_in_wall_time_across_dst() {
        let text = r#"{"connections": [{"id": "og", "provider": "opsgenie", "api_key_env": "OG_KEY"}],
          "schedule": {"id": "platform", "time_zone": "Europe/Berlin", "roles": ["primary", "secondary"],
            "horizon_days": 14,
            "rotation": {"unit": "weekly", "start": "2026-03-16T09:00:00",
              "participants": [["alice@example.com", "bob@example.com"], ["bob@example.com", null]]}},
          "destinations": [{"id": "og-primary", "connection": "og", "schedule_id": "s", "role": "primary"}]}"#;
        let config = Config::from_json(text).unwrap();
        // Berlin springs forward on 2026-03-29.
        let now = Utc.with_ymd_and_hms(2026, 3, 20, 12, 0, 0).unwrap();
        let schedule = config.schedule(now).unwrap();
        let zone = chrono_tz::Europe::Berlin;
        let starts: Vec<(String, Vec<Option<&str>>)> = schedule
            .shifts()
            .iter()
            .map(|s| {
                (
                    s.start
                        .with_timezone(&zone)
                        .format("%m-%d %H:%M")
                        .to_string(),
                    s.assignees
                        .iter()
                        .map(|a| a.as_ref().map(Email::as_str))
                        .collect(),
                )
            })
            .collect();
        let (alice, bob) = (Some("alice@example.com"), Some("bob@example.com"));
        assert_eq!(
            starts,
            [
                ("03-16 09:00".to_owned(), vec![alice, bob]),
                ("03-23 09:00".to_owned(), vec![bob, None]),
                ("03-30 09:00".to_owned(), vec![alice, bob]),
                ("04-06 09:00".to_owned(), vec![bob, None]),
            ]
        );
        // The last shift that starts within the horizon (before 04-03 12:00 UTC) is whole.
        let last_in_horizon = &schedule.shifts()[2];
        assert_eq!(
            last_in_horizon
                .end
                .with_timezone(&zone)
                .format("%m-%d %H:%M")
                .to_string(),
            "04-06 09:00"
        );
        // The week across the change lasts 167 hours; every handoff is at 09:00 local.
        assert_eq!(
            schedule.shifts()[1].end - schedule.shifts()[1].start,
            TimeDelta::hours(167)
        );
        assert!(schedule
            .shifts()
            .iter()
            .all(|s| s.start.with_timezone(&zone).hour() == 9));

        let without_horizon = text.replace(r#""horizon_days": 14,"#, "");
        check_error(
            Config::from_json(&without_horizon),
            &["schedule.rotation", "horizon_days"],
        );
        let offset = text.replace("2026-03-16T09:00:00", "2026-03-16T09:00:00+01:00");
        check_error(
            Config::from_json(&offset),
            &["schedule.rotation.start", "without offset"],
        );
        let one_list = text.replace(r#", ["bob@example.com", null]"#, "");
        check_error(
            Config::from_json(&one_list),
            &["schedule.rotation.participants", "2 roles"],
        );
        // Out-of-range lengths and horizons are config errors, not a panic in date arithmetic.
        let endless = text.replace(
            r#""unit": "weekly","#,
            r#""unit": "weekly", "length": 4000000000,"#,
        );
        check_error(
            Config::from_json(&endless),
            &["schedule.rotation.length", "1 to 53"],
        );
        let far = text.replace(r#""horizon_days": 14"#, r#""horizon_days": 4000000000"#);
        check_error(
            Config::from_json(&far),
            &["schedule.horizon_days", "at most"],
        );
    }
}
