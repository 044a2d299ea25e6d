//! Replicas of one version started together: 3 and 5 `schedule-sync serve`
//! processes on one 1,000-schedule project and a fresh dev server. Measures
//! the time until every replica is ready and the listing shows every
//! schedule, the RPCs each replica made (from its `/metrics`), and the
//! writes that took effect (from the audit log lines): each schedule must be
//! created once in total, not once per replica, with no update, and sent in
//! at most 1.1 N CreateSchedule RPCs in total (besides one create of the
//! writer fence per replica).
//!
//! `cargo bench --bench replicas` runs 3 and 5 replicas on 1,000 schedules
//! (`BENCH_REPLICAS`, `BENCH_SIZE`); under `cargo test` it runs 2 replicas on
//! 40 schedules as a smoke test. The figures go in BENCHMARKS.md.

// Wall-clock timing of other processes: tokio's clock is not involved.
#![allow(clippy::disallowed_methods, clippy::disallowed_types)]

use std::collections::BTreeMap;
use std::io::{Read, Write};
use std::net::TcpStream;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use schedule_sync::dev_server::{DevServer, DevServerOptions, find_cli, free_port};
use schedule_sync::store::{ScheduleStore, TemporalStore};

mod common;

fn get(address: &str, path: &str) -> Option<(u16, String)> {
    let mut stream = TcpStream::connect(address).ok()?;
    stream.set_read_timeout(Some(Duration::from_secs(5))).ok()?;
    write!(
        stream,
        "GET {path} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"
    )
    .ok()?;
    let mut text = String::new();
    stream.read_to_string(&mut text).ok()?;
    let code = text.get(9..12)?.parse().ok()?;
    let body = text.split_once("\r\n\r\n")?.1.to_owned();
    Some((code, body))
}

struct Replica {
    child: Child,
    address: String,
    log: std::path::PathBuf,
}

fn spawn(dir: &std::path::Path, temporal: &str, log: std::path::PathBuf) -> Replica {
    let address = format!("127.0.0.1:{}", free_port().unwrap());
    let child = Command::new(env!("CARGO_BIN_EXE_schedule-sync"))
        .args(["--log-format", "json", "serve"])
        .arg(dir)
        .args(["--listen", &address, "--address", temporal])
        .env("RUST_LOG", "schedule_sync::audit=info,warn")
        .env_remove("SCHEDULE_SYNC_REVISION")
        .stdout(Stdio::null())
        .stderr(std::fs::File::create(&log).unwrap())
        .spawn()
        .unwrap();
    Replica {
        child,
        address,
        log,
    }
}

/// `schedule_sync_rpc_total` of a replica, by RPC (all codes).
fn rpcs(metrics: &str) -> BTreeMap<String, u64> {
    let mut out = BTreeMap::new();
    for line in metrics
        .lines()
        .filter(|l| l.starts_with("schedule_sync_rpc_total{"))
    {
        let rpc = line
            .split("rpc=\"")
            .nth(1)
            .and_then(|r| r.split('"').next())
            .unwrap_or("?");
        let value: f64 = line
            .rsplit(' ')
            .next()
            .and_then(|v| v.parse().ok())
            .unwrap_or(0.0);
        *out.entry(rpc.to_owned()).or_default() += value as u64;
    }
    out
}

/// The writes that took effect, by operation, from a replica's audit log.
fn writes(log: &std::path::Path) -> BTreeMap<String, u64> {
    let mut out = BTreeMap::new();
    for line in std::fs::read_to_string(log).unwrap_or_default().lines() {
        let Ok(entry) = serde_json::from_str::<serde_json::Value>(line) else {
            continue;
        };
        let fields = &entry["fields"];
        if fields["outcome"] == "ok" {
            let operation = fields["operation"].as_str().unwrap_or("?").to_owned();
            *out.entry(operation).or_default() += 1;
        }
    }
    out
}

async fn run(replicas: usize, size: usize) {
    let cli = find_cli().expect("no temporal CLI: run scripts/install-temporal-cli.sh");
    let server = DevServer::start(DevServerOptions::new(cli))
        .await
        .expect("the dev server starts");
    let dir = tempfile::tempdir().unwrap();
    common::write_project(dir.path(), size);
    let logs = tempfile::tempdir().unwrap();
    let started = Instant::now();
    let mut running: Vec<Replica> = (0..replicas)
        .map(|i| {
            spawn(
                dir.path(),
                &server.address(),
                logs.path().join(format!("replica-{i}.log")),
            )
        })
        .collect();
    let client = server
        .settings()
        .connect(Duration::from_secs(5))
        .await
        .unwrap();
    let store = TemporalStore::new(client, server.namespace().to_owned(), true);
    // Converged: every replica ready, and the listing shows every schedule
    // of the project and its writer fence, no more.
    let converged = loop {
        let ready = running
            .iter()
            .all(|r| get(&r.address, "/readyz").is_some_and(|(code, _)| code == 200));
        let listed = store.list("bench").await.map_or(0, |o| o.schedules.len());
        if ready && listed == size + 1 {
            break started.elapsed();
        }
        assert!(
            started.elapsed() < Duration::from_secs(300),
            "no convergence: {listed} listed"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    // Each replica has finished its reconcile: no RPC is added any more.
    tokio::time::sleep(Duration::from_secs(2)).await;
    let mut total_writes: BTreeMap<String, u64> = BTreeMap::new();
    let mut total_rpcs: BTreeMap<String, u64> = BTreeMap::new();
    println!(
        "{replicas} replicas, {size} schedules: converged after {:.1} s",
        converged.as_secs_f64()
    );
    for (i, replica) in running.iter().enumerate() {
        let (_, metrics) = get(&replica.address, "/metrics").unwrap();
        let rpcs = rpcs(&metrics);
        for (rpc, count) in &rpcs {
            *total_rpcs.entry(rpc.clone()).or_default() += count;
        }
        let writes = writes(&replica.log);
        for (operation, count) in &writes {
            *total_writes.entry(operation.clone()).or_default() += count;
        }
        println!(
            "  replica {i}: {} RPCs {rpcs:?}; writes that took effect {writes:?}",
            rpcs.values().sum::<u64>()
        );
    }
    println!(
        "  all replicas: {} RPCs {total_rpcs:?}; writes that took effect {total_writes:?}",
        total_rpcs.values().sum::<u64>()
    );
    // Each schedule is sent once, not once per replica: at most 1.1 N
    // creates, besides one create of the writer fence per replica.
    let creates = total_rpcs.get("CreateSchedule").copied().unwrap_or(0);
    assert!(
        creates as f64 <= 1.1 * size as f64 + replicas as f64,
        "{creates} CreateSchedule RPCs for {size} schedules"
    );
    assert_eq!(
        total_writes.get("create").copied().unwrap_or(0),
        size as u64,
        "each schedule created once in total"
    );
    assert_eq!(total_writes.get("update"), None, "no schedule rewritten");
    assert_eq!(total_writes.get("delete"), None);
    let listed = store.list("bench").await.unwrap().schedules.len();
    assert_eq!(
        listed,
        size + 1,
        "exactly the project's schedules and its fence"
    );
    for replica in &mut running {
        let _ = replica.child.kill();
        let _ = replica.child.wait();
    }
}

#[tokio::main]
async fn main() {
    let bench = std::env::args().any(|a| a == "--bench");
    let (counts, size) = if bench {
        let counts = std::env::var("BENCH_REPLICAS")
            .unwrap_or_else(|_| "3,5".into())
            .split(',')
            .map(|s| {
                s.trim()
                    .parse()
                    .expect("BENCH_REPLICAS is a list of numbers")
            })
            .collect();
        let size = std::env::var("BENCH_SIZE")
            .ok()
            .and_then(|s| s.parse().ok())
            .unwrap_or(1000);
        (counts, size)
    } else {
        (vec![2], 40)
    };
    for replicas in counts {
        run(replicas, size).await;
    }
}
