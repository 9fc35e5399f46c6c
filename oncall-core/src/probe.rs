//! What a vendor account says about the behaviours no documentation settles (DESIGN §7): the
//! findings `oncall probe` prints, and the [`Probe`] trait adapters implement to produce them.
//!
//! Each finding names a *point* (an UNCONFIRMED behaviour the adapter depends on, spelled as the
//! switch of the same name on that vendor's simulator dialect) and the *reading* the account showed
//! (spelled as that switch's setting), or that the reads could not tell. A probe reads only, unless
//! [`ProbeRequest::write_to`] names a scratch schedule: then it may also create, change and delete
//! overrides there, and removes what it made.

use std::fmt;

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use crate::error::Error;
use crate::provider::VendorScheduleId;

/// What to probe.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProbeRequest {
    /// The instant the probe runs (the core reads no clock; a CLI passes the system's, a test its
    /// simulator's).
    pub now: DateTime<Utc>,
    /// Only this schedule; `None`: every schedule the key lists.
    pub schedule: Option<VendorScheduleId>,
    /// A scratch schedule the probe may write to (create, update and delete a future override,
    /// delete a running one, try a taken id, measure read-after-write lag), removing what it made.
    /// `None`: the probe writes nothing at all.
    pub write_to: Option<VendorScheduleId>,
}

/// What the account showed on one point.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ProbeFinding {
    /// The behaviour probed, named as the simulator dialect's switch (e.g. `listing_filter`).
    pub point: String,
    /// The schedule it was seen on, where it is a property of one schedule.
    pub schedule: Option<VendorScheduleId>,
    /// The reading the account showed, named as the switch's setting (e.g. `intersecting`);
    /// `None` when what was read could not tell.
    pub reading: Option<String>,
    /// The evidence, for a person: what was asked, what came back.
    pub detail: String,
}

/// Everything one probe found.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct ProbeReport {
    /// The vendor (`opsgenie`, `pagerduty`, ...).
    pub vendor: String,
    /// The findings, in the order probed.
    pub findings: Vec<ProbeFinding>,
    /// How many write calls the probe made (0 without [`ProbeRequest::write_to`]).
    pub write_calls: usize,
    /// Overrides the probe made but could not remove, by id: a person should delete them.
    pub left_behind: Vec<String>,
}

impl ProbeReport {
    /// The reading found for `point` (on any schedule), if one was settled.
    pub fn reading(&self, point: &str) -> Option<&str> {
        self.findings
            .iter()
            .filter(|f| f.point == point)
            .find_map(|f| f.reading.as_deref())
    }
}

impl fmt::Display for ProbeReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(f, "{} probe: {} findings", self.vendor, self.findings.len())?;
        for finding in &self.findings {
            let place = finding
                .schedule
                .as_ref()
                .map(|s| format!(" [schedule {s}]"))
                .unwrap_or_default();
            let reading = finding.reading.as_deref().unwrap_or("(could not tell)");
            writeln!(f, "  {}{place}: {reading}", finding.point)?;
            if !finding.detail.is_empty() {
                writeln!(f, "      {}", finding.detail)?;
            }
        }
        writeln!(f, "  write calls: {}", self.write_calls)?;
        if !self.left_behind.is_empty() {
            writeln!(
                f,
                "  left behind (delete by hand): {}",
                self.left_behind.join(", ")
            )?;
        }
        Ok(())
    }
}

/// An adapter that can probe its vendor account.
///
/// # Contract
///
/// - Without [`ProbeRequest::write_to`] nothing is written: only the reads a sync or an import
///   makes, within the endpoints of DESIGN §1.
/// - With it, writes go to that schedule only, start in the future unless the point needs a
///   running override, and everything made is removed before the probe returns; what could not
///   be removed is listed in [`ProbeReport::left_behind`].
/// - A point the account does not settle is reported with `reading: None`, never guessed.
/// - An `Err` means the probe could not run at all (a bad key, an outage); a point that fails on
///   its own is a finding with `reading: None` and the error in its detail.
#[async_trait]
pub trait Probe: Send + Sync {
    /// Probes the account.
    async fn probe(&self, request: &ProbeRequest) -> Result<ProbeReport, Error>;
}
