//! A cold apply on a rate-limited namespace, on the real dev server.
//!
//! `cargo bench --features cli,dev-server --bench rate_limit` starts a dev
//! server whose namespace takes at most 10 requests a second
//! (`frontend.namespaceRPS=10`, `frontend.namespaceBurstRatio=1`, as a
//! Temporal Cloud namespace limits schedule calls) and applies a project of
//! 1,000 schedules to it, cold, with the default options (no ceiling: the
//! pace adapts). It prints the time, the schedules per second, and the RPCs
//! by code with the share answered ResourceExhausted, and whether the
//! targets (at least 8 schedules a second, at most 10% of the RPCs
//! throttled) are met. It exits non-zero when the apply did not converge
//! or did not create every schedule.
//!
//! `BENCH_SIZE` (default 1000) sets the size; `BENCH_MAX_RPS` sets a
//! ceiling, as `--max-rps` does. Under `cargo test` (no `--bench` argument)
//! it runs on 30 schedules as a smoke test.

use std::time::Duration;

use schedule_sync::dev_server::{DevServer, DevServerOptions, find_cli};
use schedule_sync::plan::Step;
use schedule_sync::project::{Project, check_workflow_source};
use schedule_sync::reconcile::{Effect, ReconcileOptions, reconcile};
use schedule_sync::store::{Pace, TemporalStore};
use tokio::time::Instant;

/// The namespace's limit, in requests per second.
const LIMIT: u32 = 10;

fn project(name: &str, count: usize) -> Project {
    let workflows = (0..count)
        .map(|i| {
            let text = format!(
                "id: job-{i}\ntype: Job\nschedule:\n  cron: \"{} {} * * *\"\n  timezone: Europe/Berlin\n  input: {{n: {i}}}\n",
                i % 60,
                i % 24
            );
            check_workflow_source(format!("job-{i}.yaml").into(), &text, "bench")
                .workflow
                .unwrap()
        })
        .collect();
    Project::new(name, "bench", workflows).unwrap()
}

#[tokio::main]
async fn main() {
    let bench = std::env::args().any(|a| a == "--bench");
    let size: usize = if bench {
        std::env::var("BENCH_SIZE")
            .ok()
            .map(|s| s.parse().expect("BENCH_SIZE is a number"))
            .unwrap_or(1000)
    } else {
        30
    };
    let ceiling: Option<f64> = std::env::var("BENCH_MAX_RPS")
        .ok()
        .map(|s| s.parse().expect("BENCH_MAX_RPS is a number"));
    let cli = find_cli().expect("no temporal CLI: run scripts/install-temporal-cli.sh");
    let mut options = DevServerOptions::new(cli);
    options.dynamic_config = vec![
        ("frontend.namespaceRPS".to_owned(), LIMIT.to_string()),
        ("frontend.namespaceBurstRatio".to_owned(), "1".to_owned()),
    ];
    let server: DevServer = DevServer::start(options)
        .await
        .expect("the dev server starts");
    let client = server
        .settings()
        .connect(Duration::from_secs(5))
        .await
        .unwrap();
    let store = TemporalStore::new(client, server.namespace().to_owned(), true)
        .with_pace(Pace::new(ceiling));

    let target = project("limited", size);
    let started = Instant::now();
    let mut options = ReconcileOptions::default();
    if let Ok(concurrency) = std::env::var("BENCH_CONCURRENCY") {
        options.concurrency = concurrency.parse().expect("BENCH_CONCURRENCY is a number");
    }
    let report = reconcile(&store, &target, options).await.unwrap();
    let elapsed = started.elapsed().as_secs_f64();
    let counts = store.rpc_counts();
    let total: u64 = counts.values().flat_map(|codes| codes.values()).sum();
    let throttled: u64 = counts
        .values()
        .filter_map(|codes| codes.get("ResourceExhausted"))
        .sum();
    let pace = store.pace().status();
    let created = report
        .outcomes
        .iter()
        .filter(|o| matches!(o.step, Step::Create { .. }) && o.effect == Effect::Applied)
        .count();
    let rate = size as f64 / elapsed;
    let share = throttled as f64 / total as f64;
    println!(
        "cold apply of {size} at {LIMIT} RPS (max_rps {ceiling:?}, concurrency {}): converged {}, {created} of \
         {size} created, {elapsed:.1} s, {rate:.2} schedules/s; {total} RPCs, {throttled} \
         ResourceExhausted ({:.1}%); final pace {:.1}/s; RPCs by code: {counts:?}",
        options.concurrency,
        report.converged(),
        100.0 * share,
        pace.rate.unwrap_or(f64::NAN),
    );
    let met = |ok: bool| if ok { "met" } else { "MISSED" };
    println!(
        "targets: >= {:.0} schedules/s {}; ResourceExhausted <= 10% of RPCs {}",
        0.8 * f64::from(LIMIT),
        met(rate >= 0.8 * f64::from(LIMIT)),
        met(share <= 0.1),
    );
    server.stop();
    // A run that did not converge must not pass for a figure.
    if !report.converged() || created != size {
        let failed: Vec<_> = report
            .outcomes
            .iter()
            .filter(|o| !o.succeeded())
            .take(5)
            .map(|o| format!("{:?}: {:?}", o.effect, o.error))
            .collect();
        eprintln!(
            "the apply did not converge ({created} of {size} created); first failures: {failed:#?}"
        );
        std::process::exit(1);
    }
}
