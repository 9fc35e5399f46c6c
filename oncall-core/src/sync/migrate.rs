//! Moving a destination to another connection, keeping its mark and ledger: the way off Opsgenie
//! to Jira Service Management Operations before 2027-04-05 (DESIGN §9).
//!
//! Atlassian's migration copies an Opsgenie account's schedules and overrides into JSM; whether
//! the schedules keep their ids and the overrides their aliases is UNCONFIRMED. [`migrate`] finds
//! each override of the destination's ledger again on the new side, by its id where the migration
//! kept it, else by its exact span and person (as the old side holds it now, where that side can
//! still be read, and as the ledger remembers it), and re-keys the ledger to the new ids. Nothing is
//! written to either vendor, so nothing can be written twice; the next sync through the new
//! connection plans against the same mark and a ledger of the new side's ids.
//!
//! An entry found nowhere stays in the ledger under its old id: it is one of ours that a person
//! deleted or changed before the move, and the rules treat it as they did (R3: before the mark, the
//! person's change wins; a sync forgets it only once the new side confirms it holds no such id).
//! Entries that have ended are history and are dropped.

use std::collections::HashSet;
use std::fmt;

use chrono::{DateTime, TimeDelta, Utc};
use serde::Serialize;

use super::{ConnectionId, Destination, SyncMode};
use crate::error::{Error, Resource};
use crate::model::Window;
use crate::plan::{Override, Span};
use crate::provider::{Provider, VendorScheduleId};
use crate::state::{DestinationState, LedgerHome, StateStore};
use crate::time::whole_seconds;

/// What to move where.
#[derive(Clone, Copy)]
pub struct Migration<'a> {
    /// The destination as it is now (its connection and vendor schedule on the old side).
    pub destination: &'a Destination,
    /// The old side's provider, where it can still be read: it says what a person made of our
    /// overrides there. `None` once the old account is off.
    pub from: Option<&'a dyn Provider>,
    /// The new connection.
    pub to_connection: &'a ConnectionId,
    /// The new side's provider.
    pub to: &'a dyn Provider,
    /// The vendor schedule on the new side; `None`: the one with the destination's schedule id
    /// (kept by the migration), else the one named as the old schedule.
    pub to_schedule: Option<&'a VendorScheduleId>,
    /// The instant the move runs (the core reads no clock).
    pub now: DateTime<Utc>,
    /// [`SyncMode::DryRun`] reports and saves nothing; [`SyncMode::Apply`] saves the re-keyed
    /// ledger.
    pub mode: SyncMode,
}

/// How a ledger entry was found on the new side.
#[non_exhaustive]
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Found {
    /// Under the same id: the migration kept the alias.
    ById,
    /// By its exact span and person, as the ledger remembers it.
    BySpan,
    /// By its exact span and person as the old side holds it now (a person had changed it there).
    ByOldSidesSpan,
    /// Nowhere: a person deleted or changed it before the move. It stays in the ledger under its
    /// old id (R3).
    NotFound,
    /// It had ended: history, dropped from the ledger.
    Ended,
}

impl Found {
    fn describe(self) -> &'static str {
        match self {
            Found::ById => "found under the same id",
            Found::BySpan => "found by its exact span and person",
            Found::ByOldSidesSpan => "found by the span a person gave it on the old side",
            Found::NotFound => "not found: kept under its old id (a person deleted or changed it)",
            Found::Ended => "ended: dropped",
        }
    }
}

/// One ledger entry, before and after.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct MigratedEntry {
    /// The entry as the ledger held it.
    pub before: Override,
    /// The entry in the new ledger (`None`: dropped).
    pub after: Option<Override>,
    /// How it was found.
    pub found: Found,
}

/// What [`migrate`] found and did.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct MigrationReport {
    /// The destination as it was.
    pub from: Destination,
    /// The destination as it is now: the new connection and vendor schedule.
    pub to: Destination,
    /// Whether the new state was saved (never in a dry run).
    pub saved: bool,
    /// The mark, kept.
    pub high_water: Option<DateTime<Utc>>,
    /// Every ledger entry, in ledger order.
    pub entries: Vec<MigratedEntry>,
}

impl MigrationReport {
    /// How many entries were found in a way.
    pub fn count(&self, found: Found) -> usize {
        self.entries.iter().filter(|e| e.found == found).count()
    }
}

impl fmt::Display for MigrationReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mark = self.high_water.map_or_else(
            || "none".to_owned(),
            |t| t.format("%Y-%m-%d %H:%M:%SZ").to_string(),
        );
        writeln!(
            f,
            "destination {}: connection {} schedule {} → connection {} schedule {}; mark {mark} kept; {}",
            self.from.id,
            self.from.connection,
            self.from.schedule,
            self.to.connection,
            self.to.schedule,
            if self.saved { "saved" } else { "not saved (dry run)" }
        )?;
        for e in &self.entries {
            match &e.after {
                Some(after) if after.id != e.before.id => writeln!(
                    f,
                    "  {} {}: {} → {}",
                    e.before.id,
                    e.before.span,
                    e.found.describe(),
                    after.id
                )?,
                _ => writeln!(
                    f,
                    "  {} {}: {}",
                    e.before.id,
                    e.before.span,
                    e.found.describe()
                )?,
            }
        }
        writeln!(
            f,
            "  {} found by id, {} by span, {} by the old side's span, {} not found, {} ended",
            self.count(Found::ById),
            self.count(Found::BySpan),
            self.count(Found::ByOldSidesSpan),
            self.count(Found::NotFound),
            self.count(Found::Ended)
        )
    }
}

/// Moves a destination to another connection, keeping its mark and ledger: the way off Opsgenie to
/// Jira Service Management Operations before 2027-04-05 (DESIGN §9).
///
/// Each override of the destination's ledger is found again on the new side by its id where the
/// migration kept it, else by its exact span and person (as the old side holds it now, where
/// [`Migration::from`] can still be read, then as the ledger remembers it); each override of the
/// new side is taken for one entry at most, and the ledger is re-keyed to the new ids. An entry
/// found nowhere stays under its old id (a person deleted or changed it before the move: R3 keeps
/// their change); entries that have ended are dropped. Reads both sides (nothing is written to
/// either vendor, so nothing can be written twice), then, in [`SyncMode::Apply`], saves the
/// re-keyed ledger, with the same mark and last run, under the store's compare-and-swap.
///
/// An `Err` means nothing was saved: the state could not be read or saved (a concurrent sync saved
/// first: [`Error::Conflict`]), the new side could not be read, or its schedule could not be told
/// (none or several named as the old one: [`Error::NotFound`] or [`Error::Conflict`], naming them).
pub async fn migrate(
    migration: Migration<'_>,
    store: &dyn StateStore,
) -> Result<MigrationReport, Error> {
    let now = whole_seconds(migration.now);
    let loaded = store.load(&migration.destination.id).await?;
    let schedule = resolve_schedule(&migration).await?;
    let held = read_new_side(&migration, &schedule, &loaded.value, now).await?;
    let entries = find_entries(&migration, &schedule, &loaded.value, held, now).await?;
    let state = DestinationState {
        ledger: entries.iter().filter_map(|e| e.after.clone()).collect(),
        // A sync through the old connection is refused from now on.
        home: Some(LedgerHome {
            connection: migration.to_connection.clone(),
            schedule: schedule.clone(),
        }),
        ..loaded.value.clone()
    };
    let saved = if matches!(migration.mode, SyncMode::DryRun) {
        false
    } else {
        store
            .save(&migration.destination.id, loaded.version, &state)
            .await?;
        true
    };
    Ok(MigrationReport {
        from: migration.destination.clone(),
        to: Destination {
            connection: migration.to_connection.clone(),
            schedule,
            ..migration.destination.clone()
        },
        saved,
        high_water: loaded.value.high_water,
        entries,
    })
}

/// The vendor schedule on the new side: the one given (checked to exist), the one with the old
/// id, or the only one named as the old schedule.
async fn resolve_schedule(m: &Migration<'_>) -> Result<VendorScheduleId, Error> {
    if let Some(given) = m.to_schedule {
        m.to.schedule(given).await?;
        return Ok(given.clone());
    }
    let old = &m.destination.schedule;
    match m.to.schedule(old).await {
        Ok(_) => return Ok(old.clone()),
        Err(Error::NotFound { .. }) => {}
        Err(e) => return Err(e),
    }
    let Some(from) = m.from else {
        return Err(Error::NotFound {
            resource: Resource::Schedule(old.to_string()),
            message: "the new side has no schedule with this id and the old side cannot be read \
                      for its name: give the new schedule's id"
                .into(),
        });
    };
    let name = from.schedule(old).await?.name;
    let listing = m.to.list_schedules().await?;
    let named: Vec<&VendorScheduleId> = listing
        .schedules
        .iter()
        .filter(|s| s.name == name)
        .map(|s| &s.id)
        .collect();
    match named.as_slice() {
        [one] => Ok((*one).clone()),
        [] => Err(Error::NotFound {
            resource: Resource::Schedule(old.to_string()),
            message: format!(
                "the new side has no schedule with this id, nor one named {name:?}: give the new \
                 schedule's id"
            ),
        }),
        several => Err(Error::Conflict {
            message: format!(
                "the new side has {} schedules named {name:?} ({}): give the new schedule's id",
                several.len(),
                several
                    .iter()
                    .map(ToString::to_string)
                    .collect::<Vec<_>>()
                    .join(", ")
            ),
        }),
    }
}

/// The new side's overrides over the live ledger's spans (a second past their end).
async fn read_new_side(
    m: &Migration<'_>,
    schedule: &VendorScheduleId,
    state: &DestinationState,
    now: DateTime<Utc>,
) -> Result<Vec<Override>, Error> {
    let end = state
        .ledger
        .iter()
        .map(|l| l.span.end)
        .filter(|end| *end > now)
        .max();
    let Some(end) = end else {
        return Ok(Vec::new());
    };
    let end = end.checked_add_signed(TimeDelta::seconds(1)).unwrap_or(end);
    let window = Window::new(now, end)?;
    m.to.list_overrides(schedule, window).await
}

/// Each ledger entry found again: by id, by span, or not at all; each override of the new side
/// taken for one entry at most.
async fn find_entries(
    m: &Migration<'_>,
    schedule: &VendorScheduleId,
    state: &DestinationState,
    held: Vec<Override>,
    now: DateTime<Utc>,
) -> Result<Vec<MigratedEntry>, Error> {
    let mut taken: HashSet<usize> = HashSet::new();
    let mut entries = Vec::with_capacity(state.ledger.len());
    for entry in &state.ledger {
        if entry.span.end <= now {
            entries.push(MigratedEntry {
                before: entry.clone(),
                after: None,
                found: Found::Ended,
            });
            continue;
        }
        let found = find_one(m, schedule, entry, &held, &mut taken).await?;
        let after = match found {
            Some((id, how)) => MigratedEntry {
                before: entry.clone(),
                after: Some(Override {
                    id,
                    span: entry.span.clone(),
                }),
                found: how,
            },
            None => MigratedEntry {
                before: entry.clone(),
                after: Some(entry.clone()),
                found: Found::NotFound,
            },
        };
        entries.push(after);
    }
    Ok(entries)
}

async fn find_one(
    m: &Migration<'_>,
    schedule: &VendorScheduleId,
    entry: &Override,
    held: &[Override],
    taken: &mut HashSet<usize>,
) -> Result<Option<(crate::plan::OverrideId, Found)>, Error> {
    // By id: in the listing, or wherever a person moved it.
    if let Some(i) = held.iter().position(|o| o.id == entry.id) {
        taken.insert(i);
        return Ok(Some((entry.id.clone(), Found::ById)));
    }
    if let Some(copy) = m.to.get_override(schedule, &entry.id).await? {
        if let Some(i) = held.iter().position(|o| o.id == copy.id) {
            taken.insert(i);
        }
        return Ok(Some((copy.id, Found::ById)));
    }
    // By exact span and person: as the old side holds it now, then as the ledger remembers it.
    let mut spans: Vec<(Span, Found)> = Vec::new();
    if let Some(from) = m.from {
        // The old side may be off, or the copy gone there: then only the ledger's span is asked.
        if let Ok(Some(old)) = from.get_override(&m.destination.schedule, &entry.id).await {
            if old.span != entry.span {
                spans.push((old.span, Found::ByOldSidesSpan));
            }
        }
    }
    spans.push((entry.span.clone(), Found::BySpan));
    for (span, how) in spans {
        let free = held
            .iter()
            .enumerate()
            .filter(|(i, o)| !taken.contains(i) && o.span == span)
            .min_by(|a, b| a.1.id.cmp(&b.1.id));
        if let Some((i, o)) = free {
            taken.insert(i);
            return Ok(Some((o.id.clone(), how)));
        }
    }
    Ok(None)
}
