//! A local Temporal server on free loopback ports with a throwaway SQLite
//! database, for development and tests: the `temporal` CLI's dev server
//! (`temporal server start-dev`, Temporal 1.29 with CLI v1.5.1), or a Temporal
//! server binary (1.32) with the CHASM scheduler making new schedules
//! ([`ServerKind`]).
//!
//! The server runs under a small shell watchdog that stops it as soon as this
//! process closes the watchdog's standard input, which the OS does when the
//! process ends, so a test process that crashes or is killed leaves no server
//! behind. The watchdog itself exits when the server does.

use std::collections::HashMap;
use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdin, Command, Stdio};
use std::time::Duration;

use crate::connection::{ConnectionError, Settings};
use crate::store::FINGERPRINT_ATTRIBUTE;

/// The environment variable that names the `temporal` binary to use.
pub const CLI_ENV: &str = "TEMPORAL_CLI";

/// The environment variable that names the `temporal-server` binary (Temporal
/// server 1.32) to use.
pub const SERVER_ENV: &str = "TEMPORAL_SERVER";

/// Which Temporal server runs.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ServerKind {
    /// The `temporal` CLI's dev server, `temporal server start-dev`. CLI
    /// v1.5.1 runs Temporal server 1.29.1, whose schedules are workflows.
    CliDevServer,
    /// A Temporal server binary (`go.temporal.io/server/cmd/server`, 1.32.2
    /// as `scripts/install-temporal-server.sh` builds it; see
    /// [`find_server`]) on SQLite, with the dynamic config that makes every
    /// new schedule on the CHASM scheduler. Nothing is made for it at start:
    /// the namespaces and search attributes are registered through its API.
    Server(PathBuf),
}

/// How to start the dev server.
#[derive(Clone, Debug)]
pub struct DevServerOptions {
    /// The `temporal` binary: it runs [`ServerKind::CliDevServer`], and the
    /// tests read state back with it whatever the server.
    pub cli: PathBuf,
    /// Which server runs.
    pub server: ServerKind,
    /// For [`ServerKind::Server`]: whether new schedules are made on the
    /// CHASM scheduler (the default here) or, as Temporal 1.32 does unless
    /// told otherwise, as workflows.
    pub chasm_scheduler: bool,
    /// A namespace to create besides `default`, if any.
    pub namespace: Option<String>,
    /// Search attributes to register, as (name, type).
    pub search_attributes: Vec<(String, String)>,
    /// How long the server may take to answer.
    pub startup_timeout: Duration,
    /// The gRPC port; `None` picks a free one.
    pub port: Option<u16>,
    /// Dynamic config values, as (key, value): for example
    /// `("frontend.namespaceRPS", "10")` limits each namespace to 10
    /// requests per second. Passed as `--dynamic-config-value` to the CLI's
    /// dev server, written into the dynamic config file of a server binary.
    pub dynamic_config: Vec<(String, String)>,
}

impl DevServerOptions {
    /// Options for `cli`, with the fingerprint search attribute registered.
    pub fn new(cli: PathBuf) -> Self {
        DevServerOptions {
            cli,
            server: ServerKind::CliDevServer,
            chasm_scheduler: true,
            namespace: None,
            search_attributes: vec![(FINGERPRINT_ATTRIBUTE.to_owned(), "Keyword".to_owned())],
            startup_timeout: Duration::from_secs(60),
            port: None,
            dynamic_config: Vec::new(),
        }
    }
}

/// Finds the `temporal` binary: `$TEMPORAL_CLI`, then the cache folder that
/// `scripts/install-temporal-cli.sh` fills, then `PATH`.
pub fn find_cli() -> Option<PathBuf> {
    if let Some(path) = std::env::var_os(CLI_ENV) {
        return Some(PathBuf::from(path));
    }
    cached("temporal-cli", "bin/temporal").or_else(|| {
        std::env::var_os("PATH").and_then(|paths| {
            std::env::split_paths(&paths)
                .map(|dir| dir.join("temporal"))
                .find(|p| p.is_file())
        })
    })
}

/// Finds the `temporal-server` binary (Temporal server 1.32): `$TEMPORAL_SERVER`,
/// then the cache folder that `scripts/install-temporal-server.sh` fills.
pub fn find_server() -> Option<PathBuf> {
    if let Some(path) = std::env::var_os(SERVER_ENV) {
        return Some(PathBuf::from(path));
    }
    cached("temporal-server", "bin/temporal-server")
}

/// The newest `<cache>/<tool>/<version>/<binary>` that exists, where the cache
/// is `$SCHEDULE_SYNC_CACHE`, else `$XDG_CACHE_HOME/schedule-sync`, else
/// `~/.cache/schedule-sync`, as the install scripts fill it.
fn cached(tool: &str, binary: &str) -> Option<PathBuf> {
    let cache = std::env::var_os("SCHEDULE_SYNC_CACHE")
        .map(PathBuf::from)
        .or_else(|| {
            std::env::var_os("XDG_CACHE_HOME").map(|d| PathBuf::from(d).join("schedule-sync"))
        })
        .or_else(|| {
            std::env::var_os("HOME").map(|d| PathBuf::from(d).join(".cache/schedule-sync"))
        })?;
    let versions = std::fs::read_dir(cache.join(tool)).ok()?;
    let mut found: Vec<PathBuf> = versions
        .filter_map(Result::ok)
        .map(|v| v.path().join(binary))
        .filter(|p| p.is_file())
        .collect();
    found.sort();
    found.pop()
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

/// Starts the watchdog and the server on `port` with its database in `dir`
/// (and, for [`ServerKind::Server`], its configuration, which
/// [`write_server_config`] put there).
fn spawn(options: &DevServerOptions, dir: &Path, port: u16) -> Result<Child, DevServerError> {
    let mut command = Command::new("sh");
    command.arg("-c").arg(WATCHDOG);
    let binary = match &options.server {
        ServerKind::CliDevServer => {
            command
                .arg(&options.cli)
                .args(["server", "start-dev", "--headless", "--ip", "127.0.0.1"])
                .args(["--port", &port.to_string()])
                .arg("--db-filename")
                .arg(dir.join("temporal.db"))
                .args(["--log-level", "error"]);
            for (name, kind) in &options.search_attributes {
                command
                    .arg("--search-attribute")
                    .arg(format!("{name}={kind}"));
            }
            if let Some(namespace) = &options.namespace {
                command.args(["--namespace", namespace]);
            }
            for (key, value) in &options.dynamic_config {
                command
                    .arg("--dynamic-config-value")
                    .arg(format!("{key}={value}"));
            }
            &options.cli
        }
        ServerKind::Server(binary) => {
            command
                .arg(binary)
                .arg("--config-file")
                .arg(dir.join(SERVER_CONFIG))
                .args(["--allow-no-auth", "start"]);
            binary
        }
    };
    command
        .env("SERVER_LOG", dir.join("server.log"))
        .env("SERVER_PID", dir.join("server.pid"))
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .stderr(Stdio::null());
    command.spawn().map_err(|source| DevServerError::Spawn {
        cli: binary.clone(),
        source,
    })
}

/// The configuration file of a [`ServerKind::Server`], in its folder.
const SERVER_CONFIG: &str = "server.yaml";

/// Writes the configuration of a [`ServerKind::Server`] into `dir`: the
/// server's own `development-sqlite-file.yaml` with its database in `dir` (so
/// that [`DevServer::restart`] finds the data again), the frontend on `port`
/// and every other port (the three other services' gRPC ports and the four
/// membership ports) free ones, no metrics or pprof listener, and a dynamic
/// config that puts every new schedule on the CHASM scheduler (`chasm`) or
/// leaves them workflows, with the `extra` dynamic config values after it.
fn write_server_config(
    dir: &Path,
    port: u16,
    chasm: bool,
    extra: &[(String, String)],
) -> std::io::Result<()> {
    let [
        history,
        matching,
        worker,
        frontend_ring,
        history_ring,
        matching_ring,
        worker_ring,
    ] = free_ports()?;
    let database = dir.join("temporal.db");
    let database = database.display();
    let dynamic_config = dir.join("dynamicconfig.yaml");
    let mut values = format!(
        "history.enableCHASMSchedulerCreation:\n  - value: {chasm}\n\
         history.chasmSchedulerCreationRolloutPercent:\n  - value: 100\n"
    );
    for (key, value) in extra {
        values.push_str(&format!("{key}:\n  - value: {value}\n"));
    }
    std::fs::write(&dynamic_config, values)?;
    let datastore = |name: &str| {
        format!(
            "    {name}:\n      sql:\n        pluginName: sqlite\n        \
             databaseName: \"{database}\"\n        connectAddr: localhost\n        \
             connectProtocol: tcp\n        connectAttributes:\n          setup: \"true\"\n          \
             journal_mode: wal\n          synchronous: \"1\"\n        maxConns: 1\n        \
             maxIdleConns: 1\n        maxConnLifetime: 1h\n"
        )
    };
    let service = |name: &str, grpc: u16, ring: u16| {
        format!(
            "  {name}:\n    rpc:\n      grpcPort: {grpc}\n      membershipPort: {ring}\n      \
             bindOnLocalHost: true\n"
        )
    };
    let config = format!(
        "log:\n  stdout: true\n  level: warn\n\
         persistence:\n  defaultStore: sqlite-default\n  visibilityStore: sqlite-visibility\n  \
         numHistoryShards: 1\n  datastores:\n{default}{visibility}\
         global:\n  membership:\n    maxJoinDuration: 30s\n    broadcastAddress: 127.0.0.1\n\
         services:\n{frontend}{history}{matching}{worker}\
         clusterMetadata:\n  enableGlobalNamespace: false\n  failoverVersionIncrement: 10\n  \
         masterClusterName: active\n  currentClusterName: active\n  clusterInformation:\n    \
         active:\n      enabled: true\n      initialFailoverVersion: 1\n      rpcName: frontend\n      \
         rpcAddress: 127.0.0.1:{port}\n\
         dcRedirectionPolicy:\n  policy: noop\n\
         dynamicConfigClient:\n  filepath: \"{dynamic}\"\n  pollInterval: 10s\n",
        default = datastore("sqlite-default"),
        visibility = datastore("sqlite-visibility"),
        frontend = service("frontend", port, frontend_ring),
        history = service("history", history, history_ring),
        matching = service("matching", matching, matching_ring),
        worker = service("worker", worker, worker_ring),
        dynamic = dynamic_config.display(),
    );
    std::fs::write(dir.join(SERVER_CONFIG), config)
}

/// `N` distinct free loopback ports: each is held until all are picked.
fn free_ports<const N: usize>() -> std::io::Result<[u16; N]> {
    let listeners = (0..N)
        .map(|_| std::net::TcpListener::bind(("127.0.0.1", 0)))
        .collect::<std::io::Result<Vec<_>>>()?;
    let mut ports = [0; N];
    for (port, listener) in ports.iter_mut().zip(&listeners) {
        *port = listener.local_addr()?.port();
    }
    Ok(ports)
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
        if let ServerKind::Server(_) = options.server {
            write_server_config(
                dir.path(),
                port,
                options.chasm_scheduler,
                &options.dynamic_config,
            )?;
        }
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
    /// [`DevServer::kill`].
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
            // starts. A server of its own has the namespaces and search
            // attributes registered first, which it then takes a moment to
            // know in every part.
            let last = match settings.connect(Duration::from_secs(2)).await {
                Ok(client) => match self.registered_and_taking_workflows(&client).await {
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

    /// For a [`ServerKind::Server`], registers the namespaces and the search
    /// attributes (each a no-op once done); then lists schedules and starts
    /// (then ends) a workflow in the namespace with every keyword search
    /// attribute set: what the tests do first.
    async fn registered_and_taking_workflows(
        &self,
        client: &temporalio_client::Client,
    ) -> Result<(), tonic::Status> {
        if let ServerKind::Server(_) = self.options.server {
            self.register(client).await?;
        }
        self.takes_a_workflow(client).await
    }

    /// Registers `default`, the namespace asked for, and the search
    /// attributes in each: what the CLI's dev server makes before it starts.
    async fn register(&self, client: &temporalio_client::Client) -> Result<(), tonic::Status> {
        use temporalio_common::protos::temporal::api::enums::v1::IndexedValueType;
        use temporalio_common::protos::temporal::api::operatorservice::v1::AddSearchAttributesRequest;
        use temporalio_common::protos::temporal::api::workflowservice::v1::RegisterNamespaceRequest;
        let mut namespaces = vec!["default".to_owned()];
        namespaces.extend(self.options.namespace.clone());
        namespaces.dedup();
        let mut attributes = HashMap::new();
        for (name, kind) in &self.options.search_attributes {
            let type_name = match kind.as_str() {
                "KeywordList" => "INDEXED_VALUE_TYPE_KEYWORD_LIST".to_owned(),
                other => format!("INDEXED_VALUE_TYPE_{}", other.to_uppercase()),
            };
            let Some(value_type) = IndexedValueType::from_str_name(&type_name) else {
                return Err(tonic::Status::invalid_argument(format!(
                    "unknown search attribute type {kind} of {name}"
                )));
            };
            attributes.insert(name.clone(), value_type as i32);
        }
        let mut service = client.connection().workflow_service();
        let mut operator = client.connection().operator_service();
        for namespace in namespaces {
            let registered = service
                .register_namespace(tonic::Request::new(RegisterNamespaceRequest {
                    namespace: namespace.clone(),
                    workflow_execution_retention_period: Some(prost_wkt_types::Duration {
                        seconds: 24 * 3600,
                        nanos: 0,
                    }),
                    ..Default::default()
                }))
                .await;
            match registered {
                Err(status) if status.code() != tonic::Code::AlreadyExists => return Err(status),
                _ => {}
            }
            if !attributes.is_empty() {
                // An attribute that exists already is skipped.
                operator
                    .add_search_attributes(tonic::Request::new(AddSearchAttributesRequest {
                        search_attributes: attributes.clone(),
                        namespace,
                    }))
                    .await?;
            }
        }
        Ok(())
    }

    /// Lists schedules and starts (then ends) a workflow in the namespace,
    /// with every keyword search attribute set.
    async fn takes_a_workflow(
        &self,
        client: &temporalio_client::Client,
    ) -> Result<(), tonic::Status> {
        use temporalio_common::protos::temporal::api::common::v1::{
            SearchAttributes, WorkflowExecution, WorkflowType,
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
        // A search attribute just registered may not be known everywhere yet.
        let keywords = self
            .options
            .search_attributes
            .iter()
            .filter(|(_, kind)| kind == "Keyword")
            .map(|(name, _)| (name.clone(), crate::spec::json_payload(&"probe".into())))
            .collect();
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
                search_attributes: Some(SearchAttributes {
                    indexed_fields: keywords,
                }),
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
