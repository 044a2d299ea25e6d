//! Shared helpers for the integration tests.

#![allow(dead_code)]

pub mod serve;

use std::path::PathBuf;

use schedule_sync::dev_server::{self, DevServer, DevServerOptions, ServerKind};

/// A Temporal server version that the suites run against.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Version {
    /// The `temporal` CLI's dev server (v1.5.1): Temporal 1.29.1, whose
    /// schedules are workflows.
    V1_29,
    /// Temporal 1.32.2 with the CHASM scheduler making new schedules.
    V1_32,
}

/// Runs one test body once per server version, as tests named
/// `v1_29::<name>` and `v1_32::<name>`: each `async fn <name>(version: Version)`
/// in the calling file becomes two tests.
#[macro_export]
macro_rules! on_each_version {
    ($($name:ident),* $(,)?) => {
        mod v1_29 {
            $(
                #[tokio::test]
                async fn $name() {
                    super::$name($crate::support::Version::V1_29).await;
                }
            )*
        }
        mod v1_32 {
            $(
                #[tokio::test]
                async fn $name() {
                    super::$name($crate::support::Version::V1_32).await;
                }
            )*
        }
    };
}

/// The `temporal` binary. A missing binary fails the test: the test command
/// installs it, so its absence is a broken set-up, never a reason to skip.
pub fn temporal_cli() -> PathBuf {
    dev_server::find_cli().unwrap_or_else(|| {
        panic!(
            "no `temporal` binary: run scripts/install-temporal-cli.sh or set {}",
            dev_server::CLI_ENV
        )
    })
}

/// The `temporal-server` binary (Temporal 1.32). A missing binary fails the
/// test, as a missing CLI does.
pub fn temporal_server() -> PathBuf {
    dev_server::find_server().unwrap_or_else(|| {
        panic!(
            "no `temporal-server` binary: run scripts/install-temporal-server.sh or set {}",
            dev_server::SERVER_ENV
        )
    })
}

/// Options for a server of `version`, with the fingerprint attribute.
pub fn options(version: Version) -> DevServerOptions {
    let mut options = DevServerOptions::new(temporal_cli());
    if version == Version::V1_32 {
        options.server = ServerKind::Server(temporal_server());
    }
    options
}

/// Starts a server from `options`, or fails the test.
pub async fn start(options: DevServerOptions) -> DevServer {
    let server = options.server.clone();
    DevServer::start(options)
        .await
        .unwrap_or_else(|e| panic!("the Temporal server ({server:?}) did not start: {e}"))
}

/// Starts a fresh dev server (Temporal 1.29) for one test.
pub async fn dev_server() -> DevServer {
    start(DevServerOptions::new(temporal_cli())).await
}

/// Starts a fresh server of `version` for one test.
pub async fn server_of(version: Version) -> DevServer {
    start(options(version)).await
}

/// Runs the `temporal` CLI against `server` and parses its JSON output.
pub fn temporal_json(server: &DevServer, args: &[&str]) -> serde_json::Value {
    let output = std::process::Command::new(server.cli())
        .args(args)
        .args([
            "--address",
            &server.address(),
            "--namespace",
            server.namespace(),
        ])
        .args(["--output", "json"])
        .output()
        .expect("the temporal CLI runs");
    assert!(
        output.status.success(),
        "temporal {args:?} failed: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    serde_json::from_slice(&output.stdout).unwrap_or_else(|e| {
        panic!(
            "temporal {args:?} printed no JSON ({e}): {}",
            String::from_utf8_lossy(&output.stdout)
        )
    })
}

/// A client connected to `server`.
pub async fn client(server: &DevServer) -> temporalio_client::Client {
    server
        .settings()
        .connect(std::time::Duration::from_secs(5))
        .await
        .expect("connects to the dev server")
}

/// `temporal schedule describe` of one schedule, as JSON.
pub fn describe(server: &DevServer, schedule_id: &str) -> serde_json::Value {
    temporal_json(
        server,
        &["schedule", "describe", "--schedule-id", schedule_id],
    )
}

/// Whether `schedule_id` is a project's writer fence (`<project>.~writer`),
/// which every project that has written holds besides its schedules.
pub fn is_fence(schedule_id: &str) -> bool {
    schedule_id.ends_with(".~writer")
}

/// The schedule ids `temporal schedule list` shows, writer fences left out.
pub fn listed_schedules(server: &DevServer) -> Vec<String> {
    let listed = temporal_json(server, &["schedule", "list"]);
    let mut ids: Vec<String> = listed
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|s| s["scheduleId"].as_str().map(str::to_owned))
        .filter(|id| !is_fence(id))
        .collect();
    ids.sort();
    ids
}

/// Runs the `schedule-sync` binary with `args` against `server`, with none
/// of Temporal's environment variables from the caller's shell.
pub fn run_binary(server: &DevServer, args: &[&str]) -> std::process::Output {
    std::process::Command::new(env!("CARGO_BIN_EXE_schedule-sync"))
        .args(args)
        .args(["--address", &server.address()])
        .env_remove("TEMPORAL_ADDRESS")
        .env_remove("TEMPORAL_NAMESPACE")
        .env_remove("TEMPORAL_API_KEY")
        .env_remove("SCHEDULE_SYNC_REVISION")
        .output()
        .expect("the binary runs")
}

/// A copy of `examples/billing` in a temporary folder, to change freely.
pub fn copy_example() -> tempfile::TempDir {
    let source = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("examples/billing");
    let target = tempfile::tempdir().unwrap();
    for entry in walkdir_files(&source) {
        let relative = entry.strip_prefix(&source).unwrap();
        let to = target.path().join(relative);
        std::fs::create_dir_all(to.parent().unwrap()).unwrap();
        std::fs::copy(&entry, to).unwrap();
    }
    target
}

fn walkdir_files(dir: &std::path::Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            out.extend(walkdir_files(&path));
        } else {
            out.push(path);
        }
    }
    out
}

/// One reconcile of the project in `dir` with the default options.
pub async fn apply<S: schedule_sync::store::ScheduleStore>(
    store: &S,
    dir: &std::path::Path,
) -> schedule_sync::reconcile::Report {
    let project = schedule_sync::project::load(dir).unwrap().project;
    schedule_sync::reconcile::reconcile(store, &project, Default::default())
        .await
        .unwrap()
}

/// A project named `name` made of workflow files with the texts `files`,
/// loaded through a temporary folder.
pub fn project_of(name: &str, files: &[&str]) -> schedule_sync::project::Project {
    let dir = project_dir(name, files);
    schedule_sync::project::load(dir.path())
        .unwrap_or_else(|e| panic!("{:#?}", e.diagnostics))
        .project
}

/// A project folder named `name` with the workflow files `files` (as
/// `workflows/w<N>.yaml`).
pub fn project_dir(name: &str, files: &[&str]) -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("project.yaml"),
        format!("name: {name}\ntask_queue: q\n"),
    )
    .unwrap();
    std::fs::create_dir_all(dir.path().join("workflows")).unwrap();
    for (i, text) in files.iter().enumerate() {
        std::fs::write(dir.path().join(format!("workflows/w{i}.yaml")), text).unwrap();
    }
    dir
}

/// Waits (in real time) until `check` holds, for at most `seconds`.
pub async fn eventually<F, Fut>(seconds: u64, what: &str, mut check: F)
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    let deadline = tokio::time::Instant::now() + std::time::Duration::from_secs(seconds);
    while !check().await {
        assert!(
            tokio::time::Instant::now() < deadline,
            "not within {seconds} s: {what}"
        );
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
}

/// A dev server (Temporal 1.29) that also has a `Team` keyword search
/// attribute.
pub async fn dev_server_with_team() -> DevServer {
    server_with_team(Version::V1_29).await
}

/// A server of `version` that also has a `Team` keyword search attribute,
/// for schedules that another tool tags.
pub async fn server_with_team(version: Version) -> DevServer {
    let mut options = options(version);
    options
        .search_attributes
        .push(("Team".to_owned(), "Keyword".to_owned()));
    start(options).await
}

/// Sets the search attribute `name` of a schedule, keeping its others, as
/// another tool would (a raw UpdateSchedule of the schedule as it is), and
/// waits until it shows.
pub async fn tag(
    server: &DevServer,
    store: &schedule_sync::store::TemporalStore,
    schedule_id: &str,
    name: &str,
    value: &str,
) {
    use schedule_sync::store::ScheduleStore;
    use temporalio_common::protos::temporal::api::common::v1::SearchAttributes;
    use temporalio_common::protos::temporal::api::workflowservice::v1::UpdateScheduleRequest;
    let held = store.describe(schedule_id).await.unwrap().unwrap();
    let mut attributes = held.search_attributes.clone();
    attributes.insert(
        name.to_owned(),
        schedule_sync::spec::json_payload(&value.into()),
    );
    let mut service = client(server).await.connection().workflow_service();
    service
        .update_schedule(tonic::Request::new(UpdateScheduleRequest {
            namespace: server.namespace().to_owned(),
            schedule_id: schedule_id.to_owned(),
            schedule: Some(held.schedule.clone()),
            conflict_token: held.conflict_token.clone(),
            identity: "another tool".into(),
            request_id: format!("tag-{schedule_id}-{name}"),
            search_attributes: Some(SearchAttributes {
                indexed_fields: attributes,
            }),
            memo: None,
        }))
        .await
        .expect("another tool's update");
    eventually(10, "the tag shows", || async {
        store
            .describe(schedule_id)
            .await
            .unwrap()
            .is_some_and(|d| d.search_attributes.contains_key(name))
    })
    .await;
}

/// `GET path` on the HTTP server at `address`: the status code and the body.
pub fn http_get(address: &str, path: &str) -> (u16, String) {
    use std::io::{Read, Write};
    let mut stream = std::net::TcpStream::connect(address).unwrap();
    stream
        .set_read_timeout(Some(std::time::Duration::from_secs(5)))
        .unwrap();
    write!(
        stream,
        "GET {path} HTTP/1.1\r\nHost: {address}\r\nConnection: close\r\n\r\n"
    )
    .unwrap();
    let mut response = String::new();
    stream.read_to_string(&mut response).unwrap();
    let code = response
        .get(9..12)
        .and_then(|c| c.parse().ok())
        .unwrap_or_else(|| panic!("GET {path}: not HTTP: {response:?}"));
    let body = response
        .split_once("\r\n\r\n")
        .map(|(_, b)| b.to_owned())
        .unwrap_or_default();
    (code, body)
}
