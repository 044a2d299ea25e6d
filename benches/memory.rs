//! Memory at scale: a generated project of 100,000 workflow files (the
//! generator of the load benchmark), and what holding it costs.
//!
//! 1. `schedule-sync validate DIR`: peak RSS, from `/usr/bin/time -v`.
//! 2. `schedule-sync serve DIR` with Temporal away (a closed port): RSS
//!    (`VmRSS`) and peak RSS (`VmHWM`) from `/proc/<pid>/status`, once the
//!    project is loaded and two attempts have failed.
//! 3. After a sync: the reconciler that `serve` embeds, in a process of
//!    its own (this bench run again with `--after-sync DIR`, so that the
//!    other phases' memory, freed but kept by the allocator, does not
//!    count), loading the same folder and reconciling it against a store
//!    whose listing shows every schedule in sync (a no-op sync: the case of
//!    every restart of `serve`). That process first builds the stand-in
//!    store and gives what the building freed back to the system
//!    (`malloc_trim`); then RSS and peak RSS once it is `Synced`, the heap
//!    the stand-in store itself holds (its listing, to be subtracted) and
//!    the heap the reconciler holds, by a counting allocator.
//!
//! `cargo bench --features cli,dev-server --bench memory` runs 100,000
//! workflows (`BENCH_MEMORY_SIZE`); under `cargo test` it runs 2,000 as a
//! smoke test. The figures go in BENCHMARKS.md.

// Wall-clock waits on another process: tokio's clock is not involved.
#![allow(clippy::disallowed_methods, clippy::disallowed_types)]

use std::alloc::{GlobalAlloc, Layout, System};
use std::collections::HashMap;
use std::io::{Read, Write};
use std::net::TcpStream;
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use schedule_sync::runtime::{Options, Reconciler};
use schedule_sync::spec::{DesiredProject, DesiredSchedule, PAUSE_NOTE_PREFIX};
use schedule_sync::store::{
    Created, Described, ListedSpec, Observation, Observed, PauseState, ScheduleStore, StoreError,
};
use temporalio_common::protos::temporal::api::common::v1::Payload;
use tokio_util::sync::CancellationToken;

mod common;

/// The system allocator, counting the bytes live on the heap.
struct Counting;

static LIVE: AtomicUsize = AtomicUsize::new(0);
static PEAK: AtomicUsize = AtomicUsize::new(0);

fn grew(size: usize) {
    let live = LIVE.fetch_add(size, Ordering::Relaxed) + size;
    PEAK.fetch_max(live, Ordering::Relaxed);
}

// SAFETY: every call is forwarded to the system allocator unchanged.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        grew(layout.size());
        // SAFETY: the caller's contract is the system allocator's.
        unsafe { System.alloc(layout) }
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        LIVE.fetch_sub(layout.size(), Ordering::Relaxed);
        // SAFETY: the caller's contract is the system allocator's.
        unsafe { System.dealloc(ptr, layout) }
    }
    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        grew(new_size);
        LIVE.fetch_sub(layout.size(), Ordering::Relaxed);
        // SAFETY: the caller's contract is the system allocator's.
        unsafe { System.realloc(ptr, layout, new_size) }
    }
}

#[global_allocator]
static ALLOCATOR: Counting = Counting;

const MIB: f64 = 1024.0 * 1024.0;

/// A field of `/proc/<pid>/status` in KiB (`VmRSS`, `VmHWM`).
fn status_kib(pid: &str, field: &str) -> u64 {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .unwrap_or_default()
        .lines()
        .find_map(|l| l.strip_prefix(field)?.strip_prefix(':'))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap_or(0)
}

fn mib(kib: u64) -> f64 {
    kib as f64 / 1024.0
}

/// Peak RSS of `schedule-sync validate dir`, in KiB, from `/usr/bin/time -v`.
fn validate(dir: &std::path::Path) -> (u64, Duration) {
    let started = Instant::now();
    let output = Command::new("/usr/bin/time")
        .arg("-v")
        .arg(env!("CARGO_BIN_EXE_schedule-sync"))
        .arg("validate")
        .arg(dir)
        .stdout(Stdio::null())
        .output()
        .expect("/usr/bin/time runs (Debian package `time`)");
    let took = started.elapsed();
    let report = String::from_utf8_lossy(&output.stderr);
    assert!(output.status.success(), "validate failed: {report}");
    let peak = report
        .lines()
        .find_map(|l| l.trim().strip_prefix("Maximum resident set size (kbytes):"))
        .and_then(|v| v.trim().parse().ok())
        .expect("time -v reports the peak RSS");
    (peak, took)
}

fn healthz(address: &str) -> Option<serde_json::Value> {
    let mut stream = TcpStream::connect(address).ok()?;
    stream.set_read_timeout(Some(Duration::from_secs(5))).ok()?;
    write!(
        stream,
        "GET /healthz HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"
    )
    .ok()?;
    let mut text = String::new();
    stream.read_to_string(&mut text).ok()?;
    serde_json::from_str(text.split_once("\r\n\r\n")?.1).ok()
}

/// RSS and peak RSS (KiB) of `serve dir` with Temporal away, once two
/// attempts have failed, and how long that took.
fn serve_away(dir: &std::path::Path) -> (u64, u64, Duration) {
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let address = format!("127.0.0.1:{port}");
    let started = Instant::now();
    let mut child = Command::new(env!("CARGO_BIN_EXE_schedule-sync"))
        .arg("serve")
        .arg(dir)
        .args(["--listen", &address, "--address", "127.0.0.1:1"])
        .env_remove("TEMPORAL_ADDRESS")
        .env("RUST_LOG", "off")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    loop {
        let attempt = healthz(&address)
            .and_then(|h| h["attempt"].as_u64())
            .unwrap_or(0);
        if attempt >= 2 {
            break;
        }
        assert!(
            started.elapsed() < Duration::from_secs(600),
            "serve never retried"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    let took = started.elapsed();
    std::thread::sleep(Duration::from_secs(1));
    let pid = child.id().to_string();
    let measured = (status_kib(&pid, "VmRSS"), status_kib(&pid, "VmHWM"), took);
    let _ = child.kill();
    let _ = child.wait();
    measured
}

/// A store whose listing shows every schedule of a project as in sync: the
/// answer of Temporal to a project applied before. Nothing else is asked
/// of it by a no-op sync.
struct InSync {
    listing: Vec<Observed>,
}

impl InSync {
    fn of(desired: &DesiredProject) -> Self {
        let mut listing = desired
            .schedules
            .iter()
            .map(|compact| compact.desired())
            .map(|want| Observed {
                schedule_id: want.schedule_id,
                owner: Some("bench".to_owned()),
                fingerprint: Some(want.fingerprint),
                paused: !want.enabled,
                notes: if want.enabled {
                    String::new()
                } else {
                    format!("{PAUSE_NOTE_PREFIX} in the project")
                },
                spec: want.schedule.spec.as_ref().map(ListedSpec::of),
                // What a listing shows of a schedule that fires: the
                // reconciler keeps each schedule's health from it.
                activity: Some(schedule_sync::health::Activity {
                    next_action: Some(std::time::SystemTime::now() + Duration::from_secs(3600)),
                    ..Default::default()
                }),
            })
            .collect::<Vec<_>>();
        // Collected in place, the listing would keep the larger buffer of
        // the desired schedules it was made from.
        listing.shrink_to_fit();
        InSync { listing }
    }
}

fn unexpected(rpc: &'static str) -> StoreError {
    StoreError::new(
        rpc,
        schedule_sync::Code::Unimplemented,
        "a no-op sync makes no such call",
    )
}

impl ScheduleStore for InSync {
    async fn list(&self, _project: &str) -> Result<Observation, StoreError> {
        Ok(Observation {
            schedules: self.listing.clone(),
            complete: true,
        })
    }
    async fn describe(&self, _: &str) -> Result<Option<Described>, StoreError> {
        Err(unexpected("DescribeSchedule"))
    }
    async fn create(
        &self,
        _: &str,
        _: &DesiredSchedule,
        _: &PauseState,
        _: &HashMap<String, Payload>,
        _: &str,
    ) -> Result<Created, StoreError> {
        Err(unexpected("CreateSchedule"))
    }
    async fn update(
        &self,
        _: &str,
        _: &DesiredSchedule,
        _: &PauseState,
        _: &Described,
        _: &str,
    ) -> Result<(), StoreError> {
        Err(unexpected("UpdateSchedule"))
    }
    async fn set_paused(&self, _: &str, _: &PauseState) -> Result<(), StoreError> {
        Err(unexpected("PatchSchedule"))
    }
    async fn delete(&self, _: &str) -> Result<(), StoreError> {
        Err(unexpected("DeleteSchedule"))
    }
    async fn search_attribute_types(
        &self,
    ) -> Result<schedule_sync::store::AttributeTypes, StoreError> {
        Err(unexpected("ListSearchAttributes"))
    }
}

/// What a no-op sync costs, measured in a process of its own
/// ([`AFTER_SYNC`]).
struct AfterSync {
    /// RSS and peak RSS (KiB) once `Synced`.
    rss: u64,
    hwm: u64,
    /// RSS (KiB) before the reconciler started: the stand-in store, built
    /// and its building given back to the system.
    rss_before: u64,
    /// Heap bytes the stand-in store holds (its listing).
    store: usize,
    /// Heap bytes the reconciler holds once `Synced`, and at most during
    /// the sync.
    heap: usize,
    heap_peak: usize,
    took: Duration,
}

/// The argument with which this bench runs itself to measure the
/// reconciler after a no-op sync of a folder, in a fresh process: the
/// earlier phases' memory, freed but kept by the allocator, does not count.
const AFTER_SYNC: &str = "--after-sync";

unsafe extern "C" {
    /// glibc: gives the free memory of every arena back to the system.
    fn malloc_trim(pad: usize) -> std::ffi::c_int;
}

/// The reconciler that `serve` embeds, in this process, after a no-op sync
/// of `dir`. Printed as one line of `key=value` for the parent.
async fn after_sync_here(dir: &std::path::Path) {
    let before = LIVE.load(Ordering::Relaxed);
    let store = {
        // The compact form, so that the whole project never burdens this
        // process before the measured part.
        let options = schedule_sync::project::LoadOptions::default();
        let (desired, _) = schedule_sync::spec::load_desired(dir, &options).unwrap();
        Arc::new(InSync::of(&desired))
    };
    let store_bytes = LIVE.load(Ordering::Relaxed).saturating_sub(before);
    // What building the listing freed goes back to the system: the
    // measured part starts from a process that holds the store and little
    // else.
    // SAFETY: malloc_trim has no preconditions.
    unsafe { malloc_trim(0) };
    reset_peak();
    let rss_before = status_kib("self", "VmRSS");
    let base = LIVE.load(Ordering::Relaxed);
    PEAK.store(base, Ordering::Relaxed);
    let started = Instant::now();
    let shutdown = CancellationToken::new();
    let handle =
        Reconciler::new(store, Options::default()).spawn_from(dir.to_path_buf(), shutdown.clone());
    handle.wait_synced().await.expect("the no-op sync succeeds");
    let took = started.elapsed();
    tokio::time::sleep(Duration::from_secs(1)).await;
    let heap = LIVE.load(Ordering::Relaxed).saturating_sub(base);
    let heap_peak = PEAK.load(Ordering::Relaxed).saturating_sub(base);
    println!(
        "rss={} hwm={} rss_before={} store={store_bytes} heap={heap} heap_peak={heap_peak} took_ms={}",
        status_kib("self", "VmRSS"),
        status_kib("self", "VmHWM"),
        rss_before,
        took.as_millis()
    );
    shutdown.cancel();
    handle.join().await;
}

/// Runs this bench again with [`AFTER_SYNC`] and reads its figures.
fn after_sync(dir: &std::path::Path) -> AfterSync {
    let output = Command::new(std::env::current_exe().unwrap())
        .arg(AFTER_SYNC)
        .arg(dir)
        .stderr(Stdio::inherit())
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&output.stdout);
    assert!(
        output.status.success(),
        "the after-sync phase failed: {text}"
    );
    let fields: HashMap<&str, u64> = text
        .split_whitespace()
        .filter_map(|pair| pair.split_once('='))
        .filter_map(|(key, value)| Some((key, value.parse().ok()?)))
        .collect();
    let field = |key: &str| *fields.get(key).unwrap_or_else(|| panic!("{key} in {text}"));
    AfterSync {
        rss: field("rss"),
        hwm: field("hwm"),
        rss_before: field("rss_before"),
        store: field("store") as usize,
        heap: field("heap") as usize,
        heap_peak: field("heap_peak") as usize,
        took: Duration::from_millis(field("took_ms")),
    }
}

/// Resets this process's peak RSS to its current RSS (Linux 4.0+).
fn reset_peak() {
    let _ = std::fs::write("/proc/self/clear_refs", "5");
}

#[tokio::main]
async fn main() {
    let args: Vec<String> = std::env::args().collect();
    if let Some(at) = args.iter().position(|a| a == AFTER_SYNC) {
        after_sync_here(std::path::Path::new(&args[at + 1])).await;
        return;
    }
    let bench = std::env::args().any(|a| a == "--bench");
    let size = if bench {
        std::env::var("BENCH_MEMORY_SIZE")
            .ok()
            .and_then(|s| s.parse().ok())
            .unwrap_or(100_000)
    } else {
        2_000
    };
    let dir = tempfile::tempdir().unwrap();
    common::write_project(dir.path(), size);
    println!("{size} workflows");

    let sync = after_sync(dir.path());
    println!(
        "  reconciler after a no-op sync (a process of its own): RSS {:.1} MiB (peak {:.1} MiB), of which the stand-in store's listing {:.1} MiB: {:.1} MiB without it; RSS before the reconciler started {:.1} MiB; heap the reconciler holds {:.1} MiB (peak during the sync {:.1} MiB); synced after {:.1} s",
        mib(sync.rss),
        mib(sync.hwm),
        sync.store as f64 / MIB,
        mib(sync.rss) - sync.store as f64 / MIB,
        mib(sync.rss_before),
        sync.heap as f64 / MIB,
        sync.heap_peak as f64 / MIB,
        sync.took.as_secs_f64()
    );

    // Where the heap goes, in this process (the counting allocator).
    let base = LIVE.load(Ordering::Relaxed);
    PEAK.store(base, Ordering::Relaxed);
    let project = schedule_sync::project::load(dir.path()).unwrap().project;
    let loaded = LIVE.load(Ordering::Relaxed) - base;
    let load_peak = PEAK.load(Ordering::Relaxed) - base;
    let desired = schedule_sync::spec::desired(&project);
    let with_desired = LIVE.load(Ordering::Relaxed) - base;
    drop(desired);
    let compact = schedule_sync::spec::DesiredProject::of(&project);
    let with_compact = LIVE.load(Ordering::Relaxed) - base;
    println!(
        "  heap: the loaded project {:.1} MiB (peak while loading {:.1} MiB); its desired schedules {:.1} MiB more; in the compact form {:.1} MiB more",
        loaded as f64 / MIB,
        load_peak as f64 / MIB,
        (with_desired - loaded) as f64 / MIB,
        (with_compact - loaded) as f64 / MIB
    );
    drop((compact, project));

    // What `serve` loads: the compact form, each workflow mapped as soon as
    // its file is checked.
    let base = LIVE.load(Ordering::Relaxed);
    PEAK.store(base, Ordering::Relaxed);
    let options = schedule_sync::project::LoadOptions::default();
    let (compact, _) = schedule_sync::spec::load_desired(dir.path(), &options).unwrap();
    println!(
        "  heap: the compact desired schedules as serve loads them {:.1} MiB (peak while loading {:.1} MiB)",
        (LIVE.load(Ordering::Relaxed) - base) as f64 / MIB,
        (PEAK.load(Ordering::Relaxed) - base) as f64 / MIB
    );
    drop(compact);

    let (peak, took) = validate(dir.path());
    println!(
        "  validate: peak RSS {:.1} MiB ({:.1} s)",
        mib(peak),
        took.as_secs_f64()
    );

    let (rss, hwm, took) = serve_away(dir.path());
    println!(
        "  serve, Temporal away: RSS {:.1} MiB, peak {:.1} MiB (second failed attempt after {:.1} s)",
        mib(rss),
        mib(hwm),
        took.as_secs_f64()
    );
}
