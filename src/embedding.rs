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
