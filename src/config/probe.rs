//! `oncall probe`: one connection of the config probed (DESIGN §7), as named steps: find the
//! connection, refuse a scratch schedule a destination exports to, build the adapter, check that
//! the schedules named exist, probe, and turn a refused write into [`ProbeError::ReadOnlyKey`].
//!
//! What is probed, point by point, is the adapter's [`oncall_core::Probe`]: each finding names
//! the point as the simulator dialect's switch and the reading as its setting.

use oncall_core::probe::{ProbeReport, ProbeRequest};
use oncall_core::{ConnectionId, DestinationId, ProviderKind, VendorScheduleId};

use super::{Config, ConfigError};

/// Why `oncall probe` stopped, or refused to start.
#[non_exhaustive]
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum ProbeError {
    /// The connection is not in the config (nothing was sent).
    #[error("--connection {connection}: no such connection in the config")]
    UnknownConnection {
        /// The id given.
        connection: ConnectionId,
    },
    /// The connection's adapter could not be built: a key variable unset, a bad URL (nothing was
    /// sent).
    #[error("config: {0}")]
    Config(#[from] ConfigError),
    /// The scratch schedule is one a destination of the config exports to: the probe's writes
    /// (an override running now among them) would change who is on call there (nothing was
    /// sent).
    #[error(
        "--write-to {schedule}: destination {destination} exports to this schedule; the probe \
         writes overrides there (one runs now), so name a scratch schedule nobody is paged from"
    )]
    NotScratch {
        /// The schedule named.
        schedule: VendorScheduleId,
        /// The destination exporting to it.
        destination: DestinationId,
    },
    /// A schedule named (`--schedule` or `--write-to`) is not one the key can read (nothing was
    /// written).
    #[error("connection {connection}: {flag} {schedule}: no such schedule for this key")]
    UnknownSchedule {
        /// The connection.
        connection: ConnectionId,
        /// `--schedule` or `--write-to`.
        flag: &'static str,
        /// The schedule named.
        schedule: VendorScheduleId,
    },
    /// `--write-to` with a key that may not write there: the vendor refused the first write
    /// (403). The read points were probed: `report` holds them.
    #[error(
        "connection {connection}: the key may not write to schedule {schedule} (the vendor \
         refused the probe's first write with 403): --write-to needs a key with write access; \
         without --write-to the probe only reads"
    )]
    ReadOnlyKey {
        /// The connection.
        connection: ConnectionId,
        /// The scratch schedule.
        schedule: VendorScheduleId,
        /// What the probe found before and besides the refused write.
        report: Box<ProbeReport>,
    },
    /// The probe could not run at all: the key was refused, the vendor could not be reached.
    #[error("connection {connection}: {error}")]
    Vendor {
        /// The connection.
        connection: ConnectionId,
        /// What failed, keys scrubbed by the adapter.
        error: oncall_core::Error,
    },
}

impl ProbeError {
    /// Whether the probe was refused before anything was sent (bad usage or config: the CLI's
    /// exit 2); otherwise a vendor answered (exit 1).
    pub fn nothing_sent(&self) -> bool {
        matches!(
            self,
            ProbeError::UnknownConnection { .. }
                | ProbeError::Config(_)
                | ProbeError::NotScratch { .. }
        )
    }

    /// What the probe found where it ran before it stopped ([`ProbeError::ReadOnlyKey`]).
    pub fn report(&self) -> Option<&ProbeReport> {
        match self {
            ProbeError::ReadOnlyKey { report, .. } => Some(report),
            _ => None,
        }
    }

    /// A short stable name for the JSON output (`unknown_connection`, `read_only_key`, ...).
    pub fn kind(&self) -> &'static str {
        match self {
            ProbeError::UnknownConnection { .. } => "unknown_connection",
            ProbeError::Config(_) => "config",
            ProbeError::NotScratch { .. } => "not_scratch",
            ProbeError::UnknownSchedule { .. } => "unknown_schedule",
            ProbeError::ReadOnlyKey { .. } => "read_only_key",
            ProbeError::Vendor { .. } => "vendor",
        }
    }
}

impl Config {
    /// Probes one connection's account (`oncall probe`), its key from `env`: reads only, unless
    /// `request.write_to` names a scratch schedule, which must not be one a destination of this
    /// config exports to. Every provider it builds records to this config's HTTP trace
    /// ([`Config::with_http_trace`]).
    pub async fn probe(
        &self,
        connection: &ConnectionId,
        request: &ProbeRequest,
        env: &dyn Fn(&str) -> Option<String>,
    ) -> Result<(ProviderKind, ProbeReport), ProbeError> {
        let kind = self.probed_connection(connection)?;
        self.refuse_live_scratch(connection, request)?;
        let prober = self.prober(connection, env)?;
        self.check_named_schedules(connection, request, env).await?;
        let report = prober
            .probe(request)
            .await
            .map_err(|error| ProbeError::Vendor {
                connection: connection.clone(),
                error,
            })?;
        refuse_read_only(connection, request, report).map(|r| (kind, r))
    }

    /// Step 1: the connection, by id.
    fn probed_connection(&self, connection: &ConnectionId) -> Result<ProviderKind, ProbeError> {
        self.connection(connection)
            .map(|c| c.provider)
            .ok_or_else(|| ProbeError::UnknownConnection {
                connection: connection.clone(),
            })
    }

    /// Step 2: a scratch schedule is nobody's rota: not one a destination exports to through
    /// this connection.
    fn refuse_live_scratch(
        &self,
        connection: &ConnectionId,
        request: &ProbeRequest,
    ) -> Result<(), ProbeError> {
        let Some(scratch) = &request.write_to else {
            return Ok(());
        };
        match self
            .destinations()
            .iter()
            .find(|d| &d.connection == connection && &d.schedule == scratch)
        {
            Some(d) => Err(ProbeError::NotScratch {
                schedule: scratch.clone(),
                destination: d.id.clone(),
            }),
            None => Ok(()),
        }
    }

    /// Step 4: each schedule named is one the key reads (a read of it): a probe never writes
    /// to, nor reports on, a schedule that is not there.
    async fn check_named_schedules(
        &self,
        connection: &ConnectionId,
        request: &ProbeRequest,
        env: &dyn Fn(&str) -> Option<String>,
    ) -> Result<(), ProbeError> {
        let named: Vec<(&'static str, &VendorScheduleId)> = [
            ("--schedule", request.schedule.as_ref()),
            ("--write-to", request.write_to.as_ref()),
        ]
        .into_iter()
        .filter_map(|(flag, s)| s.map(|s| (flag, s)))
        .collect();
        if named.is_empty() {
            return Ok(());
        }
        let provider = self.provider(connection, env)?;
        for (flag, schedule) in named {
            match provider.schedule(schedule).await {
                Ok(_) => {}
                Err(oncall_core::Error::NotFound { .. }) => {
                    return Err(ProbeError::UnknownSchedule {
                        connection: connection.clone(),
                        flag,
                        schedule: schedule.clone(),
                    })
                }
                // Refused or unreadable as a whole: the probe says which points it can read.
                Err(_) => {}
            }
        }
        Ok(())
    }
}

/// Step 6: `--write-to` whose writes the vendor refused is an error, with what was read.
fn refuse_read_only(
    connection: &ConnectionId,
    request: &ProbeRequest,
    report: ProbeReport,
) -> Result<ProbeReport, ProbeError> {
    match &request.write_to {
        Some(scratch) if report.reading("key_rights") == Some("read_only") => {
            Err(ProbeError::ReadOnlyKey {
                connection: connection.clone(),
                schedule: scratch.clone(),
                report: Box::new(report),
            })
        }
        _ => Ok(report),
    }
}
