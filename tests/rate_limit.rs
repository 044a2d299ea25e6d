//! A namespace limited to 10 requests per second (as a Temporal Cloud
//! namespace is, for schedule calls), on the real dev server: a cold `apply`
//! converges in one run with few throttled answers, and `serve` converges
//! without a failed attempt, showing its pace and the throttling.

mod support;

use std::path::Path;

use schedule_sync::dev_server::{DevServer, free_port};
use support::Version;
use support::serve::Serve;

/// The namespace's limit, in requests per second.
const LIMIT: u32 = 10;

/// A server of `version` whose namespace takes at most [`LIMIT`] requests a
/// second, with a burst of one second's worth.
async fn limited_server(version: Version) -> DevServer {
    let mut options = support::options(version);
    options.dynamic_config = vec![
        ("frontend.namespaceRPS".to_owned(), LIMIT.to_string()),
        ("frontend.namespaceBurstRatio".to_owned(), "1".to_owned()),
    ];
    support::start(options).await
}

/// A project `name` of `count` scheduled workflows in `dir`.
fn write_project(dir: &Path, name: &str, count: usize) {
    std::fs::create_dir_all(dir.join("workflows")).unwrap();
    std::fs::write(
        dir.join("project.yaml"),
        format!("name: {name}\ntask_queue: q\n"),
    )
    .unwrap();
    for n in 0..count {
        std::fs::write(
            dir.join(format!("workflows/w{n:04}.yaml")),
            format!("id: w{n:04}\nschedule:\n  cron: \"{} 3 * * *\"\n", n % 60),
        )
        .unwrap();
    }
}

/// The RPCs of an `apply --format json` output: all of them, and those
/// answered ResourceExhausted.
fn rpcs(output: &serde_json::Value) -> (u64, u64) {
    let counts = output["rpc_counts"].as_object().expect("rpc_counts");
    let mut total = 0;
    let mut throttled = 0;
    for codes in counts.values() {
        for (code, count) in codes.as_object().unwrap() {
            let count = count.as_u64().unwrap();
            total += count;
            if code == "ResourceExhausted" {
                throttled += count;
            }
        }
    }
    (total, throttled)
}

#[tokio::test]
async fn a_cold_apply_under_a_10_rps_limit_converges_in_one_run() {
    // The figure is for 1,000 schedules; the first second's burst
    // (before the first throttled answer sets a pace) costs a fixed ten to
    // twenty throttled calls, which at 250 schedules came to 9.3% and 9.9%
    // of the RPCs, so the test runs on enough for the steady pace to show.
    const SCHEDULES: usize = 500;
    let server = limited_server(Version::V1_29).await;
    let dir = tempfile::tempdir().unwrap();
    write_project(dir.path(), "limited", SCHEDULES);
    let dir = dir.path().to_str().unwrap();

    let started = tokio::time::Instant::now();
    let output = support::run_binary(&server, &["apply", dir, "--format", "json"]);
    let took = started.elapsed();
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(
        output.status.success(),
        "{stdout}\n{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let json: serde_json::Value = serde_json::from_str(&stdout).unwrap();
    assert_eq!(json["converged"], true, "{stdout}");
    let (total, throttled) = rpcs(&json);
    println!(
        "{SCHEDULES} schedules in {took:.1?} ({:.1}/s), {total} RPCs, {throttled} throttled, pace {}",
        SCHEDULES as f64 / took.as_secs_f64(),
        json["pace"]
    );
    // The limit bit (else this test proves nothing), and the pace kept the
    // throttled answers to at most a tenth of the calls.
    assert!(throttled > 0, "the server never throttled: {stdout}");
    assert!(
        throttled * 10 <= total,
        "{throttled} of {total} RPCs throttled"
    );
    assert_eq!(json["pace"]["throttled"], throttled);

    // Every schedule is there, as the Temporal CLI sees them.
    support::eventually(60, "the listing shows every schedule", || async {
        support::listed_schedules(&server).len() == SCHEDULES
    })
    .await;
    // And the next apply writes nothing.
    let again = support::run_binary(&server, &["apply", dir, "--format", "json"]);
    assert!(again.status.success());
    let again: serde_json::Value = serde_json::from_slice(&again.stdout).unwrap();
    assert_eq!(
        again["plan"]["steps"],
        serde_json::json!([]),
        "{}",
        again["plan"]["steps"]
    );
    server.stop();
}

/// On Temporal 1.29 (schedules are workflows, and a describe is a query to
/// one, answered through the same limit) and 1.32 (the CHASM scheduler).
async fn serve_under_a_10_rps_limit_converges_without_a_failed_attempt(version: Version) {
    const SCHEDULES: usize = 150;
    let server = limited_server(version).await;
    let dir = tempfile::tempdir().unwrap();
    write_project(dir.path(), "served", SCHEDULES);
    let address = format!("127.0.0.1:{}", free_port().unwrap());
    let mut command = std::process::Command::new(env!("CARGO_BIN_EXE_schedule-sync"));
    command
        .arg("serve")
        .arg(dir.path())
        .args(["--listen", &address, "--address", &server.address()])
        .env_remove("TEMPORAL_ADDRESS")
        .env_remove("TEMPORAL_NAMESPACE")
        .env_remove("TEMPORAL_API_KEY")
        .env_remove("SCHEDULE_SYNC_MAX_RPS");
    let serve = Serve::spawn(command, &address);

    let mut states = Vec::new();
    support::eventually(120, "serve syncs", || {
        let (_, health) = serve.get("/healthz");
        let state = health["state"].as_str().unwrap_or_default().to_owned();
        if states.last() != Some(&state) {
            states.push(state.clone());
        }
        async move { state == "synced" }
    })
    .await;
    assert_eq!(states.last().map(String::as_str), Some("synced"));
    assert!(
        !states.iter().any(|s| s == "failed" || s == "retrying"),
        "states seen: {states:?}"
    );

    // /healthz says it was throttled, and at what pace it goes on.
    let (_, health) = serve.get("/healthz");
    assert_eq!(health["throttled"], true, "{health:#}");
    let pace = health["pace"]["requests_per_second"].as_f64().unwrap();
    assert!((1.0..=2.0 * f64::from(LIMIT)).contains(&pace), "{health:#}");
    assert!(health["pace"]["throttled_answers"].as_u64().unwrap() > 0);

    // The metrics show the pace, the throttled answers, and one attempt.
    let metrics = serve.metrics();
    // A series by name and one of its labels (whatever other labels it has).
    let value = |name: &str, label: &str| {
        metrics
            .lines()
            .filter(|line| !line.starts_with('#'))
            .find(|line| line.split(['{', ' ']).next() == Some(name) && line.contains(label))
            .and_then(|line| line.rsplit(' ').next())
            .and_then(|v| v.parse::<f64>().ok())
    };
    assert!(
        value(
            "schedule_sync_pace_requests_per_second",
            "project=\"served\""
        )
        .is_some(),
        "{metrics}"
    );
    assert!(
        value("schedule_sync_throttled_total", "project=\"served\"").unwrap_or(0.0) > 0.0,
        "{metrics}"
    );
    assert_eq!(
        value("schedule_sync_reconcile_total", "outcome=\"success\""),
        Some(1.0),
        "{metrics}"
    );
    assert!(
        !metrics.contains("outcome=\"retryable_error\""),
        "{metrics}"
    );
    support::eventually(60, "the listing shows every schedule", || async {
        support::listed_schedules(&server).len() == SCHEDULES
    })
    .await;
    drop(serve);
    server.stop();
}

on_each_version!(serve_under_a_10_rps_limit_converges_without_a_failed_attempt);
