//! A local Temporal dev server (`temporal server start-dev`) on a free loopback
//! port with a throwaway SQLite database, for development and tests.
//!
//! The server runs under a small shell watchdog that stops it as soon as this
//! process closes the watchdog's standard input, which the OS does when the
//! process ends, so a test process that crashes or is killed leaves no server
//! behind. The watchdog itself exits when the server does.

use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdin, Command, Stdio};
use std::time::Duration;

use crate::connection::{ConnectionError, Settings};
use crate::store::FINGERPRINT_ATTRIBUTE;

/// The environment variable that names the `temporal` binary to use.
pub const CLI_ENV: &str = "TEMPORAL_CLI";

/// How to start the dev server.
#[derive(Clone, Debug)]
pub struct DevServerOptions {
    /// The `temporal` binary.
    pub cli: PathBuf,
    /// A namespace to create besides `default`, if any.
    pub namespace: Option<String>,
    /// Search attributes to register, as (name, type).
    pub search_attributes: Vec<(String, String)>,
    /// How long the server may take to answer.
    pub startup_timeout: Duration,
    /// The gRPC port; `None` picks a free one.
    pub port: Option<u16>,
}

impl DevServerOptions {
    /// Options for `cli`, with the fingerprint search attribute registered.
    pub fn new(cli: PathBuf) -> Self {
        DevServerOptions {
            cli,
            namespace: None,
            search_attributes: vec![(FINGERPRINT_ATTRIBUTE.to_owned(), "Keyword".to_owned())],
            startup_timeout: Duration::from_secs(60),
            port: None,
        }
    }
}

/// Finds the `temporal` binary: `$TEMPORAL_CLI`, then the cache folder that
/// `scripts/install-temporal-cli.sh` fills, then `PATH`.
pub fn find_cli() -> Option<PathBuf> {
    if let Some(path) = std::env::var_os(CLI_ENV) {
        return Some(PathBuf::from(path));
    }
    let cache = std::env::var_os("SCHEDULE_SYNC_CACHE")
        .map(PathBuf::from)
        .or_else(|| {
            std::env::var_os("XDG_CACHE_HOME").map(|d| PathBuf::from(d).join("schedule-sync"))
        })
        .or_else(|| {
            std::env::var_os("HOME").map(|d| PathBuf::from(d).join(".cache/schedule-sync"))
        });
    if let Some(cache) = cache
        && let Ok(versions) = std::fs::read_dir(cache.join("temporal-cli"))
    {
        let mut found: Vec<PathBuf> = versions
            .filter_map(Result::ok)
            .map(|v| v.path().join("bin/temporal"))
            .filter(|p| p.is_file())
            .collect();
        found.sort();
        if let Some(newest) = found.pop() {
            return Some(newest);
        }
    }
    std::env::var_os("PATH").and_then(|paths| {
        std::env::split_paths(&paths)
            .map(|dir| dir.join("temporal"))
            .find(|p| p.is_file())
    })
}

/// Why the dev server did not come up.
#[derive(Debug, thiserror::Error)]
pub enum DevServerError {
    /// The binary could not be started.
    #[error("cannot start {cli}: {source}")]
    Spawn {
        /// The binary.
        cli: PathBuf,
        /// The OS error.
        source: std::io::Error,
    },
    /// The server stopped before it answered.
    #[error("the dev server exited during startup ({status}); its log ends with:\n{log}")]
    Exited {
        /// How it exited.
        status: std::process::ExitStatus,
        /// The end of the server's log.
        log: String,
    },
    /// The server did not answer in time.
    #[error("the dev server did not answer within {after:?}: {last}; its log ends with:\n{log}")]
    Timeout {
        /// The startup timeout.
        after: Duration,
        /// The last connection error.
        last: ConnectionError,
        /// The end of the server's log.
        log: String,
    },
    /// A local resource (port, folder) was not available.
    #[error("cannot prepare the dev server: {0}")]
    Io(#[from] std::io::Error),
}

/// A running dev server; dropping it stops the server and deletes its database.
#[derive(Debug)]
pub struct DevServer {
    watchdog: Child,
    stdin: Option<ChildStdin>,
    port: u16,
    namespace: String,
    cli: PathBuf,
    dir: tempfile::TempDir,
    options: DevServerOptions,
}

/// Starts the watchdog and the server on `port` with its database in `dir`.
fn spawn(options: &DevServerOptions, dir: &Path, port: u16) -> Result<Child, DevServerError> {
    let mut command = Command::new("sh");
    command
        .arg("-c")
        .arg(WATCHDOG)
        .arg(&options.cli)
        .args(["server", "start-dev", "--headless", "--ip", "127.0.0.1"])
        .args(["--port", &port.to_string()])
        .arg("--db-filename")
        .arg(dir.join("temporal.db"))
        .args(["--log-level", "error"])
        .env("SERVER_LOG", dir.join("server.log"))
        .env("SERVER_PID", dir.join("server.pid"))
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .stderr(Stdio::null());
    for (name, kind) in &options.search_attributes {
        command
            .arg("--search-attribute")
            .arg(format!("{name}={kind}"));
    }
    if let Some(namespace) = &options.namespace {
        command.args(["--namespace", namespace]);
    }
    command.spawn().map_err(|source| DevServerError::Spawn {
        cli: options.cli.clone(),
        source,
    })
}

/// Picks a free loopback port by binding port 0 and letting it go.
pub fn free_port() -> std::io::Result<u16> {
    let listener = std::net::TcpListener::bind(("127.0.0.1", 0))?;
    Ok(listener.local_addr()?.port())
}

// A background list reads /dev/null unless told otherwise, so the watchdog's
// own input is kept on descriptor 3 for the `cat` that waits for its end.
const WATCHDOG: &str = r#"
exec 3<&0
"$0" "$@" </dev/null 3<&- >"$SERVER_LOG" 2>&1 &
server=$!
echo "$server" >"$SERVER_PID"
{ cat <&3 >/dev/null; kill "$server" 2>/dev/null; } &
exec 3<&-
wait "$server"
"#;

impl DevServer {
    /// Starts a dev server and waits until it answers.
    ///
    /// # Errors
    ///
    /// A [`DevServerError`] with the end of the server's log when it fails.
    pub async fn start(options: DevServerOptions) -> Result<Self, DevServerError> {
        // A free port can be taken by another process between the moment it
        // is picked and the moment the server binds it (tests start many
        // servers at once): then the server exits at once, and another port
        // is tried.
        let mut tries = 0;
        loop {
            tries += 1;
            match Self::start_once(&options).await {
                Err(DevServerError::Exited { .. }) if options.port.is_none() && tries < 3 => {}
                other => return other,
            }
        }
    }

    async fn start_once(options: &DevServerOptions) -> Result<Self, DevServerError> {
        let dir = tempfile::Builder::new()
            .prefix("schedule-sync-temporal-")
            .tempdir()?;
        let port = match options.port {
            Some(port) => port,
            None => free_port()?,
        };
        let watchdog = spawn(options, dir.path(), port)?;
        let mut server = DevServer {
            watchdog,
            stdin: None,
            port,
            namespace: options
                .namespace
                .clone()
                .unwrap_or_else(|| "default".to_owned()),
            cli: options.cli.clone(),
            dir,
            options: options.clone(),
        };
        server.stdin = server.watchdog.stdin.take();
        server.wait_until_ready(options.startup_timeout).await?;
        Ok(server)
    }

    /// Kills the server at once with SIGKILL, as a crash would: no clean
    /// shutdown, connections dropped. Its database stays for
    /// [`DevServer::restart`].
    pub fn kill(&mut self) {
        if let Ok(pid) = std::fs::read_to_string(self.dir.path().join("server.pid")) {
            let _ = Command::new("kill").args(["-KILL", pid.trim()]).status();
        }
        self.shut_down();
    }

    /// Starts the server again on the same port and database, after
    /// [`DevServer::kill`] or [`DevServer::stop_keeping_data`].
    ///
    /// # Errors
    ///
    /// A [`DevServerError`] when it does not come up.
    pub async fn restart(&mut self) -> Result<(), DevServerError> {
        self.shut_down();
        self.watchdog = spawn(&self.options, self.dir.path(), self.port)?;
        self.stdin = self.watchdog.stdin.take();
        self.wait_until_ready(self.options.startup_timeout).await
    }

    async fn wait_until_ready(&mut self, timeout: Duration) -> Result<(), DevServerError> {
        let deadline = tokio::time::Instant::now() + timeout;
        let settings = self.settings();
        loop {
            // Ready means the namespace takes a workflow, not only that the
            // frontend accepts connections: right after start, parts of the
            // server may not know the namespace yet ("Namespace default is
            // not found"), for a listing or for the workflow a schedule
            // starts.
            let last = match settings.connect(Duration::from_secs(2)).await {
                Ok(client) => match self.takes_a_workflow(&client).await {
                    Ok(()) => return Ok(()),
                    Err(status) => ConnectionError::Connect {
                        address: self.address(),
                        message: status.message().to_owned(),
                    },
                },
                Err(e) => e,
            };
            if let Some(status) = self.watchdog.try_wait()? {
                return Err(DevServerError::Exited {
                    status,
                    log: self.log_tail(),
                });
            }
            if tokio::time::Instant::now() >= deadline {
                return Err(DevServerError::Timeout {
                    after: timeout,
                    last,
                    log: self.log_tail(),
                });
            }
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    }

    /// Lists schedules and starts (then ends) a workflow in the namespace:
    /// what the tests do first.
    async fn takes_a_workflow(
        &self,
        client: &temporalio_client::Client,
    ) -> Result<(), tonic::Status> {
        use temporalio_common::protos::temporal::api::common::v1::{
            WorkflowExecution, WorkflowType,
        };
        use temporalio_common::protos::temporal::api::taskqueue::v1::TaskQueue;
        use temporalio_common::protos::temporal::api::workflowservice::v1::{
            ListSchedulesRequest, StartWorkflowExecutionRequest, TerminateWorkflowExecutionRequest,
        };
        let mut service = client.connection().workflow_service();
        service
            .list_schedules(tonic::Request::new(ListSchedulesRequest {
                namespace: self.namespace.clone(),
                maximum_page_size: 1,
                ..Default::default()
            }))
            .await?;
        let workflow_id = format!("dev-server-readiness-{:016x}", fastrand::u64(..));
        service
            .start_workflow_execution(tonic::Request::new(StartWorkflowExecutionRequest {
                namespace: self.namespace.clone(),
                workflow_id: workflow_id.clone(),
                workflow_type: Some(WorkflowType {
                    name: "ReadinessProbe".to_owned(),
                }),
                task_queue: Some(TaskQueue {
                    name: "dev-server-readiness".to_owned(),
                    ..Default::default()
                }),
                request_id: workflow_id.clone(),
                ..Default::default()
            }))
            .await?;
        service
            .terminate_workflow_execution(tonic::Request::new(TerminateWorkflowExecutionRequest {
                namespace: self.namespace.clone(),
                workflow_execution: Some(WorkflowExecution {
                    workflow_id,
                    ..Default::default()
                }),
                reason: "readiness probe".to_owned(),
                ..Default::default()
            }))
            .await?;
        Ok(())
    }

    /// The last lines of the server's log.
    pub fn log_tail(&self) -> String {
        let mut text = String::new();
        if let Ok(mut file) = std::fs::File::open(self.dir.path().join("server.log")) {
            let _ = file.read_to_string(&mut text);
        }
        let lines: Vec<&str> = text.lines().collect();
        lines[lines.len().saturating_sub(20)..].join("\n")
    }

    /// `127.0.0.1:<port>`.
    pub fn address(&self) -> String {
        format!("127.0.0.1:{}", self.port)
    }

    /// The gRPC port.
    pub fn port(&self) -> u16 {
        self.port
    }

    /// The namespace created for callers (`default` unless one was asked for).
    pub fn namespace(&self) -> &str {
        &self.namespace
    }

    /// The `temporal` binary that runs the server, to read state back with.
    pub fn cli(&self) -> &Path {
        &self.cli
    }

    /// Connection settings for this server.
    pub fn settings(&self) -> Settings {
        Settings::plain(&self.address(), &self.namespace).expect("a loopback address is valid")
    }

    /// Stops the server and waits for it to exit.
    pub fn stop(mut self) {
        self.shut_down();
    }

    fn shut_down(&mut self) {
        // Closing the watchdog's input tells it to stop the server.
        if self.stdin.take().is_some() {
            let _ = self.watchdog.wait();
        }
    }
}

impl Drop for DevServer {
    fn drop(&mut self) {
        self.shut_down();
    }
}
