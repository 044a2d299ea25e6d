//! Several projects in one host: two reconcilers of two projects side by
//! side in one process, each with its own metric series (the `project`
//! label), as the host's Prometheus recorder renders them.
//!
//! The recorder is global to the process, so this file holds one test.

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use metrics_exporter_prometheus::PrometheusBuilder;
use schedule_sync::project;
use schedule_sync::runtime::{Options, Reconciler};
use schedule_sync::store::MemoryStore;
use tokio_util::sync::CancellationToken;

fn folder(name: &str, ids: &[&str]) -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("project.yaml"),
        format!("name: {name}\ntask_queue: q\n"),
    )
    .unwrap();
    std::fs::create_dir(dir.path().join("workflows")).unwrap();
    for id in ids {
        std::fs::write(
            dir.path().join(format!("workflows/{id}.yaml")),
            format!("id: {id}\nschedule:\n  cron: \"0 1 * * *\"\n"),
        )
        .unwrap();
    }
    dir
}

fn load(dir: &Path) -> project::Project {
    project::load(dir).unwrap().project
}

/// The value of the series `name{labels}` in `text`, if it is there.
fn value(text: &str, series: &str) -> Option<f64> {
    text.lines()
        .find_map(|line| line.strip_prefix(series)?.strip_prefix(' '))
        .map(|v| v.trim().parse().unwrap())
}

/// Waits (in real time, at most 10 s) until the rendered metrics satisfy
/// `check`, and returns them.
async fn metrics_until(
    render: impl Fn() -> String,
    what: &str,
    check: impl Fn(&str) -> bool,
) -> String {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    loop {
        let text = render();
        if check(&text) {
            return text;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "never {what}:\n{text}"
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

#[tokio::test]
async fn two_reconcilers_in_one_process_keep_separate_metric_series() {
    let recorder = PrometheusBuilder::new().install_recorder().unwrap();
    let render = || recorder.render();
    let (alpha_dir, beta_dir) = (
        folder("alpha", &["a1", "a2"]),
        folder("beta", &["b1", "b2", "b3"]),
    );
    let (alpha_store, beta_store) = (Arc::new(MemoryStore::new()), Arc::new(MemoryStore::new()));
    let host = CancellationToken::new();
    let alpha = Reconciler::new(alpha_store.clone(), Options::default())
        .spawn(load(alpha_dir.path()), host.clone());
    let beta = Reconciler::new(beta_store.clone(), Options::default())
        .spawn_from(beta_dir.path().to_owned(), host.clone());
    alpha.wait_synced().await.unwrap();
    beta.wait_synced().await.unwrap();

    let text = metrics_until(render, "both in sync", |text| {
        value(
            text,
            r#"schedule_sync_schedules{project="alpha",status="in_sync"}"#,
        ) == Some(2.0)
            && value(
                text,
                r#"schedule_sync_schedules{project="beta",status="in_sync"}"#,
            ) == Some(3.0)
    })
    .await;
    for project in ["alpha", "beta"] {
        let synced = format!(r#"schedule_sync_state{{project="{project}",state="synced"}}"#);
        assert_eq!(value(&text, &synced), Some(1.0), "{text}");
        let success =
            format!(r#"schedule_sync_reconcile_total{{project="{project}",outcome="success"}}"#);
        assert_eq!(value(&text, &success), Some(1.0), "{text}");
    }
    // Every series names its project.
    for line in text.lines().filter(|l| l.starts_with("schedule_sync_")) {
        assert!(
            line.contains("project=\""),
            "a series without a project: {line}"
        );
    }

    // A refused reload of beta counts for beta only.
    let broken = tempfile::tempdir().unwrap();
    std::fs::write(broken.path().join("project.yaml"), "name: beta\n").unwrap();
    beta.reload_from(broken.path().to_owned())
        .await
        .unwrap_err();
    // Alpha loses Temporal; beta does not notice.
    alpha_store.fail_next(
        schedule_sync::Rpc::ListSchedules,
        schedule_sync::Code::Unavailable,
        1000,
    );
    alpha.resync().unwrap();
    let text = metrics_until(render, "alpha retrying, beta refused", |text| {
        value(
            text,
            r#"schedule_sync_state{project="alpha",state="retrying"}"#,
        ) == Some(1.0)
            && value(
                text,
                r#"schedule_sync_config_reload_total{project="beta",outcome="invalid"}"#,
            ) == Some(1.0)
    })
    .await;
    assert_eq!(
        value(
            &text,
            r#"schedule_sync_state{project="beta",state="synced"}"#
        ),
        Some(1.0),
        "{text}"
    );
    assert_eq!(
        value(
            &text,
            r#"schedule_sync_state{project="beta",state="retrying"}"#
        ),
        Some(0.0),
        "{text}"
    );
    assert!(
        !text.contains(r#"schedule_sync_config_reload_total{project="alpha""#),
        "{text}"
    );
    assert_eq!(
        value(
            &text,
            r#"schedule_sync_schedules{project="beta",status="in_sync"}"#
        ),
        Some(3.0),
        "{text}"
    );

    host.cancel();
    alpha.join().await;
    beta.join().await;
    for handle in [&alpha, &beta] {
        assert_eq!(
            handle.state(),
            schedule_sync::runtime::lifecycle::State::ShuttingDown
        );
    }
}
