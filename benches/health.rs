//! The health of 10,000 schedules from one listing: what each reconcile
//! adds to the listing it reads anyway ([`schedule_sync::health::watch_project`]:
//! the next firing time after each schedule's last action, computed from its
//! file). No RPC is involved.
//!
//! `cargo bench --bench health`; under `cargo test` it runs once as a smoke
//! test. The figure goes in BENCHMARKS.md.

use std::hint::black_box;
use std::time::{Duration, SystemTime};

use criterion::{Criterion, criterion_group, criterion_main};
use schedule_sync::health::{Action, Activity, Health, watch_project};
use schedule_sync::store::{Observation, Observed};

mod common;
use common::write_project;

fn health_10k(c: &mut Criterion) {
    let dir = tempfile::tempdir().unwrap();
    write_project(dir.path(), 10_000);
    let project = schedule_sync::project::load(dir.path())
        .expect("the generated project is valid")
        .project;
    let desired = schedule_sync::spec::desired(&project);
    let now = SystemTime::now();
    // Each schedule acted a minute ago and acts again in an hour.
    let acted = now - Duration::from_secs(60);
    let observation = Observation {
        schedules: desired
            .iter()
            .map(|want| Observed {
                schedule_id: want.schedule_id.clone(),
                owner: Some(project.name().to_owned()),
                fingerprint: Some(want.fingerprint.clone()),
                paused: !want.enabled,
                notes: String::new(),
                spec: None,
                activity: Some(Activity {
                    last_action: Some(Action {
                        scheduled: acted,
                        taken: acted,
                    }),
                    next_action: Some(now + Duration::from_secs(3600)),
                    ..Activity::default()
                }),
            })
            .collect(),
        complete: true,
    };
    let health = watch_project(&project, &observation, now);
    assert_eq!(health.len(), desired.len());
    assert!(health.values().all(|w| w.health != Health::Ended));

    let mut group = c.benchmark_group("health");
    group.sample_size(20);
    group.measurement_time(Duration::from_secs(10));
    group.bench_function("10k_schedules_from_one_listing", |b| {
        b.iter(|| {
            black_box(watch_project(
                black_box(&project),
                black_box(&observation),
                now,
            ))
        });
    });
    group.finish();
}

criterion_group!(benches, health_10k);
criterion_main!(benches);
