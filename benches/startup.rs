//! Startup and footprint of `schedule-sync serve` on a 10,000-workflow
//! project with Temporal unreachable (a closed port):
//!
//! - time from process start to the first 200 on `/healthz`, with the
//!   reconciler on and with it off (`--no-reconciler`: the same HTTP server
//!   with no schedule-sync work at all), and their ratio;
//! - how long after the project finished loading the first 200 came (it may
//!   be before: the project loads in the reconciler's task);
//! - peak RSS (VmHWM) after the load and a few failed attempts.
//!
//! `cargo bench --bench startup` runs 30 starts of each on 10,000 workflows;
//! under `cargo test` it runs 2 starts of each on 200 as a smoke test.
//! The figures go in BENCHMARKS.md.

// Wall-clock timing of another process: tokio's clock is not involved.
#![allow(clippy::disallowed_methods, clippy::disallowed_types)]

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant, SystemTime};

mod common;

struct Start {
    first_200: Duration,
    /// First 200 minus the end of the project load (negative: before it).
    after_load_ms: Option<f64>,
    peak_rss_kib: u64,
}

fn healthz(address: &str) -> Option<u16> {
    let mut stream = TcpStream::connect(address).ok()?;
    stream.set_read_timeout(Some(Duration::from_secs(2))).ok()?;
    write!(
        stream,
        "GET /healthz HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"
    )
    .ok()?;
    let mut head = [0u8; 12];
    stream.read_exact(&mut head).ok()?;
    std::str::from_utf8(&head[9..12]).ok()?.parse().ok()
}

fn peak_rss_kib(pid: u32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap_or(0)
}

fn start(project: &std::path::Path, reconciler: bool, settle: Duration) -> Start {
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let address = format!("127.0.0.1:{port}");
    let mut command = Command::new(env!("CARGO_BIN_EXE_schedule-sync"));
    command
        .args(["--log-format", "json", "serve"])
        .arg(project)
        .args(["--listen", &address, "--address", "127.0.0.1:1"])
        .env("RUST_LOG", "info")
        .stdout(Stdio::null())
        .stderr(Stdio::piped());
    if !reconciler {
        command.arg("--no-reconciler");
    }
    let spawned = Instant::now();
    let mut child = command.spawn().unwrap();
    let first_200 = loop {
        if healthz(&address) == Some(200) {
            break spawned.elapsed();
        }
        assert!(
            spawned.elapsed() < Duration::from_secs(30),
            "no 200 within 30 s"
        );
        std::thread::sleep(Duration::from_micros(500));
    };
    let answered_at = SystemTime::now();
    std::thread::sleep(settle);
    let peak_rss_kib = peak_rss_kib(child.id());
    let _ = Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status();
    let stderr = child.stderr.take().unwrap();
    let _ = child.wait();
    let loaded_at = BufReader::new(stderr)
        .lines()
        .map_while(Result::ok)
        .filter_map(|line| serde_json::from_str::<serde_json::Value>(&line).ok())
        .find(|log| log["fields"]["message"] == "project loaded")
        .and_then(|log| chrono::DateTime::parse_from_rfc3339(log["timestamp"].as_str()?).ok());
    let after_load_ms = loaded_at.map(|loaded| {
        let answered = chrono::DateTime::<chrono::Utc>::from(answered_at);
        (answered - loaded.with_timezone(&chrono::Utc))
            .num_microseconds()
            .unwrap_or(0) as f64
            / 1000.0
    });
    Start {
        first_200,
        after_load_ms,
        peak_rss_kib,
    }
}

fn median(mut values: Vec<f64>) -> f64 {
    values.sort_by(f64::total_cmp);
    values[values.len() / 2]
}

fn main() {
    let bench = std::env::args().any(|a| a == "--bench");
    let (workflows, runs) = if bench { (10_000, 30) } else { (200, 2) };
    let dir = tempfile::tempdir().unwrap();
    common::write_project(dir.path(), workflows);
    // Warm the page cache so that every run reads the same way.
    let _ = start(dir.path(), false, Duration::ZERO);
    let mut on = Vec::new();
    let mut off = Vec::new();
    for _ in 0..runs {
        on.push(start(
            dir.path(),
            true,
            Duration::from_secs(if bench { 2 } else { 1 }),
        ));
        off.push(start(dir.path(), false, Duration::ZERO));
    }
    let ms = |starts: &[Start]| -> Vec<f64> {
        starts
            .iter()
            .map(|s| s.first_200.as_secs_f64() * 1000.0)
            .collect()
    };
    let (on_ms, off_ms) = (median(ms(&on)), median(ms(&off)));
    let after_load: Vec<f64> = on.iter().filter_map(|s| s.after_load_ms).collect();
    let rss_mib = on.iter().map(|s| s.peak_rss_kib).max().unwrap_or(0) as f64 / 1024.0;
    println!("workflows: {workflows}, runs: {runs} of each");
    println!(
        "first 200 on /healthz, reconciler on:  median {on_ms:.1} ms (all: {:?})",
        ms(&on)
            .iter()
            .map(|v| format!("{v:.1}"))
            .collect::<Vec<_>>()
    );
    println!(
        "first 200 on /healthz, reconciler off: median {off_ms:.1} ms (all: {:?})",
        ms(&off)
            .iter()
            .map(|v| format!("{v:.1}"))
            .collect::<Vec<_>>()
    );
    println!("on/off ratio: {:.2}", on_ms / off_ms);
    println!(
        "first 200 minus project loaded: median {:.1} ms, max {:.1} ms (negative: before the load ended)",
        median(after_load.clone()),
        after_load.iter().copied().fold(f64::MIN, f64::max)
    );
    println!("peak RSS with the reconciler on: {rss_mib:.1} MiB");
    assert_eq!(after_load.len(), on.len(), "every run logged the load");
    assert!(rss_mib > 0.0);
}
