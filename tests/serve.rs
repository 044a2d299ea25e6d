//! `schedule-sync serve` as a process, against the real dev server: Temporal
//! down at start and started later, a peer that accepts TCP and never speaks,
//! SIGTERM in the middle of a reconcile, a broken reload (SIGHUP), and two
//! projects in one server.

mod support;

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::Path;
use std::process::Command;
use std::time::Duration;

use tokio::time::Instant;

use schedule_sync::dev_server::{DevServer, DevServerOptions, free_port};
use support::serve::Serve;

/// A running `serve`, killed when dropped.
/// `serve` on `dir`, listening on a free port, with Temporal at `temporal`.
fn start(dir: &Path, temporal: &str, extra: &[&str]) -> Serve {
    start_with_env(dir, temporal, extra, &[])
}

fn start_with_env(dir: &Path, temporal: &str, extra: &[&str], env: &[(&str, &str)]) -> Serve {
    let address = format!("127.0.0.1:{}", free_port().unwrap());
    let mut command = Command::new(env!("CARGO_BIN_EXE_schedule-sync"));
    command
        .arg("serve")
        .arg(dir)
        .args(["--listen", &address, "--address", temporal])
        .args(extra)
        .env_remove("TEMPORAL_ADDRESS")
        .env_remove("TEMPORAL_NAMESPACE")
        .env_remove("TEMPORAL_API_KEY")
        .envs(env.iter().copied());
    Serve::spawn(command, &address)
}

fn listed(server: &DevServer) -> usize {
    support::listed_schedules(server).len()
}

#[tokio::test]
async fn temporal_down_at_start_then_started_makes_it_ready() {
    let port = free_port().unwrap();
    let temporal = format!("127.0.0.1:{port}");
    let example = Path::new(env!("CARGO_MANIFEST_DIR")).join("examples/billing");
    let serve = start(&example, &temporal, &[]);
    let (code, live) = serve.get("/livez");
    assert_eq!((code, &live["live"]), (200, &serde_json::json!(true)));
    let health = serve
        .wait_for("/healthz", Duration::from_secs(10), |_, h| {
            h["state"] == "retrying"
        })
        .await;
    assert!(
        health["last_error"].as_str().unwrap().contains(&temporal),
        "{health}"
    );
    assert_eq!(serve.get("/readyz").0, 503);

    let mut options = DevServerOptions::new(support::temporal_cli());
    options.port = Some(port);
    let server = DevServer::start(options).await.unwrap();
    // The backoff is at most 30 s (plus the connect timeout) by now.
    let health = serve
        .wait_for("/healthz", Duration::from_secs(60), |_, h| {
            h["state"] == "synced"
        })
        .await;
    assert_eq!(health["schedules"]["in_sync"], 4, "{health}");
    assert_eq!(serve.get("/readyz").0, 200);
    // The listing lags the creates by a moment.
    support::eventually(10, "the listing shows the 4 schedules", || async {
        listed(&server) == 4
    })
    .await;
    let metrics = serve.metrics();
    assert!(
        metrics.contains("schedule_sync_state{project=\"billing\",state=\"synced\"} 1"),
        "{metrics}"
    );
    assert!(
        metrics.contains(
            "schedule_sync_reconcile_total{project=\"billing\",outcome=\"retryable_error\"}"
        ),
        "{metrics}"
    );
    server.stop();
}

#[tokio::test]
async fn a_silent_peer_hangs_nothing() {
    // Accepts connections and never says a word.
    let silent = TcpListener::bind("127.0.0.1:0").unwrap();
    let temporal = silent.local_addr().unwrap().to_string();
    // The accepted connections are kept open, unanswered, until the test ends.
    std::thread::spawn(move || silent.incoming().collect::<Vec<_>>());
    let example = Path::new(env!("CARGO_MANIFEST_DIR")).join("examples/billing");
    let mut serve = start(&example, &temporal, &[]);
    for _ in 0..20 {
        let asked = Instant::now();
        let (code, health) = serve.get("/healthz");
        assert_eq!(code, 200);
        assert!(
            asked.elapsed() < Duration::from_millis(500),
            "/healthz took {:?}",
            asked.elapsed()
        );
        assert_ne!(health["state"], "synced");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    // The connect itself is bounded: the first attempt gives up after the
    // 5 s connect timeout and says so, instead of waiting on the peer.
    let health = serve
        .wait_for("/healthz", Duration::from_secs(12), |_, h| {
            h["attempt"].as_u64() >= Some(1)
        })
        .await;
    assert_eq!(health["state"], "retrying", "{health}");
    let error = health["last_error"].as_str().unwrap_or_default();
    assert!(error.contains("no answer within 5s"), "{health}");
    serve.signal("TERM");
    // A connect in flight (or a backoff) is dropped at once: no wait for
    // the silent peer, nor for the 10 s shutdown timeout.
    let (status, took) = serve.wait(Duration::from_secs(11)).await;
    assert!(status.success(), "{status}");
    assert!(took < Duration::from_secs(3), "shutdown took {took:?}");
}

fn write_big_project(dir: &Path, count: usize) {
    std::fs::create_dir_all(dir.join("workflows")).unwrap();
    std::fs::write(dir.join("project.yaml"), "name: big\ntask_queue: q\n").unwrap();
    for n in 0..count {
        std::fs::write(
            dir.join(format!("workflows/w{n:04}.yaml")),
            format!("id: w{n:04}\nschedule:\n  cron: \"{} 3 * * *\"\n", n % 60),
        )
        .unwrap();
    }
}

#[tokio::test]
async fn sigterm_in_the_middle_of_a_reconcile_exits_cleanly_and_a_restart_converges() {
    let server = support::dev_server().await;
    let dir = tempfile::tempdir().unwrap();
    write_big_project(dir.path(), 400);
    let mut serve = start(dir.path(), &server.address(), &["--concurrency", "2"]);
    // Wait until creates are under way, then stop it.
    let started = Instant::now();
    while !serve
        .metrics()
        .contains("schedule_sync_rpc_total{project=\"big\",rpc=\"CreateSchedule\",code=\"Ok\"}")
    {
        assert!(
            started.elapsed() < Duration::from_secs(30),
            "no create started"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert_ne!(
        serve.get("/healthz").1["state"],
        "synced",
        "stopped too late to test anything"
    );
    serve.signal("TERM");
    // A connect in flight (or a backoff) is dropped at once: no wait for
    // the silent peer, nor for the 10 s shutdown timeout.
    let (status, took) = serve.wait(Duration::from_secs(11)).await;
    assert!(status.success(), "{status}");
    assert!(took < Duration::from_secs(3), "shutdown took {took:?}");
    let created = listed(&server);
    assert!(
        created < 400,
        "the reconcile was interrupted: {created} created"
    );

    let restarted = start(dir.path(), &server.address(), &[]);
    let health = restarted
        .wait_for("/healthz", Duration::from_secs(120), |_, h| {
            h["state"] == "synced"
        })
        .await;
    assert_eq!(health["schedules"]["in_sync"], 400, "{health}");
    let started = Instant::now();
    while listed(&server) != 400 {
        assert!(
            started.elapsed() < Duration::from_secs(30),
            "listing never showed 400"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    server.stop();
}

#[tokio::test]
async fn a_broken_reload_keeps_the_last_good_project_and_deletes_nothing() {
    let server = support::dev_server().await;
    let dir = support::copy_example();
    let serve = start(dir.path(), &server.address(), &[]);
    serve
        .wait_for("/readyz", Duration::from_secs(30), |code, _| code == 200)
        .await;
    // The listing lags the creates by a moment.
    support::eventually(10, "the listing shows the 4 schedules", || async {
        listed(&server) == 4
    })
    .await;

    // Half the workflows vanish and the project file breaks: refused whole.
    std::fs::remove_file(dir.path().join("workflows/dunning.yaml")).unwrap();
    std::fs::write(
        dir.path().join("project.yaml"),
        "name: billing\ntask_queue: [oops\n",
    )
    .unwrap();
    serve.signal("HUP");
    let health = serve
        .wait_for("/healthz", Duration::from_secs(10), |_, h| {
            !h["reload_error"].is_null()
        })
        .await;
    assert!(
        health["reload_error"]
            .as_str()
            .unwrap()
            .contains("project.yaml"),
        "{health}"
    );
    assert_eq!(health["config_revision"], 1);
    assert_eq!(health["state"], "synced");
    assert_eq!(serve.get("/readyz").0, 200);
    let metrics = serve.metrics();
    assert!(
        metrics.contains(
            "schedule_sync_config_reload_total{project=\"billing\",outcome=\"invalid\"} 1"
        ),
        "{metrics}"
    );
    assert!(!metrics.contains("operation=\"delete\""), "{metrics}");
    // The refusal started no reconcile (so none could delete): the first is
    // still the only one.
    assert!(
        metrics
            .contains("schedule_sync_reconcile_total{project=\"billing\",outcome=\"success\"} 1\n"),
        "{metrics}"
    );
    assert_eq!(
        health["last_success_at"],
        serve.get("/healthz").1["last_success_at"]
    );
    assert_eq!(listed(&server), 4, "nothing was deleted");

    // Fixed: the reload applies and the removed workflow's schedule goes.
    std::fs::write(
        dir.path().join("project.yaml"),
        "name: billing\ntask_queue: billing-workers\n",
    )
    .unwrap();
    serve.signal("HUP");
    let health = serve
        .wait_for("/healthz", Duration::from_secs(30), |_, h| {
            h["config_revision"] == 2 && h["state"] == "synced" && h["schedules"]["pending"] == 0
        })
        .await;
    assert!(health["reload_error"].is_null(), "{health}");
    let metrics = serve.metrics();
    assert!(
        metrics
            .contains("schedule_sync_operations_total{project=\"billing\",operation=\"delete\",outcome=\"success\"} 1"),
        "{metrics}"
    );
    server.stop();
}

#[tokio::test]
async fn unusable_connection_settings_are_reported_and_the_server_still_serves() {
    let config = tempfile::NamedTempFile::new().unwrap();
    std::fs::write(config.path(), "this is [ not toml\n").unwrap();
    let example = Path::new(env!("CARGO_MANIFEST_DIR")).join("examples/billing");
    let path = config.path().to_str().unwrap();
    let mut serve = start_with_env(
        &example,
        "127.0.0.1:1",
        &[],
        &[("TEMPORAL_CONFIG_FILE", path)],
    );
    let health = serve
        .wait_for("/healthz", Duration::from_secs(10), |_, h| {
            h["state"] == "failed"
        })
        .await;
    assert_eq!(health["failed_reason"], "fatal", "{health}");
    assert!(
        health["last_error"].as_str().unwrap().contains("TOML"),
        "{health}"
    );
    assert_eq!(serve.get("/readyz").0, 503);
    assert_eq!(serve.get("/livez").0, 200);
    serve.signal("TERM");
    let (status, _) = serve.wait(Duration::from_secs(11)).await;
    assert!(status.success(), "{status}");
}

#[tokio::test]
async fn held_deletions_show_in_healthz_schedules_and_metrics() {
    let server = support::dev_server().await;
    let dir = support::copy_example();
    let serve = start(dir.path(), &server.address(), &[]);
    serve
        .wait_for("/readyz", Duration::from_secs(30), |code, _| code == 200)
        .await;
    // The listing lags the creates by a moment.
    support::eventually(10, "the listing shows the 4 schedules", || async {
        listed(&server) == 4
    })
    .await;

    // Three of the four workflows vanish: more than half, so held.
    for file in ["dunning.yaml", "invoice-sweep.yaml", "quarter-close.yaml"] {
        std::fs::remove_file(dir.path().join("workflows").join(file)).unwrap();
    }
    serve.signal("HUP");
    // Synced at revision 2 holds from the reload on, while its reconcile
    // still runs (the state is the last reconcile's until the next ends):
    // none of the new project's schedules pending says that it has ended.
    let health = serve
        .wait_for("/healthz", Duration::from_secs(30), |_, h| {
            h["config_revision"] == 2 && h["state"] == "synced" && h["schedules"]["pending"] == 0
        })
        .await;
    let held = health["held_deletions"].as_array().unwrap();
    assert_eq!(held.len(), 3, "{health}");
    assert!(
        held.iter().all(|h| h["reason"] == "mass_delete"),
        "{health}"
    );
    assert_eq!(
        serve.get("/readyz").0,
        200,
        "held deletions keep the host ready"
    );
    let (_, schedules) = serve.get("/schedules");
    let statuses: Vec<&str> = schedules
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|s| s["status"].as_str())
        .collect();
    assert_eq!(
        statuses.iter().filter(|s| **s == "held_deletion").count(),
        3,
        "{schedules}"
    );
    let metrics = serve.metrics();
    assert!(
        metrics.contains("schedule_sync_held_deletions{project=\"billing\"} 3"),
        "{metrics}"
    );
    assert_eq!(listed(&server), 4, "nothing was deleted");
    server.stop();
}

/// The sockets the process holds open.
fn open_sockets(pid: u32) -> usize {
    std::fs::read_dir(format!("/proc/{pid}/fd"))
        .unwrap()
        .filter_map(Result::ok)
        .filter(|fd| {
            std::fs::read_link(fd.path())
                .is_ok_and(|target| target.to_string_lossy().starts_with("socket:"))
        })
        .count()
}

#[tokio::test]
async fn slow_and_idle_clients_cannot_use_up_the_http_server() {
    let closed = format!("127.0.0.1:{}", free_port().unwrap());
    let example = Path::new(env!("CARGO_MANIFEST_DIR")).join("examples/billing");
    let serve = start(&example, &closed, &["--max-connections", "8"]);
    let before = open_sockets(serve.child.id());

    // A client that starts a request and never finishes its headers is cut
    // off after the header timeout (5 s), not held for ever.
    let mut slow = TcpStream::connect(&serve.address).unwrap();
    slow.write_all(b"GET /healthz HTTP/1.1\r\nHost: x\r\n")
        .unwrap();
    slow.set_read_timeout(Some(Duration::from_secs(15)))
        .unwrap();
    let started = Instant::now();
    let mut rest = Vec::new();
    let _ = slow.read_to_end(&mut rest);
    let held = started.elapsed();
    assert!(
        held >= Duration::from_secs(4) && held < Duration::from_secs(8),
        "the slow client was held {held:?}"
    );

    // Forty silent clients: at most eight are taken in at once; the rest wait
    // in the listen queue, so the process never holds more sockets than that.
    let silent: Vec<TcpStream> = (0..40)
        .map(|_| TcpStream::connect(&serve.address).unwrap())
        .collect();
    // Wait until the server has taken in the eight it may.
    support::eventually(10, "eight silent clients taken in", || async {
        open_sockets(serve.child.id()) >= before + 8
    })
    .await;
    let during = open_sockets(serve.child.id());
    // (Two more for the reconciler's connection attempts, which come and go.)
    assert!(
        during <= before + 8 + 2,
        "{during} sockets open with 40 silent clients, {before} before"
    );
    assert!(during >= before + 8, "{during} sockets, {before} before");
    // Once they go, the probes answer again.
    drop(silent);
    let health = serve
        .wait_for("/healthz", Duration::from_secs(30), |code, _| code == 200)
        .await;
    assert_ne!(health["state"], "synced");
}

#[tokio::test]
async fn two_projects_in_one_server_each_reconcile_and_show_apart() {
    let server = support::dev_server().await;
    let cron = "schedule:\n  cron: \"0 1 * * *\"\n";
    let (a1, a2, b1) = (
        format!("id: a1\n{cron}"),
        format!("id: a2\n{cron}"),
        format!("id: b1\n{cron}"),
    );
    let alpha = support::project_dir("alpha", &[&a1, &a2]);
    let beta = support::project_dir("beta", &[&b1]);
    let address = format!("127.0.0.1:{}", free_port().unwrap());
    let mut command = Command::new(env!("CARGO_BIN_EXE_schedule-sync"));
    command
        .arg("serve")
        .args([alpha.path(), beta.path()])
        .args(["--listen", &address, "--address", &server.address()])
        .env_remove("TEMPORAL_ADDRESS")
        .env_remove("TEMPORAL_NAMESPACE")
        .env_remove("TEMPORAL_API_KEY");
    let mut serve = Serve::spawn(command, &address);
    let health = serve
        .wait_for("/healthz", Duration::from_secs(30), |_, h| {
            h["ready"] == true
        })
        .await;
    let projects = health["projects"].as_array().unwrap();
    let names: Vec<&str> = projects
        .iter()
        .filter_map(|p| p["project"].as_str())
        .collect();
    assert_eq!(names, ["alpha", "beta"], "{health}");
    assert_eq!(projects[0]["schedules"]["in_sync"], 2, "{health}");
    assert_eq!(projects[1]["schedules"]["in_sync"], 1, "{health}");
    let (code, ready) = serve.get("/readyz");
    assert_eq!(code, 200, "{ready}");
    assert_eq!(ready["projects"].as_array().unwrap().len(), 2, "{ready}");
    let (_, schedules) = serve.get("/schedules");
    let ids: Vec<(String, String)> = schedules
        .as_array()
        .unwrap()
        .iter()
        .map(|e| {
            (
                e["project"].as_str().unwrap().to_owned(),
                e["id"].as_str().unwrap().to_owned(),
            )
        })
        .collect();
    assert_eq!(
        ids,
        [
            ("alpha".to_owned(), "alpha.a1".to_owned()),
            ("alpha".to_owned(), "alpha.a2".to_owned()),
            ("beta".to_owned(), "beta.b1".to_owned()),
        ]
    );
    let metrics = serve.metrics();
    for series in [
        "schedule_sync_schedules{project=\"alpha\",status=\"in_sync\"} 2",
        "schedule_sync_schedules{project=\"beta\",status=\"in_sync\"} 1",
        "schedule_sync_state{project=\"alpha\",state=\"synced\"} 1",
        "schedule_sync_state{project=\"beta\",state=\"synced\"} 1",
    ] {
        assert!(metrics.contains(series), "no {series}:\n{metrics}");
    }
    // The RPCs of each project count under its own name.
    for project in ["alpha", "beta"] {
        let creates = format!(
            "schedule_sync_rpc_total{{project=\"{project}\",rpc=\"CreateSchedule\",code=\"Ok\"}}"
        );
        assert!(metrics.contains(&creates), "no {creates}:\n{metrics}");
    }

    // A reload with beta broken: alpha reloads, beta keeps its last good
    // project, and both stay ready.
    std::fs::write(beta.path().join("project.yaml"), "name: beta\n").unwrap();
    serve.signal("HUP");
    let health = serve
        .wait_for("/healthz", Duration::from_secs(10), |_, h| {
            !h["projects"][1]["reload_error"].is_null() && h["projects"][0]["config_revision"] == 2
        })
        .await;
    assert!(health["projects"][0]["reload_error"].is_null(), "{health}");
    assert_eq!(health["projects"][0]["config_revision"], 2, "{health}");
    assert_eq!(health["projects"][1]["config_revision"], 1, "{health}");
    assert_eq!(health["ready"], true, "{health}");
    serve.signal("TERM");
    let (status, _) = serve.wait(Duration::from_secs(11)).await;
    assert!(status.success(), "{status}");
    server.stop();
}
