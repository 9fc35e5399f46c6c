//! Why: expansion and merging run on every import and every preview of a rota; a year of hourly
//! turns across three rotations must stay well under 10 ms (issue: foundation) so hosts can
//! recompute freely.
#![allow(missing_docs)] // criterion's macros generate undocumented items

use chrono::{NaiveDate, TimeZone, Utc};
use criterion::{black_box, criterion_group, criterion_main, Criterion};
use oncall_sync::{
    expand_and_merge, Email, Participant, Restriction, Rotation, RotationUnit, Window,
};

fn rotations(unit: RotationUnit, restricted: bool) -> Vec<Rotation> {
    let members: Vec<Participant> = (0..10)
        .map(|i| Participant::Member(Email::parse(&format!("m{i}@example.com")).expect("email")))
        .collect();
    (0..3)
        .map(|r| {
            let start = NaiveDate::from_ymd_opt(2024, 1, 1)
                .and_then(|d| d.and_hms_opt(9 + r, 0, 0))
                .expect("start");
            let mut rotation = Rotation::new(format!("r{r}"), unit, 1, start, members.clone());
            rotation.participants.rotate_left(r as usize);
            if restricted {
                rotation.restrictions =
                    vec![Restriction::time_of_day(8, 0, 20, 0).expect("restriction")];
            }
            rotation
        })
        .collect()
}

fn year() -> Window {
    Window::new(
        Utc.with_ymd_and_hms(2024, 1, 1, 0, 0, 0).unwrap(),
        Utc.with_ymd_and_hms(2025, 1, 1, 0, 0, 0).unwrap(),
    )
    .expect("window")
}

fn bench(c: &mut Criterion) {
    let zone = chrono_tz::Europe::Berlin;
    let mut group = c.benchmark_group("expand_and_merge_year_3_rotations_10_members");
    for (name, unit, restricted) in [
        ("hourly", RotationUnit::Hourly, false),
        ("daily", RotationUnit::Daily, false),
        ("weekly", RotationUnit::Weekly, false),
        ("daily_restricted_08_20", RotationUnit::Daily, true),
    ] {
        let rs = rotations(unit, restricted);
        group.bench_function(name, |b| {
            b.iter(|| expand_and_merge(black_box(&rs), zone, year()).expect("expand"))
        });
    }
    group.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
