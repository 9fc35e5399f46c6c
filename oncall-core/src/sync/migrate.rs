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
//! An entry the new side lacks is told by what the old side holds of it (where it can still be
//! read):
//! - the old side holds it too (as the ledger remembers it, or as a person changed it there): the
//!   migration did not carry it, typically because a sync through the old connection wrote it
//!   after Atlassian copied the account. It is [`Found::NotCarried`] and dropped from the ledger,
//!   so the next sync through the new connection writes the host's span again.
//! - the old side no longer holds it, or cannot be read: it is one of ours that a person deleted
//!   before the move (or, unread, may be), [`Found::NotFound`]. It stays in the ledger under its
//!   old id, and the rules treat it as they did (R3: before the mark, the person's change wins; a
//!   sync forgets it only once the new side confirms it holds no such id).
//!
//! Spans are compared as the vendor holds them: from `now` on (a running override may have been
//! copied from the migration's instant) and, for a running one, with ends within
//! [`CLOCK_SKEW`](crate::CLOCK_SKEW) of each other taken as one (a cut lands at the vendor's now).
//! Entries that have ended are history and are dropped. Syncs of the destination should pause
//! while it moves (README, "Moving off Opsgenie"); [`Found::NotCarried`] is what a sync that ran
//! meanwhile leaves.

use std::collections::HashSet;
use std::fmt;

use chrono::{DateTime, TimeDelta, Utc};
use serde::Serialize;

use super::{ConnectionId, Destination, SyncMode};
use crate::error::{Error, Resource};
use crate::model::Window;
use crate::plan::{Override, OverrideId, Span, CLOCK_SKEW};
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
    /// Nowhere on the new side, and the old side no longer holds it (a person deleted it before
    /// the move) or cannot be read ([`MigratedEntry::absence`] says which). It stays in the
    /// ledger under its old id (R3).
    NotFound,
    /// Nowhere on the new side, while the old side holds it: the migration did not carry it
    /// ([`MigratedEntry::absence`] says how the old side holds it). Dropped from the ledger, so
    /// the next sync writes the host's span again.
    NotCarried,
    /// It had ended: history, dropped from the ledger.
    Ended,
}

/// Why an entry was not found on the new side: what the old side holds of it.
#[non_exhaustive]
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Absence {
    /// The old side holds it as the ledger remembers it: the migration did not carry it (written
    /// on the old side after the account was copied, by a sync that ran during the move).
    OldSideHoldsIt,
    /// The old side holds a person's change of it, this span: the migration did not carry it
    /// either. The host's span is written again; the person's change must be made again on the
    /// new side if it still matters.
    OldSideHoldsAChange(Span),
    /// The old side no longer holds it: a person deleted it before the move (R3).
    DeletedOnTheOldSide,
    /// The old side cannot be read (turned off, no key): a person's deletion cannot be told from
    /// an override the migration did not carry, and the ledger keeps it (R3).
    OldSideUnread,
}

impl fmt::Display for Absence {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Absence::OldSideHoldsIt => f.write_str(
                "the old side holds it unchanged: the migration did not carry it (written there \
                 after the account was copied?)",
            ),
            Absence::OldSideHoldsAChange(span) => write!(
                f,
                "the old side holds a person's change of it ({span}) the migration did not carry: \
                 the host's span is written again; make the person's change again if it matters"
            ),
            Absence::DeletedOnTheOldSide => {
                f.write_str("the old side no longer holds it either: a person deleted it")
            }
            Absence::OldSideUnread => f.write_str(
                "the old side cannot be read: a person's deletion cannot be told from an \
                 override the migration did not carry",
            ),
        }
    }
}

impl Found {
    fn describe(self) -> &'static str {
        match self {
            Found::ById => "found under the same id",
            Found::BySpan => "found by its exact span and person",
            Found::ByOldSidesSpan => "found by the span a person gave it on the old side",
            Found::NotFound => "not found: kept under its old id",
            Found::NotCarried => "not carried by the migration: dropped, the next sync writes it",
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
    /// For [`Found::NotFound`] and [`Found::NotCarried`]: what the old side holds of it.
    pub absence: Option<Absence>,
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
            let why = e
                .absence
                .as_ref()
                .map_or_else(String::new, |a| format!(" ({a})"));
            match &e.after {
                Some(after) if after.id != e.before.id => writeln!(
                    f,
                    "  {} {}: {} → {}{why}",
                    e.before.id,
                    e.before.span,
                    e.found.describe(),
                    after.id
                )?,
                _ => writeln!(
                    f,
                    "  {} {}: {}{why}",
                    e.before.id,
                    e.before.span,
                    e.found.describe()
                )?,
            }
        }
        writeln!(
            f,
            "  {} found by id, {} by span, {} by the old side's span, {} not found, {} not \
             carried, {} ended",
            self.count(Found::ById),
            self.count(Found::BySpan),
            self.count(Found::ByOldSidesSpan),
            self.count(Found::NotFound),
            self.count(Found::NotCarried),
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
/// the new side lacks while the old side holds it was not carried by the migration
/// ([`Found::NotCarried`]): it is dropped, so the next sync writes it again. One the old side
/// no longer holds (or that cannot be told, the old side unread) stays under its old id
/// ([`Found::NotFound`]: a person deleted it before the move, R3 keeps their change). Spans are
/// compared from `now` on, as the vendor holds them (see the module's notes); entries that have
/// ended are dropped. Reads both sides (nothing is written to
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

/// Each ledger entry found again: by id, by span, or not at all (then told by the old side);
/// each override of the new side taken for one entry at most.
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
        let (after, found, absence) = if entry.span.end <= now {
            (None, Found::Ended, None)
        } else {
            match find_one(m, schedule, entry, &held, &mut taken, now).await? {
                Outcome::Found(id, how) => (
                    Some(Override {
                        id,
                        span: entry.span.clone(),
                    }),
                    how,
                    None,
                ),
                Outcome::Missing(absence) => match absence {
                    Absence::OldSideHoldsIt | Absence::OldSideHoldsAChange(_) => {
                        (None, Found::NotCarried, Some(absence))
                    }
                    _ => (Some(entry.clone()), Found::NotFound, Some(absence)),
                },
            }
        };
        entries.push(MigratedEntry {
            before: entry.clone(),
            after,
            found,
            absence,
        });
    }
    Ok(entries)
}

/// What became of one live ledger entry on the new side.
enum Outcome {
    /// Found under this id, in this way.
    Found(OverrideId, Found),
    /// Not found; what the old side holds of it.
    Missing(Absence),
}

/// What the old side holds of an entry.
enum OldCopy {
    Unread,
    Gone,
    Holds(Span),
}

async fn find_one(
    m: &Migration<'_>,
    schedule: &VendorScheduleId,
    entry: &Override,
    held: &[Override],
    taken: &mut HashSet<usize>,
    now: DateTime<Utc>,
) -> Result<Outcome, Error> {
    // By id: in the listing, or wherever a person moved it.
    if let Some(i) = held.iter().position(|o| o.id == entry.id) {
        taken.insert(i);
        return Ok(Outcome::Found(entry.id.clone(), Found::ById));
    }
    if let Some(copy) = m.to.get_override(schedule, &entry.id).await? {
        if let Some(i) = held.iter().position(|o| o.id == copy.id) {
            taken.insert(i);
        }
        return Ok(Outcome::Found(copy.id, Found::ById));
    }
    // By exact span and person: as the old side holds it now, then as the ledger remembers it.
    let old = read_old_copy(m, entry).await;
    let mut spans: Vec<(&Span, Found)> = Vec::new();
    if let OldCopy::Holds(span) = &old {
        if !same_as_held(span, &entry.span, now) {
            spans.push((span, Found::ByOldSidesSpan));
        }
    }
    spans.push((&entry.span, Found::BySpan));
    for (span, how) in spans {
        let free = held
            .iter()
            .enumerate()
            .filter(|(i, o)| !taken.contains(i) && same_as_held(span, &o.span, now))
            .min_by(|a, b| a.1.id.cmp(&b.1.id));
        if let Some((i, o)) = free {
            taken.insert(i);
            return Ok(Outcome::Found(o.id.clone(), how));
        }
    }
    Ok(Outcome::Missing(match old {
        OldCopy::Holds(span) if same_as_held(&span, &entry.span, now) => Absence::OldSideHoldsIt,
        OldCopy::Holds(span) => Absence::OldSideHoldsAChange(span),
        OldCopy::Gone => Absence::DeletedOnTheOldSide,
        OldCopy::Unread => Absence::OldSideUnread,
    }))
}

/// The old side's copy of an entry, by its id. The old side may be off, or its key gone: then
/// nothing is known of it.
async fn read_old_copy(m: &Migration<'_>, entry: &Override) -> OldCopy {
    let Some(from) = m.from else {
        return OldCopy::Unread;
    };
    match from.get_override(&m.destination.schedule, &entry.id).await {
        Ok(Some(old)) => OldCopy::Holds(old.span),
        Ok(None) => OldCopy::Gone,
        Err(_) => OldCopy::Unread,
    }
}

/// Whether two spans are one override as a vendor holds it at `now`: the same person and end, and
/// the same start, or both started by now (a migration may copy a running override from its own
/// instant: only the part from now on is compared). A running override's ends within
/// [`CLOCK_SKEW`] of each other are one end: a cut lands at the vendor's now, a little after the
/// sync's.
fn same_as_held(a: &Span, b: &Span, now: DateTime<Utc>) -> bool {
    if a.member != b.member {
        return false;
    }
    let running = a.start <= now && b.start <= now;
    let starts = a.start == b.start || running;
    let ends = a.end == b.end || (running && (a.end - b.end).abs() < CLOCK_SKEW);
    starts && ends
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    fn t(h: i64) -> DateTime<Utc> {
        Utc.with_ymd_and_hms(2026, 6, 1, 0, 0, 0).unwrap() + TimeDelta::hours(h)
    }

    fn span(start: DateTime<Utc>, end: DateTime<Utc>, who: &str) -> Span {
        Span::new(
            start,
            end,
            crate::Email::parse(&format!("{who}@example.com")).unwrap(),
        )
    }

    #[test]
    fn spans_are_compared_as_the_vendor_holds_them_from_now_on() {
        let now = t(10);
        // Future: exact.
        assert!(same_as_held(
            &span(t(20), t(24), "ann"),
            &span(t(20), t(24), "ann"),
            now
        ));
        assert!(!same_as_held(
            &span(t(20), t(24), "ann"),
            &span(t(21), t(24), "ann"),
            now
        ));
        assert!(!same_as_held(
            &span(t(20), t(24), "ann"),
            &span(t(20), t(24), "bob"),
            now
        ));
        let cut_by_skew = t(24) + TimeDelta::seconds(5);
        assert!(!same_as_held(
            &span(t(20), t(24), "ann"),
            &span(t(20), cut_by_skew, "ann"),
            now
        ));
        // Running: the start is clipped at now, the end is one within the clock skew.
        assert!(same_as_held(
            &span(t(8), t(12), "ann"),
            &span(t(10), t(12), "ann"),
            now
        ));
        assert!(same_as_held(
            &span(t(8), t(12), "ann"),
            &span(t(8), t(12) + TimeDelta::seconds(5), "ann"),
            now
        ));
        assert!(!same_as_held(
            &span(t(8), t(12), "ann"),
            &span(t(8), t(13), "ann"),
            now
        ));
        // One started, the other not: different overrides.
        assert!(!same_as_held(
            &span(t(8), t(12), "ann"),
            &span(t(11), t(12), "ann"),
            now
        ));
    }
}
