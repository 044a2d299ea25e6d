//! Loading and validating a project of 10,000 workflow files.
//!
//! `cargo bench --bench load_project`; the figure goes in BENCHMARKS.md.

use std::hint::black_box;
use std::time::Duration;

use criterion::{Criterion, criterion_group, criterion_main};

mod common;
use common::write_project;

fn load_10k(c: &mut Criterion) {
    let dir = tempfile::tempdir().unwrap();
    write_project(dir.path(), 10_000);
    let loaded = schedule_sync::project::load(dir.path()).expect("the generated project is valid");
    assert_eq!(loaded.project.workflows().len(), 10_000);

    let mut group = c.benchmark_group("load_project");
    group.sample_size(20);
    group.measurement_time(Duration::from_secs(10));
    group.bench_function("10k_workflow_files", |b| {
        b.iter(|| black_box(schedule_sync::project::load(black_box(dir.path())).unwrap()));
    });
    group.finish();
}

criterion_group!(benches, load_10k);
criterion_main!(benches);
