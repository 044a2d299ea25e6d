// A host server that embeds schedule-sync with the library's default
// features only. It installs its own Prometheus recorder (before spawning,
// with the reconcile-duration buckets, and with upkeep running) and serves
// /metrics; it serves its own routes at once, whatever Temporal is doing;
// its readiness waits for the first sync of examples/billing; SIGHUP reloads
// the project; SIGTERM (or Ctrl-C) turns readiness off at once, drains the
// HTTP server, then stops the reconciler.
//
//     TEMPORAL_ADDRESS=127.0.0.1:7233 cargo run --example embed
//
// With the `http` feature, `schedule_sync::probes::router(handle)` gives
// ready-made /livez, /readyz, /healthz and /schedules to merge instead.

use std::path::PathBuf;
use std::time::Duration;

use axum::Router;
use axum::extract::State;
use axum::http::StatusCode;
use axum::routing::get;
use metrics_exporter_prometheus::{Matcher, PrometheusBuilder, PrometheusHandle};
use schedule_sync::{
    CancellationToken, DEFAULT_CONNECT_TIMEOUT, Options, Overrides, RECONCILE_DURATION, Reconciler,
    ReconcilerHandle, Settings, TemporalConnector,
};
use tokio::signal::unix::{SignalKind, signal};

/// The host's readiness: its own dependencies, and the schedules in step.
async fn readyz(State(sync): State<ReconcilerHandle>) -> (StatusCode, String) {
    let status = sync.status();
    if sync.is_ready() {
        (StatusCode::OK, "ready\n".to_owned())
    } else {
        let why = status.state.last_error().unwrap_or("not synced yet");
        let message = format!("schedules {}: {why}\n", status.state.name());
        (StatusCode::SERVICE_UNAVAILABLE, message)
    }
}

/// Liveness: false only if the reconciler's task died.
async fn livez(State(sync): State<ReconcilerHandle>) -> StatusCode {
    if sync.is_live() {
        StatusCode::OK
    } else {
        StatusCode::INTERNAL_SERVER_ERROR
    }
}

/// Installs the process's metrics recorder. It must come before the
/// reconciler is spawned: the library records through the `metrics` facade,
/// and what it records before a recorder is installed is lost.
fn install_metrics() -> Result<PrometheusHandle, Box<dyn std::error::Error>> {
    let recorder = PrometheusBuilder::new()
        // Reconciles take from milliseconds (nothing to do) to minutes
        // (thousands of writes): buckets that show both.
        .set_buckets_for_metric(
            Matcher::Full(RECONCILE_DURATION.to_owned()),
            &[
                0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 120.0, 300.0,
            ],
        )?
        .install_recorder()?;
    // Without its own HTTP listener, the recorder needs its upkeep run now
    // and then, or the histograms grow without bound.
    let upkeep = recorder.clone();
    tokio::spawn(async move {
        let mut every = tokio::time::interval(Duration::from_secs(5));
        loop {
            every.tick().await;
            upkeep.run_upkeep();
        }
    });
    Ok(recorder)
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let project = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("examples/billing");
    let metrics = install_metrics()?;
    // The host's token: the reconciler works on a child of it, and never
    // cancels it.
    let shutdown = CancellationToken::new();

    // Settings that cannot be read (a bad TEMPORAL_ADDRESS, say) do not stop
    // the host: the reconciler reports them as Failed, and /readyz says why.
    let settings = Settings::load(&Overrides::default());
    let connector = TemporalConnector::from_loaded(settings, DEFAULT_CONNECT_TIMEOUT);
    let sync = Reconciler::new(connector, Options::default())
        .spawn_from(project.clone(), shutdown.child_token());

    let app = Router::new()
        .route("/", get(|| async { "the host's own routes\n" }))
        .route("/readyz", get(readyz))
        .route("/livez", get(livez))
        .with_state(sync.clone())
        .route(
            "/metrics",
            get(move || std::future::ready(metrics.render())),
        );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:3000").await?;
    println!("listening on http://{}", listener.local_addr()?);

    let mut term = signal(SignalKind::terminate())?;
    let mut hup = signal(SignalKind::hangup())?;
    let signals = {
        let (sync, shutdown) = (sync.clone(), shutdown.clone());
        async move {
            loop {
                tokio::select! {
                    _ = term.recv() => break,
                    _ = tokio::signal::ctrl_c() => break,
                    _ = hup.recv() => {
                        if let Err(refused) = sync.reload_from(project.clone()).await {
                            eprintln!("reload refused, the last good project stays: {refused}");
                        }
                    }
                }
            }
            // Readiness turns false the moment this is cancelled, so the load
            // balancer stops sending traffic while requests drain.
            shutdown.cancel();
        }
    };
    tokio::spawn(signals);

    axum::serve(listener, app)
        .with_graceful_shutdown(shutdown.clone().cancelled_owned())
        .await?;
    // Work in flight gets the reconciler's shutdown timeout, then stops.
    sync.shutdown().await;
    Ok(())
}
