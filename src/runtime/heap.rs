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
