//! The allocator of the `provdb` binary, shared with the benchmarks so that their figures are
//! the binary's: mimalloc for Rust's and RocksDB's allocations alike (libmimalloc-sys's
//! `override`), with freed memory kept until exit by commands that end and for a second by
//! long-running ones, and transparent huge pages for interactive reads only.

#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// mimalloc's `purge_delay` option (`mi_option_e` in mimalloc.h, the same index in v2 and v3).
/// libmimalloc-sys binds the option after it but not this one; the assertion pins the index to
/// that neighbour, so a renumbered binding fails to compile instead of setting another option.
const MI_OPTION_PURGE_DELAY: libmimalloc_sys::mi_option_t = 15;
const _: () = assert!(libmimalloc_sys::mi_option_use_numa_nodes == MI_OPTION_PURGE_DELAY + 1);

/// How long freed pages stay with the process, in milliseconds, in a long-running process.
///
/// mimalloc's default (10 ms in v2) hands the pages a batch freed back to the kernel before the
/// next batch allocates them again; every reuse is then a page fault that zeroes the page.
/// Ingest with detection spent 18% of its samples there (perf, `clear_page`). Memtables are
/// freed after a flush and allocated again a flush later, seconds apart at a service's pace:
/// ten seconds spans those too (the ingest bench's embedded-listener service, two runs of
/// five: 105-107% of offline import's rate, against 78-84% with a second's delay), and an
/// idle service still returns its memory.
const PURGE_DELAY_MS: std::ffi::c_long = 10_000;

/// mimalloc's value for "never purge": the process keeps what it freed until it exits.
const NEVER_PURGE: std::ffi::c_long = -1;

/// What the process is for, which decides when freed memory goes back to the kernel and
/// whether transparent huge pages pay.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[allow(
    dead_code,
    reason = "each benchmark that shares this file names the ones it measures"
)]
pub enum Workload {
    /// A command that writes or scans and then ends (import, compact, export, check ...).
    /// Freed memory is never purged: the next write batch or memtable reuses it without a
    /// page fault, and the process returns all of it when it exits. A second's delay was not
    /// enough for an import, whose memtables are freed after a flush and allocated again a
    /// flush later: 1.1 GiB purged and faulted in again per 1M edges; without purging, eight
    /// alternated imports of the 1M-edge bench log took 2.99 s against 3.17 s (CPU 5.41
    /// against 5.71 s, 2-core VM).
    Batch,
    /// The ingest service (`serve`): runs for months, idle at times, so freed memory goes
    /// back after [`PURGE_DELAY_MS`] (ten seconds).
    Service,
    /// Interactive reads (query, repl, ui): each first touch of a block allocates fresh
    /// memory, and one huge-page fault per 2 MiB costs less than a fault per 4 KiB page. With
    /// huge pages a fresh process answered the 200 starts of the peer workload's 3-hop
    /// question about 15% faster (median of ten alternated runs, 2-core VM); on 2026-12-03,
    /// 8-15% faster medians for Q2-Q4, but p99s 2-3x higher (a fault zeroes 2 MiB at once).
    Query,
}

/// Applies the tuning above and, for the writing workloads, turns transparent huge pages off
/// for the process, unless the user chose with `MIMALLOC_PURGE_DELAY` or `MIMALLOC_ALLOW_THP`.
/// A process that changes workload (a benchmark) may call it again.
pub fn tune(workload: Workload) {
    if std::env::var_os("MIMALLOC_PURGE_DELAY").is_none() {
        let delay = match workload {
            Workload::Batch => NEVER_PURGE,
            Workload::Service | Workload::Query => PURGE_DELAY_MS,
        };
        // SAFETY: `mi_option_set` takes any option index below `_mi_option_last` and any
        // value; the index is pinned above, and mimalloc reads this option at every purge,
        // so setting it after allocation has begun is supported.
        #[allow(unsafe_code)]
        unsafe {
            libmimalloc_sys::mi_option_set(MI_OPTION_PURGE_DELAY, delay);
        }
    }
    if workload != Workload::Query && std::env::var_os("MIMALLOC_ALLOW_THP").is_none() {
        disable_transparent_huge_pages();
    }
}

/// mimalloc asks for transparent huge pages on its arenas (`madvise(MADV_HUGEPAGE)`), and
/// each first touch of one then faults in and zeroes 2 MiB. Ingest with detection grows its
/// heap in steps, and on the 2-core VM of the benchmarks that zeroing was 30% of an import's
/// samples (`clear_page_erms` under `do_huge_pmd_anonymous_page`): import with the rules took
/// 6.3 s with huge pages and 4.8 s without, against 4.0-4.4 s without rules either way. As for
/// other databases (Redis, MongoDB), huge pages buy provdb nothing it measured, and cost
/// latency; the flag also covers RocksDB's allocations. A kernel without it is left as is.
#[cfg(target_os = "linux")]
fn disable_transparent_huge_pages() {
    // SAFETY: PR_SET_THP_DISABLE takes plain integer arguments and changes only this
    // process's memory policy.
    #[allow(unsafe_code)]
    let _ = unsafe { libc::prctl(libc::PR_SET_THP_DISABLE, 1, 0, 0, 0) };
}

#[cfg(not(target_os = "linux"))]
fn disable_transparent_huge_pages() {}
