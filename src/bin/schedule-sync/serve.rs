//! `schedule-sync serve`: the reference server. It installs what the library
//! never does (the Prometheus recorder, the signal handlers), starts one
//! reconciler per project folder in the background, serves the probes of
//! all of them and `/metrics`, and shuts down cleanly on SIGTERM or SIGINT;
//! SIGHUP reloads every project.

use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::routing::get;
use metrics_exporter_prometheus::{Matcher, PrometheusBuilder, PrometheusHandle};
use schedule_sync::connection::{DEFAULT_CONNECT_TIMEOUT, Overrides, Settings};
use schedule_sync::runtime::{Options, Reconciler, ReconcilerHandle, TemporalConnector};
use tokio::signal::unix::{SignalKind, signal};
use tokio::sync::Semaphore;
use tokio_util::sync::CancellationToken;

use crate::output::{self, Stream, errln};

/// What `serve` was asked to do.
pub struct ServeArgs {
    /// The project folders, one reconciler each.
    pub dirs: Vec<PathBuf>,
    /// Where to listen.
    pub listen: String,
    /// Where Temporal is.
    pub overrides: Overrides,
    /// The reconciler's options.
    pub options: Options,
    /// Serve without a reconciler (to measure what it costs at startup).
    pub no_reconciler: bool,
    /// The most HTTP connections open at once.
    pub max_connections: usize,
}

/// How long a client may take to send a request's headers.
pub const HEADER_READ_TIMEOUT: Duration = Duration::from_secs(5);
/// How long one HTTP connection may stay open; a keep-alive client then
/// reconnects.
const CONNECTION_LIFETIME: Duration = Duration::from_secs(60);
/// How long a closing connection may take to finish its response.
const DRAIN_TIMEOUT: Duration = Duration::from_secs(5);

/// Runs the server until SIGTERM or SIGINT; exit 0 after a clean shutdown.
pub fn serve(args: ServeArgs) -> ExitCode {
    let runtime = match tokio::runtime::Runtime::new() {
        Ok(runtime) => runtime,
        Err(e) => {
            errln!("cannot start the async runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    match runtime.block_on(run(args)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            errln!("error: {error:#}");
            ExitCode::FAILURE
        }
    }
}

async fn run(args: ServeArgs) -> anyhow::Result<()> {
    let metrics = PrometheusBuilder::new()
        .set_buckets_for_metric(
            Matcher::Full(schedule_sync::telemetry::RECONCILE_DURATION.to_owned()),
            &[
                0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 120.0, 300.0,
            ],
        )?
        .install_recorder()?;
    let listener = tokio::net::TcpListener::bind(&args.listen).await?;
    let address = listener.local_addr()?;

    let shutdown = CancellationToken::new();
    let grace = args.options.shutdown_timeout;
    let mut seen = std::collections::BTreeSet::new();
    for dir in &args.dirs {
        let real = dir.canonicalize().unwrap_or_else(|_| dir.clone());
        if !seen.insert(real) {
            anyhow::bail!("{} is named twice", dir.display());
        }
    }
    let (app, handles) = if args.no_reconciler {
        let app = Router::new().route("/healthz", get(|| async { "{\"state\":\"off\"}" }));
        (app, Vec::new())
    } else {
        // Each project loads inside its reconciler's task: the probes answer
        // at once, however large it is.
        let handles: Vec<ReconcilerHandle> = args
            .dirs
            .iter()
            .map(|dir| {
                let settings = connection_settings(dir, &args)?;
                let connector = TemporalConnector::from_loaded(settings, DEFAULT_CONNECT_TIMEOUT);
                Ok(Reconciler::new(connector, args.options.clone())
                    .spawn_from(dir.clone(), shutdown.clone()))
            })
            .collect::<anyhow::Result<_>>()?;
        (schedule_sync::probes::router_for(handles.clone()), handles)
    };
    tokio::spawn(upkeep(metrics.clone(), shutdown.clone()));
    let app = app.route("/metrics", get(move || render(metrics.clone())));

    // Nobody reading standard output (a closed pipe) must not stop the server.
    let folders: Vec<String> = args.dirs.iter().map(|d| d.display().to_string()).collect();
    let mut urls = format!(
        "schedule-sync is serving {} on http://{address}\n",
        folders.join(", ")
    );
    for path in ["livez", "readyz", "healthz", "schedules", "metrics"] {
        urls.push_str(&format!("  http://{address}/{path}\n"));
    }
    output::write(Stream::Out, urls.as_bytes());
    let reloads = handles
        .iter()
        .cloned()
        .zip(args.dirs.iter().cloned())
        .collect();
    tokio::spawn(signals(shutdown.clone(), reloads));

    let server = tokio::spawn(serve_http(
        listener,
        app,
        args.max_connections.max(1),
        shutdown.clone(),
    ));
    shutdown.cancelled().await;
    tracing::info!("shutting down");
    // The reconciler and the open HTTP connections drain side by side, within
    // one grace period, so that the whole shutdown fits in it.
    let deadline = tokio::time::Instant::now() + grace;
    let reconciler = futures_util::future::join_all(handles.iter().map(ReconcilerHandle::join));
    let (_, http) = tokio::join!(reconciler, tokio::time::timeout_at(deadline, server));
    match http {
        Ok(result) => result?,
        Err(_) => tracing::warn!(?grace, "HTTP connections still open were dropped"),
    }
    tracing::info!("stopped");
    Ok(())
}

/// The Temporal connection of the project in `dir`: the selected
/// environment's (each project folder names its own), else Temporal's own
/// settings. Settings that cannot be read do not stop the server: the
/// reconciler reports them as a fatal error in /healthz and the metrics. An
/// environment the project does not declare does stop it.
fn connection_settings(
    dir: &std::path::Path,
    args: &ServeArgs,
) -> anyhow::Result<Result<Settings, schedule_sync::connection::ConnectionError>> {
    let settings = match schedule_sync::project::environments(dir) {
        // An unreadable project.yaml is the reconciler's to report.
        Err(_) => Settings::load(&args.overrides),
        Ok(environments) => {
            let name = args.options.environment.as_deref();
            match schedule_sync::project::select(&environments, name)
                .map_err(|message| anyhow::anyhow!("{}: {message}", dir.display()))?
            {
                Some(environment) => {
                    tracing::info!(
                        project = %dir.display(),
                        environment = %environment.name,
                        namespace = %environment.namespace,
                        "serving one environment of the project"
                    );
                    Settings::for_environment(environment, &args.overrides)
                }
                None => Settings::load(&args.overrides),
            }
        }
    };
    if let Err(error) = &settings {
        tracing::error!(project = %dir.display(), %error, "the Temporal connection settings are unusable");
    }
    Ok(settings)
}

/// Serves `app` on `listener` until `shutdown`, then lets the open
/// connections finish. A client gets [`HEADER_READ_TIMEOUT`] to send its
/// headers and [`CONNECTION_LIFETIME`] in all; beyond `max_connections` open
/// at once, new ones wait in the listen queue. So slow or idle clients cannot
/// use up the host's sockets or starve the probes.
async fn serve_http(
    listener: tokio::net::TcpListener,
    app: Router,
    max_connections: usize,
    shutdown: CancellationToken,
) {
    use hyper_util::rt::{TokioIo, TokioTimer};
    use hyper_util::service::TowerToHyperService;

    let slots = Arc::new(Semaphore::new(max_connections));
    let mut connections = tokio::task::JoinSet::new();
    loop {
        let slot = tokio::select! {
            () = shutdown.cancelled() => break,
            slot = slots.clone().acquire_owned() => match slot {
                Ok(slot) => slot,
                Err(_) => break,
            },
        };
        let stream = tokio::select! {
            () = shutdown.cancelled() => break,
            accepted = listener.accept() => match accepted {
                Ok((stream, _)) => stream,
                Err(error) => {
                    // Out of file descriptors, say: wait a little, go on.
                    tracing::warn!(%error, "cannot accept an HTTP connection");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            },
        };
        let service = TowerToHyperService::new(app.clone());
        let shutdown = shutdown.clone();
        connections.spawn(async move {
            let _slot = slot;
            let mut builder = hyper::server::conn::http1::Builder::new();
            builder
                .timer(TokioTimer::new())
                .header_read_timeout(HEADER_READ_TIMEOUT);
            let connection = builder.serve_connection(TokioIo::new(stream), service);
            tokio::pin!(connection);
            let lifetime = tokio::time::sleep(CONNECTION_LIFETIME);
            tokio::pin!(lifetime);
            // Once closing, the response in flight gets a few seconds: a
            // client that never reads must not hold its slot for ever.
            let drained = tokio::time::sleep(CONNECTION_LIFETIME);
            tokio::pin!(drained);
            let mut closing = false;
            loop {
                tokio::select! {
                    ended = connection.as_mut() => {
                        if let Err(error) = ended {
                            tracing::debug!(%error, "an HTTP connection ended with an error");
                        }
                        break;
                    }
                    () = shutdown.cancelled(), if !closing => {
                        closing = true;
                        connection.as_mut().graceful_shutdown();
                        drained.as_mut().reset(tokio::time::Instant::now() + DRAIN_TIMEOUT);
                    }
                    () = &mut lifetime, if !closing => {
                        closing = true;
                        connection.as_mut().graceful_shutdown();
                        drained.as_mut().reset(tokio::time::Instant::now() + DRAIN_TIMEOUT);
                    }
                    () = &mut drained, if closing => break,
                }
            }
        });
        while connections.try_join_next().is_some() {}
    }
    // New connections are refused from now on (a probe fails at once instead
    // of waiting in the queue); those open finish.
    drop(listener);
    while connections.join_next().await.is_some() {}
}

async fn render(metrics: PrometheusHandle) -> String {
    metrics.render()
}

/// Drains the histograms' buckets now and then, as the recorder needs when
/// it is installed without its own HTTP listener.
async fn upkeep(metrics: PrometheusHandle, shutdown: CancellationToken) {
    let mut every = tokio::time::interval(UPKEEP_EVERY);
    loop {
        tokio::select! {
            () = shutdown.cancelled() => return,
            _ = every.tick() => metrics.run_upkeep(),
        }
    }
}

/// SIGTERM and SIGINT shut down; SIGHUP reloads each project from its folder.
async fn signals(shutdown: CancellationToken, reloads: Vec<(ReconcilerHandle, PathBuf)>) {
    let (Ok(mut term), Ok(mut int), Ok(mut hup)) = (
        signal(SignalKind::terminate()),
        signal(SignalKind::interrupt()),
        signal(SignalKind::hangup()),
    ) else {
        tracing::error!("cannot install the signal handlers");
        return;
    };
    loop {
        tokio::select! {
            _ = term.recv() => break,
            _ = int.recv() => break,
            _ = hup.recv() => {
                for (handle, dir) in &reloads {
                    let folder = dir.display();
                    match handle.reload_from(dir.clone()).await {
                        Ok(()) => tracing::info!(%folder, "SIGHUP: the project was reloaded"),
                        Err(error) => tracing::error!(%folder, %error, "SIGHUP: the project was refused; the last good one stays"),
                    }
                }
            }
        }
    }
    shutdown.cancel();
}

/// How often the recorder's upkeep runs.
const UPKEEP_EVERY: Duration = Duration::from_secs(5);
