//! How a host server embeds the reconciler, with the library's default
//! features only: `examples/embed.rs`, compiled here as a doc test.
//!
//! The host spawns the reconciler and goes on serving; its readiness waits
//! for [`ReconcilerHandle::is_ready`](crate::runtime::ReconcilerHandle::is_ready),
//! which turns false the moment shutdown is asked; SIGHUP reloads the
//! project; SIGTERM cancels the shutdown token, drains the HTTP server, and
//! [`ReconcilerHandle::shutdown`](crate::runtime::ReconcilerHandle::shutdown)
//! waits for the reconciler to stop.
//!
#![doc = concat!("```no_run\n", include_str!("../examples/embed.rs"), "```")]
//!
//! # Testing a host with the in-memory store
//!
//! [`MemoryStore`](crate::store::MemoryStore) stands in for Temporal, and
//! injects faults; in paused tokio time the retries take no real time:
//!
//! ```
//! use std::sync::Arc;
//! use std::time::Duration;
//!
//! use schedule_sync::{CancellationToken, Code, MemoryStore, Options, RPC_ATTEMPTS, Reconciler, Rpc, State};
//!
//! async fn the_host_is_ready_once_temporal_answers() {
//!     let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("examples/billing");
//!     let project = schedule_sync::load(&dir).unwrap().project;
//!     let store = Arc::new(MemoryStore::new());
//!     // Temporal is away for the whole first attempt (each RPC is tried
//!     // RPC_ATTEMPTS times before the attempt gives up).
//!     let away = RPC_ATTEMPTS as usize;
//!     store.fail_next(schedule_sync::Rpc::ListSchedules, schedule_sync::Code::Unavailable, away);
//!     let host = CancellationToken::new();
//!     let handle = Reconciler::new(store.clone(), Options::default()).spawn(project, host.clone());
//!     let mut status = handle.subscribe();
//!     status.wait_for(|s| matches!(s.state, State::Retrying { .. })).await.unwrap();
//!     assert!(!handle.is_ready());
//!     // The retry (after up to 1 s, with jitter) runs in paused time.
//!     tokio::time::timeout(Duration::from_secs(60), handle.wait_synced())
//!         .await
//!         .unwrap()
//!         .unwrap();
//!     assert!(handle.is_ready());
//!     assert_eq!(store.writes(), 5); // 4 schedules and the writer fence
//!     host.cancel();
//!     assert!(!handle.is_ready()); // at once
//!     handle.join().await;
//! }
//! # tokio::runtime::Builder::new_current_thread()
//! #     .enable_time()
//! #     .start_paused(true)
//! #     .build()
//! #     .unwrap()
//! #     .block_on(the_host_is_ready_once_temporal_answers());
//! ```

/// The README's Rust examples, compiled and run as doc tests so that the
/// README cannot drift from the API.
#[cfg(doctest)]
#[doc = include_str!("../README.md")]
struct ReadmeExamples;
