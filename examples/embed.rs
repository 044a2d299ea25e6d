// A host server that embeds schedule-sync with the library's default
// features only. It serves its own routes at once, whatever Temporal is
// doing; its readiness waits for the first sync of examples/billing; SIGHUP
// reloads the project; SIGTERM (or Ctrl-C) turns readiness off at once,
// drains the HTTP server, then stops the reconciler.
//
//     TEMPORAL_ADDRESS=127.0.0.1:7233 cargo run --example embed
//
// With the `http` feature, `schedule_sync::probes::router(handle)` gives
// ready-made /livez, /readyz, /healthz and /schedules to merge instead.

use std::path::PathBuf;

use axum::Router;
use axum::extract::State;
use axum::http::StatusCode;
use axum::routing::get;
use schedule_sync::connection::{DEFAULT_CONNECT_TIMEOUT, Overrides, Settings};
use schedule_sync::runtime::{Options, Reconciler, ReconcilerHandle, TemporalConnector};
use tokio::signal::unix::{SignalKind, signal};
use tokio_util::sync::CancellationToken;

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

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let project = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("examples/billing");
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
        .with_state(sync.clone());
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
