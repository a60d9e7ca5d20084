//! The allocator of the `provdb` binary, shared with the benchmarks so that their figures are
//! the binary's: mimalloc, with freed memory kept for a second before it goes back to the kernel.

#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// mimalloc's `purge_delay` option (`mi_option_e` in mimalloc.h, the same index in v2 and v3).
/// libmimalloc-sys binds the option after it but not this one; the assertion pins the index to
/// that neighbour, so a renumbered binding fails to compile instead of setting another option.
const MI_OPTION_PURGE_DELAY: libmimalloc_sys::mi_option_t = 15;
const _: () = assert!(libmimalloc_sys::mi_option_use_numa_nodes == MI_OPTION_PURGE_DELAY + 1);

/// How long freed pages stay with the process, in milliseconds.
///
/// mimalloc's default (10 ms) hands the pages a batch freed back to the kernel before the next
/// batch allocates them again; every reuse is then a page fault that zeroes the page. Ingest
/// with detection spent 18% of its samples there (perf, `clear_page`). One second spans many
/// batches and still returns the memory of an idle service.
const PURGE_DELAY_MS: std::ffi::c_long = 1000;

/// Applies the tuning above, unless the user chose with `MIMALLOC_PURGE_DELAY`.
pub fn tune() {
    if std::env::var_os("MIMALLOC_PURGE_DELAY").is_some() {
        return;
    }
    // SAFETY: `mi_option_set` takes any option index below `_mi_option_last` and any value;
    // the index is pinned above, and mimalloc reads this option at every purge, so setting it
    // after allocation has begun is supported.
    #[allow(unsafe_code)]
    unsafe {
        libmimalloc_sys::mi_option_set(MI_OPTION_PURGE_DELAY, PURGE_DELAY_MS);
    }
}
