//! Importing a vendor schedule into the host model (DESIGN §1.3).

use std::collections::HashSet;

use crate::error::Error;
use crate::model::{Member, RoleIndex, Schedule, ScheduleId, Window};
use crate::provider::{Provider, VendorScheduleId};
use crate::rotation::merge_rotations;

/// Imports a vendor schedule's assigned shifts over `window` as a host [`Schedule`].
///
/// The provider's on-call timelines become roles by position (the first is the primary; for
/// Opsgenie the rotations in timeline order, for PagerDuty the final schedule as one role), merged
/// into shifts with [`merge_rotations`]. Two reads: the schedule, then its on-call timelines.
/// People on call but missing from the member list are added under their email.
pub async fn import_schedule(
    provider: &dyn Provider,
    schedule: &VendorScheduleId,
    window: Window,
) -> Result<Schedule, Error> {
    let config = provider.schedule(schedule).await?;
    let timelines = provider.on_call(schedule, window).await?;
    if timelines.is_empty() {
        return Err(Error::InvalidResponse {
            message: format!("schedule {schedule} has no rotation to import"),
        });
    }
    let mut members = config.members;
    let mut known: HashSet<_> = members.iter().map(|m| m.email.clone()).collect();
    for p in timelines.iter().flat_map(|t| &t.periods) {
        if known.insert(p.member.clone()) {
            members.push(Member::new(p.member.clone(), p.member.as_str()));
        }
    }
    let periods: Vec<_> = timelines.into_iter().map(|t| t.periods).collect();
    let shifts = merge_rotations(&periods);
    Schedule::new(
        ScheduleId(schedule.0.clone()),
        config.zone,
        RoleIndex::default_names(periods.len()),
        members,
        shifts,
    )
    .map_err(|e| Error::InvalidResponse {
        message: format!("the on-call timelines of schedule {schedule} do not form a rota: {e}"),
    })
}
