//! Giving the memory a reconcile freed back to the system.
//!
//! glibc's allocator keeps freed memory in its arenas (one per thread that
//! allocated, up to eight per core) and returns only what lies at the top
//! of the main heap. A reconcile of a large project holds its listing, plan
//! and report at once for a moment, so without a trim the process keeps
//! that peak as resident memory after every sync.

/// Asks the allocator to return the free pages of every arena.
#[cfg(all(target_os = "linux", target_env = "gnu"))]
pub(super) fn give_back_freed() {
    unsafe extern "C" {
        /// glibc: releases free memory from the heap and from every arena
        /// (`madvise(MADV_DONTNEED)` on whole free pages); `pad` is the
        /// free space to keep at the top of the main heap.
        fn malloc_trim(pad: usize) -> std::ffi::c_int;
    }
    // SAFETY: malloc_trim takes no pointer and has no precondition; glibc
    // serialises it with every other allocator call through arena locks.
    unsafe {
        malloc_trim(0);
    }
}

/// Elsewhere the allocator is not glibc's, and nothing is done.
#[cfg(not(all(target_os = "linux", target_env = "gnu")))]
pub(super) fn give_back_freed() {}

/// The free space at the top of an arena beyond which a free gives it
/// back: glibc's own default, before it raises it.
#[cfg(all(target_os = "linux", target_env = "gnu"))]
const TRIM_THRESHOLD: std::ffi::c_int = 128 * 1024;

/// Keeps the allocator's trim threshold at its default. `malloc_trim`
/// returns the free pages inside every arena, but the free space at the
/// top of an arena other than the main one only a free gives back, when
/// it exceeds the trim threshold; and glibc raises that threshold (up to
/// 64 MiB) each time a large block is freed, which a reconcile of 100,000
/// schedules does. Held at its default (`mallopt(M_TRIM_THRESHOLD)`, which
/// also stops the raising), the tops of the arenas that loaded the project
/// and ran the reconcile go back to the system: at 100,000 workflows, about
/// 19 MiB of RSS after a sync. Process-wide, as the allocator is.
#[cfg(all(target_os = "linux", target_env = "gnu"))]
pub(super) fn keep_trim_threshold() {
    unsafe extern "C" {
        /// glibc: sets one of the allocator's parameters; returns 1 on
        /// success.
        fn mallopt(param: std::ffi::c_int, value: std::ffi::c_int) -> std::ffi::c_int;
    }
    /// glibc's `M_TRIM_THRESHOLD` (malloc.h).
    const M_TRIM_THRESHOLD: std::ffi::c_int = -1;
    // SAFETY: mallopt takes no pointer and has no precondition; glibc
    // takes the main arena's lock to set it.
    unsafe {
        mallopt(M_TRIM_THRESHOLD, TRIM_THRESHOLD);
    }
}

/// Elsewhere the allocator is not glibc's, and nothing is done.
#[cfg(not(all(target_os = "linux", target_env = "gnu")))]
pub(super) fn keep_trim_threshold() {}
