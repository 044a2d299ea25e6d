//! One project, two environments: the example project applied to two
//! namespaces of one dev server with different overrides, by the commands
//! that `deploy/github/schedule-sync.yml` runs, and read back with the
//! `temporal` CLI.

mod support;

use std::path::Path;
use std::process::{Command, Output};

use schedule_sync::dev_server::{DevServer, DevServerOptions};

const STAGING: &str = "billing-staging";
const PRODUCTION: &str = "billing-production";

/// The binary as the CI workflow runs it: the environment from
/// `SCHEDULE_SYNC_ENV`, the revision from `SCHEDULE_SYNC_REVISION`, the
/// server from `TEMPORAL_ADDRESS`.
fn ci(server: &DevServer, environment: Option<&str>, args: &[&str]) -> Output {
    let mut command = Command::new(env!("CARGO_BIN_EXE_schedule-sync"));
    command
        .args(args)
        .env("TEMPORAL_ADDRESS", server.address())
        .env("SCHEDULE_SYNC_REVISION", "7")
        .env_remove("TEMPORAL_NAMESPACE")
        .env_remove("TEMPORAL_API_KEY")
        .env_remove("TEMPORAL_PROFILE")
        .env_remove("SCHEDULE_SYNC_ENV");
    if let Some(environment) = environment {
        command.env("SCHEDULE_SYNC_ENV", environment);
    }
    command.output().expect("the binary runs")
}

fn temporal(server: &DevServer, namespace: &str, args: &[&str]) -> Output {
    Command::new(server.cli())
        .args(args)
        .args(["--address", &server.address(), "--namespace", namespace])
        .args(["--output", "json"])
        .output()
        .expect("the temporal CLI runs")
}

fn describe(server: &DevServer, namespace: &str, id: &str) -> serde_json::Value {
    let output = temporal(
        server,
        namespace,
        &["schedule", "describe", "--schedule-id", id],
    );
    assert!(
        output.status.success(),
        "describe {id} in {namespace}: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    serde_json::from_slice(&output.stdout).expect("JSON")
}

fn listed(server: &DevServer, namespace: &str) -> Vec<String> {
    let output = temporal(server, namespace, &["schedule", "list"]);
    assert!(output.status.success(), "{output:?}");
    let listed: serde_json::Value = serde_json::from_slice(&output.stdout).expect("JSON");
    let mut ids: Vec<String> = listed
        .as_array()
        .map(|a| {
            a.iter()
                .filter_map(|s| s["scheduleId"].as_str().map(str::to_owned))
                .collect()
        })
        .unwrap_or_default();
    ids.sort();
    ids
}

fn text(output: &Output) -> String {
    format!(
        "exit {:?}\nstdout:\n{}\nstderr:\n{}",
        output.status.code(),
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    )
}

#[tokio::test]
async fn one_project_applies_to_two_namespaces_with_their_overrides() {
    let mut options = DevServerOptions::new(support::temporal_cli());
    options.namespace = Some(STAGING.to_owned());
    let server = support::start(options).await;
    let created = temporal(
        &server,
        PRODUCTION,
        &["operator", "namespace", "create", "--retention", "24h"],
    );
    assert!(created.status.success(), "{}", text(&created));
    support::eventually(60, "the second namespace takes requests", || async {
        temporal(&server, PRODUCTION, &["schedule", "list"])
            .status
            .success()
    })
    .await;

    let example = Path::new(env!("CARGO_MANIFEST_DIR")).join("examples/billing");
    let example = example.to_str().unwrap();

    // Every pull request: validate, then the plan of each environment.
    let validated = ci(&server, None, &["validate", example]);
    assert_eq!(validated.status.code(), Some(0), "{}", text(&validated));
    let stdout = String::from_utf8_lossy(&validated.stdout);
    assert!(
        stdout.contains("(as written and in staging, production)"),
        "{stdout}"
    );
    for environment in ["staging", "production"] {
        let plan = ci(
            &server,
            Some(environment),
            &["plan", example, "--format", "markdown"],
        );
        assert_eq!(plan.status.code(), Some(2), "{}", text(&plan));
        let comment = String::from_utf8_lossy(&plan.stdout);
        assert!(
            comment.starts_with(&format!(
                "### schedule-sync plan: `billing` in `{environment}`"
            )),
            "{comment}"
        );
        assert!(
            comment.contains("#### Create `billing.nightly-report`"),
            "{comment}"
        );
        assert!(comment.contains("Next: "), "{comment}");
    }

    // Every merge: apply to each environment.
    for environment in ["staging", "production"] {
        let applied = ci(&server, Some(environment), &["apply", example]);
        assert_eq!(applied.status.code(), Some(0), "{}", text(&applied));
        let stderr = String::from_utf8_lossy(&applied.stderr);
        assert!(
            stderr.contains(&format!(
                "environment {environment}: applying `billing` in namespace billing-{environment}"
            )),
            "{stderr}"
        );
    }

    // Each namespace holds the project's four schedules and its fence, and
    // nothing of the other.
    let expected = [
        "billing.dunning",
        "billing.invoice-sweep",
        "billing.nightly-report",
        "billing.quarter-close",
        "billing.~writer",
    ];
    for namespace in [STAGING, PRODUCTION] {
        support::eventually(30, "the listing shows the schedules", || async {
            listed(&server, namespace) == expected
        })
        .await;
    }

    // The overrides, read back.
    let staging = describe(&server, STAGING, "billing.nightly-report");
    let production = describe(&server, PRODUCTION, "billing.nightly-report");
    let hour =
        |d: &serde_json::Value| d["schedule"]["spec"]["structuredCalendar"][0]["hour"].clone();
    assert_eq!(hour(&production)[0]["start"], 2, "{production:#}");
    assert_eq!(hour(&production)[0]["end"], 2, "{production:#}");
    assert_eq!(
        hour(&staging)[0]["end"],
        23,
        "hourly in staging: {staging:#}"
    );
    let input = |d: &serde_json::Value| {
        d["schedule"]["action"]["startWorkflow"]["input"]["payloads"][0]["data"].clone()
    };
    // base64 of {"region":"eu-test","formats":["pdf","csv"]}: merged, not
    // replaced (its keys in the file's order, or sorted, as serde_json's
    // features decide).
    let staging_input = input(&staging);
    assert!(
        staging_input == "eyJyZWdpb24iOiJldS10ZXN0IiwiZm9ybWF0cyI6WyJwZGYiLCJjc3YiXX0="
            || staging_input == "eyJmb3JtYXRzIjpbInBkZiIsImNzdiJdLCJyZWdpb24iOiJldS10ZXN0In0=",
        "{staging:#}"
    );
    // base64 of {"region":"eu","formats":["pdf","csv"]}: as written.
    let production_input = input(&production);
    assert!(
        production_input == "eyJyZWdpb24iOiJldSIsImZvcm1hdHMiOlsicGRmIiwiY3N2Il19"
            || production_input == "eyJmb3JtYXRzIjpbInBkZiIsImNzdiJdLCJyZWdpb24iOiJldSJ9",
        "{production:#}"
    );
    let jitter = |d: &serde_json::Value| d["schedule"]["spec"]["jitter"].clone();
    assert_eq!(jitter(&staging), serde_json::Value::Null, "{staging:#}");
    assert_eq!(jitter(&production), "30s", "{production:#}");
    let paused = |namespace: &str, id: &str| {
        describe(&server, namespace, id)["schedule"]["state"]["paused"] == true
    };
    assert!(paused(STAGING, "billing.invoice-sweep"), "off in staging");
    assert!(!paused(PRODUCTION, "billing.invoice-sweep"));
    assert!(paused(STAGING, "billing.dunning"), "paused as written");
    assert!(!paused(PRODUCTION, "billing.dunning"), "on in production");

    // Converged: each environment's plan has nothing left to do.
    for environment in ["staging", "production"] {
        support::eventually(30, "nothing left to do", || async {
            ci(&server, Some(environment), &["plan", example])
                .status
                .code()
                == Some(0)
        })
        .await;
    }
}

#[tokio::test]
async fn an_environment_the_project_does_not_declare_is_refused_before_any_connection() {
    let example = Path::new(env!("CARGO_MANIFEST_DIR")).join("examples/billing");
    let output = Command::new(env!("CARGO_BIN_EXE_schedule-sync"))
        .args(["apply", example.to_str().unwrap(), "--env", "qa"])
        // Nothing listens here: a refusal must come before any connect.
        .args(["--address", "127.0.0.1:9"])
        .env_remove("SCHEDULE_SYNC_ENV")
        .output()
        .expect("the binary runs");
    assert_eq!(output.status.code(), Some(1), "{}", text(&output));
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("declares no environment `qa`"), "{stderr}");
    assert!(stderr.contains("one of staging, production"), "{stderr}");
    assert!(!stderr.contains("cannot reach"), "{stderr}");
}
