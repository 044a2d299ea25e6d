//! Reconcile throughput on the real dev server.
//!
//! `cargo bench --bench apply` measures, each on an empty dev server of its
//! own:
//! - the ceiling: the best rate of raw parallel CreateSchedule calls at any of
//!   several concurrencies;
//! - cold applies of 1,000 and 10,000 schedules, as a ratio to the ceiling;
//! - a no-op apply of each size: RPCs, and wall time against that of
//!   `temporal schedule list` of the same schedules (three of each,
//!   alternated, medians);
//! - the naive way, a shell loop of `temporal schedule create`.
//!
//! Under `cargo test` (no `--bench` argument) it runs the same code on 50
//! schedules as a smoke test. Sizes: `BENCH_SIZES` (default `1000,10000`),
//! `BENCH_SHELL_COUNT` (default 200); `BENCH_CONCURRENCY` sets the cold
//! apply's concurrency (default: the reconcile's default).

use std::time::Duration;

use futures_util::StreamExt;
use schedule_sync::dev_server::{DevServer, DevServerOptions, find_cli};
use schedule_sync::project::{Project, check_workflow_source};
use schedule_sync::reconcile::{ReconcileOptions, reconcile};
use schedule_sync::spec::{DesiredSchedule, desired};
use schedule_sync::store::{ScheduleStore, TemporalStore};
use tokio::time::Instant;

fn project(name: &str, count: usize) -> Project {
    let workflows = (0..count)
        .map(|i| {
            let text = format!(
                "id: job-{i}\ntype: Job\nschedule:\n  cron: \"{} {} * * *\"\n  timezone: Europe/Berlin\n  input: {{n: {i}}}\n",
                i % 60,
                i % 24
            );
            check_workflow_source(format!("job-{i}.yaml").into(), &text, "bench").workflow.unwrap()
        })
        .collect();
    Project::new(name, "bench", workflows).unwrap()
}

async fn raw_creates(
    store: &TemporalStore,
    name: &str,
    schedules: &[DesiredSchedule],
    concurrency: usize,
) -> f64 {
    let started = Instant::now();
    let results: Vec<_> = futures_util::stream::iter(schedules)
        .map(|d| {
            let state = d.schedule.state.clone().unwrap_or_default();
            let pause = schedule_sync::store::PauseState {
                paused: state.paused,
                notes: state.notes,
            };
            async move {
                store
                    .create(
                        name,
                        d,
                        &pause,
                        &Default::default(),
                        &format!("bench-{}", d.schedule_id),
                    )
                    .await
            }
        })
        .buffer_unordered(concurrency)
        .collect()
        .await;
    let elapsed = started.elapsed().as_secs_f64();
    assert!(results.iter().all(Result::is_ok), "raw creates failed");
    schedules.len() as f64 / elapsed
}

/// A dev server of its own, empty.
async fn start() -> DevServer {
    let cli = find_cli().expect("no temporal CLI: run scripts/install-temporal-cli.sh");
    DevServer::start(DevServerOptions::new(cli))
        .await
        .expect("the dev server starts")
}

/// A store of its own (its RPC counts start at zero) on `server`.
async fn fresh_store(server: &DevServer) -> TemporalStore {
    let client = server
        .settings()
        .connect(Duration::from_secs(5))
        .await
        .unwrap();
    TemporalStore::new(client, server.namespace().to_owned(), true)
}

/// Waits until the listing shows `count` schedules of project `name`, its
/// writer fence left out.
async fn wait_for_listing(store: &TemporalStore, name: &str, count: usize) {
    let deadline = Instant::now() + Duration::from_secs(300);
    let fence = schedule_sync::fence::fence_id(name);
    let listed = || async {
        let observation = store.list(name).await.unwrap();
        observation
            .schedules
            .iter()
            .filter(|s| s.schedule_id != fence)
            .count()
    };
    while listed().await < count {
        assert!(Instant::now() < deadline, "the listing never caught up");
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
}

/// The median of `values` (sorted in place).
fn median(values: &mut [f64]) -> f64 {
    values.sort_by(f64::total_cmp);
    values[values.len() / 2]
}

/// Seconds that `temporal schedule list` takes to show project `name`'s
/// schedules (its ids only, as the apply lists them), checking that it
/// shows at least `count` of them.
async fn cli_list(server: &DevServer, name: &str, count: usize) -> f64 {
    let started = Instant::now();
    let output = tokio::process::Command::new(server.cli())
        .args(["schedule", "list", "--query"])
        .arg(format!("ScheduleId STARTS_WITH '{name}.'"))
        .args(["--address", &server.address()])
        .args(["--namespace", server.namespace()])
        .output()
        .await
        .unwrap();
    let elapsed = started.elapsed().as_secs_f64();
    assert!(output.status.success(), "temporal schedule list failed");
    let shown = String::from_utf8_lossy(&output.stdout)
        .lines()
        .filter(|line| line.contains(&format!("{name}.job-")))
        .count();
    assert!(
        shown >= count,
        "temporal schedule list showed {shown} of {count}"
    );
    elapsed
}

#[tokio::main]
async fn main() {
    let bench = std::env::args().any(|a| a == "--bench");
    let sizes: Vec<usize> = if bench {
        std::env::var("BENCH_SIZES")
            .unwrap_or_else(|_| "1000,10000".into())
            .split(',')
            .map(|s| s.trim().parse().expect("BENCH_SIZES is a list of numbers"))
            .collect()
    } else {
        vec![50]
    };
    let shell_count: usize = if bench {
        std::env::var("BENCH_SHELL_COUNT")
            .ok()
            .and_then(|s| s.parse().ok())
            .unwrap_or(200)
    } else {
        5
    };
    // The ceiling, on as many schedules as the smallest size. Each
    // measurement has an empty server of its own, as the cold applies do:
    // a server that has just created thousands of schedules is still
    // running their first workflow tasks, and creates more slowly.
    let ceiling_size = sizes[0];
    let mut ceiling: f64 = 0.0;
    for concurrency in [4, 16, 64, 128] {
        let server = start().await;
        let store = fresh_store(&server).await;
        let name = format!("ceiling{concurrency}");
        let schedules = desired(&project(&name, ceiling_size));
        let rate = raw_creates(&store, &name, &schedules, concurrency).await;
        println!(
            "ceiling: {ceiling_size} raw CreateSchedule at concurrency {concurrency}: {rate:.0}/s"
        );
        ceiling = ceiling.max(rate);
        server.stop();
    }

    let mut cold_options = ReconcileOptions::default();
    if let Ok(concurrency) = std::env::var("BENCH_CONCURRENCY") {
        cold_options.concurrency = concurrency.parse().expect("BENCH_CONCURRENCY is a number");
    }
    for &size in &sizes {
        let server = start().await;
        let store = fresh_store(&server).await;
        let name = format!("cold{size}");
        let target = project(&name, size);
        let cold = fresh_store(&server).await;
        let started = Instant::now();
        let report = reconcile(&cold, &target, cold_options).await.unwrap();
        let elapsed = started.elapsed().as_secs_f64();
        if !report.converged() {
            let failed: Vec<_> = report
                .outcomes
                .iter()
                .filter(|o| !o.succeeded())
                .take(5)
                .map(|o| format!("{:?}: {:?}", o.effect, o.error))
                .collect();
            eprintln!(
                "the cold apply of {size} did not converge ({:?}); first failures: {failed:#?}",
                cold.rpc_counts()
            );
            server.stop();
            std::process::exit(1);
        }
        let rate = size as f64 / elapsed;
        println!(
            "cold apply of {size} (concurrency {}): {elapsed:.2} s, {rate:.0} schedules/s, {:.0}% of the ceiling ({ceiling:.0}/s), RPCs: {:?}",
            cold_options.concurrency,
            100.0 * rate / ceiling,
            cold.rpc_counts()
        );

        wait_for_listing(&store, &name, size).await;
        // The no-op against what a person would run to see the same
        // schedules, `temporal schedule list` of the project's ids;
        // alternated, three times each, medians.
        let mut noops = Vec::new();
        let mut lists = Vec::new();
        for run in 0..3 {
            let counting = fresh_store(&server).await;
            let started = Instant::now();
            let again = reconcile(&counting, &target, ReconcileOptions::default())
                .await
                .unwrap();
            noops.push(started.elapsed().as_secs_f64());
            assert!(again.plan.steps.is_empty(), "a no-op apply planned writes");
            if run == 0 {
                let counts = counting.rpc_counts();
                let total: u64 = counts.values().flat_map(|codes| codes.values()).sum();
                println!("no-op apply of {size}: {total} RPC(s): {counts:?}");
            }
            lists.push(cli_list(&server, &name, size).await);
        }
        let (noop, list) = (median(&mut noops), median(&mut lists));
        println!(
            "no-op apply of {size}: median {noop:.2} s ({noops:.2?}); `temporal schedule list` of \
             them: median {list:.2} s ({lists:.2?}); ratio {:.2}",
            noop / list
        );
        server.stop();
    }

    // The naive way: one `temporal schedule create` process per schedule.
    let server = start().await;
    let started = Instant::now();
    for i in 0..shell_count {
        let status = tokio::process::Command::new(server.cli())
            .args([
                "schedule",
                "create",
                "--schedule-id",
                &format!("shell.job-{i}"),
            ])
            .args([
                "--cron",
                &format!("{} {} * * *", i % 60, i % 24),
                "--time-zone",
                "Europe/Berlin",
            ])
            .args([
                "--workflow-id",
                &format!("shell.job-{i}"),
                "--type",
                "Job",
                "--task-queue",
                "bench",
            ])
            .args([
                "--input",
                &format!("{{\"n\": {i}}}"),
                "--address",
                &server.address(),
            ])
            .status()
            .await
            .unwrap();
        assert!(status.success());
    }
    let elapsed = started.elapsed().as_secs_f64();
    let rate = shell_count as f64 / elapsed;
    println!(
        "shell loop of {shell_count} `temporal schedule create`: {elapsed:.2} s, {rate:.1} schedules/s"
    );
    server.stop();
}
