//! A host axum server embedding schedule-sync: it serves at once, whatever Temporal
//! (TEMPORAL_ADDRESS) is doing, and /readyz turns 200 once examples/billing is synced.
use axum::routing::get;
use schedule_sync::connection::{Overrides, Settings};
use schedule_sync::runtime::Reconciler;
use tokio_util::sync::CancellationToken;

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let shutdown = CancellationToken::new();
    let sync = Reconciler::temporal(Settings::load(&Overrides::default())?)
        .spawn_from("examples/billing".into(), shutdown.child_token());
    let app = axum::Router::new()
        .route("/", get(|| async { "the host's own routes" }))
        .merge(schedule_sync::probes::router(sync.clone()));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:3000").await?;
    let stop = shutdown.clone();
    tokio::spawn(async move { tokio::signal::ctrl_c().await.map(|()| stop.cancel()) });
    axum::serve(listener, app)
        .with_graceful_shutdown(shutdown.cancelled_owned())
        .await?;
    sync.shutdown().await;
    Ok(())
}
